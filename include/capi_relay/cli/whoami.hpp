#pragma once
// `capi-relay whoami`: checks the stored access token and says what is wrong and what to do.
// With oauth.client_id + client_secret it asks LinkedIn's introspection endpoint (active, status,
// scopes, expiry); in every case it makes one cheap authorized call,
// GET /rest/adAccountUsers?q=authenticatedUser (the member's ad-account roles), and tries
// GET /v2/me for the member's name (a failure there is normal for tokens without profile scopes
// and only noted).
//
// Diagnoses: expired / revoked / invalid token (introspection status or 401 codes), missing
// rw_conversions / r_ads scope, an app lacking the Conversions API or Advertising API product,
// a member without an ad-account role that can send conversions.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "capi_relay/cli/context.hpp"

namespace capi_relay {

struct WhoamiProblem {
  std::string code;     // "token_expired", "token_revoked", "token_invalid", "missing_scope",
                        // "app_lacks_product", "no_ad_account_role", "role_cannot_send",
                        // "forbidden", "no_token", "unreachable", "introspection_failed"
  std::string message;  // what is wrong
  std::string fix;      // what to do next
  bool fatal = true;    // false: a warning (exit code stays 0)
};

struct WhoamiReport {
  std::string checked_by;             // "introspection" | "api_call"
  std::optional<bool> active;
  std::string status;                 // introspection status, or "working" after a good API call
  std::vector<std::string> scopes;    // from introspection
  int64_t expires_at_s = 0;           // 0: unknown
  std::string auth_type;
  std::string member_name, member_id; // from /v2/me when readable
  std::vector<std::pair<std::string, std::string>> ad_accounts;  // (account URN, role)
  std::vector<WhoamiProblem> problems;
};

// Builds the report (network calls through ctx's config and token file).
WhoamiReport check_token(const CliContext& ctx);
std::string whoami_json(const WhoamiReport& r);
int run_whoami(const CliContext& ctx);

}  // namespace capi_relay
