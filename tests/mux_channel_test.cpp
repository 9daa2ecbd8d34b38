// Tests of the multiplexed channel over real UNIX stream sockets (socketpair) and Boost.Asio:
// streams open, carry bytes both ways and close; a receiver's buffer never overflows, even
// against a peer that ignores its credit; a stalled stream does not hold back the others; every
// byte arrives once readers drain; random interleavings agree with a model; the grant overhead at
// the default settings stays under 0.1 %; Figure 3's calls are forwarded to a server end that
// makes the real system calls, and an asynchronous error is reported at the next call.
#include <clusternet/mux_channel.hpp>

#include <doctest/doctest.h>

#include <boost/asio/local/connect_pair.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <map>
#include <random>
#include <utility>
#include <vector>

using namespace clusternet;
using boost::asio::local::stream_protocol;

namespace {

/// The byte at offset `i` of stream number `k`'s data, so that order and duplicates show.
std::byte pattern(std::size_t k, std::uint64_t i) {
    return std::byte(static_cast<unsigned char>((i * 131 + k * 17 + (i >> 9)) & 0xFF));
}

/// Where `got` (stream k's bytes from offset `at`) first differs from the pattern; size if nowhere.
std::size_t first_mismatch(std::span<const std::byte> got, std::size_t k, std::uint64_t at) {
    for (std::size_t i = 0; i < got.size(); ++i)
        if (got[i] != pattern(k, at + i)) return i;
    return got.size();
}

/// Two channels joined by a socketpair, run by one io_context.
struct channel_pair {
    boost::asio::io_context io;
    std::shared_ptr<mux_channel> a, b;  // a: the opener (application node), b: the acceptor (I/O server)

    explicit channel_pair(const mux_config& ca = {}, const mux_config& cb = {}, mux_callbacks fa = {},
                          mux_callbacks fb = {}) {
        stream_protocol::socket sa(io), sb(io);
        boost::asio::local::connect_pair(sa, sb);
        a = mux_channel::create(std::move(sa), ca, std::move(fa));
        b = mux_channel::create(std::move(sb), cb, std::move(fb));
        a->start();
        b->start();
    }
    ~channel_pair() {
        a->close();
        b->close();
        io.poll();
    }

    /// Runs handlers until pred() holds; fails the test after a generous wall-clock guard.
    template <class Pred>
    bool run_until(Pred pred, std::chrono::seconds guard = std::chrono::seconds(60)) {
        const auto deadline = std::chrono::steady_clock::now() + guard;
        while (!pred()) {
            if (io.stopped()) io.restart();
            if (io.run_one_for(std::chrono::milliseconds(100)) == 0 && std::chrono::steady_clock::now() > deadline)
                return false;
            if (std::chrono::steady_clock::now() > deadline) return false;
        }
        return true;
    }
};

/// A writer that keeps a stream's send buffer full with the pattern until `total` bytes.
struct pattern_writer {
    mux_endpoint* ep = nullptr;
    stream_id id = no_stream;
    std::size_t k = 0;
    std::uint64_t total = 0, written = 0;
    std::vector<std::byte> chunk = std::vector<std::byte>(16384);

    void pump() {
        while (written < total) {
            const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), total - written));
            for (std::size_t i = 0; i < n; ++i) chunk[i] = pattern(k, written + i);
            std::error_code ec;
            const std::size_t took = ep->send(id, std::span(chunk).first(n), ec);
            REQUIRE_FALSE(ec);
            written += took;
            if (took < n) return;  // buffer_available will call again
        }
    }
};

/// A reader that checks the pattern and counts.
struct pattern_reader {
    std::size_t k = 0;
    std::uint64_t got = 0;
    bool stalled = false;
    std::vector<std::byte> buf = std::vector<std::byte>(7000);

    void drain(mux_endpoint& ep, stream_id id, std::size_t max_per_call = SIZE_MAX) {
        if (stalled) return;
        std::size_t taken = 0;
        for (;;) {
            std::error_code ec;
            const std::size_t n = ep.read(id, std::span(buf).first(std::min(buf.size(), max_per_call - taken)), ec);
            REQUIRE_FALSE(ec);
            REQUIRE(first_mismatch(std::span(buf).first(n), k, got) == n);
            got += n;
            taken += n;
            if (n == 0 || taken >= max_per_call) return;
        }
    }
};

void check_no_faults(const mux_endpoint& ep) {
    for (std::size_t i = 0; i < flow_error_count; ++i) {
        CAPTURE(to_string(static_cast<flow_error>(i)));
        CHECK(ep.counters().flow_errors[i] == 0);
    }
    CHECK(ep.counters().protocol_errors == 0);
}

}  // namespace

TEST_SUITE("mux_channel") {

TEST_CASE("a stream opens, carries bytes both ways, and closes") {
    mux_config cfg;
    cfg.capacity = 16;
    cfg.window = 8192;
    cfg.send_buffer = 8192;
    stream_id server_id = no_stream, client_id = no_stream;
    bool established = false, server_closed = false, client_closed = false;
    std::uint32_t seen_tag = 0;
    saps::endpoint seen_peer{};
    pattern_reader at_server{.k = 1}, at_client{.k = 2};
    pattern_writer to_server, to_client;
    mux_callbacks fa, fb;
    channel_pair* pp = nullptr;
    fb.connection_accepted = [&](stream_id id, const saps::frame& open) {
        server_id = id;
        seen_tag = open.tag;
        seen_peer = open.peer;
        to_client = {.ep = &pp->b->endpoint(), .id = id, .k = 2, .total = 300000};
        to_client.pump();  // may send at once: the accept still goes first
        return 0;
    };
    fb.message_received = [&](stream_id id) { at_server.drain(pp->b->endpoint(), id); };
    fb.buffer_available = [&](stream_id) { to_client.pump(); };
    fb.connection_closed = [&](stream_id id, std::error_code ec) {
        CHECK_FALSE(ec);
        server_closed = true;
        pp->b->endpoint().close_connection(id);
    };
    fa.connection_established = [&](stream_id id, std::error_code ec) {
        REQUIRE_FALSE(ec);
        established = true;
        to_server = {.ep = &pp->a->endpoint(), .id = id, .k = 1, .total = 500000};
        to_server.pump();
    };
    fa.message_received = [&](stream_id id) { at_client.drain(pp->a->endpoint(), id); };
    fa.buffer_available = [&](stream_id) { to_server.pump(); };
    fa.connection_closed = [&](stream_id, std::error_code) { client_closed = true; };
    channel_pair p(cfg, cfg, fa, fb);
    pp = &p;
    const auto peer = saps::endpoint::v4(ipv4_address(0xC0000201), 40000);
    client_id = p.a->endpoint().make_connection(80, peer, {});
    REQUIRE(p.run_until([&] { return at_server.got == 500000 && at_client.got == 300000; }));
    CHECK(established);
    CHECK(seen_tag == 80);
    CHECK(seen_peer == peer);
    CHECK(p.a->endpoint().open_streams() == 1);
    CHECK(p.a->endpoint().close_connection(client_id));
    // The server answers the close; the client's slot is released when the answer arrives.
    REQUIRE(p.run_until([&] {
        return server_closed && p.b->endpoint().open_streams() == 0 && p.a->endpoint().open_streams() == 0;
    }));
    CHECK_FALSE(client_closed);  // we closed it ourselves: no callback
    check_no_faults(p.a->endpoint());
    check_no_faults(p.b->endpoint());
    CHECK(p.b->endpoint().counters().data_bytes_in == 500000);
}

TEST_CASE("an open the acceptor refuses is refused; a full table refuses locally") {
    mux_config small;
    small.capacity = 1;
    small.window = 1024;
    small.send_buffer = 1024;
    mux_callbacks fa, fb;
    std::vector<std::error_code> answers;
    fa.connection_established = [&](stream_id, std::error_code ec) { answers.push_back(ec); };
    int calls = 0;
    fb.connection_accepted = [&](stream_id, const saps::frame& open) { ++calls; return open.tag == 7 ? EACCES : 0; };
    channel_pair p(small, small, fa, fb);
    p.a->endpoint().make_connection(7);
    REQUIRE(p.run_until([&] { return answers.size() == 1; }));
    CHECK(answers[0] == std::error_code(EACCES, std::generic_category()));
    CHECK(p.a->endpoint().open_streams() == 0);
    p.a->endpoint().make_connection(1);
    REQUIRE(p.run_until([&] { return answers.size() == 2; }));
    CHECK_FALSE(answers[1]);
    // The opener's own table (capacity 1) is full now: it refuses locally, with a clear error.
    std::error_code ec;
    CHECK(p.a->endpoint().make_connection(2, {}, {}, ec) == no_stream);
    CHECK(ec == errc::capacity_exceeded);
    CHECK(calls == 2);
    CHECK(p.b->endpoint().counters().opens_refused == 1);
}

TEST_CASE("a receiver's buffer never overflows, however slowly it reads") {
    mux_config cfg;
    cfg.capacity = 8;
    cfg.window = 4096;
    cfg.send_buffer = 65536;
    pattern_reader r{.k = 3};
    pattern_writer w;
    std::size_t max_buffered = 0;
    mux_callbacks fa, fb;
    channel_pair* pp = nullptr;
    stream_id sid = no_stream;
    // The application reads 100 bytes at a time, as a handler of its own between the
    // channel's handlers.
    std::function<void()> slow_read = [&] {
        r.drain(pp->b->endpoint(), sid, 100);
        if (r.got < (1u << 20)) boost::asio::post(pp->io, slow_read);
    };
    fb.connection_accepted = [&](stream_id id, const saps::frame&) {
        sid = id;
        boost::asio::post(pp->io, slow_read);
        return 0;
    };
    fb.message_received = [&](stream_id id) {
        const auto& ep = pp->b->endpoint();
        max_buffered = std::max(max_buffered, ep.readable(id));
        REQUIRE(ep.stream(id)->rx.buffered() <= cfg.window);
    };
    fa.connection_established = [&](stream_id id, std::error_code) {
        w = {.ep = &pp->a->endpoint(), .id = id, .k = 3, .total = 1 << 20};
        w.pump();
    };
    fa.buffer_available = [&](stream_id) { w.pump(); };
    channel_pair p(cfg, cfg, fa, fb);
    pp = &p;
    p.a->endpoint().make_connection();
    REQUIRE(p.run_until([&] { return r.got == (1u << 20); }));
    CHECK(max_buffered <= cfg.window);
    CHECK(max_buffered > cfg.window / 2);  // the credit was used, not just trickled
    check_no_faults(p.a->endpoint());
    check_no_faults(p.b->endpoint());
}

TEST_CASE("a peer that ignores its credit is refused and counted; the channel and other streams go on") {
    boost::asio::io_context io;
    stream_protocol::socket raw(io), sb(io);
    boost::asio::local::connect_pair(raw, sb);
    mux_config cfg;
    cfg.capacity = 8;
    cfg.window = 4096;
    std::vector<std::pair<stream_id, std::error_code>> closed;
    std::uint64_t delivered = 0;
    stream_id reading = no_stream;  // the only stream whose application reads
    mux_callbacks cb;
    std::shared_ptr<mux_channel> ch;
    cb.connection_closed = [&](stream_id id, std::error_code ec) { closed.emplace_back(id, ec); };
    cb.message_received = [&](stream_id id) {
        if (id != reading) return;
        std::vector<std::byte> buf(65536);
        std::error_code ec;
        delivered += ch->endpoint().read(id, buf, ec);
    };
    ch = mux_channel::create(std::move(sb), cfg, cb);
    ch->start();

    // The raw peer: hand-made frames written on the other socket, its input decoded as it comes.
    auto send_frame = [&](const saps::frame& f) {
        std::vector<std::byte> b(saps::encoded_size(f));
        REQUIRE(saps::encode(f, b) == b.size());
        boost::asio::write(raw, boost::asio::buffer(b));
    };
    saps::frame_decoder dec;
    std::vector<saps::frame> got;  // no payloads kept: only fixed-size frames are looked at
    std::vector<std::byte> rbuf(65536);
    std::function<void()> read_raw = [&] {
        raw.async_read_some(boost::asio::buffer(rbuf), [&](const boost::system::error_code& ec, std::size_t n) {
            if (ec) return;
            REQUIRE(dec.feed(std::span(rbuf).first(n), [&](const saps::frame& f) { got.push_back(f); }) == parse_error::none);
            read_raw();
        });
    };
    read_raw();
    auto run_until = [&](auto pred) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (!pred() && std::chrono::steady_clock::now() < deadline) io.run_one_for(std::chrono::milliseconds(100));
        return pred();
    };
    auto wait_frame = [&](saps::frame_type t) {
        saps::frame out;
        REQUIRE(run_until([&] {
            for (const auto& f : got) if (f.type == t) { out = f; return true; }
            return false;
        }));
        got.clear();
        return out;
    };
    send_frame(saps::frame::make_hello(saps::default_max_frame, 16));
    send_frame(saps::frame::make_open(0x10001, 65536, 0));
    const saps::frame accept1 = wait_frame(saps::frame_type::accept);
    CHECK(accept1.stream == 0x10001);
    send_frame(saps::frame::make_open(0x10002, 65536, 0));
    const saps::frame accept2 = wait_frame(saps::frame_type::accept);
    reading = accept2.id;

    // 3000 + 3000 bytes on a 4096-byte window: the second frame is beyond the credit.
    const std::vector<std::byte> payload(3000, std::byte{1});
    send_frame(saps::frame::make_data(accept1.id, payload));
    send_frame(saps::frame::make_data(accept1.id, payload));
    const saps::frame close = wait_frame(saps::frame_type::close);
    CHECK(close.stream == 0x10001);
    CHECK(close.error == EPROTO);
    REQUIRE(closed.size() == 1);
    CHECK(closed[0].first == accept1.id);
    CHECK(closed[0].second == std::error_code(EPROTO, std::generic_category()));
    CHECK(ch->endpoint().counters().flow_errors[static_cast<std::size_t>(flow_error::overflow)] == 1);
    CHECK(ch->endpoint().readable(accept1.id) == 3000);  // the excess was not stored

    // The other stream still works, and so does the channel.
    send_frame(saps::frame::make_data(accept2.id, payload));
    REQUIRE(run_until([&] { return delivered == 3000; }));
    CHECK_FALSE(ch->failed());
    // A grant below the limit already granted is stale: counted, that stream closed.
    send_frame(saps::frame::make_grant(accept2.id, 1));
    const saps::frame close2 = wait_frame(saps::frame_type::close);
    CHECK(close2.stream == 0x10002);
    CHECK(ch->endpoint().counters().flow_errors[static_cast<std::size_t>(flow_error::stale_grant)] == 1);
    // A framing error, finally, fails the whole channel with a clear error.
    std::error_code failure;
    ch->on_failed = [&](std::error_code ec) { failure = ec; };
    const std::array<std::byte, 12> garbage{std::byte{0}, std::byte{0}, std::byte{0}, std::byte{12}, std::byte{9}};
    boost::asio::write(raw, boost::asio::buffer(garbage));
    REQUIRE(run_until([&] { return static_cast<bool>(failure); }));
    CHECK(failure == parse_error::bad_version);
    CHECK(ch->failed());
    raw.close();
    io.poll();
}

TEST_CASE("a stalled stream never blocks another, and everything arrives once it drains") {
    mux_config cfg;
    cfg.capacity = 16;
    cfg.window = 64 * 1024;
    cfg.send_buffer = 64 * 1024;
    constexpr std::size_t streams = 4;
    constexpr std::uint64_t total = 4 << 20;
    std::array<pattern_reader, streams> readers{};
    std::array<pattern_writer, streams> writers{};
    std::map<stream_id, std::size_t> server_index, client_index;
    readers[0].stalled = true;  // its application stops reading
    mux_callbacks fa, fb;
    channel_pair* pp = nullptr;
    fb.connection_accepted = [&](stream_id id, const saps::frame& open) {
        server_index[id] = open.tag;
        return 0;
    };
    fb.message_received = [&](stream_id id) { readers[server_index[id]].drain(pp->b->endpoint(), id); };
    fa.connection_established = [&](stream_id id, std::error_code) {
        const std::size_t k = client_index[id];
        writers[k] = {.ep = &pp->a->endpoint(), .id = id, .k = k, .total = total};
        writers[k].pump();
    };
    fa.buffer_available = [&](stream_id id) { writers[client_index[id]].pump(); };
    channel_pair p(cfg, cfg, fa, fb);
    pp = &p;
    for (std::size_t k = 0; k < streams; ++k) {
        readers[k].k = k;
        client_index[p.a->endpoint().make_connection(static_cast<std::uint32_t>(k))] = k;
    }
    // Every stream but the stalled one delivers all its bytes.
    REQUIRE(p.run_until([&] {
        for (std::size_t k = 1; k < streams; ++k) if (readers[k].got < total) return false;
        return true;
    }));
    for (std::size_t k = 1; k < streams; ++k) CHECK(readers[k].got == total);
    // The stalled stream filled its window exactly, and holds no more than that.
    stream_id stalled_id = no_stream;
    for (auto& [id, k] : server_index) if (k == 0) stalled_id = id;
    REQUIRE(p.run_until([&] { return p.b->endpoint().readable(stalled_id) == cfg.window; }));
    CHECK(readers[0].got == 0);
    CHECK(p.b->endpoint().stream(stalled_id)->rx.buffered() == cfg.window);
    // Liveness: the reader comes back; every byte arrives, in order, once.
    readers[0].stalled = false;
    readers[0].drain(p.b->endpoint(), stalled_id);
    REQUIRE(p.run_until([&] { return readers[0].got == total; }));
    CHECK(p.b->endpoint().counters().data_bytes_in == streams * total);
    check_no_faults(p.a->endpoint());
    check_no_faults(p.b->endpoint());
}

TEST_CASE("random interleavings of sends, reads and channel steps agree with a model") {
    std::mt19937_64 rng(20261201);
    for (int round = 0; round < 6; ++round) {
        mux_config cfg;
        cfg.capacity = 32;
        cfg.window = 1 + rng() % 20000;
        cfg.send_buffer = 1 + rng() % 30000;
        cfg.max_frame = 69 + rng() % 9000;
        const std::size_t streams = 1 + rng() % 8;
        CAPTURE(round);
        CAPTURE(cfg.window);
        CAPTURE(cfg.send_buffer);
        CAPTURE(cfg.max_frame);
        // The model: per stream, the bytes offered so far (the writer's count) and the bytes the
        // reader has taken; the channel must deliver exactly the pattern prefix, in order.
        std::vector<std::uint64_t> offered(streams, 0), accepted(streams, 0), taken(streams, 0);
        std::vector<stream_id> cid(streams, no_stream), sid(streams, no_stream);
        std::map<stream_id, std::size_t> by_server;
        mux_callbacks fb;
        fb.connection_accepted = [&](stream_id id, const saps::frame& open) { by_server[id] = open.tag; sid[open.tag] = id; return 0; };
        channel_pair p(cfg, cfg, {}, fb);
        for (std::size_t k = 0; k < streams; ++k) cid[k] = p.a->endpoint().make_connection(static_cast<std::uint32_t>(k));
        REQUIRE(p.run_until([&] {
            for (std::size_t k = 0; k < streams; ++k) if (!p.a->endpoint().is_open(cid[k]) || sid[k] == no_stream) return false;
            return true;
        }));
        auto& A = p.a->endpoint();
        auto& B = p.b->endpoint();
        std::vector<std::byte> buf(40000);
        std::size_t cut_short = 0;
        auto do_read = [&](std::size_t k, std::size_t max) {
            std::error_code ec;
            const std::size_t n = B.read(sid[k], std::span(buf).first(max), ec);
            REQUIRE_FALSE(ec);
            REQUIRE(first_mismatch(std::span(buf).first(n), k, taken[k]) == n);
            taken[k] += n;
        };
        for (int step = 0; step < 3000; ++step) {
            const std::size_t k = rng() % streams;
            switch (rng() % 4) {
                case 0: {  // the application writes
                    const std::size_t n = 1 + rng() % 12000;
                    for (std::size_t i = 0; i < n; ++i) buf[i] = pattern(k, accepted[k] + i);
                    std::error_code ec;
                    const std::size_t took = A.send(cid[k], std::span(buf).first(n), ec);
                    REQUIRE_FALSE(ec);
                    REQUIRE(took <= n);
                    if (took < n) ++cut_short;
                    offered[k] += n;
                    accepted[k] += took;
                    break;
                }
                case 1: do_read(k, 1 + rng() % 15000); break;  // the application reads
                default: {  // the channel moves: some handlers (reads, writes, grants) run
                    const int handlers = static_cast<int>(rng() % 6);
                    for (int h = 0; h < handlers; ++h) p.io.poll_one();
                    break;
                }
            }
            // Invariants at every step.
            for (std::size_t j = 0; j < streams; ++j) {
                const auto* e = B.stream(sid[j]);
                REQUIRE(e != nullptr);
                REQUIRE(e->rx.buffered() <= cfg.window);
                REQUIRE(taken[j] + B.readable(sid[j]) <= accepted[j]);
                REQUIRE(A.queued(cid[j]) <= cfg.send_buffer);
            }
        }
        // Liveness: the readers drain, the channel runs; every accepted byte arrives once.
        REQUIRE(p.run_until([&] {
            bool done = true;
            for (std::size_t k = 0; k < streams; ++k) {
                do_read(k, buf.size());
                if (taken[k] != accepted[k]) done = false;
            }
            return done;
        }));
        for (std::size_t k = 0; k < streams; ++k) {
            CHECK(taken[k] == accepted[k]);
            CHECK(A.queued(cid[k]) == 0);
        }
        CHECK(cut_short > 0);  // the send buffers filled up: back-pressure was exercised
        CHECK(B.counters().grant_frames_out > 0);
        check_no_faults(A);
        check_no_faults(B);
    }
}

TEST_CASE("window updates cost under 0.1 % of the bytes at the default settings") {
    const mux_config defaults;
    pattern_reader r{.k = 5};
    pattern_writer w;
    mux_callbacks fa, fb;
    channel_pair* pp = nullptr;
    fb.message_received = [&](stream_id id) { r.drain(pp->b->endpoint(), id); };
    fa.connection_established = [&](stream_id id, std::error_code) {
        w = {.ep = &pp->a->endpoint(), .id = id, .k = 5, .total = 32 << 20};
        w.pump();
    };
    fa.buffer_available = [&](stream_id) { w.pump(); };
    channel_pair p(defaults, defaults, fa, fb);
    pp = &p;
    p.a->endpoint().make_connection();
    REQUIRE(p.run_until([&] { return r.got == w.total && w.total > 0; }));
    const auto& c = p.b->endpoint().counters();
    CHECK(c.data_bytes_in == w.total);
    REQUIRE(c.grant_frames_out > 0);
    const double ratio = static_cast<double>(c.grant_bytes_out) / static_cast<double>(c.data_bytes_in);
    MESSAGE("grant frames ", c.grant_frames_out, ", grant bytes / payload bytes = ", ratio);
    // One 20-byte grant per more than window/2 octets read, whatever the timing: 20 / 131072.
    CHECK(ratio <= 20.0 / static_cast<double>(defaults.window / 2));
    CHECK(ratio < 0.001);
}

TEST_CASE("Figure 3's calls are forwarded, made for real by the server end, and errors come at the next call") {
    // The server end plays the I/O server: a real TCP socket per stream (socket() is the open),
    // each request made as the real system call, its errno sent back.
    std::map<stream_id, int> fds;
    mux_callbacks fa, fb;
    channel_pair* pp = nullptr;
    fb.connection_accepted = [&](stream_id id, const saps::frame&) {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) return errno;
        fds[id] = fd;
        return 0;
    };
    fb.connection_closed = [&](stream_id id, std::error_code) {
        ::close(fds[id]);
        fds.erase(id);
        pp->b->endpoint().close_connection(id);
    };
    auto to_sockaddr = [](const saps::endpoint& e) {
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(e.port);
        sin.sin_addr.s_addr = htonl(e.address.v4().value);
        return sin;
    };
    fb.request_received = [&](stream_id id, const saps::frame& rq) {
        const int fd = fds.at(id);
        int rc = 0;
        std::array<std::byte, 8> value{};
        std::size_t value_len = 0;
        switch (rq.call) {
            case saps::socket_call::bind: {
                const sockaddr_in sin = to_sockaddr(rq.local);
                rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
                sockaddr_in got{};
                socklen_t len = sizeof got;
                if (rc == 0 && ::getsockname(fd, reinterpret_cast<sockaddr*>(&got), &len) == 0) {
                    store_be16(value.data(), ntohs(got.sin_port));
                    value_len = 2;
                }
                break;
            }
            case saps::socket_call::listen: rc = ::listen(fd, static_cast<int>(rq.arg0)); break;
            case saps::socket_call::connect: {
                const sockaddr_in sin = to_sockaddr(rq.peer);
                rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
                break;
            }
            case saps::socket_call::shutdown: rc = ::shutdown(fd, static_cast<int>(rq.arg0)); break;
            case saps::socket_call::setsockopt: {
                int v = static_cast<int>(load_be32(rq.payload.data()));
                rc = ::setsockopt(fd, static_cast<int>(rq.arg0), static_cast<int>(rq.arg1), &v, sizeof v);
                break;
            }
            case saps::socket_call::getsockopt: {
                int v = 0;
                socklen_t len = sizeof v;
                rc = ::getsockopt(fd, static_cast<int>(rq.arg0), static_cast<int>(rq.arg1), &v, &len);
                store_be32(value.data(), static_cast<std::uint32_t>(v));
                value_len = 4;
                break;
            }
            case saps::socket_call::close: rc = ::close(fd); fds[id] = -1; break;
            default: rc = -1; errno = EOPNOTSUPP; break;
        }
        pp->b->endpoint().reply(id, rc == 0 ? 0 : errno, std::span(value).first(value_len));
    };
    std::vector<saps::frame> replies;
    std::vector<std::vector<std::byte>> values;
    fa.reply_received = [&](stream_id, const saps::frame& f) {
        replies.push_back(f);
        values.emplace_back(f.payload.begin(), f.payload.end());
    };
    channel_pair p({}, {}, fa, fb);
    pp = &p;
    auto& A = p.a->endpoint();
    // socket(): MakeConnection, status = the answer.
    const stream_id listener = A.make_connection();
    const stream_id client = A.make_connection();
    REQUIRE(p.run_until([&] { return A.is_open(listener) && A.is_open(client); }));
    auto call = [&](stream_id s, saps::frame rq) {
        std::error_code ec;
        const std::size_t before = replies.size();
        const std::uint32_t rid = A.call(s, rq, ec);
        REQUIRE_FALSE(ec);
        REQUIRE(p.run_until([&] { return replies.size() > before; }));
        CHECK(replies.back().request_id == rid);
        CHECK(replies.back().call == rq.call);
        return replies.back().error;
    };
    saps::frame rq = saps::frame::make_request(0, saps::socket_call::setsockopt, 0);
    std::array<std::byte, 4> one{std::byte{0}, std::byte{0}, std::byte{0}, std::byte{1}};
    rq.arg0 = SOL_SOCKET; rq.arg1 = SO_REUSEADDR; rq.payload = one;
    CHECK(call(listener, rq) == 0);
    rq = saps::frame::make_request(0, saps::socket_call::getsockopt, 0);
    rq.arg0 = SOL_SOCKET; rq.arg1 = SO_REUSEADDR; rq.arg2 = 4;
    CHECK(call(listener, rq) == 0);
    CHECK(load_be32(values.back().data()) == 1);
    rq = saps::frame::make_request(0, saps::socket_call::bind, 0);
    rq.local = saps::endpoint::v4(ipv4_address(0x7F000001), 0);
    CHECK(call(listener, rq) == 0);
    REQUIRE(values.back().size() == 2);
    const std::uint16_t port = load_be16(values.back().data());
    CHECK(port != 0);
    rq = saps::frame::make_request(0, saps::socket_call::listen, 0);
    rq.arg0 = 8;
    CHECK(call(listener, rq) == 0);
    rq = saps::frame::make_request(0, saps::socket_call::getsockopt, 0);
    rq.arg0 = SOL_SOCKET; rq.arg1 = SO_ACCEPTCONN; rq.arg2 = 4;
    CHECK(call(listener, rq) == 0);
    CHECK(load_be32(values.back().data()) == 1);
    // connect() to the listener works; a second one on the same socket fails with EISCONN.
    rq = saps::frame::make_request(0, saps::socket_call::connect, 0);
    rq.peer = saps::endpoint::v4(ipv4_address(0x7F000001), port);
    CHECK(call(client, rq) == 0);
    CHECK(call(client, rq) == EISCONN);
    rq = saps::frame::make_request(0, saps::socket_call::shutdown, 0);
    rq.arg0 = SHUT_WR;
    CHECK(call(client, rq) == 0);
    // One call at a time per socket.
    std::error_code ec;
    rq = saps::frame::make_request(0, saps::socket_call::listen, 0);
    (void)A.call(client, rq, ec);
    CHECK_FALSE(ec);
    (void)A.call(client, rq, ec);
    CHECK(ec == std::errc::operation_in_progress);
    REQUIRE(p.run_until([&] { return replies.back().call == saps::socket_call::listen; }));
    // An error the I/O server meets on its own is reported at the next call, once.
    const stream_id server_side = fds.begin()->first;
    REQUIRE(p.b->endpoint().report_error(server_side, ECONNRESET));
    stream_id client_side = no_stream;
    REQUIRE(p.run_until([&] {
        if (A.pending_error(client) == ECONNRESET) client_side = client;
        if (A.pending_error(listener) == ECONNRESET) client_side = listener;
        return client_side != no_stream;
    }));
    const std::size_t before = replies.size();
    rq = saps::frame::make_request(0, saps::socket_call::getsockopt, 0);
    rq.arg0 = SOL_SOCKET; rq.arg1 = SO_TYPE; rq.arg2 = 4;
    (void)A.call(client_side, rq, ec);
    CHECK(ec == std::errc::connection_reset);
    p.io.poll();
    CHECK(replies.size() == before);  // nothing was sent
    CHECK(call(client_side, rq) == 0);  // the error is gone
    CHECK(load_be32(values.back().data()) == SOCK_STREAM);
    // close(): a request, then CloseConnection.
    rq = saps::frame::make_request(0, saps::socket_call::close, 0);
    CHECK(call(listener, rq) == 0);
    CHECK(A.close_connection(listener));
    CHECK(A.close_connection(client));
    REQUIRE(p.run_until([&] { return p.b->endpoint().open_streams() == 0; }));
    CHECK(fds.empty());
    check_no_faults(A);
    check_no_faults(p.b->endpoint());
}

TEST_CASE("endpoints without I/O: closes that cross, a close while opening, streams churning") {
    mux_config cfg;
    cfg.capacity = 4;
    cfg.window = 1000;
    cfg.send_buffer = 1000;
    std::vector<std::pair<stream_id, std::error_code>> closed_b;
    mux_callbacks cb_b;
    mux_endpoint* bp = nullptr;
    cb_b.connection_closed = [&](stream_id id, std::error_code ec) {
        closed_b.emplace_back(id, ec);
        bp->close_connection(id);
    };
    mux_endpoint a(cfg), b(cfg, cb_b);
    bp = &b;
    std::vector<std::byte> wire(4 * cfg.max_frame);
    auto shuttle = [&] {  // until both are quiet
        for (int guard = 0; guard < 100 && (a.wants_write() || b.wants_write()); ++guard) {
            REQUIRE_FALSE(b.consume(std::span(wire).first(a.produce(wire))));
            REQUIRE_FALSE(a.consume(std::span(wire).first(b.produce(wire))));
        }
    };
    // Both close at the same time: each release happens on the other's close.
    const stream_id s1 = a.make_connection();
    shuttle();
    REQUIRE(a.is_open(s1));
    REQUIRE(b.open_streams() == 1);
    stream_id b1 = no_stream;
    for (stream_id id = 0x10000; id < 0x10004; ++id) if (b.is_open(id)) b1 = id;
    REQUIRE(b1 != no_stream);
    a.close_connection(s1);
    b.close_connection(b1);
    shuttle();
    CHECK(a.open_streams() == 0);
    CHECK(b.open_streams() == 0);
    CHECK(closed_b.empty());
    // A close while the open is in flight: the close follows the accept.
    const stream_id s2 = a.make_connection();
    a.close_connection(s2);
    shuttle();
    CHECK(a.open_streams() == 0);
    CHECK(b.open_streams() == 0);
    CHECK(closed_b.size() == 1);
    // An abort drops queued data and carries its errno.
    const std::vector<std::byte> data(3000, std::byte{7});
    const stream_id s3 = a.make_connection();
    shuttle();
    std::error_code ec;
    CHECK(a.send(s3, data, ec) == 1000);
    a.close_connection(s3, ECONNABORTED);
    shuttle();
    REQUIRE(closed_b.size() == 2);
    CHECK(closed_b[1].second == std::error_code(ECONNABORTED, std::generic_category()));
    CHECK(b.counters().data_bytes_in == 0);
    // Streams that come and go between two produce() calls never overflow the queues.
    for (int round = 0; round < 200; ++round) {
        std::vector<stream_id> ids;
        for (int i = 0; i < 4; ++i) ids.push_back(a.make_connection());
        shuttle();
        for (const stream_id id : ids) {
            REQUIRE(a.is_open(id));
            CHECK(a.send(id, std::span(data).first(10), ec) == 10);
            a.close_connection(id);
        }
        shuttle();
        REQUIRE(a.open_streams() == 0);
        REQUIRE(b.open_streams() == 0);
    }
    CHECK(b.counters().data_bytes_in == 200 * 4 * 10);
    check_no_faults(a);
    check_no_faults(b);
}

TEST_CASE("a stream buffer grows from 4 KiB by doubling, never past its capacity, and keeps the bytes in order") {
    detail::byte_ring r(100000);
    CHECK(r.allocated() == 0);
    std::deque<std::byte> model;
    std::mt19937 rng(7);
    std::vector<std::byte> in(30000), out(30000);
    std::uint64_t next = 0, checked = 0;
    for (int step = 0; step < 4000; ++step) {
        if (rng() % 2) {
            const std::size_t n = rng() % (step < 2000 ? 3000 : 30000);
            for (std::size_t i = 0; i < n; ++i) in[i] = pattern(9, next + i);
            const std::size_t took = r.write(std::span(in).first(n));
            CHECK(took == std::min(n, 100000 - model.size()));
            model.insert(model.end(), in.begin(), in.begin() + static_cast<std::ptrdiff_t>(took));
            next += took;
        } else {
            const std::size_t n = r.read(std::span(out).first(rng() % 30000));
            for (std::size_t i = 0; i < n; ++i) {
                REQUIRE(out[i] == model.front());
                REQUIRE(out[i] == pattern(9, checked + i));
                model.pop_front();
            }
            checked += n;
        }
        REQUIRE(r.size() == model.size());
        REQUIRE(r.allocated() <= r.capacity());
        REQUIRE(r.allocated() >= r.size());
    }
    CHECK(r.allocated() == 100000);  // grown to the capacity by the large writes (4 KiB doubled, capped)
    detail::byte_ring small(1 << 20);
    const std::array<std::byte, 100> hundred{};
    CHECK(small.write(hundred) == 100);
    CHECK(small.allocated() == 4096);  // a short message costs 4 KiB, not the window
}

TEST_CASE("half-close: an eof follows the queued data; the other direction goes on; data after it is a fault") {
    mux_config cfg;
    cfg.capacity = 4;
    cfg.window = 1000;
    cfg.send_buffer = 4000;
    std::vector<std::pair<stream_id, std::error_code>> closed_a, closed_b;
    std::size_t b_wakeups = 0;
    mux_callbacks cb_a, cb_b;
    cb_a.connection_closed = [&](stream_id id, std::error_code ec) { closed_a.emplace_back(id, ec); };
    cb_b.connection_closed = [&](stream_id id, std::error_code ec) { closed_b.emplace_back(id, ec); };
    cb_b.message_received = [&](stream_id) { ++b_wakeups; };
    stream_id last_b = no_stream;
    cb_b.connection_accepted = [&](stream_id id, const saps::frame&) { last_b = id; return 0; };
    mux_endpoint a(cfg, cb_a), b(cfg, cb_b);
    std::vector<std::byte> wire(4 * cfg.max_frame);
    auto step = [&] {  // one round each way
        REQUIRE_FALSE(b.consume(std::span(wire).first(a.produce(wire))));
        REQUIRE_FALSE(a.consume(std::span(wire).first(b.produce(wire))));
    };
    auto find_b = [&] { return std::exchange(last_b, no_stream); };
    const stream_id s = a.make_connection();
    step();
    const stream_id bs = find_b();
    REQUIRE(bs != no_stream);

    // a sends 2500 bytes (2.5 windows) and half-closes at once: the eof waits for the data.
    std::vector<std::byte> data(2500);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = pattern(3, i);
    std::error_code ec;
    REQUIRE(a.send(s, data, ec) == data.size());
    CHECK(a.shutdown_send(s));
    CHECK(a.send_shut(s));
    CHECK(a.send(s, data, ec) == 0);
    CHECK(ec == std::errc::broken_pipe);
    std::vector<std::byte> got;
    std::array<std::byte, 300> buf{};
    for (int guard = 0; guard < 100 && !b.at_end(bs); ++guard) {
        step();
        for (std::size_t n; (n = b.read(bs, buf, ec)) > 0;) got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
        REQUIRE_FALSE(ec);
        if (got.size() < data.size()) CHECK_FALSE(b.at_end(bs));  // the eof never overtakes data
    }
    REQUIRE(b.at_end(bs));
    CHECK(got == data);
    CHECK(b.read(bs, buf, ec) == 0);
    CHECK_FALSE(ec);
    CHECK(b.is_open(bs));       // half-closed, not closed:
    CHECK(closed_b.empty());    // no connection_closed for an eof
    CHECK(b_wakeups > 0);

    // The other direction still works, and b half-closes too.
    REQUIRE(b.send(bs, std::span(data).first(700), ec) == 700);
    CHECK(b.shutdown_send(bs));
    step();
    step();
    CHECK(a.read(s, buf, ec) == 300);
    CHECK(a.read(s, buf, ec) == 300);
    CHECK(a.read(s, buf, ec) == 100);
    CHECK(a.at_end(s));
    // Then the owners close as usual; both slots are released.
    a.close_connection(s);
    step();
    REQUIRE(closed_b.size() == 1);
    CHECK_FALSE(closed_b[0].second);
    b.close_connection(bs);
    step();
    CHECK(a.open_streams() == 0);
    CHECK(b.open_streams() == 0);
    check_no_faults(a);
    check_no_faults(b);

    // A peer that sends data after its eof, or a second eof, breaks the protocol on that stream.
    for (const auto late : {saps::frame_type::data, saps::frame_type::eof}) {
        CAPTURE(to_string(late));
        const std::uint64_t faults = b.counters().protocol_errors;
        closed_b.clear();
        const stream_id t = a.make_connection();
        step();
        const stream_id bt = find_b();
        REQUIRE(bt != no_stream);
        std::array<std::byte, 64> f{};
        const std::array<std::byte, 4> payload{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
        std::size_t n = saps::encode(saps::frame::make_eof(bt), f);
        n += saps::encode(late == saps::frame_type::data ? saps::frame::make_data(bt, payload) : saps::frame::make_eof(bt),
                          std::span(f).subspan(n));
        REQUIRE_FALSE(b.consume(std::span(f).first(n)));
        CHECK(b.counters().protocol_errors == faults + 1);
        REQUIRE(closed_b.size() == 1);
        CHECK(closed_b[0].second == std::error_code(EPROTO, std::generic_category()));
        b.close_connection(bt);
        a.close_connection(t);
        step();
        step();
        CHECK(a.open_streams() == 0);
        CHECK(b.open_streams() == 0);
    }
}

TEST_CASE("the same channel over TCP on the loopback") {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor acc(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    boost::asio::ip::tcp::socket client(io), server(io);
    client.connect(acc.local_endpoint());
    acc.accept(server);
    pattern_reader r{.k = 9};
    pattern_writer w;
    std::shared_ptr<tcp_mux_channel> a, b;
    mux_callbacks fa, fb;
    fb.message_received = [&](stream_id id) { r.drain(b->endpoint(), id); };
    fa.connection_established = [&](stream_id id, std::error_code ec) {
        REQUIRE_FALSE(ec);
        w = {.ep = &a->endpoint(), .id = id, .k = 9, .total = 3 << 20};
        w.pump();
    };
    fa.buffer_available = [&](stream_id) { w.pump(); };
    a = tcp_mux_channel::create(std::move(client), {}, fa);
    b = tcp_mux_channel::create(std::move(server), {}, fb);
    a->start();
    b->start();
    a->endpoint().make_connection();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (r.got < (3u << 20) && std::chrono::steady_clock::now() < deadline) io.run_one_for(std::chrono::milliseconds(100));
    CHECK(r.got == (3u << 20));
    std::error_code failure;
    b->on_failed = [&](std::error_code ec) { failure = ec; };
    a->close();
    while (!failure && std::chrono::steady_clock::now() < deadline) io.run_one_for(std::chrono::milliseconds(100));
    const std::error_code eof = boost::system::error_code(boost::asio::error::eof);
    CHECK(failure == eof);  // the peer's end of the socket closed
    check_no_faults(a->endpoint());
    check_no_faults(b->endpoint());
    b->close();
    io.poll();
}

}  // TEST_SUITE
