// clusternet/schedulers/content.hpp -- content-aware policies: LARD and hybrid cache affinity.
//
// Both key on the request target (pick_input::content: a URL, a host name, a TLS session id);
// without one they key on the flow hash. They are for layer-7 front ends (TCP splicing, TCP
// handoff) that read the request before choosing, so that each back end's cache holds a part of
// the working set instead of all of it.
//
// Available policies / when to use:
//  - lard (Pai et al., "Locality-Aware Request Distribution in Cluster-based Network Servers",
//    ASPLOS 1998, section 2.3, LARD with replication): each target maps to a server set. A
//    request goes to the least-loaded member of its target's set; the set grows by the
//    least-loaded member of the cluster when that member is overloaded (load > T_high while some
//    member is below T_low, or load >= 2 T_high) and shrinks by its most loaded member when it
//    has not changed for K seconds. Load = live flows (active connections, as in the paper),
//    scaled by max_weight / weight. The paper's values: T_low 25, T_high 65, K 20 s. Use for
//    content whose working set exceeds one server's cache.
//  - hybrid_affinity (the "hybrid round robin + cache" method asked for in seeds/002, section V):
//    a target goes back to the member that served it last (whose cache or TLS session cache is
//    warm), unless that member is gone or its load is at `max_load`; new targets and refused
//    hits go to smooth weighted round robin. Without content it keys on the client's source
//    address, giving TLS session reuse per client. Cheaper than LARD (no set, no scan) and
//    simpler to reason about; use when one member per target is enough.
//
// State (both): a direct-mapped table of `table_size` entries (a power of two) indexed by the
// target's hash; a colliding target takes the entry over (its old target loses its affinity,
// never correctness). lard entries hold up to lard::max_set members (40 bytes each); hybrid
// entries 16 bytes. Fixed at update() time; pick() never allocates. Cost: lard O(set) per pick,
// O(N) when the set must grow or is new; hybrid O(1) on a hit, O(N) (round robin) on a miss.
// Deterministic: no randomness.
#pragma once

#include <clusternet/scheduler.hpp>

#include <array>

namespace clusternet {

namespace detail {
inline void check_table_size(std::size_t n, const char* who) {
    if (n == 0 || (n & (n - 1)) != 0 || n > (std::size_t{1} << 24))
        throw std::system_error(make_error_code(errc::invalid_argument),
                                std::string(who) + ": table_size must be a power of two up to 2^24, got " +
                                    std::to_string(n));
}
[[nodiscard]] inline std::uint64_t target_tag(const pick_input& in, std::uint64_t seed) noexcept {
    const std::uint64_t t = in.content.empty() ? in.hash : content_hash(in.content, seed);
    return t == 0 ? 1 : t;
}
}  // namespace detail

struct lard_config {
    double t_low = 25;              ///< T_low: a member below it may take a replica
    double t_high = 65;             ///< T_high: a set member above it asks for a replica
    std::uint64_t k_ns = 20'000'000'000;  ///< K: a set unchanged this long loses its most loaded member
    std::size_t table_size = 4096;  ///< targets remembered (power of two)
    std::uint64_t seed = detail::default_hash_seed;
};

class lard {
public:
    static constexpr std::string_view name = "lard";
    static constexpr std::size_t max_set = 8;

    /// Throws std::system_error(errc::invalid_argument) for a table_size that is not a power of
    /// two up to 2^24, or thresholds with t_low > t_high.
    explicit lard(const lard_config& c = {}) : cfg_(c) {
        detail::check_table_size(c.table_size, "lard");
        if (!(c.t_low >= 0 && c.t_low <= c.t_high))
            throw std::system_error(make_error_code(errc::invalid_argument), "lard: need 0 <= t_low <= t_high");
    }

    void update(const cluster_snapshot& v) {
        if (table_.size() != cfg_.table_size) table_.assign(cfg_.table_size, entry{});
        guard_.set(v);
    }

    [[nodiscard]] member_id pick(const cluster_snapshot& v, const pick_input& in) noexcept {
        CLUSTERNET_ASSERT(guard_.matches(v));
        if (v.eligible().empty()) return no_member;
        const std::uint64_t tag = detail::target_tag(in, cfg_.seed);
        entry& e = table_[tag & (table_.size() - 1)];
        if (e.tag != tag) e = entry{tag, in.now_ns, 0, {}};
        // Members that left or stopped taking flows leave the set.
        std::uint8_t kept = 0;
        for (std::uint8_t i = 0; i < e.size; ++i)
            if (v.is_eligible(e.set[i])) e.set[kept++] = e.set[i];
        bool changed = kept != e.size;
        e.size = kept;
        if (e.size == 0) {
            const member_id n = least_loaded(v);
            e.set[0] = n;
            e.size = 1;
            e.last_mod_ns = in.now_ns;
            return n;
        }
        std::uint8_t ni = 0, mi = 0;
        double nl = load(v, e.set[0]), ml = nl;
        for (std::uint8_t i = 1; i < e.size; ++i) {
            const double l = load(v, e.set[i]);
            if (l < nl) ni = i, nl = l;
            if (l > ml) mi = i, ml = l;
        }
        if (mi == ni && e.size > 1) mi = ni == 0 ? 1 : 0;  // all equal: shed any other member
        member_id n = e.set[ni];
        if (nl > cfg_.t_high && e.size < max_set) {
            const member_id p = least_loaded(v);
            const double pl = load(v, p);
            if (((nl > cfg_.t_high && pl < cfg_.t_low) || nl >= 2 * cfg_.t_high) && !contains(e, p)) {
                e.set[e.size++] = p;
                n = p;
                changed = true;
            }
        }
        if (e.size > 1 && in.now_ns - e.last_mod_ns > cfg_.k_ns && e.set[mi] != n) {
            e.set[mi] = e.set[--e.size];
            changed = true;
        }
        if (changed) e.last_mod_ns = in.now_ns;
        return n;
    }

    /// The server set of a target (for tests and monitoring): empty when the target is unknown.
    [[nodiscard]] std::span<const member_id> server_set(const pick_input& in) const noexcept {
        if (table_.empty()) return {};
        const std::uint64_t tag = detail::target_tag(in, cfg_.seed);
        const entry& e = table_[tag & (table_.size() - 1)];
        return e.tag == tag ? std::span<const member_id>(e.set.data(), e.size) : std::span<const member_id>{};
    }

private:
    struct entry {
        std::uint64_t tag = 0;
        std::uint64_t last_mod_ns = 0;
        std::uint8_t size = 0;
        std::array<member_id, max_set> set{};
    };
    [[nodiscard]] static double load(const cluster_snapshot& v, member_id id) noexcept {
        return static_cast<double>(v.live_flows(id)) * v.max_weight() / v[id].weight;
    }
    [[nodiscard]] static bool contains(const entry& e, member_id id) noexcept {
        for (std::uint8_t i = 0; i < e.size; ++i)
            if (e.set[i] == id) return true;
        return false;
    }
    /// The least-loaded eligible member; the scan starts at a rotating index so ties spread.
    [[nodiscard]] member_id least_loaded(const cluster_snapshot& v) noexcept {
        const auto el = v.eligible();
        if (start_ >= el.size()) start_ = 0;
        std::size_t i = start_;
        member_id best = el[i];
        double best_l = load(v, best);
        for (std::size_t k = 1; k < el.size(); ++k) {
            i = i + 1 == el.size() ? 0 : i + 1;
            const double l = load(v, el[i]);
            if (l < best_l) best = el[i], best_l = l;
        }
        if (++start_ >= el.size()) start_ = 0;
        return best;
    }

    lard_config cfg_;
    std::vector<entry> table_;
    std::size_t start_ = 0;
    detail::generation_guard guard_;
};

struct hybrid_affinity_config {
    double max_load = 64;           ///< a member at this many live flows (per max-weight unit) refuses hits
    std::size_t table_size = 4096;  ///< targets remembered (power of two)
    std::uint64_t seed = detail::default_hash_seed;
};

class hybrid_affinity {
public:
    static constexpr std::string_view name = "hybrid";

    /// Throws std::system_error(errc::invalid_argument) for a table_size that is not a power of
    /// two up to 2^24.
    explicit hybrid_affinity(const hybrid_affinity_config& c = {}) : cfg_(c) {
        detail::check_table_size(c.table_size, "hybrid_affinity");
    }

    void update(const cluster_snapshot& v) {
        if (table_.size() != cfg_.table_size) table_.assign(cfg_.table_size, entry{});
        wrr_.update(v);
        guard_.set(v);
    }

    [[nodiscard]] member_id pick(const cluster_snapshot& v, const pick_input& in) noexcept {
        CLUSTERNET_ASSERT(guard_.matches(v));
        std::uint64_t tag;
        if (in.content.empty() && in.key != nullptr) {
            const ipv6_address& a = in.key->src;
            tag = detail::hash_words(load_native<std::uint64_t>(a.bytes.data()),
                                     load_native<std::uint64_t>(a.bytes.data() + 8), cfg_.seed) | 1;
        } else {
            tag = detail::target_tag(in, cfg_.seed);
        }
        entry& e = table_[tag & (table_.size() - 1)];
        if (e.tag == tag && v.is_eligible(e.member) &&
            static_cast<double>(v.live_flows(e.member)) * v.max_weight() / v[e.member].weight < cfg_.max_load) {
            ++hits_;
            return e.member;
        }
        const member_id m = wrr_.next(v);
        if (m != no_member) e = entry{tag, m};
        return m;
    }

    /// Picks served by affinity (for tests and counters).
    [[nodiscard]] std::uint64_t hits() const noexcept { return hits_; }

private:
    struct entry {
        std::uint64_t tag = 0;
        member_id member = no_member;
    };
    hybrid_affinity_config cfg_;
    std::vector<entry> table_;
    detail::smooth_wrr wrr_;
    std::uint64_t hits_ = 0;
    detail::generation_guard guard_;
};

}  // namespace clusternet
