// Config keys for hostile-input limits (server.per_client_rate, per_client_burst,
// trusted_proxies, max_buffered_bytes, max_events_per_request) and inputs that once made the
// loader run away (tests/fuzz/regressions/config).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "capi_relay/config/config.hpp"

namespace capi_relay {
namespace {

using ::testing::HasSubstr;

ConfigLoad load(const std::string& yaml) { return load_config_string(yaml, "/srv/relay"); }

std::string all_errors(const ConfigLoad& l) {
  std::string out;
  for (const ConfigError& e : l.errors) out += e.path + " @" + std::to_string(e.line) + ": " + e.message + "\n";
  return out;
}

TEST(LimitsConfig, DefaultsProtectASmallMachine) {
  ConfigLoad l = load("");
  ASSERT_TRUE(l.ok()) << all_errors(l);
  const ServerConfig& s = l.config.server;
  EXPECT_EQ(s.per_client_rate, 0u);  // off unless configured
  EXPECT_EQ(s.per_client_burst, 0u);
  EXPECT_TRUE(s.trusted_proxies.empty());
  EXPECT_EQ(s.max_buffered_bytes, 64ull << 20);
  EXPECT_EQ(s.max_events_per_request, 10000u);
}

TEST(LimitsConfig, ReadsEveryKey) {
  ConfigLoad l = load(
      "server:\n"
      "  per_client_rate: 20\n"
      "  per_client_burst: 50\n"
      "  trusted_proxies: [10.0.0.0/8, 192.0.2.1, \"fd00::/8\"]\n"
      "  max_buffered_bytes: 8MiB\n"
      "  max_events_per_request: 500\n");
  ASSERT_TRUE(l.ok()) << all_errors(l);
  const ServerConfig& s = l.config.server;
  EXPECT_EQ(s.per_client_rate, 20u);
  EXPECT_EQ(s.per_client_burst, 50u);
  EXPECT_EQ(s.trusted_proxies, (std::vector<std::string>{"10.0.0.0/8", "192.0.2.1", "fd00::/8"}));
  EXPECT_EQ(s.max_buffered_bytes, 8ull << 20);
  EXPECT_EQ(s.max_events_per_request, 500u);
}

TEST(LimitsConfig, BadValuesNameTheirKey) {
  struct Case {
    const char* yaml;
    const char* path;
  };
  for (const Case& c : {Case{"server:\n  trusted_proxies: [proxy.internal]\n", "server.trusted_proxies"},
                        Case{"server:\n  trusted_proxies: [10.0.0.0/40]\n", "server.trusted_proxies"},
                        Case{"server:\n  per_client_rate: -1\n", "server.per_client_rate"},
                        Case{"server:\n  per_client_rate: fast\n", "server.per_client_rate"},
                        Case{"server:\n  max_buffered_bytes: 0\n", "server.max_buffered_bytes"},
                        Case{"server:\n  max_events_per_request: 0\n", "server.max_events_per_request"}}) {
    ConfigLoad l = load(c.yaml);
    ASSERT_EQ(l.errors.size(), 1u) << c.yaml << all_errors(l);
    EXPECT_THAT(l.errors[0].path, HasSubstr(c.path)) << c.yaml;
  }
}

// yaml-cpp 0.7's LoadAll produced empty documents forever for a lone ","; the loader must answer.
TEST(LimitsConfig, LoneCommaIsAnErrorNotARunaway) {
  for (const char* yaml : {",", "# comment\n,\n", "server:\n  io_threads: 1\n---\n,\n"}) {
    ConfigLoad l = load(yaml);
    ASSERT_FALSE(l.ok()) << yaml;
    EXPECT_THAT(all_errors(l), HasSubstr("single YAML document")) << yaml;
  }
}

TEST(LimitsConfig, SecondDocumentErrorNamesItsLine) {
  ConfigLoad l = load("server:\n  io_threads: 1\n---\nserver:\n  io_threads: 2\n");
  ASSERT_EQ(l.errors.size(), 1u) << all_errors(l);
  EXPECT_EQ(l.errors[0].line, 3);
}

}  // namespace
}  // namespace capi_relay
