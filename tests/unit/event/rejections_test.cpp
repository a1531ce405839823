// One test per rejection reason of contract §3, plus checks that the error text carries the
// reason label and never the rejected identifier.
#include <gtest/gtest.h>

#include <string>

#include "capi_relay/common/clock.hpp"
#include "capi_relay/event/parser.hpp"

namespace capi_relay {
namespace {

class RejectionTest : public ::testing::Test {
 protected:
  RejectionTest() : parser_(rules(), random_) { opts_.now_ms = clock_.now_ms(); }

  static EventRules rules() {
    EventRules r;
    r.conversions = {{"purchase", 123}};
    r.allowed_rules = {123};
    return r;
  }

  // Parses json and expects it rejected with `reason`; returns the error text.
  std::string expect_rejected(std::string_view json, RejectReason reason) {
    ParsedItem it = parser_.parse_one(json, opts_);
    EXPECT_FALSE(it.ok) << json;
    EXPECT_EQ(reject_reason_name(it.reason), reject_reason_name(reason))
        << json << " -> " << it.error;
    std::string prefix(reject_reason_name(reason));
    prefix += ": ";
    EXPECT_TRUE(it.error.starts_with(prefix)) << it.error;
    EXPECT_GT(it.error.size(), prefix.size()) << "detail missing";
    // Nothing of a rejected event is kept.
    EXPECT_TRUE(it.event.email_sha256.empty());
    EXPECT_TRUE(it.event.event_id.empty());
    return it.error;
  }

  void expect_accepted(std::string_view json) {
    ParsedItem it = parser_.parse_one(json, opts_);
    EXPECT_TRUE(it.ok) << json << " -> " << it.error;
  }

  FakeClock clock_;
  FixedRandom random_;
  EventParser parser_;
  ParseOptions opts_;
};

// Wraps user fields into an otherwise valid event.
std::string with_user(std::string_view user_fields) {
  return std::string(R"({"event":"purchase","user":{)") + std::string(user_fields) + "}}";
}
// Wraps top-level fields into an otherwise valid event.
std::string with_top(std::string_view fields) {
  return std::string(R"({"event":"purchase","user":{"liFatId":"f"},)") + std::string(fields) + "}";
}

TEST_F(RejectionTest, ReasonNamesMatchTheContract) {
  const char* expected[] = {"invalid_json",    "unknown_event", "unknown_rule", "no_identifier",
                            "incomplete_name", "too_old",       "in_future",    "bad_email",
                            "bad_hash",        "bad_amount",    "bad_currency", "bad_country",
                            "bad_event_id",    "bad_lead",      "bad_ip",       "no_consent",
                            "bad_consent",     "bad_timestamp", "bad_event"};
  ASSERT_EQ(std::size(expected), static_cast<size_t>(RejectReason::kCount));
  for (size_t i = 0; i < std::size(expected); ++i)
    EXPECT_EQ(reject_reason_name(static_cast<RejectReason>(i)), expected[i]);
}

TEST_F(RejectionTest, InvalidJson) {
  expect_rejected(R"({"event":"purchase",)", RejectReason::kInvalidJson);
  expect_rejected(R"({"event":"purchase"} extra)", RejectReason::kInvalidJson);
  expect_rejected(R"({"event":"purchase","timestamp":12x})", RejectReason::kInvalidJson);
}

TEST_F(RejectionTest, UnknownEvent) {
  std::string err = expect_rejected(R"({"event":"purchase-typo","user":{"liFatId":"f"}})",
                                    RejectReason::kUnknownEvent);
  EXPECT_EQ(err.find("purchase-typo"), std::string::npos);
}

TEST_F(RejectionTest, UnknownRule) {
  expect_rejected(R"({"conversion":"urn:lla:llaPartnerConversion:999","user":{"liFatId":"f"}})",
                  RejectReason::kUnknownRule);
  expect_rejected(R"({"conversion":999,"user":{"liFatId":"f"}})", RejectReason::kUnknownRule);
  expect_rejected(R"({"conversion":"urn:li:sponsoredAccount:123","user":{"liFatId":"f"}})",
                  RejectReason::kUnknownRule);
  expect_rejected(R"({"conversion":12.5,"user":{"liFatId":"f"}})", RejectReason::kUnknownRule);
}

TEST_F(RejectionTest, NoIdentifier) {
  expect_rejected(R"({"event":"purchase"})", RejectReason::kNoIdentifier);
  expect_rejected(with_user(R"("title":"CEO","lead":"urn:li:leadGenFormResponse:1")"),
                  RejectReason::kNoIdentifier);  // lead alone does not identify
  expect_rejected(with_user(R"("email":"   ","liFatId":"")"), RejectReason::kBadEmail);
  expect_rejected(with_user(R"("liFatId":"  ")"), RejectReason::kNoIdentifier);
}

TEST_F(RejectionTest, IncompleteName) {
  expect_rejected(with_user(R"("firstName":"Ann")"), RejectReason::kIncompleteName);
  expect_rejected(with_user(R"("liFatId":"f","lastName":"Lee")"), RejectReason::kIncompleteName);
}

TEST_F(RejectionTest, TooOld) {
  int64_t ninety_days = 90ll * 24 * 3600 * 1000;
  expect_accepted(with_top("\"timestamp\":" + std::to_string(clock_.now_ms() - ninety_days)));
  expect_rejected(with_top("\"timestamp\":" + std::to_string(clock_.now_ms() - ninety_days - 1)),
                  RejectReason::kTooOld);
  // Epoch seconds by mistake.
  std::string err = expect_rejected(with_top("\"timestamp\":1764320000"), RejectReason::kTooOld);
  EXPECT_NE(err.find("seconds"), std::string::npos);
}

TEST_F(RejectionTest, InFuture) {
  int64_t five_min = 5 * 60 * 1000;
  expect_accepted(with_top("\"timestamp\":" + std::to_string(clock_.now_ms() + five_min)));
  expect_rejected(with_top("\"timestamp\":" + std::to_string(clock_.now_ms() + five_min + 1)),
                  RejectReason::kInFuture);
  expect_rejected(with_top(R"("timestamp":"2026-01-01T00:00:00Z")"), RejectReason::kInFuture);
}

TEST_F(RejectionTest, BadEmail) {
  std::string err =
      expect_rejected(with_user(R"("email":"john.doe@example")"), RejectReason::kBadEmail);
  EXPECT_EQ(err.find("john.doe"), std::string::npos);
  expect_rejected(with_user(R"("email":42)"), RejectReason::kBadEmail);
  // The LinkedIn shape: a SHA256_EMAIL value that is not 64 hex is treated as an email.
  expect_rejected(
      R"({"event":"purchase","user":{"userIds":[{"idType":"SHA256_EMAIL","idValue":"abc"}]}})",
      RejectReason::kBadEmail);
}

TEST_F(RejectionTest, BadHash) {
  expect_rejected(with_user(R"("emailSha256":"abc")"), RejectReason::kBadHash);
  std::string g64(64, 'g');
  expect_rejected(with_user("\"emailSha256\":\"" + g64 + "\""), RejectReason::kBadHash);
  expect_rejected(
      R"({"event":"purchase","user":{"userIds":[{"idType":"SHA256_IP_ADDRESS","idValue":"1.2.3.4"}]}})",
      RejectReason::kBadHash);
}

TEST_F(RejectionTest, BadAmount) {
  expect_rejected(with_top(R"("value":{"amount":"abc","currency":"USD"})"),
                  RejectReason::kBadAmount);
  expect_rejected(with_top(R"("value":{"amount":"1,50","currency":"USD"})"),
                  RejectReason::kBadAmount);
  expect_rejected(with_top(R"("value":{"amount":"1e5","currency":"USD"})"),
                  RejectReason::kBadAmount);
  expect_rejected(with_top(R"("value":{"amount":".5","currency":"USD"})"),
                  RejectReason::kBadAmount);
  expect_rejected(with_top(R"("value":{"amount":"-5.00","currency":"USD"})"),
                  RejectReason::kBadAmount);
  expect_rejected(with_top(R"("value":{"amount":-5,"currency":"USD"})"), RejectReason::kBadAmount);
  expect_rejected(with_top(R"("value":{"amount":true,"currency":"USD"})"),
                  RejectReason::kBadAmount);
  expect_rejected(with_top(R"("value":{"amount":1e400,"currency":"USD"})"),
                  RejectReason::kBadAmount);
  expect_rejected(with_top(R"("value":"50 USD")"), RejectReason::kBadAmount);
}

TEST_F(RejectionTest, BadCurrency) {
  expect_rejected(with_top(R"("value":{"amount":"5","currency":"US"})"),
                  RejectReason::kBadCurrency);
  expect_rejected(with_top(R"("value":{"amount":"5","currency":"U$D"})"),
                  RejectReason::kBadCurrency);
  // An amount needs a currency.
  expect_rejected(with_top(R"("value":{"amount":"5"})"), RejectReason::kBadCurrency);
}

TEST_F(RejectionTest, BadCountry) {
  expect_rejected(with_user(R"("liFatId":"f","firstName":"A","lastName":"B","countryCode":"USA")"),
                  RejectReason::kBadCountry);
  expect_rejected(with_user(R"("liFatId":"f","countryCode":"1A")"), RejectReason::kBadCountry);
}

TEST_F(RejectionTest, BadEventId) {
  expect_accepted(with_top("\"eventId\":\"" + std::string(64, 'x') + "\""));
  expect_rejected(with_top("\"eventId\":\"" + std::string(65, 'x') + "\""),
                  RejectReason::kBadEventId);
  expect_rejected(with_top(R"("eventId":"")"), RejectReason::kBadEventId);
  expect_rejected(with_top(R"("eventId":1001)"), RejectReason::kBadEventId);
  // 64 characters, more than 64 bytes: characters count.
  std::string accents;
  for (int i = 0; i < 64; ++i) accents += "\xC3\xA9";
  expect_accepted(with_top("\"eventId\":\"" + accents + "\""));
}

TEST_F(RejectionTest, BadLead) {
  expect_rejected(with_user(R"("liFatId":"f","lead":"12345")"), RejectReason::kBadLead);
  expect_rejected(with_user(R"("liFatId":"f","lead":"urn:li:leadGenFormResponse:")"),
                  RejectReason::kBadLead);
}

TEST_F(RejectionTest, BadIp) {
  std::string err = expect_rejected(with_user(R"("ip":"300.1.2.3")"), RejectReason::kBadIp);
  EXPECT_EQ(err.find("300.1.2.3"), std::string::npos);
  expect_rejected(with_user(R"("ip":"fe80::1%eth0")"), RejectReason::kBadIp);
}

TEST_F(RejectionTest, NoConsent) {
  expect_rejected(with_top(R"("consent":false)"), RejectReason::kNoConsent);
  // Consent is checked before anything else: even an otherwise broken event is no_consent.
  expect_rejected(R"({"event":"nope","consent":false,"user":{"email":"x"}})",
                  RejectReason::kNoConsent);
}

TEST_F(RejectionTest, BadConsent) {
  expect_rejected(with_top(R"("consent":"yes")"), RejectReason::kBadConsent);
  expect_rejected(with_top(R"("consent":1)"), RejectReason::kBadConsent);
  expect_accepted(with_top(R"("consent":true)"));
}

TEST_F(RejectionTest, BadTimestamp) {
  expect_rejected(with_top(R"("timestamp":"yesterday")"), RejectReason::kBadTimestamp);
  expect_rejected(with_top(R"("timestamp":"2025-11-28T08:52:20")"), RejectReason::kBadTimestamp);
  expect_rejected(with_top(R"("timestamp":"2025-02-30T08:52:20Z")"), RejectReason::kBadTimestamp);
  expect_rejected(with_top(R"("timestamp":-5)"), RejectReason::kBadTimestamp);
  expect_rejected(with_top(R"("timestamp":true)"), RejectReason::kBadTimestamp);
  opts_.require_timestamp = true;
  expect_rejected(R"({"event":"purchase","user":{"liFatId":"f"}})", RejectReason::kBadTimestamp);
}

TEST_F(RejectionTest, BadEvent) {
  expect_rejected(R"({"user":{"liFatId":"f"}})", RejectReason::kBadEvent);
  expect_rejected(R"([1,2])", RejectReason::kBadEvent);
  expect_rejected(R"("purchase")", RejectReason::kBadEvent);
  expect_rejected(R"({"event":7,"user":{"liFatId":"f"}})", RejectReason::kBadEvent);
  expect_rejected(R"({"event":"purchase","user":"someone"})", RejectReason::kBadEvent);
  expect_rejected(R"({"event":"purchase","user":{"userIds":{}}})", RejectReason::kBadEvent);
  expect_rejected(with_user(R"("liFatId":"f","firstName":"A","lastName":{"x":1})"),
                  RejectReason::kBadEvent);
}

}  // namespace
}  // namespace capi_relay
