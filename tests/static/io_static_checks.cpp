// Compile-time checks of clusternet/io/: the ring layout the walker and the TX ring rely on,
// and what the bindings promise about moves. Compiling this file is the test.
#include <clusternet/io/af_packet.hpp>
#include <clusternet/io/raw_socket.hpp>
#include <clusternet/io/tun.hpp>

#include <type_traits>

namespace io = clusternet::io;
namespace v3 = clusternet::io::tpacket_v3;

// The TPACKET_V3 layout as packet_mmap.rst documents it (the walker reads these offsets).
static_assert(v3::block_desc_size == 48 && v3::off_block_status == 8 && v3::off_num_pkts == 12);
static_assert(v3::off_first_pkt == 16 && v3::off_blk_len == 20 && v3::off_seq_num == 24);
static_assert(v3::frame_header_size == 48 && v3::off_next_offset == 0 && v3::off_snaplen == 12);
static_assert(v3::off_len == 16 && v3::off_status == 20 && v3::off_mac == 24);
// TPACKET_V2 TX frames: status first, data after the aligned header.
static_assert(offsetof(tpacket2_hdr, tp_status) == 0 && offsetof(tpacket2_hdr, tp_len) == 4);
static_assert(io::packet_tx_ring::data_offset == 32);

// Bindings move (into containers, out of factories) without throwing, and never copy.
template <class T>
constexpr bool move_only = std::is_nothrow_move_constructible_v<T> && !std::is_copy_constructible_v<T>;
static_assert(move_only<io::packet_rx_ring> && move_only<io::packet_tx_ring> && move_only<io::packet_socket>);
static_assert(move_only<io::raw_ip_socket> && move_only<io::tun_queue>);
static_assert(move_only<io::detail::unique_fd> && move_only<io::detail::mapped_memory>);

// Frames are handed out by value, cheaply.
static_assert(std::is_trivially_copyable_v<io::tpacket_frame>);
