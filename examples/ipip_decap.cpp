// cn-ipip-decap: the back end's side of IP-in-IP tunnelling (RFC 2003; LVS's tunnel mode,
// cn-lsmac mode=tun) in user space, for kernels without an ipip device. It receives protocol-4
// packets on a raw socket, checks them (outer destination ours, outer header checksum, inner
// packet well formed: each refusal counted by reason) and writes the inner packet to a TUN
// device, where this host's own TCP stack takes it; the answer goes to the client directly
// (the host holds the cluster address on lo). See examples/ipip_node.hpp and docs/dispatcher.md.
#include "ipip_node.hpp"

#include <boost/asio/signal_set.hpp>

#include <exception>

namespace {

constexpr std::string_view help = R"(cn-ipip-decap -- IP-in-IP (RFC 2003) receiver: decapsulates into a TUN device

Usage: cn-ipip-decap [--config FILE] [--set key=value]... [--check]

Configuration (a file of `key = value` lines, or --set key=value):
  tun = NAME               the TUN device to write inner packets to (default: $CN_TUN_DEV, else tun0);
                           opened if it exists (ip tuntap add dev NAME mode tun), else created
  local_address = ADDRESS  accept only tunnel packets to this outer destination
                           (default: $CN_BACKEND_IP, else any)
  metrics = ADDRESS:PORT   Prometheus endpoint (default off)
  stats_interval = N       seconds between stats lines on stdout (default 5; 0: none)
  receive_buffer = N       the raw socket's SO_RCVBUF in bytes (default 4194304)

--check validates the configuration and exits. Stops cleanly on SIGINT or SIGTERM, printing its
final counters. Needs CAP_NET_RAW and CAP_NET_ADMIN.
)";

std::string env_or(const char* name, std::string fallback) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

}  // namespace

int main(int argc, char** argv) {
    namespace cn = clusternet;
    constexpr std::string_view program = "cn-ipip-decap";
    try {
        auto cl = ipip::read_command_line(argc, argv, program, help);
        if (!cl.config) return cl.exit_code;
        const cn::config_file& f = *cl.config;
        f.reject_unknown({"tun", "local_address", "metrics", "stats_interval", "receive_buffer"});
        const std::string tun = f.get_string("tun", env_or("CN_TUN_DEV", "tun0"));
        cn::ipv4_address self{};
        if (const auto a = f.get_ipv4("local_address", std::nullopt)) self = *a;
        else if (const auto e = cn::ipv4_address::parse(env_or("CN_BACKEND_IP", ""))) self = *e;
        const unsigned stats_interval = static_cast<unsigned>(f.get_uint("stats_interval", 5, 0, 3600));
        const int rcvbuf = static_cast<int>(f.get_uint("receive_buffer", 4 << 20, 0, 1 << 30));
        const std::string metrics = f.get_string("metrics", "");
        std::optional<boost::asio::ip::tcp::endpoint> metrics_at;
        if (!metrics.empty()) metrics_at = ipip::metrics_endpoint(f, metrics);
        if (cl.check) {
            std::printf("%.*s: configuration OK (tun %s, local address %s)\n", int(program.size()), program.data(), tun.c_str(),
                        self.value == 0 ? "any" : self.to_string().c_str());
            return 0;
        }

        boost::asio::io_context io;
        ipip::decapsulator d(io, tun, self, rcvbuf);
        std::optional<cn::metrics_server> server;
        if (metrics_at)
            server.emplace(io, *metrics_at, [&] {
                cn::metrics_text m;
                d.render(m);
                return m.take();
            });
        ipip::periodic stats(io, stats_interval, [&] {
            std::printf("stats: %s\n", d.summary().c_str());
            std::fflush(stdout);
        });
        boost::asio::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([&](const boost::system::error_code& ec, int sig) {
            if (ec) return;
            std::printf("%.*s: signal %d, stopping\n", int(program.size()), program.data(), sig);
            d.stop();
            stats.cancel();
            if (server) server->close();
            io.stop();
        });
        d.start();
        stats.start();
        std::printf("%.*s: ready, IP-in-IP to %s into %s\n", int(program.size()), program.data(),
                    self.value == 0 ? "any address" : self.to_string().c_str(), tun.c_str());
        std::fflush(stdout);
        io.run();
        std::printf("final: %s\n", d.summary().c_str());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%.*s: %s\n", int(program.size()), program.data(), e.what());
        return 1;
    }
}
