// libFuzzer target: the IP-in-IP receiver's check of one packet (examples/ipip_node.hpp's
// decapsulate(), what cn-ipip-decap and cn-dpr-node run on every packet of their raw socket).
//
// Input: one byte choosing the accepted outer destination (0: any; else the packet's own outer
// destination when it has one, or 10.0.0.1), then the packet as a raw socket hands it. Invariants:
//  - nothing is read outside the input (ASan); exactly one counter moves: delivered, or one drop
//    reason;
//  - a delivered inner packet lies inside the input, at its end, parses again as IPv4 or IPv6 on
//    its own, and its outer header was IP-in-IP, verified and addressed as configured.
#define CLUSTERNET_FUZZ_NAME "ipip_decap_fuzz"
#include "fuzz_check.hpp"

#include "../../examples/ipip_node.hpp"

#include <cstdint>
#include <cstring>
#include <vector>

namespace cn = clusternet;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    std::vector<std::byte> buf(size - 1);  // exactly the packet's size, so ASan sees over-reads
    if (!buf.empty()) std::memcpy(buf.data(), data + 1, buf.size());
    cn::ipv4_address self{};
    if (data[0] != 0) self = buf.size() >= 20 ? cn::ipv4_address(cn::load_be32(buf.data() + 16)) : cn::ipv4_address(10, 0, 0, 1);
    if (data[0] == 2) self = cn::ipv4_address(10, 0, 0, 1);

    ipip::decap_counters c;
    const std::span<const std::byte> packet(buf);
    const auto inner = ipip::decapsulate(packet, self, c);
    FUZZ_CHECK(c.received == 1);
    const std::uint64_t drops = c.dropped();
    if (inner.empty()) {
        FUZZ_CHECK(drops == 1);
        return 0;
    }
    FUZZ_CHECK(drops == 0);
    FUZZ_CHECK(inner.data() > packet.data() && inner.data() + inner.size() <= packet.data() + packet.size());
    FUZZ_CHECK((cn::load_u8(packet.data()) >> 4) == 4);
    FUZZ_CHECK(cn::load_u8(packet.data() + 9) == cn::ip_protocol::ipip || cn::load_u8(packet.data() + 9) == cn::ip_protocol::ipv6);
    if (self.value != 0) FUZZ_CHECK(cn::load_be32(packet.data() + 16) == self.value);
    const std::size_t ihl = (cn::load_u8(packet.data()) & 0x0F) * 4u;
    FUZZ_CHECK(cn::internet_checksum(packet.first(ihl)) == 0);
    const auto again = cn::parse_ip_packet(inner);
    FUZZ_CHECK(again.has_value());
    return 0;
}
