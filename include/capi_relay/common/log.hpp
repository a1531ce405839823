#pragma once
// Structured logging: one JSON object per line on stderr ({"ts","level","component","msg",...fields}),
// or a human text line when format is text. Thread-safe. Callers never pass identifiers (emails,
// IPs, event IDs, tokens) as fields; only counts, statuses, reasons, paths.
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace capi_relay::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
enum class Format { kJson, kText };

void configure(Level level, Format format);
// From the config's words: level debug|info|warn|error, format json|text (others: info, json).
void configure(std::string_view level, std::string_view format);
bool enabled(Level level);

using Field = std::pair<std::string_view, std::string>;
void write(Level level, std::string_view component, std::string_view message,
           std::initializer_list<Field> fields = {});

inline void debug(std::string_view c, std::string_view m, std::initializer_list<Field> f = {}) {
  if (enabled(Level::kDebug)) write(Level::kDebug, c, m, f);
}
inline void info(std::string_view c, std::string_view m, std::initializer_list<Field> f = {}) {
  if (enabled(Level::kInfo)) write(Level::kInfo, c, m, f);
}
inline void warn(std::string_view c, std::string_view m, std::initializer_list<Field> f = {}) {
  if (enabled(Level::kWarn)) write(Level::kWarn, c, m, f);
}
inline void error(std::string_view c, std::string_view m, std::initializer_list<Field> f = {}) {
  if (enabled(Level::kError)) write(Level::kError, c, m, f);
}

}  // namespace capi_relay::log
