// `whoami`: token introspection, one authorized call, the member's name, and diagnoses.
#include "capi_relay/cli/whoami.hpp"

#include <simdjson.h>

#include <algorithm>
#include <set>

#include "capi_relay/cli/linkedin_api.hpp"
#include "capi_relay/cli/output.hpp"
#include "capi_relay/common/json_text.hpp"

namespace capi_relay {

namespace {

constexpr int64_t kDayMs = 24ll * 3600 * 1000;

// Roles that may send conversions for an account (linkedin-capi.md §1).
const std::set<std::string>& sending_roles() {
  static const std::set<std::string> r = {"ACCOUNT_BILLING_ADMIN", "ACCOUNT_MANAGER",
                                          "CAMPAIGN_MANAGER", "CREATIVE_MANAGER"};
  return r;
}

bool contains_ci(std::string_view hay, std::string_view needle) {
  auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end(),
                        [](char a, char b) { return std::tolower(a) == std::tolower(b); });
  return it != hay.end();
}

void add(WhoamiReport& r, std::string code, std::string message, std::string fix,
         bool fatal = true) {
  for (const auto& p : r.problems) {
    if (p.code == code && p.message == message) return;
  }
  r.problems.push_back({std::move(code), std::move(message), std::move(fix), fatal});
}

bool has_problem(const WhoamiReport& r, std::string_view code) {
  return std::any_of(r.problems.begin(), r.problems.end(),
                     [&](const WhoamiProblem& p) { return p.code == code; });
}

void missing_scope(WhoamiReport& r, const std::string& scope) {
  if (scope == "rw_conversions") {
    add(r, "missing_scope", "the token lacks the rw_conversions scope (needed to upload conversions "
                            "and manage rules)",
        "add the Conversions API product to the app (Developer Portal > Products; without it "
        "LinkedIn cannot grant rw_conversions), keep rw_conversions in linkedin.oauth.scopes, then "
        "run `capi-relay auth login`");
  } else if (scope == "r_ads") {
    add(r, "missing_scope", "the token lacks the r_ads scope (needed to read ad accounts and "
                            "campaigns)",
        "add the Advertising API product to the app, keep r_ads in linkedin.oauth.scopes, then run "
        "`capi-relay auth login`");
  }
}

void token_code_problem(WhoamiReport& r, const ApiError& e) {
  if (e.code == "REVOKED_ACCESS_TOKEN" || contains_ci(e.message, "revoked")) {
    add(r, "token_revoked", "the access token was revoked (by the member, an admin or LinkedIn)",
        "run `capi-relay auth login` to authorize again");
  } else if (contains_ci(e.message, "expired") || e.code == "EXPIRED_ACCESS_TOKEN") {
    add(r, "token_expired", "the access token has expired",
        "run `capi-relay auth refresh` (with a refresh token) or `capi-relay auth login`");
  } else {
    add(r, "token_invalid", "LinkedIn does not accept the access token (" +
                                (e.message.empty() ? std::string("401") : e.message) + ")",
        "run `capi-relay auth login`; check that linkedin.access_token / the token file holds a "
        "3-legged member token of this app");
  }
}

void introspect(const CliContext& ctx, const std::string& token, WhoamiReport& r) {
  const OAuthConfig& o = ctx.config.linkedin.oauth;
  ParsedUrl url;
  auto client = make_http_client(o.introspect_url, ctx.config, &url);
  if (!client) {
    add(r, "introspection_failed", "oauth.introspect_url: " + client.error(),
        "fix oauth.introspect_url", false);
    return;
  }
  HttpRequest req;
  req.method = "POST";
  req.target = url.target;
  req.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                 {"Accept", "application/json"}};
  req.body = form_encode({{"client_id", o.client_id}, {"client_secret", o.client_secret},
                          {"token", token}});
  HttpResult res = (*client)->request(std::move(req));
  if (!res.ok() || res.response.status != 200) {
    std::string why = !res.ok() ? std::string(http_error_label(res.error)) + ": " + res.error_message
                                : "HTTP " + std::to_string(res.response.status);
    if (res.ok()) {
      ApiError e = parse_api_error(res.response.status, res.response.body);
      if (!e.message.empty()) why += " (" + e.message + ")";
    }
    add(r, "introspection_failed", "token introspection failed: " + why,
        res.ok() && (res.response.status == 401 || res.response.status == 400)
            ? "check linkedin.oauth.client_id and client_secret (they must belong to the app that "
              "issued the token)"
            : "check the network; the API call below still tells whether the token works",
        false);
    return;
  }
  simdjson::dom::parser parser;
  simdjson::padded_string padded(res.response.body);
  simdjson::dom::element doc;
  if (parser.parse(padded).get(doc) != simdjson::SUCCESS) {
    add(r, "introspection_failed", "token introspection answered something that is not JSON",
        "check oauth.introspect_url", false);
    return;
  }
  r.checked_by = "introspection";
  bool active = false;
  if (doc["active"].get_bool().get(active) == simdjson::SUCCESS) r.active = active;
  std::string_view s;
  if (doc["status"].get_string().get(s) == simdjson::SUCCESS) r.status = std::string(s);
  if (doc["auth_type"].get_string().get(s) == simdjson::SUCCESS) r.auth_type = std::string(s);
  int64_t exp = 0;
  if (doc["expires_at"].get_int64().get(exp) == simdjson::SUCCESS) r.expires_at_s = exp;
  if (doc["scope"].get_string().get(s) == simdjson::SUCCESS) {
    std::string cur;
    for (char c : s) {
      if (c == ',' || c == ' ') {
        if (!cur.empty()) r.scopes.push_back(cur);
        cur.clear();
      } else {
        cur += c;
      }
    }
    if (!cur.empty()) r.scopes.push_back(cur);
  }
  if (r.active.has_value() && !*r.active) {
    if (r.status == "revoked") {
      token_code_problem(r, {401, "REVOKED_ACCESS_TOKEN", ""});
    } else if (r.status == "expired" ||
               (r.expires_at_s > 0 && r.expires_at_s * 1000 <= ctx.clock.now_ms())) {
      token_code_problem(r, {401, "", "expired"});
    } else {
      add(r, "token_invalid", "introspection says the token is not active (status " +
                                  (r.status.empty() ? std::string("unknown") : r.status) + ")",
          "run `capi-relay auth login`");
    }
    return;
  }
  if (!r.scopes.empty()) {
    for (const std::string need : {"rw_conversions", "r_ads"}) {
      if (std::find(r.scopes.begin(), r.scopes.end(), need) == r.scopes.end()) {
        missing_scope(r, need);
      }
    }
  }
  if (r.auth_type == "2L") {
    add(r, "token_invalid", "this is a 2-legged (application) token; the Conversions API needs a "
                            "3-legged member token",
        "run `capi-relay auth login`");
  }
}

bool token_dead(const WhoamiReport& r) {
  return has_problem(r, "token_expired") || has_problem(r, "token_revoked") ||
         has_problem(r, "token_invalid");
}

void check_ad_accounts(LinkedInApi& api, WhoamiReport& r) {
  HttpResult res = api.get("/rest/adAccountUsers?q=authenticatedUser&start=0&count=100");
  if (!res.ok()) {
    add(r, "unreachable", describe_failure("GET /rest/adAccountUsers", res),
        "check linkedin.api_base and the network");
    return;
  }
  const int status = res.response.status;
  ApiError e = parse_api_error(status, res.response.body);
  if (status == 401) {
    token_code_problem(r, e);
    return;
  }
  if (status == 403) {
    const bool scope_known = !r.scopes.empty();
    const bool has_r_ads =
        std::find(r.scopes.begin(), r.scopes.end(), "r_ads") != r.scopes.end();
    if (contains_ci(e.message, "product") || contains_ci(e.message, "application") ||
        (scope_known && has_r_ads && contains_ci(e.message, "permission"))) {
      add(r, "app_lacks_product",
          "LinkedIn refused the ad-account lookup although the token has r_ads (LinkedIn: \"" +
              e.message + "\"): the app probably lacks the Advertising API product",
          "request the Advertising API (and Conversions API) products for the app in LinkedIn's "
          "Developer Portal, then run `capi-relay auth login`");
    } else if (contains_ci(e.message, "scope") || contains_ci(e.message, "permission") ||
               !scope_known) {
      if (!scope_known || !has_r_ads) missing_scope(r, "r_ads");
      add(r, "forbidden", "LinkedIn refused the ad-account lookup (403" +
                              (e.message.empty() ? std::string() : ": " + e.message) + ")",
          "authorize with r_ads and rw_conversions (`capi-relay auth login`); if that does not "
          "help, the app lacks the Advertising API product");
    } else {
      add(r, "forbidden", "LinkedIn refused the ad-account lookup (403: " + e.message + ")",
          "check the app's products and the member's role on the ad account");
    }
    return;
  }
  if (status == 426) {
    add(r, "version_retired", "LinkedIn-Version is retired (426)",
        "set linkedin.version to a current YYYYMM");
    return;
  }
  if (status < 200 || status >= 300) {
    add(r, "unreachable", describe_failure("GET /rest/adAccountUsers", res), "try again later");
    return;
  }
  if (r.checked_by.empty()) {
    r.checked_by = "api_call";
    r.status = "working";
  }
  simdjson::dom::parser parser;
  simdjson::padded_string padded(res.response.body);
  simdjson::dom::element doc;
  simdjson::dom::array elements;
  if (parser.parse(padded).get(doc) == simdjson::SUCCESS &&
      doc["elements"].get_array().get(elements) == simdjson::SUCCESS) {
    for (simdjson::dom::element el : elements) {
      std::string_view account, role;
      if (el["account"].get_string().get(account) != simdjson::SUCCESS) continue;
      if (el["role"].get_string().get(role) != simdjson::SUCCESS) role = "";
      r.ad_accounts.emplace_back(std::string(account), std::string(role));
    }
  }
  if (r.ad_accounts.empty()) {
    add(r, "no_ad_account_role", "the member has no role on any ad account",
        "have an admin of the ad account give this member a role (Account Manager, Campaign "
        "Manager, Creative Manager or Billing Admin) in Campaign Manager > Account settings > "
        "Manage access, then run `capi-relay whoami` again");
    return;
  }
  const bool can_send = std::any_of(r.ad_accounts.begin(), r.ad_accounts.end(), [](const auto& a) {
    return sending_roles().count(a.second) > 0;
  });
  if (!can_send) {
    add(r, "role_cannot_send", "the member's ad-account roles (e.g. " + r.ad_accounts[0].second +
                                   ") cannot send conversions",
        "ask an account admin for Account Manager, Campaign Manager, Creative Manager or Billing "
        "Admin on the ad account");
  }
}

void read_profile(LinkedInApi& api, WhoamiReport& r) {
  HttpResult res = api.get("/v2/me");
  if (!res.ok() || res.response.status != 200) {
    add(r, "profile_unreadable",
        "the member's name could not be read from /v2/me (normal for a token scoped only "
        "rw_conversions r_ads)",
        "nothing to do", false);
    return;
  }
  simdjson::dom::parser parser;
  simdjson::padded_string padded(res.response.body);
  simdjson::dom::element doc;
  if (parser.parse(padded).get(doc) != simdjson::SUCCESS) return;
  std::string_view s;
  std::string first, last;
  if (doc["localizedFirstName"].get_string().get(s) == simdjson::SUCCESS) first = std::string(s);
  if (doc["localizedLastName"].get_string().get(s) == simdjson::SUCCESS) last = std::string(s);
  r.member_name = first + (first.empty() || last.empty() ? "" : " ") + last;
  if (doc["id"].get_string().get(s) == simdjson::SUCCESS) r.member_id = std::string(s);
}

}  // namespace

WhoamiReport check_token(const CliContext& ctx) {
  WhoamiReport r;
  auto tokens = open_token_store(ctx.config, ctx.clock);
  if (!tokens) {
    add(r, "no_token", tokens.error(), "fix or remove the token file, then `capi-relay auth login`");
    return r;
  }
  TokenSet t = (*tokens)->current();
  if (t.access_token.empty()) {
    add(r, "no_token", "no access token is stored",
        t.refresh_token.empty() ? "run `capi-relay auth login` (or set linkedin.access_token)"
                                : "run `capi-relay auth refresh`");
    return r;
  }
  const OAuthConfig& o = ctx.config.linkedin.oauth;
  if (!o.client_id.empty() && !o.client_secret.empty()) introspect(ctx, t.access_token, r);
  if (r.expires_at_s == 0) r.expires_at_s = t.access_token_expires_at;
  if (token_dead(r)) return r;

  auto api = LinkedInApi::create(ctx.config, **tokens);
  if (!api) {
    add(r, "unreachable", api.error(), "fix linkedin.api_base");
    return r;
  }
  check_ad_accounts(**api, r);
  if (token_dead(r)) return r;
  read_profile(**api, r);
  if (r.expires_at_s > 0 && r.expires_at_s * 1000 <= ctx.clock.now_ms() && !token_dead(r)) {
    add(r, "token_expired", "the access token has expired",
        "run `capi-relay auth refresh` or `capi-relay auth login`");
  }
  return r;
}

std::string whoami_json(const WhoamiReport& r) {
  std::string j = "{\"checked_by\":";
  append_json_string(j, r.checked_by);
  j += ",\"active\":";
  j += r.active.has_value() ? (*r.active ? "true" : "false") : "null";
  j += ",\"status\":";
  append_json_string(j, r.status);
  j += ",\"scopes\":[";
  for (size_t i = 0; i < r.scopes.size(); ++i) {
    if (i) j += ',';
    append_json_string(j, r.scopes[i]);
  }
  j += "],\"expires_at\":";
  if (r.expires_at_s > 0) {
    append_json_string(j, format_rfc3339(r.expires_at_s * 1000));
  } else {
    j += "null";
  }
  j += ",\"auth_type\":";
  append_json_string(j, r.auth_type);
  j += ",\"member\":{\"id\":";
  append_json_string(j, r.member_id);
  j += ",\"name\":";
  append_json_string(j, r.member_name);
  j += "},\"ad_accounts\":[";
  for (size_t i = 0; i < r.ad_accounts.size(); ++i) {
    if (i) j += ',';
    j += "{\"account\":";
    append_json_string(j, r.ad_accounts[i].first);
    j += ",\"role\":";
    append_json_string(j, r.ad_accounts[i].second);
    j += '}';
  }
  j += "],\"problems\":[";
  for (size_t i = 0; i < r.problems.size(); ++i) {
    const auto& p = r.problems[i];
    if (i) j += ',';
    j += "{\"code\":";
    append_json_string(j, p.code);
    j += ",\"message\":";
    append_json_string(j, p.message);
    j += ",\"fix\":";
    append_json_string(j, p.fix);
    j += ",\"fatal\":";
    j += p.fatal ? "true" : "false";
    j += '}';
  }
  j += "]}\n";
  return j;
}

int run_whoami(const CliContext& ctx) {
  if (int rc = check_usage(ctx, 0, {}, {"--json"}); rc != kExitOk) return rc;
  const WhoamiReport r = check_token(ctx);
  const bool failed = std::any_of(r.problems.begin(), r.problems.end(),
                                  [](const WhoamiProblem& p) { return p.fatal; });
  if (ctx.args.flag("--json")) {
    ctx.out << whoami_json(r);
    return failed ? kExitFailure : kExitOk;
  }
  const int64_t now = ctx.clock.now_ms();
  if (!r.checked_by.empty()) {
    ctx.out << "token:        "
            << (r.checked_by == "introspection"
                    ? (r.active.value_or(false) ? "active" : "NOT active") +
                          std::string(" (checked by introspection") +
                          (r.auth_type.empty() ? "" : ", " + r.auth_type) + ")"
                    : std::string("works (checked with an API call)"))
            << "\n";
  }
  if (!r.status.empty() && r.checked_by == "introspection") ctx.out << "status:       " << r.status << "\n";
  if (r.expires_at_s > 0) {
    const int64_t left = r.expires_at_s * 1000 - now;
    ctx.out << "expires:      " << format_rfc3339(r.expires_at_s * 1000)
            << (left > 0 ? " (" + std::to_string(left / kDayMs) + " days left)" : " (expired)")
            << "\n";
  }
  if (!r.scopes.empty()) {
    std::string s;
    for (const auto& sc : r.scopes) s += (s.empty() ? "" : ", ") + sc;
    ctx.out << "scopes:       " << s << "\n";
  }
  if (!r.member_name.empty() || !r.member_id.empty()) {
    ctx.out << "member:       " << r.member_name
            << (r.member_id.empty() ? "" : " (id " + r.member_id + ")") << "\n";
  }
  if (!r.ad_accounts.empty()) {
    ctx.out << "ad accounts:\n";
    TextTable t({"  ACCOUNT", "ROLE"});
    for (const auto& [acct, role] : r.ad_accounts) t.add_row({"  " + acct, role});
    std::string rendered = t.render();
    ctx.out << rendered.substr(rendered.find('\n') + 1);
  }
  if (!r.problems.empty()) {
    ctx.out << (failed ? "\nProblems:\n" : "\nNotes:\n");
    for (const auto& p : r.problems) {
      ctx.out << "  " << (p.fatal ? "ERROR " : "note  ") << p.message << "\n"
              << "        -> " << p.fix << "\n";
    }
  } else {
    ctx.out << "\nThe token is ready for the Conversions API.\n";
  }
  return failed ? kExitFailure : kExitOk;
}

}  // namespace capi_relay
