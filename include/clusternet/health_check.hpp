// clusternet/health_check.hpp -- active health checks of members, as keepalived's TCP_CHECK and
// HTTP_GET do: a TCP connect, or an HTTP GET that must return an expected status (and, if asked,
// contain a string in its body), every `interval`, each attempt bounded by `timeout`; `rise`
// successes in a row bring a member up, `fall` failures in a row take it down. Results feed a
// MemberStateSink (clusternet/member_sink.hpp): on_up(slot), on_down(slot, reason), where the
// reason says what was tried, what happened and how many times.
//
// Everything is asynchronous on one Boost.Asio io_context: a check never blocks the thread, and
// an attempt that does not finish within `timeout` is cut off (its socket closed) and counts as a
// failure. Reads are bounded: at most `max_response_bytes` of a response are read (into a buffer
// allocated once, when the check is added) and only those are searched for the status and the
// body string. HTTP/1.0 with `Connection: close`, so the server ends the response by closing.
//
// A member starts `unknown`: the first threshold reached decides (rise successes: up; fall
// failures: down). Then up -> down after `fall` failures in a row, down -> up after `rise`
// successes in a row (keepalived's semantics; its `alpha` mode is what "unknown" gives).
//
// Lifetime: the checker and the sink must outlive the handlers they start. Call stop() and let
// the io_context run the cancelled handlers (or destroy the io_context) before destroying them.
// Setup errors (bad options) throw std::invalid_argument naming the option.
#pragma once

#include <clusternet/member_sink.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace clusternet {

enum class health_check_kind : std::uint8_t {
    tcp_connect,  ///< success: the TCP handshake completes within the timeout
    http_get,     ///< success: an HTTP response with the expected status (and body string)
};

struct health_check_options {
    health_check_kind kind = health_check_kind::tcp_connect;
    boost::asio::ip::tcp::endpoint target{};
    std::chrono::milliseconds interval{2000};  ///< from the start of one attempt to the next
    std::chrono::milliseconds timeout{1000};   ///< one attempt, connect and response together
    unsigned rise = 2;                         ///< successes in a row that bring a member up
    unsigned fall = 3;                         ///< failures in a row that take a member down
    // HTTP GET only:
    std::string path = "/";            ///< request target, starting with '/'
    std::string host{};                ///< Host header; empty: the target's address
    unsigned expected_status = 200;    ///< 100..599
    std::string body_contains{};       ///< when not empty, the body must contain it
    std::size_t max_response_bytes = 16 * 1024;  ///< what is read at most (64 .. 1 MiB)
};

/// What a checker knows of a member.
enum class health_state : std::uint8_t { unknown, up, down };

[[nodiscard]] constexpr std::string_view to_string(health_state s) noexcept {
    switch (s) {
        case health_state::unknown: return "unknown";
        case health_state::up: return "up";
        case health_state::down: return "down";
    }
    return "invalid";
}

struct health_counters {
    std::uint64_t attempts = 0;
    std::uint64_t successes = 0;
    std::uint64_t failures = 0;
    std::uint64_t timeouts = 0;  ///< failures that were timeouts
    std::uint64_t went_up = 0;
    std::uint64_t went_down = 0;
};

namespace detail {

/// The status code of an HTTP/1.x status line at the start of `r` ("HTTP/1.1 200 OK\r\n"), or -1
/// when `r` does not start with a complete one.
[[nodiscard]] constexpr int http_status_of(std::string_view r) noexcept {
    const std::size_t eol = r.find("\r\n");
    if (eol == std::string_view::npos) return -1;
    const std::string_view line = r.substr(0, eol);
    if (line.size() < 12 || !line.starts_with("HTTP/1.") || line[7] < '0' || line[7] > '9' || line[8] != ' ')
        return -1;
    int code = 0;
    for (std::size_t i = 9; i < 12; ++i) {
        if (line[i] < '0' || line[i] > '9') return -1;
        code = code * 10 + (line[i] - '0');
    }
    if (line.size() > 12 && line[12] != ' ') return -1;
    return code;
}

/// `s` cut to `n` characters, with control characters shown as '.', for messages.
inline std::string printable(std::string_view s, std::size_t n = 60) {
    std::string out(s.substr(0, n));
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7F) c = '.';
    if (s.size() > n) out += "...";
    return out;
}

inline bool has_http_unsafe(std::string_view s) noexcept {
    return s.find_first_of(std::string_view("\r\n \t\0", 5)) != std::string_view::npos;
}

}  // namespace detail

/// Runs health checks for members and reports their transitions to a sink.
template <MemberStateSink Sink>
class health_checker {
public:
    health_checker(boost::asio::io_context& io, Sink& sink) : io_(&io), sink_(&sink) {}
    health_checker(const health_checker&) = delete;
    health_checker& operator=(const health_checker&) = delete;
    ~health_checker() { stop(); }

    /// Adds a check for `slot` (one per slot). Throws std::invalid_argument naming a bad option
    /// (zero interval, timeout or thresholds, timeout longer than interval, bad path or host,
    /// status outside 100..599, response bound outside 64..1 MiB, slot already checked).
    /// Allocates the response buffer. Checks added after start() begin at once.
    void add(member_index slot, health_check_options opt) {
        const auto bad = [&](const std::string& why) {
            return std::invalid_argument("health_checker: member " + std::to_string(slot) + ": " + why);
        };
        if (opt.interval.count() <= 0) throw bad("interval must be positive");
        if (opt.timeout.count() <= 0) throw bad("timeout must be positive");
        if (opt.timeout > opt.interval) throw bad("timeout must not exceed the interval");
        if (opt.rise == 0 || opt.fall == 0) throw bad("rise and fall must be at least 1");
        if (opt.target.port() == 0) throw bad("target port 0");
        if (opt.kind == health_check_kind::http_get) {
            if (!opt.path.starts_with('/') || detail::has_http_unsafe(opt.path))
                throw bad("HTTP path '" + detail::printable(opt.path) + "' must start with '/' and hold no space or CR/LF");
            if (detail::has_http_unsafe(opt.host)) throw bad("HTTP host holds a space or CR/LF");
            if (opt.expected_status < 100 || opt.expected_status > 599)
                throw bad("expected status " + std::to_string(opt.expected_status) + " is outside 100..599");
            if (opt.max_response_bytes < 64 || opt.max_response_bytes > (1U << 20))
                throw bad("max_response_bytes must be within 64 .. 1048576");
            if (opt.body_contains.size() > opt.max_response_bytes)
                throw bad("body_contains is longer than max_response_bytes");
        }
        for (const auto& p : probes_)
            if (p->slot == slot) throw bad("already has a health check");
        probes_.push_back(std::make_unique<probe>(*this, slot, std::move(opt)));
        if (running_) probes_.back()->begin();
    }

    /// Starts every check (the first attempt at once). Non-blocking.
    void start() {
        running_ = true;
        for (auto& p : probes_) p->begin();
    }
    /// Cancels every timer and closes every socket; handlers then complete as aborted.
    void stop() noexcept {
        running_ = false;
        for (auto& p : probes_) p->halt();
    }

    [[nodiscard]] health_state state(member_index slot) const noexcept {
        for (const auto& p : probes_)
            if (p->slot == slot) return p->state;
        return health_state::unknown;
    }
    [[nodiscard]] const health_counters& counters() const noexcept { return counters_; }
    [[nodiscard]] std::size_t size() const noexcept { return probes_.size(); }

private:
    struct probe {
        health_checker& owner;
        member_index slot;
        health_check_options opt;
        std::string request;
        std::vector<char> response;
        std::size_t have = 0;
        boost::asio::ip::tcp::socket socket;
        boost::asio::steady_timer deadline;
        boost::asio::steady_timer next;
        std::chrono::steady_clock::time_point started{};
        std::uint64_t attempt = 0;
        health_state state = health_state::unknown;
        unsigned ok_run = 0, fail_run = 0;
        bool in_flight = false, timed_out = false, halted = true;
        const char* phase = "connecting";
        std::string last_failure;

        probe(health_checker& o, member_index s, health_check_options op)
            : owner(o), slot(s), opt(std::move(op)), socket(*o.io_), deadline(*o.io_), next(*o.io_) {
            if (opt.kind == health_check_kind::http_get) {
                const std::string host = opt.host.empty() ? authority() : opt.host;
                request = "GET " + opt.path + " HTTP/1.0\r\nHost: " + host +
                          "\r\nUser-Agent: clusternet-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n";
                response.resize(opt.max_response_bytes);
            }
        }

        std::string authority() const {
            const auto a = opt.target.address();
            const std::string h = a.is_v6() ? "[" + a.to_string() + "]" : a.to_string();
            return h + ":" + std::to_string(opt.target.port());
        }
        std::string what() const {
            if (opt.kind == health_check_kind::tcp_connect) return "TCP connect to " + authority();
            return "HTTP GET http://" + authority() + opt.path;
        }

        void begin() {
            halted = false;
            started = std::chrono::steady_clock::now();
            attempt_now();
        }
        void halt() noexcept {
            halted = true;
            boost::system::error_code ec;
            deadline.cancel();
            next.cancel();
            socket.close(ec);
        }

        void attempt_now() {
            if (halted) return;
            ++owner.counters_.attempts;
            const std::uint64_t a = ++attempt;
            in_flight = true;
            timed_out = false;
            have = 0;
            phase = "connecting";
            boost::system::error_code ec;
            socket.close(ec);
            deadline.expires_after(opt.timeout);
            deadline.async_wait([this, a](const boost::system::error_code& e) {
                if (e || a != attempt || !in_flight) return;
                timed_out = true;
                boost::system::error_code ignored;
                socket.close(ignored);  // the pending operation completes with operation_aborted
            });
            socket.async_connect(opt.target, [this, a](const boost::system::error_code& e) {
                if (a != attempt || halted) return;
                if (e) return fail_io(e);
                if (opt.kind == health_check_kind::tcp_connect) return finish(true, {});
                phase = "sending the request";
                boost::asio::async_write(socket, boost::asio::buffer(request),
                                         [this, a](const boost::system::error_code& we, std::size_t) {
                                             if (a != attempt || halted) return;
                                             if (we) return fail_io(we);
                                             phase = "reading the response";
                                             read_more(a);
                                         });
            });
        }

        void read_more(std::uint64_t a) {
            socket.async_read_some(boost::asio::buffer(response.data() + have, response.size() - have),
                                   [this, a](const boost::system::error_code& e, std::size_t n) {
                                       if (a != attempt || halted) return;
                                       have += n;
                                       const bool eof = e == boost::asio::error::eof;
                                       if (e && !eof) return fail_io(e);
                                       if (eof || have == response.size() || enough()) return judge(eof);
                                       read_more(a);
                                   });
        }

        /// Without a body string, the status line is all that is needed.
        bool enough() const noexcept {
            return opt.body_contains.empty() && detail::http_status_of({response.data(), have}) >= 0;
        }

        void judge(bool eof) {
            const std::string_view r(response.data(), have);
            const int status = detail::http_status_of(r);
            if (status < 0) {
                if (have == 0) return finish(false, "the server closed the connection without a response");
                return finish(false, std::string(eof ? "the response" : "the first " + std::to_string(have) + " bytes") +
                                         " hold no HTTP/1.x status line (begins '" + detail::printable(r) + "')");
            }
            if (static_cast<unsigned>(status) != opt.expected_status)
                return finish(false, "status " + std::to_string(status) + ", expected " +
                                         std::to_string(opt.expected_status));
            if (!opt.body_contains.empty()) {
                const std::size_t head_end = r.find("\r\n\r\n");
                const std::string_view body = head_end == std::string_view::npos ? std::string_view{} : r.substr(head_end + 4);
                if (body.find(opt.body_contains) == std::string_view::npos)
                    return finish(false, "status " + std::to_string(status) + " but the body " +
                                             (eof ? "" : "(first " + std::to_string(have) + " bytes read) ") +
                                             "does not contain '" + detail::printable(opt.body_contains) + "'");
            }
            finish(true, {});
        }

        void fail_io(const boost::system::error_code& e) {
            if (timed_out) {
                ++owner.counters_.timeouts;
                return finish(false, "no answer within " + std::to_string(opt.timeout.count()) + " ms (while " +
                                         phase + ")");
            }
            finish(false, std::string(phase) + ": " + e.message());
        }

        void finish(bool ok, std::string failure) {
            in_flight = false;
            boost::system::error_code ec;
            deadline.cancel();
            socket.close(ec);
            if (ok) {
                ++owner.counters_.successes;
                ++ok_run;
                fail_run = 0;
                if (state != health_state::up && ok_run >= opt.rise) {
                    state = health_state::up;
                    ++owner.counters_.went_up;
                    owner.sink_->on_up(slot);
                }
            } else {
                ++owner.counters_.failures;
                ++fail_run;
                ok_run = 0;
                last_failure = std::move(failure);
                if (state != health_state::down && fail_run >= opt.fall) {
                    state = health_state::down;
                    ++owner.counters_.went_down;
                    owner.sink_->on_down(slot, "health check " + what() + " failed " + std::to_string(fail_run) +
                                                   " times in a row (fall " + std::to_string(opt.fall) +
                                                   "); last: " + last_failure);
                }
            }
            schedule();
        }

        void schedule() {
            if (halted) return;
            // Absolute deadlines (no drift); after a stall, the next attempt starts now.
            started += opt.interval;
            const auto now = std::chrono::steady_clock::now();
            if (started < now) started = now;
            next.expires_at(started);
            next.async_wait([this](const boost::system::error_code& e) {
                if (!e) attempt_now();
            });
        }
    };

    boost::asio::io_context* io_;
    Sink* sink_;
    std::vector<std::unique_ptr<probe>> probes_;
    health_counters counters_{};
    bool running_ = false;
};

}  // namespace clusternet
