// `upload`: CSV/NDJSON files -> EventParser -> WritePipeline -> spool -> Uploader (or, with --via,
// NDJSON chunks to a running relay).
#include "capi_relay/cli/upload.hpp"

#include <simdjson.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "capi_relay/cli/linkedin_api.hpp"
#include "capi_relay/cli/spool_access.hpp"
#include "capi_relay/cli/upload_input.hpp"
#include "capi_relay/common/json_text.hpp"
#include "capi_relay/dedup/open_dedup.hpp"
#include "capi_relay/event/record.hpp"
#include "capi_relay/ingest/write_pipeline.hpp"
#include "capi_relay/metrics/registry.hpp"
#include "capi_relay/metrics/relay_metrics.hpp"
#include "capi_relay/spool/dead_letters.hpp"
#include "capi_relay/spool/spool.hpp"
#include "capi_relay/upload/token_store.hpp"
#include "capi_relay/upload/uploader.hpp"

namespace capi_relay {

namespace {

constexpr size_t kRecordsPerWrite = 1000;     // records per WriteRequest
constexpr size_t kWritesInFlight = 8;         // WriteRequests queued or being written
constexpr size_t kEventsPerPost = 1000;       // --via: events per POST
constexpr int kViaMaxRetries = 30;            // --via: 503s in a row before giving up
constexpr int64_t kProgressEveryMs = 150;
constexpr int64_t kPollMs = 50;

std::atomic<bool> g_interrupted{false};

extern "C" void on_interrupt(int) { g_interrupted.store(true); }

// Ctrl-C stops the upload cleanly (what is spooled stays spooled) instead of killing it.
class InterruptGuard {
 public:
  InterruptGuard() {
    g_interrupted.store(false);
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~InterruptGuard() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

struct Tally {
  uint64_t rows = 0;
  uint64_t accepted = 0;
  uint64_t duplicates = 0;
  uint64_t rejected = 0;
  uint64_t failed = 0;  // accepted by validation but not written / not sent
  uint64_t uploaded = 0;
  uint64_t dead_lettered = 0;
};

// A progress line on stderr, redrawn in place; only when stderr is a terminal.
class Progress {
 public:
  Progress(const CliContext& ctx, uint64_t total_bytes)
      : ctx_(ctx), enabled_(ctx.stderr_is_tty), total_(total_bytes) {}
  void update(const Tally& t, uint64_t bytes_done, std::string_view phase, bool force = false) {
    if (!enabled_) return;
    const int64_t now = ctx_.clock.steady_ms();
    if (!force && now - last_ms_ < kProgressEveryMs) return;
    last_ms_ = now;
    constexpr int kWidth = 24;
    const double frac = total_ ? std::min(1.0, static_cast<double>(bytes_done) / total_) : 1.0;
    const int filled = static_cast<int>(frac * kWidth);
    std::string bar = "\r[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] " +
                      std::to_string(static_cast<int>(frac * 100)) + "% " + std::string(phase) +
                      "  rows " + std::to_string(t.rows) + "  accepted " +
                      std::to_string(t.accepted) + "  rejected " + std::to_string(t.rejected) +
                      "  duplicates " + std::to_string(t.duplicates) + "  uploaded " +
                      std::to_string(t.uploaded) + "\033[K";
    ctx_.err << bar << std::flush;
    drawn_ = true;
  }
  // Clears the line before other stderr output.
  void clear() {
    if (enabled_ && drawn_) ctx_.err << "\r\033[K" << std::flush;
    drawn_ = false;
  }

 private:
  const CliContext& ctx_;
  bool enabled_;
  uint64_t total_;
  int64_t last_ms_ = 0;
  bool drawn_ = false;
};

uint64_t total_size(const std::vector<std::string>& files) {
  uint64_t n = 0;
  for (const auto& f : files) {
    std::error_code ec;
    auto s = std::filesystem::file_size(f, ec);
    if (!ec) n += s;
  }
  return n;
}

void print_summary(const CliContext& ctx, const Tally& t, bool via, const std::string& stopped) {
  if (ctx.args.flag("--json")) {
    std::string j = "{\"rows\":" + std::to_string(t.rows) + ",\"accepted\":" +
                    std::to_string(t.accepted) + ",\"duplicates\":" + std::to_string(t.duplicates) +
                    ",\"rejected\":" + std::to_string(t.rejected) + ",\"failed\":" +
                    std::to_string(t.failed) + ",\"uploaded\":" +
                    (via ? "null" : std::to_string(t.uploaded)) + ",\"dead_lettered\":" +
                    (via ? "null" : std::to_string(t.dead_lettered)) + ",\"stopped\":";
    if (stopped.empty()) {
      j += "null";
    } else {
      append_json_string(j, stopped);
    }
    ctx.out << j << "}\n";
    return;
  }
  ctx.out << "rows:          " << t.rows << "\n"
          << "accepted:      " << t.accepted << "\n"
          << "duplicates:    " << t.duplicates << "\n"
          << "rejected:      " << t.rejected << "\n";
  if (t.failed) ctx.out << "failed:        " << t.failed << "\n";
  if (via) {
    ctx.out << "uploaded:      handed to the relay (it uploads in the background; see its "
               "/v1/status)\n";
  } else {
    ctx.out << "uploaded:      " << t.uploaded << "\n"
            << "dead-lettered: " << t.dead_lettered
            << (t.dead_lettered ? " (see `capi-relay dlq list`)" : "") << "\n";
  }
}

// ---------------------------------------------------------------- local: spool + uploader

class LocalUpload {
 public:
  LocalUpload(const CliContext& ctx, Progress& progress, Tally& tally)
      : ctx_(ctx), progress_(progress), tally_(tally) {}

  int run(const std::vector<std::string>& files);

 private:
  void submit_current();
  void wait_for_room(size_t max_in_flight);
  void on_written(std::unique_ptr<WriteRequest> req);
  void refresh_upload_counts();

  const CliContext& ctx_;
  Progress& progress_;
  Tally& tally_;
  WritePipeline* pipeline_ = nullptr;
  metrics::RelayMetrics* metrics_ = nullptr;
  std::unique_ptr<WriteRequest> current_;

  std::mutex mu_;
  std::condition_variable cv_;
  size_t in_flight_ = 0;                              // guarded by mu_
  std::deque<std::unique_ptr<WriteRequest>> retry_;  // spool full: resubmit later; mu_
  uint64_t written_duplicates_ = 0;                  // mu_
  uint64_t written_failed_ = 0;                      // mu_
  uint64_t written_ok_ = 0;                          // mu_
};

void LocalUpload::on_written(std::unique_ptr<WriteRequest> req) {
  // Writer thread.
  std::lock_guard lock(mu_);
  if (req->status == WriteStatus::kSpoolFull) {
    retry_.push_back(std::move(req));  // the uploader drains the spool; try again shortly
  } else {
    if (req->status == WriteStatus::kOk) {
      for (uint8_t d : req->duplicate) (d ? written_duplicates_ : written_ok_)++;
    } else {
      written_failed_ += req->records();
    }
    --in_flight_;
  }
  cv_.notify_all();
}

void LocalUpload::submit_current() {
  if (!current_ || current_->records() == 0) return;
  current_->done = [this](std::unique_ptr<WriteRequest> r) { on_written(std::move(r)); };
  {
    std::lock_guard lock(mu_);
    ++in_flight_;
  }
  while (!pipeline_->submit(current_)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // queue full: writer is busy
  }
  current_.reset();
}

// Waits until at most max_in_flight writes are outstanding, resubmitting spool-full ones.
void LocalUpload::wait_for_room(size_t max_in_flight) {
  std::unique_lock lock(mu_);
  for (;;) {
    while (!retry_.empty()) {
      auto r = std::move(retry_.front());
      retry_.pop_front();
      r->status = WriteStatus::kOk;
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));  // let the uploader drain
      while (!pipeline_->submit(r)) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      lock.lock();
    }
    if (in_flight_ <= max_in_flight) return;
    cv_.wait_for(lock, std::chrono::milliseconds(kPollMs));
    if (g_interrupted.load()) return;
  }
}

void LocalUpload::refresh_upload_counts() {
  tally_.uploaded = metrics_->events_uploaded.value();
  tally_.dead_lettered = metrics_->events_dead_lettered.with("rejected").value() +
                         metrics_->events_dead_lettered.with("expired").value();
  std::lock_guard lock(mu_);
  tally_.duplicates = written_duplicates_;
  tally_.failed = written_failed_;
  tally_.accepted = written_ok_;
}

int LocalUpload::run(const std::vector<std::string>& files) {
  const Config& c = ctx_.config;
  SpoolLockAttempt lock = lock_spool_dir(c);
  if (!lock.lock) {
    if (lock.held_by_other) {
      auto ingest = local_url_of_listen(c.server.listen, "server.listen");
      return runtime_failure(
          ctx_, "a relay is running on " + c.spool.dir.string() + "; use --via " +
                    (ingest ? *ingest : std::string("http://<its ingest address>")) +
                    " to send the files through it");
    }
    return runtime_failure(ctx_, lock.error);
  }
  if (!c.linkedin.dry_run) {
    auto tokens = open_token_store(c, ctx_.clock);
    if (!tokens) return runtime_failure(ctx_, tokens.error());
    const TokenSet t = (*tokens)->current();
    if (t.access_token.empty() && t.refresh_token.empty()) {
      return runtime_failure(ctx_, "no access token: run `capi-relay auth login` (or set "
                                   "linkedin.access_token, or linkedin.dry_run: true to try it "
                                   "out); nothing was read");
    }
  }
  auto spool = Spool::open({c.spool.dir / "spool", c.spool.max_bytes, 16ull << 20, c.spool.fsync},
                           ctx_.clock);
  if (!spool) return runtime_failure(ctx_, "cannot open the spool: " + spool.error());
  auto dead_letters = DeadLetterStore::open(c.spool.dir / "dead-letters",
                                            c.spool.dead_letter_retention.count(), ctx_.clock);
  if (!dead_letters) {
    return runtime_failure(ctx_, "cannot open the dead-letter store: " + dead_letters.error());
  }
  metrics::Registry registry;
  metrics::RelayMetrics m(registry);
  metrics_ = &m;
  auto dedup = open_dedup(c, ctx_.clock, ctx_.random, &m);
  if (!dedup) return runtime_failure(ctx_, "cannot open the dedup state: " + dedup.error());
  // Keys of records still pending in the spool count as seen (a crash may have cut the journal).
  if (auto r = (*spool)->for_each_pending([&](const SpoolEntry& e) {
        if (auto ev = decode_record(e.payload); ev) {
          (*dedup)->recover(dedup_fingerprint(ev->rule_id, ev->event_id), e.append_ms);
        }
      });
      !r) {
    return runtime_failure(ctx_, "cannot read the spool: " + r.error());
  }

  auto uploader = Uploader::create({c, **spool, **dedup, **dead_letters, m, ctx_.clock, ctx_.random});
  WritePipeline pipeline(**spool, **dedup, m, ctx_.clock, c.spool.fsync, 64,
                         [&uploader] { uploader->notify(); });
  pipeline_ = &pipeline;
  uploader->start();
  pipeline.start();

  InterruptGuard interrupt_guard;
  EventParser parser(EventRules::from_config(c), ctx_.random);
  const uint64_t total = total_size(files);
  uint64_t done_bytes = 0;
  std::string stopped;
  for (const std::string& file : files) {
    if (g_interrupted.load()) break;
    auto input = UploadInput::open(file);
    if (!input) {
      progress_.clear();
      ctx_.err << input.error() << "\n";
      ++tally_.rejected;  // the file as a whole could not be read
      continue;
    }
    InputRow row;
    std::string payload;
    uint64_t n = 0;
    while ((*input)->next(row)) {
      ++tally_.rows;
      ParsedItem item;
      if (row.error.empty()) {
        ParseOptions opts;
        opts.now_ms = ctx_.clock.now_ms();
        opts.require_timestamp = true;
        item = (*input)->format() == InputFormat::kCsv ? parser.normalize_flat(row.flat, opts)
                                                       : parser.parse_one(row.json, opts);
      } else {
        item.ok = false;
        item.error = row.error;
      }
      if (!item.ok) {
        ++tally_.rejected;
        progress_.clear();
        ctx_.err << file << ":" << row.line << ": " << item.error << "\n";
      } else {
        payload.clear();
        encode_record(item.event, payload);
        if (!current_) current_ = std::make_unique<WriteRequest>();
        current_->add(payload, dedup_fingerprint(item.event.rule_id, item.event.event_id));
        if (current_->records() >= kRecordsPerWrite) {
          submit_current();
          wait_for_room(kWritesInFlight);
        }
      }
      if ((++n & 1023) == 0) {
        refresh_upload_counts();
        progress_.update(tally_, done_bytes + (*input)->position(), "reading");
        if (g_interrupted.load()) break;
      }
    }
    submit_current();
    std::error_code ec;
    auto size = std::filesystem::file_size(file, ec);
    if (!ec) done_bytes += size;
  }
  submit_current();
  wait_for_room(0);
  refresh_upload_counts();

  // Everything is on the spool: wait for the uploader to finish it.
  for (;;) {
    if (g_interrupted.load()) {
      stopped = "interrupted";
      break;
    }
    const SpoolStats st = (*spool)->stats();
    refresh_upload_counts();
    progress_.update(tally_, total, "uploading");
    if (st.pending_records == 0) break;
    const UploadStatus us = uploader->status();
    if (us.paused) {
      stopped = "uploads paused: " + us.paused_reason;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
  }
  pipeline.stop();
  uploader->stop(ctx_.clock.steady_ms());
  if (auto r = (*dedup)->flush(); !r) {
    progress_.clear();
    ctx_.err << "capi-relay upload: warning: dedup state not written (" << r.error() << ")\n";
  }
  refresh_upload_counts();
  progress_.clear();
  print_summary(ctx_, tally_, false, stopped);
  if (!stopped.empty()) {
    const uint64_t pending = (*spool)->stats().pending_records;
    std::string next = stopped == "interrupted"
                           ? "run `capi-relay upload` again or `capi-relay serve` to send them"
                           : "fix the cause (`capi-relay whoami` helps), then run `capi-relay "
                             "serve` or this upload again (nothing is sent twice)";
    return runtime_failure(ctx_, stopped + "; " + std::to_string(pending) +
                                     " events stay spooled in " + c.spool.dir.string() + "; " +
                                     next);
  }
  const bool clean = tally_.rejected == 0 && tally_.failed == 0 && tally_.dead_lettered == 0;
  return clean ? kExitOk : kExitFailure;
}

// ---------------------------------------------------------------- --via: a running relay

class ViaUpload {
 public:
  ViaUpload(const CliContext& ctx, Progress& progress, Tally& tally)
      : ctx_(ctx), progress_(progress), tally_(tally) {}
  int run(const std::vector<std::string>& files, const std::string& via,
          const std::optional<std::string>& key);

 private:
  struct Chunk {
    std::string body;
    std::vector<uint64_t> lines;
  };
  // Sends a chunk; false on a fatal error (stop_ says why).
  bool send(const std::string& file, const Chunk& chunk);
  bool send_range(const std::string& file, const Chunk& chunk, size_t from, size_t to);

  const CliContext& ctx_;
  Progress& progress_;
  Tally& tally_;
  std::unique_ptr<HttpClient> client_;
  std::string target_;
  std::optional<std::string> key_;
  std::string stop_;
};

bool ViaUpload::send(const std::string& file, const Chunk& chunk) {
  if (chunk.lines.empty()) return true;
  return send_range(file, chunk, 0, chunk.lines.size());
}

bool ViaUpload::send_range(const std::string& file, const Chunk& chunk, size_t from, size_t to) {
  // Lines [from, to) of the chunk: cut its body by line.
  std::string body;
  {
    size_t pos = 0;
    for (size_t i = 0; i < to; ++i) {
      size_t nl = chunk.body.find('\n', pos);
      if (i >= from) body.append(chunk.body, pos, nl - pos + 1);
      pos = nl + 1;
    }
  }
  for (int attempt = 0;; ++attempt) {
    HttpRequest req;
    req.method = "POST";
    req.target = target_;
    req.headers = {{"Content-Type", "application/x-ndjson"}, {"Accept", "application/json"}};
    if (key_) req.headers.emplace_back("Authorization", "Bearer " + *key_);
    req.body = body;
    HttpResult r = client_->request(std::move(req));
    if (!r.ok()) {
      stop_ = "the relay did not answer (" + std::string(http_error_label(r.error)) + ": " +
              r.error_message + "); is it running at the --via address?";
      return false;
    }
    const int status = r.response.status;
    if (status == 503 && attempt < kViaMaxRetries && !g_interrupted.load()) {
      int64_t wait_ms = 1000;
      const std::string ra = r.response.header("retry-after");
      if (!ra.empty() && std::isdigit(static_cast<unsigned char>(ra[0]))) {
        wait_ms = std::min<int64_t>(30'000, std::stoll(ra) * 1000);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
      continue;
    }
    if (status == 413 && to - from > 1) {
      const size_t mid = from + (to - from) / 2;
      return send_range(file, chunk, from, mid) && send_range(file, chunk, mid, to);
    }
    if (status == 401 || status == 403) {
      stop_ = "the relay refused the request (" + std::to_string(status) +
              "): pass --key with one of its server.ingest_keys";
      return false;
    }
    if (status != 202 && status != 400) {
      stop_ = "the relay answered " + std::to_string(status) + ": " + r.response.body.substr(0, 300);
      return false;
    }
    simdjson::dom::parser parser;
    simdjson::padded_string padded(r.response.body);
    simdjson::dom::element doc;
    simdjson::dom::array rejected;
    if (parser.parse(padded).get(doc) != simdjson::SUCCESS ||
        doc["rejected"].get_array().get(rejected) != simdjson::SUCCESS) {
      stop_ = "the relay's answer (" + std::to_string(status) + ") has no per-event results: " +
              r.response.body.substr(0, 300);
      return false;
    }
    uint64_t accepted = 0, duplicates = 0;
    if (doc["accepted"].get_uint64().get(accepted) != simdjson::SUCCESS) accepted = 0;
    if (doc["duplicates"].get_uint64().get(duplicates) != simdjson::SUCCESS) duplicates = 0;
    tally_.accepted += accepted;
    tally_.duplicates += duplicates;
    for (simdjson::dom::element e : rejected) {
      uint64_t index = 0;
      std::string_view error;
      if (e["index"].get_uint64().get(index) != simdjson::SUCCESS) continue;
      if (e["error"].get_string().get(error) != simdjson::SUCCESS) error = "rejected";
      ++tally_.rejected;
      const uint64_t line = from + index < to ? chunk.lines[from + index] : 0;
      progress_.clear();
      ctx_.err << file << ":" << line << ": " << error << "\n";
    }
    return true;
  }
}

int ViaUpload::run(const std::vector<std::string>& files, const std::string& via,
                   const std::optional<std::string>& key) {
  ParsedUrl u;
  auto client = make_http_client(via, ctx_.config, &u);
  if (!client) return runtime_failure(ctx_, "--via: " + client.error());
  client_ = std::move(client.value());
  std::string prefix = u.target.substr(0, u.target.find('?'));
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  target_ = prefix + "/v1/events";
  key_ = key;
  InterruptGuard interrupt_guard;
  const uint64_t total = total_size(files);
  uint64_t done_bytes = 0;
  simdjson::dom::parser sniff;
  for (const std::string& file : files) {
    if (!stop_.empty() || g_interrupted.load()) break;
    auto input = UploadInput::open(file);
    if (!input) {
      progress_.clear();
      ctx_.err << input.error() << "\n";
      ++tally_.rejected;
      continue;
    }
    Chunk chunk;
    InputRow row;
    auto reject = [&](uint64_t line, const std::string& why) {
      ++tally_.rejected;
      progress_.clear();
      ctx_.err << file << ":" << line << ": " << why << "\n";
    };
    while ((*input)->next(row)) {
      ++tally_.rows;
      if (!row.error.empty()) {
        reject(row.line, row.error);
        continue;
      }
      std::string json;
      if ((*input)->format() == InputFormat::kCsv) {
        if (!row.flat.timestamp.present) {
          reject(row.line, "bad_timestamp: timestamp is required");
          continue;
        }
        json = flat_event_json(row.flat);
      } else {
        // Every row needs a timestamp (the relay would default it to the time of receipt).
        simdjson::padded_string padded(row.json);
        simdjson::dom::element doc;
        if (sniff.parse(padded).get(doc) == simdjson::SUCCESS && doc.is_object() &&
            doc["timestamp"].error() == simdjson::NO_SUCH_FIELD &&
            doc["conversionHappenedAt"].error() == simdjson::NO_SUCH_FIELD) {
          reject(row.line, "bad_timestamp: timestamp is required");
          continue;
        }
        json = std::move(row.json);
        for (char& ch : json) {
          if (ch == '\n' || ch == '\r') ch = ' ';
        }
      }
      chunk.body += json;
      chunk.body += '\n';
      chunk.lines.push_back(row.line);
      if (chunk.lines.size() >= kEventsPerPost) {
        if (!send(file, chunk)) break;
        chunk = {};
        progress_.update(tally_, done_bytes + (*input)->position(), "sending");
        if (g_interrupted.load()) break;
      }
    }
    if (stop_.empty() && !g_interrupted.load()) send(file, chunk);
    std::error_code ec;
    auto size = std::filesystem::file_size(file, ec);
    if (!ec) done_bytes += size;
  }
  progress_.update(tally_, total, "done", true);
  progress_.clear();
  if (g_interrupted.load() && stop_.empty()) stop_ = "interrupted";
  print_summary(ctx_, tally_, true, stop_);
  if (!stop_.empty()) return runtime_failure(ctx_, stop_ + "; rows after that point were not sent");
  return tally_.rejected == 0 && tally_.failed == 0 ? kExitOk : kExitFailure;
}

}  // namespace

int run_upload(const CliContext& ctx) {
  if (int rc = check_usage(ctx, SIZE_MAX, {"--via", "--key"}, {"--json"}); rc != kExitOk) return rc;
  const std::vector<std::string>& files = ctx.args.positional;
  if (files.empty()) return usage_error(ctx, "upload needs at least one CSV or NDJSON file");
  auto via = ctx.args.option("--via");
  auto key = ctx.args.option("--key");
  if (key && !via) return usage_error(ctx, "--key only applies with --via URL");
  for (const auto& f : files) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(f, ec)) {
      return runtime_failure(ctx, "cannot read " + f + " (no such file)");
    }
  }
  Tally tally;
  Progress progress(ctx, total_size(files));
  if (via) {
    if (via->rfind("http://", 0) != 0 && via->rfind("https://", 0) != 0) {
      return usage_error(ctx, "--via takes the relay's base URL, e.g. http://127.0.0.1:8080");
    }
    ViaUpload upload(ctx, progress, tally);
    return upload.run(files, *via, key);
  }
  LocalUpload upload(ctx, progress, tally);
  return upload.run(files);
}

}  // namespace capi_relay
