// Spool directory ownership and the local URLs of a running relay.
#include "capi_relay/cli/spool_access.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

namespace capi_relay {

namespace {

// True when <dir>/LOCK exists and another process holds its flock.
bool lock_is_held(const std::filesystem::path& dir) {
  const auto p = dir / "LOCK";
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);  // also drops the probe's lock if it got one
  return held;
}

}  // namespace

SpoolLockAttempt lock_spool_dir(const Config& config) {
  SpoolLockAttempt a;
  auto lock = DirLock::acquire(config.spool.dir);
  if (lock) {
    a.lock.emplace(std::move(lock.value()));
    return a;
  }
  a.held_by_other = lock_is_held(config.spool.dir);
  a.error = lock.error();
  return a;
}

Result<std::string> local_url_of_listen(const std::string& listen, const std::string& key_path) {
  HostPort hp;
  if (!parse_listen(listen, hp)) return Error{key_path + " '" + listen + "' is not host:port"};
  if (hp.port == 0) {
    return Error{key_path + " has port 0, so the running relay's port is unknown; give it a fixed "
                            "port"};
  }
  std::string host = hp.host;
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "http://" + host + ":" + std::to_string(hp.port);
}

}  // namespace capi_relay
