// clusternet/rewrite.hpp -- rewrite addresses, ports and TTL in place, checksums kept valid.
//
// Every function here changes a field of a parsed packet and fixes each checksum that covers
// it with an O(1) RFC 1624 update (checksum.hpp): the IPv4 header checksum for an IPv4
// address or TTL; the TCP or UDP checksum for an address (through the pseudo-header) or a port;
// ICMPv6 for an IPv6 address. ICMPv4 has no pseudo-header and is left alone by address
// rewrites. UDP over IPv4 with checksum 0 ("not computed") keeps 0; a result of 0 is sent as
// 0xFFFF. Fragments: the IPv4 header checksum is fixed; a first fragment's transport checksum
// is updated too (it covers the whole datagram, and the update is exact for it); later
// fragments carry no transport header.
//
// The result equals a full recompute bit for bit whenever the checksums were right before
// (tests/rewrite_test.cpp checks this on random packets). No allocation, no exceptions.
//
// Functions return false, and change nothing, when the packet has no such field (a port
// rewrite of an ICMP packet, an IPv4 rewrite of an IPv6 packet).
#pragma once

#include <clusternet/checksum.hpp>
#include <clusternet/packet.hpp>

namespace clusternet {

namespace detail {

/// Applies `delta` to the transport checksum, if the packet has one that covers the change.
/// `pseudo` says whether the change is to a pseudo-header field (an address).
CLUSTERNET_ALWAYS_INLINE void apply_transport_delta(const packet& p, const checksum_delta& delta, bool pseudo) noexcept {
    if (!p.has_transport()) return;
    std::byte* l4 = p.transport_bytes().data();
    std::size_t field = 0;
    switch (p.protocol()) {
        case ip_protocol::tcp: field = 16; break;
        case ip_protocol::udp:
            store_native(l4 + 6, delta.apply_udp_raw(load_native<std::uint16_t>(l4 + 6), p.family() == ip_family::v4));
            return;
        case ip_protocol::icmpv6: field = 2; break;
        case ip_protocol::icmp:
            if (pseudo) return;  // no pseudo-header: an address change does not reach it
            field = 2;
            break;
        default: return;
    }
    store_native(l4 + field, delta.apply_raw(load_native<std::uint16_t>(l4 + field)));
}

/// Replaces the 16-bit word at `p` (memory order) and records the change.
CLUSTERNET_ALWAYS_INLINE void replace_port(std::byte* p, std::uint16_t port, checksum_delta& d) noexcept {
    const std::uint16_t new_raw = host_to_net(port);
    d.replace16_raw(load_native<std::uint16_t>(p), new_raw);
    store_native(p, new_raw);
}

/// Rewrites one IPv4 endpoint: the address at `addr_off` of the IPv4 header and, when `port`
/// is not 0 and the packet is TCP or UDP, the port at `port_off` of the transport header.
CLUSTERNET_ALWAYS_INLINE bool rewrite_ipv4_endpoint(const packet& p, std::size_t addr_off, std::size_t port_off,
                                                    ipv4_address a, std::uint16_t port) noexcept {
    if (p.family() != ip_family::v4) return false;
    std::byte* ip = p.ip_bytes().data();
    const std::uint32_t new_raw = host_to_net(a.value);
    checksum_delta d;
    d.replace32_raw(load_native<std::uint32_t>(ip + addr_off), new_raw);
    store_native(ip + addr_off, new_raw);
    store_native(ip + 10, d.apply_raw(load_native<std::uint16_t>(ip + 10)));  // the IPv4 header checksum
    if (port != 0 && (p.is_tcp() || p.is_udp())) replace_port(p.transport_bytes().data() + port_off, port, d);
    apply_transport_delta(p, d, true);
    return true;
}

/// Rewrites one IPv6 endpoint: the address at `addr_off` of the IPv6 header and, when `port` is
/// not 0 and the packet is TCP or UDP, the port at `port_off` of the transport header, with one
/// delta for the transport checksum (IPv6 has no header checksum).
CLUSTERNET_ALWAYS_INLINE bool rewrite_ipv6_endpoint(const packet& p, std::size_t addr_off, std::size_t port_off,
                                                    const ipv6_address& a, std::uint16_t port) noexcept {
    if (p.family() != ip_family::v6) return false;
    std::byte* ip = p.ip_bytes().data();
    checksum_delta d;
    d.replace128(std::span<const std::byte, 16>(ip + addr_off, 16), a.bytes);
    std::memcpy(ip + addr_off, a.bytes.data(), 16);
    if (port != 0 && (p.is_tcp() || p.is_udp())) replace_port(p.transport_bytes().data() + port_off, port, d);
    apply_transport_delta(p, d, true);
    return true;
}

inline bool rewrite_ipv6_address(const packet& p, std::size_t addr_off, const ipv6_address& a) noexcept {
    return rewrite_ipv6_endpoint(p, addr_off, 0, a, 0);
}

inline bool rewrite_port(const packet& p, std::size_t port_off, std::uint16_t port) noexcept {
    if (!p.is_tcp() && !p.is_udp()) return false;
    checksum_delta d;
    replace_port(p.transport_bytes().data() + port_off, port, d);
    apply_transport_delta(p, d, false);
    return true;
}

}  // namespace detail

/// Sets the IPv4 source address; fixes the IPv4 and transport checksums.
inline bool set_ipv4_src(const packet& p, ipv4_address a) noexcept { return detail::rewrite_ipv4_endpoint(p, 12, 0, a, 0); }

/// Sets the IPv4 destination address; fixes the IPv4 and transport checksums.
inline bool set_ipv4_dst(const packet& p, ipv4_address a) noexcept { return detail::rewrite_ipv4_endpoint(p, 16, 2, a, 0); }

/// Sets the IPv6 source address; fixes the transport checksum.
inline bool set_ipv6_src(const packet& p, const ipv6_address& a) noexcept { return detail::rewrite_ipv6_address(p, 8, a); }

/// Sets the IPv6 destination address; fixes the transport checksum.
inline bool set_ipv6_dst(const packet& p, const ipv6_address& a) noexcept { return detail::rewrite_ipv6_address(p, 24, a); }

/// Sets the TCP or UDP source port; fixes the transport checksum.
inline bool set_sport(const packet& p, std::uint16_t port) noexcept { return detail::rewrite_port(p, 0, port); }

/// Sets the TCP or UDP destination port; fixes the transport checksum.
inline bool set_dport(const packet& p, std::uint16_t port) noexcept { return detail::rewrite_port(p, 2, port); }

/// LSNAT / DNAT in one step: IPv4 destination address and port (port 0 keeps the port), one
/// delta shared by both checksums. What an inbound NAT rewrite costs: a few ns
/// (docs/performance.md).
inline bool rewrite_ipv4_destination(const packet& p, ipv4_address a, std::uint16_t port = 0) noexcept {
    return detail::rewrite_ipv4_endpoint(p, 16, 2, a, port);
}

/// The outbound half of NAT: IPv4 source address and port (port 0 keeps the port).
inline bool rewrite_ipv4_source(const packet& p, ipv4_address a, std::uint16_t port = 0) noexcept {
    return detail::rewrite_ipv4_endpoint(p, 12, 0, a, port);
}

/// The IPv6 forms of the two above: address and port (port 0 keeps the port), one delta for the
/// transport checksum.
inline bool rewrite_ipv6_destination(const packet& p, const ipv6_address& a, std::uint16_t port = 0) noexcept {
    return detail::rewrite_ipv6_endpoint(p, 24, 2, a, port);
}
inline bool rewrite_ipv6_source(const packet& p, const ipv6_address& a, std::uint16_t port = 0) noexcept {
    return detail::rewrite_ipv6_endpoint(p, 8, 0, a, port);
}

/// One direction of a NAT mapping, from (address, port) to (address, port), with its checksum
/// change worked out once. A dispatcher keeps one per back end (VIP:80 -> 10.0.0.11:8080
/// inbound, and its reverse outbound) and applies it to every packet of the flows it maps: the
/// per-packet cost is a compare, two stores and two O(1) checksum updates, with no delta to
/// build. apply() checks that the packet carries the "from" endpoint and otherwise changes
/// nothing and returns false, so a stale or wrong mapping can never corrupt a packet.
class ipv4_nat_mapping {
public:
    enum class side : std::uint8_t { source, destination };

    /// Port 0 for both ports maps the address alone (any port, kept as it is).
    constexpr ipv4_nat_mapping(side which, ipv4_address from, std::uint16_t from_port, ipv4_address to,
                               std::uint16_t to_port) noexcept
        : from_addr_(host_to_net(from.value)), to_addr_(host_to_net(to.value)),
          from_port_(host_to_net(from_port)), to_port_(host_to_net(to_port)),
          addr_off_(which == side::source ? 12 : 16), port_off_(which == side::source ? 0 : 2) {
        checksum_delta d;
        d.replace32_raw(from_addr_, to_addr_);
        ip_delta_ = d.folded_sum();
        if (from_port != 0 || to_port != 0) d.replace16_raw(from_port_, to_port_);
        l4_delta_ = d.folded_sum();
        map_port_ = from_port != 0 || to_port != 0;
    }

    /// Rewrites `p` if it carries the "from" endpoint on this mapping's side; fixes the IPv4
    /// and transport checksums. O(1), a few ns (docs/performance.md).
    bool apply(const packet& p) const noexcept {
        if (p.family() != ip_family::v4) return false;
        std::byte* ip = p.ip_bytes().data();
        if (load_native<std::uint32_t>(ip + addr_off_) != from_addr_) return false;
        std::byte* l4 = p.transport_bytes().data();
        const bool ported = p.is_tcp() || p.is_udp();
        if (map_port_) {
            if (!ported || load_native<std::uint16_t>(l4 + port_off_) != from_port_) return false;
            store_native(l4 + port_off_, to_port_);
        }
        store_native(ip + addr_off_, to_addr_);
        store_native(ip + 10, checksum_delta::apply_folded_raw(load_native<std::uint16_t>(ip + 10), ip_delta_));
        if (!p.has_transport()) return true;
        switch (p.protocol()) {
            case ip_protocol::tcp:
                store_native(l4 + 16, checksum_delta::apply_folded_raw(load_native<std::uint16_t>(l4 + 16), l4_delta_));
                break;
            case ip_protocol::udp: {
                const std::uint16_t c = load_native<std::uint16_t>(l4 + 6);
                if (c == 0) break;  // "not computed" stays so
                const std::uint16_t n = checksum_delta::apply_folded_raw(c, l4_delta_);
                store_native(l4 + 6, n == 0 ? std::uint16_t{0xFFFF} : n);
                break;
            }
            case ip_protocol::icmpv6:  // ICMPv6 in IPv4: not valid, but keep it consistent
                store_native(l4 + 2, checksum_delta::apply_folded_raw(load_native<std::uint16_t>(l4 + 2), l4_delta_));
                break;
            default:
                break;  // ICMP has no pseudo-header
        }
        return true;
    }

    /// The mapping of the return direction (destination becomes source, and the reverse).
    [[nodiscard]] constexpr ipv4_nat_mapping reverse() const noexcept {
        return ipv4_nat_mapping(addr_off_ == 16 ? side::source : side::destination, ipv4_address(net_to_host(to_addr_)),
                                net_to_host(to_port_), ipv4_address(net_to_host(from_addr_)), net_to_host(from_port_));
    }

private:
    std::uint32_t from_addr_, to_addr_;    // memory order
    std::uint16_t from_port_, to_port_;    // memory order
    std::uint32_t ip_delta_ = 0, l4_delta_ = 0;
    std::uint8_t addr_off_, port_off_;
    bool map_port_ = false;
};

/// Decrements the IPv4 TTL or IPv6 hop limit as a router does (fixing the IPv4 header
/// checksum). Returns false, changing nothing, when it is already 0 or 1: the packet must not
/// be forwarded (RFC 1812 5.3.1).
inline bool decrement_ttl(const packet& p) noexcept {
    if (p.family() == ip_family::v4) {
        const auto ip = p.ipv4();
        const std::uint8_t ttl = ip.ttl();
        if (ttl <= 1) return false;
        const auto old_word = static_cast<std::uint16_t>((ttl << 8) | ip.protocol());
        ip.set_ttl(static_cast<std::uint8_t>(ttl - 1));
        ip.set_checksum(checksum_update16(ip.checksum(), old_word, static_cast<std::uint16_t>(old_word - 0x100)));
        return true;
    }
    if (p.family() == ip_family::v6) {
        const auto ip = p.ipv6();
        if (ip.hop_limit() <= 1) return false;
        ip.set_hop_limit(static_cast<std::uint8_t>(ip.hop_limit() - 1));
        return true;
    }
    return false;
}

}  // namespace clusternet
