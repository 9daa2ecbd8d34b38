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
// The paper's population is close to, not exactly, minimal disruption: when a member leaves, the
// freed entries change the order in which the others find free positions, and some of their
// entries move too. Measured (BM_Maglev_Disruption): entries changed = 1.02x the ideal M/N at
// M = 6553 N, 1.5x at M = 655 N, 7x at M = 65 N. Two rebuild modes:
//  - maglev_rebuild::full (default): every update() builds the table from the membership alone,
//    so any two dispatchers with the same members have the same table, whatever their history.
//  - maglev_rebuild::incremental: update() starts from the previous table and moves only what
//    it must. Every member gets a quota (its weight's share of M, remainders by key order);
//    entries of members that left are freed; each member below quota walks its own permutation
//    and claims the first entries that are free or held by a member above quota. A member
//    leaving moves exactly its own entries, one joining takes exactly its quota, and balance is
//    exact to one entry. The table now depends on the order of changes: dispatchers agree when
//    they start from the same membership and apply the same changes (one control plane feeding
//    them all), not when one of them restarts -- a restarted one builds fully and differs.
//
// State: the table (M x 2 bytes, 128 KB for 65537: fits in L2), the per-member permutation
// cursors used while building and, for incremental, each slot's key at the last build.
// update() costs O(M log M) expected steps (the benchmark reports the time); pick() is one
// multiply-shift and one load.
#pragma once

#include <clusternet/scheduler.hpp>

#include <algorithm>
#include <string>

namespace clusternet {

enum class maglev_rebuild : std::uint8_t { full, incremental };

class maglev {
public:
    static constexpr std::string_view name = "maglev";
    static constexpr std::uint32_t default_table_size = 65537;

    /// Throws std::system_error(errc::invalid_argument) when table_size is not a prime in
    /// [3, 2^31).
    explicit maglev(std::uint32_t table_size = default_table_size, std::uint64_t seed = detail::default_hash_seed,
                    maglev_rebuild mode = maglev_rebuild::full)
        : m_(table_size), seed_(seed), mode_(mode) {
        if (table_size < 3 || !is_prime(table_size) || table_size >= (1U << 31))
            throw std::system_error(make_error_code(errc::invalid_argument),
                                    "maglev: table size " + std::to_string(table_size) +
                                        " is not a prime in [3, 2^31) (65537 and 655373 are)");
    }

    void update(const cluster_snapshot& v) {
        if (mode_ == maglev_rebuild::incremental && !table_.empty() && !v.eligible().empty())
            rebalance(v);
        else
            populate(v);
        owner_key_.assign(v.slot_count(), 0);
        for (const member_id id : v.eligible()) owner_key_[id] = v[id].key;
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
        std::uint64_t quota = 0;
    };

    /// Cursors for the eligible members, in key order (the order of turns).
    void make_cursors(const cluster_snapshot& v) {
        cur_.clear();
        for (const member_id id : v.eligible()) {
            const std::uint64_t k = v[id].key;
            const auto offset = static_cast<std::uint32_t>(detail::hash_words(k, 0x6F6666736574ULL, seed_) % m_);
            const auto skip = static_cast<std::uint32_t>(detail::hash_words(k, 0x736B6970ULL, ~seed_) % (m_ - 1) + 1);
            cur_.push_back({offset, skip, v[id].weight, 0, k, id});
        }
        // Turns in key order, not slot order: dispatchers that numbered the same members
        // differently still build tables that agree member for member.
        std::sort(cur_.begin(), cur_.end(), [](const cursor& a, const cursor& b) { return a.key < b.key; });
    }

    /// The next position of c's permutation at or after its cursor.
    void advance(cursor& c) const noexcept {
        c.pos += c.skip;
        if (c.pos >= m_) c.pos -= m_;
    }

    void populate(const cluster_snapshot& v) {
        if (v.eligible().empty()) {
            table_.clear();
            return;
        }
        table_.assign(m_, no_member);
        make_cursors(v);
        const std::uint64_t max_w = v.max_weight();
        const bool uniform = v.uniform_weights();
        member_id* t = table_.data();
        std::uint32_t filled = 0;
        for (std::uint64_t round = 1;; ++round) {
            for (cursor& c : cur_) {
                if (!uniform && c.placed * max_w >= round * c.weight) continue;
                while (t[c.pos] != no_member) advance(c);
                t[c.pos] = c.id;
                advance(c);
                ++c.placed;
                if (++filled == m_) return;
            }
        }
    }

    void rebalance(const cluster_snapshot& v) {
        make_cursors(v);
        // Quotas: floor of the weight share, the remainder one each in key order.
        std::uint64_t given = 0;
        for (cursor& c : cur_) given += c.quota = std::uint64_t{m_} * c.weight / v.total_weight();
        for (std::size_t i = 0; given < m_; ++i, ++given) ++cur_[i % cur_.size()].quota;
        // Which cursor owns each slot (members that left, or whose slot now holds another
        // member, own nothing: their entries are freed), and current counts.
        std::vector<std::uint32_t> owner_of(v.slot_count(), ~std::uint32_t{0});
        for (std::uint32_t i = 0; i < cur_.size(); ++i)
            if (cur_[i].id < owner_key_.size() && owner_key_[cur_[i].id] == cur_[i].key) owner_of[cur_[i].id] = i;
        member_id* t = table_.data();
        for (std::uint32_t p = 0; p < m_; ++p) {
            if (t[p] == no_member) continue;
            const std::uint32_t o = t[p] < owner_of.size() ? owner_of[t[p]] : ~std::uint32_t{0};
            if (o == ~std::uint32_t{0})
                t[p] = no_member;
            else
                ++cur_[o].placed;
        }
        for (std::uint32_t i = 0; i < cur_.size(); ++i) owner_of[cur_[i].id] = i;  // new members too
        // Members below quota claim, in turns, the first free or over-quota entries of their
        // permutations.
        for (bool more = true; more;) {
            more = false;
            for (std::uint32_t i = 0; i < cur_.size(); ++i) {
                cursor& c = cur_[i];
                if (c.placed >= c.quota) continue;
                for (;; advance(c)) {
                    const member_id held = t[c.pos];
                    if (held == no_member) break;
                    cursor& h = cur_[owner_of[held]];
                    if (h.placed > h.quota) {
                        --h.placed;
                        break;
                    }
                }
                t[c.pos] = c.id;
                advance(c);
                more |= ++c.placed < c.quota;
            }
        }
    }

    std::uint32_t m_;
    std::uint64_t seed_;
    maglev_rebuild mode_;
    std::vector<member_id> table_;
    std::vector<cursor> cur_;
    std::vector<std::uint64_t> owner_key_;  // per slot: the key of its member at the last build
    detail::generation_guard guard_;
};

}  // namespace clusternet
