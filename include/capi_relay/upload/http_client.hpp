#pragma once
// HttpClient: an HTTP/1.1 client bound to ONE origin (scheme://host:port), used for LinkedIn's
// REST API, the OAuth token endpoint and the management CLI. It keeps connections alive and reuses
// them; https verifies the certificate chain (system CAs plus an optional extra CA file) and the
// host name (SNI is sent for names); plain http is refused unless the host is a loopback address.
//
// Owns: its own io_context and I/O thread, the idle-connection pool and the TLS context. All Beast
// and Asio code lives in src/upload/http_client.cpp; this header is free of it.
//
// Threading contract: every public method is thread-safe. async_request()'s callback runs on the
// client's I/O thread (keep it short; never call request() from it, that would deadlock and is
// refused with an error). request() blocks the calling thread.
//
// Errors: a request either yields an HTTP response (any status) or an HttpErrorKind:
//   kTimeout      connect, TLS handshake or response did not finish within its timeout
//   kConnectError name resolution / TCP connect failed, or the connection broke mid-exchange
//   kTlsError     TLS handshake or certificate/host verification failed
//   kCancelled    the client was shut down while the request was pending
// A kept-alive connection found closed by the server (error before any response byte) is
// replaced transparently, once per request.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "capi_relay/common/result.hpp"

namespace capi_relay {

// scheme://host[:port][/path?query], split. IPv6 literals are written [::1].
struct ParsedUrl {
  std::string scheme;  // "http" | "https"
  std::string host;    // without brackets
  uint16_t port = 0;   // explicit, or 80 / 443
  std::string target;  // path + query, "/" when empty
  std::string origin() const;  // scheme://host[:port] (port only when not the default)
};
Result<ParsedUrl> parse_url(std::string_view url);
// True for localhost, 127.0.0.0/8 and ::1.
bool is_loopback_host(std::string_view host);

struct HttpRequest {
  std::string method = "GET";  // "GET", "POST", ...
  std::string target = "/";    // path + query on the client's origin
  std::vector<std::pair<std::string, std::string>> headers;  // Host and Content-Length are added
  std::string body;
};

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  // Value of a header by lowercase name, or empty.
  std::string header(std::string_view lowercase_name) const;
};

enum class HttpErrorKind : uint8_t { kNone, kTimeout, kConnectError, kTlsError, kCancelled };
// "timeout", "connect_error", "tls_error", "cancelled" ("" for kNone): the metric label.
std::string_view http_error_label(HttpErrorKind k);

struct HttpResult {
  HttpErrorKind error = HttpErrorKind::kNone;
  std::string error_message;  // human text for logs (no secrets: never contains headers/bodies)
  HttpResponse response;      // valid when error == kNone
  bool ok() const { return error == HttpErrorKind::kNone; }
};

struct HttpClientOptions {
  std::string origin;             // "https://api.linkedin.com"; a path, if any, is ignored
  std::filesystem::path ca_file;  // extra CA bundle (PEM); empty: system CAs only
  std::chrono::milliseconds connect_timeout{5000};    // TCP connect, and TLS handshake
  std::chrono::milliseconds response_timeout{30000};  // write request + read whole response
  size_t max_idle_connections = 8;
  uint64_t max_response_bytes = 16ull << 20;
  std::string user_agent = "capi-relay";
};

class HttpClient {
 public:
  using Callback = std::function<void(HttpResult)>;
  // Fails on a malformed origin, plain http to a non-loopback host, or an unreadable ca_file.
  static Result<std::unique_ptr<HttpClient>> create(const HttpClientOptions& options);
  virtual ~HttpClient() = default;

  virtual void async_request(HttpRequest request, Callback done) = 0;
  // Blocking form of async_request (not from the client's own I/O thread).
  virtual HttpResult request(HttpRequest request) = 0;
  // Cancels pending requests (their callbacks get kCancelled), closes every connection and joins
  // the I/O thread. Idempotent; called by the destructor.
  virtual void shutdown() = 0;
  // TCP connections opened so far (tests and diagnostics: shows keep-alive reuse).
  virtual uint64_t connections_opened() const = 0;
  virtual const ParsedUrl& origin() const = 0;
};

}  // namespace capi_relay
