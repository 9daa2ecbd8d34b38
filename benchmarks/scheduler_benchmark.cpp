// Schedulers and the cluster view.
//
//   BM_Scheduler_Pick<policy>/N   ns per pick for every policy at N = 8, 64, 1000 back ends
//                                 (weights 1..4; flows and request targets from a pool of 4096)
//   BM_Maglev_Populate/N          building the M = 65537 table for N back ends (update())
//   BM_Maglev_Lookup/N            one lookup (pick) at M = 65537, independent lookups
//   BM_Maglev_LookupLatency/N     the same, each depending on the previous one (latency)
//   BM_Maglev_Disruption/M/N/incremental  one back end leaves: counters disruption_x_ideal
//                                 (entries changed / (M / N)) and balance_max_mean (max / mean
//                                 entries after the change), full and incremental rebuild
//   BM_Maglev_RebuildIncremental/N  incremental update() after one member leaves or returns
//   BM_Rendezvous_Pick/N          rendezvous cost per pick against N (equal and unequal weights)
//   BM_ClusterView_Refresh        reader.refresh() when nothing changed
//   BM_ClusterView_FlowOpenClose  flow_opened + flow_closed on one member
//   BM_ClusterView_Update         publishing a snapshot (set_weight) of N members
// No peer implementation is linked: IPVS's schedulers live in the kernel and Envoy's Maglev
// inside Envoy; docs/schedulers.md compares with their published figures.
#include <clusternet/schedulers/content.hpp>
#include <clusternet/schedulers/dpr.hpp>
#include <clusternet/schedulers/hashing.hpp>
#include <clusternet/schedulers/least_connections.hpp>
#include <clusternet/schedulers/maglev.hpp>
#include <clusternet/schedulers/random.hpp>
#include <clusternet/schedulers/round_robin.hpp>

#include "../tests/support/cluster_fixture.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <string>
#include <vector>

namespace cn = clusternet;

namespace {

constexpr std::size_t pool = 4096;

/// A view of n members with weights 1, 2, 3, 4, 1, 2, ... and some live flows on each.
std::unique_ptr<cn::cluster_view> weighted_view(std::size_t n) {
    std::vector<std::uint32_t> w(n);
    for (std::size_t i = 0; i < n; ++i) w[i] = static_cast<std::uint32_t>(1 + i % 4);
    auto v = cn::test::make_view(w, std::max<std::size_t>(n, 1024));
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t k = 0; k < (i * 7) % 13; ++k) v->flow_opened(static_cast<cn::member_id>(i));
    return v;
}

/// Pick inputs that own their keys and targets (1000 distinct URLs, as a Zipf head would be).
struct inputs {
    std::vector<cn::flow_key> keys;
    std::vector<std::string> urls;
    std::vector<cn::pick_input> in;
    inputs() : keys(pool), urls(pool), in(pool) {
        cn::test::flow_stream fs(1);
        for (std::size_t i = 0; i < pool; ++i) {
            const cn::pick_input& x = fs.next();
            keys[i] = *x.key;
            urls[i] = "/site/objects/" + std::to_string(i % 1000) + ".jpg";
            in[i] = x;
            in[i].key = &keys[i];
            in[i].content = urls[i];
        }
    }
};

template <class S>
S make() {
    if constexpr (std::is_same_v<S, cn::dpr_threshold>) {
        cn::dpr_config c;
        c.self = 0;
        c.max_load = 0;  // always over MaxLoad: the redirect path, one pass over the members
        c.metric = cn::dpr_metric::live_flows;
        return S(c);
    } else {
        return S{};
    }
}

struct dpr_inverse : cn::dpr_threshold {
    dpr_inverse() : dpr_threshold(config()) {}
    static cn::dpr_config config() {
        cn::dpr_config c;
        c.self = 0;
        c.max_load = 0;
        c.choice = cn::dpr_choice::inverse_load;
        c.metric = cn::dpr_metric::live_flows;
        return c;
    }
};

template <class S>
void BM_Scheduler_Pick(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    auto view = weighted_view(n);
    auto reader = view->make_reader();
    const cn::cluster_snapshot& snap = reader.refresh();
    S s = make<S>();
    s.update(snap);
    const inputs data;
    std::size_t i = 0;
    for (auto _ : state) {
        cn::member_id m = s.pick(snap, data.in[i++ & (pool - 1)]);
        benchmark::DoNotOptimize(m);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

#define CN_PICK(S) BENCHMARK_TEMPLATE(BM_Scheduler_Pick, S)->Arg(8)->Arg(64)->Arg(1000)
CN_PICK(cn::round_robin);
CN_PICK(cn::weighted_round_robin);
CN_PICK(cn::least_connections);
CN_PICK(cn::weighted_least_connections);
CN_PICK(cn::shortest_expected_delay);
CN_PICK(cn::never_queue);
CN_PICK(cn::random_choice);
CN_PICK(cn::weighted_random);
CN_PICK(cn::power_of_two_choices);
CN_PICK(cn::source_hash);
CN_PICK(cn::destination_hash);
CN_PICK(cn::rendezvous);
CN_PICK(cn::maglev);
CN_PICK(cn::dpr_threshold);
CN_PICK(dpr_inverse);
CN_PICK(cn::lard);
CN_PICK(cn::hybrid_affinity);

void BM_Maglev_Populate(benchmark::State& state) {
    auto view = cn::test::make_uniform_view(static_cast<std::size_t>(state.range(0)));
    const auto snap = view->current();
    cn::maglev m;
    for (auto _ : state) {
        m.update(*snap);
        benchmark::DoNotOptimize(m.table().data());
    }
    state.counters["entries"] = static_cast<double>(m.table().size());
}
BENCHMARK(BM_Maglev_Populate)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

void BM_Maglev_Lookup(benchmark::State& state) {
    auto view = cn::test::make_uniform_view(static_cast<std::size_t>(state.range(0)));
    const auto snap = view->current();
    cn::maglev m;
    m.update(*snap);
    std::vector<std::uint64_t> hashes(pool);
    cn::detail::split_mix rng(5);
    for (auto& h : hashes) h = rng();
    std::size_t i = 0;
    cn::pick_input in;
    for (auto _ : state) {
        in.hash = hashes[i++ & (pool - 1)];
        cn::member_id r = m.pick(*snap, in);
        benchmark::DoNotOptimize(r);
    }
}
BENCHMARK(BM_Maglev_Lookup)->Arg(10)->Arg(100)->Arg(1000);

/// Latency rather than throughput: each lookup's hash depends on the previous answer, so lookups
/// cannot overlap (the table is 128 KB: L2-resident, as in a dispatcher that keeps it warm).
void BM_Maglev_LookupLatency(benchmark::State& state) {
    auto view = cn::test::make_uniform_view(static_cast<std::size_t>(state.range(0)));
    const auto snap = view->current();
    cn::maglev m;
    m.update(*snap);
    cn::pick_input in;
    in.hash = 0x1234567887654321ULL;
    for (auto _ : state) {
        const cn::member_id r = m.pick(*snap, in);
        in.hash = (in.hash ^ r) * 0x9E3779B97F4A7C15ULL;
    }
    benchmark::DoNotOptimize(in.hash);
}
BENCHMARK(BM_Maglev_LookupLatency)->Arg(1000);

void BM_Maglev_Disruption(benchmark::State& state) {
    const auto table = static_cast<std::uint32_t>(state.range(0));
    const auto n = static_cast<std::size_t>(state.range(1));
    const auto mode = state.range(2) != 0 ? cn::maglev_rebuild::incremental : cn::maglev_rebuild::full;
    double disruption = 0, balance = 0;
    std::size_t trials = 0;
    for (auto _ : state) {
        auto view = cn::test::make_uniform_view(n);
        cn::maglev m(table, cn::detail::default_hash_seed, mode);
        m.update(*view->current());
        const std::vector<cn::member_id> before(m.table().begin(), m.table().end());
        view->remove_member(static_cast<cn::member_id>((trials * 37) % n));
        m.update(*view->current());
        std::vector<std::size_t> per(n);  // balance after the change, over the N - 1 members left
        for (const cn::member_id id : m.table()) ++per[id];
        balance += static_cast<double>(*std::max_element(per.begin(), per.end())) * static_cast<double>(n - 1) / table;
        std::size_t changed = 0;
        for (std::size_t i = 0; i < before.size(); ++i) changed += before[i] != m.table()[i];
        disruption += static_cast<double>(changed) * static_cast<double>(n) / table;
        ++trials;
    }
    state.counters["disruption_x_ideal"] = disruption / static_cast<double>(trials);
    state.counters["balance_max_mean"] = balance / static_cast<double>(trials);
    state.counters["M_over_N"] = static_cast<double>(table) / static_cast<double>(n);
}
BENCHMARK(BM_Maglev_Disruption)
    ->ArgsProduct({{65537}, {10, 100, 1000}, {0, 1}})
    ->ArgsProduct({{655373}, {100, 1000}, {0, 1}})
    ->ArgNames({"M", "N", "incremental"})
    ->Unit(benchmark::kMillisecond)->Iterations(8);

/// The incremental rebuild after one member of N leaves (the cost a control plane pays).
void BM_Maglev_RebuildIncremental(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    auto view = cn::test::make_uniform_view(n);
    const auto all = view->current();
    view->remove_member(0);
    const auto fewer = view->current();
    cn::maglev m(cn::maglev::default_table_size, cn::detail::default_hash_seed, cn::maglev_rebuild::incremental);
    bool flip = false;
    for (auto _ : state) {
        m.update(flip ? *all : *fewer);  // alternately one member leaves and comes back
        flip = !flip;
        benchmark::DoNotOptimize(m.table().data());
    }
}
BENCHMARK(BM_Maglev_RebuildIncremental)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

void BM_Rendezvous_Pick(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    auto view = state.range(1) != 0 ? weighted_view(n) : cn::test::make_uniform_view(n);
    const auto snap = view->current();
    cn::rendezvous r;
    r.update(*snap);
    const inputs data;
    std::size_t i = 0;
    for (auto _ : state) {
        cn::member_id m = r.pick(*snap, data.in[i++ & (pool - 1)]);
        benchmark::DoNotOptimize(m);
    }
    state.counters["ns_per_member"] =
        benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(n),
                           benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_Rendezvous_Pick)->ArgsProduct({{4, 16, 64, 256, 1024}, {0, 1}})->ArgNames({"N", "weighted"});

void BM_ClusterView_Refresh(benchmark::State& state) {
    auto view = cn::test::make_uniform_view(64);
    auto reader = view->make_reader();
    for (auto _ : state) {
        const cn::cluster_snapshot& s = reader.refresh();
        benchmark::DoNotOptimize(&s);
    }
}
BENCHMARK(BM_ClusterView_Refresh);

void BM_ClusterView_FlowOpenClose(benchmark::State& state) {
    auto view = cn::test::make_uniform_view(64);
    for (auto _ : state) {
        view->flow_opened(3);
        view->flow_closed(3);
    }
}
BENCHMARK(BM_ClusterView_FlowOpenClose);

void BM_ClusterView_Update(benchmark::State& state) {
    auto view = cn::test::make_uniform_view(static_cast<std::size_t>(state.range(0)));
    std::uint32_t w = 1;
    for (auto _ : state) view->set_weight(0, ++w);
}
BENCHMARK(BM_ClusterView_Update)->Arg(8)->Arg(1000);

}  // namespace
