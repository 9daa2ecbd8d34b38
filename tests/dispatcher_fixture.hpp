// What tests/dispatcher_test.cpp (IPv4) and tests/dispatcher6_test.cpp (IPv6) share: the
// dispatcher's link (MACs), a round-robin picker, frames built into buffers of their own.
#pragma once

#include <clusternet/dispatcher.hpp>
#include <clusternet/packet_builder.hpp>

#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <span>
#include <vector>
#include <type_traits>

namespace dispatcher_fixture {

using namespace clusternet;

inline constexpr std::uint8_t SYN = tcp_flags::syn, ACK = tcp_flags::ack, FIN = tcp_flags::fin, RST = tcp_flags::rst;

inline const mac_address self_mac{{std::byte{2}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{1}}};
inline const mac_address gw_mac{{std::byte{2}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0xFE}}};

inline mac_address backend_mac(std::uint8_t i) {
    return mac_address{{std::byte{2}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{1}, std::byte{i}}};
}

/// Round robin over slots 0..n-1, for either family's key (the scheduler issue brings the real
/// ones).
struct rr_picker {
    std::uint16_t n = 3, next = 0;
    template <class Key>
    std::uint16_t operator()(const Key&, std::uint64_t) noexcept {
        const std::uint16_t s = next;
        next = static_cast<std::uint16_t>((next + 1) % n);
        return s;
    }
};

/// Back ends 0..2 at ip_of(i), backend_mac(i), serving on bport (0: the VIP's port).
template <class Dispatcher, class IpOf>
void add_backends(Dispatcher& d, IpOf ip_of, std::uint16_t bport) {
    for (std::uint8_t i = 0; i < 3; ++i) d.set_backend(i, {ip_of(i), backend_mac(i), bport});
}

/// A frame as the dispatcher receives it, in a buffer of its own.
struct frame {
    std::array<std::byte, 2048> buf{};
    std::size_t len = 0;
    [[nodiscard]] std::span<std::byte> span() noexcept { return std::span<std::byte>(buf).first(len); }
};

/// Ethernet + IPv4 or IPv6 (by Address) + TCP with `payload` bytes; hop_limit is the TTL for IPv4.
template <class Address>
frame tcp_frame(const Address& src, std::uint16_t sport, const Address& dst, std::uint16_t dport, std::uint8_t flags,
                std::size_t payload = 0, mac_address dst_mac = self_mac, mac_address src_mac = gw_mac,
                std::uint8_t hop_limit = 64) {
    frame f;
    packet_builder b(f.buf);
    b.ethernet({.dst = dst_mac, .src = src_mac});
    if constexpr (std::is_same_v<Address, ipv4_address>) b.ipv4({.src = src, .dst = dst, .ttl = hop_limit});
    else b.ipv6({.src = src, .dst = dst, .hop_limit = hop_limit});
    auto r = b.tcp({.sport = sport, .dport = dport, .seq = 1000, .ack = 1, .flags = flags}).payload(payload).finish();
    REQUIRE(r);
    f.len = r->size();
    return f;
}

/// Runs `input` through `one` a packet at a time and through `many` as one burst (each on its
/// own copy), at time `now`: the same verdict for every packet, the same bytes out, the same
/// counters.
template <class Dispatcher>
void check_burst_equals_singles(Dispatcher& one, Dispatcher& many, const std::vector<frame>& input, std::uint32_t now) {
    std::vector<frame> a = input, b = input;
    std::array<std::byte, 2048> scratch{};
    std::vector<typename Dispatcher::result> single;
    for (auto& f : a) single.push_back(one.process(f.span(), now, scratch));
    std::vector<std::span<std::byte>> frames;
    for (auto& f : b) frames.push_back(f.span());
    std::vector<typename Dispatcher::result> burst(frames.size());
    many.process_burst(frames, now, {}, burst);
    for (std::size_t i = 0; i < a.size(); ++i) {
        CHECK(single[i].verdict == burst[i].verdict);
        CHECK(std::equal(a[i].buf.begin(), a[i].buf.end(), b[i].buf.begin()));
    }
    CHECK(one.stats().verdicts == many.stats().verdicts);
}

inline const_packet parsed(std::span<const std::byte> out, parse_options opt = {}) {
    const auto p = parse_ethernet_packet(out, opt);
    REQUIRE(p);
    return *p;
}

}  // namespace dispatcher_fixture
