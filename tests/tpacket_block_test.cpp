// Tests of clusternet/io/tpacket_block.hpp: the TPACKET_V3 block walker over blocks written in
// memory (no socket, no root), including every way a descriptor can lie about its offsets.
#include <doctest/doctest.h>

#include "support/tpacket_block_writer.hpp"

#include <clusternet/io/tpacket_block.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <vector>

namespace cn = clusternet;
namespace io = clusternet::io;
namespace v3 = clusternet::io::tpacket_v3;

namespace {

std::vector<std::byte> frame_bytes(std::size_t n, unsigned seed) {
    std::vector<std::byte> f(n);
    for (std::size_t i = 0; i < n; ++i) f[i] = std::byte(static_cast<unsigned char>(seed * 31 + i * 7));
    return f;
}

struct collected {
    std::vector<std::vector<std::byte>> frames;
    std::vector<io::tpacket_frame> meta;
};

io::tpacket_block_walk walk(std::span<std::byte> block, collected& c) {
    return io::walk_tpacket_v3_block(block, [&](const io::tpacket_frame& f) {
        c.frames.emplace_back(f.data.begin(), f.data.end());
        c.meta.push_back(f);
    });
}

bool inside(std::span<const std::byte> outer, std::span<const std::byte> inner) {
    return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

void put32(std::vector<std::byte>& b, std::size_t off, std::uint32_t v) { std::memcpy(b.data() + off, &v, 4); }

/// A block of 4096 bytes with three frames of 60, 1000 and 1514 bytes.
struct three_frames {
    std::vector<std::byte> block = std::vector<std::byte>(4096);
    std::vector<std::vector<std::byte>> sent{frame_bytes(60, 1), frame_bytes(1000, 2), frame_bytes(1514, 3)};
    std::vector<std::size_t> offsets;
    three_frames() {
        cn::test::tpacket_block_writer w(block);
        for (const auto& f : sent) {
            offsets.push_back(w.used());
            REQUIRE(w.add(f));
        }
        w.close(7);
    }
};

}  // namespace

TEST_SUITE("io.tpacket_block") {
    TEST_CASE("a well-formed block delivers every frame, bytes and metadata intact") {
        three_frames b;
        collected c;
        const auto w = walk(b.block, c);
        CHECK(w.ok());
        CHECK(w.frames_claimed == 3);
        CHECK(w.frames_delivered == 3);
        CHECK(w.seq_num == 7);
        CHECK((w.block_status & TP_STATUS_USER) != 0);
        REQUIRE(c.frames.size() == 3);
        for (std::size_t i = 0; i < 3; ++i) {
            CHECK(c.frames[i] == b.sent[i]);
            CHECK(c.meta[i].wire_length == b.sent[i].size());
            CHECK_FALSE(c.meta[i].truncated());
            CHECK(c.meta[i].sec == 1700000000u + i);
            CHECK(inside(b.block, c.meta[i].data));
            // Zero copy: the span points into the block itself.
            CHECK(c.meta[i].data.data() == b.block.data() + b.offsets[i] + cn::test::tpacket_block_writer::mac_offset);
        }
    }

    TEST_CASE("an empty block (closed by the timeout) is fine and delivers nothing") {
        std::vector<std::byte> block(4096);
        cn::test::tpacket_block_writer w(block);
        w.close();
        collected c;
        const auto r = walk(block, c);
        CHECK(r.ok());
        CHECK(r.frames_delivered == 0);
    }

    TEST_CASE("a snapped frame reports its wire length") {
        std::vector<std::byte> block(4096);
        cn::test::tpacket_block_writer w(block);
        REQUIRE(w.add(frame_bytes(100, 9), 9000));
        w.close();
        collected c;
        const auto r = walk(block, c);
        CHECK(r.ok());
        REQUIRE(c.meta.size() == 1);
        CHECK(c.meta[0].truncated());
        CHECK(c.meta[0].wire_length == 9000);
    }

    TEST_CASE("a block smaller than its descriptor is truncated") {
        std::vector<std::byte> block(v3::block_desc_size - 1);
        collected c;
        CHECK(walk(block, c).error == cn::parse_error::truncated);
        CHECK(c.frames.empty());
    }

    TEST_CASE("descriptor offsets that lie are refused before any frame") {
        three_frames b;
        SUBCASE("blk_len beyond the block") { put32(b.block, v3::off_blk_len, 4097); }
        SUBCASE("first packet inside the descriptor") { put32(b.block, v3::off_first_pkt, 8); }
        SUBCASE("first packet beyond blk_len") { put32(b.block, v3::off_first_pkt, 4000); }
        SUBCASE("first packet leaves no room for a header") {
            put32(b.block, v3::off_first_pkt, 48);
            put32(b.block, v3::off_blk_len, 60);
        }
        collected c;
        const auto r = walk(b.block, c);
        CHECK(r.error == cn::parse_error::bad_field);
        CHECK(r.frames_delivered == 0);
    }

    TEST_CASE("a frame that lies stops the walk there; the frames before it were delivered") {
        three_frames b;
        const std::size_t second = b.offsets[1];
        std::uint32_t expect_delivered = 1;
        SUBCASE("snaplen past the block") { put32(b.block, second + v3::off_snaplen, 0xFFFFFFF0u); }
        SUBCASE("snaplen past blk_len") { put32(b.block, second + v3::off_snaplen, 3000); }
        SUBCASE("tp_mac inside the frame header") {
            const std::uint16_t mac = 10;
            std::memcpy(b.block.data() + second + v3::off_mac, &mac, 2);
        }
        SUBCASE("tp_mac past the block") {
            const std::uint16_t mac = 0xFFFF;
            std::memcpy(b.block.data() + second + v3::off_mac, &mac, 2);
        }
        SUBCASE("next offset of zero in the middle") {
            put32(b.block, b.offsets[0] + v3::off_next_offset, 0);
            expect_delivered = 1;  // the first frame is delivered, then its next offset is refused
        }
        SUBCASE("next offset into the frame's own data") {
            put32(b.block, b.offsets[0] + v3::off_next_offset, 100);
        }
        SUBCASE("next offset past the block") {
            put32(b.block, b.offsets[0] + v3::off_next_offset, 0x7FFFFFFFu);
        }
        SUBCASE("more frames claimed than there are") {
            put32(b.block, v3::off_num_pkts, 1000);
            expect_delivered = 3;  // the last real frame's next offset is 0
        }
        collected c;
        const auto r = walk(b.block, c);
        CHECK(r.error == cn::parse_error::bad_field);
        CHECK(r.frames_delivered == expect_delivered);
        CHECK(c.frames.size() == expect_delivered);
        for (std::size_t i = 0; i < c.frames.size(); ++i) CHECK(c.frames[i] == b.sent[i]);
    }

    TEST_CASE("fewer frames claimed than written delivers only those") {
        three_frames b;
        put32(b.block, v3::off_num_pkts, 2);
        collected c;
        const auto r = walk(b.block, c);
        CHECK(r.ok());
        CHECK(r.frames_delivered == 2);
    }

    TEST_CASE("a full block of minimum-size frames, and a walk bounded by the block size") {
        std::vector<std::byte> block(65536);
        cn::test::tpacket_block_writer w(block);
        const auto f = frame_bytes(14, 5);
        while (w.add(f)) {}
        w.close();
        collected c;
        const auto r = walk(block, c);
        CHECK(r.ok());
        CHECK(r.frames_delivered == w.frames());
        CHECK(w.frames() > 500);
        CHECK(r.frames_delivered <= block.size() / v3::frame_header_size);
    }

    TEST_CASE("random corruption of a valid block never yields a span outside the block") {
        std::mt19937_64 rng(20261201);
        three_frames clean;
        for (int round = 0; round < 20000; ++round) {
            std::vector<std::byte> block = clean.block;
            const int flips = 1 + static_cast<int>(rng() % 4);
            for (int k = 0; k < flips; ++k) {
                // Aim most flips at the descriptors, where the lies matter.
                std::size_t pos;
                switch (rng() % 3) {
                    case 0: pos = rng() % v3::block_desc_size; break;
                    case 1: pos = clean.offsets[rng() % 3] + rng() % v3::frame_header_size; break;
                    default: pos = rng() % block.size(); break;
                }
                block[pos] = std::byte(static_cast<unsigned char>(rng()));
            }
            std::uint32_t delivered = 0;
            const auto r = io::walk_tpacket_v3_block(block, [&](const io::tpacket_frame& f) {
                ++delivered;
                REQUIRE(inside(block, f.data));
            });
            CHECK(r.frames_delivered == delivered);
            CHECK(delivered <= block.size() / v3::frame_header_size);
        }
    }
}
