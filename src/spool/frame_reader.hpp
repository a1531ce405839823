#pragma once
// Sequential reader of spool record frames (private to src/spool):
//   u32 payload_len | u32 crc32c(append_ms..payload) | i64 append_ms | payload   (little endian)
// It owns nothing but its position: the file descriptor and the read buffer belong to the caller
// (so a reader can be created per call without allocating). Not thread-safe; one reader per
// buffer. Statuses say why reading stopped: kEnd at a clean end, kTorn when the range ends inside a
// frame, kCorrupt for an impossible length or a checksum mismatch (when verifying), kIoError with
// the errno in error_number().
#include <cstdint>
#include <string>
#include <string_view>

namespace capi_relay::spool_detail {

inline constexpr uint64_t kFrameHeaderBytes = 16;
// No event comes near this; a larger length field can only be corruption.
inline constexpr uint32_t kMaxPayloadBytes = 64u << 20;

struct Frame {
  uint32_t index = 0;    // record number within the segment
  uint64_t offset = 0;   // file offset of the frame header
  int64_t append_ms = 0;
  std::string_view payload;  // valid until the next call to next()
};

// Computes the checksum stored in a frame: crc32c over the 8 append_ms bytes and the payload,
// which are contiguous in the frame (`ms_and_payload` points at append_ms).
uint32_t frame_crc(const char* ms_and_payload, size_t payload_len);

class FrameReader {
 public:
  enum class Status { kFrame, kEnd, kTorn, kCorrupt, kIoError };

  // Reads frames in [offset, end) of fd; `index` is the record number of the frame at offset.
  FrameReader(int fd, uint64_t offset, uint64_t end, uint32_t index, std::string& buffer,
              bool verify_crc)
      : fd_(fd), offset_(offset), end_(end), index_(index), buf_(buffer), verify_(verify_crc) {}

  Status next(Frame& out);

  uint64_t offset() const { return offset_; }  // start of the next (or offending) frame
  uint32_t index() const { return index_; }    // its record number
  // Payload length of the offending frame after kCorrupt by checksum (0 if the length was bad).
  uint32_t bad_length() const { return bad_length_; }
  int error_number() const { return errno_; }

 private:
  // Points *data at n bytes starting at offset_, reading ahead in chunks.
  Status fill(uint64_t n, const char** data);

  int fd_;
  uint64_t offset_;
  uint64_t end_;
  uint32_t index_;
  std::string& buf_;
  bool verify_;
  uint64_t buf_start_ = 0;
  size_t buf_len_ = 0;
  uint32_t bad_length_ = 0;
  int errno_ = 0;
};

}  // namespace capi_relay::spool_detail
