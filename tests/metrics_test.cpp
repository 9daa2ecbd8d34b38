// Tests of the Prometheus text builder and the metrics endpoint, over real loopback TCP.
#include <clusternet/metrics.hpp>

#include <doctest/doctest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>

#include <string>
#include <thread>

using namespace clusternet;
namespace asio = boost::asio;

namespace {

/// One blocking HTTP exchange with the server, from another thread.
std::string fetch(std::uint16_t port, const std::string& request) {
    asio::io_context io;
    asio::ip::tcp::socket s(io);
    s.connect({asio::ip::address_v4::loopback(), port});
    std::string out;
    boost::system::error_code ec;
    asio::write(s, asio::buffer(request), ec);  // may fail (reset) when the server gives up first
    if (ec) return out;
    asio::read(s, asio::dynamic_buffer(out), ec);  // to EOF: the server closes
    return out;
}

}  // namespace

TEST_SUITE("metrics") {

TEST_CASE("text format: HELP and TYPE once per family, labels escaped") {
    metrics_text m;
    m.counter("cn_packets_total", "Packets by verdict.", 12, {{"verdict", "forwarded"}})
        .counter("cn_packets_total", "Packets by verdict.", 3, {{"verdict", "no_session"}})
        .gauge("cn_sessions", "Live sessions.\nNow.", 7.5)
        .gauge("cn_backend_active", "Flows per back end.", 2, {{"backend", "10.0.0.11"}, {"note", "a\"b\\c\nd"}});
    CHECK(m.str() ==
          "# HELP cn_packets_total Packets by verdict.\n"
          "# TYPE cn_packets_total counter\n"
          "cn_packets_total{verdict=\"forwarded\"} 12\n"
          "cn_packets_total{verdict=\"no_session\"} 3\n"
          "# HELP cn_sessions Live sessions.\\nNow.\n"
          "# TYPE cn_sessions gauge\n"
          "cn_sessions 7.5\n"
          "# HELP cn_backend_active Flows per back end.\n"
          "# TYPE cn_backend_active gauge\n"
          "cn_backend_active{backend=\"10.0.0.11\",note=\"a\\\"b\\\\c\\nd\"} 2\n");
}

TEST_CASE("the endpoint answers GET /metrics, refuses other paths and methods, survives junk") {
    asio::io_context io;
    int scrapes = 0;
    metrics_server server(io, {asio::ip::address_v4::loopback(), 0}, [&] {
        ++scrapes;
        metrics_text m;
        m.counter("cn_scrapes_total", "Scrapes.", static_cast<std::uint64_t>(scrapes));
        return m.take();
    });
    const std::uint16_t port = server.port();
    REQUIRE(port != 0);
    std::string ok, ok2, missing, post, huge;
    std::thread client([&] {
        ok = fetch(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        ok2 = fetch(port, "GET /metrics HTTP/1.0\r\n\r\n");
        missing = fetch(port, "GET / HTTP/1.1\r\n\r\n");
        post = fetch(port, "POST /metrics HTTP/1.1\r\n\r\n");
        huge = fetch(port, "GET /metrics HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n");
        io.stop();
    });
    io.run();
    client.join();
    CHECK(ok.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(ok.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
    CHECK(ok.ends_with("cn_scrapes_total 1\n"));
    CHECK(ok2.ends_with("cn_scrapes_total 2\n"));
    CHECK(missing.starts_with("HTTP/1.1 404"));
    CHECK(post.starts_with("HTTP/1.1 405"));
    CHECK(huge.empty());  // over 8 KiB of header: closed without an answer
    CHECK(server.requests() == 2);
}

}  // TEST_SUITE
