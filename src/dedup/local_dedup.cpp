// The local dedup backend: FingerprintTable in memory, DedupJournal on disk.
#include "capi_relay/dedup/local_dedup.hpp"

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "capi_relay/common/log.hpp"
#include "dedup_journal.hpp"
#include "fingerprint_table.hpp"

namespace capi_relay {
namespace {

using dedup_detail::DedupJournal;
using dedup_detail::expiry_seconds;
using dedup_detail::FingerprintTable;
using dedup_detail::JournalEntry;
using dedup_detail::now_seconds;

// Slots examined for expired entries per flush(): with the writer's 1 s background flush, a table
// of 2M slots is swept every ~30 s.
constexpr uint64_t kSweepSlotsPerFlush = 1 << 16;
constexpr size_t kPrefetchAhead = 8;  // keys whose slots are loaded ahead of the one probed

// Owns the table, the journal and the journal entries not yet written. Thread-safe: mu_ guards the
// table and the unwritten entries (held briefly by every call); io_mu_ serializes journal I/O in
// flush() so that claim/commit proceed while the journal syncs. Lock order: io_mu_, then mu_.
// flush() errors are journal I/O failures; the unwritten entries are kept for the next flush.
class LocalDedup final : public DedupStore {
 public:
  LocalDedup(const LocalDedupOptions& opts, Clock& clock, DedupJournal journal,
             FingerprintTable table)
      : window_ms_(opts.window_ms),
        compact_min_entries_(opts.compact_min_entries),
        clock_(clock),
        journal_(std::move(journal)),
        table_(std::move(table)) {}

  ~LocalDedup() override {
    if (auto r = flush(); !r) log::error("dedup", "journal flush at close failed", {{"error", r.error()}});
  }

  void claim(std::span<const uint64_t> keys, std::span<ClaimResult> out, int64_t now_ms) override {
    const uint32_t now_s = now_seconds(now_ms);
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (i + kPrefetchAhead < keys.size()) table_.prefetch(keys[i + kPrefetchAhead]);
      out[i] = table_.claim(keys[i], now_s) ? ClaimResult::kClaimed : ClaimResult::kDuplicate;
    }
  }

  void commit(std::span<const uint64_t> keys, int64_t now_ms) override {
    const uint32_t now_s = now_seconds(now_ms);
    const uint32_t expiry = expiry_seconds(now_ms, window_ms_);
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (i + kPrefetchAhead < keys.size()) table_.prefetch(keys[i + kPrefetchAhead]);
      table_.set_committed(keys[i], expiry, now_s);
      unwritten_.push_back({keys[i], expiry});
    }
  }

  void release(std::span<const uint64_t> keys) override {
    const uint32_t now_s = now_seconds(clock_.now_ms());
    std::lock_guard lock(mu_);
    for (uint64_t k : keys) {
      // Only a live committed key has a live journal entry that a removal must cancel.
      if (table_.erase(k, now_s) == FingerprintTable::State::kCommitted) {
        unwritten_.push_back({k, 0});
      }
    }
  }

  void recover(uint64_t key, int64_t committed_at_ms) override {
    const uint32_t now_s = now_seconds(clock_.now_ms());
    const uint32_t expiry = expiry_seconds(committed_at_ms, window_ms_);
    if (expiry <= now_s) return;
    std::lock_guard lock(mu_);
    if (table_.insert_if_absent(key, expiry, now_s)) unwritten_.push_back({key, expiry});
  }

  Result<void> flush() override {
    std::lock_guard io(io_mu_);
    std::vector<JournalEntry> batch;
    {
      std::lock_guard lock(mu_);
      table_.sweep(now_seconds(clock_.now_ms()), kSweepSlotsPerFlush);
      batch.swap(unwritten_);
    }
    if (auto r = journal_.append(batch); !r) {
      std::lock_guard lock(mu_);
      unwritten_.insert(unwritten_.begin(), batch.begin(), batch.end());
      return r;
    }
    compact_if_due();
    return {};
  }

  uint64_t size() const override {
    std::lock_guard lock(mu_);
    return table_.committed();
  }

  LocalDedupStats stats() const {
    std::lock_guard io(io_mu_);
    std::lock_guard lock(mu_);
    return {table_.committed(), table_.pending(), table_.capacity(), table_.memory_bytes(),
            journal_.entries()};
  }

  void compact_now_if_due() {
    std::lock_guard io(io_mu_);
    compact_if_due();
  }

 private:
  // Rewrites the journal as the live set when it holds more than 2 x live + compact_min_entries
  // entries. The snapshot is taken under mu_; the sync and rename happen outside it. A failure
  // leaves the old journal in place (logged; the next flush tries again). io_mu_ must be held.
  void compact_if_due() {
    uint64_t live = 0;
    {
      std::lock_guard lock(mu_);
      live = table_.committed();
    }
    if (journal_.entries() <= 2 * live + compact_min_entries_) return;
    const uint64_t before = journal_.entries();
    if (auto r = journal_.begin_rewrite(); !r) {
      log::warn("dedup", "journal compaction failed", {{"error", r.error()}});
      return;
    }
    size_t snapshot_covers = 0;
    Result<void> written;
    {
      std::lock_guard lock(mu_);
      table_.for_each_live(now_seconds(clock_.now_ms()), [&](uint64_t fp, uint32_t expiry) {
        if (written.ok()) written = journal_.add_to_rewrite({fp, expiry});
      });
      // Entries not yet written describe changes the snapshot already holds.
      snapshot_covers = unwritten_.size();
    }
    if (!written) {
      journal_.abort_rewrite();
      log::warn("dedup", "journal compaction failed", {{"error", written.error()}});
      return;
    }
    if (auto r = journal_.commit_rewrite(); !r) {
      // Keeping the unwritten entries is safe either way: replaying them after the snapshot
      // yields the same state.
      log::warn("dedup", "journal compaction failed", {{"error", r.error()}});
      return;
    }
    {
      std::lock_guard lock(mu_);
      unwritten_.erase(unwritten_.begin(), unwritten_.begin() + static_cast<ptrdiff_t>(snapshot_covers));
    }
    log::info("dedup", "journal compacted",
              {{"entries_before", std::to_string(before)},
               {"entries_after", std::to_string(journal_.entries())}});
  }

  const int64_t window_ms_;
  const uint64_t compact_min_entries_;
  Clock& clock_;
  mutable std::mutex io_mu_;
  DedupJournal journal_;  // guarded by io_mu_
  mutable std::mutex mu_;
  FingerprintTable table_;               // guarded by mu_
  std::vector<JournalEntry> unwritten_;  // guarded by mu_
};

}  // namespace

Result<std::unique_ptr<DedupStore>> open_local_dedup(const LocalDedupOptions& opts, Clock& clock) {
  if (opts.window_ms <= 0) return Error{"dedup window must be positive"};
  FingerprintTable table(opts.initial_capacity);
  const uint32_t now_s = now_seconds(clock.now_ms());
  auto opened = DedupJournal::open(opts.dir, [&](const JournalEntry& e) {
    // Later entries supersede earlier ones: a removal or an expired entry means absent now.
    if (e.expiry == 0 || e.expiry <= now_s) {
      table.erase(e.fp, now_s);
    } else {
      table.set_committed(e.fp, e.expiry, now_s);
    }
  });
  if (!opened) return Error{"dedup journal: " + opened.error()};
  if (opened->cut_bytes > 0) {
    log::warn("dedup", "cut torn or corrupt journal tail",
              {{"bytes", std::to_string(opened->cut_bytes)}});
  }
  auto store = std::make_unique<LocalDedup>(opts, clock, std::move(opened->journal), std::move(table));
  // Start-up is a good moment to compact: nothing waits on the writer yet.
  store->compact_now_if_due();
  log::info("dedup", "local dedup state loaded",
            {{"keys", std::to_string(store->size())},
             {"journal_entries", std::to_string(opened->replayed)}});
  return std::unique_ptr<DedupStore>(std::move(store));
}

std::optional<LocalDedupStats> local_dedup_stats(const DedupStore& store) {
  const auto* local = dynamic_cast<const LocalDedup*>(&store);
  if (local == nullptr) return std::nullopt;
  return local->stats();
}

}  // namespace capi_relay
