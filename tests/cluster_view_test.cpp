// Tests of the cluster view: stable slots, membership edits, draining, flow accounting, load
// reports, errors, and lock-free reading while a control plane publishes snapshots.
#include <clusternet/cluster_view.hpp>

#include "support/cluster_fixture.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

using namespace clusternet;
using clusternet::test::backend;

TEST_SUITE("cluster_view") {

TEST_CASE("members get stable slots; a removed slot is not renumbered") {
    cluster_view v;
    const member_id a = v.add_member(backend(0)), b = v.add_member(backend(1)), c = v.add_member(backend(2));
    CHECK(a == 0);
    CHECK(b == 1);
    CHECK(c == 2);
    v.remove_member(b);
    auto snap = v.current();
    REQUIRE(snap->slot_count() == 3);
    CHECK((*snap)[0].address == backend(0).address);
    CHECK((*snap)[2].address == backend(2).address);
    CHECK(snap->find(1) == nullptr);
    CHECK(std::vector<member_id>(snap->eligible().begin(), snap->eligible().end()) == std::vector<member_id>{0, 2});
    CHECK(snap->present_count() == 2);
    // No reader, no flows: slot 1 is reusable and is the lowest free slot.
    CHECK(v.slot_reusable(1));
    CHECK(v.add_member(backend(3)) == 1);
    CHECK(v.current()->slot_count() == 3);
}

TEST_CASE("a removed slot with live flows, or still visible to a reader, is not reused") {
    cluster_view v;
    for (std::size_t i = 0; i < 3; ++i) (void)v.add_member(backend(i));
    auto reader = v.make_reader();
    (void)reader.refresh();
    v.flow_opened(1);
    v.flow_opened(1);
    v.remove_member(1);
    CHECK_FALSE(v.slot_reusable(1));
    CHECK(v.add_member(backend(10)) == 3);  // not 1
    (void)reader.refresh();                  // the reader now holds nothing older
    CHECK_FALSE(v.slot_reusable(1));         // but two flows remain
    CHECK_FALSE(v.drained(1));
    v.flow_closed(1);
    v.flow_closed(1);
    CHECK(v.drained(1));
    CHECK(v.slot_reusable(1));
    CHECK(v.add_member(backend(11)) == 1);
    CHECK(v.live_flows(1) == 0);
}

TEST_CASE("a reader that has not refreshed keeps a removed slot from reuse") {
    cluster_view v;
    (void)v.add_member(backend(0));
    (void)v.add_member(backend(1));
    auto reader = v.make_reader();
    (void)reader.refresh();
    v.remove_member(0);
    CHECK_FALSE(v.slot_reusable(0));
    CHECK(reader.snapshot().is_eligible(0));  // its snapshot is still the old one, and alive
    reader.offline();
    CHECK(v.slot_reusable(0));
    CHECK(v.retired_count() > 0);
    v.reclaim();
    CHECK(v.retired_count() == 0);
    CHECK_FALSE(reader.refresh().is_eligible(0));
}

TEST_CASE("draining and weight 0 stop new flows; drained() tells when the last one ends") {
    cluster_view v;
    const member_id a = v.add_member(backend(0, 3));
    const member_id b = v.add_member(backend(1, 1));
    v.flow_opened(a);
    CHECK_FALSE(v.drained(a));
    v.drain(a);
    auto snap = v.current();
    CHECK((*snap)[a].state == member_state::draining);
    CHECK_FALSE(snap->is_eligible(a));
    CHECK(snap->total_weight() == 1);
    CHECK_FALSE(v.drained(a));
    v.flow_closed(a);
    CHECK(v.drained(a));
    CHECK_FALSE(v.drained(b));  // up members are never "drained"
    v.set_weight(b, 0);
    CHECK(v.drained(b));
    CHECK(v.current()->eligible().empty());
    v.set_state(a, member_state::up);
    v.set_weight(b, 2);
    snap = v.current();
    CHECK(snap->total_weight() == 5);
    CHECK(snap->max_weight() == 3);
    CHECK_FALSE(snap->uniform_weights());
}

TEST_CASE("edits batch into one snapshot; generations increase") {
    cluster_view v;
    const std::uint64_t g0 = v.current()->generation();
    const std::uint64_t g1 = v.update([](cluster_editor& e) {
        for (std::size_t i = 0; i < 10; ++i) (void)e.add(backend(i, static_cast<std::uint32_t>(i + 1)));
        e.set_state(4, member_state::down);
        CHECK(e[4].state == member_state::down);  // the editor sees its own edits
        CHECK_THROWS_AS((void)e[10], std::system_error);
    });
    CHECK(g1 == g0 + 1);
    auto snap = v.current();
    CHECK(snap->generation() == g1);
    CHECK(snap->eligible().size() == 9);
    CHECK(snap->total_weight() == 55 - 5);
    // A throwing edit publishes nothing.
    CHECK_THROWS_AS(v.update([](cluster_editor& e) {
        e.set_weight(0, 7);
        e.remove(99);
    }),
                    std::system_error);
    CHECK(v.current()->generation() == g1);
    CHECK((*v.current())[0].weight == 1);
}

TEST_CASE("errors a person can act on") {
    CHECK_THROWS_AS(cluster_view(cluster_view_config{0, 4}), std::system_error);
    CHECK_THROWS_AS(cluster_view(cluster_view_config{70000, 4}), std::system_error);
    CHECK_THROWS_AS(cluster_view(cluster_view_config{4, 0}), std::system_error);
    cluster_view v(cluster_view_config{2, 1});
    (void)v.add_member(backend(0));
    try {
        (void)v.add_member(backend(0));
        FAIL("duplicate accepted");
    } catch (const std::system_error& e) {
        CHECK(e.code() == errc::invalid_argument);
        CHECK(std::string(e.what()).find("already member 0") != std::string::npos);
    }
    (void)v.add_member(backend(1));
    std::error_code ec;
    CHECK(v.add_member(backend(2), ec) == no_member);
    CHECK(ec == errc::capacity_exceeded);
    CHECK_THROWS_AS(v.remove_member(5), std::system_error);
    CHECK_THROWS_AS(v.set_state(0, member_state::removed), std::system_error);
    member_config bad = backend(3);
    bad.state = member_state::removed;
    CHECK_THROWS_AS(v.update([&](cluster_editor& e) { (void)e.add(bad); }), std::system_error);
    auto r = v.make_reader();
    CHECK_THROWS_AS((void)v.make_reader(), std::system_error);  // max_readers = 1
}

TEST_CASE("load reports and IPv6 members") {
    cluster_view v;
    member_config c;
    c.address = *ipv6_address::parse("2001:db8::7");
    c.port = 8080;
    c.mac = *mac_address::parse("02:00:00:00:00:07");
    const member_id id = v.add_member(c);
    auto snap = v.current();
    CHECK_FALSE((*snap)[id].is_v4());
    CHECK((*snap)[id].port == 8080);
    CHECK((*snap)[id].key != 0);
    CHECK(snap->last_report(id) == std::chrono::steady_clock::time_point::min());
    const auto now = std::chrono::steady_clock::now();
    v.report_load(id, {12, 345, 6, 78}, now);
    v.report_load(9999, {1, 1, 1, 1}, now);  // out of range: ignored
    CHECK(snap->load(id) == load_metrics{12, 345, 6, 78});  // counters are live in every snapshot
    CHECK(snap->last_report(id) == now);
    // The same address and port give the same hash key in another view (Maglev agreement).
    cluster_view w;
    (void)w.add_member(test::backend(0));
    const member_id id2 = w.add_member(c);
    CHECK((*w.current())[id2].key == (*snap)[id].key);
}

TEST_CASE("a reader that refreshes after each update keeps at most one snapshot retired") {
    cluster_view v;
    (void)v.add_member(backend(0));
    auto r = v.make_reader();
    for (std::uint32_t w = 1; w < 100; ++w) {
        v.set_weight(0, w);
        CHECK(v.retired_count() <= 1);  // the one this reader may still be using
        CHECK(r.refresh()[0].weight == w);
    }
    v.reclaim();
    CHECK(v.retired_count() == 0);
}

TEST_CASE("readers see whole snapshots while a writer publishes; old ones are reclaimed") {
    // The writer gives every member the same weight in each update; a reader that ever saw two
    // weights in one snapshot would have seen a torn one. ASan catches a snapshot freed under a
    // reader.
    constexpr std::size_t members = 32;
    cluster_view v(cluster_view_config{64, 8});
    v.update([](cluster_editor& e) {
        for (std::size_t i = 0; i < members; ++i) (void)e.add(backend(i));
    });
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> torn{0}, reads{0}, backwards{0};
    const auto read = [&] {
        auto r = v.make_reader();
        std::uint64_t last = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            for (int batch = 0; batch < 64; ++batch) {
                const cluster_snapshot& s = r.refresh();
                if (s.generation() < last) backwards.fetch_add(1);
                last = s.generation();
                const std::uint32_t w = s[0].weight;
                for (const member_info& m : s.slots())
                    if (m.weight != w) torn.fetch_add(1);
                v.flow_opened(s.eligible()[s.generation() % s.eligible().size()]);
                v.flow_closed(s.eligible()[s.generation() % s.eligible().size()]);
                reads.fetch_add(1, std::memory_order_relaxed);
            }
            if (last % 7 == 0) {  // sometimes go offline, as a thread blocking on I/O would
                r.offline();
                std::this_thread::yield();
            }
        }
    };
    std::thread r1(read), r2(read);
    for (std::uint32_t round = 1; round <= 3000; ++round) {
        v.update([&](cluster_editor& e) {
            for (member_id i = 0; i < members; ++i) e.set_weight(i, round);
        });
    }
    while (reads.load() < 1000) std::this_thread::yield();
    stop = true;
    r1.join();
    r2.join();
    CHECK(torn.load() == 0);
    CHECK(backwards.load() == 0);
    v.synchronize();
    CHECK(v.retired_count() == 0);  // no reader left: everything retired is freed
    for (member_id i = 0; i < members; ++i) CHECK(v.live_flows(i) == 0);
}

}  // TEST_SUITE
