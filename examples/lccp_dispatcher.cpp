// cn-lccp-dispatcher: the dispatcher of a TCP-handoff cluster (the LCCP paper, seeds/000: the
// distributor on the node that accepted a connection asks it which node should serve the
// request). It answers LCCP dispatch_requests on raw IP with a content-aware policy, LARD by
// URL path by default (Pai et al., ASPLOS 1998; schedulers/content.hpp), or any layer-4 policy by
// name; the nodes' load reports keep its view of their load current.
//
//   cn-lccp-dispatcher --address IP --nodes IP[,IP...] [--policy lard|rr|...] [--key HEX32]
//                      [--protocol N] [--lard-low N] [--lard-high N] [--stats-interval-s N]
//
// Per dispatch_request from a node (a member; the tag checked by lccp::inbound, rejections
// counted by reason): the policy picks a node for the request's content key (the URL path the
// distributor sends), and a dispatch_reply names that node's address in Data, for the same
// Socket ID. LARD's load is each node's live connections: the dispatcher counts one up for every
// connection it assigns, and every load_report (a node's active connections, every 100 ms by
// default) sets the count to what the node says. A dispatch_reply can be lost (LCCP does not
// retransmit); the distributor repeats its request, and the dispatcher answers every copy.
//
// Runs until SIGINT or SIGTERM; prints `final: ...` (requests, replies per node, rejections).
#include <clusternet/cluster_view.hpp>
#include <clusternet/lccp.hpp>

#include "content_policy.hpp"
#include "endpoint_arg.hpp"
#include "lccp_socket.hpp"
#include "program_main.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace cn = clusternet;
namespace lccp = clusternet::lccp;

namespace {

struct options {
    cn::ipv4_address address;
    std::vector<cn::ipv4_address> nodes;
    std::string policy = "lard";
    cn::siphash_key key{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
    int protocol = lccp::default_ip_protocol;
    double lard_low = 25, lard_high = 65;
    int stats_interval_s = 0;
};

class dispatcher {
public:
    dispatcher(asio::io_context& io, const options& o)
        : opt_(o), stats_timer_(io), policy_(o.policy, o.lard_low, o.lard_high), raw_(io, o.address, o.protocol, o.key, members_of(o)) {
        for (const auto n : opt_.nodes) {
            cn::member_config mc;
            mc.address = cn::ipv6_address::v4_mapped(n);
            view_.add_member(mc);
        }
        reader_ = view_.make_reader();
        replies_.assign(opt_.nodes.size(), 0);
    }

    void start() {
        raw_.start([this](cn::ipv4_address from, const lccp::message& m) { handle(from, m); });
        if (opt_.stats_interval_s > 0)
            examples::every(stats_timer_, std::chrono::seconds(opt_.stats_interval_s), [this] { print_stats("stats"); });
    }

    void print_stats(const char* tag) {
        std::string per;
        for (std::size_t i = 0; i < opt_.nodes.size(); ++i)
            per += " " + opt_.nodes[i].to_string() + "=" + std::to_string(replies_[i]);
        const auto& l = raw_.stats();
        std::printf("%s: requests %llu replies %llu load_reports %llu no_node %llu lccp_accepted %llu lccp_rejected %llu "
                    "bad_tag %llu not_member %llu; replies by node:%s\n",
                    tag, u(requests_), u(replied_), u(reports_), u(no_node_), u(l.accepted), u(l.rejected_total()),
                    u(l.rejected_for(lccp::error::bad_tag)), u(l.rejected_for(lccp::error::not_member)), per.c_str());
        std::fflush(stdout);
    }

private:
    static unsigned long long u(std::uint64_t v) { return v; }

    static lccp::member_filter<> members_of(const options& o) {
        lccp::member_filter<> m;
        for (const auto n : o.nodes)
            if (!m.add(n)) throw std::invalid_argument("too many nodes (at most 64)");
        return m;
    }

    std::size_t index_of(cn::ipv4_address a) const {
        for (std::size_t i = 0; i < opt_.nodes.size(); ++i)
            if (opt_.nodes[i] == a) return i;
        return opt_.nodes.size();
    }


    void handle(cn::ipv4_address from, const lccp::message& m) {
        const std::size_t sender = index_of(from);
        if (sender == opt_.nodes.size()) return;
        if (m.cmd == lccp::command::load_report) {
            ++reports_;
            // The node's own count replaces the dispatcher's estimate.
            const auto id = static_cast<cn::member_id>(sender);
            const std::uint32_t want = lccp::get_load(m).active_connections;
            for (std::uint32_t have = view_.live_flows(id); have < want; ++have) view_.flow_opened(id);
            for (std::uint32_t have = view_.live_flows(id); have > want; --have) view_.flow_closed(id);
            return;
        }
        if (m.cmd != lccp::command::dispatch_request) return;
        ++requests_;
        const auto ck = lccp::content_key(m);
        key_.assign(reinterpret_cast<const char*>(ck.head.data()), ck.head.size());
        key_.append(reinterpret_cast<const char*>(ck.tail.data()), ck.tail.size());
        const cn::cluster_snapshot& snap = reader_.refresh();
        cn::refresh_scheduler(policy_, snap, generation_);
        cn::flow_key4 k4{};
        k4.src = m.socket.client_ip.value;
        k4.sport = m.socket.client_port;
        k4.dst = m.socket.server_ip.value;
        k4.dport = m.socket.server_port;
        k4.protocol = 6;
        const cn::flow_key key(k4);
        cn::pick_input in;
        in.content = key_;
        in.hash = cn::content_hash(key_);
        in.key = &key;
        in.now_ns = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
        const cn::member_id chosen = policy_.pick(snap, in);
        if (chosen == cn::no_member || chosen >= opt_.nodes.size()) {
            ++no_node_;
            return;  // the distributor times out and serves the connection itself
        }
        view_.flow_opened(chosen);
        lccp::message r;
        r.receptor = lccp::component::distributor;
        r.cmd = lccp::command::dispatch_reply;
        r.data = opt_.nodes[chosen].value;
        r.socket = m.socket;
        if (raw_.send(from, r)) {
            ++replied_;
            ++replies_[chosen];
        }
    }

    options opt_;
    asio::steady_timer stats_timer_;
    cn::cluster_view view_;
    cn::cluster_reader reader_;
    examples::content_policy policy_;
    std::uint64_t generation_ = 0;
    examples::lccp_socket raw_;
    std::string key_;
    std::vector<std::uint64_t> replies_;
    std::uint64_t requests_ = 0, replied_ = 0, reports_ = 0, no_node_ = 0;
};

void usage() {
    std::fprintf(stderr,
                 "usage: cn-lccp-dispatcher --address IP --nodes IP[,IP...] [--policy lard|rr|wrr|lc|...]\n"
                 "                          [--key HEX32] [--protocol N] [--lard-low N] [--lard-high N]\n"
                 "                          [--stats-interval-s N]\n");
}

options parse(int argc, char** argv) {
    options o;
    bool have_addr = false;
    examples::for_each_option(argc, argv, usage, [&](const std::string& a, const std::string& v) {
        if (a == "--address") {
            o.address = examples::parse_v4(v);
            have_addr = true;
        } else if (a == "--nodes") {
            const auto more = examples::parse_v4_list(v);
            o.nodes.insert(o.nodes.end(), more.begin(), more.end());
        } else if (a == "--policy") o.policy = v;
        else if (a == "--key") {
            const auto k = lccp::parse_key(v);
            if (!k) throw std::invalid_argument("--key wants 32 hexadecimal digits");
            o.key = *k;
        } else if (a == "--protocol") o.protocol = examples::int_arg(a, v, 1, 254);
        else if (a == "--lard-low") o.lard_low = examples::number_arg(a, v, 0, 1e9, true);
        else if (a == "--lard-high") o.lard_high = examples::number_arg(a, v, 0, 1e9, true);
        else if (a == "--stats-interval-s") o.stats_interval_s = examples::int_arg(a, v, 0, 86400);
        else throw std::invalid_argument("unknown option " + a);
    });
    if (!have_addr || o.nodes.empty()) throw std::invalid_argument("--address and --nodes are required");
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    return examples::signal_main("cn-lccp-dispatcher", argc, argv, parse, usage, [](const options& o, asio::io_context& io) {
        dispatcher d(io, o);
        d.start();
        std::printf("cn-lccp-dispatcher: %s, %zu node(s), policy %s\n", o.address.to_string().c_str(), o.nodes.size(),
                    o.policy.c_str());
        std::fflush(stdout);
        io.run();
        d.print_stats("final");
    });
}
