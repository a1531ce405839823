// Text for `capi-relay check-config`: errors with file, line and key path, or a one-line summary.
#include "capi_relay/config/check_config.hpp"

#include <array>
#include <ostream>
#include <string>

namespace capi_relay {

std::string format_config_error(const ConfigError& error, const std::filesystem::path& source) {
  std::string out = source.empty() ? "<config>" : source.string();
  if (error.line > 0) out += ":" + std::to_string(error.line);
  out += ": ";
  if (!error.path.empty()) out += error.path + ": ";
  out += error.message;
  return out;
}

std::string format_duration(Millis duration) {
  struct Unit {
    const char* name;
    int64_t ms;
  };
  static constexpr std::array<Unit, 4> kUnits{
      {{"d", 86'400'000}, {"h", 3'600'000}, {"m", 60'000}, {"s", 1000}}};
  const int64_t ms = duration.count();
  if (ms == 0) return "0";
  for (const Unit& u : kUnits) {
    if (ms % u.ms == 0) return std::to_string(ms / u.ms) + u.name;
  }
  return std::to_string(ms) + "ms";
}

std::string format_size(uint64_t bytes) {
  struct Unit {
    const char* name;
    uint64_t factor;
  };
  static constexpr std::array<Unit, 4> kUnits{
      {{"TiB", 1ull << 40}, {"GiB", 1ull << 30}, {"MiB", 1ull << 20}, {"KiB", 1ull << 10}}};
  for (const Unit& u : kUnits) {
    if (bytes != 0 && bytes % u.factor == 0) return std::to_string(bytes / u.factor) + u.name;
  }
  return std::to_string(bytes);
}

std::string config_summary(const Config& c) {
  const char* fsync = c.spool.fsync == FsyncMode::kAlways  ? "always"
                      : c.spool.fsync == FsyncMode::kBatch ? "batch"
                                                           : "off";
  std::string s;
  s += "ingest " + c.server.listen;
  s += c.server.ingest_keys.empty()
           ? " (no ingest key)"
           : " (" + std::to_string(c.server.ingest_keys.size()) + " ingest key" +
                 (c.server.ingest_keys.size() == 1 ? "" : "s") + ")";
  s += ", admin " + c.admin.listen;
  s += ", spool " + c.spool.dir.string() + " (max " + format_size(c.spool.max_bytes) + ", fsync " +
       fsync + ")";
  s += ", dedup " + std::string(c.dedup.backend == DedupBackend::kRedis ? "redis" : "local") + " " +
       format_duration(c.dedup.window);
  s += ", linkedin " + c.linkedin.api_base + " version " + c.linkedin.version;
  s += c.linkedin.dry_run ? " (dry run)" : "";
  s += ", " + std::to_string(c.conversions.size()) + " conversion rule" +
       (c.conversions.size() == 1 ? "" : "s");
  return s;
}

int run_check_config(const ConfigLoad& load, std::ostream& out, std::ostream& err) {
  if (!load.ok()) {
    for (const ConfigError& e : load.errors) err << format_config_error(e, load.config.source) << '\n';
    err << load.errors.size() << (load.errors.size() == 1 ? " error" : " errors") << " in "
        << (load.config.source.empty() ? "<config>" : load.config.source.string()) << '\n';
    return 1;
  }
  out << "config OK: ";
  if (!load.config.source.empty()) out << load.config.source.string() << ": ";
  out << config_summary(load.config) << '\n';
  return 0;
}

}  // namespace capi_relay
