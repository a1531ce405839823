#pragma once
// SharedRateBudget: linkedin.rate_limit with `shared: true` — one request budget toward LinkedIn
// for every relay using the same Redis (dedup.redis_url), since LinkedIn's quotas are per app.
//
// Windows are fixed and aligned on the wall clock (Clock::now_ms, so relays need synced clocks):
// key <prefix>m:<unix minute> counts requests in that minute, <prefix>d:<UTC day> in that UTC day
// (resetting at 00:00 UTC like LinkedIn's quotas). One Lua script per request checks both counts
// and increments them only when both are under their limits (INCR + PEXPIRE on first use), so
// relays never overdraw. Fixed minute windows allow up to 2 x per_minute within 60 s across a
// minute boundary; a sliding window would need a sorted set per request.
// Threading: not thread-safe (the uploader thread owns it). Errors: Redis unreachable or failing;
// the caller then falls back to its local RateLimiter. After a failure Redis is not tried again
// for retry_after_ms (steady clock), answering the error at once meanwhile.
#include <cstdint>
#include <memory>
#include <string>

#include "capi_relay/common/clock.hpp"
#include "capi_relay/common/result.hpp"

namespace capi_relay {

struct SharedRateBudgetOptions {
  std::string url = "redis://127.0.0.1:6379/0";
  std::string key_prefix = "capi:rate:";
  uint64_t per_minute = 0;  // 0: no limit
  uint64_t per_day = 0;     // 0: no limit
  int connect_timeout_ms = 1000;
  int io_timeout_ms = 1000;
  int64_t retry_after_ms = 3000;
};

class SharedRateBudget {
 public:
  virtual ~SharedRateBudget() = default;
  // 0: one request taken from the shared budget; > 0: ms until the exhausted window ends (nothing
  // taken); an error: Redis could not be asked.
  virtual Result<int64_t> try_acquire() = 0;
};

// Errors: a malformed URL. Redis is contacted lazily.
Result<std::unique_ptr<SharedRateBudget>> open_shared_rate_budget(const SharedRateBudgetOptions& opts,
                                                                  Clock& clock);

}  // namespace capi_relay
