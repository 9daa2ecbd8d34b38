// Tests of clusternet/health_check.hpp against real TCP servers on 127.0.0.1 (ephemeral ports):
// TCP connect up / down with fall / up again with rise; HTTP GET 200 vs 500, body string,
// timeouts, oversized and non-HTTP answers; option checks.
#include <doctest/doctest.h>

#include "support/recording_sink.hpp"

#include <clusternet/health_check.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace cn = clusternet;
using namespace std::chrono_literals;
using tcp = boost::asio::ip::tcp;
using cn::test::run_until;

namespace {

/// A tiny server on 127.0.0.1. In `http` mode it reads a request head (bounded) and answers with
/// `response`; in `silent` mode it accepts and never answers; in `close` mode it accepts and
/// closes at once.
class test_server {
public:
    enum class mode { http, silent, close };

    test_server(boost::asio::io_context& io, mode m, unsigned short port = 0) : io_(io), mode_(m) { open(port); }

    void open(unsigned short port) {
        acceptor_ = std::make_unique<tcp::acceptor>(io_);
        const tcp::endpoint ep(boost::asio::ip::make_address_v4("127.0.0.1"), port);
        acceptor_->open(ep.protocol());
        acceptor_->set_option(tcp::acceptor::reuse_address(true));
        acceptor_->bind(ep);
        acceptor_->listen();
        port_ = acceptor_->local_endpoint().port();
        accept();
    }
    void close() {
        acceptor_->close();
        held_.clear();
    }
    [[nodiscard]] tcp::endpoint endpoint() const { return {boost::asio::ip::make_address_v4("127.0.0.1"), port_}; }

    std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nall good";
    std::size_t requests = 0;

private:
    struct session {
        tcp::socket socket;
        boost::asio::streambuf head{4096};
        std::string reply;
        explicit session(tcp::socket s) : socket(std::move(s)) {}
    };

    void accept() {
        acceptor_->async_accept([this](const boost::system::error_code& ec, tcp::socket s) {
            if (ec) return;
            if (mode_ == mode::silent) {
                held_.push_back(std::make_shared<session>(std::move(s)));
            } else if (mode_ == mode::http) {
                serve(std::make_shared<session>(std::move(s)));
            }  // mode::close: the socket goes out of scope
            accept();
        });
    }
    void serve(std::shared_ptr<session> s) {
        boost::asio::async_read_until(s->socket, s->head, "\r\n\r\n", [this, s](const boost::system::error_code& ec, std::size_t) {
            if (ec) return;
            ++requests;
            s->reply = response;
            boost::asio::async_write(s->socket, boost::asio::buffer(s->reply), [s](const boost::system::error_code&, std::size_t) {
                boost::system::error_code ignored;
                s->socket.shutdown(tcp::socket::shutdown_both, ignored);
            });
        });
    }

    boost::asio::io_context& io_;
    mode mode_;
    std::unique_ptr<tcp::acceptor> acceptor_;
    unsigned short port_ = 0;
    std::vector<std::shared_ptr<session>> held_;
};

cn::health_check_options fast(cn::health_check_kind k, tcp::endpoint target) {
    cn::health_check_options o;
    o.kind = k;
    o.target = target;
    o.interval = 40ms;
    o.timeout = 30ms;
    o.rise = 2;
    o.fall = 3;
    return o;
}

}  // namespace

TEST_SUITE("health_check") {

TEST_CASE("TCP connect: up after rise, down after fall when the server closes, up again") {
    boost::asio::io_context io;
    cn::test::recording_sink sink;
    test_server server(io, test_server::mode::close);
    const auto ep = server.endpoint();

    cn::health_checker checker(io, sink);
    auto opt = fast(cn::health_check_kind::tcp_connect, ep);
    opt.timeout = 200ms;  // a loaded machine may take a while to answer a SYN on loopback
    opt.interval = 250ms;
    checker.add(4, opt);
    checker.start();
    REQUIRE(run_until(io, [&] { return sink.transitions(4) == "u"; }));
    CHECK(checker.state(4) == cn::health_state::up);
    CHECK(checker.counters().successes >= 2);

    server.close();
    REQUIRE(run_until(io, [&] { return sink.transitions(4) == "ud"; }));
    CHECK(checker.state(4) == cn::health_state::down);
    const std::string why = sink.last_reason();
    CHECK(why.find("health check TCP connect to 127.0.0.1:" + std::to_string(ep.port()) + " failed 3 times in a row (fall 3)") !=
          std::string::npos);
    CHECK(why.find("connecting: Connection refused") != std::string::npos);
    CHECK(checker.counters().failures >= 3);

    server.open(ep.port());
    REQUIRE(run_until(io, [&] { return sink.transitions(4) == "udu"; }));
    CHECK(checker.counters().went_up == 2);
    CHECK(checker.counters().went_down == 1);
    checker.stop();
    io.run_for(20ms);
}

TEST_CASE("HTTP GET: 200 is up, 500 is down with the status, body string checked") {
    boost::asio::io_context io;
    cn::test::recording_sink sink;
    test_server server(io, test_server::mode::http);
    cn::health_checker checker(io, sink);
    auto opt = fast(cn::health_check_kind::http_get, server.endpoint());
    opt.path = "/healthz";
    opt.timeout = 200ms;
    opt.interval = 250ms;
    opt.body_contains = "good";
    checker.add(0, opt);
    checker.start();
    REQUIRE(run_until(io, [&] { return sink.transitions(0) == "u"; }));
    CHECK(server.requests >= 2);

    server.response = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\ngood";
    REQUIRE(run_until(io, [&] { return sink.transitions(0) == "ud"; }));
    CHECK(sink.last_reason().find("HTTP GET http://127.0.0.1:" + std::to_string(server.endpoint().port()) +
                                  "/healthz failed 3 times in a row (fall 3); last: status 500, expected 200") !=
          std::string::npos);

    server.response = "HTTP/1.0 200 OK\r\n\r\nnot so well";  // right status, body lacks "good"
    const auto failures = checker.counters().failures;
    REQUIRE(run_until(io, [&] { return checker.counters().failures >= failures + 2; }));
    CHECK(sink.transitions(0) == "ud");

    server.response = "HTTP/1.0 200 OK\r\n\r\nfeeling good";
    REQUIRE(run_until(io, [&] { return sink.transitions(0) == "udu"; }));
    checker.stop();
    io.run_for(20ms);
}

TEST_CASE("HTTP GET: a server that never answers times out; garbage and huge answers are bounded") {
    boost::asio::io_context io;
    cn::test::recording_sink sink;
    test_server silent(io, test_server::mode::silent);
    test_server garbage(io, test_server::mode::http);
    garbage.response = std::string(200000, 'z');  // no status line, far more than the bound
    test_server closer(io, test_server::mode::close);

    cn::health_checker checker(io, sink);
    auto opt = fast(cn::health_check_kind::http_get, silent.endpoint());
    opt.fall = 1;
    opt.timeout = 150ms;
    opt.interval = 200ms;
    checker.add(1, opt);
    opt.target = garbage.endpoint();
    opt.timeout = 300ms;
    opt.interval = 400ms;
    opt.max_response_bytes = 1024;
    checker.add(2, opt);
    opt.target = closer.endpoint();
    checker.add(3, opt);
    checker.start();
    REQUIRE(run_until(io, [&] { return sink.count(cn::test::recording_sink::kind::down) == 3; }));
    for (const auto& e : sink.events) {
        // (a loaded machine may even stall before the connect completes: "while connecting")
        if (e.slot == 1) CHECK(e.reason.find("last: no answer within 150 ms (while ") != std::string::npos);
        if (e.slot == 2) CHECK(e.reason.find("last: the first 1024 bytes hold no HTTP/1.x status line (begins 'zzz") != std::string::npos);
        // The peer's FIN and the RST our request provokes race: either is a fine explanation.
        if (e.slot == 3)
            CHECK((e.reason.find("last: the server closed the connection without a response") != std::string::npos ||
                   e.reason.find("Connection reset by peer") != std::string::npos ||
                   e.reason.find("Broken pipe") != std::string::npos));
    }
    CHECK(checker.counters().timeouts >= 1);
    CHECK(checker.state(1) == cn::health_state::down);
    checker.stop();
    io.run_for(20ms);
}

TEST_CASE("HTTP status line parser") {
    using cn::detail::http_status_of;
    CHECK(http_status_of("HTTP/1.1 200 OK\r\n") == 200);
    CHECK(http_status_of("HTTP/1.0 503\r\n") == 503);
    CHECK(http_status_of("HTTP/1.1 200 OK") == -1);  // incomplete line
    CHECK(http_status_of("HTTP/2 200 OK\r\n") == -1);
    CHECK(http_status_of("HTTP/1.1 2x0 OK\r\n") == -1);
    CHECK(http_status_of("HTTP/1.1 2000 OK\r\n") == -1);
    CHECK(http_status_of("") == -1);
}

TEST_CASE("bad options are refused with the option named") {
    boost::asio::io_context io;
    cn::test::recording_sink sink;
    cn::health_checker checker(io, sink);
    const tcp::endpoint ep(boost::asio::ip::make_address_v4("127.0.0.1"), 80);
    auto o = fast(cn::health_check_kind::http_get, ep);
    const auto refused = [&](auto mutate, const char* what) {
        auto x = o;
        mutate(x);
        CHECK_THROWS_WITH_AS(checker.add(9, x), doctest::Contains(what), std::invalid_argument);
    };
    refused([](auto& x) { x.interval = 0ms; }, "interval must be positive");
    refused([](auto& x) { x.timeout = 0ms; }, "timeout must be positive");
    refused([](auto& x) { x.timeout = 100ms; }, "timeout must not exceed the interval");
    refused([](auto& x) { x.rise = 0; }, "rise and fall");
    refused([](auto& x) { x.target.port(0); }, "target port 0");
    refused([](auto& x) { x.path = "healthz"; }, "must start with '/'");
    refused([](auto& x) { x.path = "/a b"; }, "must start with '/'");
    refused([](auto& x) { x.host = "evil\r\nX: 1"; }, "HTTP host");
    refused([](auto& x) { x.expected_status = 99; }, "outside 100..599");
    refused([](auto& x) { x.max_response_bytes = 10; }, "max_response_bytes");
    checker.add(9, o);
    CHECK_THROWS_WITH_AS(checker.add(9, o), doctest::Contains("already has a health check"), std::invalid_argument);
    CHECK(checker.size() == 1);
    CHECK(checker.state(9) == cn::health_state::unknown);
}

}  // TEST_SUITE
