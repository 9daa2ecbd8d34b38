// cn-cluster-sim: experiments on clusternet's discrete-event cluster simulator
// (include/clusternet/sim/cluster_sim.hpp), driving the library's real cluster view and
// schedulers. See docs/simulator.md.
//
//   cn-cluster-sim dpr   [--seed N] [--duration S] [--scale F] [--out DIR]
//   cn-cluster-sim lccp  [--seed N] [--duration S] [--max-nodes N] [--out DIR]
//   cn-cluster-sim large [--seed N] [--servers N] [--requests N] [--policies a,b,..] [--out DIR]
//
// Each writes <DIR>/<experiment>.csv and, when gnuplot is on the PATH, <DIR>/<experiment>.png.
#include <clusternet/sim/cluster_sim.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace sim = clusternet::sim;

namespace {

void usage(std::ostream& o) {
    o << "usage: cn-cluster-sim <experiment> [options]\n"
         "experiments:\n"
         "  dpr    DPR paper (seeds/003): 3 hosts, 1500 SURGE users skewed 4:1:1 by round-robin DNS;\n"
         "         no balancing vs random rerouting vs load-based (dpr threshold) -- Tables 1 and 2\n"
         "  lccp   LCCP paper (seeds/000): 1..14 nodes behind a round-robin dispatcher vs an ideal\n"
         "         cluster (each client on its own server, no dispatcher) -- throughput per node count\n"
         "  large  policies at scale: N back ends of speeds 1, 2, 4 (weights = speeds), open Poisson\n"
         "         arrivals at 90% of capacity: balance (max/mean) and tail delay per policy\n"
         "options:\n"
         "  --seed N        random seed (default 1); the same seed gives the same output\n"
         "  --out DIR       where to write CSV and PNG files (default: sim-out)\n"
         "  --duration S    simulated seconds (dpr: 200, lccp: 30)\n"
         "  --scale F       dpr: users and capacity times F (default 1)\n"
         "  --max-nodes N   lccp: largest cluster (default 14)\n"
         "  --servers N     large: back ends (default 1000)\n"
         "  --requests N    large: requests per policy (default 200000)\n"
         "  --policies L    large: comma-separated (default rr,wrr,random,wrandom,twos,lc,wlc,sed,maglev,hrw,dpr)\n"
         "  --help          this text\n";
}

struct options {
    std::string experiment, out = "sim-out", policies = "rr,wrr,random,wrandom,twos,lc,wlc,sed,maglev,hrw,dpr";
    std::uint64_t seed = 1, requests = 200000;
    double duration = 0, scale = 1;
    unsigned max_nodes = 14, servers = 1000;
};

bool have_gnuplot() { return std::system("command -v gnuplot >/dev/null 2>&1") == 0; }

void plot(const std::string& dir, const std::string& name, const std::string& script) {
    const std::string gp = dir + "/" + name + ".gp";
    std::ofstream(gp) << "set terminal pngcairo size 800,500 noenhanced\nset output '" << dir << "/" << name << ".png'\n"
                      << "set datafile separator ','\nset key outside right top\nset grid\n"
                      << script;
    if (!have_gnuplot()) {
        std::cout << "(gnuplot not found: " << gp << " not run)\n";
        return;
    }
    if (std::system(("gnuplot '" + gp + "'").c_str()) != 0) std::cerr << "gnuplot failed on " << gp << "\n";
    else std::cout << "wrote " << dir << "/" << name << ".png\n";
}

int run_dpr(const options& o) {
    struct paper_row { const char* name; double mean, var, total, rate, imbalance; };
    const paper_row paper[] = {{"none", 0.918775, 15.240970, 96726, 496.03, 1.20},
                               {"random", 0.372362, 0.813577, 123798, 634.86, 1.16},
                               {"tcp (dpr)", 0.263267, 0.859490, 129278, 662.96, 1.08}};
    const char* policies[] = {"none", "random", "dpr"};
    const double duration = o.duration > 0 ? o.duration : 200;
    std::ofstream csv(o.out + "/dpr.csv");
    csv << "policy,served,rate,delay_mean,delay_var,delay_p90,delay_p99,load_mean,load_p10,load_p90,imbalance,"
           "paper_served,paper_rate,paper_delay_mean,paper_delay_var,paper_imbalance\n";
    std::ofstream series(o.out + "/dpr_series.csv");
    series << "policy,t,host0_served,host1_served,host2_served\n";
    std::printf("DPR (seeds/003): 3 hosts, users %.0f:%.0f:%.0f, %.0f s, seed %llu\n", 1000 * o.scale, 250 * o.scale,
                250 * o.scale, duration, static_cast<unsigned long long>(o.seed));
    std::printf("%-8s %9s %8s %9s %9s %6s %6s %6s %9s | paper: %8s %7s %9s %9s %5s\n", "policy", "served", "req/s",
                "delay", "var", "load", "p10", "p90", "imbalance", "served", "req/s", "delay", "var", "imb");
    double delay[3], imb[3];
    for (int i = 0; i < 3; ++i) {
        sim::sim_config c = sim::dpr_paper_config(policies[i], o.seed, duration, o.scale);
        c.record_series = true;
        const sim::sim_result r = sim::simulate(c);
        delay[i] = r.delay.mean;
        imb[i] = r.imbalance_index;
        const paper_row& p = paper[i];
        std::printf("%-8s %9llu %8.1f %9.4f %9.4f %6.1f %6.0f %6.0f %9.3f | %14.0f %7.1f %9.4f %9.4f %5.2f\n", policies[i],
                    static_cast<unsigned long long>(r.measured), r.throughput, r.delay.mean, r.delay.variance, r.load.mean,
                    r.load.p10, r.load.p90, r.imbalance_index, p.total, p.rate, p.mean, p.var, p.imbalance);
        csv << policies[i] << ',' << r.measured << ',' << r.throughput << ',' << r.delay.mean << ',' << r.delay.variance
            << ',' << r.delay.p90 << ',' << r.delay.p99 << ',' << r.load.mean << ',' << r.load.p10 << ',' << r.load.p90
            << ',' << r.imbalance_index << ',' << p.total << ',' << p.rate << ',' << p.mean << ',' << p.var << ','
            << p.imbalance << '\n';
        for (std::size_t k = 0; k < r.served_series.size(); ++k)
            series << policies[i] << ',' << c.warmup_s + static_cast<double>(k + 1) * c.sample_period_s << ','
                   << r.served_series[k][0] << ',' << r.served_series[k][1] << ',' << r.served_series[k][2] << '\n';
    }
    const bool order = delay[0] > delay[1] && delay[1] > delay[2] && imb[0] > imb[1] && imb[1] > imb[2];
    std::printf("ordering none > random > load-based (mean delay and imbalance): %s\n", order ? "holds" : "DOES NOT HOLD");
    csv.close();
    series.close();
    plot(o.out, "dpr",
         "set title 'DPR experiment: mean delay and imbalance index (sim vs paper)'\nset style data histograms\n"
         "set style histogram clustered\nset style fill solid 0.8\nset ylabel 'mean delay (s)'\nset y2label 'imbalance index'\n"
         "set y2tics\nset ytics nomirror\nset boxwidth 0.9\n"
         "plot '" + o.out + "/dpr.csv' every ::1 using 4:xtic(1) title 'sim delay', '' every ::1 using 14 title 'paper delay', "
         "'' every ::1 using 0:11 axes x1y2 with linespoints lw 2 title 'sim imbalance', '' every ::1 using 0:16 axes x1y2 with linespoints lw 2 title 'paper imbalance'\n");
    std::string panels;
    for (const char* p : policies)
        panels += std::string("set title 'requests served per second per host: ") + p + "'\nplot for [h=3:5] '" + o.out +
                  "/dpr_series.csv' every ::1 using 2:(strcol(1) eq '" + p +
                  "' ? column(h) : 1/0) with lines title sprintf('host %d%s', h - 3, h == 3 ? ' (4 client machines)' : '')\n";
    plot(o.out, "dpr_series",
         "set terminal pngcairo size 800,900 noenhanced\nset output '" + o.out + "/dpr_series.png'\n"
         "set multiplot layout 3,1\nset xlabel 'simulated time (s)'\nset ylabel 'req/s'\nset yrange [0:*]\n" + panels +
         "unset multiplot\n");
    return order ? 0 : 1;
}

int run_lccp(const options& o) {
    const double duration = o.duration > 0 ? o.duration : 30;
    std::ofstream csv(o.out + "/lccp.csv");
    csv << "nodes,ideal_rps,lccp_rps,ratio\n";
    std::printf("LCCP (seeds/000): N nodes, 200 flooding SURGE users per node, %.0f s (first 5 s dropped)\n", duration);
    std::printf("%5s %10s %10s %7s\n", "nodes", "ideal/s", "rr/s", "ratio");
    for (unsigned n = 1; n <= o.max_nodes; ++n) {
        sim::sim_config c;
        c.seed = o.seed;
        c.servers.assign(n, sim::server_config{});
        c.users_per_entry.assign(n, 200);
        c.workload.think_k = 0.01;  // flooding clients (the paper saturates each node)
        c.per_request_s = 0.003;
        c.per_byte_s = 10e-9;
        c.warmup_s = 5;
        c.duration_s = duration;
        c.policy = "none";  // ideal: every client talks to its own server, nothing in between
        const sim::sim_result ideal = sim::simulate(c);
        c.policy = "rr";  // LCCP: one dispatcher, round robin, TCP handoff on every connection
        c.front_end_cost_s = 20e-6;
        c.handoff_cost_s = 100e-6;
        const sim::sim_result lccp = sim::simulate(c);
        std::printf("%5u %10.1f %10.1f %7.3f\n", n, ideal.throughput, lccp.throughput, lccp.throughput / ideal.throughput);
        csv << n << ',' << ideal.throughput << ',' << lccp.throughput << ',' << lccp.throughput / ideal.throughput << '\n';
    }
    csv.close();
    plot(o.out, "lccp",
         "set title 'LCCP scaling: round-robin dispatcher vs ideal cluster (simulated)'\nset xlabel 'server nodes'\n"
         "set ylabel 'connections per second'\nset xtics 1\n"
         "plot '" + o.out + "/lccp.csv' every ::1 using 1:2 with linespoints lw 2 title 'ideal', '' every ::1 using 1:3 with linespoints lw 2 title 'LCCP (rr + handoff)'\n");
    return 0;
}

int run_large(const options& o) {
    std::vector<std::string> names;
    std::stringstream ss(o.policies);
    for (std::string p; std::getline(ss, p, ',');)
        if (!p.empty()) names.push_back(p);
    std::vector<sim::server_config> servers(o.servers);
    double speed = 0;
    for (unsigned i = 0; i < o.servers; ++i) {
        const std::uint32_t s = 1U << (i % 3);  // speeds 1, 2, 4
        servers[i] = {static_cast<double>(s), s};
        speed += s;
    }
    sim::sim_config base;
    base.seed = o.seed;
    base.servers = servers;
    base.arrivals = sim::arrival_model::open;
    base.per_request_s = 0.2;
    base.per_byte_s = 200e-9;
    const sim::workload w = sim::workload_of(base);
    const double mean_work = base.per_request_s + base.per_byte_s * w.mean_request_size();
    base.open_rate = 0.9 * speed / mean_work;
    base.max_requests = o.requests;
    base.duration_s = static_cast<double>(o.requests) / base.open_rate;
    base.warmup_s = base.duration_s * 0.1;
    base.sample_period_s = std::max(0.1, base.duration_s / 100);
    base.dpr.max_load = 4;
    base.dpr.choice = clusternet::dpr_choice::inverse_load;
    std::ofstream csv(o.out + "/large.csv");
    csv << "policy,served,balance_max_mean,util_max_mean,imbalance,delay_mean,delay_p50,delay_p99,delay_p999,events,wall_s\n";
    std::printf("large: %u back ends (speeds 1,2,4), %llu requests per policy at %.0f req/s (90%% of capacity), %.1f s simulated\n",
                o.servers, static_cast<unsigned long long>(o.requests), base.open_rate, base.duration_s);
    std::printf("%-8s %9s %9s %9s %9s %9s %9s %9s %7s\n", "policy", "served", "max/mean", "util m/m", "delay", "p50", "p99",
                "p99.9", "wall s");
    for (const std::string& p : names) {
        sim::sim_config c = base;
        c.policy = p;
        const auto t0 = std::chrono::steady_clock::now();
        const sim::sim_result r = sim::simulate(c);
        const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("%-8s %9llu %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %7.2f\n", p.c_str(),
                    static_cast<unsigned long long>(r.measured), r.balance_max_mean, r.utilisation_max_mean, r.delay.mean,
                    r.delay.p50, r.delay.p99, r.delay.p999, wall);
        csv << p << ',' << r.measured << ',' << r.balance_max_mean << ',' << r.utilisation_max_mean << ','
            << r.imbalance_index << ',' << r.delay.mean << ',' << r.delay.p50 << ',' << r.delay.p99 << ',' << r.delay.p999
            << ',' << r.events << ',' << wall << '\n';
    }
    csv.close();
    plot(o.out, "large",
         "set title 'Policies at " + std::to_string(o.servers) + " back ends: p99 delay and balance'\nset style data histograms\n"
         "set style histogram clustered\nset style fill solid 0.8\nset ylabel 'p99 delay (s)'\nset y2label 'served per weight, max/mean'\n"
         "set y2tics\nset ytics nomirror\nset logscale y\nset xtics rotate by -45\n"
         "plot '" + o.out + "/large.csv' every ::1 using 8:xtic(1) title 'p99 delay', '' every ::1 using 0:3 axes x1y2 with linespoints lw 2 title 'max/mean'\n");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    std::vector<std::string> args(argv + 1, argv + argc);
    try {
        for (std::size_t i = 0; i < args.size(); ++i) {
            const std::string& a = args[i];
            const auto value = [&]() -> const std::string& {
                if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs a value");
                return args[++i];
            };
            if (a == "--help" || a == "-h") {
                usage(std::cout);
                return 0;
            } else if (a == "--seed") o.seed = std::stoull(value());
            else if (a == "--out") o.out = value();
            else if (a == "--duration") o.duration = std::stod(value());
            else if (a == "--scale") o.scale = std::stod(value());
            else if (a == "--max-nodes") o.max_nodes = static_cast<unsigned>(std::stoul(value()));
            else if (a == "--servers") o.servers = static_cast<unsigned>(std::stoul(value()));
            else if (a == "--requests") o.requests = std::stoull(value());
            else if (a == "--policies") o.policies = value();
            else if (!a.empty() && a[0] != '-' && o.experiment.empty()) o.experiment = a;
            else throw std::invalid_argument("unknown argument " + a);
        }
        if (o.experiment.empty()) {
            usage(std::cerr);
            return 2;
        }
        if (!(o.scale > 0) || o.servers == 0 || o.max_nodes == 0 || o.requests == 0)
            throw std::invalid_argument("--scale, --servers, --max-nodes and --requests must be above 0");
        std::filesystem::create_directories(o.out);
        if (o.experiment == "dpr") return run_dpr(o);
        if (o.experiment == "lccp") return run_lccp(o);
        if (o.experiment == "large") return run_large(o);
        throw std::invalid_argument("unknown experiment " + o.experiment + " (dpr, lccp, large)");
    } catch (const std::exception& e) {
        std::cerr << "cn-cluster-sim: " << e.what() << "\n(try --help)\n";
        return 2;
    }
}
