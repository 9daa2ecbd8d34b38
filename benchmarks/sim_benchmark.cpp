// The cluster simulator's speed.
//
//   BM_Sim_EventQueue/N      push + pop on an event queue holding N events (ns per pair)
//   BM_Sim_Dpr/policy        the DPR experiment at 1/5 scale, 60 simulated seconds: events per
//                            second of wall time (counter events_per_s), for none, random, dpr
//   BM_Sim_Large/policy      1000 back ends, open arrivals at 90 % of capacity, 50000 requests:
//                            events per second with the pick cost of rr, lc, maglev and dpr
// No peer is linked (ns-3 or OMNeT++ would be the peers; neither is packaged here).
#include <clusternet/sim/cluster_sim.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

namespace sim = clusternet::sim;

namespace {

void BM_Sim_EventQueue(benchmark::State& state) {
    sim::event_queue<std::uint32_t> q;
    sim::rng g(1);
    for (std::int64_t i = 0; i < state.range(0); ++i) q.push(g.uniform(), static_cast<std::uint32_t>(i));
    for (auto _ : state) {
        const auto e = q.pop();
        q.push(e.time + g.uniform(), e.payload);
        benchmark::DoNotOptimize(e);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Sim_EventQueue)->Range(64, 1 << 20);

void run_sim(benchmark::State& state, const sim::sim_config& c) {
    std::uint64_t events = 0;
    for (auto _ : state) {
        const sim::sim_result r = sim::simulate(c);
        events += r.events;
        benchmark::DoNotOptimize(r.delay.mean);
    }
    state.counters["events_per_s"] = benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
    state.SetItemsProcessed(static_cast<std::int64_t>(events));
}

void BM_Sim_Dpr(benchmark::State& state, const char* policy) {
    run_sim(state, sim::dpr_paper_config(policy, 1, 60, 0.2));
}
BENCHMARK_CAPTURE(BM_Sim_Dpr, none, "none")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Sim_Dpr, random, "random")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Sim_Dpr, dpr, "dpr")->Unit(benchmark::kMillisecond);

void BM_Sim_Large(benchmark::State& state, const char* policy) {
    sim::sim_config c;
    c.servers.assign(1000, sim::server_config{});
    c.arrivals = sim::arrival_model::open;
    c.per_request_s = 0.2;
    c.per_byte_s = 0;
    c.open_rate = 0.9 * 1000 / c.per_request_s;
    c.max_requests = 50000;
    c.duration_s = 50000 / c.open_rate;
    c.warmup_s = c.duration_s / 10;
    c.policy = policy;
    run_sim(state, c);
}
BENCHMARK_CAPTURE(BM_Sim_Large, rr, "rr")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Sim_Large, lc, "lc")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Sim_Large, maglev, "maglev")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Sim_Large, dpr, "dpr")->Unit(benchmark::kMillisecond);

}  // namespace
