// fdatasync latency of the file system the spool lives on: write 270 bytes (a typical hashed
// event record) or 32 records after the previous ones, then fdatasync(), as the writer does for
// a commit group with spool.fsync: batch; into a growing file and into pre-written blocks. The file is in a temp dir under the build directory (the
// executable's ../fsync-bench.<pid>; override with CAPI_RELAY_FSYNC_DIR) so it measures the real
// disk, not /tmp (often tmpfs). Reports mean time per append+fdatasync plus p50/p99 (us) as
// counters. Group-commit arithmetic: with 64 concurrent clients and a sync of L seconds, requests
// arriving during one sync share the next one, so the relay's request rate is at most
// 64 / (L + cpu time per group) and a group holds up to 64 requests (bench/load.sh prints both).
// Run:
//   build/bin/fsync_bench --benchmark_min_time=2
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace {

constexpr size_t kRecordBytes = 270;
constexpr off_t kRewindBytes = 16 << 20;  // start over at 16 MiB (the spool's segment size)

std::filesystem::path bench_dir() {
  if (const char* d = std::getenv("CAPI_RELAY_FSYNC_DIR"); d != nullptr && *d != '\0') return d;
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  auto base = ec ? std::filesystem::current_path() : exe.parent_path().parent_path();
  return base / ("fsync-bench." + std::to_string(getpid()));
}

void report(benchmark::State& state, std::vector<double>& us, size_t bytes) {
  if (us.empty()) return;
  std::sort(us.begin(), us.end());
  state.counters["p50_us"] = us[us.size() / 2];
  state.counters["p99_us"] = us[std::min(us.size() - 1, us.size() * 99 / 100)];
  state.counters["max_us"] = us.back();
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}

// Writes state.range(0) bytes (one commit group) at the end of what was written and fdatasyncs.
// prewritten=false: the file grows with every write, so each sync also writes the inode's new
// size and newly allocated blocks. prewritten=true: the file's blocks were written (zeros) and
// synced beforehand, as the spool does ahead of its active segment's write position; a sync then
// writes data blocks only.
void run_fdatasync(benchmark::State& state, bool prewritten) {
  const auto dir = bench_dir();
  std::filesystem::create_directories(dir);
  const auto file = dir / "segment.log";
  int fd = ::open(file.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) {
    state.SkipWithError("cannot create the bench file");
    return;
  }
  const std::string zeros(1 << 20, '\0');
  for (off_t off = 0; prewritten && off < kRewindBytes; off += static_cast<off_t>(zeros.size())) {
    if (::pwrite(fd, zeros.data(), zeros.size(), off) != static_cast<ssize_t>(zeros.size())) {
      state.SkipWithError("cannot pre-write the bench file");
      ::close(fd);
      return;
    }
  }
  if (prewritten) (void)::fsync(fd);
  const auto bytes = static_cast<size_t>(state.range(0));
  const std::string record(bytes, 'r');
  std::vector<double> us;
  us.reserve(1 << 16);
  off_t off = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    if (::pwrite(fd, record.data(), record.size(), off) != static_cast<ssize_t>(record.size()) ||
        ::fdatasync(fd) != 0) {
      state.SkipWithError("pwrite or fdatasync failed");
      break;
    }
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    off += static_cast<off_t>(record.size());
    if (off + static_cast<off_t>(bytes) > kRewindBytes) {  // start over, as at a segment roll
      state.PauseTiming();
      if (!prewritten) (void)::ftruncate(fd, 0);
      off = 0;
      state.ResumeTiming();
    }
  }
  ::close(fd);
  std::filesystem::remove_all(dir);
  report(state, us, bytes);
}

void BM_AppendFdatasync(benchmark::State& state) { run_fdatasync(state, false); }
void BM_PrewrittenFdatasync(benchmark::State& state) { run_fdatasync(state, true); }
BENCHMARK(BM_AppendFdatasync)->Arg(kRecordBytes)->Arg(32 * kRecordBytes)
    ->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_PrewrittenFdatasync)->Arg(kRecordBytes)->Arg(32 * kRecordBytes)
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
