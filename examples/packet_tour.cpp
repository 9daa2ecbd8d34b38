// cn-packet-tour: the packet parts of clusternet in one page, quoted by docs/packets.md.
//
// Builds a TCP SYN, parses it to its flow key, rewrites it as an LSNAT dispatcher would
// (destination to a back end, checksums fixed in O(1)), maps the reply back, and checks every
// checksum against a full recompute along the way. Exits non-zero if anything is off; the
// test suite runs it (tests/e2e/examples_e2e.sh).
#include <clusternet/clusternet.hpp>

#include <array>
#include <cstdio>
#include <string>

namespace cn = clusternet;

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
    std::printf("  %-58s %s\n", what, ok ? "ok" : "FAILED");
    failures += ok ? 0 : 1;
}

std::string str(std::string_view s) { return std::string(s); }

}  // namespace

int main() {
    // [build] A client's SYN to the cluster address, built into a caller's buffer.
    const cn::ipv4_address client(198, 51, 100, 7), vip(203, 0, 113, 10), backend(10, 0, 0, 11);
    std::array<std::byte, 256> buf{};
    const auto frame = cn::packet_builder(buf)
                           .ethernet({.dst = *cn::mac_address::parse("02:00:00:00:00:01"),
                                      .src = *cn::mac_address::parse("02:00:00:00:00:02")})
                           .ipv4({.src = client, .dst = vip, .ttl = 64})
                           .tcp({.sport = 43210, .dport = 80, .seq = 1, .flags = cn::tcp_flags::syn, .mss = 1460,
                                 .window_scale = 7, .sack_permitted = true})
                           .finish();
    if (!frame) {
        std::printf("build failed: %s\n", str(cn::to_string(frame.error())).c_str());
        return 1;
    }
    // [build]

    // [parse] Parse to the flow key; a refusal says why and is counted, never thrown.
    const auto pkt = cn::parse_ethernet_packet(*frame);
    if (!pkt) {
        std::printf("parse failed: %s\n", str(cn::to_string(pkt.error())).c_str());
        return 1;
    }
    const cn::flow_key4 key = pkt->key4();
    std::printf("parsed   %s  SYN=%d MSS=%u\n", key.to_string().c_str(), pkt->tcp().syn(),
                pkt->tcp().options().mss.value_or(0));
    // [parse]
    expect(cn::verify_checksums(*pkt).ok(), "builder wrote valid checksums");

    // [nat] Inbound NAT to the chosen back end, and the mapping for its replies.
    const cn::ipv4_nat_mapping inbound(cn::ipv4_nat_mapping::side::destination, vip, 80, backend, 8080);
    const cn::ipv4_nat_mapping outbound = inbound.reverse();
    expect(inbound.apply(*pkt), "inbound mapping applies to the SYN");
    std::printf("to back  %s\n", pkt->key4().to_string().c_str());
    // [nat]
    expect(cn::verify_checksums(*pkt).ok(), "checksums valid after the rewrite");
    expect(pkt->ipv4().checksum() == cn::compute_ipv4_checksum(pkt->ipv4()), "IPv4 checksum equals a full recompute");
    expect(pkt->tcp().checksum() == cn::compute_transport_checksum(*pkt), "TCP checksum equals a full recompute");
    expect(!inbound.apply(*pkt), "the mapping refuses a packet it does not match");

    // The back end's SYN-ACK, mapped back to the cluster address on its way out.
    const auto reply = cn::packet_builder(buf)
                           .ethernet({})
                           .ipv4({.src = backend, .dst = client})
                           .tcp({.sport = 8080, .dport = 43210, .seq = 9, .ack = 2,
                                 .flags = cn::tcp_flags::syn | cn::tcp_flags::ack})
                           .finish();
    const auto rpkt = cn::parse_ethernet_packet(*reply);
    expect(rpkt && outbound.apply(*rpkt), "outbound mapping applies to the SYN-ACK");
    std::printf("to client %s\n", rpkt->key4().to_string().c_str());
    expect(rpkt->key4() == key.reverse(), "the client sees the reverse of its own key");
    expect(cn::verify_checksums(*rpkt).ok(), "reply checksums valid");

    std::printf("%s\n", failures == 0 ? "all good" : "FAILURES");
    return failures == 0 ? 0 : 1;
}
