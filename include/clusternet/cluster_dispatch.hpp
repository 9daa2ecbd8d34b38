// clusternet/cluster_dispatch.hpp -- a dispatcher driven by a cluster view and a scheduler.
//
//   cluster_picker<S>   the dispatcher's Picker over a cluster_view: picks with scheduler S from
//                       the thread's snapshot, counts flows into the view (flow_opened /
//                       flow_closed, what lc/wlc/sed/nq and draining read), and, between
//                       bursts, refresh() follows the view: the scheduler is rebuilt and the
//                       dispatcher's back-end slots synced when the snapshot changed.
//   any_scheduler       every layer-4 policy behind one type, chosen by name at run time (the
//                       reference dispatchers' `scheduler = maglev`): a std::variant, visited
//                       once per new flow, never per packet.
//
// Slots are the view's member ids, so a session's back end, the view's counters and the
// dispatcher's slots all speak of the same member. A member that is draining or down keeps its
// slot in the dispatcher (its flows go on) and gets no new flows from the scheduler; a member
// removed from the view is removed from the dispatcher (its flows end on their next packet).
#pragma once

#include <clusternet/cluster_view.hpp>
#include <clusternet/dispatcher.hpp>
#include <clusternet/scheduler.hpp>
#include <clusternet/schedulers/hashing.hpp>
#include <clusternet/schedulers/least_connections.hpp>
#include <clusternet/schedulers/maglev.hpp>
#include <clusternet/schedulers/random.hpp>
#include <clusternet/schedulers/round_robin.hpp>

#include <concepts>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace clusternet {

/// The layer-4 policies by name (IPVS's names where IPVS has the policy).
class any_scheduler {
public:
    static constexpr std::string_view name = "any";
    static constexpr std::string_view names = "rr wrr lc wlc sed nq random wrandom twos sh dh hrw maglev";

    /// Throws std::invalid_argument naming the known policies for an unknown `policy`.
    explicit any_scheduler(std::string_view policy, std::uint64_t seed = 1) : impl_(make(policy, seed)) {}

    [[nodiscard]] std::string_view policy() const noexcept {
        return std::visit([](const auto& s) { return std::decay_t<decltype(s)>::name; }, impl_);
    }
    void update(const cluster_snapshot& v) {
        std::visit([&](auto& s) { s.update(v); }, impl_);
    }
    [[nodiscard]] member_id pick(const cluster_snapshot& v, const pick_input& in) noexcept {
        return std::visit([&](auto& s) noexcept { return s.pick(v, in); }, impl_);
    }

private:
    using variant = std::variant<round_robin, weighted_round_robin, least_connections, weighted_least_connections,
                                 shortest_expected_delay, never_queue, random_choice, weighted_random,
                                 power_of_two_choices, source_hash, destination_hash, rendezvous, maglev>;

    static variant make(std::string_view p, std::uint64_t seed) {
        if (p == "rr") return round_robin{};
        if (p == "wrr") return weighted_round_robin{};
        if (p == "lc") return least_connections{};
        if (p == "wlc") return weighted_least_connections{};
        if (p == "sed") return shortest_expected_delay{};
        if (p == "nq") return never_queue{};
        if (p == "random") return random_choice(seed);
        if (p == "wrandom") return weighted_random(seed);
        if (p == "twos") return power_of_two_choices(seed);
        if (p == "sh") return source_hash{};
        if (p == "dh") return destination_hash{};
        if (p == "hrw") return rendezvous{};
        if (p == "maglev" || p == "mh") return maglev{};
        throw std::invalid_argument("unknown scheduler \"" + std::string(p) + "\" (known: " + std::string(names) + ")");
    }

    variant impl_;
};

template <Scheduler S>
class cluster_picker {
public:
    /// Registers a reader with `view` (throws what make_reader() throws when the view has no
    /// reader slot left) and builds the scheduler for the current snapshot.
    cluster_picker(cluster_view& view, S scheduler) : view_(&view), reader_(view.make_reader()), sched_(std::move(scheduler)) {
        generation_ = ~std::uint64_t{0};
        refresh_scheduler(sched_, reader_.refresh(), generation_);
    }

    /// The dispatcher's call for a new flow (dispatcher4's key, or dispatcher6's).
    template <class Key>
        requires std::same_as<Key, flow_key4> || std::same_as<Key, flow_key6>
    [[nodiscard]] std::uint16_t operator()(const Key& k, std::uint64_t h) noexcept {
        const flow_key key(k);
        pick_input in;
        in.hash = h;
        in.key = &key;
        return sched_.pick(reader_.snapshot(), in);
    }
    /// Whether member `id` may take new flows in the thread's snapshot (up, weight > 0).
    [[nodiscard]] bool eligible(std::uint16_t id) const noexcept { return reader_.snapshot().is_eligible(id); }
    void flow_opened(std::uint16_t id) noexcept { view_->flow_opened(id); }
    void flow_closed(std::uint16_t id) noexcept { view_->flow_closed(id); }

    /// Between bursts (and once before the first packet): loads the current snapshot; when it
    /// changed, rebuilds the scheduler and makes the dispatcher's slots match the view's
    /// members of its family (IPv4 members for a dispatcher4, IPv6 ones for a dispatcher6). A
    /// view that mixes families hands the scheduler members a dispatcher cannot reach, whose
    /// flows it counts as no_backend: give each family its own view. Returns whether the slots
    /// changed.
    /// Not noexcept: a rebuild may allocate.
    template <class Dispatcher>
    bool refresh(Dispatcher& d) {
        const cluster_snapshot& snap = reader_.refresh();
        refresh_scheduler(sched_, snap, generation_);
        if (snap.generation() == synced_) return false;
        synced_ = snap.generation();
        const std::size_t slots = d.config().max_backends;
        for (std::size_t i = 0; i < slots; ++i) {
            const auto id = static_cast<std::uint16_t>(i);
            constexpr bool v4 = serves_v4<Dispatcher>();
            if (i < snap.slot_count() && snap[id].present() && snap[id].is_v4() == v4) {
                const member_info& m = snap[id];
                if constexpr (v4) d.set_backend(id, backend_endpoint{m.address.v4(), m.mac, m.port});
                else d.set_backend(id, backend_endpoint6{m.address, m.mac, m.port});
            } else if (d.has_backend(id)) {
                d.remove_backend(id);
            }
        }
        return true;
    }

    /// Stops holding a snapshot before the thread blocks (the next refresh() resumes).
    void offline() noexcept { reader_.offline(); }
    [[nodiscard]] S& scheduler() noexcept { return sched_; }
    [[nodiscard]] const cluster_snapshot& snapshot() const noexcept { return reader_.snapshot(); }

private:
    /// A dispatcher names its family (basic_dispatcher's family_type); one that does not (an
    /// example's own) is taken as IPv4.
    template <class Dispatcher>
    static constexpr bool serves_v4() noexcept {
        if constexpr (requires { Dispatcher::family_type::family; }) return Dispatcher::family_type::family == ip_family::v4;
        else return true;
    }

    cluster_view* view_;
    cluster_reader reader_;
    S sched_;
    std::uint64_t generation_ = 0;        // of the snapshot the scheduler was built for
    std::uint64_t synced_ = ~std::uint64_t{0};  // of the snapshot the dispatcher's slots match
};

}  // namespace clusternet
