// clusternet/io/tun.hpp -- TUN and TAP devices (Documentation/networking/tuntap.rst) as Boost.Asio
// objects: each tun_queue is one file descriptor of /dev/net/tun attached to a device; with
// IFF_MULTI_QUEUE a device has several queues, one descriptor each, and the kernel spreads the
// packets it sends into the device over them (by flow), so each queue can have its own thread.
//
//   auto queues = tun_queue::open_queues(ctx, {.name = "cn0", .multi_queue = true}, 2);
//   queues[0].async_wait_readable([&](auto ec) {
//       queues[0].receive([](std::span<std::byte> ip_packet) { ... });   // what the kernel routed to cn0
//   });
//   queues[0].send(ip_packet);   // queued; flush() injects it into the kernel as if cn0 received it
//   queues[0].flush();
//
// IFF_TUN carries IP packets, IFF_TAP Ethernet frames. With IFF_NO_PI (the default here) a
// packet is just the packet; without it every packet starts with the 4-byte struct tun_pi
// (flags, protocol), which receive() hands over and send() expects, unchanged.
//
// Batches: a TUN descriptor has no recvmmsg / sendmmsg, so receive() reads until the queue is
// empty (EAGAIN) or `batch` packets, into one buffer reused packet after packet (the visitor
// sees each packet before the next read), and send() copies into a preallocated batch that
// flush() writes out, one write(2) a packet, stopping at EAGAIN with the rest kept queued.
// Nothing is allocated after open.
//
// The device: open() creates it, or attaches to an existing one of that name (made with
// `ip tuntap add ... [multi_queue]`; the IFF_MULTI_QUEUE setting must match). It is the
// caller's to give it addresses and bring it up. A device open() created goes away with its
// last descriptor unless it was made persistent elsewhere.
//
// Errors: open() throws std::system_error naming the device and the call (with a hint), or fills
// a std::error_code; receive / send / flush are noexcept and count.
#pragma once

#include <clusternet/error.hpp>
#include <clusternet/io/detail/descriptor.hpp>
#include <clusternet/io/detail/mmsg_batch.hpp>
#include <clusternet/io/detail/posix.hpp>

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

namespace clusternet::io {

enum class tun_mode : std::uint8_t {
    tun,  ///< IFF_TUN: IP packets
    tap,  ///< IFF_TAP: Ethernet frames
};

struct tun_options {
    std::string name{};            ///< device name; empty or with "%d" lets the kernel choose
    tun_mode mode = tun_mode::tun;
    bool no_packet_info = true;    ///< IFF_NO_PI
    bool multi_queue = false;      ///< IFF_MULTI_QUEUE (needed for more than one queue)
    std::uint32_t batch = 64;      ///< packets per receive() at most, and the send batch
    std::uint32_t slot_size = 65536 + 4;  ///< largest packet (a TUN's MTU may reach 64 KiB)
};

class tun_queue : public detail::asio_descriptor {
public:
    using detail::asio_descriptor::asio_descriptor;

    /// Opens a queue of the device; throws std::system_error.
    tun_queue(boost::asio::io_context& ctx, const tun_options& o) : asio_descriptor(ctx) { open(o); }

    void open(const tun_options& o) {
        detail::setup_status st;
        if (!open_impl(o, st)) detail::throw_setup_error("tun_queue", o.name, st, hint(st.ec));
    }
    /// The same, filling ec (the buffers may still throw std::bad_alloc).
    void open(const tun_options& o, std::error_code& ec) {
        detail::setup_status st;
        open_impl(o, st);
        ec = st.ec;
    }
    void close() noexcept { close_descriptor(); }

    /// `count` queues of one device (IFF_MULTI_QUEUE when count > 1); the first names the
    /// device, the others attach to it. Throws std::system_error.
    [[nodiscard]] static std::vector<tun_queue> open_queues(boost::asio::io_context& ctx, tun_options o, std::size_t count) {
        std::vector<tun_queue> qs;
        qs.reserve(count);
        if (count > 1) o.multi_queue = true;
        for (std::size_t i = 0; i < count; ++i) {
            qs.emplace_back(ctx, o);
            o.name = qs.front().name();
        }
        return qs;
    }

    /// The device's name, as the kernel settled it.
    [[nodiscard]] const std::string& name() const noexcept { return name_; }

    /// Reads packets until none is waiting or `batch` were read: visit(std::span<std::byte>)
    /// for each, the span valid during the call. Returns the number. Never blocks. A return of
    /// batch_size() means more may be waiting: call again before re-arming an edge-triggered
    /// wait (detail/descriptor.hpp), or the rest waits for the next packet's wake-up.
    template <class Visitor>
        requires std::is_invocable_v<Visitor&, std::span<std::byte>>
    std::size_t receive(Visitor&& visit) noexcept {
        std::size_t n = 0;
        while (n < batch_) {
            const ssize_t r = ::read(native_handle(), rx_.get(), slot_size_);
            if (r < 0) {
                if (errno == EINTR) continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK) ++counters_.receive_errors;
                break;
            }
            ++n;
            counters_.bytes += static_cast<std::size_t>(r);
            visit(std::span<std::byte>(rx_.get(), static_cast<std::size_t>(r)));
        }
        counters_.frames += n;
        return n;
    }

    /// Queues a packet (copied); flushes first when the batch is full. False (counted) if it
    /// does not fit a slot or the device takes nothing.
    bool send(std::span<const std::byte> packet) noexcept {
        if (packet.size() > slot_size_) {
            ++counters_.tx.too_large;
            return false;
        }
        if (tx_.full()) flush();
        if (!tx_.push(packet)) {
            ++counters_.tx.ring_full;
            return false;
        }
        ++counters_.tx.queued;
        return true;
    }
    /// Writes every queued packet into the device (one write each). A packet the device
    /// refuses (EINVAL: malformed, EIO: the device is down) is dropped and counted; EAGAIN
    /// keeps the rest queued. Returns the packets written.
    std::size_t flush() noexcept {
        const int fd = native_handle();
        const auto r = tx_.flush_each([fd](std::span<const std::byte> p) noexcept {
            for (;;) {
                const ssize_t w = ::write(fd, p.data(), p.size());
                if (w >= 0) return 1;
                if (errno == EINTR) continue;
                return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
            }
        });
        counters_.tx.sent += r.sent;
        counters_.tx.send_errors += r.dropped;
        return r.sent;
    }

    /// TUNSETQUEUE: detach this queue from the device (the kernel stops using it) or attach it
    /// again. Multi-queue devices only.
    void set_enabled(bool enabled, std::error_code& ec) noexcept {
        ifreq ifr{};
        ifr.ifr_flags = static_cast<short>(enabled ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE);
        if (::ioctl(native_handle(), TUNSETQUEUE, &ifr) != 0) ec = detail::last_error();
        else ec.clear();
    }

    [[nodiscard]] std::size_t batch_size() const noexcept { return batch_; }
    [[nodiscard]] const batch_counters& counters() const noexcept { return counters_; }

private:
    static std::string_view hint(const std::error_code& ec) noexcept {
        if (ec == std::errc::invalid_argument)
            return "an existing device with other flags? IFF_MULTI_QUEUE and IFF_TUN/IFF_TAP must match";
        if (ec == std::errc::no_such_file_or_directory) return "no /dev/net/tun: the kernel lacks CONFIG_TUN";
        return detail::setup_hint(ec);
    }

    bool open_impl(const tun_options& o, detail::setup_status& st) {
        close();
        counters_ = {};
        if (o.batch == 0 || o.batch > 4096 || o.slot_size < 64 || o.slot_size > (1u << 20))
            return st.fail("tun_options: batch must be 1..4096 and slot_size 64..1 MiB",
                           make_error_code(errc::invalid_argument));
        ifreq ifr{};
        if (!detail::copy_interface_name(o.name, ifr.ifr_name))
            return st.fail("tun_options: name longer than 15 characters", make_error_code(errc::invalid_argument));
        int flags = o.mode == tun_mode::tun ? IFF_TUN : IFF_TAP;
        if (o.no_packet_info) flags |= IFF_NO_PI;
        if (o.multi_queue) flags |= IFF_MULTI_QUEUE;
        ifr.ifr_flags = static_cast<short>(flags);

        detail::unique_fd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
        if (!fd.valid()) return st.fail_errno("open(/dev/net/tun)");
        if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) return st.fail_errno("ioctl(TUNSETIFF)");
        ifr.ifr_name[IFNAMSIZ - 1] = '\0';
        name_.assign(ifr.ifr_name);
        rx_ = std::make_unique<std::byte[]>(o.slot_size);
        tx_ = detail::mmsg_batch(o.batch, o.slot_size);
        batch_ = o.batch;
        slot_size_ = o.slot_size;
        return adopt(fd, st);
    }

    std::string name_;
    std::unique_ptr<std::byte[]> rx_;
    detail::mmsg_batch tx_;
    std::size_t batch_ = 0;
    std::size_t slot_size_ = 0;
    batch_counters counters_{};
};

}  // namespace clusternet::io
