#pragma once
// File helpers shared by every component that writes state: all files the relay writes are 0600.
#include <filesystem>
#include <string>
#include <string_view>

#include "capi_relay/common/result.hpp"

namespace capi_relay {

// Writes data to path atomically (temp file in the same directory, fsync, rename, fsync dir),
// with mode 0600.
Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view data);
Result<std::string> read_file(const std::filesystem::path& path);
// Creates the directory (and parents) with mode 0700 if missing.
Result<void> ensure_dir(const std::filesystem::path& dir);
// fsync of a directory, so that a create/rename/unlink inside it is durable.
Result<void> fsync_dir(const std::filesystem::path& dir);

// An exclusive advisory lock (flock) on <dir>/LOCK held for the object's lifetime: one owner of
// spool, dedup state and dead letters per spool.dir.
class DirLock {
 public:
  static Result<DirLock> acquire(const std::filesystem::path& dir);
  DirLock(DirLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  DirLock& operator=(DirLock&& o) noexcept;
  DirLock(const DirLock&) = delete;
  ~DirLock();

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace capi_relay
