// End-to-end tests of the Uploader with the real Spool, DeadLetterStore and local dedup against
// the in-process fake LinkedIn.
#include "capi_relay/upload/uploader.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "capi_relay/dedup/local_dedup.hpp"
#include "capi_relay/event/element.hpp"
#include "capi_relay/event/record.hpp"
#include "capi_relay/metrics/registry.hpp"
#include "capi_relay/upload/token_store.hpp"
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

constexpr int64_t kDayMs = 86400000;

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class UploaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fresh_test_dir("capi_relay_uploader_");
    config_ = uploader_test_config(dir_, fake_.base_url());
    config_.linkedin.batch_max_events = 10;
    config_.linkedin.max_in_flight = 2;
    config_.linkedin.flush_interval = std::chrono::milliseconds(20);
    config_.linkedin.retry.initial_backoff = std::chrono::milliseconds(10);
    config_.linkedin.retry.max_backoff = std::chrono::milliseconds(40);
    config_.linkedin.pause_recheck = std::chrono::milliseconds(3600000);
    config_.linkedin.oauth.token_url = fake_.base_url() + "/oauth/v2/accessToken";
    UploaderStores stores;
    ASSERT_TRUE(open_uploader_stores(dir_, clock_, stores));
    spool_ = std::move(stores.spool);
    dead_ = std::move(stores.dead);
    dedup_ = std::move(stores.dedup);
  }

  void TearDown() override {
    if (uploader_) uploader_->stop(clock_.steady_ms());
    uploader_.reset();
    std::filesystem::remove_all(dir_);
  }

  NormalizedEvent event(int i, int64_t age_ms = 3600000) {
    NormalizedEvent e;
    e.rule_id = 123;
    e.happened_at_ms = clock_.now_ms() - age_ms;
    e.received_at_ms = clock_.now_ms();
    e.event_id = "order-" + std::to_string(i);
    e.amount = "10.00";
    e.currency = "USD";
    e.email_sha256 = std::string(64, 'a');
    if (i % 2 == 1) e.li_fat_id = "fat-" + std::to_string(i);
    return e;
  }

  // Appends, syncs and commits the dedup keys, as the ingest pipeline does.
  void spool_events(const std::vector<NormalizedEvent>& events) {
    for (const auto& e : events) ASSERT_TRUE(append_accepted(*spool_, *dedup_, e, clock_.now_ms()));
    ASSERT_TRUE(spool_->sync(true).ok());
  }
  void start() {
    uploader_ = Uploader::create(
        UploaderDeps{config_, *spool_, *dedup_, *dead_, metrics_, clock_, random_});
    uploader_->start();
    uploader_->notify();
  }

  bool spool_drained() { return spool_->stats().pending_records == 0; }

  static std::string batch_body(const std::vector<NormalizedEvent>& events) {
    std::string body;
    append_batch_json(events, body);
    return body;
  }

  std::filesystem::path dir_;
  FakeLinkedIn fake_;
  Config config_;
  SystemClock clock_;
  FixedRandom random_{0.5};
  metrics::Registry registry_;
  metrics::RelayMetrics metrics_{registry_};
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<DeadLetterStore> dead_;
  std::unique_ptr<DedupStore> dedup_;
  std::unique_ptr<Uploader> uploader_;
};

TEST_F(UploaderTest, SendsTheExactElementsWithContractHeaders) {
  const std::vector<NormalizedEvent> events = {event(0), event(1), event(2)};
  spool_events(events);
  start();
  ASSERT_TRUE(eventually([&] { return spool_drained(); }));
  ASSERT_EQ(fake_.request_count(), 1u);
  const FakeRequest req = fake_.requests().front();
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/rest/conversionEvents");
  EXPECT_EQ(req.headers.at("authorization"), "Bearer test-token");
  EXPECT_EQ(req.headers.at("linkedin-version"), "202609");
  EXPECT_EQ(req.headers.at("x-restli-protocol-version"), "2.0.0");
  EXPECT_EQ(req.headers.at("content-type"), "application/json");
  EXPECT_EQ(req.headers.at("x-restli-method"), "BATCH_CREATE");
  EXPECT_EQ(req.body, batch_body(events));
  EXPECT_EQ(metrics_.events_uploaded.value(), 3u);
  EXPECT_EQ(metrics_.upload_requests.with("200").value(), 1u);
  EXPECT_EQ(metrics_.identifiers.with("email").value(), 3u);
  EXPECT_EQ(metrics_.identifiers.with("li_fat_id").value(), 1u);
  EXPECT_EQ(dead_->size(), 0u);
  const UploadStatus st = uploader_->status();
  EXPECT_FALSE(st.paused);
  EXPECT_EQ(st.last_upload_status, 200);
  EXPECT_GT(st.last_upload_ms, 0);
}

TEST_F(UploaderTest, SplitsIntoBatchesOfAtMostBatchMaxEvents) {
  std::vector<NormalizedEvent> events;
  for (int i = 0; i < 25; ++i) events.push_back(event(i));
  spool_events(events);
  start();
  ASSERT_TRUE(eventually([&] { return spool_drained(); }));
  size_t total = 0;
  for (const auto& r : fake_.requests()) {
    const size_t n = FakeLinkedIn::count_elements(r.body);
    EXPECT_LE(n, 10u);
    total += n;
  }
  EXPECT_EQ(total, 25u);
  EXPECT_EQ(metrics_.events_uploaded.value(), 25u);
  EXPECT_LE(fake_.connection_count(), 2u);  // kept alive: at most one per concurrent request
}

TEST_F(UploaderTest, Index422DeadLettersThatElementAndResendsTheOthers) {
  const std::vector<NormalizedEvent> events = {event(0), event(1), event(2)};
  spool_events(events);
  std::atomic<int> calls{0};
  fake_.set_responder([&calls](const FakeRequest& req) {
    if (++calls == 1) {
      FakeResponse r;
      r.status = 422;
      r.body =
          R"({"status":422,"message":"Index: 1, ERROR :: /user/userInfo/firstName :: field is required but not found and has no default value\n"})";
      return r;
    }
    return FakeLinkedIn::accept_all(req);
  });
  start();
  ASSERT_TRUE(eventually([&] { return spool_drained(); }));
  const auto reqs = fake_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].body, batch_body(events));
  EXPECT_EQ(reqs[1].body, batch_body({events[0], events[2]}));  // same eventIds, minus index 1

  const auto letters = dead_->list();
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].reason, "rejected");
  EXPECT_EQ(letters[0].http_status, 422);
  EXPECT_NE(letters[0].message.find("/user/userInfo/firstName"), std::string::npos);
  auto decoded = decode_record(letters[0].payload);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->event_id, "order-1");

  // The dead-lettered event's key is free again; the delivered ones still dedup.
  const uint64_t keys[] = {dedup_fingerprint(123, "order-1"), dedup_fingerprint(123, "order-0")};
  ClaimResult results[2];
  dedup_->claim(keys, results, clock_.now_ms());
  EXPECT_EQ(results[0], ClaimResult::kClaimed);
  EXPECT_EQ(results[1], ClaimResult::kDuplicate);

  EXPECT_EQ(metrics_.events_uploaded.value(), 2u);
  EXPECT_EQ(metrics_.events_dead_lettered.with("rejected").value(), 1u);
  EXPECT_EQ(metrics_.upload_requests.with("422").value(), 1u);
  EXPECT_FALSE(uploader_->status().paused);
}

TEST_F(UploaderTest, TooLargeBatchesAreSplitInHalvesAndAnElementTooLargeAloneIsDeadLettered) {
  // The upstream takes at most 3 elements per request, and never takes order-7.
  std::vector<NormalizedEvent> events;
  for (int i = 0; i < 10; ++i) events.push_back(event(i));
  spool_events(events);
  fake_.set_responder([](const FakeRequest& req) {
    if (FakeLinkedIn::count_elements(req.body) > 3 ||
        req.body.find("\"order-7\"") != std::string::npos) {
      FakeResponse r;
      r.status = 413;
      r.body = R"({"status":413,"message":"Request entity too large"})";
      return r;
    }
    return FakeLinkedIn::accept_all(req);
  });
  start();
  ASSERT_TRUE(eventually([&] { return spool_drained(); }));
  std::map<std::string, int> delivered;
  for (const auto& r : fake_.requests()) {
    const size_t n = FakeLinkedIn::count_elements(r.body);
    if (n > 3 || r.body.find("\"order-7\"") != std::string::npos) continue;  // refused
    for (int i = 0; i < 10; ++i)
      if (r.body.find("\"order-" + std::to_string(i) + "\"") != std::string::npos)
        ++delivered["order-" + std::to_string(i)];
  }
  EXPECT_EQ(delivered.size(), 9u);
  for (const auto& [id, times] : delivered) EXPECT_EQ(times, 1) << id;
  EXPECT_EQ(delivered.count("order-7"), 0u);
  const auto letters = dead_->list();
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].http_status, 413);
  EXPECT_EQ(decode_record(letters[0].payload)->event_id, "order-7");
  EXPECT_EQ(metrics_.events_uploaded.value(), 9u);
  EXPECT_GE(metrics_.upload_retries_by_cause.with("too_large").value(), 3u);  // 10 -> 5+5 -> 2+3+...
  EXPECT_FALSE(uploader_->status().paused);

  // Batches stay small for a while, then grow again up to what the upstream takes: every later
  // event is delivered, and requests of 2 and 3 elements come back.
  std::vector<NormalizedEvent> more;
  for (int i = 10; i < 70; ++i) more.push_back(event(i));
  const size_t before = fake_.requests().size();
  spool_events(more);
  uploader_->notify();
  ASSERT_TRUE(eventually([&] { return spool_drained(); }));
  EXPECT_EQ(metrics_.events_uploaded.value(), 69u);
  const auto reqs = fake_.requests();
  size_t largest_taken = 0;
  for (size_t i = before; i < reqs.size(); ++i) {
    const size_t n = FakeLinkedIn::count_elements(reqs[i].body);
    if (n <= 3) largest_taken = std::max(largest_taken, n);
  }
  EXPECT_GE(largest_taken, 2u);
  EXPECT_EQ(dead_->list().size(), 1u);
}

TEST_F(UploaderTest, ServerErrorsAreRetriedWithTheSameEventIds) {
  const std::vector<NormalizedEvent> events = {event(0), event(1)};
  spool_events(events);
  std::atomic<int> calls{0};
  fake_.set_responder([&calls](const FakeRequest& req) {
    if (++calls <= 2) {
      FakeResponse r;
      r.status = 503;
      return r;
    }
    return FakeLinkedIn::accept_all(req);
  });
  start();
  ASSERT_TRUE(eventually([&] { return spool_drained(); }));
  const auto reqs = fake_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  for (const auto& r : reqs) EXPECT_EQ(r.body, batch_body(events));
  EXPECT_EQ(metrics_.upload_retries.value(), 2u);
  EXPECT_EQ(metrics_.upload_requests.with("503").value(), 2u);
  EXPECT_EQ(metrics_.events_uploaded.value(), 2u);
}

TEST_F(UploaderTest, ForbiddenPausesUntilRecheckThenResumes) {
  spool_events({event(0)});
  std::atomic<bool> allow{false};
  fake_.set_responder([&allow](const FakeRequest& req) {
    if (!allow) {
      FakeResponse r;
      r.status = 403;
      r.body = R"({"status":403,"message":"Not enough permissions"})";
      return r;
    }
    return FakeLinkedIn::accept_all(req);
  });
  start();
  ASSERT_TRUE(eventually([&] { return uploader_->status().paused; }));
  EXPECT_EQ(uploader_->status().paused_reason, "forbidden");
  EXPECT_EQ(metrics_.uploads_paused.value(), 1);
  EXPECT_EQ(fake_.request_count(), 1u);  // paused: no hammering (recheck is an hour away)
  EXPECT_EQ(spool_->stats().pending_records, 1u);
  EXPECT_EQ(dead_->size(), 0u);

  allow = true;
  uploader_->recheck();
  ASSERT_TRUE(eventually([&] { return spool_drained(); }));
  EXPECT_TRUE(eventually([&] { return !uploader_->status().paused; }));
  EXPECT_EQ(metrics_.uploads_paused.value(), 0);
}

TEST_F(UploaderTest, SystemicErrorPausesWithoutDeadLetters) {
  spool_events({event(0), event(1)});
  fake_.set_responder([](const FakeRequest&) {
    FakeResponse r;
    r.status = 400;
    r.body = R"({"status":400,"message":"Invalid LinkedIn-Version header"})";
    return r;
  });
  start();
  ASSERT_TRUE(eventually([&] { return uploader_->status().paused; }));
  EXPECT_EQ(uploader_->status().paused_reason,
            "systemic_error: 400 Invalid LinkedIn-Version header");
  EXPECT_EQ(dead_->size(), 0u);
  EXPECT_EQ(spool_->stats().pending_records, 2u);
}

TEST_F(UploaderTest, UnauthorizedRefreshesOnceThenSucceeds) {
  config_.linkedin.oauth.refresh_token = "refresh-1";
  spool_events({event(0)});
  fake_.set_responder([](const FakeRequest& req) {
    FakeResponse r;
    if (req.target == "/oauth/v2/accessToken") {
      r.body = R"({"access_token":"fresh-token","expires_in":5184000})";
      return r;
    }
    if (req.headers.at("authorization") != "Bearer fresh-token") {
      r.status = 401;
      r.body = R"({"status":401,"serviceErrorCode":65600,"code":"INVALID_ACCESS_TOKEN","message":"Invalid access token"})";
      return r;
    }
    return FakeLinkedIn::accept_all(req);
  });
  start();
  ASSERT_TRUE(eventually([&] { return spool_drained(); }));
  const auto reqs = fake_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[1].target, "/oauth/v2/accessToken");
  EXPECT_EQ(reqs[2].headers.at("authorization"), "Bearer fresh-token");
  auto on_disk = parse_token_file(read_text(dir_ / "token.json"));
  ASSERT_TRUE(on_disk.ok());
  EXPECT_EQ(on_disk->access_token, "fresh-token");
  EXPECT_TRUE(metrics_.token_expiry.present());
  EXPECT_FALSE(uploader_->status().paused);
}

TEST_F(UploaderTest, UnauthorizedWithoutRefreshTokenPausesTokenExpired) {
  spool_events({event(0)});
  fake_.set_responder([](const FakeRequest&) {
    FakeResponse r;
    r.status = 401;
    r.body = R"({"status":401,"code":"INVALID_ACCESS_TOKEN","message":"Invalid access token"})";
    return r;
  });
  start();
  ASSERT_TRUE(eventually([&] { return uploader_->status().paused; }));
  EXPECT_EQ(uploader_->status().paused_reason, "token_expired");
  EXPECT_EQ(spool_->stats().pending_records, 1u);
}

TEST_F(UploaderTest, EventsOlderThan90DaysAreDeadLetteredNotSent) {
  spool_events({event(0, 91 * kDayMs), event(1)});
  start();
  ASSERT_TRUE(eventually([&] { return spool_drained(); }));
  ASSERT_EQ(fake_.request_count(), 1u);
  EXPECT_EQ(FakeLinkedIn::count_elements(fake_.requests()[0].body), 1u);
  const auto letters = dead_->list();
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].reason, "expired");
  EXPECT_EQ(metrics_.events_dead_lettered.with("expired").value(), 1u);
}

TEST_F(UploaderTest, DryRunWritesBatchFilesAndSendsNothing) {
  config_.linkedin.dry_run = true;
  const std::vector<NormalizedEvent> events = {event(0), event(1)};
  spool_events(events);
  start();
  ASSERT_TRUE(eventually([&] { return spool_drained(); }));
  const auto file = dir_ / "dry-run" / "batch-0000000000000001.json";
  ASSERT_TRUE(std::filesystem::exists(file));
  EXPECT_EQ(read_text(file), batch_body(events));
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir_ / "dry-run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(fake_.request_count(), 0u);
  EXPECT_EQ(metrics_.events_uploaded.value(), 2u);
}

TEST_F(UploaderTest, StopLeavesUnsentEventsOnTheSpool) {
  spool_events({event(0)});
  fake_.set_responder([](const FakeRequest&) {
    FakeResponse r;
    r.status = 503;
    return r;
  });
  config_.linkedin.retry.initial_backoff = std::chrono::milliseconds(60000);
  config_.linkedin.retry.max_backoff = std::chrono::milliseconds(60000);
  start();
  ASSERT_TRUE(eventually([&] { return fake_.request_count() >= 1; }));
  const auto t0 = std::chrono::steady_clock::now();
  uploader_->stop(clock_.steady_ms() + 200);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(spool_->stats().pending_records, 1u);
  EXPECT_EQ(dead_->size(), 0u);
}

}  // namespace
}  // namespace capi_relay
