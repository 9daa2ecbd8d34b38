// Tests of clusternet/load_report.hpp: the wire format (round trip, byte layout, every refusal)
// and the per-member replay guard.
#include <doctest/doctest.h>

#include <clusternet/load_report.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace cn = clusternet;
namespace off = cn::load_report_offset;

namespace {

cn::load_report sample_report() {
    cn::load_report r;
    r.flags = cn::load_report_flags::draining;
    r.node_id = 0x0102;
    r.incarnation = 0x1122334455667788ULL;
    r.sequence = 0x0A0B0C0D;
    r.weight = 0x3344;
    r.timestamp = 0x1122334455667799ULL;
    r.period_ms = 1000;
    r.metrics = {.open_connections = 0xDEADBEEF, .cpu_load = 7512, .redirected_connections = 17, .active_sockets = 99};
    return r;
}

std::array<std::byte, cn::load_report::wire_size> encoded(const cn::load_report& r) {
    std::array<std::byte, cn::load_report::wire_size> b{};
    REQUIRE(cn::encode(r, b) == b.size());
    return b;
}

std::uint8_t u8(const std::array<std::byte, cn::load_report::wire_size>& b, std::size_t i) {
    return std::to_integer<std::uint8_t>(b[i]);
}

}  // namespace

TEST_SUITE("load_report") {

TEST_CASE("round trip keeps every field") {
    const cn::load_report r = sample_report();
    const auto b = encoded(r);
    const auto d = cn::decode_load_report(b);
    REQUIRE(d.has_value());
    CHECK(*d == r);
    CHECK(d->draining());
    CHECK_FALSE(d->leaving());

    // Random valid reports survive too.
    std::mt19937_64 rng(42);
    for (int i = 0; i < 1000; ++i) {
        cn::load_report x;
        x.flags = static_cast<std::uint8_t>(rng() & cn::load_report_flags::known_v1);
        x.node_id = static_cast<std::uint16_t>(1 + rng() % 65535);
        x.incarnation = 1 + rng() % (1ULL << 62);
        x.timestamp = x.incarnation + rng() % 1000000;
        x.sequence = static_cast<std::uint32_t>(1 + rng() % 0xFFFFFFFEULL);
        x.weight = static_cast<std::uint16_t>(rng());
        x.period_ms = static_cast<std::uint16_t>(1 + rng() % 65535);
        x.metrics = {static_cast<std::uint32_t>(rng()), static_cast<std::uint16_t>(rng() % 10001),
                     static_cast<std::uint32_t>(rng()), static_cast<std::uint32_t>(rng())};
        const auto y = cn::decode_load_report(encoded(x));
        REQUIRE(y.has_value());
        CHECK(*y == x);
    }
}

TEST_CASE("the layout is big-endian at the documented offsets") {
    const auto b = encoded(sample_report());
    CHECK(u8(b, 0) == 'C');
    CHECK(u8(b, 1) == 'N');
    CHECK(u8(b, 2) == 'L');
    CHECK(u8(b, 3) == 'R');
    CHECK(u8(b, off::version) == 1);
    CHECK(u8(b, off::flags) == 0x01);
    CHECK(u8(b, off::node_id) == 0x01);
    CHECK(u8(b, off::node_id + 1) == 0x02);
    CHECK(u8(b, off::incarnation) == 0x11);
    CHECK(u8(b, off::incarnation + 7) == 0x88);
    CHECK(u8(b, off::sequence) == 0x0A);
    CHECK(u8(b, off::sequence + 3) == 0x0D);
    CHECK(u8(b, off::cpu_load) == (7512 >> 8));
    CHECK(u8(b, off::cpu_load + 1) == (7512 & 0xFF));
    CHECK(u8(b, off::weight) == 0x33);
    CHECK(u8(b, off::timestamp + 7) == 0x99);
    CHECK(u8(b, off::open_connections) == 0xDE);
    CHECK(u8(b, off::open_connections + 3) == 0xEF);
    CHECK(u8(b, off::redirected_connections + 3) == 17);
    CHECK(u8(b, off::active_sockets + 3) == 99);
    CHECK(u8(b, off::period_ms) == (1000 >> 8));
    CHECK(u8(b, off::period_ms + 1) == (1000 & 0xFF));
    CHECK(u8(b, off::reserved) == 0);
    CHECK(u8(b, off::reserved + 1) == 0);
    static_assert(off::reserved + 2 == cn::load_report::wire_size);
}

TEST_CASE("encode refuses a short buffer and invalid reports, writing nothing") {
    std::array<std::byte, cn::load_report::wire_size - 1> small{};
    CHECK(cn::encode(sample_report(), small) == 0);
    CHECK(small[0] == std::byte{0});

    std::array<std::byte, 64> big{};
    CHECK(cn::encode(sample_report(), big) == cn::load_report::wire_size);
    CHECK(big[cn::load_report::wire_size] == std::byte{0});

    const auto refuses = [](auto mutate) {
        cn::load_report r = sample_report();
        mutate(r);
        std::array<std::byte, cn::load_report::wire_size> b{};
        CHECK(cn::encode(r, b) == 0);
        CHECK(b[0] == std::byte{0});
        CHECK(cn::validate(r) != cn::parse_error::none);
    };
    refuses([](cn::load_report& r) { r.node_id = 0; });
    refuses([](cn::load_report& r) { r.flags = 0x80; });
    refuses([](cn::load_report& r) { r.incarnation = 0; });
    refuses([](cn::load_report& r) { r.sequence = 0; });
    refuses([](cn::load_report& r) { r.metrics.cpu_load = 10001; });
    refuses([](cn::load_report& r) { r.timestamp = r.incarnation - 1; });
    refuses([](cn::load_report& r) { r.period_ms = 0; });
    refuses([](cn::load_report& r) { r.version = 2; });
}

TEST_CASE("decode refuses every malformed input with its reason") {
    const auto good = encoded(sample_report());
    const auto decode_patched = [&](std::size_t at, std::uint8_t v) {
        auto b = good;
        b[at] = std::byte{v};
        return cn::decode_load_report(b);
    };
    const auto error_of = [](const cn::result<cn::load_report>& r) { return r.has_value() ? cn::parse_error::none : r.error(); };

    // Length: every prefix is truncated; one byte more is too large.
    for (std::size_t n = 0; n < good.size(); ++n)
        CHECK(error_of(cn::decode_load_report(std::span<const std::byte>(good.data(), n))) == cn::parse_error::truncated);
    std::vector<std::byte> longer(good.begin(), good.end());
    longer.push_back(std::byte{0});
    CHECK(error_of(cn::decode_load_report(longer)) == cn::parse_error::too_large);
    longer.resize(1500);
    CHECK(error_of(cn::decode_load_report(longer)) == cn::parse_error::too_large);

    // Magic, in every byte.
    for (std::size_t i = 0; i < 4; ++i) CHECK(error_of(decode_patched(i, 0x00)) == cn::parse_error::bad_magic);
    // Unknown versions, whatever the length (a later version may be longer).
    CHECK(error_of(decode_patched(off::version, 0)) == cn::parse_error::bad_version);
    CHECK(error_of(decode_patched(off::version, 2)) == cn::parse_error::bad_version);
    CHECK(error_of(decode_patched(off::version, 255)) == cn::parse_error::bad_version);
    {
        std::vector<std::byte> v2(good.begin(), good.end());
        v2[off::version] = std::byte{2};
        v2.resize(80);
        CHECK(error_of(cn::decode_load_report(v2)) == cn::parse_error::bad_version);
        v2.resize(6);
        CHECK(error_of(cn::decode_load_report(v2)) == cn::parse_error::bad_version);
    }
    // Fields.
    for (unsigned bit = 2; bit < 8; ++bit)
        CHECK(error_of(decode_patched(off::flags, static_cast<std::uint8_t>(1U << bit))) == cn::parse_error::bad_field);
    {
        auto b = good;
        b[off::node_id] = b[off::node_id + 1] = std::byte{0};
        CHECK(error_of(cn::decode_load_report(b)) == cn::parse_error::bad_field);
    }
    {
        auto b = good;
        for (std::size_t i = 0; i < 8; ++i) b[off::incarnation + i] = std::byte{0};
        CHECK(error_of(cn::decode_load_report(b)) == cn::parse_error::bad_field);
    }
    {
        auto b = good;
        for (std::size_t i = 0; i < 4; ++i) b[off::sequence + i] = std::byte{0};
        CHECK(error_of(cn::decode_load_report(b)) == cn::parse_error::bad_field);
    }
    {
        auto b = good;
        b[off::cpu_load] = std::byte{0x27};
        b[off::cpu_load + 1] = std::byte{0x10};  // 10000: full scale, allowed
        CHECK(error_of(cn::decode_load_report(b)) == cn::parse_error::none);
        b[off::cpu_load + 1] = std::byte{0x11};  // 10001
        CHECK(error_of(cn::decode_load_report(b)) == cn::parse_error::bad_field);
    }
    CHECK(error_of(decode_patched(off::timestamp, 0x00)) == cn::parse_error::bad_field);  // before the incarnation
    {
        auto b = good;
        b[off::period_ms] = b[off::period_ms + 1] = std::byte{0};
        CHECK(error_of(cn::decode_load_report(b)) == cn::parse_error::bad_field);
    }
    CHECK(error_of(decode_patched(off::reserved, 1)) == cn::parse_error::bad_field);
    CHECK(error_of(decode_patched(off::reserved + 1, 1)) == cn::parse_error::bad_field);
}

TEST_CASE("report_sequence: fresh, replayed, stale, new incarnation, reset") {
    cn::report_sequence seq;
    cn::load_report r = sample_report();
    r.incarnation = 1000;
    r.timestamp = 1000;
    r.sequence = 5;
    CHECK(seq.check(r) == cn::sequence_verdict::fresh);
    CHECK_FALSE(seq.seen());
    CHECK(seq.check_and_accept(r) == cn::sequence_verdict::fresh);
    CHECK(seq.seen());
    CHECK(seq.check_and_accept(r) == cn::sequence_verdict::replayed);
    r.sequence = 4;
    CHECK(seq.check_and_accept(r) == cn::sequence_verdict::stale);
    r.sequence = 6;
    CHECK(seq.check_and_accept(r) == cn::sequence_verdict::fresh);
    CHECK(seq.sequence() == 6);

    // A restart: a later incarnation counts from 1 again.
    r.incarnation = 2000;
    r.sequence = 1;
    CHECK(seq.check_and_accept(r) == cn::sequence_verdict::fresh);
    CHECK(seq.incarnation() == 2000);
    // A report of the old incarnation, however high its sequence, is stale now.
    r.incarnation = 1000;
    r.sequence = 0xFFFFFFFF;
    CHECK(seq.check_and_accept(r) == cn::sequence_verdict::stale);
    // After reset (member declared down), an earlier incarnation is accepted again.
    seq.reset();
    CHECK(seq.check_and_accept(r) == cn::sequence_verdict::fresh);
    CHECK(cn::to_string(cn::sequence_verdict::stale) == "stale");
}

}  // TEST_SUITE
