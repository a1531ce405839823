#pragma once
// How a management command reaches spool.dir: it owns the directory while it holds the DirLock;
// when a running `serve` holds it instead, the command talks to that relay (admin listener for
// dead letters, ingest listener for uploads).
#include <optional>
#include <string>

#include "capi_relay/common/files.hpp"
#include "capi_relay/common/result.hpp"
#include "capi_relay/config/config.hpp"

namespace capi_relay {

struct SpoolLockAttempt {
  std::optional<DirLock> lock;  // set: this process owns spool.dir
  bool held_by_other = false;   // another process (a running relay) holds it
  std::string error;            // why the lock could not be taken
};
SpoolLockAttempt lock_spool_dir(const Config& config);

// Base URL of a listen address for a local client: "http://127.0.0.1:9464" (0.0.0.0 / :: become
// loopback). Fails for port 0 (the OS picked the port; it cannot be known from the config).
Result<std::string> local_url_of_listen(const std::string& listen, const std::string& key_path);

}  // namespace capi_relay
