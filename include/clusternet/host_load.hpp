// clusternet/host_load.hpp -- this host's load, measured from /proc, for the load announcer.
//
// DPR's four metrics, taken as follows (Linux):
//   - CPU load: the busy share of all CPUs between two samples, from the first line of /proc/stat
//     (user + nice + system + irq + softirq + steal over those plus idle + iowait; guest time is
//     already inside user and nice, so it is not added again). The first sample covers the time
//     since boot. /proc/stat is not per network namespace: it is the machine's.
//   - open TCP connections: the sockets of /proc/net/tcp and /proc/net/tcp6 in any state but
//     LISTEN, TIME_WAIT and CLOSE (these files are per network namespace).
//   - active sockets: "sockets: used" of /proc/net/sockstat (all families, per namespace).
//   - redirected connections: only the dispatcher knows; it stores the count with
//     set_redirected() (atomic, so a data-plane thread may do it).
//
// Bounded: the files are read through one fixed 64 KiB buffer, so memory does not grow with the
// number of sockets; at most `max_tcp_lines` lines are looked at per sample (a host with more
// connections than that reports the cap and sets `capped` in the last sample). Reading costs
// O(number of TCP sockets) system-call work per sample, once a period: fine at 1 s periods up to
// some hundred thousand sockets (netlink sock_diag would scale further).
//
// Errors: sample(ec) fills `ec` with the errno of a /proc file that cannot be read, or
// clusternet::errc::bad_file_format when /proc/stat does not look as expected; sample() throws
// std::system_error instead.
#pragma once

#include <clusternet/error.hpp>
#include <clusternet/member_sink.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace clusternet {

/// Aggregate CPU time counters from /proc/stat, in clock ticks.
struct cpu_times {
    std::uint64_t busy = 0;
    std::uint64_t total = 0;
    friend constexpr bool operator==(const cpu_times&, const cpu_times&) noexcept = default;
};

namespace detail {

/// Splits off the next space-separated token of `s` (leading blanks skipped).
constexpr std::string_view next_token(std::string_view& s) noexcept {
    std::size_t i = 0;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    std::size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\t' && s[j] != '\n') ++j;
    const std::string_view tok = s.substr(i, j - i);
    s.remove_prefix(j);
    return tok;
}

template <class T>
std::optional<T> parse_unsigned(std::string_view s, int base = 10) noexcept {
    T v{};
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
    return v;
}

}  // namespace detail

/// Parses the aggregate "cpu" line at the start of /proc/stat's text. nullopt when the text does
/// not start with it, holds fewer than the four fields every kernel has (user nice system idle),
/// or its sums overflow 64 bits.
[[nodiscard]] inline std::optional<cpu_times> parse_proc_stat(std::string_view text) noexcept {
    std::string_view line = text.substr(0, text.find('\n'));
    if (detail::next_token(line) != "cpu") return std::nullopt;
    // user nice system idle iowait irq softirq steal guest guest_nice
    std::array<std::uint64_t, 8> f{};
    std::size_t n = 0;
    for (; n < f.size(); ++n) {
        const std::string_view tok = detail::next_token(line);
        if (tok.empty()) break;
        const auto v = detail::parse_unsigned<std::uint64_t>(tok);
        if (!v) return std::nullopt;
        f[n] = *v;
    }
    if (n < 4) return std::nullopt;
    std::uint64_t busy = 0, total = 0;
    for (const std::size_t i : {0, 1, 2, 5, 6, 7})
        if (__builtin_add_overflow(busy, f[i], &busy)) return std::nullopt;
    if (__builtin_add_overflow(busy, f[3], &total) || __builtin_add_overflow(total, f[4], &total)) return std::nullopt;
    return cpu_times{busy, total};
}

/// The busy share between two samples, in parts per load_metrics::cpu_full_scale; 0 when no time
/// passed (or the counters went backwards).
[[nodiscard]] constexpr std::uint16_t cpu_load_between(cpu_times before, cpu_times after) noexcept {
    if (after.total <= before.total || after.busy < before.busy) return 0;
    const std::uint64_t dt = after.total - before.total;
    const std::uint64_t db = after.busy - before.busy;
    if (db >= dt) return load_metrics::cpu_full_scale;
    return static_cast<std::uint16_t>((db * load_metrics::cpu_full_scale + dt / 2) / dt);
}

/// The state field ("st", hex) of one line of /proc/net/tcp or tcp6; nullopt for the header line
/// or a malformed one. Line format: "  sl: local_address rem_address st ...".
[[nodiscard]] inline std::optional<std::uint8_t> proc_net_tcp_state(std::string_view line) noexcept {
    const std::string_view sl = detail::next_token(line);
    if (sl.size() < 2 || sl.back() != ':') return std::nullopt;
    if (!detail::parse_unsigned<std::uint32_t>(sl.substr(0, sl.size() - 1))) return std::nullopt;
    if (detail::next_token(line).find(':') == std::string_view::npos) return std::nullopt;  // local
    if (detail::next_token(line).find(':') == std::string_view::npos) return std::nullopt;  // remote
    const std::string_view st = detail::next_token(line);
    if (st.size() != 2) return std::nullopt;
    return detail::parse_unsigned<std::uint8_t>(st, 16);
}

/// True for the TCP states counted as open connections: all but LISTEN (0x0A), TIME_WAIT (0x06)
/// and CLOSE (0x07), as numbered by the kernel's include/net/tcp_states.h.
[[nodiscard]] constexpr bool is_open_tcp_state(std::uint8_t st) noexcept {
    return st >= 0x01 && st <= 0x0B && st != 0x06 && st != 0x07 && st != 0x0A;
}

/// "sockets: used N" from /proc/net/sockstat's text; nullopt when absent.
[[nodiscard]] inline std::optional<std::uint32_t> parse_sockstat_used(std::string_view text) noexcept {
    constexpr std::string_view key = "sockets: used ";
    const std::size_t at = text.find(key);
    if (at == std::string_view::npos || (at != 0 && text[at - 1] != '\n')) return std::nullopt;
    std::string_view rest = text.substr(at + key.size());
    return detail::parse_unsigned<std::uint32_t>(detail::next_token(rest));
}

/// Samples this host's load. Not thread-safe except set_redirected(); one per announcer.
class host_load_sampler {
public:
    struct options {
        std::string proc_root = "/proc";         ///< where proc is mounted (tests point it elsewhere)
        std::uint32_t max_tcp_lines = 1U << 20;  ///< lines of tcp + tcp6 looked at per sample
    };

    host_load_sampler() = default;
    explicit host_load_sampler(options o) : opt_(std::move(o)) {}

    /// Sets the redirected-connections metric (the dispatcher's count). Any thread.
    void set_redirected(std::uint32_t n) noexcept { redirected_.store(n, std::memory_order_relaxed); }

    /// Takes a sample. On error `ec` is set and the returned metrics hold what could be read.
    /// Cost: reads /proc/stat, /proc/net/sockstat, /proc/net/tcp and tcp6; no allocation.
    load_metrics sample(std::error_code& ec) noexcept {
        ec.clear();
        load_metrics m;
        m.redirected_connections = redirected_.load(std::memory_order_relaxed);

        std::size_t n = read_prefix("stat", ec);
        if (ec) return m;
        const auto now = parse_proc_stat(std::string_view(buf_.data(), n));
        if (!now) {
            ec = make_error_code(errc::bad_file_format);
            return m;
        }
        m.cpu_load = cpu_load_between(last_cpu_, *now);
        last_cpu_ = *now;

        n = read_prefix("net/sockstat", ec);
        if (ec) return m;
        m.active_sockets = parse_sockstat_used(std::string_view(buf_.data(), n)).value_or(0);

        capped_ = false;
        std::uint32_t lines = 0, open = 0;
        for (const char* file : {"net/tcp", "net/tcp6"}) {
            std::error_code fec;
            count_tcp(file, lines, open, fec);
            // tcp6 is absent on a kernel without IPv6: not an error.
            if (fec && !(fec == std::errc::no_such_file_or_directory && std::string_view(file) == "net/tcp6")) {
                ec = fec;
                return m;
            }
        }
        m.open_connections = open;
        return m;
    }

    /// Takes a sample; throws std::system_error (with the file's name) when one cannot be read.
    load_metrics sample() {
        std::error_code ec;
        const load_metrics m = sample(ec);
        if (ec) throw std::system_error(ec, "host_load_sampler: reading " + opt_.proc_root + " failed");
        return m;
    }

    /// True when the last sample stopped at max_tcp_lines.
    [[nodiscard]] bool capped() const noexcept { return capped_; }

private:
    static constexpr std::size_t buffer_size = 64 * 1024;
    static constexpr std::size_t max_line = 512;  // /proc/net/tcp6 lines are about 170 bytes

    struct fd_guard {
        int fd;
        ~fd_guard() { if (fd >= 0) ::close(fd); }
    };

    int open_file(const char* rel, std::error_code& ec) const noexcept {
        char path[512];
        const std::size_t root = opt_.proc_root.size(), len = std::char_traits<char>::length(rel);
        if (root + 1 + len + 1 > sizeof path) {
            ec = make_error_code(errc::invalid_argument);
            return -1;
        }
        opt_.proc_root.copy(path, root);
        path[root] = '/';
        std::char_traits<char>::copy(path + root + 1, rel, len + 1);
        const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) ec.assign(errno, std::system_category());
        return fd;
    }

    /// Reads up to buffer_size bytes from the start of the file.
    std::size_t read_prefix(const char* rel, std::error_code& ec) noexcept {
        fd_guard f{open_file(rel, ec)};
        if (f.fd < 0) return 0;
        std::size_t n = 0;
        while (n < buf_.size()) {
            const ssize_t r = ::read(f.fd, buf_.data() + n, buf_.size() - n);
            if (r < 0) {
                if (errno == EINTR) continue;
                ec.assign(errno, std::system_category());
                return 0;
            }
            if (r == 0) break;
            n += static_cast<std::size_t>(r);
        }
        return n;
    }

    void count_tcp(const char* rel, std::uint32_t& lines, std::uint32_t& open, std::error_code& ec) noexcept {
        fd_guard f{open_file(rel, ec)};
        if (f.fd < 0) return;
        std::size_t have = 0;  // bytes of an unfinished line kept at the front of buf_
        bool skipping = false; // inside a line longer than max_line: drop it
        for (;;) {
            const ssize_t r = ::read(f.fd, buf_.data() + have, buf_.size() - have);
            if (r < 0) {
                if (errno == EINTR) continue;
                ec.assign(errno, std::system_category());
                return;
            }
            if (r == 0) return;  // a last line without '\n' is not a complete record
            const std::size_t end = have + static_cast<std::size_t>(r);
            std::size_t start = 0;
            for (std::size_t i = have; i < end; ++i) {
                if (buf_[i] != '\n') continue;
                if (!skipping) {
                    if (lines >= opt_.max_tcp_lines) {
                        capped_ = true;
                        return;
                    }
                    ++lines;
                    const auto st = proc_net_tcp_state(std::string_view(buf_.data() + start, i - start));
                    if (st && is_open_tcp_state(*st)) ++open;
                }
                skipping = false;
                start = i + 1;
            }
            have = end - start;
            if (have > max_line) {
                skipping = true;
                have = 0;
            } else if (have != 0 && start != 0) {
                std::char_traits<char>::move(buf_.data(), buf_.data() + start, have);
            }
        }
    }

    options opt_{};
    std::array<char, buffer_size> buf_{};
    cpu_times last_cpu_{};
    std::atomic<std::uint32_t> redirected_{0};
    bool capped_ = false;
};

}  // namespace clusternet
