#include "capi_relay/upload/backoff.hpp"

#include <gtest/gtest.h>

#include "capi_relay/upload/rate_limiter.hpp"

namespace capi_relay {
namespace {

TEST(Backoff, CappedExponentialWithFullJitter) {
  FixedRandom random(1.0 - 1e-12);  // just below the ceiling
  Backoff b(500, 60000, random);
  const int64_t now = 1000;
  const int64_t expected[] = {499, 999, 1999, 3999, 7999, 15999, 31999, 59999, 59999, 59999};
  for (int64_t want : expected) {
    EXPECT_EQ(b.failure(now), want);
  }
  EXPECT_EQ(b.consecutive_failures(), 10u);

  random.set(0.5);
  b.success();
  EXPECT_EQ(b.consecutive_failures(), 0u);
  EXPECT_EQ(b.failure(now), 250);  // back to the first step: 0.5 * 500
  EXPECT_EQ(b.failure(now), 500);  // 0.5 * 1000
}

TEST(Backoff, JitterCanBeZero) {
  FixedRandom random(0.0);
  Backoff b(500, 60000, random);
  EXPECT_EQ(b.failure(1000), 0);
  EXPECT_EQ(b.failure(1000), 0);
}

TEST(Backoff, OneSharedWindowOnlyExtends) {
  FixedRandom random(1.0 - 1e-12);
  Backoff b(1000, 60000, random);
  FakeClock clock;
  const int64_t t0 = clock.steady_ms();
  b.failure(t0);  // [0, 1000) -> not_before = t0 + 999
  EXPECT_EQ(b.not_before(), t0 + 999);
  random.set(0.0);
  b.failure(t0);  // a concurrent batch failing with a short delay does not shorten the window
  EXPECT_EQ(b.not_before(), t0 + 999);
  clock.advance_ms(5000);
  EXPECT_LE(b.not_before(), clock.steady_ms());  // open again
}

TEST(Backoff, RetryAfterIsAFloor) {
  FixedRandom random(0.1);
  Backoff b(500, 60000, random);
  EXPECT_EQ(b.failure(0, 30000), 30000);
  EXPECT_EQ(b.not_before(), 30000);
  // A Retry-After shorter than the jittered delay does not shorten it.
  random.set(1.0 - 1e-12);
  EXPECT_EQ(b.failure(0, 10), 999);
  // Success resets the exponent but keeps the server's window.
  b.success();
  EXPECT_EQ(b.not_before(), 30000);
}

TEST(RateLimiter, DisabledNeverWaits) {
  FakeClock clock;
  RateLimiter r(0, 0, clock);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(r.try_acquire(), 0);
}

TEST(RateLimiter, PerMinuteSlidingWindow) {
  FakeClock clock;
  RateLimiter r(3, 0, clock);
  EXPECT_EQ(r.try_acquire(), 0);
  clock.advance_ms(10000);
  EXPECT_EQ(r.try_acquire(), 0);
  EXPECT_EQ(r.try_acquire(), 0);
  EXPECT_EQ(r.try_acquire(), 50000);  // the first one leaves the window in 50 s
  clock.advance_ms(49999);
  EXPECT_EQ(r.try_acquire(), 1);
  clock.advance_ms(1);
  EXPECT_EQ(r.try_acquire(), 0);
  EXPECT_GT(r.try_acquire(), 0);
}

TEST(RateLimiter, PerDayResetsAtUtcMidnight) {
  // 2025-11-28T23:59:00Z
  const int64_t day_ms = 86400000;
  const int64_t midnight = (1764320000000 / day_ms + 1) * day_ms;
  FakeClock clock(midnight - 60000);
  RateLimiter r(0, 2, clock);
  EXPECT_EQ(r.try_acquire(), 0);
  EXPECT_EQ(r.try_acquire(), 0);
  EXPECT_EQ(r.try_acquire(), 60000);  // until 00:00 UTC
  EXPECT_EQ(r.used_today(), 2u);
  clock.advance_ms(60000);
  EXPECT_EQ(r.try_acquire(), 0);  // a new UTC day
  EXPECT_EQ(r.used_today(), 1u);
}

}  // namespace
}  // namespace capi_relay
