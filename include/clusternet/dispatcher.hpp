// clusternet/dispatcher.hpp -- the layer-4 dispatcher: parse, classify, track, schedule, rewrite.
//
//   frame ─► parse ─► for the service? ─► session table ─► (new flow) pick a back end
//                 │                         (track)            │
//                 │                                            ▼
//                 └─► (NAT) a back end's reply? ─────────► forwarding mode rewrites ─► out
//
// `dispatcher4<Mode, Picker>` (IPv4) and `dispatcher6<Mode, Picker>` (IPv6), both
// `basic_dispatcher<Family, Mode, Picker>`, compose the parts of this library and hold no logic
// of their own beyond their order: packet.hpp parses, session_table.hpp follows the TCP
// lifecycle, the Picker (any callable `uint16_t(const flow_key4&, uint64_t hash) noexcept`, or
// `flow_key6&` for dispatcher6; with
// flow_opened(slot) / flow_closed(slot) members it is told when flows begin and end, as
// cluster_dispatch.hpp's cluster_picker over a scheduler and the cluster view is) picks a back
// end slot for a new flow, and
// forwarding.hpp rewrites. Every packet gets a verdict and every verdict a counter.
//
// Modes: direct_routing (LSMAC), nat (LSNAT), full_nat, tunnel (IP-in-IP); see forwarding.hpp
// for what each needs of the network. The I/O binding is the caller's: process() takes a frame
// (rewritten in place for the MAC and NAT modes; encapsulated into `scratch` for the tunnel)
// and says what to send. process_burst() does the same for a batch, overlapping the session
// table's memory accesses across the batch (session_table::prefetch).
//
// Back ends live in slots (std::uint16_t, the value the session stores). Each slot has a
// generation: removing or replacing a back end bumps it, so the flows still pinned to the old
// one are dropped and ended when their next packet comes (`backend_gone`) instead of following
// the slot to a new machine. Per-slot live flow counts are exact (the session table's end
// hook), for least-connection pickers and for draining ("no flows left").
//
// Threading: a dispatcher belongs to one thread, like its table; run one per receive queue.
// The fast path allocates nothing, takes no lock and throws nothing.
#pragma once

#include <clusternet/error.hpp>
#include <clusternet/flow_key.hpp>
#include <clusternet/forwarding.hpp>
#include <clusternet/packet.hpp>
#include <clusternet/packet_checksum.hpp>
#include <clusternet/session_table.hpp>

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <new>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace clusternet {

enum class forwarding_mode : std::uint8_t { direct_routing, nat, full_nat, tunnel };

[[nodiscard]] constexpr std::string_view to_string(forwarding_mode m) noexcept {
    switch (m) {
        case forwarding_mode::direct_routing: return "direct_routing";
        case forwarding_mode::nat: return "nat";
        case forwarding_mode::full_nat: return "full_nat";
        case forwarding_mode::tunnel: return "tunnel";
    }
    return "unknown";
}

/// What the dispatcher did with a packet.
enum class dispatch_verdict : std::uint8_t {
    forwarded,     ///< a packet of a known flow, rewritten: send `out`
    new_flow,      ///< the first packet of a flow (or of a reused port): scheduled, rewritten: send `out`
    reply,         ///< (NAT modes) a back end's reply, rewritten towards the client: send `out`
    malformed,     ///< the parser refused it; stats().malformed counts the reason
    not_ours,      ///< neither for the service nor (NAT) a reply: left to the caller (the kernel)
    no_session,    ///< a mid-flow TCP packet of no known flow: dropped (IPVS does the same)
    no_backend,    ///< no back end to schedule to (none up, or all draining)
    table_full,    ///< the session table refused a new flow (it never evicts an established one)
    no_port,       ///< (full NAT) no local port free towards that back end
    backend_gone,  ///< the flow's back end was removed or replaced: dropped, the flow ended
    ttl_exceeded,  ///< (NAT modes route) the TTL would reach 0: dropped
    too_big,       ///< (tunnel) the encapsulated packet would exceed the MTU: dropped
    frag_needed,   ///< (tunnel) too big with DF set: dropped, and `out` is the ICMP "fragmentation
                   ///< needed" (RFC 1191) to send back towards the client (the front side)
};
inline constexpr std::size_t dispatch_verdict_count = static_cast<std::size_t>(dispatch_verdict::frag_needed) + 1;

[[nodiscard]] constexpr std::string_view to_string(dispatch_verdict v) noexcept {
    switch (v) {
        case dispatch_verdict::forwarded: return "forwarded";
        case dispatch_verdict::new_flow: return "new_flow";
        case dispatch_verdict::reply: return "reply";
        case dispatch_verdict::malformed: return "malformed";
        case dispatch_verdict::not_ours: return "not_ours";
        case dispatch_verdict::no_session: return "no_session";
        case dispatch_verdict::no_backend: return "no_backend";
        case dispatch_verdict::table_full: return "table_full";
        case dispatch_verdict::no_port: return "no_port";
        case dispatch_verdict::backend_gone: return "backend_gone";
        case dispatch_verdict::ttl_exceeded: return "ttl_exceeded";
        case dispatch_verdict::too_big: return "too_big";
        case dispatch_verdict::frag_needed: return "frag_needed";
    }
    return "unknown";
}

/// True for the verdicts whose `out` is to be sent.
[[nodiscard]] constexpr bool sends(dispatch_verdict v) noexcept {
    return v == dispatch_verdict::forwarded || v == dispatch_verdict::new_flow || v == dispatch_verdict::reply ||
           v == dispatch_verdict::frag_needed;
}

/// True for what goes out on the client side (the front interface of a two-legged dispatcher).
[[nodiscard]] constexpr bool towards_client(dispatch_verdict v) noexcept {
    return v == dispatch_verdict::reply || v == dispatch_verdict::frag_needed;
}

struct dispatcher_stats {
    std::array<std::uint64_t, dispatch_verdict_count> verdicts{};
    std::array<std::uint64_t, parse_error_count> malformed{};  ///< by parse_error
    /// Retransmitted SYNs of half-open flows whose back end was no longer eligible, scheduled
    /// again (their verdict is new_flow, or what scheduling said).
    std::uint64_t rescheduled = 0;
    /// Live flows moved to another back end by repoint() (TCP handoffs).
    std::uint64_t repointed = 0;
    [[nodiscard]] std::uint64_t count(dispatch_verdict v) const noexcept { return verdicts[static_cast<std::size_t>(v)]; }
    [[nodiscard]] std::uint64_t total() const noexcept {
        std::uint64_t n = 0;
        for (const auto c : verdicts) n += c;
        return n;
    }
};

/// The picker a dispatcher calls for a new flow: a back end slot, or
/// basic_session<...>::no_backend (0xFFFF) when there is none. Key: the dispatcher's flow key
/// (flow_key4, or flow_key6 for dispatcher6).
template <class P, class Key = flow_key4>
concept BackendPicker = requires(P& p, const Key& k, std::uint64_t h) {
    { p(k, h) } noexcept -> std::convertible_to<std::uint16_t>;
};

/// A dispatcher's configuration; Family is ipv4_family (dispatcher_config) or ipv6_family
/// (dispatcher6_config).
template <class Family>
struct basic_dispatcher_config {
    typename Family::address vip{};              ///< the cluster address
    std::uint16_t port = 0;                      ///< the service port; 0 for every port
    std::uint8_t protocol = ip_protocol::tcp;    ///< TCP or UDP
    basic_local_endpoint<typename Family::address> self{};  ///< this dispatcher's MAC, address, gateway
    session_table_config table{};                ///< capacity, timeouts, seed
    std::size_t max_backends = 256;              ///< slots 0 .. max_backends - 1
    std::size_t mtu = 1500;                      ///< (tunnel) the outer packet's limit
    std::uint16_t first_local_port = 1024;       ///< (full NAT) ports allocated to flows
    std::uint16_t last_local_port = 65535;
    std::uint32_t port_probes = 32;              ///< (full NAT) ports tried per new flow
    /// Refuse (malformed, bad_checksum) an IPv4 header whose checksum does not verify: an
    /// incremental update keeps an error, so a corrupt packet would go out corrupt. 20 bytes
    /// summed, a few ns. (IPv6 has no header checksum.)
    bool verify_ip_checksum = true;
    /// The same for the TCP/UDP checksum: O(packet size) (about 25 ns at 1500 bytes), for links
    /// whose NIC does not check. Frames whose checksum the kernel left to offload (veth,
    /// TP_STATUS_CSUMNOTREADY) carry a partial sum: verify them only with offload turned off.
    bool verify_transport_checksum = false;
};
using dispatcher_config = basic_dispatcher_config<ipv4_family>;
using dispatcher6_config = basic_dispatcher_config<ipv6_family>;

/// The dispatcher for one address family. Use the aliases: dispatcher4<Mode, Picker> (IPv4)
/// and dispatcher6<Mode, Picker> (IPv6), every mode for both. An IPv6
/// packet reaching a dispatcher4 (or an IPv4 one a dispatcher6) is not_ours: run one of each
/// on a dual-stack link, handing each frame to the one of its family.
template <class Family, forwarding_mode Mode, class Picker>
    requires BackendPicker<Picker, typename Family::key>
class basic_dispatcher {
public:
    static constexpr bool sees_replies = Mode == forwarding_mode::nat || Mode == forwarding_mode::full_nat;
    using family_type = Family;
    using address_type = typename Family::address;
    using key_type = typename Family::key;
    using config_type = basic_dispatcher_config<Family>;
    using backend_type = basic_backend_endpoint<address_type>;
    using table_type = session_table<key_type, sees_replies>;
    using session_type = typename table_type::session_type;
    static constexpr std::uint16_t no_backend = session_type::no_backend;
    static constexpr std::size_t max_burst = 64;

    struct result {
        dispatch_verdict verdict = dispatch_verdict::not_ours;
        std::span<std::byte> out{};  ///< what to send, for the verdicts sends() is true of
    };

    /// Throws std::invalid_argument with a message for a configuration that cannot work (and
    /// what session_table's constructor throws).
    basic_dispatcher(const config_type& cfg, Picker picker)
        : cfg_(validated(cfg)), picker_(std::move(picker)), table_(cfg_.table),
          slots_(cfg_.max_backends) {
        table_.set_end_hook(&basic_dispatcher::on_session_end, this);
    }
    basic_dispatcher(const basic_dispatcher&) = delete;  // the table's end hook points at this object
    basic_dispatcher& operator=(const basic_dispatcher&) = delete;

    // --- control plane (same thread as the fast path) -------------------------------------

    /// Puts a back end in `slot` (new, or replacing what was there: the old one's flows end).
    /// Throws std::out_of_range for a slot beyond max_backends.
    void set_backend(std::uint16_t slot, const backend_type& b) {
        slot_state& s = slot_at(slot);
        if (s.present && s.endpoint.address == b.address && s.endpoint.port == b.port) {
            s.endpoint.mac = b.mac;  // same machine, new MAC (ARP refresh): flows stay
            return;
        }
        retire(s);
        s.endpoint = b;
        s.present = true;
        s.nat_in = {};
        if constexpr (Family::family == ip_family::v4 && Mode == forwarding_mode::nat) {
            // With the service port fixed (or no port mapped), every inbound packet of the back
            // end's flows goes from VIP:port to b:port with its TTL one lower: the checksum
            // changes are the same for all of them, worked out once here (LSNAT's observation,
            // RFC 2391 and RFC 3022 4.2), and the packet needs no delta of its own.
            if (cfg_.port != 0 || b.port == 0) s.nat_in = constant_nat(b);
        }
    }
    /// Takes the back end out of `slot`: its flows are dropped and ended as their packets come.
    void remove_backend(std::uint16_t slot) {
        slot_state& s = slot_at(slot);
        retire(s);
        s.present = false;
    }
    [[nodiscard]] bool has_backend(std::uint16_t slot) const noexcept { return slot < slots_.size() && slots_[slot].present; }

    /// Re-points the live flow `k` (the client's key, as its packets carry it) to the back end
    /// in `slot`: its later packets go there. For a connection that moved between back ends --
    /// a TCP handoff (LCCP's forward_install to the layer-4 switch) -- so that the old owner
    /// need not forward them. The per-slot live counts (and the picker's) move with the flow.
    /// Direct routing and tunnel modes only (NAT's reply mapping names the back end). False,
    /// changing nothing, when `k` has no live session or `slot` no back end. Control plane, on
    /// the fast path's thread.
    bool repoint(const key_type& k, std::uint16_t slot, std::uint32_t now) noexcept
        requires(Mode == forwarding_mode::direct_routing || Mode == forwarding_mode::tunnel)
    {
        if (!has_backend(slot)) return false;
        session_type* s = table_.find(k, now);
        if (s == nullptr || s->backend == no_backend) return false;
        slot_state& b = slots_[slot];
        if (s->backend == slot && generation_of(*s) == b.generation) return true;
        on_session_end(this, *s);  // the old slot's count (and the picker's) lose the flow
        s->backend = slot;
        s->user = (std::uint32_t{b.generation} << 16) | local_port_of(*s);
        ++b.active;
        if constexpr (requires { picker_.flow_opened(slot); }) picker_.flow_opened(slot);
        ++stats_.repointed;
        return true;
    }
    [[nodiscard]] const backend_type& backend(std::uint16_t slot) const { return slot_at(slot).endpoint; }
    /// Live flows pinned to the back end in `slot` (0 once a draining back end is drained).
    [[nodiscard]] std::uint32_t active(std::uint16_t slot) const noexcept { return slot < slots_.size() ? slots_[slot].active : 0; }
    /// New flows scheduled to `slot` since it was filled.
    [[nodiscard]] std::uint64_t scheduled(std::uint16_t slot) const noexcept { return slot < slots_.size() ? slots_[slot].scheduled : 0; }

    [[nodiscard]] const dispatcher_stats& stats() const noexcept { return stats_; }
    [[nodiscard]] table_type& table() noexcept { return table_; }
    [[nodiscard]] const table_type& table() const noexcept { return table_; }
    [[nodiscard]] const config_type& config() const noexcept { return cfg_; }
    [[nodiscard]] Picker& picker() noexcept { return picker_; }

    // --- fast path -------------------------------------------------------------------------

    /// One frame. `scratch` is where the tunnel mode builds its output (at least the frame's
    /// size + 20 bytes; unused by the other modes, which rewrite `frame` in place).
    result process(std::span<std::byte> frame, std::uint32_t now, std::span<std::byte> scratch) noexcept {
        classified c;
        classify(frame, c);
        if (c.verdict != dispatch_verdict::not_ours || c.what == kind::none) return count(result{c.verdict, {}});
        return finish(c, typename table_type::hashed_key{table_.prefetch(c.key())}, now, scratch);
    }

    /// A batch of frames (up to max_burst at a time, more in rounds): as process() for each,
    /// results[i] for frames[i], the tunnel's output in scratch[i]. The session lookups of the
    /// batch overlap (prefetch, then prefetch_session, then track), which is what keeps a
    /// table of millions of sessions fast. Preconditions: results.size() >= frames.size(), and
    /// for the tunnel mode scratch.size() >= frames.size().
    void process_burst(std::span<const std::span<std::byte>> frames, std::uint32_t now,
                       std::span<const std::span<std::byte>> scratch, std::span<result> results) noexcept {
        // Not zeroed: classify() fills what finish() reads (a zeroed pair of arrays cost about
        // 40 instructions a packet in bursts of 32, measured with callgrind).
        std::array<classified, max_burst> c;
        std::array<raw<typename table_type::hashed_key>, max_burst> h;
        for (std::size_t base = 0; base < frames.size(); base += max_burst) {
            const std::size_t n = std::min(max_burst, frames.size() - base);
            for (std::size_t i = 0; i < n; ++i) {
                classify(frames[base + i], c[i]);
                if (c[i].what != kind::none) h[i].set(table_.prefetch(c[i].key()));
            }
            for (std::size_t i = 0; i < n; ++i)
                if (c[i].what != kind::none) table_.prefetch_session(h[i].get());
            for (std::size_t i = 0; i < n; ++i) {
                const std::span<std::byte> sc = Mode == forwarding_mode::tunnel ? scratch[base + i] : std::span<std::byte>{};
                results[base + i] = c[i].what == kind::none ? count(result{c[i].verdict, {}}) : finish(c[i], h[i].get(), now, sc);
            }
        }
    }

private:
    enum class kind : std::uint8_t { none, to_service, maybe_reply };

    /// Storage for a T that is set before it is read, and not initialised before (T is
    /// trivially copyable and destructible).
    template <class T>
    struct raw {
        static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>);
        union { T value; };
        raw() noexcept {}  // NOLINT: deliberately leaves value uninitialised
        void set(const T& v) noexcept { ::new (static_cast<void*>(&value)) T(v); }
        [[nodiscard]] const T& get() const noexcept { return value; }
        [[nodiscard]] T& get() noexcept { return value; }
    };

    /// What classify() learnt of a frame. verdict and what are always set; flags, key and p
    /// only when what != kind::none (they are all that finish() reads).
    struct classified {
        dispatch_verdict verdict;
        kind what;
        std::uint8_t flags;  ///< TCP flags
        raw<key_type> k;
        raw<packet> pk;
        classified() noexcept {}  // NOLINT: classify() fills it
        [[nodiscard]] key_type& key() noexcept { return k.get(); }
        [[nodiscard]] packet& p() noexcept { return pk.get(); }
    };

    /// (IPv4 NAT) The inbound rewrite of one back end's packets, worked out once: the new
    /// destination and port in memory order, the IPv4 header's checksum change (address and
    /// TTL) and the transport one (address and port), both folded.
    struct nat_constant {
        bool valid = false;
        bool map_port = false;
        std::uint16_t to_port = 0;
        std::uint32_t to_addr = 0;
        std::uint32_t ip_delta = 0, l4_delta = 0;
    };

    nat_constant constant_nat(const backend_type& b) const noexcept {
        nat_constant n;
        if constexpr (Family::family == ip_family::v4) {
            const std::uint16_t to_port = b.port != 0 ? b.port : cfg_.port;
            n.valid = true;
            n.to_addr = host_to_net(b.address.value);
            n.map_port = cfg_.port != 0 && to_port != cfg_.port;
            n.to_port = host_to_net(to_port);
            checksum_delta d;
            d.replace32_raw(host_to_net(cfg_.vip.value), n.to_addr);
            checksum_delta ip = d;
            // The TTL byte one lower, in whatever order this host keeps the TTL/protocol word.
            const std::array<std::byte, 2> before{std::byte{1}, std::byte{0}}, after{std::byte{0}, std::byte{0}};
            ip.replace16_raw(load_native<std::uint16_t>(before.data()), load_native<std::uint16_t>(after.data()));
            n.ip_delta = ip.folded_sum();
            if (n.map_port) d.replace16_raw(host_to_net(cfg_.port), n.to_port);
            n.l4_delta = d.folded_sum();
        }
        return n;
    }

    /// nat_rewrite::inbound with the changes worked out beforehand: for a packet classify()
    /// found to be for VIP:port. False, unchanged, when its TTL would reach 0.
    bool apply_nat(const packet& p, const nat_constant& n, const backend_type& b) const noexcept {
        std::byte* ip = p.ip_bytes().data();
        const std::uint8_t ttl = load_u8(ip + 8);
        if (ttl <= 1) return false;
        store_u8(ip + 8, static_cast<std::uint8_t>(ttl - 1));
        store_native(ip + 16, n.to_addr);
        store_native(ip + 10, checksum_delta::apply_folded_raw(load_native<std::uint16_t>(ip + 10), n.ip_delta));
        std::byte* l4 = p.transport_bytes().data();
        if (n.map_port) store_native(l4 + 2, n.to_port);
        if (p.protocol() == ip_protocol::tcp) {
            store_native(l4 + 16, checksum_delta::apply_folded_raw(load_native<std::uint16_t>(l4 + 16), n.l4_delta));
        } else if (const std::uint16_t c = load_native<std::uint16_t>(l4 + 6); c != 0) {  // UDP; 0: "not computed"
            const std::uint16_t u = checksum_delta::apply_folded_raw(c, n.l4_delta);
            store_native(l4 + 6, u == 0 ? std::uint16_t{0xFFFF} : u);
        }
        return set_ethernet(p, b.mac, cfg_.self.mac);
    }

    struct slot_state {
        backend_type endpoint{};
        nat_constant nat_in{};  ///< (IPv4 NAT) the inbound rewrite, when it is the same for every packet
        bool present = false;
        std::uint16_t generation = 0;
        std::uint32_t active = 0;
        std::uint64_t scheduled = 0;
    };

    static config_type validated(const config_type& cfg) {
        if (cfg.vip == address_type{}) throw std::invalid_argument("dispatcher: the cluster address (vip) is not set");
        if (cfg.protocol != ip_protocol::tcp && cfg.protocol != ip_protocol::udp)
            throw std::invalid_argument("dispatcher: protocol must be TCP (6) or UDP (17), got " + std::to_string(cfg.protocol));
        if (cfg.max_backends == 0 || cfg.max_backends >= no_backend)
            throw std::invalid_argument("dispatcher: max_backends must be between 1 and 65534, got " +
                                        std::to_string(cfg.max_backends));
        if (Mode == forwarding_mode::full_nat) {
            if (cfg.self.address == address_type{} || cfg.self.address == cfg.vip)
                throw std::invalid_argument("dispatcher: full NAT needs a local address of its own, other than the vip");
            if (cfg.first_local_port == 0 || cfg.first_local_port > cfg.last_local_port || cfg.port_probes == 0)
                throw std::invalid_argument("dispatcher: full NAT needs a port range first_local_port..last_local_port "
                                            "(1..65535) and port_probes > 0");
        }
        if constexpr (Family::family == ip_family::v4) {
            if (Mode == forwarding_mode::tunnel && (cfg.self.address == address_type{} || cfg.mtu < 68 + ipip_encap::outer_size))
                throw std::invalid_argument("dispatcher: the tunnel mode needs a local address (the tunnel's source) and an MTU of at least 88");
        } else {
            // Every IPv6 link carries 1280 bytes (RFC 8200 5): the tunnel must carry those inside.
            if (Mode == forwarding_mode::tunnel &&
                (cfg.self.address == address_type{} || cfg.mtu < icmp6_packet_too_big::min_mtu + ipip_encap::outer_size6))
                throw std::invalid_argument("dispatcher: the IPv6 tunnel mode needs a local address (the tunnel's source) and an "
                                            "MTU of at least 1320 (1280 inside, RFC 8200)");
        }
        return cfg;
    }

    slot_state& slot_at(std::uint16_t slot) {
        if (slot >= slots_.size())
            throw std::out_of_range("dispatcher: back end slot " + std::to_string(slot) + " is beyond max_backends (" +
                                    std::to_string(slots_.size()) + ")");
        return slots_[slot];
    }
    const slot_state& slot_at(std::uint16_t slot) const { return const_cast<basic_dispatcher*>(this)->slot_at(slot); }

    static void retire(slot_state& s) noexcept {
        ++s.generation;  // flows of the old back end no longer match
        s.active = 0;
        s.scheduled = 0;
    }

    // session.user: generation in the high 16 bits, the full NAT local port in the low 16.
    static std::uint16_t generation_of(const session_type& s) noexcept { return static_cast<std::uint16_t>(s.user >> 16); }
    static std::uint16_t local_port_of(const session_type& s) noexcept { return static_cast<std::uint16_t>(s.user); }

    static void on_session_end(void* self, const session_type& s) noexcept {
        auto& d = *static_cast<basic_dispatcher*>(self);
        if (s.backend == no_backend || s.backend >= d.slots_.size()) return;
        slot_state& slot = d.slots_[s.backend];
        // The picker hears of every flow it was told of, whatever became of the slot since
        // (a view keeps a member's slot until its flows are gone); the slot's own count is of
        // the current generation only.
        if constexpr (requires { d.picker_.flow_closed(s.backend); }) d.picker_.flow_closed(s.backend);
        if (slot.generation == generation_of(s) && slot.active > 0) --slot.active;
    }

    result count(result r) noexcept {
        ++stats_.verdicts[static_cast<std::size_t>(r.verdict)];
        return r;
    }

    CLUSTERNET_ALWAYS_INLINE void classify(std::span<std::byte> frame, classified& c) noexcept {
        c.verdict = dispatch_verdict::not_ours;
        c.what = kind::none;
        const auto parsed = parse_ethernet_packet(frame);
        if (!parsed) {
            ++stats_.malformed[static_cast<std::size_t>(parsed.error())];
            c.verdict = dispatch_verdict::malformed;
            return;
        }
        const packet& p = *parsed;
        if (p.family() != Family::family || p.protocol() != cfg_.protocol || !p.has_transport()) return;
        bool ip_ok = true;
        if constexpr (Family::family == ip_family::v4) ip_ok = !cfg_.verify_ip_checksum || p.ipv4().checksum_ok();
        if (!ip_ok || (cfg_.verify_transport_checksum && verify_checksums(p).transport == checksum_status::bad)) {
            ++stats_.malformed[static_cast<std::size_t>(parse_error::bad_checksum)];
            c.verdict = dispatch_verdict::malformed;
            return;
        }
        key_type key;
        if constexpr (Family::family == ip_family::v4) key = p.key4();
        else key = p.key6();
        if (key.dst == Family::in_key(cfg_.vip) && (cfg_.port == 0 || key.dport == cfg_.port)) c.what = kind::to_service;
        else if constexpr (sees_replies) c.what = kind::maybe_reply;
        else return;
        c.flags = p.is_tcp() ? p.tcp().flags() : 0;
        c.k.set(key);
        c.pk.set(p);
    }

    CLUSTERNET_ALWAYS_INLINE result finish(classified& c, const typename table_type::hashed_key& h, std::uint32_t now,
                                           std::span<std::byte> scratch) noexcept {
        if (c.what == kind::maybe_reply) {
            if constexpr (sees_replies) return reply(c, h, now);
        }
        const auto t = table_.track(c.key(), h, c.flags, now);
        switch (t.verdict) {
            case session_verdict::existing: {
                if (t.dir != direction::from_client) return count(result{dispatch_verdict::not_ours, {}});
                session_type& s = *t.session;
                if (s.backend >= slots_.size() || !slots_[s.backend].present || slots_[s.backend].generation != generation_of(s)) {
                    table_.erase(&s);
                    return count(result{dispatch_verdict::backend_gone, {}});
                }
                // A retransmitted SYN of a connection that never got going, pinned to a back end
                // that has since gone down: the handshake cannot finish there, so the flow is
                // scheduled again (with a picker that can say who is eligible).
                if constexpr (requires { picker_.eligible(s.backend); }) {
                    if (s.state == session_state::syn_recv && (c.flags & tcp_flags::syn) && !(c.flags & tcp_flags::ack) &&
                        !picker_.eligible(s.backend)) {
                        on_session_end(this, s);
                        s.backend = no_backend;
                        ++stats_.rescheduled;
                        return schedule(c, s, now, scratch);
                    }
                }
                return forward(c, s, slots_[s.backend], dispatch_verdict::forwarded, scratch);
            }
            case session_verdict::created:
            case session_verdict::reopened: return schedule(c, *t.session, now, scratch);
            case session_verdict::no_session: return count(result{dispatch_verdict::no_session, {}});
            case session_verdict::table_full: return count(result{dispatch_verdict::table_full, {}});
        }
        return count(result{dispatch_verdict::no_session, {}});
    }

    result schedule(classified& c, session_type& s, std::uint32_t now, std::span<std::byte> scratch) noexcept {
        const std::uint16_t slot = picker_(c.key(), hash(c.key(), cfg_.table.seed));
        if (slot >= slots_.size() || !slots_[slot].present) {
            table_.erase(&s);
            return count(result{dispatch_verdict::no_backend, {}});
        }
        slot_state& b = slots_[slot];
        std::uint16_t local_port = 0;
        if constexpr (sees_replies) {
            const std::uint16_t bport = b.endpoint.port != 0 ? b.endpoint.port : c.key().dport;
            if constexpr (Mode == forwarding_mode::nat) {
                const key_type reply_key{Family::in_key(b.endpoint.address), c.key().src, bport, c.key().sport, c.key().protocol, {0, 0, 0}};
                if (!table_.set_reply(&s, reply_key, now)) {
                    table_.erase(&s);
                    return count(result{dispatch_verdict::no_port, {}});
                }
            } else {
                local_port = allocate_port(s, c.key(), b.endpoint.address, bport, now);
                if (local_port == 0) {
                    table_.erase(&s);
                    return count(result{dispatch_verdict::no_port, {}});
                }
            }
        }
        s.backend = slot;
        s.user = (std::uint32_t{b.generation} << 16) | local_port;
        ++b.active;
        ++b.scheduled;
        if constexpr (requires { picker_.flow_opened(slot); }) picker_.flow_opened(slot);
        const result r = forward(c, s, b, dispatch_verdict::new_flow, scratch);
        if (r.verdict != dispatch_verdict::new_flow) table_.erase(&s);  // a first packet that cannot go: no flow
        return r;
    }

    /// Full NAT: a local port whose reply key (back end -> self:port) no live flow holds,
    /// tried from a hash of the client's key onwards (as Linux's NAT probes tuples).
    std::uint16_t allocate_port(session_type& s, const key_type& k, const address_type& backend, std::uint16_t bport,
                                std::uint32_t now) noexcept {
        const std::uint32_t range = std::uint32_t{cfg_.last_local_port} - cfg_.first_local_port + 1;
        std::uint32_t off = static_cast<std::uint32_t>(hash(k, cfg_.table.seed ^ 0x5bd1e995U) % range);
        for (std::uint32_t i = 0; i < cfg_.port_probes && i < range; ++i, off = off + 1 == range ? 0 : off + 1) {
            const auto port = static_cast<std::uint16_t>(cfg_.first_local_port + off);
            const key_type reply_key{Family::in_key(backend), Family::in_key(cfg_.self.address), bport, port, k.protocol, {0, 0, 0}};
            if (table_.set_reply(&s, reply_key, now)) return port;
        }
        return 0;
    }

    result forward(classified& c, session_type& s, const slot_state& slot, dispatch_verdict ok, std::span<std::byte> scratch) noexcept {
        const backend_type& b = slot.endpoint;
        bool done = false;
        if constexpr (Mode == forwarding_mode::direct_routing) {
            done = mac_rewrite::inbound(c.p(), b, cfg_.self);
        } else if constexpr (Mode == forwarding_mode::nat) {
            if (slot.nat_in.valid) done = apply_nat(c.p(), slot.nat_in, b);
            else done = nat_rewrite::inbound(c.p(), b, cfg_.self);
        } else if constexpr (Mode == forwarding_mode::full_nat) {
            done = full_nat::inbound(c.p(), b, cfg_.self, local_port_of(s));
        } else {
            const auto e = ipip_encap::encapsulate(c.p(), b, cfg_.self, scratch, cfg_.mtu);
            if (e.error == tunnel_error::too_big) {
                // IPv4 with DF set: tell the client the size that fits (RFC 1191), as IPVS's
                // tunnel mode does; without DF: dropped. IPv6: always a Packet Too Big (RFC
                // 4443; nobody fragments on the way). The ICMP replaces the packet in scratch.
                std::size_t n = 0;
                if constexpr (Family::family == ip_family::v4) n = icmp_frag_needed::build_for_tunnel(c.p(), cfg_.self.address, cfg_.mtu, scratch);
                else n = icmp6_packet_too_big::build_for_tunnel(c.p(), cfg_.self.address, cfg_.mtu, scratch);
                if (n != 0) return count(result{dispatch_verdict::frag_needed, scratch.first(n)});
            }
            if (e.error != tunnel_error::none) return count(result{dispatch_verdict::too_big, {}});
            return count(result{ok, scratch.first(e.size)});
        }
        if (!done) return count(result{dispatch_verdict::ttl_exceeded, {}});
        return count(result{ok, c.p().frame()});
    }

    result reply(classified& c, const typename table_type::hashed_key& h, std::uint32_t now) noexcept
        requires sees_replies
    {
        const auto t = table_.track(c.key(), h, c.flags, now, session_create::never);
        if (t.session == nullptr || t.dir != direction::from_server) return count(result{dispatch_verdict::not_ours, {}});
        const key_type client = t.session->flow();
        bool done = false;
        if constexpr (Mode == forwarding_mode::nat) {
            done = nat_rewrite::outbound(c.p(), Family::from_key(client.dst), client.dport, cfg_.self);
        } else {
            done = full_nat::outbound(c.p(), client, cfg_.self);
        }
        if (!done) return count(result{dispatch_verdict::ttl_exceeded, {}});
        return count(result{dispatch_verdict::reply, c.p().frame()});
    }

    config_type cfg_;
    Picker picker_;
    table_type table_;
    std::vector<slot_state> slots_;
    dispatcher_stats stats_;
};

/// The IPv4 dispatcher: direct routing, NAT, full NAT, tunnel.
template <forwarding_mode Mode, class Picker>
using dispatcher4 = basic_dispatcher<ipv4_family, Mode, Picker>;
/// The IPv6 dispatcher: direct routing, NAT, full NAT (RFC 2391's rewrite with the hop limit and
/// the transport checksum), tunnel (IPv6 in IPv6, RFC 2473, with Packet Too Big).
template <forwarding_mode Mode, class Picker>
using dispatcher6 = basic_dispatcher<ipv6_family, Mode, Picker>;

}  // namespace clusternet
