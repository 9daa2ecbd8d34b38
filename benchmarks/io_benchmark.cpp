// The unprivileged parts of the I/O bindings, per frame.
//
//   BM_Io_WalkBlock/<frame bytes>        clusternet's validated TPACKET_V3 block walk over a
//                                        256 KiB block packed with frames of that size (60,
//                                        1514), as the kernel lays them out; the visitor reads
//                                        the first and last byte of each frame
//   BM_Io_WalkBlockTrusting/<bytes>      the peer: the walk most TPACKET_V3 readers do (libpcap's
//                                        pcap-linux.c and the kernel's own example follow
//                                        tp_next_offset num_pkts times and check nothing),
//                                        written here the same way, for the cost of the checks
//   BM_Io_BatchPush/<bytes>              copying a frame into a sendmmsg batch slot (what
//                                        packet_socket::send and raw_ip_socket::send cost
//                                        before the system call), batch of 64, reset when full
// items_per_second counts frames; bytes_per_second frame bytes.
#include "../tests/support/tpacket_block_writer.hpp"

#include <clusternet/io/detail/mmsg_batch.hpp>
#include <clusternet/io/tpacket_block.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace cn = clusternet;
namespace io = clusternet::io;

namespace {

struct packed_block {
    std::vector<std::byte> block = std::vector<std::byte>(1u << 18);
    std::uint32_t frames = 0;
    explicit packed_block(std::size_t frame_bytes) {
        std::vector<std::byte> f(frame_bytes);
        for (std::size_t i = 0; i < f.size(); ++i) f[i] = std::byte(static_cast<unsigned char>(i));
        cn::test::tpacket_block_writer w(block);
        while (w.add(f)) {}
        w.close();
        frames = w.frames();
    }
};

void BM_Io_WalkBlock(benchmark::State& state) {
    packed_block b(static_cast<std::size_t>(state.range(0)));
    std::uint64_t sink = 0;
    for (auto _ : state) {
        const auto w = io::walk_tpacket_v3_block(b.block, [&](const io::tpacket_frame& f) {
            sink += std::to_integer<unsigned>(f.data.front()) + std::to_integer<unsigned>(f.data.back());
        });
        benchmark::DoNotOptimize(w);
        benchmark::DoNotOptimize(sink);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * b.frames);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * b.frames * state.range(0));
}
BENCHMARK(BM_Io_WalkBlock)->Arg(60)->Arg(1514);

/// The trusting walk: no bounds, as readers usually write it.
template <class F>
std::uint32_t trusting_walk(std::byte* block, F&& f) {
    namespace v3 = io::tpacket_v3;
    const std::uint32_t n = io::detail::load_host32(block + v3::off_num_pkts);
    std::byte* h = block + io::detail::load_host32(block + v3::off_first_pkt);
    for (std::uint32_t i = 0; i < n; ++i) {
        const std::uint16_t mac = io::detail::load_host16(h + v3::off_mac);
        const std::uint32_t snap = io::detail::load_host32(h + v3::off_snaplen);
        f(h + mac, snap);
        h += io::detail::load_host32(h + v3::off_next_offset);
    }
    return n;
}

void BM_Io_WalkBlockTrusting(benchmark::State& state) {
    packed_block b(static_cast<std::size_t>(state.range(0)));
    std::uint64_t sink = 0;
    for (auto _ : state) {
        const auto n = trusting_walk(b.block.data(), [&](const std::byte* p, std::uint32_t len) {
            sink += std::to_integer<unsigned>(p[0]) + std::to_integer<unsigned>(p[len - 1]);
        });
        benchmark::DoNotOptimize(n);
        benchmark::DoNotOptimize(sink);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * b.frames);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * b.frames * state.range(0));
}
BENCHMARK(BM_Io_WalkBlockTrusting)->Arg(60)->Arg(1514);

void BM_Io_BatchPush(benchmark::State& state) {
    io::detail::mmsg_batch batch(64, 2048);
    std::vector<std::byte> f(static_cast<std::size_t>(state.range(0)), std::byte{0x5A});
    for (auto _ : state) {
        if (batch.full()) batch.clear();
        benchmark::DoNotOptimize(batch.push(f));
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Io_BatchPush)->Arg(60)->Arg(1514);

}  // namespace
