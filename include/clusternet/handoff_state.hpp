// clusternet/handoff_state.hpp -- the state of a TCP endpoint, serialised for a handoff: the
// 90-byte Handoff Information field of an LCCP handoff_request, continuation chunks for the
// queued bytes that do not fit, and a bounded reassembler on the receiving side.
//
// Design note. What Linux needs to recreate an established TCP endpoint with TCP_REPAIR
// (clusternet/tcp_repair.hpp; the kernel's TCP_REPAIR interface, as CRIU uses it) is: the
// 4-tuple; the sequence number of each queue (TCP_QUEUE_SEQ: write_seq for the send queue,
// rcv_nxt for the receive queue); the five TCP_REPAIR_WINDOW numbers; the options negotiated at
// the handshake (MSS, window scales, SACK permitted, timestamps) and the timestamp clock
// (TCP_TIMESTAMP); and the bytes in both queues: the request bytes already received but not read
// (the distributor peeked at them to choose a node), and the response bytes already written (sent
// but not acknowledged, and not sent at all). All of that but the queued bytes fits in 64 bytes;
// the other 26 bytes of the field carry the first queued bytes, so a short request needs no
// continuation at all.
//
// Handoff Information of handoff_request (version 1; numbers are byte offsets, big-endian):
//
//      0         1         2              3
//    +---------+---------+--------------+-----------+
//  0 | version |  flags  | snd_ws|rcv_ws | tcp state |   flags: 1 SACK, 2 timestamps, 4 window
//    +---------+---------+--------------+-----------+   scaling; others zero. state: 1 (ESTABLISHED)
//  4 |               client IPv4 address            |
//    +----------------------+-----------------------+
//  8 |     client port      |  server IPv4 ...      |   (the same 4-tuple as the LCCP Socket ID,
//    +----------------------+-----------------------+    which it must equal)
// 12 |  ... server IPv4     |     server port       |
//    +----------------------+-----------------------+
// 16 | snd_seq: TCP_QUEUE_SEQ of the send queue      |   (write_seq: after the last queued byte)
// 20 | rcv_seq: TCP_QUEUE_SEQ of the receive queue   |   (rcv_nxt)
// 24 | snd_wl1                                       |  -.
// 28 | snd_wnd                                       |   |
// 32 | max_window                                    |   |  TCP_REPAIR_WINDOW
// 36 | rcv_wnd                                       |   |
// 40 | rcv_wup                                       |  -'
// 44 | timestamp (TCP_TIMESTAMP)                     |
//    +----------------------+-----------------------+
// 48 |  MSS (mss_clamp)     |  chunk size C         |
//    +----------------------+-----------------------+
// 52 | receive queue length R                        |
// 56 | send queue length S (unacknowledged+unsent)   |
// 60 | unsent length U (U <= S)                      |
//    +-----------------------------------------------+
// 64 | first min(R+S, 26) bytes of the stream, zero  |
//    ~ padded                                        ~
// 89 +-----------------------------------------------+
//
// The stream is the receive queue's R bytes followed by the send queue's S bytes (the last U of
// which were never sent). Continuation: bytes 26 .. R+S-1 go in handoff_data messages, chunk k
// holding stream bytes [26 + k*C, min(R+S, 26 + (k+1)*C)). A chunk's bytes fill the 90-byte field
// first and then the LCCP payload; a chunk shorter than 90 bytes (only the last can be) pads the
// field with zeros and has no payload. Data of handoff_request is (handoff id << 16) | chunk
// count, of handoff_data (handoff id << 16) | k. The count is ceil((R+S-26)/C), at most 65535;
// 90 <= C <= 90 + lccp::max_payload. The reassembler takes a caller's buffer, refuses a stream
// larger than it (or than max_stream), checks every chunk's id, 4-tuple, index and exact length,
// takes each index once (a duplicate must be identical) and reports the missing ones; LCCP does
// not retransmit, so a handoff whose chunks do not all arrive by the caller's deadline fails
// (handoff_reply status incomplete) and the old node resumes the connection itself.
//
// IPv6 would need 32 bytes of addresses instead of 8 (and the paper's 96-bit Socket ID cannot hold
// them): a version-2 state would carry the addresses in its first chunk and move 24 bytes of the
// fixed part there; nothing else changes (sequence numbers, windows and options are the same).
// Everything here is noexcept and allocates nothing.
#pragma once

#include <clusternet/byteorder.hpp>
#include <clusternet/lccp.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace clusternet {

/// The five numbers of TCP_REPAIR_WINDOW (struct tcp_repair_window), in bytes (unscaled).
struct tcp_window_state {
    std::uint32_t snd_wl1 = 0;     ///< sequence number of the segment that last updated the send window
    std::uint32_t snd_wnd = 0;     ///< the peer's receive window
    std::uint32_t max_window = 0;  ///< the largest window the peer ever offered
    std::uint32_t rcv_wnd = 0;     ///< our receive window
    std::uint32_t rcv_wup = 0;     ///< rcv_nxt when the window was last advertised
    friend constexpr bool operator==(const tcp_window_state&, const tcp_window_state&) noexcept = default;
};

/// Everything but the queued bytes that recreates an established TCP endpoint. "client" is the
/// remote end, "server" the local one (the node that holds the connection).
struct handoff_state {
    static constexpr std::uint8_t format_version = 1;
    static constexpr std::uint8_t tcp_established = 1;  ///< Linux's TCP_ESTABLISHED
    static constexpr std::size_t wire_size = lccp::handoff_info_size;  ///< encoded, with the inline bytes

    lccp::socket_id socket;
    std::uint8_t tcp_state = tcp_established;
    std::uint32_t snd_seq = 0;  ///< TCP_QUEUE_SEQ of the send queue (write_seq)
    std::uint32_t rcv_seq = 0;  ///< TCP_QUEUE_SEQ of the receive queue (rcv_nxt)
    tcp_window_state window;
    std::uint32_t timestamp = 0;  ///< TCP_TIMESTAMP (the socket's timestamp clock)
    std::uint16_t mss = 0;        ///< TCP_MAXSEG, restored as TCPOPT_MAXSEG (mss_clamp)
    std::uint16_t chunk_size = 0; ///< C, bytes per continuation chunk (90 .. 90 + lccp::max_payload)
    std::uint8_t snd_wscale = 0;  ///< the peer's window scale (tcpi_snd_wscale)
    std::uint8_t rcv_wscale = 0;  ///< our window scale (tcpi_rcv_wscale)
    bool sack_permitted = false;
    bool timestamps = false;
    bool window_scaling = false;
    std::uint32_t recv_queue_len = 0;  ///< R: bytes received and not read (the request)
    std::uint32_t send_queue_len = 0;  ///< S: bytes written and not acknowledged (sent or not)
    std::uint32_t unsent_len = 0;      ///< U: the last U bytes of the send queue were never sent

    [[nodiscard]] constexpr std::uint64_t stream_size() const noexcept {
        return std::uint64_t{recv_queue_len} + send_queue_len;
    }
    friend constexpr bool operator==(const handoff_state&, const handoff_state&) noexcept = default;
};

namespace handoff {

inline constexpr std::size_t inline_capacity = 26;  ///< stream bytes carried in handoff_request
inline constexpr std::size_t min_chunk_size = lccp::handoff_info_size;
inline constexpr std::size_t max_chunk_size = lccp::handoff_info_size + lccp::max_payload;
inline constexpr std::size_t max_chunks = 65535;
/// The largest stream any version-1 handoff may carry (a bound for reassembly buffers).
inline constexpr std::uint64_t max_stream = 64ULL << 20;
inline constexpr std::uint16_t default_chunk_size = static_cast<std::uint16_t>(max_chunk_size);
inline constexpr std::uint32_t max_scaled_window = 65535U << 14;  ///< RFC 7323: scale at most 14

/// Why a handoff state or chunk was refused.
enum class error : std::uint8_t {
    none = 0,
    bad_version,         ///< a format version this decoder does not know
    bad_flags,           ///< unknown flag bits
    bad_window_scale,    ///< a scale above 14, or a scale without window scaling
    bad_tcp_state,       ///< not ESTABLISHED
    bad_socket,          ///< incomplete 4-tuple, or not the LCCP Socket ID
    bad_mss,             ///< MSS outside 88 .. 65495
    bad_chunk_size,      ///< C outside 90 .. 90 + lccp::max_payload
    bad_queue_lengths,   ///< U > S, or R + S beyond max_stream or max_chunks chunks
    bad_window,          ///< window numbers the kernel's TCP_REPAIR_WINDOW would refuse
    bad_padding,         ///< non-zero bytes after the stream in the inline area or a short chunk
    bad_chunk_count,     ///< handoff_request's chunk count disagrees with R + S and C
    wrong_command,       ///< not a handoff_request / handoff_data message
    too_large,           ///< the stream does not fit the reassembly buffer
    wrong_handoff,       ///< a chunk of another handoff (id or 4-tuple)
    bad_chunk_index,     ///< chunk index beyond the count
    bad_chunk_length,    ///< a chunk of the wrong length for its index
    duplicate_mismatch,  ///< a chunk index seen before, with different bytes
    not_started,         ///< a chunk before any handoff_request
    stream_mismatch,     ///< encode: the stream's size is not R + S
};
inline constexpr std::size_t error_count = static_cast<std::size_t>(error::stream_mismatch) + 1;

[[nodiscard]] constexpr std::string_view to_string(error e) noexcept {
    switch (e) {
        case error::none: return "none";
        case error::bad_version: return "bad_version";
        case error::bad_flags: return "bad_flags";
        case error::bad_window_scale: return "bad_window_scale";
        case error::bad_tcp_state: return "bad_tcp_state";
        case error::bad_socket: return "bad_socket";
        case error::bad_mss: return "bad_mss";
        case error::bad_chunk_size: return "bad_chunk_size";
        case error::bad_queue_lengths: return "bad_queue_lengths";
        case error::bad_window: return "bad_window";
        case error::bad_padding: return "bad_padding";
        case error::bad_chunk_count: return "bad_chunk_count";
        case error::wrong_command: return "wrong_command";
        case error::too_large: return "too_large";
        case error::wrong_handoff: return "wrong_handoff";
        case error::bad_chunk_index: return "bad_chunk_index";
        case error::bad_chunk_length: return "bad_chunk_length";
        case error::duplicate_mismatch: return "duplicate_mismatch";
        case error::not_started: return "not_started";
        case error::stream_mismatch: return "stream_mismatch";
    }
    return "unknown";
}

namespace detail {
inline constexpr std::uint8_t flag_sack = 1, flag_timestamps = 2, flag_wscale = 4;
// "a is after b" in sequence space (RFC 793 arithmetic modulo 2^32).
[[nodiscard]] constexpr bool seq_after(std::uint32_t a, std::uint32_t b) noexcept {
    return static_cast<std::int32_t>(a - b) > 0;
}
}  // namespace detail

/// Continuation chunks needed for a stream of `stream` bytes in chunks of `c` bytes (c >= 1).
[[nodiscard]] constexpr std::uint64_t chunk_count(std::uint64_t stream, std::uint64_t c) noexcept {
    return stream <= inline_capacity ? 0 : (stream - inline_capacity + c - 1) / c;
}
[[nodiscard]] constexpr std::uint64_t chunk_count(const handoff_state& s) noexcept {
    return chunk_count(s.stream_size(), s.chunk_size == 0 ? 1 : s.chunk_size);
}
/// Stream offset and length of chunk k.
[[nodiscard]] constexpr std::uint64_t chunk_offset(const handoff_state& s, std::uint64_t k) noexcept {
    return inline_capacity + k * s.chunk_size;
}
[[nodiscard]] constexpr std::size_t chunk_length(const handoff_state& s, std::uint64_t k) noexcept {
    const std::uint64_t off = chunk_offset(s, k);
    const std::uint64_t end = std::min<std::uint64_t>(s.stream_size(), off + s.chunk_size);
    return end > off ? static_cast<std::size_t>(end - off) : 0;
}

/// Checks every field of a state (what decode and encode both require). O(1).
[[nodiscard]] constexpr error validate(const handoff_state& s) noexcept {
    if (s.tcp_state != handoff_state::tcp_established) return error::bad_tcp_state;
    if (!s.socket.is_complete()) return error::bad_socket;
    if (s.snd_wscale > 14 || s.rcv_wscale > 14) return error::bad_window_scale;
    if (!s.window_scaling && (s.snd_wscale != 0 || s.rcv_wscale != 0)) return error::bad_window_scale;
    if (s.mss < 88 || s.mss > 65495) return error::bad_mss;  // TCP_MIN_MSS .. 65535 - 40
    if (s.chunk_size < min_chunk_size || s.chunk_size > max_chunk_size) return error::bad_chunk_size;
    if (s.unsent_len > s.send_queue_len || s.stream_size() > max_stream || chunk_count(s) > max_chunks)
        return error::bad_queue_lengths;
    const tcp_window_state& w = s.window;
    if (w.snd_wnd > w.max_window || w.max_window > max_scaled_window || w.rcv_wnd > max_scaled_window)
        return error::bad_window;
    // The kernel's own checks in TCP_REPAIR_WINDOW (tcp_repair_set_window), with rcv_nxt = rcv_seq.
    if (detail::seq_after(w.snd_wl1, s.rcv_seq + w.rcv_wnd) || detail::seq_after(w.rcv_wup, s.rcv_seq))
        return error::bad_window;
    return error::none;
}

/// Writes the 90-byte field of a handoff_request. `stream` is the receive queue followed by the
/// send queue (R + S bytes); its first 26 bytes go inline. Returns the reason on invalid input.
[[nodiscard]] inline error encode_info(const handoff_state& s, std::span<const std::byte> stream,
                                       std::span<std::byte, lccp::handoff_info_size> out) noexcept {
    if (const error e = validate(s); e != error::none) return e;
    if (stream.size() != s.stream_size()) return error::stream_mismatch;
    std::byte* p = out.data();
    std::memset(p, 0, out.size());
    store_u8(p + 0, handoff_state::format_version);
    store_u8(p + 1, static_cast<std::uint8_t>((s.sack_permitted ? detail::flag_sack : 0) |
                                              (s.timestamps ? detail::flag_timestamps : 0) |
                                              (s.window_scaling ? detail::flag_wscale : 0)));
    store_u8(p + 2, static_cast<std::uint8_t>((s.snd_wscale << 4) | s.rcv_wscale));
    store_u8(p + 3, s.tcp_state);
    store_be32(p + 4, s.socket.client_ip.value);
    store_be16(p + 8, s.socket.client_port);
    store_be32(p + 10, s.socket.server_ip.value);
    store_be16(p + 14, s.socket.server_port);
    store_be32(p + 16, s.snd_seq);
    store_be32(p + 20, s.rcv_seq);
    store_be32(p + 24, s.window.snd_wl1);
    store_be32(p + 28, s.window.snd_wnd);
    store_be32(p + 32, s.window.max_window);
    store_be32(p + 36, s.window.rcv_wnd);
    store_be32(p + 40, s.window.rcv_wup);
    store_be32(p + 44, s.timestamp);
    store_be16(p + 48, s.mss);
    store_be16(p + 50, s.chunk_size);
    store_be32(p + 52, s.recv_queue_len);
    store_be32(p + 56, s.send_queue_len);
    store_be32(p + 60, s.unsent_len);
    const std::size_t n = std::min(stream.size(), inline_capacity);
    if (n != 0) std::memcpy(p + 64, stream.data(), n);
    return error::none;
}

/// Decodes and validates the 90-byte field; `inline_bytes` views the inline stream bytes in `in`.
[[nodiscard]] inline error decode_info(std::span<const std::byte, lccp::handoff_info_size> in, handoff_state& s,
                                       std::span<const std::byte>& inline_bytes) noexcept {
    const std::byte* p = in.data();
    if (load_u8(p) != handoff_state::format_version) return error::bad_version;
    const std::uint8_t flags = load_u8(p + 1);
    if ((flags & ~(detail::flag_sack | detail::flag_timestamps | detail::flag_wscale)) != 0) return error::bad_flags;
    s.sack_permitted = (flags & detail::flag_sack) != 0;
    s.timestamps = (flags & detail::flag_timestamps) != 0;
    s.window_scaling = (flags & detail::flag_wscale) != 0;
    const std::uint8_t ws = load_u8(p + 2);
    s.snd_wscale = static_cast<std::uint8_t>(ws >> 4);
    s.rcv_wscale = static_cast<std::uint8_t>(ws & 0x0F);
    s.tcp_state = load_u8(p + 3);
    s.socket.client_ip = ipv4_address(load_be32(p + 4));
    s.socket.client_port = load_be16(p + 8);
    s.socket.server_ip = ipv4_address(load_be32(p + 10));
    s.socket.server_port = load_be16(p + 14);
    s.snd_seq = load_be32(p + 16);
    s.rcv_seq = load_be32(p + 20);
    s.window = {load_be32(p + 24), load_be32(p + 28), load_be32(p + 32), load_be32(p + 36), load_be32(p + 40)};
    s.timestamp = load_be32(p + 44);
    s.mss = load_be16(p + 48);
    s.chunk_size = load_be16(p + 50);
    s.recv_queue_len = load_be32(p + 52);
    s.send_queue_len = load_be32(p + 56);
    s.unsent_len = load_be32(p + 60);
    if (const error e = validate(s); e != error::none) return e;
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(s.stream_size(), inline_capacity));
    if (!lccp::detail::all_zero(in.subspan(64 + n))) return error::bad_padding;
    inline_bytes = in.subspan(64, n);
    return error::none;
}

/// Fills `m` as the handoff_request for `s` (receptor: the distributor; Data: id and chunk count).
[[nodiscard]] inline error make_request(const handoff_state& s, std::span<const std::byte> stream, std::uint16_t id,
                                        lccp::message& m) noexcept {
    if (const error e = encode_info(s, stream, m.handoff_info); e != error::none) return e;
    m.receptor = lccp::component::distributor;
    m.version = lccp::protocol_version;
    m.cmd = lccp::command::handoff_request;
    m.socket = s.socket;
    m.data = lccp::handoff_data_field(id, static_cast<std::uint16_t>(chunk_count(s)));
    m.payload = {};
    return error::none;
}

/// Fills `m` as continuation chunk k of `stream` (payload views `stream`, which must outlive m).
/// Precondition: s is valid and stream.size() == s.stream_size().
[[nodiscard]] inline error make_chunk(const handoff_state& s, std::span<const std::byte> stream, std::uint16_t id,
                                      std::uint64_t k, lccp::message& m) noexcept {
    if (stream.size() != s.stream_size()) return error::stream_mismatch;
    if (k >= chunk_count(s)) return error::bad_chunk_index;
    const auto bytes = stream.subspan(static_cast<std::size_t>(chunk_offset(s, k)), chunk_length(s, k));
    m.receptor = lccp::component::distributor;
    m.version = lccp::protocol_version;
    m.cmd = lccp::command::handoff_data;
    m.socket = s.socket;
    m.data = lccp::handoff_data_field(id, static_cast<std::uint16_t>(k));
    m.handoff_info.fill(std::byte{0});
    const std::size_t head = std::min(bytes.size(), lccp::handoff_info_size);
    std::memcpy(m.handoff_info.data(), bytes.data(), head);
    m.payload = bytes.subspan(head);
    return error::none;
}

/// Decodes a handoff_request message (already authenticated and validated by lccp::decode):
/// the state, the inline bytes, and checks that the 4-tuple and the chunk count agree.
[[nodiscard]] inline error decode_request(const lccp::message& m, handoff_state& s,
                                          std::span<const std::byte>& inline_bytes) noexcept {
    if (m.cmd != lccp::command::handoff_request) return error::wrong_command;
    if (const error e = decode_info(m.handoff_info, s, inline_bytes); e != error::none) return e;
    if (s.socket != m.socket) return error::bad_socket;
    if (lccp::handoff_low_of(m.data) != chunk_count(s)) return error::bad_chunk_count;
    return error::none;
}

/// Outcome of offering a chunk to the reassembler.
enum class chunk_verdict : std::uint8_t { accepted, duplicate, rejected };

/// Rebuilds a handoff's stream from its request and chunks, into a caller's buffer (no
/// allocation). Chunks may arrive in any order; each index is taken once. Not thread-safe.
class reassembler {
public:
    /// `buffer` bounds the stream a handoff may bring (and must outlive the reassembler).
    explicit reassembler(std::span<std::byte> buffer) noexcept : buf_(buffer) {}

    /// Starts a handoff from its handoff_request (forgetting any earlier one). O(R + S / 64).
    [[nodiscard]] error start(const lccp::message& request) noexcept {
        started_ = false;
        std::span<const std::byte> inl;
        if (const error e = decode_request(request, state_, inl); e != error::none) return e;
        if (state_.stream_size() > buf_.size()) return error::too_large;
        id_ = lccp::handoff_id_of(request.data);
        count_ = static_cast<std::size_t>(chunk_count(state_));
        received_ = 0;
        std::fill(seen_.begin(), seen_.begin() + static_cast<std::ptrdiff_t>((count_ + 63) / 64), 0ULL);
        if (!inl.empty()) std::memcpy(buf_.data(), inl.data(), inl.size());
        started_ = true;
        return error::none;
    }

    /// Offers a handoff_data message. On `rejected`, `why` says why. O(chunk).
    chunk_verdict add(const lccp::message& m, error& why) noexcept {
        why = check(m);
        if (why != error::none) return chunk_verdict::rejected;
        const std::size_t k = lccp::handoff_low_of(m.data);
        const std::size_t off = static_cast<std::size_t>(chunk_offset(state_, k));
        const std::size_t len = chunk_length(state_, k);
        const std::size_t head = std::min(len, lccp::handoff_info_size);
        std::byte* dst = buf_.data() + off;
        if ((seen_[k / 64] >> (k % 64)) & 1U) {
            const bool same = std::memcmp(dst, m.handoff_info.data(), head) == 0 &&
                              (m.payload.empty() || std::memcmp(dst + head, m.payload.data(), m.payload.size()) == 0);
            if (same) return chunk_verdict::duplicate;
            why = error::duplicate_mismatch;
            return chunk_verdict::rejected;
        }
        std::memcpy(dst, m.handoff_info.data(), head);
        if (!m.payload.empty()) std::memcpy(dst + head, m.payload.data(), m.payload.size());
        seen_[k / 64] |= 1ULL << (k % 64);
        ++received_;
        return chunk_verdict::accepted;
    }

    [[nodiscard]] bool started() const noexcept { return started_; }
    /// All chunks are in: stream() is the whole receive queue followed by the send queue.
    [[nodiscard]] bool complete() const noexcept { return started_ && received_ == count_; }
    [[nodiscard]] std::size_t chunks_expected() const noexcept { return count_; }
    [[nodiscard]] std::size_t chunks_received() const noexcept { return received_; }
    /// The lowest chunk index still missing (chunks_expected() when none is).
    [[nodiscard]] std::size_t first_missing() const noexcept {
        for (std::size_t k = 0; k < count_; ++k)
            if (((seen_[k / 64] >> (k % 64)) & 1U) == 0) return k;
        return count_;
    }
    [[nodiscard]] const handoff_state& state() const noexcept { return state_; }
    [[nodiscard]] std::uint16_t id() const noexcept { return id_; }
    [[nodiscard]] std::span<const std::byte> stream() const noexcept {
        return std::span<const std::byte>(buf_).first(static_cast<std::size_t>(state_.stream_size()));
    }
    [[nodiscard]] std::span<const std::byte> recv_queue() const noexcept { return stream().first(state_.recv_queue_len); }
    [[nodiscard]] std::span<const std::byte> send_queue() const noexcept { return stream().subspan(state_.recv_queue_len); }

private:
    [[nodiscard]] error check(const lccp::message& m) const noexcept {
        if (m.cmd != lccp::command::handoff_data) return error::wrong_command;
        if (!started_) return error::not_started;
        if (lccp::handoff_id_of(m.data) != id_ || m.socket != state_.socket) return error::wrong_handoff;
        const std::size_t k = lccp::handoff_low_of(m.data);
        if (k >= count_) return error::bad_chunk_index;
        const std::size_t len = chunk_length(state_, k);
        if (len <= lccp::handoff_info_size) {
            if (!m.payload.empty()) return error::bad_chunk_length;
            if (!lccp::detail::all_zero(std::span<const std::byte>(m.handoff_info).subspan(len))) return error::bad_padding;
        } else if (m.payload.size() != len - lccp::handoff_info_size) {
            return error::bad_chunk_length;
        }
        return error::none;
    }

    std::span<std::byte> buf_;
    handoff_state state_{};
    std::uint16_t id_ = 0;
    std::size_t count_ = 0;
    std::size_t received_ = 0;
    bool started_ = false;
    std::array<std::uint64_t, (max_chunks + 64) / 64> seen_{};
};

}  // namespace handoff
}  // namespace clusternet
