// clusternet/packet_builder.hpp -- build packets into a caller's buffer, lengths and checksums
// filled in. For tests, benchmarks, tools and control messages; not for the per-packet path
// (it is cheap, but a forwarder rewrites the packet it has instead of building a new one).
//
//   std::array<std::byte, 256> buf;
//   auto pkt = clusternet::packet_builder(buf)
//                  .ethernet({.dst = server_mac, .src = client_mac})
//                  .ipv4({.src = ipv4_address(10, 0, 0, 1), .dst = ipv4_address(10, 0, 0, 2)})
//                  .tcp({.sport = 40000, .dport = 80, .flags = tcp_flags::syn, .mss = 1460})
//                  .finish();   // result<std::span<std::byte>>
//
// Layers go outside in. An IP layer after an IP layer makes IP-in-IP (protocol 4 or 41 is set
// on the outer one). finish() sets every length field (IPv4 total length, IPv6 payload length,
// UDP length) and every checksum (IPv4 header, TCP, UDP, ICMP, ICMPv6). A buffer too small is
// reported as parse_error::too_large by finish(), never written past.
#pragma once

#include <clusternet/address.hpp>
#include <clusternet/arp.hpp>
#include <clusternet/checksum.hpp>
#include <clusternet/ethernet.hpp>
#include <clusternet/flow_key.hpp>
#include <clusternet/tcp.hpp>

#include <array>
#include <optional>
#include <span>

namespace clusternet {

struct ethernet_spec {
    mac_address dst{};
    mac_address src{};
    /// VLAN ids, outermost first; 0 entries are unused. Two tags make QinQ (0x88A8 outside).
    std::array<std::uint16_t, 2> vlans{0, 0};
};

struct ipv4_spec {
    ipv4_address src{};
    ipv4_address dst{};
    std::uint8_t ttl = 64;
    std::uint8_t tos = 0;
    std::uint16_t id = 0;
    bool dont_fragment = true;
    bool more_fragments = false;
    std::uint16_t fragment_offset = 0;  ///< 8-byte units
    /// Unset: taken from the next layer (TCP, UDP, ICMP, IP-in-IP); set it for a raw payload.
    std::optional<std::uint8_t> protocol{};
    /// Raw option bytes (a multiple of 4, at most 40).
    std::span<const std::byte> options{};
};

struct ipv6_spec {
    ipv6_address src{};
    ipv6_address dst{};
    std::uint8_t hop_limit = 64;
    std::uint8_t traffic_class = 0;
    std::uint32_t flow_label = 0;
    /// Unset: taken from the next layer; set it to put extension headers (as payload) first.
    std::optional<std::uint8_t> next_header{};
};

struct tcp_spec {
    std::uint16_t sport = 0;
    std::uint16_t dport = 0;
    std::uint32_t seq = 0;
    std::uint32_t ack = 0;
    std::uint8_t flags = tcp_flags::ack;
    std::uint16_t window = 65535;
    std::optional<std::uint16_t> mss{};
    std::optional<std::uint8_t> window_scale{};
    bool sack_permitted = false;
    std::optional<std::array<std::uint32_t, 2>> timestamps{};  ///< {TSval, TSecr}
};

struct udp_spec {
    std::uint16_t sport = 0;
    std::uint16_t dport = 0;
    /// Over IPv4, false leaves the checksum 0 ("not computed").
    bool checksum = true;
};

struct icmp_spec {
    std::uint8_t type = 8;  ///< echo request (use icmpv6_type::echo_request under IPv6)
    std::uint8_t code = 0;
    std::uint16_t identifier = 0;
    std::uint16_t sequence = 0;
};

struct arp_spec {
    std::uint16_t operation = arp_op::request;
    mac_address sender_mac{};
    ipv4_address sender_ip{};
    mac_address target_mac{};
    ipv4_address target_ip{};
};

class packet_builder {
public:
    static constexpr std::size_t max_layers = 8;

    explicit packet_builder(std::span<std::byte> buffer) noexcept : buf_(buffer) {}

    packet_builder& ethernet(const ethernet_spec& s) noexcept {
        const std::size_t tags = (s.vlans[0] != 0) + (s.vlans[0] != 0 && s.vlans[1] != 0);
        std::byte* p = reserve(14 + tags * 4, kind::ethernet);
        if (p == nullptr) return *this;
        std::memcpy(p, s.dst.bytes.data(), 6);
        std::memcpy(p + 6, s.src.bytes.data(), 6);
        for (std::size_t i = 0; i < tags; ++i) {
            store_be16(p + 12 + i * 4, (tags == 2 && i == 0) ? ethertype::qinq : ethertype::vlan);
            store_be16(p + 14 + i * 4, s.vlans[i] & 0x0FFF);
        }
        store_be16(p + 12 + tags * 4, 0);  // set by the next layer
        return *this;
    }

    packet_builder& arp(const arp_spec& s) noexcept {
        std::byte* p = reserve(28, kind::arp);
        if (p == nullptr) return *this;
        set_ethertype(ethertype::arp);
        store_be16(p, 1);
        store_be16(p + 2, ethertype::ipv4);
        store_u8(p + 4, 6);
        store_u8(p + 5, 4);
        basic_arp_view<std::byte> a(std::span<std::byte>(p, 28));
        a.set_operation(s.operation);
        a.set_sender(s.sender_mac, s.sender_ip);
        a.set_target(s.target_mac, s.target_ip);
        return *this;
    }

    packet_builder& ipv4(const ipv4_spec& s) noexcept {
        const std::size_t opt = s.options.size();
        if (opt % 4 != 0 || opt > 40) { error_ = parse_error::bad_field; return *this; }
        std::byte* p = reserve(20 + opt, kind::ipv4);
        if (p == nullptr) return *this;
        set_ethertype(ethertype::ipv4);
        set_ip_protocol(ip_protocol::ipip);
        store_u8(p, static_cast<std::uint8_t>(0x40 | ((20 + opt) / 4)));
        store_u8(p + 1, s.tos);
        store_be16(p + 2, 0);
        store_be16(p + 4, s.id);
        store_be16(p + 6, static_cast<std::uint16_t>((s.dont_fragment ? 0x4000 : 0) | (s.more_fragments ? 0x2000 : 0) |
                                                     (s.fragment_offset & 0x1FFF)));
        store_u8(p + 8, s.ttl);
        store_u8(p + 9, s.protocol.value_or(0));
        layers_[nlayers_ - 1].protocol_fixed = s.protocol.has_value();
        store_be16(p + 10, 0);
        store_be32(p + 12, s.src.value);
        store_be32(p + 16, s.dst.value);
        if (opt != 0) std::memcpy(p + 20, s.options.data(), opt);
        return *this;
    }

    packet_builder& ipv6(const ipv6_spec& s) noexcept {
        std::byte* p = reserve(40, kind::ipv6);
        if (p == nullptr) return *this;
        set_ethertype(ethertype::ipv6);
        set_ip_protocol(ip_protocol::ipv6);
        store_be32(p, (6U << 28) | (std::uint32_t{s.traffic_class} << 20) | (s.flow_label & 0xFFFFF));
        store_be16(p + 4, 0);
        store_u8(p + 6, s.next_header.value_or(0));
        layers_[nlayers_ - 1].protocol_fixed = s.next_header.has_value();
        store_u8(p + 7, s.hop_limit);
        std::memcpy(p + 8, s.src.bytes.data(), 16);
        std::memcpy(p + 24, s.dst.bytes.data(), 16);
        return *this;
    }

    /// Options are laid out as Linux writes them (tcp_options_write), so built segments look
    /// like real ones: MSS; SACK-permitted and Timestamps together (04 02 08 0a), or NOP NOP
    /// before either alone; NOP and Window Scale. Always a multiple of 4, no End of List.
    packet_builder& tcp(const tcp_spec& s) noexcept {
        const std::size_t opt = (s.mss ? 4 : 0) + (s.timestamps ? 12 : s.sack_permitted ? 4 : 0) + (s.window_scale ? 4 : 0);
        std::byte* p = reserve(20 + opt, kind::tcp);
        if (p == nullptr) return *this;
        set_ip_protocol(ip_protocol::tcp);
        store_be16(p, s.sport);
        store_be16(p + 2, s.dport);
        store_be32(p + 4, s.seq);
        store_be32(p + 8, s.ack);
        store_u8(p + 12, static_cast<std::uint8_t>(((20 + opt) / 4) << 4));
        store_u8(p + 13, s.flags);
        store_be16(p + 14, s.window);
        store_be32(p + 16, 0);  // checksum, urgent pointer
        std::byte* o = p + 20;
        const auto put = [&o](std::uint8_t b) { store_u8(o++, b); };
        if (s.mss) {
            put(tcp_option::mss);
            put(4);
            store_be16(o, *s.mss);
            o += 2;
        }
        if (s.timestamps) {
            if (s.sack_permitted) { put(tcp_option::sack_permitted); put(2); }
            else { put(tcp_option::nop); put(tcp_option::nop); }
            put(tcp_option::timestamps);
            put(10);
            store_be32(o, (*s.timestamps)[0]);
            store_be32(o + 4, (*s.timestamps)[1]);
            o += 8;
        } else if (s.sack_permitted) {
            put(tcp_option::nop);
            put(tcp_option::nop);
            put(tcp_option::sack_permitted);
            put(2);
        }
        if (s.window_scale) {
            put(tcp_option::nop);
            put(tcp_option::window_scale);
            put(3);
            put(*s.window_scale);
        }
        return *this;
    }

    packet_builder& udp(const udp_spec& s) noexcept {
        std::byte* p = reserve(8, kind::udp);
        if (p == nullptr) return *this;
        set_ip_protocol(ip_protocol::udp);
        store_be16(p, s.sport);
        store_be16(p + 2, s.dport);
        store_be16(p + 4, 0);
        store_be16(p + 6, 0);
        udp_checksum_ = s.checksum;
        return *this;
    }

    packet_builder& icmp(const icmp_spec& s) noexcept {
        std::byte* p = reserve(8, kind::icmp);
        if (p == nullptr) return *this;
        set_ip_protocol(last_ip_is_v6() ? ip_protocol::icmpv6 : ip_protocol::icmp);
        store_u8(p, s.type);
        store_u8(p + 1, s.code);
        store_be16(p + 2, 0);
        store_be16(p + 4, s.identifier);
        store_be16(p + 6, s.sequence);
        return *this;
    }

    /// Appends bytes after the last header.
    packet_builder& payload(std::span<const std::byte> data) noexcept {
        std::byte* p = reserve(data.size(), kind::none);
        if (p != nullptr && !data.empty()) std::memcpy(p, data.data(), data.size());
        return *this;
    }
    /// Appends `n` bytes of a repeating pattern (0, 1, 2, ...).
    packet_builder& payload(std::size_t n) noexcept {
        std::byte* p = reserve(n, kind::none);
        if (p != nullptr) for (std::size_t i = 0; i < n; ++i) p[i] = std::byte(static_cast<unsigned char>(i));
        return *this;
    }

    /// Fills lengths and checksums; returns the packet's bytes, or why it could not be built
    /// (`too_large`: the buffer is too small or a length overflows its field; `bad_field`).
    [[nodiscard]] result<std::span<std::byte>> finish() noexcept {
        if (error_ != parse_error::none) return error_;
        // Inside out: an IP layer's length needs the end of the packet; a transport checksum
        // needs the enclosing IP header's addresses.
        for (std::size_t i = nlayers_; i-- > 0;) {
            const layer& l = layers_[i];
            std::byte* p = buf_.data() + l.offset;
            const std::size_t len = size_ - l.offset;
            switch (l.k) {
                case kind::ipv4: {
                    if (len > 0xFFFF) return parse_error::too_large;
                    store_be16(p + 2, static_cast<std::uint16_t>(len));
                    store_be16(p + 10, 0);
                    const std::size_t hl = std::size_t{load_u8(p) & 0x0FU} * 4;
                    store_be16(p + 10, internet_checksum({p, hl}));
                    break;
                }
                case kind::ipv6:
                    if (len - 40 > 0xFFFF) return parse_error::too_large;
                    store_be16(p + 4, static_cast<std::uint16_t>(len - 40));
                    break;
                case kind::tcp:
                case kind::udp:
                case kind::icmp: {
                    if (len > 0xFFFF) return parse_error::too_large;
                    const std::size_t field = l.k == kind::tcp ? 16 : l.k == kind::udp ? 6 : 2;
                    if (l.k == kind::udp) store_be16(p + 4, static_cast<std::uint16_t>(len));
                    const layer* ip = enclosing_ip(i);
                    const bool v6 = ip != nullptr && ip->k == kind::ipv6;
                    if (l.k == kind::udp && !udp_checksum_ && !v6) break;
                    checksum_accumulator acc;
                    if (ip != nullptr && (v6 || l.k != kind::icmp)) {
                        const std::byte* iph = buf_.data() + ip->offset;
                        const std::uint8_t proto = l.k == kind::tcp ? ip_protocol::tcp
                                                 : l.k == kind::udp ? ip_protocol::udp
                                                                    : ip_protocol::icmpv6;
                        if (v6) {
                            add_ipv6_pseudo_header(acc, std::span<const std::byte, 16>(iph + 8, 16),
                                                   std::span<const std::byte, 16>(iph + 24, 16), proto,
                                                   static_cast<std::uint32_t>(len));
                        } else {
                            add_ipv4_pseudo_header(acc, load_be32(iph + 12), load_be32(iph + 16), proto,
                                                   static_cast<std::uint16_t>(len));
                        }
                    }
                    store_be16(p + field, 0);
                    acc.add({p, len});
                    std::uint16_t c = acc.finish();
                    if (l.k == kind::udp && c == 0) c = 0xFFFF;
                    store_be16(p + field, c);
                    break;
                }
                default:
                    break;
            }
        }
        return buf_.first(size_);
    }

private:
    enum class kind : std::uint8_t { none, ethernet, arp, ipv4, ipv6, tcp, udp, icmp };
    struct layer {
        kind k = kind::none;
        std::size_t offset = 0;
        bool protocol_fixed = false;  ///< the spec set the IP protocol / next header
    };

    std::byte* reserve(std::size_t n, kind k) noexcept {
        if (error_ != parse_error::none) return nullptr;
        if (n > buf_.size() - size_ || (k != kind::none && nlayers_ == max_layers)) {
            error_ = parse_error::too_large;
            return nullptr;
        }
        std::byte* p = buf_.data() + size_;
        if (k != kind::none) layers_[nlayers_++] = {k, size_, false};
        size_ += n;
        return p;
    }
    [[nodiscard]] const layer* enclosing_ip(std::size_t i) const noexcept {
        while (i-- > 0) if (layers_[i].k == kind::ipv4 || layers_[i].k == kind::ipv6) return &layers_[i];
        return nullptr;
    }
    [[nodiscard]] bool last_ip_is_v6() const noexcept {
        const layer* ip = enclosing_ip(nlayers_);
        return ip != nullptr && ip->k == kind::ipv6;
    }
    /// The layer before the one just reserved.
    [[nodiscard]] const layer* previous() const noexcept {
        return nlayers_ >= 2 ? &layers_[nlayers_ - 2] : nullptr;
    }
    void set_ethertype(std::uint16_t t) noexcept {
        const layer* prev = previous();
        if (prev != nullptr && prev->k == kind::ethernet) {
            std::byte* e = buf_.data() + prev->offset;
            std::size_t off = 12;
            while (load_be16(e + off) == ethertype::vlan || load_be16(e + off) == ethertype::qinq) off += 4;
            store_be16(e + off, t);
        }
    }
    /// Sets the protocol field of the IP header just before the layer being added, unless the
    /// spec set it (an IP header after an IP header makes IP-in-IP).
    void set_ip_protocol(std::uint8_t proto) noexcept {
        const layer* prev = previous();
        if (prev == nullptr || prev->protocol_fixed) return;
        std::byte* p = buf_.data() + prev->offset;
        if (prev->k == kind::ipv4) store_u8(p + 9, proto);
        if (prev->k == kind::ipv6) store_u8(p + 6, proto);
    }

    std::span<std::byte> buf_;
    std::size_t size_ = 0;
    std::array<layer, max_layers> layers_{};
    std::size_t nlayers_ = 0;
    parse_error error_ = parse_error::none;
    bool udp_checksum_ = true;
};

}  // namespace clusternet
