#include "capi_relay/common/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <unordered_map>

#include "capi_relay/common/json_text.hpp"

namespace capi_relay::log {

namespace {
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::atomic<Format> g_format{Format::kJson};
std::mutex g_mu;

const char* level_name(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

std::string timestamp() {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

// Repeated warnings and errors (same component and message) are rate-limited: at most
// kBurst lines per kWindowMs each; the next line after a window says how many were suppressed.
constexpr int kBurst = 10;
constexpr int64_t kWindowMs = 60'000;
struct RepeatState {
  int64_t window_start = 0;
  int count = 0;
  uint64_t suppressed = 0;
};
std::unordered_map<std::string, RepeatState> g_repeats;  // guarded by g_mu

int64_t steady_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace

void configure(Level level, Format format) {
  g_level = static_cast<int>(level);
  g_format = format;
}

void configure(std::string_view level, std::string_view format) {
  Level l = Level::kInfo;
  if (level == "debug") l = Level::kDebug;
  if (level == "warn") l = Level::kWarn;
  if (level == "error") l = Level::kError;
  configure(l, format == "text" ? Format::kText : Format::kJson);
}

bool enabled(Level level) { return static_cast<int>(level) >= g_level.load(); }

void write(Level level, std::string_view component, std::string_view message,
           std::initializer_list<Field> fields) {
  std::string line;
  line.reserve(160);
  if (g_format.load() == Format::kJson) {
    line += "{\"ts\":\"";
    line += timestamp();
    line += "\",\"level\":\"";
    line += level_name(level);
    line += "\",\"component\":";
    append_json_string(line, component);
    line += ",\"msg\":";
    append_json_string(line, message);
    for (const auto& [k, v] : fields) {
      line.push_back(',');
      append_json_string(line, k);
      line.push_back(':');
      append_json_string(line, v);
    }
    line += "}\n";
  } else {
    line += timestamp();
    line.push_back(' ');
    line += level_name(level);
    line.push_back(' ');
    line += component;
    line += ": ";
    line += message;
    for (const auto& [k, v] : fields) {
      line.push_back(' ');
      line += k;
      line.push_back('=');
      line += v;
    }
    line.push_back('\n');
  }
  std::lock_guard lock(g_mu);
  if (level >= Level::kWarn) {
    std::string key;
    key.reserve(component.size() + message.size() + 1);
    key.append(component).push_back('\0');
    key.append(message);
    if (g_repeats.size() > 4096) g_repeats.clear();  // bounded: messages are fixed strings
    RepeatState& st = g_repeats[key];
    const int64_t now = steady_ms();
    if (now - st.window_start >= kWindowMs) {
      if (st.suppressed > 0) {
        std::string note = "{\"ts\":\"" + timestamp() + "\",\"level\":\"" + level_name(level) +
                           "\",\"component\":" + json_string(component) +
                           ",\"msg\":\"repeated messages suppressed\",\"message\":" +
                           json_string(message) + ",\"suppressed\":\"" +
                           std::to_string(st.suppressed) + "\"}\n";
        if (g_format.load() == Format::kText)
          note = timestamp() + " " + level_name(level) + " " + std::string(component) + ": " +
                 std::to_string(st.suppressed) + " repeats of \"" + std::string(message) +
                 "\" suppressed\n";
        std::fwrite(note.data(), 1, note.size(), stderr);
      }
      st = RepeatState{now, 0, 0};
    }
    if (++st.count > kBurst) {
      ++st.suppressed;
      return;
    }
  }
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace capi_relay::log
