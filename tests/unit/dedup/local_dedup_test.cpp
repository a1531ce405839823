#include "capi_relay/dedup/local_dedup.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace capi_relay {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kWindowMs = 7ll * 24 * 3600 * 1000;

class LocalDedupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::temp_directory_path() /
            ("local_dedup_test_" + std::to_string(getpid()) + "_" + info->name());
    fs::remove_all(root_);
    dir_ = root_ / "dedup";
  }
  void TearDown() override { fs::remove_all(root_); }

  LocalDedupOptions options() const {
    LocalDedupOptions o;
    o.dir = dir_;
    o.window_ms = kWindowMs;
    o.initial_capacity = 64;
    return o;
  }

  std::unique_ptr<DedupStore> open(LocalDedupOptions o) {
    auto r = open_local_dedup(o, clock_);
    EXPECT_TRUE(r.ok()) << r.error();
    return r.ok() ? std::move(r.value()) : nullptr;
  }
  std::unique_ptr<DedupStore> open() { return open(options()); }

  ClaimResult claim_one(DedupStore& d, uint64_t key) {
    ClaimResult out = ClaimResult::kBusy;
    d.claim({&key, 1}, {&out, 1}, clock_.now_ms());
    return out;
  }
  void accept(DedupStore& d, uint64_t key) {
    ASSERT_EQ(claim_one(d, key), ClaimResult::kClaimed);
    d.commit({&key, 1}, clock_.now_ms());
  }
  LocalDedupStats stats(const DedupStore& d) {
    auto s = local_dedup_stats(d);
    EXPECT_TRUE(s.has_value());
    return s.value_or(LocalDedupStats{});
  }
  fs::path journal() const { return dir_ / "dedup.journal"; }

  FakeClock clock_;
  fs::path root_;
  fs::path dir_;
};

TEST_F(LocalDedupTest, ClaimCommitThenDuplicate) {
  auto d = open();
  const uint64_t keys[] = {11, 22, 33};
  ClaimResult out[3];
  d->claim(keys, out, clock_.now_ms());
  for (auto r : out) EXPECT_EQ(r, ClaimResult::kClaimed);
  d->commit(keys, clock_.now_ms());
  EXPECT_EQ(d->size(), 3u);
  d->claim(keys, out, clock_.now_ms());
  for (auto r : out) EXPECT_EQ(r, ClaimResult::kDuplicate);
  EXPECT_EQ(claim_one(*d, 44), ClaimResult::kClaimed);
}

TEST_F(LocalDedupTest, SameKeyTwiceInOneClaimIsDuplicate) {
  auto d = open();
  const uint64_t keys[] = {7, 8, 7};
  ClaimResult out[3];
  d->claim(keys, out, clock_.now_ms());
  EXPECT_EQ(out[0], ClaimResult::kClaimed);
  EXPECT_EQ(out[1], ClaimResult::kClaimed);
  EXPECT_EQ(out[2], ClaimResult::kDuplicate);
}

TEST_F(LocalDedupTest, PendingKeyIsDuplicateForALaterClaim) {
  auto d = open();
  EXPECT_EQ(claim_one(*d, 5), ClaimResult::kClaimed);
  // An unfinished earlier write owns it: never kBusy from the local backend.
  EXPECT_EQ(claim_one(*d, 5), ClaimResult::kDuplicate);
  EXPECT_EQ(d->size(), 0u);  // pending is not committed
  EXPECT_EQ(stats(*d).pending_keys, 1u);
}

TEST_F(LocalDedupTest, ReleaseFreesCommittedKey) {
  auto d = open();
  accept(*d, 9);
  EXPECT_EQ(claim_one(*d, 9), ClaimResult::kDuplicate);
  const uint64_t k = 9;
  d->release({&k, 1});
  EXPECT_EQ(d->size(), 0u);
  EXPECT_EQ(claim_one(*d, 9), ClaimResult::kClaimed);
}

TEST_F(LocalDedupTest, ReleaseFreesPendingKey) {
  auto d = open();
  EXPECT_EQ(claim_one(*d, 10), ClaimResult::kClaimed);
  const uint64_t k = 10;
  d->release({&k, 1});
  EXPECT_EQ(stats(*d).pending_keys, 0u);
  EXPECT_EQ(claim_one(*d, 10), ClaimResult::kClaimed);
}

TEST_F(LocalDedupTest, ReleaseOfUnknownKeyIsHarmless) {
  auto d = open();
  accept(*d, 1);
  const uint64_t k = 2;
  d->release({&k, 1});
  EXPECT_EQ(claim_one(*d, 1), ClaimResult::kDuplicate);
  EXPECT_EQ(d->size(), 1u);
}

TEST_F(LocalDedupTest, EntryExpiresAfterWindow) {
  auto d = open();
  accept(*d, 42);
  clock_.advance_ms(kWindowMs - 1000);
  EXPECT_EQ(claim_one(*d, 42), ClaimResult::kDuplicate);
  clock_.advance_ms(1001);
  EXPECT_EQ(claim_one(*d, 42), ClaimResult::kClaimed);
  d->commit(std::vector<uint64_t>{42}, clock_.now_ms());
  EXPECT_EQ(claim_one(*d, 42), ClaimResult::kDuplicate);
}

TEST_F(LocalDedupTest, ExpiredEntriesAreSweptFromSize) {
  auto d = open();
  for (uint64_t k = 1; k <= 100; ++k) accept(*d, k);
  EXPECT_EQ(d->size(), 100u);
  clock_.advance_ms(kWindowMs + 1000);
  ASSERT_TRUE(d->flush().ok());  // flush sweeps expired slots
  EXPECT_EQ(d->size(), 0u);
}

TEST_F(LocalDedupTest, FingerprintZeroIsAKeyLikeAnyOther) {
  auto d = open();
  accept(*d, 0);
  EXPECT_EQ(claim_one(*d, 0), ClaimResult::kDuplicate);
  const uint64_t k = 0;
  d->release({&k, 1});
  EXPECT_EQ(claim_one(*d, 0), ClaimResult::kClaimed);
}

TEST_F(LocalDedupTest, CreatesPrivateDirectoryAndJournal) {
  auto d = open();
  accept(*d, 1);
  ASSERT_TRUE(d->flush().ok());
  struct stat st{};
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat(journal().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(fs::file_size(journal()), 16u + 16u);  // header + one entry
}

TEST_F(LocalDedupTest, CommitsPersistAcrossReopen) {
  {
    auto d = open();
    for (uint64_t k = 100; k < 200; ++k) accept(*d, k);
    ASSERT_TRUE(d->flush().ok());
  }
  auto d = open();
  EXPECT_EQ(d->size(), 100u);
  for (uint64_t k = 100; k < 200; ++k) EXPECT_EQ(claim_one(*d, k), ClaimResult::kDuplicate) << k;
  EXPECT_EQ(claim_one(*d, 200), ClaimResult::kClaimed);
}

TEST_F(LocalDedupTest, PendingClaimsAreNotPersisted) {
  {
    auto d = open();
    EXPECT_EQ(claim_one(*d, 77), ClaimResult::kClaimed);
    ASSERT_TRUE(d->flush().ok());
  }
  auto d = open();
  EXPECT_EQ(claim_one(*d, 77), ClaimResult::kClaimed);
}

TEST_F(LocalDedupTest, ReleasePersistsAcrossReopen) {
  {
    auto d = open();
    accept(*d, 1);
    accept(*d, 2);
    ASSERT_TRUE(d->flush().ok());
    const uint64_t k = 1;
    d->release({&k, 1});
    ASSERT_TRUE(d->flush().ok());
  }
  auto d = open();
  EXPECT_EQ(claim_one(*d, 1), ClaimResult::kClaimed);
  EXPECT_EQ(claim_one(*d, 2), ClaimResult::kDuplicate);
}

TEST_F(LocalDedupTest, RecommitAfterReleasePersists) {
  {
    auto d = open();
    accept(*d, 1);
    const uint64_t k = 1;
    d->release({&k, 1});
    accept(*d, 1);
    ASSERT_TRUE(d->flush().ok());
  }
  auto d = open();
  EXPECT_EQ(claim_one(*d, 1), ClaimResult::kDuplicate);
}

TEST_F(LocalDedupTest, ExpiredEntriesAreNotReplayed) {
  {
    auto d = open();
    accept(*d, 1);
    clock_.advance_ms(kWindowMs / 2);
    accept(*d, 2);
    ASSERT_TRUE(d->flush().ok());
  }
  clock_.advance_ms(kWindowMs / 2 + 1000);  // 1 expired, 2 still live
  auto d = open();
  EXPECT_EQ(d->size(), 1u);
  EXPECT_EQ(claim_one(*d, 1), ClaimResult::kClaimed);
  EXPECT_EQ(claim_one(*d, 2), ClaimResult::kDuplicate);
}

TEST_F(LocalDedupTest, TornTailIsCutOnOpen) {
  {
    auto d = open();
    for (uint64_t k = 1; k <= 3; ++k) accept(*d, k);
    ASSERT_TRUE(d->flush().ok());
  }
  {
    std::ofstream f(journal(), std::ios::binary | std::ios::app);
    f.write("\x01\x02\x03\x04\x05\x06\x07", 7);  // a partial entry
  }
  ASSERT_EQ(fs::file_size(journal()), 16u + 3 * 16u + 7);
  {
    auto d = open();
    EXPECT_EQ(fs::file_size(journal()), 16u + 3 * 16u);
    for (uint64_t k = 1; k <= 3; ++k) EXPECT_EQ(claim_one(*d, k), ClaimResult::kDuplicate);
    accept(*d, 4);  // appends after the cut land on entry boundaries
    ASSERT_TRUE(d->flush().ok());
  }
  auto d = open();
  EXPECT_EQ(d->size(), 4u);
  EXPECT_EQ(claim_one(*d, 4), ClaimResult::kDuplicate);
}

TEST_F(LocalDedupTest, CorruptEntryCutsTheRest) {
  {
    auto d = open();
    for (uint64_t k = 1; k <= 4; ++k) accept(*d, k);
    ASSERT_TRUE(d->flush().ok());
  }
  {
    // Flip a byte of the third entry's expiry: its checksum no longer matches.
    std::fstream f(journal(), std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(16 + 2 * 16 + 9);
    f.put('\x5a');
  }
  auto d = open();
  EXPECT_EQ(fs::file_size(journal()), 16u + 2 * 16u);
  EXPECT_EQ(d->size(), 2u);
  EXPECT_EQ(claim_one(*d, 1), ClaimResult::kDuplicate);
  EXPECT_EQ(claim_one(*d, 2), ClaimResult::kDuplicate);
  EXPECT_EQ(claim_one(*d, 3), ClaimResult::kClaimed);
}

TEST_F(LocalDedupTest, TornHeaderStartsFresh) {
  fs::create_directories(dir_);
  {
    std::ofstream f(journal(), std::ios::binary);
    f.write("CRDED", 5);
  }
  auto d = open();
  EXPECT_EQ(d->size(), 0u);
  EXPECT_EQ(fs::file_size(journal()), 16u);
}

TEST_F(LocalDedupTest, ForeignFileIsAnError) {
  fs::create_directories(dir_);
  {
    std::ofstream f(journal(), std::ios::binary);
    f << "this is not a dedup journal at all";
  }
  auto r = open_local_dedup(options(), clock_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("bad header"), std::string::npos) << r.error();
}

TEST_F(LocalDedupTest, RecoverAddsCommittedKeysWithinWindow) {
  {
    auto d = open();
    d->recover(500, clock_.now_ms() - 1000);            // recent: live
    d->recover(501, clock_.now_ms() - kWindowMs - 1);   // older than the window: ignored
    EXPECT_EQ(d->size(), 1u);
    EXPECT_EQ(claim_one(*d, 500), ClaimResult::kDuplicate);
    EXPECT_EQ(claim_one(*d, 501), ClaimResult::kClaimed);
    d->recover(500, clock_.now_ms());  // already present: unchanged
    EXPECT_EQ(d->size(), 1u);
  }
  // Recovered keys are journaled; they expire `window` after their accept time.
  auto d = open();
  EXPECT_EQ(claim_one(*d, 500), ClaimResult::kDuplicate);
  clock_.advance_ms(kWindowMs);
  EXPECT_EQ(claim_one(*d, 500), ClaimResult::kClaimed);
}

TEST_F(LocalDedupTest, GrowthPastInitialCapacityKeepsAllKeys) {
  auto o = options();
  o.initial_capacity = 16;
  auto d = open(o);
  constexpr uint64_t kKeys = 20000;
  std::vector<uint64_t> keys(kKeys);
  for (uint64_t i = 0; i < kKeys; ++i) keys[i] = i * 0x9E3779B97F4A7C15ull + 3;
  std::vector<ClaimResult> out(kKeys);
  d->claim(keys, out, clock_.now_ms());
  for (auto r : out) ASSERT_EQ(r, ClaimResult::kClaimed);
  d->commit(keys, clock_.now_ms());
  const auto s = stats(*d);
  EXPECT_GE(s.capacity, kKeys * 4 / 3);
  EXPECT_EQ(s.committed_keys, kKeys);
  d->claim(keys, out, clock_.now_ms());
  for (uint64_t i = 0; i < kKeys; ++i) ASSERT_EQ(out[i], ClaimResult::kDuplicate) << i;
}

TEST_F(LocalDedupTest, ReleaseInsideClustersKeepsOtherKeysFindable) {
  // A small table with many keys forms long clusters; removing from their middle must not hide
  // later members (backward-shift deletion).
  auto o = options();
  o.initial_capacity = 1 << 12;
  auto d = open(o);
  std::vector<uint64_t> keys;
  for (uint64_t i = 1; i <= 3000; ++i) keys.push_back(i * 7919);
  for (auto k : keys) accept(*d, k);
  std::vector<uint64_t> released, kept;
  for (size_t i = 0; i < keys.size(); ++i) (i % 3 == 0 ? released : kept).push_back(keys[i]);
  d->release(released);
  EXPECT_EQ(d->size(), kept.size());
  for (auto k : kept) ASSERT_EQ(claim_one(*d, k), ClaimResult::kDuplicate) << k;
  for (auto k : released) ASSERT_EQ(claim_one(*d, k), ClaimResult::kClaimed) << k;
}

TEST_F(LocalDedupTest, MemoryPerKeyAtLoadFactor) {
  constexpr uint64_t kCapacity = 1 << 20;
  auto o = options();
  o.initial_capacity = kCapacity;
  auto d = open(o);
  // Fill exactly to the load factor (0.75): 786,432 keys in 2^20 slots of 12 bytes.
  constexpr uint64_t kFull = kCapacity / 4 * 3;
  constexpr uint64_t kTotal = 1'000'000;
  std::vector<uint64_t> keys(kTotal);
  for (uint64_t i = 0; i < kTotal; ++i) keys[i] = (i + 1) * 0xD6E8FEB86659FD93ull;
  std::vector<ClaimResult> out(kTotal);
  std::span<const uint64_t> first(keys.data(), kFull);
  d->claim(first, std::span(out.data(), kFull), clock_.now_ms());
  d->commit(first, clock_.now_ms());
  auto s = stats(*d);
  EXPECT_EQ(s.capacity, kCapacity);
  EXPECT_EQ(s.committed_keys, kFull);
  EXPECT_LE(static_cast<double>(s.table_bytes) / static_cast<double>(s.committed_keys), 16.0);

  // Past it the table doubles: right after growth a key costs at most 32 bytes.
  std::span<const uint64_t> rest(keys.data() + kFull, kTotal - kFull);
  d->claim(rest, std::span(out.data() + kFull, kTotal - kFull), clock_.now_ms());
  d->commit(rest, clock_.now_ms());
  s = stats(*d);
  EXPECT_EQ(s.capacity, 2 * kCapacity);
  EXPECT_EQ(s.committed_keys, kTotal);
  EXPECT_LE(static_cast<double>(s.table_bytes) / static_cast<double>(s.committed_keys), 32.0);
  for (auto r : out) ASSERT_EQ(r, ClaimResult::kClaimed);
  d->claim(keys, out, clock_.now_ms());
  for (auto r : out) ASSERT_EQ(r, ClaimResult::kDuplicate);
}

TEST_F(LocalDedupTest, CompactionKeepsLiveKeysAndDropsExpired) {
  auto o = options();
  o.compact_min_entries = 0;
  {
    auto d = open(o);
    for (uint64_t k = 1; k <= 100; ++k) accept(*d, k);
    ASSERT_TRUE(d->flush().ok());
    EXPECT_EQ(stats(*d).journal_entries, 100u);  // 100 entries, 100 live: not due
    clock_.advance_ms(kWindowMs + 1000);
    for (uint64_t k = 1001; k <= 1010; ++k) accept(*d, k);
    const uint64_t released = 1010;
    d->release({&released, 1});
    ASSERT_TRUE(d->flush().ok());  // 111 entries, 9 live: compacted
    const auto s = stats(*d);
    EXPECT_EQ(s.committed_keys, 9u);
    EXPECT_EQ(s.journal_entries, 9u);
    EXPECT_EQ(fs::file_size(journal()), 16u + 9 * 16u);
    EXPECT_FALSE(fs::exists(dir_ / "dedup.journal.tmp"));
    // Writes after compaction go to the new journal.
    accept(*d, 2000);
    ASSERT_TRUE(d->flush().ok());
    EXPECT_EQ(stats(*d).journal_entries, 10u);
  }
  auto d = open(o);
  EXPECT_EQ(d->size(), 10u);
  for (uint64_t k = 1001; k <= 1009; ++k) EXPECT_EQ(claim_one(*d, k), ClaimResult::kDuplicate);
  EXPECT_EQ(claim_one(*d, 2000), ClaimResult::kDuplicate);
  EXPECT_EQ(claim_one(*d, 1010), ClaimResult::kClaimed);
  for (uint64_t k = 1; k <= 100; ++k) EXPECT_EQ(claim_one(*d, k), ClaimResult::kClaimed);
}

TEST_F(LocalDedupTest, CompactionAtOpen) {
  auto o = options();
  o.compact_min_entries = 0;
  {
    auto d = open(o);
    for (uint64_t k = 1; k <= 50; ++k) {
      accept(*d, k);
      const uint64_t kk = k;
      if (k % 2 == 0) d->release({&kk, 1});
    }
    // Destroyed without an explicit flush: the destructor flushes (and compacts).
  }
  auto d = open(o);
  EXPECT_EQ(d->size(), 25u);
  EXPECT_EQ(stats(*d).journal_entries, 25u);
  EXPECT_EQ(claim_one(*d, 1), ClaimResult::kDuplicate);
  EXPECT_EQ(claim_one(*d, 2), ClaimResult::kClaimed);
}

TEST_F(LocalDedupTest, StaleCompactionTempFileIsRemovedOnOpen) {
  fs::create_directories(dir_);
  { std::ofstream(dir_ / "dedup.journal.tmp") << "leftover"; }
  auto d = open();
  EXPECT_FALSE(fs::exists(dir_ / "dedup.journal.tmp"));
}

TEST_F(LocalDedupTest, ConcurrentClaimsGrantEachKeyOnce) {
  auto d = open();
  constexpr int kThreads = 4;
  constexpr uint64_t kKeys = 5000;
  std::atomic<uint64_t> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (uint64_t k = 1; k <= kKeys; ++k) {
        ClaimResult r;
        d->claim({&k, 1}, {&r, 1}, clock_.now_ms());
        if (r == ClaimResult::kClaimed) {
          granted.fetch_add(1);
          d->commit({&k, 1}, clock_.now_ms());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), kKeys);
  EXPECT_EQ(d->size(), kKeys);
}

}  // namespace
}  // namespace capi_relay
