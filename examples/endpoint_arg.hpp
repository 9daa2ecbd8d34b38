// Command-line addresses for the examples that take them as Asio endpoints (cn-splice,
// cn-saps-io-server, the handoff cluster's programs): ADDRESS (IPv4 or IPv6), ADDRESS:PORT, and
// lists of IPv4 addresses, refused with a message that names what was given.
#pragma once

#include <clusternet/address.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace examples {

inline boost::asio::ip::address parse_address(const std::string& s) {
    boost::system::error_code ec;
    const auto a = boost::asio::ip::make_address(s, ec);
    if (ec) throw std::invalid_argument("'" + s + "' is not an IPv4 or IPv6 address");
    return a;
}

/// ADDRESS:PORT, the port 1..65535 in decimal (an IPv6 address may have colons: the last one
/// separates the port).
inline boost::asio::ip::tcp::endpoint parse_endpoint(const std::string& s) {
    const auto colon = s.rfind(':');
    if (colon == std::string::npos) throw std::invalid_argument("expected ADDR:PORT, got '" + s + "'");
    const std::string p = s.substr(colon + 1);
    if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos || std::stoul(p) == 0 ||
        std::stoul(p) > 65535)
        throw std::invalid_argument("bad port in '" + s + "' (expected 1..65535)");
    return {parse_address(s.substr(0, colon)), static_cast<std::uint16_t>(std::stoul(p))};
}

/// An IPv4 address (the programs that speak LCCP, which is IPv4's).
inline clusternet::ipv4_address parse_v4(const std::string& s) {
    const auto a = parse_address(s);
    if (!a.is_v4()) throw std::invalid_argument("'" + s + "' is not an IPv4 address");
    return clusternet::ipv4_address(a.to_v4().to_uint());
}

/// IPv4 addresses separated by commas or spaces.
inline std::vector<clusternet::ipv4_address> parse_v4_list(const std::string& s) {
    std::vector<clusternet::ipv4_address> out;
    std::size_t pos = 0;
    for (;;) {
        const std::size_t next = s.find_first_of(", ", pos);
        const std::string one = s.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
        if (!one.empty()) out.push_back(parse_v4(one));
        if (next == std::string::npos) break;
        pos = next + 1;
    }
    return out;
}

}  // namespace examples
