// libFuzzer target: arbitrary frames through the dispatcher, in every forwarding mode.
//
// Input: a sequence of records [flags u8][clock step u8][length u16 LE][frame bytes]. Flags bit 0:
// fill in valid checksums before the frame goes in (so that the fuzzer reaches the stateful
// paths), bit 1: make the destination the VIP:80, bit 2: make it a back end's reply (source a
// back end). Every frame goes through seven dispatchers that keep their sessions across records:
// direct routing, NAT, full NAT and tunnel, for IPv4 and for IPv6 (bits 1 and 2 act on
// whichever family the frame parses as). Invariants:
//  - no crash, no read or write outside the frame or the scratch buffer (ASan);
//  - what a dispatcher says to send lies in the frame or the scratch buffer, parses, and, when the
//    input's checksums verified, verifies too: a dispatcher never makes a good packet corrupt,
//    and (verify_ip_checksum) never forwards a packet whose IPv4 header was corrupt;
//  - every frame gets exactly one verdict; no back end counts more flows than the table holds;
//  - a frag_needed answer (tunnel) is a well-formed ICMP "fragmentation needed" (IPv4) or
//    ICMPv6 Packet Too Big (IPv6) with valid checksums, to the sender.
#include <clusternet/dispatcher.hpp>
#include <clusternet/packet_checksum.hpp>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace cn = clusternet;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

const cn::mac_address self_mac{{std::byte{2}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{1}}};
const cn::ipv4_address vip(192, 0, 2, 10);
const cn::ipv4_address self_ip(10, 0, 0, 2);
constexpr std::uint16_t backends = 3;

cn::ipv6_address v6(std::uint16_t net, std::uint8_t host) {  // 2001:db8:<net>::<host>
    cn::ipv6_address a = cn::ipv6_address::parse("2001:db8::").value();
    cn::store_be16(a.bytes.data() + 4, net);
    a.bytes[15] = std::byte{host};
    return a;
}
const cn::ipv6_address vip6 = v6(0x10, 0x80);
const cn::ipv6_address self_ip6 = v6(1, 2);

template <class Address> Address backend_ip(std::uint16_t i);
template <> cn::ipv4_address backend_ip<cn::ipv4_address>(std::uint16_t i) {
    return cn::ipv4_address(10, 0, 0, static_cast<std::uint8_t>(10 + i));
}
template <> cn::ipv6_address backend_ip<cn::ipv6_address>(std::uint16_t i) { return v6(1, static_cast<std::uint8_t>(10 + i)); }

struct picker {
    std::uint16_t next = 0;
    template <class Key>
    std::uint16_t operator()(const Key&, std::uint64_t h) noexcept {
        // Now and then a slot with no back end, to reach no_backend.
        if ((h & 31) == 0) return 5;
        next = static_cast<std::uint16_t>((next + 1) % backends);
        return next;
    }
};

template <class Family>
cn::basic_dispatcher_config<Family> config() {
    cn::basic_dispatcher_config<Family> c;
    if constexpr (Family::family == cn::ip_family::v4) {
        c.vip = vip;
        c.self = {self_mac, self_ip, self_mac};
    } else {
        c.vip = vip6;
        c.self = {self_mac, self_ip6, self_mac};
    }
    c.port = 80;
    c.table.capacity = 48;
    c.table.timeouts = cn::session_timeouts::ipvs_defaults(1);
    c.max_backends = 8;
    c.first_local_port = 40000;
    c.last_local_port = 40031;
    c.mtu = Family::family == cn::ip_family::v4 ? 600 : 1320;  // IPv6: the least a tunnel may have
    return c;
}

template <class Family, cn::forwarding_mode M>
struct lane {
    static constexpr bool v4 = Family::family == cn::ip_family::v4;
    cn::basic_dispatcher<Family, M, picker> d{config<Family>(), picker{}};
    std::uint64_t frames = 0;
    lane() {
        for (std::uint16_t i = 0; i < backends; ++i) {
            cn::mac_address m = self_mac;
            m.bytes[5] = std::byte{static_cast<unsigned char>(0x10 + i)};
            d.set_backend(i, {backend_ip<typename Family::address>(i), m, static_cast<std::uint16_t>(i == 0 ? 0 : 8080)});
        }
    }

    void run(std::vector<std::byte> frame, std::uint32_t now, bool input_good) {
        std::vector<std::byte> scratch(frame.size() + 64);
        const auto r = d.process(frame, now, scratch);
        ++frames;
        check(d.stats().total() == frames);
        std::uint64_t active = 0;
        for (std::uint16_t i = 0; i < 8; ++i) active += d.active(i);
        check(active <= d.table().size());
        if (!cn::sends(r.verdict)) {
            check(r.out.empty());
            return;
        }
        const bool in_frame = r.out.data() >= frame.data() && r.out.data() + r.out.size() <= frame.data() + frame.size();
        const bool in_scratch = r.out.data() >= scratch.data() && r.out.data() + r.out.size() <= scratch.data() + scratch.size();
        check(in_frame || in_scratch);
        if (r.verdict == cn::dispatch_verdict::frag_needed && !v4) {
            // The Packet Too Big: ICMPv6 type 2 code 0, checksum right, the tunnel's inner MTU.
            check(M == cn::forwarding_mode::tunnel && in_scratch);
            const auto p = cn::parse_ethernet_packet(std::span<const std::byte>(r.out));
            check(p.has_value() && p->family() == cn::ip_family::v6 && p->is_icmp());
            const auto m = p->transport_bytes();
            check(m.size() >= 8 + 40 && cn::load_u8(m.data()) == 2 && cn::load_u8(m.data() + 1) == 0);
            check(cn::load_be32(m.data() + 4) == 1280);
            check(cn::verify_checksums(*p).transport == cn::checksum_status::ok);
            check(r.out.size() <= cn::icmp6_packet_too_big::max_frame);
            return;
        }
        if (r.verdict == cn::dispatch_verdict::frag_needed) {
            // The ICMP "fragmentation needed" for a packet too big for the tunnel: well formed,
            // both checksums right, quoting the packet's header, to its source.
            check(M == cn::forwarding_mode::tunnel && in_scratch);
            const auto p = cn::parse_ethernet_packet(std::span<const std::byte>(r.out));
            check(p.has_value() && p->family() == cn::ip_family::v4 && p->protocol() == cn::ip_protocol::icmp);
            check(p->ipv4().checksum_ok());
            const auto m = r.out.subspan(14 + 20);
            check(m.size() >= 8 + 20 && std::to_integer<int>(m[0]) == 3 && std::to_integer<int>(m[1]) == 4);
            check(cn::checksum_verifies(std::span<const std::byte>(m)));
            check(cn::load_be32(m.data() + 8 + 12) == p->ipv4().dst());  // quoted source = our destination
            return;
        }
        cn::parse_options opt;
        opt.decapsulate = M == cn::forwarding_mode::tunnel;
        const auto p = cn::parse_ethernet_packet(std::span<const std::byte>(r.out), opt);
        check(p.has_value());
        check(p->family() == Family::family);
        if constexpr (v4) check(p->ipv4().checksum_ok());  // the input's header verified (verify_ip_checksum)
        if constexpr (M == cn::forwarding_mode::tunnel) {
            check(p->is_tunnelled() && p->outer_family() == Family::family);
            if constexpr (v4) check(p->outer_ipv4().checksum_ok());
        }
        if (input_good) check(cn::verify_checksums(*p).ok());
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using v4 = cn::ipv4_family;
    using v6 = cn::ipv6_family;
    // Fresh dispatchers per input: an input is a whole story, reproducible alone.
    auto dr = std::make_unique<lane<v4, cn::forwarding_mode::direct_routing>>();
    auto nat = std::make_unique<lane<v4, cn::forwarding_mode::nat>>();
    auto fnat = std::make_unique<lane<v4, cn::forwarding_mode::full_nat>>();
    auto tun = std::make_unique<lane<v4, cn::forwarding_mode::tunnel>>();
    auto dr6 = std::make_unique<lane<v6, cn::forwarding_mode::direct_routing>>();
    auto nat6 = std::make_unique<lane<v6, cn::forwarding_mode::nat>>();
    auto fnat6 = std::make_unique<lane<v6, cn::forwarding_mode::full_nat>>();
    auto tun6 = std::make_unique<lane<v6, cn::forwarding_mode::tunnel>>();
    std::uint32_t now = 0;
    std::size_t at = 0;
    for (int records = 0; records < 64 && at + 4 <= size; ++records) {
        const std::uint8_t flags = data[at];
        now += data[at + 1];
        const std::size_t len = std::min<std::size_t>(data[at + 2] | (std::size_t{data[at + 3]} << 8), size - at - 4);
        std::vector<std::byte> frame(len);
        if (len != 0) std::memcpy(frame.data(), data + at + 4, len);
        at += 4 + len;
        bool good = false;
        if (const auto p = cn::parse_ethernet_packet(std::span<std::byte>(frame)); p) {
            const bool is4 = p->family() == cn::ip_family::v4;
            if (flags & 2) {
                if (is4) p->ipv4().set_dst(vip.value);
                else p->ipv6().set_dst(vip6);
                if (p->is_tcp() || p->is_udp()) cn::store_be16(p->transport_bytes().data() + 2, 80);
            }
            if (flags & 4) {
                const auto b = static_cast<std::uint16_t>(flags >> 6 & 1);
                if (is4) p->ipv4().set_src(backend_ip<cn::ipv4_address>(b).value);
                else p->ipv6().set_src(backend_ip<cn::ipv6_address>(b));
            }
            if (flags & 1) cn::fill_checksums(*p);
            good = cn::verify_checksums(*p).ok();
        }
        dr->run(frame, now, good);
        nat->run(frame, now, good);
        fnat->run(frame, now, good);
        tun->run(frame, now, good);
        dr6->run(frame, now, good);
        nat6->run(frame, now, good);
        fnat6->run(frame, now, good);
        tun6->run(frame, now, good);
    }
    return 0;
}
