#pragma once
// EventLedger: what became of recent events, for GET /v1/events/{eventId}. It is a log of the
// last `capacity` state changes (accepted as pending, duplicate, uploaded, dead-lettered), kept in
// a ring of fixed-size slots in memory; describe() folds the changes of one event ID per rule.
// Recording is an append under an uncontended mutex — no lookup on the hot path, no allocation
// once the ring is full — and the rare describe() scans the ring (about a millisecond at the
// default capacity). It holds event IDs only — no identifiers — and nothing of it is written to
// disk. An event whose acceptance scrolled out of the ring still shows its later changes, without
// `received_at`.
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace capi_relay {

enum class EventState : uint8_t { kPending, kUploaded, kDuplicate, kDeadLettered };
std::string_view event_state_name(EventState s);

class EventLedger {
 public:
  // About 88 bytes per change, touched only as the ring fills (8.4 MiB at the default).
  explicit EventLedger(size_t capacity = 100'000);
  // Records that (eventId, rule) reached `state` at `at_ms`. kDuplicate counts a duplicate post
  // and keeps the state the event had.
  void record(std::string_view event_id, uint64_t rule_id, EventState state, int64_t at_ms);
  // {"eventId":"..","rules":{"urn:lla:llaPartnerConversion:N":{"state":"uploaded",
  //   "received_at":"..","updated_at":"..","duplicates":N}}}, or nullopt when unknown.
  std::optional<std::string> describe(std::string_view event_id) const;
  size_t size() const;  // state changes held

 private:
  // IDs up to kInlineId bytes are kept whole; a longer one (up to 64 characters may take up to
  // 256 bytes) keeps its first kInlineId - 8 bytes and a 64-bit hash of the whole.
  static constexpr size_t kInlineId = 64;
  struct Change {
    int64_t at_ms;
    uint64_t rule_id;
    uint16_t id_len;
    EventState state;
    char id[kInlineId];
  };
  static void store_id(Change& c, std::string_view id);
  static bool same_id(const Change& c, std::string_view id);

  size_t capacity_;
  mutable std::mutex mu_;
  std::vector<Change> ring_;  // grows to capacity_, then wraps at next_
  size_t next_ = 0;
};

}  // namespace capi_relay
