// libFuzzer target: arbitrary bytes as the start of an HTTP response, as the health checker's
// status-line parser sees it (clusternet/health_check.hpp, detail::http_status_of).
//
// Invariants, beyond "no crash, no sanitizer report":
//  - a status is -1 or a three-digit number (100..999 by construction: 000..999, parsed digits);
//  - a status is found only when the input starts with "HTTP/1.", a digit, a space, three digits
//    and then a space or the CR LF that ends the line, and the line is complete;
//  - the parser reads only the first line: appending bytes after its CR LF never changes it;
//  - printable() output has no control bytes and is at most n + 3 characters.
#define CLUSTERNET_FUZZ_NAME "health_check_fuzz"
#include "fuzz_check.hpp"

#include <clusternet/health_check.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const int status = clusternet::detail::http_status_of(in);
    FUZZ_CHECK(status == -1 || (status >= 0 && status <= 999));
    if (status >= 0) {
        FUZZ_CHECK(in.starts_with("HTTP/1.") && in.size() >= 14);
        FUZZ_CHECK(in[8] == ' ' && (in[12] == ' ' || in[12] == '\r'));
        FUZZ_CHECK((in[9] - '0') * 100 + (in[10] - '0') * 10 + (in[11] - '0') == status);
        FUZZ_CHECK(in.find("\r\n") != std::string_view::npos);
    }
    if (const std::size_t eol = in.find("\r\n"); eol != std::string_view::npos) {
        const std::string line(in.substr(0, eol + 2));
        FUZZ_CHECK(clusternet::detail::http_status_of(line) == status);
        FUZZ_CHECK(clusternet::detail::http_status_of(line + "HTTP/1.1 500 X\r\n") == status);
    }
    const std::string p = clusternet::detail::printable(in, 40);
    FUZZ_CHECK(p.size() <= 43);
    for (const char c : p) FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7F);
    return 0;
}
