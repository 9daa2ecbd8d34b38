// cn-saps-io-server: the SAPS I/O server (saps_io_server.hpp) as a program.
//
//   cn-saps-io-server --address VIP --nodes ADDR:PORT
//
// Application nodes connect to ADDR:PORT over TCP (the cluster network); their listen requests
// make this server listen on VIP (the cluster's one address) and hand each client connection to
// one of the nodes listening on that port, round robin. Runs until SIGINT or SIGTERM; prints its
// counters on exit.
#include "endpoint_arg.hpp"

#include <clusternet/saps_io_server.hpp>

#include <boost/asio/signal_set.hpp>

#include <cstdio>
#include <cstring>
#include <functional>
#include <string>

namespace {

void usage() { std::fprintf(stderr, "usage: cn-saps-io-server --address VIP --nodes ADDR:PORT\n"); }

using examples::parse_endpoint;

}  // namespace

int main(int argc, char** argv) {
    std::string address, nodes;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--address" && i + 1 < argc) address = argv[++i];
        else if (a == "--nodes" && i + 1 < argc) nodes = argv[++i];
        else { usage(); return 2; }
    }
    if (address.empty() || nodes.empty()) { usage(); return 2; }
    try {
        boost::asio::io_context io;
        clusternet::saps_io_server_options opt;
        opt.address = boost::asio::ip::make_address(address);
        clusternet::basic_saps_io_server<boost::asio::ip::tcp::socket> server(io, opt);
        boost::asio::ip::tcp::acceptor acc(io, parse_endpoint(nodes));
        std::function<void()> accept_node = [&] {
            acc.async_accept([&](const boost::system::error_code& ec, boost::asio::ip::tcp::socket s) {
                if (ec) return;
                s.set_option(boost::asio::ip::tcp::no_delay(true));
                const std::size_t n = server.add_node(std::move(s));
                std::printf("cn-saps-io-server: node %zu connected\n", n);
                std::fflush(stdout);
                accept_node();
            });
        };
        server.on_node_failed = [](std::size_t n, std::error_code ec) {
            std::printf("cn-saps-io-server: node %zu failed: %s\n", n, ec.message().c_str());
            std::fflush(stdout);
        };
        accept_node();
        boost::asio::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([&](const boost::system::error_code&, int) {
            acc.close();
            server.close();
            io.stop();
        });
        std::printf("cn-saps-io-server: cluster address %s, nodes on %s\n", address.c_str(), nodes.c_str());
        std::fflush(stdout);
        io.run();
        const auto& c = server.counters();
        std::printf("cn-saps-io-server: accepted %llu refused %llu reset %llu half_closed %llu nodes_failed %llu to_nodes %llu to_clients %llu\n",
                    static_cast<unsigned long long>(c.tcp_accepted), static_cast<unsigned long long>(c.tcp_refused),
                    static_cast<unsigned long long>(c.tcp_reset), static_cast<unsigned long long>(c.client_half_closes),
                    static_cast<unsigned long long>(c.nodes_failed),
                    static_cast<unsigned long long>(c.bytes_to_nodes), static_cast<unsigned long long>(c.bytes_to_clients));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cn-saps-io-server: %s\n", e.what());
        return 1;
    }
    return 0;
}
