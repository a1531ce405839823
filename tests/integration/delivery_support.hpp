#pragma once
// Shared by the delivery, crash and backlog integration tests: their relay config, event
// bodies, and ScriptedUpstream — the in-process fake LinkedIn with a fault script that keeps
// track of which eventIds LinkedIn actually accepted (a 2xx element status), so a test can prove
// "every acknowledged event arrived" under faults that make the relay resend.
//
// Threading: ScriptedUpstream's script runs on the fake's I/O thread; every accessor locks.
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "fakes/fake_linkedin.hpp"
#include "fakes/relay_config.hpp"
#include "fakes/relay_process.hpp"
#include "fakes/test_events.hpp"

namespace capi_relay::testing {

inline int64_t mono_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The delivery tests' config: every upload knob spelled out (a 1 GiB spool with batch fsync,
// batches of up to 5000, 2 in flight, 2 s connect / 5 s response timeouts, a 5 min pause
// recheck) on top of RelayConfig's defaults (100 ms flushes, backoff 50..200 ms).
inline RelayConfig delivery_config(const std::string& api_base) {
  RelayConfig c;
  c.api_base = api_base;
  c.max_bytes = "1GiB";
  c.fsync = "batch";
  c.batch_max_events = 5000;
  c.max_in_flight = 2;
  c.connect_timeout = "2s";
  c.response_timeout = "5s";
  c.pause_recheck = "5m";
  return c;
}

// A purchase worth 9.50 EUR; the email defaults to <id>@example.com.
inline std::string event_line(const std::string& id, int64_t ts, const std::string& email = "") {
  return event_json(id, email.empty() ? id + "@example.com" : email, ts,
                    EventValue{"9.50", "EUR"});
}

inline std::string ndjson(const std::vector<std::string>& ids, int64_t ts) {
  std::string body;
  for (const auto& id : ids) body += event_line(id, ts) + "\n";
  return body;
}

// Per-element statuses of a 2xx BATCH_CREATE answer, in order.
inline std::vector<int> response_statuses(std::string_view body) {
  std::vector<int> out;
  constexpr std::string_view kKey = "\"status\":";
  for (size_t p = body.find(kKey); p != std::string_view::npos; p = body.find(kKey, p)) {
    p += kKey.size();
    out.push_back(std::atoi(std::string(body.substr(p, 4)).c_str()));
  }
  return out;
}

inline FakeResponse status_response(int status, const std::string& body = "",
                                    std::map<std::string, std::string> headers = {}) {
  FakeResponse r;
  r.status = status;
  r.body = body.empty() ? "{\"status\":" + std::to_string(status) + ",\"message\":\"scripted\"}"
                        : body;
  r.headers = std::move(headers);
  return r;
}

class ScriptedUpstream {
 public:
  // Returns the answer for a conversionEvents request, or nullopt for the default (accept all).
  using Script = std::function<std::optional<FakeResponse>(const FakeRequest&)>;
  // Answers anything else (e.g. the OAuth token endpoint); nullopt: 404.
  using OtherScript = std::function<std::optional<FakeResponse>(const FakeRequest&)>;

  struct Exchange {
    int64_t at_mono_ms = 0;  // when the request arrived
    int64_t at_wall_ms = 0;
    int status = 0;          // what the script answered (0: dropped)
    size_t elements = 0;
    std::string authorization;
  };

  explicit ScriptedUpstream(bool keep_request_bodies = true) {
    fake_.set_responder([this, keep_request_bodies](const FakeRequest& req) {
      FakeResponse r = answer(req);
      if (!keep_request_bodies) fake_.clear();
      return r;
    });
  }

  std::string base_url() const { return fake_.base_url(); }
  FakeLinkedIn& fake() { return fake_; }

  void set_script(Script s) {
    std::lock_guard lock(mu_);
    script_ = std::move(s);
  }
  void set_other(OtherScript s) {
    std::lock_guard lock(mu_);
    other_ = std::move(s);
  }

  std::set<std::string> accepted() const {
    std::lock_guard lock(mu_);
    return accepted_;
  }
  size_t accepted_count() const {
    std::lock_guard lock(mu_);
    return accepted_.size();
  }
  // Elements answered 2xx, counting repeats (at-least-once: >= accepted_count()).
  uint64_t accepted_elements() const {
    std::lock_guard lock(mu_);
    return accepted_elements_;
  }
  std::vector<Exchange> exchanges() const {
    std::lock_guard lock(mu_);
    return exchanges_;
  }
  // conversionEvents requests that arrived in [from, to) (steady ms).
  size_t requests_between(int64_t from, int64_t to) const {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& e : exchanges_) n += e.at_mono_ms >= from && e.at_mono_ms < to;
    return n;
  }
  size_t requests() const {
    std::lock_guard lock(mu_);
    return exchanges_.size();
  }
  // How many times an eventId was sent (any answer).
  size_t times_sent(const std::string& id) const {
    std::lock_guard lock(mu_);
    auto it = sent_.find(id);
    return it == sent_.end() ? 0 : it->second;
  }

 private:
  FakeResponse answer(const FakeRequest& req) {
    std::lock_guard lock(mu_);
    if (req.method != "POST" || req.target.rfind("/rest/conversionEvents", 0) != 0) {
      if (other_) {
        if (auto r = other_(req)) return *r;
      }
      return status_response(404, "{\"status\":404,\"message\":\"Not Found\"}");
    }
    std::optional<FakeResponse> scripted = script_ ? script_(req) : std::nullopt;
    FakeResponse r = scripted ? *scripted : FakeLinkedIn::accept_all(req);
    const std::vector<std::string> ids = body_event_ids(req.body);
    for (const auto& id : ids) ++sent_[id];
    Exchange e;
    e.at_mono_ms = mono_ms();
    e.at_wall_ms = now_ms();
    e.status = r.drop_connection ? 0 : r.status;
    e.elements = ids.size();
    auto auth = req.headers.find("authorization");
    if (auth != req.headers.end()) e.authorization = auth->second;
    exchanges_.push_back(e);
    // A script that delays a 2xx past the relay's response_timeout would over-count: don't.
    if (r.drop_connection || r.status < 200 || r.status >= 300) return r;
    const std::vector<int> statuses = response_statuses(r.body);
    for (size_t i = 0; i < ids.size(); ++i) {
      const int s = i < statuses.size() ? statuses[i] : r.status;
      if (s >= 200 && s < 300) {
        accepted_.insert(ids[i]);
        ++accepted_elements_;
      }
    }
    return r;
  }

  mutable std::mutex mu_;
  Script script_;
  OtherScript other_;
  std::set<std::string> accepted_;
  uint64_t accepted_elements_ = 0;
  std::map<std::string, size_t> sent_;
  std::vector<Exchange> exchanges_;
  FakeLinkedIn fake_;  // last: its I/O thread stops before the state the responder uses
};

}  // namespace capi_relay::testing
