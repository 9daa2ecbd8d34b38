// Tests of clusternet/load_reporter.hpp (member list, liveness with an injected clock, the report
// receiver and its counters, announcer and listener over real loopback sockets) and of
// clusternet/host_load.hpp (the /proc parsers and the sampler over a fake /proc).
#include <doctest/doctest.h>

#include "support/recording_sink.hpp"

#include <clusternet/host_load.hpp>
#include <clusternet/load_reporter.hpp>

#include <unistd.h>

#include <boost/asio/io_context.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace cn = clusternet;
using namespace std::chrono_literals;
using kind = cn::test::recording_sink::kind;
using cn::test::run_until;

namespace {

const cn::ipv4_address a1(10, 0, 0, 1), a2(10, 0, 0, 2), a3(10, 0, 0, 3), stranger(10, 0, 0, 99);

cn::member_list three_members() { return cn::member_list({{11, a1}, {12, a2}, {13, a3}}); }

std::vector<std::byte> report_bytes(std::uint16_t node, std::uint32_t seq, std::uint64_t incarnation = 1000,
                                    std::uint8_t flags = 0) {
    cn::load_report r;
    r.node_id = node;
    r.incarnation = incarnation;
    r.timestamp = incarnation + seq;
    r.sequence = seq;
    r.flags = flags;
    r.metrics = {.open_connections = seq, .cpu_load = 100, .redirected_connections = 0, .active_sockets = 3};
    std::vector<std::byte> b(cn::load_report::wire_size);
    REQUIRE(cn::encode(r, b) == b.size());
    return b;
}


}  // namespace

TEST_SUITE("load_reporter") {

TEST_CASE("member_list: lookup by address and node id") {
    const cn::member_list m({{11, a1}, {12, a2}, {14, a1}});
    cn::member_index slot = 99;
    CHECK(m.find(a1, 11, slot) == cn::member_list::match::found);
    CHECK(slot == 0);
    CHECK(m.find(a1, 14, slot) == cn::member_list::match::found);  // two nodes on one host
    CHECK(slot == 2);
    CHECK(m.find(a2, 12, slot) == cn::member_list::match::found);
    CHECK(slot == 1);
    CHECK(m.find(a2, 11, slot) == cn::member_list::match::wrong_node_id);
    CHECK(m.find(stranger, 11, slot) == cn::member_list::match::unknown_address);
    CHECK(m.slot_of(14) == cn::member_index{2});
    CHECK_FALSE(m.slot_of(15).has_value());
    CHECK(m[1].address == a2);

    CHECK_THROWS_AS(cn::member_list({{0, a1}}), std::invalid_argument);
    CHECK_THROWS_WITH_AS(cn::member_list({{5, a1}, {5, a2}}), "member_list: node id 5 is configured twice",
                         std::invalid_argument);
}

TEST_CASE("liveness: down after the configured silence, up again with a report (injected clock)") {
    const auto t0 = cn::member_clock::time_point{} + 1h;
    cn::liveness_tracker lt(2, {.period = 100ms, .dead_after_periods = 3}, t0);
    std::vector<cn::liveness_tracker::expiry> downs;
    const auto expire = [&](auto t) { lt.expire(t, [&](const auto& e) { downs.push_back(e); }); };

    CHECK(lt.state(0) == cn::member_liveness::unknown);
    CHECK(lt.heard(0, t0 + 10ms));
    CHECK_FALSE(lt.heard(0, t0 + 110ms));  // already up: no transition
    CHECK(lt.state(0) == cn::member_liveness::up);

    expire(t0 + 300ms);  // slot 1 silent for exactly the deadline: not yet
    CHECK(downs.empty());
    expire(t0 + 301ms);  // slot 1, never heard, is now past it
    REQUIRE(downs.size() == 1);
    CHECK(downs[0].slot == 1);
    CHECK(downs[0].never_heard);
    CHECK(downs[0].silent_for == 301ms);
    CHECK(lt.state(1) == cn::member_liveness::down);

    expire(t0 + 410ms);  // slot 0 last heard at 110 ms: 300 ms silent, still up
    CHECK(downs.size() == 1);
    expire(t0 + 411ms);
    REQUIRE(downs.size() == 2);
    CHECK(downs[1].slot == 0);
    CHECK_FALSE(downs[1].never_heard);
    CHECK(downs[1].silent_for == 301ms);
    expire(t0 + 10s);  // down members are not reported again
    CHECK(downs.size() == 2);

    CHECK(lt.heard(0, t0 + 11s));  // back
    CHECK(lt.state(0) == cn::member_liveness::up);
    CHECK(lt.last_heard(0) == t0 + 11s);
    CHECK(lt.mark_down(0));
    CHECK_FALSE(lt.mark_down(0));

    CHECK_THROWS_AS(cn::liveness_tracker(1, {.period = 0ms, .dead_after_periods = 3}, t0), std::invalid_argument);
    CHECK_THROWS_AS(cn::liveness_tracker(1, {.period = 1s, .dead_after_periods = 0}, t0), std::invalid_argument);
}

TEST_CASE("receiver: accepts configured members, counts every rejection, feeds the sink") {
    cn::test::recording_sink sink;
    const auto t0 = cn::member_clock::time_point{} + 1h;
    cn::report_receiver rx(three_members(), {.period = 1s, .dead_after_periods = 3}, sink, t0);
    using o = cn::report_outcome;

    CHECK(rx.receive(a2, report_bytes(12, 1), t0) == o::accepted);
    CHECK(sink.transitions(1) == "u");
    REQUIRE(sink.events.size() == 2);
    CHECK(sink.events[0].what == kind::up);  // up first, then the report
    CHECK(sink.events[1].what == kind::report);
    CHECK(sink.reports.back().node_id == 12);
    REQUIRE(rx.last_report(1).has_value());
    CHECK(rx.last_report(1)->metrics.open_connections == 1);
    CHECK(rx.receive(a2, report_bytes(12, 2), t0 + 1s) == o::accepted);
    CHECK(sink.transitions(1) == "u");  // no second up

    auto bytes = report_bytes(11, 1);
    CHECK(rx.receive(a1, std::span(bytes).first(20), t0) == o::truncated);
    bytes.push_back(std::byte{0});
    CHECK(rx.receive(a1, bytes, t0) == o::too_large);
    bytes = report_bytes(11, 1);
    bytes[0] = std::byte{'X'};
    CHECK(rx.receive(a1, bytes, t0) == o::bad_magic);
    bytes = report_bytes(11, 1);
    bytes[cn::load_report_offset::version] = std::byte{9};
    CHECK(rx.receive(a1, bytes, t0) == o::bad_version);
    bytes = report_bytes(11, 1);
    bytes[cn::load_report_offset::flags] = std::byte{0x40};
    CHECK(rx.receive(a1, bytes, t0) == o::bad_field);
    CHECK(rx.receive(stranger, report_bytes(11, 1), t0) == o::unknown_source);
    CHECK(rx.counters().last_unmatched_source == stranger);
    CHECK(rx.receive(a1, report_bytes(12, 3), t0) == o::wrong_node_id);  // node 12's id from node 11's address
    CHECK(rx.counters().last_unmatched_source == a1);
    CHECK(rx.counters().last_unmatched_node_id == 12);
    CHECK(rx.receive(a2, report_bytes(12, 2), t0) == o::replayed);
    CHECK(rx.receive(a2, report_bytes(12, 1), t0) == o::stale);

    const auto& c = rx.counters();
    CHECK(c[o::accepted] == 2);
    for (const auto r : {o::truncated, o::too_large, o::bad_magic, o::bad_version, o::bad_field, o::unknown_source,
                         o::wrong_node_id, o::replayed, o::stale})
        CHECK_MESSAGE(c[r] == 1, cn::to_string(r));
    CHECK(c.received() == 11);
    CHECK(c.rejected() == 9);
    CHECK(sink.count(kind::report) == 2);  // rejected datagrams never reach the sink
    CHECK(sink.count(kind::up) == 1);
}

TEST_CASE("receiver: silence takes members down with a reason; they come back; leaving is immediate") {
    cn::test::recording_sink sink;
    const auto t0 = cn::member_clock::time_point{} + 1h;
    cn::report_receiver rx(three_members(), {.period = 1s, .dead_after_periods = 3}, sink, t0);

    for (std::uint32_t s = 1; s <= 3; ++s) {
        const auto t = t0 + std::chrono::seconds(s);
        REQUIRE(rx.receive(a1, report_bytes(11, s), t) == cn::report_outcome::accepted);
        REQUIRE(rx.receive(a2, report_bytes(12, s), t) == cn::report_outcome::accepted);
        rx.tick(t);
    }
    // Member 3 never reported: still unknown at exactly the deadline since start, down after it.
    CHECK(sink.transitions(2) == "");
    CHECK(rx.liveness().state(2) == cn::member_liveness::unknown);
    rx.tick(t0 + 3s + 1ms);
    CHECK(sink.transitions(2) == "d");
    CHECK(sink.last_reason().find("node 13 at 10.0.0.3: no load report since the listener started") != std::string::npos);
    CHECK(rx.liveness().state(2) == cn::member_liveness::down);

    // Member 2 falls silent after its report at 3 s: still up at 6 s, down after.
    rx.receive(a1, report_bytes(11, 4), t0 + 4s);
    rx.receive(a1, report_bytes(11, 5), t0 + 5s);
    rx.receive(a1, report_bytes(11, 6), t0 + 6s);
    rx.tick(t0 + 6s);
    CHECK(sink.transitions(1) == "u");
    rx.tick(t0 + 6s + 1ms);
    CHECK(sink.transitions(1) == "ud");
    CHECK(sink.last_reason() ==
          "node 12 at 10.0.0.2: no load report for 3001 ms (down after 3 periods of 1000 ms); is its announcer "
          "running, and does it send to this group from this address?");
    CHECK(sink.transitions(0) == "u");  // member 1 kept reporting
    CHECK(rx.counters().went_down == 2);

    // Member 2 restarts; its clock went back, so its new incarnation is earlier: accepted all the
    // same because its replay state was forgotten when it went down.
    CHECK(rx.receive(a2, report_bytes(12, 1, 500), t0 + 8s) == cn::report_outcome::accepted);
    CHECK(sink.transitions(1) == "udu");

    // A leaving report takes member 1 down at once.
    CHECK(rx.receive(a1, report_bytes(11, 7, 1000, cn::load_report_flags::leaving), t0 + 8s) ==
          cn::report_outcome::accepted);
    CHECK(sink.transitions(0) == "ud");
    CHECK(sink.last_reason().find("announced that it is leaving") != std::string::npos);
    rx.tick(t0 + 20s);  // no second down for it
    CHECK(sink.transitions(0) == "ud");
    CHECK(rx.receive(a1, report_bytes(11, 1, 5000), t0 + 21s) == cn::report_outcome::accepted);
    CHECK(sink.transitions(0) == "udu");
}

TEST_CASE("announcer to listener over loopback sockets, leaving on stop") {
    boost::asio::io_context io;
    cn::test::recording_sink sink;
    const cn::ipv4_address lo(127, 0, 0, 1);
    cn::listener_options lopt;
    lopt.listen = {boost::asio::ip::make_address_v4("127.0.0.1"), 0};
    lopt.liveness = {.period = 20ms, .dead_after_periods = 50};
    cn::load_listener listener(io, lopt, cn::member_list({{7, lo}, {8, lo}}), sink);
    listener.start();

    std::uint32_t samples = 0;
    cn::announcer_options aopt;
    aopt.destination = listener.local_endpoint();
    aopt.interface = boost::asio::ip::make_address_v4("127.0.0.1");
    aopt.period = 20ms;
    aopt.node_id = 7;
    aopt.weight = 3;
    cn::load_announcer announcer(io, aopt, [&] {
        ++samples;
        return cn::load_metrics{.open_connections = samples, .cpu_load = 42, .redirected_connections = 1, .active_sockets = 2};
    });
    announcer.start();
    REQUIRE(run_until(io, [&] { return sink.count(kind::report, 0) >= 3; }));
    CHECK(sink.transitions(0) == "u");
    CHECK(sink.count(kind::report, 1) == 0);
    for (std::size_t i = 0; i < sink.reports.size(); ++i) {
        CHECK(sink.reports[i].node_id == 7);
        CHECK(sink.reports[i].weight == 3);
        CHECK(sink.reports[i].period_ms == 20);
        CHECK(sink.reports[i].incarnation == announcer.incarnation());
        CHECK(sink.reports[i].sequence == i + 1);
        CHECK(sink.reports[i].metrics.cpu_load == 42);
    }

    // A configured address with a node id that is not its own is counted, not accepted.
    cn::announcer_options wrong = aopt;
    wrong.node_id = 9;
    cn::load_announcer impostor(io, wrong, [] { return cn::load_metrics{}; });
    impostor.start();
    REQUIRE(run_until(io, [&] { return listener.counters()[cn::report_outcome::wrong_node_id] >= 2; }));
    impostor.stop(false);

    announcer.stop(true);
    REQUIRE(run_until(io, [&] { return sink.transitions(0) == "ud"; }));
    CHECK(sink.last_reason().find("node 7 at 127.0.0.1 announced that it is leaving") != std::string::npos);
    CHECK(announcer.stats().send_errors == 0);
    CHECK(announcer.stats().sent == announcer.sequence());
    listener.stop();
    io.run_for(20ms);
}

TEST_CASE("announcer and listener refuse bad options with a message") {
    boost::asio::io_context io;
    cn::announcer_options a;
    CHECK_THROWS_AS(cn::load_announcer(io, a, [] { return cn::load_metrics{}; }), std::invalid_argument);  // node 0
    a.node_id = 1;
    a.period = 0ms;
    CHECK_THROWS_AS(cn::load_announcer(io, a, [] { return cn::load_metrics{}; }), std::invalid_argument);
    a.period = 100ms;
    CHECK_THROWS_AS(cn::load_announcer(io, a, {}), std::invalid_argument);
    a.interface = boost::asio::ip::make_address_v4("192.0.2.1");  // not an address of this host
    CHECK_THROWS_AS(cn::load_announcer(io, a, [] { return cn::load_metrics{}; }), std::system_error);

    cn::test::recording_sink sink;
    cn::listener_options l;
    l.listen = {boost::asio::ip::make_address_v4("192.0.2.1"), 7411};
    CHECK_THROWS_AS(cn::load_listener(io, l, cn::member_list{}, sink), std::system_error);
}

TEST_CASE("host_load: /proc parsers") {
    const auto t = cn::parse_proc_stat("cpu  100 20 30 400 50 6 7 8 9 10\ncpu0 1 2 3 4\n");
    REQUIRE(t.has_value());
    CHECK(t->busy == 100 + 20 + 30 + 6 + 7 + 8);
    CHECK(t->total == t->busy + 400 + 50);
    CHECK(cn::parse_proc_stat("cpu 1 2 3 4\n").has_value());  // old kernels: four fields
    CHECK_FALSE(cn::parse_proc_stat("cpu 1 2 3\n").has_value());
    CHECK_FALSE(cn::parse_proc_stat("cpu0 1 2 3 4\n").has_value());
    CHECK_FALSE(cn::parse_proc_stat("cpu 1 x 3 4\n").has_value());
    CHECK_FALSE(cn::parse_proc_stat("").has_value());

    CHECK(cn::cpu_load_between({100, 1000}, {150, 1100}) == 5000);
    CHECK(cn::cpu_load_between({100, 1000}, {100, 1100}) == 0);
    CHECK(cn::cpu_load_between({100, 1000}, {200, 1100}) == 10000);
    CHECK(cn::cpu_load_between({100, 1000}, {100, 1000}) == 0);  // no time passed
    CHECK(cn::cpu_load_between({}, {1, 3}) == 3333);

    const char* header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
    const char* listen = "   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1571 1";
    const char* est = "   1: 0100007F:1F90 0100007F:A2C4 01 00000000:00000000 00:00000000 00000000     0        0 1572 1";
    CHECK_FALSE(cn::proc_net_tcp_state(header).has_value());
    CHECK(cn::proc_net_tcp_state(listen) == std::uint8_t{0x0A});
    CHECK(cn::proc_net_tcp_state(est) == std::uint8_t{0x01});
    CHECK_FALSE(cn::proc_net_tcp_state("   1: 0100007F:1F90 0100007F:A2C4 1 x").has_value());
    CHECK_FALSE(cn::proc_net_tcp_state("").has_value());
    CHECK(cn::is_open_tcp_state(0x01));
    CHECK(cn::is_open_tcp_state(0x08));  // CLOSE_WAIT
    CHECK_FALSE(cn::is_open_tcp_state(0x06));
    CHECK_FALSE(cn::is_open_tcp_state(0x07));
    CHECK_FALSE(cn::is_open_tcp_state(0x0A));
    CHECK_FALSE(cn::is_open_tcp_state(0x0C));

    CHECK(cn::parse_sockstat_used("sockets: used 15\nTCP: inuse 1\n") == std::uint32_t{15});
    CHECK_FALSE(cn::parse_sockstat_used("TCP: inuse 1\n").has_value());
}

TEST_CASE("host_load: the sampler over a fake /proc, bounded") {
    const auto root = std::filesystem::temp_directory_path() / ("clusternet-proc-" + std::to_string(::getpid()));
    std::filesystem::create_directories(root / "net");
    struct cleanup {
        std::filesystem::path p;
        ~cleanup() {
            std::error_code ec;
            std::filesystem::remove_all(p, ec);
        }
    } guard{root};
    const auto write = [&](const char* rel, const std::string& text) { std::ofstream(root / rel) << text; };
    const std::string head = "  sl  local_address rem_address   st tx_queue rx_queue\n";
    const auto line = [](int i, const char* st) {
        return "  " + std::to_string(i) + ": 0100007F:1F90 0100007F:A2C4 " + st + " 00000000:00000000 00:00000000\n";
    };
    std::string tcp = head;
    for (int i = 0; i < 3000; ++i) tcp += line(i, i % 3 == 0 ? "0A" : (i % 3 == 1 ? "01" : "06"));  // 1000 open
    tcp += "  9999: " + std::string(2000, 'x') + " 01\n";  // an absurd line, skipped
    tcp += line(3001, "01");                                  // counted
    write("stat", "cpu  100 0 0 900 0 0 0 0 0 0\n");
    write("net/sockstat", "sockets: used 77\n");
    write("net/tcp", tcp);
    write("net/tcp6", head + line(0, "03"));  // SYN_RECV: open

    cn::host_load_sampler s({.proc_root = root.string()});
    s.set_redirected(5);
    std::error_code ec;
    cn::load_metrics m = s.sample(ec);
    REQUIRE_FALSE(ec);
    CHECK(m.cpu_load == 1000);  // since boot: 100 of 1000 ticks
    CHECK(m.active_sockets == 77);
    CHECK(m.open_connections == 1002);
    CHECK(m.redirected_connections == 5);
    CHECK_FALSE(s.capped());

    write("stat", "cpu  400 0 0 1600 0 0 0 0 0 0\n");  // +300 busy of +1000
    m = s.sample(ec);
    REQUIRE_FALSE(ec);
    CHECK(m.cpu_load == 3000);

    cn::host_load_sampler capped({.proc_root = root.string(), .max_tcp_lines = 31});
    m = capped.sample(ec);
    REQUIRE_FALSE(ec);
    CHECK(capped.capped());
    CHECK(m.open_connections == 10);  // lines 1..30 after the header: every third is LISTEN, every third TIME_WAIT

    std::filesystem::remove(root / "net/tcp6");  // no IPv6: not an error
    m = s.sample(ec);
    CHECK_FALSE(ec);
    CHECK(m.open_connections == 1001);

    write("stat", "intr 1 2 3\n");
    (void)s.sample(ec);
    CHECK(ec == cn::errc::bad_file_format);
    std::filesystem::remove(root / "stat");
    (void)s.sample(ec);
    CHECK(ec == std::errc::no_such_file_or_directory);
    CHECK_THROWS_AS(s.sample(), std::system_error);
}

TEST_CASE("host_load: the real /proc of this host") {
    cn::host_load_sampler s;
    std::error_code ec;
    (void)s.sample(ec);
    REQUIRE_FALSE(ec);
    const cn::load_metrics m = s.sample(ec);
    REQUIRE_FALSE(ec);
    CHECK(m.cpu_load <= cn::load_metrics::cpu_full_scale);
    CHECK(m.active_sockets >= 1);
}

}  // TEST_SUITE
