#pragma once
// The uploader: reads pending records from the spool, batches them (up to batch_max_events, or
// every flush_interval), serializes LinkedIn elements from the stored NormalizedEvents, sends
// BATCH_CREATE requests over kept-alive connections (or, with dry_run, writes each body to
// <spool.dir>/dry-run/), and applies the failure policy of contract §5: per-element statuses,
// 422/400 index verdicts -> dead letters, retry with shared capped exponential backoff + full
// jitter and Retry-After, token refresh, pauses with a reason, 90-day expiry.
// Completed records are marked complete in the spool; dead-lettered ones also release their
// dedup key. Runs on its own thread with its own io_context; every public method is thread-safe.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "capi_relay/common/clock.hpp"
#include "capi_relay/config/config.hpp"
#include "capi_relay/dedup/dedup_store.hpp"
#include "capi_relay/event/event.hpp"
#include "capi_relay/metrics/relay_metrics.hpp"
#include "capi_relay/spool/dead_letters.hpp"
#include "capi_relay/spool/spool.hpp"

namespace capi_relay {

struct UploadStatus {
  bool paused = false;
  std::string paused_reason;        // e.g. "token_expired", "token_revoked", "forbidden",
                                    // "version_retired", "systemic_error: <status> <message>"
  int64_t last_upload_ms = 0;       // 0: none yet
  int last_upload_status = 0;       // HTTP status of the last upload request (0: none/network)
  int64_t token_expires_at_ms = 0;  // 0: unknown
  int64_t refresh_token_expires_at_ms = 0;  // 0: unknown
  uint64_t in_flight_events = 0;
};

struct UploaderDeps {
  const Config& config;
  Spool& spool;
  DedupStore& dedup;
  DeadLetterStore& dead_letters;
  metrics::RelayMetrics& metrics;
  Clock& clock;
  RandomSource& random;
  // Optional: told the final outcome of each event (true: uploaded, false: dead-lettered), on the
  // uploader's thread (GET /v1/events/{eventId} keeps track with it).
  std::function<void(const NormalizedEvent&, bool uploaded)> on_outcome = {};
};

class Uploader {
 public:
  static std::unique_ptr<Uploader> create(const UploaderDeps& deps);
  virtual ~Uploader() = default;
  virtual void start() = 0;
  // New records are visible in the spool (called by the spool writer after each sync).
  virtual void notify() = 0;
  // Re-read the token file and retry now (SIGHUP, or a paused relay's manual recheck).
  virtual void recheck() = 0;
  // Uploads what it can of the spool until `deadline` (steady clock ms; call it after the spool
  // writer has stopped, so events accepted up to then are included), then stops the thread.
  // Whatever is not uploaded stays in the spool.
  virtual void stop(int64_t deadline_steady_ms) = 0;
  virtual UploadStatus status() const = 0;
};

}  // namespace capi_relay
