// clusternet/sharded_session_table.hpp -- one session table per worker thread, and the choice
// of which worker owns a packet.
//
// Tables are single-threaded by design (no locks, no atomics on the packet path), so a
// dispatcher on several cores runs one table per receive queue and must send every packet of a
// flow, in both directions, to the same one:
//
//  - One direction only (direct routing, tunnels): AF_PACKET's PACKET_FANOUT_HASH already does
//    it. The kernel's flow hash is symmetric and per-flow, so each fanout socket sees whole
//    flows and simply owns a table; nothing needs computing in user space.
//  - Both directions with NAT: the reply carries the back end's address, not the cluster's, so
//    the kernel's hash sends it to another socket. Both directions do carry the client's
//    address and port (source inbound, destination outbound): shard by those. shard_for()
//    computes that choice, for a steering step in user space or for an eBPF fanout program
//    (PACKET_FANOUT_EBPF) to mirror.
//
// tests/sharded_session_table_test.cpp runs one thread per shard over one packet stream, each
// taking only its own packets, and checks that every reply finds its session.
#pragma once

#include <clusternet/session_table.hpp>

#include <cstddef>
#include <stdexcept>
#include <vector>

namespace clusternet {

template <class Key, bool Bidirectional = false>
class sharded_session_table {
public:
    using table_type = session_table<Key, Bidirectional>;

    /// `shards` tables of `per_shard.capacity` sessions each. Throws std::invalid_argument for
    /// 0 shards, and what session_table's constructor throws.
    sharded_session_table(std::size_t shards, const session_table_config& per_shard, std::uint64_t shard_seed = 0x5bd1e995U)
        : seed_(shard_seed) {
        if (shards == 0) throw std::invalid_argument("sharded_session_table: need at least one shard");
        tables_.reserve(shards);
        for (std::size_t i = 0; i < shards; ++i) tables_.emplace_back(per_shard);
    }

    [[nodiscard]] std::size_t shard_count() const noexcept { return tables_.size(); }
    [[nodiscard]] table_type& shard(std::size_t i) noexcept { return tables_[i]; }
    [[nodiscard]] const table_type& shard(std::size_t i) const noexcept { return tables_[i]; }

    /// The shard that owns a packet with key `k` going `dir`: a hash of the client's address
    /// and port, which packets of both directions carry. O(1), a multiply or two.
    [[nodiscard]] std::size_t shard_for(const Key& k, direction dir) const noexcept {
        Key client{};
        if (dir == direction::from_client) {
            client.src = k.src;
            client.sport = k.sport;
        } else {
            client.src = k.dst;
            client.sport = k.dport;
        }
        client.protocol = k.protocol;
        // Lemire's multiply-shift range reduction on the top 32 bits (shards < 2^32).
        return static_cast<std::size_t>(((hash(client, seed_) >> 32) * tables_.size()) >> 32);
    }

    /// Sessions in all shards (not synchronised: call it when the workers are quiet, or accept
    /// a snapshot that is slightly off).
    [[nodiscard]] std::size_t size() const noexcept {
        std::size_t n = 0;
        for (const auto& t : tables_) n += t.size();
        return n;
    }

private:
    std::vector<table_type> tables_;
    std::uint64_t seed_;
};

}  // namespace clusternet
