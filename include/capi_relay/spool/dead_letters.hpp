#pragma once
// The dead-letter store: events LinkedIn refused (reason "rejected") or that could not be
// delivered within 90 days ("expired"), each with its own id, the spool record payload (hashed
// data only), HTTP status, LinkedIn's message and time. Stored as <dir>/dead-letters.log, an
// append-only log of checksummed entries (adds and removals), compacted on open; files 0600.
// Thread-safe.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "capi_relay/common/clock.hpp"
#include "capi_relay/common/result.hpp"

namespace capi_relay {

struct DeadLetter {
  uint64_t id = 0;            // assigned by the store, increasing
  std::string reason;         // "rejected" | "expired"
  int http_status = 0;        // 0 when none (expired)
  std::string message;        // LinkedIn's message (may be empty)
  int64_t dead_lettered_at_ms = 0;
  std::string payload;        // spool record payload (event/record.hpp)
};

struct DeadLetterFilter {
  std::vector<uint64_t> ids;          // empty: any id
  std::optional<std::string> reason;  // unset: any reason
};

class DeadLetterStore {
 public:
  static Result<std::unique_ptr<DeadLetterStore>> open(const std::filesystem::path& dir,
                                                       int64_t retention_ms, Clock& clock);
  virtual ~DeadLetterStore() = default;
  // Durable (fsynced) before returning; fills in ids.
  virtual Result<void> add(std::vector<DeadLetter>& entries) = 0;
  virtual std::vector<DeadLetter> list(const DeadLetterFilter& f = {}) const = 0;
  // Removes the matching entries durably and returns them (for replay).
  virtual Result<std::vector<DeadLetter>> take(const DeadLetterFilter& f) = 0;
  // Drops entries older than the retention; returns how many.
  virtual uint64_t expire() = 0;
  virtual uint64_t size() const = 0;
};

}  // namespace capi_relay
