// Benchmarks of the credit-based flow control and the SAPS multiplexed channel:
//  - BM_CreditFlow_Credit: one Appendix A round (send, receive, consume, grant) on the counters;
//  - BM_CreditFlow_EncodeDecode/<payload>: encode a data frame and decode it with the
//    incremental decoder (the per-message cost of the framing); BM_CreditFlow_EncodeDecodeGrant;
//  - BM_CreditFlow_Channel/<streams>: bytes through two mux_channels over a UNIX socketpair, the
//    bytes spread over 1 or 100 streams, with the grant overhead (grant bytes / payload bytes)
//    as a counter; its peer BM_CreditFlow_RawSocketpair moves the same bytes over a bare
//    socketpair (one thread, non-blocking write/read, one stream), the floor for the channel.
#include <clusternet/mux_channel.hpp>

#include <benchmark/benchmark.h>

#include <boost/asio/local/connect_pair.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <vector>

namespace cn = clusternet;
namespace saps = clusternet::saps;

static void BM_CreditFlow_Credit(benchmark::State& state) {
    cn::credit_receiver rx(256 * 1024);
    cn::credit_sender tx(0, rx.initial_limit());
    std::uint64_t grants = 0;
    for (auto _ : state) {
        const std::uint64_t n = std::min<std::uint64_t>(tx.available(), 1460);
        benchmark::DoNotOptimize(tx.on_sent(n));
        benchmark::DoNotOptimize(rx.on_received(n));
        if (auto g = rx.on_consumed(n)) {
            benchmark::DoNotOptimize(tx.on_grant(*g));
            ++grants;
        }
    }
    state.counters["grants"] = static_cast<double>(grants);
}
BENCHMARK(BM_CreditFlow_Credit);

static void BM_CreditFlow_EncodeDecode(benchmark::State& state) {
    const auto size = static_cast<std::size_t>(state.range(0));
    std::vector<std::byte> payload(size, std::byte{0x5A});
    std::vector<std::byte> wire(saps::header_size + size);
    saps::frame_decoder dec(saps::hard_max_frame);
    std::size_t seen = 0;
    for (auto _ : state) {
        const std::size_t n = saps::encode(saps::frame::make_data(0x10001, payload), wire);
        (void)dec.feed(std::span(wire).first(n), [&](const saps::frame& f) { seen += f.payload.size(); });
        benchmark::ClobberMemory();
    }
    benchmark::DoNotOptimize(seen);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_CreditFlow_EncodeDecode)->Range(64, 65536);

static void BM_CreditFlow_EncodeDecodeGrant(benchmark::State& state) {
    std::array<std::byte, 20> wire{};
    saps::frame_decoder dec;
    std::uint64_t limit = 0, sum = 0;
    for (auto _ : state) {
        (void)saps::encode(saps::frame::make_grant(0x10001, ++limit), wire);
        (void)dec.feed(wire, [&](const saps::frame& f) { sum += f.limit; });
    }
    benchmark::DoNotOptimize(sum);
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_CreditFlow_EncodeDecodeGrant);

// 4 MiB per iteration through the channel, spread evenly over `streams` streams.
static void BM_CreditFlow_Channel(benchmark::State& state) {
    const auto streams = static_cast<std::size_t>(state.range(0));
    constexpr std::uint64_t per_iteration = 4 << 20;
    boost::asio::io_context io;
    boost::asio::local::stream_protocol::socket sa(io), sb(io);
    boost::asio::local::connect_pair(sa, sb);
    const cn::mux_config cfg;  // the defaults: 256 KiB window, 64 KiB frames
    std::vector<cn::stream_id> ids;
    std::vector<std::uint64_t> to_write(streams, 0);
    std::vector<std::byte> chunk(64 * 1024, std::byte{0x33});
    std::vector<std::byte> sink(64 * 1024);
    std::uint64_t delivered = 0;
    std::shared_ptr<cn::mux_channel> a, b;
    auto pump = [&](std::size_t k) {
        while (to_write[k] > 0) {
            std::error_code ec;
            const std::size_t n = a->endpoint().send(ids[k], std::span(chunk).first(std::min<std::uint64_t>(chunk.size(), to_write[k])), ec);
            to_write[k] -= n;
            if (n == 0 || ec) return;
        }
    };
    cn::mux_callbacks fa, fb;
    fb.message_received = [&](cn::stream_id id) {
        std::error_code ec;
        while (const std::size_t n = b->endpoint().read(id, sink, ec)) delivered += n;
    };
    fa.buffer_available = [&](cn::stream_id id) {
        for (std::size_t k = 0; k < streams; ++k) if (ids[k] == id) pump(k);
    };
    a = cn::mux_channel::create(std::move(sa), cfg, fa);
    b = cn::mux_channel::create(std::move(sb), cfg, fb);
    a->start();
    b->start();
    for (std::size_t k = 0; k < streams; ++k) ids.push_back(a->endpoint().make_connection(static_cast<std::uint32_t>(k)));
    while (true) {
        bool all = true;
        for (auto id : ids) all = all && a->endpoint().is_open(id);
        if (all) break;
        io.run_one();
    }
    std::uint64_t target = 0;
    for (auto _ : state) {
        target += per_iteration;
        for (std::size_t k = 0; k < streams; ++k) {
            to_write[k] += per_iteration / streams + (k < per_iteration % streams ? 1 : 0);
            pump(k);
        }
        while (delivered < target) io.run_one();
    }
    const auto& c = b->endpoint().counters();
    state.SetBytesProcessed(static_cast<std::int64_t>(delivered));
    state.counters["grant_overhead"] = static_cast<double>(c.grant_bytes_out) / static_cast<double>(c.data_bytes_in);
    state.counters["frames_per_MiB"] =
        static_cast<double>(a->endpoint().counters().frames_out) / (static_cast<double>(c.data_bytes_in) / (1 << 20));
    a->close();
    b->close();
    io.poll();
}
BENCHMARK(BM_CreditFlow_Channel)->Arg(1)->Arg(100)->UseRealTime();

// The peer: the same 4 MiB per iteration over a bare socketpair, no framing and no flow control
// beyond the kernel's, one thread writing and reading in turn (non-blocking) as the channel's
// single io_context thread does.
static void BM_CreditFlow_RawSocketpair(benchmark::State& state) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) != 0) {
        state.SkipWithError("socketpair failed");
        return;
    }
    constexpr std::uint64_t per_iteration = 4 << 20;
    std::vector<std::byte> chunk(64 * 1024, std::byte{0x33});
    std::vector<std::byte> sink(64 * 1024);
    std::uint64_t delivered = 0;
    for (auto _ : state) {
        std::uint64_t left = per_iteration, got = 0;
        while (got < per_iteration) {
            while (left > 0) {
                const ssize_t n = ::write(fds[0], chunk.data(), std::min<std::uint64_t>(chunk.size(), left));
                if (n <= 0) break;
                left -= static_cast<std::uint64_t>(n);
            }
            while (true) {
                const ssize_t n = ::read(fds[1], sink.data(), sink.size());
                if (n <= 0) break;
                got += static_cast<std::uint64_t>(n);
            }
        }
        delivered += got;
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(delivered));
    ::close(fds[0]);
    ::close(fds[1]);
}
BENCHMARK(BM_CreditFlow_RawSocketpair)->UseRealTime();

// Per-message cost: one message of range(0) bytes at a time on one stream, each sent and
// delivered before the next (so each is its own data frame and its own write and read), against
// the same messages over a bare socketpair below. The difference is the channel's overhead per
// message (framing, buffers, credit, Asio's handlers).
static void BM_Mux_Message(benchmark::State& state) {
    const auto size = static_cast<std::size_t>(state.range(0));
    boost::asio::io_context io;
    boost::asio::local::stream_protocol::socket sa(io), sb(io);
    boost::asio::local::connect_pair(sa, sb);
    std::vector<std::byte> msg(size, std::byte{0x44}), sink(65536);
    std::uint64_t delivered = 0;
    std::shared_ptr<cn::mux_channel> a, b;
    cn::mux_callbacks fb;
    fb.message_received = [&](cn::stream_id id) {
        std::error_code ec;
        while (const std::size_t n = b->endpoint().read(id, sink, ec)) delivered += n;
    };
    a = cn::mux_channel::create(std::move(sa), {}, {});
    b = cn::mux_channel::create(std::move(sb), {}, fb);
    a->start();
    b->start();
    const cn::stream_id id = a->endpoint().make_connection(1);
    while (!a->endpoint().is_open(id)) io.run_one();
    std::uint64_t target = 0;
    for (auto _ : state) {
        std::error_code ec;
        (void)a->endpoint().send(id, msg, ec);
        target += size;
        while (delivered < target) io.run_one();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.SetBytesProcessed(static_cast<std::int64_t>(delivered));
    a->close();
    b->close();
    io.poll();
}
BENCHMARK(BM_Mux_Message)->Arg(100)->Arg(1400)->Arg(16384)->UseRealTime();

// The peer of BM_Mux_Message: the same messages, one at a time, written and read on a bare
// non-blocking socketpair.
static void BM_Mux_MessageRawSocketpair(benchmark::State& state) {
    const auto size = static_cast<std::size_t>(state.range(0));
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) != 0) {
        state.SkipWithError("socketpair failed");
        return;
    }
    std::vector<std::byte> msg(size, std::byte{0x44}), sink(65536);
    for (auto _ : state) {
        if (::write(fds[0], msg.data(), size) != static_cast<ssize_t>(size)) { state.SkipWithError("write"); break; }
        std::size_t got = 0;
        while (got < size) {
            const ssize_t n = ::read(fds[1], sink.data(), sink.size());
            if (n > 0) got += static_cast<std::size_t>(n);
        }
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    ::close(fds[0]);
    ::close(fds[1]);
}
BENCHMARK(BM_Mux_MessageRawSocketpair)->Arg(100)->Arg(1400)->Arg(16384)->UseRealTime();

// Per-connection cost of the channel: open a stream (open, accept), carry one short request and
// one short answer, close it (close, close): what each TCP connection of a SAPS cluster costs on
// the channel besides its bytes.
static void BM_Mux_StreamLifetime(benchmark::State& state) {
    boost::asio::io_context io;
    boost::asio::local::stream_protocol::socket sa(io), sb(io);
    boost::asio::local::connect_pair(sa, sb);
    const std::vector<std::byte> req(100, std::byte{0x51}), answer(200, std::byte{0x52});
    std::vector<std::byte> sink(4096);
    std::shared_ptr<cn::mux_channel> a, b;
    std::size_t got_answer = 0, done = 0;
    cn::mux_callbacks fa, fb;
    fb.message_received = [&](cn::stream_id sid) {  // the server side answers and closes
        std::error_code ec;
        std::size_t n = 0;
        while (const std::size_t k = b->endpoint().read(sid, sink, ec)) n += k;
        if (n > 0) {
            (void)b->endpoint().send(sid, answer, ec);
            b->endpoint().close_connection(sid);
        }
    };
    fa.message_received = [&](cn::stream_id sid) {
        std::error_code ec;
        while (const std::size_t k = a->endpoint().read(sid, sink, ec)) got_answer += k;
    };
    fa.connection_established = [&](cn::stream_id sid, std::error_code) {
        std::error_code ec;
        (void)a->endpoint().send(sid, req, ec);
    };
    fa.connection_closed = [&](cn::stream_id sid, std::error_code) {
        a->endpoint().close_connection(sid);
        ++done;
    };
    a = cn::mux_channel::create(std::move(sa), {}, fa);
    b = cn::mux_channel::create(std::move(sb), {}, fb);
    a->start();
    b->start();
    for (auto _ : state) {
        const std::size_t before = done;
        (void)a->endpoint().make_connection(1);
        while (done == before || a->endpoint().open_streams() != 0 || b->endpoint().open_streams() != 0) io.run_one();
    }
    if (got_answer != answer.size() * static_cast<std::size_t>(state.iterations())) state.SkipWithError("lost bytes");
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    a->close();
    b->close();
    io.poll();
}
BENCHMARK(BM_Mux_StreamLifetime)->UseRealTime();
