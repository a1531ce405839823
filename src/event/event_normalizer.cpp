#include "event_normalizer.hpp"

#include <algorithm>
#include <charconv>

#include "capi_relay/common/hash.hpp"
#include "field_formats.hpp"

namespace capi_relay::event_internal {

using namespace event_format;

namespace {

constexpr int64_t kMaxAgeMs = 90 * kMillisPerDay;
constexpr int64_t kFutureToleranceMs = 5 * 60 * 1000;
constexpr size_t kMaxEventIdChars = 64;
// Clear-text fields (names, title, company, liFatId, ...) have no documented LinkedIn limit we
// trust; this cap only keeps one event from bloating the spool (and fits the record's u16).
constexpr size_t kMaxClearFieldBytes = 1024;
// Epoch ms below this (March 1973) are almost certainly epoch seconds.
constexpr int64_t kSecondsSuspicion = 100'000'000'000;

bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + ('a' - 'A'));
    if (x != y) return false;
  }
  return true;
}

// JSON: a boolean. CSV (as_text): true/false, 1/0, yes/no in any case.
bool read_consent(const RawField& f, bool as_text, bool& out) {
  if (f.kind == FieldKind::kBool) {
    out = f.text == "true";
    return true;
  }
  if (!as_text || f.kind != FieldKind::kString) return false;
  std::string_view t = trim(f.text);
  if (equals_ignore_case(t, "true") || t == "1" || equals_ignore_case(t, "yes")) {
    out = true;
    return true;
  }
  if (equals_ignore_case(t, "false") || t == "0" || equals_ignore_case(t, "no")) {
    out = false;
    return true;
  }
  return false;
}

void append_hex_u64(std::string& out, uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4) out.push_back(kHex[(v >> shift) & 0xF]);
}

// Appends "<len>:<bytes>;" so that no two field lists serialize alike.
void append_framed(std::string& out, std::string_view s) {
  char num[20];
  auto r = std::to_chars(num, num + sizeof(num), s.size());
  out.append(num, r.ptr);
  out.push_back(':');
  out.append(s);
  out.push_back(';');
}

// Reads a clear-text field (sent to LinkedIn as is, trimmed). Rejects with bad_event when it has
// the wrong type or is oversized; an empty or whitespace-only value counts as absent.
bool take_clear(ParsedItem& item, const RawField& f, bool allow_number, std::string_view name,
                std::string_view& out) {
  out = {};
  if (!f.present()) return true;
  if (f.kind != FieldKind::kString && !(allow_number && f.kind == FieldKind::kNumber)) {
    std::string detail(name);
    detail += " must be a string";
    reject(item, RejectReason::kBadEvent, detail);
    return false;
  }
  out = trim(f.text);
  if (out.size() > kMaxClearFieldBytes) {
    std::string detail(name);
    detail += " is longer than 1024 bytes";
    reject(item, RejectReason::kBadEvent, detail);
    return false;
  }
  return true;
}

}  // namespace

void reset_item(ParsedItem& item) {
  item.ok = false;
  item.reason = RejectReason{};
  item.error.clear();
  NormalizedEvent& e = item.event;
  e.rule_id = 0;
  e.happened_at_ms = 0;
  e.received_at_ms = 0;
  e.event_id_derived = false;
  for (std::string* s : {&e.event_id, &e.amount, &e.currency, &e.email_sha256, &e.ip_sha256,
                         &e.li_fat_id, &e.acxiom_id, &e.moat_id, &e.external_id, &e.lead,
                         &e.first_name, &e.last_name, &e.title, &e.company_name, &e.country_code})
    s->clear();
}

void reject(ParsedItem& item, RejectReason r, std::string_view detail) {
  uint32_t index = item.index;
  reset_item(item);  // nothing of a rejected event is kept
  item.index = index;
  item.ok = false;
  item.reason = r;
  item.error.assign(reject_reason_name(r));
  item.error += ": ";
  item.error += detail;
}

EventNormalizer::EventNormalizer(EventRules rules, RandomSource& random)
    : rules_(std::move(rules)), random_(random) {
  ip_text_.reserve(64);
  canonical_.reserve(512);
}

bool EventNormalizer::resolve_rule(const RawEvent& raw, ParsedItem& item, uint64_t& rule) {
  if (!raw.event.present() && !raw.conversion.present()) {
    reject(item, RejectReason::kBadEvent, "neither event nor conversion given");
    return false;
  }
  bool from_event = false;
  if (raw.event.present()) {
    if (raw.event.kind != FieldKind::kString) {
      reject(item, RejectReason::kBadEvent, "event must be a string");
      return false;
    }
    // The name is not echoed: clients sometimes put arbitrary text there.
    auto it = rules_.conversions.find(raw.event.text);
    if (it == rules_.conversions.end()) {
      reject(item, RejectReason::kUnknownEvent, "event name is not in the conversions map");
      return false;
    }
    rule = it->second;
    from_event = true;
  }
  if (raw.conversion.present()) {
    uint64_t direct = 0;
    if ((raw.conversion.kind != FieldKind::kString && raw.conversion.kind != FieldKind::kNumber) ||
        !parse_rule_text(trim(raw.conversion.text), direct)) {
      reject(item, RejectReason::kUnknownRule,
             "conversion must be urn:lla:llaPartnerConversion:N or the number N");
      return false;
    }
    if (!rules_.allowed_rules.contains(direct)) {
      std::string detail = "rule ";
      detail += std::to_string(direct);
      detail += " is not one of the configured conversions";
      reject(item, RejectReason::kUnknownRule, detail);
      return false;
    }
    if (from_event && direct != rule) {
      reject(item, RejectReason::kUnknownRule, "conversion and event name different rules");
      return false;
    }
    rule = direct;
  }
  return true;
}

bool EventNormalizer::read_timestamp(const RawField& f, int64_t& ms) {
  if (f.kind == FieldKind::kNumber) {
    // Any JSON number form of an integer (1764320000000, 1.76432e12); a fraction is truncated.
    char buf[64];
    size_t len = 0;
    if (!json_number_to_plain_decimal(f.text, buf, sizeof(buf), len)) return false;
    std::string_view plain(buf, len);
    return parse_ms_digits(plain.substr(0, plain.find('.')), ms);
  }
  if (f.kind == FieldKind::kString) {
    std::string_view t = trim(f.text);
    if (parse_ms_digits(t, ms)) return true;
    return parse_rfc3339_ms(t, ms);
  }
  return false;
}

void EventNormalizer::normalize(const RawEvent& raw, const ParseOptions& opts, ParsedItem& item) {
  if (raw.shape_error) return reject(item, raw.shape_reason, raw.shape_detail);

  // Consent first: an event without consent is not looked at any further.
  if (raw.consent.present()) {
    bool given = true;
    if (!read_consent(raw.consent, raw.consent_as_text, given))
      return reject(item, RejectReason::kBadConsent, "consent must be true or false");
    if (!given) return reject(item, RejectReason::kNoConsent, "consent is false");
  }

  uint64_t rule = 0;
  if (!resolve_rule(raw, item, rule)) return;

  std::string_view event_id;
  if (raw.event_id.present()) {
    if (raw.event_id.kind != FieldKind::kString)
      return reject(item, RejectReason::kBadEventId, "eventId must be a string");
    event_id = raw.event_id.text;  // forwarded unchanged
    if (event_id.empty()) return reject(item, RejectReason::kBadEventId, "eventId is empty");
    if (utf8_length(event_id) > kMaxEventIdChars)
      return reject(item, RejectReason::kBadEventId, "eventId is longer than 64 characters");
  }

  bool has_timestamp = false;
  int64_t client_ms = 0;
  if (raw.timestamp.present()) {
    if (!read_timestamp(raw.timestamp, client_ms))
      return reject(item, RejectReason::kBadTimestamp,
                    "timestamp must be epoch milliseconds or an RFC 3339 date-time");
    has_timestamp = true;
  } else if (opts.require_timestamp) {
    return reject(item, RejectReason::kBadTimestamp, "timestamp is required");
  }
  int64_t happened_at = opts.now_ms;
  if (has_timestamp) {
    if (opts.now_ms - client_ms > kMaxAgeMs)
      return reject(item, RejectReason::kTooOld,
                    client_ms < kSecondsSuspicion
                        ? "timestamp is more than 90 days old (epoch seconds instead of ms?)"
                        : "timestamp is more than 90 days old");
    if (client_ms - opts.now_ms > kFutureToleranceMs)
      return reject(item, RejectReason::kInFuture, "timestamp is more than 5 minutes ahead");
    happened_at = std::min(client_ms, opts.now_ms);  // small clock skew is clamped
  }

  NormalizedEvent& e = item.event;

  // Hashed identifiers. A raw email wins over emailSha256 when both are given (both are checked).
  if (raw.email.present()) {
    if (raw.email.kind != FieldKind::kString)
      return reject(item, RejectReason::kBadEmail, "user.email must be a string");
    if (!normalize_and_hash_email(raw.email.text, e.email_sha256))
      return reject(item, RejectReason::kBadEmail, "user.email is not a valid email address");
  }
  if (raw.email_sha256.present()) {
    std::string_view h = raw.email_sha256.kind == FieldKind::kString ? trim(raw.email_sha256.text)
                                                                     : std::string_view{};
    if (!is_hex64(h))
      return reject(item, RejectReason::kBadHash, "user.emailSha256 must be 64 hex digits");
    if (e.email_sha256.empty()) append_lower(e.email_sha256, h);
  }
  if (raw.ip.present()) {
    if (raw.ip.kind != FieldKind::kString || !canonical_ip(trim(raw.ip.text), ip_text_))
      return reject(item, RejectReason::kBadIp, "user.ip is not an IPv4 or IPv6 address");
    char hex[64];
    sha256_hex(ip_text_, hex);
    e.ip_sha256.assign(hex, 64);
    ip_text_.clear();
  }
  if (raw.ip_sha256.present()) {
    std::string_view h =
        raw.ip_sha256.kind == FieldKind::kString ? trim(raw.ip_sha256.text) : std::string_view{};
    if (!is_hex64(h))
      return reject(item, RejectReason::kBadHash, "SHA256_IP_ADDRESS must be 64 hex digits");
    if (e.ip_sha256.empty()) append_lower(e.ip_sha256, h);
  }

  // Clear-text identifiers and userInfo.
  std::string_view li_fat_id, acxiom_id, moat_id, external_id, first, last, title, company;
  if (!take_clear(item, raw.li_fat_id, false, "user.liFatId", li_fat_id) ||
      !take_clear(item, raw.acxiom_id, true, "user.acxiomId", acxiom_id) ||
      !take_clear(item, raw.moat_id, true, "user.moatId", moat_id) ||
      !take_clear(item, raw.external_id, true, "user.externalId", external_id) ||
      !take_clear(item, raw.first_name, false, "user.firstName", first) ||
      !take_clear(item, raw.last_name, false, "user.lastName", last) ||
      !take_clear(item, raw.title, false, "user.title", title) ||
      !take_clear(item, raw.company_name, false, "user.companyName", company))
    return;

  if (raw.lead.present()) {
    std::string_view l =
        raw.lead.kind == FieldKind::kString ? trim(raw.lead.text) : std::string_view{};
    if (!is_lead_urn(l))
      return reject(item, RejectReason::kBadLead,
                    "user.lead must be urn:li:leadGenFormResponse:<id>");
    e.lead.assign(l);
  }
  if (first.empty() != last.empty())
    return reject(item, RejectReason::kIncompleteName,
                  "firstName and lastName must be given together");
  if (raw.country_code.present()) {
    std::string_view c = raw.country_code.kind == FieldKind::kString ? trim(raw.country_code.text)
                                                                     : std::string_view{};
    if (!append_upper_letters(e.country_code, c, 2))
      return reject(item, RejectReason::kBadCountry, "user.countryCode must be 2 letters");
  }

  // Value. LinkedIn takes a non-negative decimal string; a negative amount is refused rather than
  // passed on to fail upstream. An amount needs its currency (conversionValue requires both); a
  // currency without an amount is checked but not sent.
  if (raw.amount.present()) {
    if (raw.amount.kind == FieldKind::kNumber) {
      if (raw.amount.text.starts_with('-'))
        return reject(item, RejectReason::kBadAmount, "value.amount must not be negative");
      char buf[kMaxAmountChars];
      size_t len = 0;
      if (!json_number_to_plain_decimal(raw.amount.text, buf, sizeof(buf), len))
        return reject(item, RejectReason::kBadAmount, "value.amount is not a decimal number");
      e.amount.assign(buf, len);
    } else if (raw.amount.kind == FieldKind::kString) {
      std::string_view a = trim(raw.amount.text);
      if (a.starts_with('-'))
        return reject(item, RejectReason::kBadAmount, "value.amount must not be negative");
      if (!is_plain_decimal(a))
        return reject(item, RejectReason::kBadAmount,
                      "value.amount must be a decimal such as \"50.00\"");
      e.amount.assign(a);
    } else {
      return reject(item, RejectReason::kBadAmount, "value.amount must be a string or number");
    }
  }
  if (raw.currency.present()) {
    std::string_view c =
        raw.currency.kind == FieldKind::kString ? trim(raw.currency.text) : std::string_view{};
    if (!append_upper_letters(e.currency, c, 3))
      return reject(item, RejectReason::kBadCurrency, "value.currency must be 3 letters");
  }
  if (!e.amount.empty() && e.currency.empty())
    return reject(item, RejectReason::kBadCurrency, "value.currency is required with an amount");
  if (e.amount.empty()) e.currency.clear();

  bool has_user_id = !e.email_sha256.empty() || !e.ip_sha256.empty() || !li_fat_id.empty() ||
                     !acxiom_id.empty() || !moat_id.empty() || !external_id.empty();
  if (!has_user_id && first.empty())
    return reject(item, RejectReason::kNoIdentifier,
                  "no user identifier and no first and last name");

  e.li_fat_id.assign(li_fat_id);
  e.acxiom_id.assign(acxiom_id);
  e.moat_id.assign(moat_id);
  e.external_id.assign(external_id);
  if (!first.empty()) {
    e.first_name.assign(first);
    e.last_name.assign(last);
    e.title.assign(title);
    e.company_name.assign(company);
  } else {
    e.country_code.clear();  // userInfo is sent only with both names
  }
  e.rule_id = rule;
  e.happened_at_ms = happened_at;
  e.received_at_ms = opts.now_ms;
  if (!event_id.empty()) {
    e.event_id.assign(event_id);
  } else if (has_timestamp) {
    derive_event_id(e, client_ms);
  } else {
    random_event_id(e);
  }
  item.ok = true;
}

// The derived ID hashes the normalized content with the client's own timestamp (before clamping,
// so a retry later on gets the same ID) and the amount in value-canonical form, so every body form
// and shape of the same event yields the same ID.
void EventNormalizer::derive_event_id(NormalizedEvent& e, int64_t client_ms) {
  canonical_.clear();
  canonical_ += "capi-relay/derived-id/v1;";
  char num[24];
  auto r = std::to_chars(num, num + sizeof(num), e.rule_id);
  append_framed(canonical_, std::string_view(num, static_cast<size_t>(r.ptr - num)));
  r = std::to_chars(num, num + sizeof(num), client_ms);
  append_framed(canonical_, std::string_view(num, static_cast<size_t>(r.ptr - num)));
  for (const std::string* s : {&e.email_sha256, &e.ip_sha256, &e.li_fat_id, &e.acxiom_id,
                               &e.moat_id, &e.external_id, &e.lead, &e.first_name, &e.last_name,
                               &e.title, &e.company_name, &e.country_code, &e.currency})
    append_framed(canonical_, *s);
  size_t mark = canonical_.size();
  append_canonical_decimal(canonical_, e.amount.empty() ? std::string_view{} : e.amount);
  if (e.amount.empty()) canonical_.resize(mark);  // no amount: empty field, not "0"
  canonical_.push_back(';');
  char hex[64];
  sha256_hex(canonical_, hex);
  e.event_id.assign("d-");
  e.event_id.append(hex, 40);
  e.event_id_derived = true;
}

void EventNormalizer::random_event_id(NormalizedEvent& e) {
  e.event_id.assign("r-");
  append_hex_u64(e.event_id, random_.next_u64());
  append_hex_u64(e.event_id, random_.next_u64());
  e.event_id_derived = true;
}

}  // namespace capi_relay::event_internal
