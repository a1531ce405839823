#pragma once
// The local dedup backend: an open-addressing table of (64-bit fingerprint, 32-bit expiry) slots
// (12 bytes per slot, <= 16 bytes of RAM per key at the table's load factor) plus an append-only
// journal <dir>/dedup.journal of fixed-size checksummed entries, compacted into a snapshot when it
// grows past twice the live set. A torn journal tail is cut on open. Thread-safe (one mutex; the
// spool writer thread is the only frequent caller).
#include <filesystem>
#include <memory>
#include <optional>

#include "capi_relay/common/clock.hpp"
#include "capi_relay/dedup/dedup_store.hpp"

namespace capi_relay {

struct LocalDedupOptions {
  std::filesystem::path dir;  // journal directory (created 0700)
  int64_t window_ms = 7ll * 24 * 3600 * 1000;
  uint64_t initial_capacity = 1 << 16;
  // The journal is compacted when it holds more than 2 x live keys + this many entries.
  uint64_t compact_min_entries = 1 << 20;
};

// Introspection of a local store (tests, benchmarks, diagnostics).
struct LocalDedupStats {
  uint64_t committed_keys = 0;   // size(): committed keys, expired ones until swept
  uint64_t pending_keys = 0;     // claimed, not yet committed or released
  uint64_t capacity = 0;         // table slots
  uint64_t table_bytes = 0;      // RAM of the table (12 bytes per slot)
  uint64_t journal_entries = 0;  // entries on disk
};
// nullopt when `store` was not made by open_local_dedup.
std::optional<LocalDedupStats> local_dedup_stats(const DedupStore& store);

Result<std::unique_ptr<DedupStore>> open_local_dedup(const LocalDedupOptions& opts, Clock& clock);

}  // namespace capi_relay
