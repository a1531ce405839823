#include "capi_relay/spool/spool.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

#include "capi_relay/common/files.hpp"
#include "capi_relay/common/log.hpp"
#include "frame_reader.hpp"
#include "le_bytes.hpp"
#include "unique_fd.hpp"

namespace capi_relay {

namespace {

namespace fs = std::filesystem;
using spool_detail::Frame;
using spool_detail::FrameReader;
using spool_detail::kFrameHeaderBytes;
using spool_detail::kMaxPayloadBytes;
using spool_detail::UniqueFd;

constexpr std::string_view kComponent = "spool";
constexpr size_t kWriteBufferReserve = 1u << 20;
// A group commit that grew the buffer past this gives the memory back afterwards.
constexpr size_t kWriteBufferShrinkAbove = 16u << 20;
constexpr uint32_t kMaxRecordsPerSegment = 0xFFFFFF00u;
// The active segment is zero-filled this far ahead of the write position (within segment_bytes),
// so most syncs rewrite blocks that already exist: on ext4 an fdatasync of data alone takes about
// half the time and CPU of one that also allocates blocks and grows the file (bench/fsync_bench,
// "prewritten" against "appended"). open() reads a zero tail as the end of the records.
constexpr uint64_t kPrewriteChunk = 256u << 10;

Error sys_error(std::string_view what, const fs::path& p, int err) {
  return Error{std::string(what) + " " + p.string() + ": " + std::strerror(err)};
}

std::string segment_file_name(uint64_t id, std::string_view ext) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "seg-%016llu.", static_cast<unsigned long long>(id));
  return std::string(buf) + std::string(ext);
}

// Parses "seg-<16 digits>.log" / "seg-<16 digits>.done".
bool parse_segment_file_name(const std::string& name, uint64_t& id, bool& is_done) {
  constexpr size_t kDigits = 16;
  if (name.size() < 4 + kDigits + 4 || name.compare(0, 4, "seg-") != 0) return false;
  std::string_view rest = std::string_view(name).substr(4 + kDigits);
  if (rest == ".log") {
    is_done = false;
  } else if (rest == ".done") {
    is_done = true;
  } else {
    return false;
  }
  uint64_t v = 0;
  for (size_t i = 4; i < 4 + kDigits; ++i) {
    char c = name[i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  id = v;
  return true;
}

int pwrite_all(int fd, const char* data, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data += w;
    n -= static_cast<size_t>(w);
    off += static_cast<uint64_t>(w);
  }
  return 0;
}

int write_all(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return 0;
}

// Per-segment state shared by the writer (publishing) and the readers/completers. Lives in memory
// for every segment on disk: a completion bitmap (1 bit per record) and a few counters, never the
// records themselves.
struct Segment {
  uint64_t id = 0;
  uint64_t size = 0;      // committed bytes: what readers may read
  uint32_t records = 0;   // committed records
  uint32_t done = 0;      // complete records among them
  std::vector<uint64_t> done_bits;
  bool active = false;    // the writer's current segment: never deleted while active
  UniqueFd done_fd;       // completion journal, opened on first use (O_APPEND)
  UniqueFd walk_fd;       // for low-water walks, opened on first use
  // Lowest record index that may still be pending, the offset of its frame and its append_ms
  // (valid while low_index < records). Only moves forward.
  uint32_t low_index = 0;
  uint64_t low_offset = 0;
  int64_t low_ms = 0;

  bool pending() const { return done < records; }
  uint64_t pending_bytes() const { return pending() ? size : 0; }
  bool is_done(uint32_t i) const { return (done_bits[i >> 6] >> (i & 63)) & 1u; }
  void set_done(uint32_t i) { done_bits[i >> 6] |= uint64_t{1} << (i & 63); }
  void clear_done(uint32_t i) { done_bits[i >> 6] &= ~(uint64_t{1} << (i & 63)); }
  void resize_bits() { done_bits.resize((static_cast<size_t>(records) + 63) / 64, 0); }
};

// The segmented write-ahead log. Owns the segment files in opts.dir, the writer's buffer and file
// descriptor, and the in-memory completion state.
// Threading: append()/sync()/would_exceed() on one writer thread (writer-only members need no
// lock); segment state under mu_ (the writer takes it briefly once per sync to publish);
// read_next() serialised by read_mu_ (lock order: read_mu_ before mu_). Errors are I/O errors,
// with the file and errno text in the message.
class SegmentedSpool final : public Spool {
 public:
  explicit SegmentedSpool(const SpoolOptions& opts) : opts_(opts) {
    buffer_.reserve(kWriteBufferReserve);
  }
  ~SegmentedSpool() override;

  Result<void> load();

  bool would_exceed(uint64_t incoming_bytes) const override {
    return pending_bytes_published_.load(std::memory_order_relaxed) + buffer_.size() +
               incoming_bytes >
           opts_.max_bytes;
  }
  Result<RecordId> append(std::string_view payload, int64_t append_ms) override;
  Result<void> sync(bool force) override;
  size_t read_next(size_t max_records, std::vector<SpoolEntry>& out) override;
  Result<void> complete(std::span<const RecordId> ids) override;
  Result<void> for_each_pending(const std::function<void(const SpoolEntry&)>& fn) override;
  SpoolStats stats() const override;
  uint64_t truncated_records() const override { return truncated_records_; }

 private:
  fs::path log_path(uint64_t id) const { return opts_.dir / segment_file_name(id, "log"); }
  fs::path done_path(uint64_t id) const { return opts_.dir / segment_file_name(id, "done"); }

  Result<void> scan_segment(Segment& seg);
  Result<void> all_zero(int fd, uint64_t from, uint64_t to, bool& zero) const;
  // Zero-fills the active segment ahead of the next write (see kPrewriteChunk); errno or 0.
  int prewrite_ahead(size_t next_bytes);
  uint64_t count_cut_records(int fd, const FrameReader& bad, FrameReader::Status st,
                             uint64_t end, std::string& buf) const;
  Result<void> roll();
  Result<void> sync_retired();
  Result<void> fail_sync(Error e);
  void publish_locked();
  void advance_low_water_locked(Segment& seg);
  // A fully complete segment taken out of the map; its files are deleted by delete_files().
  struct DoomedSegment {
    uint64_t id;
    UniqueFd done_fd;
  };
  void detach_segment_locked(std::map<uint64_t, Segment>::iterator it,
                             std::vector<DoomedSegment>& doomed);
  void delete_files(std::vector<DoomedSegment>& doomed);
  Result<void> mark_complete(std::span<const RecordId> ids, std::vector<DoomedSegment>& doomed);
  void move_cursor_past_segment() {
    ++cursor_segment_;
    cursor_offset_ = 0;
    cursor_index_ = 0;
  }
  void note_pending_bytes_locked() {
    pending_bytes_published_.store(pending_bytes_, std::memory_order_relaxed);
  }

  const SpoolOptions opts_;
  uint64_t truncated_records_ = 0;  // set in load(), read-only afterwards

  // --- writer thread only ---
  UniqueFd write_fd_;
  uint64_t write_segment_ = 0;     // 0: no active segment yet (created on first append)
  uint64_t written_bytes_ = 0;     // file length covered by successful syncs
  uint64_t prewritten_end_ = 0;    // the segment file holds zeros up to here (kPrewriteChunk)
  uint32_t written_records_ = 0;
  std::string buffer_;
  uint32_t buffered_records_ = 0;
  int64_t buffer_first_ms_ = 0;
  bool unsynced_writes_ = false;   // kOff: written but not yet fdatasynced
  struct RetiredSegment {
    uint64_t id;
    UniqueFd fd;
  };
  std::vector<RetiredSegment> retired_unsynced_;  // kOff: finished segments awaiting fdatasync
  uint64_t next_segment_id_ = 1;

  // --- shared, under mu_ ---
  mutable std::mutex mu_;
  std::map<uint64_t, Segment> segments_;
  uint64_t pending_records_ = 0;
  uint64_t pending_bytes_ = 0;
  std::string done_scratch_;
  std::string walk_buf_;
  std::atomic<uint64_t> pending_bytes_published_{0};

  // --- reader cursor, under read_mu_ ---
  std::mutex read_mu_;
  uint64_t cursor_segment_ = 0;
  uint64_t cursor_offset_ = 0;
  uint32_t cursor_index_ = 0;
  UniqueFd cursor_fd_;
  uint64_t cursor_fd_segment_ = 0;
  std::string read_buf_;
};

SegmentedSpool::~SegmentedSpool() {
  // Records written under fsync=off are made durable on an orderly shutdown.
  if (write_fd_ && unsynced_writes_) ::fdatasync(write_fd_.get());
  (void)sync_retired();
}

// ---------------------------------------------------------------------------------------------
// Open: scan, cut, rebuild completion state, delete complete segments.

Result<void> SegmentedSpool::load() {
  if (auto r = ensure_dir(opts_.dir); !r) return r;
  std::set<uint64_t> logs;
  std::set<uint64_t> dones;
  std::error_code ec;
  fs::directory_iterator dir_it(opts_.dir, ec);
  if (ec) return Error{"read directory " + opts_.dir.string() + ": " + ec.message()};
  for (const auto& entry : dir_it) {
    uint64_t id = 0;
    bool is_done = false;
    if (!parse_segment_file_name(entry.path().filename().string(), id, is_done)) continue;
    (is_done ? dones : logs).insert(id);
  }
  uint64_t max_id = 0;
  bool dir_changed = false;
  std::vector<DoomedSegment> doomed;
  for (uint64_t id : dones) {
    max_id = std::max(max_id, id);
    if (logs.count(id) == 0) {
      // A journal whose segment is gone (crash between the two unlinks): nothing to complete.
      ::unlink(done_path(id).c_str());
      dir_changed = true;
    }
  }
  for (uint64_t id : logs) {
    max_id = std::max(max_id, id);
    Segment seg;
    seg.id = id;
    if (auto r = scan_segment(seg); !r) return r;
    pending_records_ += seg.records - seg.done;
    pending_bytes_ += seg.pending_bytes();
    auto it = segments_.emplace(id, std::move(seg)).first;
    if (!it->second.pending()) detach_segment_locked(it, doomed);
  }
  delete_files(doomed);
  if (dir_changed) {
    if (auto r = fsync_dir(opts_.dir); !r) return r;
  }
  next_segment_id_ = max_id + 1;
  note_pending_bytes_locked();
  if (!segments_.empty()) {
    log::info(kComponent, "spool opened",
              {{"segments", std::to_string(segments_.size())},
               {"pending_records", std::to_string(pending_records_)},
               {"pending_bytes", std::to_string(pending_bytes_)}});
  }
  return {};
}

Result<void> SegmentedSpool::scan_segment(Segment& seg) {
  const fs::path lpath = log_path(seg.id);
  UniqueFd fd(::open(lpath.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) return sys_error("open", lpath, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return sys_error("stat", lpath, errno);
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  // No segment can hold more records than this; larger journal indices are garbage.
  const uint64_t max_records = file_size / kFrameHeaderBytes;

  // Completion journal first, so the scan below can find the lowest pending record.
  seg.records = static_cast<uint32_t>(std::min<uint64_t>(max_records, kMaxRecordsPerSegment));
  seg.resize_bits();
  const fs::path dpath = done_path(seg.id);
  UniqueFd dfd(::open(dpath.c_str(), O_RDWR | O_APPEND | O_CLOEXEC));
  if (!dfd && errno != ENOENT) return sys_error("open", dpath, errno);
  if (dfd) {
    struct stat dst {};
    if (::fstat(dfd.get(), &dst) != 0) return sys_error("stat", dpath, errno);
    const uint64_t dsize = static_cast<uint64_t>(dst.st_size);
    std::string buf(64u << 10, '\0');
    uint64_t off = 0;
    const uint64_t whole = dsize - dsize % 4;
    while (off < whole) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), whole - off));
      ssize_t r = ::pread(dfd.get(), buf.data(), want, static_cast<off_t>(off));
      if (r < 0) {
        if (errno == EINTR) continue;
        return sys_error("read", dpath, errno);
      }
      if (r == 0) break;
      size_t usable = static_cast<size_t>(r) - static_cast<size_t>(r) % 4;
      for (size_t i = 0; i < usable; i += 4) {
        uint32_t idx = spool_detail::get_u32(buf.data() + i);
        if (idx < seg.records) seg.set_done(idx);
      }
      off += usable;
      if (usable == 0) break;
    }
    if (dsize != whole) {
      // A torn trailing entry: drop it so later appends stay 4-byte aligned.
      if (::ftruncate(dfd.get(), static_cast<off_t>(whole)) != 0)
        return sys_error("truncate", dpath, errno);
    }
    seg.done_fd = std::move(dfd);
  }

  std::string buf;
  FrameReader reader(fd.get(), 0, file_size, 0, buf, /*verify_crc=*/true);
  Frame f;
  bool low_found = false;
  FrameReader::Status status;
  while ((status = reader.next(f)) == FrameReader::Status::kFrame) {
    if (!low_found && !seg.is_done(f.index)) {
      low_found = true;
      seg.low_index = f.index;
      seg.low_offset = f.offset;
      seg.low_ms = f.append_ms;
    }
  }
  if (status == FrameReader::Status::kIoError)
    return sys_error("read", lpath, reader.error_number());
  uint64_t valid_end = reader.offset();
  if (status != FrameReader::Status::kEnd) {
    bool zero_tail = false;
    if (auto r = all_zero(fd.get(), valid_end, file_size, zero_tail); !r) return r;
    if (zero_tail) {
      // The pre-written (zero) space after the last record, not a torn record.
      if (::ftruncate(fd.get(), static_cast<off_t>(valid_end)) != 0)
        return sys_error("truncate", lpath, errno);
      status = FrameReader::Status::kEnd;
    }
  }
  if (status != FrameReader::Status::kEnd) {
    uint64_t cut = count_cut_records(fd.get(), reader, status, file_size, buf);
    if (::ftruncate(fd.get(), static_cast<off_t>(valid_end)) != 0)
      return sys_error("truncate", lpath, errno);
    if (::fdatasync(fd.get()) != 0) return sys_error("fdatasync", lpath, errno);
    truncated_records_ += cut;
    log::warn(kComponent, "cut torn or corrupt records from the end of a spool segment",
              {{"file", lpath.filename().string()},
               {"records", std::to_string(cut)},
               {"bytes", std::to_string(file_size - valid_end)},
               {"kind", status == FrameReader::Status::kTorn ? "torn" : "corrupt"}});
  }

  seg.size = valid_end;
  seg.records = reader.index();
  seg.resize_bits();
  if (seg.records % 64 != 0 && !seg.done_bits.empty())
    seg.done_bits.back() &= (uint64_t{1} << (seg.records % 64)) - 1;
  seg.done_bits.shrink_to_fit();
  uint64_t done = 0;
  for (uint64_t w : seg.done_bits) done += static_cast<uint64_t>(std::popcount(w));
  seg.done = static_cast<uint32_t>(done);
  if (!low_found) {
    seg.low_index = seg.records;
    seg.low_offset = seg.size;
  }
  return {};
}

// Whether [from, to) of the file holds only zero bytes.
Result<void> SegmentedSpool::all_zero(int fd, uint64_t from, uint64_t to, bool& zero) const {
  zero = false;
  std::string buf(64u << 10, '\0');
  while (from < to) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), to - from));
    const ssize_t r = ::pread(fd, buf.data(), want, static_cast<off_t>(from));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Error{std::string("read: ") + std::strerror(errno)};
    }
    if (r == 0) break;
    if (std::any_of(buf.data(), buf.data() + r, [](char c) { return c != '\0'; })) return {};
    from += static_cast<uint64_t>(r);
  }
  zero = true;
  return {};
}

// Best effort: the offending record plus the well-formed records after it that the cut loses.
uint64_t SegmentedSpool::count_cut_records(int fd, const FrameReader& bad,
                                           FrameReader::Status st, uint64_t end,
                                           std::string& buf) const {
  uint64_t cut = 1;
  if (st != FrameReader::Status::kCorrupt || bad.bad_length() == 0) return cut;
  FrameReader rest(fd, bad.offset() + kFrameHeaderBytes + bad.bad_length(), end, 0, buf, true);
  Frame f;
  while (rest.next(f) == FrameReader::Status::kFrame) ++cut;
  return cut;
}

// ---------------------------------------------------------------------------------------------
// Writer side.

Result<void> SegmentedSpool::roll() {
  const uint64_t id = next_segment_id_;
  const fs::path path = log_path(id);
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return sys_error("create", path, errno);
  if (auto r = fsync_dir(opts_.dir); !r) {
    ::unlink(path.c_str());
    return r;
  }
  if (write_fd_ && prewritten_end_ > written_bytes_) {
    // Give back the finished segment's zero tail (a crash before this leaves it: open() reads a
    // zero tail as the end of the records).
    (void)::ftruncate(write_fd_.get(), static_cast<off_t>(written_bytes_));
  }
  if (write_fd_ && unsynced_writes_) {
    // fsync=off: the finished segment is fdatasynced by the next forced sync, not here, so the
    // writer never stalls on flushing a whole segment.
    retired_unsynced_.push_back(RetiredSegment{write_segment_, std::move(write_fd_)});
  }
  ++next_segment_id_;
  std::vector<DoomedSegment> doomed;
  {
    std::lock_guard lock(mu_);
    Segment seg;
    seg.id = id;
    seg.active = true;
    segments_.emplace(id, std::move(seg));
    if (write_segment_ != 0) {
      auto old = segments_.find(write_segment_);
      if (old != segments_.end()) {
        old->second.active = false;
        if (!old->second.pending()) detach_segment_locked(old, doomed);
      }
    }
  }
  delete_files(doomed);
  write_fd_ = std::move(fd);
  write_segment_ = id;
  written_bytes_ = 0;
  prewritten_end_ = 0;
  written_records_ = 0;
  unsynced_writes_ = false;
  return {};
}

int SegmentedSpool::prewrite_ahead(size_t next_bytes) {
  const uint64_t need = written_bytes_ + next_bytes;
  if (need <= prewritten_end_ || need > opts_.segment_bytes) return 0;  // covered, or rolls soon
  const uint64_t target = std::min<uint64_t>(need + kPrewriteChunk, opts_.segment_bytes);
  static const std::string zeros(64u << 10, '\0');
  for (uint64_t off = std::max(prewritten_end_, written_bytes_); off < target;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), target - off));
    if (int err = pwrite_all(write_fd_.get(), zeros.data(), n, off)) return err;
    off += n;
  }
  prewritten_end_ = target;
  return 0;
}

Result<RecordId> SegmentedSpool::append(std::string_view payload, int64_t append_ms) {
  if (payload.size() > kMaxPayloadBytes) return Error{"spool record too large"};
  if (buffered_records_ == 0 &&
      (write_segment_ == 0 || written_bytes_ >= opts_.segment_bytes ||
       written_records_ >= kMaxRecordsPerSegment)) {
    if (auto r = roll(); !r) return Error{r.error()};
  }
  if (written_records_ + buffered_records_ >= kMaxRecordsPerSegment)
    return Error{"spool segment record limit reached; sync before appending more"};

  const size_t start = buffer_.size();
  char header[kFrameHeaderBytes];
  spool_detail::put_u32(header, static_cast<uint32_t>(payload.size()));
  spool_detail::put_u32(header + 4, 0);
  spool_detail::put_u64(header + 8, static_cast<uint64_t>(append_ms));
  buffer_.append(header, kFrameHeaderBytes);
  buffer_.append(payload);
  spool_detail::put_u32(buffer_.data() + start + 4,
                        spool_detail::frame_crc(buffer_.data() + start + 8, payload.size()));
  if (buffered_records_ == 0) buffer_first_ms_ = append_ms;
  return RecordId{write_segment_, written_records_ + buffered_records_++};
}

Result<void> SegmentedSpool::fail_sync(Error e) {
  prewritten_end_ = written_bytes_;
  if (::ftruncate(write_fd_.get(), static_cast<off_t>(written_bytes_)) != 0) {
    // The next write goes to the same offset (pwrite) and overwrites the partial data anyway;
    // a crash before then leaves a tail that open() cuts by checksum.
    log::warn(kComponent, "truncating a spool segment after a failed write failed",
              {{"file", log_path(write_segment_).filename().string()},
               {"error", std::strerror(errno)}});
  }
  buffer_.clear();
  buffered_records_ = 0;
  return e;
}

Result<void> SegmentedSpool::sync_retired() {
  Result<void> result;
  for (auto& retired : retired_unsynced_) {
    if (::fdatasync(retired.fd.get()) != 0 && result.ok())
      result = sys_error("fdatasync", log_path(retired.id), errno);
  }
  retired_unsynced_.clear();
  return result;
}

Result<void> SegmentedSpool::sync(bool force) {
  const bool want_fsync = opts_.fsync != FsyncMode::kOff || force;
  if (force) {
    // Earlier segments first; a failure fails this sync as a whole, before anything is written.
    if (auto r = sync_retired(); !r) return buffer_.empty() ? r : fail_sync(Error{r.error()});
  }
  if (buffer_.empty()) {
    if (force && unsynced_writes_ && write_fd_) {
      if (::fdatasync(write_fd_.get()) != 0)
        return sys_error("fdatasync", log_path(write_segment_), errno);
      unsynced_writes_ = false;
    }
    return {};
  }
  if (int err = prewrite_ahead(buffer_.size()))
    return fail_sync(sys_error("write", log_path(write_segment_), err));
  if (int err = pwrite_all(write_fd_.get(), buffer_.data(), buffer_.size(), written_bytes_))
    return fail_sync(sys_error("write", log_path(write_segment_), err));
  if (want_fsync) {
    if (::fdatasync(write_fd_.get()) != 0)
      return fail_sync(sys_error("fdatasync", log_path(write_segment_), errno));
    unsynced_writes_ = false;
  } else {
    unsynced_writes_ = true;
  }
  {
    std::lock_guard lock(mu_);
    publish_locked();
  }
  written_bytes_ += buffer_.size();
  written_records_ += buffered_records_;
  buffer_.clear();
  buffered_records_ = 0;
  if (buffer_.capacity() > kWriteBufferShrinkAbove) {
    std::string fresh;
    fresh.reserve(kWriteBufferReserve);
    buffer_.swap(fresh);
  }
  return {};
}

// Makes the just-written records visible to readers and counts them as pending.
void SegmentedSpool::publish_locked() {
  Segment& seg = segments_.at(write_segment_);
  pending_bytes_ -= seg.pending_bytes();
  if (seg.low_index == seg.records) seg.low_ms = buffer_first_ms_;
  seg.records += buffered_records_;
  seg.size += buffer_.size();
  seg.resize_bits();
  pending_bytes_ += seg.pending_bytes();
  pending_records_ += buffered_records_;
  note_pending_bytes_locked();
}

// ---------------------------------------------------------------------------------------------
// Reader side.

size_t SegmentedSpool::read_next(size_t max_records, std::vector<SpoolEntry>& out) {
  std::lock_guard read_lock(read_mu_);
  size_t kept = 0;
  while (kept < max_records) {
    uint64_t end = 0;
    bool has_newer = false;
    {
      std::lock_guard lock(mu_);
      auto it = segments_.lower_bound(cursor_segment_);
      if (it == segments_.end()) break;
      if (it->first != cursor_segment_) {
        cursor_segment_ = it->first;
        cursor_offset_ = 0;
        cursor_index_ = 0;
      }
      end = it->second.size;
      has_newer = std::next(it) != segments_.end();
    }
    if (cursor_offset_ >= end) {
      // A segment with a newer one after it is final (the writer rolls with an empty buffer).
      if (!has_newer) break;
      move_cursor_past_segment();
      continue;
    }
    if (!cursor_fd_ || cursor_fd_segment_ != cursor_segment_) {
      const fs::path path = log_path(cursor_segment_);
      cursor_fd_.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      cursor_fd_segment_ = cursor_segment_;
      if (!cursor_fd_) {
        if (errno == ENOENT) {  // deleted since: every record in it was complete
          move_cursor_past_segment();
          continue;
        }
        log::error(kComponent, "cannot open spool segment for reading",
                   {{"file", path.filename().string()}, {"error", std::strerror(errno)}});
        break;
      }
    }
    const size_t first = out.size();
    FrameReader reader(cursor_fd_.get(), cursor_offset_, end, cursor_index_, read_buf_, false);
    Frame f;
    FrameReader::Status status = FrameReader::Status::kFrame;
    while (kept + (out.size() - first) < max_records &&
           (status = reader.next(f)) == FrameReader::Status::kFrame) {
      out.push_back(SpoolEntry{RecordId{cursor_segment_, f.index}, f.append_ms,
                               std::string(f.payload)});
    }
    cursor_offset_ = reader.offset();
    cursor_index_ = reader.index();
    if (status != FrameReader::Status::kFrame && status != FrameReader::Status::kEnd) {
      // Only possible if the committed part of the file changed under us (disk fault): the rest
      // of this segment cannot be read; its records stay pending and the fault is logged.
      log::error(kComponent, "unreadable record in spool segment; skipping the rest of it",
                 {{"file", log_path(cursor_segment_).filename().string()},
                  {"error", status == FrameReader::Status::kIoError
                                ? std::strerror(reader.error_number())
                                : "malformed frame"}});
      cursor_offset_ = end;
    }
    {
      // Drop records completed before they were handed out (completion journal at open).
      std::lock_guard lock(mu_);
      auto it = segments_.find(cursor_segment_);
      if (it == segments_.end()) {
        out.resize(first);
      } else {
        const Segment& seg = it->second;
        auto new_end = std::remove_if(out.begin() + static_cast<std::ptrdiff_t>(first), out.end(),
                                      [&](const SpoolEntry& e) { return seg.is_done(e.id.index); });
        out.erase(new_end, out.end());
      }
    }
    kept += out.size() - first;
  }
  return kept;
}

Result<void> SegmentedSpool::for_each_pending(const std::function<void(const SpoolEntry&)>& fn) {
  std::vector<std::pair<uint64_t, uint64_t>> snapshot;  // (segment id, committed size)
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, seg] : segments_)
      if (seg.pending()) snapshot.emplace_back(id, seg.size);
  }
  std::string buf;
  SpoolEntry entry;
  for (const auto& [id, size] : snapshot) {
    const fs::path path = log_path(id);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      if (errno == ENOENT) continue;  // completed and deleted meanwhile
      return sys_error("open", path, errno);
    }
    FrameReader reader(fd.get(), 0, size, 0, buf, false);
    Frame f;
    FrameReader::Status status;
    while ((status = reader.next(f)) == FrameReader::Status::kFrame) {
      {
        std::lock_guard lock(mu_);
        auto it = segments_.find(id);
        if (it == segments_.end()) break;
        if (it->second.is_done(f.index)) continue;
      }
      entry.id = RecordId{id, f.index};
      entry.append_ms = f.append_ms;
      entry.payload.assign(f.payload);
      fn(entry);
    }
    if (status == FrameReader::Status::kIoError)
      return sys_error("read", path, reader.error_number());
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Completion.

Result<void> SegmentedSpool::complete(std::span<const RecordId> ids) {
  std::vector<DoomedSegment> doomed;
  Result<void> result = mark_complete(ids, doomed);
  delete_files(doomed);
  return result;
}

Result<void> SegmentedSpool::mark_complete(std::span<const RecordId> ids,
                                             std::vector<DoomedSegment>& doomed) {
  std::lock_guard lock(mu_);
  Result<void> result;
  size_t i = 0;
  while (i < ids.size()) {
    const uint64_t seg_id = ids[i].segment;
    size_t j = i;
    while (j < ids.size() && ids[j].segment == seg_id) ++j;
    auto it = segments_.find(seg_id);
    if (it == segments_.end()) {  // already deleted: everything in it was complete
      i = j;
      continue;
    }
    Segment& seg = it->second;
    done_scratch_.clear();
    for (size_t k = i; k < j; ++k) {
      uint32_t idx = ids[k].index;
      if (idx >= seg.records || seg.is_done(idx)) continue;
      seg.set_done(idx);
      spool_detail::append_u32(done_scratch_, idx);
    }
    i = j;
    if (done_scratch_.empty()) continue;
    const uint32_t n = static_cast<uint32_t>(done_scratch_.size() / 4);

    const fs::path dpath = done_path(seg_id);
    int err = 0;
    if (!seg.done_fd) {
      seg.done_fd.reset(::open(dpath.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
      if (!seg.done_fd) err = errno;
    }
    if (err == 0) err = write_all(seg.done_fd.get(), done_scratch_.data(), done_scratch_.size());
    if (err != 0) {
      // Not recorded: leave them pending so memory matches the journal.
      for (size_t k = 0; k < done_scratch_.size(); k += 4)
        seg.clear_done(spool_detail::get_u32(done_scratch_.data() + k));
      if (result.ok()) result = sys_error("write", dpath, err);
      continue;
    }
    pending_bytes_ -= seg.pending_bytes();
    seg.done += n;
    pending_records_ -= n;
    pending_bytes_ += seg.pending_bytes();
    if (seg.low_index < seg.records && seg.is_done(seg.low_index)) advance_low_water_locked(seg);
    if (!seg.active && !seg.pending()) detach_segment_locked(it, doomed);
  }
  note_pending_bytes_locked();
  return result;
}

// Moves the segment's low-water mark to its next pending record, reading frame headers forward
// (each frame is walked over at most once in the segment's life).
void SegmentedSpool::advance_low_water_locked(Segment& seg) {
  if (!seg.pending()) {
    seg.low_index = seg.records;
    seg.low_offset = seg.size;
    return;
  }
  if (!seg.walk_fd) {
    seg.walk_fd.reset(::open(log_path(seg.id).c_str(), O_RDONLY | O_CLOEXEC));
    if (!seg.walk_fd) {
      log::warn(kComponent, "cannot open spool segment to find its oldest pending record",
                {{"file", log_path(seg.id).filename().string()}, {"error", std::strerror(errno)}});
      return;
    }
  }
  FrameReader reader(seg.walk_fd.get(), seg.low_offset, seg.size, seg.low_index, walk_buf_, false);
  Frame f;
  FrameReader::Status status;
  while ((status = reader.next(f)) == FrameReader::Status::kFrame) {
    if (!seg.is_done(f.index)) {
      seg.low_index = f.index;
      seg.low_offset = f.offset;
      seg.low_ms = f.append_ms;
      return;
    }
  }
  // Keeps the previous (older) timestamp: the oldest-pending age errs on the old side.
  log::warn(kComponent, "cannot read spool segment to find its oldest pending record",
            {{"file", log_path(seg.id).filename().string()}});
}

void SegmentedSpool::detach_segment_locked(std::map<uint64_t, Segment>::iterator it,
                                           std::vector<DoomedSegment>& doomed) {
  doomed.push_back(DoomedSegment{it->first, std::move(it->second.done_fd)});
  segments_.erase(it);
}

// Runs without mu_: the segments are already gone from the map, so no reader starts on them.
void SegmentedSpool::delete_files(std::vector<DoomedSegment>& doomed) {
  if (doomed.empty()) return;
  for (auto& d : doomed) {
    const fs::path lpath = log_path(d.id);
    const fs::path dpath = done_path(d.id);
    // The journal is made durable first, so a crash that resurrects the unlinked files still
    // finds the segment complete.
    if (d.done_fd) ::fdatasync(d.done_fd.get());
    d.done_fd.reset();
    if (::unlink(lpath.c_str()) != 0 && errno != ENOENT) {
      log::warn(kComponent, "cannot delete a complete spool segment; retried at next start",
                {{"file", lpath.filename().string()}, {"error", std::strerror(errno)}});
      continue;
    }
    if (::unlink(dpath.c_str()) != 0 && errno != ENOENT) {
      log::warn(kComponent, "cannot delete a spool completion journal",
                {{"file", dpath.filename().string()}, {"error", std::strerror(errno)}});
    }
  }
  doomed.clear();
  if (auto r = fsync_dir(opts_.dir); !r)
    log::warn(kComponent, "fsync of the spool directory failed", {{"error", r.error()}});
}

SpoolStats SegmentedSpool::stats() const {
  std::lock_guard lock(mu_);
  SpoolStats s;
  s.pending_records = pending_records_;
  s.bytes = pending_bytes_;
  s.segments = segments_.size();
  for (const auto& [id, seg] : segments_) {
    if (seg.pending()) {
      s.oldest_pending_append_ms = seg.low_ms;
      break;
    }
  }
  return s;
}

}  // namespace

Result<std::unique_ptr<Spool>> Spool::open(const SpoolOptions& opts, Clock& clock) {
  // The clock is not needed yet: callers stamp append_ms themselves.
  auto spool = std::make_unique<SegmentedSpool>(opts);
  if (auto r = spool->load(); !r) return Error{r.error()};
  return std::unique_ptr<Spool>(std::move(spool));
}

}  // namespace capi_relay
