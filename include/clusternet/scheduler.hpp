// clusternet/scheduler.hpp -- the Scheduler concept: pick a back end for a new flow.
//
// A scheduler is a policy object that a dispatcher owns (one per dispatcher thread; none is
// thread-safe, stateful ones keep per-thread cursors, tables or random state). It has two calls:
//
//   s.update(snapshot)       control path: adapt to a new cluster snapshot (rebuild a Maglev table,
//                            a weight table, a bucket map). May allocate and throw. Call it
//                            whenever reader.refresh() returns a snapshot whose generation()
//                            differs from the one last passed (`refresh_scheduler` does that).
//   s.pick(snapshot, input)  fast path: noexcept, no allocation, no lock. Returns the member slot
//                            for the flow, or `no_member` when no member may take it (an empty
//                            cluster, everyone down or draining). Precondition: update() was
//                            last called with a snapshot of the same generation.
//
// A scheduler never returns a member that is not eligible() in the snapshot it was given (up,
// weight > 0): tests/scheduler_conformance_test.cpp checks that, the empty-cluster verdict, weight
// shares and determinism for every policy.
//
// The policies, one header per family (each opens with "available policies / when to use"):
//   schedulers/round_robin.hpp        round_robin, weighted_round_robin (smooth, nginx)
//   schedulers/least_connections.hpp  least_connections, weighted_least_connections,
//                                     shortest_expected_delay, never_queue
//   schedulers/random.hpp             random_choice, weighted_random, power_of_two_choices
//   schedulers/hashing.hpp            source_hash, destination_hash, rendezvous (HRW)
//   schedulers/maglev.hpp             maglev
//   schedulers/dpr.hpp                dpr_threshold (Distributed Packet Rewriting)
//   schedulers/content.hpp            lard (LARD/R), hybrid_affinity (round robin + cache affinity)
#pragma once

#include <clusternet/cluster_view.hpp>
#include <clusternet/flow_key.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace clusternet {

/// What a scheduler knows about the flow it places.
struct pick_input {
    std::uint64_t hash = 0;            ///< the flow's hash (hash(key, seed)); hash policies use it
    const flow_key* key = nullptr;     ///< the 5-tuple, when known (source/destination hash use it)
    std::string_view content{};        ///< a request target (URL, host, TLS session id), for L7 policies
    std::uint64_t now_ns = 0;          ///< a monotonic clock, for policies that age state (LARD)
};

template <class S>
concept Scheduler = requires(S& s, const cluster_snapshot& v, const pick_input& in) {
    { s.pick(v, in) } noexcept -> std::same_as<member_id>;
    { s.update(v) } -> std::same_as<void>;
    { S::name } -> std::convertible_to<std::string_view>;
};

/// Calls s.update(snap) when snap's generation differs from `generation` (and records it).
/// Returns whether it did. For the dispatcher's loop, once per batch after reader.refresh().
template <Scheduler S>
bool refresh_scheduler(S& s, const cluster_snapshot& snap, std::uint64_t& generation) {
    if (snap.generation() == generation) return false;
    s.update(snap);
    generation = snap.generation();
    return true;
}

namespace detail {

/// Maps a 32-bit value uniformly onto [0, n) without a division (Lemire's multiply-shift).
[[nodiscard]] constexpr std::uint32_t fast_range(std::uint32_t x, std::uint32_t n) noexcept {
    return static_cast<std::uint32_t>((std::uint64_t{x} * n) >> 32);
}

/// splitmix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014):
/// one add and a mixer per number; state is one word, so a seeded scheduler is deterministic.
struct split_mix {
    std::uint64_t state = 0;
    constexpr explicit split_mix(std::uint64_t seed = 0) noexcept : state(seed) {}
    constexpr std::uint64_t operator()() noexcept {
        std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
};

/// A uniform double in (0, 1] from 53 bits of x.
[[nodiscard]] constexpr double unit_interval(std::uint64_t x) noexcept {
    return static_cast<double>((x >> 11) + 1) * 0x1.0p-53;
}

/// The flow's generation check, compiled in when CLUSTERNET_ASSERT is active.
struct generation_guard {
    std::uint64_t generation = 0;
    void set(const cluster_snapshot& v) noexcept { generation = v.generation(); }
    [[nodiscard]] bool matches(const cluster_snapshot& v) const noexcept { return generation == v.generation(); }
};

/// Smooth weighted round robin, the algorithm of nginx's ngx_http_upstream_get_peer
/// (src/http/ngx_http_upstream_round_robin.c): each pick adds every member's weight to its
/// running credit, takes the member with the most credit and charges it the total weight. The
/// sequence interleaves members (weights 5,1,1 give a a b a c a a) and gives each exactly its
/// weight share per cycle. O(N) per pick; state: one credit per slot.
class smooth_wrr {
public:
    void update(const cluster_snapshot& v) {
        credit_.resize(v.slot_count(), 0);
        for (std::size_t i = 0; i < credit_.size(); ++i)
            if (!v[static_cast<member_id>(i)].eligible()) credit_[i] = 0;
    }
    [[nodiscard]] member_id next(const cluster_snapshot& v) noexcept {
        member_id best = no_member;
        std::int64_t best_credit = 0;
        const auto e = v.eligible();
        const auto w = v.eligible_weights();
        for (std::size_t i = 0; i < e.size(); ++i) {
            const member_id id = e[i];
            credit_[id] += w[i];
            if (best == no_member || credit_[id] > best_credit) {
                best = id;
                best_credit = credit_[id];
            }
        }
        if (best != no_member) credit_[best] -= static_cast<std::int64_t>(v.total_weight());
        return best;
    }

private:
    std::vector<std::int64_t> credit_;
};

/// Walker's alias method (Vose's construction, "A linear algorithm for generating random numbers
/// with a given distribution", IEEE TSE 1991): weighted sampling in O(1) after an O(N) build.
class alias_table {
public:
    void build(const cluster_snapshot& v) {
        const auto e = v.eligible();
        const std::size_t n = e.size();
        ids_.assign(e.begin(), e.end());
        threshold_.assign(n, 0);
        alias_.assign(n, 0);
        if (n == 0) return;
        std::vector<double> p(n);
        for (std::size_t i = 0; i < n; ++i)
            p[i] = static_cast<double>(v[e[i]].weight) * static_cast<double>(n) / static_cast<double>(v.total_weight());
        std::vector<std::uint32_t> small, large;
        for (std::size_t i = 0; i < n; ++i) (p[i] < 1.0 ? small : large).push_back(static_cast<std::uint32_t>(i));
        while (!small.empty() && !large.empty()) {
            const std::uint32_t s = small.back(), l = large.back();
            small.pop_back();
            threshold_[s] = to_threshold(p[s]);
            alias_[s] = l;
            p[l] = (p[l] + p[s]) - 1.0;
            if (p[l] < 1.0) {
                large.pop_back();
                small.push_back(l);
            }
        }
        for (const std::uint32_t i : large) threshold_[i] = ~std::uint32_t{0}, alias_[i] = i;
        for (const std::uint32_t i : small) threshold_[i] = ~std::uint32_t{0}, alias_[i] = i;
    }
    [[nodiscard]] bool empty() const noexcept { return ids_.empty(); }
    /// One weighted draw from 64 random bits. Precondition: !empty().
    [[nodiscard]] member_id sample(std::uint64_t r) const noexcept {
        const std::uint32_t i = fast_range(static_cast<std::uint32_t>(r >> 32), static_cast<std::uint32_t>(ids_.size()));
        return ids_[static_cast<std::uint32_t>(r) < threshold_[i] ? i : alias_[i]];
    }

private:
    static std::uint32_t to_threshold(double p) noexcept {
        const double t = p * 4294967296.0;
        return t >= 4294967295.0 ? ~std::uint32_t{0} : static_cast<std::uint32_t>(t);
    }
    std::vector<member_id> ids_;
    std::vector<std::uint32_t> threshold_;  // keep column i when the low 32 bits are below it
    std::vector<std::uint32_t> alias_;
};

}  // namespace detail

/// A 64-bit hash of a request target (URL, host name), for content-aware policies: the flow
/// key's multiply-fold mixer over 8-byte words. About 1 ns per 16 bytes.
[[nodiscard]] inline std::uint64_t content_hash(std::string_view s, std::uint64_t seed = detail::default_hash_seed) noexcept {
    std::uint64_t h = seed ^ s.size();
    std::size_t i = 0;
    for (; i + 16 <= s.size(); i += 16) {
        std::uint64_t a, b;
        std::memcpy(&a, s.data() + i, 8);
        std::memcpy(&b, s.data() + i + 8, 8);
        h = detail::hash_words(a, b, h);
    }
    std::uint64_t tail[2] = {0, 0};
    if (s.size() > i) std::memcpy(tail, s.data() + i, s.size() - i);
    return detail::hash_words(tail[0], tail[1], h);
}

}  // namespace clusternet
