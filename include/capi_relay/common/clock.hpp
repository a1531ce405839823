#pragma once
// Injected time and randomness: every component that waits, expires or jitters takes a Clock& and
// a RandomSource&, so tests drive time by hand (FakeClock) instead of sleeping.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>

namespace capi_relay {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall time, Unix epoch milliseconds (event timestamps, expiry, dedup window).
  virtual int64_t now_ms() const = 0;
  // Monotonic time in milliseconds from an arbitrary origin (timeouts, backoff, rates).
  virtual int64_t steady_ms() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t now_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t steady_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  static SystemClock& instance() {
    static SystemClock c;
    return c;
  }
};

// A clock that moves only when told to. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t now_ms = 1764320000000, int64_t steady_ms = 1000000)
      : now_(now_ms), steady_(steady_ms) {}
  int64_t now_ms() const override { return now_.load(); }
  int64_t steady_ms() const override { return steady_.load(); }
  void advance_ms(int64_t ms) {
    now_ += ms;
    steady_ += ms;
  }
  void set_now_ms(int64_t ms) { now_ = ms; }

 private:
  std::atomic<int64_t> now_;
  std::atomic<int64_t> steady_;
};

// Source of uniform random numbers in [0, 1) (backoff jitter, random event IDs). Thread-safe.
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual double uniform01() = 0;
  virtual uint64_t next_u64() = 0;
};

class SystemRandom final : public RandomSource {
 public:
  SystemRandom() : gen_(std::random_device{}()) {}
  double uniform01() override {
    std::lock_guard lock(mu_);
    return std::uniform_real_distribution<double>(0.0, 1.0)(gen_);
  }
  uint64_t next_u64() override {
    std::lock_guard lock(mu_);
    return gen_();
  }
  static SystemRandom& instance() {
    static SystemRandom r;
    return r;
  }

 private:
  std::mutex mu_;
  std::mt19937_64 gen_;
};

// Deterministic: returns the scripted value (tests).
class FixedRandom final : public RandomSource {
 public:
  explicit FixedRandom(double v = 0.5) : v_(v) {}
  double uniform01() override { return v_; }
  uint64_t next_u64() override { return ++counter_; }
  void set(double v) { v_ = v; }

 private:
  double v_;
  std::atomic<uint64_t> counter_{0};
};

}  // namespace capi_relay
