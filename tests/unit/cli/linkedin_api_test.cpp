// LinkedInApi paging, Rest.li key encoding, rule validation and the rules/account commands
// against the fake LinkedIn.
#include <gtest/gtest.h>

#include <atomic>
#include <regex>

#include "capi_relay/cli/account_structure.hpp"
#include "capi_relay/cli/linkedin_api.hpp"
#include "cli_test_support.hpp"
#include "fakes/fake_linkedin.hpp"

namespace capi_relay {
namespace {

using testing::CommandRun;
using testing::FakeLinkedIn;
using testing::FakeRequest;
using testing::FakeResponse;
using testing::TempDir;

std::string query_param(const std::string& target, const std::string& name) {
  std::smatch m;
  std::regex re("[?&]" + name + "=([^&]*)");
  return std::regex_search(target, m, re) ? std::string(m[1]) : std::string();
}

std::string elements_json(size_t from, size_t n) {
  std::string s = "[";
  for (size_t i = 0; i < n; ++i) {
    s += (i ? "," : "") + std::string("{\"id\":") + std::to_string(from + i) +
         ",\"name\":\"Account " + std::to_string(from + i) + "\",\"status\":\"ACTIVE\"}";
  }
  return s + "]";
}

TEST(RestliKeys, CampaignConversionKeyEncodesOnlyTheUrnColons) {
  EXPECT_EQ(campaign_conversion_key(42, 7),
            "(campaign:urn%3Ali%3AsponsoredCampaign%3A42,conversion:urn%3Alla%3AllaPartnerConversion%3A7)");
  EXPECT_EQ(percent_encode("a b:c/é"), "a%20b%3Ac%2F%C3%A9");
  EXPECT_EQ(percent_decode("a+b%3Ac%2f"), "a b:c/");
  EXPECT_EQ(percent_decode("100%"), "100%");
}

TEST(RestliKeys, AssociationUsesTheSingleFormForOneCampaignAndBatchForSeveral) {
  auto one = association_request(7, {42});
  EXPECT_FALSE(one.batch);
  EXPECT_EQ(one.target, "/rest/campaignConversions/" + campaign_conversion_key(42, 7));
  EXPECT_EQ(one.body, "{\"campaign\":\"urn:li:sponsoredCampaign:42\","
                      "\"conversion\":\"urn:lla:llaPartnerConversion:7\"}");
  auto many = association_request(7, {1, 2});
  EXPECT_TRUE(many.batch);
  EXPECT_EQ(many.target, "/rest/campaignConversions?ids=List(" + campaign_conversion_key(1, 7) +
                             "," + campaign_conversion_key(2, 7) + ")");
  EXPECT_EQ(many.body,
            "{\"entities\":{\"" + campaign_conversion_key(1, 7) +
                "\":{\"campaign\":\"urn:li:sponsoredCampaign:1\",\"conversion\":\"urn:lla:"
                "llaPartnerConversion:7\"},\"" +
                campaign_conversion_key(2, 7) +
                "\":{\"campaign\":\"urn:li:sponsoredCampaign:2\",\"conversion\":\"urn:lla:"
                "llaPartnerConversion:7\"}}}");
}

TEST(RuleValidation, TypesAndWindowsAreCheckedBeforeSending) {
  auto ok = validate_rule_spec("urn:li:sponsoredAccount:99", "CAPI Purchase", "purchase", "365", "1");
  ASSERT_TRUE(ok.ok()) << ok.error();
  EXPECT_EQ(ok->account, 99u);
  EXPECT_EQ(ok->type, "PURCHASE");
  EXPECT_EQ(ok->post_click, 365);
  EXPECT_EQ(ok->view_through, 1);
  auto defaults = validate_rule_spec("5", "x", "SIGN_UP", std::nullopt, std::nullopt);
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->post_click, 30);
  EXPECT_EQ(defaults->view_through, 7);

  EXPECT_FALSE(validate_rule_spec("5", "x", "PURCHASES", {}, {}).ok());
  EXPECT_FALSE(validate_rule_spec("5", "x", "SIGN_UP", "365", {}).ok());  // 365 only for some types
  EXPECT_FALSE(validate_rule_spec("5", "x", "LEAD", "14", {}).ok());
  EXPECT_FALSE(validate_rule_spec("5", "x", "LEAD", {}, "365").ok());
  EXPECT_FALSE(validate_rule_spec("5", "x", "LEAD", {}, "7d").ok());
  EXPECT_FALSE(validate_rule_spec("abc", "x", "LEAD", {}, {}).ok());
  EXPECT_FALSE(validate_rule_spec("5", std::nullopt, "LEAD", {}, {}).ok());
  EXPECT_FALSE(validate_rule_spec(std::nullopt, "x", "LEAD", {}, {}).ok());
  for (const char* t : {"SUBMIT_APPLICATION", "ADD_TO_CART", "QUALIFIED_LEAD", "LEAD"}) {
    EXPECT_TRUE(validate_rule_spec("5", "x", t, "365", {}).ok()) << t;
  }
}

TEST(RulesCreate, InvalidInputSendsNothingAndExits2) {
  FakeLinkedIn fake;
  TempDir dir;
  Config cfg = testing::make_config(dir, fake.base_url(), "  access_token: tok\n");
  CommandRun run("rules", {"create"});
  run.option("--account", "5").option("--name", "x").option("--type", "SIGN_UP").option("--post-click", "365");
  EXPECT_EQ(run.run(cfg, run_rules), 2);
  EXPECT_NE(run.err.str().find("--post-click"), std::string::npos) << run.err.str();
  EXPECT_EQ(fake.request_count(), 0u);
}

TEST(RulesCreate, PostsTheRuleAndPrintsItsIdAndTheConfigSnippet) {
  FakeLinkedIn fake;
  fake.set_responder([](const FakeRequest& r) {
    FakeResponse resp;
    if (r.method == "POST" && r.target == "/rest/conversions") {
      resp.status = 201;
      resp.body = "{\"id\":14488340,\"enabled\":true}";
    } else {
      resp.status = 404;
    }
    return resp;
  });
  TempDir dir;
  Config cfg = testing::make_config(dir, fake.base_url(), "  access_token: tok\n");
  CommandRun run("rules", {"create"});
  run.option("--account", "507").option("--name", "CAPI Lead").option("--type", "LEAD")
      .option("--post-click", "90").option("--view-through", "30");
  ASSERT_EQ(run.run(cfg, run_rules), 0) << run.err.str();
  ASSERT_EQ(fake.request_count(), 1u);
  const FakeRequest req = fake.requests()[0];
  EXPECT_EQ(req.headers.at("authorization"), "Bearer tok");
  EXPECT_EQ(req.headers.at("linkedin-version"), cfg.linkedin.version);
  EXPECT_EQ(req.headers.at("x-restli-protocol-version"), "2.0.0");
  EXPECT_EQ(req.body,
            "{\"name\":\"CAPI Lead\",\"account\":\"urn:li:sponsoredAccount:507\","
            "\"conversionMethod\":\"CONVERSIONS_API\",\"type\":\"LEAD\","
            "\"attributionType\":\"LAST_TOUCH_BY_CAMPAIGN\",\"postClickAttributionWindowSize\":90,"
            "\"viewThroughAttributionWindowSize\":30,\"enabled\":true}");
  EXPECT_NE(run.out.str().find("14488340"), std::string::npos);
  EXPECT_NE(run.out.str().find("conversions:\n  capi_lead: urn:lla:llaPartnerConversion:14488340"),
            std::string::npos)
      << run.out.str();
  EXPECT_EQ(run.out.str().find("tok"), std::string::npos);  // never the token
}

TEST(RulesAssociate, SeveralCampaignsGoInOneBatchUpdate) {
  FakeLinkedIn fake;
  fake.set_responder([](const FakeRequest&) {
    FakeResponse r;
    r.status = 200;
    r.body = "{\"results\":{}}";
    return r;
  });
  TempDir dir;
  Config cfg = testing::make_config(dir, fake.base_url(), "  access_token: tok\n");
  CommandRun run("rules", {"associate"});
  run.option("--rule", "urn:lla:llaPartnerConversion:7").option("--campaign", "1")
      .option("--campaign", "urn:li:sponsoredCampaign:2");
  ASSERT_EQ(run.run(cfg, run_rules), 0) << run.err.str();
  ASSERT_EQ(fake.request_count(), 1u);
  const FakeRequest req = fake.requests()[0];
  EXPECT_EQ(req.method, "PUT");
  EXPECT_EQ(req.headers.at("x-restli-method"), "BATCH_UPDATE");
  EXPECT_EQ(req.target, association_request(7, {1, 2}).target);
}

TEST(Paging, IndexPagingFollowsStartCountToTheTotal) {
  FakeLinkedIn fake;
  constexpr size_t kTotal = 250;
  fake.set_responder([&](const FakeRequest& r) {
    FakeResponse resp;
    const size_t start = std::stoul(query_param(r.target, "start"));
    const size_t count = std::stoul(query_param(r.target, "count"));
    const size_t n = start >= kTotal ? 0 : std::min(count, kTotal - start);
    resp.body = "{\"elements\":" + elements_json(start, n) + ",\"paging\":{\"start\":" +
                std::to_string(start) + ",\"count\":" + std::to_string(count) +
                ",\"total\":" + std::to_string(kTotal) + "}}";
    return resp;
  });
  TempDir dir;
  Config cfg = testing::make_config(dir, fake.base_url(), "  access_token: tok\n");
  FakeClock clock;
  auto tokens = open_token_store(cfg, clock);
  ASSERT_TRUE(tokens.ok()) << tokens.error();
  auto api = LinkedInApi::create(cfg, **tokens);
  ASSERT_TRUE(api.ok()) << api.error();
  auto all = (*api)->get_all("/rest/conversions?q=account&account=urn%3Ali%3AsponsoredAccount%3A5",
                             Paging::kIndex, 100);
  ASSERT_TRUE(all.ok()) << all.error();
  ASSERT_EQ(all->size(), kTotal);
  EXPECT_NE((*all)[249].find("\"id\":249"), std::string::npos);
  EXPECT_EQ(fake.request_count(), 3u);  // 100 + 100 + 50, stopping at the total
}

TEST(Paging, CursorPagingFollowsNextPageTokenToTheEnd) {
  FakeLinkedIn fake;
  fake.set_responder([&](const FakeRequest& r) {
    FakeResponse resp;
    const std::string tok = query_param(r.target, "pageToken");
    const int page = tok.empty() ? 0 : std::stoi(tok.substr(4));  // "page2"
    const bool last = page == 2;
    resp.body = "{\"elements\":" + elements_json(page * 10, last ? 3 : 10) +
                ",\"metadata\":{" +
                (last ? std::string() : "\"nextPageToken\":\"page" + std::to_string(page + 1) + "\"") +
                "}}";
    return resp;
  });
  TempDir dir;
  Config cfg = testing::make_config(dir, fake.base_url(), "  access_token: tok\n");
  CommandRun run("accounts");
  run.flag("--json");
  ASSERT_EQ(run.run(cfg, run_account_structure), 0) << run.err.str();
  EXPECT_EQ(fake.request_count(), 3u);
  const auto reqs = fake.requests();
  EXPECT_EQ(query_param(reqs[0].target, "pageSize"), "100");
  EXPECT_EQ(query_param(reqs[0].target, "pageToken"), "");
  EXPECT_EQ(query_param(reqs[2].target, "pageToken"), "page2");
  EXPECT_EQ(reqs[0].target.rfind("/rest/adAccounts?q=search", 0), 0u);
  // 23 elements in a JSON array.
  const std::string out = run.out.str();
  EXPECT_EQ(std::count(out.begin(), out.end(), '{'), 23);
  EXPECT_NE(out.find("\"id\":22"), std::string::npos);
  EXPECT_EQ(out.front(), '[');

  CommandRun table("accounts");
  fake.clear();
  ASSERT_EQ(table.run(cfg, run_account_structure), 0) << table.err.str();
  EXPECT_NE(table.out.str().find("ID  NAME"), std::string::npos) << table.out.str();
  EXPECT_NE(table.out.str().find("22  Account 22  ACTIVE"), std::string::npos) << table.out.str();
}

TEST(Paging, ErrorsSayWhatToDo) {
  FakeLinkedIn fake;
  fake.set_responder([](const FakeRequest&) {
    FakeResponse r;
    r.status = 403;
    r.body = "{\"status\":403,\"message\":\"Not enough permissions to access: adCampaigns\"}";
    return r;
  });
  TempDir dir;
  Config cfg = testing::make_config(dir, fake.base_url(), "  access_token: tok\n");
  CommandRun run("campaigns");
  run.option("--account", "5");
  EXPECT_EQ(run.run(cfg, run_account_structure), 1);
  EXPECT_NE(run.err.str().find("403"), std::string::npos);
  EXPECT_NE(run.err.str().find("whoami"), std::string::npos) << run.err.str();
  EXPECT_EQ(fake.requests()[0].target.rfind("/rest/adAccounts/5/adCampaigns?q=search", 0), 0u);

  CommandRun missing("campaigns");
  EXPECT_EQ(missing.run(cfg, run_account_structure), 2);
  EXPECT_NE(missing.err.str().find("--account"), std::string::npos);
}

TEST(Paging, ExpiredTokenIsRefreshedOnceAndTheRequestRetried) {
  FakeLinkedIn fake;
  std::atomic<int> api_calls{0};
  fake.set_responder([&](const FakeRequest& r) {
    FakeResponse resp;
    if (r.target == "/oauth/v2/accessToken") {
      resp.body = "{\"access_token\":\"fresh\",\"expires_in\":5184000}";
      return resp;
    }
    ++api_calls;
    if (r.headers.at("authorization") != "Bearer fresh") {
      resp.status = 401;
      resp.body = "{\"status\":401,\"code\":\"INVALID_ACCESS_TOKEN\",\"message\":\"Invalid access token\"}";
      return resp;
    }
    resp.body = "{\"elements\":[],\"paging\":{\"total\":0}}";
    return resp;
  });
  TempDir dir;
  Config cfg = testing::make_config(dir, fake.base_url(), "  access_token: stale\n",
                                    "    client_id: cid\n    client_secret: sec\n"
                                    "    refresh_token: rt\n");
  CommandRun run("rules", {"list"});
  run.option("--account", "5");
  ASSERT_EQ(run.run(cfg, run_rules), 0) << run.err.str();
  EXPECT_EQ(api_calls.load(), 2);
  EXPECT_NE(run.out.str().find("No conversion rules"), std::string::npos);
}

}  // namespace
}  // namespace capi_relay
