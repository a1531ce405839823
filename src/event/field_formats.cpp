#include "field_formats.hpp"

#include <cstring>

namespace capi_relay::event_format {

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Reads exactly n digits at s[pos..pos+n).
bool fixed_digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!is_digit(s[i])) return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int days_in_month(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

}  // namespace

std::string_view trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

bool is_hex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!is_hex(c)) return false;
  }
  return true;
}

void append_lower(std::string& out, std::string_view s) {
  size_t base = out.size();
  out.append(s);
  for (size_t i = base; i < out.size(); ++i) {
    char c = out[i];
    if (c >= 'A' && c <= 'Z') out[i] = static_cast<char>(c + ('a' - 'A'));
  }
}

bool parse_rule_text(std::string_view text, uint64_t& out) {
  static constexpr std::string_view kPrefix = "urn:lla:llaPartnerConversion:";
  if (text.starts_with(kPrefix)) text.remove_prefix(kPrefix.size());
  if (text.empty() || text.size() > 19) return false;  // 19 digits always fit in uint64
  uint64_t v = 0;
  for (char c : text) {
    if (!is_digit(c)) return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v == 0) return false;
  out = v;
  return true;
}

bool is_json_number(std::string_view t) {
  size_t i = 0, n = t.size();
  if (i < n && t[i] == '-') ++i;
  if (i >= n || !is_digit(t[i])) return false;
  if (t[i] == '0') {
    ++i;
  } else {
    while (i < n && is_digit(t[i])) ++i;
  }
  if (i < n && t[i] == '.') {
    ++i;
    if (i >= n || !is_digit(t[i])) return false;
    while (i < n && is_digit(t[i])) ++i;
  }
  if (i < n && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < n && (t[i] == '+' || t[i] == '-')) ++i;
    if (i >= n || !is_digit(t[i])) return false;
    while (i < n && is_digit(t[i])) ++i;
  }
  return i == n;
}

bool json_number_to_plain_decimal(std::string_view tok, char* out, size_t cap, size_t& len) {
  if (!is_json_number(tok) || tok[0] == '-') return false;
  size_t epos = 0;
  while (epos < tok.size() && tok[epos] != 'e' && tok[epos] != 'E') ++epos;
  if (epos == tok.size()) {
    if (tok.size() > cap) return false;
    std::memcpy(out, tok.data(), tok.size());
    len = tok.size();
    return true;
  }
  std::string_view mant = tok.substr(0, epos);
  std::string_view exp_text = tok.substr(epos + 1);
  bool exp_neg = false;
  if (exp_text[0] == '+' || exp_text[0] == '-') {
    exp_neg = exp_text[0] == '-';
    exp_text.remove_prefix(1);
  }
  // Exponents beyond a few hundred can only produce numbers far longer than cap.
  int64_t exp = 0;
  for (char c : exp_text) {
    exp = exp * 10 + (c - '0');
    if (exp > 1000) return false;
  }
  if (exp_neg) exp = -exp;
  // Mantissa digits with the decimal point removed; `point` = digits before the point.
  char digits[128];
  size_t nd = 0;
  int64_t point = 0;
  bool seen_dot = false;
  for (char c : mant) {
    if (c == '.') {
      seen_dot = true;
      continue;
    }
    if (nd >= sizeof(digits)) return false;
    digits[nd++] = c;
    if (!seen_dot) ++point;
  }
  point += exp;
  // Drop leading zeros (they carry no value) while keeping the point where it was.
  size_t first = 0;
  while (first < nd && digits[first] == '0') {
    ++first;
    --point;
  }
  if (first == nd) {  // zero
    if (cap < 1) return false;
    out[0] = '0';
    len = 1;
    return true;
  }
  std::string_view d(digits + first, nd - first);
  size_t w = 0;
  auto put = [&](char c) {
    if (w >= cap) return false;
    out[w++] = c;
    return true;
  };
  if (point <= 0) {
    if (!put('0') || !put('.')) return false;
    for (int64_t i = 0; i < -point; ++i) {
      if (!put('0')) return false;
    }
    for (char c : d) {
      if (!put(c)) return false;
    }
  } else if (static_cast<size_t>(point) >= d.size()) {
    for (char c : d) {
      if (!put(c)) return false;
    }
    for (int64_t i = 0; i < point - static_cast<int64_t>(d.size()); ++i) {
      if (!put('0')) return false;
    }
  } else {
    for (size_t i = 0; i < d.size(); ++i) {
      if (i == static_cast<size_t>(point) && !put('.')) return false;
      if (!put(d[i])) return false;
    }
  }
  len = w;
  return true;
}

bool is_plain_decimal(std::string_view s) {
  if (s.empty() || s.size() > kMaxAmountChars) return false;
  size_t i = 0;
  while (i < s.size() && is_digit(s[i])) ++i;
  if (i == 0) return false;
  if (i == s.size()) return true;
  if (s[i] != '.') return false;
  ++i;
  if (i == s.size()) return false;
  while (i < s.size() && is_digit(s[i])) ++i;
  return i == s.size();
}

void append_canonical_decimal(std::string& out, std::string_view plain) {
  size_t dot = plain.find('.');
  std::string_view ip = plain.substr(0, dot);
  std::string_view fp = dot == std::string_view::npos ? std::string_view{} : plain.substr(dot + 1);
  while (ip.size() > 1 && ip[0] == '0') ip.remove_prefix(1);
  while (!fp.empty() && fp.back() == '0') fp.remove_suffix(1);
  out.append(ip.empty() ? std::string_view("0") : ip);
  if (!fp.empty()) {
    out.push_back('.');
    out.append(fp);
  }
}

bool parse_rfc3339_ms(std::string_view s, int64_t& out) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  int y, mo, d, h, mi, sec;
  if (s.size() < 20) return false;
  if (!fixed_digits(s, 0, 4, y) || s[4] != '-' || !fixed_digits(s, 5, 2, mo) || s[7] != '-' ||
      !fixed_digits(s, 8, 2, d))
    return false;
  if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') return false;
  if (!fixed_digits(s, 11, 2, h) || s[13] != ':' || !fixed_digits(s, 14, 2, mi) || s[16] != ':' ||
      !fixed_digits(s, 17, 2, sec))
    return false;
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
    return false;
  size_t pos = 19;
  int ms = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    size_t start = pos;
    while (pos < s.size() && is_digit(s[pos])) {
      if (pos - start < 3) ms = ms * 10 + (s[pos] - '0');
      ++pos;
    }
    if (pos == start) return false;
    for (size_t k = pos - start; k < 3; ++k) ms *= 10;
  }
  if (pos >= s.size()) return false;
  int offset_min = 0;
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    int oh, om;
    if (!fixed_digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !fixed_digits(s, pos + 4, 2, om) || oh > 23 || om > 59)
      return false;
    offset_min = (oh * 60 + om) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return false;
  }
  if (pos != s.size()) return false;
  int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  int64_t secs = ((days * 24 + h) * 60 + mi) * 60 + sec - static_cast<int64_t>(offset_min) * 60;
  out = secs * 1000 + ms;
  return true;
}

bool parse_ms_digits(std::string_view s, int64_t& out) {
  if (s.empty() || s.size() > 15) return false;
  int64_t v = 0;
  for (char c : s) {
    if (!is_digit(c)) return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

bool is_lead_urn(std::string_view s) {
  static constexpr std::string_view kPrefix = "urn:li:leadGenFormResponse:";
  if (!s.starts_with(kPrefix)) return false;
  std::string_view id = s.substr(kPrefix.size());
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_') return false;
  }
  return true;
}

bool append_upper_letters(std::string& out, std::string_view s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s) {
    if (!is_alpha(c)) return false;
  }
  for (char c : s) out.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - ('a' - 'A')) : c);
  return true;
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

}  // namespace capi_relay::event_format
