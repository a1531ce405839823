#include "capi_relay/ingest/event_ledger.hpp"

#include <algorithm>
#include <cstring>
#include <ctime>
#include <functional>

#include "capi_relay/common/json_text.hpp"

namespace capi_relay {

std::string_view event_state_name(EventState s) {
  switch (s) {
    case EventState::kPending: return "pending";
    case EventState::kUploaded: return "uploaded";
    case EventState::kDuplicate: return "duplicate";
    case EventState::kDeadLettered: return "dead_lettered";
  }
  return "pending";
}

namespace {
void append_rfc3339(std::string& out, int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  out += buf;
}
}  // namespace

EventLedger::EventLedger(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {
  ring_.reserve(capacity_);  // address space only: pages are touched as the ring fills
}

void EventLedger::store_id(Change& c, std::string_view id) {
  c.id_len = static_cast<uint16_t>(std::min<size_t>(id.size(), UINT16_MAX));
  if (id.size() <= kInlineId) {
    std::memcpy(c.id, id.data(), id.size());
    return;
  }
  const uint64_t h = std::hash<std::string_view>{}(id);
  std::memcpy(c.id, id.data(), kInlineId - sizeof h);
  std::memcpy(c.id + kInlineId - sizeof h, &h, sizeof h);
}

bool EventLedger::same_id(const Change& c, std::string_view id) {
  if (c.id_len != std::min<size_t>(id.size(), UINT16_MAX)) return false;
  if (id.size() <= kInlineId) return std::memcmp(c.id, id.data(), id.size()) == 0;
  if (std::memcmp(c.id, id.data(), kInlineId - sizeof(uint64_t)) != 0) return false;
  const uint64_t h = std::hash<std::string_view>{}(id);
  return std::memcmp(c.id + kInlineId - sizeof h, &h, sizeof h) == 0;
}

void EventLedger::record(std::string_view event_id, uint64_t rule_id, EventState state,
                         int64_t at_ms) {
  std::lock_guard lock(mu_);
  Change* c;
  if (ring_.size() < capacity_) {
    c = &ring_.emplace_back();
  } else {
    c = &ring_[next_];
    next_ = next_ + 1 == capacity_ ? 0 : next_ + 1;
  }
  c->at_ms = at_ms;
  c->rule_id = rule_id;
  c->state = state;
  store_id(*c, event_id);
}

std::optional<std::string> EventLedger::describe(std::string_view event_id) const {
  struct Rule {
    uint64_t rule_id;
    EventState state = EventState::kPending;
    bool known_state = false;
    uint32_t duplicates = 0;
    int64_t first_ms = -1;  // -1: the acceptance scrolled out of the ring
    int64_t updated_ms = 0;
  };
  std::vector<Rule> rules;
  {
    std::lock_guard lock(mu_);
    const size_t n = ring_.size();
    const size_t start = n < capacity_ ? 0 : next_;  // oldest first
    for (size_t k = 0; k < n; ++k) {
      const Change& c = ring_[(start + k) % n];
      if (!same_id(c, event_id)) continue;
      auto it = std::find_if(rules.begin(), rules.end(),
                             [&](const Rule& r) { return r.rule_id == c.rule_id; });
      if (it == rules.end()) it = rules.insert(rules.end(), Rule{c.rule_id});
      // The state is the last change other than a duplicate post; an event known only by
      // duplicate posts (its acceptance predates the ring) shows as a duplicate.
      if (c.state == EventState::kDuplicate) {
        ++it->duplicates;
        if (!it->known_state) it->state = EventState::kDuplicate;
      } else {
        it->state = c.state;
        it->known_state = true;
      }
      if (it->first_ms < 0 &&
          (c.state == EventState::kPending || c.state == EventState::kDuplicate))
        it->first_ms = c.at_ms;
      it->updated_ms = c.at_ms;
    }
  }
  if (rules.empty()) return std::nullopt;
  std::string b = "{\"eventId\":";
  append_json_string(b, event_id);
  b += ",\"rules\":{";
  bool first = true;
  for (const auto& r : rules) {
    if (!first) b += ",";
    first = false;
    b += "\"urn:lla:llaPartnerConversion:" + std::to_string(r.rule_id) + "\":{\"state\":\"";
    b += event_state_name(r.state);
    b += "\"";
    if (r.first_ms >= 0) {
      b += ",\"received_at\":";
      append_rfc3339(b, r.first_ms);
    }
    b += ",\"updated_at\":";
    append_rfc3339(b, r.updated_ms);
    b += ",\"duplicates\":" + std::to_string(r.duplicates) + "}";
  }
  b += "}}";
  return b;
}

size_t EventLedger::size() const {
  std::lock_guard lock(mu_);
  return ring_.size();
}

}  // namespace capi_relay
