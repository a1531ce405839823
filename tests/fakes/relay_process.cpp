#include "fakes/relay_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#ifndef CAPI_RELAY_BINARY
#define CAPI_RELAY_BINARY "build/bin/capi-relay"
#endif

namespace capi_relay::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

HttpResult http_request(uint16_t port, const std::string& method, const std::string& target,
                        const std::string& body, const std::map<std::string, std::string>& headers) {
  HttpResult out;
  try {
    asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(30));
    stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    http::request<http::string_body> req(http::string_to_verb(method), target, 11);
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    if (!body.empty() || method == "POST") req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(1ull << 30);
    http::read(stream, buf, parser);
    auto& res = parser.get();
    out.status = static_cast<int>(res.result_int());
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[name] = std::string(f.value());
    }
    out.body = res.body();
    beast::error_code ec;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  } catch (const std::exception&) {
    out.status = 0;  // connection failed or reset: the caller asserts on status
  }
  return out;
}

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

CommandResult run_command(const std::string& cmd) {
  CommandResult r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) r.output.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

int64_t rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  return -1;
}

RelayProcess::RelayProcess(std::filesystem::path dir) : dir_(std::move(dir)) {
  if (dir_.empty()) {
    char tmpl[] = "/tmp/capi-relay-it-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
}

RelayProcess::~RelayProcess() {
  if (pid_ > 0) kill9();
}

std::string RelayProcess::log() const { return read_file(dir_ / "relay.log"); }

bool RelayProcess::start(const std::string& yaml, std::string* error) {
  {
    std::ofstream f(dir_ / "relay.yaml");
    f << yaml;
  }
  std::filesystem::remove(dir_ / "relay.log");
  pid_t pid = fork();
  if (pid == 0) {
    int fd = ::open((dir_ / "relay.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(fd, 2);
    int null = ::open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    if (chdir(dir_.c_str()) != 0) _exit(127);
    std::string cfg = (dir_ / "relay.yaml").string();
    execl(CAPI_RELAY_BINARY, "capi-relay", "serve", "-c", cfg.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  pid_ = pid;
  std::regex started("\"msg\":\"started\".*\"ingest_port\":\"(\\d+)\",\"admin_port\":\"(\\d+)\"");
  bool ok = eventually(
      [&] {
        std::smatch m;
        std::string l = log();
        if (std::regex_search(l, m, started)) {
          ingest_port_ = static_cast<uint16_t>(std::stoi(m[1]));
          admin_port_ = static_cast<uint16_t>(std::stoi(m[2]));
          return true;
        }
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          return true;
        }
        return false;
      },
      30000);
  if (!ok || pid_ < 0) {
    if (error) *error = log();
    if (pid_ > 0) kill9();
    return false;
  }
  return true;
}

int RelayProcess::stop(int timeout_ms) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  bool done = eventually([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, timeout_ms);
  if (!done) {
    kill9();
    return -1;
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void RelayProcess::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

void RelayProcess::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

HttpResult RelayProcess::post_events(const std::string& body, const std::string& content_type,
                                     const std::map<std::string, std::string>& headers) const {
  auto h = headers;
  if (!content_type.empty()) h["Content-Type"] = content_type;
  return http_request(ingest_port_, "POST", "/v1/events", body, h);
}

HttpResult RelayProcess::admin_get(const std::string& target) const {
  return http_request(admin_port_, "GET", target);
}

double RelayProcess::metric(const std::string& series) const {
  auto r = admin_get("/metrics");
  std::istringstream in(r.body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

}  // namespace capi_relay::testing
