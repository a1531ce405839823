#pragma once
// Relay-shape events for integration tests, and what the fake LinkedIn received of them.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fakes/fake_linkedin.hpp"

namespace capi_relay::testing {

inline constexpr int64_t kOneMinuteMs = 60'000;

// Wall-clock time in ms since the Unix epoch (what an event's "timestamp" holds).
int64_t now_ms();

// An event's "value": {"amount":...,"currency":...}.
struct EventValue {
  std::string amount;
  std::string currency;
};

// One event as the relay's ingest API takes it, as JSON text:
// {"event":name,"eventId":id,"timestamp":ts_ms[,"value":{...}],"user":{"email":email}}.
// The defaults make a purchase by a@example.com one minute ago, without a value.
std::string event_json(const std::string& id, const std::string& email = "a@example.com",
                       int64_t ts_ms = now_ms() - kOneMinuteMs,
                       const std::optional<EventValue>& value = std::nullopt,
                       const std::string& name = "purchase");

// Every "eventId":"..." value of a body, in order (a plain scan: bodies can be MBs).
std::vector<std::string> body_event_ids(std::string_view body);

// The eventIds of every element the fake received on /rest/conversionEvents, in order and with
// repeats.
std::vector<std::string> received_event_ids(const FakeLinkedIn& fake);

// How many times the fake received each eventId on /rest/conversionEvents.
std::map<std::string, int> received_event_counts(const FakeLinkedIn& fake);

}  // namespace capi_relay::testing
