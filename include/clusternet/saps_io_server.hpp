// clusternet/saps_io_server.hpp -- the SAPS I/O server: TCP outside, mux channels inside.
//
// Design note. SAPS (Matsuba and Ishikawa, IPDPS 2007, sections 2 and 2.1.2) gives a cluster one
// address by terminating TCP on one I/O server and handing each connection's byte stream to an
// application node over the cluster network. basic_saps_io_server is the I/O server's "SAPS
// Forwarder" as a user-space relay over Boost.Asio (the paper's runs in the kernel to save copies;
// this one trades them for being an ordinary process):
//
//  - each application node is one mux_channel (mux_channel.hpp) added with add_node();
//  - a node's socket() is a stream it opens (ConnectionAccepted here); its bind and listen
//    requests make the server listen on the cluster address and port; several nodes may listen
//    on one port (the paper allows it) and new TCP connections go to them in turn, round robin;
//  - an accepted TCP connection becomes a stream the server opens to the chosen node
//    (MakeConnection, tag = the node's id of its listening stream, the TCP peer and local
//    addresses in the open); connect requests make outgoing TCP connections the same way;
//  - bytes are relayed both ways under the credits: the server stops reading a TCP socket while
//    its stream's send buffer is full and stops reading a stream while its TCP write is pending,
//    so a client or an application that stops reading holds back only its own connection;
//  - a node that fails (its channel breaks) fails only its own connections, which the server
//    resets (the client sees ECONNRESET); its listeners are dropped from the rotation.
//
// Half-close both ways: a client's FIN becomes an eof on its stream (the node reads end of
// stream and may still answer: an HTTP/1.0 client that shuts down its side after the request
// gets its response); a node's eof (virtual_stream::shutdown) or shutdown(SHUT_WR) request
// becomes the TCP FIN after what the node sent. When both directions are finished, or the node
// closes, the connection ends.
//
// Threads and lifetime: one io_context thread. The server must outlive the handlers it started:
// call close() and let the io_context run (or poll) before destroying it.
#pragma once

#include <clusternet/mux_channel.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <system_error>
#include <vector>

namespace clusternet {

struct saps_io_server_options {
    boost::asio::ip::address address = boost::asio::ip::make_address("127.0.0.1");  ///< the cluster address
    mux_config channel{};                    ///< settings of every node's channel
    std::size_t relay_buffer = 64 * 1024;    ///< bytes per read and per write of each TCP connection
    int max_backlog = 1024;                  ///< listen() backlogs are clamped to this
    /// TCP_NODELAY on client connections: the relay writes what a node sent as it comes, so
    /// Nagle's algorithm would only hold a reply's second segment back for the client's delayed
    /// ACK (tens of milliseconds). A node sets it for its own socket with setsockopt as well.
    bool client_no_delay = true;
};

/// Counters of the I/O server (monotonic).
struct saps_io_server_counters {
    std::uint64_t tcp_accepted = 0;        ///< TCP connections accepted from clients
    std::uint64_t tcp_refused = 0;         ///< ... closed at once: no live listener, or a full table
    std::uint64_t tcp_connected = 0;       ///< outgoing connections made for connect requests
    std::uint64_t tcp_reset = 0;           ///< connections reset because their node failed or aborted
    std::uint64_t client_half_closes = 0;  ///< clients' FINs passed on as eofs (their node may still answer)
    std::uint64_t bytes_to_nodes = 0, bytes_to_clients = 0;
    std::uint64_t nodes_failed = 0;
};

template <class ChannelSocket = boost::asio::local::stream_protocol::socket>
class basic_saps_io_server {
public:
    using channel_type = basic_mux_channel<ChannelSocket>;
    using tcp = boost::asio::ip::tcp;

    /// Throws std::invalid_argument for bad options (see mux_config).
    basic_saps_io_server(boost::asio::io_context& io, saps_io_server_options opt) : io_(io), opt_(std::move(opt)) {
        if (opt_.relay_buffer == 0) throw std::invalid_argument("saps_io_server_options: relay_buffer must not be 0");
    }
    basic_saps_io_server(const basic_saps_io_server&) = delete;
    basic_saps_io_server& operator=(const basic_saps_io_server&) = delete;

    /// Adds an application node reached through `socket` (connected); returns its index.
    std::size_t add_node(ChannelSocket socket) {
        const std::size_t index = nodes_.size();
        auto n = std::make_unique<node>();
        n->index = index;
        mux_callbacks cb;
        cb.connection_accepted = [this, index](stream_id id, const saps::frame&) { return on_socket(index, id); };
        cb.connection_established = [this, index](stream_id id, std::error_code ec) { on_established(index, id, ec); };
        cb.connection_closed = [this, index](stream_id id, std::error_code ec) { on_closed(index, id, ec); };
        cb.message_received = [this, index](stream_id id) { if (auto r = relay_of(index, id)) pull(r); };
        cb.buffer_available = [this, index](stream_id id) { if (auto r = relay_of(index, id)) push(r); };
        cb.request_received = [this, index](stream_id id, const saps::frame& rq) { on_request(index, id, rq); };
        n->ch = channel_type::create(std::move(socket), opt_.channel, std::move(cb));
        n->ch->on_failed = [this, index](std::error_code ec) { node_failed(index, ec); };
        nodes_.push_back(std::move(n));
        nodes_.back()->ch->start();
        return index;
    }

    /// Called when a node's channel fails (after its connections were reset and its listeners
    /// dropped), with the node's index and the channel's error.
    std::function<void(std::size_t node, std::error_code)> on_node_failed;

    /// The port actually listened on for a node's bind (useful after a bind to port 0).
    [[nodiscard]] std::vector<std::uint16_t> ports() const {
        std::vector<std::uint16_t> v;
        for (const auto& [port, p] : ports_) if (!p.listeners.empty()) v.push_back(port);
        return v;
    }
    [[nodiscard]] const saps_io_server_counters& counters() const noexcept { return counters_; }
    [[nodiscard]] channel_type& channel(std::size_t node_index) { return *nodes_.at(node_index)->ch; }
    [[nodiscard]] std::size_t connections() const noexcept {
        std::size_t n = 0;
        for (const auto& nd : nodes_) n += nd->relays.size();
        return n;
    }

    /// Stops listening, resets every connection and closes every channel.
    void close() {
        for (auto& [port, p] : ports_) {
            boost::system::error_code ignored;
            p.acceptor->close(ignored);
        }
        for (auto& n : nodes_) n->ch->close();
    }

private:
    struct relay {
        // The buffers are not zeroed (a new connection costs no memset of 2 x relay_buffer).
        explicit relay(boost::asio::io_context& io, std::size_t buffer)
            : sock(io), in_buf(new std::byte[buffer]), out_buf(new std::byte[buffer]), in(in_buf.get(), buffer),
              out(out_buf.get(), buffer) {}
        tcp::socket sock;
        std::size_t node = 0;
        stream_id id = no_stream;
        std::unique_ptr<std::byte[]> in_buf, out_buf;
        std::span<std::byte> in, out;
        std::size_t in_off = 0, in_len = 0;
        bool established = false, reading = false, writing = false;
        bool stream_done = false;   // the stream is closed (by either side)
        bool tcp_done = false;      // the TCP socket is closed
        bool shutdown_after_drain = false;
        bool client_eof = false;    // the client's FIN came: passed on as the stream's eof
        bool node_eof = false;      // the node's eof came: passed on as our FIN
    };
    struct vsocket {          // a stream a node opened: socket()
        std::uint16_t bound = 0;
        bool has_bound = false, listening = false;
    };
    struct node {
        std::size_t index = 0;
        std::shared_ptr<channel_type> ch;
        bool alive = true;
        std::map<stream_id, vsocket> sockets;
        std::map<stream_id, std::shared_ptr<relay>> relays;
    };
    struct port_entry {
        std::unique_ptr<tcp::acceptor> acceptor;
        std::vector<std::pair<std::size_t, stream_id>> listeners;  // (node, its socket stream)
        std::size_t next = 0;
        bool accepting = false;
    };

    std::shared_ptr<relay> relay_of(std::size_t n, stream_id id) {
        auto& rs = nodes_[n]->relays;
        const auto it = rs.find(id);
        return it == rs.end() ? nullptr : it->second;
    }
    mux_endpoint& ep(std::size_t n) { return nodes_[n]->ch->endpoint(); }

    static saps::endpoint to_endpoint(const tcp::endpoint& e) {
        saps::endpoint out;
        out.port = e.port();
        const auto a = e.address();
        if (a.is_v4()) {
            out.address = ipv6_address::v4_mapped(ipv4_address(a.to_v4().to_uint()));
        } else {
            const auto b = a.to_v6().to_bytes();
            for (std::size_t i = 0; i < 16; ++i) out.address.bytes[i] = std::byte{b[i]};
        }
        return out;
    }
    static tcp::endpoint to_tcp(const saps::endpoint& e) {
        if (e.address.is_v4_mapped()) return {boost::asio::ip::address_v4(e.address.v4().value), e.port};
        boost::asio::ip::address_v6::bytes_type b{};
        for (std::size_t i = 0; i < 16; ++i) b[i] = static_cast<unsigned char>(e.address.bytes[i]);
        return {boost::asio::ip::address_v6(b), e.port};
    }
    static std::int32_t errno_of(const boost::system::error_code& ec) {
        return ec ? (ec.value() > 0 ? ec.value() : EIO) : 0;
    }

    // --- a node's sockets and their calls ---------------------------------------------------------

    int on_socket(std::size_t n, stream_id id) {
        nodes_[n]->sockets[id] = vsocket{};
        return 0;
    }

    void on_request(std::size_t n, stream_id id, const saps::frame& rq) {
        node& nd = *nodes_[n];
        auto reply = [&](std::int32_t status, std::span<const std::byte> value = {}) { ep(n).reply(id, status, value); };
        const auto rel = relay_of(n, id);
        switch (rq.call) {
            case saps::socket_call::bind: {
                auto it = nd.sockets.find(id);
                if (it == nd.sockets.end() || it->second.has_bound) { reply(EINVAL); return; }
                std::uint16_t port = rq.local.port;
                if (port == 0 || !ports_.count(port)) {
                    auto acc = std::make_unique<tcp::acceptor>(io_);
                    boost::system::error_code ec;
                    const tcp::endpoint where(opt_.address, port);
                    acc->open(where.protocol(), ec);
                    if (!ec) acc->set_option(tcp::acceptor::reuse_address(true), ec);
                    if (!ec) acc->bind(where, ec);
                    if (ec) { reply(errno_of(ec)); return; }
                    port = acc->local_endpoint().port();
                    ports_[port].acceptor = std::move(acc);
                }
                it->second.bound = port;
                it->second.has_bound = true;
                std::array<std::byte, 2> value{};
                store_be16(value.data(), port);
                reply(0, value);
                return;
            }
            case saps::socket_call::listen: {
                auto it = nd.sockets.find(id);
                if (it == nd.sockets.end() || !it->second.has_bound) { reply(EDESTADDRREQ); return; }
                port_entry& p = ports_[it->second.bound];
                if (!it->second.listening) {
                    if (p.listeners.empty() && !p.accepting) {
                        boost::system::error_code ec;
                        const int backlog = std::min(opt_.max_backlog, std::max(1, static_cast<int>(rq.arg0)));
                        p.acceptor->listen(backlog, ec);
                        if (ec) { reply(errno_of(ec)); return; }
                    }
                    p.listeners.emplace_back(n, id);
                    it->second.listening = true;
                    if (!p.accepting) accept(it->second.bound);
                }
                reply(0);
                return;
            }
            case saps::socket_call::connect: {
                if (rel || !nd.sockets.count(id)) { reply(EISCONN); return; }
                auto r = std::make_shared<relay>(io_, opt_.relay_buffer);
                r->node = n;
                r->id = id;
                nd.relays[id] = r;
                nd.sockets.erase(id);
                r->sock.async_connect(to_tcp(rq.peer), [this, r](const boost::system::error_code& ec) {
                    if (r->stream_done) { finish_tcp(r, false); return; }
                    ep(r->node).reply(r->id, errno_of(ec));
                    if (ec) { finish_tcp(r, false); return; }
                    ++counters_.tcp_connected;
                    r->established = true;
                    read_tcp(r);
                    pull(r);
                });
                return;
            }
            case saps::socket_call::shutdown:
                if (!rel) { reply(ENOTCONN); return; }
                if (rq.arg0 != 0) {  // SHUT_WR or SHUT_RDWR: after what the node sent so far
                    rel->shutdown_after_drain = true;
                    pull(rel);
                }
                reply(0);
                return;
            case saps::socket_call::setsockopt:
            case saps::socket_call::getsockopt: {
                int fd = -1;
                if (rel) fd = rel->sock.native_handle();
                else if (auto it = nd.sockets.find(id); it != nd.sockets.end() && it->second.has_bound)
                    fd = ports_[it->second.bound].acceptor->native_handle();
                if (fd < 0) { reply(ENOTCONN); return; }
                int v = 0;
                if (rq.call == saps::socket_call::setsockopt) {
                    if (rq.payload.size() != 4) { reply(EINVAL); return; }
                    v = static_cast<int>(load_be32(rq.payload.data()));
                    reply(::setsockopt(fd, static_cast<int>(rq.arg0), static_cast<int>(rq.arg1), &v, sizeof v) == 0 ? 0 : errno);
                    return;
                }
                socklen_t len = sizeof v;
                if (::getsockopt(fd, static_cast<int>(rq.arg0), static_cast<int>(rq.arg1), &v, &len) != 0) { reply(errno); return; }
                std::array<std::byte, 4> value{};
                store_be32(value.data(), static_cast<std::uint32_t>(v));
                reply(0, value);
                return;
            }
            case saps::socket_call::close:
                drop_listener(n, id);
                reply(0);
                return;
            default:
                reply(EOPNOTSUPP);
                return;
        }
    }

    void drop_listener(std::size_t n, stream_id id) {
        node& nd = *nodes_[n];
        auto it = nd.sockets.find(id);
        if (it == nd.sockets.end() || !it->second.listening) return;
        it->second.listening = false;
        auto& ls = ports_[it->second.bound].listeners;
        std::erase(ls, std::pair<std::size_t, stream_id>(n, id));
    }

    // --- clients ------------------------------------------------------------------------------

    void accept(std::uint16_t port) {
        port_entry& p = ports_[port];
        p.accepting = true;
        p.acceptor->async_accept([this, port](const boost::system::error_code& ec, tcp::socket s) {
            port_entry& pe = ports_[port];
            if (ec) { pe.accepting = false; return; }
            ++counters_.tcp_accepted;
            if (opt_.client_no_delay) {
                boost::system::error_code ignored;
                s.set_option(tcp::no_delay(true), ignored);
            }
            hand_over(pe, std::move(s));
            accept(port);
        });
    }

    /// Gives a new client connection to the next live listener of its port (round robin).
    void hand_over(port_entry& p, tcp::socket s) {
        for (std::size_t tries = 0; tries < p.listeners.size(); ++tries) {
            const auto [n, listener] = p.listeners[p.next++ % p.listeners.size()];
            if (!nodes_[n]->alive) continue;
            const auto* e = ep(n).stream(listener);
            if (!e) continue;
            boost::system::error_code ec1, ec2;
            const auto remote = s.remote_endpoint(ec1);
            const auto local = s.local_endpoint(ec2);
            std::error_code ec;
            const stream_id id = ep(n).make_connection(e->user.peer, to_endpoint(remote), to_endpoint(local), ec);
            if (ec) continue;
            auto r = std::make_shared<relay>(io_, opt_.relay_buffer);
            r->sock = std::move(s);
            r->node = n;
            r->id = id;
            nodes_[n]->relays[id] = r;
            return;
        }
        ++counters_.tcp_refused;
        boost::system::error_code ignored;
        s.close(ignored);
    }

    void on_established(std::size_t n, stream_id id, std::error_code ec) {
        const auto r = relay_of(n, id);
        if (!r) return;
        if (ec) {  // the node refused the connection
            r->stream_done = true;
            ++counters_.tcp_refused;
            finish_tcp(r, true);
            return;
        }
        r->established = true;
        read_tcp(r);
    }

    void on_closed(std::size_t n, stream_id id, std::error_code ec) {
        node& nd = *nodes_[n];
        if (nd.sockets.count(id)) {
            drop_listener(n, id);
            nd.sockets.erase(id);
            ep(n).close_connection(id);
            return;
        }
        const auto r = relay_of(n, id);
        if (!r) return;
        r->stream_done = true;
        if (ec || !nd.alive) {  // an abort, or the node failed: reset the client
            ++counters_.tcp_reset;
            ep(n).close_connection(id);
            finish_tcp(r, true);
            return;
        }
        r->shutdown_after_drain = true;
        pull(r);  // deliver what is left, then close
    }

    void node_failed(std::size_t n, std::error_code ec) {
        node& nd = *nodes_[n];
        if (!nd.alive) return;
        nd.alive = false;
        ++counters_.nodes_failed;
        for (auto& [port, p] : ports_) std::erase_if(p.listeners, [n](const auto& l) { return l.first == n; });
        // The endpoint has told every stream (connection_closed) already; reset what is left.
        auto relays = nd.relays;
        for (auto& [id, r] : relays) {
            r->stream_done = true;
            if (!r->tcp_done) ++counters_.tcp_reset;
            finish_tcp(r, true);
        }
        nd.sockets.clear();
        if (on_node_failed) on_node_failed(n, ec);
    }

    // --- the relay ----------------------------------------------------------------------------

    /// TCP -> stream: read when the previous bytes were all taken by the stream.
    void read_tcp(const std::shared_ptr<relay>& r) {
        if (r->reading || r->tcp_done || r->stream_done || r->client_eof || r->in_off < r->in_len) return;
        r->reading = true;
        r->sock.async_read_some(boost::asio::buffer(r->in.data(), r->in.size()), [this, r](const boost::system::error_code& ec, std::size_t n) {
            r->reading = false;
            if (r->tcp_done || r->stream_done) return;
            if (ec == boost::asio::error::eof) {  // the client's FIN: half-close the stream after what it queued
                r->client_eof = true;
                ++counters_.client_half_closes;
                (void)ep(r->node).shutdown_send(r->id);
                if (r->node_eof) end_both(r);
                return;
            }
            if (ec) {  // the client failed (a reset): abort the stream
                r->stream_done = true;
                ep(r->node).close_connection(r->id, ECONNRESET);
                finish_tcp(r, true);
                return;
            }
            r->in_off = 0;
            r->in_len = n;
            push(r);
        });
    }
    void push(const std::shared_ptr<relay>& r) {
        if (r->stream_done || !r->established) return;
        if (r->in_off < r->in_len) {
            std::error_code ec;
            const std::size_t took =
                ep(r->node).send(r->id, std::span<const std::byte>(r->in.subspan(r->in_off, r->in_len - r->in_off)), ec);
            if (ec) {  // an error the node reported: this connection is over
                r->stream_done = true;
                ep(r->node).close_connection(r->id, ECONNRESET);
                finish_tcp(r, true);
                return;
            }
            r->in_off += took;
            counters_.bytes_to_nodes += took;
        }
        if (r->in_off == r->in_len) read_tcp(r);  // else buffer_available calls again
    }

    /// stream -> TCP: one write at a time; reading the stream is what grants the node credit.
    void pull(const std::shared_ptr<relay>& r) {
        if (r->writing || r->tcp_done || !r->established) return;
        std::error_code ec;
        const std::size_t n = r->stream_done && !ep(r->node).stream(r->id) ? 0 : ep(r->node).read(r->id, r->out, ec);
        if (n == 0) {
            if (!r->node_eof && !r->stream_done && ep(r->node).stream(r->id) && ep(r->node).at_end(r->id)) {
                // The node half-closed (its eof, after everything it sent): our FIN.
                r->node_eof = true;
                boost::system::error_code ignored;
                r->sock.shutdown(tcp::socket::shutdown_send, ignored);
                if (r->client_eof) end_both(r);
                return;
            }
            if (r->shutdown_after_drain) {
                boost::system::error_code ignored;
                r->sock.shutdown(tcp::socket::shutdown_send, ignored);
                r->shutdown_after_drain = false;
                if (r->stream_done) {  // the node closed: the connection is over once the client is
                    ep(r->node).close_connection(r->id);
                    finish_tcp(r, false);
                }
            }
            return;
        }
        r->writing = true;
        boost::asio::async_write(r->sock, boost::asio::buffer(r->out.data(), n),
                                 [this, r](const boost::system::error_code& wec, std::size_t written) {
                                     r->writing = false;
                                     if (r->tcp_done) return;
                                     if (wec) {
                                         if (!r->stream_done) {
                                             r->stream_done = true;
                                             ep(r->node).close_connection(r->id, ECONNRESET);
                                         }
                                         finish_tcp(r, true);
                                         return;
                                     }
                                     counters_.bytes_to_clients += written;
                                     pull(r);
                                 });
    }

    /// Both directions finished (each side's FIN passed on): the connection is over.
    void end_both(const std::shared_ptr<relay>& r) {
        r->stream_done = true;
        ep(r->node).close_connection(r->id);
        finish_tcp(r, false);
    }

    /// Closes the TCP side (with a reset when `reset`) and forgets the relay once its stream is
    /// done too.
    void finish_tcp(const std::shared_ptr<relay>& r, bool reset) {
        if (!r->tcp_done) {
            r->tcp_done = true;
            boost::system::error_code ignored;
            if (reset && r->sock.is_open()) r->sock.set_option(boost::asio::socket_base::linger(true, 0), ignored);
            r->sock.close(ignored);
        }
        if (r->stream_done) nodes_[r->node]->relays.erase(r->id);
    }

    boost::asio::io_context& io_;
    saps_io_server_options opt_;
    std::vector<std::unique_ptr<node>> nodes_;
    std::map<std::uint16_t, port_entry> ports_;
    saps_io_server_counters counters_;
};

using saps_io_server = basic_saps_io_server<>;

}  // namespace clusternet
