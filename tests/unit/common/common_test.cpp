#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>

#include "capi_relay/common/files.hpp"
#include "capi_relay/common/hash.hpp"
#include "capi_relay/common/json_text.hpp"

namespace capi_relay {
namespace {

TEST(Hash, Sha256KnownVector) {
  EXPECT_EQ(sha256_hex("email@email.com"),
            "f3273dd18d95bc19d51d3e6356e4a679e6f13824497272a270e7bb540b0abb9d");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Hash, Crc32cKnownVector) {
  // Standard check value of CRC-32C for "123456789".
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32c("", 0), 0u);
}

TEST(JsonText, EscapesControlQuotesAndInvalidUtf8) {
  EXPECT_EQ(json_string("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
  EXPECT_EQ(json_string("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(json_string("bad\xff"), "\"bad\\ufffd\"");
}

TEST(Files, AtomicWriteIsPrivateAndLockIsExclusive) {
  char tmpl[] = "/tmp/capi-common-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::filesystem::path dir(tmpl);
  ASSERT_TRUE(write_file_atomic(dir / "f.json", "{}").ok());
  struct stat st{};
  ASSERT_EQ(stat((dir / "f.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto content = read_file(dir / "f.json");
  ASSERT_TRUE(content.ok());
  EXPECT_EQ(content.value(), "{}");
  auto lock = DirLock::acquire(dir);
  ASSERT_TRUE(lock.ok());
  auto second = DirLock::acquire(dir);
  EXPECT_FALSE(second.ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace capi_relay

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "capi_relay/common/log.hpp"

namespace capi_relay {
namespace {

// Captures what the logger writes to stderr while `fn` runs.
template <class Fn>
std::string capture_stderr(Fn fn) {
  char path[] = "/tmp/capi-log-XXXXXX";
  int fd = mkstemp(path);
  fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  fn();
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(fd);
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  unlink(path);
  return ss.str();
}

TEST(Log, JsonLinesAndRepeatedWarningsAreRateLimited) {
  log::configure(log::Level::kInfo, log::Format::kJson);
  std::string out = capture_stderr([] {
    log::debug("test", "hidden");
    log::info("test", "hello", {{"count", "3"}, {"quote", "a\"b"}});
    for (int i = 0; i < 25; ++i) log::warn("test", "upstream refused", {{"status", "503"}});
  });
  std::istringstream in(out);
  std::string line;
  int lines = 0, refused = 0;
  while (std::getline(in, line)) {
    ++lines;
    EXPECT_EQ(line.front(), '{');
    EXPECT_EQ(line.back(), '}');
    if (line.find("upstream refused") != std::string::npos) ++refused;
  }
  EXPECT_EQ(out.find("hidden"), std::string::npos);
  EXPECT_NE(out.find("\"msg\":\"hello\",\"count\":\"3\",\"quote\":\"a\\\"b\""), std::string::npos) << out;
  EXPECT_EQ(refused, 10);  // the burst; the other 15 are suppressed within the window
  EXPECT_EQ(lines, 11);
}

}  // namespace
}  // namespace capi_relay

#include <set>
#include <thread>

#include "capi_relay/common/bounded_queue.hpp"

namespace capi_relay {
namespace {

TEST(BoundedQueue, RefusesWhenFullAndKeepsFifoOrder) {
  BoundedQueue<int> q(4);
  for (int i = 0; i < 4; ++i) {
    int v = i;
    EXPECT_TRUE(q.try_push(v));
  }
  int extra = 99;
  EXPECT_FALSE(q.try_push(extra));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(*q.try_pop(), i);
  EXPECT_FALSE(q.try_pop().has_value());
}

TEST(BoundedQueue, ManyProducersOneParkingConsumerLoseNothing) {
  BoundedQueue<uint64_t> q(64);
  constexpr int kProducers = 4;
  constexpr uint64_t kEach = 20000;
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&q, p] {
      for (uint64_t i = 0; i < kEach; ++i) {
        uint64_t v = static_cast<uint64_t>(p) * kEach + i;
        while (!q.try_push(v)) std::this_thread::yield();
      }
    });
  }
  std::set<uint64_t> seen;
  std::vector<uint64_t> last(kProducers, 0);
  bool ordered = true;
  while (seen.size() < kProducers * kEach) {
    if (auto v = q.try_pop()) {
      uint64_t producer = *v / kEach;
      if (*v % kEach != 0 && *v <= last[producer]) ordered = false;  // per-producer FIFO
      last[producer] = *v;
      seen.insert(*v);
    } else {
      q.wait_for(std::chrono::milliseconds(5));
    }
  }
  for (auto& t : producers) t.join();
  EXPECT_EQ(seen.size(), kProducers * kEach);
  EXPECT_TRUE(ordered);
  EXPECT_FALSE(q.try_pop().has_value());
}

}  // namespace
}  // namespace capi_relay
