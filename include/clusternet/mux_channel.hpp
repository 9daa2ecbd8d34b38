// clusternet/mux_channel.hpp -- a SAPS multiplexed channel over a Boost.Asio stream socket.
//
// Design note. basic_mux_channel runs one mux_endpoint (mux_endpoint.hpp) over one connected
// stream socket: a UNIX stream socket (mux_channel, the default) or TCP (tcp_mux_channel). It
// reads whenever the socket has bytes -- always, since the credit scheme guarantees every data
// frame fits its stream's buffer -- and writes whatever the endpoint produces, one write in
// flight at a time through a buffer of `write_buffer` bytes. Both ends of the SAPS channel (the I/O
// server's and the application node's) are this same class; what differs is only what their
// callbacks do.
//
// Threads: the channel belongs to one io_context run by one thread (or calls from a strand); its
// stream calls (endpoint().send(), read(), ...) are made from that thread, typically from the
// callbacks. Writes are started from a posted handler, so a burst of sends becomes one write.
// The channel is held by shared_ptr (create()); pending operations keep it alive.
//
// Errors: a socket error, the peer's EOF or a framing error fails the channel: every open stream
// gets connection_closed(ec), on_failed(ec) is called once, and the socket is closed.
#pragma once

#include <clusternet/mux_endpoint.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <system_error>
#include <vector>

namespace clusternet {

/// Transport settings of a channel (the protocol's settings are mux_config).
struct mux_channel_options {
    std::size_t read_buffer = 64 * 1024;   ///< bytes asked of each read
    std::size_t write_buffer = 256 * 1024; ///< bytes produced into each write (>= max_frame)
};

template <class Socket>
class basic_mux_channel : public std::enable_shared_from_this<basic_mux_channel<Socket>> {
    struct private_tag {};

public:
    using socket_type = Socket;

    /// Makes a channel over a connected socket; nothing happens until start(). Throws
    /// std::invalid_argument for bad settings (see mux_config and mux_channel_options).
    static std::shared_ptr<basic_mux_channel> create(Socket socket, const mux_config& cfg = {},
                                                     mux_callbacks cb = {}, mux_channel_options opt = {}) {
        return std::make_shared<basic_mux_channel>(private_tag{}, std::move(socket), cfg, std::move(cb), opt);
    }

    basic_mux_channel(private_tag, Socket socket, const mux_config& cfg, mux_callbacks cb, mux_channel_options opt)
        : socket_(std::move(socket)), endpoint_(cfg, std::move(cb)), rbuf_(opt.read_buffer), wbuf_(opt.write_buffer) {
        if (opt.read_buffer == 0) throw std::invalid_argument("mux_channel_options: read_buffer must not be 0");
        if (opt.write_buffer < cfg.max_frame)
            throw std::invalid_argument("mux_channel_options: write_buffer must hold one max_frame (" +
                                        std::to_string(cfg.max_frame) + " bytes)");
    }

    /// Starts reading and writing (the hello goes out first). Call once.
    void start() {
        endpoint_.callbacks().output_ready = [w = this->weak_from_this()] {
            if (auto self = w.lock()) self->schedule_write();
        };
        read();
        schedule_write();
    }

    /// The protocol end: make_connection, send, read, call, reply, counters...
    mux_endpoint& endpoint() noexcept { return endpoint_; }
    const mux_endpoint& endpoint() const noexcept { return endpoint_; }
    Socket& socket() noexcept { return socket_; }

    /// Called once when the channel fails (socket error, EOF, protocol error, close()).
    std::function<void(std::error_code)> on_failed;

    /// Closes the socket; open streams see connection_closed(std::errc::operation_canceled).
    void close() { fail(std::make_error_code(std::errc::operation_canceled)); }

    [[nodiscard]] bool failed() const noexcept { return static_cast<bool>(endpoint_.error()); }

private:
    void read() {
        socket_.async_read_some(boost::asio::buffer(rbuf_),
                                [self = this->shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                                    self->on_read(ec, n);
                                });
    }
    void on_read(const boost::system::error_code& ec, std::size_t n) {
        if (failed()) return;
        if (ec) { fail(ec); return; }
        if (const std::error_code pe = endpoint_.consume(std::span<const std::byte>(rbuf_.data(), n)); pe) {
            fail(pe);
            return;
        }
        read();
    }

    void schedule_write() {
        if (write_scheduled_ || writing_) return;
        write_scheduled_ = true;
        boost::asio::post(socket_.get_executor(), [self = this->shared_from_this()] {
            self->write_scheduled_ = false;
            self->write();
        });
    }
    void write() {
        if (writing_ || failed() || !endpoint_.wants_write()) return;
        writing_ = true;  // before produce(): callbacks inside it only schedule
        const std::size_t n = endpoint_.produce(wbuf_);
        if (n == 0) { writing_ = false; return; }
        boost::asio::async_write(socket_, boost::asio::buffer(wbuf_.data(), n),
                                 [self = this->shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                                     self->writing_ = false;
                                     if (ec) { self->fail(ec); return; }
                                     self->write();
                                 });
    }

    void fail(std::error_code ec) {
        if (closed_) return;
        closed_ = true;
        endpoint_.fail(ec);
        boost::system::error_code ignored;
        socket_.close(ignored);
        if (on_failed) on_failed(ec);
    }

    Socket socket_;
    mux_endpoint endpoint_;
    std::vector<std::byte> rbuf_;
    std::vector<std::byte> wbuf_;
    bool writing_ = false, write_scheduled_ = false, closed_ = false;
};

/// A channel over a UNIX stream socket (the cluster network on one host, or a forwarded one).
using mux_channel = basic_mux_channel<boost::asio::local::stream_protocol::socket>;
/// A channel over TCP.
using tcp_mux_channel = basic_mux_channel<boost::asio::ip::tcp::socket>;

}  // namespace clusternet
