// clusternet/load_reporter.hpp -- DPR's load sharing control plane: every node announces its
// load by UDP multicast each period; listeners accept reports only from configured members, keep
// each member's liveness, and feed a MemberSink.
//
// The parts, from the inside out:
//   member_list        the configured members: slot -> (node id, IPv4 address), and the lookup
//                      (source address, node id) -> slot. Built once; lookups allocate nothing.
//   liveness_tracker   per slot: unknown, up or down, and when the member was last heard. A
//                      member silent for more than `dead_after_periods` periods is down; it is up
//                      again with its next accepted report. Time is passed in (tests inject it).
//   report_receiver    the listener without a socket: decode (clusternet/load_report.hpp),
//                      filter by member (source address AND node id), replay guard per member,
//                      liveness, counters for every outcome, sink events.
//   load_announcer     a Boost.Asio UDP socket and timer: samples the metrics through a callback
//                      and sends a report every period (absolute deadlines, so no drift), TTL 1,
//                      on a chosen interface; a last report flagged `leaving` on stop().
//   load_listener      a Boost.Asio UDP socket bound to the group and port, joined on a chosen
//                      interface, feeding a report_receiver; a timer checks liveness four times a
//                      period.
//
// Source: Aversa and Bestavros, Distributed Packet Rewriting (seed 003), section 3.3: one
// process multicasts the local load every second, one receives the peers' loads, one drops a
// peer from which no load packet came for some seconds.
//
// Threads: everything runs on the thread(s) of one io_context; run it on one thread (the sink is
// called from it). Setup errors throw std::system_error (or std::invalid_argument for a bad
// member list) with a message naming the address or option at fault.
#pragma once

#include <clusternet/address.hpp>
#include <clusternet/error.hpp>
#include <clusternet/load_report.hpp>
#include <clusternet/member_sink.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/multicast.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace clusternet {

// ---------------------------------------------------------------------------------------------
// Members

/// One configured member: its node id (as it announces it) and the address it sends from.
struct reporting_member {
    std::uint16_t node_id = 0;
    ipv4_address address{};
};

/// The configured members. Slot i is the i-th entry given. Node ids are unique and not 0; several
/// members may share an address (several nodes on one host), told apart by node id.
class member_list {
public:
    static constexpr std::size_t max_members = 65535;

    /// The outcome of a lookup.
    enum class match : std::uint8_t { found, unknown_address, wrong_node_id };

    member_list() = default;

    /// Throws std::invalid_argument naming the entry when a node id is 0 or repeated, or when
    /// there are more than max_members. O(n log n).
    explicit member_list(std::vector<reporting_member> members) : members_(std::move(members)) {
        if (members_.size() > max_members)
            throw std::invalid_argument("member_list: " + std::to_string(members_.size()) + " members, at most " +
                                        std::to_string(max_members));
        index_.reserve(members_.size());
        for (std::size_t i = 0; i < members_.size(); ++i) {
            if (members_[i].node_id == 0)
                throw std::invalid_argument("member_list: member " + std::to_string(i) + " (" +
                                            members_[i].address.to_string() + ") has node id 0, which is reserved");
            index_.push_back({members_[i].address, members_[i].node_id, static_cast<member_index>(i)});
        }
        std::sort(index_.begin(), index_.end(), [](const entry& a, const entry& b) {
            return a.address != b.address ? a.address < b.address : a.node_id < b.node_id;
        });
        std::vector<std::uint16_t> ids;
        for (const auto& m : members_) ids.push_back(m.node_id);
        std::sort(ids.begin(), ids.end());
        if (const auto d = std::adjacent_find(ids.begin(), ids.end()); d != ids.end())
            throw std::invalid_argument("member_list: node id " + std::to_string(*d) + " is configured twice");
    }

    [[nodiscard]] std::size_t size() const noexcept { return members_.size(); }
    [[nodiscard]] bool empty() const noexcept { return members_.empty(); }
    [[nodiscard]] const reporting_member& operator[](member_index slot) const noexcept {
        CLUSTERNET_ASSERT(slot < members_.size());
        return members_[slot];
    }

    /// Finds the slot of (address, node id). O(log n), noexcept, no allocation.
    [[nodiscard]] match find(ipv4_address address, std::uint16_t node_id, member_index& slot) const noexcept {
        const auto lo = std::lower_bound(index_.begin(), index_.end(), address,
                                         [](const entry& e, ipv4_address a) { return e.address < a; });
        if (lo == index_.end() || lo->address != address) return match::unknown_address;
        for (auto it = lo; it != index_.end() && it->address == address; ++it) {
            if (it->node_id == node_id) {
                slot = it->slot;
                return match::found;
            }
        }
        return match::wrong_node_id;
    }

    /// The slot of a node id, or nullopt. O(n); for configuration and tools.
    [[nodiscard]] std::optional<member_index> slot_of(std::uint16_t node_id) const noexcept {
        for (std::size_t i = 0; i < members_.size(); ++i)
            if (members_[i].node_id == node_id) return static_cast<member_index>(i);
        return std::nullopt;
    }

private:
    struct entry {
        ipv4_address address;
        std::uint16_t node_id;
        member_index slot;
    };
    std::vector<reporting_member> members_;
    std::vector<entry> index_;
};

// ---------------------------------------------------------------------------------------------
// Liveness

/// What a listener knows of a member.
enum class member_liveness : std::uint8_t {
    unknown,  ///< not heard since the listener started, and the deadline has not passed yet
    up,       ///< heard within the deadline
    down,     ///< silent past the deadline, or it announced it is leaving
};

[[nodiscard]] constexpr std::string_view to_string(member_liveness s) noexcept {
    switch (s) {
        case member_liveness::unknown: return "unknown";
        case member_liveness::up: return "up";
        case member_liveness::down: return "down";
    }
    return "invalid";
}

struct liveness_options {
    member_clock::duration period = std::chrono::seconds(1);  ///< the announcers' period
    unsigned dead_after_periods = 3;                           ///< silent this many periods: down

    /// The silence after which a member is down: period x dead_after_periods.
    [[nodiscard]] constexpr member_clock::duration deadline() const noexcept { return period * dead_after_periods; }
};

/// Per-member liveness by silence, with time passed in. Fixed memory (one entry per slot).
class liveness_tracker {
public:
    /// What expire() reports for a member it takes down.
    struct expiry {
        member_index slot;
        member_clock::duration silent_for;  ///< since its last report, or since start when never heard
        bool never_heard;
    };

    /// Throws std::invalid_argument when the period is not positive or dead_after_periods is 0.
    liveness_tracker(std::size_t members, liveness_options opt, member_clock::time_point start)
        : opt_(opt), start_(start), slots_(members) {
        if (opt.period <= member_clock::duration::zero())
            throw std::invalid_argument("liveness: the report period must be positive");
        if (opt.dead_after_periods == 0)
            throw std::invalid_argument("liveness: dead_after_periods must be at least 1");
    }

    /// A report from `slot` was accepted at `now`. Returns true when that brings it up (it was
    /// unknown or down). O(1), noexcept.
    bool heard(member_index slot, member_clock::time_point now) noexcept {
        CLUSTERNET_ASSERT(slot < slots_.size());
        slot_state& s = slots_[slot];
        s.last_heard = now;
        s.ever_heard = true;
        const bool came_up = s.state != member_liveness::up;
        s.state = member_liveness::up;
        return came_up;
    }

    /// Takes `slot` down at once (it announced it is leaving). Returns true when it was not down.
    bool mark_down(member_index slot) noexcept {
        CLUSTERNET_ASSERT(slot < slots_.size());
        const bool was = slots_[slot].state != member_liveness::down;
        slots_[slot].state = member_liveness::down;
        return was;
    }

    /// Takes down every member, up or unknown, silent for more than the deadline at `now`, and
    /// calls on_down(expiry) for each. O(members); call it a few times a period.
    template <class F>
    void expire(member_clock::time_point now, F&& on_down) {
        const auto deadline = opt_.deadline();
        for (std::size_t i = 0; i < slots_.size(); ++i) {
            slot_state& s = slots_[i];
            if (s.state == member_liveness::down) continue;
            const auto since = s.ever_heard ? s.last_heard : start_;
            if (now - since <= deadline) continue;
            s.state = member_liveness::down;
            on_down(expiry{static_cast<member_index>(i), now - since, !s.ever_heard});
        }
    }

    [[nodiscard]] member_liveness state(member_index slot) const noexcept { return slots_[slot].state; }
    [[nodiscard]] std::optional<member_clock::time_point> last_heard(member_index slot) const noexcept {
        if (!slots_[slot].ever_heard) return std::nullopt;
        return slots_[slot].last_heard;
    }
    [[nodiscard]] std::size_t size() const noexcept { return slots_.size(); }
    [[nodiscard]] const liveness_options& options() const noexcept { return opt_; }

private:
    struct slot_state {
        member_clock::time_point last_heard{};
        member_liveness state = member_liveness::unknown;
        bool ever_heard = false;
    };
    liveness_options opt_;
    member_clock::time_point start_;
    std::vector<slot_state> slots_;
};

// ---------------------------------------------------------------------------------------------
// The receiver (a listener without its socket)

/// What became of one datagram. Values are stable (they index the counters).
enum class report_outcome : std::uint8_t {
    accepted = 0,      ///< a fresh report from a configured member
    truncated,         ///< shorter than its version's size
    too_large,         ///< longer than its version's size
    bad_magic,         ///< not a clusternet load report
    bad_version,       ///< a version this build does not read
    bad_field,         ///< a field outside what the format allows
    unknown_source,    ///< the source address is no configured member's
    wrong_node_id,     ///< the source address is configured, but not with this node id
    replayed,          ///< the same (incarnation, sequence) as the member's last report
    stale,             ///< an earlier (incarnation, sequence) than the member's last report
};
inline constexpr std::size_t report_outcome_count = static_cast<std::size_t>(report_outcome::stale) + 1;

[[nodiscard]] constexpr std::string_view to_string(report_outcome o) noexcept {
    switch (o) {
        case report_outcome::accepted: return "accepted";
        case report_outcome::truncated: return "truncated";
        case report_outcome::too_large: return "too_large";
        case report_outcome::bad_magic: return "bad_magic";
        case report_outcome::bad_version: return "bad_version";
        case report_outcome::bad_field: return "bad_field";
        case report_outcome::unknown_source: return "unknown_source";
        case report_outcome::wrong_node_id: return "wrong_node_id";
        case report_outcome::replayed: return "replayed";
        case report_outcome::stale: return "stale";
    }
    return "invalid";
}

/// Datagram counters, one per outcome; plus the transitions made.
struct receiver_counters {
    std::array<std::uint64_t, report_outcome_count> outcomes{};
    std::uint64_t went_up = 0;
    std::uint64_t went_down = 0;
    /// The source and node id of the last report refused as unknown_source or wrong_node_id (to
    /// tell a person which sender is not configured); 0 before the first.
    ipv4_address last_unmatched_source{};
    std::uint16_t last_unmatched_node_id = 0;

    [[nodiscard]] std::uint64_t operator[](report_outcome o) const noexcept { return outcomes[static_cast<std::size_t>(o)]; }
    [[nodiscard]] std::uint64_t received() const noexcept {
        std::uint64_t n = 0;
        for (auto v : outcomes) n += v;
        return n;
    }
    [[nodiscard]] std::uint64_t rejected() const noexcept { return received() - (*this)[report_outcome::accepted]; }
};

namespace detail {

[[nodiscard]] constexpr report_outcome outcome_of(parse_error e) noexcept {
    switch (e) {
        case parse_error::truncated: return report_outcome::truncated;
        case parse_error::too_large: return report_outcome::too_large;
        case parse_error::bad_magic: return report_outcome::bad_magic;
        case parse_error::bad_version: return report_outcome::bad_version;
        default: return report_outcome::bad_field;
    }
}

inline std::string format_ms(member_clock::duration d) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    return std::to_string(ms) + " ms";
}

}  // namespace detail

/// Decodes, filters and tracks reports, and tells a sink. One per listener; no socket, so tests
/// drive it with any bytes, source and time.
template <MemberSink<load_report> Sink>
class report_receiver {
public:
    /// Throws std::invalid_argument for bad liveness options.
    report_receiver(member_list members, liveness_options opt, Sink& sink, member_clock::time_point start)
        : members_(std::move(members)), liveness_(members_.size(), opt, start), sequences_(members_.size()),
          last_(members_.size()), sink_(&sink) {}

    /// Handles one datagram from `source` received at `now`: counts its outcome and, when it is
    /// accepted, calls sink.on_up (when the member comes up), sink.on_report, and sink.on_down
    /// when the report says the member is leaving. O(log members); allocates nothing unless the
    /// sink or a leaving report's reason does.
    report_outcome receive(ipv4_address source, std::span<const std::byte> datagram, member_clock::time_point now) {
        const report_outcome o = classify(source, datagram, now);
        ++counters_.outcomes[static_cast<std::size_t>(o)];
        return o;
    }

    /// Takes down the members silent past the deadline (sink.on_down with the reason). The replay
    /// state of a member that is down and silent past the deadline (however it went down) is
    /// forgotten, so that a member restarted with a clock that went back (an earlier incarnation)
    /// is not locked out. O(members).
    void tick(member_clock::time_point now) {
        liveness_.expire(now, [&](const liveness_tracker::expiry& e) {
            ++counters_.went_down;
            sink_->on_down(e.slot, silence_reason(e));
        });
        const auto deadline = liveness_.options().deadline();
        for (std::size_t i = 0; i < sequences_.size(); ++i) {
            const auto slot = static_cast<member_index>(i);
            if (!sequences_[i].seen() || liveness_.state(slot) != member_liveness::down) continue;
            const auto heard = liveness_.last_heard(slot);
            if (!heard || now - *heard > deadline) sequences_[i].reset();
        }
    }

    [[nodiscard]] const receiver_counters& counters() const noexcept { return counters_; }
    [[nodiscard]] const member_list& members() const noexcept { return members_; }
    [[nodiscard]] const liveness_tracker& liveness() const noexcept { return liveness_; }
    /// The last report accepted from a slot (nullopt before the first).
    [[nodiscard]] const std::optional<load_report>& last_report(member_index slot) const noexcept { return last_[slot]; }

private:
    report_outcome classify(ipv4_address source, std::span<const std::byte> datagram, member_clock::time_point now) {
        const result<load_report> r = decode_load_report(datagram);
        if (!r) return detail::outcome_of(r.error());
        member_index slot = 0;
        const member_list::match m = members_.find(source, r->node_id, slot);
        if (m != member_list::match::found) {
            counters_.last_unmatched_source = source;
            counters_.last_unmatched_node_id = r->node_id;
            return m == member_list::match::unknown_address ? report_outcome::unknown_source
                                                            : report_outcome::wrong_node_id;
        }
        switch (sequences_[slot].check_and_accept(*r)) {
            case sequence_verdict::fresh: break;
            case sequence_verdict::replayed: return report_outcome::replayed;
            case sequence_verdict::stale: return report_outcome::stale;
        }
        last_[slot] = *r;
        if (r->leaving()) {
            sink_->on_report(slot, *r, now);
            if (liveness_.mark_down(slot)) {
                ++counters_.went_down;
                sink_->on_down(slot, "node " + std::to_string(r->node_id) + " at " + source.to_string() +
                                         " announced that it is leaving (clean shutdown)");
            }
            return report_outcome::accepted;
        }
        if (liveness_.heard(slot, now)) {
            ++counters_.went_up;
            sink_->on_up(slot);
        }
        sink_->on_report(slot, *r, now);
        return report_outcome::accepted;
    }

    std::string silence_reason(const liveness_tracker::expiry& e) const {
        const reporting_member& m = members_[e.slot];
        const auto& o = liveness_.options();
        std::string s = "node " + std::to_string(m.node_id) + " at " + m.address.to_string() + ": no load report ";
        s += e.never_heard ? "since the listener started " : "for ";
        s += detail::format_ms(e.silent_for) + (e.never_heard ? " ago" : "");
        s += " (down after " + std::to_string(o.dead_after_periods) + " periods of " + detail::format_ms(o.period) +
             "); is its announcer running, and does it send to this group from this address?";
        return s;
    }

    member_list members_;
    liveness_tracker liveness_;
    std::vector<report_sequence> sequences_;
    std::vector<std::optional<load_report>> last_;
    Sink* sink_;
    receiver_counters counters_{};
};

// ---------------------------------------------------------------------------------------------
// The announcer

struct announcer_options {
    /// Where reports go: a multicast group and port (or, for tests, a unicast address).
    boost::asio::ip::udp::endpoint destination{boost::asio::ip::make_address_v4("239.255.77.1"), 7411};
    /// The local address of the interface to send from (IP_MULTICAST_IF, and the source
    /// address); unspecified (0.0.0.0) lets the routing table choose.
    boost::asio::ip::address_v4 interface{};
    std::chrono::milliseconds period{1000};  ///< 1 .. 65535 ms
    int ttl = 1;                             ///< multicast hops: 1 keeps reports on the segment
    bool loopback = true;                    ///< also deliver to listeners on this host
    std::uint16_t node_id = 0;               ///< this node's id, not 0
    std::uint16_t weight = 1;
};

/// Sends this node's load report every period. Setup throws std::system_error (socket, bind,
/// options) or std::invalid_argument (bad options).
class load_announcer {
public:
    using metrics_source = std::function<load_metrics()>;

    struct counters {
        std::uint64_t sent = 0;
        std::uint64_t send_errors = 0;
        std::error_code last_error{};
    };

    load_announcer(boost::asio::io_context& io, announcer_options opt, metrics_source source)
        : opt_(std::move(opt)), source_(std::move(source)), socket_(io), timer_(io) {
        if (opt_.node_id == 0) throw std::invalid_argument("load_announcer: node id 0 is reserved; give a node id from 1 to 65535");
        if (opt_.period.count() < 1 || opt_.period.count() > 65535)
            throw std::invalid_argument("load_announcer: period " + std::to_string(opt_.period.count()) +
                                        " ms is outside 1..65535 ms");
        if (!opt_.destination.address().is_v4())
            throw std::invalid_argument("load_announcer: the destination must be an IPv4 address");
        if (!source_) throw std::invalid_argument("load_announcer: no metrics source");
        namespace mc = boost::asio::ip::multicast;
        const auto where = [&](const char* what) {
            return std::string("load_announcer: ") + what + " (destination " + opt_.destination.address().to_string() +
                   ":" + std::to_string(opt_.destination.port()) + ", interface " + opt_.interface.to_string() + ")";
        };
        boost::system::error_code ec;
        socket_.open(boost::asio::ip::udp::v4(), ec);
        if (ec) throw std::system_error(ec, where("cannot open a UDP socket"));
        if (opt_.destination.address().is_multicast()) {
            socket_.set_option(mc::hops(opt_.ttl), ec);
            if (!ec) socket_.set_option(mc::enable_loopback(opt_.loopback), ec);
            if (!ec && !opt_.interface.is_unspecified()) socket_.set_option(mc::outbound_interface(opt_.interface), ec);
            if (ec) throw std::system_error(ec, where("cannot set the multicast options"));
        }
        if (!opt_.interface.is_unspecified()) {
            socket_.bind({opt_.interface, 0}, ec);
            if (ec) throw std::system_error(ec, where("cannot bind to the interface address"));
        }
        incarnation_ = now_ns();
    }

    /// Sends the first report now, then one every period, until stop(). Non-blocking.
    void start() {
        running_ = true;
        next_ = std::chrono::steady_clock::now();
        tick();
    }

    /// Stops the timer; with `send_leaving`, sends one last report flagged leaving so that
    /// listeners mark this node down at once. Non-blocking (one UDP send).
    void stop(bool send_leaving = true) {
        running_ = false;
        timer_.cancel();
        if (send_leaving) send(load_report_flags::leaving);
    }

    void set_draining(bool on) noexcept { draining_ = on; }
    void set_weight(std::uint16_t w) noexcept { opt_.weight = w; }

    [[nodiscard]] const counters& stats() const noexcept { return counters_; }
    [[nodiscard]] std::uint64_t incarnation() const noexcept { return incarnation_; }
    [[nodiscard]] std::uint32_t sequence() const noexcept { return sequence_; }
    [[nodiscard]] boost::asio::ip::udp::endpoint local_endpoint() const { return socket_.local_endpoint(); }

    /// The report that the next send would carry, with fresh metrics (also used by send()).
    [[nodiscard]] load_report make_report(std::uint8_t extra_flags = 0) {
        load_report r;
        r.node_id = opt_.node_id;
        r.flags = static_cast<std::uint8_t>((draining_ ? load_report_flags::draining : 0) | extra_flags);
        r.incarnation = incarnation_;
        r.sequence = sequence_ + 1;
        r.weight = opt_.weight;
        r.period_ms = static_cast<std::uint16_t>(opt_.period.count());
        r.metrics = source_();
        r.timestamp = std::max(now_ns(), incarnation_);
        return r;
    }

private:
    static std::uint64_t now_ns() noexcept {
        const auto t = std::chrono::system_clock::now().time_since_epoch();
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t).count();
        return ns > 0 ? static_cast<std::uint64_t>(ns) : 1;
    }

    void send(std::uint8_t extra_flags) {
        const load_report r = make_report(extra_flags);
        std::array<std::byte, load_report::wire_size> buf{};
        const std::size_t n = encode(r, buf);
        CLUSTERNET_ASSERT(n == buf.size());
        ++sequence_;
        boost::system::error_code ec;
        socket_.send_to(boost::asio::buffer(buf.data(), n), opt_.destination, 0, ec);
        if (ec) {
            ++counters_.send_errors;
            counters_.last_error = ec;
        } else {
            ++counters_.sent;
        }
    }

    void tick() {
        if (!running_) return;
        send(0);
        // Absolute deadlines: a late tick does not push the later ones back. After a long stall
        // (more than one period late) the schedule restarts from now instead of bursting.
        next_ += opt_.period;
        const auto now = std::chrono::steady_clock::now();
        if (next_ < now) next_ = now + opt_.period;
        timer_.expires_at(next_);
        timer_.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) tick();
        });
    }

    announcer_options opt_;
    metrics_source source_;
    boost::asio::ip::udp::socket socket_;
    boost::asio::steady_timer timer_;
    std::chrono::steady_clock::time_point next_{};
    std::uint64_t incarnation_ = 0;
    std::uint32_t sequence_ = 0;
    bool running_ = false;
    bool draining_ = false;
    counters counters_{};
};

// ---------------------------------------------------------------------------------------------
// The listener

struct listener_options {
    /// The group (or, for tests, a unicast or unspecified address) and port to receive on.
    boost::asio::ip::udp::endpoint listen{boost::asio::ip::make_address_v4("239.255.77.1"), 7411};
    /// The local address of the interface to join the group on; unspecified lets the kernel
    /// choose by its routing table (which needs a route to 224.0.0.0/4).
    boost::asio::ip::address_v4 interface{};
    liveness_options liveness{};
};

/// Receives load reports on a socket and feeds a report_receiver and the sink. Setup throws
/// std::system_error (socket, bind, join) with the address at fault.
template <MemberSink<load_report> Sink>
class load_listener {
public:
    load_listener(boost::asio::io_context& io, listener_options opt, member_list members, Sink& sink)
        : opt_(std::move(opt)), socket_(io), timer_(io),
          receiver_(std::move(members), opt_.liveness, sink, member_clock::now()) {
        namespace mc = boost::asio::ip::multicast;
        const auto& addr = opt_.listen.address();
        const auto where = [&](const char* what) {
            return std::string("load_listener: ") + what + " (" + addr.to_string() + ":" +
                   std::to_string(opt_.listen.port()) + ", interface " + opt_.interface.to_string() + ")";
        };
        if (!addr.is_v4()) throw std::invalid_argument(where("the listen address must be IPv4"));
        boost::system::error_code ec;
        socket_.open(boost::asio::ip::udp::v4(), ec);
        if (ec) throw std::system_error(ec, where("cannot open a UDP socket"));
        // Several listeners of one group may share a host (one per process or namespace).
        socket_.set_option(boost::asio::ip::udp::socket::reuse_address(true), ec);
        if (ec) throw std::system_error(ec, where("cannot set SO_REUSEADDR"));
        // Bound to the group address itself, the socket receives that group only, not every
        // datagram to the port.
        socket_.bind(opt_.listen, ec);
        if (ec) throw std::system_error(ec, where("cannot bind"));
        if (addr.is_multicast()) {
            socket_.set_option(mc::join_group(addr.to_v4(), opt_.interface), ec);
            if (ec) throw std::system_error(ec, where("cannot join the multicast group"));
        }
    }

    /// Starts receiving and the liveness timer (four checks a period). Non-blocking.
    void start() {
        running_ = true;
        receive();
        next_tick_ = member_clock::now();
        tick();
    }
    void stop() {
        running_ = false;
        timer_.cancel();
        boost::system::error_code ec;
        socket_.cancel(ec);
    }

    [[nodiscard]] const report_receiver<Sink>& receiver() const noexcept { return receiver_; }
    [[nodiscard]] const receiver_counters& counters() const noexcept { return receiver_.counters(); }
    /// Datagrams from a non-IPv4 source or receive errors (not counted by the receiver).
    [[nodiscard]] std::uint64_t receive_errors() const noexcept { return receive_errors_; }
    [[nodiscard]] boost::asio::ip::udp::endpoint local_endpoint() const { return socket_.local_endpoint(); }

private:
    // Larger than any report: a longer datagram is cut to this by the kernel and still counted
    // as too_large. Fixed, so memory does not depend on what arrives.
    static constexpr std::size_t buffer_size = 2048;

    void receive() {
        socket_.async_receive_from(boost::asio::buffer(buf_), from_, [this](const boost::system::error_code& ec,
                                                                            std::size_t n) {
            if (!running_ || ec == boost::asio::error::operation_aborted) return;
            if (ec) {
                ++receive_errors_;
            } else if (!from_.address().is_v4()) {
                ++receive_errors_;
            } else {
                const ipv4_address src(from_.address().to_v4().to_uint());
                receiver_.receive(src, std::span<const std::byte>(buf_.data(), n), member_clock::now());
            }
            receive();
        });
    }

    void tick() {
        if (!running_) return;
        receiver_.tick(member_clock::now());
        next_tick_ += std::max<member_clock::duration>(opt_.liveness.period / 4, std::chrono::milliseconds(1));
        const auto now = member_clock::now();
        if (next_tick_ < now) next_tick_ = now;
        timer_.expires_at(next_tick_);
        timer_.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) tick();
        });
    }

    listener_options opt_;
    boost::asio::ip::udp::socket socket_;
    boost::asio::steady_timer timer_;
    report_receiver<Sink> receiver_;
    std::array<std::byte, buffer_size> buf_{};
    boost::asio::ip::udp::endpoint from_{};
    member_clock::time_point next_tick_{};
    std::uint64_t receive_errors_ = 0;
    bool running_ = false;
};

}  // namespace clusternet
