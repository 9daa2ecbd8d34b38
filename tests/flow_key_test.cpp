// Tests of flow keys and their hash.
#include <clusternet/flow_key.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <unordered_set>
#include <vector>

using namespace clusternet;

TEST_SUITE("flow_key") {

TEST_CASE("reverse swaps the ends and is an involution") {
    const flow_key4 k{0x0A000001, 0x0A000002, 1234, 80, ip_protocol::tcp};
    const flow_key4 r = k.reverse();
    CHECK(r.src == k.dst);
    CHECK(r.dst == k.src);
    CHECK(r.sport == 80);
    CHECK(r.dport == 1234);
    CHECK(r.reverse() == k);
    const flow_key6 k6{*ipv6_address::parse("fd00::1"), *ipv6_address::parse("fd00::2"), 5, 6, ip_protocol::udp};
    CHECK(k6.reverse().reverse() == k6);
    CHECK(flow_key(k6).reverse().v6() == k6.reverse());
}

TEST_CASE("the family-agnostic key holds IPv4 v4-mapped and converts back") {
    const flow_key4 k{0xC0000201, 0xC0000202, 1, 2, ip_protocol::udp};
    const flow_key g(k);
    CHECK(g.family == ip_family::v4);
    CHECK(g.src.is_v4_mapped());
    CHECK(g.src.to_string() == "::ffff:192.0.2.1");
    CHECK(g.v4() == k);
    CHECK(hash(g) == hash(k));
    CHECK(g.to_string() == "udp 192.0.2.1:1 > 192.0.2.2:2");
}

TEST_CASE("hash: equal keys, equal hashes; the seed matters; the symmetric hash ignores direction") {
    const flow_key4 k{0x0A000001, 0x0A000002, 1234, 80, ip_protocol::tcp};
    flow_key4 same = k;
    CHECK(hash(same) == hash(k));
    CHECK(hash(k, 1) != hash(k, 2));
    CHECK(hash(k) != hash(k.reverse()));
    CHECK(hash_symmetric(k) == hash_symmetric(k.reverse()));
    const flow_key6 k6{*ipv6_address::parse("fd00::1"), *ipv6_address::parse("fd00::2"), 5, 6, ip_protocol::udp};
    CHECK(hash_symmetric(k6) == hash_symmetric(k6.reverse()));
    CHECK(hash(k6) != hash(k6.reverse()));
}

TEST_CASE("hash spreads structured keys evenly over buckets") {
    // Keys that differ only in the client port, or only in the low bits of the client address:
    // the patterns a load balancer sees. Bucket counts from a deterministic seed, so this test
    // is exact, not statistical: it fails only if the hash changes for the worse.
    constexpr std::size_t buckets = 1024, keys = 1u << 20;
    for (int pattern = 0; pattern < 3; ++pattern) {
        std::vector<std::uint32_t> count(buckets);
        for (std::uint32_t i = 0; i < keys; ++i) {
            flow_key4 k{0x0A000000, 0xC0A80001, 40000, 80, ip_protocol::tcp};
            if (pattern == 0) k.sport = static_cast<std::uint16_t>(i), k.src += i >> 16;
            if (pattern == 1) k.src += i;
            if (pattern == 2) k.dst += i & 0xFF, k.sport = static_cast<std::uint16_t>(i >> 8);
            ++count[hash(k) % buckets];
        }
        const double mean = static_cast<double>(keys) / buckets;
        const auto mm = std::minmax_element(count.begin(), count.end());
        const std::uint32_t lo = *mm.first, hi = *mm.second;
        INFO("pattern " << pattern << " min " << lo << " max " << hi << " mean " << mean);
        // A uniform hash has a bucket standard deviation of sqrt(1024) = 32 here; allow 6 sigma.
        CHECK(hi < mean + 6 * 32);
        CHECK(lo > mean - 6 * 32);
    }
}

TEST_CASE("usable as a key of standard containers") {
    std::unordered_set<flow_key4> s4;
    std::unordered_set<flow_key> s;
    for (std::uint16_t p = 0; p < 1000; ++p) {
        s4.insert(flow_key4{1, 2, p, 80, ip_protocol::tcp});
        s.insert(flow_key(flow_key4{1, 2, p, 80, ip_protocol::tcp}));
    }
    CHECK(s4.size() == 1000);
    CHECK(s.size() == 1000);
    CHECK(s4.count(flow_key4{1, 2, 999, 80, ip_protocol::tcp}) == 1);
}

TEST_CASE("addresses parse and print") {
    CHECK(ipv4_address::parse("10.1.2.3")->value == 0x0A010203);
    CHECK_FALSE(ipv4_address::parse("10.1.2").has_value());
    CHECK_FALSE(ipv4_address::parse("10.1.2.256").has_value());
    CHECK(ipv4_address(192, 168, 7, 9).to_string() == "192.168.7.9");
    CHECK(ipv6_address::parse("2001:db8::1")->to_string() == "2001:db8::1");
    CHECK_FALSE(ipv6_address::parse("2001:db8:::1").has_value());
    CHECK(mac_address::parse("02:00:5E:10:00:FF")->to_string() == "02:00:5e:10:00:ff");
    CHECK_FALSE(mac_address::parse("02:00:5e:10:00").has_value());
    CHECK_FALSE(mac_address::parse("02:00:5e:10:00:zz").has_value());
    CHECK(mac_address::parse("01:00:5e:00:00:01")->is_multicast());
}

}  // TEST_SUITE
