// Crash safety and bounded memory, with the real binary:
//  - five SIGKILLs at random moments under concurrent load (several client threads posting,
//    spool.fsync: batch, uploads in flight) lose no event that was answered 202;
//  - replaying a large spooled backlog keeps the relay's RSS bounded (VmRSS from /proc).
// The backlog size is CAPI_RELAY_BACKLOG_EVENTS (default 500,000, the figure: about 4 s
// on 2 cores; bench/backlog_rss.sh runs it alone with any size).
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <thread>

#include "integration/delivery_support.hpp"

namespace capi_relay::testing {
namespace {

TEST(Crash, FiveKillNineRestartsUnderLoadLoseNoAcknowledgedEvent) {
  ScriptedUpstream up;
  up.set_script([](const FakeRequest& req) -> std::optional<FakeResponse> {
    FakeResponse r = FakeLinkedIn::accept_all(req);
    r.delay_ms = 20;  // uploads are in flight when the kill lands
    return r;
  });
  RelayConfig cfg = delivery_config(up.base_url());
  cfg.fsync = "batch";
  cfg.batch_max_events = 200;
  cfg.flush_interval = "50ms";
  RelayProcess relay;
  std::string err;

  std::atomic<uint16_t> port{0};
  std::atomic<bool> load{true};
  std::mutex mu;
  std::set<std::string> acked;
  std::atomic<uint64_t> posts{0}, refused{0};
  std::vector<std::thread> clients;
  constexpr int kClients = 4;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      const int64_t ts = now_ms() - 1000;
      for (int n = 0; load.load(); ++n) {
        const uint16_t p = port.load();
        if (p == 0) {
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
          continue;
        }
        std::vector<std::string> ids;
        for (int i = 0; i < 10; ++i)
          ids.push_back("k" + std::to_string(c) + "-" + std::to_string(n) + "-" + std::to_string(i));
        auto r = http_request(p, "POST", "/v1/events", ndjson(ids, ts),
                              {{"Content-Type", "application/x-ndjson"}});
        ++posts;
        if (r.status == 202) {
          std::lock_guard lock(mu);
          acked.insert(ids.begin(), ids.end());
        } else {
          ++refused;  // connection refused/reset around a kill: not acknowledged, not counted
        }
      }
    });
  }

  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> run_ms(300, 1200);
  constexpr int kKills = 5;
  double truncated = 0;
  for (int k = 0; k < kKills; ++k) {
    ASSERT_TRUE(relay.start(cfg.yaml(), &err)) << "restart " << k << " refused: " << err;
    if (k > 0) truncated += std::max(0.0, relay.metric("capi_relay_spool_truncated_records_total"));
    port = relay.ingest_port();
    std::this_thread::sleep_for(std::chrono::milliseconds(run_ms(rng)));
    relay.kill9();  // while the clients are posting
    port = 0;
  }
  ASSERT_TRUE(relay.start(cfg.yaml(), &err)) << err;
  truncated += std::max(0.0, relay.metric("capi_relay_spool_truncated_records_total"));
  port = relay.ingest_port();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  load = false;
  for (auto& t : clients) t.join();

  std::set<std::string> want;
  {
    std::lock_guard lock(mu);
    want = acked;
  }
  ASSERT_GT(want.size(), 1000u) << "too little load to mean anything";
  const bool all = eventually(
      [&] {
        auto have = up.accepted();
        for (const auto& id : want)
          if (!have.count(id)) return false;
        return true;
      },
      30000);
  auto have = up.accepted();
  size_t lost = 0;
  for (const auto& id : want) lost += have.count(id) == 0;
  std::printf("[ figures  ] %d x kill -9 under load (%d clients, fsync batch): %zu events "
              "acknowledged, %zu lost, %llu elements delivered (%.1f%% resent), %.0f torn "
              "records cut, %llu posts (%llu not acknowledged)\n",
              kKills, kClients, want.size(), lost,
              static_cast<unsigned long long>(up.accepted_elements()),
              100.0 * (static_cast<double>(up.accepted_elements()) / have.size() - 1.0),
              truncated, static_cast<unsigned long long>(posts.load()),
              static_cast<unsigned long long>(refused.load()));
  EXPECT_TRUE(all);
  EXPECT_EQ(lost, 0u);
  EXPECT_TRUE(eventually([&] { return relay.metric("capi_relay_spool_pending_events") == 0; }));
  EXPECT_EQ(relay.stop(), 0);
}

// Spools a backlog while LinkedIn answers 503, restarts, and samples VmRSS while it drains.
TEST(Backlog, ReplayingALargeSpoolKeepsRssBounded) {
  const char* env = std::getenv("CAPI_RELAY_BACKLOG_EVENTS");
  const int total = env ? std::atoi(env) : 500000;
  ScriptedUpstream up(/*keep_request_bodies=*/false);
  std::atomic<bool> down{true};
  up.set_script([&](const FakeRequest&) -> std::optional<FakeResponse> {
    if (down) return status_response(503);
    return std::nullopt;
  });
  RelayConfig cfg = delivery_config(up.base_url());
  cfg.shutdown_timeout = "1s";
  cfg.initial_backoff = "1s";
  cfg.max_backoff = "2s";
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(cfg.yaml(), &err)) << err;
  const int64_t ts = now_ms() - 60'000;
  constexpr int kPerPost = 2000;
  const int64_t t_ingest = mono_ms();
  int64_t ingest_peak_kib = 0;
  for (int n = 0; n * kPerPost < total; ++n) {
    std::string body;
    body.reserve(kPerPost * 200);
    for (int i = 0; i < kPerPost && n * kPerPost + i < total; ++i)
      body += event_line("b-" + std::to_string(n * kPerPost + i), ts) + "\n";
    auto r = relay.post_events(body, "application/x-ndjson");
    ASSERT_EQ(r.status, 202) << r.body;
    if (n % 10 == 0) ingest_peak_kib = std::max(ingest_peak_kib, rss_kib(relay.pid()));
  }
  const double ingest_s = (mono_ms() - t_ingest) / 1000.0;
  ASSERT_EQ(relay.metric("capi_relay_spool_pending_events"), total);
  ASSERT_EQ(relay.stop(), 0);

  down = false;
  ASSERT_TRUE(relay.start(cfg.yaml(), &err)) << err;
  const pid_t pid = relay.pid();
  const int64_t t_drain = mono_ms();
  int64_t peak_kib = 0;
  bool drained = false;
  while (mono_ms() - t_drain < 240'000) {
    peak_kib = std::max(peak_kib, rss_kib(pid));
    if (up.accepted_count() >= static_cast<size_t>(total) &&
        relay.metric("capi_relay_spool_pending_events") == 0) {
      drained = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  const double drain_s = (mono_ms() - t_drain) / 1000.0;
  std::printf("[ figures  ] backlog %d events: ingest %.1f s (RSS peak %.1f MiB); restart + drain "
              "%.1f s, RSS peak while draining %.1f MiB; delivered %zu unique\n",
              total, ingest_s, ingest_peak_kib / 1024.0, drain_s, peak_kib / 1024.0,
              up.accepted_count());
  EXPECT_TRUE(drained);
  EXPECT_EQ(up.accepted_count(), static_cast<size_t>(total));
  EXPECT_LT(peak_kib, 128 * 1024) << "RSS grew with the backlog";
  EXPECT_EQ(relay.stop(), 0);
}

}  // namespace
}  // namespace capi_relay::testing
