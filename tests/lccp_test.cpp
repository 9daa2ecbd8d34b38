// Tests of clusternet/siphash.hpp and clusternet/lccp.hpp: SipHash-2-4 against the published
// vectors, the LCCP codec (layout, round trips of every command, every rejection), the tag, the
// member filter and the inbound checker's counters.
#include <doctest/doctest.h>

#include <clusternet/lccp.hpp>
#include <clusternet/siphash.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace cn = clusternet;
namespace lccp = clusternet::lccp;

namespace {

using bytes = std::vector<std::byte>;

// The reference implementation's vectors_sip64 (github.com/veorq/SipHash, vectors.h): key
// 00 01 .. 0f, message i = 00 01 .. (i-1), output bytes little-endian.
constexpr std::uint8_t sip64_vectors[64][8] = {
    {0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72}, {0xfd, 0x67, 0xdc, 0x93, 0xc5, 0x39, 0xf8, 0x74},
    {0x5a, 0x4f, 0xa9, 0xd9, 0x09, 0x80, 0x6c, 0x0d}, {0x2d, 0x7e, 0xfb, 0xd7, 0x96, 0x66, 0x67, 0x85},
    {0xb7, 0x87, 0x71, 0x27, 0xe0, 0x94, 0x27, 0xcf}, {0x8d, 0xa6, 0x99, 0xcd, 0x64, 0x55, 0x76, 0x18},
    {0xce, 0xe3, 0xfe, 0x58, 0x6e, 0x46, 0xc9, 0xcb}, {0x37, 0xd1, 0x01, 0x8b, 0xf5, 0x00, 0x02, 0xab},
    {0x62, 0x24, 0x93, 0x9a, 0x79, 0xf5, 0xf5, 0x93}, {0xb0, 0xe4, 0xa9, 0x0b, 0xdf, 0x82, 0x00, 0x9e},
    {0xf3, 0xb9, 0xdd, 0x94, 0xc5, 0xbb, 0x5d, 0x7a}, {0xa7, 0xad, 0x6b, 0x22, 0x46, 0x2f, 0xb3, 0xf4},
    {0xfb, 0xe5, 0x0e, 0x86, 0xbc, 0x8f, 0x1e, 0x75}, {0x90, 0x3d, 0x84, 0xc0, 0x27, 0x56, 0xea, 0x14},
    {0xee, 0xf2, 0x7a, 0x8e, 0x90, 0xca, 0x23, 0xf7}, {0xe5, 0x45, 0xbe, 0x49, 0x61, 0xca, 0x29, 0xa1},
    {0xdb, 0x9b, 0xc2, 0x57, 0x7f, 0xcc, 0x2a, 0x3f}, {0x94, 0x47, 0xbe, 0x2c, 0xf5, 0xe9, 0x9a, 0x69},
    {0x9c, 0xd3, 0x8d, 0x96, 0xf0, 0xb3, 0xc1, 0x4b}, {0xbd, 0x61, 0x79, 0xa7, 0x1d, 0xc9, 0x6d, 0xbb},
    {0x98, 0xee, 0xa2, 0x1a, 0xf2, 0x5c, 0xd6, 0xbe}, {0xc7, 0x67, 0x3b, 0x2e, 0xb0, 0xcb, 0xf2, 0xd0},
    {0x88, 0x3e, 0xa3, 0xe3, 0x95, 0x67, 0x53, 0x93}, {0xc8, 0xce, 0x5c, 0xcd, 0x8c, 0x03, 0x0c, 0xa8},
    {0x94, 0xaf, 0x49, 0xf6, 0xc6, 0x50, 0xad, 0xb8}, {0xea, 0xb8, 0x85, 0x8a, 0xde, 0x92, 0xe1, 0xbc},
    {0xf3, 0x15, 0xbb, 0x5b, 0xb8, 0x35, 0xd8, 0x17}, {0xad, 0xcf, 0x6b, 0x07, 0x63, 0x61, 0x2e, 0x2f},
    {0xa5, 0xc9, 0x1d, 0xa7, 0xac, 0xaa, 0x4d, 0xde}, {0x71, 0x65, 0x95, 0x87, 0x66, 0x50, 0xa2, 0xa6},
    {0x28, 0xef, 0x49, 0x5c, 0x53, 0xa3, 0x87, 0xad}, {0x42, 0xc3, 0x41, 0xd8, 0xfa, 0x92, 0xd8, 0x32},
    {0xce, 0x7c, 0xf2, 0x72, 0x2f, 0x51, 0x27, 0x71}, {0xe3, 0x78, 0x59, 0xf9, 0x46, 0x23, 0xf3, 0xa7},
    {0x38, 0x12, 0x05, 0xbb, 0x1a, 0xb0, 0xe0, 0x12}, {0xae, 0x97, 0xa1, 0x0f, 0xd4, 0x34, 0xe0, 0x15},
    {0xb4, 0xa3, 0x15, 0x08, 0xbe, 0xff, 0x4d, 0x31}, {0x81, 0x39, 0x62, 0x29, 0xf0, 0x90, 0x79, 0x02},
    {0x4d, 0x0c, 0xf4, 0x9e, 0xe5, 0xd4, 0xdc, 0xca}, {0x5c, 0x73, 0x33, 0x6a, 0x76, 0xd8, 0xbf, 0x9a},
    {0xd0, 0xa7, 0x04, 0x53, 0x6b, 0xa9, 0x3e, 0x0e}, {0x92, 0x59, 0x58, 0xfc, 0xd6, 0x42, 0x0c, 0xad},
    {0xa9, 0x15, 0xc2, 0x9b, 0xc8, 0x06, 0x73, 0x18}, {0x95, 0x2b, 0x79, 0xf3, 0xbc, 0x0a, 0xa6, 0xd4},
    {0xf2, 0x1d, 0xf2, 0xe4, 0x1d, 0x45, 0x35, 0xf9}, {0x87, 0x57, 0x75, 0x19, 0x04, 0x8f, 0x53, 0xa9},
    {0x10, 0xa5, 0x6c, 0xf5, 0xdf, 0xcd, 0x9a, 0xdb}, {0xeb, 0x75, 0x09, 0x5c, 0xcd, 0x98, 0x6c, 0xd0},
    {0x51, 0xa9, 0xcb, 0x9e, 0xcb, 0xa3, 0x12, 0xe6}, {0x96, 0xaf, 0xad, 0xfc, 0x2c, 0xe6, 0x66, 0xc7},
    {0x72, 0xfe, 0x52, 0x97, 0x5a, 0x43, 0x64, 0xee}, {0x5a, 0x16, 0x45, 0xb2, 0x76, 0xd5, 0x92, 0xa1},
    {0xb2, 0x74, 0xcb, 0x8e, 0xbf, 0x87, 0x87, 0x0a}, {0x6f, 0x9b, 0xb4, 0x20, 0x3d, 0xe7, 0xb3, 0x81},
    {0xea, 0xec, 0xb2, 0xa3, 0x0b, 0x22, 0xa8, 0x7f}, {0x99, 0x24, 0xa4, 0x3c, 0xc1, 0x31, 0x57, 0x24},
    {0xbd, 0x83, 0x8d, 0x3a, 0xaf, 0xbf, 0x8d, 0xb7}, {0x0b, 0x1a, 0x2a, 0x32, 0x65, 0xd5, 0x1a, 0xea},
    {0x13, 0x50, 0x79, 0xa3, 0x23, 0x1c, 0xe6, 0x60}, {0x93, 0x2b, 0x28, 0x46, 0xe4, 0xd7, 0x06, 0x66},
    {0xe1, 0x91, 0x5f, 0x5c, 0xb1, 0xec, 0xa4, 0x6c}, {0xf3, 0x25, 0x96, 0x5c, 0xa1, 0x6d, 0x62, 0x9f},
    {0x57, 0x5f, 0xf2, 0x8e, 0x60, 0x38, 0x1b, 0xe5}, {0x72, 0x45, 0x06, 0xeb, 0x4c, 0x32, 0x8a, 0x95},
};

cn::siphash_key reference_key() {
    std::array<std::byte, 16> k{};
    for (std::size_t i = 0; i < 16; ++i) k[i] = std::byte(static_cast<unsigned char>(i));
    return cn::siphash_key::from_bytes(k);
}

const cn::siphash_key cluster_key{0x0123456789abcdefULL, 0xfedcba9876543210ULL};

lccp::socket_id a_socket() {
    return {cn::ipv4_address(192, 0, 2, 7), 40000, cn::ipv4_address(10, 0, 0, 100), 80};
}

// A valid message of each command.
lccp::message sample(lccp::command c) {
    lccp::message m;
    m.cmd = c;
    switch (c) {
        case lccp::command::init:
            m.receptor = lccp::component::dispatcher;
            m.data = std::uint32_t{3} << 24 | 1;
            break;
        case lccp::command::init_ack:
            m.receptor = lccp::component::distributor;
            m.data = static_cast<std::uint32_t>(lccp::status::ok);
            break;
        case lccp::command::dispatch_request: {
            static const std::array<std::byte, 5> url{std::byte{'/'}, std::byte{'a'}, std::byte{'.'}, std::byte{'h'},
                                                      std::byte{'t'}};
            m.receptor = lccp::component::dispatcher;
            m.socket = a_socket();
            m.data = 77;
            REQUIRE(lccp::set_content_key(m, url) == lccp::error::none);
            break;
        }
        case lccp::command::dispatch_reply:
            m.receptor = lccp::component::distributor;
            m.socket = a_socket();
            m.data = cn::ipv4_address(10, 0, 0, 12).value;
            break;
        case lccp::command::handoff_request:
            m.receptor = lccp::component::distributor;
            m.socket = a_socket();
            m.data = lccp::handoff_data_field(9, 0);
            m.handoff_info[0] = std::byte{1};
            break;
        case lccp::command::handoff_data: {
            static const std::array<std::byte, 3> tail{std::byte{1}, std::byte{2}, std::byte{3}};
            m.receptor = lccp::component::distributor;
            m.socket = a_socket();
            m.data = lccp::handoff_data_field(9, 2);
            m.handoff_info.fill(std::byte{0x5A});
            m.payload = tail;
            break;
        }
        case lccp::command::handoff_reply:
            m.receptor = lccp::component::distributor;
            m.socket = a_socket();
            m.data = lccp::handoff_data_field(9, static_cast<std::uint16_t>(lccp::status::restore_failed));
            break;
        case lccp::command::handoff_commit:
            m.receptor = lccp::component::distributor;
            m.socket = a_socket();
            m.data = lccp::handoff_data_field(9, static_cast<std::uint16_t>(lccp::status::ok));
            break;
        case lccp::command::forward_install:
            m.receptor = lccp::component::forwarder;
            m.socket = a_socket();
            m.data = cn::ipv4_address(10, 0, 0, 13).value;
            break;
        case lccp::command::forward_remove:
            m.receptor = lccp::component::l4_switch;
            m.socket = a_socket();
            break;
        case lccp::command::load_report:
            m.receptor = lccp::component::dispatcher;
            m.data = 5;
            lccp::set_load(m, {.active_connections = 120, .load_milli = 1500, .weight = 2});
            break;
    }
    return m;
}

constexpr lccp::command all_commands[] = {
    lccp::command::init,          lccp::command::init_ack,        lccp::command::dispatch_request,
    lccp::command::dispatch_reply, lccp::command::handoff_request, lccp::command::handoff_data,
    lccp::command::handoff_reply, lccp::command::forward_install,  lccp::command::forward_remove,
    lccp::command::load_report,   lccp::command::handoff_commit};

bytes sealed(const lccp::message& m, const cn::siphash_key& k = cluster_key) {
    bytes out(lccp::max_message_size);
    const auto r = lccp::encode(m, k, out);
    REQUIRE(r);
    out.resize(r.size);
    return out;
}

// Re-tags a hand-made body so that decode reaches the field checks.
bytes retag(bytes body) {
    body.resize(body.size() + lccp::tag_size);
    REQUIRE(lccp::seal(cluster_key, body, body.size() - lccp::tag_size));
    return body;
}

lccp::error decode_error(const bytes& wire) { return lccp::decode(wire, cluster_key).err; }

}  // namespace

TEST_SUITE("siphash") {
    TEST_CASE("the 64 reference vectors (key 00..0f, message 00..len-1)") {
        const auto key = reference_key();
        std::array<std::byte, 64> msg{};
        for (std::size_t i = 0; i < 64; ++i) msg[i] = std::byte(static_cast<unsigned char>(i));
        for (std::size_t len = 0; len < 64; ++len) {
            CAPTURE(len);
            const auto tag = cn::siphash24_bytes(key, std::span<const std::byte>(msg).first(len));
            for (std::size_t b = 0; b < 8; ++b) CHECK(std::to_integer<unsigned>(tag[b]) == sip64_vectors[len][b]);
        }
    }
    TEST_CASE("the paper's Appendix A example: 15 bytes 00..0e give a129ca6149be45e5") {
        std::array<std::byte, 15> msg{};
        for (std::size_t i = 0; i < 15; ++i) msg[i] = std::byte(static_cast<unsigned char>(i));
        CHECK(cn::siphash24(reference_key(), msg) == 0xa129ca6149be45e5ULL);
        CHECK(reference_key().k0 == 0x0706050403020100ULL);
        CHECK(reference_key().k1 == 0x0f0e0d0c0b0a0908ULL);
    }
    TEST_CASE("constant_time_equal") {
        const std::array<std::byte, 4> a{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
        auto b = a;
        CHECK(cn::constant_time_equal(a, b));
        b[3] = std::byte{5};
        CHECK_FALSE(cn::constant_time_equal(a, b));
        CHECK_FALSE(cn::constant_time_equal(a, std::span<const std::byte>(b).first(3)));
        CHECK(cn::constant_time_equal({}, {}));
    }
}

TEST_SUITE("lccp") {
    TEST_CASE("sizes") {
        static_assert(lccp::header_size == 24 && lccp::handoff_info_size == 90 && lccp::fixed_size == 114);
        static_assert(lccp::socket_id::wire_size * 8 == 96);
        static_assert(lccp::max_payload == 1358 && lccp::max_content_key == 88 + 1358);
        CHECK(sample(lccp::command::init).wire_size() == 122);
    }

    TEST_CASE("layout: every field where the paper puts it, big-endian") {
        lccp::message m = sample(lccp::command::forward_install);
        m.instance = 0x0A0B0C;
        m.handoff_info.fill(std::byte{0});
        const bytes w = sealed(m);
        REQUIRE(w.size() == 122);
        const bytes want_head = {
            std::byte{4},    std::byte{0x0A}, std::byte{0x0B}, std::byte{0x0C},  // Receptor: forwarder, instance
            std::byte{1},    std::byte{0},    std::byte{0},    std::byte{8},     // Command: v1, forward_install
            std::byte{10},   std::byte{0},    std::byte{0},    std::byte{13},    // Data: 10.0.0.13
            std::byte{192},  std::byte{0},    std::byte{2},    std::byte{7},     // client IP
            std::byte{0x9C}, std::byte{0x40},                                    // client port 40000
            std::byte{10},   std::byte{0},    std::byte{0},    std::byte{100},   // server IP
            std::byte{0},    std::byte{80}};                                     // server port
        CHECK(bytes(w.begin(), w.begin() + 24) == want_head);
        const auto tag = cn::siphash24_bytes(cluster_key, std::span<const std::byte>(w).first(114));
        CHECK(bytes(w.begin() + 114, w.end()) == bytes(tag.begin(), tag.end()));
    }

    TEST_CASE("every command round-trips through encode and decode") {
        for (const auto c : all_commands) {
            CAPTURE(lccp::to_string(c));
            const lccp::message m = sample(c);
            const bytes w = sealed(m);
            CHECK(w.size() == m.wire_size());
            const auto r = lccp::decode(w, cluster_key);
            REQUIRE(r);
            CHECK(r.msg.receptor == m.receptor);
            CHECK(r.msg.instance == m.instance);
            CHECK(r.msg.cmd == m.cmd);
            CHECK(r.msg.data == m.data);
            CHECK(r.msg.socket == m.socket);
            CHECK(r.msg.handoff_info == m.handoff_info);
            CHECK(bytes(r.msg.payload.begin(), r.msg.payload.end()) == bytes(m.payload.begin(), m.payload.end()));
            // The payload views the input.
            if (!r.msg.payload.empty()) CHECK(r.msg.payload.data() == w.data() + lccp::fixed_size);
        }
    }

    TEST_CASE("content keys: inline, spilling into the payload, the longest, too long") {
        bytes key(lccp::max_content_key + 1);
        for (std::size_t i = 0; i < key.size(); ++i) key[i] = std::byte(static_cast<unsigned char>('a' + i % 26));
        for (const std::size_t len : {std::size_t{1}, std::size_t{88}, std::size_t{89}, std::size_t{500}, lccp::max_content_key}) {
            CAPTURE(len);
            lccp::message m = sample(lccp::command::dispatch_request);
            REQUIRE(lccp::set_content_key(m, std::span<const std::byte>(key).first(len)) == lccp::error::none);
            const bytes w = sealed(m);
            const auto r = lccp::decode(w, cluster_key);
            REQUIRE(r);
            const auto k = lccp::content_key(r.msg);
            REQUIRE(k.size() == len);
            bytes joined(k.head.begin(), k.head.end());
            joined.insert(joined.end(), k.tail.begin(), k.tail.end());
            CHECK(joined == bytes(key.begin(), key.begin() + static_cast<std::ptrdiff_t>(len)));
        }
        lccp::message m = sample(lccp::command::dispatch_request);
        CHECK(lccp::set_content_key(m, key) == lccp::error::bad_handoff_info);
        CHECK(lccp::set_content_key(m, {}) == lccp::error::bad_handoff_info);
    }

    TEST_CASE("load report numbers") {
        const auto m = sample(lccp::command::load_report);
        const auto r = lccp::decode(sealed(m), cluster_key);
        REQUIRE(r);
        const auto l = lccp::get_load(r.msg);
        CHECK(l.active_connections == 120);
        CHECK(l.load_milli == 1500);
        CHECK(l.weight == 2);
    }

    TEST_CASE("parse_key") {
        const auto k = lccp::parse_key("000102030405060708090a0b0c0d0e0F");
        REQUIRE(k);
        CHECK(*k == reference_key());
        CHECK_FALSE(lccp::parse_key("000102030405060708090a0b0c0d0e"));
        CHECK_FALSE(lccp::parse_key("000102030405060708090a0b0c0d0e0g"));
    }

    TEST_CASE("sizes refused: truncated, too large, short output buffer") {
        const bytes w = sealed(sample(lccp::command::init));
        CHECK(lccp::decode(std::span<const std::byte>(w).first(121), cluster_key).err == lccp::error::truncated);
        CHECK(lccp::decode(std::span<const std::byte>(), cluster_key).err == lccp::error::truncated);
        const bytes huge(lccp::max_message_size + 1);
        CHECK(lccp::decode(huge, cluster_key).err == lccp::error::too_large);
        CHECK(lccp::decode_body(std::span<const std::byte>(w).first(113)).err == lccp::error::truncated);
        bytes small(121);
        CHECK(lccp::encode(sample(lccp::command::init), cluster_key, small).err == lccp::error::buffer_too_small);
        bytes tiny(100);
        CHECK(lccp::encode_body(sample(lccp::command::init), tiny).err == lccp::error::buffer_too_small);
        CHECK(lccp::seal(cluster_key, small, 114).err == lccp::error::buffer_too_small);
        CHECK(lccp::seal(cluster_key, small, 200).err == lccp::error::buffer_too_small);
        lccp::message big = sample(lccp::command::handoff_data);
        const bytes payload(lccp::max_payload + 1);
        big.payload = payload;
        bytes out(2000);
        CHECK(lccp::encode(big, cluster_key, out).err == lccp::error::too_large);
    }

    TEST_CASE("the tag: a wrong key, any altered byte, a cut tag") {
        const bytes w = sealed(sample(lccp::command::handoff_data));
        const cn::siphash_key other{cluster_key.k0, cluster_key.k1 ^ 0x8000000000000000ULL};
        CHECK(lccp::decode(w, other).err == lccp::error::bad_tag);
        for (std::size_t i = 0; i < w.size(); ++i) {
            bytes bad = w;
            bad[i] ^= std::byte{0x04};
            CAPTURE(i);
            CHECK(decode_error(bad) == lccp::error::bad_tag);
        }
        bytes cut(w.begin(), w.end() - 1);
        CHECK(decode_error(cut) == lccp::error::bad_tag);
    }

    TEST_CASE("every field rejection, with a valid tag") {
        const bytes good = sealed(sample(lccp::command::dispatch_reply));
        bytes body(good.begin(), good.end() - lccp::tag_size);
        auto with = [&](auto edit) {
            bytes b = body;
            edit(b);
            return decode_error(retag(b));
        };
        CHECK(with([](bytes&) {}) == lccp::error::none);
        CHECK(with([](bytes& b) { b[4] = std::byte{2}; }) == lccp::error::bad_version);
        CHECK(with([](bytes& b) { b[4] = std::byte{0}; }) == lccp::error::bad_version);
        CHECK(with([](bytes& b) { b[5] = std::byte{1}; }) == lccp::error::reserved_nonzero);
        CHECK(with([](bytes& b) { b[6] = std::byte{0}; b[7] = std::byte{0}; }) == lccp::error::unknown_command);
        CHECK(with([](bytes& b) { b[7] = std::byte{12}; }) == lccp::error::unknown_command);
        CHECK(with([](bytes& b) { b[6] = std::byte{1}; }) == lccp::error::unknown_command);
        CHECK(with([](bytes& b) { b[0] = std::byte{0}; }) == lccp::error::bad_receptor);
        CHECK(with([](bytes& b) { b[0] = std::byte{6}; }) == lccp::error::bad_receptor);
        CHECK(with([](bytes& b) { b[0] = std::byte{2}; }) == lccp::error::bad_receptor);  // a reply to the dispatcher
        CHECK(with([](bytes& b) { b[16] = std::byte{0}; b[17] = std::byte{0}; }) == lccp::error::bad_socket_id);
        CHECK(with([](bytes& b) { cn::store_be32(b.data() + 12, 0); }) == lccp::error::bad_socket_id);
        CHECK(with([](bytes& b) { cn::store_be32(b.data() + 8, 0); }) == lccp::error::bad_data);
        CHECK(with([](bytes& b) { b[24 + 89] = std::byte{1}; }) == lccp::error::bad_handoff_info);
        CHECK(with([](bytes& b) { b.push_back(std::byte{0}); }) == lccp::error::unexpected_payload);
    }

    TEST_CASE("per-command rules") {
        auto check_err = [](lccp::message m, lccp::error want) {
            bytes out(lccp::max_message_size);
            CHECK(lccp::encode(m, cluster_key, out).err == want);  // encode refuses what decode would
            CHECK(lccp::validate(m) == want);
        };
        lccp::message m = sample(lccp::command::init);
        m.socket = a_socket();
        check_err(m, lccp::error::bad_socket_id);
        m = sample(lccp::command::init);
        m.data = 9u << 24;
        check_err(m, lccp::error::bad_data);
        m = sample(lccp::command::init_ack);
        m.data = lccp::max_status + 1;
        check_err(m, lccp::error::bad_data);
        m = sample(lccp::command::handoff_reply);
        m.data = lccp::handoff_data_field(1, lccp::max_status + 1);
        check_err(m, lccp::error::bad_data);
        m = sample(lccp::command::forward_remove);
        m.data = 1;
        check_err(m, lccp::error::bad_data);
        m = sample(lccp::command::forward_install);
        m.receptor = lccp::component::dispatcher;
        check_err(m, lccp::error::bad_receptor);
        m = sample(lccp::command::forward_install);
        m.instance = 0x1000000;
        check_err(m, lccp::error::bad_receptor);
        m = sample(lccp::command::load_report);
        m.handoff_info[12] = std::byte{1};
        check_err(m, lccp::error::bad_handoff_info);
        m = sample(lccp::command::handoff_request);
        const std::array<std::byte, 1> one{};
        m.payload = one;
        check_err(m, lccp::error::unexpected_payload);
        m = sample(lccp::command::dispatch_request);
        m.payload = one;  // a 5-byte key announces no payload
        check_err(m, lccp::error::bad_payload);
        m = sample(lccp::command::dispatch_request);
        m.handoff_info[0] = std::byte{0};
        m.handoff_info[1] = std::byte{0};
        check_err(m, lccp::error::bad_handoff_info);
        m = sample(lccp::command::dispatch_request);
        m.handoff_info[89] = std::byte{1};  // after the key
        check_err(m, lccp::error::bad_handoff_info);
        m = sample(lccp::command::dispatch_request);
        m.version = 2;
        check_err(m, lccp::error::bad_version);
        m = sample(lccp::command::dispatch_request);
        m.cmd = static_cast<lccp::command>(0);
        check_err(m, lccp::error::unknown_command);
    }

    TEST_CASE("every error has a distinct name") {
        for (std::size_t i = 0; i < lccp::error_count; ++i)
            for (std::size_t j = i + 1; j < lccp::error_count; ++j)
                CHECK(lccp::to_string(static_cast<lccp::error>(i)) != lccp::to_string(static_cast<lccp::error>(j)));
        CHECK(lccp::to_string(static_cast<lccp::error>(lccp::error_count)) == "unknown");
    }

    TEST_CASE("member_filter") {
        lccp::member_filter<3> f;
        CHECK(f.add(cn::ipv4_address(10, 0, 0, 3)));
        CHECK(f.add(cn::ipv4_address(10, 0, 0, 1)));
        CHECK(f.add(cn::ipv4_address(10, 0, 0, 1)));  // already there
        CHECK(f.add(cn::ipv4_address(10, 0, 0, 2)));
        CHECK(f.size() == 3);
        CHECK_FALSE(f.add(cn::ipv4_address(10, 0, 0, 4)));  // full
        for (int i = 1; i <= 3; ++i) CHECK(f.contains(cn::ipv4_address(10, 0, 0, static_cast<std::uint8_t>(i))));
        CHECK_FALSE(f.contains(cn::ipv4_address(10, 0, 0, 4)));
        CHECK(f.remove(cn::ipv4_address(10, 0, 0, 2)));
        CHECK_FALSE(f.remove(cn::ipv4_address(10, 0, 0, 2)));
        CHECK_FALSE(f.contains(cn::ipv4_address(10, 0, 0, 2)));
        CHECK(f.contains(cn::ipv4_address(10, 0, 0, 3)));
        CHECK(f.size() == 2);
    }

    TEST_CASE("inbound: members, tags and fields, each rejection counted") {
        lccp::member_filter<> members;
        const cn::ipv4_address peer(10, 0, 0, 2), stranger(10, 0, 0, 99);
        members.add(peer);
        lccp::inbound<> in(cluster_key, members);
        const bytes good = sealed(sample(lccp::command::handoff_reply));
        CHECK(in.accept(peer, good));
        CHECK(in.accept(stranger, good).err == lccp::error::not_member);
        CHECK(in.accept(peer, sealed(sample(lccp::command::init), {1, 2})).err == lccp::error::bad_tag);
        bytes body(good.begin(), good.end() - lccp::tag_size);
        body[4] = std::byte{7};
        CHECK(in.accept(peer, retag(body)).err == lccp::error::bad_version);
        CHECK(in.accept(peer, std::span<const std::byte>(good).first(50)).err == lccp::error::truncated);
        const auto& c = in.stats();
        CHECK(c.accepted == 1);
        CHECK(c.rejected_for(lccp::error::not_member) == 1);
        CHECK(c.rejected_for(lccp::error::bad_tag) == 1);
        CHECK(c.rejected_for(lccp::error::bad_version) == 1);
        CHECK(c.rejected_for(lccp::error::truncated) == 1);
        CHECK(c.rejected_total() == 4);
        in.set_key({1, 2});
        CHECK(in.accept(peer, good).err == lccp::error::bad_tag);
        CHECK(in.stats().rejected_for(lccp::error::bad_tag) == 2);
    }
}
