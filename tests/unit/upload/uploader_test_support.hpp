#pragma once
// What the Uploader tests share: a fresh directory per test, the real stores an uploader works
// on (spool, dead-letter store, local dedup) opened in it, a config aimed at a fake LinkedIn, and
// spooling an event the way the ingest pipeline does (append, sync, dedup claim + commit).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "capi_relay/common/clock.hpp"
#include "capi_relay/config/config.hpp"
#include "capi_relay/dedup/local_dedup.hpp"
#include "capi_relay/event/record.hpp"
#include "capi_relay/spool/dead_letters.hpp"
#include "capi_relay/spool/spool.hpp"

namespace capi_relay::testing {

inline constexpr int64_t kUploaderTestDayMs = 24ll * 3600 * 1000;

// Waits for an I/O outcome of the uploader's threads (not for logic: the condition is checked as
// soon as it holds).
template <class Pred>
bool eventually(Pred pred, int timeout_ms = 10000) {
  for (int waited = 0; waited < timeout_ms; waited += 5) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

// An empty temp directory named after the running test.
inline std::filesystem::path fresh_test_dir(std::string_view prefix) {
  const auto dir = std::filesystem::temp_directory_path() /
                   (std::string(prefix) + std::to_string(::getpid()) + "_" +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// A config whose spool, token file and upstream are the test's; each test sets the rest.
inline Config uploader_test_config(const std::filesystem::path& dir, const std::string& api_base) {
  Config c;
  c.spool.dir = dir;
  c.linkedin.api_base = api_base;
  c.linkedin.access_token = "test-token";
  c.linkedin.token_file = dir / "token.json";
  c.linkedin.connect_timeout = std::chrono::milliseconds(2000);
  c.linkedin.response_timeout = std::chrono::milliseconds(2000);
  return c;
}

struct UploaderStores {
  std::unique_ptr<Spool> spool;
  std::unique_ptr<DeadLetterStore> dead;
  std::unique_ptr<DedupStore> dedup;
};

// Opens the three stores under dir (spool/, dead/, dedup/).
inline ::testing::AssertionResult open_uploader_stores(const std::filesystem::path& dir,
                                                       Clock& clock, UploaderStores& out) {
  SpoolOptions so;
  so.dir = dir / "spool";
  auto spool = Spool::open(so, clock);
  if (!spool.ok()) return ::testing::AssertionFailure() << spool.error();
  auto dead = DeadLetterStore::open(dir / "dead", 30 * kUploaderTestDayMs, clock);
  if (!dead.ok()) return ::testing::AssertionFailure() << dead.error();
  LocalDedupOptions dopt;
  dopt.dir = dir / "dedup";
  dopt.initial_capacity = 1024;
  auto dedup = open_local_dedup(dopt, clock);
  if (!dedup.ok()) return ::testing::AssertionFailure() << dedup.error();
  out.spool = std::move(spool.value());
  out.dead = std::move(dead.value());
  out.dedup = std::move(dedup.value());
  return ::testing::AssertionSuccess();
}

// Appends the event's record (without syncing) and records its dedup key as seen, as the ingest
// pipeline does for an accepted event; the caller syncs the spool.
inline ::testing::AssertionResult append_accepted(Spool& spool, DedupStore& dedup,
                                                  const NormalizedEvent& e, int64_t now_ms) {
  std::string payload;
  encode_record(e, payload);
  if (auto r = spool.append(payload, now_ms); !r.ok())
    return ::testing::AssertionFailure() << r.error();
  const uint64_t key = dedup_fingerprint(e.rule_id, e.event_id);
  ClaimResult claim;
  dedup.claim({&key, 1}, {&claim, 1}, now_ms);
  if (claim != ClaimResult::kClaimed)
    return ::testing::AssertionFailure() << e.event_id << " was already seen";
  dedup.commit({&key, 1}, now_ms);
  return ::testing::AssertionSuccess();
}

}  // namespace capi_relay::testing
