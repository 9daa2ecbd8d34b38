// clusternet/sim/workload.hpp -- a SURGE-like web workload for the cluster simulator.
//
// After Barford and Crovella, "Generating Representative Web Workloads for Network and Server
// Performance Evaluation" (SIGMETRICS 1998), the SURGE generator the DPR and LCCP papers used:
//  - a fixed set of files; file popularity is Zipf-like: the file of popularity rank r (1-based)
//    is requested with probability proportional to r^-alpha (alpha = 1 in SURGE);
//  - file sizes are heavy-tailed: a lognormal body (mu = 9.357, sigma = 1.318, in bytes) and,
//    with probability `tail_fraction` (about 7 %), a Pareto tail (k = 133 KB, alpha = 1.1);
//    sizes are drawn once per file and matched to popularity ranks at random (SURGE's
//    independent matching);
//  - closed-loop users: each user alternates between one request and a think (OFF) time drawn
//    from a Pareto distribution (SURGE's inactive OFF time: alpha = 1.5; the scale k is a knob:
//    it sets the offered load).
// What is left out: SURGE's embedded-object ON periods and temporal locality (stack distances);
// a user here issues one request per ON period.
//
// Randomness: `rng`, splitmix64 (clusternet::detail::split_mix), so a workload is a pure
// function of its seed. Sampling is O(log files) (binary search in the popularity CDF) and does
// not allocate; building a workload allocates O(files) and throws std::invalid_argument for a
// configuration that makes no sense (no files, alpha <= 0, ...).
#pragma once

#include <clusternet/scheduler.hpp>  // detail::split_mix, detail::unit_interval

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace clusternet::sim {

/// The simulator's random source: splitmix64 with uniform, exponential, Pareto and lognormal draws.
class rng {
public:
    explicit rng(std::uint64_t seed = 1) noexcept : g_(seed) {}
    std::uint64_t next() noexcept { return g_(); }
    /// Uniform in (0, 1].
    double uniform() noexcept { return clusternet::detail::unit_interval(g_()); }
    /// Exponential with the given mean.
    double exponential(double mean) noexcept { return -mean * std::log(uniform()); }
    /// Pareto with scale k (the minimum) and shape alpha: k / U^(1/alpha).
    double pareto(double k, double alpha) noexcept { return k / std::pow(uniform(), 1.0 / alpha); }
    /// Standard normal (Box-Muller; the second value is discarded so a draw costs one call).
    double normal() noexcept {
        const double u1 = uniform(), u2 = uniform();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }
    double lognormal(double mu, double sigma) noexcept { return std::exp(mu + sigma * normal()); }

private:
    clusternet::detail::split_mix g_;
};

struct workload_config {
    std::uint32_t files = 2000;        ///< distinct files
    double zipf_alpha = 1.0;           ///< popularity exponent
    double size_mu = 9.357;            ///< lognormal body: mean of ln(size in bytes)
    double size_sigma = 1.318;         ///< lognormal body: sd of ln(size)
    double tail_fraction = 0.07;       ///< share of files drawn from the Pareto tail
    double tail_k = 133000;            ///< Pareto tail minimum, bytes
    double tail_alpha = 1.1;           ///< Pareto tail shape
    double max_size = 50e6;            ///< sizes are capped here (bytes)
    double think_k = 0.75;             ///< Pareto think time minimum, seconds (mean 3k at alpha 1.5)
    double think_alpha = 1.5;          ///< Pareto think time shape
    double max_think = 60;             ///< think times are capped here (seconds)
};

/// A file set with its popularity and sizes, and the samplers over it.
class workload {
public:
    /// Draws the file sizes with `seed`. Throws std::invalid_argument for a bad configuration.
    explicit workload(const workload_config& c = {}, std::uint64_t seed = 1) : cfg_(c) {
        if (c.files == 0) throw std::invalid_argument("workload: files must be at least 1");
        if (!(c.zipf_alpha > 0) || !(c.size_sigma >= 0) || !(c.tail_alpha > 0) || !(c.tail_k > 0) ||
            !(c.think_alpha > 0) || !(c.think_k >= 0) || !(c.tail_fraction >= 0 && c.tail_fraction <= 1) ||
            !(c.max_size >= 1))
            throw std::invalid_argument("workload: alpha, sigma, k and max_size must be positive and tail_fraction in [0, 1]");
        cdf_.resize(c.files);
        double sum = 0;
        for (std::uint32_t r = 0; r < c.files; ++r) cdf_[r] = sum += std::pow(static_cast<double>(r + 1), -c.zipf_alpha);
        for (double& x : cdf_) x /= sum;
        cdf_.back() = 1.0;
        rng g(seed);
        sizes_.resize(c.files);
        for (double& s : sizes_) s = draw_size(g);
        // SURGE matches sizes to popularity independently: the draws above are already in a
        // random order with respect to rank, so rank r simply gets sizes_[r].
        mean_size_ = 0;
        for (std::uint32_t r = 0; r < c.files; ++r) mean_size_ += probability(r) * sizes_[r];
    }

    [[nodiscard]] const workload_config& config() const noexcept { return cfg_; }
    [[nodiscard]] std::uint32_t files() const noexcept { return cfg_.files; }
    /// A file's popularity rank (0 = most popular) drawn by Zipf popularity.
    [[nodiscard]] std::uint32_t sample_file(rng& g) const noexcept {
        const double u = g.uniform();
        const auto it = std::lower_bound(cdf_.begin(), cdf_.end(), u);
        return static_cast<std::uint32_t>(std::min<std::size_t>(static_cast<std::size_t>(it - cdf_.begin()), cdf_.size() - 1));
    }
    /// The probability of the file of rank r. Precondition: r < files().
    [[nodiscard]] double probability(std::uint32_t r) const noexcept { return cdf_[r] - (r == 0 ? 0.0 : cdf_[r - 1]); }
    /// The size in bytes of the file of rank r. Precondition: r < files().
    [[nodiscard]] double size(std::uint32_t r) const noexcept { return sizes_[r]; }
    /// The mean size of a request (sizes weighted by popularity).
    [[nodiscard]] double mean_request_size() const noexcept { return mean_size_; }
    /// One size from the hybrid lognormal/Pareto distribution (not tied to a file).
    [[nodiscard]] double draw_size(rng& g) const noexcept {
        const double s = g.uniform() <= cfg_.tail_fraction ? g.pareto(cfg_.tail_k, cfg_.tail_alpha)
                                                           : g.lognormal(cfg_.size_mu, cfg_.size_sigma);
        return std::clamp(std::round(s), 1.0, cfg_.max_size);
    }
    /// One think (OFF) time in seconds.
    [[nodiscard]] double sample_think(rng& g) const noexcept {
        return cfg_.think_k == 0 ? 0.0 : std::min(g.pareto(cfg_.think_k, cfg_.think_alpha), cfg_.max_think);
    }
    /// The mean think time of the capped Pareto distribution (closed form).
    [[nodiscard]] double mean_think() const noexcept {
        const double k = cfg_.think_k, a = cfg_.think_alpha, m = cfg_.max_think;
        if (k == 0) return 0;
        if (m <= k) return m;
        // E[min(X, m)] = integral_0^m P(X > x) dx = k + integral_k^m (k/x)^a dx
        const double tail = a == 1.0 ? k * std::log(m / k) : k / (a - 1.0) * (1.0 - std::pow(k / m, a - 1.0));
        return k + tail;
    }

private:
    workload_config cfg_;
    std::vector<double> cdf_;
    std::vector<double> sizes_;
    double mean_size_ = 0;
};

}  // namespace clusternet::sim
