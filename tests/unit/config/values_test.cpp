// Durations, sizes, rule ids and listen addresses as the config spells them.
#include <gtest/gtest.h>

#include <string>

#include "capi_relay/config/check_config.hpp"
#include "capi_relay/config/config.hpp"

namespace capi_relay {
namespace {

Millis duration_of(std::string_view text) {
  Millis out{-1};
  EXPECT_TRUE(parse_duration(text, out)) << text;
  return out;
}

TEST(ParseDuration, AcceptsEachUnit) {
  EXPECT_EQ(duration_of("250ms"), Millis{250});
  EXPECT_EQ(duration_of("5s"), Millis{5000});
  EXPECT_EQ(duration_of("10m"), Millis{600'000});
  EXPECT_EQ(duration_of("72h"), Millis{72ll * 3600 * 1000});
  EXPECT_EQ(duration_of("7d"), Millis{7ll * 86'400'000});
  EXPECT_EQ(duration_of("0"), Millis{0});
  EXPECT_EQ(duration_of("0s"), Millis{0});
}

TEST(ParseDuration, AddsCombinedParts) {
  EXPECT_EQ(duration_of("1h30m"), Millis{90ll * 60 * 1000});
  EXPECT_EQ(duration_of("1s500ms"), Millis{1500});
}

TEST(ParseDuration, RejectsMalformed) {
  for (std::string_view bad : {"", "5", "s", "5x", "5 s", " 5s", "5s ", "-5s", "1.5s", "5S", "5sec",
                               "ms", "10mm", "99999999999999999999d", "100000000d"}) {
    Millis out{42};
    EXPECT_FALSE(parse_duration(bad, out)) << bad;
    EXPECT_EQ(out, Millis{42}) << "output untouched on failure: " << bad;
  }
}

TEST(ParseSize, AcceptsBytesAndUnits) {
  const std::pair<std::string_view, uint64_t> cases[] = {
      {"0", 0},
      {"512", 512},
      {"512B", 512},
      {"64KiB", 64ull << 10},
      {"1MiB", 1ull << 20},
      {"1GiB", 1ull << 30},
      {"2TiB", 2ull << 40},
      {"1KB", 1000},
      {"3MB", 3'000'000},
      {"1GB", 1'000'000'000},
      {"64 KiB", 64ull << 10},
      {"64kib", 64ull << 10},
  };
  for (const auto& [text, want] : cases) {
    uint64_t out = 7;
    EXPECT_TRUE(parse_size(text, out)) << text;
    EXPECT_EQ(out, want) << text;
  }
}

TEST(ParseSize, RejectsMalformed) {
  for (std::string_view bad : {"", "KiB", "1.5GiB", "-1", "1XiB", "1 GiB extra", "1PiB",
                               "99999999999999999999", "20000000TiB"}) {
    uint64_t out = 7;
    EXPECT_FALSE(parse_size(bad, out)) << bad;
    EXPECT_EQ(out, 7u) << bad;
  }
}

TEST(ParseRule, AcceptsUrnAndNumber) {
  uint64_t id = 0;
  ASSERT_TRUE(parse_rule("urn:lla:llaPartnerConversion:123", id));
  EXPECT_EQ(id, 123u);
  ASSERT_TRUE(parse_rule("456", id));
  EXPECT_EQ(id, 456u);
  EXPECT_EQ(rule_urn(789), "urn:lla:llaPartnerConversion:789");
  ASSERT_TRUE(parse_rule(rule_urn(18446744073709551615ull), id));
  EXPECT_EQ(id, 18446744073709551615ull);
}

TEST(ParseRule, RejectsOthers) {
  for (std::string_view bad : {"", "0", "-1", "12a", "urn:lla:llaPartnerConversion:",
                               "urn:lla:llaPartnerConversion:x", "urn:li:llaPartnerConversion:1",
                               "llaPartnerConversion:1", " 1", "18446744073709551616"}) {
    uint64_t id = 99;
    EXPECT_FALSE(parse_rule(bad, id)) << bad;
    EXPECT_EQ(id, 99u) << bad;
  }
}

TEST(ParseListen, SplitsHostAndPort) {
  HostPort hp;
  ASSERT_TRUE(parse_listen("127.0.0.1:8080", hp));
  EXPECT_EQ(hp.host, "127.0.0.1");
  EXPECT_EQ(hp.port, 8080);
  ASSERT_TRUE(parse_listen("[::1]:9464", hp));
  EXPECT_EQ(hp.host, "::1");
  EXPECT_EQ(hp.port, 9464);
  ASSERT_TRUE(parse_listen("[::]:0", hp));
  EXPECT_EQ(hp.host, "::");
  EXPECT_EQ(hp.port, 0);
  ASSERT_TRUE(parse_listen("localhost:65535", hp));
  EXPECT_EQ(hp.host, "127.0.0.1");
  EXPECT_EQ(hp.port, 65535);
  ASSERT_TRUE(parse_listen("0.0.0.0:80", hp));
  EXPECT_EQ(hp.host, "0.0.0.0");
  ASSERT_TRUE(parse_listen(":9464", hp));
  EXPECT_EQ(hp.host, "0.0.0.0");
  EXPECT_EQ(hp.port, 9464);
  ASSERT_TRUE(parse_listen("*:81", hp));
  EXPECT_EQ(hp.host, "0.0.0.0");
  EXPECT_EQ(hp.port, 81);
}

TEST(ParseListen, RejectsBadAddresses) {
  for (std::string_view bad : {"", "8080", ":", "*:", ":x", "LOCALHOST:80", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
                               "127.0.0.1:-1", "127.0.0.1:http", "::1:8080", "[::1]", "[::1]8080",
                               "[zz]:80", "example.com:80", "256.0.0.1:80", "[::1:80"}) {
    HostPort hp;
    EXPECT_FALSE(parse_listen(bad, hp)) << bad;
  }
}

TEST(FormatValues, PicksTheLargestExactUnit) {
  EXPECT_EQ(format_duration(Millis{7ll * 86'400'000}), "7d");
  EXPECT_EQ(format_duration(Millis{90'000}), "90s");
  EXPECT_EQ(format_duration(Millis{250}), "250ms");
  EXPECT_EQ(format_duration(Millis{0}), "0");
  EXPECT_EQ(format_size(1ull << 30), "1GiB");
  EXPECT_EQ(format_size(64ull << 10), "64KiB");
  EXPECT_EQ(format_size(1000), "1000");
  EXPECT_EQ(format_size(0), "0");
}

}  // namespace
}  // namespace capi_relay
