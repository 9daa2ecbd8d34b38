// clusternet/schedulers/hashing.hpp -- source hash, destination hash, rendezvous hashing.
//
// Available policies / when to use:
//  - source_hash (IPVS sh): the client's address picks a bucket of a weighted bucket table, so a
//    client keeps its back end across connections (session affinity without a session table:
//    HTTP sessions, TLS session reuse) for as long as the membership stays the same. Any change
//    reshuffles most buckets (use maglev.hpp when that matters).
//  - destination_hash (IPVS dh): the same keyed on the destination address, for caches and
//    transparent proxies where each origin should map to one cache.
//    Both: state is a table of `buckets` member ids (default 4096, 8 KB) filled in update() by
//    smooth weighted round robin, so each member owns buckets in proportion to its weight.
//    Cost: one address hash and one load. Without a flow key they use pick_input::hash.
//  - rendezvous (highest random weight; Thaler and Ravishankar, "Using name-based mappings to
//    increase hit rates", IEEE/ACM ToN 1998): every member scores hash(flow, member key), the
//    highest wins. Minimal disruption (only the flows of a leaving member move) and no table, at
//    O(N) per pick. Weights use the logarithmic method (score = -ln(u) / w, lowest wins; Resch,
//    "New hashing algorithms for data caching", 2015), which keeps shares proportional to weight.
//    Use for small N, or when memory for a Maglev table is not there. State: a copy of the
//    eligible members' keys and 1/weight.
// All are pure functions of the flow and the snapshot: deterministic, the same on every
// dispatcher that shares the seed.
#pragma once

#include <clusternet/scheduler.hpp>

#include <cmath>
#include <stdexcept>

namespace clusternet {

namespace detail {

enum class address_side : std::uint8_t { source, destination };

template <address_side Side>
class address_hash_scheduler {
public:
    /// Throws std::system_error(errc::invalid_argument) when buckets is 0 or above 2^24.
    explicit address_hash_scheduler(std::size_t buckets = 4096, std::uint64_t seed = default_hash_seed)
        : buckets_(buckets), seed_(seed) {
        if (buckets == 0 || buckets > (std::size_t{1} << 24))
            throw std::system_error(make_error_code(errc::invalid_argument),
                                    "address hash scheduler: buckets must be 1 to 16777216");
    }
    void update(const cluster_snapshot& v) {
        table_.assign(v.eligible().empty() ? 0 : buckets_, no_member);
        smooth_wrr wrr;
        wrr.update(v);
        for (member_id& b : table_) b = wrr.next(v);
        guard_.set(v);
    }
    [[nodiscard]] member_id pick(const cluster_snapshot& v, const pick_input& in) noexcept {
        CLUSTERNET_ASSERT(guard_.matches(v));
        (void)v;
        if (table_.empty()) return no_member;
        std::uint64_t h = in.hash;
        if (in.key != nullptr) {
            const ipv6_address& a = Side == address_side::source ? in.key->src : in.key->dst;
            h = hash_words(load_native<std::uint64_t>(a.bytes.data()), load_native<std::uint64_t>(a.bytes.data() + 8),
                           seed_);
        }
        return table_[fast_range(static_cast<std::uint32_t>(h >> 32), static_cast<std::uint32_t>(table_.size()))];
    }

private:
    std::size_t buckets_;
    std::uint64_t seed_;
    std::vector<member_id> table_;
    generation_guard guard_;
};

}  // namespace detail

class source_hash : public detail::address_hash_scheduler<detail::address_side::source> {
public:
    static constexpr std::string_view name = "sh";
    using address_hash_scheduler::address_hash_scheduler;
};

class destination_hash : public detail::address_hash_scheduler<detail::address_side::destination> {
public:
    static constexpr std::string_view name = "dh";
    using address_hash_scheduler::address_hash_scheduler;
};

class rendezvous {
public:
    static constexpr std::string_view name = "hrw";

    explicit rendezvous(std::uint64_t seed = detail::default_hash_seed) noexcept : seed_(seed) {}
    void update(const cluster_snapshot& v) {
        members_.clear();
        for (const member_id id : v.eligible())
            members_.push_back({v[id].key, 1.0 / static_cast<double>(v[id].weight), id});
        uniform_ = v.uniform_weights();
        guard_.set(v);
    }
    [[nodiscard]] member_id pick(const cluster_snapshot& v, const pick_input& in) noexcept {
        CLUSTERNET_ASSERT(guard_.matches(v));
        (void)v;
        member_id best = no_member;
        if (uniform_) {
            std::uint64_t best_s = 0;
            for (const entry& m : members_) {
                const std::uint64_t s = detail::hash_words(in.hash, m.key, seed_);
                if (best == no_member || s > best_s) best = m.id, best_s = s;
            }
        } else {
            double best_s = 0;
            for (const entry& m : members_) {
                const double s = -std::log(detail::unit_interval(detail::hash_words(in.hash, m.key, seed_))) * m.inv_weight;
                if (best == no_member || s < best_s) best = m.id, best_s = s;
            }
        }
        return best;
    }

private:
    struct entry {
        std::uint64_t key;
        double inv_weight;
        member_id id;
    };
    std::uint64_t seed_;
    std::vector<entry> members_;
    bool uniform_ = true;
    detail::generation_guard guard_;
};

}  // namespace clusternet
