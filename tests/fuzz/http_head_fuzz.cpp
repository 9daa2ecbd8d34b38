// libFuzzer target: the HTTP/1.x request head parser (clusternet/http_head.hpp).
//
// Input: one byte choosing the limits (small ones reach every 431 path), then the bytes a client
// sent. Invariants checked:
//  - parsing never reads outside the input (ASan), and every view in the head lies inside it;
//  - a complete head is at most max_head bytes and max_fields fields, and parsing exactly its
//    bytes gives the same head (nothing after the head changes it);
//  - every refusal has a reason and an HTTP status code (400, 431 or 505);
//  - incremental parsing agrees with parsing the whole: a prefix of a complete head is
//    incomplete, and a prefix already refused as malformed (400) never grows into a complete
//    head.
#define CLUSTERNET_FUZZ_NAME "fuzz_http_head"
#include "fuzz_check.hpp"

#include <clusternet/http_head.hpp>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

namespace cn = clusternet;

namespace {

bool inside(std::string_view part, std::string_view whole) {
    if (part.empty()) return true;
    return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    cn::http_head_limits lim;
    if (data[0] & 1) {
        lim.max_head = 16 + (data[0] >> 1);  // 16 .. 143
        lim.max_fields = (data[0] >> 4) & 7;
        lim.max_target = 1 + ((data[0] >> 2) & 15);
    }
    // Exactly the input's size on the heap, so ASan sees any read past it.
    const std::size_t n = size - 1;
    std::unique_ptr<char[]> copy(new char[n == 0 ? 1 : n]);
    if (n) std::memcpy(copy.get(), data + 1, n);
    const std::string_view in(copy.get(), n);

    const cn::http_head_result r = cn::parse_http_request_head(in, lim);
    switch (r.status) {
        case cn::http_head_status::incomplete:
            FUZZ_CHECK(n < lim.max_head);
            break;
        case cn::http_head_status::complete: {
            const cn::http_request_head& h = r.head;
            FUZZ_CHECK(h.size > 0 && h.size <= n && h.size <= lim.max_head);
            FUZZ_CHECK(h.fields <= lim.max_fields);
            FUZZ_CHECK(!h.method.empty() && !h.target.empty() && h.target.size() <= lim.max_target);
            FUZZ_CHECK(h.version_minor <= 1);
            FUZZ_CHECK(inside(h.method, in) && inside(h.target, in) && inside(h.path, in) && inside(h.host, in));
            FUZZ_CHECK(!(h.chunked && h.content_length));
            const auto again = cn::parse_http_request_head(in.substr(0, h.size), lim);
            FUZZ_CHECK(again.status == cn::http_head_status::complete && again.head.size == h.size &&
                       again.head.target == h.target && again.head.keep_alive == h.keep_alive &&
                       again.head.content_length == h.content_length && again.head.chunked == h.chunked);
            // A few prefixes (all of them would be quadratic): each must wait for more.
            for (std::size_t k : {std::size_t{0}, h.size / 3, h.size / 2, h.size - 1}) {
                FUZZ_CHECK(cn::parse_http_request_head(in.substr(0, k), lim).status == cn::http_head_status::incomplete);
            }
            break;
        }
        default:
            FUZZ_CHECK(!r.reason.empty());
            FUZZ_CHECK(cn::http_status_code(r.status) != 0);
            break;
    }
    // Refused as malformed part way: the whole input can never be a complete head.
    if (n > 1) {
        const auto half = cn::parse_http_request_head(in.substr(0, n / 2), lim);
        if (half.status == cn::http_head_status::bad_request) FUZZ_CHECK(r.status != cn::http_head_status::complete);
    }
    return 0;
}
