// clusternet/ethernet.hpp -- Ethernet II frames with up to two 802.1Q / 802.1ad VLAN tags.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                 Destination MAC (6 bytes) ...                 |
//  |     ... Destination MAC       |      Source MAC (6 bytes) ... |
//  |                        ... Source MAC                         |
//  |  EtherType / TPID (2 bytes)   | [TCI (2) | EtherType (2)] ... | payload
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// A TPID of 0x8100 (802.1Q) or 0x88A8 (802.1ad, the outer tag of QinQ) is followed by a 16-bit
// TCI (priority 3 bits, DEI 1, VLAN id 12) and the next EtherType.
#pragma once

#include <clusternet/address.hpp>
#include <clusternet/detail/view_base.hpp>
#include <clusternet/error.hpp>

namespace clusternet {

namespace ethertype {
inline constexpr std::uint16_t ipv4 = 0x0800;
inline constexpr std::uint16_t arp = 0x0806;
inline constexpr std::uint16_t vlan = 0x8100;  ///< 802.1Q
inline constexpr std::uint16_t qinq = 0x88A8;  ///< 802.1ad
inline constexpr std::uint16_t ipv6 = 0x86DD;
}  // namespace ethertype

template <ByteType B>
class basic_ethernet_view : public detail::view_base<B> {
    using base = detail::view_base<B>;

public:
    static constexpr std::size_t header_size = 14;  ///< without VLAN tags
    static constexpr std::size_t vlan_tag_size = 4;
    static constexpr std::size_t max_vlan_tags = 2;

    constexpr basic_ethernet_view() noexcept = default;
    /// Unchecked: `frame` must hold the header and `vlan_tags` tags; use parse_ethernet().
    constexpr basic_ethernet_view(std::span<B> frame, std::uint8_t vlan_tags) noexcept
        : base(frame), vlan_tags_(vlan_tags) {}
    template <ByteType B2>
        requires std::is_const_v<B> && (!std::is_const_v<B2>)
    constexpr basic_ethernet_view(const basic_ethernet_view<B2>& o) noexcept  // NOLINT: to const
        : base(o.bytes()), vlan_tags_(static_cast<std::uint8_t>(o.vlan_tag_count())) {}

    [[nodiscard]] mac_address dst() const noexcept { return mac_address::from(std::span<const std::byte, 6>(this->data(), 6)); }
    [[nodiscard]] mac_address src() const noexcept { return mac_address::from(std::span<const std::byte, 6>(this->data() + 6, 6)); }
    [[nodiscard]] constexpr std::size_t vlan_tag_count() const noexcept { return vlan_tags_; }
    /// TCI of tag `i` (0 is the outermost). Precondition: i < vlan_tag_count().
    [[nodiscard]] std::uint16_t vlan_tci(std::size_t i = 0) const noexcept { return this->be16(14 + i * 4); }
    [[nodiscard]] std::uint16_t vlan_id(std::size_t i = 0) const noexcept { return vlan_tci(i) & 0x0FFF; }
    /// The EtherType of the payload, after any VLAN tags.
    [[nodiscard]] std::uint16_t ethertype() const noexcept { return this->be16(12 + vlan_tags_ * 4); }
    [[nodiscard]] constexpr std::size_t header_length() const noexcept { return header_size + vlan_tags_ * vlan_tag_size; }
    [[nodiscard]] constexpr std::span<B> payload() const noexcept { return this->bytes().subspan(header_length()); }

    void set_dst(const mac_address& m) const noexcept
        requires MutableByteType<B> { std::memcpy(this->data(), m.bytes.data(), 6); }
    void set_src(const mac_address& m) const noexcept
        requires MutableByteType<B> { std::memcpy(this->data() + 6, m.bytes.data(), 6); }
    void set_ethertype(std::uint16_t t) const noexcept
        requires MutableByteType<B> { this->put16(12 + vlan_tags_ * 4, t); }

private:
    std::uint8_t vlan_tags_ = 0;
};

using ethernet_view = basic_ethernet_view<std::byte>;
using const_ethernet_view = basic_ethernet_view<const std::byte>;

/// Parses an Ethernet II frame and up to two VLAN tags. Errors: `truncated`,
/// `too_many_vlan_tags`. The payload's EtherType is not judged here. Cost: a few loads.
template <ByteType B>
[[nodiscard]] CLUSTERNET_FORCE_INLINE constexpr result<basic_ethernet_view<B>> parse_ethernet(std::span<B> frame) noexcept {
    if (frame.size() < 14) return parse_error::truncated;
    std::uint8_t tags = 0;
    std::uint16_t type = load_be16(frame.data() + 12);
    while (type == ethertype::vlan || type == ethertype::qinq) {
        if (tags == basic_ethernet_view<B>::max_vlan_tags) return parse_error::too_many_vlan_tags;
        ++tags;
        if (frame.size() < 14U + tags * 4U) return parse_error::truncated;
        type = load_be16(frame.data() + 12 + tags * 4);
    }
    return basic_ethernet_view<B>(frame, tags);
}

}  // namespace clusternet
