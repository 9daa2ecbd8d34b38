// clusternet/mux_endpoint.hpp -- one end of a SAPS multiplexed channel, without I/O.
//
// Design note. A mux_endpoint is the state machine of one end of the forwarding protocol
// (saps_protocol.hpp): bytes the transport read go in through consume(), bytes to write come out
// of produce(), and everything between -- streams, per-stream credit (credit_flow.hpp), receive
// and send buffers, requests -- lives here, so the same code runs over Boost.Asio
// (mux_channel.hpp), in tests frame by frame, and under the fuzzer. It never blocks and never
// refuses to read the transport: every data frame a well-behaved peer sends fits in its stream's
// receive buffer (invariant I3 of credit_flow.hpp), so one stream whose reader stopped cannot stop
// the transport, and the other streams keep flowing. A frame beyond a stream's credit is a
// protocol error: it is counted, never stored, and that stream alone is closed with EPROTO.
//
// Output order: the hello, then control frames (open, accept, refuse, close, requests, replies,
// events) in the order they were made, then grants (one per stream at most, carrying the newest
// limit, so grants coalesce), then data, one frame per stream in turn (round robin over the
// streams that have both data and credit). A stream without credit leaves the round until its
// grant arrives. A graceful close, or an eof, is sent after the stream's queued data.
//
// Memory: a table of `capacity` streams allocated at construction; per open stream a receive
// buffer of at most `window` bytes and a send buffer of at most `send_buffer` bytes, each
// taken when its first byte comes and grown by doubling from 4 KiB as bytes wait in it (so the
// worst case a peer can cause is capacity x (window + send_buffer), and a stream of short
// messages costs a few KiB).
// Nothing else is allocated per frame. consume/produce and the stream calls are O(bytes) and throw
// only std::bad_alloc (when a stream's buffer is first taken) and what the callbacks throw.
#pragma once

#include <clusternet/credit_flow.hpp>
#include <clusternet/saps_protocol.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace clusternet {

namespace detail {

/// A byte FIFO (ring buffer) of fixed capacity whose memory grows with use: nothing until the
/// first write, then 4 KiB, doubling (never past the capacity) when a write needs more room. So
/// a stream that carries a short request and a short answer costs a few KiB, not two windows,
/// and no memory is zeroed. Growth copies what is buffered once per doubling (amortised O(1) a
/// byte); a stream's buffer never shrinks while it lives.
class byte_ring {
public:
    byte_ring() = default;
    explicit byte_ring(std::size_t capacity) noexcept : capacity_(capacity) {}

    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
    [[nodiscard]] std::size_t room() const noexcept { return capacity_ - size_; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    /// Bytes of memory held now (<= capacity).
    [[nodiscard]] std::size_t allocated() const noexcept { return alloc_; }

    /// Appends as much of `in` as fits; returns how much. Throws std::bad_alloc only, when the
    /// buffer grows.
    std::size_t write(std::span<const std::byte> in) {
        const std::size_t n = std::min(in.size(), room());
        if (n == 0) return 0;
        if (size_ + n > alloc_) grow(size_ + n);
        std::size_t tail = head_ + size_;
        if (tail >= alloc_) tail -= alloc_;
        const std::size_t first = std::min(n, alloc_ - tail);
        std::memcpy(buf_.get() + tail, in.data(), first);
        if (n > first) std::memcpy(buf_.get(), in.data() + first, n - first);
        size_ += n;
        return n;
    }
    /// Moves up to out.size() bytes out; returns how many.
    std::size_t read(std::span<std::byte> out) noexcept {
        const std::size_t n = std::min(out.size(), size_);
        if (n == 0) return 0;
        const std::size_t first = std::min(n, alloc_ - head_);
        std::memcpy(out.data(), buf_.get() + head_, first);
        if (n > first) std::memcpy(out.data() + first, buf_.get(), n - first);
        head_ += n;
        if (head_ >= alloc_) head_ -= alloc_;
        size_ -= n;
        if (size_ == 0) head_ = 0;
        return n;
    }
    void clear() noexcept { head_ = size_ = 0; }

private:
    void grow(std::size_t need) {
        std::size_t to = std::max<std::size_t>(alloc_ * 2, 4096);
        while (to < need) to *= 2;
        to = std::min(to, capacity_);
        std::unique_ptr<std::byte[]> b(new std::byte[to]);  // not zeroed: every byte is written before it is read
        const std::size_t had = size_;
        if (had) {  // linearise what is buffered
            const std::size_t first = std::min(had, alloc_ - head_);
            std::memcpy(b.get(), buf_.get() + head_, first);
            if (had > first) std::memcpy(b.get() + first, buf_.get(), had - first);
        }
        buf_ = std::move(b);
        alloc_ = to;
        head_ = 0;
    }

    std::unique_ptr<std::byte[]> buf_;
    std::size_t capacity_ = 0;
    std::size_t alloc_ = 0;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

/// A FIFO of streams with fixed capacity, at most one entry per table slot: pushing an id whose
/// slot is queued already only updates the id (a reused slot replaces a released stream), so
/// the queue never holds more than the table's capacity, however streams come and go.
class slot_queue {
public:
    explicit slot_queue(std::size_t capacity) : slots_(capacity), ids_(capacity), queued_(capacity) {}
    void push(stream_id id) noexcept {
        const std::size_t slot = id & 0xFFFF;
        CLUSTERNET_ASSERT(slot < ids_.size());
        ids_[slot] = id;
        if (queued_[slot]) return;
        queued_[slot] = 1;
        std::size_t tail = head_ + size_;
        if (tail >= slots_.size()) tail -= slots_.size();
        slots_[tail] = static_cast<std::uint16_t>(slot);
        ++size_;
    }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    /// The id last pushed for the oldest queued slot (possibly of a stream released since).
    stream_id pop() noexcept {
        const std::size_t slot = slots_[head_];
        if (++head_ == slots_.size()) head_ = 0;
        --size_;
        queued_[slot] = 0;
        return ids_[slot];
    }

private:
    std::vector<std::uint16_t> slots_;
    std::vector<stream_id> ids_;
    std::vector<std::uint8_t> queued_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

}  // namespace detail

/// Settings of a mux_endpoint; checked by its constructor.
struct mux_config {
    std::size_t capacity = 1024;                        ///< streams open at once (1..65535)
    std::uint64_t window = 256 * 1024;                  ///< receive buffer per stream (Br)
    std::size_t send_buffer = 256 * 1024;               ///< send buffer per stream
    std::size_t max_frame = saps::default_max_frame;    ///< largest frame accepted and sent
    std::size_t max_control_backlog = 1U << 20;         ///< unsent control bytes before the peer is cut off
};

/// Counters of one endpoint (monotonic).
struct mux_counters {
    std::uint64_t frames_in = 0, frames_out = 0;
    std::uint64_t data_bytes_in = 0, data_bytes_out = 0;   ///< payload octets
    std::uint64_t grant_frames_out = 0, grant_bytes_out = 0;
    std::uint64_t grant_frames_in = 0;
    std::uint64_t opens_refused = 0;                       ///< peer's opens we refused
    std::array<std::uint64_t, flow_error_count> flow_errors{};  ///< per flow_error, caused by the peer
    std::uint64_t protocol_errors = 0;                     ///< other misbehaviour of the peer
};

/// What an endpoint tells its owner. Every member may be empty. They run inside consume() (or
/// inside the stream call that caused them) and may call back into the endpoint.
struct mux_callbacks {
    /// The peer's MakeConnection arrived (the open frame); the stream `id` exists now. Return 0
    /// to accept (an accept frame goes back, ahead of anything the callback sent on the stream)
    /// or an errno value to refuse (a refuse frame goes back and the stream is gone: send nothing
    /// on a stream you refuse). Empty: accept every open.
    std::function<int(stream_id id, const saps::frame& open)> connection_accepted;
    /// Our MakeConnection was answered: ec empty when accepted, else the peer's errno.
    std::function<void(stream_id id, std::error_code ec)> connection_established;
    /// The peer closed the stream (reason 0: normally) or the stream failed. The stream stays
    /// readable until close_connection(id) releases it.
    std::function<void(stream_id id, std::error_code ec)> connection_closed;
    /// Data arrived on a stream (read it with read()), or the peer's eof (at_end(id) says so once
    /// everything before it is read).
    std::function<void(stream_id id)> message_received;
    /// A send() that had been cut short can take more bytes now (credit arrived, buffer drained).
    std::function<void(stream_id id)> buffer_available;
    /// A forwarded socket call (request frame) arrived; answer it with reply().
    std::function<void(stream_id id, const saps::frame& request)> request_received;
    /// The answer to our call() arrived.
    std::function<void(stream_id id, const saps::frame& reply)> reply_received;
    /// produce() has something new to write (the transport should wake its writer; mux_channel
    /// sets this one itself).
    std::function<void()> output_ready;
};

/// One end of a multiplexed SAPS channel, sans I/O.
class mux_endpoint {
public:
    enum class phase : std::uint8_t { opening, open, peer_closed, closing };

    struct stream_state {
        phase state = phase::opening;
        stream_id peer = no_stream;  ///< the peer's id for this stream (0 until known)
        detail::byte_ring rx;        ///< received, not yet read
        detail::byte_ring tx;        ///< written, not yet sent
        std::int32_t close_reason = 0;
        std::int32_t pending_error = 0;  ///< an event to report at the next call
        std::uint32_t tag = 0;
        saps::endpoint remote{}, local{};
        std::uint32_t request_out = 0;   ///< id of our outstanding call (0: none)
        saps::socket_call call_out = saps::socket_call::socket;
        bool request_in = false;         ///< the peer's call is waiting for our reply
        std::uint32_t request_in_id = 0;
        saps::socket_call call_in = saps::socket_call::socket;
        bool write_blocked = false;
        bool close_sent = false;         ///< our close frame is out (closing: waiting for the answer)
        bool peer_eof = false;           ///< the peer half-closed: no more data will come
        bool eof_queued = false;         ///< we half-closed (shutdown_send): no more sends
        bool eof_sent = false;           ///< ... and our eof frame is out
    };

    /// Throws std::invalid_argument with the offending setting's name.
    explicit mux_endpoint(const mux_config& cfg = {}, mux_callbacks cb = {})
        : cfg_(check(cfg)), cb_(std::move(cb)), table_(cfg.capacity), decoder_(cfg.max_frame),
          grants_(cfg.capacity), ready_(cfg.capacity) {
        control_.reserve(4096);
    }

    mux_callbacks& callbacks() noexcept { return cb_; }
    [[nodiscard]] const mux_config& config() const noexcept { return cfg_; }
    [[nodiscard]] const mux_counters& counters() const noexcept { return counters_; }

    // --- the forwarding protocol ---------------------------------------------------------------

    /// MakeConnection: opens a stream; the peer's connection_accepted decides, and
    /// connection_established reports the answer. Returns the local id, or no_stream with
    /// ec = errc::capacity_exceeded when the table is full, or the channel's error if it failed.
    stream_id make_connection(std::uint32_t tag, const saps::endpoint& remote, const saps::endpoint& local,
                              std::error_code& ec) {
        if (failed_) { ec = failed_; return no_stream; }
        const stream_id id = open_slot();
        if (id == no_stream) { ec = errc::capacity_exceeded; return no_stream; }
        stream_state& s = table_.find(id)->user;
        s.tag = tag; s.remote = remote; s.local = local;
        push_control(saps::frame::make_open(id, cfg_.window, tag, remote, local));
        ec.clear();
        return id;
    }
    stream_id make_connection(std::uint32_t tag = 0, const saps::endpoint& remote = {}, const saps::endpoint& local = {}) {
        std::error_code ec;
        const stream_id id = make_connection(tag, remote, local, ec);
        if (ec) throw std::system_error(ec, "mux_endpoint::make_connection");
        return id;
    }

    /// CloseConnection. reason 0: graceful (queued data is sent first, then the close); an errno:
    /// abort (queued data is dropped). Stream calls on the id fail with not_connected from now on;
    /// the slot is released when the peer's close answers ours (every end answers a close with a
    /// close, so no frame can arrive for a released id but a broken peer's), or at once if the peer
    /// had closed first. Returns false for an unknown id.
    bool close_connection(stream_id id, std::int32_t reason = 0) {
        auto* e = table_.find(id);
        if (!e) return false;
        stream_state& s = e->user;
        switch (s.state) {
            case phase::peer_closed:
                table_.release(id);
                return true;
            case phase::closing:
                return true;
            case phase::opening:
                s.state = phase::closing;  // the close goes out when the accept names the peer's id
                s.close_reason = reason;
                return true;
            case phase::open:
                s.state = phase::closing;
                s.close_reason = reason;
                if (reason != 0) s.tx.clear();
                if (s.tx.empty()) send_close(s, s.close_reason);
                return true;
        }
        return true;
    }

    /// Half-close, TCP's shutdown(SHUT_WR): no more sends on the stream (send() fails with
    /// broken_pipe from now on); an eof frame follows the data queued so far, and the peer reads
    /// end of stream after it. Receiving goes on. Returns false unless the stream is open.
    bool shutdown_send(stream_id id) {
        auto* e = table_.find(id);
        if (!e || e->user.state != phase::open) return false;
        stream_state& s = e->user;
        if (s.eof_queued) return true;
        s.eof_queued = true;
        if (s.tx.empty()) {
            push_control(saps::frame::make_eof(s.peer));
            s.eof_sent = true;
        }  // else produce() writes it after the last queued byte (the stream is ready, or will be at its grant)
        return true;
    }

    /// SendMessage: queues up to data.size() bytes on an open stream; returns how many were taken
    /// (fewer when the send buffer is full: buffer_available says when to retry). An event the
    /// peer reported is returned here first, through ec, and cleared (SAPS section 2.3).
    std::size_t send(stream_id id, std::span<const std::byte> data, std::error_code& ec) {
        stream_state* s = stream_for_call(id, ec);
        if (!s) return 0;
        if (s->state != phase::open) { ec = std::make_error_code(std::errc::not_connected); return 0; }
        if (s->eof_queued) { ec = std::make_error_code(std::errc::broken_pipe); return 0; }
        const std::size_t n = s->tx.write(data);
        if (n < data.size()) s->write_blocked = true;
        if (n) make_ready(id, *s);
        return n;
    }

    /// Takes up to out.size() received bytes (the reader consumes; a grant may follow). Returns
    /// 0 when nothing is buffered; at the end of a stream the peer closed, ec is the peer's
    /// close reason (an errno) when it closed with one, else 0 is returned with ec clear and
    /// at_end(id) true (also after the peer's eof). A pending event is reported first, as for
    /// send().
    std::size_t read(stream_id id, std::span<std::byte> out, std::error_code& ec) {
        stream_state* s = stream_for_call(id, ec);
        if (!s) return 0;
        const std::size_t n = s->rx.read(out);
        if (n) {
            auto* e = table_.find(id);
            if (auto limit = e->rx.on_consumed(n)) {
                (void)limit;
                if (s->state == phase::open && !s->peer_eof) {
                    grants_.push(id);
                    notify_output();
                }
            }
        } else if (s->state == phase::peer_closed && s->close_reason != 0) {
            ec = std::error_code(s->close_reason, std::generic_category());
        }
        return n;
    }

    /// Forwards a socket call (a request frame; f.stream is filled in). One call per stream at a
    /// time; the answer comes through reply_received. Fails (nothing sent) with the pending event
    /// of the stream, if any, or operation_in_progress, or not_connected.
    std::uint32_t call(stream_id id, saps::frame request, std::error_code& ec) {
        stream_state* s = stream_for_call(id, ec);
        if (!s) return 0;
        if (s->state != phase::open) { ec = std::make_error_code(std::errc::not_connected); return 0; }
        if (s->request_out != 0) { ec = std::make_error_code(std::errc::operation_in_progress); return 0; }
        if (request.type != saps::frame_type::request || saps::encoded_size(request) == 0) {
            ec = errc::invalid_argument;
            return 0;
        }
        if (++next_request_ == 0) next_request_ = 1;
        request.stream = s->peer;
        request.request_id = next_request_;
        s->request_out = next_request_;
        s->call_out = request.call;
        push_control(request);
        return next_request_;
    }

    /// Answers the peer's call on a stream (status 0 or an errno, value up to 64 bytes). Returns
    /// false when no call is waiting.
    bool reply(stream_id id, std::int32_t status, std::span<const std::byte> value = {}) {
        auto* e = table_.find(id);
        if (!e || !e->user.request_in || value.size() > saps::max_option_size || status < 0) return false;
        stream_state& s = e->user;
        s.request_in = false;
        if (s.state != phase::open) return true;  // nobody to answer
        push_control(saps::frame::make_reply(s.peer, s.call_in, s.request_in_id, status, value));
        return true;
    }
    /// Reports an error of the stream to the peer asynchronously (an event frame).
    bool report_error(stream_id id, std::int32_t err) {
        auto* e = table_.find(id);
        if (!e || err <= 0 || e->user.state != phase::open) return false;
        push_control(saps::frame::make_event(e->user.peer, err));
        return true;
    }

    /// The stream's event, if one is waiting, without clearing it.
    [[nodiscard]] std::int32_t pending_error(stream_id id) const noexcept {
        const auto* e = table_.find(id);
        return e ? e->user.pending_error : 0;
    }
    [[nodiscard]] bool is_open(stream_id id) const noexcept {
        const auto* e = table_.find(id);
        return e && e->user.state == phase::open;
    }
    /// The peer closed or half-closed the stream (or it is unknown) and every byte has been read.
    [[nodiscard]] bool at_end(stream_id id) const noexcept {
        const auto* e = table_.find(id);
        return !e || ((e->user.state == phase::peer_closed || e->user.peer_eof) && e->user.rx.empty());
    }
    /// We half-closed the stream (shutdown_send).
    [[nodiscard]] bool send_shut(stream_id id) const noexcept {
        const auto* e = table_.find(id);
        return e && e->user.eof_queued;
    }
    [[nodiscard]] std::size_t readable(stream_id id) const noexcept {
        const auto* e = table_.find(id);
        return e ? e->user.rx.size() : 0;
    }
    /// Bytes queued for sending on the stream (waiting for credit or for the writer).
    [[nodiscard]] std::size_t queued(stream_id id) const noexcept {
        const auto* e = table_.find(id);
        return e ? e->user.tx.size() : 0;
    }
    /// The stream's flow-control state (nullptr for an unknown id).
    [[nodiscard]] const credit_table<stream_state>::entry* stream(stream_id id) const noexcept { return table_.find(id); }
    [[nodiscard]] std::size_t open_streams() const noexcept { return table_.size(); }

    // --- transport side -----------------------------------------------------------------------

    /// Bytes the transport read. Returns an error when the channel failed (framing, a hello that
    /// does not fit, a backlog the peer does not read): the caller should then close the
    /// transport; every later call returns the same error.
    std::error_code consume(std::span<const std::byte> in) {
        if (failed_) return failed_;
        const parse_error pe = decoder_.feed(in, [this](const saps::frame& f) {
            if (!failed_) handle(f);
        });
        if (pe != parse_error::none && !failed_) fail(make_error_code(pe));
        return failed_;
    }

    /// Whether produce() would write anything.
    [[nodiscard]] bool wants_write() const noexcept {
        return !failed_ && (!hello_sent_ || control_sent_ < control_.size() || !grants_.empty() || !ready_.empty());
    }

    /// Fills `out` with frames to write (see the design note for the order); returns the bytes.
    /// out should hold at least max_frame bytes for data frames to be full-sized.
    std::size_t produce(std::span<std::byte> out) {
        std::size_t used = 0;
        if (failed_) return 0;
        if (!hello_sent_) {
            const auto hello = saps::frame::make_hello(static_cast<std::uint32_t>(cfg_.max_frame),
                                                       static_cast<std::uint32_t>(cfg_.capacity));
            const std::size_t n = saps::encode(hello, out);
            if (n == 0) return 0;
            used += n;
            ++counters_.frames_out;
            hello_sent_ = true;
        }
        // Control bytes, as much as fits (frames may straddle two produce() calls: the byte
        // stream does not care).
        if (control_sent_ < control_.size()) {
            const std::size_t n = std::min(out.size() - used, control_.size() - control_sent_);
            std::memcpy(out.data() + used, control_.data() + control_sent_, n);
            used += n;
            control_sent_ += n;
            if (control_sent_ < control_.size()) return used;
            control_.clear();
            control_sent_ = 0;
        }
        constexpr std::size_t grant_size = saps::header_size + 8;
        while (!grants_.empty() && out.size() - used >= grant_size) {
            const stream_id id = grants_.pop();
            auto* e = table_.find(id);
            if (!e) continue;
            if (e->user.state != phase::open) continue;
            used += saps::encode(saps::frame::make_grant(e->user.peer, e->rx.reported_limit()), out.subspan(used));
            ++counters_.frames_out;
            ++counters_.grant_frames_out;
            counters_.grant_bytes_out += grant_size;
        }
        if (!grants_.empty()) return used;
        const std::size_t max_payload = std::min(cfg_.max_frame, peer_max_frame_) - saps::header_size;
        std::size_t turns = table_.capacity() + 1;  // each stream at most once in the queue
        while (!ready_.empty() && turns-- > 0) {
            const std::size_t space = out.size() - used;
            if (space < saps::header_size + 1) break;
            const stream_id id = ready_.pop();
            auto* e = table_.find(id);
            if (!e) continue;
            stream_state& s = e->user;
            if (s.state != phase::open && s.state != phase::closing) continue;
            const std::size_t want = std::min({s.tx.size(), static_cast<std::size_t>(e->tx.available()), max_payload});
            if (want > space - saps::header_size && space - saps::header_size < 1024) {
                make_ready(id, s);  // no tiny frames at the end of a buffer: next time
                break;
            }
            const std::size_t n = std::min(want, space - saps::header_size);
            if (n > 0) {
                saps::encode_header(out.subspan(used), saps::frame_type::data, saps::header_size + n, s.peer);
                s.tx.read(out.subspan(used + saps::header_size, n));
                (void)e->tx.on_sent(n);
                used += saps::header_size + n;
                ++counters_.frames_out;
                counters_.data_bytes_out += n;
                if (s.write_blocked && s.tx.room() > 0 && s.state == phase::open) {
                    s.write_blocked = false;
                    if (cb_.buffer_available) cb_.buffer_available(id);
                    e = table_.find(id);
                    if (!e) continue;
                }
            }
            if (s.state == phase::open && s.eof_queued && !s.eof_sent && s.tx.empty()) {
                // The half-close goes after the last data, as the close does.
                if (out.size() - used >= saps::header_size) {
                    used += saps::encode(saps::frame::make_eof(s.peer), out.subspan(used));
                    ++counters_.frames_out;
                    s.eof_sent = true;
                    continue;
                }
                make_ready(id, s);
                break;
            }
            if (s.state == phase::closing && s.tx.empty() && !s.close_sent) {
                // The close goes after the last data; encode it here so that it cannot overtake.
                const auto close = saps::frame::make_close(s.peer, s.close_reason);
                if (out.size() - used >= saps::encoded_size(close)) {
                    used += saps::encode(close, out.subspan(used));
                    ++counters_.frames_out;
                    s.close_sent = true;
                    continue;
                }
                make_ready(id, s);
                break;
            }
            if (!s.tx.empty() && e->tx.available() > 0) make_ready(id, s);
        }
        return used;
    }

    /// Why the channel failed (empty while it works).
    [[nodiscard]] std::error_code error() const noexcept { return failed_; }

    /// Marks the channel failed (the transport broke): every stream is closed with ec and
    /// connection_closed is called for each open one.
    void fail(std::error_code ec) {
        if (failed_) return;
        failed_ = ec;
        table_.for_each([&](stream_id id, auto& e) {
            stream_state& s = e.user;
            const bool tell = s.state == phase::open || s.state == phase::opening;
            s.state = phase::peer_closed;
            s.close_reason = ECONNRESET;
            s.tx.clear();
            if (tell && cb_.connection_closed) cb_.connection_closed(id, ec);
        });
    }

private:
    static const mux_config& check(const mux_config& c) {
        auto bad = [](const std::string& what) { throw std::invalid_argument("mux_config: " + what); };
        if (c.capacity == 0 || c.capacity > credit_table<>::max_capacity)
            bad("capacity must be 1..65535, got " + std::to_string(c.capacity));
        if (c.window == 0 || c.window > (1ULL << 30)) bad("window must be 1..2^30 bytes, got " + std::to_string(c.window));
        if (c.send_buffer == 0 || c.send_buffer > (1ULL << 30))
            bad("send_buffer must be 1..2^30 bytes, got " + std::to_string(c.send_buffer));
        if (c.max_frame <= saps::header_size + 56 || c.max_frame > saps::hard_max_frame)
            bad("max_frame must be 69.." + std::to_string(saps::hard_max_frame) + ", got " + std::to_string(c.max_frame));
        if (c.max_control_backlog < 4096) bad("max_control_backlog must be at least 4096");
        return c;
    }

    stream_id open_slot() {
        const stream_id id = table_.allocate(cfg_.window);
        if (id == no_stream) return no_stream;
        stream_state& s = table_.find(id)->user;
        s.rx = detail::byte_ring(static_cast<std::size_t>(cfg_.window));
        s.tx = detail::byte_ring(cfg_.send_buffer);
        return id;
    }

    stream_state* stream_for_call(stream_id id, std::error_code& ec) {
        auto* e = table_.find(id);
        if (!e) { ec = std::make_error_code(std::errc::bad_file_descriptor); return nullptr; }
        if (e->user.pending_error != 0) {
            ec = std::error_code(e->user.pending_error, std::generic_category());
            e->user.pending_error = 0;
            return nullptr;
        }
        ec.clear();
        return &e->user;
    }

    void make_ready(stream_id id, stream_state& s) {
        (void)s;
        ready_.push(id);
        notify_output();
    }

    void send_close(stream_state& s, std::int32_t reason) {
        push_control(saps::frame::make_close(s.peer, reason));
        s.close_sent = true;
    }

    void push_control(const saps::frame& f) {
        const std::size_t n = saps::encoded_size(f);
        if (control_.size() - control_sent_ + n > cfg_.max_control_backlog) {
            fail(std::make_error_code(std::errc::no_buffer_space));
            return;
        }
        const std::size_t at = control_.size();
        control_.resize(at + n);
        (void)saps::encode(f, std::span<std::byte>(control_).subspan(at));
        ++counters_.frames_out;
        notify_output();
    }

    void notify_output() {
        if (cb_.output_ready && !hold_output_) cb_.output_ready();
    }

    void flow_fault(flow_error e) { ++counters_.flow_errors[static_cast<std::size_t>(e)]; }

    /// The peer broke the protocol on one stream: count it and close that stream only.
    void stream_fault(stream_id id, credit_table<stream_state>::entry& e) {
        ++counters_.protocol_errors;
        stream_state& s = e.user;
        const bool tell = s.state == phase::open;
        if (s.peer != no_stream && !s.close_sent) send_close(s, EPROTO);
        s.state = phase::peer_closed;
        s.close_reason = EPROTO;
        s.tx.clear();
        if (tell && cb_.connection_closed) cb_.connection_closed(id, std::error_code(EPROTO, std::generic_category()));
    }

    void handle(const saps::frame& f) {
        ++counters_.frames_in;
        if (!hello_seen_) {
            if (f.type != saps::frame_type::hello) { fail(make_error_code(parse_error::bad_magic)); return; }
            hello_seen_ = true;
            peer_max_frame_ = f.arg0;
            if (peer_max_frame_ < saps::header_size + 56) fail(make_error_code(parse_error::bad_field));
            return;
        }
        using saps::frame_type;
        if (f.type == frame_type::hello) { fail(make_error_code(parse_error::bad_field)); return; }
        if (f.type == frame_type::open) { handle_open(f); return; }
        auto* e = table_.find(f.stream);
        if (!e) {  // closed here already (a benign race) or never opened
            flow_fault(flow_error::unknown_stream);
            return;
        }
        stream_state& s = e->user;
        const bool opening = s.state == phase::opening || (s.state == phase::closing && s.peer == no_stream);
        if (f.type == frame_type::accept || f.type == frame_type::refuse) {
            if (!opening) { stream_fault(f.stream, *e); return; }
            handle_answer(f, *e);
            return;
        }
        if (opening) { stream_fault(f.stream, *e); return; }  // nothing may come before the accept
        if (s.state == phase::peer_closed) {
            // After our close (a fault): the peer's answer, or frames that crossed it. Otherwise
            // the peer sends on a stream it closed itself.
            if (!s.close_sent) flow_fault(flow_error::unknown_stream);
            return;
        }
        switch (f.type) {
            case frame_type::data: {
                if (s.peer_eof) { stream_fault(f.stream, *e); return; }  // data after its own eof
                if (const flow_error fe = e->rx.on_received(f.payload.size()); fe != flow_error::none) {
                    flow_fault(fe);
                    stream_fault(f.stream, *e);
                    return;
                }
                const std::size_t stored = s.rx.write(f.payload);
                CLUSTERNET_ASSERT(stored == f.payload.size());  // I3
                (void)stored;
                counters_.data_bytes_in += f.payload.size();
                if (s.state == phase::closing) {  // we are closing: nobody reads, give it back
                    s.rx.clear();
                    (void)e->rx.on_consumed(f.payload.size());
                    return;
                }
                if (cb_.message_received) cb_.message_received(f.stream);
                return;
            }
            case frame_type::grant: {
                ++counters_.grant_frames_in;
                if (const flow_error fe = e->tx.on_grant(f.limit); fe != flow_error::none) {
                    flow_fault(fe);
                    stream_fault(f.stream, *e);
                    return;
                }
                if (!s.tx.empty() && e->tx.available() > 0) make_ready(f.stream, s);
                return;
            }
            case frame_type::close: {
                if (s.state == phase::closing) {  // the answer to ours, or a close that crossed it
                    if (!s.close_sent) send_close(s, s.close_reason);  // dropping the data we still held
                    table_.release(f.stream);
                    return;
                }
                s.state = phase::peer_closed;
                s.close_reason = f.error;
                s.tx.clear();
                send_close(s, 0);  // the answer: nothing more will come from us
                if (cb_.connection_closed)
                    cb_.connection_closed(f.stream, f.error ? std::error_code(f.error, std::generic_category())
                                                            : std::error_code());
                return;
            }
            case frame_type::event:
                s.pending_error = f.error;
                return;
            case frame_type::eof:
                if (s.peer_eof) { stream_fault(f.stream, *e); return; }  // a second eof
                s.peer_eof = true;
                if (s.state == phase::open && cb_.message_received) cb_.message_received(f.stream);  // readers see the end
                return;
            case frame_type::request:
                if (s.request_in) { stream_fault(f.stream, *e); return; }  // one call at a time
                s.request_in = true;
                s.request_in_id = f.request_id;
                s.call_in = f.call;
                if (s.state == phase::open && cb_.request_received) cb_.request_received(f.stream, f);
                return;
            case frame_type::reply:
                if (s.request_out == 0 || f.request_id != s.request_out || f.call != s.call_out) {
                    stream_fault(f.stream, *e);
                    return;
                }
                s.request_out = 0;
                if (s.state == phase::open && cb_.reply_received) cb_.reply_received(f.stream, f);
                return;
            default:
                return;
        }
    }

    void handle_open(const saps::frame& f) {
        const stream_id id = open_slot();
        if (id == no_stream) {
            ++counters_.opens_refused;
            push_control(saps::frame::make_refuse(f.id, ECONNREFUSED));
            return;
        }
        auto* e = table_.find(id);
        stream_state& s = e->user;
        s.state = phase::open;
        s.peer = f.id;
        s.tag = f.tag; s.remote = f.peer; s.local = f.local;
        e->tx = basic_credit_sender<>(0, f.limit, f.limit);
        int verdict = 0;
        const std::size_t mark = control_.size();
        if (cb_.connection_accepted) {
            // Whatever the callback sends must follow the accept, which is only written once the
            // verdict is known: hold the writer until then and put the accept at `mark`.
            hold_output_ = true;
            verdict = cb_.connection_accepted(id, f);
            hold_output_ = false;
        }
        if (failed_) return;
        if (verdict > 0) {
            table_.release(id);  // no-op if the callback closed it already
            ++counters_.opens_refused;
            push_control(saps::frame::make_refuse(f.id, verdict));
            return;
        }
        std::array<std::byte, encoded_accept_size> accept{};
        (void)saps::encode(saps::frame::make_accept(f.id, id, cfg_.window), accept);
        control_.insert(control_.begin() + static_cast<std::ptrdiff_t>(mark), accept.begin(), accept.end());
        ++counters_.frames_out;
        notify_output();
    }

    void handle_answer(const saps::frame& f, credit_table<stream_state>::entry& e) {
        stream_state& s = e.user;
        const stream_id id = f.stream;
        if (f.type == saps::frame_type::refuse) {
            const bool tell = s.state == phase::opening;
            table_.release(id);
            if (tell && cb_.connection_established)
                cb_.connection_established(id, std::error_code(f.error, std::generic_category()));
            return;
        }
        s.peer = f.id;
        e.tx = basic_credit_sender<>(0, f.limit, f.limit);
        if (s.state == phase::closing) {  // closed while opening: close now that the peer is known
            send_close(s, s.close_reason);
            return;
        }
        s.state = phase::open;
        if (cb_.connection_established) cb_.connection_established(id, {});
    }

    static constexpr std::size_t encoded_accept_size = saps::header_size + 12;

    mux_config cfg_;
    mux_callbacks cb_;
    credit_table<stream_state> table_;
    saps::frame_decoder decoder_;
    detail::slot_queue grants_;  // streams owing a grant
    detail::slot_queue ready_;   // streams with data and credit, in round-robin order
    std::vector<std::byte> control_;
    std::size_t control_sent_ = 0;
    std::size_t peer_max_frame_ = saps::header_size + 56;  // until the hello says more
    mux_counters counters_;
    std::error_code failed_;
    std::uint32_t next_request_ = 0;
    bool hello_sent_ = false, hello_seen_ = false, hold_output_ = false;
};

}  // namespace clusternet
