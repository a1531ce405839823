#include "frame_reader.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "capi_relay/common/hash.hpp"
#include "le_bytes.hpp"

namespace capi_relay::spool_detail {

namespace {
// Read-ahead size: large enough that a chunk holds hundreds of typical records.
constexpr uint64_t kReadChunkBytes = 256u << 10;
}  // namespace

uint32_t frame_crc(const char* ms_and_payload, size_t payload_len) {
  return crc32c(ms_and_payload, 8 + payload_len);
}

FrameReader::Status FrameReader::fill(uint64_t n, const char** data) {
  if (offset_ >= buf_start_ && offset_ + n <= buf_start_ + buf_len_) {
    *data = buf_.data() + (offset_ - buf_start_);
    return Status::kFrame;
  }
  uint64_t want = std::min(std::max(n, kReadChunkBytes), end_ - offset_);
  if (buf_.size() < want) buf_.resize(want);
  size_t got = 0;
  while (got < want) {
    ssize_t r = ::pread(fd_, buf_.data() + got, want - got, static_cast<off_t>(offset_ + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      errno_ = errno;
      buf_len_ = 0;
      return Status::kIoError;
    }
    if (r == 0) break;  // the file is shorter than the range we were given
    got += static_cast<size_t>(r);
  }
  buf_start_ = offset_;
  buf_len_ = got;
  if (got < n) return Status::kTorn;
  *data = buf_.data();
  return Status::kFrame;
}

FrameReader::Status FrameReader::next(Frame& out) {
  if (offset_ >= end_) return Status::kEnd;
  if (end_ - offset_ < kFrameHeaderBytes) return Status::kTorn;
  const char* p = nullptr;
  if (auto st = fill(kFrameHeaderBytes, &p); st != Status::kFrame) return st;
  uint32_t len = get_u32(p);
  if (len > kMaxPayloadBytes) {
    bad_length_ = 0;
    return Status::kCorrupt;
  }
  if (end_ - offset_ - kFrameHeaderBytes < len) return Status::kTorn;
  if (auto st = fill(kFrameHeaderBytes + len, &p); st != Status::kFrame) return st;
  if (verify_ && frame_crc(p + 8, len) != get_u32(p + 4)) {
    bad_length_ = len;
    return Status::kCorrupt;
  }
  out.index = index_;
  out.offset = offset_;
  out.append_ms = static_cast<int64_t>(get_u64(p + 8));
  out.payload = std::string_view(p + kFrameHeaderBytes, len);
  offset_ += kFrameHeaderBytes + len;
  ++index_;
  return Status::kFrame;
}

}  // namespace capi_relay::spool_detail
