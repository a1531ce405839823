#include "capi_relay/ingest/write_pipeline.hpp"

#include <algorithm>

#include "capi_relay/common/log.hpp"
#include "capi_relay/common/thread_name.hpp"
#include "capi_relay/dedup/redis_dedup.hpp"

namespace capi_relay {

namespace {
constexpr size_t kMaxGroup = 256;                  // requests per commit group
constexpr int64_t kBackgroundSyncMs = 1000;        // fsync: off, and dedup journal flush
constexpr int64_t kBusyRetryMs = 10;               // re-claim of requests with busy keys
constexpr int64_t kBusyWaitMs = kRedisClaimLeaseMs;  // then a busy key is answered duplicate
}  // namespace

WritePipeline::WritePipeline(Spool& spool, DedupStore& dedup, metrics::RelayMetrics& metrics,
                             Clock& clock, FsyncMode fsync, size_t queue_capacity,
                             std::function<void()> on_synced)
    : spool_(spool),
      dedup_(dedup),
      metrics_(metrics),
      clock_(clock),
      fsync_(fsync),
      on_synced_(std::move(on_synced)),
      queue_(queue_capacity) {}

WritePipeline::~WritePipeline() { stop(); }

void WritePipeline::start() {
  thread_ = std::thread([this] {
    set_thread_name("spool-writer");
    run();
  });
}

bool WritePipeline::submit(std::unique_ptr<WriteRequest>& req) {
  if (stopping_.load(std::memory_order_acquire)) return false;
  bool ok = queue_.try_push(req);
  metrics_.ingest_queue_depth.set(static_cast<double>(queue_.size_approx()));
  return ok;
}

void WritePipeline::stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true, std::memory_order_release);
  queue_.wake();
  thread_.join();
}

void WritePipeline::run() {
  std::vector<std::unique_ptr<WriteRequest>> group;
  group.reserve(kMaxGroup);
  int64_t last_background_sync = clock_.steady_ms();
  bool unsynced_off = false;  // fsync: off wrote records not yet fdatasynced
  for (;;) {
    if (!busy_.empty() &&
        (clock_.steady_ms() >= busy_retry_at_ms_ || stopping_.load(std::memory_order_acquire))) {
      // Requests waiting on another relay's claims go first; write_group sets aside again those
      // still busy.
      busy_retry_at_ms_ = clock_.steady_ms() + kBusyRetryMs;
      for (auto& r : busy_) group.push_back(std::move(r));
      busy_.clear();
    }
    while (group.size() < kMaxGroup) {
      auto r = queue_.try_pop();
      if (!r) break;
      group.push_back(std::move(*r));
    }
    if (!group.empty()) {
      write_group(group);
      group.clear();
      unsynced_off = unsynced_off || fsync_ == FsyncMode::kOff;
      continue;  // more may have queued meanwhile
    }
    int64_t now = clock_.steady_ms();
    if (now - last_background_sync >= kBackgroundSyncMs) {
      last_background_sync = now;
      if (unsynced_off) {
        if (auto r = spool_.sync(true); !r) log::error("spool", "periodic fsync failed", {{"error", r.error()}});
        unsynced_off = false;
      }
      if (auto r = dedup_.flush(); !r) log::error("dedup", "journal flush failed", {{"error", r.error()}});
    }
    if (stopping_.load(std::memory_order_acquire) && queue_.size_approx() == 0 && busy_.empty())
      break;
    queue_.wait_for(std::chrono::milliseconds(busy_.empty() ? kBackgroundSyncMs : kBusyRetryMs));
  }
  if (unsynced_off) (void)spool_.sync(true);
  if (auto r = dedup_.flush(); !r) log::error("dedup", "journal flush failed", {{"error", r.error()}});
}

void WritePipeline::write_group(std::vector<std::unique_ptr<WriteRequest>>& group) {
  const int64_t now_ms = clock_.now_ms();
  claimed_.clear();
  size_t appended = 0;
  bool write_failed = false;
  // One claim for the whole group: with Redis one round trip instead of one per request. A key
  // twice in the group is claimed by its first request and a duplicate for the later one, as
  // when the requests claimed one after the other.
  group_keys_.clear();
  for (auto& req : group) {
    req->duplicate.assign(req->records(), 0);
    if (!req->bypass_dedup) group_keys_.insert(group_keys_.end(), req->keys.begin(), req->keys.end());
  }
  group_results_.resize(group_keys_.size());
  if (!group_keys_.empty()) dedup_.claim(group_keys_, group_results_, now_ms);
  size_t next_result = 0;
  bool released = false;  // a request of this group gave back keys it had claimed
  for (auto& req : group) {
    const size_t n = req->records();
    claim_results_.resize(n);
    if (req->bypass_dedup) {
      std::fill(claim_results_.begin(), claim_results_.end(), ClaimResult::kClaimed);
    } else {
      std::copy_n(group_results_.begin() + static_cast<ptrdiff_t>(next_result), n,
                  claim_results_.begin());
      next_result += n;
      // A key found pending because an earlier request of the group held it is free again when
      // that request gave up: claim this request's duplicates once more (rare: spool full,
      // another relay's claim, Redis unavailable).
      if (released) reclaim_duplicates(*req, now_ms);
    }
    if (spool_.would_exceed(req->data.size() + 16 * n)) {
      if (!req->bypass_dedup) release_request_claims(*req);
      released = true;
      req->status = WriteStatus::kSpoolFull;
      continue;
    }
    if (!settle_claims(req)) {  // set aside (busy) or failed (unavailable); claims released
      released = true;
      continue;
    }
    for (size_t i = 0; i < n; ++i) {
      if (claim_results_[i] != ClaimResult::kClaimed) {
        // kBusy past the wait is answered as a duplicate too: the other relay accepted the
        // event or, when its write failed, a client retry is accepted here.
        req->duplicate[i] = 1;
        continue;
      }
      claimed_.push_back(req->keys[i]);
      std::string_view payload(req->data.data() + req->offsets[i],
                               req->offsets[i + 1] - req->offsets[i]);
      if (auto r = spool_.append(payload, now_ms); !r) {
        log::error("spool", "append failed", {{"error", r.error()}});
        write_failed = true;
      }
      ++appended;
    }
  }
  if (appended > 0 && !write_failed) {
    const int64_t t0 = clock_.steady_ms();
    auto r = spool_.sync(false);
    metrics_.spool_fsync_duration.observe(static_cast<double>(clock_.steady_ms() - t0) / 1000.0);
    if (!r) {
      log::error("spool", "write failed; requests answered 503", {{"error", r.error()}});
      write_failed = true;
    }
  }
  if (write_failed) {
    dedup_.release(claimed_);
    for (auto& req : group)
      if (req && req->status == WriteStatus::kOk) req->status = WriteStatus::kWriteFailed;
  } else if (!claimed_.empty()) {
    dedup_.commit(claimed_, now_ms);
  }
  metrics_.spool_commit_group.observe(static_cast<double>(group.size()));
  metrics_.ingest_queue_depth.set(static_cast<double>(queue_.size_approx()));
  if (appended > 0 && !write_failed && on_synced_) on_synced_();
  for (auto& req : group) {
    if (!req) continue;  // set aside in busy_
    auto done = std::move(req->done);
    done(std::move(req));
  }
}

// Handles the kBusy and kUnavailable answers of the claim just made for `req` (claim_results_).
// Returns true when the request proceeds to the append; false when it released its claims and was
// moved to busy_ (req becomes null) or completed without writing (status set).
bool WritePipeline::settle_claims(std::unique_ptr<WriteRequest>& req) {
  bool busy = false, unavailable = false;
  for (ClaimResult r : claim_results_) {
    busy = busy || r == ClaimResult::kBusy;
    unavailable = unavailable || r == ClaimResult::kUnavailable;
  }
  if (!busy && !unavailable) return true;
  const int64_t now = clock_.steady_ms();
  if (busy && req->busy_since_ms < 0) req->busy_since_ms = now;
  const bool stopping = stopping_.load(std::memory_order_acquire);
  const bool wait = busy && !unavailable && !stopping && now - req->busy_since_ms < kBusyWaitMs;
  if (!wait && !unavailable && !stopping) return true;  // waited long enough: busy -> duplicate
  release_request_claims(*req);
  if (wait) {
    if (busy_.empty()) busy_retry_at_ms_ = now + kBusyRetryMs;
    busy_.push_back(std::move(req));
    return false;
  }
  // Dedup could not decide (503 so the client retries), or the relay is stopping.
  req->status = unavailable ? WriteStatus::kWriteFailed : WriteStatus::kShuttingDown;
  return false;
}

void WritePipeline::release_request_claims(const WriteRequest& req) {
  request_claimed_.clear();
  for (size_t i = 0; i < req.records(); ++i)
    if (claim_results_[i] == ClaimResult::kClaimed) request_claimed_.push_back(req.keys[i]);
  if (!request_claimed_.empty()) dedup_.release(request_claimed_);
}

void WritePipeline::reclaim_duplicates(const WriteRequest& req, int64_t now_ms) {
  reclaim_index_.clear();
  reclaim_keys_.clear();
  for (size_t i = 0; i < req.records(); ++i) {
    if (claim_results_[i] != ClaimResult::kDuplicate) continue;
    reclaim_index_.push_back(i);
    reclaim_keys_.push_back(req.keys[i]);
  }
  if (reclaim_keys_.empty()) return;
  reclaim_results_.resize(reclaim_keys_.size());
  dedup_.claim(reclaim_keys_, reclaim_results_, now_ms);
  for (size_t j = 0; j < reclaim_index_.size(); ++j) claim_results_[reclaim_index_[j]] = reclaim_results_[j];
}

}  // namespace capi_relay
