#pragma once
// The spool record payload: a versioned binary encoding of a NormalizedEvent. The spool frames it
// (length + CRC-32C); this codec only encodes fields. Version 1 layout:
//   u8 version=1, u64 rule_id, i64 happened_at_ms, i64 received_at_ms, u8 flags (bit0: derived id),
//   then 15 length-prefixed strings (u16 LE length + bytes) in NormalizedEvent declaration order
//   (event_id, amount, currency, email_sha256, ip_sha256, li_fat_id, acxiom_id, moat_id,
//   external_id, lead, first_name, last_name, title, company_name, country_code).
// A decoder must accept every version it ever wrote.
#include <cstdint>
#include <string>
#include <string_view>

#include "capi_relay/common/result.hpp"
#include "capi_relay/event/event.hpp"

namespace capi_relay {

inline constexpr uint8_t kRecordVersion = 1;

void encode_record(const NormalizedEvent& e, std::string& out);  // appends to out
Result<NormalizedEvent> decode_record(std::string_view payload);

// Dedup key of an event: 64-bit fingerprint of (rule_id, event_id) taken from SHA-256.
uint64_t dedup_fingerprint(uint64_t rule_id, std::string_view event_id);

}  // namespace capi_relay
