// Full Internet checksum throughput, clusternet against its peers, in one binary.
//
//   BM_Checksum_Clusternet        checksum_accumulator (AVX2 chosen at run time when present)
//   BM_Checksum_ClusternetScalar  the portable kernel alone
//   BM_Checksum_PlainLoop         the textbook RFC 1071 loop (16-bit big-endian words, 32-bit sum)
//   BM_Checksum_DpdkRaw           DPDK's rte_raw_cksum, compiled as DPDK's pkg-config asks
//                                 (-march=corei7: SSE4.2 auto-vectorisation)
//   BM_Checksum_DpdkRawAvx2       the same DPDK code compiled for AVX2, the strongest form of
//                                 the peer we can build here
// Sizes: 64, 576, 1500 and 9000 bytes. Compare bytes_per_second.
#include <clusternet/checksum.hpp>

#include <benchmark/benchmark.h>
#include <rte_ip.h>

#include <random>
#include <vector>

namespace cn = clusternet;

namespace {

std::vector<std::byte> make_data(std::size_t n) {
    std::mt19937_64 rng(42);
    std::vector<std::byte> v(n);
    for (auto& b : v) b = std::byte(static_cast<unsigned char>(rng()));
    return v;
}

std::uint16_t plain_rfc1071(const std::byte* p, std::size_t n) noexcept {
    std::uint32_t sum = 0;
    while (n > 1) {
        sum += cn::load_be16(p);
        p += 2;
        n -= 2;
    }
    if (n == 1) sum += static_cast<std::uint32_t>(std::to_integer<unsigned>(*p)) << 8;
    while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum);
}

__attribute__((target("avx2"))) std::uint16_t dpdk_raw_cksum_avx2(const void* p, std::size_t n) noexcept {
    return rte_raw_cksum(p, n);
}

template <class F>
void run(benchmark::State& state, F&& f) {
    const auto data = make_data(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        benchmark::DoNotOptimize(data.data());
        auto c = f(data.data(), data.size());
        benchmark::DoNotOptimize(c);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void BM_Checksum_Clusternet(benchmark::State& state) {
    run(state, [](const std::byte* p, std::size_t n) { return cn::internet_checksum({p, n}); });
}
void BM_Checksum_ClusternetScalar(benchmark::State& state) {
    run(state, [](const std::byte* p, std::size_t n) { return cn::detail::fold16(cn::detail::sum_scalar(p, n)); });
}
void BM_Checksum_PlainLoop(benchmark::State& state) {
    run(state, [](const std::byte* p, std::size_t n) { return plain_rfc1071(p, n); });
}
void BM_Checksum_DpdkRaw(benchmark::State& state) {
    run(state, [](const std::byte* p, std::size_t n) { return rte_raw_cksum(p, n); });
}
void BM_Checksum_DpdkRawAvx2(benchmark::State& state) {
    if (!__builtin_cpu_supports("avx2")) {
        state.SkipWithError("no AVX2 on this CPU");
        return;
    }
    run(state, [](const std::byte* p, std::size_t n) { return dpdk_raw_cksum_avx2(p, n); });
}

}  // namespace

#define CLUSTERNET_SIZES ->Arg(64)->Arg(576)->Arg(1500)->Arg(9000)
BENCHMARK(BM_Checksum_Clusternet) CLUSTERNET_SIZES;
BENCHMARK(BM_Checksum_ClusternetScalar) CLUSTERNET_SIZES;
BENCHMARK(BM_Checksum_PlainLoop) CLUSTERNET_SIZES;
BENCHMARK(BM_Checksum_DpdkRaw) CLUSTERNET_SIZES;
BENCHMARK(BM_Checksum_DpdkRawAvx2) CLUSTERNET_SIZES;
