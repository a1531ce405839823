// Registry, metric types and the Prometheus text exposition (format 0.0.4).
#include "capi_relay/metrics/registry.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <type_traits>

namespace capi_relay::metrics {
namespace {

// Adds d to an atomic<double> (no fetch_add for floating point before C++20 libstdc++ 13).
void atomic_add(std::atomic<double>& a, double d) {
  double cur = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(cur, cur + d, std::memory_order_relaxed,
                                  std::memory_order_relaxed)) {
  }
}

bool valid_metric_name(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool valid_label_name(std::string_view s) {
  if (s.empty() || s.find(':') != std::string_view::npos || s.starts_with("__")) return false;
  return valid_metric_name(s);
}

// Numbers as Prometheus parses them: integers without exponent, otherwise the shortest text that
// round-trips, and the spellings +Inf, -Inf, NaN.
void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[64];
  std::to_chars_result r;
  if (v == std::trunc(v) && std::fabs(v) < 1e15) {
    r = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(v));
  } else {
    r = std::to_chars(buf, buf + sizeof buf, v);
  }
  out.append(buf, r.ptr);
}

void append_number(std::string& out, uint64_t v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void append_help_escaped(std::string& out, std::string_view s) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

void append_label_escaped(std::string& out, std::string_view s) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

// `{label="value"` without the closing brace, so a histogram can add `,le="..."`; empty when the
// metric has no label.
std::string label_prefix(std::string_view label, std::string_view value) {
  std::string s;
  if (label.empty()) return s;
  s += '{';
  s += label;
  s += "=\"";
  append_label_escaped(s, value);
  s += '"';
  return s;
}

void close_labels(std::string& out, std::string_view prefix) {
  if (!prefix.empty()) {
    out += prefix;
    out += '}';
  }
}

void expose_counter(std::string& out, const std::string& name, std::string_view prefix,
                    const Counter& c) {
  out += name;
  close_labels(out, prefix);
  out += ' ';
  append_number(out, c.value());
  out += '\n';
}

void expose_gauge(std::string& out, const std::string& name, std::string_view prefix,
                  const Gauge& g) {
  if (!g.present()) return;
  out += name;
  close_labels(out, prefix);
  out += ' ';
  append_number(out, g.value());
  out += '\n';
}

void expose_histogram(std::string& out, const std::string& name, std::string_view prefix,
                      const Histogram& h) {
  std::vector<uint64_t> cumulative;
  double sum = 0;
  uint64_t count = 0;
  h.snapshot(cumulative, sum, count);
  const auto& bounds = h.bounds();
  for (size_t i = 0; i < cumulative.size(); ++i) {
    out += name;
    out += "_bucket";
    if (prefix.empty()) {
      out += '{';
    } else {
      out += prefix;
      out += ',';
    }
    out += "le=\"";
    append_number(out, i < bounds.size() ? bounds[i] : INFINITY);
    out += "\"} ";
    append_number(out, cumulative[i]);
    out += '\n';
  }
  out += name;
  out += "_sum";
  close_labels(out, prefix);
  out += ' ';
  append_number(out, sum);
  out += '\n';
  out += name;
  out += "_count";
  close_labels(out, prefix);
  out += ' ';
  append_number(out, count);
  out += '\n';
}

std::vector<double> normalize_bounds(std::vector<double> b) {
  // +Inf is implicit; NaN is no bound. Sorted and unique so observe() can scan in order.
  std::erase_if(b, [](double v) { return std::isnan(v) || (std::isinf(v) && v > 0); });
  std::sort(b.begin(), b.end());
  b.erase(std::unique(b.begin(), b.end()), b.end());
  return b;
}

}  // namespace

void Gauge::add(double d) { atomic_add(v_, d); }

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(normalize_bounds(std::move(upper_bounds))),
      buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::observe(double v) {
  // Few bounds: a forward scan beats a binary search. NaN lands in +Inf.
  size_t i = 0;
  const size_t n = bounds_.size();
  while (i < n && !(v <= bounds_[i])) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  atomic_add(sum_, v);
  count_.fetch_add(1, std::memory_order_relaxed);
}

void Histogram::snapshot(std::vector<uint64_t>& cumulative, double& sum, uint64_t& count) const {
  // The count is derived from the buckets (not count_) so that `_count` always equals the +Inf
  // bucket even while observe() runs concurrently.
  cumulative.assign(bounds_.size() + 1, 0);
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    acc += buckets_[i].load(std::memory_order_relaxed);
    cumulative[i] = acc;
  }
  sum = sum_.load(std::memory_order_relaxed);
  count = acc;
}

template <class M>
M& Family<M>::with(std::string_view label_value) {
  std::lock_guard lock(mu_);
  auto it = children_.find(label_value);
  if (it == children_.end()) {
    std::unique_ptr<M> child;
    if constexpr (std::is_same_v<M, Histogram>) {
      child = std::make_unique<Histogram>(bounds_);
    } else {
      child = std::make_unique<M>();
    }
    it = children_.emplace(std::string(label_value), std::move(child)).first;
  }
  return *it->second;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

enum class Kind : uint8_t { kCounter, kGauge, kHistogram };

// One registered name. Exactly one of the pointers is set.
struct Registry::Entry {
  Entry(std::string n, std::string h, Kind k) : name(std::move(n)), help(std::move(h)), kind(k) {}
  std::string name;
  std::string help;
  Kind kind;
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<Histogram> histogram;
  std::unique_ptr<Family<Counter>> counter_family;
  std::unique_ptr<Family<Gauge>> gauge_family;
  std::unique_ptr<Family<Histogram>> histogram_family;
};

Registry::Registry() = default;
Registry::~Registry() = default;

namespace {

// Registration happens at start-up: a bad name is a programming error, reported by exception.
void check_registration(std::string_view name, Kind kind, std::string_view label) {
  if (!valid_metric_name(name)) {
    throw std::invalid_argument("invalid metric name: " + std::string(name));
  }
  if (kind == Kind::kCounter && !name.ends_with("_total")) {
    throw std::invalid_argument("counter name must end in _total: " + std::string(name));
  }
  if (!label.empty() && (!valid_label_name(label) || (kind == Kind::kHistogram && label == "le"))) {
    throw std::invalid_argument("invalid label name: " + std::string(label));
  }
}

// A name registered twice would expose two families under one name (promtool rejects that).
template <class Entries>
void check_unique(const Entries& entries, std::string_view name) {
  for (const auto& e : entries) {
    if (e->name == name) throw std::invalid_argument("metric registered twice: " + std::string(name));
  }
}

}  // namespace

Counter& Registry::counter(std::string name, std::string help) {
  check_registration(name, Kind::kCounter, "");
  auto e = std::make_unique<Entry>(std::move(name), std::move(help), Kind::kCounter);
  e->counter = std::make_unique<Counter>();
  Counter& ref = *e->counter;
  std::lock_guard lock(mu_);
  check_unique(entries_, e->name);
  entries_.push_back(std::move(e));
  return ref;
}

Gauge& Registry::gauge(std::string name, std::string help) {
  check_registration(name, Kind::kGauge, "");
  auto e = std::make_unique<Entry>(std::move(name), std::move(help), Kind::kGauge);
  e->gauge = std::make_unique<Gauge>();
  Gauge& ref = *e->gauge;
  std::lock_guard lock(mu_);
  check_unique(entries_, e->name);
  entries_.push_back(std::move(e));
  return ref;
}

Histogram& Registry::histogram(std::string name, std::string help, std::vector<double> bounds) {
  check_registration(name, Kind::kHistogram, "");
  auto e = std::make_unique<Entry>(std::move(name), std::move(help), Kind::kHistogram);
  e->histogram = std::make_unique<Histogram>(std::move(bounds));
  Histogram& ref = *e->histogram;
  std::lock_guard lock(mu_);
  check_unique(entries_, e->name);
  entries_.push_back(std::move(e));
  return ref;
}

Family<Counter>& Registry::counter_family(std::string name, std::string help, std::string label) {
  check_registration(name, Kind::kCounter, label);
  auto e = std::make_unique<Entry>(std::move(name), std::move(help), Kind::kCounter);
  e->counter_family = std::make_unique<Family<Counter>>();
  e->counter_family->label_ = std::move(label);
  Family<Counter>& ref = *e->counter_family;
  std::lock_guard lock(mu_);
  check_unique(entries_, e->name);
  entries_.push_back(std::move(e));
  return ref;
}

Family<Gauge>& Registry::gauge_family(std::string name, std::string help, std::string label) {
  check_registration(name, Kind::kGauge, label);
  auto e = std::make_unique<Entry>(std::move(name), std::move(help), Kind::kGauge);
  e->gauge_family = std::make_unique<Family<Gauge>>();
  e->gauge_family->label_ = std::move(label);
  Family<Gauge>& ref = *e->gauge_family;
  std::lock_guard lock(mu_);
  check_unique(entries_, e->name);
  entries_.push_back(std::move(e));
  return ref;
}

Family<Histogram>& Registry::histogram_family(std::string name, std::string help,
                                              std::string label, std::vector<double> bounds) {
  check_registration(name, Kind::kHistogram, label);
  auto e = std::make_unique<Entry>(std::move(name), std::move(help), Kind::kHistogram);
  e->histogram_family = std::make_unique<Family<Histogram>>();
  e->histogram_family->label_ = std::move(label);
  e->histogram_family->bounds_ = normalize_bounds(std::move(bounds));
  Family<Histogram>& ref = *e->histogram_family;
  std::lock_guard lock(mu_);
  check_unique(entries_, e->name);
  entries_.push_back(std::move(e));
  return ref;
}

namespace {

template <class M, class ExposeOne>
void expose_family(std::string& out, const std::string& name, const std::string& label,
                   const std::map<std::string, std::unique_ptr<M>, std::less<>>& children,
                   ExposeOne expose_one) {
  for (const auto& [value, child] : children) {
    expose_one(out, name, label_prefix(label, value), *child);
  }
}

}  // namespace

std::string Registry::expose() const {
  std::string out;
  out.reserve(16 * 1024);
  std::lock_guard lock(mu_);
  for (const auto& e : entries_) {
    out += "# HELP ";
    out += e->name;
    out += ' ';
    append_help_escaped(out, e->help);
    out += "\n# TYPE ";
    out += e->name;
    switch (e->kind) {
      case Kind::kCounter: out += " counter\n"; break;
      case Kind::kGauge: out += " gauge\n"; break;
      case Kind::kHistogram: out += " histogram\n"; break;
    }
    if (e->counter) expose_counter(out, e->name, "", *e->counter);
    if (e->gauge) expose_gauge(out, e->name, "", *e->gauge);
    if (e->histogram) expose_histogram(out, e->name, "", *e->histogram);
    if (e->counter_family) {
      std::lock_guard fl(e->counter_family->mu_);
      expose_family(out, e->name, e->counter_family->label_, e->counter_family->children_,
                    expose_counter);
    }
    if (e->gauge_family) {
      std::lock_guard fl(e->gauge_family->mu_);
      expose_family(out, e->name, e->gauge_family->label_, e->gauge_family->children_,
                    expose_gauge);
    }
    if (e->histogram_family) {
      std::lock_guard fl(e->histogram_family->mu_);
      expose_family(out, e->name, e->histogram_family->label_, e->histogram_family->children_,
                    expose_histogram);
    }
  }
  return out;
}

}  // namespace capi_relay::metrics
