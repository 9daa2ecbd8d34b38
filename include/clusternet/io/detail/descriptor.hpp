// clusternet/io/detail/descriptor.hpp -- the Asio side every binding shares: the socket (or TUN)
// descriptor lives in a boost::asio::posix::stream_descriptor, so a caller waits for readiness
// on its io_context with async_wait and then drains a batch without blocking.
//
// How to drive a binding from an io_context (one thread per io_context, the usual shape for a
// packet path):
//
//   void arm() {
//       rx.async_wait_readable([this](boost::system::error_code ec) {
//           if (ec) return;           // operation_aborted after close()
//           rx.poll(visitor);         // drain EVERYTHING that is ready, non-blocking
//           arm();                    // re-arm from inside the handler
//       });
//   }
//
// Asio's epoll reactor registers descriptors edge-triggered: drain until the binding says it is
// empty (poll() with no block limit does; for receive() calls, until one returns fewer than a
// full batch), or what is left waits for the next wake-up. Draining everything and re-arming
// from the completion handler, on the thread that runs the io_context, loses no wake-up: an
// edge that comes while the handler runs stays in epoll's ready list until the reactor next
// waits, by which time the new wait is queued. Several threads calling run() on one io_context
// for one binding could lose an edge between a drain and a re-arm; give each thread its own
// socket (PACKET_FANOUT, a TUN queue) instead.
#pragma once

#include <clusternet/io/detail/posix.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <system_error>
#include <utility>

namespace clusternet::io::detail {

class asio_descriptor {
public:
    using executor_type = boost::asio::any_io_executor;

    explicit asio_descriptor(const executor_type& ex) : sd_(ex) {}
    explicit asio_descriptor(boost::asio::io_context& ctx) : sd_(ctx.get_executor()) {}

    [[nodiscard]] executor_type get_executor() noexcept { return sd_.get_executor(); }
    /// The Asio object itself, for anything this binding does not wrap.
    [[nodiscard]] boost::asio::posix::stream_descriptor& descriptor() noexcept { return sd_; }
    [[nodiscard]] int native_handle() noexcept { return sd_.is_open() ? sd_.native_handle() : -1; }
    [[nodiscard]] bool is_open() const noexcept { return sd_.is_open(); }

    /// Completes (void(boost::system::error_code)) when the descriptor is readable.
    template <class WaitToken>
    auto async_wait_readable(WaitToken&& token) {
        return sd_.async_wait(boost::asio::posix::descriptor_base::wait_read, std::forward<WaitToken>(token));
    }
    /// Completes when the descriptor is writable (a TX ring with a free frame, socket buffer room).
    template <class WaitToken>
    auto async_wait_writable(WaitToken&& token) {
        return sd_.async_wait(boost::asio::posix::descriptor_base::wait_write, std::forward<WaitToken>(token));
    }
    /// Cancels pending waits (they complete with operation_aborted).
    void cancel() noexcept {
        boost::system::error_code ignored;
        sd_.cancel(ignored);
    }

protected:
    /// Hands an open descriptor to the Asio object (which closes it from then on).
    bool adopt(unique_fd& fd, setup_status& st) noexcept {
        boost::system::error_code bec;
        sd_.assign(fd.get(), bec);
        if (bec) return st.fail("assign to boost::asio::posix::stream_descriptor", std::error_code(bec.value(), std::system_category()));
        (void)fd.release();
        return true;
    }
    void close_descriptor() noexcept {
        boost::system::error_code ignored;
        sd_.close(ignored);
    }

private:
    boost::asio::posix::stream_descriptor sd_;
};

}  // namespace clusternet::io::detail
