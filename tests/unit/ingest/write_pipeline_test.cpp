// WritePipeline: group commit, dedup claim/commit/release around the spool sync, backpressure.
#include "capi_relay/ingest/write_pipeline.hpp"

#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <mutex>
#include <set>

#include "capi_relay/metrics/registry.hpp"
#include "pipeline_fakes.hpp"

namespace capi_relay {
namespace {

using testing::MemorySpool;
using testing::RecordingDedup;

struct Fixture {
  MemorySpool spool;
  RecordingDedup dedup;
  metrics::Registry registry;
  metrics::RelayMetrics m{registry};
  FakeClock clock;
  std::atomic<int> notified{0};
  WritePipeline pipeline{spool, dedup, m, clock, FsyncMode::kBatch, 64, [this] { ++notified; }};
};

std::unique_ptr<WriteRequest> request(std::initializer_list<uint64_t> keys) {
  auto r = std::make_unique<WriteRequest>();
  for (auto k : keys) r->add("record-" + std::to_string(k), k);
  return r;
}

// Submits and waits for the writer's verdict.
std::unique_ptr<WriteRequest> write(WritePipeline& p, std::unique_ptr<WriteRequest> r) {
  std::promise<std::unique_ptr<WriteRequest>> done;
  auto f = done.get_future();
  r->done = [&done](std::unique_ptr<WriteRequest> w) { done.set_value(std::move(w)); };
  EXPECT_TRUE(p.submit(r));
  return f.get();
}

TEST(WritePipeline, CommitsKeysOnlyAfterTheSpoolSync) {
  Fixture f;
  f.pipeline.start();
  auto w = write(f.pipeline, request({1, 2, 1}));
  EXPECT_EQ(w->status, WriteStatus::kOk);
  EXPECT_EQ(w->duplicate, (std::vector<uint8_t>{0, 0, 1}));  // same key twice in one body
  EXPECT_EQ(f.spool.durable().size(), 2u);
  EXPECT_EQ(f.dedup.committed, (std::set<uint64_t>{1, 2}));
  EXPECT_TRUE(f.dedup.pending.empty());
  EXPECT_GE(f.notified.load(), 1);
  // A later request with a known key is a duplicate and writes nothing new.
  auto again = write(f.pipeline, request({2, 3}));
  EXPECT_EQ(again->duplicate, (std::vector<uint8_t>{1, 0}));
  EXPECT_EQ(f.spool.durable().size(), 3u);
  f.pipeline.stop();
}

TEST(WritePipeline, FailedSyncReleasesClaimsAndAnswersFailure) {
  Fixture f;
  f.pipeline.start();
  f.spool.fail_sync = true;
  auto w = write(f.pipeline, request({10, 11}));
  EXPECT_EQ(w->status, WriteStatus::kWriteFailed);
  EXPECT_TRUE(f.dedup.committed.empty());
  EXPECT_TRUE(f.dedup.pending.empty());
  EXPECT_EQ(f.dedup.released, (std::set<uint64_t>{10, 11}));
  // The disk recovers: the same keys are accepted, not duplicates.
  f.spool.fail_sync = false;
  auto retry = write(f.pipeline, request({10, 11}));
  EXPECT_EQ(retry->status, WriteStatus::kOk);
  EXPECT_EQ(retry->duplicate, (std::vector<uint8_t>{0, 0}));
  f.pipeline.stop();
}

TEST(WritePipeline, FullSpoolRefusesAndLeavesNoClaim) {
  Fixture f;
  f.spool.limit = 4;  // smaller than any record
  f.pipeline.start();
  auto w = write(f.pipeline, request({20}));
  EXPECT_EQ(w->status, WriteStatus::kSpoolFull);
  EXPECT_TRUE(f.dedup.pending.empty());
  EXPECT_TRUE(f.dedup.committed.empty());
  EXPECT_TRUE(f.spool.durable().empty());
  f.pipeline.stop();
}

// Submits without waiting; the verdict arrives on the returned future.
std::future<std::unique_ptr<WriteRequest>> submit(WritePipeline& p, std::unique_ptr<WriteRequest> r) {
  auto done = std::make_shared<std::promise<std::unique_ptr<WriteRequest>>>();
  auto f = done->get_future();
  r->done = [done](std::unique_ptr<WriteRequest> w) { done->set_value(std::move(w)); };
  EXPECT_TRUE(p.submit(r));
  return f;
}

TEST(WritePipeline, OneClaimForAWholeCommitGroup) {
  Fixture f;  // requests queue up before the writer starts: they form one group
  auto a = submit(f.pipeline, request({40, 41}));
  auto b = submit(f.pipeline, request({42}));
  auto c = submit(f.pipeline, request({41, 43}));  // 41 also in a: a duplicate here
  f.pipeline.start();
  EXPECT_EQ(a.get()->duplicate, (std::vector<uint8_t>{0, 0}));
  EXPECT_EQ(b.get()->duplicate, (std::vector<uint8_t>{0}));
  EXPECT_EQ(c.get()->duplicate, (std::vector<uint8_t>{1, 0}));
  EXPECT_EQ(f.dedup.claim_count(), 1);  // one round trip to a shared store, not three
  EXPECT_EQ(f.spool.durable().size(), 4u);
  f.pipeline.stop();
}

TEST(WritePipeline, KeysOfARequestRefusedInTheGroupAreAcceptedByALaterOne) {
  Fixture f;
  f.spool.limit = 30;  // room for one small record, not for three
  auto big = submit(f.pipeline, request({7, 8, 9}));
  auto small = submit(f.pipeline, request({7}));  // same key as the refused request
  f.pipeline.start();
  EXPECT_EQ(big.get()->status, WriteStatus::kSpoolFull);
  auto w = small.get();
  EXPECT_EQ(w->status, WriteStatus::kOk);
  EXPECT_EQ(w->duplicate, (std::vector<uint8_t>{0}));  // accepted: the first request kept nothing
  EXPECT_EQ(f.spool.durable().size(), 1u);
  EXPECT_EQ(f.dedup.committed, (std::set<uint64_t>{7}));
  EXPECT_TRUE(f.dedup.pending.empty());
  f.pipeline.stop();
}

TEST(WritePipeline, ReplayBypassesDedupAndRecommitsKeys) {
  Fixture f;
  f.pipeline.start();
  ASSERT_EQ(write(f.pipeline, request({30}))->status, WriteStatus::kOk);
  auto replay = request({30});
  replay->bypass_dedup = true;
  auto w = write(f.pipeline, std::move(replay));
  EXPECT_EQ(w->status, WriteStatus::kOk);
  EXPECT_EQ(w->duplicate, (std::vector<uint8_t>{0}));
  EXPECT_EQ(f.spool.durable().size(), 2u);
  EXPECT_TRUE(f.dedup.committed.count(30));
  f.pipeline.stop();
}

TEST(WritePipeline, ConcurrentRequestsShareCommitGroupsAndEachKeyIsAcceptedOnce) {
  Fixture f;
  f.pipeline.start();
  constexpr int kThreads = 4, kPerThread = 200;
  std::atomic<int> accepted{0}, duplicates{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        // Every thread posts the same keys: exactly one acceptance per key overall.
        auto w = write(f.pipeline, request({static_cast<uint64_t>(1000 + i)}));
        (w->duplicate[0] ? duplicates : accepted)++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(accepted.load(), kPerThread);
  EXPECT_EQ(duplicates.load(), kPerThread * (kThreads - 1));
  EXPECT_EQ(f.spool.durable().size(), static_cast<size_t>(kPerThread));
  f.pipeline.stop();
}

TEST(WritePipeline, FullQueueRefusesSubmission) {
  Fixture f;  // not started: nothing drains the queue
  int refused = 0;
  for (int i = 0; i < 100; ++i) {
    auto r = request({static_cast<uint64_t>(i)});
    r->done = [](std::unique_ptr<WriteRequest>) {};
    if (!f.pipeline.submit(r)) ++refused;
  }
  EXPECT_EQ(refused, 100 - 64);
}

}  // namespace
}  // namespace capi_relay
