// The session table against the hash tables a load balancer would otherwise use, at 1 thousand,
// 1 million and 10 million live IPv4 sessions, and under a SYN flood.
//
//   BM_SessionTable_HitLookup    find(key, now) on a live session, then read its back end
//   BM_BoostFlat_HitLookup       boost::unordered_flat_map (Boost 1.81): find, read the back end
//   BM_AbslFlat_HitLookup        absl::flat_hash_map (Debian's libabsl): find, read the back end
//   BM_RteHash_HitLookup         DPDK's rte_hash: rte_hash_lookup, read the back end from the
//                                value array indexed by the key's position (DPDK's idiom)
//   BM_RteHash_HitLookupBulk     the same through rte_hash_lookup_bulk, 32 keys a call (DPDK's
//                                prefetching fast path; shown for what batching is worth)
//   BM_<Impl>_MissLookup         find of keys never inserted
//   BM_<Impl>_Insert             insert of a new key into a table of N - B ... N sessions
//   BM_<Impl>_Erase              erase by key from a table of N ... N - B sessions (the session
//                                table: find + erase(session*), as its API asks)
//   BM_<Impl>_Churn              one erase and one insert per iteration at a steady N: a session
//                                ends, another begins (no paused timers; checks Insert + Erase)
//   BM_SessionTable_HitLookupBatch  find_batch(), 32 keys a call: hash and prefetch every
//                                bucket, then every matching session, then compare (the
//                                batched form a dispatcher uses on a ring block)
//   BM_SessionTable_Track        track(key, ACK, now) on an established session: what a
//                                dispatcher calls per packet
//   BM_SessionTable6_HitLookup   find on an IPv6 table (flow_key6, session_table6)
//   BM_SessionTable_SynFlood     a table of 1 M sessions, half of them established and active;
//                                9 packets in 10 are spoofed SYNs, 10.8 M of them in the run
//                                (10.8 x capacity); ns per packet and the established sessions kept
//
// Every benchmark reports `bytes_per_session`: the session table's bytes_per_session() (slab,
// index and the object, over its capacity); for Boost and Abseil the bytes their allocator
// handed out (counted by counting_allocator) plus the object, over size(); for rte_hash the
// growth of DPDK's malloc heap when the table is created (buckets, key store, free-slot ring)
// plus the value array, over size() -- all measured, none estimated.
//
// Fairness:
//  - Keys are flow_key4: random client addresses (a quarter from 1024 carrier-grade NAT
//    addresses) and ephemeral ports 32768-60999 towards 4 VIPs on port 443 or 80, generated
//    from fixed seeds. Lookups visit the keys in a random order unrelated to insertion order
//    (the slab is filled in insertion order), reading a pre-shuffled key array sequentially,
//    as packets arrive with their headers already in cache.
//  - The peers map flow_key4 to peer_value, the session's information minus the key, packed to
//    11 bytes; Boost's and Abseil's slots are 28 bytes (flow_key4 is 16 bytes, 4-aligned), the
//    session is 24 bytes (key and protocol packed). Boost and Abseil hash with
//    clusternet::hash, as the session table does (Boost is told it avalanches, so it does not
//    remix); rte_hash with its default, CRC32 (rte_hash_crc). Boost and Abseil reserve(N)
//    first; rte_hash is created with entries = N, single-threaded (no concurrency flags, its
//    fastest mode) and with RTE_HASH_EXTRA_FLAGS_EXT_TABLE, DPDK's way to guarantee that N
//    keys fit: without it, 1000 entries refuse a key at 999 (ENOSPC; 8-slot buckets, rounded
//    to a power of two, are 98 % full). Its memory counts the extension buckets.
//  - The session table's capacity is N: full, its index at its highest load (92 %), the worst
//    case for its lookups and exactly the memory a table for N sessions costs. The peers run at
//    whatever load their growth policy gives N.
//  - Tables are built once per implementation and size and reused by every benchmark of that
//    implementation (Google Benchmark calls a function several times while it sizes a run);
//    Insert, Erase and Churn put the table back as they found it. Only one implementation's
//    tables exist at a time: never four tables of 10 M sessions in memory together.
//  - Insert and Erase time their own operation only: every B = min(1024, N / 4) operations the
//    timer is paused while B of the other operation restore the size.
//
// CI's smoke run (--benchmark_min_time=0.01) runs the 1 thousand and 1 million sizes only; the
// 10 million ones are added by CLUSTERNET_BENCH_LARGE=1 in the environment (building and ageing
// their tables takes most of a minute; the process peaks at 2.8 GB):
//   CLUSTERNET_BENCH_LARGE=1 build/gcc/benchmarks/session_table_benchmark --benchmark_min_time=0.5
#include <clusternet/session_table.hpp>

#include <absl/container/flat_hash_map.h>
#include <benchmark/benchmark.h>
#include <boost/unordered/unordered_flat_map.hpp>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include <sched.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <typeindex>
#include <utility>
#include <vector>

namespace cn = clusternet;

namespace {

constexpr std::uint32_t now = 1'000'000;  // the clock never moves: nothing expires
constexpr std::uint16_t no_backend = cn::session4::no_backend;

// The back end a session is given: any function of the key, so a re-inserted key gets it back.
[[nodiscard]] std::uint16_t backend_for(const cn::flow_key4& k) noexcept {
    return static_cast<std::uint16_t>((k.src ^ k.sport) % 61);
}
[[nodiscard]] std::uint16_t backend_for(const cn::flow_key6& k) noexcept { return static_cast<std::uint16_t>(k.sport % 61); }

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

struct key_set4 {
    std::vector<cn::flow_key4> live;   ///< the N keys of a built table, in insertion order
    std::vector<cn::flow_key4> hits;   ///< the same keys in another random order
    std::vector<cn::flow_key4> spare;  ///< R keys churn inserts (out of the table at rest), R ~ N
    std::vector<cn::flow_key4> miss;   ///< keys never inserted
    std::size_t block = 0;             ///< B: operations between paused timers in Insert/Erase
};

constexpr std::uint32_t vips[4] = {0xCB00710AU, 0xCB00710BU, 0xCB00710CU, 0xCB00710DU};  // 203.0.113.10-13

// A key as one 64-bit code, so that uniqueness is a sort away:
// client address (32) | client port (16) | VIP index (8) | port 443 or 80 (8).
[[nodiscard]] std::uint64_t random_code(std::mt19937_64& rng) {
    const std::uint64_t a = rng(), b = rng();
    const auto cgnat = static_cast<std::uint32_t>(0x64400000U + (a & 1023U));  // 100.64.0.0/10-ish pool
    const std::uint32_t src = (b & 3U) == 0 ? cgnat : static_cast<std::uint32_t>(a >> 32);
    const std::uint64_t sport = 32768 + ((b >> 8) & 0xFFFFFFU) % 28232;
    const std::uint64_t vip = (b >> 40) & 3U;
    const std::uint64_t https = ((b >> 42) & 3U) != 0;  // three in four on 443
    return (std::uint64_t{src} << 32) | (sport << 16) | (vip << 8) | https;
}

[[nodiscard]] cn::flow_key4 decode(std::uint64_t c) noexcept {
    return cn::flow_key4{static_cast<std::uint32_t>(c >> 32), vips[(c >> 8) & 3U], static_cast<std::uint16_t>(c >> 16),
                         static_cast<std::uint16_t>((c & 1U) ? 443 : 80), cn::ip_protocol::tcp, {0, 0, 0}};
}

[[nodiscard]] std::vector<std::uint64_t> unique_codes(std::size_t count, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::uint64_t> codes;
    codes.reserve(count + count / 64 + 16);
    while (codes.size() < count) {
        while (codes.size() < count + count / 128 + 8) codes.push_back(random_code(rng));
        std::sort(codes.begin(), codes.end());
        codes.erase(std::unique(codes.begin(), codes.end()), codes.end());
    }
    std::shuffle(codes.begin(), codes.end(), rng);  // sorted order would be a gift to the slab
    codes.resize(count);
    return codes;
}

const key_set4& keys4(std::size_t n) {
    static std::map<std::size_t, std::unique_ptr<key_set4>> cache;
    auto& slot = cache[n];
    if (!slot) {
        auto ks = std::make_unique<key_set4>();
        ks->block = std::min<std::size_t>(1024, std::max<std::size_t>(n / 4, 1));
        const std::size_t r = n / ks->block * ks->block;
        const std::size_t m = std::min<std::size_t>(n, std::size_t{1} << 20);
        const auto codes = unique_codes(n + r + m, 0xC0FFEE + n);
        ks->live.reserve(n);
        for (std::size_t i = 0; i < n; ++i) ks->live.push_back(decode(codes[i]));
        for (std::size_t i = n; i < n + r; ++i) ks->spare.push_back(decode(codes[i]));
        for (std::size_t i = n + r; i < n + r + m; ++i) ks->miss.push_back(decode(codes[i]));
        ks->hits = ks->live;
        std::shuffle(ks->hits.begin(), ks->hits.end(), std::mt19937_64(0xBEEF + n));
        slot = std::move(ks);
    }
    return *slot;
}

struct key_set6 {
    std::vector<cn::flow_key6> live, hits;
};

// Clients from random /64s of 2001:db8::/32 with random interface identifiers (collisions among
// 10 million 96-bit random values: about 1e-15), towards 4 VIPs.
const key_set6& keys6(std::size_t n) {
    static std::map<std::size_t, std::unique_ptr<key_set6>> cache;
    auto& slot = cache[n];
    if (!slot) {
        auto ks = std::make_unique<key_set6>();
        std::mt19937_64 rng(0x6666 + n);
        ks->live.resize(n);
        for (auto& k : ks->live) {
            const std::uint64_t a = rng(), b = rng();
            cn::store_be64(k.src.bytes.data(), 0x20010DB800000000ULL | (a >> 32));
            cn::store_be64(k.src.bytes.data() + 8, b);
            cn::store_be64(k.dst.bytes.data(), 0x20010DB8FFFF0000ULL);
            cn::store_be64(k.dst.bytes.data() + 8, 0x10 + (a & 3U));
            k.sport = static_cast<std::uint16_t>(32768 + ((a >> 2) & 0xFFFFU) % 28232);
            k.dport = ((a >> 20) & 3U) != 0 ? 443 : 80;
            k.protocol = cn::ip_protocol::tcp;
        }
        ks->hits = ks->live;
        std::shuffle(ks->hits.begin(), ks->hits.end(), rng);
        slot = std::move(ks);
    }
    return *slot;
}

// ---------------------------------------------------------------------------------------------
// The tables, behind one small interface: backend_of, insert, erase, bytes_per_session.
// ---------------------------------------------------------------------------------------------

// The session's information minus its key: back end, state, last packet, caller's word.
struct __attribute__((packed)) peer_value {
    std::uint16_t backend;
    std::uint8_t state;
    std::uint32_t last_seen;
    std::uint32_t user;
};
static_assert(sizeof(peer_value) == 11);

[[nodiscard]] peer_value value_for(const cn::flow_key4& k) noexcept {
    return peer_value{backend_for(k), static_cast<std::uint8_t>(cn::session_state::established), now, 0};
}

// Counts the bytes a container holds from its allocator (into a counter of that container's).
template <class T>
struct counting_allocator {
    using value_type = T;
    std::size_t* live = nullptr;

    explicit counting_allocator(std::size_t* counter) noexcept : live(counter) {}
    template <class U>
    counting_allocator(const counting_allocator<U>& o) noexcept : live(o.live) {}  // NOLINT: rebinding is implicit
    [[nodiscard]] T* allocate(std::size_t n) {
        *live += n * sizeof(T);
        return std::allocator<T>{}.allocate(n);
    }
    void deallocate(T* p, std::size_t n) noexcept {
        *live -= n * sizeof(T);
        std::allocator<T>{}.deallocate(p, n);
    }
    template <class U>
    friend bool operator==(const counting_allocator& a, const counting_allocator<U>& b) noexcept { return a.live == b.live; }
};

struct session_table4_impl {
    cn::session_table4 t;
    std::size_t failed = 0;

    explicit session_table4_impl(const key_set4& ks) : t(config(ks.live.size())) {
        for (const auto& k : ks.live) failed += !insert(k);
    }
    static cn::session_table_config config(std::size_t n) {
        cn::session_table_config c;
        c.capacity = n;
        return c;
    }
    [[nodiscard]] std::uint16_t backend_of(const cn::flow_key4& k) noexcept {
        const cn::session4* s = t.find(k, now);
        return s != nullptr ? s->backend : no_backend;
    }
    bool insert(const cn::flow_key4& k) noexcept {
        cn::session4* s = t.insert(k, cn::session_state::established, now);
        if (s == nullptr) return false;
        s->backend = backend_for(k);
        return true;
    }
    bool erase(const cn::flow_key4& k) noexcept {
        cn::session4* s = t.find(k, now);
        if (s == nullptr) return false;
        t.erase(s);
        return true;
    }
    [[nodiscard]] std::size_t size() const noexcept { return t.size(); }
    [[nodiscard]] double bytes_per_session() const noexcept { return t.bytes_per_session(); }
};

struct avalanching_flow_hash : cn::flow_key_hash {
    using is_avalanching = void;  // clusternet::hash is a full mixer: Boost need not remix
};

template <class Map>
struct std_like_impl {
    std::unique_ptr<std::size_t> bytes = std::make_unique<std::size_t>(0);  // stays put if the map moves
    Map m{0, typename Map::hasher{}, typename Map::key_equal{}, typename Map::allocator_type(bytes.get())};
    std::size_t failed = 0;

    explicit std_like_impl(const key_set4& ks) {
        m.reserve(ks.live.size());
        for (const auto& k : ks.live) failed += !insert(k);
    }
    [[nodiscard]] std::uint16_t backend_of(const cn::flow_key4& k) const noexcept {
        const auto it = m.find(k);
        return it != m.end() ? it->second.backend : no_backend;
    }
    bool insert(const cn::flow_key4& k) { return m.emplace(k, value_for(k)).second; }
    bool erase(const cn::flow_key4& k) { return m.erase(k) == 1; }
    [[nodiscard]] std::size_t size() const noexcept { return m.size(); }
    // What the allocator holds now (churn may have rehashed) and the object, over the sessions.
    [[nodiscard]] double bytes_per_session() const noexcept {
        return static_cast<double>(*bytes + sizeof(m)) / static_cast<double>(m.size());
    }
};

using boost_map = boost::unordered_flat_map<cn::flow_key4, peer_value, avalanching_flow_hash, std::equal_to<cn::flow_key4>,
                                            counting_allocator<std::pair<const cn::flow_key4, peer_value>>>;
using absl_map = absl::flat_hash_map<cn::flow_key4, peer_value, cn::flow_key_hash, std::equal_to<cn::flow_key4>,
                                     counting_allocator<std::pair<const cn::flow_key4, peer_value>>>;
using boost_flat_impl = std_like_impl<boost_map>;
using absl_flat_impl = std_like_impl<absl_map>;

// DPDK needs its EAL for rte_hash (its memory comes from rte_malloc, its free-slot ring is a
// memzone). Started on first use, with no huge pages, no devices and no shared files; the
// thread's CPU affinity is put back afterwards, so the rte_hash benchmarks run as the others do.
int eal_state = 0;  // 0 not tried, 1 up, -1 failed

bool eal_ready(std::string& why) {
    static std::string error;
    int& state = eal_state;
    if (state == 0) {
        cpu_set_t cpus;
        const bool saved = sched_getaffinity(0, sizeof cpus, &cpus) == 0;
        const char* args[] = {"session_table_benchmark", "--no-huge", "--no-pci", "--no-shconf", "--no-telemetry", "-m", "2048",
                              "-l", "0", "--log-level=error", "--file-prefix=clusternet_bench"};
        const int n = static_cast<int>(sizeof args / sizeof args[0]);
        if (rte_eal_init(n, const_cast<char**>(args)) < 0) {
            state = -1;
            error = std::string("rte_eal_init failed: ") + rte_strerror(rte_errno);
        } else {
            state = 1;
        }
        if (saved) sched_setaffinity(0, sizeof cpus, &cpus);
    }
    why = error;
    return state == 1;
}

[[nodiscard]] std::size_t rte_heap_bytes() {
    std::size_t total = 0;
    for (unsigned i = 0; i < rte_socket_count(); ++i) {
        rte_malloc_socket_stats s{};
        if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(static_cast<int>(i)), &s) == 0) total += s.heap_allocsz_bytes;
    }
    return total;
}

struct rte_hash_impl {
    rte_hash* h = nullptr;
    std::vector<peer_value> values;  // indexed by the position rte_hash gives each key
    std::size_t heap = 0;
    std::size_t failed = 0;
    std::string error;

    explicit rte_hash_impl(const key_set4& ks) {
        if (!eal_ready(error)) return;
        const std::string name = "cn_bench_" + std::to_string(ks.live.size());
        rte_hash_parameters p{};
        p.name = name.c_str();
        p.entries = static_cast<std::uint32_t>(std::max<std::size_t>(ks.live.size(), 8));
        p.key_len = sizeof(cn::flow_key4);
        p.hash_func = rte_hash_crc;
        p.hash_func_init_val = 0;
        p.socket_id = SOCKET_ID_ANY;
        p.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;  // else it cannot take all N keys (ENOSPC at 1000)
        const std::size_t before = rte_heap_bytes();
        h = rte_hash_create(&p);
        if (h == nullptr) {
            error = std::string("rte_hash_create failed: ") + rte_strerror(rte_errno);
            return;
        }
        heap = rte_heap_bytes() - before;
        values.resize(static_cast<std::size_t>(rte_hash_max_key_id(h)) + 1);
        for (const auto& k : ks.live) failed += !insert(k);
    }
    rte_hash_impl(const rte_hash_impl&) = delete;
    rte_hash_impl& operator=(const rte_hash_impl&) = delete;
    ~rte_hash_impl() { rte_hash_free(h); }

    [[nodiscard]] std::uint16_t backend_of(const cn::flow_key4& k) const noexcept {
        const std::int32_t pos = rte_hash_lookup(h, &k);
        return pos >= 0 ? values[static_cast<std::size_t>(pos)].backend : no_backend;
    }
    bool insert(const cn::flow_key4& k) noexcept {
        const std::int32_t pos = rte_hash_add_key(h, &k);
        if (pos < 0) return false;
        values[static_cast<std::size_t>(pos)] = value_for(k);
        return true;
    }
    bool erase(const cn::flow_key4& k) noexcept { return rte_hash_del_key(h, &k) >= 0; }
    [[nodiscard]] std::size_t size() const noexcept { return static_cast<std::size_t>(rte_hash_count(h)); }
    [[nodiscard]] double bytes_per_session() const noexcept {
        return static_cast<double>(heap + values.capacity() * sizeof(peer_value) + sizeof(*this)) /
               static_cast<double>(size());
    }
};

struct session_table6_impl {
    cn::session_table6 t;
    std::size_t failed = 0;

    explicit session_table6_impl(const key_set6& ks) : t(session_table4_impl::config(ks.live.size())) {
        for (const auto& k : ks.live) {
            cn::session6* s = t.insert(k, cn::session_state::established, now);
            if (s == nullptr) ++failed;
            else s->backend = backend_for(k);
        }
    }
    [[nodiscard]] std::uint16_t backend_of(const cn::flow_key6& k) noexcept {
        const cn::session6* s = t.find(k, now);
        return s != nullptr ? s->backend : no_backend;
    }
    [[nodiscard]] double bytes_per_session() const noexcept { return t.bytes_per_session(); }
};

// Churn swaps keys in pairs: pair c takes hits[p] out and puts spare[p] in on even passes over
// the R spare keys, and the reverse on odd passes (p = c % R). hits[] is in random order, so the
// sessions that end are scattered over the slab, as they are in real traffic.
struct churn_keys {
    const key_set4& ks;
    [[nodiscard]] std::size_t r() const noexcept { return ks.spare.size(); }
    [[nodiscard]] bool even(std::size_t c) const noexcept { return (c / r()) % 2 == 0; }
    [[nodiscard]] const cn::flow_key4& out(std::size_t c) const noexcept {
        return even(c) ? ks.hits[c % r()] : ks.spare[c % r()];
    }
    [[nodiscard]] const cn::flow_key4& in(std::size_t c) const noexcept {
        return even(c) ? ks.spare[c % r()] : ks.hits[c % r()];
    }
};

// Tables that churn are aged before they are measured: 2R pairs of churn, so that nearly every
// session (hits[0..R), R = N rounded down to a multiple of B) has left and come back, the spare
// keys have come and gone, and the table holds hits[] again. A table fresh from its build is not
// what a load balancer looks up in: in the session table, the keys that cuckoo has moved to their
// second bucket go from 10 % to 34 % with churn (and a miss reads two buckets nine times in ten
// instead of four in ten); Abseil's tombstones and Boost's anti-drift accounting build up too.
template <class Impl>
void age(Impl& t, const key_set4& ks) {
    const churn_keys ck{ks};
    for (std::size_t c = 0; c < 2 * ck.r(); ++c) {
        t.failed += !t.erase(ck.out(c));
        t.failed += !t.insert(ck.in(c));
    }
}

// Built tables of one implementation, by size. Asking for another implementation's table
// destroys these first: never two implementations' tables in memory at once.
struct table_cache {
    std::type_index impl = typeid(void);
    std::map<std::size_t, std::shared_ptr<void>> tables;
};
table_cache& cache() {
    static table_cache c;
    return c;
}

template <class Impl, class Keys>
Impl& table(std::size_t n, const Keys& ks) {
    table_cache& c = cache();
    if (c.impl != typeid(Impl)) {
        c.tables.clear();
        c.impl = typeid(Impl);
    }
    auto& slot = c.tables[n];
    if (!slot) {
        auto t = std::make_shared<Impl>(ks);
        if constexpr (requires { t->erase(ks.live[0]); }) {
            if (t->failed == 0 && t->size() == n) age(*t, ks);
        }
        slot = std::move(t);
    }
    return *static_cast<Impl*>(slot.get());
}

bool large() {
    const char* e = std::getenv("CLUSTERNET_BENCH_LARGE");
    return e != nullptr && *e != '\0' && std::strcmp(e, "0") != 0;
}

// Sizes (live sessions): 1 thousand and 1 million always, 10 million with CLUSTERNET_BENCH_LARGE=1.
void sizes(benchmark::internal::Benchmark* b) {
    b->Arg(1000)->Arg(1000000);
    if (large()) b->Arg(10000000);
}
void large_sizes(benchmark::internal::Benchmark* b) {
    b->Arg(1000000);
    if (large()) b->Arg(10000000);
}

template <class Impl>
bool usable(benchmark::State& state, const Impl& t) {
    if constexpr (requires { t.error; }) {
        if (!t.error.empty()) {
            state.SkipWithError(t.error.c_str());
            return false;
        }
    }
    if (t.failed != 0) {
        state.SkipWithError("the table refused some of its N keys or failed to age");
        return false;
    }
    return true;
}

// A sample of hits found with the right back end and misses not found: after build and churn.
template <class Impl>
bool consistent(Impl& t, const key_set4& ks) {
    if (t.size() != ks.live.size()) return false;
    const std::size_t step = std::max<std::size_t>(ks.live.size() / 4096, 1);
    for (std::size_t i = 0; i < ks.live.size(); i += step)
        if (t.backend_of(ks.live[i]) != backend_for(ks.live[i])) return false;
    for (std::size_t i = 0; i < ks.miss.size(); i += step)
        if (t.backend_of(ks.miss[i]) != no_backend) return false;
    return true;
}

template <class Impl>
void report(benchmark::State& state, const Impl& t) {
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.counters["bytes_per_session"] = t.bytes_per_session();
}

// ---------------------------------------------------------------------------------------------
// The operations, one template each for every implementation.
// ---------------------------------------------------------------------------------------------

template <class Impl>
void hit_lookup(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const key_set4& ks = keys4(n);
    Impl& t = table<Impl>(n, ks);
    if (!usable(state, t)) return;
    std::size_t i = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(t.backend_of(ks.hits[i]));
        if (++i == n) i = 0;
    }
    if (!consistent(t, ks)) state.SkipWithError("lookups went wrong");
    report(state, t);
}

template <class Impl>
void miss_lookup(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const key_set4& ks = keys4(n);
    Impl& t = table<Impl>(n, ks);
    if (!usable(state, t)) return;
    const std::size_t m = ks.miss.size();
    std::size_t i = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(t.backend_of(ks.miss[i]));
        if (++i == m) i = 0;
    }
    report(state, t);
}

// After `done` whole pairs: put every hits[] key back in and every spare key out.
template <class Impl>
std::size_t restore(Impl& t, const churn_keys& ck, std::size_t done) {
    std::size_t failed = 0;
    const std::size_t p0 = done % ck.r();
    const std::size_t from = ck.even(done) ? 0 : p0, to = ck.even(done) ? p0 : ck.r();
    for (std::size_t p = from; p < to; ++p) {
        failed += !t.erase(ck.ks.spare[p]);
        failed += !t.insert(ck.ks.hits[p]);
    }
    return failed;
}

template <class Impl>
void insert(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const key_set4& ks = keys4(n);
    Impl& t = table<Impl>(n, ks);
    if (!usable(state, t)) return;
    const churn_keys ck{ks};
    const std::size_t b = ks.block;
    std::size_t c = 0, block_end = 0, failed = 0;
    for (auto _ : state) {
        if (c == block_end) {
            state.PauseTiming();
            for (std::size_t j = c; j < c + b; ++j) failed += !t.erase(ck.out(j));
            block_end = c + b;
            state.ResumeTiming();
        }
        failed += !t.insert(ck.in(c));
        ++c;
    }
    for (; c < block_end; ++c) failed += !t.insert(ck.in(c));
    failed += restore(t, ck, c);
    if (failed != 0 || !consistent(t, ks)) state.SkipWithError("an insert or erase failed");
    report(state, t);
}

template <class Impl>
void erase(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const key_set4& ks = keys4(n);
    Impl& t = table<Impl>(n, ks);
    if (!usable(state, t)) return;
    const churn_keys ck{ks};
    const std::size_t b = ks.block;
    std::size_t c = 0, block_end = b, failed = 0;
    for (auto _ : state) {
        if (c == block_end) {
            state.PauseTiming();
            for (std::size_t j = c - b; j < c; ++j) failed += !t.insert(ck.in(j));
            block_end = c + b;
            state.ResumeTiming();
        }
        failed += !t.erase(ck.out(c));
        ++c;
    }
    for (; c < block_end; ++c) failed += !t.erase(ck.out(c));
    for (std::size_t j = c - b; j < c; ++j) failed += !t.insert(ck.in(j));
    failed += restore(t, ck, c);
    if (failed != 0 || !consistent(t, ks)) state.SkipWithError("an insert or erase failed");
    report(state, t);
}

template <class Impl>
void churn(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const key_set4& ks = keys4(n);
    Impl& t = table<Impl>(n, ks);
    if (!usable(state, t)) return;
    const churn_keys ck{ks};
    std::size_t c = 0, failed = 0;
    for (auto _ : state) {
        failed += !t.erase(ck.out(c));
        failed += !t.insert(ck.in(c));
        ++c;
    }
    failed += restore(t, ck, c);
    if (failed != 0 || !consistent(t, ks)) state.SkipWithError("an insert or erase failed");
    report(state, t);
}

void BM_SessionTable_HitLookup(benchmark::State& s) { hit_lookup<session_table4_impl>(s); }
void BM_SessionTable_MissLookup(benchmark::State& s) { miss_lookup<session_table4_impl>(s); }
void BM_SessionTable_Insert(benchmark::State& s) { insert<session_table4_impl>(s); }
void BM_SessionTable_Erase(benchmark::State& s) { erase<session_table4_impl>(s); }
void BM_SessionTable_Churn(benchmark::State& s) { churn<session_table4_impl>(s); }

void BM_SessionTable_Track(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const key_set4& ks = keys4(n);
    auto& t = table<session_table4_impl>(n, ks);
    if (!usable(state, t)) return;
    const std::uint64_t before = t.t.stats().count(cn::session_verdict::existing);
    std::size_t i = 0;
    for (auto _ : state) {
        const auto r = t.t.track(ks.hits[i], cn::tcp_flags::ack, now);
        benchmark::DoNotOptimize(r.session);
        if (++i == n) i = 0;
    }
    if (t.t.stats().count(cn::session_verdict::existing) - before != static_cast<std::uint64_t>(state.iterations()))
        state.SkipWithError("track did not find its sessions");
    report(state, t);
}

void BM_SessionTable6_HitLookup(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const key_set6& ks = keys6(n);
    auto& t = table<session_table6_impl>(n, ks);
    if (t.failed != 0) {
        state.SkipWithError("the table refused some of its N keys");
        return;
    }
    std::size_t i = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(t.backend_of(ks.hits[i]));
        if (++i == n) i = 0;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.counters["bytes_per_session"] = t.bytes_per_session();
}

void BM_BoostFlat_HitLookup(benchmark::State& s) { hit_lookup<boost_flat_impl>(s); }
void BM_BoostFlat_MissLookup(benchmark::State& s) { miss_lookup<boost_flat_impl>(s); }
void BM_BoostFlat_Insert(benchmark::State& s) { insert<boost_flat_impl>(s); }
void BM_BoostFlat_Erase(benchmark::State& s) { erase<boost_flat_impl>(s); }
void BM_BoostFlat_Churn(benchmark::State& s) { churn<boost_flat_impl>(s); }

void BM_AbslFlat_HitLookup(benchmark::State& s) { hit_lookup<absl_flat_impl>(s); }
void BM_AbslFlat_MissLookup(benchmark::State& s) { miss_lookup<absl_flat_impl>(s); }
void BM_AbslFlat_Insert(benchmark::State& s) { insert<absl_flat_impl>(s); }
void BM_AbslFlat_Erase(benchmark::State& s) { erase<absl_flat_impl>(s); }
void BM_AbslFlat_Churn(benchmark::State& s) { churn<absl_flat_impl>(s); }

void BM_RteHash_HitLookup(benchmark::State& s) { hit_lookup<rte_hash_impl>(s); }
void BM_RteHash_MissLookup(benchmark::State& s) { miss_lookup<rte_hash_impl>(s); }
void BM_RteHash_Insert(benchmark::State& s) { insert<rte_hash_impl>(s); }
void BM_RteHash_Erase(benchmark::State& s) { erase<rte_hash_impl>(s); }
void BM_RteHash_Churn(benchmark::State& s) { churn<rte_hash_impl>(s); }

void BM_RteHash_HitLookupBulk(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const key_set4& ks = keys4(n);
    rte_hash_impl& t = table<rte_hash_impl>(n, ks);
    if (!usable(state, t)) return;
    constexpr std::size_t burst = 32;  // RTE_HASH_LOOKUP_BULK_MAX
    std::array<const void*, burst> keys{};
    std::array<std::int32_t, burst> pos{};
    std::size_t i = 0, j = burst;
    for (auto _ : state) {
        if (j == burst) {
            for (auto& k : keys) {
                k = &ks.hits[i];
                if (++i == n) i = 0;
            }
            rte_hash_lookup_bulk(t.h, keys.data(), burst, pos.data());
            j = 0;
        }
        const std::int32_t p = pos[j++];
        std::uint16_t backend = no_backend;
        if (p >= 0) backend = t.values[static_cast<std::size_t>(p)].backend;
        benchmark::DoNotOptimize(backend);
    }
    report(state, t);
}

void BM_SessionTable_HitLookupBatch(benchmark::State& state) {
    // find_batch(), 32 keys a call (as a dispatcher looks up a ring block's packets), the back
    // end read per key: the same work per item as HitLookup, and as RteHash_HitLookupBulk.
    const auto n = static_cast<std::size_t>(state.range(0));
    const key_set4& ks = keys4(n);
    session_table4_impl& t = table<session_table4_impl>(n, ks);
    if (!usable(state, t)) return;
    constexpr std::size_t burst = 32;
    std::array<cn::session4*, burst> found{};
    const std::size_t wrap = n / burst * burst;
    std::size_t i = 0, j = burst;
    for (auto _ : state) {
        if (j == burst) {
            t.t.find_batch(std::span<const cn::flow_key4>(ks.hits).subspan(i, burst), found, now);
            i += burst;
            if (i == wrap) i = 0;
            j = 0;
        }
        const cn::session4* s = found[j++];
        benchmark::DoNotOptimize(s != nullptr ? s->backend : no_backend);
    }
    report(state, t);
}

// ---------------------------------------------------------------------------------------------
// SYN flood
// ---------------------------------------------------------------------------------------------

constexpr std::size_t flood_capacity = 1'000'000;
constexpr std::int64_t flood_packets = 12'000'000;  // 10.8 M spoofed SYNs: 10.8 x capacity

void BM_SessionTable_SynFlood(benchmark::State& state) {
    const auto cap = static_cast<std::size_t>(state.range(0));
    const std::size_t established = cap / 2;
    cn::session_table_config cfg;
    cfg.capacity = cap;
    cn::session_table4 t(cfg);
    const auto codes = unique_codes(established, 0xF100D);
    std::vector<cn::flow_key4> clients(established);
    std::uint32_t clock = 0;
    for (std::size_t i = 0; i < established; ++i) {
        clients[i] = decode(codes[i]);
        t.track(clients[i], cn::tcp_flags::syn, clock);
        t.track(clients[i], cn::tcp_flags::ack, clock);
    }
    std::shuffle(clients.begin(), clients.end(), std::mt19937_64(7));
    std::uint64_t x = 0x9E3779B97F4A7C15ULL;  // splitmix64: cheap enough to run in the loop
    const auto next = [&x] {
        std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    };
    std::size_t packet = 0, e = 0, spoofed = 0;
    for (auto _ : state) {
        if (++packet % 10 == 0) {  // one packet in ten is an established client's
            benchmark::DoNotOptimize(t.track(clients[e], cn::tcp_flags::ack, clock).session);
            if (++e == established) e = 0;
        } else {
            const std::uint64_t r = next();
            const cn::flow_key4 k{static_cast<std::uint32_t>(r), vips[(r >> 48) & 3U], static_cast<std::uint16_t>(r >> 32),
                                  443, cn::ip_protocol::tcp, {0, 0, 0}};
            benchmark::DoNotOptimize(t.track(k, cn::tcp_flags::syn, clock).session);
            ++spoofed;
        }
        if (packet % 10000 == 0) ++clock;  // 10 Mpps on a 1 ms clock
    }
    std::size_t kept = 0;
    for (const auto& k : clients) {
        const cn::session4* s = t.find(k, clock);
        kept += s != nullptr && s->state == cn::session_state::established;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.counters["established_kept"] = static_cast<double>(kept) / static_cast<double>(established);
    state.counters["evicted_half_open"] = static_cast<double>(t.stats().evicted_half_open);
    state.counters["table_full"] = static_cast<double>(t.stats().count(cn::session_verdict::table_full));
    state.counters["spoofed_per_capacity"] = static_cast<double>(spoofed) / static_cast<double>(cap);
    state.counters["bytes_per_session"] = t.bytes_per_session();
    if (t.stats().index_full != 0) state.SkipWithError("the index refused insertions");
}

}  // namespace

// Registered implementation by implementation: each builds its tables once (see table()).
BENCHMARK(BM_SessionTable_HitLookup)->Apply(sizes);
BENCHMARK(BM_SessionTable_HitLookupBatch)->Apply(sizes);
BENCHMARK(BM_SessionTable_MissLookup)->Apply(sizes);
BENCHMARK(BM_SessionTable_Insert)->Apply(sizes);
BENCHMARK(BM_SessionTable_Erase)->Apply(sizes);
BENCHMARK(BM_SessionTable_Churn)->Apply(sizes);
BENCHMARK(BM_SessionTable_Track)->Apply(sizes);
BENCHMARK(BM_BoostFlat_HitLookup)->Apply(sizes);
BENCHMARK(BM_BoostFlat_MissLookup)->Apply(sizes);
BENCHMARK(BM_BoostFlat_Insert)->Apply(sizes);
BENCHMARK(BM_BoostFlat_Erase)->Apply(sizes);
BENCHMARK(BM_BoostFlat_Churn)->Apply(sizes);
BENCHMARK(BM_AbslFlat_HitLookup)->Apply(sizes);
BENCHMARK(BM_AbslFlat_MissLookup)->Apply(sizes);
BENCHMARK(BM_AbslFlat_Insert)->Apply(sizes);
BENCHMARK(BM_AbslFlat_Erase)->Apply(sizes);
BENCHMARK(BM_AbslFlat_Churn)->Apply(sizes);
BENCHMARK(BM_RteHash_HitLookup)->Apply(sizes);
BENCHMARK(BM_RteHash_HitLookupBulk)->Apply(sizes);
BENCHMARK(BM_RteHash_MissLookup)->Apply(sizes);
BENCHMARK(BM_RteHash_Insert)->Apply(sizes);
BENCHMARK(BM_RteHash_Erase)->Apply(sizes);
BENCHMARK(BM_RteHash_Churn)->Apply(sizes);
BENCHMARK(BM_SessionTable6_HitLookup)->Apply(large_sizes);
BENCHMARK(BM_SessionTable_SynFlood)->Arg(flood_capacity)->Iterations(flood_packets)->Unit(benchmark::kNanosecond);

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    cache().tables.clear();  // rte_hash tables go before DPDK does
    if (eal_state == 1) rte_eal_cleanup();
    return 0;
}
