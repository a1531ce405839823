#pragma once
// What `capi-relay check-config` prints, and the same error/summary text for `serve` at start-up.
// Pure functions of a ConfigLoad; nothing printed here ever contains a secret value.
#include <iosfwd>
#include <string>

#include "capi_relay/config/config.hpp"

namespace capi_relay {

// "<file>:<line>: <key.path>: <message>"; the line and key path are left out when unknown. A config
// without a source file (loaded from a string, or the embedded default) is named "<config>".
std::string format_config_error(const ConfigError& error, const std::filesystem::path& source);

// One line describing the effective config: listeners, spool, dedup, LinkedIn endpoint and
// version, how many conversion rules and ingest keys, dry-run; never a secret value.
std::string config_summary(const Config& config);

// Prints every error of `load` to `err` (one per line) and returns 1, or prints
// "config OK: <summary>" to `out` and returns 0.
int run_check_config(const ConfigLoad& load, std::ostream& out, std::ostream& err);

// "7d", "90s", "250ms": the largest unit that divides the duration exactly.
std::string format_duration(Millis duration);
// "1GiB", "64KiB", "1000": the largest binary unit that divides the size exactly.
std::string format_size(uint64_t bytes);

}  // namespace capi_relay
