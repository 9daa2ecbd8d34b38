// The reference layer-4 dispatchers' program: cn-lsmac (direct routing, IP-in-IP) and cn-lsnat
// (NAT, full NAT) are this with a different set of modes. Everything is a library part; this
// file only reads the configuration and wires the parts together on one io_context:
//
//   config_file ─► cluster_view (members; MACs by ARP when not given)
//                     ▲        └─► cluster_picker<any_scheduler> ─► dispatcher4 or dispatcher6
//   health_checker ───┘ (up/down)                                   ▲
//   af_packet_dispatch_loop (RX ring ─► dispatcher ─► TX ring) ─────┘
//   metrics_server (GET /metrics), a stats line every stats_interval, SIGINT/SIGTERM: clean stop
#pragma once

#include <clusternet/cluster_dispatch.hpp>
#include <clusternet/config_file.hpp>
#include <clusternet/health_check.hpp>
#include <clusternet/io/dispatch_loop.hpp>
#include <clusternet/metrics.hpp>

#include "lccp_socket.hpp"

#include <boost/asio/signal_set.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
#include <sstream>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

namespace l4 {

namespace cn = clusternet;
namespace asio = boost::asio;

inline constexpr std::string_view keys_help = R"(Configuration (a file of `key = value` lines, or --set key=value):
  interface = NAME         the interface towards the back ends (required)
  front_interface = NAME   the interface towards clients, if another one (two-legged)
  mode = MODE              the forwarding mode (see above)
  vip = ADDRESS            the cluster address (required); IPv4, or IPv6 (then the back ends,
                           local_address and gateway are IPv6 too, found by neighbour discovery
                           instead of ARP; every mode, tun as IPv6 in IPv6, RFC 2473)
  port = N                 the service port (default 80); protocol = tcp|udp (default tcp)
  backend = ADDRESS [MAC|arp] [port=N] [weight=N]
                           one line per back end; without a MAC (or `arp`) it is found by ARP
                           (IPv6: neighbour discovery, RFC 4861)
  scheduler = NAME         rr wrr lc wlc sed nq random wrandom twos sh dh hrw maglev (default rr)
  local_address = ADDRESS  this dispatcher's address: the tunnel's source, full NAT's source
                           (default: none; required by tun and fullnat)
  gateway_mac = MAC        (nat, fullnat) the next hop towards clients; or
  gateway = ADDRESS        found by ARP (IPv6: neighbour discovery) on the front interface
  capacity = N             sessions (default 1000000); seed = N (hash seed, default random)
  health = tcp|http|off    active health checks of every back end (default tcp)
  health_interval_ms = N   (default 500); health_rise = N (2); health_fall = N (2)
  metrics = ADDRESS:PORT   Prometheus endpoint (default off)
  stats_interval = N       seconds between stats lines on stdout (default 5; 0: none)
  verify_transport_checksum = BOOL  check TCP/UDP checksums of incoming packets (default false)
  rx_ring = BOOL           receive through the TPACKET_V3 ring instead of recvmmsg (default
                           false: the ring hands a block over when it is full or after 8 ms,
                           so it suits high rates; docs/io.md)
  lccp = ADDRESS           (dr, tun; IPv4) listen for LCCP on raw IP at this address of the
                           dispatcher's: a back end's forward_install (a TCP handoff moved a
                           connection to another back end) re-points the flow's session there.
                           Only the back ends' addresses are members (docs/lccp.md)
  lccp_key = HEX32         the cluster key (default the demo key 000102...0f)
  lccp_protocol = N        LCCP's IP protocol number (default 253)
)";

struct mode_choice {
    std::string_view name;
    cn::forwarding_mode mode;
};

/// Sink of the health checker: up/down into the cluster view.
struct view_health_sink {
    cn::cluster_view* view;
    std::vector<cn::member_id>* ids;
    void on_up(cn::member_index i) {
        std::printf("health: member %u up\n", unsigned(i));
        view->set_state((*ids)[i], cn::member_state::up);
    }
    void on_down(cn::member_index i, std::string_view why) {
        std::printf("health: member %u down: %.*s\n", unsigned(i), int(why.size()), why.data());
        view->set_state((*ids)[i], cn::member_state::down);
    }
};

struct settings {
    cn::config_file file;
    std::string interface, front_interface, scheduler, health;
    cn::dispatcher_config dcfg;  // every setting but the addresses, which are below
    bool v6 = false;             // the vip is IPv6: so are the back ends and local_address
    cn::ipv6_address vip, local;  // IPv4 ones v4-mapped
    std::vector<cn::member_config> members;
    std::vector<bool> resolve;  // member needs ARP
    std::optional<cn::ipv6_address> gateway;  // IPv4 v4-mapped
    std::string metrics;
    unsigned stats_interval = 5;
    bool rx_ring = false;
    std::chrono::milliseconds health_interval{500};
    unsigned rise = 2, fall = 2;
    std::optional<cn::ipv4_address> lccp;  // LCCP control (forward_install), off by default
    cn::siphash_key lccp_key{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
    int lccp_protocol = cn::lccp::default_ip_protocol;
};

inline settings read_settings(const cn::config_file& f) {
    f.reject_unknown({"interface", "front_interface", "mode", "vip", "port", "protocol", "backend", "scheduler",
                      "local_address", "gateway_mac", "gateway", "capacity", "seed", "health", "health_interval_ms",
                      "health_rise", "health_fall", "metrics", "stats_interval", "verify_transport_checksum", "rx_ring",
                      "lccp", "lccp_key", "lccp_protocol"});
    settings s;
    s.file = f;
    s.interface = f.require("interface").value;
    s.front_interface = f.get_string("front_interface", "");
    const auto& vip_entry = f.require("vip");
    s.vip = f.to_address(vip_entry, vip_entry.value);
    s.v6 = !s.vip.is_v4_mapped();
    const auto same_family = [&](const cn::config_file::entry& e, const cn::ipv6_address& a) {
        if (a.is_v4_mapped() == s.v6)
            throw cn::config_error(f.where(e.line) + e.key + ": " + (s.v6 ? "an IPv4" : "an IPv6") + " address, but the vip is " +
                                   (s.v6 ? "IPv6" : "IPv4") + " (run one dispatcher per family)");
        return a;
    };
    if (!s.v6) s.dcfg.vip = s.vip.v4();
    s.dcfg.port = static_cast<std::uint16_t>(f.get_uint("port", 80, 1, 65535));
    const std::string proto = f.get_string("protocol", "tcp");
    if (proto != "tcp" && proto != "udp") throw cn::config_error(f.name() + ": protocol must be tcp or udp, got \"" + proto + "\"");
    s.dcfg.protocol = proto == "tcp" ? cn::ip_protocol::tcp : cn::ip_protocol::udp;
    s.dcfg.table.capacity = f.get_uint("capacity", 1'000'000, 1, 100'000'000);
    s.dcfg.table.seed = f.find("seed") ? f.get_uint("seed", 0, 0, ~std::uint64_t{0})
                                       : (std::uint64_t{std::random_device{}()} << 32 | std::random_device{}());
    s.dcfg.verify_transport_checksum = f.get_bool("verify_transport_checksum", false);
    if (const auto* e = f.find("local_address")) {
        s.local = same_family(*e, f.to_address(*e, e->value));
        if (!s.v6) s.dcfg.self.address = s.local.v4();
    }
    if (const auto* e = f.find("gateway_mac")) s.dcfg.self.gateway_mac = f.to_mac(*e, e->value);
    if (const auto* e = f.find("gateway")) s.gateway = same_family(*e, f.to_address(*e, e->value));
    s.scheduler = f.get_string("scheduler", "rr");
    s.health = f.get_string("health", "tcp");
    if (s.health != "tcp" && s.health != "http" && s.health != "off")
        throw cn::config_error(f.name() + ": health must be tcp, http or off, got \"" + s.health + "\"");
    s.health_interval = std::chrono::milliseconds(f.get_uint("health_interval_ms", 500, 50, 600'000));
    s.rise = static_cast<unsigned>(f.get_uint("health_rise", 2, 1, 100));
    s.fall = static_cast<unsigned>(f.get_uint("health_fall", 2, 1, 100));
    s.metrics = f.get_string("metrics", "");
    s.stats_interval = static_cast<unsigned>(f.get_uint("stats_interval", 5, 0, 3600));
    s.rx_ring = f.get_bool("rx_ring", false);
    if (const auto* e = f.find("lccp")) {
        const auto a = f.to_address(*e, e->value);
        if (!a.is_v4_mapped() || s.v6)
            throw cn::config_error(f.where(e->line) + "lccp: LCCP is IPv4's; an IPv4 address, with an IPv4 vip");
        s.lccp = a.v4();
    }
    if (const auto* e = f.find("lccp_key")) {
        const auto k = cn::lccp::parse_key(e->value);
        if (!k) throw cn::config_error(f.where(e->line) + "lccp_key: 32 hexadecimal digits");
        s.lccp_key = *k;
    }
    s.lccp_protocol = static_cast<int>(f.get_uint("lccp_protocol", cn::lccp::default_ip_protocol, 1, 254));
    for (const auto* e : f.all("backend")) {
        const auto w = cn::config_file::words(e->value);
        if (w.empty()) throw cn::config_error(f.where(e->line) + "backend: expected ADDRESS [MAC|arp] [port=N] [weight=N]");
        cn::member_config m;
        m.address = same_family(*e, f.to_address(*e, w[0]));
        bool arp = true;
        for (std::size_t i = 1; i < w.size(); ++i) {
            if (w[i].starts_with("port=")) m.port = static_cast<std::uint16_t>(f.to_uint(*e, w[i].substr(5), 1, 65535));
            else if (w[i].starts_with("weight=")) m.weight = static_cast<std::uint32_t>(f.to_uint(*e, w[i].substr(7), 0, 1'000'000));
            else if (w[i] == "arp") arp = true;
            else {
                m.mac = f.to_mac(*e, w[i]);
                arp = false;
            }
        }
        s.members.push_back(m);
        s.resolve.push_back(arp);
    }
    if (s.members.empty()) throw cn::config_error(f.name() + ": no `backend = ADDRESS ...` line: a dispatcher needs back ends");
    s.dcfg.max_backends = s.members.size() + 16;  // room for members added later
    (void)cn::any_scheduler(s.scheduler);          // an unknown name fails here, with the list
    return s;
}

/// The dispatcher's configuration for its family: the settings' common part with the family's
/// addresses.
template <class Family>
cn::basic_dispatcher_config<Family> family_config(const settings& s) {
    if constexpr (Family::family == cn::ip_family::v4) {
        return s.dcfg;
    } else {
        const cn::dispatcher_config& c = s.dcfg;
        cn::basic_dispatcher_config<Family> d;
        d.vip = s.vip;
        d.port = c.port;
        d.protocol = c.protocol;
        d.self = {c.self.mac, s.local, c.self.gateway_mac, c.self.front_mac};
        d.table = c.table;
        d.max_backends = c.max_backends;
        d.mtu = c.mtu;
        d.first_local_port = c.first_local_port;
        d.last_local_port = c.last_local_port;
        d.port_probes = c.port_probes;
        d.verify_ip_checksum = c.verify_ip_checksum;
        d.verify_transport_checksum = c.verify_transport_checksum;
        return d;
    }
}

/// A member's address as people read it (dotted for IPv4).
inline std::string address_text(const cn::ipv6_address& a) { return a.is_v4_mapped() ? a.v4().to_string() : a.to_string(); }

/// IPv6 back ends (and gateway) without a MAC: neighbour discovery. False, having said why,
/// when one does not answer.
inline bool resolve_by_ndp(settings& s, const std::string& front, std::string_view program) {
    std::vector<cn::ipv6_address> ask;
    for (std::size_t i = 0; i < s.members.size(); ++i)
        if (s.resolve[i]) ask.push_back(s.members[i].address);
    if (!ask.empty()) {
        const auto found = cn::io::ndp_resolve(s.interface, s.dcfg.self.mac, ask);
        std::size_t k = 0;
        for (std::size_t i = 0; i < s.members.size(); ++i) {
            if (!s.resolve[i]) continue;
            if (!found[k]) {
                std::fprintf(stderr, "%.*s: back end %s did not answer neighbour solicitations on %s within 3 s: give its MAC in "
                             "the config\n", int(program.size()), program.data(), address_text(s.members[i].address).c_str(),
                             s.interface.c_str());
                return false;
            }
            s.members[i].mac = *found[k++];
            std::printf("ndp: back end %s is at %s\n", address_text(s.members[i].address).c_str(), s.members[i].mac.to_string().c_str());
        }
    }
    if (s.gateway) {
        const auto gw = cn::io::ndp_resolve(front, s.dcfg.self.front_mac, {*s.gateway});
        if (!gw[0]) {
            std::fprintf(stderr, "%.*s: the gateway %s did not answer neighbour solicitations on %s: set gateway_mac\n",
                         int(program.size()), program.data(), address_text(*s.gateway).c_str(), front.c_str());
            return false;
        }
        s.dcfg.self.gateway_mac = *gw[0];
    }
    return true;
}

template <class Family, cn::forwarding_mode Mode>
int run(settings& s, std::string_view program) {
    using picker_t = cn::cluster_picker<cn::any_scheduler>;
    using dispatcher_t = cn::basic_dispatcher<Family, Mode, picker_t>;
    const std::string front = s.front_interface.empty() ? s.interface : s.front_interface;
    s.dcfg.self.mac = cn::io::interface_mac(s.interface);
    s.dcfg.self.front_mac = cn::io::interface_mac(front);
    s.dcfg.mtu = cn::io::interface_mtu(s.interface);  // the tunnel's limit: what the back ends' link carries

    // Back ends without a MAC: ask by ARP, as LSMAC does (IPv6: by neighbour discovery).
    if constexpr (Family::family == cn::ip_family::v6) {
        if (!resolve_by_ndp(s, front, program)) return 1;
    }
    std::vector<cn::ipv4_address> ask;
    for (std::size_t i = 0; i < s.members.size(); ++i)
        if (s.resolve[i] && !s.v6) ask.push_back(s.members[i].address.v4());
    if (s.gateway && !s.v6) ask.push_back(s.gateway->v4());
    if (!ask.empty()) {
        // ARP needs a sender address; the tunnel/full NAT address, or 0.0.0.0 (an ARP probe).
        const auto found = cn::io::arp_resolve(s.interface, s.dcfg.self.mac, s.dcfg.self.address, ask);
        std::size_t k = 0;
        for (std::size_t i = 0; i < s.members.size(); ++i) {
            if (!s.resolve[i]) continue;
            if (!found[k]) {
                std::fprintf(stderr, "%.*s: back end %s did not answer ARP on %s within 3 s: give its MAC in the config\n",
                             int(program.size()), program.data(), s.members[i].address.v4().to_string().c_str(), s.interface.c_str());
                return 1;
            }
            s.members[i].mac = *found[k++];
            std::printf("arp: back end %s is at %s\n", s.members[i].address.v4().to_string().c_str(), s.members[i].mac.to_string().c_str());
        }
        if (s.gateway) {
            const auto gw = cn::io::arp_resolve(front, s.dcfg.self.front_mac, s.dcfg.self.address, {s.gateway->v4()});
            if (!gw[0]) {
                std::fprintf(stderr, "%.*s: the gateway %s did not answer ARP on %s: set gateway_mac\n", int(program.size()),
                             program.data(), address_text(*s.gateway).c_str(), front.c_str());
                return 1;
            }
            s.dcfg.self.gateway_mac = *gw[0];
        }
    }
    if constexpr (Mode == cn::forwarding_mode::nat || Mode == cn::forwarding_mode::full_nat) {
        if (s.dcfg.self.gateway_mac == cn::mac_address{}) {
            std::fprintf(stderr, "%.*s: NAT sends replies to the clients' gateway: set gateway_mac or gateway\n",
                         int(program.size()), program.data());
            return 1;
        }
    }

    cn::cluster_view_config vcfg;
    vcfg.max_members = s.dcfg.max_backends;
    cn::cluster_view view(vcfg);
    std::vector<cn::member_id> ids;
    for (auto m : s.members) {
        if (s.health != "off") m.state = cn::member_state::down;  // up once its health check passes
        ids.push_back(view.add_member(m));
    }
    asio::io_context io;
    dispatcher_t d(family_config<Family>(s), picker_t(view, cn::any_scheduler(s.scheduler, s.dcfg.table.seed)));
    typename cn::io::af_packet_dispatch_loop<dispatcher_t>::options lo;
    lo.interface = s.interface;
    lo.front_interface = s.front_interface;
    lo.rx_ring = s.rx_ring;
    cn::io::af_packet_dispatch_loop<dispatcher_t> loop(io, d, lo);

    view_health_sink sink{&view, &ids};
    cn::health_checker<view_health_sink> health(io, sink);
    if (s.health != "off") {
        for (std::size_t i = 0; i < s.members.size(); ++i) {
            cn::health_check_options h;
            h.kind = s.health == "http" ? cn::health_check_kind::http_get : cn::health_check_kind::tcp_connect;
            const std::uint16_t port = s.members[i].port != 0 ? s.members[i].port : s.dcfg.port;
            const cn::ipv6_address& a = s.members[i].address;
            if (a.is_v4_mapped()) h.target = {asio::ip::address_v4(a.v4().value), port};
            else {
                asio::ip::address_v6::bytes_type b;
                std::memcpy(b.data(), a.bytes.data(), b.size());
                h.target = {asio::ip::address_v6(b), port};
            }
            h.interval = s.health_interval;
            h.timeout = s.health_interval / 2;
            h.rise = s.rise;
            h.fall = s.fall;
            health.add(static_cast<cn::member_index>(i), h);
        }
        health.start();
    }

    const auto render = [&] {
        cn::metrics_text m;
        for (std::size_t v = 0; v < cn::dispatch_verdict_count; ++v) {
            const auto verdict = static_cast<cn::dispatch_verdict>(v);
            m.counter("clusternet_packets_total", "Packets by the dispatcher's verdict.", d.stats().count(verdict),
                      {{"verdict", cn::to_string(verdict)}});
        }
        for (std::size_t e = 1; e < cn::parse_error_count; ++e)
            if (const auto n = d.stats().malformed[e]; n != 0)
                m.counter("clusternet_malformed_total", "Packets the parser refused, by reason.", n,
                          {{"reason", cn::to_string(static_cast<cn::parse_error>(e))}});
        m.gauge("clusternet_sessions", "Live sessions in the table.", static_cast<double>(d.table().size()));
        for (std::size_t i = 0; i < ids.size(); ++i) {
            const std::string addr = address_text(s.members[i].address);
            m.counter("clusternet_backend_flows_total", "New flows scheduled to each back end.", d.scheduled(ids[i]), {{"backend", addr}});
            m.gauge("clusternet_backend_active", "Live flows on each back end.", d.active(ids[i]), {{"backend", addr}});
            m.gauge("clusternet_backend_up", "1 when the back end takes new flows.", d.picker().snapshot()[ids[i]].eligible() ? 1.0 : 0.0, {{"backend", addr}});
        }
        m.counter("clusternet_tx_dropped_total", "Frames to send that found no room.", loop.counters().send_dropped);
        m.counter("clusternet_repointed_total", "Flows re-pointed to another back end (LCCP forward_install).", d.stats().repointed);
        m.counter("clusternet_foreign_mac_total", "Frames not addressed to the dispatcher's MAC.", loop.counters().foreign_mac);
        for (std::size_t p = 0; p < loop.port_count(); ++p)
            m.counter("clusternet_tx_send_errors_total", "sendmmsg failures, by interface.", loop.socket(p).counters().tx.send_errors,
                      {{"interface", p == 0 ? s.interface : s.front_interface}});
        return m.take();
    };
    std::optional<cn::metrics_server> metrics;
    if (!s.metrics.empty()) {
        const auto colon = s.metrics.rfind(':');
        const auto addr = cn::ipv4_address::parse(s.metrics.substr(0, colon));
        if (colon == std::string::npos || !addr) throw cn::config_error(s.file.name() + ": metrics must be ADDRESS:PORT");
        const auto port = static_cast<std::uint16_t>(std::stoul(s.metrics.substr(colon + 1)));
        metrics.emplace(io, asio::ip::tcp::endpoint(asio::ip::address_v4(addr->value), port), render);
    }

    // LCCP control: forward_install from a back end re-points a handed-off connection's session.
    std::optional<examples::lccp_socket> control;
    std::uint64_t lccp_unknown = 0;  // forward_installs for no live flow of ours or no back end
    if (s.lccp) {
        if constexpr (Family::family == cn::ip_family::v4 &&
                      (Mode == cn::forwarding_mode::direct_routing || Mode == cn::forwarding_mode::tunnel)) {
            cn::lccp::member_filter<> members;
            for (const auto& m : s.members)
                if (!members.add(m.address.v4())) throw cn::config_error(s.file.name() + ": lccp: more than 64 back ends");
            control.emplace(io, *s.lccp, s.lccp_protocol, s.lccp_key, members);
            control->start([&](cn::ipv4_address, const cn::lccp::message& m) {
                if (m.cmd != cn::lccp::command::forward_install || m.receptor != cn::lccp::component::l4_switch) return;
                std::size_t i = 0;
                while (i < s.members.size() && s.members[i].address.v4().value != m.data) ++i;
                const cn::flow_key4 k{m.socket.client_ip.value, m.socket.server_ip.value, m.socket.client_port,
                                      m.socket.server_port, cn::ip_protocol::tcp, {0, 0, 0}};
                if (i == s.members.size() || !d.repoint(k, static_cast<std::uint16_t>(ids[i]), loop.now())) ++lccp_unknown;
            });
        } else {
            throw cn::config_error(s.file.name() + ": lccp: forward_install re-points sessions in the dr and tun modes only");
        }
    }

    const auto stats_line = [&](const char* what) {
        std::printf("%s: sessions %zu", what, d.table().size());
        if (control)
            std::printf(" lccp_repointed %llu lccp_unknown %llu lccp_rejected %llu", (unsigned long long)d.stats().repointed,
                        (unsigned long long)lccp_unknown, (unsigned long long)control->stats().rejected_total());
        for (std::size_t v = 0; v < cn::dispatch_verdict_count; ++v)
            if (const auto n = d.stats().count(static_cast<cn::dispatch_verdict>(v)); n != 0)
                std::printf(" %s %llu", std::string(cn::to_string(static_cast<cn::dispatch_verdict>(v))).c_str(), (unsigned long long)n);
        for (std::size_t e = 1; e < cn::parse_error_count; ++e)  // drops by reason
            if (const auto n = d.stats().malformed[e]; n != 0)
                std::printf(" malformed:%s %llu", std::string(cn::to_string(static_cast<cn::parse_error>(e))).c_str(), (unsigned long long)n);
        for (std::size_t i = 0; i < ids.size(); ++i)
            std::printf(" | %s flows %llu active %u", address_text(s.members[i].address).c_str(),
                        (unsigned long long)d.scheduled(ids[i]), d.active(ids[i]));
        std::printf(" | tx_dropped %llu foreign_mac %llu\n", (unsigned long long)loop.counters().send_dropped,
                    (unsigned long long)loop.counters().foreign_mac);
        std::fflush(stdout);
    };
    asio::steady_timer stats_timer(io);
    std::function<void()> tick = [&] {
        stats_timer.expires_after(std::chrono::seconds(s.stats_interval));
        stats_timer.async_wait([&](const boost::system::error_code& ec) {
            if (ec) return;
            stats_line("stats");
            tick();
        });
    };
    if (s.stats_interval != 0) tick();

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        std::printf("%.*s: signal %d, stopping\n", int(program.size()), program.data(), sig);
        loop.stop();
        health.stop();
        stats_timer.cancel();
        if (metrics) metrics->close();
        io.stop();
    });

    loop.start();
    std::printf("%.*s: %s on %s%s%s, vip %s:%u, %zu back ends, scheduler %s, %zu sessions of room\n", int(program.size()),
                program.data(), std::string(cn::to_string(Mode)).c_str(), s.interface.c_str(),
                s.front_interface.empty() ? "" : " (clients on ", s.front_interface.empty() ? "" : (s.front_interface + ")").c_str(),
                address_text(s.vip).c_str(), unsigned(s.dcfg.port), ids.size(), s.scheduler.c_str(), s.dcfg.table.capacity);
    std::fflush(stdout);
    io.run();
    stats_line("final");
    return 0;
}

/// main() of cn-lsmac and cn-lsnat.
inline int main(int argc, char** argv, std::string_view program, std::string_view about,
                std::initializer_list<mode_choice> modes) {
    try {
        std::string text, name = "command line";
        std::vector<std::string> sets;
        bool check = false;
        for (int i = 1; i < argc; ++i) {
            const std::string_view a = argv[i];
            if (a == "-h" || a == "--help") {
                std::printf("%.*s -- %.*s\n\nUsage: %.*s --config FILE [--set key=value]... [--check]\n\nModes:", int(program.size()),
                            program.data(), int(about.size()), about.data(), int(program.size()), program.data());
                for (const auto& m : modes) std::printf(" %.*s", int(m.name.size()), m.name.data());
                std::printf("\n\n%.*s\n--check validates the configuration and exits.\nStops cleanly on SIGINT or SIGTERM, "
                            "printing its final counters.\n",
                            int(keys_help.size()), keys_help.data());
                return 0;
            }
            if (a == "--check") check = true;
            else if ((a == "--config" || a == "--set") && i + 1 < argc) {
                if (a == "--config") {
                    name = argv[++i];
                    std::ifstream in(name);
                    if (!in) throw cn::config_error(name + ": cannot be read (does it exist, and may this user read it?)");
                    std::ostringstream ss;
                    ss << in.rdbuf();
                    text += ss.str() + "\n";
                } else {
                    sets.emplace_back(argv[++i]);
                }
            } else {
                std::fprintf(stderr, "%.*s: unknown argument \"%s\" (try --help)\n", int(program.size()), program.data(), argv[i]);
                return 2;
            }
        }
        for (const auto& kv : sets) text += kv + "\n";  // --set lines come last: they win for single keys
        settings s = read_settings(cn::config_file::parse(text, name));
        const std::string mode = s.file.get_string("mode", std::string(modes.begin()->name));
        const mode_choice* chosen = nullptr;
        for (const auto& m : modes)
            if (m.name == mode) chosen = &m;
        if (chosen == nullptr) throw cn::config_error(name + ": mode \"" + mode + "\" is not one of this program's (see --help)");
        if (s.v6 && chosen->mode == cn::forwarding_mode::tunnel && s.local == cn::ipv6_address{})
            throw cn::config_error(name + ": the IPv6 tunnel needs local_address, an IPv6 address of its own (the outer source)");
        if (s.v6 && chosen->mode == cn::forwarding_mode::full_nat && s.local == cn::ipv6_address{})
            throw cn::config_error(name + ": full NAT needs local_address, an IPv6 address of its own");
        if (s.lccp && chosen->mode != cn::forwarding_mode::direct_routing && chosen->mode != cn::forwarding_mode::tunnel)
            throw cn::config_error(name + ": lccp: forward_install re-points sessions in the dr and tun modes only (mode " + mode + ")");
        if (check) {
            std::printf("%.*s: configuration OK (%s, %zu back ends)\n", int(program.size()), program.data(), mode.c_str(), s.members.size());
            return 0;
        }
        using v4 = cn::ipv4_family;
        using v6 = cn::ipv6_family;
        switch (chosen->mode) {
            case cn::forwarding_mode::direct_routing:
                return s.v6 ? run<v6, cn::forwarding_mode::direct_routing>(s, program) : run<v4, cn::forwarding_mode::direct_routing>(s, program);
            case cn::forwarding_mode::nat:
                return s.v6 ? run<v6, cn::forwarding_mode::nat>(s, program) : run<v4, cn::forwarding_mode::nat>(s, program);
            case cn::forwarding_mode::full_nat:
                return s.v6 ? run<v6, cn::forwarding_mode::full_nat>(s, program) : run<v4, cn::forwarding_mode::full_nat>(s, program);
            case cn::forwarding_mode::tunnel:
                return s.v6 ? run<v6, cn::forwarding_mode::tunnel>(s, program) : run<v4, cn::forwarding_mode::tunnel>(s, program);
        }
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%.*s: %s\n", int(program.size()), program.data(), e.what());
        return 1;
    }
}

}  // namespace l4
