#include "capi_relay/event/element.hpp"

#include <charconv>
#include <string_view>

#include "capi_relay/common/json_text.hpp"

namespace capi_relay {

namespace {

template <class Int>
void append_int(std::string& out, Int v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

void append_user_id(std::string& out, bool& first, std::string_view type, const std::string& v) {
  if (v.empty()) return;
  if (!first) out.push_back(',');
  first = false;
  out += R"({"idType":")";
  out += type;  // a constant, nothing to escape
  out += R"(","idValue":)";
  append_json_string(out, v);
  out.push_back('}');
}

}  // namespace

void append_element_json(const NormalizedEvent& e, std::string& out) {
  out += R"({"conversion":"urn:lla:llaPartnerConversion:)";
  append_int(out, e.rule_id);
  out += R"(","conversionHappenedAt":)";
  append_int(out, e.happened_at_ms);
  if (!e.amount.empty()) {
    out += R"(,"conversionValue":{"currencyCode":)";
    append_json_string(out, e.currency);
    out += R"(,"amount":)";
    append_json_string(out, e.amount);
    out.push_back('}');
  }
  if (!e.event_id.empty()) {
    out += R"(,"eventId":)";
    append_json_string(out, e.event_id);
  }
  out += R"(,"user":{"userIds":[)";
  bool first = true;
  append_user_id(out, first, "SHA256_EMAIL", e.email_sha256);
  append_user_id(out, first, "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID", e.li_fat_id);
  append_user_id(out, first, "ACXIOM_ID", e.acxiom_id);
  append_user_id(out, first, "ORACLE_MOAT_ID", e.moat_id);
  append_user_id(out, first, "SHA256_IP_ADDRESS", e.ip_sha256);
  out.push_back(']');
  // LinkedIn requires both names whenever userInfo is sent.
  if (!e.first_name.empty() && !e.last_name.empty()) {
    out += R"(,"userInfo":{"firstName":)";
    append_json_string(out, e.first_name);
    out += R"(,"lastName":)";
    append_json_string(out, e.last_name);
    if (!e.title.empty()) {
      out += R"(,"title":)";
      append_json_string(out, e.title);
    }
    if (!e.company_name.empty()) {
      out += R"(,"companyName":)";
      append_json_string(out, e.company_name);
    }
    if (!e.country_code.empty()) {
      out += R"(,"countryCode":)";
      append_json_string(out, e.country_code);
    }
    out.push_back('}');
  }
  if (!e.external_id.empty()) {
    out += R"(,"externalIds":[)";
    append_json_string(out, e.external_id);
    out.push_back(']');
  }
  if (!e.lead.empty()) {
    out += R"(,"lead":)";
    append_json_string(out, e.lead);
  }
  out += "}}";
}

void append_batch_json(std::span<const NormalizedEvent> events, std::string& out) {
  out += R"({"elements":[)";
  bool first = true;
  for (const NormalizedEvent& e : events) {
    if (!first) out.push_back(',');
    first = false;
    append_element_json(e, out);
  }
  out += "]}";
}

}  // namespace capi_relay
