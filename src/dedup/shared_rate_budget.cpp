// SharedRateBudget over Redis: fixed per-minute and per-UTC-day counters, checked and taken in
// one Lua script.
#include "capi_relay/dedup/shared_rate_budget.hpp"

#include <climits>
#include <string>
#include <vector>

#include "redis_connection.hpp"

namespace capi_relay {
namespace {

using dedup_detail::RedisConnection;
using dedup_detail::RedisReply;

constexpr int64_t kMinuteMs = 60'000;
constexpr int64_t kDayMs = 86'400'000;

// KEYS[1] minute counter, KEYS[2] day counter; ARGV: per_minute, per_day, minute ttl, day ttl.
// Returns 0 (taken), 1 (minute exhausted) or 2 (day exhausted).
constexpr std::string_view kAcquireScript = R"lua(
local pm, pd = tonumber(ARGV[1]), tonumber(ARGV[2])
if pm > 0 and tonumber(redis.call('GET', KEYS[1]) or '0') >= pm then return 1 end
if pd > 0 and tonumber(redis.call('GET', KEYS[2]) or '0') >= pd then return 2 end
if pm > 0 and redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
if pd > 0 and redis.call('INCR', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
return 0
)lua";

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : (a - b + 1) / b; }

// Owns the connection; see the header for the contract.
class RedisRateBudget final : public SharedRateBudget {
 public:
  RedisRateBudget(const SharedRateBudgetOptions& opts, dedup_detail::RedisEndpoint ep, Clock& clock)
      : opts_(opts), clock_(clock), conn_(std::move(ep), opts.connect_timeout_ms, opts.io_timeout_ms) {}

  Result<int64_t> try_acquire() override {
    if (opts_.per_minute == 0 && opts_.per_day == 0) return int64_t{0};
    if (clock_.steady_ms() < retry_at_ms_) return Error{"redis rate budget: unavailable (retrying later)"};
    const int64_t now = clock_.now_ms();
    const int64_t minute = floor_div(now, kMinuteMs);
    const int64_t day = floor_div(now, kDayMs);
    conn_.begin_command(9);
    conn_.arg("EVAL");
    conn_.arg(kAcquireScript);
    conn_.arg(int64_t{2});
    conn_.arg(opts_.key_prefix + "m:" + std::to_string(minute));
    conn_.arg(opts_.key_prefix + "d:" + std::to_string(day));
    conn_.arg(static_cast<int64_t>(opts_.per_minute));
    conn_.arg(static_cast<int64_t>(opts_.per_day));
    conn_.arg(2 * kMinuteMs);  // keys outlive their window a little, then vanish
    conn_.arg(kDayMs + kMinuteMs * 60);
    auto r = conn_.exec(replies_);
    if (r && (replies_[0].type != RedisReply::Type::kInteger)) {
      conn_.close();
      r = Error{"redis rate budget: unexpected reply"};
    }
    if (!r) {
      retry_at_ms_ = clock_.steady_ms() + opts_.retry_after_ms;
      return Error{r.error()};
    }
    switch (replies_[0].integer) {
      case 0: return int64_t{0};
      case 1: return (minute + 1) * kMinuteMs - now;
      default: return (day + 1) * kDayMs - now;
    }
  }

 private:
  const SharedRateBudgetOptions opts_;
  Clock& clock_;
  RedisConnection conn_;
  std::vector<RedisReply> replies_;
  int64_t retry_at_ms_ = LLONG_MIN;
};

}  // namespace

Result<std::unique_ptr<SharedRateBudget>> open_shared_rate_budget(const SharedRateBudgetOptions& opts,
                                                                  Clock& clock) {
  auto ep = dedup_detail::parse_redis_url(opts.url);
  if (!ep) return Error{"dedup.redis_url: " + ep.error()};
  return std::unique_ptr<SharedRateBudget>(std::make_unique<RedisRateBudget>(opts, std::move(*ep), clock));
}

}  // namespace capi_relay
