// LinkedInApi: authorized REST calls, paging, encoding and error explanations.
#include "capi_relay/cli/linkedin_api.hpp"

#include <simdjson.h>

#include <cctype>
#include <set>

namespace capi_relay {

namespace {

constexpr size_t kMaxPages = 10000;  // a server that never stops paging is a bug, not data

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [k, v] : fields) {
    if (!out.empty()) out += '&';
    out += percent_encode(k);
    out += '=';
    out += percent_encode(v);
  }
  return out;
}

std::string campaign_conversion_key(uint64_t campaign_id, uint64_t rule_id) {
  // Rest.li 2.0: the URNs' colons are reserved characters inside a key and must be encoded; the
  // parentheses, the comma and the field names' colons are syntax and stay as they are.
  return "(campaign:" + percent_encode("urn:li:sponsoredCampaign:" + std::to_string(campaign_id)) +
         ",conversion:" +
         percent_encode("urn:lla:llaPartnerConversion:" + std::to_string(rule_id)) + ")";
}

Result<std::unique_ptr<HttpClient>> make_http_client(const std::string& url, const Config& config,
                                                     ParsedUrl* parsed) {
  auto u = parse_url(url);
  if (!u) return Error{"invalid URL " + url + ": " + u.error()};
  HttpClientOptions o;
  o.origin = u->origin();
  o.ca_file = config.linkedin.ca_file;
  o.connect_timeout = config.linkedin.connect_timeout;
  o.response_timeout = config.linkedin.response_timeout;
  o.max_idle_connections = 2;
  o.user_agent = std::string("capi-relay/") + CAPI_RELAY_VERSION;
  auto client = HttpClient::create(o);
  if (!client) return Error{url + ": " + client.error()};
  if (parsed) *parsed = *u;
  return client;
}

ApiError parse_api_error(int status, std::string_view body) {
  ApiError e;
  e.status = status;
  simdjson::dom::parser parser;
  simdjson::padded_string padded(body);
  simdjson::dom::element doc;
  if (parser.parse(padded).get(doc) != simdjson::SUCCESS) {
    // Not JSON: keep a short plain-text message (HTML error pages are not worth printing).
    if (!body.empty() && body.front() != '<' && body.size() < 300) e.message = std::string(body);
    return e;
  }
  std::string_view s;
  if (doc["code"].get_string().get(s) == simdjson::SUCCESS) e.code = std::string(s);
  if (doc["message"].get_string().get(s) == simdjson::SUCCESS) {
    e.message = std::string(s);
  } else if (doc["error_description"].get_string().get(s) == simdjson::SUCCESS) {
    e.message = std::string(s);
  } else if (doc["error"].get_string().get(s) == simdjson::SUCCESS) {
    e.message = std::string(s);
  }
  return e;
}

std::string describe_failure(std::string_view what, const HttpResult& r) {
  std::string head(what);
  if (!r.ok()) {
    return head + ": could not reach the server (" + std::string(http_error_label(r.error)) + ": " +
           r.error_message +
           "); check linkedin.api_base, the network or proxy, and linkedin.ca_file";
  }
  const int status = r.response.status;
  ApiError e = parse_api_error(status, r.response.body);
  std::string said = e.message.empty() ? "" : " (LinkedIn: \"" + e.message + "\")";
  head += " answered " + std::to_string(status) + said + ": ";
  if (status == 401) {
    if (e.code == "REVOKED_ACCESS_TOKEN") {
      return head + "the access token was revoked; run `capi-relay auth login` to authorize again";
    }
    return head +
           "the access token is invalid or expired; run `capi-relay auth refresh` (needs a refresh "
           "token) or `capi-relay auth login`";
  }
  if (status == 403) {
    return head +
           "permission denied: the token may lack a scope (r_ads to read ad accounts, "
           "rw_conversions for conversion rules), the member may have no role on the ad account, "
           "or the app may lack the Advertising API / Conversions API product; run "
           "`capi-relay whoami` to find out which";
  }
  if (status == 404) return head + "not found; check the ids given (account, rule, campaign)";
  if (status == 426) {
    return head + "the LinkedIn-Version header is retired; set linkedin.version to a current YYYYMM";
  }
  if (status == 429) {
    return head + "rate limited (LinkedIn's quotas are daily, reset 00:00 UTC); try again later";
  }
  if (status >= 500) return head + "LinkedIn had an internal error; try again later";
  return head + "LinkedIn refused the request";
}

Result<std::unique_ptr<TokenStore>> open_token_store(const Config& config, Clock& clock) {
  auto store = TokenStore::open(TokenStoreOptions::from_config(config), clock);
  if (!store) return Error{"cannot open the token file: " + store.error()};
  return std::move(store.value());
}

LinkedInApi::LinkedInApi(const Config& config, TokenStore& tokens,
                         std::unique_ptr<HttpClient> http, std::string prefix)
    : config_(config), tokens_(tokens), http_(std::move(http)), prefix_(std::move(prefix)) {}

Result<std::unique_ptr<LinkedInApi>> LinkedInApi::create(const Config& config, TokenStore& tokens) {
  const TokenSet t = tokens.current();
  if (t.access_token.empty() && t.refresh_token.empty()) {
    return Error{"no access token: run `capi-relay auth login` (or set linkedin.access_token)"};
  }
  ParsedUrl u;
  auto http = make_http_client(config.linkedin.api_base, config, &u);
  if (!http) return Error{"linkedin.api_base: " + http.error()};
  std::string prefix = u.target;
  if (auto q = prefix.find('?'); q != std::string::npos) prefix.erase(q);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  return std::unique_ptr<LinkedInApi>(
      new LinkedInApi(config, tokens, std::move(http.value()), std::move(prefix)));
}

HttpResult LinkedInApi::send(HttpRequest request) {
  request.target = prefix_ + request.target;
  request.headers.emplace_back("LinkedIn-Version", config_.linkedin.version);
  request.headers.emplace_back("X-Restli-Protocol-Version", "2.0.0");
  request.headers.emplace_back("Accept", "application/json");
  auto with_token = [&](HttpRequest r) {
    r.headers.emplace_back("Authorization", "Bearer " + tokens_.current().access_token);
    return r;
  };
  if (tokens_.current().access_token.empty() || tokens_.should_refresh()) tokens_.refresh();
  ++requests_;
  HttpResult res = http_->request(with_token(request));
  if (res.ok() && res.response.status == 401 && !tokens_.current().refresh_token.empty() &&
      parse_api_error(401, res.response.body).code != "REVOKED_ACCESS_TOKEN") {
    RefreshResult rr = tokens_.refresh();
    if (rr.outcome == RefreshOutcome::kRefreshed) {
      ++requests_;
      res = http_->request(with_token(std::move(request)));
    }
  }
  return res;
}

HttpResult LinkedInApi::get(const std::string& target) {
  HttpRequest r;
  r.method = "GET";
  r.target = target;
  return send(std::move(r));
}

Result<std::vector<std::string>> LinkedInApi::get_all(const std::string& target, Paging paging,
                                                      size_t page_size) {
  std::vector<std::string> out;
  const char sep = target.find('?') == std::string::npos ? '?' : '&';
  const std::string count = std::to_string(page_size);
  uint64_t start = 0;
  std::string page_token;
  std::set<std::string> seen_tokens;
  simdjson::dom::parser parser;
  for (size_t page = 0; page < kMaxPages; ++page) {
    std::string t = target + sep;
    if (!page_token.empty()) {
      t += "pageSize=" + count + "&pageToken=" + percent_encode(page_token);
    } else if (paging == Paging::kCursor) {
      t += "pageSize=" + count;
    } else {
      t += "start=" + std::to_string(start) + "&count=" + count;
    }
    HttpResult r = get(t);
    const std::string what = "GET " + target;
    if (!r.ok() || r.response.status < 200 || r.response.status >= 300) {
      return Error{describe_failure(what, r)};
    }
    simdjson::padded_string padded(r.response.body);
    simdjson::dom::element doc;
    simdjson::dom::array elements;
    if (parser.parse(padded).get(doc) != simdjson::SUCCESS ||
        doc["elements"].get_array().get(elements) != simdjson::SUCCESS) {
      return Error{what + ": the answer is not a JSON object with \"elements\""};
    }
    size_t n = 0;
    for (simdjson::dom::element e : elements) {
      out.push_back(simdjson::to_string(e));
      ++n;
    }
    // Cursor paging: a next token means there is more, whatever the request style was.
    std::string_view next;
    if (doc["metadata"]["nextPageToken"].get_string().get(next) == simdjson::SUCCESS &&
        !next.empty()) {
      if (!seen_tokens.insert(std::string(next)).second) {
        return Error{what + ": the server repeated a page token (paging loop)"};
      }
      page_token = std::string(next);
      if (n == 0) break;  // a token with an empty page: nothing more to read
      continue;
    }
    if (!page_token.empty() || paging == Paging::kCursor) break;  // last cursor page
    // Index paging.
    if (n == 0) break;
    start += n;
    int64_t total = -1;
    if (doc["paging"]["total"].get_int64().get(total) == simdjson::SUCCESS && total >= 0) {
      if (start >= static_cast<uint64_t>(total)) break;
    } else if (n < page_size) {
      break;  // a short page without a total is the last one
    }
  }
  return out;
}

}  // namespace capi_relay
