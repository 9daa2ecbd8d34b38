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
//   close()                   virtual_stream::close() -- CloseConnection
//
// Errors the I/O server reports asynchronously come back from the next call on that socket
// (SAPS section 2.3); a closed stream reads as end of file (boost::asio::error::eof), an aborted
// one as its errno. One read and one write may be pending per stream, as with Asio's streams.
// Handlers run on the node's io_context thread, never inside the call that starts them.
#pragma once

#include <clusternet/mux_channel.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <system_error>

namespace clusternet {

namespace detail {
/// An Asio error enum as a std::error_code (through boost::system::error_code).
template <class E>
std::error_code asio_code(E e) noexcept {
    return boost::system::error_code(e);
}
}  // namespace detail

template <class Socket>
class basic_saps_node;

/// A connected virtual TCP socket.
template <class Socket>
class basic_virtual_stream : public std::enable_shared_from_this<basic_virtual_stream<Socket>> {
public:
    using read_handler = std::function<void(std::error_code, std::size_t)>;
    using write_handler = std::function<void(std::error_code, std::size_t)>;

    basic_virtual_stream(basic_saps_node<Socket>& node, stream_id id, const saps::endpoint& remote)
        : node_(&node), id_(id), remote_(remote) {}

    /// Reads what is buffered (at least one byte), or waits for data; eof at the end.
    void async_read_some(std::span<std::byte> buf, read_handler h) {
        read_buf_ = buf;
        read_h_ = std::move(h);
        try_read();
    }
    /// Queues all of `data` (the caller keeps it alive until the handler runs).
    void async_write(std::span<const std::byte> data, write_handler h) {
        write_data_ = data;
        write_done_ = 0;
        write_h_ = std::move(h);
        try_write();
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

    void post(std::function<void()> f) { boost::asio::post(node_->channel().socket().get_executor(), std::move(f)); }

    void try_read() {
        if (!read_h_) return;
        std::error_code ec;
        std::size_t n = 0;
        if (closed_) {
            ec = detail::asio_code(boost::asio::error::operation_aborted);
        } else {
            n = node_->endpoint().read(id_, read_buf_, ec);
            if (n == 0 && !ec) {
                if (!node_->endpoint().at_end(id_)) return;  // wait for message_received
                ec = detail::asio_code(boost::asio::error::eof);
            }
        }
        auto h = std::move(read_h_);
        read_h_ = nullptr;
        post([h = std::move(h), ec, n] { h(ec, n); });
    }
    void try_write() {
        if (!write_h_) return;
        std::error_code ec;
        if (closed_) {
            ec = detail::asio_code(boost::asio::error::operation_aborted);
        } else if (!node_->endpoint().is_open(id_)) {
            ec = detail::asio_code(boost::asio::error::broken_pipe);
        } else {
            write_done_ += node_->endpoint().send(id_, write_data_.subspan(write_done_), ec);
            if (!ec && write_done_ < write_data_.size()) return;  // wait for buffer_available
        }
        auto h = std::move(write_h_);
        write_h_ = nullptr;
        post([h = std::move(h), ec, n = write_done_] { h(ec, n); });
    }
    void fail_pending(std::error_code) {
        try_read();
        try_write();
    }

    basic_saps_node<Socket>* node_;
    stream_id id_;
    saps::endpoint remote_;
    std::span<std::byte> read_buf_;
    std::span<const std::byte> write_data_;
    std::size_t write_done_ = 0;
    read_handler read_h_;
    write_handler write_h_;
    bool closed_ = false;
};

/// A listening virtual socket.
template <class Socket>
class basic_virtual_acceptor {
public:
    using stream_ptr = std::shared_ptr<basic_virtual_stream<Socket>>;
    using listen_handler = std::function<void(std::error_code, std::uint16_t port)>;
    using accept_handler = std::function<void(std::error_code, stream_ptr)>;

    explicit basic_virtual_acceptor(basic_saps_node<Socket>& node) : node_(&node) {}
    basic_virtual_acceptor(const basic_virtual_acceptor&) = delete;
    basic_virtual_acceptor& operator=(const basic_virtual_acceptor&) = delete;
    ~basic_virtual_acceptor() { close(); }

    /// socket(), bind(cluster address, port), listen(backlog): the handler gets the port bound
    /// (the I/O server's choice when port is 0) or the first error.
    void async_listen(std::uint16_t port, std::uint32_t backlog, listen_handler h) {
        port_ = port;
        backlog_ = backlog;
        listen_h_ = std::move(h);
        std::error_code ec;
        id_ = node_->endpoint().make_connection(0, {}, {}, ec);
        if (ec) { finish_listen(ec); return; }
        node_->acceptors_[id_] = this;
    }
    /// Waits for the next connection the I/O server hands to this listener.
    void async_accept(accept_handler h) {
        accept_h_ = std::move(h);
        try_accept();
    }
    void close() {
        if (id_ == no_stream) return;
        node_->acceptors_.erase(id_);
        node_->endpoint().close_connection(id_);
        id_ = no_stream;
    }
    [[nodiscard]] std::uint16_t port() const noexcept { return port_; }

private:
    friend class basic_saps_node<Socket>;

    void finish_listen(std::error_code ec) {
        if (!listen_h_) return;
        auto h = std::move(listen_h_);
        listen_h_ = nullptr;
        h(ec, port_);
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
        auto h = std::move(accept_h_);
        accept_h_ = nullptr;
        boost::asio::post(node_->channel().socket().get_executor(), [h = std::move(h), s = std::move(s)] { h({}, s); });
    }

    basic_saps_node<Socket>* node_;
    stream_id id_ = no_stream;
    std::uint16_t port_ = 0;
    std::uint32_t backlog_ = 0;
    listen_handler listen_h_;
    accept_handler accept_h_;
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
        cb.message_received = [this](stream_id id) { if (auto s = find(id)) s->try_read(); };
        cb.buffer_available = [this](stream_id id) { if (auto s = find(id)) s->try_write(); };
        cb.connection_closed = [this](stream_id id, std::error_code) {
            if (auto s = find(id)) { s->try_read(); s->try_write(); }  // eof / the error, to pending calls
            if (auto it = acceptors_.find(id); it != acceptors_.end()) {
                it->second->finish_listen(detail::asio_code(boost::asio::error::connection_aborted));
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
