// clusternet/credit_flow.hpp -- credit-based flow control for many streams on one channel.
//
// Design note. SAPS (Matsuba and Ishikawa, "Single IP Address Cluster for Internet Servers",
// IPDPS 2007, section 2.2 and Appendix A) carries every TCP connection of a node over one channel
// of the cluster network, tagged by connection. The channel's own flow control would stop every
// connection when one receiver's buffer fills, so each connection gets its own: the receiver
// grants the sender an absolute byte limit, the sender never sends past it, and the receiver
// only grants space it really has. Appendix A, in the paper's names:
//
//     sender:   As  octets sent                 receiver: Ar  octets received
//               Ls  limit the sender may reach            Br  receive buffer size
//                                                          Er  free space in the buffer
//                                                          Lr  limit last reported to the sender
//     1. Lr := Br (at the start); 2. report Lr; 3. the sender sets Ls := Lr;
//     4. the sender may send while As < Ls;
//     5. when Ar + Er > Lr + Br/2 the receiver sets Lr := Ar + Er; 6. go to 2.
//
// Invariants (C = octets the reader consumed, so Ar - C octets are buffered, Er = Br - (Ar - C)):
//   I1  Ar + Er = C + Br                 (the free space plus what arrived is what was consumed
//                                         plus the buffer)
//   I2  Ar <= Lr <= C + Br               (Lr is only ever set to Ar + Er = C + Br, and C grows)
//   I3  Ar - C <= Br                     (from I2: nothing the receiver accepted can overflow)
// A frame that would take Ar past Lr therefore comes from a broken or hostile peer: on_received
// refuses it with flow_error::overflow (the caller counts it and closes the stream), it is never
// stored. Liveness: a sender with nothing left to send under its limit has As = Ls = Lr; once
// the reader has drained the buffer, C = Ar = Lr and Ar + Er - Lr = Br > Br/2, so step 5 grants
// again. Step 5's threshold batches grants: one grant frame per Br/2 octets consumed at least,
// which keeps the window-update overhead at (grant frame size) / (Br/2).
//
// Counters. All counters are absolute byte offsets of an unsigned type C (std::uint64_t by
// default, std::uint32_t also supported) and are compared only through modular differences
// (RFC 1982 serial-number arithmetic), never with < on the raw values. A 64-bit counter would
// need 58 years at 10 GB/s to wrap, but the code does not rely on that: it is correct across
// wrap-around as long as the window (Br) stays below half the counter range, which the
// constructors enforce. The tests run both widths with counters started just below the wrap.
// The wire format (saps_protocol.hpp) carries 64-bit limits, so a 32-bit endpoint would only be
// used where memory per stream matters more than the range.
//
// Cost: every call is O(1), noexcept, allocation-free. credit_table allocates its slots once, at
// construction (which throws std::invalid_argument on a bad capacity or window).
#pragma once

#include <clusternet/config.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <variant>
#include <vector>

namespace clusternet {

/// Why a flow-control step was refused. Values are stable (they index counter arrays).
enum class flow_error : std::uint8_t {
    none = 0,
    overflow,        ///< the peer sent past the limit it was granted (a protocol error)
    stale_grant,     ///< a grant below the limit already held (limits never move back)
    excess_grant,    ///< a grant beyond what any receive buffer of this window could hold
    over_consume,    ///< the local reader consumed more than is buffered (a local bug)
    over_send,       ///< the local writer sent more than its credit (a local bug)
    unknown_stream,  ///< a frame names a stream that is not open (or no longer open)
};
inline constexpr std::size_t flow_error_count = static_cast<std::size_t>(flow_error::unknown_stream) + 1;

[[nodiscard]] constexpr std::string_view to_string(flow_error e) noexcept {
    switch (e) {
        case flow_error::none: return "none";
        case flow_error::overflow: return "overflow";
        case flow_error::stale_grant: return "stale_grant";
        case flow_error::excess_grant: return "excess_grant";
        case flow_error::over_consume: return "over_consume";
        case flow_error::over_send: return "over_send";
        case flow_error::unknown_stream: return "unknown_stream";
    }
    return "unknown";
}

namespace detail {
class flow_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "clusternet.flow"; }
    std::string message(int ev) const override { return std::string(to_string(static_cast<flow_error>(ev))); }
};
}  // namespace detail

[[nodiscard]] inline const std::error_category& flow_category() noexcept {
    static const detail::flow_category_impl instance;
    return instance;
}
[[nodiscard]] inline std::error_code make_error_code(flow_error e) noexcept {
    return {static_cast<int>(e), flow_category()};
}

/// The counter types credit_sender and credit_receiver accept.
template <class C>
concept CreditCounter = std::same_as<C, std::uint32_t> || std::same_as<C, std::uint64_t>;

/// The largest window a counter type allows: modular comparisons need differences below half
/// the range.
template <CreditCounter C>
inline constexpr C max_credit_window = std::numeric_limits<C>::max() / 2;

/// The sender's half of Appendix A: As (sent) and Ls (limit).
template <CreditCounter C = std::uint64_t>
class basic_credit_sender {
public:
    using counter_type = C;

    constexpr basic_credit_sender() noexcept = default;
    /// A sender that has sent `start` octets and may reach `limit` (the receiver's first report).
    /// Precondition: limit - start <= max_window <= max_credit_window<C>.
    constexpr basic_credit_sender(C start, C limit, C max_window = max_credit_window<C>) noexcept
        : sent_(start), limit_(limit), max_window_(max_window) {
        CLUSTERNET_ASSERT(max_window <= max_credit_window<C>);
        CLUSTERNET_ASSERT(static_cast<C>(limit - start) <= max_window);
    }

    /// Octets the sender may send now (Ls - As).
    [[nodiscard]] constexpr C available() const noexcept { return static_cast<C>(limit_ - sent_); }
    /// Step 4: whether n more octets stay within the limit.
    [[nodiscard]] constexpr bool can_send(C n) const noexcept { return n <= available(); }
    /// Records n octets sent; refuses (and changes nothing) when they exceed the credit.
    constexpr flow_error on_sent(C n) noexcept {
        if (!can_send(n)) return flow_error::over_send;
        sent_ = static_cast<C>(sent_ + n);
        return flow_error::none;
    }
    /// Step 3: takes a reported limit. A limit equal to the current one is a no-op; one behind it
    /// is stale_grant and one further ahead of As than max_window is excess_grant (both leave the
    /// state unchanged: the caller counts them as protocol errors).
    constexpr flow_error on_grant(C limit) noexcept {
        const C ahead = static_cast<C>(limit - limit_);
        if (ahead > max_credit_window<C>) return flow_error::stale_grant;  // limit is behind limit_
        if (static_cast<C>(limit - sent_) > max_window_) return flow_error::excess_grant;
        limit_ = limit;
        return flow_error::none;
    }

    [[nodiscard]] constexpr C sent() const noexcept { return sent_; }
    [[nodiscard]] constexpr C limit() const noexcept { return limit_; }
    [[nodiscard]] constexpr C max_window() const noexcept { return max_window_; }

private:
    C sent_ = 0;                              // As
    C limit_ = 0;                             // Ls
    C max_window_ = max_credit_window<C>;     // the largest Ls - As a grant may open
};

/// The receiver's half of Appendix A: Ar (received), Br (buffer), Er (free), Lr (reported).
template <CreditCounter C = std::uint64_t>
class basic_credit_receiver {
public:
    using counter_type = C;

    constexpr basic_credit_receiver() noexcept = default;
    /// A receiver with a buffer of `buffer` octets that has received `start` octets; step 1 sets
    /// Lr = start + Br. Precondition: 0 < buffer <= max_credit_window<C>.
    constexpr explicit basic_credit_receiver(C buffer, C start = 0) noexcept
        : received_(start), buffer_(buffer), free_(buffer), reported_(static_cast<C>(start + buffer)) {
        CLUSTERNET_ASSERT(buffer > 0 && buffer <= max_credit_window<C>);
    }

    /// Step 2 at the start: the limit to report first (Lr).
    [[nodiscard]] constexpr C initial_limit() const noexcept { return reported_; }

    /// n octets arrived. Refuses with flow_error::overflow, changing nothing, when they would take
    /// Ar past Lr (by I2 and I3 that is the only way the buffer could overflow).
    constexpr flow_error on_received(C n) noexcept {
        if (n > static_cast<C>(reported_ - received_)) return flow_error::overflow;
        received_ = static_cast<C>(received_ + n);
        free_ = static_cast<C>(free_ - n);  // cannot underflow: reported - received <= free (I2)
        return flow_error::none;
    }

    /// The reader took n octets out of the buffer. Returns the new limit to report when step 5
    /// says so (Ar + Er > Lr + Br/2), else nothing. Consuming more than is buffered is a local bug:
    /// it is refused (state unchanged) and reported through `error` if given.
    constexpr std::optional<C> on_consumed(C n, flow_error* error = nullptr) noexcept {
        if (n > buffered()) {
            if (error) *error = flow_error::over_consume;
            return std::nullopt;
        }
        if (error) *error = flow_error::none;
        free_ = static_cast<C>(free_ + n);
        return grant_due();
    }

    /// Step 5 on its own: the new limit if one is due (and records it as reported).
    constexpr std::optional<C> grant_due() noexcept {
        const C offer = static_cast<C>(received_ + free_);  // Ar + Er = C + Br (I1)
        if (static_cast<C>(offer - reported_) > buffer_ / 2) {
            reported_ = offer;
            return offer;
        }
        return std::nullopt;
    }

    [[nodiscard]] constexpr C received() const noexcept { return received_; }
    [[nodiscard]] constexpr C buffer_size() const noexcept { return buffer_; }
    [[nodiscard]] constexpr C free_space() const noexcept { return free_; }
    [[nodiscard]] constexpr C buffered() const noexcept { return static_cast<C>(buffer_ - free_); }
    [[nodiscard]] constexpr C reported_limit() const noexcept { return reported_; }
    /// Octets the peer may still send before it reaches Lr.
    [[nodiscard]] constexpr C outstanding_credit() const noexcept { return static_cast<C>(reported_ - received_); }

private:
    C received_ = 0;  // Ar
    C buffer_ = 0;    // Br
    C free_ = 0;      // Er
    C reported_ = 0;  // Lr
};

using credit_sender = basic_credit_sender<>;
using credit_receiver = basic_credit_receiver<>;

/// Identifies a stream in a credit_table: slot index in the low 16 bits, a generation in the
/// high 16 (never 0), so that an id of a closed stream no longer matches once its slot is
/// reused. 0 is never a stream id.
using stream_id = std::uint32_t;
inline constexpr stream_id no_stream = 0;

/// Per-stream flow-control state for many streams: both directions of Appendix A plus a user
/// payload T per stream, in slots allocated once. allocate/release/find are O(1) and
/// allocation-free; find rejects ids of streams that are closed or were never opened.
template <class T = std::monostate, CreditCounter C = std::uint64_t>
class credit_table {
public:
    struct entry {
        basic_credit_sender<C> tx;    ///< what this side may send on the stream
        basic_credit_receiver<C> rx;  ///< what this side accepts on the stream
        T user{};                     ///< the owner's per-stream state
    };

    static constexpr std::size_t max_capacity = 0xFFFF;

    /// Throws std::invalid_argument when capacity is 0 or above max_capacity.
    explicit credit_table(std::size_t capacity) : slots_(capacity), free_(capacity) {
        if (capacity == 0 || capacity > max_capacity)
            throw std::invalid_argument("credit_table: capacity must be 1.." + std::to_string(max_capacity) +
                                        ", got " + std::to_string(capacity));
        for (std::size_t i = 0; i < capacity; ++i) free_[i] = static_cast<std::uint16_t>(capacity - 1 - i);
        free_top_ = capacity;
    }

    /// Opens a stream whose receive buffer is `buffer` octets (Lr = Br). The sender half starts
    /// with no credit until the peer's limit arrives (set it with entry.tx = ...). Returns
    /// no_stream when the table is full. Resets the entry's user payload to T{}.
    [[nodiscard]] stream_id allocate(C buffer) noexcept(std::is_nothrow_default_constructible_v<T>) {
        if (free_top_ == 0) return no_stream;
        const std::uint16_t index = free_[--free_top_];
        slot& s = slots_[index];
        s.open = true;
        s.e = entry{basic_credit_sender<C>{}, basic_credit_receiver<C>{buffer}, T{}};
        ++open_;
        return make_id(index, s.generation);
    }

    /// Closes a stream; its id stops matching. Returns false (and does nothing) for an id that is
    /// not open.
    bool release(stream_id id) noexcept {
        slot* s = lookup(id);
        if (!s) return false;
        s->open = false;
        s->generation = static_cast<std::uint16_t>(s->generation == 0xFFFF ? 1 : s->generation + 1);
        free_[free_top_++] = static_cast<std::uint16_t>(id & 0xFFFF);
        --open_;
        return true;
    }

    /// The entry of an open stream, or nullptr.
    [[nodiscard]] entry* find(stream_id id) noexcept {
        slot* s = lookup(id);
        return s ? &s->e : nullptr;
    }
    [[nodiscard]] const entry* find(stream_id id) const noexcept {
        return const_cast<credit_table*>(this)->find(id);
    }

    /// Calls f(id, entry&) for every open stream, in slot order. O(capacity).
    template <class F>
    void for_each(F&& f) {
        for (std::size_t i = 0; i < slots_.size(); ++i)
            if (slots_[i].open) f(make_id(static_cast<std::uint16_t>(i), slots_[i].generation), slots_[i].e);
    }

    [[nodiscard]] std::size_t size() const noexcept { return open_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return slots_.size(); }

private:
    struct slot {
        entry e{};
        std::uint16_t generation = 1;
        bool open = false;
    };

    static constexpr stream_id make_id(std::uint16_t index, std::uint16_t generation) noexcept {
        return (static_cast<stream_id>(generation) << 16) | index;
    }
    slot* lookup(stream_id id) noexcept {
        const std::size_t index = id & 0xFFFF;
        const auto generation = static_cast<std::uint16_t>(id >> 16);
        if (index >= slots_.size()) return nullptr;
        slot& s = slots_[index];
        return (s.open && s.generation == generation) ? &s : nullptr;
    }

    std::vector<slot> slots_;
    std::vector<std::uint16_t> free_;
    std::size_t free_top_ = 0;
    std::size_t open_ = 0;
};

}  // namespace clusternet

template <>
struct std::is_error_code_enum<clusternet::flow_error> : std::true_type {};
