#pragma once
// WritePipeline: the single spool writer thread and the bounded queue that feeds it.
//
// I/O threads parse and normalize a request body, encode the accepted events as spool record
// payloads and submit one WriteRequest per HTTP request. The writer thread takes every queued
// request (one commit group), claims their dedup keys, appends the claimed records, syncs the
// spool once for the whole group (group commit; fsync per spool.fsync), then commits the keys
// (or releases them when the write failed) and calls each request's `done` callback — on the
// writer thread, so callbacks must only post back to the session's executor.
//
// Backpressure: submit() fails at once when the queue is full; a request whose records would
// push the spool over spool.max_bytes completes with kSpoolFull. Both become HTTP 503.
//
// Shared dedup (Redis): a request with a key claimed by another relay (kBusy) releases its own
// claims and waits, re-claimed every 10 ms in later groups, until the other relay commits
// (duplicate) or releases (claimed here), for at most the claim lease (kRedisClaimLeaseMs; still
// busy then: duplicate). A request with a key the store could not decide (kUnavailable,
// dedup.redis_unavailable: reject) completes with kWriteFailed (503), nothing appended.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "capi_relay/common/bounded_queue.hpp"
#include "capi_relay/common/clock.hpp"
#include "capi_relay/config/config.hpp"
#include "capi_relay/dedup/dedup_store.hpp"
#include "capi_relay/metrics/relay_metrics.hpp"
#include "capi_relay/spool/spool.hpp"

namespace capi_relay {

enum class WriteStatus : uint8_t { kOk, kSpoolFull, kWriteFailed, kShuttingDown };

struct WriteRequest {
  // Records of the request's accepted events, in body order: payloads concatenated in `data`,
  // record i spanning [offsets[i], offsets[i+1]).
  std::string data;
  std::vector<uint32_t> offsets;  // size = records + 1
  std::vector<uint64_t> keys;     // dedup fingerprint per record
  // Dead-letter replay: append every record without claiming (they were accepted once already)
  // and commit their keys after the sync, so later resends are duplicates again.
  bool bypass_dedup = false;
  // Filled by the writer before `done`: per record, true when it was a duplicate.
  std::vector<uint8_t> duplicate;
  WriteStatus status = WriteStatus::kOk;
  std::function<void(std::unique_ptr<WriteRequest>)> done;
  // Writer-private: steady ms when the writer first found one of the request's keys claimed by
  // another relay (ClaimResult::kBusy); -1 while it has not.
  int64_t busy_since_ms = -1;

  size_t records() const { return keys.size(); }
  void add(std::string_view payload, uint64_t key) {
    if (offsets.empty()) offsets.push_back(0);
    data.append(payload);
    offsets.push_back(static_cast<uint32_t>(data.size()));
    keys.push_back(key);
  }
};

class WritePipeline {
 public:
  WritePipeline(Spool& spool, DedupStore& dedup, metrics::RelayMetrics& metrics, Clock& clock,
                FsyncMode fsync, size_t queue_capacity, std::function<void()> on_synced);
  ~WritePipeline();
  WritePipeline(const WritePipeline&) = delete;
  WritePipeline& operator=(const WritePipeline&) = delete;

  void start();
  // Any thread. False when the queue is full (the request is not taken; answer 503).
  bool submit(std::unique_ptr<WriteRequest>& req);
  // Writes what is queued, syncs, and stops the thread.
  void stop();
  size_t queue_depth() const { return queue_.size_approx(); }

 private:
  void run();
  void write_group(std::vector<std::unique_ptr<WriteRequest>>& group);
  bool settle_claims(std::unique_ptr<WriteRequest>& req);
  // Releases the keys claim_results_ says this request claimed.
  void release_request_claims(const WriteRequest& req);
  // Claims again the keys claim_results_ marks as duplicates (see write_group).
  void reclaim_duplicates(const WriteRequest& req, int64_t now_ms);

  Spool& spool_;
  DedupStore& dedup_;
  metrics::RelayMetrics& metrics_;
  Clock& clock_;
  FsyncMode fsync_;
  std::function<void()> on_synced_;
  BoundedQueue<std::unique_ptr<WriteRequest>> queue_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  // Scratch reused across groups (writer thread only).
  std::vector<uint64_t> claim_keys_;
  std::vector<ClaimResult> claim_results_;  // the request being written: its slice of the group's
  std::vector<uint64_t> group_keys_;        // keys of every request of a group, claimed at once
  std::vector<ClaimResult> group_results_;
  std::vector<size_t> reclaim_index_;
  std::vector<uint64_t> reclaim_keys_;
  std::vector<ClaimResult> reclaim_results_;
  std::vector<uint64_t> claimed_;
  std::vector<uint64_t> request_claimed_;
  // Requests with a key claimed by another relay sharing the dedup store (kBusy): set aside and
  // claimed again every kBusyRetryMs, ahead of newer requests (writer thread only).
  std::vector<std::unique_ptr<WriteRequest>> busy_;
  int64_t busy_retry_at_ms_ = 0;  // steady ms
};

}  // namespace capi_relay
