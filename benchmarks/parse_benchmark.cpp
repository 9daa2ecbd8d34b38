// Parsing a frame down to its flow key, per packet.
//
//   BM_Parse_EthIpv4Tcp          one Ethernet/IPv4/TCP frame (timestamps option), parsed to its
//                                flow key, again and again: the best case
//   BM_Parse_EthIpv4Tcp_Flows    1024 different Ethernet/IPv4/TCP frames in turn
//   BM_Parse_Mixed               1024 frames: IPv4 and IPv6, TCP, UDP and ICMP, some with a VLAN
//                                tag: branches a predictor cannot learn
//   BM_Parse_DpdkPtype           DPDK's rte_net_get_ptype over the same single frame (L2-L4
//                                header lengths and packet type; it yields no flow key)
// The goal: under 10 ns per Ethernet/IPv4/TCP packet.
#include "../tests/support/reference.hpp"

#include <clusternet/packet.hpp>
#include <clusternet/packet_builder.hpp>

#include <benchmark/benchmark.h>
#include <rte_mbuf.h>
#include <rte_net.h>

#include <cstring>
#include <random>
#include <vector>

namespace cn = clusternet;

namespace {

std::vector<std::byte> tcp4_frame(std::uint32_t src, std::uint16_t sport) {
    std::vector<std::byte> buf(256);
    auto r = cn::packet_builder(buf)
                 .ethernet({})
                 .ipv4({.src = cn::ipv4_address(src), .dst = cn::ipv4_address(10, 0, 0, 100)})
                 .tcp({.sport = sport, .dport = 80, .seq = 1, .ack = 1, .timestamps = std::array<std::uint32_t, 2>{1, 2}})
                 .payload(26)
                 .finish();
    return {r->begin(), r->end()};
}

void BM_Parse_EthIpv4Tcp(benchmark::State& state) {
    const auto f = tcp4_frame(0xC6336407, 43210);
    for (auto _ : state) {
        benchmark::DoNotOptimize(f.data());
        const auto p = cn::parse_ethernet_packet(std::span<const std::byte>(f));
        cn::flow_key4 k{};
        if (p) k = p->key4();
        benchmark::DoNotOptimize(k);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

template <class Gen>
void run_many(benchmark::State& state, Gen&& gen) {
    std::vector<std::vector<std::byte>> frames;
    for (std::size_t i = 0; i < 1024; ++i) frames.push_back(gen(i));
    std::size_t i = 0;
    std::uint64_t acc = 0;
    for (auto _ : state) {
        const auto& f = frames[i++ & 1023];
        const auto p = cn::parse_ethernet_packet(std::span<const std::byte>(f));
        if (p) acc += p->sport() + p->protocol();
        benchmark::DoNotOptimize(acc);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void BM_Parse_EthIpv4Tcp_Flows(benchmark::State& state) {
    std::mt19937_64 rng(1);
    run_many(state, [&](std::size_t) { return tcp4_frame(static_cast<std::uint32_t>(rng()), static_cast<std::uint16_t>(rng())); });
}

void BM_Parse_Mixed(benchmark::State& state) {
    std::mt19937_64 rng(2);
    run_many(state, [&](std::size_t) {
        std::vector<std::byte> buf(2048);
        const auto s = cn::test::random_packet(rng, buf, 64);
        return std::vector<std::byte>(s.begin(), s.end());
    });
}

void BM_Parse_DpdkPtype(benchmark::State& state) {
    auto f = tcp4_frame(0xC6336407, 43210);
    alignas(64) unsigned char storage[sizeof(rte_mbuf)];
    std::memset(storage, 0, sizeof storage);
    auto* m = reinterpret_cast<rte_mbuf*>(storage);
    m->buf_addr = f.data();
    m->data_off = 0;
    m->data_len = static_cast<std::uint16_t>(f.size());
    m->pkt_len = static_cast<std::uint32_t>(f.size());
    m->nb_segs = 1;
    m->next = nullptr;
    rte_net_hdr_lens lens{};
    for (auto _ : state) {
        benchmark::DoNotOptimize(f.data());
        const std::uint32_t t = rte_net_get_ptype(m, &lens, RTE_PTYPE_ALL_MASK);
        benchmark::DoNotOptimize(t);
        benchmark::DoNotOptimize(lens);
    }
    if ((rte_net_get_ptype(m, &lens, RTE_PTYPE_ALL_MASK) & RTE_PTYPE_L4_MASK) != RTE_PTYPE_L4_TCP)
        state.SkipWithError("DPDK did not see TCP");
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

}  // namespace

BENCHMARK(BM_Parse_EthIpv4Tcp);
BENCHMARK(BM_Parse_EthIpv4Tcp_Flows);
BENCHMARK(BM_Parse_Mixed);
BENCHMARK(BM_Parse_DpdkPtype);
