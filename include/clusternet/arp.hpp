// clusternet/arp.hpp -- ARP for IPv4 over Ethernet (RFC 826).
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |     Hardware type (1)         |     Protocol type (0x0800)    |
//  | HW len (6)    | Proto len (4) |     Operation (1 req, 2 rep)  |
//  |          Sender hardware address (6) ...                      |
//  |  ... sender HW address        |   Sender protocol address ... |
//  |  ... sender protocol address  |   Target hardware address ... |
//  |                ... target hardware address                    |
//  |                  Target protocol address                      |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
#pragma once

#include <clusternet/address.hpp>
#include <clusternet/detail/view_base.hpp>
#include <clusternet/error.hpp>

namespace clusternet {

namespace arp_op {
inline constexpr std::uint16_t request = 1;
inline constexpr std::uint16_t reply = 2;
}  // namespace arp_op

template <ByteType B>
class basic_arp_view : public detail::view_base<B> {
    using base = detail::view_base<B>;

public:
    static constexpr std::size_t size_bytes = 28;

    constexpr basic_arp_view() noexcept = default;
    constexpr explicit basic_arp_view(std::span<B> b) noexcept : base(b.first(size_bytes)) {}

    [[nodiscard]] std::uint16_t hardware_type() const noexcept { return this->be16(0); }
    [[nodiscard]] std::uint16_t protocol_type() const noexcept { return this->be16(2); }
    [[nodiscard]] std::uint16_t operation() const noexcept { return this->be16(6); }
    [[nodiscard]] mac_address sender_mac() const noexcept { return mac_address::from(std::span<const std::byte, 6>(this->data() + 8, 6)); }
    [[nodiscard]] ipv4_address sender_ip() const noexcept { return ipv4_address(this->be32(14)); }
    [[nodiscard]] mac_address target_mac() const noexcept { return mac_address::from(std::span<const std::byte, 6>(this->data() + 18, 6)); }
    [[nodiscard]] ipv4_address target_ip() const noexcept { return ipv4_address(this->be32(24)); }

    void set_operation(std::uint16_t op) const noexcept requires MutableByteType<B> { this->put16(6, op); }
    void set_sender(const mac_address& m, ipv4_address ip) const noexcept requires MutableByteType<B> {
        std::memcpy(this->data() + 8, m.bytes.data(), 6);
        this->put32(14, ip.value);
    }
    void set_target(const mac_address& m, ipv4_address ip) const noexcept requires MutableByteType<B> {
        std::memcpy(this->data() + 18, m.bytes.data(), 6);
        this->put32(24, ip.value);
    }
};

using arp_view = basic_arp_view<std::byte>;
using const_arp_view = basic_arp_view<const std::byte>;

/// Parses an ARP packet for IPv4 over Ethernet. Errors: `truncated`; `bad_arp` for another
/// hardware or protocol type, wrong address lengths, or an operation other than 1 or 2.
template <ByteType B>
[[nodiscard]] constexpr result<basic_arp_view<B>> parse_arp(std::span<B> b) noexcept {
    if (b.size() < basic_arp_view<B>::size_bytes) return parse_error::truncated;
    if (load_be16(b.data()) != 1 || load_be16(b.data() + 2) != 0x0800 || load_u8(b.data() + 4) != 6 ||
        load_u8(b.data() + 5) != 4)
        return parse_error::bad_arp;
    const std::uint16_t op = load_be16(b.data() + 6);
    if (op != arp_op::request && op != arp_op::reply) return parse_error::bad_arp;
    return basic_arp_view<B>(b);
}

}  // namespace clusternet
