// clusternet/saps_protocol.hpp -- the SAPS forwarding protocol as frames on one byte stream.
//
// Design note. SAPS (Matsuba and Ishikawa, IPDPS 2007, sections 2.1.1 and 2.3) joins an I/O
// server and an application node with a Forwarding Protocol: MakeConnection, CloseConnection and
// SendMessage on the sending side, the callbacks ConnectionAccepted, ConnectionClosed,
// MessageReceived and BufferAvailable on the receiving side, all over ONE channel of the cluster
// network with a tag per connection. This header is that protocol as frames on one reliable,
// ordered byte stream (a UNIX stream socket or TCP); mux_channel.hpp runs it over Boost.Asio.
//
// Every frame opens with the same 12-byte header, all integers big-endian:
//
//      0                   1                   2                   3
//      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//     |                 length: the whole frame, header included      |
//     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//     |  version (1)  |     type      |          flags (0)            |
//     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//     |          stream: the RECEIVER's id of the stream (0: none)     |
//     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//     |  body (length - 12 bytes), by type ...
//
// Each side names a stream by its own id (a credit_table id); frames carry the id the receiver
// gave, as L2TP does with its session ids (RFC 2661 section 3.1), so a receiver indexes its table
// directly. The bodies (sizes fixed unless noted):
//
//   type         stream    body                                            paper
//   1 hello      0         magic "CNSP" u32, max_frame u32, capacity u32   (channel set-up)
//   2 open       0         opener id u32, window u64, tag u32,             MakeConnection
//                          peer endpoint (20), local endpoint (20)
//   3 accept     opener's  acceptor id u32, window u64                     ConnectionAccepted ack
//   4 refuse     opener's  error i32 (errno, > 0)                          its exception message
//   5 close      receiver  reason i32 (0: normal, else errno)              CloseConnection
//   6 data       receiver  payload, 1 .. max_frame - 12 bytes              SendMessage
//   7 grant      receiver  limit u64 (Appendix A's Lr, absolute)           BufferAvailable
//   8 request    receiver  call u8, 0 u8, 0 u16, request id u32, args      a Figure 3 call
//   9 reply      receiver  call u8, 0 u8, 0 u16, request id u32,           its result
//                          status i32 (0 or errno), value (0..64 bytes)
//  10 event      receiver  error i32 (errno, > 0)                          asynchronous error
//  11 eof        receiver  none                                            (half-close: TCP's FIN)
//
//   endpoint (20 bytes): IPv6 address (16; IPv4 as ::ffff:a.b.c.d), port u16, 0 u16
//   request args by call: bind and connect: endpoint; listen: backlog u32; shutdown: how u32
//   (0 read, 1 write, 2 both); close: none; setsockopt: level i32, name i32, value (0..64 bytes);
//   getsockopt: level i32, name i32, max length u32 (<= 64).
//
// `window` in open/accept is the sender's receive buffer (Appendix A's Br; the peer's first
// limit is that window). Only data frames consume credit; every other frame is small and bounded
// per stream by the protocol itself (one request outstanding per stream, as Figure 3's calls
// block). The Figure 3 calls map onto frames as the paper's table says: socket() is an open
// answered by accept or refuse (request | wait(status)); accept() sends nothing and waits for an
// open from the I/O server (Phi | wait(peeraddr)); write()/send() is data (request | Phi);
// read()/recv() sends nothing and takes from the local buffer (Phi | wait(message)); bind,
// listen, connect, shutdown, close, setsockopt and getsockopt are request/reply pairs. An error
// the I/O server meets on its own (a reset, a failed send) is an event frame, and the application
// node returns it from the next call on that socket (section 2.3).
//
// Half-close (eof): the sender will send no more data on the stream, but still reads; the
// receiver reads what was sent, then end of stream, and may go on sending. This is how a TCP
// client's FIN reaches the node (it may still be waiting for its answer, as an HTTP/1.0 client
// that shuts down its side after the request does) and how a node's shutdown(SHUT_WR) reaches
// the I/O server. Data after an eof, or a second eof, is a protocol error on that stream. A
// close still ends the stream (and its slot) as before.
//
// Versions: the version byte of every frame names the format; a decoder accepts its own only
// (bad_version otherwise), so peers of different versions fail at the hello, with that error,
// never in the middle of a stream. Version 2 added eof (version 1 had no half-close: a client's
// FIN closed the whole stream).
//
// The decoder validates everything: version, type, flags, length against the type's size and the
// configured maximum (before any body is buffered), zero padding, ids that may not be 0, and
// argument ranges, so a frame that decodes re-encodes to the same bytes. frame_decoder takes a
// byte stream in pieces of any size and holds at most one frame (max_frame bytes, allocated once).
#pragma once

#include <clusternet/address.hpp>
#include <clusternet/byteorder.hpp>
#include <clusternet/config.hpp>
#include <clusternet/credit_flow.hpp>
#include <clusternet/error.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace clusternet::saps {

inline constexpr std::uint8_t protocol_version = 2;
inline constexpr std::uint32_t hello_magic = 0x434E5350;  // "CNSP"
inline constexpr std::size_t header_size = 12;
/// The largest frame any endpoint may configure (data payload up to 1 MiB - 12).
inline constexpr std::size_t hard_max_frame = 1U << 20;
/// The default max_frame: 64 KiB of payload plus the header.
inline constexpr std::size_t default_max_frame = 65536 + header_size;
/// The largest socket option value or reply value.
inline constexpr std::size_t max_option_size = 64;

enum class frame_type : std::uint8_t {
    hello = 1, open, accept, refuse, close, data, grant, request, reply, event, eof,
};
inline constexpr std::uint8_t frame_type_last = static_cast<std::uint8_t>(frame_type::eof);

[[nodiscard]] constexpr std::string_view to_string(frame_type t) noexcept {
    switch (t) {
        case frame_type::hello: return "hello";
        case frame_type::open: return "open";
        case frame_type::accept: return "accept";
        case frame_type::refuse: return "refuse";
        case frame_type::close: return "close";
        case frame_type::data: return "data";
        case frame_type::grant: return "grant";
        case frame_type::request: return "request";
        case frame_type::reply: return "reply";
        case frame_type::event: return "event";
        case frame_type::eof: return "eof";
    }
    return "unknown";
}

/// The socket calls of the paper's Figure 3. Only bind .. getsockopt minus accept/send/recv
/// travel as request frames (see the design note for the others).
enum class socket_call : std::uint8_t {
    socket = 1, bind, listen, accept, connect, send, recv, shutdown, close, setsockopt, getsockopt,
};
inline constexpr std::uint8_t socket_call_last = static_cast<std::uint8_t>(socket_call::getsockopt);

[[nodiscard]] constexpr std::string_view to_string(socket_call c) noexcept {
    switch (c) {
        case socket_call::socket: return "socket";
        case socket_call::bind: return "bind";
        case socket_call::listen: return "listen";
        case socket_call::accept: return "accept";
        case socket_call::connect: return "connect";
        case socket_call::send: return "send";
        case socket_call::recv: return "recv";
        case socket_call::shutdown: return "shutdown";
        case socket_call::close: return "close";
        case socket_call::setsockopt: return "setsockopt";
        case socket_call::getsockopt: return "getsockopt";
    }
    return "unknown";
}

/// Whether a call is forwarded as a request frame (the others map onto open/data/local reads).
[[nodiscard]] constexpr bool is_request_call(socket_call c) noexcept {
    switch (c) {
        case socket_call::bind: case socket_call::listen: case socket_call::connect:
        case socket_call::shutdown: case socket_call::close: case socket_call::setsockopt:
        case socket_call::getsockopt:
            return true;
        default:
            return false;
    }
}

/// A transport address: IPv6 (IPv4 mapped), port.
struct endpoint {
    ipv6_address address{};
    std::uint16_t port = 0;

    static constexpr std::size_t wire_size = 20;
    [[nodiscard]] static constexpr endpoint v4(ipv4_address a, std::uint16_t port) noexcept {
        return {ipv6_address::v4_mapped(a), port};
    }
    friend constexpr bool operator==(const endpoint&, const endpoint&) noexcept = default;
};

/// One decoded frame. Which fields mean something depends on `type` (see the table above);
/// the others are zero. `payload` points into the decoder's input or buffer and lives until the
/// next call into the decoder.
struct frame {
    frame_type type = frame_type::data;
    stream_id stream = no_stream;    ///< the receiver's id (0 for hello and open)
    stream_id id = no_stream;        ///< open: the opener's id; accept: the acceptor's id
    std::uint64_t limit = 0;         ///< open/accept: the sender's window; grant: the new limit
    std::uint32_t tag = 0;           ///< open: the opener's tag (e.g. which listener)
    std::int32_t error = 0;          ///< refuse/event: errno; close: reason; reply: status
    socket_call call = socket_call::socket;  ///< request/reply
    std::uint32_t request_id = 0;    ///< request/reply
    std::uint32_t arg0 = 0;          ///< listen: backlog; shutdown: how; sockopt: level; hello: max_frame
    std::uint32_t arg1 = 0;          ///< sockopt: name; hello: capacity
    std::uint32_t arg2 = 0;          ///< getsockopt: max length
    endpoint peer{};                 ///< open: the TCP peer; connect: where to
    endpoint local{};                ///< open: the local address; bind: what to bind
    std::span<const std::byte> payload{};  ///< data; setsockopt value; reply value

    // Constructors for the frames one sends (all noexcept, no allocation).
    [[nodiscard]] static frame make_hello(std::uint32_t max_frame, std::uint32_t capacity) noexcept {
        frame f; f.type = frame_type::hello; f.arg0 = max_frame; f.arg1 = capacity; return f;
    }
    [[nodiscard]] static frame make_open(stream_id opener, std::uint64_t window, std::uint32_t tag,
                                         const endpoint& peer = {}, const endpoint& local = {}) noexcept {
        frame f; f.type = frame_type::open; f.id = opener; f.limit = window; f.tag = tag;
        f.peer = peer; f.local = local; return f;
    }
    [[nodiscard]] static frame make_accept(stream_id opener, stream_id acceptor, std::uint64_t window) noexcept {
        frame f; f.type = frame_type::accept; f.stream = opener; f.id = acceptor; f.limit = window; return f;
    }
    [[nodiscard]] static frame make_refuse(stream_id opener, std::int32_t err) noexcept {
        frame f; f.type = frame_type::refuse; f.stream = opener; f.error = err; return f;
    }
    [[nodiscard]] static frame make_close(stream_id s, std::int32_t reason = 0) noexcept {
        frame f; f.type = frame_type::close; f.stream = s; f.error = reason; return f;
    }
    [[nodiscard]] static frame make_data(stream_id s, std::span<const std::byte> payload) noexcept {
        frame f; f.type = frame_type::data; f.stream = s; f.payload = payload; return f;
    }
    [[nodiscard]] static frame make_grant(stream_id s, std::uint64_t limit) noexcept {
        frame f; f.type = frame_type::grant; f.stream = s; f.limit = limit; return f;
    }
    [[nodiscard]] static frame make_event(stream_id s, std::int32_t err) noexcept {
        frame f; f.type = frame_type::event; f.stream = s; f.error = err; return f;
    }
    [[nodiscard]] static frame make_eof(stream_id s) noexcept {
        frame f; f.type = frame_type::eof; f.stream = s; return f;
    }
    [[nodiscard]] static frame make_request(stream_id s, socket_call c, std::uint32_t request_id) noexcept {
        frame f; f.type = frame_type::request; f.stream = s; f.call = c; f.request_id = request_id; return f;
    }
    [[nodiscard]] static frame make_reply(stream_id s, socket_call c, std::uint32_t request_id, std::int32_t status,
                                          std::span<const std::byte> value = {}) noexcept {
        frame f; f.type = frame_type::reply; f.stream = s; f.call = c; f.request_id = request_id;
        f.error = status; f.payload = value; return f;
    }
};

namespace detail {

inline void store_endpoint(std::byte* p, const endpoint& e) noexcept {
    std::memcpy(p, e.address.bytes.data(), 16);
    store_be16(p + 16, e.port);
    store_be16(p + 18, 0);
}
inline bool load_endpoint(const std::byte* p, endpoint& e) noexcept {
    std::memcpy(e.address.bytes.data(), p, 16);
    e.port = load_be16(p + 16);
    return load_be16(p + 18) == 0;
}

/// Size of a request's arguments (without the 8-byte call/request-id prefix), or -1 when the
/// call is not a request call; setsockopt's value comes on top.
constexpr int request_args_size(socket_call c) noexcept {
    switch (c) {
        case socket_call::bind: case socket_call::connect: return static_cast<int>(endpoint::wire_size);
        case socket_call::listen: case socket_call::shutdown: return 4;
        case socket_call::close: return 0;
        case socket_call::setsockopt: return 8;
        case socket_call::getsockopt: return 12;
        default: return -1;
    }
}

}  // namespace detail

/// Bytes frame f takes on the wire (header included); 0 for a request or reply of a call that is
/// not a request call, or with a value above max_option_size.
[[nodiscard]] constexpr std::size_t encoded_size(const frame& f) noexcept {
    switch (f.type) {
        case frame_type::hello: return header_size + 12;
        case frame_type::open: return header_size + 16 + 2 * endpoint::wire_size;
        case frame_type::accept: return header_size + 12;
        case frame_type::refuse: case frame_type::close: case frame_type::event: return header_size + 4;
        case frame_type::data: return header_size + f.payload.size();
        case frame_type::grant: return header_size + 8;
        case frame_type::eof: return header_size;
        case frame_type::request: {
            const int args = detail::request_args_size(f.call);
            if (args < 0 || (f.call == socket_call::setsockopt && f.payload.size() > max_option_size)) return 0;
            return header_size + 8 + static_cast<std::size_t>(args) +
                   (f.call == socket_call::setsockopt ? f.payload.size() : 0);
        }
        case frame_type::reply:
            if (!is_request_call(f.call) || f.payload.size() > max_option_size) return 0;
            return header_size + 12 + f.payload.size();
    }
    return 0;
}

/// Writes the 12-byte header of a frame of `length` bytes. Precondition: out.size() >= 12.
CLUSTERNET_ALWAYS_INLINE void encode_header(std::span<std::byte> out, frame_type type, std::size_t length,
                                            stream_id stream) noexcept {
    CLUSTERNET_ASSERT(out.size() >= header_size);
    std::byte* p = out.data();
    store_be32(p, static_cast<std::uint32_t>(length));
    store_u8(p + 4, protocol_version);
    store_u8(p + 5, static_cast<std::uint8_t>(type));
    store_be16(p + 6, 0);
    store_be32(p + 8, stream);
}

/// Encodes f into out and returns the bytes written, or 0 when out is too small. The caller
/// keeps f valid by construction (the make_* functions); the decoder checks the rest. O(size).
[[nodiscard]] inline std::size_t encode(const frame& f, std::span<std::byte> out) noexcept {
    const std::size_t n = encoded_size(f);
    if (n == 0 || out.size() < n) return 0;
    encode_header(out, f.type, n, f.stream);
    std::byte* b = out.data() + header_size;
    switch (f.type) {
        case frame_type::hello:
            store_be32(b, hello_magic); store_be32(b + 4, f.arg0); store_be32(b + 8, f.arg1);
            break;
        case frame_type::open:
            store_be32(b, f.id); store_be64(b + 4, f.limit); store_be32(b + 12, f.tag);
            detail::store_endpoint(b + 16, f.peer);
            detail::store_endpoint(b + 16 + endpoint::wire_size, f.local);
            break;
        case frame_type::accept:
            store_be32(b, f.id); store_be64(b + 4, f.limit);
            break;
        case frame_type::refuse: case frame_type::close: case frame_type::event:
            store_be32(b, static_cast<std::uint32_t>(f.error));
            break;
        case frame_type::data:
            if (!f.payload.empty()) std::memcpy(b, f.payload.data(), f.payload.size());
            break;
        case frame_type::grant:
            store_be64(b, f.limit);
            break;
        case frame_type::eof:
            break;
        case frame_type::request:
        case frame_type::reply: {
            store_u8(b, static_cast<std::uint8_t>(f.call)); store_u8(b + 1, 0); store_be16(b + 2, 0);
            store_be32(b + 4, f.request_id);
            std::byte* a = b + 8;
            if (f.type == frame_type::reply) {
                store_be32(a, static_cast<std::uint32_t>(f.error));
                if (!f.payload.empty()) std::memcpy(a + 4, f.payload.data(), f.payload.size());
                break;
            }
            switch (f.call) {
                case socket_call::bind: detail::store_endpoint(a, f.local); break;
                case socket_call::connect: detail::store_endpoint(a, f.peer); break;
                case socket_call::listen: case socket_call::shutdown: store_be32(a, f.arg0); break;
                case socket_call::setsockopt:
                    store_be32(a, f.arg0); store_be32(a + 4, f.arg1);
                    if (!f.payload.empty()) std::memcpy(a + 8, f.payload.data(), f.payload.size());
                    break;
                case socket_call::getsockopt:
                    store_be32(a, f.arg0); store_be32(a + 4, f.arg1); store_be32(a + 8, f.arg2);
                    break;
                default: break;
            }
            break;
        }
    }
    return n;
}

/// Decodes one whole frame (exactly `in`, as delimited by its length field) and checks every
/// field. `max_frame` bounds the length. Errors: truncated, bad_version, bad_field (type, flags,
/// padding, ids, arguments), bad_total_length (length disagrees with the type), too_large,
/// bad_magic (hello). O(1) plus nothing copied: payload points into `in`.
[[nodiscard]] inline result<frame> decode_frame(std::span<const std::byte> in,
                                                std::size_t max_frame = default_max_frame) noexcept {
    if (in.size() < header_size) return parse_error::truncated;
    const std::byte* p = in.data();
    const std::size_t length = load_be32(p);
    if (length > max_frame) return parse_error::too_large;
    if (length < header_size || length != in.size()) return parse_error::bad_total_length;
    if (load_u8(p + 4) != protocol_version) return parse_error::bad_version;
    const std::uint8_t type = load_u8(p + 5);
    if (type == 0 || type > frame_type_last || load_be16(p + 6) != 0) return parse_error::bad_field;
    frame f;
    f.type = static_cast<frame_type>(type);
    f.stream = load_be32(p + 8);
    const std::byte* b = p + header_size;
    const std::size_t body = length - header_size;
    const bool channel_level = f.type == frame_type::hello || f.type == frame_type::open;
    if (channel_level != (f.stream == no_stream)) return parse_error::bad_field;

    auto fixed = [&](std::size_t n) { return body == n; };
    switch (f.type) {
        case frame_type::hello:
            if (!fixed(12)) return parse_error::bad_total_length;
            if (load_be32(b) != hello_magic) return parse_error::bad_magic;
            f.arg0 = load_be32(b + 4);
            f.arg1 = load_be32(b + 8);
            if (f.arg0 < header_size + 1 || f.arg0 > hard_max_frame || f.arg1 == 0) return parse_error::bad_field;
            break;
        case frame_type::open:
            if (!fixed(16 + 2 * endpoint::wire_size)) return parse_error::bad_total_length;
            f.id = load_be32(b);
            f.limit = load_be64(b + 4);
            f.tag = load_be32(b + 12);
            if (f.id == no_stream || f.limit == 0 || f.limit > max_credit_window<std::uint64_t>) return parse_error::bad_field;
            if (!detail::load_endpoint(b + 16, f.peer) || !detail::load_endpoint(b + 16 + endpoint::wire_size, f.local))
                return parse_error::bad_field;
            break;
        case frame_type::accept:
            if (!fixed(12)) return parse_error::bad_total_length;
            f.id = load_be32(b);
            f.limit = load_be64(b + 4);
            if (f.id == no_stream || f.limit == 0 || f.limit > max_credit_window<std::uint64_t>) return parse_error::bad_field;
            break;
        case frame_type::refuse: case frame_type::close: case frame_type::event:
            if (!fixed(4)) return parse_error::bad_total_length;
            f.error = static_cast<std::int32_t>(load_be32(b));
            if (f.error < 0 || (f.error == 0 && f.type != frame_type::close)) return parse_error::bad_field;
            break;
        case frame_type::data:
            if (body == 0) return parse_error::bad_total_length;
            f.payload = std::span<const std::byte>(b, body);
            break;
        case frame_type::grant:
            if (!fixed(8)) return parse_error::bad_total_length;
            f.limit = load_be64(b);
            break;
        case frame_type::eof:
            if (!fixed(0)) return parse_error::bad_total_length;
            break;
        case frame_type::request:
        case frame_type::reply: {
            if (body < 8) return parse_error::bad_total_length;
            const std::uint8_t call = load_u8(b);
            if (call == 0 || call > socket_call_last || load_u8(b + 1) != 0 || load_be16(b + 2) != 0)
                return parse_error::bad_field;
            f.call = static_cast<socket_call>(call);
            if (!is_request_call(f.call)) return parse_error::bad_field;
            f.request_id = load_be32(b + 4);
            const std::byte* a = b + 8;
            const std::size_t rest = body - 8;
            if (f.type == frame_type::reply) {
                if (rest < 4 || rest - 4 > max_option_size) return parse_error::bad_total_length;
                f.error = static_cast<std::int32_t>(load_be32(a));
                if (f.error < 0) return parse_error::bad_field;
                f.payload = std::span<const std::byte>(a + 4, rest - 4);
                break;
            }
            const auto args = static_cast<std::size_t>(detail::request_args_size(f.call));
            if (f.call == socket_call::setsockopt ? (rest < args || rest - args > max_option_size) : rest != args)
                return parse_error::bad_total_length;
            switch (f.call) {
                case socket_call::bind:
                    if (!detail::load_endpoint(a, f.local)) return parse_error::bad_field;
                    break;
                case socket_call::connect:
                    if (!detail::load_endpoint(a, f.peer)) return parse_error::bad_field;
                    break;
                case socket_call::listen:
                    f.arg0 = load_be32(a);
                    break;
                case socket_call::shutdown:
                    f.arg0 = load_be32(a);
                    if (f.arg0 > 2) return parse_error::bad_field;
                    break;
                case socket_call::setsockopt:
                    f.arg0 = load_be32(a); f.arg1 = load_be32(a + 4);
                    f.payload = std::span<const std::byte>(a + 8, rest - 8);
                    break;
                case socket_call::getsockopt:
                    f.arg0 = load_be32(a); f.arg1 = load_be32(a + 4); f.arg2 = load_be32(a + 8);
                    if (f.arg2 > max_option_size) return parse_error::bad_field;
                    break;
                default:
                    break;
            }
            break;
        }
    }
    return f;
}

/// An incremental decoder for a byte stream of frames: feed() it what each read returned, in
/// pieces of any size; it calls on_frame(const frame&) for every complete frame, in order.
///
/// A frame wholly inside one piece is decoded in place (no copy); only a frame split across
/// pieces is gathered in an internal buffer of max_frame bytes, allocated at construction. The
/// length field is checked as soon as the header is in, so a hostile length is refused before
/// any body is buffered. A framing error cannot be resynchronised on a byte stream: the decoder
/// then stays failed, and every later feed() returns the same error without reading.
class frame_decoder {
public:
    /// Throws std::invalid_argument when max_frame is outside 13 .. hard_max_frame.
    explicit frame_decoder(std::size_t max_frame = default_max_frame) : max_frame_(max_frame) {
        if (max_frame <= header_size || max_frame > hard_max_frame)
            throw std::invalid_argument("saps::frame_decoder: max_frame must be 13.." + std::to_string(hard_max_frame) +
                                        ", got " + std::to_string(max_frame));
        buffer_.resize(max_frame);
    }

    /// Consumes all of `in`; calls on_frame(const frame&) for each complete frame. Returns
    /// parse_error::none, or the error that stopped decoding (sticky). Frames before the bad one
    /// have been delivered. Throws only what on_frame throws.
    template <class OnFrame>
    parse_error feed(std::span<const std::byte> in, OnFrame&& on_frame) {
        if (error_ != parse_error::none) return error_;
        while (!in.empty()) {
            if (have_ == 0 && in.size() >= header_size) {
                // Fast path: whole frames straight from the input.
                const std::size_t length = load_be32(in.data());
                if (const parse_error e = check_length(length); e != parse_error::none) return fail(e);
                if (in.size() >= length) {
                    if (!deliver(in.first(length), on_frame)) return error_;
                    in = in.subspan(length);
                    continue;
                }
            }
            // Gather: first the header, then the rest of the frame.
            const std::size_t want = have_ < header_size ? header_size : load_be32(buffer_.data());
            const std::size_t take = std::min(want - have_, in.size());
            std::memcpy(buffer_.data() + have_, in.data(), take);
            have_ += take;
            in = in.subspan(take);
            if (have_ == header_size) {
                const std::size_t length = load_be32(buffer_.data());
                if (const parse_error e = check_length(length); e != parse_error::none) return fail(e);
            }
            if (have_ >= header_size && have_ == load_be32(buffer_.data())) {
                const std::size_t n = have_;
                have_ = 0;
                if (!deliver(std::span<const std::byte>(buffer_.data(), n), on_frame)) return error_;
            }
        }
        return parse_error::none;
    }

    [[nodiscard]] parse_error error() const noexcept { return error_; }
    /// Bytes of an incomplete frame held (0 at a frame boundary).
    [[nodiscard]] std::size_t pending() const noexcept { return have_; }
    [[nodiscard]] std::size_t max_frame() const noexcept { return max_frame_; }
    [[nodiscard]] std::uint64_t frames() const noexcept { return frames_; }

private:
    [[nodiscard]] parse_error check_length(std::size_t length) const noexcept {
        if (length > max_frame_) return parse_error::too_large;
        if (length < header_size) return parse_error::bad_total_length;
        return parse_error::none;
    }
    parse_error fail(parse_error e) noexcept {
        error_ = e;
        return e;
    }
    template <class OnFrame>
    bool deliver(std::span<const std::byte> bytes, OnFrame& on_frame) {
        const result<frame> f = decode_frame(bytes, max_frame_);
        if (!f) {
            fail(f.error());
            return false;
        }
        ++frames_;
        on_frame(*f);
        return true;
    }

    std::vector<std::byte> buffer_;
    std::size_t max_frame_;
    std::size_t have_ = 0;
    std::uint64_t frames_ = 0;
    parse_error error_ = parse_error::none;
};

}  // namespace clusternet::saps
