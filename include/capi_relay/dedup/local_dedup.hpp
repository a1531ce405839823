#pragma once
// The local dedup backend: an open-addressing table of (64-bit fingerprint, 32-bit expiry) slots
// (12 bytes per slot, <= 16 bytes of RAM per key at the table's load factor) plus an append-only
// journal <dir>/dedup.journal of fixed-size checksummed entries, compacted into a snapshot when it
// grows past twice the live set. A torn journal tail is cut on open. Thread-safe (one mutex; the
// spool writer thread is the only frequent caller).
#include <filesystem>
#include <memory>

#include "capi_relay/common/clock.hpp"
#include "capi_relay/dedup/dedup_store.hpp"

namespace capi_relay {

struct LocalDedupOptions {
  std::filesystem::path dir;  // journal directory (created 0700)
  int64_t window_ms = 7ll * 24 * 3600 * 1000;
  uint64_t initial_capacity = 1 << 16;
};

Result<std::unique_ptr<DedupStore>> open_local_dedup(const LocalDedupOptions& opts, Clock& clock);

}  // namespace capi_relay
