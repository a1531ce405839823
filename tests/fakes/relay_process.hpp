#pragma once
// Runs the real capi-relay binary for integration tests: writes a config into a fresh temp dir,
// starts `capi-relay serve -c <dir>/relay.yaml` with stderr captured to <dir>/relay.log, waits
// until the "started" log line names the ports, and offers a small blocking HTTP client; plus
// what tests ask of the host around it: a free loopback port, a shell command's output, a file's
// content, a process's resident memory.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

namespace capi_relay::testing {

struct HttpResult {
  int status = 0;  // 0: connection failed
  std::map<std::string, std::string> headers;  // lowercased names
  std::string body;
};

// One HTTP/1.1 request on a new connection to 127.0.0.1:port.
HttpResult http_request(uint16_t port, const std::string& method, const std::string& target,
                        const std::string& body = {},
                        const std::map<std::string, std::string>& headers = {});

// A port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
uint16_t free_port();

struct CommandResult {
  int exit_code = -1;  // -1: did not exit normally (or could not start)
  std::string output;  // stdout and stderr together
};

// Runs `cmd` through /bin/sh with stderr folded into stdout and waits for it.
CommandResult run_command(const std::string& cmd);

// The whole content of a file ("" when it cannot be read).
std::string read_file(const std::filesystem::path& path);

// Resident memory of a process in KiB (VmRSS from /proc), or -1 when unreadable.
int64_t rss_kib(pid_t pid);

class RelayProcess {
 public:
  // `yaml` is the config; `dir` is created when empty (a fresh temp dir) and kept for restarts.
  explicit RelayProcess(std::filesystem::path dir = {});
  ~RelayProcess();
  const std::filesystem::path& dir() const { return dir_; }
  // Writes relay.yaml and starts the relay; false (with the log in `error`) if it did not start.
  bool start(const std::string& yaml, std::string* error = nullptr);
  // SIGTERM and wait for exit; returns the exit status (or -1).
  int stop(int timeout_ms = 60000);
  // SIGKILL and reap.
  void kill9();
  // Sends a signal (e.g. SIGHUP).
  void signal(int sig);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }  // -1 when not running
  uint16_t ingest_port() const { return ingest_port_; }
  uint16_t admin_port() const { return admin_port_; }
  std::string log() const;
  HttpResult post_events(const std::string& body, const std::string& content_type = "application/json",
                         const std::map<std::string, std::string>& headers = {}) const;
  HttpResult admin_get(const std::string& target) const;
  // Value of an unlabelled sample (or "name{labels}" exactly as exposed) from /metrics; -1 if absent.
  double metric(const std::string& series) const;

 private:
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  uint16_t ingest_port_ = 0;
  uint16_t admin_port_ = 0;
};

// Waits until pred() is true or timeout_ms passes (polling every 20 ms); returns pred().
template <class Pred>
bool eventually(Pred pred, int timeout_ms = 10000);

}  // namespace capi_relay::testing

#include <chrono>
#include <thread>

template <class Pred>
bool capi_relay::testing::eventually(Pred pred, int timeout_ms) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}
