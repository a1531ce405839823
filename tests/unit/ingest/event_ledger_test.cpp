#include "capi_relay/ingest/event_ledger.hpp"

#include <gtest/gtest.h>

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
}

TEST(EventLedger, ForgetsOldestBeyondCapacity) {
  EventLedger ledger(2);
  ledger.record("a", 1, EventState::kPending, 1);
  ledger.record("b", 1, EventState::kPending, 2);
  ledger.record("c", 1, EventState::kPending, 3);
  EXPECT_FALSE(ledger.describe("a").has_value());
  EXPECT_TRUE(ledger.describe("b").has_value());
  EXPECT_TRUE(ledger.describe("c").has_value());
  EXPECT_EQ(ledger.size(), 2u);
  // An upload verdict for a forgotten event does not resurrect it.
  ledger.record("a", 1, EventState::kUploaded, 4);
  EXPECT_FALSE(ledger.describe("a").has_value());
}

}  // namespace
}  // namespace capi_relay
