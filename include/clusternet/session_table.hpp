// clusternet/session_table.hpp -- bounded flow tracking that follows TCP and survives floods.
//
// One engine serves every session and flow table of clusternet: LSMAC/LSNAT's session table
// (4-tuple -> back end, opened by a SYN, closed by FIN/RST), DPR's table of redirected
// connections, and NAT's two-way mapping.
//
// Memory is fixed at construction and nothing is allocated afterwards:
//  - a slab of `capacity` sessions that never move (a `session*` stays valid until the session
//    ends), with free entries linked through their `user` field;
//  - a cuckoo hash index over slab positions, sized so that it is at most `max_load` full
//    (detail/session_index.hpp): 64-byte buckets of 12 one-byte tags and 12 positions.
// An IPv4 session is 24 bytes; with the index at 92 % that is about 30 bytes per session all
// in (bytes_per_session() says exactly; the benchmark reports it). No timer or list node per
// session: expiry is lazy on lookup plus a clock hand that sweeps the slab.
//
// Under pressure (the slab full) a new session takes the place of, in order: an expired session
// the hand finds; else the oldest half-open (syn_recv) session among those the hand samples;
// else nothing -- the packet gets the verdict `table_full` and no established session is ever
// evicted. That is the SYN-flood defence: spoofed SYNs only ever displace each other.
//
// Threading: a table belongs to one thread (no locks, no atomics). Run one table per receive
// queue and send each packet to the table of its flow: for traffic seen in one direction
// (direct routing, tunnels) hash the flow key as PACKET_FANOUT_HASH does (the kernel's flow
// hash is symmetric, hash_symmetric() here is the matching choice); for NAT, where the two
// directions carry different addresses, shard by the client's address and port, which both
// directions carry (sharded_session_table.hpp does this; tests/sharded_session_table_test.cpp checks
// it across threads).
#pragma once

#include <clusternet/config.hpp>
#include <clusternet/error.hpp>
#include <clusternet/flow_key.hpp>
#include <clusternet/tcp_lifecycle.hpp>
#include <clusternet/detail/big_buffer.hpp>
#include <clusternet/detail/session_index.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace clusternet {

/// How a key is stored in a session: its addresses and ports packed, the protocol apart.
template <class Key>
struct session_key_traits;

template <>
struct session_key_traits<flow_key4> {
    struct packed {
        std::uint32_t src = 0, dst = 0;
        std::uint16_t sport = 0, dport = 0;
    };
    [[nodiscard]] static constexpr packed pack(const flow_key4& k) noexcept { return {k.src, k.dst, k.sport, k.dport}; }
    [[nodiscard]] static constexpr flow_key4 unpack(const packed& p, std::uint8_t proto) noexcept {
        return flow_key4{p.src, p.dst, p.sport, p.dport, proto, {0, 0, 0}};
    }
    [[nodiscard]] static constexpr bool equal(const packed& p, const flow_key4& k) noexcept {
        return p.src == k.src && p.dst == k.dst && p.sport == k.sport && p.dport == k.dport;
    }
};

template <>
struct session_key_traits<flow_key6> {
    struct packed {
        ipv6_address src, dst;
        std::uint16_t sport = 0, dport = 0;
    };
    [[nodiscard]] static constexpr packed pack(const flow_key6& k) noexcept { return {k.src, k.dst, k.sport, k.dport}; }
    [[nodiscard]] static constexpr flow_key6 unpack(const packed& p, std::uint8_t proto) noexcept {
        return flow_key6{p.src, p.dst, p.sport, p.dport, proto, {0, 0, 0}};
    }
    [[nodiscard]] static bool equal(const packed& p, const flow_key6& k) noexcept {
        return p.sport == k.sport && p.dport == k.dport && std::memcmp(&p.src, &k.src, 32) == 0;
    }
};

namespace detail {
template <class Key, bool Bidirectional>
struct reply_part {
    typename session_key_traits<Key>::packed reply{};
    bool has_reply = false;
};
template <class Key>
struct reply_part<Key, false> {};
}  // namespace detail

/// One tracked session. `backend` and `user` are the caller's: the back end chosen for the
/// flow and any policy data (a NAT port, a DPR peer).
template <class Key, bool Bidirectional = false>
struct basic_session : detail::reply_part<Key, Bidirectional> {
    using traits = session_key_traits<Key>;
    static constexpr std::uint16_t no_backend = 0xFFFF;

    typename traits::packed key{};  ///< the client side's key (as first seen)
    std::uint8_t protocol = 0;
    session_state state = session_state::free;
    std::uint16_t backend = no_backend;
    std::uint32_t last_seen = 0;  ///< clock tick of the last packet
    std::uint32_t user = 0;

    [[nodiscard]] Key flow() const noexcept { return traits::unpack(key, protocol); }
};

using session4 = basic_session<flow_key4>;
using session6 = basic_session<flow_key6>;

/// What track() did.
enum class session_verdict : std::uint8_t {
    existing,    ///< the packet belongs to a live session (state updated)
    created,     ///< a new session: the caller picks its back end
    reopened,    ///< a SYN reused the port of a closing session: it starts afresh, pick anew
    no_session,  ///< not a SYN and no session: the caller decides (drop, or a stateless path)
    table_full,  ///< a new session was refused: no room without evicting an established one
};
inline constexpr std::size_t session_verdict_count = 5;

[[nodiscard]] constexpr std::string_view to_string(session_verdict v) noexcept {
    switch (v) {
        case session_verdict::existing: return "existing";
        case session_verdict::created: return "created";
        case session_verdict::reopened: return "reopened";
        case session_verdict::no_session: return "no_session";
        case session_verdict::table_full: return "table_full";
    }
    return "unknown";
}

/// Whether track() may open a session for a packet that has none.
enum class session_create : std::uint8_t {
    allowed,  ///< a TCP SYN (without ACK) or any other protocol's packet opens one
    never,    ///< only existing sessions are tracked (a NAT's outbound side)
};

/// Counters of every outcome.
struct session_stats {
    std::uint64_t verdicts[session_verdict_count] = {};
    std::uint64_t expired = 0;            ///< sessions ended by their idle timeout
    std::uint64_t evicted_half_open = 0;  ///< half-open sessions evicted to make room
    std::uint64_t closed = 0;             ///< sessions erased by the caller
    std::uint64_t index_full = 0;         ///< insertions the index could not place (should stay 0)
    [[nodiscard]] std::uint64_t count(session_verdict v) const noexcept { return verdicts[static_cast<std::size_t>(v)]; }
};

struct session_table_config {
    /// Sessions the table holds at most. Memory for all of them is taken at construction.
    std::size_t capacity = 1u << 16;
    session_timeouts timeouts = session_timeouts::ipvs_defaults();
    /// Hash seed: pick a random one per process (a fixed one lets an attacker aim at buckets).
    std::uint64_t seed = detail::default_hash_seed;
    /// Highest fill of the hash index, in (0, 0.95]: lower is faster, higher is smaller.
    double max_load = 0.92;
    /// Sessions the clock hand looks at to find room when the table is full, at most.
    std::uint32_t eviction_scan = 256;
    /// Of which it samples this many for the oldest half-open session before taking it.
    std::uint32_t eviction_sample = 32;
    /// Slab entries swept for expiry on each new session (amortises expiry into insertions).
    std::uint32_t sweep_per_insert = 2;
};

template <class Key, bool Bidirectional = false>
class session_table {
public:
    using key_type = Key;
    using session_type = basic_session<Key, Bidirectional>;
    using traits = session_key_traits<Key>;
    static_assert(std::is_trivially_destructible_v<session_type>, "the slab is freed without destructors");

    struct track_result {
        session_verdict verdict = session_verdict::no_session;
        session_type* session = nullptr;  ///< null for no_session and table_full
        direction dir = direction::from_client;
    };

    /// Allocates everything. Throws std::invalid_argument for a capacity of 0 or above 2^30 - 1
    /// or a max_load outside (0, 0.95], and std::bad_alloc.
    explicit session_table(const session_table_config& cfg) : cfg_(cfg) {
        if (cfg.capacity == 0 || cfg.capacity >= detail::session_index::second_bit)
            throw std::invalid_argument("session_table: capacity must be between 1 and 2^30 - 1, got " +
                                        std::to_string(cfg.capacity));
        if (!(cfg.max_load > 0.0 && cfg.max_load <= 0.95))
            throw std::invalid_argument("session_table: max_load must be in (0, 0.95], got " + std::to_string(cfg.max_load));
        const double keys = static_cast<double>(cfg.capacity) * (Bidirectional ? 2.0 : 1.0);
        const auto buckets = static_cast<std::uint32_t>(keys / (cfg.max_load * detail::index_bucket::slots)) + 2;
        index_ = detail::session_index(buckets);
        slab_buf_ = detail::big_buffer(cfg.capacity * sizeof(session_type));
        slab_ = static_cast<session_type*>(slab_buf_.data());
        for (std::size_t i = 0; i < cfg.capacity; ++i) {
            new (&slab_[i]) session_type{};
            slab_[i].user = static_cast<std::uint32_t>(i + 1);
        }
        free_head_ = 0;
    }

    [[nodiscard]] std::size_t capacity() const noexcept { return cfg_.capacity; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] const session_stats& stats() const noexcept { return stats_; }
    [[nodiscard]] const session_table_config& config() const noexcept { return cfg_; }

    /// Every byte the table holds (slab, index, huge-page slack, the object) divided by its
    /// capacity: what one session costs when the table is full.
    [[nodiscard]] double bytes_per_session() const noexcept {
        return static_cast<double>(slab_buf_.bytes() + index_.bytes() + sizeof(*this)) /
               static_cast<double>(cfg_.capacity);
    }

    /// The fast path: finds the packet's session and moves it along the TCP lifecycle (or, for
    /// UDP and others, refreshes it), creating it for a SYN (TCP) or any packet (others).
    /// `flags` (the TCP flags byte) is ignored for protocols other than TCP. For a bidirectional table the
    /// direction comes from which key matched; otherwise every packet is from the client.
    /// With `session_create::never` a packet without a session gets `no_session`.
    /// O(1) expected; no allocation, no exception.
    track_result track(const Key& k, std::uint8_t flags, std::uint32_t now,
                       session_create create_policy = session_create::allowed) noexcept {
        const hashed_key h{index_.split(hash(k, cfg_.seed))};
        index_.prefetch_second(h.ih);
        return track(k, h, flags, now, create_policy);
    }

    /// A key's hash, split for the index: what prefetch() returns and the batched forms take.
    struct hashed_key {
        detail::index_hash ih;
    };

    /// Batches, stage 1: hashes `k` and prefetches its index bucket. A dispatcher that holds a
    /// batch of packets (an RX ring block) calls prefetch() for all of them, then
    /// prefetch_session() for all, then track() or find() with the hashed key for each: the
    /// two memory accesses of every lookup overlap with the others' instead of being paid one
    /// after the other (what DPDK's rte_hash_lookup_bulk does). find_batch() does it for you.
    [[nodiscard]] hashed_key prefetch(const Key& k) const noexcept {
        const hashed_key h{index_.split(hash(k, cfg_.seed))};
        index_.prefetch(h.ih);
        return h;
    }

    /// Batches, stage 2: reads the bucket prefetch() fetched and prefetches the sessions whose
    /// tags match.
    void prefetch_session(const hashed_key& h) const noexcept {
        index_.prefetch_positions(h.ih, [this](std::uint32_t pos) {
            const auto* first = reinterpret_cast<const char*>(&slab_[pos & ~detail::session_index::reply_bit]);
            detail::prefetch(first);
            // A session that straddles two cache lines (one in four of 24-byte sessions, half
            // of the 40-byte ones of a NAT table) needs both: the state and clock may sit in
            // the second.
            const char* last = first + sizeof(session_type) - 1;
            if (((reinterpret_cast<std::uintptr_t>(first) ^ reinterpret_cast<std::uintptr_t>(last)) & ~std::uintptr_t{63}) != 0)
                detail::prefetch(last);
        });
    }

    /// track() with the key's hash already worked out (by prefetch()). `h` must be `k`'s.
    /// The common case -- a live session, and for TCP an established one and a segment
    /// without SYN, FIN or RST, which changes no state -- is inlined into the caller; the rest
    /// (state changes, expiry, creation) is a call (track_rest).
    CLUSTERNET_ALWAYS_INLINE track_result track(const Key& k, const hashed_key& h, std::uint8_t flags, std::uint32_t now,
                                                session_create create_policy = session_create::allowed) noexcept {
        const std::uint32_t found = find_position(h.ih, k);
        if (found != detail::session_index::npos) [[likely]] {
            session_type& s = slab_[found & ~detail::session_index::reply_bit];
            if (!expired(s, now) &&
                (k.protocol != ip_protocol::tcp ||
                 (s.state == session_state::established && (flags & (tcp_flags::syn | tcp_flags::fin | tcp_flags::rst)) == 0))) [[likely]] {
                s.last_seen = now;
                const direction dir = (found & detail::session_index::reply_bit) ? direction::from_server : direction::from_client;
                return count({session_verdict::existing, &s, dir});
            }
        }
        return track_rest(k, h, found, flags, now, create_policy);
    }

    /// The live session of a key (either of its keys, for a bidirectional table), or null.
    /// Does not change it. O(1) expected.
    [[nodiscard]] session_type* find(const Key& k, std::uint32_t now) noexcept {
        const hashed_key h{index_.split(hash(k, cfg_.seed))};
        index_.prefetch_second(h.ih);
        return find(k, h, now);
    }

    /// find() with the key's hash already worked out (by prefetch()).
    [[nodiscard]] session_type* find(const Key& k, const hashed_key& h, std::uint32_t now) noexcept {
        const std::uint32_t pos = find_position(h.ih, k);
        if (pos == detail::session_index::npos) return nullptr;
        session_type& s = slab_[pos & ~detail::session_index::reply_bit];
        return expired(s, now) ? nullptr : &s;
    }

    /// find() for many keys: out[i] is the live session of keys[i], or null. Works in groups of
    /// `batch_size` through the three stages above. Precondition: out.size() >= keys.size().
    static constexpr std::size_t batch_size = 32;
    void find_batch(std::span<const Key> keys, std::span<session_type*> out, std::uint32_t now) noexcept {
        std::array<hashed_key, batch_size> h;
        for (std::size_t base = 0; base < keys.size(); base += batch_size) {
            const std::size_t n = std::min(batch_size, keys.size() - base);
            for (std::size_t i = 0; i < n; ++i) h[i] = prefetch(keys[base + i]);
            for (std::size_t i = 0; i < n; ++i) prefetch_session(h[i]);
            for (std::size_t i = 0; i < n; ++i) out[base + i] = find(keys[base + i], h[i], now);
        }
    }

    /// For tests: whether the hash index agrees with the sessions -- every index entry points to
    /// a live slab entry whose key (or reply key) hashes to where the entry sits, the cuckoo
    /// bookkeeping is exact, and the entries number the keys of the sessions. O(capacity).
    [[nodiscard]] bool index_consistent() const {
        bool ok = true;
        const std::size_t entries = index_.audit([&](std::uint32_t pos) {
            const std::uint32_t at = pos & ~detail::session_index::reply_bit;
            if (at >= cfg_.capacity || slab_[at].state == session_state::free) {
                ok = false;
                return detail::index_hash{};
            }
            const session_type& s = slab_[at];
            if constexpr (Bidirectional) {
                if (pos & detail::session_index::reply_bit) {
                    if (!s.has_reply) ok = false;
                    return index_.split(hash(traits::unpack(s.reply, s.protocol), cfg_.seed));
                }
            }
            return index_.split(hash(s.flow(), cfg_.seed));
        });
        if (!ok || entries == detail::session_index::npos) return false;
        std::size_t keys = 0;
        for (std::size_t i = 0; i < cfg_.capacity; ++i) {
            if (slab_[i].state == session_state::free) continue;
            ++keys;
            if constexpr (Bidirectional) keys += slab_[i].has_reply ? 1 : 0;
        }
        return keys == entries;
    }

    /// Adds a session for `k` without a packet (a control plane, a test). Null if the key is
    /// there already or there is no room.
    session_type* insert(const Key& k, session_state st, std::uint32_t now) noexcept {
        const detail::index_hash ih = index_.split(hash(k, cfg_.seed));
        if (!key_free(ih, k, now)) return nullptr;
        return create(ih, k, st, now);
    }

    /// Ends a session now (the caller saw it close, or a back end went away). A session that
    /// has already ended is left alone.
    void erase(session_type* s) noexcept {
        if (s->state == session_state::free) return;
        ++stats_.closed;
        remove(static_cast<std::uint32_t>(s - slab_));
    }

    /// For a bidirectional table: the key of the server's replies (with NAT, the back end's
    /// address and port towards the client's). Replaces an earlier one; true, changing nothing,
    /// if it is the session's reply key already. False if the reply key is another live
    /// session's (or this session's client-side key), or of another protocol than the session's.
    /// A session past its timeout that still holds the key is ended to make way for it.
    bool set_reply(session_type* s, const Key& reply, std::uint32_t now) noexcept
        requires Bidirectional
    {
        if (reply.protocol != s->protocol) return false;
        const auto pos = static_cast<std::uint32_t>(s - slab_);
        const detail::index_hash ih = index_.split(hash(reply, cfg_.seed));
        // The reply key it has already (a reused port, scheduled to the same back end): kept.
        if (s->has_reply && find_position(ih, reply) == (pos | detail::session_index::reply_bit)) return true;
        if (!key_free(ih, reply, now)) return false;
        drop_reply(pos);
        s->reply = traits::pack(reply);
        s->has_reply = true;
        if (!index_.insert(ih, pos | detail::session_index::reply_bit)) {
            ++stats_.index_full;
            s->has_reply = false;
            return false;
        }
        return true;
    }

    /// Sweeps `budget` slab entries for expired sessions and ends them. Call it now and then
    /// (or rely on the sweep each insertion does). O(budget).
    std::size_t expire(std::uint32_t now, std::size_t budget) noexcept {
        std::size_t ended = 0;
        for (std::size_t i = 0; i < budget; ++i) {
            const std::uint32_t pos = sweep_hand_;
            sweep_hand_ = sweep_hand_ + 1 == cfg_.capacity ? 0 : sweep_hand_ + 1;
            session_type& s = slab_[pos];
            if (s.state != session_state::free && expired(s, now)) {
                ++stats_.expired;
                remove(pos);
                ++ended;
            }
        }
        return ended;
    }

    /// Calls f(session&) for every live session. O(capacity).
    template <class F>
    void for_each(F&& f) {
        for (std::size_t i = 0; i < cfg_.capacity; ++i)
            if (slab_[i].state != session_state::free) f(slab_[i]);
    }

    /// Called with every session as it ends -- expired, evicted, erased, or reopened by a
    /// reused port (before its back end is cleared) -- while its fields are still intact, so
    /// that a dispatcher can keep exact per-back-end connection counts (least connections,
    /// draining). Runs once per session end, never per packet. The hook must not call back
    /// into the table. Null (the default) turns it off.
    using end_hook = void (*)(void* context, const session_type& s) noexcept;
    void set_end_hook(end_hook hook, void* context) noexcept {
        end_hook_ = hook;
        end_context_ = context;
    }

    /// True if `s` has outlived its state's timeout at `now`.
    [[nodiscard]] bool expired(const session_type& s, std::uint32_t now) const noexcept {
        return now - s.last_seen > cfg_.timeouts[s.state];
    }

private:
    /// track() past its inlined common case; `found` is find_position()'s answer.
    track_result track_rest(const Key& k, const hashed_key& h, std::uint32_t found, std::uint8_t flags, std::uint32_t now,
                            session_create create_policy) noexcept {
        const detail::index_hash& ih = h.ih;
        const bool tcp = k.protocol == ip_protocol::tcp;
        if (found != detail::session_index::npos) {
            session_type& s = slab_[found & ~detail::session_index::reply_bit];
            const direction dir = (found & detail::session_index::reply_bit) ? direction::from_server : direction::from_client;
            if (!expired(s, now)) {
                s.last_seen = now;
                if (!tcp) return count({session_verdict::existing, &s, dir});
                const tcp_transition t = tcp_next_state(s.state, flags, dir);
                s.state = t.next;
                if (t.reopened) {
                    // The old connection has ended; a new one begins in the same session.
                    if (end_hook_ != nullptr) end_hook_(end_context_, s);
                    s.backend = session_type::no_backend;
                    return count({session_verdict::reopened, &s, dir});
                }
                return count({session_verdict::existing, &s, dir});
            }
            // Expired: it is gone; the packet is judged as if it had found nothing.
            ++stats_.expired;
            remove(static_cast<std::uint32_t>(&s - slab_));
        }
        if (create_policy == session_create::never || (tcp && !((flags & tcp_flags::syn) && !(flags & tcp_flags::ack))))
            return count({session_verdict::no_session, nullptr, direction::from_client});
        session_type* s = create(ih, k, tcp ? session_state::syn_recv : (k.protocol == ip_protocol::udp ? session_state::udp : session_state::other), now);
        if (s == nullptr) return count({session_verdict::table_full, nullptr, direction::from_client});
        return count({session_verdict::created, s, direction::from_client});
    }
    track_result count(track_result r) noexcept {
        ++stats_.verdicts[static_cast<std::size_t>(r.verdict)];
        return r;
    }

    /// True if no live session holds `k`; a session past its timeout that holds it is ended
    /// (lazy expiry, as track() does).
    bool key_free(const detail::index_hash& ih, const Key& k, std::uint32_t now) noexcept {
        const std::uint32_t found = find_position(ih, k);
        if (found == detail::session_index::npos) return true;
        const std::uint32_t pos = found & ~detail::session_index::reply_bit;
        if (!expired(slab_[pos], now)) return false;
        ++stats_.expired;
        remove(pos);
        return true;
    }

    [[nodiscard]] CLUSTERNET_FORCE_INLINE std::uint32_t find_position(const detail::index_hash& ih, const Key& k) const noexcept {
        return index_.find(ih, [&](std::uint32_t pos) {
            const session_type& s = slab_[pos & ~detail::session_index::reply_bit];
            if (s.protocol != k.protocol) return false;
            if constexpr (Bidirectional) {
                if (pos & detail::session_index::reply_bit) return traits::equal(s.reply, k);
            }
            return traits::equal(s.key, k);
        });
    }

    session_type* create(const detail::index_hash& ih, const Key& k, session_state st, std::uint32_t now) noexcept {
        if (cfg_.sweep_per_insert != 0) expire(now, cfg_.sweep_per_insert);
        if (free_head_ == cfg_.capacity && !make_room(now)) return nullptr;
        const std::uint32_t pos = free_head_;
        session_type& s = slab_[pos];
        free_head_ = s.user;
        s = session_type{};
        s.key = traits::pack(k);
        s.protocol = k.protocol;
        s.state = st;
        s.last_seen = now;
        if (!index_.insert(ih, pos)) {
            ++stats_.index_full;
            s.state = session_state::free;
            s.user = free_head_;
            free_head_ = pos;
            return nullptr;
        }
        ++size_;
        return &s;
    }

    /// Frees one slab entry when the table is full: expired first, else the oldest half-open
    /// session of those sampled. False when neither is found within eviction_scan entries.
    bool make_room(std::uint32_t now) noexcept {
        std::uint32_t victim = detail::session_index::npos, victim_age = 0, sampled = 0;
        for (std::uint32_t i = 0; i < cfg_.eviction_scan; ++i) {
            const std::uint32_t pos = evict_hand_;
            evict_hand_ = evict_hand_ + 1 == cfg_.capacity ? 0 : evict_hand_ + 1;
            const session_type& s = slab_[pos];
            if (s.state == session_state::free) continue;
            if (expired(s, now)) {
                ++stats_.expired;
                remove(pos);
                return true;
            }
            if (s.state == session_state::syn_recv) {
                const std::uint32_t age = now - s.last_seen;
                if (victim == detail::session_index::npos || age > victim_age) {
                    victim = pos;
                    victim_age = age;
                }
                if (++sampled == cfg_.eviction_sample) break;
            }
        }
        if (victim == detail::session_index::npos) return false;
        ++stats_.evicted_half_open;
        remove(victim);
        return true;
    }

    void drop_reply(std::uint32_t pos) noexcept {
        if constexpr (Bidirectional) {
            session_type& s = slab_[pos];
            if (s.has_reply) {
                index_.erase(index_.split(hash(traits::unpack(s.reply, s.protocol), cfg_.seed)), pos | detail::session_index::reply_bit);
                s.has_reply = false;
            }
        }
    }

    void remove(std::uint32_t pos) noexcept {
        session_type& s = slab_[pos];
        if (end_hook_ != nullptr) end_hook_(end_context_, s);
        index_.erase(index_.split(hash(s.flow(), cfg_.seed)), pos);
        drop_reply(pos);
        s.state = session_state::free;
        s.user = free_head_;
        free_head_ = pos;
        --size_;
    }

    session_table_config cfg_;
    detail::session_index index_;
    detail::big_buffer slab_buf_;
    session_type* slab_ = nullptr;  // slab_buf_'s memory (sessions are trivially destructible)
    std::uint32_t free_head_ = 0;  ///< first free slab entry; capacity when none
    std::size_t size_ = 0;
    std::uint32_t sweep_hand_ = 0;
    std::uint32_t evict_hand_ = 0;
    session_stats stats_;
    end_hook end_hook_ = nullptr;
    void* end_context_ = nullptr;
};

using session_table4 = session_table<flow_key4>;
using session_table6 = session_table<flow_key6>;
using nat_session_table4 = session_table<flow_key4, true>;

}  // namespace clusternet
