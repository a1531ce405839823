#pragma once
// How LinkedIn's answer to a BATCH_CREATE maps onto what the relay does with each element
// (contract §5). Pure functions: no I/O, no clock; thread-safe.
//
//   2xx + {"elements":[{"status":201},...]}  per element: 2xx done; 429/5xx retry; other 4xx
//                                            dead-letter (status, message). No statuses: all done.
//   400/422 naming indices                   named elements dead-lettered with their message part,
//                                            the others re-sent.
//   400/404/422 naming no index, other 4xx   systemic: pause "systemic_error: <status> <msg>"
//   401 REVOKED_ACCESS_TOKEN                 pause "token_revoked"
//   401 otherwise                            refresh the token, then retry
//   403                                      pause "forbidden"
//   426                                      pause "version_retired"
//   408, 429, 5xx                            retry with backoff
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace capi_relay {

enum class ElementAction : uint8_t { kDone, kDeadLetter, kRetry };

struct ElementVerdict {
  ElementAction action = ElementAction::kDone;
  int status = 0;       // the element's (or the response's) HTTP status
  std::string message;  // LinkedIn's message for this element (dead letters), may be empty
};

enum class BatchAction : uint8_t {
  kPerElement,    // apply `elements` (one verdict per element sent)
  kRetry,         // resend the whole batch after backoff
  kRefreshToken,  // 401: refresh the access token once, then resend
  kPause,         // stop uploading (pause_reason); keep the batch
  kSplit,         // 413: the body is too large for the upstream; resend it in halves
};

struct ResponseVerdict {
  BatchAction action = BatchAction::kRetry;
  std::vector<ElementVerdict> elements;  // kPerElement: exactly element_count entries
  std::string pause_reason;              // kPause
  std::string retry_cause;               // kRetry: "429" | "5xx" | "408" (metric label)
  // kPerElement from a 400/422 naming indices: the request was refused only because of the named
  // elements, so the others go again at once (no backoff).
  bool resend_now = false;
};

// element_count: how many elements the request carried.
ResponseVerdict interpret_response(int status, std::string_view body, size_t element_count);

// Index verdicts in a 400/422 message: "Index: N, ERROR :: ..." blocks (further "ERROR ::" lines
// belong to the last index) and "... indices [0, 3] (0-indexed)". Returns (index, message part)
// pairs in order of appearance; empty when the message names no index.
std::vector<std::pair<size_t, std::string>> parse_error_indices(std::string_view message);

// Retry-After as delta-seconds or an HTTP-date (IMF-fixdate, RFC 850, asctime). Returns the delay
// in ms from now_ms (0 for a date in the past), or nullopt when absent/unparseable.
std::optional<int64_t> parse_retry_after(std::string_view value, int64_t now_ms);

}  // namespace capi_relay
