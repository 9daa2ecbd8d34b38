// The parts shared by cn-ipip-decap (the tunnel back end) and cn-dpr-node (Distributed Packet
// Rewriting): the command line (a config file of `key = value` lines and --set key=value, as
// cn-lsmac takes), and the IP-in-IP receiver, which takes protocol-4 packets from a raw socket,
// checks them with ipip_decap and writes the inner packet to a TUN device, so that this host's
// own TCP stack takes it up as if it had arrived directly (this kernel has no ipip device).
//
//   raw_ip_socket(protocol 4) --recvmmsg--> parse (decapsulate) --> ipip_decap::inner
//        --> tun_queue::send --> flush (one write each) --> the kernel's stack
//   raw_ip6_socket(next header 41: IPv6 in IPv6, RFC 2473) --recvmmsg--> the inner packet (an
//        IPv6 raw socket hands out the payload; the kernel has checked the outer header and
//        its destination) --> parse, must be IPv6 --> tun_queue::send
//
// Every refused packet is counted by reason: the outer header's (tunnel_error: not IP-in-IP,
// not for us, bad outer checksum) or the parser's on the inner packet (parse_error). Nothing is
// allocated per packet.
#pragma once

#include <clusternet/config_file.hpp>
#include <clusternet/forwarding.hpp>
#include <clusternet/io/raw_socket.hpp>
#include <clusternet/io/tun.hpp>
#include <clusternet/metrics.hpp>
#include <clusternet/packet.hpp>

#include <array>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace ipip {

namespace cn = clusternet;
namespace asio = boost::asio;

/// Reads `--config FILE`, `--set key=value` and `--check` (the --set lines win for single keys).
/// Returns the configuration, or nullopt after printing `help` (exit code 0 then) or an error
/// (exit code 2). Throws config_error for a file that cannot be read or parsed.
struct command_line {
    std::optional<cn::config_file> config;
    bool check = false;
    int exit_code = 0;
};

inline command_line read_command_line(int argc, char** argv, std::string_view program, std::string_view help) {
    command_line out;
    std::string text, name = "command line";
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "-h" || a == "--help") {
            std::printf("%.*s", int(help.size()), help.data());
            return out;
        }
        if (a == "--check") {
            out.check = true;
        } else if (a == "--config" && i + 1 < argc) {
            name = argv[++i];
            std::ifstream in(name);
            if (!in) throw cn::config_error(name + ": cannot be read (does it exist, and may this user read it?)");
            std::ostringstream ss;
            ss << in.rdbuf();
            text += ss.str() + "\n";
        } else if (a == "--set" && i + 1 < argc) {
            text += std::string(argv[++i]) + "\n";  // after the file's lines: they win
        } else {
            std::fprintf(stderr, "%.*s: unknown argument \"%s\" (try --help)\n", int(program.size()), program.data(), argv[i]);
            out.exit_code = 2;
            return out;
        }
    }
    out.config = cn::config_file::parse(text, name);
    return out;
}

/// Parses "ADDRESS:PORT" for the metrics endpoint; throws config_error.
inline asio::ip::tcp::endpoint metrics_endpoint(const cn::config_file& f, const std::string& s) {
    const auto colon = s.rfind(':');
    const auto addr = colon == std::string::npos ? std::nullopt : cn::ipv4_address::parse(s.substr(0, colon));
    if (!addr) throw cn::config_error(f.name() + ": metrics must be ADDRESS:PORT, got \"" + s + "\"");
    const std::uint64_t port = f.to_uint(*f.find("metrics"), s.substr(colon + 1), 1, 65535);
    return {asio::ip::address_v4(addr->value), static_cast<std::uint16_t>(port)};
}

/// What the receiver did with each packet.
struct decap_counters {
    std::uint64_t received = 0;      ///< packets read from the raw socket
    std::uint64_t delivered = 0;     ///< inner packets handed to the TUN device
    std::uint64_t tun_dropped = 0;   ///< inner packets the TUN device refused (or found no room)
    std::array<std::uint64_t, cn::tunnel_error_count> tunnel{};                    ///< refused by tunnel_error
    std::array<std::uint64_t, cn::parse_error_count> inner{};  ///< refused by the parser

    [[nodiscard]] std::uint64_t dropped() const noexcept {
        std::uint64_t n = tun_dropped;
        for (const auto v : tunnel) n += v;
        for (const auto v : inner) n += v;
        return n;
    }
};

/// Checks one IP-in-IP packet (outer IPv4 header first): counts it as received, and returns the
/// inner packet, or an empty span with the refusal counted by reason (the parser's on the inner
/// packet, or ipip_decap's on the outer header: not IP-in-IP, not to `self`, bad checksum).
/// noexcept, no allocation; tests/fuzz/ipip_decap_fuzz.cpp fuzzes it.
inline std::span<const std::byte> decapsulate(std::span<const std::byte> ip_packet, cn::ipv4_address self,
                                              decap_counters& c) noexcept {
    ++c.received;
    const auto parsed = cn::parse_ip_packet(ip_packet, cn::parse_options{.decapsulate = true});
    if (!parsed) {
        ++c.inner[static_cast<std::size_t>(parsed.error())];
        return {};
    }
    cn::tunnel_error why{};
    const auto inner = cn::ipip_decap::inner(*parsed, self, why);
    if (why != cn::tunnel_error::none) {
        ++c.tunnel[static_cast<std::size_t>(why)];
        return {};
    }
    return inner;
}

/// IP-in-IP from a raw socket into a TUN device. Runs on one io_context thread.
class decapsulator {
public:
    /// `self`: the outer destination accepted (0.0.0.0: any). Opens both; throws
    /// std::system_error naming the device or socket and the call.
    decapsulator(asio::io_context& io, const std::string& tun_name, cn::ipv4_address self, int receive_buffer = 4 << 20)
        : self_(self),
          raw_(io, cn::io::raw_ip_options{.protocol = cn::ip_protocol::ipip, .receive_buffer = receive_buffer}),
          tun_(io, cn::io::tun_options{.name = tun_name}) {
        try {
            raw6_.emplace(io, cn::io::raw_ip6_options{.protocol = cn::ip_protocol::ipv6, .receive_buffer = receive_buffer});
        } catch (const std::system_error& e) {
            std::fprintf(stderr, "ipip: no IPv6-in-IPv6 receiver (%s): IPv4 tunnels only\n", e.what());
        }
    }

    void start() {
        running_ = true;
        arm();
    }
    void stop() noexcept {
        running_ = false;
        raw_.close();
        if (raw6_) raw6_->close();
    }

    /// The IPv6 tunnel's fast path, for one inner packet as the IPv6 raw socket hands it (the
    /// outer header already checked and stripped by the kernel): it must parse as IPv6.
    void handle6(std::span<const std::byte> inner) noexcept {
        ++c_.received;
        const auto parsed = cn::parse_ip_packet(inner);
        if (!parsed) {
            ++c_.inner[static_cast<std::size_t>(parsed.error())];
            return;
        }
        if (parsed->family() != cn::ip_family::v6) {
            ++c_.tunnel[static_cast<std::size_t>(cn::tunnel_error::not_ipv6)];
            return;
        }
        if (!tun_.send(inner)) {
            ++c_.tun_dropped;
            return;
        }
        ++c_.delivered;
    }

    /// The receiver's fast path, for one packet as the raw socket hands it (outer IPv4 header
    /// first). noexcept, no allocation.
    void handle(std::span<const std::byte> ip_packet) noexcept {
        const auto inner = decapsulate(ip_packet, self_, c_);
        if (inner.empty()) return;
        if (!tun_.send(inner)) {
            ++c_.tun_dropped;
            return;
        }
        ++c_.delivered;
    }

    /// The TUN device, for a caller that writes locally served packets into it too.
    [[nodiscard]] cn::io::tun_queue& tun() noexcept { return tun_; }
    [[nodiscard]] const decap_counters& counters() const noexcept { return c_; }
    [[nodiscard]] const cn::io::batch_counters& raw_counters() const noexcept { return raw_.counters(); }

    /// "received N delivered N dropped N (reason N ...)".
    [[nodiscard]] std::string summary() const {
        std::string s = "received " + std::to_string(c_.received) + " delivered " + std::to_string(c_.delivered) +
                        " dropped " + std::to_string(c_.dropped());
        for (std::size_t i = 1; i < c_.tunnel.size(); ++i)
            if (c_.tunnel[i] != 0) s += " " + std::string(cn::to_string(static_cast<cn::tunnel_error>(i))) + " " + std::to_string(c_.tunnel[i]);
        for (std::size_t i = 1; i < c_.inner.size(); ++i)
            if (c_.inner[i] != 0) s += " inner_" + std::string(cn::to_string(static_cast<cn::parse_error>(i))) + " " + std::to_string(c_.inner[i]);
        if (c_.tun_dropped != 0) s += " tun_dropped " + std::to_string(c_.tun_dropped);
        return s;
    }

    /// Adds this receiver's counters to a metrics page.
    void render(cn::metrics_text& m) const {
        m.counter("clusternet_ipip_received_total", "IP-in-IP packets read from the raw socket.", c_.received);
        m.counter("clusternet_ipip_delivered_total", "Inner packets written to the TUN device.", c_.delivered);
        for (std::size_t i = 1; i < c_.tunnel.size(); ++i)
            m.counter("clusternet_ipip_dropped_total", "Tunnel packets refused, by reason.", c_.tunnel[i],
                      {{"reason", std::string(cn::to_string(static_cast<cn::tunnel_error>(i)))}});
        for (std::size_t i = 1; i < c_.inner.size(); ++i)
            if (c_.inner[i] != 0)
                m.counter("clusternet_ipip_dropped_total", "Tunnel packets refused, by reason.", c_.inner[i],
                          {{"reason", "inner_" + std::string(cn::to_string(static_cast<cn::parse_error>(i)))}});
        m.counter("clusternet_ipip_tun_dropped_total", "Inner packets the TUN device refused.", c_.tun_dropped);
    }

private:
    void arm() {
        raw_.async_wait_readable([this](const boost::system::error_code& ec) {
            if (ec || !running_) return;
            while (raw_.receive([this](std::span<std::byte> p, cn::ipv4_address) { handle(p); }) != 0) {
            }
            flush_tun();
            arm();
        });
        if (raw6_ && !armed6_) arm6();
    }
    void arm6() {
        armed6_ = true;
        raw6_->async_wait_readable([this](const boost::system::error_code& ec) {
            armed6_ = false;
            if (ec || !running_) return;
            while (raw6_->receive([this](std::span<std::byte> p, const cn::ipv6_address&) { handle6(p); }) != 0) {
            }
            flush_tun();
            arm6();
        });
    }
    void flush_tun() noexcept {
        const auto before = tun_.counters().tx.send_errors;
        tun_.flush();
        c_.tun_dropped += tun_.counters().tx.send_errors - before;  // refused by the device
    }

    cn::ipv4_address self_;
    cn::io::raw_ip_socket raw_;
    cn::io::tun_queue tun_;
    std::optional<cn::io::raw_ip6_socket> raw6_;
    decap_counters c_{};
    bool running_ = false;
    bool armed6_ = false;
};

/// Calls `f` every `seconds` (0: never) on `io` until cancel().
class periodic {
public:
    periodic(asio::io_context& io, unsigned seconds, std::function<void()> f) : timer_(io), seconds_(seconds), f_(std::move(f)) {}
    void start() {
        if (seconds_ == 0) return;
        timer_.expires_after(std::chrono::seconds(seconds_));
        timer_.async_wait([this](const boost::system::error_code& ec) {
            if (ec) return;
            f_();
            start();
        });
    }
    void cancel() { timer_.cancel(); }

private:
    asio::steady_timer timer_;
    unsigned seconds_;
    std::function<void()> f_;
};

}  // namespace ipip
