#pragma once
// The JSON shape of a dead letter, shared by `capi-relay dlq list --json` and the relay's admin
// endpoints (GET /v1/dead-letters, POST /v1/dead-letters/replay), so both always agree:
//   {"id":N,"eventId":"..","rule":"urn:lla:llaPartnerConversion:N","reason":"rejected",
//    "status":422,"message":"..","time":"2026-01-27T10:00:00Z"}
// "status" is null when there was no HTTP status (expired entries). eventId and rule come from the
// stored record payload (hashed data only); an undecodable payload gives "" for both.
// Pure functions; thread-safe.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "capi_relay/common/result.hpp"
#include "capi_relay/spool/dead_letters.hpp"

namespace capi_relay {

// What a person or script sees of one dead letter.
struct DeadLetterView {
  uint64_t id = 0;
  std::string event_id;
  std::string rule;     // "urn:lla:llaPartnerConversion:N"
  std::string reason;   // "rejected" | "expired"
  int status = 0;       // 0: none
  std::string message;
  std::string time;     // RFC 3339, UTC
};

DeadLetterView dead_letter_view(const DeadLetter& d);
// Appends one object (the shape above).
void append_dead_letter_json(std::string& out, const DeadLetterView& v);
void append_dead_letter_json(std::string& out, const DeadLetter& d);
// GET /v1/dead-letters body: {"dead_letters":[...]}.
std::string dead_letters_response_json(std::span<const DeadLetter> entries);
// Parses that body back (the CLI talking to a running relay).
Result<std::vector<DeadLetterView>> parse_dead_letters_response(std::string_view body);

// POST /v1/dead-letters/replay body: {"ids":[1,2],"reason":"rejected"} (both optional; an empty
// body means everything).
Result<DeadLetterFilter> parse_replay_request(std::string_view body);
std::string replay_request_json(const DeadLetterFilter& f);
// Its answer: {"replayed":N}.
std::string replay_response_json(uint64_t replayed);

}  // namespace capi_relay
