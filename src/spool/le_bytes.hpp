#pragma once
// Little-endian fixed-width encoding for the spool's on-disk frames and journals (private to
// src/spool). The relay only targets little-endian hosts, but the byte order is spelled out so the
// file format does not depend on it.
#include <cstdint>
#include <cstring>
#include <string>

namespace capi_relay::spool_detail {

inline void put_u32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xffu);
}
inline void put_u64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xffu);
}
inline uint32_t get_u32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}
inline uint64_t get_u64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}
inline void append_u32(std::string& out, uint32_t v) {
  char b[4];
  put_u32(b, v);
  out.append(b, 4);
}
inline void append_u64(std::string& out, uint64_t v) {
  char b[8];
  put_u64(b, v);
  out.append(b, 8);
}

}  // namespace capi_relay::spool_detail
