#pragma once
// Serializes a NormalizedEvent into LinkedIn's conversion event element (contract §5):
// {"conversion":"urn:lla:llaPartnerConversion:N","conversionHappenedAt":ms,
//  "conversionValue":{"currencyCode":"USD","amount":"50.00"},"eventId":"...",
//  "user":{"userIds":[{"idType":"SHA256_EMAIL","idValue":"..."},...],
//          "userInfo":{...},"externalIds":["..."],"lead":"urn:li:leadGenFormResponse:N"}}
// Only LinkedIn's fields; user.userIds always present (empty array on names-only matches).
#include <span>
#include <string>

#include "capi_relay/event/event.hpp"

namespace capi_relay {

void append_element_json(const NormalizedEvent& e, std::string& out);
// {"elements":[e0,e1,...]}
void append_batch_json(std::span<const NormalizedEvent> events, std::string& out);

}  // namespace capi_relay
