// Tests of the Internet checksum: RFC 1071 sums and RFC 1624 incremental updates.
#include "support/reference.hpp"

#include <clusternet/checksum.hpp>

#include <doctest/doctest.h>

#include <array>
#include <random>

using namespace clusternet;
using clusternet::test::random_bytes;
using clusternet::test::reference_sum;

namespace {

std::vector<std::byte> bytes_of(std::initializer_list<unsigned> v) {
    std::vector<std::byte> out;
    for (unsigned x : v) out.push_back(std::byte(static_cast<unsigned char>(x)));
    return out;
}

}  // namespace

TEST_SUITE("checksum") {

TEST_CASE("RFC 1071 section 3 example") {
    // 00 01 f2 03 f4 f5 f6 f7: sum 0x2ddf0, folded 0xddf2, checksum 0x220d.
    const auto b = bytes_of({0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7});
    CHECK(ones_complement_sum(b) == 0xddf2);
    CHECK(internet_checksum(b) == 0x220d);
}

TEST_CASE("empty, odd and all-ones inputs") {
    CHECK(ones_complement_sum({}) == 0);
    CHECK(internet_checksum({}) == 0xFFFF);
    CHECK(ones_complement_sum(bytes_of({0xAB})) == 0xAB00);
    CHECK(ones_complement_sum(bytes_of({0x12, 0x34, 0x56})) == 0x1234 + 0x5600);
    // 3 MiB of 0xFF: every word is -0, so is the sum; exercises lane draining in the SIMD kernel.
    std::vector<std::byte> ones(3u << 20, std::byte{0xFF});
    CHECK(ones_complement_sum(ones) == 0xFFFF);
    CHECK(internet_checksum(ones) == 0x0000);
}

TEST_CASE("agrees with the reference on random data, lengths, alignments and splits") {
    std::mt19937_64 rng(1071);
    for (int it = 0; it < 3000; ++it) {
        const std::size_t n = (it < 600) ? static_cast<std::size_t>(it) : rng() % 9100;
        auto buf = random_bytes(rng, n + 8);
        const std::size_t align = rng() % 8;
        const std::span<const std::byte> data(buf.data() + align, n);
        const std::uint16_t want = reference_sum(data);
        REQUIRE(ones_complement_sum(data) == want);
        // Split into up to four pieces of any (odd) length: the accumulator must chain them.
        checksum_accumulator acc;
        std::size_t pos = 0;
        for (int piece = 0; piece < 3 && pos < n; ++piece) {
            const std::size_t len = rng() % (n - pos + 1);
            acc.add(data.subspan(pos, len));
            pos += len;
        }
        acc.add(data.subspan(pos));
        REQUIRE(acc.sum() == want);
    }
}

TEST_CASE("scalar and SIMD kernels agree") {
    std::mt19937_64 rng(7);
    for (std::size_t n : {0ul, 1ul, 31ul, 127ul, 128ul, 129ul, 1500ul, 9000ul, 65535ul, 600000ul, 1200000ul}) {
        auto buf = random_bytes(rng, n + 3);
        for (std::size_t off = 0; off < 3; ++off) {
            const std::byte* p = buf.data() + off;
            const std::uint16_t scalar = detail::fold16(detail::sum_scalar(p, n));
            CHECK(detail::fold16(detail::sum_bytes(p, n)) == scalar);
#if CLUSTERNET_X86_SIMD
            if (detail::cpu_has_avx2()) CHECK(detail::fold16(detail::sum_avx2(p, n)) == scalar);
#endif
        }
    }
}

TEST_CASE("verification of data carrying its checksum") {
    std::mt19937_64 rng(3);
    for (int it = 0; it < 200; ++it) {
        auto b = random_bytes(rng, 2 + 2 * (rng() % 700));
        store_be16(b.data(), 0);
        store_be16(b.data(), internet_checksum(b));
        CHECK(checksum_verifies(b));
        b[2 + rng() % (b.size() - 2)] ^= std::byte{0x10};
        CHECK_FALSE(checksum_verifies(b));
    }
}

TEST_CASE("pseudo-headers") {
    checksum_accumulator a;
    add_ipv4_pseudo_header(a, 0x0A000001, 0xC0A80102, 6, 40);
    CHECK(a.sum() == reference_sum(bytes_of({10, 0, 0, 1, 192, 168, 1, 2, 0, 6, 0, 40})));
    std::array<std::byte, 16> s{}, d{};
    s[0] = std::byte{0xfd};
    s[15] = std::byte{1};
    d[0] = std::byte{0xfd};
    d[15] = std::byte{2};
    checksum_accumulator b;
    add_ipv6_pseudo_header(b, s, d, 17, 0x10008);
    std::vector<std::byte> flat(s.begin(), s.end());
    flat.insert(flat.end(), d.begin(), d.end());
    const auto tail = bytes_of({0, 1, 0, 8, 0, 0, 0, 17});
    flat.insert(flat.end(), tail.begin(), tail.end());
    CHECK(b.sum() == reference_sum(flat));
}

TEST_CASE("RFC 1624 section 4 example: eqn. 3 gives 0x0000 where eqn. 2 gave 0xFFFF") {
    // Other header words sum to 0xCD7A; m = 0x5555 becomes m' = 0x3285.
    const std::uint16_t hc = static_cast<std::uint16_t>(~detail::fold16(0xCD7A + 0x5555));
    CHECK(hc == 0xDD2F);
    CHECK(checksum_update16(hc, 0x5555, 0x3285) == 0x0000);
    static_assert(checksum_update16(0xDD2F, 0x5555, 0x3285) == 0x0000);
}

TEST_CASE("RFC 1624 errata 4782: an unchanged value leaves the checksum unchanged") {
    CHECK(checksum_update16(0x0000, 0x5555, 0x5555) == 0x0000);
    CHECK(checksum_update16(0x1234, 0x5555, 0x5555) == 0x1234);
    CHECK(checksum_update32(0x0000, 0x0A000001, 0x0A000001) == 0x0000);
    // Changes that cancel (swap two words) are no change either.
    checksum_delta d;
    d.replace16(0x1111, 0x2222).replace16(0x2222, 0x1111);
    CHECK(d.is_zero());
    CHECK(d.apply(0x0000) == 0x0000);
}

TEST_CASE("incremental update equals a full recompute (random data, random fields)") {
    std::mt19937_64 rng(1624);
    int zero_before = 0, zero_after = 0;
    for (int it = 0; it < 20000; ++it) {
        const std::size_t words = 12 + rng() % 60;
        auto b = random_bytes(rng, words * 2);
        store_be16(b.data(), 0);  // checksum field at offset 0
        // Every fourth round, steer the data so that the checksum before the change is 0x0000
        // (data sum 0xFFFF); the last word is the one adjusted.
        if (it % 4 == 0) {
            store_be16(b.data() + b.size() - 2, 0);
            const std::uint16_t s = ones_complement_sum(b);
            store_be16(b.data() + b.size() - 2, static_cast<std::uint16_t>(0xFFFF - s));
        }
        const std::uint16_t hc = internet_checksum(b);
        zero_before += hc == 0;
        store_be16(b.data(), hc);
        // Change a 16-, 32- or 128-bit field at a random even offset >= 2.
        const int width = it % 3 == 0 ? 2 : it % 3 == 1 ? 4 : 16;
        if (static_cast<std::size_t>(width) + 2 > b.size()) continue;
        const std::size_t off = 2 + 2 * (rng() % ((b.size() - 2 - static_cast<std::size_t>(width)) / 2 + 1));
        std::uint16_t inc = 0;
        if (width == 2) {
            const std::uint16_t old = load_be16(b.data() + off);
            std::uint16_t nw = rng() % 8 == 0 ? old : static_cast<std::uint16_t>(rng());
            if (it % 4 == 3) {
                // Steer the new value so the checksum after the change is 0x0000.
                store_be16(b.data() + off, 0);
                nw = static_cast<std::uint16_t>(0xFFFF - ones_complement_sum(b));
            }
            store_be16(b.data() + off, nw);
            inc = checksum_update16(hc, old, nw);
        } else if (width == 4) {
            const std::uint32_t old = load_be32(b.data() + off);
            const std::uint32_t nw = static_cast<std::uint32_t>(rng());
            store_be32(b.data() + off, nw);
            inc = checksum_update32(hc, old, nw);
        } else {
            std::array<std::byte, 16> old{}, nw{};
            std::memcpy(old.data(), b.data() + off, 16);
            for (auto& x : nw) x = std::byte(static_cast<unsigned char>(rng()));
            std::memcpy(b.data() + off, nw.data(), 16);
            inc = checksum_update128(hc, old, nw);
        }
        store_be16(b.data(), 0);
        const std::uint16_t full = internet_checksum(b);
        zero_after += full == 0;
        REQUIRE(inc == full);
    }
    // The corner cases were actually reached.
    CHECK(zero_before > 100);
    CHECK(zero_after > 100);
}

TEST_CASE("a delta applies to several checksums and composes") {
    checksum_delta addr;
    addr.replace32(0x0A000001, 0x0A000002);
    checksum_delta port;
    port.replace16(80, 8080);
    const checksum_delta both = addr + port;
    const std::uint16_t hc = 0x1234;
    CHECK(both.apply(hc) == port.apply(addr.apply(hc)));
}

TEST_CASE("UDP rules: zero means no checksum over IPv4, a computed zero is sent as 0xFFFF") {
    checksum_delta d;
    d.replace16(1, 2);
    CHECK(d.apply_udp(0) == 0);
    CHECK(d.apply_udp(0, false) != 0);
    // Find a change that makes the checksum 0 and check it comes out as 0xFFFF.
    const std::uint16_t hc = 0x0005;
    checksum_delta z;
    z.replace16(0x0000, 0x0005);  // sum grows by 5: ~hc + 5 = 0xFFFF, checksum 0
    CHECK(z.apply(hc) == 0x0000);
    CHECK(z.apply_udp(hc) == 0xFFFF);
}

}  // TEST_SUITE
