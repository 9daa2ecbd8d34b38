// libFuzzer target: arbitrary text as /proc/stat, a /proc/net/tcp line and /proc/net/sockstat,
// through clusternet/host_load.hpp's parsers.
//
// Invariants, beyond "no crash, no sanitizer report":
//  - a parsed /proc/stat starts with "cpu" and has busy <= total (sums that overflow are
//    refused); the load between two samples is at most full scale, and 0 when counters go back;
//  - a TCP state is parsed only from a line with "N:", two "addr:port" tokens and a two-digit
//    hex state, and reparsing the same line gives the same state;
//  - "sockets: used N" is found only at the start of a line.
#define CLUSTERNET_FUZZ_NAME "host_load_fuzz"
#include "fuzz_check.hpp"

#include <clusternet/host_load.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace cn = clusternet;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);

    const auto t = cn::parse_proc_stat(in);
    if (t) {
        FUZZ_CHECK(t->busy <= t->total);
        const std::size_t first = in.find_first_not_of(" \t");
        FUZZ_CHECK(first != std::string_view::npos && in.substr(first).starts_with("cpu"));
        const cn::cpu_times half{t->busy / 2, t->total / 2};
        FUZZ_CHECK(cn::cpu_load_between(half, *t) <= cn::load_metrics::cpu_full_scale);
        FUZZ_CHECK(cn::cpu_load_between(*t, half) == 0);  // counters that went back
    }

    for (std::string_view rest = in; !rest.empty();) {
        const std::size_t nl = rest.find('\n');
        const std::string_view line = rest.substr(0, nl);
        const auto st = cn::proc_net_tcp_state(line);
        if (st) {
            FUZZ_CHECK(line.find(':') != std::string_view::npos);
            FUZZ_CHECK(cn::proc_net_tcp_state(line) == st);
        }
        if (nl == std::string_view::npos) break;
        rest.remove_prefix(nl + 1);
    }

    if (const auto used = cn::parse_sockstat_used(in)) {
        const std::size_t at = in.find("sockets: used ");
        FUZZ_CHECK(at != std::string_view::npos && (at == 0 || in[at - 1] == '\n'));
        (void)*used;
    }
    return 0;
}
