// tests/support/tpacket_block_writer.hpp -- writes a TPACKET_V3 block in memory the way the
// kernel's af_packet.c lays one out (descriptor, then frames at 16-byte aligned offsets, the link
// header at tp_mac = 82 as for a SOCK_RAW socket on Ethernet), for the walker's unit tests, its
// fuzz seeds and its benchmark. Not used by the library.
#pragma once

#include <clusternet/io/tpacket_block.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace clusternet::test {

class tpacket_block_writer {
public:
    /// The link header offset the kernel uses for SOCK_RAW on Ethernet (TPACKET_ALIGN(68 + 16) - 14).
    static constexpr std::uint16_t mac_offset = 82;
    static constexpr std::size_t first_offset = 48;  // BLK_PLUS_PRIV(0)

    explicit tpacket_block_writer(std::span<std::byte> block) noexcept : block_(block) {
        std::memset(block_.data(), 0, block_.size());
    }

    /// Appends a frame; false (block unchanged) if it does not fit.
    bool add(std::span<const std::byte> frame, std::uint32_t wire_length = 0, std::uint32_t status = 0) noexcept {
        namespace v3 = io::tpacket_v3;
        const std::size_t need = mac_offset + frame.size();
        if (end_ + need > block_.size()) return false;
        std::byte* h = block_.data() + end_;
        put32(h + v3::off_snaplen, static_cast<std::uint32_t>(frame.size()));
        put32(h + v3::off_len, wire_length != 0 ? wire_length : static_cast<std::uint32_t>(frame.size()));
        put32(h + v3::off_status, status);
        put32(h + v3::off_sec, 1700000000u + count_);
        put32(h + v3::off_nsec, count_ * 1000u);
        put32(h + v3::off_rxhash, 0x9E3779B9u * (count_ + 1));
        const std::uint16_t mac = mac_offset;
        std::memcpy(h + v3::off_mac, &mac, 2);
        std::memcpy(h + mac_offset, frame.data(), frame.size());
        if (last_ != 0) put32(block_.data() + last_ + v3::off_next_offset, static_cast<std::uint32_t>(end_ - last_));
        last_ = end_;
        end_ += (need + 15) & ~std::size_t{15};
        if (end_ > block_.size()) end_ = block_.size();
        ++count_;
        return true;
    }

    /// Writes the descriptor: num_pkts, offsets, blk_len, seq_num, status TP_STATUS_USER.
    void close(std::uint64_t seq = 1) noexcept {
        namespace v3 = io::tpacket_v3;
        put32(block_.data() + v3::off_block_status, TP_STATUS_USER);
        put32(block_.data() + v3::off_num_pkts, count_);
        put32(block_.data() + v3::off_first_pkt, first_offset);
        put32(block_.data() + v3::off_blk_len, static_cast<std::uint32_t>(end_));
        std::memcpy(block_.data() + v3::off_seq_num, &seq, 8);
    }

    [[nodiscard]] std::uint32_t frames() const noexcept { return count_; }
    [[nodiscard]] std::size_t used() const noexcept { return end_; }

    static void put32(std::byte* p, std::uint32_t v) noexcept { std::memcpy(p, &v, 4); }

private:
    std::span<std::byte> block_;
    std::size_t end_ = first_offset;
    std::size_t last_ = 0;
    std::uint32_t count_ = 0;
};

}  // namespace clusternet::test
