// LinkedIn element serialization and the spool record codec.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "capi_relay/common/hash.hpp"
#include "capi_relay/event/element.hpp"
#include "capi_relay/event/record.hpp"

namespace capi_relay {
namespace {

NormalizedEvent full_event() {
  NormalizedEvent e;
  e.rule_id = 104012;
  e.happened_at_ms = 1770000000000;
  e.received_at_ms = 1770000000123;
  e.event_id = "order-8841";
  e.amount = "50.0";
  e.currency = "USD";
  e.email_sha256 = std::string(64, 'a');
  e.ip_sha256 = std::string(64, 'b');
  e.li_fat_id = "fat";
  e.acxiom_id = "ax";
  e.moat_id = "moat";
  e.external_id = "crm-user-123";
  e.lead = "urn:li:leadGenFormResponse:7";
  e.first_name = "mike";
  e.last_name = "smith \"jr\"";
  e.title = "software engineer";
  e.company_name = "microsoft";
  e.country_code = "US";
  return e;
}

TEST(Element, FullEventExactJson) {
  std::string out;
  append_element_json(full_event(), out);
  const std::string a(64, 'a'), b(64, 'b');
  EXPECT_EQ(
      out,
      R"({"conversion":"urn:lla:llaPartnerConversion:104012","conversionHappenedAt":1770000000000,)"
      R"("conversionValue":{"currencyCode":"USD","amount":"50.0"},"eventId":"order-8841",)"
      R"("user":{"userIds":[{"idType":"SHA256_EMAIL","idValue":")" +
          a +
          R"("},)"
          R"({"idType":"LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID","idValue":"fat"},)"
          R"({"idType":"ACXIOM_ID","idValue":"ax"},{"idType":"ORACLE_MOAT_ID","idValue":"moat"},)"
          R"({"idType":"SHA256_IP_ADDRESS","idValue":")" +
          b +
          R"("}],)"
          R"("userInfo":{"firstName":"mike","lastName":"smith \"jr\"","title":"software engineer",)"
          R"("companyName":"microsoft","countryCode":"US"},"externalIds":["crm-user-123"],)"
          R"("lead":"urn:li:leadGenFormResponse:7"}})");
}

TEST(Element, NamesOnlyEventHasEmptyUserIds) {
  NormalizedEvent e;
  e.rule_id = 5;
  e.happened_at_ms = 1;
  e.event_id = "d-1";
  e.first_name = "Ann";
  e.last_name = "Lee";
  std::string out;
  append_element_json(e, out);
  EXPECT_EQ(
      out,
      R"({"conversion":"urn:lla:llaPartnerConversion:5","conversionHappenedAt":1,"eventId":"d-1",)"
      R"("user":{"userIds":[],"userInfo":{"firstName":"Ann","lastName":"Lee"}}})");
}

TEST(Element, UserInfoNeedsBothNames) {
  NormalizedEvent e;
  e.rule_id = 5;
  e.happened_at_ms = 1;
  e.event_id = "x";
  e.li_fat_id = "f";
  e.first_name = "Ann";  // not a state the parser produces; the serializer still guards it
  e.title = "t";
  std::string out;
  append_element_json(e, out);
  EXPECT_EQ(out.find("userInfo"), std::string::npos);
  EXPECT_EQ(out.find("conversionValue"), std::string::npos);
}

TEST(Element, BatchWrapsElements) {
  NormalizedEvent a;
  a.rule_id = 1;
  a.event_id = "a";
  NormalizedEvent b = a;
  b.event_id = "b";
  std::vector<NormalizedEvent> events{a, b};
  std::string out = "prefix:";
  append_batch_json(events, out);
  std::string ea, eb;
  append_element_json(a, ea);
  append_element_json(b, eb);
  EXPECT_EQ(out, "prefix:{\"elements\":[" + ea + "," + eb + "]}");
  std::string empty;
  append_batch_json({}, empty);
  EXPECT_EQ(empty, R"({"elements":[]})");
}

TEST(Element, EscapesControlCharacters) {
  NormalizedEvent e;
  e.rule_id = 1;
  e.event_id = "a\nb\x01";
  std::string out;
  append_element_json(e, out);
  EXPECT_NE(out.find(R"("eventId":"a\nb\u0001")"), std::string::npos) << out;
}

TEST(Record, RoundTrip) {
  NormalizedEvent e = full_event();
  e.event_id_derived = true;
  e.happened_at_ms = -5;  // signed values survive
  std::string buf = "x";  // encode appends
  encode_record(e, buf);
  ASSERT_EQ(buf[0], 'x');
  EXPECT_EQ(static_cast<uint8_t>(buf[1]), kRecordVersion);
  Result<NormalizedEvent> back = decode_record(std::string_view(buf).substr(1));
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_EQ(back.value(), e);

  NormalizedEvent empty;
  std::string eb;
  encode_record(empty, eb);
  EXPECT_EQ(eb.size(), 1u + 8 + 8 + 8 + 1 + 15 * 2);
  Result<NormalizedEvent> eback = decode_record(eb);
  ASSERT_TRUE(eback.ok());
  EXPECT_EQ(eback.value(), empty);
}

TEST(Record, EveryTruncationIsRejected) {
  std::string buf;
  encode_record(full_event(), buf);
  for (size_t n = 0; n < buf.size(); ++n) {
    Result<NormalizedEvent> r = decode_record(std::string_view(buf).substr(0, n));
    EXPECT_FALSE(r.ok()) << "prefix of " << n << " bytes decoded";
  }
}

TEST(Record, GarbageIsRejected) {
  std::string buf;
  encode_record(full_event(), buf);
  EXPECT_FALSE(decode_record(buf + "z").ok());  // trailing bytes
  std::string wrong_version = buf;
  wrong_version[0] = 2;
  EXPECT_FALSE(decode_record(wrong_version).ok());
  std::string bad_flags = buf;
  bad_flags[25] = static_cast<char>(0x80);
  EXPECT_FALSE(decode_record(bad_flags).ok());
  std::string huge_length = buf;
  huge_length[26] = static_cast<char>(0xFF);  // first string claims 0xFFxx bytes
  huge_length[27] = static_cast<char>(0xFF);
  EXPECT_FALSE(decode_record(huge_length).ok());
  // Pseudo-random junk never crashes.
  uint32_t x = 12345;
  for (int round = 0; round < 2000; ++round) {
    std::string junk(static_cast<size_t>(round % 97), '\0');
    for (char& c : junk) {
      x = x * 1664525u + 1013904223u;
      c = static_cast<char>(x >> 24);
    }
    if (!junk.empty()) junk[0] = 1;
    (void)decode_record(junk).ok();
  }
}

TEST(Record, DedupFingerprint) {
  uint64_t a = dedup_fingerprint(123, "order-1");
  EXPECT_EQ(a, dedup_fingerprint(123, "order-1"));
  EXPECT_NE(a, dedup_fingerprint(124, "order-1"));
  EXPECT_NE(a, dedup_fingerprint(123, "order-2"));
  // Defined as the first 8 bytes (little-endian) of SHA-256(rule_id LE64 || event_id).
  std::string input("\x7B\0\0\0\0\0\0\0order-1", 15);
  Sha256Digest d = sha256(input);
  uint64_t expected = 0;
  for (int i = 7; i >= 0; --i) expected = (expected << 8) | d[i];
  EXPECT_EQ(a, expected);
  std::string long_id(500, 'q');
  EXPECT_EQ(dedup_fingerprint(1, long_id), dedup_fingerprint(1, long_id));
  EXPECT_NE(dedup_fingerprint(1, long_id), dedup_fingerprint(1, long_id + "q"));
}

}  // namespace
}  // namespace capi_relay
