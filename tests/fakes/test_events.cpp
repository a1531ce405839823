#include "fakes/test_events.hpp"

#include <chrono>

namespace capi_relay::testing {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string event_json(const std::string& id, const std::string& email, int64_t ts_ms,
                       const std::optional<EventValue>& value, const std::string& name) {
  std::string json = "{\"event\":\"" + name + "\",\"eventId\":\"" + id +
                     "\",\"timestamp\":" + std::to_string(ts_ms);
  if (value)
    json += ",\"value\":{\"amount\":\"" + value->amount + "\",\"currency\":\"" + value->currency +
            "\"}";
  return json + ",\"user\":{\"email\":\"" + email + "\"}}";
}

std::vector<std::string> body_event_ids(std::string_view body) {
  std::vector<std::string> ids;
  constexpr std::string_view kKey = "\"eventId\":\"";
  for (size_t p = body.find(kKey); p != std::string_view::npos; p = body.find(kKey, p)) {
    p += kKey.size();
    const size_t end = body.find('"', p);
    if (end == std::string_view::npos) break;
    ids.emplace_back(body.substr(p, end - p));
    p = end;
  }
  return ids;
}

std::vector<std::string> received_event_ids(const FakeLinkedIn& fake) {
  std::vector<std::string> ids;
  for (const auto& r : fake.requests()) {
    if (r.target.find("/rest/conversionEvents") == std::string::npos) continue;
    for (auto& id : body_event_ids(r.body)) ids.push_back(std::move(id));
  }
  return ids;
}

std::map<std::string, int> received_event_counts(const FakeLinkedIn& fake) {
  std::map<std::string, int> counts;
  for (const auto& id : received_event_ids(fake)) ++counts[id];
  return counts;
}

}  // namespace capi_relay::testing
