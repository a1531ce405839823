// Normalization of the identifiers the relay hashes: email addresses and IP addresses.
#include <arpa/inet.h>

#include <cstring>
#include <string>
#include <string_view>

#include "capi_relay/common/hash.hpp"
#include "capi_relay/event/parser.hpp"

namespace capi_relay {

namespace {

constexpr size_t kMaxEmailInput = 1024;  // raw text, whitespace included
constexpr size_t kMaxEmail = 254;        // RFC 5321 path limit
constexpr size_t kMaxLocalPart = 64;

bool is_ascii_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// Characters that never appear in an unquoted address (quoted local parts are not accepted:
// no real conversion flow sends them, and they would defeat normalization).
bool is_forbidden_email_char(unsigned char c) {
  if (c < 0x20 || c == 0x7f) return true;
  switch (c) {
    case '"':
    case '(':
    case ')':
    case ',':
    case ':':
    case ';':
    case '<':
    case '>':
    case '[':
    case '\\':
    case ']':
      return true;
    default:
      return false;
  }
}

bool is_domain_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c >= 0x80;
}

// Removes all whitespace (ASCII and U+00A0) and lowercases ASCII letters into buf; false when
// the result would not fit.
bool normalize_email(std::string_view in, char* buf, size_t cap, size_t& len) {
  size_t w = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    auto c = static_cast<unsigned char>(in[i]);
    if (is_ascii_space(c)) continue;
    if (c == 0xC2 && i + 1 < in.size() && static_cast<unsigned char>(in[i + 1]) == 0xA0) {
      ++i;  // NO-BREAK SPACE, common in pasted addresses
      continue;
    }
    if (w >= cap) return false;
    buf[w++] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : static_cast<char>(c);
  }
  len = w;
  return true;
}

bool looks_like_email(std::string_view e) {
  if (e.size() < 3 || e.size() > kMaxEmail) return false;
  size_t at = e.find('@');
  if (at == std::string_view::npos || at == 0 || at > kMaxLocalPart) return false;
  if (e.find('@', at + 1) != std::string_view::npos) return false;
  for (char c : e) {
    if (is_forbidden_email_char(static_cast<unsigned char>(c))) return false;
  }
  std::string_view local = e.substr(0, at);
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos)
    return false;
  std::string_view domain = e.substr(at + 1);
  if (domain.empty() || domain.front() == '.' || domain.back() == '.' ||
      domain.find("..") != std::string_view::npos)
    return false;
  size_t last_dot = domain.rfind('.');
  if (last_dot == std::string_view::npos) return false;
  if (domain.size() - last_dot - 1 < 2) return false;  // top-level label of at least 2
  for (char c : domain) {
    if (!is_domain_char(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

bool normalize_and_hash_email(std::string_view email, std::string& out_hex) {
  if (email.size() > kMaxEmailInput) return false;
  char buf[kMaxEmail + 1];
  size_t len = 0;
  if (!normalize_email(email, buf, sizeof(buf), len)) return false;
  std::string_view normalized(buf, len);
  if (!looks_like_email(normalized)) return false;
  char hex[64];
  sha256_hex(normalized, hex);
  out_hex.assign(hex, 64);
  return true;
}

bool canonical_ip(std::string_view ip, std::string& out) {
  // Longest textual IPv6 form with an embedded IPv4 address is 45 characters.
  char in[INET6_ADDRSTRLEN + 1];
  if (ip.empty() || ip.size() >= sizeof(in)) return false;
  std::memcpy(in, ip.data(), ip.size());
  in[ip.size()] = '\0';
  char text[INET6_ADDRSTRLEN];
  if (ip.find(':') != std::string_view::npos) {
    in6_addr a6;
    if (inet_pton(AF_INET6, in, &a6) != 1) return false;
    // glibc's inet_ntop writes the RFC 5952 form (lowercase, longest zero run compressed,
    // single zero groups kept, IPv4-mapped addresses as ::ffff:a.b.c.d).
    if (inet_ntop(AF_INET6, &a6, text, sizeof(text)) == nullptr) return false;
  } else {
    in_addr a4;
    if (inet_pton(AF_INET, in, &a4) != 1) return false;
    if (inet_ntop(AF_INET, &a4, text, sizeof(text)) == nullptr) return false;
  }
  out.assign(text);
  return true;
}

}  // namespace capi_relay
