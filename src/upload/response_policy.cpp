// LinkedIn response interpretation (contract §5). See response_policy.hpp for the table.
#include "capi_relay/upload/response_policy.hpp"

#include <time.h>

#include <cctype>
#include <charconv>
#include <simdjson.h>

namespace capi_relay {
namespace {

constexpr size_t kMaxReasonMessage = 200;

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Reads an unsigned decimal at s[pos...]; advances pos. False when no digit is there.
bool read_number(std::string_view s, size_t& pos, size_t& out) {
  const char* begin = s.data() + pos;
  auto [ptr, ec] = std::from_chars(begin, s.data() + s.size(), out);
  if (ec != std::errc{}) return false;
  pos += static_cast<size_t>(ptr - begin);
  return true;
}

struct ErrorBody {
  std::string message;
  std::string code;
};

// The error body's `message` and `code`; a non-JSON body becomes the message itself.
ErrorBody read_error_body(std::string_view body) {
  ErrorBody out;
  simdjson::dom::parser parser;
  simdjson::padded_string padded(body);
  simdjson::dom::element doc;
  if (parser.parse(padded).get(doc) != simdjson::SUCCESS) {
    out.message = std::string(trim(body.substr(0, 1000)));
    return out;
  }
  std::string_view s;
  if (doc["message"].get_string().get(s) == simdjson::SUCCESS) out.message = std::string(s);
  if (doc["code"].get_string().get(s) == simdjson::SUCCESS) out.code = std::string(s);
  return out;
}

std::string shorten(std::string_view s) {
  s = trim(s);
  std::string out(s.substr(0, kMaxReasonMessage));
  for (char& c : out) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return out;
}

ElementVerdict element_from_status(int status, std::string message) {
  ElementVerdict v;
  v.status = status;
  if (status >= 200 && status < 300) {
    v.action = ElementAction::kDone;
  } else if (status >= 400 && status < 500 && status != 429 && status != 408) {
    v.action = ElementAction::kDeadLetter;
    v.message = std::move(message);
  } else {
    v.action = ElementAction::kRetry;  // 408, 429, 5xx, or an unexpected status
  }
  return v;
}

ResponseVerdict per_element_success(int status, std::string_view body, size_t n) {
  ResponseVerdict v;
  v.action = BatchAction::kPerElement;
  v.elements.assign(n, ElementVerdict{ElementAction::kDone, status, {}});
  simdjson::dom::parser parser;
  simdjson::padded_string padded(body);
  simdjson::dom::element doc;
  simdjson::dom::array elements;
  // No parseable per-element statuses: the request as a whole succeeded.
  if (parser.parse(padded).get(doc) != simdjson::SUCCESS) return v;
  if (doc["elements"].get_array().get(elements) != simdjson::SUCCESS) return v;
  size_t i = 0;
  for (simdjson::dom::element el : elements) {
    if (i >= n) break;
    int64_t s = 0;
    if (el["status"].get_int64().get(s) == simdjson::SUCCESS) {
      std::string_view msg;
      std::string message;
      if (el["message"].get_string().get(msg) == simdjson::SUCCESS ||
          el["error"]["message"].get_string().get(msg) == simdjson::SUCCESS) {
        message = std::string(msg);
      }
      v.elements[i] = element_from_status(static_cast<int>(s), std::move(message));
    }
    ++i;
  }
  return v;
}

ResponseVerdict pause(std::string reason) {
  ResponseVerdict v;
  v.action = BatchAction::kPause;
  v.pause_reason = std::move(reason);
  return v;
}

ResponseVerdict retry(std::string cause) {
  ResponseVerdict v;
  v.action = BatchAction::kRetry;
  v.retry_cause = std::move(cause);
  return v;
}

}  // namespace

std::vector<std::pair<size_t, std::string>> parse_error_indices(std::string_view message) {
  std::vector<std::pair<size_t, std::string>> out;
  auto add = [&out](size_t index, std::string_view text) {
    for (auto& [i, m] : out) {
      if (i == index) {
        if (!text.empty()) m += m.empty() ? std::string(text) : "\n" + std::string(text);
        return;
      }
    }
    out.emplace_back(index, std::string(text));
  };

  // "Index: N, ERROR :: ...": the part for N runs to the next "Index:" (so further "ERROR ::"
  // lines belong to N).
  constexpr std::string_view kIndex = "Index: ";
  size_t pos = message.find(kIndex);
  while (pos != std::string_view::npos) {
    size_t p = pos + kIndex.size();
    size_t index = 0;
    const size_t next = message.find(kIndex, p);
    if (read_number(message, p, index)) {
      std::string_view part = message.substr(p, next == std::string_view::npos ? next : next - p);
      part = trim(part);
      if (!part.empty() && part.front() == ',') part = trim(part.substr(1));
      add(index, part);
    }
    pos = next;
  }

  // "... indices [0, 3] (0-indexed)": every listed index gets the text before "indices".
  constexpr std::string_view kIndices = "indices [";
  pos = message.find(kIndices);
  while (pos != std::string_view::npos) {
    std::string_view text = trim(message.substr(0, pos));
    const size_t line_start = text.rfind('\n');
    if (line_start != std::string_view::npos) text = trim(text.substr(line_start + 1));
    while (!text.empty() && (text.back() == ',' || text.back() == ';')) text.remove_suffix(1);
    size_t p = pos + kIndices.size();
    while (p < message.size()) {
      while (p < message.size() && (message[p] == ' ' || message[p] == ',')) ++p;
      size_t index = 0;
      if (!read_number(message, p, index)) break;
      add(index, text);
    }
    pos = message.find(kIndices, p);
  }
  return out;
}

ResponseVerdict interpret_response(int status, std::string_view body, size_t element_count) {
  if (status >= 200 && status < 300) return per_element_success(status, body, element_count);
  if (status == 408) return retry("408");
  if (status == 429) return retry("429");
  if (status >= 500) return retry("5xx");

  const ErrorBody err = read_error_body(body);
  if (status == 401) {
    if (err.code == "REVOKED_ACCESS_TOKEN") return pause("token_revoked");
    ResponseVerdict v;
    v.action = BatchAction::kRefreshToken;
    return v;
  }
  if (status == 413) {
    // Payload too large: LinkedIn's limit is in bytes as well as elements. Halving the batch
    // finds a size it takes; one element refused alone is what is too large, not the batch.
    ResponseVerdict v;
    if (element_count <= 1) {
      v.action = BatchAction::kPerElement;
      v.elements.assign(element_count, ElementVerdict{ElementAction::kDeadLetter, status,
                                                      "request entity too large (413) for one element"});
      return v;
    }
    v.action = BatchAction::kSplit;
    return v;
  }
  if (status == 403) return pause("forbidden");
  if (status == 426) return pause("version_retired");
  if (status == 400 || status == 422) {
    ResponseVerdict v;
    v.action = BatchAction::kPerElement;
    v.resend_now = true;
    v.elements.assign(element_count, ElementVerdict{ElementAction::kRetry, status, {}});
    bool named = false;
    for (auto& [index, text] : parse_error_indices(err.message)) {
      if (index >= element_count) continue;
      v.elements[index] = ElementVerdict{ElementAction::kDeadLetter, status, std::move(text)};
      named = true;
    }
    if (named) return v;
  }
  // A 4xx that names no element (or any other unexpected status) is a format, version or
  // configuration problem, not the events' fault: stop and say why.
  std::string reason = "systemic_error: " + std::to_string(status);
  if (!err.message.empty()) reason += " " + shorten(err.message);
  return pause(std::move(reason));
}

std::optional<int64_t> parse_retry_after(std::string_view value, int64_t now_ms) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  if (std::isdigit(static_cast<unsigned char>(value.front()))) {
    int64_t seconds = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc{} || ptr != value.data() + value.size()) return std::nullopt;
    constexpr int64_t kMaxSeconds = 365ll * 24 * 3600;
    return std::min(seconds, kMaxSeconds) * 1000;
  }
  const std::string text(value);
  // IMF-fixdate, obsolete RFC 850, asctime (RFC 9110 §5.6.7). strptime's %a/%b use the "C"
  // locale names, which is what HTTP dates use.
  static constexpr const char* kFormats[] = {"%a, %d %b %Y %H:%M:%S GMT",
                                             "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"};
  for (const char* format : kFormats) {
    struct tm tm {};
    const char* end = strptime(text.c_str(), format, &tm);
    if (end == nullptr || *end != '\0') continue;
    const int64_t at_ms = static_cast<int64_t>(timegm(&tm)) * 1000;
    return at_ms > now_ms ? at_ms - now_ms : 0;
  }
  return std::nullopt;
}

}  // namespace capi_relay
