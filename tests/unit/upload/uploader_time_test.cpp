// The Uploader's time-driven failure policy with a FakeClock (no sleeping for logic): an event
// that cannot be delivered before it is 90 days old is dead-lettered as `expired` and never sent
// late; a Retry-After window is never anticipated; a paused uploader re-checks every
// pause_recheck. The loop is woken with notify() after each clock step; the short real waits
// only give its thread a chance to run.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "capi_relay/dedup/local_dedup.hpp"
#include "capi_relay/event/record.hpp"
#include "capi_relay/metrics/registry.hpp"
#include "capi_relay/upload/uploader.hpp"
#include "fakes/fake_linkedin.hpp"
#include "uploader_test_support.hpp"

namespace capi_relay {
namespace {

using testing::append_accepted;
using testing::eventually;
using testing::fresh_test_dir;
using testing::FakeLinkedIn;
using testing::open_uploader_stores;
using testing::uploader_test_config;
using testing::UploaderStores;
using testing::FakeRequest;
using testing::FakeResponse;

constexpr int64_t kHourMs = 3600 * 1000;
constexpr int64_t kDayMs = 24 * kHourMs;

class UploaderTimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fresh_test_dir("capi_relay_uploader_time_");
    config_ = uploader_test_config(dir_, fake_.base_url());
    config_.linkedin.batch_max_events = 100;
    config_.linkedin.max_in_flight = 1;
    config_.linkedin.flush_interval = std::chrono::milliseconds(0);
    config_.linkedin.retry.initial_backoff = std::chrono::milliseconds(1000);
    config_.linkedin.retry.max_backoff = std::chrono::milliseconds(60000);
    config_.linkedin.pause_recheck = std::chrono::milliseconds(5 * 60 * 1000);
    UploaderStores stores;
    ASSERT_TRUE(open_uploader_stores(dir_, clock_, stores));
    spool_ = std::move(stores.spool);
    dead_ = std::move(stores.dead);
    dedup_ = std::move(stores.dedup);
    fake_.set_responder([this](const FakeRequest& req) {
      ++requests_;
      return script_ ? script_(req) : FakeLinkedIn::accept_all(req);
    });
  }

  void TearDown() override {
    if (uploader_) uploader_->stop(clock_.steady_ms());
    uploader_.reset();
    std::filesystem::remove_all(dir_);
  }

  void spool_event(const std::string& id, int64_t age_ms) {
    NormalizedEvent e;
    e.rule_id = 123;
    e.happened_at_ms = clock_.now_ms() - age_ms;
    e.received_at_ms = clock_.now_ms();
    e.event_id = id;
    e.email_sha256 = std::string(64, 'a');
    ASSERT_TRUE(append_accepted(*spool_, *dedup_, e, clock_.now_ms()));
    ASSERT_TRUE(spool_->sync(true).ok());
  }

  void start() {
    uploader_ = Uploader::create(
        UploaderDeps{config_, *spool_, *dedup_, *dead_, metrics_, clock_, random_});
    uploader_->start();
    uploader_->notify();
  }

  // Moves the fake time on and wakes the uploader's loop.
  void advance(int64_t ms) {
    clock_.advance_ms(ms);
    uploader_->notify();
  }

  // Gives the loop time to act on what it was told (it must not send anything).
  void settle() { std::this_thread::sleep_for(std::chrono::milliseconds(150)); }

  std::filesystem::path dir_;
  FakeLinkedIn fake_;
  std::function<FakeResponse(const FakeRequest&)> script_;
  std::atomic<int> requests_{0};
  Config config_;
  FakeClock clock_;
  FixedRandom random_{0.5};
  metrics::Registry registry_;
  metrics::RelayMetrics metrics_{registry_};
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<DeadLetterStore> dead_;
  std::unique_ptr<DedupStore> dedup_;
  std::unique_ptr<Uploader> uploader_;
};

FakeResponse unavailable(const FakeRequest&) {
  FakeResponse r;
  r.status = 503;
  r.body = R"({"status":503,"message":"Service Unavailable"})";
  return r;
}

// An event retried through an outage that outlasts its 90 days is dead-lettered as expired,
// never sent late; a younger event in the same batch is still delivered.
TEST_F(UploaderTimeTest, EventThatTurns90DaysOldWhileRetryingIsDeadLetteredAsExpired) {
  script_ = unavailable;
  spool_event("almost-90-days", 90 * kDayMs - 2 * kHourMs);
  spool_event("young", kHourMs);
  start();
  ASSERT_TRUE(eventually([&] { return requests_.load() == 1; }));
  EXPECT_EQ(FakeLinkedIn::count_elements(fake_.requests()[0].body), 2u);
  // The backoff (0.5 s) is not over in fake time: nothing more goes out.
  settle();
  EXPECT_EQ(requests_.load(), 1);
  // Still within 90 days: retried with both.
  advance(kHourMs);
  ASSERT_TRUE(eventually([&] { return requests_.load() == 2; }));
  EXPECT_EQ(FakeLinkedIn::count_elements(fake_.requests()[1].body), 2u);
  // Past 90 days before the next retry: expired, the other one is sent alone.
  script_ = nullptr;
  advance(2 * kHourMs);
  ASSERT_TRUE(eventually([&] { return spool_->stats().pending_records == 0; }));
  ASSERT_EQ(requests_.load(), 3);
  const std::string last = fake_.requests()[2].body;
  EXPECT_EQ(FakeLinkedIn::count_elements(last), 1u);
  EXPECT_NE(last.find("\"eventId\":\"young\""), std::string::npos);
  EXPECT_EQ(last.find("almost-90-days"), std::string::npos) << "sent after 90 days";
  const auto letters = dead_->list();
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].reason, "expired");
  EXPECT_EQ(metrics_.events_dead_lettered.with("expired").value(), 1u);
  EXPECT_EQ(metrics_.events_uploaded.value(), 1u);
  // Its dedup key is released (a corrected, newer event with the same id is welcome).
  const uint64_t key = dedup_fingerprint(123, "almost-90-days");
  ClaimResult r;
  dedup_->claim({&key, 1}, {&r, 1}, clock_.now_ms());
  EXPECT_EQ(r, ClaimResult::kClaimed);
}

// An event that expires while uploads are paused is dead-lettered too (checked before each
// probe), not sent when the pause ends.
TEST_F(UploaderTimeTest, EventExpiringDuringAPauseIsNotSentWhenItEnds) {
  script_ = [](const FakeRequest&) {
    FakeResponse r;
    r.status = 426;
    r.body = R"({"status":426,"message":"version retired"})";
    return r;
  };
  spool_event("old", 90 * kDayMs - 2 * 60 * 1000);  // 90 days in 2 minutes
  start();
  ASSERT_TRUE(eventually([&] { return uploader_->status().paused; }));
  EXPECT_EQ(uploader_->status().paused_reason, "version_retired");
  script_ = nullptr;
  advance(4 * 60 * 1000);  // before pause_recheck (5 min): no probe
  settle();
  EXPECT_EQ(requests_.load(), 1);
  advance(60 * 1000);      // 5 min: probe time, but the event is now 90 days and a bit old
  ASSERT_TRUE(eventually([&] { return spool_->stats().pending_records == 0; }));
  EXPECT_EQ(requests_.load(), 1) << "an expired event was sent";
  ASSERT_EQ(dead_->size(), 1u);
  EXPECT_EQ(dead_->list()[0].reason, "expired");
}

// Retry-After is a floor on the shared backoff: not one request before it, one right after.
TEST_F(UploaderTimeTest, RetryAfterIsNeverAnticipated) {
  std::atomic<int> n{0};
  script_ = [&n](const FakeRequest& req) {
    if (n++ == 0) {
      FakeResponse r;
      r.status = 429;
      r.headers = {{"Retry-After", "30"}};
      return r;
    }
    return FakeLinkedIn::accept_all(req);
  };
  spool_event("e-1", kHourMs);
  start();
  ASSERT_TRUE(eventually([&] { return requests_.load() == 1; }));
  ASSERT_TRUE(eventually([&] { return metrics_.upload_retries.value() == 1; }));
  advance(30'000);  // the floor is Retry-After + 1 ms (wall -> steady rounding)
  settle();
  EXPECT_EQ(requests_.load(), 1) << "Retry-After: 30 anticipated";
  advance(1);
  ASSERT_TRUE(eventually([&] { return spool_->stats().pending_records == 0; }));
  EXPECT_EQ(requests_.load(), 2);
}

// A 429 without Retry-After backs off exponentially with full jitter, capped, one probe per
// window (max_in_flight 2, yet one request per window).
TEST_F(UploaderTimeTest, ThrottlingWithoutRetryAfterFollowsTheCappedSchedule) {
  config_.linkedin.max_in_flight = 2;
  config_.linkedin.batch_max_events = 1;
  config_.linkedin.retry.max_backoff = std::chrono::milliseconds(4000);
  script_ = [](const FakeRequest&) {
    FakeResponse r;
    r.status = 429;
    return r;
  };
  spool_event("a", kHourMs);
  spool_event("b", kHourMs);
  start();
  // Both batches go out at first (no failure yet), then one probe per window:
  // delays 0.5*1000, 0.5*2000, 0.5*4000, 0.5*4000 (cap) ms.
  ASSERT_TRUE(eventually([&] { return requests_.load() == 2; }));
  ASSERT_TRUE(eventually([&] { return metrics_.upload_retries.value() == 2; }));
  const int64_t windows[] = {1000, 2000, 2000, 2000};
  int expected = 2;
  for (int64_t w : windows) {
    advance(w - 1);
    settle();
    EXPECT_EQ(requests_.load(), expected) << "probe before the backoff window ended";
    advance(1);
    ++expected;
    ASSERT_TRUE(eventually([&] { return requests_.load() == expected; })) << w;
    ASSERT_TRUE(eventually([&] {
      return metrics_.upload_retries.value() == static_cast<uint64_t>(expected);
    }));
  }
  settle();
  EXPECT_EQ(requests_.load(), expected) << "more than one probe per window";
}

}  // namespace
}  // namespace capi_relay
