// clusternet/address.hpp -- MAC, IPv4 and IPv6 addresses as small value types.
//
// Parsing from and formatting to text is for configuration and logs (it may allocate); the
// types themselves are trivially copyable and compare in constant time.
#pragma once

#include <clusternet/byteorder.hpp>
#include <clusternet/error.hpp>

#include <arpa/inet.h>

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace clusternet {

/// An Ethernet MAC address (6 bytes, wire order).
struct mac_address {
    std::array<std::byte, 6> bytes{};

    static constexpr std::size_t size = 6;

    [[nodiscard]] static mac_address from(std::span<const std::byte, 6> b) noexcept {
        mac_address m;
        std::memcpy(m.bytes.data(), b.data(), 6);
        return m;
    }
    /// Parses "aa:bb:cc:dd:ee:ff" (or with '-'); nullopt when malformed.
    [[nodiscard]] static std::optional<mac_address> parse(std::string_view s) noexcept {
        if (s.size() != 17) return std::nullopt;
        mac_address m;
        for (std::size_t i = 0; i < 6; ++i) {
            const auto hex = [](char c) -> int {
                if (c >= '0' && c <= '9') return c - '0';
                if (c >= 'a' && c <= 'f') return c - 'a' + 10;
                if (c >= 'A' && c <= 'F') return c - 'A' + 10;
                return -1;
            };
            const int hi = hex(s[i * 3]), lo = hex(s[i * 3 + 1]);
            if (hi < 0 || lo < 0) return std::nullopt;
            if (i < 5 && s[i * 3 + 2] != ':' && s[i * 3 + 2] != '-') return std::nullopt;
            m.bytes[i] = std::byte(static_cast<unsigned char>(hi * 16 + lo));
        }
        return m;
    }
    [[nodiscard]] std::string to_string() const {
        char buf[18];
        std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x",
                      std::to_integer<unsigned>(bytes[0]), std::to_integer<unsigned>(bytes[1]),
                      std::to_integer<unsigned>(bytes[2]), std::to_integer<unsigned>(bytes[3]),
                      std::to_integer<unsigned>(bytes[4]), std::to_integer<unsigned>(bytes[5]));
        return buf;
    }
    [[nodiscard]] constexpr bool is_broadcast() const noexcept {
        for (auto b : bytes) if (b != std::byte{0xFF}) return false;
        return true;
    }
    [[nodiscard]] constexpr bool is_multicast() const noexcept { return (bytes[0] & std::byte{1}) != std::byte{0}; }

    friend constexpr bool operator==(const mac_address&, const mac_address&) noexcept = default;
    friend constexpr auto operator<=>(const mac_address&, const mac_address&) noexcept = default;
};

/// An IPv4 address held as a host-order number (so 10.0.0.1 is 0x0A000001).
struct ipv4_address {
    std::uint32_t value = 0;

    constexpr ipv4_address() noexcept = default;
    constexpr explicit ipv4_address(std::uint32_t host_order) noexcept : value(host_order) {}
    constexpr ipv4_address(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) noexcept
        : value((std::uint32_t{a} << 24) | (std::uint32_t{b} << 16) | (std::uint32_t{c} << 8) | d) {}

    /// Parses dotted-quad text; nullopt when malformed.
    [[nodiscard]] static std::optional<ipv4_address> parse(std::string_view s) {
        std::string z(s);
        in_addr a{};
        if (::inet_pton(AF_INET, z.c_str(), &a) != 1) return std::nullopt;
        return ipv4_address(net_to_host(static_cast<std::uint32_t>(a.s_addr)));
    }
    [[nodiscard]] std::string to_string() const {
        char buf[INET_ADDRSTRLEN];
        in_addr a{};
        a.s_addr = host_to_net(value);
        ::inet_ntop(AF_INET, &a, buf, sizeof buf);
        return buf;
    }
    [[nodiscard]] constexpr std::uint32_t to_uint() const noexcept { return value; }

    friend constexpr bool operator==(ipv4_address, ipv4_address) noexcept = default;
    friend constexpr auto operator<=>(ipv4_address, ipv4_address) noexcept = default;
};

/// An IPv6 address (16 bytes, wire order).
struct ipv6_address {
    std::array<std::byte, 16> bytes{};

    [[nodiscard]] static ipv6_address from(std::span<const std::byte, 16> b) noexcept {
        ipv6_address a;
        std::memcpy(a.bytes.data(), b.data(), 16);
        return a;
    }
    /// The IPv4-mapped form ::ffff:a.b.c.d (RFC 4291 section 2.5.5.2).
    [[nodiscard]] static constexpr ipv6_address v4_mapped(ipv4_address v4) noexcept {
        ipv6_address a;
        a.bytes[10] = std::byte{0xFF};
        a.bytes[11] = std::byte{0xFF};
        a.bytes[12] = std::byte(static_cast<unsigned char>(v4.value >> 24));
        a.bytes[13] = std::byte(static_cast<unsigned char>(v4.value >> 16));
        a.bytes[14] = std::byte(static_cast<unsigned char>(v4.value >> 8));
        a.bytes[15] = std::byte(static_cast<unsigned char>(v4.value));
        return a;
    }
    [[nodiscard]] constexpr bool is_v4_mapped() const noexcept {
        for (std::size_t i = 0; i < 10; ++i) if (bytes[i] != std::byte{0}) return false;
        return bytes[10] == std::byte{0xFF} && bytes[11] == std::byte{0xFF};
    }
    /// The IPv4 address of a v4-mapped address (meaningful only when is_v4_mapped()).
    [[nodiscard]] ipv4_address v4() const noexcept { return ipv4_address(load_be32(bytes.data() + 12)); }

    [[nodiscard]] static std::optional<ipv6_address> parse(std::string_view s) {
        std::string z(s);
        ipv6_address a;
        if (::inet_pton(AF_INET6, z.c_str(), a.bytes.data()) != 1) return std::nullopt;
        return a;
    }
    [[nodiscard]] std::string to_string() const {
        char buf[INET6_ADDRSTRLEN];
        ::inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
        return buf;
    }

    friend constexpr bool operator==(const ipv6_address&, const ipv6_address&) noexcept = default;
    friend constexpr auto operator<=>(const ipv6_address&, const ipv6_address&) noexcept = default;
};

}  // namespace clusternet
