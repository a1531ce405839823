// libFuzzer target: EventParser::parse_body on arbitrary bytes — the ingest body parser,
// validator and NDJSON splitter (contract §3). The first input byte picks the padded/unpadded
// path and require_timestamp; the rest is the body. Invariants checked beyond "no crash":
// a kOk result has at least one item, indices are increasing, a rejected item's error starts
// with its reason name, an accepted event has an ID of at most 64 characters and hashes in
// 64-hex form, and round-trips unchanged through the spool record codec.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "capi_relay/common/clock.hpp"
#include "capi_relay/common/log.hpp"
#include "capi_relay/event/parser.hpp"
#include "capi_relay/event/record.hpp"

namespace {

using namespace capi_relay;

// Deterministic randomness so a crash input reproduces.
class CountingRandom final : public RandomSource {
 public:
  double uniform01() override { return 0.5; }
  uint64_t next_u64() override { return ++n_; }

 private:
  uint64_t n_ = 0;
};

EventRules make_rules() {
  EventRules r;
  r.conversions.emplace("purchase", 123);
  r.conversions.emplace("signup", 456);
  r.allowed_rules = {123, 456};
  return r;
}

void check(bool ok) {
  if (!ok) std::abort();
}

// eventId is limited to 64 characters (contract §3), i.e. UTF-8 code points, not bytes.
size_t utf8_chars(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool is_hex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    log::configure(log::Level::kError, log::Format::kJson);
    return true;
  }();
  (void)quiet;
  static const EventRules rules = make_rules();
  static CountingRandom random;
  static EventParser parser(rules, random);
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  const bool padded = (mode & 1) != 0;
  if (padded) body.reserve(body.size() + 64);
  ParseOptions opts{1764320000000, (mode & 2) != 0};
  ParsedBody out;
  parser.parse_body(body, padded, opts, out);
  if (out.status == BodyStatus::kOk) {
    check(!out.items.empty());
    for (size_t i = 1; i < out.items.size(); ++i) check(out.items[i].index > out.items[i - 1].index);
    std::string rec;
    for (const auto& item : out.items) {
      if (!item.ok) {
        check(std::string_view(item.error).starts_with(reject_reason_name(item.reason)));
        continue;
      }
      const auto& e = item.event;
      check(!e.event_id.empty() && utf8_chars(e.event_id) <= 64);
      check(e.email_sha256.empty() || is_hex64(e.email_sha256));
      check(e.ip_sha256.empty() || is_hex64(e.ip_sha256));
      check(rules.allowed_rules.count(e.rule_id) == 1);
      rec.clear();
      encode_record(e, rec);
      auto back = decode_record(rec);
      check(back.ok());
      check(*back == e);
    }
  } else {
    check(!out.error.empty());
  }
  return 0;
}
