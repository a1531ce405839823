#pragma once
// The on-disk half of the local dedup backend (private to src/dedup): <dir>/dedup.journal, an
// append-only file of fixed 16-byte little-endian entries after a 16-byte header:
//   header: "CRDEDUPJ" (8 bytes), u32 version (1), u32 crc32c of the first 12 bytes
//   entry:  u64 fingerprint, u32 expiry (table seconds; 0 = the key was released),
//           u32 crc32c of the first 12 bytes
// Appends are made durable with fdatasync. On open the entries are replayed in order and the file
// is cut at the first torn or corrupt entry (a crash mid-append; the spool, not this journal, is
// the source of truth, and LocalDedup::recover re-adds keys of pending spool records). Compaction
// writes the live set to dedup.journal.tmp, syncs it and renames it over the journal.
//
// Not thread-safe: LocalDedup serializes access. Errors are I/O failures with the path and errno
// text; they never include fingerprints.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>

#include "capi_relay/common/result.hpp"

namespace capi_relay::dedup_detail {

struct JournalEntry {
  uint64_t fp;
  uint32_t expiry;  // 0: removal
};

class DedupJournal {
 public:
  static constexpr size_t kEntryBytes = 16;

  struct Opened;
  // Creates the directory (0700) and the journal (0600) if missing, calls replay(entry) for every
  // valid entry in order and cuts a torn or corrupt tail.
  static Result<Opened> open(const std::filesystem::path& dir,
                             const std::function<void(const JournalEntry&)>& replay);

  DedupJournal(DedupJournal&& o) noexcept;
  DedupJournal& operator=(DedupJournal&& o) noexcept;
  DedupJournal(const DedupJournal&) = delete;
  DedupJournal& operator=(const DedupJournal&) = delete;
  ~DedupJournal();

  // Appends the entries and fdatasyncs. On failure nothing counts as written (the next append
  // overwrites any partial tail).
  Result<void> append(std::span<const JournalEntry> entries);

  // Compaction in two steps, so the caller can produce the snapshot under its lock and sync it
  // outside: begin_rewrite() starts dedup.journal.tmp, add() buffers/writes snapshot entries,
  // commit_rewrite() syncs it and renames it over the journal (the journal then holds exactly the
  // snapshot); abort_rewrite() discards it and leaves the journal as it was.
  Result<void> begin_rewrite();
  Result<void> add_to_rewrite(const JournalEntry& e);
  Result<void> commit_rewrite();
  void abort_rewrite();

  uint64_t entries() const { return entries_; }  // entries on disk
  const std::filesystem::path& path() const { return path_; }

 private:
  DedupJournal(std::filesystem::path dir, int fd, uint64_t entries);
  Result<void> flush_rewrite_buffer();

  std::filesystem::path dir_;
  std::filesystem::path path_;
  std::filesystem::path tmp_path_;
  int fd_ = -1;
  uint64_t entries_ = 0;
  int tmp_fd_ = -1;
  uint64_t tmp_entries_ = 0;
  std::string tmp_buffer_;
};

struct DedupJournal::Opened {
  DedupJournal journal;
  uint64_t replayed = 0;   // valid entries read
  uint64_t cut_bytes = 0;  // bytes of torn or corrupt tail removed
};

}  // namespace capi_relay::dedup_detail
