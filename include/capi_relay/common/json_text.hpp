#pragma once
// Minimal JSON text output helpers (string escaping) used wherever the relay writes JSON by hand.
#include <string>
#include <string_view>

namespace capi_relay {

// Appends s as a JSON string literal, quotes included; control characters and invalid UTF-8 are
// escaped / replaced so the output is always valid JSON.
void append_json_string(std::string& out, std::string_view s);
std::string json_string(std::string_view s);

}  // namespace capi_relay
