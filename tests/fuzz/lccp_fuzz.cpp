// libFuzzer target: the LCCP codec (clusternet/lccp.hpp).
//
// Input: one byte of mode, then a message. Mode bit 0 set: the bytes are a message without its
// tag (decode_body), which is what a fuzzer can reach; clear: a datagram as it comes off the wire,
// checked by an inbound checker under a fixed key (the tag almost never verifies, which is the
// point: it must always be refused and counted). Invariants checked:
//  - decoding never reads outside the input (ASan) and payloads lie inside it;
//  - whatever decodes re-encodes to exactly the same bytes, and survives seal + decode;
//  - every refusal has a reason and is counted once.
#include <clusternet/lccp.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace lccp = clusternet::lccp;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

const clusternet::siphash_key key{0x1122334455667788ULL, 0x99aabbccddeeff00ULL};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::uint8_t mode = data[0];
    std::vector<std::byte> buf(size - 1);  // exactly the message's size, so ASan sees over-reads
    if (!buf.empty()) std::memcpy(buf.data(), data + 1, buf.size());

    if ((mode & 1) == 0) {
        lccp::member_filter<4> members;
        members.add(clusternet::ipv4_address(10, 0, 0, 1));
        lccp::inbound<4> in(key, members);
        const auto sender = clusternet::ipv4_address((mode & 2) ? 0x0A000001u : 0x0A000002u);
        const auto r = in.accept(sender, buf);
        check(in.stats().accepted + in.stats().rejected_total() == 1);
        check(r.err != lccp::error::none || (mode & 2));
        return 0;
    }

    const auto r = lccp::decode_body(buf);
    if (!r) {
        check(r.err != lccp::error::none);
        return 0;
    }
    const lccp::message& m = r.msg;
    check(lccp::validate(m) == lccp::error::none);
    if (!m.payload.empty()) check(m.payload.data() >= buf.data() && m.payload.data() + m.payload.size() == buf.data() + buf.size());
    if (m.cmd == lccp::command::dispatch_request) check(lccp::content_key(m).size() >= 1);

    std::vector<std::byte> out(lccp::max_message_size);
    const auto body = lccp::encode_body(m, out);
    check(body && body.size == buf.size());
    check(std::memcmp(out.data(), buf.data(), buf.size()) == 0);
    const auto sealed = lccp::seal(key, out, body.size);
    check(static_cast<bool>(sealed));
    const auto back = lccp::decode(std::span<const std::byte>(out).first(sealed.size), key);
    check(back && back.msg.cmd == m.cmd && back.msg.data == m.data && back.msg.socket == m.socket &&
          back.msg.handoff_info == m.handoff_info && back.msg.payload.size() == m.payload.size());
    out[mode % sealed.size] ^= std::byte{0x20};
    check(lccp::decode(std::span<const std::byte>(out).first(sealed.size), key).err == lccp::error::bad_tag);
    return 0;
}
