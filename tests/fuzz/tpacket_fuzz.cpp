// libFuzzer target: arbitrary bytes as one TPACKET_V3 receive block (what the kernel shares with
// us through the ring, trusted in nothing).
//
// Invariants checked, beyond "no crash, no sanitizer report":
//  - every frame span lies inside the block, and frames come in increasing, disjoint order;
//  - frames_delivered counts the visitor calls, is at most num_pkts and at most
//    block_size / sizeof(tpacket3_hdr) (the walk is bounded by the block, not by num_pkts);
//  - a walk that reports no error delivered every frame it claimed (or the block was too short
//    to have a descriptor, which is an error);
//  - the walk is deterministic: a second walk over the same bytes delivers the same frames.
#include <clusternet/io/tpacket_block.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

namespace io = clusternet::io;

#define FUZZ_CHECK(cond)                                                                        \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            std::fprintf(stderr, "tpacket_fuzz: invariant failed: %s (line %d)\n", #cond, __LINE__); \
            std::abort();                                                                       \
        }                                                                                       \
    } while (0)

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // The ring's blocks are page aligned: give the walker an aligned copy of exactly `size` bytes
    // (ASan still catches a read one past the end, the vector being exactly that long).
    std::vector<std::byte> block(size);
    if (size != 0) std::memcpy(block.data(), data, size);
    const std::span<std::byte> b(block);

    std::uint32_t calls = 0;
    const std::byte* last_end = b.data();
    std::vector<std::pair<std::size_t, std::size_t>> seen;
    const auto w = io::walk_tpacket_v3_block(b, [&](const io::tpacket_frame& f) {
        ++calls;
        FUZZ_CHECK(f.data.data() >= b.data());
        FUZZ_CHECK(f.data.data() + f.data.size() <= b.data() + b.size());
        FUZZ_CHECK(f.data.data() >= last_end);
        last_end = f.data.data() + f.data.size();
        seen.emplace_back(static_cast<std::size_t>(f.data.data() - b.data()), f.data.size());
        // Touch every byte, as a visitor that copies the frame would.
        unsigned sum = 0;
        for (const std::byte x : f.data) sum += std::to_integer<unsigned>(x);
        (void)sum;
    });
    FUZZ_CHECK(w.frames_delivered == calls);
    FUZZ_CHECK(calls <= w.frames_claimed);
    FUZZ_CHECK(calls <= size / io::tpacket_v3::frame_header_size);
    if (w.ok()) FUZZ_CHECK(calls == w.frames_claimed);
    if (size < io::tpacket_v3::block_desc_size) FUZZ_CHECK(w.error == clusternet::parse_error::truncated);

    std::size_t i = 0;
    const auto again = io::walk_tpacket_v3_block(b, [&](const io::tpacket_frame& f) {
        FUZZ_CHECK(i < seen.size());
        FUZZ_CHECK(seen[i].first == static_cast<std::size_t>(f.data.data() - b.data()));
        FUZZ_CHECK(seen[i].second == f.data.size());
        ++i;
    });
    FUZZ_CHECK(again.frames_delivered == w.frames_delivered && again.error == w.error);
    return 0;
}
