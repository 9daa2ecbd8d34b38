// clusternet/io/dispatch_loop.hpp -- a layer-4 dispatcher bound to an interface with AF_PACKET.
//
//   af_packet_dispatch_loop<D>  on an io_context: waits for frames (recvmmsg batches, or the
//                               TPACKET_V3 receive ring), hands them to the dispatcher
//                               (rewritten in place; a receive batch or ring block at a time
//                               through process_burst() when the dispatcher has it, so that
//                               the session lookups overlap), queues what it says to send and sends
//                               the batch with sendmmsg (measured faster than the TX ring on
//                               veth, docs/io.md), one flush per wake-up; between wake-ups, calls the picker's
//                               refresh(dispatcher) (cluster_picker follows its cluster view)
//                               and sweeps the session table for expiry.
//   interface_mac()             an interface's MAC address (SIOCGIFHWADDR).
//   interface_mtu()             an interface's MTU (SIOCGIFMTU).
//   arp_resolve()               back-end discovery as LSMAC does it: ARP requests on the
//                               interface, replies read from a packet socket, bounded in time.
//   ndp_resolve()               the same for IPv6: neighbour solicitations (ndp.hpp), valid
//                               advertisements read from a packet socket.
//   interface_link_local()      an interface's IPv6 link-local address (getifaddrs).
//
// What the kernel must be told (scripts/cluster.sh does it): the receive socket binds ETH_P_ALL
// with PACKET_IGNORE_OUTGOING, so the dispatcher never sees its own transmissions (with direct
// routing a sent frame still carries the VIP and would be dispatched again); the kernel of the
// dispatcher's host must not act on the frames the dispatcher forwards (a netdev-ingress drop
// for the VIP, which AF_PACKET taps see before: `cluster.sh up dr --ingress-drop`); and
// checksum offload off on veth, so that frames carry whole checksums.
#pragma once

#include <clusternet/arp.hpp>
#include <clusternet/dispatcher.hpp>
#include <clusternet/io/af_packet.hpp>
#include <clusternet/ndp.hpp>
#include <clusternet/packet_builder.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

namespace clusternet::io {

namespace detail {
/// One SIOC* ioctl that fills an ifreq for `interface`; throws std::system_error naming the
/// call and the interface.
inline ifreq interface_ioctl(const std::string& interface, unsigned long request, const char* what) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::system_error(errno, std::system_category(), std::string("socket() for ") + what);
    ifreq req{};
    std::strncpy(req.ifr_name, interface.c_str(), IFNAMSIZ - 1);
    const int rc = ::ioctl(fd, request, &req);
    const int err = errno;
    ::close(fd);
    if (rc != 0)
        throw std::system_error(err, std::system_category(),
                                std::string(what) + " on \"" + interface + "\" (is the interface in this network namespace?)");
    return req;
}
}  // namespace detail

/// The MAC address of `interface`. Throws std::system_error naming it when it has none.
inline mac_address interface_mac(const std::string& interface) {
    const ifreq req = detail::interface_ioctl(interface, SIOCGIFHWADDR, "SIOCGIFHWADDR");
    mac_address m;
    std::memcpy(m.bytes.data(), req.ifr_hwaddr.sa_data, 6);
    return m;
}

/// The MTU of `interface` (SIOCGIFMTU): the largest IP packet it sends. Throws
/// std::system_error naming it.
inline std::size_t interface_mtu(const std::string& interface) {
    const ifreq req = detail::interface_ioctl(interface, SIOCGIFMTU, "SIOCGIFMTU");
    return static_cast<std::size_t>(req.ifr_mtu);
}

namespace detail {
/// What ARP and neighbour discovery share: until every `found` is set or `timeout` passes, ask
/// again (`ask(i)` for each missing target) every 200 ms and hand every frame received to
/// `take(frame)`, which fills `found`.
template <class Ask, class Take>
void resolve_loop(packet_socket& sock, std::vector<std::optional<mac_address>>& found, std::chrono::milliseconds timeout,
                  Ask ask, Take take) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto next_send = std::chrono::steady_clock::now();
    for (;;) {
        std::size_t missing = 0;
        for (const auto& f : found) missing += !f.has_value();
        const auto now = std::chrono::steady_clock::now();
        if (missing == 0 || now >= deadline) break;
        if (now >= next_send) {
            for (std::size_t i = 0; i < found.size(); ++i)
                if (!found[i]) ask(i);
            (void)sock.flush();
            next_send = now + std::chrono::milliseconds(200);
        }
        pollfd pfd{sock.native_handle(), POLLIN, 0};
        (void)::poll(&pfd, 1, 50);  // bounded wait for answers, then read every frame there is
        while (sock.receive([&](std::span<std::byte> frame, const sockaddr_ll&) { take(frame); }) != 0) {
        }
    }
}
}  // namespace detail

/// Asks by ARP for the MAC of each address in `targets` on `interface`, from (self_mac,
/// self_ip), a request a target every 200 ms until `timeout`. Returns the answers in the order
/// of `targets`, nullopt for an address that did not answer. Throws std::system_error when the
/// sockets cannot be opened (not root, no such interface).
inline std::vector<std::optional<mac_address>> arp_resolve(const std::string& interface, const mac_address& self_mac,
                                                           ipv4_address self_ip, const std::vector<ipv4_address>& targets,
                                                           std::chrono::milliseconds timeout = std::chrono::seconds(3)) {
    packet_socket_options o;
    o.interface = interface;
    o.protocol = ETH_P_ARP;
    boost::asio::io_context io;
    packet_socket sock(io, o);
    std::vector<std::optional<mac_address>> found(targets.size());
    std::array<std::byte, 64> req{};
    const mac_address broadcast{{std::byte{0xFF}, std::byte{0xFF}, std::byte{0xFF}, std::byte{0xFF}, std::byte{0xFF}, std::byte{0xFF}}};
    detail::resolve_loop(
        sock, found, timeout,
        [&](std::size_t i) {
            auto r = packet_builder(req)
                         .ethernet({.dst = broadcast, .src = self_mac})
                         .arp({.operation = arp_op::request, .sender_mac = self_mac, .sender_ip = self_ip, .target_mac = {},
                               .target_ip = targets[i]})
                         .finish();
            if (r) (void)sock.send(*r);
        },
        [&](std::span<std::byte> frame) {
            const auto p = parse_ethernet_packet(std::span<const std::byte>(frame));
            if (!p || !p->is_arp() || p->arp().operation() != arp_op::reply) return;
            for (std::size_t i = 0; i < targets.size(); ++i)
                if (!found[i] && p->arp().sender_ip() == targets[i]) found[i] = p->arp().sender_mac();
        });
    return found;
}

/// The IPv6 link-local address (fe80::/10) of `interface`, or nullopt when it has none (IPv6
/// off, or not up yet). Throws std::system_error when getifaddrs() fails.
inline std::optional<ipv6_address> interface_link_local(const std::string& interface) {
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) throw std::system_error(errno, std::system_category(), "getifaddrs");
    std::optional<ipv6_address> found;
    for (const ifaddrs* a = list; a != nullptr && !found; a = a->ifa_next) {
        if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET6 || interface != a->ifa_name) continue;
        const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(a->ifa_addr);
        if (!IN6_IS_ADDR_LINKLOCAL(&sin6->sin6_addr)) continue;
        ipv6_address v;
        std::memcpy(v.bytes.data(), &sin6->sin6_addr, 16);
        found = v;
    }
    ::freeifaddrs(list);
    return found;
}

/// ARP's IPv6 counterpart (RFC 4861): asks for the MAC of each of `targets` on `interface` by a
/// Neighbor Solicitation to its solicited-node group from (self_mac, the interface's link-local
/// address), one a target every 200 ms until `timeout`, and takes the MACs of advertisements
/// that pass RFC 4861's validation (ndp::parse_advertisement). Returns them in the order of
/// `targets`, nullopt for one that did not answer. Throws std::system_error when the socket
/// cannot be opened (not root, no such interface) or the interface has no link-local address
/// (IPv6 off on it: give the MACs instead).
inline std::vector<std::optional<mac_address>> ndp_resolve(const std::string& interface, const mac_address& self_mac,
                                                           const std::vector<ipv6_address>& targets,
                                                           std::chrono::milliseconds timeout = std::chrono::seconds(3)) {
    const auto self_ip = interface_link_local(interface);
    if (!self_ip)
        throw std::system_error(std::make_error_code(std::errc::address_not_available),
                                "neighbour discovery on \"" + interface + "\": it has no IPv6 link-local address (IPv6 off?)");
    packet_socket_options o;
    o.interface = interface;
    o.protocol = ETH_P_IPV6;
    boost::asio::io_context io;
    packet_socket sock(io, o);
    std::vector<std::optional<mac_address>> found(targets.size());
    std::array<std::byte, ndp::solicitation_size> req{};
    detail::resolve_loop(
        sock, found, timeout,
        [&](std::size_t i) {
            if (const std::size_t n = ndp::build_solicitation(req, self_mac, *self_ip, targets[i]); n != 0)
                (void)sock.send(std::span<const std::byte>(req.data(), n));
        },
        [&](std::span<std::byte> frame) {
            const auto p = parse_ethernet_packet(std::span<const std::byte>(frame));
            if (!p) return;
            const auto a = ndp::parse_advertisement(*p);
            if (!a) return;
            for (std::size_t i = 0; i < targets.size(); ++i)
                if (!found[i] && a->target == targets[i]) found[i] = a->mac;
        });
    return found;
}

/// Counters of the loop (the dispatcher counts verdicts; this counts what happened to them).
struct dispatch_loop_counters {
    std::uint64_t wakeups = 0;
    std::uint64_t sent = 0;          ///< frames queued for transmission
    std::uint64_t send_dropped = 0;  ///< frames to send that found the ring full or too large
    std::uint64_t truncated = 0;     ///< frames longer than the ring slot: not dispatched
    std::uint64_t foreign_mac = 0;   ///< frames not addressed to the interface's MAC: not dispatched
};

template <class Dispatcher>
class af_packet_dispatch_loop {
public:
    struct options {
        /// The interface towards the back ends (where forwarded packets go out).
        std::string interface;
        /// The interface towards clients, when it is another one: client packets come in there
        /// and (NAT modes) replies go out there. Empty: `interface` does both.
        std::string front_interface;
        /// Receive through the TPACKET_V3 ring (zero copy, fewest system calls at high rates)
        /// rather than recvmmsg. A ring block reaches user space only when it is full or after
        /// rx.block_timeout_ms: at low rates every packet waits that long, so the latency-first
        /// default is recvmmsg; turn the ring on for throughput (docs/io.md has the figures).
        bool rx_ring = false;
        rx_ring_options rx{};
        tx_ring_options tx{};
        batch_options batch{};                      ///< recvmmsg / sendmmsg batches
        std::optional<fanout_options> fanout{};     ///< several loops (threads) on one interface
        bool qdisc_bypass = true;
        std::uint32_t sweep_per_wakeup = 256;       ///< session table entries swept for expiry
    };

    /// Opens the rings (throws std::system_error with the interface and a hint, e.g. "needs
    /// CAP_NET_RAW: run as root").
    af_packet_dispatch_loop(boost::asio::io_context& io, Dispatcher& d, const options& o)
        : d_(d), o_(o), epoch_(std::chrono::steady_clock::now()) {
        ports_.push_back(std::make_unique<port>(io, o, o.interface));
        if (!o.front_interface.empty() && o.front_interface != o.interface)
            ports_.push_back(std::make_unique<port>(io, o, o.front_interface));
    }

    /// Starts waiting for frames; returns at once (the io_context runs the loop).
    void start() {
        running_ = true;
        refresh();
        for (std::size_t i = 0; i < ports_.size(); ++i) arm(i);
    }
    /// Stops after the current wake-up.
    void stop() noexcept {
        running_ = false;
        for (auto& p : ports_) p->rx().cancel();
    }

    [[nodiscard]] const dispatch_loop_counters& counters() const noexcept { return counters_; }
    /// Port 0 is `interface`; port 1, when there is one, `front_interface`.
    [[nodiscard]] std::size_t port_count() const noexcept { return ports_.size(); }
    /// The receive ring of a port (null without options::rx_ring), and its socket.
    [[nodiscard]] packet_rx_ring* rx_ring(std::size_t port = 0) noexcept { return ports_[port]->ring ? &*ports_[port]->ring : nullptr; }
    [[nodiscard]] packet_socket& socket(std::size_t port = 0) noexcept { return ports_[port]->sock; }
    /// The dispatcher's clock: milliseconds since the loop was made.
    [[nodiscard]] std::uint32_t now() const noexcept {
        return static_cast<std::uint32_t>(
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - epoch_).count());
    }

private:
    struct port {
        port(boost::asio::io_context& io, const options& o, const std::string& name)
            : mac(interface_mac(name)), sock(io, socket_options(o, name, true), o.batch) {
            if (o.rx_ring) ring.emplace(io, socket_options(o, name, true), o.rx);
        }
        mac_address mac;
        packet_socket sock;                  // sends always (sendmmsg); receives without the ring
        std::optional<packet_rx_ring> ring;  // receives, when options::rx_ring
        [[nodiscard]] detail::asio_descriptor& rx() noexcept {
            if (ring) return *ring;
            return sock;
        }
    };

    static packet_socket_options socket_options(const options& o, const std::string& name, bool receive) {
        packet_socket_options s;
        s.interface = name;
        s.ignore_outgoing = receive;  // never dispatch our own transmissions again
        s.qdisc_bypass = !receive && o.qdisc_bypass;
        if (receive) s.fanout = o.fanout;
        return s;
    }

    void refresh() {
        if constexpr (requires { d_.picker().refresh(d_); }) d_.picker().refresh(d_);
    }

    void arm(std::size_t i) {
        ports_[i]->rx().async_wait_readable([this, i](const boost::system::error_code& ec) {
            if (ec || !running_) return;
            drain(*ports_[i]);
            arm(i);
        });
    }

    void drain(port& in) {
        ++counters_.wakeups;
        const std::uint32_t t = now();
        port& back = *ports_[0];
        port& front = *ports_.back();
        const auto send = [&](const auto& r) {
            if (!sends(r.verdict)) return;
            port& out = towards_client(r.verdict) ? front : back;
            if (out.sock.send(r.out)) ++counters_.sent;
            else ++counters_.send_dropped;
        };
        // A dispatcher with process_burst() gets the frames of each receive batch (or ring
        // block) together, so that their session lookups overlap: at a million sessions that
        // is 66 instead of 296 ns a packet (docs/performance.md).
        const auto flush = [&] {
            if constexpr (bursts) {
                if (pending_ == 0) return;
                d_.process_burst(std::span<const std::span<std::byte>>(burst_.data(), pending_), t,
                                 std::span<const std::span<std::byte>>(burst_scratch_.data(), pending_),
                                 std::span<result_type>(results_.data(), pending_));
                for (std::size_t i = 0; i < pending_; ++i) send(results_[i]);
                pending_ = 0;
            }
        };
        const auto one = [&](std::span<std::byte> frame) {
            if (frame.size() < 6 || std::memcmp(frame.data(), in.mac.bytes.data(), 6) != 0) {
                ++counters_.foreign_mac;  // another host's frame (a flooding bridge), or broadcast
                return;
            }
            if constexpr (bursts) {
                burst_[pending_++] = frame;
                if (pending_ == burst_max) flush();
            } else {
                send(d_.process(frame, t, scratch_));
            }
        };
        if (in.ring) {
            in.ring->poll([&](const tpacket_frame& f) {
                if (f.truncated()) ++counters_.truncated;
                else one(f.data);
            }, flush);  // before the block goes back to the kernel
        } else {
            // recvmmsg's buffers stay valid until the next receive.
            while (in.sock.receive([&](std::span<std::byte> f, const sockaddr_ll&) { one(f); }) != 0) flush();
        }
        for (auto& p : ports_) p->sock.flush();
        d_.table().expire(t, o_.sweep_per_wakeup);
        refresh();  // between bursts: the cluster view's changes take effect here
    }

    using result_type = decltype(std::declval<Dispatcher&>().process(std::declval<std::span<std::byte>>(), 0U,
                                                                     std::declval<std::span<std::byte>>()));
    static constexpr bool bursts = requires(Dispatcher& d, std::span<const std::span<std::byte>> f, std::span<result_type> r) {
        d.process_burst(f, 0U, f, r);
    };
    static constexpr std::size_t burst_max = 64;
    static constexpr std::size_t scratch_size = 4096;  // a tunnel's output: the frame and 20 bytes

    Dispatcher& d_;
    options o_;
    std::vector<std::unique_ptr<port>> ports_;
    std::chrono::steady_clock::time_point epoch_;
    std::array<std::byte, scratch_size> scratch_{};
    // The burst being gathered: frames, a scratch buffer each, results.
    std::array<std::span<std::byte>, burst_max> burst_{};
    std::vector<std::byte> burst_scratch_mem_ = std::vector<std::byte>(bursts ? burst_max * scratch_size : 0);
    std::array<std::span<std::byte>, burst_max> burst_scratch_ = [this] {
        std::array<std::span<std::byte>, burst_max> a{};
        if (bursts)
            for (std::size_t i = 0; i < burst_max; ++i) a[i] = std::span<std::byte>(burst_scratch_mem_).subspan(i * scratch_size, scratch_size);
        return a;
    }();
    std::array<result_type, burst_max> results_{};
    std::size_t pending_ = 0;
    dispatch_loop_counters counters_;
    bool running_ = false;
};

}  // namespace clusternet::io
