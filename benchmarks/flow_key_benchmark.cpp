// Hashing an IPv4 5-tuple: clusternet's seeded multiply-fold hash against the hashes a user
// would otherwise reach for.
//
//   BM_FlowKey_Hash4          clusternet::hash(flow_key4)
//   BM_FlowKey_AbslHash4      absl::Hash (through the AbslHashValue hook in flow_key.hpp)
//   BM_FlowKey_BoostHash4     boost::hash_combine over the fields
//   BM_FlowKey_DpdkCrc4       DPDK's rte_hash_crc over the 16 key bytes (rte_hash's default)
//   BM_FlowKey_DpdkJhash4     DPDK's rte_jhash over the 16 key bytes
#include <clusternet/flow_key.hpp>

#include <absl/hash/hash.h>
#include <benchmark/benchmark.h>
#include <boost/container_hash/hash.hpp>
#include <rte_hash_crc.h>
#include <rte_jhash.h>

#include <random>
#include <vector>

namespace cn = clusternet;

namespace {

std::vector<cn::flow_key4> keys() {
    std::mt19937_64 rng(3);
    std::vector<cn::flow_key4> v(4096);
    for (auto& k : v) {
        k = cn::flow_key4{static_cast<std::uint32_t>(rng()), 0x0A000064, static_cast<std::uint16_t>(rng()), 80, 6};
    }
    return v;
}

template <class H>
void run(benchmark::State& state, H&& h) {
    const auto ks = keys();
    std::size_t i = 0;
    for (auto _ : state) {
        auto v = h(ks[i++ & 4095]);
        benchmark::DoNotOptimize(v);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void BM_FlowKey_Hash4(benchmark::State& s) { run(s, [](const cn::flow_key4& k) { return cn::hash(k); }); }
void BM_FlowKey_AbslHash4(benchmark::State& s) { run(s, [](const cn::flow_key4& k) { return absl::Hash<cn::flow_key4>{}(k); }); }
void BM_FlowKey_BoostHash4(benchmark::State& s) {
    run(s, [](const cn::flow_key4& k) {
        std::size_t h = 0;
        boost::hash_combine(h, k.src);
        boost::hash_combine(h, k.dst);
        boost::hash_combine(h, k.sport);
        boost::hash_combine(h, k.dport);
        boost::hash_combine(h, k.protocol);
        return h;
    });
}
void BM_FlowKey_DpdkCrc4(benchmark::State& s) { run(s, [](const cn::flow_key4& k) { return rte_hash_crc(&k, sizeof k, 0); }); }
void BM_FlowKey_DpdkJhash4(benchmark::State& s) { run(s, [](const cn::flow_key4& k) { return rte_jhash(&k, sizeof k, 0); }); }

}  // namespace

BENCHMARK(BM_FlowKey_Hash4);
BENCHMARK(BM_FlowKey_AbslHash4);
BENCHMARK(BM_FlowKey_BoostHash4);
BENCHMARK(BM_FlowKey_DpdkCrc4);
BENCHMARK(BM_FlowKey_DpdkJhash4);
