// clusternet/packet.hpp -- one call that parses a whole packet, link layer to transport.
//
//   frame ─► Ethernet (+ up to 2 VLAN tags) ─► ARP
//                                          └─► IPv4 | IPv6 (+ extension headers)
//                                                  └─► [IP-in-IP: IPv4 | IPv6, one level] 
//                                                          └─► TCP | UDP | ICMP | ICMPv6 | other
//
// `basic_packet` keeps offsets into the frame (about 56 bytes, trivially copyable) and hands out
// the typed views on demand, plus the flow key. Every length is checked on the way in, so the
// views it hands out never read outside the frame.
//
// What is refused, and why, is a `parse_error`; dispatchers count it. Fragments are refused
// with `fragment` unless `parse_options::accept_fragments` is set, in which case the first
// fragment's transport header is parsed (UDP's length is then not checked against the data,
// which is incomplete) and later fragments have no transport header: their flow key has ports 0,
// the 3-tuple a load balancer hashes fragments by.
//
// parse_ethernet_packet() first tries the shape nearly every packet of a web cluster has --
// Ethernet without VLAN tags, IPv4 without options, not a fragment, TCP -- with the same checks
// in fewer steps (about a third of the instructions), and falls back to the general walk
// (detail::parse_ethernet_general) for anything else. Both give the same packet or the same
// error; tests/packet_test.cpp and the packet fuzz target compare them.
#pragma once

#include <clusternet/arp.hpp>
#include <clusternet/ethernet.hpp>
#include <clusternet/flow_key.hpp>
#include <clusternet/icmp.hpp>
#include <clusternet/ipv4.hpp>
#include <clusternet/ipv6.hpp>
#include <clusternet/tcp.hpp>
#include <clusternet/udp.hpp>

namespace clusternet {

template <ByteType B>
class basic_packet;
struct parse_options;

namespace detail {
template <ByteType B>
constexpr result<basic_packet<B>> parse_ethernet_general(std::span<B> frame, parse_options opt) noexcept;
}  // namespace detail

struct parse_options {
    /// Parse fragments instead of refusing them with parse_error::fragment.
    bool accept_fragments = false;
    /// Look through one level of IP-in-IP (protocol 4) or IPv6-in-IP (41): the packet's IP and
    /// transport views are then the inner ones, and outer_ipv4()/outer_ipv6() the tunnel's.
    bool decapsulate = false;
};

template <ByteType B>
class basic_packet {
public:
    constexpr basic_packet() noexcept = default;
    template <ByteType B2>
        requires std::is_const_v<B> && (!std::is_const_v<B2>)
    constexpr basic_packet(const basic_packet<B2>& o) noexcept  // NOLINT: to const
        : frame_(o.frame_), l3_off_(o.l3_off_), l3_len_(o.l3_len_), l4_off_(o.l4_off_), l4_len_(o.l4_len_),
          outer_off_(o.outer_off_), outer_len_(o.outer_len_), v6_l4_rel_(o.v6_l4_rel_), v6_frag_(o.v6_frag_),
          vlans_(o.vlans_), family_(o.family_), outer_family_(o.outer_family_),
          protocol_(o.protocol_), flags_(o.flags_) {}

    /// Every byte handed to the parser.
    [[nodiscard]] constexpr std::span<B> frame() const noexcept { return frame_; }

    [[nodiscard]] constexpr bool has_ethernet() const noexcept { return (flags_ & f_eth) != 0; }
    [[nodiscard]] constexpr basic_ethernet_view<B> ethernet() const noexcept { return {frame_, vlans_}; }
    [[nodiscard]] constexpr bool is_arp() const noexcept { return (flags_ & f_arp) != 0; }
    [[nodiscard]] constexpr basic_arp_view<B> arp() const noexcept { return basic_arp_view<B>(frame_.subspan(l3_off_)); }

    /// Family of the (inner, when decapsulated) IP header; ip_family::none for ARP.
    [[nodiscard]] constexpr ip_family family() const noexcept { return static_cast<ip_family>(family_); }
    /// Precondition: family() == ip_family::v4.
    [[nodiscard]] constexpr basic_ipv4_view<B> ipv4() const noexcept {
        return basic_ipv4_view<B>(frame_.subspan(l3_off_, l3_len_));
    }
    /// Precondition: family() == ip_family::v6.
    [[nodiscard]] constexpr basic_ipv6_view<B> ipv6() const noexcept {
        return {frame_.subspan(l3_off_, l3_len_), v6_l4_rel_, protocol_, v6_frag_, (flags_ & f_fragment) != 0};
    }
    /// The IP header and everything after it, of either family.
    [[nodiscard]] constexpr std::span<B> ip_bytes() const noexcept { return frame_.subspan(l3_off_, l3_len_); }
    [[nodiscard]] constexpr std::size_t ip_offset() const noexcept { return l3_off_; }

    /// True when the packet was IP-in-IP and decapsulated.
    [[nodiscard]] constexpr bool is_tunnelled() const noexcept { return (flags_ & f_tunnel) != 0; }
    [[nodiscard]] constexpr ip_family outer_family() const noexcept { return static_cast<ip_family>(outer_family_); }
    [[nodiscard]] constexpr basic_ipv4_view<B> outer_ipv4() const noexcept {
        return basic_ipv4_view<B>(frame_.subspan(outer_off_, outer_len_));
    }
    [[nodiscard]] constexpr basic_ipv6_view<B> outer_ipv6() const noexcept {
        const std::uint8_t proto = family() == ip_family::v4 ? ip_protocol::ipip : ip_protocol::ipv6;
        return {frame_.subspan(outer_off_, outer_len_), static_cast<std::uint16_t>(l3_off_ - outer_off_), proto, 0, false};
    }
    [[nodiscard]] constexpr std::size_t outer_ip_offset() const noexcept { return outer_off_; }

    /// The upper-layer protocol number (TCP, UDP, ICMP, ...).
    [[nodiscard]] constexpr std::uint8_t protocol() const noexcept { return protocol_; }
    /// True when the transport header is in this packet (false for later fragments).
    [[nodiscard]] constexpr bool has_transport() const noexcept { return (flags_ & f_l4) != 0; }
    [[nodiscard]] constexpr bool is_fragment() const noexcept { return (flags_ & f_fragment) != 0; }
    [[nodiscard]] constexpr bool is_tcp() const noexcept { return has_transport() && protocol_ == ip_protocol::tcp; }
    [[nodiscard]] constexpr bool is_udp() const noexcept { return has_transport() && protocol_ == ip_protocol::udp; }
    [[nodiscard]] constexpr bool is_icmp() const noexcept {
        return has_transport() && (protocol_ == ip_protocol::icmp || protocol_ == ip_protocol::icmpv6);
    }
    /// The transport header and data (empty for later fragments).
    [[nodiscard]] constexpr std::span<B> transport_bytes() const noexcept { return frame_.subspan(l4_off_, l4_len_); }
    [[nodiscard]] constexpr std::size_t transport_offset() const noexcept { return l4_off_; }
    /// Precondition: is_tcp().
    [[nodiscard]] constexpr basic_tcp_view<B> tcp() const noexcept { return basic_tcp_view<B>(transport_bytes()); }
    /// Precondition: is_udp().
    [[nodiscard]] constexpr basic_udp_view<B> udp() const noexcept { return basic_udp_view<B>(transport_bytes()); }
    /// Precondition: is_icmp().
    [[nodiscard]] constexpr basic_icmp_view<B> icmp() const noexcept {
        return {transport_bytes(), protocol_ == ip_protocol::icmpv6};
    }

    /// Source port (TCP, UDP), the echo identifier (ICMP echo), else 0. Read from the packet,
    /// so it follows rewrites.
    [[nodiscard]] std::uint16_t sport() const noexcept { return port_at(0); }
    /// Destination port (TCP, UDP), the echo identifier (ICMP echo), else 0.
    [[nodiscard]] std::uint16_t dport() const noexcept { return port_at(2); }

    /// The IPv4 5-tuple. Precondition: family() == ip_family::v4.
    [[nodiscard]] CLUSTERNET_FORCE_INLINE flow_key4 key4() const noexcept {
        const auto ip = ipv4();
        return flow_key4{ip.src(), ip.dst(), sport(), dport(), protocol_, {0, 0, 0}};
    }
    /// The IPv6 5-tuple. Precondition: family() == ip_family::v6.
    [[nodiscard]] CLUSTERNET_FORCE_INLINE flow_key6 key6() const noexcept {
        const auto ip = ipv6();
        return flow_key6{ip.src(), ip.dst(), sport(), dport(), protocol_, {0, 0, 0}};
    }
    /// The 5-tuple of either family. Precondition: family() != ip_family::none.
    [[nodiscard]] flow_key key() const noexcept {
        return family() == ip_family::v4 ? flow_key(key4()) : flow_key(key6());
    }

private:
    template <ByteType>
    friend class basic_packet;
    template <ByteType B2>
    friend constexpr result<basic_packet<B2>> parse_ip_packet(std::span<B2>, parse_options) noexcept;
    template <ByteType B2>
    friend constexpr result<basic_packet<B2>> parse_ethernet_packet(std::span<B2>, parse_options) noexcept;
    template <ByteType B2>
    friend constexpr result<basic_packet<B2>> detail::parse_ethernet_general(std::span<B2>, parse_options) noexcept;

    /// The common case of parse_ethernet_packet(): untagged Ethernet, IPv4 with IHL 5, not a
    /// fragment, TCP. True, with the packet filled in as the general walk would, when the frame
    /// is that and valid; false (nothing decided) otherwise, for the general walk to judge.
    CLUSTERNET_ALWAYS_INLINE constexpr bool parse_ipv4_tcp(std::span<B> frame) noexcept {
        constexpr std::size_t eth = 14, ip = 20;
        if (frame.size() < eth + ip + 20) return false;
        const std::byte* f = frame.data();
        if (load_be16(f + 12) != ethertype::ipv4 || load_u8(f + eth) != 0x45 || load_u8(f + eth + 9) != ip_protocol::tcp)
            return false;
        const std::size_t total = load_be16(f + eth + 2);
        if (total < ip + 20 || total > frame.size() - eth || (load_be16(f + eth + 6) & 0x3FFFU) != 0) return false;
        const std::size_t doff = static_cast<std::size_t>(load_u8(f + eth + ip + 12) >> 4) * 4;
        if (doff < 20 || doff > total - ip) return false;
        if (doff > 20 && detail::check_tcp_options(f + eth + ip + 20, doff - 20) != parse_error::none) return false;
        frame_ = frame;
        flags_ = f_eth | f_l4;
        family_ = 4;
        protocol_ = ip_protocol::tcp;
        l3_off_ = eth;
        l3_len_ = static_cast<std::uint32_t>(total);
        l4_off_ = eth + ip;
        l4_len_ = static_cast<std::uint32_t>(total - ip);
        return true;
    }

    [[nodiscard]] CLUSTERNET_ALWAYS_INLINE std::uint16_t port_at(std::size_t off) const noexcept {
        if (CLUSTERNET_LIKELY(has_transport() && (protocol_ == ip_protocol::tcp || protocol_ == ip_protocol::udp)))
            return load_be16(frame_.data() + l4_off_ + off);
        return echo_identifier();
    }
    /// The ICMP echo identifier, or 0.
    [[nodiscard]] CLUSTERNET_COLD std::uint16_t echo_identifier() const noexcept {
        if (!is_icmp() || !icmp().is_echo()) return 0;
        return load_be16(frame_.data() + l4_off_ + 4);
    }

    static constexpr std::uint8_t f_eth = 1, f_arp = 2, f_tunnel = 4, f_l4 = 8, f_fragment = 16;

    template <bool Inner>
    CLUSTERNET_FORCE_INLINE constexpr parse_error parse_ip(std::size_t off, parse_options opt) noexcept;
    CLUSTERNET_FORCE_INLINE constexpr parse_error parse_transport(std::span<B> l4, bool first_fragment_only) noexcept;
    constexpr parse_error decapsulate(std::span<B> upper, parse_options opt) noexcept;

    std::span<B> frame_{};
    std::uint32_t l3_off_ = 0, l3_len_ = 0, l4_off_ = 0, l4_len_ = 0, outer_off_ = 0, outer_len_ = 0;
    std::uint16_t v6_l4_rel_ = 0, v6_frag_ = 0;
    std::uint8_t vlans_ = 0, family_ = 0, outer_family_ = 0, protocol_ = 0, flags_ = 0;
};

template <ByteType B>
constexpr parse_error basic_packet<B>::parse_transport(std::span<B> l4, bool partial) noexcept {
    l4_off_ = static_cast<std::uint32_t>(l4.data() - frame_.data());
    l4_len_ = static_cast<std::uint32_t>(l4.size());
    switch (protocol_) {
        case ip_protocol::tcp: {
            const auto t = parse_tcp(l4);
            if (!t) return t.error();
            break;
        }
        case ip_protocol::udp: {
            if (partial) {
                // First fragment: the header is here, the length covers data still to come.
                if (l4.size() < 8) return parse_error::truncated;
            } else {
                const auto u = parse_udp(l4);
                if (!u) return u.error();
                l4_len_ = static_cast<std::uint32_t>(u->size());
            }
            break;
        }
        case ip_protocol::icmp:
        case ip_protocol::icmpv6: {
            const auto i = parse_icmp(l4, protocol_ == ip_protocol::icmpv6);
            if (!i) return i.error();
            break;
        }
        default:
            return parse_error::none;  // another protocol: no transport view, ports 0
    }
    flags_ |= f_l4;
    return parse_error::none;
}

template <ByteType B>
template <bool Inner>
constexpr parse_error basic_packet<B>::parse_ip(std::size_t off, parse_options opt) noexcept {
    const std::span<B> rest = frame_.subspan(off);
    if (rest.empty()) return parse_error::truncated;
    const unsigned version = load_u8(rest.data()) >> 4;
    std::span<B> upper;
    bool fragment = false, later_fragment = false;
    if (version == 4) {
        const auto ip = parse_ipv4(rest);
        if (!ip) return ip.error();
        family_ = 4;
        protocol_ = ip->protocol();
        l3_len_ = static_cast<std::uint32_t>(ip->size());
        upper = ip->payload();
        fragment = ip->is_fragment();
        later_fragment = ip->fragment_offset() != 0;
    } else if (version == 6) {
        const auto ip = parse_ipv6(rest);
        if (!ip) return ip.error();
        family_ = 6;
        protocol_ = ip->upper_layer_protocol();
        l3_len_ = static_cast<std::uint32_t>(ip->size());
        v6_l4_rel_ = static_cast<std::uint16_t>(ip->upper_layer_offset());
        v6_frag_ = ip->fragment_field();
        upper = ip->upper_layer();
        fragment = ip->is_fragment();
        later_fragment = ip->fragment_offset() != 0;
    } else {
        return parse_error::bad_version;
    }
    l3_off_ = static_cast<std::uint32_t>(off);
    if (fragment) {
        if (!opt.accept_fragments) return parse_error::fragment;
        flags_ |= f_fragment;
        if (later_fragment) {
            l4_off_ = static_cast<std::uint32_t>(upper.data() - frame_.data());
            return parse_error::none;
        }
    }
    if constexpr (!Inner) {
        if (opt.decapsulate && !fragment && (protocol_ == ip_protocol::ipip || protocol_ == ip_protocol::ipv6))
            return decapsulate(upper, opt);
    }
    return parse_transport(upper, fragment);
}

template <ByteType B>
constexpr parse_error basic_packet<B>::decapsulate(std::span<B> upper, parse_options opt) noexcept {
    const std::size_t inner_off = static_cast<std::size_t>(upper.data() - frame_.data());
    const unsigned inner_version = upper.empty() ? 0 : load_u8(upper.data()) >> 4;
    if (inner_version != (protocol_ == ip_protocol::ipip ? 4U : 6U)) return parse_error::bad_version;
    outer_family_ = family_;
    outer_off_ = l3_off_;
    outer_len_ = l3_len_;
    flags_ |= f_tunnel;
    // The inner packet must lie within the outer one's payload.
    const std::span<B> saved = frame_;
    frame_ = frame_.first(inner_off + upper.size());
    const parse_error e = parse_ip<true>(inner_off, opt);
    frame_ = saved;
    return e;
}

/// Parses an IP packet (from a TUN device or a raw socket), IPv4 or IPv6 by its version field.
/// Errors: those of the IP, extension-header and transport parsers, and `fragment`.
template <ByteType B>
[[nodiscard]] CLUSTERNET_FORCE_INLINE constexpr result<basic_packet<B>> parse_ip_packet(std::span<B> packet, parse_options opt = {}) noexcept {
    basic_packet<B> p;
    p.frame_ = packet;
    if (const parse_error e = p.template parse_ip<false>(0, opt); e != parse_error::none) return e;
    return p;
}

namespace detail {
/// parse_ethernet_packet() without its fast path: the general walk, layer by layer. The same
/// result for every frame; exposed for the tests that say so.
template <ByteType B>
[[nodiscard]] constexpr result<basic_packet<B>> parse_ethernet_general(std::span<B> frame, parse_options opt) noexcept {
    const auto eth = parse_ethernet(frame);
    if (!eth) return eth.error();
    basic_packet<B> p;
    p.frame_ = frame;
    p.vlans_ = static_cast<std::uint8_t>(eth->vlan_tag_count());
    p.flags_ = basic_packet<B>::f_eth;
    const std::size_t off = eth->header_length();
    switch (eth->ethertype()) {
        case ethertype::ipv4:
        case ethertype::ipv6: {
            const std::size_t v = frame.size() > off ? (load_u8(frame.data() + off) >> 4) : 0;
            if (v != (eth->ethertype() == ethertype::ipv4 ? 4U : 6U)) {
                return frame.size() > off ? parse_error::bad_version : parse_error::truncated;
            }
            if (const parse_error e = p.template parse_ip<false>(off, opt); e != parse_error::none) return e;
            return p;
        }
        case ethertype::arp: {
            const auto a = parse_arp(frame.subspan(off));
            if (!a) return a.error();
            p.l3_off_ = static_cast<std::uint32_t>(off);
            p.flags_ |= basic_packet<B>::f_arp;
            return p;
        }
        default:
            return parse_error::unsupported_ethertype;
    }
}
}  // namespace detail

/// Parses an Ethernet frame: VLAN tags, then ARP, IPv4 or IPv6 and what they carry.
/// Errors: as parse_ip_packet(), plus `too_many_vlan_tags`, `bad_arp`, `unsupported_ethertype`.
/// Cost: about 4 ns for Ethernet/IPv4/TCP on the machines we measure (docs/performance.md).
template <ByteType B>
[[nodiscard]] CLUSTERNET_FORCE_INLINE constexpr result<basic_packet<B>> parse_ethernet_packet(std::span<B> frame, parse_options opt = {}) noexcept {
    if (basic_packet<B> p; p.parse_ipv4_tcp(frame)) [[likely]] return p;
    return detail::parse_ethernet_general(frame, opt);
}

using packet = basic_packet<std::byte>;
using const_packet = basic_packet<const std::byte>;

}  // namespace clusternet
