// Hostile input against the real binary: malformed and odd bodies, oversized bodies and headers,
// idle connections beyond max_connections, slow clients, HTTP/1.0, pipelining, requests after
// shutdown began, per-client rate limits, the global body budget; then secrets and privacy (what
// the relay wrote holds no raw email, IP, key or token; files 0600; check-config prints no
// secret) and TLS verification of the upstream with the real binary.
// Every refusal must carry the contract's status and a JSON {"error":...}; valid traffic must
// keep flowing meanwhile.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fakes/fake_linkedin.hpp"
#include "fakes/relay_config.hpp"
#include "fakes/relay_process.hpp"
#include "fakes/test_events.hpp"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CAPI_RELAY_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CAPI_RELAY_TEST_ASAN 1
#endif

namespace capi_relay::testing {
namespace {

namespace fs = std::filesystem;

// This file's config: 5 s shutdown timeout, room for extra server: and linkedin: lines.
std::string hostile_yaml(const std::string& api_base, const std::string& server_extra = "",
                         const std::string& linkedin_extra = "") {
  RelayConfig c;
  c.api_base = api_base;
  c.shutdown_timeout = "5s";
  c.server_extra = server_extra;
  c.linkedin_extra = linkedin_extra;
  return c.yaml();
}

bool json_error(const HttpResult& r) {
  return r.headers.count("content-type") &&
         r.headers.at("content-type").find("application/json") != std::string::npos &&
         r.body.rfind("{\"error\":", 0) == 0;
}

// A raw HTTP/1.x client over a plain socket, for what a well-behaved client library will not
// send: partial heads, pipelined requests, HTTP/1.0, silence. Responses are parsed by hand (the
// relay always sends Content-Length).
class RawClient {
 public:
  explicit RawClient(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return fd_ >= 0; }
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // One response; status 0 when the connection closed or nothing came within timeout_ms.
  HttpResult read_response(int timeout_ms = 10000) {
    HttpResult out;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    size_t head_end;
    while ((head_end = buf_.find("\r\n\r\n")) == std::string::npos)
      if (!fill(deadline)) return out;
    std::istringstream head(buf_.substr(0, head_end));
    std::string line;
    std::getline(head, line);
    if (line.size() < 12) return out;
    version_ = line.substr(0, 8);
    int status = std::atoi(line.c_str() + 9);
    while (std::getline(head, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      out.headers[name] = value;
    }
    size_t len = out.headers.count("content-length") ? std::stoul(out.headers["content-length"]) : 0;
    while (buf_.size() < head_end + 4 + len)
      if (!fill(deadline)) return out;
    out.body = buf_.substr(head_end + 4, len);
    buf_.erase(0, head_end + 4 + len);
    out.status = status;
    return out;
  }
  // True when the server closes the connection within timeout_ms (bytes before that are dropped).
  bool closed_within(int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
      auto r = fill_status(deadline);
      if (r == kClosed) return true;
      if (r == kTimeout) return false;
    }
  }
  const std::string& last_version() const { return version_; }

 private:
  enum Fill { kData, kClosed, kTimeout };
  Fill fill_status(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) return kTimeout;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return kTimeout;
    char tmp[16384];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return kClosed;
    buf_.append(tmp, static_cast<size_t>(n));
    return kData;
  }
  bool fill(std::chrono::steady_clock::time_point deadline) {
    return fill_status(deadline) == kData;
  }

  int fd_ = -1;
  std::string buf_;
  std::string version_;
};

std::string post_request(const std::string& body, const std::string& version = "HTTP/1.1",
                         const std::string& extra_headers = "") {
  return "POST /v1/events " + version + "\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
         extra_headers + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// ---------------------------------------------------------------------------------------------

TEST(Hostile, MalformedBodiesGet400WithJsonAndValidTrafficFlows) {
  FakeLinkedIn fake;
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(hostile_yaml(fake.base_url(), "  max_body_bytes: 1MiB\n"), &err)) << err;

  std::string deep_object;
  for (int i = 0; i < 50'000; ++i) deep_object += "{\"a\":";
  const std::vector<std::string> bodies = {
      "{oops",
      "{\"event\":\"purchase\",\"user\":{\"email\":\"a@example.com\"",  // truncated
      "[{\"event\":\"purchase\"},",                                     // truncated array
      std::string(100'000, '['),                                        // deep nesting
      std::string(100'000, '[') + std::string(100'000, ']'),
      deep_object,
      "{\"event\":\"purchase\",\"timestamp\":1e999999,\"user\":{\"email\":\"a@example.com\"}}",
      "{\"event\":\"purchase\",\"value\":{\"amount\":" + std::string(5000, '9') +
          ",\"currency\":\"USD\"},\"user\":{\"email\":\"a@example.com\"}}",
      "{\"event\":\"purchase\",\"eventId\":\"\xff\xfe\xfd\",\"user\":{\"email\":\"a@example.com\"}}",
      std::string("{\"event\":\"purch\0se\",\"user\":{\"email\":\"a@example.com\"}}", 51),
      std::string(1000, '\0'),
      "",
      "   \n\n\t  ",
      "[]",
      "null",
      "\"just a string\"",
      "[1,2,3]",
      "{\"event\":\"purchase\"}",  // no identifier
  };
  for (size_t i = 0; i < bodies.size(); ++i) {
    auto r = relay.post_events(bodies[i]);
    EXPECT_EQ(r.status, 400) << "body #" << i << ": " << r.body.substr(0, 200);
    EXPECT_TRUE(json_error(r)) << "body #" << i << ": " << r.body.substr(0, 200);
    // Valid traffic keeps flowing in between.
    auto ok = relay.post_events(event_json("m-" + std::to_string(i)));
    EXPECT_EQ(ok.status, 202) << ok.body;
  }

  // Content types: wrong -> 415 with JSON; missing -> read as text/plain.
  for (const char* type : {"application/xml", "multipart/form-data; boundary=x", "text/html",
                           "application/jsonx", "json"}) {
    auto r = relay.post_events(event_json("t-1"), type);
    EXPECT_EQ(r.status, 415) << type;
    EXPECT_TRUE(json_error(r)) << type;
  }
  EXPECT_EQ(relay.post_events(event_json("t-2"), "").status, 202);
  EXPECT_EQ(relay.post_events(event_json("t-3"), "APPLICATION/JSON; Charset=UTF-8").status, 202);

  // Unknown paths and methods.
  auto nf = http_request(relay.ingest_port(), "GET", "/v1/nope");
  EXPECT_EQ(nf.status, 404);
  EXPECT_TRUE(json_error(nf));
  auto get = http_request(relay.ingest_port(), "GET", "/v1/events");
  EXPECT_EQ(get.status, 405);
  EXPECT_TRUE(json_error(get));

  // The relay is alive and counted the valid events.
  EXPECT_EQ(relay.admin_get("/healthz").status, 200);
  EXPECT_EQ(relay.metric("capi_relay_events_accepted_total"),
            static_cast<double>(bodies.size() + 2));
  EXPECT_EQ(relay.stop(), 0);
}

TEST(Hostile, BadOrMissingKeysGet401) {
  FakeLinkedIn fake;
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(hostile_yaml(fake.base_url(), "  ingest_keys: [k-right]\n"), &err)) << err;
  const std::string ev = event_json("k-1");
  for (const auto& headers : std::vector<std::map<std::string, std::string>>{
           {},
           {{"Authorization", "Bearer k-wrong"}},
           {{"Authorization", "Bearer k-righ"}},
           {{"Authorization", "Bearer k-right-and-more"}},
           {{"Authorization", "Basic k-right"}},
           {{"Authorization", "Bearer "}},
           {{"Authorization", std::string("Bearer k-right\0x", 16)}}}) {
    auto r = relay.post_events(ev, "application/json", headers);
    // A NUL in a header value is a malformed request (400); every other case is 401.
    const bool has_nul = headers.count("Authorization") &&
                         headers.at("Authorization").find('\0') != std::string::npos;
    EXPECT_TRUE(r.status == 401 || (r.status == 400 && has_nul))
        << r.status << " " << r.body;
    EXPECT_TRUE(json_error(r));
  }
  auto q = http_request(relay.ingest_port(), "POST", "/v1/events?key=k-wrong", ev,
                        {{"Content-Type", "text/plain"}});
  EXPECT_EQ(q.status, 401);
  EXPECT_EQ(relay.post_events(ev, "application/json", {{"Authorization", "Bearer k-right"}}).status,
            202);
  // The key never shows in the log.
  EXPECT_EQ(relay.log().find("k-right"), std::string::npos);
  EXPECT_EQ(relay.stop(), 0);
}

TEST(Hostile, OversizedBodiesHeadersAndEventCounts) {
  FakeLinkedIn fake;
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(hostile_yaml(fake.base_url(),
                                       "  max_body_bytes: 64KiB\n  max_events_per_request: 100\n"),
                          &err))
      << err;
  // Declared too large: 413 before the body is read.
  auto big = relay.post_events(std::string(100'000, ' '));
  EXPECT_EQ(big.status, 413);
  EXPECT_TRUE(json_error(big));
  // Chunked, no length: cut at the limit while reading.
  {
    RawClient c(relay.ingest_port());
    ASSERT_TRUE(c.connected());
    std::string req =
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 20; ++i) req += "1000\r\n" + std::string(4096, ' ') + "\r\n";
    req += "0\r\n\r\n";
    c.send(req);
    auto r = c.read_response();
    EXPECT_EQ(r.status, 413);
    EXPECT_TRUE(json_error(r)) << r.body;
  }
  // Head over the 16 KiB limit: 431 with JSON.
  auto huge_header = relay.post_events(event_json("h-1"), "application/json",
                                       {{"X-Filler", std::string(20'000, 'x')}});
  EXPECT_EQ(huge_header.status, 431);
  EXPECT_TRUE(json_error(huge_header)) << huge_header.body;
  {
    RawClient c(relay.ingest_port());
    std::string req = "POST /v1/events HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < 2000; ++i) req += "X-H" + std::to_string(i) + ": y\r\n";
    c.send(req + "\r\n");
    auto r = c.read_response();
    EXPECT_EQ(r.status, 431);
    EXPECT_TRUE(json_error(r));
  }
  // Too many events in one small body: 413, nothing kept.
  std::string many;
  for (int i = 0; i < 101; ++i) many += event_json("n-" + std::to_string(i)) + "\n";
  auto r = relay.post_events(many, "application/x-ndjson");
  EXPECT_EQ(r.status, 413);
  EXPECT_TRUE(json_error(r));
  std::string tiny;
  for (int i = 0; i < 20'000; ++i) tiny += "1\n";
  EXPECT_EQ(relay.post_events(tiny, "application/x-ndjson").status, 413);
  EXPECT_EQ(relay.metric("capi_relay_events_accepted_total"), 0);
  // 100 is fine.
  many.clear();
  for (int i = 0; i < 100; ++i) many += event_json("n-" + std::to_string(i)) + "\n";
  EXPECT_EQ(relay.post_events(many, "application/x-ndjson").status, 202);
  EXPECT_EQ(relay.stop(), 0);
}

// A 1 MiB body of tiny items used to cost ~300 MiB of parse results (and a connection kept that
// capacity afterwards); with max_events_per_request it is refused and memory stays flat.
TEST(Hostile, TinyItemBodiesDoNotBlowUpMemory) {
#ifdef CAPI_RELAY_TEST_ASAN
  GTEST_SKIP() << "RSS is meaningless under AddressSanitizer (quarantine)";
#endif
  FakeLinkedIn fake;
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(hostile_yaml(fake.base_url(), "  max_body_bytes: 1MiB\n"), &err)) << err;
  const pid_t pid = relay.pid();
  ASSERT_GT(pid, 0);
  ASSERT_EQ(relay.post_events(event_json("warm")).status, 202);
  const long before = rss_kib(pid);
  std::string ones;
  while (ones.size() < (1u << 20) - 2) ones += "1\n";
  std::string array = "[";
  while (array.size() < (1u << 20) - 4) array += "1,";
  array += "1]";
  std::vector<std::future<int>> posts;
  for (int i = 0; i < 6; ++i)
    posts.push_back(std::async(std::launch::async, [&, i] {
      return relay.post_events(i % 2 ? ones : array, "application/x-ndjson").status;
    }));
  for (auto& p : posts) EXPECT_EQ(p.get(), 413);
  const long after = rss_kib(pid);
  EXPECT_LT(after - before, 64 * 1024) << "RSS grew from " << before << " KiB to " << after;
  EXPECT_EQ(relay.post_events(event_json("after")).status, 202);
  EXPECT_EQ(relay.stop(), 0);
}

TEST(Hostile, IdleConnectionsBeyondTheLimitDoNotLockOutNewClients) {
  FakeLinkedIn fake;
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(hostile_yaml(fake.base_url(),
                                       "  max_connections: 20\n  header_timeout: 3s\n"
                                       "  idle_timeout: 3s\n"),
                          &err))
      << err;
  // 40 connections that say nothing: twice the limit.
  std::vector<std::unique_ptr<RawClient>> idle;
  for (int i = 0; i < 40; ++i) {
    idle.push_back(std::make_unique<RawClient>(relay.ingest_port()));
    ASSERT_TRUE(idle.back()->connected());
  }
  // New clients are served at once: the oldest idle connections make room.
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) {
    auto r = relay.post_events(event_json("i-" + std::to_string(i)));
    EXPECT_EQ(r.status, 202) << i << " " << r.body;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_TRUE(idle.front()->closed_within(2000)) << "the oldest idle connection stays open";
  // A keep-alive client that is mid-request is not evicted: it finishes its request.
  RawClient busy(relay.ingest_port());
  const std::string req = post_request(event_json("busy"));
  busy.send(req.substr(0, 20));
  for (int i = 0; i < 30; ++i) idle.push_back(std::make_unique<RawClient>(relay.ingest_port()));
  busy.send(req.substr(20));
  auto br = busy.read_response();
  EXPECT_EQ(br.status, 202) << br.body;
  // Silent connections are closed after header_timeout either way.
  EXPECT_TRUE(idle.back()->closed_within(6000));
  EXPECT_EQ(relay.post_events(event_json("i-after")).status, 202);
  EXPECT_EQ(relay.stop(), 0);
}

TEST(Hostile, SlowClientsTimeOutWhileOthersAreServed) {
  FakeLinkedIn fake;
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(hostile_yaml(fake.base_url(),
                                       "  header_timeout: 1s\n  body_timeout: 1s\n"),
                          &err))
      << err;
  // Slowloris: a head that never ends, one byte at a time.
  RawClient slow_head(relay.ingest_port());
  RawClient slow_body(relay.ingest_port());
  auto started = std::chrono::steady_clock::now();
  std::thread trickle([&] {
    std::string head = "POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    for (char c : head) {
      if (!slow_head.send(std::string(1, c))) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
    }
    for (int i = 0; i < 100; ++i) {
      if (!slow_head.send("a")) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  // A body that never arrives in full.
  slow_body.send("POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "Content-Length: 1000\r\n\r\n{\"event\":");
  // Meanwhile, normal clients are served.
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(relay.post_events(event_json("s-" + std::to_string(i))).status, 202);
  auto h = slow_head.read_response(5000);
  auto b = slow_body.read_response(5000);
  const auto waited = std::chrono::steady_clock::now() - started;
  trickle.join();
  EXPECT_EQ(h.status, 408);
  EXPECT_TRUE(json_error(h)) << h.body;
  EXPECT_EQ(b.status, 408);
  EXPECT_TRUE(json_error(b)) << b.body;
  EXPECT_LT(waited, std::chrono::seconds(4));
  EXPECT_TRUE(slow_head.closed_within(2000));
  EXPECT_EQ(relay.metric("capi_relay_events_accepted_total"), 5);
  EXPECT_EQ(relay.stop(), 0);
}

TEST(Hostile, Http10AndPipelinedRequests) {
  FakeLinkedIn fake;
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(hostile_yaml(fake.base_url()), &err)) << err;
  {  // HTTP/1.0: answered in 1.0 and closed.
    RawClient c(relay.ingest_port());
    c.send(post_request(event_json("h10"), "HTTP/1.0"));
    auto r = c.read_response();
    EXPECT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(c.last_version(), "HTTP/1.0");
    EXPECT_TRUE(c.closed_within(2000));
  }
  {  // Three requests in one write: three answers, in order.
    RawClient c(relay.ingest_port());
    c.send(post_request(event_json("p-1")) + post_request("{broken") +
           post_request(event_json("p-1")));
    auto r1 = c.read_response();
    auto r2 = c.read_response();
    auto r3 = c.read_response();
    EXPECT_EQ(r1.status, 202);
    EXPECT_EQ(r1.body, "{\"accepted\":1,\"duplicates\":0,\"rejected\":[]}");
    EXPECT_EQ(r2.status, 400);
    EXPECT_TRUE(json_error(r2));
    EXPECT_EQ(r3.status, 202);
    EXPECT_EQ(r3.body, "{\"accepted\":0,\"duplicates\":1,\"rejected\":[]}");
  }
  {  // Garbage instead of HTTP: 400 with JSON, connection closed.
    RawClient c(relay.ingest_port());
    c.send("\x16\x03\x01\x02\x00 not http at all\r\n\r\n");
    auto r = c.read_response();
    EXPECT_EQ(r.status, 400);
    EXPECT_TRUE(json_error(r));
    EXPECT_TRUE(c.closed_within(2000));
  }
  EXPECT_EQ(relay.post_events(event_json("after")).status, 202);
  EXPECT_EQ(relay.stop(), 0);
}

TEST(Hostile, RequestsAfterShutdownBeganGet503WithRetryAfter) {
  // An upstream that keeps failing holds the relay in its shutdown_timeout phase.
  FakeLinkedIn fake;
  fake.set_responder([](const FakeRequest&) {
    FakeResponse r;
    r.status = 503;
    r.body = "{\"message\":\"down\"}";
    return r;
  });
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(hostile_yaml(fake.base_url()), &err)) << err;
  ASSERT_EQ(relay.post_events(event_json("sd-1")).status, 202);
  ASSERT_TRUE(eventually([&] { return fake.request_count() > 0; }));
  relay.signal(SIGTERM);
  HttpResult r;
  ASSERT_TRUE(eventually([&] {
    r = relay.post_events(event_json("sd-2"));
    return r.status == 503;
  }, 4000)) << r.status << " " << r.body;
  EXPECT_TRUE(json_error(r)) << r.body;
  EXPECT_EQ(r.headers["retry-after"], "1");
  EXPECT_EQ(relay.admin_get("/readyz").status, 503);
  EXPECT_EQ(relay.stop(), 0);
}

TEST(Hostile, PerClientRateLimitAnswers429AndTrustsOnlyListedProxies) {
  FakeLinkedIn fake;
  {
    RelayProcess relay;
    std::string err;
    ASSERT_TRUE(relay.start(hostile_yaml(fake.base_url(),
                                         "  per_client_rate: 1\n  per_client_burst: 5\n"),
                            &err))
        << err;
    int accepted = 0, limited = 0;
    HttpResult last;
    for (int i = 0; i < 8; ++i) {
      // X-Forwarded-For is not believed from an unlisted peer: one bucket for all.
      auto r = relay.post_events(event_json("r-" + std::to_string(i)), "application/json",
                                 {{"X-Forwarded-For", "198.51.100." + std::to_string(i)}});
      if (r.status == 202) ++accepted;
      if (r.status == 429) {
        ++limited;
        last = r;
      }
    }
    EXPECT_EQ(accepted, 5);
    EXPECT_EQ(limited, 3);
    EXPECT_TRUE(json_error(last)) << last.body;
    EXPECT_FALSE(last.headers["retry-after"].empty());
    EXPECT_GE(std::stoi(last.headers["retry-after"]), 1);
    // The limit is per client: the admin listener and a rested bucket still work.
    EXPECT_EQ(relay.admin_get("/healthz").status, 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    EXPECT_EQ(relay.post_events(event_json("r-rested")).status, 202);
    EXPECT_EQ(relay.stop(), 0);
  }
  {
    RelayProcess relay;
    std::string err;
    ASSERT_TRUE(relay.start(hostile_yaml(fake.base_url(),
                                         "  per_client_rate: 1\n  per_client_burst: 2\n"
                                         "  trusted_proxies: [127.0.0.1]\n"),
                            &err))
        << err;
    // Behind a trusted proxy each forwarded client has its own bucket...
    for (int i = 0; i < 6; ++i)
      EXPECT_EQ(relay.post_events(event_json("x-" + std::to_string(i)), "application/json",
                                  {{"X-Forwarded-For", "203.0.113.9, 198.51.100." +
                                                           std::to_string(i)}})
                    .status,
                202)
          << i;
    // ...and one client behind it is limited on its own.
    int limited = 0;
    for (int i = 0; i < 4; ++i)
      limited += relay.post_events(event_json("y-" + std::to_string(i)), "application/json",
                                   {{"X-Forwarded-For", "198.51.100.77"}})
                     .status == 429;
    EXPECT_EQ(limited, 2);
    EXPECT_EQ(relay.stop(), 0);
  }
}

TEST(Hostile, GlobalBodyBudgetAnswers503AndRecovers) {
  FakeLinkedIn fake;
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(hostile_yaml(fake.base_url(),
                                       "  max_body_bytes: 32KiB\n  max_buffered_bytes: 64KiB\n"
                                       "  body_timeout: 1500ms\n"),
                          &err))
      << err;
  // Two clients declare 32 KiB bodies and send nothing: the budget is spoken for. (They ask for
  // 100 Continue, which the relay sends once it holds their share: then the budget is taken.)
  std::vector<std::unique_ptr<RawClient>> holders;
  for (int i = 0; i < 2; ++i) {
    holders.push_back(std::make_unique<RawClient>(relay.ingest_port()));
    holders.back()->send(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Expect: 100-continue\r\nContent-Length: 32768\r\n\r\n");
    ASSERT_EQ(holders.back()->read_response(2000).status, 100);
  }
  HttpResult busy;
  ASSERT_TRUE(eventually([&] {
    busy = relay.post_events(event_json("b-1"));
    return busy.status == 503;
  }, 1000)) << busy.status << "\n" << [&] {
    std::string out;  // what the relay answered so far, by code
    std::istringstream in(relay.admin_get("/metrics").body);
    for (std::string line; std::getline(in, line);)
      if (line.rfind("capi_relay_ingest_requests_total", 0) == 0) out += line + "\n";
    return out;
  }();
  EXPECT_TRUE(json_error(busy));
  EXPECT_EQ(busy.headers["retry-after"], "1");
  // When the holders time out (body_timeout), the budget comes back.
  for (auto& h : holders) EXPECT_EQ(h->read_response(4000).status, 408);
  EXPECT_EQ(relay.post_events(event_json("b-2")).status, 202);
  EXPECT_EQ(relay.stop(), 0);
}

// ---------------------------------------------------------------------------------------------
// Secrets and privacy.

TEST(Secrets, NothingTheRelayWroteHoldsRawPiiKeysOrTokens) {
  const std::string token = "tok-SECRET-8d1f0a";
  const std::string key = "ingest-SECRET-77c2";
  const std::string email_local = "Very.Private.Person";
  const std::string email = email_local + "@Secret-Domain.example";
  const std::string ip = "198.51.100.213";
  const std::string ip6 = "2001:db8:beef::1234";
  // Three runs: the upstream refuses every other element (dead letters), dry run (batch files),
  // and the upstream down (everything stays on the spool).
  enum class Mode { kDeadLetters, kDryRun, kUpstreamDown };
  for (Mode mode : {Mode::kDeadLetters, Mode::kDryRun, Mode::kUpstreamDown}) {
    const bool dry_run = mode == Mode::kDryRun;
    FakeLinkedIn fake;
    fake.set_responder([mode](const FakeRequest& req) {
      FakeResponse r = FakeLinkedIn::accept_all(req);
      if (mode == Mode::kUpstreamDown) {
        r.status = 503;
        r.body = "{\"message\":\"down\"}";
        return r;
      }
      size_t n = FakeLinkedIn::count_elements(req.body);
      std::string b = "{\"elements\":[";
      for (size_t i = 0; i < n; ++i)
        b += std::string(i ? "," : "") +
             (i % 2 ? "{\"status\":400,\"message\":\"bad element\"}" : "{\"status\":201}");
      r.body = b + "]}";
      return r;
    });
    RelayProcess relay;
    std::string err;
    std::string yaml = hostile_yaml(fake.base_url(), "  ingest_keys: [" + key + "]\n",
                                    dry_run ? "  dry_run: true\n" : "");
    yaml.replace(yaml.find("access_token: test-token"), 24, "access_token: " + token);
    yaml = "log:\n  level: debug\n" + yaml;
    ASSERT_TRUE(relay.start(yaml, &err)) << err;
    const std::map<std::string, std::string> auth = {{"Authorization", "Bearer " + key}};
    std::string nd;
    for (int i = 0; i < 20; ++i)
      nd += "{\"event\":\"purchase\",\"eventId\":\"s-" + std::to_string(i) + "\",\"timestamp\":" +
            std::to_string(now_ms() - 1000) + ",\"user\":{\"email\":\" " + email +
            " \",\"ip\":\"" + (i % 2 ? ip : ip6) + "\",\"firstName\":\"F\",\"lastName\":\"L\"}}\n";
    ASSERT_EQ(relay.post_events(nd, "application/x-ndjson", auth).status, 202);
    // Rejected ones (bad email with the same private part, bad IP) must not leak either.
    auto rej = relay.post_events("{\"event\":\"purchase\",\"user\":{\"email\":\"" + email_local +
                                     "@\",\"ip\":\"" + ip + ".7\"}}",
                                 "application/json", auth);
    EXPECT_EQ(rej.status, 400);
    EXPECT_EQ(rej.body.find(email_local), std::string::npos) << rej.body;
    // Wrong key attempts and a beacon with the key in the query string.
    relay.post_events(nd, "application/x-ndjson", {{"Authorization", "Bearer " + key + "x"}});
    http_request(relay.ingest_port(), "POST", "/v1/events?key=" + key,
                 "{\"event\":\"purchase\",\"eventId\":\"q\",\"user\":{\"email\":\"" + email + "\"}}",
                 {{"Content-Type", "text/plain"}});
    if (mode == Mode::kDryRun) {
      ASSERT_TRUE(eventually([&] {
        return fs::exists(relay.dir() / "data" / "dry-run") &&
               !fs::is_empty(relay.dir() / "data" / "dry-run");
      }));
    } else if (mode == Mode::kDeadLetters) {
      ASSERT_TRUE(eventually([&] {
        return relay.metric("capi_relay_events_dead_lettered_total{reason=\"rejected\"}") >= 10;
      }, 15000));
      ASSERT_FALSE(fs::is_empty(relay.dir() / "data" / "dead-letters"));
    } else {
      ASSERT_TRUE(eventually([&] { return fake.request_count() > 0; }));
      EXPECT_EQ(relay.metric("capi_relay_spool_pending_events"), 21);
    }
    // Admin views carry no raw identifiers either.
    std::string admin = relay.admin_get("/v1/status").body + relay.admin_get("/metrics").body +
                        relay.admin_get("/v1/dead-letters").body +
                        relay.admin_get("/v1/events/s-1").body;
    EXPECT_EQ(relay.stop(), 0);

    size_t files = 0;
    for (const auto& f : fs::recursive_directory_iterator(relay.dir())) {
      if (!f.is_regular_file() || f.path().filename() == "relay.yaml") continue;
      ++files;
      const std::string content = read_file(f.path());
      std::string lower = content;
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      for (const std::string& needle : {std::string("very.private.person"),
                                        std::string("secret-domain.example"), ip, ip6,
                                        std::string("ingest-secret-77c2")})
        EXPECT_EQ(lower.find(needle), std::string::npos) << f.path() << " holds " << needle;
      const bool token_file = f.path().filename() == "token.json";
      if (!token_file) {
        EXPECT_EQ(content.find(token), std::string::npos) << f.path() << " holds the token";
      }
      if (f.path().filename() == "relay.log") continue;  // written by the test harness
      struct stat st{};
      ASSERT_EQ(::stat(f.path().c_str(), &st), 0);
      EXPECT_EQ(st.st_mode & 077, 0u) << f.path() << " is readable by group/others";
    }
    EXPECT_GT(files, 3u);
    for (const std::string& needle : {email, ip, ip6, key, token})
      EXPECT_EQ(admin.find(needle), std::string::npos) << "admin endpoints show " << needle;
    fs::remove_all(relay.dir());
  }
}

TEST(Secrets, CheckConfigAndStartupErrorsNeverPrintSecrets) {
  char tmpl[] = "/tmp/capi-relay-secrets-XXXXXX";
  fs::path dir = mkdtemp(tmpl);
  const std::string token = "tok-SECRET-4411";
  const std::string client_secret = "cs-SECRET-9090";
  const std::string refresh = "rt-SECRET-1212";
  const std::string key = "ik-SECRET-5656";
  const std::string redis_pw = "pw-SECRET-3434";
  // Valid secrets next to errors in the same sections, and secrets that are themselves invalid.
  {
    std::ofstream f(dir / "bad.yaml");
    f << "server:\n  ingest_keys: [" << key << ", \"\"]\n  max_body_bytes: lots\n"
      << "dedup:\n  redis_url: \"bogus://user:" << redis_pw << "@host:1/0\"\n"
      << "linkedin:\n  access_token: " << token << "\n  version: \"99\"\n"
      << "  oauth:\n    client_secret: {" << client_secret << ": 1}\n"
      << "    refresh_token: [" << refresh << "]\n    bogus_key: " << token << "\n";
  }
  CommandResult r =
      run_command(std::string(CAPI_RELAY_BINARY) + " check-config -c " + (dir / "bad.yaml").string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("server.max_body_bytes"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("dedup.redis_url"), std::string::npos) << r.output;
  for (const std::string& s : {token, client_secret, refresh, key, redis_pw})
    EXPECT_EQ(r.output.find(s), std::string::npos)
        << "check-config printed " << s << ":\n" << r.output;
  // serve refuses the same file without printing them.
  r = run_command(std::string(CAPI_RELAY_BINARY) + " serve -c " + (dir / "bad.yaml").string());
  EXPECT_NE(r.exit_code, 0);
  for (const std::string& s : {token, client_secret, refresh, key, redis_pw})
    EXPECT_EQ(r.output.find(s), std::string::npos) << "serve printed " << s << ":\n" << r.output;
  // A valid config: the summary counts keys, never shows them.
  {
    std::ofstream f(dir / "good.yaml");
    f << "server:\n  ingest_keys: [" << key << "]\n"
      << "linkedin:\n  access_token: " << token << "\n  oauth:\n    client_secret: "
      << client_secret << "\n    refresh_token: " << refresh << "\n"
      << "conversions:\n  purchase: 1\n";
  }
  r = run_command(std::string(CAPI_RELAY_BINARY) + " check-config -c " +
                  (dir / "good.yaml").string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const std::string& s : {token, client_secret, refresh, key})
    EXPECT_EQ(r.output.find(s), std::string::npos)
        << "check-config printed " << s << ":\n" << r.output;
  fs::remove_all(dir);
}

// ---------------------------------------------------------------------------------------------
// TLS to the upstream is verified (chain and host name), end to end with the real binary.

TEST(UpstreamTls, VerifiedWithCaFileAndRefusedWithout) {
  FakeLinkedIn fake(/*tls=*/true);
  char tmpl[] = "/tmp/capi-relay-tls-XXXXXX";
  fs::path dir = mkdtemp(tmpl);
  const fs::path ca = dir / "fake-ca.pem";
  std::ofstream(ca) << fake.cert_pem();
  {
    // Without the CA: the handshake fails, nothing reaches the upstream, the metric says why.
    RelayProcess relay;
    std::string err;
    ASSERT_TRUE(relay.start(hostile_yaml(fake.base_url()), &err)) << err;
    ASSERT_EQ(relay.post_events(event_json("tls-1")).status, 202);
    EXPECT_TRUE(eventually([&] {
      return relay.metric("capi_relay_upload_requests_total{code=\"tls_error\"}") > 0;
    }, 15000)) << relay.admin_get("/metrics").body.substr(0, 2000);
    EXPECT_EQ(fake.request_count(), 0u);
    EXPECT_EQ(relay.metric("capi_relay_events_uploaded_total"), 0);
    EXPECT_EQ(relay.stop(), 0);
  }
  {
    // With the CA as linkedin.ca_file: events arrive.
    RelayProcess relay;
    std::string err;
    ASSERT_TRUE(relay.start(hostile_yaml(fake.base_url(), "",
                                         "  ca_file: " + ca.string() + "\n"),
                            &err))
        << err;
    ASSERT_EQ(relay.post_events(event_json("tls-2")).status, 202);
    EXPECT_TRUE(eventually([&] {
      return relay.metric("capi_relay_events_uploaded_total") == 1;
    }, 15000));
    bool seen = false;
    for (const auto& r : fake.requests())
      seen |= r.body.find("\"eventId\":\"tls-2\"") != std::string::npos;
    EXPECT_TRUE(seen);
    EXPECT_EQ(relay.stop(), 0);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace capi_relay::testing
