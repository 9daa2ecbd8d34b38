// clusternet/load_report.hpp -- the load report: what a node announces about itself every period
// (DPR's load multicast), as a versioned, fixed-size binary message.
//
// Version 1 is 48 bytes, every field big-endian:
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +---------------------------------------------------------------+
//   |                    magic 0x434E4C52 ("CNLR")                  |  0
//   +---------------+---------------+-------------------------------+
//   |  version (1)  |     flags     |            node id            |  4
//   +---------------+---------------+-------------------------------+
//   |          incarnation: the announcer's start time,             |  8
//   |          ns since 1970 (UTC), never 0                         |
//   +---------------------------------------------------------------+
//   |          sequence number within the incarnation, from 1       | 16
//   +-------------------------------+-------------------------------+
//   |  CPU load, 1/10000 (0..10000) |   weight (0..65535)           | 20
//   +-------------------------------+-------------------------------+
//   |          timestamp: when the metrics were sampled,            | 24
//   |          ns since 1970 (UTC), >= incarnation                  |
//   +---------------------------------------------------------------+
//   |          open TCP connections                                 | 32
//   +---------------------------------------------------------------+
//   |          redirected connections                               | 36
//   +---------------------------------------------------------------+
//   |          active sockets                                       | 40
//   +-------------------------------+-------------------------------+
//   |  report period, ms (1..65535) |   reserved, 0                 | 44
//   +-------------------------------+-------------------------------+
//
//   flags: bit 0 draining (take no new flows), bit 1 leaving (the last report before a clean
//   shutdown: mark me down now); the other six bits must be zero in version 1.
//
// Decoding checks, in this order: at least 5 bytes (else `truncated`), the magic (`bad_magic`),
// the version (`bad_version`: a later version may be longer, so the version is read before the
// length), exactly wire_size bytes (`truncated` or `too_large`), then every field: node id not 0,
// unknown flags, incarnation and sequence not 0, CPU load at most 10000, timestamp not before the
// incarnation, period not 0, reserved 0 (all `bad_field`).
//
// Replays and reordering: a report carries (incarnation, sequence). A restarted announcer takes a
// new, later incarnation and counts from 1 again. `report_sequence` keeps, per member, the last
// pair accepted and accepts only a strictly later one; an equal pair is a `replayed` report, an
// earlier one `stale`. The format has no authentication: this guards against duplicated,
// reordered and old datagrams, not against an attacker on the segment (run it on a trusted
// network, as DPR and keepalived's VRRP do).
//
// Cost: encode and decode are a few dozen loads and stores, no allocation, noexcept
// (benchmarks/load_report_benchmark.cpp).
#pragma once

#include <clusternet/byteorder.hpp>
#include <clusternet/error.hpp>
#include <clusternet/member_sink.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace clusternet {

/// Bits of load_report::flags.
namespace load_report_flags {
inline constexpr std::uint8_t draining = 0x01;  ///< the member takes no new flows
inline constexpr std::uint8_t leaving = 0x02;   ///< the member is shutting down cleanly
inline constexpr std::uint8_t known_v1 = draining | leaving;
}  // namespace load_report_flags

/// A decoded (or to be encoded) load report.
struct load_report {
    static constexpr std::uint32_t magic = 0x434E4C52;  // "CNLR"
    static constexpr std::uint8_t current_version = 1;
    static constexpr std::size_t wire_size = 48;

    std::uint8_t version = current_version;
    std::uint8_t flags = 0;             ///< load_report_flags
    std::uint16_t node_id = 0;          ///< the announcer's configured id, never 0
    std::uint64_t incarnation = 0;      ///< ns since 1970 when the announcer started, never 0
    std::uint32_t sequence = 0;         ///< 1, 2, ... within the incarnation
    std::uint16_t weight = 0;           ///< the weight the member asks for (schedulers may use it)
    std::uint64_t timestamp = 0;        ///< ns since 1970 when the metrics were sampled
    std::uint16_t period_ms = 1000;     ///< how often the announcer sends
    load_metrics metrics{};

    [[nodiscard]] constexpr bool draining() const noexcept { return (flags & load_report_flags::draining) != 0; }
    [[nodiscard]] constexpr bool leaving() const noexcept { return (flags & load_report_flags::leaving) != 0; }

    friend constexpr bool operator==(const load_report&, const load_report&) noexcept = default;
};

/// Field offsets of version 1 (for tests and fuzzers that patch single fields).
namespace load_report_offset {
inline constexpr std::size_t magic = 0, version = 4, flags = 5, node_id = 6, incarnation = 8, sequence = 16,
                             cpu_load = 20, weight = 22, timestamp = 24, open_connections = 32,
                             redirected_connections = 36, active_sockets = 40, period_ms = 44,
                             reserved = 46;
}  // namespace load_report_offset

/// Checks the fields of `r` as decode would (node id, flags, incarnation, sequence, CPU load,
/// timestamp, period); parse_error::none when it may be encoded. Constant time, noexcept.
[[nodiscard]] constexpr parse_error validate(const load_report& r) noexcept {
    if (r.version != load_report::current_version) return parse_error::bad_version;
    if (r.node_id == 0) return parse_error::bad_field;
    if ((r.flags & ~load_report_flags::known_v1) != 0) return parse_error::bad_field;
    if (r.incarnation == 0 || r.sequence == 0) return parse_error::bad_field;
    if (r.metrics.cpu_load > load_metrics::cpu_full_scale) return parse_error::bad_field;
    if (r.timestamp < r.incarnation) return parse_error::bad_field;
    if (r.period_ms == 0) return parse_error::bad_field;
    return parse_error::none;
}

/// Writes `r` into the first wire_size bytes of `out`. Returns the bytes written (wire_size), or
/// 0 when `out` is shorter than wire_size or `r` does not validate (nothing is written then).
/// Constant time, noexcept.
[[nodiscard]] inline std::size_t encode(const load_report& r, std::span<std::byte> out) noexcept {
    namespace off = load_report_offset;
    if (out.size() < load_report::wire_size || validate(r) != parse_error::none) return 0;
    std::byte* p = out.data();
    store_be32(p + off::magic, load_report::magic);
    store_u8(p + off::version, r.version);
    store_u8(p + off::flags, r.flags);
    store_be16(p + off::node_id, r.node_id);
    store_be64(p + off::incarnation, r.incarnation);
    store_be32(p + off::sequence, r.sequence);
    store_be16(p + off::cpu_load, r.metrics.cpu_load);
    store_be16(p + off::weight, r.weight);
    store_be64(p + off::timestamp, r.timestamp);
    store_be32(p + off::open_connections, r.metrics.open_connections);
    store_be32(p + off::redirected_connections, r.metrics.redirected_connections);
    store_be32(p + off::active_sockets, r.metrics.active_sockets);
    store_be16(p + off::period_ms, r.period_ms);
    store_be16(p + off::reserved, 0);
    return load_report::wire_size;
}

/// Decodes one datagram. Refuses (see the header note for the order): `truncated`, `bad_magic`,
/// `bad_version`, `too_large`, `bad_field`. Reads only inside `in`; constant time, noexcept.
[[nodiscard]] inline result<load_report> decode_load_report(std::span<const std::byte> in) noexcept {
    namespace off = load_report_offset;
    if (in.size() < off::version + 1) return parse_error::truncated;
    const std::byte* p = in.data();
    if (load_be32(p + off::magic) != load_report::magic) return parse_error::bad_magic;
    if (load_u8(p + off::version) != load_report::current_version) return parse_error::bad_version;
    if (in.size() < load_report::wire_size) return parse_error::truncated;
    if (in.size() > load_report::wire_size) return parse_error::too_large;
    if (load_be16(p + off::reserved) != 0) return parse_error::bad_field;

    load_report r;
    r.version = load_u8(p + off::version);
    r.flags = load_u8(p + off::flags);
    r.node_id = load_be16(p + off::node_id);
    r.incarnation = load_be64(p + off::incarnation);
    r.sequence = load_be32(p + off::sequence);
    r.metrics.cpu_load = load_be16(p + off::cpu_load);
    r.weight = load_be16(p + off::weight);
    r.timestamp = load_be64(p + off::timestamp);
    r.metrics.open_connections = load_be32(p + off::open_connections);
    r.metrics.redirected_connections = load_be32(p + off::redirected_connections);
    r.metrics.active_sockets = load_be32(p + off::active_sockets);
    r.period_ms = load_be16(p + off::period_ms);
    if (const parse_error e = validate(r); e != parse_error::none) return e;
    return r;
}

/// How a report's (incarnation, sequence) compares with the last one accepted from its member.
enum class sequence_verdict : std::uint8_t {
    fresh,     ///< strictly later: accept it
    replayed,  ///< the same pair as the last accepted report (a duplicate or a replay)
    stale,     ///< an earlier pair (reordered, delayed, or from a previous incarnation)
};

[[nodiscard]] constexpr std::string_view to_string(sequence_verdict v) noexcept {
    switch (v) {
        case sequence_verdict::fresh: return "fresh";
        case sequence_verdict::replayed: return "replayed";
        case sequence_verdict::stale: return "stale";
    }
    return "unknown";
}

/// The per-member replay guard: the last (incarnation, sequence) accepted. 16 bytes, noexcept.
class report_sequence {
public:
    /// Classifies `r` without changing anything.
    [[nodiscard]] constexpr sequence_verdict check(const load_report& r) const noexcept {
        if (!seen_) return sequence_verdict::fresh;
        if (r.incarnation != incarnation_)
            return r.incarnation > incarnation_ ? sequence_verdict::fresh : sequence_verdict::stale;
        if (r.sequence == sequence_) return sequence_verdict::replayed;
        return r.sequence > sequence_ ? sequence_verdict::fresh : sequence_verdict::stale;
    }
    /// Records `r` as accepted. Precondition: check(r) == fresh.
    constexpr void accept(const load_report& r) noexcept {
        seen_ = true;
        incarnation_ = r.incarnation;
        sequence_ = r.sequence;
    }
    /// check() and, when fresh, accept().
    constexpr sequence_verdict check_and_accept(const load_report& r) noexcept {
        const sequence_verdict v = check(r);
        if (v == sequence_verdict::fresh) accept(r);
        return v;
    }
    /// Forgets the last pair: the next report is fresh whatever it carries. The listener calls
    /// this when a member is declared down by silence, so that a member whose clock went back
    /// across a restart (an earlier incarnation) is not locked out for ever.
    constexpr void reset() noexcept { seen_ = false; }

    [[nodiscard]] constexpr bool seen() const noexcept { return seen_; }
    [[nodiscard]] constexpr std::uint64_t incarnation() const noexcept { return incarnation_; }
    [[nodiscard]] constexpr std::uint32_t sequence() const noexcept { return sequence_; }

private:
    std::uint64_t incarnation_ = 0;
    std::uint32_t sequence_ = 0;
    bool seen_ = false;
};

}  // namespace clusternet
