// Two real relays sharing one Redis dedup store (dedup.backend: redis) and one fake LinkedIn:
// an event posted to both is uploaded once. Also: what each dedup.redis_unavailable mode does
// when Redis cannot be reached.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "fakes/fake_linkedin.hpp"
#include "fakes/relay_config.hpp"
#include "fakes/relay_process.hpp"
#include "fakes/test_events.hpp"

namespace capi_relay::testing {
namespace {

bool have_redis_server() { return std::system("command -v redis-server >/dev/null 2>&1") == 0; }

bool port_open(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// redis-server on 127.0.0.1:<free port>, no persistence, killed with the object.
class RedisChild {
 public:
  RedisChild() : port_(free_port()) {}
  ~RedisChild() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      const std::string port = std::to_string(port_);
      ::execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--daemonize", "no", nullptr);
      ::_exit(127);
    }
    return eventually([&] { return port_open(port_); }, 5000);
  }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }

 private:
  uint16_t port_;
  pid_t pid_ = -1;
};

// This file's config: dedup in Redis at redis_url (`unavailable`: what to do when it is
// unreachable), 200 ms flushes, the relay's default retry backoff.
std::string yaml(const std::string& api_base, const std::string& redis_url,
                 const std::string& unavailable = "local") {
  RelayConfig c;
  c.api_base = api_base;
  c.dedup = "  backend: redis\n"
            "  redis_url: " + redis_url + "\n"
            "  redis_unavailable: " + unavailable + "\n";
  c.flush_interval = "200ms";
  c.initial_backoff.clear();
  c.max_backoff.clear();
  return c.yaml();
}

// The one buyer every event of this file comes from.
constexpr const char* kBuyerEmail = "buyer@example.com";

int count_of(const std::string& body, const std::string& field) {
  std::smatch m;
  if (std::regex_search(body, m, std::regex("\"" + field + "\":([0-9]+)"))) return std::stoi(m[1]);
  return -1;
}

TEST(RedisDedup, TwoRelaysSharingRedisUploadEachEventOnce) {
  if (!have_redis_server()) GTEST_SKIP() << "redis-server not installed";
  RedisChild redis;
  ASSERT_TRUE(redis.start());
  FakeLinkedIn fake;
  RelayProcess a, b;
  std::string err;
  ASSERT_TRUE(a.start(yaml(fake.base_url(), redis.url()), &err)) << err;
  ASSERT_TRUE(b.start(yaml(fake.base_url(), redis.url()), &err)) << err;

  constexpr int kEvents = 200;
  constexpr int kThreadsPerRelay = 4;
  const int64_t ts = now_ms() - 60'000;
  std::atomic<int> accepted{0}, duplicates{0}, other{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (RelayProcess* relay : {&a, &b}) {
    for (int t = 0; t < kThreadsPerRelay; ++t) {
      threads.emplace_back([&, relay, t] {
        while (!go.load()) std::this_thread::yield();
        for (int i = t; i < kEvents; i += kThreadsPerRelay) {
          auto r = relay->post_events(event_json("shared-" + std::to_string(i), kBuyerEmail, ts));
          if (r.status != 202) {
            ++other;
            continue;
          }
          accepted += count_of(r.body, "accepted");
          duplicates += count_of(r.body, "duplicates");
        }
      });
    }
  }
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(accepted.load(), kEvents);    // each accepted by exactly one relay
  EXPECT_EQ(duplicates.load(), kEvents);  // and a duplicate at the other

  ASSERT_TRUE(eventually([&] { return received_event_counts(fake).size() >= kEvents; }, 20000));
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // nothing more may come
  auto counts = received_event_counts(fake);
  EXPECT_EQ(counts.size(), static_cast<size_t>(kEvents));
  for (int i = 0; i < kEvents; ++i) {
    EXPECT_EQ(counts["shared-" + std::to_string(i)], 1) << "shared-" << i;
  }
  EXPECT_EQ(a.metric("capi_relay_dedup_redis_fallbacks_total"), 0);
  EXPECT_EQ(b.metric("capi_relay_dedup_redis_fallbacks_total"), 0);
  EXPECT_EQ(a.metric("capi_relay_events_accepted_total") +
                b.metric("capi_relay_events_accepted_total"),
            kEvents);
}

TEST(RedisDedup, UnreachableRedisFallsBackOrAnswers503PerConfig) {
  FakeLinkedIn fake;
  const std::string dead_url = "redis://127.0.0.1:" + std::to_string(free_port()) + "/0";
  const int64_t ts = now_ms() - 60'000;
  std::string err;

  RelayProcess local;
  ASSERT_TRUE(local.start(yaml(fake.base_url(), dead_url, "local"), &err)) << err;
  auto r1 = local.post_events(event_json("down-1", kBuyerEmail, ts));
  EXPECT_EQ(r1.status, 202) << r1.body;
  EXPECT_EQ(count_of(r1.body, "accepted"), 1);
  // The local store still dedups.
  auto r2 = local.post_events(event_json("down-1", kBuyerEmail, ts));
  EXPECT_EQ(r2.status, 202) << r2.body;
  EXPECT_EQ(count_of(r2.body, "duplicates"), 1);
  EXPECT_GE(local.metric("capi_relay_dedup_redis_fallbacks_total"), 1);
  EXPECT_GE(local.metric("capi_relay_dedup_redis_errors_total"), 1);

  RelayProcess reject;
  ASSERT_TRUE(reject.start(yaml(fake.base_url(), dead_url, "reject"), &err)) << err;
  auto r3 = reject.post_events(event_json("down-2", kBuyerEmail, ts));
  EXPECT_EQ(r3.status, 503) << r3.body;
  EXPECT_EQ(reject.metric("capi_relay_spool_pending_events"), 0);
  EXPECT_EQ(reject.metric("capi_relay_events_accepted_total"), 0);
}

}  // namespace
}  // namespace capi_relay::testing

namespace capi_relay::testing {
namespace {

// Two relays draw from one request budget in Redis (rate_limit.shared): together they stay within
// it, their batches grow instead, and every event is still delivered.
TEST(RedisDedup, TwoRelaysShareOneRequestBudget) {
  if (!have_redis_server()) GTEST_SKIP() << "redis-server not installed";
  RedisChild redis;
  ASSERT_TRUE(redis.start());
  FakeLinkedIn fake;
  std::string cfg = yaml(fake.base_url(), redis.url());
  cfg.replace(cfg.find("  flush_interval: 200ms\n"), 24,
              "  flush_interval: 100ms\n  rate_limit:\n    per_minute: 4\n    shared: true\n");
  RelayProcess a, b;
  std::string err;
  ASSERT_TRUE(a.start(cfg, &err)) << err;
  ASSERT_TRUE(b.start(cfg, &err)) << err;
  const int64_t ts = now_ms() - 1000;
  // 20 waves 150 ms apart to each relay: unthrottled, that is ~40 requests.
  for (int wave = 0; wave < 20; ++wave) {
    for (RelayProcess* relay : {&a, &b}) {
      std::string id = std::string(relay == &a ? "a-" : "b-") + std::to_string(wave);
      ASSERT_EQ(relay->post_events(event_json(id, kBuyerEmail, ts)).status, 202);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  const auto window_start = std::chrono::steady_clock::now();
  // Within the current minute window at most 4 requests in total (two windows if the test
  // crosses a minute boundary: at most 8 by the time everything is delivered).
  ASSERT_TRUE(eventually([&] { return received_event_counts(fake).size() >= 40; }, 75000))
      << "delivered " << received_event_counts(fake).size();
  size_t requests = 0;
  for (const auto& r : fake.requests())
    if (r.target.find("/rest/conversionEvents") != std::string::npos) ++requests;
  EXPECT_LE(requests, 8u);
  EXPECT_GE(requests, 2u);
  for (const auto& [id, n] : received_event_counts(fake)) EXPECT_EQ(n, 1) << id;
  (void)window_start;
}

}  // namespace
}  // namespace capi_relay::testing
