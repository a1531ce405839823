#include "capi_relay/metrics/registry.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace capi_relay::metrics {
namespace {

TEST(RegistryTest, CounterExposesHelpTypeAndValue) {
  Registry r;
  Counter& c = r.counter("x_requests_total", "Requests seen.");
  c.inc();
  c.inc(41);
  EXPECT_EQ(c.value(), 42u);
  EXPECT_EQ(r.expose(),
            "# HELP x_requests_total Requests seen.\n"
            "# TYPE x_requests_total counter\n"
            "x_requests_total 42\n");
}

TEST(RegistryTest, GaugeValuesAndFormatting) {
  Registry r;
  Gauge& a = r.gauge("x_a", "A.");
  Gauge& b = r.gauge("x_b", "B.");
  Gauge& c = r.gauge("x_c", "C.");
  Gauge& d = r.gauge("x_d", "D.");
  a.set(1764320000);  // integral: no exponent
  b.set(0.25);
  b.add(-1);
  c.set(std::numeric_limits<double>::infinity());
  d.set(std::nan(""));
  EXPECT_DOUBLE_EQ(b.value(), -0.75);
  EXPECT_EQ(r.expose(),
            "# HELP x_a A.\n# TYPE x_a gauge\nx_a 1764320000\n"
            "# HELP x_b B.\n# TYPE x_b gauge\nx_b -0.75\n"
            "# HELP x_c C.\n# TYPE x_c gauge\nx_c +Inf\n"
            "# HELP x_d D.\n# TYPE x_d gauge\nx_d NaN\n");
  c.set(-std::numeric_limits<double>::infinity());
  EXPECT_NE(r.expose().find("x_c -Inf\n"), std::string::npos);
}

TEST(RegistryTest, FloatsRoundTrip) {
  Registry r;
  Gauge& g = r.gauge("x_g", "G.");
  g.set(0.1 + 0.2);  // 0.30000000000000004: needs all 17 digits
  const std::string text = r.expose();
  const auto pos = text.find("\nx_g ");
  ASSERT_NE(pos, std::string::npos);
  const std::string value = text.substr(pos + 5, text.find('\n', pos + 1) - pos - 5);
  EXPECT_EQ(value.size(), 19u) << value;  // "0.30000000000000004"
  EXPECT_EQ(std::stod(value), 0.1 + 0.2);
}

TEST(RegistryTest, ClearedGaugeHasNoSampleUntilSet) {
  Registry r;
  Gauge& g = r.gauge("x_expiry_timestamp_seconds", "Expiry.");
  g.clear();
  EXPECT_FALSE(g.present());
  EXPECT_EQ(r.expose(),
            "# HELP x_expiry_timestamp_seconds Expiry.\n"
            "# TYPE x_expiry_timestamp_seconds gauge\n");
  g.set_present(1800000000);
  EXPECT_TRUE(g.present());
  EXPECT_EQ(r.expose(),
            "# HELP x_expiry_timestamp_seconds Expiry.\n"
            "# TYPE x_expiry_timestamp_seconds gauge\n"
            "x_expiry_timestamp_seconds 1800000000\n");
}

TEST(RegistryTest, HistogramBucketsAreCumulative) {
  Registry r;
  Histogram& h = r.histogram("x_duration_seconds", "Duration.", {0.005, 0.1, 1});
  h.observe(0.001);
  h.observe(0.005);  // on the bound: le is inclusive
  h.observe(0.05);
  h.observe(0.5);
  h.observe(7);
  EXPECT_EQ(r.expose(),
            "# HELP x_duration_seconds Duration.\n"
            "# TYPE x_duration_seconds histogram\n"
            "x_duration_seconds_bucket{le=\"0.005\"} 2\n"
            "x_duration_seconds_bucket{le=\"0.1\"} 3\n"
            "x_duration_seconds_bucket{le=\"1\"} 4\n"
            "x_duration_seconds_bucket{le=\"+Inf\"} 5\n"
            "x_duration_seconds_sum 7.556\n"
            "x_duration_seconds_count 5\n");
  std::vector<uint64_t> cumulative;
  double sum = 0;
  uint64_t count = 0;
  h.snapshot(cumulative, sum, count);
  EXPECT_EQ(cumulative, (std::vector<uint64_t>{2, 3, 4, 5}));
  EXPECT_EQ(count, 5u);
  EXPECT_DOUBLE_EQ(sum, 7.556);
}

TEST(RegistryTest, HistogramBoundsAreSortedAndDeduplicated) {
  Histogram h({10, 1, 10, std::numeric_limits<double>::infinity(), 5});
  EXPECT_EQ(h.bounds(), (std::vector<double>{1, 5, 10}));
}

TEST(RegistryTest, EmptyHistogramExposesZeros) {
  Registry r;
  r.histogram("x_batch_events", "Batch.", {1, 10});
  EXPECT_EQ(r.expose(),
            "# HELP x_batch_events Batch.\n"
            "# TYPE x_batch_events histogram\n"
            "x_batch_events_bucket{le=\"1\"} 0\n"
            "x_batch_events_bucket{le=\"10\"} 0\n"
            "x_batch_events_bucket{le=\"+Inf\"} 0\n"
            "x_batch_events_sum 0\n"
            "x_batch_events_count 0\n");
}

TEST(RegistryTest, CounterFamilyChildrenAndStableReferences) {
  Registry r;
  auto& f = r.counter_family("x_rejected_total", "Rejected.", "reason");
  EXPECT_EQ(r.expose(), "# HELP x_rejected_total Rejected.\n# TYPE x_rejected_total counter\n");
  Counter& a = f.with("too_old");
  a.inc(3);
  // Many more children must not move the first one.
  for (int i = 0; i < 100; ++i) f.with("r" + std::to_string(i));
  EXPECT_EQ(&f.with("too_old"), &a);
  f.with("bad_email").inc();
  const std::string text = r.expose();
  EXPECT_NE(text.find("x_rejected_total{reason=\"too_old\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("x_rejected_total{reason=\"bad_email\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("x_rejected_total{reason=\"r99\"} 0\n"), std::string::npos);
}

TEST(RegistryTest, GaugeFamilyOmitsChildrenWithoutSample) {
  Registry r;
  auto& f = r.gauge_family("x_level", "Level.", "queue");
  f.with("a").set(2);
  f.with("b").clear();
  EXPECT_EQ(r.expose(), "# HELP x_level Level.\n# TYPE x_level gauge\nx_level{queue=\"a\"} 2\n");
}

TEST(RegistryTest, HistogramFamilyAddsLeAfterLabel) {
  Registry r;
  auto& f = r.histogram_family("x_latency_seconds", "Latency.", "route", {0.5});
  f.with("/v1/events").observe(0.25);
  EXPECT_EQ(r.expose(),
            "# HELP x_latency_seconds Latency.\n"
            "# TYPE x_latency_seconds histogram\n"
            "x_latency_seconds_bucket{route=\"/v1/events\",le=\"0.5\"} 1\n"
            "x_latency_seconds_bucket{route=\"/v1/events\",le=\"+Inf\"} 1\n"
            "x_latency_seconds_sum{route=\"/v1/events\"} 0.25\n"
            "x_latency_seconds_count{route=\"/v1/events\"} 1\n");
}

TEST(RegistryTest, EscapesHelpAndLabelValues) {
  Registry r;
  auto& f = r.counter_family("x_odd_total", "Back\\slash and\nnewline \"quotes\" stay.", "v");
  f.with("a\"b\\c\nd").inc();
  EXPECT_EQ(r.expose(),
            "# HELP x_odd_total Back\\\\slash and\\nnewline \"quotes\" stay.\n"
            "# TYPE x_odd_total counter\n"
            "x_odd_total{v=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(RegistryTest, RegistrationOrderIsExpositionOrder) {
  Registry r;
  r.gauge("x_second", "2.");
  r.counter("x_first_total", "1.");
  const std::string text = r.expose();
  EXPECT_LT(text.find("x_second"), text.find("x_first_total"));
}

TEST(RegistryTest, RejectsBadRegistrations) {
  Registry r;
  EXPECT_THROW(r.counter("x_requests", "no _total"), std::invalid_argument);
  EXPECT_THROW(r.gauge("1x", "bad name"), std::invalid_argument);
  EXPECT_THROW(r.gauge("x-y", "bad name"), std::invalid_argument);
  EXPECT_THROW(r.counter_family("x_total", "bad label", "__reserved"), std::invalid_argument);
  EXPECT_THROW(r.histogram_family("x_h", "le is reserved", "le", {1}), std::invalid_argument);
  r.gauge("x_once", "first");
  EXPECT_THROW(r.gauge("x_once", "second"), std::invalid_argument);
}

TEST(RegistryTest, ConcurrentUpdatesSumCorrectly) {
  Registry r;
  Counter& c = r.counter("x_hits_total", "Hits.");
  Gauge& g = r.gauge("x_level", "Level.");
  Histogram& h = r.histogram("x_size", "Size.", {0.5, 1.5});
  auto& f = r.counter_family("x_by_total", "By.", "k");
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        c.inc();
        g.add(1);
        h.observe(i % 2);  // 0 or 1: exact in binary, so the sum is exact
        f.with(i % 2 ? "odd" : "even").inc();
      }
      (void)t;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(c.value(), uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(g.value(), double{kThreads} * kPerThread);
  std::vector<uint64_t> cumulative;
  double sum = 0;
  uint64_t count = 0;
  h.snapshot(cumulative, sum, count);
  EXPECT_EQ(count, uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(cumulative[0], uint64_t{kThreads} * kPerThread / 2);
  EXPECT_EQ(sum, double{kThreads} * kPerThread / 2);
  EXPECT_EQ(f.with("odd").value(), uint64_t{kThreads} * kPerThread / 2);
  EXPECT_EQ(f.with("even").value(), uint64_t{kThreads} * kPerThread / 2);
}

TEST(RegistryTest, ExposeWhileUpdating) {
  Registry r;
  Histogram& h = r.histogram("x_v", "V.", {1});
  auto& f = r.counter_family("x_n_total", "N.", "k");
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i) {
      h.observe(i % 3);
      f.with(std::to_string(i % 50)).inc();
    }
  });
  for (int i = 0; i < 200; ++i) {
    const std::string text = r.expose();
    // _count always equals the +Inf bucket, even mid-update.
    const auto inf = text.find("x_v_bucket{le=\"+Inf\"} ");
    const auto cnt = text.find("x_v_count ");
    ASSERT_NE(inf, std::string::npos);
    ASSERT_NE(cnt, std::string::npos);
    const auto inf_v = text.substr(inf + 22, text.find('\n', inf) - inf - 22);
    const auto cnt_v = text.substr(cnt + 10, text.find('\n', cnt) - cnt - 10);
    EXPECT_EQ(inf_v, cnt_v);
  }
  stop = true;
  writer.join();
}

}  // namespace
}  // namespace capi_relay::metrics
