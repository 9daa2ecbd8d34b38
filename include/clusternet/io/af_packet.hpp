// clusternet/io/af_packet.hpp -- AF_PACKET bindings as Boost.Asio objects: a TPACKET_V3
// memory-mapped receive ring, a TPACKET_V2 memory-mapped transmit ring, and a plain packet
// socket that moves batches with recvmmsg / sendmmsg.
//
//   packet_rx_ring   receive, zero copy: the kernel writes frames into blocks of a ring shared
//                    with us; poll(visitor) hands the visitor std::span views of the frames of
//                    every full block and gives the blocks back. One wake-up per block, not per
//                    frame; a block also closes after block_timeout_ms so a trickle is not held.
//   packet_tx_ring   transmit: send() copies a frame into the next ring slot (or acquire() /
//                    commit() let the caller build it in place), flush() is one send() call
//                    that makes the kernel transmit every queued slot.
//   packet_socket    the same socket without rings, batches through recvmmsg / sendmmsg; the
//                    peer the rings are measured against (docs/io.md), and the simple choice
//                    for low rates.
//
// TX ring or sendmmsg for the batched transmit path: both cost one system call a batch.
// sendmmsg copies every frame from user memory into a fresh skb; the TX ring's skbs point at
// the ring pages (our copy into the slot is the only one, none when the frame is built in place
// with acquire()), but the kernel sets and reads a status word per frame and frees through a
// destructor. Measured on veth (tests/e2e/io_bindings.sh, docs/io.md), sendmmsg is faster: the
// TX ring moves 0.91 of its frames per second at 128 and 1500 bytes. So packet_socket is the
// transmit path to use on these machines; packet_tx_ring has the same send()/flush() interface
// and is there for building frames in place and for NIC drivers.
// TPACKET_V2 rather than V3 for TX: V3's TX ring (Linux 4.11+) is V2's with fixed-size frames
// and no gain; V2 works on every kernel with TX rings (KERNEL-NOTES).
//
// Options: bind to an interface by name (in the caller's current network namespace), the
// EtherType to receive (ETH_P_ALL by default), promiscuous mode (PACKET_MR_PROMISC membership,
// dropped by the kernel when the socket closes), PACKET_IGNORE_OUTGOING (receive sockets do not
// see frames this host sends), PACKET_QDISC_BYPASS (transmit straight to the driver queue), and
// PACKET_FANOUT (several sockets in one group share an interface's frames: by flow hash, CPU,
// round robin, ...; each socket is served by its own thread and io_context).
//
// Errors: every open() comes in two forms, as in Boost.Asio: one throws std::system_error whose
// what() names the interface, the call that failed and a hint ("needs CAP_NET_RAW: run as
// root"); one fills a std::error_code (system category, or clusternet::errc::invalid_argument
// for options the kernel would refuse, checked before any call). The per-packet calls are
// noexcept and count instead of failing.
#pragma once

#include <clusternet/byteorder.hpp>
#include <clusternet/config.hpp>
#include <clusternet/error.hpp>
#include <clusternet/io/detail/descriptor.hpp>
#include <clusternet/io/detail/mmsg_batch.hpp>
#include <clusternet/io/detail/posix.hpp>
#include <clusternet/io/tpacket_block.hpp>

#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

namespace clusternet::io {

/// How a PACKET_FANOUT group spreads frames over its sockets (packet(7)).
enum class fanout_mode : std::uint16_t {
    hash = PACKET_FANOUT_HASH,         ///< by the kernel's flow hash: a flow stays on one socket
    lb = PACKET_FANOUT_LB,             ///< round robin, frame by frame
    cpu = PACKET_FANOUT_CPU,           ///< by the CPU the frame arrived on
    rollover = PACKET_FANOUT_ROLLOVER,  ///< fill one socket, then the next
    random = PACKET_FANOUT_RND,        ///< at random
    queue_mapping = PACKET_FANOUT_QM,  ///< by the device's receive queue
};

struct fanout_options {
    std::uint16_t group_id = 0;        ///< sockets with the same id on the same interface share frames
    fanout_mode mode = fanout_mode::hash;
    bool defrag = false;               ///< PACKET_FANOUT_FLAG_DEFRAG: reassemble IP fragments before hashing
    bool rollover = false;             ///< PACKET_FANOUT_FLAG_ROLLOVER: spill to another socket when one is full
};

/// Options every AF_PACKET binding shares. Only `interface` is required.
struct packet_socket_options {
    std::string interface;                    ///< name in the current network namespace, e.g. "eth0"
    std::uint16_t protocol = ETH_P_ALL;       ///< EtherType to receive (host order); receive sockets only
    bool promiscuous = false;                 ///< PACKET_MR_PROMISC while the socket is open
    bool ignore_outgoing = false;             ///< PACKET_IGNORE_OUTGOING (Linux 4.20+)
    bool qdisc_bypass = false;                ///< PACKET_QDISC_BYPASS: skip the qdisc on transmit
    std::optional<fanout_options> fanout{};   ///< join a PACKET_FANOUT group (receive sockets)
};

struct rx_ring_options {
    std::uint32_t block_size = 1u << 18;   ///< bytes a block; a multiple of the page size
    std::uint32_t block_count = 16;        ///< blocks in the ring (memory = block_size * block_count)
    std::uint32_t frame_size = 2048;       ///< nominal frame size (a multiple of 16); V3 packs frames tighter
    std::uint32_t block_timeout_ms = 8;    ///< a partly filled block is handed over after this long
};

struct tx_ring_options {
    std::uint32_t frame_size = 2048;       ///< slot size, header included (a multiple of 16)
    std::uint32_t frame_count = 1024;      ///< slots in the ring
};

/// Counters of a receive ring. Reading the kernel's counters (PACKET_STATISTICS) resets them in
/// the kernel, so refresh_kernel_stats() adds them here.
struct rx_ring_counters {
    std::uint64_t frames = 0;         ///< frames handed to the visitor
    std::uint64_t bytes = 0;          ///< bytes of those frames (snapped length)
    std::uint64_t blocks = 0;         ///< blocks walked and returned
    std::uint64_t truncated = 0;      ///< frames longer on the wire than in the ring
    std::uint64_t ring_errors = 0;    ///< blocks whose descriptors did not validate (walk stopped)
    std::uint64_t kernel_packets = 0; ///< PACKET_STATISTICS tp_packets (includes the drops)
    std::uint64_t kernel_drops = 0;   ///< PACKET_STATISTICS tp_drops: frames lost, the ring was full
    std::uint64_t freeze_count = 0;   ///< PACKET_STATISTICS tp_freeze_q_cnt: times the ring was full
};

namespace detail {

[[nodiscard]] inline std::uint16_t htons16(std::uint16_t v) noexcept { return host_to_net(v); }

/// The steps every packet socket takes, in the order the kernel needs: socket (protocol 0, so
/// nothing arrives before the ring exists), interface index, version and ring (`ring_setup`),
/// options, bind, promiscuous membership, fanout (which needs a bound socket).
template <class RingSetup>
unique_fd open_packet_fd(const packet_socket_options& o, std::uint16_t bind_protocol, RingSetup&& ring_setup,
                         unsigned& ifindex, setup_status& st) noexcept {
    unique_fd fd(::socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
        st.fail_errno("socket(AF_PACKET, SOCK_RAW)");
        return {};
    }
    std::error_code ec;
    ifindex = interface_index(o.interface, ec);
    if (ifindex == 0) {
        st.fail("if_nametoindex", ec);
        return {};
    }
    if (!ring_setup(fd.get(), st)) return {};
    if (o.ignore_outgoing && !set_option(fd.get(), SOL_PACKET, PACKET_IGNORE_OUTGOING, 1, ec)) {
        st.fail("setsockopt(PACKET_IGNORE_OUTGOING)", ec);
        return {};
    }
    if (o.qdisc_bypass && !set_option(fd.get(), SOL_PACKET, PACKET_QDISC_BYPASS, 1, ec)) {
        st.fail("setsockopt(PACKET_QDISC_BYPASS)", ec);
        return {};
    }
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons16(bind_protocol);
    sll.sll_ifindex = static_cast<int>(ifindex);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sll), sizeof sll) != 0) {
        st.fail_errno("bind(AF_PACKET)");
        return {};
    }
    if (o.promiscuous) {
        packet_mreq mr{};
        mr.mr_ifindex = static_cast<int>(ifindex);
        mr.mr_type = PACKET_MR_PROMISC;
        if (!set_option(fd.get(), SOL_PACKET, PACKET_ADD_MEMBERSHIP, mr, ec)) {
            st.fail("setsockopt(PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC)", ec);
            return {};
        }
    }
    if (o.fanout) {
        if (bind_protocol == 0) {
            st.fail("PACKET_FANOUT", make_error_code(errc::invalid_argument));
            return {};
        }
        std::uint32_t flags = static_cast<std::uint32_t>(o.fanout->mode);
        if (o.fanout->defrag) flags |= PACKET_FANOUT_FLAG_DEFRAG;
        if (o.fanout->rollover) flags |= PACKET_FANOUT_FLAG_ROLLOVER;
        const int arg = static_cast<int>(o.fanout->group_id | (flags << 16));
        if (!set_option(fd.get(), SOL_PACKET, PACKET_FANOUT, arg, ec)) {
            st.fail("setsockopt(PACKET_FANOUT)", ec);
            return {};
        }
    }
    return fd;
}

[[nodiscard]] inline bool is_transient_send_error(int e) noexcept {
    return e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS || e == EINTR;
}

}  // namespace detail

// =============================================================================================
/// A TPACKET_V3 receive ring on one interface.
class packet_rx_ring : public detail::asio_descriptor {
public:
    using detail::asio_descriptor::asio_descriptor;

    /// Opens and binds; throws std::system_error (see the header comment).
    packet_rx_ring(boost::asio::io_context& ctx, const packet_socket_options& o, const rx_ring_options& r = {})
        : asio_descriptor(ctx) {
        open(o, r);
    }

    // Moves and the destructor are member-wise: the mapping unmaps itself and the Asio
    // descriptor closes the socket.

    /// Checks the options, opens the socket, maps the ring, binds, joins fanout. Throws.
    void open(const packet_socket_options& o, const rx_ring_options& r = {}) {
        detail::setup_status st;
        if (!open_impl(o, r, st)) detail::throw_setup_error("packet_rx_ring", o.interface, st, detail::setup_hint(st.ec));
    }
    /// The same; on failure ec is set and the object stays closed.
    void open(const packet_socket_options& o, const rx_ring_options& r, std::error_code& ec) noexcept {
        detail::setup_status st;
        open_impl(o, r, st);
        ec = st.ec;
    }

    /// Unmaps the ring and closes the socket; pending waits complete with operation_aborted.
    void close() noexcept {
        close_descriptor();
        ring_.reset();
    }

    /// Walks every block the kernel has handed over (at most max_blocks), calling
    /// visit(const tpacket_frame&) for each frame, then gives each block back. Never blocks.
    /// Returns the number of frames delivered. The spans are valid only during the call.
    /// With a max_blocks limit, blocks may be left ready: call again before re-arming an
    /// edge-triggered wait (detail/descriptor.hpp).
    /// Cost: per frame, the walk (a few loads, bounds checks) and the visitor; per block, one
    /// acquire load and one release store. No allocation, no system call.
    template <class Visitor>
        requires std::is_invocable_v<Visitor&, const tpacket_frame&>
    std::size_t poll(Visitor&& visit, std::size_t max_blocks = std::numeric_limits<std::size_t>::max()) noexcept {
        return poll(visit, [] {}, max_blocks);
    }

    /// poll() that also calls block_end() after the last frame of each block and before the
    /// block goes back to the kernel: the frames of the block are all still valid then (a
    /// caller that batches frames processes its batch there).
    template <class Visitor, class BlockEnd>
        requires std::is_invocable_v<Visitor&, const tpacket_frame&> && std::is_invocable_v<BlockEnd&>
    std::size_t poll(Visitor&& visit, BlockEnd&& block_end, std::size_t max_blocks = std::numeric_limits<std::size_t>::max()) noexcept {
        std::size_t frames = 0;
        for (std::size_t n = 0; n < max_blocks && ring_.data() != nullptr; ++n) {
            std::byte* const block = ring_.data() + std::size_t{current_} * block_size_;
            if ((detail::load_acquire_u32(block + tpacket_v3::off_block_status) & TP_STATUS_USER) == 0) break;
            const tpacket_block_walk w = walk_tpacket_v3_block(
                std::span<std::byte>(block, block_size_), [&](const tpacket_frame& f) {
                    counters_.bytes += f.data.size();
                    counters_.truncated += f.truncated();
                    visit(f);
                });
            block_end();
            frames += w.frames_delivered;
            counters_.frames += w.frames_delivered;
            counters_.ring_errors += !w.ok();
            ++counters_.blocks;
            detail::store_release_u32(block + tpacket_v3::off_block_status, TP_STATUS_KERNEL);
            current_ = current_ + 1 == block_count_ ? 0 : current_ + 1;
        }
        return frames;
    }

    /// True if the next block is ready (poll() would deliver something). One load.
    [[nodiscard]] bool ready() const noexcept {
        if (ring_.data() == nullptr) return false;
        const std::byte* block = ring_.data() + std::size_t{current_} * block_size_;
        return (detail::load_acquire_u32(block + tpacket_v3::off_block_status) & TP_STATUS_USER) != 0;
    }

    /// Adds the kernel's PACKET_STATISTICS (which the read resets) to counters(). A system call.
    void refresh_kernel_stats(std::error_code& ec) noexcept {
        tpacket_stats_v3 s{};
        ec.clear();
        if (!detail::get_option(native_handle(), SOL_PACKET, PACKET_STATISTICS, s, ec)) return;
        counters_.kernel_packets += s.tp_packets;
        counters_.kernel_drops += s.tp_drops;
        counters_.freeze_count += s.tp_freeze_q_cnt;
    }

    [[nodiscard]] const rx_ring_counters& counters() const noexcept { return counters_; }
    [[nodiscard]] unsigned interface_index() const noexcept { return ifindex_; }
    [[nodiscard]] std::size_t ring_bytes() const noexcept { return ring_.size(); }

private:
    bool open_impl(const packet_socket_options& o, const rx_ring_options& r, detail::setup_status& st) noexcept {
        close();
        counters_ = {};
        const std::size_t page = detail::page_size();
        if (r.block_size == 0 || r.block_size % page != 0)
            return st.fail("rx_ring_options: block_size must be a non-zero multiple of the page size",
                           make_error_code(errc::invalid_argument));
        if (r.frame_size < TPACKET3_HDRLEN || r.frame_size % TPACKET_ALIGNMENT != 0 || r.frame_size > r.block_size)
            return st.fail("rx_ring_options: frame_size must be a multiple of 16, at least 68 and at most block_size",
                           make_error_code(errc::invalid_argument));
        if (r.block_count == 0 || r.block_count > std::numeric_limits<std::uint32_t>::max() / (r.block_size / r.frame_size))
            return st.fail("rx_ring_options: block_count must be non-zero", make_error_code(errc::invalid_argument));
        if (o.protocol == 0)
            return st.fail("packet_socket_options: protocol 0 receives nothing", make_error_code(errc::invalid_argument));

        detail::mapped_memory ring;
        auto setup = [&](int fd, detail::setup_status& s) noexcept {
            std::error_code ec;
            if (!detail::set_option(fd, SOL_PACKET, PACKET_VERSION, int{TPACKET_V3}, ec))
                return s.fail("setsockopt(PACKET_VERSION, TPACKET_V3)", ec);
            tpacket_req3 req{};
            req.tp_block_size = r.block_size;
            req.tp_block_nr = r.block_count;
            req.tp_frame_size = r.frame_size;
            req.tp_frame_nr = (r.block_size / r.frame_size) * r.block_count;
            req.tp_retire_blk_tov = r.block_timeout_ms;
            req.tp_feature_req_word = TP_FT_REQ_FILL_RXHASH;
            if (!detail::set_option(fd, SOL_PACKET, PACKET_RX_RING, req, ec))
                return s.fail("setsockopt(PACKET_RX_RING)", ec);
            ring = detail::mapped_memory::map_shared(fd, std::size_t{r.block_size} * r.block_count, ec);
            if (ec) return s.fail("mmap of the receive ring", ec);
            return true;
        };
        detail::unique_fd fd = detail::open_packet_fd(o, o.protocol, setup, ifindex_, st);
        if (!fd.valid()) return false;
        if (!adopt(fd, st)) return false;
        ring_ = std::move(ring);
        block_size_ = r.block_size;
        block_count_ = r.block_count;
        current_ = 0;
        return true;
    }

    detail::mapped_memory ring_;
    std::uint32_t block_size_ = 0;
    std::uint32_t block_count_ = 0;
    std::uint32_t current_ = 0;
    unsigned ifindex_ = 0;
    rx_ring_counters counters_{};
};

// =============================================================================================
/// A TPACKET_V2 transmit ring on one interface. Its socket binds with protocol 0: it receives
/// nothing.
class packet_tx_ring : public detail::asio_descriptor {
public:
    using detail::asio_descriptor::asio_descriptor;

    /// The offset of a frame's data in its slot (TPACKET2_HDRLEN - sizeof(sockaddr_ll)).
    static constexpr std::size_t data_offset = TPACKET2_HDRLEN - sizeof(sockaddr_ll);

    packet_tx_ring(boost::asio::io_context& ctx, const packet_socket_options& o, const tx_ring_options& t = {})
        : asio_descriptor(ctx) {
        open(o, t);
    }
    // Moves and the destructor are member-wise: the mapping unmaps itself and the Asio
    // descriptor closes the socket.

    /// Opens the socket, maps the ring, binds. Throws std::system_error.
    void open(const packet_socket_options& o, const tx_ring_options& t = {}) {
        detail::setup_status st;
        if (!open_impl(o, t, st)) detail::throw_setup_error("packet_tx_ring", o.interface, st, detail::setup_hint(st.ec));
    }
    void open(const packet_socket_options& o, const tx_ring_options& t, std::error_code& ec) noexcept {
        detail::setup_status st;
        open_impl(o, t, st);
        ec = st.ec;
    }
    void close() noexcept {
        close_descriptor();
        ring_.reset();
    }

    /// The largest frame a slot holds.
    [[nodiscard]] std::size_t max_frame_size() const noexcept {
        return frame_size_ > data_offset ? frame_size_ - data_offset : 0;
    }

    /// The data area of the next free slot, to build a frame in place (then commit()), or an
    /// empty span when every slot is still with the kernel (counted as ring_full). Cheap: a
    /// reclaim pass only when the ring looks full.
    [[nodiscard]] std::span<std::byte> acquire() noexcept {
        if (ring_.data() == nullptr) return {};
        if (in_flight_ == frame_count_) reclaim();
        if (in_flight_ == frame_count_) {
            ++counters_.ring_full;
            return {};
        }
        return {slot(head_) + data_offset, max_frame_size()};
    }
    /// Queues the acquired slot with `length` bytes of frame. Precondition: acquire() returned
    /// a non-empty span and length <= max_frame_size().
    void commit(std::size_t length) noexcept {
        CLUSTERNET_ASSERT(in_flight_ < frame_count_ && length <= max_frame_size());
        std::byte* s = slot(head_);
        detail::store_host32(s + offsetof(tpacket2_hdr, tp_len), static_cast<std::uint32_t>(length));
        detail::store_release_u32(s + offsetof(tpacket2_hdr, tp_status), TP_STATUS_SEND_REQUEST);
        head_ = head_ + 1 == frame_count_ ? 0 : head_ + 1;
        ++in_flight_;
        ++unflushed_;
        ++counters_.queued;
    }
    /// Copies a frame into the next slot. False (counted) if it is too large or the ring is full.
    bool send(std::span<const std::byte> frame) noexcept {
        if (frame.size() > max_frame_size()) {
            ++counters_.too_large;
            return false;
        }
        const std::span<std::byte> s = acquire();
        if (s.empty()) return false;
        std::memcpy(s.data(), frame.data(), frame.size());
        commit(frame.size());
        return true;
    }
    /// One send(MSG_DONTWAIT) that makes the kernel transmit every queued slot; then reclaims
    /// finished slots. Returns the frames handed over by this call. A transient refusal
    /// (ENOBUFS, EAGAIN) leaves the frames queued for the next flush.
    std::size_t flush() noexcept {
        if (unflushed_ == 0 || ring_.data() == nullptr) {
            reclaim();
            return 0;
        }
        const ssize_t n = ::send(native_handle(), nullptr, 0, MSG_DONTWAIT);
        std::size_t handed = 0;
        if (n >= 0) {
            handed = unflushed_;
            unflushed_ = 0;
        } else if (!detail::is_transient_send_error(errno)) {
            ++counters_.send_errors;
        }
        reclaim();
        return handed;
    }
    /// Frames queued or in the kernel's hands, not yet reclaimed.
    [[nodiscard]] std::size_t in_flight() const noexcept { return in_flight_; }

    /// Walks the slots the kernel has finished with, counting sent and refused frames.
    void reclaim() noexcept {
        while (in_flight_ > unflushed_) {
            std::byte* s = slot(tail_);
            const std::uint32_t status = detail::load_acquire_u32(s + offsetof(tpacket2_hdr, tp_status));
            if ((status & (TP_STATUS_SEND_REQUEST | TP_STATUS_SENDING)) != 0) break;
            if ((status & TP_STATUS_WRONG_FORMAT) != 0) {
                ++counters_.send_errors;
                detail::store_release_u32(s + offsetof(tpacket2_hdr, tp_status), TP_STATUS_AVAILABLE);
            } else {
                ++counters_.sent;
            }
            tail_ = tail_ + 1 == frame_count_ ? 0 : tail_ + 1;
            --in_flight_;
        }
    }

    [[nodiscard]] const tx_counters& counters() const noexcept { return counters_; }
    [[nodiscard]] unsigned interface_index() const noexcept { return ifindex_; }

private:
    [[nodiscard]] std::byte* slot(std::uint32_t i) const noexcept {
        return ring_.data() + std::size_t{i / frames_per_block_} * block_size_ + std::size_t{i % frames_per_block_} * frame_size_;
    }

    bool open_impl(const packet_socket_options& o, const tx_ring_options& t, detail::setup_status& st) noexcept {
        close();
        counters_ = {};
        const std::size_t page = detail::page_size();
        if (t.frame_size <= data_offset || t.frame_size % TPACKET_ALIGNMENT != 0 || t.frame_size > (1u << 22))
            return st.fail("tx_ring_options: frame_size must be a multiple of 16 above 32 (and at most 4 MiB)",
                           make_error_code(errc::invalid_argument));
        if (t.frame_count == 0 || t.frame_count > (1u << 20))
            return st.fail("tx_ring_options: frame_count must be between 1 and 2^20", make_error_code(errc::invalid_argument));
        // The smallest page multiple that holds a frame; frames never straddle blocks.
        const std::size_t block = (t.frame_size + page - 1) / page * page;
        const std::uint32_t per_block = static_cast<std::uint32_t>(block / t.frame_size);
        const std::uint32_t blocks = (t.frame_count + per_block - 1) / per_block;

        detail::mapped_memory ring;
        auto setup = [&](int fd, detail::setup_status& s) noexcept {
            std::error_code ec;
            if (!detail::set_option(fd, SOL_PACKET, PACKET_VERSION, int{TPACKET_V2}, ec))
                return s.fail("setsockopt(PACKET_VERSION, TPACKET_V2)", ec);
            // A malformed frame is skipped (marked TP_STATUS_WRONG_FORMAT) rather than stopping the ring.
            if (!detail::set_option(fd, SOL_PACKET, PACKET_LOSS, 1, ec)) return s.fail("setsockopt(PACKET_LOSS)", ec);
            tpacket_req req{};
            req.tp_block_size = static_cast<unsigned>(block);
            req.tp_block_nr = blocks;
            req.tp_frame_size = t.frame_size;
            req.tp_frame_nr = per_block * blocks;
            if (!detail::set_option(fd, SOL_PACKET, PACKET_TX_RING, req, ec))
                return s.fail("setsockopt(PACKET_TX_RING)", ec);
            ring = detail::mapped_memory::map_shared(fd, block * blocks, ec);
            if (ec) return s.fail("mmap of the transmit ring", ec);
            return true;
        };
        packet_socket_options tx = o;
        tx.fanout.reset();
        tx.promiscuous = false;
        detail::unique_fd fd = detail::open_packet_fd(tx, 0, setup, ifindex_, st);
        if (!fd.valid()) return false;
        if (!adopt(fd, st)) return false;
        ring_ = std::move(ring);
        frame_size_ = t.frame_size;
        frames_per_block_ = per_block;
        block_size_ = static_cast<std::uint32_t>(block);
        frame_count_ = per_block * blocks;
        head_ = tail_ = 0;
        in_flight_ = unflushed_ = 0;
        return true;
    }

    detail::mapped_memory ring_;
    std::uint32_t frame_size_ = 0;
    std::uint32_t frames_per_block_ = 1;
    std::uint32_t block_size_ = 0;
    std::uint32_t frame_count_ = 0;
    std::uint32_t head_ = 0;       // next slot to fill
    std::uint32_t tail_ = 0;       // oldest slot not yet reclaimed
    std::uint32_t in_flight_ = 0;  // slots between tail_ and head_
    std::uint32_t unflushed_ = 0;  // committed since the last successful flush
    unsigned ifindex_ = 0;
    tx_counters counters_{};
};

// =============================================================================================
/// An AF_PACKET socket without rings: receive with one recvmmsg a batch, send with sendmmsg.
class packet_socket : public detail::asio_descriptor {
public:
    using detail::asio_descriptor::asio_descriptor;

    packet_socket(boost::asio::io_context& ctx, const packet_socket_options& o, const batch_options& b = {})
        : asio_descriptor(ctx) {
        open(o, b);
    }

    /// Opens, binds, allocates the batch buffers (once). Throws std::system_error / bad_alloc.
    void open(const packet_socket_options& o, const batch_options& b = {}) {
        detail::setup_status st;
        if (!open_impl(o, b, st)) detail::throw_setup_error("packet_socket", o.interface, st, detail::setup_hint(st.ec));
    }
    /// The same, filling ec (the buffers may still throw std::bad_alloc).
    void open(const packet_socket_options& o, const batch_options& b, std::error_code& ec) {
        detail::setup_status st;
        open_impl(o, b, st);
        ec = st.ec;
    }
    void close() noexcept { close_descriptor(); }

    /// One recvmmsg(MSG_DONTWAIT): visit(std::span<std::byte> frame, const sockaddr_ll& from)
    /// for each frame received. Returns the number (0 when nothing waits). One system call.
    /// Before re-arming an (edge-triggered) wait, call it until it returns 0.
    template <class Visitor>
        requires std::is_invocable_v<Visitor&, std::span<std::byte>, const sockaddr_ll&>
    std::size_t receive(Visitor&& visit) noexcept {
        return io_.receive(native_handle(), [&](std::span<std::byte> f, const sockaddr_storage& a) {
            sockaddr_ll from{};
            std::memcpy(&from, &a, sizeof from);
            visit(f, static_cast<const sockaddr_ll&>(from));
        });
    }

    /// Queues a frame (copied); flushes first when the batch is full. False (counted) if it
    /// does not fit a slot or the kernel takes nothing.
    bool send(std::span<const std::byte> frame) noexcept { return io_.send(native_handle(), frame); }
    /// sendmmsg of everything queued. Returns the frames the kernel took.
    std::size_t flush() noexcept { return io_.flush(native_handle()); }

    [[nodiscard]] const batch_counters& counters() const noexcept { return io_.counters(); }

private:
    bool open_impl(const packet_socket_options& o, const batch_options& b, detail::setup_status& st) {
        close();
        if (!detail::batched_io::valid(b))
            return st.fail("batch_options: batch must be 1..1024 and slot_size 20..1 MiB",
                           make_error_code(errc::invalid_argument));
        unsigned ifindex = 0;
        detail::unique_fd fd = detail::open_packet_fd(
            o, o.protocol, [](int, detail::setup_status&) noexcept { return true; }, ifindex, st);
        if (!fd.valid()) return false;
        io_ = detail::batched_io(b);
        return adopt(fd, st);
    }

    detail::batched_io io_;
};

}  // namespace clusternet::io
