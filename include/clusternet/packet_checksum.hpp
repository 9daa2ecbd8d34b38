// clusternet/packet_checksum.hpp -- full checksum computation and verification for a parsed
// packet: the IPv4 header checksum and the TCP, UDP, ICMP and ICMPv6 checksums with their
// pseudo-headers (RFC 793, RFC 768, RFC 792, RFC 8200 8.1, RFC 4443).
//
// These cost O(packet length); the fast path rewrites with the O(1) updates of rewrite.hpp and
// uses these only to build packets and to check what it was given.
#pragma once

#include <clusternet/checksum.hpp>
#include <clusternet/packet.hpp>

namespace clusternet {

enum class checksum_status : std::uint8_t {
    ok,              ///< present and verifies
    bad,             ///< present and does not verify
    absent,          ///< UDP over IPv4 with checksum 0 ("not computed")
    not_applicable,  ///< nothing to check: no such header, or a fragment (the transport
                     ///< checksum covers the whole datagram, which this packet is not)
};

[[nodiscard]] constexpr std::string_view to_string(checksum_status s) noexcept {
    switch (s) {
        case checksum_status::ok: return "ok";
        case checksum_status::bad: return "bad";
        case checksum_status::absent: return "absent";
        case checksum_status::not_applicable: return "not_applicable";
    }
    return "unknown";
}

struct checksum_report {
    checksum_status outer_ip = checksum_status::not_applicable;  ///< tunnel's IPv4 header
    checksum_status ip = checksum_status::not_applicable;        ///< IPv4 header
    checksum_status transport = checksum_status::not_applicable;
    /// True when nothing checked is bad.
    [[nodiscard]] constexpr bool ok() const noexcept {
        return outer_ip != checksum_status::bad && ip != checksum_status::bad && transport != checksum_status::bad;
    }
};

/// The byte offset of the checksum field within the transport header of `protocol` (TCP 16,
/// UDP 6, ICMP and ICMPv6 2), or 0 for a protocol without one clusternet knows.
[[nodiscard]] constexpr std::size_t transport_checksum_offset(std::uint8_t protocol) noexcept {
    switch (protocol) {
        case ip_protocol::tcp: return 16;
        case ip_protocol::udp: return 6;
        case ip_protocol::icmp:
        case ip_protocol::icmpv6: return 2;
        default: return 0;
    }
}

namespace detail {

/// Starts an accumulator with the pseudo-header the packet's transport checksum covers.
template <ByteType B>
[[nodiscard]] checksum_accumulator transport_pseudo_header(const basic_packet<B>& p) noexcept {
    checksum_accumulator acc;
    const std::size_t len = p.transport_bytes().size();
    // ICMP (protocol 1) has no pseudo-header, whatever IP version carries it; everything else
    // here (TCP, UDP, ICMPv6) has one.
    if (p.protocol() == ip_protocol::icmp) return acc;
    if (p.family() == ip_family::v4) {
        const auto ip = p.ipv4();
        add_ipv4_pseudo_header(acc, ip.src(), ip.dst(), p.protocol(), static_cast<std::uint16_t>(len));
    } else {
        const auto ip = p.ipv6();
        add_ipv6_pseudo_header(acc, ip.src_bytes(), ip.dst_bytes(), p.protocol(), static_cast<std::uint32_t>(len));
    }
    return acc;
}

}  // namespace detail

/// The IPv4 header checksum the header should carry, computed in full (the field's current
/// value is ignored). Cost: O(header length).
template <ByteType B>
[[nodiscard]] std::uint16_t compute_ipv4_checksum(const basic_ipv4_view<B>& ip) noexcept {
    const auto h = ip.header();
    return checksum_accumulator{}.add(h.first(10)).add(h.subspan(12)).finish();
}

/// The transport checksum the packet should carry, computed in full (the field's current value
/// is ignored). Precondition: p.has_transport() and p is not a fragment. For UDP a computed 0 is
/// returned as 0xFFFF. Returns 0 for protocols without a checksum clusternet knows.
template <ByteType B>
[[nodiscard]] std::uint16_t compute_transport_checksum(const basic_packet<B>& p) noexcept {
    const std::size_t field = transport_checksum_offset(p.protocol());
    if (field == 0) return 0;
    checksum_accumulator acc = detail::transport_pseudo_header(p);
    const auto l4 = p.transport_bytes();
    // Sum around the field rather than adding its complement: "x + F + ~F" is -0 when the rest
    // sums to zero (an all-zero ICMP message), and the checksum must then be 0xFFFF, not 0.
    acc.add(l4.first(field));
    acc.add(l4.subspan(field + 2));
    const std::uint16_t c = acc.finish();
    return (p.protocol() == ip_protocol::udp && c == 0) ? 0xFFFF : c;
}

/// Verifies every checksum of a parsed packet. Cost: O(packet length).
template <ByteType B>
[[nodiscard]] checksum_report verify_checksums(const basic_packet<B>& p) noexcept {
    checksum_report r;
    if (p.family() == ip_family::none) return r;
    if (p.is_tunnelled() && p.outer_family() == ip_family::v4)
        r.outer_ip = p.outer_ipv4().checksum_ok() ? checksum_status::ok : checksum_status::bad;
    if (p.family() == ip_family::v4) r.ip = p.ipv4().checksum_ok() ? checksum_status::ok : checksum_status::bad;
    const std::size_t field = transport_checksum_offset(p.protocol());
    if (!p.has_transport() || p.is_fragment() || field == 0) return r;
    const auto l4 = p.transport_bytes();
    if (p.protocol() == ip_protocol::udp && p.family() == ip_family::v4 && load_be16(l4.data() + 6) == 0) {
        r.transport = checksum_status::absent;
        return r;
    }
    checksum_accumulator acc = detail::transport_pseudo_header(p);
    acc.add(l4);
    r.transport = acc.verifies() ? checksum_status::ok : checksum_status::bad;
    return r;
}

/// Recomputes and stores every checksum of a parsed packet (IPv4 headers, outer and inner, and
/// the transport checksum unless the packet is a fragment). A UDP-over-IPv4 checksum of 0
/// stays 0 unless `fill_absent_udp`. Cost: O(packet length).
inline void fill_checksums(const packet& p, bool fill_absent_udp = false) noexcept {
    if (p.family() == ip_family::none) return;
    if (p.is_tunnelled() && p.outer_family() == ip_family::v4) p.outer_ipv4().update_checksum();
    if (p.family() == ip_family::v4) p.ipv4().update_checksum();
    const std::size_t field = transport_checksum_offset(p.protocol());
    if (!p.has_transport() || p.is_fragment() || field == 0) return;
    const auto l4 = p.transport_bytes();
    if (p.protocol() == ip_protocol::udp && p.family() == ip_family::v4 && !fill_absent_udp &&
        load_be16(l4.data() + 6) == 0)
        return;
    store_be16(l4.data() + field, compute_transport_checksum(p));
}

}  // namespace clusternet
