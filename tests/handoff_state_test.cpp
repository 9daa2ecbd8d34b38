// Tests of clusternet/handoff_state.hpp: the 90-byte layout, round trips with and without
// continuation, every validation rule, and the reassembler (any order, duplicates, bounds).
#include <doctest/doctest.h>

#include <clusternet/handoff_state.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

namespace cn = clusternet;
namespace lccp = clusternet::lccp;
namespace ho = clusternet::handoff;

namespace {

using bytes = std::vector<std::byte>;

cn::handoff_state sample_state(std::uint32_t recv_len, std::uint32_t send_len, std::uint32_t unsent,
                               std::uint16_t chunk = ho::default_chunk_size) {
    cn::handoff_state s;
    s.socket = {cn::ipv4_address(192, 0, 2, 7), 40000, cn::ipv4_address(10, 0, 0, 100), 80};
    s.snd_seq = 0xFFFFFF00u;  // wraps around 2^32 within the send queue
    s.rcv_seq = 0x12345678u;
    s.window = {.snd_wl1 = 0x12345600u, .snd_wnd = 64000, .max_window = 65535, .rcv_wnd = 131072, .rcv_wup = 0x12345000u};
    s.timestamp = 0xCAFEBABEu;
    s.mss = 1448;
    s.chunk_size = chunk;
    s.snd_wscale = 7;
    s.rcv_wscale = 10;
    s.sack_permitted = true;
    s.timestamps = true;
    s.window_scaling = true;
    s.recv_queue_len = recv_len;
    s.send_queue_len = send_len;
    s.unsent_len = unsent;
    return s;
}

bytes make_stream(std::size_t n) {
    bytes b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = std::byte(static_cast<unsigned char>(i * 7 + i / 251));
    return b;
}

// Encodes the request and all chunks as messages (views into `stream`).
std::vector<lccp::message> messages(const cn::handoff_state& s, const bytes& stream, std::uint16_t id) {
    std::vector<lccp::message> out(1);
    REQUIRE(ho::make_request(s, stream, id, out[0]) == ho::error::none);
    for (std::uint64_t k = 0; k < ho::chunk_count(s); ++k) {
        out.emplace_back();
        REQUIRE(ho::make_chunk(s, stream, id, k, out.back()) == ho::error::none);
    }
    return out;
}

// Through the wire and back: every message sealed, decoded, validated.
lccp::message wire(const lccp::message& m) {
    const cn::siphash_key key{5, 6};
    static std::vector<bytes> keep;  // decoded payloads view these
    keep.emplace_back(lccp::max_message_size);
    const auto e = lccp::encode(m, key, keep.back());
    REQUIRE(e);
    keep.back().resize(e.size);
    const auto d = lccp::decode(keep.back(), key);
    REQUIRE(d);
    return d.msg;
}

ho::error decode_edited(const cn::handoff_state& s, std::size_t offset, std::byte value) {
    const bytes stream = make_stream(s.stream_size());
    lccp::message m;
    REQUIRE(ho::make_request(s, stream, 1, m) == ho::error::none);
    m.handoff_info[offset] = value;
    cn::handoff_state out;
    std::span<const std::byte> inl;
    return ho::decode_info(m.handoff_info, out, inl);
}

}  // namespace

TEST_SUITE("handoff_state") {
    TEST_CASE("layout of the 90-byte field") {
        const auto s = sample_state(3, 2, 1);
        const bytes stream = {std::byte{'G'}, std::byte{'E'}, std::byte{'T'}, std::byte{0xAA}, std::byte{0xBB}};
        std::array<std::byte, 90> f{};
        REQUIRE(ho::encode_info(s, stream, f) == ho::error::none);
        CHECK(f[0] == std::byte{1});     // version
        CHECK(f[1] == std::byte{7});     // SACK | timestamps | window scaling
        CHECK(f[2] == std::byte{0x7A});  // snd_wscale 7, rcv_wscale 10
        CHECK(f[3] == std::byte{1});     // ESTABLISHED
        CHECK(cn::load_be32(f.data() + 4) == cn::ipv4_address(192, 0, 2, 7).value);
        CHECK(cn::load_be16(f.data() + 8) == 40000);
        CHECK(cn::load_be32(f.data() + 10) == cn::ipv4_address(10, 0, 0, 100).value);
        CHECK(cn::load_be16(f.data() + 14) == 80);
        CHECK(cn::load_be32(f.data() + 16) == 0xFFFFFF00u);
        CHECK(cn::load_be32(f.data() + 20) == 0x12345678u);
        CHECK(cn::load_be32(f.data() + 24) == 0x12345600u);
        CHECK(cn::load_be32(f.data() + 28) == 64000);
        CHECK(cn::load_be32(f.data() + 32) == 65535);
        CHECK(cn::load_be32(f.data() + 36) == 131072);
        CHECK(cn::load_be32(f.data() + 40) == 0x12345000u);
        CHECK(cn::load_be32(f.data() + 44) == 0xCAFEBABEu);
        CHECK(cn::load_be16(f.data() + 48) == 1448);
        CHECK(cn::load_be16(f.data() + 50) == ho::default_chunk_size);
        CHECK(cn::load_be32(f.data() + 52) == 3);
        CHECK(cn::load_be32(f.data() + 56) == 2);
        CHECK(cn::load_be32(f.data() + 60) == 1);
        CHECK(bytes(f.begin() + 64, f.begin() + 69) == stream);
        CHECK(std::all_of(f.begin() + 69, f.end(), [](std::byte b) { return b == std::byte{0}; }));
    }

    TEST_CASE("round trips: inline only, exactly inline, one chunk, many, short last chunk, minimal chunks") {
        struct shape {
            std::uint32_t r, s, u;
            std::uint16_t c;
        };
        for (const shape sh : {shape{0, 0, 0, 1448}, shape{14, 0, 0, 1448}, shape{20, 6, 6, 1448},
                               shape{20, 7, 0, 1448}, shape{300, 5000, 1000, 1448}, shape{14, 100000, 60000, 1000},
                               shape{1, 116, 10, 90}, shape{1, 115, 0, 90}, shape{0, 200000, 0, 90},
                               shape{4096, 4096, 4096, static_cast<std::uint16_t>(ho::max_chunk_size)}}) {
            CAPTURE(sh.r);
            CAPTURE(sh.s);
            CAPTURE(sh.c);
            const auto s = sample_state(sh.r, sh.s, sh.u, sh.c);
            const bytes stream = make_stream(s.stream_size());
            auto msgs = messages(s, stream, 0xBEEF);
            CHECK(msgs.size() == 1 + ho::chunk_count(s));
            CHECK(lccp::handoff_low_of(msgs[0].data) == ho::chunk_count(s));
            // Deliver over the wire in a shuffled order, with a duplicate of the last chunk.
            std::vector<lccp::message> got;
            for (const auto& m : msgs) got.push_back(wire(m));
            std::mt19937 rng(sh.s);
            std::shuffle(got.begin() + 1, got.end(), rng);
            if (got.size() > 1) got.push_back(got.back());
            bytes buf(s.stream_size() + 10);
            ho::reassembler ra(buf);
            REQUIRE(ra.start(got[0]) == ho::error::none);
            CHECK(ra.state() == s);
            CHECK(ra.id() == 0xBEEF);
            std::size_t dups = 0;
            for (std::size_t i = 1; i < got.size(); ++i) {
                if (i < msgs.size()) CHECK_FALSE(ra.complete());  // not before the last new chunk
                ho::error why{};
                const auto v = ra.add(got[i], why);
                REQUIRE(v != ho::chunk_verdict::rejected);
                dups += v == ho::chunk_verdict::duplicate;
            }
            CHECK(dups == (got.size() > 1 ? 1u : 0u));
            REQUIRE(ra.complete());
            CHECK(ra.first_missing() == ra.chunks_expected());
            CHECK(bytes(ra.stream().begin(), ra.stream().end()) == stream);
            CHECK(ra.recv_queue().size() == sh.r);
            CHECK(ra.send_queue().size() == sh.s);
        }
    }

    TEST_CASE("capacity of the continuation: the largest stream the format allows") {
        // 65535 chunks of the largest size, plus the inline bytes.
        const std::uint64_t limit = ho::inline_capacity + std::uint64_t{ho::max_chunks} * ho::max_chunk_size;
        CHECK(limit >= ho::max_stream);
        auto s = sample_state(0, static_cast<std::uint32_t>(ho::max_stream), 0);
        CHECK(ho::validate(s) == ho::error::none);
        s.send_queue_len += 1;
        CHECK(ho::validate(s) == ho::error::bad_queue_lengths);
        // With 90-byte chunks the chunk count bounds the stream first.
        s = sample_state(0, static_cast<std::uint32_t>(ho::inline_capacity + 65535 * 90), 0, 90);
        CHECK(ho::validate(s) == ho::error::none);
        s.send_queue_len += 1;
        CHECK(ho::validate(s) == ho::error::bad_queue_lengths);
    }

    TEST_CASE("validation: every rule") {
        const auto good = sample_state(10, 10, 5);
        REQUIRE(ho::validate(good) == ho::error::none);
        auto with = [&](auto edit) {
            auto s = good;
            edit(s);
            return ho::validate(s);
        };
        CHECK(with([](auto& s) { s.tcp_state = 8; }) == ho::error::bad_tcp_state);
        CHECK(with([](auto& s) { s.socket.client_port = 0; }) == ho::error::bad_socket);
        CHECK(with([](auto& s) { s.socket.server_ip = {}; }) == ho::error::bad_socket);
        CHECK(with([](auto& s) { s.snd_wscale = 15; }) == ho::error::bad_window_scale);
        CHECK(with([](auto& s) { s.rcv_wscale = 15; }) == ho::error::bad_window_scale);
        CHECK(with([](auto& s) { s.window_scaling = false; }) == ho::error::bad_window_scale);
        CHECK(with([](auto& s) { s.mss = 87; }) == ho::error::bad_mss);
        CHECK(with([](auto& s) { s.mss = 65496; }) == ho::error::bad_mss);
        CHECK(with([](auto& s) { s.chunk_size = 89; }) == ho::error::bad_chunk_size);
        CHECK(with([](auto& s) { s.chunk_size = static_cast<std::uint16_t>(ho::max_chunk_size + 1); }) == ho::error::bad_chunk_size);
        CHECK(with([](auto& s) { s.unsent_len = 11; }) == ho::error::bad_queue_lengths);
        CHECK(with([](auto& s) { s.window.snd_wnd = s.window.max_window + 1; }) == ho::error::bad_window);
        CHECK(with([](auto& s) { s.window.rcv_wnd = ho::max_scaled_window + 1; }) == ho::error::bad_window);
        CHECK(with([](auto& s) { s.window.rcv_wup = s.rcv_seq + 1; }) == ho::error::bad_window);
        CHECK(with([](auto& s) { s.window.snd_wl1 = s.rcv_seq + s.window.rcv_wnd + 1; }) == ho::error::bad_window);
        // Sequence arithmetic wraps: rcv_wup just "before" rcv_seq across 2^32 is fine.
        CHECK(with([](auto& s) { s.rcv_seq = 5; s.window.rcv_wup = 0xFFFFFFF0u; s.window.snd_wl1 = 0; }) == ho::error::none);
        // Without window scaling the scales must be zero, and then it is valid.
        CHECK(with([](auto& s) { s.window_scaling = false; s.snd_wscale = s.rcv_wscale = 0; }) == ho::error::none);
    }

    TEST_CASE("decode refuses every malformed field") {
        const auto s = sample_state(3, 2, 1);
        CHECK(decode_edited(s, 0, std::byte{1}) == ho::error::none);
        CHECK(decode_edited(s, 0, std::byte{2}) == ho::error::bad_version);
        CHECK(decode_edited(s, 0, std::byte{0}) == ho::error::bad_version);
        CHECK(decode_edited(s, 1, std::byte{0x0F}) == ho::error::bad_flags);
        CHECK(decode_edited(s, 1, std::byte{0x83}) == ho::error::bad_flags);
        CHECK(decode_edited(s, 2, std::byte{0xF0}) == ho::error::bad_window_scale);
        CHECK(decode_edited(s, 3, std::byte{2}) == ho::error::bad_tcp_state);
        CHECK(decode_edited(s, 8, std::byte{0}) == ho::error::none);  // port 40000 -> 64 is still a port
        CHECK(decode_edited(s, 49, std::byte{0}) == ho::error::none);  // 1448 -> 1280
        auto s1280 = s;
        s1280.mss = 1280;  // 0x0500
        CHECK(decode_edited(s1280, 48, std::byte{0}) == ho::error::bad_mss);
        CHECK(decode_edited(s, 50, std::byte{0x10}) == ho::error::bad_chunk_size);  // 0x10A8 = 4264
        CHECK(decode_edited(s, 50, std::byte{0}) == ho::error::none);               // 0x00A8 = 168
        CHECK(decode_edited(s, 60, std::byte{1}) == ho::error::bad_queue_lengths);
        CHECK(decode_edited(s, 52, std::byte{0x10}) == ho::error::bad_queue_lengths);  // R beyond max_stream
        CHECK(decode_edited(s, 69, std::byte{1}) == ho::error::bad_padding);
        CHECK(decode_edited(s, 89, std::byte{1}) == ho::error::bad_padding);
        CHECK(decode_edited(s, 68, std::byte{1}) == ho::error::none);  // inside the stream
    }

    TEST_CASE("decode_request checks the Socket ID and the chunk count") {
        const auto s = sample_state(100, 0, 0);
        const bytes stream = make_stream(100);
        lccp::message m;
        REQUIRE(ho::make_request(s, stream, 3, m) == ho::error::none);
        cn::handoff_state out;
        std::span<const std::byte> inl;
        CHECK(ho::decode_request(m, out, inl) == ho::error::none);
        CHECK(inl.size() == ho::inline_capacity);
        auto bad = m;
        bad.socket.client_port = 1;
        CHECK(ho::decode_request(bad, out, inl) == ho::error::bad_socket);
        bad = m;
        bad.data = lccp::handoff_data_field(3, 2);
        CHECK(ho::decode_request(bad, out, inl) == ho::error::bad_chunk_count);
        bad = m;
        bad.cmd = lccp::command::handoff_data;
        CHECK(ho::decode_request(bad, out, inl) == ho::error::wrong_command);
        bytes wrong(99);
        CHECK(ho::make_request(s, wrong, 3, m) == ho::error::stream_mismatch);
        CHECK(ho::make_chunk(s, wrong, 3, 0, m) == ho::error::stream_mismatch);
        CHECK(ho::make_chunk(s, stream, 3, 1, m) == ho::error::bad_chunk_index);
    }

    TEST_CASE("reassembler rejections") {
        const auto s = sample_state(10, 3000, 100, 1000);  // 3 chunks: 1000, 1000, 984
        const bytes stream = make_stream(s.stream_size());
        auto msgs = messages(s, stream, 7);
        REQUIRE(msgs.size() == 4);
        bytes small(100);
        ho::reassembler tight(small);
        CHECK(tight.start(msgs[0]) == ho::error::too_large);
        ho::error why{};
        CHECK(tight.add(msgs[1], why) == ho::chunk_verdict::rejected);
        CHECK(why == ho::error::not_started);

        bytes buf(s.stream_size());
        ho::reassembler ra(buf);
        CHECK(ra.add(msgs[1], why) == ho::chunk_verdict::rejected);
        CHECK(why == ho::error::not_started);
        REQUIRE(ra.start(msgs[0]) == ho::error::none);
        CHECK(ra.first_missing() == 0);
        CHECK(ra.add(msgs[0], why) == ho::chunk_verdict::rejected);
        CHECK(why == ho::error::wrong_command);
        auto other = msgs[1];
        other.data = lccp::handoff_data_field(8, 0);
        CHECK(ra.add(other, why) == ho::chunk_verdict::rejected);
        CHECK(why == ho::error::wrong_handoff);
        other = msgs[1];
        other.socket.server_port = 81;
        CHECK(ra.add(other, why) == ho::chunk_verdict::rejected);
        CHECK(why == ho::error::wrong_handoff);
        other = msgs[1];
        other.data = lccp::handoff_data_field(7, 3);
        CHECK(ra.add(other, why) == ho::chunk_verdict::rejected);
        CHECK(why == ho::error::bad_chunk_index);
        other = msgs[1];
        other.payload = other.payload.first(other.payload.size() - 1);
        CHECK(ra.add(other, why) == ho::chunk_verdict::rejected);
        CHECK(why == ho::error::bad_chunk_length);
        other = msgs[3];  // the last chunk is 984 bytes; claim it as chunk 0 (1000 bytes)
        other.data = lccp::handoff_data_field(7, 0);
        CHECK(ra.add(other, why) == ho::chunk_verdict::rejected);
        CHECK(why == ho::error::bad_chunk_length);
        CHECK(ra.chunks_received() == 0);

        CHECK(ra.add(msgs[2], why) == ho::chunk_verdict::accepted);
        CHECK(ra.first_missing() == 0);
        CHECK(ra.add(msgs[2], why) == ho::chunk_verdict::duplicate);
        // The same index with other bytes.
        bytes altered(msgs[2].payload.begin(), msgs[2].payload.end());
        altered[5] ^= std::byte{1};
        other = msgs[2];
        other.payload = altered;
        CHECK(ra.add(other, why) == ho::chunk_verdict::rejected);
        CHECK(why == ho::error::duplicate_mismatch);
        other = msgs[2];
        other.handoff_info[0] ^= std::byte{1};
        CHECK(ra.add(other, why) == ho::chunk_verdict::rejected);
        CHECK(why == ho::error::duplicate_mismatch);
        CHECK(ra.add(msgs[1], why) == ho::chunk_verdict::accepted);
        CHECK_FALSE(ra.complete());
        CHECK(ra.first_missing() == 2);
        CHECK(ra.add(msgs[3], why) == ho::chunk_verdict::accepted);
        CHECK(ra.complete());
        CHECK(bytes(ra.stream().begin(), ra.stream().end()) == stream);

        // A new request starts over.
        REQUIRE(ra.start(msgs[0]) == ho::error::none);
        CHECK_FALSE(ra.complete());
        CHECK(ra.chunks_received() == 0);
    }

    TEST_CASE("short chunks pad the 90-byte field with zeros, and it is checked") {
        const auto s = sample_state(0, 26 + 90 + 40, 0, 90);  // chunk 0: 90 bytes, chunk 1: 40
        const bytes stream = make_stream(s.stream_size());
        auto msgs = messages(s, stream, 1);
        REQUIRE(msgs.size() == 3);
        CHECK(msgs[1].payload.empty());
        CHECK(msgs[2].payload.empty());
        bytes buf(s.stream_size());
        ho::reassembler ra(buf);
        REQUIRE(ra.start(msgs[0]) == ho::error::none);
        ho::error why{};
        auto bad = msgs[2];
        bad.handoff_info[40] = std::byte{1};
        CHECK(ra.add(bad, why) == ho::chunk_verdict::rejected);
        CHECK(why == ho::error::bad_padding);
        bad = msgs[2];
        const std::array<std::byte, 1> extra{};
        bad.payload = extra;
        CHECK(ra.add(bad, why) == ho::chunk_verdict::rejected);
        CHECK(why == ho::error::bad_chunk_length);
    }

    TEST_CASE("every error has a distinct name") {
        for (std::size_t i = 0; i < ho::error_count; ++i)
            for (std::size_t j = i + 1; j < ho::error_count; ++j)
                CHECK(ho::to_string(static_cast<ho::error>(i)) != ho::to_string(static_cast<ho::error>(j)));
    }
}
