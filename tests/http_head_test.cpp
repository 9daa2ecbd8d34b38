// Tests of clusternet/http_head.hpp: the request heads a front end must accept (and what it
// reads from them), the ones it must refuse with which status, incremental parsing byte by
// byte, and the limits.
#include <doctest/doctest.h>

#include <clusternet/http_head.hpp>

#include <string>
#include <string_view>

namespace cn = clusternet;
using cn::http_head_status;

namespace {

cn::http_head_result parse(std::string_view s, const cn::http_head_limits& l = {}) {
    return cn::parse_http_request_head(s, l);
}
http_head_status status_of(std::string_view s, const cn::http_head_limits& l = {}) { return parse(s, l).status; }

// Parsed at compile time too: the parser is constexpr.
static_assert(cn::parse_http_request_head("GET / HTTP/1.1\r\nHost: a\r\n\r\n").status == http_head_status::complete);
static_assert(cn::parse_http_request_head("GET / HTTP/2.0\r\n\r\n").status == http_head_status::version_not_supported);

}  // namespace

TEST_SUITE("http_head") {
    TEST_CASE("an HTTP/1.1 GET: every part read, the head's size exact") {
        const std::string req = "GET /img/a.png?size=2 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: t\r\n\r\nBODY";
        const auto r = parse(req);
        REQUIRE(r.status == http_head_status::complete);
        CHECK(r.head.method == "GET");
        CHECK(r.head.target == "/img/a.png?size=2");
        CHECK(r.head.path == "/img/a.png");
        CHECK(r.head.host == "www.example.com");
        CHECK(r.head.version_minor == 1);
        CHECK(r.head.keep_alive);
        CHECK_FALSE(r.head.chunked);
        CHECK_FALSE(r.head.content_length.has_value());
        CHECK(r.head.fields == 2);
        CHECK(r.head.size == req.size() - 4);
    }

    TEST_CASE("persistence: 1.1 keeps alive unless close, 1.0 closes unless keep-alive") {
        CHECK(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n").head.keep_alive);
        CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").head.keep_alive);
        CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: TE, Close\r\n\r\n").head.keep_alive);
        CHECK_FALSE(parse("GET / HTTP/1.0\r\n\r\n").head.keep_alive);
        CHECK(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").head.keep_alive);
        CHECK(parse("GET / HTTP/1.0\r\n\r\n").status == http_head_status::complete);  // Host optional in 1.0
    }

    TEST_CASE("body framing: Content-Length and chunked") {
        auto r = parse("POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n");
        REQUIRE(r.status == http_head_status::complete);
        CHECK(r.head.content_length == 12u);
        r = parse("POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n");
        CHECK(r.status == http_head_status::complete);  // equal copies are one length
        r = parse("POST /f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\nExpect: 100-continue\r\n\r\n");
        REQUIRE(r.status == http_head_status::complete);
        CHECK(r.head.chunked);
        CHECK(r.head.expect_continue);
        r = parse("POST /f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n");
        CHECK(r.status == http_head_status::complete);
        CHECK(r.head.chunked);
    }

    TEST_CASE("request smuggling vectors are refused with 400") {
        const char* bad[] = {
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
            "GET / HTTP/1.1\r\nHost : a\r\n\r\n",                 // space before the colon
            "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",       // obs-fold
            "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",            // bare CR
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",       // two Hosts
            "GET / HTTP/1.1\r\n\r\n",                             // no Host in 1.1
            "GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n",              // a control character in a value
            "GET / HTTP/1.1\r\n: a\r\n\r\n",                      // empty field name
            "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
        };
        for (const char* s : bad) {
            INFO(s);
            const auto r = parse(s);
            CHECK(r.status == http_head_status::bad_request);
            CHECK_FALSE(r.reason.empty());
            CHECK(cn::http_status_code(r.status) == 400);
        }
    }

    TEST_CASE("malformed request lines: 400; other versions: 505") {
        for (const char* s : {"GET\r\n\r\n", "GET /\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n",
                              "GET / HTTP/1.1 \r\n\r\n", "GET / http/1.1\r\n\r\n", "GET / HTTP/1\r\n\r\n",
                              "GET /a b HTTP/1.1\r\n\r\n", " GET / HTTP/1.1\r\n\r\n", "GET /\x7f HTTP/1.1\r\n\r\n"}) {
            INFO(s);
            CHECK(status_of(s) == http_head_status::bad_request);
        }
        CHECK(status_of("GET / HTTP/2.0\r\n\r\n") == http_head_status::version_not_supported);
        CHECK(status_of("GET / HTTP/0.9\r\n\r\n") == http_head_status::version_not_supported);
        CHECK(status_of("GET / HTTP/1.2\r\nHost: a\r\n\r\n") == http_head_status::version_not_supported);
        CHECK(cn::http_status_code(http_head_status::version_not_supported) == 505);
    }

    TEST_CASE("incremental: every prefix of a good head is incomplete, the whole one complete") {
        const std::string req = "POST /up?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n";
        for (std::size_t n = 0; n < req.size(); ++n) {
            INFO(n);
            CHECK(status_of(std::string_view(req).substr(0, n)) == http_head_status::incomplete);
        }
        CHECK(status_of(req) == http_head_status::complete);
        // Bare-LF line ends are accepted (RFC 9112 2.2), one leading empty line is skipped.
        const std::string lf = "\r\nGET /x HTTP/1.1\nHost: h\n\n";
        for (std::size_t n = 0; n < lf.size(); ++n) CHECK(status_of(std::string_view(lf).substr(0, n)) == http_head_status::incomplete);
        const auto r = parse(lf);
        REQUIRE(r.status == http_head_status::complete);
        CHECK(r.head.target == "/x");
        CHECK(r.head.size == lf.size());
    }

    TEST_CASE("errors in the part already read are reported before the head ends") {
        CHECK(status_of("GE(") == http_head_status::bad_request);
        CHECK(status_of("GET /a\x01") == http_head_status::bad_request);
        CHECK(status_of("GET / HTTP/1.1\r\nBad Name") == http_head_status::bad_request);
        CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\n  fold") == http_head_status::bad_request);
        CHECK(status_of("GET / HTTP/1.1\r\nHost: a\rx") == http_head_status::bad_request);
        CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r") == http_head_status::incomplete);  // LF may follow
    }

    TEST_CASE("limits: head size, field count and target length") {
        cn::http_head_limits lim;
        lim.max_head = 64;
        lim.max_fields = 3;
        lim.max_target = 16;
        // A head that ends exactly at max_head is accepted; one byte more is 431.
        std::string req = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
        req += std::string(64 - req.size() - 4, 'v') + "\r\n\r\n";
        REQUIRE(req.size() == 64);
        CHECK(status_of(req, lim) == http_head_status::complete);
        std::string longer = req;
        longer.insert(30, "v");
        CHECK(status_of(longer, lim) == http_head_status::header_too_large);
        // No end within max_head: 431 without waiting for more.
        CHECK(status_of(std::string(64, 'a'), lim) == http_head_status::header_too_large);
        CHECK(status_of("GET / HTTP/1.1\r\nHost: h\r\n" + std::string(40, 'x'), lim) == http_head_status::header_too_large);
        CHECK(status_of("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", lim) ==
              http_head_status::header_too_large);
        CHECK(status_of("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", lim) == http_head_status::complete);
        CHECK(status_of("GET /" + std::string(16, 'a') + " HTTP/1.1\r\n", lim) == http_head_status::bad_request);
        CHECK(status_of("GET /" + std::string(16, 'a'), lim) == http_head_status::bad_request);
        CHECK(cn::http_status_code(http_head_status::header_too_large) == 431);
    }

    TEST_CASE("a head of only NULs or binary is refused at once") {
        CHECK(status_of(std::string_view("\0\0\0\0", 4)) == http_head_status::bad_request);
        CHECK(status_of("\x16\x03\x01\x02\x00") == http_head_status::bad_request);  // a TLS ClientHello
    }
}
