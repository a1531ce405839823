#include "capi_relay/metrics/relay_metrics.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace capi_relay::metrics {
namespace {

bool has_line_starting(const std::string& text, const std::string& prefix) {
  return text.starts_with(prefix) || text.find("\n" + prefix) != std::string::npos;
}

TEST(RelayMetricsTest, ExposesEveryContractMetric) {
  Registry r;
  RelayMetrics m(r);
  const std::string text = r.expose();
  const struct {
    const char* name;
    const char* type;
  } kContract[] = {
      {"capi_relay_events_received_total", "counter"},
      {"capi_relay_events_accepted_total", "counter"},
      {"capi_relay_events_rejected_total", "counter"},
      {"capi_relay_events_duplicate_total", "counter"},
      {"capi_relay_events_uploaded_total", "counter"},
      {"capi_relay_events_dead_lettered_total", "counter"},
      {"capi_relay_upload_requests_total", "counter"},
      {"capi_relay_upload_retries_total", "counter"},
      {"capi_relay_upload_duration_seconds", "histogram"},
      {"capi_relay_batch_events", "histogram"},
      {"capi_relay_spool_pending_events", "gauge"},
      {"capi_relay_spool_bytes", "gauge"},
      {"capi_relay_oldest_pending_event_age_seconds", "gauge"},
      {"capi_relay_token_expiry_timestamp_seconds", "gauge"},
      {"capi_relay_refresh_token_expiry_timestamp_seconds", "gauge"},
      {"capi_relay_uploads_paused", "gauge"},
  };
  for (const auto& c : kContract) {
    EXPECT_TRUE(has_line_starting(text, std::string("# TYPE ") + c.name + " " + c.type + "\n"))
        << c.name;
    EXPECT_TRUE(has_line_starting(text, std::string("# HELP ") + c.name + " ")) << c.name;
  }
}

TEST(RelayMetricsTest, FixedLabelValuesExistFromStart) {
  Registry r;
  RelayMetrics m(r);
  const std::string text = r.expose();
  for (const char* reason :
       {"invalid_json", "unknown_event", "unknown_rule", "no_identifier", "incomplete_name",
        "too_old", "in_future", "bad_email", "bad_hash", "bad_amount", "bad_currency",
        "bad_country", "bad_event_id", "bad_lead", "bad_ip", "no_consent", "bad_consent",
        "bad_timestamp", "bad_event"}) {
    EXPECT_TRUE(has_line_starting(
        text, std::string("capi_relay_events_rejected_total{reason=\"") + reason + "\"} 0\n"))
        << reason;
  }
  for (const char* reason : {"rejected", "expired"}) {
    EXPECT_TRUE(has_line_starting(
        text, std::string("capi_relay_events_dead_lettered_total{reason=\"") + reason + "\"} 0\n"))
        << reason;
  }
  for (const char* type :
       {"email", "li_fat_id", "acxiom", "moat", "external_id", "ip", "names_only"}) {
    EXPECT_TRUE(has_line_starting(
        text, std::string("capi_relay_events_identifiers_total{type=\"") + type + "\"} 0\n"))
        << type;
  }
  for (const char* cause :
       {"429", "5xx", "408", "timeout", "connect_error", "tls_error", "element_status",
        "partial_reject", "token_refresh"}) {
    EXPECT_TRUE(has_line_starting(
        text, std::string("capi_relay_upload_retry_causes_total{cause=\"") + cause + "\"} 0\n"))
        << cause;
  }
  EXPECT_TRUE(has_line_starting(text, "capi_relay_uploads_paused 0\n"));
  EXPECT_TRUE(has_line_starting(text, "capi_relay_oldest_pending_event_age_seconds 0\n"));
}

TEST(RelayMetricsTest, TokenExpiryHasNoSampleUntilKnown) {
  Registry r;
  RelayMetrics m(r);
  EXPECT_FALSE(has_line_starting(r.expose(), "capi_relay_token_expiry_timestamp_seconds "));
  EXPECT_FALSE(
      has_line_starting(r.expose(), "capi_relay_refresh_token_expiry_timestamp_seconds "));
  m.token_expiry.set_present(1790000000);
  EXPECT_TRUE(
      has_line_starting(r.expose(), "capi_relay_token_expiry_timestamp_seconds 1790000000\n"));
  EXPECT_FALSE(
      has_line_starting(r.expose(), "capi_relay_refresh_token_expiry_timestamp_seconds "));
}

TEST(RelayMetricsTest, HistogramBuckets) {
  Registry r;
  RelayMetrics m(r);
  EXPECT_EQ(m.batch_events.bounds(), (std::vector<double>{1, 10, 50, 100, 500, 1000, 2500, 5000}));
  EXPECT_EQ(m.upload_duration.bounds().front(), 0.05);
  EXPECT_EQ(m.upload_duration.bounds().back(), 60);
  EXPECT_EQ(m.ingest_request_duration.bounds().front(), 0.0005);
  EXPECT_EQ(m.ingest_request_duration.bounds().back(), 5);
  EXPECT_EQ(m.spool_fsync_duration.bounds().front(), 0.0001);
  EXPECT_EQ(m.spool_fsync_duration.bounds().back(), 1);
  EXPECT_EQ(m.spool_commit_group.bounds().front(), 1);
  EXPECT_EQ(m.spool_commit_group.bounds().back(), 256);
  m.batch_events.observe(100);
  EXPECT_TRUE(has_line_starting(r.expose(), "capi_relay_batch_events_bucket{le=\"100\"} 1\n"));
  EXPECT_TRUE(has_line_starting(r.expose(), "capi_relay_batch_events_bucket{le=\"50\"} 0\n"));
}

// `promtool check metrics` reads the exposition on stdin and prints lint problems; the contract
// requires it to print nothing.
TEST(RelayMetricsTest, PromtoolCheckMetricsIsClean) {
  const char* kPromtool = "/usr/bin/promtool";
  if (access(kPromtool, X_OK) != 0) GTEST_SKIP() << "promtool not installed";
  Registry r;
  RelayMetrics m(r);
  // Exercise every shape: samples in families with dynamic labels, set token gauges, histograms.
  m.ingest_requests.with("202").inc();
  m.upload_requests.with("429").inc();
  m.upload_requests.with("timeout").inc();
  m.token_expiry.set_present(1790000000);
  m.refresh_token_expiry.set_present(1800000000.5);
  m.upload_duration.observe(0.3);
  m.spool_fsync_duration.observe(0.00042);

  const auto dir = std::filesystem::temp_directory_path() /
                   ("relay_metrics_test_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const auto in = dir / "metrics.txt";
  const auto out = dir / "promtool.out";
  {
    std::ofstream f(in);
    f << r.expose();
  }
  const std::string cmd = std::string(kPromtool) + " check metrics < " + in.string() + " > " +
                          out.string() + " 2>&1";
  const int status = std::system(cmd.c_str());
  std::ifstream o(out);
  const std::string output((std::istreambuf_iterator<char>(o)), std::istreambuf_iterator<char>());
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_EQ(output, "");
}

}  // namespace
}  // namespace capi_relay::metrics
