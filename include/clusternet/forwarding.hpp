// clusternet/forwarding.hpp -- what a dispatcher does to a packet once it knows the back end.
//
// Available policies, and when to use each:
//
//   mac_rewrite   LSMAC (seed 001), LVS direct routing (seed 002). Only the Ethernet addresses
//                 change: the frame goes to the back end's MAC. Back ends hold the cluster
//                 address (VIP) on a non-ARPing interface and answer clients directly, so the
//                 dispatcher sees one direction only. The fastest mode; needs the dispatcher and
//                 back ends on one link.
//   nat_rewrite   LSNAT (RFC 2391), LVS NAT. Inbound, the destination VIP:port becomes the back
//                 end's address:port; outbound (the back end's reply, routed through the
//                 dispatcher) the source becomes VIP:port again. IPv4 and TCP/UDP checksums are
//                 fixed with O(1) RFC 1624 updates; TTL is decremented (the dispatcher routes).
//   full_nat      NAT on both addresses (Katran's and IPVS-FNAT users' favourite): the source
//                 becomes a dispatcher address and a port allocated per flow, so back ends
//                 need no route through the dispatcher; the reply comes back to that address.
//   ipip_encap    RFC 2003 IP-in-IP: the packet is wrapped in an outer IPv4 header to the back
//                 end (LVS tunnelling, DPR redirection, seed 003). The back end unwraps it
//                 (ipip_decap) and answers the client directly. Needs 20 bytes more than the
//                 packet; a packet that would exceed the MTU is refused (`too_big`).
//   icmp_frag_needed  the ICMP "fragmentation needed" (RFC 1191) to send back for such a packet
//                 when it has DF set, so the client's path-MTU discovery adapts.
//
// Every function rewrites in place (or, for encapsulation, into the caller's buffer), is
// noexcept, allocates nothing, and returns false / an error, changing nothing, when the packet
// is not one it can handle. Checksums stay exact (tests/forwarding_test.cpp checks them against
// a full recompute). mac_rewrite, nat_rewrite and full_nat take either family (IPv6: the hop
// limit for the TTL, the transport checksum alone); the tunnel is IPv4 in IPv4 (RFC 2003) or
// IPv6 in IPv6 (RFC 2473), with ICMP "fragmentation needed" or ICMPv6 Packet Too Big for what
// does not fit.
#pragma once

#include <clusternet/address.hpp>
#include <clusternet/checksum.hpp>
#include <clusternet/error.hpp>
#include <clusternet/icmp.hpp>
#include <clusternet/packet.hpp>
#include <clusternet/rewrite.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace clusternet {

/// A back end, as the forwarding policies need it (Address: ipv4_address or ipv6_address).
template <class Address>
struct basic_backend_endpoint {
    Address address{};
    mac_address mac{};
    /// The port the back end serves on, for the NAT modes; 0 keeps the client's destination port.
    std::uint16_t port = 0;
};
using backend_endpoint = basic_backend_endpoint<ipv4_address>;
using backend_endpoint6 = basic_backend_endpoint<ipv6_address>;

/// The dispatcher's own side of its link.
template <class Address>
struct basic_local_endpoint {
    mac_address mac{};            ///< the dispatcher's interface towards the back ends
    Address address{};            ///< its own address: full NAT's source, the tunnel's source
    mac_address gateway_mac{};    ///< the next hop towards clients (NAT's outbound side)
    /// The interface towards clients, when it is another one (two-legged NAT); zero: `mac`.
    mac_address front_mac{};

    [[nodiscard]] const mac_address& client_side_mac() const noexcept {
        return front_mac == mac_address{} ? mac : front_mac;
    }
};
using local_endpoint = basic_local_endpoint<ipv4_address>;
using local_endpoint6 = basic_local_endpoint<ipv6_address>;

/// Sets the frame's Ethernet addresses. False for a frame without Ethernet.
inline bool set_ethernet(const packet& p, const mac_address& dst, const mac_address& src) noexcept {
    if (!p.has_ethernet()) return false;
    const auto eth = p.ethernet();
    eth.set_dst(dst);
    eth.set_src(src);
    return true;
}

/// LSMAC / direct routing: the frame goes to the back end unchanged above layer 2 (either
/// family: the back end holds the cluster address, v4 or v6).
struct mac_rewrite {
    template <class Address>
    static bool inbound(const packet& p, const basic_backend_endpoint<Address>& b,
                        const basic_local_endpoint<Address>& self) noexcept {
        return set_ethernet(p, b.mac, self.mac);
    }
};

/// LSNAT (RFC 2391): destination NAT inbound, source NAT on the reply. IPv6 the same way, with
/// the hop limit for the TTL and the transport checksum alone to fix.
struct nat_rewrite {
    /// Client -> VIP:port becomes client -> back end:port; TTL decremented (false, unchanged,
    /// when it would reach 0: the packet must not be forwarded).
    static bool inbound(const packet& p, const backend_endpoint& b, const local_endpoint& self) noexcept {
        if (p.family() != ip_family::v4 || !p.has_ethernet()) return false;
        if (!decrement_ttl(p)) return false;
        rewrite_ipv4_destination(p, b.address, b.port);
        return set_ethernet(p, b.mac, self.mac);
    }
    static bool inbound(const packet& p, const backend_endpoint6& b, const local_endpoint6& self) noexcept {
        if (p.family() != ip_family::v6 || !p.has_ethernet()) return false;
        if (!decrement_ttl(p)) return false;
        rewrite_ipv6_destination(p, b.address, b.port);
        return set_ethernet(p, b.mac, self.mac);
    }
    /// Back end -> client becomes VIP:port -> client, towards the gateway.
    static bool outbound(const packet& p, ipv4_address vip, std::uint16_t vport, const local_endpoint& self) noexcept {
        if (p.family() != ip_family::v4 || !p.has_ethernet()) return false;
        if (!decrement_ttl(p)) return false;
        rewrite_ipv4_source(p, vip, vport);
        return set_ethernet(p, self.gateway_mac, self.client_side_mac());
    }
    static bool outbound(const packet& p, const ipv6_address& vip, std::uint16_t vport, const local_endpoint6& self) noexcept {
        if (p.family() != ip_family::v6 || !p.has_ethernet()) return false;
        if (!decrement_ttl(p)) return false;
        rewrite_ipv6_source(p, vip, vport);
        return set_ethernet(p, self.gateway_mac, self.client_side_mac());
    }
};

/// Full NAT: both addresses rewritten; the back end sees the dispatcher as its client.
struct full_nat {
    /// Client:cport -> VIP:vport becomes self:local_port -> back end:port.
    static bool inbound(const packet& p, const backend_endpoint& b, const local_endpoint& self,
                        std::uint16_t local_port) noexcept {
        if (p.family() != ip_family::v4 || !p.has_ethernet() || (!p.is_tcp() && !p.is_udp())) return false;
        if (!decrement_ttl(p)) return false;
        rewrite_ipv4_source(p, self.address, local_port);
        rewrite_ipv4_destination(p, b.address, b.port);
        return set_ethernet(p, b.mac, self.mac);
    }
    static bool inbound(const packet& p, const backend_endpoint6& b, const local_endpoint6& self,
                        std::uint16_t local_port) noexcept {
        if (p.family() != ip_family::v6 || !p.has_ethernet() || (!p.is_tcp() && !p.is_udp())) return false;
        if (!decrement_ttl(p)) return false;
        rewrite_ipv6_source(p, self.address, local_port);
        rewrite_ipv6_destination(p, b.address, b.port);
        return set_ethernet(p, b.mac, self.mac);
    }
    /// Back end:port -> self:local_port becomes VIP:vport -> client:cport, towards the gateway.
    static bool outbound(const packet& p, const flow_key4& client_side, const local_endpoint& self) noexcept {
        if (p.family() != ip_family::v4 || !p.has_ethernet() || (!p.is_tcp() && !p.is_udp())) return false;
        if (!decrement_ttl(p)) return false;
        rewrite_ipv4_source(p, ipv4_address(client_side.dst), client_side.dport);
        rewrite_ipv4_destination(p, ipv4_address(client_side.src), client_side.sport);
        return set_ethernet(p, self.gateway_mac, self.client_side_mac());
    }
    static bool outbound(const packet& p, const flow_key6& client_side, const local_endpoint6& self) noexcept {
        if (p.family() != ip_family::v6 || !p.has_ethernet() || (!p.is_tcp() && !p.is_udp())) return false;
        if (!decrement_ttl(p)) return false;
        rewrite_ipv6_source(p, client_side.dst, client_side.dport);
        rewrite_ipv6_destination(p, client_side.src, client_side.sport);
        return set_ethernet(p, self.gateway_mac, self.client_side_mac());
    }
};

/// Why encapsulation or decapsulation refused a packet.
enum class tunnel_error : std::uint8_t {
    none = 0,
    not_ipv4,      ///< the packet (or, decapsulating, the outer header) is not IPv4
    too_big,       ///< the result would exceed the MTU
    no_room,       ///< the output buffer is too small
    not_tunnel,    ///< not IP-in-IP (decapsulation)
    not_for_us,    ///< the outer destination is not our address (decapsulation)
    bad_checksum,  ///< the outer header checksum does not verify (decapsulation)
    not_ipv6,      ///< (IPv6-in-IPv6) the packet is not IPv6
};
inline constexpr std::size_t tunnel_error_count = 8;

[[nodiscard]] constexpr std::string_view to_string(tunnel_error e) noexcept {
    switch (e) {
        case tunnel_error::none: return "none";
        case tunnel_error::not_ipv4: return "not_ipv4";
        case tunnel_error::too_big: return "too_big";
        case tunnel_error::no_room: return "no_room";
        case tunnel_error::not_tunnel: return "not_tunnel";
        case tunnel_error::not_for_us: return "not_for_us";
        case tunnel_error::bad_checksum: return "bad_checksum";
        case tunnel_error::not_ipv6: return "not_ipv6";
    }
    return "unknown";
}

/// RFC 2003 IP-in-IP encapsulation towards a back end (or a DPR peer).
struct ipip_encap {
    static constexpr std::size_t outer_size = 20;
    static constexpr std::uint8_t default_ttl = 64;

    struct result {
        tunnel_error error = tunnel_error::none;
        std::size_t size = 0;  ///< bytes written to `out` (the whole Ethernet frame)
    };

    /// Writes an Ethernet frame to `out`: Ethernet (to b.mac from self.mac), an outer IPv4
    /// header from self.address to b.address (protocol 4, TTL 64, TOS and DF copied from the
    /// inner header as RFC 2003 section 3.1 says, header checksum computed), then the inner IP
    /// packet as it is. `mtu` bounds the outer IP packet. O(packet size): one copy.
    static result encapsulate(const const_packet& p, const backend_endpoint& b, const local_endpoint& self,
                              std::span<std::byte> out, std::size_t mtu = 1500) noexcept {
        if (p.family() != ip_family::v4) return {tunnel_error::not_ipv4, 0};
        const auto inner = p.ip_bytes();
        const std::size_t outer_len = inner.size() + outer_size;
        if (outer_len > mtu || outer_len > 0xFFFF) return {tunnel_error::too_big, 0};
        const std::size_t frame_len = ethernet_view::header_size + outer_len;
        if (out.size() < frame_len) return {tunnel_error::no_room, 0};
        std::byte* f = out.data();
        std::memcpy(f, b.mac.bytes.data(), 6);
        std::memcpy(f + 6, self.mac.bytes.data(), 6);
        store_be16(f + 12, ethertype::ipv4);
        std::byte* ip = f + ethernet_view::header_size;
        const auto in = p.ipv4();
        store_u8(ip + 0, 0x45);
        store_u8(ip + 1, in.tos());
        store_be16(ip + 2, static_cast<std::uint16_t>(outer_len));
        store_be16(ip + 4, 0);
        store_be16(ip + 6, in.dont_fragment() ? 0x4000 : 0);
        store_u8(ip + 8, default_ttl);
        store_u8(ip + 9, ip_protocol::ipip);
        store_be16(ip + 10, 0);
        store_be32(ip + 12, self.address.value);
        store_be32(ip + 16, b.address.value);
        store_be16(ip + 10, internet_checksum(std::span<const std::byte>(ip, outer_size)));
        std::memcpy(ip + outer_size, inner.data(), inner.size());
        return {tunnel_error::none, frame_len};
    }

    static constexpr std::size_t outer_size6 = 40;
    /// The IPv6 tunnel (RFC 2473, IPv6 in IPv6): an outer IPv6 header from self.address to
    /// b.address, next header 41, hop limit 64, the inner traffic class and flow label copied
    /// (RFC 2473 6.5 and 6.4 leave both to the entry point; copying keeps the inner flow's
    /// class and its ECMP hash), then the inner packet as it is. IPv6 routers never fragment,
    /// so a packet whose outer one would exceed `mtu` is too_big, for a Packet Too Big to its
    /// source (icmp6_packet_too_big). O(packet size): one copy.
    static result encapsulate(const const_packet& p, const backend_endpoint6& b, const local_endpoint6& self,
                              std::span<std::byte> out, std::size_t mtu = 1500) noexcept {
        if (p.family() != ip_family::v6) return {tunnel_error::not_ipv6, 0};
        const auto inner = p.ip_bytes();
        const std::size_t outer_len = inner.size() + outer_size6;
        if (outer_len > mtu || inner.size() > 0xFFFF) return {tunnel_error::too_big, 0};
        const std::size_t frame_len = ethernet_view::header_size + outer_len;
        if (out.size() < frame_len) return {tunnel_error::no_room, 0};
        std::byte* f = out.data();
        std::memcpy(f, b.mac.bytes.data(), 6);
        std::memcpy(f + 6, self.mac.bytes.data(), 6);
        store_be16(f + 12, ethertype::ipv6);
        std::byte* ip = f + ethernet_view::header_size;
        store_be32(ip, (load_be32(inner.data()) & 0x0FFFFFFFU) | 0x60000000U);  // version 6, the inner class and label
        store_be16(ip + 4, static_cast<std::uint16_t>(inner.size()));
        store_u8(ip + 6, ip_protocol::ipv6);
        store_u8(ip + 7, default_ttl);
        std::memcpy(ip + 8, self.address.bytes.data(), 16);
        std::memcpy(ip + 24, b.address.bytes.data(), 16);
        std::memcpy(ip + outer_size6, inner.data(), inner.size());
        return {tunnel_error::none, frame_len};
    }
};

/// ICMP "fragmentation needed and DF set" (RFC 792 type 3 code 4, with RFC 1191's next-hop MTU)
/// for a packet a tunnel cannot carry: what a router -- and IPVS's tunnel mode -- sends back so
/// that the client's path-MTU discovery shrinks its segments instead of losing them for good.
struct icmp_frag_needed {
    static constexpr std::size_t quoted_payload = 8;  ///< of the original datagram, after its header
    static constexpr std::size_t max_frame = ethernet_view::header_size + 20 + 8 + 60 + quoted_payload;

    /// Writes the Ethernet frame to `out`: back to the sender of `p`'s frame (its source MAC,
    /// from its destination MAC), IPv4 from `from` to `p`'s source, the ICMP message quoting
    /// p's IP header and first 8 bytes. 0 when `p` is not IPv4 with DF set, is a fragment other
    /// than the first, is itself ICMP other than echo (RFC 1122 3.2.2: no error about an error),
    /// or `out` is too small.
    [[nodiscard]] static std::size_t build(const const_packet& p, ipv4_address from, std::uint16_t next_hop_mtu,
                                           std::span<std::byte> out) noexcept {
        if (p.family() != ip_family::v4 || !p.has_ethernet()) return 0;
        const auto in = p.ipv4();
        if (!in.dont_fragment() || in.fragment_offset() != 0) return 0;
        if (p.protocol() == ip_protocol::icmp) {
            const auto payload = in.payload();
            if (payload.empty() || (std::to_integer<std::uint8_t>(payload[0]) != 0 && std::to_integer<std::uint8_t>(payload[0]) != 8))
                return 0;
        }
        const auto ip_in = p.ip_bytes();
        const std::size_t quote = std::min(ip_in.size(), in.header_length() + quoted_payload);
        const std::size_t icmp_len = 8 + quote, ip_len = 20 + icmp_len;
        const std::size_t frame_len = ethernet_view::header_size + ip_len;
        if (out.size() < frame_len) return 0;
        std::byte* f = out.data();
        const auto frame = p.frame();
        std::memcpy(f, frame.data() + 6, 6);  // to whoever sent it (the router towards the client)
        std::memcpy(f + 6, frame.data(), 6);  // from the address it was sent to (ours)
        store_be16(f + 12, ethertype::ipv4);
        std::byte* ip = f + ethernet_view::header_size;
        store_u8(ip + 0, 0x45);
        store_u8(ip + 1, 0xC0);  // internetwork control, as routers mark ICMP errors
        store_be16(ip + 2, static_cast<std::uint16_t>(ip_len));
        store_be16(ip + 4, 0);
        store_be16(ip + 6, 0);
        store_u8(ip + 8, ipip_encap::default_ttl);
        store_u8(ip + 9, ip_protocol::icmp);
        store_be16(ip + 10, 0);
        store_be32(ip + 12, from.value);
        store_be32(ip + 16, in.src());
        store_be16(ip + 10, internet_checksum(std::span<const std::byte>(ip, 20)));
        std::byte* m = ip + 20;
        store_u8(m + 0, icmp_type::dest_unreachable);
        store_u8(m + 1, 4);  // fragmentation needed and DF set
        store_be16(m + 2, 0);
        store_be16(m + 4, 0);
        store_be16(m + 6, next_hop_mtu);
        std::memcpy(m + 8, ip_in.data(), quote);
        store_be16(m + 2, internet_checksum(std::span<const std::byte>(m, icmp_len)));
        return frame_len;
    }

    /// build() for a packet an IP-in-IP tunnel over a link of `link_mtu` cannot carry: the
    /// next-hop MTU is what fits inside the outer header (link_mtu - 20).
    [[nodiscard]] static std::size_t build_for_tunnel(const const_packet& p, ipv4_address from, std::size_t link_mtu,
                                                      std::span<std::byte> out) noexcept {
        const std::size_t fits = link_mtu > ipip_encap::outer_size ? link_mtu - ipip_encap::outer_size : 0;
        return build(p, from, static_cast<std::uint16_t>(std::min<std::size_t>(fits, 0xFFFF)), out);
    }
};

/// ICMPv6 Packet Too Big (RFC 4443 3.2) for a packet the IPv6 tunnel cannot carry: IPv6 has no
/// in-network fragmentation, so the source must learn the size that fits (RFC 8201).
struct icmp6_packet_too_big {
    /// RFC 4443 2.4 (c): the error holds as much of the packet as fits in the minimum IPv6 MTU.
    static constexpr std::size_t min_mtu = 1280;
    static constexpr std::size_t max_frame = ethernet_view::header_size + min_mtu;

    /// Writes the Ethernet frame to `out`: back to the sender of `p`'s frame, IPv6 from `from`
    /// to p's source (hop limit 64), type 2 code 0 with `mtu`, quoting p from its IPv6 header
    /// up to the 1280-byte limit, checksum with the pseudo-header. 0 when `p` is not IPv6, is
    /// itself an ICMPv6 error (RFC 4443 2.4 (e): no error about an error), comes from an
    /// unspecified or multicast source, or `out` is too small.
    [[nodiscard]] static std::size_t build(const const_packet& p, const ipv6_address& from, std::uint32_t mtu,
                                           std::span<std::byte> out) noexcept {
        if (p.family() != ip_family::v6 || !p.has_ethernet()) return 0;
        const auto in = p.ipv6();
        const ipv6_address src = in.src();
        if (src == ipv6_address{} || src.bytes[0] == std::byte{0xFF}) return 0;
        if (p.protocol() == ip_protocol::icmpv6) {
            const auto m = in.upper_layer();
            if (m.empty() || std::to_integer<std::uint8_t>(m[0]) < 128) return 0;  // an error message
        }
        const auto ip_in = p.ip_bytes();
        const std::size_t quote = std::min(ip_in.size(), min_mtu - 40 - 8);
        const std::size_t icmp_len = 8 + quote, frame_len = ethernet_view::header_size + 40 + icmp_len;
        if (out.size() < frame_len) return 0;
        std::byte* f = out.data();
        const auto frame = p.frame();
        std::memcpy(f, frame.data() + 6, 6);
        std::memcpy(f + 6, frame.data(), 6);
        store_be16(f + 12, ethertype::ipv6);
        std::byte* ip = f + ethernet_view::header_size;
        store_be32(ip, 0x60000000U);
        store_be16(ip + 4, static_cast<std::uint16_t>(icmp_len));
        store_u8(ip + 6, ip_protocol::icmpv6);
        store_u8(ip + 7, 64);
        std::memcpy(ip + 8, from.bytes.data(), 16);
        std::memcpy(ip + 24, src.bytes.data(), 16);
        std::byte* m = ip + 40;
        store_u8(m, icmpv6_type::packet_too_big);
        store_u8(m + 1, 0);
        store_be16(m + 2, 0);
        store_be32(m + 4, mtu);
        std::memmove(m + 8, ip_in.data(), quote);  // memmove: `out` may be the frame's own buffer
        checksum_accumulator acc;
        add_ipv6_pseudo_header(acc, std::span<const std::byte, 16>(ip + 8, 16), std::span<const std::byte, 16>(ip + 24, 16),
                               ip_protocol::icmpv6, static_cast<std::uint32_t>(icmp_len));
        acc.add(std::span<const std::byte>(m, icmp_len));
        store_be16(m + 2, acc.finish());
        return frame_len;
    }

    /// For the IPv6 tunnel: the packet that fits a link of `link_mtu` is 40 bytes smaller.
    [[nodiscard]] static std::size_t build_for_tunnel(const const_packet& p, const ipv6_address& from, std::size_t link_mtu,
                                                      std::span<std::byte> out) noexcept {
        const std::size_t fits = link_mtu > ipip_encap::outer_size6 ? link_mtu - ipip_encap::outer_size6 : 0;
        return build(p, from, static_cast<std::uint32_t>(fits), out);
    }
};

/// The receiving end of IP-in-IP: checks the outer header and hands out the inner packet.
struct ipip_decap {
    /// `p` parsed with parse_options::decapsulate. Returns the inner IP packet (to write to a
    /// TUN device, or to forward) when the outer header is IPv4, verifies, and is addressed to
    /// `self` (any address when `self` is 0.0.0.0); else an empty span and the reason.
    static std::span<const std::byte> inner(const const_packet& p, ipv4_address self, tunnel_error& why) noexcept {
        why = tunnel_error::none;
        if (!p.is_tunnelled()) {
            why = tunnel_error::not_tunnel;
            return {};
        }
        if (p.outer_family() != ip_family::v4) {
            why = tunnel_error::not_ipv4;
            return {};
        }
        const auto outer = p.outer_ipv4();
        if (self.value != 0 && outer.dst() != self.value) {
            why = tunnel_error::not_for_us;
            return {};
        }
        if (!outer.checksum_ok()) {
            why = tunnel_error::bad_checksum;
            return {};
        }
        return p.ip_bytes();
    }
};

}  // namespace clusternet
