// clusternet/ndp.hpp -- IPv6 neighbour discovery (RFC 4861) for back-end discovery: the
// Neighbor Solicitation a dispatcher sends to learn a back end's MAC, and the validation of the
// Neighbor Advertisement that answers it. IPv6's ARP (arp.hpp), as LSMAC's discovery needs it.
//
//   Neighbor Solicitation (type 135)          Neighbor Advertisement (type 136)
//   +--------+--------+-----------------+     +--------+--------+-----------------+
//   |  135   |   0    |    checksum     |     |  136   |   0    |    checksum     |
//   +--------+--------+-----------------+     +-+-+-+-----------+-----------------+
//   |            reserved (0)           |     |R|S|O|        reserved (0)         |
//   +-----------------------------------+     +-+-+-+-----------------------------+
//   |     target address (16 bytes)     |     |     target address (16 bytes)     |
//   +--------+--------+-----------------+     +--------+--------+-----------------+
//   | type 1 | len 1  | source MAC ...  |     | type 2 | len 1  | target MAC ...  |
//   +--------+--------+-----------------+     +--------+--------+-----------------+
//
// A solicitation goes to the target's solicited-node multicast address ff02::1:ffXX:XXXX
// (RFC 4291 2.7.1) on the Ethernet multicast 33:33:ff:XX:XX:XX (RFC 2464 7), hop limit 255.
// An advertisement counts only if it passes RFC 4861 7.1.2's checks (hop limit 255, code 0,
// ICMPv6 length at least 24, checksum, options of non-zero length within the message) and
// carries the target's link-layer address (the option, type 2).
#pragma once

#include <clusternet/address.hpp>
#include <clusternet/packet.hpp>
#include <clusternet/packet_builder.hpp>
#include <clusternet/packet_checksum.hpp>

#include <array>
#include <cstddef>
#include <cstring>
#include <optional>
#include <span>

namespace clusternet {

namespace icmpv6_type {
inline constexpr std::uint8_t neighbor_solicitation = 135;
inline constexpr std::uint8_t neighbor_advertisement = 136;
}  // namespace icmpv6_type

namespace ndp {

inline constexpr std::uint8_t option_source_link_layer = 1;
inline constexpr std::uint8_t option_target_link_layer = 2;
/// The size of a solicitation build_solicitation() writes: Ethernet 14, IPv6 40, ICMPv6 8,
/// target 16, source link-layer option 8.
inline constexpr std::size_t solicitation_size = 14 + 40 + 8 + 16 + 8;

/// The solicited-node multicast address of `a`: ff02::1:ff00:0/104 with a's last 24 bits.
[[nodiscard]] inline ipv6_address solicited_node(const ipv6_address& a) noexcept {
    ipv6_address m;
    m.bytes[0] = std::byte{0xFF};
    m.bytes[1] = std::byte{0x02};
    m.bytes[11] = std::byte{0x01};
    m.bytes[12] = std::byte{0xFF};
    m.bytes[13] = a.bytes[13];
    m.bytes[14] = a.bytes[14];
    m.bytes[15] = a.bytes[15];
    return m;
}

/// The Ethernet address of an IPv6 multicast group: 33:33 and the group's last 32 bits.
[[nodiscard]] inline mac_address multicast_mac(const ipv6_address& group) noexcept {
    mac_address m;
    m.bytes[0] = std::byte{0x33};
    m.bytes[1] = std::byte{0x33};
    std::memcpy(m.bytes.data() + 2, group.bytes.data() + 12, 4);
    return m;
}

/// Writes into `out` a Neighbor Solicitation for `target` from (self_mac, self_ip), with the
/// source link-layer option, and returns its size (solicitation_size), or 0 when `out` is too
/// small. self_ip should be one of the interface's addresses (its link-local one will do): the
/// answer comes back to it, unicast to self_mac. (The unspecified address :: is duplicate
/// address detection's, RFC 4862, and is refused here: 0.)
[[nodiscard]] inline std::size_t build_solicitation(std::span<std::byte> out, const mac_address& self_mac,
                                                    const ipv6_address& self_ip, const ipv6_address& target) noexcept {
    if (out.size() < solicitation_size || self_ip == ipv6_address{}) return 0;
    std::array<std::byte, 24> body{};
    std::memcpy(body.data(), target.bytes.data(), 16);
    body[16] = std::byte{option_source_link_layer};
    body[17] = std::byte{1};  // in units of 8 bytes
    std::memcpy(body.data() + 18, self_mac.bytes.data(), 6);
    const ipv6_address group = solicited_node(target);
    auto r = packet_builder(out)
                 .ethernet({.dst = multicast_mac(group), .src = self_mac})
                 .ipv6({.src = self_ip, .dst = group, .hop_limit = 255})
                 .icmp({.type = icmpv6_type::neighbor_solicitation, .code = 0, .identifier = 0, .sequence = 0})
                 .payload(std::span<const std::byte>(body))
                 .finish();
    return r ? r->size() : 0;
}

/// What a valid Neighbor Advertisement says.
struct advertisement {
    ipv6_address target;
    mac_address mac;      ///< the target link-layer address option's
    bool router = false;  ///< R
    bool solicited = false;  ///< S
    bool override_flag = false;  ///< O
};

/// The advertisement `p` carries, or nullopt: not one, or one that fails RFC 4861 7.1.2's
/// validation, or one without a target link-layer address (nothing to learn). Never reads
/// outside the packet.
template <ByteType B>
[[nodiscard]] std::optional<advertisement> parse_advertisement(const basic_packet<B>& p) noexcept {
    if (p.family() != ip_family::v6 || !p.is_icmp() || p.is_fragment()) return std::nullopt;
    if (p.ipv6().hop_limit() != 255) return std::nullopt;  // sent from off-link: forged
    const auto m = p.transport_bytes();
    if (m.size() < 24) return std::nullopt;
    if (load_u8(m.data()) != icmpv6_type::neighbor_advertisement || load_u8(m.data() + 1) != 0) return std::nullopt;
    if (verify_checksums(p).transport != checksum_status::ok) return std::nullopt;
    advertisement a;
    const std::uint8_t flags = load_u8(m.data() + 4);
    a.router = (flags & 0x80) != 0;
    a.solicited = (flags & 0x40) != 0;
    a.override_flag = (flags & 0x20) != 0;
    std::memcpy(a.target.bytes.data(), m.data() + 8, 16);
    if (a.target.bytes[0] == std::byte{0xFF}) return std::nullopt;  // a multicast target: invalid
    bool have_mac = false;
    for (std::size_t at = 24; at < m.size();) {
        if (m.size() - at < 2) return std::nullopt;
        const std::size_t len = std::size_t{load_u8(m.data() + at + 1)} * 8;
        if (len == 0 || len > m.size() - at) return std::nullopt;  // RFC 4861 7.1.2: length 0 is invalid
        if (load_u8(m.data() + at) == option_target_link_layer && len >= 8) {
            std::memcpy(a.mac.bytes.data(), m.data() + at + 2, 6);
            have_mac = true;
        }
        at += len;
    }
    if (!have_mac) return std::nullopt;
    return a;
}

}  // namespace ndp
}  // namespace clusternet
