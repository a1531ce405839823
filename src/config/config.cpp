// Loads the relay's YAML config (contract §4) into Config. Every problem is collected with its key
// path and line rather than stopping at the first; values of secret keys never appear in messages.
#include "capi_relay/config/config.hpp"

#include <arpa/inet.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "capi_relay/common/result.hpp"

namespace capi_relay {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kDurationExample = "a duration such as 250ms, 5s, 10m, 72h or 7d";
constexpr std::string_view kSizeExample = "a size such as 512, 64KiB, 1MiB or 1GiB";

std::string join_path(const std::string& path, std::string_view key) {
  if (path.empty()) return std::string(key);
  std::string out = path;
  out += '.';
  out += key;
  return out;
}

int line_of(const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  return mark.is_null() ? 0 : mark.line + 1;
}

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
  });
}

// A value shown in an error message: quoted, control bytes escaped, long values cut.
std::string quote_value(std::string_view value) {
  constexpr size_t kMaxShown = 80;
  std::string out = "\"";
  for (size_t i = 0; i < value.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (value.size() > kMaxShown) out += "...";
  out += '"';
  return out;
}

bool valid_var_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front()))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// Expands ${VAR} and ${VAR:-default} from the environment; "$${" is a literal "${". As in the shell,
// the default also replaces a variable that is set but empty. Errors name the variable only, never
// the surrounding text, which may be a secret.
Result<std::string> expand_env(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    if (in.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 3;
      continue;
    }
    if (in.compare(i, 2, "${") != 0) {
      out += in[i++];
      continue;
    }
    const size_t close = in.find('}', i + 2);
    if (close == std::string_view::npos) {
      return Error{"unterminated \"${\" (write \"$${\" for a literal \"${\")"};
    }
    const std::string_view inner = in.substr(i + 2, close - i - 2);
    const size_t sep = inner.find(":-");
    const bool has_default = sep != std::string_view::npos;
    const std::string name(has_default ? inner.substr(0, sep) : inner);
    if (!valid_var_name(name)) {
      return Error{"bad variable reference: \"${...}\" needs a name of letters, digits and _"};
    }
    const char* value = std::getenv(name.c_str());
    if (value != nullptr && (*value != '\0' || !has_default)) {
      out += value;
    } else if (has_default) {
      out += inner.substr(sep + 2);
    } else {
      return Error{"environment variable " + name + " is not set (write ${" + name +
                   ":-default} to give a default)"};
    }
    i = close + 1;
  }
  return out;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

bool parse_uint(std::string_view text, uint64_t& out) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

bool is_ipv4(const std::string& host) {
  in_addr addr{};
  return inet_pton(AF_INET, host.c_str(), &addr) == 1;
}

bool is_ipv6(const std::string& host) {
  in6_addr addr{};
  return inet_pton(AF_INET6, host.c_str(), &addr) == 1;
}

bool is_hostname(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  });
}

// host is as written in a URL or listen address: IPv6 literals keep their brackets.
bool is_loopback_host(std::string_view host) {
  if (iequals(host, "localhost") || host == "[::1]") return true;
  const std::string h(host);
  in_addr addr{};
  if (inet_pton(AF_INET, h.c_str(), &addr) != 1) return false;
  return (ntohl(addr.s_addr) >> 24) == 127;
}

// host[:port] of a URL authority or listen address; IPv6 hosts keep their brackets.
struct Authority {
  std::string host;
  std::optional<std::string> port;
};

// "" on success, else what is wrong with `text` as host[:port].
std::string split_authority(std::string_view text, Authority& out) {
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return "unterminated \"[\" in IPv6 address";
    out.host = std::string(text.substr(0, close + 1));
    if (!is_ipv6(std::string(text.substr(1, close - 1)))) return "not a valid IPv6 address";
    text.remove_prefix(close + 1);
    if (text.empty()) return "";
    if (text.front() != ':') return "unexpected text after \"]\"";
    out.port = std::string(text.substr(1));
    return "";
  }
  const size_t colon = text.find(':');
  if (colon != std::string_view::npos && text.find(':', colon + 1) != std::string_view::npos) {
    return "IPv6 addresses need brackets, e.g. [::1]:8080";
  }
  out.host = std::string(text.substr(0, colon));
  if (colon != std::string_view::npos) out.port = std::string(text.substr(colon + 1));
  if (out.host.empty()) return "missing host";
  if (!is_hostname(out.host)) return "not a valid host name";
  return "";
}

bool valid_port(const std::string& text, uint64_t min) {
  uint64_t port = 0;
  return parse_uint(text, port) && port >= min && port <= 65535;
}

struct Url {
  std::string scheme;  // lowercased
  bool has_userinfo = false;
  Authority authority;
  std::string rest;  // path, query and fragment
};

// "" on success, else what is wrong with `text` as scheme://[userinfo@]host[:port][/path].
std::string split_url(std::string_view text, Url& out) {
  const size_t sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0) return "not a URL (scheme://host)";
  out.scheme = std::string(text.substr(0, sep));
  std::transform(out.scheme.begin(), out.scheme.end(), out.scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  text.remove_prefix(sep + 3);
  const size_t end = text.find_first_of("/?#");
  std::string_view authority = text.substr(0, end);
  out.rest = end == std::string_view::npos ? "" : std::string(text.substr(end));
  const size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    out.has_userinfo = true;
    authority.remove_prefix(at + 1);
  }
  if (authority.empty()) return "missing host";
  std::string problem = split_authority(authority, out.authority);
  if (!problem.empty()) return problem;
  if (out.authority.port && !valid_port(*out.authority.port, 1)) return "port must be 1..65535";
  return "";
}

// Checks return "" when the value is fine, else what it must be (the reader adds the value itself
// unless the key is secret). A check may normalize the value in place (api_base drops a trailing /).
using Check = std::function<std::string(std::string&)>;

std::string check_listen(std::string& value) {
  HostPort hp;
  if (parse_listen(value, hp)) return "";
  return "must be host:port with an IP address (or localhost) and a port 0..65535, e.g. "
         "127.0.0.1:8080, 0.0.0.0:8080, :8080 or \"[::]:8080\" (quoted in YAML)";
}

// API and OAuth endpoints carry tokens and secrets: TLS unless the peer is on this machine.
std::string check_secure_url(std::string& value) {
  Url url;
  std::string problem = split_url(value, url);
  if (!problem.empty()) return "must be an https:// URL: " + problem;
  if (url.has_userinfo) return "must not contain user info (user@)";
  if (url.scheme == "http") {
    if (!is_loopback_host(url.authority.host)) {
      return "must be https:// (http:// is allowed only for loopback hosts: 127.x.x.x, localhost, "
             "[::1])";
    }
  } else if (url.scheme != "https") {
    return "must be an https:// URL";
  }
  return "";
}

std::string check_api_base(std::string& value) {
  std::string problem = check_secure_url(value);
  if (!problem.empty()) return problem;
  Url url;
  split_url(value, url);
  if (url.rest.find_first_of("?#") != std::string::npos) return "must not have a query or fragment";
  // The uploader appends "/rest/...": drop trailing slashes so the path never doubles them.
  while (value.size() > 1 && value.back() == '/') value.pop_back();
  return "";
}

std::string check_redirect_uri(std::string& value) {
  Url url;
  std::string problem = split_url(value, url);
  if (!problem.empty()) return "must be an http:// or https:// URL: " + problem;
  if (url.scheme != "http" && url.scheme != "https") return "must be an http:// or https:// URL";
  return "";
}

std::string check_redis_url(std::string& value) {
  Url url;
  std::string problem = split_url(value, url);
  if (!problem.empty()) return "must be redis://host[:port][/db] or rediss://...: " + problem;
  if (url.scheme != "redis" && url.scheme != "rediss") {
    return "must be redis://host[:port][/db] or rediss://...";
  }
  return "";
}

std::string check_version(std::string& value) {
  const bool digits = value.size() == 6 && std::all_of(value.begin(), value.end(), [](char c) {
                        return c >= '0' && c <= '9';
                      });
  const int month = digits ? std::stoi(value.substr(4)) : 0;
  if (!digits || month < 1 || month > 12) return "must be a LinkedIn-Version of six digits YYYYMM";
  return "";
}

std::string check_not_empty(std::string& value) {
  return value.empty() ? "must not be empty" : "";
}

// server.trusted_proxies entries: an IPv4/IPv6 address with an optional /prefix.
std::string check_network(std::string& value) {
  const std::string bad = "must be an IP address or network such as 10.0.0.0/8 or fd00::/8";
  const auto slash = value.find('/');
  const std::string addr = value.substr(0, slash);
  unsigned char buf[16];
  unsigned max_prefix = 0;
  if (inet_pton(AF_INET, addr.c_str(), buf) == 1) {
    max_prefix = 32;
  } else if (inet_pton(AF_INET6, addr.c_str(), buf) == 1) {
    max_prefix = 128;
  } else {
    return bad;
  }
  if (slash == std::string::npos) return "";
  const std::string prefix = value.substr(slash + 1);
  unsigned v = 0;
  auto r = std::from_chars(prefix.data(), prefix.data() + prefix.size(), v);
  if (prefix.empty() || r.ec != std::errc{} || r.ptr != prefix.data() + prefix.size() ||
      v > max_prefix)
    return bad;
  return "";
}

std::string check_origin(std::string& value) {
  if (value == "*") return "";
  Url url;
  std::string problem = split_url(value, url);
  if (problem.empty() && (url.scheme == "http" || url.scheme == "https") && !url.has_userinfo &&
      url.rest.empty()) {
    return "";
  }
  return "must be \"*\" or an origin such as https://shop.example.com (scheme and host, optional "
         "port, no path or trailing slash)";
}

// Walks the YAML tree against the known keys, converting each value into the Config field it
// names. Owns nothing but the error list it appends to and the line of every key it saw.
// Single-threaded, used once per load.
class ConfigReader {
 public:
  using ReadFn = std::function<void(const YAML::Node& value, const std::string& path)>;
  struct Field {
    std::string_view name;
    ReadFn read;
  };

  explicit ConfigReader(std::vector<ConfigError>& errors) : errors_(errors) {}

  void error(std::string path, int line, std::string message) {
    errors_.push_back(ConfigError{std::move(path), std::move(message), line});
  }

  // The line where the key at `path` was set, or 0 when it was not set in the file.
  int line(const std::string& path) const {
    auto it = lines_.find(path);
    return it == lines_.end() ? 0 : it->second;
  }

  void read_map(const YAML::Node& node, const std::string& path, const std::vector<Field>& fields) {
    if (node.IsNull()) return;  // "server:" with nothing under it: all defaults
    if (!node.IsMap()) {
      error(path, line_of(node), path.empty() ? "the config must be a YAML mapping of sections"
                                              : "must be a mapping of keys");
      return;
    }
    std::set<std::string> seen;
    for (const auto& entry : node) {
      const YAML::Node& key = entry.first;
      if (!key.IsScalar()) {
        error(path, line_of(key), "keys must be plain names");
        continue;
      }
      const std::string& name = key.Scalar();
      const std::string child = join_path(path, name);
      if (!seen.insert(name).second) {
        error(child, line_of(key), "duplicate key");
        continue;
      }
      auto field = std::find_if(fields.begin(), fields.end(),
                                [&](const Field& f) { return f.name == name; });
      if (field == fields.end()) {
        error(child, line_of(key), "unknown key" + suggestion(name, fields));
        continue;
      }
      lines_[child] = line_of(key);
      field->read(entry.second, child);
    }
  }

  ReadFn section(std::vector<Field> fields) {
    return [this, fields = std::move(fields)](const YAML::Node& v, const std::string& p) {
      read_map(v, p, fields);
    };
  }

  ReadFn text(std::string& out, Check check = {}, bool secret = false) {
    return [this, &out, check, secret](const YAML::Node& v, const std::string& p) {
      auto s = scalar(v, p);
      if (!s) return;
      if (check) {
        std::string problem = check(*s);
        if (!problem.empty()) {
          value_error(p, v, problem, *s, secret);
          return;
        }
      }
      out = std::move(*s);
    };
  }

  ReadFn path(fs::path& out) {
    return [this, &out](const YAML::Node& v, const std::string& p) {
      if (auto s = scalar(v, p)) out = *s;
    };
  }

  template <class T>
  ReadFn count(T& out, uint64_t min, uint64_t max) {
    return [this, &out, min, max](const YAML::Node& v, const std::string& p) {
      auto s = scalar(v, p);
      if (!s) return;
      uint64_t n = 0;
      if (!parse_uint(*s, n)) {
        value_error(p, v, "must be a whole number", *s);
      } else if (n < min || n > max) {
        value_error(p, v, range_message(min, max), *s);
      } else {
        out = static_cast<T>(n);
      }
    };
  }

  ReadFn size(uint64_t& out, uint64_t min) {
    return [this, &out, min](const YAML::Node& v, const std::string& p) {
      auto s = scalar(v, p);
      if (!s) return;
      uint64_t n = 0;
      if (!parse_size(*s, n)) {
        value_error(p, v, "must be " + std::string(kSizeExample) + " (KB/MB/GB are powers of 1000)",
                    *s);
      } else if (n < min) {
        value_error(p, v, "must be at least " + std::to_string(min) + " bytes", *s);
      } else {
        out = n;
      }
    };
  }

  // min 0 allows "0"; min 1ms requires a positive duration.
  ReadFn duration(Millis& out, Millis min) {
    return [this, &out, min](const YAML::Node& v, const std::string& p) {
      auto s = scalar(v, p);
      if (!s) return;
      Millis d{};
      if (!parse_duration(*s, d)) {
        value_error(p, v, "must be " + std::string(kDurationExample) + " (or combined, e.g. 1h30m)",
                    *s);
      } else if (d < min) {
        value_error(p, v, "must be greater than 0", *s);
      } else {
        out = d;
      }
    };
  }

  ReadFn flag(bool& out) {
    return [this, &out](const YAML::Node& v, const std::string& p) {
      auto s = scalar(v, p);
      if (!s) return;
      if (iequals(*s, "true")) {
        out = true;
      } else if (iequals(*s, "false")) {
        out = false;
      } else {
        value_error(p, v, "must be true or false", *s);
      }
    };
  }

  template <class E>
  ReadFn choice(E& out, std::vector<std::pair<std::string_view, E>> options) {
    return [this, &out, options = std::move(options)](const YAML::Node& v, const std::string& p) {
      auto s = scalar(v, p);
      if (!s) return;
      std::string names;
      for (const auto& [name, value] : options) {
        if (*s == name) {
          out = value;
          return;
        }
        if (!names.empty()) names += " | ";
        names += name;
      }
      value_error(p, v, "must be one of " + names, *s);
    };
  }

  ReadFn list(std::vector<std::string>& out, Check check, bool secret) {
    return [this, &out, check, secret](const YAML::Node& v, const std::string& p) {
      if (v.IsNull()) {
        out.clear();
        return;
      }
      if (!v.IsSequence()) {
        error(p, line_of(v), "must be a list, e.g. [a, b] or one \"- item\" per line");
        return;
      }
      std::vector<std::string> items;
      bool ok = true;
      for (size_t i = 0; i < v.size(); ++i) {
        const std::string item_path = p + "[" + std::to_string(i) + "]";
        const YAML::Node item = v[i];
        auto s = scalar(item, item_path);
        if (!s) {
          ok = false;
          continue;
        }
        std::string problem = check(*s);
        if (!problem.empty()) {
          value_error(item_path, item, problem, *s, secret);
          ok = false;
          continue;
        }
        items.push_back(std::move(*s));
      }
      if (ok) out = std::move(items);
    };
  }

  // The event name -> rule map; its keys are free-form names, so nothing here is "unknown".
  ReadFn rules(std::map<std::string, uint64_t>& out) {
    return [this, &out](const YAML::Node& v, const std::string& p) {
      if (v.IsNull()) return;
      if (!v.IsMap()) {
        error(p, line_of(v), "must be a mapping of event name -> rule URN or number");
        return;
      }
      std::set<std::string> seen;
      for (const auto& entry : v) {
        const YAML::Node& key = entry.first;
        if (!key.IsScalar() || key.Scalar().empty()) {
          error(p, line_of(key), "event names must be non-empty plain names");
          continue;
        }
        const std::string name = key.Scalar();
        const std::string child = join_path(p, name);
        if (!seen.insert(name).second) {
          error(child, line_of(key), "duplicate event name");
          continue;
        }
        lines_[child] = line_of(key);
        auto s = scalar(entry.second, child);
        if (!s) continue;
        uint64_t rule = 0;
        if (!parse_rule(*s, rule)) {
          value_error(child, entry.second,
                      "must be urn:lla:llaPartnerConversion:N or a rule number N (N > 0)", *s);
          continue;
        }
        out[name] = rule;
      }
    };
  }

 private:
  // The env-expanded text of a scalar value; a YAML null reads as "". nullopt when the node is not
  // a scalar or its expansion failed (the error is recorded).
  std::optional<std::string> scalar(const YAML::Node& v, const std::string& p) {
    if (v.IsNull()) return std::string();
    if (!v.IsScalar()) {
      error(p, line_of(v), v.IsMap() ? "must be a single value, not a mapping"
                                     : "must be a single value, not a list");
      return std::nullopt;
    }
    Result<std::string> expanded = expand_env(v.Scalar());
    if (!expanded) {
      error(p, line_of(v), expanded.error());
      return std::nullopt;
    }
    return std::move(expanded).value();
  }

  void value_error(const std::string& p, const YAML::Node& v, const std::string& problem,
                   std::string_view value, bool secret = false) {
    std::string message = problem;
    if (value.empty()) {
      if (problem.find("empty") == std::string::npos) message += " (got an empty value)";
    } else if (!secret) {
      message += " (got " + quote_value(value) + ")";
    }
    int at = line_of(v);
    error(p, at != 0 ? at : line(p), std::move(message));
  }

  static std::string range_message(uint64_t min, uint64_t max) {
    if (max == UINT64_MAX || max == UINT_MAX) return "must be at least " + std::to_string(min);
    return "must be between " + std::to_string(min) + " and " + std::to_string(max);
  }

  static std::string suggestion(const std::string& name, const std::vector<Field>& fields) {
    std::string_view best;
    size_t best_distance = SIZE_MAX;
    for (const Field& f : fields) {
      const size_t d = edit_distance(name, f.name);
      if (d < best_distance) {
        best_distance = d;
        best = f.name;
      }
    }
    if (!best.empty() &&
        best_distance <= std::max<size_t>(1, std::min<size_t>(3, name.size() / 3))) {
      return " (did you mean \"" + std::string(best) + "\"?)";
    }
    std::string known;
    for (const Field& f : fields) {
      known += known.empty() ? "" : ", ";
      known += f.name;
    }
    return " (known keys here: " + known + ")";
  }

  std::vector<ConfigError>& errors_;
  std::map<std::string, int> lines_;
};

// The schema of contract §4: every key, the field it fills and how its value is checked.
void read_config(const YAML::Node& root, Config& c, ConfigReader& r) {
  constexpr Millis kAny{0};
  constexpr Millis kPositive{1};
  ServerConfig& server = c.server;
  LinkedInConfig& li = c.linkedin;
  r.read_map(
      root, "",
      {
          {"server",
           r.section({
               {"listen", r.text(server.listen, check_listen)},
               {"io_threads", r.count(server.io_threads, 0, 1024)},
               {"ingest_keys", r.list(server.ingest_keys, check_not_empty, /*secret=*/true)},
               {"cors_origins", r.list(server.cors_origins, check_origin, /*secret=*/false)},
               {"max_body_bytes", r.size(server.max_body_bytes, 1)},
               {"max_connections", r.count(server.max_connections, 1, UINT_MAX)},
               {"header_timeout", r.duration(server.header_timeout, kPositive)},
               {"body_timeout", r.duration(server.body_timeout, kPositive)},
               {"idle_timeout", r.duration(server.idle_timeout, kPositive)},
               {"shutdown_grace", r.duration(server.shutdown_grace, kAny)},
               {"shutdown_timeout", r.duration(server.shutdown_timeout, kPositive)},
               // Hostile-input limits (docs/security.md).
               {"per_client_rate", r.count(server.per_client_rate, 0, 1'000'000)},
               {"per_client_burst", r.count(server.per_client_burst, 0, 1'000'000)},
               {"trusted_proxies", r.list(server.trusted_proxies, check_network, /*secret=*/false)},
               {"max_buffered_bytes", r.size(server.max_buffered_bytes, 1)},
               {"max_events_per_request", r.count(server.max_events_per_request, 1, 1'000'000)},
           })},
          {"admin", r.section({{"listen", r.text(c.admin.listen, check_listen)}})},
          {"log", r.section({
                      {"level", r.choice<std::string>(c.log.level, {{"debug", "debug"},
                                                                    {"info", "info"},
                                                                    {"warn", "warn"},
                                                                    {"error", "error"}})},
                      {"format",
                       r.choice<std::string>(c.log.format, {{"json", "json"}, {"text", "text"}})},
                  })},
          {"spool", r.section({
                        {"dir", r.path(c.spool.dir)},
                        {"max_bytes", r.size(c.spool.max_bytes, 1)},
                        {"fsync", r.choice(c.spool.fsync, {{"always", FsyncMode::kAlways},
                                                           {"batch", FsyncMode::kBatch},
                                                           {"off", FsyncMode::kOff}})},
                        {"dead_letter_retention",
                         r.duration(c.spool.dead_letter_retention, kPositive)},
                    })},
          {"dedup", r.section({
                        {"window", r.duration(c.dedup.window, kPositive)},
                        {"backend", r.choice(c.dedup.backend, {{"local", DedupBackend::kLocal},
                                                               {"redis", DedupBackend::kRedis}})},
                        // May carry a password: never echoed.
                        {"redis_url", r.text(c.dedup.redis_url, check_redis_url, /*secret=*/true)},
                        {"redis_unavailable",
                         r.choice(c.dedup.redis_unavailable, {{"local", RedisUnavailable::kLocal},
                                                              {"reject", RedisUnavailable::kReject}})},
                    })},
          {"linkedin",
           r.section({
               {"api_base", r.text(li.api_base, check_api_base)},
               {"version", r.text(li.version, check_version)},
               {"access_token", r.text(li.access_token, {}, /*secret=*/true)},
               {"token_file", r.path(li.token_file)},
               {"ca_file", r.path(li.ca_file)},
               {"oauth",
                r.section({
                    {"token_url", r.text(li.oauth.token_url, check_secure_url)},
                    {"introspect_url", r.text(li.oauth.introspect_url, check_secure_url)},
                    {"authorize_url", r.text(li.oauth.authorize_url, check_secure_url)},
                    {"redirect_uri", r.text(li.oauth.redirect_uri, check_redirect_uri)},
                    {"scopes", r.text(li.oauth.scopes, check_not_empty)},
                    {"client_id", r.text(li.oauth.client_id)},
                    {"client_secret", r.text(li.oauth.client_secret, {}, /*secret=*/true)},
                    {"refresh_token", r.text(li.oauth.refresh_token, {}, /*secret=*/true)},
                })},
               {"batch_max_events", r.count(li.batch_max_events, 1, 5000)},
               {"flush_interval", r.duration(li.flush_interval, kPositive)},
               {"max_in_flight", r.count(li.max_in_flight, 1, 1024)},
               {"connect_timeout", r.duration(li.connect_timeout, kPositive)},
               {"response_timeout", r.duration(li.response_timeout, kPositive)},
               {"rate_limit", r.section({
                                  {"per_minute", r.count(li.rate_limit.per_minute, 0, UINT64_MAX)},
                                  {"per_day", r.count(li.rate_limit.per_day, 0, UINT64_MAX)},
                                  {"shared", r.flag(li.rate_limit.shared)},
                              })},
               {"retry", r.section({
                             {"initial_backoff", r.duration(li.retry.initial_backoff, kPositive)},
                             {"max_backoff", r.duration(li.retry.max_backoff, kPositive)},
                         })},
               {"pause_recheck", r.duration(li.pause_recheck, kPositive)},
               {"dry_run", r.flag(li.dry_run)},
           })},
          {"conversions", r.rules(c.conversions)},
      });
}

fs::path absolute_dir(const fs::path& dir) {
  std::error_code ec;
  fs::path base = dir.empty() ? fs::current_path(ec) : fs::absolute(dir, ec);
  if (ec) base = dir;
  return base.lexically_normal();
}

fs::path resolve_against(const fs::path& base, const fs::path& p) {
  fs::path out = (p.is_absolute() ? p : base / p).lexically_normal();
  if (!out.has_filename() && out.has_parent_path() && out != out.root_path()) {
    out = out.parent_path();  // "/srv/data/" -> "/srv/data"
  }
  return out;
}

// Cross-key checks and path resolution, after every key has been read.
void finish(Config& c, const fs::path& base_dir, ConfigReader& r) {
  const fs::path base = absolute_dir(base_dir);
  if (c.spool.dir.empty()) {
    r.error("spool.dir", r.line("spool.dir"), "must not be empty");
  } else {
    c.spool.dir = resolve_against(base, c.spool.dir);
  }
  if (c.linkedin.token_file.empty()) {
    r.error("linkedin.token_file", r.line("linkedin.token_file"), "must not be empty");
  } else {
    c.linkedin.token_file = resolve_against(c.spool.dir, c.linkedin.token_file);
  }
  if (!c.linkedin.ca_file.empty()) {
    c.linkedin.ca_file = resolve_against(base, c.linkedin.ca_file);
    std::error_code ec;
    if (!fs::is_regular_file(c.linkedin.ca_file, ec)) {
      r.error("linkedin.ca_file", r.line("linkedin.ca_file"),
              "no such file: " + c.linkedin.ca_file.string());
    }
  }
  if (c.linkedin.retry.max_backoff < c.linkedin.retry.initial_backoff) {
    r.error("linkedin.retry.max_backoff", r.line("linkedin.retry.max_backoff"),
            "must not be less than linkedin.retry.initial_backoff");
  }
  if (c.linkedin.rate_limit.shared && c.dedup.backend != DedupBackend::kRedis) {
    r.error("linkedin.rate_limit.shared", r.line("linkedin.rate_limit.shared"),
            "a shared budget needs dedup.backend: redis (the budget lives in dedup.redis_url)");
  }
}

// Counts the YAML documents in a text, stopping at `limit`; `second_line` gets the 1-based line
// where the second one starts. Used instead of YAML::LoadAll, which in yaml-cpp 0.7 never returns
// on some inputs (a lone "," yields empty documents forever until memory runs out; found by
// tests/fuzz/config_fuzz.cpp, kept as tests/fuzz/regressions/config/lone_comma.yaml).
class DocumentCounter final : public YAML::EventHandler {
 public:
  size_t count(const std::string& yaml, size_t limit, int& second_line) {
    std::istringstream in(yaml);
    YAML::Parser parser(in);
    size_t docs = 0;
    while (docs < limit && parser.HandleNextDocument(*this)) {
      ++docs;
      if (docs == 2) second_line = start_line_;
    }
    return docs;
  }
  void OnDocumentStart(const YAML::Mark& mark) override { start_line_ = mark.line + 1; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

 private:
  int start_line_ = 0;
};

ConfigLoad load_impl(const std::string& yaml, const fs::path& base_dir) {
  ConfigLoad load;
  ConfigReader reader(load.errors);
  try {
    int second_line = 0;
    const size_t docs = DocumentCounter().count(yaml, 2, second_line);
    if (docs > 1) {
      reader.error("", second_line, "the config must be a single YAML document");
    }
    if (docs > 0) read_config(YAML::Load(yaml), load.config, reader);
  } catch (const YAML::ParserException& e) {
    // yaml-cpp's messages name the syntax problem, never the text around it.
    reader.error("", e.mark.is_null() ? 0 : e.mark.line + 1, "YAML syntax error: " + e.msg);
  } catch (const YAML::Exception& e) {
    reader.error("", e.mark.is_null() ? 0 : e.mark.line + 1, "unreadable YAML: " + e.msg);
  }
  finish(load.config, base_dir, reader);
  // In file order; errors without a line (whole-file problems) first.
  std::stable_sort(load.errors.begin(), load.errors.end(),
                   [](const ConfigError& a, const ConfigError& b) { return a.line < b.line; });
  return load;
}

}  // namespace

bool parse_listen(std::string_view text, HostPort& out) {
  Authority a;
  // ":8080" and "*:8080" mean every IPv4 interface, as in most servers' listen syntax.
  if (!text.empty() && text.front() == ':') {
    a.host = "0.0.0.0";
    a.port = std::string(text.substr(1));
  } else if (text.substr(0, 2) == "*:") {
    a.host = "0.0.0.0";
    a.port = std::string(text.substr(2));
  } else if (!split_authority(text, a).empty()) {
    return false;
  }
  if (!a.port || !valid_port(*a.port, 0)) return false;
  std::string host = a.host;
  if (host.front() == '[') {
    host = host.substr(1, host.size() - 2);
  } else if (host == "localhost") {
    host = "127.0.0.1";
  } else if (!is_ipv4(host)) {
    return false;
  }
  uint64_t port = 0;
  parse_uint(*a.port, port);
  out.host = std::move(host);
  out.port = static_cast<uint16_t>(port);
  return true;
}

ConfigLoad load_config_string(const std::string& yaml, const fs::path& base_dir) {
  return load_impl(yaml, base_dir);
}

ConfigLoad load_config_file(const fs::path& file) {
  std::error_code ec;
  fs::path source = fs::absolute(file, ec);
  if (ec) source = file;
  source = source.lexically_normal();
  auto unreadable = [&](std::string why) {
    ConfigLoad load;
    load.config.source = source;
    load.errors.push_back(ConfigError{"", "cannot read the config file: " + std::move(why), 0});
    return load;
  };
  const fs::file_status status = fs::status(source, ec);
  if (ec) return unreadable(ec.message());
  if (fs::is_directory(status)) return unreadable("it is a directory");
  std::ifstream in(source, std::ios::binary);
  if (!in) return unreadable(std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  ConfigLoad load = load_impl(text.str(), source.parent_path());
  load.config.source = source;
  return load;
}

ConfigLoad default_config() {
  ConfigLoad load;
  ConfigReader reader(load.errors);
  load.config.linkedin.dry_run = true;
  load.config.conversions = {{"purchase", 123}};
  finish(load.config, fs::path(), reader);
  return load;
}

}  // namespace capi_relay
