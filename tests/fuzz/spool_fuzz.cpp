// libFuzzer target: Spool::open over a directory holding one fuzzed segment (seg-...1.log) and
// its fuzzed completion journal (seg-...1.done), then everything a relay does next: rebuild dedup
// state (for_each_pending + decode_record), hand records to the uploader (read_next), complete
// them, append + sync a fresh record. The relay must never refuse to start over file content
// (spool.hpp), so open() has to succeed on every input.
// Layout: byte 0 = length N (mod 64) of the .done journal taken from the input's end; the rest
// before it is the .log segment.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "capi_relay/common/clock.hpp"
#include "capi_relay/common/log.hpp"
#include "capi_relay/event/record.hpp"
#include "capi_relay/spool/spool.hpp"

using namespace capi_relay;
namespace fs = std::filesystem;

namespace {

fs::path work_dir() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("capi-relay-spool-fuzz-" + std::to_string(::getpid()));
    return d;
  }();
  return dir;
}

void write_file(const fs::path& p, const uint8_t* data, size_t n) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    log::configure(log::Level::kError, log::Format::kJson);
    return true;
  }();
  (void)quiet;
  if (size == 0 || size > (1u << 20)) return 0;
  const size_t done_len = std::min<size_t>(data[0] % 64, size - 1);
  const uint8_t* log_data = data + 1;
  const size_t log_len = size - 1 - done_len;
  const uint8_t* done_data = data + 1 + log_len;

  const fs::path dir = work_dir();
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir);
  write_file(dir / "seg-0000000000000001.log", log_data, log_len);
  if (done_len > 0) write_file(dir / "seg-0000000000000001.done", done_data, done_len);

  FakeClock clock;
  SpoolOptions opts;
  opts.dir = dir;
  opts.segment_bytes = 64 * 1024;
  opts.fsync = FsyncMode::kOff;
  {
    auto spool = Spool::open(opts, clock);
    if (!spool.ok()) std::abort();  // never refuse to start over file content
    Spool& s = **spool;
    uint64_t pending = 0;
    auto each = s.for_each_pending([&](const SpoolEntry& e) {
      ++pending;
      (void)decode_record(e.payload);  // may fail (a foreign payload with a valid CRC): no crash
    });
    if (!each.ok()) std::abort();
    if (s.stats().pending_records != pending) std::abort();
    std::vector<SpoolEntry> got;
    while (s.read_next(256, got) > 0) {
    }
    if (got.size() != pending) std::abort();
    std::vector<RecordId> ids;
    for (const auto& e : got) ids.push_back(e.id);
    (void)s.complete(ids);
    auto id = s.append("fresh-record", clock.now_ms());
    if (id.ok()) (void)s.sync(true);
  }
  fs::remove_all(dir, ec);
  return 0;
}
