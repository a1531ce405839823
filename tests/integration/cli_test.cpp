// The management commands through the real binary: `upload` of a large CSV against the fake
// LinkedIn (exit code, file:line rejections, exactly-once delivery, re-run sends nothing),
// `upload` refused / sent --via while a relay runs, and `dlq list|replay` on the files.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "capi_relay/common/clock.hpp"
#include "capi_relay/event/record.hpp"
#include "capi_relay/spool/dead_letters.hpp"
#include "capi_relay/spool/spool.hpp"
#include "fakes/fake_linkedin.hpp"
#include "fakes/relay_config.hpp"
#include "fakes/relay_process.hpp"
#include "fakes/test_events.hpp"

namespace capi_relay::testing {
namespace {

namespace fs = std::filesystem;

struct CliRun {
  int rc = -1;
  std::string out, err;
};

// Runs `capi-relay args...` in dir with stdout/stderr captured.
CliRun run_cli(const fs::path& dir, const std::vector<std::string>& args, int timeout_ms = 60000) {
  const fs::path out = dir / "cli.out", err = dir / "cli.err";
  pid_t pid = fork();
  if (pid == 0) {
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int null = ::open("/dev/null", O_RDONLY);
    dup2(null, 0);
    dup2(o, 1);
    dup2(e, 2);
    if (chdir(dir.c_str()) != 0) _exit(127);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>("capi-relay"));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(CAPI_RELAY_BINARY, argv.data());
    _exit(127);
  }
  CliRun r;
  int status = 0;
  const bool done = eventually([&] { return waitpid(pid, &status, WNOHANG) == pid; }, timeout_ms);
  if (!done) {
    ::kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  r.rc = done && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

// This file's config: the relay's default io_threads and a signup rule besides purchase;
// `extra`: more lines under linkedin:.
std::string cli_yaml(const std::string& api_base, const std::string& extra = "") {
  RelayConfig c;
  c.api_base = api_base;
  c.io_threads = 0;
  c.linkedin_extra = extra;
  c.conversions += "  signup: 456\n";
  return c.yaml();
}

fs::path temp_dir() {
  char tmpl[] = "/tmp/capi-cli-it-XXXXXX";
  return mkdtemp(tmpl);
}

TEST(CliUpload, LargeCsvWithBadRowsIsUploadedExactlyOnceAndARerunSendsNothing) {
  FakeLinkedIn fake;
  const fs::path dir = temp_dir();
  { std::ofstream(dir / "cli.yaml") << cli_yaml(fake.base_url()); }

  // 20,000 rows; every 400th (offset 7) is bad in one of three ways -> 50 bad rows.
  constexpr int kRows = 20000;
  const int64_t ts = now_ms() - 3600'000;
  std::set<std::string> bad_lines;
  std::set<std::string> good_ids;
  {
    std::ofstream csv(dir / "orders.csv", std::ios::binary);
    csv << "\xEF\xBB\xBF" "eventId,event,timestamp,email,amount,currency,firstName,lastName\r\n";
    for (int i = 0; i < kRows; ++i) {
      const std::string id = "ord-" + std::to_string(i);
      std::string email = "buyer" + std::to_string(i) + "@example.com";
      std::string currency = "usd";
      std::string stamp = std::to_string(ts);
      if (i % 400 == 7) {
        bad_lines.insert("orders.csv:" + std::to_string(i + 2) + ":");
        switch ((i / 400) % 3) {
          case 0: email = "not-an-email"; break;
          case 1: currency = "dollars"; break;
          default: stamp = ""; break;  // every upload row needs a timestamp
        }
      } else {
        good_ids.insert(id);
      }
      // A quoted name with a comma and an escaped quote on some rows.
      const std::string name = i % 3 == 0 ? "\"Ann, \"\"the\"\" buyer\"" : "Bob";
      csv << id << ",purchase," << stamp << "," << email << ",19.99," << currency << "," << name
          << ",Smith\r\n";
    }
  }
  ASSERT_EQ(bad_lines.size(), 50u);

  const auto t0 = std::chrono::steady_clock::now();
  CliRun first = run_cli(dir, {"upload", "-c", "cli.yaml", "orders.csv"});
  const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(first.rc, 1) << first.out << first.err;
  EXPECT_LT(secs, 40.0);

  // Exactly the 50 bad rows are reported, as file:line: reason.
  std::set<std::string> reported;
  std::istringstream lines(first.err);
  for (std::string l; std::getline(lines, l);) {
    std::smatch m;
    if (std::regex_search(l, m, std::regex("^(orders\\.csv:\\d+:) (\\w+)"))) {
      reported.insert(m[1]);
      EXPECT_TRUE(m[2] == "bad_email" || m[2] == "bad_currency" || m[2] == "bad_timestamp") << l;
    }
  }
  EXPECT_EQ(reported, bad_lines) << first.err.substr(0, 2000);
  EXPECT_NE(first.out.find("accepted:      19950"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("rejected:      50"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("uploaded:      19950"), std::string::npos) << first.out;

  // The fake received each good event exactly once, and nothing else.
  auto ids = received_event_counts(fake);
  EXPECT_EQ(ids.size(), good_ids.size());
  size_t twice = 0;
  for (const auto& [id, n] : ids) {
    EXPECT_TRUE(good_ids.count(id)) << id;
    twice += n != 1;
  }
  EXPECT_EQ(twice, 0u);
  const size_t requests_after_first = fake.request_count();
  EXPECT_LE(requests_after_first, 8u);  // batches of up to 5,000

  // A re-run sends nothing again: every good row is a duplicate now.
  CliRun second = run_cli(dir, {"upload", "-c", "cli.yaml", "orders.csv", "--json"});
  EXPECT_EQ(second.rc, 1) << second.err;
  EXPECT_NE(second.out.find("\"accepted\":0,\"duplicates\":19950,\"rejected\":50"),
            std::string::npos)
      << second.out;
  EXPECT_EQ(fake.request_count(), requests_after_first);
  fs::remove_all(dir);
}

TEST(CliUpload, RefusedWhileARelayRunsAndSentThroughItWithVia) {
  FakeLinkedIn fake;
  RelayProcess relay;
  std::string err;
  ASSERT_TRUE(relay.start(cli_yaml(fake.base_url()), &err)) << err;
  const fs::path dir = relay.dir();
  { std::ofstream(dir / "cli.yaml") << cli_yaml(fake.base_url()); }
  const int64_t ts = now_ms() - 60'000;
  {
    std::ofstream nd(dir / "events.ndjson");
    nd << "{\"event\":\"purchase\",\"eventId\":\"v-1\",\"timestamp\":" << ts
       << ",\"user\":{\"email\":\"a@example.com\"}}\n\n"
       << "{\"event\":\"purchase\",\"eventId\":\"v-2\",\"user\":{\"email\":\"b@example.com\"}}\n"
       << "{\"event\":\"nope\",\"eventId\":\"v-3\",\"timestamp\":" << ts
       << ",\"user\":{\"email\":\"c@example.com\"}}\n";
  }
  CliRun refused = run_cli(dir, {"upload", "-c", "cli.yaml", "events.ndjson"});
  EXPECT_EQ(refused.rc, 1);
  EXPECT_NE(refused.err.find("a relay is running on"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--via"), std::string::npos);

  const std::string via = "http://127.0.0.1:" + std::to_string(relay.ingest_port());
  CliRun sent = run_cli(dir, {"upload", "-c", "cli.yaml", "--via", via, "events.ndjson"});
  EXPECT_EQ(sent.rc, 1) << sent.err;  // two rows rejected
  EXPECT_NE(sent.err.find("events.ndjson:3: bad_timestamp"), std::string::npos) << sent.err;
  EXPECT_NE(sent.err.find("events.ndjson:4: unknown_event"), std::string::npos) << sent.err;
  EXPECT_NE(sent.out.find("accepted:      1"), std::string::npos) << sent.out;
  EXPECT_TRUE(eventually([&] { return received_event_counts(fake).count("v-1") == 1; }, 15000));
  EXPECT_EQ(relay.stop(), 0);
}

// Three dead letters (ids 1..3): two rejected with 422, one expired.
void seed_dead_letters(const fs::path& data_dir) {
  auto store = DeadLetterStore::open(data_dir / "dead-letters", 30ll * 86400 * 1000,
                                     SystemClock::instance());
  ASSERT_TRUE(store.ok()) << store.error();
  std::vector<DeadLetter> entries;
  for (int i = 0; i < 3; ++i) {
    NormalizedEvent e;
    e.rule_id = 123;
    e.happened_at_ms = now_ms() - 1000;
    e.received_at_ms = now_ms() - 1000;
    e.event_id = "dl-" + std::to_string(i);
    e.email_sha256 = std::string(64, 'b');
    DeadLetter d;
    d.reason = i == 2 ? "expired" : "rejected";
    d.http_status = i == 2 ? 0 : 422;
    d.message = i == 2 ? "" : "ERROR :: /user/userIds :: invalid";
    d.dead_lettered_at_ms = now_ms();
    encode_record(e, d.payload);
    entries.push_back(std::move(d));
  }
  ASSERT_TRUE((*store)->add(entries).ok());
}

TEST(CliDlq, ListAndReplayGoThroughARunningRelaysAdminListener) {
  FakeLinkedIn fake;
  RelayProcess relay;
  seed_dead_letters(relay.dir() / "data");
  const std::string admin = "127.0.0.1:" + std::to_string(free_port());
  std::string yaml = cli_yaml(fake.base_url());
  yaml.replace(yaml.find("admin:\n  listen: 127.0.0.1:0"), 28, "admin:\n  listen: " + admin);
  std::string err;
  ASSERT_TRUE(relay.start(yaml, &err)) << err;
  { std::ofstream(relay.dir() / "cli.yaml") << yaml; }
  CliRun list = run_cli(relay.dir(), {"dlq", "list", "-c", "cli.yaml", "--json"});
  ASSERT_EQ(list.rc, 0) << list.err;
  EXPECT_NE(list.out.find("{\"id\":1,\"eventId\":\"dl-0\",\"rule\":\"urn:lla:llaPartnerConversion:123\""),
            std::string::npos)
      << list.out;
  EXPECT_NE(list.out.find("\"eventId\":\"dl-2\""), std::string::npos);
  CliRun replay = run_cli(relay.dir(), {"dlq", "replay", "-c", "cli.yaml", "--reason", "rejected"});
  EXPECT_EQ(replay.rc, 0) << replay.err;
  EXPECT_NE(replay.out.find("replayed 2 events"), std::string::npos) << replay.out;
  // Replayed events are uploaded by the relay.
  EXPECT_TRUE(eventually([&] {
    auto ids = received_event_counts(fake);
    return ids.count("dl-0") == 1 && ids.count("dl-1") == 1;
  }, 15000));
  CliRun after = run_cli(relay.dir(), {"dlq", "list", "-c", "cli.yaml"});
  EXPECT_EQ(after.rc, 0);
  EXPECT_EQ(after.out.find("dl-0"), std::string::npos) << after.out;
  EXPECT_NE(after.out.find("dl-2"), std::string::npos) << after.out;
  EXPECT_EQ(relay.stop(), 0);
}

TEST(CliDlq, ListAndReplayWorkOnTheFilesWhenNoRelayRuns) {
  const fs::path dir = temp_dir();
  { std::ofstream(dir / "cli.yaml") << cli_yaml("http://127.0.0.1:9"); }
  seed_dead_letters(dir / "data");
  CliRun list = run_cli(dir, {"dlq", "list", "-c", "cli.yaml"});
  ASSERT_EQ(list.rc, 0) << list.err;
  EXPECT_NE(list.out.find("ID  EVENT ID  RULE"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("dl-0      urn:lla:llaPartnerConversion:123  rejected  422"),
            std::string::npos)
      << list.out;
  EXPECT_NE(list.out.find("expired   -"), std::string::npos) << list.out;

  CliRun json = run_cli(dir, {"dlq", "list", "-c", "cli.yaml", "--json", "--reason", "expired"});
  ASSERT_EQ(json.rc, 0) << json.err;
  EXPECT_NE(json.out.find("\"eventId\":\"dl-2\""), std::string::npos) << json.out;
  EXPECT_EQ(json.out.find("\"eventId\":\"dl-0\""), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"status\":null"), std::string::npos);

  CliRun replay = run_cli(dir, {"dlq", "replay", "-c", "cli.yaml", "--id", "1"});
  ASSERT_EQ(replay.rc, 0) << replay.err;
  EXPECT_NE(replay.out.find("Replayed 1 event"), std::string::npos) << replay.out;
  CliRun after = run_cli(dir, {"dlq", "list", "-c", "cli.yaml", "--json"});
  EXPECT_EQ(after.out.find("\"id\":1,"), std::string::npos) << after.out;
  EXPECT_NE(after.out.find("\"id\":2,"), std::string::npos) << after.out;
  {
    auto spool = Spool::open({dir / "data" / "spool"}, SystemClock::instance());
    ASSERT_TRUE(spool.ok()) << spool.error();
    EXPECT_EQ((*spool)->stats().pending_records, 1u);
  }
  CliRun missing = run_cli(dir, {"dlq", "replay", "-c", "cli.yaml", "--id", "99"});
  EXPECT_EQ(missing.rc, 1);
  EXPECT_NE(missing.err.find("no dead letter with id 99"), std::string::npos) << missing.err;
  CliRun bad = run_cli(dir, {"dlq", "replay", "-c", "cli.yaml", "--reason", "other"});
  EXPECT_EQ(bad.rc, 2);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace capi_relay::testing
