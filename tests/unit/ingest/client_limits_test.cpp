// Per-client limits: the token bucket (rate, burst, Retry-After, bounded table) and how the client
// address is found behind trusted proxies.
#include "capi_relay/ingest/client_limits.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace capi_relay {
namespace {

std::vector<IpNetwork> nets(const std::vector<std::string>& texts) {
  std::vector<IpNetwork> out;
  std::string bad;
  EXPECT_TRUE(parse_networks(texts, out, &bad)) << bad;
  return out;
}

TEST(IpNetwork, ParsesAddressesAndPrefixes) {
  IpNetwork n;
  EXPECT_TRUE(IpNetwork::parse("10.0.0.0/8", n));
  EXPECT_TRUE(n.contains("10.255.1.2"));
  EXPECT_FALSE(n.contains("11.0.0.1"));
  EXPECT_TRUE(n.contains("::ffff:10.1.2.3"));  // IPv4-mapped counts as IPv4
  EXPECT_FALSE(n.contains("not-an-address"));
  EXPECT_TRUE(IpNetwork::parse("192.0.2.7", n));
  EXPECT_TRUE(n.contains("192.0.2.7"));
  EXPECT_FALSE(n.contains("192.0.2.8"));
  EXPECT_TRUE(IpNetwork::parse("fd00::/8", n));
  EXPECT_TRUE(n.contains("fd12:3456::1"));
  EXPECT_FALSE(n.contains("fe80::1"));
  EXPECT_FALSE(n.contains("10.0.0.1"));  // family differs
  EXPECT_TRUE(IpNetwork::parse("172.16.0.0/12", n));
  EXPECT_TRUE(n.contains("172.31.255.255"));
  EXPECT_FALSE(n.contains("172.32.0.0"));
  EXPECT_TRUE(IpNetwork::parse("0.0.0.0/0", n));
  EXPECT_TRUE(n.contains("203.0.113.9"));
  for (const char* bad : {"", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "::/129", "host.example",
                          "10.0.0", "1.2.3.4/8/9"})
    EXPECT_FALSE(IpNetwork::parse(bad, n)) << bad;
}

TEST(ClientAddress, IsThePeerUnlessThePeerIsATrustedProxy) {
  // No trusted proxies: X-Forwarded-For is ignored (anyone can write it).
  EXPECT_EQ(client_address("203.0.113.5", "198.51.100.1", {}), "203.0.113.5");
  const auto trusted = nets({"10.0.0.0/8", "192.0.2.1"});
  // An untrusted peer's header is ignored too.
  EXPECT_EQ(client_address("203.0.113.5", "198.51.100.1", trusted), "203.0.113.5");
  // Trusted peer: the right-most untrusted hop.
  EXPECT_EQ(client_address("10.0.0.2", "198.51.100.1", trusted), "198.51.100.1");
  EXPECT_EQ(client_address("10.0.0.2", "1.1.1.1, 198.51.100.1, 192.0.2.1", trusted),
            "198.51.100.1");  // 1.1.1.1 is what the client claimed: not believed
  // Ports and brackets as some proxies write them.
  EXPECT_EQ(client_address("10.0.0.2", "198.51.100.1:5555", trusted), "198.51.100.1");
  EXPECT_EQ(client_address("10.0.0.2", "[2001:db8::7]:443", trusted), "2001:db8::7");
  // Garbage stops the walk at the last hop a trusted proxy vouched for.
  EXPECT_EQ(client_address("10.0.0.2", "198.51.100.1, garbage", trusted), "10.0.0.2");
  // Every hop trusted: the left-most one.
  EXPECT_EQ(client_address("10.0.0.2", "10.9.9.9, 192.0.2.1", trusted), "10.9.9.9");
  // No header from a trusted proxy: the proxy.
  EXPECT_EQ(client_address("10.0.0.2", "", trusted), "10.0.0.2");
  // IPv4-mapped peers are keyed as IPv4.
  EXPECT_EQ(client_address("::ffff:203.0.113.5", "", {}), "203.0.113.5");
}

TEST(ClientRateLimiter, DisabledAtZeroRate) {
  FakeClock clock;
  ClientRateLimiter l(0, 0, clock);
  EXPECT_FALSE(l.enabled());
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(l.allow("203.0.113.5"));
  EXPECT_EQ(l.tracked_clients(), 0u);
}

TEST(ClientRateLimiter, BurstThenRateWithRetryAfter) {
  FakeClock clock;
  ClientRateLimiter l(/*rate=*/2, /*burst=*/5, clock);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(l.allow("a")) << i;
  uint64_t retry = 0;
  EXPECT_FALSE(l.allow("a", &retry));
  EXPECT_EQ(retry, 1u);
  EXPECT_TRUE(l.allow("b"));  // another client has its own bucket
  clock.advance_ms(499);
  EXPECT_FALSE(l.allow("a"));
  clock.advance_ms(1);  // 500 ms at 2/s: one token
  EXPECT_TRUE(l.allow("a"));
  EXPECT_FALSE(l.allow("a"));
  clock.advance_ms(60'000);  // refills up to the burst, no more
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(l.allow("a")) << i;
  EXPECT_FALSE(l.allow("a"));
}

TEST(ClientRateLimiter, RetryAfterCoversSlowRates) {
  FakeClock clock;
  ClientRateLimiter l(/*rate=*/1, /*burst=*/1, clock);
  EXPECT_TRUE(l.allow("a"));
  uint64_t retry = 0;
  EXPECT_FALSE(l.allow("a", &retry));
  EXPECT_EQ(retry, 1u);
  ClientRateLimiter zero_burst(/*rate=*/3, /*burst=*/0, clock);  // burst defaults to the rate
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(zero_burst.allow("a"));
  EXPECT_FALSE(zero_burst.allow("a"));
}

TEST(ClientRateLimiter, TableStaysBoundedUnderManyAddresses) {
  FakeClock clock;
  ClientRateLimiter l(/*rate=*/1, /*burst=*/1, clock, /*max_clients=*/160);
  for (int i = 0; i < 10'000; ++i) l.allow("198.51." + std::to_string(i / 256) + "." +
                                           std::to_string(i % 256));
  EXPECT_LE(l.tracked_clients(), 160u);
  // A client that is still limited keeps its bucket while refilled ones are dropped.
  clock.advance_ms(10'000);
  EXPECT_TRUE(l.allow("203.0.113.5"));
  EXPECT_FALSE(l.allow("203.0.113.5"));
  EXPECT_LE(l.tracked_clients(), 160u);
}

}  // namespace
}  // namespace capi_relay
