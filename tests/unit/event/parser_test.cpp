// EventParser: body framing, both input shapes, normalization, derived IDs.
#include "capi_relay/event/parser.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "capi_relay/common/clock.hpp"
#include "capi_relay/common/hash.hpp"
#include "capi_relay/event/element.hpp"

namespace capi_relay {
namespace {

constexpr const char* kEmailDigest =
    "f3273dd18d95bc19d51d3e6356e4a679e6f13824497272a270e7bb540b0abb9d";

EventRules test_rules() {
  EventRules r;
  r.conversions = {{"purchase", 123}, {"lead", 456}};
  r.allowed_rules = {123, 456};
  return r;
}

class ParserTest : public ::testing::Test {
 protected:
  ParserTest() : parser_(test_rules(), random_) { opts_.now_ms = clock_.now_ms(); }

  ParsedBody parse(std::string_view body) {
    ParsedBody out;
    parser_.parse_body(body, false, opts_, out);
    return out;
  }
  ParsedItem one(std::string_view json) { return parser_.parse_one(json, opts_); }

  FakeClock clock_;  // 2025-11-28T08:53:20Z
  FixedRandom random_;
  EventParser parser_;
  ParseOptions opts_;
};

// Rejected with exactly this reason (an accepted item's reason field is meaningless).
::testing::AssertionResult rejected_with(const ParsedItem& it, RejectReason r) {
  if (it.ok) return ::testing::AssertionFailure() << "item " << it.index << " was accepted";
  if (it.reason != r)
    return ::testing::AssertionFailure() << "item " << it.index << " rejected as " << it.error;
  return ::testing::AssertionSuccess();
}

// A relay-shape event with an email, at now - 1 minute.
std::string purchase(std::string_view extra = {}) {
  std::string s =
      R"({"event":"purchase","timestamp":1764319940000,"user":{"email":"email@email.com"})";
  if (!extra.empty()) {
    s += ',';
    s += extra;
  }
  s += '}';
  return s;
}

TEST_F(ParserTest, SingleObjectIsNormalized) {
  ParsedBody b = parse(R"({
    "event": "purchase", "eventId": "order-1001", "timestamp": 1764320000000,
    "value": {"amount": "50.00", "currency": "usd"},
    "user": {"email": "  John.Doe@Example.com ", "liFatId": "a1b2c3d4", "acxiomId": "ax-1",
             "moatId": "m-1", "externalId": "crm-7", "ip": "2001:DB8:0::1",
             "lead": "urn:li:leadGenFormResponse:42",
             "firstName": " John ", "lastName": "Doe", "title": "Buyer", "companyName": "Acme",
             "countryCode": "us"},
    "consent": true, "somethingElse": {"ignored": [1, 2, 3]}
  })");
  ASSERT_EQ(b.status, BodyStatus::kOk);
  ASSERT_EQ(b.items.size(), 1u);
  const ParsedItem& it = b.items[0];
  ASSERT_TRUE(it.ok) << it.error;
  EXPECT_EQ(it.index, 0u);
  const NormalizedEvent& e = it.event;
  EXPECT_EQ(e.rule_id, 123u);
  EXPECT_EQ(e.happened_at_ms, 1764320000000);
  EXPECT_EQ(e.received_at_ms, clock_.now_ms());
  EXPECT_EQ(e.event_id, "order-1001");
  EXPECT_FALSE(e.event_id_derived);
  EXPECT_EQ(e.amount, "50.00");
  EXPECT_EQ(e.currency, "USD");
  EXPECT_EQ(e.email_sha256, sha256_hex("john.doe@example.com"));
  EXPECT_EQ(e.ip_sha256, sha256_hex("2001:db8::1"));
  EXPECT_EQ(e.li_fat_id, "a1b2c3d4");
  EXPECT_EQ(e.acxiom_id, "ax-1");
  EXPECT_EQ(e.moat_id, "m-1");
  EXPECT_EQ(e.external_id, "crm-7");
  EXPECT_EQ(e.lead, "urn:li:leadGenFormResponse:42");
  EXPECT_EQ(e.first_name, "John");
  EXPECT_EQ(e.last_name, "Doe");
  EXPECT_EQ(e.title, "Buyer");
  EXPECT_EQ(e.company_name, "Acme");
  EXPECT_EQ(e.country_code, "US");
}

TEST_F(ParserTest, EmailHashMatchesLinkedInVectorThroughTheParser) {
  ParsedItem a = one(purchase());
  ParsedItem b = one(
      R"({"event":"purchase","timestamp":1764319940000,"user":{"email":"  Email@Email.COM "}})");
  ASSERT_TRUE(a.ok) << a.error;
  ASSERT_TRUE(b.ok) << b.error;
  EXPECT_EQ(a.event.email_sha256, kEmailDigest);
  EXPECT_EQ(b.event.email_sha256, kEmailDigest);
}

TEST_F(ParserTest, UppercaseEmailSha256IsPassedThroughLowercased) {
  std::string upper = kEmailDigest;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  ParsedItem it = one(R"({"event":"purchase","user":{"emailSha256":")" + upper + R"("}})");
  ASSERT_TRUE(it.ok) << it.error;
  EXPECT_EQ(it.event.email_sha256, kEmailDigest);
}

TEST_F(ParserTest, EscapedKeysAreReadLikePlainOnes) {
  // Keys are compared as written when they have no escape, and unescaped when they have one.
  ParsedItem it = one(
      R"({"ev\u0065nt":"purchase","timestamp":1764319940000,"eventId":"k-1",)"
      R"("us\u0065r":{"em\u0061il":"email@email.com","first\"Name":"x"},"\u0076alue":{"amount":"1","curr\u0065ncy":"eur"}})");
  ASSERT_TRUE(it.ok) << it.error;
  EXPECT_EQ(it.event.rule_id, 123u);
  EXPECT_EQ(it.event.event_id, "k-1");
  EXPECT_EQ(it.event.email_sha256, kEmailDigest);
  EXPECT_EQ(it.event.amount, "1");
  EXPECT_EQ(it.event.currency, "EUR");
  EXPECT_TRUE(it.event.first_name.empty());  // "first\"Name" is another key
  ParsedItem other = one(R"({"event\n":"purchase","user":{"email":"email@email.com"}})");
  EXPECT_TRUE(rejected_with(other, RejectReason::kBadEvent));
}

TEST_F(ParserTest, ArrayItemsAreIndexedByPosition) {
  std::string body =
      "[" + purchase() + R"(, {"event":"nope","user":{"email":"a@b.co"}}, 7, )" + purchase() + "]";
  ParsedBody b = parse(body);
  ASSERT_EQ(b.status, BodyStatus::kOk);
  ASSERT_EQ(b.items.size(), 4u);
  EXPECT_TRUE(b.items[0].ok);
  EXPECT_EQ(b.items[1].index, 1u);
  EXPECT_TRUE(rejected_with(b.items[1], RejectReason::kUnknownEvent));
  EXPECT_EQ(b.items[2].index, 2u);
  EXPECT_TRUE(rejected_with(b.items[2], RejectReason::kBadEvent));
  EXPECT_EQ(b.items[3].index, 3u);
  EXPECT_TRUE(b.items[3].ok);
}

TEST_F(ParserTest, NdjsonIndicesCountBlankLinesAndInvalidLines) {
  std::string body =
      purchase() + "\n\n" + purchase() + "\r\n   \n{\"event\": broken\n" + purchase() + "\n[1]\n";
  ParsedBody b = parse(body);
  ASSERT_EQ(b.status, BodyStatus::kOk) << b.error;
  ASSERT_EQ(b.items.size(), 5u);
  EXPECT_EQ(b.items[0].index, 0u);
  EXPECT_TRUE(b.items[0].ok);
  EXPECT_EQ(b.items[1].index, 2u);
  EXPECT_TRUE(b.items[1].ok) << b.items[1].error;
  EXPECT_EQ(b.items[2].index, 4u);
  EXPECT_FALSE(b.items[2].ok);
  EXPECT_TRUE(rejected_with(b.items[2], RejectReason::kInvalidJson));
  EXPECT_TRUE(b.items[2].error.starts_with("invalid_json: ")) << b.items[2].error;
  EXPECT_EQ(b.items[3].index, 5u);
  EXPECT_TRUE(b.items[3].ok);
  EXPECT_EQ(b.items[4].index, 6u);
  EXPECT_TRUE(rejected_with(b.items[4], RejectReason::kBadEvent));  // a line holding an array
}

TEST_F(ParserTest, NdjsonWithBrokenFirstLineStillReadsTheRest) {
  std::string body = "{oops\n" + purchase() + "\n";
  ParsedBody b = parse(body);
  ASSERT_EQ(b.status, BodyStatus::kOk);
  ASSERT_EQ(b.items.size(), 2u);
  EXPECT_TRUE(rejected_with(b.items[0], RejectReason::kInvalidJson));
  EXPECT_EQ(b.items[0].index, 0u);
  EXPECT_TRUE(b.items[1].ok);
  EXPECT_EQ(b.items[1].index, 1u);
}

TEST_F(ParserTest, NdjsonLineWithTrailingContentIsInvalid) {
  ParsedBody b = parse(purchase() + " {}\n" + purchase());
  ASSERT_EQ(b.status, BodyStatus::kOk);
  ASSERT_EQ(b.items.size(), 2u);
  EXPECT_TRUE(rejected_with(b.items[0], RejectReason::kInvalidJson));
  EXPECT_TRUE(b.items[1].ok);
}

TEST_F(ParserTest, PrettyPrintedValuesAreOneValue) {
  ParsedBody obj =
      parse("\n{\n  \"event\": \"purchase\",\n  \"user\": {\"email\": \"a@b.co\"}\n}\n");
  ASSERT_EQ(obj.status, BodyStatus::kOk);
  ASSERT_EQ(obj.items.size(), 1u);
  EXPECT_TRUE(obj.items[0].ok) << obj.items[0].error;
  EXPECT_EQ(obj.items[0].index, 0u);

  ParsedBody arr = parse("[\n" + purchase() + ",\n" + purchase() + "\n]\n");
  ASSERT_EQ(arr.status, BodyStatus::kOk);
  ASSERT_EQ(arr.items.size(), 2u);
  EXPECT_EQ(arr.items[1].index, 1u);
  EXPECT_TRUE(arr.items[1].ok);
}

TEST_F(ParserTest, EmptyBodies) {
  for (const char* body : {"", "  ", "\n\n\r\n", "[]", " [ ]\n", "[\n]"}) {
    ParsedBody b = parse(body);
    EXPECT_EQ(b.status, BodyStatus::kEmpty) << "[" << body << "]";
    EXPECT_TRUE(b.items.empty());
    EXPECT_FALSE(b.error.empty());
  }
}

TEST_F(ParserTest, UnparseableBodies) {
  for (std::string body :
       {std::string("not json"), std::string("{\"event\":"), "[" + purchase() + ", {bad",
        std::string("x\ny\n\nz"), "[\n" + purchase() + ",\n{bad\n]", purchase() + " trailing"}) {
    ParsedBody b = parse(body);
    EXPECT_EQ(b.status, BodyStatus::kUnparseable) << body;
    EXPECT_TRUE(b.items.empty()) << body;
    EXPECT_FALSE(b.error.empty());
  }
}

TEST_F(ParserTest, ScalarBodyIsOneBadEvent) {
  ParsedBody b = parse("42");
  ASSERT_EQ(b.status, BodyStatus::kOk);
  ASSERT_EQ(b.items.size(), 1u);
  EXPECT_TRUE(rejected_with(b.items[0], RejectReason::kBadEvent));
}

TEST_F(ParserTest, PaddedBodyIsReadInPlace) {
  std::string storage = purchase() + "\n" + purchase();
  size_t size = storage.size();
  storage.append(64, '\0');  // SIMDJSON_PADDING readable bytes
  ParsedBody b;
  parser_.parse_body(std::string_view(storage.data(), size), true, opts_, b);
  ASSERT_EQ(b.status, BodyStatus::kOk);
  ASSERT_EQ(b.items.size(), 2u);
  EXPECT_TRUE(b.items[0].ok);
  EXPECT_TRUE(b.items[1].ok);
  EXPECT_EQ(b.items[1].index, 1u);
}

TEST_F(ParserTest, ReusedOutputHoldsOnlyTheLatestBody) {
  ParsedBody b;
  parser_.parse_body("[" + purchase() + "," + purchase() + "," + purchase() + "]", false, opts_, b);
  ASSERT_EQ(b.items.size(), 3u);
  parser_.parse_body(R"({"event":"lead","user":{"liFatId":"x"}})", false, opts_, b);
  ASSERT_EQ(b.items.size(), 1u);
  ASSERT_TRUE(b.items[0].ok);
  EXPECT_EQ(b.items[0].event.rule_id, 456u);
  EXPECT_TRUE(b.items[0].event.email_sha256.empty());  // nothing left from the previous body
  parser_.parse_body("nonsense", false, opts_, b);
  EXPECT_EQ(b.status, BodyStatus::kUnparseable);
  EXPECT_TRUE(b.items.empty());
}

TEST_F(ParserTest, LinkedInElementShapeIsAccepted) {
  std::string upper = kEmailDigest;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string ip_hash = sha256_hex("192.0.2.1");
  ParsedItem it = one(R"({
    "conversion": "urn:lla:llaPartnerConversion:456",
    "conversionHappenedAt": 1764319000000,
    "conversionValue": {"currencyCode": "eur", "amount": "12.5"},
    "eventId": "li-1",
    "user": {
      "userIds": [
        {"idType": "SHA256_EMAIL", "idValue": ")" +
                      upper + R"("},
        {"idType": "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID", "idValue": "fat-1"},
        {"idType": "ACXIOM_ID", "idValue": "ax"},
        {"idType": "ORACLE_MOAT_ID", "idValue": "moat"},
        {"idType": "SHA256_IP_ADDRESS", "idValue": ")" +
                      ip_hash + R"("},
        {"idType": "GOOGLE_AID", "idValue": "ignored"}
      ],
      "userInfo": {"firstName": "Mike", "lastName": "Smith", "title": "Eng",
                   "companyName": "Contoso", "countryCode": "gb"},
      "externalIds": ["crm-1", "crm-2"],
      "lead": "urn:li:leadGenFormResponse:abc-123"
    }
  })");
  ASSERT_TRUE(it.ok) << it.error;
  const NormalizedEvent& e = it.event;
  EXPECT_EQ(e.rule_id, 456u);
  EXPECT_EQ(e.happened_at_ms, 1764319000000);
  EXPECT_EQ(e.amount, "12.5");
  EXPECT_EQ(e.currency, "EUR");
  EXPECT_EQ(e.event_id, "li-1");
  EXPECT_EQ(e.email_sha256, kEmailDigest);
  EXPECT_EQ(e.li_fat_id, "fat-1");
  EXPECT_EQ(e.acxiom_id, "ax");
  EXPECT_EQ(e.moat_id, "moat");
  EXPECT_EQ(e.ip_sha256, ip_hash);
  EXPECT_EQ(e.first_name, "Mike");
  EXPECT_EQ(e.last_name, "Smith");
  EXPECT_EQ(e.title, "Eng");
  EXPECT_EQ(e.company_name, "Contoso");
  EXPECT_EQ(e.country_code, "GB");
  EXPECT_EQ(e.external_id, "crm-1");
  EXPECT_EQ(e.lead, "urn:li:leadGenFormResponse:abc-123");
}

TEST_F(ParserTest, LinkedInShapeHashesPlainEmailAndIp) {
  ParsedItem it = one(R"({"conversion":"urn:lla:llaPartnerConversion:123",
    "conversionHappenedAt":1764319000000,
    "user":{"userIds":[{"idType":"SHA256_EMAIL","idValue":" Email@Email.COM"},
                       {"idType":"PLAINTEXT_IP_ADDRESS","idValue":"2001:db8:0:0::1"}]}})");
  ASSERT_TRUE(it.ok) << it.error;
  EXPECT_EQ(it.event.email_sha256, kEmailDigest);
  EXPECT_EQ(it.event.ip_sha256, sha256_hex("2001:db8::1"));
}

TEST_F(ParserTest, ElementOutputParsesBackToTheSameEvent) {
  ParsedItem first = one(R"({"event":"purchase","eventId":"e\"1","timestamp":1764319000000,
    "value":{"amount":7,"currency":"USD"},
    "user":{"email":"email@email.com","ip":"192.0.2.1","liFatId":"f","firstName":"Zoë",
            "lastName":"O'Brien","countryCode":"IE","externalId":"x","lead":"urn:li:leadGenFormResponse:9"}})");
  ASSERT_TRUE(first.ok) << first.error;
  std::string json;
  append_element_json(first.event, json);
  ParsedItem second = one(json);
  ASSERT_TRUE(second.ok) << second.error << "\n" << json;
  EXPECT_EQ(second.event, first.event);
}

TEST_F(ParserTest, AmountForms) {
  struct Case {
    const char* json_amount;
    const char* expected;
  };
  for (const Case& c : {Case{"\"50.00\"", "50.00"}, Case{"50", "50"}, Case{"50.00", "50.00"},
                        Case{"5e1", "50"}, Case{"1.5E-2", "0.015"}, Case{"2.50e+2", "250"},
                        Case{"0", "0"}, Case{"\" 7.1 \"", "7.1"}}) {
    ParsedItem it =
        one(purchase(std::string(R"("value":{"currency":"USD","amount":)") + c.json_amount + "}"));
    ASSERT_TRUE(it.ok) << c.json_amount << ": " << it.error;
    EXPECT_EQ(it.event.amount, c.expected) << c.json_amount;
  }
}

TEST_F(ParserTest, TimestampForms) {
  struct Case {
    const char* json_ts;
    int64_t expected;
  };
  for (const Case& c :
       {Case{"1764319940000", 1764319940000}, Case{"1.76431994e12", 1764319940000},
        Case{"\"1764319940000\"", 1764319940000}, Case{"\"2025-11-28T08:52:20Z\"", 1764319940000},
        Case{"\"2025-11-28t08:52:20.5z\"", 1764319940500},
        Case{"\"2025-11-28T09:52:20.123456+01:00\"", 1764319940123},
        Case{"\"2025-11-28 03:52:20-05:00\"", 1764319940000}}) {
    ParsedItem it = one(std::string(R"({"event":"purchase","user":{"liFatId":"f"},"timestamp":)") +
                        c.json_ts + "}");
    ASSERT_TRUE(it.ok) << c.json_ts << ": " << it.error;
    EXPECT_EQ(it.event.happened_at_ms, c.expected) << c.json_ts;
  }
}

TEST_F(ParserTest, MissingTimestampMeansReceiptTime) {
  ParsedItem it = one(R"({"event":"purchase","user":{"liFatId":"f"}})");
  ASSERT_TRUE(it.ok) << it.error;
  EXPECT_EQ(it.event.happened_at_ms, clock_.now_ms());
}

TEST_F(ParserTest, SlightlyFutureTimestampIsClampedToReceipt) {
  std::string ts = std::to_string(clock_.now_ms() + 5 * 60 * 1000);
  ParsedItem it = one(R"({"event":"purchase","user":{"liFatId":"f"},"timestamp":)" + ts + "}");
  ASSERT_TRUE(it.ok) << it.error;
  EXPECT_EQ(it.event.happened_at_ms, clock_.now_ms());
}

TEST_F(ParserTest, ConversionAsNumberOrUrnInAllowlist) {
  ParsedItem num = one(R"({"conversion":456,"user":{"liFatId":"f"}})");
  ASSERT_TRUE(num.ok) << num.error;
  EXPECT_EQ(num.event.rule_id, 456u);
  ParsedItem text = one(R"({"conversion":"123","user":{"liFatId":"f"}})");
  ASSERT_TRUE(text.ok) << text.error;
  EXPECT_EQ(text.event.rule_id, 123u);
}

TEST_F(ParserTest, NamesOnlyIsEnoughAndUserInfoNeedsBothNames) {
  ParsedItem it = one(R"({"event":"purchase","user":{"firstName":"A","lastName":"B"}})");
  ASSERT_TRUE(it.ok) << it.error;
  ParsedItem no_names = one(
      R"({"event":"purchase","user":{"liFatId":"f","title":"T","companyName":"C","countryCode":"us"}})");
  ASSERT_TRUE(no_names.ok) << no_names.error;
  EXPECT_TRUE(no_names.event.title.empty());  // sent only inside userInfo, so not kept
  EXPECT_TRUE(no_names.event.company_name.empty());
  EXPECT_TRUE(no_names.event.country_code.empty());
}

TEST_F(ParserTest, NumericClearIdsAndNullFieldsAreAccepted) {
  ParsedItem it = one(
      R"({"event":"purchase","eventId":null,"user":{"externalId":12345,"email":null,"ip":null},"value":null})");
  ASSERT_TRUE(it.ok) << it.error;
  EXPECT_EQ(it.event.external_id, "12345");
  EXPECT_TRUE(it.event.email_sha256.empty());
  EXPECT_TRUE(it.event.amount.empty());
}

TEST_F(ParserTest, FirstOccurrenceOfAKeyWins) {
  ParsedItem it = one(R"({"event":"lead","event":"nope","user":{"liFatId":"a","liFatId":"b",
    "userIds":[{"idType":"LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID","idValue":"c"}]}})");
  ASSERT_TRUE(it.ok) << it.error;
  EXPECT_EQ(it.event.rule_id, 456u);
  EXPECT_EQ(it.event.li_fat_id, "a");
}

TEST_F(ParserTest, ParsesEscapedStrings) {
  ParsedItem it =
      one(R"({"event":"pur\u0063hase","eventId":"a\/b\n","user":{"liFatId":"\u00e9"}})");
  ASSERT_TRUE(it.ok) << it.error;
  EXPECT_EQ(it.event.event_id, "a/b\n");
  EXPECT_EQ(it.event.li_fat_id, "\xC3\xA9");
}

TEST_F(ParserTest, EveryPrefixAndMutationOfABodyIsHandled) {
  // Robustness (run under CAPI_RELAY_SANITIZE too): no crash or over-read on any prefix or
  // byte-flipped variant; each answer is one of the three statuses with consistent items.
  std::string body =
      "[" + purchase(R"("value":{"amount":1.5e1,"currency":"usd"})") + ",\n" +
      R"({"conversion":"urn:lla:llaPartnerConversion:123","user":{"userIds":[)"
      R"({"idType":"SHA256_EMAIL","idValue":"x@y.zz"}],"userInfo":{"firstName":"a","lastName":"b"}}})" +
      "]\n" + purchase() + "\n";
  uint32_t x = 7;
  for (size_t n = 0; n <= body.size(); ++n) {
    for (int variant = 0; variant < 3; ++variant) {
      std::string text = body.substr(0, n);
      if (variant > 0 && !text.empty()) {
        x = x * 1664525u + 1013904223u;
        static constexpr std::string_view kBytes = "{}[]\",:\\\n0e";
        text[x % text.size()] = kBytes[(x >> 16) % kBytes.size()];
      }
      ParsedBody b = parse(text);
      if (b.status != BodyStatus::kOk) {
        EXPECT_TRUE(b.items.empty());
        EXPECT_FALSE(b.error.empty());
      }
      for (const ParsedItem& it : b.items) EXPECT_EQ(it.ok, it.error.empty()) << it.error;
    }
  }
}

// ---- derived and random event IDs ----

TEST_F(ParserTest, DerivedIdIsEqualAcrossBodyForms) {
  const std::string relay =
      R"({"event":"purchase","timestamp":1764319940000,"value":{"amount":"50.00","currency":"usd"},)"
      R"("user":{"email":" Email@Email.com","firstName":"A","lastName":"B"}})";
  const std::string relay_rfc3339 =
      R"({"user":{"lastName":"B","firstName":"A","email":"email@email.com"},"event":"purchase",)"
      R"("value":{"currency":"USD","amount":50},"timestamp":"2025-11-28T08:52:20.000Z"})";
  const std::string linkedin =
      R"({"conversion":"urn:lla:llaPartnerConversion:123","conversionHappenedAt":1764319940000,)"
      R"("conversionValue":{"currencyCode":"USD","amount":"50.0"},"user":{"userIds":[)"
      R"({"idType":"SHA256_EMAIL","idValue":")" +
      std::string(kEmailDigest) + R"("}],"userInfo":{"firstName":"A","lastName":"B"}}})";

  std::vector<std::string> ids;
  for (const std::string& body :
       {relay, "[" + relay + "]", relay + "\n" + relay + "\n", "\n" + relay, relay_rfc3339,
        linkedin, "[" + linkedin + "," + relay + "]"}) {
    ParsedBody b = parse(body);
    ASSERT_EQ(b.status, BodyStatus::kOk) << body;
    for (const ParsedItem& it : b.items) {
      ASSERT_TRUE(it.ok) << it.error;
      EXPECT_TRUE(it.event.event_id_derived);
      ids.push_back(it.event.event_id);
    }
  }
  ASSERT_FALSE(ids.empty());
  EXPECT_TRUE(ids[0].starts_with("d-"));
  EXPECT_EQ(ids[0].size(), 42u);
  for (const std::string& id : ids) EXPECT_EQ(id, ids[0]);
}

TEST_F(ParserTest, DerivedIdChangesWithTheEvent) {
  auto id_of = [&](std::string_view json) {
    ParsedItem it = one(json);
    EXPECT_TRUE(it.ok) << it.error;
    return it.event.event_id;
  };
  std::string base =
      id_of(R"({"event":"purchase","timestamp":1764319940000,"user":{"liFatId":"f"}})");
  EXPECT_NE(base,
            id_of(R"({"event":"purchase","timestamp":1764319940001,"user":{"liFatId":"f"}})"));
  EXPECT_NE(base, id_of(R"({"event":"lead","timestamp":1764319940000,"user":{"liFatId":"f"}})"));
  EXPECT_NE(base,
            id_of(R"({"event":"purchase","timestamp":1764319940000,"user":{"liFatId":"g"}})"));
  EXPECT_NE(base,
            id_of(R"({"event":"purchase","timestamp":1764319940000,"user":{"acxiomId":"f"}})"));
  EXPECT_NE(base, id_of(R"({"event":"purchase","timestamp":1764319940000,"user":{"liFatId":"f"},)"
                        R"("value":{"amount":"1","currency":"USD"}})"));
  // The clamped receipt time does not enter the ID: a retry a minute later derives the same one.
  std::string future = std::to_string(clock_.now_ms() + 60'000);
  std::string json = R"({"event":"purchase","user":{"liFatId":"f"},"timestamp":)" + future + "}";
  std::string first = id_of(json);
  opts_.now_ms += 60'000;
  EXPECT_EQ(first, id_of(json));
}

TEST_F(ParserTest, NoIdAndNoTimestampGetsARandomId) {
  ParsedItem a = one(R"({"event":"purchase","user":{"liFatId":"f"}})");
  ParsedItem b = one(R"({"event":"purchase","user":{"liFatId":"f"}})");
  ASSERT_TRUE(a.ok);
  ASSERT_TRUE(b.ok);
  // FixedRandom counts up from 1.
  EXPECT_EQ(a.event.event_id, "r-00000000000000010000000000000002");
  EXPECT_EQ(b.event.event_id, "r-00000000000000030000000000000004");
  EXPECT_TRUE(a.event.event_id_derived);
}

// ---- normalize_flat (CSV rows) ----

using Flat = EventParser::FlatEvent;
EventParser::Field f(std::string_view v) { return {v, true}; }

TEST_F(ParserTest, FlatRowUsesTheSameRules) {
  Flat row;
  row.event = f("purchase");
  row.timestamp = f("2025-11-28T08:52:20Z");
  row.email = f(" Email@Email.COM");
  row.amount = f("50.00");
  row.currency = f("usd");
  row.consent = f("Yes");
  row.first_name = f("");  // empty cell: absent
  ParsedItem it = parser_.normalize_flat(row, opts_);
  ASSERT_TRUE(it.ok) << it.error;
  EXPECT_EQ(it.event.email_sha256, kEmailDigest);
  EXPECT_EQ(it.event.happened_at_ms, 1764319940000);
  EXPECT_EQ(it.event.currency, "USD");

  // The same event through JSON derives the same ID.
  ParsedItem json = one(
      R"({"event":"purchase","timestamp":1764319940000,"value":{"amount":"50.00","currency":"USD"},)"
      R"("user":{"email":"email@email.com"}})");
  ASSERT_TRUE(json.ok);
  EXPECT_EQ(json.event.event_id, it.event.event_id);
}

TEST_F(ParserTest, FlatConsentSpellings) {
  for (const char* yes : {"true", "TRUE", "1", "yes", "Yes"}) {
    Flat row;
    row.event = f("purchase");
    row.li_fat_id = f("x");
    row.consent = f(yes);
    EXPECT_TRUE(parser_.normalize_flat(row, opts_).ok) << yes;
  }
  for (const char* no : {"false", "False", "0", "no", "NO"}) {
    Flat row;
    row.event = f("purchase");
    row.li_fat_id = f("x");
    row.consent = f(no);
    EXPECT_TRUE(rejected_with(parser_.normalize_flat(row, opts_), RejectReason::kNoConsent)) << no;
  }
  Flat row;
  row.event = f("purchase");
  row.li_fat_id = f("x");
  row.consent = f("maybe");
  EXPECT_TRUE(rejected_with(parser_.normalize_flat(row, opts_), RejectReason::kBadConsent));
}

TEST_F(ParserTest, FlatRowTimestampDigitsAndRequired) {
  Flat row;
  row.conversion = f("urn:lla:llaPartnerConversion:456");
  row.li_fat_id = f("x");
  row.timestamp = f("1764319940000");
  ParsedItem it = parser_.normalize_flat(row, opts_);
  ASSERT_TRUE(it.ok) << it.error;
  EXPECT_EQ(it.event.happened_at_ms, 1764319940000);

  opts_.require_timestamp = true;
  row.timestamp = {};
  it = parser_.normalize_flat(row, opts_);
  EXPECT_TRUE(rejected_with(it, RejectReason::kBadTimestamp));
}

}  // namespace
}  // namespace capi_relay
