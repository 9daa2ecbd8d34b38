// clusternet/schedulers/round_robin.hpp -- round robin and smooth weighted round robin.
//
// Available policies / when to use:
//  - round_robin: members in turn, weights ignored (weight 0 still excludes). The seed papers'
//    default (LCCP, LSMAC/LSNAT, SAPS's listeners). Use when back ends are alike and requests
//    cost about the same. State: one cursor. Cost: O(1).
//  - weighted_round_robin: nginx's smooth weighted round robin; each member gets exactly its
//    weight's share of every cycle of total_weight picks, interleaved (no bursts to the heavy
//    member, unlike IPVS's classic wrr). Use for unequal back ends with short, similar requests.
//    State: a credit per slot. Cost: O(N) per pick (a pass over the eligible members).
// Both are deterministic (no randomness) and ignore the flow: consecutive flows of one client
// land on different members. For affinity use schedulers/hashing.hpp or maglev.hpp.
#pragma once

#include <clusternet/scheduler.hpp>

namespace clusternet {

class round_robin {
public:
    static constexpr std::string_view name = "rr";

    void update(const cluster_snapshot& v) { guard_.set(v); }
    [[nodiscard]] member_id pick(const cluster_snapshot& v, const pick_input&) noexcept {
        CLUSTERNET_ASSERT(guard_.matches(v));
        const auto e = v.eligible();
        if (e.empty()) return no_member;
        if (cursor_ >= e.size()) cursor_ = 0;
        return e[cursor_++];
    }

private:
    std::size_t cursor_ = 0;
    detail::generation_guard guard_;
};

class weighted_round_robin {
public:
    static constexpr std::string_view name = "wrr";

    void update(const cluster_snapshot& v) {
        wrr_.update(v);
        guard_.set(v);
    }
    [[nodiscard]] member_id pick(const cluster_snapshot& v, const pick_input&) noexcept {
        CLUSTERNET_ASSERT(guard_.matches(v));
        return wrr_.next(v);
    }

private:
    detail::smooth_wrr wrr_;
    detail::generation_guard guard_;
};

}  // namespace clusternet
