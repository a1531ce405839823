// auth login (paste and listener), state check, code exchange; auth status; whoami diagnoses.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "capi_relay/cli/auth.hpp"
#include "capi_relay/cli/whoami.hpp"
#include "capi_relay/common/files.hpp"
#include "capi_relay/upload/token_store.hpp"
#include "cli_test_support.hpp"
#include "fakes/fake_linkedin.hpp"
#include "fakes/relay_process.hpp"

namespace capi_relay {
namespace {

using testing::CommandRun;
using testing::FakeLinkedIn;
using testing::FakeRequest;
using testing::FakeResponse;
using testing::TempDir;

constexpr const char* kCreds = "    client_id: cid\n    client_secret: s3cret\n";

FakeResponse token_endpoint(const FakeRequest& r) {
  FakeResponse resp;
  if (r.target == "/oauth/v2/accessToken" &&
      r.body.find("grant_type=authorization_code") != std::string::npos) {
    resp.body = "{\"access_token\":\"AT-new\",\"expires_in\":5184000,\"refresh_token\":\"RT-new\","
                "\"refresh_token_expires_in\":31536000}";
  } else {
    resp.status = 400;
    resp.body = "{\"error\":\"invalid_request\",\"error_description\":\"unexpected\"}";
  }
  return resp;
}

TokenSet stored_tokens(const Config& cfg) {
  auto text = read_file(cfg.linkedin.token_file);
  EXPECT_TRUE(text.ok());
  auto t = parse_token_file(text.ok() ? *text : "{}");
  EXPECT_TRUE(t.ok());
  return t.ok() ? *t : TokenSet{};
}

TEST(AuthUrl, CarriesEveryParameterEncoded) {
  OAuthConfig o;
  o.client_id = "abc";
  o.redirect_uri = "http://127.0.0.1:8765/callback";
  o.scopes = "rw_conversions  r_ads";
  EXPECT_EQ(authorization_url(o, "st8"),
            "https://www.linkedin.com/oauth/v2/authorization?response_type=code&client_id=abc"
            "&redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback&state=st8"
            "&scope=rw_conversions%20r_ads");
  FixedRandom a, b;
  EXPECT_EQ(make_oauth_state(a), make_oauth_state(b));
  EXPECT_EQ(make_oauth_state(a).size(), 32u);
  auto p = parse_redirect("  http://127.0.0.1:8765/callback?code=x%2By&state=s#frag\n");
  EXPECT_EQ(p.code, "x+y");
  EXPECT_EQ(p.state, "s");
  auto e = parse_redirect("?error=user_cancelled_login&error_description=The+user+cancelled");
  EXPECT_EQ(e.error, "user_cancelled_login");
  EXPECT_EQ(e.error_description, "The user cancelled");
}

TEST(AuthLogin, PasteExchangesTheCodeAndStoresBothTokensWithExpiries) {
  FakeLinkedIn fake;
  fake.set_responder(token_endpoint);
  TempDir dir;
  Config cfg = testing::make_config(dir, fake.base_url(), "", kCreds);
  FixedRandom same_sequence;
  const std::string state = make_oauth_state(same_sequence);
  CommandRun run("auth", {"login"},
                 cfg.linkedin.oauth.redirect_uri + "?code=the-code&state=" + state + "\n");
  run.flag("--paste");
  ASSERT_EQ(run.run(cfg, run_auth), 0) << run.err.str();
  EXPECT_NE(run.out.str().find("state=" + state), std::string::npos) << run.out.str();
  ASSERT_EQ(fake.request_count(), 1u);
  const std::string body = fake.requests()[0].body;
  EXPECT_NE(body.find("grant_type=authorization_code"), std::string::npos);
  EXPECT_NE(body.find("code=the-code"), std::string::npos);
  EXPECT_NE(body.find("redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback"), std::string::npos);
  EXPECT_NE(body.find("client_id=cid"), std::string::npos);
  EXPECT_NE(body.find("client_secret=s3cret"), std::string::npos);
  const TokenSet t = stored_tokens(cfg);
  EXPECT_EQ(t.access_token, "AT-new");
  EXPECT_EQ(t.refresh_token, "RT-new");
  EXPECT_EQ(t.access_token_expires_at, run.clock.now_ms() / 1000 + 5184000);
  EXPECT_EQ(t.refresh_token_expires_at, run.clock.now_ms() / 1000 + 31536000);
  EXPECT_EQ(run.out.str().find("AT-new"), std::string::npos);  // tokens are never printed
  EXPECT_EQ(run.out.str().find("RT-new"), std::string::npos);
  EXPECT_NE(run.out.str().find("60 days left"), std::string::npos) << run.out.str();
}

TEST(AuthLogin, AWrongStateIsRefusedAndNothingIsExchanged) {
  FakeLinkedIn fake;
  fake.set_responder(token_endpoint);
  TempDir dir;
  Config cfg = testing::make_config(dir, fake.base_url(), "", kCreds);
  CommandRun run("auth", {"login"}, "http://127.0.0.1:8765/callback?code=c&state=forged\n");
  run.flag("--paste");
  EXPECT_EQ(run.run(cfg, run_auth), 1);
  EXPECT_NE(run.err.str().find("state"), std::string::npos);
  EXPECT_EQ(fake.request_count(), 0u);
  EXPECT_FALSE(std::filesystem::exists(cfg.linkedin.token_file));
}

TEST(AuthLogin, AnErrorRedirectAndMissingCredentialsAreExplained) {
  FakeLinkedIn fake;
  fake.set_responder(token_endpoint);
  TempDir dir;
  Config cfg = testing::make_config(dir, fake.base_url(), "", kCreds);
  CommandRun denied("auth", {"login"},
                    "http://127.0.0.1:8765/callback?error=user_cancelled_authorize&state=x\n");
  denied.flag("--paste");
  EXPECT_EQ(denied.run(cfg, run_auth), 1);
  EXPECT_NE(denied.err.str().find("user_cancelled_authorize"), std::string::npos);
  EXPECT_EQ(fake.request_count(), 0u);

  Config no_secret = testing::make_config(dir, fake.base_url(), "", "    client_id: cid\n");
  CommandRun run("auth", {"login"}, "");
  run.flag("--paste");
  EXPECT_EQ(run.run(no_secret, run_auth), 1);
  EXPECT_NE(run.err.str().find("client_secret"), std::string::npos);
  EXPECT_EQ(run.out.str(), "");  // no URL printed before the check

  CommandRun bad("auth", {"logon"});
  EXPECT_EQ(bad.run(cfg, run_auth), 2);
}

using testing::free_port;  // tests/fakes/relay_process

// One GET to 127.0.0.1:port; returns the response text ("" when the connection failed).
std::string http_get(uint16_t port, const std::string& target) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return {};
  }
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  ::send(fd, req.data(), req.size(), 0);
  std::string resp;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) resp.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return resp;
}

TEST(AuthLogin, ListenerAnswersTheBrowserAndCompletesTheLogin) {
  FakeLinkedIn fake;
  fake.set_responder(token_endpoint);
  TempDir dir;
  const uint16_t port = free_port();
  const std::string redirect = "http://127.0.0.1:" + std::to_string(port) + "/callback";
  Config cfg = testing::make_config(dir, fake.base_url(), "",
                                    std::string(kCreds) + "    redirect_uri: " + redirect + "\n");
  CommandRun run("auth", {"login"});
  int rc = -1;
  std::thread login([&] { rc = run.run(cfg, run_auth); });
  FixedRandom same_sequence;
  const std::string state = make_oauth_state(same_sequence);
  std::string other;
  for (int i = 0; i < 200 && other.empty(); ++i) {
    other = http_get(port, "/favicon.ico");
    if (other.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(other.find("404"), std::string::npos) << other;
  const std::string page = http_get(port, "/callback?code=lc&state=" + state);
  login.join();
  EXPECT_NE(page.find("200 OK"), std::string::npos) << page;
  EXPECT_NE(page.find("close this tab"), std::string::npos);
  EXPECT_EQ(rc, 0) << run.err.str();
  EXPECT_EQ(stored_tokens(cfg).access_token, "AT-new");
}

TEST(AuthStatus, ShowsLifetimesNeverTokens) {
  TempDir dir;
  Config cfg = testing::make_config(dir, "http://127.0.0.1:9");
  FakeClock clock;
  auto store = TokenStore::open(TokenStoreOptions::from_config(cfg), clock);
  ASSERT_TRUE(store.ok());
  const int64_t now_s = clock.now_ms() / 1000;
  ASSERT_TRUE((*store)->store({"AT-secret", now_s + 3 * 86400 + 60, "RT-secret", now_s + 200 * 86400}).ok());
  CommandRun run("auth", {"status"});
  ASSERT_EQ(run.run(cfg, run_auth), 0) << run.err.str();
  EXPECT_NE(run.out.str().find("(3 days left)"), std::string::npos) << run.out.str();
  EXPECT_NE(run.out.str().find("(200 days left)"), std::string::npos);
  EXPECT_NE(run.out.str().find("auth refresh"), std::string::npos);  // expires within 7 days
  EXPECT_EQ(run.out.str().find("secret"), std::string::npos);
  CommandRun json("auth", {"status"});
  json.flag("--json");
  ASSERT_EQ(json.run(cfg, run_auth), 0);
  EXPECT_NE(json.out.str().find("\"access_token\":{\"present\":true,\"expires_at\":\""),
            std::string::npos)
      << json.out.str();
  EXPECT_NE(json.out.str().find("\"days_left\":200"), std::string::npos);

  clock.advance_ms(4ll * 86400 * 1000);
  CommandRun expired("auth", {"status"});
  expired.clock.set_now_ms(clock.now_ms());
  EXPECT_EQ(expired.run(cfg, run_auth), 1);
  EXPECT_NE(expired.out.str().find("EXPIRED"), std::string::npos);
}

// ---------------------------------------------------------------- whoami

struct WhoamiScript {
  std::string introspection = "{\"active\":true,\"status\":\"active\",\"scope\":\"r_ads,rw_conversions\","
                              "\"expires_at\":1769504000,\"auth_type\":\"3L\"}";
  int ad_users_status = 200;
  std::string ad_users = "{\"elements\":[{\"account\":\"urn:li:sponsoredAccount:507\","
                         "\"role\":\"ACCOUNT_MANAGER\",\"user\":\"urn:li:person:x\"}],"
                         "\"paging\":{\"total\":1}}";
  int me_status = 200;
};

void script(FakeLinkedIn& fake, WhoamiScript s) {
  fake.set_responder([s](const FakeRequest& r) {
    FakeResponse resp;
    if (r.target == "/oauth/v2/introspectToken") {
      resp.body = s.introspection;
    } else if (r.target.rfind("/rest/adAccountUsers?q=authenticatedUser", 0) == 0) {
      resp.status = s.ad_users_status;
      resp.body = s.ad_users;
    } else if (r.target == "/v2/me") {
      resp.status = s.me_status;
      resp.body = s.me_status == 200
                      ? "{\"id\":\"m1\",\"localizedFirstName\":\"Ann\",\"localizedLastName\":\"Lee\"}"
                      : "{\"status\":403,\"message\":\"Not enough permissions\"}";
    } else {
      resp.status = 404;
    }
    return resp;
  });
}

TEST(Whoami, HealthyTokenWithIntrospection) {
  FakeLinkedIn fake;
  script(fake, {});
  TempDir dir;
  Config cfg = testing::make_config(dir, fake.base_url(), "  access_token: tok-1\n", kCreds);
  CommandRun run("whoami");
  ASSERT_EQ(run.run(cfg, run_whoami), 0) << run.out.str() << run.err.str();
  const std::string out = run.out.str();
  EXPECT_NE(out.find("active (checked by introspection, 3L)"), std::string::npos) << out;
  EXPECT_NE(out.find("r_ads, rw_conversions"), std::string::npos);
  EXPECT_NE(out.find("Ann Lee"), std::string::npos);
  EXPECT_NE(out.find("urn:li:sponsoredAccount:507  ACCOUNT_MANAGER"), std::string::npos) << out;
  EXPECT_EQ(out.find("tok-1"), std::string::npos);
  const auto reqs = fake.requests();
  ASSERT_GE(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].body, "client_id=cid&client_secret=s3cret&token=tok-1");
}

TEST(Whoami, MissingConversionsScopeNamesTheProduct) {
  FakeLinkedIn fake;
  WhoamiScript s;
  s.introspection = "{\"active\":true,\"status\":\"active\",\"scope\":\"r_ads\",\"expires_at\":1769504000}";
  script(fake, s);
  TempDir dir;
  Config cfg = testing::make_config(dir, fake.base_url(), "  access_token: tok\n", kCreds);
  CommandRun run("whoami");
  run.flag("--json");
  EXPECT_EQ(run.run(cfg, run_whoami), 1);
  EXPECT_NE(run.out.str().find("\"code\":\"missing_scope\""), std::string::npos) << run.out.str();
  EXPECT_NE(run.out.str().find("Conversions API product"), std::string::npos);
}

TEST(Whoami, ExpiredTokenFromIntrospectionStopsThere) {
  FakeLinkedIn fake;
  WhoamiScript s;
  s.introspection = "{\"active\":false,\"status\":\"expired\"}";
  script(fake, s);
  TempDir dir;
  Config cfg = testing::make_config(dir, fake.base_url(), "  access_token: tok\n", kCreds);
  CommandRun run("whoami");
  EXPECT_EQ(run.run(cfg, run_whoami), 1);
  EXPECT_NE(run.out.str().find("expired"), std::string::npos);
  EXPECT_NE(run.out.str().find("auth refresh"), std::string::npos) << run.out.str();
  EXPECT_EQ(fake.request_count(), 1u);  // no API call with a dead token
}

TEST(Whoami, RevokedTokenWithoutSecretComesFromThe401Code) {
  FakeLinkedIn fake;
  WhoamiScript s;
  s.ad_users_status = 401;
  s.ad_users = "{\"status\":401,\"serviceErrorCode\":65601,\"code\":\"REVOKED_ACCESS_TOKEN\","
               "\"message\":\"The token used in the request has been revoked by the user\"}";
  script(fake, s);
  TempDir dir;
  Config cfg = testing::make_config(dir, fake.base_url(), "  access_token: tok\n");
  CommandRun run("whoami");
  run.flag("--json");
  EXPECT_EQ(run.run(cfg, run_whoami), 1);
  EXPECT_NE(run.out.str().find("\"code\":\"token_revoked\""), std::string::npos) << run.out.str();
  EXPECT_NE(run.out.str().find("auth login"), std::string::npos);
  for (const auto& r : fake.requests()) EXPECT_NE(r.target, "/oauth/v2/introspectToken");
}

TEST(Whoami, NoAdAccountRoleAndForbiddenAreDiagnosed) {
  FakeLinkedIn fake;
  WhoamiScript s;
  s.ad_users = "{\"elements\":[],\"paging\":{\"total\":0}}";
  s.me_status = 403;
  script(fake, s);
  TempDir dir;
  Config cfg = testing::make_config(dir, fake.base_url(), "  access_token: tok\n");
  CommandRun run("whoami");
  run.flag("--json");
  EXPECT_EQ(run.run(cfg, run_whoami), 1);
  EXPECT_NE(run.out.str().find("\"code\":\"no_ad_account_role\""), std::string::npos) << run.out.str();
  EXPECT_NE(run.out.str().find("\"code\":\"profile_unreadable\""), std::string::npos);

  WhoamiScript f;
  f.ad_users_status = 403;
  f.ad_users = "{\"status\":403,\"message\":\"Not enough permissions to access: "
               "adAccountUsers.FINDER-authenticatedUser\"}";
  script(fake, f);
  CommandRun forbidden("whoami");
  EXPECT_EQ(forbidden.run(cfg, run_whoami), 1);
  EXPECT_NE(forbidden.out.str().find("r_ads"), std::string::npos) << forbidden.out.str();

  WhoamiScript viewer;
  viewer.ad_users = "{\"elements\":[{\"account\":\"urn:li:sponsoredAccount:1\",\"role\":\"VIEWER\"}]}";
  script(fake, viewer);
  CommandRun v("whoami");
  v.flag("--json");
  EXPECT_EQ(v.run(cfg, run_whoami), 1);
  EXPECT_NE(v.out.str().find("\"code\":\"role_cannot_send\""), std::string::npos) << v.out.str();
}

}  // namespace
}  // namespace capi_relay
