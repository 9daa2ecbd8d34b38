// clusternet/lccp.hpp -- the Light-weight Cluster Control Protocol: message codec, authentication
// tag, member filter, and an inbound checker that counts every rejection.
//
// Design note. LCCP (seed paper 000, "A scalable web cluster with a Light-weight Cluster Control
// Protocol on the IP layer", section 3.2 and Figure 3) carries the control messages of a layer-7
// cluster after Aron et al.: distributor <-> dispatcher (which node serves this request), handoff
// between distributors, and forwarding control. It rides straight on IP (no transport header, no
// retransmission: the client's TCP retransmits when a control message is lost). The header is the
// paper's, field for field: Receptor (32 bits), Command (32), Data (32), Socket ID (96: client IP,
// client port, server IP, server port), then the Handoff Information field (90 bytes). clusternet
// adds two things the paper leaves open:
//   - an optional payload after the 90-byte field, for the two commands that carry byte strings
//     longer than 90 bytes (a long content key; handoff continuation chunks). Its length is the
//     datagram's length minus the fixed part and the tag: LCCP has no length field, the IP header
//     carries it, so a message is always decoded from exactly one datagram's payload;
//   - a SipHash-2-4 tag (8 bytes, clusternet/siphash.hpp) over everything before it, appended to
//     every message, under a 128-bit cluster key. It rejects forged and altered messages; it does
//     not stop a replay of a genuine one (handoff ids and the 4-tuple make a replayed handoff
//     harmless: the receiver already holds, or has already refused, that connection).
//
// Versioning. The high byte of Command is the protocol version (1 now), the next byte is
// reserved (zero) and the low 16 bits are the opcode. The version sits in Command because the
// command is what gives Data, Socket ID and the 90-byte field their meaning: a receiver reads the
// version before it interprets anything else, and a later version may redefine any of them.
// Receptor stays a pure component selector (component in its high byte, instance in the low 24
// bits), so a node can deliver a message to its component without understanding its version.
// Decoders refuse every version they do not know (error::bad_version); a version-1 node answers
// init with init_ack status unsupported_version when a peer announces another.
//
// Wire layout (network byte order; numbers are byte offsets):
//
//     0                   1                   2                   3
//     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  0 |   component   |            instance (24 bits)                 |  Receptor
//    +---------------+---------------+-------------------------------+
//  4 |    version    | reserved (0)  |          opcode (16)          |  Command
//    +---------------+---------------+-------------------------------+
//  8 |                           Data (32)                           |  Data
//    +---------------------------------------------------------------+
// 12 |                       client IPv4 address                     |  Socket ID
//    +-------------------------------+-------------------------------+  (96 bits)
// 16 |          client port          |   server IPv4 address ...     |
//    +-------------------------------+-------------------------------+
// 20 |   ... server IPv4 address     |          server port          |
//    +-------------------------------+-------------------------------+
// 24 |                                                               |
//    ~            Handoff Information (90 bytes, per command)        ~
//    |                                                               |
//    +---------------------------------------------------------------+
//114 ~        payload (0..1358 bytes; handoff_data, dispatch_request) ~
//    +---------------------------------------------------------------+
//    |              tag: SipHash-2-4 of bytes 0 .. end of payload    |
//    +                (8 bytes, little-endian as in the reference)   +
//    |                                                               |
//    +---------------------------------------------------------------+
//
// The command set, and how each command uses Data, Socket ID and the 90-byte field, is the table
// `rule_of()` below and docs/lccp.md. Everything here is noexcept and allocates nothing; decode
// returns views into the caller's buffer.
#pragma once

#include <clusternet/address.hpp>
#include <clusternet/byteorder.hpp>
#include <clusternet/siphash.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>

namespace clusternet::lccp {

inline constexpr std::uint8_t protocol_version = 1;
inline constexpr std::uint8_t default_ip_protocol = 253;  ///< RFC 3692's experimental value
inline constexpr std::size_t header_size = 24;            ///< Receptor, Command, Data, Socket ID
inline constexpr std::size_t handoff_info_size = 90;
inline constexpr std::size_t fixed_size = header_size + handoff_info_size;  ///< 114
inline constexpr std::size_t tag_size = 8;
/// One IPv4 datagram without options on a 1500-byte MTU: 1500 - 20.
inline constexpr std::size_t max_message_size = 1480;
inline constexpr std::size_t max_payload = max_message_size - fixed_size - tag_size;  ///< 1358
inline constexpr std::size_t min_message_size = fixed_size + tag_size;                ///< 122
/// A content key (dispatch_request): 2 length bytes, then up to 88 bytes in the 90-byte field and
/// the rest in the payload.
inline constexpr std::size_t content_key_inline = handoff_info_size - 2;
inline constexpr std::size_t max_content_key = content_key_inline + max_payload;

/// The component a message is for (the high byte of Receptor).
enum class component : std::uint8_t {
    l4_switch = 1,    ///< the layer-4 switch in front of the cluster
    dispatcher = 2,   ///< the content-aware dispatcher
    distributor = 3,  ///< the distributor on a server node (handoff)
    forwarder = 4,    ///< the forwarder on a server node
    manager = 5,      ///< the cluster manager (membership, initialisation)
};
inline constexpr std::uint8_t max_component = 5;

/// The opcode (the low 16 bits of Command).
enum class command : std::uint16_t {
    init = 1,              ///< a component announces itself (component initialisation)
    init_ack = 2,          ///< the answer to init
    dispatch_request = 3,  ///< distributor -> dispatcher: which node serves this request?
    dispatch_reply = 4,    ///< dispatcher -> distributor: this node
    handoff_request = 5,   ///< distributor -> distributor: take this TCP connection
    handoff_data = 6,      ///< a continuation chunk of a handoff's queued bytes
    handoff_reply = 7,     ///< the new owner's answer: restored, or why not
    forward_install = 8,   ///< forward this connection's packets to the new owner
    forward_remove = 9,    ///< stop forwarding this connection
    load_report = 10,      ///< a node's load, for the dispatcher
    handoff_commit = 11,   ///< the old owner's decision on a handoff: go live (ok), or drop it
};
inline constexpr std::uint16_t max_command = 11;

/// Status values: Data of init_ack; low 16 bits of Data in handoff_reply.
enum class status : std::uint16_t {
    ok = 0,
    refused = 1,              ///< not a member, busy, or policy says no
    unsupported_version = 2,  ///< init announced a version this node does not speak
    restore_failed = 3,       ///< handoff: the TCP_REPAIR restore failed
    incomplete = 4,           ///< handoff: continuation chunks missing at the deadline
    bad_state = 5,            ///< handoff: the state did not decode
};
inline constexpr std::uint16_t max_status = 5;

/// Why a message was refused (also what encode refuses). Values index counter arrays.
enum class error : std::uint8_t {
    none = 0,
    truncated,           ///< fewer bytes than the fixed part and the tag
    too_large,           ///< more than max_message_size bytes
    buffer_too_small,    ///< encode: the output buffer cannot hold the message
    not_member,          ///< the sender is not a configured cluster member
    bad_tag,             ///< the authentication tag does not verify
    bad_version,         ///< a protocol version this codec does not speak
    reserved_nonzero,    ///< the reserved byte of Command is not zero
    unknown_command,     ///< an opcode outside the command set
    bad_receptor,        ///< unknown component, or one the command is never sent to
    bad_socket_id,       ///< a zero 4-tuple where one is needed, or a non-zero one where none is
    bad_data,            ///< the Data field holds a value the command does not allow
    bad_handoff_info,    ///< the 90-byte field is malformed for the command (unused bytes not zero, ...)
    unexpected_payload,  ///< bytes after the 90-byte field on a command without a payload
    bad_payload,         ///< the payload's length disagrees with what the 90-byte field announces
};
inline constexpr std::size_t error_count = static_cast<std::size_t>(error::bad_payload) + 1;

/// A short, stable snake_case name (for counters and logs).
[[nodiscard]] constexpr std::string_view to_string(error e) noexcept {
    switch (e) {
        case error::none: return "none";
        case error::truncated: return "truncated";
        case error::too_large: return "too_large";
        case error::buffer_too_small: return "buffer_too_small";
        case error::not_member: return "not_member";
        case error::bad_tag: return "bad_tag";
        case error::bad_version: return "bad_version";
        case error::reserved_nonzero: return "reserved_nonzero";
        case error::unknown_command: return "unknown_command";
        case error::bad_receptor: return "bad_receptor";
        case error::bad_socket_id: return "bad_socket_id";
        case error::bad_data: return "bad_data";
        case error::bad_handoff_info: return "bad_handoff_info";
        case error::unexpected_payload: return "unexpected_payload";
        case error::bad_payload: return "bad_payload";
    }
    return "unknown";
}

[[nodiscard]] constexpr std::string_view to_string(command c) noexcept {
    switch (c) {
        case command::init: return "init";
        case command::init_ack: return "init_ack";
        case command::dispatch_request: return "dispatch_request";
        case command::dispatch_reply: return "dispatch_reply";
        case command::handoff_request: return "handoff_request";
        case command::handoff_data: return "handoff_data";
        case command::handoff_reply: return "handoff_reply";
        case command::forward_install: return "forward_install";
        case command::forward_remove: return "forward_remove";
        case command::load_report: return "load_report";
        case command::handoff_commit: return "handoff_commit";
    }
    return "unknown";
}

/// The connection a message is about: the paper's 96-bit Socket ID. Ports are host-order numbers.
struct socket_id {
    ipv4_address client_ip;
    std::uint16_t client_port = 0;
    ipv4_address server_ip;
    std::uint16_t server_port = 0;

    static constexpr std::size_t wire_size = 12;

    [[nodiscard]] constexpr bool is_zero() const noexcept {
        return client_ip.value == 0 && client_port == 0 && server_ip.value == 0 && server_port == 0;
    }
    /// Every part non-zero: what a real TCP connection has.
    [[nodiscard]] constexpr bool is_complete() const noexcept {
        return client_ip.value != 0 && client_port != 0 && server_ip.value != 0 && server_port != 0;
    }
    friend constexpr bool operator==(const socket_id&, const socket_id&) noexcept = default;
};

/// One LCCP message. Decoded messages view the caller's buffer (payload); the 90-byte field is
/// copied (90 bytes cost less than a cache miss).
struct message {
    component receptor = component::manager;
    std::uint32_t instance = 0;  ///< 24 bits: which instance of the component on that node
    std::uint8_t version = protocol_version;
    command cmd = command::init;
    std::uint32_t data = 0;
    socket_id socket;
    std::array<std::byte, handoff_info_size> handoff_info{};
    std::span<const std::byte> payload;

    /// Bytes this message takes on the wire, tag included.
    [[nodiscard]] constexpr std::size_t wire_size() const noexcept { return fixed_size + payload.size() + tag_size; }
};

/// Parses a cluster key written as 32 hexadecimal digits (the 16 key bytes in order, as
/// siphash_key::from_bytes reads them); nullopt when malformed. For configuration files.
[[nodiscard]] inline std::optional<siphash_key> parse_key(std::string_view hex) noexcept {
    if (hex.size() != 32) return std::nullopt;
    std::array<std::byte, 16> b{};
    for (std::size_t i = 0; i < 32; ++i) {
        const char c = hex[i];
        int v = -1;
        if (c >= '0' && c <= '9') v = c - '0';
        else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
        if (v < 0) return std::nullopt;
        b[i / 2] |= std::byte(static_cast<unsigned char>(i % 2 == 0 ? v << 4 : v));
    }
    return siphash_key::from_bytes(b);
}

// ---------------------------------------------------------------------------------------------
// Per-command rules: which receptors, Socket ID, Data and 90-byte field each command allows.

enum class socket_rule : std::uint8_t { zero, complete };
enum class data_rule : std::uint8_t {
    any,             ///< an opaque number (request id, sequence number)
    zero,            ///< must be zero
    nonzero,         ///< an IPv4 address of a node
    sender,          ///< init: (sender component << 24) | sender instance
    status,          ///< init_ack: a status value
    handoff_status,  ///< handoff_reply, handoff_commit: handoff id << 16 | status
};
enum class info_rule : std::uint8_t {
    zero,           ///< all 90 bytes zero
    content_key,    ///< u16 length L (1..max_content_key), min(L, 88) bytes, zero padding; payload = the rest
    handoff_state,  ///< opaque here; clusternet/handoff_state.hpp decodes and validates it
    chunk,          ///< opaque here; the handoff reassembler checks it against the state
    load,           ///< u32 active connections, u32 load (thousandths), u32 weight, 78 zero bytes
};

struct command_rule {
    std::uint8_t receptors;  ///< bit (1 << component) for each component the command may go to
    socket_rule socket;
    data_rule data;
    info_rule info;
    bool payload;  ///< may bytes follow the 90-byte field?
};

namespace detail {
constexpr std::uint8_t bit(component c) noexcept { return static_cast<std::uint8_t>(1u << static_cast<unsigned>(c)); }
inline constexpr std::uint8_t any_component = bit(component::l4_switch) | bit(component::dispatcher) |
                                              bit(component::distributor) | bit(component::forwarder) |
                                              bit(component::manager);
}  // namespace detail

/// The rule of a known command (precondition: 1 <= c <= max_command).
[[nodiscard]] constexpr command_rule rule_of(command c) noexcept {
    using detail::bit;
    switch (c) {
        case command::init: return {detail::any_component, socket_rule::zero, data_rule::sender, info_rule::zero, false};
        case command::init_ack: return {detail::any_component, socket_rule::zero, data_rule::status, info_rule::zero, false};
        case command::dispatch_request:
            return {bit(component::dispatcher), socket_rule::complete, data_rule::any, info_rule::content_key, true};
        case command::dispatch_reply:
            return {bit(component::distributor), socket_rule::complete, data_rule::nonzero, info_rule::zero, false};
        case command::handoff_request:
            return {bit(component::distributor), socket_rule::complete, data_rule::any, info_rule::handoff_state, false};
        case command::handoff_data:
            return {bit(component::distributor), socket_rule::complete, data_rule::any, info_rule::chunk, true};
        case command::handoff_reply:
        case command::handoff_commit:
            return {bit(component::distributor), socket_rule::complete, data_rule::handoff_status, info_rule::zero, false};
        case command::forward_install:
            return {static_cast<std::uint8_t>(bit(component::forwarder) | bit(component::l4_switch)),
                    socket_rule::complete, data_rule::nonzero, info_rule::zero, false};
        case command::forward_remove:
            return {static_cast<std::uint8_t>(bit(component::forwarder) | bit(component::l4_switch)),
                    socket_rule::complete, data_rule::zero, info_rule::zero, false};
        case command::load_report:
            return {static_cast<std::uint8_t>(bit(component::dispatcher) | bit(component::manager)), socket_rule::zero,
                    data_rule::any, info_rule::load, false};
    }
    return {0, socket_rule::zero, data_rule::zero, info_rule::zero, false};
}

namespace detail {

[[nodiscard]] inline bool all_zero(std::span<const std::byte> s) noexcept {
    return std::all_of(s.begin(), s.end(), [](std::byte b) { return b == std::byte{0}; });
}

[[nodiscard]] inline error check_data(data_rule r, std::uint32_t d) noexcept {
    switch (r) {
        case data_rule::any: return error::none;
        case data_rule::zero: return d == 0 ? error::none : error::bad_data;
        case data_rule::nonzero: return d != 0 ? error::none : error::bad_data;
        case data_rule::sender: {
            const std::uint32_t c = d >> 24;
            return c >= 1 && c <= max_component ? error::none : error::bad_data;
        }
        case data_rule::status: return d <= max_status ? error::none : error::bad_data;
        case data_rule::handoff_status: return (d & 0xFFFF) <= max_status ? error::none : error::bad_data;
    }
    return error::bad_data;
}

[[nodiscard]] inline error check_info(info_rule r, const message& m) noexcept {
    const std::span<const std::byte> info(m.handoff_info);
    switch (r) {
        case info_rule::zero:
            return all_zero(info) ? error::none : error::bad_handoff_info;
        case info_rule::content_key: {
            const std::size_t len = load_be16(info.data());
            if (len == 0 || len > max_content_key) return error::bad_handoff_info;
            const std::size_t inline_len = std::min(len, content_key_inline);
            if (!all_zero(info.subspan(2 + inline_len))) return error::bad_handoff_info;
            return m.payload.size() == len - inline_len ? error::none : error::bad_payload;
        }
        case info_rule::handoff_state:
        case info_rule::chunk:
            return error::none;
        case info_rule::load:
            return all_zero(info.subspan(12)) ? error::none : error::bad_handoff_info;
    }
    return error::bad_handoff_info;
}

}  // namespace detail

/// Checks a message against the rules of its command. encode() and decode() both call it, so
/// clusternet never sends what it would refuse. Cost: a few compares and at most 90 byte tests.
[[nodiscard]] inline error validate(const message& m) noexcept {
    if (m.version != protocol_version) return error::bad_version;
    const auto op = static_cast<std::uint16_t>(m.cmd);
    if (op == 0 || op > max_command) return error::unknown_command;
    const command_rule r = rule_of(m.cmd);
    const auto comp = static_cast<std::uint8_t>(m.receptor);
    if (comp == 0 || comp > max_component || (r.receptors & detail::bit(m.receptor)) == 0 || m.instance > 0xFFFFFF)
        return error::bad_receptor;
    if (r.socket == socket_rule::zero ? !m.socket.is_zero() : !m.socket.is_complete()) return error::bad_socket_id;
    if (const error e = detail::check_data(r.data, m.data); e != error::none) return e;
    if (m.payload.size() > max_payload) return error::too_large;
    if (!r.payload && !m.payload.empty()) return error::unexpected_payload;
    return detail::check_info(r.info, m);
}

/// The result of encode/seal: bytes written, or why nothing was.
struct encode_result {
    std::size_t size = 0;
    error err = error::none;
    [[nodiscard]] constexpr explicit operator bool() const noexcept { return err == error::none; }
};

/// The result of decode/open/accept.
struct decode_result {
    message msg;
    error err = error::none;
    [[nodiscard]] constexpr explicit operator bool() const noexcept { return err == error::none; }
};

/// Writes the message without its tag (fixed part and payload) into `out`. Validates first.
/// Returns the bytes written (114 + payload) or the reason. O(size); noexcept; no allocation.
[[nodiscard]] inline encode_result encode_body(const message& m, std::span<std::byte> out) noexcept {
    if (const error e = validate(m); e != error::none) return {0, e};
    const std::size_t n = fixed_size + m.payload.size();
    if (out.size() < n) return {0, error::buffer_too_small};
    std::byte* p = out.data();
    store_be32(p + 0, (std::uint32_t{static_cast<std::uint8_t>(m.receptor)} << 24) | m.instance);
    store_be32(p + 4, (std::uint32_t{m.version} << 24) | static_cast<std::uint16_t>(m.cmd));
    store_be32(p + 8, m.data);
    store_be32(p + 12, m.socket.client_ip.value);
    store_be16(p + 16, m.socket.client_port);
    store_be32(p + 18, m.socket.server_ip.value);
    store_be16(p + 22, m.socket.server_port);
    std::memcpy(p + header_size, m.handoff_info.data(), handoff_info_size);
    if (!m.payload.empty()) std::memcpy(p + fixed_size, m.payload.data(), m.payload.size());
    return {n, error::none};
}

/// Parses and validates a message without a tag (exactly `in`: the bytes after the fixed part are
/// the payload). The payload views `in`. O(size); noexcept.
[[nodiscard]] inline decode_result decode_body(std::span<const std::byte> in) noexcept {
    decode_result r;
    if (in.size() < fixed_size) { r.err = error::truncated; return r; }
    if (in.size() > max_message_size - tag_size) { r.err = error::too_large; return r; }
    const std::byte* p = in.data();
    const std::uint32_t receptor = load_be32(p + 0);
    const std::uint32_t cmd = load_be32(p + 4);
    message& m = r.msg;
    m.receptor = static_cast<component>(receptor >> 24);
    m.instance = receptor & 0xFFFFFF;
    m.version = static_cast<std::uint8_t>(cmd >> 24);
    if (m.version != protocol_version) { r.err = error::bad_version; return r; }
    if (((cmd >> 16) & 0xFF) != 0) { r.err = error::reserved_nonzero; return r; }
    m.cmd = static_cast<command>(cmd & 0xFFFF);
    m.data = load_be32(p + 8);
    m.socket.client_ip = ipv4_address(load_be32(p + 12));
    m.socket.client_port = load_be16(p + 16);
    m.socket.server_ip = ipv4_address(load_be32(p + 18));
    m.socket.server_port = load_be16(p + 22);
    std::memcpy(m.handoff_info.data(), p + header_size, handoff_info_size);
    m.payload = in.subspan(fixed_size);
    r.err = validate(m);
    return r;
}

/// Appends the tag over buf[0, body_size) at buf[body_size]. Returns body_size + 8, or
/// buffer_too_small. O(body_size).
[[nodiscard]] inline encode_result seal(const siphash_key& key, std::span<std::byte> buf, std::size_t body_size) noexcept {
    if (body_size > buf.size() || buf.size() - body_size < tag_size) return {0, error::buffer_too_small};
    const auto tag = siphash24_bytes(key, buf.first(body_size));
    std::memcpy(buf.data() + body_size, tag.data(), tag_size);
    return {body_size + tag_size, error::none};
}

/// encode_body() then seal(): the complete message as it goes on the wire.
[[nodiscard]] inline encode_result encode(const message& m, const siphash_key& key, std::span<std::byte> out) noexcept {
    const encode_result body = encode_body(m, out);
    if (!body) return body;
    return seal(key, out, body.size);
}

/// Checks the size and the tag of a datagram in constant time (for a given size); returns the
/// body (datagram without the tag) in `body`. Errors: truncated, too_large, bad_tag.
[[nodiscard]] inline error open(const siphash_key& key, std::span<const std::byte> datagram,
                                std::span<const std::byte>& body) noexcept {
    if (datagram.size() < min_message_size) return error::truncated;
    if (datagram.size() > max_message_size) return error::too_large;
    const std::size_t n = datagram.size() - tag_size;
    const auto want = siphash24_bytes(key, datagram.first(n));
    if (!constant_time_equal(want, datagram.subspan(n))) return error::bad_tag;
    body = datagram.first(n);
    return error::none;
}

/// open() then decode_body(): a datagram's payload from the wire to a validated message.
[[nodiscard]] inline decode_result decode(std::span<const std::byte> datagram, const siphash_key& key) noexcept {
    std::span<const std::byte> body;
    if (const error e = open(key, datagram, body); e != error::none) {
        decode_result r;
        r.err = e;
        return r;
    }
    return decode_body(body);
}

// ---------------------------------------------------------------------------------------------
// Helpers for the structured 90-byte fields.

/// Fills a dispatch_request's content key: the 90-byte field and, for a key longer than 88
/// bytes, `m.payload` viewing the rest of `key` (which must outlive the message). Returns
/// bad_handoff_info for an empty key or one longer than max_content_key.
[[nodiscard]] inline error set_content_key(message& m, std::span<const std::byte> key) noexcept {
    if (key.empty() || key.size() > max_content_key) return error::bad_handoff_info;
    m.handoff_info.fill(std::byte{0});
    store_be16(m.handoff_info.data(), static_cast<std::uint16_t>(key.size()));
    const std::size_t inline_len = std::min(key.size(), content_key_inline);
    std::memcpy(m.handoff_info.data() + 2, key.data(), inline_len);
    m.payload = key.subspan(inline_len);
    return error::none;
}

/// The content key of a validated dispatch_request, in two pieces (90-byte field, payload).
struct content_key_view {
    std::span<const std::byte> head;
    std::span<const std::byte> tail;
    [[nodiscard]] std::size_t size() const noexcept { return head.size() + tail.size(); }
};
[[nodiscard]] inline content_key_view content_key(const message& m) noexcept {
    const std::size_t len = load_be16(m.handoff_info.data());
    return {std::span<const std::byte>(m.handoff_info).subspan(2, std::min(len, content_key_inline)), m.payload};
}

/// A load report's numbers (the first 12 bytes of the 90-byte field).
struct load_info {
    std::uint32_t active_connections = 0;
    std::uint32_t load_milli = 0;  ///< load average (or utilisation) in thousandths
    std::uint32_t weight = 0;      ///< the node's capacity weight
};
inline void set_load(message& m, const load_info& l) noexcept {
    m.handoff_info.fill(std::byte{0});
    store_be32(m.handoff_info.data() + 0, l.active_connections);
    store_be32(m.handoff_info.data() + 4, l.load_milli);
    store_be32(m.handoff_info.data() + 8, l.weight);
}
[[nodiscard]] inline load_info get_load(const message& m) noexcept {
    return {load_be32(m.handoff_info.data()), load_be32(m.handoff_info.data() + 4),
            load_be32(m.handoff_info.data() + 8)};
}

/// Data of handoff_request / handoff_data / handoff_reply / handoff_commit: a 16-bit handoff id in the high half,
/// and the chunk count, chunk index or status in the low half.
[[nodiscard]] constexpr std::uint32_t handoff_data_field(std::uint16_t id, std::uint16_t low) noexcept {
    return (std::uint32_t{id} << 16) | low;
}
[[nodiscard]] constexpr std::uint16_t handoff_id_of(std::uint32_t data) noexcept {
    return static_cast<std::uint16_t>(data >> 16);
}
[[nodiscard]] constexpr std::uint16_t handoff_low_of(std::uint32_t data) noexcept {
    return static_cast<std::uint16_t>(data & 0xFFFF);
}

// ---------------------------------------------------------------------------------------------
// Membership and the inbound path.

/// An allow-list of cluster members' IPv4 addresses, of fixed capacity (no allocation). Lookup is
/// a binary search over a sorted array: O(log Capacity). Not thread-safe for writers; readers of
/// an unchanging filter may share it.
template <std::size_t Capacity = 64>
class member_filter {
public:
    static_assert(Capacity > 0);

    /// Adds a member. False when the filter is full (an existing member is not added twice and
    /// returns true). O(Capacity).
    bool add(ipv4_address a) noexcept {
        const auto it = std::lower_bound(members_.begin(), members_.begin() + size_, a);
        if (it != members_.begin() + size_ && *it == a) return true;
        if (size_ == Capacity) return false;
        std::copy_backward(it, members_.begin() + size_, members_.begin() + size_ + 1);
        *it = a;
        ++size_;
        return true;
    }
    /// Removes a member; false when it was not one.
    bool remove(ipv4_address a) noexcept {
        const auto it = std::lower_bound(members_.begin(), members_.begin() + size_, a);
        if (it == members_.begin() + size_ || *it != a) return false;
        std::copy(it + 1, members_.begin() + size_, it);
        --size_;
        return true;
    }
    [[nodiscard]] bool contains(ipv4_address a) const noexcept {
        return std::binary_search(members_.begin(), members_.begin() + size_, a);
    }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] static constexpr std::size_t capacity() noexcept { return Capacity; }

private:
    std::array<ipv4_address, Capacity> members_{};
    std::size_t size_ = 0;
};

/// Counters of an inbound checker: accepted messages, and rejections by reason.
struct counters {
    std::uint64_t accepted = 0;
    std::array<std::uint64_t, error_count> rejected{};

    [[nodiscard]] std::uint64_t rejected_for(error e) const noexcept { return rejected[static_cast<std::size_t>(e)]; }
    [[nodiscard]] std::uint64_t rejected_total() const noexcept {
        std::uint64_t t = 0;
        for (auto v : rejected) t += v;
        return t;
    }
};

/// Everything a node does to a datagram before a component sees it, in this order: the sender
/// must be a member (cheapest, and spares the tag computation on strangers), the tag must
/// verify, and the message must decode and validate. Every outcome is counted. Any transport
/// (raw IP, UDP, a test) feeds it the sender's address and the datagram's payload.
template <std::size_t Capacity = 64>
class inbound {
public:
    inbound() = default;
    inbound(const siphash_key& key, const member_filter<Capacity>& members) noexcept : key_(key), members_(members) {}

    void set_key(const siphash_key& k) noexcept { key_ = k; }
    [[nodiscard]] member_filter<Capacity>& members() noexcept { return members_; }
    [[nodiscard]] const member_filter<Capacity>& members() const noexcept { return members_; }

    /// Checks one datagram from `sender`. The message views `datagram`. O(size); noexcept.
    [[nodiscard]] decode_result accept(ipv4_address sender, std::span<const std::byte> datagram) noexcept {
        decode_result r;
        if (!members_.contains(sender)) {
            r.err = error::not_member;
        } else {
            r = decode(datagram, key_);
        }
        if (r.err == error::none) ++counters_.accepted;
        else ++counters_.rejected[static_cast<std::size_t>(r.err)];
        return r;
    }

    [[nodiscard]] const counters& stats() const noexcept { return counters_; }

private:
    siphash_key key_{};
    member_filter<Capacity> members_{};
    counters counters_{};
};

}  // namespace clusternet::lccp
