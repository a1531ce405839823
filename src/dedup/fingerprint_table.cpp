#include "fingerprint_table.hpp"

#include <algorithm>
#include <bit>

namespace capi_relay::dedup_detail {

uint32_t expiry_seconds(int64_t at_ms, int64_t window_ms) {
  const int64_t t = at_ms + window_ms - kExpiryEpochMs;
  if (t <= 0) return 1;
  const int64_t s = (t + 999) / 1000;
  return static_cast<uint32_t>(std::min<int64_t>(s, kPendingExpiry - 1));
}

uint32_t now_seconds(int64_t now_ms) {
  const int64_t t = now_ms - kExpiryEpochMs;
  if (t <= 0) return 0;
  return static_cast<uint32_t>(std::min<int64_t>(t / 1000, kPendingExpiry - 2));
}

FingerprintTable::FingerprintTable(uint64_t initial_capacity) { allocate(initial_capacity); }

void FingerprintTable::allocate(uint64_t capacity) {
  capacity_ = std::bit_ceil(std::max<uint64_t>(capacity, 16));
  mask_ = capacity_ - 1;
  shift_ = 64 - std::countr_zero(capacity_);
  max_used_ = capacity_ / 4 * 3;
  slots_ = std::make_unique<Slot[]>(capacity_);  // value-initialized: all empty
  used_ = committed_ = pending_ = 0;
  sweep_cursor_ = 0;
}

uint64_t FingerprintTable::find(uint64_t fp, bool& found) const {
  uint64_t i = home(fp);
  for (;;) {
    const Slot& s = slots_[i];
    if (s.fp == fp) {
      found = true;
      return i;
    }
    if (s.fp == 0) {
      found = false;
      return i;
    }
    i = (i + 1) & mask_;
  }
}

uint64_t FingerprintTable::find_for_insert(uint64_t fp, uint32_t now_s, bool& found) {
  for (;;) {
    uint64_t i = home(fp);
    uint64_t reuse = capacity_;  // first expired slot on the probe path: where the key can go
    for (;;) {
      const Slot& s = slots_[i];
      if (s.fp == fp) {
        found = true;
        return i;
      }
      if (s.fp == 0) break;
      if (reuse == capacity_ && !live(s, now_s)) reuse = i;
      i = (i + 1) & mask_;
    }
    found = false;
    if (reuse != capacity_) return reuse;
    // Taking an empty slot: stay within the load factor, so probes stay short and always end.
    if (used_ + 1 <= max_used_) return i;
    rehash(now_s);
  }
}

bool FingerprintTable::claim(uint64_t fp, uint32_t now_s) {
  fp = normalize(fp);
  bool found = false;
  const uint64_t i = find_for_insert(fp, now_s, found);
  Slot& s = slots_[i];
  if (found && live(s, now_s)) return false;
  if (s.fp != 0) {
    --committed_;  // the key's own expired entry, or another key's expired entry taken over
  } else {
    ++used_;
  }
  s.fp = fp;
  s.exp = kPendingExpiry;
  ++pending_;
  return true;
}

void FingerprintTable::set_committed(uint64_t fp, uint32_t expiry, uint32_t now_s) {
  fp = normalize(fp);
  expiry = std::min(expiry, kPendingExpiry - 1);
  bool found = false;
  const uint64_t i = find_for_insert(fp, now_s, found);
  Slot& s = slots_[i];
  if (found) {
    if (s.exp == kPendingExpiry) {
      --pending_;
      ++committed_;
    }
  } else if (s.fp != 0) {
    // another key's expired entry taken over: committed count unchanged
  } else {
    ++used_;
    ++committed_;
  }
  s.fp = fp;
  s.exp = expiry;
}

bool FingerprintTable::insert_if_absent(uint64_t fp, uint32_t expiry, uint32_t now_s) {
  fp = normalize(fp);
  expiry = std::min(expiry, kPendingExpiry - 1);
  bool found = false;
  const uint64_t i = find_for_insert(fp, now_s, found);
  Slot& s = slots_[i];
  if (found && live(s, now_s)) return false;
  if (s.fp == 0) {
    ++used_;
    ++committed_;
  }
  s.fp = fp;
  s.exp = expiry;
  return true;
}

FingerprintTable::State FingerprintTable::state(uint64_t fp, uint32_t now_s) const {
  fp = normalize(fp);
  bool found = false;
  const uint64_t i = find(fp, found);
  if (!found) return State::kAbsent;
  const Slot& s = slots_[i];
  if (s.exp == kPendingExpiry) return State::kPending;
  return s.exp > now_s ? State::kCommitted : State::kAbsent;
}

FingerprintTable::State FingerprintTable::erase(uint64_t fp, uint32_t now_s) {
  fp = normalize(fp);
  bool found = false;
  const uint64_t i = find(fp, found);
  if (!found) return State::kAbsent;
  const Slot& s = slots_[i];
  State was;
  if (s.exp == kPendingExpiry) {
    was = State::kPending;
    --pending_;
  } else {
    was = s.exp > now_s ? State::kCommitted : State::kAbsent;
    --committed_;
  }
  remove_at(i);
  return was;
}

void FingerprintTable::remove_at(uint64_t i) {
  // Backward-shift deletion: pull later members of the cluster into the hole unless their home
  // lies cyclically in (hole, position], where moving them would break their probe path.
  --used_;
  uint64_t j = i;
  for (;;) {
    j = (j + 1) & mask_;
    if (slots_[j].fp == 0) break;
    const uint64_t k = home(slots_[j].fp);
    const bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
    if (!stays) {
      slots_[i] = slots_[j];
      i = j;
    }
  }
  slots_[i].fp = 0;
  slots_[i].exp = 0;
}

void FingerprintTable::sweep(uint32_t now_s, uint64_t max_slots) {
  max_slots = std::min(max_slots, capacity_);
  // Only advancing counts against the budget; removals end because each one lowers committed_.
  for (uint64_t n = 0; n < max_slots && committed_ > 0;) {
    const Slot& s = slots_[sweep_cursor_];
    if (s.fp != 0 && s.exp != kPendingExpiry && s.exp <= now_s) {
      --committed_;
      remove_at(sweep_cursor_);  // a later entry may have moved here: look again
      continue;
    }
    sweep_cursor_ = (sweep_cursor_ + 1) & mask_;
    ++n;
  }
}

void FingerprintTable::rehash(uint32_t now_s) {
  uint64_t keep = 0;
  for (uint64_t i = 0; i < capacity_; ++i) {
    if (slots_[i].fp != 0 && live(slots_[i], now_s)) ++keep;
  }
  // Leave the table at most half full, so the next rehash is at least a quarter table away.
  uint64_t new_capacity = capacity_;
  while ((keep + 1) * 2 > new_capacity) new_capacity *= 2;
  auto old = std::move(slots_);
  const uint64_t old_capacity = capacity_;
  allocate(new_capacity);
  for (uint64_t i = 0; i < old_capacity; ++i) {
    const Slot& s = old[i];
    if (s.fp == 0 || !live(s, now_s)) continue;
    uint64_t j = home(s.fp);
    while (slots_[j].fp != 0) j = (j + 1) & mask_;
    slots_[j] = s;
    ++used_;
    if (s.exp == kPendingExpiry) {
      ++pending_;
    } else {
      ++committed_;
    }
  }
}

}  // namespace capi_relay::dedup_detail
