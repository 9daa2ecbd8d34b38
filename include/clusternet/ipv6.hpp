// clusternet/ipv6.hpp -- IPv6 headers (RFC 8200) and the walk over extension headers.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |Version| Traffic Class |           Flow Label                  |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |         Payload Length        |  Next Header  |   Hop Limit   |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                   Source Address (16 bytes)                   |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                 Destination Address (16 bytes)                |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Extension headers walked by parse_ipv6(): Hop-by-Hop Options (0, only directly after the
// fixed header, RFC 8200 4.1), Routing (43), Fragment (44, 8 bytes), Destination Options (60).
// Each of the variable ones is (Hdr Ext Len + 1) * 8 bytes. The walk stops at the first other
// Next Header value, which becomes the view's upper-layer protocol. A Fragment header with
// offset 0 and M clear is an atomic fragment and is treated as no fragmentation (RFC 6946).
#pragma once

#include <clusternet/address.hpp>
#include <clusternet/detail/view_base.hpp>
#include <clusternet/error.hpp>
#include <clusternet/flow_key.hpp>

namespace clusternet {

template <ByteType B>
class basic_ipv6_view : public detail::view_base<B> {
    using base = detail::view_base<B>;

public:
    static constexpr std::size_t header_size = 40;
    /// The most extension headers the parser walks before it gives up.
    static constexpr std::size_t max_extension_headers = 8;

    constexpr basic_ipv6_view() noexcept = default;
    /// Unchecked; use parse_ipv6().
    constexpr basic_ipv6_view(std::span<B> packet, std::uint16_t l4_offset, std::uint8_t l4_protocol,
                              std::uint16_t frag_field, bool fragment) noexcept
        : base(packet), l4_offset_(l4_offset), frag_field_(frag_field), l4_protocol_(l4_protocol), fragment_(fragment) {}
    template <ByteType B2>
        requires std::is_const_v<B> && (!std::is_const_v<B2>)
    constexpr basic_ipv6_view(const basic_ipv6_view<B2>& o) noexcept  // NOLINT: to const
        : base(o.bytes()), l4_offset_(static_cast<std::uint16_t>(o.upper_layer_offset())),
          frag_field_(o.fragment_field()), l4_protocol_(o.upper_layer_protocol()), fragment_(o.is_fragment()) {}

    [[nodiscard]] std::uint8_t version() const noexcept { return this->u8(0) >> 4; }
    [[nodiscard]] std::uint8_t traffic_class() const noexcept {
        return static_cast<std::uint8_t>((this->be16(0) >> 4) & 0xFF);
    }
    [[nodiscard]] std::uint32_t flow_label() const noexcept { return this->be32(0) & 0xFFFFF; }
    [[nodiscard]] std::uint16_t payload_length() const noexcept { return this->be16(4); }
    /// The Next Header field of the fixed header.
    [[nodiscard]] std::uint8_t next_header() const noexcept { return this->u8(6); }
    [[nodiscard]] std::uint8_t hop_limit() const noexcept { return this->u8(7); }
    [[nodiscard]] std::span<B, 16> src_bytes() const noexcept { return std::span<B, 16>(this->data() + 8, 16); }
    [[nodiscard]] std::span<B, 16> dst_bytes() const noexcept { return std::span<B, 16>(this->data() + 24, 16); }
    [[nodiscard]] ipv6_address src() const noexcept { return ipv6_address::from(src_bytes()); }
    [[nodiscard]] ipv6_address dst() const noexcept { return ipv6_address::from(dst_bytes()); }

    /// The protocol after the extension headers (TCP, UDP, ICMPv6, ...).
    [[nodiscard]] constexpr std::uint8_t upper_layer_protocol() const noexcept { return l4_protocol_; }
    /// Offset of the upper-layer header from the start of the IPv6 header.
    [[nodiscard]] constexpr std::size_t upper_layer_offset() const noexcept { return l4_offset_; }
    /// The fixed header and every extension header walked.
    [[nodiscard]] std::span<B> headers() const noexcept { return this->bytes().first(l4_offset_); }
    /// The upper-layer header and data (what the upper-layer checksum covers).
    [[nodiscard]] std::span<B> upper_layer() const noexcept { return this->bytes().subspan(l4_offset_); }
    /// True for a real (non-atomic) fragment.
    [[nodiscard]] constexpr bool is_fragment() const noexcept { return fragment_; }
    /// The Fragment header's offset-and-flags word (0 without a Fragment header).
    [[nodiscard]] constexpr std::uint16_t fragment_field() const noexcept { return frag_field_; }
    [[nodiscard]] constexpr std::uint16_t fragment_offset() const noexcept { return frag_field_ >> 3; }
    [[nodiscard]] constexpr bool more_fragments() const noexcept { return (frag_field_ & 1) != 0; }

    void set_hop_limit(std::uint8_t v) const noexcept requires MutableByteType<B> { this->put8(7, v); }
    void set_payload_length(std::uint16_t v) const noexcept requires MutableByteType<B> { this->put16(4, v); }
    void set_src(const ipv6_address& a) const noexcept requires MutableByteType<B> { std::memcpy(this->data() + 8, a.bytes.data(), 16); }
    void set_dst(const ipv6_address& a) const noexcept requires MutableByteType<B> { std::memcpy(this->data() + 24, a.bytes.data(), 16); }

private:
    std::uint16_t l4_offset_ = 0;
    std::uint16_t frag_field_ = 0;
    std::uint8_t l4_protocol_ = 0;
    bool fragment_ = false;
};

using ipv6_view = basic_ipv6_view<std::byte>;
using const_ipv6_view = basic_ipv6_view<const std::byte>;

/// Parses an IPv6 header and walks its extension headers. The view covers 40 + payload length
/// bytes. Errors: `truncated`, `bad_version`, `bad_total_length` (payload length 0, i.e. a
/// jumbogram, which clusternet does not carry), `bad_ext_header` (runs past the packet, or a
/// Hop-by-Hop header not first), `too_many_ext_headers`. Cost: O(number of extension headers).
template <ByteType B>
[[nodiscard]] constexpr result<basic_ipv6_view<B>> parse_ipv6(std::span<B> packet) noexcept {
    if (packet.size() < 40) return parse_error::truncated;
    if ((load_u8(packet.data()) >> 4) != 6) return parse_error::bad_version;
    const std::size_t plen = load_be16(packet.data() + 4);
    if (plen == 0) return parse_error::bad_total_length;
    if (40 + plen > packet.size()) return parse_error::truncated;
    const std::span<B> pkt = packet.first(40 + plen);
    std::uint8_t next = load_u8(pkt.data() + 6);
    std::size_t off = 40;
    std::uint16_t frag_field = 0;
    bool fragment = false;
    for (std::size_t n = 0;; ++n) {
        std::size_t len = 0;
        switch (next) {
            case ip_protocol::hop_by_hop:
                if (off != 40) return parse_error::bad_ext_header;
                [[fallthrough]];
            case ip_protocol::ipv6_routing:
            case ip_protocol::ipv6_dest_opts:
                if (pkt.size() < off + 8) return parse_error::bad_ext_header;
                len = (std::size_t{load_u8(pkt.data() + off + 1)} + 1) * 8;
                break;
            case ip_protocol::ipv6_fragment:
                if (pkt.size() < off + 8) return parse_error::bad_ext_header;
                len = 8;
                frag_field = load_be16(pkt.data() + off + 2);
                fragment = (frag_field & 0xFFF9) != 0;  // offset or M set (reserved bits ignored)
                break;
            default:
                return basic_ipv6_view<B>(pkt, static_cast<std::uint16_t>(off), next, frag_field, fragment);
        }
        if (n == basic_ipv6_view<B>::max_extension_headers) return parse_error::too_many_ext_headers;
        if (off + len > pkt.size()) return parse_error::bad_ext_header;
        next = load_u8(pkt.data() + off);
        off += len;
        if (fragment && (frag_field >> 3) != 0) {
            // A non-first fragment: what follows is not a header but the middle of the datagram.
            return basic_ipv6_view<B>(pkt, static_cast<std::uint16_t>(off), next, frag_field, fragment);
        }
    }
}

}  // namespace clusternet
