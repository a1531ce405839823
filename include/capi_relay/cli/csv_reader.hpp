#pragma once
// CsvReader: a streaming RFC 4180 reader for `capi-relay upload`. Quoted fields ("" escapes a
// quote, CR/LF inside quotes are data), CRLF or LF (a lone CR also ends a line), an optional UTF-8
// BOM at the start. It reads the stream in fixed-size chunks and holds one record at a time, so
// memory does not grow with the file (a record is capped at kMaxRecordBytes).
//
// Line numbers start at 1; a record is reported at the line it starts on, so a quoted field that
// spans lines does not shift the numbers of the records after it.
//
// Threading: one reader per stream, single-threaded.
// Errors are per record (CsvRecord::error): malformed quoting, an unterminated quote at end of
// input, an over-long record. After an error the reader carries on with the next record.
#include <cstdint>
#include <istream>
#include <string>
#include <vector>

namespace capi_relay {

struct CsvRecord {
  uint64_t line = 0;                // 1-based line the record starts on
  std::vector<std::string> fields;  // at least one (an empty line is one empty field)
  std::string error;                // non-empty: the record is malformed (fields are partial)
  bool blank() const { return fields.size() == 1 && fields[0].empty() && error.empty(); }
};

class CsvReader {
 public:
  static constexpr size_t kMaxRecordBytes = 1 << 20;

  explicit CsvReader(std::istream& in);
  // Reads the next record into `rec`. False at end of input (rec untouched).
  bool next(CsvRecord& rec);

 private:
  int get();   // next byte or -1
  int peek();  // next byte without consuming it, or -1
  bool fill();

  std::istream& in_;
  std::string buf_;
  size_t pos_ = 0;
  size_t len_ = 0;
  bool eof_ = false;
  bool started_ = false;  // BOM checked
  uint64_t line_ = 1;     // line of the next byte
};

}  // namespace capi_relay
