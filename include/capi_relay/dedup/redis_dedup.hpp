#pragma once
// The Redis dedup backend (dedup.backend: redis): one key per fingerprint, shared by every relay
// that uses the same dedup.redis_url, so an event posted to two relays is accepted once.
//
// Keys are `<key_prefix><16 hex digits of the fingerprint>` with the value
//   "<instance id>:p"  pending: claimed by that relay, expiring after `lease_ms` (a relay that
//                      crashes between claim and commit cannot leave a key stuck), or
//   "c"                committed, expiring `window_ms` after the commit.
// claim()   one EVAL (Lua: SET NX PX lease, else read the value) for the whole span: one round
//           trip. Committed -> kDuplicate; pending under another instance -> kBusy; pending under
//           this store's own unfinished claim -> kDuplicate; a stale pending value of this
//           instance (a claim whose reply was lost) is taken over -> kClaimed.
// commit()  pipelined SET key c PX window.
// release() Lua compare-and-delete: deletes the key if it is our pending claim or committed (a
//           dead-lettered event's key), never another relay's pending claim.
// recover() SET key c NX PX <rest of the window>, buffered and sent in pipelines.
// size()    the database's key count (DBSIZE), refreshed by flush().
//
// When Redis cannot be reached (connect error, timeout, protocol error) the store either answers
// from `fallback` (a local store; redis_unavailable: local; counted in
// capi_relay_dedup_redis_fallbacks_total, warned at most every 30 s) or answers kUnavailable
// (redis_unavailable: reject, `fallback` null). It does not try Redis again for `retry_after_ms`
// (steady clock). With a fallback, commits/releases/recoveries are mirrored into it, so that it
// knows this relay's recent keys when Redis goes away.
//
// Thread-safe: one mutex serializes every call and the connection (the writer thread is the
// frequent caller; the uploader releases dead-lettered keys).
#include <cstdint>
#include <memory>
#include <string>

#include "capi_relay/common/clock.hpp"
#include "capi_relay/dedup/dedup_store.hpp"
#include "capi_relay/metrics/relay_metrics.hpp"

namespace capi_relay {

struct RedisDedupOptions {
  std::string url = "redis://127.0.0.1:6379/0";  // redis://[:password@]host[:port][/db]
  std::string instance_id;                        // unique per process; empty: an error
  std::string key_prefix = "capi:dedup:";
  int64_t window_ms = 7ll * 24 * 3600 * 1000;
  int64_t lease_ms = 30'000;        // pending claims expire after this
  int connect_timeout_ms = 1000;
  int io_timeout_ms = 1000;
  int64_t retry_after_ms = 3000;    // after a failure, Redis is not tried again for this long
};

// The time a pending claim is held at most by default (RedisDedupOptions::lease_ms): how long the
// spool writer keeps re-claiming a busy key before answering it as a duplicate.
inline constexpr int64_t kRedisClaimLeaseMs = 30'000;

// `fallback`: the local store answering while Redis is unreachable, or null to answer
// kUnavailable. `metrics` (nullable) receives the fallback and error counts. The connection is
// opened lazily; an unreachable Redis at start-up is not an error (it is handled like an outage).
// Errors: a malformed URL, an empty instance id, a non-positive window or lease.
Result<std::unique_ptr<DedupStore>> open_redis_dedup(const RedisDedupOptions& opts, Clock& clock,
                                                     std::unique_ptr<DedupStore> fallback,
                                                     metrics::RelayMetrics* metrics);

}  // namespace capi_relay
