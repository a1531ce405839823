// Spool writer hot path: append of 270-byte records (a typical hashed event record) followed by
// sync(), in groups of 1 (one request per group commit) and 64 (a busy group commit). fsync is off
// so this measures the relay's own code path (framing, CRC-32C, one pwrite per group, publishing)
// rather than the disk. Records are completed every 4096 groups (outside the timing) so finished
// segments are deleted and the disk use stays bounded. Run:
//   build/bin/spool_bench --benchmark_min_time=0.5
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "capi_relay/common/clock.hpp"
#include "capi_relay/spool/spool.hpp"

namespace {

using capi_relay::FakeClock;
using capi_relay::FsyncMode;
using capi_relay::RecordId;
using capi_relay::Spool;
using capi_relay::SpoolOptions;

constexpr size_t kPayloadBytes = 270;
constexpr uint64_t kCompleteEveryGroups = 4096;

void BM_AppendSync(benchmark::State& state) {
  const auto group = static_cast<size_t>(state.range(0));
  const auto dir = std::filesystem::temp_directory_path() /
                   ("spool_bench_" + std::to_string(getpid()) + "_" + std::to_string(group));
  std::filesystem::remove_all(dir);
  FakeClock clock;
  SpoolOptions opts;
  opts.dir = dir;
  opts.fsync = FsyncMode::kOff;
  opts.max_bytes = uint64_t{1} << 40;
  {
    auto opened = Spool::open(opts, clock);
    if (!opened) {
      state.SkipWithError(opened.error().c_str());
      return;
    }
    auto spool = std::move(opened.value());
    const std::string payload(kPayloadBytes, 'r');
    std::vector<RecordId> ids;
    ids.reserve(kCompleteEveryGroups * group);
    uint64_t groups = 0;
    for (auto _ : state) {
      for (size_t i = 0; i < group; ++i) {
        auto id = spool->append(payload, clock.now_ms());
        if (!id) {
          state.SkipWithError(id.error().c_str());
          break;
        }
        ids.push_back(id.value());
      }
      if (auto r = spool->sync(); !r) {
        state.SkipWithError(r.error().c_str());
        break;
      }
      if (++groups % kCompleteEveryGroups == 0) {
        state.PauseTiming();
        (void)spool->complete(ids);
        ids.clear();
        state.ResumeTiming();
      }
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * group));
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * group * kPayloadBytes));
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_AppendSync)->Arg(1)->Arg(64);

}  // namespace

BENCHMARK_MAIN();
