// Tests of clusternet/splice_relay.hpp over real loopback TCP connections, for both relay
// methods: bytes both ways (the initial bytes first), half-close passed on as a FIN each way,
// several MiB both ways at once byte for byte, a reset passed on as a reset, the idle timeout,
// and pipes going back to the pool.
#include <doctest/doctest.h>

#include <clusternet/splice_relay.hpp>

#include <boost/asio/io_context.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <future>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

namespace cn = clusternet;
namespace asio = boost::asio;

namespace {

/// A connected pair of TCP sockets on loopback: {a, b}.
std::pair<int, int> tcp_pair() {
    const int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(l >= 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(l, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    REQUIRE(::listen(l, 1) == 0);
    socklen_t len = sizeof sa;
    REQUIRE(::getsockname(l, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
    const int a = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(::connect(a, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    const int b = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    REQUIRE(b >= 0);
    ::close(l);
    return {a, b};
}

void write_all(int fd, const void* p, std::size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n) {
        const ssize_t w = ::send(fd, c, n, MSG_NOSIGNAL);
        REQUIRE(w > 0);
        c += w, n -= static_cast<std::size_t>(w);
    }
}
/// Reads until EOF (or `limit` bytes); errno-style result in `err` (0, ECONNRESET...).
std::string read_to_eof(int fd, int& err, std::size_t limit = std::size_t(-1)) {
    std::string out;
    char buf[65536];
    err = 0;
    while (out.size() < limit) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 10000) != 1) {
            err = ETIMEDOUT;
            break;
        }
        const ssize_t r = ::recv(fd, buf, std::min(sizeof buf, limit - out.size()), 0);
        if (r == 0) break;
        if (r < 0) {
            err = errno;
            break;
        }
        out.append(buf, static_cast<std::size_t>(r));
    }
    return out;
}

/// A relay between an application "client" and "server": client_app <-> [front: relay] <-> server_app.
struct rig {
    asio::io_context io;
    cn::pipe_pool pool{0, 16};
    int client_app = -1, server_app = -1;
    std::promise<cn::relay_result> done;
    std::thread runner;

    rig(cn::relay_options opt, std::string_view first_up = {}) {
        auto [ca, fa] = tcp_pair();  // client_app -- front's client side
        auto [fb, sa] = tcp_pair();  // front's server side -- server_app
        client_app = ca, server_app = sa;
        asio::ip::tcp::socket c(io), s(io);
        c.assign(asio::ip::tcp::v4(), fa);
        s.assign(asio::ip::tcp::v4(), fb);
        if (opt.method == cn::relay_method::splice) opt.pipes = &pool;
        cn::tcp_relay::start(std::move(c), std::move(s), std::as_bytes(std::span(first_up.data(), first_up.size())), opt,
                             [this](const cn::relay_result& r) { done.set_value(r); });
        runner = std::thread([this] { io.run(); });
    }
    cn::relay_result result() {
        auto f = done.get_future();
        REQUIRE(f.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
        return f.get();
    }
    ~rig() {
        io.stop();
        if (runner.joinable()) runner.join();
        if (client_app >= 0) ::close(client_app);
        if (server_app >= 0) ::close(server_app);
    }
};

const cn::relay_method methods[] = {cn::relay_method::splice, cn::relay_method::copy};
const char* name(cn::relay_method m) { return m == cn::relay_method::splice ? "splice" : "copy"; }

}  // namespace

TEST_SUITE("splice_relay") {
    TEST_CASE("a request and its answer, the first bytes first, FINs passed on each way") {
        for (const auto m : methods) {
            CAPTURE(name(m));
            cn::relay_options opt;
            opt.method = m;
            rig r(opt, "GET / HTTP/1.0\r\n");
            write_all(r.client_app, "\r\n", 2);
            ::shutdown(r.client_app, SHUT_WR);  // the client half-closes
            int err = 0;
            CHECK(read_to_eof(r.server_app, err) == "GET / HTTP/1.0\r\n\r\n");  // its FIN arrived as EOF
            CHECK(err == 0);
            // The server still answers on the half-closed connection, then closes.
            write_all(r.server_app, "HTTP/1.0 200 OK\r\n\r\nhello", 24);
            ::shutdown(r.server_app, SHUT_WR);
            CHECK(read_to_eof(r.client_app, err) == "HTTP/1.0 200 OK\r\n\r\nhello");
            CHECK(err == 0);
            const auto res = r.result();
            CHECK_FALSE(res.error);
            CHECK_FALSE(res.timed_out);
            CHECK(res.up_bytes == 18);
            CHECK(res.down_bytes == 24);
            if (m == cn::relay_method::splice) CHECK(r.pool.idle() == 2);  // both pipes back, empty
        }
    }

    TEST_CASE("8 MiB each way at once arrive byte for byte") {
        for (const auto m : methods) {
            CAPTURE(name(m));
            cn::relay_options opt;
            opt.method = m;
            opt.chunk = 16 * 1024;  // many rounds of the loop
            rig r(opt);
            constexpr std::size_t n = 8u << 20;
            std::vector<unsigned char> up(n), down(n);
            for (std::size_t i = 0; i < n; ++i) up[i] = static_cast<unsigned char>(i * 7 + i / 4096), down[i] = static_cast<unsigned char>(i * 13 + 1);
            std::string got_up, got_down;
            int e1 = 0, e2 = 0;
            std::thread w1([&] { write_all(r.client_app, up.data(), n); ::shutdown(r.client_app, SHUT_WR); });
            std::thread w2([&] { write_all(r.server_app, down.data(), n); ::shutdown(r.server_app, SHUT_WR); });
            std::thread r1([&] { got_up = read_to_eof(r.server_app, e1); });
            got_down = read_to_eof(r.client_app, e2);
            w1.join(), w2.join(), r1.join();
            CHECK(e1 == 0);
            CHECK(e2 == 0);
            REQUIRE(got_up.size() == n);
            REQUIRE(got_down.size() == n);
            CHECK(std::memcmp(got_up.data(), up.data(), n) == 0);
            CHECK(std::memcmp(got_down.data(), down.data(), n) == 0);
            const auto res = r.result();
            CHECK_FALSE(res.error);
            CHECK(res.up_bytes == n);
            CHECK(res.down_bytes == n);
        }
    }

    TEST_CASE("a reset on one side resets the other") {
        for (const auto m : methods) {
            CAPTURE(name(m));
            cn::relay_options opt;
            opt.method = m;
            rig r(opt, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
            int err = 0;
            CHECK(read_to_eof(r.server_app, err, 27).size() == 27);
            const ::linger lg{1, 0};
            ::setsockopt(r.server_app, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            ::close(r.server_app);  // RST
            r.server_app = -1;
            (void)read_to_eof(r.client_app, err);
            CHECK(err == ECONNRESET);
            const auto res = r.result();
            CHECK(res.error);
            CHECK_FALSE(res.timed_out);
        }
    }

    TEST_CASE("a connection idle for idle_timeout is closed") {
        for (const auto m : methods) {
            CAPTURE(name(m));
            cn::relay_options opt;
            opt.method = m;
            opt.idle_timeout = std::chrono::milliseconds(1000);
            const auto t0 = std::chrono::steady_clock::now();
            rig r(opt);
            // Traffic keeps it open past one timeout...
            for (int i = 0; i < 4; ++i) {
                std::this_thread::sleep_for(std::chrono::milliseconds(300));
                write_all(r.client_app, "x", 1);
            }
            int err = 0;
            CHECK(read_to_eof(r.server_app, err, 4) == "xxxx");
            // ...then silence ends it.
            const auto res = r.result();
            CHECK(res.timed_out);
            CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(1200 + 1000));
            (void)read_to_eof(r.client_app, err);
            CHECK(err == ECONNRESET);  // both sides are reset
        }
    }

    TEST_CASE("a splicing relay sets SIGPIPE aside (splice(2) to a gone peer would raise it)") {
        // The test process starts with SIGPIPE at SIG_DFL (doctest leaves it); after a splicing
        // relay has started it must be ignored, or the first splice to a reset peer kills it.
        cn::relay_options opt;
        rig r(opt, "x");
        struct sigaction now{};
        REQUIRE(::sigaction(SIGPIPE, nullptr, &now) == 0);
        const bool set_aside = now.sa_handler != SIG_DFL;
        CHECK(set_aside);
        int err = 0;
        CHECK(read_to_eof(r.server_app, err, 1) == "x");
        ::shutdown(r.client_app, SHUT_WR);
        ::shutdown(r.server_app, SHUT_WR);
        CHECK_FALSE(r.result().error);
    }

    TEST_CASE("abort() resets both sides and reports operation_canceled") {
        cn::relay_options opt;
        asio::io_context io;
        auto [ca, fa] = tcp_pair();
        auto [fb, sa] = tcp_pair();
        asio::ip::tcp::socket c(io), s(io);
        c.assign(asio::ip::tcp::v4(), fa);
        s.assign(asio::ip::tcp::v4(), fb);
        cn::relay_result got;
        int calls = 0;
        auto relay = cn::tcp_relay::start(std::move(c), std::move(s), {}, opt, [&](const cn::relay_result& r) {
            got = r;
            ++calls;
        });
        io.poll();
        relay->abort();
        relay->abort();  // once only
        io.poll();
        CHECK(calls == 1);
        CHECK(got.error == std::errc::operation_canceled);
        int err = 0;
        (void)read_to_eof(ca, err);
        CHECK(err == ECONNRESET);
        (void)read_to_eof(sa, err);
        CHECK(err == ECONNRESET);
        ::close(ca);
        ::close(sa);
    }
}
