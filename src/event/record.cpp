#include "capi_relay/event/record.hpp"

#include <array>
#include <cstring>

#include "capi_relay/common/hash.hpp"

namespace capi_relay {

namespace {

constexpr uint8_t kFlagDerivedId = 0x01;
constexpr size_t kMaxStringBytes = 0xFFFF;
// version + rule + happened + received + flags
constexpr size_t kFixedBytes = 1 + 8 + 8 + 8 + 1;

// The 15 strings of version 1, in NormalizedEvent declaration order.
template <class Event>
auto v1_strings(Event& e) {
  return std::array{&e.event_id,   &e.amount,    &e.currency, &e.email_sha256, &e.ip_sha256,
                    &e.li_fat_id,  &e.acxiom_id, &e.moat_id,  &e.external_id,  &e.lead,
                    &e.first_name, &e.last_name, &e.title,    &e.company_name, &e.country_code};
}

void put_u64(std::string& out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  out.append(b, 8);
}

uint64_t get_u64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Bounds-checked reader over the payload: every read fails once past the end.
class Reader {
 public:
  explicit Reader(std::string_view in)
      : p_(reinterpret_cast<const unsigned char*>(in.data())), left_(in.size()) {}
  bool u8(uint8_t& v) {
    if (left_ < 1) return false;
    v = *p_++;
    --left_;
    return true;
  }
  bool u64(uint64_t& v) {
    if (left_ < 8) return false;
    v = get_u64(p_);
    p_ += 8;
    left_ -= 8;
    return true;
  }
  bool str(std::string& s) {
    if (left_ < 2) return false;
    size_t n = static_cast<size_t>(p_[0]) | (static_cast<size_t>(p_[1]) << 8);
    p_ += 2;
    left_ -= 2;
    if (left_ < n) return false;
    s.assign(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    left_ -= n;
    return true;
  }
  size_t left() const { return left_; }

 private:
  const unsigned char* p_;
  size_t left_;
};

}  // namespace

void encode_record(const NormalizedEvent& e, std::string& out) {
  size_t total = kFixedBytes;
  for (const std::string* s : v1_strings(e)) total += 2 + std::min(s->size(), kMaxStringBytes);
  out.reserve(out.size() + total);
  out.push_back(static_cast<char>(kRecordVersion));
  put_u64(out, e.rule_id);
  put_u64(out, static_cast<uint64_t>(e.happened_at_ms));
  put_u64(out, static_cast<uint64_t>(e.received_at_ms));
  out.push_back(static_cast<char>(e.event_id_derived ? kFlagDerivedId : 0));
  for (const std::string* s : v1_strings(e)) {
    // The parser caps every field far below 64 KiB; an event built elsewhere is truncated
    // rather than written with a length that would misframe the rest of the record.
    size_t n = std::min(s->size(), kMaxStringBytes);
    out.push_back(static_cast<char>(n & 0xFF));
    out.push_back(static_cast<char>(n >> 8));
    out.append(s->data(), n);
  }
}

Result<NormalizedEvent> decode_record(std::string_view payload) {
  Reader r(payload);
  uint8_t version = 0;
  if (!r.u8(version)) return Error{"event record: empty payload"};
  if (version != 1) return Error{"event record: unknown version " + std::to_string(version)};
  NormalizedEvent e;
  uint64_t rule = 0, happened = 0, received = 0;
  uint8_t flags = 0;
  if (!r.u64(rule) || !r.u64(happened) || !r.u64(received) || !r.u8(flags))
    return Error{"event record: truncated header"};
  if ((flags & ~kFlagDerivedId) != 0) return Error{"event record: unknown flags"};
  e.rule_id = rule;
  e.happened_at_ms = static_cast<int64_t>(happened);
  e.received_at_ms = static_cast<int64_t>(received);
  e.event_id_derived = (flags & kFlagDerivedId) != 0;
  for (std::string* s : v1_strings(e)) {
    if (!r.str(*s)) return Error{"event record: truncated field"};
  }
  if (r.left() != 0) return Error{"event record: trailing bytes"};
  return e;
}

uint64_t dedup_fingerprint(uint64_t rule_id, std::string_view event_id) {
  // SHA-256 over rule_id (8 bytes little-endian) followed by the event ID; the first 8 digest
  // bytes read as a little-endian integer.
  char stack[8 + 128];
  std::string heap;
  char* buf = stack;
  if (event_id.size() > sizeof(stack) - 8) {
    heap.resize(8 + event_id.size());
    buf = heap.data();
  }
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>((rule_id >> (8 * i)) & 0xFF);
  std::memcpy(buf + 8, event_id.data(), event_id.size());
  Sha256Digest d = sha256(std::string_view(buf, 8 + event_id.size()));
  return get_u64(d.data());
}

}  // namespace capi_relay
