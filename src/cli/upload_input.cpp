// UploadInput: format detection, CSV header mapping, NDJSON line reading.
#include "capi_relay/cli/upload_input.hpp"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "capi_relay/common/json_text.hpp"

namespace capi_relay {

namespace {

using Flat = EventParser::FlatEvent;
using Member = EventParser::Field Flat::*;

struct Column {
  std::string_view name;
  Member member;
};

const std::vector<Column>& column_table() {
  static const std::vector<Column> t = {
      {"event", &Flat::event},           {"conversion", &Flat::conversion},
      {"eventId", &Flat::event_id},      {"timestamp", &Flat::timestamp},
      {"email", &Flat::email},           {"emailSha256", &Flat::email_sha256},
      {"liFatId", &Flat::li_fat_id},     {"acxiomId", &Flat::acxiom_id},
      {"moatId", &Flat::moat_id},        {"externalId", &Flat::external_id},
      {"lead", &Flat::lead},             {"ip", &Flat::ip},
      {"firstName", &Flat::first_name},  {"lastName", &Flat::last_name},
      {"title", &Flat::title},           {"companyName", &Flat::company_name},
      {"countryCode", &Flat::country_code}, {"amount", &Flat::amount},
      {"currency", &Flat::currency},     {"consent", &Flat::consent},
  };
  return t;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Format from the name, or nullopt-like kCsv with `decided` false.
bool format_from_name(const std::string& name, InputFormat& out) {
  std::string ext = lower(std::filesystem::path(name).extension().string());
  if (ext == ".csv") {
    out = InputFormat::kCsv;
    return true;
  }
  if (ext == ".ndjson" || ext == ".jsonl" || ext == ".json") {
    out = InputFormat::kNdjson;
    return true;
  }
  return false;
}

// Sniffs the first non-blank character (after a BOM) and rewinds the stream.
InputFormat sniff(std::istream& in) {
  char buf[4096];
  in.read(buf, sizeof buf);
  const auto n = static_cast<size_t>(in.gcount());
  in.clear();
  in.seekg(0);
  std::string_view head(buf, n);
  if (head.substr(0, 3) == "\xEF\xBB\xBF") head.remove_prefix(3);
  for (char c : head) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    return c == '{' ? InputFormat::kNdjson : InputFormat::kCsv;
  }
  return InputFormat::kCsv;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

const std::vector<std::string_view>& csv_columns() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> v;
    for (const auto& c : column_table()) v.push_back(c.name);
    return v;
  }();
  return names;
}

UploadInput::UploadInput(std::unique_ptr<std::istream> in, InputFormat format)
    : in_(std::move(in)), format_(format) {}

Result<std::unique_ptr<UploadInput>> UploadInput::open(const std::filesystem::path& file) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) return Error{file.string() + ": is a directory"};
  auto in = std::make_unique<std::ifstream>(file, std::ios::binary);
  if (!*in) return Error{file.string() + ": cannot open the file"};
  return from_stream(std::move(in), file.string());
}

Result<std::unique_ptr<UploadInput>> UploadInput::from_stream(std::unique_ptr<std::istream> in,
                                                              const std::string& name) {
  InputFormat format;
  if (!format_from_name(name, format)) format = sniff(*in);
  std::unique_ptr<UploadInput> input(new UploadInput(std::move(in), format));
  if (format == InputFormat::kCsv) {
    input->csv_ = std::make_unique<CsvReader>(*input->in_);
    if (auto r = input->read_header(); !r) return Error{name + ":1: " + r.error()};
  }
  return input;
}

Result<void> UploadInput::read_header() {
  // The header is the first record (line 1); leading blank lines are not allowed.
  if (!csv_->next(record_)) return Error{"empty file (a CSV file needs a header row)"};
  if (!record_.error.empty()) return Error{"invalid header: " + record_.error};
  std::vector<bool> seen(column_table().size(), false);
  for (const std::string& raw : record_.fields) {
    std::string_view name = trim(raw);
    auto it = std::find_if(column_table().begin(), column_table().end(),
                           [&](const Column& c) { return c.name == name; });
    if (it == column_table().end()) {
      std::string known;
      for (auto n : csv_columns()) known += (known.empty() ? "" : ", ") + std::string(n);
      // A near miss (case) gets a hint.
      for (auto n : csv_columns()) {
        if (lower(n) == lower(name)) {
          return Error{"unknown column '" + std::string(name) + "' (did you mean '" +
                       std::string(n) + "'? names are case-sensitive)"};
        }
      }
      return Error{"unknown column '" + std::string(name) + "' (known columns: " + known +
                   ")"};
    }
    const size_t idx = static_cast<size_t>(it - column_table().begin());
    if (seen[idx]) return Error{"column '" + std::string(name) + "' appears twice"};
    seen[idx] = true;
    columns_.push_back(it->member);
  }
  return ok();
}

bool UploadInput::next(InputRow& row) {
  row.error.clear();
  row.json.clear();
  row.flat = {};
  if (format_ == InputFormat::kNdjson) {
    std::string line;
    for (;;) {
      if (!std::getline(*in_, line)) return false;
      ++ndjson_line_;
      if (ndjson_line_ == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (trim(line).empty()) continue;
      row.line = ndjson_line_;
      row.json = std::move(line);
      return true;
    }
  }
  for (;;) {
    if (!csv_->next(record_)) return false;
    if (record_.blank()) continue;
    row.line = record_.line;
    if (!record_.error.empty()) {
      row.error = "invalid_csv: " + record_.error;
      return true;
    }
    if (record_.fields.size() != columns_.size()) {
      row.error = "invalid_csv: " + std::to_string(record_.fields.size()) +
                  " fields, the header has " + std::to_string(columns_.size());
      return true;
    }
    for (size_t i = 0; i < columns_.size(); ++i) {
      const std::string& v = record_.fields[i];
      // An empty cell means absent (contract §2).
      row.flat.*columns_[i] = {std::string_view(v), !v.empty()};
    }
    return true;
  }
}

uint64_t UploadInput::position() {
  const auto pos = in_->tellg();
  return pos < 0 ? 0 : static_cast<uint64_t>(pos);
}

std::string flat_event_json(const EventParser::FlatEvent& e) {
  std::string out = "{";
  bool first = true;
  auto key = [&](std::string_view k) {
    if (!first) out += ',';
    first = false;
    append_json_string(out, k);
    out += ':';
  };
  auto str = [&](std::string_view k, const EventParser::Field& f) {
    if (!f.present) return;
    key(k);
    append_json_string(out, f.value);
  };
  str("event", e.event);
  if (e.conversion.present) {
    key("conversion");
    if (all_digits(trim(e.conversion.value))) {
      out += trim(e.conversion.value);
    } else {
      append_json_string(out, e.conversion.value);
    }
  }
  str("eventId", e.event_id);
  if (e.timestamp.present) {
    key("timestamp");
    if (all_digits(trim(e.timestamp.value))) {
      out += trim(e.timestamp.value);
    } else {
      append_json_string(out, e.timestamp.value);
    }
  }
  if (e.consent.present) {
    key("consent");
    const std::string v = lower(trim(e.consent.value));
    if (v == "true" || v == "1" || v == "yes") {
      out += "true";
    } else if (v == "false" || v == "0" || v == "no") {
      out += "false";
    } else {
      append_json_string(out, e.consent.value);  // the relay answers bad_consent
    }
  }
  if (e.amount.present || e.currency.present) {
    key("value");
    out += '{';
    bool inner_first = true;
    auto inner = [&](std::string_view k, const EventParser::Field& f) {
      if (!f.present) return;
      if (!inner_first) out += ',';
      inner_first = false;
      append_json_string(out, k);
      out += ':';
      append_json_string(out, f.value);
    };
    inner("amount", e.amount);
    inner("currency", e.currency);
    out += '}';
  }
  const std::pair<std::string_view, const EventParser::Field*> user[] = {
      {"email", &e.email},           {"emailSha256", &e.email_sha256}, {"liFatId", &e.li_fat_id},
      {"acxiomId", &e.acxiom_id},    {"moatId", &e.moat_id},         {"externalId", &e.external_id},
      {"lead", &e.lead},             {"ip", &e.ip},                  {"firstName", &e.first_name},
      {"lastName", &e.last_name},    {"title", &e.title},            {"companyName", &e.company_name},
      {"countryCode", &e.country_code}};
  bool any_user = false;
  for (const auto& [k, f] : user) any_user = any_user || f->present;
  if (any_user) {
    key("user");
    out += '{';
    bool inner_first = true;
    for (const auto& [k, f] : user) {
      if (!f->present) continue;
      if (!inner_first) out += ',';
      inner_first = false;
      append_json_string(out, k);
      out += ':';
      append_json_string(out, f->value);
    }
    out += '}';
  }
  out += '}';
  return out;
}

}  // namespace capi_relay
