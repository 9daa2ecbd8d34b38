// clusternet/flow_key.hpp -- 5-tuple flow keys for IPv4 and IPv6 and their hash.
//
// Three key types:
//  - `flow_key4` (16 bytes) and `flow_key6` (40 bytes): compact, for tables that hold one
//    family (a session table of 10 million IPv4 flows should not pay for IPv6 addresses);
//  - `flow_key` (40 bytes): either family, IPv4 held as v4-mapped IPv6 (RFC 4291 2.5.5.2),
//    what a parser hands out when the family is not known in advance.
// All are trivially copyable with no padding bytes (the reserved bytes are always zero), so
// keys compare and hash as plain bytes.
//
// The hash is a multiply-fold mixer (the 128-bit product of two 64-bit words, high half XORed
// into low, as in wyhash and Go's runtime hash), two rounds, seeded. Dispatchers should pick a
// random seed per process so that an attacker cannot aim flows at one bucket; the default seed
// exists for reproducible tests. For ICMP echo, both ports hold the echo identifier.
#pragma once

#include <clusternet/address.hpp>
#include <clusternet/byteorder.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>

namespace clusternet {

enum class ip_family : std::uint8_t { none = 0, v4 = 4, v6 = 6 };

/// IP protocol numbers used by clusternet (IANA "Assigned Internet Protocol Numbers").
namespace ip_protocol {
inline constexpr std::uint8_t hop_by_hop = 0;
inline constexpr std::uint8_t icmp = 1;
inline constexpr std::uint8_t ipip = 4;  ///< IPv4 encapsulated (RFC 2003)
inline constexpr std::uint8_t tcp = 6;
inline constexpr std::uint8_t udp = 17;
inline constexpr std::uint8_t ipv6 = 41;  ///< IPv6 encapsulated (RFC 2473, RFC 4213)
inline constexpr std::uint8_t ipv6_routing = 43;
inline constexpr std::uint8_t ipv6_fragment = 44;
inline constexpr std::uint8_t icmpv6 = 58;
inline constexpr std::uint8_t ipv6_none = 59;
inline constexpr std::uint8_t ipv6_dest_opts = 60;
inline constexpr std::uint8_t experimental = 253;  ///< RFC 3692 experimentation value
}  // namespace ip_protocol

/// "tcp", "udp", "icmp", "icmpv6", or the number.
[[nodiscard]] inline std::string protocol_name(std::uint8_t p) {
    switch (p) {
        case ip_protocol::tcp: return "tcp";
        case ip_protocol::udp: return "udp";
        case ip_protocol::icmp: return "icmp";
        case ip_protocol::icmpv6: return "icmpv6";
        default: return std::to_string(p);
    }
}

namespace detail {

inline constexpr std::uint64_t default_hash_seed = 0x243F6A8885A308D3ULL;  // digits of pi
inline constexpr std::uint64_t hash_k0 = 0xA0761D6478BD642FULL;
inline constexpr std::uint64_t hash_k1 = 0xE7037ED1A0B428DBULL;
inline constexpr std::uint64_t hash_k2 = 0x8EBC6AF09C88C6E3ULL;
inline constexpr std::uint64_t hash_k3 = 0x589965CC75374CC3ULL;

/// 64x64 -> 128 multiply, halves folded by XOR.
[[nodiscard]] constexpr std::uint64_t mul_fold(std::uint64_t a, std::uint64_t b) noexcept {
    __extension__ using u128 = unsigned __int128;
    const u128 p = static_cast<u128>(a) * b;
    return static_cast<std::uint64_t>(p) ^ static_cast<std::uint64_t>(p >> 64);
}

[[nodiscard]] constexpr std::uint64_t hash_words(std::uint64_t a, std::uint64_t b, std::uint64_t seed) noexcept {
    const std::uint64_t h = mul_fold(a ^ seed ^ hash_k0, b ^ hash_k1);
    return mul_fold(h ^ hash_k2, seed ^ hash_k3);
}

[[nodiscard]] constexpr std::uint64_t ports_word(std::uint16_t sport, std::uint16_t dport, std::uint8_t proto) noexcept {
    return (std::uint64_t{sport} << 48) | (std::uint64_t{dport} << 32) | (std::uint64_t{proto} << 24);
}

}  // namespace detail

/// An IPv4 5-tuple. Addresses and ports are host-order numbers.
struct flow_key4 {
    std::uint32_t src = 0;
    std::uint32_t dst = 0;
    std::uint16_t sport = 0;
    std::uint16_t dport = 0;
    std::uint8_t protocol = 0;
    std::uint8_t reserved[3] = {0, 0, 0};  ///< always zero

    /// The key of the return direction.
    [[nodiscard]] constexpr flow_key4 reverse() const noexcept {
        return flow_key4{dst, src, dport, sport, protocol, {0, 0, 0}};
    }
    [[nodiscard]] std::string to_string() const {
        return protocol_name(protocol) + " " + ipv4_address(src).to_string() + ":" + std::to_string(sport) +
               " > " + ipv4_address(dst).to_string() + ":" + std::to_string(dport);
    }
    friend constexpr bool operator==(const flow_key4& a, const flow_key4& b) noexcept {
        return a.src == b.src && a.dst == b.dst && a.sport == b.sport && a.dport == b.dport &&
               a.protocol == b.protocol;
    }
};

/// An IPv6 5-tuple. Ports are host-order numbers.
struct flow_key6 {
    ipv6_address src;
    ipv6_address dst;
    std::uint16_t sport = 0;
    std::uint16_t dport = 0;
    std::uint8_t protocol = 0;
    std::uint8_t reserved[3] = {0, 0, 0};  ///< always zero

    [[nodiscard]] constexpr flow_key6 reverse() const noexcept {
        return flow_key6{dst, src, dport, sport, protocol, {0, 0, 0}};
    }
    [[nodiscard]] std::string to_string() const {
        return protocol_name(protocol) + " [" + src.to_string() + "]:" + std::to_string(sport) + " > [" +
               dst.to_string() + "]:" + std::to_string(dport);
    }
    friend constexpr bool operator==(const flow_key6& a, const flow_key6& b) noexcept {
        return a.src == b.src && a.dst == b.dst && a.sport == b.sport && a.dport == b.dport &&
               a.protocol == b.protocol;
    }
};

/// An address family as a type, for the parts built once for both (dispatcher.hpp's
/// basic_dispatcher, forwarding.hpp's endpoints): its address, its compact key, and the moves
/// between an address and a key's field (a host-order number for IPv4, the address for IPv6).
struct ipv4_family {
    using address = ipv4_address;
    using key = flow_key4;
    static constexpr ip_family family = ip_family::v4;
    [[nodiscard]] static constexpr std::uint32_t in_key(ipv4_address a) noexcept { return a.value; }
    [[nodiscard]] static constexpr ipv4_address from_key(std::uint32_t v) noexcept { return ipv4_address(v); }
};
struct ipv6_family {
    using address = ipv6_address;
    using key = flow_key6;
    static constexpr ip_family family = ip_family::v6;
    [[nodiscard]] static constexpr const ipv6_address& in_key(const ipv6_address& a) noexcept { return a; }
    [[nodiscard]] static constexpr const ipv6_address& from_key(const ipv6_address& a) noexcept { return a; }
};

/// A 5-tuple of either family; IPv4 addresses are held v4-mapped.
struct flow_key {
    ipv6_address src;
    ipv6_address dst;
    std::uint16_t sport = 0;
    std::uint16_t dport = 0;
    std::uint8_t protocol = 0;
    ip_family family = ip_family::none;
    std::uint8_t reserved[2] = {0, 0};  ///< always zero

    constexpr flow_key() noexcept = default;
    constexpr flow_key(const flow_key4& k) noexcept  // NOLINT: widening is lossless
        : src(ipv6_address::v4_mapped(ipv4_address(k.src))),
          dst(ipv6_address::v4_mapped(ipv4_address(k.dst))),
          sport(k.sport), dport(k.dport), protocol(k.protocol), family(ip_family::v4) {}
    constexpr flow_key(const flow_key6& k) noexcept  // NOLINT: widening is lossless
        : src(k.src), dst(k.dst), sport(k.sport), dport(k.dport), protocol(k.protocol), family(ip_family::v6) {}

    /// Precondition: family == ip_family::v4.
    [[nodiscard]] flow_key4 v4() const noexcept {
        return flow_key4{src.v4().value, dst.v4().value, sport, dport, protocol, {0, 0, 0}};
    }
    /// Precondition: family == ip_family::v6.
    [[nodiscard]] constexpr flow_key6 v6() const noexcept {
        return flow_key6{src, dst, sport, dport, protocol, {0, 0, 0}};
    }
    [[nodiscard]] constexpr flow_key reverse() const noexcept {
        flow_key r = *this;
        std::swap(r.src, r.dst);
        std::swap(r.sport, r.dport);
        return r;
    }
    [[nodiscard]] std::string to_string() const {
        return family == ip_family::v4 ? v4().to_string() : v6().to_string();
    }
    friend constexpr bool operator==(const flow_key& a, const flow_key& b) noexcept {
        return a.family == b.family && a.src == b.src && a.dst == b.dst && a.sport == b.sport &&
               a.dport == b.dport && a.protocol == b.protocol;
    }
};

static_assert(sizeof(flow_key4) == 16 && std::is_trivially_copyable_v<flow_key4>);
static_assert(sizeof(flow_key6) == 40 && std::is_trivially_copyable_v<flow_key6>);
static_assert(sizeof(flow_key) == 40 && std::is_trivially_copyable_v<flow_key>);

// ---------------------------------------------------------------------------------------------
// Hashing. Cost: two 64x64->128 multiplies for flow_key4 (about 1 ns), four for the others.
// ---------------------------------------------------------------------------------------------

[[nodiscard]] constexpr std::uint64_t hash(const flow_key4& k, std::uint64_t seed = detail::default_hash_seed) noexcept {
    const std::uint64_t a = (std::uint64_t{k.src} << 32) | k.dst;
    return detail::hash_words(a, detail::ports_word(k.sport, k.dport, k.protocol), seed);
}

[[nodiscard]] inline std::uint64_t hash(const flow_key6& k, std::uint64_t seed = detail::default_hash_seed) noexcept {
    const std::uint64_t s = detail::hash_words(load_native<std::uint64_t>(k.src.bytes.data()),
                                               load_native<std::uint64_t>(k.src.bytes.data() + 8), seed);
    const std::uint64_t d = detail::hash_words(load_native<std::uint64_t>(k.dst.bytes.data()),
                                               load_native<std::uint64_t>(k.dst.bytes.data() + 8), s);
    return detail::hash_words(d, detail::ports_word(k.sport, k.dport, k.protocol), seed);
}

[[nodiscard]] inline std::uint64_t hash(const flow_key& k, std::uint64_t seed = detail::default_hash_seed) noexcept {
    return k.family == ip_family::v4 ? hash(k.v4(), seed) : hash(k.v6(), seed);
}

/// A hash that is the same for a key and its reverse: both directions of a connection land on
/// the same shard or receive queue (the property RSS with a symmetric key and PACKET_FANOUT
/// users want). Not for NAT, where the two directions carry different addresses anyway.
template <class Key>
[[nodiscard]] std::uint64_t hash_symmetric(const Key& k, std::uint64_t seed = detail::default_hash_seed) noexcept {
    const Key r = k.reverse();
    const bool swap = r.src < k.src || (r.src == k.src && r.sport < k.sport);
    return hash(swap ? r : k, seed);
}
template <>
[[nodiscard]] inline std::uint64_t hash_symmetric(const flow_key4& k, std::uint64_t seed) noexcept {
    const bool swap = k.dst < k.src || (k.dst == k.src && k.dport < k.sport);
    return hash(swap ? k.reverse() : k, seed);
}

/// Hash functor for std and Boost containers.
struct flow_key_hash {
    std::uint64_t seed = detail::default_hash_seed;
    template <class Key>
    [[nodiscard]] std::size_t operator()(const Key& k) const noexcept { return static_cast<std::size_t>(hash(k, seed)); }
};

/// Found by ADL by boost::hash.
[[nodiscard]] inline std::size_t hash_value(const flow_key4& k) noexcept { return static_cast<std::size_t>(hash(k)); }
[[nodiscard]] inline std::size_t hash_value(const flow_key6& k) noexcept { return static_cast<std::size_t>(hash(k)); }
[[nodiscard]] inline std::size_t hash_value(const flow_key& k) noexcept { return static_cast<std::size_t>(hash(k)); }

/// Found by ADL by absl::Hash (no Abseil header is needed here).
template <class H>
H AbslHashValue(H h, const flow_key4& k) {
    return H::combine(std::move(h), k.src, k.dst, k.sport, k.dport, k.protocol);
}

}  // namespace clusternet

template <>
struct std::hash<clusternet::flow_key4> : clusternet::flow_key_hash {};
template <>
struct std::hash<clusternet::flow_key6> : clusternet::flow_key_hash {};
template <>
struct std::hash<clusternet::flow_key> : clusternet::flow_key_hash {};
