// clusternet/tcp_lifecycle.hpp -- the connection states a dispatcher tracks, and how the TCP
// flags of each packet move a session between them.
//
// States follow the names Linux IPVS uses, as seen from the cluster's side of the connection:
//
//   (none)                  -- SYN from the client --> syn_recv        (half-open)
//   syn_recv                -- ACK from the client --> established
//   syn_recv, established   -- FIN from the client --> fin_wait
//   syn_recv, established   -- FIN from the server --> close_wait
//   fin_wait                -- FIN from the server --> last_ack
//   close_wait              -- FIN from the client --> last_ack
//   last_ack                -- ACK                 --> time_wait
//   any                     -- RST                 --> close
//   fin_wait ... close      -- SYN from the client --> syn_recv        (reopened: a reused port)
//
// The dispatcher may see one direction only (direct routing and tunnelling: replies bypass it)
// or both (NAT); the table works from whatever it sees, and the timeouts close what it cannot.
// A SYN without ACK on a session that is closing (fin_wait, close_wait, last_ack, time_wait,
// close) is a client reusing its port: the session starts afresh as syn_recv, and the caller
// is told to schedule it anew -- no stall (IPVS's conn_reuse_mode drops such SYNs for a
// second). UDP and other protocols have one state, `udp` / `other`, ended by idle timeout.
//
// Default timeouts are IPVS's (net/netfilter/ipvs/ip_vs_proto_tcp.c, ip_vs_proto_udp.c):
// established 15 min, syn_recv 1 min, fin_wait 2 min, close_wait 1 min, last_ack 30 s,
// time_wait 2 min, close 10 s, UDP 5 min; `other` gets UDP's.
#pragma once

#include <clusternet/tcp.hpp>

#include <array>
#include <cstdint>
#include <string_view>

namespace clusternet {

enum class session_state : std::uint8_t {
    free = 0,     ///< not a session (a slot in the free list)
    syn_recv,     ///< SYN seen, never established: half-open
    established,
    fin_wait,     ///< FIN from the client seen
    close_wait,   ///< FIN from the server seen
    last_ack,     ///< FINs from both sides, the last not yet acknowledged
    time_wait,
    close,        ///< RST seen
    udp,          ///< a UDP flow
    other,        ///< another protocol (ICMP echo, ...)
};
inline constexpr std::size_t session_state_count = static_cast<std::size_t>(session_state::other) + 1;

[[nodiscard]] constexpr std::string_view to_string(session_state s) noexcept {
    constexpr std::array<std::string_view, session_state_count> names{
        "free", "syn_recv", "established", "fin_wait", "close_wait", "last_ack", "time_wait", "close", "udp", "other"};
    const auto i = static_cast<std::size_t>(s);
    return i < names.size() ? names[i] : "unknown";
}

/// True for the states in which a new SYN from the client is a reused port.
[[nodiscard]] constexpr bool is_closing(session_state s) noexcept {
    return s == session_state::fin_wait || s == session_state::close_wait || s == session_state::last_ack ||
           s == session_state::time_wait || s == session_state::close;
}

/// Which way a packet goes: from the client (towards the cluster) or from the server.
enum class direction : std::uint8_t { from_client, from_server };

/// Per-state idle timeouts in clock ticks (the table's clock: the caller passes `now`).
struct session_timeouts {
    std::array<std::uint32_t, session_state_count> ticks{};

    /// IPVS's defaults, for a clock that ticks `ticks_per_second` times a second.
    [[nodiscard]] static constexpr session_timeouts ipvs_defaults(std::uint32_t ticks_per_second = 1000) noexcept {
        session_timeouts t;
        const auto s = [&](std::uint32_t seconds) { return seconds * ticks_per_second; };
        t.ticks = {0, s(60), s(900), s(120), s(60), s(30), s(120), s(10), s(300), s(300)};
        return t;
    }
    [[nodiscard]] constexpr std::uint32_t operator[](session_state st) const noexcept {
        return ticks[static_cast<std::size_t>(st)];
    }
    constexpr void set(session_state st, std::uint32_t t) noexcept { ticks[static_cast<std::size_t>(st)] = t; }
};

/// What a packet did to a session's state.
struct tcp_transition {
    session_state next;
    bool reopened = false;  ///< a SYN reused the port of a closing session: schedule anew
};

/// The state after a TCP segment with `flags` going `dir`, from state `s`. Pure, O(1).
/// Precondition: s is a TCP state (not free, udp or other).
[[nodiscard]] constexpr tcp_transition tcp_next_state(session_state s, std::uint8_t flags, direction dir) noexcept {
    using st = session_state;
    const bool syn = (flags & tcp_flags::syn) != 0, ack = (flags & tcp_flags::ack) != 0;
    const bool fin = (flags & tcp_flags::fin) != 0, rst = (flags & tcp_flags::rst) != 0;
    const bool client = dir == direction::from_client;
    if (rst) return {st::close};
    if (syn && !ack && client) {
        // A new connection attempt: a retransmitted SYN keeps syn_recv; on a closing session it
        // is a reused port and starts afresh; an established session keeps its state (the SYN
        // may be a duplicate, and the server will sort out a stale one).
        if (s == st::established) return {st::established};
        return {st::syn_recv, is_closing(s)};
    }
    switch (s) {
        case st::syn_recv:
            if (fin) return {client ? st::fin_wait : st::close_wait};
            if (client && ack && !syn) return {st::established};
            return {st::syn_recv};  // the server's SYN-ACK, or retransmissions
        case st::established:
            if (fin) return {client ? st::fin_wait : st::close_wait};
            return {st::established};
        case st::fin_wait:  // the client has closed; with direct routing the server's FIN is
                            // never seen, and the fin_wait timeout ends the session
            if (fin && !client) return {st::last_ack};
            return {st::fin_wait};
        case st::close_wait:  // the server has closed
            if (fin && client) return {st::last_ack};
            return {st::close_wait};
        case st::last_ack:
            if (ack && !fin) return {st::time_wait};
            return {st::last_ack};
        case st::time_wait:
        case st::close:
        default:
            return {s};
    }
}

}  // namespace clusternet
