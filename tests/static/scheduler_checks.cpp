// Compile-time checks of the Scheduler concept: every policy models it; a pick that may throw,
// returns something else than a member_id, or lacks update() does not.
#include <clusternet/schedulers/content.hpp>
#include <clusternet/schedulers/dpr.hpp>
#include <clusternet/schedulers/hashing.hpp>
#include <clusternet/schedulers/least_connections.hpp>
#include <clusternet/schedulers/maglev.hpp>
#include <clusternet/schedulers/random.hpp>
#include <clusternet/schedulers/round_robin.hpp>

#include <clusternet/session_table.hpp>

#include <type_traits>

namespace cn = clusternet;

static_assert(cn::Scheduler<cn::round_robin>);
static_assert(cn::Scheduler<cn::weighted_round_robin>);
static_assert(cn::Scheduler<cn::least_connections>);
static_assert(cn::Scheduler<cn::weighted_least_connections>);
static_assert(cn::Scheduler<cn::shortest_expected_delay>);
static_assert(cn::Scheduler<cn::never_queue>);
static_assert(cn::Scheduler<cn::random_choice>);
static_assert(cn::Scheduler<cn::weighted_random>);
static_assert(cn::Scheduler<cn::power_of_two_choices>);
static_assert(cn::Scheduler<cn::source_hash>);
static_assert(cn::Scheduler<cn::destination_hash>);
static_assert(cn::Scheduler<cn::rendezvous>);
static_assert(cn::Scheduler<cn::maglev>);
static_assert(cn::Scheduler<cn::dpr_threshold>);
static_assert(cn::Scheduler<cn::lard>);
static_assert(cn::Scheduler<cn::hybrid_affinity>);

namespace scheduler_checks {  // named: clang warns on unused members of anonymous types
struct throwing_pick {
    static constexpr std::string_view name = "x";
    void update(const cn::cluster_snapshot&) {}
    cn::member_id pick(const cn::cluster_snapshot&, const cn::pick_input&) { return 0; }  // not noexcept
};
struct wrong_result {
    static constexpr std::string_view name = "x";
    void update(const cn::cluster_snapshot&) {}
    int pick(const cn::cluster_snapshot&, const cn::pick_input&) noexcept { return 0; }
};
struct no_update {
    static constexpr std::string_view name = "x";
    cn::member_id pick(const cn::cluster_snapshot&, const cn::pick_input&) noexcept { return 0; }
};
}  // namespace scheduler_checks
static_assert(!cn::Scheduler<scheduler_checks::throwing_pick>);
static_assert(!cn::Scheduler<scheduler_checks::wrong_result>);
static_assert(!cn::Scheduler<scheduler_checks::no_update>);

// The "no back end" verdict is the session table's: a flow's back end is stored as-is.
static_assert(cn::no_member == cn::session4::no_backend);
static_assert(std::is_same_v<cn::member_id, decltype(cn::session4::backend)>);
static_assert(cn::maglev::is_prime(65537) && cn::maglev::is_prime(655373) && !cn::maglev::is_prime(65535));
static_assert(cn::detail::fast_range(0xFFFFFFFFU, 10) == 9);
