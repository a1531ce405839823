// URL splitting and the small non-Beast parts of the HttpClient interface.
#include <cctype>
#include <charconv>

#include "capi_relay/upload/http_client.hpp"

namespace capi_relay {

std::string ParsedUrl::origin() const {
  std::string out = scheme + "://";
  if (host.find(':') != std::string::npos) {
    out += "[" + host + "]";
  } else {
    out += host;
  }
  const uint16_t default_port = scheme == "https" ? 443 : 80;
  if (port != default_port) out += ":" + std::to_string(port);
  return out;
}

Result<ParsedUrl> parse_url(std::string_view url) {
  ParsedUrl u;
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) return Error{"URL has no scheme"};
  for (char c : url.substr(0, sep)) u.scheme += static_cast<char>(std::tolower(c));
  if (u.scheme != "http" && u.scheme != "https") return Error{"URL scheme must be http or https"};
  std::string_view rest = url.substr(sep + 3);
  const size_t path_at = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, path_at);
  std::string_view path = path_at == std::string_view::npos ? "" : rest.substr(path_at);
  if (const size_t frag = path.find('#'); frag != std::string_view::npos) path = path.substr(0, frag);
  if (authority.find('@') != std::string_view::npos) return Error{"URL must not carry user info"};
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return Error{"URL has an unterminated IPv6 literal"};
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Error{"URL has garbage after the IPv6 literal"};
      port_text = after.substr(1);
    }
  } else {
    const size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      authority = authority.substr(0, colon);
    }
    u.host = std::string(authority);
  }
  if (u.host.empty()) return Error{"URL has no host"};
  u.port = u.scheme == "https" ? 443 : 80;
  if (!port_text.empty()) {
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), p);
    if (ec != std::errc{} || ptr != port_text.data() + port_text.size() || p == 0 || p > 65535) {
      return Error{"URL has an invalid port"};
    }
    u.port = static_cast<uint16_t>(p);
  }
  u.target = path.empty() ? "/" : std::string(path);
  if (u.target.front() == '?') u.target.insert(0, "/");
  return u;
}

bool is_loopback_host(std::string_view host) {
  if (host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1") return true;
  // 127.0.0.0/8 as a dotted quad.
  if (host.substr(0, 4) != "127.") return false;
  int dots = 0;
  for (char c : host) {
    if (c == '.') {
      ++dots;
    } else if (c < '0' || c > '9') {
      return false;
    }
  }
  return dots == 3;
}

std::string HttpResponse::header(std::string_view lowercase_name) const {
  auto it = headers.find(std::string(lowercase_name));
  return it == headers.end() ? std::string() : it->second;
}

std::string_view http_error_label(HttpErrorKind k) {
  switch (k) {
    case HttpErrorKind::kNone: return "";
    case HttpErrorKind::kTimeout: return "timeout";
    case HttpErrorKind::kConnectError: return "connect_error";
    case HttpErrorKind::kTlsError: return "tls_error";
    case HttpErrorKind::kCancelled: return "cancelled";
  }
  return "";
}

}  // namespace capi_relay
