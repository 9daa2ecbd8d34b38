// The main() of the single-threaded Asio examples that run until SIGINT or SIGTERM
// (cn-handoff-node, cn-lccp-dispatcher): parse the command line (a bad one: the message, the
// usage, exit 2), run the program on one io_context until a signal (a setup error: the message,
// exit 1), exit 0. And every(), a periodic timer.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>

#include <csignal>
#include <cstdio>
#include <exception>

namespace examples {

/// `parse(argc, argv)` returns the options or throws; `run(options, io)` sets the program up on
/// `io`, runs it (io.run() returns once a signal has stopped it) and prints its final counters.
template <class Parse, class Usage, class Run>
int signal_main(const char* name, int argc, char** argv, Parse&& parse, Usage&& usage, Run&& run) {
    decltype(parse(argc, argv)) o;
    try {
        o = parse(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", name, e.what());
        usage();
        return 2;
    }
    try {
        boost::asio::io_context io(1);
        boost::asio::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([&](const boost::system::error_code&, int) { io.stop(); });
        run(o, io);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", name, e.what());
        return 1;
    }
    return 0;
}

/// Calls `f()` every `period` on `timer` until the timer is cancelled or destroyed (a stats
/// line, a load report).
inline void every(boost::asio::steady_timer& timer, std::chrono::milliseconds period, std::function<void()> f) {
    timer.expires_after(period);
    timer.async_wait([&timer, period, f = std::move(f)](const boost::system::error_code& ec) mutable {
        if (ec) return;
        f();
        every(timer, period, std::move(f));
    });
}

}  // namespace examples
