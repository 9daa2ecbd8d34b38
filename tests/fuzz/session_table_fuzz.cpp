// libFuzzer target: the session table driven by an arbitrary program of operations, against a
// reference model (the same one as tests/session_table_model_test.cpp, in brief).
//
// Input: a header, then operations until the input ends.
//   byte 0   capacity - 1 (1..256)
//   byte 1   bit 0: bidirectional (NAT) table; bits 1-2: timeouts (0: IPVS's at one tick a
//            second, 1: a few ticks each, 2-3: 9 bytes after the header, syn_recv ... other);
//            bits 3-4: sweep_per_insert; bits 5-6: eviction scan/sample (256/32, the whole
//            slab, 4/1, half/3); bit 7: the clock starts just before it wraps
//   byte 2   bits 0-1: max_load (0.5, 0.8, 0.92, 0.95)
//   byte 3   tuples in the key universe - 1 (1..256: up to 768 keys with the protocols)
//   then     op byte: low nibble % 10 is the operation -- 0-3 track(key, flags), 4 advance the
//            clock, 5 erase(key's session), 6 expire(now, budget), 7 set_reply(key's session,
//            reply) on a NAT table (else find), 8 find(key), 9 insert(key, state) -- bit 4 a
//            variant (track with session_create::never; erase twice, or erase an expired
//            session), and the top two bits the protocol of its key (TCP, TCP, UDP, ICMP); then
//            its argument bytes.
//   A key byte picks a tuple of the universe (modulo its size); a reply key has the session's
//   protocol, as a NAT's always has.
//
// Invariants checked after every operation (abort() on a violation):
//  - the verdict, direction, session and its state, back end, user word and reply key are the
//    model's (transitions from the documented table; expiry by the state's timeout at lookup);
//  - size() <= capacity(); stats().index_full == 0; the verdict counts sum to the track() calls
//    and sessions opened - ended == size();
//  - only a live half-open session is ever evicted (read from stats().evicted_half_open, which
//    the model cannot predict); with a whole-slab scan, the oldest one, and none while an expired
//    session could be taken instead; table_full only with size() == capacity().
// And at the end (and every 16 operations): for_each() visits size() sessions, each live one
// findable by its key and reply key as that same session, each other one expired; then a
// whole-slab expire() leaves exactly the live ones, and index_consistent() holds.
#include <clusternet/session_table.hpp>

#include "../support/session_model.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <tuple>
#include <vector>

namespace cn = clusternet;

namespace {

using cn::direction;
using cn::flow_key4;
using st = cn::session_state;

constexpr std::uint8_t FIN = cn::tcp_flags::fin, SYN = cn::tcp_flags::syn, RST = cn::tcp_flags::rst, ACK = cn::tcp_flags::ack;

[[noreturn]] void violated(const char* what, const flow_key4& k, std::uint32_t now) {
    std::fprintf(stderr, "session_table_fuzz: %s (key %s, now %u)\n", what, k.to_string().c_str(), now);
    std::abort();
}

bool doc_closing(st s) {
    return s == st::fin_wait || s == st::close_wait || s == st::last_ack || s == st::time_wait || s == st::close;
}

/// The documented transition table (tcp_lifecycle.hpp), with the three corners where the doc is
/// silent read as tcp_next_state reads them (see tests/session_table_model_test.cpp).
std::pair<st, bool> reference_next(st s, std::uint8_t flags, direction dir) {
    const bool syn = (flags & SYN) != 0, ack = (flags & ACK) != 0, fin = (flags & FIN) != 0, rst = (flags & RST) != 0;
    const bool client = dir == direction::from_client;
    if (rst) return {st::close, false};
    if (syn && !ack && client) return doc_closing(s) ? std::pair{st::syn_recv, true} : std::pair{s, false};
    switch (s) {
        case st::syn_recv:
            if (fin) return {client ? st::fin_wait : st::close_wait, false};
            return {ack && client && !syn ? st::established : s, false};
        case st::established: return {fin ? (client ? st::fin_wait : st::close_wait) : s, false};
        case st::fin_wait: return {fin && !client ? st::last_ack : s, false};
        case st::close_wait: return {fin && client ? st::last_ack : s, false};
        case st::last_ack: return {ack && !fin ? st::time_wait : s, false};
        default: return {s, false};
    }
}

struct input {
    const std::uint8_t* p;
    const std::uint8_t* end;
    [[nodiscard]] bool empty() const { return p == end; }
    std::uint8_t next() { return p == end ? 0 : *p++; }
};

template <bool Bidirectional>
class driver : cn::test::session_model_store<driver<Bidirectional>, typename cn::session_table<flow_key4, Bidirectional>::session_type> {
    using base = cn::test::session_model_store<driver<Bidirectional>, typename cn::session_table<flow_key4, Bidirectional>::session_type>;
    friend base;
    using typename base::entry;
    using base::sessions_, base::replies_, base::owners_;
    using base::lookup, base::live, base::drop, base::drop_ghosts, base::live_count;

public:
    using table_type = cn::session_table<flow_key4, Bidirectional>;
    using session_type = typename table_type::session_type;

    driver(const cn::session_table_config& cfg, std::uint32_t tuples, std::uint32_t start)
        : cfg_(cfg), t_(cfg), tuples_(tuples), now_(start) {}

    void run(input& in) {
        for (unsigned n = 1; !in.empty(); ++n) {
            const std::uint8_t op = in.next();
            static constexpr std::uint8_t protos[] = {cn::ip_protocol::tcp, cn::ip_protocol::tcp, cn::ip_protocol::udp,
                                                      cn::ip_protocol::icmp};
            const std::uint8_t proto = protos[op >> 6];
            const auto key = [&] { return tuple(in.next() % tuples_, proto); };
            switch ((op & 15) % 10) {
                case 0: case 1: case 2: case 3: {
                    const flow_key4 k = key();
                    track(k, in.next(), (op & 0x10) != 0);
                    break;
                }
                case 4: {
                    const std::uint8_t b = in.next();
                    now_ += b < 200 ? b : (b - 199U) * 1000U;
                    break;
                }
                case 5: erase(key(), (op & 0x10) != 0); break;
                case 6: expire(in.next()); break;
                case 7: {
                    const flow_key4 k = key();
                    const std::uint8_t r = in.next();
                    if constexpr (Bidirectional) set_reply(k, r);
                    else find(k);
                    break;
                }
                case 8: find(key()); break;
                default: {
                    const flow_key4 k = key();
                    insert(k, in.next());
                    break;
                }
            }
            counters();
            if (n % 16 == 0) check_all();
        }
        check_all();
        t_.expire(now_, cfg_.capacity);  // the whole slab: only the live sessions stay
        drop_ghosts();
        if (t_.size() != live_count()) violated("size() after a whole sweep", {}, now_);
        check_all();
    }

private:

    flow_key4 tuple(std::uint32_t i, std::uint8_t proto) const {
        return flow_key4{0x0A000000U + (i >> 3), 0xCB007101U, static_cast<std::uint16_t>(1024 + (i & 7)), 80, proto, {0, 0, 0}};
    }

    [[nodiscard]] bool alive(const entry& e) const { return now_ - e.last_seen <= cfg_.timeouts[e.state]; }


    void compare(const entry& e, const session_type& s) const {
        if (!(s.flow() == e.key)) violated("the session's key", e.key, now_);
        if (s.state != e.state) violated("state", e.key, now_);
        if (s.last_seen != e.last_seen) violated("last_seen", e.key, now_);
        if (s.backend != e.backend) violated("backend", e.key, now_);
        if (s.user != e.user) violated("user word", e.key, now_);
        if (t_.expired(s, now_)) violated("expired() of a live session", e.key, now_);
        if constexpr (Bidirectional) {
            if (s.has_reply != e.reply.has_value()) violated("has_reply", e.key, now_);
            if (e.reply && !(cn::session_key_traits<flow_key4>::unpack(s.reply, s.protocol) == *e.reply))
                violated("the reply key", e.key, now_);
        }
    }

    void adopt(const flow_key4& k, session_type* s, st state) {
        if (auto it = owners_.find(s); it != owners_.end()) {
            const entry& prev = sessions_.at(it->second);
            if (alive(prev)) violated("a new session took the slab entry of a live one", k, now_);
            drop(prev);
        }
        entry e{k, std::nullopt, state, now_, session_type::no_backend, 0, s};
        compare(e, *s);
        e.backend = static_cast<std::uint16_t>(++serial_ % 0xFFFF);
        e.user = serial_ * 2654435761U;
        s->backend = e.backend;
        s->user = e.user;
        sessions_.emplace(k, e);
        owners_.emplace(s, k);
    }

    void reconcile_evictions(const cn::session_stats& before, const flow_key4& k) {
        const std::uint64_t n = t_.stats().evicted_half_open - before.evicted_half_open;
        if (n == 0) return;
        std::uint32_t oldest = 0;
        for (const auto& [key, e] : sessions_)
            if (alive(e) && e.state == st::syn_recv) oldest = std::max(oldest, now_ - e.last_seen);
        std::vector<flow_key4> gone;
        for (const auto& [key, e] : sessions_)
            if (alive(e) && t_.find(key, now_) != e.ptr) gone.push_back(key);
        if (gone.size() != n) violated("a live session vanished (not an eviction)", k, now_);
        for (const auto& g : gone) {
            const entry& e = sessions_.at(g);
            if (e.state != st::syn_recv) violated("a session that is not half-open was evicted", g, now_);
            if (whole_scan() && now_ - e.last_seen != oldest) violated("not the oldest half-open was evicted", g, now_);
            drop(e);
        }
        if (whole_scan()) no_expired_left(k);
    }

    void refused(const flow_key4& k) {
        if (t_.size() != t_.capacity()) violated("refused with room left", k, now_);
        if (!whole_scan()) return;
        for (const auto& [key, e] : sessions_)
            if (alive(e) && e.state == st::syn_recv) violated("refused although a half-open session could go", key, now_);
        no_expired_left(k);
    }

    /// The whole-slab hand found no expired session: there is none, and the model's are gone.
    void no_expired_left(const flow_key4& k) {
        t_.for_each([&](const session_type& s) {
            if (t_.expired(s, now_)) violated("an expired session was left when the whole slab was scanned", k, now_);
        });
        drop_ghosts();
    }

    [[nodiscard]] bool whole_scan() const {
        return cfg_.eviction_scan >= cfg_.capacity && cfg_.eviction_sample >= cfg_.capacity;
    }

    static st first_state(std::uint8_t proto) {
        return proto == cn::ip_protocol::tcp ? st::syn_recv : proto == cn::ip_protocol::udp ? st::udp : st::other;
    }

    void track(const flow_key4& k, std::uint8_t flags, bool never) {
        const cn::session_stats before = t_.stats();
        const auto r = t_.track(k, flags, now_, never ? cn::session_create::never : cn::session_create::allowed);
        ++tracks_;
        ++verdicts_[static_cast<std::size_t>(r.verdict)];
        direction dir = direction::from_client;
        entry* e = lookup(k, &dir);
        if (e != nullptr && !alive(*e)) {
            drop(*e);
            e = nullptr;
        }
        if (e != nullptr) {
            std::pair<st, bool> next{e->state, false};
            if (k.protocol == cn::ip_protocol::tcp) next = reference_next(e->state, flags, dir);
            const auto want = next.second ? cn::session_verdict::reopened : cn::session_verdict::existing;
            if (r.verdict != want) violated("verdict for a live session", k, now_);
            if (r.session != e->ptr) violated("not the key's session", k, now_);
            if (r.dir != dir) violated("direction", k, now_);
            if (t_.stats().evicted_half_open != before.evicted_half_open) violated("eviction without a new session", k, now_);
            e->state = next.first;
            e->last_seen = now_;
            if (next.second) e->backend = session_type::no_backend;
            compare(*e, *r.session);
            if (next.second) r.session->backend = e->backend = static_cast<std::uint16_t>(++serial_ % 0xFFFF);
            return;
        }
        if (never || (k.protocol == cn::ip_protocol::tcp && !((flags & SYN) && !(flags & ACK)))) {
            if (r.verdict != cn::session_verdict::no_session || r.session != nullptr) violated("not no_session", k, now_);
            if (t_.stats().evicted_half_open != before.evicted_half_open) violated("eviction without a new session", k, now_);
            return;
        }
        reconcile_evictions(before, k);
        if (r.verdict == cn::session_verdict::table_full) {
            if (r.session != nullptr) violated("a session with table_full", k, now_);
            refused(k);
            return;
        }
        if (r.verdict != cn::session_verdict::created || r.session == nullptr || r.dir != direction::from_client)
            violated("not created", k, now_);
        adopt(k, r.session, first_state(k.protocol));
    }

    void find(const flow_key4& k) {
        session_type* s = t_.find(k, now_);
        const entry* e = live(k);
        if (e == nullptr && s != nullptr) violated("find() returns a session for a key without one", k, now_);
        if (e != nullptr && s != e->ptr) violated("find() does not return the key's session", k, now_);
        if (e != nullptr) compare(*e, *s);
    }

    void erase(const flow_key4& k, bool variant) {
        find(k);
        const entry* e = lookup(k);
        if (e == nullptr) return;
        const std::size_t size = t_.size();
        if (!alive(*e)) {
            // An expired session: erase() ends it if the table still holds it, else leaves the
            // (free) slab entry alone; a reused entry would have made adopt() drop it.
            if (!variant) return;
            const std::uint64_t closed = t_.stats().closed;
            t_.erase(e->ptr);
            const std::uint64_t n = t_.stats().closed - closed;
            if (n > 1 || t_.size() != size - n) violated("erase() of an expired session", k, now_);
            erases_ += n;
            drop(*e);
            return;
        }
        t_.erase(e->ptr);
        if (variant) t_.erase(e->ptr);  // "A session that has already ended is left alone."
        ++erases_;
        if (t_.size() != size - 1) violated("size() after erase()", k, now_);
        if (t_.find(e->key, now_) != nullptr || (e->reply && t_.find(*e->reply, now_) != nullptr))
            violated("an erased key is still found", k, now_);
        drop(*e);
    }

    void expire(std::uint8_t b) {
        const std::size_t budget = b == 255 ? cfg_.capacity : b;
        const std::size_t size = t_.size();
        const std::size_t n = t_.expire(now_, budget);
        if (n > budget || t_.size() != size - n) violated("expire()", {}, now_);
        if (budget >= cfg_.capacity) {
            drop_ghosts();
            if (t_.size() != live_count()) violated("size() after a whole sweep", {}, now_);
        }
    }

    void insert(const flow_key4& k, std::uint8_t b) {
        static constexpr st tcp_states[] = {st::syn_recv, st::established, st::fin_wait, st::close_wait,
                                            st::last_ack, st::time_wait,   st::close};
        const st state = k.protocol == cn::ip_protocol::tcp ? tcp_states[b % 7] : first_state(k.protocol);
        const cn::session_stats before = t_.stats();
        session_type* s = t_.insert(k, state, now_);
        entry* e = lookup(k);
        if (e != nullptr && alive(*e)) {
            if (s != nullptr) violated("insert() of a key with a live session", k, now_);
            return;
        }
        reconcile_evictions(before, k);
        if (e != nullptr) {  // a ghost, held by the table or swept: its key is free either way
            if (s == nullptr) return violated("insert() refused over an expired session", k, now_);
            drop(*e);
        }
        if (s == nullptr) return refused(k);
        ++inserted_;
        adopt(k, s, state);
    }

    void set_reply(const flow_key4& k, std::uint8_t b)
        requires Bidirectional
    {
        entry* e = live(k);
        if (e == nullptr) return;
        const flow_key4 reply = tuple(b % tuples_, e->key.protocol);
        const std::optional<flow_key4> old = e->reply;
        const bool done = t_.set_reply(e->ptr, reply, now_);
        const entry* holder = lookup(reply);
        const bool own = holder == e;
        if (own) {
            if (done && !(old && *old == reply)) violated("set_reply() to the session's own key", reply, now_);
        } else if (holder != nullptr && alive(*holder)) {
            if (done) violated("set_reply() to another live session's key", reply, now_);
        } else if (holder != nullptr) {
            if (!done) violated("set_reply() refused over an expired session", reply, now_);  // a ghost
            drop(*holder);
        } else if (!done) {
            violated("set_reply() to a free key refused", reply, now_);
        }
        if (done && !own) {
            if (old) replies_.erase(*old);
            e->reply = reply;
            replies_.emplace(reply, e->key);
        }
        compare(*e, *e->ptr);
        if (done && t_.find(reply, now_) != e->ptr) violated("find() of the new reply key", reply, now_);
        if (done && old && !(*old == reply) && t_.find(*old, now_) != nullptr) violated("the replaced reply key is found", *old, now_);
    }

    void counters() const {
        const cn::session_stats& s = t_.stats();
        if (t_.size() > t_.capacity()) violated("size() > capacity()", {}, now_);
        if (s.index_full != 0) violated("stats().index_full", {}, now_);
        std::uint64_t sum = 0;
        for (std::size_t v = 0; v < cn::session_verdict_count; ++v) {
            if (s.verdicts[v] != verdicts_[v]) violated("a verdict count", {}, now_);
            sum += s.verdicts[v];
        }
        if (sum != tracks_) violated("verdicts against track() calls", {}, now_);
        if (s.closed != erases_) violated("stats().closed against erase() calls", {}, now_);
        const std::uint64_t opened = s.count(cn::session_verdict::created) + inserted_;
        if (opened - s.expired - s.closed - s.evicted_half_open != t_.size()) violated("opened - ended != size()", {}, now_);
    }

    void check_all() {
        std::size_t visited = 0, live_seen = 0;
        t_.for_each([&](session_type& s) {
            ++visited;
            const flow_key4 k = s.flow();
            const auto it = sessions_.find(k);
            if (it == sessions_.end()) violated("for_each() visits a session the model does not have", k, now_);
            const entry& e = it->second;
            if (e.ptr != &s) violated("for_each() visits another session for the key", k, now_);
            if (alive(e)) {
                ++live_seen;
                compare(e, s);
                if (t_.find(k, now_) != &s) violated("find() of a live session's key", k, now_);
                if (e.reply && t_.find(*e.reply, now_) != &s) violated("find() of a live session's reply key", *e.reply, now_);
            } else if (!t_.expired(s, now_) || t_.find(k, now_) != nullptr) {
                violated("a session past its timeout is live", k, now_);
            }
        });
        if (visited != t_.size()) violated("for_each() visits size() sessions", {}, now_);
        if (live_seen != live_count()) violated("for_each() misses a live session", {}, now_);
        if (!t_.index_consistent()) violated("the hash index disagrees with the sessions", {}, now_);
    }

    cn::session_table_config cfg_;
    table_type t_;
    std::uint32_t tuples_;
    std::uint32_t now_;
    std::uint64_t tracks_ = 0, erases_ = 0, inserted_ = 0;
    std::uint64_t verdicts_[cn::session_verdict_count] = {};
    std::uint32_t serial_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 4) return 0;
    input in{data, data + size};
    cn::session_table_config cfg;
    cfg.capacity = std::size_t{in.next()} + 1;
    const std::uint8_t mode = in.next();
    const std::uint8_t more = in.next();
    const std::uint32_t tuples = in.next() + 1U;
    switch ((mode >> 1) & 3) {
        case 0: cfg.timeouts = cn::session_timeouts::ipvs_defaults(1); break;
        case 1:
            for (st s : {st::syn_recv, st::established, st::fin_wait, st::close_wait, st::last_ack, st::time_wait,
                         st::close, st::udp, st::other})
                cfg.timeouts.set(s, static_cast<std::uint32_t>(s) + 2);
            break;
        default:
            for (st s : {st::syn_recv, st::established, st::fin_wait, st::close_wait, st::last_ack, st::time_wait,
                         st::close, st::udp, st::other})
                cfg.timeouts.set(s, in.next());
    }
    cfg.sweep_per_insert = (mode >> 3) & 3;
    const auto cap = static_cast<std::uint32_t>(cfg.capacity);
    switch ((mode >> 5) & 3) {
        case 0: break;
        case 1: cfg.eviction_scan = cfg.eviction_sample = cap; break;
        case 2: cfg.eviction_scan = 4, cfg.eviction_sample = 1; break;
        default: cfg.eviction_scan = cap / 2 + 1, cfg.eviction_sample = 3; break;
    }
    static constexpr double loads[] = {0.5, 0.8, 0.92, 0.95};
    cfg.max_load = loads[more & 3];
    const std::uint32_t start = (mode & 0x80) ? 0xFFFFFF00U : 0U;
    if (mode & 1) {
        driver<true> d(cfg, tuples, start);
        d.run(in);
    } else {
        driver<false> d(cfg, tuples, start);
        d.run(in);
    }
    return 0;
}
