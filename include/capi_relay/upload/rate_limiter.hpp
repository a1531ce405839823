#pragma once
// RateLimiter: the client-side request budget toward LinkedIn (linkedin.rate_limit).
//   per_minute: at most N requests in any sliding 60 s window (steady clock);
//   per_day:    at most N requests per UTC day; the count resets at 00:00 UTC by the wall clock,
//               like LinkedIn's own quotas.
// 0 disables a limit. With `shared: true` the uploader draws from SharedRateBudget (Redis) first
// and falls back to this local budget only while Redis cannot be asked.
// Threading: not thread-safe; owned by the uploader thread.
#include <cstdint>
#include <algorithm>
#include <deque>

#include "capi_relay/common/clock.hpp"

namespace capi_relay {

class RateLimiter {
 public:
  RateLimiter(uint64_t per_minute, uint64_t per_day, Clock& clock);
  // Takes one request from the budget and returns 0, or returns how many ms to wait before
  // asking again (nothing taken).
  int64_t try_acquire();
  uint64_t used_today() const { return day_count_; }

 private:
  static constexpr int64_t kMinuteMs = 60'000;
  static constexpr int64_t kDayMs = 86'400'000;
  uint64_t per_minute_;
  uint64_t per_day_;
  Clock& clock_;
  std::deque<int64_t> recent_;  // steady ms of requests within the last minute
  int64_t day_ = -1;            // UTC day number of day_count_
  uint64_t day_count_ = 0;
};

}  // namespace capi_relay
