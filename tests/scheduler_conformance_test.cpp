// The Scheduler conformance suite: every policy, the same promises (scheduler.hpp).
//  - it never picks a member that is down, draining, removed or at weight 0;
//  - with no eligible member it says no_member;
//  - over many flows, each member's share follows its weight (or is equal, for the policies
//    that ignore weights), within a tolerance that holds for 20000 flows;
//  - it is deterministic: the same seed and inputs give the same picks;
//  - it follows membership changes (a new member gets flows).
// Each pick is followed by flow_opened, as a dispatcher does, so that connection-aware policies
// see the flows they placed.
#include <clusternet/schedulers/content.hpp>
#include <clusternet/schedulers/dpr.hpp>
#include <clusternet/schedulers/hashing.hpp>
#include <clusternet/schedulers/least_connections.hpp>
#include <clusternet/schedulers/maglev.hpp>
#include <clusternet/schedulers/random.hpp>
#include <clusternet/schedulers/round_robin.hpp>

#include "support/cluster_fixture.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <vector>

using namespace clusternet;
using clusternet::test::flow_stream;
using clusternet::test::make_view;

namespace {

enum class share_model { weighted, equal };

/// How the suite builds each policy (`make(seed)`), its share model, and whether it draws random
/// numbers (then two seeds must give two sequences).
template <share_model Shares, bool Randomised = false>
struct traits {
    static constexpr share_model shares = Shares;
    static constexpr bool randomised = Randomised;
};
template <class S>
struct policy;
template <class S>
struct seeded {  // policies whose constructor takes the seed alone
    static S make(std::uint64_t seed) { return S(seed); }
};
template <class S>
struct plain {  // policies without randomness or configuration
    static S make(std::uint64_t) { return S{}; }
};

template <> struct policy<round_robin> : plain<round_robin>, traits<share_model::equal> {};
template <> struct policy<weighted_round_robin> : plain<weighted_round_robin>, traits<share_model::weighted> {};
template <> struct policy<least_connections> : plain<least_connections>, traits<share_model::equal> {};
template <> struct policy<weighted_least_connections> : plain<weighted_least_connections>, traits<share_model::weighted> {};
template <> struct policy<shortest_expected_delay> : plain<shortest_expected_delay>, traits<share_model::weighted> {};
template <> struct policy<never_queue> : plain<never_queue>, traits<share_model::weighted> {};
template <> struct policy<random_choice> : seeded<random_choice>, traits<share_model::equal, true> {};
template <> struct policy<weighted_random> : seeded<weighted_random>, traits<share_model::weighted, true> {};
template <> struct policy<power_of_two_choices> : seeded<power_of_two_choices>, traits<share_model::weighted, true> {};
template <> struct policy<rendezvous> : seeded<rendezvous>, traits<share_model::weighted> {};
template <> struct policy<source_hash> : traits<share_model::weighted> {
    static source_hash make(std::uint64_t seed) { return source_hash(4096, seed); }
};
template <> struct policy<destination_hash> : traits<share_model::weighted> {
    static destination_hash make(std::uint64_t seed) { return destination_hash(4096, seed); }
};
template <> struct policy<maglev> : traits<share_model::weighted> {
    static maglev make(std::uint64_t seed) { return maglev(maglev::default_table_size, seed); }
};
struct maglev_incremental : maglev {
    explicit maglev_incremental(std::uint64_t seed) : maglev(default_table_size, seed, maglev_rebuild::incremental) {}
};
template <> struct policy<maglev_incremental> : seeded<maglev_incremental>, traits<share_model::weighted> {};
template <dpr_choice Choice>
struct dpr_policy : dpr_threshold {
    using dpr_threshold::dpr_threshold;
};
template <dpr_choice Choice>
struct policy<dpr_policy<Choice>> : traits<share_model::weighted, Choice == dpr_choice::inverse_load> {
    static dpr_policy<Choice> make(std::uint64_t seed) {
        dpr_config c;
        c.self = 0;  // the host itself is slot 0
        c.max_load = 4;
        c.choice = Choice;
        c.metric = dpr_metric::live_flows;
        c.seed = seed;
        return dpr_policy<Choice>(c);
    }
};
template <> struct policy<lard> : traits<share_model::weighted> {
    static lard make(std::uint64_t seed) {
        lard_config c;
        c.seed = seed;
        return lard(c);
    }
};
template <> struct policy<hybrid_affinity> : traits<share_model::weighted> {
    static hybrid_affinity make(std::uint64_t seed) {
        hybrid_affinity_config c;
        c.seed = seed;
        return hybrid_affinity(c);
    }
};

static_assert(Scheduler<round_robin> && Scheduler<weighted_round_robin> && Scheduler<least_connections> &&
              Scheduler<weighted_least_connections> && Scheduler<shortest_expected_delay> &&
              Scheduler<never_queue> && Scheduler<random_choice> && Scheduler<weighted_random> &&
              Scheduler<power_of_two_choices> && Scheduler<source_hash> && Scheduler<destination_hash> &&
              Scheduler<rendezvous> && Scheduler<maglev> && Scheduler<dpr_threshold> && Scheduler<lard> &&
              Scheduler<hybrid_affinity>);

/// Picks `n` new flows, opening each on the view; returns the picks.
template <class S>
std::vector<member_id> run(S& s, cluster_view& view, std::size_t n, flow_stream& flows) {
    auto reader = view.make_reader();
    const cluster_snapshot& snap = reader.refresh();
    s.update(snap);
    std::vector<member_id> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        const member_id m = s.pick(snap, flows.next());
        out.push_back(m);
        if (m != no_member) view.flow_opened(m);
    }
    return out;
}

}  // namespace

#define CLUSTERNET_ALL_SCHEDULERS                                                                             \
    round_robin, weighted_round_robin, least_connections, weighted_least_connections, shortest_expected_delay, \
        never_queue, random_choice, weighted_random, power_of_two_choices, source_hash, destination_hash,      \
        rendezvous, maglev, maglev_incremental, dpr_policy<dpr_choice::lowest_load>, dpr_policy<dpr_choice::inverse_load>, lard,   \
        hybrid_affinity

TEST_SUITE("scheduler_conformance") {

TEST_CASE_TEMPLATE("never picks a down, draining, removed or zero-weight member", S, CLUSTERNET_ALL_SCHEDULERS) {
    auto view = make_view({1, 2, 1, 3, 1, 2, 1, 1});
    view->update([](cluster_editor& e) {
        e.set_state(1, member_state::down);
        e.set_state(2, member_state::draining);
        e.set_weight(3, 0);
        e.remove(4);
    });
    S s = policy<S>::make(11);
    flow_stream flows(3);
    const std::set<member_id> allowed{0, 5, 6, 7};
    std::set<member_id> seen;
    for (const member_id m : run(s, *view, 3000, flows)) {
        REQUIRE(allowed.count(m) == 1);
        seen.insert(m);
    }
    CHECK(seen.size() >= 2);  // not stuck on one member
    // The DPR host itself (slot 0) drains: it must redirect everything.
    view->drain(0);
    const std::set<member_id> rest{5, 6, 7};
    for (const member_id m : run(s, *view, 2000, flows)) REQUIRE(rest.count(m) == 1);
}

TEST_CASE_TEMPLATE("an empty cluster gives no_member", S, CLUSTERNET_ALL_SCHEDULERS) {
    cluster_view empty;
    S s = policy<S>::make(5);
    flow_stream flows;
    for (const member_id m : run(s, empty, 50, flows)) CHECK(m == no_member);

    auto view = make_view({1, 1, 1});
    view->update([](cluster_editor& e) {
        e.set_state(0, member_state::down);
        e.set_state(1, member_state::draining);
        e.set_weight(2, 0);
    });
    for (const member_id m : run(s, *view, 50, flows)) CHECK(m == no_member);

    view->set_weight(2, 5);  // one member back
    for (const member_id m : run(s, *view, 50, flows)) CHECK(m == 2);
}

TEST_CASE_TEMPLATE("each member's share follows its weight", S, CLUSTERNET_ALL_SCHEDULERS) {
    const std::vector<std::uint32_t> weights{1, 2, 3, 4};
    auto view = make_view(weights);
    S s = policy<S>::make(17);
    flow_stream flows(23);
    constexpr std::size_t n = 20000;
    std::vector<double> count(weights.size());
    for (const member_id m : run(s, *view, n, flows)) {
        REQUIRE(m < weights.size());
        ++count[m];
    }
    for (std::size_t i = 0; i < weights.size(); ++i) {
        const double expected = policy<S>::shares == share_model::weighted ? weights[i] / 10.0 : 0.25;
        INFO("member " << i << " share " << count[i] / n << " expected " << expected);
        // 0.02 is more than five standard deviations of a random policy's share at n = 20000.
        CHECK(std::abs(count[i] / n - expected) < 0.02);
    }
}

TEST_CASE_TEMPLATE("deterministic given a seed", S, CLUSTERNET_ALL_SCHEDULERS) {
    const auto picks = [](std::uint64_t seed) {
        auto view = make_view({3, 1, 2, 5, 1, 1, 4, 2});
        S s = policy<S>::make(seed);
        flow_stream flows(99);
        auto first = run(s, *view, 3000, flows);
        // Close some flows and change the membership half way, as a control plane would.
        for (member_id m = 0; m < 8; ++m)
            for (std::uint32_t i = 0; i < 50 && view->live_flows(m) > 0; ++i) view->flow_closed(m);
        view->set_weight(3, 1);
        view->drain(6);
        auto second = run(s, *view, 3000, flows);
        first.insert(first.end(), second.begin(), second.end());
        return first;
    };
    const auto a = picks(42), b = picks(42);
    CHECK(a == b);
    if constexpr (policy<S>::randomised) CHECK(a != picks(43));
}

TEST_CASE_TEMPLATE("follows membership changes", S, CLUSTERNET_ALL_SCHEDULERS) {
    auto view = make_view({1, 1, 1, 1});
    S s = policy<S>::make(8);
    flow_stream flows(5);
    (void)run(s, *view, 500, flows);
    const member_id added = view->add_member(test::backend(4, 1));
    REQUIRE(added == 4);
    const auto picks = run(s, *view, 4000, flows);
    const auto to_new = std::count(picks.begin(), picks.end(), added);
    INFO("flows to the new member: " << to_new);
    CHECK(to_new > 400);  // a fifth would be 800; least-connections policies give it more
    view->remove_member(2);
    for (const member_id m : run(s, *view, 1000, flows)) REQUIRE((m != 2 && m < 5));
}

}  // TEST_SUITE
