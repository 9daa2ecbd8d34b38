// IPv6 neighbour discovery (ndp.hpp): the solicitation a dispatcher sends, and which
// advertisements it believes (RFC 4861 7.1.2).
#include <clusternet/ndp.hpp>

#include <doctest/doctest.h>

#include <array>
#include <vector>

using namespace clusternet;

namespace {

ipv6_address v6(const char* s) { return ipv6_address::parse(s).value(); }
const mac_address self_mac{{std::byte{2}, std::byte{0xcb}, std::byte{2}, std::byte{0}, std::byte{0}, std::byte{2}}};
const mac_address target_mac{{std::byte{2}, std::byte{0xcb}, std::byte{2}, std::byte{0}, std::byte{0}, std::byte{0x0b}}};

struct na_spec {
    std::uint8_t hop_limit = 255;
    std::uint8_t code = 0;
    std::uint8_t flags = 0x60;                 // S, O
    std::uint8_t option_type = ndp::option_target_link_layer;
    std::uint8_t option_len = 1;               // 8-byte units
    const char* target = "fd00:cb:2::11";
    bool with_option = true;
    bool trailing_zero_length = false;  // a second option, of length 0, after the good one
};

/// An advertisement from the target to us, as a Linux back end sends it.
std::vector<std::byte> advertisement_frame(const na_spec& s) {
    std::array<std::byte, 128> buf{};
    std::vector<std::byte> body(16);
    const ipv6_address t = v6(s.target);
    std::memcpy(body.data(), t.bytes.data(), 16);
    if (s.with_option) {
        body.push_back(std::byte{s.option_type});
        body.push_back(std::byte{s.option_len});
        body.insert(body.end(), target_mac.bytes.begin(), target_mac.bytes.end());
    }
    if (s.trailing_zero_length) body.insert(body.end(), {std::byte{14}, std::byte{0}, {}, {}, {}, {}, {}, {}});
    auto r = packet_builder(buf)
                 .ethernet({.dst = self_mac, .src = target_mac})
                 .ipv6({.src = v6("fd00:cb:2::11"), .dst = v6("fe80::1"), .hop_limit = s.hop_limit})
                 .icmp({.type = icmpv6_type::neighbor_advertisement, .code = s.code,
                        .identifier = static_cast<std::uint16_t>(s.flags << 8), .sequence = 0})
                 .payload(std::span<const std::byte>(body))
                 .finish();
    REQUIRE(r);
    return {r->begin(), r->end()};
}

std::optional<ndp::advertisement> parse(std::vector<std::byte>& f) {
    const auto p = parse_ethernet_packet(std::span<std::byte>(f));
    if (!p) return std::nullopt;
    return ndp::parse_advertisement(*p);
}

}  // namespace

TEST_SUITE("ndp") {

TEST_CASE("the solicited-node group and its Ethernet address (RFC 4291 2.7.1, RFC 2464 7)") {
    CHECK(ndp::solicited_node(v6("fd00:cb:2::11")) == v6("ff02::1:ff00:11"));
    CHECK(ndp::solicited_node(v6("2001:db8::abcd:ef12:3456")) == v6("ff02::1:ff12:3456"));
    CHECK(ndp::multicast_mac(v6("ff02::1:ff12:3456")).to_string() == "33:33:ff:12:34:56");
}

TEST_CASE("a solicitation: to the target's group, hop limit 255, our MAC in the option, checksums right") {
    std::array<std::byte, ndp::solicitation_size> buf{};
    const auto self = v6("fe80::cb:2");
    const auto target = v6("fd00:cb:2::11");
    const std::size_t n = ndp::build_solicitation(buf, self_mac, self, target);
    REQUIRE(n == ndp::solicitation_size);
    const auto p = parse_ethernet_packet(std::span<const std::byte>(buf.data(), n));
    REQUIRE(p);
    CHECK(p->ethernet().dst().to_string() == "33:33:ff:00:00:11");
    CHECK(p->ethernet().src() == self_mac);
    CHECK(p->family() == ip_family::v6);
    CHECK(p->ipv6().hop_limit() == 255);
    CHECK(p->ipv6().src() == self);
    CHECK(p->ipv6().dst() == v6("ff02::1:ff00:11"));
    REQUIRE(p->is_icmp());
    CHECK(p->icmp().type() == icmpv6_type::neighbor_solicitation);
    CHECK(p->icmp().code() == 0);
    CHECK(verify_checksums(*p).transport == checksum_status::ok);
    const auto m = p->transport_bytes();
    REQUIRE(m.size() == 32);
    CHECK(ipv6_address::from(std::span<const std::byte, 16>(m.data() + 8, 16)) == target);
    CHECK(std::to_integer<int>(m[24]) == ndp::option_source_link_layer);
    CHECK(std::to_integer<int>(m[25]) == 1);
    CHECK(std::equal(self_mac.bytes.begin(), self_mac.bytes.end(), m.begin() + 26));
    // Too small a buffer, or the unspecified source (duplicate address detection's): nothing.
    std::array<std::byte, ndp::solicitation_size - 1> small{};
    CHECK(ndp::build_solicitation(small, self_mac, self, target) == 0);
    CHECK(ndp::build_solicitation(buf, self_mac, ipv6_address{}, target) == 0);
}

TEST_CASE("a valid advertisement gives the target's MAC and flags") {
    auto f = advertisement_frame({});
    const auto a = parse(f);
    REQUIRE(a);
    CHECK(a->target == v6("fd00:cb:2::11"));
    CHECK(a->mac == target_mac);
    CHECK(a->solicited);
    CHECK(a->override_flag);
    CHECK_FALSE(a->router);
    // Another option before the link-layer one is walked past.
    auto g = advertisement_frame({.option_type = 5, .option_len = 1});  // an MTU-like option: no MAC in it
    CHECK_FALSE(parse(g));
}

TEST_CASE("advertisements that fail RFC 4861 7.1.2's checks are not believed") {
    auto off_link = advertisement_frame({.hop_limit = 254});
    CHECK_FALSE(parse(off_link));
    auto code = advertisement_frame({.code = 1});
    CHECK_FALSE(parse(code));
    auto zero_len = advertisement_frame({.option_len = 0});
    CHECK_FALSE(parse(zero_len));
    auto zero_after = advertisement_frame({.trailing_zero_length = true});  // the MAC is there: still refused
    CHECK_FALSE(parse(zero_after));
    auto too_long = advertisement_frame({.option_len = 2});  // runs past the message
    CHECK_FALSE(parse(too_long));
    auto no_option = advertisement_frame({.with_option = false});
    CHECK_FALSE(parse(no_option));
    auto multicast = advertisement_frame({.target = "ff02::1"});
    CHECK_FALSE(parse(multicast));
    auto bad_sum = advertisement_frame({});
    bad_sum.back() ^= std::byte{1};  // a byte of the MAC: the checksum no longer verifies
    CHECK_FALSE(parse(bad_sum));
    // A solicitation is not an advertisement.
    std::array<std::byte, ndp::solicitation_size> ns{};
    REQUIRE(ndp::build_solicitation(ns, self_mac, v6("fe80::1"), v6("fd00::1")) != 0);
    const auto p = parse_ethernet_packet(std::span<const std::byte>(ns));
    REQUIRE(p);
    CHECK_FALSE(ndp::parse_advertisement(*p));
    // Nor is an IPv4 packet, or a truncated message.
    auto cut = advertisement_frame({});
    cut.resize(14 + 40 + 20);
    store_be16(cut.data() + 14 + 4, 20);
    CHECK_FALSE(parse(cut));
}

}  // TEST_SUITE
