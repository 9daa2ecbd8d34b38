// clusternet/http_head.hpp -- the head of an HTTP/1.x request, parsed for a layer-7 front end.
//
// A content-aware front end (TCP splicing, TCP handoff) reads the start of a connection, finds
// the request target to choose a back end by, and forwards the bytes unchanged. It needs the
// request line, Host, the connection's persistence and the body's framing, and it must refuse
// what a back end could read differently from it (request smuggling, RFC 9112 section 11.2):
//
//   parse_http_request_head(bytes, limits) -> http_head_result
//     status  incomplete            no end of head yet, and nothing wrong so far: read more
//             complete              `head` describes the request; head.size bytes are its head
//             bad_request           400: malformed line, field or framing (the reason says which)
//             header_too_large      431: no end of head within limits.max_head, or too many fields
//             version_not_supported 505: a well-formed HTTP version other than 1.0 and 1.1
//
// The grammar is RFC 9112's (section 3 request line, section 5 fields), strict where leniency
// lets two parsers disagree: no whitespace between a field name and its colon (5.1), no obs-fold
// line continuation (5.2), no bare CR, Content-Length only as digits and all copies equal (6.3),
// Transfer-Encoding only in HTTP/1.1, ending in chunked, never beside Content-Length (6.1), and
// exactly one Host in HTTP/1.1 (3.2). A lone LF ends a line, as section 2.2 allows.
//
// Incremental by rescanning: call it again on the grown buffer. A head is at most max_head
// bytes (8 KiB by default, nginx's large_client_header_buffers is 4 x 8 KiB), so a rescan costs
// at most that much and errors in the lines already complete are reported without waiting for
// the rest. noexcept, no allocation: the views in `head` point into the caller's bytes.
#pragma once

#include <clusternet/config.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace clusternet {

enum class http_head_status : std::uint8_t {
    incomplete,
    complete,
    bad_request,            ///< 400
    header_too_large,       ///< 431
    version_not_supported,  ///< 505
};

/// The HTTP status code a front end answers a refused head with (0 for incomplete / complete).
[[nodiscard]] constexpr int http_status_code(http_head_status s) noexcept {
    switch (s) {
        case http_head_status::bad_request: return 400;
        case http_head_status::header_too_large: return 431;
        case http_head_status::version_not_supported: return 505;
        default: return 0;
    }
}

struct http_head_limits {
    std::size_t max_head = 8192;    ///< request line + fields + the empty line, in bytes
    std::size_t max_fields = 100;   ///< header fields
    std::size_t max_target = 4096;  ///< request-target length (a URL longer than this: 400, as 414 is for origin servers)
};

struct http_request_head {
    std::string_view method;     ///< a token (GET, POST, ...)
    std::string_view target;     ///< the request-target as sent (origin-form "/a?b", absolute-form, ...)
    std::string_view path;       ///< target without its query: what LARD keys on by default
    std::string_view host;       ///< the Host field's value (empty when absent, allowed in 1.0)
    std::uint8_t version_minor = 1;   ///< 0 for HTTP/1.0, 1 for HTTP/1.1
    bool keep_alive = true;           ///< the connection persists after this request
    bool chunked = false;             ///< Transfer-Encoding: chunked
    bool expect_continue = false;     ///< Expect: 100-continue
    std::optional<std::uint64_t> content_length;  ///< from Content-Length
    std::size_t size = 0;             ///< bytes of the head, the empty line included
    std::size_t fields = 0;           ///< header fields
};

struct http_head_result {
    http_head_status status = http_head_status::incomplete;
    http_request_head head;       ///< meaningful when status == complete
    std::string_view reason{};    ///< why a head was refused (static text, for logs and counters)
};

namespace detail::http {

[[nodiscard]] constexpr bool is_tchar(unsigned char c) noexcept {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    switch (c) {
        case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
        case '-': case '.': case '^': case '_': case '`': case '|': case '~': return true;
        default: return false;
    }
}
/// field-value octets: VCHAR, obs-text, SP, HTAB.
[[nodiscard]] constexpr bool is_field_char(unsigned char c) noexcept { return c == '\t' || (c >= 0x20 && c != 0x7F); }
/// request-target octets: any VCHAR or obs-text (the target's own grammar is the back end's).
[[nodiscard]] constexpr bool is_target_char(unsigned char c) noexcept { return c > 0x20 && c != 0x7F; }

[[nodiscard]] constexpr char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }
[[nodiscard]] constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}
[[nodiscard]] constexpr std::string_view trim_ows(std::string_view v) noexcept {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
}

/// Calls f(token) for each element of a comma-separated list (RFC 9110 5.6.1), empty ones skipped.
template <class F>
constexpr void for_each_list_item(std::string_view v, F&& f) {
    while (!v.empty()) {
        const std::size_t comma = v.find(',');
        const std::string_view item = trim_ows(v.substr(0, comma));
        if (!item.empty()) f(item);
        if (comma == std::string_view::npos) break;
        v.remove_prefix(comma + 1);
    }
}

/// The next line of `buf` from `pos`: its content (without CRLF / LF) and where the one after
/// begins; complete=false when its end is not in `buf` yet; bare_cr for a CR not before LF.
struct line {
    std::string_view text;
    std::size_t next = 0;
    bool complete = false;
    bool bare_cr = false;
};
[[nodiscard]] constexpr line next_line(std::string_view buf, std::size_t pos) noexcept {
    line l;
    for (std::size_t i = pos; i < buf.size(); ++i) {
        const char c = buf[i];
        if (c == '\n') {
            l.text = buf.substr(pos, i - pos);
            l.next = i + 1;
            l.complete = true;
            return l;
        }
        if (c == '\r') {
            if (i + 1 == buf.size()) return l;  // the LF may follow in the next read
            if (buf[i + 1] != '\n') { l.bare_cr = true; return l; }
            l.text = buf.substr(pos, i - pos);
            l.next = i + 2;
            l.complete = true;
            return l;
        }
    }
    return l;
}

}  // namespace detail::http

/// Parses the head of an HTTP/1.x request at the start of `buf` (see the file comment).
[[nodiscard]] constexpr http_head_result parse_http_request_head(std::string_view buf,
                                                                 const http_head_limits& lim = {}) noexcept {
    namespace h = detail::http;
    http_head_result r;
    const auto refuse = [&r](http_head_status s, std::string_view why) {
        r.status = s;
        r.reason = why;
        return r;
    };
    const auto too_large_or_incomplete = [&](std::size_t scanned) {
        if (scanned >= lim.max_head) return refuse(http_head_status::header_too_large, "head larger than max_head");
        r.status = http_head_status::incomplete;
        return r;
    };

    // RFC 9112 2.2: a server SHOULD ignore at least one empty line before the request line.
    std::size_t pos = 0;
    if (buf.starts_with("\r\n")) pos = 2;
    else if (buf.starts_with("\n")) pos = 1;

    // --- request-line = method SP request-target SP HTTP-version
    const h::line rl = h::next_line(buf, pos);
    if (rl.bare_cr) return refuse(http_head_status::bad_request, "bare CR");
    // Errors in a partial request line are reported early: a method is a token, and so on.
    {
        std::string_view part = rl.complete ? rl.text : buf.substr(pos);
        if (part.ends_with('\r')) part.remove_suffix(1);  // its LF may be in the next read
        std::size_t i = 0;
        while (i < part.size() && h::is_tchar(static_cast<unsigned char>(part[i]))) ++i;
        if (i < part.size() && (part[i] != ' ' || i == 0)) return refuse(http_head_status::bad_request, "bad method");
        if (!rl.complete) {
            const std::size_t sp = part.find(' ');
            if (sp != std::string_view::npos) {
                std::size_t j = sp + 1;
                while (j < part.size() && h::is_target_char(static_cast<unsigned char>(part[j]))) ++j;
                if (j - sp - 1 > lim.max_target) return refuse(http_head_status::bad_request, "request-target too long");
                if (j < part.size() && (part[j] != ' ' || j == sp + 1))
                    return refuse(http_head_status::bad_request, "bad request-target");
            }
            return too_large_or_incomplete(buf.size());
        }
    }
    if (rl.next > lim.max_head) return refuse(http_head_status::header_too_large, "head larger than max_head");
    const std::string_view line = rl.text;
    const std::size_t sp1 = line.find(' ');
    const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos)
        return refuse(http_head_status::bad_request, "request line is not METHOD TARGET VERSION");
    r.head.method = line.substr(0, sp1);
    r.head.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view version = line.substr(sp2 + 1);
    if (r.head.target.empty()) return refuse(http_head_status::bad_request, "empty request-target");
    if (r.head.target.size() > lim.max_target) return refuse(http_head_status::bad_request, "request-target too long");
    for (const char c : r.head.target)
        if (!h::is_target_char(static_cast<unsigned char>(c))) return refuse(http_head_status::bad_request, "bad request-target");
    // HTTP-version = "HTTP" "/" DIGIT "." DIGIT (case-sensitive).
    if (version.size() != 8 || !version.starts_with("HTTP/") || version[5] < '0' || version[5] > '9' || version[6] != '.' ||
        version[7] < '0' || version[7] > '9')
        return refuse(http_head_status::bad_request, "bad HTTP version");
    if (version[5] != '1' || (version[7] != '0' && version[7] != '1'))
        return refuse(http_head_status::version_not_supported, "HTTP version other than 1.0 and 1.1");
    r.head.version_minor = static_cast<std::uint8_t>(version[7] - '0');
    r.head.path = r.head.target.substr(0, r.head.target.find('?'));

    // --- fields
    bool close = false, keep_alive_token = false, te_seen = false, host_seen = false;
    pos = rl.next;
    for (;;) {
        if (pos > lim.max_head) return refuse(http_head_status::header_too_large, "head larger than max_head");
        const h::line fl = h::next_line(buf, pos);
        if (fl.bare_cr) return refuse(http_head_status::bad_request, "bare CR");
        if (!fl.complete) {
            // Early errors in a partial field line: the name must be a token up to its colon.
            std::string_view part = buf.substr(pos);
            if (part.ends_with('\r')) part.remove_suffix(1);
            std::size_t i = 0;
            while (i < part.size() && h::is_tchar(static_cast<unsigned char>(part[i]))) ++i;
            if (i < part.size() && part[i] != ':')
                return refuse(http_head_status::bad_request, i == 0 && (part[0] == ' ' || part[0] == '\t')
                                                                 ? "obsolete line folding"
                                                                 : "bad field name");
            return too_large_or_incomplete(buf.size());
        }
        if (fl.next > lim.max_head) return refuse(http_head_status::header_too_large, "head larger than max_head");
        pos = fl.next;
        if (fl.text.empty()) break;  // the end of the head
        if (fl.text.front() == ' ' || fl.text.front() == '\t')
            return refuse(http_head_status::bad_request, "obsolete line folding");
        if (++r.head.fields > lim.max_fields) return refuse(http_head_status::header_too_large, "more fields than max_fields");
        const std::size_t colon = fl.text.find(':');
        if (colon == std::string_view::npos || colon == 0) return refuse(http_head_status::bad_request, "bad field name");
        const std::string_view name = fl.text.substr(0, colon);
        for (const char c : name)
            if (!h::is_tchar(static_cast<unsigned char>(c))) return refuse(http_head_status::bad_request, "bad field name");
        const std::string_view value = h::trim_ows(fl.text.substr(colon + 1));
        for (const char c : value)
            if (!h::is_field_char(static_cast<unsigned char>(c))) return refuse(http_head_status::bad_request, "bad field value");

        if (h::iequals(name, "host")) {
            if (host_seen) return refuse(http_head_status::bad_request, "more than one Host");
            host_seen = true;
            r.head.host = value;
        } else if (h::iequals(name, "content-length")) {
            if (value.empty() || value.size() > 19) return refuse(http_head_status::bad_request, "bad Content-Length");
            std::uint64_t n = 0;
            for (const char c : value) {
                if (c < '0' || c > '9') return refuse(http_head_status::bad_request, "bad Content-Length");
                n = n * 10 + static_cast<std::uint64_t>(c - '0');
            }
            if (r.head.content_length && *r.head.content_length != n)
                return refuse(http_head_status::bad_request, "conflicting Content-Length");
            r.head.content_length = n;
        } else if (h::iequals(name, "transfer-encoding")) {
            if (r.head.version_minor == 0) return refuse(http_head_status::bad_request, "Transfer-Encoding in HTTP/1.0");
            // The coding list may span fields; only the last coding of all matters (chunked must
            // be last, RFC 9112 6.3 item 4), and chunked twice is an error.
            bool bad = false;
            h::for_each_list_item(value, [&](std::string_view coding) {
                const bool is_chunked = h::iequals(coding, "chunked");
                if (is_chunked && r.head.chunked) bad = true;
                r.head.chunked = is_chunked;
            });
            if (bad) return refuse(http_head_status::bad_request, "chunked applied twice");
            te_seen = true;
        } else if (h::iequals(name, "connection")) {
            h::for_each_list_item(value, [&](std::string_view opt) {
                if (h::iequals(opt, "close")) close = true;
                else if (h::iequals(opt, "keep-alive")) keep_alive_token = true;
            });
        } else if (h::iequals(name, "expect")) {
            if (h::iequals(value, "100-continue")) r.head.expect_continue = true;
        }
    }
    if (te_seen && !r.head.chunked) return refuse(http_head_status::bad_request, "Transfer-Encoding not ending in chunked");
    if (te_seen && r.head.content_length) return refuse(http_head_status::bad_request, "both Transfer-Encoding and Content-Length");
    if (r.head.version_minor == 1 && !host_seen) return refuse(http_head_status::bad_request, "HTTP/1.1 request without Host");
    r.head.keep_alive = !close && (r.head.version_minor == 1 || keep_alive_token);
    r.head.size = pos;
    r.status = http_head_status::complete;
    return r;
}

}  // namespace clusternet
