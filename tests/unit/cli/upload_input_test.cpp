// CsvReader and UploadInput: RFC 4180 details, line numbers, header mapping, format detection.
#include <gtest/gtest.h>

#include <sstream>

#include "capi_relay/cli/csv_reader.hpp"
#include "capi_relay/cli/upload_input.hpp"

namespace capi_relay {
namespace {

std::vector<CsvRecord> read_all(const std::string& text) {
  std::istringstream in(text);
  CsvReader reader(in);
  std::vector<CsvRecord> out;
  CsvRecord r;
  while (reader.next(r)) out.push_back(r);
  return out;
}

TEST(CsvReader, QuotedFieldsEscapedQuotesAndEmptyCells) {
  auto recs = read_all("a,\"b,c\",\"say \"\"hi\"\"\",,\"\"\n");
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].error, "");
  EXPECT_EQ(recs[0].fields, (std::vector<std::string>{"a", "b,c", "say \"hi\"", "", ""}));
}

TEST(CsvReader, CrlfAndLfAndMissingFinalNewline) {
  auto recs = read_all("h1,h2\r\n1,2\n3,4");
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[1].fields, (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(recs[2].fields, (std::vector<std::string>{"3", "4"}));
  EXPECT_EQ(recs[2].line, 3u);
}

TEST(CsvReader, BomIsSkippedOnlyAtTheStart) {
  auto recs = read_all("\xEF\xBB\xBFname\nx\xEF\xBB\xBF\n");
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].fields[0], "name");
  EXPECT_EQ(recs[1].fields[0], "x\xEF\xBB\xBF");
}

TEST(CsvReader, MultiLineFieldIsReportedAtItsFirstLineAndLaterLinesKeepTheirNumbers) {
  auto recs = read_all("h\n\"line one\r\nline two\nline three\"\nnext\n");
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[1].line, 2u);
  EXPECT_EQ(recs[1].fields[0], "line one\r\nline two\nline three");
  EXPECT_EQ(recs[2].line, 5u);
  EXPECT_EQ(recs[2].fields[0], "next");
}

TEST(CsvReader, MalformedQuotingIsAnErrorOfThatRecordOnly) {
  auto recs = read_all("a\"b,c\n\"x\"y,z\nok,1\n\"never closed\nmore\n");
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_NE(recs[0].error, "");
  EXPECT_NE(recs[1].error, "");
  EXPECT_EQ(recs[2].error, "");
  EXPECT_EQ(recs[2].line, 3u);
  EXPECT_EQ(recs[3].line, 4u);
  EXPECT_NE(recs[3].error.find("unterminated"), std::string::npos) << recs[3].error;
}

TEST(CsvReader, ReadsAcrossChunkBoundaries) {
  // Fields larger than the 64 KiB read chunk, one of them quoted with escapes.
  std::string big(100000, 'x');
  std::string quoted = "\"" + std::string(70000, 'y') + "\"\"" + "\"";
  auto recs = read_all(big + "," + quoted + "\nend\n");
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].fields[0].size(), 100000u);
  EXPECT_EQ(recs[0].fields[1], std::string(70000, 'y') + "\"");
  EXPECT_EQ(recs[1].line, 2u);
}

std::unique_ptr<UploadInput> input(const std::string& text, const std::string& name = "x.csv") {
  auto r = UploadInput::from_stream(std::make_unique<std::istringstream>(text), name);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error());
  return r.ok() ? std::move(r.value()) : nullptr;
}

TEST(UploadInput, MapsColumnsInAnyOrderAndEmptyCellsAreAbsent) {
  auto in = input("\xEF\xBB\xBF" "timestamp,email,event,amount\r\n1764320000000,a@example.com,purchase,\r\n");
  ASSERT_TRUE(in);
  EXPECT_EQ(in->format(), InputFormat::kCsv);
  InputRow row;
  ASSERT_TRUE(in->next(row));
  EXPECT_EQ(row.line, 2u);
  EXPECT_EQ(row.error, "");
  EXPECT_TRUE(row.flat.timestamp.present);
  EXPECT_EQ(row.flat.timestamp.value, "1764320000000");
  EXPECT_EQ(row.flat.email.value, "a@example.com");
  EXPECT_EQ(row.flat.event.value, "purchase");
  EXPECT_FALSE(row.flat.amount.present);
  EXPECT_FALSE(row.flat.first_name.present);
  EXPECT_FALSE(in->next(row));
}

TEST(UploadInput, UnknownColumnIsAnErrorNamingIt) {
  auto r = UploadInput::from_stream(std::make_unique<std::istringstream>("event,mail\n"), "f.csv");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("f.csv:1:"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("'mail'"), std::string::npos) << r.error();
  auto dup = UploadInput::from_stream(std::make_unique<std::istringstream>("event,event\n"), "f.csv");
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().find("twice"), std::string::npos);
  auto empty = UploadInput::from_stream(std::make_unique<std::istringstream>(""), "f.csv");
  EXPECT_FALSE(empty.ok());
}

TEST(UploadInput, WrongFieldCountAndBadQuotingAreRowErrors) {
  auto in = input("event,eventId\npurchase\n\"a\"b,c\npurchase,x\n");
  ASSERT_TRUE(in);
  InputRow row;
  ASSERT_TRUE(in->next(row));
  EXPECT_EQ(row.line, 2u);
  EXPECT_NE(row.error.find("invalid_csv: 1 fields"), std::string::npos) << row.error;
  ASSERT_TRUE(in->next(row));
  EXPECT_EQ(row.line, 3u);
  EXPECT_NE(row.error.find("invalid_csv"), std::string::npos);
  ASSERT_TRUE(in->next(row));
  EXPECT_EQ(row.error, "");
  EXPECT_EQ(row.flat.event_id.value, "x");
}

TEST(UploadInput, NdjsonByExtensionOrSniffingWithBlankLinesCounted) {
  auto in = input("{\"a\":1}\r\n\n   \n{\"b\":2}\n", "events.txt");
  ASSERT_TRUE(in);
  EXPECT_EQ(in->format(), InputFormat::kNdjson);
  InputRow row;
  ASSERT_TRUE(in->next(row));
  EXPECT_EQ(row.line, 1u);
  EXPECT_EQ(row.json, "{\"a\":1}");
  ASSERT_TRUE(in->next(row));
  EXPECT_EQ(row.line, 4u);
  EXPECT_FALSE(in->next(row));
  auto csv = input("event\npurchase\n", "events.txt");
  ASSERT_TRUE(csv);
  EXPECT_EQ(csv->format(), InputFormat::kCsv);
  auto by_ext = input("event\n", "e.jsonl");
  ASSERT_TRUE(by_ext);
  EXPECT_EQ(by_ext->format(), InputFormat::kNdjson);
}

TEST(UploadInput, FlatEventJsonHasTheIngestShape) {
  auto in = input("event,conversion,timestamp,email,amount,currency,consent,firstName\n"
                  "purchase,123,1764320000000,\"a\"\"b@example.com\",5.00,usd,YES,Ann\n");
  ASSERT_TRUE(in);
  InputRow row;
  ASSERT_TRUE(in->next(row));
  EXPECT_EQ(flat_event_json(row.flat),
            "{\"event\":\"purchase\",\"conversion\":123,\"timestamp\":1764320000000,"
            "\"consent\":true,\"value\":{\"amount\":\"5.00\",\"currency\":\"usd\"},"
            "\"user\":{\"email\":\"a\\\"b@example.com\",\"firstName\":\"Ann\"}}");
}

}  // namespace
}  // namespace capi_relay
