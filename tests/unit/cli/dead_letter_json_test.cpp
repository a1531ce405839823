// The dead-letter JSON shared by `dlq list --json` and the admin endpoints.
#include <gtest/gtest.h>

#include "capi_relay/cli/dead_letter_json.hpp"
#include "capi_relay/event/record.hpp"

namespace capi_relay {
namespace {

DeadLetter letter(uint64_t id, const std::string& event_id, int status) {
  NormalizedEvent e;
  e.rule_id = 123;
  e.happened_at_ms = 1764320000000;
  e.event_id = event_id;
  e.email_sha256 = std::string(64, 'a');
  DeadLetter d;
  d.id = id;
  d.reason = status ? "rejected" : "expired";
  d.http_status = status;
  d.message = status ? "ERROR :: /user \"bad\"" : "";
  d.dead_lettered_at_ms = 1764320000000;
  encode_record(e, d.payload);
  return d;
}

TEST(DeadLetterJson, ShapeAndRoundTrip) {
  std::vector<DeadLetter> ds = {letter(1, "order-1", 422), letter(2, "order-2", 0)};
  const std::string body = dead_letters_response_json(ds);
  EXPECT_EQ(body,
            "{\"dead_letters\":[{\"id\":1,\"eventId\":\"order-1\",\"rule\":\"urn:lla:"
            "llaPartnerConversion:123\",\"reason\":\"rejected\",\"status\":422,\"message\":\"ERROR "
            ":: /user \\\"bad\\\"\",\"time\":\"2025-11-28T08:53:20Z\"},{\"id\":2,\"eventId\":"
            "\"order-2\",\"rule\":\"urn:lla:llaPartnerConversion:123\",\"reason\":\"expired\","
            "\"status\":null,\"message\":\"\",\"time\":\"2025-11-28T08:53:20Z\"}]}");
  auto back = parse_dead_letters_response(body);
  ASSERT_TRUE(back.ok()) << back.error();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].event_id, "order-1");
  EXPECT_EQ((*back)[0].status, 422);
  EXPECT_EQ((*back)[1].status, 0);
  EXPECT_EQ((*back)[1].reason, "expired");
}

TEST(DeadLetterJson, ReplayRequestParsing) {
  auto all = parse_replay_request("");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->ids.empty());
  EXPECT_FALSE(all->reason);
  DeadLetterFilter f;
  f.ids = {1, 2};
  f.reason = "rejected";
  EXPECT_EQ(replay_request_json(f), "{\"ids\":[1,2],\"reason\":\"rejected\"}");
  auto parsed = parse_replay_request(replay_request_json(f));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->ids, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(*parsed->reason, "rejected");
  EXPECT_FALSE(parse_replay_request("{\"ids\":[\"x\"]}").ok());
  EXPECT_FALSE(parse_replay_request("{\"reason\":\"other\"}").ok());
  EXPECT_FALSE(parse_replay_request("[1]").ok());
  EXPECT_EQ(replay_response_json(3), "{\"replayed\":3}");
}

}  // namespace
}  // namespace capi_relay
