// clusternet/member_sink.hpp -- what the control plane tells about cluster members: the four
// load metrics of DPR and the `MemberSink` concept that load-report listeners and health checkers
// feed.
//
// A member is known by a small stable slot number (`member_index`), fixed by the configuration:
// the position of the member in the configured list. Producers of member events never allocate
// slots and never learn of members that were not configured. A sink receives three events:
//
//   s.on_report(slot, report, received_at)  a load report was accepted (metrics, weight, flags)
//   s.on_down(slot, reason)                 the producer now considers the member down; `reason`
//                                           is a sentence a person can act on
//   s.on_up(slot)                           the producer now considers the member up again
//
// Each producer (the load listener, the health checker) reports transitions of its own view of a
// member: it calls on_down once when it loses the member and on_up once when it regains it. A sink
// that combines several producers (say, a cluster view that wants a member up only when it both
// reports and passes its health check) keeps one flag per producer; give each producer its own
// sink object for that. Events are delivered from the thread that runs the producer's io_context;
// the sink needs no lock of its own when that is one thread.
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <string_view>

namespace clusternet {

/// A member's slot: its position in the configured member list (0-based). Stable for the life of
/// the configuration, small enough to index arrays.
using member_index = std::uint16_t;

/// The clock of member events: reception times and liveness deadlines. Monotonic.
using member_clock = std::chrono::steady_clock;

/// DPR's four load metrics (Aversa and Bestavros, "Load Balancing a Cluster of Web Servers using
/// Distributed Packet Rewriting", seed 003, section 3.1): open TCP connections, CPU utilisation,
/// connections redirected to peers, active sockets. One definition, shared by the load reports
/// and the cluster view.
struct load_metrics {
    /// CPU utilisation is carried in parts per ten thousand: 10000 is every CPU busy.
    static constexpr std::uint16_t cpu_full_scale = 10000;

    std::uint32_t open_connections = 0;        ///< TCP connections not in LISTEN, TIME_WAIT or CLOSE
    std::uint16_t cpu_load = 0;                ///< busy share of all CPUs, 0..cpu_full_scale
    std::uint32_t redirected_connections = 0;  ///< connections this node has redirected to a peer
    std::uint32_t active_sockets = 0;          ///< sockets in use on the node (all families)

    friend constexpr bool operator==(const load_metrics&, const load_metrics&) noexcept = default;
};

struct load_report;  // clusternet/load_report.hpp

/// A receiver of member events. `Report` is what on_report receives: the load listener passes a
/// clusternet::load_report. Health checkers need only MemberStateSink (on_up and on_down).
template <class S, class Report = load_report>
concept MemberSink = requires(S& s, member_index slot, const Report& report, member_clock::time_point t,
                              std::string_view reason) {
    s.on_report(slot, report, t);
    s.on_down(slot, reason);
    s.on_up(slot);
};

/// A sink that only needs up/down transitions (what a health checker calls).
template <class S>
concept MemberStateSink = requires(S& s, member_index slot, std::string_view reason) {
    s.on_down(slot, reason);
    s.on_up(slot);
};

}  // namespace clusternet
