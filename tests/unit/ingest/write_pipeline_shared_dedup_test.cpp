// WritePipeline with a shared dedup store (Redis): requests with keys claimed by another relay
// (kBusy) wait and are claimed again; keys the store cannot decide (kUnavailable) answer 503.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <set>

#include "capi_relay/dedup/redis_dedup.hpp"
#include "capi_relay/ingest/write_pipeline.hpp"
#include "capi_relay/metrics/registry.hpp"
#include "pipeline_fakes.hpp"

namespace capi_relay {
namespace {

using namespace std::chrono_literals;

using testing::MemorySpool;
using SharedDedup = testing::RecordingDedup;

struct Fixture {
  MemorySpool spool;
  SharedDedup dedup;
  metrics::Registry registry;
  metrics::RelayMetrics m{registry};
  FakeClock clock;
  WritePipeline pipeline{spool, dedup, m, clock, FsyncMode::kBatch, 64, [] {}};
};

std::future<std::unique_ptr<WriteRequest>> submit(WritePipeline& p, std::initializer_list<uint64_t> keys) {
  auto r = std::make_unique<WriteRequest>();
  for (auto k : keys) r->add("record-" + std::to_string(k), k);
  auto done = std::make_shared<std::promise<std::unique_ptr<WriteRequest>>>();
  auto f = done->get_future();
  r->done = [done](std::unique_ptr<WriteRequest> w) { done->set_value(std::move(w)); };
  EXPECT_TRUE(p.submit(r));
  return f;
}

// Waits (bounded, real time) until the writer has made at least n claims.
bool claims_reach(SharedDedup& d, int n) {
  for (int i = 0; i < 500 && d.claim_count() < n; ++i) std::this_thread::sleep_for(2ms);
  return d.claim_count() >= n;
}

TEST(WritePipelineSharedDedup, BusyKeyWaitsUntilTheOtherRelayCommitsThenIsADuplicate) {
  Fixture f;
  f.dedup.foreign = {1};
  f.pipeline.start();
  auto fut = submit(f.pipeline, {1, 2});
  ASSERT_TRUE(claims_reach(f.dedup, 1));
  // Set aside: its own claim (key 2) released, nothing written, no answer yet.
  EXPECT_EQ(fut.wait_for(50ms), std::future_status::timeout);
  EXPECT_TRUE(f.dedup.was_released(2));
  EXPECT_TRUE(f.spool.durable().empty());
  // Other requests are not held up meanwhile.
  auto other = submit(f.pipeline, {3}).get();
  EXPECT_EQ(other->duplicate, (std::vector<uint8_t>{0}));

  f.dedup.other_relay_commits(1);
  f.clock.advance_ms(10);  // the re-claim period
  ASSERT_EQ(fut.wait_for(5s), std::future_status::ready);
  auto w = fut.get();
  EXPECT_EQ(w->status, WriteStatus::kOk);
  EXPECT_EQ(w->duplicate, (std::vector<uint8_t>{1, 0}));
  EXPECT_EQ(f.spool.durable(), (std::vector<std::string>{"record-3", "record-2"}));
  EXPECT_TRUE(f.dedup.committed.count(2));
  f.pipeline.stop();
}

TEST(WritePipelineSharedDedup, BusyKeyIsAcceptedWhenTheOtherRelayReleasesIt) {
  Fixture f;
  f.dedup.foreign = {5};
  f.pipeline.start();
  auto fut = submit(f.pipeline, {5});
  ASSERT_TRUE(claims_reach(f.dedup, 1));
  EXPECT_EQ(fut.wait_for(30ms), std::future_status::timeout);
  f.dedup.other_relay_releases(5);  // its write failed
  f.clock.advance_ms(10);
  ASSERT_EQ(fut.wait_for(5s), std::future_status::ready);
  auto w = fut.get();
  EXPECT_EQ(w->duplicate, (std::vector<uint8_t>{0}));
  EXPECT_EQ(f.spool.durable(), (std::vector<std::string>{"record-5"}));
  f.pipeline.stop();
}

TEST(WritePipelineSharedDedup, KeyStillBusyAfterTheLeaseIsADuplicate) {
  Fixture f;
  f.dedup.foreign = {7};
  f.pipeline.start();
  auto fut = submit(f.pipeline, {7, 8});
  ASSERT_TRUE(claims_reach(f.dedup, 1));
  f.clock.advance_ms(kRedisClaimLeaseMs / 2);
  ASSERT_TRUE(claims_reach(f.dedup, 2));  // claimed again, still busy
  EXPECT_EQ(fut.wait_for(30ms), std::future_status::timeout);
  f.clock.advance_ms(kRedisClaimLeaseMs / 2);
  ASSERT_EQ(fut.wait_for(5s), std::future_status::ready);
  auto w = fut.get();
  EXPECT_EQ(w->status, WriteStatus::kOk);
  EXPECT_EQ(w->duplicate, (std::vector<uint8_t>{1, 0}));
  EXPECT_EQ(f.spool.durable(), (std::vector<std::string>{"record-8"}));
  f.pipeline.stop();
}

TEST(WritePipelineSharedDedup, UnavailableStoreFailsTheRequestWithoutWriting) {
  Fixture f;
  f.dedup.unavailable = true;
  f.pipeline.start();
  auto w = submit(f.pipeline, {9, 10}).get();
  EXPECT_EQ(w->status, WriteStatus::kWriteFailed);
  EXPECT_TRUE(f.spool.durable().empty());
  EXPECT_TRUE(f.dedup.committed.empty());
  f.dedup.unavailable = false;
  auto again = submit(f.pipeline, {9, 10}).get();
  EXPECT_EQ(again->status, WriteStatus::kOk);
  EXPECT_EQ(again->duplicate, (std::vector<uint8_t>{0, 0}));
  f.pipeline.stop();
}

TEST(WritePipelineSharedDedup, StoppingAnswersWaitingRequestsShuttingDown) {
  Fixture f;
  f.dedup.foreign = {11};
  f.pipeline.start();
  auto fut = submit(f.pipeline, {11, 12});
  ASSERT_TRUE(claims_reach(f.dedup, 1));
  f.pipeline.stop();
  ASSERT_EQ(fut.wait_for(5s), std::future_status::ready);
  auto w = fut.get();
  EXPECT_EQ(w->status, WriteStatus::kShuttingDown);
  EXPECT_TRUE(f.spool.durable().empty());
  EXPECT_FALSE(f.dedup.pending.count(12));
}

}  // namespace
}  // namespace capi_relay
