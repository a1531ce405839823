// open_dedup: the dedup backend chosen by the config.
#include "capi_relay/dedup/open_dedup.hpp"

#include <unistd.h>

#include <cstdio>
#include <string>

#include "capi_relay/dedup/local_dedup.hpp"
#include "capi_relay/dedup/redis_dedup.hpp"

namespace capi_relay {
namespace {

std::string instance_id(RandomSource& random) {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof host, "relay");
  char suffix[64];
  std::snprintf(suffix, sizeof suffix, "-%ld-%016llx", static_cast<long>(getpid()),
                static_cast<unsigned long long>(random.next_u64()));
  return std::string(host) + suffix;
}

}  // namespace

Result<std::unique_ptr<DedupStore>> open_dedup(const Config& config, Clock& clock,
                                               RandomSource& random,
                                               metrics::RelayMetrics* metrics) {
  const bool redis = config.dedup.backend == DedupBackend::kRedis;
  std::unique_ptr<DedupStore> local;
  if (!redis || config.dedup.redis_unavailable == RedisUnavailable::kLocal) {
    LocalDedupOptions lo;
    lo.dir = config.spool.dir / "dedup";
    lo.window_ms = config.dedup.window.count();
    auto opened = open_local_dedup(lo, clock);
    if (!opened) return Error{opened.error()};
    local = std::move(*opened);
  }
  if (!redis) return local;
  RedisDedupOptions ro;
  ro.url = config.dedup.redis_url;
  ro.instance_id = instance_id(random);
  ro.window_ms = config.dedup.window.count();
  ro.lease_ms = kRedisClaimLeaseMs;
  return open_redis_dedup(ro, clock, std::move(local), metrics);
}

}  // namespace capi_relay
