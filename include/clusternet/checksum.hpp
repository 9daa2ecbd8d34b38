// clusternet/checksum.hpp -- the Internet checksum: full (RFC 1071) and incremental (RFC 1624).
//
// Full sums go through `checksum_accumulator`: feed it the pseudo-header words and the bytes of
// the header and payload in order, then `finish()`. Spans of odd length may be chained: the
// accumulator tracks the byte parity and swaps the next span's sum as RFC 1071 section 2(C)
// describes.
//
// Incremental updates follow RFC 1624 equation 3, HC' = ~(~HC + ~m + m'), computed with
// 16-bit-limited negation and end-around carry (errata 5864/5865). When the change sums to zero
// (the value did not change, or several changes cancel), the checksum is left as it was instead
// of flipping 0x0000 to 0xFFFF (errata 4782). With those two rules the incremental result is
// bit-for-bit the checksum a full recompute gives, for every checksum a full recompute can have
// produced; tests/checksum_test.cpp checks this on random packets and on the RFC's own example.
//
// All values in this header are host-order numbers; store them with `store_be16`.
#pragma once

#include <clusternet/byteorder.hpp>
#include <clusternet/config.hpp>
#include <clusternet/detail/checksum_kernels.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace clusternet {

/// Accumulates a one's complement sum over pieces (RFC 1071). Trivially copyable; no allocation.
class checksum_accumulator {
public:
    constexpr checksum_accumulator() noexcept = default;

    /// Adds bytes that follow whatever was added before. Cost: O(n), vectorised where the CPU
    /// allows (about 30 bytes per cycle with AVX2; see docs/performance.md).
    checksum_accumulator& add(std::span<const std::byte> bytes) noexcept {
        std::uint64_t s = detail::sum_bytes(bytes.data(), bytes.size());
        if (odd_) {
            // These bytes start at an odd offset: their words straddle ours, which RFC 1071
            // handles by swapping the bytes of their sum.
            s = byteswap(detail::fold16(s));
        }
        acc_ = detail::add_carry64(acc_, s);
        odd_ ^= (bytes.size() & 1U) != 0;
        return *this;
    }

    /// Adds one 16-bit word given as a host-order number, as if it stood at an even offset
    /// (pseudo-header fields). Independent of the parity of the bytes added so far.
    constexpr checksum_accumulator& add_u16(std::uint16_t word) noexcept {
        acc_ = detail::add_carry64(acc_, host_to_net(word));
        return *this;
    }

    /// Adds a 32-bit value as two 16-bit words (an IPv4 address, a TCP length).
    constexpr checksum_accumulator& add_u32(std::uint32_t word) noexcept {
        add_u16(static_cast<std::uint16_t>(word >> 16));
        return add_u16(static_cast<std::uint16_t>(word));
    }

    /// The folded one's complement sum, host order. 0xFFFF is the sum of data that checks.
    [[nodiscard]] constexpr std::uint16_t sum() const noexcept {
        return net_to_host(detail::fold16(acc_));
    }

    /// The checksum to put in a header: the complement of the sum.
    [[nodiscard]] constexpr std::uint16_t finish() const noexcept {
        return static_cast<std::uint16_t>(~sum());
    }

    /// True when the bytes added, checksum field included, verify (their sum is 0xFFFF).
    [[nodiscard]] constexpr bool verifies() const noexcept { return sum() == 0xFFFF; }

private:
    std::uint64_t acc_ = 0;  // native-order partial sum, unfolded
    bool odd_ = false;       // an odd number of bytes has been added so far
};

/// The one's complement sum of `bytes` (host order).
[[nodiscard]] inline std::uint16_t ones_complement_sum(std::span<const std::byte> bytes) noexcept {
    return checksum_accumulator{}.add(bytes).sum();
}

/// The Internet checksum of `bytes` (RFC 1071): the complement of their one's complement sum.
[[nodiscard]] inline std::uint16_t internet_checksum(std::span<const std::byte> bytes) noexcept {
    return checksum_accumulator{}.add(bytes).finish();
}

/// True when `bytes`, their checksum field included, verify.
[[nodiscard]] inline bool checksum_verifies(std::span<const std::byte> bytes) noexcept {
    return checksum_accumulator{}.add(bytes).verifies();
}

/// checksum_verifies() for a header of 20 bytes (an IPv4 header without options, what nearly
/// every packet has), inlined: five 32-bit adds and a fold instead of a call into the general
/// kernel. 0xFFFF reads the same in either byte order, so the native-order sum serves.
[[nodiscard]] CLUSTERNET_ALWAYS_INLINE bool checksum_verifies_20(const std::byte* p) noexcept {
    std::uint32_t w[5];
    std::memcpy(w, p, sizeof w);
    const std::uint64_t s = std::uint64_t{w[0]} + w[1] + w[2] + w[3] + w[4];
    return detail::fold16(s) == 0xFFFF;
}

/// Adds the IPv4 pseudo-header (RFC 793, RFC 768) for an upper-layer checksum.
constexpr checksum_accumulator& add_ipv4_pseudo_header(checksum_accumulator& acc, std::uint32_t src,
                                                       std::uint32_t dst, std::uint8_t protocol,
                                                       std::uint16_t l4_length) noexcept {
    return acc.add_u32(src).add_u32(dst).add_u16(protocol).add_u16(l4_length);
}

/// Adds the IPv6 pseudo-header (RFC 8200 section 8.1); addresses are 16 network-order bytes.
inline checksum_accumulator& add_ipv6_pseudo_header(checksum_accumulator& acc,
                                                    std::span<const std::byte, 16> src,
                                                    std::span<const std::byte, 16> dst,
                                                    std::uint8_t next_header,
                                                    std::uint32_t l4_length) noexcept {
    acc.add(src).add(dst);  // 16 bytes each: parity stays even
    return acc.add_u32(l4_length).add_u16(next_header);
}

// ---------------------------------------------------------------------------------------------
// Incremental update (RFC 1624)
// ---------------------------------------------------------------------------------------------

/// A change to checksummed data, as the sum of ~m + m' over every 16-bit word replaced. Build it
/// once and apply it to each checksum that covers the changed words (a NAT rewrite of an IPv4
/// address applies the same delta to the IP header checksum and to the TCP checksum).
/// Words must sit at even offsets of the checksummed data, as every header field used here does.
///
/// The sum is kept in memory order: since one's complement addition commutes with swapping the
/// bytes of every word (RFC 1071 2(B)), the `*_raw` members take and return words exactly as
/// loaded from the packet (load_native) and the per-packet path never swaps a byte. The other
/// members take host-order numbers. Holds up to 32768 replaced words: 32-bit arithmetic keeps
/// an update to a few instructions (a NAT rewrite replaces three words).
class checksum_delta {
public:
    constexpr checksum_delta() noexcept = default;

    /// Records that a 16-bit word changed from `old_word` to `new_word` (host order).
    constexpr checksum_delta& replace16(std::uint16_t old_word, std::uint16_t new_word) noexcept {
        return replace16_raw(host_to_net(old_word), host_to_net(new_word));
    }

    /// Records that a 32-bit field (an IPv4 address, a sequence number) changed (host order).
    constexpr checksum_delta& replace32(std::uint32_t old_word, std::uint32_t new_word) noexcept {
        return replace32_raw(host_to_net(old_word), host_to_net(new_word));
    }

    /// Records that 16 network-order bytes changed (an IPv6 address).
    checksum_delta& replace128(std::span<const std::byte, 16> old_bytes,
                               std::span<const std::byte, 16> new_bytes) noexcept {
        for (std::size_t i = 0; i < 16; i += 4) {
            replace32_raw(load_native<std::uint32_t>(old_bytes.data() + i), load_native<std::uint32_t>(new_bytes.data() + i));
        }
        return *this;
    }

    /// As replace16, with both words as they lie in memory.
    constexpr checksum_delta& replace16_raw(std::uint16_t old_raw, std::uint16_t new_raw) noexcept {
        sum_ += static_cast<std::uint32_t>(static_cast<std::uint16_t>(~old_raw)) + new_raw;
        return *this;
    }

    /// As replace32, with both values as they lie in memory.
    constexpr checksum_delta& replace32_raw(std::uint32_t old_raw, std::uint32_t new_raw) noexcept {
        const std::uint32_t o = ~old_raw;
        sum_ += (o & 0xFFFFU) + (o >> 16) + (new_raw & 0xFFFFU) + (new_raw >> 16);
        return *this;
    }

    /// Adds another delta (changes to disjoint words).
    constexpr checksum_delta& operator+=(const checksum_delta& other) noexcept {
        sum_ += folded(other.sum_);
        return *this;
    }
    [[nodiscard]] friend constexpr checksum_delta operator+(checksum_delta a, const checksum_delta& b) noexcept {
        return a += b;
    }

    /// True when the recorded changes leave the one's complement sum as it was.
    [[nodiscard]] constexpr bool is_zero() const noexcept {
        const std::uint32_t d = folded(sum_);
        return d == 0 || d == 0xFFFF;
    }

    /// Applies the change to checksum `hc` (host order; RFC 1624 eqn. 3) and returns the new
    /// checksum. O(1): a handful of adds, no allocation.
    [[nodiscard]] constexpr std::uint16_t apply(std::uint16_t hc) const noexcept {
        return net_to_host(apply_raw(host_to_net(hc)));
    }

    /// As apply(), with the checksum as it lies in memory.
    [[nodiscard]] constexpr std::uint16_t apply_raw(std::uint16_t hc_raw) const noexcept {
        return apply_folded_raw(hc_raw, folded_sum());
    }

    /// The delta folded to at most 0xFFFF (memory order): what apply_folded_raw() takes, for
    /// callers that apply one change to many packets (a NAT mapping) and fold it once.
    [[nodiscard]] constexpr std::uint32_t folded_sum() const noexcept { return folded(sum_); }

    /// Applies a delta already folded by folded_sum() to a checksum in memory order.
    [[nodiscard]] static constexpr std::uint16_t apply_folded_raw(std::uint16_t hc_raw, std::uint32_t d) noexcept {
        if (d == 0 || d == 0xFFFF) return hc_raw;  // no net change (RFC 1624 errata 4782)
        std::uint32_t s = static_cast<std::uint32_t>(static_cast<std::uint16_t>(~hc_raw)) + d;  // <= 0x1FFFE
        s = (s & 0xFFFFU) + (s >> 16);                                                          // <= 0xFFFF
        return static_cast<std::uint16_t>(~s);
    }

    /// As apply(), with UDP's rules (RFC 768): a zero checksum means "none" and stays zero
    /// (IPv4 only: pass `zero_means_none = false` for IPv6, where the checksum is mandatory),
    /// and a computed zero is sent as 0xFFFF. Host order.
    [[nodiscard]] constexpr std::uint16_t apply_udp(std::uint16_t hc, bool zero_means_none = true) const noexcept {
        return net_to_host(apply_udp_raw(host_to_net(hc), zero_means_none));
    }

    /// As apply_udp(), with the checksum as it lies in memory (0 and 0xFFFF read the same).
    [[nodiscard]] constexpr std::uint16_t apply_udp_raw(std::uint16_t hc_raw, bool zero_means_none = true) const noexcept {
        if (hc_raw == 0 && zero_means_none) return 0;
        const std::uint16_t r = apply_raw(hc_raw);
        return r == 0 ? 0xFFFF : r;
    }

private:
    /// End-around-carry fold of a sum below 2^32 to at most 0xFFFF.
    [[nodiscard]] static constexpr std::uint32_t folded(std::uint32_t s) noexcept {
        s = (s & 0xFFFFU) + (s >> 16);  // <= 0x1FFFE
        return (s & 0xFFFFU) + (s >> 16);
    }

    std::uint32_t sum_ = 0;  // memory-order words, unfolded: each word adds at most 0x1FFFE
};

/// RFC 1624 eqn. 3 for one 16-bit word: the checksum after `old_word` became `new_word`.
[[nodiscard]] constexpr std::uint16_t checksum_update16(std::uint16_t hc, std::uint16_t old_word,
                                                        std::uint16_t new_word) noexcept {
    return checksum_delta{}.replace16(old_word, new_word).apply(hc);
}

/// RFC 1624 eqn. 3 for a 32-bit field (an IPv4 address).
[[nodiscard]] constexpr std::uint16_t checksum_update32(std::uint16_t hc, std::uint32_t old_word,
                                                        std::uint32_t new_word) noexcept {
    return checksum_delta{}.replace32(old_word, new_word).apply(hc);
}

/// RFC 1624 eqn. 3 for a 128-bit field (an IPv6 address, network-order bytes).
[[nodiscard]] inline std::uint16_t checksum_update128(std::uint16_t hc, std::span<const std::byte, 16> old_bytes,
                                                         std::span<const std::byte, 16> new_bytes) noexcept {
    return checksum_delta{}.replace128(old_bytes, new_bytes).apply(hc);
}

}  // namespace clusternet
