// clusternet/schedulers/dpr.hpp -- the load-sharing policy of Distributed Packet Rewriting.
//
// Available policies / when to use:
//  - dpr_threshold (Aversa and Bestavros, "Load balancing a cluster of web servers using
//    Distributed Packet Rewriting", IPCCC 2000, section 3.1; seeds/003): for a cluster with no
//    central dispatcher, where every host takes connections (round-robin DNS) and decides on each
//    SYN whether to serve it or redirect it to a peer over IP-in-IP. The host serves locally while
//    its own load is below `max_load`, or when it is the least loaded; otherwise it redirects:
//      - dpr_choice::lowest_load (the paper's "deterministic" approach): the least-loaded peer;
//      - dpr_choice::inverse_load (its "probabilistic" approach): a peer with probability
//        inversely proportional to its load (w_i / (l_i / w_i + 1) with weights w), which avoids
//        the oscillation of every host sending to the one peer that advertised the lowest load a
//        moment ago.
//
// The load is one of the paper's four metrics from the members' load reports (load_metrics, 1 s
// old at most with the default period), a linear combination of them, or the view's live-flow
// count for flows the dispatchers placed themselves; a member's load is divided by its weight (weight = capacity) when comparing
// peers, and compared raw against max_load for the local host. pick() returns config.self for
// "serve locally" and another member for "redirect"; no_member when no member (self included)
// may take the flow.
//
// State: the configuration and, for inverse_load, a splitmix64 generator (deterministic given
// the seed). Cost: O(N) per pick (one pass; inverse_load makes two).
#pragma once

#include <clusternet/scheduler.hpp>

#include <array>

namespace clusternet {

enum class dpr_choice : std::uint8_t { lowest_load, inverse_load };
enum class dpr_metric : std::uint8_t {
    open_connections,
    cpu,
    redirected_connections,
    active_sockets,
    live_flows,    ///< the view's count of flows the dispatchers placed (no report delay)
    combination,   ///< dpr_config::coefficients . (open, cpu, redirected, sockets)
};

struct dpr_config {
    member_id self = no_member;  ///< this host's slot
    double max_load = 64;        ///< MaxLoad, in units of the metric
    dpr_choice choice = dpr_choice::lowest_load;
    dpr_metric metric = dpr_metric::open_connections;
    std::uint64_t seed = 1;
    /// For dpr_metric::combination: the weights of open connections, CPU (per mille),
    /// redirected connections and active sockets ("functions that combined the above four
    /// metrics using different weights", section 3.1).
    std::array<double, 4> coefficients{1, 0, 0, 0};
};

class dpr_threshold {
public:
    static constexpr std::string_view name = "dpr";

    explicit dpr_threshold(const dpr_config& c = {}) noexcept : cfg_(c), rng_(c.seed) {}
    [[nodiscard]] const dpr_config& config() const noexcept { return cfg_; }

    void update(const cluster_snapshot& v) { guard_.set(v); }

    /// The load of member `id` by the configured metric (raw, not divided by the weight).
    [[nodiscard]] double load(const cluster_snapshot& v, member_id id) const noexcept {
        if (cfg_.metric == dpr_metric::live_flows) return v.live_flows(id);
        const load_metrics m = v.load(id);
        switch (cfg_.metric) {
            case dpr_metric::open_connections: return m.open_connections;
            case dpr_metric::cpu: return m.cpu_load;
            case dpr_metric::redirected_connections: return m.redirected_connections;
            case dpr_metric::active_sockets: return m.active_sockets;
            case dpr_metric::combination:
                return cfg_.coefficients[0] * m.open_connections + cfg_.coefficients[1] * m.cpu_load +
                       cfg_.coefficients[2] * m.redirected_connections + cfg_.coefficients[3] * m.active_sockets;
            case dpr_metric::live_flows: break;
        }
        return 0;
    }

    [[nodiscard]] member_id pick(const cluster_snapshot& v, const pick_input&) noexcept {
        CLUSTERNET_ASSERT(guard_.matches(v));
        const bool self_ok = v.is_eligible(cfg_.self);
        const double self_load = self_ok ? load(v, cfg_.self) : 0;
        if (self_ok && self_load < cfg_.max_load) return cfg_.self;
        // The least-loaded member by load per unit of weight (self wins ties).
        member_id best = self_ok ? cfg_.self : no_member;
        double best_l = self_ok ? relative(self_load, v[cfg_.self].weight) : 0;
        double inverse_sum = 0;
        for (const member_id id : v.eligible()) {
            if (id == cfg_.self) continue;
            const double l = relative(load(v, id), v[id].weight);
            inverse_sum += share(l, v[id].weight);
            if (best == no_member || l < best_l) best = id, best_l = l;
        }
        if (best == cfg_.self || best == no_member || cfg_.choice == dpr_choice::lowest_load) return best;
        // Probabilistic: peer i with probability proportional to w_i / (l_i / w_i + 1).
        double u = detail::unit_interval(rng_()) * inverse_sum;
        member_id last = best;
        for (const member_id id : v.eligible()) {
            if (id == cfg_.self) continue;
            last = id;
            u -= share(relative(load(v, id), v[id].weight), v[id].weight);
            if (u <= 0) return id;
        }
        return last;  // rounding
    }

private:
    static double relative(double l, std::uint32_t w) noexcept { return l / static_cast<double>(w); }
    // Inverse to the load per unit of weight, times the weight: with equal weights exactly the
    // paper's 1/load (shifted by one so an idle peer is not infinitely likely); with unequal
    // weights loads settle in proportion to the weights.
    static double share(double rel, std::uint32_t w) noexcept { return static_cast<double>(w) / (rel + 1.0); }
    dpr_config cfg_;
    detail::split_mix rng_;
    detail::generation_guard guard_;
};

}  // namespace clusternet
