// clusternet/icmp.hpp -- ICMP (RFC 792) and ICMPv6 (RFC 4443) headers.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |     Type      |     Code      |          Checksum             |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |  Identifier (echo) / unused   |  Sequence (echo) / MTU ...    |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |  Data: for errors, the offending packet's IP header and more  |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Both versions share the layout; the ICMPv6 checksum covers the IPv6 pseudo-header, the ICMP
// one does not. Error messages quote the packet that caused them, which a load balancer needs to
// route an ICMP error (a "fragmentation needed", say) to the back end that owns the flow.
#pragma once

#include <clusternet/detail/view_base.hpp>
#include <clusternet/error.hpp>

namespace clusternet {

namespace icmp_type {
inline constexpr std::uint8_t echo_reply = 0;
inline constexpr std::uint8_t dest_unreachable = 3;
inline constexpr std::uint8_t redirect = 5;
inline constexpr std::uint8_t echo_request = 8;
inline constexpr std::uint8_t time_exceeded = 11;
inline constexpr std::uint8_t parameter_problem = 12;
}  // namespace icmp_type

namespace icmpv6_type {
inline constexpr std::uint8_t dest_unreachable = 1;
inline constexpr std::uint8_t packet_too_big = 2;
inline constexpr std::uint8_t time_exceeded = 3;
inline constexpr std::uint8_t parameter_problem = 4;
inline constexpr std::uint8_t echo_request = 128;
inline constexpr std::uint8_t echo_reply = 129;
}  // namespace icmpv6_type

template <ByteType B>
class basic_icmp_view : public detail::view_base<B> {
    using base = detail::view_base<B>;

public:
    static constexpr std::size_t header_size = 8;

    constexpr basic_icmp_view() noexcept = default;
    /// Unchecked; use parse_icmp().
    constexpr basic_icmp_view(std::span<B> message, bool v6) noexcept : base(message), v6_(v6) {}
    template <ByteType B2>
        requires std::is_const_v<B> && (!std::is_const_v<B2>)
    constexpr basic_icmp_view(const basic_icmp_view<B2>& o) noexcept : base(o.bytes()), v6_(o.is_v6()) {}  // NOLINT

    [[nodiscard]] constexpr bool is_v6() const noexcept { return v6_; }
    [[nodiscard]] std::uint8_t type() const noexcept { return this->u8(0); }
    [[nodiscard]] std::uint8_t code() const noexcept { return this->u8(1); }
    [[nodiscard]] std::uint16_t checksum() const noexcept { return this->be16(2); }
    [[nodiscard]] std::uint16_t identifier() const noexcept { return this->be16(4); }
    [[nodiscard]] std::uint16_t sequence() const noexcept { return this->be16(6); }
    [[nodiscard]] bool is_echo() const noexcept {
        const std::uint8_t t = type();
        return v6_ ? (t == icmpv6_type::echo_request || t == icmpv6_type::echo_reply)
                   : (t == icmp_type::echo_request || t == icmp_type::echo_reply);
    }
    /// True for error messages, which quote the offending packet.
    [[nodiscard]] bool is_error() const noexcept {
        const std::uint8_t t = type();
        if (v6_) return t < 128;
        return t == icmp_type::dest_unreachable || t == 4 /* source quench */ || t == icmp_type::redirect ||
               t == icmp_type::time_exceeded || t == icmp_type::parameter_problem;
    }
    /// For errors: the quoted packet (often cut short). Empty for other messages.
    [[nodiscard]] std::span<B> quoted_packet() const noexcept {
        return is_error() ? this->bytes().subspan(header_size) : std::span<B>{};
    }
    [[nodiscard]] std::span<B> payload() const noexcept { return this->bytes().subspan(header_size); }

    void set_checksum(std::uint16_t v) const noexcept requires MutableByteType<B> { this->put16(2, v); }

private:
    bool v6_ = false;
};

using icmp_view = basic_icmp_view<std::byte>;
using const_icmp_view = basic_icmp_view<const std::byte>;

/// Parses an ICMP (v6 = false) or ICMPv6 (v6 = true) message. Errors: `truncated`.
template <ByteType B>
[[nodiscard]] constexpr result<basic_icmp_view<B>> parse_icmp(std::span<B> message, bool v6) noexcept {
    if (message.size() < 8) return parse_error::truncated;
    return basic_icmp_view<B>(message, v6);
}

}  // namespace clusternet
