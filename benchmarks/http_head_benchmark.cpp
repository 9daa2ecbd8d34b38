// Benchmarks of the HTTP/1.x request head parser (clusternet/http_head.hpp) beside the peer a
// C++ user would pick, nodejs's http_parser (libhttp-parser-dev, 2.9), on the same heads:
//  - curl: curl's own request (3 fields, 80 bytes);
//  - browser: a browser-like GET (10 fields, 532 bytes);
//  - post: a POST with Content-Length (what a front end reads framing from).
// Both extract what a front end needs: method, target, Host, persistence, body length.
// Each buffer is exactly one head, so both parsers stop at its end (http_parser's
// on_headers_complete returns 1, "no body", as a front end that only routes would). Bytes per
// second count the head's bytes.
#include <clusternet/http_head.hpp>

#include <benchmark/benchmark.h>

#include <http_parser.h>

#include <cstring>
#include <string>
#include <string_view>

namespace cn = clusternet;

namespace {

const std::string curl_head = "GET /u/42 HTTP/1.1\r\nHost: 10.201.100.1\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";
const std::string browser_head =
    "GET /images/products/2026/catalogue-page-17.jpg?w=640&h=480 HTTP/1.1\r\n"
    "Host: shop.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    "Accept: image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5\r\n"
    "Accept-Language: en-GB,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Referer: https://shop.example.com/catalogue/page/17\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: session=8f2b1c9d4e5a6b7c8d9e0f1a2b3c4d5e; theme=dark; consent=1\r\n"
    "Sec-Fetch-Dest: image\r\n"
    "Sec-Fetch-Mode: no-cors\r\n\r\n";
const std::string post_head =
    "POST /api/v1/orders HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\n"
    "Content-Length: 348\r\nConnection: keep-alive\r\n\r\n";

const std::string& head_of(int which) { return which == 0 ? curl_head : which == 1 ? browser_head : post_head; }

struct peer_result {
    std::string_view url, host;
    bool in_host = false;
    const char* field = nullptr;
    std::size_t field_len = 0;
};

int on_url(http_parser* p, const char* at, std::size_t n) {
    static_cast<peer_result*>(p->data)->url = {at, n};
    return 0;
}
int on_field(http_parser* p, const char* at, std::size_t n) {
    auto* r = static_cast<peer_result*>(p->data);
    r->in_host = n == 4 && ::strncasecmp(at, "host", 4) == 0;
    return 0;
}
int on_value(http_parser* p, const char* at, std::size_t n) {
    auto* r = static_cast<peer_result*>(p->data);
    if (r->in_host) r->host = {at, n};
    return 0;
}
int on_headers_complete(http_parser*) { return 1; }

}  // namespace

static void BM_HttpHead_Parse(benchmark::State& state) {
    const std::string& h = head_of(static_cast<int>(state.range(0)));
    for (auto _ : state) {
        const auto r = cn::parse_http_request_head(h);
        if (r.status != cn::http_head_status::complete) state.SkipWithError("not complete");
        benchmark::DoNotOptimize(r.head.target.data());
        benchmark::DoNotOptimize(r.head.host.data());
        benchmark::DoNotOptimize(r.head.keep_alive);
        benchmark::DoNotOptimize(r.head.content_length);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * h.size()));
}
BENCHMARK(BM_HttpHead_Parse)->Arg(0)->Arg(1)->Arg(2)->ArgName("head");  // 0 curl, 1 browser, 2 post

static void BM_HttpHead_PeerHttpParser(benchmark::State& state) {
    const std::string& h = head_of(static_cast<int>(state.range(0)));
    http_parser_settings s;
    http_parser_settings_init(&s);
    s.on_url = on_url;
    s.on_header_field = on_field;
    s.on_header_value = on_value;
    s.on_headers_complete = on_headers_complete;
    for (auto _ : state) {
        http_parser p;
        http_parser_init(&p, HTTP_REQUEST);
        peer_result r;
        p.data = &r;
        const std::size_t n = http_parser_execute(&p, &s, h.data(), h.size());
        if (n != h.size() || HTTP_PARSER_ERRNO(&p) != HPE_OK) state.SkipWithError("http_parser refused the head");
        benchmark::DoNotOptimize(r.url.data());
        benchmark::DoNotOptimize(r.host.data());
        bool keep = http_should_keep_alive(&p) != 0;
        benchmark::DoNotOptimize(keep);
        benchmark::DoNotOptimize(p.content_length);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * h.size()));
}
BENCHMARK(BM_HttpHead_PeerHttpParser)->Arg(0)->Arg(1)->Arg(2)->ArgName("head");
