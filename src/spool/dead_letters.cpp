#include "capi_relay/spool/dead_letters.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>

#include "capi_relay/common/files.hpp"
#include "capi_relay/common/hash.hpp"
#include "capi_relay/common/log.hpp"
#include "le_bytes.hpp"
#include "unique_fd.hpp"

namespace capi_relay {

namespace {

namespace fs = std::filesystem;
using spool_detail::append_u32;
using spool_detail::append_u64;
using spool_detail::get_u32;
using spool_detail::get_u64;
using spool_detail::UniqueFd;

constexpr std::string_view kComponent = "dead_letters";
constexpr const char* kFileName = "dead-letters.log";
// Entry frame: u32 body_len | u32 crc32c(body) | body. Body: u8 kind | u64 id | kind fields.
constexpr size_t kEntryHeaderBytes = 8;
constexpr uint32_t kMaxBodyBytes = 256u << 20;
// Rewrite the log on open once this many of its entries are obsolete (removals, removed or
// expired adds) — or more obsolete entries than live ones.
constexpr uint64_t kCompactAfterObsolete = 64;

enum class EntryKind : uint8_t {
  kAdd = 1,     // i64 dead_lettered_at_ms | i32 http_status | str reason | str message | str payload
  kRemove = 2,  // (id only)
  kNextId = 3,  // id field = next id to assign; written first by compaction
};

Error sys_error(std::string_view what, const fs::path& p, int err) {
  return Error{std::string(what) + " " + p.string() + ": " + std::strerror(err)};
}

void append_str(std::string& out, std::string_view s) {
  append_u32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

// Appends one framed entry; `fill_body` appends the body after the kind and id.
template <class Fn>
void append_entry(std::string& out, EntryKind kind, uint64_t id, Fn&& fill_body) {
  const size_t start = out.size();
  out.append(kEntryHeaderBytes, '\0');
  out.push_back(static_cast<char>(kind));
  append_u64(out, id);
  fill_body(out);
  const size_t body_len = out.size() - start - kEntryHeaderBytes;
  spool_detail::put_u32(out.data() + start, static_cast<uint32_t>(body_len));
  spool_detail::put_u32(out.data() + start + 4,
                        crc32c(out.data() + start + kEntryHeaderBytes, body_len));
}

void append_add(std::string& out, const DeadLetter& d) {
  append_entry(out, EntryKind::kAdd, d.id, [&](std::string& b) {
    append_u64(b, static_cast<uint64_t>(d.dead_lettered_at_ms));
    append_u32(b, static_cast<uint32_t>(d.http_status));
    append_str(b, d.reason);
    append_str(b, d.message);
    append_str(b, d.payload);
  });
}

void append_remove(std::string& out, uint64_t id) {
  append_entry(out, EntryKind::kRemove, id, [](std::string&) {});
}

// Bounds-checked reader over one entry body.
class BodyReader {
 public:
  explicit BodyReader(std::string_view body) : body_(body) {}
  bool u8(uint8_t& v) {
    if (body_.size() - pos_ < 1) return false;
    v = static_cast<uint8_t>(body_[pos_++]);
    return true;
  }
  bool u32(uint32_t& v) {
    if (body_.size() - pos_ < 4) return false;
    v = get_u32(body_.data() + pos_);
    pos_ += 4;
    return true;
  }
  bool u64(uint64_t& v) {
    if (body_.size() - pos_ < 8) return false;
    v = get_u64(body_.data() + pos_);
    pos_ += 8;
    return true;
  }
  bool str(std::string& s) {
    uint32_t n = 0;
    if (!u32(n) || body_.size() - pos_ < n) return false;
    s.assign(body_.substr(pos_, n));
    pos_ += n;
    return true;
  }
  bool at_end() const { return pos_ == body_.size(); }

 private:
  std::string_view body_;
  size_t pos_ = 0;
};

bool matches(const DeadLetter& d, const DeadLetterFilter& f) {
  if (!f.ids.empty() && std::find(f.ids.begin(), f.ids.end(), d.id) == f.ids.end()) return false;
  if (f.reason && d.reason != *f.reason) return false;
  return true;
}

// The dead-letter log. Owns <dir>/dead-letters.log and an in-memory copy of the live entries
// (dead letters are few; their payloads are hashed records). Thread-safe: every public method
// takes mu_. Errors are I/O errors on the log file; a failed add/take leaves the store unchanged.
class DeadLetterLog final : public DeadLetterStore {
 public:
  DeadLetterLog(const fs::path& dir, int64_t retention_ms, Clock& clock)
      : path_(dir / kFileName), dir_(dir), retention_ms_(retention_ms), clock_(clock) {}

  Result<void> load();

  Result<void> add(std::vector<DeadLetter>& entries) override;
  std::vector<DeadLetter> list(const DeadLetterFilter& f) const override;
  Result<std::vector<DeadLetter>> take(const DeadLetterFilter& f) override;
  uint64_t expire() override;
  uint64_t size() const override {
    std::lock_guard lock(mu_);
    return entries_.size();
  }

 private:
  // Appends encoded entries durably; on failure truncates back and returns the error.
  Result<void> append_durably_locked(const std::string& data);
  bool expired(const DeadLetter& d, int64_t now_ms) const {
    return retention_ms_ > 0 && d.dead_lettered_at_ms < now_ms - retention_ms_;
  }

  const fs::path path_;
  const fs::path dir_;
  const int64_t retention_ms_;  // <= 0: keep forever
  Clock& clock_;

  mutable std::mutex mu_;
  UniqueFd fd_;
  uint64_t file_size_ = 0;
  std::map<uint64_t, DeadLetter> entries_;
  uint64_t next_id_ = 1;
};

Result<void> DeadLetterLog::load() {
  if (auto r = ensure_dir(dir_); !r) return r;
  std::string data;
  std::error_code ec;
  if (fs::exists(path_, ec)) {
    auto content = read_file(path_);
    if (!content) return Error{content.error()};
    data = std::move(content.value());
  } else if (ec) {
    return Error{"stat " + path_.string() + ": " + ec.message()};
  }

  // Replay.
  uint64_t obsolete = 0;
  size_t off = 0;
  while (off < data.size()) {
    if (data.size() - off < kEntryHeaderBytes) break;
    const uint32_t len = get_u32(data.data() + off);
    if (len > kMaxBodyBytes || data.size() - off - kEntryHeaderBytes < len) break;
    std::string_view body(data.data() + off + kEntryHeaderBytes, len);
    if (crc32c(body.data(), body.size()) != get_u32(data.data() + off + 4)) break;
    BodyReader r(body);
    uint8_t kind = 0;
    uint64_t id = 0;
    if (!r.u8(kind) || !r.u64(id)) break;
    if (kind == static_cast<uint8_t>(EntryKind::kAdd)) {
      DeadLetter d;
      d.id = id;
      uint64_t at = 0;
      uint32_t status = 0;
      if (!r.u64(at) || !r.u32(status) || !r.str(d.reason) || !r.str(d.message) ||
          !r.str(d.payload) || !r.at_end())
        break;
      d.dead_lettered_at_ms = static_cast<int64_t>(at);
      d.http_status = static_cast<int>(status);
      if (entries_.count(id) != 0) ++obsolete;
      entries_[id] = std::move(d);
      next_id_ = std::max(next_id_, id + 1);
    } else if (kind == static_cast<uint8_t>(EntryKind::kRemove)) {
      if (!r.at_end()) break;
      obsolete += 1 + entries_.erase(id);
      next_id_ = std::max(next_id_, id + 1);
    } else if (kind == static_cast<uint8_t>(EntryKind::kNextId)) {
      if (!r.at_end()) break;
      next_id_ = std::max(next_id_, id);
    } else {
      break;
    }
    off += kEntryHeaderBytes + len;
  }
  const bool cut = off < data.size();
  if (cut) {
    log::warn(kComponent, "cut a torn or corrupt tail of the dead-letter log",
              {{"file", path_.filename().string()},
               {"bytes", std::to_string(data.size() - off)}});
  }

  const int64_t now = clock_.now_ms();
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (expired(it->second, now)) {
      it = entries_.erase(it);
      obsolete += 2;  // the add, and the removal it no longer needs
    } else {
      ++it;
    }
  }

  if (obsolete >= kCompactAfterObsolete || obsolete > entries_.size()) {
    std::string compacted;
    append_entry(compacted, EntryKind::kNextId, next_id_, [](std::string&) {});
    for (const auto& [id, d] : entries_) append_add(compacted, d);
    if (auto r = write_file_atomic(path_, compacted); !r) return r;
  } else if (cut || data.empty()) {
    UniqueFd fd(::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) return sys_error("open", path_, errno);
    if (::ftruncate(fd.get(), static_cast<off_t>(off)) != 0)
      return sys_error("truncate", path_, errno);
    if (::fdatasync(fd.get()) != 0) return sys_error("fdatasync", path_, errno);
    if (data.empty()) {
      if (auto r = fsync_dir(dir_); !r) return r;
    }
  }

  fd_.reset(::open(path_.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd_) return sys_error("open", path_, errno);
  ::fchmod(fd_.get(), 0600);
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) return sys_error("stat", path_, errno);
  file_size_ = static_cast<uint64_t>(st.st_size);
  return {};
}

Result<void> DeadLetterLog::append_durably_locked(const std::string& data) {
  size_t done = 0;
  int err = 0;
  while (done < data.size()) {
    ssize_t w = ::pwrite(fd_.get(), data.data() + done, data.size() - done,
                         static_cast<off_t>(file_size_ + done));
    if (w < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    done += static_cast<size_t>(w);
  }
  const char* what = "write";
  if (err == 0 && ::fdatasync(fd_.get()) != 0) {
    err = errno;
    what = "fdatasync";
  }
  if (err != 0) {
    // Later appends go to file_size_ again and overwrite any partial entry; a crash before then
    // leaves a tail that the next open cuts by checksum.
    (void)::ftruncate(fd_.get(), static_cast<off_t>(file_size_));
    return sys_error(what, path_, err);
  }
  file_size_ += data.size();
  return {};
}

Result<void> DeadLetterLog::add(std::vector<DeadLetter>& entries) {
  if (entries.empty()) return {};
  std::lock_guard lock(mu_);
  std::string data;
  uint64_t id = next_id_;
  for (auto& d : entries) {
    d.id = id++;
    append_add(data, d);
  }
  if (auto r = append_durably_locked(data); !r) {
    for (auto& d : entries) d.id = 0;
    return r;
  }
  next_id_ = id;
  for (const auto& d : entries) entries_[d.id] = d;
  return {};
}

std::vector<DeadLetter> DeadLetterLog::list(const DeadLetterFilter& f) const {
  std::lock_guard lock(mu_);
  std::vector<DeadLetter> out;
  for (const auto& [id, d] : entries_)
    if (matches(d, f)) out.push_back(d);
  return out;
}

Result<std::vector<DeadLetter>> DeadLetterLog::take(const DeadLetterFilter& f) {
  std::lock_guard lock(mu_);
  std::string data;
  std::vector<uint64_t> ids;
  for (const auto& [id, d] : entries_) {
    if (!matches(d, f)) continue;
    ids.push_back(id);
    append_remove(data, id);
  }
  if (ids.empty()) return std::vector<DeadLetter>{};
  if (auto r = append_durably_locked(data); !r) return Error{r.error()};
  std::vector<DeadLetter> out;
  out.reserve(ids.size());
  for (uint64_t id : ids) {
    auto it = entries_.find(id);
    out.push_back(std::move(it->second));
    entries_.erase(it);
  }
  return out;
}

uint64_t DeadLetterLog::expire() {
  std::lock_guard lock(mu_);
  const int64_t now = clock_.now_ms();
  std::string data;
  uint64_t n = 0;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (expired(it->second, now)) {
      append_remove(data, it->first);
      it = entries_.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  if (n > 0) {
    // If the removals cannot be written, the entries are still dropped at the next open by the
    // same retention rule; nothing is lost by going on.
    if (auto r = append_durably_locked(data); !r)
      log::warn(kComponent, "cannot record expired dead letters", {{"error", r.error()}});
    log::info(kComponent, "expired dead letters", {{"count", std::to_string(n)}});
  }
  return n;
}

}  // namespace

Result<std::unique_ptr<DeadLetterStore>> DeadLetterStore::open(const fs::path& dir,
                                                               int64_t retention_ms,
                                                               Clock& clock) {
  auto store = std::make_unique<DeadLetterLog>(dir, retention_ms, clock);
  if (auto r = store->load(); !r) return Error{r.error()};
  return std::unique_ptr<DeadLetterStore>(std::move(store));
}

}  // namespace capi_relay
