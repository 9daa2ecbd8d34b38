// libFuzzer target: the packet parsers, then checksum verification and rewrites.
//
// Input: one byte of flags (parse from Ethernet or IP, accept fragments, decapsulate), four
// bytes of rewrite parameters, then the packet. Invariants checked:
//  - parsing never reads outside the input (ASan) and every view lies inside it;
//  - parse_ethernet_packet() (with its IPv4/TCP fast path) and the general walk
//    (detail::parse_ethernet_general) agree: the same error, or the same packet;
//  - after fill_checksums() every checksum verifies, and after any rewrite it still does and
//    equals a full recompute.
#include <clusternet/clusternet.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace cn = clusternet;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

template <class Span>
void check_inside(const Span& inner, const std::vector<std::byte>& buf) {
    if (inner.empty()) return;
    check(inner.data() >= buf.data() && inner.data() + inner.size() <= buf.data() + buf.size());
}

/// Two parses of one buffer describe the same packet.
void check_same(const cn::packet& a, const cn::packet& b) {
    check(a.frame().data() == b.frame().data() && a.frame().size() == b.frame().size());
    check(a.has_ethernet() == b.has_ethernet() && a.is_arp() == b.is_arp() && a.family() == b.family());
    check(a.ethernet().vlan_tag_count() == b.ethernet().vlan_tag_count());
    check(a.protocol() == b.protocol() && a.has_transport() == b.has_transport() && a.is_fragment() == b.is_fragment());
    check(a.is_tunnelled() == b.is_tunnelled() && a.outer_family() == b.outer_family() &&
          a.outer_ip_offset() == b.outer_ip_offset());
    if (a.family() == cn::ip_family::none) return;
    check(a.ip_bytes().data() == b.ip_bytes().data() && a.ip_bytes().size() == b.ip_bytes().size());
    check(a.transport_offset() == b.transport_offset() && a.transport_bytes().size() == b.transport_bytes().size());
    check(a.key() == b.key());
}

void check_exact(const cn::packet& p) {
    check(cn::verify_checksums(p).ok());
    if (p.has_transport() && !p.is_fragment() && (p.is_tcp() || p.is_udp() || p.is_icmp())) {
        const auto l4 = p.transport_bytes();
        const std::size_t field = cn::transport_checksum_offset(p.protocol());
        const std::uint16_t stored = cn::load_be16(l4.data() + field);
        if (!(p.is_udp() && p.family() == cn::ip_family::v4 && stored == 0))
            check(stored == cn::compute_transport_checksum(p));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 5) return 0;
    const std::uint8_t flags = data[0];
    const std::uint32_t param = cn::load_be32(reinterpret_cast<const std::byte*>(data + 1));
    // Copy into a buffer of exactly the packet's size so ASan catches any over-read.
    std::vector<std::byte> buf(size - 5);
    if (!buf.empty()) std::memcpy(buf.data(), data + 5, buf.size());
    const cn::parse_options opt{.accept_fragments = (flags & 2) != 0, .decapsulate = (flags & 4) != 0};
    const auto r = (flags & 1) ? cn::parse_ip_packet(std::span<std::byte>(buf), opt)
                               : cn::parse_ethernet_packet(std::span<std::byte>(buf), opt);
    if (!(flags & 1)) {
        const auto g = cn::detail::parse_ethernet_general(std::span<std::byte>(buf), opt);
        check(r.has_value() == g.has_value());
        if (r) check_same(*r, *g);
        else check(r.error() == g.error());
    }
    if (!r) {
        check(r.error() != cn::parse_error::none);
        return 0;
    }
    const cn::packet& p = *r;
    if (p.family() == cn::ip_family::none) {
        check(p.is_arp());
        (void)p.arp().sender_ip();
        return 0;
    }
    check_inside(p.ip_bytes(), buf);
    check_inside(p.transport_bytes(), buf);
    (void)p.key();
    (void)cn::hash(p.key());
    if (p.is_tcp()) (void)p.tcp().options();
    if (p.is_icmp()) check_inside(p.icmp().quoted_packet(), buf);
    (void)cn::verify_checksums(p);

    cn::fill_checksums(p, (flags & 8) != 0);
    check_exact(p);
    const cn::ipv4_address a(param);
    const auto port = static_cast<std::uint16_t>(param);
    switch ((flags >> 4) & 7) {
        case 0: cn::rewrite_ipv4_destination(p, a, port); break;
        case 1: cn::rewrite_ipv4_source(p, a, port); break;
        case 2: cn::set_sport(p, port); break;
        case 3: cn::set_dport(p, port); break;
        case 4: cn::decrement_ttl(p); break;
        case 5: cn::set_ipv6_dst(p, cn::ipv6_address::v4_mapped(a)); break;
        default: cn::set_ipv4_src(p, a); break;
    }
    check_exact(p);
    return 0;
}
