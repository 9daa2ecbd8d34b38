// clusternet/io/detail/mmsg_batch.hpp -- preallocated message arrays for recvmmsg(2) and
// sendmmsg(2): `count` slots, each a buffer of `slot_size` bytes, one iovec, one address. All
// memory is allocated once in the constructor; receiving and sending allocate nothing.
//
// Receive: recv() fills up to `count` slots in one recvmmsg(MSG_DONTWAIT) call and the caller
// reads them with packet(i) / address(i). Send: push() copies a packet (and its destination) into
// the next free slot; flush() hands all queued slots to sendmmsg, looping over partial sends, and
// stops at EAGAIN (the unsent ones stay queued) or at a packet the kernel refuses (dropped and
// counted, so one bad packet never blocks the queue).
#pragma once

#include <clusternet/io/detail/posix.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <system_error>

namespace clusternet::io {

/// Batching of the recvmmsg / sendmmsg bindings (packet_socket, raw_ip_socket).
struct batch_options {
    std::uint32_t batch = 64;        ///< messages per recvmmsg / sendmmsg call (1..1024)
    std::uint32_t slot_size = 2048;  ///< largest message a slot holds (longer ones are cut, counted)
};

/// Transmit counters, shared by every binding that sends.
struct tx_counters {
    std::uint64_t queued = 0;       ///< frames accepted by send() / commit()
    std::uint64_t sent = 0;         ///< frames the kernel took for transmission
    std::uint64_t send_errors = 0;  ///< frames the kernel refused, plus failed flush calls
    std::uint64_t ring_full = 0;    ///< no free slot: the frame was not queued
    std::uint64_t too_large = 0;    ///< frames larger than a slot (not queued)
};

/// Counters of a binding that receives and sends in batches.
struct batch_counters {
    std::uint64_t frames = 0;          ///< messages received
    std::uint64_t bytes = 0;           ///< bytes received (as stored)
    std::uint64_t truncated = 0;       ///< messages longer than a slot (cut)
    std::uint64_t receive_errors = 0;  ///< failed receive calls (not EAGAIN)
    tx_counters tx{};
};

}  // namespace clusternet::io

namespace clusternet::io::detail {

class mmsg_batch {
public:
    mmsg_batch() = default;
    /// Allocates count * slot_size bytes and the headers. Throws std::bad_alloc.
    mmsg_batch(std::size_t count, std::size_t slot_size)
        : count_(count),
          slot_size_(slot_size),
          data_(std::make_unique<std::byte[]>(count * slot_size)),
          msgs_(std::make_unique<mmsghdr[]>(count)),
          iovs_(std::make_unique<iovec[]>(count)),
          addrs_(std::make_unique<sockaddr_storage[]>(count)) {
        std::memset(msgs_.get(), 0, count * sizeof(mmsghdr));
    }

    [[nodiscard]] std::size_t capacity() const noexcept { return count_; }
    [[nodiscard]] std::size_t slot_size() const noexcept { return slot_size_; }

    // --- receive ----------------------------------------------------------------------------
    /// One recvmmsg(fd, MSG_DONTWAIT) into every slot. Returns the number of messages (0 when
    /// none is waiting); fills ec on another error.
    std::size_t recv(int fd, std::error_code& ec) noexcept {
        for (std::size_t i = 0; i < count_; ++i) prepare(i, slot_size_, sizeof(sockaddr_storage));
        const int n = ::recvmmsg(fd, msgs_.get(), static_cast<unsigned>(count_), MSG_DONTWAIT, nullptr);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) ec = last_error();
            return 0;
        }
        received_ = static_cast<std::size_t>(n);
        return received_;
    }
    /// The bytes of received message i (at most slot_size; see truncated()).
    [[nodiscard]] std::span<std::byte> packet(std::size_t i) const noexcept {
        return {slot(i), std::min<std::size_t>(msgs_[i].msg_len, slot_size_)};
    }
    [[nodiscard]] bool truncated(std::size_t i) const noexcept { return (msgs_[i].msg_hdr.msg_flags & MSG_TRUNC) != 0; }
    [[nodiscard]] const sockaddr_storage& address(std::size_t i) const noexcept { return addrs_[i]; }

    // --- send -------------------------------------------------------------------------------
    [[nodiscard]] std::size_t queued() const noexcept { return queued_; }
    [[nodiscard]] bool full() const noexcept { return queued_ == count_; }

    /// Copies `packet` (and the destination, if any) into the next slot. False when the batch
    /// is full or the packet is larger than a slot.
    bool push(std::span<const std::byte> packet, const void* addr = nullptr, socklen_t addr_len = 0) noexcept {
        if (queued_ == count_ || packet.size() > slot_size_ || addr_len > sizeof(sockaddr_storage)) return false;
        const std::size_t i = queued_++;
        if (!packet.empty()) std::memcpy(slot(i), packet.data(), packet.size());
        if (addr_len != 0) std::memcpy(&addrs_[i], addr, addr_len);
        prepare(i, packet.size(), addr_len);
        return true;
    }

    struct flush_result {
        std::size_t sent = 0;     ///< messages the kernel took
        std::size_t dropped = 0;  ///< messages the kernel refused (dropped from the queue)
        std::error_code last_error{};  ///< the last refusal's error
    };

    /// sendmmsg(MSG_DONTWAIT) of every queued message, in order. Messages left unsent by EAGAIN
    /// or ENOBUFS stay queued (moved to the front) for the next flush.
    flush_result flush(int fd) noexcept {
        flush_result r;
        std::size_t head = 0;
        while (head < queued_) {
            const int n = ::sendmmsg(fd, msgs_.get() + head, static_cast<unsigned>(queued_ - head), MSG_DONTWAIT);
            if (n > 0) {
                head += static_cast<std::size_t>(n);
                r.sent += static_cast<std::size_t>(n);
                continue;
            }
            const int e = errno;
            if (n < 0 && e == EINTR) continue;
            if (n < 0 && (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS)) break;
            // The message at head is refused (EMSGSIZE, EHOSTUNREACH, ...): drop it and go on.
            r.last_error = std::error_code(n < 0 ? e : EIO, std::system_category());
            ++r.dropped;
            ++head;
        }
        keep_from(head);
        return r;
    }

    /// The same for descriptors without sendmmsg (TUN): write_one(std::span<const std::byte>)
    /// per queued message, returning 1 (taken), 0 (not now: stop, keep the rest) or -1 (refused:
    /// drop it, go on), and setting errno for -1.
    template <class WriteOne>
    flush_result flush_each(WriteOne&& write_one) noexcept {
        flush_result r;
        std::size_t head = 0;
        for (; head < queued_; ++head) {
            const int v = write_one(std::span<const std::byte>(slot(head), iovs_[head].iov_len));
            if (v == 0) break;
            if (v > 0) {
                ++r.sent;
            } else {
                ++r.dropped;
                r.last_error = last_error();
            }
        }
        keep_from(head);
        return r;
    }
    void clear() noexcept { queued_ = 0; }

private:
    [[nodiscard]] std::byte* slot(std::size_t i) const noexcept { return data_.get() + i * slot_size_; }

    void prepare(std::size_t i, std::size_t len, socklen_t addr_len) noexcept {
        iovs_[i].iov_base = slot(i);
        iovs_[i].iov_len = len;
        msghdr& h = msgs_[i].msg_hdr;
        h.msg_iov = &iovs_[i];
        h.msg_iovlen = 1;
        h.msg_name = addr_len != 0 ? &addrs_[i] : nullptr;
        h.msg_namelen = addr_len;
        h.msg_control = nullptr;
        h.msg_controllen = 0;
        h.msg_flags = 0;
        msgs_[i].msg_len = 0;
    }
    /// Moves the messages from `head` on to the front of the queue.
    void keep_from(std::size_t head) noexcept {
        const std::size_t left = queued_ - head;
        for (std::size_t i = 0; i < left; ++i) move_slot(head + i, i);
        queued_ = left;
    }
    void move_slot(std::size_t from, std::size_t to) noexcept {
        const std::size_t len = iovs_[from].iov_len;
        const socklen_t alen = msgs_[from].msg_hdr.msg_namelen;
        std::memmove(slot(to), slot(from), len);
        if (alen != 0) std::memcpy(&addrs_[to], &addrs_[from], alen);
        prepare(to, len, alen);
    }

    std::size_t count_ = 0;
    std::size_t slot_size_ = 0;
    std::unique_ptr<std::byte[]> data_;
    std::unique_ptr<mmsghdr[]> msgs_;
    std::unique_ptr<iovec[]> iovs_;
    std::unique_ptr<sockaddr_storage[]> addrs_;
    std::size_t queued_ = 0;
    std::size_t received_ = 0;
};

/// A receive batch and a send batch with their counters: the engine of packet_socket and
/// raw_ip_socket.
class batched_io {
public:
    batched_io() = default;
    /// Allocates both batches (throws std::bad_alloc).
    explicit batched_io(const batch_options& b) : rx_(b.batch, b.slot_size), tx_(b.batch, b.slot_size) {}

    [[nodiscard]] static bool valid(const batch_options& b) noexcept {
        return b.batch >= 1 && b.batch <= 1024 && b.slot_size >= 20 && b.slot_size <= (1u << 20);
    }

    /// One recvmmsg; visit(std::span<std::byte>, const sockaddr_storage&) per message.
    template <class Visitor>
    std::size_t receive(int fd, Visitor&& visit) noexcept {
        std::error_code ec;
        const std::size_t n = rx_.recv(fd, ec);
        if (ec) ++counters_.receive_errors;
        for (std::size_t i = 0; i < n; ++i) {
            const std::span<std::byte> m = rx_.packet(i);
            counters_.bytes += m.size();
            counters_.truncated += rx_.truncated(i);
            visit(m, rx_.address(i));
        }
        counters_.frames += n;
        return n;
    }

    /// Queues a copy; flushes first when the batch is full. False (counted) if it cannot.
    bool send(int fd, std::span<const std::byte> m, const void* addr = nullptr, socklen_t addr_len = 0) noexcept {
        if (m.size() > tx_.slot_size()) {
            ++counters_.tx.too_large;
            return false;
        }
        if (tx_.full()) flush(fd);
        if (!tx_.push(m, addr, addr_len)) {
            ++counters_.tx.ring_full;
            return false;
        }
        ++counters_.tx.queued;
        return true;
    }

    /// sendmmsg of everything queued; returns the messages the kernel took.
    std::size_t flush(int fd) noexcept {
        const auto r = tx_.flush(fd);
        counters_.tx.sent += r.sent;
        counters_.tx.send_errors += r.dropped;
        return r.sent;
    }

    [[nodiscard]] std::size_t queued() const noexcept { return tx_.queued(); }
    [[nodiscard]] const batch_counters& counters() const noexcept { return counters_; }
    void reset_counters() noexcept { counters_ = {}; }

private:
    mmsg_batch rx_;
    mmsg_batch tx_;
    batch_counters counters_{};
};

}  // namespace clusternet::io::detail
