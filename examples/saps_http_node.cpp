// cn-saps-http-node: a small HTTP/1.1 server on an application node, on virtual sockets
// (saps_app_node.hpp): it has no TCP stack of its own in the cluster's address; the I/O server's
// is used through the channel.
//
//   cn-saps-http-node --server ADDR:PORT [--port 80] [--name NAME] [--file URL=PATH]...
//                     [--stall-path URL] [--wait SECONDS] [--direct ADDR:PORT]
//
// Every request (GET or HEAD, read up to its blank line; bodies are not expected) is answered
// 200 with the body "NAME\n" and a header "X-Backend: NAME", keep-alive unless the request says
// "Connection: close" or is HTTP/1.0; a --file URL answers with that file's bytes (read once, at
// start). A client that half-closes after its request (shutdown(SHUT_WR)) still gets its answer.
// --stall-path URL: a request for URL is never answered and its connection never read again
// (the "application that stops reading" of the tests). --wait: how long to keep trying to reach
// the I/O server at start (default 10 s). --direct ADDR:PORT serves the same answers over plain
// TCP on ADDR:PORT instead of through an I/O server (the "one node, direct" peer of the
// benchmarks: the same HTTP code on the kernel's own sockets).
#include <clusternet/saps_app_node.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <thread>

namespace {

namespace asio = boost::asio;
using node_type = clusternet::tcp_saps_node;
using acceptor_type = clusternet::tcp_virtual_acceptor;

struct site {
    std::string name;
    std::map<std::string, std::string> files;  // URL path -> contents
    std::string stall_path;
    std::string default_body;  // "NAME\n"
    std::vector<std::shared_ptr<void>> stalled;  // sessions kept open, never read again
};

void close_stream(clusternet::tcp_virtual_stream& s) { s.close(); }
void close_stream(asio::ip::tcp::socket& s) {
    boost::system::error_code ignored;
    s.close(ignored);
}

/// One connection, on a virtual stream or on a plain TCP socket (the same code: both are Asio
/// streams).
template <class Stream>
struct session : std::enable_shared_from_this<session<Stream>> {
    std::shared_ptr<Stream> s;
    site* where = nullptr;
    std::string in, head;
    const std::string* body = nullptr;
    std::vector<std::byte> buf = std::vector<std::byte>(8192);

    void read() {
        s->async_read_some(asio::buffer(buf), [self = this->shared_from_this()](boost::system::error_code ec, std::size_t n) {
            if (ec) { close_stream(*self->s); return; }  // eof (or the client's FIN after its last request) or an error
            self->in.append(reinterpret_cast<const char*>(self->buf.data()), n);
            if (self->in.size() > 65536) { close_stream(*self->s); return; }  // no such requests here
            self->serve();
        });
    }
    void serve() {
        const auto end = in.find("\r\n\r\n");
        if (end == std::string::npos) { read(); return; }
        const std::string req = in.substr(0, end);
        in.erase(0, end + 4);
        const auto sp1 = req.find(' ');
        const auto sp2 = sp1 == std::string::npos ? std::string::npos : req.find(' ', sp1 + 1);
        const std::string path = sp2 == std::string::npos ? "/" : req.substr(sp1 + 1, sp2 - sp1 - 1);
        if (!where->stall_path.empty() && path == where->stall_path) {  // never answered, never read again
            where->stalled.push_back(this->shared_from_this());
            return;
        }
        const bool head_only = req.rfind("HEAD ", 0) == 0;
        const bool http10 = sp2 != std::string::npos && req.compare(sp2 + 1, 8, "HTTP/1.0") == 0;
        const bool close = http10 || req.find("Connection: close") != std::string::npos ||
                           req.find("connection: close") != std::string::npos;
        const auto f = where->files.find(path);
        body = f != where->files.end() ? &f->second : &where->default_body;
        head = "HTTP/1.1 200 OK\r\nContent-Type: " + std::string(f != where->files.end() ? "application/octet-stream" : "text/plain") +
               "\r\nX-Backend: " + where->name + "\r\nContent-Length: " + std::to_string(body->size()) +
               (close ? "\r\nConnection: close" : "") + "\r\n\r\n";
        std::string_view rest = head_only ? std::string_view() : std::string_view(*body);
        if (rest.size() <= 16384) {  // a small answer in one piece: one data frame, one TCP segment
            head.append(rest);
            rest = {};
        }
        const std::array<asio::const_buffer, 2> out{asio::buffer(head), asio::buffer(rest)};
        asio::async_write(*s, out, [self = this->shared_from_this(), close](boost::system::error_code ec, std::size_t) {
            if (ec || close) { close_stream(*self->s); return; }
            self->serve();
        });
    }
};

std::pair<std::string, std::uint16_t> split_endpoint(const std::string& s, const char* what) {
    const auto colon = s.rfind(':');
    if (colon == std::string::npos) throw std::invalid_argument(std::string(what) + " wants ADDR:PORT, got '" + s + "'");
    return {s.substr(0, colon), static_cast<std::uint16_t>(std::stoul(s.substr(colon + 1)))};
}

void usage() {
    std::fprintf(stderr,
                 "usage: cn-saps-http-node --server ADDR:PORT [--port 80] [--name NAME] [--file URL=PATH]...\n"
                 "                         [--stall-path URL] [--wait SECONDS] [--direct ADDR:PORT]\n");
}

}  // namespace

int main(int argc, char** argv) {
    std::string server, direct;
    site web;
    web.name = "node";
    std::uint16_t port = 80;
    double wait_s = 10;
    try {
        for (int i = 1; i < argc; ++i) {
            const std::string a = argv[i];
            if (a == "--server" && i + 1 < argc) server = argv[++i];
            else if (a == "--port" && i + 1 < argc) port = static_cast<std::uint16_t>(std::stoul(argv[++i]));
            else if (a == "--name" && i + 1 < argc) web.name = argv[++i];
            else if (a == "--stall-path" && i + 1 < argc) web.stall_path = argv[++i];
            else if (a == "--wait" && i + 1 < argc) wait_s = std::stod(argv[++i]);
            else if (a == "--direct" && i + 1 < argc) direct = argv[++i];
            else if (a == "--file" && i + 1 < argc) {
                const std::string spec = argv[++i];
                const auto eq = spec.find('=');
                if (eq == std::string::npos || spec[0] != '/') throw std::invalid_argument("--file wants URL=PATH (URL starting with /), got '" + spec + "'");
                std::ifstream f(spec.substr(eq + 1), std::ios::binary);
                if (!f) throw std::invalid_argument("--file: cannot read '" + spec.substr(eq + 1) + "'");
                web.files[spec.substr(0, eq)] = std::string(std::istreambuf_iterator<char>(f), {});
            } else if (a == "-h" || a == "--help") { usage(); return 0; }
            else { usage(); return 2; }
        }
        web.default_body = web.name + "\n";
        if (server.empty() == direct.empty()) { std::fprintf(stderr, "cn-saps-http-node: give --server ADDR:PORT or --direct ADDR:PORT\n"); return 2; }

        asio::io_context io;
        asio::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([&](const boost::system::error_code&, int) { io.stop(); });

        if (!direct.empty()) {  // the same HTTP code on a kernel TCP socket
            const auto [addr, p] = split_endpoint(direct, "--direct");
            asio::ip::tcp::acceptor acc(io, {asio::ip::make_address(addr), p});
            std::function<void()> accept_next = [&] {
                acc.async_accept([&](const boost::system::error_code& ec, asio::ip::tcp::socket s) {
                    if (ec) return;
                    s.set_option(asio::ip::tcp::no_delay(true));
                    auto ss = std::make_shared<session<asio::ip::tcp::socket>>();
                    ss->s = std::make_shared<asio::ip::tcp::socket>(std::move(s));
                    ss->where = &web;
                    ss->read();
                    accept_next();
                });
            };
            accept_next();
            std::printf("cn-saps-http-node %s: listening directly on %s\n", web.name.c_str(), direct.c_str());
            std::fflush(stdout);
            io.run();
            return 0;
        }

        const auto [addr, p] = split_endpoint(server, "--server");
        asio::ip::tcp::socket sock(io);
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_s);
        for (;;) {  // the I/O server may start after its nodes
            boost::system::error_code ec;
            sock.connect({asio::ip::make_address(addr), p}, ec);
            if (!ec) break;
            sock.close();
            if (std::chrono::steady_clock::now() >= give_up) {
                std::fprintf(stderr, "cn-saps-http-node: cannot reach the I/O server at %s: %s\n", server.c_str(), ec.message().c_str());
                return 1;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        sock.set_option(asio::ip::tcp::no_delay(true));
        node_type node(std::move(sock));
        acceptor_type acceptor(node);
        std::function<void()> accept_next = [&] {
            acceptor.async_accept([&](boost::system::error_code ec, std::shared_ptr<clusternet::tcp_virtual_stream> s) {
                if (ec) return;
                auto ss = std::make_shared<session<clusternet::tcp_virtual_stream>>();
                ss->s = std::move(s);
                ss->where = &web;
                ss->read();
                accept_next();
            });
        };
        int status = 0;
        acceptor.async_listen(port, 1024, [&](boost::system::error_code ec, std::uint16_t bound) {
            if (ec) {
                std::fprintf(stderr, "cn-saps-http-node: listen on port %u: %s\n", port, ec.message().c_str());
                status = 1;
                io.stop();
                return;
            }
            std::printf("cn-saps-http-node %s: listening on port %u\n", web.name.c_str(), bound);
            std::fflush(stdout);
            accept_next();
        });
        node.channel().on_failed = [&](std::error_code ec) {
            std::fprintf(stderr, "cn-saps-http-node: channel to the I/O server failed: %s\n", ec.message().c_str());
            status = 1;
            io.stop();
        };
        io.run();
        return status;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cn-saps-http-node: %s\n", e.what());
        return 1;
    }
}
