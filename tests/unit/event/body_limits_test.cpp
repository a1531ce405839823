// EventParser under hostile bodies: ParseOptions::max_items bounds the items (and so the memory)
// of one body in every shape, deep nesting and odd bytes are answered, never crash.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "capi_relay/common/clock.hpp"
#include "capi_relay/event/parser.hpp"

namespace capi_relay {
namespace {

EventRules rules() {
  EventRules r;
  r.conversions = {{"purchase", 123}};
  r.allowed_rules = {123};
  return r;
}

class BodyLimitsTest : public ::testing::Test {
 protected:
  BodyLimitsTest() : parser_(rules(), random_) {
    opts_.now_ms = FakeClock().now_ms();
    opts_.max_items = 3;
  }
  ParsedBody parse(const std::string& body) {
    ParsedBody out;
    parser_.parse_body(body, false, opts_, out);
    return out;
  }
  FixedRandom random_;
  EventParser parser_;
  ParseOptions opts_;
};

const std::string kEvent =
    R"({"event":"purchase","timestamp":1764319940000,"user":{"email":"a@b.example"}})";

TEST_F(BodyLimitsTest, AtTheLimitIsFine) {
  EXPECT_EQ(parse("[" + kEvent + "," + kEvent + ",1]").status, BodyStatus::kOk);
  auto nd = parse(kEvent + "\n\n" + kEvent + "\n{bad\n");  // blank lines are not items
  EXPECT_EQ(nd.status, BodyStatus::kOk);
  EXPECT_EQ(nd.items.size(), 3u);
}

TEST_F(BodyLimitsTest, OverTheLimitInEveryShape) {
  for (const std::string& body : std::vector<std::string>{
           "[1,1,1,1]", "[" + kEvent + "," + kEvent + "," + kEvent + "," + kEvent + "]",
        "1\n1\n1\n1\n", kEvent + "\n" + kEvent + "\n" + kEvent + "\n" + kEvent,
        "{bad\n{bad\n{bad\n{bad\n",
        // pretty-printed array over several lines (the whole-body fallback path)
        "[\n1,\n1,\n1,\n1\n]"}) {
    auto b = parse(body);
    EXPECT_EQ(b.status, BodyStatus::kTooManyItems) << body;
    EXPECT_TRUE(b.items.empty()) << body;
    EXPECT_FALSE(b.error.empty());
  }
}

TEST_F(BodyLimitsTest, ZeroMeansNoLimit) {
  opts_.max_items = 0;
  std::string many;
  for (int i = 0; i < 5000; ++i) many += "1\n";
  auto b = parse(many);
  EXPECT_EQ(b.status, BodyStatus::kOk);
  EXPECT_EQ(b.items.size(), 5000u);
}

TEST_F(BodyLimitsTest, LimitResetsBetweenBodies) {
  EXPECT_EQ(parse("[1,1,1,1]").status, BodyStatus::kTooManyItems);
  EXPECT_EQ(parse("[" + kEvent + "]").status, BodyStatus::kOk);
}

TEST_F(BodyLimitsTest, DeepNestingAndOddBytesAreAnswered) {
  opts_.max_items = 10000;
  const std::string deep_array(100'000, '[');
  EXPECT_EQ(parse(deep_array).status, BodyStatus::kUnparseable);
  // Balanced: one array item that is not an object (on-demand skips it without recursion).
  auto balanced = parse(deep_array + std::string(100'000, ']'));
  ASSERT_EQ(balanced.status, BodyStatus::kOk);
  ASSERT_EQ(balanced.items.size(), 1u);
  EXPECT_EQ(balanced.items[0].reason, RejectReason::kBadEvent);
  std::string deep_object;
  for (int i = 0; i < 20'000; ++i) deep_object += "{\"a\":";
  EXPECT_EQ(parse(deep_object).status, BodyStatus::kUnparseable);
  // Nested inside an event field: rejected or unparseable, never accepted.
  auto nested = parse(R"({"event":"purchase","user":{"email":)" + std::string(5000, '[') + "}}");
  EXPECT_NE(nested.status, BodyStatus::kOk);
  // NUL bytes, invalid UTF-8 and huge numbers: answered, never accepted as an event.
  auto never_accepted = [&](const std::string& body) {
    auto b = parse(body);
    return b.status != BodyStatus::kOk || (b.items.size() == 1 && !b.items[0].ok);
  };
  EXPECT_TRUE(never_accepted(
      std::string("{\"event\":\"purchase\",\"user\":{\"email\":\"a\0@b.example\"}}", 49)));
  EXPECT_TRUE(never_accepted(std::string(1, '\0')));
  EXPECT_TRUE(never_accepted(
      "{\"event\":\"purchase\",\"eventId\":\"\xff\xfe\",\"user\":{\"email\":\"a@b.example\"}}"));
  EXPECT_TRUE(never_accepted(
      R"({"event":"purchase","timestamp":1e400,"user":{"email":"a@b.example"}})"));
  EXPECT_TRUE(never_accepted(
      R"({"event":"purchase","value":{"amount":123456789012345678901234567890e300,"currency":"USD"},"user":{"email":"a@b.example"}})"));
}

}  // namespace
}  // namespace capi_relay
