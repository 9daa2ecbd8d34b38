// libFuzzer target: neighbour advertisements (ndp::parse_advertisement) from arbitrary frames.
//
// Input: one byte of flags (bit 0: fill in valid checksums first, so that the fuzzer reaches the
// option walk), then the frame. Invariants: no read outside the frame (ASan); what is believed
// is an ICMPv6 type 136 code 0 with hop limit 255, a checksum that verifies, a unicast target
// and a target link-layer option whose MAC is somewhere in the message.
#include <clusternet/ndp.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace cn = clusternet;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    std::vector<std::byte> frame(size - 1);
    if (!frame.empty()) std::memcpy(frame.data(), data + 1, frame.size());
    const auto p = cn::parse_ethernet_packet(std::span<std::byte>(frame));
    if (!p) return 0;
    if (data[0] & 1) cn::fill_checksums(*p);
    const auto a = cn::ndp::parse_advertisement(*p);
    if (!a) return 0;
    const auto check = [](bool ok) {
        if (!ok) std::abort();
    };
    check(p->family() == cn::ip_family::v6 && p->is_icmp());
    check(p->ipv6().hop_limit() == 255);
    const auto m = p->transport_bytes();
    check(m.size() >= 24 && cn::load_u8(m.data()) == cn::icmpv6_type::neighbor_advertisement && cn::load_u8(m.data() + 1) == 0);
    check(cn::verify_checksums(*p).transport == cn::checksum_status::ok);
    check(a->target.bytes[0] != std::byte{0xFF});
    bool mac_in_message = false;
    for (std::size_t i = 24; i + 6 <= m.size(); ++i) mac_in_message |= std::memcmp(m.data() + i, a->mac.bytes.data(), 6) == 0;
    check(mac_in_message);
    return 0;
}
