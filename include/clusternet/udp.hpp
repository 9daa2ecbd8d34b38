// clusternet/udp.hpp -- UDP headers (RFC 768).
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |          Source Port          |       Destination Port        |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |            Length             |           Checksum            |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Over IPv4 a zero checksum means "not computed"; a computed zero is sent as 0xFFFF. Over IPv6
// the checksum is mandatory (RFC 8200 8.1).
#pragma once

#include <clusternet/detail/view_base.hpp>
#include <clusternet/error.hpp>

namespace clusternet {

template <ByteType B>
class basic_udp_view : public detail::view_base<B> {
    using base = detail::view_base<B>;

public:
    static constexpr std::size_t header_size = 8;

    constexpr basic_udp_view() noexcept = default;
    /// Unchecked; use parse_udp().
    constexpr explicit basic_udp_view(std::span<B> datagram) noexcept : base(datagram) {}
    template <ByteType B2>
        requires std::is_const_v<B> && (!std::is_const_v<B2>)
    constexpr basic_udp_view(const basic_udp_view<B2>& o) noexcept : base(o.bytes()) {}  // NOLINT

    [[nodiscard]] std::uint16_t sport() const noexcept { return this->be16(0); }
    [[nodiscard]] std::uint16_t dport() const noexcept { return this->be16(2); }
    [[nodiscard]] std::uint16_t length() const noexcept { return this->be16(4); }
    [[nodiscard]] std::uint16_t checksum() const noexcept { return this->be16(6); }
    [[nodiscard]] std::span<B> payload() const noexcept { return this->bytes().subspan(header_size); }

    void set_sport(std::uint16_t v) const noexcept requires MutableByteType<B> { this->put16(0, v); }
    void set_dport(std::uint16_t v) const noexcept requires MutableByteType<B> { this->put16(2, v); }
    void set_length(std::uint16_t v) const noexcept requires MutableByteType<B> { this->put16(4, v); }
    void set_checksum(std::uint16_t v) const noexcept requires MutableByteType<B> { this->put16(6, v); }
};

using udp_view = basic_udp_view<std::byte>;
using const_udp_view = basic_udp_view<const std::byte>;

/// Parses a UDP header; the view covers `length` bytes. Errors: `truncated` (under 8 bytes),
/// `bad_udp_length` (length below 8 or beyond the datagram).
template <ByteType B>
[[nodiscard]] CLUSTERNET_FORCE_INLINE constexpr result<basic_udp_view<B>> parse_udp(std::span<B> datagram) noexcept {
    if (datagram.size() < 8) return parse_error::truncated;
    const std::size_t len = load_be16(datagram.data() + 4);
    if (len < 8 || len > datagram.size()) return parse_error::bad_udp_length;
    return basic_udp_view<B>(datagram.first(len));
}

}  // namespace clusternet
