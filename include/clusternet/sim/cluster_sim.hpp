// clusternet/sim/cluster_sim.hpp -- a deterministic discrete-event simulator of a server cluster
// driven by the library's real cluster_view and schedulers.
//
// The model (docs/simulator.md has the long form):
//
//   users (closed loop)        entry host            dispatch                 back end
//   think -> request ------> (round-robin DNS) --> scheduler.pick() ----> PS/FIFO queue --+
//     ^   (or open Poisson                         | flow_opened()          speed, limit |
//     |    arrivals)          [front end: FIFO,    |                                     |
//     |                        cost per request]   +-- load reports <-- sampled every    |
//     +---------------- response (delay = queueing + service + RTT) <-- period, after delay
//
//  - Requests come from closed-loop users (workload.hpp: Zipf popularity, heavy-tailed sizes,
//    Pareto think times), each tied to an entry host as round-robin DNS would tie a client
//    (`users_per_entry`), or from an open Poisson stream spread evenly over entry hosts.
//  - Dispatch: policy "none" serves a request on its entry host; "dpr" gives every entry host its
//    own dpr_threshold scheduler with self = that host (DPR's distributed redirection); any other
//    name is an any_scheduler policy (rr, wrr, lc, wlc, sed, nq, random, wrandom, twos, sh, dh,
//    hrw, maglev) run by one central dispatcher, or by one per entry host with `per_entry`.
//    An optional front end (front_end_cost_s > 0) is one FIFO server every request passes first
//    (LCCP's dispatcher); `handoff_cost_s` is extra back-end work per dispatched request (TCP
//    handoff).
//  - A back end serves work = per_request_s + per_byte_s * size (seconds at speed 1) at `speed`:
//    processor sharing among at most `concurrency` requests (the rest wait in FIFO order), or
//    FIFO, which is processor sharing with a limit of one.
//  - The cluster view's live-flow counters are kept as a dispatcher keeps them: flow_opened when
//    a request is bound to a back end, flow_closed when it completes. Every back end samples its
//    load (open connections = requests at the server, CPU = busy share over the period,
//    redirected connections over the period, active sockets) every report_period_s, at a random
//    phase, and the sample reaches the view (report_load) report_delay_s later: dpr sees reports
//    up to a period old, as in the paper; lc/wlc/sed/nq see the live counts.
//
// Determinism: every random draw comes from splitmix64 streams derived from `seed`; events at
// equal times run in scheduling order (event_queue). The same configuration and seed give the
// same result bit for bit (on one platform and build: libm's log/pow/exp are not specified to
// the last bit across libraries).
//
// Cost: O(log n) per event plus the policy's pick cost (O(N) for lc-like and dpr policies).
// Memory: O(servers + users + requests in flight + measured requests) (every measured delay is
// kept, 8 bytes each, for exact percentiles). run() throws std::invalid_argument for a
// configuration that makes no sense, and what cluster_view/any_scheduler throw.
#pragma once

#include <clusternet/cluster_dispatch.hpp>  // any_scheduler
#include <clusternet/cluster_view.hpp>
#include <clusternet/scheduler.hpp>
#include <clusternet/schedulers/dpr.hpp>
#include <clusternet/sim/event_queue.hpp>
#include <clusternet/sim/workload.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace clusternet::sim {

enum class discipline : std::uint8_t { ps, fifo };
enum class arrival_model : std::uint8_t { closed, open };

struct server_config {
    double speed = 1.0;        ///< work seconds served per second
    std::uint32_t weight = 1;  ///< the member's weight in the view
};

struct sim_config {
    std::uint64_t seed = 1;
    std::vector<server_config> servers = std::vector<server_config>(3);
    workload_config workload{};

    // --- clients
    arrival_model arrivals = arrival_model::closed;
    /// Closed model: users whose DNS entry is host i (size = servers, or empty for `users`
    /// users spread evenly).
    std::vector<std::uint32_t> users_per_entry{};
    std::uint32_t users = 300;
    double open_rate = 1000;  ///< open model: requests per second (Poisson)

    // --- dispatch
    std::string policy = "none";  ///< none, dpr, or an any_scheduler name
    bool per_entry = false;       ///< one scheduler per entry host (dpr always is)
    dpr_config dpr{};             ///< for "dpr" (self is set per host)
    double front_end_cost_s = 0;  ///< >0: a FIFO front end with this cost per request
    double handoff_cost_s = 0;    ///< extra back-end work per dispatched request
    double redirect_delay_s = 0.0002;  ///< extra delay of a request served off its entry host

    // --- back ends
    double per_request_s = 0.0025;
    double per_byte_s = 80e-9;
    discipline service = discipline::ps;
    std::uint32_t concurrency = 150;  ///< PS: requests served at once (the rest wait)
    double rtt_s = 0.001;             ///< network round trip added to every delay

    // --- load reports
    double report_period_s = 1.0;
    double report_delay_s = 0.002;

    // --- run
    double warmup_s = 10;       ///< nothing measured before this
    double duration_s = 100;    ///< requests stop being issued here (simulated seconds)
    std::uint64_t max_requests = 0;  ///< >0: also stop issuing after this many requests
    bool drain = false;         ///< after the end, let requests in flight complete
    double sample_period_s = 1.0;  ///< load samples for the imbalance index
    bool record_series = false;    ///< keep per-period, per-server samples (for plots)
    bool track_requests = false;   ///< count completions per request (conservation checks)
};

/// Mean, variance and percentiles of a sample.
struct summary {
    std::uint64_t count = 0;
    double mean = 0, variance = 0, p10 = 0, p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;

    /// Summarises `v` (reordered in place). Population variance (divides by n).
    [[nodiscard]] static summary of(std::vector<double>& v) {
        summary s;
        s.count = v.size();
        if (v.empty()) return s;
        double m = 0, m2 = 0, n = 0;
        for (const double x : v) {  // Welford
            n += 1;
            const double d = x - m;
            m += d / n;
            m2 += d * (x - m);
        }
        s.mean = m;
        s.variance = m2 / n;
        std::sort(v.begin(), v.end());
        const auto q = [&](double p) { return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))]; };
        s.p10 = q(0.10), s.p50 = q(0.50), s.p90 = q(0.90), s.p99 = q(0.99), s.p999 = q(0.999);
        s.max = v.back();
        return s;
    }
};

struct server_result {
    std::uint64_t served = 0;      ///< measured completions
    std::uint64_t redirected_in = 0;  ///< of which entered on another host
    double utilisation = 0;        ///< busy share of the measured time
};

struct sim_result {
    std::uint64_t issued = 0;        ///< requests issued (whole run)
    std::uint64_t completed = 0;     ///< requests completed (whole run, refused included)
    std::uint64_t refused = 0;       ///< no member could take the request
    std::uint64_t in_flight = 0;     ///< issued - completed at the end
    std::uint64_t measured = 0;      ///< completions inside the measured window
    std::uint64_t redirected = 0;    ///< measured completions served off their entry host
    double measured_s = 0;           ///< length of the measured window
    double throughput = 0;           ///< measured / measured_s, requests per second
    summary delay{};                 ///< response delay of measured requests, seconds
    summary load{};                  ///< requests at a server, sampled per server per period, pooled
    /// DPR's Table 2 load imbalance index, 1 + sqrt(sigma^2 / mu^2): at each sample instant the
    /// coefficient of variation of the requests at each server across the servers, averaged over
    /// the instants at which any server had a request (1 = perfectly even).
    double imbalance_index = 0;
    /// max over servers of served/weight, divided by the mean served per unit of weight.
    double balance_max_mean = 0;
    double utilisation_max_mean = 0;  ///< max server utilisation / mean
    double offered_load = 0;          ///< mean work per request * request rate / total speed (measured)
    std::uint64_t events = 0;
    std::vector<server_result> servers;
    /// With record_series: per sample period, per server, requests at the server and
    /// completions in the period (sample k at time warmup + (k+1) * sample_period_s).
    std::vector<std::vector<std::uint32_t>> load_series, served_series;
    /// With track_requests: completions of request i (0-based issue order); all 1 after a drain.
    std::vector<std::uint8_t> completions;
};

namespace detail {

/// splitmix64's mixer on one word: decorrelates the seeds of derived streams.
[[nodiscard]] constexpr std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) noexcept {
    clusternet::detail::split_mix g(seed ^ (stream * 0xD1B54A32D192ED03ULL));
    return g();
}

}  // namespace detail

/// The workload (file set, popularity, sizes) a simulation of `c` uses: the same seed stream,
/// so its mean_request_size() is the one the simulation will see. O(files); throws what
/// workload's constructor throws.
[[nodiscard]] inline workload workload_of(const sim_config& c) { return workload(c.workload, detail::derive_seed(c.seed, 1)); }

/// One simulation: configure, run() once, read the result.
class cluster_sim {
public:
    /// Validates the configuration (std::invalid_argument with the field named) and builds the
    /// view, the workload and the schedulers (what cluster_view and any_scheduler throw).
    explicit cluster_sim(sim_config c) : cfg_(std::move(c)), wl_(workload_of(cfg_)) {
        validate();
        const std::size_t n = cfg_.servers.size();
        // dpr: every host keeps its own load table (its own view), knows its own load at once and
        // learns its peers' from their reports; other policies share one view.
        local_views_ = cfg_.policy == "dpr";
        const std::size_t views = local_views_ ? n : 1;
        for (std::size_t v = 0; v < views; ++v) {
            views_.push_back(std::make_unique<cluster_view>(cluster_view_config{n, 1}));
            views_.back()->update([&](cluster_editor& e) {  // one snapshot for all members
                for (std::size_t i = 0; i < n; ++i)             // 10.0.0.0/8, one address per back end
                    (void)e.add(member_config::v4(ipv4_address(0x0A000000U + static_cast<std::uint32_t>(i)),
                                                  cfg_.servers[i].weight));
            });
            readers_.push_back(views_.back()->make_reader());
        }
        servers_.resize(n);
        for (std::size_t i = 0; i < n; ++i) {
            servers_[i].speed = cfg_.servers[i].speed;
            servers_[i].limit = cfg_.service == discipline::fifo ? 1U : cfg_.concurrency;
        }
        const bool per_entry = cfg_.per_entry || cfg_.policy == "dpr" || cfg_.policy == "none";
        const std::size_t instances = per_entry ? n : 1;
        for (std::size_t i = 0; i < instances; ++i) {
            const std::uint64_t s = detail::derive_seed(cfg_.seed, 100 + i);
            if (cfg_.policy == "none") {
                policies_.emplace_back(std::monostate{});
            } else if (cfg_.policy == "dpr") {
                dpr_config d = cfg_.dpr;
                d.self = static_cast<member_id>(i);
                d.seed = s;
                policies_.emplace_back(dpr_threshold(d));
            } else {
                policies_.emplace_back(any_scheduler(cfg_.policy, s));
            }
        }
        generations_.assign(instances, ~std::uint64_t{0});
    }

    /// Runs the simulation to its end. Call once.
    sim_result run() {
        if (ran_) throw std::logic_error("cluster_sim: run() may be called once");
        ran_ = true;
        rng g(detail::derive_seed(cfg_.seed, 2));
        arrivals_rng_ = rng(detail::derive_seed(cfg_.seed, 3));
        const std::size_t n = servers_.size();
        res_.servers.resize(n);
        // Users: entry hosts as round-robin DNS handed them out.
        if (cfg_.arrivals == arrival_model::closed) {
            std::vector<std::uint32_t> per = cfg_.users_per_entry;
            if (per.empty()) {
                per.assign(n, cfg_.users / static_cast<std::uint32_t>(n));
                for (std::uint32_t i = 0; i < cfg_.users % n; ++i) ++per[i];
            }
            for (std::size_t e = 0; e < n; ++e)
                for (std::uint32_t k = 0; k < per[e]; ++k) user_entry_.push_back(static_cast<std::uint32_t>(e));
            for (std::uint32_t u = 0; u < user_entry_.size(); ++u)
                q_.push(wl_.sample_think(g) * arrivals_rng_.uniform(), ev{kind::user_wake, u, 0});  // staggered start
        } else {
            q_.push(arrivals_rng_.exponential(1.0 / cfg_.open_rate), ev{kind::open_arrival, 0, 0});
        }
        for (std::uint32_t s = 0; s < n; ++s) q_.push(cfg_.report_period_s * g.uniform(), ev{kind::report_sample, s, 0});
        q_.push(cfg_.warmup_s, ev{kind::measure_start, 0, 0});
        q_.push(cfg_.warmup_s + cfg_.sample_period_s, ev{kind::sample_tick, 0, 0});
        rng_ = g;

        while (!q_.empty()) {
            if (!cfg_.drain && q_.top().time > cfg_.duration_s) break;
            if (cfg_.drain && issuing_stopped() && in_flight_ == 0) break;
            const auto e = q_.pop();
            dispatch_event(e.time, e.payload);
        }
        finish(std::min(q_.now(), cfg_.duration_s));
        return std::move(res_);
    }

    [[nodiscard]] const sim_config& config() const noexcept { return cfg_; }
    [[nodiscard]] const workload& work() const noexcept { return wl_; }

private:
    enum class kind : std::uint8_t { user_wake, open_arrival, front_done, server_done, report_sample, report_deliver,
                                     sample_tick, measure_start };
    struct ev {
        kind k = kind::user_wake;
        std::uint32_t a = 0, b = 0;
    };
    struct request {
        double issued = 0;
        double work = 0;
        std::uint64_t serial = 0;
        std::uint32_t user = 0;   // closed model; ~0 for open arrivals
        std::uint32_t entry = 0;
        std::uint32_t server = 0;
        std::uint32_t file = 0;
    };
    struct server_state {
        double speed = 1;
        std::uint32_t limit = 1;
        double vtime = 0, last = 0;  // PS virtual time: service each active request has received
        std::vector<std::pair<double, std::uint32_t>> active;  // min-heap on finishing virtual time
        std::deque<std::uint32_t> waiting;
        std::uint32_t version = 0;
        double busy = 0, busy_at_report = 0, busy_at_measure = 0, report_at = 0;
        std::uint32_t redirected_period = 0;
        std::uint32_t served_period = 0;
        [[nodiscard]] std::uint32_t in_system() const noexcept {
            return static_cast<std::uint32_t>(active.size() + waiting.size());
        }
    };
    using policy = std::variant<std::monostate, dpr_threshold, any_scheduler>;

    void validate() const {
        const auto bad = [](const std::string& what) { throw std::invalid_argument("cluster_sim: " + what); };
        if (cfg_.servers.empty()) bad("servers: at least one back end is needed");
        if (cfg_.servers.size() >= max_member_slots) bad("servers: at most 65534 back ends");
        for (const server_config& s : cfg_.servers)
            if (!(s.speed > 0)) bad("servers: every speed must be above 0");
        if (cfg_.arrivals == arrival_model::closed && !cfg_.users_per_entry.empty() &&
            cfg_.users_per_entry.size() != cfg_.servers.size())
            bad("users_per_entry: one count per server (" + std::to_string(cfg_.servers.size()) + ") is needed");
        if (cfg_.arrivals == arrival_model::open && !(cfg_.open_rate > 0)) bad("open_rate must be above 0");
        if (cfg_.service == discipline::ps && cfg_.concurrency == 0) bad("concurrency must be at least 1");
        if (!(cfg_.report_period_s > 0) || !(cfg_.sample_period_s > 0)) bad("report and sample periods must be above 0");
        if (!(cfg_.duration_s > cfg_.warmup_s) || cfg_.warmup_s < 0) bad("duration_s must exceed warmup_s >= 0");
        if (cfg_.per_request_s < 0 || cfg_.per_byte_s < 0 || cfg_.front_end_cost_s < 0 || cfg_.handoff_cost_s < 0 ||
            cfg_.rtt_s < 0 || cfg_.report_delay_s < 0 || cfg_.redirect_delay_s < 0)
            bad("costs and delays must not be negative");
    }

    [[nodiscard]] bool issuing_stopped() const noexcept {
        return q_.now() >= cfg_.duration_s || (cfg_.max_requests > 0 && issued_ >= cfg_.max_requests);
    }

    void dispatch_event(double now, const ev& e) {
        switch (e.k) {
            case kind::user_wake: issue(now, e.a, user_entry_[e.a]); break;
            case kind::open_arrival:
                if (issuing_stopped()) break;
                issue(now, ~std::uint32_t{0}, static_cast<std::uint32_t>(arrivals_rng_.next() % servers_.size()));
                q_.push(now + arrivals_rng_.exponential(1.0 / cfg_.open_rate), ev{kind::open_arrival, 0, 0});
                break;
            case kind::front_done: front_done(now); break;
            case kind::server_done:
                if (e.b == servers_[e.a].version) server_done(now, e.a);
                break;
            case kind::report_sample: report_sample(now, e.a); break;
            case kind::report_deliver: {
                const auto& [m, t] = pending_reports_[e.b];
                for (std::size_t v = 0; v < views_.size(); ++v)
                    if (!local_views_ || v != e.a) views_[v]->report_load(static_cast<member_id>(e.a), m, to_time_point(t));
                break;
            }
            case kind::sample_tick: sample(now); break;
            case kind::measure_start:
                measuring_ = true;
                for (server_state& s : servers_) {
                    advance(s, now);
                    s.busy_at_measure = s.busy;
                }
                break;
        }
    }

    static std::chrono::steady_clock::time_point to_time_point(double t) noexcept {
        return std::chrono::steady_clock::time_point(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::nanoseconds(static_cast<std::int64_t>(t * 1e9))));
    }

    void issue(double now, std::uint32_t user, std::uint32_t entry) {
        if (issuing_stopped()) return;
        const std::uint32_t id = alloc_request();
        request& r = reqs_[id];
        r.issued = now;
        r.user = user;
        r.entry = entry;
        r.file = wl_.sample_file(rng_);
        r.work = cfg_.per_request_s + cfg_.per_byte_s * wl_.size(r.file);
        r.serial = issued_++;
        if (cfg_.track_requests) res_.completions.push_back(0);
        ++in_flight_;
        if (cfg_.front_end_cost_s > 0) {
            front_queue_.push_back(id);
            if (front_queue_.size() == 1) q_.push(now + cfg_.front_end_cost_s, ev{kind::front_done, 0, 0});
        } else {
            route(now, id);
        }
    }

    void front_done(double now) {
        const std::uint32_t id = front_queue_.front();
        front_queue_.pop_front();
        if (!front_queue_.empty()) q_.push(now + cfg_.front_end_cost_s, ev{kind::front_done, 0, 0});
        route(now, id);
    }

    void route(double now, std::uint32_t id) {
        request& r = reqs_[id];
        const member_id m = pick(r, now);
        if (m == no_member) {
            ++res_.refused;
            complete(now, id, false);
            return;
        }
        view_of(r.entry).flow_opened(m);
        r.server = m;
        if (!std::holds_alternative<std::monostate>(policies_.front())) r.work += cfg_.handoff_cost_s;
        if (r.server != r.entry) ++servers_[r.entry].redirected_period;
        server_state& s = servers_[m];
        advance(s, now);
        if (s.active.size() < s.limit) start(s, id);
        else s.waiting.push_back(id);
        reschedule(s, m, now);
    }

    member_id pick(const request& r, double now) {
        const std::size_t inst = policies_.size() == 1 ? 0 : r.entry;
        if (local_views_) views_[r.entry]->report_load(static_cast<member_id>(r.entry), metrics_now(servers_[r.entry], now), to_time_point(now));
        const cluster_snapshot& snap = readers_[local_views_ ? r.entry : 0].refresh();
        pick_input in;
        in.hash = r.user != ~std::uint32_t{0}
                      ? clusternet::detail::hash_words(r.user, cfg_.seed, 0x75736572ULL)  // a client keeps its address
                      : rng_.next();
        in.now_ns = static_cast<std::uint64_t>(now * 1e9);
        return std::visit(
            [&](auto& p) -> member_id {
                using P = std::decay_t<decltype(p)>;
                if constexpr (std::is_same_v<P, std::monostate>) {
                    return snap.is_eligible(static_cast<member_id>(r.entry)) ? static_cast<member_id>(r.entry) : no_member;
                } else {
                    (void)refresh_scheduler(p, snap, generations_[inst]);
                    return p.pick(snap, in);
                }
            },
            policies_[inst]);
    }

    static void advance(server_state& s, double now) noexcept {
        if (!s.active.empty()) {
            s.vtime += (now - s.last) * s.speed / static_cast<double>(s.active.size());
            s.busy += now - s.last;
        }
        s.last = now;
    }
    static bool heap_later(const std::pair<double, std::uint32_t>& a, const std::pair<double, std::uint32_t>& b) noexcept {
        return a.first != b.first ? a.first > b.first : a.second > b.second;
    }
    void start(server_state& s, std::uint32_t id) {
        s.active.emplace_back(s.vtime + reqs_[id].work, id);
        std::push_heap(s.active.begin(), s.active.end(), heap_later);
    }
    void reschedule(server_state& s, std::uint32_t sid, double now) {
        ++s.version;
        if (s.active.empty()) return;
        const double left = std::max(0.0, s.active.front().first - s.vtime);
        q_.push(now + left * static_cast<double>(s.active.size()) / s.speed, ev{kind::server_done, sid, s.version});
    }

    void server_done(double now, std::uint32_t sid) {
        server_state& s = servers_[sid];
        advance(s, now);
        // The head is due now; others finishing within rounding of the same instant go too.
        const double tolerance = 1e-12 * std::max(1.0, std::abs(s.vtime));
        bool first = true;
        while (!s.active.empty() && (first || s.active.front().first <= s.vtime + tolerance)) {
            first = false;
            std::pop_heap(s.active.begin(), s.active.end(), heap_later);
            const std::uint32_t id = s.active.back().second;
            s.active.pop_back();
            view_of(reqs_[id].entry).flow_closed(static_cast<member_id>(sid));
            complete(now, id, true);
        }
        while (s.active.size() < s.limit && !s.waiting.empty()) {
            start(s, s.waiting.front());
            s.waiting.pop_front();
        }
        reschedule(s, sid, now);
    }

    void complete(double now, std::uint32_t id, bool served) {
        const request r = reqs_[id];
        free_.push_back(id);
        --in_flight_;
        ++completed_;
        if (cfg_.track_requests) ++res_.completions[r.serial];
        const double delay = now - r.issued + cfg_.rtt_s + (served && r.server != r.entry ? cfg_.redirect_delay_s : 0.0);
        if (measuring_ && now <= cfg_.duration_s && served) {
            ++res_.measured;
            delays_.push_back(delay);
            work_measured_ += r.work;
            res_.servers[r.server].served += 1;
            if (r.server != r.entry) {
                ++res_.redirected;
                ++res_.servers[r.server].redirected_in;
            }
            ++servers_[r.server].served_period;
        }
        // The user sees the response after the rest of the round trip, then thinks.
        if (r.user != ~std::uint32_t{0})
            q_.push(r.issued + delay + wl_.sample_think(rng_), ev{kind::user_wake, r.user, 0});
    }

    void report_sample(double now, std::uint32_t sid) {
        server_state& s = servers_[sid];
        const load_metrics m = metrics_now(s, now);
        s.busy_at_report = s.busy;
        s.report_at = now;
        s.redirected_period = 0;
        pending_reports_.emplace_back(m, now);
        q_.push(now + cfg_.report_delay_s, ev{kind::report_deliver, sid, static_cast<std::uint32_t>(pending_reports_.size() - 1)});
        if (!(cfg_.drain && issuing_stopped() && in_flight_ == 0))
            q_.push(now + cfg_.report_period_s, ev{kind::report_sample, sid, 0});
    }

    /// A host's four DPR metrics as its kernel would give them now: requests at the server, busy
    /// share since its last report, connections it redirected since, sockets (+1: the listener).
    load_metrics metrics_now(server_state& s, double now) const noexcept {
        advance(s, now);
        load_metrics m;
        m.open_connections = s.in_system();
        m.active_sockets = s.in_system() + 1;
        const double span = std::max(now - s.report_at, 1e-9);
        m.cpu_load = static_cast<std::uint16_t>(std::clamp((s.busy - s.busy_at_report) / span, 0.0, 1.0) *
                                                load_metrics::cpu_full_scale);
        m.redirected_connections = s.redirected_period;
        return m;
    }
    cluster_view& view_of(std::uint32_t entry) noexcept { return *views_[local_views_ ? entry : 0]; }

    void sample(double now) {
        if (now > cfg_.duration_s) return;
        std::vector<std::uint32_t> l, c;
        if (cfg_.record_series) l.reserve(servers_.size()), c.reserve(servers_.size());
        double sum = 0, sum2 = 0;
        for (const server_state& s : servers_) {
            sum += s.in_system();
            sum2 += static_cast<double>(s.in_system()) * s.in_system();
        }
        const double n = static_cast<double>(servers_.size());
        if (sum > 0) {
            const double mu = sum / n;
            cv_sum_ += std::sqrt(std::max(0.0, sum2 / n - mu * mu)) / mu;
            ++cv_samples_;
        }
        for (server_state& s : servers_) {
            load_samples_.push_back(s.in_system());
            if (cfg_.record_series) l.push_back(s.in_system()), c.push_back(s.served_period);
            s.served_period = 0;
        }
        if (cfg_.record_series) res_.load_series.push_back(std::move(l)), res_.served_series.push_back(std::move(c));
        if (now + cfg_.sample_period_s <= cfg_.duration_s) q_.push(now + cfg_.sample_period_s, ev{kind::sample_tick, 0, 0});
    }

    std::uint32_t alloc_request() {
        if (!free_.empty()) {
            const std::uint32_t id = free_.back();
            free_.pop_back();
            return id;
        }
        reqs_.emplace_back();
        return static_cast<std::uint32_t>(reqs_.size() - 1);
    }

    void finish(double end) {
        res_.issued = issued_;
        res_.completed = completed_;
        res_.in_flight = in_flight_;
        res_.events = q_.processed();
        res_.measured_s = std::max(0.0, end - cfg_.warmup_s);
        res_.throughput = res_.measured_s > 0 ? static_cast<double>(res_.measured) / res_.measured_s : 0;
        res_.delay = summary::of(delays_);
        res_.load = summary::of(load_samples_);
        res_.imbalance_index = 1.0 + (cv_samples_ > 0 ? cv_sum_ / static_cast<double>(cv_samples_) : 0.0);
        double total_w = 0, total_speed = 0, util_sum = 0, util_max = 0, share_max = 0;
        for (std::size_t i = 0; i < servers_.size(); ++i) {
            total_w += cfg_.servers[i].weight;
            total_speed += cfg_.servers[i].speed;
            advance(servers_[i], std::max(end, servers_[i].last));
            const double u = res_.measured_s > 0 ? std::min(1.0, (servers_[i].busy - servers_[i].busy_at_measure) / res_.measured_s) : 0;
            res_.servers[i].utilisation = u;
            util_sum += u;
            util_max = std::max(util_max, u);
            share_max = std::max(share_max, static_cast<double>(res_.servers[i].served) / cfg_.servers[i].weight);
        }
        const double share_mean = static_cast<double>(res_.measured) / total_w;
        res_.balance_max_mean = share_mean > 0 ? share_max / share_mean : 0;
        const double util_mean = util_sum / static_cast<double>(servers_.size());
        res_.utilisation_max_mean = util_mean > 0 ? util_max / util_mean : 0;
        res_.offered_load = res_.measured_s > 0 ? work_measured_ / res_.measured_s / total_speed : 0;
    }

    sim_config cfg_;
    workload wl_;
    bool local_views_ = false;
    std::vector<std::unique_ptr<cluster_view>> views_;  // one, or one per host (dpr)
    std::vector<cluster_reader> readers_;
    std::vector<policy> policies_;
    std::vector<std::uint64_t> generations_;
    std::vector<server_state> servers_;
    std::vector<request> reqs_;
    std::vector<std::uint32_t> free_;
    std::vector<std::uint32_t> user_entry_;
    std::deque<std::uint32_t> front_queue_;
    std::vector<std::pair<load_metrics, double>> pending_reports_;
    std::vector<double> delays_, load_samples_;
    event_queue<ev> q_;
    rng rng_{1}, arrivals_rng_{1};
    std::uint64_t issued_ = 0, completed_ = 0, in_flight_ = 0;
    double work_measured_ = 0, cv_sum_ = 0;
    std::uint64_t cv_samples_ = 0;
    bool measuring_ = false;
    bool ran_ = false;
    sim_result res_;
};

/// The DPR paper's experiment (seeds/003, section 4): three hosts, 1500 SURGE users (six client
/// machines, five processes of 50 threads) tied to the hosts 4:1:1 as round-robin DNS left them,
/// 200 s. `policy`: "none", "random" (stateless rerouting) or "dpr" (MaxLoad threshold on open
/// connections, probabilistic choice). The per-byte cost is set from the workload so that the
/// three hosts would be `utilisation` busy if the load were spread evenly (the paper does not
/// give its servers' capacity; 0.93 puts "none" at the paper's 496 requests/s). `scale` < 1
/// shrinks the users and the capacity together (the same utilisation), for quick runs.
[[nodiscard]] inline sim_config dpr_paper_config(const std::string& policy, std::uint64_t seed = 1, double duration_s = 200,
                                                 double scale = 1.0, double utilisation = 0.93) {
    sim_config c;
    c.seed = seed;
    c.policy = policy;
    const auto users = [&](double u) { return static_cast<std::uint32_t>(std::max(1.0, std::round(u * scale))); };
    c.users_per_entry = {users(1000), users(250), users(250)};
    c.duration_s = duration_s;
    c.warmup_s = std::min(10.0, duration_s / 10);
    c.dpr.max_load = 8;
    c.dpr.metric = dpr_metric::open_connections;
    c.dpr.choice = dpr_choice::inverse_load;
    c.per_request_s = 0.001 / scale;
    const workload w = workload_of(c);
    const double total_users = c.users_per_entry[0] + c.users_per_entry[1] + c.users_per_entry[2];
    const double rate = total_users / (w.mean_think() + c.rtt_s);  // requests/s with no queueing
    const double work = 3.0 * utilisation / rate;                  // mean work per request
    c.per_byte_s = std::max(0.0, work - c.per_request_s) / w.mean_request_size();
    return c;
}

/// Convenience: build and run one simulation.
[[nodiscard]] inline sim_result simulate(const sim_config& c) { return cluster_sim(c).run(); }

}  // namespace clusternet::sim
