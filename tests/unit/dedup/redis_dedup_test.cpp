// The Redis dedup backend against a real redis-server started on a free loopback port.
#include "capi_relay/dedup/redis_dedup.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "../../../src/dedup/redis_connection.hpp"
#include "capi_relay/config/config.hpp"
#include "capi_relay/dedup/local_dedup.hpp"
#include "capi_relay/dedup/open_dedup.hpp"
#include "fakes/relay_process.hpp"
#include "capi_relay/dedup/shared_rate_budget.hpp"
#include "capi_relay/metrics/registry.hpp"

namespace capi_relay {
namespace {

namespace fs = std::filesystem;
using dedup_detail::parse_redis_url;
using dedup_detail::RedisConnection;
using dedup_detail::RedisReply;

constexpr int64_t kWindowMs = 7ll * 24 * 3600 * 1000;

bool have_redis_server() { return std::system("command -v redis-server >/dev/null 2>&1") == 0; }

using testing::free_port;  // tests/fakes/relay_process

// A redis-server child process on 127.0.0.1:port, without persistence.
class RedisServer {
 public:
  explicit RedisServer(uint16_t port, std::string password = {}) : port_(port), password_(std::move(password)) {}
  ~RedisServer() { stop(); }
  bool start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      const std::string port = std::to_string(port_);
      if (password_.empty()) {
        ::execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--daemonize", "no", nullptr);
      } else {
        ::execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--daemonize", "no", "--requirepass",
                 password_.c_str(), nullptr);
      }
      ::_exit(127);
    }
    // Ready when it answers PING (or NOAUTH, which is an answer too).
    RedisConnection c({"127.0.0.1", port_, 0, "", password_}, 200, 500);
    for (int i = 0; i < 250; ++i) {
      std::vector<RedisReply> r;
      c.command({"PING"});
      if (c.exec(r)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  uint16_t port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }

 private:
  uint16_t port_;
  std::string password_;
  pid_t pid_ = -1;
};

class RedisDedupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_redis_server()) GTEST_SKIP() << "redis-server not installed";
    server_ = std::make_unique<RedisServer>(free_port());
    ASSERT_TRUE(server_->start());
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("redis_dedup_test_" + std::to_string(getpid()) + "_" + info->name());
    fs::remove_all(dir_);
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }

  RedisDedupOptions options(const std::string& instance) const {
    RedisDedupOptions o;
    o.url = server_->url();
    o.instance_id = instance;
    o.window_ms = kWindowMs;
    o.connect_timeout_ms = 300;
    o.io_timeout_ms = 500;
    o.retry_after_ms = 3000;
    return o;
  }
  std::unique_ptr<DedupStore> open(const RedisDedupOptions& o, std::unique_ptr<DedupStore> fallback = nullptr,
                                   metrics::RelayMetrics* m = nullptr) {
    auto r = open_redis_dedup(o, clock_, std::move(fallback), m);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error());
    return r.ok() ? std::move(*r) : nullptr;
  }
  std::unique_ptr<DedupStore> open_local() {
    LocalDedupOptions lo;
    lo.dir = dir_ / "dedup";
    lo.window_ms = kWindowMs;
    auto r = open_local_dedup(lo, clock_);
    EXPECT_TRUE(r.ok());
    return std::move(*r);
  }
  ClaimResult claim_one(DedupStore& d, uint64_t key) {
    ClaimResult out = ClaimResult::kUnavailable;
    d.claim(std::span<const uint64_t>(&key, 1), std::span<ClaimResult>(&out, 1), clock_.now_ms());
    return out;
  }
  // A raw command on a separate connection (to inspect or tamper with keys).
  RedisReply raw(std::initializer_list<std::string_view> args) {
    RedisConnection c({"127.0.0.1", server_->port(), 0, "", ""}, 500, 1000);
    c.command(args);
    std::vector<RedisReply> r;
    EXPECT_TRUE(c.exec(r).ok());
    return r.empty() ? RedisReply{} : r[0];
  }
  static std::string key(uint64_t fp) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "capi:dedup:%016llx", static_cast<unsigned long long>(fp));
    return buf;
  }

  FakeClock clock_;
  std::unique_ptr<RedisServer> server_;
  fs::path dir_;
};

TEST(RedisUrl, ParsesHostPortDbAndPassword) {
  auto a = parse_redis_url("redis://127.0.0.1:6380/2");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 6380);
  EXPECT_EQ(a->db, 2);
  EXPECT_TRUE(a->password.empty());
  auto b = parse_redis_url("redis://:s3cret@localhost/1");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "localhost");
  EXPECT_EQ(b->port, 6379);
  EXPECT_EQ(b->db, 1);
  EXPECT_EQ(b->password, "s3cret");
  EXPECT_TRUE(b->user.empty());
  auto c = parse_redis_url("redis://app:pw@[::1]:7000");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->port, 7000);
  EXPECT_EQ(c->user, "app");
  EXPECT_EQ(c->password, "pw");
  EXPECT_EQ(c->db, 0);
  EXPECT_FALSE(parse_redis_url("http://127.0.0.1:6379").ok());
  EXPECT_FALSE(parse_redis_url("redis://127.0.0.1:0").ok());
  EXPECT_FALSE(parse_redis_url("redis://127.0.0.1:6379/x").ok());
  EXPECT_FALSE(parse_redis_url("redis:///0").ok());
}

TEST(RedisDedupOpen, RejectsBadOptions) {
  FakeClock clock;
  RedisDedupOptions o;
  o.instance_id = "";
  EXPECT_FALSE(open_redis_dedup(o, clock, nullptr, nullptr).ok());
  o.instance_id = "a";
  o.url = "redis//x";
  EXPECT_FALSE(open_redis_dedup(o, clock, nullptr, nullptr).ok());
}

TEST_F(RedisDedupTest, ConnectionPipelinesAndAuthenticates) {
  RedisServer secured(free_port(), "pw-123");
  ASSERT_TRUE(secured.start());
  auto ep = parse_redis_url("redis://:pw-123@127.0.0.1:" + std::to_string(secured.port()) + "/3");
  ASSERT_TRUE(ep.ok());
  RedisConnection c(*ep, 500, 1000);
  c.command({"SET", "k", "v"});
  c.command({"GET", "k"});
  c.command({"GET", "missing"});
  c.command({"MGET", "k", "missing"});
  std::vector<RedisReply> r;
  ASSERT_TRUE(c.exec(r).ok());
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].str, "OK");
  EXPECT_EQ(r[1].str, "v");
  EXPECT_EQ(r[2].type, RedisReply::Type::kNil);
  ASSERT_EQ(r[3].elements.size(), 2u);
  EXPECT_EQ(r[3].elements[0].str, "v");
  EXPECT_EQ(r[3].elements[1].type, RedisReply::Type::kNil);
  // The key went to db 3.
  RedisConnection db0({"127.0.0.1", secured.port(), 0, "", "pw-123"}, 500, 1000);
  db0.command({"EXISTS", "k"});
  ASSERT_TRUE(db0.exec(r).ok());
  EXPECT_EQ(r[0].integer, 0);
  // A wrong password is a connect error.
  RedisConnection bad({"127.0.0.1", secured.port(), 0, "", "nope"}, 500, 1000);
  bad.command({"PING"});
  auto e = bad.exec(r);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().find("nope"), std::string::npos);
}

TEST_F(RedisDedupTest, ClaimCommitThenDuplicateEverywhere) {
  auto a = open(options("relay-a"));
  auto b = open(options("relay-b"));
  std::vector<uint64_t> keys = {11, 12, 11};
  std::vector<ClaimResult> out(3);
  a->claim(keys, out, clock_.now_ms());
  EXPECT_EQ(out[0], ClaimResult::kClaimed);
  EXPECT_EQ(out[1], ClaimResult::kClaimed);
  EXPECT_EQ(out[2], ClaimResult::kDuplicate);  // same key earlier in the span
  EXPECT_EQ(raw({"GET", key(11)}).str, "relay-a:p");
  EXPECT_LE(raw({"PTTL", key(11)}).integer, kRedisClaimLeaseMs);
  // Pending under this store's own unfinished claim: duplicate (shares the claim's fate).
  EXPECT_EQ(claim_one(*a, 12), ClaimResult::kDuplicate);
  std::vector<uint64_t> claimed = {11, 12};
  a->commit(claimed, clock_.now_ms());
  EXPECT_EQ(raw({"GET", key(11)}).str, "c");
  EXPECT_GT(raw({"PTTL", key(11)}).integer, kWindowMs - 60'000);
  EXPECT_EQ(claim_one(*a, 11), ClaimResult::kDuplicate);
  EXPECT_EQ(claim_one(*b, 12), ClaimResult::kDuplicate);
  EXPECT_EQ(claim_one(*b, 13), ClaimResult::kClaimed);
  ASSERT_TRUE(b->flush().ok());
  EXPECT_EQ(b->size(), 3u);
}

TEST_F(RedisDedupTest, ClaimHeldByAnotherRelayIsBusyUntilCommittedOrReleased) {
  auto a = open(options("relay-a"));
  auto b = open(options("relay-b"));
  EXPECT_EQ(claim_one(*a, 21), ClaimResult::kClaimed);
  EXPECT_EQ(claim_one(*b, 21), ClaimResult::kBusy);
  EXPECT_EQ(claim_one(*b, 21), ClaimResult::kBusy);
  std::vector<uint64_t> k = {21};
  a->commit(k, clock_.now_ms());
  EXPECT_EQ(claim_one(*b, 21), ClaimResult::kDuplicate);

  EXPECT_EQ(claim_one(*a, 22), ClaimResult::kClaimed);
  EXPECT_EQ(claim_one(*b, 22), ClaimResult::kBusy);
  k = {22};
  a->release(k);  // a's write failed
  EXPECT_EQ(claim_one(*b, 22), ClaimResult::kClaimed);
}

TEST_F(RedisDedupTest, ReleaseDeletesCommittedKeysButNotAnotherRelaysClaim) {
  auto a = open(options("relay-a"));
  auto b = open(options("relay-b"));
  std::vector<uint64_t> k = {31};
  EXPECT_EQ(claim_one(*a, 31), ClaimResult::kClaimed);
  a->commit(k, clock_.now_ms());
  a->release(k);  // dead-lettered: a corrected resend must be accepted
  EXPECT_EQ(raw({"EXISTS", key(31)}).integer, 0);
  EXPECT_EQ(claim_one(*b, 31), ClaimResult::kClaimed);
  a->release(k);  // b's pending claim is not a's to delete
  EXPECT_EQ(raw({"GET", key(31)}).str, "relay-b:p");
}

TEST_F(RedisDedupTest, PendingClaimExpiresAfterTheLease) {
  auto o = options("relay-a");
  o.lease_ms = 150;
  auto a = open(o);  // a "crashes" after claiming: never commits
  auto b = open(options("relay-b"));
  EXPECT_EQ(claim_one(*a, 41), ClaimResult::kClaimed);
  EXPECT_EQ(claim_one(*b, 41), ClaimResult::kBusy);
  // Redis expires the key in real time; poll for it (bounded).
  ClaimResult r = ClaimResult::kBusy;
  for (int i = 0; i < 100 && r == ClaimResult::kBusy; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    r = claim_one(*b, 41);
  }
  EXPECT_EQ(r, ClaimResult::kClaimed);
}

TEST_F(RedisDedupTest, StaleClaimOfThisInstanceIsTakenOver) {
  // A claim whose reply was lost leaves our pending value behind; it is not a duplicate.
  auto a = open(options("relay-a"));
  raw({"SET", key(51), "relay-a:p", "PX", "30000"});
  EXPECT_EQ(claim_one(*a, 51), ClaimResult::kClaimed);
  raw({"SET", key(52), "relay-z:p", "PX", "30000"});
  EXPECT_EQ(claim_one(*a, 52), ClaimResult::kBusy);
}

TEST_F(RedisDedupTest, RecoverAddsCommittedKeysWithTheRestOfTheWindow) {
  auto a = open(options("relay-a"));
  const int64_t now = clock_.now_ms();
  a->recover(61, now - 24ll * 3600 * 1000);  // a day into the window
  a->recover(62, now - kWindowMs - 1);        // expired: ignored
  raw({"SET", key(63), "relay-b:p", "PX", "30000"});
  a->recover(63, now);                        // NX: another relay's claim is kept
  ASSERT_TRUE(a->flush().ok());               // sends buffered recoveries
  EXPECT_EQ(raw({"GET", key(61)}).str, "c");
  const int64_t ttl = raw({"PTTL", key(61)}).integer;
  EXPECT_LE(ttl, kWindowMs - 24ll * 3600 * 1000);
  EXPECT_GT(ttl, kWindowMs - 24ll * 3600 * 1000 - 60'000);
  EXPECT_EQ(raw({"EXISTS", key(62)}).integer, 0);
  EXPECT_EQ(raw({"GET", key(63)}).str, "relay-b:p");
  EXPECT_EQ(claim_one(*a, 61), ClaimResult::kDuplicate);
}

TEST_F(RedisDedupTest, FallsBackToLocalWhenRedisIsDownAndCatchesUpAfter) {
  metrics::Registry registry;
  metrics::RelayMetrics m(registry);
  auto a = open(options("relay-a"), open_local(), &m);
  std::vector<uint64_t> k = {71};
  EXPECT_EQ(claim_one(*a, 71), ClaimResult::kClaimed);
  a->commit(k, clock_.now_ms());  // mirrored into the local store
  const uint16_t port = server_->port();
  server_->stop();

  EXPECT_EQ(claim_one(*a, 71), ClaimResult::kDuplicate);  // the local store knows it
  EXPECT_EQ(claim_one(*a, 72), ClaimResult::kClaimed);
  EXPECT_EQ(claim_one(*a, 72), ClaimResult::kDuplicate);
  EXPECT_EQ(m.dedup_redis_fallbacks.value(), 2u);
  EXPECT_GE(m.dedup_redis_errors.value(), 1u);
  const uint64_t errors = m.dedup_redis_errors.value();
  k = {72};
  a->commit(k, clock_.now_ms());  // owed to Redis
  EXPECT_EQ(claim_one(*a, 73), ClaimResult::kClaimed);  // still in the retry pause: no new attempt
  EXPECT_EQ(m.dedup_redis_errors.value(), errors);

  server_ = std::make_unique<RedisServer>(port);
  ASSERT_TRUE(server_->start());
  clock_.advance_ms(3000);  // retry_after_ms
  ASSERT_TRUE(a->flush().ok());  // reconnects and sends the owed commit
  EXPECT_EQ(raw({"GET", key(72)}).str, "c");
  auto b = open(options("relay-b"));
  EXPECT_EQ(claim_one(*b, 72), ClaimResult::kDuplicate);
  EXPECT_EQ(claim_one(*a, 74), ClaimResult::kClaimed);
  EXPECT_EQ(raw({"GET", key(74)}).str, "relay-a:p");
  EXPECT_EQ(m.dedup_redis_fallbacks.value(), 3u);
}

TEST_F(RedisDedupTest, RejectModeAnswersUnavailableWhileRedisIsDown) {
  metrics::Registry registry;
  metrics::RelayMetrics m(registry);
  auto a = open(options("relay-a"), nullptr, &m);
  const uint16_t port = server_->port();
  server_->stop();
  std::vector<uint64_t> keys = {81, 82};
  std::vector<ClaimResult> out(2);
  a->claim(keys, out, clock_.now_ms());
  EXPECT_EQ(out[0], ClaimResult::kUnavailable);
  EXPECT_EQ(out[1], ClaimResult::kUnavailable);
  EXPECT_EQ(m.dedup_redis_fallbacks.value(), 0u);
  EXPECT_GE(m.dedup_redis_errors.value(), 1u);
  server_ = std::make_unique<RedisServer>(port);
  ASSERT_TRUE(server_->start());
  EXPECT_EQ(claim_one(*a, 81), ClaimResult::kUnavailable);  // within the retry pause
  clock_.advance_ms(3000);
  EXPECT_EQ(claim_one(*a, 81), ClaimResult::kClaimed);  // nothing was held for it
}

TEST_F(RedisDedupTest, ReconnectsAfterARedisRestart) {
  auto a = open(options("relay-a"));
  EXPECT_EQ(claim_one(*a, 91), ClaimResult::kClaimed);
  const uint16_t port = server_->port();
  server_->stop();
  server_ = std::make_unique<RedisServer>(port);
  ASSERT_TRUE(server_->start());
  // The old connection is dead; the store reconnects within the same call.
  EXPECT_EQ(claim_one(*a, 92), ClaimResult::kClaimed);
}

TEST_F(RedisDedupTest, OpenDedupChoosesTheBackendFromTheConfig) {
  Config c;
  c.spool.dir = dir_;
  FixedRandom random;
  auto local = open_dedup(c, clock_, random, nullptr);
  ASSERT_TRUE(local.ok()) << local.error();
  EXPECT_TRUE(local_dedup_stats(**local).has_value());
  c.dedup.backend = DedupBackend::kRedis;
  c.dedup.redis_url = server_->url();
  auto r1 = open_dedup(c, clock_, random, nullptr);
  auto r2 = open_dedup(c, clock_, random, nullptr);
  ASSERT_TRUE(r1.ok()) << r1.error();
  ASSERT_TRUE(r2.ok());
  EXPECT_FALSE(local_dedup_stats(**r1).has_value());
  EXPECT_EQ(claim_one(**r1, 101), ClaimResult::kClaimed);
  EXPECT_EQ(claim_one(**r2, 101), ClaimResult::kBusy);  // distinct instance ids
  c.dedup.redis_url = "redis://127.0.0.1";
  c.dedup.redis_unavailable = RedisUnavailable::kReject;
  EXPECT_TRUE(open_dedup(c, clock_, random, nullptr).ok());
  c.dedup.redis_url = "nope";
  EXPECT_FALSE(open_dedup(c, clock_, random, nullptr).ok());
}

TEST_F(RedisDedupTest, SharedRateBudgetIsOneBudgetForEveryRelay) {
  clock_.set_now_ms(1764320000000 - 1764320000000 % 86'400'000 + 3'600'000 + 5'000);  // 01:00:05 UTC
  SharedRateBudgetOptions o;
  o.url = server_->url();
  o.per_minute = 3;
  o.per_day = 5;
  auto a = open_shared_rate_budget(o, clock_);
  auto b = open_shared_rate_budget(o, clock_);
  ASSERT_TRUE(a.ok() && b.ok());
  auto take = [](SharedRateBudget& s) {
    auto r = s.try_acquire();
    EXPECT_TRUE(r.ok()) << r.error();
    return r.ok() ? *r : -1;
  };
  EXPECT_EQ(take(**a), 0);
  EXPECT_EQ(take(**b), 0);
  EXPECT_EQ(take(**a), 0);
  EXPECT_EQ(take(**b), 55'000);  // the minute's 3 are used, by both relays together
  EXPECT_EQ(take(**a), 55'000);
  clock_.advance_ms(55'000);      // next minute
  EXPECT_EQ(take(**b), 0);
  EXPECT_EQ(take(**a), 0);
  EXPECT_EQ(take(**a), 23ll * 3600 * 1000 - 60'000);  // the day's 5 are used: wait for 00:00 UTC
  clock_.advance_ms(23ll * 3600 * 1000 - 60'000);
  EXPECT_EQ(take(**a), 0);
  // Redis gone: an error (the uploader falls back to its local limiter), no retry for a while.
  server_->stop();
  auto down = (*a)->try_acquire();
  EXPECT_FALSE(down.ok());
  EXPECT_FALSE((*a)->try_acquire().ok());
}

}  // namespace
}  // namespace capi_relay
