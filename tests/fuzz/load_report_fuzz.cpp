// libFuzzer target: arbitrary bytes as a load-report datagram, decoded alone and then fed to a
// report_receiver as a sequence of datagrams.
//
// Invariants checked, beyond "no crash, no sanitizer report":
//  - decode succeeds exactly when the input is wire_size bytes with the magic and version and the
//    decoded report validates; encoding the decoded report gives back the input bit for bit (the
//    format has one encoding per report);
//  - a refusal is one of the reasons the decoder documents;
//  - the receiver: the input is cut into datagrams (a length byte, a source byte, the bytes); every
//    datagram counts exactly one outcome; the sink sees a report for every accepted one and never
//    one for a refused one; up and down events alternate per member, starting from either; the
//    (incarnation, sequence) of a member's accepted reports strictly grow while it stays up (the
//    guard is forgotten only while a member is down).
#define CLUSTERNET_FUZZ_NAME "load_report_fuzz"
#include "fuzz_check.hpp"

#include <clusternet/load_report.hpp>
#include <clusternet/load_reporter.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

namespace cn = clusternet;

namespace {

constexpr std::size_t members = 4;

struct checking_sink {
    std::array<char, members> last{};  // 'u', 'd' or 0
    std::array<std::optional<std::pair<std::uint64_t, std::uint32_t>>, members> order{};
    std::uint64_t reports = 0;

    void on_report(cn::member_index s, const cn::load_report& r, cn::member_clock::time_point) {
        FUZZ_CHECK(s < members);
        FUZZ_CHECK(cn::validate(r) == cn::parse_error::none);
        const std::pair<std::uint64_t, std::uint32_t> now{r.incarnation, r.sequence};
        if (last[s] == 'u' && order[s]) FUZZ_CHECK(now > *order[s]);
        order[s] = now;
        ++reports;
    }
    void on_up(cn::member_index s) {
        FUZZ_CHECK(s < members && last[s] != 'u');
        last[s] = 'u';
        order[s].reset();  // the replay guard may have been forgotten while the member was down
    }
    void on_down(cn::member_index s, std::string_view reason) {
        FUZZ_CHECK(s < members && last[s] != 'd' && !reason.empty());
        last[s] = 'd';
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);

    // 1. The input as one datagram.
    const auto r = cn::decode_load_report(in);
    if (r) {
        FUZZ_CHECK(size == cn::load_report::wire_size);
        FUZZ_CHECK(cn::validate(*r) == cn::parse_error::none);
        std::array<std::byte, cn::load_report::wire_size> again{};
        FUZZ_CHECK(cn::encode(*r, again) == again.size());
        FUZZ_CHECK(std::memcmp(again.data(), data, again.size()) == 0);
    } else {
        const cn::parse_error e = r.error();
        FUZZ_CHECK(e == cn::parse_error::truncated || e == cn::parse_error::too_large || e == cn::parse_error::bad_magic ||
                   e == cn::parse_error::bad_version || e == cn::parse_error::bad_field);
        if (size == cn::load_report::wire_size) FUZZ_CHECK(e != cn::parse_error::truncated && e != cn::parse_error::too_large);
    }

    // 2. The input as datagrams for a receiver: [length][source][bytes...] repeated. The sources
    //    are four configured members (two share an address), one stranger; time moves on by the
    //    source byte's high bits, and the receiver ticks after every datagram.
    checking_sink sink;
    const cn::ipv4_address a(10, 0, 0, 1), b(10, 0, 0, 2), c(10, 0, 0, 3), stranger(192, 0, 2, 1);
    auto t = cn::member_clock::time_point{} + std::chrono::hours(1);
    cn::report_receiver rx(cn::member_list({{1, a}, {2, b}, {3, c}, {4, a}}),
                           {.period = std::chrono::milliseconds(100), .dead_after_periods = 2}, sink, t);
    std::size_t datagrams = 0;
    std::size_t i = 0;
    while (i + 2 <= size) {
        const std::size_t len = std::min<std::size_t>(data[i], size - i - 2);
        const std::uint8_t src = data[i + 1];
        const cn::ipv4_address from = std::array{a, b, c, stranger}[src & 3];
        t += std::chrono::milliseconds(src >> 2);
        const auto before = rx.counters().received();
        const auto accepted_before = rx.counters()[cn::report_outcome::accepted];
        const auto reports_before = sink.reports;
        const cn::report_outcome o = rx.receive(from, in.subspan(i + 2, len), t);
        FUZZ_CHECK(rx.counters().received() == before + 1);
        const bool accepted = o == cn::report_outcome::accepted;
        FUZZ_CHECK(rx.counters()[cn::report_outcome::accepted] == accepted_before + (accepted ? 1 : 0));
        FUZZ_CHECK(sink.reports == reports_before + (accepted ? 1 : 0));
        rx.tick(t);
        ++datagrams;
        i += 2 + len;
    }
    FUZZ_CHECK(rx.counters().received() == datagrams);
    return 0;
}
