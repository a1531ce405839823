#pragma once
// Per-client request limits for the ingest listener (server.per_client_rate / per_client_burst),
// and how the client's address is determined (server.trusted_proxies).
//
// ClientRateLimiter owns one token bucket per client address: `rate` tokens per second, at most
// `burst` banked; a request takes one token, and a client with none left is answered 429 with
// Retry-After. The table is bounded: when it holds `max_clients` addresses, buckets that have
// refilled completely (indistinguishable from a new client) are dropped; if every bucket is still
// in use the shard is cleared (fail open), so a flood of distinct addresses costs bounded memory
// and can never lock out a well-behaved client. Time comes from the injected Clock (steady_ms).
//
// Threading: allow() may be called from any I/O thread; the table is split into shards, each
// with its own mutex, so threads rarely contend.
//
// client_address(): the peer address, unless the peer is listed in trusted_proxies; then the
// right-most address of X-Forwarded-For that is not itself a trusted proxy (the last hop a
// trusted proxy saw). Malformed header entries stop the walk: the last good address is used.
#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "capi_relay/common/clock.hpp"

namespace capi_relay {

// An IP network (address + prefix length) parsed from "10.0.0.0/8", "::1" or "192.0.2.7".
class IpNetwork {
 public:
  // False when `text` is not an IPv4/IPv6 address with an optional /prefix in range.
  static bool parse(std::string_view text, IpNetwork& out);
  // True when `address` (textual IPv4/IPv6; IPv4-mapped IPv6 counts as IPv4) lies in the network.
  bool contains(std::string_view address) const;

 private:
  bool v6_ = false;
  unsigned prefix_ = 0;
  std::array<uint8_t, 16> bytes_{};
};

// Parses each entry of `texts`; false (with the bad entry in *bad) on the first malformed one.
bool parse_networks(const std::vector<std::string>& texts, std::vector<IpNetwork>& out,
                    std::string* bad = nullptr);

// The client's address for per-client limits (see the file comment).
std::string client_address(std::string_view peer, std::string_view x_forwarded_for,
                           const std::vector<IpNetwork>& trusted_proxies);

class ClientRateLimiter {
 public:
  // rate: tokens per second (0: unlimited, allow() always true); burst 0 means max(rate, 1).
  ClientRateLimiter(uint64_t rate, uint64_t burst, Clock& clock, size_t max_clients = 100'000);

  // Takes one token for `client`. True: go on. False: refuse; *retry_after_s (if given) is the
  // whole number of seconds (>= 1) until a token is available.
  bool allow(std::string_view client, uint64_t* retry_after_s = nullptr);

  bool enabled() const { return rate_ > 0; }
  size_t tracked_clients() const;  // for tests and a gauge

 private:
  static constexpr size_t kShards = 16;
  struct Bucket {
    double tokens = 0;
    int64_t updated_ms = 0;
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Bucket> buckets;
  };
  void sweep(Shard& shard, int64_t now_ms);

  const double rate_;   // tokens per second
  const double burst_;
  Clock& clock_;
  const size_t max_per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace capi_relay
