// cn-io-selftest: the I/O bindings of clusternet/io/ on real sockets, driven from one
// boost::asio::io_context, checked byte for byte. tests/e2e/io_bindings.sh builds the network
// namespaces and runs each test; docs/io.md quotes the figures `compare` prints.
//
//   cn-io-selftest ring    --tx-if IF --rx-netns NS --rx-if IF [--frames N]
//       packet_tx_ring (here) -> veth -> packet_rx_ring (in NS): N frames of 60..1514 bytes,
//       every byte and the count checked; promiscuous mode seen on the interface while open.
//   cn-io-selftest fanout  --tx-if IF --rx-netns NS --rx-if IF [--frames N]
//       two rings in one PACKET_FANOUT group: hash mode keeps each of 64 flows on one socket
//       and uses both; round-robin mode shares the frames; cpu mode is reported.
//   cn-io-selftest compare --tx-if IF --rx-netns NS --rx-if IF [--frames N]
//       frames/s of one stream through TX ring -> RX ring, TX ring -> recvmmsg, and
//       sendmmsg -> RX ring (reported, not asserted; every frame still checked).
//   cn-io-selftest raw     --peer-netns NS --local A --peer B [--count N]
//       raw IP sockets between two namespaces: protocol 253 both ways (payloads, then whole
//       packets with IP_HDRINCL), and IP-in-IP (protocol 4) carrying a UDP packet.
//   cn-io-selftest tun     --name DEV --local A --remote B [--count N]
//       a two-queue TUN (the script made DEV, address A): echo requests and TCP SYNs from B
//       written into it, the kernel's echo replies and RSTs read back and checked.
//   cn-io-selftest tap     --name DEV --local A --remote B [--count N]
//       a TAP device (Ethernet): the kernel's ARP reply for A, then echo replies in frames.
//   cn-io-selftest errors
//       setup errors: both forms, the codes and the messages (needs no interface).
//
// Prints key=value lines and "PASS" or "FAIL: why"; exits 0 only if every check held.
#include <clusternet/io/af_packet.hpp>
#include <clusternet/io/raw_socket.hpp>
#include <clusternet/io/tun.hpp>
#include <clusternet/packet.hpp>
#include <clusternet/packet_builder.hpp>
#include <clusternet/packet_checksum.hpp>

#include <boost/asio/io_context.hpp>

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace cn = clusternet;
namespace io = clusternet::io;
using clock_type = std::chrono::steady_clock;

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
    if (!ok) {
        std::printf("FAIL: %s\n", what.c_str());
        ++failures;
    }
}

// --- arguments ---------------------------------------------------------------------------------
struct args {
    std::map<std::string, std::string> kv;
    [[nodiscard]] std::string get(const std::string& k) const {
        const auto it = kv.find(k);
        if (it == kv.end()) throw std::invalid_argument("missing --" + k);
        return it->second;
    }
    [[nodiscard]] std::size_t number(const std::string& k, std::size_t def) const {
        const auto it = kv.find(k);
        return it == kv.end() ? def : std::stoul(it->second);
    }
    [[nodiscard]] cn::ipv4_address address(const std::string& k) const {
        const auto a = cn::ipv4_address::parse(get(k));
        if (!a) throw std::invalid_argument("--" + k + ": not an IPv4 address");
        return *a;
    }
};

// --- network namespaces ------------------------------------------------------------------------
/// Enters the named namespace (/run/netns/NAME) for the scope. Sockets opened inside stay in it.
class netns_scope {
public:
    explicit netns_scope(const std::string& name) : home_(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) {
        const std::string path = "/run/netns/" + name;
        io::detail::unique_fd target(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!home_.valid() || !target.valid() || ::setns(target.get(), CLONE_NEWNET) != 0)
            throw std::system_error(errno, std::system_category(), "setns into " + path);
    }
    netns_scope(const netns_scope&) = delete;
    netns_scope& operator=(const netns_scope&) = delete;
    ~netns_scope() {
        if (::setns(home_.get(), CLONE_NEWNET) != 0) std::abort();
    }

private:
    io::detail::unique_fd home_;
};

/// The interface's promiscuity count, as `ip -d link` reports it (IFF_PROMISC from SIOCGIFFLAGS
/// shows only what was set by ioctl, not packet socket memberships); -1 if unreadable.
int promiscuity(const std::string& netns, const std::string& name) {
    const std::string cmd = "ip -n '" + netns + "' -d -o link show dev '" + name + "' 2>/dev/null";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return -1;
    std::string out;
    std::array<char, 512> buf{};
    while (std::fgets(buf.data(), static_cast<int>(buf.size()), p) != nullptr) out += buf.data();
    ::pclose(p);
    const auto at = out.find(" promiscuity ");
    return at == std::string::npos ? -1 : std::atoi(out.c_str() + at + 13);
}

// --- the test stream -----------------------------------------------------------------------------
// Ethernet / IPv4 / UDP to port 9999, payload: "CNIO", the sequence number, then a pattern of
// the sequence number and the position. The destination MAC is nobody's, so the receiving
// kernel's IP layer drops the frames (no ICMP in return) while packet sockets see them.
constexpr std::uint32_t stream_magic = 0x434E494F;  // "CNIO"
constexpr std::uint16_t stream_port = 9999;
constexpr std::size_t stream_header = 14 + 20 + 8;

struct stream {
    std::size_t flows = 64;
    std::size_t fixed_length = 0;  // 0: lengths vary 60..1514 with the sequence number

    [[nodiscard]] std::size_t length(std::uint32_t seq) const noexcept {
        return fixed_length != 0 ? fixed_length : 60 + (std::size_t{seq} * 7919) % 1455;
    }
    [[nodiscard]] std::size_t flow(std::uint32_t seq) const noexcept { return seq % flows; }

    /// Builds frame `seq` into out; returns its length.
    std::size_t build(std::uint32_t seq, std::span<std::byte> out) const {
        const std::size_t len = length(seq);
        std::array<std::byte, 1514> payload{};
        const std::size_t plen = len - stream_header;
        cn::store_be32(payload.data(), stream_magic);
        cn::store_be32(payload.data() + 4, seq);
        for (std::size_t i = 8; i < plen; ++i) payload[i] = std::byte(static_cast<unsigned char>(seq * 131 + i * 7));
        const auto r = cn::packet_builder(out)
                           .ethernet({.dst = *cn::mac_address::parse("02:00:00:c0:10:99"),
                                      .src = *cn::mac_address::parse("02:00:00:c0:10:01")})
                           .ipv4({.src = cn::ipv4_address(10, 201, 0, 1), .dst = cn::ipv4_address(10, 201, 0, 2),
                                  .id = static_cast<std::uint16_t>(seq)})
                           .udp({.sport = static_cast<std::uint16_t>(20000 + flow(seq)), .dport = stream_port})
                           .payload(std::span<const std::byte>(payload.data(), plen))
                           .finish();
        if (!r || r->size() != len) throw std::logic_error("stream: could not build a frame");
        return len;
    }
};

/// Checks received frames against the stream, frame by frame and byte by byte.
struct receiver {
    const stream& s;
    std::size_t n;
    std::vector<std::uint8_t> seen;
    std::vector<int> flow_owner;  // which socket saw each flow first
    std::size_t ok = 0, bad = 0, duplicates = 0, foreign = 0, flow_split = 0;
    std::vector<std::size_t> per_socket;
    std::array<std::byte, 2048> expect{};

    receiver(const stream& st, std::size_t count, std::size_t sockets)
        : s(st), n(count), seen(count), flow_owner(st.flows, -1), per_socket(sockets) {}

    [[nodiscard]] std::size_t ours() const noexcept { return ok + bad + duplicates; }

    void on_frame(std::size_t socket, std::span<const std::byte> f) {
        if (f.size() < stream_header + 8 || cn::load_be16(f.data() + 12) != 0x0800 ||
            std::to_integer<int>(f[23]) != 17 || cn::load_be16(f.data() + 36) != stream_port ||
            cn::load_be32(f.data() + stream_header) != stream_magic) {
            ++foreign;
            return;
        }
        const std::uint32_t seq = cn::load_be32(f.data() + stream_header + 4);
        if (seq >= n) {
            ++bad;
            return;
        }
        const std::size_t len = s.build(seq, expect);
        if (len != f.size() || std::memcmp(expect.data(), f.data(), len) != 0) {
            ++bad;
            return;
        }
        if (seen[seq] != 0) {
            ++duplicates;
            return;
        }
        seen[seq] = 1;
        ++ok;
        ++per_socket[socket];
        int& owner = flow_owner[s.flow(seq)];
        if (owner < 0) owner = static_cast<int>(socket);
        else if (owner != static_cast<int>(socket)) ++flow_split;
    }
};

/// One receiving endpoint: its Asio descriptor and a drain that hands frames to a receiver.
struct rx_endpoint {
    io::detail::asio_descriptor* d;
    std::function<std::size_t()> drain;
};

void arm(rx_endpoint& e) {
    e.d->async_wait_readable([&e](boost::system::error_code ec) {
        if (ec) return;
        e.drain();
        arm(e);
    });
}

struct pump_result {
    std::size_t sent = 0;
    double seconds = 0;
};

/// Sends n frames of the stream through tx, at most `window` ahead of what the receivers have
/// seen (so no ring, socket buffer or veth backlog overflows: keep it below 1000), while the io_context delivers readiness of
/// the receivers. Stops when all arrived or nothing moved for two seconds.
template <class Tx>
pump_result pump(boost::asio::io_context& ctx, Tx& tx, std::vector<rx_endpoint>& rx, const stream& s, receiver& r,
                 std::size_t window, std::size_t batch) {
    std::array<std::byte, 2048> buf{};
    pump_result res;
    for (auto& e : rx) arm(e);
    const auto start = clock_type::now();
    auto last_progress = start;
    std::size_t last_seen = 0;
    while (r.ours() < r.n) {
        std::size_t queued = 0;
        while (res.sent < r.n && res.sent - r.ours() < window) {
            const std::size_t len = s.build(static_cast<std::uint32_t>(res.sent), buf);
            if (!tx.send(std::span<const std::byte>(buf.data(), len))) {
                tx.flush();
                if (!tx.send(std::span<const std::byte>(buf.data(), len))) break;
            }
            ++res.sent;
            if (++queued == batch) {
                tx.flush();
                queued = 0;
            }
        }
        tx.flush();
        ctx.run_one_for(std::chrono::milliseconds(20));
        const auto now = clock_type::now();
        if (r.ours() != last_seen) {
            last_seen = r.ours();
            last_progress = now;
        } else if (now - last_progress > std::chrono::seconds(2)) {
            break;
        }
    }
    res.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    for (auto& e : rx) e.d->cancel();
    ctx.run();  // the cancelled waits complete (operation_aborted) and are not re-armed
    ctx.restart();
    return res;
}

rx_endpoint ring_endpoint(io::packet_rx_ring& ring, receiver& r, std::size_t index) {
    return {&ring, [&ring, &r, index] {
                return ring.poll([&](const io::tpacket_frame& f) { r.on_frame(index, f.data); });
            }};
}

rx_endpoint socket_endpoint(io::packet_socket& sock, receiver& r, std::size_t index) {
    return {&sock, [&sock, &r, index] {
                std::size_t total = 0;
                while (const std::size_t got = sock.receive([&](std::span<std::byte> f, const sockaddr_ll&) {
                           r.on_frame(index, f);
                       }))
                    total += got;
                return total;
            }};
}

void print_ring(const char* label, io::packet_rx_ring& ring) {
    std::error_code ec;
    ring.refresh_kernel_stats(ec);
    const auto& c = ring.counters();
    std::printf("%s: frames=%llu blocks=%llu ring_errors=%llu truncated=%llu kernel_packets=%llu kernel_drops=%llu\n",
                label, static_cast<unsigned long long>(c.frames), static_cast<unsigned long long>(c.blocks),
                static_cast<unsigned long long>(c.ring_errors), static_cast<unsigned long long>(c.truncated),
                static_cast<unsigned long long>(c.kernel_packets), static_cast<unsigned long long>(c.kernel_drops));
}

void print_tx(const char* label, const io::tx_counters& c) {
    std::printf("%s: queued=%llu sent=%llu send_errors=%llu ring_full=%llu too_large=%llu\n", label,
                static_cast<unsigned long long>(c.queued), static_cast<unsigned long long>(c.sent),
                static_cast<unsigned long long>(c.send_errors), static_cast<unsigned long long>(c.ring_full),
                static_cast<unsigned long long>(c.too_large));
}

void check_stream(const receiver& r, const char* what) {
    std::printf("%s: ok=%zu bad=%zu duplicates=%zu foreign=%zu of %zu\n", what, r.ok, r.bad, r.duplicates, r.foreign, r.n);
    check(r.ok == r.n, std::string(what) + ": every frame arrived intact (" + std::to_string(r.ok) + " of " +
                           std::to_string(r.n) + ")");
    check(r.bad == 0, std::string(what) + ": no corrupted frame");
    check(r.duplicates == 0, std::string(what) + ": no duplicate");
}

// --- ring ------------------------------------------------------------------------------------------
int test_ring(const args& a) {
    boost::asio::io_context ctx;
    const std::size_t n = a.number("frames", 20000);
    const std::string rx_if = a.get("rx-if");
    const stream s{};
    const std::string rx_ns = a.get("rx-netns");
    const int promisc_before = promiscuity(rx_ns, rx_if);
    std::optional<io::packet_rx_ring> rx;
    {
        netns_scope ns(rx_ns);
        rx.emplace(ctx, io::packet_socket_options{.interface = rx_if, .promiscuous = true, .ignore_outgoing = true},
                   io::rx_ring_options{.block_size = 1u << 16, .block_count = 64, .block_timeout_ms = 2});
    }
    const int promisc_open = promiscuity(rx_ns, rx_if);
    io::packet_tx_ring tx(ctx, {.interface = a.get("tx-if"), .qdisc_bypass = true}, {.frame_size = 2048, .frame_count = 512});
    receiver r(s, n, 1);
    std::vector<rx_endpoint> eps{ring_endpoint(*rx, r, 0)};
    const auto res = pump(ctx, tx, eps, s, r, 512, 64);
    std::printf("ring: sent=%zu seconds=%.3f frames_per_second=%.0f ring_bytes=%zu\n", res.sent, res.seconds,
                static_cast<double>(r.ok) / res.seconds, rx->ring_bytes());
    print_ring("ring.rx", *rx);
    print_tx("ring.tx", tx.counters());
    check_stream(r, "ring");
    check(rx->counters().ring_errors == 0, "ring: every block validated");
    check(rx->counters().kernel_drops == 0, "ring: the kernel dropped nothing (window below ring size)");
    check(tx.counters().sent == n && tx.counters().send_errors == 0, "ring: the TX ring sent every frame");
    check(tx.in_flight() == 0, "ring: every TX slot came back");
    rx.reset();
    const int promisc_closed = promiscuity(rx_ns, rx_if);
    std::printf("ring: promiscuity before=%d open=%d closed=%d\n", promisc_before, promisc_open, promisc_closed);
    check(promisc_before >= 0 && promisc_open == promisc_before + 1, "ring: the ring makes the interface promiscuous");
    check(promisc_closed == promisc_before, "ring: promiscuous mode ends with the socket");
    return failures;
}

// --- fanout ----------------------------------------------------------------------------------------
int test_fanout(const args& a) {
    boost::asio::io_context ctx;
    const std::size_t n = a.number("frames", 20000);
    const stream s{};
    io::packet_tx_ring tx(ctx, {.interface = a.get("tx-if")}, {});
    const io::rx_ring_options ring{.block_size = 1u << 16, .block_count = 64, .block_timeout_ms = 2};
    std::uint16_t group = 0x0c10;
    for (const auto mode : {io::fanout_mode::hash, io::fanout_mode::lb, io::fanout_mode::cpu}) {
        const char* name = mode == io::fanout_mode::hash ? "hash" : mode == io::fanout_mode::lb ? "lb" : "cpu";
        std::optional<io::packet_rx_ring> r0, r1;
        {
            netns_scope ns(a.get("rx-netns"));
            const io::packet_socket_options o{.interface = a.get("rx-if"), .ignore_outgoing = true,
                                              .fanout = io::fanout_options{.group_id = group++, .mode = mode}};
            r0.emplace(ctx, o, ring);
            r1.emplace(ctx, o, ring);
        }
        receiver r(s, n, 2);
        std::vector<rx_endpoint> eps{ring_endpoint(*r0, r, 0), ring_endpoint(*r1, r, 1)};
        const auto res = pump(ctx, tx, eps, s, r, 512, 64);
        std::size_t flows0 = 0, flows1 = 0;
        for (const int o : r.flow_owner) {
            flows0 += o == 0;
            flows1 += o == 1;
        }
        std::printf("fanout.%s: socket0=%zu socket1=%zu flows0=%zu flows1=%zu split_flow_frames=%zu seconds=%.3f\n", name,
                    r.per_socket[0], r.per_socket[1], flows0, flows1, r.flow_split, res.seconds);
        check_stream(r, (std::string("fanout.") + name).c_str());
        if (mode == io::fanout_mode::hash) {
            check(r.flow_split == 0, "fanout.hash: every flow wholly on one socket");
            check(flows0 > 0 && flows1 > 0, "fanout.hash: both sockets got flows (64 flows)");
        } else if (mode == io::fanout_mode::lb) {
            check(r.per_socket[0] > n / 4 && r.per_socket[1] > n / 4, "fanout.lb: round robin shares the frames");
        }
    }
    return failures;
}

// --- compare ---------------------------------------------------------------------------------------
int test_compare(const args& a) {
    boost::asio::io_context ctx;
    const std::size_t n = a.number("frames", 200000);
    const std::size_t rounds = a.number("rounds", 3);
    const stream s{.flows = 64, .fixed_length = a.number("length", 128)};
    const std::string rx_if = a.get("rx-if"), tx_if = a.get("tx-if"), rx_ns = a.get("rx-netns");
    // Blocks small enough that the window fills several: a V3 ring hands a block over when it
    // is full or when its timeout expires, so a block larger than what is in flight would make
    // the ring wait for the timeout every window (measured: 0.77 of recvmmsg with 256 KiB).
    const io::rx_ring_options ring{.block_size = 1u << 16, .block_count = 64, .block_timeout_ms = 2};
    // The window stays below net.core.netdev_max_backlog (1000): veth hands frames to the
    // peer's per-CPU backlog, which drops beyond that when the softirq runs late (it did under
    // ASan with a window of 1024).
    const std::size_t batch = 64, window = 512;
    const io::packet_socket_options rx_opts{.interface = rx_if, .ignore_outgoing = true};
    const io::packet_socket_options tx_opts{.interface = tx_if, .protocol = 0, .qdisc_bypass = true};
    const io::tx_ring_options tx_ring{.frame_size = 2048, .frame_count = 512};
    const io::batch_options batches{.batch = 64, .slot_size = 2048};

    // Each pairing runs `rounds` times, interleaved with the others; the best round counts (the
    // machine is shared: the best round is the one least disturbed).
    std::array<double, 3> best{};
    const std::array<const char*, 3> names{"tx_ring_to_rx_ring", "tx_ring_to_recvmmsg", "sendmmsg_to_rx_ring"};
    for (std::size_t round = 0; round < rounds; ++round) {
        for (std::size_t k = 0; k < 3; ++k) {
            std::optional<io::packet_rx_ring> rx_ring;
            std::optional<io::packet_socket> rx_sock;
            {
                netns_scope ns(rx_ns);
                if (k == 1) {
                    rx_sock.emplace(ctx, rx_opts, batches);
                    // Room for the window whatever net.core.rmem_max says (we are root).
                    std::error_code ec;
                    if (!io::detail::set_option(rx_sock->native_handle(), SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20, ec))
                        io::detail::set_option(rx_sock->native_handle(), SOL_SOCKET, SO_RCVBUF, 8 << 20, ec);
                } else {
                    rx_ring.emplace(ctx, rx_opts, ring);
                }
            }
            receiver r(s, n, 1);
            std::vector<rx_endpoint> eps{k == 1 ? socket_endpoint(*rx_sock, r, 0) : ring_endpoint(*rx_ring, r, 0)};
            pump_result res;
            if (k == 2) {
                io::packet_socket tx(ctx, tx_opts, batches);
                res = pump(ctx, tx, eps, s, r, window, batch);
            } else {
                io::packet_tx_ring tx(ctx, tx_opts, tx_ring);
                res = pump(ctx, tx, eps, s, r, window, batch);
            }
            const double fps = static_cast<double>(r.ok) / res.seconds;
            std::printf("compare.%s: round=%zu length=%zu frames=%zu seconds=%.3f frames_per_second=%.0f\n", names[k],
                        round, s.fixed_length, r.ok, res.seconds, fps);
            check_stream(r, (std::string("compare.") + names[k]).c_str());
            best[k] = std::max(best[k], fps);
        }
    }
    for (std::size_t k = 0; k < 3; ++k)
        std::printf("compare.best: %s length=%zu frames_per_second=%.0f\n", names[k], s.fixed_length, best[k]);
    if (best[1] > 0 && best[2] > 0)
        std::printf("compare: length=%zu rx_ring_over_recvmmsg=%.2f tx_ring_over_sendmmsg=%.2f\n", s.fixed_length,
                    best[0] / best[1], best[0] / best[2]);
    return failures;
}

// --- raw IP ----------------------------------------------------------------------------------------
std::vector<std::byte> raw_payload(std::size_t i) {
    std::vector<std::byte> p(16 + (i * 13) % 900);
    cn::store_be32(p.data(), stream_magic);
    cn::store_be32(p.data() + 4, static_cast<std::uint32_t>(i));
    for (std::size_t k = 8; k < p.size(); ++k) p[k] = std::byte(static_cast<unsigned char>(i + k * 3));
    return p;
}

/// Sends `count` messages from `from` to `to` (flush every 32, at most 64 outstanding) and checks
/// that `to` receives exactly them; `make` builds what is sent and `expect` what the receiver
/// must find as the IP payload.
int raw_exchange(boost::asio::io_context& ctx, io::raw_ip_socket& from, io::raw_ip_socket& to, cn::ipv4_address src,
                 cn::ipv4_address dst, std::size_t count, const char* what,
                 const std::function<std::vector<std::byte>(std::size_t)>& make,
                 const std::function<std::vector<std::byte>(std::size_t)>& expect) {
    std::size_t got = 0, bad = 0, wrong_header = 0, sent = 0;
    std::vector<std::uint8_t> seen(count);
    rx_endpoint e{&to, [&] {
                      std::size_t total = 0;
                      while (const std::size_t k = to.receive([&](std::span<std::byte> pkt, cn::ipv4_address peer) {
                                 const auto p = cn::parse_ip_packet(pkt, {});
                                 if (!p || p->family() != cn::ip_family::v4 || p->ipv4().protocol() != to.protocol() ||
                                     peer != src || p->ipv4().src_address() != src || p->ipv4().dst_address() != dst) {
                                     ++wrong_header;
                                     return;
                                 }
                                 const auto body = p->ipv4().payload();
                                 if (body.size() < 8) { ++bad; return; }
                                 const std::size_t i = cn::load_be32(body.data() + 4);
                                 if (i >= count || seen[i] != 0) { ++bad; return; }
                                 const auto want = expect(i);
                                 if (want.size() != body.size() || std::memcmp(want.data(), body.data(), want.size()) != 0) {
                                     ++bad;
                                     return;
                                 }
                                 seen[i] = 1;
                                 ++got;
                             }))
                          total += k;
                      return total;
                  }};
    arm(e);
    const auto deadline = clock_type::now() + std::chrono::seconds(10);
    while (got + bad < count && clock_type::now() < deadline) {
        while (sent < count && sent - (got + bad) < 64) {
            const auto m = make(sent);
            from.send(m, dst);
            if (++sent % 32 == 0) from.flush();
        }
        from.flush();
        ctx.run_one_for(std::chrono::milliseconds(20));
    }
    to.cancel();
    ctx.run();
    ctx.restart();
    std::printf("raw.%s: received=%zu bad=%zu other_packets=%zu of %zu; sender sent=%llu send_errors=%llu\n", what, got, bad,
                wrong_header, count, static_cast<unsigned long long>(from.counters().tx.sent),
                static_cast<unsigned long long>(from.counters().tx.send_errors));
    check(got == count && bad == 0, std::string("raw.") + what + ": every message arrived intact");
    return failures;
}

int test_raw(const args& a) {
    boost::asio::io_context ctx;
    const std::size_t count = a.number("count", 2000);
    const cn::ipv4_address local = a.address("local"), peer = a.address("peer");
    const std::string peer_ns = a.get("peer-netns");
    std::optional<io::raw_ip_socket> b253, b4;
    {
        netns_scope ns(peer_ns);
        b253.emplace(ctx, io::raw_ip_options{.protocol = 253, .receive_buffer = 1 << 20});
        b4.emplace(ctx, io::raw_ip_options{.protocol = 4, .receive_buffer = 1 << 20});
    }
    io::raw_ip_socket a253(ctx, {.protocol = 253, .receive_buffer = 1 << 20});
    io::raw_ip_socket a253_hdr(ctx, {.protocol = 253, .header_included = true});
    io::raw_ip_socket a4(ctx, {.protocol = 4});
    std::optional<io::raw_ip_socket> b253_hdr;
    {
        netns_scope ns(peer_ns);
        b253_hdr.emplace(ctx, io::raw_ip_options{.protocol = 253, .header_included = true});
    }

    // 253, payloads: here -> peer.
    raw_exchange(ctx, a253, *b253, local, peer, count, "p253_payload", raw_payload, raw_payload);
    // 253, IP_HDRINCL: the peer builds whole packets back to us.
    auto whole = [&](cn::ipv4_address src, cn::ipv4_address dst) {
        return [src, dst](std::size_t i) {
            const auto body = raw_payload(i);
            std::vector<std::byte> buf(body.size() + 60);
            const auto r = cn::packet_builder(buf)
                               .ipv4({.src = src, .dst = dst, .ttl = 7, .id = static_cast<std::uint16_t>(i + 1), .protocol = 253})
                               .payload(body)
                               .finish();
            buf.resize(r ? r->size() : 0);
            return buf;
        };
    };
    raw_exchange(ctx, *b253_hdr, a253, peer, local, count, "p253_hdrincl", whole(peer, local), raw_payload);
    // IP-in-IP: here -> peer, an inner UDP packet as the payload of protocol 4.
    auto inner = [&](std::size_t i) {
        const auto body = raw_payload(i);
        std::vector<std::byte> buf(body.size() + 60);
        const auto r = cn::packet_builder(buf)
                           .ipv4({.src = cn::ipv4_address(198, 51, 100, 7), .dst = cn::ipv4_address(203, 0, 113, 10)})
                           .udp({.sport = 40000, .dport = 80})
                           .payload(body)
                           .finish();
        buf.resize(r ? r->size() : 0);
        return buf;
    };
    // The receiver finds the inner packet as the payload: check its index where the inner
    // packet keeps it (after 28 bytes of inner IPv4 + UDP), by comparing the whole inner packet.
    std::size_t inner_ok = 0, inner_bad = 0;
    {
        std::vector<std::uint8_t> seen(count);
        rx_endpoint e{&*b4, [&] {
                          std::size_t total = 0;
                          while (const std::size_t k = b4->receive([&](std::span<std::byte> pkt, cn::ipv4_address) {
                                     const auto p = cn::parse_ip_packet(pkt, {.decapsulate = true});
                                     if (!p || !p->is_tunnelled() || !p->is_udp() || p->outer_ipv4().protocol() != 4) {
                                         ++inner_bad;
                                         return;
                                     }
                                     const auto body = p->udp().payload();
                                     const std::size_t i = body.size() >= 8 ? cn::load_be32(body.data() + 4) : count;
                                     const auto want = inner(i < count ? i : 0);
                                     const auto got_inner = p->ip_bytes();
                                     if (i >= count || seen[i] != 0 || got_inner.size() != want.size() ||
                                         std::memcmp(got_inner.data(), want.data(), want.size()) != 0 ||
                                         cn::verify_checksums(*p).transport != cn::checksum_status::ok) {
                                         ++inner_bad;
                                         return;
                                     }
                                     seen[i] = 1;
                                     ++inner_ok;
                                 }))
                              total += k;
                          return total;
                      }};
        arm(e);
        std::size_t sent = 0;
        const auto deadline = clock_type::now() + std::chrono::seconds(10);
        while (inner_ok + inner_bad < count && clock_type::now() < deadline) {
            while (sent < count && sent - (inner_ok + inner_bad) < 64) a4.send(inner(sent++), peer);
            a4.flush();
            ctx.run_one_for(std::chrono::milliseconds(20));
        }
        b4->cancel();
        ctx.run();
        ctx.restart();
    }
    std::printf("raw.ipip: decapsulated=%zu bad=%zu of %zu\n", inner_ok, inner_bad, count);
    check(inner_ok == count && inner_bad == 0, "raw.ipip: every inner packet arrived intact, checksums valid");
    return failures;
}

// --- TUN -------------------------------------------------------------------------------------------
int test_tun(const args& a) {
    boost::asio::io_context ctx;
    const std::size_t count = a.number("count", 200);
    const cn::ipv4_address local = a.address("local"), remote = a.address("remote");
    // A small batch makes each wake-up need several receive() calls (the drain loop below).
    const auto batch = static_cast<std::uint32_t>(a.number("batch", 8));
    auto queues = io::tun_queue::open_queues(ctx, {.name = a.get("name"), .multi_queue = true, .batch = batch}, 2);
    std::printf("tun: device=%s queues=%zu\n", queues[0].name().c_str(), queues.size());

    std::size_t echo_ok = 0, rst_ok = 0, other = 0, bad = 0, warm_replies = 0;
    std::array<std::size_t, 2> per_queue{};
    std::vector<std::uint8_t> echo_seen(count), rst_seen(count);
    auto echo_payload = [](std::size_t i) {
        std::vector<std::byte> p(32 + i % 64);
        for (std::size_t k = 0; k < p.size(); ++k) p[k] = std::byte(static_cast<unsigned char>(i * 5 + k));
        return p;
    };
    std::vector<rx_endpoint> eps;
    for (std::size_t q = 0; q < queues.size(); ++q) {
        // Drain until a call comes back short of a full batch: the wait is edge-triggered, and
        // packets left behind would wait for the next edge.
        eps.push_back({&queues[q], [&, q] {
                           std::size_t total = 0, got = 0;
                           do {
                               got = queues[q].receive([&](std::span<std::byte> pkt) {
                               const auto p = cn::parse_ip_packet(pkt, {});
                               if (!p || p->family() != cn::ip_family::v4 || p->ipv4().src_address() != local ||
                                   p->ipv4().dst_address() != remote) {
                                   ++other;  // IPv6 router solicitations and the like
                                   return;
                               }
                               const auto sums = cn::verify_checksums(*p);
                               if (sums.ip != cn::checksum_status::ok || sums.transport != cn::checksum_status::ok) {
                                   ++bad;
                                   return;
                               }
                               ++per_queue[q];
                               if (p->is_icmp() && p->icmp().type() == 0 && p->icmp().identifier() == 0x0c1f) {
                                   ++warm_replies;  // a warm-up probe's answer (see below)
                                   --per_queue[q];
                               } else if (p->is_icmp() && p->icmp().type() == 0 && p->icmp().identifier() == 0x0c10) {
                                   const std::size_t i = p->icmp().sequence();
                                   const auto want = echo_payload(i);
                                   const auto got = p->icmp().payload();
                                   if (i >= count || echo_seen[i] != 0 || got.size() != want.size() ||
                                       std::memcmp(got.data(), want.data(), want.size()) != 0) {
                                       ++bad;
                                       return;
                                   }
                                   echo_seen[i] = 1;
                                   ++echo_ok;
                               } else if (p->is_tcp() && (p->tcp().flags() & cn::tcp_flags::rst) != 0) {
                                   const std::size_t i = p->tcp().dport() - 30000u;
                                   if (i >= count || rst_seen[i] != 0 || p->tcp().sport() != 9 ||
                                       p->tcp().ack_seq() != 1000u * static_cast<std::uint32_t>(i) + 1) {
                                       ++bad;
                                       return;
                                   }
                                   rst_seen[i] = 1;
                                   ++rst_ok;
                               } else {
                                   ++other;
                               }
                           });
                               total += got;
                           } while (got == queues[q].batch_size());
                           return total;
                       }});
    }
    for (auto& e : eps) arm(e);
    std::array<std::byte, 256> buf{};

    // Warm-up. Attaching the first queue turns the carrier on, but the kernel activates the
    // device's transmit queue from its link-watch work, which may run up to a second later
    // (events are rate-limited machine-wide); until then what it routes into the TUN is dropped.
    // Probe every 50 ms until one probe is answered, then count exactly.
    const auto warm_deadline = clock_type::now() + std::chrono::seconds(10);
    std::size_t probes = 0;
    while (warm_replies == 0 && clock_type::now() < warm_deadline) {
        const auto probe = cn::packet_builder(buf)
                               .ipv4({.src = remote, .dst = local})
                               .icmp({.type = 8, .identifier = 0x0c1f, .sequence = static_cast<std::uint16_t>(probes++)})
                               .finish();
        if (probe) queues[0].send(*probe);
        queues[0].flush();
        const auto until = clock_type::now() + std::chrono::milliseconds(50);
        while (warm_replies == 0 && clock_type::now() < until) ctx.run_one_until(until);
    }
    std::printf("tun: warm_up_probes=%zu answered=%zu\n", probes, warm_replies);
    check(warm_replies > 0, "tun: the kernel answers through the TUN at all");

    std::size_t sent = 0;
    const auto deadline = clock_type::now() + std::chrono::seconds(10);
    // At most 64 replies outstanding; if nothing comes back for half a second, the window
    // opens anyway, so that a lost reply shows up as a count below, not as a stall.
    std::size_t last_answers = 0, relief = 0;
    auto last_progress = clock_type::now();
    while (echo_ok + rst_ok + bad < 2 * count && clock_type::now() < deadline) {
        const std::size_t answers = echo_ok + rst_ok + bad;
        if (answers != last_answers) {
            last_answers = answers;
            last_progress = clock_type::now();
        } else if (clock_type::now() - last_progress > std::chrono::milliseconds(500)) {
            relief += 32;
            last_progress = clock_type::now();
        }
        while (sent < count && sent * 2 - answers < 64 + 2 * relief) {
            io::tun_queue& q = queues[sent % 2];  // both queues write
            const auto echo = cn::packet_builder(buf)
                                  .ipv4({.src = remote, .dst = local})
                                  .icmp({.type = 8, .identifier = 0x0c10, .sequence = static_cast<std::uint16_t>(sent)})
                                  .payload(echo_payload(sent))
                                  .finish();
            if (echo) q.send(*echo);
            const auto syn = cn::packet_builder(buf)
                                 .ipv4({.src = remote, .dst = local})
                                 .tcp({.sport = static_cast<std::uint16_t>(30000 + sent), .dport = 9,
                                       .seq = 1000u * static_cast<std::uint32_t>(sent), .flags = cn::tcp_flags::syn})
                                 .finish();
            if (syn) q.send(*syn);
            ++sent;
        }
        for (auto& q : queues) q.flush();
        ctx.run_one_for(std::chrono::milliseconds(20));
    }
    for (auto& q : queues) q.cancel();
    ctx.run();
    std::printf("tun: echo_replies=%zu rsts=%zu bad=%zu other=%zu queue0=%zu queue1=%zu window_reliefs=%zu "
                "written=%llu+%llu write_errors=%llu\n",
                echo_ok, rst_ok, bad, other, per_queue[0], per_queue[1], relief / 32,
                static_cast<unsigned long long>(queues[0].counters().tx.sent),
                static_cast<unsigned long long>(queues[1].counters().tx.sent),
                static_cast<unsigned long long>(queues[0].counters().tx.send_errors + queues[1].counters().tx.send_errors));
    check(echo_ok == count, "tun: an echo reply for every echo request, payload intact");
    check(rst_ok == count, "tun: a RST for every SYN to the closed port");
    check(bad == 0, "tun: no reply with a bad checksum or unexpected content");
    check(queues[0].counters().tx.sent == 2 * ((count + 1) / 2) + probes && queues[1].counters().tx.sent == 2 * (count / 2),
          "tun: both queues wrote their packets");
    return failures;
}

// --- TAP ------------------------------------------------------------------------------------------
/// A TAP device carries Ethernet: ask the kernel for the device's MAC by ARP, then ping it in
/// Ethernet frames to that MAC; read the ARP reply and the echo replies back.
int test_tap(const args& a) {
    boost::asio::io_context ctx;
    const std::size_t count = a.number("count", 50);
    const cn::ipv4_address local = a.address("local"), remote = a.address("remote");
    const cn::mac_address our_mac = *cn::mac_address::parse("02:00:00:c0:10:02");
    io::tun_queue tap(ctx, {.name = a.get("name"), .mode = io::tun_mode::tap});
    std::optional<cn::mac_address> device_mac;
    std::size_t echo_ok = 0, other = 0;
    std::vector<std::uint8_t> seen(count);
    rx_endpoint e{&tap, [&] {
                      std::size_t total = 0, got = 0;
                      do {
                      got = tap.receive([&](std::span<std::byte> frame) {
                          const auto p = cn::parse_ethernet_packet(frame, {});
                          if (!p) { ++other; return; }
                          if (p->is_arp() && p->arp().operation() == cn::arp_op::reply && p->arp().sender_ip() == local &&
                              p->arp().target_ip() == remote && p->arp().target_mac() == our_mac &&
                              p->ethernet().dst() == our_mac) {
                              device_mac = p->arp().sender_mac();
                              return;
                          }
                          if (p->family() == cn::ip_family::v4 && p->is_icmp() && p->icmp().type() == 0 &&
                              p->icmp().identifier() == 0x0c11 && p->ethernet().dst() == our_mac && device_mac &&
                              p->ethernet().src() == *device_mac &&
                              cn::verify_checksums(*p).transport == cn::checksum_status::ok) {
                              const std::size_t i = p->icmp().sequence();
                              if (i < count && seen[i] == 0) {
                                  seen[i] = 1;
                                  ++echo_ok;
                                  return;
                              }
                          }
                          ++other;  // the kernel's own IPv6 or ARP chatter
                      });
                          total += got;
                      } while (got == tap.batch_size());
                      return total;
                  }};
    arm(e);
    std::array<std::byte, 256> buf{};
    const auto deadline = clock_type::now() + std::chrono::seconds(10);
    auto next_arp = clock_type::now();
    std::size_t sent = 0;
    while (echo_ok < count && clock_type::now() < deadline) {
        if (!device_mac && clock_type::now() >= next_arp) {  // ask again until answered
            const auto arp = cn::packet_builder(buf)
                                 .ethernet({.dst = *cn::mac_address::parse("ff:ff:ff:ff:ff:ff"), .src = our_mac})
                                 .arp({.operation = cn::arp_op::request, .sender_mac = our_mac, .sender_ip = remote,
                                       .target_ip = local})
                                 .finish();
            if (arp) tap.send(*arp);
            next_arp = clock_type::now() + std::chrono::milliseconds(200);
        }
        while (device_mac && sent < count && sent - echo_ok < 32) {
            const auto echo = cn::packet_builder(buf)
                                  .ethernet({.dst = *device_mac, .src = our_mac})
                                  .ipv4({.src = remote, .dst = local})
                                  .icmp({.type = 8, .identifier = 0x0c11, .sequence = static_cast<std::uint16_t>(sent)})
                                  .payload(40)
                                  .finish();
            if (echo) tap.send(*echo);
            ++sent;
        }
        tap.flush();
        ctx.run_one_for(std::chrono::milliseconds(20));
    }
    tap.cancel();
    ctx.run();
    std::printf("tap: device=%s mac=%s echo_replies=%zu other=%zu of %zu\n", tap.name().c_str(),
                device_mac ? "learned" : "unknown", echo_ok, other, count);
    check(device_mac.has_value(), "tap: the kernel answered ARP for the device's address");
    check(echo_ok == count, "tap: an echo reply for every echo request, in Ethernet frames");
    return failures;
}

// --- setup errors ----------------------------------------------------------------------------------
int test_errors(const args&) {
    boost::asio::io_context ctx;
    std::error_code ec;
    io::packet_rx_ring rx(ctx);
    rx.open({.interface = "cnio-nosuch0"}, {}, ec);
    std::printf("errors: missing interface: %s (%s)\n", ec.message().c_str(), ec.category().name());
    check(ec == std::errc::no_such_device, "errors: a missing interface is ENODEV");
    check(!rx.is_open(), "errors: the ring stays closed");
    try {
        io::packet_tx_ring tx(ctx, {.interface = "cnio-nosuch0"});
        check(false, "errors: the throwing form throws");
    } catch (const std::system_error& e) {
        std::printf("errors: thrown: %s\n", e.what());
        check(std::string_view(e.what()).find("cnio-nosuch0") != std::string_view::npos &&
                  std::string_view(e.what()).find("if_nametoindex") != std::string_view::npos,
              "errors: the message names the interface and the call");
    }
    rx.open({.interface = "lo"}, {.block_size = 1000}, ec);
    check(ec == cn::errc::invalid_argument, "errors: a block size off the page size is invalid_argument");
    io::tun_queue t(ctx);
    t.open({.name = "this-name-is-far-too-long"}, ec);
    check(ec == cn::errc::invalid_argument, "errors: a TUN name over 15 characters is invalid_argument");
    io::raw_ip_socket r(ctx);
    r.open({.protocol = 0}, ec);
    check(ec == cn::errc::invalid_argument, "errors: raw protocol 0 is invalid_argument");
    return failures;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h") {
        std::printf("usage: cn-io-selftest ring|fanout|compare|raw|tun|tap|errors [--key value ...]\n"
                    "  see the comment at the top of examples/io_selftest.cpp, or docs/io.md\n");
        return argc < 2 ? 2 : 0;
    }
    args a;
    for (int i = 2; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        if (k.rfind("--", 0) != 0) {
            std::fprintf(stderr, "cn-io-selftest: expected --key, got %s\n", argv[i]);
            return 2;
        }
        a.kv[k.substr(2)] = argv[i + 1];
    }
    const std::string test = argv[1];
    static const std::map<std::string, int (*)(const args&)> tests{
        {"ring", test_ring}, {"fanout", test_fanout}, {"compare", test_compare},
        {"raw", test_raw},   {"tun", test_tun},       {"tap", test_tap},
        {"errors", test_errors}};
    const auto it = tests.find(test);
    if (it == tests.end()) {
        std::fprintf(stderr, "cn-io-selftest: unknown test %s\n", test.c_str());
        return 2;
    }
    try {
        it->second(a);
    } catch (const std::exception& e) {
        std::printf("FAIL: %s: %s\n", test.c_str(), e.what());
        return 1;
    }
    std::printf("%s\n", failures == 0 ? "PASS" : "FAIL");
    return failures == 0 ? 0 : 1;
}
