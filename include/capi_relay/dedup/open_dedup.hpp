#pragma once
// Opens the dedup store that the config asks for (dedup.backend):
//   local -> open_local_dedup(<spool.dir>/dedup, dedup.window)
//   redis -> open_redis_dedup(dedup.redis_url, ...) wrapping the local store as its fallback when
//            dedup.redis_unavailable is `local` (no local store with `reject`).
// The Redis instance id is "<hostname>-<pid>-<random hex>" from `random`, so two relays (or a
// restarted one) never share a claim owner. `metrics` (nullable) receives the Redis fallback and
// error counts. Errors: the local journal cannot be opened, or the Redis options are invalid.
#include <memory>

#include "capi_relay/common/clock.hpp"
#include "capi_relay/config/config.hpp"
#include "capi_relay/dedup/dedup_store.hpp"
#include "capi_relay/metrics/relay_metrics.hpp"

namespace capi_relay {

Result<std::unique_ptr<DedupStore>> open_dedup(const Config& config, Clock& clock,
                                               RandomSource& random,
                                               metrics::RelayMetrics* metrics);

}  // namespace capi_relay
