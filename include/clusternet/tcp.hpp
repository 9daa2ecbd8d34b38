// clusternet/tcp.hpp -- TCP headers and options (RFC 9293, RFC 7323, RFC 2018).
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |          Source Port          |       Destination Port        |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                        Sequence Number                        |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                    Acknowledgment Number                      |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |  Data |       |C|E|U|A|P|R|S|F|                               |
//  | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |           Checksum            |         Urgent Pointer        |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                    Options (Data Offset > 5)                  |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Options are kind-length-value, except End of Option List (0) and No-Operation (1), which are
// one byte. parse_tcp() checks every option's length, and the fixed lengths of the options it
// knows: MSS (2, len 4), Window Scale (3, len 3), SACK-Permitted (4, len 2), SACK (5, len
// 2 + 8n, n = 1..4), Timestamps (8, len 10). Unknown options are skipped by their length.
#pragma once

#include <clusternet/detail/view_base.hpp>
#include <clusternet/error.hpp>

#include <array>
#include <optional>

namespace clusternet {

/// TCP flag bits, as in the 13th byte of the header.
namespace tcp_flags {
inline constexpr std::uint8_t fin = 0x01;
inline constexpr std::uint8_t syn = 0x02;
inline constexpr std::uint8_t rst = 0x04;
inline constexpr std::uint8_t psh = 0x08;
inline constexpr std::uint8_t ack = 0x10;
inline constexpr std::uint8_t urg = 0x20;
inline constexpr std::uint8_t ece = 0x40;
inline constexpr std::uint8_t cwr = 0x80;
}  // namespace tcp_flags

namespace tcp_option {
inline constexpr std::uint8_t end = 0;
inline constexpr std::uint8_t nop = 1;
inline constexpr std::uint8_t mss = 2;
inline constexpr std::uint8_t window_scale = 3;
inline constexpr std::uint8_t sack_permitted = 4;
inline constexpr std::uint8_t sack = 5;
inline constexpr std::uint8_t timestamps = 8;
}  // namespace tcp_option

/// A SACK block: [left, right) in sequence space.
struct sack_block {
    std::uint32_t left = 0;
    std::uint32_t right = 0;
    friend constexpr bool operator==(const sack_block&, const sack_block&) noexcept = default;
};

/// The options of one segment, decoded.
struct tcp_options {
    std::optional<std::uint16_t> mss;
    std::optional<std::uint8_t> window_scale;
    bool sack_permitted = false;
    std::optional<std::uint32_t> ts_val;
    std::optional<std::uint32_t> ts_ecr;
    std::array<sack_block, 4> sack{};
    std::uint8_t sack_count = 0;
};

namespace detail {

/// Checks the option bytes of a TCP header; parse_error::none when they are well formed.
[[nodiscard]] CLUSTERNET_FORCE_INLINE constexpr parse_error check_tcp_options(const std::byte* p, std::size_t n) noexcept {
    // Fast path: NOP, NOP, Timestamps -- the options of every data segment Linux sends.
    if (n == 12 && load_be32(p) == 0x0101080AU) return parse_error::none;
    std::size_t i = 0;
    while (i < n) {
        const std::uint8_t kind = load_u8(p + i);
        if (kind == tcp_option::end) return parse_error::none;
        if (kind == tcp_option::nop) { ++i; continue; }
        if (i + 1 >= n) return parse_error::bad_tcp_option;
        const std::size_t len = load_u8(p + i + 1);
        if (len < 2 || i + len > n) return parse_error::bad_tcp_option;
        switch (kind) {
            case tcp_option::mss: if (len != 4) return parse_error::bad_tcp_option; break;
            case tcp_option::window_scale: if (len != 3) return parse_error::bad_tcp_option; break;
            case tcp_option::sack_permitted: if (len != 2) return parse_error::bad_tcp_option; break;
            case tcp_option::timestamps: if (len != 10) return parse_error::bad_tcp_option; break;
            case tcp_option::sack:
                if (len < 10 || (len - 2) % 8 != 0) return parse_error::bad_tcp_option;
                break;
            default: break;
        }
        i += len;
    }
    return parse_error::none;
}

}  // namespace detail

template <ByteType B>
class basic_tcp_view : public detail::view_base<B> {
    using base = detail::view_base<B>;

public:
    static constexpr std::size_t min_header_size = 20;
    static constexpr std::size_t max_header_size = 60;

    constexpr basic_tcp_view() noexcept = default;
    /// Unchecked: `segment` must hold a valid header; use parse_tcp().
    constexpr explicit basic_tcp_view(std::span<B> segment) noexcept : base(segment) {}
    template <ByteType B2>
        requires std::is_const_v<B> && (!std::is_const_v<B2>)
    constexpr basic_tcp_view(const basic_tcp_view<B2>& o) noexcept : base(o.bytes()) {}  // NOLINT

    [[nodiscard]] std::uint16_t sport() const noexcept { return this->be16(0); }
    [[nodiscard]] std::uint16_t dport() const noexcept { return this->be16(2); }
    [[nodiscard]] std::uint32_t seq() const noexcept { return this->be32(4); }
    [[nodiscard]] std::uint32_t ack_seq() const noexcept { return this->be32(8); }
    [[nodiscard]] std::size_t header_length() const noexcept { return static_cast<std::size_t>(this->u8(12) >> 4) * 4; }
    [[nodiscard]] std::uint8_t flags() const noexcept { return this->u8(13); }
    [[nodiscard]] bool has(std::uint8_t flag_bits) const noexcept { return (flags() & flag_bits) == flag_bits; }
    [[nodiscard]] bool syn() const noexcept { return (flags() & tcp_flags::syn) != 0; }
    [[nodiscard]] bool ack() const noexcept { return (flags() & tcp_flags::ack) != 0; }
    [[nodiscard]] bool fin() const noexcept { return (flags() & tcp_flags::fin) != 0; }
    [[nodiscard]] bool rst() const noexcept { return (flags() & tcp_flags::rst) != 0; }
    [[nodiscard]] std::uint16_t window() const noexcept { return this->be16(14); }
    [[nodiscard]] std::uint16_t checksum() const noexcept { return this->be16(16); }
    [[nodiscard]] std::uint16_t urgent_pointer() const noexcept { return this->be16(18); }
    [[nodiscard]] std::span<B> option_bytes() const noexcept {
        return this->bytes().subspan(min_header_size, header_length() - min_header_size);
    }
    [[nodiscard]] std::span<B> payload() const noexcept { return this->bytes().subspan(header_length()); }

    /// Decodes the options (already validated by parse_tcp). Cost: O(option bytes).
    [[nodiscard]] tcp_options options() const noexcept {
        tcp_options o;
        const std::span<B> ob = option_bytes();
        const std::byte* p = ob.data();
        std::size_t i = 0;
        const std::size_t n = ob.size();
        while (i < n) {
            const std::uint8_t kind = load_u8(p + i);
            if (kind == tcp_option::end) break;
            if (kind == tcp_option::nop) { ++i; continue; }
            if (i + 1 >= n) break;
            const std::size_t len = load_u8(p + i + 1);
            if (len < 2 || i + len > n) break;
            switch (kind) {
                case tcp_option::mss: if (len == 4) o.mss = load_be16(p + i + 2); break;
                case tcp_option::window_scale: if (len == 3) o.window_scale = load_u8(p + i + 2); break;
                case tcp_option::sack_permitted: o.sack_permitted = true; break;
                case tcp_option::timestamps:
                    if (len == 10) { o.ts_val = load_be32(p + i + 2); o.ts_ecr = load_be32(p + i + 6); }
                    break;
                case tcp_option::sack:
                    for (std::size_t b = 0; b + 10 <= len && o.sack_count < o.sack.size(); b += 8) {
                        o.sack[o.sack_count++] = {load_be32(p + i + 2 + b), load_be32(p + i + 6 + b)};
                    }
                    break;
                default: break;
            }
            i += len;
        }
        return o;
    }

    void set_sport(std::uint16_t v) const noexcept requires MutableByteType<B> { this->put16(0, v); }
    void set_dport(std::uint16_t v) const noexcept requires MutableByteType<B> { this->put16(2, v); }
    void set_seq(std::uint32_t v) const noexcept requires MutableByteType<B> { this->put32(4, v); }
    void set_ack_seq(std::uint32_t v) const noexcept requires MutableByteType<B> { this->put32(8, v); }
    void set_flags(std::uint8_t v) const noexcept requires MutableByteType<B> { this->put8(13, v); }
    void set_window(std::uint16_t v) const noexcept requires MutableByteType<B> { this->put16(14, v); }
    void set_checksum(std::uint16_t v) const noexcept requires MutableByteType<B> { this->put16(16, v); }
};

using tcp_view = basic_tcp_view<std::byte>;
using const_tcp_view = basic_tcp_view<const std::byte>;

/// Parses a TCP header. The view covers the whole segment. Errors: `truncated` (under 20
/// bytes), `bad_data_offset` (below 5 or past the segment), `bad_tcp_option`.
/// Cost: O(option bytes), a few ns for a SYN's options.
template <ByteType B>
[[nodiscard]] CLUSTERNET_FORCE_INLINE constexpr result<basic_tcp_view<B>> parse_tcp(std::span<B> segment) noexcept {
    if (segment.size() < 20) return parse_error::truncated;
    const std::size_t hlen = static_cast<std::size_t>(load_u8(segment.data() + 12) >> 4) * 4;
    if (hlen < 20 || hlen > segment.size()) return parse_error::bad_data_offset;
    if (hlen > 20) {
        if (const parse_error e = detail::check_tcp_options(segment.data() + 20, hlen - 20); e != parse_error::none)
            return e;
    }
    return basic_tcp_view<B>(segment);
}

}  // namespace clusternet
