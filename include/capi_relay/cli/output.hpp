#pragma once
// How the management commands present data to people: aligned text tables and UTC times.
// Pure functions; thread-safe.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace capi_relay {

// A table whose columns are padded to their widest cell (UTF-8 aware), two spaces apart, with a
// header row. Cells are single-line: newlines and tabs become spaces.
class TextTable {
 public:
  explicit TextTable(std::vector<std::string> headers);
  void add_row(std::vector<std::string> cells);
  size_t rows() const { return rows_.size(); }
  std::string render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// "2026-01-27T10:00:00Z" from epoch milliseconds.
std::string format_rfc3339(int64_t epoch_ms);
// Shortens text to at most max_chars code points, ending with "..." when cut.
std::string shorten(std::string_view text, size_t max_chars);

}  // namespace capi_relay
