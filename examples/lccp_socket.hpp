// LCCP on raw IP for the handoff cluster's programs (cn-handoff-node, cn-lccp-dispatcher): a
// raw IPv4 socket of LCCP's protocol number bound to the program's address, on an Asio
// io_context. Every datagram received is checked by an lccp::inbound (membership, tag, decode;
// each rejection counted) before the handler sees it; send() seals a message with the key.
#pragma once

#include <clusternet/byteorder.hpp>
#include <clusternet/lccp.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace examples {

class lccp_socket {
public:
    using handler = std::function<void(clusternet::ipv4_address from, const clusternet::lccp::message& m)>;

    /// Throws std::runtime_error naming the step that failed (socket, bind).
    lccp_socket(boost::asio::io_context& io, clusternet::ipv4_address address, int protocol, const clusternet::siphash_key& key,
                const clusternet::lccp::member_filter<>& members)
        : raw_(io), key_(key), in_(key, members) {
        const int fd = ::socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
        if (fd < 0) throw std::runtime_error(std::string("raw socket for LCCP (protocol ") + std::to_string(protocol) +
                                             "): " + std::strerror(errno) + " (needs CAP_NET_RAW)");
        raw_.assign(fd);
        const sockaddr_in sa = to_sockaddr(address);
        if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0)
            throw std::runtime_error("bind the LCCP socket to " + address.to_string() + ": " + std::strerror(errno));
        const int rcv = 8 << 20;  // bursts of continuation chunks
        (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv);
    }

    /// Starts receiving: `h` gets every datagram that passes the inbound checks.
    void start(handler h) {
        handler_ = std::move(h);
        receive();
    }

    /// Seals and sends one message; false (counted in send_errors()) when it could not go.
    bool send(clusternet::ipv4_address to, const clusternet::lccp::message& m) {
        const auto e = clusternet::lccp::encode(m, key_, out_);
        const sockaddr_in sa = to_sockaddr(to);
        if (!e || ::sendto(raw_.native_handle(), out_.data(), e.size, 0, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) !=
                      static_cast<ssize_t>(e.size)) {
            ++send_errors_;
            return false;
        }
        return true;
    }

    [[nodiscard]] const clusternet::lccp::counters& stats() const noexcept { return in_.stats(); }
    [[nodiscard]] std::uint64_t send_errors() const noexcept { return send_errors_; }

private:
    static sockaddr_in to_sockaddr(clusternet::ipv4_address a) {
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(a.value);
        return sa;
    }

    void receive() {
        raw_.async_wait(boost::asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
            if (ec) return;
            // Everything queued, then wait again (the wait is edge-triggered).
            for (;;) {
                const ssize_t n = ::recv(raw_.native_handle(), rx_.data(), rx_.size(), MSG_DONTWAIT);
                if (n < 0) break;
                if (n < 20) continue;
                // A raw socket keeps the IP header: the sender and the payload's bounds are in it.
                const std::size_t ihl = (std::to_integer<std::size_t>(rx_[0]) & 0x0F) * 4;
                const std::size_t total = clusternet::load_be16(rx_.data() + 2);
                if (ihl < 20 || total > static_cast<std::size_t>(n) || total < ihl) continue;
                const clusternet::ipv4_address from(clusternet::load_be32(rx_.data() + 12));
                const auto r = in_.accept(from, std::span<const std::byte>(rx_).subspan(ihl, total - ihl));
                if (r) handler_(from, r.msg);
            }
            receive();
        });
    }

    boost::asio::posix::stream_descriptor raw_;
    clusternet::siphash_key key_;
    clusternet::lccp::inbound<> in_;
    handler handler_;
    std::vector<std::byte> out_ = std::vector<std::byte>(clusternet::lccp::max_message_size);
    std::vector<std::byte> rx_ = std::vector<std::byte>(65536);
    std::uint64_t send_errors_ = 0;
};

}  // namespace examples
