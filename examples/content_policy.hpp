// The scheduler of the layer-7 examples (cn-splice, cn-lccp-dispatcher): a content-aware policy
// chosen by name -- "lard" (schedulers/content.hpp, with T_low / T_high), "hybrid" (hybrid
// affinity) -- or any layer-4 policy by name (cluster_dispatch.hpp's any_scheduler).
#pragma once

#include <clusternet/cluster_dispatch.hpp>
#include <clusternet/schedulers/content.hpp>

#include <string>
#include <string_view>
#include <variant>

namespace examples {

class content_policy {
public:
    static constexpr std::string_view name = "content_policy";
    /// Throws std::invalid_argument (any_scheduler) for an unknown name, std::system_error for
    /// LARD thresholds with low > high.
    content_policy(const std::string& policy, double lard_low, double lard_high) : impl_(make(policy, lard_low, lard_high)) {}
    void update(const clusternet::cluster_snapshot& v) {
        std::visit([&](auto& s) { s.update(v); }, impl_);
    }
    clusternet::member_id pick(const clusternet::cluster_snapshot& v, const clusternet::pick_input& in) noexcept {
        return std::visit([&](auto& s) noexcept { return s.pick(v, in); }, impl_);
    }

private:
    using variant = std::variant<clusternet::lard, clusternet::hybrid_affinity, clusternet::any_scheduler>;
    static variant make(const std::string& policy, double low, double high) {
        if (policy == "lard") {
            clusternet::lard_config c;
            c.t_low = low;
            c.t_high = high;
            return clusternet::lard(c);
        }
        if (policy == "hybrid") return clusternet::hybrid_affinity{};
        return clusternet::any_scheduler(policy);
    }
    variant impl_;
};

}  // namespace examples
