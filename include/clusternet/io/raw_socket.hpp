// clusternet/io/raw_socket.hpp -- raw IPv4 sockets (raw(7)) as a Boost.Asio object, moving
// batches with recvmmsg / sendmmsg: IP-in-IP (protocol 4) for LVS-style tunnelling and DPR
// redirection, and private control protocols (253 and 254 are for experiments, RFC 3692).
//
//   raw_ip_socket s(ctx, {.protocol = 253});
//   s.send(payload, ipv4_address(10, 0, 0, 2));   // queued (copied into the batch)
//   s.flush();                                    // one sendmmsg for the batch
//   s.async_wait_readable([&](auto ec) {
//       s.receive([](std::span<std::byte> ip_packet, ipv4_address from) { ... });
//   });
//
// Receiving always gives whole IPv4 packets, header included (the kernel does so for raw
// sockets). Sending gives the payload and the kernel adds the header, unless
// `header_included` (IP_HDRINCL) is set: then the caller's bytes are the whole packet, header
// first (the kernel still fills the checksum and total length, and an id of 0). A raw socket
// of protocol P receives every packet of protocol P this host receives (and also sends, on
// loopback), whatever else is listening; `interface` (SO_BINDTODEVICE) and `bind_address`
// narrow that.
//
// Errors: open() throws std::system_error naming the call, or fills a std::error_code; the
// per-packet calls are noexcept and count (counters().tx.send_errors, .receive_errors ...).
// Cost: one system call a batch (receive) or a flush (send); one copy a packet into or out of
// the batch buffers, which are allocated once in open().
#pragma once

#include <clusternet/address.hpp>
#include <clusternet/byteorder.hpp>
#include <clusternet/error.hpp>
#include <clusternet/io/detail/descriptor.hpp>
#include <clusternet/io/detail/mmsg_batch.hpp>
#include <clusternet/io/detail/posix.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>

namespace clusternet::io {

struct raw_ip_options {
    std::uint8_t protocol = 253;                 ///< the IP protocol number to send and receive
    bool header_included = false;                ///< IP_HDRINCL: send() takes whole IPv4 packets
    std::string interface{};                     ///< SO_BINDTODEVICE, if not empty
    std::optional<ipv4_address> bind_address{};  ///< receive only packets to this address
    int receive_buffer = 0;                      ///< SO_RCVBUF in bytes (0: the system default)
    batch_options batch{.batch = 64, .slot_size = 65535};
};

namespace detail {
/// What both raw sockets set up alike: SO_RCVBUF (when > 0) and SO_BINDTODEVICE (when named).
inline bool raw_socket_common(int fd, int receive_buffer, const std::string& interface, setup_status& st) {
    std::error_code ec;
    if (receive_buffer > 0 && !set_option(fd, SOL_SOCKET, SO_RCVBUF, receive_buffer, ec)) return st.fail("setsockopt(SO_RCVBUF)", ec);
    if (!interface.empty()) {
        char name[IFNAMSIZ];
        if (!copy_interface_name(interface, name))
            return st.fail("raw socket: interface name too long", make_error_code(errc::invalid_argument));
        if (::setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, IFNAMSIZ) != 0) return st.fail_errno("setsockopt(SO_BINDTODEVICE)");
    }
    return true;
}
}  // namespace detail

class raw_ip_socket : public detail::asio_descriptor {
public:
    using detail::asio_descriptor::asio_descriptor;

    /// Opens; throws std::system_error.
    raw_ip_socket(boost::asio::io_context& ctx, const raw_ip_options& o) : asio_descriptor(ctx) { open(o); }

    void open(const raw_ip_options& o) {
        detail::setup_status st;
        if (!open_impl(o, st)) detail::throw_setup_error("raw_ip_socket", o.interface, st, detail::setup_hint(st.ec));
    }
    /// The same, filling ec (the batch buffers may still throw std::bad_alloc).
    void open(const raw_ip_options& o, std::error_code& ec) {
        detail::setup_status st;
        open_impl(o, st);
        ec = st.ec;
    }
    void close() noexcept { close_descriptor(); }

    /// One recvmmsg(MSG_DONTWAIT): visit(std::span<std::byte> ip_packet, ipv4_address from) for
    /// each packet waiting. Returns the number (0 when none). Never blocks. Before re-arming an
    /// (edge-triggered) wait, call it until it returns 0.
    template <class Visitor>
        requires std::is_invocable_v<Visitor&, std::span<std::byte>, ipv4_address>
    std::size_t receive(Visitor&& visit) noexcept {
        return io_.receive(native_handle(), [&](std::span<std::byte> p, const sockaddr_storage& a) {
            sockaddr_in sin{};
            std::memcpy(&sin, &a, sizeof sin);
            visit(p, ipv4_address(net_to_host(static_cast<std::uint32_t>(sin.sin_addr.s_addr))));
        });
    }

    /// Queues a packet for `to` (copied); flushes first when the batch is full. The bytes are
    /// the payload, or the whole packet with header_included. False (counted) if it does not
    /// fit a slot.
    bool send(std::span<const std::byte> packet, ipv4_address to) noexcept {
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = host_to_net(to.to_uint());
        return io_.send(native_handle(), packet, &sin, sizeof sin);
    }
    /// sendmmsg of everything queued; returns the packets the kernel took. A packet the kernel
    /// refuses (no route, too big) is dropped and counted; EAGAIN leaves the rest queued.
    std::size_t flush() noexcept { return io_.flush(native_handle()); }
    [[nodiscard]] std::size_t queued() const noexcept { return io_.queued(); }

    [[nodiscard]] const batch_counters& counters() const noexcept { return io_.counters(); }
    [[nodiscard]] std::uint8_t protocol() const noexcept { return protocol_; }

private:
    bool open_impl(const raw_ip_options& o, detail::setup_status& st) {
        close();
        if (!detail::batched_io::valid(o.batch))
            return st.fail("raw_ip_options: batch must be 1..1024 and slot_size 20..1 MiB",
                           make_error_code(errc::invalid_argument));
        if (o.protocol == 0 || o.protocol == 255)
            return st.fail("raw_ip_options: protocol must be 1..254", make_error_code(errc::invalid_argument));
        detail::unique_fd fd(::socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, o.protocol));
        if (!fd.valid()) return st.fail_errno("socket(AF_INET, SOCK_RAW)");
        std::error_code ec;
        if (o.header_included && !detail::set_option(fd.get(), IPPROTO_IP, IP_HDRINCL, 1, ec))
            return st.fail("setsockopt(IP_HDRINCL)", ec);
        if (!detail::raw_socket_common(fd.get(), o.receive_buffer, o.interface, st)) return false;
        if (o.bind_address) {
            sockaddr_in sin{};
            sin.sin_family = AF_INET;
            sin.sin_addr.s_addr = host_to_net(o.bind_address->to_uint());
            if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sin), sizeof sin) != 0)
                return st.fail_errno("bind(AF_INET raw)");
        }
        io_ = detail::batched_io(o.batch);
        protocol_ = o.protocol;
        return adopt(fd, st);
    }

    detail::batched_io io_;
    std::uint8_t protocol_ = 0;
};

/// Options of raw_ip6_socket.
struct raw_ip6_options {
    std::uint8_t protocol = 253;   ///< the next header to send and receive (41: IPv6 in IPv6)
    std::string interface{};       ///< SO_BINDTODEVICE, if not empty
    int receive_buffer = 0;        ///< SO_RCVBUF in bytes (0: the system default)
    batch_options batch{.batch = 64, .slot_size = 65535};
};

/// A raw IPv6 socket (AF_INET6, SOCK_RAW) for one next-header value. Unlike IPv4's, an IPv6
/// raw socket never hands out the IPv6 header (RFC 3542 3): a packet arrives as its payload,
/// after the kernel has checked that it is addressed to this host. For next header 41 the
/// payload is the inner IPv6 packet of a tunnel; holding the socket also stops the kernel's
/// "unrecognized next header" answer to each such packet.
class raw_ip6_socket : public detail::asio_descriptor {
public:
    using detail::asio_descriptor::asio_descriptor;

    /// Opens; throws std::system_error.
    raw_ip6_socket(boost::asio::io_context& ctx, const raw_ip6_options& o) : asio_descriptor(ctx) {
        detail::setup_status st;
        if (!open_impl(o, st)) detail::throw_setup_error("raw_ip6_socket", o.interface, st, detail::setup_hint(st.ec));
    }
    void close() noexcept { close_descriptor(); }

    /// One recvmmsg(MSG_DONTWAIT): visit(std::span<std::byte> payload, ipv6_address from) for
    /// each packet waiting. Returns the number (0 when none). Never blocks.
    template <class Visitor>
        requires std::is_invocable_v<Visitor&, std::span<std::byte>, ipv6_address>
    std::size_t receive(Visitor&& visit) noexcept {
        return io_.receive(native_handle(), [&](std::span<std::byte> p, const sockaddr_storage& a) {
            sockaddr_in6 sin6{};
            std::memcpy(&sin6, &a, sizeof sin6);
            ipv6_address from;
            std::memcpy(from.bytes.data(), &sin6.sin6_addr, 16);
            visit(p, from);
        });
    }
    /// Queues a payload for `to` (the kernel writes the IPv6 header); flushes when the batch is
    /// full. False (counted) if it does not fit a slot.
    bool send(std::span<const std::byte> payload, const ipv6_address& to) noexcept {
        sockaddr_in6 sin6{};
        sin6.sin6_family = AF_INET6;
        std::memcpy(&sin6.sin6_addr, to.bytes.data(), 16);
        return io_.send(native_handle(), payload, &sin6, sizeof sin6);
    }
    std::size_t flush() noexcept { return io_.flush(native_handle()); }
    [[nodiscard]] const batch_counters& counters() const noexcept { return io_.counters(); }

private:
    bool open_impl(const raw_ip6_options& o, detail::setup_status& st) {
        close();
        if (!detail::batched_io::valid(o.batch))
            return st.fail("raw_ip6_options: batch must be 1..1024 and slot_size 20..1 MiB",
                           make_error_code(errc::invalid_argument));
        if (o.protocol == 0 || o.protocol == 255)
            return st.fail("raw_ip6_options: protocol must be 1..254", make_error_code(errc::invalid_argument));
        detail::unique_fd fd(::socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, o.protocol));
        if (!fd.valid()) return st.fail_errno("socket(AF_INET6, SOCK_RAW)");
        if (!detail::raw_socket_common(fd.get(), o.receive_buffer, o.interface, st)) return false;
        io_ = detail::batched_io(o.batch);
        return adopt(fd, st);
    }

    detail::batched_io io_;
};

}  // namespace clusternet::io
