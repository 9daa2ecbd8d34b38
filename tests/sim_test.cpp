// The cluster simulator: event order, workload distributions, determinism, conservation, and the
// DPR paper's ordering (none > random > load-based) at a small scale with a fixed seed.
#include <clusternet/sim/cluster_sim.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

using namespace clusternet::sim;

TEST_SUITE("sim") {
    TEST_CASE("event_queue: time order, ties in scheduling order") {
        event_queue<int> q;
        q.push(3.0, 30);
        q.push(1.0, 10);
        q.push(2.0, 20);
        q.push(1.0, 11);  // same time as 10: after it
        q.push(2.0, 21);
        q.push(0.5, 5);
        std::vector<int> got;
        std::vector<double> times;
        while (!q.empty()) {
            const auto e = q.pop();
            got.push_back(e.payload);
            times.push_back(q.now());
        }
        CHECK(got == std::vector<int>{5, 10, 11, 20, 21, 30});
        CHECK(times == std::vector<double>{0.5, 1.0, 1.0, 2.0, 2.0, 3.0});
        CHECK(q.processed() == 6);
    }

    TEST_CASE("event_queue: a large random schedule comes out sorted") {
        event_queue<std::uint32_t> q;
        rng g(7);
        for (std::uint32_t i = 0; i < 20000; ++i) q.push(std::floor(g.uniform() * 100), i);
        double last_t = -1;
        std::uint32_t last_id = 0;
        while (!q.empty()) {
            const auto e = q.pop();
            REQUIRE(e.time >= last_t);
            if (e.time == last_t) REQUIRE(e.payload > last_id);  // FIFO among equal times
            last_t = e.time;
            last_id = e.payload;
        }
    }

    TEST_CASE("workload: Zipf rank-frequency slope is -alpha") {
        for (const double alpha : {1.0, 0.8}) {
            workload_config c;
            c.files = 1000;
            c.zipf_alpha = alpha;
            const workload w(c, 3);
            rng g(11);
            std::vector<double> count(c.files, 0);
            const int draws = 400000;
            for (int i = 0; i < draws; ++i) count[w.sample_file(g)] += 1;
            // Least squares of log(frequency) on log(rank) over ranks 1..100 (well sampled).
            double sx = 0, sy = 0, sxx = 0, sxy = 0;
            const int n = 100;
            for (int r = 0; r < n; ++r) {
                const double x = std::log(r + 1.0), y = std::log(count[static_cast<std::size_t>(r)] / draws);
                sx += x, sy += y, sxx += x * x, sxy += x * y;
            }
            const double slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
            CHECK(slope == doctest::Approx(-alpha).epsilon(0.05));
        }
    }

    TEST_CASE("workload: size and think-time distributions") {
        workload_config c;
        c.tail_fraction = 0;  // body only: lognormal, mean exp(mu + sigma^2 / 2)
        const workload body(c, 5);
        rng g(13);
        double sum = 0;
        const int n = 300000;
        for (int i = 0; i < n; ++i) sum += body.draw_size(g);
        CHECK(sum / n == doctest::Approx(std::exp(c.size_mu + c.size_sigma * c.size_sigma / 2)).epsilon(0.03));

        workload_config t;
        t.tail_fraction = 1;  // tail only: Pareto above k
        t.tail_alpha = 3;     // finite variance: mean k * alpha / (alpha - 1)
        t.max_size = 1e12;
        const workload tail(t, 5);
        double tsum = 0, below = 0;
        for (int i = 0; i < n; ++i) {
            const double s = tail.draw_size(g);
            tsum += s;
            below += s < t.tail_k - 1 ? 1 : 0;
        }
        CHECK(below == 0);
        CHECK(tsum / n == doctest::Approx(t.tail_k * 1.5).epsilon(0.03));

        // The default mix: about 7 % of sizes from the tail, median near exp(mu).
        const workload mix({}, 5);
        std::vector<double> s(n);
        for (double& x : s) x = mix.draw_size(g);
        double tails = 0;
        for (const double x : s) tails += x > 133000 ? 1 : 0;
        const double body_above = 1 - 0.5 * std::erfc(-(std::log(133000.0) - 9.357) / (1.318 * std::sqrt(2.0)));
        CHECK(tails / n == doctest::Approx(0.07 + 0.93 * body_above).epsilon(0.05));

        // Think times: capped Pareto; the sample mean matches the closed form.
        double think = 0;
        for (int i = 0; i < n; ++i) think += mix.sample_think(g);
        CHECK(think / n == doctest::Approx(mix.mean_think()).epsilon(0.03));
    }

    TEST_CASE("workload: bad configurations are refused") {
        workload_config c;
        c.files = 0;
        CHECK_THROWS_AS((void)workload{c}, std::invalid_argument);
        c.files = 10;
        c.zipf_alpha = 0;
        CHECK_THROWS_AS((void)workload{c}, std::invalid_argument);
        sim_config s;
        s.servers.clear();
        CHECK_THROWS_AS((void)cluster_sim{s}, std::invalid_argument);
        sim_config u;
        u.users_per_entry = {1, 2};  // 3 servers
        CHECK_THROWS_AS((void)cluster_sim{u}, std::invalid_argument);
        sim_config p;
        p.policy = "no-such-policy";
        CHECK_THROWS_AS((void)cluster_sim{p}, std::invalid_argument);
    }

    TEST_CASE("determinism: the same seed gives the same result, another seed another") {
        for (const char* policy : {"none", "random", "dpr", "lc", "maglev"}) {
            CAPTURE(policy);
            const sim_config c = dpr_paper_config(policy, 42, 30, 0.1);
            const sim_result a = simulate(c), b = simulate(c);
            CHECK(a.events == b.events);
            CHECK(a.measured == b.measured);
            CHECK(a.delay.mean == b.delay.mean);  // bit for bit
            CHECK(a.delay.variance == b.delay.variance);
            CHECK(a.imbalance_index == b.imbalance_index);
            const sim_result other = simulate(dpr_paper_config(policy, 43, 30, 0.1));
            CHECK((other.events != a.events || other.delay.mean != a.delay.mean));
        }
    }

    TEST_CASE("conservation: every request completes exactly once") {
        for (const auto model : {arrival_model::closed, arrival_model::open}) {
            for (const char* policy : {"none", "rr", "lc", "dpr", "twos"}) {
                for (const discipline d : {discipline::ps, discipline::fifo}) {
                    CAPTURE(policy);
                    sim_config c;
                    c.seed = 9;
                    c.servers = {{1.0, 1}, {2.0, 2}, {0.5, 1}, {1.0, 1}};
                    c.arrivals = model;
                    c.users = 80;
                    c.open_rate = 300;
                    c.policy = policy;
                    c.service = d;
                    c.concurrency = 4;
                    c.warmup_s = 1;
                    c.duration_s = 20;
                    c.drain = true;
                    c.track_requests = true;
                    const sim_result r = simulate(c);
                    REQUIRE(r.issued > 500);
                    CHECK(r.completed == r.issued);
                    CHECK(r.in_flight == 0);
                    CHECK(r.refused == 0);
                    REQUIRE(r.completions.size() == r.issued);
                    std::uint64_t not_once = 0;
                    for (const std::uint8_t k : r.completions) not_once += k == 1 ? 0 : 1;
                    CHECK(not_once == 0);
                    std::uint64_t served = 0;
                    for (const server_result& s : r.servers) served += s.served;
                    CHECK(served == r.measured);
                }
            }
        }
    }

    TEST_CASE("a single FIFO server at low load: delay is service time plus RTT") {
        sim_config c;
        c.servers = {{1.0, 1}};
        c.arrivals = arrival_model::open;
        c.open_rate = 1;  // 1 request/s against about 1 ms of work: queueing is rare
        c.per_request_s = 0.001;
        c.per_byte_s = 0;
        c.service = discipline::fifo;
        c.warmup_s = 0;
        c.duration_s = 2000;
        const sim_result r = simulate(c);
        CHECK(r.delay.p50 == doctest::Approx(0.001 + c.rtt_s).epsilon(1e-6));
        CHECK(r.throughput == doctest::Approx(1.0).epsilon(0.1));
    }

    TEST_CASE("DPR experiment ordering: none > random > load-based (seed 1, 1/5 scale, 60 s)") {
        const sim_result none = simulate(dpr_paper_config("none", 1, 60, 0.2));
        const sim_result rnd = simulate(dpr_paper_config("random", 1, 60, 0.2));
        const sim_result dpr = simulate(dpr_paper_config("dpr", 1, 60, 0.2));
        MESSAGE("delay " << none.delay.mean << " > " << rnd.delay.mean << " > " << dpr.delay.mean);
        MESSAGE("imbalance " << none.imbalance_index << " > " << rnd.imbalance_index << " > " << dpr.imbalance_index);
        CHECK(none.delay.mean > rnd.delay.mean);
        CHECK(rnd.delay.mean > dpr.delay.mean);
        CHECK(none.imbalance_index > rnd.imbalance_index);
        CHECK(rnd.imbalance_index > dpr.imbalance_index);
        CHECK(none.measured < rnd.measured);  // balancing serves more requests
        CHECK(none.measured < dpr.measured);
        CHECK(dpr.redirected > 0);
        CHECK(none.redirected == 0);
    }
}
