// clusternet/sim/event_queue.hpp -- the future-event list of the discrete-event simulator.
//
// A binary min-heap of (time, sequence, payload). Events run in time order; events at the same
// time run in the order they were scheduled (the sequence number breaks ties), so a run never
// depends on the heap's internal arrangement: the same schedule gives the same order, bit for
// bit, on every platform. Times are doubles in simulated seconds.
//
// Cost: push and pop O(log n) (std::push_heap / std::pop_heap on a std::vector); push may
// allocate (amortised) and throw std::bad_alloc. Not thread-safe: one simulator, one thread.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace clusternet::sim {

template <class Payload>
class event_queue {
public:
    struct event {
        double time = 0;
        std::uint64_t seq = 0;
        Payload payload{};
    };

    /// Schedules `p` at `time`. Precondition: time >= now() (events never run in the past).
    void push(double time, const Payload& p) {
        heap_.push_back(event{time < now_ ? now_ : time, next_seq_++, p});
        std::push_heap(heap_.begin(), heap_.end(), later);
    }
    /// Removes and returns the earliest event and advances now() to its time.
    /// Precondition: !empty().
    event pop() {
        std::pop_heap(heap_.begin(), heap_.end(), later);
        event e = heap_.back();
        heap_.pop_back();
        now_ = e.time;
        ++popped_;
        return e;
    }
    [[nodiscard]] const event& top() const noexcept { return heap_.front(); }
    [[nodiscard]] bool empty() const noexcept { return heap_.empty(); }
    [[nodiscard]] std::size_t size() const noexcept { return heap_.size(); }
    /// The time of the last popped event (0 before the first).
    [[nodiscard]] double now() const noexcept { return now_; }
    /// Events popped so far.
    [[nodiscard]] std::uint64_t processed() const noexcept { return popped_; }
    void reserve(std::size_t n) { heap_.reserve(n); }

private:
    // std heap functions build a max-heap: "a is later than b" puts the earliest on top.
    static bool later(const event& a, const event& b) noexcept {
        return a.time != b.time ? a.time > b.time : a.seq > b.seq;
    }
    std::vector<event> heap_;
    std::uint64_t next_seq_ = 0;
    std::uint64_t popped_ = 0;
    double now_ = 0;
};

}  // namespace clusternet::sim
