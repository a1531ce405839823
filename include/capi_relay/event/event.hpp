#pragma once
// The normalized event: what the relay keeps of an accepted event (hashes computed, rule
// resolved). It is what the spool stores (see record.hpp) and what the LinkedIn element is
// serialized from at upload time. It never holds a raw email or IP address.
#include <cstdint>
#include <string>
#include <string_view>

namespace capi_relay {

enum class RejectReason : uint8_t {
  kInvalidJson,
  kUnknownEvent,
  kUnknownRule,
  kNoIdentifier,
  kIncompleteName,
  kTooOld,
  kInFuture,
  kBadEmail,
  kBadHash,
  kBadAmount,
  kBadCurrency,
  kBadCountry,
  kBadEventId,
  kBadLead,
  kBadIp,
  kNoConsent,
  kBadConsent,
  kBadTimestamp,
  kBadEvent,
  kCount  // number of reasons
};

// The contract's reason label ("invalid_json", "unknown_event", ...).
std::string_view reject_reason_name(RejectReason r);

struct NormalizedEvent {
  uint64_t rule_id = 0;          // urn:lla:llaPartnerConversion:<rule_id>
  int64_t happened_at_ms = 0;    // conversionHappenedAt, epoch ms
  int64_t received_at_ms = 0;    // when the relay accepted it
  std::string event_id;          // <= 64 chars; derived or random when the client gave none
  bool event_id_derived = false;  // true when the relay made the ID
  std::string amount;            // decimal string; empty: no conversionValue
  std::string currency;          // 3 uppercase letters; empty when amount is empty
  std::string email_sha256;      // 64 lowercase hex, or empty
  std::string ip_sha256;         // 64 lowercase hex of the canonical address, or empty
  std::string li_fat_id;         // LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID, clear
  std::string acxiom_id;         // ACXIOM_ID, clear
  std::string moat_id;           // ORACLE_MOAT_ID, clear
  std::string external_id;       // user.externalIds[0], clear
  std::string lead;              // urn:li:leadGenFormResponse:N, or empty
  std::string first_name, last_name, title, company_name;  // userInfo (both names or neither)
  std::string country_code;      // 2 uppercase letters, or empty

  bool operator==(const NormalizedEvent&) const = default;
};

}  // namespace capi_relay
