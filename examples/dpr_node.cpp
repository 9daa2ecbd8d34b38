// cn-dpr-node: Distributed Packet Rewriting (Aversa and Bestavros, seed 003). There is no
// central dispatcher: every node of the cluster takes connections for the cluster address (the
// clients reach the nodes by round-robin DNS or, in scripts/cluster.sh's dpr mode, by the
// router's multipath route), and on each new connection's SYN decides whether to serve it or to
// redirect it to a peer over IP-in-IP, by the DPR threshold policy (schedulers/dpr.hpp) fed by
// the peers' multicast load reports (load_reporter.hpp). The peer decapsulates and answers the
// client directly; the later packets of a redirected connection follow it through the session
// table. Everything is a library part; this file wires them:
//
//   lan0 --AF_PACKET (ETH_P_ALL tap; the kernel's copy of VIP:port dropped at netdev ingress)--
//     af_packet_dispatch_loop --> dispatcher4<tunnel, cluster_picker<dpr_threshold>>
//        (session table; a new flow picks self or a peer; IP-in-IP to that member)
//     --> to a peer: the IP-in-IP frame goes out on lan0
//     --> to self (and packets of no known flow): the inner packet into tun0, our own stack
//   raw socket (protocol 4) --> ipip_decap --> tun0           (connections peers redirect to us)
//   load_announcer (our load every period, also written straight into the view for self)
//   load_listener  (peers' reports: loads into the view, up/down by silence)
//   metrics_server (GET /metrics), a stats line every stats_interval, SIGINT/SIGTERM: clean stop
//
// A locally served packet is encapsulated to ourselves by the dispatcher and unwrapped again
// before it goes into tun0: one extra copy of a small packet, for one code path and one session
// table for both outcomes.
#include "ipip_node.hpp"

#include <clusternet/cluster_dispatch.hpp>
#include <clusternet/host_load.hpp>
#include <clusternet/io/dispatch_loop.hpp>
#include <clusternet/load_reporter.hpp>
#include <clusternet/schedulers/dpr.hpp>

#include <boost/asio/signal_set.hpp>

#include <exception>
#include <random>

namespace {

namespace cn = clusternet;
namespace asio = boost::asio;

constexpr std::string_view help = R"(cn-dpr-node -- a Distributed Packet Rewriting node: serves a new connection or redirects it to a peer

Usage: cn-dpr-node [--config FILE] [--set key=value]... [--check]

Configuration (a file of `key = value` lines, or --set key=value):
  interface = NAME         the interface clients' packets arrive on and peers are reached by (required)
  vip = ADDRESS            the cluster address (required; held by this host, e.g. on lo)
  port = N                 the service port, TCP (default 80)
  local_address = ADDRESS  this node's own address on `interface` (required): the tunnel's source,
                           the load reports' source, the outer destination peers redirect to
  node_id = N              this node's id in the load reports, 1..65535 (required)
  weight = N               this node's weight (capacity) for the peers' choice (default 1)
  peer = ADDRESS node=N [MAC] [weight=N]
                           one line per peer; without a MAC it is found by ARP
  tun = NAME               the TUN device into this host's stack (default $CN_TUN_DEV, else tun0)
  max_load = X             DPR's MaxLoad: serve locally while our load is below it (default 64)
  metric = NAME            open_connections (default), cpu (per ten thousand), redirected,
                           active_sockets, flows (live flows placed by this node)
  choice = NAME            lowest (the least-loaded member, the paper's deterministic way) or
                           inverse (a peer with probability inverse to its load; default)
  report_group = ADDRESS:PORT  the load reports' multicast group (default 239.255.77.1:7411)
  report_period_ms = N     how often each node reports (default 1000)
  dead_after_periods = N   a peer silent this many periods is dropped from the choice (default 3)
  capacity = N             sessions (default 1000000); seed = N (default random)
  metrics = ADDRESS:PORT   Prometheus endpoint (default off)
  stats_interval = N       seconds between stats lines on stdout (default 5; 0: none)

The host must not take the VIP's packets up itself (they come to this program, which hands the
local ones to tun0): drop them at netdev ingress, e.g.
  nft add table netdev dpr; nft add chain netdev dpr in '{ type filter hook ingress device "lan0" priority -500; }'
  nft add rule netdev dpr in ip daddr VIP tcp dport 80 drop
--check validates the configuration and exits. Stops cleanly on SIGINT or SIGTERM (a last load
report flagged `leaving` tells the peers at once), printing its final counters.
)";

std::string env_or(const char* name, std::string fallback) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

struct peer_config {
    cn::ipv4_address address{};
    std::uint16_t node_id = 0;
    std::optional<cn::mac_address> mac;
    std::uint32_t weight = 1;
};

struct settings {
    std::string interface, tun;
    cn::ipv4_address vip{}, self{};
    std::uint16_t port = 80, node_id = 0;
    std::uint32_t weight = 1;
    std::vector<peer_config> peers;
    cn::dpr_config dpr{};
    asio::ip::udp::endpoint group{asio::ip::make_address_v4("239.255.77.1"), 7411};
    std::chrono::milliseconds period{1000};
    unsigned dead_after = 3;
    std::size_t capacity = 1'000'000;
    std::uint64_t seed = 0;
    std::optional<asio::ip::tcp::endpoint> metrics;
    unsigned stats_interval = 5;
};

settings read_settings(const cn::config_file& f) {
    f.reject_unknown({"interface", "vip", "port", "local_address", "node_id", "weight", "peer", "tun", "max_load", "metric",
                      "choice", "report_group", "report_period_ms", "dead_after_periods", "capacity", "seed", "metrics",
                      "stats_interval"});
    settings s;
    s.interface = f.require("interface").value;
    s.vip = f.get_ipv4("vip");
    s.port = static_cast<std::uint16_t>(f.get_uint("port", 80, 1, 65535));
    s.self = f.get_ipv4("local_address");
    if (s.self == s.vip) throw cn::config_error(f.name() + ": local_address must be this node's own address, not the vip");
    s.node_id = static_cast<std::uint16_t>(f.get_uint("node_id", 0, 1, 65535));
    if (!f.find("node_id")) throw cn::config_error(f.name() + ": node_id (1..65535) is required: the peers know this node by it");
    s.weight = static_cast<std::uint32_t>(f.get_uint("weight", 1, 1, 65535));
    s.tun = f.get_string("tun", env_or("CN_TUN_DEV", "tun0"));
    for (const auto* e : f.all("peer")) {
        const auto w = cn::config_file::words(e->value);
        if (w.empty()) throw cn::config_error(f.where(e->line) + "peer: expected ADDRESS node=N [MAC] [weight=N]");
        peer_config p;
        p.address = f.to_ipv4(*e, w[0]);
        for (std::size_t i = 1; i < w.size(); ++i) {
            if (w[i].starts_with("node=")) p.node_id = static_cast<std::uint16_t>(f.to_uint(*e, w[i].substr(5), 1, 65535));
            else if (w[i].starts_with("weight=")) p.weight = static_cast<std::uint32_t>(f.to_uint(*e, w[i].substr(7), 1, 65535));
            else p.mac = f.to_mac(*e, w[i]);
        }
        if (p.node_id == 0) throw cn::config_error(f.where(e->line) + "peer " + std::string(w[0]) + ": node=N is required");
        if (p.node_id == s.node_id || p.address == s.self)
            throw cn::config_error(f.where(e->line) + "peer " + std::string(w[0]) + ": that is this node itself");
        s.peers.push_back(p);
    }
    const std::string max_load = f.get_string("max_load", "64");
    try {
        s.dpr.max_load = std::stod(max_load);
    } catch (const std::exception&) {
        throw cn::config_error(f.name() + ": max_load must be a number, got \"" + max_load + "\"");
    }
    const std::string metric = f.get_string("metric", "open_connections");
    if (metric == "open_connections") s.dpr.metric = cn::dpr_metric::open_connections;
    else if (metric == "cpu") s.dpr.metric = cn::dpr_metric::cpu;
    else if (metric == "redirected") s.dpr.metric = cn::dpr_metric::redirected_connections;
    else if (metric == "active_sockets") s.dpr.metric = cn::dpr_metric::active_sockets;
    else if (metric == "flows") s.dpr.metric = cn::dpr_metric::live_flows;
    else throw cn::config_error(f.name() + ": metric must be open_connections, cpu, redirected, active_sockets or flows, got \"" + metric + "\"");
    const std::string choice = f.get_string("choice", "inverse");
    if (choice == "lowest") s.dpr.choice = cn::dpr_choice::lowest_load;
    else if (choice == "inverse") s.dpr.choice = cn::dpr_choice::inverse_load;
    else throw cn::config_error(f.name() + ": choice must be lowest or inverse, got \"" + choice + "\"");
    if (const auto* e = f.find("report_group")) {
        const auto colon = e->value.rfind(':');
        const auto a = colon == std::string::npos ? std::nullopt : cn::ipv4_address::parse(e->value.substr(0, colon));
        if (!a) throw cn::config_error(f.where(e->line) + "report_group must be ADDRESS:PORT");
        s.group = {asio::ip::address_v4(a->value), static_cast<std::uint16_t>(f.to_uint(*e, e->value.substr(colon + 1), 1, 65535))};
    }
    s.period = std::chrono::milliseconds(f.get_uint("report_period_ms", 1000, 10, 65535));
    s.dead_after = static_cast<unsigned>(f.get_uint("dead_after_periods", 3, 1, 1000));
    s.capacity = f.get_uint("capacity", 1'000'000, 1, 100'000'000);
    s.seed = f.find("seed") ? f.get_uint("seed", 0, 0, ~std::uint64_t{0})
                            : (std::uint64_t{std::random_device{}()} << 32 | std::random_device{}());
    s.dpr.seed = s.seed | 1;
    const std::string metrics = f.get_string("metrics", "");
    if (!metrics.empty()) s.metrics = ipip::metrics_endpoint(f, metrics);
    s.stats_interval = static_cast<unsigned>(f.get_uint("stats_interval", 5, 0, 3600));
    return s;
}

using picker_t = cn::cluster_picker<cn::dpr_threshold>;
using tunnel_t = cn::dispatcher4<cn::forwarding_mode::tunnel, picker_t>;

/// What the node did with the VIP's packets (the dispatcher counts its verdicts too).
struct node_counters {
    std::uint64_t local = 0;        ///< packets of locally served flows, into tun0
    std::uint64_t untracked = 0;    ///< packets of no known flow (or no room), served locally
    std::uint64_t redirected = 0;   ///< packets sent IP-in-IP to a peer
    std::uint64_t too_big = 0;      ///< to a peer, over the link's MTU once encapsulated, no DF: dropped
    std::uint64_t frag_needed = 0;  ///< the same with DF set: dropped, ICMP "fragmentation needed" sent back
    std::uint64_t tun_dropped = 0;  ///< the TUN device refused
};

/// The dispatcher as af_packet_dispatch_loop sees it: the tunnel dispatcher, except that what
/// it encapsulates to this node itself (and what it has no flow for) goes into the TUN device
/// instead of out on the wire. The loop then sends only the peers' frames.
class dpr_dispatcher {
public:
    using result = tunnel_t::result;

    dpr_dispatcher(const cn::dispatcher_config& cfg, picker_t picker, cn::member_id self, cn::io::tun_queue& tun, std::size_t link_mtu)
        : d_(cfg, std::move(picker)), self_(self), tun_(tun), link_mtu_(link_mtu) {}

    result process(std::span<std::byte> frame, std::uint32_t now, std::span<std::byte> scratch) noexcept {
        const auto r = d_.process(frame, now, scratch);
        switch (r.verdict) {
            case cn::dispatch_verdict::forwarded:
            case cn::dispatch_verdict::new_flow: {
                constexpr std::size_t inner_at = cn::ethernet_view::header_size + cn::ipip_encap::outer_size;
                const std::uint32_t outer_dst = cn::load_be32(r.out.data() + cn::ethernet_view::header_size + 16);
                if (outer_dst == d_.config().self.address.value) {
                    deliver(r.out.subspan(inner_at), c_.local);
                    return {cn::dispatch_verdict::not_ours, {}};
                }
                if (r.out.size() - cn::ethernet_view::header_size > link_mtu_) return too_big(frame, scratch);
                ++c_.redirected;
                return r;
            }
            case cn::dispatch_verdict::no_session:   // a connection this node took before it ran, or lost
            case cn::dispatch_verdict::table_full:   // no room to track it: serve it ourselves
            case cn::dispatch_verdict::no_backend:
            case cn::dispatch_verdict::backend_gone: {
                const auto p = cn::parse_ethernet_packet(std::span<const std::byte>(frame));
                if (p) deliver(p->ip_bytes(), c_.untracked);
                return {r.verdict, {}};
            }
            default: return r;  // not_ours (the kernel has it), malformed (counted): nothing to send
        }
    }

    // What cluster_picker::refresh and the loop ask of a dispatcher.
    [[nodiscard]] const cn::dispatcher_config& config() const noexcept { return d_.config(); }
    [[nodiscard]] tunnel_t::table_type& table() noexcept { return d_.table(); }
    [[nodiscard]] picker_t& picker() noexcept { return d_.picker(); }
    void set_backend(std::uint16_t slot, const cn::backend_endpoint& b) { d_.set_backend(slot, b); }
    void remove_backend(std::uint16_t slot) { d_.remove_backend(slot); }
    [[nodiscard]] bool has_backend(std::uint16_t slot) const noexcept { return d_.has_backend(slot); }

    [[nodiscard]] const tunnel_t& inner() const noexcept { return d_; }
    [[nodiscard]] const node_counters& counters() const noexcept { return c_; }
    [[nodiscard]] cn::member_id self() const noexcept { return self_; }

private:
    // A packet for a peer that does not fit the link once wrapped. With DF set (every TCP
    // stack's default) the client is told the size that fits (RFC 1191's next-hop MTU, link MTU
    // less the outer header), as the tunnel dispatcher does: its kernel lowers the path MTU and
    // resends smaller, where a silent drop would stall the connection for good. The ICMP
    // replaces the wrapped packet in scratch and goes back the way the packet came.
    result too_big(std::span<const std::byte> frame, std::span<std::byte> scratch) noexcept {
        if (const auto p = cn::parse_ethernet_packet(frame)) {
            if (const std::size_t n = cn::icmp_frag_needed::build_for_tunnel(*p, d_.config().self.address, link_mtu_, scratch); n != 0) {
                ++c_.frag_needed;
                return {cn::dispatch_verdict::frag_needed, scratch.first(n)};
            }
        }
        ++c_.too_big;
        return {cn::dispatch_verdict::too_big, {}};
    }

    void deliver(std::span<const std::byte> ip, std::uint64_t& counter) noexcept {
        if (!tun_.send(ip)) {
            ++c_.tun_dropped;
            return;
        }
        const auto before = tun_.counters().tx.send_errors;
        tun_.flush();  // a TUN device takes one write a packet: nothing to gain by waiting
        if (tun_.counters().tx.send_errors != before) ++c_.tun_dropped;
        else ++counter;
    }

    tunnel_t d_;
    cn::member_id self_;
    cn::io::tun_queue& tun_;
    std::size_t link_mtu_;
    node_counters c_{};
};

/// The load listener's sink: peers' loads and liveness into the cluster view.
struct view_sink {
    cn::cluster_view* view;
    const std::vector<cn::member_id>* ids;  // listener slot -> view member
    const std::vector<peer_config>* peers;
    std::function<void()> changed;  // applies a state change to the dispatcher at once
    void on_report(cn::member_index slot, const cn::load_report& r, cn::member_clock::time_point t) {
        view->report_load((*ids)[slot], r.metrics, t);
    }
    void on_down(cn::member_index slot, std::string_view why) {
        std::printf("peer %s (node %u) down: %.*s\n", (*peers)[slot].address.to_string().c_str(), unsigned((*peers)[slot].node_id),
                    int(why.size()), why.data());
        std::fflush(stdout);
        view->set_state((*ids)[slot], cn::member_state::down);
        changed();
    }
    void on_up(cn::member_index slot) {
        std::printf("peer %s (node %u) up\n", (*peers)[slot].address.to_string().c_str(), unsigned((*peers)[slot].node_id));
        std::fflush(stdout);
        view->set_state((*ids)[slot], cn::member_state::up);
        changed();
    }
};

int run(settings& s) {
    const cn::mac_address mac = cn::io::interface_mac(s.interface);
    std::vector<cn::ipv4_address> ask;
    for (const auto& p : s.peers)
        if (!p.mac) ask.push_back(p.address);
    if (!ask.empty()) {
        const auto found = cn::io::arp_resolve(s.interface, mac, s.self, ask);
        std::size_t k = 0;
        for (auto& p : s.peers) {
            if (p.mac) continue;
            if (!found[k]) {
                std::fprintf(stderr, "cn-dpr-node: peer %s did not answer ARP on %s within 3 s: give its MAC in the config\n",
                             p.address.to_string().c_str(), s.interface.c_str());
                return 1;
            }
            p.mac = *found[k++];
        }
    }

    // The view: slot 0 is this node (always up), then the peers, down until they report.
    cn::cluster_view_config vcfg;
    vcfg.max_members = s.peers.size() + 1;
    cn::cluster_view view(vcfg);
    cn::member_config me = cn::member_config::v4(s.self, s.weight);
    me.mac = mac;
    const cn::member_id self_id = view.add_member(me);
    std::vector<cn::member_id> peer_ids;
    std::vector<cn::reporting_member> reporting;
    for (const auto& p : s.peers) {
        cn::member_config m = cn::member_config::v4(p.address, p.weight);
        m.mac = *p.mac;
        m.state = cn::member_state::down;
        peer_ids.push_back(view.add_member(m));
        reporting.push_back({p.node_id, p.address});
    }
    s.dpr.self = self_id;

    asio::io_context io;
    ipip::decapsulator decap(io, s.tun, s.self);
    cn::dispatcher_config dcfg;
    dcfg.vip = s.vip;
    dcfg.port = s.port;
    dcfg.protocol = cn::ip_protocol::tcp;
    dcfg.self.mac = mac;
    dcfg.self.address = s.self;
    dcfg.table.capacity = s.capacity;
    dcfg.table.seed = s.seed;
    dcfg.max_backends = vcfg.max_members;
    dcfg.mtu = 0xFFFF;  // locally served packets of any size; dpr_dispatcher bounds the peers' by the link
    const std::size_t link_mtu = cn::io::interface_mtu(s.interface);
    if (link_mtu < 68 + cn::ipip_encap::outer_size) throw cn::config_error(s.interface + "'s MTU " + std::to_string(link_mtu) + " is too small to carry IP-in-IP");
    dpr_dispatcher d(dcfg, picker_t(view, cn::dpr_threshold(s.dpr)), self_id, decap.tun(), link_mtu);
    cn::io::af_packet_dispatch_loop<dpr_dispatcher>::options lo;
    lo.interface = s.interface;
    cn::io::af_packet_dispatch_loop<dpr_dispatcher> loop(io, d, lo);

    const auto redirected_now = [&] {
        std::uint32_t n = 0;
        for (const auto id : peer_ids) n += d.inner().active(id);
        return n;
    };
    cn::host_load_sampler sampler;
    (void)sampler.sample();  // a /proc that cannot be read is a setup error (throws)
    cn::announcer_options ao;
    ao.destination = s.group;
    ao.interface = asio::ip::address_v4(s.self.value);
    ao.period = s.period;
    ao.loopback = false;
    ao.node_id = s.node_id;
    ao.weight = static_cast<std::uint16_t>(s.weight);
    cn::load_metrics last{};
    cn::load_announcer announcer(io, ao, [&] {
        sampler.set_redirected(redirected_now());
        std::error_code ec;
        last = sampler.sample(ec);
        view.report_load(self_id, last, cn::member_clock::now());  // our own load, without the round trip
        return last;
    });
    // Between bursts (every handler runs on this one thread): the next SYN sees the change, not
    // only the one after the next wake-up's burst.
    view_sink sink{&view, &peer_ids, &s.peers, [&] { d.picker().refresh(d); }};
    cn::listener_options lopt;
    lopt.listen = s.group;
    lopt.interface = asio::ip::address_v4(s.self.value);
    lopt.liveness.period = s.period;
    lopt.liveness.dead_after_periods = s.dead_after;
    cn::load_listener<view_sink> listener(io, lopt, cn::member_list(reporting), sink);

    const auto render = [&] {
        cn::metrics_text m;
        const auto& st = d.inner().stats();
        for (std::size_t v = 0; v < cn::dispatch_verdict_count; ++v)
            m.counter("clusternet_packets_total", "Packets by the dispatcher's verdict.", st.count(static_cast<cn::dispatch_verdict>(v)),
                      {{"verdict", cn::to_string(static_cast<cn::dispatch_verdict>(v))}});
        const auto& c = d.counters();
        m.counter("clusternet_dpr_local_packets_total", "Packets of locally served flows, into the TUN device.", c.local);
        m.counter("clusternet_dpr_untracked_packets_total", "Packets of no known flow, served locally.", c.untracked);
        m.counter("clusternet_dpr_redirected_packets_total", "Packets sent IP-in-IP to a peer.", c.redirected);
        m.counter("clusternet_dpr_too_big_total", "Packets to a peer over the link MTU once encapsulated, without DF: dropped.", c.too_big);
        m.counter("clusternet_dpr_frag_needed_total", "The same with DF set: dropped, ICMP fragmentation needed sent back.", c.frag_needed);
        m.counter("clusternet_dpr_tun_dropped_total", "Packets the TUN device refused.", c.tun_dropped);
        const auto snap = view.current();
        const cn::dpr_threshold& policy = d.picker().scheduler();
        for (std::size_t i = 0; i <= peer_ids.size(); ++i) {
            const cn::member_id id = i == 0 ? self_id : peer_ids[i - 1];
            const std::string addr = i == 0 ? s.self.to_string() : s.peers[i - 1].address.to_string();
            m.counter("clusternet_dpr_flows_total", "New connections placed on each member (self: served locally).",
                      d.inner().scheduled(id), {{"member", addr}});
            m.gauge("clusternet_dpr_member_active", "Live connections this node placed on each member.", d.inner().active(id), {{"member", addr}});
            m.gauge("clusternet_dpr_member_load", "Each member's load by the configured metric.", policy.load(*snap, id), {{"member", addr}});
            m.gauge("clusternet_dpr_member_up", "1 when the member may take new connections.", (*snap)[id].eligible() ? 1.0 : 0.0, {{"member", addr}});
        }
        decap.render(m);
        m.counter("clusternet_load_reports_sent_total", "Load reports this node sent.", announcer.stats().sent);
        m.counter("clusternet_load_reports_received_total", "Load reports received from peers.", listener.counters().received());
        return m.take();
    };
    std::optional<cn::metrics_server> metrics;
    if (s.metrics) metrics.emplace(io, *s.metrics, render);

    const auto stats_line = [&](const char* what) {
        const auto snap = view.current();
        const auto& c = d.counters();
        std::printf("%s: sessions %zu local %llu redirected %llu untracked %llu too_big %llu frag_needed %llu tun_dropped %llu | self %s flows %llu load %.0f",
                    what, d.inner().table().size(), (unsigned long long)c.local, (unsigned long long)c.redirected,
                    (unsigned long long)c.untracked, (unsigned long long)c.too_big, (unsigned long long)c.frag_needed,
                    (unsigned long long)c.tun_dropped,
                    s.self.to_string().c_str(), (unsigned long long)d.inner().scheduled(self_id),
                    d.picker().scheduler().load(*snap, self_id));
        for (std::size_t i = 0; i < peer_ids.size(); ++i)
            std::printf(" | peer %s %s flows %llu active %u load %.0f", s.peers[i].address.to_string().c_str(),
                        (*snap)[peer_ids[i]].eligible() ? "up" : "down", (unsigned long long)d.inner().scheduled(peer_ids[i]),
                        d.inner().active(peer_ids[i]), d.picker().scheduler().load(*snap, peer_ids[i]));
        std::printf(" | decap %s\n", decap.summary().c_str());
        std::fflush(stdout);
    };
    ipip::periodic stats(io, s.stats_interval, [&] { stats_line("stats"); });

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        std::printf("cn-dpr-node: signal %d, stopping\n", sig);
        announcer.stop(true);  // a last report flagged leaving: the peers drop us at once
        listener.stop();
        loop.stop();
        decap.stop();
        stats.cancel();
        if (metrics) metrics->close();
        io.stop();
    });

    decap.start();
    listener.start();
    announcer.start();
    loop.start();
    stats.start();
    std::printf("cn-dpr-node: node %u at %s on %s, vip %s:%u, %zu peers, max_load %g, tun %s\n", unsigned(s.node_id),
                s.self.to_string().c_str(), s.interface.c_str(), s.vip.to_string().c_str(), unsigned(s.port), s.peers.size(),
                s.dpr.max_load, s.tun.c_str());
    std::fflush(stdout);
    io.run();
    stats_line("final");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        auto cl = ipip::read_command_line(argc, argv, "cn-dpr-node", help);
        if (!cl.config) return cl.exit_code;
        settings s = read_settings(*cl.config);
        if (cl.check) {
            std::printf("cn-dpr-node: configuration OK (node %u, %zu peers)\n", unsigned(s.node_id), s.peers.size());
            return 0;
        }
        return run(s);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cn-dpr-node: %s\n", e.what());
        return 1;
    }
}
