#include "capi_relay/upload/response_policy.hpp"

#include <gtest/gtest.h>

namespace capi_relay {
namespace {

TEST(ResponsePolicy, BatchSuccessMarksEveryElementDone) {
  auto v = interpret_response(200, R"({"elements":[{"status":201},{"status":201}]})", 2);
  ASSERT_EQ(v.action, BatchAction::kPerElement);
  ASSERT_EQ(v.elements.size(), 2u);
  for (const auto& e : v.elements) {
    EXPECT_EQ(e.action, ElementAction::kDone);
    EXPECT_EQ(e.status, 201);
  }
}

TEST(ResponsePolicy, PerElementStatusesMapToDoneDeadLetterRetry) {
  auto v = interpret_response(
      200,
      R"({"elements":[{"status":201},{"status":400,"message":"bad amount"},{"status":429},)"
      R"({"status":503},{"status":422,"error":{"message":"nested msg","status":422}}]})",
      5);
  ASSERT_EQ(v.action, BatchAction::kPerElement);
  ASSERT_EQ(v.elements.size(), 5u);
  EXPECT_EQ(v.elements[0].action, ElementAction::kDone);
  EXPECT_EQ(v.elements[1].action, ElementAction::kDeadLetter);
  EXPECT_EQ(v.elements[1].status, 400);
  EXPECT_EQ(v.elements[1].message, "bad amount");
  EXPECT_EQ(v.elements[2].action, ElementAction::kRetry);
  EXPECT_EQ(v.elements[3].action, ElementAction::kRetry);
  EXPECT_EQ(v.elements[4].action, ElementAction::kDeadLetter);
  EXPECT_EQ(v.elements[4].message, "nested msg");
  EXPECT_FALSE(v.resend_now);
}

TEST(ResponsePolicy, SuccessWithoutStatusesMeansAllDone) {
  for (std::string_view body : {"", "{}", "not json", R"({"elements":[]})"}) {
    auto v = interpret_response(201, body, 3);
    ASSERT_EQ(v.action, BatchAction::kPerElement) << body;
    ASSERT_EQ(v.elements.size(), 3u);
    for (const auto& e : v.elements) EXPECT_EQ(e.action, ElementAction::kDone) << body;
  }
}

// The message shape RudderStack found by trial (linkedin-capi.md §1): one "Index:" line may be
// followed by more "ERROR ::" lines for the same element.
TEST(ResponsePolicy, Real422NamingIndicesDeadLettersThoseAndResendsOthers) {
  const std::string body =
      R"({"status":422,"message":"Index: 0, ERROR :: /conversionValue/amount :: field is required but not found and has no default value\nERROR :: /user/userInfo/firstName :: field is required but not found and has no default value\nIndex: 2, ERROR :: /user/userInfo/lastName :: field is required but not found and has no default value\n"})";
  auto v = interpret_response(422, body, 4);
  ASSERT_EQ(v.action, BatchAction::kPerElement);
  EXPECT_TRUE(v.resend_now);
  ASSERT_EQ(v.elements.size(), 4u);
  EXPECT_EQ(v.elements[0].action, ElementAction::kDeadLetter);
  EXPECT_EQ(v.elements[0].status, 422);
  EXPECT_NE(v.elements[0].message.find("/conversionValue/amount"), std::string::npos);
  EXPECT_NE(v.elements[0].message.find("/user/userInfo/firstName"), std::string::npos);
  EXPECT_EQ(v.elements[0].message.find("lastName"), std::string::npos);
  EXPECT_EQ(v.elements[1].action, ElementAction::kRetry);
  EXPECT_EQ(v.elements[2].action, ElementAction::kDeadLetter);
  EXPECT_NE(v.elements[2].message.find("/user/userInfo/lastName"), std::string::npos);
  EXPECT_EQ(v.elements[3].action, ElementAction::kRetry);
}

TEST(ResponsePolicy, Real400IndicesListDeadLettersNamedElements) {
  const std::string body =
      R"js({"status":400,"message":"Incorrect conversions information provided. Conversion's method should be CONVERSIONS_API, indices [0] (0-indexed)"})js";
  auto v = interpret_response(400, body, 2);
  ASSERT_EQ(v.action, BatchAction::kPerElement);
  EXPECT_EQ(v.elements[0].action, ElementAction::kDeadLetter);
  EXPECT_EQ(v.elements[0].message,
            "Incorrect conversions information provided. Conversion's method should be "
            "CONVERSIONS_API");
  EXPECT_EQ(v.elements[1].action, ElementAction::kRetry);
}

TEST(ResponsePolicy, IndicesListWithSeveralEntries) {
  auto idx = parse_error_indices("Something wrong, indices [0, 3,5] (0-indexed)");
  ASSERT_EQ(idx.size(), 3u);
  EXPECT_EQ(idx[0].first, 0u);
  EXPECT_EQ(idx[1].first, 3u);
  EXPECT_EQ(idx[2].first, 5u);
  EXPECT_EQ(idx[1].second, "Something wrong");
  EXPECT_TRUE(parse_error_indices("Invalid value for field").empty());
}

TEST(ResponsePolicy, NoIndexIsSystemicPauseWithoutDeadLetters) {
  for (int status : {400, 404, 422}) {
    auto v = interpret_response(status, R"({"status":400,"message":"Invalid version format"})", 3);
    ASSERT_EQ(v.action, BatchAction::kPause) << status;
    EXPECT_EQ(v.pause_reason,
              "systemic_error: " + std::to_string(status) + " Invalid version format");
    EXPECT_TRUE(v.elements.empty());
  }
}

TEST(ResponsePolicy, IndexOutsideTheBatchIsSystemic) {
  auto v = interpret_response(422, R"({"message":"Index: 7, ERROR :: /x :: bad"})", 2);
  EXPECT_EQ(v.action, BatchAction::kPause);
}

TEST(ResponsePolicy, TokenAndPermissionStatuses) {
  auto revoked = interpret_response(
      401,
      R"({"status":401,"serviceErrorCode":65601,"code":"REVOKED_ACCESS_TOKEN","message":"The token used in the request has been revoked by the user"})",
      1);
  EXPECT_EQ(revoked.action, BatchAction::kPause);
  EXPECT_EQ(revoked.pause_reason, "token_revoked");

  for (std::string_view body :
       {R"({"status":401,"serviceErrorCode":65600,"code":"INVALID_ACCESS_TOKEN","message":"Invalid access token"})",
        R"({"message":"Empty oauth2_access_token","serviceErrorCode":401,"status":401})", ""}) {
    EXPECT_EQ(interpret_response(401, body, 1).action, BatchAction::kRefreshToken) << body;
  }
  auto forbidden = interpret_response(403, R"({"status":403})", 1);
  EXPECT_EQ(forbidden.action, BatchAction::kPause);
  EXPECT_EQ(forbidden.pause_reason, "forbidden");
  auto retired = interpret_response(426, "Version Header is Deprecated", 1);
  EXPECT_EQ(retired.action, BatchAction::kPause);
  EXPECT_EQ(retired.pause_reason, "version_retired");
}

TEST(ResponsePolicy, TooLargeSplitsABatchAndDeadLettersALoneElement) {
  const std::string body = R"({"status":413,"message":"Request entity too large"})";
  EXPECT_EQ(interpret_response(413, body, 5000).action, BatchAction::kSplit);
  EXPECT_EQ(interpret_response(413, body, 2).action, BatchAction::kSplit);
  auto one = interpret_response(413, body, 1);
  ASSERT_EQ(one.action, BatchAction::kPerElement);
  ASSERT_EQ(one.elements.size(), 1u);
  EXPECT_EQ(one.elements[0].action, ElementAction::kDeadLetter);
  EXPECT_EQ(one.elements[0].status, 413);
}

TEST(ResponsePolicy, TransientStatusesRetry) {
  EXPECT_EQ(interpret_response(429, "", 1).action, BatchAction::kRetry);
  EXPECT_EQ(interpret_response(429, "", 1).retry_cause, "429");
  for (int s : {500, 502, 503, 504}) {
    auto v = interpret_response(s, "<html>", 1);
    EXPECT_EQ(v.action, BatchAction::kRetry) << s;
    EXPECT_EQ(v.retry_cause, "5xx");
  }
}

TEST(RetryAfter, Seconds) {
  EXPECT_EQ(parse_retry_after("120", 0), 120000);
  EXPECT_EQ(parse_retry_after(" 0 ", 0), 0);
  EXPECT_FALSE(parse_retry_after("", 0).has_value());
  EXPECT_FALSE(parse_retry_after("12abc", 0).has_value());
  EXPECT_FALSE(parse_retry_after("soon", 0).has_value());
}

TEST(RetryAfter, HttpDates) {
  // 1994-11-06T08:49:37Z = 784111777 s.
  const int64_t now = 784111777000 - 30000;
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), 30000);
  EXPECT_EQ(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now), 30000);
  EXPECT_EQ(parse_retry_after("Sun Nov  6 08:49:37 1994", now), 30000);
  // A date in the past: no wait.
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now + 60000), 0);
}

}  // namespace
}  // namespace capi_relay
