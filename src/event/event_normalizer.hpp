#pragma once
// Private to the event component: the one validation + normalization routine of contract §3.
// Both input paths feed it: the JSON reader (relay shape and LinkedIn element shape) and the flat
// CSV fields of EventParser::normalize_flat. Each fills a RawEvent of string_views into its own
// buffers; EventNormalizer turns it into a NormalizedEvent or a rejection.
#include <cstdint>
#include <string>
#include <string_view>

#include "capi_relay/common/clock.hpp"
#include "capi_relay/event/parser.hpp"

namespace capi_relay::event_internal {

// How a field arrived. kAbsent also covers JSON null.
enum class FieldKind : uint8_t { kAbsent, kString, kNumber, kBool, kOther };

struct RawField {
  std::string_view text;  // string contents (unescaped), number token, or "true"/"false"
  FieldKind kind = FieldKind::kAbsent;
  bool present() const { return kind != FieldKind::kAbsent; }
};

// One event as read, before any validation. The views point into the reader's buffers and must
// outlive EventNormalizer::normalize.
struct RawEvent {
  RawField event, conversion, event_id, timestamp, amount, currency, consent;
  RawField email, email_sha256, ip, ip_sha256, li_fat_id, acxiom_id, moat_id, external_id, lead;
  RawField first_name, last_name, title, company_name, country_code;
  // CSV: consent may be true/false/1/0/yes/no in any case (JSON takes only a boolean).
  bool consent_as_text = false;
  // A wrong container type met while reading (e.g. "user" not an object): the first one wins.
  bool shape_error = false;
  RejectReason shape_reason{};
  std::string_view shape_detail;  // static text

  void set_shape_error(RejectReason r, std::string_view detail) {
    if (shape_error) return;
    shape_error = true;
    shape_reason = r;
    shape_detail = detail;
  }
};

// Sets every field of item to its empty state, keeping string capacity for reuse.
void reset_item(ParsedItem& item);
// Marks item rejected with "<reason>: <detail>".
void reject(ParsedItem& item, RejectReason r, std::string_view detail);

// Validates a RawEvent against the rules and fills a ParsedItem. Owns scratch buffers reused
// across events (no allocation per event besides the output strings). Not thread-safe: one per
// EventParser.
class EventNormalizer {
 public:
  EventNormalizer(EventRules rules, RandomSource& random);

  // item must have been reset (reset_item); its index is left as is.
  void normalize(const RawEvent& raw, const ParseOptions& opts, ParsedItem& item);

 private:
  bool resolve_rule(const RawEvent& raw, ParsedItem& item, uint64_t& rule);
  bool read_timestamp(const RawField& f, int64_t& ms);
  void derive_event_id(NormalizedEvent& e, int64_t client_ms);
  void random_event_id(NormalizedEvent& e);

  EventRules rules_;
  RandomSource& random_;
  std::string ip_text_;    // canonical IP text before hashing
  std::string canonical_;  // serialization hashed into derived event IDs
};

}  // namespace capi_relay::event_internal
