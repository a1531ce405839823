#include "capi_relay/upload/http_client.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>

#include "fakes/fake_linkedin.hpp"

namespace capi_relay {
namespace {

using testing::FakeLinkedIn;
using testing::FakeRequest;
using testing::FakeResponse;

std::unique_ptr<HttpClient> make_client(const std::string& origin,
                                        std::chrono::milliseconds response_timeout =
                                            std::chrono::milliseconds(5000),
                                        const std::filesystem::path& ca_file = {}) {
  HttpClientOptions o;
  o.origin = origin;
  o.connect_timeout = std::chrono::milliseconds(2000);
  o.response_timeout = response_timeout;
  o.ca_file = ca_file;
  auto c = HttpClient::create(o);
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error());
  return c.ok() ? std::move(c.value()) : nullptr;
}

HttpRequest post_batch(std::string body) {
  HttpRequest r;
  r.method = "POST";
  r.target = "/rest/conversionEvents";
  r.headers = {{"Content-Type", "application/json"}, {"X-RestLi-Method", "BATCH_CREATE"}};
  r.body = std::move(body);
  return r;
}

TEST(ParseUrl, SplitsOriginAndTarget) {
  auto u = parse_url("https://api.linkedin.com");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->host, "api.linkedin.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/");
  auto v = parse_url("http://[::1]:8080/oauth/v2/accessToken?x=1");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->host, "::1");
  EXPECT_EQ(v->port, 8080);
  EXPECT_EQ(v->target, "/oauth/v2/accessToken?x=1");
  EXPECT_EQ(v->origin(), "http://[::1]:8080");
  EXPECT_FALSE(parse_url("ftp://x").ok());
  EXPECT_FALSE(parse_url("https://host:99999").ok());
  EXPECT_FALSE(parse_url("api.linkedin.com").ok());
}

TEST(HttpClient, RefusesPlainHttpToNonLoopback) {
  HttpClientOptions o;
  o.origin = "http://api.linkedin.com";
  EXPECT_FALSE(HttpClient::create(o).ok());
  o.origin = "http://127.0.0.1:1";
  EXPECT_TRUE(HttpClient::create(o).ok());
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_TRUE(is_loopback_host("127.3.4.5"));
  EXPECT_FALSE(is_loopback_host("127.example.com"));
}

TEST(HttpClient, KeepAliveReusesOneConnection) {
  FakeLinkedIn fake;
  auto client = make_client(fake.base_url());
  ASSERT_TRUE(client);
  for (int i = 0; i < 5; ++i) {
    HttpResult r = client->request(post_batch(R"({"elements":[{"a":1},{"b":[2,3]}]})"));
    ASSERT_TRUE(r.ok()) << r.error_message;
    EXPECT_EQ(r.response.status, 200);
    EXPECT_EQ(r.response.body, R"({"elements":[{"status":201},{"status":201}]})");
  }
  EXPECT_EQ(fake.connection_count(), 1u);
  EXPECT_EQ(client->connections_opened(), 1u);
  ASSERT_EQ(fake.request_count(), 5u);
  const FakeRequest req = fake.requests().front();
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/rest/conversionEvents");
  EXPECT_EQ(req.headers.at("x-restli-method"), "BATCH_CREATE");
  EXPECT_EQ(req.headers.at("host"), "127.0.0.1:" + std::to_string(fake.port()));
}

TEST(HttpClient, ConcurrentRequestsAllComplete) {
  FakeLinkedIn fake;
  fake.set_responder([](const FakeRequest& req) {
    FakeResponse r = FakeLinkedIn::accept_all(req);
    r.delay_ms = 50;
    return r;
  });
  auto client = make_client(fake.base_url());
  std::vector<std::promise<HttpResult>> promises(4);
  for (auto& p : promises) {
    client->async_request(post_batch(R"({"elements":[{}]})"),
                          [&p](HttpResult r) { p.set_value(std::move(r)); });
  }
  for (auto& p : promises) {
    HttpResult r = p.get_future().get();
    ASSERT_TRUE(r.ok()) << r.error_message;
    EXPECT_EQ(r.response.status, 200);
  }
  EXPECT_GE(client->connections_opened(), 2u);  // concurrency needs several connections
}

TEST(HttpClient, ResponseHeadersAreLowercased) {
  FakeLinkedIn fake;
  fake.set_responder([](const FakeRequest&) {
    FakeResponse r;
    r.status = 429;
    r.headers = {{"Retry-After", "7"}};
    return r;
  });
  auto client = make_client(fake.base_url());
  HttpResult r = client->request(post_batch("{}"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.response.status, 429);
  EXPECT_EQ(r.response.header("retry-after"), "7");
}

TEST(HttpClient, SlowResponseTimesOut) {
  FakeLinkedIn fake;
  fake.set_responder([](const FakeRequest& req) {
    FakeResponse r = FakeLinkedIn::accept_all(req);
    r.delay_ms = 3000;
    return r;
  });
  auto client = make_client(fake.base_url(), std::chrono::milliseconds(200));
  HttpResult r = client->request(post_batch("{}"));
  EXPECT_EQ(r.error, HttpErrorKind::kTimeout);
  EXPECT_EQ(http_error_label(r.error), "timeout");
}

TEST(HttpClient, DroppedConnectionIsAConnectErrorWhenFresh) {
  FakeLinkedIn fake;
  fake.set_responder([](const FakeRequest&) {
    FakeResponse r;
    r.drop_connection = true;
    return r;
  });
  auto client = make_client(fake.base_url());
  HttpResult r = client->request(post_batch("{}"));
  EXPECT_EQ(r.error, HttpErrorKind::kConnectError);
  EXPECT_EQ(fake.request_count(), 1u);  // a fresh connection is not retried
}

TEST(HttpClient, StaleKeptAliveConnectionIsReplacedOnce) {
  FakeLinkedIn fake;
  std::atomic<int> n{0};
  // The second request arrives on the kept-alive connection and the server drops it (as a server
  // closing an idle connection would): the client reconnects and sends again.
  fake.set_responder([&n](const FakeRequest& req) {
    FakeResponse r = FakeLinkedIn::accept_all(req);
    if (++n == 2) r.drop_connection = true;
    return r;
  });
  auto client = make_client(fake.base_url());
  ASSERT_TRUE(client->request(post_batch(R"({"elements":[{}]})")).ok());
  HttpResult r = client->request(post_batch(R"({"elements":[{}]})"));
  ASSERT_TRUE(r.ok()) << r.error_message;
  EXPECT_EQ(r.response.status, 200);
  EXPECT_EQ(fake.request_count(), 3u);
  EXPECT_EQ(fake.connection_count(), 2u);
}

TEST(HttpClient, ConnectionRefusedIsConnectError) {
  uint16_t port;
  {
    FakeLinkedIn fake;
    port = fake.port();
  }
  auto client = make_client("http://127.0.0.1:" + std::to_string(port));
  HttpResult r = client->request(post_batch("{}"));
  EXPECT_EQ(r.error, HttpErrorKind::kConnectError);
}

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("capi_relay_http_" + std::to_string(::getpid()) + "_" +
             std::to_string(counter_++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

TEST(HttpClient, TlsVerifiedWithCaFile) {
  FakeLinkedIn fake(/*tls=*/true);
  TempDir dir;
  const auto ca = dir.path() / "ca.pem";
  std::ofstream(ca) << fake.cert_pem();
  auto client = make_client(fake.base_url(), std::chrono::milliseconds(5000), ca);
  ASSERT_TRUE(client);
  for (int i = 0; i < 3; ++i) {
    HttpResult r = client->request(post_batch(R"({"elements":[{}]})"));
    ASSERT_TRUE(r.ok()) << r.error_message;
    EXPECT_EQ(r.response.status, 200);
  }
  EXPECT_EQ(fake.connection_count(), 1u);


  // By DNS name (SNI + name check against the certificate's DNS:localhost).
  auto by_name =
      make_client("https://localhost:" + std::to_string(fake.port()), std::chrono::seconds(5), ca);
  HttpResult named = by_name->request(post_batch(R"({"elements":[{}]})"));
  ASSERT_TRUE(named.ok()) << named.error_message;
  EXPECT_EQ(fake.requests().back().headers.at("host"), "localhost:" + std::to_string(fake.port()));
}

TEST(HttpClient, TlsRefusedWithoutCaFile) {
  FakeLinkedIn fake(/*tls=*/true);
  auto client = make_client(fake.base_url());
  HttpResult r = client->request(post_batch("{}"));
  EXPECT_EQ(r.error, HttpErrorKind::kTlsError) << r.error_message;
  EXPECT_EQ(fake.request_count(), 0u);
}

TEST(HttpClient, ShutdownCancelsPendingRequests) {
  FakeLinkedIn fake;
  fake.set_responder([](const FakeRequest& req) {
    FakeResponse r = FakeLinkedIn::accept_all(req);
    r.delay_ms = 5000;
    return r;
  });
  auto client = make_client(fake.base_url());
  std::promise<HttpResult> p;
  client->async_request(post_batch("{}"), [&p](HttpResult r) { p.set_value(std::move(r)); });
  while (fake.request_count() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  client->shutdown();
  EXPECT_EQ(p.get_future().get().error, HttpErrorKind::kCancelled);
  HttpResult after = client->request(post_batch("{}"));
  EXPECT_EQ(after.error, HttpErrorKind::kCancelled);
}

}  // namespace
}  // namespace capi_relay
