#pragma once
// EventLedger: what became of recent events, for GET /v1/events/{eventId}. Keeps the last
// `capacity` event IDs in memory (oldest forgotten first); per ID, one entry per rule with its
// state (pending, uploaded, duplicate, dead_lettered) and times. It holds event IDs only — no
// identifiers — and nothing of it is written to disk. Thread-safe (one mutex; a few hundred
// nanoseconds per accepted event).
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace capi_relay {

enum class EventState : uint8_t { kPending, kUploaded, kDuplicate, kDeadLettered };
std::string_view event_state_name(EventState s);

class EventLedger {
 public:
  explicit EventLedger(size_t capacity = 50'000) : capacity_(capacity) {}
  // Records a state for (eventId, rule) at time `at_ms`. A duplicate post of an event whose entry
  // exists keeps the entry's state and counts the duplicate.
  void record(std::string_view event_id, uint64_t rule_id, EventState state, int64_t at_ms);
  // {"eventId":"..","rules":{"urn:lla:llaPartnerConversion:N":{"state":"uploaded",
  //   "received_at":"..","updated_at":"..","duplicates":N}}}, or nullopt when unknown.
  std::optional<std::string> describe(std::string_view event_id) const;
  size_t size() const;

 private:
  struct RuleEntry {
    uint64_t rule_id;
    EventState state;
    uint32_t duplicates;
    int64_t first_ms;
    int64_t updated_ms;
  };
  size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::vector<RuleEntry>> entries_;
  std::deque<std::string> order_;  // insertion order, for eviction
};

}  // namespace capi_relay
