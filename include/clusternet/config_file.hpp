// clusternet/config_file.hpp -- the reference dispatchers' configuration files.
//
// A file is lines of `key = value`; `#` starts a comment; blank lines are ignored; a key may
// repeat (one `backend = ...` line per back end). Keys are [a-z0-9_-]. Every error names the
// file and line and says what was expected, so a person can fix it:
//
//   lsnat.conf:7: backend: "10.0.0.300" is not an IPv4 address (expected ADDRESS [MAC] [PORT])
//
// Typed getters convert and range-check values; `reject_unknown()` catches typos in keys.
// Setup code only: everything here allocates and throws `config_error`.
#pragma once

#include <clusternet/address.hpp>

#include <charconv>
#include <cstdint>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace clusternet {

/// A configuration error, with "file:line: " in front of the message.
class config_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class config_file {
public:
    struct entry {
        std::string key, value;
        std::size_t line = 0;
    };

    /// Parses text; `name` is what errors call the file.
    static config_file parse(std::string_view text, std::string name = "config") {
        config_file f;
        f.name_ = std::move(name);
        std::size_t line_no = 0;
        while (!text.empty()) {
            ++line_no;
            const std::size_t nl = text.find('\n');
            std::string_view line = text.substr(0, nl);
            text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
            if (const std::size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
            line = trim(line);
            if (line.empty()) continue;
            const std::size_t eq = line.find('=');
            if (eq == std::string_view::npos)
                throw config_error(f.where(line_no) + "expected `key = value`, got \"" + std::string(line) + "\"");
            const std::string_view key = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
            if (key.empty()) throw config_error(f.where(line_no) + "a key is missing before '='");
            for (const char c : key)
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
                    throw config_error(f.where(line_no) + "\"" + std::string(key) + "\" is not a key (use a-z, 0-9, _ and -)");
            f.entries_.push_back({std::string(key), std::string(value), line_no});
        }
        return f;
    }

    /// Reads and parses a file. Throws config_error when it cannot be read.
    static config_file load(const std::string& path) {
        std::ifstream in(path);
        if (!in) throw config_error(path + ": cannot be read (does it exist, and may this user read it?)");
        std::ostringstream ss;
        ss << in.rdbuf();
        return parse(ss.str(), path);
    }

    [[nodiscard]] const std::vector<entry>& entries() const noexcept { return entries_; }
    [[nodiscard]] const std::string& name() const noexcept { return name_; }

    /// Throws for a key not in `known` (a typo would otherwise be silently ignored).
    void reject_unknown(std::initializer_list<std::string_view> known) const {
        for (const entry& e : entries_) {
            bool ok = false;
            for (const std::string_view k : known) ok = ok || e.key == k;
            if (!ok) {
                std::string list;
                for (const std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
                throw config_error(where(e.line) + "unknown key \"" + e.key + "\" (known: " + list + ")");
            }
        }
    }

    /// The last entry of `key`, or null.
    [[nodiscard]] const entry* find(std::string_view key) const noexcept {
        const entry* found = nullptr;
        for (const entry& e : entries_)
            if (e.key == key) found = &e;
        return found;
    }
    [[nodiscard]] std::vector<const entry*> all(std::string_view key) const {
        std::vector<const entry*> v;
        for (const entry& e : entries_)
            if (e.key == key) v.push_back(&e);
        return v;
    }

    [[nodiscard]] std::string get_string(std::string_view key, std::string fallback) const {
        const entry* e = find(key);
        return e ? e->value : fallback;
    }
    [[nodiscard]] const entry& require(std::string_view key) const {
        const entry* e = find(key);
        if (e == nullptr) throw config_error(name_ + ": the key \"" + std::string(key) + "\" is required");
        return *e;
    }
    [[nodiscard]] std::uint64_t get_uint(std::string_view key, std::uint64_t fallback, std::uint64_t min, std::uint64_t max) const {
        const entry* e = find(key);
        return e ? to_uint(*e, e->value, min, max) : fallback;
    }
    [[nodiscard]] bool get_bool(std::string_view key, bool fallback) const {
        const entry* e = find(key);
        if (e == nullptr) return fallback;
        if (e->value == "true" || e->value == "yes" || e->value == "on" || e->value == "1") return true;
        if (e->value == "false" || e->value == "no" || e->value == "off" || e->value == "0") return false;
        throw config_error(where(e->line) + e->key + ": \"" + e->value + "\" is not a boolean (true or false)");
    }
    [[nodiscard]] ipv4_address get_ipv4(std::string_view key) const { return to_ipv4(require(key), require(key).value); }
    [[nodiscard]] std::optional<ipv4_address> get_ipv4(std::string_view key, std::nullopt_t) const {
        const entry* e = find(key);
        if (e == nullptr) return std::nullopt;
        return to_ipv4(*e, e->value);
    }

    // Conversions that name the entry in their errors (for values split into words).
    [[nodiscard]] std::string where(std::size_t line) const { return name_ + ":" + std::to_string(line) + ": "; }
    [[nodiscard]] ipv4_address to_ipv4(const entry& e, std::string_view word) const {
        const auto a = ipv4_address::parse(word);
        if (!a) throw config_error(where(e.line) + e.key + ": \"" + std::string(word) + "\" is not an IPv4 address");
        return *a;
    }
    /// An IPv4 or IPv6 address; IPv4 comes back v4-mapped (ipv6_address::is_v4_mapped()).
    [[nodiscard]] ipv6_address to_address(const entry& e, std::string_view word) const {
        if (const auto a4 = ipv4_address::parse(word)) return ipv6_address::v4_mapped(*a4);
        if (word.find(':') != std::string_view::npos)
            if (const auto a6 = ipv6_address::parse(word)) return *a6;
        throw config_error(where(e.line) + e.key + ": \"" + std::string(word) + "\" is not an IPv4 or IPv6 address");
    }
    [[nodiscard]] mac_address to_mac(const entry& e, std::string_view word) const {
        const auto m = mac_address::parse(word);
        if (!m) throw config_error(where(e.line) + e.key + ": \"" + std::string(word) + "\" is not a MAC address (aa:bb:cc:dd:ee:ff)");
        return *m;
    }
    [[nodiscard]] std::uint64_t to_uint(const entry& e, std::string_view word, std::uint64_t min, std::uint64_t max) const {
        std::uint64_t v = 0;
        const auto [p, ec] = std::from_chars(word.data(), word.data() + word.size(), v);
        if (ec != std::errc{} || p != word.data() + word.size() || v < min || v > max)
            throw config_error(where(e.line) + e.key + ": \"" + std::string(word) + "\" is not a whole number from " +
                               std::to_string(min) + " to " + std::to_string(max));
        return v;
    }

    /// Splits a value into words (spaces and tabs).
    [[nodiscard]] static std::vector<std::string_view> words(std::string_view v) {
        std::vector<std::string_view> out;
        while (!v.empty()) {
            const std::size_t start = v.find_first_not_of(" \t");
            if (start == std::string_view::npos) break;
            v = v.substr(start);
            const std::size_t end = v.find_first_of(" \t");
            out.push_back(v.substr(0, end));
            v = end == std::string_view::npos ? std::string_view{} : v.substr(end);
        }
        return out;
    }

private:
    static std::string_view trim(std::string_view s) noexcept {
        const std::size_t b = s.find_first_not_of(" \t\r");
        if (b == std::string_view::npos) return {};
        return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
    }

    std::string name_;
    std::vector<entry> entries_;
};

}  // namespace clusternet
