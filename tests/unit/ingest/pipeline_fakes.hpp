#pragma once
// In-memory Spool and DedupStore for WritePipeline tests (shared by the local and the shared-dedup
// pipeline tests).
#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "capi_relay/dedup/dedup_store.hpp"
#include "capi_relay/spool/spool.hpp"

namespace capi_relay::testing {

// An in-memory spool whose sync can be made to fail and whose size limit can be set.
class MemorySpool final : public Spool {
 public:
  bool would_exceed(uint64_t incoming) const override { return buffered_bytes_ + incoming > limit; }
  Result<RecordId> append(std::string_view payload, int64_t) override {
    buffered_.emplace_back(payload);
    buffered_bytes_ += payload.size();
    return RecordId{1, static_cast<uint32_t>(buffered_.size())};
  }
  Result<void> sync(bool) override {
    ++syncs;
    if (fail_sync) {
      buffered_.clear();
      buffered_bytes_ = 0;
      return Error{"disk full"};
    }
    std::lock_guard lock(mu_);
    for (auto& p : buffered_) durable_.push_back(std::move(p));
    buffered_.clear();
    return {};
  }
  size_t read_next(size_t, std::vector<SpoolEntry>&) override { return 0; }
  Result<void> complete(std::span<const RecordId>) override { return {}; }
  Result<void> for_each_pending(const std::function<void(const SpoolEntry&)>&) override {
    return {};
  }
  SpoolStats stats() const override { return {}; }
  uint64_t truncated_records() const override { return 0; }

  std::vector<std::string> durable() {
    std::lock_guard lock(mu_);
    return durable_;
  }

  std::atomic<bool> fail_sync{false};
  std::atomic<int> syncs{0};
  uint64_t limit = 1 << 20;

 private:
  std::mutex mu_;
  std::vector<std::string> durable_;
  std::vector<std::string> buffered_;
  uint64_t buffered_bytes_ = 0;
};

// Records the claim/commit/release protocol. Pending claims answer duplicate like the local
// backend; `foreign` keys are claimed by another relay (kBusy) until the test commits or releases
// them there; `unavailable` makes every claim kUnavailable (a shared store that cannot be asked).
class RecordingDedup final : public DedupStore {
 public:
  void claim(std::span<const uint64_t> keys, std::span<ClaimResult> out, int64_t) override {
    std::lock_guard lock(mu_);
    ++claims;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (unavailable) {
        out[i] = ClaimResult::kUnavailable;
      } else if (foreign.count(keys[i])) {
        out[i] = ClaimResult::kBusy;
      } else if (committed.count(keys[i]) || pending.count(keys[i])) {
        out[i] = ClaimResult::kDuplicate;
      } else {
        pending.insert(keys[i]);
        out[i] = ClaimResult::kClaimed;
      }
    }
  }
  void commit(std::span<const uint64_t> keys, int64_t) override {
    std::lock_guard lock(mu_);
    for (auto k : keys) {
      pending.erase(k);
      committed.insert(k);
    }
  }
  void release(std::span<const uint64_t> keys) override {
    std::lock_guard lock(mu_);
    for (auto k : keys) {
      pending.erase(k);
      committed.erase(k);
      released.insert(k);
    }
  }
  void recover(uint64_t k, int64_t) override {
    std::lock_guard lock(mu_);
    committed.insert(k);
  }
  Result<void> flush() override { return {}; }
  uint64_t size() const override { return committed.size(); }

  // The other relay's outcome for one of its claims.
  void other_relay_commits(uint64_t k) {
    std::lock_guard lock(mu_);
    foreign.erase(k);
    committed.insert(k);
  }
  void other_relay_releases(uint64_t k) {
    std::lock_guard lock(mu_);
    foreign.erase(k);
  }
  bool was_released(uint64_t k) {
    std::lock_guard lock(mu_);
    return released.count(k) > 0;
  }
  int claim_count() {
    std::lock_guard lock(mu_);
    return claims;
  }

  std::mutex mu_;
  std::set<uint64_t> foreign, committed, pending, released;
  std::atomic<bool> unavailable{false};
  int claims = 0;
};

}  // namespace capi_relay::testing
