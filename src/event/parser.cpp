// EventParser: body framing (single JSON value, array, NDJSON) and the JSON reader that fills a
// RawEvent from either input shape. Validation itself lives in EventNormalizer.
#include "capi_relay/event/parser.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cstring>

#include "event_normalizer.hpp"
#include "field_formats.hpp"

// simdjson picks its on-demand kernel at compile time; Haswell's needs AVX2, BMI, LZCNT *and*
// PCLMUL, and -march=x86-64-v3 alone does not enable PCLMUL, which silently selects the scalar
// fallback kernel (several times slower).
#if defined(__x86_64__) && !SIMDJSON_CAN_ALWAYS_RUN_HASWELL && !SIMDJSON_CAN_ALWAYS_RUN_ICELAKE
#warning "simdjson uses its fallback kernel here: compile with -march=haswell or add -mpclmul"
#endif

namespace capi_relay {

namespace od = simdjson::ondemand;
using event_internal::FieldKind;
using event_internal::RawEvent;
using event_internal::RawField;
using simdjson::error_code;

#define CAPI_RELAY_JSON_TRY(expr)                                   \
  do {                                                              \
    if (error_code e_ = (expr); e_ != simdjson::SUCCESS) return e_; \
  } while (0)

namespace {

constexpr size_t kInitialCapacity = 64 * 1024;

bool is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// A field's key: its text in the input when it has no escape (the usual case: no copy), else
// unescaped. Stage 1 has validated the string, so its closing quote is there to find.
error_code read_key(simdjson::simdjson_result<od::field>& field, std::string_view& key) {
  od::raw_json_string raw;
  CAPI_RELAY_JSON_TRY(field.key().get(raw));
  const char* begin = raw.raw();
  const char* p = begin;
  while (*p != '"' && *p != '\\') ++p;
  if (*p == '"') {
    key = std::string_view(begin, static_cast<size_t>(p - begin));
    return simdjson::SUCCESS;
  }
  return field.unescaped_key().get(key);
}

// Reads a scalar into f. Objects and arrays become kOther and are skipped by the caller's
// iteration; null becomes absent. Fails only on malformed JSON.
error_code read_field(od::value& v, RawField& f) {
  od::json_type t;
  CAPI_RELAY_JSON_TRY(v.type().get(t));
  switch (t) {
    case od::json_type::string: {
      std::string_view s;
      CAPI_RELAY_JSON_TRY(v.get_string().get(s));
      f = {s, FieldKind::kString};
      return simdjson::SUCCESS;
    }
    case od::json_type::number: {
      // The raw token keeps the client's digits (amounts) and may carry trailing whitespace.
      std::string_view tok = v.raw_json_token();
      while (!tok.empty() && is_json_space(tok.back())) tok.remove_suffix(1);
      if (!event_format::is_json_number(tok)) return simdjson::NUMBER_ERROR;
      f = {tok, FieldKind::kNumber};
      return simdjson::SUCCESS;
    }
    case od::json_type::boolean: {
      bool b = false;
      CAPI_RELAY_JSON_TRY(v.get_bool().get(b));
      f = {b ? "true" : "false", FieldKind::kBool};
      return simdjson::SUCCESS;
    }
    case od::json_type::null: {
      bool is_null = false;
      CAPI_RELAY_JSON_TRY(v.is_null().get(is_null));
      if (!is_null) return simdjson::N_ATOM_ERROR;
      f = {};
      return simdjson::SUCCESS;
    }
    default:
      f = {{}, FieldKind::kOther};
      return simdjson::SUCCESS;
  }
}

// First occurrence wins; a later duplicate key is skipped unread.
error_code read_once(od::value& v, RawField& f) {
  if (f.present()) return simdjson::SUCCESS;
  return read_field(v, f);
}

// Returns true (and fills obj) when v is an object; null counts as absent; any other type
// records a shape error.
error_code open_object(od::value& v, od::object& obj, bool& is_object, RawEvent& raw,
                       RejectReason reason, std::string_view detail) {
  is_object = false;
  od::json_type t;
  CAPI_RELAY_JSON_TRY(v.type().get(t));
  if (t == od::json_type::object) {
    CAPI_RELAY_JSON_TRY(v.get_object().get(obj));
    is_object = true;
  } else if (t != od::json_type::null) {
    raw.set_shape_error(reason, detail);
  }
  return simdjson::SUCCESS;
}

error_code open_array(od::value& v, od::array& arr, bool& is_array, RawEvent& raw,
                      std::string_view detail) {
  is_array = false;
  od::json_type t;
  CAPI_RELAY_JSON_TRY(v.type().get(t));
  if (t == od::json_type::array) {
    CAPI_RELAY_JSON_TRY(v.get_array().get(arr));
    is_array = true;
  } else if (t != od::json_type::null) {
    raw.set_shape_error(RejectReason::kBadEvent, detail);
  }
  return simdjson::SUCCESS;
}

// value{amount,currency} (relay shape) or conversionValue{amount,currencyCode} (LinkedIn shape).
error_code read_value(od::value& v, RawEvent& raw) {
  od::object obj;
  bool ok = false;
  CAPI_RELAY_JSON_TRY(
      open_object(v, obj, ok, raw, RejectReason::kBadAmount, "value must be an object"));
  if (!ok) return simdjson::SUCCESS;
  for (auto field : obj) {
    std::string_view key;
    od::value fv;
    CAPI_RELAY_JSON_TRY(read_key(field, key));
    CAPI_RELAY_JSON_TRY(field.value().get(fv));
    if (key == "amount") {
      CAPI_RELAY_JSON_TRY(read_once(fv, raw.amount));
    } else if (key == "currency" || key == "currencyCode") {
      CAPI_RELAY_JSON_TRY(read_once(fv, raw.currency));
    }
  }
  return simdjson::SUCCESS;
}

// LinkedIn's user.userIds: [{idType, idValue}, ...]. Unknown idTypes (e.g. GOOGLE_AID) are
// ignored; for each known one the first entry wins.
error_code read_user_ids(od::value& v, RawEvent& raw) {
  od::array arr;
  bool ok = false;
  CAPI_RELAY_JSON_TRY(open_array(v, arr, ok, raw, "user.userIds must be an array"));
  if (!ok) return simdjson::SUCCESS;
  for (auto element : arr) {
    od::value ev;
    CAPI_RELAY_JSON_TRY(element.get(ev));
    od::object entry;
    bool is_object = false;
    CAPI_RELAY_JSON_TRY(open_object(ev, entry, is_object, raw, RejectReason::kBadEvent,
                                    "user.userIds entries must be objects"));
    if (!is_object) continue;
    RawField id_type, id_value;
    for (auto field : entry) {
      std::string_view key;
      od::value fv;
      CAPI_RELAY_JSON_TRY(read_key(field, key));
      CAPI_RELAY_JSON_TRY(field.value().get(fv));
      if (key == "idType") {
        CAPI_RELAY_JSON_TRY(read_once(fv, id_type));
      } else if (key == "idValue") {
        CAPI_RELAY_JSON_TRY(read_once(fv, id_value));
      }
    }
    if (id_type.kind != FieldKind::kString || !id_value.present()) {
      raw.set_shape_error(RejectReason::kBadEvent,
                          "user.userIds entries need a string idType and an idValue");
      continue;
    }
    std::string_view type = id_type.text;
    RawField* slot = nullptr;
    if (type == "SHA256_EMAIL") {
      // 64 hex is a digest (sent lowercased); anything else is taken as an email and hashed.
      bool digest = id_value.kind == FieldKind::kString &&
                    event_format::is_hex64(event_format::trim(id_value.text));
      slot = digest ? &raw.email_sha256 : &raw.email;
    } else if (type == "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID") {
      slot = &raw.li_fat_id;
    } else if (type == "ACXIOM_ID") {
      slot = &raw.acxiom_id;
    } else if (type == "ORACLE_MOAT_ID") {
      slot = &raw.moat_id;
    } else if (type == "SHA256_IP_ADDRESS") {
      slot = &raw.ip_sha256;
    } else if (type == "PLAINTEXT_IP_ADDRESS") {
      slot = &raw.ip;
    }
    if (slot != nullptr && !slot->present()) *slot = id_value;
  }
  return simdjson::SUCCESS;
}

error_code read_user_info(od::value& v, RawEvent& raw) {
  od::object obj;
  bool ok = false;
  CAPI_RELAY_JSON_TRY(
      open_object(v, obj, ok, raw, RejectReason::kBadEvent, "user.userInfo must be an object"));
  if (!ok) return simdjson::SUCCESS;
  for (auto field : obj) {
    std::string_view key;
    od::value fv;
    CAPI_RELAY_JSON_TRY(read_key(field, key));
    CAPI_RELAY_JSON_TRY(field.value().get(fv));
    if (key == "firstName") {
      CAPI_RELAY_JSON_TRY(read_once(fv, raw.first_name));
    } else if (key == "lastName") {
      CAPI_RELAY_JSON_TRY(read_once(fv, raw.last_name));
    } else if (key == "title") {
      CAPI_RELAY_JSON_TRY(read_once(fv, raw.title));
    } else if (key == "companyName") {
      CAPI_RELAY_JSON_TRY(read_once(fv, raw.company_name));
    } else if (key == "countryCode") {
      CAPI_RELAY_JSON_TRY(read_once(fv, raw.country_code));
    }
  }
  return simdjson::SUCCESS;
}

// user.externalIds: LinkedIn uses only the first entry.
error_code read_external_ids(od::value& v, RawEvent& raw) {
  od::array arr;
  bool ok = false;
  CAPI_RELAY_JSON_TRY(open_array(v, arr, ok, raw, "user.externalIds must be an array"));
  if (!ok) return simdjson::SUCCESS;
  bool first = true;
  for (auto element : arr) {
    od::value ev;
    CAPI_RELAY_JSON_TRY(element.get(ev));
    if (first) CAPI_RELAY_JSON_TRY(read_once(ev, raw.external_id));
    first = false;
  }
  return simdjson::SUCCESS;
}

error_code read_user(od::value& v, RawEvent& raw) {
  od::object obj;
  bool ok = false;
  CAPI_RELAY_JSON_TRY(
      open_object(v, obj, ok, raw, RejectReason::kBadEvent, "user must be an object"));
  if (!ok) return simdjson::SUCCESS;
  for (auto field : obj) {
    std::string_view key;
    od::value fv;
    CAPI_RELAY_JSON_TRY(read_key(field, key));
    CAPI_RELAY_JSON_TRY(field.value().get(fv));
    RawField* slot = nullptr;
    if (key == "email") {
      slot = &raw.email;
    } else if (key == "emailSha256") {
      slot = &raw.email_sha256;
    } else if (key == "liFatId") {
      slot = &raw.li_fat_id;
    } else if (key == "acxiomId") {
      slot = &raw.acxiom_id;
    } else if (key == "moatId") {
      slot = &raw.moat_id;
    } else if (key == "externalId") {
      slot = &raw.external_id;
    } else if (key == "ip") {
      slot = &raw.ip;
    } else if (key == "lead") {
      slot = &raw.lead;
    } else if (key == "firstName") {
      slot = &raw.first_name;
    } else if (key == "lastName") {
      slot = &raw.last_name;
    } else if (key == "title") {
      slot = &raw.title;
    } else if (key == "companyName") {
      slot = &raw.company_name;
    } else if (key == "countryCode") {
      slot = &raw.country_code;
    } else if (key == "userIds") {
      CAPI_RELAY_JSON_TRY(read_user_ids(fv, raw));
    } else if (key == "userInfo") {
      CAPI_RELAY_JSON_TRY(read_user_info(fv, raw));
    } else if (key == "externalIds") {
      CAPI_RELAY_JSON_TRY(read_external_ids(fv, raw));
    }
    if (slot != nullptr) CAPI_RELAY_JSON_TRY(read_once(fv, *slot));
  }
  return simdjson::SUCCESS;
}

// Reads one event object in either shape; unknown fields are skipped.
error_code read_event(od::object& obj, RawEvent& raw) {
  for (auto field : obj) {
    std::string_view key;
    od::value fv;
    CAPI_RELAY_JSON_TRY(read_key(field, key));
    CAPI_RELAY_JSON_TRY(field.value().get(fv));
    if (key == "event") {
      CAPI_RELAY_JSON_TRY(read_once(fv, raw.event));
    } else if (key == "conversion") {
      CAPI_RELAY_JSON_TRY(read_once(fv, raw.conversion));
    } else if (key == "eventId") {
      CAPI_RELAY_JSON_TRY(read_once(fv, raw.event_id));
    } else if (key == "timestamp" || key == "conversionHappenedAt") {
      CAPI_RELAY_JSON_TRY(read_once(fv, raw.timestamp));
    } else if (key == "value" || key == "conversionValue") {
      CAPI_RELAY_JSON_TRY(read_value(fv, raw));
    } else if (key == "user") {
      CAPI_RELAY_JSON_TRY(read_user(fv, raw));
    } else if (key == "consent") {
      CAPI_RELAY_JSON_TRY(read_once(fv, raw.consent));
    }
  }
  return simdjson::SUCCESS;
}

// After the root value was consumed: anything left is trailing content.
error_code check_end(od::document& doc) {
  const char* loc = nullptr;
  error_code e = doc.current_location().get(loc);
  if (e == simdjson::OUT_OF_BOUNDS) return simdjson::SUCCESS;
  if (e != simdjson::SUCCESS) return e;
  return simdjson::TRAILING_CONTENT;
}

// Consumes a root value that is not an event object, only to tell valid JSON from garbage.
error_code consume_root(od::document& doc, od::json_type t) {
  switch (t) {
    case od::json_type::array: {
      od::array arr;
      CAPI_RELAY_JSON_TRY(doc.get_array().get(arr));
      for (auto element : arr) {
        od::value ev;
        CAPI_RELAY_JSON_TRY(element.get(ev));
      }
      return check_end(doc);
    }
    case od::json_type::string: {
      std::string_view s;
      return doc.get_string().get(s);
    }
    case od::json_type::number: {
      double d;
      return doc.get_double().get(d);
    }
    case od::json_type::boolean: {
      bool b;
      return doc.get_bool().get(b);
    }
    case od::json_type::null: {
      bool n = false;
      CAPI_RELAY_JSON_TRY(doc.is_null().get(n));
      return n ? simdjson::SUCCESS : simdjson::N_ATOM_ERROR;
    }
    default:
      return simdjson::TAPE_ERROR;
  }
}

void write_invalid_json(ParsedItem& item, uint32_t index, error_code e) {
  event_internal::reset_item(item);
  item.index = index;
  event_internal::reject(item, RejectReason::kInvalidJson, simdjson::error_message(e));
}

}  // namespace

// Owns the simdjson parser (and its string buffer, which the RawEvent views point into), the
// padded copy of unpadded bodies, and the normalizer's scratch buffers.
struct EventParser::Impl {
  Impl(const EventRules& rules, RandomSource& random) : normalizer(rules, random) {
    // Not fatal when it fails: parse_document allocates on demand and reports MEMALLOC there.
    [[maybe_unused]] error_code e = parser.allocate(kInitialCapacity);
  }

  // The next output item of items: reuses an existing element (and its string capacity).
  static ParsedItem& next_item(std::vector<ParsedItem>& items, size_t& used) {
    if (used == items.size()) items.emplace_back();
    ParsedItem& item = items[used++];
    event_internal::reset_item(item);
    return item;
  }

  // Parses one JSON text [p, p+len) with `readable` bytes readable from p. A root object becomes
  // one item at `index`; a root array is expanded (items indexed by position) when expand_array,
  // else it is one bad_event item like any other non-object. On malformed JSON returns the error;
  // the items it appended must then be dropped by the caller.
  error_code parse_document(const char* p, size_t len, size_t readable, bool expand_array,
                            uint32_t index, const ParseOptions& opts,
                            std::vector<ParsedItem>& items, size_t& used, bool& empty_array) {
    empty_array = false;
    if (parser.capacity() < len) {
      CAPI_RELAY_JSON_TRY(parser.allocate(std::max(len, 2 * parser.capacity())));
    }
    od::document doc;
    CAPI_RELAY_JSON_TRY(parser.iterate(p, len, readable).get(doc));
    od::json_type t;
    CAPI_RELAY_JSON_TRY(doc.type().get(t));
    if (t == od::json_type::object) {
      od::object obj;
      CAPI_RELAY_JSON_TRY(doc.get_object().get(obj));
      RawEvent raw;
      CAPI_RELAY_JSON_TRY(read_event(obj, raw));
      CAPI_RELAY_JSON_TRY(check_end(doc));
      ParsedItem& item = next_item(items, used);
      item.index = index;
      normalizer.normalize(raw, opts, item);
      return simdjson::SUCCESS;
    }
    if (t == od::json_type::array && expand_array) {
      od::array arr;
      CAPI_RELAY_JSON_TRY(doc.get_array().get(arr));
      uint32_t position = 0;
      for (auto element : arr) {
        od::value ev;
        CAPI_RELAY_JSON_TRY(element.get(ev));
        if (at_limit(used, opts)) return simdjson::CAPACITY;  // parse_body reports kTooManyItems
        od::json_type et;
        CAPI_RELAY_JSON_TRY(ev.type().get(et));
        if (et == od::json_type::object) {
          od::object obj;
          CAPI_RELAY_JSON_TRY(ev.get_object().get(obj));
          RawEvent raw;
          CAPI_RELAY_JSON_TRY(read_event(obj, raw));
          ParsedItem& item = next_item(items, used);
          item.index = position;
          normalizer.normalize(raw, opts, item);
        } else {
          if (et != od::json_type::array) {
            RawField scalar;  // validates the scalar's JSON; nested arrays are skipped
            CAPI_RELAY_JSON_TRY(read_field(ev, scalar));
          }
          ParsedItem& item = next_item(items, used);
          item.index = position;
          event_internal::reject(item, RejectReason::kBadEvent, "array item is not an object");
        }
        ++position;
      }
      CAPI_RELAY_JSON_TRY(check_end(doc));
      empty_array = position == 0;
      return simdjson::SUCCESS;
    }
    CAPI_RELAY_JSON_TRY(consume_root(doc, t));
    ParsedItem& item = next_item(items, used);
    item.index = index;
    event_internal::reject(item, RejectReason::kBadEvent, "event is not a JSON object");
    return simdjson::SUCCESS;
  }

  // True (and remembered in over_limit) when `used` items already reach opts.max_items.
  bool at_limit(size_t used, const ParseOptions& opts) {
    if (opts.max_items == 0 || used < opts.max_items) return false;
    over_limit = true;
    return true;
  }

  // Makes body readable with SIMDJSON_PADDING bytes of slack; returns its start.
  const char* padded_copy(std::string_view body) {
    padded.resize(body.size() + simdjson::SIMDJSON_PADDING);
    std::memcpy(padded.data(), body.data(), body.size());
    std::memset(padded.data() + body.size(), ' ', simdjson::SIMDJSON_PADDING);
    return padded.data();
  }

  od::parser parser;
  event_internal::EventNormalizer normalizer;
  std::string padded;
  std::vector<ParsedItem> one_item;  // parse_one's output slot
  bool over_limit = false;           // parse_body: the body has more than max_items items
};

EventParser::EventParser(const EventRules& rules, RandomSource& random)
    : impl_(std::make_unique<Impl>(rules, random)) {}

EventParser::~EventParser() = default;

void EventParser::parse_body(std::string_view body, bool padded, const ParseOptions& opts,
                             ParsedBody& out) {
  out.status = BodyStatus::kOk;
  out.error.clear();
  const char* s = padded ? body.data() : impl_->padded_copy(body);
  const size_t n = body.size();
  const char* readable_end = s + n + simdjson::SIMDJSON_PADDING;
  auto readable = [&](const char* p) { return static_cast<size_t>(readable_end - p); };
  size_t used = 0;
  impl_->over_limit = false;
  auto finish = [&](BodyStatus status, std::string_view error) {
    if (impl_->over_limit) {
      status = BodyStatus::kTooManyItems;
      error = "too many events in one body";
    }
    out.status = status;
    out.error.assign(error);
    out.items.resize(status == BodyStatus::kOk ? used : 0);
  };

  size_t begin = 0, end = n;
  while (begin < end && is_json_space(s[begin])) ++begin;
  while (end > begin && is_json_space(s[end - 1])) --end;
  if (begin == end) return finish(BodyStatus::kEmpty, "empty body");

  // The first non-blank line: [line_start, line_end), numbered first_line.
  const char* nl_before = begin == 0 ? nullptr : static_cast<const char*>(memrchr(s, '\n', begin));
  size_t line_start = nl_before == nullptr ? 0 : static_cast<size_t>(nl_before - s) + 1;
  auto first_line = static_cast<uint32_t>(std::count(s, s + line_start, '\n'));
  const void* nl_after = std::memchr(s + begin, '\n', end - begin);
  size_t line_end =
      nl_after == nullptr ? end : static_cast<size_t>(static_cast<const char*>(nl_after) - s);
  bool empty_array = false;

  if (line_end >= end) {
    // One line of content: the body is one JSON value or nothing.
    error_code e = impl_->parse_document(s + begin, end - begin, readable(s + begin), true, 0, opts,
                                         out.items, used, empty_array);
    if (e != simdjson::SUCCESS) {
      std::string msg = "body is not JSON: ";
      msg += simdjson::error_message(e);
      return finish(BodyStatus::kUnparseable, msg);
    }
    if (empty_array) return finish(BodyStatus::kEmpty, "empty array");
    return finish(BodyStatus::kOk, {});
  }

  // Several lines. A complete JSON value on the first one means NDJSON; otherwise the body may
  // be one value spread over lines (pretty-printed), else NDJSON whose first line is broken.
  error_code first_error =
      impl_->parse_document(s + line_start, line_end - line_start, readable(s + line_start), false,
                            first_line, opts, out.items, used, empty_array);
  if (first_error != simdjson::SUCCESS) {
    used = 0;
    error_code whole = impl_->parse_document(s + begin, end - begin, readable(s + begin), true, 0,
                                             opts, out.items, used, empty_array);
    if (whole == simdjson::SUCCESS) {
      if (empty_array) return finish(BodyStatus::kEmpty, "empty array");
      return finish(BodyStatus::kOk, {});
    }
    used = 0;
    write_invalid_json(Impl::next_item(out.items, used), first_line, first_error);
  }
  bool any_json = first_error == simdjson::SUCCESS;
  uint32_t line_no = first_line;
  size_t pos = line_end;  // at the '\n' ending the current line
  while (pos < end) {
    if (impl_->over_limit || impl_->at_limit(used, opts)) break;
    size_t start = pos + 1;
    ++line_no;
    const void* nl = std::memchr(s + start, '\n', end - start);
    size_t stop = nl == nullptr ? end : static_cast<size_t>(static_cast<const char*>(nl) - s);
    pos = stop;
    bool blank = std::all_of(s + start, s + stop, is_json_space);
    if (blank) continue;
    size_t mark = used;
    error_code e = impl_->parse_document(s + start, stop - start, readable(s + start), false,
                                         line_no, opts, out.items, used, empty_array);
    if (e != simdjson::SUCCESS) {
      used = mark;
      write_invalid_json(Impl::next_item(out.items, used), line_no, e);
    } else {
      any_json = true;
    }
  }
  if (!any_json) return finish(BodyStatus::kUnparseable, "no line of the body is JSON");
  finish(BodyStatus::kOk, {});
}

ParsedItem EventParser::parse_one(std::string_view json, const ParseOptions& opts) {
  const char* s = impl_->padded_copy(json);
  size_t used = 0;
  bool empty_array = false;
  std::vector<ParsedItem>& slot = impl_->one_item;
  error_code e = impl_->parse_document(s, json.size(), json.size() + simdjson::SIMDJSON_PADDING,
                                       false, 0, opts, slot, used, empty_array);
  if (e != simdjson::SUCCESS) {
    used = 0;
    write_invalid_json(Impl::next_item(slot, used), 0, e);
  }
  return slot[0];
}

ParsedItem EventParser::normalize_flat(const FlatEvent& f, const ParseOptions& opts) {
  RawEvent raw;
  raw.consent_as_text = true;
  auto put = [](const Field& field, RawField& into) {
    // An empty cell means absent (contract §2).
    if (field.present && !field.value.empty()) into = {field.value, FieldKind::kString};
  };
  put(f.event, raw.event);
  put(f.conversion, raw.conversion);
  put(f.event_id, raw.event_id);
  put(f.timestamp, raw.timestamp);
  put(f.email, raw.email);
  put(f.email_sha256, raw.email_sha256);
  put(f.li_fat_id, raw.li_fat_id);
  put(f.acxiom_id, raw.acxiom_id);
  put(f.moat_id, raw.moat_id);
  put(f.external_id, raw.external_id);
  put(f.lead, raw.lead);
  put(f.ip, raw.ip);
  put(f.first_name, raw.first_name);
  put(f.last_name, raw.last_name);
  put(f.title, raw.title);
  put(f.company_name, raw.company_name);
  put(f.country_code, raw.country_code);
  put(f.amount, raw.amount);
  put(f.currency, raw.currency);
  put(f.consent, raw.consent);
  ParsedItem item;
  impl_->normalizer.normalize(raw, opts, item);
  return item;
}

#undef CAPI_RELAY_JSON_TRY

}  // namespace capi_relay
