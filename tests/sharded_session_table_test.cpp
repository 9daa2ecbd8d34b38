// Tests of sharding sessions over worker threads: each thread owns one table and takes only the
// packets shard_for() gives it, as AF_PACKET fanout sockets would; NAT replies must find the
// session their request made, in the same shard.
#include <clusternet/sharded_session_table.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

using namespace clusternet;

namespace {

struct nat_packet {
    flow_key4 key;
    std::uint8_t flags;
    direction dir;
};

/// Connections through a NAT: client -> VIP:80 inbound, back end:8080 -> client outbound.
std::vector<nat_packet> nat_traffic(std::size_t connections) {
    std::mt19937_64 rng(77);
    const std::uint32_t vip = 0xCB00710A;
    std::vector<nat_packet> out;
    for (std::size_t c = 0; c < connections; ++c) {
        const auto client = static_cast<std::uint32_t>(rng());
        const auto port = static_cast<std::uint16_t>(1024 + rng() % 60000);
        const std::uint32_t backend = 0x0A000000U + static_cast<std::uint32_t>(c % 8);
        const flow_key4 in{client, vip, port, 80, ip_protocol::tcp};
        const flow_key4 back{backend, client, 8080, port, ip_protocol::tcp};
        out.push_back({in, tcp_flags::syn, direction::from_client});
        out.push_back({back, tcp_flags::syn | tcp_flags::ack, direction::from_server});
        out.push_back({in, tcp_flags::ack, direction::from_client});
        out.push_back({back, tcp_flags::ack | tcp_flags::psh, direction::from_server});
    }
    return out;
}

}  // namespace

TEST_SUITE("sharded_session_table") {

TEST_CASE("both directions of a NAT connection map to the same shard") {
    session_table_config cfg;
    cfg.capacity = 1024;
    sharded_session_table<flow_key4, true> t(4, cfg);
    const auto pkts = nat_traffic(2000);
    std::vector<std::size_t> per_shard(4);
    for (std::size_t i = 0; i < pkts.size(); i += 4) {
        const std::size_t s = t.shard_for(pkts[i].key, pkts[i].dir);
        ++per_shard[s];
        for (std::size_t j = 1; j < 4; ++j) CHECK(t.shard_for(pkts[i + j].key, pkts[i + j].dir) == s);
    }
    for (const std::size_t n : per_shard) CHECK(n > 350);  // 500 each expected; spread is even
    CHECK_THROWS_AS((sharded_session_table<flow_key4, true>(0, cfg)), std::invalid_argument);
}

TEST_CASE("one thread per shard, each taking its own packets: every reply finds its session") {
    constexpr std::size_t shards = 2, connections = 20000;
    session_table_config cfg;
    cfg.capacity = connections;  // room for all of them in any one shard
    sharded_session_table<flow_key4, true> t(shards, cfg);
    const auto pkts = nat_traffic(connections);
    std::atomic<std::size_t> replies_found{0}, created{0};
    std::vector<std::thread> workers;
    for (std::size_t w = 0; w < shards; ++w) {
        workers.emplace_back([&, w] {
            auto& table = t.shard(w);
            std::size_t found = 0, made = 0;
            std::uint32_t now = 0;
            for (const nat_packet& p : pkts) {
                if (t.shard_for(p.key, p.dir) != w) continue;  // another worker's packet
                ++now;
                auto r = table.track(p.key, p.flags, now);
                if (r.verdict == session_verdict::created) {
                    // The dispatcher has picked the back end; it records the reply key, which
                    // in this stream is the key of the connection's next packet.
                    const auto idx = static_cast<std::size_t>(&p - pkts.data());
                    made += table.set_reply(r.session, pkts[idx + 1].key, now);
                }
                if (p.dir == direction::from_server && r.verdict == session_verdict::existing &&
                    r.dir == direction::from_server)
                    ++found;
            }
            replies_found += found;
            created += made;
        });
    }
    for (auto& th : workers) th.join();
    CHECK(created == connections);  // every connection created once, its reply key recorded
    CHECK(replies_found == 2 * connections);  // the SYN-ACK and the data reply of each
    CHECK(t.size() == connections);
    std::size_t est_now = 0;
    for (std::size_t w = 0; w < shards; ++w) t.shard(w).for_each([&](auto& s) { est_now += s.state == session_state::established; });
    CHECK(est_now == connections);
}

}  // TEST_SUITE
