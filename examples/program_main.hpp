// The main() of the single-threaded Asio examples that run until SIGINT or SIGTERM
// (cn-handoff-node, cn-lccp-dispatcher): parse the command line (a bad one: the message, the
// usage, exit 2), run the program on one io_context until a signal (a setup error: the message,
// exit 1), exit 0. And the command line's `--option value` pairs, numbers in a range, and every(),
// a periodic timer.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>

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

/// Calls f(option, value) for each `--option value` pair of the command line; `--help` or `-h`
/// prints the usage and exits 0; an option without its value throws std::invalid_argument.
template <class Usage, class F>
void for_each_option(int argc, char** argv, Usage&& usage, F&& f) {
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            usage();
            std::exit(0);
        }
        if (i + 1 >= argc) throw std::invalid_argument(a + " wants a value");
        f(a, std::string(argv[++i]));
    }
}

/// `value` as a number in [lo, hi] (an integer unless `fractions`), or std::invalid_argument
/// naming the option and the range.
inline double number_arg(const std::string& option, const std::string& value, double lo, double hi, bool fractions = false) {
    char* end = nullptr;
    const double n = fractions ? std::strtod(value.c_str(), &end) : static_cast<double>(std::strtol(value.c_str(), &end, 10));
    if (value.empty() || *end != 0 || !(n >= lo && n <= hi)) {
        char range[64];
        std::snprintf(range, sizeof range, "%.10g..%.10g", lo, hi);
        throw std::invalid_argument(option + " wants " + (fractions ? "a number" : "an integer") + " in " + range + ", got '" +
                                    value + "'");
    }
    return n;
}
inline int int_arg(const std::string& option, const std::string& value, int lo, int hi) {
    return static_cast<int>(number_arg(option, value, lo, hi));
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
