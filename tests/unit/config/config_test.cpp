// Loading the YAML config: defaults, every key, unknown keys, env expansion, ranges, paths, secrets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "capi_relay/config/check_config.hpp"
#include "capi_relay/config/config.hpp"

namespace capi_relay {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

const fs::path kBase = "/srv/relay";

ConfigLoad load(const std::string& yaml) { return load_config_string(yaml, kBase); }

// All errors as one string, for failure output and substring checks.
std::string all_errors(const ConfigLoad& l) {
  std::string out;
  for (const ConfigError& e : l.errors) {
    out += e.path + " @" + std::to_string(e.line) + ": " + e.message + "\n";
  }
  return out;
}

const ConfigError* find_error(const ConfigLoad& l, const std::string& path) {
  for (const ConfigError& e : l.errors) {
    if (e.path == path) return &e;
  }
  return nullptr;
}

// Expects exactly one error, at `path`, and returns it.
ConfigError only_error(const std::string& yaml, const std::string& path) {
  ConfigLoad l = load(yaml);
  EXPECT_EQ(l.errors.size(), 1u) << yaml << "\n" << all_errors(l);
  const ConfigError* e = find_error(l, path);
  EXPECT_NE(e, nullptr) << "no error at " << path << " for:\n" << yaml << "\n" << all_errors(l);
  return e != nullptr ? *e : ConfigError{};
}

// A fresh directory under the system temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("capi_relay_config_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path write(const std::string& name, const std::string& text) const {
    fs::path p = path_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p;
  }

 private:
  fs::path path_;
};

// Sets an environment variable for the scope of a test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() { ::unsetenv(name_); }

 private:
  const char* name_;
};

void expect_default_values(const Config& c) {
  const Config d;
  EXPECT_EQ(c.server.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.server.io_threads, 0u);
  EXPECT_TRUE(c.server.ingest_keys.empty());
  EXPECT_TRUE(c.server.cors_origins.empty());
  EXPECT_EQ(c.server.max_body_bytes, 1ull << 20);
  EXPECT_EQ(c.server.max_connections, 10000u);
  EXPECT_EQ(c.server.header_timeout, Millis{10'000});
  EXPECT_EQ(c.server.body_timeout, Millis{30'000});
  EXPECT_EQ(c.server.idle_timeout, Millis{60'000});
  EXPECT_EQ(c.server.shutdown_grace, Millis{5'000});
  EXPECT_EQ(c.server.shutdown_timeout, Millis{30'000});
  EXPECT_EQ(c.admin.listen, "127.0.0.1:9464");
  EXPECT_EQ(c.log.level, "info");
  EXPECT_EQ(c.log.format, "json");
  EXPECT_EQ(c.spool.max_bytes, 1ull << 30);
  EXPECT_EQ(c.spool.fsync, FsyncMode::kBatch);
  EXPECT_EQ(c.spool.dead_letter_retention, Millis{30ll * 86'400'000});
  EXPECT_EQ(c.dedup.window, Millis{7ll * 86'400'000});
  EXPECT_EQ(c.dedup.backend, DedupBackend::kLocal);
  EXPECT_EQ(c.dedup.redis_url, "redis://127.0.0.1:6379/0");
  EXPECT_EQ(c.dedup.redis_unavailable, RedisUnavailable::kLocal);
  EXPECT_EQ(c.linkedin.api_base, "https://api.linkedin.com");
  EXPECT_EQ(c.linkedin.version, "202609");
  EXPECT_EQ(c.linkedin.access_token, "");
  EXPECT_EQ(c.linkedin.ca_file, fs::path());
  EXPECT_EQ(c.linkedin.oauth.token_url, d.linkedin.oauth.token_url);
  EXPECT_EQ(c.linkedin.oauth.introspect_url, d.linkedin.oauth.introspect_url);
  EXPECT_EQ(c.linkedin.oauth.authorize_url, d.linkedin.oauth.authorize_url);
  EXPECT_EQ(c.linkedin.oauth.redirect_uri, "http://127.0.0.1:8765/callback");
  EXPECT_EQ(c.linkedin.oauth.scopes, "rw_conversions r_ads");
  EXPECT_EQ(c.linkedin.oauth.client_id, "");
  EXPECT_EQ(c.linkedin.oauth.client_secret, "");
  EXPECT_EQ(c.linkedin.oauth.refresh_token, "");
  EXPECT_EQ(c.linkedin.batch_max_events, 5000u);
  EXPECT_EQ(c.linkedin.flush_interval, Millis{1000});
  EXPECT_EQ(c.linkedin.max_in_flight, 2u);
  EXPECT_EQ(c.linkedin.connect_timeout, Millis{5000});
  EXPECT_EQ(c.linkedin.response_timeout, Millis{30'000});
  EXPECT_EQ(c.linkedin.rate_limit.per_minute, 0u);
  EXPECT_EQ(c.linkedin.rate_limit.per_day, 0u);
  EXPECT_FALSE(c.linkedin.rate_limit.shared);
  EXPECT_EQ(c.linkedin.retry.initial_backoff, Millis{500});
  EXPECT_EQ(c.linkedin.retry.max_backoff, Millis{60'000});
  EXPECT_EQ(c.linkedin.pause_recheck, Millis{5ll * 60 * 1000});
}

// ---- defaults -------------------------------------------------------------------------------

TEST(ConfigDefaults, EmptyTextGivesContractDefaults) {
  for (const std::string yaml : {"", "\n", "# only a comment\n", "---\n"}) {
    ConfigLoad l = load(yaml);
    ASSERT_TRUE(l.ok()) << all_errors(l);
    expect_default_values(l.config);
    EXPECT_FALSE(l.config.linkedin.dry_run);
    EXPECT_TRUE(l.config.conversions.empty());
    EXPECT_EQ(l.config.spool.dir, kBase / "data");
    EXPECT_EQ(l.config.linkedin.token_file, kBase / "data" / "token.json");
    EXPECT_TRUE(l.config.source.empty());
  }
}

TEST(ConfigDefaults, EmptySectionsKeepDefaults) {
  ConfigLoad l = load("server:\nadmin:\nlinkedin:\n  oauth:\n  rate_limit:\nconversions:\n");
  ASSERT_TRUE(l.ok()) << all_errors(l);
  expect_default_values(l.config);
  EXPECT_TRUE(l.config.conversions.empty());
}

TEST(ConfigDefaults, EmbeddedDefaultIsDryRunWithPurchaseRule) {
  ConfigLoad l = default_config();
  ASSERT_TRUE(l.ok()) << all_errors(l);
  expect_default_values(l.config);
  EXPECT_TRUE(l.config.linkedin.dry_run);
  ASSERT_EQ(l.config.conversions.size(), 1u);
  EXPECT_EQ(l.config.conversions.at("purchase"), 123u);
  EXPECT_EQ(l.config.spool.dir, fs::current_path() / "data");
  EXPECT_EQ(l.config.linkedin.token_file, fs::current_path() / "data" / "token.json");
  EXPECT_TRUE(l.config.source.empty());
}

// ---- every key ------------------------------------------------------------------------------

TEST(ConfigKeys, ParsesEveryKey) {
  const std::string yaml = R"(
server:
  listen: 0.0.0.0:9000
  io_threads: 3
  ingest_keys: [k1, k2]
  cors_origins:
    - https://shop.example.com
    - http://localhost:3000
  max_body_bytes: 64KiB
  max_connections: 77
  header_timeout: 2s
  body_timeout: 3s
  idle_timeout: 4m
  shutdown_grace: 0
  shutdown_timeout: 1m
admin:
  listen: "[::1]:9999"
log:
  level: debug
  format: text
spool:
  dir: /var/lib/relay
  max_bytes: 2GiB
  fsync: always
  dead_letter_retention: 10d
dedup:
  window: 48h
  backend: redis
  redis_url: rediss://cache.internal:6380/2
  redis_unavailable: reject
linkedin:
  api_base: http://127.0.0.1:18080/
  version: 202507
  access_token: tok
  token_file: tokens/t.json
  ca_file: ""
  oauth:
    token_url: http://localhost:1/token
    introspect_url: https://auth.example.com/introspect
    authorize_url: https://auth.example.com/authorize
    redirect_uri: https://relay.example.com/callback
    scopes: rw_conversions
    client_id: cid
    client_secret: csecret
    refresh_token: rtok
  batch_max_events: 100
  flush_interval: 250ms
  max_in_flight: 8
  connect_timeout: 1s
  response_timeout: 7s
  rate_limit:
    per_minute: 60
    per_day: 100000
    shared: true
  retry:
    initial_backoff: 1s
    max_backoff: 2m
  pause_recheck: 30s
  dry_run: true
conversions:
  purchase: urn:lla:llaPartnerConversion:123
  sign_up: 456
)";
  ConfigLoad l = load(yaml);
  ASSERT_TRUE(l.ok()) << all_errors(l);
  const Config& c = l.config;
  EXPECT_EQ(c.server.listen, "0.0.0.0:9000");
  EXPECT_EQ(c.server.io_threads, 3u);
  EXPECT_EQ(c.server.ingest_keys, (std::vector<std::string>{"k1", "k2"}));
  EXPECT_EQ(c.server.cors_origins,
            (std::vector<std::string>{"https://shop.example.com", "http://localhost:3000"}));
  EXPECT_EQ(c.server.max_body_bytes, 64u * 1024);
  EXPECT_EQ(c.server.max_connections, 77u);
  EXPECT_EQ(c.server.header_timeout, Millis{2000});
  EXPECT_EQ(c.server.body_timeout, Millis{3000});
  EXPECT_EQ(c.server.idle_timeout, Millis{240'000});
  EXPECT_EQ(c.server.shutdown_grace, Millis{0});
  EXPECT_EQ(c.server.shutdown_timeout, Millis{60'000});
  EXPECT_EQ(c.admin.listen, "[::1]:9999");
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.log.format, "text");
  EXPECT_EQ(c.spool.dir, fs::path("/var/lib/relay"));
  EXPECT_EQ(c.spool.max_bytes, 2ull << 30);
  EXPECT_EQ(c.spool.fsync, FsyncMode::kAlways);
  EXPECT_EQ(c.spool.dead_letter_retention, Millis{10ll * 86'400'000});
  EXPECT_EQ(c.dedup.window, Millis{48ll * 3'600'000});
  EXPECT_EQ(c.dedup.backend, DedupBackend::kRedis);
  EXPECT_EQ(c.dedup.redis_url, "rediss://cache.internal:6380/2");
  EXPECT_EQ(c.dedup.redis_unavailable, RedisUnavailable::kReject);
  EXPECT_EQ(c.linkedin.api_base, "http://127.0.0.1:18080") << "trailing slash dropped";
  EXPECT_EQ(c.linkedin.version, "202507");
  EXPECT_EQ(c.linkedin.access_token, "tok");
  EXPECT_EQ(c.linkedin.token_file, fs::path("/var/lib/relay/tokens/t.json"));
  EXPECT_TRUE(c.linkedin.ca_file.empty());
  EXPECT_EQ(c.linkedin.oauth.token_url, "http://localhost:1/token");
  EXPECT_EQ(c.linkedin.oauth.introspect_url, "https://auth.example.com/introspect");
  EXPECT_EQ(c.linkedin.oauth.authorize_url, "https://auth.example.com/authorize");
  EXPECT_EQ(c.linkedin.oauth.redirect_uri, "https://relay.example.com/callback");
  EXPECT_EQ(c.linkedin.oauth.scopes, "rw_conversions");
  EXPECT_EQ(c.linkedin.oauth.client_id, "cid");
  EXPECT_EQ(c.linkedin.oauth.client_secret, "csecret");
  EXPECT_EQ(c.linkedin.oauth.refresh_token, "rtok");
  EXPECT_EQ(c.linkedin.batch_max_events, 100u);
  EXPECT_EQ(c.linkedin.flush_interval, Millis{250});
  EXPECT_EQ(c.linkedin.max_in_flight, 8u);
  EXPECT_EQ(c.linkedin.connect_timeout, Millis{1000});
  EXPECT_EQ(c.linkedin.response_timeout, Millis{7000});
  EXPECT_EQ(c.linkedin.rate_limit.per_minute, 60u);
  EXPECT_EQ(c.linkedin.rate_limit.per_day, 100000u);
  EXPECT_TRUE(c.linkedin.rate_limit.shared);
  EXPECT_EQ(c.linkedin.retry.initial_backoff, Millis{1000});
  EXPECT_EQ(c.linkedin.retry.max_backoff, Millis{120'000});
  EXPECT_EQ(c.linkedin.pause_recheck, Millis{30'000});
  EXPECT_TRUE(c.linkedin.dry_run);
  ASSERT_EQ(c.conversions.size(), 2u);
  EXPECT_EQ(c.conversions.at("purchase"), 123u);
  EXPECT_EQ(c.conversions.at("sign_up"), 456u);
}

TEST(ConfigKeys, EnumsRejectOtherValuesAndListTheChoices) {
  EXPECT_THAT(only_error("spool:\n  fsync: sometimes\n", "spool.fsync").message,
              HasSubstr("always | batch | off"));
  EXPECT_THAT(only_error("dedup:\n  backend: memcached\n", "dedup.backend").message,
              HasSubstr("local | redis"));
  EXPECT_THAT(only_error("dedup:\n  redis_unavailable: drop\n", "dedup.redis_unavailable").message,
              HasSubstr("local | reject"));
  EXPECT_THAT(only_error("log:\n  level: verbose\n", "log.level").message,
              HasSubstr("debug | info | warn | error"));
  EXPECT_THAT(only_error("log:\n  format: xml\n", "log.format").message, HasSubstr("json | text"));
  EXPECT_THAT(only_error("linkedin:\n  dry_run: maybe\n", "linkedin.dry_run").message,
              HasSubstr("true or false"));
}

TEST(ConfigKeys, RangeChecks) {
  EXPECT_TRUE(load("linkedin:\n  batch_max_events: 1\n").ok());
  EXPECT_TRUE(load("linkedin:\n  batch_max_events: 5000\n").ok());
  EXPECT_THAT(only_error("linkedin:\n  batch_max_events: 0\n", "linkedin.batch_max_events").message,
              HasSubstr("between 1 and 5000"));
  only_error("linkedin:\n  batch_max_events: 5001\n", "linkedin.batch_max_events");
  only_error("linkedin:\n  batch_max_events: -1\n", "linkedin.batch_max_events");
  only_error("linkedin:\n  batch_max_events: 12.5\n", "linkedin.batch_max_events");
  EXPECT_THAT(only_error("linkedin:\n  max_in_flight: 0\n", "linkedin.max_in_flight").message,
              HasSubstr("1"));
  only_error("server:\n  max_connections: 0\n", "server.max_connections");
  only_error("server:\n  max_body_bytes: 0\n", "server.max_body_bytes");
  only_error("server:\n  io_threads: 100000\n", "server.io_threads");
  only_error("server:\n  header_timeout: 0s\n", "server.header_timeout");
  EXPECT_TRUE(load("server:\n  shutdown_grace: 0s\n").ok());
  EXPECT_TRUE(load("linkedin:\n  rate_limit:\n    per_day: 18446744073709551615\n").ok());
  only_error("linkedin:\n  rate_limit:\n    per_day: 18446744073709551616\n",
             "linkedin.rate_limit.per_day");
}

TEST(ConfigKeys, ListenAddressesMustBeHostPort) {
  EXPECT_TRUE(load("server:\n  listen: \"[::]:8080\"\nadmin:\n  listen: 0.0.0.0:0\n").ok());
  EXPECT_TRUE(load("server:\n  listen: localhost:8080\n").ok());
  ConfigLoad all = load("admin:\n  listen: :9464\n");
  ASSERT_TRUE(all.ok()) << all_errors(all);
  EXPECT_EQ(all.config.admin.listen, ":9464");
  EXPECT_THAT(only_error("server:\n  listen: 127.0.0.1:70000\n", "server.listen").message,
              HasSubstr("\"127.0.0.1:70000\""));
  only_error("server:\n  listen: \"8080\"\n", "server.listen");
  only_error("admin:\n  listen: \"::1:9464\"\n", "admin.listen");
  only_error("admin:\n  listen: metrics.example.com:9464\n", "admin.listen");
}

TEST(ConfigKeys, VersionIsSixDigitYearMonth) {
  EXPECT_TRUE(load("linkedin:\n  version: \"202401\"\n").ok());
  only_error("linkedin:\n  version: 2026-09\n", "linkedin.version");
  only_error("linkedin:\n  version: \"20260\"\n", "linkedin.version");
  only_error("linkedin:\n  version: \"202613\"\n", "linkedin.version");
  only_error("linkedin:\n  version: \"202600\"\n", "linkedin.version");
}

TEST(ConfigKeys, OtherValueChecks) {
  only_error("server:\n  cors_origins: [https://shop.example.com/]\n", "server.cors_origins[0]");
  only_error("server:\n  cors_origins: [shop.example.com]\n", "server.cors_origins[0]");
  EXPECT_TRUE(load("server:\n  cors_origins: [\"*\"]\n").ok());
  only_error("server:\n  ingest_keys: [good, \"\"]\n", "server.ingest_keys[1]");
  only_error("dedup:\n  redis_url: http://cache:6379\n", "dedup.redis_url");
  only_error("linkedin:\n  oauth:\n    scopes: \"\"\n", "linkedin.oauth.scopes");
  only_error("linkedin:\n  oauth:\n    redirect_uri: ftp://x/cb\n", "linkedin.oauth.redirect_uri");
  only_error("linkedin:\n  token_file: \"\"\n", "linkedin.token_file");
  only_error("spool:\n  dir: \"\"\n", "spool.dir");
}

TEST(ConfigKeys, WrongShapesAreErrors) {
  EXPECT_THAT(only_error("server:\n  listen: [a, b]\n", "server.listen").message,
              HasSubstr("not a list"));
  EXPECT_THAT(only_error("server:\n  ingest_keys: abc\n", "server.ingest_keys").message,
              HasSubstr("must be a list"));
  EXPECT_THAT(only_error("server: 5\n", "server").message, HasSubstr("mapping"));
  EXPECT_THAT(only_error("linkedin:\n  oauth:\n    client_id: {a: 1}\n", "linkedin.oauth.client_id")
                  .message,
              HasSubstr("not a mapping"));
  EXPECT_THAT(only_error("server:\n  io_threads:\n", "server.io_threads").message,
              HasSubstr("empty"));
  ConfigLoad top = load("just a string\n");
  ASSERT_EQ(top.errors.size(), 1u) << all_errors(top);
  EXPECT_THAT(top.errors[0].message, HasSubstr("mapping"));
}

TEST(ConfigKeys, CrossKeyChecks) {
  ConfigError e = only_error("linkedin:\n  retry:\n    initial_backoff: 10s\n    max_backoff: 5s\n",
                             "linkedin.retry.max_backoff");
  EXPECT_EQ(e.line, 4);
  e = only_error("linkedin:\n  rate_limit:\n    shared: true\n", "linkedin.rate_limit.shared");
  EXPECT_EQ(e.line, 3);
  EXPECT_THAT(e.message, HasSubstr("redis"));
  EXPECT_TRUE(load("dedup:\n  backend: redis\nlinkedin:\n  rate_limit:\n    shared: true\n").ok());
}

// ---- conversions ----------------------------------------------------------------------------

TEST(ConfigConversions, AcceptsUrnsAndNumbers) {
  ConfigLoad l = load(
      "conversions:\n  purchase: urn:lla:llaPartnerConversion:123\n  lead: 7\n  \"sign up\": "
      "\"99\"\n");
  ASSERT_TRUE(l.ok()) << all_errors(l);
  EXPECT_EQ(l.config.conversions,
            (std::map<std::string, uint64_t>{{"purchase", 123}, {"lead", 7}, {"sign up", 99}}));
  // Flow style works as well.
  l = load("conversions: {purchase: 1, refund: 2}\n");
  ASSERT_TRUE(l.ok()) << all_errors(l);
  EXPECT_EQ(l.config.conversions.size(), 2u);
}

TEST(ConfigConversions, RejectsBadRulesWithTheEventPath) {
  ConfigLoad l = load(
      "conversions:\n  purchase: urn:lla:llaPartnerConversion:abc\n  lead: 0\n  ok: 5\n"
      "  nested: {a: 1}\n");
  EXPECT_EQ(l.errors.size(), 3u) << all_errors(l);
  const ConfigError* purchase = find_error(l, "conversions.purchase");
  ASSERT_NE(purchase, nullptr) << all_errors(l);
  EXPECT_EQ(purchase->line, 2);
  EXPECT_THAT(purchase->message, HasSubstr("urn:lla:llaPartnerConversion:N"));
  EXPECT_NE(find_error(l, "conversions.lead"), nullptr) << all_errors(l);
  EXPECT_NE(find_error(l, "conversions.nested"), nullptr) << all_errors(l);
  EXPECT_EQ(l.config.conversions, (std::map<std::string, uint64_t>{{"ok", 5}}));
  only_error("conversions: [1, 2]\n", "conversions");
}

// ---- unknown and duplicate keys -------------------------------------------------------------

TEST(ConfigUnknownKeys, TopLevelKeyIsNamedWithItsLine) {
  ConfigError e = only_error("server:\n  listen: 127.0.0.1:1\nservr:\n  x: 1\n", "servr");
  EXPECT_EQ(e.line, 3);
  EXPECT_THAT(e.message, HasSubstr("unknown key"));
  EXPECT_THAT(e.message, HasSubstr("did you mean \"server\""));
}

TEST(ConfigUnknownKeys, NestedKeyIsNamedWithItsFullPath) {
  ConfigError e = only_error(
      "linkedin:\n  oauth:\n    client_id: x\n    clientsecret: hunter2\n",
      "linkedin.oauth.clientsecret");
  EXPECT_EQ(e.line, 4);
  EXPECT_THAT(e.message, HasSubstr("unknown key"));
  EXPECT_THAT(e.message, HasSubstr("client_secret"));
  EXPECT_THAT(e.message, Not(HasSubstr("hunter2")));
  e = only_error("linkedin:\n  rate_limit:\n    per_hour: 5\n", "linkedin.rate_limit.per_hour");
  EXPECT_EQ(e.line, 3);
  e = only_error("server:\n  frobnicate: true\n", "server.frobnicate");
  EXPECT_THAT(e.message, Not(HasSubstr("did you mean")));
  EXPECT_THAT(e.message, HasSubstr("known keys here: listen, io_threads"));
}

TEST(ConfigUnknownKeys, DuplicateKeysAreErrors) {
  ConfigError e = only_error("server:\n  io_threads: 1\n  io_threads: 2\n", "server.io_threads");
  EXPECT_EQ(e.line, 3);
  EXPECT_THAT(e.message, HasSubstr("duplicate"));
  e = only_error("conversions:\n  a: 1\n  a: 2\n", "conversions.a");
  EXPECT_THAT(e.message, HasSubstr("duplicate"));
}

// ---- all errors at once ---------------------------------------------------------------------

TEST(ConfigErrors, ReportsEveryErrorWithPathAndLine) {
  const std::string yaml =
      "server:\n"                          // 1
      "  listen: nowhere\n"                // 2
      "  max_body_bytes: lots\n"           // 3
      "  bogus: 1\n"                       // 4
      "spool:\n"                           // 5
      "  fsync: sometimes\n"               // 6
      "linkedin:\n"                        // 7
      "  api_base: http://example.com\n"   // 8
      "  flush_interval: 1 second\n"       // 9
      "  retry:\n"                         // 10
      "    max_backoff: 10\n"              // 11
      "extra: true\n";                     // 12
  ConfigLoad l = load(yaml);
  const std::pair<std::string, int> want[] = {
      {"server.listen", 2},           {"server.max_body_bytes", 3}, {"server.bogus", 4},
      {"spool.fsync", 6},             {"linkedin.api_base", 8},     {"linkedin.flush_interval", 9},
      {"linkedin.retry.max_backoff", 11}, {"extra", 12},
  };
  EXPECT_EQ(l.errors.size(), std::size(want)) << all_errors(l);
  for (const auto& [path, line] : want) {
    const ConfigError* e = find_error(l, path);
    ASSERT_NE(e, nullptr) << path << "\n" << all_errors(l);
    EXPECT_EQ(e->line, line) << path;
  }
  // Keys that were fine still took effect; failed ones kept their defaults.
  EXPECT_EQ(l.config.server.listen, "127.0.0.1:8080");
  EXPECT_EQ(l.config.spool.fsync, FsyncMode::kBatch);
}

TEST(ConfigErrors, DurationAndSizeErrorsExplainTheFormat) {
  ConfigError e = only_error("linkedin:\n  flush_interval: 5x\n", "linkedin.flush_interval");
  EXPECT_THAT(e.message, HasSubstr("250ms"));
  EXPECT_THAT(e.message, HasSubstr("\"5x\""));
  e = only_error("spool:\n  max_bytes: 1.5GB\n", "spool.max_bytes");
  EXPECT_THAT(e.message, HasSubstr("64KiB"));
  EXPECT_THAT(e.message, HasSubstr("\"1.5GB\""));
  ConfigLoad ok = load("spool:\n  max_bytes: 1048576\n  dead_letter_retention: 1h30m\n");
  ASSERT_TRUE(ok.ok()) << all_errors(ok);
  EXPECT_EQ(ok.config.spool.max_bytes, 1048576u);
  EXPECT_EQ(ok.config.spool.dead_letter_retention, Millis{90ll * 60'000});
}

TEST(ConfigErrors, YamlSyntaxErrorHasItsLine) {
  ConfigLoad l = load("server:\n  listen: 127.0.0.1:8080\n  cors_origins: [a, b\nadmin:\n");
  ASSERT_EQ(l.errors.size(), 1u) << all_errors(l);
  EXPECT_EQ(l.errors[0].path, "");
  EXPECT_GT(l.errors[0].line, 2);
  EXPECT_THAT(l.errors[0].message, HasSubstr("YAML syntax error"));
  l = load("server:\n\tlisten: x\n");
  ASSERT_EQ(l.errors.size(), 1u) << all_errors(l);
  EXPECT_EQ(l.errors[0].line, 2);
}

TEST(ConfigErrors, SecondDocumentIsAnError) {
  ConfigLoad l = load("server:\n  io_threads: 1\n---\nserver:\n  io_threads: 2\n");
  ASSERT_EQ(l.errors.size(), 1u) << all_errors(l);
  EXPECT_THAT(l.errors[0].message, HasSubstr("single YAML document"));
}

// ---- environment expansion ------------------------------------------------------------------

TEST(ConfigEnv, ExpandsSetVariables) {
  ScopedEnv port("CAPI_RELAY_TEST_PORT", "9191");
  ScopedEnv token("CAPI_RELAY_TEST_TOKEN", "tok-from-env");
  ScopedEnv key("CAPI_RELAY_TEST_KEY", "k-env");
  ConfigLoad l = load(
      "server:\n  listen: 127.0.0.1:${CAPI_RELAY_TEST_PORT}\n  ingest_keys:\n"
      "    - ${CAPI_RELAY_TEST_KEY}\nlinkedin:\n  access_token: ${CAPI_RELAY_TEST_TOKEN}\n"
      "conversions:\n  buy: urn:lla:llaPartnerConversion:${CAPI_RELAY_TEST_PORT}\n");
  ASSERT_TRUE(l.ok()) << all_errors(l);
  EXPECT_EQ(l.config.server.listen, "127.0.0.1:9191");
  EXPECT_EQ(l.config.server.ingest_keys, (std::vector<std::string>{"k-env"}));
  EXPECT_EQ(l.config.linkedin.access_token, "tok-from-env");
  EXPECT_EQ(l.config.conversions.at("buy"), 9191u);
}

TEST(ConfigEnv, DefaultsApplyWhenUnsetOrEmpty) {
  ScopedEnv unset("CAPI_RELAY_TEST_UNSET", nullptr);
  ScopedEnv empty("CAPI_RELAY_TEST_EMPTY", "");
  ConfigLoad l = load(
      "linkedin:\n  flush_interval: ${CAPI_RELAY_TEST_UNSET:-250ms}\n"
      "  access_token: ${CAPI_RELAY_TEST_UNSET:-}\n"
      "  version: \"${CAPI_RELAY_TEST_EMPTY:-202401}\"\n");
  ASSERT_TRUE(l.ok()) << all_errors(l);
  EXPECT_EQ(l.config.linkedin.flush_interval, Millis{250});
  EXPECT_EQ(l.config.linkedin.access_token, "");
  EXPECT_EQ(l.config.linkedin.version, "202401");
}

TEST(ConfigEnv, SetButEmptyWithoutDefaultIsEmpty) {
  ScopedEnv empty("CAPI_RELAY_TEST_EMPTY", "");
  ConfigLoad l = load("linkedin:\n  oauth:\n    client_id: x${CAPI_RELAY_TEST_EMPTY}y\n");
  ASSERT_TRUE(l.ok()) << all_errors(l);
  EXPECT_EQ(l.config.linkedin.oauth.client_id, "xy");
}

TEST(ConfigEnv, UnsetWithoutDefaultNamesKeyAndVariable) {
  ScopedEnv unset("CAPI_RELAY_TEST_UNSET", nullptr);
  ConfigError e = only_error("linkedin:\n  oauth:\n    client_secret: ${CAPI_RELAY_TEST_UNSET}\n",
                             "linkedin.oauth.client_secret");
  EXPECT_EQ(e.line, 3);
  EXPECT_THAT(e.message, HasSubstr("CAPI_RELAY_TEST_UNSET"));
  EXPECT_THAT(e.message, HasSubstr("not set"));
}

TEST(ConfigEnv, EscapesAndMalformedReferences) {
  ConfigLoad l = load("linkedin:\n  oauth:\n    client_id: \"a$${NOT_EXPANDED}b$c\"\n");
  ASSERT_TRUE(l.ok()) << all_errors(l);
  EXPECT_EQ(l.config.linkedin.oauth.client_id, "a${NOT_EXPANDED}b$c");
  EXPECT_THAT(only_error("linkedin:\n  oauth:\n    client_id: \"${OPEN\"\n",
                         "linkedin.oauth.client_id")
                  .message,
              HasSubstr("unterminated"));
  only_error("linkedin:\n  oauth:\n    client_id: \"${1BAD}\"\n", "linkedin.oauth.client_id");
  only_error("linkedin:\n  oauth:\n    client_id: \"${}\"\n", "linkedin.oauth.client_id");
}

TEST(ConfigEnv, ExpandedValueIsNotReparsedAsYaml) {
  ScopedEnv v("CAPI_RELAY_TEST_YAMLISH", "a: [b]");
  ConfigLoad l = load("linkedin:\n  oauth:\n    client_id: ${CAPI_RELAY_TEST_YAMLISH}\n");
  ASSERT_TRUE(l.ok()) << all_errors(l);
  EXPECT_EQ(l.config.linkedin.oauth.client_id, "a: [b]");
}

// ---- api_base and OAuth endpoints ---------------------------------------------------------

TEST(ConfigUrls, HttpOnlyForLoopback) {
  for (const std::string ok :
       {"https://api.linkedin.com", "https://proxy.example.com:8443/li", "http://127.0.0.1:8080",
        "http://127.1.2.3", "http://localhost:1234", "http://[::1]:9000", "HTTP://LOCALHOST"}) {
    ConfigLoad l = load("linkedin:\n  api_base: \"" + ok + "\"\n");
    EXPECT_TRUE(l.ok()) << ok << "\n" << all_errors(l);
  }
  for (const std::string bad :
       {"http://api.linkedin.com", "http://10.0.0.1:8080", "http://128.0.0.1", "http://[::2]:80",
        "http://localhost.evil.com", "ftp://127.0.0.1", "api.linkedin.com", "https://",
        "https://host:0", "https://user:pw@api.linkedin.com"}) {
    ConfigLoad l = load("linkedin:\n  api_base: \"" + bad + "\"\n");
    ASSERT_EQ(l.errors.size(), 1u) << bad << "\n" << all_errors(l);
    EXPECT_EQ(l.errors[0].path, "linkedin.api_base");
    EXPECT_EQ(l.errors[0].line, 2);
    EXPECT_EQ(l.config.linkedin.api_base, "https://api.linkedin.com") << "default kept";
  }
  EXPECT_THAT(only_error("linkedin:\n  api_base: http://api.linkedin.com\n", "linkedin.api_base")
                  .message,
              HasSubstr("loopback"));
}

TEST(ConfigUrls, OAuthEndpointsFollowTheSameRule) {
  only_error("linkedin:\n  oauth:\n    token_url: http://auth.example.com/t\n",
             "linkedin.oauth.token_url");
  only_error("linkedin:\n  oauth:\n    introspect_url: http://auth.example.com/i\n",
             "linkedin.oauth.introspect_url");
  only_error("linkedin:\n  oauth:\n    authorize_url: http://auth.example.com/a\n",
             "linkedin.oauth.authorize_url");
  EXPECT_TRUE(load("linkedin:\n  oauth:\n    token_url: http://127.0.0.1:5/t\n").ok());
}

// ---- secrets --------------------------------------------------------------------------------

TEST(ConfigSecrets, NeverAppearInErrorText) {
  const std::string secret = "s3cr3t-VALUE-xyz";
  const std::string cases[] = {
      "linkedin:\n  access_token: [" + secret + "]\n",
      "linkedin:\n  access_token: \"" + secret + "${\"\n",
      "linkedin:\n  oauth:\n    client_secret: \"" + secret + "${ bad }\"\n",
      "linkedin:\n  oauth:\n    refresh_token: {" + secret + ": 1}\n",
      "server:\n  ingest_keys: [" + secret + ", [" + secret + "]]\n",
      "dedup:\n  redis_url: http://user:" + secret + "@cache:6379\n",
      "dedup:\n  redis_url: \"redis://:" + secret + "@[zz]:6379\"\n",
      "linkedin:\n  acces_token: " + secret + "\n",
      "linkedin:\n  access_token: " + secret + "\n  access_token: " + secret + "\n",
      "linkedin:\n  access_token: " + secret + ": x\n",   // YAML syntax error
  };
  for (const std::string& yaml : cases) {
    ConfigLoad l = load(yaml);
    ASSERT_FALSE(l.ok()) << yaml;
    for (const ConfigError& e : l.errors) {
      EXPECT_THAT(e.message, Not(HasSubstr(secret))) << yaml;
      EXPECT_THAT(e.path, Not(HasSubstr(secret))) << yaml;
    }
    std::ostringstream out, err;
    EXPECT_EQ(run_check_config(l, out, err), 1);
    EXPECT_THAT(err.str(), Not(HasSubstr(secret)));
    EXPECT_THAT(err.str(), Not(HasSubstr("s3cr3t")));
  }
}

TEST(ConfigSecrets, NeverAppearInTheSummary) {
  ConfigLoad l = load(
      "server:\n  ingest_keys: [ingestkey1, ingestkey2]\ndedup:\n  backend: redis\n"
      "  redis_url: redis://:redispass@cache:6379/0\nlinkedin:\n  access_token: accesstok\n"
      "  oauth:\n    client_secret: clientsec\n    refresh_token: refreshtok\n");
  ASSERT_TRUE(l.ok()) << all_errors(l);
  std::ostringstream out, err;
  EXPECT_EQ(run_check_config(l, out, err), 0);
  EXPECT_EQ(err.str(), "");
  for (const char* secret : {"ingestkey", "redispass", "accesstok", "clientsec", "refreshtok"}) {
    EXPECT_THAT(out.str(), Not(HasSubstr(secret)));
  }
  EXPECT_THAT(out.str(), HasSubstr("2 ingest keys"));
}

// ---- paths ----------------------------------------------------------------------------------

TEST(ConfigPaths, RelativePathsResolveAgainstTheBaseDir) {
  ConfigLoad l = load("spool:\n  dir: ./var/../spool/\nlinkedin:\n  token_file: sub/tok.json\n");
  ASSERT_TRUE(l.ok()) << all_errors(l);
  EXPECT_EQ(l.config.spool.dir, fs::path("/srv/relay/spool"));
  EXPECT_EQ(l.config.linkedin.token_file, fs::path("/srv/relay/spool/sub/tok.json"));
}

TEST(ConfigPaths, AbsolutePathsAreKept) {
  ConfigLoad l = load("spool:\n  dir: /data/relay\nlinkedin:\n  token_file: /etc/relay/tok.json\n");
  ASSERT_TRUE(l.ok()) << all_errors(l);
  EXPECT_EQ(l.config.spool.dir, fs::path("/data/relay"));
  EXPECT_EQ(l.config.linkedin.token_file, fs::path("/etc/relay/tok.json"));
}

TEST(ConfigPaths, RelativeBaseDirBecomesAbsolute) {
  ConfigLoad l = load_config_string("", "conf");
  ASSERT_TRUE(l.ok()) << all_errors(l);
  EXPECT_EQ(l.config.spool.dir, fs::current_path() / "conf" / "data");
}

TEST(ConfigPaths, CaFileResolvesAgainstTheBaseDirAndMustExist) {
  TempDir dir;
  dir.write("certs/ca.pem", "-----BEGIN CERTIFICATE-----\n");
  ConfigLoad l = load_config_string("linkedin:\n  ca_file: certs/ca.pem\n", dir.path());
  ASSERT_TRUE(l.ok()) << all_errors(l);
  EXPECT_EQ(l.config.linkedin.ca_file, dir.path() / "certs" / "ca.pem");
  ConfigError e = only_error("linkedin:\n  ca_file: missing.pem\n", "linkedin.ca_file");
  EXPECT_EQ(e.line, 2);
  EXPECT_THAT(e.message, HasSubstr("/srv/relay/missing.pem"));
}

TEST(ConfigFile, ResolvesAgainstTheFilesDirectory) {
  TempDir dir;
  const fs::path file = dir.write("etc/relay.yaml", "spool:\n  dir: state\n");
  ConfigLoad l = load_config_file(file);
  ASSERT_TRUE(l.ok()) << all_errors(l);
  EXPECT_EQ(l.config.source, file);
  EXPECT_EQ(l.config.spool.dir, dir.path() / "etc" / "state");
  EXPECT_EQ(l.config.linkedin.token_file, dir.path() / "etc" / "state" / "token.json");
}

TEST(ConfigFile, MissingOrUnreadableFileIsAnError) {
  TempDir dir;
  ConfigLoad l = load_config_file(dir.path() / "nope.yaml");
  ASSERT_EQ(l.errors.size(), 1u);
  EXPECT_THAT(l.errors[0].message, HasSubstr("cannot read"));
  EXPECT_EQ(l.config.source, dir.path() / "nope.yaml");
  l = load_config_file(dir.path());
  ASSERT_EQ(l.errors.size(), 1u);
  EXPECT_THAT(l.errors[0].message, HasSubstr("directory"));
}

TEST(ConfigFile, EmptyFileGivesDefaults) {
  TempDir dir;
  ConfigLoad l = load_config_file(dir.write("empty.yaml", ""));
  ASSERT_TRUE(l.ok()) << all_errors(l);
  expect_default_values(l.config);
}

// ---- the example file -----------------------------------------------------------------------

TEST(ConfigExample, LoadsWithoutErrorsAndMirrorsTheDefaults) {
  ScopedEnv token("LINKEDIN_ACCESS_TOKEN", nullptr);
  const fs::path example =
      (fs::path(__FILE__).parent_path() / "../../../config/relay.example.yaml").lexically_normal();
  ASSERT_TRUE(fs::exists(example)) << example;
  ConfigLoad l = load_config_file(example);
  ASSERT_TRUE(l.ok()) << all_errors(l);
  expect_default_values(l.config);
  EXPECT_FALSE(l.config.linkedin.dry_run);
  EXPECT_TRUE(l.config.conversions.empty());
  // __FILE__ may be relative (ccache's base_dir), so compare absolute forms.
  EXPECT_EQ(l.config.spool.dir,
            (fs::absolute(example).parent_path() / "data").lexically_normal());
}

TEST(ConfigExample, CommentedConversionsExampleIsValid) {
  const fs::path example =
      (fs::path(__FILE__).parent_path() / "../../../config/relay.example.yaml").lexically_normal();
  std::ifstream in(example);
  std::string text, line;
  bool in_example = false;
  while (std::getline(in, line)) {
    // Uncomment the "# conversions:" block at the end of the file, replacing "conversions: {}".
    if (line.rfind("conversions: {}", 0) == 0) continue;
    if (line == "# conversions:") in_example = true;
    if (in_example && line.rfind("# ", 0) == 0) line = line.substr(2);
    text += line + "\n";
  }
  ASSERT_TRUE(in_example) << "the example file shows a conversions: example";
  ConfigLoad l = load(text);
  ASSERT_TRUE(l.ok()) << all_errors(l);
  EXPECT_FALSE(l.config.conversions.empty());
}

// ---- check-config output --------------------------------------------------------------------

TEST(CheckConfig, PrintsEachErrorWithFileLineAndPath) {
  TempDir dir;
  const fs::path file =
      dir.write("relay.yaml", "server:\n  listen: nowhere\nbogus: 1\nspool:\n  dir: \"\"\n");
  ConfigLoad l = load_config_file(file);
  std::ostringstream out, err;
  EXPECT_EQ(run_check_config(l, out, err), 1);
  EXPECT_EQ(out.str(), "");
  const std::string f = file.string();
  EXPECT_THAT(err.str(), HasSubstr(f + ":2: server.listen: must be host:port"));
  EXPECT_THAT(err.str(), HasSubstr(f + ":3: bogus: unknown key"));
  EXPECT_THAT(err.str(), HasSubstr(f + ":5: spool.dir: must not be empty"));
  EXPECT_THAT(err.str(), HasSubstr("3 errors"));
}

TEST(CheckConfig, ErrorsWithoutLineOrPath) {
  EXPECT_EQ(format_config_error(ConfigError{"", "cannot read the config file: x", 0}, "/etc/r.yaml"),
            "/etc/r.yaml: cannot read the config file: x");
  EXPECT_EQ(format_config_error(ConfigError{"a.b", "bad", 0}, ""), "<config>: a.b: bad");
  EXPECT_EQ(format_config_error(ConfigError{"a.b", "bad", 7}, "r.yaml"), "r.yaml:7: a.b: bad");
}

TEST(CheckConfig, SuccessPrintsOneSummaryLine) {
  ConfigLoad l = default_config();
  std::ostringstream out, err;
  EXPECT_EQ(run_check_config(l, out, err), 0);
  EXPECT_EQ(err.str(), "");
  const std::string s = out.str();
  EXPECT_EQ(s.rfind("config OK: ", 0), 0u) << s;
  EXPECT_EQ(s.find('\n'), s.size() - 1) << "exactly one line: " << s;
  EXPECT_THAT(s, HasSubstr("127.0.0.1:8080"));
  EXPECT_THAT(s, HasSubstr("dry run"));
  EXPECT_THAT(s, HasSubstr("1 conversion rule"));
  EXPECT_THAT(s, HasSubstr("dedup local 7d"));
}

}  // namespace
}  // namespace capi_relay
