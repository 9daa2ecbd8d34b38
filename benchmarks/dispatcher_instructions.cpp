// A fixed workload for counting the dispatcher's instructions a packet with callgrind (which
// counts the same on a busy machine as on an idle one, unlike a clock): bursts of 32 data
// packets of 8192 established IPv4 flows (a table that stays in the cache), as
// BM_Dispatcher_CachedBurst* runs them, for a given number of bursts and mode. Run it twice
// and take the difference, so that the setup (the flows, the frames) cancels out:
//
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null build/gcc/benchmarks/dispatcher_instructions 1 nat
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null build/gcc/benchmarks/dispatcher_instructions 10001 nat
//   instructions a packet = (Ir of the second - Ir of the first) / (10000 * 32)
//
// Modes: dr, nat, fullnat. Built -O2 (the instruction counts in docs/performance.md are of this
// program), not a Google Benchmark; it measures no time.
#include <clusternet/dispatcher.hpp>
#include <clusternet/packet_builder.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace cn = clusternet;

namespace {

constexpr std::size_t live_flows = 8192;
// Template frames of random live flows, one per flow.
constexpr std::size_t ring = 8192;
constexpr std::size_t frame_size = 64;
constexpr std::uint16_t backends = 64;  // full NAT: 1 M flows over 64 back ends, 16 K ports each

const cn::mac_address self_mac{{std::byte{2}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{1}}};
const cn::mac_address gw_mac{{std::byte{2}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0xFE}}};
const cn::ipv4_address vip(192, 0, 2, 10);

struct rr_picker {
    std::uint16_t next = 0;
    std::uint16_t operator()(const cn::flow_key4&, std::uint64_t) noexcept {
        next = static_cast<std::uint16_t>(next + 1 == backends ? 0 : next + 1);
        return next;
    }
};

cn::ipv4_address client_ip(std::uint32_t i) { return cn::ipv4_address(0x64400000U + (i >> 4)); }  // 100.64/10
std::uint16_t client_port(std::uint32_t i) { return static_cast<std::uint16_t>(32768 + (i & 15) * 1024 + (i >> 20)); }

void write_frame(std::byte* out, std::uint32_t client, std::uint8_t flags) {
    auto r = cn::packet_builder(std::span<std::byte>(out, frame_size))
                 .ethernet({.dst = self_mac, .src = gw_mac})
                 .ipv4({.src = client_ip(client), .dst = vip})
                 .tcp({.sport = client_port(client), .dport = 80, .seq = 1, .ack = 1, .flags = flags})
                 .payload(frame_size - 14 - 40)
                 .finish();
    if (!r) std::abort();
}

template <cn::forwarding_mode Mode>
using dispatcher_t = cn::dispatcher4<Mode, rr_picker>;

template <cn::forwarding_mode Mode>
std::unique_ptr<dispatcher_t<Mode>> make_dispatcher(std::size_t capacity) {
    cn::dispatcher_config c;
    c.vip = vip;
    c.port = 80;
    c.self = {self_mac, cn::ipv4_address(10, 0, 0, 2), gw_mac};
    c.table.capacity = capacity;
    c.max_backends = backends;
    auto d = std::make_unique<dispatcher_t<Mode>>(c, rr_picker{});
    for (std::uint16_t i = 0; i < backends; ++i) {
        cn::mac_address m = self_mac;
        m.bytes[5] = std::byte{static_cast<unsigned char>(0x10 + i)};
        d->set_backend(i, {cn::ipv4_address(10, 0, 1, static_cast<std::uint8_t>(i + 1)), m, 8080});
    }
    return d;
}

/// A dispatcher with live_flows established flows (SYN then ACK through it), built once per mode.
template <cn::forwarding_mode Mode>
dispatcher_t<Mode>& populated() {
    static std::unique_ptr<dispatcher_t<Mode>> d = [] {
        auto p = make_dispatcher<Mode>(live_flows + live_flows / 8);
        std::array<std::byte, frame_size> f{};
        std::array<std::byte, 2048> scratch{};
        for (std::uint32_t i = 0; i < live_flows; ++i) {
            write_frame(f.data(), i, cn::tcp_flags::syn);
            if (p->process(f, 0, scratch).verdict != cn::dispatch_verdict::new_flow) std::abort();
            write_frame(f.data(), i, cn::tcp_flags::ack);
            if (p->process(f, 0, scratch).verdict != cn::dispatch_verdict::forwarded) std::abort();
        }
        return p;
    }();
    return *d;
}

/// Template frames: data packets of random live flows.
const std::vector<std::byte>& existing_frames() {
    static const std::vector<std::byte> frames = [] {
        std::vector<std::byte> v(ring * frame_size);
        std::mt19937 rng(42);
        for (std::size_t i = 0; i < ring; ++i)
            write_frame(v.data() + i * frame_size, static_cast<std::uint32_t>(rng() % live_flows), cn::tcp_flags::ack);
        return v;
    }();
    return frames;
}


template <cn::forwarding_mode Mode>
int run(std::size_t bursts) {
    constexpr std::size_t burst = 32;
    auto& d = populated<Mode>();
    const auto& tpl = existing_frames();
    std::vector<std::byte> work(burst * frame_size);
    std::vector<std::byte> scratch_mem(burst * 128);
    std::array<std::span<std::byte>, burst> frames, scratch;
    for (std::size_t k = 0; k < burst; ++k) {
        frames[k] = std::span<std::byte>(work).subspan(k * frame_size, frame_size);
        scratch[k] = std::span<std::byte>(scratch_mem).subspan(k * 128, 128);
    }
    std::array<typename dispatcher_t<Mode>::result, burst> results;
    std::size_t i = 0, sent = 0;
    for (std::size_t n = 0; n < bursts; ++n) {
        std::memcpy(work.data(), tpl.data() + i * frame_size, burst * frame_size);
        d.process_burst(frames, 1, scratch, results);
        for (const auto& r : results) sent += cn::sends(r.verdict);
        i += burst;
        if (i == ring) i = 0;
    }
    if (sent != bursts * burst) {
        std::fprintf(stderr, "dispatcher_instructions: %zu of %zu packets forwarded\n", sent, bursts * burst);
        return 1;
    }
    return 0;
}
}  // namespace
int main(int argc, char** argv) {
    const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 10000;
    const std::string m = argc > 2 ? argv[2] : "dr";
    if (m == "dr") return run<cn::forwarding_mode::direct_routing>(n);
    if (m == "nat") return run<cn::forwarding_mode::nat>(n);
    if (m == "fullnat") return run<cn::forwarding_mode::full_nat>(n);
    std::fprintf(stderr, "usage: dispatcher_instructions BURSTS dr|nat|fullnat\n");
    return 2;
}
