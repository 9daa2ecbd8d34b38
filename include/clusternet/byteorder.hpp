// clusternet/byteorder.hpp -- explicit big-endian loads and stores over bytes.
//
// Wire headers are never read by casting packet memory to a struct: every field is loaded and
// stored through these functions (memcpy plus a byte swap), which compile to a single
// `movbe`/`bswap` and obey the strict aliasing rules.
#pragma once

#include <clusternet/config.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace clusternet {

/// Reverses the bytes of an unsigned integer. Constant time, no branches.
template <class T>
[[nodiscard]] constexpr T byteswap(T v) noexcept {
    static_assert(sizeof(T) == 1 || sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8);
    if constexpr (sizeof(T) == 1) {
        return v;
    } else if constexpr (sizeof(T) == 2) {
        return static_cast<T>(__builtin_bswap16(static_cast<std::uint16_t>(v)));
    } else if constexpr (sizeof(T) == 4) {
        return static_cast<T>(__builtin_bswap32(static_cast<std::uint32_t>(v)));
    } else {
        return static_cast<T>(__builtin_bswap64(static_cast<std::uint64_t>(v)));
    }
}

/// Converts between host order and network (big-endian) order; the operation is its own inverse.
template <class T>
[[nodiscard]] constexpr T host_to_net(T v) noexcept {
    if constexpr (std::endian::native == std::endian::little) return byteswap(v);
    else return v;
}
template <class T>
[[nodiscard]] constexpr T net_to_host(T v) noexcept { return host_to_net(v); }

/// Loads a native-order integer from possibly unaligned memory.
template <class T>
[[nodiscard]] CLUSTERNET_ALWAYS_INLINE T load_native(const std::byte* p) noexcept {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

/// Stores a native-order integer to possibly unaligned memory.
template <class T>
CLUSTERNET_ALWAYS_INLINE void store_native(std::byte* p, T v) noexcept {
    std::memcpy(p, &v, sizeof v);
}

[[nodiscard]] CLUSTERNET_ALWAYS_INLINE std::uint8_t load_u8(const std::byte* p) noexcept {
    return static_cast<std::uint8_t>(*p);
}
[[nodiscard]] CLUSTERNET_ALWAYS_INLINE std::uint16_t load_be16(const std::byte* p) noexcept {
    return net_to_host(load_native<std::uint16_t>(p));
}
[[nodiscard]] CLUSTERNET_ALWAYS_INLINE std::uint32_t load_be32(const std::byte* p) noexcept {
    return net_to_host(load_native<std::uint32_t>(p));
}
[[nodiscard]] CLUSTERNET_ALWAYS_INLINE std::uint64_t load_be64(const std::byte* p) noexcept {
    return net_to_host(load_native<std::uint64_t>(p));
}

CLUSTERNET_ALWAYS_INLINE void store_u8(std::byte* p, std::uint8_t v) noexcept { *p = std::byte{v}; }
CLUSTERNET_ALWAYS_INLINE void store_be16(std::byte* p, std::uint16_t v) noexcept {
    v = host_to_net(v);
    std::memcpy(p, &v, sizeof v);
}
CLUSTERNET_ALWAYS_INLINE void store_be32(std::byte* p, std::uint32_t v) noexcept {
    v = host_to_net(v);
    std::memcpy(p, &v, sizeof v);
}
CLUSTERNET_ALWAYS_INLINE void store_be64(std::byte* p, std::uint64_t v) noexcept {
    v = host_to_net(v);
    std::memcpy(p, &v, sizeof v);
}

}  // namespace clusternet
