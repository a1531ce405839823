#pragma once
// `capi-relay auth login|refresh|status`: LinkedIn's OAuth 2.0 three-legged flow.
//
// login: prints the authorization URL (oauth.authorize_url with response_type=code, client_id,
// redirect_uri, a random state and oauth.scopes), then receives the redirect either on a tiny
// blocking HTTP listener bound to oauth.redirect_uri's host:port, or (--paste) as the redirected
// URL pasted on stdin; checks state, handles error=, exchanges the code at oauth.token_url and
// stores both tokens with their expiries through the TokenStore (linkedin.token_file, 0600).
// refresh: the refresh-token grant through the TokenStore. status: both tokens' lifetimes.
// Tokens are never printed.
//
// Threading: runs on the command's thread; the listener blocks it until the redirect arrives or
// kLoginTimeoutMs passes.
#include <cstdint>
#include <string>
#include <string_view>

#include "capi_relay/cli/context.hpp"
#include "capi_relay/common/result.hpp"
#include "capi_relay/config/config.hpp"
#include "capi_relay/upload/http_client.hpp"
#include "capi_relay/upload/token_store.hpp"

namespace capi_relay {

inline constexpr int kLoginTimeoutMs = 10 * 60 * 1000;

// 32 lowercase hex characters from the random source.
std::string make_oauth_state(RandomSource& random);
std::string authorization_url(const OAuthConfig& oauth, std::string_view state);

// The query parameters of a redirect. Accepts a full URL, a path with a query, or a bare query
// ("code=..&state=..", with or without '?').
struct RedirectParams {
  std::string code;
  std::string state;
  std::string error;              // e.g. "user_cancelled_login"
  std::string error_description;
};
RedirectParams parse_redirect(std::string_view url);

// POSTs grant_type=authorization_code to oauth.token_url and returns the tokens with expiries
// computed from now_ms. Errors name the OAuth error code and description, never a token.
Result<TokenSet> exchange_authorization_code(HttpClient& client, const std::string& token_path,
                                             const OAuthConfig& oauth, const std::string& code,
                                             int64_t now_ms);

// Listens on redirect_uri's host:port until a request for its path arrives; answers the browser
// with a short HTML page and returns the request target (path + query). Requests for other paths
// get 404 and the wait goes on.
Result<std::string> wait_for_redirect(const ParsedUrl& redirect, int timeout_ms,
                                      std::ostream& progress);

int run_auth(const CliContext& ctx);

}  // namespace capi_relay
