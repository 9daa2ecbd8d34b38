// clusternet/cluster_view.hpp -- the members of a cluster, readable on the fast path without locks.
//
// A `cluster_view` holds up to `max_members` back ends in STABLE slots: a member's slot number
// (`member_id`, a std::uint16_t) is what a session table stores as a flow's back end, so slots
// are never renumbered. A removed slot is not handed to a new member while a dispatcher may still
// hold flows on it or still see it in an old snapshot (see `slot_reusable`).
//
// What lives where:
//  - configuration (address, port, MAC, weight, state, hash key) lives in an immutable
//    `cluster_snapshot`. Every change (add, remove, re-weight, drain, up/down) builds a new
//    snapshot and publishes it with one atomic pointer store; readers never see a half-made one.
//  - counters that change per flow or per report live in per-slot atomics owned by the view and
//    shared by every snapshot: the live-flow count of each member (the dispatchers' flow_opened /
//    flow_closed calls) and the four DPR load metrics with the time of the last report. Load
//    reports therefore cost a few relaxed stores, not a new snapshot.
//
// Reclamation -- why not std::atomic<std::shared_ptr>: on GCC 12 it is not lock-free (libstdc++
// guards it with a spin lock), and even a lock-free one would put a contended reference-count
// increment on every read. We use quiescent-state-based reclamation, the scheme of Linux RCU's
// QSBR flavour and DPDK's rte_rcu_qsbr:
//  - each dispatcher thread owns a `cluster_reader`, registered with the view (a bounded array of
//    cache-line-sized slots, `max_readers`);
//  - `reader.refresh()` -- call it between batches of packets, never in the middle of using a
//    snapshot -- announces "I hold nothing older than epoch E" and loads the current snapshot.
//    When nothing changed it is one acquire load and a compare (about 1 ns); after a change it is
//    one sequentially consistent store and load (about 20 cycles on x86);
//  - `reader.snapshot()` between refreshes is a plain pointer dereference: no atomic at all;
//  - the writer retires the old snapshot with the epoch of its successor and frees it once every
//    online reader has announced that epoch. A reader that blocks (waiting on I/O) should go
//    `offline()` so that it does not hold back reclamation; retired snapshots otherwise pile up
//    (bounded by the number of updates made while the reader sleeps).
//
// Flow accounting, for lc/wlc/sed/nq, LARD and the drain logic: a dispatcher calls
// `flow_opened(id)` when it binds a new flow to member `id` (before its next refresh()) and
// `flow_closed(id)` when the flow ends for any reason (FIN/RST, idle expiry, eviction). Each is one
// relaxed atomic add (a `lock xadd` on x86: about 5 ns uncontended; a cache-line transfer, 50 to
// 100 ns, when another core touched a nearby counter). The counters are packed 16 to a cache line
// so that least-connections can scan 1000 members in 4 KB. We chose counters in the view over
// per-thread counters summed on read because every connection-aware pick reads N counters: a
// per-thread layout would make that N x threads loads per pick, and new flows are much rarer than
// packets. A dispatcher that opens flows at several million per second per core should shard its
// members over threads instead.
//
// Threading: every control-plane call (add/remove/set_*/update) may be made from any thread; they
// are serialised by a mutex inside the view and may allocate and throw. flow_opened, flow_closed,
// report_load and the snapshot accessors are noexcept, lock-free and may be called from any thread.
// A cluster_reader belongs to one thread. The view must outlive its readers.
#pragma once

#include <clusternet/address.hpp>
#include <clusternet/error.hpp>
#include <clusternet/flow_key.hpp>
#include <clusternet/member_sink.hpp>  // load_metrics: DPR's four metrics

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace clusternet {

/// A member's stable slot number; what a session table stores as a flow's back end.
using member_id = std::uint16_t;
/// "No back end": the verdict of a scheduler that has nothing to pick (equal to the session
/// table's `no_backend`).
inline constexpr member_id no_member = 0xFFFF;
/// The largest number of slots a view can have (no_member is not a slot).
inline constexpr std::size_t max_member_slots = 0xFFFF;

enum class member_state : std::uint8_t {
    up,        ///< takes new flows (if its weight is not 0)
    draining,  ///< takes no new flows; its existing flows finish
    down,      ///< failed (health check, silent reports): no new flows
    removed,   ///< the slot holds no member (never used, or removed)
};

[[nodiscard]] constexpr std::string_view to_string(member_state s) noexcept {
    switch (s) {
        case member_state::up: return "up";
        case member_state::draining: return "draining";
        case member_state::down: return "down";
        case member_state::removed: return "removed";
    }
    return "unknown";
}


/// What the control plane says about a new member.
struct member_config {
    ipv6_address address;  ///< IPv6, or IPv4 as v4-mapped (ipv6_address::v4_mapped)
    std::uint16_t port = 0;  ///< the back end's service port, 0 when the VIP's port is used
    mac_address mac;
    std::uint32_t weight = 1;
    member_state state = member_state::up;  ///< up, draining or down
    /// The member's identity for consistent hashing (Maglev, rendezvous). 0: derived from the
    /// address and port, so a member that leaves and returns keeps its place in the tables.
    std::uint64_t key = 0;

    [[nodiscard]] static member_config v4(ipv4_address a, std::uint32_t weight = 1) {
        member_config c;
        c.address = ipv6_address::v4_mapped(a);
        c.weight = weight;
        return c;
    }
};

/// One slot of a snapshot.
struct member_info {
    member_id id = no_member;
    member_state state = member_state::removed;
    std::uint16_t port = 0;
    std::uint32_t weight = 0;
    ipv6_address address;
    mac_address mac;
    std::uint64_t key = 0;

    [[nodiscard]] constexpr bool present() const noexcept { return state != member_state::removed; }
    /// Up with a weight above 0: may take new flows.
    [[nodiscard]] constexpr bool eligible() const noexcept { return state == member_state::up && weight > 0; }
    [[nodiscard]] constexpr bool is_v4() const noexcept { return address.is_v4_mapped(); }
};

namespace detail {

/// The per-slot atomics shared by every snapshot of one view.
struct member_counters {
    std::unique_ptr<std::atomic<std::int32_t>[]> live;  // contiguous: 16 a cache line
    struct load_cell {
        std::atomic<std::uint32_t> open_connections{0};
        std::atomic<std::uint16_t> cpu_load{0};
        std::atomic<std::uint32_t> redirected_connections{0};
        std::atomic<std::uint32_t> active_sockets{0};
        std::atomic<std::int64_t> last_report_ns{std::numeric_limits<std::int64_t>::min()};
    };
    std::unique_ptr<load_cell[]> load;

    explicit member_counters(std::size_t n)
        : live(std::make_unique<std::atomic<std::int32_t>[]>(n)), load(std::make_unique<load_cell[]>(n)) {
        for (std::size_t i = 0; i < n; ++i) live[i].store(0, std::memory_order_relaxed);
    }
};

[[nodiscard]] inline std::uint64_t derive_member_key(const ipv6_address& a, std::uint16_t port) noexcept {
    const std::uint64_t k = hash_words(load_native<std::uint64_t>(a.bytes.data()),
                                       load_native<std::uint64_t>(a.bytes.data() + 8), 0x6D61676C65760000ULL);
    const std::uint64_t h = hash_words(k, port, 0x9E3779B97F4A7C15ULL);
    return h == 0 ? 1 : h;
}

}  // namespace detail

/// An immutable picture of the cluster: its slots, the eligible members, weight totals.
/// Live counters (flows, load) are read through it from the view's shared atomics.
class cluster_snapshot {
public:
    /// Increases by one with every published change; schedulers use it to know when to rebuild.
    [[nodiscard]] std::uint64_t generation() const noexcept { return generation_; }
    /// Slots 0 .. slot_count()-1 exist (some may be `removed`).
    [[nodiscard]] std::size_t slot_count() const noexcept { return slots_.size(); }
    [[nodiscard]] std::span<const member_info> slots() const noexcept { return slots_; }
    /// Precondition: id < slot_count().
    [[nodiscard]] const member_info& operator[](member_id id) const noexcept {
        CLUSTERNET_ASSERT(id < slots_.size());
        return slots_[id];
    }
    /// The member in slot `id`, or nullptr when the slot is out of range or removed.
    [[nodiscard]] const member_info* find(member_id id) const noexcept {
        return id < slots_.size() && slots_[id].present() ? &slots_[id] : nullptr;
    }
    /// Members that may take new flows (up, weight > 0), in slot order.
    [[nodiscard]] std::span<const member_id> eligible() const noexcept { return eligible_; }
    /// The weights of eligible() members, index for index (contiguous, for O(N) scans).
    [[nodiscard]] std::span<const std::uint32_t> eligible_weights() const noexcept { return eligible_weights_; }
    [[nodiscard]] bool is_eligible(member_id id) const noexcept {
        return id < slots_.size() && slots_[id].eligible();
    }
    [[nodiscard]] std::size_t present_count() const noexcept { return present_; }
    /// Sum and maximum of the eligible members' weights; whether they are all equal.
    [[nodiscard]] std::uint64_t total_weight() const noexcept { return total_weight_; }
    [[nodiscard]] std::uint32_t max_weight() const noexcept { return max_weight_; }
    [[nodiscard]] bool uniform_weights() const noexcept { return uniform_; }

    /// Flows the dispatchers have open on member `id` (flow_opened minus flow_closed). One
    /// relaxed load. Precondition: id < slot_count().
    [[nodiscard]] std::uint32_t live_flows(member_id id) const noexcept {
        const std::int32_t n = counters_->live[id].load(std::memory_order_relaxed);
        return n > 0 ? static_cast<std::uint32_t>(n) : 0U;
    }
    /// The last load report of member `id` (fields may come from two consecutive reports when
    /// a report lands during the read). Precondition: id < slot_count().
    [[nodiscard]] load_metrics load(member_id id) const noexcept {
        const auto& c = counters_->load[id];
        return {c.open_connections.load(std::memory_order_relaxed), c.cpu_load.load(std::memory_order_relaxed),
                c.redirected_connections.load(std::memory_order_relaxed),
                c.active_sockets.load(std::memory_order_relaxed)};
    }
    /// When member `id` last reported; time_point::min() when it never did.
    [[nodiscard]] std::chrono::steady_clock::time_point last_report(member_id id) const noexcept {
        const std::int64_t ns = counters_->load[id].last_report_ns.load(std::memory_order_relaxed);
        if (ns == std::numeric_limits<std::int64_t>::min()) return std::chrono::steady_clock::time_point::min();
        return std::chrono::steady_clock::time_point(
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::nanoseconds(ns)));
    }

private:
    friend class cluster_view;
    cluster_snapshot(std::uint64_t gen, std::vector<member_info> slots, const detail::member_counters* c)
        : generation_(gen), slots_(std::move(slots)), counters_(c) {
        std::uint32_t min_w = std::numeric_limits<std::uint32_t>::max();
        for (const member_info& m : slots_) {
            if (m.present()) ++present_;
            if (!m.eligible()) continue;
            eligible_.push_back(m.id);
            eligible_weights_.push_back(m.weight);
            total_weight_ += m.weight;
            max_weight_ = std::max(max_weight_, m.weight);
            min_w = std::min(min_w, m.weight);
        }
        uniform_ = eligible_.empty() || min_w == max_weight_;
    }

    std::uint64_t generation_ = 0;
    std::vector<member_info> slots_;
    std::vector<member_id> eligible_;
    std::vector<std::uint32_t> eligible_weights_;
    std::size_t present_ = 0;
    std::uint64_t total_weight_ = 0;
    std::uint32_t max_weight_ = 0;
    bool uniform_ = true;
    const detail::member_counters* counters_ = nullptr;
};

/// Sizes fixed at construction.
struct cluster_view_config {
    std::size_t max_members = 1024;  ///< slots, at most max_member_slots (65535)
    std::size_t max_readers = 64;    ///< cluster_reader objects alive at once
};

class cluster_view;

/// A dispatcher thread's handle on a view: the snapshot it uses and its quiescent-state epoch.
/// Not thread-safe (one per thread); movable, not copyable.
class cluster_reader {
public:
    cluster_reader() noexcept = default;
    cluster_reader(cluster_reader&& o) noexcept { *this = std::move(o); }
    cluster_reader& operator=(cluster_reader&& o) noexcept;
    cluster_reader(const cluster_reader&) = delete;
    cluster_reader& operator=(const cluster_reader&) = delete;
    ~cluster_reader();

    /// The snapshot loaded by the last refresh(): a plain dereference. Valid until the next
    /// refresh() or offline(). Precondition: a registered, online reader.
    [[nodiscard]] const cluster_snapshot& snapshot() const noexcept { return *snap_; }
    /// Declares every earlier snapshot released and loads the current one. Lock-free; call it
    /// between batches (about 1 ns when nothing changed). Goes online if offline.
    const cluster_snapshot& refresh() noexcept;
    /// Stops holding any snapshot (before blocking): the writer need not wait for this reader.
    void offline() noexcept;
    [[nodiscard]] bool registered() const noexcept { return view_ != nullptr; }

private:
    friend class cluster_view;
    cluster_view* view_ = nullptr;
    std::size_t slot_ = 0;
    std::uint64_t seen_ = 0;
    const cluster_snapshot* snap_ = nullptr;
};

/// Edits gathered by cluster_view::update() and published as one snapshot.
class cluster_editor {
public:
    /// Adds a member in the lowest reusable slot. Throws std::system_error(errc::capacity_exceeded)
    /// when no slot is free, errc::invalid_argument for state `removed` or a duplicate
    /// address+port.
    member_id add(const member_config& c);
    /// Removes a member: it gets no new flows; its slot is not reused while flows remain.
    /// Throws std::system_error(errc::invalid_argument) when `id` holds no member.
    void remove(member_id id);
    /// Weight 0 takes the member out of new-flow scheduling, like draining.
    void set_weight(member_id id, std::uint32_t weight);
    /// up, draining or down (`removed`: use remove()).
    void set_state(member_id id, member_state s);
    [[nodiscard]] const member_info& operator[](member_id id) const;

private:
    friend class cluster_view;
    cluster_editor(cluster_view& v, std::vector<member_info> slots) : view_(v), slots_(std::move(slots)) {}
    member_info& at(member_id id);
    cluster_view& view_;
    std::vector<member_info> slots_;
};

/// The cluster's members. See the file comment for the threading and reclamation design.
class cluster_view {
public:
    /// Throws std::system_error(errc::invalid_argument) when max_members is 0 or above
    /// max_member_slots, or max_readers is 0.
    explicit cluster_view(const cluster_view_config& cfg = {});
    cluster_view(const cluster_view&) = delete;
    cluster_view& operator=(const cluster_view&) = delete;
    /// Precondition: no cluster_reader of this view is alive.
    ~cluster_view();

    [[nodiscard]] std::size_t max_members() const noexcept { return cfg_.max_members; }

    // --- readers ---------------------------------------------------------------------------
    /// A reader for the calling thread, online, holding the current snapshot. Throws
    /// std::system_error(errc::capacity_exceeded) when max_readers readers exist.
    [[nodiscard]] cluster_reader make_reader();
    /// The current snapshot, for control-plane code that holds no reader: a copy of the pointer
    /// kept alive by shared ownership. Takes the writer mutex; not for the fast path.
    [[nodiscard]] std::shared_ptr<const cluster_snapshot> current() const;

    // --- control plane (serialised, may allocate and throw) ---------------------------------
    /// Applies `f(cluster_editor&)` and publishes the result as one new snapshot (nothing is
    /// published if f throws). Returns the new generation. f runs under the view's mutex: it
    /// must not call the view's control-plane functions (use the editor). Cost: a copy of the
    /// slots (about 5 us for 1000 members).
    template <class F>
    std::uint64_t update(F&& f);
    member_id add_member(const member_config& c) {
        member_id id = no_member;
        update([&](cluster_editor& e) { id = e.add(c); });
        return id;
    }
    /// As add_member, reporting failure through `ec` (no_member then) instead of throwing.
    member_id add_member(const member_config& c, std::error_code& ec) noexcept;
    void remove_member(member_id id) { update([&](cluster_editor& e) { e.remove(id); }); }
    void set_weight(member_id id, std::uint32_t w) { update([&](cluster_editor& e) { e.set_weight(id, w); }); }
    void set_state(member_id id, member_state s) { update([&](cluster_editor& e) { e.set_state(id, s); }); }
    void drain(member_id id) { set_state(id, member_state::draining); }

    /// Frees retired snapshots no reader can hold any more. Called by every update; cheap.
    void reclaim();
    /// Waits (yielding) until every online reader has refreshed past the current generation,
    /// then reclaims: afterwards no reader sees an older snapshot.
    void synchronize();
    /// Snapshots retired but not yet freed (for tests and monitoring).
    [[nodiscard]] std::size_t retired_count() const;

    // --- fast path (noexcept, lock-free) ---------------------------------------------------
    /// A dispatcher bound a new flow to `id`. Call before the reader's next refresh().
    void flow_opened(member_id id) noexcept { counters_.live[id].fetch_add(1, std::memory_order_relaxed); }
    /// A flow on `id` ended (closed, expired or evicted).
    void flow_closed(member_id id) noexcept { counters_.live[id].fetch_sub(1, std::memory_order_relaxed); }
    /// Flows open on `id`. Precondition: id < max_members().
    [[nodiscard]] std::uint32_t live_flows(member_id id) const noexcept {
        const std::int32_t n = counters_.live[id].load(std::memory_order_relaxed);
        return n > 0 ? static_cast<std::uint32_t>(n) : 0U;
    }
    /// A member's load report (from the load-report listener). Lock-free: five relaxed stores.
    /// Ignored when id >= max_members().
    void report_load(member_id id, const load_metrics& m, std::chrono::steady_clock::time_point when) noexcept {
        if (id >= cfg_.max_members) return;
        auto& c = counters_.load[id];
        c.open_connections.store(m.open_connections, std::memory_order_relaxed);
        c.cpu_load.store(m.cpu_load, std::memory_order_relaxed);
        c.redirected_connections.store(m.redirected_connections, std::memory_order_relaxed);
        c.active_sockets.store(m.active_sockets, std::memory_order_relaxed);
        c.last_report_ns.store(std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count(),
                               std::memory_order_relaxed);
    }

    /// True when `id` takes no new flows (draining, down, removed, or weight 0) and has no live
    /// flow left: a draining member may now be removed or stopped. Control plane (takes the mutex).
    [[nodiscard]] bool drained(member_id id) const;
    /// True when slot `id` is removed, no reader can still see it in an older snapshot, and it
    /// has no live flows: add() may give it to a new member.
    [[nodiscard]] bool slot_reusable(member_id id) const;

private:
    friend class cluster_reader;
    friend class cluster_editor;
    static constexpr std::uint64_t offline_epoch = std::numeric_limits<std::uint64_t>::max();

    struct alignas(64) reader_slot {
        std::atomic<std::uint64_t> seen{offline_epoch};
        bool used = false;  // guarded by mutex_
    };
    struct retired {
        std::shared_ptr<const cluster_snapshot> snap;
        std::uint64_t epoch;  // freed once every online reader has seen this epoch
    };

    [[nodiscard]] std::uint64_t min_seen() const noexcept;
    [[nodiscard]] bool slot_reusable_locked(member_id id) const;
    void reclaim_locked();
    void release_reader(std::size_t slot) noexcept;

    cluster_view_config cfg_;
    detail::member_counters counters_;
    std::unique_ptr<reader_slot[]> readers_;
    mutable std::mutex mutex_;
    std::atomic<const cluster_snapshot*> current_{nullptr};
    std::atomic<std::uint64_t> epoch_{1};
    std::shared_ptr<const cluster_snapshot> owned_;  // the current snapshot
    std::vector<retired> retired_;
    std::vector<std::uint64_t> removed_at_;  // per slot: the generation that removed it (0: never used)
};

// ---------------------------------------------------------------------------------------------
// Implementation.
// ---------------------------------------------------------------------------------------------

inline cluster_view::cluster_view(const cluster_view_config& cfg)
    : cfg_(cfg), counters_(cfg.max_members == 0 || cfg.max_members > max_member_slots ? 1 : cfg.max_members) {
    if (cfg.max_members == 0 || cfg.max_members > max_member_slots)
        throw std::system_error(make_error_code(errc::invalid_argument),
                                "cluster_view: max_members must be 1 to 65535, got " + std::to_string(cfg.max_members));
    if (cfg.max_readers == 0)
        throw std::system_error(make_error_code(errc::invalid_argument), "cluster_view: max_readers must be at least 1");
    readers_ = std::make_unique<reader_slot[]>(cfg.max_readers);
    removed_at_.assign(cfg.max_members, 0);
    owned_ = std::shared_ptr<const cluster_snapshot>(new cluster_snapshot(1, {}, &counters_));
    current_.store(owned_.get(), std::memory_order_release);
}

inline cluster_view::~cluster_view() = default;

inline cluster_reader cluster_view::make_reader() {
    const std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < cfg_.max_readers; ++i) {
        if (readers_[i].used) continue;
        readers_[i].used = true;
        cluster_reader r;
        r.view_ = this;
        r.slot_ = i;
        r.seen_ = epoch_.load(std::memory_order_relaxed);
        readers_[i].seen.store(r.seen_, std::memory_order_seq_cst);
        r.snap_ = current_.load(std::memory_order_seq_cst);
        return r;
    }
    throw std::system_error(make_error_code(errc::capacity_exceeded),
                            "cluster_view: all " + std::to_string(cfg_.max_readers) +
                                " reader slots are in use (raise cluster_view_config::max_readers)");
}

inline std::shared_ptr<const cluster_snapshot> cluster_view::current() const {
    const std::lock_guard lock(mutex_);
    return owned_;
}

template <class F>
std::uint64_t cluster_view::update(F&& f) {
    const std::lock_guard lock(mutex_);
    cluster_editor ed(*this, owned_->slots_);
    std::forward<F>(f)(ed);
    const std::uint64_t gen = owned_->generation_ + 1;
    for (std::size_t i = 0; i < ed.slots_.size(); ++i)
        if (ed.slots_[i].state == member_state::removed && i < owned_->slots_.size() && owned_->slots_[i].present())
            removed_at_[i] = gen;
    // Trailing slots that never held a member need not be carried.
    while (!ed.slots_.empty() && ed.slots_.back().state == member_state::removed &&
           removed_at_[ed.slots_.size() - 1] == 0)
        ed.slots_.pop_back();
    auto next = std::shared_ptr<const cluster_snapshot>(new cluster_snapshot(gen, std::move(ed.slots_), &counters_));
    retired_.push_back({std::move(owned_), gen});
    owned_ = std::move(next);
    current_.store(owned_.get(), std::memory_order_seq_cst);
    epoch_.store(gen, std::memory_order_seq_cst);
    reclaim_locked();
    return gen;
}

inline member_id cluster_view::add_member(const member_config& c, std::error_code& ec) noexcept {
    try {
        ec.clear();
        return add_member(c);
    } catch (const std::system_error& e) {
        ec = e.code();
    } catch (const std::bad_alloc&) {
        ec = std::make_error_code(std::errc::not_enough_memory);
    }
    return no_member;
}

inline std::uint64_t cluster_view::min_seen() const noexcept {
    std::uint64_t m = offline_epoch;
    for (std::size_t i = 0; i < cfg_.max_readers; ++i)
        m = std::min(m, readers_[i].seen.load(std::memory_order_seq_cst));
    return m;
}

inline void cluster_view::reclaim_locked() {
    const std::uint64_t m = min_seen();
    std::erase_if(retired_, [m](const retired& r) { return r.epoch <= m; });
}

inline void cluster_view::reclaim() {
    const std::lock_guard lock(mutex_);
    reclaim_locked();
}

inline void cluster_view::synchronize() {
    const std::uint64_t target = epoch_.load(std::memory_order_seq_cst);
    while (min_seen() < target) std::this_thread::yield();
    reclaim();
}

inline std::size_t cluster_view::retired_count() const {
    const std::lock_guard lock(mutex_);
    return retired_.size();
}

inline bool cluster_view::drained(member_id id) const {
    const std::lock_guard lock(mutex_);
    if (id >= cfg_.max_members) return true;
    const bool takes_new = id < owned_->slots_.size() && owned_->slots_[id].eligible();
    return !takes_new && live_flows(id) == 0;
}

inline bool cluster_view::slot_reusable_locked(member_id id) const {
    if (id >= cfg_.max_members) return false;
    if (id < owned_->slots_.size() && owned_->slots_[id].present()) return false;
    if (removed_at_[id] == 0) return true;  // never used
    // No reader may still see the member (a reader that has seen the removing generation holds
    // no older snapshot, and made its flow_opened calls before announcing it), and it has no flows.
    return min_seen() >= removed_at_[id] && counters_.live[id].load(std::memory_order_acquire) <= 0;
}

inline bool cluster_view::slot_reusable(member_id id) const {
    const std::lock_guard lock(mutex_);
    return slot_reusable_locked(id);
}

inline void cluster_view::release_reader(std::size_t slot) noexcept {
    const std::lock_guard lock(mutex_);
    readers_[slot].seen.store(offline_epoch, std::memory_order_seq_cst);
    readers_[slot].used = false;
}

// --- editor ----------------------------------------------------------------------------------

inline member_info& cluster_editor::at(member_id id) {
    return const_cast<member_info&>(static_cast<const cluster_editor&>(*this)[id]);
}

inline const member_info& cluster_editor::operator[](member_id id) const {
    if (id >= slots_.size() || !slots_[id].present())
        throw std::system_error(make_error_code(errc::invalid_argument),
                                "cluster_view: slot " + std::to_string(id) + " holds no member");
    return slots_[id];
}

inline member_id cluster_editor::add(const member_config& c) {
    if (c.state == member_state::removed)
        throw std::system_error(make_error_code(errc::invalid_argument),
                                "cluster_view: a new member must be up, draining or down");
    for (const member_info& m : slots_)
        if (m.present() && m.address == c.address && m.port == c.port)
            throw std::system_error(make_error_code(errc::invalid_argument),
                                    "cluster_view: " + c.address.to_string() + " port " + std::to_string(c.port) +
                                        " is already member " + std::to_string(m.id));
    std::size_t id = 0;
    while (id < view_.cfg_.max_members &&
           !((id >= slots_.size() || !slots_[id].present()) && view_.slot_reusable_locked(static_cast<member_id>(id))))
        ++id;
    if (id == view_.cfg_.max_members)
        throw std::system_error(make_error_code(errc::capacity_exceeded),
                                "cluster_view: all " + std::to_string(view_.cfg_.max_members) +
                                    " member slots are taken or still draining");
    if (id >= slots_.size()) {
        const std::size_t old = slots_.size();
        slots_.resize(id + 1);
        for (std::size_t i = old; i < slots_.size(); ++i) slots_[i].id = static_cast<member_id>(i);
    }
    member_info& m = slots_[id];
    m.id = static_cast<member_id>(id);
    m.state = c.state;
    m.port = c.port;
    m.weight = c.weight;
    m.address = c.address;
    m.mac = c.mac;
    m.key = c.key != 0 ? c.key : detail::derive_member_key(c.address, c.port);
    view_.counters_.live[id].store(0, std::memory_order_relaxed);
    return m.id;
}

inline void cluster_editor::remove(member_id id) {
    member_info& m = at(id);
    m = member_info{};
    m.id = id;
}

inline void cluster_editor::set_weight(member_id id, std::uint32_t weight) { at(id).weight = weight; }

inline void cluster_editor::set_state(member_id id, member_state s) {
    if (s == member_state::removed)
        throw std::system_error(make_error_code(errc::invalid_argument),
                                "cluster_view: use remove() to remove member " + std::to_string(id));
    at(id).state = s;
}

// --- reader ----------------------------------------------------------------------------------

inline cluster_reader& cluster_reader::operator=(cluster_reader&& o) noexcept {
    if (this != &o) {
        if (view_ != nullptr) view_->release_reader(slot_);
        view_ = std::exchange(o.view_, nullptr);
        slot_ = o.slot_;
        seen_ = o.seen_;
        snap_ = std::exchange(o.snap_, nullptr);
    }
    return *this;
}

inline cluster_reader::~cluster_reader() {
    if (view_ != nullptr) view_->release_reader(slot_);
}

inline const cluster_snapshot& cluster_reader::refresh() noexcept {
    const std::uint64_t e = view_->epoch_.load(std::memory_order_acquire);
    if (e != seen_ || snap_ == nullptr) {
        seen_ = e;
        // Release the old snapshot (and every flow_opened made with it) before loading anew.
        view_->readers_[slot_].seen.store(e, std::memory_order_seq_cst);
        snap_ = view_->current_.load(std::memory_order_seq_cst);
    }
    return *snap_;
}

inline void cluster_reader::offline() noexcept {
    view_->readers_[slot_].seen.store(cluster_view::offline_epoch, std::memory_order_seq_cst);
    seen_ = 0;
    snap_ = nullptr;
}

}  // namespace clusternet
