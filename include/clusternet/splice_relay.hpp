// clusternet/splice_relay.hpp -- TCP splicing in user space: relay two connected TCP sockets.
//
// A layer-7 front end that has chosen a back end joins the client's connection to the one it
// opened to the back end and, from then on, only moves bytes (seeds/002, "TCP splicing"; Maltz
// and Bhagwat, "TCP Splicing for Application Layer Proxy Performance", IBM RC 21139, 1998). In
// the kernel that is a sequence-number translation; from user space, Linux's splice(2) moves
// socket data into a pipe and from the pipe into the other socket without copying it through
// user memory (the pipe holds references to the socket buffers' pages), which is how HAProxy
// splices. The relay offers both ways:
//
//   relay_method::splice   socket -> pipe -> socket with splice(2), SPLICE_F_MOVE
//   relay_method::copy     recv() into a buffer, send() it on: the plain user-space relay,
//                          the baseline splicing is measured against
//
// Each direction is one loop: read (splice into the empty pipe, or recv into the empty buffer)
// until the source would block, write what was read until the destination would block, wait
// for readiness with Asio (async_wait, no Asio buffers), again. A FIN is passed on as a FIN
// (shutdown(SHUT_WR) once the direction's bytes are all written), so half-closed connections
// work both ways; the relay ends when both directions have. An error on either side (a reset,
// a broken pipe) resets the other (SO_LINGER 0 then close), as a spliced connection would, and
// an idle timeout (no byte either way for `idle_timeout`) closes both.
//
// Pipes come from a pipe_pool when one is given (two per relay; a pipe that still holds bytes
// when a relay aborts is closed rather than returned), so a busy front end does not make four
// file descriptors per connection.
//
// splice(2) into a socket whose peer has gone raises SIGPIPE (it has no MSG_NOSIGNAL), which
// kills a process that has not set SIGPIPE aside. The first splicing relay therefore sets SIGPIPE
// to SIG_IGN when it is still SIG_DFL (ignore_sigpipe()); a handler of the program's is kept.
//
// Setup allocates (the relay object, a copy relay's two buffers); the loop does not, and never
// throws: errors end the relay with the std::error_code in relay_result.
#pragma once

#include <clusternet/config.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

namespace clusternet {

enum class relay_method : std::uint8_t { splice, copy };

/// Sets SIGPIPE to SIG_IGN if it is SIG_DFL (a program's own handler, or SIG_IGN, is left).
/// Returns whether SIGPIPE is now ignored or handled. Thread-safe; cheap after the first call.
inline bool ignore_sigpipe() noexcept {
    static const bool done = [] {
        struct sigaction old{};
        if (::sigaction(SIGPIPE, nullptr, &old) != 0) return false;
        if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL) {
            struct sigaction ign{};
            ign.sa_handler = SIG_IGN;
            ::sigemptyset(&ign.sa_mask);
            return ::sigaction(SIGPIPE, &ign, nullptr) == 0;
        }
        return true;
    }();
    return done;
}

/// Idle pipes for splicing, reused between relays. Not thread-safe: one per io_context thread.
class pipe_pool {
public:
    /// `pipe_size`: F_SETPIPE_SZ for new pipes (0: the kernel's default, 64 KiB); `max_idle`:
    /// pipes kept when returned.
    explicit pipe_pool(std::size_t pipe_size = 0, std::size_t max_idle = 1024) : size_(pipe_size), max_idle_(max_idle) {}
    pipe_pool(const pipe_pool&) = delete;
    pipe_pool& operator=(const pipe_pool&) = delete;
    ~pipe_pool() {
        for (const auto& p : idle_) close_pipe(p);
    }

    /// A pipe (read end, write end), both non-blocking; {-1, -1} with `ec` set when the process
    /// is out of file descriptors.
    [[nodiscard]] std::array<int, 2> get(std::error_code& ec) noexcept {
        ec.clear();
        if (!idle_.empty()) {
            const auto p = idle_.back();
            idle_.pop_back();
            return p;
        }
        return make(size_, ec);
    }
    /// Takes a pipe back; `empty` false (bytes may be left in it) closes it instead.
    void put(std::array<int, 2> p, bool empty) noexcept {
        if (p[0] < 0) return;
        if (empty && idle_.size() < max_idle_) {
            try {
                idle_.push_back(p);
                return;
            } catch (...) {
            }
        }
        close_pipe(p);
    }
    [[nodiscard]] std::size_t idle() const noexcept { return idle_.size(); }

    static std::array<int, 2> make(std::size_t size, std::error_code& ec) noexcept {
        int fd[2];
        if (::pipe2(fd, O_NONBLOCK | O_CLOEXEC) != 0) {
            ec.assign(errno, std::system_category());
            return {-1, -1};
        }
        if (size != 0) (void)::fcntl(fd[0], F_SETPIPE_SZ, static_cast<int>(size));  // best effort (pipe-max-size)
        return {fd[0], fd[1]};
    }
    static void close_pipe(const std::array<int, 2>& p) noexcept {
        if (p[0] >= 0) ::close(p[0]);
        if (p[1] >= 0) ::close(p[1]);
    }

private:
    std::size_t size_;
    std::size_t max_idle_;
    std::vector<std::array<int, 2>> idle_;
};

struct relay_options {
    relay_method method = relay_method::splice;
    std::size_t chunk = 64 * 1024;  ///< bytes per splice() call / copy buffer per direction
    std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};  ///< 0: none
    pipe_pool* pipes = nullptr;     ///< where pipes come from and go back (nullptr: made per relay)
};

/// How a relay ended.
struct relay_result {
    std::uint64_t up_bytes = 0;    ///< client -> server, the initial bytes included
    std::uint64_t down_bytes = 0;  ///< server -> client
    std::error_code error;         ///< the first error on either side; empty after a clean close
    bool timed_out = false;        ///< ended by the idle timeout
};

/// Relays between a client and a server socket, both connected. Use start(); the relay keeps
/// itself alive until it ends and then calls `done` once (from the sockets' executor).
class tcp_relay : public std::enable_shared_from_this<tcp_relay> {
public:
    using socket = boost::asio::ip::tcp::socket;
    using done_handler = std::function<void(const relay_result&)>;

    /// Starts relaying. `first_up`: bytes already read from the client (a request head) that go
    /// to the server before anything else. Setup failures (no pipe, no memory) end the relay at
    /// once through `done` with the error.
    static std::shared_ptr<tcp_relay> start(socket client, socket server, std::span<const std::byte> first_up,
                                            const relay_options& opt, done_handler done) {
        auto r = std::shared_ptr<tcp_relay>(new tcp_relay(std::move(client), std::move(server), opt, std::move(done)));
        r->begin(first_up);
        return r;
    }

    tcp_relay(const tcp_relay&) = delete;
    tcp_relay& operator=(const tcp_relay&) = delete;
    ~tcp_relay() {
        for (auto& d : dir_) release_pipe(d);
    }

    /// Ends the relay now (both sockets reset); `done` reports operation_aborted.
    void abort() { fail(std::make_error_code(std::errc::operation_canceled)); }

private:
    struct direction {
        socket* src = nullptr;
        socket* dst = nullptr;
        std::array<int, 2> pipe{-1, -1};
        std::vector<std::byte> buf;  // copy: bytes read; splice: only the first bytes (first_up)
        std::size_t off = 0, len = 0;  // buf[off, off+len) still to write
        std::size_t in_pipe = 0;       // splice: bytes in the pipe still to write
        std::uint64_t bytes = 0;       // written to dst
        bool eof = false, done = false;
    };

    tcp_relay(socket client, socket server, const relay_options& opt, done_handler done)
        : client_(std::move(client)), server_(std::move(server)), opt_(opt), done_(std::move(done)),
          timer_(client_.get_executor()) {
        if (opt_.chunk == 0) opt_.chunk = 64 * 1024;
        dir_[0].src = &client_, dir_[0].dst = &server_;
        dir_[1].src = &server_, dir_[1].dst = &client_;
    }

    void begin(std::span<const std::byte> first_up) {
        boost::system::error_code bec;
        client_.non_blocking(true, bec);
        if (!bec) server_.non_blocking(true, bec);
        if (bec) return fail(std::error_code(bec.value(), std::system_category()));
        if (opt_.method == relay_method::splice) (void)ignore_sigpipe();
        for (auto& d : dir_) {
            std::error_code ec;
            if (opt_.method == relay_method::splice) {
                d.pipe = opt_.pipes ? opt_.pipes->get(ec) : pipe_pool::make(0, ec);
            } else {
                try {
                    d.buf.resize(opt_.chunk);
                } catch (const std::bad_alloc&) {
                    ec = std::make_error_code(std::errc::not_enough_memory);
                }
            }
            if (ec) return fail(ec);
        }
        if (!first_up.empty()) {
            direction& up = dir_[0];
            if (up.buf.size() < first_up.size()) up.buf.resize(first_up.size());
            std::memcpy(up.buf.data(), first_up.data(), first_up.size());
            up.len = first_up.size();
        }
        last_ = std::chrono::steady_clock::now();
        arm_timer(opt_.idle_timeout);
        pump(dir_[0]);
        pump(dir_[1]);
    }

    static int fd(socket* s) noexcept { return s->native_handle(); }

    // One direction's loop, until it must wait or has ended.
    void pump(direction& d) noexcept {
        if (finished_) return;
        last_ = std::chrono::steady_clock::now();
        for (;;) {
            // Write what was read.
            if (d.len != 0 || d.in_pipe != 0) {
                ssize_t n;
                if (d.len != 0) {
                    n = ::send(fd(d.dst), d.buf.data() + d.off, d.len, MSG_NOSIGNAL);
                    if (n > 0) d.off += static_cast<std::size_t>(n), d.len -= static_cast<std::size_t>(n);
                    if (d.len == 0) d.off = 0;
                } else {
                    n = ::splice(d.pipe[0], nullptr, fd(d.dst), nullptr, d.in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                    if (n > 0) d.in_pipe -= static_cast<std::size_t>(n);
                }
                if (n > 0) {
                    d.bytes += static_cast<std::uint64_t>(n);
                    continue;
                }
                if (n < 0 && errno == EINTR) continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return wait(d, socket::wait_write);
                return fail(std::error_code(n < 0 ? errno : EPIPE, std::system_category()));
            }
            // All written: pass the FIN on, or read more.
            if (d.eof) {
                ::shutdown(fd(d.dst), SHUT_WR);
                d.done = true;
                if (dir_[0].done && dir_[1].done) finish({});
                return;
            }
            ssize_t n;
            if (opt_.method == relay_method::copy) {
                n = ::recv(fd(d.src), d.buf.data(), d.buf.size(), 0);
                if (n > 0) d.len = static_cast<std::size_t>(n);
            } else {
                n = ::splice(fd(d.src), nullptr, d.pipe[1], nullptr, opt_.chunk, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                if (n > 0) d.in_pipe = static_cast<std::size_t>(n);
            }
            if (n > 0) continue;
            if (n == 0) {
                d.eof = true;
                continue;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return wait(d, socket::wait_read);
            return fail(std::error_code(errno, std::system_category()));
        }
    }

    void wait(direction& d, socket::wait_type what) noexcept {
        socket* s = what == socket::wait_read ? d.src : d.dst;
        try {
            s->async_wait(what, [self = shared_from_this(), &d](const boost::system::error_code& ec) {
                if (self->finished_) return;
                if (ec) return self->fail(std::error_code(ec.value(), std::system_category()));
                self->pump(d);
            });
        } catch (...) {
            // Asio could not allocate the wait's handler (bad_alloc): this relay ends, reset,
            // instead of the process (this function is noexcept).
            fail(std::make_error_code(std::errc::not_enough_memory));
        }
    }

    void arm_timer(std::chrono::steady_clock::duration after) {
        if (opt_.idle_timeout.count() <= 0) return;
        timer_.expires_after(after);
        timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            if (ec || self->finished_) return;
            const auto idle = std::chrono::steady_clock::now() - self->last_;
            if (idle >= self->opt_.idle_timeout) {
                self->timed_out_ = true;
                return self->fail(std::make_error_code(std::errc::timed_out));
            }
            self->arm_timer(self->opt_.idle_timeout - idle);
        });
    }

    /// Resets both connections and ends.
    void fail(std::error_code ec) noexcept {
        if (finished_) return;
        const ::linger lg{1, 0};
        for (socket* s : {&client_, &server_})
            if (s->is_open()) ::setsockopt(s->native_handle(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        finish(ec);
    }

    void finish(std::error_code ec) noexcept {
        if (finished_) return;
        finished_ = true;
        boost::system::error_code ignored;
        client_.close(ignored);
        server_.close(ignored);
        timer_.cancel();
        for (auto& d : dir_) release_pipe(d);
        relay_result r;
        r.up_bytes = dir_[0].bytes;
        r.down_bytes = dir_[1].bytes;
        r.error = ec;
        r.timed_out = timed_out_;
        if (done_) {
            auto done = std::move(done_);
            try {
                done(r);
            } catch (...) {
            }
        }
    }

    void release_pipe(direction& d) noexcept {
        if (d.pipe[0] < 0) return;
        if (opt_.pipes) opt_.pipes->put(d.pipe, d.in_pipe == 0);
        else pipe_pool::close_pipe(d.pipe);
        d.pipe = {-1, -1};
    }

    socket client_, server_;
    relay_options opt_;
    done_handler done_;
    boost::asio::steady_timer timer_;
    std::array<direction, 2> dir_;
    std::chrono::steady_clock::time_point last_{};
    bool finished_ = false;
    bool timed_out_ = false;
};

}  // namespace clusternet
