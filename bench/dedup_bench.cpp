// Local dedup hot path: claim + commit of new keys (the spool writer's per-event cost) and the
// lookup of a key already present (a duplicate). Run:
//   build/bin/dedup_bench --benchmark_min_time=0.5
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "capi_relay/common/clock.hpp"
#include "capi_relay/dedup/local_dedup.hpp"

namespace {

using capi_relay::ClaimResult;
using capi_relay::DedupStore;
using capi_relay::FakeClock;

std::filesystem::path bench_dir(const char* name) {
  auto dir = std::filesystem::temp_directory_path() /
             (std::string("dedup_bench_") + name + "_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  return dir;
}

std::unique_ptr<DedupStore> open_store(const std::filesystem::path& dir, FakeClock& clock,
                                       int64_t window_ms, uint64_t capacity) {
  capi_relay::LocalDedupOptions o;
  o.dir = dir;
  o.window_ms = window_ms;
  o.initial_capacity = capacity;
  auto r = capi_relay::open_local_dedup(o, clock);
  if (!r) return nullptr;
  return std::move(r.value());
}

// New keys in batches (as the writer groups them), fake time advancing 1 ms per batch with a 10 s
// window: a steady state of ~640k live keys where expired slots are swept and reused. The journal
// is flushed every 1024 batches, as the writer's background flush would.
void BM_ClaimCommitNewKeys(benchmark::State& state) {
  const auto batch = static_cast<size_t>(state.range(0));
  FakeClock clock;
  const auto dir = bench_dir("claim_commit");
  auto store = open_store(dir, clock, 10'000, 1 << 20);
  if (!store) {
    state.SkipWithError("cannot open store");
    return;
  }
  std::mt19937_64 rng(42);
  std::vector<uint64_t> keys(batch);
  std::vector<ClaimResult> out(batch);
  uint64_t batches = 0;
  for (auto _ : state) {
    for (auto& k : keys) k = rng();
    store->claim(keys, out, clock.now_ms());
    store->commit(keys, clock.now_ms());
    clock.advance_ms(1);
    if (++batches % 1024 == 0) {
      if (!store->flush()) state.SkipWithError("flush failed");
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(batches * batch));
  store.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_ClaimCommitNewKeys)->Arg(1)->Arg(64);

// claim() of keys already committed (each answers kDuplicate): random probes into a table of
// range(0) keys, so larger tables measure cache misses.
void BM_LookupExistingKey(benchmark::State& state) {
  const auto n = static_cast<size_t>(state.range(0));
  FakeClock clock;
  const auto dir = bench_dir("lookup");
  auto store = open_store(dir, clock, 7ll * 24 * 3600 * 1000, 1 << 16);
  if (!store) {
    state.SkipWithError("cannot open store");
    return;
  }
  std::mt19937_64 rng(7);
  std::vector<uint64_t> keys(n);
  for (auto& k : keys) k = rng();
  std::vector<ClaimResult> out(n);
  store->claim(keys, out, clock.now_ms());
  store->commit(keys, clock.now_ms());
  size_t i = 0;
  for (auto _ : state) {
    ClaimResult r;
    store->claim({&keys[i], 1}, {&r, 1}, clock.now_ms());
    benchmark::DoNotOptimize(r);
    i = (i + 7919) % n;
  }
  state.SetItemsProcessed(state.iterations());
  store.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_LookupExistingKey)->Arg(1 << 16)->Arg(1 << 20);

}  // namespace

BENCHMARK_MAIN();
