#pragma once
// BoundedQueue<T>: a lock-free bounded multi-producer queue (Dmitry Vyukov's array-based design:
// one sequence number per cell, producers claim a position with a CAS on the tail) with a single
// consumer that parks when the queue is empty instead of spinning.
//
// Memory ordering contract: a producer's writes to the element happen-before the consumer's read
// of it (release store of the cell sequence, acquire load by the consumer). try_push never blocks
// and fails when the queue is full (the caller turns that into backpressure: HTTP 503). The
// consumer calls pop() / wait_for(); producers wake a parked consumer with one futex-style notify
// only when the consumer announced that it is going to sleep.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

namespace capi_relay {

template <class T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity_pow2) : mask_(round_up(capacity_pow2) - 1) {
    cells_ = std::make_unique<Cell[]>(mask_ + 1);
    for (size_t i = 0; i <= mask_; ++i) cells_[i].seq.store(i, std::memory_order_relaxed);
  }
  BoundedQueue(const BoundedQueue&) = delete;
  BoundedQueue& operator=(const BoundedQueue&) = delete;

  size_t capacity() const { return mask_ + 1; }

  // Any thread. False when full (value is left untouched).
  bool try_push(T& value) {
    size_t pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      Cell& c = cells_[pos & mask_];
      size_t seq = c.seq.load(std::memory_order_acquire);
      auto diff = static_cast<std::ptrdiff_t>(seq) - static_cast<std::ptrdiff_t>(pos);
      if (diff == 0) {
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          c.value = std::move(value);
          c.seq.store(pos + 1, std::memory_order_release);
          size_.fetch_add(1, std::memory_order_seq_cst);  // ordered against sleeping_ (Dekker)
          if (sleeping_.load(std::memory_order_seq_cst)) {
            std::lock_guard lock(mu_);
            cv_.notify_one();
          }
          return true;
        }
      } else if (diff < 0) {
        return false;  // full
      } else {
        pos = tail_.load(std::memory_order_relaxed);
      }
    }
  }

  // Consumer thread only. Empty optional when nothing is queued.
  std::optional<T> try_pop() {
    Cell& c = cells_[head_ & mask_];
    size_t seq = c.seq.load(std::memory_order_acquire);
    if (static_cast<std::ptrdiff_t>(seq) - static_cast<std::ptrdiff_t>(head_ + 1) < 0)
      return std::nullopt;
    std::optional<T> out(std::move(c.value));
    c.value = T{};
    c.seq.store(head_ + mask_ + 1, std::memory_order_release);
    ++head_;
    size_.fetch_sub(1, std::memory_order_relaxed);
    return out;
  }

  // Consumer thread only: parks until something may be queued, `timeout` passes or wake() is
  // called. Spurious returns are allowed; the caller re-checks with try_pop().
  void wait_for(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    sleeping_.store(true, std::memory_order_seq_cst);
    if (size_.load(std::memory_order_seq_cst) == 0 && !woken_)
      cv_.wait_for(lock, timeout);
    woken_ = false;
    sleeping_.store(false, std::memory_order_relaxed);
  }

  // Any thread: makes the consumer's current or next wait_for return.
  void wake() {
    std::lock_guard lock(mu_);
    woken_ = true;
    cv_.notify_one();
  }

  size_t size_approx() const { return size_.load(std::memory_order_relaxed); }

 private:
  struct Cell {
    std::atomic<size_t> seq{0};
    T value{};
  };
  static size_t round_up(size_t n) {
    size_t p = 2;
    while (p < n) p <<= 1;
    return p;
  }

  const size_t mask_;
  std::unique_ptr<Cell[]> cells_;
  alignas(64) std::atomic<size_t> tail_{0};
  alignas(64) size_t head_ = 0;
  std::atomic<size_t> size_{0};
  std::atomic<bool> sleeping_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
};

}  // namespace capi_relay
