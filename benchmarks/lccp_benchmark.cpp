// Benchmarks of the LCCP codec (clusternet/lccp.hpp), its SipHash-2-4 tag
// (clusternet/siphash.hpp) and the handoff state serializer (clusternet/handoff_state.hpp).
//
//   BM_Lccp_EncodeBody / BM_Lccp_DecodeBody   the codec alone (no tag)
//   BM_Lccp_Encode / BM_Lccp_Decode           with the tag: what goes on and comes off the wire
//   BM_Lccp_Inbound                            member filter + tag + decode + counters
//   BM_Lccp_SipHash/<bytes>                    the tag over a message of that size
//   BM_Handoff_EncodeInfo / _DecodeInfo        the 90-byte handoff state field
//   BM_Handoff_Stream/<bytes>                  a whole handoff's queued bytes: chunk, seal, decode,
//                                              reassemble (what a handoff of that size costs in CPU)
// No peer is linked for SipHash (none of the benchmark dependencies exposes one).
#include <benchmark/benchmark.h>

#include <clusternet/handoff_state.hpp>
#include <clusternet/lccp.hpp>
#include <clusternet/siphash.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace cn = clusternet;
namespace lccp = clusternet::lccp;
namespace ho = clusternet::handoff;

namespace {

const cn::siphash_key key{0x0123456789abcdefULL, 0xfedcba9876543210ULL};
const lccp::socket_id sock{cn::ipv4_address(192, 0, 2, 7), 40000, cn::ipv4_address(10, 0, 0, 100), 80};

cn::handoff_state state(std::uint32_t recv, std::uint32_t send) {
    cn::handoff_state s;
    s.socket = sock;
    s.snd_seq = 1000000;
    s.rcv_seq = 5000000;
    s.window = {4999000, 64000, 65535, 131072, 4999000};
    s.timestamp = 123456;
    s.mss = 1448;
    s.chunk_size = ho::default_chunk_size;
    s.snd_wscale = s.rcv_wscale = 7;
    s.sack_permitted = s.timestamps = s.window_scaling = true;
    s.recv_queue_len = recv;
    s.send_queue_len = send;
    return s;
}

// A handoff_request with a 14-byte request inline: the common control message.
lccp::message request_message() {
    static const std::vector<std::byte> stream(14, std::byte{'G'});
    lccp::message m;
    (void)ho::make_request(state(14, 0), stream, 7, m);
    return m;
}

void BM_Lccp_EncodeBody(benchmark::State& st) {
    const lccp::message m = request_message();
    std::vector<std::byte> out(lccp::max_message_size);
    for (auto _ : st) {
        auto r = lccp::encode_body(m, out);
        benchmark::DoNotOptimize(r);
        benchmark::ClobberMemory();
    }
}
BENCHMARK(BM_Lccp_EncodeBody);

void BM_Lccp_Encode(benchmark::State& st) {
    const lccp::message m = request_message();
    std::vector<std::byte> out(lccp::max_message_size);
    for (auto _ : st) {
        auto r = lccp::encode(m, key, out);
        benchmark::DoNotOptimize(r);
        benchmark::ClobberMemory();
    }
}
BENCHMARK(BM_Lccp_Encode);

std::vector<std::byte> wire_of(const lccp::message& m) {
    std::vector<std::byte> out(lccp::max_message_size);
    const auto r = lccp::encode(m, key, out);
    out.resize(r.size);
    return out;
}

void BM_Lccp_DecodeBody(benchmark::State& st) {
    const auto w = wire_of(request_message());
    const std::span<const std::byte> body = std::span<const std::byte>(w).first(w.size() - lccp::tag_size);
    for (auto _ : st) {
        benchmark::DoNotOptimize(body.data());
        auto r = lccp::decode_body(body);
        benchmark::DoNotOptimize(r);
    }
}
BENCHMARK(BM_Lccp_DecodeBody);

void BM_Lccp_Decode(benchmark::State& st) {
    const auto w = wire_of(request_message());
    for (auto _ : st) {
        benchmark::DoNotOptimize(w.data());
        auto r = lccp::decode(w, key);
        benchmark::DoNotOptimize(r);
    }
}
BENCHMARK(BM_Lccp_Decode);

void BM_Lccp_Inbound(benchmark::State& st) {
    const auto w = wire_of(request_message());
    lccp::member_filter<> members;
    for (std::uint8_t i = 1; i <= 32; ++i) members.add(cn::ipv4_address(10, 0, 0, i));
    lccp::inbound<> in(key, members);
    const cn::ipv4_address sender(10, 0, 0, 17);
    for (auto _ : st) {
        benchmark::DoNotOptimize(w.data());
        auto r = in.accept(sender, w);
        benchmark::DoNotOptimize(r);
    }
    if (in.stats().accepted != static_cast<std::uint64_t>(st.iterations())) st.SkipWithError("a message was refused");
}
BENCHMARK(BM_Lccp_Inbound);

void BM_Lccp_SipHash(benchmark::State& st) {
    const std::vector<std::byte> msg(static_cast<std::size_t>(st.range(0)), std::byte{0x5A});
    for (auto _ : st) {
        benchmark::DoNotOptimize(msg.data());
        benchmark::DoNotOptimize(cn::siphash24(key, msg));
    }
    st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations()) * st.range(0));
}
BENCHMARK(BM_Lccp_SipHash)->Arg(8)->Arg(64)->Arg(static_cast<int>(lccp::fixed_size))->Arg(static_cast<int>(lccp::max_message_size - lccp::tag_size));

void BM_Handoff_EncodeInfo(benchmark::State& st) {
    const auto s = state(14, 0);
    const std::vector<std::byte> stream(14, std::byte{'G'});
    std::array<std::byte, lccp::handoff_info_size> field{};
    for (auto _ : st) {
        auto e = ho::encode_info(s, stream, field);
        benchmark::DoNotOptimize(e);
        benchmark::ClobberMemory();
    }
}
BENCHMARK(BM_Handoff_EncodeInfo);

void BM_Handoff_DecodeInfo(benchmark::State& st) {
    const lccp::message m = request_message();
    cn::handoff_state s;
    std::span<const std::byte> inl;
    for (auto _ : st) {
        benchmark::DoNotOptimize(m.handoff_info.data());
        auto e = ho::decode_info(m.handoff_info, s, inl);
        benchmark::DoNotOptimize(e);
        benchmark::DoNotOptimize(s);
    }
}
BENCHMARK(BM_Handoff_DecodeInfo);

void BM_Handoff_Stream(benchmark::State& st) {
    const auto n = static_cast<std::uint32_t>(st.range(0));
    const auto s = state(14, n - 14);
    std::vector<std::byte> stream(n, std::byte{0x33}), buf(n), wire(lccp::max_message_size);
    ho::reassembler ra(buf);
    for (auto _ : st) {
        lccp::message m;
        (void)ho::make_request(s, stream, 1, m);
        auto e = lccp::encode(m, key, wire);
        auto d = lccp::decode(std::span<const std::byte>(wire).first(e.size), key);
        (void)ra.start(d.msg);
        for (std::uint64_t k = 0; k < ho::chunk_count(s); ++k) {
            (void)ho::make_chunk(s, stream, 1, k, m);
            e = lccp::encode(m, key, wire);
            d = lccp::decode(std::span<const std::byte>(wire).first(e.size), key);
            ho::error why{};
            (void)ra.add(d.msg, why);
        }
        if (!ra.complete()) st.SkipWithError("reassembly incomplete");
        benchmark::DoNotOptimize(ra.stream().data());
    }
    st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations()) * st.range(0));
}
BENCHMARK(BM_Handoff_Stream)->Arg(1 << 10)->Arg(64 << 10)->Arg(1 << 20);

}  // namespace
