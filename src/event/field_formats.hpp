#pragma once
// Private to the event component: recognizers and normalizers for the individual field formats
// of contract §3 (rule URNs, timestamps, decimal amounts, hex digests, lead URNs). Pure functions
// over string_views; none allocates and none throws.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace capi_relay::event_format {

inline constexpr int64_t kMillisPerDay = 24ll * 3600 * 1000;

// Strips ASCII whitespace (space, \t, \n, \v, \f, \r) from both ends.
std::string_view trim(std::string_view s);

// True when s is exactly 64 hex digits of either case.
bool is_hex64(std::string_view s);
// Appends s lowercased (ASCII only).
void append_lower(std::string& out, std::string_view s);

// "urn:lla:llaPartnerConversion:N" or "N" (decimal, no sign) -> N (> 0).
bool parse_rule_text(std::string_view text, uint64_t& out);

// A JSON number token per RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool is_json_number(std::string_view tok);
// Rewrites a non-negative JSON number token without exponent ("5e1" -> "50", "1.5E-2" ->
// "0.015"); a token without exponent is copied as is, so the client's digits are kept. Writes to
// out[0..cap) and sets len; false when negative, malformed or longer than cap.
bool json_number_to_plain_decimal(std::string_view tok, char* out, size_t cap, size_t& len);

// A non-negative decimal as LinkedIn takes it: [0-9]+(\.[0-9]+)?, at most kMaxAmountChars.
inline constexpr size_t kMaxAmountChars = 32;
bool is_plain_decimal(std::string_view s);
// Value-canonical text of a plain decimal (leading zeros and trailing fractional zeros removed:
// "050.10" -> "50.1", "0.00" -> "0"), for derived event IDs. Appends to out.
void append_canonical_decimal(std::string& out, std::string_view plain);

// RFC 3339 date-time with a Z or +-HH:MM offset and optional fraction (truncated to ms) -> epoch
// ms. 'T'/'t'/' ' separate date and time; 'z' is accepted for 'Z'.
bool parse_rfc3339_ms(std::string_view s, int64_t& out);
// 1..15 ASCII digits -> value.
bool parse_ms_digits(std::string_view s, int64_t& out);

// urn:li:leadGenFormResponse:<id>, id of 1..128 characters from [A-Za-z0-9_-].
bool is_lead_urn(std::string_view s);

// Exactly n ASCII letters; appends them uppercased.
bool append_upper_letters(std::string& out, std::string_view s, size_t n);

// Number of UTF-8 code points (bytes that are not continuation bytes).
size_t utf8_length(std::string_view s);

}  // namespace capi_relay::event_format
