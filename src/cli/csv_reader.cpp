// CsvReader: RFC 4180 state machine over a chunked buffer.
#include "capi_relay/cli/csv_reader.hpp"

namespace capi_relay {

namespace {
constexpr size_t kChunk = 64 * 1024;
}

CsvReader::CsvReader(std::istream& in) : in_(in), buf_(kChunk, '\0') {}

bool CsvReader::fill() {
  if (eof_) return false;
  in_.read(buf_.data(), static_cast<std::streamsize>(buf_.size()));
  len_ = static_cast<size_t>(in_.gcount());
  pos_ = 0;
  if (len_ == 0) eof_ = true;
  return len_ > 0;
}

int CsvReader::get() {
  if (pos_ >= len_ && !fill()) return -1;
  return static_cast<unsigned char>(buf_[pos_++]);
}

int CsvReader::peek() {
  if (pos_ >= len_ && !fill()) return -1;
  return static_cast<unsigned char>(buf_[pos_]);
}

bool CsvReader::next(CsvRecord& rec) {
  if (!started_) {
    started_ = true;
    // Optional UTF-8 BOM: only at the very start of the input.
    if (peek() == 0xEF) {
      if (len_ - pos_ >= 3 && static_cast<unsigned char>(buf_[pos_ + 1]) == 0xBB &&
          static_cast<unsigned char>(buf_[pos_ + 2]) == 0xBF) {
        pos_ += 3;
      }
    }
  }
  if (peek() < 0) return false;

  rec.line = line_;
  rec.fields.clear();
  rec.fields.emplace_back();
  rec.error.clear();
  size_t bytes = 0;
  std::string* field = &rec.fields.back();

  auto end_of_line = [&](int c) {
    // c is '\n' or '\r': consume a following '\n' after '\r'.
    if (c == '\r' && peek() == '\n') get();
    ++line_;
  };
  auto set_error = [&](std::string msg) {
    if (rec.error.empty()) rec.error = std::move(msg);
  };

  bool at_field_start = true;
  for (;;) {
    int c = get();
    if (c < 0) return true;  // end of input ends the last record
    if (c == '\n' || c == '\r') {
      end_of_line(c);
      return true;
    }
    if (c == ',') {
      rec.fields.emplace_back();
      field = &rec.fields.back();
      at_field_start = true;
      continue;
    }
    if (c == '"' && at_field_start) {
      // Quoted field: runs to the closing quote; "" is a literal quote.
      at_field_start = false;
      bool closed = false;
      for (;;) {
        int q = get();
        if (q < 0) break;
        if (q == '"') {
          if (peek() == '"') {
            get();
            *field += '"';
            continue;
          }
          closed = true;
          break;
        }
        if (q == '\n' || (q == '\r' && peek() != '\n')) ++line_;
        if (++bytes > kMaxRecordBytes) {
          set_error("record longer than 1 MiB (unterminated quote?)");
          break;
        }
        *field += static_cast<char>(q);
      }
      if (!closed) {
        if (rec.error.empty()) set_error("unterminated quoted field");
        // Resynchronise: drop the rest of the current line.
        for (int r = get(); r >= 0; r = get()) {
          if (r == '\n' || r == '\r') {
            end_of_line(r);
            break;
          }
        }
        return true;
      }
      // After the closing quote only a delimiter or a line end may follow.
      int n = peek();
      if (n >= 0 && n != ',' && n != '\n' && n != '\r') {
        set_error("characters after a closing quote");
        // Keep them as data of the field so the record still has its shape.
      }
      continue;
    }
    at_field_start = false;
    if (c == '"') set_error("quote inside an unquoted field (quote the whole field)");
    if (++bytes > kMaxRecordBytes) {
      set_error("record longer than 1 MiB");
      for (int r = get(); r >= 0; r = get()) {
        if (r == '\n' || r == '\r') {
          end_of_line(r);
          break;
        }
      }
      return true;
    }
    *field += static_cast<char>(c);
  }
}

}  // namespace capi_relay
