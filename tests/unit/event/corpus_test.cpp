// Runs the pass/fail sample bodies of tests/corpus/events (see its README).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "capi_relay/common/clock.hpp"
#include "capi_relay/event/parser.hpp"

namespace capi_relay {
namespace {

namespace fs = std::filesystem;

fs::path corpus_dir() {
  return fs::path(__FILE__).parent_path().parent_path().parent_path() / "corpus" / "events";
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class CorpusTest : public ::testing::Test {
 protected:
  CorpusTest() : parser_(rules(), random_) { opts_.now_ms = clock_.now_ms(); }
  static EventRules rules() {
    EventRules r;
    r.conversions = {{"purchase", 123}, {"lead", 456}};
    r.allowed_rules = {123, 456};
    return r;
  }
  FakeClock clock_;
  FixedRandom random_;
  EventParser parser_;
  ParseOptions opts_;
};

TEST_F(CorpusTest, PassFilesAreFullyAccepted) {
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(corpus_dir() / "pass")) {
    ++files;
    ParsedBody b;
    parser_.parse_body(read_all(entry.path()), false, opts_, b);
    ASSERT_EQ(b.status, BodyStatus::kOk) << entry.path() << ": " << b.error;
    ASSERT_FALSE(b.items.empty()) << entry.path();
    for (const ParsedItem& it : b.items)
      EXPECT_TRUE(it.ok) << entry.path() << " item " << it.index << ": " << it.error;
  }
  EXPECT_GE(files, 4u);
}

TEST_F(CorpusTest, FailFilesAreRejectedForTheNamedReason) {
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(corpus_dir() / "fail")) {
    ++files;
    std::string name = entry.path().filename().string();
    std::string reason = name.substr(0, name.find("__"));
    ParsedBody b;
    parser_.parse_body(read_all(entry.path()), false, opts_, b);
    if (reason == "unparseable") {
      EXPECT_EQ(b.status, BodyStatus::kUnparseable) << name;
      continue;
    }
    ASSERT_EQ(b.status, BodyStatus::kOk) << name << ": " << b.error;
    ASSERT_EQ(b.items.size(), 1u) << name;
    EXPECT_FALSE(b.items[0].ok) << name;
    EXPECT_EQ(reject_reason_name(b.items[0].reason), reason) << name << ": " << b.items[0].error;
  }
  EXPECT_GE(files, 6u);
}

}  // namespace
}  // namespace capi_relay
