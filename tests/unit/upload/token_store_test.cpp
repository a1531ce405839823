#include "capi_relay/upload/token_store.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "capi_relay/common/files.hpp"
#include "fakes/fake_linkedin.hpp"

namespace capi_relay {
namespace {

using testing::FakeLinkedIn;
using testing::FakeRequest;
using testing::FakeResponse;

class TokenStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("capi_relay_tokens_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    options_.file = dir_ / "token.json";
    options_.client_id = "cid";
    options_.client_secret = "s3cret&=";
    options_.connect_timeout = std::chrono::milliseconds(2000);
    options_.response_timeout = std::chrono::milliseconds(2000);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string file_text() const {
    std::ifstream in(options_.file);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::filesystem::path dir_;
  TokenStoreOptions options_;
  FakeClock clock_{1764320000000};
};

TEST_F(TokenStoreTest, SeedsFileFromConfigWithMode0600) {
  options_.seed_access_token = "seed-access";
  options_.seed_refresh_token = "seed-refresh";
  auto store = TokenStore::open(options_, clock_);
  ASSERT_TRUE(store.ok()) << store.error();
  EXPECT_EQ((*store)->current().access_token, "seed-access");
  EXPECT_EQ((*store)->current().refresh_token, "seed-refresh");
  ASSERT_TRUE(std::filesystem::exists(options_.file));
  struct stat st {};
  ASSERT_EQ(::stat(options_.file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto parsed = parse_token_file(file_text());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->access_token, "seed-access");
}

TEST_F(TokenStoreTest, NoSeedNoFile) {
  auto store = TokenStore::open(options_, clock_);
  ASSERT_TRUE(store.ok());
  EXPECT_TRUE((*store)->current().access_token.empty());
  EXPECT_FALSE(std::filesystem::exists(options_.file));
}

TEST_F(TokenStoreTest, ExistingFileWinsOverConfig) {
  TokenSet on_disk{"file-access", 1764400000, "file-refresh", 1790000000};
  ASSERT_TRUE(write_file_atomic(options_.file, serialize_token_file(on_disk)).ok());
  options_.seed_access_token = "config-access";
  options_.seed_refresh_token = "config-refresh";
  auto store = TokenStore::open(options_, clock_);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->current(), on_disk);
}

TEST_F(TokenStoreTest, MalformedFileIsAnErrorWithoutTheToken) {
  ASSERT_TRUE(write_file_atomic(options_.file, R"({"access_token": 12})").ok());
  auto store = TokenStore::open(options_, clock_);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().find("access_token"), std::string::npos);
}

TEST_F(TokenStoreTest, ReloadPicksUpANewFile) {
  options_.seed_access_token = "a1";
  auto store = TokenStore::open(options_, clock_);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(write_file_atomic(options_.file, serialize_token_file({"a2", 5, "r2", 6})).ok());
  ASSERT_TRUE((*store)->reload().ok());
  EXPECT_EQ((*store)->current().access_token, "a2");
  EXPECT_EQ((*store)->current().refresh_token_expires_at, 6);
}

TEST_F(TokenStoreTest, ShouldRefreshAheadOfExpiry) {
  const int64_t now_s = clock_.now_ms() / 1000;
  auto store = TokenStore::open(options_, clock_);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->store({"a", now_s + 3600, "", 0}).ok());
  EXPECT_FALSE((*store)->should_refresh());  // no refresh token
  ASSERT_TRUE((*store)->store({"a", now_s + 3600, "r", 0}).ok());
  EXPECT_FALSE((*store)->should_refresh());
  clock_.advance_ms((3600 - 599) * 1000ll);
  EXPECT_TRUE((*store)->should_refresh());  // within 10 minutes
  ASSERT_TRUE((*store)->store({"", 0, "r", 0}).ok());
  EXPECT_TRUE((*store)->should_refresh());  // no access token at all
  ASSERT_TRUE((*store)->store({"", 0, "r", now_s - 1}).ok());
  EXPECT_FALSE((*store)->should_refresh());  // the refresh token itself expired
}

TEST_F(TokenStoreTest, RefreshAgainstTheTokenEndpoint) {
  FakeLinkedIn fake;
  fake.set_responder([](const FakeRequest& req) {
    FakeResponse r;
    if (req.target != "/oauth/v2/accessToken") {
      r.status = 404;
      return r;
    }
    r.body =
        R"({"access_token":"new-access","expires_in":5184000,"refresh_token":"new-refresh",)"
        R"("refresh_token_expires_in":31536000})";
    return r;
  });
  options_.token_url = fake.base_url() + "/oauth/v2/accessToken";
  options_.seed_access_token = "old-access";
  options_.seed_refresh_token = "old refresh/+";
  auto store = TokenStore::open(options_, clock_);
  ASSERT_TRUE(store.ok());
  const RefreshResult r = (*store)->refresh();
  ASSERT_EQ(r.outcome, RefreshOutcome::kRefreshed) << r.message;

  ASSERT_EQ(fake.request_count(), 1u);
  const FakeRequest req = fake.requests().front();
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.headers.at("content-type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(req.body,
            "grant_type=refresh_token&refresh_token=old%20refresh%2F%2B&client_id=cid&"
            "client_secret=s3cret%26%3D");

  const int64_t now_s = clock_.now_ms() / 1000;
  const TokenSet expected{"new-access", now_s + 5184000, "new-refresh", now_s + 31536000};
  EXPECT_EQ((*store)->current(), expected);
  auto on_disk = parse_token_file(file_text());
  ASSERT_TRUE(on_disk.ok());
  EXPECT_EQ(*on_disk, expected);
  struct stat st {};
  ASSERT_EQ(::stat(options_.file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(TokenStoreTest, RefreshKeepsOldRefreshTokenWhenNoneReturned) {
  FakeLinkedIn fake;
  fake.set_responder([](const FakeRequest&) {
    FakeResponse r;
    r.body = R"({"access_token":"new-access","expires_in":60})";
    return r;
  });
  options_.token_url = fake.base_url() + "/oauth/v2/accessToken";
  auto store = TokenStore::open(options_, clock_);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->store({"old", 0, "keep-me", 42}).ok());
  ASSERT_EQ((*store)->refresh().outcome, RefreshOutcome::kRefreshed);
  EXPECT_EQ((*store)->current().refresh_token, "keep-me");
  EXPECT_EQ((*store)->current().refresh_token_expires_at, 42);
}

TEST_F(TokenStoreTest, InvalidGrantIsRejectedAndServerErrorTransient) {
  FakeLinkedIn fake;
  std::atomic<int> status{400};
  fake.set_responder([&status](const FakeRequest&) {
    FakeResponse r;
    r.status = status.load();
    r.body = R"({"error":"invalid_grant","error_description":"The provided authorization grant is invalid"})";
    return r;
  });
  options_.token_url = fake.base_url() + "/oauth/v2/accessToken";
  options_.seed_access_token = "a";
  options_.seed_refresh_token = "r";
  auto store = TokenStore::open(options_, clock_);
  ASSERT_TRUE(store.ok());
  RefreshResult r = (*store)->refresh();
  EXPECT_EQ(r.outcome, RefreshOutcome::kRejected);
  EXPECT_NE(r.message.find("invalid_grant"), std::string::npos);
  EXPECT_EQ(r.message.find("r\""), std::string::npos);
  status = 503;
  EXPECT_EQ((*store)->refresh().outcome, RefreshOutcome::kTransient);
  EXPECT_EQ((*store)->current().access_token, "a");  // unchanged
}

TEST_F(TokenStoreTest, NoRefreshToken) {
  options_.seed_access_token = "a";
  auto store = TokenStore::open(options_, clock_);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->refresh().outcome, RefreshOutcome::kNoRefreshToken);
}

}  // namespace
}  // namespace capi_relay
