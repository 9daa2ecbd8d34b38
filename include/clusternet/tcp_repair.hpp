// clusternet/tcp_repair.hpp -- capture a live Linux TCP connection into a handoff_state and
// recreate it on another socket (another node, another network namespace) with TCP_REPAIR.
//
// Design note. Linux's repair mode (TCP_REPAIR, since 3.5; TCP_REPAIR_WINDOW since 4.8) lets a
// privileged process (CAP_NET_ADMIN in the socket's network namespace) freeze a socket, read its
// hidden state and write it into a fresh socket; CRIU uses it to checkpoint and restore
// connections. clusternet follows the same procedure (learned from the kernel's
// net/ipv4/tcp.c and CRIU's description of its TCP support; no code taken):
//
//   capture (node A)                          restore (node B, maybe another namespace)
//   1. TCP_REPAIR = 1: frozen; the application  1. socket(); TCP_REPAIR = 1 (forces SO_REUSEADDR
//      can neither read nor write, close()         semantics, so a listener on the same port is no
//      sends neither FIN nor RST; a drop-all       obstacle)
//      socket filter: the client's segments
//      are ignored from now on (TCP retransmits)
//   2. TCP_INFO: state ESTABLISHED, options     2. bind(server address): the address must be local
//      (SACK, timestamps, window scaling),         on B (move it, or add it as an alias)
//      both window scales                       3. TCP_REPAIR_QUEUE + TCP_QUEUE_SEQ for each queue:
//   3. TCP_MAXSEG, TCP_TIMESTAMP,                  rcv_seq - R and snd_seq - S
//      TCP_REPAIR_WINDOW                        4. TCP_TIMESTAMP (the clock carries on), TCP_MAXSEG
//   4. SIOCINQ, SIOCOUTQ, SIOCOUTQNSD: the      5. connect(client address): in repair mode no SYN
//      queue lengths R, S and U                    is sent, the socket is ESTABLISHED at once
//   5. for each queue: TCP_REPAIR_QUEUE,        6. TCP_REPAIR_OPTIONS: MSS, window scales, SACK,
//      TCP_QUEUE_SEQ, recv(MSG_PEEK) of its        timestamps, as negotiated with the client
//      bytes                                    7. refill: the receive queue (R bytes), the sent
//   6. close the send window (TCP_REPAIR_WINDOW   part of the send queue (S - U bytes) in repair
//      with snd_wnd 0), so that the frozen         mode (the kernel counts them as sent, awaiting
//      socket's probes cannot send new bytes       an ACK)
//   7. hand the state over; then close() the    8. TCP_REPAIR_WINDOW; TCP_REPAIR = 0 (a window
//      socket while still in repair mode           probe resynchronises with the client)
//      (close_silently), or unfreeze() to       9. send the U never-sent bytes normally
//      resume locally if the handoff failed
//
// A frozen socket's timers still run, and without the filter it would still take segments: an
// ACK could reopen the closed window and a probe then send bytes the new owner never had, whose
// acknowledgements it would refuse for ever (seen in tests/e2e/tcp_handoff.sh before the filter
// and the closed window were added). After the handoff the client's packets must reach the new
// owner, never the old node's kernel (which, once the socket is closed, would answer them with a
// reset); the forwarder or the layer-4 switch sees to that.
//
// Errors: every call fills a std::error_code (category "clusternet.tcp_repair") whose message
// says what to do, and, when asked, a repair_diagnostic with the errno and the addresses; the
// overloads without an error_code throw std::system_error with the same text. These are control
// path calls (tens of system calls, microseconds); they allocate (the captured stream).
#pragma once

#include <clusternet/handoff_state.hpp>
#include <clusternet/io/detail/posix.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace clusternet {
namespace tcp_repair {

/// What failed, as a step a person can look into.
enum class errc : int {
    not_permitted = 1,   ///< TCP_REPAIR refused: no CAP_NET_ADMIN in the socket's namespace
    not_established,     ///< the connection is not ESTABLISHED (only those can be handed off)
    unsupported_family,  ///< not an IPv4 TCP socket
    query_failed,        ///< a getsockopt/ioctl of the capture failed
    queue_read_failed,   ///< peeking a queue returned fewer bytes than its length
    invalid_state,       ///< the state does not validate (handoff::validate)
    namespace_failed,    ///< the network namespace could not be entered or left
    socket_failed,       ///< socket() failed
    bind_failed,         ///< bind to the server address failed
    sequence_failed,     ///< TCP_QUEUE_SEQ / TCP_REPAIR_QUEUE refused
    connect_failed,      ///< the repair-mode connect failed (4-tuple already in use?)
    options_failed,      ///< TCP_REPAIR_OPTIONS or TCP_TIMESTAMP refused
    queue_restore_failed,///< refilling a queue failed
    window_failed,       ///< TCP_REPAIR_WINDOW refused
    unfreeze_failed,     ///< leaving repair mode failed
};

namespace detail {
class category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "clusternet.tcp_repair"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::not_permitted:
                return "TCP_REPAIR was refused: it needs CAP_NET_ADMIN in the socket's network namespace (run as "
                       "root, or grant the capability)";
            case errc::not_established:
                return "the connection is not ESTABLISHED: only established connections can be handed off (was it "
                       "closed or reset by the peer?)";
            case errc::unsupported_family:
                return "not an IPv4 TCP socket: handoff state version 1 carries IPv4 4-tuples only";
            case errc::query_failed:
                return "reading the connection's state (TCP_INFO, TCP_MAXSEG, TCP_TIMESTAMP, TCP_REPAIR_WINDOW, "
                       "queue lengths) failed: is this kernel built with TCP_REPAIR (3.5+, window 4.8+)?";
            case errc::queue_read_failed:
                return "peeking a socket queue in repair mode returned fewer bytes than the queue holds: a segment "
                       "arrived during the capture (keep the client quiet or hold its packets back), retry";
            case errc::invalid_state:
                return "the handoff state does not validate (see handoff::validate): it was not captured from an "
                       "established connection, or it was damaged";
            case errc::namespace_failed:
                return "could not enter (or return from) the network namespace: check the path (e.g. "
                       "/var/run/netns/NAME) and CAP_SYS_ADMIN";
            case errc::socket_failed: return "socket() failed: check the process's file descriptor limit";
            case errc::bind_failed:
                return "bind to the connection's server address failed: the address must be local on this node "
                       "(move it here, or add it as an alias) before the connection is restored";
            case errc::sequence_failed:
                return "setting a queue's sequence number (TCP_REPAIR_QUEUE / TCP_QUEUE_SEQ) was refused";
            case errc::connect_failed:
                return "the repair-mode connect failed: is the same 4-tuple already open on this node (restored "
                       "twice, or the old connection still here)?";
            case errc::options_failed:
                return "restoring the TCP options (TCP_REPAIR_OPTIONS, TCP_TIMESTAMP) was refused";
            case errc::queue_restore_failed:
                return "refilling a socket queue failed: the queue did not fit the socket's buffer (grant "
                       "CAP_NET_ADMIN for SO_SNDBUFFORCE, or raise net.core.wmem_max / rmem_max)";
            case errc::window_failed:
                return "TCP_REPAIR_WINDOW was refused: the window numbers disagree with the restored sequence "
                       "numbers (kernel older than 4.8, or damaged state)";
            case errc::unfreeze_failed: return "leaving repair mode (TCP_REPAIR = 0) failed";
        }
        return "unknown tcp_repair error";
    }
};
}  // namespace detail

[[nodiscard]] inline const std::error_category& category() noexcept {
    static const detail::category_impl instance;
    return instance;
}
[[nodiscard]] inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), category()}; }

}  // namespace tcp_repair
}  // namespace clusternet

template <>
struct std::is_error_code_enum<clusternet::tcp_repair::errc> : std::true_type {};

namespace clusternet {
namespace tcp_repair {

/// The details behind an error: the system call's errno and a sentence with the addresses.
struct diagnostic {
    errc what{};
    int sys_errno = 0;
    std::string text;
};

/// A file descriptor that closes itself (move-only): the I/O bindings' one.
using owned_fd = io::detail::unique_fd;

/// A captured connection: its state and its queued bytes (receive queue, then send queue).
struct captured {
    handoff_state state;
    std::vector<std::byte> stream;
    [[nodiscard]] std::span<const std::byte> recv_queue() const noexcept {
        return std::span<const std::byte>(stream).first(state.recv_queue_len);
    }
    [[nodiscard]] std::span<const std::byte> send_queue() const noexcept {
        return std::span<const std::byte>(stream).subspan(state.recv_queue_len);
    }
};

struct restore_options {
    /// Create the socket in this network namespace (e.g. "/var/run/netns/b"); empty: the
    /// calling thread's. The thread returns to its own namespace before restore() returns.
    std::string netns;
    /// Leave repair mode without the window probe (TCP_REPAIR_OFF_NO_WP).
    bool no_window_probe = false;
    /// Return the socket still frozen (repair mode, the client's segments ignored, the never-sent
    /// bytes not queued): the two-phase handoff's prepared copy. activate() makes it live once the
    /// old owner commits; close_silently() drops it (no FIN, no reset) if the old owner resumed.
    bool stay_frozen = false;
};

namespace detail {

inline bool fail(std::error_code& ec, diagnostic* d, errc what, int err, std::string text) {
    ec = make_error_code(what);
    if (d != nullptr) {
        d->what = what;
        d->sys_errno = err;
        d->text = std::move(text);
        if (err != 0) d->text += std::string(": ") + std::strerror(err);
    }
    return false;
}

inline std::string endpoint(ipv4_address a, std::uint16_t port) { return a.to_string() + ":" + std::to_string(port); }

template <class T>
inline bool set_opt(int fd, int level, int name, const T& v) noexcept {
    return ::setsockopt(fd, level, name, &v, sizeof v) == 0;
}
template <class T>
inline bool get_opt(int fd, int level, int name, T& v) noexcept {
    socklen_t len = sizeof v;
    return ::getsockopt(fd, level, name, &v, &len) == 0 && len == sizeof v;
}

inline sockaddr_in to_sockaddr(ipv4_address a, std::uint16_t port) noexcept {
    sockaddr_in s{};
    s.sin_family = AF_INET;
    s.sin_port = htons(port);
    s.sin_addr.s_addr = htonl(a.value);
    return s;
}

// Sends all of `data` into the queue selected in repair mode (or normally), in pieces the
// kernel takes, never blocking (restore() sizes the buffers first, and a restore that waited for
// the client's ACKs could wait for ever: they reach the new owner only after it has the
// connection). False on error (errno set; EAGAIN: the buffer was too small).
inline bool send_all(int fd, std::span<const std::byte> data) noexcept {
    while (!data.empty()) {
        const std::size_t piece = std::min<std::size_t>(data.size(), 64 * 1024);
        const ssize_t n = ::send(fd, data.data(), piece, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        if (n == 0) {
            errno = EIO;
            return false;
        }
        data = data.subspan(static_cast<std::size_t>(n));
    }
    return true;
}

inline bool peek_queue(int fd, int queue, std::uint32_t& seq, std::span<std::byte> out) noexcept {
    if (!set_opt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, queue)) return false;
    int s = 0;
    if (!get_opt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, s)) return false;
    seq = static_cast<std::uint32_t>(s);
    if (out.empty()) return true;
    const ssize_t n = ::recv(fd, out.data(), out.size(), MSG_PEEK | MSG_DONTWAIT);
    if (n < 0) return false;
    if (static_cast<std::size_t>(n) != out.size()) {
        errno = 0;
        return false;
    }
    return true;
}

/// Enters a network namespace for the calling thread and returns to the old one on destruction.
class netns_guard {
public:
    netns_guard() = default;
    bool enter(const std::string& path, int& err) noexcept {
        if (path.empty()) return true;
        old_.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
        if (!old_) { err = errno; return false; }
        const owned_fd target(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!target || ::setns(target.get(), CLONE_NEWNET) != 0) {
            err = errno;
            old_.reset();
            return false;
        }
        return true;
    }
    /// Returns to the original namespace; false (errno in err) when that fails.
    bool leave(int& err) noexcept {
        if (!old_) return true;
        const bool ok = ::setns(old_.get(), CLONE_NEWNET) == 0;
        if (!ok) err = errno;
        old_.reset();
        return ok;
    }
    ~netns_guard() {
        int err = 0;
        (void)leave(err);
    }
    netns_guard(const netns_guard&) = delete;
    netns_guard& operator=(const netns_guard&) = delete;

private:
    owned_fd old_;
};

}  // namespace detail

/// Opens a socket inside the network namespace at `netns_path` (empty: the current one). The
/// socket stays in that namespace for its whole life; the calling thread returns to its own.
/// Needs CAP_SYS_ADMIN for another namespace. On error returns an empty owned_fd and sets ec.
[[nodiscard]] inline owned_fd socket_in_netns(const std::string& netns_path, int domain, int type, int protocol,
                                              std::error_code& ec, diagnostic* diag = nullptr) {
    ec.clear();
    detail::netns_guard ns;
    int err = 0;
    if (!ns.enter(netns_path, err)) {
        detail::fail(ec, diag, errc::namespace_failed, err, "entering network namespace " + netns_path);
        return {};
    }
    owned_fd fd(::socket(domain, type | SOCK_CLOEXEC, protocol));
    const int socket_err = errno;
    if (!ns.leave(err)) {
        detail::fail(ec, diag, errc::namespace_failed, err, "returning from network namespace " + netns_path);
        return {};
    }
    if (!fd) detail::fail(ec, diag, errc::socket_failed, socket_err, "socket()");
    return fd;
}

/// Puts a connected socket in repair mode: it stops talking to the application and close()
/// becomes silent. Errors: not_permitted (no CAP_NET_ADMIN, or a state repair mode refuses).
inline void freeze(int fd, std::error_code& ec, diagnostic* diag = nullptr) {
    ec.clear();
    if (!detail::set_opt(fd, IPPROTO_TCP, TCP_REPAIR, int{TCP_REPAIR_ON}))
        detail::fail(ec, diag, errc::not_permitted, errno, "setsockopt(TCP_REPAIR, 1)");
}

namespace detail {
// A classic BPF socket filter that accepts nothing ("ret #0").
inline bool ignore_input(int fd) noexcept {
    static sock_filter drop_all[] = {{static_cast<std::uint16_t>(BPF_RET | BPF_K), 0, 0, 0}};
    const sock_fprog prog{1, drop_all};
    return ::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) == 0;
}
inline bool set_window(int fd, const tcp_window_state& w) noexcept {
    const tcp_repair_window rw{w.snd_wl1, w.snd_wnd, w.max_window, w.rcv_wnd, w.rcv_wup};
    return set_opt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, rw);
}
}  // namespace detail

/// Leaves repair mode: the connection carries on here (the fallback when a handoff fails).
/// Pass the captured state of a socket that capture() froze, so that its real send window,
/// which capture() closed, is put back.
inline void unfreeze(int fd, std::error_code& ec, diagnostic* diag = nullptr, const handoff_state* captured_state = nullptr,
                     bool window_probe = true) {
    ec.clear();
    if (captured_state != nullptr && !detail::set_window(fd, captured_state->window)) {
        detail::fail(ec, diag, errc::window_failed, errno, "setsockopt(TCP_REPAIR_WINDOW) to reopen the send window");
        return;
    }
    int unused = 0;
    if (::setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &unused, sizeof unused) != 0 && errno != ENOENT) {
        detail::fail(ec, diag, errc::unfreeze_failed, errno, "detaching the drop-all socket filter");
        return;
    }
    const int off = window_probe ? TCP_REPAIR_OFF : TCP_REPAIR_OFF_NO_WP;
    if (!detail::set_opt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, int{TCP_NO_QUEUE}) ||
        !detail::set_opt(fd, IPPROTO_TCP, TCP_REPAIR, off)) {
        detail::fail(ec, diag, errc::unfreeze_failed, errno, "setsockopt(TCP_REPAIR, 0)");
        return;
    }
    // Leaving repair mode clears the socket's address reuse (net/ipv4/tcp.c sets sk_reuse to
    // SK_NO_REUSE), whatever it had before the freeze. The connection's TIME_WAIT would then keep
    // a server's listener on the same address and port from binding again for a minute (a
    // restarted node: "Address already in use"). Servers set SO_REUSEADDR on listeners and
    // accepted sockets inherit it; it is put back here, where it only affects later binds.
    (void)detail::set_opt(fd, SOL_SOCKET, SO_REUSEADDR, int{1});
}

/// Closes a frozen socket without a FIN or a reset reaching the client (repair-mode close).
/// Precondition: the socket is in repair mode (capture() leaves it so).
inline void close_silently(owned_fd& fd) noexcept { fd.reset(); }

/// Freezes `fd` (if it is not frozen yet) and reads everything a restore needs. The socket is
/// left frozen with its send window closed (see the note in the body): close_silently() it once
/// the new owner has it, or unfreeze(fd, ec, diag, &state) it to resume. On an error after the
/// freeze the socket stays frozen too (unfreeze() it to carry on locally).
/// `chunk_size` is the continuation chunk size written into the state.
[[nodiscard]] inline captured capture(int fd, std::error_code& ec, diagnostic* diag = nullptr,
                                      std::uint16_t chunk_size = handoff::default_chunk_size) {
    ec.clear();
    captured c;
    handoff_state& s = c.state;
    sockaddr_in local{}, peer{};
    socklen_t ll = sizeof local, pl = sizeof peer;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0 ||
        ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0) {
        const int e = errno;
        detail::fail(ec, diag, e == ENOTCONN ? errc::not_established : errc::query_failed, e, "getsockname/getpeername");
        return c;
    }
    if (local.sin_family != AF_INET || peer.sin_family != AF_INET) {
        detail::fail(ec, diag, errc::unsupported_family, 0, "address family " + std::to_string(local.sin_family));
        return c;
    }
    s.socket.server_ip = ipv4_address(ntohl(local.sin_addr.s_addr));
    s.socket.server_port = ntohs(local.sin_port);
    s.socket.client_ip = ipv4_address(ntohl(peer.sin_addr.s_addr));
    s.socket.client_port = ntohs(peer.sin_port);
    const std::string who = detail::endpoint(s.socket.client_ip, s.socket.client_port) + " <-> " +
                            detail::endpoint(s.socket.server_ip, s.socket.server_port);

    int repair = 0;
    if (!detail::get_opt(fd, IPPROTO_TCP, TCP_REPAIR, repair) || repair == 0) {
        if (!detail::set_opt(fd, IPPROTO_TCP, TCP_REPAIR, int{TCP_REPAIR_ON})) {
            detail::fail(ec, diag, errc::not_permitted, errno, "setsockopt(TCP_REPAIR, 1) on " + who);
            return c;
        }
    }
    // From here on the socket ignores the client's segments (TCP runs a socket's filter on every
    // segment it receives, and drops what the filter refuses, without a reply): the state read
    // below cannot change under us, and no ACK can reopen the window closed at the end. The
    // client's TCP repeats whatever it sent meanwhile, to the new owner once it is reachable.
    if (!detail::ignore_input(fd)) {
        detail::fail(ec, diag, errc::query_failed, errno, "attaching the drop-all socket filter to " + who);
        return c;
    }
    tcp_info info{};
    socklen_t il = sizeof info;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &il) != 0) {
        detail::fail(ec, diag, errc::query_failed, errno, "getsockopt(TCP_INFO) on " + who);
        return c;
    }
    if (info.tcpi_state != TCP_ESTABLISHED) {
        detail::fail(ec, diag, errc::not_established, 0,
                     who + " is in TCP state " + std::to_string(info.tcpi_state) + ", not ESTABLISHED (1)");
        return c;
    }
    s.tcp_state = handoff_state::tcp_established;
    s.sack_permitted = (info.tcpi_options & TCPI_OPT_SACK) != 0;
    s.timestamps = (info.tcpi_options & TCPI_OPT_TIMESTAMPS) != 0;
    s.window_scaling = (info.tcpi_options & TCPI_OPT_WSCALE) != 0;
    s.snd_wscale = s.window_scaling ? info.tcpi_snd_wscale : 0;
    s.rcv_wscale = s.window_scaling ? info.tcpi_rcv_wscale : 0;

    int mss = 0, inq = 0, outq = 0, unsent = 0;
    std::uint32_t ts = 0;
    tcp_repair_window w{};
    if (!detail::get_opt(fd, IPPROTO_TCP, TCP_MAXSEG, mss) || !detail::get_opt(fd, IPPROTO_TCP, TCP_TIMESTAMP, ts) ||
        !detail::get_opt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, w) || ::ioctl(fd, SIOCINQ, &inq) != 0 ||
        ::ioctl(fd, SIOCOUTQ, &outq) != 0 || ::ioctl(fd, SIOCOUTQNSD, &unsent) != 0) {
        detail::fail(ec, diag, errc::query_failed, errno, "reading MSS, timestamp, window or queue lengths of " + who);
        return c;
    }
    if (inq < 0 || outq < 0 || unsent < 0 || unsent > outq) {
        detail::fail(ec, diag, errc::query_failed, 0, "inconsistent queue lengths of " + who);
        return c;
    }
    s.mss = static_cast<std::uint16_t>(mss);
    s.timestamp = ts;
    s.window = {w.snd_wl1, w.snd_wnd, w.max_window, w.rcv_wnd, w.rcv_wup};
    s.recv_queue_len = static_cast<std::uint32_t>(inq);
    s.send_queue_len = static_cast<std::uint32_t>(outq);
    s.unsent_len = static_cast<std::uint32_t>(unsent);
    s.chunk_size = chunk_size;

    c.stream.resize(static_cast<std::size_t>(s.stream_size()));
    const std::span<std::byte> all(c.stream);
    if (!detail::peek_queue(fd, TCP_RECV_QUEUE, s.rcv_seq, all.first(s.recv_queue_len)) ||
        !detail::peek_queue(fd, TCP_SEND_QUEUE, s.snd_seq, all.subspan(s.recv_queue_len))) {
        detail::fail(ec, diag, errc::queue_read_failed, errno,
                     "peeking the queues of " + who + " (R=" + std::to_string(inq) + ", S=" + std::to_string(outq) + ")");
        return c;
    }
    // A frozen socket's timers still run: a tail loss probe would send bytes past the captured
    // snd_nxt, the client would acknowledge them, and the new owner would refuse those ACKs
    // ("data not sent yet") for ever. So no queue stays selected (with the send queue selected,
    // tcp_write_xmit marks the unsent bytes sent without any window test, and the next probe puts
    // them on the wire), and the send window is closed (the filter keeps it closed): the old node
    // can then only repeat bytes it had sent before the capture, which the new owner holds too,
    // and send zero-window probes.
    tcp_window_state closed = s.window;
    closed.snd_wnd = 0;
    if (!detail::set_opt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, int{TCP_NO_QUEUE}) || !detail::set_window(fd, closed)) {
        detail::fail(ec, diag, errc::window_failed, errno, "closing the send window of the frozen " + who);
        return c;
    }
    if (handoff::validate(s) != handoff::error::none) {
        detail::fail(ec, diag, errc::invalid_state, 0,
                     "captured state of " + who + ": " + std::string(handoff::to_string(handoff::validate(s))));
    }
    return c;
}

/// Recreates the connection `s` with its queued bytes `stream` (receive queue, then send
/// queue) on a new socket, optionally in another network namespace, and returns it out of
/// repair mode: the client sees the same connection carry on. The server address must be local
/// where the socket is made. On error returns an empty owned_fd (nothing is left behind).
[[nodiscard]] inline owned_fd restore(const handoff_state& s, std::span<const std::byte> stream,
                                      const restore_options& opt, std::error_code& ec, diagnostic* diag = nullptr) {
    ec.clear();
    if (const auto e = handoff::validate(s); e != handoff::error::none || stream.size() != s.stream_size()) {
        detail::fail(ec, diag, errc::invalid_state, 0,
                     e != handoff::error::none ? std::string(handoff::to_string(e)) : "stream size is not R + S");
        return {};
    }
    owned_fd fd = socket_in_netns(opt.netns, AF_INET, SOCK_STREAM, IPPROTO_TCP, ec, diag);
    if (!fd) return {};
    const int f = fd.get();
    const std::string local = detail::endpoint(s.socket.server_ip, s.socket.server_port);
    const std::string remote = detail::endpoint(s.socket.client_ip, s.socket.client_port);

    if (!detail::set_opt(f, IPPROTO_TCP, TCP_REPAIR, int{TCP_REPAIR_ON})) {
        detail::fail(ec, diag, errc::not_permitted, errno, "setsockopt(TCP_REPAIR, 1)");
        return {};
    }
    // Buffers that hold the queues we are about to refill, whatever net.core.wmem_max says (the
    // FORCE options need CAP_NET_ADMIN, which repair mode needs anyway). The kernel doubles the
    // value for its bookkeeping; twice the bytes covers the per-buffer overhead.
    const auto buffer_for = [](std::uint64_t n) {
        return static_cast<int>(std::min<std::uint64_t>(2 * n + (1u << 20), 1u << 30));
    };
    if (!detail::set_opt(f, SOL_SOCKET, SO_SNDBUFFORCE, buffer_for(s.send_queue_len)))
        (void)detail::set_opt(f, SOL_SOCKET, SO_SNDBUF, buffer_for(s.send_queue_len));
    if (!detail::set_opt(f, SOL_SOCKET, SO_RCVBUFFORCE, buffer_for(s.recv_queue_len)))
        (void)detail::set_opt(f, SOL_SOCKET, SO_RCVBUF, buffer_for(s.recv_queue_len));

    const sockaddr_in la = detail::to_sockaddr(s.socket.server_ip, s.socket.server_port);
    if (::bind(f, reinterpret_cast<const sockaddr*>(&la), sizeof la) != 0) {
        detail::fail(ec, diag, errc::bind_failed, errno, "bind(" + local + ")");
        return {};
    }
    const int rq = TCP_RECV_QUEUE, sq = TCP_SEND_QUEUE;
    const int rseq = static_cast<int>(s.rcv_seq - s.recv_queue_len);
    const int sseq = static_cast<int>(s.snd_seq - s.send_queue_len);
    if (!detail::set_opt(f, IPPROTO_TCP, TCP_REPAIR_QUEUE, rq) || !detail::set_opt(f, IPPROTO_TCP, TCP_QUEUE_SEQ, rseq) ||
        !detail::set_opt(f, IPPROTO_TCP, TCP_REPAIR_QUEUE, sq) || !detail::set_opt(f, IPPROTO_TCP, TCP_QUEUE_SEQ, sseq)) {
        detail::fail(ec, diag, errc::sequence_failed, errno, "TCP_QUEUE_SEQ for " + local);
        return {};
    }
    if (s.timestamps && !detail::set_opt(f, IPPROTO_TCP, TCP_TIMESTAMP, s.timestamp)) {
        detail::fail(ec, diag, errc::options_failed, errno, "setsockopt(TCP_TIMESTAMP)");
        return {};
    }
    // The MSS before the connect: the repair-mode connect sizes segments from the clamp it finds
    // then (536 by default), and TCPOPT_MAXSEG afterwards does not resize them. TCP_MAXSEG takes
    // at most 32767 (loopback's 65483 stays clamped there, harmlessly).
    if (!detail::set_opt(f, IPPROTO_TCP, TCP_MAXSEG, std::min(int{s.mss}, 32767))) {
        detail::fail(ec, diag, errc::options_failed, errno, "setsockopt(TCP_MAXSEG, " + std::to_string(s.mss) + ")");
        return {};
    }
    const sockaddr_in ra = detail::to_sockaddr(s.socket.client_ip, s.socket.client_port);
    if (::connect(f, reinterpret_cast<const sockaddr*>(&ra), sizeof ra) != 0) {
        detail::fail(ec, diag, errc::connect_failed, errno, "repair-mode connect " + local + " -> " + remote);
        return {};
    }
    tcp_repair_opt opts[4]{};
    unsigned n = 0;
    opts[n++] = {TCPOPT_MAXSEG, s.mss};
    if (s.window_scaling) opts[n++] = {TCPOPT_WINDOW, std::uint32_t{s.snd_wscale} | (std::uint32_t{s.rcv_wscale} << 16)};
    if (s.sack_permitted) opts[n++] = {TCPOPT_SACK_PERMITTED, 0};
    if (s.timestamps) opts[n++] = {TCPOPT_TIMESTAMP, 0};
    if (::setsockopt(f, IPPROTO_TCP, TCP_REPAIR_OPTIONS, opts, static_cast<socklen_t>(n * sizeof opts[0])) != 0) {
        detail::fail(ec, diag, errc::options_failed, errno, "setsockopt(TCP_REPAIR_OPTIONS)");
        return {};
    }
    const auto recvq = stream.first(s.recv_queue_len);
    const auto sent = stream.subspan(s.recv_queue_len, s.send_queue_len - s.unsent_len);
    const auto unsent = stream.subspan(s.recv_queue_len + s.send_queue_len - s.unsent_len);
    if (!detail::set_opt(f, IPPROTO_TCP, TCP_REPAIR_QUEUE, rq) || !detail::send_all(f, recvq) ||
        !detail::set_opt(f, IPPROTO_TCP, TCP_REPAIR_QUEUE, sq) || !detail::send_all(f, sent)) {
        detail::fail(ec, diag, errc::queue_restore_failed, errno,
                     "refilling the queues of " + local + " (R=" + std::to_string(s.recv_queue_len) +
                         ", S-U=" + std::to_string(sent.size()) + ")");
        return {};
    }
    if (!detail::set_window(f, s.window)) {
        detail::fail(ec, diag, errc::window_failed, errno, "setsockopt(TCP_REPAIR_WINDOW)");
        return {};
    }
    if (opt.stay_frozen) {
        // Prepared, not live: no queue selected (see capture()) and the client ignored, so that
        // this copy neither answers nor changes until activate(); its timers can at most repeat
        // bytes the old owner holds too.
        if (!detail::set_opt(f, IPPROTO_TCP, TCP_REPAIR_QUEUE, int{TCP_NO_QUEUE}) || !detail::ignore_input(f)) {
            detail::fail(ec, diag, errc::window_failed, errno, "keeping the restored " + local + " frozen");
            return {};
        }
        return fd;
    }
    if (!detail::set_opt(f, IPPROTO_TCP, TCP_REPAIR_QUEUE, int{TCP_NO_QUEUE}) ||
        !detail::set_opt(f, IPPROTO_TCP, TCP_REPAIR, opt.no_window_probe ? TCP_REPAIR_OFF_NO_WP : TCP_REPAIR_OFF)) {
        detail::fail(ec, diag, errc::unfreeze_failed, errno, "setsockopt(TCP_REPAIR, 0)");
        return {};
    }
    if (!detail::send_all(f, unsent)) {
        detail::fail(ec, diag, errc::queue_restore_failed, errno,
                     "sending the " + std::to_string(unsent.size()) + " never-sent bytes");
        return {};
    }
    return fd;
}

/// Makes a copy restored with `stay_frozen` live: leaves repair mode (with the window probe
/// unless `window_probe` is false) and sends the never-sent bytes of `stream`. The second phase
/// of a two-phase handoff, once the old owner has committed. On error the socket may be live
/// with part of the never-sent bytes queued; the caller should reset it.
inline void activate(int fd, const handoff_state& s, std::span<const std::byte> stream, std::error_code& ec,
                     diagnostic* diag = nullptr, bool window_probe = true) {
    ec.clear();
    if (stream.size() != s.stream_size()) {
        detail::fail(ec, diag, errc::invalid_state, 0, "stream size is not R + S");
        return;
    }
    unfreeze(fd, ec, diag, nullptr, window_probe);
    if (ec) return;
    if (!detail::send_all(fd, stream.subspan(s.recv_queue_len + s.send_queue_len - s.unsent_len)))
        detail::fail(ec, diag, errc::queue_restore_failed, errno,
                     "sending the " + std::to_string(s.unsent_len) + " never-sent bytes");
}

// Throwing forms: std::system_error carrying the error code and the diagnostic's text.
namespace detail {
[[noreturn]] inline void throw_repair(const std::error_code& ec, const diagnostic& d) {
    throw std::system_error(ec, d.text);
}
}  // namespace detail

[[nodiscard]] inline captured capture(int fd, std::uint16_t chunk_size = handoff::default_chunk_size) {
    std::error_code ec;
    diagnostic d;
    captured c = capture(fd, ec, &d, chunk_size);
    if (ec) detail::throw_repair(ec, d);
    return c;
}
[[nodiscard]] inline owned_fd restore(const handoff_state& s, std::span<const std::byte> stream,
                                      const restore_options& opt = {}) {
    std::error_code ec;
    diagnostic d;
    owned_fd fd = restore(s, stream, opt, ec, &d);
    if (ec) detail::throw_repair(ec, d);
    return fd;
}

}  // namespace tcp_repair
}  // namespace clusternet
