// clusternet/detail/view_base.hpp -- what every packet view shares.
//
// A view is a std::span over the bytes of one header plus whatever follows it that belongs to
// it (an IPv4 view spans total_length bytes). Views are templates over the byte type: over
// `std::byte` they can write fields, over `const std::byte` they only read. Parsing functions
// check every length before a view is made; a view's accessors then read without checks.
#pragma once

#include <clusternet/byteorder.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

namespace clusternet {

/// `std::byte` or `const std::byte`.
template <class B>
concept ByteType = std::same_as<std::remove_const_t<B>, std::byte>;

/// A byte type whose views may write.
template <class B>
concept MutableByteType = std::same_as<B, std::byte>;

namespace detail {

template <ByteType B>
class view_base {
public:
    using byte_type = B;

    constexpr view_base() noexcept = default;
    constexpr explicit view_base(std::span<B> bytes) noexcept : bytes_(bytes) {}

    /// Every byte the view covers.
    [[nodiscard]] constexpr std::span<B> bytes() const noexcept { return bytes_; }
    [[nodiscard]] constexpr B* data() const noexcept { return bytes_.data(); }
    [[nodiscard]] constexpr std::size_t size() const noexcept { return bytes_.size(); }
    [[nodiscard]] constexpr bool empty() const noexcept { return bytes_.empty(); }

protected:
    [[nodiscard]] std::uint8_t u8(std::size_t off) const noexcept { return load_u8(bytes_.data() + off); }
    [[nodiscard]] std::uint16_t be16(std::size_t off) const noexcept { return load_be16(bytes_.data() + off); }
    [[nodiscard]] std::uint32_t be32(std::size_t off) const noexcept { return load_be32(bytes_.data() + off); }
    void put8(std::size_t off, std::uint8_t v) const noexcept
        requires MutableByteType<B> { store_u8(bytes_.data() + off, v); }
    void put16(std::size_t off, std::uint16_t v) const noexcept
        requires MutableByteType<B> { store_be16(bytes_.data() + off, v); }
    void put32(std::size_t off, std::uint32_t v) const noexcept
        requires MutableByteType<B> { store_be32(bytes_.data() + off, v); }

    std::span<B> bytes_{};
};

}  // namespace detail
}  // namespace clusternet
