// tests/support/recording_sink.hpp -- a MemberSink that records every event, and a bounded way to
// run an io_context until something happened, for the tests of load reports and health checks.
#pragma once

#include <clusternet/load_report.hpp>
#include <clusternet/member_sink.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace clusternet::test {

struct recording_sink {
    enum class kind { report, up, down };
    struct event {
        kind what;
        member_index slot;
        std::string reason;  // on_down only
    };

    std::vector<event> events;
    std::vector<load_report> reports;

    void on_report(member_index slot, const load_report& r, member_clock::time_point) {
        events.push_back({kind::report, slot, {}});
        reports.push_back(r);
    }
    void on_down(member_index slot, std::string_view reason) { events.push_back({kind::down, slot, std::string(reason)}); }
    void on_up(member_index slot) { events.push_back({kind::up, slot, {}}); }

    [[nodiscard]] std::size_t count(kind k, member_index slot) const {
        std::size_t n = 0;
        for (const auto& e : events) n += e.what == k && e.slot == slot;
        return n;
    }
    [[nodiscard]] std::size_t count(kind k) const {
        std::size_t n = 0;
        for (const auto& e : events) n += e.what == k;
        return n;
    }
    /// The kinds of the events of `slot` other than reports, in order ("ud" = up, then down).
    [[nodiscard]] std::string transitions(member_index slot) const {
        std::string s;
        for (const auto& e : events)
            if (e.slot == slot && e.what != kind::report) s += e.what == kind::up ? 'u' : 'd';
        return s;
    }
    [[nodiscard]] std::string last_reason() const {
        for (auto it = events.rbegin(); it != events.rend(); ++it)
            if (it->what == kind::down) return it->reason;
        return {};
    }
};

/// Runs `io` until `done()` or until `limit` has passed; returns done(). Never sleeps blindly:
/// it runs the handlers in 10 ms slices and checks in between.
inline bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < end) {
        io.run_for(std::chrono::milliseconds(10));
        if (io.stopped()) io.restart();
    }
    return done();
}

static_assert(MemberSink<recording_sink>);
static_assert(MemberStateSink<recording_sink>);

}  // namespace clusternet::test
