#include "capi_relay/upload/rate_limiter.hpp"

namespace capi_relay {

RateLimiter::RateLimiter(uint64_t per_minute, uint64_t per_day, Clock& clock)
    : per_minute_(per_minute), per_day_(per_day), clock_(clock) {}

int64_t RateLimiter::try_acquire() {
  const int64_t steady = clock_.steady_ms();
  const int64_t wall = clock_.now_ms();
  int64_t wait = 0;
  if (per_day_ > 0) {
    const int64_t day = wall >= 0 ? wall / kDayMs : (wall - kDayMs + 1) / kDayMs;
    if (day != day_) {  // 00:00 UTC passed (or first use): a fresh daily budget
      day_ = day;
      day_count_ = 0;
    }
    if (day_count_ >= per_day_) wait = (day + 1) * kDayMs - wall;
  }
  if (per_minute_ > 0) {
    while (!recent_.empty() && recent_.front() <= steady - kMinuteMs) recent_.pop_front();
    if (recent_.size() >= per_minute_) {
      wait = std::max(wait, recent_.front() + kMinuteMs - steady);
    }
  }
  if (wait > 0) return wait;
  if (per_day_ > 0) ++day_count_;
  if (per_minute_ > 0) recent_.push_back(steady);
  return 0;
}

}  // namespace capi_relay
