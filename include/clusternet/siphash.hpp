// clusternet/siphash.hpp -- SipHash-2-4, a keyed 64-bit pseudorandom function, used as a message
// authentication code (LCCP's tag), and a constant-time byte comparison.
//
// Written from the paper: J.-P. Aumasson and D. J. Bernstein, "SipHash: a fast short-input PRF",
// INDOCRYPT 2012 (https://131002.net/siphash/siphash.pdf), section 2: the state is four 64-bit
// words v0..v3 initialised from the key k0, k1 and the constants "somepseudorandomlygeneratedbytes";
// the message is read as little-endian 64-bit words m_i, each absorbed by v3 ^= m_i, c = 2
// SipRounds, v0 ^= m_i; the last word holds the remaining bytes and, in its top byte, the length
// mod 256; finalisation is v2 ^= 0xff, d = 4 SipRounds, and the output v0 ^ v1 ^ v2 ^ v3. The tests
// check the 64 vectors of the reference implementation (key 00..0f, message 00..len-1) and the
// paper's Appendix A example.
//
// The 64-bit output is written as 8 bytes little-endian (the reference's byte order), so that the
// tag on the wire is the same bytes the published vectors list.
//
// Cost: about 1.5 cycles per byte plus about 20 cycles a message; no allocation, no branches that
// depend on the key or the data (only on the length).
#pragma once

#include <clusternet/config.hpp>

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace clusternet {

/// A 128-bit SipHash key: k0 is bytes 0..7 and k1 bytes 8..15, each read little-endian.
struct siphash_key {
    std::uint64_t k0 = 0;
    std::uint64_t k1 = 0;

    /// The key from its 16 bytes (the order the paper and the test vectors use).
    [[nodiscard]] static siphash_key from_bytes(std::span<const std::byte, 16> b) noexcept;

    friend constexpr bool operator==(const siphash_key&, const siphash_key&) noexcept = default;
};

namespace detail {

[[nodiscard]] CLUSTERNET_ALWAYS_INLINE std::uint64_t load_le64(const std::byte* p) noexcept {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
    return v;
}

struct sip_state {
    std::uint64_t v0, v1, v2, v3;

    CLUSTERNET_ALWAYS_INLINE void round() noexcept {
        v0 += v1; v1 = std::rotl(v1, 13); v1 ^= v0; v0 = std::rotl(v0, 32);
        v2 += v3; v3 = std::rotl(v3, 16); v3 ^= v2;
        v0 += v3; v3 = std::rotl(v3, 21); v3 ^= v0;
        v2 += v1; v1 = std::rotl(v1, 17); v1 ^= v2; v2 = std::rotl(v2, 32);
    }
    CLUSTERNET_ALWAYS_INLINE void absorb(std::uint64_t m) noexcept {
        v3 ^= m;
        round();
        round();
        v0 ^= m;
    }
};

}  // namespace detail

inline siphash_key siphash_key::from_bytes(std::span<const std::byte, 16> b) noexcept {
    return {detail::load_le64(b.data()), detail::load_le64(b.data() + 8)};
}

/// SipHash-2-4 of `data` under `key`. Cost O(size), about 1.5 cycles a byte. Never throws.
[[nodiscard]] inline std::uint64_t siphash24(const siphash_key& key, std::span<const std::byte> data) noexcept {
    detail::sip_state s{key.k0 ^ 0x736f6d6570736575ULL, key.k1 ^ 0x646f72616e646f6dULL,
                        key.k0 ^ 0x6c7967656e657261ULL, key.k1 ^ 0x7465646279746573ULL};
    const std::byte* p = data.data();
    const std::size_t n = data.size();
    const std::byte* const end = p + (n & ~std::size_t{7});
    for (; p != end; p += 8) s.absorb(detail::load_le64(p));
    std::uint64_t last = static_cast<std::uint64_t>(n & 0xFF) << 56;
    for (std::size_t i = 0; i < (n & 7); ++i) last |= static_cast<std::uint64_t>(p[i]) << (8 * i);
    s.absorb(last);
    s.v2 ^= 0xFF;
    s.round();
    s.round();
    s.round();
    s.round();
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

/// The tag as the 8 bytes the reference implementation outputs (little-endian).
[[nodiscard]] inline std::array<std::byte, 8> siphash24_bytes(const siphash_key& key,
                                                              std::span<const std::byte> data) noexcept {
    const std::uint64_t h = siphash24(key, data);
    std::array<std::byte, 8> out{};
    for (std::size_t i = 0; i < 8; ++i) out[i] = std::byte(static_cast<unsigned char>(h >> (8 * i)));
    return out;
}

/// True when a and b hold the same bytes. The time depends only on the sizes, never on where the
/// bytes differ (for comparing authentication tags). Different sizes compare unequal at once.
[[nodiscard]] inline bool constant_time_equal(std::span<const std::byte> a, std::span<const std::byte> b) noexcept {
    if (a.size() != b.size()) return false;
    unsigned diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) diff |= std::to_integer<unsigned>(a[i] ^ b[i]);
    // Keep the compiler from turning the loop into an early exit.
    __asm__ __volatile__("" : "+r"(diff));
    return diff == 0;
}

}  // namespace clusternet
