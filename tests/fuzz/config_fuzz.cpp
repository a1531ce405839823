// libFuzzer target: load_config_string on arbitrary YAML text (contract §4). Besides "no crash,
// no leak, no unbounded recursion": every error has a key path or a line, and a config that
// loads without errors keeps the invariants the rest of the relay relies on.
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "capi_relay/common/log.hpp"
#include "capi_relay/config/config.hpp"

using namespace capi_relay;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    log::configure(log::Level::kError, log::Format::kJson);
    return true;
  }();
  (void)quiet;
  if (size > 64 * 1024) return 0;  // a config file is small; longer inputs only slow the fuzzer
  std::string yaml(reinterpret_cast<const char*>(data), size);
  // Debug aid for out-of-memory/hang findings (libFuzzer cannot always save those inputs):
  // CAPI_RELAY_FUZZ_LAST_INPUT=path keeps the input being run in that file.
  static const char* last_input = std::getenv("CAPI_RELAY_FUZZ_LAST_INPUT");
  if (last_input) std::ofstream(last_input, std::ios::binary | std::ios::trunc) << yaml;
  ConfigLoad load = load_config_string(yaml, "/nonexistent-fuzz-base");
  for (const auto& e : load.errors)
    if (e.path.empty() && e.line == 0 && e.message.empty()) std::abort();
  if (load.ok()) {
    const Config& c = load.config;
    if (c.linkedin.batch_max_events == 0 || c.linkedin.batch_max_events > 5000) std::abort();
    if (!c.spool.dir.is_absolute()) std::abort();
  }
  return 0;
}
