// Parsers for the config's scalar value kinds: durations, sizes and conversion rule ids.
#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "capi_relay/config/config.hpp"

namespace capi_relay {
namespace {

constexpr std::string_view kRulePrefix = "urn:lla:llaPartnerConversion:";

// Reads the leading run of decimal digits of `text` into `out`; false when there is none or it
// overflows. Advances `text` past the digits.
bool take_digits(std::string_view& text, uint64_t& out) {
  size_t n = 0;
  while (n < text.size() && text[n] >= '0' && text[n] <= '9') ++n;
  if (n == 0) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + n, out);
  if (ec != std::errc() || ptr != text.data() + n) return false;
  text.remove_prefix(n);
  return true;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool parse_duration(std::string_view text, Millis& out) {
  if (text == "0") {
    out = Millis{0};
    return true;
  }
  // One or more <number><unit> parts whose values add up, e.g. "1h30m".
  struct Unit {
    std::string_view name;
    uint64_t ms;
  };
  // "ms" before "m" so that the longest unit wins.
  static constexpr std::array<Unit, 5> kUnits{{
      {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}}};
  // Cap far below int64 overflow: 100 years is more than any setting needs.
  constexpr uint64_t kMaxMs = 100ull * 365 * 86'400'000;
  if (text.empty()) return false;
  uint64_t total = 0;
  while (!text.empty()) {
    uint64_t n = 0;
    if (!take_digits(text, n)) return false;
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      if (text.substr(0, u.name.size()) == u.name) {
        unit = &u;
        break;
      }
    }
    if (unit == nullptr) return false;
    text.remove_prefix(unit->name.size());
    uint64_t part = 0;
    if (__builtin_mul_overflow(n, unit->ms, &part) || __builtin_add_overflow(total, part, &total) ||
        total > kMaxMs) {
      return false;
    }
  }
  out = Millis{static_cast<int64_t>(total)};
  return true;
}

bool parse_size(std::string_view text, uint64_t& out) {
  uint64_t n = 0;
  if (!take_digits(text, n)) return false;
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  struct Unit {
    std::string_view name;
    uint64_t factor;
  };
  static constexpr std::array<Unit, 10> kUnits{{{"", 1},
                                                {"B", 1},
                                                {"KiB", 1ull << 10},
                                                {"MiB", 1ull << 20},
                                                {"GiB", 1ull << 30},
                                                {"TiB", 1ull << 40},
                                                {"KB", 1000ull},
                                                {"MB", 1000ull * 1000},
                                                {"GB", 1000ull * 1000 * 1000},
                                                {"TB", 1000ull * 1000 * 1000 * 1000}}};
  for (const Unit& u : kUnits) {
    if (iequals(text, u.name)) {
      uint64_t bytes = 0;
      if (__builtin_mul_overflow(n, u.factor, &bytes)) return false;
      out = bytes;
      return true;
    }
  }
  return false;
}

bool parse_rule(std::string_view text, uint64_t& out) {
  if (text.substr(0, kRulePrefix.size()) == kRulePrefix) text.remove_prefix(kRulePrefix.size());
  uint64_t id = 0;
  if (!take_digits(text, id) || !text.empty() || id == 0) return false;
  out = id;
  return true;
}

std::string rule_urn(uint64_t rule_id) {
  std::string urn(kRulePrefix);
  urn += std::to_string(rule_id);
  return urn;
}

}  // namespace capi_relay
