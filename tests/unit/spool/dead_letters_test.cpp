#include "capi_relay/spool/dead_letters.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace capi_relay {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kDay = 24ll * 3600 * 1000;
constexpr int64_t kRetention = 30 * kDay;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/capi-dlq-test-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

DeadLetter make(std::string reason, int status, std::string payload, int64_t at) {
  DeadLetter d;
  d.reason = std::move(reason);
  d.http_status = status;
  d.message = status ? "Invalid conversion" : "";
  d.dead_lettered_at_ms = at;
  d.payload = std::move(payload);
  return d;
}

std::vector<uint64_t> ids_of(const std::vector<DeadLetter>& v) {
  std::vector<uint64_t> out;
  for (const auto& d : v) out.push_back(d.id);
  return out;
}

class DeadLetterTest : public ::testing::Test {
 protected:
  fs::path dir() const { return tmp_.path() / "data"; }
  fs::path log_file() const { return dir() / "dead-letters.log"; }
  std::unique_ptr<DeadLetterStore> open_store(int64_t retention = kRetention) {
    auto r = DeadLetterStore::open(dir(), retention, clock_);
    EXPECT_TRUE(r.ok()) << r.error();
    return r.ok() ? std::move(r.value()) : nullptr;
  }
  // Adds rejected(1), expired(2), rejected(3) with distinct payloads.
  std::vector<DeadLetter> add_three(DeadLetterStore& s) {
    std::vector<DeadLetter> v = {make("rejected", 422, "p1", clock_.now_ms()),
                                 make("expired", 0, "p2", clock_.now_ms()),
                                 make("rejected", 400, std::string("p3\0bin", 6), clock_.now_ms())};
    auto r = s.add(v);
    EXPECT_TRUE(r.ok()) << r.error();
    return v;
  }

  TempDir tmp_;
  FakeClock clock_;
};

TEST_F(DeadLetterTest, AddAssignsIncreasingIdsAndListsSorted) {
  auto s = open_store();
  ASSERT_TRUE(s);
  auto added = add_three(*s);
  EXPECT_LT(added[0].id, added[1].id);
  EXPECT_LT(added[1].id, added[2].id);
  EXPECT_GT(added[0].id, 0u);
  EXPECT_EQ(s->size(), 3u);

  auto all = s->list();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(ids_of(all), ids_of(added));
  EXPECT_EQ(all[0].reason, "rejected");
  EXPECT_EQ(all[0].http_status, 422);
  EXPECT_EQ(all[0].message, "Invalid conversion");
  EXPECT_EQ(all[0].dead_lettered_at_ms, clock_.now_ms());
  EXPECT_EQ(all[2].payload, std::string("p3\0bin", 6));

  DeadLetterFilter rejected;
  rejected.reason = "rejected";
  EXPECT_EQ(ids_of(s->list(rejected)), (std::vector<uint64_t>{added[0].id, added[2].id}));
  DeadLetterFilter by_id;
  by_id.ids = {added[1].id};
  EXPECT_EQ(ids_of(s->list(by_id)), (std::vector<uint64_t>{added[1].id}));
  DeadLetterFilter both;
  both.ids = {added[1].id};
  both.reason = "rejected";
  EXPECT_TRUE(s->list(both).empty());
}

TEST_F(DeadLetterTest, TakeByIdAndByReasonRemovesDurably) {
  std::vector<DeadLetter> added;
  {
    auto s = open_store();
    ASSERT_TRUE(s);
    added = add_three(*s);
    DeadLetterFilter by_id;
    by_id.ids = {added[2].id, 9999};
    auto taken = s->take(by_id);
    ASSERT_TRUE(taken.ok()) << taken.error();
    ASSERT_EQ(taken->size(), 1u);
    EXPECT_EQ((*taken)[0].id, added[2].id);
    EXPECT_EQ((*taken)[0].payload, std::string("p3\0bin", 6));
    EXPECT_EQ(s->size(), 2u);

    // Taking again finds nothing.
    auto again = s->take(by_id);
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->empty());
  }
  {
    auto s = open_store();
    ASSERT_TRUE(s);
    EXPECT_EQ(ids_of(s->list()), (std::vector<uint64_t>{added[0].id, added[1].id}));
    DeadLetterFilter expired;
    expired.reason = "expired";
    auto taken = s->take(expired);
    ASSERT_TRUE(taken.ok());
    EXPECT_EQ(ids_of(*taken), (std::vector<uint64_t>{added[1].id}));
  }
  auto s = open_store();
  ASSERT_TRUE(s);
  EXPECT_EQ(ids_of(s->list()), (std::vector<uint64_t>{added[0].id}));
}

TEST_F(DeadLetterTest, IdsStayIncreasingAcrossReopenAndCompaction) {
  uint64_t last = 0;
  {
    auto s = open_store();
    ASSERT_TRUE(s);
    auto added = add_three(*s);
    last = added.back().id;
    auto taken = s->take(DeadLetterFilter{});  // everything: the next open compacts
    ASSERT_TRUE(taken.ok());
    EXPECT_EQ(taken->size(), 3u);
  }
  const auto before = fs::file_size(log_file());
  {
    auto s = open_store();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->size(), 0u);
    EXPECT_LT(fs::file_size(log_file()), before);
    std::vector<DeadLetter> one = {make("rejected", 422, "p4", clock_.now_ms())};
    ASSERT_TRUE(s->add(one).ok());
    EXPECT_GT(one[0].id, last);
    last = one[0].id;
  }
  auto s = open_store();
  ASSERT_TRUE(s);
  ASSERT_EQ(s->size(), 1u);
  EXPECT_EQ(s->list()[0].id, last);
  EXPECT_EQ(s->list()[0].payload, "p4");
}

TEST_F(DeadLetterTest, ManyRemovalsAreCompactedOnOpen) {
  {
    auto s = open_store();
    ASSERT_TRUE(s);
    for (int i = 0; i < 100; ++i) {
      std::vector<DeadLetter> v = {make("rejected", 400, std::string(200, 'x'), clock_.now_ms())};
      ASSERT_TRUE(s->add(v).ok());
      if (i % 10 != 0) {
        DeadLetterFilter f;
        f.ids = {v[0].id};
        ASSERT_TRUE(s->take(f).ok());
      }
    }
    EXPECT_EQ(s->size(), 10u);
  }
  const auto before = fs::file_size(log_file());
  auto s = open_store();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->size(), 10u);
  EXPECT_LT(fs::file_size(log_file()) * 5, before);
  EXPECT_EQ(s->list().front().payload, std::string(200, 'x'));
}

TEST_F(DeadLetterTest, TornTailIsCut) {
  std::vector<DeadLetter> added;
  {
    auto s = open_store();
    ASSERT_TRUE(s);
    added = add_three(*s);
  }
  fs::resize_file(log_file(), fs::file_size(log_file()) - 5);
  {
    auto s = open_store();
    ASSERT_TRUE(s);
    EXPECT_EQ(ids_of(s->list()), (std::vector<uint64_t>{added[0].id, added[1].id}));
    std::vector<DeadLetter> more = {make("expired", 0, "p5", clock_.now_ms())};
    ASSERT_TRUE(s->add(more).ok());
  }
  auto s = open_store();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->size(), 3u);
  EXPECT_EQ(s->list().back().payload, "p5");
}

TEST_F(DeadLetterTest, CorruptEntryEndsReplay) {
  std::vector<DeadLetter> added;
  {
    auto s = open_store();
    ASSERT_TRUE(s);
    added = add_three(*s);
  }
  std::string data;
  {
    std::ifstream in(log_file(), std::ios::binary);
    data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  ASSERT_GT(data.size(), 40u);
  data[data.size() / 2] ^= 0x01;  // somewhere in the second entry
  {
    std::ofstream out(log_file(), std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
  }
  auto s = open_store();
  ASSERT_TRUE(s);
  EXPECT_EQ(ids_of(s->list()), (std::vector<uint64_t>{added[0].id}));
}

TEST_F(DeadLetterTest, GarbageFileDoesNotPreventStartup) {
  fs::create_directories(dir());
  {
    std::ofstream out(log_file(), std::ios::binary);
    out << "this is not a dead-letter log at all";
  }
  auto s = open_store();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->size(), 0u);
  auto added = add_three(*s);
  EXPECT_EQ(s->size(), 3u);
}

TEST_F(DeadLetterTest, RetentionDropsOldEntries) {
  {
    auto s = open_store();
    ASSERT_TRUE(s);
    add_three(*s);  // at t0
    clock_.advance_ms(10 * kDay);
    std::vector<DeadLetter> later = {make("rejected", 422, "late", clock_.now_ms())};
    ASSERT_TRUE(s->add(later).ok());
    clock_.advance_ms(kRetention - 10 * kDay);
    EXPECT_EQ(s->expire(), 0u);  // exactly at the retention: kept
    clock_.advance_ms(1);
    EXPECT_EQ(s->expire(), 3u);
    EXPECT_EQ(s->size(), 1u);
    EXPECT_EQ(s->list()[0].payload, "late");
  }
  {
    auto s = open_store();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->size(), 1u);
  }
  // Expiry on open as well.
  clock_.advance_ms(kRetention);
  auto s = open_store();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->size(), 0u);
}

TEST_F(DeadLetterTest, FileIsPrivate) {
  auto s = open_store();
  ASSERT_TRUE(s);
  add_three(*s);
  struct stat st {};
  ASSERT_EQ(::stat(log_file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

}  // namespace
}  // namespace capi_relay
