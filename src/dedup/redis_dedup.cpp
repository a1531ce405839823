// The Redis dedup backend: claims in Lua (one round trip per claim), commits pipelined, a local
// store as the fallback while Redis is unreachable.
#include "capi_relay/dedup/redis_dedup.hpp"

#include <algorithm>
#include <atomic>
#include <climits>
#include <mutex>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "capi_relay/common/log.hpp"
#include "redis_connection.hpp"

namespace capi_relay {
namespace {

using dedup_detail::RedisConnection;
using dedup_detail::RedisReply;

// KEYS: the keys; ARGV[1]: this instance's pending value; ARGV[2]: lease in ms.
// Per key: 0 claimed, 1 committed (duplicate), 2 pending under another instance (busy). A pending
// value of this instance reaching the script is stale (the store filters keys it still holds), so
// it is taken over with a fresh lease.
constexpr std::string_view kClaimScript = R"lua(
local r = {}
for i, k in ipairs(KEYS) do
  if redis.call('SET', k, ARGV[1], 'NX', 'PX', ARGV[2]) then
    r[i] = 0
  else
    local v = redis.call('GET', k)
    if v == 'c' then
      r[i] = 1
    elseif v == ARGV[1] then
      redis.call('SET', k, ARGV[1], 'PX', ARGV[2])
      r[i] = 0
    else
      r[i] = 2
    end
  end
end
return r
)lua";

// KEYS: the keys; ARGV[1]: this instance's pending value. Deletes a key that is committed or is
// our own pending claim; another instance's pending claim is left alone.
constexpr std::string_view kReleaseScript = R"lua(
for i, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if v == 'c' or v == ARGV[1] then redis.call('DEL', k) end
end
return 0
)lua";

constexpr std::string_view kCommitted = "c";
constexpr size_t kKeysPerScript = 4096;     // keys per EVAL (bounds one script's run time)
constexpr size_t kOpsPerDrain = 4096;       // buffered operations sent per round trip
constexpr size_t kMaxBufferedOps = 1 << 20; // beyond this, operations for Redis are dropped
constexpr int64_t kWarnEveryMs = 30'000;

// An operation owed to Redis: recover (SET NX), a commit or a release that could not be sent
// while Redis was unreachable. Sent in order once it is reachable again; all are idempotent.
struct BufferedOp {
  enum class Kind : uint8_t { kRecover, kCommit, kRelease };
  uint64_t key;
  int64_t at_ms;  // commit time (kRecover, kCommit)
  Kind kind;
};

// Owns the connection, the set of keys it holds pending, the buffered operations and the
// fallback store. Every public call takes mu_. Redis failures are never returned to callers
// (claim answers from the fallback or kUnavailable); they are logged (rate-limited) and counted.
class RedisDedup final : public DedupStore {
 public:
  RedisDedup(const RedisDedupOptions& opts, dedup_detail::RedisEndpoint endpoint, Clock& clock,
             std::unique_ptr<DedupStore> fallback, metrics::RelayMetrics* metrics)
      : opts_(opts),
        clock_(clock),
        fallback_(std::move(fallback)),
        metrics_(metrics),
        conn_(std::move(endpoint), opts.connect_timeout_ms, opts.io_timeout_ms),
        pending_value_(opts.instance_id + ":p") {}

  ~RedisDedup() override {
    std::lock_guard lock(mu_);
    if (usable()) drain_ops();
  }

  void claim(std::span<const uint64_t> keys, std::span<ClaimResult> out, int64_t now_ms) override {
    std::lock_guard lock(mu_);
    if (usable() && !ops_.empty()) drain_ops();
    // Keys this store already holds pending (an earlier unfinished claim, or earlier in this
    // span) are duplicates without asking Redis; the rest are sent.
    ask_.clear();
    for (size_t i = 0; i < keys.size(); ++i) {
      if (pending_.insert(keys[i]).second) {
        ask_.push_back(i);
      } else {
        out[i] = ClaimResult::kDuplicate;
      }
    }
    if (ask_.empty()) return;
    if (usable() && claim_redis(keys, out)) return;
    claim_unavailable(keys, out);
  }

  void commit(std::span<const uint64_t> keys, int64_t now_ms) override {
    std::lock_guard lock(mu_);
    for (uint64_t k : keys) pending_.erase(k);
    if (fallback_) fallback_->commit(keys, now_ms);
    if (keys.empty()) return;
    if (usable()) {
      if (!ops_.empty()) drain_ops();
      if (usable()) {
        for (uint64_t k : keys) {
          conn_.begin_command(5);
          conn_.arg("SET");
          conn_.arg(key_name(k));
          conn_.arg(kCommitted);
          conn_.arg("PX");
          conn_.arg(opts_.window_ms);
        }
        if (exec_checked("commit")) return;
      }
    }
    for (uint64_t k : keys) buffer_op({k, now_ms, BufferedOp::Kind::kCommit});
  }

  void release(std::span<const uint64_t> keys) override {
    std::lock_guard lock(mu_);
    for (uint64_t k : keys) pending_.erase(k);
    if (fallback_) fallback_->release(keys);
    if (keys.empty()) return;
    if (usable()) {
      if (!ops_.empty()) drain_ops();
      if (usable()) {
        for (size_t begin = 0; begin < keys.size(); begin += kKeysPerScript) {
          const size_t n = std::min(kKeysPerScript, keys.size() - begin);
          conn_.begin_command(3 + n + 1);
          conn_.arg("EVAL");
          conn_.arg(kReleaseScript);
          conn_.arg(static_cast<int64_t>(n));
          for (size_t i = 0; i < n; ++i) conn_.arg(key_name(keys[begin + i]));
          conn_.arg(pending_value_);
        }
        if (exec_checked("release")) return;
      }
    }
    for (uint64_t k : keys) buffer_op({k, 0, BufferedOp::Kind::kRelease});
  }

  void recover(uint64_t key, int64_t committed_at_ms) override {
    std::lock_guard lock(mu_);
    if (committed_at_ms + opts_.window_ms <= clock_.now_ms()) return;
    if (fallback_) fallback_->recover(key, committed_at_ms);
    buffer_op({key, committed_at_ms, BufferedOp::Kind::kRecover});
    if (ops_.size() >= kOpsPerDrain && usable()) drain_ops();
  }

  Result<void> flush() override {
    std::lock_guard lock(mu_);
    // Also the periodic probe: after retry_after_ms, this is the first call to try Redis again.
    if (usable()) {
      if (!ops_.empty()) drain_ops();
      if (usable()) {
        conn_.command({"DBSIZE"});
        if (exec_checked("size") && replies_[0].type == RedisReply::Type::kInteger) {
          size_.store(static_cast<uint64_t>(std::max<int64_t>(0, replies_[0].integer)),
                      std::memory_order_relaxed);
        }
      }
    }
    if (fallback_) return fallback_->flush();
    return {};
  }

  uint64_t size() const override { return size_.load(std::memory_order_relaxed); }

 private:
  bool usable() const { return clock_.steady_ms() >= retry_at_ms_; }

  const std::string& key_name(uint64_t fp) {
    static constexpr char kHex[] = "0123456789abcdef";
    key_.assign(opts_.key_prefix);
    for (int shift = 60; shift >= 0; shift -= 4) key_ += kHex[(fp >> shift) & 0xF];
    return key_;
  }

  // One EVAL per kKeysPerScript keys of ask_, all in one pipeline. False on any failure.
  bool claim_redis(std::span<const uint64_t> keys, std::span<ClaimResult> out) {
    for (size_t begin = 0; begin < ask_.size(); begin += kKeysPerScript) {
      const size_t n = std::min(kKeysPerScript, ask_.size() - begin);
      conn_.begin_command(3 + n + 2);
      conn_.arg("EVAL");
      conn_.arg(kClaimScript);
      conn_.arg(static_cast<int64_t>(n));
      for (size_t i = 0; i < n; ++i) conn_.arg(key_name(keys[ask_[begin + i]]));
      conn_.arg(pending_value_);
      conn_.arg(opts_.lease_ms);
    }
    if (!exec_checked("claim")) return false;
    for (size_t s = 0, begin = 0; begin < ask_.size(); ++s, begin += kKeysPerScript) {
      const size_t n = std::min(kKeysPerScript, ask_.size() - begin);
      const RedisReply& r = replies_[s];
      if (r.type != RedisReply::Type::kArray || r.elements.size() != n) {
        fail("claim", "unexpected reply to the claim script");
        return false;
      }
      for (size_t i = 0; i < n; ++i) {
        const size_t idx = ask_[begin + i];
        switch (r.elements[i].integer) {
          case 0: out[idx] = ClaimResult::kClaimed; break;
          case 1: out[idx] = ClaimResult::kDuplicate; break;
          default: out[idx] = ClaimResult::kBusy; break;
        }
        if (out[idx] != ClaimResult::kClaimed) pending_.erase(keys[idx]);
      }
    }
    return true;
  }

  // Redis is unreachable: the fallback answers for the keys in ask_, or they are kUnavailable.
  // Keys whose claim may have reached Redis before the failure stay there as our stale pending
  // values; the claim script takes those over later.
  void claim_unavailable(std::span<const uint64_t> keys, std::span<ClaimResult> out) {
    if (!fallback_) {
      for (size_t idx : ask_) {
        out[idx] = ClaimResult::kUnavailable;
        pending_.erase(keys[idx]);
      }
      return;
    }
    sub_keys_.clear();
    for (size_t idx : ask_) sub_keys_.push_back(keys[idx]);
    sub_out_.resize(sub_keys_.size());
    fallback_->claim(sub_keys_, sub_out_, clock_.now_ms());
    for (size_t j = 0; j < ask_.size(); ++j) {
      out[ask_[j]] = sub_out_[j];
      if (sub_out_[j] != ClaimResult::kClaimed) pending_.erase(sub_keys_[j]);
    }
    fallback_events_ += ask_.size();
    if (metrics_) metrics_->dedup_redis_fallbacks.inc(ask_.size());
  }

  // Sends the appended commands; false (Redis marked unreachable) on an I/O failure or an error
  // reply.
  bool exec_checked(const char* what) {
    auto r = conn_.exec(replies_);
    if (!r) {
      fail(what, r.error());
      return false;
    }
    for (const auto& reply : replies_) {
      if (reply.is_error()) {
        conn_.close();
        fail(what, "redis error reply: " + reply.str.substr(0, 120));
        return false;
      }
    }
    if (was_down_) {
      was_down_ = false;
      log::info("dedup", "redis reachable again",
                {{"fallback_events", std::to_string(fallback_events_)}});
      fallback_events_ = 0;
    }
    return true;
  }

  void fail(const char* what, const std::string& error) {
    conn_.discard();
    retry_at_ms_ = clock_.steady_ms() + opts_.retry_after_ms;
    was_down_ = true;
    if (metrics_) metrics_->dedup_redis_errors.inc();
    const int64_t now = clock_.steady_ms();
    if (last_warn_ms_ == LLONG_MIN || now - last_warn_ms_ >= kWarnEveryMs) {
      last_warn_ms_ = now;
      log::warn("dedup",
                fallback_ ? "redis unreachable; answering from the local dedup store"
                          : "redis unreachable; ingest answers 503 (dedup.redis_unavailable: reject)",
                {{"operation", what},
                 {"error", error},
                 {"retry_in_ms", std::to_string(opts_.retry_after_ms)}});
    }
  }

  void buffer_op(const BufferedOp& op) {
    if (ops_.size() >= kMaxBufferedOps) {
      ++dropped_ops_;
      if (dropped_ops_ == 1 || dropped_ops_ % 100000 == 0) {
        log::warn("dedup", "redis operation buffer full; dropping operations",
                  {{"dropped", std::to_string(dropped_ops_)}});
      }
      return;
    }
    ops_.push_back(op);
  }

  // Sends buffered operations in order, kOpsPerDrain per round trip, until none are left or
  // Redis fails (the unsent rest is kept).
  void drain_ops() {
    const int64_t now = clock_.now_ms();
    size_t done = 0;
    while (done < ops_.size()) {
      const size_t n = std::min(kOpsPerDrain, ops_.size() - done);
      size_t sent = 0;
      for (size_t i = done; i < done + n; ++i) {
        const BufferedOp& op = ops_[i];
        if (op.kind == BufferedOp::Kind::kRelease) {
          conn_.begin_command(5);
          conn_.arg("EVAL");
          conn_.arg(kReleaseScript);
          conn_.arg(int64_t{1});
          conn_.arg(key_name(op.key));
          conn_.arg(pending_value_);
          ++sent;
          continue;
        }
        const int64_t rest = op.at_ms + opts_.window_ms - now;
        if (rest <= 0) continue;
        const bool nx = op.kind == BufferedOp::Kind::kRecover;
        conn_.begin_command(nx ? 6 : 5);
        conn_.arg("SET");
        conn_.arg(key_name(op.key));
        conn_.arg(kCommitted);
        if (nx) conn_.arg("NX");
        conn_.arg("PX");
        conn_.arg(rest);
        ++sent;
      }
      if (sent > 0 && !exec_checked("replay")) break;
      done += n;
    }
    ops_.erase(ops_.begin(), ops_.begin() + static_cast<ptrdiff_t>(done));
  }

  const RedisDedupOptions opts_;
  Clock& clock_;
  mutable std::mutex mu_;
  std::unique_ptr<DedupStore> fallback_;  // guarded by mu_ (itself thread-safe too)
  metrics::RelayMetrics* metrics_;
  RedisConnection conn_;             // guarded by mu_
  const std::string pending_value_;  // "<instance id>:p"
  std::unordered_set<uint64_t> pending_;  // keys claimed here, not yet committed or released
  std::vector<BufferedOp> ops_;
  int64_t retry_at_ms_ = LLONG_MIN;  // steady ms before which Redis is not tried
  bool was_down_ = false;
  int64_t last_warn_ms_ = LLONG_MIN;
  uint64_t fallback_events_ = 0;
  uint64_t dropped_ops_ = 0;
  std::atomic<uint64_t> size_{0};
  // Scratch (under mu_).
  std::string key_;
  std::vector<size_t> ask_;
  std::vector<uint64_t> sub_keys_;
  std::vector<ClaimResult> sub_out_;
  std::vector<RedisReply> replies_;
};

}  // namespace

Result<std::unique_ptr<DedupStore>> open_redis_dedup(const RedisDedupOptions& opts, Clock& clock,
                                                     std::unique_ptr<DedupStore> fallback,
                                                     metrics::RelayMetrics* metrics) {
  if (opts.instance_id.empty()) return Error{"redis dedup: empty instance id"};
  if (opts.window_ms <= 0) return Error{"dedup window must be positive"};
  if (opts.lease_ms <= 0) return Error{"redis dedup: lease must be positive"};
  auto endpoint = dedup_detail::parse_redis_url(opts.url);
  if (!endpoint) return Error{"dedup.redis_url: " + endpoint.error()};
  log::info("dedup", "redis dedup configured",
            {{"host", endpoint->host},
             {"port", std::to_string(endpoint->port)},
             {"db", std::to_string(endpoint->db)},
             {"fallback", fallback ? "local" : "reject"}});
  return std::unique_ptr<DedupStore>(
      std::make_unique<RedisDedup>(opts, std::move(*endpoint), clock, std::move(fallback), metrics));
}

}  // namespace capi_relay
