// "Never lose an event", failure mode by failure mode: the real capi-relay binary against the
// in-process fake LinkedIn with scripted faults (outage, 429 with and without Retry-After,
// 422/400 naming indices, per-element statuses, expiring and revoked tokens, 426, dropped
// connections, slow responses, a full spool, graceful shutdown). Each test proves that every
// event the relay acknowledged with 202 reaches LinkedIn or the dead-letter store, and that the
// relay says what it is doing (/v1/status, /readyz, metrics, log).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include "integration/delivery_support.hpp"

namespace capi_relay::testing {
namespace {

std::vector<std::string> make_ids(const std::string& prefix, int from, int to) {
  std::vector<std::string> ids;
  for (int i = from; i < to; ++i) ids.push_back(prefix + std::to_string(i));
  return ids;
}

bool contains_all(const std::set<std::string>& have, const std::vector<std::string>& want) {
  for (const auto& id : want)
    if (!have.count(id)) return false;
  return true;
}

std::string status_of(const RelayProcess& relay) { return relay.admin_get("/v1/status").body; }

void write_token_file(const std::filesystem::path& path, const std::string& json) {
  const auto tmp = path.string() + ".tmp";
  {
    std::ofstream f(tmp);
    f << json;
  }
  std::filesystem::permissions(tmp, std::filesystem::perms::owner_read |
                                        std::filesystem::perms::owner_write);
  std::filesystem::rename(tmp, path);
}

// Done-when #1: during a 25 s outage (503, then 429 without Retry-After) the relay keeps
// answering 202, sends at most a few dozen requests upstream, and delivers everything within
// 30 s of recovery (retry.max_backoff: 10s). The only long test of the set (~35 s).
TEST(Delivery, OutageYieldsATrickleOfProbesAndEverythingArrivesSoonAfterRecovery) {
  ScriptedUpstream up;
  std::atomic<int> phase{0};  // 0: 503, 1: 429 without Retry-After, 2: recovered
  up.set_script([&](const FakeRequest&) -> std::optional<FakeResponse> {
    switch (phase.load()) {
      case 0: return status_response(503, "{\"message\":\"Service Unavailable\"}");
      case 1: return status_response(429, "{\"status\":429,\"message\":\"Too Many Requests\"}");
      default: return std::nullopt;
    }
  });
  RelayConfig cfg = delivery_config(up.base_url());
  cfg.flush_interval = "1s";         // contract defaults for the schedule under test
  cfg.initial_backoff = "500ms";
  cfg.max_backoff = "10s";
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(cfg.yaml(), &err)) << err;

  // Load: 10 events every 100 ms from a client thread for the whole outage.
  std::atomic<bool> load{true};
  std::atomic<int> not_202{0};
  std::vector<std::string> acked;
  std::thread client([&] {
    const int64_t ts = now_ms() - 1000;
    for (int n = 0; load.load(); ++n) {
      auto ids = make_ids("out-" + std::to_string(n) + "-", 0, 10);
      auto r = relay.post_events(ndjson(ids, ts), "application/x-ndjson");
      if (r.status == 202) {
        acked.insert(acked.end(), ids.begin(), ids.end());
      } else {
        ++not_202;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  const int64_t outage_start = mono_ms();
  std::this_thread::sleep_for(std::chrono::milliseconds(12500));
  phase = 1;
  std::this_thread::sleep_for(std::chrono::milliseconds(12500));
  load = false;
  client.join();
  const int64_t recovered_at = mono_ms();
  phase = 2;
  const size_t outage_requests = up.requests_between(outage_start, recovered_at);

  EXPECT_EQ(not_202.load(), 0) << "ingest must keep answering 202 during an outage";
  ASSERT_GT(acked.size(), 2000u);
  EXPECT_GT(relay.metric("capi_relay_spool_pending_events"), 0);
  EXPECT_GT(relay.metric("capi_relay_oldest_pending_event_age_seconds"), 5);
  const bool delivered = eventually(
      [&] { return contains_all(up.accepted(), acked); }, 30000);
  const int64_t deliver_ms = mono_ms() - recovered_at;
  std::printf("[ figures  ] outage 25 s: %zu upstream requests; %zu events acknowledged; "
              "all delivered %.1f s after recovery\n",
              outage_requests, acked.size(), deliver_ms / 1000.0);
  EXPECT_TRUE(delivered) << "not everything arrived within 30 s of recovery";
  EXPECT_GE(outage_requests, 3u) << "the relay must keep probing";
  EXPECT_LE(outage_requests, 36u) << "retry storm";
  EXPECT_GT(relay.metric("capi_relay_upload_requests_total{code=\"503\"}"), 0);
  EXPECT_GT(relay.metric("capi_relay_upload_requests_total{code=\"429\"}"), 0);
  EXPECT_TRUE(eventually([&] { return relay.metric("capi_relay_spool_pending_events") == 0; }));
  EXPECT_EQ(relay.metric("capi_relay_oldest_pending_event_age_seconds"), 0);
  EXPECT_EQ(relay.metric("capi_relay_events_dead_lettered_total{reason=\"rejected\"}"), 0);
  EXPECT_EQ(relay.stop(), 0);
}

// A Retry-After is a floor, never anticipated: delta-seconds and HTTP-date.
TEST(Delivery, RetryAfterSecondsAndHttpDateAreNeverAnticipated) {
  ScriptedUpstream up;
  std::atomic<int> n{0};
  std::atomic<int64_t> date_ms{0};
  up.set_script([&](const FakeRequest&) -> std::optional<FakeResponse> {
    const int k = n++;
    if (k == 0) return status_response(429, "", {{"Retry-After", "5"}});
    if (k == 1) {
      // An IMF-fixdate 4 s ahead (whole seconds, as HTTP dates are).
      const time_t at = static_cast<time_t>(now_ms() / 1000 + 4);
      date_ms = static_cast<int64_t>(at) * 1000;
      struct tm tm {};
      gmtime_r(&at, &tm);
      char buf[64];
      strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
      return status_response(503, "", {{"Retry-After", buf}});
    }
    return std::nullopt;
  });
  // Backoff 50..200 ms: only the Retry-After can explain a wait.
  RelayConfig cfg = delivery_config(up.base_url());
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(cfg.yaml(), &err)) << err;
  auto ids = make_ids("ra-", 0, 3);
  ASSERT_EQ(relay.post_events(ndjson(ids, now_ms()), "application/x-ndjson").status, 202);
  ASSERT_TRUE(eventually([&] { return contains_all(up.accepted(), ids); }, 20000));
  auto ex = up.exchanges();
  ASSERT_GE(ex.size(), 3u);
  const int64_t gap1 = ex[1].at_mono_ms - ex[0].at_mono_ms;
  std::printf("[ figures  ] Retry-After: 5 -> next request after %lld ms; HTTP-date -> %lld ms "
              "after the date\n",
              static_cast<long long>(gap1),
              static_cast<long long>(ex[2].at_wall_ms - date_ms.load()));
  EXPECT_GE(gap1, 5000) << "Retry-After: 5 anticipated";
  EXPECT_LT(gap1, 7000) << "Retry-After: 5 overshot by far";
  EXPECT_GE(ex[2].at_wall_ms, date_ms.load()) << "Retry-After date anticipated";
  EXPECT_EQ(ex.size(), 3u);
  EXPECT_EQ(relay.stop(), 0);
}

// 422 "Index: N, ERROR :: ..." and per-element 4xx statuses inside a 200 are dead-lettered with
// LinkedIn's message; 429/5xx elements are retried; the rest is delivered; a 400 naming no
// element pauses instead of mass-dead-lettering; a corrected event is accepted again.
TEST(Delivery, PartialFailuresDeadLetterOnlyTheNamedElements) {
  ScriptedUpstream up;
  std::atomic<bool> systemic{false};
  std::atomic<bool> refuse_rej{true};        // LinkedIn refuses rej-* until they are corrected
  std::map<std::string, int> element_tries;  // fake I/O thread only
  up.set_script([&](const FakeRequest& req) -> std::optional<FakeResponse> {
    if (systemic) {
      return status_response(
          400, "{\"status\":400,\"message\":\"Unsupported LinkedIn-Version header\"}");
    }
    const auto ids = body_event_ids(req.body);
    std::string msg;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (refuse_rej && ids[i].rfind("rej-", 0) == 0) {
        msg += "Index: " + std::to_string(i) +
               ", ERROR :: /conversionHappenedAt :: value is too old\\n";
      }
    }
    if (!msg.empty()) return status_response(422, "{\"status\":422,\"message\":\"" + msg + "\"}");
    std::string body = "{\"elements\":[";
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) body += ",";
      const int k = element_tries[ids[i]]++;
      if (ids[i] == "el-bad") {
        body += "{\"status\":400,\"message\":\"/user/userIds/0/idValue :: invalid value\"}";
      } else if (ids[i] == "el-retry" && k < 2) {
        body += k == 0 ? "{\"status\":429}" : "{\"status\":503}";
      } else {
        body += "{\"status\":201}";
      }
    }
    body += "]}";
    return status_response(200, body);
  });
  RelayConfig cfg = delivery_config(up.base_url());
  cfg.pause_recheck = "1h";
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(cfg.yaml(), &err)) << err;
  const int64_t ts = now_ms() - 1000;
  const std::vector<std::string> ids = {"ok-1", "rej-1", "ok-2", "el-bad", "rej-2", "el-retry",
                                        "ok-3"};
  ASSERT_EQ(relay.post_events(ndjson(ids, ts), "application/x-ndjson").status, 202);
  ASSERT_TRUE(eventually([&] {
    return relay.metric("capi_relay_spool_pending_events") == 0 &&
           relay.metric("capi_relay_events_dead_lettered_total{reason=\"rejected\"}") == 3;
  }, 15000)) << relay.admin_get("/metrics").body;
  EXPECT_EQ(up.accepted(), (std::set<std::string>{"ok-1", "ok-2", "ok-3", "el-retry"}));
  EXPECT_EQ(up.times_sent("el-retry"), 4u);  // 422 round, 429, 503, 201
  EXPECT_EQ(relay.metric("capi_relay_events_uploaded_total"), 4);

  const auto dl = relay.admin_get("/v1/dead-letters").body;
  for (const char* id : {"rej-1", "rej-2", "el-bad"})
    EXPECT_NE(dl.find(std::string("\"") + id + "\""), std::string::npos) << id << " in " << dl;
  EXPECT_NE(dl.find("value is too old"), std::string::npos) << dl;
  EXPECT_NE(dl.find("invalid value"), std::string::npos) << dl;
  EXPECT_NE(dl.find("422"), std::string::npos) << dl;
  EXPECT_EQ(dl.find("ok-1"), std::string::npos) << dl;

  // Re-sent corrected: the dead-lettered key was released, so the same eventId is accepted.
  refuse_rej = false;
  auto resend = relay.post_events(
      "{\"event\":\"purchase\",\"eventId\":\"rej-1\",\"timestamp\":" + std::to_string(ts) +
      ",\"value\":{\"amount\":\"10.00\",\"currency\":\"EUR\"},\"user\":{\"email\":\"r@example.com\"}}");
  EXPECT_EQ(resend.body, "{\"accepted\":1,\"duplicates\":0,\"rejected\":[]}");
  ASSERT_TRUE(eventually([&] { return up.accepted().count("rej-1") == 1; }, 10000));

  // A 400 that names no element is systemic: pause, nothing dead-lettered, nothing lost.
  systemic = true;
  auto sys = make_ids("sys-", 0, 4);
  ASSERT_EQ(relay.post_events(ndjson(sys, ts), "application/x-ndjson").status, 202);
  ASSERT_TRUE(eventually([&] {
    return status_of(relay).find("\"paused\":true") != std::string::npos;
  }, 10000));
  EXPECT_NE(status_of(relay).find("systemic_error: 400 Unsupported LinkedIn-Version"),
            std::string::npos)
      << status_of(relay);
  EXPECT_EQ(relay.metric("capi_relay_events_dead_lettered_total{reason=\"rejected\"}"), 3);
  EXPECT_EQ(relay.metric("capi_relay_spool_pending_events"), 4);
  EXPECT_EQ(relay.admin_get("/readyz").status, 200);
  systemic = false;
  relay.signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return contains_all(up.accepted(), sys); }, 10000));
  EXPECT_TRUE(eventually([&] { return relay.metric("capi_relay_uploads_paused") == 0; }));
  EXPECT_EQ(relay.stop(), 0);
}

// 426 (API version retired) pauses visibly without loss or unreadiness; SIGHUP retries at once,
// and without it the relay re-checks every pause_recheck and resumes by itself.
TEST(Delivery, VersionRetiredPausesAndResumesOnSighupOrRecheck) {
  ScriptedUpstream up;
  std::atomic<bool> retired{true};
  up.set_script([&](const FakeRequest&) -> std::optional<FakeResponse> {
    if (retired)
      return status_response(426, "{\"status\":426,\"message\":\"Requested version is not active\"}");
    return std::nullopt;
  });
  RelayConfig cfg = delivery_config(up.base_url());
  cfg.pause_recheck = "3s";
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(cfg.yaml(), &err)) << err;
  const int64_t ts = now_ms() - 1000;

  auto a = make_ids("v-a-", 0, 5);
  ASSERT_EQ(relay.post_events(ndjson(a, ts), "application/x-ndjson").status, 202);
  ASSERT_TRUE(eventually([&] { return relay.metric("capi_relay_uploads_paused") == 1; }, 10000));
  const int64_t paused_at = mono_ms();
  auto st = status_of(relay);
  EXPECT_NE(st.find("\"paused\":true"), std::string::npos) << st;
  EXPECT_NE(st.find("\"paused_reason\":\"version_retired\""), std::string::npos) << st;
  EXPECT_NE(relay.log().find("version_retired"), std::string::npos);
  EXPECT_EQ(relay.admin_get("/readyz").status, 200);
  EXPECT_EQ(relay.post_events(ndjson({"v-a-extra"}, ts), "application/x-ndjson").status, 202);
  a.push_back("v-a-extra");
  // LinkedIn (or the operator's config) is fixed; SIGHUP retries now, not at the next recheck.
  retired = false;
  relay.signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return contains_all(up.accepted(), a); }, 10000));
  const int64_t sighup_ms = mono_ms() - paused_at;
  EXPECT_LT(sighup_ms, 2500) << "SIGHUP did not trigger a retry";
  EXPECT_TRUE(eventually([&] { return relay.metric("capi_relay_uploads_paused") == 0; }));
  EXPECT_NE(status_of(relay).find("\"paused\":false"), std::string::npos);

  // Again, fixed without SIGHUP: the next pause_recheck probe resumes by itself.
  retired = true;
  auto b = make_ids("v-b-", 0, 5);
  ASSERT_EQ(relay.post_events(ndjson(b, ts), "application/x-ndjson").status, 202);
  ASSERT_TRUE(eventually([&] { return relay.metric("capi_relay_uploads_paused") == 1; }, 10000));
  const size_t before = up.requests();
  retired = false;
  ASSERT_TRUE(eventually([&] { return contains_all(up.accepted(), b); }, 8000))
      << "no recheck within pause_recheck";
  EXPECT_LE(up.requests() - before, 2u) << "a paused relay probes once per pause_recheck";
  EXPECT_TRUE(eventually([&] { return relay.metric("capi_relay_uploads_paused") == 0; }));
  EXPECT_EQ(relay.metric("capi_relay_spool_pending_events"), 0);
  EXPECT_EQ(relay.stop(), 0);
}

// A revoked token pauses delivery visibly, without loss and without making the relay unready;
// a new token file plus SIGHUP resumes it.
TEST(Delivery, RevokedTokenPausesVisiblyAndResumesWithANewTokenFile) {
  ScriptedUpstream up;
  up.set_script([&](const FakeRequest& req) -> std::optional<FakeResponse> {
    if (req.headers.at("authorization") != "Bearer fresh-token") {
      return status_response(401, "{\"status\":401,\"serviceErrorCode\":65601,\"code\":"
                                  "\"REVOKED_ACCESS_TOKEN\",\"message\":\"The token used in the "
                                  "request has been revoked by the user\"}");
    }
    return std::nullopt;
  });
  RelayConfig cfg = delivery_config(up.base_url());
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(cfg.yaml(), &err)) << err;
  const int64_t ts = now_ms() - 1000;
  auto ids = make_ids("rv-", 0, 10);
  ASSERT_EQ(relay.post_events(ndjson(ids, ts), "application/x-ndjson").status, 202);
  ASSERT_TRUE(eventually([&] { return relay.metric("capi_relay_uploads_paused") == 1; }, 10000));
  EXPECT_NE(status_of(relay).find("\"paused_reason\":\"token_revoked\""), std::string::npos)
      << status_of(relay);
  EXPECT_NE(relay.log().find("token_revoked"), std::string::npos);
  EXPECT_EQ(relay.log().find("test-token"), std::string::npos) << "token in the log";
  EXPECT_EQ(relay.admin_get("/readyz").status, 200);
  // Ingest goes on while paused.
  auto more = make_ids("rv-more-", 0, 10);
  ASSERT_EQ(relay.post_events(ndjson(more, ts), "application/x-ndjson").status, 202);
  ids.insert(ids.end(), more.begin(), more.end());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(relay.metric("capi_relay_spool_pending_events"), 20);
  EXPECT_EQ(up.requests(), 1u) << "a paused relay must not keep sending";

  // The operator re-authorizes (auth login writes the token file) and sends SIGHUP.
  write_token_file(relay.dir() / "data" / "token.json",
                   "{\"access_token\":\"fresh-token\",\"access_token_expires_at\":" +
                       std::to_string(now_ms() / 1000 + 60 * 86400) + "}");
  relay.signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return contains_all(up.accepted(), ids); }, 10000));
  EXPECT_TRUE(eventually([&] { return relay.metric("capi_relay_uploads_paused") == 0; }));
  EXPECT_GT(relay.metric("capi_relay_token_expiry_timestamp_seconds"), now_ms() / 1000.0);
  EXPECT_EQ(relay.metric("capi_relay_events_dead_lettered_total{reason=\"rejected\"}"), 0);
  EXPECT_EQ(relay.stop(), 0);
}

// An expired access token (401 INVALID_ACCESS_TOKEN) is refreshed through oauth.token_url,
// persisted (0600) and the batches are retried — with two batches in flight at once, both
// refused with the old token, and without pausing or losing anything. A token that nears its
// expiry is refreshed before it is used. A refused grant pauses with token_expired.
TEST(Delivery, ExpiredTokenIsRefreshedWithoutLoss) {
  ScriptedUpstream up;
  std::atomic<int> token_calls{0};
  std::atomic<int> generation{1};
  std::atomic<bool> grant_ok{true};
  std::string bad_grant_body;
  up.set_script([&](const FakeRequest& req) -> std::optional<FakeResponse> {
    if (req.headers.at("authorization") != "Bearer at-" + std::to_string(generation.load())) {
      return status_response(401, "{\"status\":401,\"serviceErrorCode\":65600,\"code\":"
                                  "\"INVALID_ACCESS_TOKEN\",\"message\":\"Invalid access token\"}");
    }
    FakeResponse r = FakeLinkedIn::accept_all(req);
    r.delay_ms = 50;  // keeps the two batches in flight together
    return r;
  });
  up.set_other([&](const FakeRequest& req) -> std::optional<FakeResponse> {
    if (req.target != "/oauth/v2/accessToken" || req.method != "POST") return std::nullopt;
    ++token_calls;
    if (req.body.find("grant_type=refresh_token") == std::string::npos ||
        req.body.find("refresh_token=rt-1") == std::string::npos ||
        req.body.find("client_id=app-1") == std::string::npos) {
      return status_response(400, "{\"error\":\"invalid_request\"}");
    }
    if (!grant_ok) return status_response(400, "{\"error\":\"invalid_grant\"}");
    const int g = ++generation;
    return status_response(200, "{\"access_token\":\"at-" + std::to_string(g) +
                                    "\",\"expires_in\":5184000,\"refresh_token\":\"rt-1\","
                                    "\"refresh_token_expires_in\":31536000}");
  });
  RelayConfig cfg = delivery_config(up.base_url());
  cfg.access_token = "at-0";  // already expired: LinkedIn answers 401
  cfg.batch_max_events = 5;
  cfg.max_in_flight = 2;
  cfg.flush_interval = "500ms";
  cfg.oauth = "    token_url: " + up.base_url() + "/oauth/v2/accessToken\n" +
              "    client_id: app-1\n    client_secret: s3cret\n    refresh_token: rt-1\n";
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(cfg.yaml(), &err)) << err;
  const int64_t ts = now_ms() - 1000;
  auto ids = make_ids("tk-", 0, 20);
  ASSERT_EQ(relay.post_events(ndjson(ids, ts), "application/x-ndjson").status, 202);
  ASSERT_TRUE(eventually([&] { return contains_all(up.accepted(), ids); }, 10000))
      << status_of(relay);
  EXPECT_EQ(token_calls.load(), 1) << "one refresh serves every batch";
  EXPECT_EQ(relay.metric("capi_relay_uploads_paused"), 0) << status_of(relay);
  EXPECT_EQ(relay.log().find("uploads paused"), std::string::npos) << relay.log();
  // Both first batches went out with the old token together (the case under test).
  auto ex = up.exchanges();
  ASSERT_GE(ex.size(), 2u);
  EXPECT_EQ(ex[0].authorization, "Bearer at-0");
  EXPECT_EQ(ex[1].authorization, "Bearer at-0");
  // Persisted, 0600, and the expiry is exported.
  const auto token_file = relay.dir() / "data" / "token.json";
  std::ifstream in(token_file);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"access_token\":\"at-2\""), std::string::npos);
  struct stat sb {};
  ASSERT_EQ(stat(token_file.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0600u);
  EXPECT_GT(relay.metric("capi_relay_token_expiry_timestamp_seconds"),
            now_ms() / 1000.0 + 59 * 86400);
  EXPECT_EQ(relay.log().find("at-2"), std::string::npos) << "token in the log";
  EXPECT_EQ(relay.log().find("s3cret"), std::string::npos) << "secret in the log";
  EXPECT_EQ(relay.stop(), 0);

  // Nearing expiry: the token file says at-2 expires in 2 minutes: refreshed before use.
  write_token_file(token_file, "{\"access_token\":\"at-2\",\"access_token_expires_at\":" +
                                   std::to_string(now_ms() / 1000 + 120) +
                                   ",\"refresh_token\":\"rt-1\"}");
  ASSERT_TRUE(relay.start(cfg.yaml(), &err)) << err;
  const size_t sent_before = up.requests();
  auto ids2 = make_ids("tk2-", 0, 3);
  ASSERT_EQ(relay.post_events(ndjson(ids2, ts), "application/x-ndjson").status, 202);
  ASSERT_TRUE(eventually([&] { return contains_all(up.accepted(), ids2); }, 10000));
  EXPECT_EQ(token_calls.load(), 2);
  ex = up.exchanges();
  ASSERT_GT(ex.size(), sent_before);
  EXPECT_EQ(ex[sent_before].authorization, "Bearer at-3") << "refreshed ahead of expiry";

  // The refresh token is refused (invalid_grant): pause token_expired, keep everything, stay ready.
  grant_ok = false;
  generation = 100;  // LinkedIn now refuses at-3
  auto ids3 = make_ids("tk3-", 0, 3);
  ASSERT_EQ(relay.post_events(ndjson(ids3, ts), "application/x-ndjson").status, 202);
  ASSERT_TRUE(eventually([&] { return relay.metric("capi_relay_uploads_paused") == 1; }, 10000));
  EXPECT_NE(status_of(relay).find("\"paused_reason\":\"token_expired\""), std::string::npos)
      << status_of(relay);
  EXPECT_EQ(relay.admin_get("/readyz").status, 200);
  EXPECT_EQ(relay.metric("capi_relay_spool_pending_events"), 3);
  EXPECT_EQ(relay.stop(), 0);
}

// Dropped connections and responses slower than linkedin.response_timeout are retried (counted
// as connect_error / timeout) and the batch is delivered.
TEST(Delivery, DroppedConnectionAndSlowResponseAreRetried) {
  ScriptedUpstream up;
  std::atomic<int> n{0};
  up.set_script([&](const FakeRequest&) -> std::optional<FakeResponse> {
    const int k = n++;
    FakeResponse r = status_response(503);
    if (k == 0) r.drop_connection = true;
    if (k == 1) r.delay_ms = 3000;  // the relay gives up after 1 s
    if (k >= 2) return std::nullopt;
    return r;
  });
  RelayConfig cfg = delivery_config(up.base_url());
  cfg.response_timeout = "1s";
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(cfg.yaml(), &err)) << err;
  auto ids = make_ids("net-", 0, 5);
  ASSERT_EQ(relay.post_events(ndjson(ids, now_ms()), "application/x-ndjson").status, 202);
  ASSERT_TRUE(eventually([&] { return contains_all(up.accepted(), ids); }, 15000));
  auto ex = up.exchanges();
  ASSERT_GE(ex.size(), 3u);
  const int64_t timeout_gap = ex[2].at_mono_ms - ex[1].at_mono_ms;
  std::printf("[ figures  ] slow response: retried %lld ms after it was sent (timeout 1 s)\n",
              static_cast<long long>(timeout_gap));
  EXPECT_GE(timeout_gap, 1000);
  EXPECT_LT(timeout_gap, 2500) << "the response timeout did not fire";
  EXPECT_EQ(relay.metric("capi_relay_upload_requests_total{code=\"connect_error\"}"), 1);
  EXPECT_EQ(relay.metric("capi_relay_upload_requests_total{code=\"timeout\"}"), 1);
  EXPECT_GE(relay.metric("capi_relay_upload_retries_total"), 2);
  EXPECT_EQ(relay.stop(), 0);
}

// A full spool answers 503 with Retry-After (and /readyz 503 spool_full); ingest resumes as the
// spool drains, and every acknowledged event is delivered.
TEST(Delivery, FullSpoolAnswers503WithRetryAfterThenRecovers) {
  ScriptedUpstream up;
  std::atomic<bool> down{true};
  up.set_script([&](const FakeRequest&) -> std::optional<FakeResponse> {
    if (down) return status_response(503);
    return std::nullopt;
  });
  RelayConfig cfg = delivery_config(up.base_url());
  cfg.max_bytes = "256KiB";
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(cfg.yaml(), &err)) << err;
  const int64_t ts = now_ms() - 1000;
  std::vector<std::string> acked;
  HttpResult full;
  for (int n = 0; n < 1000; ++n) {
    auto ids = make_ids("sf-" + std::to_string(n) + "-", 0, 20);
    auto r = relay.post_events(ndjson(ids, ts), "application/x-ndjson");
    if (r.status == 202) {
      acked.insert(acked.end(), ids.begin(), ids.end());
      continue;
    }
    full = r;
    break;
  }
  ASSERT_EQ(full.status, 503) << "the spool never filled";
  EXPECT_FALSE(full.headers["retry-after"].empty());
  EXPECT_NE(full.body.find("\"error\""), std::string::npos) << full.body;
  auto ready = relay.admin_get("/readyz");
  EXPECT_EQ(ready.status, 503);
  EXPECT_NE(ready.body.find("spool_full"), std::string::npos) << ready.body;
  EXPECT_GT(acked.size(), 200u);
  EXPECT_EQ(relay.metric("capi_relay_spool_pending_events"), static_cast<double>(acked.size()));

  // Upstream recovers: the spool drains, readiness and ingest come back.
  down = false;
  ASSERT_TRUE(eventually([&] { return relay.admin_get("/readyz").status == 200; }, 15000));
  // Ingest keeps being accepted while LinkedIn keeps up (not one request per drained segment).
  int refused = 0;
  for (int n = 0; n < 30; ++n) {
    auto ids = make_ids("sf-after-" + std::to_string(n) + "-", 0, 20);
    auto r = relay.post_events(ndjson(ids, ts), "application/x-ndjson");
    if (r.status == 202) {
      acked.insert(acked.end(), ids.begin(), ids.end());
    } else {
      ++refused;
    }
  }
  EXPECT_EQ(refused, 0) << "ingest did not resume after the spool drained";
  ASSERT_TRUE(eventually([&] { return contains_all(up.accepted(), acked); }, 15000));
  EXPECT_EQ(relay.stop(), 0);
}

// SIGTERM: /readyz 503 at once; ingest accepted during server.shutdown_grace, 503 after (the
// listener stays open); what was accepted is uploaded within shutdown_timeout; exit 0.
TEST(Delivery, GracefulShutdownSequence) {
  ScriptedUpstream up;
  up.set_script([](const FakeRequest& req) -> std::optional<FakeResponse> {
    FakeResponse r = FakeLinkedIn::accept_all(req);
    r.delay_ms = 700;  // a slow upstream keeps the relay busy after the grace period
    return r;
  });
  RelayConfig cfg = delivery_config(up.base_url());
  cfg.shutdown_grace = "2s";
  cfg.shutdown_timeout = "5s";
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(cfg.yaml(), &err)) << err;
  const int64_t ts = now_ms() - 1000;
  std::vector<std::string> acked = make_ids("gs-", 0, 10);
  ASSERT_EQ(relay.post_events(ndjson(acked, ts), "application/x-ndjson").status, 202);

  const int64_t t0 = mono_ms();
  relay.signal(SIGTERM);
  // /readyz turns 503 at once.
  ASSERT_TRUE(eventually([&] { return relay.admin_get("/readyz").status == 503; }, 1000));
  const int64_t unready_ms = mono_ms() - t0;
  EXPECT_NE(relay.admin_get("/readyz").body.find("shutting_down"), std::string::npos);
  // Ingest keeps accepting during the grace period.
  int grace_202 = 0;
  int64_t first_503_ms = -1;
  HttpResult refused;
  for (int n = 0; mono_ms() - t0 < 4000; ++n) {
    auto ids = make_ids("gs-" + std::to_string(n) + "-", 0, 5);
    auto r = relay.post_events(ndjson(ids, ts), "application/x-ndjson");
    const int64_t at = mono_ms() - t0;
    if (r.status == 0) break;  // exited
    if (r.status == 202) {
      EXPECT_EQ(first_503_ms, -1) << "202 after a 503";
      EXPECT_LT(at, 2300) << "accepted after the grace period";
      acked.insert(acked.end(), ids.begin(), ids.end());
      ++grace_202;
    } else if (first_503_ms < 0) {
      first_503_ms = at;
      refused = r;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::printf("[ figures  ] shutdown: unready after %lld ms, %d posts accepted in the 2 s grace, "
              "first 503 at %lld ms\n",
              static_cast<long long>(unready_ms), grace_202, static_cast<long long>(first_503_ms));
  EXPECT_LT(unready_ms, 500);
  EXPECT_GE(grace_202, 10);
  EXPECT_GE(first_503_ms, 1900);
  EXPECT_LE(first_503_ms, 2500);
  EXPECT_EQ(refused.status, 503) << "the listener must stay open and answer 503";
  EXPECT_FALSE(refused.headers["retry-after"].empty());
  EXPECT_EQ(relay.stop(8000), 0);
  EXPECT_TRUE(contains_all(up.accepted(), acked)) << "accepted events not uploaded before exit";
}

// Exit 0 means exit 0 even with a client connection open and idle at shutdown (the relay used
// to crash in the ingest server's destructor then: SIGSEGV, exit status lost).
TEST(Delivery, ExitIsCleanWithIdleConnectionsOpen) {
  ScriptedUpstream up;
  RelayConfig cfg = delivery_config(up.base_url());
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(cfg.yaml(), &err)) << err;
  std::vector<int> fds;
  for (int i = 0; i < 3; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(relay.ingest_port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    fds.push_back(fd);
  }
  ASSERT_EQ(relay.post_events(ndjson({"idle-1"}, now_ms()), "application/x-ndjson").status, 202);
  ASSERT_TRUE(eventually([&] { return up.accepted_count() == 1; }));
  EXPECT_EQ(relay.stop(), 0);
  for (int fd : fds) ::close(fd);
}

}  // namespace
}  // namespace capi_relay::testing
