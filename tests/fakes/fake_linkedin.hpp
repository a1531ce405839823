#pragma once
// An in-process fake of LinkedIn's REST API for tests: an HTTP/1.1 server on 127.0.0.1 port 0,
// running on its own thread, recording every request and answering with a scriptable responder.
// Default responder: POST /rest/conversionEvents answers 200 {"elements":[{"status":201},...]}
// with one element status per element of the request body; anything else 404.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace capi_relay::testing {

struct FakeRequest {
  std::string method;
  std::string target;                         // path + query
  std::map<std::string, std::string> headers;  // lowercased names
  std::string body;
};

struct FakeResponse {
  int status = 200;
  std::string body;
  std::map<std::string, std::string> headers;  // e.g. {"Retry-After","5"}
  int delay_ms = 0;                            // answer after this long (slow upstream)
  bool drop_connection = false;                // close without answering
};

class FakeLinkedIn {
 public:
  using Responder = std::function<FakeResponse(const FakeRequest&)>;
  // tls: serve HTTPS with a self-signed certificate (see cert_pem()) instead of plain HTTP.
  explicit FakeLinkedIn(bool tls = false);
  ~FakeLinkedIn();
  uint16_t port() const;
  std::string base_url() const;  // "http://127.0.0.1:PORT" (or https://)
  std::string cert_pem() const;  // the self-signed CA/cert when tls
  void set_responder(Responder r);
  std::vector<FakeRequest> requests() const;
  size_t request_count() const;
  // TCP connections accepted so far (shows whether a client reused its connection).
  size_t connection_count() const;
  void clear();
  // The default answer for a conversionEvents batch: 200 with one 201 status per element.
  static FakeResponse accept_all(const FakeRequest& req);
  // Number of elements in a {"elements":[...]} body (0 if none / unparseable).
  static size_t count_elements(const std::string& body);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace capi_relay::testing
