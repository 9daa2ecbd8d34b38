// clusternet/schedulers/maglev.hpp -- Maglev consistent hashing.
//
// Available policies / when to use:
//  - maglev (IPVS mh; Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
//    Balancer", NSDI 2016, section 3.4): a lookup table of M entries (M prime, 65537 by default)
//    filled so that every member owns about M/N entries and a membership change moves few of
//    them. Use it when several dispatchers behind ECMP must agree on a flow's back end without
//    sharing state, and when a back end leaving should move only its own flows (plus a little).
//    Keep M >= 100 N: the paper's balance and disruption figures assume it.
//
// Population (the paper's Pseudocode 1): member i has a permutation of the table positions,
// offset_i = h1(key_i) mod M, skip_i = h2(key_i) mod (M - 1) + 1, position j = (offset_i + j skip_i)
// mod M (M prime makes every skip a generator). Members take turns; each claims the next position
// of its permutation that is still empty, until the table is full. Keys come from the member's
// address and port (member_config::key), not its slot, and turns go in key order, so every
// dispatcher builds the same table (member for member) whatever slots it gave the members.
// Weights (the paper: "adjusting the relative frequency of each backend's turns"): in round r a
// member of weight w takes a turn only while it has placed fewer than r * w / max_weight entries.
//
// State: the table (M x 2 bytes, 128 KB for 65537: fits in L2) and the per-member permutation
// cursors used while building. update() rebuilds in O(M log M) expected steps (the
// benchmark reports the time); pick() is one multiply-shift and one load.
#pragma once

#include <clusternet/scheduler.hpp>

#include <algorithm>
#include <string>

namespace clusternet {

class maglev {
public:
    static constexpr std::string_view name = "maglev";
    static constexpr std::uint32_t default_table_size = 65537;

    /// Throws std::system_error(errc::invalid_argument) when table_size is not a prime in
    /// [3, 2^31).
    explicit maglev(std::uint32_t table_size = default_table_size, std::uint64_t seed = detail::default_hash_seed)
        : m_(table_size), seed_(seed) {
        if (!is_prime(table_size) || table_size >= (1U << 31))
            throw std::system_error(make_error_code(errc::invalid_argument),
                                    "maglev: table size " + std::to_string(table_size) +
                                        " is not a prime in [3, 2^31) (65537 and 655373 are)");
    }

    void update(const cluster_snapshot& v) {
        populate(v);
        guard_.set(v);
    }
    [[nodiscard]] member_id pick(const cluster_snapshot& v, const pick_input& in) noexcept {
        CLUSTERNET_ASSERT(guard_.matches(v));
        (void)v;
        if (table_.empty()) return no_member;
        return table_[detail::fast_range(static_cast<std::uint32_t>(in.hash >> 32), m_)];
    }

    /// The lookup table (empty when no member is eligible): entry i is the member of the flows
    /// whose hash maps to i.
    [[nodiscard]] std::span<const member_id> table() const noexcept { return table_; }
    [[nodiscard]] std::uint32_t table_size() const noexcept { return m_; }

    [[nodiscard]] static constexpr bool is_prime(std::uint32_t n) noexcept {
        if (n < 3 || n % 2 == 0) return n == 2;
        for (std::uint32_t d = 3; std::uint64_t{d} * d <= n; d += 2)
            if (n % d == 0) return false;
        return true;
    }

private:
    struct cursor {
        std::uint32_t pos;
        std::uint32_t skip;
        std::uint64_t weight;
        std::uint64_t placed;
        std::uint64_t key;
        member_id id;
    };

    void populate(const cluster_snapshot& v) {
        const auto e = v.eligible();
        if (e.empty()) {
            table_.clear();
            return;
        }
        table_.assign(m_, no_member);
        cur_.clear();
        for (const member_id id : e) {
            const std::uint64_t k = v[id].key;
            const auto offset = static_cast<std::uint32_t>(detail::hash_words(k, 0x6F6666736574ULL, seed_) % m_);
            const auto skip = static_cast<std::uint32_t>(detail::hash_words(k, 0x736B6970ULL, ~seed_) % (m_ - 1) + 1);
            cur_.push_back({offset, skip, v[id].weight, 0, k, id});
        }
        // Turns in key order, not slot order: dispatchers that numbered the same members
        // differently still build tables that agree member for member.
        std::sort(cur_.begin(), cur_.end(), [](const cursor& a, const cursor& b) { return a.key < b.key; });
        const std::uint64_t max_w = v.max_weight();
        const bool uniform = v.uniform_weights();
        member_id* t = table_.data();
        std::uint32_t filled = 0;
        for (std::uint64_t round = 1;; ++round) {
            for (cursor& c : cur_) {
                if (!uniform && c.placed * max_w >= round * c.weight) continue;
                std::uint32_t p = c.pos;
                while (t[p] != no_member) {
                    p += c.skip;
                    if (p >= m_) p -= m_;
                }
                t[p] = c.id;
                p += c.skip;
                c.pos = p >= m_ ? p - m_ : p;
                ++c.placed;
                if (++filled == m_) return;
            }
        }
    }

    std::uint32_t m_;
    std::uint64_t seed_;
    std::vector<member_id> table_;
    std::vector<cursor> cur_;
    detail::generation_guard guard_;
};

}  // namespace clusternet
