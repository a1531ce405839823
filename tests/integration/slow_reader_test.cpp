// Answers are written at once when they fit the socket's send buffer and asynchronously when they
// do not: a client that reads slowly through a tiny receive buffer still gets every byte of every
// pipelined answer, and the single I/O thread keeps serving other clients meanwhile.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "fakes/relay_process.hpp"

namespace capi_relay {
namespace {

using testing::RelayProcess;

std::string slow_relay_yaml() {
  return "server:\n  listen: 127.0.0.1:0\n  io_threads: 1\n"
         "admin:\n  listen: 127.0.0.1:0\n"
         "spool:\n  dir: ./data\n"
         "linkedin:\n  dry_run: true\n"
         "conversions:\n  purchase: urn:lla:llaPartnerConversion:123\n";
}

// A loopback connection with a 2 KiB receive buffer, so answers of a few KiB fill it.
class SlowReader {
 public:
  explicit SlowReader(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int small = 2048;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~SlowReader() { ::close(fd_); }
  bool connected() const { return connected_; }
  bool send(const std::string& s) {
    return ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
  }
  // Reads `count` whole HTTP responses (Content-Length framed); returns their bodies.
  std::vector<std::string> read_responses(size_t count) {
    std::vector<std::string> bodies;
    while (bodies.size() < count) {
      const size_t head_end = buf_.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        const size_t cl = buf_.find("Content-Length: ");
        if (cl == std::string::npos || cl > head_end) break;  // not framed as expected
        const size_t len = std::stoul(buf_.substr(cl + 16));
        if (buf_.size() >= head_end + 4 + len) {
          bodies.push_back(buf_.substr(head_end + 4, len));
          buf_.erase(0, head_end + 4 + len);
          continue;
        }
      }
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) break;
      buf_.append(chunk, static_cast<size_t>(n));
    }
    return bodies;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

TEST(SlowReader, LargeAnswersArriveWholeWhileOtherClientsAreServed) {
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(slow_relay_yaml(), &err)) << err;
  const std::string metrics = relay.admin_get("/metrics").body;
  ASSERT_GT(metrics.size(), 4096u);

  // Three pipelined /metrics requests, then no reading for a while: the answers (each larger
  // than the receive buffer) pile up in the relay.
  SlowReader admin(relay.admin_port());
  ASSERT_TRUE(admin.connected());
  ASSERT_TRUE(admin.send("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"
                         "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"
                         "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"));

  // An ingest answer larger than the buffers: 2,000 rejected events, each listed with its reason.
  std::string body = "[";
  for (int i = 0; i < 2000; ++i) body += std::string(i ? "," : "") + R"({"event":"unknown"})";
  body += "]";
  SlowReader ingest(relay.ingest_port());
  ASSERT_TRUE(ingest.connected());
  ASSERT_TRUE(ingest.send("POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                          "Content-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  // Meanwhile the one I/O thread answers others at once.
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(relay.admin_get("/healthz").status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));

  const auto answers = admin.read_responses(3);
  ASSERT_EQ(answers.size(), 3u);
  for (const auto& a : answers) {
    EXPECT_GT(a.size(), 4096u);
    EXPECT_NE(a.find("capi_relay_events_received_total"), std::string::npos);
    EXPECT_EQ(a.back(), '\n');  // exposition text ends with a newline: nothing cut
  }
  const auto rejected = ingest.read_responses(1);
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_GT(rejected[0].size(), 2048u * 8);
  EXPECT_NE(rejected[0].find(R"({"index":1999,"error":"unknown_event)"), std::string::npos);
  EXPECT_EQ(rejected[0].back(), '}');
}

}  // namespace
}  // namespace capi_relay
