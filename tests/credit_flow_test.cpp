// Tests of the Appendix A flow control: the algorithm step by step, its invariants under random
// interleavings (both counter widths, counters started just below the wrap), refusals of a
// misbehaving peer, the per-stream table, and the grant-overhead bound.
#include <clusternet/credit_flow.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <deque>
#include <limits>
#include <random>

using namespace clusternet;

TEST_SUITE("credit_flow") {

TEST_CASE("Appendix A step by step") {
    credit_receiver rx(1000);
    CHECK(rx.initial_limit() == 1000);  // step 1: Lr = Br
    credit_sender tx(0, rx.initial_limit());
    CHECK(tx.can_send(1000));
    CHECK_FALSE(tx.can_send(1001));
    CHECK(tx.on_sent(600) == flow_error::none);
    CHECK(rx.on_received(600) == flow_error::none);
    CHECK(rx.free_space() == 400);
    CHECK(tx.available() == 400);
    // Consuming up to Br/2 grants nothing: Ar + Er = 600 + 400 + 500 = 1500 = Lr + Br/2.
    CHECK_FALSE(rx.on_consumed(500).has_value());
    // One octet more crosses the threshold: Lr := Ar + Er = 1501.
    const auto g = rx.on_consumed(1);
    REQUIRE(g.has_value());
    CHECK(*g == 1501);
    CHECK(rx.reported_limit() == 1501);
    CHECK(tx.on_grant(*g) == flow_error::none);
    CHECK(tx.available() == 901);
    CHECK(rx.outstanding_credit() == 901);
    CHECK(rx.free_space() == 901);
}

TEST_CASE("a peer that sends past its limit is refused, never stored") {
    credit_receiver rx(100);
    CHECK(rx.on_received(60) == flow_error::none);
    CHECK(rx.on_received(41) == flow_error::overflow);
    CHECK(rx.received() == 60);
    CHECK(rx.buffered() == 60);
    CHECK(rx.on_received(40) == flow_error::none);
    CHECK(rx.on_received(1) == flow_error::overflow);
    CHECK(rx.buffered() == 100);
    flow_error e = flow_error::none;
    CHECK_FALSE(rx.on_consumed(101, &e).has_value());
    CHECK(e == flow_error::over_consume);
    CHECK(rx.buffered() == 100);
}

TEST_CASE("grants never move back and never open more than the window") {
    credit_sender tx(0, 100, 1000);
    CHECK(tx.on_grant(100) == flow_error::none);       // same limit: no-op
    CHECK(tx.on_grant(99) == flow_error::stale_grant);
    CHECK(tx.on_grant(1001) == flow_error::excess_grant);
    CHECK(tx.limit() == 100);
    CHECK(tx.on_sent(101) == flow_error::over_send);
    CHECK(tx.sent() == 0);
    CHECK(tx.on_grant(1000) == flow_error::none);
    CHECK(tx.available() == 1000);
}

TEST_CASE_TEMPLATE("counters wrap around", C, std::uint32_t, std::uint64_t) {
    const C start = std::numeric_limits<C>::max() - 50;
    basic_credit_receiver<C> rx(64, start);
    basic_credit_sender<C> tx(start, rx.initial_limit(), 64);
    CHECK(tx.available() == 64);
    std::uint64_t delivered = 0;
    for (int i = 0; i < 100; ++i) {
        const C n = tx.available();
        REQUIRE(n > 0);
        REQUIRE(tx.on_sent(n) == flow_error::none);
        REQUIRE(rx.on_received(n) == flow_error::none);
        CHECK(rx.on_received(1) == flow_error::overflow);
        const auto g = rx.on_consumed(n);
        REQUIRE(g.has_value());
        REQUIRE(tx.on_grant(*g) == flow_error::none);
        delivered += n;
    }
    CHECK(delivered == 6400);
    CHECK(tx.sent() == static_cast<C>(start + 6400));  // wrapped past 0
    CHECK(tx.sent() < start);
}

// A model of one stream: the receiver's buffer as a queue of octet indices, the frames in flight
// as a FIFO (the channel is ordered). Random steps: send what the credit allows, deliver,
// consume, deliver a grant. The invariants of the header are checked after every step.
TEST_CASE_TEMPLATE("random interleavings keep the invariants and deliver everything", C, std::uint32_t, std::uint64_t) {
    std::mt19937_64 rng(0xC0FFEE);
    for (int round = 0; round < 40; ++round) {
        const C buffer = static_cast<C>(1 + rng() % 5000);
        const C start = static_cast<C>(std::numeric_limits<C>::max() - rng() % 10000);
        basic_credit_receiver<C> rx(buffer, start);
        basic_credit_sender<C> tx(start, rx.initial_limit(), buffer);
        std::deque<C> data_in_flight;    // sizes of data frames
        std::deque<C> grants_in_flight;  // limits
        std::uint64_t to_send = rng() % 200000, sent = 0, consumed = 0, grants = 0;
        auto step = [&](unsigned action) {
            switch (action) {
                case 0: {  // the writer sends up to its credit
                    const std::uint64_t want = std::min<std::uint64_t>(to_send - sent, 1 + rng() % (2 * buffer));
                    const C n = static_cast<C>(std::min<std::uint64_t>(want, tx.available()));
                    if (n == 0) break;
                    REQUIRE(tx.on_sent(n) == flow_error::none);
                    data_in_flight.push_back(n);
                    sent += n;
                    break;
                }
                case 1:
                    if (data_in_flight.empty()) break;
                    REQUIRE(rx.on_received(data_in_flight.front()) == flow_error::none);
                    data_in_flight.pop_front();
                    break;
                case 2: {  // the reader takes some
                    const C n = static_cast<C>(rx.buffered() == 0 ? 0 : 1 + rng() % rx.buffered());
                    if (n == 0) break;
                    consumed += n;
                    if (auto g = rx.on_consumed(n)) { grants_in_flight.push_back(*g); ++grants; }
                    break;
                }
                default:
                    if (grants_in_flight.empty()) break;
                    REQUIRE(tx.on_grant(grants_in_flight.front()) == flow_error::none);
                    grants_in_flight.pop_front();
                    break;
            }
            // I1..I3 and the sender never ahead of the receiver's report.
            REQUIRE(static_cast<C>(rx.received() + rx.free_space()) == static_cast<C>(start + consumed + buffer));
            REQUIRE(rx.buffered() <= buffer);
            REQUIRE(rx.outstanding_credit() <= rx.free_space());
            REQUIRE(static_cast<C>(rx.reported_limit() - tx.limit()) <= buffer);
            REQUIRE(static_cast<C>(tx.limit() - tx.sent()) <= buffer);
        };
        for (int i = 0; i < 3000; ++i) step(static_cast<unsigned>(rng() % 4));
        // Liveness: once the reader drains and every frame is delivered, all data arrives.
        int guard = 0;
        while (consumed < to_send) {
            REQUIRE(++guard < 1000000);
            for (unsigned a = 0; a < 4; ++a) {
                step(a);
                while (rx.buffered() > 0) step(2);
            }
        }
        CHECK(consumed == to_send);
        // Grants come at most once per Br/2 + 1 octets consumed.
        CHECK(grants <= consumed / (buffer / 2 + 1) + 1);
    }
}

TEST_CASE("grant overhead at the channel's defaults is below 0.1 %") {
    // One grant (a 20-byte frame: 12 header + 8 limit) per more than Br/2 octets consumed.
    constexpr std::uint64_t buffer = 256 * 1024, grant_frame = 20;
    credit_receiver rx(buffer);
    credit_sender tx(0, rx.initial_limit());
    std::uint64_t grant_bytes = 0, payload = 0;
    std::mt19937 rng(7);
    while (payload < (64ULL << 20)) {
        const std::uint64_t n = std::min<std::uint64_t>(tx.available(), 1 + rng() % 65536);
        if (n == 0) FAIL("sender starved");
        REQUIRE(tx.on_sent(n) == flow_error::none);
        REQUIRE(rx.on_received(n) == flow_error::none);
        payload += n;
        if (auto g = rx.on_consumed(n)) {
            grant_bytes += grant_frame;
            REQUIRE(tx.on_grant(*g) == flow_error::none);
        }
    }
    const double ratio = static_cast<double>(grant_bytes) / static_cast<double>(payload);
    CHECK(ratio < 0.001);
    CHECK(ratio <= static_cast<double>(grant_frame) / static_cast<double>(buffer / 2));
}

TEST_CASE("credit_table: ids, stale ids, capacity") {
    CHECK_THROWS_AS(credit_table<>(0), std::invalid_argument);
    CHECK_THROWS_AS(credit_table<>(70000), std::invalid_argument);
    credit_table<int> t(2);
    const stream_id a = t.allocate(100);
    const stream_id b = t.allocate(200);
    REQUIRE(a != no_stream);
    REQUIRE(b != no_stream);
    CHECK(a != b);
    CHECK(t.allocate(1) == no_stream);
    CHECK(t.size() == 2);
    REQUIRE(t.find(a));
    CHECK(t.find(a)->rx.buffer_size() == 100);
    t.find(a)->user = 42;
    CHECK(t.find(no_stream) == nullptr);
    CHECK(t.find(a ^ 0x10000) == nullptr);  // other generation
    CHECK(t.release(a));
    CHECK_FALSE(t.release(a));
    CHECK(t.find(a) == nullptr);
    const stream_id c = t.allocate(300);
    CHECK((c & 0xFFFF) == (a & 0xFFFF));  // the slot is reused ...
    CHECK(c != a);                        // ... under a new id
    CHECK(t.find(a) == nullptr);
    CHECK(t.find(c)->user == 0);
    int seen = 0;
    t.for_each([&](stream_id, auto&) { ++seen; });
    CHECK(seen == 2);
}

}  // TEST_SUITE
