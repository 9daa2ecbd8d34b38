// cn-handoff-demo: a real TCP handoff between two network namespaces, its state carried in
// authenticated LCCP messages on raw IP (protocol 253).
//
//   cn-handoff-demo client --connect IP:PORT --sizes N[,N...] [--seed S] [--pause-ms MS]
//       Connects, and for each size sends "GET <size> <seed>\n" and reads and verifies <size>
//       bytes of the demo's pattern (pausing MS ms before reading the first response, a slow
//       reader). Exits 0 when every byte of every response was right.
//
//   cn-handoff-demo serve --ns-a PATH --ns-b PATH --listen IP:PORT --a-addr IP --b-addr IP
//                         [--key HEX32] [--pre-bytes N] [--chunk-size C] [--switch-cmd CMD]
//                         [--stranger-addr IP] [--hold-cmd CMD] [--await-in-flight 1] [--deadline-ms MS]
//       Node A (namespace PATH a) listens on IP:PORT and accepts one connection. It peeks at the
//       request without reading it (it stays in the receive queue, as a distributor's does),
//       writes up to N bytes of the response without blocking (so the send queue holds data; with
//       --hold-cmd A first runs CMD, e.g. one that holds the client's packets back, and with
//       --await-in-flight 1 it then waits until some of them are sent and unacknowledged), and hands the
//       connection off to node B: capture with TCP_REPAIR, one handoff_request plus handoff_data
//       chunks sealed with the cluster key and sent A -> B on raw IP, reassembly and a frozen
//       restore in namespace B, a handoff_reply B -> A, then CMD (re-points the client's route
//       to B), a silent close of A's socket and a handoff_commit A -> B, on which B's copy goes
//       live (the two-phase decision: docs/lccp.md). B reads the request from the restored socket, sends the rest
//       of the response and serves the client's later requests. Afterwards A sends B three bad
//       messages (wrong key, altered, and from IP, an address of A's that is no member), which B must reject and count.
//       Prints the handoff's timings (capture to restored, in microseconds) and B's counters.
//       If B does not have every message by its deadline (MS, default 1000; LCCP does not
//       retransmit), it answers handoff_reply status incomplete (or nothing, if even the request
//       was lost); B repeats an ok reply until A's decision reaches it. Without an ok reply by
//       its own deadline (twice MS) A leaves repair mode, serves the client itself and tells B,
//       which drops its frozen copy silently: the client never notices the failed attempt.
//
// The program is single-threaded; it switches namespaces with setns() only while it creates a
// socket (tcp_repair::socket_in_netns), so every socket lives in its node's namespace.
#include <clusternet/handoff_state.hpp>
#include <clusternet/lccp.hpp>
#include <clusternet/tcp_repair.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cn = clusternet;
namespace lccp = clusternet::lccp;
namespace repair = clusternet::tcp_repair;
using clock_type = std::chrono::steady_clock;

namespace {

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "cn-handoff-demo: %s\n", what.c_str());
    std::exit(1);
}
void check(const std::error_code& ec, const repair::diagnostic& d, const char* step) {
    if (ec) die(std::string(step) + ": " + ec.message() + " (" + d.text + ")");
}

// --- the demo's response pattern: byte i of the response to seed s -----------------------------
std::uint64_t mix(std::uint64_t x) {  // splitmix64's finaliser
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}
void fill_pattern(std::uint64_t seed, std::uint64_t offset, std::span<std::byte> out) {
    for (std::size_t i = 0; i < out.size(); ++i) {
        const std::uint64_t pos = offset + i;
        out[i] = std::byte(static_cast<unsigned char>(mix(seed ^ (pos / 8) * 0x100000001B3ULL) >> (8 * (pos % 8))));
    }
}

struct endpoint {
    cn::ipv4_address ip;
    std::uint16_t port = 0;
};
std::optional<endpoint> parse_endpoint(std::string_view s) {
    const auto colon = s.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    const auto ip = cn::ipv4_address::parse(s.substr(0, colon));
    const int port = std::atoi(std::string(s.substr(colon + 1)).c_str());
    if (!ip || port <= 0 || port > 65535) return std::nullopt;
    return endpoint{*ip, static_cast<std::uint16_t>(port)};
}
sockaddr_in to_sockaddr(cn::ipv4_address a, std::uint16_t port) {
    sockaddr_in s{};
    s.sin_family = AF_INET;
    s.sin_port = htons(port);
    s.sin_addr.s_addr = htonl(a.value);
    return s;
}

bool wait_readable(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1;
}

void send_all(int fd, std::span<const std::byte> data) {
    while (!data.empty()) {
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die(std::string("send: ") + std::strerror(errno));
        data = data.subspan(static_cast<std::size_t>(n));
    }
}

// Reads one "\n"-terminated line (consuming it), or nullopt at EOF. Dies after 20 s of silence.
std::optional<std::string> read_line(int fd) {
    std::string line;
    for (;;) {
        if (!wait_readable(fd, 20000)) die("timed out waiting for a request");
        char c = 0;
        const ssize_t n = ::recv(fd, &c, 1, 0);
        if (n == 0) return line.empty() ? std::nullopt : std::optional<std::string>(line);
        if (n < 0) die(std::string("recv: ") + std::strerror(errno));
        if (c == '\n') return line;
        line.push_back(c);
        if (line.size() > 200) die("request line too long");
    }
}

bool parse_request(const std::string& line, std::uint64_t& size, std::uint64_t& seed) {
    unsigned long long a = 0, b = 0;
    if (std::sscanf(line.c_str(), "GET %llu %llu", &a, &b) != 2) return false;
    size = a;
    seed = b;
    return true;
}

void send_pattern(int fd, std::uint64_t seed, std::uint64_t from, std::uint64_t to) {
    std::vector<std::byte> buf(64 * 1024);
    for (std::uint64_t off = from; off < to;) {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), to - off));
        fill_pattern(seed, off, std::span(buf).first(n));
        send_all(fd, std::span(buf).first(n));
        off += n;
    }
}

// Writes up to `n` bytes of the response without blocking (as much as the send buffer takes);
// returns how many it wrote.
std::uint64_t send_pattern_nonblocking(int fd, std::uint64_t seed, std::uint64_t n) {
    std::vector<std::byte> buf(64 * 1024);
    std::uint64_t off = 0;
    while (off < n) {
        const std::size_t len = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), n - off));
        fill_pattern(seed, off, std::span(buf).first(len));
        const ssize_t w = ::send(fd, buf.data(), len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die(std::string("send: ") + std::strerror(errno));
        off += static_cast<std::uint64_t>(w);
    }
    return off;
}

// --- client -----------------------------------------------------------------------------------
int run_client(const endpoint& server, const std::vector<std::uint64_t>& sizes, std::uint64_t seed, int pause_ms) {
    repair::owned_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) die("socket");
    const sockaddr_in sa = to_sockaddr(server.ip, server.port);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0)
        die(std::string("connect: ") + std::strerror(errno));
    std::uint64_t total = 0;
    std::vector<std::byte> got(64 * 1024), want(64 * 1024);
    for (std::size_t r = 0; r < sizes.size(); ++r) {
        const std::uint64_t s = seed + r;
        const std::string req = "GET " + std::to_string(sizes[r]) + " " + std::to_string(s) + "\n";
        send_all(fd.get(), std::as_bytes(std::span(req.data(), req.size())));
        std::uint64_t off = 0;
        // A slow reader: the server's queue fills up (and part of it stays unsent) meanwhile.
        if (r == 0 && pause_ms > 0) ::usleep(static_cast<useconds_t>(pause_ms) * 1000);
        while (off < sizes[r]) {
            if (!wait_readable(fd.get(), 20000)) die("timed out after " + std::to_string(off) + " bytes of response " + std::to_string(r));
            const std::size_t want_n = static_cast<std::size_t>(std::min<std::uint64_t>(got.size(), sizes[r] - off));
            const ssize_t n = ::recv(fd.get(), got.data(), want_n, 0);
            if (n == 0) die("connection closed after " + std::to_string(off) + " bytes of response " + std::to_string(r));
            if (n < 0) die(std::string("recv: ") + std::strerror(errno) + " after " + std::to_string(off) + " bytes");
            fill_pattern(s, off, std::span(want).first(static_cast<std::size_t>(n)));
            if (std::memcmp(got.data(), want.data(), static_cast<std::size_t>(n)) != 0)
                die("response " + std::to_string(r) + " differs from the pattern near byte " + std::to_string(off));
            off += static_cast<std::uint64_t>(n);
        }
        total += off;
        std::printf("client: response %zu: %llu bytes verified\n", r, static_cast<unsigned long long>(off));
    }
    std::printf("client: OK, one connection, %zu responses, %llu bytes verified\n", sizes.size(),
                static_cast<unsigned long long>(total));
    return 0;
}

// --- server (nodes A and B) --------------------------------------------------------------------
struct serve_config {
    std::string ns_a, ns_b, switch_cmd, hold_cmd;
    endpoint listen;
    cn::ipv4_address a_addr, b_addr;
    std::optional<cn::ipv4_address> stranger;  ///< an address of node A's that is no member
    cn::siphash_key key{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
    std::uint64_t pre_bytes = 65536;
    std::uint16_t chunk_size = cn::handoff::default_chunk_size;
    bool await_in_flight = false;  ///< after --hold-cmd, wait until some bytes are sent and unacknowledged
    int deadline_ms = 1000;  ///< how long B waits for a handoff's messages, and A for the reply
};

repair::owned_fd raw_socket(const std::string& ns, cn::ipv4_address bind_to) {
    std::error_code ec;
    repair::diagnostic d;
    repair::owned_fd fd = repair::socket_in_netns(ns, AF_INET, SOCK_RAW, lccp::default_ip_protocol, ec, &d);
    check(ec, d, "raw socket");
    const sockaddr_in sa = to_sockaddr(bind_to, 0);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0)
        die("bind raw socket to " + bind_to.to_string() + ": " + std::strerror(errno));
    const int buf = 8 << 20;
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf);
    return fd;
}

void send_datagram(int fd, cn::ipv4_address to, std::span<const std::byte> bytes) {
    const sockaddr_in sa = to_sockaddr(to, 0);
    if (::sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) !=
        static_cast<ssize_t>(bytes.size()))
        die(std::string("sendto: ") + std::strerror(errno));
}

// One raw-IP datagram: the sender and the LCCP bytes after the IP header (which a raw socket keeps).
struct datagram {
    cn::ipv4_address from;
    std::span<const std::byte> payload;
};
std::optional<datagram> receive(int fd, std::vector<std::byte>& buf, int timeout_ms) {
    if (!wait_readable(fd, timeout_ms)) return std::nullopt;
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n < 20) return std::nullopt;
    const std::size_t ihl = (std::to_integer<std::size_t>(buf[0]) & 0x0F) * 4;
    const std::size_t total = cn::load_be16(buf.data() + 2);
    if (ihl < 20 || total > static_cast<std::size_t>(n) || total < ihl) return std::nullopt;
    return datagram{cn::ipv4_address(cn::load_be32(buf.data() + 12)), std::span<const std::byte>(buf).subspan(ihl, total - ihl)};
}

// Bytes sent and not yet acknowledged (SIOCOUTQ - SIOCOUTQNSD).
int sent_unacked(int fd) {
    int outq = 0, unsent = 0;
    if (::ioctl(fd, SIOCOUTQ, &outq) != 0 || ::ioctl(fd, SIOCOUTQNSD, &unsent) != 0) die("ioctl(SIOCOUTQ)");
    return outq - unsent;
}

// Component initialisation: A's distributor announces itself to B's, B answers init_ack. This
// also resolves the path's neighbours before the handoff is timed.
void initialise(const serve_config& cfg, int lccp_a, int lccp_b, lccp::inbound<>& in_a, lccp::inbound<>& in_b,
                std::vector<std::byte>& out, std::vector<std::byte>& rx) {
    lccp::message init;
    init.receptor = lccp::component::distributor;
    init.cmd = lccp::command::init;
    init.data = std::uint32_t{static_cast<std::uint8_t>(lccp::component::distributor)} << 24;
    auto enc = lccp::encode(init, cfg.key, out);
    if (!enc) die("encode init");
    send_datagram(lccp_a, cfg.b_addr, std::span(out).first(enc.size));
    const auto got = receive(lccp_b, rx, 2000);
    if (!got || !in_b.accept(got->from, got->payload)) die("node B: no valid init from A within 2 s");
    lccp::message ack;
    ack.receptor = lccp::component::distributor;
    ack.cmd = lccp::command::init_ack;
    ack.data = static_cast<std::uint32_t>(lccp::status::ok);
    enc = lccp::encode(ack, cfg.key, out);
    if (!enc) die("encode init_ack");
    send_datagram(lccp_b, cfg.a_addr, std::span(out).first(enc.size));
    const auto back = receive(lccp_a, rx, 2000);
    if (!back || !in_a.accept(back->from, back->payload)) die("node A: no valid init_ack from B within 2 s");
}

double us(clock_type::time_point a, clock_type::time_point b) {
    return std::chrono::duration<double, std::micro>(b - a).count();
}

int run_serve(const serve_config& cfg) {
    std::error_code ec;
    repair::diagnostic d;

    // Node A: the listener and its LCCP socket; node B: its LCCP socket.
    repair::owned_fd listener = repair::socket_in_netns(cfg.ns_a, AF_INET, SOCK_STREAM, 0, ec, &d);
    check(ec, d, "listener");
    const int one = 1;
    (void)::setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const sockaddr_in la = to_sockaddr(cfg.listen.ip, cfg.listen.port);
    if (::bind(listener.get(), reinterpret_cast<const sockaddr*>(&la), sizeof la) != 0 || ::listen(listener.get(), 4) != 0)
        die("listen on " + cfg.listen.ip.to_string() + ":" + std::to_string(cfg.listen.port) + ": " + std::strerror(errno));
    repair::owned_fd lccp_a = raw_socket(cfg.ns_a, cfg.a_addr);
    repair::owned_fd lccp_b = raw_socket(cfg.ns_b, cfg.b_addr);
    lccp::member_filter<> members_of_a, members_of_b;
    members_of_a.add(cfg.b_addr);
    members_of_b.add(cfg.a_addr);
    lccp::inbound<> inbound_a(cfg.key, members_of_a), inbound_b(cfg.key, members_of_b);
    std::vector<std::byte> out(lccp::max_message_size), rx(65536);
    initialise(cfg, lccp_a.get(), lccp_b.get(), inbound_a, inbound_b, out, rx);
    std::printf("server: node A listening on %s:%u\n", cfg.listen.ip.to_string().c_str(), cfg.listen.port);
    std::fflush(stdout);

    if (!wait_readable(listener.get(), 30000)) die("no client connected within 30 s");
    repair::owned_fd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) die(std::string("accept: ") + std::strerror(errno));

    // A looks at the request without consuming it, and starts the response.
    char peek[256];
    ssize_t peeked = 0;
    for (int tries = 0; tries < 2000; ++tries) {
        if (!wait_readable(conn.get(), 20000)) die("no request within 20 s");
        peeked = ::recv(conn.get(), peek, sizeof peek - 1, MSG_PEEK);
        if (peeked <= 0) die("client closed before its request");
        if (std::memchr(peek, '\n', static_cast<std::size_t>(peeked)) != nullptr) break;
        ::usleep(1000);  // a partial line: the rest is on its way
    }
    peek[peeked] = 0;
    std::uint64_t size = 0, seed = 0;
    if (!parse_request(std::string(peek, std::strcspn(peek, "\n")), size, seed)) die("bad request: " + std::string(peek));
    std::vector<std::byte> stream_buf(static_cast<std::size_t>(cn::handoff::max_stream));
    if (!cfg.hold_cmd.empty() && std::system(cfg.hold_cmd.c_str()) != 0) die("hold command failed: " + cfg.hold_cmd);
    if (cfg.pre_bytes > 0) {
        const int sndbuf = static_cast<int>(std::min<std::uint64_t>(cfg.pre_bytes, 8u << 20));
        (void)::setsockopt(conn.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    }
    const std::uint64_t pre = send_pattern_nonblocking(conn.get(), seed, std::min(cfg.pre_bytes, size));
    if (cfg.await_in_flight) {
        // The client's packets are held back: wait until part of the queue is sent but unacknowledged.
        for (int i = 0; i < 2000 && sent_unacked(conn.get()) == 0; ++i) ::usleep(1000);
        if (sent_unacked(conn.get()) == 0) die("no bytes in flight 2 s after the hold command");
    }

    // --- the handoff ---------------------------------------------------------------------------
    const auto t0 = clock_type::now();
    repair::captured cap = repair::capture(conn.get(), ec, &d, cfg.chunk_size);
    check(ec, d, "capture on A");
    const auto t1 = clock_type::now();

    const std::uint16_t handoff_id = static_cast<std::uint16_t>(::getpid());
    lccp::message m;
    if (auto e = cn::handoff::make_request(cap.state, cap.stream, handoff_id, m); e != cn::handoff::error::none)
        die(std::string("make_request: ") + std::string(cn::handoff::to_string(e)));
    auto enc = lccp::encode(m, cfg.key, out);
    if (!enc) die(std::string("encode: ") + std::string(lccp::to_string(enc.err)));
    send_datagram(lccp_a.get(), cfg.b_addr, std::span(out).first(enc.size));
    const std::uint64_t chunks = cn::handoff::chunk_count(cap.state);
    for (std::uint64_t k = 0; k < chunks; ++k) {
        if (auto e = cn::handoff::make_chunk(cap.state, cap.stream, handoff_id, k, m); e != cn::handoff::error::none)
            die(std::string("make_chunk: ") + std::string(cn::handoff::to_string(e)));
        enc = lccp::encode(m, cfg.key, out);
        if (!enc) die(std::string("encode chunk: ") + std::string(lccp::to_string(enc.err)));
        send_datagram(lccp_a.get(), cfg.b_addr, std::span(out).first(enc.size));
    }
    const auto t2 = clock_type::now();

    // The decision, in two phases (LCCP does not retransmit, so every step has a deadline):
    //  B  collects the request and chunks by its deadline, restores a *frozen* copy (repair mode,
    //     the client ignored) and answers handoff_reply ok, repeating it every poll interval until
    //     it hears A's decision; with none by its give-up time it drops the copy silently.
    //  A  commits on an ok reply by its deadline: re-points the client's route, closes its socket
    //     silently and sends handoff_commit ok; B then makes its copy live (tcp_repair::activate).
    //     Without an ok reply by then, A resumes the connection itself, and answers any late ok
    //     with handoff_commit refused, on which B drops its copy. A answers every repeated reply
    //     with its decision, so a lost commit costs one poll interval. Only one copy is ever live.
    cn::handoff::reassembler reasm(stream_buf);
    const auto ms = [](int n) { return std::chrono::milliseconds(n); };
    const auto b_deadline = t2 + ms(cfg.deadline_ms);
    const auto a_deadline = t2 + ms(2 * cfg.deadline_ms);
    const int poll_ms = std::max(5, cfg.deadline_ms / 4);
    enum class b_phase { collecting, prepared, live, dropped, none } bp = b_phase::collecting;
    enum class a_phase { waiting, committed, aborted } ap = a_phase::waiting;
    auto b_next_poll = clock_type::time_point::max(), b_give_up = clock_type::time_point::max();
    repair::owned_fd restored;
    lccp::status outcome = lccp::status::incomplete;
    auto t3 = t2, t4 = t2, t5 = t2, t6 = t2, t7 = t2;
    std::string failure = "no handoff_reply by the deadline";
    unsigned replies_sent = 0, commits_sent = 0;

    const auto send_handoff = [&](int from_fd, cn::ipv4_address to, lccp::command c, lccp::status why) {
        lccp::message msg;
        msg.receptor = lccp::component::distributor;
        msg.cmd = c;
        msg.socket = cap.state.socket;
        msg.data = lccp::handoff_data_field(handoff_id, static_cast<std::uint16_t>(why));
        const auto e = lccp::encode(msg, cfg.key, out);
        if (!e) die("encode " + std::string(lccp::to_string(c)));
        send_datagram(from_fd, to, std::span(out).first(e.size));
    };
    const auto b_reply = [&] {
        send_handoff(lccp_b.get(), cfg.a_addr, lccp::command::handoff_reply, outcome);
        ++replies_sent;
    };
    const auto a_decide = [&] {
        send_handoff(lccp_a.get(), cfg.b_addr, lccp::command::handoff_commit,
                     ap == a_phase::committed ? lccp::status::ok : lccp::status::refused);
        ++commits_sent;
    };
    const auto b_finish_collecting = [&] {
        t3 = clock_type::now();
        if (reasm.complete()) {
            repair::restore_options ro;
            ro.netns = cfg.ns_b;
            ro.stay_frozen = true;
            restored = repair::restore(reasm.state(), reasm.stream(), ro, ec, &d);
            if (ec) std::fprintf(stderr, "node B: restore failed: %s (%s)\n", ec.message().c_str(), d.text.c_str());
            outcome = restored ? lccp::status::ok : lccp::status::restore_failed;
        } else {
            std::printf("server: node B: handoff incomplete at the deadline (%s, %zu of %zu chunks)\n",
                        reasm.started() ? "request in" : "no request", reasm.chunks_received(), reasm.chunks_expected());
        }
        t4 = clock_type::now();
        if (!reasm.started()) {  // B answers only a handoff it knows of
            bp = b_phase::none;
            return;
        }
        b_reply();
        if (outcome == lccp::status::ok) {
            bp = b_phase::prepared;
            b_next_poll = t4 + ms(poll_ms);
            b_give_up = t4 + ms(20 * cfg.deadline_ms);
        } else {
            bp = b_phase::none;
        }
    };
    const auto a_abort = [&] {
        ap = a_phase::aborted;
        t5 = clock_type::now();
        repair::unfreeze(conn.get(), ec, &d, &cap.state);
        check(ec, d, "unfreeze on A");
    };

    for (;;) {
        const bool b_busy = bp == b_phase::collecting || bp == b_phase::prepared;
        if (!b_busy && ap != a_phase::waiting) break;
        const auto now = clock_type::now();
        if (bp == b_phase::collecting && (reasm.complete() || now >= b_deadline)) {
            b_finish_collecting();
            continue;
        }
        if (bp == b_phase::prepared && now >= b_give_up) {
            repair::close_silently(restored);
            bp = b_phase::dropped;
            std::printf("server: node B: no decision from A by its give-up time; dropped its frozen copy\n");
            continue;
        }
        if (bp == b_phase::prepared && now >= b_next_poll) {
            b_reply();
            b_next_poll = now + ms(poll_ms);
        }
        if (ap == a_phase::waiting && now >= a_deadline) {
            a_abort();
            a_decide();  // tells a prepared B at once (a lost one is repeated on B's next reply)
            continue;
        }
        auto next = clock_type::time_point::max();
        if (bp == b_phase::collecting) next = std::min(next, b_deadline);
        if (bp == b_phase::prepared) next = std::min({next, b_next_poll, b_give_up});
        if (ap == a_phase::waiting) next = std::min(next, a_deadline);
        const int wait_ms = static_cast<int>(std::clamp<long long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1, 0, 1000));
        pollfd pf[2] = {{lccp_a.get(), POLLIN, 0}, {lccp_b.get(), POLLIN, 0}};
        if (::poll(pf, 2, wait_ms) <= 0) continue;
        if ((pf[1].revents & POLLIN) != 0) {  // node B's LCCP socket
            const auto dg = receive(lccp_b.get(), rx, 0);
            const auto r = dg ? inbound_b.accept(dg->from, dg->payload) : lccp::decode_result{};
            if (dg && !r) die(std::string("node B rejected a message: ") + std::string(lccp::to_string(r.err)));
            if (dg && r.msg.cmd == lccp::command::handoff_commit) {
                if (lccp::handoff_id_of(r.msg.data) != handoff_id) die("node B: handoff_commit for another handoff");
                if (bp == b_phase::prepared) {
                    if (lccp::handoff_low_of(r.msg.data) == static_cast<std::uint16_t>(lccp::status::ok)) {
                        repair::activate(restored.get(), reasm.state(), reasm.stream(), ec, &d);
                        check(ec, d, "activate on B");
                        bp = b_phase::live;
                        t7 = clock_type::now();
                    } else {
                        repair::close_silently(restored);
                        bp = b_phase::dropped;
                    }
                }
            } else if (dg && bp == b_phase::collecting) {
                cn::handoff::error why{};
                if (r.msg.cmd == lccp::command::handoff_request) why = reasm.start(r.msg);
                else if (reasm.add(r.msg, why) == cn::handoff::chunk_verdict::duplicate) continue;
                if (why != cn::handoff::error::none) die(std::string("node B: handoff: ") + std::string(cn::handoff::to_string(why)));
            }  // (late chunks after the deadline are ignored)
        }
        if ((pf[0].revents & POLLIN) != 0) {  // node A's LCCP socket
            const auto dg = receive(lccp_a.get(), rx, 0);
            if (!dg) continue;
            const auto rr = inbound_a.accept(dg->from, dg->payload);
            if (!rr || rr.msg.cmd != lccp::command::handoff_reply || lccp::handoff_id_of(rr.msg.data) != handoff_id)
                die("node A: bad handoff_reply");
            const bool ok = lccp::handoff_low_of(rr.msg.data) == static_cast<std::uint16_t>(lccp::status::ok);
            if (ap == a_phase::waiting && ok) {
                ap = a_phase::committed;
                t5 = clock_type::now();
                if (!cfg.switch_cmd.empty() && std::system(cfg.switch_cmd.c_str()) != 0) die("switch command failed: " + cfg.switch_cmd);
                repair::close_silently(conn);
                t6 = clock_type::now();
                a_decide();
            } else if (ap == a_phase::waiting) {
                failure = "handoff_reply status " + std::to_string(lccp::handoff_low_of(rr.msg.data));
                a_abort();
            } else if (ok) {
                a_decide();  // B repeats its reply until it has the decision
            }
        }
    }
    const bool handed_off = ap == a_phase::committed;
    if (handed_off && bp != b_phase::live) die("node B dropped a handoff that A committed");
    if (!handed_off && bp == b_phase::live) die("node B went live on a handoff that A resumed");
    const auto& st = cap.state;
    std::printf("server: captured %s:%u <-> %s:%u: R=%u S=%u U=%u mss=%u wscale=%u/%u sack=%d ts=%d; %llu chunk(s) of %u; "
                "snd_seq=%u rcv_seq=%u snd_wnd=%u\n",
                st.socket.client_ip.to_string().c_str(), st.socket.client_port, st.socket.server_ip.to_string().c_str(),
                st.socket.server_port, st.recv_queue_len, st.send_queue_len, st.unsent_len, st.mss, st.snd_wscale,
                st.rcv_wscale, st.sack_permitted ? 1 : 0, st.timestamps ? 1 : 0, static_cast<unsigned long long>(chunks),
                st.chunk_size, st.snd_seq, st.rcv_seq, st.window.snd_wnd);
    int serving = -1;
    if (handed_off) {
        std::printf("handoff_time_us: capture %.1f, encode+send %.1f, receive+reassemble %.1f, restore %.1f; "
                    "capture-to-restored %.1f; reply %.1f, switch+close %.1f, commit-to-live %.1f, total %.1f\n",
                    us(t0, t1), us(t1, t2), us(t2, t3), us(t3, t4), us(t0, t4), us(t4, t5), us(t5, t6), us(t6, t7),
                    us(t0, t7));
        serving = restored.get();
    } else {
        // The fallback: nobody took the connection, so A carries on with it as if nothing happened.
        std::printf("server: handoff failed (%s); node A resumed the connection after %.1f us%s\n", failure.c_str(),
                    us(t0, t5), bp == b_phase::dropped ? " (node B dropped its frozen copy)" : "");
        serving = conn.get();
    }
    std::printf("server: handoff messages: %u handoff_reply, %u handoff_commit\n", replies_sent, commits_sent);
    std::fflush(stdout);

    // The new owner (or A again) carries on: the request is in its receive queue, and the rest
    // of the response follows.
    const char* who = handed_off ? "node B" : "node A";
    std::uint64_t served = 0;
    for (bool first = true;; first = false) {
        const auto line = read_line(serving);
        if (!line) break;
        std::uint64_t sz = 0, sd = 0;
        if (!parse_request(*line, sz, sd)) die(std::string(who) + ": bad request: " + *line);
        if (first && (sz != size || sd != seed)) die(std::string(who) + ": the request differs from the one A saw");
        send_pattern(serving, sd, first ? pre : 0, sz);
        ++served;
    }
    std::printf("server: %s served %llu request(s) on the %s connection\n", who, static_cast<unsigned long long>(served),
                handed_off ? "restored" : "resumed");
    if (!handed_off) return 0;

    // Forged and altered messages: B must reject and count every one.
    lccp::message fake;
    fake.receptor = lccp::component::forwarder;
    fake.cmd = lccp::command::forward_remove;
    fake.socket = st.socket;
    const cn::siphash_key wrong{cfg.key.k0 ^ 1, cfg.key.k1};
    enc = lccp::encode(fake, wrong, out);
    if (!enc) die(std::string("encode forged: ") + std::string(lccp::to_string(enc.err)));
    send_datagram(lccp_a.get(), cfg.b_addr, std::span(out).first(enc.size));
    enc = lccp::encode(fake, cfg.key, out);
    out[8] ^= std::byte{0x01};  // Data altered in flight
    send_datagram(lccp_a.get(), cfg.b_addr, std::span(out).first(enc.size));
    out[8] ^= std::byte{0x01};
    int forged = 2;
    if (cfg.stranger) {  // a genuine message from a source that is no member
        repair::owned_fd stranger = raw_socket(cfg.ns_a, *cfg.stranger);
        send_datagram(stranger.get(), cfg.b_addr, std::span(out).first(enc.size));
        ++forged;
    }
    for (int i = 0; i < forged;) {
        const auto f = receive(lccp_b.get(), rx, 2000);
        if (!f) die("node B: a forged message did not arrive");
        const auto r = inbound_b.accept(f->from, f->payload);
        if (r && r.msg.cmd == lccp::command::handoff_commit && lccp::handoff_id_of(r.msg.data) == handoff_id)
            continue;  // a repeat of A's decision, answering a repeated reply
        if (r) die("node B accepted a forged message");
        ++i;
    }
    const auto& c = inbound_b.stats();
    std::printf("lccp_counters_b: accepted %llu, bad_tag %llu, not_member %llu, rejected_total %llu\n",
                static_cast<unsigned long long>(c.accepted), static_cast<unsigned long long>(c.rejected_for(lccp::error::bad_tag)),
                static_cast<unsigned long long>(c.rejected_for(lccp::error::not_member)),
                static_cast<unsigned long long>(c.rejected_total()));
    return 0;
}

void usage() {
    std::puts("usage: cn-handoff-demo client --connect IP:PORT --sizes N[,N...] [--seed S] [--pause-ms MS]\n"
              "       cn-handoff-demo serve --ns-a PATH --ns-b PATH --listen IP:PORT --a-addr IP --b-addr IP\n"
              "                             [--key HEX32] [--pre-bytes N] [--chunk-size C] [--switch-cmd CMD]\n"
              "                             [--stranger-addr IP] [--hold-cmd CMD] [--await-in-flight 1]\n"
              "                             [--deadline-ms MS]");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h") {
        usage();
        return argc < 2 ? 2 : 0;
    }
    const std::string_view mode = argv[1];
    std::optional<endpoint> ep;
    std::vector<std::uint64_t> sizes;
    std::uint64_t seed = 1;
    int pause_ms = 0;
    serve_config cfg;
    bool have_a = false, have_b = false;
    for (int i = 2; i < argc; ++i) {
        const std::string_view opt = argv[i];
        if (i + 1 >= argc) die("option " + std::string(opt) + " needs a value");
        const std::string val = argv[++i];
        if (opt == "--connect" || opt == "--listen") {
            ep = parse_endpoint(val);
            if (!ep) die("bad IP:PORT: " + val);
        } else if (opt == "--sizes") {
            for (std::size_t p = 0; p < val.size();) {
                const std::size_t q = std::min(val.find(',', p), val.size());
                sizes.push_back(std::strtoull(val.substr(p, q - p).c_str(), nullptr, 10));
                p = q + 1;
            }
        } else if (opt == "--pause-ms") {
            pause_ms = std::atoi(val.c_str());
        } else if (opt == "--stranger-addr") {
            const auto a = cn::ipv4_address::parse(val);
            if (!a) die("bad address: " + val);
            cfg.stranger = *a;
        } else if (opt == "--seed") {
            seed = std::strtoull(val.c_str(), nullptr, 10);
        } else if (opt == "--ns-a") {
            cfg.ns_a = val;
        } else if (opt == "--ns-b") {
            cfg.ns_b = val;
        } else if (opt == "--a-addr" || opt == "--b-addr") {
            const auto a = cn::ipv4_address::parse(val);
            if (!a) die("bad address: " + val);
            (opt == "--a-addr" ? cfg.a_addr : cfg.b_addr) = *a;
            (opt == "--a-addr" ? have_a : have_b) = true;
        } else if (opt == "--key") {
            const auto k = lccp::parse_key(val);
            if (!k) die("--key wants 32 hexadecimal digits");
            cfg.key = *k;
        } else if (opt == "--pre-bytes") {
            cfg.pre_bytes = std::strtoull(val.c_str(), nullptr, 10);
        } else if (opt == "--chunk-size") {
            const unsigned long c = std::strtoul(val.c_str(), nullptr, 10);
            if (c < cn::handoff::min_chunk_size || c > cn::handoff::max_chunk_size)
                die("--chunk-size must be within 90 .. " + std::to_string(cn::handoff::max_chunk_size));
            cfg.chunk_size = static_cast<std::uint16_t>(c);
        } else if (opt == "--await-in-flight") {
            cfg.await_in_flight = val == "1";
        } else if (opt == "--deadline-ms") {
            cfg.deadline_ms = std::max(1, std::atoi(val.c_str()));
        } else if (opt == "--hold-cmd") {
            cfg.hold_cmd = val;
        } else if (opt == "--switch-cmd") {
            cfg.switch_cmd = val;
        } else {
            usage();
            die("unknown option " + std::string(opt));
        }
    }
    if (mode == "client") {
        if (!ep || sizes.empty()) die("client needs --connect and --sizes");
        return run_client(*ep, sizes, seed, pause_ms);
    }
    if (mode == "serve") {
        if (!ep || cfg.ns_a.empty() || cfg.ns_b.empty() || !have_a || !have_b)
            die("serve needs --ns-a, --ns-b, --listen, --a-addr and --b-addr");
        cfg.listen = *ep;
        return run_serve(cfg);
    }
    usage();
    return 2;
}
