// NAT rewrite of a TCP/IPv4 packet (destination address and port): the incremental update of
// RFC 1624 against recomputing the IPv4 and TCP checksums in full.
//
//   BM_Rewrite_Incremental           rewrite_ipv4_destination (one delta, two O(1) updates)
//   BM_Rewrite_NatMapping            ipv4_nat_mapping::apply: the delta worked out once per
//                                    mapping, as a NAT dispatcher keeps one per back end
//   BM_Rewrite_FullRecompute         write the fields, then fill_checksums (clusternet's own
//                                    vectorised full checksum over header and segment)
//   BM_Rewrite_FullRecomputeDpdk     write the fields, then DPDK's rte_ipv4_cksum and
//                                    rte_ipv4_udptcp_cksum
//   BM_Rewrite_FullRecomputePlain    write the fields, then the textbook RFC 1071 loop (16-bit
//                                    words, 32-bit sum) over header and pseudo-header+segment
// Packet sizes 64, 576 and 1500 bytes (IP total length). The goal: incremental at least 20x
// faster than a full recompute at 1500 bytes (docs/performance.md gives the ratio against each
// of the three recomputes).
#include <clusternet/packet_builder.hpp>
#include <clusternet/packet_checksum.hpp>
#include <clusternet/rewrite.hpp>

#include <benchmark/benchmark.h>
#include <rte_ip.h>

#include <array>
#include <vector>

namespace cn = clusternet;

namespace {

// A ring of distinct packets, as a dispatcher sees them: rewriting one buffer over and over
// would measure a loop-carried dependency through memory (load the checksum the previous
// iteration stored) that no real packet stream has.
struct fixture {
    static constexpr std::size_t ring = 64;
    std::size_t stride;
    std::vector<std::byte> frames;
    std::vector<cn::packet> pkts;
    // The stride is not a power of two (buffers with headroom rarely are): 64 headers a power
    // of two apart would all fall in one L1 set and measure cache conflicts instead.
    explicit fixture(std::size_t ip_len) : stride(((ip_len + 14 + 63) / 64) * 64 + 64), frames(ring * stride) {
        for (std::size_t i = 0; i < ring; ++i) {
            auto r = cn::packet_builder(std::span<std::byte>(frames).subspan(i * stride, stride))
                         .ethernet({})
                         .ipv4({.src = cn::ipv4_address(198, 51, 100, static_cast<std::uint8_t>(i)),
                                .dst = cn::ipv4_address(10, 0, 0, 100)})
                         .tcp({.sport = static_cast<std::uint16_t>(43210 + i), .dport = 80, .seq = 1, .ack = 1})
                         .payload(ip_len - 40)
                         .finish();
            pkts.push_back(*cn::parse_ethernet_packet(*r));
        }
    }
    [[nodiscard]] bool all_verify() const {
        for (const auto& p : pkts) if (!cn::verify_checksums(p).ok()) return false;
        return true;
    }
};

const std::array<cn::ipv4_address, 2> backends{cn::ipv4_address(10, 1, 0, 11), cn::ipv4_address(10, 1, 0, 12)};
const std::array<std::uint16_t, 2> ports{8080, 8081};

void BM_Rewrite_Incremental(benchmark::State& state) {
    // Two back ends alternate per pass over the ring, so every rewrite really changes fields.
    fixture f(static_cast<std::size_t>(state.range(0)));
    std::size_t i = 0;
    for (auto _ : state) {
        cn::rewrite_ipv4_destination(f.pkts[i % fixture::ring], backends[(i / fixture::ring) & 1], ports[(i / fixture::ring) & 1]);
        benchmark::ClobberMemory();
        ++i;
    }
    if (!f.all_verify()) state.SkipWithError("checksums broken");
}

void BM_Rewrite_NatMapping(benchmark::State& state) {
    fixture f(static_cast<std::size_t>(state.range(0)));
    // Back and forth between two back ends, so every apply matches and changes the packet.
    const std::array<cn::ipv4_nat_mapping, 4> maps{
        cn::ipv4_nat_mapping(cn::ipv4_nat_mapping::side::destination, cn::ipv4_address(10, 0, 0, 100), 80, backends[0], ports[0]),
        cn::ipv4_nat_mapping(cn::ipv4_nat_mapping::side::destination, backends[0], ports[0], backends[1], ports[1]),
        cn::ipv4_nat_mapping(cn::ipv4_nat_mapping::side::destination, backends[1], ports[1], backends[0], ports[0]),
        cn::ipv4_nat_mapping(cn::ipv4_nat_mapping::side::destination, backends[0], ports[0], backends[1], ports[1])};
    std::size_t i = 0, misses = 0;
    for (auto _ : state) {
        const std::size_t pass = i / fixture::ring;
        misses += !maps[pass == 0 ? 0 : 1 + ((pass - 1) & 1)].apply(f.pkts[i % fixture::ring]);
        benchmark::ClobberMemory();
        ++i;
    }
    if (misses != 0 || !f.all_verify()) state.SkipWithError("mapping did not apply or broke checksums");
}

void BM_Rewrite_FullRecompute(benchmark::State& state) {
    fixture f(static_cast<std::size_t>(state.range(0)));
    std::size_t i = 0;
    for (auto _ : state) {
        const cn::packet& p = f.pkts[i % fixture::ring];
        p.ipv4().set_dst(backends[(i / fixture::ring) & 1].value);
        p.tcp().set_dport(ports[(i / fixture::ring) & 1]);
        cn::fill_checksums(p);
        benchmark::ClobberMemory();
        ++i;
    }
    if (!f.all_verify()) state.SkipWithError("checksums broken");
}

std::uint32_t plain_sum(const std::byte* p, std::size_t n, std::uint32_t sum) noexcept {
    for (; n > 1; p += 2, n -= 2) sum += cn::load_be16(p);
    if (n == 1) sum += static_cast<std::uint32_t>(std::to_integer<unsigned>(*p)) << 8;
    return sum;
}
std::uint16_t plain_finish(std::uint32_t sum) noexcept {
    while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum);
}

void BM_Rewrite_FullRecomputePlain(benchmark::State& state) {
    fixture f(static_cast<std::size_t>(state.range(0)));
    std::size_t i = 0;
    for (auto _ : state) {
        const cn::packet& p = f.pkts[i % fixture::ring];
        const auto ip = p.ipv4();
        const auto tcp = p.tcp();
        ip.set_dst(backends[(i / fixture::ring) & 1].value);
        tcp.set_dport(ports[(i / fixture::ring) & 1]);
        ip.set_checksum(0);
        ip.set_checksum(plain_finish(plain_sum(ip.data(), ip.header_length(), 0)));
        tcp.set_checksum(0);
        std::uint32_t s = (ip.src() >> 16) + (ip.src() & 0xFFFF) + (ip.dst() >> 16) + (ip.dst() & 0xFFFF) +
                          ip.protocol() + static_cast<std::uint32_t>(tcp.size());
        tcp.set_checksum(plain_finish(plain_sum(tcp.data(), tcp.size(), s)));
        benchmark::ClobberMemory();
        ++i;
    }
    if (!f.all_verify()) state.SkipWithError("checksums broken");
}

void BM_Rewrite_FullRecomputeDpdk(benchmark::State& state) {
    fixture f(static_cast<std::size_t>(state.range(0)));
    std::size_t i = 0;
    for (auto _ : state) {
        const cn::packet& p = f.pkts[i % fixture::ring];
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(p.ipv4().data());  // the peer's own API
        p.ipv4().set_dst(backends[(i / fixture::ring) & 1].value);
        p.tcp().set_dport(ports[(i / fixture::ring) & 1]);
        ip->hdr_checksum = 0;
        ip->hdr_checksum = rte_ipv4_cksum(ip);
        p.tcp().set_checksum(0);
        const std::uint16_t c = rte_ipv4_udptcp_cksum(ip, p.tcp().data());
        std::memcpy(p.tcp().data() + 16, &c, 2);  // DPDK returns it in network order
        benchmark::ClobberMemory();
        ++i;
    }
    if (!f.all_verify()) state.SkipWithError("checksums broken");
}

}  // namespace

BENCHMARK(BM_Rewrite_Incremental)->Arg(64)->Arg(576)->Arg(1500);
BENCHMARK(BM_Rewrite_NatMapping)->Arg(64)->Arg(576)->Arg(1500);
BENCHMARK(BM_Rewrite_FullRecompute)->Arg(64)->Arg(576)->Arg(1500);
BENCHMARK(BM_Rewrite_FullRecomputeDpdk)->Arg(64)->Arg(576)->Arg(1500);
BENCHMARK(BM_Rewrite_FullRecomputePlain)->Arg(64)->Arg(576)->Arg(1500);
