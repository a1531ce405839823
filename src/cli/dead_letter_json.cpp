// Dead letters as JSON: one shape for the CLI and the admin endpoints.
#include "capi_relay/cli/dead_letter_json.hpp"

#include <simdjson.h>

#include "capi_relay/cli/output.hpp"
#include "capi_relay/common/json_text.hpp"
#include "capi_relay/config/config.hpp"
#include "capi_relay/event/record.hpp"

namespace capi_relay {

DeadLetterView dead_letter_view(const DeadLetter& d) {
  DeadLetterView v;
  v.id = d.id;
  v.reason = d.reason;
  v.status = d.http_status;
  v.message = d.message;
  v.time = format_rfc3339(d.dead_lettered_at_ms);
  if (auto ev = decode_record(d.payload); ev) {
    v.event_id = ev->event_id;
    v.rule = rule_urn(ev->rule_id);
  }
  return v;
}

void append_dead_letter_json(std::string& out, const DeadLetterView& v) {
  out += "{\"id\":" + std::to_string(v.id) + ",\"eventId\":";
  append_json_string(out, v.event_id);
  out += ",\"rule\":";
  append_json_string(out, v.rule);
  out += ",\"reason\":";
  append_json_string(out, v.reason);
  out += ",\"status\":";
  out += v.status > 0 ? std::to_string(v.status) : "null";
  out += ",\"message\":";
  append_json_string(out, v.message);
  out += ",\"time\":";
  append_json_string(out, v.time);
  out += '}';
}

void append_dead_letter_json(std::string& out, const DeadLetter& d) {
  append_dead_letter_json(out, dead_letter_view(d));
}

std::string dead_letters_response_json(std::span<const DeadLetter> entries) {
  std::string out = "{\"dead_letters\":[";
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i) out += ',';
    append_dead_letter_json(out, entries[i]);
  }
  out += "]}";
  return out;
}

Result<std::vector<DeadLetterView>> parse_dead_letters_response(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(body);
  simdjson::dom::element doc;
  simdjson::dom::array arr;
  if (parser.parse(padded).get(doc) != simdjson::SUCCESS ||
      doc["dead_letters"].get_array().get(arr) != simdjson::SUCCESS) {
    return Error{"the answer is not {\"dead_letters\":[...]}"};
  }
  std::vector<DeadLetterView> out;
  for (simdjson::dom::element e : arr) {
    DeadLetterView v;
    uint64_t id = 0;
    if (e["id"].get_uint64().get(id) != simdjson::SUCCESS) return Error{"an entry has no id"};
    v.id = id;
    std::string_view s;
    if (e["eventId"].get_string().get(s) == simdjson::SUCCESS) v.event_id = std::string(s);
    if (e["rule"].get_string().get(s) == simdjson::SUCCESS) v.rule = std::string(s);
    if (e["reason"].get_string().get(s) == simdjson::SUCCESS) v.reason = std::string(s);
    if (e["message"].get_string().get(s) == simdjson::SUCCESS) v.message = std::string(s);
    if (e["time"].get_string().get(s) == simdjson::SUCCESS) v.time = std::string(s);
    int64_t st = 0;
    if (e["status"].get_int64().get(st) == simdjson::SUCCESS) v.status = static_cast<int>(st);
    out.push_back(std::move(v));
  }
  return out;
}

Result<DeadLetterFilter> parse_replay_request(std::string_view body) {
  DeadLetterFilter f;
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return f;
  simdjson::dom::parser parser;
  simdjson::padded_string padded(body);
  simdjson::dom::object obj;
  if (parser.parse(padded).get_object().get(obj) != simdjson::SUCCESS) {
    return Error{"body must be a JSON object like {\"ids\":[1,2],\"reason\":\"rejected\"}"};
  }
  for (auto field : obj) {
    if (field.key == "ids") {
      simdjson::dom::array ids;
      if (field.value.get_array().get(ids) != simdjson::SUCCESS) return Error{"ids must be an array"};
      for (simdjson::dom::element id : ids) {
        uint64_t v = 0;
        if (id.get_uint64().get(v) != simdjson::SUCCESS) return Error{"ids must hold integers"};
        f.ids.push_back(v);
      }
    } else if (field.key == "reason") {
      std::string_view r;
      if (field.value.get_string().get(r) != simdjson::SUCCESS) return Error{"reason must be a string"};
      if (r != "rejected" && r != "expired") return Error{"reason must be rejected or expired"};
      f.reason = std::string(r);
    } else {
      return Error{"unknown field " + std::string(field.key) + " (ids, reason)"};
    }
  }
  return f;
}

std::string replay_request_json(const DeadLetterFilter& f) {
  std::string out = "{";
  if (!f.ids.empty()) {
    out += "\"ids\":[";
    for (size_t i = 0; i < f.ids.size(); ++i) out += (i ? "," : "") + std::to_string(f.ids[i]);
    out += "]";
  }
  if (f.reason) {
    if (out.size() > 1) out += ',';
    out += "\"reason\":";
    append_json_string(out, *f.reason);
  }
  out += "}";
  return out;
}

std::string replay_response_json(uint64_t replayed) {
  return "{\"replayed\":" + std::to_string(replayed) + "}";
}

}  // namespace capi_relay
