#pragma once
// The in-memory half of the local dedup backend (private to src/dedup): an open-addressing hash
// table of 12-byte slots (64-bit fingerprint, 32-bit expiry), linear probing, load factor <= 0.75,
// so RAM per key is 16 bytes when the table is full and at most 32 right after it doubled.
//
// A slot is empty (fingerprint 0; a real fingerprint 0 is stored as 1), pending (expiry
// kPendingExpiry: claimed, its event not yet durable) or committed (expiry in seconds since
// 2020-01-01, live while now < expiry). Expired committed slots count as absent for every query;
// they are reused by a later claim of a key probing through them, removed by sweep() and dropped
// on rehash. Removal uses backward-shift deletion, so there are no tombstones.
//
// Not thread-safe: LocalDedup serializes access. Allocation failure on growth is fatal
// (std::bad_alloc), as for any container.
#include <cstddef>
#include <cstdint>
#include <memory>

namespace capi_relay::dedup_detail {

// Seconds since 2020-01-01T00:00:00Z: 32 bits reach 2156.
constexpr int64_t kExpiryEpochMs = 1577836800000;
constexpr uint32_t kPendingExpiry = 0xFFFFFFFFu;

// Expiry (in table seconds) of an entry committed at `at_ms` for `window_ms`: rounded up, so an
// entry lives at least its full window.
uint32_t expiry_seconds(int64_t at_ms, int64_t window_ms);
// The current second in table seconds (rounded down).
uint32_t now_seconds(int64_t now_ms);

class FingerprintTable {
 public:
  enum class State : uint8_t { kAbsent, kPending, kCommitted };

  explicit FingerprintTable(uint64_t initial_capacity);

  // Absent or expired: becomes pending and returns true. Pending or live: returns false.
  bool claim(uint64_t fp, uint32_t now_s);
  // Sets the key committed with `expiry` whatever its state (pending, committed or absent).
  void set_committed(uint64_t fp, uint32_t expiry, uint32_t now_s);
  // Adds the key committed with `expiry` unless it is pending or live; returns true if it did.
  bool insert_if_absent(uint64_t fp, uint32_t expiry, uint32_t now_s);
  // Removes the key; returns the state it had (an expired key reads as kAbsent).
  State erase(uint64_t fp, uint32_t now_s);
  State state(uint64_t fp, uint32_t now_s) const;
  // Starts loading the key's home slot into the cache: a caller with many keys prefetches a few
  // ahead, so their cache misses overlap instead of following one another.
  void prefetch(uint64_t fp) const { __builtin_prefetch(&slots_[home(normalize(fp))]); }

  // Removes expired committed slots among the next `max_slots` slots of a cursor that cycles
  // through the table, so committed() follows the live count without a full scan.
  void sweep(uint32_t now_s, uint64_t max_slots);

  // Calls fn(fingerprint, expiry) for every live committed key.
  template <class Fn>
  void for_each_live(uint32_t now_s, Fn&& fn) const {
    for (uint64_t i = 0; i < capacity_; ++i) {
      const Slot& s = slots_[i];
      if (s.fp != 0 && s.exp != kPendingExpiry && s.exp > now_s) fn(uint64_t{s.fp}, uint32_t{s.exp});
    }
  }

  uint64_t committed() const { return committed_; }  // includes expired slots not yet swept
  uint64_t pending() const { return pending_; }
  uint64_t capacity() const { return capacity_; }
  uint64_t memory_bytes() const { return capacity_ * sizeof(Slot); }

 private:
  struct __attribute__((packed)) Slot {
    uint64_t fp;
    uint32_t exp;
  };
  static_assert(sizeof(Slot) == 12);

  static uint64_t normalize(uint64_t fp) { return fp == 0 ? 1 : fp; }
  uint64_t home(uint64_t fp) const { return (fp * 0x9E3779B97F4A7C15ull) >> shift_; }
  static bool live(const Slot& s, uint32_t now_s) { return s.exp == kPendingExpiry || s.exp > now_s; }
  // Index of the key (found) or of the empty slot ending its probe path.
  uint64_t find(uint64_t fp, bool& found) const;
  // Index of the key (found), else of the slot it should take: the first expired slot on its
  // probe path, or an empty one after growing if that would pass the load factor.
  uint64_t find_for_insert(uint64_t fp, uint32_t now_s, bool& found);
  void remove_at(uint64_t i);
  void rehash(uint32_t now_s);
  void allocate(uint64_t capacity);

  std::unique_ptr<Slot[]> slots_;
  uint64_t capacity_ = 0;
  uint64_t mask_ = 0;
  int shift_ = 64;
  uint64_t max_used_ = 0;   // capacity * 3 / 4
  uint64_t used_ = 0;       // non-empty slots (pending + committed, expired included)
  uint64_t committed_ = 0;  // committed slots, expired included
  uint64_t pending_ = 0;
  uint64_t sweep_cursor_ = 0;
};

}  // namespace capi_relay::dedup_detail
