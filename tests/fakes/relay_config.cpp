#include "fakes/relay_config.hpp"

namespace capi_relay::testing {
namespace {

// "  key: value\n" at `indent`, or nothing when value is empty.
std::string key_line(const char* indent, const char* key, const std::string& value) {
  return value.empty() ? std::string() : indent + std::string(key) + ": " + value + "\n";
}

std::string key_line(const char* indent, const char* key, int value) {
  return value == 0 ? std::string() : key_line(indent, key, std::to_string(value));
}

}  // namespace

std::string RelayConfig::yaml() const {
  std::string y = "server:\n  listen: 127.0.0.1:0\n";
  y += key_line("  ", "io_threads", io_threads);
  y += key_line("  ", "shutdown_grace", shutdown_grace);
  y += key_line("  ", "shutdown_timeout", shutdown_timeout);
  y += server_extra;
  y += "admin:\n  listen: 127.0.0.1:0\n";
  y += "spool:\n  dir: ./data\n";
  y += key_line("  ", "max_bytes", max_bytes);
  y += key_line("  ", "fsync", fsync);
  if (!dedup.empty()) y += "dedup:\n" + dedup;
  y += "linkedin:\n";
  y += "  api_base: " + api_base + "\n";
  y += key_line("  ", "access_token", access_token);
  y += key_line("  ", "batch_max_events", batch_max_events);
  y += key_line("  ", "max_in_flight", max_in_flight);
  y += key_line("  ", "flush_interval", flush_interval);
  y += key_line("  ", "connect_timeout", connect_timeout);
  y += key_line("  ", "response_timeout", response_timeout);
  y += key_line("  ", "pause_recheck", pause_recheck);
  if (!initial_backoff.empty() || !max_backoff.empty()) {
    y += "  retry:\n";
    y += key_line("    ", "initial_backoff", initial_backoff);
    y += key_line("    ", "max_backoff", max_backoff);
  }
  y += linkedin_extra;
  if (!oauth.empty()) y += "  oauth:\n" + oauth;
  y += "conversions:\n" + conversions;
  return y;
}

}  // namespace capi_relay::testing
