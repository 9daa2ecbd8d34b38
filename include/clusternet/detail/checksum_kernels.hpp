// clusternet/detail/checksum_kernels.hpp -- the loops behind the Internet checksum.
//
// Design note. The one's complement sum of 16-bit words does not depend on byte order
// (RFC 1071 section 2(B)): summing the words as the machine loads them and swapping the folded
// result gives the same answer as summing big-endian words. So every kernel here sums
// native-order data and returns an unfolded 64-bit partial sum; `fold16` reduces it. Because
// 2^64 - 1 is a multiple of 2^16 - 1, adding with an end-around carry at 64 bits (or counting
// the carries and adding them back) preserves the sum modulo 0xFFFF, which is all the checksum
// needs.
//
//  - `sum_scalar`: 8 bytes per add, carries counted separately in two independent chains so
//    the adds pipeline; portable.
//  - `sum_avx2`: 32 bytes per vector. Each 32-bit lane takes the low and the high 16-bit half
//    of itself (an AND and a shift), so a lane grows by at most 2 * 0xFFFF per vector and can
//    take 2^15 vectors before it could overflow; the loop drains the lanes into a 64-bit sum
//    long before that. Chosen at run time when the CPU has AVX2.
#pragma once

#include <clusternet/byteorder.hpp>
#include <clusternet/config.hpp>

#include <cstddef>
#include <cstdint>

#if CLUSTERNET_X86_SIMD
#include <immintrin.h>
#endif

namespace clusternet::detail {

/// Adds with end-around carry at 64 bits (one's complement addition modulo 2^64 - 1).
[[nodiscard]] constexpr std::uint64_t add_carry64(std::uint64_t a, std::uint64_t b) noexcept {
    const std::uint64_t s = a + b;
    return s + (s < b ? 1U : 0U);
}

/// Folds a 64-bit partial sum to 16 bits with end-around carry. Returns 0 only for 0.
[[nodiscard]] constexpr std::uint16_t fold16(std::uint64_t s) noexcept {
    s = (s & 0xFFFFFFFFU) + (s >> 32);  // <= 2^33
    s = (s & 0xFFFFU) + (s >> 16);      // <= 2^17 + small
    s = (s & 0xFFFFU) + (s >> 16);
    s = (s & 0xFFFFU) + (s >> 16);
    return static_cast<std::uint16_t>(s);
}

/// Portable kernel: unfolded sum of the native-order 16-bit words of [p, p + n). A trailing odd
/// byte counts as if followed by a zero byte (RFC 1071).
[[nodiscard]] inline std::uint64_t sum_scalar(const std::byte* p, std::size_t n) noexcept {
    std::uint64_t s0 = 0, s1 = 0, c0 = 0, c1 = 0;
    while (n >= 32) {
        const auto a = load_native<std::uint64_t>(p);
        const auto b = load_native<std::uint64_t>(p + 8);
        const auto c = load_native<std::uint64_t>(p + 16);
        const auto d = load_native<std::uint64_t>(p + 24);
        s0 += a; c0 += (s0 < a);
        s1 += b; c1 += (s1 < b);
        s0 += c; c0 += (s0 < c);
        s1 += d; c1 += (s1 < d);
        p += 32;
        n -= 32;
    }
    while (n >= 8) {
        const auto a = load_native<std::uint64_t>(p);
        s0 += a; c0 += (s0 < a);
        p += 8;
        n -= 8;
    }
    std::uint64_t tail = 0;
    if (n >= 4) {
        tail += load_native<std::uint32_t>(p);
        p += 4;
        n -= 4;
    }
    if (n >= 2) {
        tail += load_native<std::uint16_t>(p);
        p += 2;
        n -= 2;
    }
    if (n == 1) {
        // The lone byte is the first (high-order in network order) byte of a word whose second
        // byte is zero; in native order that word is the byte shifted to its memory position.
        std::uint16_t w = 0;
        std::memcpy(&w, p, 1);
        tail += w;
    }
    std::uint64_t s = add_carry64(s0, s1);
    s = add_carry64(s, c0 + c1);
    return add_carry64(s, tail);
}

#if CLUSTERNET_X86_SIMD

__attribute__((target("avx2"))) inline std::uint64_t hsum_epi32_avx2(__m256i v) noexcept {
    // Widen the eight 32-bit lanes to 64 bits before adding so nothing can overflow.
    const __m256i zero = _mm256_setzero_si256();
    const __m256i lo = _mm256_unpacklo_epi32(v, zero);
    const __m256i hi = _mm256_unpackhi_epi32(v, zero);
    const __m256i s = _mm256_add_epi64(lo, hi);
    const __m128i t = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    return static_cast<std::uint64_t>(_mm_cvtsi128_si64(t)) +
           static_cast<std::uint64_t>(_mm_extract_epi64(t, 1));
}

/// AVX2 kernel; same contract as sum_scalar. Requires a CPU with AVX2.
__attribute__((target("avx2"))) inline std::uint64_t sum_avx2(const std::byte* p, std::size_t n) noexcept {
    const __m256i mask = _mm256_set1_epi32(0xFFFF);
    std::uint64_t total = 0;
    while (n >= 128) {
        // Up to 4096 iterations: each lane of each accumulator grows by at most
        // 4 * 0xFFFF per iteration, 4096 * 4 * 0xFFFF < 2^32.
        std::size_t iters = n / 128;
        if (iters > 4096) iters = 4096;
        __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
        for (std::size_t i = 0; i < iters; ++i) {
            const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
            const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
            const __m256i v2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 64));
            const __m256i v3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 96));
            a0 = _mm256_add_epi32(a0, _mm256_and_si256(v0, mask));
            a1 = _mm256_add_epi32(a1, _mm256_srli_epi32(v0, 16));
            a0 = _mm256_add_epi32(a0, _mm256_and_si256(v1, mask));
            a1 = _mm256_add_epi32(a1, _mm256_srli_epi32(v1, 16));
            a0 = _mm256_add_epi32(a0, _mm256_and_si256(v2, mask));
            a1 = _mm256_add_epi32(a1, _mm256_srli_epi32(v2, 16));
            a0 = _mm256_add_epi32(a0, _mm256_and_si256(v3, mask));
            a1 = _mm256_add_epi32(a1, _mm256_srli_epi32(v3, 16));
            p += 128;
        }
        n -= iters * 128;
        total += hsum_epi32_avx2(a0) + hsum_epi32_avx2(a1);  // each < 2^35: no overflow
    }
    if (n >= 32) {
        __m256i a = _mm256_setzero_si256();
        while (n >= 32) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
            a = _mm256_add_epi32(a, _mm256_and_si256(v, mask));
            a = _mm256_add_epi32(a, _mm256_srli_epi32(v, 16));
            p += 32;
            n -= 32;
        }
        total += hsum_epi32_avx2(a);
    }
    return add_carry64(total, sum_scalar(p, n));
}

[[nodiscard]] inline bool cpu_has_avx2() noexcept {
    static const bool has = __builtin_cpu_supports("avx2") != 0;
    return has;
}

#endif  // CLUSTERNET_X86_SIMD

/// Below this many bytes the scalar kernel wins (no dispatch, no vector set-up).
inline constexpr std::size_t simd_threshold = 128;

/// Unfolded one's complement partial sum of [p, p + n) in native order, best kernel for the CPU.
[[nodiscard]] inline std::uint64_t sum_bytes(const std::byte* p, std::size_t n) noexcept {
#if CLUSTERNET_X86_SIMD
#if defined(__AVX2__)
    if (n >= simd_threshold) return sum_avx2(p, n);
#else
    if (n >= simd_threshold && cpu_has_avx2()) return sum_avx2(p, n);
#endif
#endif
    return sum_scalar(p, n);
}

}  // namespace clusternet::detail
