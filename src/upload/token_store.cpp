// TokenStore: token file persistence and the OAuth refresh_token grant.
#include "capi_relay/upload/token_store.hpp"

#include <simdjson.h>

#include <cctype>
#include <system_error>

#include "capi_relay/common/files.hpp"
#include "capi_relay/common/json_text.hpp"
#include "capi_relay/common/log.hpp"
#include "capi_relay/upload/http_client.hpp"

namespace capi_relay {
namespace {

constexpr std::string_view kComponent = "token_store";

// application/x-www-form-urlencoded value encoding.
void append_form_value(std::string& out, std::string_view v) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : v) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
}

void append_form_field(std::string& out, std::string_view name, std::string_view value) {
  if (!out.empty()) out += '&';
  out += name;
  out += '=';
  append_form_value(out, value);
}

}  // namespace

TokenStoreOptions TokenStoreOptions::from_config(const Config& config) {
  TokenStoreOptions o;
  const LinkedInConfig& li = config.linkedin;
  o.file = li.token_file;
  o.seed_access_token = li.access_token;
  o.seed_refresh_token = li.oauth.refresh_token;
  o.token_url = li.oauth.token_url;
  o.client_id = li.oauth.client_id;
  o.client_secret = li.oauth.client_secret;
  o.ca_file = li.ca_file;
  o.connect_timeout = li.connect_timeout;
  o.response_timeout = li.response_timeout;
  return o;
}

Result<TokenSet> parse_token_file(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::object obj;
  if (parser.parse(padded).get_object().get(obj) != simdjson::SUCCESS) {
    return Error{"token file is not a JSON object"};
  }
  TokenSet t;
  for (auto field : obj) {
    const std::string_view key = field.key;
    if (key == "access_token" || key == "refresh_token") {
      std::string_view s;
      if (field.value.get_string().get(s) != simdjson::SUCCESS) {
        return Error{"token file: " + std::string(key) + " must be a string"};
      }
      (key == "access_token" ? t.access_token : t.refresh_token) = std::string(s);
    } else if (key == "access_token_expires_at" || key == "refresh_token_expires_at") {
      int64_t v = 0;
      if (field.value.is_null()) {
        v = 0;
      } else if (field.value.get_int64().get(v) != simdjson::SUCCESS) {
        return Error{"token file: " + std::string(key) + " must be an integer (epoch seconds)"};
      }
      (key == "access_token_expires_at" ? t.access_token_expires_at
                                        : t.refresh_token_expires_at) = v;
    }
    // Other keys (e.g. notes written by an operator) are ignored.
  }
  return t;
}

std::string serialize_token_file(const TokenSet& t) {
  std::string out = "{\"access_token\":";
  append_json_string(out, t.access_token);
  out += ",\"access_token_expires_at\":" + std::to_string(t.access_token_expires_at);
  out += ",\"refresh_token\":";
  append_json_string(out, t.refresh_token);
  out += ",\"refresh_token_expires_at\":" + std::to_string(t.refresh_token_expires_at);
  out += "}\n";
  return out;
}

TokenStore::TokenStore(TokenStoreOptions options, Clock& clock)
    : options_(std::move(options)), clock_(clock) {}

TokenStore::~TokenStore() {
  if (http_) http_->shutdown();
}

Result<std::unique_ptr<TokenStore>> TokenStore::open(const TokenStoreOptions& options,
                                                     Clock& clock) {
  std::unique_ptr<TokenStore> store(new TokenStore(options, clock));
  std::error_code ec;
  if (std::filesystem::exists(options.file, ec)) {
    auto loaded = store->reload();
    if (!loaded) return Error{loaded.error()};
    return store;
  }
  if (ec) return Error{"cannot stat token file " + options.file.string() + ": " + ec.message()};
  if (options.seed_access_token.empty() && options.seed_refresh_token.empty()) return store;
  TokenSet seed;
  seed.access_token = options.seed_access_token;
  seed.refresh_token = options.seed_refresh_token;
  auto written = store->store(seed);
  if (!written) return Error{written.error()};
  log::info(kComponent, "token file seeded from the config", {{"path", options.file.string()}});
  return store;
}

TokenSet TokenStore::current() const {
  std::lock_guard lock(mu_);
  return tokens_;
}

Result<void> TokenStore::reload() {
  std::error_code ec;
  if (!std::filesystem::exists(options_.file, ec)) return ok();
  auto text = read_file(options_.file);
  if (!text) return Error{"cannot read token file: " + text.error()};
  auto parsed = parse_token_file(*text);
  if (!parsed) return Error{parsed.error() + " (" + options_.file.string() + ")"};
  std::lock_guard lock(mu_);
  tokens_ = std::move(parsed.value());
  return ok();
}

Result<void> TokenStore::write_locked(const TokenSet& tokens) {
  if (options_.file.has_parent_path()) {
    auto dir = ensure_dir(options_.file.parent_path());
    if (!dir) return dir;
  }
  return write_file_atomic(options_.file, serialize_token_file(tokens));
}

Result<void> TokenStore::store(const TokenSet& tokens) {
  std::lock_guard lock(mu_);
  auto written = write_locked(tokens);
  if (!written) return Error{"cannot write token file: " + written.error()};
  tokens_ = tokens;
  return ok();
}

bool TokenStore::should_refresh() const {
  std::lock_guard lock(mu_);
  if (tokens_.refresh_token.empty()) return false;
  if (tokens_.refresh_token_expires_at != 0 &&
      tokens_.refresh_token_expires_at * 1000 <= clock_.now_ms()) {
    return false;  // the refresh token itself is dead: refreshing cannot help
  }
  if (tokens_.access_token.empty()) return true;
  if (tokens_.access_token_expires_at == 0) return false;  // unknown expiry: wait for a 401
  return tokens_.access_token_expires_at * 1000 - clock_.now_ms() <=
         options_.refresh_ahead.count();
}

RefreshResult TokenStore::refresh() {
  std::lock_guard refresh_lock(refresh_mu_);
  const TokenSet before = current();
  if (before.refresh_token.empty()) return {RefreshOutcome::kNoRefreshToken, "no refresh token"};

  auto url = parse_url(options_.token_url);
  if (!url) return {RefreshOutcome::kRejected, "invalid oauth.token_url: " + url.error()};
  if (!http_) {
    HttpClientOptions ho;
    ho.origin = url->origin();
    ho.ca_file = options_.ca_file;
    ho.connect_timeout = options_.connect_timeout;
    ho.response_timeout = options_.response_timeout;
    ho.max_idle_connections = 1;
    auto client = HttpClient::create(ho);
    if (!client) return {RefreshOutcome::kRejected, "token endpoint: " + client.error()};
    http_ = std::move(client.value());
  }

  HttpRequest req;
  req.method = "POST";
  req.target = url->target;
  req.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                 {"Accept", "application/json"}};
  append_form_field(req.body, "grant_type", "refresh_token");
  append_form_field(req.body, "refresh_token", before.refresh_token);
  append_form_field(req.body, "client_id", options_.client_id);
  append_form_field(req.body, "client_secret", options_.client_secret);

  const int64_t sent_at_ms = clock_.now_ms();
  HttpResult res = http_->request(std::move(req));
  if (!res.ok()) {
    return {RefreshOutcome::kTransient,
            std::string(http_error_label(res.error)) + ": " + res.error_message};
  }
  const int status = res.response.status;
  simdjson::dom::parser parser;
  simdjson::padded_string padded(res.response.body);
  simdjson::dom::element doc;
  const bool json = parser.parse(padded).get(doc) == simdjson::SUCCESS;
  if (status < 200 || status >= 300) {
    std::string_view error_code;
    std::string message = "HTTP " + std::to_string(status);
    if (json && doc["error"].get_string().get(error_code) == simdjson::SUCCESS) {
      message += " " + std::string(error_code);  // e.g. invalid_grant: an OAuth code, no secret
    }
    if (status >= 500 || status == 429 || status == 408) {
      return {RefreshOutcome::kTransient, message};
    }
    return {RefreshOutcome::kRejected, message};
  }
  std::string_view access;
  if (!json || doc["access_token"].get_string().get(access) != simdjson::SUCCESS ||
      access.empty()) {
    return {RefreshOutcome::kTransient, "token endpoint answered without an access_token"};
  }
  TokenSet next = before;
  next.access_token = std::string(access);
  int64_t expires_in = 0;
  next.access_token_expires_at =
      doc["expires_in"].get_int64().get(expires_in) == simdjson::SUCCESS && expires_in > 0
          ? sent_at_ms / 1000 + expires_in
          : 0;
  std::string_view refresh;
  if (doc["refresh_token"].get_string().get(refresh) == simdjson::SUCCESS && !refresh.empty()) {
    next.refresh_token = std::string(refresh);
  }
  int64_t refresh_expires_in = 0;
  if (doc["refresh_token_expires_in"].get_int64().get(refresh_expires_in) == simdjson::SUCCESS &&
      refresh_expires_in > 0) {
    next.refresh_token_expires_at = sent_at_ms / 1000 + refresh_expires_in;
  }
  auto stored = store(next);
  if (!stored) {
    // The new token works, but would be lost on restart: keep it in memory, say so.
    log::error(kComponent, "refreshed token could not be written", {{"error", stored.error()}});
    std::lock_guard lock(mu_);
    tokens_ = next;
  }
  log::info(kComponent, "access token refreshed",
            {{"expires_at", std::to_string(next.access_token_expires_at)}});
  return {RefreshOutcome::kRefreshed, {}};
}

}  // namespace capi_relay
