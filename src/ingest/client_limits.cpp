#include "capi_relay/ingest/client_limits.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <functional>

namespace capi_relay {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Parses a textual address into 16 bytes; IPv4 and IPv4-mapped IPv6 give v6=false with the
// address in bytes[0..4).
bool parse_address(std::string_view text, bool& v6, std::array<uint8_t, 16>& bytes) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof buf) return false;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  bytes.fill(0);
  if (inet_pton(AF_INET, buf, bytes.data()) == 1) {
    v6 = false;
    return true;
  }
  std::array<uint8_t, 16> a{};
  if (inet_pton(AF_INET6, buf, a.data()) != 1) return false;
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(a.data(), kMapped, 12) == 0) {
    v6 = false;
    std::memcpy(bytes.data(), a.data() + 12, 4);
    return true;
  }
  v6 = true;
  bytes = a;
  return true;
}

// Strips a port from an X-Forwarded-For entry: "[v6]:port" -> "v6", "a.b.c.d:port" -> "a.b.c.d".
std::string_view strip_port(std::string_view s) {
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    return close == std::string_view::npos ? std::string_view{} : s.substr(1, close - 1);
  }
  auto colon = s.find(':');
  if (colon != std::string_view::npos && s.find(':', colon + 1) == std::string_view::npos)
    return s.substr(0, colon);  // exactly one colon: IPv4 with a port
  return s;
}

// Canonical text of an address (IPv4-mapped IPv6 as IPv4); empty when not an address.
std::string canonical(std::string_view text) {
  bool v6 = false;
  std::array<uint8_t, 16> b{};
  if (!parse_address(text, v6, b)) return {};
  char out[INET6_ADDRSTRLEN];
  if (inet_ntop(v6 ? AF_INET6 : AF_INET, b.data(), out, sizeof out) == nullptr) return {};
  return out;
}

bool trusted(std::string_view address, const std::vector<IpNetwork>& nets) {
  return std::any_of(nets.begin(), nets.end(),
                     [&](const IpNetwork& n) { return n.contains(address); });
}

}  // namespace

bool IpNetwork::parse(std::string_view text, IpNetwork& out) {
  text = trim(text);
  auto slash = text.find('/');
  std::string_view addr = text.substr(0, slash);
  IpNetwork n;
  if (!parse_address(addr, n.v6_, n.bytes_)) return false;
  const unsigned max_prefix = n.v6_ ? 128 : 32;
  n.prefix_ = max_prefix;
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    unsigned v = 0;
    auto r = std::from_chars(p.data(), p.data() + p.size(), v);
    if (p.empty() || r.ec != std::errc{} || r.ptr != p.data() + p.size() || v > max_prefix)
      return false;
    n.prefix_ = v;
  }
  out = n;
  return true;
}

bool IpNetwork::contains(std::string_view address) const {
  bool v6 = false;
  std::array<uint8_t, 16> b{};
  if (!parse_address(address, v6, b) || v6 != v6_) return false;
  unsigned full = prefix_ / 8, rest = prefix_ % 8;
  if (std::memcmp(b.data(), bytes_.data(), full) != 0) return false;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xFF << (8 - rest));
  return (b[full] & mask) == (bytes_[full] & mask);
}

bool parse_networks(const std::vector<std::string>& texts, std::vector<IpNetwork>& out,
                    std::string* bad) {
  out.clear();
  for (const auto& t : texts) {
    IpNetwork n;
    if (!IpNetwork::parse(t, n)) {
      if (bad) *bad = t;
      return false;
    }
    out.push_back(n);
  }
  return true;
}

std::string client_address(std::string_view peer, std::string_view x_forwarded_for,
                           const std::vector<IpNetwork>& trusted_proxies) {
  std::string current = canonical(peer);
  if (current.empty()) current = std::string(peer);
  if (trusted_proxies.empty() || !trusted(current, trusted_proxies)) return current;
  // Walk X-Forwarded-For from the right: each entry is the address the hop to its right saw.
  std::string_view rest = x_forwarded_for;
  while (!rest.empty()) {
    auto comma = rest.rfind(',');
    std::string_view entry =
        strip_port(trim(comma == std::string_view::npos ? rest : rest.substr(comma + 1)));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(0, comma);
    std::string addr = canonical(entry);
    if (addr.empty()) break;  // malformed: stop at the last hop we can vouch for
    current = std::move(addr);
    if (!trusted(current, trusted_proxies)) break;
  }
  return current;
}

ClientRateLimiter::ClientRateLimiter(uint64_t rate, uint64_t burst, Clock& clock,
                                     size_t max_clients)
    : rate_(static_cast<double>(rate)),
      burst_(static_cast<double>(burst > 0 ? burst : std::max<uint64_t>(rate, 1))),
      clock_(clock),
      max_per_shard_(std::max<size_t>(1, max_clients / kShards)) {}

void ClientRateLimiter::sweep(Shard& shard, int64_t now_ms) {
  // A bucket that has refilled completely is the same as no bucket at all.
  std::erase_if(shard.buckets, [&](const auto& kv) {
    const double refilled =
        kv.second.tokens + static_cast<double>(now_ms - kv.second.updated_ms) * rate_ / 1000.0;
    return refilled >= burst_;
  });
  if (shard.buckets.size() >= max_per_shard_) shard.buckets.clear();  // fail open, bounded
}

bool ClientRateLimiter::allow(std::string_view client, uint64_t* retry_after_s) {
  if (rate_ <= 0) return true;
  const int64_t now = clock_.steady_ms();
  Shard& shard = shards_[std::hash<std::string_view>{}(client) % kShards];
  std::lock_guard lock(shard.mu);
  auto it = shard.buckets.find(std::string(client));
  if (it == shard.buckets.end()) {
    if (shard.buckets.size() >= max_per_shard_) sweep(shard, now);
    it = shard.buckets.emplace(std::string(client), Bucket{burst_, now}).first;
  }
  Bucket& b = it->second;
  b.tokens = std::min(burst_, b.tokens + static_cast<double>(now - b.updated_ms) * rate_ / 1000.0);
  b.updated_ms = now;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return true;
  }
  if (retry_after_s) {
    const double wait_s = (1.0 - b.tokens) / rate_;
    *retry_after_s = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(wait_s)));
  }
  return false;
}

size_t ClientRateLimiter::tracked_clients() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.buckets.size();
  }
  return n;
}

}  // namespace capi_relay
