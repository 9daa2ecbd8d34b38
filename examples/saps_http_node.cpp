// cn-saps-http-node: a small HTTP/1.1 server on an application node, on virtual sockets
// (saps_app_node.hpp): it has no TCP stack of its own in the cluster's address; the I/O server's
// is used through the channel.
//
//   cn-saps-http-node --server ADDR:PORT [--port 80] [--name NAME]
//
// Every request (GET or HEAD, read up to its blank line; bodies are not expected) is answered
// 200 with the body "NAME\n", keep-alive unless the request says "Connection: close".
#include <clusternet/saps_app_node.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/signal_set.hpp>

#include <cstdio>
#include <memory>
#include <string>

namespace {

using node_type = clusternet::tcp_saps_node;
using acceptor_type = clusternet::tcp_virtual_acceptor;
using stream_type = clusternet::tcp_virtual_stream;

struct session : std::enable_shared_from_this<session> {
    std::shared_ptr<stream_type> s;
    std::string name, in, out;
    std::vector<std::byte> buf = std::vector<std::byte>(8192);

    void read() {
        s->async_read_some(buf, [self = shared_from_this()](std::error_code ec, std::size_t n) {
            if (ec) { self->s->close(); return; }
            self->in.append(reinterpret_cast<const char*>(self->buf.data()), n);
            if (self->in.size() > 65536) { self->s->close(); return; }  // no such requests here
            self->serve();
        });
    }
    void serve() {
        const auto end = in.find("\r\n\r\n");
        if (end == std::string::npos) { read(); return; }
        const std::string req = in.substr(0, end);
        in.erase(0, end + 4);
        const bool head = req.rfind("HEAD ", 0) == 0;
        const bool close = req.find("Connection: close") != std::string::npos ||
                           req.find("connection: close") != std::string::npos;
        const std::string body = name + "\n";
        out = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
              (close ? "\r\nConnection: close" : "") + "\r\n\r\n" + (head ? "" : body);
        s->async_write(std::as_bytes(std::span(out)), [self = shared_from_this(), close](std::error_code ec, std::size_t) {
            if (ec || close) { self->s->close(); return; }
            self->serve();
        });
    }
};

}  // namespace

int main(int argc, char** argv) {
    std::string server, name = "node";
    std::uint16_t port = 80;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--server" && i + 1 < argc) server = argv[++i];
        else if (a == "--port" && i + 1 < argc) port = static_cast<std::uint16_t>(std::stoul(argv[++i]));
        else if (a == "--name" && i + 1 < argc) name = argv[++i];
        else { std::fprintf(stderr, "usage: cn-saps-http-node --server ADDR:PORT [--port 80] [--name NAME]\n"); return 2; }
    }
    const auto colon = server.rfind(':');
    if (colon == std::string::npos) { std::fprintf(stderr, "cn-saps-http-node: --server ADDR:PORT is required\n"); return 2; }
    try {
        boost::asio::io_context io;
        boost::asio::ip::tcp::socket sock(io);
        sock.connect({boost::asio::ip::make_address(server.substr(0, colon)),
                      static_cast<std::uint16_t>(std::stoul(server.substr(colon + 1)))});
        sock.set_option(boost::asio::ip::tcp::no_delay(true));
        node_type node(std::move(sock));
        acceptor_type acceptor(node);
        std::function<void()> accept_next = [&] {
            acceptor.async_accept([&](std::error_code ec, std::shared_ptr<stream_type> s) {
                if (ec) return;
                auto ss = std::make_shared<session>();
                ss->s = std::move(s);
                ss->name = name;
                ss->read();
                accept_next();
            });
        };
        int status = 0;
        acceptor.async_listen(port, 1024, [&](std::error_code ec, std::uint16_t p) {
            if (ec) {
                std::fprintf(stderr, "cn-saps-http-node: listen on port %u: %s\n", port, ec.message().c_str());
                status = 1;
                io.stop();
                return;
            }
            std::printf("cn-saps-http-node %s: listening on port %u\n", name.c_str(), p);
            std::fflush(stdout);
            accept_next();
        });
        node.channel().on_failed = [&](std::error_code ec) {
            std::fprintf(stderr, "cn-saps-http-node: channel to the I/O server failed: %s\n", ec.message().c_str());
            status = 1;
            io.stop();
        };
        boost::asio::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([&](const boost::system::error_code&, int) { io.stop(); });
        io.run();
        return status;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cn-saps-http-node: %s\n", e.what());
        return 1;
    }
}
