// The bookkeeping of the session table's reference model, shared by the model-based test
// (tests/session_table_model_test.cpp) and the fuzz target (tests/fuzz/session_table_fuzz.cpp):
// the sessions the model believes in, by key, by reply key and by slab entry, expired ones
// ("ghosts") included until dropped. `Derived` says which are alive: alive(const entry&).
#pragma once

#include <clusternet/session_table.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <tuple>
#include <vector>

namespace clusternet::test {

struct key_less {
    bool operator()(const flow_key4& a, const flow_key4& b) const noexcept {
        return std::tie(a.src, a.dst, a.sport, a.dport, a.protocol) < std::tie(b.src, b.dst, b.sport, b.dport, b.protocol);
    }
};

template <class Derived, class Session>
class session_model_store {
public:
    struct entry {
        flow_key4 key;                   // as first seen: the client side
        std::optional<flow_key4> reply;  // set_reply's key
        session_state state;
        std::uint32_t last_seen;
        std::uint16_t backend;
        std::uint32_t user;
        Session* ptr;
    };

protected:
    /// The session (live or a ghost) holding `k` as its key or its reply key.
    entry* lookup(const flow_key4& k, direction* dir = nullptr) {
        if (auto it = sessions_.find(k); it != sessions_.end()) {
            if (dir) *dir = direction::from_client;
            return &it->second;
        }
        if (auto it = replies_.find(k); it != replies_.end()) {
            if (dir) *dir = direction::from_server;
            return &sessions_.at(it->second);
        }
        return nullptr;
    }
    entry* live(const flow_key4& k, direction* dir = nullptr) {
        entry* e = lookup(k, dir);
        return e != nullptr && self().alive(*e) ? e : nullptr;
    }
    void drop(const entry& e) {
        if (e.reply) replies_.erase(*e.reply);
        owners_.erase(e.ptr);
        sessions_.erase(e.key);  // e is gone now
    }
    void drop_ghosts() {
        std::vector<flow_key4> dead;
        for (const auto& [k, e] : sessions_)
            if (!self().alive(e)) dead.push_back(k);
        for (const auto& k : dead) drop(sessions_.at(k));
    }
    [[nodiscard]] std::size_t live_count() const {
        std::size_t n = 0;
        for (const auto& [k, e] : sessions_) n += self().alive(e);
        return n;
    }

    std::map<flow_key4, entry, key_less> sessions_;     // by key, ghosts included
    std::map<flow_key4, flow_key4, key_less> replies_;  // reply key -> key
    std::map<const Session*, flow_key4> owners_;        // slab entry -> key

private:
    const Derived& self() const { return static_cast<const Derived&>(*this); }
};

}  // namespace clusternet::test
