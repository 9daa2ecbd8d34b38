// Helpers shared by the scheduler tests and benchmarks: clusters of N members and streams of
// distinct flows.
#pragma once

#include <clusternet/cluster_view.hpp>
#include <clusternet/flow_key.hpp>
#include <clusternet/scheduler.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace clusternet::test {

/// The member config of back end i: 10.<i>.<i>.1 (unique for i < 65536), weight w.
inline member_config backend(std::size_t i, std::uint32_t w = 1) {
    return member_config::v4(ipv4_address(static_cast<std::uint32_t>(0x0A000001U + (i << 8))), w);
}

/// A view with `weights.size()` members (slot i = back end i).
inline std::unique_ptr<cluster_view> make_view(const std::vector<std::uint32_t>& weights,
                                               std::size_t max_members = 1024) {
    cluster_view_config cfg;
    cfg.max_members = max_members;
    auto v = std::make_unique<cluster_view>(cfg);
    v->update([&](cluster_editor& e) {
        for (std::size_t i = 0; i < weights.size(); ++i) e.add(backend(i, weights[i]));
    });
    return v;
}

inline std::unique_ptr<cluster_view> make_uniform_view(std::size_t n) {
    return make_view(std::vector<std::uint32_t>(n, 1), n < 1024 ? 1024 : n);
}

/// Distinct TCP flows, each with its own request target.
class flow_stream {
public:
    explicit flow_stream(std::uint64_t seed = 7) : rng_(seed) {}
    /// The next flow (the returned input points into this object: valid until the next call).
    const pick_input& next() {
        const std::uint64_t r = rng_(), d = rng_();
        // Many clients and many destinations (so that destination hashing has something to hash).
        key_ = flow_key4{static_cast<std::uint32_t>(r >> 32) | 1U, 0xCB000000U | static_cast<std::uint32_t>(d >> 40),
                         static_cast<std::uint16_t>(r >> 16), 80, ip_protocol::tcp};
        url_ = "/objects/" + std::to_string(n_++) + ".html";
        in_.key = &key_;
        in_.hash = hash(key_);
        in_.content = url_;
        in_.now_ns = n_ * 1000;
        return in_;
    }

private:
    detail::split_mix rng_;
    flow_key key_;
    std::string url_;
    pick_input in_;
    std::uint64_t n_ = 0;
};

}  // namespace clusternet::test
