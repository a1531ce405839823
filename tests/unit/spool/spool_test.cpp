#include "capi_relay/spool/spool.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace capi_relay {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/capi-spool-test-XXXXXX";
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

// 16-byte frame header + payload.
constexpr uint64_t kHeader = 16;

std::string payload_for(uint64_t n) { return "record-" + std::to_string(n) + "-payload"; }

std::vector<fs::path> files_with_ext(const fs::path& dir, std::string_view ext) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ext) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The active segment carries zeros ahead of its records (pre-written space); a crash can leave
// them. These tests tear and flip record bytes, so they first give the tail back, as a roll does.
uint64_t strip_zero_tail(const fs::path& log) {
  const std::string data = read_all(log);
  const size_t end = data.find_last_not_of('\0');
  const uint64_t size = end == std::string::npos ? 0 : end + 1;
  fs::resize_file(log, size);
  return size;
}

void write_all_bytes(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

class SpoolTest : public ::testing::Test {
 protected:
  SpoolOptions options(uint64_t segment_bytes = 1u << 20) const {
    SpoolOptions o;
    o.dir = dir_.path() / "spool";
    o.segment_bytes = segment_bytes;
    o.fsync = FsyncMode::kBatch;
    return o;
  }
  std::unique_ptr<Spool> open_spool(const SpoolOptions& o) {
    auto r = Spool::open(o, clock_);
    EXPECT_TRUE(r.ok()) << r.error();
    return r.ok() ? std::move(r.value()) : nullptr;
  }
  std::vector<RecordId> append_synced(Spool& s, uint64_t first, uint64_t count) {
    std::vector<RecordId> ids;
    for (uint64_t i = first; i < first + count; ++i) {
      auto id = s.append(payload_for(i), 1000 + static_cast<int64_t>(i));
      EXPECT_TRUE(id.ok()) << id.error();
      if (id.ok()) ids.push_back(id.value());
    }
    auto r = s.sync();
    EXPECT_TRUE(r.ok()) << r.error();
    return ids;
  }
  std::vector<SpoolEntry> read_all_entries(Spool& s, size_t chunk = 7) {
    std::vector<SpoolEntry> out;
    while (s.read_next(chunk, out) > 0) {
    }
    return out;
  }

  TempDir dir_;
  FakeClock clock_;
};

TEST_F(SpoolTest, AppendSyncReadRoundTrip) {
  auto s = open_spool(options());
  ASSERT_TRUE(s);
  auto ids = append_synced(*s, 0, 3);
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0].segment, ids[2].segment);
  EXPECT_EQ(ids[0].index, 0u);
  EXPECT_EQ(ids[2].index, 2u);

  std::vector<SpoolEntry> out;
  EXPECT_EQ(s->read_next(10, out), 3u);
  ASSERT_EQ(out.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(out[i].id, ids[i]);
    EXPECT_EQ(out[i].payload, payload_for(i));
    EXPECT_EQ(out[i].append_ms, 1000 + static_cast<int64_t>(i));
  }
  // Handed out once only.
  EXPECT_EQ(s->read_next(10, out), 0u);
  auto st = s->stats();
  EXPECT_EQ(st.pending_records, 3u);
  EXPECT_EQ(st.oldest_pending_append_ms, 1000);
  EXPECT_EQ(st.segments, 1u);
}

TEST_F(SpoolTest, ReadNextRespectsMaxRecords) {
  auto s = open_spool(options());
  ASSERT_TRUE(s);
  append_synced(*s, 0, 10);
  std::vector<SpoolEntry> out;
  EXPECT_EQ(s->read_next(4, out), 4u);
  EXPECT_EQ(s->read_next(4, out), 4u);
  EXPECT_EQ(s->read_next(4, out), 2u);
  ASSERT_EQ(out.size(), 10u);
  for (uint32_t i = 0; i < 10; ++i) EXPECT_EQ(out[i].id.index, i);
}

TEST_F(SpoolTest, RecordsInvisibleToReadersBeforeSync) {
  auto s = open_spool(options());
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->append("a", 1).ok());
  ASSERT_TRUE(s->append("b", 2).ok());
  std::vector<SpoolEntry> out;
  EXPECT_EQ(s->read_next(10, out), 0u);
  EXPECT_EQ(s->stats().pending_records, 0u);
  int calls = 0;
  ASSERT_TRUE(s->for_each_pending([&](const SpoolEntry&) { ++calls; }).ok());
  EXPECT_EQ(calls, 0);

  ASSERT_TRUE(s->sync().ok());
  EXPECT_EQ(s->read_next(10, out), 2u);
  EXPECT_EQ(s->stats().pending_records, 2u);
}

TEST_F(SpoolTest, ReopenReplaysPendingAndSkipsCompleted) {
  auto o = options();
  std::vector<RecordId> ids;
  {
    auto s = open_spool(o);
    ASSERT_TRUE(s);
    ids = append_synced(*s, 0, 5);
    std::vector<RecordId> done = {ids[1], ids[3]};
    ASSERT_TRUE(s->complete(done).ok());
    EXPECT_EQ(s->stats().pending_records, 3u);
  }
  auto s = open_spool(o);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->truncated_records(), 0u);
  EXPECT_EQ(s->stats().pending_records, 3u);
  EXPECT_EQ(s->stats().oldest_pending_append_ms, 1000);

  std::vector<std::string> seen;
  ASSERT_TRUE(s->for_each_pending([&](const SpoolEntry& e) { seen.push_back(e.payload); }).ok());
  EXPECT_EQ(seen, (std::vector<std::string>{payload_for(0), payload_for(2), payload_for(4)}));

  auto entries = read_all_entries(*s, 2);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].id, ids[0]);
  EXPECT_EQ(entries[1].id, ids[2]);
  EXPECT_EQ(entries[2].id, ids[4]);

  // New records go to a new segment after the replayed one.
  auto more = append_synced(*s, 5, 1);
  ASSERT_EQ(more.size(), 1u);
  EXPECT_GT(more[0].segment, ids[0].segment);
  std::vector<SpoolEntry> out;
  ASSERT_EQ(s->read_next(10, out), 1u);
  EXPECT_EQ(out[0].payload, payload_for(5));
}

TEST_F(SpoolTest, OutOfOrderCompletionDeletesSegmentOnlyWhenAllComplete) {
  // Each record is 16 + ~17 bytes: a 100-byte segment holds 3 records before it rolls.
  auto o = options(100);
  auto s = open_spool(o);
  ASSERT_TRUE(s);
  std::vector<RecordId> ids;
  for (uint64_t i = 0; i < 9; ++i) {
    auto one = append_synced(*s, i, 1);
    ids.insert(ids.end(), one.begin(), one.end());
  }
  ASSERT_EQ(ids.size(), 9u);
  const uint64_t first_seg = ids[0].segment;
  std::vector<RecordId> first;
  for (const auto& id : ids)
    if (id.segment == first_seg) first.push_back(id);
  ASSERT_GE(first.size(), 2u);
  ASSERT_NE(ids.back().segment, first_seg);
  const auto segments_before = s->stats().segments;
  EXPECT_EQ(files_with_ext(o.dir, ".log").size(), segments_before);

  // Complete the first segment's records last-to-first, one at a time.
  const fs::path first_log = files_with_ext(o.dir, ".log").front();
  for (size_t k = first.size(); k-- > 1;) {
    ASSERT_TRUE(s->complete(std::span<const RecordId>(&first[k], 1)).ok());
    EXPECT_TRUE(fs::exists(first_log)) << "deleted while record " << k - 1 << " pending";
  }
  EXPECT_EQ(files_with_ext(o.dir, ".done").size(), 1u);
  ASSERT_TRUE(s->complete(std::span<const RecordId>(&first[0], 1)).ok());
  EXPECT_FALSE(fs::exists(first_log));
  EXPECT_TRUE(files_with_ext(o.dir, ".done").empty());
  EXPECT_EQ(s->stats().segments, segments_before - 1);
  EXPECT_EQ(s->stats().pending_records, ids.size() - first.size());

  // Completing an id of a deleted segment again is harmless.
  EXPECT_TRUE(s->complete(std::span<const RecordId>(&first[0], 1)).ok());
  EXPECT_EQ(s->stats().pending_records, ids.size() - first.size());

  // Reading skips nothing that is still pending and returns nothing complete.
  auto entries = read_all_entries(*s);
  ASSERT_EQ(entries.size(), ids.size() - first.size());
  EXPECT_EQ(entries.front().id, ids[first.size()]);
}

TEST_F(SpoolTest, CompletingTheActiveSegmentDoesNotDeleteIt) {
  auto o = options(100);
  auto s = open_spool(o);
  ASSERT_TRUE(s);
  auto ids = append_synced(*s, 0, 2);
  ASSERT_TRUE(s->complete(ids).ok());
  EXPECT_EQ(s->stats().pending_records, 0u);
  EXPECT_EQ(s->stats().oldest_pending_append_ms, 0);
  EXPECT_EQ(s->stats().bytes, 0u);
  ASSERT_EQ(files_with_ext(o.dir, ".log").size(), 1u);
  const fs::path active = files_with_ext(o.dir, ".log").front();

  // Filling it past segment_bytes rolls; the finished, fully complete segment is then deleted.
  auto more = append_synced(*s, 2, 2);  // still the same segment (rolls only between syncs)
  ASSERT_TRUE(s->complete(more).ok());
  EXPECT_TRUE(fs::exists(active));
  auto next = append_synced(*s, 4, 1);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_NE(next[0].segment, ids[0].segment);
  EXPECT_FALSE(fs::exists(active));
  EXPECT_EQ(s->stats().segments, 1u);
  EXPECT_EQ(s->stats().pending_records, 1u);
}

TEST_F(SpoolTest, FullyCompleteSegmentsAreDeletedAtOpen) {
  auto o = options();
  {
    auto s = open_spool(o);
    ASSERT_TRUE(s);
    auto ids = append_synced(*s, 0, 3);
    ASSERT_TRUE(s->complete(ids).ok());
    EXPECT_EQ(files_with_ext(o.dir, ".log").size(), 1u);
  }
  auto s = open_spool(o);
  ASSERT_TRUE(s);
  EXPECT_TRUE(files_with_ext(o.dir, ".log").empty());
  EXPECT_TRUE(files_with_ext(o.dir, ".done").empty());
  EXPECT_EQ(s->stats().segments, 0u);
}

TEST_F(SpoolTest, OldestPendingFollowsOutOfOrderCompletion) {
  auto s = open_spool(options(100));
  ASSERT_TRUE(s);
  std::vector<RecordId> ids;
  for (uint64_t i = 0; i < 6; ++i) {
    auto one = append_synced(*s, i, 1);  // append_ms = 1000 + i
    ids.push_back(one.at(0));
  }
  EXPECT_EQ(s->stats().oldest_pending_append_ms, 1000);
  ASSERT_TRUE(s->complete(std::vector<RecordId>{ids[1]}).ok());
  EXPECT_EQ(s->stats().oldest_pending_append_ms, 1000);
  ASSERT_TRUE(s->complete(std::vector<RecordId>{ids[0]}).ok());
  EXPECT_EQ(s->stats().oldest_pending_append_ms, 1002);
  // Finish the first segment entirely: the oldest moves to the next segment.
  std::vector<RecordId> rest;
  for (const auto& id : ids)
    if (id.segment == ids[0].segment) rest.push_back(id);
  ASSERT_TRUE(s->complete(rest).ok());
  const auto next_pending =
      std::find_if(ids.begin(), ids.end(), [&](const RecordId& id) {
        return id.segment != ids[0].segment;
      });
  ASSERT_NE(next_pending, ids.end());
  EXPECT_EQ(s->stats().oldest_pending_append_ms,
            1000 + static_cast<int64_t>(next_pending - ids.begin()));
}

TEST_F(SpoolTest, TornLastRecordIsCutAndCounted) {
  auto o = options();
  {
    auto s = open_spool(o);
    ASSERT_TRUE(s);
    append_synced(*s, 0, 5);
  }
  const fs::path log = files_with_ext(o.dir, ".log").at(0);
  const auto full = strip_zero_tail(log);
  fs::resize_file(log, full - 3);
  {
    auto s = open_spool(o);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->truncated_records(), 1u);
    EXPECT_EQ(s->stats().pending_records, 4u);
    EXPECT_EQ(fs::file_size(log), full - (kHeader + payload_for(4).size()));
    auto entries = read_all_entries(*s);
    ASSERT_EQ(entries.size(), 4u);
    for (size_t i = 0; i < 4; ++i) EXPECT_EQ(entries[i].payload, payload_for(i));
  }
  // The cut is durable: the next open finds nothing to cut.
  auto s = open_spool(o);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->truncated_records(), 0u);
  EXPECT_EQ(s->stats().pending_records, 4u);
}

TEST_F(SpoolTest, PrewrittenZerosAreTheEndOfRecordsNotATornOne) {
  auto o = options();
  {
    auto s = open_spool(o);
    ASSERT_TRUE(s);
    append_synced(*s, 0, 5);
  }
  const uint64_t records = 5 * (kHeader + payload_for(0).size());
  const fs::path log = files_with_ext(o.dir, ".log").at(0);
  ASSERT_GT(fs::file_size(log), records);  // zeros written ahead of the next records
  EXPECT_EQ(read_all(log).find_last_not_of('\0') + 1, records);
  auto s = open_spool(o);  // as after a crash: the zero tail is still there
  ASSERT_TRUE(s);
  EXPECT_EQ(s->truncated_records(), 0u);
  EXPECT_EQ(s->stats().pending_records, 5u);
  EXPECT_EQ(fs::file_size(log), records);  // given back
  EXPECT_EQ(read_all_entries(*s).size(), 5u);
}

TEST_F(SpoolTest, ARecordTornInsidePrewrittenSpaceIsStillCut) {
  auto o = options();
  {
    auto s = open_spool(o);
    ASSERT_TRUE(s);
    append_synced(*s, 0, 3);
  }
  const uint64_t records = 3 * (kHeader + payload_for(0).size());
  const fs::path log = files_with_ext(o.dir, ".log").at(0);
  std::string data = read_all(log);
  ASSERT_GT(data.size(), records + 64);
  // A fourth record whose header reached the disk but whose payload did not (still zeros).
  const std::string p = payload_for(3);
  data[records] = static_cast<char>(p.size());
  data[records + 4] = '\x5a';  // some checksum
  write_all_bytes(log, data);
  auto s = open_spool(o);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->truncated_records(), 1u);
  EXPECT_EQ(s->stats().pending_records, 3u);
  EXPECT_EQ(fs::file_size(log), records);
}

TEST_F(SpoolTest, ARolledSegmentGivesBackItsZeroTail) {
  auto o = options(4096);
  auto s = open_spool(o);
  ASSERT_TRUE(s);
  std::vector<RecordId> ids;
  for (uint64_t i = 0; ids.empty() || ids.back().segment == ids.front().segment; ++i) {
    auto one = append_synced(*s, i, 10);
    ids.insert(ids.end(), one.begin(), one.end());
  }
  const auto logs = files_with_ext(o.dir, ".log");
  ASSERT_EQ(logs.size(), 2u);
  const std::string first = read_all(logs[0]);
  ASSERT_FALSE(first.empty());
  EXPECT_NE(first.back(), '\0');  // ends with the last record's payload, not with zeros
  EXPECT_LE(fs::file_size(logs[1]), o.segment_bytes);  // pre-written space stays within a segment
}

TEST_F(SpoolTest, TornHeaderIsCut) {
  auto o = options();
  {
    auto s = open_spool(o);
    ASSERT_TRUE(s);
    append_synced(*s, 0, 2);
  }
  const fs::path log = files_with_ext(o.dir, ".log").at(0);
  const auto full = strip_zero_tail(log);
  {
    std::ofstream out(log, std::ios::binary | std::ios::app);
    out.write("\x05\x00\x00", 3);  // a header torn after three bytes
  }
  auto s = open_spool(o);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->truncated_records(), 1u);
  EXPECT_EQ(fs::file_size(log), full);
  EXPECT_EQ(read_all_entries(*s).size(), 2u);
}

TEST_F(SpoolTest, BitFlipInTheMiddleCutsFromThere) {
  auto o = options();
  {
    auto s = open_spool(o);
    ASSERT_TRUE(s);
    append_synced(*s, 0, 5);
  }
  const fs::path log = files_with_ext(o.dir, ".log").at(0);
  strip_zero_tail(log);
  std::string data = read_all(log);
  const uint64_t rec = kHeader + payload_for(0).size();  // all payloads have the same length
  ASSERT_EQ(data.size(), 5 * rec);
  data[2 * rec + kHeader + 3] ^= 0x10;  // a payload byte of record 2
  write_all_bytes(log, data);

  auto s = open_spool(o);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->truncated_records(), 3u);  // the corrupt record and the two after it
  EXPECT_EQ(fs::file_size(log), 2 * rec);
  auto entries = read_all_entries(*s);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].payload, payload_for(0));
  EXPECT_EQ(entries[1].payload, payload_for(1));
}

TEST_F(SpoolTest, GarbageFilesDoNotPreventStartup) {
  auto o = options();
  fs::create_directories(o.dir);
  std::string garbage;
  for (int i = 0; i < 5000; ++i) garbage.push_back(static_cast<char>((i * 7919) & 0xff));
  write_all_bytes(o.dir / "seg-0000000000000003.log", garbage);
  write_all_bytes(o.dir / "seg-0000000000000003.done", "\x01\x02\x03\x04\x05");
  write_all_bytes(o.dir / "seg-0000000000000009.done", "\x00\x00\x00\x00");  // orphan
  write_all_bytes(o.dir / "unrelated.txt", "keep me");

  auto s = open_spool(o);
  ASSERT_TRUE(s);
  EXPECT_GE(s->truncated_records(), 1u);
  EXPECT_EQ(s->stats().pending_records, 0u);
  // Nothing valid was left: the empty segment and the orphan journal are gone.
  EXPECT_FALSE(fs::exists(o.dir / "seg-0000000000000003.log"));
  EXPECT_FALSE(fs::exists(o.dir / "seg-0000000000000009.done"));
  EXPECT_TRUE(fs::exists(o.dir / "unrelated.txt"));

  // New segments do not reuse the ids seen on disk.
  auto id = s->append("x", 1);
  ASSERT_TRUE(id.ok());
  EXPECT_GT(id.value().segment, 9u);
  ASSERT_TRUE(s->sync().ok());
}

TEST_F(SpoolTest, TornCompletionJournalEntryIsIgnored) {
  auto o = options();
  std::vector<RecordId> ids;
  {
    auto s = open_spool(o);
    ASSERT_TRUE(s);
    ids = append_synced(*s, 0, 4);
    ASSERT_TRUE(s->complete(std::vector<RecordId>{ids[0]}).ok());
  }
  const fs::path done = files_with_ext(o.dir, ".done").at(0);
  {
    std::ofstream out(done, std::ios::binary | std::ios::app);
    out.write("\x02\x00", 2);  // half of the entry for index 2
  }
  {
    auto s = open_spool(o);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->stats().pending_records, 3u);
    ASSERT_TRUE(s->complete(std::vector<RecordId>{ids[3]}).ok());
  }
  EXPECT_EQ(fs::file_size(done), 8u);  // realigned, then one more entry
  auto s = open_spool(o);
  ASSERT_TRUE(s);
  auto entries = read_all_entries(*s);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].id, ids[1]);
  EXPECT_EQ(entries[1].id, ids[2]);
}

TEST_F(SpoolTest, WouldExceedCountsPendingSegmentsAndBuffer) {
  auto o = options(1u << 20);
  o.max_bytes = 1000;
  auto s = open_spool(o);
  ASSERT_TRUE(s);
  const std::string payload(84, 'p');  // 100 bytes framed
  EXPECT_FALSE(s->would_exceed(1000));
  EXPECT_TRUE(s->would_exceed(1001));
  std::vector<RecordId> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(s->append(payload, 1).value());
  EXPECT_FALSE(s->would_exceed(500));  // 500 buffered + 500
  EXPECT_TRUE(s->would_exceed(501));
  ASSERT_TRUE(s->sync().ok());
  EXPECT_EQ(s->stats().bytes, 500u);
  EXPECT_TRUE(s->would_exceed(501));
  // Completing some records of a segment frees nothing; completing all of it does.
  ASSERT_TRUE(s->complete(std::span<const RecordId>(ids.data(), 4)).ok());
  EXPECT_TRUE(s->would_exceed(501));
  ASSERT_TRUE(s->complete(std::span<const RecordId>(ids.data() + 4, 1)).ok());
  EXPECT_FALSE(s->would_exceed(1000));
  EXPECT_EQ(s->stats().bytes, 0u);
}

class SpoolFsyncModeTest : public SpoolTest, public ::testing::WithParamInterface<FsyncMode> {};

TEST_P(SpoolFsyncModeTest, RecordsSurviveReopen) {
  auto o = options(200);
  o.fsync = GetParam();
  {
    auto s = open_spool(o);
    ASSERT_TRUE(s);
    for (uint64_t g = 0; g < 4; ++g) append_synced(*s, g * 3, 3);
    ASSERT_TRUE(s->sync(/*force=*/true).ok());  // nothing buffered: only an fsync under kOff
    ASSERT_TRUE(s->append(payload_for(12), 1012).ok());
    ASSERT_TRUE(s->sync(/*force=*/true).ok());
    std::vector<SpoolEntry> out;
    EXPECT_EQ(s->read_next(100, out), 13u);
  }
  auto s = open_spool(o);
  ASSERT_TRUE(s);
  auto entries = read_all_entries(*s);
  ASSERT_EQ(entries.size(), 13u);
  for (size_t i = 0; i < entries.size(); ++i) EXPECT_EQ(entries[i].payload, payload_for(i));
}

INSTANTIATE_TEST_SUITE_P(Modes, SpoolFsyncModeTest,
                         ::testing::Values(FsyncMode::kAlways, FsyncMode::kBatch,
                                           FsyncMode::kOff));

TEST_F(SpoolTest, FilesArePrivate) {
  auto o = options();
  auto s = open_spool(o);
  ASSERT_TRUE(s);
  auto ids = append_synced(*s, 0, 2);
  ASSERT_TRUE(s->complete(std::vector<RecordId>{ids[0]}).ok());
  struct stat st {};
  ASSERT_EQ(::stat(o.dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  auto logs = files_with_ext(o.dir, ".log");
  auto dones = files_with_ext(o.dir, ".done");
  ASSERT_EQ(logs.size(), 1u);
  ASSERT_EQ(dones.size(), 1u);
  ASSERT_EQ(::stat(logs[0].c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(dones[0].c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(SpoolTest, FailedSyncDropsBufferedRecordsAndTruncates) {
  auto o = options();
  auto s = open_spool(o);
  ASSERT_TRUE(s);
  append_synced(*s, 0, 2);
  const fs::path log = files_with_ext(o.dir, ".log").at(0);
  const uint64_t synced = 2 * (kHeader + payload_for(0).size());  // zeros follow, pre-written
  ASSERT_GT(fs::file_size(log), synced);

  // A file size limit makes write() fail with EFBIG part-way through the group.
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit lim = old;
  lim.rlim_cur = synced + 50;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &lim), 0);
  for (uint64_t i = 2; i < 10; ++i) ASSERT_TRUE(s->append(payload_for(i), 1).ok());
  auto r = s->sync();
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
  ::signal(SIGXFSZ, old_handler);

  EXPECT_FALSE(r.ok());
  EXPECT_EQ(fs::file_size(log), synced);
  EXPECT_EQ(s->stats().pending_records, 2u);
  EXPECT_FALSE(s->would_exceed(o.max_bytes - synced));

  // The spool goes on: the next group lands after the synced records.
  auto again = append_synced(*s, 10, 1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].index, 2u);
  auto entries = read_all_entries(*s);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[2].payload, payload_for(10));
}

TEST_F(SpoolTest, DirectoryThatCannotBeCreatedIsAnError) {
  auto o = options();
  write_all_bytes(o.dir, "a file where the spool directory should be");
  auto r = Spool::open(o, clock_);
  EXPECT_FALSE(r.ok());
}

TEST_F(SpoolTest, ConcurrentWriterAndReaderSeeEveryRecordOnce) {
  auto o = options(16u << 10);
  o.fsync = FsyncMode::kOff;
  auto s = open_spool(o);
  ASSERT_TRUE(s);
  constexpr uint64_t kTotal = 20000;
  std::atomic<bool> writer_failed{false};
  std::thread writer([&] {
    for (uint64_t i = 0; i < kTotal && !writer_failed; i += 50) {
      for (uint64_t k = i; k < i + 50; ++k)
        if (!s->append(payload_for(k), 1).ok()) writer_failed = true;
      if (!s->sync().ok()) writer_failed = true;
    }
  });
  std::vector<std::string> seen;
  std::vector<SpoolEntry> chunk;
  while (seen.size() < kTotal && !writer_failed) {
    chunk.clear();
    if (s->read_next(300, chunk) == 0) {
      std::this_thread::yield();
      continue;
    }
    std::vector<RecordId> ids;
    for (auto& e : chunk) {
      seen.push_back(std::move(e.payload));
      ids.push_back(e.id);
    }
    if (!s->complete(ids).ok()) {
      ADD_FAILURE() << "complete failed";
      writer_failed = true;
    }
  }
  writer.join();
  ASSERT_FALSE(writer_failed);
  ASSERT_EQ(seen.size(), kTotal);
  for (uint64_t i = 0; i < kTotal; ++i) ASSERT_EQ(seen[i], payload_for(i));
  EXPECT_EQ(s->stats().pending_records, 0u);
  EXPECT_EQ(s->stats().segments, 1u);  // only the active segment is left
}

TEST_F(SpoolTest, LargeBacklogReadsThroughInBoundedChunks) {
  auto o = options(256u << 10);
  o.fsync = FsyncMode::kOff;
  constexpr uint64_t kTotal = 200000;
  {
    auto s = open_spool(o);
    ASSERT_TRUE(s);
    for (uint64_t i = 0; i < kTotal; ++i) {
      ASSERT_TRUE(s->append(payload_for(i), static_cast<int64_t>(i)).ok());
      if (i % 1000 == 999) {
        ASSERT_TRUE(s->sync().ok());
      }
    }
    ASSERT_TRUE(s->sync(true).ok());
  }
  auto s = open_spool(o);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->stats().pending_records, kTotal);
  EXPECT_GT(s->stats().segments, 20u);
  uint64_t pending_seen = 0;
  ASSERT_TRUE(s->for_each_pending([&](const SpoolEntry&) { ++pending_seen; }).ok());
  EXPECT_EQ(pending_seen, kTotal);

  uint64_t next = 0;
  std::vector<SpoolEntry> chunk;
  for (;;) {
    chunk.clear();
    size_t n = s->read_next(1000, chunk);
    if (n == 0) break;
    ASSERT_LE(n, 1000u);
    std::vector<RecordId> ids;
    for (const auto& e : chunk) {
      ASSERT_EQ(e.payload, payload_for(next)) << next;
      ++next;
      ids.push_back(e.id);
    }
    ASSERT_TRUE(s->complete(ids).ok());
    // Completed segments are deleted as the reader goes.
    EXPECT_LE(s->stats().pending_records, kTotal - next);
  }
  EXPECT_EQ(next, kTotal);
  EXPECT_EQ(s->stats().pending_records, 0u);
  EXPECT_EQ(s->stats().segments, 0u);
  EXPECT_TRUE(files_with_ext(o.dir, ".log").empty());
}

}  // namespace
}  // namespace capi_relay
