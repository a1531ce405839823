#pragma once
// RedisConnection (private to src/dedup): a small blocking RESP2 client over one POSIX TCP socket,
// for the Redis dedup backend (and, later, the shared rate-limit budget).
//
// Commands are appended to an outgoing buffer (begin_command + arg) and sent together by exec(),
// which then reads one reply per command: a pipeline costs one round trip. The connection is
// opened lazily by exec() (connect timeout; then AUTH and SELECT per the URL) and reused across
// calls. Every read and write has a deadline (io timeout). Any I/O or protocol error closes the
// socket; the next exec() reconnects. A Redis error reply (-ERR ...) is a reply, not an exec()
// error.
//
// Not thread-safe: the owner serializes calls (RedisDedup holds a mutex).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "capi_relay/common/result.hpp"

namespace capi_relay::dedup_detail {

// redis://[[user]:password@]host[:port][/db]  (IPv6 hosts in brackets). Defaults: port 6379, db 0.
struct RedisEndpoint {
  std::string host;
  uint16_t port = 6379;
  int db = 0;
  std::string user;      // empty: AUTH <password> (requirepass)
  std::string password;  // secret: never logged; empty: no AUTH
};
Result<RedisEndpoint> parse_redis_url(std::string_view url);

struct RedisReply {
  enum class Type : uint8_t { kStatus, kError, kInteger, kBulk, kNil, kArray };
  Type type = Type::kNil;
  std::string str;  // status, error and bulk text
  int64_t integer = 0;
  std::vector<RedisReply> elements;  // arrays
  bool is_error() const { return type == Type::kError; }
};

class RedisConnection {
 public:
  RedisConnection(RedisEndpoint endpoint, int connect_timeout_ms, int io_timeout_ms);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Command building: begin_command(n) then exactly n arg() calls.
  void begin_command(size_t argc);
  void arg(std::string_view a);
  void arg(int64_t v);
  void command(std::initializer_list<std::string_view> args);
  size_t pending_commands() const { return pending_; }
  // Discards commands appended but not sent.
  void discard();

  // Connects if needed, sends every appended command and reads one reply each into `replies`
  // (resized). The outgoing buffer is cleared either way. Errors: connect/auth/select failures,
  // timeouts, a closed connection, a malformed reply; the socket is closed afterwards.
  Result<void> exec(std::vector<RedisReply>& replies);
  bool connected() const { return fd_ >= 0; }
  void close();

 private:
  Result<void> connect_and_handshake();
  Result<void> send_all(std::string_view data, int64_t deadline_ms);
  Result<void> read_reply(RedisReply& out, int64_t deadline_ms);
  Result<void> fill(int64_t deadline_ms);  // reads more bytes into in_

  RedisEndpoint endpoint_;
  int connect_timeout_ms_;
  int io_timeout_ms_;
  int fd_ = -1;
  std::string out_;  // commands not yet sent
  size_t pending_ = 0;
  std::string in_;   // bytes received, not yet parsed from in_pos_
  size_t in_pos_ = 0;
};

}  // namespace capi_relay::dedup_detail
