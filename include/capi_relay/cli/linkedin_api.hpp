#pragma once
// LinkedInApi: the management commands' client for LinkedIn's REST API ({linkedin.api_base}):
// every request carries `Authorization: Bearer <token from the TokenStore>`, `LinkedIn-Version`
// and `X-Restli-Protocol-Version: 2.0.0`; a 401 other than REVOKED_ACCESS_TOKEN triggers one
// refresh-token grant (when a refresh token exists) and one retry. get_all() follows paging to
// the end: index paging (start/count, paging.total) and cursor paging (pageSize/pageToken,
// metadata.nextPageToken) are both understood, whichever the answer carries.
//
// Also: URL/form encoding, Rest.li composite keys, and LinkedIn error bodies turned into
// messages that say what to do next.
//
// Threading: one command thread; not thread-safe. Errors: Result errors are complete sentences for
// the user (never containing a token).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "capi_relay/common/result.hpp"
#include "capi_relay/config/config.hpp"
#include "capi_relay/upload/http_client.hpp"
#include "capi_relay/upload/token_store.hpp"

namespace capi_relay {

// Percent-encodes everything but RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~).
std::string percent_encode(std::string_view s);
// Decodes %XX and, when plus_is_space, '+' (query strings / forms).
std::string percent_decode(std::string_view s, bool plus_is_space = true);
// application/x-www-form-urlencoded body.
std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields);

// Rest.li 2.0 composite key of a campaign-conversion association, colons of the URNs encoded:
// "(campaign:urn%3Ali%3AsponsoredCampaign%3A<cid>,conversion:urn%3Alla%3AllaPartnerConversion%3A<rid>)"
std::string campaign_conversion_key(uint64_t campaign_id, uint64_t rule_id);

// An HttpClient for the origin of `url` with the config's CA file and timeouts; `parsed` receives
// the split URL (its target is the path to request).
Result<std::unique_ptr<HttpClient>> make_http_client(const std::string& url, const Config& config,
                                                     ParsedUrl* parsed = nullptr);

// A LinkedIn error answer: {"status":..,"serviceErrorCode":..,"code":"..","message":".."}.
struct ApiError {
  int status = 0;
  std::string code;     // e.g. "REVOKED_ACCESS_TOKEN", may be empty
  std::string message;  // LinkedIn's message, may be empty
};
ApiError parse_api_error(int status, std::string_view body);
// What went wrong and what to do, for a failed request to `what` (e.g. "GET /rest/adAccounts").
std::string describe_failure(std::string_view what, const HttpResult& r);

enum class Paging : uint8_t { kIndex, kCursor };

class LinkedInApi {
 public:
  // Fails on a bad api_base, or when no access token is stored (with what to do next).
  static Result<std::unique_ptr<LinkedInApi>> create(const Config& config, TokenStore& tokens);

  // target: "/rest/..." (api_base's own path, if any, is prepended). Adds the auth and version
  // headers; refreshes once on an expired token.
  HttpResult send(HttpRequest request);
  HttpResult get(const std::string& target);

  // GETs target (which already has "?q=...") page by page and returns every element's JSON text.
  Result<std::vector<std::string>> get_all(const std::string& target, Paging paging,
                                           size_t page_size = 100);
  // Requests made so far (tests).
  uint64_t requests() const { return requests_; }

 private:
  LinkedInApi(const Config& config, TokenStore& tokens, std::unique_ptr<HttpClient> http,
              std::string prefix);

  const Config& config_;
  TokenStore& tokens_;
  std::unique_ptr<HttpClient> http_;
  std::string prefix_;  // api_base path without a trailing slash
  uint64_t requests_ = 0;
};

// Opens the TokenStore of the config (token file, seeded by the config).
Result<std::unique_ptr<TokenStore>> open_token_store(const Config& config, Clock& clock);

}  // namespace capi_relay
