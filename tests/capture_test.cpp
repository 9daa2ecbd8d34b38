// Tests against a real capture of the Linux TCP/IP stack (tests/data/linux-http.pcap, made by
// scripts/make-capture.sh): HTTP over TCP on IPv4 and IPv6, UDP, ICMP and ICMPv6, ARP, neighbour
// discovery and MLD, recorded with checksum offload off so every checksum is the kernel's own.
//
// The file is found through CLUSTERNET_SOURCE_DIR (a string literal naming the repository root,
// defined by the build), else relative to the working directory (the repository root).
#include <doctest/doctest.h>

#include <clusternet/packet_checksum.hpp>
#include <clusternet/pcap.hpp>
#include <clusternet/rewrite.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace cn = clusternet;

namespace {

std::string capture_path() {
#ifdef CLUSTERNET_SOURCE_DIR
    return std::string(CLUSTERNET_SOURCE_DIR) + "/tests/data/linux-http.pcap";
#else
    return "tests/data/linux-http.pcap";
#endif
}

struct record_copy {
    std::vector<std::byte> bytes;
    std::uint64_t index = 0;
};

/// Every record of the capture, copied (so that the tests can rewrite them).
std::vector<record_copy> load_capture() {
    std::error_code ec;
    auto r = cn::pcap_reader::open(capture_path(), ec);
    INFO("capture: ", capture_path(), " (", ec.message(), ")");
    REQUIRE_FALSE(ec);
    REQUIRE(r.link_type() == cn::pcap_link_type::ethernet);
    std::vector<record_copy> out;
    for (cn::pcap_record rec; r.next(rec);) {
        REQUIRE(rec.data.size() == rec.original_length);  // snaplen 262144: nothing cut
        out.push_back({{rec.data.begin(), rec.data.end()}, out.size()});
    }
    REQUIRE_FALSE(r.error());
    return out;
}

struct counts {
    std::size_t parsed = 0, arp = 0;
    std::size_t ipv4_ok = 0;
    std::size_t tcp4 = 0, tcp6 = 0, udp4 = 0, udp6 = 0, icmp4 = 0, icmp6 = 0;
    std::size_t transport_ok = 0, udp_absent = 0;
};

/// Checks that every checksum of `p` verifies and equals a full recompute bit for bit: the
/// transport checksum against compute_transport_checksum(), the IPv4 header checksum against
/// compute_ipv4_checksum().
void check_exact(const cn::packet& p, std::uint64_t index, const char* when) {
    INFO("record ", index, " ", when);
    const cn::checksum_report rep = cn::verify_checksums(p);
    CHECK(rep.ok());
    if (p.family() == cn::ip_family::v4) {
        CHECK(rep.ip == cn::checksum_status::ok);
        CHECK(cn::compute_ipv4_checksum(p.ipv4()) == p.ipv4().checksum());
    }
    const std::size_t field = cn::transport_checksum_offset(p.protocol());
    if (p.has_transport() && !p.is_fragment() && field != 0 && rep.transport != cn::checksum_status::absent) {
        CHECK(rep.transport == cn::checksum_status::ok);
        const std::uint16_t stored = cn::load_be16(p.transport_bytes().data() + field);
        CHECK(stored == cn::compute_transport_checksum(p));
    }
}

}  // namespace

TEST_SUITE("capture") {
    TEST_CASE("every packet of the Linux capture parses and every checksum verifies") {
        auto records = load_capture();
        REQUIRE(records.size() > 100);
        counts c;
        for (auto& rec : records) {
            INFO("record ", rec.index);
            const auto p = cn::parse_pcap_packet(cn::pcap_link_type::ethernet, std::span<std::byte>(rec.bytes));
            REQUIRE_MESSAGE(p.has_value(), "parse error: ", cn::to_string(p.error()));
            ++c.parsed;
            if (p->is_arp()) {
                ++c.arp;
                continue;
            }
            const cn::checksum_report rep = cn::verify_checksums(*p);
            CHECK(rep.ok());
            CHECK(rep.outer_ip == cn::checksum_status::not_applicable);
            if (p->family() == cn::ip_family::v4) {
                CHECK(rep.ip == cn::checksum_status::ok);
                c.ipv4_ok += rep.ip == cn::checksum_status::ok;
            } else {
                CHECK(rep.ip == cn::checksum_status::not_applicable);
            }
            const bool v4 = p->family() == cn::ip_family::v4;
            if (p->is_tcp()) ++(v4 ? c.tcp4 : c.tcp6);
            else if (p->is_udp()) ++(v4 ? c.udp4 : c.udp6);
            else if (p->is_icmp()) ++(v4 ? c.icmp4 : c.icmp6);
            if (rep.transport == cn::checksum_status::absent) {
                ++c.udp_absent;
                CHECK((p->is_udp() && v4));
            } else {
                CHECK(rep.transport == cn::checksum_status::ok);
                c.transport_ok += rep.transport == cn::checksum_status::ok;
            }
            check_exact(*p, rec.index, "as captured");
        }
        INFO("tcp4 ", c.tcp4, " tcp6 ", c.tcp6, " udp4 ", c.udp4, " udp6 ", c.udp6, " icmp ", c.icmp4, " icmpv6 ", c.icmp6);
        CHECK(c.parsed == records.size());
        CHECK(c.tcp4 > 0);
        CHECK(c.tcp6 > 0);
        CHECK(c.udp4 + c.udp6 > 0);
        CHECK(c.udp6 > 0);
        CHECK(c.icmp4 > 0);
        CHECK(c.icmp6 > 0);
        CHECK(c.ipv4_ok == c.tcp4 + c.udp4 + c.icmp4);
        CHECK(c.transport_ok + c.udp_absent == c.tcp4 + c.tcp6 + c.udp4 + c.udp6 + c.icmp4 + c.icmp6);
    }

    TEST_CASE("random NAT rewrites keep every checksum valid and equal to a full recompute") {
        const auto records = load_capture();
        std::mt19937_64 rng(0x636C75737465726EULL);  // "clustern"
        const auto random_v4 = [&] { return cn::ipv4_address(static_cast<std::uint32_t>(rng())); };
        const auto random_v6 = [&] {
            cn::ipv6_address a;
            for (auto& b : a.bytes) b = std::byte(static_cast<unsigned char>(rng()));
            return a;
        };
        const auto random_port = [&] { return static_cast<std::uint16_t>(rng()); };
        std::size_t rewritten = 0, ops = 0;
        for (int round = 0; round < 8; ++round) {
            for (const auto& rec : records) {
                std::vector<std::byte> bytes = rec.bytes;
                const auto p = cn::parse_pcap_packet(cn::pcap_link_type::ethernet, std::span<std::byte>(bytes));
                REQUIRE(p.has_value());
                if (p->family() == cn::ip_family::none) continue;
                const cn::checksum_status before = cn::verify_checksums(*p).transport;
                const int n_ops = 1 + static_cast<int>(rng() % 4);
                for (int i = 0; i < n_ops; ++i) {
                    bool done = false;
                    switch (rng() % 6) {
                        case 0:
                            done = p->family() == cn::ip_family::v4
                                       ? cn::rewrite_ipv4_destination(*p, random_v4(), rng() % 2 ? random_port() : 0)
                                       : cn::set_ipv6_dst(*p, random_v6());
                            break;
                        case 1:
                            done = p->family() == cn::ip_family::v4
                                       ? cn::rewrite_ipv4_source(*p, random_v4(), rng() % 2 ? random_port() : 0)
                                       : cn::set_ipv6_src(*p, random_v6());
                            break;
                        case 2: done = cn::set_sport(*p, random_port()); break;
                        case 3: done = cn::set_dport(*p, random_port()); break;
                        case 4: done = cn::decrement_ttl(*p); break;
                        default:
                            done = p->family() == cn::ip_family::v4 ? cn::set_ipv4_dst(*p, random_v4())
                                                                    : cn::set_ipv6_dst(*p, random_v6());
                            break;
                    }
                    ops += done;
                }
                ++rewritten;
                // The packet still parses the same way (rewrites change no length).
                const auto again = cn::parse_pcap_packet(cn::pcap_link_type::ethernet, std::span<std::byte>(bytes));
                REQUIRE(again.has_value());
                CHECK(again->protocol() == p->protocol());
                CHECK(cn::verify_checksums(*again).transport == before);  // ok stays ok, absent stays absent
                check_exact(*again, rec.index, "after rewrite");
            }
        }
        CHECK(rewritten > 0);
        CHECK(ops > rewritten);
    }
}
