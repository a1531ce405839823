#include "capi_relay/upload/backoff.hpp"

#include <algorithm>

namespace capi_relay {

Backoff::Backoff(int64_t initial_ms, int64_t max_ms, RandomSource& random)
    : initial_ms_(std::max<int64_t>(initial_ms, 1)),
      max_ms_(std::max<int64_t>(max_ms, 1)),
      random_(random) {}

int64_t Backoff::failure(int64_t now_steady_ms, std::optional<int64_t> retry_after_ms) {
  // initial * 2^n, saturating at max without overflowing.
  int64_t ceiling = initial_ms_;
  for (uint32_t i = 0; i < failures_ && ceiling < max_ms_; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, max_ms_);
  int64_t delay = static_cast<int64_t>(random_.uniform01() * static_cast<double>(ceiling));
  delay = std::clamp<int64_t>(delay, 0, ceiling);
  if (retry_after_ms) delay = std::max(delay, *retry_after_ms);
  if (failures_ < 64) ++failures_;
  not_before_ = std::max(not_before_, now_steady_ms + delay);
  return delay;
}

void Backoff::success() {
  failures_ = 0;
  // A Retry-After window the server asked for still holds; only the exponent resets.
}

}  // namespace capi_relay
