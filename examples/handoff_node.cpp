// cn-handoff-node: a back-end node of a TCP-handoff cluster (the LCCP paper, seeds/000, section 3:
// a layer-4 switch spreads connections, the node that accepts one reads the request, asks a
// dispatcher which node should serve it, and hands the connection off when that is another
// node; a forwarder on the first node passes the client's later packets to the new owner, which
// answers the client directly). One process per node plays the paper's distributor and
// forwarder; the node's ordinary HTTP server (nginx) listens on an upstream address and never
// knows a handoff took place.
//
//   cn-handoff-node --listen VIP:PORT --address IP --dispatcher IP --peers IP[,IP...]
//                   --upstream IP:PORT [--device DEV] [--key HEX32] [options]
//
// For every connection accepted on VIP:PORT (the switch's direct routing brings the SYN here):
//  1. peek at the request head without reading it (MSG_PEEK: it stays in the receive queue, so
//     a handoff carries it), parse it (http_head.hpp), and send the dispatcher a dispatch_request
//     keyed by the URL path; repeat it every --dispatch-timeout-ms, at most --dispatch-tries
//     times (LCCP never retransmits), then serve locally;
//  2. on a dispatch_reply naming this node (or no peer): splice the connection to the upstream
//     HTTP server (splice_relay.hpp);
//  3. naming a peer: hand the connection off as cn-handoff-demo does (docs/lccp.md): freeze and
//     capture it with TCP_REPAIR, send handoff_request and its continuation chunks, and wait for
//     the peer's handoff_reply. On ok: install a forwarding entry (the client's address and port
//     -> the peer) in this node's netdev-ingress nftables map, close the frozen socket silently
//     (no FIN, no reset) and send handoff_commit ok, on which the peer's frozen copy goes live.
//     Without an ok reply by 2 x --deadline-ms: unfreeze and serve locally, and answer any late
//     reply with handoff_commit refused. Only one copy is ever live.
// As the receiving peer: reassemble the request and chunks, restore a frozen copy bound to
// VIP:PORT (repair mode may bind beside the listener), answer handoff_reply (repeated every
// --deadline-ms / 4 until the decision arrives; dropped silently after 20 x --deadline-ms
// without one), activate it on commit and splice it to the local upstream. When such a
// connection ends, tell the old owner forward_remove, which deletes its forwarding entry (the
// entries also time out after --forward-timeout-s).
// At most 4096 incoming handoffs at once and 256 MiB of their queued bytes; past that, or for a
// state that does not decode, the reply is refused (or bad_state) and the old owner keeps it.
//
// The forwarder: an nftables table `netdev cn_handoff` on --device (the node's LAN interface)
// with a map `owners` (client address . client port -> new owner) and one rule that sends a
// matching packet for VIP:PORT to the owner with `fwd ip to ... device DEV`: the client's later
// packets, which the switch still sends here, reach the new owner before this node's TCP stack
// could answer them with a reset. The table is made at start (by `nft -f -`) and deleted at
// exit; entries are added and removed as nfnetlink batches (nft_owner_map.hpp).
//
// Every LCCP message must come from the dispatcher or a peer and carry the cluster key's tag
// (lccp::inbound); rejections are counted by reason. A load_report (active connections) goes to
// the dispatcher every --report-ms, so its LARD policy sees each node's load.
//
// Options:
//   --switch IP              the layer-4 switch (cn-lsmac with `lccp = IP`): after each handoff
//                            it is sent forward_install, and re-points the connection's session
//                            to the new owner, so that the client's packets stop going through
//                            this node (best effort: the forwarding entry stays as the fallback)
//   --key HEX32              the cluster key (32 hex digits; default the demo key 000102..0f)
//   --protocol N             LCCP's IP protocol number (default 253)
//   --device DEV             the LAN interface for the forwarder (default lan0)
//   --deadline-ms N          handoff deadline (default 200: the receiver waits this long for
//                            the chunks, the sender twice this for the reply)
//   --dispatch-timeout-ms N  wait for a dispatch_reply before repeating the request (default 50)
//   --dispatch-tries N       dispatch_requests sent before serving locally (default 4)
//   --head-timeout-ms N      a request head must arrive within this (default 5000; else the
//                            connection is served locally, and the upstream answers it)
//   --report-ms N            load report interval (default 100)
//   --forward-timeout-s N    forwarding entries expire after this (default 600)
//   --stats-interval-s N     a stats line every N seconds (0, the default: only at exit)
// Runs until SIGINT or SIGTERM; prints `final: ...` counters on exit. Single-threaded (one
// io_context); needs CAP_NET_ADMIN and CAP_NET_RAW (TCP_REPAIR, raw sockets, nftables).
#include <clusternet/handoff_state.hpp>
#include <clusternet/http_head.hpp>
#include <clusternet/lccp.hpp>
#include <clusternet/splice_relay.hpp>
#include <clusternet/tcp_repair.hpp>

#include "endpoint_arg.hpp"
#include "lccp_socket.hpp"
#include "nft_owner_map.hpp"
#include "program_main.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace asio = boost::asio;
namespace cn = clusternet;
namespace lccp = clusternet::lccp;
namespace repair = clusternet::tcp_repair;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

struct options {
    tcp::endpoint listen;
    cn::ipv4_address address, dispatcher;
    std::optional<cn::ipv4_address> l4_switch;  ///< told forward_install after each handoff
    std::vector<cn::ipv4_address> peers;
    tcp::endpoint upstream;
    std::string device = "lan0";
    cn::siphash_key key{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
    int protocol = lccp::default_ip_protocol;
    int deadline_ms = 200, dispatch_timeout_ms = 50, dispatch_tries = 4, head_timeout_ms = 5000, report_ms = 100;
    int forward_timeout_s = 600, stats_interval_s = 0;
};

struct counters {
    std::uint64_t accepted = 0, served_local = 0, handed_off = 0, resumed = 0, received = 0, restored_live = 0,
                  dropped_copies = 0, restore_failed = 0, refused_handoffs = 0, switch_told = 0, dispatch_timeouts = 0, dispatch_replies = 0,
                  bad_heads = 0, forwards_installed = 0, forwards_removed = 0, forward_errors = 0,
                  upstream_failures = 0;
    // Handoffs this node made: capture to the ok reply (the new owner has a frozen copy), and the
    // forwarding entry's installation, in microseconds.
    double handoff_us_sum = 0, handoff_us_max = 0, forward_us_sum = 0, forward_us_max = 0;
    std::uint64_t active = 0;
};

cn::ipv4_address v4_of(const asio::ip::address& a) {
    if (!a.is_v4()) throw std::invalid_argument("cn-handoff-node speaks IPv4 only, got " + a.to_string());
    return cn::ipv4_address(a.to_v4().to_uint());
}

class node;

/// A client connection this node accepted: head, dispatch, then local service or a handoff.
class connection : public std::enable_shared_from_this<connection> {
public:
    connection(node& n, tcp::socket s);
    void start();
    void on_dispatch_reply(cn::ipv4_address chosen);
    void on_handoff_reply(bool ok, cn::ipv4_address from);
    const lccp::socket_id& socket_id() const noexcept { return sid_; }

private:
    void peek();
    void dispatch();
    void serve_local();
    void hand_off(cn::ipv4_address to);
    void decide(bool commit);
    void linger_then_forget();

    node& n_;
    tcp::socket sock_;
    asio::steady_timer timer_, linger_;
    lccp::socket_id sid_{};
    std::string path_;
    std::vector<char> head_ = std::vector<char>(8192);
    std::uint32_t request_id_ = 0;
    int tries_ = 0;
    enum class phase { head, dispatching, handing_off, committed, resumed, local } phase_ = phase::head;
    cn::ipv4_address peer_;
    std::uint16_t handoff_id_ = 0;
    repair::captured cap_;
    clock_type::time_point t_capture_;
};

/// A handoff another node sends this one: reassembly, the frozen copy, the decision.
struct incoming {
    cn::ipv4_address from;
    std::uint16_t id = 0;
    // Exactly the handoff's queued bytes (its request says how many), left uninitialised: a
    // buffer of the largest size zero-filled cost 10 ms per handoff.
    std::unique_ptr<std::byte[]> buf;
    std::size_t size = 0;
    cn::handoff::reassembler reasm;
    asio::steady_timer timer;
    clock_type::time_point give_up;
    repair::owned_fd copy;
    enum class phase { collecting, prepared, done } ph = phase::collecting;
    lccp::status outcome = lccp::status::incomplete;
    incoming(asio::io_context& io, std::size_t n)
        : buf(new std::byte[n == 0 ? 1 : n]), size(n), reasm(std::span<std::byte>(buf.get(), n)), timer(io) {}
};

class node {
public:
    node(asio::io_context& io, options o)
        : io_(io), opt_(std::move(o)), acceptor_(io), report_timer_(io), stats_timer_(io),
          fwd_(opt_.device, v4_of(opt_.listen.address()), opt_.listen.port(), opt_.forward_timeout_s),
          raw_(io, opt_.address, opt_.protocol, opt_.key, members_of(opt_)) {
        acceptor_.open(tcp::v4());
        acceptor_.set_option(tcp::acceptor::reuse_address(true));
        acceptor_.bind(opt_.listen);
        acceptor_.listen(4096);
        relay_.idle_timeout = std::chrono::seconds(300);
    }

    void start() {
        accept();
        raw_.start([this](cn::ipv4_address from, const lccp::message& m) { handle(from, m); });
        report();
        examples::every(report_timer_, milliseconds(opt_.report_ms), [this] { report(); });
        if (opt_.stats_interval_s > 0)
            examples::every(stats_timer_, std::chrono::seconds(opt_.stats_interval_s), [this] { print_stats("stats"); });
    }

    // --- for connections ---
    const options& opt() const noexcept { return opt_; }
    counters& c() noexcept { return c_; }
    asio::io_context& io() noexcept { return io_; }
    bool is_peer(cn::ipv4_address a) const {
        for (auto p : opt_.peers)
            if (p == a) return true;
        return false;
    }
    bool send(cn::ipv4_address to, const lccp::message& m) { return raw_.send(to, m); }
    /// Registers a connection waiting for a dispatch_reply, which names it by its Socket ID.
    std::uint32_t new_request(std::shared_ptr<connection> c) {
        const std::uint64_t k = client_key(c->socket_id());
        dispatching_[k] = std::move(c);
        return ++next_request_;
    }
    void end_request(const lccp::socket_id& s) { dispatching_.erase(client_key(s)); }
    std::uint16_t new_handoff(std::shared_ptr<connection> c) {
        std::uint16_t id;
        do id = ++next_handoff_;
        while (id == 0 || outgoing_.count(id) != 0);
        outgoing_[id] = std::move(c);
        return id;
    }
    void end_handoff(std::uint16_t id) { outgoing_.erase(id); }
    /// Installs the forwarding entry of a connection handed off to `owner`.
    bool forward(const lccp::socket_id& s, cn::ipv4_address owner) {
        const std::uint64_t k = client_key(s);
        const bool had = forwarding_.count(k) != 0;  // a stale entry of an earlier connection: replaced
        if (!fwd_.add(s.client_ip, s.client_port, owner, had)) {
            forwarding_.erase(k);
            return false;
        }
        forwarding_[k] = clock_type::now();
        return true;
    }
    const std::string& forward_error() const noexcept { return fwd_.error(); }
    /// Asks the layer-4 switch (when there is one) to send a handed-off connection's packets to
    /// its new owner directly. Best effort: if it is lost, the forwarding entry carries them.
    void tell_switch(const lccp::socket_id& s, cn::ipv4_address owner) {
        if (!opt_.l4_switch) return;
        lccp::message m;
        m.receptor = lccp::component::l4_switch;
        m.cmd = lccp::command::forward_install;
        m.data = owner.value;
        m.socket = s;
        if (send(*opt_.l4_switch, m)) ++c_.switch_told;
    }

    /// Splices `client` to the upstream HTTP server; `old_owner` (when handed off to this node)
    /// hears forward_remove once the connection ends.
    void serve(tcp::socket client, std::optional<std::pair<cn::ipv4_address, lccp::socket_id>> old_owner) {
        auto up = std::make_shared<tcp::socket>(io_);
        auto cl = std::make_shared<tcp::socket>(std::move(client));
        ++c_.active;
        up->async_connect(opt_.upstream, [this, up, cl, old_owner](const boost::system::error_code& ec) {
            if (ec) {
                ++c_.upstream_failures;
                finished(old_owner);
                boost::system::error_code ig;
                const ::linger lg{1, 0};
                (void)::setsockopt(cl->native_handle(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
                cl->close(ig);
                return;
            }
            cn::tcp_relay::start(std::move(*cl), std::move(*up), {}, relay_,
                                 [this, old_owner](const cn::relay_result&) { finished(old_owner); });
        });
    }

    void print_stats(const char* tag) {
        const auto& l = raw_.stats();
        std::printf("%s: accepted %llu served_local %llu handed_off %llu resumed %llu received %llu restored_live %llu "
                    "dropped_copies %llu restore_failed %llu refused_handoffs %llu dispatch_replies %llu dispatch_timeouts %llu bad_heads %llu "
                    "forwards_installed %llu forwards_removed %llu forward_errors %llu switch_told %llu upstream_failures %llu "
                    "send_errors %llu active %llu lccp_accepted %llu lccp_rejected %llu bad_tag %llu not_member %llu "
                    "handoff_us_avg %.1f handoff_us_max %.1f forward_us_avg %.1f forward_us_max %.1f\n",
                    tag, u(c_.accepted), u(c_.served_local), u(c_.handed_off), u(c_.resumed), u(c_.received),
                    u(c_.restored_live), u(c_.dropped_copies), u(c_.restore_failed), u(c_.refused_handoffs), u(c_.dispatch_replies),
                    u(c_.dispatch_timeouts), u(c_.bad_heads), u(c_.forwards_installed), u(c_.forwards_removed),
                    u(c_.forward_errors), u(c_.switch_told), u(c_.upstream_failures), u(raw_.send_errors()), u(c_.active), u(l.accepted),
                    u(l.rejected_total()), u(l.rejected_for(lccp::error::bad_tag)), u(l.rejected_for(lccp::error::not_member)),
                    c_.handed_off ? c_.handoff_us_sum / static_cast<double>(c_.handed_off) : 0.0, c_.handoff_us_max,
                    c_.handed_off ? c_.forward_us_sum / static_cast<double>(c_.handed_off) : 0.0, c_.forward_us_max);
        std::fflush(stdout);
    }

private:
    static unsigned long long u(std::uint64_t v) { return v; }

    static lccp::member_filter<> members_of(const options& o) {
        lccp::member_filter<> m;
        for (auto p : o.peers)
            if (!m.add(p)) throw std::invalid_argument("too many peers (at most 63)");
        if (!m.add(o.dispatcher)) throw std::invalid_argument("too many peers (at most 63)");
        return m;
    }

    void finished(const std::optional<std::pair<cn::ipv4_address, lccp::socket_id>>& old_owner) {
        --c_.active;
        if (!old_owner) return;
        lccp::message m;
        m.receptor = lccp::component::forwarder;
        m.cmd = lccp::command::forward_remove;
        m.socket = old_owner->second;
        (void)send(old_owner->first, m);
    }

    void accept() {
        acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket s) {
            if (ec == asio::error::operation_aborted) return;
            if (!ec) {
                ++c_.accepted;
                std::make_shared<connection>(*this, std::move(s))->start();
            }
            accept();
        });
    }

    void forget_expired_forwards() {
        const auto now = clock_type::now();
        if (now < next_forward_sweep_) return;
        next_forward_sweep_ = now + std::chrono::seconds(1);
        const auto limit = std::chrono::seconds(opt_.forward_timeout_s);
        std::erase_if(forwarding_, [&](const auto& e) { return now - e.second >= limit; });
    }

    void report() {
        forget_expired_forwards();
        lccp::message m;
        m.receptor = lccp::component::dispatcher;
        m.cmd = lccp::command::load_report;
        m.data = ++report_seq_;
        lccp::set_load(m, {static_cast<std::uint32_t>(c_.active), 0, 1});
        (void)send(opt_.dispatcher, m);
    }


    void handle(cn::ipv4_address from, const lccp::message& m) {
        switch (m.cmd) {
            case lccp::command::dispatch_reply: {
                if (from != opt_.dispatcher) return;
                const auto it = dispatching_.find(client_key(m.socket));
                if (it == dispatching_.end()) return;
                auto c = it->second;
                dispatching_.erase(it);
                if (c->socket_id() != m.socket) return;
                ++c_.dispatch_replies;
                c->on_dispatch_reply(cn::ipv4_address(m.data));
                return;
            }
            case lccp::command::handoff_reply: {
                const auto it = outgoing_.find(lccp::handoff_id_of(m.data));
                if (it == outgoing_.end()) return;
                if (it->second->socket_id() != m.socket) return;
                it->second->on_handoff_reply(lccp::handoff_low_of(m.data) == static_cast<std::uint16_t>(lccp::status::ok), from);
                return;
            }
            case lccp::command::handoff_request:
            case lccp::command::handoff_data: on_handoff_message(from, m); return;
            case lccp::command::handoff_commit: on_commit(from, m); return;
            case lccp::command::forward_remove:
                if (forwarding_.erase(client_key(m.socket)) != 0 && fwd_.remove(m.socket.client_ip, m.socket.client_port))
                    ++c_.forwards_removed;
                return;
            default: return;
        }
    }

    // dispatch_reply carries the chosen node in Data; the request is found by its Socket ID
    // (the service address and port are the same for every connection of this node).
    static std::uint64_t client_key(const lccp::socket_id& s) { return (std::uint64_t{s.client_ip.value} << 16) | s.client_port; }

    static std::uint64_t in_key(cn::ipv4_address from, std::uint16_t id) { return (std::uint64_t{from.value} << 16) | id; }

    void on_handoff_message(cn::ipv4_address from, const lccp::message& m) {
        if (!is_peer(from)) return;
        const std::uint64_t k = in_key(from, lccp::handoff_id_of(m.data));
        auto it = incoming_.find(k);
        if (m.cmd == lccp::command::handoff_request) {
            if (it != incoming_.end()) return;  // a replay, or a repeat: the first one counts
            // Bounded: at most max_incoming handoffs and max_incoming_bytes of queued bytes
            // at once; past that (or for a state that does not decode) the answer is a refusal.
            cn::handoff_state st;
            std::span<const std::byte> inl;
            const bool decoded = cn::handoff::decode_request(m, st, inl) == cn::handoff::error::none;
            const std::uint64_t need = decoded ? st.stream_size() : 0;
            if (!decoded || incoming_.size() >= max_incoming || need > max_incoming_bytes - incoming_bytes_) {
                ++c_.refused_handoffs;
                lccp::message r;
                r.receptor = lccp::component::distributor;
                r.cmd = lccp::command::handoff_reply;
                r.socket = m.socket;
                r.data = lccp::handoff_data_field(lccp::handoff_id_of(m.data),
                                                  static_cast<std::uint16_t>(decoded ? lccp::status::refused : lccp::status::bad_state));
                (void)send(from, r);
                return;
            }
            auto h = std::make_shared<incoming>(io_, static_cast<std::size_t>(need));
            h->from = from;
            h->id = lccp::handoff_id_of(m.data);
            if (h->reasm.start(m) != cn::handoff::error::none) return;  // cannot happen: decoded above
            incoming_bytes_ += h->size;
            ++c_.received;
            incoming_[k] = h;
            h->timer.expires_after(milliseconds(opt_.deadline_ms));
            h->timer.async_wait([this, h](const boost::system::error_code& ec) {
                if (!ec && h->ph == incoming::phase::collecting) finish_collecting(h);
            });
            if (h->reasm.complete()) finish_collecting(h);
            return;
        }
        if (it == incoming_.end() || it->second->ph != incoming::phase::collecting) return;
        cn::handoff::error why{};
        (void)it->second->reasm.add(m, why);
        if (it->second->reasm.complete()) finish_collecting(it->second);
    }

    void reply(incoming& h) {
        lccp::message m;
        m.receptor = lccp::component::distributor;
        m.cmd = lccp::command::handoff_reply;
        m.socket = h.reasm.started() ? h.reasm.state().socket : lccp::socket_id{};
        m.data = lccp::handoff_data_field(h.id, static_cast<std::uint16_t>(h.outcome));
        if (m.socket.is_complete()) (void)send(h.from, m);
    }

    void finish_collecting(const std::shared_ptr<incoming>& h) {
        h->timer.cancel();
        if (h->reasm.complete()) {
            repair::restore_options ro;
            ro.stay_frozen = true;
            std::error_code ec;
            repair::diagnostic d;
            h->copy = repair::restore(h->reasm.state(), h->reasm.stream(), ro, ec, &d);
            if (!h->copy) {
                ++c_.restore_failed;
                std::fprintf(stderr, "cn-handoff-node: restore failed: %s (%s)\n", ec.message().c_str(), d.text.c_str());
            }
            h->outcome = h->copy ? lccp::status::ok : lccp::status::restore_failed;
        }
        reply(*h);
        if (h->outcome != lccp::status::ok) {
            h->ph = incoming::phase::done;
            linger(h);
            return;
        }
        h->ph = incoming::phase::prepared;
        h->give_up = clock_type::now() + milliseconds(20 * opt_.deadline_ms);
        repeat_reply(h);
    }

    void repeat_reply(const std::shared_ptr<incoming>& h) {
        h->timer.expires_after(milliseconds(std::max(5, opt_.deadline_ms / 4)));
        h->timer.async_wait([this, h](const boost::system::error_code& ec) {
            if (ec || h->ph != incoming::phase::prepared) return;
            if (clock_type::now() >= h->give_up) {
                repair::close_silently(h->copy);
                ++c_.dropped_copies;
                h->ph = incoming::phase::done;
                linger(h);
                return;
            }
            reply(*h);
            repeat_reply(h);
        });
    }

    /// A finished incoming handoff stays known for a while, so that repeats and replays of its
    /// messages are recognised and ignored rather than taken for a new handoff.
    void linger(const std::shared_ptr<incoming>& h) {
        incoming_bytes_ -= h->size;  // the queued bytes are no longer needed
        h->size = 0;
        h->buf.reset();
        h->timer.expires_after(milliseconds(40 * opt_.deadline_ms));
        h->timer.async_wait([this, h](const boost::system::error_code& ec) {
            if (ec) return;
            const auto it = incoming_.find(in_key(h->from, h->id));
            if (it != incoming_.end() && it->second == h) incoming_.erase(it);
        });
    }

    void on_commit(cn::ipv4_address from, const lccp::message& m) {
        const auto it = incoming_.find(in_key(from, lccp::handoff_id_of(m.data)));
        if (it == incoming_.end()) return;
        auto h = it->second;
        if (h->ph != incoming::phase::prepared || m.socket != h->reasm.state().socket) return;
        h->timer.cancel();
        h->ph = incoming::phase::done;
        if (lccp::handoff_low_of(m.data) != static_cast<std::uint16_t>(lccp::status::ok)) {
            repair::close_silently(h->copy);
            ++c_.dropped_copies;
            linger(h);
            return;
        }
        std::error_code ec;
        repair::diagnostic d;
        repair::activate(h->copy.get(), h->reasm.state(), h->reasm.stream(), ec, &d);
        if (ec) {
            std::fprintf(stderr, "cn-handoff-node: activate failed: %s (%s)\n", ec.message().c_str(), d.text.c_str());
            ++c_.restore_failed;
            linger(h);
            return;  // the copy is closed with h (a reset: the connection is lost, and counted)
        }
        ++c_.restored_live;
        // This node owns the connection now. An entry of its own for the same client address
        // and port (an earlier connection's, whose forward_remove was lost) would send the
        // connection's packets away -- to the node that just handed it here, in a loop.
        if (const auto& so = h->reasm.state().socket; forwarding_.erase(client_key(so)) != 0 && fwd_.remove(so.client_ip, so.client_port))
            ++c_.forwards_removed;
        tcp::socket s(io_);
        boost::system::error_code aec;
        s.assign(tcp::v4(), h->copy.release(), aec);
        const lccp::socket_id sid = h->reasm.state().socket;
        linger(h);
        if (aec) return;
        serve(std::move(s), std::make_pair(from, sid));
    }

    asio::io_context& io_;
    options opt_;
    tcp::acceptor acceptor_;
    asio::steady_timer report_timer_, stats_timer_;
    examples::nft_owner_map fwd_;
    examples::lccp_socket raw_;
    std::unordered_map<std::uint64_t, std::shared_ptr<connection>> dispatching_;
    std::unordered_map<std::uint16_t, std::shared_ptr<connection>> outgoing_;
    std::map<std::uint64_t, std::shared_ptr<incoming>> incoming_;
    /// Client keys with a forwarding entry here, and when it was made; nftables ends an entry
    /// after --forward-timeout-s, and forget_expired_forwards() forgets it then too.
    std::unordered_map<std::uint64_t, clock_type::time_point> forwarding_;
    clock_type::time_point next_forward_sweep_{};
    std::uint32_t next_request_ = 0, report_seq_ = 0;
    std::uint16_t next_handoff_ = 0;
    std::size_t incoming_bytes_ = 0;
    static constexpr std::size_t max_incoming = 4096;
    static constexpr std::uint64_t max_incoming_bytes = 256u << 20;
    cn::relay_options relay_;
    counters c_;
};

connection::connection(node& n, tcp::socket s) : n_(n), sock_(std::move(s)), timer_(n.io()), linger_(n.io()) {
    boost::system::error_code ec;
    const auto remote = sock_.remote_endpoint(ec);
    const auto local = sock_.local_endpoint(ec);
    if (!ec && remote.address().is_v4() && local.address().is_v4()) {
        sid_.client_ip = v4_of(remote.address());
        sid_.client_port = remote.port();
        sid_.server_ip = v4_of(local.address());
        sid_.server_port = local.port();
    }
}

void connection::start() {
    timer_.expires_after(milliseconds(n_.opt().head_timeout_ms));
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
        if (!ec && self->phase_ == phase::head) self->serve_local();  // no head in time: nginx answers 408
    });
    peek();
}

// Looks at what has arrived without taking it; waits for more until the head is complete.
void connection::peek() {
    if (phase_ != phase::head) return;
    const ssize_t n = ::recv(sock_.native_handle(), head_.data(), head_.size(), MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {  // gone before its request
        phase_ = phase::local;
        timer_.cancel();
        boost::system::error_code ig;
        sock_.close(ig);
        return;
    }
    if (n > 0) {
        const auto r = cn::parse_http_request_head(std::string_view(head_.data(), static_cast<std::size_t>(n)));
        if (r.status == cn::http_head_status::complete) {
            path_ = std::string(r.head.path);
            dispatch();
            return;
        }
        if (r.status != cn::http_head_status::incomplete || static_cast<std::size_t>(n) == head_.size()) {
            ++n_.c().bad_heads;  // the upstream server answers it (400, 431, ...)
            serve_local();
            return;
        }
    }
    sock_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](const boost::system::error_code& ec) {
        if (!ec) self->peek();
    });
}

void connection::dispatch() {
    phase_ = phase::dispatching;
    if (tries_ == n_.opt().dispatch_tries || !sid_.is_complete()) {
        if (tries_ > 0) ++n_.c().dispatch_timeouts;
        serve_local();
        return;
    }
    ++tries_;
    if (request_id_ == 0) request_id_ = n_.new_request(shared_from_this());
    lccp::message m;
    m.receptor = lccp::component::dispatcher;
    m.cmd = lccp::command::dispatch_request;
    m.data = request_id_;
    m.socket = sid_;
    const std::string_view key = path_.empty() ? std::string_view("/") : std::string_view(path_);
    if (lccp::set_content_key(m, std::as_bytes(std::span(key.data(), std::min(key.size(), lccp::max_content_key)))) !=
        lccp::error::none) {
        serve_local();
        return;
    }
    (void)n_.send(n_.opt().dispatcher, m);
    timer_.expires_after(milliseconds(n_.opt().dispatch_timeout_ms));
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
        if (!ec && self->phase_ == phase::dispatching) self->dispatch();
    });
}

void connection::on_dispatch_reply(cn::ipv4_address chosen) {
    if (phase_ != phase::dispatching) return;
    timer_.cancel();
    if (chosen == n_.opt().address || !n_.is_peer(chosen)) serve_local();
    else hand_off(chosen);
}

void connection::serve_local() {
    if (request_id_ != 0) n_.end_request(sid_);
    timer_.cancel();
    if (phase_ != phase::resumed) phase_ = phase::local;
    ++n_.c().served_local;
    n_.serve(std::move(sock_), std::nullopt);
}

void connection::hand_off(cn::ipv4_address to) {
    std::error_code ec;
    repair::diagnostic d;
    t_capture_ = clock_type::now();
    cap_ = repair::capture(sock_.native_handle(), ec, &d);
    if (ec) {
        std::fprintf(stderr, "cn-handoff-node: capture failed: %s (%s); serving locally\n", ec.message().c_str(), d.text.c_str());
        repair::unfreeze(sock_.native_handle(), ec, &d, &cap_.state);
        phase_ = phase::resumed;
        ++n_.c().resumed;
        serve_local();
        return;
    }
    phase_ = phase::handing_off;
    peer_ = to;
    handoff_id_ = n_.new_handoff(shared_from_this());
    lccp::message m;
    if (cn::handoff::make_request(cap_.state, cap_.stream, handoff_id_, m) == cn::handoff::error::none) {
        (void)n_.send(to, m);
        const std::uint64_t chunks = cn::handoff::chunk_count(cap_.state);
        for (std::uint64_t k = 0; k < chunks; ++k)
            if (cn::handoff::make_chunk(cap_.state, cap_.stream, handoff_id_, k, m) == cn::handoff::error::none) (void)n_.send(to, m);
    }
    timer_.expires_after(milliseconds(2 * n_.opt().deadline_ms));
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
        if (e || self->phase_ != phase::handing_off) return;
        // No ok reply in time: carry on here, and tell the peer to drop any copy it made.
        std::error_code uec;
        repair::diagnostic ud;
        repair::unfreeze(self->sock_.native_handle(), uec, &ud, &self->cap_.state);
        self->phase_ = phase::resumed;
        ++self->n_.c().resumed;
        self->decide(false);
        self->linger_then_forget();
        self->serve_local();
    });
}

void connection::on_handoff_reply(bool ok, cn::ipv4_address from) {
    if (from != peer_) return;
    if (phase_ == phase::handing_off && ok) {
        timer_.cancel();
        const auto t_reply = clock_type::now();
        // The forwarding entry first: from here on the client's packets that still reach this
        // node go to the new owner, and this node's stack never sees them (no reset).
        if (n_.forward(cap_.state.socket, peer_)) {
            ++n_.c().forwards_installed;
        } else {
            // Without the entry the client's later packets would meet this node's stack, which
            // would reset them: the handoff is called off, and the connection carries on here.
            ++n_.c().forward_errors;
            std::fprintf(stderr, "cn-handoff-node: forwarding entry: %s; serving locally\n", n_.forward_error().c_str());
            std::error_code ec;
            repair::diagnostic d;
            repair::unfreeze(sock_.native_handle(), ec, &d, &cap_.state);
            phase_ = phase::resumed;
            ++n_.c().resumed;
            decide(false);
            linger_then_forget();
            serve_local();
            return;
        }
        const auto t_fwd = clock_type::now();
        boost::system::error_code ig;
        sock_.close(ig);  // in repair mode: no FIN, no reset
        phase_ = phase::committed;
        n_.tell_switch(cap_.state.socket, peer_);
        auto& c = n_.c();
        ++c.handed_off;
        const double h = std::chrono::duration<double, std::micro>(t_reply - t_capture_).count();
        const double f = std::chrono::duration<double, std::micro>(t_fwd - t_reply).count();
        c.handoff_us_sum += h;
        c.handoff_us_max = std::max(c.handoff_us_max, h);
        c.forward_us_sum += f;
        c.forward_us_max = std::max(c.forward_us_max, f);
        decide(true);
        linger_then_forget();
    } else if (phase_ == phase::handing_off) {  // the peer could not restore it: carry on here
        timer_.cancel();
        std::error_code ec;
        repair::diagnostic d;
        repair::unfreeze(sock_.native_handle(), ec, &d, &cap_.state);
        phase_ = phase::resumed;
        ++n_.c().resumed;
        linger_then_forget();
        serve_local();
    } else if (ok) {
        decide(phase_ == phase::committed);  // a repeated reply: the decision again
    }
}

void connection::decide(bool commit) {
    lccp::message m;
    m.receptor = lccp::component::distributor;
    m.cmd = lccp::command::handoff_commit;
    m.socket = cap_.state.socket;
    m.data = lccp::handoff_data_field(handoff_id_, static_cast<std::uint16_t>(commit ? lccp::status::ok : lccp::status::refused));
    (void)n_.send(peer_, m);
}


// The handoff's entry stays a while after the decision, so that a repeated handoff_reply (the
// peer did not hear the decision) gets it again; then it is forgotten.
void connection::linger_then_forget() {
    linger_.expires_after(milliseconds(40 * n_.opt().deadline_ms));
    linger_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
        if (!ec) self->n_.end_handoff(self->handoff_id_);
    });
}

void usage() {
    std::fprintf(stderr,
                 "usage: cn-handoff-node --listen VIP:PORT --address IP --dispatcher IP --peers IP[,IP...]\n"
                 "                       --upstream IP:PORT [--switch IP] [--device DEV] [--key HEX32] [--protocol N]\n"
                 "                       [--deadline-ms N] [--dispatch-timeout-ms N] [--dispatch-tries N]\n"
                 "                       [--head-timeout-ms N] [--report-ms N] [--forward-timeout-s N]\n"
                 "                       [--stats-interval-s N]\n"
                 "(the comment at the top of examples/handoff_node.cpp says what each does)\n");
}

options parse(int argc, char** argv) {
    options o;
    bool have_listen = false, have_addr = false, have_disp = false, have_up = false;
    examples::for_each_option(argc, argv, usage, [&](const std::string& a, const std::string& v) {
        if (a == "--listen") {
            o.listen = examples::parse_endpoint(v);
            (void)v4_of(o.listen.address());
            have_listen = true;
        } else if (a == "--address") {
            o.address = examples::parse_v4(v);
            have_addr = true;
        } else if (a == "--dispatcher") {
            o.dispatcher = examples::parse_v4(v);
            have_disp = true;
        } else if (a == "--peers") {
            const auto more = examples::parse_v4_list(v);
            o.peers.insert(o.peers.end(), more.begin(), more.end());
        } else if (a == "--switch") {
            o.l4_switch = examples::parse_v4(v);
        } else if (a == "--upstream") {
            o.upstream = examples::parse_endpoint(v);
            have_up = true;
        } else if (a == "--device") {
            if (v.empty() || v.size() > 15 || v.find_first_of("\" \t") != std::string::npos)
                throw std::invalid_argument("--device wants an interface name, got '" + v + "'");
            o.device = v;
        } else if (a == "--key") {
            const auto k = lccp::parse_key(v);
            if (!k) throw std::invalid_argument("--key wants 32 hexadecimal digits");
            o.key = *k;
        } else if (a == "--protocol") o.protocol = examples::int_arg(a, v, 1, 254);
        else if (a == "--deadline-ms") o.deadline_ms = examples::int_arg(a, v, 10, 60000);
        else if (a == "--dispatch-timeout-ms") o.dispatch_timeout_ms = examples::int_arg(a, v, 1, 60000);
        else if (a == "--dispatch-tries") o.dispatch_tries = examples::int_arg(a, v, 1, 100);
        else if (a == "--head-timeout-ms") o.head_timeout_ms = examples::int_arg(a, v, 1, 600000);
        else if (a == "--report-ms") o.report_ms = examples::int_arg(a, v, 10, 60000);
        else if (a == "--forward-timeout-s") o.forward_timeout_s = examples::int_arg(a, v, 1, 86400);
        else if (a == "--stats-interval-s") o.stats_interval_s = examples::int_arg(a, v, 0, 86400);
        else throw std::invalid_argument("unknown option " + a);
    });
    if (!have_listen || !have_addr || !have_disp || !have_up)
        throw std::invalid_argument("--listen, --address, --dispatcher and --upstream are required");
    // The node itself may be in --peers (one list for the whole cluster): it is no peer of its own.
    std::erase(o.peers, o.address);
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    return examples::signal_main("cn-handoff-node", argc, argv, parse, usage, [](const options& o, asio::io_context& io) {
        node n(io, o);
        n.start();
        std::printf("cn-handoff-node: %s on %s:%u, upstream %s:%u, dispatcher %s, %zu peer(s), forwarder on %s\n",
                    o.address.to_string().c_str(), o.listen.address().to_string().c_str(), o.listen.port(),
                    o.upstream.address().to_string().c_str(), o.upstream.port(), o.dispatcher.to_string().c_str(),
                    o.peers.size(), o.device.c_str());
        std::fflush(stdout);
        io.run();
        n.print_stats("final");
    });
}
