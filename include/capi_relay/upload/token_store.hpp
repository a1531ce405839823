#pragma once
// TokenStore: the relay's one place for LinkedIn OAuth tokens (the uploader and the CLI's `auth`
// commands share it). Owns the token file (linkedin.token_file, JSON:
//   {"access_token":"..","access_token_expires_at":<epoch s>,"refresh_token":"..",
//    "refresh_token_expires_at":<epoch s>}   (expiries 0 / absent: unknown)
// written atomically with mode 0600) and an HttpClient for oauth.token_url, created on first use.
// Seeding: when the file does not exist, linkedin.access_token / oauth.refresh_token seed it (and
// it is written); once the file exists it wins over the config.
// Tokens are never logged and never part of an error message.
//
// Threading: thread-safe. refresh() blocks the caller for one HTTP round trip (never call it from
// an HttpClient callback); concurrent refresh() calls are serialised.
// Errors: open()/reload()/store() fail on an unreadable or malformed file, or a failed write.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "capi_relay/common/clock.hpp"
#include "capi_relay/common/result.hpp"
#include "capi_relay/config/config.hpp"

namespace capi_relay {

class HttpClient;

struct TokenSet {
  std::string access_token;
  int64_t access_token_expires_at = 0;  // epoch seconds; 0: unknown
  std::string refresh_token;
  int64_t refresh_token_expires_at = 0;  // epoch seconds; 0: unknown
  bool operator==(const TokenSet&) const = default;
};

struct TokenStoreOptions {
  std::filesystem::path file;
  std::string seed_access_token;
  std::string seed_refresh_token;
  std::string token_url;
  std::string client_id;
  std::string client_secret;
  std::filesystem::path ca_file;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds response_timeout{30000};
  // Refresh ahead of expiry when the access token expires within this long.
  std::chrono::milliseconds refresh_ahead{10 * 60 * 1000};

  static TokenStoreOptions from_config(const Config& config);
};

enum class RefreshOutcome : uint8_t {
  kRefreshed,       // new access token stored
  kNoRefreshToken,  // nothing to refresh with
  kRejected,        // the token endpoint refused the grant (invalid_grant, invalid_client, ...)
  kTransient,       // network error, timeout or 5xx: try again later
};

struct RefreshResult {
  RefreshOutcome outcome = RefreshOutcome::kTransient;
  std::string message;  // OAuth error code / HTTP status / network error; never a token
};

class TokenStore {
 public:
  static Result<std::unique_ptr<TokenStore>> open(const TokenStoreOptions& options, Clock& clock);
  ~TokenStore();

  TokenSet current() const;
  // Re-reads the file (SIGHUP / recheck). A missing file keeps the tokens in memory.
  Result<void> reload();
  // Replaces the tokens and writes the file (CLI `auth` commands).
  Result<void> store(const TokenSet& tokens);
  // True when a refresh token exists and the access token is missing or expires within
  // refresh_ahead.
  bool should_refresh() const;
  // POST grant_type=refresh_token to token_url; on success persists the new tokens.
  RefreshResult refresh();
  const std::filesystem::path& file() const { return options_.file; }

 private:
  TokenStore(TokenStoreOptions options, Clock& clock);
  Result<void> write_locked(const TokenSet& tokens);

  TokenStoreOptions options_;
  Clock& clock_;
  mutable std::mutex mu_;          // tokens_
  std::mutex refresh_mu_;          // serialises refresh(); guards http_
  TokenSet tokens_;
  std::unique_ptr<HttpClient> http_;
};

// Parses a token file's JSON text.
Result<TokenSet> parse_token_file(std::string_view json);
std::string serialize_token_file(const TokenSet& tokens);

}  // namespace capi_relay
