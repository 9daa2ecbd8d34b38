// Benchmarks of TCP splicing (clusternet/splice_relay.hpp) against the plain user-space relay,
// over real loopback TCP connections: client -> [relay] -> server, the relay on its own thread
// (one io_context), the client writing and the server reading on two more.
//  - BM_Relay_Stream/splice and /copy: one long stream of bytes through the relay (MB/s, and the
//    relay thread's own CPU per KiB as `relay_cpu_ns_per_kb`): splice(2) through a pipe, or
//    recv/send through a 64 KiB buffer (the plain relay a user would write); /splice_1MiB_pipe
//    with 1 MiB pipes (F_SETPIPE_SZ) and 1 MiB per splice() call.
//  - BM_Relay_Direct: the same bytes client -> server with no relay, the ceiling.
//  - BM_Relay_Setup/splice and /copy: start a relay on two connected sockets and let it end (the per
//    connection cost beside the bytes: pipes from a pool, or buffers).
// The ratio that matters is splice / copy from one run; on this 2-CPU VM three busy threads
// share two CPUs, so absolute MB/s are low and vary between runs.
#include <clusternet/splice_relay.hpp>

#include <benchmark/benchmark.h>

#include <boost/asio/io_context.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <thread>
#include <vector>

namespace cn = clusternet;
namespace asio = boost::asio;

namespace {

std::pair<int, int> tcp_pair() {
    const int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (l < 0 || ::bind(l, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(l, 1) != 0) std::abort();
    socklen_t len = sizeof sa;
    ::getsockname(l, reinterpret_cast<sockaddr*>(&sa), &len);
    const int a = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(a, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) std::abort();
    const int b = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    if (b < 0) std::abort();
    ::close(l);
    return {a, b};
}

double thread_cpu_ns() {
    rusage u{};
    ::getrusage(RUSAGE_THREAD, &u);
    return (static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e9) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e3;
}

constexpr std::size_t chunk_bytes = 1u << 20;  // bytes per iteration

// Pushes `iterations` MiB from `from` to `to` (a reader thread drains `to`).
void stream(benchmark::State& state, int from, int to) {
    std::vector<char> out(256 * 1024, 'x');
    std::thread reader([&] {
        std::vector<char> in(256 * 1024);
        for (;;) {
            const ssize_t r = ::recv(to, in.data(), in.size(), 0);
            if (r <= 0) return;
        }
    });
    for (auto _ : state) {
        std::size_t left = chunk_bytes;
        while (left) {
            const ssize_t w = ::send(from, out.data(), std::min(left, out.size()), MSG_NOSIGNAL);
            if (w <= 0) {
                state.SkipWithError("send failed");
                break;
            }
            left -= static_cast<std::size_t>(w);
        }
    }
    ::shutdown(from, SHUT_WR);
    reader.join();
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(chunk_bytes));
}

}  // namespace

static void BM_Relay_Stream(benchmark::State& state, cn::relay_method method, std::size_t pipe_size) {
    auto [client_app, fa] = tcp_pair();
    auto [fb, server_app] = tcp_pair();
    asio::io_context io;
    cn::pipe_pool pool(pipe_size);
    cn::relay_options opt;
    opt.method = method;
    opt.pipes = &pool;
    if (pipe_size != 0) opt.chunk = pipe_size;
    asio::ip::tcp::socket c(io), s(io);
    c.assign(asio::ip::tcp::v4(), fa);
    s.assign(asio::ip::tcp::v4(), fb);
    std::promise<double> relay_cpu;
    // Posted before run(): the io_context has work from the start, so run() does not return at once.
    asio::post(io, [&] { cn::tcp_relay::start(std::move(c), std::move(s), {}, opt, [](const cn::relay_result&) {}); });
    std::thread runner([&] {
        const double t0 = thread_cpu_ns();
        io.run();
        relay_cpu.set_value(thread_cpu_ns() - t0);
    });
    stream(state, client_app, server_app);
    ::shutdown(server_app, SHUT_WR);  // the other direction ends too: the relay finishes
    runner.join();
    const double kb = static_cast<double>(state.iterations()) * static_cast<double>(chunk_bytes) / 1024.0;
    state.counters["relay_cpu_ns_per_kb"] = relay_cpu.get_future().get() / kb;
    ::close(client_app);
    ::close(server_app);
}
BENCHMARK_CAPTURE(BM_Relay_Stream, splice, cn::relay_method::splice, 0)->UseRealTime()->MinTime(1.0);
BENCHMARK_CAPTURE(BM_Relay_Stream, splice_1MiB_pipe, cn::relay_method::splice, 1u << 20)->UseRealTime()->MinTime(1.0);
BENCHMARK_CAPTURE(BM_Relay_Stream, copy, cn::relay_method::copy, 0)->UseRealTime()->MinTime(1.0);

static void BM_Relay_Direct(benchmark::State& state) {
    auto [a, b] = tcp_pair();
    stream(state, a, b);
    ::close(a);
    ::close(b);
}
BENCHMARK(BM_Relay_Direct)->UseRealTime()->MinTime(1.0);

static void BM_Relay_Setup(benchmark::State& state, cn::relay_method method) {
    asio::io_context io;
    cn::pipe_pool pool;
    cn::relay_options opt;
    opt.method = method;
    opt.pipes = &pool;
    // Two connected pairs, made once; each iteration a relay on dup()s of the front's ends,
    // ended at once by abort(), so only the relay's own setup and teardown are timed.
    auto [ca, fa] = tcp_pair();
    auto [fb, sa] = tcp_pair();
    for (auto _ : state) {
        asio::ip::tcp::socket c(io), s(io);
        c.assign(asio::ip::tcp::v4(), ::dup(fa));
        s.assign(asio::ip::tcp::v4(), ::dup(fb));
        auto r = cn::tcp_relay::start(std::move(c), std::move(s), {}, opt, [](const cn::relay_result&) {});
        io.poll();
        r->abort();
        io.poll();
        io.restart();
    }
    for (int fd : {ca, fa, fb, sa}) ::close(fd);
}
BENCHMARK_CAPTURE(BM_Relay_Setup, splice, cn::relay_method::splice);
BENCHMARK_CAPTURE(BM_Relay_Setup, copy, cn::relay_method::copy);
