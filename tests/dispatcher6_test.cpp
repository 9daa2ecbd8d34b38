// Tests of the IPv6 dispatcher (dispatcher6): direct routing, NAT and full NAT over IPv6, with
// the transport checksum checked against a full recompute, the hop limit, extension headers,
// fragments, the TCP lifecycle, a family mix on one link (each dispatcher ignores the other's),
// and bursts equal to single packets.
#include "dispatcher_fixture.hpp"

#include <clusternet/dispatcher.hpp>
#include <clusternet/packet_builder.hpp>
#include <clusternet/packet_checksum.hpp>

#include <doctest/doctest.h>

#include <array>
#include <map>
#include <set>
#include <vector>

using namespace clusternet;

namespace {

using namespace dispatcher_fixture;

ipv6_address v6(std::string_view s) { return ipv6_address::parse(s).value(); }  // also at static init: no REQUIRE
const ipv6_address vip = v6("2001:db8:10::80");
const ipv6_address self_ip = v6("2001:db8:1::2");

ipv6_address backend_ip(std::uint8_t i) {
    ipv6_address a = v6("2001:db8:1::");
    a.bytes[15] = std::byte{static_cast<unsigned char>(0x10 + i)};
    return a;
}
ipv6_address client_ip(std::uint32_t c) {
    ipv6_address a = v6("2001:db8:c::");
    a.bytes[12] = std::byte{static_cast<unsigned char>(c >> 24)};
    a.bytes[13] = std::byte{static_cast<unsigned char>(c >> 16)};
    a.bytes[14] = std::byte{static_cast<unsigned char>(c >> 8)};
    a.bytes[15] = std::byte{static_cast<unsigned char>(c)};
    return a;
}

dispatcher6_config config() {
    dispatcher6_config c;
    c.vip = vip;
    c.port = 80;
    c.self = {self_mac, self_ip, gw_mac};
    c.table.capacity = 1024;
    c.table.timeouts = session_timeouts::ipvs_defaults(1);
    c.max_backends = 8;
    return c;
}

template <forwarding_mode M>
void add_backends(dispatcher6<M, rr_picker>& d, std::uint16_t bport = 0) {
    dispatcher_fixture::add_backends(d, backend_ip, bport);
}

frame client_frame(std::uint32_t client, std::uint8_t flags, std::size_t payload = 0) {
    return tcp_frame(client_ip(client), static_cast<std::uint16_t>(40000 + client), vip, 80, flags, payload);
}

}  // namespace

TEST_SUITE("dispatcher6") {

TEST_CASE("IPv6 direct routing: only the MAC changes; round robin; the flow stays on its back end") {
    dispatcher6<forwarding_mode::direct_routing, rr_picker> d(config(), rr_picker{});
    add_backends(d);
    std::array<std::byte, 2048> scratch{};
    std::map<std::uint32_t, mac_address> chosen;
    for (std::uint32_t c = 0; c < 30; ++c) {
        frame f = client_frame(c, SYN);
        const frame before = f;
        const auto r = d.process(f.span(), 0, scratch);
        REQUIRE(r.verdict == dispatch_verdict::new_flow);
        const auto p = parsed(r.out);
        CHECK(p.ethernet().src() == self_mac);
        chosen[c] = p.ethernet().dst();
        CHECK(std::equal(r.out.begin() + 12, r.out.end(), before.buf.begin() + 12));  // the hop limit too
    }
    for (std::uint16_t i = 0; i < 3; ++i) CHECK(d.scheduled(i) == 10);
    for (std::uint32_t c = 0; c < 30; ++c) {
        frame f = client_frame(c, ACK, 700);
        const auto r = d.process(f.span(), 1, scratch);
        REQUIRE(r.verdict == dispatch_verdict::forwarded);
        CHECK(parsed(r.out).ethernet().dst() == chosen[c]);
    }
    // A reset closes the flow (IPVS's CLOSE state, 10 s); after that a mid-flow packet of it is
    // dropped, and the flow no longer counts on its back end.
    frame rst = client_frame(3, RST | ACK);
    CHECK(d.process(rst.span(), 2, scratch).verdict == dispatch_verdict::forwarded);
    frame after = client_frame(3, ACK);
    CHECK(d.process(after.span(), 100, scratch).verdict == dispatch_verdict::no_session);
    CHECK(d.active(0) + d.active(1) + d.active(2) == 29);
}

TEST_CASE("IPv6 NAT: destination rewritten inbound, source on the reply, checksums exact, hop limit down by one") {
    dispatcher6<forwarding_mode::nat, rr_picker> d(config(), rr_picker{});
    add_backends(d, 8080);
    std::array<std::byte, 2048> scratch{};
    frame in = client_frame(7, SYN);
    const auto r = d.process(in.span(), 0, scratch);
    REQUIRE(r.verdict == dispatch_verdict::new_flow);
    const auto p = parsed(r.out);
    CHECK(p.ipv6().dst() == backend_ip(0));
    CHECK(p.ipv6().src() == client_ip(7));
    CHECK(p.tcp().dport() == 8080);
    CHECK(p.ipv6().hop_limit() == 63);
    CHECK(p.ethernet().dst() == backend_mac(0));
    CHECK(verify_checksums(p).ok());

    frame back = tcp_frame(backend_ip(0), 8080, client_ip(7), 40007, SYN | ACK, 0, self_mac, backend_mac(0));
    const auto rr = d.process(back.span(), 0, scratch);
    REQUIRE(rr.verdict == dispatch_verdict::reply);
    const auto q = parsed(rr.out);
    CHECK(q.ipv6().src() == vip);
    CHECK(q.tcp().sport() == 80);
    CHECK(q.ipv6().dst() == client_ip(7));
    CHECK(q.ethernet().dst() == gw_mac);
    CHECK(q.ipv6().hop_limit() == 63);
    CHECK(verify_checksums(q).ok());

    for (int i = 0; i < 5; ++i) {
        frame data = client_frame(7, ACK, 100 + static_cast<std::size_t>(i) * 301);
        const auto rd = d.process(data.span(), 1, scratch);
        REQUIRE(rd.verdict == dispatch_verdict::forwarded);
        CHECK(verify_checksums(parsed(rd.out)).ok());
        frame ans = tcp_frame(backend_ip(0), 8080, client_ip(7), 40007, ACK, 1400, self_mac, backend_mac(0));
        const auto ra = d.process(ans.span(), 1, scratch);
        REQUIRE(ra.verdict == dispatch_verdict::reply);
        CHECK(verify_checksums(parsed(ra.out)).ok());
    }
    // A back end's packet to a client with no session is the kernel's business.
    frame stray = tcp_frame(backend_ip(1), 8080, client_ip(9), 40009, ACK, 0, self_mac, backend_mac(1));
    CHECK(d.process(stray.span(), 1, scratch).verdict == dispatch_verdict::not_ours);
}

TEST_CASE("IPv6 NAT over UDP: checksums exact, never zero") {
    auto cfg = config();
    cfg.protocol = ip_protocol::udp;
    cfg.port = 53;
    dispatcher6<forwarding_mode::nat, rr_picker> d(cfg, rr_picker{});
    add_backends(d, 5353);
    std::array<std::byte, 2048> scratch{};
    for (std::uint32_t c = 0; c < 200; ++c) {
        frame f;
        auto b = packet_builder(f.buf)
                     .ethernet({.dst = self_mac, .src = gw_mac})
                     .ipv6({.src = client_ip(c * 7919U), .dst = vip})
                     .udp({.sport = static_cast<std::uint16_t>(1024 + c * 13), .dport = 53})
                     .payload(c)
                     .finish();
        REQUIRE(b);
        f.len = b->size();
        const auto r = d.process(f.span(), 0, scratch);
        REQUIRE(r.verdict == dispatch_verdict::new_flow);
        const auto p = parsed(r.out);
        CHECK(p.udp().dport() == 5353);
        CHECK(p.udp().checksum() != 0);  // zero is not allowed over IPv6 (RFC 8200 8.1)
        CHECK(verify_checksums(p).ok());
    }
}

TEST_CASE("IPv6 NAT: a packet with hop limit 1 is not forwarded") {
    dispatcher6<forwarding_mode::nat, rr_picker> d(config(), rr_picker{});
    add_backends(d, 8080);
    std::array<std::byte, 2048> scratch{};
    frame f = tcp_frame(client_ip(1), 40000, vip, 80, SYN, 0, self_mac, gw_mac, 1);
    CHECK(d.process(f.span(), 0, scratch).verdict == dispatch_verdict::ttl_exceeded);
    CHECK(d.table().size() == 0);
}

TEST_CASE("IPv6 full NAT: the back end sees the dispatcher; distinct local ports; the reply finds its client") {
    dispatcher6<forwarding_mode::full_nat, rr_picker> d(config(), rr_picker{1});
    d.set_backend(0, {backend_ip(0), backend_mac(0), 8080});
    std::array<std::byte, 2048> scratch{};
    std::set<std::uint16_t> ports;
    for (std::uint32_t c = 0; c < 200; ++c) {
        frame in = client_frame(c, SYN, c % 3 == 0 ? 0 : 500);
        const auto r = d.process(in.span(), 0, scratch);
        REQUIRE(r.verdict == dispatch_verdict::new_flow);
        const auto p = parsed(r.out);
        CHECK(p.ipv6().src() == self_ip);
        CHECK(p.ipv6().dst() == backend_ip(0));
        CHECK(p.tcp().dport() == 8080);
        CHECK(verify_checksums(p).ok());
        const std::uint16_t lport = p.tcp().sport();
        CHECK(ports.insert(lport).second);

        frame back = tcp_frame(backend_ip(0), 8080, self_ip, lport, SYN | ACK, 10, self_mac, backend_mac(0));
        const auto rr = d.process(back.span(), 0, scratch);
        REQUIRE(rr.verdict == dispatch_verdict::reply);
        const auto q = parsed(rr.out);
        CHECK(q.ipv6().src() == vip);
        CHECK(q.tcp().sport() == 80);
        CHECK(q.ipv6().dst() == client_ip(c));
        CHECK(q.tcp().dport() == 40000 + c);
        CHECK(verify_checksums(q).ok());
    }
    // The flow's lifecycle both ways: FIN from each side, then the port is free again.
    frame fin_c = client_frame(0, FIN | ACK);
    CHECK(d.process(fin_c.span(), 1, scratch).verdict == dispatch_verdict::forwarded);
}

TEST_CASE("IPv6: extension headers before TCP are walked; a real fragment is refused (malformed, fragment)") {
    dispatcher6<forwarding_mode::nat, rr_picker> d(config(), rr_picker{});
    add_backends(d, 8080);
    std::array<std::byte, 2048> scratch{};
    // Hop-by-hop options (8 bytes: next header TCP, length 0, PadN) before the TCP header.
    frame f;
    {
        frame tcp_only = client_frame(4, SYN, 64);
        const std::size_t l2 = 14, l3 = 40;
        std::copy_n(tcp_only.buf.begin(), l2 + l3, f.buf.begin());
        const std::array<std::byte, 8> hbh{std::byte{ip_protocol::tcp}, std::byte{0}, std::byte{1}, std::byte{4},
                                           std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}};
        std::copy(hbh.begin(), hbh.end(), f.buf.begin() + l2 + l3);
        std::copy(tcp_only.buf.begin() + l2 + l3, tcp_only.buf.begin() + tcp_only.len, f.buf.begin() + l2 + l3 + 8);
        f.len = tcp_only.len + 8;
        store_u8(f.buf.data() + l2 + 6, ip_protocol::hop_by_hop);
        store_be16(f.buf.data() + l2 + 4, static_cast<std::uint16_t>(f.len - l2 - l3));
    }
    REQUIRE(verify_checksums(parsed(f.span())).ok());
    const auto r = d.process(f.span(), 0, scratch);
    REQUIRE(r.verdict == dispatch_verdict::new_flow);
    const auto p = parsed(r.out);
    CHECK(p.tcp().dport() == 8080);
    CHECK(p.ipv6().dst() == backend_ip(0));
    CHECK(verify_checksums(p).ok());

    // A fragment header with offset 1: the dispatcher does not reassemble, and refuses it.
    frame frag;
    {
        frame tcp_only = client_frame(5, ACK, 64);
        const std::size_t l2 = 14, l3 = 40;
        std::copy_n(tcp_only.buf.begin(), l2 + l3, frag.buf.begin());
        std::array<std::byte, 8> fh{std::byte{ip_protocol::tcp}, std::byte{0}, std::byte{0}, std::byte{8},
                                    std::byte{0}, std::byte{0}, std::byte{0}, std::byte{1}};
        std::copy(fh.begin(), fh.end(), frag.buf.begin() + l2 + l3);
        std::copy(tcp_only.buf.begin() + l2 + l3, tcp_only.buf.begin() + tcp_only.len, frag.buf.begin() + l2 + l3 + 8);
        frag.len = tcp_only.len + 8;
        store_u8(frag.buf.data() + l2 + 6, ip_protocol::ipv6_fragment);
        store_be16(frag.buf.data() + l2 + 4, static_cast<std::uint16_t>(frag.len - l2 - l3));
    }
    const frame frag_before = frag;
    const std::uint64_t frag_refused = d.stats().malformed[static_cast<std::size_t>(parse_error::fragment)];
    const auto rf = d.process(frag.span(), 0, scratch);
    CHECK(rf.verdict == dispatch_verdict::malformed);  // no reassembly: a fragment is refused, by reason
    CHECK(d.stats().malformed[static_cast<std::size_t>(parse_error::fragment)] == frag_refused + 1);
    CHECK(std::equal(frag.buf.begin(), frag.buf.begin() + frag.len, frag_before.buf.begin()));
}

TEST_CASE("dual stack: a dispatcher4 leaves IPv6 frames alone and a dispatcher6 IPv4 frames") {
    dispatcher6<forwarding_mode::direct_routing, rr_picker> d6(config(), rr_picker{});
    add_backends(d6);
    dispatcher_config c4;
    c4.vip = ipv4_address(192, 0, 2, 10);
    c4.port = 80;
    c4.self = {self_mac, ipv4_address(10, 0, 0, 2), gw_mac};
    c4.table.capacity = 64;
    c4.max_backends = 4;
    dispatcher4<forwarding_mode::direct_routing, rr_picker> d4(c4, rr_picker{1});
    d4.set_backend(0, {ipv4_address(10, 0, 0, 10), backend_mac(9), 0});
    std::array<std::byte, 2048> scratch{};

    frame six = client_frame(1, SYN);
    CHECK(d4.process(six.span(), 0, scratch).verdict == dispatch_verdict::not_ours);
    CHECK(d6.process(six.span(), 0, scratch).verdict == dispatch_verdict::new_flow);

    frame four;
    auto b = packet_builder(four.buf)
                 .ethernet({.dst = self_mac, .src = gw_mac})
                 .ipv4({.src = ipv4_address(198, 51, 100, 1), .dst = c4.vip})
                 .tcp({.sport = 40000, .dport = 80, .flags = SYN})
                 .finish();
    REQUIRE(b);
    four.len = b->size();
    CHECK(d6.process(four.span(), 0, scratch).verdict == dispatch_verdict::not_ours);
    CHECK(d4.process(four.span(), 0, scratch).verdict == dispatch_verdict::new_flow);
    CHECK(parsed(four.span()).ethernet().dst() == backend_mac(9));
}

TEST_CASE("IPv6: a burst gives what single packets give") {
    using D = dispatcher6<forwarding_mode::nat, rr_picker>;
    D one(config(), rr_picker{}), many(config(), rr_picker{});
    add_backends(one, 8080);
    add_backends(many, 8080);
    std::vector<frame> input;
    for (std::uint32_t c = 0; c < 100; ++c) {
        const std::uint8_t flags = c < 60 ? SYN : ACK;  // the last 40 are mid-flow of flows 0..39
        input.push_back(client_frame(c < 60 ? c : c - 60, flags, c));
    }
    check_burst_equals_singles(one, many, input, 0);
    CHECK(one.stats().count(dispatch_verdict::new_flow) == 60);
    CHECK(one.stats().count(dispatch_verdict::forwarded) == 40);
}

TEST_CASE("IPv6 configuration errors say what is wrong") {
    dispatcher6_config c = config();
    c.vip = ipv6_address{};
    CHECK_THROWS_WITH_AS((dispatcher6<forwarding_mode::nat, rr_picker>(c, rr_picker{})),
                         "dispatcher: the cluster address (vip) is not set", std::invalid_argument);
    c = config();
    c.self.address = vip;
    CHECK_THROWS_AS((dispatcher6<forwarding_mode::full_nat, rr_picker>(c, rr_picker{})), std::invalid_argument);
    c = config();
    c.mtu = 1319;  // 1280 must fit inside
    CHECK_THROWS_WITH_AS((dispatcher6<forwarding_mode::tunnel, rr_picker>(c, rr_picker{})), doctest::Contains("at least 1320"),
                         std::invalid_argument);
    c = config();
    c.self.address = ipv6_address{};
    CHECK_THROWS_AS((dispatcher6<forwarding_mode::tunnel, rr_picker>(c, rr_picker{})), std::invalid_argument);
}

TEST_CASE("IPv6 tunnel (RFC 2473): an outer IPv6 header to the back end, the inner packet as it was") {
    dispatcher6_config c = config();
    c.mtu = 1500;
    dispatcher6<forwarding_mode::tunnel, rr_picker> d(c, rr_picker{});
    add_backends(d);
    std::array<std::byte, 2048> scratch{};
    frame f = client_frame(5, SYN, 100);
    // A traffic class and flow label on the inner header, to be copied outside.
    store_be32(f.buf.data() + 14, 0x6B812345U);
    const frame before = f;
    const auto r = d.process(f.span(), 0, scratch);
    REQUIRE(r.verdict == dispatch_verdict::new_flow);
    REQUIRE(r.out.data() == scratch.data());
    REQUIRE(r.out.size() == f.len + 40);
    CHECK(parsed(r.out).ethernet().dst() == backend_mac(0));
    CHECK(parsed(r.out).ethernet().src() == self_mac);
    const auto outer = parsed(r.out).ipv6();
    CHECK(outer.next_header() == ip_protocol::ipv6);
    CHECK(outer.hop_limit() == 64);
    CHECK(outer.src() == self_ip);
    CHECK(outer.dst() == backend_ip(0));
    CHECK(outer.traffic_class() == 0xB8);
    CHECK(outer.flow_label() == 0x12345);
    CHECK(outer.payload_length() == f.len - 14);
    // The inner packet is byte for byte what arrived (hop limit included: the tunnel is one hop).
    CHECK(std::equal(r.out.begin() + 14 + 40, r.out.end(), before.buf.begin() + 14));
    parse_options opt;
    opt.decapsulate = true;
    const auto inner = parsed(r.out, opt);
    REQUIRE(inner.is_tunnelled());
    CHECK(inner.outer_family() == ip_family::v6);
    CHECK(inner.family() == ip_family::v6);
    CHECK(inner.ipv6().dst() == vip);
    CHECK(verify_checksums(inner).ok());
}

TEST_CASE("IPv6 tunnel: a packet too big for the link gets a Packet Too Big (RFC 4443) to its source") {
    dispatcher6_config c = config();
    c.mtu = 1320;  // 1280 inside
    dispatcher6<forwarding_mode::tunnel, rr_picker> d(c, rr_picker{});
    add_backends(d);
    std::array<std::byte, 2048> scratch{};
    frame syn = client_frame(6, SYN);
    REQUIRE(d.process(syn.span(), 0, scratch).verdict == dispatch_verdict::new_flow);
    frame fits = client_frame(6, ACK, 1280 - 40 - 20);  // an inner packet of exactly 1280
    CHECK(d.process(fits.span(), 0, scratch).verdict == dispatch_verdict::forwarded);
    frame big = client_frame(6, ACK, 1280 - 40 - 20 + 1);
    const auto r = d.process(big.span(), 0, scratch);
    REQUIRE(r.verdict == dispatch_verdict::frag_needed);
    CHECK(towards_client(r.verdict));
    const auto p = parsed(r.out);
    CHECK(p.ethernet().dst() == gw_mac);  // back to the router it came from
    CHECK(p.ethernet().src() == self_mac);
    CHECK(p.ipv6().src() == self_ip);
    CHECK(p.ipv6().dst() == client_ip(6));
    REQUIRE(p.is_icmp());
    CHECK(p.icmp().type() == icmpv6_type::packet_too_big);
    CHECK(p.icmp().code() == 0);
    CHECK(load_be32(p.transport_bytes().data() + 4) == 1280);
    CHECK(verify_checksums(p).transport == checksum_status::ok);
    // As much of the packet as fits in 1280 bytes, from its IPv6 header on.
    CHECK(r.out.size() == 14 + 1280);
    CHECK(std::equal(r.out.begin() + 14 + 48, r.out.end(), big.buf.begin() + 14));
    // No error about an ICMPv6 error (RFC 4443 2.4 (e)).
    std::array<std::byte, 2048> err{};
    std::vector<std::byte> quoted(1300);
    auto e = packet_builder(err)
                 .ethernet({.dst = self_mac, .src = gw_mac})
                 .ipv6({.src = client_ip(6), .dst = vip})
                 .icmp({.type = icmpv6_type::dest_unreachable, .code = 0})
                 .payload(std::span<const std::byte>(quoted))
                 .finish();
    REQUIRE(e);
    CHECK(icmp6_packet_too_big::build(parse_ethernet_packet(std::span<const std::byte>(*e)).value(), self_ip, 1280, scratch) == 0);
}

}  // TEST_SUITE
