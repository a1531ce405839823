#include "capi_relay/ingest/event_ledger.hpp"

#include <ctime>

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
std::string rfc3339(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}
}  // namespace

void EventLedger::record(std::string_view event_id, uint64_t rule_id, EventState state,
                         int64_t at_ms) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(std::string(event_id));
  if (it == entries_.end()) {
    if (state != EventState::kPending && state != EventState::kDuplicate) return;  // forgotten
    if (order_.size() >= capacity_) {
      entries_.erase(order_.front());
      order_.pop_front();
    }
    it = entries_.emplace(std::string(event_id), std::vector<RuleEntry>{}).first;
    order_.push_back(it->first);
  }
  for (auto& e : it->second) {
    if (e.rule_id != rule_id) continue;
    if (state == EventState::kDuplicate) {
      ++e.duplicates;
    } else {
      e.state = state;
    }
    e.updated_ms = at_ms;
    return;
  }
  it->second.push_back(RuleEntry{rule_id, state, state == EventState::kDuplicate ? 1u : 0u,
                                 at_ms, at_ms});
}

std::optional<std::string> EventLedger::describe(std::string_view event_id) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(std::string(event_id));
  if (it == entries_.end()) return std::nullopt;
  std::string b = "{\"eventId\":";
  append_json_string(b, event_id);
  b += ",\"rules\":{";
  bool first = true;
  for (const auto& e : it->second) {
    if (!first) b += ",";
    first = false;
    b += "\"urn:lla:llaPartnerConversion:" + std::to_string(e.rule_id) + "\":{\"state\":\"";
    b += event_state_name(e.state);
    b += "\",\"received_at\":" + rfc3339(e.first_ms) + ",\"updated_at\":" + rfc3339(e.updated_ms) +
         ",\"duplicates\":" + std::to_string(e.duplicates) + "}";
  }
  b += "}}";
  return b;
}

size_t EventLedger::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace capi_relay
