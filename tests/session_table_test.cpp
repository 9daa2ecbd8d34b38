// Tests of the session table: lifecycle, timeouts on a fake clock, reverse (NAT) lookup,
// eviction order under pressure, and the SYN-flood property.
#include <clusternet/session_table.hpp>

#include <doctest/doctest.h>

#include <array>
#include <random>
#include <unordered_map>
#include <vector>

using namespace clusternet;

namespace {

constexpr std::uint8_t SYN = tcp_flags::syn, ACK = tcp_flags::ack, FIN = tcp_flags::fin, RST = tcp_flags::rst;

flow_key4 client(std::uint32_t i, std::uint8_t proto = ip_protocol::tcp) {
    return flow_key4{0x0A000000U + (i >> 16), 0xCB007101U, static_cast<std::uint16_t>(1024 + (i & 0xFFFF)), 80, proto};
}

session_table_config small(std::size_t cap) {
    session_table_config c;
    c.capacity = cap;
    c.timeouts = session_timeouts::ipvs_defaults(1);  // one tick a second
    return c;
}

}  // namespace

TEST_SUITE("session_table") {

TEST_CASE("sizes: 24 bytes an IPv4 session, 48 an IPv6 one") {
    static_assert(sizeof(session4) == 24);
    static_assert(sizeof(session6) == 48);
    session_table4 t(small(1000));
    CHECK(t.bytes_per_session() < 32.0);
    CHECK(t.bytes_per_session() > 24.0);
}

TEST_CASE("bad configuration is refused with a message") {
    CHECK_THROWS_AS(session_table4(small(0)), std::invalid_argument);
    auto c = small(10);
    c.max_load = 0.99;
    CHECK_THROWS_WITH_AS(session_table4{c}, doctest::Contains("max_load"), std::invalid_argument);
}

TEST_CASE("a SYN opens, an ACK establishes, FINs and the last ACK close") {
    session_table4 t(small(100));
    const auto k = client(1);
    auto r = t.track(k, ACK, 0);
    CHECK(r.verdict == session_verdict::no_session);  // not a SYN, nothing known
    r = t.track(k, SYN, 1);
    REQUIRE(r.verdict == session_verdict::created);
    CHECK(r.session->state == session_state::syn_recv);
    CHECK(r.session->backend == session4::no_backend);
    r.session->backend = 3;
    session4* s = r.session;
    r = t.track(k, SYN, 2);  // retransmitted SYN
    CHECK(r.verdict == session_verdict::existing);
    CHECK(s->state == session_state::syn_recv);
    r = t.track(k, ACK, 3);
    CHECK(r.session == s);
    CHECK(s->state == session_state::established);
    CHECK(s->backend == 3);
    t.track(k, ACK | tcp_flags::psh, 4);
    CHECK(s->state == session_state::established);
    t.track(k, FIN | ACK, 5);
    CHECK(s->state == session_state::fin_wait);
    CHECK(t.size() == 1);
    CHECK(t.stats().count(session_verdict::created) == 1);
    CHECK(t.stats().count(session_verdict::no_session) == 1);
}

TEST_CASE("RST closes; the close timeout ends the session") {
    session_table4 t(small(100));
    const auto k = client(2);
    t.track(k, SYN, 0);
    t.track(k, ACK, 1);
    auto r = t.track(k, RST, 2);
    CHECK(r.session->state == session_state::close);
    CHECK(t.find(k, 2 + 10) != nullptr);   // close: 10 s
    CHECK(t.find(k, 2 + 11) == nullptr);
    r = t.track(k, ACK, 2 + 11);
    CHECK(r.verdict == session_verdict::no_session);
    CHECK(t.size() == 0);
    CHECK(t.stats().expired == 1);
}

TEST_CASE("a reused port on a closing session reopens it at once, for a fresh decision") {
    for (const std::uint8_t closing : {static_cast<std::uint8_t>(FIN | ACK), RST}) {
        session_table4 t(small(100));
        const auto k = client(3);
        auto r = t.track(k, SYN, 0);
        r.session->backend = 7;
        t.track(k, ACK, 1);
        t.track(k, closing, 2);
        CHECK(is_closing(r.session->state));
        const auto again = t.track(k, SYN, 3);  // no waiting
        CHECK(again.verdict == session_verdict::reopened);
        CHECK(again.session == r.session);
        CHECK(again.session->state == session_state::syn_recv);
        CHECK(again.session->backend == session4::no_backend);
    }
}

TEST_CASE("per-state timeouts follow the fake clock, and are configurable") {
    auto cfg = small(100);
    cfg.timeouts.set(session_state::established, 50);
    session_table4 t(cfg);
    const auto k = client(4);
    t.track(k, SYN, 0);
    CHECK(t.find(k, 60) != nullptr);  // syn_recv: 60
    CHECK(t.find(k, 61) == nullptr);
    const auto k2 = client(5);
    t.track(k2, SYN, 100);
    t.track(k2, ACK, 100);
    CHECK(t.find(k2, 150) != nullptr);
    CHECK(t.find(k2, 151) == nullptr);
    t.track(k2, ACK, 150);  // activity keeps it alive
    CHECK(t.find(k2, 200) != nullptr);
    // UDP: one state, 300 s idle.
    const auto u = client(6, ip_protocol::udp);
    CHECK(t.track(u, 0, 0).verdict == session_verdict::created);
    CHECK(t.track(u, 0, 300).verdict == session_verdict::existing);
    CHECK(t.track(u, 0, 601).verdict == session_verdict::created);  // expired, then new
}

TEST_CASE("expiry sweeps reclaim without lookups, in amortised O(1)") {
    auto cfg = small(1000);
    cfg.sweep_per_insert = 0;
    session_table4 t(cfg);
    for (std::uint32_t i = 0; i < 1000; ++i) t.track(client(i), SYN, 0);
    CHECK(t.size() == 1000);
    CHECK(t.expire(61, 400) == 400);
    CHECK(t.expire(61, 10000) == 600);
    CHECK(t.size() == 0);
}

TEST_CASE("bidirectional table: the reply key reaches the same session, from the server") {
    nat_session_table4 t(small(100));
    const flow_key4 in{0xC6336407, 0xCB00710A, 40000, 80, ip_protocol::tcp};     // client -> VIP
    const flow_key4 reply{0x0A00000B, 0xC6336407, 8080, 40000, ip_protocol::tcp};  // back end -> client
    auto r = t.track(in, SYN, 0);
    REQUIRE(r.verdict == session_verdict::created);
    CHECK(t.set_reply(r.session, reply, 0));
    auto back = t.track(reply, SYN | ACK, 1);
    CHECK(back.verdict == session_verdict::existing);
    CHECK(back.session == r.session);
    CHECK(back.dir == direction::from_server);
    t.track(in, ACK, 2);
    CHECK(r.session->state == session_state::established);
    t.track(reply, FIN | ACK, 3);
    CHECK(r.session->state == session_state::close_wait);
    t.track(in, FIN | ACK, 4);
    CHECK(r.session->state == session_state::last_ack);
    t.track(reply, ACK, 5);
    CHECK(r.session->state == session_state::time_wait);
    // Ending the session removes both keys.
    t.erase(r.session);
    CHECK(t.find(in, 5) == nullptr);
    CHECK(t.find(reply, 5) == nullptr);
    CHECK(t.size() == 0);
}

TEST_CASE("full table: expired go first, then the oldest half-open, never an established one") {
    auto cfg = small(64);
    cfg.sweep_per_insert = 0;
    cfg.eviction_sample = 64;
    session_table4 t(cfg);
    // 32 established, 32 half-open of increasing age.
    for (std::uint32_t i = 0; i < 32; ++i) {
        t.track(client(i), SYN, 0);
        t.track(client(i), ACK, 0);
    }
    for (std::uint32_t i = 32; i < 64; ++i) t.track(client(i), SYN, i);
    CHECK(t.size() == 64);
    // A new SYN takes the place of the oldest half-open one (client 32, seen at tick 32).
    auto r = t.track(client(100), SYN, 70);
    CHECK(r.verdict == session_verdict::created);
    CHECK(t.find(client(32), 70) == nullptr);
    CHECK(t.find(client(33), 70) != nullptr);
    CHECK(t.stats().evicted_half_open == 1);
    // Let every half-open one expire: the next SYN reclaims an expired session instead.
    r = t.track(client(101), SYN, 200);
    CHECK(r.verdict == session_verdict::created);
    CHECK(t.stats().expired >= 1);
    CHECK(t.stats().evicted_half_open == 1);
    // All established and live: no room, and none of them is touched.
    auto cfg2 = small(16);
    cfg2.sweep_per_insert = 0;
    session_table4 full(cfg2);
    for (std::uint32_t i = 0; i < 16; ++i) {
        full.track(client(i), SYN, 0);
        full.track(client(i), ACK, 0);
    }
    CHECK(full.track(client(99), SYN, 1).verdict == session_verdict::table_full);
    for (std::uint32_t i = 0; i < 16; ++i) CHECK(full.find(client(i), 1) != nullptr);
}

TEST_CASE("SYN flood at ten times capacity: every established session survives") {
    auto cfg = small(10000);
    session_table4 t(cfg);
    std::mt19937_64 rng(9);
    for (std::uint32_t i = 0; i < 5000; ++i) {
        t.track(client(i), SYN, 0);
        t.track(client(i), ACK, 0);
    }
    std::uint32_t now = 0;
    for (std::uint32_t n = 0; n < 100000; ++n) {
        const flow_key4 spoofed{static_cast<std::uint32_t>(rng()), 0xCB007101U, static_cast<std::uint16_t>(rng()), 80, ip_protocol::tcp};
        t.track(spoofed, SYN, now);
        if (n % 1000 == 0) {
            ++now;  // keep the established ones active, as real clients are
            for (std::uint32_t i = 0; i < 5000; ++i) t.track(client(i), ACK, now);
        }
    }
    std::size_t alive = 0;
    for (std::uint32_t i = 0; i < 5000; ++i) {
        const auto* s = t.find(client(i), now);
        alive += s != nullptr && s->state == session_state::established;
    }
    CHECK(alive == 5000);
    CHECK(t.size() <= t.capacity());
    CHECK(t.stats().evicted_half_open > 80000);
    CHECK(t.stats().index_full == 0);
}

TEST_CASE("filled to capacity and churned, every live key stays findable (cuckoo moves)") {
    auto cfg = small(20000);
    cfg.timeouts = session_timeouts::ipvs_defaults(1000);
    session_table4 t(cfg);
    std::mt19937_64 rng(5);
    std::unordered_map<std::uint32_t, session4*> live;
    for (int round = 0; round < 200000; ++round) {
        const auto id = static_cast<std::uint32_t>(rng() % 30000);
        const auto it = live.find(id);
        if (it != live.end() && rng() % 2) {
            t.erase(it->second);
            live.erase(it);
        } else if (it == live.end()) {
            // Established at once, so that a full table refuses instead of evicting.
            const auto r = t.track(client(id), SYN, 0);
            if (r.verdict == session_verdict::created) {
                t.track(client(id), ACK, 0);
                live[id] = r.session;
            } else {
                REQUIRE(r.verdict == session_verdict::table_full);
            }
        }
    }
    CHECK(t.stats().index_full == 0);
    CHECK(t.stats().count(session_verdict::table_full) > 0);  // it did run full
    CHECK(t.size() == live.size());
    CHECK(t.index_consistent());
    for (const auto& [id, s] : live) {
        REQUIRE(t.find(client(id), 0) == s);
    }
}

TEST_CASE("a NAT table at its highest index load, churned: both keys of every session stay findable") {
    // Two index entries a session, the index at max_load: the partial-key cuckoo moves entries
    // by bucket and tag alone, so this checks that a moved entry (client key or reply key)
    // still sits where its key hashes, and that the `displaced` bookkeeping stays exact.
    auto cfg = small(8000);
    cfg.max_load = 0.95;
    nat_session_table4 t(cfg);
    std::mt19937_64 rng(11);
    const auto reply_of = [](std::uint32_t id) {
        return flow_key4{0x0A000000U + (id % 7), 0xC6336400U + id, static_cast<std::uint16_t>(8080 + id % 3),
                         static_cast<std::uint16_t>(1024 + id % 50000), ip_protocol::tcp};
    };
    std::unordered_map<std::uint32_t, nat_session_table4::session_type*> live;
    for (int round = 0; round < 120000; ++round) {
        const auto id = static_cast<std::uint32_t>(rng() % 12000);
        const auto it = live.find(id);
        if (it != live.end()) {
            if (rng() % 2) {
                t.erase(it->second);
                live.erase(it);
            }
            continue;
        }
        const auto r = t.track(client(id), SYN, 0);
        if (r.verdict != session_verdict::created) {
            REQUIRE(r.verdict == session_verdict::table_full);
            continue;
        }
        REQUIRE(t.set_reply(r.session, reply_of(id), 0));
        t.track(client(id), ACK, 0);
        live[id] = r.session;
        if (round % 20000 == 0) REQUIRE(t.index_consistent());
    }
    CHECK(t.stats().index_full == 0);
    CHECK(t.size() == live.size());
    CHECK(t.index_consistent());
    for (const auto& [id, s] : live) {
        REQUIRE(t.find(client(id), 0) == s);
        REQUIRE(t.find(reply_of(id), 0) == s);
    }
}

TEST_CASE("session_create::never tracks existing sessions only; erase twice is harmless") {
    nat_session_table4 t(small(100));
    const flow_key4 stray{0x0A00000B, 0xC6336407, 8080, 40000, ip_protocol::udp};  // a back end's UDP
    CHECK(t.track(stray, 0, 0, session_create::never).verdict == session_verdict::no_session);
    CHECK(t.size() == 0);
    const flow_key4 in{0xC6336407, 0xCB00710A, 40000, 53, ip_protocol::udp};
    auto r = t.track(in, 0, 0);
    REQUIRE(r.verdict == session_verdict::created);
    const flow_key4 reply{0x0A00000B, 0xC6336407, 53, 40000, ip_protocol::udp};
    REQUIRE(t.set_reply(r.session, reply, 0));
    const auto back = t.track(reply, 0, 1, session_create::never);
    CHECK(back.verdict == session_verdict::existing);
    CHECK(back.dir == direction::from_server);
    t.erase(r.session);
    t.erase(r.session);
    CHECK(t.size() == 0);
    CHECK(t.stats().closed == 1);
}

TEST_CASE("the end hook sees every session end once: per-back-end counts stay exact") {
    // A dispatcher counts live sessions per back end (least connections, draining): +1 when it
    // assigns a back end, -1 in the hook. Random traffic over a small table, with expiry,
    // eviction, erase and reused ports; the counts must equal a recount of the live sessions.
    auto cfg = small(64);
    cfg.timeouts.set(session_state::syn_recv, 5);
    cfg.timeouts.set(session_state::close, 2);
    session_table4 t(cfg);
    std::array<std::int64_t, 4> count{};
    t.set_end_hook([](void* ctx, const session4& s) noexcept {
        auto& c = *static_cast<std::array<std::int64_t, 4>*>(ctx);
        if (s.backend != session4::no_backend) --c[s.backend];
    }, &count);
    std::mt19937 rng(7);
    std::uint64_t ends_seen = 0;
    for (std::uint32_t now = 0; now < 20000; ++now) {
        const flow_key4 k = client(rng() % 200);
        const std::uint8_t flags = std::array<std::uint8_t, 5>{SYN, ACK, FIN, RST, SYN}[rng() % 5];
        const auto r = t.track(k, flags, now / 4);
        if (r.verdict == session_verdict::created || r.verdict == session_verdict::reopened) {
            REQUIRE(r.session->backend == session4::no_backend);
            r.session->backend = static_cast<std::uint16_t>(rng() % 4);
            ++count[r.session->backend];
        }
        if (rng() % 50 == 0 && r.session != nullptr) t.erase(r.session);
        if (now % 1000 == 0) {
            std::array<std::int64_t, 4> recount{};
            t.for_each([&](const session4& s) { if (s.backend != session4::no_backend) ++recount[s.backend]; });
            CHECK(recount == count);
        }
    }
    const auto& st = t.stats();
    ends_seen = st.expired + st.evicted_half_open + st.closed + st.count(session_verdict::reopened);
    CHECK(ends_seen > 100);  // the run exercised every way a session ends
    CHECK(st.expired > 0);
    CHECK(st.count(session_verdict::reopened) > 0);
    std::array<std::int64_t, 4> recount{};
    t.for_each([&](const session4& s) { if (s.backend != session4::no_backend) ++recount[s.backend]; });
    CHECK(recount == count);
}

TEST_CASE("batched lookups agree with one-at-a-time ones: hits, misses, expired, reply keys") {
    auto cfg = small(4096);
    cfg.timeouts.set(session_state::syn_recv, 10);
    nat_session_table4 t(cfg);
    std::vector<flow_key4> keys;
    for (std::uint32_t i = 0; i < 3000; ++i) {
        const flow_key4 k = client(i);
        auto r = t.track(k, SYN, i % 20);  // sessions opened at 0..19 time out at 10..29
        REQUIRE(r.verdict == session_verdict::created);
        if (i % 3 == 0) t.track(k, ACK, i % 20);  // established: 15 minutes
        if (i % 5 == 0) REQUIRE(t.set_reply(r.session, flow_key4{0x0A00000B, k.src, 8080, k.sport, ip_protocol::tcp}, i % 20));
        keys.push_back(k);
        if (i % 5 == 0) keys.push_back(flow_key4{0x0A00000B, k.src, 8080, k.sport, ip_protocol::tcp});
        if (i % 7 == 0) keys.push_back(client(100000 + i));  // never inserted
    }
    std::vector<nat_session_table4::session_type*> out(keys.size());
    for (const std::uint32_t now : {5U, 25U}) {
        t.find_batch(keys, out, now);
        std::size_t hits = 0;
        for (std::size_t i = 0; i < keys.size(); ++i) {
            REQUIRE(out[i] == t.find(keys[i], now));
            hits += out[i] != nullptr;
        }
        CHECK(hits > 0);
        CHECK(hits < keys.size());
    }
    // track() through the staged path behaves as the plain one.
    const flow_key4 k = client(3);
    const auto h = t.prefetch(k);
    t.prefetch_session(h);
    const auto r = t.track(k, h, FIN, 25);
    CHECK(r.verdict == session_verdict::existing);
    CHECK(r.session->state == session_state::fin_wait);
}

}  // TEST_SUITE
