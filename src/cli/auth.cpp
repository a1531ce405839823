// `auth login|refresh|status`: authorization URL, redirect listener / paste, code exchange,
// refresh grant, token lifetimes.
#include "capi_relay/cli/auth.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "capi_relay/cli/linkedin_api.hpp"
#include "capi_relay/cli/output.hpp"
#include "capi_relay/common/json_text.hpp"

namespace capi_relay {

namespace {

constexpr int64_t kDayMs = 24ll * 3600 * 1000;
constexpr size_t kMaxRequestHead = 16 * 1024;
constexpr int kRequestReadTimeoutMs = 10'000;

// Closes a socket descriptor on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;  // the browser went away; nothing left to tell it
    data.remove_prefix(static_cast<size_t>(n));
  }
}

void answer(int fd, int status, std::string_view title, std::string_view text) {
  std::string body = "<!doctype html><html><head><meta charset=\"utf-8\"><title>capi-relay</title>"
                     "</head><body style=\"font-family:sans-serif;margin:3em\"><h2>" +
                     html_escape(title) + "</h2><p>" + html_escape(text) + "</p></body></html>";
  std::string head = "HTTP/1.1 " + std::to_string(status) +
                     (status == 200 ? " OK" : " Not Found") +
                     "\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\n"
                     "Connection: close\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n";
  write_all(fd, head + body);
}

// Reads a request head; returns the request target or empty on a bad/slow request.
std::string read_request_target(int fd) {
  std::string head;
  char buf[2048];
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < kMaxRequestHead) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, kRequestReadTimeoutMs) <= 0) return {};
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    head.append(buf, static_cast<size_t>(n));
  }
  // "GET /callback?code=..&state=.. HTTP/1.1"
  const size_t sp1 = head.find(' ');
  if (sp1 == std::string::npos) return {};
  const size_t sp2 = head.find(' ', sp1 + 1);
  if (sp2 == std::string::npos) return {};
  return head.substr(sp1 + 1, sp2 - sp1 - 1);
}

std::string path_of(std::string_view target) {
  return std::string(target.substr(0, target.find('?')));
}

std::string lifetime_text(int64_t expires_at_s, int64_t now_ms) {
  if (expires_at_s <= 0) return "expiry unknown";
  const int64_t left_ms = expires_at_s * 1000 - now_ms;
  const std::string at = format_rfc3339(expires_at_s * 1000);
  if (left_ms <= 0) return "EXPIRED at " + at;
  return "expires " + at + " (" + std::to_string(left_ms / kDayMs) + " days left)";
}

void append_lifetime_json(std::string& out, const char* name, const std::string& token,
                          int64_t expires_at_s, int64_t now_ms) {
  out += '"';
  out += name;
  out += "\":{\"present\":";
  out += token.empty() ? "false" : "true";
  out += ",\"expires_at\":";
  if (expires_at_s > 0) {
    append_json_string(out, format_rfc3339(expires_at_s * 1000));
    out += ",\"days_left\":" + std::to_string((expires_at_s * 1000 - now_ms) / kDayMs);
    out += ",\"expired\":";
    out += expires_at_s * 1000 <= now_ms ? "true" : "false";
  } else {
    out += "null,\"days_left\":null,\"expired\":null";
  }
  out += '}';
}

bool has_client_credentials(const CliContext& ctx, std::string_view for_what) {
  const auto& o = ctx.config.linkedin.oauth;
  if (!o.client_id.empty() && !o.client_secret.empty()) return true;
  runtime_failure(ctx, std::string(for_what) +
                           " needs linkedin.oauth.client_id and linkedin.oauth.client_secret (the "
                           "app's Auth tab in LinkedIn's Developer Portal); set them in the config, "
                           "e.g. client_secret: ${LINKEDIN_CLIENT_SECRET}");
  return false;
}

int auth_login(const CliContext& ctx) {
  if (int rc = check_usage(ctx, 1, {}, {"--paste"}); rc != kExitOk) return rc;
  if (!has_client_credentials(ctx, "auth login")) return kExitFailure;
  const OAuthConfig& oauth = ctx.config.linkedin.oauth;
  auto redirect = parse_url(oauth.redirect_uri);
  if (!redirect) return runtime_failure(ctx, "oauth.redirect_uri: " + redirect.error());
  auto tokens = open_token_store(ctx.config, ctx.clock);
  if (!tokens) return runtime_failure(ctx, tokens.error());

  const std::string state = make_oauth_state(ctx.random);
  ctx.out << "Open this URL in a browser and sign in as a member with a role on the ad account\n"
             "(Account Manager, Campaign Manager, Creative Manager or Billing Admin):\n\n  "
          << authorization_url(oauth, state) << "\n\n";

  std::string redirected;
  if (ctx.args.flag("--paste")) {
    ctx.out << "After approving, the browser goes to " << oauth.redirect_uri
            << " (the page may fail to load: that is fine).\nPaste the full URL from the "
               "address bar here and press Enter:\n"
            << std::flush;
    if (!std::getline(ctx.in, redirected) || redirected.find_first_not_of(" \t\r") ==
                                                 std::string::npos) {
      return runtime_failure(ctx, "no URL was pasted; run `capi-relay auth login --paste` again");
    }
  } else {
    if (redirect->scheme != "http") {
      return runtime_failure(ctx, "the listener serves plain http only; oauth.redirect_uri is " +
                                      oauth.redirect_uri +
                                      ": use --paste to paste the redirected URL instead");
    }
    ctx.out << "Waiting for the redirect on " << redirect->host << ":" << redirect->port
            << " (on a headless server, press Ctrl-C and use `auth login --paste`)...\n"
            << std::flush;
    auto target = wait_for_redirect(*redirect, kLoginTimeoutMs, ctx.err);
    if (!target) return runtime_failure(ctx, target.error());
    redirected = *target;
  }

  const RedirectParams p = parse_redirect(redirected);
  if (!p.error.empty()) {
    return runtime_failure(ctx, "authorization was refused: " + p.error +
                                    (p.error_description.empty() ? "" : " (" + p.error_description + ")") +
                                    "; check that the app has the products for oauth.scopes (" +
                                    oauth.scopes + ") and run `capi-relay auth login` again");
  }
  if (p.state != state) {
    return runtime_failure(ctx,
                           "the redirect's state does not match this login (a stale or forged "
                           "redirect); run `capi-relay auth login` again and use the new URL");
  }
  if (p.code.empty()) {
    return runtime_failure(ctx, "the redirect carries no code; paste the whole URL, including "
                                "?code=...&state=...");
  }

  ParsedUrl token_url;
  auto client = make_http_client(oauth.token_url, ctx.config, &token_url);
  if (!client) return runtime_failure(ctx, "oauth.token_url: " + client.error());
  auto exchanged = exchange_authorization_code(**client, token_url.target, oauth, p.code,
                                               ctx.clock.now_ms());
  if (!exchanged) return runtime_failure(ctx, exchanged.error());
  if (auto stored = (*tokens)->store(*exchanged); !stored) {
    return runtime_failure(ctx, stored.error());
  }
  const int64_t now = ctx.clock.now_ms();
  ctx.out << "Tokens stored in " << (*tokens)->file().string() << ".\n"
          << "  access token:  " << lifetime_text(exchanged->access_token_expires_at, now) << "\n";
  if (exchanged->refresh_token.empty()) {
    ctx.out << "  refresh token: none issued (programmatic refresh tokens need LinkedIn's "
               "approval); run `capi-relay auth login` again before the access token expires\n";
  } else {
    ctx.out << "  refresh token: " << lifetime_text(exchanged->refresh_token_expires_at, now)
            << "\n";
  }
  ctx.out << "A running relay picks the new token up on SIGHUP or at its next recheck.\n";
  return kExitOk;
}

int auth_refresh(const CliContext& ctx) {
  if (int rc = check_usage(ctx, 1, {}, {}); rc != kExitOk) return rc;
  auto tokens = open_token_store(ctx.config, ctx.clock);
  if (!tokens) return runtime_failure(ctx, tokens.error());
  if ((*tokens)->current().refresh_token.empty()) {
    return runtime_failure(ctx, "no refresh token is stored; run `capi-relay auth login` "
                                "(refresh tokens are issued to apps LinkedIn approved for them)");
  }
  if (!has_client_credentials(ctx, "auth refresh")) return kExitFailure;
  RefreshResult r = (*tokens)->refresh();
  switch (r.outcome) {
    case RefreshOutcome::kRefreshed: {
      const TokenSet t = (*tokens)->current();
      ctx.out << "Access token refreshed: "
              << lifetime_text(t.access_token_expires_at, ctx.clock.now_ms()) << ".\n"
              << "A running relay picks it up on SIGHUP or at its next recheck.\n";
      return kExitOk;
    }
    case RefreshOutcome::kNoRefreshToken:
      return runtime_failure(ctx, "no refresh token is stored; run `capi-relay auth login`");
    case RefreshOutcome::kRejected:
      return runtime_failure(
          ctx, "the token endpoint refused the refresh (" + r.message +
                   "): the refresh token has expired or was revoked, or the client id/secret are "
                   "wrong; run `capi-relay auth login`");
    case RefreshOutcome::kTransient:
      return runtime_failure(ctx, "the token endpoint could not be reached (" + r.message +
                                      "); try again later");
  }
  return kExitFailure;
}

int auth_status(const CliContext& ctx) {
  if (int rc = check_usage(ctx, 1, {}, {"--json"}); rc != kExitOk) return rc;
  auto tokens = open_token_store(ctx.config, ctx.clock);
  if (!tokens) return runtime_failure(ctx, tokens.error());
  const TokenSet t = (*tokens)->current();
  const int64_t now = ctx.clock.now_ms();
  const bool usable = !t.access_token.empty() &&
                      (t.access_token_expires_at == 0 || t.access_token_expires_at * 1000 > now);
  if (ctx.args.flag("--json")) {
    std::string j = "{\"token_file\":";
    append_json_string(j, (*tokens)->file().string());
    j += ',';
    append_lifetime_json(j, "access_token", t.access_token, t.access_token_expires_at, now);
    j += ',';
    append_lifetime_json(j, "refresh_token", t.refresh_token, t.refresh_token_expires_at, now);
    j += "}\n";
    ctx.out << j;
    return usable ? kExitOk : kExitFailure;
  }
  ctx.out << "token file:    " << (*tokens)->file().string() << "\n";
  ctx.out << "access token:  "
          << (t.access_token.empty() ? "none" : lifetime_text(t.access_token_expires_at, now))
          << "\n";
  ctx.out << "refresh token: "
          << (t.refresh_token.empty() ? "none" : lifetime_text(t.refresh_token_expires_at, now))
          << "\n";
  // What to do next, when something is close to biting.
  if (t.access_token.empty()) {
    ctx.out << "\nNo access token: run `capi-relay auth login`.\n";
  } else if (!usable || (t.access_token_expires_at > 0 &&
                         t.access_token_expires_at * 1000 - now < 7 * kDayMs)) {
    ctx.out << "\nThe access token " << (usable ? "expires within 7 days" : "has expired") << ": "
            << (t.refresh_token.empty() ? "run `capi-relay auth login`."
                                        : "run `capi-relay auth refresh` (a running relay also "
                                          "refreshes by itself).")
            << "\n";
  }
  if (!t.refresh_token.empty() && t.refresh_token_expires_at > 0 &&
      t.refresh_token_expires_at * 1000 - now < 30 * kDayMs) {
    ctx.out << "The refresh token ends within 30 days and refreshing does not extend it: run "
               "`capi-relay auth login` before then.\n";
  }
  return usable ? kExitOk : kExitFailure;
}

}  // namespace

std::string make_oauth_state(RandomSource& random) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 2; ++i) {
    uint64_t v = random.next_u64();
    for (int b = 0; b < 16; ++b) {
      s += kHex[v & 15];
      v >>= 4;
    }
  }
  return s;
}

std::string authorization_url(const OAuthConfig& oauth, std::string_view state) {
  // oauth.scopes is space-separated; LinkedIn wants them space-separated too (encoded %20).
  std::string scopes;
  size_t i = 0;
  const std::string& s = oauth.scopes;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == ',' || s[i] == '\t')) ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != ',' && s[j] != '\t') ++j;
    if (j > i) scopes += (scopes.empty() ? "" : " ") + s.substr(i, j - i);
    i = j;
  }
  std::string url = oauth.authorize_url;
  url += url.find('?') == std::string::npos ? '?' : '&';
  url += "response_type=code&client_id=" + percent_encode(oauth.client_id) +
         "&redirect_uri=" + percent_encode(oauth.redirect_uri) +
         "&state=" + percent_encode(state) + "&scope=" + percent_encode(scopes);
  return url;
}

RedirectParams parse_redirect(std::string_view url) {
  // Trim whitespace a paste may carry.
  while (!url.empty() && std::isspace(static_cast<unsigned char>(url.front()))) url.remove_prefix(1);
  while (!url.empty() && std::isspace(static_cast<unsigned char>(url.back()))) url.remove_suffix(1);
  std::string_view query = url;
  if (auto q = url.find('?'); q != std::string_view::npos) query = url.substr(q + 1);
  if (auto h = query.find('#'); h != std::string_view::npos) query = query.substr(0, h);
  RedirectParams p;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    std::string key = percent_decode(pair.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1));
    if (key == "code") p.code = std::move(value);
    else if (key == "state") p.state = std::move(value);
    else if (key == "error") p.error = std::move(value);
    else if (key == "error_description") p.error_description = std::move(value);
  }
  return p;
}

Result<TokenSet> exchange_authorization_code(HttpClient& client, const std::string& token_path,
                                             const OAuthConfig& oauth, const std::string& code,
                                             int64_t now_ms) {
  HttpRequest req;
  req.method = "POST";
  req.target = token_path;
  req.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                 {"Accept", "application/json"}};
  req.body = form_encode({{"grant_type", "authorization_code"},
                          {"code", code},
                          {"redirect_uri", oauth.redirect_uri},
                          {"client_id", oauth.client_id},
                          {"client_secret", oauth.client_secret}});
  HttpResult res = client.request(std::move(req));
  if (!res.ok()) {
    return Error{"cannot reach oauth.token_url (" + std::string(http_error_label(res.error)) +
                 ": " + res.error_message + "); check the network and try again"};
  }
  simdjson::dom::parser parser;
  simdjson::padded_string padded(res.response.body);
  simdjson::dom::element doc;
  const bool json = parser.parse(padded).get(doc) == simdjson::SUCCESS;
  if (res.response.status < 200 || res.response.status >= 300) {
    std::string_view err, desc;
    std::string what = "HTTP " + std::to_string(res.response.status);
    if (json && doc["error"].get_string().get(err) == simdjson::SUCCESS) what += " " + std::string(err);
    if (json && doc["error_description"].get_string().get(desc) == simdjson::SUCCESS) {
      what += " (" + std::string(desc) + ")";
    }
    return Error{"the code exchange was refused: " + what +
                 "; codes expire after a few minutes and work once, and redirect_uri must match "
                 "the app's registered URL exactly: run `capi-relay auth login` again"};
  }
  std::string_view access;
  if (!json || doc["access_token"].get_string().get(access) != simdjson::SUCCESS || access.empty()) {
    return Error{"the token endpoint answered without an access_token"};
  }
  TokenSet t;
  t.access_token = std::string(access);
  int64_t v = 0;
  if (doc["expires_in"].get_int64().get(v) == simdjson::SUCCESS && v > 0) {
    t.access_token_expires_at = now_ms / 1000 + v;
  }
  std::string_view refresh;
  if (doc["refresh_token"].get_string().get(refresh) == simdjson::SUCCESS) {
    t.refresh_token = std::string(refresh);
  }
  if (doc["refresh_token_expires_in"].get_int64().get(v) == simdjson::SUCCESS && v > 0) {
    t.refresh_token_expires_at = now_ms / 1000 + v;
  }
  return t;
}

Result<std::string> wait_for_redirect(const ParsedUrl& redirect, int timeout_ms,
                                      std::ostream& progress) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(redirect.port);
  if (int rc = ::getaddrinfo(redirect.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return Error{"cannot resolve " + redirect.host + ": " + gai_strerror(rc)};
  }
  Fd listener;
  std::string bind_error;
  for (addrinfo* ai = res; ai != nullptr && listener.fd < 0; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, 8) == 0) {
      listener.fd = fd;
    } else {
      bind_error = std::strerror(errno);
      ::close(fd);
    }
  }
  ::freeaddrinfo(res);
  if (listener.fd < 0) {
    return Error{"cannot listen on " + redirect.host + ":" + port + " (" + bind_error +
                 "); free the port, or use --paste"};
  }
  const std::string want_path = path_of(redirect.target);
  int left_ms = timeout_ms;
  while (left_ms > 0) {
    pollfd p{listener.fd, POLLIN, 0};
    const int slice = std::min(left_ms, 1000);
    const int ready = ::poll(&p, 1, slice);
    left_ms -= slice;
    if (ready < 0 && errno != EINTR) return Error{std::string("poll: ") + std::strerror(errno)};
    if (ready <= 0) continue;
    Fd conn{::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC)};
    if (conn.fd < 0) continue;
    const std::string target = read_request_target(conn.fd);
    if (target.empty()) continue;
    if (path_of(target) != want_path) {
      answer(conn.fd, 404, "Not found", "This listener only serves " + want_path + ".");
      continue;
    }
    const RedirectParams params = parse_redirect(target);
    if (!params.error.empty()) {
      answer(conn.fd, 200, "Authorization failed",
             params.error + (params.error_description.empty() ? "" : ": " + params.error_description) +
                 ". See the terminal for what to do next.");
    } else {
      answer(conn.fd, 200, "capi-relay is authorized",
             "The authorization response was received. You can close this tab and return to the "
             "terminal.");
    }
    progress << "Redirect received.\n";
    return target;
  }
  return Error{"no redirect arrived within " + std::to_string(timeout_ms / 60000) +
               " minutes; run `capi-relay auth login` again (or use --paste)"};
}

int run_auth(const CliContext& ctx) {
  if (ctx.args.positional.empty()) {
    return usage_error(ctx, "auth needs a subcommand: login, refresh or status");
  }
  const std::string& sub = ctx.args.positional[0];
  if (sub == "login") return auth_login(ctx);
  if (sub == "refresh") return auth_refresh(ctx);
  if (sub == "status") return auth_status(ctx);
  return usage_error(ctx, "unknown auth subcommand '" + sub + "' (login, refresh, status)");
}

}  // namespace capi_relay
