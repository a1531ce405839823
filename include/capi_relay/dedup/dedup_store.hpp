#pragma once
// Dedup state: which (rule, eventId) keys were durably accepted within the window.
//
// Protocol (claim / commit / release) so that a key is recorded only once its event is durable:
//   1. claim(keys): per key kClaimed (the caller now owns it, pending), kDuplicate (committed, or
//      pending under another claim in the same or an earlier unfinished write), or kBusy (claimed
//      by another relay sharing the store and not yet committed: ask again later), or
//      kUnavailable (a shared store could not be reached and dedup.redis_unavailable is
//      `reject`: nothing was claimed; the caller answers 503).
//   2. the caller writes the events to the spool and syncs it;
//   3. commit(keys) on success, release(keys) on failure. A released key is free again.
// release() is also how a dead-lettered event's key is freed so a corrected resend is accepted.
//
// Keys are 64-bit fingerprints (event/record.hpp: dedup_fingerprint). Entries expire `window`
// after they were committed. Implementations are thread-safe.
#include <cstdint>
#include <memory>
#include <span>

#include "capi_relay/common/result.hpp"

namespace capi_relay {

enum class ClaimResult : uint8_t { kClaimed, kDuplicate, kBusy, kUnavailable };

class DedupStore {
 public:
  virtual ~DedupStore() = default;
  virtual void claim(std::span<const uint64_t> keys, std::span<ClaimResult> out,
                     int64_t now_ms) = 0;
  virtual void commit(std::span<const uint64_t> keys, int64_t now_ms) = 0;
  virtual void release(std::span<const uint64_t> keys) = 0;
  // Re-adds committed keys found in the spool at start-up (a crash may have lost the journal's
  // tail while the spool records were durable). `committed_at_ms` is the record's accept time.
  virtual void recover(uint64_t key, int64_t committed_at_ms) = 0;
  // Makes commits/releases so far durable.
  virtual Result<void> flush() = 0;
  virtual uint64_t size() const = 0;  // live keys
};

}  // namespace capi_relay
