// clusternet/schedulers/least_connections.hpp -- connection-count policies (IPVS lc, wlc, sed, nq).
//
// They read each eligible member's live-flow count from the cluster view (the dispatchers'
// flow_opened / flow_closed calls, see cluster_view.hpp): a dispatcher that does not report flow
// ends makes them degrade to "fewest flows ever".
//
// Available policies / when to use:
//  - least_connections (IPVS lc): the member with the fewest live flows, weights ignored. For
//    long and uneven connections on alike back ends.
//  - weighted_least_connections (IPVS wlc, the usual choice): the fewest live flows per unit of
//    weight, C_i / W_i.
//  - shortest_expected_delay (IPVS sed; Nelson and Towsley): the smallest (C_i + 1) / W_i, the
//    delay the new flow would see; prefers big members when all are lightly loaded.
//  - never_queue (IPVS nq): an idle member (C_i == 0) if there is one, else sed. Never queues a
//    flow behind another while some member sits idle.
// State: a rotating start index, so that ties spread over members instead of piling on the
// lowest slot. Cost: O(N) per pick, one relaxed load per member (4 bytes each, contiguous).
// Deterministic given the same counts. Ratios are compared by cross-multiplication in 64 bits
// (C_a * W_b < C_b * W_a), as IPVS does: no division, no floating point.
#pragma once

#include <clusternet/scheduler.hpp>

namespace clusternet {

namespace detail {

enum class conn_rule : std::uint8_t { lc, wlc, sed, nq };

template <conn_rule Rule>
class connection_scheduler {
public:
    void update(const cluster_snapshot& v) { guard_.set(v); }
    [[nodiscard]] member_id pick(const cluster_snapshot& v, const pick_input&) noexcept {
        CLUSTERNET_ASSERT(guard_.matches(v));
        const auto e = v.eligible();
        const auto weights = v.eligible_weights();
        const std::size_t n = e.size();
        if (n == 0) return no_member;
        if (start_ >= n) start_ = 0;
        std::size_t i = start_;
        member_id best = no_member;
        std::uint64_t best_c = 0, best_w = 1;
        for (std::size_t k = 0; k < n; ++k, i = (i + 1 == n ? 0 : i + 1)) {
            const member_id id = e[i];
            const std::uint64_t c = v.live_flows(id);
            if constexpr (Rule == conn_rule::nq) {
                if (c == 0) {
                    best = id;
                    break;
                }
            }
            const std::uint64_t w = Rule == conn_rule::lc ? 1 : weights[i];
            const std::uint64_t cost = Rule == conn_rule::sed || Rule == conn_rule::nq ? c + 1 : c;
            if (best == no_member || cost * best_w < best_c * w) {
                best = id;
                best_c = cost;
                best_w = w;
            }
        }
        if (++start_ >= n) start_ = 0;
        return best;
    }

private:
    std::size_t start_ = 0;
    generation_guard guard_;
};

}  // namespace detail

class least_connections : public detail::connection_scheduler<detail::conn_rule::lc> {
public:
    static constexpr std::string_view name = "lc";
};
class weighted_least_connections : public detail::connection_scheduler<detail::conn_rule::wlc> {
public:
    static constexpr std::string_view name = "wlc";
};
class shortest_expected_delay : public detail::connection_scheduler<detail::conn_rule::sed> {
public:
    static constexpr std::string_view name = "sed";
};
class never_queue : public detail::connection_scheduler<detail::conn_rule::nq> {
public:
    static constexpr std::string_view name = "nq";
};

}  // namespace clusternet
