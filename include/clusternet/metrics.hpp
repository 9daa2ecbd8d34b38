// clusternet/metrics.hpp -- counters in Prometheus's text format, served over HTTP with Asio.
//
//   metrics_text    builds an exposition (text format 0.0.4): `# HELP` and `# TYPE` once per
//                   family, then one sample line per label set, label values escaped.
//   metrics_server  a small HTTP/1.x endpoint on an io_context: GET /metrics answers with what
//                   a callback renders at that moment; anything else gets 404 or 405. Requests
//                   are bounded (8 KiB of header, 5 s to send it, 16 connections at once), so a
//                   slow or hostile client costs a socket, never unbounded memory or a stall of
//                   the io_context. Rendering runs on the io_context's thread: the dispatcher's
//                   own thread when it shares the context, so counters are read without locks.
//
// Neither is on the packet path: rendering allocates a string per scrape.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <initializer_list>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace clusternet {

class metrics_text {
public:
    using label = std::pair<std::string_view, std::string_view>;

    /// A counter sample (a value that only grows). `name` should end in `_total`.
    metrics_text& counter(std::string_view name, std::string_view help, std::uint64_t value,
                          std::initializer_list<label> labels = {}) {
        family(name, help, "counter");
        sample(name, labels);
        out_ += std::to_string(value);
        out_ += '\n';
        return *this;
    }
    /// A gauge sample (a value that goes up and down).
    metrics_text& gauge(std::string_view name, std::string_view help, double value,
                        std::initializer_list<label> labels = {}) {
        family(name, help, "gauge");
        sample(name, labels);
        char buf[64];
        const int n = std::snprintf(buf, sizeof buf, "%.17g", value);
        out_.append(buf, static_cast<std::size_t>(n));
        out_ += '\n';
        return *this;
    }

    [[nodiscard]] const std::string& str() const noexcept { return out_; }
    [[nodiscard]] std::string take() noexcept { return std::move(out_); }

private:
    void family(std::string_view name, std::string_view help, std::string_view type) {
        if (!seen_.insert(std::string(name)).second) return;
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        for (const char c : help) {  // HELP escapes backslash and newline
            if (c == '\\') out_ += "\\\\";
            else if (c == '\n') out_ += "\\n";
            else out_ += c;
        }
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }
    void sample(std::string_view name, std::initializer_list<label> labels) {
        out_ += name;
        if (labels.size() != 0) {
            out_ += '{';
            bool first = true;
            for (const auto& [k, v] : labels) {
                if (!first) out_ += ',';
                first = false;
                out_ += k;
                out_ += "=\"";
                for (const char c : v) {  // label values escape backslash, quote and newline
                    if (c == '\\') out_ += "\\\\";
                    else if (c == '"') out_ += "\\\"";
                    else if (c == '\n') out_ += "\\n";
                    else out_ += c;
                }
                out_ += '"';
            }
            out_ += '}';
        }
        out_ += ' ';
    }

    std::string out_;
    std::set<std::string, std::less<>> seen_;
};

class metrics_server {
public:
    using renderer = std::function<std::string()>;
    static constexpr std::size_t max_request = 8192;
    static constexpr std::size_t max_connections = 16;
    static constexpr std::chrono::seconds request_timeout{5};

    /// Listens on `endpoint` (port 0 picks one: see port()). Throws boost::system::system_error
    /// when the address cannot be bound (in use, or not this host's).
    metrics_server(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& endpoint, renderer render)
        : state_(std::make_shared<state>(io, endpoint, std::move(render))) {
        accept(state_);
    }
    metrics_server(const metrics_server&) = delete;
    metrics_server& operator=(const metrics_server&) = delete;
    ~metrics_server() { close(); }

    [[nodiscard]] std::uint16_t port() const { return state_->acceptor.local_endpoint().port(); }
    [[nodiscard]] std::uint64_t requests() const noexcept { return state_->requests; }
    [[nodiscard]] std::uint64_t refused() const noexcept { return state_->refused; }

    /// Stops accepting; connections in progress finish or time out.
    void close() noexcept {
        boost::system::error_code ignored;
        state_->acceptor.close(ignored);
    }

private:
    struct state {
        state(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& ep, renderer r)
            : acceptor(io, ep), render(std::move(r)) {}
        boost::asio::ip::tcp::acceptor acceptor;
        renderer render;
        std::size_t open = 0;
        std::uint64_t requests = 0, refused = 0;
    };

    struct connection : std::enable_shared_from_this<connection> {
        connection(std::shared_ptr<state> s, boost::asio::ip::tcp::socket sock)
            : st(std::move(s)), socket(std::move(sock)), timer(socket.get_executor()), buf(max_request) {}
        ~connection() { --st->open; }

        void start() {
            auto self = shared_from_this();
            timer.expires_after(request_timeout);
            timer.async_wait([self](const boost::system::error_code& ec) {
                if (!ec) self->socket.close();  // too slow: give the socket back
            });
            boost::asio::async_read_until(socket, buf, "\r\n\r\n",
                                          [self](const boost::system::error_code& ec, std::size_t n) { self->on_request(ec, n); });
        }

        void on_request(const boost::system::error_code& ec, std::size_t n) {
            if (ec) {  // closed, timed out, or more than max_request bytes without an end
                boost::system::error_code ignored;
                socket.close(ignored);
                timer.cancel();
                return;
            }
            const std::string head(boost::asio::buffers_begin(buf.data()), boost::asio::buffers_begin(buf.data()) + static_cast<std::ptrdiff_t>(n));
            const std::string_view line = std::string_view(head).substr(0, head.find("\r\n"));
            std::string status = "200 OK", body;
            if (!line.starts_with("GET ")) {
                status = "405 Method Not Allowed";
                body = "only GET is served\n";
            } else if (const std::string_view path = line.substr(4, line.find(' ', 4) - 4);
                       path != "/metrics" && !path.starts_with("/metrics?")) {
                status = "404 Not Found";
                body = "metrics are at /metrics\n";
            } else {
                ++st->requests;
                body = st->render();
            }
            response = "HTTP/1.1 " + status +
                       "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nConnection: close\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n" + body;
            auto self = shared_from_this();
            boost::asio::async_write(socket, boost::asio::buffer(response), [self](const boost::system::error_code&, std::size_t) {
                boost::system::error_code ignored;
                self->socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
                self->socket.close(ignored);
                self->timer.cancel();
            });
        }

        std::shared_ptr<state> st;
        boost::asio::ip::tcp::socket socket;
        boost::asio::steady_timer timer;
        boost::asio::streambuf buf;
        std::string response;
    };

    static void accept(const std::shared_ptr<state>& s) {
        s->acceptor.async_accept([s](const boost::system::error_code& ec, boost::asio::ip::tcp::socket sock) {
            if (ec == boost::asio::error::operation_aborted || !s->acceptor.is_open()) return;
            if (!ec) {
                if (s->open >= max_connections) {
                    ++s->refused;
                    boost::system::error_code ignored;
                    sock.close(ignored);
                } else {
                    ++s->open;
                    std::make_shared<connection>(s, std::move(sock))->start();
                }
            }
            accept(s);
        });
    }

    std::shared_ptr<state> state_;
};

}  // namespace clusternet
