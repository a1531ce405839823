#include "capi_relay/ingest/event_ledger.hpp"

#include <gtest/gtest.h>

#include <string>

namespace capi_relay {
namespace {

TEST(EventLedger, TracksStatesPerRule) {
  EventLedger ledger;
  ledger.record("o-1", 123, EventState::kPending, 1764320000000);
  ledger.record("o-1", 123, EventState::kDuplicate, 1764320001000);
  ledger.record("o-1", 456, EventState::kPending, 1764320001000);
  ledger.record("o-1", 123, EventState::kUploaded, 1764320002000);
  auto d = ledger.describe("o-1");
  ASSERT_TRUE(d.has_value());
  EXPECT_NE(d->find("\"urn:lla:llaPartnerConversion:123\":{\"state\":\"uploaded\","
                    "\"received_at\":\"2025-11-28T08:53:20.000Z\",\"updated_at\":"
                    "\"2025-11-28T08:53:22.000Z\",\"duplicates\":1}"),
            std::string::npos)
      << *d;
  EXPECT_NE(d->find("\"urn:lla:llaPartnerConversion:456\":{\"state\":\"pending\""), std::string::npos);
  EXPECT_FALSE(ledger.describe("o-2").has_value());
  EXPECT_FALSE(ledger.describe("o-").has_value());
  EXPECT_FALSE(ledger.describe("o-10").has_value());
}

TEST(EventLedger, DuplicateKeepsTheStateAndOnlyDuplicatesShowAsDuplicate) {
  EventLedger ledger;
  ledger.record("a", 1, EventState::kPending, 1000);
  ledger.record("a", 1, EventState::kUploaded, 2000);
  ledger.record("a", 1, EventState::kDuplicate, 3000);
  ledger.record("b", 1, EventState::kDuplicate, 4000);
  auto a = ledger.describe("a");
  ASSERT_TRUE(a.has_value());
  EXPECT_NE(a->find("\"state\":\"uploaded\""), std::string::npos) << *a;
  EXPECT_NE(a->find("\"duplicates\":1"), std::string::npos) << *a;
  auto b = ledger.describe("b");
  ASSERT_TRUE(b.has_value());
  EXPECT_NE(b->find("\"state\":\"duplicate\",\"received_at\":\"1970-01-01T00:00:04.000Z\""),
            std::string::npos)
      << *b;
}

TEST(EventLedger, ForgetsOldestChangesBeyondCapacity) {
  EventLedger ledger(2);
  ledger.record("a", 1, EventState::kPending, 1000);
  ledger.record("b", 1, EventState::kPending, 2000);
  ledger.record("c", 1, EventState::kPending, 3000);
  EXPECT_FALSE(ledger.describe("a").has_value());
  EXPECT_TRUE(ledger.describe("b").has_value());
  EXPECT_TRUE(ledger.describe("c").has_value());
  EXPECT_EQ(ledger.size(), 2u);
  // A verdict for an event whose acceptance scrolled out is still shown, without received_at.
  ledger.record("a", 1, EventState::kDeadLettered, 4000);
  auto a = ledger.describe("a");
  ASSERT_TRUE(a.has_value());
  EXPECT_NE(a->find("{\"state\":\"dead_lettered\",\"updated_at\":\"1970-01-01T00:00:04.000Z\""),
            std::string::npos)
      << *a;
  EXPECT_FALSE(ledger.describe("b").has_value());
  EXPECT_EQ(ledger.size(), 2u);
}

TEST(EventLedger, LongIdsAreToldApartByTheirWholeText) {
  // An eventId of 64 characters may take up to 256 bytes; ledger slots keep a prefix and a hash.
  const std::string prefix(100, 'x');
  EventLedger ledger;
  ledger.record(prefix + "-1", 1, EventState::kPending, 1000);
  ledger.record(prefix + "-2", 1, EventState::kUploaded, 2000);
  auto one = ledger.describe(prefix + "-1");
  ASSERT_TRUE(one.has_value());
  EXPECT_NE(one->find("\"state\":\"pending\""), std::string::npos) << *one;
  EXPECT_NE(one->find(prefix + "-1"), std::string::npos);
  EXPECT_FALSE(ledger.describe(prefix + "-3").has_value());
  EXPECT_FALSE(ledger.describe(prefix).has_value());
}

}  // namespace
}  // namespace capi_relay
