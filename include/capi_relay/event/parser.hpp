#pragma once
// Parses ingest bodies (one JSON object, a JSON array, or NDJSON) with simdjson on-demand and
// validates + normalizes each event (contract §3). Pure and thread-safe per EventParser instance:
// each I/O thread owns one EventParser (it holds a simdjson parser and scratch buffers).
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "capi_relay/common/clock.hpp"
#include "capi_relay/config/config.hpp"
#include "capi_relay/event/event.hpp"

namespace capi_relay {

// What the parser needs from the config: the event-name map and its allowlist of rules.
struct EventRules {
  std::map<std::string, uint64_t, std::less<>> conversions;  // event name -> rule id
  std::set<uint64_t> allowed_rules;                          // values of conversions
  static EventRules from_config(const Config& c);
};

struct ParseOptions {
  int64_t now_ms = 0;              // time of receipt
  bool require_timestamp = false;  // offline upload: a missing timestamp is bad_timestamp
  // At most this many items (events, array elements, NDJSON lines) in one body; 0: no limit. A
  // body with more is kTooManyItems. Each item costs about 0.5 KiB, so without a limit a 1 MiB
  // body of "1\n" lines would cost ~300 MiB (server.max_events_per_request).
  size_t max_items = 0;
};

// One item of a body: accepted (event set) or rejected (reason + message).
struct ParsedItem {
  uint32_t index = 0;  // position in the array, or 0-based line number in NDJSON
  bool ok = false;
  NormalizedEvent event;            // valid when ok
  RejectReason reason{};            // valid when !ok
  std::string error;                // "<reason>: <detail>", valid when !ok; never holds PII
};

enum class BodyStatus {
  kOk,           // items holds one entry per event (accepted or rejected)
  kEmpty,        // empty body, only blank lines, or "[]"
  kUnparseable,  // not JSON and no line of it is JSON (error says why)
  kTooManyItems,  // more than ParseOptions::max_items items; items is empty
};

struct ParsedBody {
  BodyStatus status = BodyStatus::kOk;
  std::string error;  // for kEmpty / kUnparseable
  std::vector<ParsedItem> items;
};

class EventParser {
 public:
  explicit EventParser(const EventRules& rules, RandomSource& random = SystemRandom::instance());
  ~EventParser();
  EventParser(const EventParser&) = delete;
  EventParser& operator=(const EventParser&) = delete;

  // Reads a body: a single JSON value (object or array) when it is one, else NDJSON (blank lines
  // skipped but counted). `padded` says body.data() has at least 64 readable bytes past size()
  // (SIMDJSON_PADDING); otherwise the body is copied into a padded scratch buffer.
  void parse_body(std::string_view body, bool padded, const ParseOptions& opts, ParsedBody& out);

  // Validates and normalizes one already-split JSON object text (used by the CSV/NDJSON upload
  // path and tests). Same rules as parse_body.
  ParsedItem parse_one(std::string_view json, const ParseOptions& opts);

  // Validates and normalizes an event given as flat fields (the CSV columns of contract §2:
  // event, conversion, eventId, timestamp, email, emailSha256, liFatId, acxiomId, moatId,
  // externalId, lead, ip, firstName, lastName, title, companyName, countryCode, amount, currency,
  // consent). An absent field is an empty string_view with present=false.
  struct Field {
    std::string_view value;
    bool present = false;
  };
  struct FlatEvent {
    Field event, conversion, event_id, timestamp, email, email_sha256, li_fat_id, acxiom_id,
        moat_id, external_id, lead, ip, first_name, last_name, title, company_name, country_code,
        amount, currency, consent;
  };
  ParsedItem normalize_flat(const FlatEvent& e, const ParseOptions& opts);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Email normalization (all whitespace removed, lowercased) then SHA-256 lowercase hex. Returns
// false when the address is malformed (bad_email).
bool normalize_and_hash_email(std::string_view email, std::string& out_hex);
// Canonical text of an IPv4 (dotted decimal) or IPv6 (RFC 5952) address; false if not an address.
bool canonical_ip(std::string_view ip, std::string& out);

}  // namespace capi_relay
