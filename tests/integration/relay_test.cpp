// End-to-end tests: the real capi-relay binary against the in-process fake LinkedIn on loopback.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "fakes/fake_linkedin.hpp"
#include "fakes/relay_config.hpp"
#include "fakes/relay_process.hpp"
#include "fakes/test_events.hpp"

namespace capi_relay::testing {
namespace {

// This file's config: 200 ms flushes and a signup rule besides purchase.
std::string relay_yaml(const std::string& api_base, const std::string& linkedin_extra = "") {
  RelayConfig c;
  c.api_base = api_base;
  c.flush_interval = "200ms";
  c.linkedin_extra = linkedin_extra;
  c.conversions += "  signup: 456\n";
  return c.yaml();
}

// The value every event of this file carries (the upload must show it as 50.00 USD).
const EventValue kValue{"50.00", "usd"};

TEST(Relay, MixedBodiesAreAnsweredPerContractAndUploadedExactlyOnce) {
  FakeLinkedIn fake;
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(relay_yaml(fake.base_url()), &err)) << err;
  const int64_t ts = now_ms() - 60'000;

  // One object.
  auto r1 = relay.post_events(event_json("o-1", "  John.Doe@Example.com ", ts, kValue));
  EXPECT_EQ(r1.status, 202) << r1.body;
  EXPECT_EQ(r1.body, "{\"accepted\":1,\"duplicates\":0,\"rejected\":[]}");

  // An array with a duplicate of o-1, an in-body duplicate, and an invalid event.
  std::string arr = "[" + event_json("o-2", "a@example.com", ts, kValue) + "," +
                    event_json("o-1", "john.doe@example.com", ts, kValue) + "," +
                    event_json("o-2", "a@example.com", ts, kValue) + "," +
                    "{\"event\":\"nope\",\"eventId\":\"o-3\",\"user\":{\"email\":\"b@example.com\"}}]";
  auto r2 = relay.post_events(arr);
  EXPECT_EQ(r2.status, 202) << r2.body;
  EXPECT_NE(r2.body.find("\"accepted\":1,\"duplicates\":2"), std::string::npos) << r2.body;
  EXPECT_NE(r2.body.find("{\"index\":3,\"error\":\"unknown_event"), std::string::npos) << r2.body;

  // NDJSON with a blank line (counted) and a line that is not JSON.
  std::string nd = event_json("o-4", "c@example.com", ts, kValue) + "\n\n{not json\n" +
                   event_json("o-5", "d@example.com", ts, kValue, "signup") + "\n";
  auto r3 = relay.post_events(nd, "application/x-ndjson");
  EXPECT_EQ(r3.status, 202) << r3.body;
  EXPECT_NE(r3.body.find("\"accepted\":2"), std::string::npos) << r3.body;
  EXPECT_NE(r3.body.find("{\"index\":2,\"error\":\"invalid_json"), std::string::npos) << r3.body;

  // text/plain (sendBeacon) with charset, read as one JSON value.
  auto r4 =
      relay.post_events(event_json("o-6", "e@example.com", ts, kValue), "text/plain;charset=UTF-8");
  EXPECT_EQ(r4.status, 202) << r4.body;

  // All rejected -> 400 with the same body shape plus error.
  auto r5 = relay.post_events("[{\"event\":\"purchase\",\"eventId\":\"o-7\",\"user\":{\"firstName\":\"Ann\"}}]");
  EXPECT_EQ(r5.status, 400) << r5.body;
  EXPECT_NE(r5.body.find("\"error\""), std::string::npos);
  EXPECT_NE(r5.body.find("incomplete_name"), std::string::npos);
  // Unparseable and empty bodies -> 400.
  EXPECT_EQ(relay.post_events("{oops").status, 400);
  EXPECT_EQ(relay.post_events("[]").status, 400);
  EXPECT_EQ(relay.post_events("").status, 400);
  // Unsupported type -> 415.
  auto r6 = relay.post_events(event_json("o-8", "f@example.com", ts, kValue), "application/xml");
  EXPECT_EQ(r6.status, 415);
  EXPECT_NE(r6.body.find("\"error\""), std::string::npos);

  // Every unique valid event arrives exactly once.
  std::multiset<std::string> want = {"o-1", "o-2", "o-4", "o-5", "o-6"};
  ASSERT_TRUE(eventually([&] { return received_event_ids(fake).size() >= want.size(); }, 15000));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // nothing more may come
  auto ids = received_event_ids(fake);
  EXPECT_EQ(std::multiset<std::string>(ids.begin(), ids.end()), want);

  // LinkedIn's format and headers.
  auto reqs = fake.requests();
  ASSERT_FALSE(reqs.empty());
  const auto& q = reqs.front();
  EXPECT_EQ(q.method, "POST");
  EXPECT_EQ(q.target, "/rest/conversionEvents");
  EXPECT_EQ(q.headers.at("authorization"), "Bearer test-token");
  EXPECT_EQ(q.headers.at("linkedin-version"), "202609");
  EXPECT_EQ(q.headers.at("x-restli-protocol-version"), "2.0.0");
  EXPECT_EQ(q.headers.at("x-restli-method"), "BATCH_CREATE");
  EXPECT_NE(q.headers.at("content-type").find("application/json"), std::string::npos);
  std::string all;
  for (const auto& r : reqs) all += r.body;
  EXPECT_NE(all.find("\"conversion\":\"urn:lla:llaPartnerConversion:123\""), std::string::npos);
  EXPECT_NE(all.find("\"conversion\":\"urn:lla:llaPartnerConversion:456\""), std::string::npos);
  EXPECT_NE(all.find("\"conversionHappenedAt\":" + std::to_string(ts)), std::string::npos);
  EXPECT_NE(all.find("\"conversionValue\":{\"currencyCode\":\"USD\",\"amount\":\"50.00\"}"),
            std::string::npos);
  // john.doe@example.com hashed after normalization.
  EXPECT_NE(all.find("836f82db99121b3481011f16b49dfa5fbc714a0d1b1b9f784a1ebbbf5b39577f"),
            std::string::npos);
  EXPECT_EQ(all.find("example.com"), std::string::npos) << "raw email sent";

  // Metrics agree.
  ASSERT_TRUE(eventually([&] { return relay.metric("capi_relay_events_uploaded_total") == 5; }));
  EXPECT_EQ(relay.metric("capi_relay_events_accepted_total"), 5);
  EXPECT_EQ(relay.metric("capi_relay_events_duplicate_total"), 2);
  EXPECT_EQ(relay.metric("capi_relay_events_rejected_total{reason=\"unknown_event\"}"), 1);
  EXPECT_EQ(relay.metric("capi_relay_events_rejected_total{reason=\"incomplete_name\"}"), 1);
  EXPECT_EQ(relay.metric("capi_relay_events_received_total"),
            relay.metric("capi_relay_events_accepted_total") +
                relay.metric("capi_relay_events_duplicate_total") +
                [&] {
                  double sum = 0;
                  auto body = relay.admin_get("/metrics").body;
                  std::istringstream in(body);
                  std::string line;
                  while (std::getline(in, line))
                    if (line.rfind("capi_relay_events_rejected_total{", 0) == 0)
                      sum += std::stod(line.substr(line.rfind(' ') + 1));
                  return sum;
                }());
  EXPECT_EQ(relay.stop(), 0);

  // Nothing on disk holds the raw email.
  for (const auto& f : std::filesystem::recursive_directory_iterator(relay.dir() / "data")) {
    if (!f.is_regular_file()) continue;
    const std::string content = read_file(f.path());
    EXPECT_EQ(content.find("example.com"), std::string::npos) << f.path();
    struct stat st{};
    stat(f.path().c_str(), &st);
    EXPECT_EQ(st.st_mode & 077, 0u) << f.path() << " is readable by others";
  }
}

TEST(Relay, RestartKeepsPendingEventsAndDedupState) {
  FakeLinkedIn fake;
  fake.set_responder([](const FakeRequest&) {
    FakeResponse r;
    r.status = 503;
    r.body = "{\"status\":503,\"message\":\"unavailable\"}";
    return r;
  });
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(relay_yaml(fake.base_url()), &err)) << err;
  const int64_t ts = now_ms() - 1000;
  std::string nd;
  for (int i = 0; i < 50; ++i)
    nd += event_json("r-" + std::to_string(i), "u@example.com", ts, kValue) + "\n";
  auto r = relay.post_events(nd, "application/x-ndjson");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_NE(r.body.find("\"accepted\":50"), std::string::npos);
  ASSERT_TRUE(eventually([&] { return fake.request_count() > 0; }));
  EXPECT_EQ(relay.stop(), 0);

  // The upstream recovers; a restarted relay delivers the backlog and still knows the keys.
  fake.set_responder(FakeLinkedIn::accept_all);
  fake.clear();
  ASSERT_TRUE(relay.start(relay_yaml(fake.base_url()), &err)) << err;
  auto dup = relay.post_events(event_json("r-7", "u@example.com", ts, kValue));
  EXPECT_EQ(dup.status, 202);
  EXPECT_EQ(dup.body, "{\"accepted\":0,\"duplicates\":1,\"rejected\":[]}");
  ASSERT_TRUE(eventually([&] { return received_event_ids(fake).size() >= 50; }, 20000));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto ids = received_event_ids(fake);
  EXPECT_EQ(ids.size(), 50u);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 50u);
  EXPECT_EQ(relay.stop(), 0);
}

TEST(Relay, DryRunWritesBatchBodies) {
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(relay_yaml("http://127.0.0.1:9", "  dry_run: true\n"), &err)) << err;
  const int64_t ts = now_ms();
  ASSERT_EQ(relay.post_events(event_json("d-1", "x@example.com", ts, kValue)).status, 202);
  auto dry = relay.dir() / "data" / "dry-run";
  ASSERT_TRUE(eventually([&] {
    return std::filesystem::exists(dry) && !std::filesystem::is_empty(dry);
  }));
  std::string content;
  ASSERT_TRUE(eventually([&] {
    for (const auto& f : std::filesystem::directory_iterator(dry)) content = read_file(f.path());
    return content.find("\"eventId\":\"d-1\"") != std::string::npos;
  }));
  EXPECT_EQ(content.rfind("{\"elements\":[", 0), 0u) << content;
  EXPECT_EQ(relay.stop(), 0);
}

TEST(Relay, OriginKeySizeAndTypeChecksInContractOrder) {
  FakeLinkedIn fake;
  RelayProcess relay;
  std::string err;
  std::string yaml = relay_yaml(fake.base_url());
  yaml.replace(yaml.find("  io_threads: 2\n"), 16,
               "  io_threads: 2\n  ingest_keys: [k-123]\n  cors_origins: [https://shop.example]\n"
               "  max_body_bytes: 2KiB\n");
  ASSERT_TRUE(relay.start(yaml, &err)) << err;
  const std::string ev = event_json("c-1", "x@example.com", now_ms(), kValue);
  const std::string big(4096, ' ');
  // Origin first: a foreign origin with no key, a big body and a bad type -> 403.
  auto a = relay.post_events(big, "application/xml", {{"Origin", "https://evil.example"}});
  EXPECT_EQ(a.status, 403);
  EXPECT_NE(a.body.find("\"error\""), std::string::npos);
  // Then the key -> 401.
  EXPECT_EQ(relay.post_events(big, "application/xml", {{"Origin", "https://shop.example"}}).status, 401);
  // Then size -> 413.
  EXPECT_EQ(relay.post_events(big, "application/xml", {{"Authorization", "Bearer k-123"}}).status, 413);
  // Then type -> 415.
  EXPECT_EQ(relay.post_events(ev, "application/xml", {{"Authorization", "Bearer k-123"}}).status, 415);
  // Key as a query parameter (beacons), allowed origin gets CORS headers.
  auto ok = http_request(relay.ingest_port(), "POST", "/v1/events?key=k-123", ev,
                         {{"Content-Type", "text/plain"}, {"Origin", "https://shop.example"}});
  EXPECT_EQ(ok.status, 202) << ok.body;
  EXPECT_EQ(ok.headers["access-control-allow-origin"], "https://shop.example");
  EXPECT_EQ(ok.headers["vary"], "Origin");
  // Preflight.
  auto pre = http_request(relay.ingest_port(), "OPTIONS", "/v1/events", "",
                          {{"Origin", "https://shop.example"},
                           {"Access-Control-Request-Method", "POST"},
                           {"Access-Control-Request-Headers", "content-type,authorization"}});
  EXPECT_EQ(pre.status, 204);
  EXPECT_EQ(pre.headers["access-control-allow-origin"], "https://shop.example");
  EXPECT_NE(pre.headers["access-control-allow-methods"].find("POST"), std::string::npos);
  EXPECT_NE(pre.headers["access-control-allow-headers"].find("Authorization"), std::string::npos);
  EXPECT_FALSE(pre.headers["access-control-max-age"].empty());
  EXPECT_EQ(http_request(relay.ingest_port(), "OPTIONS", "/v1/events", "",
                         {{"Origin", "https://evil.example"}})
                .status,
            403);
  EXPECT_EQ(relay.stop(), 0);
}

TEST(Relay, AdminEndpoints) {
  FakeLinkedIn fake;
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(relay_yaml(fake.base_url()), &err)) << err;
  EXPECT_EQ(relay.admin_get("/healthz").status, 200);
  EXPECT_EQ(relay.admin_get("/readyz").status, 200);
  auto m = relay.admin_get("/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.headers["content-type"], "text/plain; version=0.0.4");
  for (const char* name :
       {"capi_relay_events_received_total", "capi_relay_events_accepted_total",
        "capi_relay_events_rejected_total", "capi_relay_events_duplicate_total",
        "capi_relay_events_uploaded_total", "capi_relay_events_dead_lettered_total",
        "capi_relay_upload_requests_total", "capi_relay_upload_retries_total",
        "capi_relay_upload_duration_seconds", "capi_relay_batch_events",
        "capi_relay_spool_pending_events", "capi_relay_spool_bytes",
        "capi_relay_oldest_pending_event_age_seconds", "capi_relay_token_expiry_timestamp_seconds",
        "capi_relay_refresh_token_expiry_timestamp_seconds", "capi_relay_uploads_paused"})
    EXPECT_NE(m.body.find(std::string("# TYPE ") + name), std::string::npos) << name;
  auto s = relay.admin_get("/v1/status");
  EXPECT_EQ(s.status, 200);
  for (const char* key : {"\"pending_events\":", "\"oldest_pending_age_seconds\":", "\"paused\":",
                          "\"paused_reason\":", "\"last_upload\":", "\"token_expires_at\":",
                          "\"dead_letters\":"})
    EXPECT_NE(s.body.find(key), std::string::npos) << key;
  auto nf = relay.admin_get("/nope");
  EXPECT_EQ(nf.status, 404);
  EXPECT_NE(nf.body.find("\"error\""), std::string::npos);
  EXPECT_EQ(relay.stop(), 0);
}

TEST(Relay, CheckConfigReportsEveryErrorWithKeyPath) {
  char tmpl[] = "/tmp/capi-relay-cc-XXXXXX";
  std::filesystem::path dir = mkdtemp(tmpl);
  {
    std::ofstream f(dir / "bad.yaml");
    f << "server:\n  listen: 127.0.0.1:8080\n  bogus: 1\nspool:\n  fsync: sometimes\n";
  }
  const auto [code, out] = run_command(std::string(CAPI_RELAY_BINARY) + " check-config -c " +
                                       (dir / "bad.yaml").string());
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("server.bogus"), std::string::npos) << out;
  EXPECT_NE(out.find("spool.fsync"), std::string::npos) << out;

  std::string ok_cmd = std::string(CAPI_RELAY_BINARY) + " check-config -c " +
                       std::string(CAPI_RELAY_SOURCE_DIR) + "/config/relay.example.yaml >/dev/null 2>&1";
  EXPECT_EQ(WEXITSTATUS(system(ok_cmd.c_str())), 0);
  EXPECT_EQ(WEXITSTATUS(system((std::string(CAPI_RELAY_BINARY) + " frobnicate 2>/dev/null").c_str())), 2);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace capi_relay::testing

namespace capi_relay::testing {
namespace {

// The core acceptance run: 5,000 events in every body form, 10% repeated event IDs, 5% invalid,
// a restart in the middle; every valid unique event arrives exactly once, counts agree.
TEST(Relay, FiveThousandMixedEventsWithRestartArriveExactlyOnce) {
  FakeLinkedIn fake;
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(relay_yaml(fake.base_url()), &err)) << err;
  const int64_t ts = now_ms() - 120'000;
  std::set<std::string> unique_valid;
  uint64_t expect_accepted = 0, expect_duplicates = 0, expect_rejected = 0;
  uint64_t got_accepted = 0, got_duplicates = 0, got_rejected = 0;
  std::regex counts("\\{(?:\"error\":\"[^\"]*\",)?\"accepted\":(\\d+),\"duplicates\":(\\d+),\"rejected\":\\[(.*)\\]\\}");
  int next_id = 0;
  for (int batch = 0; batch < 50; ++batch) {
    if (batch == 25) {  // restart in the middle
      EXPECT_EQ(relay.stop(), 0);
      ASSERT_TRUE(relay.start(relay_yaml(fake.base_url()), &err)) << err;
    }
    std::vector<std::string> events;
    for (int i = 0; i < 100; ++i) {
      int k = batch * 100 + i;
      if (k % 20 == 7) {  // 5% invalid: unknown event name
        events.push_back("{\"event\":\"bogus\",\"eventId\":\"bad-" + std::to_string(k) +
                         "\",\"user\":{\"email\":\"x@example.com\"}}");
        ++expect_rejected;
      } else if (k % 10 == 3 && next_id > 0) {  // 10% repeats of an earlier ID
        std::string id = "e-" + std::to_string((k * 7919) % next_id);
        events.push_back(event_json(id, "u" + std::to_string(k) + "@example.com", ts, kValue));
        ++expect_duplicates;
      } else {
        std::string id = "e-" + std::to_string(next_id++);
        events.push_back(event_json(id, "u" + std::to_string(k) + "@example.com", ts, kValue));
        unique_valid.insert(id);
        ++expect_accepted;
      }
    }
    std::string body;
    std::string type;
    switch (batch % 4) {
      case 0:  // JSON array
        type = "application/json";
        body = "[";
        for (size_t i = 0; i < events.size(); ++i) body += (i ? "," : "") + events[i];
        body += "]";
        break;
      case 1:  // NDJSON
        type = "application/x-ndjson";
        for (const auto& e : events) body += e + "\n";
        break;
      case 2:  // text/plain NDJSON (beacon-style)
        type = "text/plain";
        for (const auto& e : events) body += e + "\r\n";
        break;
      default: {  // single objects, one request each
        for (const auto& e : events) {
          auto r = relay.post_events(e, "application/json");
          std::smatch m;
          ASSERT_TRUE(std::regex_match(r.body, m, counts)) << r.status << " " << r.body;
          got_accepted += std::stoull(m[1]);
          got_duplicates += std::stoull(m[2]);
          got_rejected += m[3].length() > 0 ? 1 : 0;
          EXPECT_EQ(r.status, m[3].length() > 0 ? 400 : 202) << r.body;
        }
        continue;
      }
    }
    auto r = relay.post_events(body, type);
    ASSERT_EQ(r.status, 202) << r.body;
    std::smatch m;
    ASSERT_TRUE(std::regex_match(r.body, m, counts)) << r.body;
    got_accepted += std::stoull(m[1]);
    got_duplicates += std::stoull(m[2]);
    std::string rej = m[3];
    for (size_t p = rej.find("\"index\""); p != std::string::npos; p = rej.find("\"index\"", p + 1))
      ++got_rejected;
  }
  EXPECT_EQ(got_accepted, expect_accepted);
  EXPECT_EQ(got_duplicates, expect_duplicates);
  EXPECT_EQ(got_rejected, expect_rejected);

  ASSERT_TRUE(eventually([&] { return received_event_ids(fake).size() >= unique_valid.size(); },
                         30000));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto ids = received_event_ids(fake);
  EXPECT_EQ(ids.size(), unique_valid.size());
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()), unique_valid);
  for (const auto& req : fake.requests())
    EXPECT_LE(FakeLinkedIn::count_elements(req.body), 5000u);
  // Counters restart with the process: the second half's counts must agree with the uploads.
  ASSERT_TRUE(eventually([&] {
    return relay.metric("capi_relay_spool_pending_events") == 0;
  }));
  EXPECT_EQ(relay.stop(), 0);
}

}  // namespace
}  // namespace capi_relay::testing

namespace capi_relay::testing {
namespace {

// LinkedIn refuses one element by index: it is dead-lettered with LinkedIn's message, the others
// are uploaded; the dead letter can be listed and replayed through the admin endpoints, and
// GET /v1/events/{eventId} tells each event's fate.
TEST(Relay, RefusedElementIsDeadLetteredListedAndReplayed) {
  FakeLinkedIn fake;
  std::atomic<bool> refuse{true};
  fake.set_responder([&](const FakeRequest& req) {
    if (refuse && req.body.find("\"eventId\":\"bad-1\"") != std::string::npos) {
      // Find bad-1's index in the batch.
      size_t idx = 0;
      std::regex re("\"eventId\":\"([^\"]*)\"");
      for (std::sregex_iterator it(req.body.begin(), req.body.end(), re), end; it != end; ++it, ++idx)
        if ((*it)[1] == "bad-1") break;
      FakeResponse r;
      r.status = 422;
      r.body = "{\"status\":422,\"message\":\"Index: " + std::to_string(idx) +
               ", ERROR :: /user/userIds/0/idValue :: invalid value\\n\"}";
      return r;
    }
    return FakeLinkedIn::accept_all(req);
  });
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(relay_yaml(fake.base_url()), &err)) << err;
  const int64_t ts = now_ms() - 1000;
  std::string nd = event_json("ok-1", "a@example.com", ts, kValue) + "\n" +
                   event_json("bad-1", "b@example.com", ts, kValue) + "\n" +
                   event_json("ok-2", "c@example.com", ts, kValue) + "\n";
  ASSERT_EQ(relay.post_events(nd, "application/x-ndjson").status, 202);
  ASSERT_TRUE(eventually([&] {
    return relay.metric("capi_relay_events_dead_lettered_total{reason=\"rejected\"}") == 1 &&
           relay.metric("capi_relay_events_uploaded_total") == 2;
  }, 15000)) << relay.admin_get("/metrics").body;

  auto list = relay.admin_get("/v1/dead-letters");
  EXPECT_EQ(list.status, 200);
  EXPECT_NE(list.body.find("bad-1"), std::string::npos) << list.body;
  EXPECT_NE(list.body.find("invalid value"), std::string::npos) << list.body;
  EXPECT_NE(list.body.find("422"), std::string::npos) << list.body;

  auto bad = relay.admin_get("/v1/events/bad-1");
  EXPECT_EQ(bad.status, 200);
  EXPECT_NE(bad.body.find("\"state\":\"dead_lettered\""), std::string::npos) << bad.body;
  auto good = relay.admin_get("/v1/events/ok-1");
  EXPECT_NE(good.body.find("\"state\":\"uploaded\""), std::string::npos) << good.body;
  EXPECT_EQ(relay.admin_get("/v1/events/never-seen").status, 404);

  // The dead-lettered key was released: a corrected resend is accepted.
  auto resend = relay.post_events(event_json("bad-1", "b2@example.com", ts, kValue));
  EXPECT_EQ(resend.body, "{\"accepted\":1,\"duplicates\":0,\"rejected\":[]}");

  // LinkedIn is fixed; replaying the dead letter uploads it.
  refuse = false;
  auto replay = http_request(relay.admin_port(), "POST", "/v1/dead-letters/replay",
                             "{\"reason\":\"rejected\"}", {{"Content-Type", "application/json"}});
  EXPECT_EQ(replay.status, 200) << replay.body;
  EXPECT_EQ(replay.body, "{\"replayed\":1}");
  ASSERT_TRUE(eventually([&] { return relay.metric("capi_relay_events_uploaded_total") == 4; },
                         15000));
  EXPECT_EQ(relay.admin_get("/v1/dead-letters").body.find("bad-1"), std::string::npos);
  EXPECT_EQ(relay.stop(), 0);
}

}  // namespace
}  // namespace capi_relay::testing

namespace capi_relay::testing {
namespace {

// SIGHUP re-reads the config: a new conversion rule and a new ingest key apply without restart;
// an invalid file changes nothing.
TEST(Relay, SighupReloadsRulesAndKeys) {
  FakeLinkedIn fake;
  RelayProcess relay;
  std::string err;
  std::string yaml = relay_yaml(fake.base_url());
  ASSERT_TRUE(relay.start(yaml, &err)) << err;
  const int64_t ts = now_ms();
  auto before = relay.post_events(event_json("h-1", "a@example.com", ts, kValue, "lead"));
  EXPECT_EQ(before.status, 400);
  EXPECT_NE(before.body.find("unknown_event"), std::string::npos);

  // An invalid file is refused and the relay keeps its config.
  std::ofstream(relay.dir() / "relay.yaml") << yaml << "bogus_key: 1\n";
  relay.signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return relay.log().find("reload refused") != std::string::npos; }));
  EXPECT_EQ(relay.post_events(event_json("h-0", "a@example.com", ts, kValue)).status, 202);

  std::string updated = yaml + "  lead: 789\n";
  updated.replace(updated.find("  io_threads: 2\n"), 16, "  io_threads: 2\n  ingest_keys: [k-new]\n");
  std::ofstream(relay.dir() / "relay.yaml") << updated;
  relay.signal(SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return relay.post_events(event_json("h-2", "a@example.com", ts, kValue, "lead")).status == 401;
  }));
  auto after = relay.post_events(event_json("h-3", "a@example.com", ts, kValue, "lead"),
                                 "application/json", {{"Authorization", "Bearer k-new"}});
  EXPECT_EQ(after.status, 202) << after.body;
  ASSERT_TRUE(eventually([&] {
    for (const auto& r : fake.requests())
      if (r.body.find("urn:lla:llaPartnerConversion:789") != std::string::npos) return true;
    return false;
  }));
  EXPECT_EQ(relay.stop(), 0);
}

}  // namespace
}  // namespace capi_relay::testing
