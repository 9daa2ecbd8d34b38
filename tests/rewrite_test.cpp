// Tests of in-place rewrites: after any sequence of rewrites of a valid packet, every checksum
// equals a full recompute bit for bit.
#include "support/reference.hpp"

#include <clusternet/packet_checksum.hpp>
#include <clusternet/rewrite.hpp>

#include <doctest/doctest.h>

#include <random>

using namespace clusternet;

namespace {

/// Checks that every checksum of `p` is what a full recompute gives.
void require_exact_checksums(const packet& p) {
    const auto rep = verify_checksums(p);
    REQUIRE(rep.ok());
    if (p.family() == ip_family::v4) REQUIRE(p.ipv4().checksum() == compute_ipv4_checksum(p.ipv4()));
    if (p.has_transport() && !p.is_fragment()) {
        const auto l4 = p.transport_bytes();
        const std::size_t field = transport_checksum_offset(p.protocol());
        const std::uint16_t stored = load_be16(l4.data() + field);
        if (p.is_udp() && p.family() == ip_family::v4 && stored == 0) return;  // "not computed"
        REQUIRE(stored == compute_transport_checksum(p));
    }
}

}  // namespace

TEST_SUITE("rewrite") {

TEST_CASE("random rewrites of random packets keep every checksum exact") {
    std::mt19937_64 rng(2391);
    std::array<std::byte, 2048> buf{};
    int rewrites = 0, udp_absent = 0;
    for (int it = 0; it < 4000; ++it) {
        const auto bytes = test::random_packet(rng, buf);
        REQUIRE(!bytes.empty());
        const auto p = parse_ethernet_packet(bytes);
        REQUIRE(p.has_value());
        require_exact_checksums(*p);
        udp_absent += verify_checksums(*p).transport == checksum_status::absent;
        for (int step = 0; step < 4; ++step) {
            const auto a4 = ipv4_address(static_cast<std::uint32_t>(rng()));
            const auto port = static_cast<std::uint16_t>(rng());
            bool done = false;
            switch (rng() % 9) {
                case 0: done = set_ipv4_src(*p, a4); break;
                case 1: done = set_ipv4_dst(*p, a4); break;
                case 2: done = rewrite_ipv4_destination(*p, a4, port); break;
                case 3: done = rewrite_ipv4_source(*p, a4, rng() % 2 ? port : 0); break;
                case 4: done = set_ipv6_src(*p, test::random_ipv6(rng)); break;
                case 5: done = set_ipv6_dst(*p, test::random_ipv6(rng)); break;
                case 6: done = set_sport(*p, port); break;
                case 7: done = set_dport(*p, port); break;
                default: done = decrement_ttl(*p); break;
            }
            rewrites += done;
            require_exact_checksums(*p);
        }
    }
    CHECK(rewrites > 8000);
    CHECK(udp_absent > 0);
}

TEST_CASE("rewrites land in the right fields") {
    std::array<std::byte, 256> buf{};
    auto r = packet_builder(buf).ethernet({}).ipv4({.src = ipv4_address(10, 0, 0, 1), .dst = ipv4_address(10, 0, 0, 100), .ttl = 2})
                 .tcp({.sport = 40000, .dport = 80}).payload(33).finish();
    REQUIRE(r.has_value());
    auto p = parse_ethernet_packet(*r);
    REQUIRE(p.has_value());
    CHECK(rewrite_ipv4_destination(*p, ipv4_address(192, 168, 0, 7), 8080));
    CHECK(p->key4() == flow_key4{ipv4_address(10, 0, 0, 1).value, ipv4_address(192, 168, 0, 7).value, 40000, 8080, ip_protocol::tcp});
    CHECK(rewrite_ipv4_source(*p, ipv4_address(172, 16, 0, 1)));
    CHECK(p->key4().src == ipv4_address(172, 16, 0, 1).value);
    CHECK(p->key4().sport == 40000);
    CHECK(decrement_ttl(*p));
    CHECK(p->ipv4().ttl() == 1);
    CHECK_FALSE(decrement_ttl(*p));  // must not be forwarded
    CHECK(p->ipv4().ttl() == 1);
    CHECK_FALSE(set_ipv6_dst(*p, ipv6_address{}));
    require_exact_checksums(*p);
}

TEST_CASE("ICMP: addresses change, the ICMPv4 checksum (no pseudo-header) does not; ports refuse") {
    std::array<std::byte, 256> buf{};
    auto r = packet_builder(buf).ipv4({.src = ipv4_address(1, 2, 3, 4), .dst = ipv4_address(5, 6, 7, 8)})
                 .icmp({.type = icmp_type::echo_request, .identifier = 5}).payload(8).finish();
    REQUIRE(r.has_value());
    auto p = parse_ip_packet(*r);
    REQUIRE(p.has_value());
    const std::uint16_t before = p->icmp().checksum();
    CHECK(set_ipv4_dst(*p, ipv4_address(9, 9, 9, 9)));
    CHECK(p->icmp().checksum() == before);
    CHECK_FALSE(set_dport(*p, 1));
    require_exact_checksums(*p);
}

TEST_CASE("a later fragment: only the IPv4 header checksum is touched") {
    std::array<std::byte, 256> buf{};
    auto r = packet_builder(buf).ipv4({.src = ipv4_address(1, 2, 3, 4), .dst = ipv4_address(5, 6, 7, 8), .dont_fragment = false,
                                       .fragment_offset = 100, .protocol = ip_protocol::tcp})
                 .payload(40).finish();
    REQUIRE(r.has_value());
    const std::vector<std::byte> payload_before(r->begin() + 20, r->end());
    auto p = parse_ip_packet(*r, {.accept_fragments = true});
    REQUIRE(p.has_value());
    CHECK(set_ipv4_dst(*p, ipv4_address(7, 7, 7, 7)));
    CHECK(p->ipv4().checksum_ok());
    CHECK(std::equal(payload_before.begin(), payload_before.end(), r->begin() + 20));
}

TEST_CASE("fuzz find: an all-zero ICMP message checksums to 0xFFFF, not 0x0000") {
    std::array<std::byte, 64> buf{};
    auto r = packet_builder(buf).ipv4({}).icmp({.type = icmp_type::echo_reply}).finish();
    REQUIRE(r.has_value());
    auto p = parse_ip_packet(*r);
    REQUIRE(p.has_value());
    CHECK(compute_transport_checksum(*p) == 0xFFFF);
    store_be16(p->transport_bytes().data() + 2, 0x0200);  // any stale value
    fill_checksums(*p);
    CHECK(p->icmp().checksum() == 0xFFFF);
    require_exact_checksums(*p);
}

TEST_CASE("fuzz find: ICMPv4 carried by IPv6 has no pseudo-header on any path") {
    std::array<std::byte, 128> buf{};
    auto r = packet_builder(buf).ipv6({.next_header = ip_protocol::icmp}).payload(16).finish();
    REQUIRE(r.has_value());
    auto p = parse_ip_packet(*r);
    REQUIRE(p.has_value());
    REQUIRE(p->is_icmp());
    fill_checksums(*p);
    require_exact_checksums(*p);
    CHECK(set_ipv6_dst(*p, *ipv6_address::parse("fd00::77")));
    require_exact_checksums(*p);
}

TEST_CASE("NAT mapping: precomputed delta, exact checksums, refuses packets it does not match") {
    std::mt19937_64 rng(4);
    std::array<std::byte, 2048> buf{};
    const ipv4_address vip(203, 0, 113, 10), backend(10, 0, 0, 11);
    const ipv4_nat_mapping in(ipv4_nat_mapping::side::destination, vip, 80, backend, 8080);
    const ipv4_nat_mapping out = in.reverse();
    const ipv4_nat_mapping addr_only(ipv4_nat_mapping::side::destination, vip, 0, backend, 0);
    int mapped = 0;
    for (int it = 0; it < 3000; ++it) {
        packet_builder b(buf);
        b.ethernet({}).ipv4({.src = ipv4_address(static_cast<std::uint32_t>(rng())), .dst = vip});
        const int kind = it % 4;
        if (kind == 0) b.tcp({.sport = static_cast<std::uint16_t>(rng()), .dport = 80, .seq = static_cast<std::uint32_t>(rng())});
        if (kind == 1) b.udp({.sport = static_cast<std::uint16_t>(rng()), .dport = 80, .checksum = rng() % 3 != 0});
        if (kind == 2) b.tcp({.sport = 1, .dport = 443});  // another port: not this mapping
        if (kind == 3) b.icmp({.identifier = 3});
        b.payload(rng() % 300);
        auto r = b.finish();
        REQUIRE(r.has_value());
        const auto p = parse_ethernet_packet(*r);
        REQUIRE(p.has_value());
        const std::vector<std::byte> before(r->begin(), r->end());
        const bool applied = in.apply(*p);
        CHECK(applied == (kind <= 1));
        if (!applied) {
            CHECK(std::equal(before.begin(), before.end(), r->begin()));  // untouched
            if (kind == 3) {
                CHECK(addr_only.apply(*p));  // address-only mappings take ICMP too
                CHECK(p->ipv4().dst_address() == backend);
                require_exact_checksums(*p);
            }
            continue;
        }
        ++mapped;
        CHECK(p->ipv4().dst_address() == backend);
        CHECK(p->dport() == 8080);
        require_exact_checksums(*p);
        CHECK_FALSE(in.apply(*p));  // already mapped
        // The reply direction: swap the ends as the back end's reply would, then map back.
        const auto k = p->key4();
        CHECK(set_ipv4_src(*p, ipv4_address(k.dst)));
        CHECK(set_ipv4_dst(*p, ipv4_address(k.src)));
        CHECK(set_sport(*p, k.dport));
        CHECK(set_dport(*p, k.sport));
        CHECK(out.apply(*p));
        CHECK(p->ipv4().src_address() == vip);
        CHECK(p->sport() == 80);
        require_exact_checksums(*p);
    }
    CHECK(mapped > 1000);
}

}  // TEST_SUITE
