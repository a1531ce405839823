#pragma once
// The metrics registry and Prometheus text exposition (format 0.0.4). Metrics are registered once
// at start-up; the hot path holds references and bumps them with relaxed atomics (no lookups, no
// locks). Families with one label create their children up front or on first use (under a mutex,
// never on the hot path). Thread-safe.
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace capi_relay::metrics {

class Counter {
 public:
  void inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void set(double v) { v_.store(v, std::memory_order_relaxed); }
  void add(double d);
  double value() const { return v_.load(std::memory_order_relaxed); }
  // A gauge without a sample (e.g. token expiry while unknown) is left out of the exposition.
  void clear() { has_.store(false, std::memory_order_relaxed); }
  void set_present(double v) {
    set(v);
    has_.store(true, std::memory_order_relaxed);
  }
  bool present() const { return has_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
  std::atomic<bool> has_{true};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // Snapshot: cumulative counts per bound (+Inf last), sum, count.
  void snapshot(std::vector<uint64_t>& cumulative, double& sum, uint64_t& count) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

template <class M>
class Family {
 public:
  // Child for one label value; created on first use; the reference stays valid forever.
  M& with(std::string_view label_value);

 private:
  friend class Registry;
  std::string label_;
  std::vector<double> bounds_;  // histograms only
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<M>, std::less<>> children_;
};

class Registry {
 public:
  Registry();
  ~Registry();  // out of line: Entry is complete only in registry.cpp
  Counter& counter(std::string name, std::string help);
  Gauge& gauge(std::string name, std::string help);
  Histogram& histogram(std::string name, std::string help, std::vector<double> bounds);
  Family<Counter>& counter_family(std::string name, std::string help, std::string label);
  Family<Gauge>& gauge_family(std::string name, std::string help, std::string label);
  Family<Histogram>& histogram_family(std::string name, std::string help, std::string label,
                                      std::vector<double> bounds);
  // Prometheus text exposition format 0.0.4 (HELP, TYPE, samples; label values escaped).
  std::string expose() const;

 private:
  struct Entry;
  mutable std::mutex mu_;
  std::deque<std::unique_ptr<Entry>> entries_;  // registration order
};

}  // namespace capi_relay::metrics
