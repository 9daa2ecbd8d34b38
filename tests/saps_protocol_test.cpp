// Tests of the SAPS forwarding-protocol frames: the exact bytes of a frame, round trips of every
// type, refusals of each kind of malformed frame, and the incremental decoder fed in pieces.
#include <clusternet/saps_protocol.hpp>

#include <doctest/doctest.h>

#include <array>
#include <random>
#include <vector>

using namespace clusternet;
using namespace clusternet::saps;

namespace {

std::vector<std::byte> bytes_of(const frame& f) {
    std::vector<std::byte> out(encoded_size(f));
    REQUIRE(encode(f, out) == out.size());
    return out;
}

std::vector<frame> sample_frames(std::span<const std::byte> payload) {
    static constexpr std::array<std::byte, 4> opt{std::byte{0}, std::byte{0}, std::byte{0}, std::byte{1}};
    const endpoint peer = endpoint::v4(ipv4_address(0xC0000201), 40000);
    const endpoint local = endpoint::v4(ipv4_address(0xCB007101), 80);
    std::vector<frame> v{
        frame::make_hello(default_max_frame, 4096),
        frame::make_open(0x00010002, 262144, 80, peer, local),
        frame::make_accept(0x00010002, 0x00030004, 131072),
        frame::make_refuse(0x00010002, 111),
        frame::make_close(0x00010002),
        frame::make_close(0x00010002, 104),
        frame::make_data(0x00010002, payload),
        frame::make_grant(0x00010002, 0xFFFFFFFFFFFF0000ULL),
        frame::make_event(0x00010002, 104),
        frame::make_eof(0x00010002),
        frame::make_reply(0x00010002, socket_call::getsockopt, 9, 0, opt),
        frame::make_reply(0x00010002, socket_call::connect, 10, 111),
    };
    frame r = frame::make_request(0x00010002, socket_call::bind, 1); r.local = local; v.push_back(r);
    r = frame::make_request(0x00010002, socket_call::connect, 2); r.peer = peer; v.push_back(r);
    r = frame::make_request(0x00010002, socket_call::listen, 3); r.arg0 = 128; v.push_back(r);
    r = frame::make_request(0x00010002, socket_call::shutdown, 4); r.arg0 = 1; v.push_back(r);
    r = frame::make_request(0x00010002, socket_call::close, 5); v.push_back(r);
    r = frame::make_request(0x00010002, socket_call::setsockopt, 6); r.arg0 = 6; r.arg1 = 1; r.payload = opt; v.push_back(r);
    r = frame::make_request(0x00010002, socket_call::getsockopt, 7); r.arg0 = 1; r.arg1 = 7; r.arg2 = 4; v.push_back(r);
    return v;
}

bool same(const frame& a, const frame& b) {
    return a.type == b.type && a.stream == b.stream && a.id == b.id && a.limit == b.limit && a.tag == b.tag &&
           a.error == b.error && a.call == b.call && a.request_id == b.request_id && a.arg0 == b.arg0 &&
           a.arg1 == b.arg1 && a.arg2 == b.arg2 && a.peer == b.peer && a.local == b.local &&
           std::equal(a.payload.begin(), a.payload.end(), b.payload.begin(), b.payload.end());
}

}  // namespace

TEST_SUITE("saps_protocol") {

TEST_CASE("a grant frame, byte by byte") {
    const auto b = bytes_of(frame::make_grant(0x00020003, 0x0102030405060708ULL));
    const std::array<unsigned, 20> expect{0, 0, 0, 20, 2, 7, 0, 0, 0, 2, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8};
    REQUIRE(b.size() == expect.size());
    for (std::size_t i = 0; i < b.size(); ++i) CHECK(static_cast<unsigned>(b[i]) == expect[i]);
}

TEST_CASE("every frame type round-trips, and re-encodes to the same bytes") {
    const std::vector<std::byte> payload(1000, std::byte{0x5A});
    for (const frame& f : sample_frames(payload)) {
        CAPTURE(to_string(f.type));
        const auto b = bytes_of(f);
        const auto d = decode_frame(b);
        REQUIRE(d.has_value());
        CHECK(same(*d, f));
        CHECK(bytes_of(*d) == b);
    }
}

TEST_CASE("malformed frames are refused with the reason") {
    auto grant = bytes_of(frame::make_grant(5, 100));
    CHECK(decode_frame(std::span(grant).first(11)).error() == parse_error::truncated);
    auto g = grant; g[4] = std::byte{1};  // version 1 (no eof frame): refused, so mixed peers fail at the hello
    CHECK(decode_frame(g).error() == parse_error::bad_version);
    g[4] = std::byte{3};
    CHECK(decode_frame(g).error() == parse_error::bad_version);
    g = grant; g[5] = std::byte{0};
    CHECK(decode_frame(g).error() == parse_error::bad_field);
    g = grant; g[5] = std::byte{12};
    CHECK(decode_frame(g).error() == parse_error::bad_field);
    auto eof = bytes_of(frame::make_eof(5));
    CHECK(eof.size() == header_size);
    auto e = eof; e[11] = std::byte{0};  // an eof names a stream
    CHECK(decode_frame(e).error() == parse_error::bad_field);
    e = eof; e.push_back(std::byte{0}); e[3] = std::byte{13};  // and has no body
    CHECK(decode_frame(e).error() == parse_error::bad_total_length);
    g = grant; g[7] = std::byte{1};  // flags
    CHECK(decode_frame(g).error() == parse_error::bad_field);
    g = grant; g[11] = std::byte{0};  // stream 0 on a stream frame
    CHECK(decode_frame(g).error() == parse_error::bad_field);
    g = grant; g[3] = std::byte{21};
    CHECK(decode_frame(g).error() == parse_error::bad_total_length);
    g = grant; g.push_back(std::byte{0}); g[3] = std::byte{21};  // a grant is 20 bytes
    CHECK(decode_frame(g).error() == parse_error::bad_total_length);
    std::vector<std::byte> big(default_max_frame + 1);
    encode_header(big, frame_type::data, big.size(), 5);
    CHECK(decode_frame(big).error() == parse_error::too_large);
    CHECK(decode_frame(big, hard_max_frame).has_value());

    auto hello = bytes_of(frame::make_hello(4096, 16));
    hello[12] = std::byte{'X'};
    CHECK(decode_frame(hello).error() == parse_error::bad_magic);
    auto open = bytes_of(frame::make_open(0, 100, 1));  // opener id 0
    CHECK(decode_frame(open).error() == parse_error::bad_field);
    open = bytes_of(frame::make_open(3, 0, 1));  // window 0
    CHECK(decode_frame(open).error() == parse_error::bad_field);
    open = bytes_of(frame::make_open(3, 100, 1));
    open[12 + 16 + 19] = std::byte{1};  // endpoint padding
    CHECK(decode_frame(open).error() == parse_error::bad_field);
    auto ev = bytes_of(frame::make_event(3, 0));  // an event without an error
    CHECK(decode_frame(ev).error() == parse_error::bad_field);
    auto rq = bytes_of(frame::make_request(3, socket_call::close, 1));
    rq[12] = std::byte{static_cast<unsigned char>(socket_call::send)};  // send is data, not a request
    CHECK(decode_frame(rq).error() == parse_error::bad_field);
    frame sh = frame::make_request(3, socket_call::shutdown, 1); sh.arg0 = 3;
    CHECK(decode_frame(bytes_of(sh)).error() == parse_error::bad_field);
    const std::vector<std::byte> too_long(max_option_size + 1);
    frame so = frame::make_request(3, socket_call::setsockopt, 1); so.payload = too_long;
    CHECK(encoded_size(so) == 0);
    std::vector<std::byte> small(8);
    CHECK(encode(frame::make_grant(1, 1), small) == 0);
    auto empty = bytes_of(frame::make_close(3));
    empty[5] = std::byte{static_cast<unsigned char>(frame_type::data)};
    empty.resize(12); empty[3] = std::byte{12};
    CHECK(decode_frame(empty).error() == parse_error::bad_total_length);  // empty data
}

TEST_CASE("the incremental decoder takes a stream in pieces of any size") {
    std::vector<std::byte> payload(3000);
    for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = std::byte(static_cast<unsigned char>(i * 7));
    const auto frames = sample_frames(payload);
    std::vector<std::byte> stream;
    for (int rep = 0; rep < 3; ++rep)
        for (const frame& f : frames) { auto b = bytes_of(f); stream.insert(stream.end(), b.begin(), b.end()); }
    std::mt19937 rng(11);
    for (int trial = 0; trial < 200; ++trial) {
        frame_decoder dec;
        std::size_t got = 0, pos = 0;
        while (pos < stream.size()) {
            const std::size_t n = std::min<std::size_t>(stream.size() - pos, trial == 0 ? 1 : 1 + rng() % 5000);
            REQUIRE(dec.feed(std::span(stream).subspan(pos, n), [&](const frame& f) {
                REQUIRE(same(f, frames[got % frames.size()]));
                ++got;
            }) == parse_error::none);
            pos += n;
        }
        CHECK(got == 3 * frames.size());
        CHECK(dec.pending() == 0);
    }
}

TEST_CASE("the decoder refuses a hostile length before buffering, and stays failed") {
    frame_decoder dec(1024);
    std::vector<std::byte> hdr(12);
    encode_header(hdr, frame_type::data, 0x7FFFFFFF, 1);
    int frames = 0;
    CHECK(dec.feed(std::span(hdr).first(5), [&](const frame&) { ++frames; }) == parse_error::none);
    CHECK(dec.feed(std::span(hdr).subspan(5), [&](const frame&) { ++frames; }) == parse_error::too_large);
    const auto ok = bytes_of(frame::make_grant(1, 1));
    CHECK(dec.feed(ok, [&](const frame&) { ++frames; }) == parse_error::too_large);
    CHECK(frames == 0);
    CHECK_THROWS_AS(frame_decoder(12), std::invalid_argument);
    CHECK_THROWS_AS(frame_decoder(hard_max_frame + 1), std::invalid_argument);
}

}  // TEST_SUITE
