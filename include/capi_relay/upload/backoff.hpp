#pragma once
// Backoff: the ONE retry schedule shared by every request to an upstream, so that concurrent
// in-flight batches failing together do not each start their own storm.
// After the n-th consecutive failure (n = 0, 1, ...) the upstream is closed for
//   delay = uniform01() * min(max_backoff, initial_backoff * 2^n)      (full jitter)
// and never less than a Retry-After the server sent (a floor). success() resets n; a window that
// is already open (not_before in the future) is only ever extended, never shortened.
// Times are steady-clock milliseconds of the injected Clock.
// Threading: not thread-safe; owned by the uploader thread.
#include <cstdint>
#include <optional>

#include "capi_relay/common/clock.hpp"

namespace capi_relay {

class Backoff {
 public:
  Backoff(int64_t initial_ms, int64_t max_ms, RandomSource& random);
  // Records a failure at now_steady_ms; returns the delay chosen (ms).
  int64_t failure(int64_t now_steady_ms, std::optional<int64_t> retry_after_ms = std::nullopt);
  void success();
  // Steady time before which no request may go out (<= now: open).
  int64_t not_before() const { return not_before_; }
  uint32_t consecutive_failures() const { return failures_; }

 private:
  int64_t initial_ms_;
  int64_t max_ms_;
  RandomSource& random_;
  uint32_t failures_ = 0;
  int64_t not_before_ = 0;
};

}  // namespace capi_relay
