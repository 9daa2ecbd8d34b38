// clusternet/schedulers/random.hpp -- random, weighted random, power of two choices.
//
// Available policies / when to use:
//  - random_choice: a uniformly random eligible member. Many independent dispatchers with no
//    shared state (DPR's "random" policy of its Table 1). Cost O(1).
//  - weighted_random: a member with probability proportional to its weight, through Walker's
//    alias table (built by update(), O(N); a pick is O(1): one random number, two loads).
//  - power_of_two_choices (IPVS twos; Mitzenmacher, "The power of two choices in randomized load
//    balancing", IEEE TPDS 2001): draw two members (weighted), take the one with fewer live flows
//    per unit of weight. Nearly least-connections balance at O(1) cost, and no herd behaviour
//    when counts are stale. Cost: two draws, two counter loads.
// State: a splitmix64 generator (one word), seeded by the constructor: the same seed and the
// same calls give the same picks. Give each dispatcher thread its own seed.
#pragma once

#include <clusternet/scheduler.hpp>

namespace clusternet {

class random_choice {
public:
    static constexpr std::string_view name = "random";

    explicit random_choice(std::uint64_t seed = 1) noexcept : rng_(seed) {}
    void update(const cluster_snapshot& v) { guard_.set(v); }
    [[nodiscard]] member_id pick(const cluster_snapshot& v, const pick_input&) noexcept {
        CLUSTERNET_ASSERT(guard_.matches(v));
        const auto e = v.eligible();
        if (e.empty()) return no_member;
        return e[detail::fast_range(static_cast<std::uint32_t>(rng_() >> 32), static_cast<std::uint32_t>(e.size()))];
    }

private:
    detail::split_mix rng_;
    detail::generation_guard guard_;
};

namespace detail {
/// What weighted_random and power_of_two_choices share: a seeded generator and an alias table
/// rebuilt by update().
class weighted_sampler {
public:
    explicit weighted_sampler(std::uint64_t seed) noexcept : rng_(seed) {}
    void update(const cluster_snapshot& v) {
        table_.build(v);
        guard_.set(v);
    }

protected:
    /// One weighted draw, or no_member when nothing is eligible.
    [[nodiscard]] member_id draw(const cluster_snapshot& v) noexcept {
        CLUSTERNET_ASSERT(guard_.matches(v));
        (void)v;
        return table_.empty() ? no_member : table_.sample(rng_());
    }

private:
    split_mix rng_;
    alias_table table_;
    generation_guard guard_;
};
}  // namespace detail

class weighted_random : public detail::weighted_sampler {
public:
    static constexpr std::string_view name = "wrandom";

    explicit weighted_random(std::uint64_t seed = 1) noexcept : weighted_sampler(seed) {}
    [[nodiscard]] member_id pick(const cluster_snapshot& v, const pick_input&) noexcept { return draw(v); }
};

class power_of_two_choices : public detail::weighted_sampler {
public:
    static constexpr std::string_view name = "twos";

    explicit power_of_two_choices(std::uint64_t seed = 1) noexcept : weighted_sampler(seed) {}
    [[nodiscard]] member_id pick(const cluster_snapshot& v, const pick_input&) noexcept {
        const member_id a = draw(v);
        if (a == no_member) return no_member;
        member_id b = draw(v);
        if (b == a && v.eligible().size() > 1) b = draw(v);  // one retry: rarely the same twice
        const std::uint64_t ca = v.live_flows(a), cb = v.live_flows(b);
        return cb * v[a].weight < ca * v[b].weight ? b : a;
    }
};

}  // namespace clusternet
