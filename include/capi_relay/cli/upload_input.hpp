#pragma once
// UploadInput: the rows of one `capi-relay upload` file, CSV or NDJSON (contract §2), read as a
// stream (one row in memory at a time).
//
// Format: by extension (.csv; .ndjson, .jsonl, .json) or, for any other name, by the first
// non-blank character ('{' means NDJSON). CSV needs a header row naming columns from the
// contract's list, in any order; an unknown or repeated column is a file-level error naming it.
// An empty CSV cell means the field is absent. Lines are numbered from 1 (the CSV header is
// line 1); NDJSON blank lines are skipped but counted.
//
// Threading: single-threaded. Errors: open() fails when the file cannot be read or its header is
// invalid (the message starts with "<file>:" or "<file>:1:", ready to print); a malformed row comes back with InputRow::error set ("invalid_csv: ..."), and reading
// goes on.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "capi_relay/cli/csv_reader.hpp"
#include "capi_relay/common/result.hpp"
#include "capi_relay/event/parser.hpp"

namespace capi_relay {

enum class InputFormat : uint8_t { kCsv, kNdjson };

// The CSV column names of contract §2, in contract order.
const std::vector<std::string_view>& csv_columns();

struct InputRow {
  uint64_t line = 0;
  std::string error;  // non-empty: rejected before validation ("invalid_csv: ...")
  // CSV rows: the fields (views into the reader's current record; valid until the next next()).
  EventParser::FlatEvent flat;
  // NDJSON rows: the line's text.
  std::string json;
};

class UploadInput {
 public:
  static Result<std::unique_ptr<UploadInput>> open(const std::filesystem::path& file);
  // Reads from a stream (tests); `name` decides the format like a file name does.
  static Result<std::unique_ptr<UploadInput>> from_stream(std::unique_ptr<std::istream> in,
                                                          const std::string& name);
  InputFormat format() const { return format_; }
  // Next row; false at end of input.
  bool next(InputRow& row);
  // Bytes consumed so far (approximate: read-ahead included), for progress.
  uint64_t position();

 private:
  UploadInput(std::unique_ptr<std::istream> in, InputFormat format);
  Result<void> read_header();

  std::unique_ptr<std::istream> in_;
  InputFormat format_;
  std::unique_ptr<CsvReader> csv_;
  CsvRecord record_;
  // CSV column i -> member of FlatEvent.
  std::vector<EventParser::Field EventParser::FlatEvent::*> columns_;
  uint64_t ndjson_line_ = 0;
};

// A CSV row as a relay ingest JSON event object (contract §3 event shape), for `upload --via`:
// numeric timestamps and conversions as numbers, consent true/false/1/0/yes/no as a boolean.
std::string flat_event_json(const EventParser::FlatEvent& e);

}  // namespace capi_relay
