// Tests of the layer-4 dispatcher in each forwarding mode: what it sends, where, with which
// addresses and checksums; the TCP lifecycle through it; back ends removed, replaced, drained;
// malformed and foreign packets; bursts equal single packets.
#include "dispatcher_fixture.hpp"

#include <clusternet/dispatcher.hpp>
#include <clusternet/packet_builder.hpp>
#include <clusternet/packet_checksum.hpp>

#include <doctest/doctest.h>

#include <array>
#include <map>
#include <random>
#include <set>
#include <vector>

using namespace clusternet;

namespace {

using namespace dispatcher_fixture;

const ipv4_address vip(192, 0, 2, 10);
const ipv4_address self_ip(10, 0, 0, 2);

ipv4_address backend_ip(std::uint8_t i) { return ipv4_address(10, 0, 0, static_cast<std::uint8_t>(10 + i)); }


dispatcher_config config(forwarding_mode m) {
    dispatcher_config c;
    c.vip = vip;
    c.port = 80;
    c.self = {self_mac, self_ip, gw_mac};
    c.table.capacity = 1024;
    c.table.timeouts = session_timeouts::ipvs_defaults(1);
    c.max_backends = 8;
    (void)m;
    return c;
}

template <forwarding_mode M>
void add_backends(dispatcher4<M, rr_picker>& d, std::uint16_t bport = 0) {
    dispatcher_fixture::add_backends(d, backend_ip, bport);
}

frame client_frame(std::uint32_t client, std::uint8_t flags, std::size_t payload = 0) {
    return tcp_frame(ipv4_address(0xC6336400U + client), static_cast<std::uint16_t>(40000 + client), vip, 80, flags, payload);
}

}  // namespace

TEST_SUITE("dispatcher") {

TEST_CASE("direct routing: only the MAC changes; round robin over three back ends; the flow stays put") {
    dispatcher4<forwarding_mode::direct_routing, rr_picker> d(config(forwarding_mode::direct_routing), rr_picker{});
    add_backends(d);
    std::array<std::byte, 2048> scratch{};
    std::map<std::uint32_t, mac_address> chosen;
    for (std::uint32_t c = 0; c < 30; ++c) {
        frame f = client_frame(c, SYN);
        const frame before = f;
        const auto r = d.process(f.span(), 0, scratch);
        REQUIRE(r.verdict == dispatch_verdict::new_flow);
        REQUIRE(r.out.data() == f.buf.data());
        const auto p = parsed(r.out);
        CHECK(p.ethernet().src() == self_mac);
        chosen[c] = p.ethernet().dst();
        // Everything above layer 2 is untouched.
        CHECK(std::equal(r.out.begin() + 12, r.out.end(), before.buf.begin() + 12));
    }
    for (std::uint16_t i = 0; i < 3; ++i) {
        CHECK(d.scheduled(i) == 10);
        CHECK(d.active(i) == 10);
    }
    for (std::uint32_t c = 0; c < 30; ++c) {
        frame f = client_frame(c, ACK, 100);
        const auto r = d.process(f.span(), 1, scratch);
        REQUIRE(r.verdict == dispatch_verdict::forwarded);
        CHECK(parsed(r.out).ethernet().dst() == chosen[c]);
    }
    CHECK(d.stats().count(dispatch_verdict::new_flow) == 30);
    CHECK(d.stats().count(dispatch_verdict::forwarded) == 30);
}

TEST_CASE("repoint: a handed-off flow's later packets go to its new back end, and its count moves") {
    dispatcher4<forwarding_mode::direct_routing, rr_picker> d(config(forwarding_mode::direct_routing), rr_picker{});
    add_backends(d);
    std::array<std::byte, 2048> scratch{};
    frame syn = client_frame(7, SYN);
    REQUIRE(d.process(syn.span(), 0, scratch).verdict == dispatch_verdict::new_flow);
    const flow_key4 k{ipv4_address(0xC6336400U + 7).value, vip.value, 40007, 80, ip_protocol::tcp, {0, 0, 0}};
    const session4* s = d.table().find(k, 1);
    REQUIRE(s != nullptr);
    const std::uint16_t from = s->backend, to = static_cast<std::uint16_t>((from + 1) % 3);
    CHECK(d.active(from) == 1);
    CHECK(d.repoint(k, to, 1));
    CHECK(d.active(from) == 0);
    CHECK(d.active(to) == 1);
    CHECK(d.stats().repointed == 1);
    frame ack = client_frame(7, ACK, 100);
    const auto r = d.process(ack.span(), 2, scratch);
    REQUIRE(r.verdict == dispatch_verdict::forwarded);
    CHECK(parsed(r.out).ethernet().dst() == d.backend(to).mac);
    CHECK(d.repoint(k, to, 3));  // already there: nothing changes
    CHECK(d.active(to) == 1);
    CHECK(d.stats().repointed == 1);
    // No such flow, no such back end: refused, nothing changes.
    const flow_key4 other{ipv4_address(198, 51, 100, 9).value, vip.value, 1234, 80, ip_protocol::tcp, {0, 0, 0}};
    CHECK_FALSE(d.repoint(other, to, 3));
    CHECK_FALSE(d.repoint(k, 7, 3));
    CHECK(d.table().size() == 1);
    // The flow's end is counted against its new back end.
    d.table().erase(d.table().find(k, 3));
    CHECK(d.active(to) == 0);
    CHECK(d.active(from) == 0);
}

TEST_CASE("verdicts for what is not a new flow of the service: counted, nothing sent") {
    dispatcher4<forwarding_mode::direct_routing, rr_picker> d(config(forwarding_mode::direct_routing), rr_picker{});
    add_backends(d);
    std::array<std::byte, 2048> scratch{};
    frame mid = client_frame(1, ACK);  // no SYN seen
    CHECK(d.process(mid.span(), 0, scratch).verdict == dispatch_verdict::no_session);
    frame other = tcp_frame(ipv4_address(198, 51, 100, 1), 40000, ipv4_address(192, 0, 2, 99), 80, SYN);
    CHECK(d.process(other.span(), 0, scratch).verdict == dispatch_verdict::not_ours);
    frame other_port = tcp_frame(ipv4_address(198, 51, 100, 1), 40000, vip, 22, SYN);
    CHECK(d.process(other_port.span(), 0, scratch).verdict == dispatch_verdict::not_ours);
    frame bad = client_frame(2, SYN);
    store_u8(bad.buf.data() + 14, 0x43);  // IHL 3
    CHECK(d.process(bad.span(), 0, scratch).verdict == dispatch_verdict::malformed);
    frame cut = client_frame(3, SYN);
    CHECK(d.process(cut.span().first(30), 0, scratch).verdict == dispatch_verdict::malformed);
    frame corrupt = client_frame(4, SYN);
    store_u8(corrupt.buf.data() + 14 + 8, 17);  // TTL changed, header checksum not
    CHECK(d.process(corrupt.span(), 0, scratch).verdict == dispatch_verdict::malformed);
    CHECK(d.stats().malformed[static_cast<std::size_t>(parse_error::bad_checksum)] == 1);
    CHECK(d.stats().malformed[static_cast<std::size_t>(parse_error::bad_ihl)] == 1);
    CHECK(d.stats().malformed[static_cast<std::size_t>(parse_error::truncated)] == 1);
    CHECK(d.stats().total() == 6);
    CHECK(d.table().size() == 0);
}

TEST_CASE("NAT: destination rewritten inbound, source on the reply, checksums exact, TTL down by one") {
    dispatcher4<forwarding_mode::nat, rr_picker> d(config(forwarding_mode::nat), rr_picker{});
    add_backends(d, 8080);
    std::array<std::byte, 2048> scratch{};
    frame in = client_frame(7, SYN, 0);
    const auto r = d.process(in.span(), 0, scratch);
    REQUIRE(r.verdict == dispatch_verdict::new_flow);
    const auto p = parsed(r.out);
    CHECK(p.ipv4().dst_address() == backend_ip(0));
    CHECK(p.tcp().dport() == 8080);
    CHECK(p.ipv4().src_address() == ipv4_address(0xC6336407U));
    CHECK(p.ipv4().ttl() == 63);
    CHECK(p.ethernet().dst() == backend_mac(0));
    CHECK(verify_checksums(p).ok());

    // The back end answers the client; the reply comes through the dispatcher.
    frame back = tcp_frame(backend_ip(0), 8080, ipv4_address(0xC6336407U), 40007, SYN | ACK, 0, self_mac, backend_mac(0));
    const auto rr = d.process(back.span(), 0, scratch);
    REQUIRE(rr.verdict == dispatch_verdict::reply);
    const auto q = parsed(rr.out);
    CHECK(q.ipv4().src_address() == vip);
    CHECK(q.tcp().sport() == 80);
    CHECK(q.ipv4().dst_address() == ipv4_address(0xC6336407U));
    CHECK(q.ethernet().dst() == gw_mac);
    CHECK(verify_checksums(q).ok());

    // A back end's packet to a client with no session is not ours (the kernel's business).
    frame stray = tcp_frame(backend_ip(1), 8080, ipv4_address(0xC6336409U), 40009, ACK, 0, self_mac, backend_mac(1));
    CHECK(d.process(stray.span(), 0, scratch).verdict == dispatch_verdict::not_ours);

    // Data both ways, with payload, stays exact.
    for (int i = 0; i < 5; ++i) {
        frame data = client_frame(7, ACK, 100 + static_cast<std::size_t>(i) * 301);
        const auto rd = d.process(data.span(), 1, scratch);
        REQUIRE(rd.verdict == dispatch_verdict::forwarded);
        CHECK(verify_checksums(parsed(rd.out)).ok());
        frame ans = tcp_frame(backend_ip(0), 8080, ipv4_address(0xC6336407U), 40007, ACK, 1400, self_mac, backend_mac(0));
        const auto ra = d.process(ans.span(), 1, scratch);
        REQUIRE(ra.verdict == dispatch_verdict::reply);
        CHECK(verify_checksums(parsed(ra.out)).ok());
    }
}

TEST_CASE("NAT's rewrite worked out once per back end gives what nat_rewrite gives, bit for bit") {
    // The dispatcher rewrites inbound NAT packets with checksum changes computed when the back
    // end is set (the service port is fixed); nat_rewrite::inbound computes them per packet.
    // Over random packets (TTLs, addresses, ports, payloads; TCP and UDP, UDP with checksum 0
    // too), both give the same bytes.
    std::mt19937 rng(2026);
    for (const std::uint8_t proto : {ip_protocol::tcp, ip_protocol::udp}) {
        for (const std::uint16_t bport : {std::uint16_t{8080}, std::uint16_t{0}, std::uint16_t{80}}) {
            CAPTURE(int(proto));
            CAPTURE(bport);
            auto cfg = config(forwarding_mode::nat);
            cfg.protocol = proto;
            dispatcher4<forwarding_mode::nat, rr_picker> d(cfg, rr_picker{1});
            const backend_endpoint b{backend_ip(0), backend_mac(0), bport};
            d.set_backend(0, b);
            std::array<std::byte, 2048> scratch{};
            for (int i = 0; i < 400; ++i) {
                frame f;
                const ipv4_address client(static_cast<std::uint32_t>(rng()));
                const auto sport = static_cast<std::uint16_t>(1 + rng() % 65535);
                const auto ttl = static_cast<std::uint8_t>(2 + rng() % 254);
                packet_builder pb(f.buf);
                pb.ethernet({.dst = self_mac, .src = gw_mac}).ipv4({.src = client, .dst = vip, .ttl = ttl, .id = static_cast<std::uint16_t>(rng())});
                if (proto == ip_protocol::tcp) pb.tcp({.sport = sport, .dport = 80, .seq = static_cast<std::uint32_t>(rng()), .flags = SYN});
                else pb.udp({.sport = sport, .dport = 80, .checksum = (i % 5) != 0});
                std::vector<std::byte> payload(rng() % 300);
                for (auto& x : payload) x = std::byte{static_cast<unsigned char>(rng())};
                const auto r = pb.payload(std::span<const std::byte>(payload)).finish();
                REQUIRE(r);
                f.len = r->size();
                frame expected = f;
                auto pe = parse_ethernet_packet(expected.span());
                REQUIRE(pe);
                REQUIRE(nat_rewrite::inbound(*pe, b, cfg.self));
                const auto got = d.process(f.span(), 0, scratch);
                REQUIRE(sends(got.verdict));
                CHECK(std::equal(got.out.begin(), got.out.end(), expected.buf.begin(), expected.buf.begin() + static_cast<std::ptrdiff_t>(expected.len)));
                CHECK(verify_checksums(parsed(got.out)).ok());
            }
        }
    }
}

TEST_CASE("a corrupt TCP checksum is refused when the dispatcher is told to verify it") {
    auto cfg = config(forwarding_mode::nat);
    cfg.verify_transport_checksum = true;
    dispatcher4<forwarding_mode::nat, rr_picker> d(cfg, rr_picker{});
    add_backends(d, 8080);
    std::array<std::byte, 2048> scratch{};
    frame ok = client_frame(1, SYN, 100);
    CHECK(d.process(ok.span(), 0, scratch).verdict == dispatch_verdict::new_flow);
    frame bad = client_frame(2, SYN, 100);
    bad.buf[bad.len - 1] ^= std::byte{0x40};  // a payload bit flipped
    CHECK(d.process(bad.span(), 0, scratch).verdict == dispatch_verdict::malformed);
    CHECK(d.stats().malformed[static_cast<std::size_t>(parse_error::bad_checksum)] == 1);
}

TEST_CASE("NAT and full NAT: a client reusing its port at once gets a new flow, not a dropped SYN") {
    // Connection: close from a client that cycles through few ports: the new SYN finds the old
    // session closing (time_wait), reopens it and must be scheduled again straight away. The
    // reply key it needs may be the one the old connection had.
    dispatcher4<forwarding_mode::nat, rr_picker> nat(config(forwarding_mode::nat), rr_picker{1});
    dispatcher4<forwarding_mode::full_nat, rr_picker> fnat(config(forwarding_mode::full_nat), rr_picker{1});
    add_backends(nat, 8080);
    add_backends(fnat, 8080);
    std::array<std::byte, 2048> scratch{};
    for (int round = 0; round < 3; ++round) {
        for (const std::uint8_t flags : {SYN, ACK, std::uint8_t(FIN | ACK), ACK}) {
            frame a = client_frame(9, flags), b = client_frame(9, flags);
            const auto ra = nat.process(a.span(), static_cast<std::uint32_t>(round), scratch);
            const auto rb = fnat.process(b.span(), static_cast<std::uint32_t>(round), scratch);
            CHECK(ra.verdict == (flags == SYN ? dispatch_verdict::new_flow : dispatch_verdict::forwarded));
            CHECK(rb.verdict == (flags == SYN ? dispatch_verdict::new_flow : dispatch_verdict::forwarded));
        }
        // The back end's FIN makes it last_ack, the client's ACK time_wait: the next SYN reopens.
    }
    CHECK(nat.stats().count(dispatch_verdict::no_port) == 0);
    CHECK(fnat.stats().count(dispatch_verdict::no_port) == 0);
    CHECK(nat.active(0) == 1);
    CHECK(fnat.active(0) == 1);
}

TEST_CASE("NAT: a packet with TTL 1 is not forwarded") {
    dispatcher4<forwarding_mode::nat, rr_picker> d(config(forwarding_mode::nat), rr_picker{});
    add_backends(d, 8080);
    std::array<std::byte, 2048> scratch{};
    frame f;
    auto r = packet_builder(f.buf)
                 .ethernet({.dst = self_mac, .src = gw_mac})
                 .ipv4({.src = ipv4_address(198, 51, 100, 1), .dst = vip, .ttl = 1})
                 .tcp({.sport = 40000, .dport = 80, .flags = SYN})
                 .finish();
    REQUIRE(r);
    f.len = r->size();
    CHECK(d.process(f.span(), 0, scratch).verdict == dispatch_verdict::ttl_exceeded);
}

TEST_CASE("full NAT: the back end sees the dispatcher; distinct local ports; the reply finds its client") {
    dispatcher4<forwarding_mode::full_nat, rr_picker> d(config(forwarding_mode::full_nat), rr_picker{1});
    d.set_backend(0, {backend_ip(0), backend_mac(0), 8080});
    std::array<std::byte, 2048> scratch{};
    std::set<std::uint16_t> ports;
    for (std::uint32_t c = 0; c < 200; ++c) {
        frame in = client_frame(c, SYN);
        const auto r = d.process(in.span(), 0, scratch);
        REQUIRE(r.verdict == dispatch_verdict::new_flow);
        const auto p = parsed(r.out);
        CHECK(p.ipv4().src_address() == self_ip);
        CHECK(p.ipv4().dst_address() == backend_ip(0));
        CHECK(p.tcp().dport() == 8080);
        CHECK(verify_checksums(p).ok());
        const std::uint16_t lport = p.tcp().sport();
        CHECK(lport >= 1024);
        CHECK(ports.insert(lport).second);  // every flow its own port towards this back end

        frame back = tcp_frame(backend_ip(0), 8080, self_ip, lport, SYN | ACK, 10, self_mac, backend_mac(0));
        const auto rr = d.process(back.span(), 0, scratch);
        REQUIRE(rr.verdict == dispatch_verdict::reply);
        const auto q = parsed(rr.out);
        CHECK(q.ipv4().src_address() == vip);
        CHECK(q.tcp().sport() == 80);
        CHECK(q.ipv4().dst_address() == ipv4_address(0xC6336400U + c));
        CHECK(q.tcp().dport() == 40000 + c);
        CHECK(verify_checksums(q).ok());
    }
}

TEST_CASE("full NAT: a range of two ports serves two flows, the third gets no_port") {
    auto cfg = config(forwarding_mode::full_nat);
    cfg.first_local_port = 5000;
    cfg.last_local_port = 5001;
    dispatcher4<forwarding_mode::full_nat, rr_picker> d(cfg, rr_picker{1});
    d.set_backend(0, {backend_ip(0), backend_mac(0), 8080});
    std::array<std::byte, 2048> scratch{};
    for (std::uint32_t c = 0; c < 2; ++c) {
        frame in = client_frame(c, SYN);
        CHECK(d.process(in.span(), 0, scratch).verdict == dispatch_verdict::new_flow);
    }
    frame third = client_frame(2, SYN);
    CHECK(d.process(third.span(), 0, scratch).verdict == dispatch_verdict::no_port);
    CHECK(d.table().size() == 2);
    CHECK(d.active(0) == 2);
}

TEST_CASE("tunnel: IP-in-IP to the back end, the inner packet as it was, the outer header right") {
    dispatcher4<forwarding_mode::tunnel, rr_picker> d(config(forwarding_mode::tunnel), rr_picker{});
    add_backends(d);
    std::array<std::byte, 2048> scratch{};
    frame in = client_frame(5, SYN, 200);
    const frame before = in;
    const auto r = d.process(in.span(), 0, scratch);
    REQUIRE(r.verdict == dispatch_verdict::new_flow);
    CHECK(r.out.data() == scratch.data());
    CHECK(r.out.size() == before.len + 20);
    parse_options opt;
    opt.decapsulate = true;
    const auto p = parsed(r.out, opt);
    REQUIRE(p.is_tunnelled());
    CHECK(p.ethernet().dst() == backend_mac(0));
    CHECK(p.outer_ipv4().dst_address() == backend_ip(0));
    CHECK(p.outer_ipv4().src_address() == self_ip);
    CHECK(p.outer_ipv4().protocol() == ip_protocol::ipip);
    CHECK(p.outer_ipv4().dont_fragment());
    CHECK(p.outer_ipv4().checksum_ok());
    tunnel_error why{};
    const auto inner = ipip_decap::inner(p, backend_ip(0), why);
    REQUIRE(why == tunnel_error::none);
    CHECK(std::equal(inner.begin(), inner.end(), before.buf.begin() + 14, before.buf.begin() + static_cast<std::ptrdiff_t>(before.len)));
    CHECK(ipip_decap::inner(p, backend_ip(1), why).empty());
    CHECK(why == tunnel_error::not_for_us);

    // 1500 bytes of IP, 1520 once wrapped: with DF (the builder's default, and every TCP stack's)
    // the client is told the size that fits, from the dispatcher's address, by the way it came.
    frame big = client_frame(6, SYN, 1460);
    const frame big_before = big;
    const auto fr = d.process(big.span(), 0, scratch);
    REQUIRE(fr.verdict == dispatch_verdict::frag_needed);
    CHECK(towards_client(fr.verdict));
    CHECK(sends(fr.verdict));
    const auto icmp = parsed(fr.out);
    CHECK(icmp.ethernet().dst() == gw_mac);
    CHECK(icmp.ethernet().src() == self_mac);
    CHECK(icmp.ipv4().src_address() == self_ip);
    CHECK(icmp.ipv4().dst_address() == ipv4_address(0xC6336400U + 6));
    CHECK(icmp.ipv4().protocol() == ip_protocol::icmp);
    CHECK(icmp.ipv4().checksum_ok());
    REQUIRE(fr.out.size() == 14 + 20 + 8 + 20 + 8);  // ICMP header, the original IP header and 8 bytes of it
    CHECK(icmp.ipv4().total_length() == fr.out.size() - 14);
    const auto m = fr.out.subspan(14 + 20);
    CHECK(std::to_integer<int>(m[0]) == 3);  // destination unreachable
    CHECK(std::to_integer<int>(m[1]) == 4);  // fragmentation needed and DF set
    CHECK(load_be16(m.data() + 6) == 1500 - 20);  // RFC 1191: the next-hop MTU
    CHECK(checksum_verifies(m));
    CHECK(std::equal(m.begin() + 8, m.end(), big_before.buf.begin() + 14));
    CHECK(d.table().size() == 1);  // the refused first packet left no session behind
    CHECK(d.active(1) == 0);
    CHECK(d.stats().verdicts[static_cast<std::size_t>(dispatch_verdict::frag_needed)] == 1);

    // Without DF there is nothing to tell (a router would fragment; the tunnel does not): dropped.
    frame nodf;
    auto built = packet_builder(nodf.buf)
                     .ethernet({.dst = self_mac, .src = gw_mac})
                     .ipv4({.src = ipv4_address(0xC6336400U + 7), .dst = vip, .dont_fragment = false})
                     .tcp({.sport = 40007, .dport = 80, .seq = 1000, .ack = 1, .flags = SYN})
                     .payload(1460)
                     .finish();
    REQUIRE(built);
    nodf.len = built->size();
    CHECK(d.process(nodf.span(), 0, scratch).verdict == dispatch_verdict::too_big);
    CHECK(d.table().size() == 1);
}

TEST_CASE("a removed back end: its flows end as their packets come, new flows go elsewhere") {
    dispatcher4<forwarding_mode::direct_routing, rr_picker> d(config(forwarding_mode::direct_routing), rr_picker{});
    add_backends(d);
    std::array<std::byte, 2048> scratch{};
    for (std::uint32_t c = 0; c < 6; ++c) {
        frame f = client_frame(c, SYN);
        REQUIRE(d.process(f.span(), 0, scratch).verdict == dispatch_verdict::new_flow);
    }
    REQUIRE(d.active(1) == 2);
    d.remove_backend(1);
    CHECK(d.active(1) == 0);
    std::size_t gone = 0, kept = 0;
    for (std::uint32_t c = 0; c < 6; ++c) {
        frame f = client_frame(c, ACK);
        const auto v = d.process(f.span(), 1, scratch).verdict;
        gone += v == dispatch_verdict::backend_gone;
        kept += v == dispatch_verdict::forwarded;
    }
    CHECK(gone == 2);
    CHECK(kept == 4);
    CHECK(d.table().size() == 4);
    // The picker still names slot 1 now and then: those flows get no_backend, not a dead machine.
    std::size_t refused = 0;
    for (std::uint32_t c = 10; c < 16; ++c) {
        frame f = client_frame(c, SYN);
        refused += d.process(f.span(), 1, scratch).verdict == dispatch_verdict::no_backend;
    }
    CHECK(refused == 2);
    // Back again in the same slot: a new generation, counts from zero, old flows do not return.
    d.set_backend(1, {backend_ip(1), backend_mac(1), 0});
    CHECK(d.active(1) == 0);
}

TEST_CASE("draining: counts fall to zero as flows close and time out") {
    dispatcher4<forwarding_mode::direct_routing, rr_picker> d(config(forwarding_mode::direct_routing), rr_picker{});
    add_backends(d);
    std::array<std::byte, 2048> scratch{};
    for (std::uint32_t c = 0; c < 9; ++c) {
        frame f = client_frame(c, SYN);
        REQUIRE(d.process(f.span(), 0, scratch).verdict == dispatch_verdict::new_flow);
        frame a = client_frame(c, ACK);
        REQUIRE(d.process(a.span(), 0, scratch).verdict == dispatch_verdict::forwarded);
    }
    CHECK(d.active(0) == 3);
    // Client closes: fin_wait (2 minutes with one-tick-a-second timeouts), then gone.
    for (std::uint32_t c = 0; c < 9; c += 3) {
        frame f = client_frame(c, FIN | ACK);
        REQUIRE(d.process(f.span(), 10, scratch).verdict == dispatch_verdict::forwarded);
    }
    CHECK(d.active(0) == 3);
    d.table().expire(10 + 121, d.table().capacity());
    CHECK(d.active(0) == 0);
    CHECK(d.active(1) == 3);
}

TEST_CASE("a burst gives the same verdicts and bytes as one packet at a time") {
    using D = dispatcher4<forwarding_mode::nat, rr_picker>;
    D one(config(forwarding_mode::nat), rr_picker{});
    D many(config(forwarding_mode::nat), rr_picker{});
    add_backends(one, 8080);
    add_backends(many, 8080);
    std::vector<frame> input;
    for (std::uint32_t i = 0; i < 150; ++i) {
        const std::uint32_t c = i % 50;
        frame f = i < 50 ? client_frame(c, SYN) : i % 7 == 0 ? tcp_frame(backend_ip(0), 8080, ipv4_address(0xC6336400U + c), static_cast<std::uint16_t>(40000 + c), ACK, 10, self_mac, backend_mac(0))
                                         : client_frame(c, ACK, i);
        if (i == 77) f.len = 20;  // malformed
        input.push_back(f);
    }
    check_burst_equals_singles(one, many, input, 3);
}

TEST_CASE("configurations that cannot work are refused with a message") {
    auto c = config(forwarding_mode::nat);
    c.vip = ipv4_address{};
    CHECK_THROWS_WITH_AS((dispatcher4<forwarding_mode::nat, rr_picker>(c, rr_picker{})),
                         doctest::Contains("vip"), std::invalid_argument);
    c = config(forwarding_mode::full_nat);
    c.self.address = vip;
    CHECK_THROWS_AS((dispatcher4<forwarding_mode::full_nat, rr_picker>(c, rr_picker{})), std::invalid_argument);
    c = config(forwarding_mode::direct_routing);
    c.protocol = ip_protocol::icmp;
    CHECK_THROWS_AS((dispatcher4<forwarding_mode::direct_routing, rr_picker>(c, rr_picker{})), std::invalid_argument);
    dispatcher4<forwarding_mode::direct_routing, rr_picker> d(config(forwarding_mode::direct_routing), rr_picker{});
    CHECK_THROWS_AS(d.set_backend(8, {}), std::out_of_range);
}

}  // TEST_SUITE
