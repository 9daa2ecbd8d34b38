// clusternet/ipv4.hpp -- IPv4 headers (RFC 791).
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |Version|  IHL  |   DSCP    |ECN|          Total Length         |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |         Identification        |0|D|M|     Fragment Offset     |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |  Time to Live |    Protocol   |         Header Checksum       |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                       Source Address                          |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                    Destination Address                        |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                 Options (IHL > 5) ...                         |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
#pragma once

#include <clusternet/address.hpp>
#include <clusternet/checksum.hpp>
#include <clusternet/detail/view_base.hpp>
#include <clusternet/error.hpp>

namespace clusternet {

template <ByteType B>
class basic_ipv4_view : public detail::view_base<B> {
    using base = detail::view_base<B>;

public:
    static constexpr std::size_t min_header_size = 20;
    static constexpr std::size_t max_header_size = 60;

    constexpr basic_ipv4_view() noexcept = default;
    /// Unchecked: `packet` must be exactly total_length bytes of a valid header and payload;
    /// use parse_ipv4().
    constexpr explicit basic_ipv4_view(std::span<B> packet) noexcept : base(packet) {}
    template <ByteType B2>
        requires std::is_const_v<B> && (!std::is_const_v<B2>)
    constexpr basic_ipv4_view(const basic_ipv4_view<B2>& o) noexcept : base(o.bytes()) {}  // NOLINT

    [[nodiscard]] std::uint8_t version() const noexcept { return this->u8(0) >> 4; }
    [[nodiscard]] std::uint8_t ihl() const noexcept { return this->u8(0) & 0x0F; }
    [[nodiscard]] std::size_t header_length() const noexcept { return std::size_t{ihl()} * 4; }
    [[nodiscard]] std::uint8_t tos() const noexcept { return this->u8(1); }
    [[nodiscard]] std::uint8_t dscp() const noexcept { return this->u8(1) >> 2; }
    [[nodiscard]] std::uint8_t ecn() const noexcept { return this->u8(1) & 3; }
    [[nodiscard]] std::uint16_t total_length() const noexcept { return this->be16(2); }
    [[nodiscard]] std::uint16_t id() const noexcept { return this->be16(4); }
    [[nodiscard]] bool dont_fragment() const noexcept { return (this->be16(6) & 0x4000) != 0; }
    [[nodiscard]] bool more_fragments() const noexcept { return (this->be16(6) & 0x2000) != 0; }
    /// Fragment offset in 8-byte units.
    [[nodiscard]] std::uint16_t fragment_offset() const noexcept { return this->be16(6) & 0x1FFF; }
    /// True for any fragment of a fragmented datagram (first, middle or last).
    [[nodiscard]] bool is_fragment() const noexcept { return (this->be16(6) & 0x3FFF) != 0; }
    [[nodiscard]] std::uint8_t ttl() const noexcept { return this->u8(8); }
    [[nodiscard]] std::uint8_t protocol() const noexcept { return this->u8(9); }
    [[nodiscard]] std::uint16_t checksum() const noexcept { return this->be16(10); }
    [[nodiscard]] std::uint32_t src() const noexcept { return this->be32(12); }
    [[nodiscard]] std::uint32_t dst() const noexcept { return this->be32(16); }
    [[nodiscard]] ipv4_address src_address() const noexcept { return ipv4_address(src()); }
    [[nodiscard]] ipv4_address dst_address() const noexcept { return ipv4_address(dst()); }
    [[nodiscard]] std::span<B> header() const noexcept { return this->bytes().first(header_length()); }
    [[nodiscard]] std::span<B> options() const noexcept { return header().subspan(min_header_size); }
    [[nodiscard]] std::span<B> payload() const noexcept { return this->bytes().subspan(header_length()); }

    /// Recomputes the header checksum and compares. Cost: O(header length). The 20-byte case
    /// is inlined into the caller (a dozen instructions); a header with options takes a call.
    [[nodiscard]] CLUSTERNET_ALWAYS_INLINE bool checksum_ok() const noexcept {
        const std::size_t len = header_length();
        if (len == min_header_size) [[likely]] return checksum_verifies_20(this->data());
        return options_checksum_ok(len);
    }

    // Setters write the field only; they do not touch any checksum (see rewrite.hpp for
    // setters that keep checksums valid).
    void set_tos(std::uint8_t v) const noexcept requires MutableByteType<B> { this->put8(1, v); }
    void set_total_length(std::uint16_t v) const noexcept requires MutableByteType<B> { this->put16(2, v); }
    void set_id(std::uint16_t v) const noexcept requires MutableByteType<B> { this->put16(4, v); }
    void set_flags_fragment(std::uint16_t v) const noexcept requires MutableByteType<B> { this->put16(6, v); }
    void set_ttl(std::uint8_t v) const noexcept requires MutableByteType<B> { this->put8(8, v); }
    void set_protocol(std::uint8_t v) const noexcept requires MutableByteType<B> { this->put8(9, v); }
    void set_checksum(std::uint16_t v) const noexcept requires MutableByteType<B> { this->put16(10, v); }
    void set_src(std::uint32_t v) const noexcept requires MutableByteType<B> { this->put32(12, v); }
    void set_dst(std::uint32_t v) const noexcept requires MutableByteType<B> { this->put32(16, v); }
    /// Recomputes and stores the header checksum. Cost: O(header length).
    void update_checksum() const noexcept requires MutableByteType<B> {
        set_checksum(0);
        set_checksum(internet_checksum(header()));
    }

private:
    [[nodiscard]] bool options_checksum_ok(std::size_t len) const noexcept {
        return checksum_verifies(this->bytes().first(len));
    }
};

using ipv4_view = basic_ipv4_view<std::byte>;
using const_ipv4_view = basic_ipv4_view<const std::byte>;

/// Parses an IPv4 header. The view covers total_length bytes (link-layer padding beyond it is
/// dropped). Errors: `truncated` (fewer than 20 bytes, or fewer than the header or the total
/// length claim), `bad_version`, `bad_ihl` (below 5), `bad_total_length` (shorter than the
/// header). Fragments parse; ask is_fragment(). The checksum is not verified here.
template <ByteType B>
[[nodiscard]] CLUSTERNET_FORCE_INLINE constexpr result<basic_ipv4_view<B>> parse_ipv4(std::span<B> packet) noexcept {
    if (packet.size() < 20) return parse_error::truncated;
    const std::uint8_t vihl = load_u8(packet.data());
    if ((vihl >> 4) != 4) return parse_error::bad_version;
    const std::size_t hlen = std::size_t{vihl & 0x0FU} * 4;
    if (hlen < 20) return parse_error::bad_ihl;
    if (hlen > packet.size()) return parse_error::truncated;
    const std::size_t total = load_be16(packet.data() + 2);
    if (total < hlen) return parse_error::bad_total_length;
    if (total > packet.size()) return parse_error::truncated;
    return basic_ipv4_view<B>(packet.first(total));
}

}  // namespace clusternet
