// Load reports: the codec, the whole receive path, and the /proc sampler behind the announcer.
//
//   BM_LoadReport_Encode    encode one report into a buffer
//   BM_LoadReport_Decode    decode and validate one 48-byte datagram
//   BM_LoadReport_Receive   report_receiver::receive: decode, member lookup (by address and node
//                           id, among range(0) members), replay guard, liveness, sink call
//   BM_HostLoad_Sample      host_load_sampler::sample on this host's /proc (once a period in
//                           the announcer: its cost bounds how short a period can be)
//
// No peer here: the format is clusternet's own, and DPR's was never published.
#include <clusternet/host_load.hpp>
#include <clusternet/load_report.hpp>
#include <clusternet/load_reporter.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string_view>
#include <system_error>
#include <vector>

namespace cn = clusternet;

namespace {

cn::load_report report(std::uint16_t node, std::uint32_t seq) {
    cn::load_report r;
    r.node_id = node;
    r.incarnation = 1'700'000'000'000'000'000ULL;
    r.timestamp = r.incarnation + seq;
    r.sequence = seq;
    r.weight = 1;
    r.metrics = {.open_connections = 1234, .cpu_load = 4321, .redirected_connections = 12, .active_sockets = 345};
    return r;
}

struct counting_sink {
    std::uint64_t n = 0;
    void on_report(cn::member_index, const cn::load_report& r, cn::member_clock::time_point) { n += r.sequence; }
    void on_down(cn::member_index, std::string_view) { ++n; }
    void on_up(cn::member_index) { ++n; }
};

void BM_LoadReport_Encode(benchmark::State& state) {
    std::vector<cn::load_report> reports;
    for (std::uint16_t i = 0; i < 256; ++i) reports.push_back(report(static_cast<std::uint16_t>(i + 1), i + 1U));
    std::array<std::byte, cn::load_report::wire_size> buf{};
    std::size_t i = 0;
    for (auto _ : state) {
        const cn::load_report& r = reports[i++ & 255];
        benchmark::DoNotOptimize(&r);  // the compiler may not assume what it holds
        benchmark::DoNotOptimize(cn::encode(r, buf));
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * cn::load_report::wire_size));
}
BENCHMARK(BM_LoadReport_Encode);

void BM_LoadReport_Decode(benchmark::State& state) {
    std::vector<std::array<std::byte, cn::load_report::wire_size>> bufs(256);
    for (std::size_t i = 0; i < bufs.size(); ++i) (void)cn::encode(report(static_cast<std::uint16_t>(i + 1), 1), bufs[i]);
    std::size_t i = 0;
    for (auto _ : state) {
        auto r = cn::decode_load_report(bufs[i++ & 255]);
        benchmark::DoNotOptimize(r);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * cn::load_report::wire_size));
}
BENCHMARK(BM_LoadReport_Decode);

// The datagrams are encoded before the timed loop (PauseTiming would cost more than the
// operation): `rounds` fresh sequence numbers per member, members in a shuffled order.
void BM_LoadReport_Receive(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    std::vector<cn::reporting_member> members;
    for (std::size_t i = 0; i < n; ++i)
        members.push_back({static_cast<std::uint16_t>(i + 1), cn::ipv4_address(0x0A000000U + static_cast<std::uint32_t>(i))});
    std::vector<std::size_t> order(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), std::mt19937_64(5));
    constexpr std::uint32_t rounds = 64;
    std::vector<std::array<std::byte, cn::load_report::wire_size>> bufs(n * rounds);
    for (std::uint32_t r = 0; r < rounds; ++r)
        for (std::size_t k = 0; k < n; ++k)
            (void)cn::encode(report(static_cast<std::uint16_t>(order[k] + 1), r + 1), bufs[r * n + k]);

    counting_sink sink;
    const auto t = cn::member_clock::now();
    std::size_t i = 0;
    std::optional<cn::report_receiver<counting_sink>> rx;
    rx.emplace(cn::member_list(members), cn::liveness_options{}, sink, t);
    for (auto _ : state) {
        if (i == bufs.size()) {  // all rounds used: start again with a fresh receiver
            state.PauseTiming();
            rx.emplace(cn::member_list(members), cn::liveness_options{}, sink, t);
            i = 0;
            state.ResumeTiming();
        }
        const std::size_t m = order[i % n];
        benchmark::DoNotOptimize(rx->receive(members[m].address, bufs[i], t));
        ++i;
    }
    if (rx->counters().rejected() != 0) state.SkipWithError("a report was rejected");
    benchmark::DoNotOptimize(sink.n);
}
BENCHMARK(BM_LoadReport_Receive)->Arg(8)->Arg(64)->Arg(1000);

void BM_HostLoad_Sample(benchmark::State& state) {
    cn::host_load_sampler s;
    std::error_code ec;
    for (auto _ : state) {
        auto m = s.sample(ec);
        benchmark::DoNotOptimize(m);
    }
    if (ec) state.SkipWithError("reading /proc failed");
}
BENCHMARK(BM_HostLoad_Sample)->Unit(benchmark::kMicrosecond);

}  // namespace
