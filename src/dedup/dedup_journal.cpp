#include "dedup_journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "capi_relay/common/files.hpp"
#include "capi_relay/common/hash.hpp"

namespace capi_relay::dedup_detail {
namespace {

constexpr char kMagic[8] = {'C', 'R', 'D', 'E', 'D', 'U', 'P', 'J'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 16;
constexpr size_t kEntryBytes = DedupJournal::kEntryBytes;
constexpr size_t kReadChunkEntries = 64 * 1024;  // 1 MiB reads while replaying
constexpr size_t kRewriteBufferBytes = 1 << 20;

Error sys_error(const char* what, const std::filesystem::path& p) {
  return Error{std::string(what) + " " + p.string() + ": " + std::strerror(errno)};
}

// Little-endian, as on every target the relay supports; memcpy keeps it alignment-safe.
void encode_entry(const JournalEntry& e, char out[kEntryBytes]) {
  std::memcpy(out, &e.fp, 8);
  std::memcpy(out + 8, &e.expiry, 4);
  const uint32_t crc = crc32c(out, 12);
  std::memcpy(out + 12, &crc, 4);
}

bool decode_entry(const char in[kEntryBytes], JournalEntry& e) {
  uint32_t crc;
  std::memcpy(&crc, in + 12, 4);
  if (crc != crc32c(in, 12)) return false;
  std::memcpy(&e.fp, in, 8);
  std::memcpy(&e.expiry, in + 8, 4);
  return true;
}

void encode_header(char out[kHeaderBytes]) {
  std::memcpy(out, kMagic, 8);
  std::memcpy(out + 8, &kVersion, 4);
  const uint32_t crc = crc32c(out, 12);
  std::memcpy(out + 12, &crc, 4);
}

bool valid_header(const char in[kHeaderBytes]) {
  char expected[kHeaderBytes];
  encode_header(expected);
  return std::memcmp(in, expected, kHeaderBytes) == 0;
}

Result<void> pwrite_all(int fd, const char* data, size_t n, uint64_t offset,
                        const std::filesystem::path& p) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return sys_error("write", p);
    }
    data += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return {};
}

// Reads up to n bytes at offset; returns the count read (short only at end of file).
Result<size_t> pread_full(int fd, char* data, size_t n, uint64_t offset,
                          const std::filesystem::path& p) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd, data + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return sys_error("read", p);
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return got;
}

Result<void> write_fresh_header(int fd, const std::filesystem::path& p) {
  if (::ftruncate(fd, 0) != 0) return sys_error("truncate", p);
  char header[kHeaderBytes];
  encode_header(header);
  if (auto r = pwrite_all(fd, header, kHeaderBytes, 0, p); !r) return r;
  if (::fdatasync(fd) != 0) return sys_error("fdatasync", p);
  return {};
}

}  // namespace

DedupJournal::DedupJournal(std::filesystem::path dir, int fd, uint64_t entries)
    : dir_(std::move(dir)),
      path_(dir_ / "dedup.journal"),
      tmp_path_(dir_ / "dedup.journal.tmp"),
      fd_(fd),
      entries_(entries) {}

DedupJournal::DedupJournal(DedupJournal&& o) noexcept
    : dir_(std::move(o.dir_)),
      path_(std::move(o.path_)),
      tmp_path_(std::move(o.tmp_path_)),
      fd_(std::exchange(o.fd_, -1)),
      entries_(o.entries_),
      tmp_fd_(std::exchange(o.tmp_fd_, -1)),
      tmp_entries_(o.tmp_entries_),
      tmp_buffer_(std::move(o.tmp_buffer_)) {}

DedupJournal& DedupJournal::operator=(DedupJournal&& o) noexcept {
  if (this != &o) {
    abort_rewrite();
    if (fd_ >= 0) ::close(fd_);
    dir_ = std::move(o.dir_);
    path_ = std::move(o.path_);
    tmp_path_ = std::move(o.tmp_path_);
    fd_ = std::exchange(o.fd_, -1);
    entries_ = o.entries_;
    tmp_fd_ = std::exchange(o.tmp_fd_, -1);
    tmp_entries_ = o.tmp_entries_;
    tmp_buffer_ = std::move(o.tmp_buffer_);
  }
  return *this;
}

DedupJournal::~DedupJournal() {
  abort_rewrite();
  if (fd_ >= 0) ::close(fd_);
}

Result<DedupJournal::Opened> DedupJournal::open(
    const std::filesystem::path& dir, const std::function<void(const JournalEntry&)>& replay) {
  if (auto r = ensure_dir(dir); !r) return Error{r.error()};
  const auto path = dir / "dedup.journal";
  // A compaction interrupted before its rename leaves a temp file; the journal is still whole.
  std::error_code ec;
  std::filesystem::remove(dir / "dedup.journal.tmp", ec);

  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return sys_error("open", path);
  DedupJournal journal(dir, fd, 0);  // owns fd from here
  struct stat st{};
  if (::fstat(fd, &st) != 0) return sys_error("stat", path);
  const auto size = static_cast<uint64_t>(st.st_size);

  Opened opened{std::move(journal)};
  DedupJournal& j = opened.journal;
  if (size < kHeaderBytes) {
    // New, or created and torn before its header was durable: nothing in it can be valid.
    if (auto r = write_fresh_header(j.fd_, path); !r) return Error{r.error()};
    if (auto r = fsync_dir(dir); !r) return Error{r.error()};
    opened.cut_bytes = size;
    return opened;
  }
  char header[kHeaderBytes];
  auto hr = pread_full(j.fd_, header, kHeaderBytes, 0, path);
  if (!hr) return Error{hr.error()};
  if (*hr != kHeaderBytes || !valid_header(header)) {
    return Error{"not a dedup journal (bad header): " + path.string()};
  }

  std::vector<char> chunk(kReadChunkEntries * kEntryBytes);
  uint64_t offset = kHeaderBytes;
  bool stop = false;
  while (!stop && offset < size) {
    auto rr = pread_full(j.fd_, chunk.data(), chunk.size(), offset, path);
    if (!rr) return Error{rr.error()};
    const size_t got = *rr;
    if (got == 0) break;
    size_t pos = 0;
    for (; pos + kEntryBytes <= got; pos += kEntryBytes) {
      JournalEntry e{};
      if (!decode_entry(chunk.data() + pos, e)) {
        stop = true;
        break;
      }
      replay(e);
      ++opened.replayed;
    }
    offset += pos;
    if (pos < got) stop = true;  // a corrupt entry or a partial one at the end
  }
  if (offset < size) {
    if (::ftruncate(j.fd_, static_cast<off_t>(offset)) != 0) return sys_error("truncate", path);
    if (::fdatasync(j.fd_) != 0) return sys_error("fdatasync", path);
    opened.cut_bytes = size - offset;
  }
  j.entries_ = (offset - kHeaderBytes) / kEntryBytes;
  return opened;
}

Result<void> DedupJournal::append(std::span<const JournalEntry> entries) {
  if (entries.empty()) return {};
  std::string buf(entries.size() * kEntryBytes, '\0');
  for (size_t i = 0; i < entries.size(); ++i) encode_entry(entries[i], buf.data() + i * kEntryBytes);
  // Written at the end of the last complete entry, so a failed earlier attempt's partial tail is
  // overwritten rather than followed.
  const uint64_t offset = kHeaderBytes + entries_ * kEntryBytes;
  if (auto r = pwrite_all(fd_, buf.data(), buf.size(), offset, path_); !r) return r;
  if (::fdatasync(fd_) != 0) return sys_error("fdatasync", path_);
  entries_ += entries.size();
  return {};
}

Result<void> DedupJournal::begin_rewrite() {
  abort_rewrite();
  tmp_fd_ = ::open(tmp_path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (tmp_fd_ < 0) return sys_error("open", tmp_path_);
  tmp_entries_ = 0;
  tmp_buffer_.clear();
  tmp_buffer_.reserve(kRewriteBufferBytes);
  tmp_buffer_.resize(kHeaderBytes);
  encode_header(tmp_buffer_.data());
  return {};
}

Result<void> DedupJournal::flush_rewrite_buffer() {
  size_t off = 0;
  while (off < tmp_buffer_.size()) {
    const ssize_t w = ::write(tmp_fd_, tmp_buffer_.data() + off, tmp_buffer_.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return sys_error("write", tmp_path_);
    }
    off += static_cast<size_t>(w);
  }
  tmp_buffer_.clear();
  return {};
}

Result<void> DedupJournal::add_to_rewrite(const JournalEntry& e) {
  const size_t at = tmp_buffer_.size();
  tmp_buffer_.resize(at + kEntryBytes);
  encode_entry(e, tmp_buffer_.data() + at);
  ++tmp_entries_;
  if (tmp_buffer_.size() >= kRewriteBufferBytes) return flush_rewrite_buffer();
  return {};
}

Result<void> DedupJournal::commit_rewrite() {
  auto fail = [this](Error e) -> Result<void> {
    abort_rewrite();
    return e;
  };
  if (auto r = flush_rewrite_buffer(); !r) return fail(Error{r.error()});
  if (::fdatasync(tmp_fd_) != 0) return fail(sys_error("fdatasync", tmp_path_));
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) return fail(sys_error("rename", tmp_path_));
  // The renamed file is the journal now (its descriptor stays valid across the rename); the old
  // descriptor points at the unlinked old file.
  if (fd_ >= 0) ::close(fd_);
  fd_ = std::exchange(tmp_fd_, -1);
  entries_ = tmp_entries_;
  tmp_buffer_ = std::string();
  return fsync_dir(dir_);
}

void DedupJournal::abort_rewrite() {
  if (tmp_fd_ < 0) return;
  ::close(tmp_fd_);
  tmp_fd_ = -1;
  ::unlink(tmp_path_.c_str());
  tmp_buffer_ = std::string();
}

}  // namespace capi_relay::dedup_detail
