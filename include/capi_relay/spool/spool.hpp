#pragma once
// The spool: an append-only, segmented write-ahead log of accepted events.
//
// Files in <dir>: seg-<16 digit id>.log (records) and seg-<id>.done (completion journal of that
// segment: u32 record indices, appended as records complete, in any order). A record frame is
//   u32 payload_len | u32 crc32c(append_ms..payload) | i64 append_ms | payload
// (little endian). Segments roll at segment_bytes. On open, every segment is scanned: a torn or
// corrupt tail is cut (logged, counted in `truncated_records()`), never refusing to start.
// A segment (and its .done file) is deleted once every record in it is complete (uploaded or
// dead-lettered), regardless of the order records complete in.
//
// Threading contract:
//   - append()/sync() are called from ONE writer thread (the group-commit writer).
//   - read_next()/complete()/stats are called from other threads (the uploader) concurrently with
//     the writer; a record becomes visible to readers only after the sync() that covers it.
// Memory does not grow with the backlog beyond a few bits per pending record: readers pull records
// from disk in bounded chunks.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "capi_relay/common/clock.hpp"
#include "capi_relay/common/result.hpp"
#include "capi_relay/config/config.hpp"

namespace capi_relay {

struct RecordId {
  uint64_t segment = 0;
  uint32_t index = 0;  // 0-based record number within the segment
  bool operator==(const RecordId&) const = default;
  auto operator<=>(const RecordId&) const = default;
};

struct SpoolEntry {
  RecordId id;
  int64_t append_ms = 0;
  std::string payload;
};

struct SpoolOptions {
  std::filesystem::path dir;                // created 0700; files 0600
  uint64_t max_bytes = 1ull << 30;          // pending bytes limit (admission control)
  uint64_t segment_bytes = 16ull << 20;     // roll size
  FsyncMode fsync = FsyncMode::kBatch;
};

struct SpoolStats {
  uint64_t pending_records = 0;   // appended, synced, not complete
  uint64_t bytes = 0;             // bytes on disk of segments with pending records
  int64_t oldest_pending_append_ms = 0;  // 0 when nothing is pending
  uint64_t segments = 0;
};

class Spool {
 public:
  static Result<std::unique_ptr<Spool>> open(const SpoolOptions& opts, Clock& clock);
  virtual ~Spool() = default;

  // --- writer thread ---
  // True when `incoming` more bytes would exceed max_bytes (ingest answers 503).
  virtual bool would_exceed(uint64_t incoming_bytes) const = 0;
  // Buffers one record (not yet durable, not yet visible to readers).
  virtual Result<RecordId> append(std::string_view payload, int64_t append_ms) = 0;
  // Writes buffered records to the file and, per mode, fdatasyncs (kAlways/kBatch: always;
  // kOff: only if `force`). Afterwards the records are visible to readers. On failure the
  // buffered records are discarded (the caller answers 503 and releases their dedup claims) and
  // the file is truncated back to its last synced length.
  virtual Result<void> sync(bool force = false) = 0;

  // --- any thread ---
  // Copies up to max_records pending records that were not yet handed out since open() into out
  // (in log order), marking them as handed out. Returns the number read.
  virtual size_t read_next(size_t max_records, std::vector<SpoolEntry>& out) = 0;
  // Marks records complete (uploaded or dead-lettered); deletes fully complete segments.
  virtual Result<void> complete(std::span<const RecordId> ids) = 0;
  // Calls fn for every pending record (used once at start-up to rebuild dedup state).
  virtual Result<void> for_each_pending(
      const std::function<void(const SpoolEntry&)>& fn) = 0;
  virtual SpoolStats stats() const = 0;
  virtual uint64_t truncated_records() const = 0;  // cut at open (torn/corrupt tails)
};

}  // namespace capi_relay
