// libFuzzer target: the LinkedIn response interpreter (include/capi_relay/upload/
// response_policy.hpp) on arbitrary bodies, statuses, element counts and Retry-After values.
// Layout: byte 0-1 status (mod 600), byte 2-3 element count (mod 6000), byte 4 length L of the
// Retry-After value, then L bytes of it, then the body. Invariant: a kPerElement verdict has
// exactly one verdict per element sent; a kPause verdict has a reason.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "capi_relay/upload/response_policy.hpp"

using namespace capi_relay;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 5) return 0;
  const int status = ((data[0] << 8) | data[1]) % 600;
  const size_t count = static_cast<size_t>((data[2] << 8) | data[3]) % 6000;
  size_t ra_len = data[4];
  std::string_view rest(reinterpret_cast<const char*>(data + 5), size - 5);
  if (ra_len > rest.size()) ra_len = rest.size();
  std::string_view retry_after = rest.substr(0, ra_len);
  std::string_view body = rest.substr(ra_len);

  ResponseVerdict v = interpret_response(status, body, count);
  if (v.action == BatchAction::kPerElement && v.elements.size() != count) std::abort();
  if (v.action == BatchAction::kPause && v.pause_reason.empty()) std::abort();
  (void)parse_error_indices(body);
  if (auto d = parse_retry_after(retry_after, 1764320000000); d && *d < 0) std::abort();
  return 0;
}
