// RedisConnection: blocking RESP2 over a POSIX socket with poll() deadlines.
#include "redis_connection.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>

namespace capi_relay::dedup_detail {
namespace {

constexpr size_t kReadChunk = 64 * 1024;
constexpr int kMaxDepth = 8;  // nested arrays accepted in a reply

int64_t steady_now_ms() {
  // Deadlines for socket I/O use the real monotonic clock: they bound real waits on a real socket.
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// Waits until fd is ready for `events` or the deadline passes.
Result<void> wait_ready(int fd, short events, int64_t deadline_ms) {
  for (;;) {
    const int64_t left = deadline_ms - steady_now_ms();
    if (left <= 0) return Error{"redis: timed out"};
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r > 0) return {};
    if (r == 0) return Error{"redis: timed out"};
    if (errno != EINTR) return Error{errno_text("redis: poll")};
  }
}

enum class Parse : uint8_t { kDone, kIncomplete, kBad };

// Position of the CRLF ending the line starting at pos, or npos.
size_t line_end(std::string_view b, size_t pos) { return b.find("\r\n", pos); }

bool parse_int(std::string_view s, int64_t& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

// Parses one reply from b at pos; on kDone advances pos past it.
Parse parse_reply(std::string_view b, size_t& pos, RedisReply& out, int depth) {
  if (pos >= b.size()) return Parse::kIncomplete;
  const char t = b[pos];
  const size_t eol = line_end(b, pos + 1);
  if (eol == std::string_view::npos) return Parse::kIncomplete;
  std::string_view line = b.substr(pos + 1, eol - pos - 1);
  size_t next = eol + 2;
  out.elements.clear();
  out.str.clear();
  out.integer = 0;
  switch (t) {
    case '+':
      out.type = RedisReply::Type::kStatus;
      out.str.assign(line);
      break;
    case '-':
      out.type = RedisReply::Type::kError;
      out.str.assign(line);
      break;
    case ':':
      out.type = RedisReply::Type::kInteger;
      if (!parse_int(line, out.integer)) return Parse::kBad;
      break;
    case '$': {
      int64_t len = 0;
      if (!parse_int(line, len) || len < -1) return Parse::kBad;
      if (len == -1) {
        out.type = RedisReply::Type::kNil;
        break;
      }
      if (b.size() < next + static_cast<size_t>(len) + 2) return Parse::kIncomplete;
      if (b.substr(next + static_cast<size_t>(len), 2) != "\r\n") return Parse::kBad;
      out.type = RedisReply::Type::kBulk;
      out.str.assign(b.substr(next, static_cast<size_t>(len)));
      next += static_cast<size_t>(len) + 2;
      break;
    }
    case '*': {
      int64_t n = 0;
      if (!parse_int(line, n) || n < -1 || depth >= kMaxDepth) return Parse::kBad;
      if (n == -1) {
        out.type = RedisReply::Type::kNil;
        break;
      }
      out.type = RedisReply::Type::kArray;
      out.elements.resize(static_cast<size_t>(n));
      for (auto& e : out.elements) {
        Parse p = parse_reply(b, next, e, depth + 1);
        if (p != Parse::kDone) return p;
      }
      break;
    }
    default:
      return Parse::kBad;
  }
  pos = next;
  return Parse::kDone;
}

}  // namespace

Result<RedisEndpoint> parse_redis_url(std::string_view url) {
  constexpr std::string_view kScheme = "redis://";
  if (url.substr(0, kScheme.size()) != kScheme) return Error{"redis URL must start with redis://"};
  std::string_view rest = url.substr(kScheme.size());
  RedisEndpoint ep;
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view cred = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (size_t colon = cred.find(':'); colon != std::string_view::npos) {
      ep.user.assign(cred.substr(0, colon));
      ep.password.assign(cred.substr(colon + 1));
    } else {
      ep.password.assign(cred);  // redis://password@host, as some clients accept
    }
  }
  std::string_view hostport = rest;
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    std::string_view db = rest.substr(slash + 1);
    if (!db.empty()) {
      int64_t v = 0;
      if (!parse_int(db, v) || v < 0 || v > 1'000'000) return Error{"redis URL: bad database number"};
      ep.db = static_cast<int>(v);
    }
  }
  std::string_view port;
  if (!hostport.empty() && hostport.front() == '[') {
    size_t close = hostport.find(']');
    if (close == std::string_view::npos) return Error{"redis URL: unclosed [ in host"};
    ep.host.assign(hostport.substr(1, close - 1));
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Error{"redis URL: bad host"};
      port = after.substr(1);
    }
  } else if (size_t colon = hostport.rfind(':'); colon != std::string_view::npos) {
    ep.host.assign(hostport.substr(0, colon));
    port = hostport.substr(colon + 1);
  } else {
    ep.host.assign(hostport);
  }
  if (ep.host.empty()) return Error{"redis URL: missing host"};
  if (!port.empty()) {
    int64_t v = 0;
    if (!parse_int(port, v) || v < 1 || v > 65535) return Error{"redis URL: bad port"};
    ep.port = static_cast<uint16_t>(v);
  }
  return ep;
}

RedisConnection::RedisConnection(RedisEndpoint endpoint, int connect_timeout_ms, int io_timeout_ms)
    : endpoint_(std::move(endpoint)),
      connect_timeout_ms_(connect_timeout_ms),
      io_timeout_ms_(io_timeout_ms) {}

RedisConnection::~RedisConnection() { close(); }

void RedisConnection::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  in_.clear();
  in_pos_ = 0;
}

void RedisConnection::begin_command(size_t argc) {
  out_ += '*';
  out_ += std::to_string(argc);
  out_ += "\r\n";
  ++pending_;
}

void RedisConnection::arg(std::string_view a) {
  out_ += '$';
  out_ += std::to_string(a.size());
  out_ += "\r\n";
  out_.append(a);
  out_ += "\r\n";
}

void RedisConnection::arg(int64_t v) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  arg(std::string_view(buf, static_cast<size_t>(p - buf)));
}

void RedisConnection::command(std::initializer_list<std::string_view> args) {
  begin_command(args.size());
  for (auto a : args) arg(a);
}

void RedisConnection::discard() {
  out_.clear();
  pending_ = 0;
}

Result<void> RedisConnection::connect_and_handshake() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(endpoint_.port);
  if (int rc = ::getaddrinfo(endpoint_.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return Error{std::string("redis: resolve: ") + gai_strerror(rc)};
  }
  const int64_t deadline = steady_now_ms() + connect_timeout_ms_;
  std::string last_error = "redis: no address";
  for (addrinfo* ai = res; ai != nullptr && fd_ < 0; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_error = errno_text("redis: socket");
      continue;
    }
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      last_error = errno_text("redis: connect");
      ::close(fd);
      continue;
    }
    if (auto w = wait_ready(fd, POLLOUT, deadline); !w) {
      last_error = "redis: connect " + w.error().substr(7);
      ::close(fd);
      continue;
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      last_error = std::string("redis: connect: ") + std::strerror(err);
      ::close(fd);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fd_ = fd;
  }
  ::freeaddrinfo(res);
  if (fd_ < 0) return Error{last_error};

  // Handshake: AUTH and SELECT, pipelined ahead of nothing else.
  std::string saved_out;
  saved_out.swap(out_);
  const size_t saved_pending = pending_;
  pending_ = 0;
  size_t expect = 0;
  if (!endpoint_.password.empty()) {
    if (endpoint_.user.empty()) {
      command({"AUTH", endpoint_.password});
    } else {
      command({"AUTH", endpoint_.user, endpoint_.password});
    }
    ++expect;
  }
  if (endpoint_.db != 0) {
    begin_command(2);
    arg("SELECT");
    arg(int64_t{endpoint_.db});
    ++expect;
  }
  Result<void> result;
  if (expect > 0) {
    const int64_t io_deadline = steady_now_ms() + io_timeout_ms_;
    result = send_all(out_, io_deadline);
    out_.clear();
    pending_ = 0;
    RedisReply reply;
    for (size_t i = 0; i < expect && result.ok(); ++i) {
      result = read_reply(reply, io_deadline);
      // The reply text of a failed AUTH never contains the password.
      if (result.ok() && reply.is_error()) result = Error{"redis: handshake refused: " + reply.str};
    }
  }
  out_.swap(saved_out);
  pending_ = saved_pending;
  if (!result) close();
  return result;
}

Result<void> RedisConnection::send_all(std::string_view data, int64_t deadline_ms) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (auto w = wait_ready(fd_, POLLOUT, deadline_ms); !w) return w;
      continue;
    }
    return Error{errno_text("redis: send")};
  }
  return {};
}

Result<void> RedisConnection::fill(int64_t deadline_ms) {
  if (in_pos_ > 0 && in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
  } else if (in_pos_ > kReadChunk) {
    in_.erase(0, in_pos_);
    in_pos_ = 0;
  }
  for (;;) {
    const size_t old = in_.size();
    in_.resize(old + kReadChunk);
    ssize_t n = ::recv(fd_, in_.data() + old, kReadChunk, 0);
    in_.resize(old + static_cast<size_t>(n > 0 ? n : 0));
    if (n > 0) return {};
    if (n == 0) return Error{"redis: connection closed by server"};
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return Error{errno_text("redis: recv")};
    if (auto w = wait_ready(fd_, POLLIN, deadline_ms); !w) return w;
  }
}

Result<void> RedisConnection::read_reply(RedisReply& out, int64_t deadline_ms) {
  for (;;) {
    size_t pos = in_pos_;
    Parse p = parse_reply(in_, pos, out, 0);
    if (p == Parse::kDone) {
      in_pos_ = pos;
      return {};
    }
    if (p == Parse::kBad) return Error{"redis: malformed reply"};
    if (auto r = fill(deadline_ms); !r) return r;
  }
}

Result<void> RedisConnection::exec(std::vector<RedisReply>& replies) {
  const size_t n = pending_;
  std::string data;
  data.swap(out_);
  pending_ = 0;
  replies.resize(n);
  if (n == 0) return {};
  // A reused connection may have been closed by the server meanwhile (restart, idle timeout):
  // then the pipeline is sent once more on a fresh connection. Not after a timeout (that would
  // double the wait). Every command the relay pipelines is safe to repeat.
  const bool reused = fd_ >= 0;
  Result<void> r;
  for (int attempt = 0; attempt < (reused ? 2 : 1); ++attempt) {
    if (fd_ < 0) {
      r = connect_and_handshake();
      if (!r) break;
    }
    const int64_t deadline = steady_now_ms() + io_timeout_ms_;
    r = send_all(data, deadline);
    for (size_t i = 0; i < n && r.ok(); ++i) r = read_reply(replies[i], deadline);
    if (r) break;
    close();
    if (r.error().find("timed out") != std::string::npos) break;
  }
  // Keep the buffer's capacity for the next pipeline.
  data.clear();
  if (out_.empty()) out_.swap(data);
  return r;
}

}  // namespace capi_relay::dedup_detail
