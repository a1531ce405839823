// Rejection reason labels and the rule table the parser checks events against.
#include <array>

#include "capi_relay/event/event.hpp"
#include "capi_relay/event/parser.hpp"

namespace capi_relay {

namespace {
constexpr std::array<std::string_view, static_cast<size_t>(RejectReason::kCount)> kReasonNames = {
    "invalid_json", "unknown_event", "unknown_rule",  "no_identifier", "incomplete_name",
    "too_old",      "in_future",     "bad_email",     "bad_hash",      "bad_amount",
    "bad_currency", "bad_country",   "bad_event_id",  "bad_lead",      "bad_ip",
    "no_consent",   "bad_consent",   "bad_timestamp", "bad_event",
};
}  // namespace

std::string_view reject_reason_name(RejectReason r) {
  auto i = static_cast<size_t>(r);
  return i < kReasonNames.size() ? kReasonNames[i] : std::string_view("unknown");
}

EventRules EventRules::from_config(const Config& c) {
  EventRules rules;
  for (const auto& [name, rule] : c.conversions) {
    rules.conversions.emplace(name, rule);
    rules.allowed_rules.insert(rule);
  }
  return rules;
}

}  // namespace capi_relay
