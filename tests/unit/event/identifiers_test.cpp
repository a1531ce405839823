// Email hashing and IP canonicalization (contract §3, linkedin-capi.md §2).
#include <gtest/gtest.h>

#include <string>

#include "capi_relay/event/parser.hpp"

namespace capi_relay {
namespace {

constexpr const char* kEmailDigest =
    "f3273dd18d95bc19d51d3e6356e4a679e6f13824497272a270e7bb540b0abb9d";

TEST(EmailHash, LinkedInWorkedExample) {
  std::string hex;
  ASSERT_TRUE(normalize_and_hash_email("email@email.com", hex));
  EXPECT_EQ(hex, kEmailDigest);
}

TEST(EmailHash, TrimsAndLowercasesBeforeHashing) {
  std::string hex;
  ASSERT_TRUE(normalize_and_hash_email("  Email@Email.COM ", hex));
  EXPECT_EQ(hex, kEmailDigest);
}

TEST(EmailHash, RemovesInnerWhitespaceToo) {
  std::string hex;
  ASSERT_TRUE(normalize_and_hash_email("\temail @ email.com\r\n", hex));
  EXPECT_EQ(hex, kEmailDigest);
  ASSERT_TRUE(normalize_and_hash_email("email@email.com\xC2\xA0", hex));  // trailing NBSP
  EXPECT_EQ(hex, kEmailDigest);
}

TEST(EmailHash, DoesNotStripPlusTagsOrDots) {
  std::string plain, tagged;
  ASSERT_TRUE(normalize_and_hash_email("first.last@gmail.com", plain));
  ASSERT_TRUE(normalize_and_hash_email("firstlast+x@gmail.com", tagged));
  EXPECT_NE(plain, tagged);
}

TEST(EmailHash, RejectsMalformedAddresses) {
  for (const char* bad :
       {"", "   ", "no-at-sign", "a@b", "a@@b.com", "a@b@c.com", "@example.com", "a@.com",
        "a@example..com", "a@example.c", "a@example.com.", ".a@example.com", "a..b@example.com",
        "a,b@example.com", "a@exa_mple.com", "<a@example.com>", "a\"b@example.com"}) {
    std::string hex = "untouched";
    EXPECT_FALSE(normalize_and_hash_email(bad, hex)) << bad;
    EXPECT_EQ(hex, "untouched") << bad;
  }
  std::string too_long(250, 'a');
  too_long += "@example.com";
  std::string hex;
  EXPECT_FALSE(normalize_and_hash_email(too_long, hex));
}

TEST(CanonicalIp, Ipv4StaysDottedDecimal) {
  std::string out;
  ASSERT_TRUE(canonical_ip("192.0.2.1", out));
  EXPECT_EQ(out, "192.0.2.1");
}

TEST(CanonicalIp, Ipv6FollowsRfc5952) {
  struct Case {
    const char* in;
    const char* out;
  };
  for (const Case& c : {
           Case{"2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"},
           Case{"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},     // first longest run
           Case{"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},  // one zero group kept
           Case{"2001:DB8::AbCd", "2001:db8::abcd"},
           Case{"0:0:0:0:0:0:0:1", "::1"},
           Case{"::", "::"},
           Case{"::FFFF:192.0.2.1", "::ffff:192.0.2.1"},
       }) {
    std::string out;
    ASSERT_TRUE(canonical_ip(c.in, out)) << c.in;
    EXPECT_EQ(out, c.out) << c.in;
  }
}

TEST(CanonicalIp, RejectsNonAddresses) {
  for (const char* bad : {"", "1.2.3", "256.1.1.1", "1.2.3.4.5", "example.com", "fe80::1%eth0",
                          "2001:db8:::1", "1:2:3:4:5:6:7:8:9", " 1.2.3.4"}) {
    std::string out;
    EXPECT_FALSE(canonical_ip(bad, out)) << bad;
  }
  std::string long_input(100, '1');
  std::string out;
  EXPECT_FALSE(canonical_ip(long_input, out));
}

}  // namespace
}  // namespace capi_relay
