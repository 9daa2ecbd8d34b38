// libFuzzer target: arbitrary bytes as what a SAPS channel's peer sends.
//
// Invariants checked, beyond "no crash, no sanitizer report, no unbounded memory":
//  - the frame decoder delivers the same frames and stops with the same error whether the bytes
//    come in one piece or in pieces cut where the input says;
//  - every frame that decodes re-encodes to exactly the bytes it came from (the format is
//    canonical: all padding and reserved fields are checked);
//  - a mux_endpoint fed the bytes (with the first two input bytes choosing how its application
//    reads and answers) never holds more in a stream's buffer than the window, and everything it
//    writes back decodes cleanly, with no data frame beyond the credit the fuzzer's side granted;
//  - after the endpoint half-closes a stream (shutdown_send, on steps the input picks), nothing
//    but one eof follows on it: no data frame after its eof, no second eof.
#include <clusternet/mux_endpoint.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

namespace cn = clusternet;
namespace saps = clusternet::saps;

#define FUZZ_CHECK(cond)                                                                          \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            std::fprintf(stderr, "mux_channel_fuzz: invariant failed: %s (line %d)\n", #cond, __LINE__); \
            std::abort();                                                                         \
        }                                                                                         \
    } while (0)

namespace {

struct seen_frame {
    saps::frame_type type;
    std::uint32_t stream;
    std::size_t size;
};

void check_decoder(std::span<const std::byte> in) {
    constexpr std::size_t max_frame = 4096;
    std::vector<seen_frame> whole;
    std::size_t offset = 0;
    std::vector<std::byte> again;
    cn::saps::frame_decoder one(max_frame);
    const cn::parse_error e1 = one.feed(in, [&](const saps::frame& f) {
        const std::size_t n = saps::encoded_size(f);
        FUZZ_CHECK(n >= saps::header_size && offset + n <= in.size());
        again.assign(n, std::byte{0});
        FUZZ_CHECK(saps::encode(f, again) == n);
        FUZZ_CHECK(std::memcmp(again.data(), in.data() + offset, n) == 0);
        offset += n;
        whole.push_back({f.type, f.stream, n});
    });
    FUZZ_CHECK(offset + one.pending() <= in.size());

    // The same bytes in pieces whose sizes come from the input itself.
    cn::saps::frame_decoder two(max_frame);
    std::vector<seen_frame> pieces;
    cn::parse_error e2 = cn::parse_error::none;
    std::size_t pos = 0, cut = 0;
    while (pos < in.size() && e2 == cn::parse_error::none) {
        const std::size_t n = std::min<std::size_t>(in.size() - pos, 1 + (static_cast<std::size_t>(in[cut % in.size()]) % 97));
        ++cut;
        e2 = two.feed(in.subspan(pos, n), [&](const saps::frame& f) {
            pieces.push_back({f.type, f.stream, saps::encoded_size(f)});
        });
        pos += n;
    }
    FUZZ_CHECK(e1 == e2);
    FUZZ_CHECK(whole.size() == pieces.size());
    for (std::size_t i = 0; i < whole.size(); ++i)
        FUZZ_CHECK(whole[i].type == pieces[i].type && whole[i].stream == pieces[i].stream && whole[i].size == pieces[i].size);
}

void check_endpoint(std::span<const std::byte> in) {
    if (in.size() < 2) return;
    const auto mode = static_cast<unsigned>(in[0]);
    const auto step = 1 + static_cast<std::size_t>(in[1]);
    in = in.subspan(2);

    cn::mux_config cfg;
    cfg.capacity = 8;
    cfg.window = 1 + (mode & 0x0F) * 300;
    cfg.send_buffer = 2048;
    cfg.max_frame = 1024;
    cfg.max_control_backlog = 8192;
    cn::mux_endpoint* self = nullptr;
    std::vector<std::byte> scratch(4096, std::byte{0x42});
    std::vector<cn::stream_id> opened;
    std::vector<cn::stream_id> all_ids;  // every local stream, ours and the peer's
    cn::mux_callbacks cb;
    cb.connection_accepted = [&](cn::stream_id id, const saps::frame& open) {
        opened.push_back(id);
        all_ids.push_back(id);
        return (mode & 0x10) && (open.tag & 1) ? ECONNREFUSED : 0;
    };
    cb.message_received = [&](cn::stream_id id) {
        std::error_code ec;
        if (mode & 0x20) (void)self->read(id, std::span(scratch).first(1 + (mode >> 6) * 500), ec);
    };
    cb.request_received = [&](cn::stream_id id, const saps::frame& rq) {
        (void)self->reply(id, rq.call == saps::socket_call::connect ? ECONNREFUSED : 0);
    };
    cb.connection_closed = [&](cn::stream_id id, std::error_code) {
        if (mode & 0x40) self->close_connection(id);
    };
    cn::mux_endpoint ep(cfg, cb);
    self = &ep;
    all_ids.push_back(ep.make_connection(3));

    // What the endpoint writes must decode, and its data must respect the grants it was given.
    saps::frame_decoder out_dec(cfg.max_frame);
    std::vector<std::byte> out(cfg.max_frame * 2);
    std::vector<std::uint32_t> eof_out;  // the peer's ids of streams we sent an eof on
    auto unique_peer = [&](std::uint32_t peer) {
        std::size_t n = 0;
        for (const cn::stream_id id : all_ids)
            if (const auto* e = ep.stream(id); e && e->user.peer == peer) ++n;
        return n == 1;
    };
    auto drain_output = [&] {
        for (int guard = 0; guard < 64 && ep.wants_write(); ++guard) {
            const std::size_t n = ep.produce(out);
            if (n == 0) break;
            FUZZ_CHECK(out_dec.feed(std::span(out).first(n), [&](const saps::frame& f) {
                FUZZ_CHECK(f.payload.size() + saps::header_size <= cfg.max_frame);
                // (Frames name the peer's ids, which a hostile peer may give two streams at once;
                // the check is made only where the id names one stream.)
                const bool after_eof = std::find(eof_out.begin(), eof_out.end(), f.stream) != eof_out.end();
                if ((f.type == saps::frame_type::data || f.type == saps::frame_type::eof) && unique_peer(f.stream))
                    FUZZ_CHECK(!after_eof);
                if (f.type == saps::frame_type::eof) eof_out.push_back(f.stream);
                // A close ends the stream: the peer may give the id out again (a new stream).
                if (f.type == saps::frame_type::close) std::erase(eof_out, f.stream);
            }) == cn::parse_error::none);
        }
    };
    for (std::size_t pos = 0; pos < in.size(); pos += step) {
        const auto piece = in.subspan(pos, std::min(step, in.size() - pos));
        const std::error_code ec = ep.consume(piece);
        // Keep the application writing on every stream it has, so that credit is exercised, and
        // half-close some of them on steps the input chooses.
        const bool shut_now = (pos / step) % 5 == static_cast<std::size_t>(mode >> 5) % 5;
        for (const cn::stream_id id : opened) {
            std::error_code sec;
            (void)ep.send(id, std::span(scratch).first(300), sec);
            if (shut_now && (id & 1) && ep.shutdown_send(id)) {
                FUZZ_CHECK(ep.send(id, std::span(scratch).first(10), sec) == 0);  // no send after a half-close
            }
            if (const auto* e = ep.stream(id)) {
                FUZZ_CHECK(e->rx.buffered() <= cfg.window);
                FUZZ_CHECK(ep.readable(id) == e->rx.buffered());
                FUZZ_CHECK(e->tx.sent() <= e->tx.limit());
            }
        }
        drain_output();
        if (ec) {
            FUZZ_CHECK(ep.error() == ec);
            FUZZ_CHECK(!ep.wants_write());
            break;
        }
    }
    // Data written on a stream never exceeds what the peer granted.
    for (const cn::stream_id id : opened)
        if (const auto* e = ep.stream(id)) FUZZ_CHECK(e->tx.sent() <= e->tx.limit());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
    check_decoder(in);
    check_endpoint(in);
    return 0;
}
