// libFuzzer target: arbitrary bytes as an in-memory pcap file.
//
// Every record is parsed by its link type (with and without decapsulation); every packet that
// parses has its checksums verified, is rewritten (NAT-style addresses and ports, TTL), parsed
// again and verified again. Invariants checked, beyond "no crash, no sanitizer report":
//  - records lie inside the input, in order, and no record is longer than the limits;
//  - a reader with a smaller record limit delivers a prefix of what the default reader does;
//  - views handed out by the parser lie inside the frame;
//  - a rewritten packet parses the same way (rewrites change no length or protocol);
//  - a checksum that verified before a rewrite verifies after it, an absent UDP checksum stays
//    absent, and one that equalled a full recompute before still equals it bit for bit.
#include <clusternet/packet_checksum.hpp>
#include <clusternet/pcap.hpp>
#include <clusternet/rewrite.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

namespace cn = clusternet;

#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            std::fprintf(stderr, "pcap_fuzz: invariant failed: %s (line %d)\n", #cond, __LINE__); \
            std::abort();                                                                  \
        }                                                                                  \
    } while (0)

namespace {

/// A cheap deterministic stream of values derived from the record, for the rewrites.
struct value_source {
    std::uint64_t state;
    std::uint64_t next() {
        state += 0x9E3779B97F4A7C15ULL;
        std::uint64_t z = state;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
};

bool inside(std::span<const std::byte> outer, std::span<const std::byte> inner) {
    return inner.empty() || (inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size());
}

/// The stored transport checksum equals a full recompute (only meaningful when it applies).
bool transport_exact(const cn::packet& p) {
    const std::size_t field = cn::transport_checksum_offset(p.protocol());
    return cn::load_be16(p.transport_bytes().data() + field) == cn::compute_transport_checksum(p);
}

bool transport_applies(const cn::packet& p, const cn::checksum_report& r) {
    return p.has_transport() && !p.is_fragment() && cn::transport_checksum_offset(p.protocol()) != 0 &&
           r.transport != cn::checksum_status::absent && r.transport != cn::checksum_status::not_applicable;
}

bool ip_exact(const cn::packet& p) { return cn::compute_ipv4_checksum(p.ipv4()) == p.ipv4().checksum(); }

void check_packet(cn::pcap_link_type link, std::span<std::byte> frame, cn::parse_options opt, value_source& vs) {
    const auto p = cn::parse_pcap_packet(link, frame, opt);
    if (!p) return;
    FUZZ_CHECK(inside(frame, p->ip_bytes()) || p->family() == cn::ip_family::none);
    FUZZ_CHECK(inside(frame, p->transport_bytes()));
    if (p->family() == cn::ip_family::none) return;
    (void)p->key();

    const cn::checksum_report before = cn::verify_checksums(*p);
    const bool ip_was_exact = p->family() == cn::ip_family::v4 && before.ip == cn::checksum_status::ok && ip_exact(*p);
    const bool l4_was_exact = transport_applies(*p, before) && before.transport == cn::checksum_status::ok &&
                              transport_exact(*p);

    const int ops = 1 + static_cast<int>(vs.next() % 4);
    for (int i = 0; i < ops; ++i) {
        const std::uint64_t v = vs.next();
        const auto port = static_cast<std::uint16_t>(v >> 16);
        cn::ipv6_address a6;
        for (std::size_t b = 0; b < 16; ++b) a6.bytes[b] = std::byte(static_cast<unsigned char>(vs.next()));
        switch (v % 7) {
            case 0: (void)cn::rewrite_ipv4_destination(*p, cn::ipv4_address(static_cast<std::uint32_t>(v >> 32)), (v & 8) ? port : 0); break;
            case 1: (void)cn::rewrite_ipv4_source(*p, cn::ipv4_address(static_cast<std::uint32_t>(v >> 32)), (v & 8) ? port : 0); break;
            case 2: (void)cn::set_ipv6_dst(*p, a6); break;
            case 3: (void)cn::set_ipv6_src(*p, a6); break;
            case 4: (void)cn::set_sport(*p, port); break;
            case 5: (void)cn::set_dport(*p, port); break;
            default: (void)cn::decrement_ttl(*p); break;
        }
    }

    const auto q = cn::parse_pcap_packet(link, frame, opt);
    FUZZ_CHECK(q.has_value());
    FUZZ_CHECK(q->family() == p->family() && q->protocol() == p->protocol());
    FUZZ_CHECK(q->ip_offset() == p->ip_offset() && q->transport_offset() == p->transport_offset());
    FUZZ_CHECK(q->transport_bytes().size() == p->transport_bytes().size());
    const cn::checksum_report after = cn::verify_checksums(*q);
    FUZZ_CHECK(after.outer_ip == before.outer_ip);
    if (before.ip == cn::checksum_status::ok) FUZZ_CHECK(after.ip == cn::checksum_status::ok);
    if (before.transport == cn::checksum_status::ok) FUZZ_CHECK(after.transport == cn::checksum_status::ok);
    if (before.transport == cn::checksum_status::absent) FUZZ_CHECK(after.transport == cn::checksum_status::absent);
    if (ip_was_exact) FUZZ_CHECK(ip_exact(*q));
    if (l4_was_exact) FUZZ_CHECK(transport_exact(*q));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);

    // The header decoder agrees with the reader about what opens.
    std::error_code ec;
    cn::pcap_reader probe = cn::pcap_reader::from_memory(file, ec);
    FUZZ_CHECK(probe.is_open() == !ec);
    FUZZ_CHECK(cn::parse_pcap_file_header(file).has_value() == !ec);

    // A reader with a small limit delivers a prefix of the records the default reader does.
    std::vector<std::size_t> small_sizes;
    {
        auto small = cn::pcap_reader::from_memory(file, {.max_record_length = 1600}, ec);
        for (cn::pcap_record rec; small.next(rec);) small_sizes.push_back(rec.data.size());
    }

    std::vector<std::byte> work;
    std::size_t index = 0;
    const std::byte* last_end = file.data() + (size >= 24 ? 24 : 0);
    ec = cn::for_each_pcap_record(file, [&](cn::pcap_link_type link, const cn::pcap_record& rec) {
        FUZZ_CHECK(inside(file, rec.data));
        FUZZ_CHECK(rec.data.data() == last_end + 16);
        FUZZ_CHECK(rec.data.size() <= 262144);
        last_end = rec.data.data() + rec.data.size();
        if (index < small_sizes.size()) FUZZ_CHECK(small_sizes[index] == rec.data.size());
        ++index;

        value_source vs{static_cast<std::uint64_t>(index) * 0x100000001B3ULL ^ rec.data.size()};
        for (const bool decap : {false, true}) {
            for (const bool fragments : {false, true}) {
                work.assign(rec.data.begin(), rec.data.end());
                check_packet(link, std::span<std::byte>(work), {.accept_fragments = fragments, .decapsulate = decap}, vs);
            }
        }
        // The link types clusternet knows, whatever the file says.
        for (const auto other : {cn::pcap_link_type::raw, cn::pcap_link_type::ethernet}) {
            if (other == link) continue;
            work.assign(rec.data.begin(), rec.data.end());
            check_packet(other, std::span<std::byte>(work), {}, vs);
        }
    });
    FUZZ_CHECK(index >= small_sizes.size());
    if (!ec) FUZZ_CHECK(last_end == file.data() + size || size < 24);
    return 0;
}
