#pragma once
// The relay's configuration (contract §4) as plain structs whose defaults live in the structs.
// Loaded from YAML by load_config_*; every error is collected with its key path.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace capi_relay {

using Millis = std::chrono::milliseconds;

enum class FsyncMode { kAlways, kBatch, kOff };
enum class DedupBackend { kLocal, kRedis };
enum class RedisUnavailable { kLocal, kReject };

struct ServerConfig {
  std::string listen = "127.0.0.1:8080";  // host:port; [v6]:port allowed
  unsigned io_threads = 0;                 // 0: one per core
  std::vector<std::string> ingest_keys;
  std::vector<std::string> cors_origins;
  uint64_t max_body_bytes = 1ull << 20;
  unsigned max_connections = 10000;
  Millis header_timeout{10'000};
  Millis body_timeout{30'000};
  Millis idle_timeout{60'000};
  Millis shutdown_grace{5'000};
  Millis shutdown_timeout{30'000};
  // Hostile-input limits (additive keys, docs/security.md).
  uint64_t per_client_rate = 0;   // POST /v1/events per second per client address; 0: no limit
  uint64_t per_client_burst = 0;  // requests a client may bank; 0: max(per_client_rate, 1)
  // Peers (IP or CIDR) whose X-Forwarded-For is believed for the client address; empty: the
  // client address is always the TCP peer.
  std::vector<std::string> trusted_proxies;
  uint64_t max_buffered_bytes = 64ull << 20;  // request bodies held at once, all connections
  unsigned max_events_per_request = 10000;    // items (events, lines) in one body; more: 413
};

struct AdminConfig {
  std::string listen = "127.0.0.1:9464";
};

struct LogConfig {
  std::string level = "info";   // debug | info | warn | error
  std::string format = "json";  // json | text
};

struct SpoolConfig {
  std::filesystem::path dir = "./data";  // resolved to absolute by the loader
  uint64_t max_bytes = 1ull << 30;
  FsyncMode fsync = FsyncMode::kBatch;
  Millis dead_letter_retention{30ll * 24 * 3600 * 1000};
};

struct DedupConfig {
  Millis window{7ll * 24 * 3600 * 1000};
  DedupBackend backend = DedupBackend::kLocal;
  std::string redis_url = "redis://127.0.0.1:6379/0";
  RedisUnavailable redis_unavailable = RedisUnavailable::kLocal;
};

struct OAuthConfig {
  std::string token_url = "https://www.linkedin.com/oauth/v2/accessToken";
  std::string introspect_url = "https://www.linkedin.com/oauth/v2/introspectToken";
  std::string authorize_url = "https://www.linkedin.com/oauth/v2/authorization";
  std::string redirect_uri = "http://127.0.0.1:8765/callback";
  std::string scopes = "rw_conversions r_ads";
  std::string client_id;
  std::string client_secret;  // secret: never printed
  std::string refresh_token;  // secret: never printed
};

struct RateLimitConfig {
  uint64_t per_minute = 0;  // 0: no client-side limit
  uint64_t per_day = 0;
  bool shared = false;
};

struct RetryConfig {
  Millis initial_backoff{500};
  Millis max_backoff{60'000};
};

struct LinkedInConfig {
  std::string api_base = "https://api.linkedin.com";
  std::string version = "202609";
  std::string access_token;  // secret: never printed
  std::filesystem::path token_file = "token.json";  // resolved against spool.dir by the loader
  std::filesystem::path ca_file;                    // empty: system CAs only
  OAuthConfig oauth;
  unsigned batch_max_events = 5000;
  Millis flush_interval{1000};
  unsigned max_in_flight = 2;
  Millis connect_timeout{5000};
  Millis response_timeout{30'000};
  RateLimitConfig rate_limit;
  RetryConfig retry;
  Millis pause_recheck{5ll * 60 * 1000};
  bool dry_run = false;
};

struct Config {
  ServerConfig server;
  AdminConfig admin;
  LogConfig log;
  SpoolConfig spool;
  DedupConfig dedup;
  LinkedInConfig linkedin;
  // event name -> numeric rule id of urn:lla:llaPartnerConversion:N. The set of values is also
  // the allowlist for events that name their rule directly.
  std::map<std::string, uint64_t> conversions;
  // The file the config came from (empty for the embedded default).
  std::filesystem::path source;
};

struct ConfigError {
  std::string path;     // key path, e.g. "server.max_body_bytes" or "conversions.purchase"
  std::string message;  // never contains a secret value
  int line = 0;         // 1-based line in the file when known, else 0
};

struct ConfigLoad {
  Config config;
  std::vector<ConfigError> errors;  // empty: config is valid
  bool ok() const { return errors.empty(); }
};

// The embedded default: contract defaults with dry_run: true and
// conversions {purchase: urn:lla:llaPartnerConversion:123}; paths relative to the working dir.
ConfigLoad default_config();
// Parses YAML text; relative paths resolve against base_dir. ${VAR} / ${VAR:-default} expand from
// the environment before values are parsed.
ConfigLoad load_config_string(const std::string& yaml, const std::filesystem::path& base_dir);
ConfigLoad load_config_file(const std::filesystem::path& file);

// "250ms", "5s", "10m", "72h", "7d" -> milliseconds; false on a malformed value.
bool parse_duration(std::string_view text, Millis& out);
// "512", "64KiB", "1MiB", "1GiB" (also KB/MB/GB as powers of 1000) -> bytes.
bool parse_size(std::string_view text, uint64_t& out);
// "urn:lla:llaPartnerConversion:N" or "N" -> N.
bool parse_rule(std::string_view text, uint64_t& out);

std::string rule_urn(uint64_t rule_id);  // "urn:lla:llaPartnerConversion:N"

// A listen address split for binding: host is an IP literal without brackets ("localhost" reads
// as 127.0.0.1; ":port" and "*:port" as 0.0.0.0); port 0 asks the OS for a free one.
struct HostPort {
  std::string host;
  uint16_t port = 0;
};
// "127.0.0.1:8080", "0.0.0.0:80", "[::1]:8080", "localhost:8080", ":8080" -> HostPort; else false.
bool parse_listen(std::string_view text, HostPort& out);

}  // namespace capi_relay
