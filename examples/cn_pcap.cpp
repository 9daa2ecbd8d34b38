// cn-pcap -- read a capture, parse and check every packet, optionally NAT-rewrite it, and say
// what is in it.
//
//   cn-pcap [options] <in.pcap>
//
// For each record: parse (Ethernet, raw IP, LINKTYPE_IPV4/IPV6), verify the IPv4 header and
// TCP/UDP/ICMP/ICMPv6 checksums, count the flow (both directions as one), apply the rewrite
// rules, re-verify (--verify-after) and write the result (--write). Then print a summary, as text
// or JSON. The loop allocates nothing per packet except a new flow's entry in the flow table.
//
// Exit status: 0 fine; 1 the file could not be read or written (bad format, truncated, I/O);
// 2 bad command line; 3 --verify-after found a bad checksum or one that differs from a full
// recompute.
#include <clusternet/packet_checksum.hpp>
#include <clusternet/pcap.hpp>
#include <clusternet/rewrite.hpp>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

namespace cn = clusternet;

namespace {

constexpr int exit_ok = 0, exit_file = 1, exit_usage = 2, exit_verify = 3;

constexpr const char* usage_text = R"(usage: cn-pcap [options] <in.pcap>

Reads a classic pcap capture (Ethernet, raw IP, IPv4 or IPv6 link type; "-" reads standard
input), parses every packet, verifies every checksum (IPv4 header, TCP, UDP, ICMP, ICMPv6) and
prints a summary: packets by parse verdict, by protocol and family, checksums per layer, the
number of flows (both directions of a connection count as one) and the top flows by packets.

options:
  --rewrite-dst OLD=NEW[:PORT]  IPv4 packets to OLD get destination NEW (and destination port
                                PORT, when given); checksums are updated incrementally
                                (RFC 1624). May be repeated; the first matching rule applies.
  --rewrite-src OLD=NEW[:PORT]  the same for IPv4 packets from OLD (source address and port)
  --decap                       look through one level of IP-in-IP / IPv6-in-IP: the inner
                                packet is counted, checked and rewritten
  --write OUT.pcap              write every record (rewritten where a rule matched) to OUT.pcap
                                with its original timestamp
  --verify-after                re-parse and re-verify every packet after the rewrites, and
                                compare each checksum to a full recompute bit for bit; exit 3
                                when a checksum is bad or differs
  --top N                       how many flows to list (default 10, 0 for none)
  --json                        print the summary as JSON
  -h, --help                    this text

exit status: 0 fine, 1 the file could not be read or written, 2 bad command line,
3 --verify-after found a bad or differing checksum.
)";

// ---------------------------------------------------------------------------------------------
// Command line

struct rewrite_rule {
    bool destination = true;
    cn::ipv4_address old_addr;
    cn::ipv4_address new_addr;
    std::uint16_t port = 0;  // 0 keeps the port
    std::string text;
    std::uint64_t matched = 0;
};

struct options {
    std::string input;
    std::optional<std::string> output;
    std::vector<rewrite_rule> rules;
    bool decap = false;
    bool verify_after = false;
    bool json = false;
    std::size_t top = 10;
};

struct usage_error {
    std::string message;
};

std::optional<std::uint64_t> parse_number(std::string_view s) {
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
}

rewrite_rule parse_rule(std::string_view opt, std::string_view arg) {
    const auto bad = [&](std::string_view why) {
        return usage_error{std::string(opt) + ": '" + std::string(arg) + "': " + std::string(why) +
                           " (expected OLD=NEW[:PORT], IPv4 addresses and a port 1-65535)"};
    };
    rewrite_rule r;
    r.destination = opt == "--rewrite-dst";
    r.text = std::string(arg);
    const std::size_t eq = arg.find('=');
    if (eq == std::string_view::npos) throw bad("no '='");
    const auto old_addr = cn::ipv4_address::parse(arg.substr(0, eq));
    if (!old_addr) throw bad("'" + std::string(arg.substr(0, eq)) + "' is not an IPv4 address");
    std::string_view rest = arg.substr(eq + 1);
    if (const std::size_t colon = rest.find(':'); colon != std::string_view::npos) {
        const auto port = parse_number(rest.substr(colon + 1));
        if (!port || *port == 0 || *port > 65535) throw bad("'" + std::string(rest.substr(colon + 1)) + "' is not a port");
        r.port = static_cast<std::uint16_t>(*port);
        rest = rest.substr(0, colon);
    }
    const auto new_addr = cn::ipv4_address::parse(rest);
    if (!new_addr) throw bad("'" + std::string(rest) + "' is not an IPv4 address");
    r.old_addr = *old_addr;
    r.new_addr = *new_addr;
    return r;
}

options parse_command_line(int argc, char** argv, bool& help) {
    options o;
    bool have_input = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        std::optional<std::string_view> inline_value;
        if (a.starts_with("--") && a.find('=') != std::string_view::npos) {
            inline_value = a.substr(a.find('=') + 1);
            a = a.substr(0, a.find('='));
        }
        const auto value = [&]() -> std::string_view {
            if (inline_value) return *inline_value;
            if (i + 1 >= argc) throw usage_error{std::string(a) + " needs a value"};
            return argv[++i];
        };
        const auto no_value = [&] {
            if (inline_value) throw usage_error{std::string(a) + " takes no value"};
        };
        if (a == "-h" || a == "--help") {
            no_value();
            help = true;
            return o;
        } else if (a == "--rewrite-dst" || a == "--rewrite-src") {
            o.rules.push_back(parse_rule(a, value()));
        } else if (a == "--decap") {
            no_value();
            o.decap = true;
        } else if (a == "--write") {
            const std::string_view v = value();
            if (v.empty()) throw usage_error{"--write needs a file name"};
            o.output = std::string(v);
        } else if (a == "--verify-after") {
            no_value();
            o.verify_after = true;
        } else if (a == "--json") {
            no_value();
            o.json = true;
        } else if (a == "--top") {
            const std::string_view v = value();
            const auto n = parse_number(v);
            if (!n || *n > 1'000'000) throw usage_error{"--top: '" + std::string(v) + "' is not a count (0-1000000)"};
            o.top = static_cast<std::size_t>(*n);
        } else if (a.size() > 1 && a[0] == '-') {
            throw usage_error{"unknown option '" + std::string(argv[i]) + "'"};
        } else {
            if (have_input) throw usage_error{"one input file only ('" + o.input + "' and '" + std::string(a) + "')"};
            o.input = std::string(a);
            have_input = true;
        }
    }
    if (!have_input) throw usage_error{"no input file"};
    if (o.output && o.input != "-") {
        std::error_code ec;
        if (std::filesystem::equivalent(o.input, *o.output, ec))
            throw usage_error{"--write " + *o.output + " would overwrite the input"};
    }
    return o;
}

// ---------------------------------------------------------------------------------------------
// Counters

enum proto_kind : std::size_t { k_tcp, k_udp, k_icmp, k_icmpv6, k_other, k_fragment, n_proto_kinds };
constexpr std::array<const char*, n_proto_kinds> proto_names{"tcp", "udp", "icmp", "icmpv6", "other", "fragment"};
enum family_kind : std::size_t { f_v4, f_v6, n_families };
constexpr std::array<const char*, n_families> family_names{"ipv4", "ipv6"};
constexpr std::array<cn::checksum_status, 4> statuses{cn::checksum_status::ok, cn::checksum_status::bad,
                                                      cn::checksum_status::absent,
                                                      cn::checksum_status::not_applicable};

using status_counts = std::array<std::uint64_t, 4>;  // indexed by checksum_status

struct checksum_counts {
    status_counts outer_ip{}, ip{}, transport{};
    std::array<status_counts, 4> by_protocol{};  // tcp, udp, icmp, icmpv6 (transport layer)

    void add(const cn::const_packet& p, const cn::checksum_report& r) {
        ++outer_ip[static_cast<std::size_t>(r.outer_ip)];
        ++ip[static_cast<std::size_t>(r.ip)];
        ++transport[static_cast<std::size_t>(r.transport)];
        const std::size_t k = kind_of(p);
        if (k < by_protocol.size()) ++by_protocol[k][static_cast<std::size_t>(r.transport)];
    }
    [[nodiscard]] std::uint64_t bad() const {
        const auto b = static_cast<std::size_t>(cn::checksum_status::bad);
        return outer_ip[b] + ip[b] + transport[b];
    }
    static std::size_t kind_of(const cn::const_packet& p) {
        if (p.is_fragment() && !p.has_transport()) return k_fragment;
        if (p.is_tcp()) return k_tcp;
        if (p.is_udp()) return k_udp;
        if (p.is_icmp()) return p.protocol() == cn::ip_protocol::icmpv6 ? k_icmpv6 : k_icmp;
        return k_other;
    }
};

struct traffic_counts {
    std::array<std::uint64_t, cn::parse_error_count> verdicts{};  // [0] = parsed
    std::array<std::array<std::uint64_t, n_proto_kinds>, n_families> protocols{};
    std::uint64_t arp = 0, tunnelled = 0;
    checksum_counts checksums;

    void add(const cn::const_packet& p) {
        ++verdicts[0];
        if (p.is_arp()) {
            ++arp;
            return;
        }
        if (p.family() == cn::ip_family::none) return;
        ++protocols[p.family() == cn::ip_family::v4 ? f_v4 : f_v6][checksum_counts::kind_of(p)];
        tunnelled += p.is_tunnelled();
        checksums.add(p, cn::verify_checksums(p));
    }
    [[nodiscard]] std::uint64_t protocol(std::size_t kind) const { return protocols[f_v4][kind] + protocols[f_v6][kind]; }
};

struct flow_stats {
    std::uint64_t packets = 0;
    std::uint64_t bytes = 0;
};

/// Both directions of a flow map to one key: the one whose (address, port) source is smaller.
cn::flow_key canonical(const cn::flow_key& k) {
    const cn::flow_key r = k.reverse();
    return (r.src < k.src || (r.src == k.src && r.sport < k.sport)) ? r : k;
}

struct summary {
    std::uint64_t records = 0, bytes = 0, cut = 0;
    traffic_counts before;
    traffic_counts after;  // --verify-after: the packets re-parsed after the rewrites
    std::uint64_t rewritten = 0;
    std::uint64_t ip_mismatch = 0, transport_mismatch = 0;
    std::uint64_t written = 0;
    std::unordered_map<cn::flow_key, flow_stats, cn::flow_key_hash> flows;
    std::string file_error;
};

/// Checks the packet's checksums against a full recompute (compute_ipv4_checksum(),
/// compute_transport_checksum()).
/// Only checksums that verified before the rewrite are held to this (`was_ok_*`).
void compare_to_recompute(const cn::packet& p, bool was_ok_ip, bool was_ok_transport, summary& s) {
    if (was_ok_ip && p.family() == cn::ip_family::v4) {
        s.ip_mismatch += cn::compute_ipv4_checksum(p.ipv4()) != p.ipv4().checksum();
    }
    const std::size_t field = cn::transport_checksum_offset(p.protocol());
    if (was_ok_transport && p.has_transport() && !p.is_fragment() && field != 0) {
        const std::uint16_t stored = cn::load_be16(p.transport_bytes().data() + field);
        s.transport_mismatch += stored != cn::compute_transport_checksum(p);
    }
}

/// Applies the first matching destination rule and the first matching source rule.
bool apply_rules(const cn::packet& p, std::vector<rewrite_rule>& rules) {
    if (p.family() != cn::ip_family::v4) return false;
    const cn::ipv4_address src = p.ipv4().src_address(), dst = p.ipv4().dst_address();
    bool done_dst = false, done_src = false;
    for (rewrite_rule& r : rules) {
        if (r.destination && !done_dst && dst == r.old_addr) {
            done_dst = cn::rewrite_ipv4_destination(p, r.new_addr, r.port);
            r.matched += done_dst;
        } else if (!r.destination && !done_src && src == r.old_addr) {
            done_src = cn::rewrite_ipv4_source(p, r.new_addr, r.port);
            r.matched += done_src;
        }
    }
    return done_dst || done_src;
}

// ---------------------------------------------------------------------------------------------
// Output

/// What went wrong with the file, in words: `header` for errors while opening it.
std::string error_text(const std::error_code& ec, bool header) {
    if (ec == cn::errc::unsupported)
        return "pcapng and modified-pcap files are not supported; convert with `editcap -F pcap IN OUT`";
    if (ec == cn::errc::bad_file_format)
        return header ? "not a classic pcap file (bad magic or version)" : "a record longer than the file's snaplen";
    if (ec == cn::errc::capacity_exceeded) return "a record longer than the reader's limit (262144 bytes)";
    return ec.message();
}

/// A JSON writer just big enough for the summary.
class json_writer {
public:
    explicit json_writer(std::FILE* f) : f_(f) {}
    void begin_object(std::string_view key = {}) { open(key, '{'); }
    void end_object() { close('}'); }
    void begin_array(std::string_view key = {}) { open(key, '['); }
    void end_array() { close(']'); }
    void value(std::string_view key, std::uint64_t v) { prefix(key); std::fprintf(f_, "%llu", static_cast<unsigned long long>(v)); }
    void value(std::string_view key, bool v) { prefix(key); std::fputs(v ? "true" : "false", f_); }
    void value(std::string_view key, std::string_view v) { prefix(key); string(v); }
    void value(std::string_view key, const char* v) { value(key, std::string_view(v)); }
    void null(std::string_view key) { prefix(key); std::fputs("null", f_); }
    void finish() { std::fputc('\n', f_); }

private:
    void open(std::string_view key, char c) {
        prefix(key);
        std::fputc(c, f_);
        first_.push_back(true);
    }
    void close(char c) {
        first_.pop_back();
        std::fputc('\n', f_);
        indent();
        std::fputc(c, f_);
    }
    void prefix(std::string_view key) {
        if (!first_.empty()) {
            if (!first_.back()) std::fputc(',', f_);
            first_.back() = false;
            std::fputc('\n', f_);
            indent();
        }
        if (!key.empty()) {
            string(key);
            std::fputs(": ", f_);
        }
    }
    void indent() { for (std::size_t i = 0; i < first_.size(); ++i) std::fputs("  ", f_); }
    void string(std::string_view s) {
        std::fputc('"', f_);
        for (const char c : s) {
            if (c == '"' || c == '\\') std::fprintf(f_, "\\%c", c);
            else if (static_cast<unsigned char>(c) < 0x20) std::fprintf(f_, "\\u%04x", static_cast<unsigned>(c));
            else std::fputc(c, f_);
        }
        std::fputc('"', f_);
    }
    std::FILE* f_;
    std::vector<bool> first_;
};

std::vector<std::pair<cn::flow_key, flow_stats>> top_flows(const summary& s, std::size_t n) {
    std::vector<std::pair<cn::flow_key, flow_stats>> v(s.flows.begin(), s.flows.end());
    const auto by_packets = [](const auto& a, const auto& b) {
        if (a.second.packets != b.second.packets) return a.second.packets > b.second.packets;
        if (a.second.bytes != b.second.bytes) return a.second.bytes > b.second.bytes;
        return a.first.to_string() < b.first.to_string();
    };
    n = std::min(n, v.size());
    std::partial_sort(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n), v.end(), by_packets);
    v.resize(n);
    return v;
}

void json_checksums(json_writer& j, const checksum_counts& c) {
    const auto layer = [&](std::string_view name, const status_counts& sc) {
        j.begin_object(name);
        for (const auto st : statuses) j.value(cn::to_string(st), sc[static_cast<std::size_t>(st)]);
        j.end_object();
    };
    j.begin_object("checksums");
    layer("outer_ip", c.outer_ip);
    layer("ip", c.ip);
    layer("transport", c.transport);
    for (std::size_t k = 0; k < c.by_protocol.size(); ++k) layer(proto_names[k], c.by_protocol[k]);
    j.end_object();
    j.value("bad_checksums", c.bad());
}

void json_traffic(json_writer& j, const traffic_counts& t) {
    j.begin_object("verdicts");
    j.value("parsed", t.verdicts[0]);
    for (std::size_t e = 1; e < t.verdicts.size(); ++e)
        if (t.verdicts[e] != 0) j.value(cn::to_string(static_cast<cn::parse_error>(e)), t.verdicts[e]);
    j.end_object();
    j.begin_object("protocols");
    j.value("arp", t.arp);
    for (std::size_t f = 0; f < n_families; ++f)
        for (std::size_t k = 0; k < n_proto_kinds; ++k)
            if (t.protocols[f][k] != 0)
                j.value(std::string(proto_names[k]) + "/" + family_names[f], t.protocols[f][k]);
    j.end_object();
    j.value("tcp_packets", t.protocol(k_tcp));
    j.value("tunnelled", t.tunnelled);
    json_checksums(j, t.checksums);
}

void print_json(const options& o, const cn::pcap_reader& r, const summary& s, bool verify_failed) {
    json_writer j(stdout);
    j.begin_object();
    j.value("file", o.input);
    j.value("link_type", std::uint64_t{static_cast<std::uint16_t>(r.link_type())});
    j.value("link_type_name", cn::to_string(r.link_type()));
    j.value("snaplen", std::uint64_t{r.snaplen()});
    j.value("precision", r.precision() == cn::pcap_precision::nanoseconds ? "ns" : "us");
    j.value("records", s.records);
    j.value("bytes", s.bytes);
    j.value("cut_by_snaplen", s.cut);
    if (s.file_error.empty()) j.null("file_error");
    else j.value("file_error", s.file_error);
    json_traffic(j, s.before);
    j.value("flows", std::uint64_t{s.flows.size()});
    j.begin_array("top_flows");
    for (const auto& [key, fs] : top_flows(s, o.top)) {
        j.begin_object();
        j.value("flow", key.to_string());
        j.value("family", key.family == cn::ip_family::v4 ? "ipv4" : "ipv6");
        j.value("protocol", std::uint64_t{key.protocol});
        j.value("a", key.family == cn::ip_family::v4 ? key.src.v4().to_string() : key.src.to_string());
        j.value("a_port", std::uint64_t{key.sport});
        j.value("b", key.family == cn::ip_family::v4 ? key.dst.v4().to_string() : key.dst.to_string());
        j.value("b_port", std::uint64_t{key.dport});
        j.value("packets", fs.packets);
        j.value("bytes", fs.bytes);
        j.end_object();
    }
    j.end_array();
    j.begin_object("rewrite");
    j.begin_array("rules");
    for (const auto& rule : o.rules) {
        j.begin_object();
        j.value("kind", rule.destination ? "dst" : "src");
        j.value("rule", rule.text);
        j.value("matched", rule.matched);
        j.end_object();
    }
    j.end_array();
    j.value("packets_rewritten", s.rewritten);
    j.end_object();
    if (o.verify_after) {
        j.begin_object("after_rewrite");
        json_traffic(j, s.after);
        j.begin_object("recompute_mismatches");
        j.value("ip", s.ip_mismatch);
        j.value("transport", s.transport_mismatch);
        j.end_object();
        j.value("ok", !verify_failed);
        j.end_object();
    } else {
        j.null("after_rewrite");
    }
    if (o.output) {
        j.begin_object("written");
        j.value("path", *o.output);
        j.value("records", s.written);
        j.end_object();
    } else {
        j.null("written");
    }
    j.value("ok", s.file_error.empty() && !verify_failed);
    j.end_object();
    j.finish();
}

void print_checksum_table(const checksum_counts& c) {
    std::printf("%-14s %10s %10s %10s %10s\n", "checksums", "ok", "bad", "absent", "n/a");
    const auto row = [](const char* name, const status_counts& sc) {
        std::printf("  %-12s %10llu %10llu %10llu %10llu\n", name, static_cast<unsigned long long>(sc[0]),
                    static_cast<unsigned long long>(sc[1]), static_cast<unsigned long long>(sc[2]),
                    static_cast<unsigned long long>(sc[3]));
    };
    row("outer ip", c.outer_ip);
    row("ip", c.ip);
    row("transport", c.transport);
    for (std::size_t k = 0; k < c.by_protocol.size(); ++k) {
        const std::string name = std::string("  ") + proto_names[k];
        row(name.c_str(), c.by_protocol[k]);
    }
    std::printf("  bad checksums: %llu\n", static_cast<unsigned long long>(c.bad()));
}

void print_traffic(const traffic_counts& t) {
    std::printf("verdicts\n");
    std::printf("  %-24s %10llu\n", "parsed", static_cast<unsigned long long>(t.verdicts[0]));
    for (std::size_t e = 1; e < t.verdicts.size(); ++e)
        if (t.verdicts[e] != 0)
            std::printf("  %-24s %10llu\n", std::string(cn::to_string(static_cast<cn::parse_error>(e))).c_str(),
                        static_cast<unsigned long long>(t.verdicts[e]));
    std::printf("protocols\n");
    if (t.arp != 0) std::printf("  %-24s %10llu\n", "arp", static_cast<unsigned long long>(t.arp));
    for (std::size_t f = 0; f < n_families; ++f)
        for (std::size_t k = 0; k < n_proto_kinds; ++k)
            if (t.protocols[f][k] != 0)
                std::printf("  %-24s %10llu\n", (std::string(proto_names[k]) + "/" + family_names[f]).c_str(),
                            static_cast<unsigned long long>(t.protocols[f][k]));
    if (t.tunnelled != 0) std::printf("  %-24s %10llu\n", "(tunnelled)", static_cast<unsigned long long>(t.tunnelled));
    print_checksum_table(t.checksums);
}

void print_text(const options& o, const cn::pcap_reader& r, const summary& s, bool verify_failed) {
    std::printf("cn-pcap: %s\n", o.input.c_str());
    std::printf("  link type %s (%u), snaplen %u, %s timestamps, %s-endian\n",
                std::string(cn::to_string(r.link_type())).c_str(), unsigned{static_cast<std::uint16_t>(r.link_type())},
                r.snaplen(), r.precision() == cn::pcap_precision::nanoseconds ? "nanosecond" : "microsecond",
                r.header().byte_order == std::endian::little ? "little" : "big");
    std::printf("  %llu records, %llu bytes captured, %llu cut by the snaplen\n",
                static_cast<unsigned long long>(s.records), static_cast<unsigned long long>(s.bytes),
                static_cast<unsigned long long>(s.cut));
    print_traffic(s.before);
    std::printf("flows: %zu (both directions counted as one)\n", s.flows.size());
    const auto top = top_flows(s, o.top);
    if (!top.empty()) {
        std::printf("top flows by packets\n  %10s %12s  %s\n", "packets", "bytes", "flow (protocol a > b)");
        for (const auto& [key, fs] : top)
            std::printf("  %10llu %12llu  %s\n", static_cast<unsigned long long>(fs.packets),
                        static_cast<unsigned long long>(fs.bytes), key.to_string().c_str());
    }
    if (!o.rules.empty()) {
        std::printf("rewrites\n");
        for (const auto& rule : o.rules)
            std::printf("  %s %-32s matched %llu packets\n", rule.destination ? "--rewrite-dst" : "--rewrite-src",
                        rule.text.c_str(), static_cast<unsigned long long>(rule.matched));
        std::printf("  packets rewritten: %llu\n", static_cast<unsigned long long>(s.rewritten));
    }
    if (o.verify_after) {
        std::printf("after the rewrites (--verify-after)\n");
        print_traffic(s.after);
        std::printf("  differences from a full recompute: ip %llu, transport %llu\n",
                    static_cast<unsigned long long>(s.ip_mismatch), static_cast<unsigned long long>(s.transport_mismatch));
        std::printf("  verify-after: %s\n", verify_failed ? "FAILED" : "ok");
    }
    if (o.output) std::printf("wrote %llu records to %s\n", static_cast<unsigned long long>(s.written), o.output->c_str());
}

// ---------------------------------------------------------------------------------------------

int run(options& o) {
    std::error_code ec;
    const cn::pcap_reader_options ropt{};
    cn::pcap_reader reader = o.input == "-" ? cn::pcap_reader::from_fd(STDIN_FILENO, ropt, ec)
                                            : cn::pcap_reader::open(o.input, ropt, ec);
    if (ec) {
        std::fprintf(stderr, "cn-pcap: %s: %s\n", o.input.c_str(), error_text(ec, true).c_str());
        return exit_file;
    }
    const cn::pcap_link_type link = reader.link_type();
    if (!cn::is_supported(link)) {
        std::fprintf(stderr, "cn-pcap: %s: link type %u is not supported (cn-pcap reads ethernet (1), raw (101), "
                             "ipv4 (228) and ipv6 (229))\n",
                     o.input.c_str(), unsigned{static_cast<std::uint16_t>(link)});
        return exit_file;
    }
    cn::pcap_writer writer;
    if (o.output) {
        writer = cn::pcap_writer::create(*o.output, link, reader.snaplen(), {.precision = reader.precision()}, ec);
        if (ec) {
            std::fprintf(stderr, "cn-pcap: cannot create %s: %s\n", o.output->c_str(), ec.message().c_str());
            return exit_file;
        }
    }

    const cn::parse_options popt{.accept_fragments = false, .decapsulate = o.decap};
    summary s;
    // One work buffer for every record: the rewrites change packets in place.
    std::vector<std::byte> work(ropt.max_record_length);
    for (cn::pcap_record rec; reader.next(rec);) {
        ++s.records;
        s.bytes += rec.data.size();
        s.cut += rec.original_length > rec.data.size();
        std::memcpy(work.data(), rec.data.data(), rec.data.size());
        const std::span<std::byte> frame(work.data(), rec.data.size());
        const auto p = cn::parse_pcap_packet(link, frame, popt);
        if (!p) {
            ++s.before.verdicts[static_cast<std::size_t>(p.error())];
            if (o.verify_after) ++s.after.verdicts[static_cast<std::size_t>(p.error())];
        } else {
            s.before.add(*p);
            cn::checksum_report before{};
            if (p->family() != cn::ip_family::none) {
                before = cn::verify_checksums(*p);
                flow_stats& f = s.flows[canonical(p->key())];
                ++f.packets;
                f.bytes += rec.data.size();
            }
            if (!o.rules.empty()) s.rewritten += apply_rules(*p, o.rules);
            if (o.verify_after) {
                // Parse the rewritten bytes afresh: what a receiver of them would see.
                const auto q = cn::parse_pcap_packet(link, frame, popt);
                if (!q) {
                    ++s.after.verdicts[static_cast<std::size_t>(q.error())];
                } else {
                    s.after.add(*q);
                    compare_to_recompute(*q, before.ip == cn::checksum_status::ok,
                                         before.transport == cn::checksum_status::ok, s);
                }
            }
        }
        if (writer.is_open()) {
            writer.write(rec.timestamp, frame, rec.original_length, ec);
            if (ec) {
                std::fprintf(stderr, "cn-pcap: cannot write %s: %s\n", o.output->c_str(), ec.message().c_str());
                return exit_file;
            }
            ++s.written;
        }
    }
    if (reader.error()) {
        s.file_error = "record " + std::to_string(reader.record_count()) + " at byte " +
                       std::to_string(reader.offset()) + ": " + error_text(reader.error(), false);
    }
    if (writer.is_open()) {
        writer.close(ec);
        if (ec) {
            std::fprintf(stderr, "cn-pcap: cannot write %s: %s\n", o.output->c_str(), ec.message().c_str());
            return exit_file;
        }
    }
    const bool verify_failed =
        o.verify_after && (s.after.checksums.bad() != 0 || s.ip_mismatch != 0 || s.transport_mismatch != 0 ||
                           s.after.verdicts[0] != s.before.verdicts[0]);
    if (o.json) print_json(o, reader, s, verify_failed);
    else print_text(o, reader, s, verify_failed);
    std::fflush(stdout);
    if (!s.file_error.empty()) {
        std::fprintf(stderr, "cn-pcap: %s: %s (the records before it were read)\n", o.input.c_str(), s.file_error.c_str());
        return exit_file;
    }
    if (verify_failed) {
        std::fprintf(stderr, "cn-pcap: --verify-after: %llu bad checksums, %llu IPv4 and %llu transport checksums "
                             "differ from a full recompute\n",
                     static_cast<unsigned long long>(s.after.checksums.bad()),
                     static_cast<unsigned long long>(s.ip_mismatch),
                     static_cast<unsigned long long>(s.transport_mismatch));
        return exit_verify;
    }
    return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        bool help = false;
        options o = parse_command_line(argc, argv, help);
        if (help) {
            std::fputs(usage_text, stdout);
            return exit_ok;
        }
        return run(o);
    } catch (const usage_error& e) {
        std::fprintf(stderr, "cn-pcap: %s\n(try cn-pcap --help)\n", e.message.c_str());
        return exit_usage;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cn-pcap: %s\n", e.what());
        return exit_file;
    }
}
