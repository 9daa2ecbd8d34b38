// clusternet/saps_app_node.hpp -- an application node's virtual TCP sockets (SAPS section 2.1.3).
//
// Design note. On an application node every TCP socket is virtual: its TCP/IP stack is the I/O
// server's (saps_io_server.hpp), reached through one mux_channel. basic_saps_node owns that
// channel; virtual_acceptor and virtual_stream are the sockets, in the style of Asio's acceptor
// and stream with completion callbacks:
//
//   socket()+bind()+listen()  virtual_acceptor::async_listen(port, backlog, h(ec, port))
//                             (an open, then bind and listen requests, each waiting its reply)
//   accept()                  virtual_acceptor::async_accept(h(ec, stream)) -- sends nothing:
//                             waits for the I/O server's open for this listener (Phi | wait)
//   read()/recv()             virtual_stream::async_read_some(buf, h(ec, n)) -- local buffer
//   write()/send()            virtual_stream::async_write(bytes, h(ec, n)) -- data frames
//   shutdown()                virtual_stream::shutdown(what) -- SHUT_WR is an eof frame (the
//                             client gets a FIN after what was written); SHUT_RD is local
//   close()                   virtual_stream::close() -- CloseConnection
//
// Errors the I/O server reports asynchronously come back from the next call on that socket
// (SAPS section 2.3); a closed stream reads as end of file (boost::asio::error::eof), an aborted
// one as its errno. One read and one write may be pending per stream, as with Asio's streams.
//
// Every asynchronous call takes an Asio completion token (a callback, boost::asio::use_future,
// use_awaitable, deferred, ...) with the signature void(boost::system::error_code, T); a
// callback may take std::error_code instead (the code converts). virtual_stream is an Asio
// AsyncReadStream and AsyncWriteStream (get_executor, async_read_some and async_write_some over
// buffer sequences), so boost::asio::async_read / async_write / async_read_until and
// coroutines work on it as on a socket. Handlers run on their associated executor (by default
// the node's), never inside the call that starts them.
#pragma once

#include <clusternet/mux_channel.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/error_code.hpp>

#include <array>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <system_error>
#include <type_traits>

namespace clusternet {

namespace detail {
/// An Asio error enum as a std::error_code (through boost::system::error_code).
template <class E>
std::error_code asio_code(E e) noexcept {
    return boost::system::error_code(e);
}

/// A std::error_code of the channel as Boost's, errno codes in Boost's system category, where
/// Asio puts them on POSIX (so that they compare equal to boost::asio::error values such as
/// broken_pipe or connection_reset).
inline boost::system::error_code to_boost(const std::error_code& ec) noexcept {
    if (!ec) return {};
    if (ec.category() == std::generic_category() || ec.category() == std::system_category())
        return {ec.value(), boost::system::system_category()};
    return boost::system::error_code(ec);
}

/// A move-only void(Args...) (completion handlers need not be copyable; std::function must be).
/// One allocation per operation started, none per byte.
template <class... Args>
class unique_handler {
public:
    unique_handler() = default;
    template <class F>
    explicit unique_handler(F f) : p_(std::make_unique<impl<F>>(std::move(f))) {}
    explicit operator bool() const noexcept { return p_ != nullptr; }
    /// Calls it once; it is empty afterwards.
    void operator()(Args... a) {
        auto p = std::move(p_);
        p->call(std::move(a)...);
    }

private:
    struct base {
        virtual ~base() = default;
        virtual void call(Args... a) = 0;
    };
    template <class F>
    struct impl final : base {
        explicit impl(F&& x) : f(std::move(x)) {}
        void call(Args... a) override { std::move(f)(std::move(a)...); }
        F f;
    };
    std::unique_ptr<base> p_;
};

/// Wraps an Asio completion handler so that it runs on its associated executor (`fallback`
/// when it has none), with outstanding work counted there until it has run.
template <class Handler, class Executor>
auto on_associated_executor(Handler h, const Executor& fallback) {
    auto work = boost::asio::make_work_guard(boost::asio::get_associated_executor(h, fallback));
    return [h = std::move(h), work = std::move(work)](boost::system::error_code ec, auto v) mutable {
        auto ex = work.get_executor();
        boost::asio::dispatch(ex, [h = std::move(h), ec, v = std::move(v)]() mutable { std::move(h)(ec, std::move(v)); });
        work.reset();
    };
}

/// The first non-empty buffer of a sequence (what one read or write of a stream fills or
/// sends, as Asio permits), as a span of Byte (std::byte for mutable buffers, const std::byte
/// for const ones).
template <class Byte, class Buffers>
std::span<Byte> first_buffer(const Buffers& b) {
    using buffer = std::conditional_t<std::is_const_v<Byte>, boost::asio::const_buffer, boost::asio::mutable_buffer>;
    for (auto it = boost::asio::buffer_sequence_begin(b); it != boost::asio::buffer_sequence_end(b); ++it) {
        const buffer m(*it);
        if (m.size() != 0) return {static_cast<Byte*>(m.data()), m.size()};
    }
    return {};
}
}  // namespace detail

template <class Socket>
class basic_saps_node;

/// A connected virtual TCP socket.
template <class Socket>
class basic_virtual_stream : public std::enable_shared_from_this<basic_virtual_stream<Socket>> {
public:
    using executor_type = typename Socket::executor_type;
    using op_handler = detail::unique_handler<boost::system::error_code, std::size_t>;

    basic_virtual_stream(basic_saps_node<Socket>& node, stream_id id, const saps::endpoint& remote)
        : node_(&node), id_(id), remote_(remote) {}

    /// The node's executor (Asio's stream requirement).
    [[nodiscard]] executor_type get_executor() const { return node_->channel().socket().get_executor(); }

    /// Reads what is buffered (at least one byte), or waits for data; eof at the end. Completes
    /// with (error_code, bytes read).
    template <class Token>
    auto async_read_some(std::span<std::byte> buf, Token&& token) {
        return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
            [this](auto handler, std::span<std::byte> b) {
                start_read(b, op_handler(detail::on_associated_executor(std::move(handler), get_executor())));
            },
            token, buf);
    }
    /// The same over an Asio buffer sequence (reads into its first non-empty buffer).
    template <class MutableBuffers, class Token>
        requires boost::asio::is_mutable_buffer_sequence<MutableBuffers>::value
    auto async_read_some(const MutableBuffers& buffers, Token&& token) {
        return async_read_some(detail::first_buffer<std::byte>(buffers), std::forward<Token>(token));
    }
    /// Queues all of `data` (the caller keeps it alive until the handler runs), waiting for
    /// credit as needed. Completes with (error_code, bytes queued).
    template <class Token>
    auto async_write(std::span<const std::byte> data, Token&& token) {
        return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
            [this](auto handler, std::span<const std::byte> d) {
                start_write(d, false, op_handler(detail::on_associated_executor(std::move(handler), get_executor())));
            },
            token, data);
    }
    /// Queues as much of the buffers, in order, as the send buffer and credit take now (a
    /// gather write: a header and a body in two buffers leave in one data frame when they fit),
    /// or, when nothing can be taken, waits until some of the first non-empty buffer can. Asio's
    /// AsyncWriteStream operation (boost::asio::async_write loops on it).
    template <class ConstBuffers, class Token>
        requires boost::asio::is_const_buffer_sequence<ConstBuffers>::value
    auto async_write_some(const ConstBuffers& buffers, Token&& token) {
        return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
            [this](auto handler, const ConstBuffers& bufs) {
                op_handler h(detail::on_associated_executor(std::move(handler), get_executor()));
                if (!write_h_ && !closed_ && node_->endpoint().is_open(id_)) {
                    std::size_t queued = 0;
                    std::error_code sec;
                    for (auto it = boost::asio::buffer_sequence_begin(bufs); it != boost::asio::buffer_sequence_end(bufs); ++it) {
                        const boost::asio::const_buffer b(*it);
                        if (b.size() == 0) continue;
                        const std::size_t took = node_->endpoint().send(
                            id_, std::span<const std::byte>(static_cast<const std::byte*>(b.data()), b.size()), sec);
                        queued += took;
                        if (sec || took < b.size()) break;
                    }
                    if (queued > 0 || sec) {
                        post([h = std::move(h), ec = detail::to_boost(sec), queued]() mutable { h(queued > 0 ? boost::system::error_code() : ec, queued); });
                        return;
                    }
                }
                start_write(detail::first_buffer<const std::byte>(bufs), true, std::move(h));
            },
            token, buffers);
    }
    /// shutdown(2): shutdown_send half-closes (an eof frame after the bytes queued so far: the
    /// client reads its end of stream while this side can still read; later writes fail with
    /// broken_pipe); shutdown_receive makes reads end (eof) and throws away what arrives, giving
    /// its credit back; shutdown_both does both. ec: bad_descriptor after close(), not_connected
    /// when the stream is closed already.
    void shutdown(boost::asio::socket_base::shutdown_type what, boost::system::error_code& ec) {
        ec = {};
        if (closed_) { ec = boost::asio::error::bad_descriptor; return; }
        if (what != boost::asio::socket_base::shutdown_send) {
            read_shut_ = true;
            discard();
            try_read();
        }
        if (what != boost::asio::socket_base::shutdown_receive) {
            if (!node_->endpoint().shutdown_send(id_)) ec = boost::asio::error::not_connected;
            try_write();  // a write waiting for credit ends here (broken_pipe, with what was queued)
        }
    }
    /// The same, throwing boost::system::system_error.
    void shutdown(boost::asio::socket_base::shutdown_type what) {
        boost::system::error_code ec;
        shutdown(what, ec);
        if (ec) throw boost::system::system_error(ec, "virtual_stream::shutdown");
    }
    /// CloseConnection (graceful: queued data first). Pending handlers get operation_aborted.
    void close() {
        if (closed_) return;
        closed_ = true;
        node_->endpoint().close_connection(id_);
        node_->forget(id_);
        fail_pending(detail::asio_code(boost::asio::error::operation_aborted));
    }
    [[nodiscard]] const saps::endpoint& remote_endpoint() const noexcept { return remote_; }
    [[nodiscard]] stream_id id() const noexcept { return id_; }

private:
    friend class basic_saps_node<Socket>;

    template <class F>
    void post(F&& f) { boost::asio::post(get_executor(), std::forward<F>(f)); }

    void start_read(std::span<std::byte> buf, op_handler h) {
        if (read_h_) {  // one read at a time, as on Asio's sockets
            post([h = std::move(h)]() mutable { h(boost::asio::error::in_progress, 0); });
            return;
        }
        read_buf_ = buf;
        read_h_ = std::move(h);
        try_read();
    }
    void start_write(std::span<const std::byte> data, bool some, op_handler h) {
        if (write_h_) {
            post([h = std::move(h)]() mutable { h(boost::asio::error::in_progress, 0); });
            return;
        }
        write_data_ = data;
        write_done_ = 0;
        write_some_ = some;
        write_h_ = std::move(h);
        try_write();
    }

    void try_read() {
        if (!read_h_) return;
        boost::system::error_code ec;
        std::size_t n = 0;
        if (closed_) {
            ec = boost::asio::error::operation_aborted;
        } else if (read_shut_) {
            ec = boost::asio::error::eof;
        } else if (read_buf_.empty()) {
            // A read of no bytes completes at once (Asio's rule for empty buffers).
        } else {
            std::error_code sec;
            n = node_->endpoint().read(id_, read_buf_, sec);
            ec = detail::to_boost(sec);
            if (n == 0 && !ec) {
                if (!node_->endpoint().at_end(id_)) return;  // wait for message_received
                ec = boost::asio::error::eof;
            }
        }
        post([h = std::move(read_h_), ec, n]() mutable { h(ec, n); });
    }
    void try_write() {
        if (!write_h_) return;
        boost::system::error_code ec;
        if (closed_) {
            ec = boost::asio::error::operation_aborted;
        } else if (!node_->endpoint().is_open(id_)) {
            ec = boost::asio::error::broken_pipe;
        } else {
            std::error_code sec;
            write_done_ += node_->endpoint().send(id_, write_data_.subspan(write_done_), sec);
            ec = detail::to_boost(sec);
            const bool enough = write_some_ ? write_done_ > 0 : write_done_ == write_data_.size();
            if (!ec && !enough && !write_data_.empty()) return;  // wait for buffer_available
        }
        post([h = std::move(write_h_), ec, n = write_done_]() mutable { h(ec, n); });
    }
    void fail_pending(std::error_code) {
        try_read();
        try_write();
    }
    /// Data came: thrown away after shutdown_receive (reading it gives the credit back), else
    /// handed to a waiting read.
    void on_message() {
        if (read_shut_) discard();
        try_read();
    }
    void discard() {
        std::array<std::byte, 4096> sink;
        std::error_code ec;
        while (node_->endpoint().read(id_, sink, ec) > 0) {
        }
    }

    basic_saps_node<Socket>* node_;
    stream_id id_;
    saps::endpoint remote_;
    std::span<std::byte> read_buf_;
    std::span<const std::byte> write_data_;
    std::size_t write_done_ = 0;
    bool write_some_ = false;
    op_handler read_h_;
    op_handler write_h_;
    bool closed_ = false;
    bool read_shut_ = false;
};

/// A listening virtual socket.
template <class Socket>
class basic_virtual_acceptor {
public:
    using stream_ptr = std::shared_ptr<basic_virtual_stream<Socket>>;
    using executor_type = typename Socket::executor_type;
    using accept_op = detail::unique_handler<boost::system::error_code, stream_ptr>;
    using listen_op = detail::unique_handler<boost::system::error_code, std::uint16_t>;

    explicit basic_virtual_acceptor(basic_saps_node<Socket>& node) : node_(&node) {}
    basic_virtual_acceptor(const basic_virtual_acceptor&) = delete;
    basic_virtual_acceptor& operator=(const basic_virtual_acceptor&) = delete;
    ~basic_virtual_acceptor() { close(); }

    /// socket(), bind(cluster address, port), listen(backlog). Completes with (error_code, the
    /// port bound: the I/O server's choice when port is 0), or the first error; already_open
    /// when this acceptor listens already, in_progress while a listen is under way.
    template <class Token>
    auto async_listen(std::uint16_t port, std::uint32_t backlog, Token&& token) {
        return boost::asio::async_initiate<Token, void(boost::system::error_code, std::uint16_t)>(
            [this](auto handler, std::uint16_t p, std::uint32_t b) {
                listen_op op(detail::on_associated_executor(std::move(handler), get_executor()));
                if (listen_h_ || id_ != no_stream) {
                    const boost::system::error_code ec = listen_h_ ? boost::system::error_code(boost::asio::error::in_progress)
                                                                   : boost::system::error_code(boost::asio::error::already_open);
                    boost::asio::post(get_executor(), [op = std::move(op), ec, p]() mutable { op(ec, p); });
                    return;
                }
                port_ = p;
                backlog_ = b;
                listen_h_ = std::move(op);
                std::error_code ec;
                id_ = node_->endpoint().make_connection(0, {}, {}, ec);
                if (ec) { id_ = no_stream; finish_listen(ec); return; }
                node_->acceptors_[id_] = this;
            },
            token, port, backlog);
    }
    [[nodiscard]] executor_type get_executor() const { return node_->channel().socket().get_executor(); }

    /// Waits for the next connection the I/O server hands to this listener. Completes with
    /// (error_code, shared_ptr<virtual_stream>); one accept at a time.
    template <class Token>
    auto async_accept(Token&& token) {
        return boost::asio::async_initiate<Token, void(boost::system::error_code, stream_ptr)>(
            [this](auto handler) {
                accept_op op(detail::on_associated_executor(std::move(handler), get_executor()));
                if (accept_h_) {
                    boost::asio::post(get_executor(), [op = std::move(op)]() mutable { op(boost::asio::error::in_progress, nullptr); });
                    return;
                }
                accept_h_ = std::move(op);
                try_accept();
            },
            token);
    }
    /// Stops listening (the I/O server stops handing connections to this listener); a pending
    /// listen or accept completes with operation_aborted.
    void close() {
        if (id_ != no_stream) {
            node_->acceptors_.erase(id_);
            node_->endpoint().close_connection(id_);
            id_ = no_stream;
        }
        ready_.clear();
        fail(detail::asio_code(boost::asio::error::operation_aborted));
    }
    [[nodiscard]] std::uint16_t port() const noexcept { return port_; }

private:
    friend class basic_saps_node<Socket>;

    /// Completes the listen (posted: never inside the call that started it).
    void finish_listen(std::error_code ec) {
        if (!listen_h_) return;
        boost::asio::post(get_executor(), [h = std::move(listen_h_), ec = detail::to_boost(ec), p = port_]() mutable { h(ec, p); });
    }
    /// The listener is gone (closed here, or by the I/O server): pending calls get ec.
    void fail(std::error_code ec) {
        finish_listen(ec);
        if (accept_h_)
            boost::asio::post(get_executor(), [h = std::move(accept_h_), ec = detail::to_boost(ec)]() mutable { h(ec, nullptr); });
    }
    void on_established(std::error_code ec) {
        if (ec) { finish_listen(ec); return; }
        saps::frame rq = saps::frame::make_request(0, saps::socket_call::bind, 0);
        rq.local.port = port_;
        (void)node_->endpoint().call(id_, rq, ec);
        if (ec) finish_listen(ec);
    }
    void on_reply(const saps::frame& r) {
        if (r.error != 0) { finish_listen(std::error_code(r.error, std::generic_category())); return; }
        std::error_code ec;
        if (r.call == saps::socket_call::bind) {
            if (r.payload.size() == 2) port_ = load_be16(r.payload.data());
            saps::frame rq = saps::frame::make_request(0, saps::socket_call::listen, 0);
            rq.arg0 = backlog_;
            (void)node_->endpoint().call(id_, rq, ec);
            if (ec) finish_listen(ec);
        } else if (r.call == saps::socket_call::listen) {
            finish_listen({});
        }
    }
    void on_connection(stream_ptr s) {
        ready_.push_back(std::move(s));
        try_accept();
    }
    void try_accept() {
        if (!accept_h_ || ready_.empty()) return;
        auto s = std::move(ready_.front());
        ready_.pop_front();
        boost::asio::post(get_executor(), [h = std::move(accept_h_), s = std::move(s)]() mutable { h({}, std::move(s)); });
    }

    basic_saps_node<Socket>* node_;
    stream_id id_ = no_stream;
    std::uint16_t port_ = 0;
    std::uint32_t backlog_ = 0;
    listen_op listen_h_;
    accept_op accept_h_;
    std::deque<stream_ptr> ready_;
};

/// An application node: its channel to the I/O server and the virtual sockets on it.
template <class Socket>
class basic_saps_node {
public:
    /// Starts the channel over a connected socket. Throws std::invalid_argument for bad settings.
    explicit basic_saps_node(Socket socket, const mux_config& cfg = {}) {
        mux_callbacks cb;
        cb.connection_established = [this](stream_id id, std::error_code ec) {
            if (auto it = acceptors_.find(id); it != acceptors_.end()) it->second->on_established(ec);
        };
        cb.reply_received = [this](stream_id id, const saps::frame& r) {
            if (auto it = acceptors_.find(id); it != acceptors_.end()) it->second->on_reply(r);
        };
        cb.connection_accepted = [this](stream_id id, const saps::frame& open) {
            const auto it = acceptors_.find(open.tag);  // the I/O server names our listener
            if (it == acceptors_.end()) return ECONNREFUSED;
            auto s = std::make_shared<basic_virtual_stream<Socket>>(*this, id, open.peer);
            streams_[id] = s;
            it->second->on_connection(std::move(s));
            return 0;
        };
        cb.message_received = [this](stream_id id) { if (auto s = find(id)) s->on_message(); };
        cb.buffer_available = [this](stream_id id) { if (auto s = find(id)) s->try_write(); };
        cb.connection_closed = [this](stream_id id, std::error_code) {
            if (auto s = find(id)) { s->try_read(); s->try_write(); }  // eof / the error, to pending calls
            if (auto it = acceptors_.find(id); it != acceptors_.end()) {
                it->second->fail(detail::asio_code(boost::asio::error::connection_aborted));
            }
        };
        ch_ = basic_mux_channel<Socket>::create(std::move(socket), cfg, std::move(cb));
        ch_->start();
    }
    ~basic_saps_node() { ch_->close(); }
    basic_saps_node(const basic_saps_node&) = delete;
    basic_saps_node& operator=(const basic_saps_node&) = delete;

    mux_endpoint& endpoint() noexcept { return ch_->endpoint(); }
    basic_mux_channel<Socket>& channel() noexcept { return *ch_; }

private:
    friend class basic_virtual_stream<Socket>;
    friend class basic_virtual_acceptor<Socket>;

    std::shared_ptr<basic_virtual_stream<Socket>> find(stream_id id) {
        const auto it = streams_.find(id);
        if (it == streams_.end()) return nullptr;
        auto s = it->second.lock();
        if (!s) {  // dropped without close(): close it now
            streams_.erase(it);
            ch_->endpoint().close_connection(id);
        }
        return s;
    }
    void forget(stream_id id) { streams_.erase(id); }

    std::shared_ptr<basic_mux_channel<Socket>> ch_;
    std::map<stream_id, basic_virtual_acceptor<Socket>*> acceptors_;
    std::map<stream_id, std::weak_ptr<basic_virtual_stream<Socket>>> streams_;
};

using saps_node = basic_saps_node<boost::asio::local::stream_protocol::socket>;
using tcp_saps_node = basic_saps_node<boost::asio::ip::tcp::socket>;
using virtual_acceptor = basic_virtual_acceptor<boost::asio::local::stream_protocol::socket>;
using tcp_virtual_acceptor = basic_virtual_acceptor<boost::asio::ip::tcp::socket>;
using virtual_stream = basic_virtual_stream<boost::asio::local::stream_protocol::socket>;
using tcp_virtual_stream = basic_virtual_stream<boost::asio::ip::tcp::socket>;

}  // namespace clusternet
