// tests/support/reference.hpp -- slow, obviously-correct reference implementations and random
// packet generation shared by the tests. Nothing here is used by the library.
#pragma once

#include <clusternet/clusternet.hpp>

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace clusternet::test {

/// RFC 1071 as the RFC writes it: big-endian 16-bit words, 64-bit sum, carries folded at the end.
inline std::uint16_t reference_sum(std::span<const std::byte> b) {
    std::uint64_t s = 0;
    std::size_t i = 0;
    for (; i + 1 < b.size(); i += 2)
        s += (std::to_integer<std::uint64_t>(b[i]) << 8) | std::to_integer<std::uint64_t>(b[i + 1]);
    if (i < b.size()) s += std::to_integer<std::uint64_t>(b[i]) << 8;
    while (s >> 16) s = (s & 0xFFFF) + (s >> 16);
    return static_cast<std::uint16_t>(s);
}

inline std::vector<std::byte> random_bytes(std::mt19937_64& rng, std::size_t n) {
    std::vector<std::byte> v(n);
    for (auto& x : v) x = std::byte(static_cast<unsigned char>(rng()));
    return v;
}

inline ipv6_address random_ipv6(std::mt19937_64& rng) {
    ipv6_address a;
    for (auto& x : a.bytes) x = std::byte(static_cast<unsigned char>(rng()));
    return a;
}

/// Builds a random valid packet (Ethernet, maybe a VLAN tag, IPv4 or IPv6, TCP, UDP or ICMP,
/// random payload) into `buf`; returns its bytes.
inline std::span<std::byte> random_packet(std::mt19937_64& rng, std::span<std::byte> buf, std::size_t max_payload = 1400) {
    packet_builder b(buf);
    ethernet_spec e;
    e.src.bytes[5] = std::byte{1};
    e.dst.bytes[5] = std::byte{2};
    if (rng() % 4 == 0) e.vlans[0] = static_cast<std::uint16_t>(1 + rng() % 4000);
    b.ethernet(e);
    const bool v6 = rng() % 3 == 0;
    if (v6) {
        b.ipv6({.src = random_ipv6(rng), .dst = random_ipv6(rng), .hop_limit = static_cast<std::uint8_t>(rng())});
    } else {
        b.ipv4({.src = ipv4_address(static_cast<std::uint32_t>(rng())), .dst = ipv4_address(static_cast<std::uint32_t>(rng())),
                .ttl = static_cast<std::uint8_t>(rng()), .id = static_cast<std::uint16_t>(rng())});
    }
    switch (rng() % 3) {
        case 0:
            b.tcp({.sport = static_cast<std::uint16_t>(rng()), .dport = static_cast<std::uint16_t>(rng()),
                   .seq = static_cast<std::uint32_t>(rng()), .ack = static_cast<std::uint32_t>(rng()),
                   .flags = static_cast<std::uint8_t>(rng()), .window = static_cast<std::uint16_t>(rng()),
                   .mss = rng() % 2 ? std::optional<std::uint16_t>(1460) : std::nullopt,
                   .timestamps = rng() % 2 ? std::optional<std::array<std::uint32_t, 2>>({static_cast<std::uint32_t>(rng()), 7}) : std::nullopt});
            break;
        case 1:
            b.udp({.sport = static_cast<std::uint16_t>(rng()), .dport = static_cast<std::uint16_t>(rng()), .checksum = rng() % 5 != 0});
            break;
        default:
            b.icmp({.type = v6 ? icmpv6_type::echo_request : icmp_type::echo_request, .identifier = static_cast<std::uint16_t>(rng())});
            break;
    }
    const std::size_t n = max_payload == 0 ? 0 : rng() % (max_payload + 1);
    auto payload = random_bytes(rng, n);
    b.payload(payload);
    auto r = b.finish();
    return r ? *r : std::span<std::byte>{};
}

}  // namespace clusternet::test
