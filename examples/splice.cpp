// cn-splice: a content-aware TCP-splicing front end (seeds/002, "TCP splicing"; the LCCP paper's
// layer-7 dispatch done by relaying instead of handoff).
//
//   cn-splice --listen ADDR:PORT --backend ADDR:PORT[@WEIGHT] [--backend ...] [options]
//   cn-splice --listen ADDR:PORT --backends "ADDR ADDR ..." --backend-port PORT [options]
//
// (--backend may be given many times; --backends takes a list separated by spaces or commas;
// an ADDR without a port takes --backend-port; @WEIGHT sets a back end's weight, default 1.)
//
// For every client connection: read the HTTP/1.x request head (http_head.hpp; refused heads get
// 400, 431 or 505, a head that does not arrive in time 408), choose a back end by the request's
// content with a scheduler (LARD by URL path by default), connect to it (a back end that refuses
// or does not answer in time is taken out for --fail-timeout-ms and the next choice is tried;
// when none is left: 502, or 503 when no back end was eligible at all), send it the bytes read
// so far, and splice the two connections (splice_relay.hpp) until both sides have closed. The
// connection stays with that back end for its whole life: later requests of a keep-alive
// HTTP/1.1 connection go to the back end its first request chose.
//
// Options:
//   --policy P           lard (default), hybrid, or a layer-4 policy by name (rr wrr lc wlc sed
//                        nq random wrandom twos sh dh hrw maglev; the hash policies hash the key)
//   --key path|target|host   what content-aware policies key on (default path: the URL without
//                        its query)
//   --relay splice|copy  splice(2) through pipes (default) or recv/send through a buffer
//   --pipe-size BYTES    splice pipes this big (F_SETPIPE_SZ, best effort) and moved this much
//                        per call; default 1 MiB, 0 for the kernel's 64 KiB. A pipe holds one
//                        socket buffer per page slot, so with MTU-sized segments a 64 KiB pipe
//                        moves only 16 x 1448 bytes a call, and splicing costs more CPU than
//                        copying (docs/splicing.md). A non-root user's pipes share
//                        fs.pipe-user-pages-soft (64 MiB); past it the kernel refuses the size
//   --lard-low N --lard-high N   LARD's T_low / T_high in open connections (default 25 / 65)
//   --max-head BYTES     largest request head (default 8192; larger: 431)
//   --head-timeout-ms N  time for the whole head to arrive (default 10000; then 408)
//   --connect-timeout-ms N   one connection attempt to a back end (default 2000)
//   --fail-timeout-ms N  how long a back end that failed a connect gets no connections (10000)
//   --idle-timeout-s N   a spliced connection with no byte either way this long is closed (300)
//   --access-log         one line per connection on stdout: client, method, target, back end,
//                        bytes each way, how it ended
//   --stats-interval-s N a counter line every N seconds (0: only at exit)
// Runs until SIGINT or SIGTERM; prints `final: ...` counters on exit. Single-threaded: one
// io_context (splicing keeps the payload out of the process, so one core moves a lot).
#include "content_policy.hpp"
#include "endpoint_arg.hpp"

#include <clusternet/cluster_dispatch.hpp>
#include <clusternet/cluster_view.hpp>
#include <clusternet/http_head.hpp>
#include <clusternet/schedulers/content.hpp>
#include <clusternet/splice_relay.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <netinet/tcp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace cn = clusternet;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

void usage() {
    std::fprintf(stderr,
                 "usage: cn-splice --listen ADDR:PORT --backend ADDR[:PORT][@WEIGHT] [--backend ...]\n"
                 "       [--backends 'ADDR[:PORT] ...'] [--backend-port PORT]\n"
                 "       [--policy lard|hybrid|rr|wrr|lc|wlc|sed|nq|random|wrandom|twos|sh|dh|hrw|maglev]\n"
                 "       [--key path|target|host] [--relay splice|copy] [--pipe-size BYTES]\n"
                 "       [--lard-low N] [--lard-high N]\n"
                 "       [--max-head BYTES] [--head-timeout-ms N] [--connect-timeout-ms N]\n"
                 "       [--fail-timeout-ms N] [--idle-timeout-s N] [--access-log] [--stats-interval-s N]\n");
}

using examples::parse_address;
using examples::parse_endpoint;

enum class key_kind { path, target, host };

struct options {
    tcp::endpoint listen;
    std::vector<std::pair<tcp::endpoint, std::uint32_t>> backends;
    std::string policy = "lard";
    key_kind key = key_kind::path;
    cn::relay_method relay = cn::relay_method::splice;
    std::size_t pipe_size = 1u << 20;
    double lard_low = 25, lard_high = 65;
    cn::http_head_limits limits;
    std::chrono::milliseconds head_timeout{10000}, connect_timeout{2000}, fail_timeout{10000};
    std::chrono::seconds idle_timeout{300}, stats_interval{0};
    bool access_log = false;
};

// Counters, printed as name=value.
struct counters {
    std::uint64_t accepted = 0, spliced = 0, closed = 0, resets = 0, idle_closed = 0;
    std::uint64_t bad_request = 0, too_large = 0, bad_version = 0, head_timeout = 0, client_gone = 0;
    std::uint64_t no_backend = 0, bad_gateway = 0, connect_failures = 0, accept_errors = 0;
    std::uint64_t up_bytes = 0, down_bytes = 0;
};

class front;

/// One client connection until it is spliced (or refused).
class session : public std::enable_shared_from_this<session> {
public:
    session(front& f, tcp::socket client);
    void start();

private:
    void read_head();
    void on_head(const cn::http_request_head& h);
    void try_connect();
    void refuse(int status, std::string_view reason);
    void drain_and_close();
    void arm_head_timer();

    front& f_;
    tcp::socket client_;
    tcp::socket server_;
    asio::steady_timer timer_;
    std::vector<char> head_;
    std::size_t have_ = 0;
    std::string key_, method_, target_, client_name_;
    std::vector<bool> tried_;
    cn::member_id member_ = cn::no_member;
    bool head_done_ = false;
};

class front {
public:
    /// `pipes` must outlive the io_context's handlers (relays left at exit return their pipes).
    front(asio::io_context& io, options o, cn::pipe_pool& pipes)
        : io_(io), opt_(std::move(o)), acceptor_(io), view_(), reader_(init_view()), sched_(opt_.policy, opt_.lard_low, opt_.lard_high), stats_timer_(io) {
        per_backend_.assign(opt_.backends.size(), 0);
        cn::refresh_scheduler(sched_, reader_.refresh(), generation_);
        acceptor_.open(opt_.listen.protocol());
        acceptor_.set_option(tcp::acceptor::reuse_address(true));
        acceptor_.bind(opt_.listen);
        acceptor_.listen(4096);
        relay_.method = opt_.relay;
        relay_.idle_timeout = opt_.idle_timeout;
        relay_.pipes = &pipes;
        if (opt_.pipe_size != 0) relay_.chunk = opt_.pipe_size;
        down_until_.assign(opt_.backends.size(), {});
        down_timers_.reserve(opt_.backends.size());
        for (std::size_t i = 0; i < opt_.backends.size(); ++i) down_timers_.push_back(std::make_unique<asio::steady_timer>(io));
    }

    void start() {
        accept();
        if (opt_.stats_interval.count() > 0) tick();
    }
    void stop() {
        boost::system::error_code ec;
        acceptor_.close(ec);
        stats_timer_.cancel();
        for (auto& t : down_timers_) t->cancel();
    }
    void print(const char* prefix) {
        std::printf("%s: accepted=%llu spliced=%llu closed=%llu resets=%llu idle_closed=%llu bad_request=%llu "
                    "too_large=%llu bad_version=%llu head_timeout=%llu client_gone=%llu no_backend=%llu "
                    "bad_gateway=%llu connect_failures=%llu accept_errors=%llu up_bytes=%llu down_bytes=%llu",
                    prefix, u(c_.accepted), u(c_.spliced), u(c_.closed), u(c_.resets), u(c_.idle_closed),
                    u(c_.bad_request), u(c_.too_large), u(c_.bad_version), u(c_.head_timeout), u(c_.client_gone),
                    u(c_.no_backend), u(c_.bad_gateway), u(c_.connect_failures), u(c_.accept_errors), u(c_.up_bytes),
                    u(c_.down_bytes));
        for (std::size_t i = 0; i < per_backend_.size(); ++i) std::printf(" b%zu=%llu", i + 1, u(per_backend_[i]));
        std::printf("\n");
        std::fflush(stdout);
    }

    // --- for sessions ---
    const options& opt() const noexcept { return opt_; }
    counters& c() noexcept { return c_; }
    asio::io_context& io() noexcept { return io_; }
    const cn::relay_options& relay() const noexcept { return relay_; }

    /// The back end for `key`, skipping those in `tried`; no_member when none is eligible.
    cn::member_id pick(const std::string& key, const tcp::endpoint& client, const std::vector<bool>& tried) {
        const cn::cluster_snapshot& snap = reader_.refresh();
        cn::refresh_scheduler(sched_, snap, generation_);
        cn::flow_key4 k4{};
        if (client.address().is_v4()) k4.src = client.address().to_v4().to_uint();
        k4.sport = client.port();
        k4.protocol = 6;
        const cn::flow_key key4(k4);
        cn::pick_input in;
        in.content = key;
        in.hash = key.empty() ? cn::content_hash(std::string_view(reinterpret_cast<const char*>(&k4), sizeof k4)) : cn::content_hash(key);
        in.key = &key4;
        in.now_ns = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
        const cn::member_id m = sched_.pick(snap, in);
        if (m != cn::no_member && m < tried.size() && !tried[m]) return m;
        // The policy's choice was tried already (it failed and is being taken out): the first
        // eligible member not tried, in slot order.
        for (const cn::member_id e : snap.eligible())
            if (e < tried.size() && !tried[e]) return e;
        return cn::no_member;
    }
    const tcp::endpoint& endpoint_of(cn::member_id m) const { return opt_.backends[m].first; }
    void opened(cn::member_id m) {
        view_.flow_opened(m);
        ++per_backend_[m];
    }
    void closed(cn::member_id m) { view_.flow_closed(m); }

    /// A connect to `m` failed: out of rotation for fail_timeout (nginx's max_fails=1).
    void failed(cn::member_id m) {
        ++c_.connect_failures;
        const auto until = std::chrono::steady_clock::now() + opt_.fail_timeout;
        down_until_[m] = until;
        view_.set_state(m, cn::member_state::down);
        auto& t = *down_timers_[m];
        t.expires_at(until);
        t.async_wait([this, m](const boost::system::error_code& ec) {
            if (ec) return;
            if (std::chrono::steady_clock::now() >= down_until_[m]) view_.set_state(m, cn::member_state::up);
        });
    }

private:
    static unsigned long long u(std::uint64_t v) { return v; }

    cn::cluster_reader init_view() {
        for (const auto& [ep, w] : opt_.backends) {
            cn::member_config mc;
            if (ep.address().is_v4()) {
                mc.address = cn::ipv6_address::v4_mapped(cn::ipv4_address(ep.address().to_v4().to_uint()));
            } else {
                const auto b = ep.address().to_v6().to_bytes();
                std::memcpy(mc.address.bytes.data(), b.data(), 16);
            }
            mc.port = ep.port();
            mc.weight = w;
            view_.add_member(mc);
        }
        return view_.make_reader();
    }

    void accept() {
        acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket s) {
            if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
            if (ec) {
                // EMFILE and the like: count, back off a little, go on.
                ++c_.accept_errors;
                stats_retry_ = std::make_unique<asio::steady_timer>(io_, std::chrono::milliseconds(50));
                stats_retry_->async_wait([this](const boost::system::error_code& e) {
                    if (!e) accept();
                });
                return;
            }
            ++c_.accepted;
            std::make_shared<session>(*this, std::move(s))->start();
            accept();
        });
    }
    void tick() {
        stats_timer_.expires_after(opt_.stats_interval);
        stats_timer_.async_wait([this](const boost::system::error_code& ec) {
            if (ec) return;
            print("stats");
            tick();
        });
    }

    asio::io_context& io_;
    options opt_;
    tcp::acceptor acceptor_;
    cn::cluster_view view_;
    cn::cluster_reader reader_;
    examples::content_policy sched_;
    std::uint64_t generation_ = ~std::uint64_t{0};
    asio::steady_timer stats_timer_;
    std::unique_ptr<asio::steady_timer> stats_retry_;
    cn::relay_options relay_;
    counters c_;
    std::vector<std::uint64_t> per_backend_;
    std::vector<std::chrono::steady_clock::time_point> down_until_;
    std::vector<std::unique_ptr<asio::steady_timer>> down_timers_;
};

session::session(front& f, tcp::socket client)
    : f_(f), client_(std::move(client)), server_(f.io()), timer_(f.io()), head_(f.opt().limits.max_head) {}

void session::start() {
    boost::system::error_code ec;
    const auto ep = client_.remote_endpoint(ec);
    if (ec) {
        ++f_.c().client_gone;
        return;
    }
    client_name_ = ep.address().to_string() + ":" + std::to_string(ep.port());
    client_.set_option(tcp::no_delay(true), ec);
    arm_head_timer();
    read_head();
}

void session::arm_head_timer() {
    timer_.expires_after(f_.opt().head_timeout);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
        if (ec || self->head_done_) return;
        ++self->f_.c().head_timeout;
        self->refuse(408, "the request head did not arrive in time");
    });
}

void session::read_head() {
    client_.async_read_some(asio::buffer(head_.data() + have_, head_.size() - have_),
                            [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                                if (self->head_done_) return;
                                if (ec) {
                                    // The client left before its head was complete.
                                    ++self->f_.c().client_gone;
                                    self->head_done_ = true;
                                    self->timer_.cancel();
                                    return;
                                }
                                self->have_ += n;
                                const auto r = cn::parse_http_request_head(std::string_view(self->head_.data(), self->have_),
                                                                           self->f_.opt().limits);
                                switch (r.status) {
                                    case cn::http_head_status::incomplete: return self->read_head();
                                    case cn::http_head_status::complete: return self->on_head(r.head);
                                    case cn::http_head_status::bad_request: ++self->f_.c().bad_request; break;
                                    case cn::http_head_status::header_too_large: ++self->f_.c().too_large; break;
                                    case cn::http_head_status::version_not_supported: ++self->f_.c().bad_version; break;
                                }
                                self->refuse(cn::http_status_code(r.status), r.reason);
                            });
}

void session::on_head(const cn::http_request_head& h) {
    head_done_ = true;
    timer_.cancel();
    switch (f_.opt().key) {
        case key_kind::path: key_ = h.path; break;
        case key_kind::target: key_ = h.target; break;
        case key_kind::host: key_ = h.host; break;
    }
    method_ = h.method;
    target_ = h.target;
    tried_.assign(f_.opt().backends.size(), false);
    try_connect();
}

void session::try_connect() {
    boost::system::error_code ec;
    const auto client_ep = client_.remote_endpoint(ec);
    member_ = f_.pick(key_, client_ep, tried_);
    if (member_ == cn::no_member) {
        const bool tried_any = std::find(tried_.begin(), tried_.end(), true) != tried_.end();
        if (tried_any) {
            ++f_.c().bad_gateway;
            return refuse(502, "no back end accepted the connection");
        }
        ++f_.c().no_backend;
        return refuse(503, "no back end is available");
    }
    tried_[member_] = true;
    const tcp::endpoint target = f_.endpoint_of(member_);
    server_ = tcp::socket(f_.io());
    timer_.expires_after(f_.opt().connect_timeout);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
        if (e) return;
        boost::system::error_code ignored;
        self->server_.close(ignored);  // the connect completes with operation_aborted
    });
    server_.async_connect(target, [self = shared_from_this()](const boost::system::error_code& e) {
        self->timer_.cancel();
        if (e) {
            self->f_.failed(self->member_);
            return self->try_connect();
        }
        boost::system::error_code ignored;
        self->server_.set_option(tcp::no_delay(true), ignored);
        ++self->f_.c().spliced;
        self->f_.opened(self->member_);
        const auto first = std::as_bytes(std::span<const char>(self->head_.data(), self->have_));
        const cn::member_id m = self->member_;
        front* fp = &self->f_;
        std::string log_line;
        if (fp->opt().access_log) {
            const tcp::endpoint& b = fp->endpoint_of(m);
            log_line = self->client_name_ + " " + self->method_ + " " + self->target_ + " -> b" + std::to_string(m + 1) + " " +
                       b.address().to_string() + ":" + std::to_string(b.port());
        }
        cn::tcp_relay::start(std::move(self->client_), std::move(self->server_), first, fp->relay(),
                             [fp, m, log_line = std::move(log_line)](const cn::relay_result& r) {
                                 fp->closed(m);
                                 auto& c = fp->c();
                                 c.up_bytes += r.up_bytes;
                                 c.down_bytes += r.down_bytes;
                                 if (r.timed_out) ++c.idle_closed;
                                 else if (r.error) ++c.resets;
                                 else ++c.closed;
                                 if (!log_line.empty()) {
                                     std::printf("access: %s up=%llu down=%llu %s\n", log_line.c_str(),
                                                 static_cast<unsigned long long>(r.up_bytes),
                                                 static_cast<unsigned long long>(r.down_bytes),
                                                 r.timed_out ? "idle-timeout" : r.error ? r.error.message().c_str() : "closed");
                                     std::fflush(stdout);
                                 }
                             });
    });
}

void session::refuse(int status, std::string_view reason) {
    head_done_ = true;
    timer_.cancel();
    const char* text = status == 400   ? "Bad Request"
                       : status == 408 ? "Request Timeout"
                       : status == 431 ? "Request Header Fields Too Large"
                       : status == 502 ? "Bad Gateway"
                       : status == 503 ? "Service Unavailable"
                       : status == 505 ? "HTTP Version Not Supported"
                                       : "Error";
    const std::string body = std::to_string(status) + " " + text + ": " + std::string(reason) + "\n";
    auto msg = std::make_shared<std::string>("HTTP/1.1 " + std::to_string(status) + " " + text +
                                             "\r\nContent-Type: text/plain\r\nContent-Length: " +
                                             std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
    if (f_.opt().access_log) {
        std::printf("access: %s %s %s -> %d (%.*s)\n", client_name_.c_str(), method_.empty() ? "-" : method_.c_str(),
                    target_.empty() ? "-" : target_.c_str(), status, static_cast<int>(reason.size()), reason.data());
        std::fflush(stdout);
    }
    asio::async_write(client_, asio::buffer(*msg), [self = shared_from_this(), msg](const boost::system::error_code& ec, std::size_t) {
        if (ec) return;
        self->drain_and_close();
    });
}

// Lingering close (as nginx's lingering_close): stop sending, read and drop what the client
// still sends for up to a second, so that closing with unread bytes does not reset the
// connection before the client has read the answer.
void session::drain_and_close() {
    boost::system::error_code ec;
    client_.shutdown(tcp::socket::shutdown_send, ec);
    timer_.expires_after(std::chrono::seconds(1));
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
        if (e) return;
        boost::system::error_code ignored;
        self->client_.close(ignored);
    });
    struct reader {
        std::shared_ptr<session> s;
        void operator()(const boost::system::error_code& e, std::size_t) {
            if (e) {
                s->timer_.cancel();
                boost::system::error_code ignored;
                s->client_.close(ignored);
                return;
            }
            s->client_.async_read_some(asio::buffer(s->head_), std::move(*this));
        }
    };
    client_.async_read_some(asio::buffer(head_), reader{shared_from_this()});
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    std::vector<std::string> backend_args;
    std::uint16_t backend_port = 0;
    try {
        for (int i = 1; i < argc; ++i) {
            const std::string a = argv[i];
            const auto value = [&]() -> std::string {
                if (i + 1 >= argc) throw std::invalid_argument(a + " wants a value");
                return argv[++i];
            };
            const auto number = [&]() -> long {
                const std::string v = value();
                std::size_t used = 0;
                const long n = std::stol(v, &used);
                if (used != v.size() || n < 0) throw std::invalid_argument(a + ": '" + v + "' is not a non-negative number");
                return n;
            };
            if (a == "--listen") o.listen = parse_endpoint(value());
            else if (a == "--backend") backend_args.push_back(value());
            else if (a == "--backends") {
                std::string v = value();
                std::replace(v.begin(), v.end(), ',', ' ');
                std::size_t p = 0;
                while ((p = v.find_first_not_of(' ', p)) != std::string::npos) {
                    const std::size_t e = std::min(v.find(' ', p), v.size());
                    backend_args.push_back(v.substr(p, e - p));
                    p = e;
                }
            } else if (a == "--backend-port") backend_port = static_cast<std::uint16_t>(number());
            else if (a == "--policy") o.policy = value();
            else if (a == "--key") {
                const std::string v = value();
                if (v == "path") o.key = key_kind::path;
                else if (v == "target") o.key = key_kind::target;
                else if (v == "host") o.key = key_kind::host;
                else throw std::invalid_argument("--key: path, target or host, not '" + v + "'");
            } else if (a == "--relay") {
                const std::string v = value();
                if (v == "splice") o.relay = cn::relay_method::splice;
                else if (v == "copy") o.relay = cn::relay_method::copy;
                else throw std::invalid_argument("--relay: splice or copy, not '" + v + "'");
            } else if (a == "--pipe-size") {
                o.pipe_size = static_cast<std::size_t>(number());
                if (o.pipe_size != 0 && (o.pipe_size < 4096 || o.pipe_size > (64u << 20)))
                    throw std::invalid_argument("--pipe-size: 4096 .. 67108864 bytes");
            } else if (a == "--lard-low") o.lard_low = static_cast<double>(number());
            else if (a == "--lard-high") o.lard_high = static_cast<double>(number());
            else if (a == "--max-head") o.limits.max_head = static_cast<std::size_t>(number());
            else if (a == "--head-timeout-ms") o.head_timeout = std::chrono::milliseconds(number());
            else if (a == "--connect-timeout-ms") o.connect_timeout = std::chrono::milliseconds(number());
            else if (a == "--fail-timeout-ms") o.fail_timeout = std::chrono::milliseconds(number());
            else if (a == "--idle-timeout-s") o.idle_timeout = std::chrono::seconds(number());
            else if (a == "--stats-interval-s") o.stats_interval = std::chrono::seconds(number());
            else if (a == "--access-log") o.access_log = true;
            else if (a == "--help" || a == "-h") { usage(); return 0; }
            else throw std::invalid_argument("unknown option '" + a + "'");
        }
        for (std::string v : backend_args) {
            std::uint32_t w = 1;
            if (const auto at = v.find('@'); at != std::string::npos) {
                w = static_cast<std::uint32_t>(std::stoul(v.substr(at + 1)));
                v.resize(at);
            }
            // ADDR alone (no colon, or a bracket-less IPv6 address) takes --backend-port.
            const bool has_port = v.starts_with('[') ? v.find("]:") != std::string::npos
                                                     : std::count(v.begin(), v.end(), ':') == 1;
            if (!has_port && backend_port == 0) throw std::invalid_argument("back end '" + v + "' has no port and no --backend-port was given");
            if (v.starts_with('[')) v = v.substr(1, v.find(']') - 1) + v.substr(v.find(']') + 1);
            o.backends.emplace_back(has_port ? parse_endpoint(v) : tcp::endpoint(parse_address(v), backend_port), w);
        }
        if (o.listen.port() == 0) throw std::invalid_argument("--listen ADDR:PORT is required");
        if (o.backends.empty()) throw std::invalid_argument("at least one --backend ADDR:PORT is required");
        if (o.backends.size() > 4096) throw std::invalid_argument("at most 4096 back ends");
        if (o.limits.max_head < 64 || o.limits.max_head > (1u << 20)) throw std::invalid_argument("--max-head: 64 .. 1048576");
        if (o.head_timeout.count() == 0 || o.connect_timeout.count() == 0)
            throw std::invalid_argument("--head-timeout-ms and --connect-timeout-ms must be positive");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cn-splice: %s\n", e.what());
        usage();
        return 2;
    }
    try {
        cn::pipe_pool pipes(o.pipe_size, 4096);  // before the io_context: relays destroyed with it return pipes here
        asio::io_context io(1);
        front f(io, o, pipes);
        asio::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([&](const boost::system::error_code&, int) {
            f.stop();
            io.stop();
        });
        f.start();
        std::printf("cn-splice: listening on %s:%u, %zu back ends, policy %s, relay %s\n",
                    o.listen.address().to_string().c_str(), o.listen.port(), o.backends.size(), o.policy.c_str(),
                    o.relay == cn::relay_method::splice ? "splice" : "copy");
        std::fflush(stdout);
        io.run();
        f.print("final");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cn-splice: %s\n", e.what());
        return 1;
    }
    return 0;
}
