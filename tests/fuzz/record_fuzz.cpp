// libFuzzer target: decode_record on arbitrary bytes (the spool record payload codec). A payload
// that decodes must re-encode to a payload that decodes to the same event (re-encoding may
// normalize the version, so only the event is compared).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "capi_relay/event/record.hpp"

using namespace capi_relay;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto ev = decode_record(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!ev.ok()) return 0;
  std::string again;
  encode_record(*ev, again);
  auto back = decode_record(again);
  if (!back.ok() || !(*back == *ev)) std::abort();
  return 0;
}
