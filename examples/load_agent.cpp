// cn-load-agent -- announce this node's load by multicast (DPR's load reports), and/or listen to
// the configured members' reports and print the member table as it changes; optionally
// health-check members (TCP connect, HTTP GET) as keepalived does.
//
//   cn-load-agent --announce --node-id 2 --interface 10.9.0.2
//   cn-load-agent --listen --member 1=10.9.0.1 --member 2=10.9.0.2 --interface 10.9.0.9
//
// Every change is one `event` line on standard output (flushed at once, for scripts), followed by
// the member table unless --events-only; SIGINT/SIGTERM stop it cleanly (the announcer sends a
// last report flagged `leaving`) and print the counters.
//
// Exit status: 0 fine; 1 a socket or /proc error at setup; 2 bad command line.
#include <clusternet/health_check.hpp>
#include <clusternet/host_load.hpp>
#include <clusternet/load_reporter.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace cn = clusternet;
namespace asio = boost::asio;

namespace {

constexpr int exit_ok = 0, exit_setup = 1, exit_usage = 2;

constexpr const char* usage_text = R"(usage: cn-load-agent [--announce] [--listen] [options]

Announces this node's load (DPR's four metrics: open TCP connections, CPU load, redirected
connections, active sockets) by UDP multicast every period, and/or listens to the reports of the
configured members, marks a member down when it is silent for --dead-after periods (or says it is
leaving), up again when it reports, and prints the member table whenever it changes.

roles (at least one):
  --announce                 send this node's load report every period (needs --node-id)
  --listen                   receive reports from the --member list and print the table

options:
  --node-id N                this node's id, 1-65535
  --member ID=ADDR           a configured member: its node id and the IPv4 address it sends
                             from; repeat for each. Reports from anyone else are counted and
                             dropped.
  --group ADDR[:PORT]        multicast group and UDP port (default 239.255.77.1:7411)
  --interface ADDR           local IPv4 address of the interface to send from and to join the
                             group on (default: the routing table decides, which needs a route
                             for 224.0.0.0/4)
  --period-ms N              report period in ms, 1-65535 (default 1000)
  --dead-after N             silent periods before a member is down (default 3)
  --weight N                 the weight to announce (default 1)
  --draining                 announce that this node takes no new flows
  --ttl N                    multicast TTL (default 1: this segment only)
  --no-loopback              do not deliver our own reports to listeners on this host
  --redirected N             the redirected-connections metric to announce (default 0; a DPR
                             node reports its own count)
  --health-tcp ID=HOST:PORT  TCP-connect check of member ID (with --listen)
  --health-http ID=URL       HTTP GET check of member ID, URL http://HOST:PORT/PATH
  --expect-status N          HTTP status the check expects (default 200)
  --expect-body TEXT         text the HTTP body must contain (default: not checked)
  --health-interval-ms N     (default 2000)
  --health-timeout-ms N      (default 1000)
  --rise N, --fall N         successes / failures in a row to go up / down (default 2 / 3)
  --duration S               exit after S seconds (default 0: run until SIGINT or SIGTERM)
  --events-only              print the event lines, not the table
  -h, --help                 this text

output: one line per change, e.g.
  event up member=1 node=2 addr=10.9.0.2 source=reports
  event down member=1 node=2 addr=10.9.0.2 source=reports reason="..."
then the table; at exit a `counters` line per part.

exit status: 0 fine, 1 setup error (socket, interface, /proc), 2 bad command line.
)";

struct usage_error {
    std::string message;
};

struct health_spec {
    std::uint16_t node_id;
    cn::health_check_kind kind;
    asio::ip::tcp::endpoint target;
    std::string path;
};

struct options {
    bool announce = false, listen = false, draining = false, loopback = true, events_only = false;
    std::uint16_t node_id = 0, weight = 1;
    std::vector<cn::reporting_member> members;
    asio::ip::address_v4 group = asio::ip::make_address_v4("239.255.77.1");
    std::uint16_t port = 7411;
    asio::ip::address_v4 interface{};
    unsigned period_ms = 1000, dead_after = 3, ttl = 1, rise = 2, fall = 3;
    unsigned health_interval_ms = 2000, health_timeout_ms = 1000, expect_status = 200;
    std::string expect_body;
    std::uint32_t redirected = 0;
    std::vector<health_spec> health;
    double duration = 0;
};

template <class T>
T number(std::string_view opt, std::string_view s, T lo, T hi) {
    T v{};
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v < lo || v > hi)
        throw usage_error{std::string(opt) + ": '" + std::string(s) + "' is not a number from " + std::to_string(lo) +
                          " to " + std::to_string(hi)};
    return v;
}

asio::ip::address_v4 v4(std::string_view opt, std::string_view s) {
    boost::system::error_code ec;
    const auto a = asio::ip::make_address_v4(std::string(s), ec);
    if (ec) throw usage_error{std::string(opt) + ": '" + std::string(s) + "' is not an IPv4 address"};
    return a;
}

std::pair<std::string_view, std::string_view> split(std::string_view opt, std::string_view s, char c) {
    const std::size_t at = s.find(c);
    if (at == std::string_view::npos) throw usage_error{std::string(opt) + ": '" + std::string(s) + "' has no '" + c + "'"};
    return {s.substr(0, at), s.substr(at + 1)};
}

asio::ip::tcp::endpoint host_port(std::string_view opt, std::string_view s) {
    const std::size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) throw usage_error{std::string(opt) + ": '" + std::string(s) + "' needs HOST:PORT"};
    return {v4(opt, s.substr(0, colon)), number<std::uint16_t>(opt, s.substr(colon + 1), 1, 65535)};
}

options parse_command_line(int argc, char** argv, bool& help) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        const auto value = [&]() -> std::string_view {
            if (i + 1 >= argc) throw usage_error{std::string(a) + " needs a value"};
            return argv[++i];
        };
        if (a == "-h" || a == "--help") {
            help = true;
            return o;
        } else if (a == "--announce") {
            o.announce = true;
        } else if (a == "--listen") {
            o.listen = true;
        } else if (a == "--draining") {
            o.draining = true;
        } else if (a == "--no-loopback") {
            o.loopback = false;
        } else if (a == "--events-only") {
            o.events_only = true;
        } else if (a == "--node-id") {
            o.node_id = number<std::uint16_t>(a, value(), 1, 65535);
        } else if (a == "--member") {
            const auto [id, addr] = split(a, value(), '=');
            o.members.push_back({number<std::uint16_t>(a, id, 1, 65535), cn::ipv4_address(v4(a, addr).to_uint())});
        } else if (a == "--group") {
            const std::string_view v = value();
            const std::size_t colon = v.find(':');
            o.group = v4(a, v.substr(0, colon));
            if (!o.group.is_multicast()) throw usage_error{"--group: " + o.group.to_string() + " is not a multicast address"};
            if (colon != std::string_view::npos) o.port = number<std::uint16_t>(a, v.substr(colon + 1), 1, 65535);
        } else if (a == "--interface") {
            o.interface = v4(a, value());
        } else if (a == "--period-ms") {
            o.period_ms = number<unsigned>(a, value(), 1, 65535);
        } else if (a == "--dead-after") {
            o.dead_after = number<unsigned>(a, value(), 1, 1000);
        } else if (a == "--weight") {
            o.weight = number<std::uint16_t>(a, value(), 0, 65535);
        } else if (a == "--ttl") {
            o.ttl = number<unsigned>(a, value(), 1, 255);
        } else if (a == "--redirected") {
            o.redirected = number<std::uint32_t>(a, value(), 0, 0xFFFFFFFFU);
        } else if (a == "--health-tcp" || a == "--health-http") {
            const auto [id, rest] = split(a, value(), '=');
            health_spec h{number<std::uint16_t>(a, id, 1, 65535), cn::health_check_kind::tcp_connect, {}, "/"};
            if (a == "--health-tcp") {
                h.target = host_port(a, rest);
            } else {
                if (!rest.starts_with("http://")) throw usage_error{"--health-http: '" + std::string(rest) + "' must start with http://"};
                std::string_view hp = rest.substr(7);
                const std::size_t slash = hp.find('/');
                if (slash != std::string_view::npos) h.path = std::string(hp.substr(slash));
                h.target = host_port(a, hp.substr(0, slash));
                h.kind = cn::health_check_kind::http_get;
            }
            o.health.push_back(std::move(h));
        } else if (a == "--expect-status") {
            o.expect_status = number<unsigned>(a, value(), 100, 599);
        } else if (a == "--expect-body") {
            o.expect_body = std::string(value());
        } else if (a == "--health-interval-ms") {
            o.health_interval_ms = number<unsigned>(a, value(), 1, 3600000);
        } else if (a == "--health-timeout-ms") {
            o.health_timeout_ms = number<unsigned>(a, value(), 1, 3600000);
        } else if (a == "--rise") {
            o.rise = number<unsigned>(a, value(), 1, 1000);
        } else if (a == "--fall") {
            o.fall = number<unsigned>(a, value(), 1, 1000);
        } else if (a == "--duration") {
            o.duration = number<unsigned>(a, value(), 0, 1000000);
        } else {
            throw usage_error{"unknown option '" + std::string(a) + "'"};
        }
    }
    if (!o.announce && !o.listen) throw usage_error{"give --announce, --listen or both"};
    if (o.announce && o.node_id == 0) throw usage_error{"--announce needs --node-id"};
    if (o.listen && o.members.empty()) throw usage_error{"--listen needs at least one --member ID=ADDR"};
    if (!o.health.empty() && !o.listen) throw usage_error{"health checks (--health-tcp/--health-http) need --listen"};
    return o;
}

// ---------------------------------------------------------------------------------------------
// The member table: what the load listener and the health checker each said of every member.

struct member_row {
    cn::member_liveness reports = cn::member_liveness::unknown;
    std::optional<cn::health_state> health;  // only for members with a check
    std::optional<cn::load_report> last;
    cn::member_clock::time_point last_at{};
};

class member_table {
public:
    member_table(const cn::member_list& m, bool events_only) : members_(m), rows_(m.size()), events_only_(events_only) {}

    /// The sink of one source ("reports" or "health").
    template <bool Health>
    struct sink {
        member_table* t;
        void on_report(cn::member_index s, const cn::load_report& r, cn::member_clock::time_point at) {
            t->rows_[s].last = r;
            t->rows_[s].last_at = at;
        }
        void on_up(cn::member_index s) { t->change(s, Health, true, {}); }
        void on_down(cn::member_index s, std::string_view reason) { t->change(s, Health, false, reason); }
    };

    void enable_health(cn::member_index s) { rows_[s].health = cn::health_state::unknown; }

    void print_table() const {
        const double t = std::chrono::duration<double>(cn::member_clock::now() - start_).count();
        std::printf("members at %.3f s:\n  %-4s %-5s %-15s %-8s %-8s %6s %8s %10s %8s %6s %-8s %s\n", t, "slot", "node",
                    "address", "reports", "health", "cpu%", "open", "redirected", "sockets", "weight", "flags",
                    "last report");
        for (std::size_t i = 0; i < rows_.size(); ++i) {
            const auto& r = rows_[i];
            const auto& m = members_[static_cast<cn::member_index>(i)];
            std::printf("  %-4zu %-5u %-15s %-8s %-8s", i, m.node_id, m.address.to_string().c_str(),
                        std::string(cn::to_string(r.reports)).c_str(),
                        r.health ? std::string(cn::to_string(*r.health)).c_str() : "-");
            if (r.last) {
                const auto& x = *r.last;
                const double age = std::chrono::duration<double>(cn::member_clock::now() - r.last_at).count();
                std::printf(" %6.2f %8u %10u %8u %6u %-8s %.1f s ago\n", x.metrics.cpu_load / 100.0,
                            x.metrics.open_connections, x.metrics.redirected_connections, x.metrics.active_sockets,
                            x.weight, x.leaving() ? "leaving" : (x.draining() ? "draining" : "-"), age);
            } else {
                std::printf(" %6s %8s %10s %8s %6s %-8s %s\n", "-", "-", "-", "-", "-", "-", "never");
            }
        }
        std::fflush(stdout);
    }

private:
    void change(cn::member_index s, bool health, bool up, std::string_view reason) {
        auto& row = rows_[s];
        if (health) row.health = up ? cn::health_state::up : cn::health_state::down;
        else row.reports = up ? cn::member_liveness::up : cn::member_liveness::down;
        const auto& m = members_[s];
        std::printf("event %s member=%u node=%u addr=%s source=%s", up ? "up" : "down", unsigned{s}, m.node_id,
                    m.address.to_string().c_str(), health ? "health" : "reports");
        if (!up) std::printf(" reason=\"%.*s\"", static_cast<int>(reason.size()), reason.data());
        std::printf("\n");
        std::fflush(stdout);
        if (!events_only_) print_table();
    }

    const cn::member_list& members_;
    std::vector<member_row> rows_;
    cn::member_clock::time_point start_ = cn::member_clock::now();
    bool events_only_;
};

using report_sink = member_table::sink<false>;
using health_sink = member_table::sink<true>;

void print_counters(const cn::receiver_counters& c, std::uint64_t receive_errors) {
    std::printf("counters listener received=%llu", static_cast<unsigned long long>(c.received()));
    for (std::size_t i = 0; i < cn::report_outcome_count; ++i)
        std::printf(" %s=%llu", std::string(cn::to_string(static_cast<cn::report_outcome>(i))).c_str(),
                    static_cast<unsigned long long>(c.outcomes[i]));
    std::printf(" went_up=%llu went_down=%llu receive_errors=%llu", static_cast<unsigned long long>(c.went_up),
                static_cast<unsigned long long>(c.went_down), static_cast<unsigned long long>(receive_errors));
    if (c.last_unmatched_node_id != 0)
        std::printf(" last_unmatched=node:%u@%s", unsigned{c.last_unmatched_node_id}, c.last_unmatched_source.to_string().c_str());
    std::printf("\n");
}

int run(const options& o) {
    asio::io_context io;
    const cn::member_list members(o.members);
    member_table table(members, o.events_only);
    report_sink rsink{&table};
    health_sink hsink{&table};

    cn::host_load_sampler sampler;
    sampler.set_redirected(o.redirected);
    bool warned = false;
    std::optional<cn::load_announcer> announcer;
    if (o.announce) {
        cn::announcer_options a;
        a.destination = {o.group, o.port};
        a.interface = o.interface;
        a.period = std::chrono::milliseconds(o.period_ms);
        a.ttl = static_cast<int>(o.ttl);
        a.loopback = o.loopback;
        a.node_id = o.node_id;
        a.weight = o.weight;
        (void)sampler.sample();  // a /proc that cannot be read is a setup error (throws)
        announcer.emplace(io, a, [&] {
            std::error_code ec;
            const cn::load_metrics m = sampler.sample(ec);
            if (ec && !warned) {
                std::fprintf(stderr, "cn-load-agent: warning: sampling /proc failed: %s (sending what could be read)\n",
                             ec.message().c_str());
                warned = true;
            }
            return m;
        });
        announcer->set_draining(o.draining);
    }

    std::optional<cn::load_listener<report_sink>> listener;
    std::optional<cn::health_checker<health_sink>> checker;
    if (o.listen) {
        cn::listener_options l;
        l.listen = {o.group, o.port};
        l.interface = o.interface;
        l.liveness = {.period = std::chrono::milliseconds(o.period_ms), .dead_after_periods = o.dead_after};
        listener.emplace(io, l, members, rsink);
        checker.emplace(io, hsink);
        for (const auto& h : o.health) {
            const auto slot = members.slot_of(h.node_id);
            if (!slot) throw usage_error{"health check of node " + std::to_string(h.node_id) + ", which is no --member"};
            cn::health_check_options c;
            c.kind = h.kind;
            c.target = h.target;
            c.path = h.path;
            c.interval = std::chrono::milliseconds(o.health_interval_ms);
            c.timeout = std::chrono::milliseconds(o.health_timeout_ms);
            c.rise = o.rise;
            c.fall = o.fall;
            c.expected_status = o.expect_status;
            c.body_contains = o.expect_body;
            checker->add(*slot, std::move(c));
            table.enable_health(*slot);
        }
    }

    std::printf("cn-load-agent: %s%s%s group %s:%u interface %s period %u ms, down after %u periods\n",
                o.announce ? ("announcing as node " + std::to_string(o.node_id)).c_str() : "",
                o.announce && o.listen ? ", " : "", o.listen ? ("listening to " + std::to_string(members.size()) + " members").c_str() : "",
                o.group.to_string().c_str(), unsigned{o.port},
                o.interface.is_unspecified() ? "(routing table)" : o.interface.to_string().c_str(), o.period_ms,
                o.dead_after);
    std::fflush(stdout);

    const auto shutdown = [&] {
        if (announcer) announcer->stop(true);
        if (listener) listener->stop();
        if (checker) checker->stop();
        io.stop();
    };
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int) {
        if (!ec) shutdown();
    });
    asio::steady_timer end(io);
    if (o.duration > 0) {
        end.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(o.duration)));
        end.async_wait([&](const boost::system::error_code& ec) {
            if (!ec) shutdown();
        });
    }

    if (announcer) announcer->start();
    if (listener) {
        listener->start();
        checker->start();
        if (!o.events_only) table.print_table();
    }
    io.run();

    if (listener) {
        if (!o.events_only) table.print_table();
        print_counters(listener->counters(), listener->receive_errors());
        const auto& h = checker->counters();
        std::printf("counters health attempts=%llu successes=%llu failures=%llu timeouts=%llu\n",
                    static_cast<unsigned long long>(h.attempts), static_cast<unsigned long long>(h.successes),
                    static_cast<unsigned long long>(h.failures), static_cast<unsigned long long>(h.timeouts));
    }
    if (announcer) {
        const auto& s = announcer->stats();
        std::printf("counters announcer sent=%llu send_errors=%llu%s%s\n", static_cast<unsigned long long>(s.sent),
                    static_cast<unsigned long long>(s.send_errors), s.send_errors ? " last_error=" : "",
                    s.send_errors ? s.last_error.message().c_str() : "");
    }
    std::fflush(stdout);
    return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        bool help = false;
        const options o = parse_command_line(argc, argv, help);
        if (help) {
            std::fputs(usage_text, stdout);
            return exit_ok;
        }
        return run(o);
    } catch (const usage_error& e) {
        std::fprintf(stderr, "cn-load-agent: %s\n(try cn-load-agent --help)\n", e.message.c_str());
        return exit_usage;
    } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "cn-load-agent: %s\n(try cn-load-agent --help)\n", e.what());
        return exit_usage;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cn-load-agent: %s\n", e.what());
        return exit_setup;
    }
}
