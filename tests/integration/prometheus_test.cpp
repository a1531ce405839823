// The relay as Prometheus sees it: promtool finds nothing wrong with /metrics or the shipped
// rules, and a real Prometheus server scraping the relay on loopback reads back the counter of
// accepted events.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "fakes/fake_linkedin.hpp"
#include "fakes/relay_config.hpp"
#include "fakes/relay_process.hpp"
#include "fakes/test_events.hpp"

namespace capi_relay::testing {
namespace {

const char* kPromtool = "/usr/bin/promtool";
const char* kPrometheus = "/usr/bin/prometheus";

// This file's config: the relay's defaults wherever it has one (no io_threads, shutdown
// timeout or retry backoff), token "t", one purchase rule by number.
std::string relay_yaml(const std::string& api_base) {
  RelayConfig c;
  c.api_base = api_base;
  c.io_threads = 0;
  c.shutdown_timeout.clear();
  c.access_token = "t";
  c.initial_backoff.clear();
  c.max_backoff.clear();
  c.conversions = "  purchase: 123\n";
  return c.yaml();
}

TEST(Prometheus, PromtoolAcceptsMetricsAndRules) {
  if (access(kPromtool, X_OK) != 0) GTEST_SKIP() << "promtool not installed (package prometheus)";
  FakeLinkedIn fake;
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(relay_yaml(fake.base_url()), &err)) << err;
  const int64_t now = now_ms();
  ASSERT_EQ(relay.post_events("[{\"event\":\"purchase\",\"eventId\":\"p-1\",\"timestamp\":" +
                              std::to_string(now) + ",\"user\":{\"email\":\"a@example.com\"}},"
                              "{\"event\":\"nope\",\"user\":{\"email\":\"a@example.com\"}}]")
                .status,
            202);
  ASSERT_TRUE(eventually([&] { return relay.metric("capi_relay_events_uploaded_total") == 1; }));
  auto metrics = relay.admin_get("/metrics");
  ASSERT_EQ(metrics.status, 200);
  auto file = relay.dir() / "metrics.txt";
  std::ofstream(file) << metrics.body;
  auto [code, out] = run_command(std::string(kPromtool) + " check metrics < " + file.string());
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out, "") << out;

  const std::string src = CAPI_RELAY_SOURCE_DIR;
  auto rules =
      run_command(std::string(kPromtool) + " check rules " + src + "/deploy/prometheus/alerts.yml");
  EXPECT_EQ(rules.exit_code, 0) << rules.output;
  auto rule_tests = run_command(std::string(kPromtool) + " test rules " + src +
                                "/deploy/prometheus/alerts_test.yml");
  EXPECT_EQ(rule_tests.exit_code, 0) << rule_tests.output;
  EXPECT_EQ(relay.stop(), 0);
}

TEST(Prometheus, RealServerScrapesTheAcceptedCounter) {
  if (access(kPrometheus, X_OK) != 0) GTEST_SKIP() << "prometheus not installed";
  FakeLinkedIn fake;
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(relay_yaml(fake.base_url()), &err)) << err;
  const int64_t now = now_ms();
  std::string body;
  for (int i = 0; i < 7; ++i)
    body += "{\"event\":\"purchase\",\"eventId\":\"s-" + std::to_string(i) + "\",\"timestamp\":" +
            std::to_string(now) + ",\"user\":{\"liFatId\":\"f\"}}\n";
  ASSERT_EQ(relay.post_events(body, "application/x-ndjson").status, 202);

  const auto dir = relay.dir() / "prometheus";
  std::filesystem::create_directories(dir);
  const uint16_t port = free_port();
  std::ofstream(dir / "prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
      << "scrape_configs:\n  - job_name: capi-relay\n    static_configs:\n"
      << "      - targets: ['127.0.0.1:" << relay.admin_port() << "']\n";
  pid_t pid = fork();
  if (pid == 0) {
    std::string cfg = "--config.file=" + (dir / "prometheus.yml").string();
    std::string data = "--storage.tsdb.path=" + (dir / "data").string();
    std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port);
    freopen((dir / "prometheus.log").c_str(), "w", stderr);
    freopen("/dev/null", "w", stdout);
    execl(kPrometheus, "prometheus", cfg.c_str(), data.c_str(), listen.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(pid, 0);
  std::string value;
  std::regex re("\"value\":\\[[0-9.]+,\"([0-9.]+)\"\\]");
  bool got = eventually(
      [&] {
        auto r = http_request(port, "GET",
                              "/api/v1/query?query=capi_relay_events_accepted_total");
        std::smatch m;
        if (r.status == 200 && std::regex_search(r.body, m, re)) {
          value = m[1];
          return value == "7";
        }
        return false;
      },
      60000);
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(got) << "last value: " << value;
  EXPECT_EQ(value, "7");
  EXPECT_EQ(relay.stop(), 0);
}

}  // namespace
}  // namespace capi_relay::testing
