// clusternet/io/tpacket_block.hpp -- walking one TPACKET_V3 receive block, validated.
//
// A TPACKET_V3 ring (packet(7), Documentation/networking/packet_mmap.rst) is a run of equal
// blocks. The kernel fills a block with frames of variable length, then hands the whole block
// to user space by setting TP_STATUS_USER in its descriptor; user space walks the frames and
// gives the block back (TP_STATUS_KERNEL). Layout, all fields in host byte order:
//
//   block (tp_block_size bytes)
//   +--------------------------------------------------------------+ 0
//   | struct tpacket_block_desc: version, offset_to_priv,          |
//   |   bh1 { block_status, num_pkts, offset_to_first_pkt,         |
//   |         blk_len, seq_num, ts_first_pkt, ts_last_pkt }        |
//   +--------------------------------------------------------------+ offset_to_first_pkt
//   | struct tpacket3_hdr: tp_next_offset, tp_sec, tp_nsec,        |
//   |   tp_snaplen, tp_len, tp_status, tp_mac, tp_net, hv1 {...}   |
//   |   ... padding to tp_mac ...                                  |
//   |   tp_snaplen bytes of frame (from tp_mac)                    |
//   +--------------------------------------------------------------+ + tp_next_offset
//   | next frame ... (num_pkts frames; the last has next_offset 0) |
//   +--------------------------------------------------------------+ blk_len (end of data)
//
// The walker trusts nothing in the block: the memory is shared with the kernel (and a fuzzer
// feeds it anything). It checks that the first offset, every frame header, every frame's data
// and every next offset lie inside both the block and blk_len, and that each next offset moves
// forward past the frame's data (so frames never overlap and a next offset moves by at least a
// frame header), so the walk ends after at most block_size / 48 frames and
// never reads outside the block. It stops at the first inconsistency and says why; the frames
// before it were delivered. Fields are read with memcpy (never by casting block memory to the
// kernel's structs); the offsets come from <linux/if_packet.h> by offsetof.
//
// Cost: per frame, six 32-bit loads, the bounds checks and the visitor call; no allocation.
#pragma once

#include <clusternet/config.hpp>
#include <clusternet/error.hpp>
#include <clusternet/io/detail/posix.hpp>

#include <linux/if_packet.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

namespace clusternet::io {

/// One received frame, as the kernel described it. `data` points into the ring block (zero
/// copy): valid only until the block is returned, i.e. until the visitor returns.
struct tpacket_frame {
    std::span<std::byte> data;      ///< tp_snaplen bytes from the link-layer header on
    std::uint32_t wire_length = 0;  ///< tp_len: the frame's length on the wire (>= data.size())
    std::uint32_t sec = 0;          ///< receive timestamp, seconds
    std::uint32_t nsec = 0;         ///< receive timestamp, nanoseconds
    std::uint32_t status = 0;       ///< tp_status: TP_STATUS_VLAN_VALID, _CSUMNOTREADY, _CSUM_VALID ...
    std::uint32_t rxhash = 0;       ///< the kernel's flow hash (needs PACKET_FANOUT_FLAG or fanout hash)
    std::uint16_t vlan_tci = 0;     ///< valid when status has TP_STATUS_VLAN_VALID
    std::uint16_t vlan_tpid = 0;    ///< valid when status has TP_STATUS_VLAN_TPID_VALID

    [[nodiscard]] bool truncated() const noexcept { return wire_length > data.size(); }
};

/// What a block walk found.
struct tpacket_block_walk {
    std::uint32_t frames_claimed = 0;    ///< num_pkts, as the descriptor says
    std::uint32_t frames_delivered = 0;  ///< frames that passed the checks and reached the visitor
    std::uint64_t seq_num = 0;           ///< the block's sequence number (increases by one a block)
    std::uint32_t block_status = 0;      ///< block_status as read (TP_STATUS_USER, _BLK_TMO, _LOSING)
    parse_error error = parse_error::none;  ///< truncated (block smaller than its descriptor) or bad_field

    [[nodiscard]] bool ok() const noexcept { return error == parse_error::none; }
};

namespace tpacket_v3 {

// Offsets of the fields the walker reads, from the kernel's own structs.
inline constexpr std::size_t block_desc_size = sizeof(tpacket_block_desc);
inline constexpr std::size_t off_block_status = offsetof(tpacket_block_desc, hdr.bh1.block_status);
inline constexpr std::size_t off_num_pkts = offsetof(tpacket_block_desc, hdr.bh1.num_pkts);
inline constexpr std::size_t off_first_pkt = offsetof(tpacket_block_desc, hdr.bh1.offset_to_first_pkt);
inline constexpr std::size_t off_blk_len = offsetof(tpacket_block_desc, hdr.bh1.blk_len);
inline constexpr std::size_t off_seq_num = offsetof(tpacket_block_desc, hdr.bh1.seq_num);

inline constexpr std::size_t frame_header_size = sizeof(tpacket3_hdr);
inline constexpr std::size_t off_next_offset = offsetof(tpacket3_hdr, tp_next_offset);
inline constexpr std::size_t off_sec = offsetof(tpacket3_hdr, tp_sec);
inline constexpr std::size_t off_nsec = offsetof(tpacket3_hdr, tp_nsec);
inline constexpr std::size_t off_snaplen = offsetof(tpacket3_hdr, tp_snaplen);
inline constexpr std::size_t off_len = offsetof(tpacket3_hdr, tp_len);
inline constexpr std::size_t off_status = offsetof(tpacket3_hdr, tp_status);
inline constexpr std::size_t off_mac = offsetof(tpacket3_hdr, tp_mac);
inline constexpr std::size_t off_rxhash = offsetof(tpacket3_hdr, hv1.tp_rxhash);
inline constexpr std::size_t off_vlan_tci = offsetof(tpacket3_hdr, hv1.tp_vlan_tci);
inline constexpr std::size_t off_vlan_tpid = offsetof(tpacket3_hdr, hv1.tp_vlan_tpid);

static_assert(off_block_status % 4 == 0, "block_status is read atomically");

}  // namespace tpacket_v3

/// Walks the frames of one TPACKET_V3 block (whose status the caller has seen as
/// TP_STATUS_USER), calling `visit(const tpacket_frame&)` for each valid frame, in order.
/// Reads only inside `block`; stops at the first frame or offset that does not fit.
/// Complexity: O(frames). noexcept: the visitor must not throw.
template <class Visitor>
    requires std::is_invocable_v<Visitor&, const tpacket_frame&>
[[nodiscard]] tpacket_block_walk walk_tpacket_v3_block(std::span<std::byte> block, Visitor&& visit) noexcept {
    namespace v3 = tpacket_v3;
    using detail::load_host16;
    using detail::load_host32;

    tpacket_block_walk w;
    if (block.size() < v3::block_desc_size) {
        w.error = parse_error::truncated;
        return w;
    }
    std::byte* const base = block.data();
    w.block_status = load_host32(base + v3::off_block_status);
    w.frames_claimed = load_host32(base + v3::off_num_pkts);
    w.seq_num = detail::load_host64(base + v3::off_seq_num);
    const std::uint64_t first = load_host32(base + v3::off_first_pkt);
    const std::uint64_t blk_len = load_host32(base + v3::off_blk_len);

    if (w.frames_claimed == 0) return w;  // a block closed by the timeout with nothing in it
    // The data end: blk_len counts from the block start, descriptor included.
    if (blk_len > block.size() || first < v3::block_desc_size || first > blk_len) {
        w.error = parse_error::bad_field;
        return w;
    }
    const std::uint64_t end = blk_len;
    std::uint64_t off = first;
    for (std::uint32_t i = 0; i < w.frames_claimed; ++i) {
        if (end - off < v3::frame_header_size) {  // off <= end holds here
            w.error = parse_error::bad_field;
            return w;
        }
        std::byte* const h = base + off;
        const std::uint64_t mac = load_host16(h + v3::off_mac);
        const std::uint64_t snaplen = load_host32(h + v3::off_snaplen);
        if (mac < v3::frame_header_size || mac > end - off || snaplen > end - off - mac) {
            w.error = parse_error::bad_field;
            return w;
        }
        tpacket_frame f;
        f.data = std::span<std::byte>(h + mac, static_cast<std::size_t>(snaplen));
        f.wire_length = load_host32(h + v3::off_len);
        f.sec = load_host32(h + v3::off_sec);
        f.nsec = load_host32(h + v3::off_nsec);
        f.status = load_host32(h + v3::off_status);
        f.rxhash = load_host32(h + v3::off_rxhash);
        f.vlan_tci = static_cast<std::uint16_t>(load_host32(h + v3::off_vlan_tci));
        f.vlan_tpid = load_host16(h + v3::off_vlan_tpid);
        // Read the next offset before the visitor runs: the visitor may write into its frame.
        const std::uint64_t next = load_host32(h + v3::off_next_offset);
        visit(static_cast<const tpacket_frame&>(f));
        ++w.frames_delivered;
        if (i + 1 == w.frames_claimed) break;
        // Frames never overlap: the next header starts after this frame's data.
        if (next < mac + snaplen || next > end - off) {
            w.error = parse_error::bad_field;
            return w;
        }
        off += next;
    }
    return w;
}

}  // namespace clusternet::io
