// Tests of the packet views and the full-stack parser: fields, every refusal reason, VLANs,
// IPv6 extension headers, fragments, IP-in-IP, and truncation at every length.
#include "support/reference.hpp"

#include <clusternet/packet.hpp>
#include <clusternet/packet_builder.hpp>
#include <clusternet/packet_checksum.hpp>

#include <doctest/doctest.h>

#include <array>
#include <vector>

using namespace clusternet;

namespace {

const mac_address mac_a = *mac_address::parse("02:00:00:00:00:0a");
const mac_address mac_b = *mac_address::parse("02:00:00:00:00:0b");
const ipv4_address v4_a(10, 0, 0, 1), v4_b(10, 0, 0, 2);
const ipv6_address v6_a = *ipv6_address::parse("fd00::a"), v6_b = *ipv6_address::parse("fd00::b");

template <class F>
std::vector<std::byte> build(F&& f) {
    std::array<std::byte, 4096> buf{};
    packet_builder b(buf);
    f(b);
    auto r = b.finish();
    REQUIRE(r.has_value());
    return {r->begin(), r->end()};
}

std::vector<std::byte> tcp4_syn() {
    return build([](packet_builder& b) {
        b.ethernet({.dst = mac_b, .src = mac_a})
            .ipv4({.src = v4_a, .dst = v4_b, .ttl = 63, .id = 0x1234})
            .tcp({.sport = 40000, .dport = 80, .seq = 1000, .flags = tcp_flags::syn, .window = 64240, .mss = 1460,
                  .window_scale = 7, .sack_permitted = true, .timestamps = std::array<std::uint32_t, 2>{11, 0}});
    });
}

std::vector<std::byte> raw(std::initializer_list<unsigned> v) {
    std::vector<std::byte> out;
    for (unsigned x : v) out.push_back(std::byte(static_cast<unsigned char>(x)));
    return out;
}

}  // namespace

TEST_SUITE("packet") {

TEST_CASE("Ethernet/IPv4/TCP: every field reads back") {
    auto f = tcp4_syn();
    const auto p = parse_ethernet_packet(std::span<std::byte>(f));
    REQUIRE(p.has_value());
    CHECK(p->has_ethernet());
    CHECK(p->ethernet().src() == mac_a);
    CHECK(p->ethernet().dst() == mac_b);
    CHECK(p->ethernet().ethertype() == ethertype::ipv4);
    REQUIRE(p->family() == ip_family::v4);
    const auto ip = p->ipv4();
    CHECK(ip.version() == 4);
    CHECK(ip.ihl() == 5);
    CHECK(ip.ttl() == 63);
    CHECK(ip.id() == 0x1234);
    CHECK(ip.dont_fragment());
    CHECK_FALSE(ip.is_fragment());
    CHECK(ip.src_address() == v4_a);
    CHECK(ip.dst_address() == v4_b);
    CHECK(ip.checksum_ok());
    REQUIRE(p->is_tcp());
    const auto t = p->tcp();
    CHECK(t.sport() == 40000);
    CHECK(t.dport() == 80);
    CHECK(t.seq() == 1000);
    CHECK(t.syn());
    CHECK_FALSE(t.ack());
    CHECK(t.window() == 64240);
    const tcp_options o = t.options();
    CHECK(o.mss == 1460);
    CHECK(o.window_scale == 7);
    CHECK(o.sack_permitted);
    CHECK(o.ts_val == 11u);
    CHECK(o.ts_ecr == 0u);
    CHECK(p->key4() == flow_key4{v4_a.value, v4_b.value, 40000, 80, ip_protocol::tcp});
    CHECK(verify_checksums(*p).transport == checksum_status::ok);
}

TEST_CASE("a const view of the same bytes reads the same") {
    const auto f = tcp4_syn();
    const auto p = parse_ethernet_packet(std::span<const std::byte>(f));
    REQUIRE(p.has_value());
    CHECK(p->tcp().dport() == 80);
    auto m = tcp4_syn();
    const auto pm = parse_ethernet_packet(std::span<std::byte>(m));
    REQUIRE(pm.has_value());
    const const_packet c = *pm;
    CHECK(c.key() == p->key());
}

TEST_CASE("Ethernet minimum-size padding is not taken for IP payload") {
    auto f = build([](packet_builder& b) {
        b.ethernet({.dst = mac_b, .src = mac_a}).ipv4({.src = v4_a, .dst = v4_b}).udp({.sport = 1, .dport = 2});
    });
    const std::size_t ip_len = f.size() - 14;
    f.resize(60, std::byte{0xEE});  // 802.3 minimum frame without FCS
    const auto p = parse_ethernet_packet(std::span<std::byte>(f));
    REQUIRE(p.has_value());
    CHECK(p->ipv4().size() == ip_len);
    CHECK(p->udp().size() == 8);
    CHECK(verify_checksums(*p).ok());
}

TEST_CASE("VLAN and QinQ tags") {
    auto one = build([](packet_builder& b) {
        b.ethernet({.dst = mac_b, .src = mac_a, .vlans = {42, 0}}).ipv4({.src = v4_a, .dst = v4_b}).udp({.sport = 1, .dport = 2});
    });
    auto p = parse_ethernet_packet(std::span<std::byte>(one));
    REQUIRE(p.has_value());
    CHECK(p->ethernet().vlan_tag_count() == 1);
    CHECK(p->ethernet().vlan_id() == 42);
    CHECK(p->is_udp());
    auto two = build([](packet_builder& b) {
        b.ethernet({.dst = mac_b, .src = mac_a, .vlans = {100, 200}}).ipv6({.src = v6_a, .dst = v6_b}).tcp({.sport = 5, .dport = 6});
    });
    p = parse_ethernet_packet(std::span<std::byte>(two));
    REQUIRE(p.has_value());
    CHECK(p->ethernet().vlan_tag_count() == 2);
    CHECK(p->ethernet().vlan_id(0) == 100);
    CHECK(p->ethernet().vlan_id(1) == 200);
    CHECK(p->key6().dport == 6);
    // A third tag is refused.
    auto three = raw({0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0x88, 0xa8, 0, 1, 0x81, 0, 0, 2, 0x81, 0, 0, 3, 0x08, 0});
    CHECK(parse_ethernet(std::span<std::byte>(three)).error() == parse_error::too_many_vlan_tags);
}

TEST_CASE("ARP") {
    auto f = build([](packet_builder& b) {
        b.ethernet({.dst = *mac_address::parse("ff:ff:ff:ff:ff:ff"), .src = mac_a})
            .arp({.operation = arp_op::request, .sender_mac = mac_a, .sender_ip = v4_a, .target_ip = v4_b});
    });
    auto p = parse_ethernet_packet(std::span<std::byte>(f));
    REQUIRE(p.has_value());
    CHECK(p->is_arp());
    CHECK(p->family() == ip_family::none);
    CHECK(p->ethernet().dst().is_broadcast());
    CHECK(p->arp().operation() == arp_op::request);
    CHECK(p->arp().sender_mac() == mac_a);
    CHECK(p->arp().sender_ip() == v4_a);
    CHECK(p->arp().target_ip() == v4_b);
    f[14 + 4] = std::byte{8};  // hardware length 8
    CHECK(parse_ethernet_packet(std::span<std::byte>(f)).error() == parse_error::bad_arp);
    f[14 + 4] = std::byte{6};
    f[14 + 7] = std::byte{9};  // operation 9
    CHECK(parse_ethernet_packet(std::span<std::byte>(f)).error() == parse_error::bad_arp);
}

TEST_CASE("unsupported EtherType and version mismatch") {
    auto f = tcp4_syn();
    f[12] = std::byte{0x88};
    f[13] = std::byte{0xcc};  // LLDP
    CHECK(parse_ethernet_packet(std::span<std::byte>(f)).error() == parse_error::unsupported_ethertype);
    f = tcp4_syn();
    f[12] = std::byte{0x86};
    f[13] = std::byte{0xdd};  // says IPv6, carries IPv4
    CHECK(parse_ethernet_packet(std::span<std::byte>(f)).error() == parse_error::bad_version);
}

TEST_CASE("IPv4 refusals: version, IHL, total length") {
    auto f = tcp4_syn();
    std::span<std::byte> ip(f.data() + 14, f.size() - 14);
    ip[0] = std::byte{0x55};
    CHECK(parse_ipv4(ip).error() == parse_error::bad_version);
    ip[0] = std::byte{0x44};
    CHECK(parse_ipv4(ip).error() == parse_error::bad_ihl);
    ip[0] = std::byte{0x4F};  // 60-byte header, more than the total length says
    store_be16(ip.data() + 2, 50);
    CHECK(parse_ipv4(ip).error() == parse_error::bad_total_length);
    ip[0] = std::byte{0x45};
    store_be16(ip.data() + 2, 19);
    CHECK(parse_ipv4(ip).error() == parse_error::bad_total_length);
    store_be16(ip.data() + 2, static_cast<std::uint16_t>(ip.size() + 1));
    CHECK(parse_ipv4(ip).error() == parse_error::truncated);
    store_be16(ip.data() + 2, static_cast<std::uint16_t>(ip.size()));
    CHECK(parse_ipv4(ip).has_value());
}

TEST_CASE("IPv4 options are skipped") {
    const auto opts = raw({0x94, 0x04, 0, 0});  // Router Alert
    auto f = build([&](packet_builder& b) {
        b.ethernet({}).ipv4({.src = v4_a, .dst = v4_b, .options = opts}).udp({.sport = 9, .dport = 10}).payload(3);
    });
    auto p = parse_ethernet_packet(std::span<std::byte>(f));
    REQUIRE(p.has_value());
    CHECK(p->ipv4().ihl() == 6);
    CHECK(p->ipv4().options().size() == 4);
    CHECK(p->udp().dport() == 10);
    CHECK(verify_checksums(*p).ok());
}

TEST_CASE("IPv4 fragments") {
    auto first = build([](packet_builder& b) {
        b.ethernet({}).ipv4({.src = v4_a, .dst = v4_b, .dont_fragment = false, .more_fragments = true})
            .udp({.sport = 7, .dport = 8}).payload(64);
    });
    // The builder sets the UDP length to what it holds; claim more, as a real first fragment does.
    store_be16(first.data() + 14 + 20 + 4, 2000);
    CHECK(parse_ethernet_packet(std::span<std::byte>(first)).error() == parse_error::fragment);
    auto p = parse_ethernet_packet(std::span<std::byte>(first), {.accept_fragments = true});
    REQUIRE(p.has_value());
    CHECK(p->is_fragment());
    CHECK(p->has_transport());
    CHECK(p->key4().dport == 8);
    CHECK(verify_checksums(*p).transport == checksum_status::not_applicable);

    auto later = build([](packet_builder& b) {
        b.ethernet({}).ipv4({.src = v4_a, .dst = v4_b, .dont_fragment = false, .fragment_offset = 9, .protocol = ip_protocol::tcp}).payload(40);
    });
    CHECK(parse_ethernet_packet(std::span<std::byte>(later)).error() == parse_error::fragment);
    p = parse_ethernet_packet(std::span<std::byte>(later), {.accept_fragments = true});
    REQUIRE(p.has_value());
    CHECK(p->is_fragment());
    CHECK_FALSE(p->has_transport());
    CHECK(p->key4() == flow_key4{v4_a.value, v4_b.value, 0, 0, ip_protocol::tcp});
    CHECK(p->ipv4().checksum_ok());
}

TEST_CASE("IPv6 extension headers are walked") {
    // Hop-by-Hop (8 bytes, PadN) -> Destination Options (16 bytes) -> Routing (8) -> TCP
    const auto ext = raw({60, 0, 1, 4, 0, 0, 0, 0,                         //
                          43, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  //
                          6, 0, 0, 0, 0, 0, 0, 0});
    auto f = build([&](packet_builder& b) {
        b.ethernet({}).ipv6({.src = v6_a, .dst = v6_b, .next_header = ip_protocol::hop_by_hop}).payload(ext)
            .tcp({.sport = 1111, .dport = 443, .flags = tcp_flags::syn}).payload(10);
    });
    auto p = parse_ethernet_packet(std::span<std::byte>(f));
    REQUIRE(p.has_value());
    CHECK(p->ipv6().next_header() == ip_protocol::hop_by_hop);
    CHECK(p->ipv6().upper_layer_protocol() == ip_protocol::tcp);
    CHECK(p->ipv6().upper_layer_offset() == 40 + 32);
    CHECK(p->key6() == flow_key6{v6_a, v6_b, 1111, 443, ip_protocol::tcp});
    CHECK(verify_checksums(*p).transport == checksum_status::ok);

    // Hop-by-Hop anywhere but first is refused (RFC 8200 4.1).
    const auto late_hbh = raw({0, 0, 1, 4, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0});
    f = build([&](packet_builder& b) {
        b.ethernet({}).ipv6({.src = v6_a, .dst = v6_b, .next_header = ip_protocol::ipv6_dest_opts}).payload(late_hbh).tcp({});
    });
    CHECK(parse_ethernet_packet(std::span<std::byte>(f)).error() == parse_error::bad_ext_header);

    // An extension header running past the packet.
    const auto runs_past = raw({6, 200, 0, 0, 0, 0, 0, 0});
    f = build([&](packet_builder& b) {
        b.ethernet({}).ipv6({.src = v6_a, .dst = v6_b, .next_header = ip_protocol::ipv6_dest_opts}).payload(runs_past);
    });
    CHECK(parse_ethernet_packet(std::span<std::byte>(f)).error() == parse_error::bad_ext_header);

    // Nine Destination Options headers in a row: more than the parser walks.
    std::vector<std::byte> chain;
    for (int i = 0; i < 9; ++i) {
        const auto h = raw({static_cast<unsigned>(i == 8 ? 6 : 60), 0, 1, 4, 0, 0, 0, 0});
        chain.insert(chain.end(), h.begin(), h.end());
    }
    f = build([&](packet_builder& b) {
        b.ethernet({}).ipv6({.src = v6_a, .dst = v6_b, .next_header = ip_protocol::ipv6_dest_opts}).payload(chain).tcp({});
    });
    CHECK(parse_ethernet_packet(std::span<std::byte>(f)).error() == parse_error::too_many_ext_headers);
}

TEST_CASE("IPv6 fragments, and atomic fragments which are not") {
    const auto atomic = raw({17, 0, 0, 0, 0, 0, 0, 1});  // offset 0, M clear (RFC 6946)
    auto f = build([&](packet_builder& b) {
        b.ethernet({}).ipv6({.src = v6_a, .dst = v6_b, .next_header = ip_protocol::ipv6_fragment}).payload(atomic)
            .udp({.sport = 3, .dport = 4});
    });
    auto p = parse_ethernet_packet(std::span<std::byte>(f));
    REQUIRE(p.has_value());
    CHECK_FALSE(p->is_fragment());
    CHECK(p->is_udp());
    CHECK(verify_checksums(*p).transport == checksum_status::ok);

    const auto later = raw({17, 0, 0x00, 0x51, 0, 0, 0, 1});  // offset 10, M set
    f = build([&](packet_builder& b) {
        b.ethernet({}).ipv6({.src = v6_a, .dst = v6_b, .next_header = ip_protocol::ipv6_fragment}).payload(later).payload(24);
    });
    CHECK(parse_ethernet_packet(std::span<std::byte>(f)).error() == parse_error::fragment);
    p = parse_ethernet_packet(std::span<std::byte>(f), {.accept_fragments = true});
    REQUIRE(p.has_value());
    CHECK(p->is_fragment());
    CHECK(p->ipv6().fragment_offset() == 10);
    CHECK(p->ipv6().more_fragments());
    CHECK_FALSE(p->has_transport());
    CHECK(p->key6().protocol == ip_protocol::udp);
    CHECK(p->key6().sport == 0);
}

TEST_CASE("IPv6 payload length") {
    auto f = build([](packet_builder& b) { b.ipv6({.src = v6_a, .dst = v6_b}).udp({}); });
    std::span<std::byte> s(f);
    store_be16(s.data() + 4, 0);
    CHECK(parse_ipv6(s).error() == parse_error::bad_total_length);  // jumbogram
    store_be16(s.data() + 4, 9);
    CHECK(parse_ipv6(s).error() == parse_error::truncated);
    s[0] = std::byte{0x40};
    CHECK(parse_ipv6(s).error() == parse_error::bad_version);
}

TEST_CASE("TCP refusals: data offset and options") {
    auto f = tcp4_syn();
    const std::size_t t = 14 + 20;
    auto parse = [&] { return parse_ethernet_packet(std::span<std::byte>(f)); };
    f[t + 12] = std::byte{0x40};  // data offset 4
    CHECK(parse().error() == parse_error::bad_data_offset);
    f[t + 12] = std::byte{0xF0};  // 60 bytes, more than the segment
    CHECK(parse().error() == parse_error::bad_data_offset);
    f = tcp4_syn();
    REQUIRE(f[t + 20] == std::byte{tcp_option::mss});
    f[t + 21] = std::byte{5};  // MSS of length 5
    CHECK(parse().error() == parse_error::bad_tcp_option);
    f[t + 21] = std::byte{1};  // length below 2
    CHECK(parse().error() == parse_error::bad_tcp_option);
    f[t + 21] = std::byte{60};  // runs past the header
    CHECK(parse().error() == parse_error::bad_tcp_option);
    // A SACK option of the wrong size, and a kind byte with no room for its length.
    const auto sack_bad = raw({5, 9, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1});
    CHECK(detail::check_tcp_options(sack_bad.data(), sack_bad.size()) == parse_error::bad_tcp_option);
    const auto dangling = raw({1, 1, 1, 2});
    CHECK(detail::check_tcp_options(dangling.data(), dangling.size()) == parse_error::bad_tcp_option);
    const auto eol_then_junk = raw({0, 99, 99, 99});
    CHECK(detail::check_tcp_options(eol_then_junk.data(), eol_then_junk.size()) == parse_error::none);
    const auto sack_ok = raw({1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 9});
    CHECK(detail::check_tcp_options(sack_ok.data(), sack_ok.size()) == parse_error::none);
}

TEST_CASE("SACK blocks decode") {
    std::array<std::byte, 64> seg{};
    store_u8(seg.data() + 12, 0x80);  // 32-byte header
    const auto opt = raw({1, 1, 5, 10, 0, 0, 0, 100, 0, 0, 0, 200});
    std::memcpy(seg.data() + 20, opt.data(), opt.size());
    const auto t = parse_tcp(std::span<std::byte>(seg));
    REQUIRE(t.has_value());
    const auto o = t->options();
    CHECK(o.sack_count == 1);
    CHECK(o.sack[0] == sack_block{100, 200});
}

TEST_CASE("UDP length") {
    auto f = build([](packet_builder& b) { b.ipv4({.src = v4_a, .dst = v4_b}).udp({.sport = 1, .dport = 2}).payload(20); });
    std::span<std::byte> s(f);
    store_be16(s.data() + 20 + 4, 7);
    CHECK(parse_ip_packet(s).error() == parse_error::bad_udp_length);
    store_be16(s.data() + 20 + 4, 29);
    CHECK(parse_ip_packet(s).error() == parse_error::bad_udp_length);
    store_be16(s.data() + 20 + 4, 10);  // shorter than the IP payload: the view follows UDP
    auto p = parse_ip_packet(s);
    REQUIRE(p.has_value());
    CHECK(p->udp().payload().size() == 2);
}

TEST_CASE("ICMP echo and errors") {
    auto f = build([](packet_builder& b) {
        b.ipv4({.src = v4_a, .dst = v4_b}).icmp({.type = icmp_type::echo_request, .identifier = 777, .sequence = 1}).payload(16);
    });
    auto p = parse_ip_packet(std::span<std::byte>(f));
    REQUIRE(p.has_value());
    REQUIRE(p->is_icmp());
    CHECK(p->icmp().is_echo());
    CHECK_FALSE(p->icmp().is_error());
    CHECK(p->key4().sport == 777);
    CHECK(p->key4().dport == 777);
    CHECK(verify_checksums(*p).transport == checksum_status::ok);

    // Destination unreachable quoting a TCP packet.
    auto inner = tcp4_syn();
    std::span<const std::byte> quoted(inner.data() + 14, 28);
    f = build([&](packet_builder& b) {
        b.ipv4({.src = v4_b, .dst = v4_a}).icmp({.type = icmp_type::dest_unreachable, .code = 4}).payload(quoted);
    });
    p = parse_ip_packet(std::span<std::byte>(f));
    REQUIRE(p.has_value());
    CHECK(p->icmp().is_error());
    CHECK(p->icmp().quoted_packet().size() == 28);
    CHECK(p->key4().sport == 0);
    CHECK(verify_checksums(*p).transport == checksum_status::ok);

    // ICMPv6 covers the pseudo-header.
    f = build([](packet_builder& b) {
        b.ipv6({.src = v6_a, .dst = v6_b}).icmp({.type = icmpv6_type::echo_request, .identifier = 9});
    });
    p = parse_ip_packet(std::span<std::byte>(f));
    REQUIRE(p.has_value());
    CHECK(p->protocol() == ip_protocol::icmpv6);
    CHECK(p->icmp().is_v6());
    CHECK(verify_checksums(*p).transport == checksum_status::ok);
    std::array<std::byte, 7> tiny{};
    CHECK(parse_icmp(std::span<std::byte>(tiny), false).error() == parse_error::truncated);
}

TEST_CASE("IP-in-IP and IPv6-in-IPv6 decapsulation") {
    auto f = build([](packet_builder& b) {
        b.ethernet({}).ipv4({.src = ipv4_address(192, 0, 2, 1), .dst = ipv4_address(192, 0, 2, 2)})
            .ipv4({.src = v4_a, .dst = v4_b}).tcp({.sport = 10, .dport = 20}).payload(5);
    });
    auto p = parse_ethernet_packet(std::span<std::byte>(f));
    REQUIRE(p.has_value());
    CHECK_FALSE(p->is_tunnelled());
    CHECK(p->protocol() == ip_protocol::ipip);
    CHECK_FALSE(p->has_transport());
    p = parse_ethernet_packet(std::span<std::byte>(f), {.decapsulate = true});
    REQUIRE(p.has_value());
    CHECK(p->is_tunnelled());
    CHECK(p->outer_family() == ip_family::v4);
    CHECK(p->outer_ipv4().dst_address() == ipv4_address(192, 0, 2, 2));
    CHECK(p->outer_ipv4().protocol() == ip_protocol::ipip);
    CHECK(p->key4() == flow_key4{v4_a.value, v4_b.value, 10, 20, ip_protocol::tcp});
    const auto rep = verify_checksums(*p);
    CHECK(rep.outer_ip == checksum_status::ok);
    CHECK(rep.ip == checksum_status::ok);
    CHECK(rep.transport == checksum_status::ok);

    f = build([](packet_builder& b) {
        b.ipv6({.src = *ipv6_address::parse("2001:db8::1"), .dst = *ipv6_address::parse("2001:db8::2")})
            .ipv6({.src = v6_a, .dst = v6_b}).udp({.sport = 30, .dport = 40});
    });
    p = parse_ip_packet(std::span<std::byte>(f), {.decapsulate = true});
    REQUIRE(p.has_value());
    CHECK(p->outer_family() == ip_family::v6);
    CHECK(p->outer_ipv6().upper_layer_protocol() == ip_protocol::ipv6);
    CHECK(p->key6().dport == 40);
    CHECK(verify_checksums(*p).transport == checksum_status::ok);

    // Protocol 4 with an IPv6 packet inside is refused.
    f = build([](packet_builder& b) {
        b.ipv4({.src = v4_a, .dst = v4_b, .protocol = ip_protocol::ipip}).ipv6({.src = v6_a, .dst = v6_b}).udp({});
    });
    CHECK(parse_ip_packet(std::span<std::byte>(f), {.decapsulate = true}).error() == parse_error::bad_version);
}

TEST_CASE("every prefix of a packet is refused cleanly, never read past") {
    std::mt19937_64 rng(99);
    std::array<std::byte, 2048> buf{};
    for (int it = 0; it < 300; ++it) {
        const auto whole = test::random_packet(rng, buf, 64);
        REQUIRE(!whole.empty());
        REQUIRE(parse_ethernet_packet(whole).has_value());
        for (std::size_t n = 0; n < whole.size(); ++n) {
            // A copy of exactly n bytes, so ASan sees any read past the end.
            std::vector<std::byte> cut(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(n));
            const auto r = parse_ethernet_packet(std::span<const std::byte>(cut));
            // The IP length field claims more than any proper prefix holds.
            CHECK_FALSE(r.has_value());
        }
    }
}

TEST_CASE("the builder refuses a buffer that is too small") {
    std::array<std::byte, 40> small{};
    auto r = packet_builder(small).ethernet({}).ipv4({}).tcp({}).finish();
    CHECK(r.error() == parse_error::too_large);
    std::array<std::byte, 4> odd_opts{};
    std::array<std::byte, 128> buf{};
    r = packet_builder(buf).ipv4({.options = std::span<const std::byte>(odd_opts.data(), 3)}).finish();
    CHECK(r.error() == parse_error::bad_field);
}

TEST_CASE("parse errors convert to std::error_code with readable messages") {
    const std::error_code ec = parse_error::bad_tcp_option;
    CHECK(ec.category().name() == std::string("clusternet.parse"));
    CHECK(ec.message() == "bad_tcp_option");
    const std::error_code ec2 = errc::bad_file_format;
    CHECK(ec2.message() == "bad file format");
}

TEST_CASE("the IPv4/TCP fast path and the general walk agree, on valid frames and on every one-byte change") {
    // Frames the fast path takes (with and without TCP options, a DF bit, data) and ones it
    // must leave to the general walk (VLAN, IP options, a fragment, UDP, a bad option); then
    // every single-byte change of the headers of each, to three values.
    std::vector<std::vector<std::byte>> frames;
    const auto add = [&](auto&& build) {
        std::array<std::byte, 256> buf{};
        packet_builder b(buf);
        build(b);
        const auto r = b.finish();
        REQUIRE(r);
        frames.emplace_back(r->begin(), r->end());
    };
    const ipv4_address src(198, 51, 100, 7), dst(192, 0, 2, 10);
    add([&](packet_builder& b) { b.ethernet({}).ipv4({.src = src, .dst = dst}).tcp({.sport = 1234, .dport = 80, .flags = tcp_flags::ack}).payload(10); });
    add([&](packet_builder& b) {
        b.ethernet({}).ipv4({.src = src, .dst = dst}).tcp({.sport = 1, .dport = 2, .flags = tcp_flags::syn, .mss = 1460,
                                                           .window_scale = 7, .sack_permitted = true,
                                                           .timestamps = std::array<std::uint32_t, 2>{1, 2}});
    });
    add([&](packet_builder& b) { b.ethernet({.vlans = {10, 0}}).ipv4({.src = src, .dst = dst}).tcp({.sport = 1, .dport = 2}); });
    const std::array<std::byte, 4> ip_opt{std::byte{1}, std::byte{1}, std::byte{1}, std::byte{0}};
    add([&](packet_builder& b) { b.ethernet({}).ipv4({.src = src, .dst = dst, .options = ip_opt}).tcp({.sport = 1, .dport = 2}); });
    add([&](packet_builder& b) { b.ethernet({}).ipv4({.src = src, .dst = dst, .more_fragments = true}).tcp({.sport = 1, .dport = 2}); });
    add([&](packet_builder& b) { b.ethernet({}).ipv4({.src = src, .dst = dst}).udp({.sport = 53, .dport = 53}).payload(4); });
    int fast = 0, checked = 0;
    for (const auto& original : frames) {
        for (std::size_t at = 0; at <= std::min<std::size_t>(original.size(), 80); ++at) {
            for (const unsigned v : {0x00U, 0x45U, 0xFFU}) {
                std::vector<std::byte> f = original;
                if (at < f.size()) f[at] = std::byte{static_cast<unsigned char>(v)};
                else f.resize(f.size() - 1);  // and a frame one byte short
                for (const std::size_t len : {f.size(), f.size() > 60 ? std::size_t{60} : f.size()}) {
                    const std::span<std::byte> frame = std::span<std::byte>(f).first(len);
                    for (const parse_options opt : {parse_options{}, parse_options{.accept_fragments = true, .decapsulate = true}}) {
                        const auto a = parse_ethernet_packet(frame, opt);
                        const auto g = detail::parse_ethernet_general(frame, opt);
                        ++checked;
                        REQUIRE(a.has_value() == g.has_value());
                        if (!a) {
                            CHECK(a.error() == g.error());
                            continue;
                        }
                        fast += a->family() == ip_family::v4 && a->is_tcp() && a->ethernet().vlan_tag_count() == 0;
                        CHECK(a->frame().size() == g->frame().size());
                        CHECK(a->family() == g->family());
                        CHECK(a->ethernet().vlan_tag_count() == g->ethernet().vlan_tag_count());
                        CHECK(a->protocol() == g->protocol());
                        CHECK(a->has_transport() == g->has_transport());
                        CHECK(a->is_fragment() == g->is_fragment());
                        CHECK(a->is_tunnelled() == g->is_tunnelled());
                        if (a->family() == ip_family::none) continue;
                        CHECK(a->ip_offset() == g->ip_offset());
                        CHECK(a->ip_bytes().size() == g->ip_bytes().size());
                        CHECK(a->transport_offset() == g->transport_offset());
                        CHECK(a->transport_bytes().size() == g->transport_bytes().size());
                        CHECK(a->key() == g->key());
                    }
                }
            }
        }
    }
    CHECK(checked > 2000);
    CHECK(fast > 500);  // the fast path's shape was reached, often
}

}  // TEST_SUITE
