// libFuzzer target: the handoff state decoder and the continuation reassembler
// (clusternet/handoff_state.hpp).
//
// Input: a 90-byte Handoff Information field, then any number of records [u16 length][LCCP
// message body without tag] offered to the reassembler as chunks. Invariants checked:
//  - decode_info never reads outside the field; what it accepts validates, and re-encodes to the
//    same 90 bytes;
//  - the reassembler never writes outside its buffer (ASan), counts each chunk once, and when it
//    reports complete its stream has exactly R + S bytes.
#include <clusternet/handoff_state.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace cn = clusternet;
namespace lccp = clusternet::lccp;
namespace ho = clusternet::handoff;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < lccp::handoff_info_size) return 0;
    lccp::message request;
    request.receptor = lccp::component::distributor;
    request.cmd = lccp::command::handoff_request;
    std::memcpy(request.handoff_info.data(), data, lccp::handoff_info_size);

    cn::handoff_state s;
    std::span<const std::byte> inl;
    const ho::error e = ho::decode_info(request.handoff_info, s, inl);
    if (e != ho::error::none) return 0;
    check(ho::validate(s) == ho::error::none);
    check(inl.size() == std::min<std::uint64_t>(s.stream_size(), ho::inline_capacity));

    // Re-encode: a stream whose first bytes are the inline ones gives back the same field.
    if (s.stream_size() <= (1u << 20)) {
        std::vector<std::byte> stream(static_cast<std::size_t>(s.stream_size()));
        if (!inl.empty()) std::memcpy(stream.data(), inl.data(), inl.size());
        std::array<std::byte, lccp::handoff_info_size> again{};
        check(ho::encode_info(s, stream, again) == ho::error::none);
        check(again == request.handoff_info);
    }

    request.socket = s.socket;
    request.data = lccp::handoff_data_field(0x4242, static_cast<std::uint16_t>(ho::chunk_count(s)));
    std::vector<std::byte> buffer(64 * 1024);
    ho::reassembler ra(buffer);
    const ho::error started = ra.start(request);
    check(started == ho::error::none || started == ho::error::too_large || started == ho::error::bad_chunk_count);
    if (started != ho::error::none) return 0;

    std::size_t pos = lccp::handoff_info_size, accepted = 0;
    while (pos + 2 <= size) {
        const std::size_t len = (std::size_t{data[pos]} << 8) | data[pos + 1];
        pos += 2;
        const std::size_t n = std::min(len, size - pos);
        std::vector<std::byte> rec(n);
        if (n != 0) std::memcpy(rec.data(), data + pos, n);
        pos += n;
        const auto r = lccp::decode_body(rec);
        if (!r) continue;
        lccp::message chunk = r.msg;
        if (chunk.cmd == lccp::command::handoff_data) {
            chunk.socket = s.socket;  // aim at this handoff, so the length and index checks are reached
            chunk.data = lccp::handoff_data_field(0x4242, lccp::handoff_low_of(chunk.data));
        }
        ho::error why{};
        const auto v = ra.add(chunk, why);
        if (v == ho::chunk_verdict::accepted) ++accepted;
        if (v == ho::chunk_verdict::rejected) check(why != ho::error::none);
    }
    check(ra.chunks_received() == accepted && accepted <= ra.chunks_expected());
    if (ra.complete()) check(ra.stream().size() == s.stream_size());
    return 0;
}
