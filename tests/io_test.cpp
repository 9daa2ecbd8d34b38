// Tests of the parts of clusternet/io/ that need no privileges: the recvmmsg / sendmmsg batch
// engine over an AF_UNIX datagram socket pair (partial sends, EAGAIN, refusals, truncation), the
// write-one-at-a-time flush TUN uses, option validation of every binding (refused before any
// system call, with errc::invalid_argument), both error forms, and closed objects doing nothing.
// The bindings on real interfaces are tested by tests/e2e/io_bindings.sh.
#include <doctest/doctest.h>

#include <clusternet/io/af_packet.hpp>
#include <clusternet/io/detail/mmsg_batch.hpp>
#include <clusternet/io/raw_socket.hpp>
#include <clusternet/io/tun.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

namespace cn = clusternet;
namespace io = clusternet::io;

namespace {

struct dgram_pair {
    io::detail::unique_fd a, b;
    explicit dgram_pair(int sndbuf = 0) {
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
        a.reset(fds[0]);
        b.reset(fds[1]);
        if (sndbuf > 0) {
            std::error_code ec;
            REQUIRE(io::detail::set_option(a.get(), SOL_SOCKET, SO_SNDBUF, sndbuf, ec));
        }
    }
};

std::vector<std::byte> message(std::size_t i, std::size_t len) {
    std::vector<std::byte> m(len);
    for (std::size_t k = 0; k < len; ++k) m[k] = std::byte(static_cast<unsigned char>(i * 17 + k));
    if (len >= 4) std::memcpy(m.data(), &i, 4);
    return m;
}

/// Receives everything waiting on fd; returns the messages in order.
std::vector<std::vector<std::byte>> drain(io::detail::batched_io& rx, int fd) {
    std::vector<std::vector<std::byte>> got;
    while (rx.receive(fd, [&](std::span<std::byte> m, const sockaddr_storage&) { got.emplace_back(m.begin(), m.end()); }) > 0) {
    }
    return got;
}

}  // namespace

TEST_SUITE("io.batch") {
    TEST_CASE("a batch sent with sendmmsg arrives whole, in order, through recvmmsg") {
        dgram_pair p;
        io::detail::batched_io tx({.batch = 16, .slot_size = 512});
        io::detail::batched_io rx({.batch = 8, .slot_size = 512});
        std::vector<std::vector<std::byte>> sent;
        for (std::size_t i = 0; i < 40; ++i) {  // more than a batch: send() flushes when full
            sent.push_back(message(i, 20 + i * 11));
            REQUIRE(tx.send(p.a.get(), sent.back()));
        }
        CHECK(tx.queued() == 40 % 16);
        CHECK(tx.flush(p.a.get()) == 40 % 16);
        const auto got = drain(rx, p.b.get());
        CHECK(got == sent);
        CHECK(tx.counters().tx.queued == 40);
        CHECK(tx.counters().tx.sent == 40);
        CHECK(tx.counters().tx.send_errors == 0);
        CHECK(rx.counters().frames == 40);
        CHECK(rx.counters().truncated == 0);
    }

    TEST_CASE("a message longer than a receive slot is cut and counted") {
        dgram_pair p;
        io::detail::batched_io tx({.batch = 4, .slot_size = 1024});
        io::detail::batched_io rx({.batch = 4, .slot_size = 64});
        REQUIRE(tx.send(p.a.get(), message(1, 500)));
        REQUIRE(tx.send(p.a.get(), message(2, 30)));
        tx.flush(p.a.get());
        std::vector<std::size_t> sizes;
        rx.receive(p.b.get(), [&](std::span<std::byte> m, const sockaddr_storage&) { sizes.push_back(m.size()); });
        CHECK(sizes == std::vector<std::size_t>{64, 30});
        CHECK(rx.counters().truncated == 1);
    }

    TEST_CASE("a message larger than a send slot is refused and counted, never queued") {
        dgram_pair p;
        io::detail::batched_io tx({.batch = 4, .slot_size = 64});
        CHECK_FALSE(tx.send(p.a.get(), message(0, 65)));
        CHECK(tx.queued() == 0);
        CHECK(tx.counters().tx.too_large == 1);
    }

    TEST_CASE("EAGAIN keeps the unsent messages queued, in order, and a later flush sends them") {
        dgram_pair p(4096);  // a small send buffer: a few messages fill it
        io::detail::batched_io tx({.batch = 256, .slot_size = 1024});
        io::detail::batched_io rx({.batch = 32, .slot_size = 1024});
        std::vector<std::vector<std::byte>> sent;
        for (std::size_t i = 0; i < 200; ++i) {
            sent.push_back(message(i, 900));
            REQUIRE(tx.send(p.a.get(), sent.back()));
        }
        std::vector<std::vector<std::byte>> got;
        std::size_t rounds = 0;
        while (got.size() < sent.size() && rounds++ < 10000) {
            tx.flush(p.a.get());
            for (auto& m : drain(rx, p.b.get())) got.push_back(std::move(m));
        }
        CHECK(rounds > 1);  // it did meet EAGAIN
        CHECK(got == sent);
        CHECK(tx.counters().tx.sent == 200);
        CHECK(tx.counters().tx.send_errors == 0);
    }

    TEST_CASE("a message the kernel refuses is dropped and counted; the rest go on") {
        dgram_pair p;
        io::detail::batched_io tx({.batch = 8, .slot_size = 512});
        io::detail::batched_io rx({.batch = 8, .slot_size = 512});
        // A destination address on a connected AF_UNIX datagram socket: EISCONN for that message.
        sockaddr_storage bogus{};
        bogus.ss_family = AF_UNIX;
        REQUIRE(tx.send(p.a.get(), message(0, 40)));
        REQUIRE(tx.send(p.a.get(), message(1, 40), &bogus, sizeof(sa_family_t) + 2));
        REQUIRE(tx.send(p.a.get(), message(2, 40)));
        tx.flush(p.a.get());
        const auto got = drain(rx, p.b.get());
        CHECK(got.size() == 2);
        CHECK(tx.counters().tx.sent == 2);
        CHECK(tx.counters().tx.send_errors == 1);
        CHECK(tx.queued() == 0);
    }

    TEST_CASE("flush_each: taken, refused and not-now, with the rest kept in order") {
        io::detail::mmsg_batch b(8, 64);
        for (std::size_t i = 0; i < 6; ++i) REQUIRE(b.push(message(i, 10 + i)));
        std::vector<std::size_t> lengths;
        int call = 0;
        const auto r = b.flush_each([&](std::span<const std::byte> m) {
            lengths.push_back(m.size());
            ++call;
            if (call == 2) {
                errno = EINVAL;
                return -1;  // refused
            }
            return call == 4 ? 0 : 1;  // the fourth: not now
        });
        CHECK(r.sent == 2);
        CHECK(r.dropped == 1);
        CHECK(r.last_error == std::errc::invalid_argument);
        CHECK(lengths == std::vector<std::size_t>{10, 11, 12, 13});
        REQUIRE(b.queued() == 3);  // messages 3, 4, 5 are left, at the front
        std::vector<std::size_t> rest;
        (void)b.flush_each([&](std::span<const std::byte> m) {
            rest.push_back(m.size());
            return 1;
        });
        CHECK(rest == std::vector<std::size_t>{13, 14, 15});
        CHECK(b.queued() == 0);
    }
}

TEST_SUITE("io.setup") {
    TEST_CASE("options the kernel would refuse are invalid_argument, before any system call") {
        boost::asio::io_context ctx;
        std::error_code ec;
        io::packet_rx_ring rx(ctx);
        rx.open({.interface = "lo"}, {.block_size = 1000}, ec);
        CHECK(ec == cn::errc::invalid_argument);
        rx.open({.interface = "lo"}, {.frame_size = 100}, ec);
        CHECK(ec == cn::errc::invalid_argument);
        rx.open({.interface = "lo"}, {.block_count = 0}, ec);
        CHECK(ec == cn::errc::invalid_argument);
        rx.open({.interface = "lo", .protocol = 0}, {}, ec);
        CHECK(ec == cn::errc::invalid_argument);
        CHECK_FALSE(rx.is_open());

        io::packet_tx_ring tx(ctx);
        tx.open({.interface = "lo"}, {.frame_size = 24}, ec);
        CHECK(ec == cn::errc::invalid_argument);
        tx.open({.interface = "lo"}, {.frame_count = 0}, ec);
        CHECK(ec == cn::errc::invalid_argument);

        io::packet_socket ps(ctx);
        ps.open({.interface = "lo"}, {.batch = 0}, ec);
        CHECK(ec == cn::errc::invalid_argument);

        io::raw_ip_socket raw(ctx);
        raw.open({.protocol = 255}, ec);
        CHECK(ec == cn::errc::invalid_argument);
        raw.open({.protocol = 253, .batch = {.batch = 2000}}, ec);
        CHECK(ec == cn::errc::invalid_argument);

        io::tun_queue tun(ctx);
        tun.open({.name = "sixteen-chars-xx"}, ec);
        CHECK(ec == cn::errc::invalid_argument);
        tun.open({.name = "cn0", .batch = 0}, ec);
        CHECK(ec == cn::errc::invalid_argument);
    }

    TEST_CASE("the throwing form says which object, which step and why") {
        boost::asio::io_context ctx;
        try {
            io::packet_rx_ring rx(ctx, {.interface = "lo"}, {.block_size = 12345});
            FAIL("no exception");
        } catch (const std::system_error& e) {
            const std::string what = e.what();
            CHECK(e.code() == cn::errc::invalid_argument);
            CHECK(what.find("packet_rx_ring on 'lo'") != std::string::npos);
            CHECK(what.find("block_size") != std::string::npos);
        }
    }

    TEST_CASE("closed bindings do nothing and report nothing") {
        boost::asio::io_context ctx;
        io::packet_rx_ring rx(ctx);
        CHECK(rx.poll([](const io::tpacket_frame&) { FAIL("a frame from a closed ring"); }) == 0);
        CHECK_FALSE(rx.ready());
        io::packet_tx_ring tx(ctx);
        CHECK(tx.acquire().empty());
        CHECK_FALSE(tx.send(std::array<std::byte, 60>{}));
        CHECK(tx.flush() == 0);
        CHECK(rx.native_handle() == -1);
    }
}
