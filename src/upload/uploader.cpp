// The uploader: spool -> batches -> LinkedIn (or dry-run files) -> verdicts -> spool/dead letters.
//
// One loop thread owns every batch, the shared Backoff and the RateLimiter. HTTP completions
// arrive on the HttpClient's I/O thread and are handed to the loop through a mutex-protected
// inbox; the loop sleeps on a condition variable until the next deadline (flush, backoff, rate
// limit, pause recheck, stop) or until notify()/recheck()/stop()/a completion wakes it.
#include "capi_relay/upload/uploader.hpp"

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <list>
#include <mutex>
#include <thread>
#include <vector>

#include "capi_relay/common/thread_name.hpp"
#include "capi_relay/dedup/shared_rate_budget.hpp"
#include "capi_relay/common/files.hpp"
#include "capi_relay/common/log.hpp"
#include "capi_relay/event/element.hpp"
#include "capi_relay/event/record.hpp"
#include "capi_relay/upload/backoff.hpp"
#include "capi_relay/upload/http_client.hpp"
#include "capi_relay/upload/rate_limiter.hpp"
#include "capi_relay/upload/response_policy.hpp"
#include "capi_relay/upload/token_store.hpp"

namespace capi_relay {
namespace {

constexpr std::string_view kComponent = "upload";
constexpr int64_t kMaxEventAgeMs = 90ll * 24 * 3600 * 1000;
constexpr int64_t kIdlePollMs = 1000;             // re-check the spool even without notify()
constexpr int64_t kProactiveRefreshRetryMs = 60'000;
constexpr size_t kGrowAfterFullBatches = 8;  // after a 413 lowered the batch size
// Uploading can wait (the spool holds what it has not sent yet); answering the store cannot. Under
// CPU contention the upload threads get about a tenth of the share of the ingest and writer
// threads (CFS weights of nice 10 and 0), so a burst is acknowledged first and uploaded after.
constexpr int kUploadNice = 10;

struct ItemMeta {
  RecordId id;
  std::string payload;  // kept for the dead-letter store
};

// Records taken from the spool and not yet complete. `events[i]` and `meta[i]` belong together.
struct Batch {
  uint64_t seq = 0;
  std::vector<NormalizedEvent> events;
  std::vector<ItemMeta> meta;
  int64_t opened_steady_ms = 0;
  bool sealed = false;     // full or flush_interval elapsed: no more records join it
  bool in_flight = false;
  bool sent_once = false;  // a request carried it at least once
  int64_t not_before = 0;  // steady ms; this batch's own earliest resend (e.g. after refresh)
  // The access token the batch was last sent with: a 401 for a token that has been replaced
  // since (another batch's 401 refreshed it while this one was in flight) is not a reason to
  // refresh again, let alone to pause.
  std::string sent_token;
  size_t size() const { return events.size(); }
};

struct Completion {
  uint64_t batch_seq = 0;
  HttpResult result;
  int64_t duration_ms = 0;
};

class UploaderImpl final : public Uploader {
 public:
  explicit UploaderImpl(const UploaderDeps& deps)
      : config_(deps.config),
        li_(deps.config.linkedin),
        spool_(deps.spool),
        dedup_(deps.dedup),
        dead_letters_(deps.dead_letters),
        metrics_(deps.metrics),
        clock_(deps.clock),
        on_outcome_(deps.on_outcome),
        backoff_(li_.retry.initial_backoff.count(), li_.retry.max_backoff.count(), deps.random),
        limiter_(li_.rate_limit.per_minute, li_.rate_limit.per_day, deps.clock),
        batch_limit_(std::clamp<unsigned>(li_.batch_max_events, 1, 5000)),
        batch_max_(batch_limit_),
        max_batches_(std::max<unsigned>(li_.max_in_flight, 1)),
        id_email_(metrics_.identifiers.with("email")),
        id_li_fat_id_(metrics_.identifiers.with("li_fat_id")),
        id_acxiom_(metrics_.identifiers.with("acxiom")),
        id_moat_(metrics_.identifiers.with("moat")),
        id_external_(metrics_.identifiers.with("external_id")),
        id_ip_(metrics_.identifiers.with("ip")),
        id_names_only_(metrics_.identifiers.with("names_only")),
        dead_rejected_(metrics_.events_dead_lettered.with("rejected")),
        dead_expired_(metrics_.events_dead_lettered.with("expired")) {
    if (li_.rate_limit.shared && (li_.rate_limit.per_minute > 0 || li_.rate_limit.per_day > 0)) {
      SharedRateBudgetOptions o;
      o.url = deps.config.dedup.redis_url;
      o.per_minute = li_.rate_limit.per_minute;
      o.per_day = li_.rate_limit.per_day;
      if (auto b = open_shared_rate_budget(o, deps.clock)) {
        shared_budget_ = std::move(*b);
      } else {
        log::error(kComponent, "shared rate budget disabled; using the local limit",
                   {{"error", b.error()}});
      }
    }
    metrics_.uploads_paused.set(0);
    metrics_.token_expiry.clear();
    metrics_.refresh_token_expiry.clear();
  }

  ~UploaderImpl() override { stop(clock_.steady_ms()); }

  void start() override {
    std::lock_guard lock(mu_);
    if (started_) return;
    started_ = true;
    thread_ = std::thread([this] {
      set_thread_name("uploader");
      lower_thread_priority(kUploadNice);
      run();
    });
  }

  void notify() override {
    {
      std::lock_guard lock(mu_);
      woken_ = true;
    }
    cv_.notify_one();
  }

  void recheck() override {
    {
      std::lock_guard lock(mu_);
      recheck_requested_ = true;
    }
    cv_.notify_one();
  }

  void stop(int64_t deadline_steady_ms) override {
    {
      std::lock_guard lock(mu_);
      if (!started_) return;
      stop_requested_ = true;
      deadline_ = deadline_steady_ms;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
    // Cancels what is still in flight; its completions land in an inbox nobody reads any more.
    if (http_) http_->shutdown();
  }

  UploadStatus status() const override {
    std::lock_guard lock(mu_);
    return status_;
  }

 private:
  // ---------------------------------------------------------------- loop
  void run() {
    setup();
    for (;;) {
      std::vector<Completion> completions;
      bool recheck = false;
      bool stopping = false;
      int64_t deadline = 0;
      {
        std::unique_lock lock(mu_);
        completions.swap(inbox_);
        recheck = std::exchange(recheck_requested_, false);
        woken_ = false;
        stopping = stop_requested_;
        deadline = deadline_;
      }
      for (Completion& c : completions) on_completion(c);
      if (recheck) on_recheck();

      const int64_t now = clock_.steady_ms();
      // Also while stopping: the spool writer has stopped by then, and events accepted until the
      // end of the grace period are uploaded within shutdown_timeout like any others.
      fill();
      seal(now, stopping);
      if (stopping) {
        // Stop once nothing is left, at the deadline, or when nothing could go out before it.
        if (batches_.empty() || now >= deadline) break;
        if (in_flight_ == 0 && (paused_ || earliest_send() >= deadline)) break;
      }
      send_ready(now);
      publish_status();

      int64_t wake = now + kIdlePollMs;
      wake = std::min(wake, next_deadline(now));
      if (stopping) wake = std::min(wake, deadline);
      std::unique_lock lock(mu_);
      if (woken_ || !inbox_.empty() || recheck_requested_ || stop_requested_ != stopping) {
        continue;
      }
      const int64_t wait_ms = std::max<int64_t>(wake - clock_.steady_ms(), 1);
      cv_.wait_for(lock, std::chrono::milliseconds(wait_ms), [this, stopping] {
        return woken_ || !inbox_.empty() || recheck_requested_ || stop_requested_ != stopping;
      });
    }
    if (!batches_.empty()) {
      size_t left = 0;
      for (const Batch& b : batches_) left += b.size();
      log::info(kComponent, "uploader stopped; events left on the spool",
                {{"events", std::to_string(left)}});
    }
    publish_status();
  }

  void setup() {
    if (li_.dry_run) {
      dry_run_dir_ = config_.spool.dir / "dry-run";
      dry_run_seq_ = last_dry_run_sequence(dry_run_dir_);
      log::info(kComponent, "dry run: batches are written to files, nothing is sent",
                {{"dir", dry_run_dir_.string()}});
      return;
    }
    open_http();
    open_tokens();
  }

  void open_http() {
    HttpClientOptions ho;
    ho.origin = li_.api_base;
    ho.ca_file = li_.ca_file;
    ho.connect_timeout = li_.connect_timeout;
    ho.response_timeout = li_.response_timeout;
    ho.max_idle_connections = max_batches_ + 1;
    ho.user_agent = std::string("capi-relay/") + CAPI_RELAY_VERSION;
    auto client = HttpClient::create(ho);
    if (!client) {
      log::error(kComponent, "cannot create the LinkedIn client", {{"error", client.error()}});
      pause("http_client_error: " + client.error());
      return;
    }
    http_ = std::move(client.value());
    auto url = parse_url(li_.api_base);
    std::string prefix = url ? url->target : "/";
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    target_ = prefix + "/rest/conversionEvents";
  }

  void open_tokens() {
    auto store = TokenStore::open(TokenStoreOptions::from_config(config_), clock_);
    if (!store) {
      log::error(kComponent, "cannot open the token file", {{"error", store.error()}});
      pause("token_file_error");
      return;
    }
    tokens_ = std::move(store.value());
    publish_tokens();
  }

  void on_recheck() {
    if (!li_.dry_run) {
      if (!http_) open_http();
      if (!tokens_) {
        open_tokens();
      } else if (auto r = tokens_->reload(); !r) {
        log::error(kComponent, "cannot re-read the token file", {{"error", r.error()}});
      }
      publish_tokens();
    }
    next_probe_at_ = clock_.steady_ms();
    backoff_resend_now();
  }

  void backoff_resend_now() {
    for (Batch& b : batches_) b.not_before = 0;
  }

  // ---------------------------------------------------------------- batching
  void fill() {
    for (;;) {
      Batch* open = nullptr;
      if (!batches_.empty() && !batches_.back().sealed) open = &batches_.back();
      // While the request budget binds, a batch waiting for its first send (not in flight, never
      // sent) takes more records instead of the records waiting for a free batch slot.
      if (open == nullptr && rate_wait_until_ > clock_.steady_ms()) {
        for (Batch& b : batches_) {
          if (!b.in_flight && !b.sent_once && b.size() < batch_max_) {
            open = &b;
            break;
          }
        }
      }
      if (open == nullptr) {
        if (batches_.size() >= max_batches_) return;
        batches_.emplace_back();
        open = &batches_.back();
        open->seq = ++batch_seq_;
      }
      if (open->size() >= batch_max_) {  // batch_max_ was lowered (413) below its size
        open->sealed = true;
        continue;
      }
      const size_t room = batch_max_ - open->size();
      std::vector<SpoolEntry> entries;
      const size_t n = spool_.read_next(room, entries);
      if (n == 0) {
        if (open->size() == 0) batches_.pop_back();
        return;
      }
      if (open->size() == 0) open->opened_steady_ms = clock_.steady_ms();
      std::vector<DeadLetter> undecodable;
      std::vector<RecordId> undecodable_ids;
      Batch expired;
      for (SpoolEntry& e : entries) {
        auto ev = decode_record(e.payload);
        if (!ev) {
          DeadLetter d;
          d.reason = "rejected";
          d.message = "undecodable spool record: " + ev.error();
          d.dead_lettered_at_ms = clock_.now_ms();
          d.payload = std::move(e.payload);
          undecodable.push_back(std::move(d));
          undecodable_ids.push_back(e.id);
          continue;
        }
        ItemMeta m;
        m.id = e.id;
        m.payload = std::move(e.payload);
        Batch& into = too_old(*ev) ? expired : *open;
        into.events.push_back(std::move(ev.value()));
        into.meta.push_back(std::move(m));
      }
      if (expired.size() > 0) expire_old(expired);
      if (!undecodable.empty()) {
        log::error(kComponent, "undecodable spool records dead-lettered",
                   {{"count", std::to_string(undecodable.size())}});
        if (store_dead_letters(undecodable)) {
          complete_ids(undecodable_ids);
          dead_rejected_.inc(undecodable.size());
        }
      }
      if (open->size() == 0) {
        batches_.pop_back();
        continue;
      }
      if (open->size() < batch_max_) return;  // the spool has no more for now
      open->sealed = true;
    }
  }

  // One request from the budget: the shared one in Redis when rate_limit.shared is set (the
  // app's quota is per app, not per relay), else — or while Redis cannot be asked — the local one.
  // Returns 0 when a request may go now, else the ms to wait.
  int64_t acquire_request_budget() {
    if (shared_budget_) {
      auto r = shared_budget_->try_acquire();
      if (r) return *r;
      log::warn(kComponent, "shared rate budget unavailable; using the local limit",
                {{"error", r.error()}});
    }
    return limiter_.try_acquire();
  }

  void seal(int64_t now, bool stopping) {
    // While the request budget binds, open batches keep filling up to batch_max_events instead of
    // being sealed at flush_interval: fewer, larger requests rather than a queue of small ones.
    const bool rate_bound = rate_wait_until_ > now;
    for (Batch& b : batches_) {
      if (b.sealed) continue;
      if (stopping || b.size() >= batch_max_ ||
          (!rate_bound && now - b.opened_steady_ms >= li_.flush_interval.count())) {
        b.sealed = true;
      }
    }
  }

  // Events older than 90 days are never sent (LinkedIn refuses them): dead-lettered as expired.
  // Checked when a record is read and again before every (re)send of its batch.
  bool too_old(const NormalizedEvent& e) const {
    return e.happened_at_ms < clock_.now_ms() - kMaxEventAgeMs;
  }

  void expire_old(Batch& b) {
    std::vector<ElementVerdict> verdicts(b.size());
    bool any = false;
    for (size_t i = 0; i < b.size(); ++i) {
      if (too_old(b.events[i])) {
        verdicts[i] = {ElementAction::kDeadLetter, 0, "older than 90 days"};
        any = true;
      } else {
        verdicts[i] = {ElementAction::kRetry, 0, {}};
      }
    }
    if (any) apply(b, verdicts, "expired");
  }

  // ---------------------------------------------------------------- sending
  int64_t earliest_send() const {
    int64_t t = std::max(backoff_.not_before(), rate_wait_until_);
    if (paused_) t = std::max(t, next_probe_at_);
    int64_t batch_min = INT64_MAX;
    for (const Batch& b : batches_) {
      if (b.sealed && !b.in_flight) batch_min = std::min(batch_min, b.not_before);
    }
    return std::max(t, batch_min);
  }

  int64_t next_deadline(int64_t now) const {
    int64_t t = INT64_MAX;
    for (const Batch& b : batches_) {
      if (!b.sealed) t = std::min(t, b.opened_steady_ms + li_.flush_interval.count());
    }
    const int64_t send = earliest_send();
    if (send != INT64_MAX) t = std::min(t, std::max(send, now + 1));
    return t;
  }

  void send_ready(int64_t now) {
    for (Batch& b : batches_) {
      if (!b.sealed || b.in_flight || b.size() == 0) continue;
      if (in_flight_ >= max_batches_) break;
      if (backoff_.not_before() > now || rate_wait_until_ > now) break;
      // After a failure, one probe at a time: the other batches follow once it succeeds, so an
      // outage costs one request per backoff window whatever max_in_flight is.
      if (backoff_.consecutive_failures() > 0 && in_flight_ > 0) break;
      if (b.not_before > now) continue;
      if (paused_) {
        // While paused only one probe at a time, every pause_recheck.
        if (now < next_probe_at_ || in_flight_ > 0) break;
        next_probe_at_ = now + li_.pause_recheck.count();
        refreshed_since_ok_ = false;  // a probe may refresh once more (the file may be new)
        if (tokens_) {
          if (auto r = tokens_->reload(); !r) {
            log::error(kComponent, "cannot re-read the token file", {{"error", r.error()}});
          }
          publish_tokens();
        }
      }
      if (!li_.dry_run) {
        if (!http_ || !tokens_) break;
        if (!ensure_token(now)) break;
      }
      expire_old(b);
      if (b.size() == 0) continue;  // erased below
      if (const int64_t wait = acquire_request_budget(); wait > 0) {
        rate_wait_until_ = now + wait;
        break;
      }
      send(b);
      now = clock_.steady_ms();
    }
    batches_.remove_if([](const Batch& b) { return b.sealed && !b.in_flight && b.size() == 0; });
  }

  // Refreshes when the access token is missing or about to expire; false when no request can
  // go out now (paused, or backing off after a failed refresh).
  bool ensure_token(int64_t now) {
    TokenSet t = tokens_->current();
    const bool missing = t.access_token.empty();
    if (missing && t.refresh_token.empty()) {
      pause("token_missing");
      return false;
    }
    if (missing || (tokens_->should_refresh() && now >= next_proactive_refresh_at_)) {
      const RefreshResult r = tokens_->refresh();
      publish_tokens();
      if (r.outcome == RefreshOutcome::kRefreshed) {
        refreshed_since_ok_ = true;
        return true;
      }
      log::warn(kComponent, "token refresh failed", {{"error", r.message}});
      if (!missing) {
        // The current token still works for a while: keep using it, try again in a minute.
        next_proactive_refresh_at_ = now + kProactiveRefreshRetryMs;
        return true;
      }
      if (r.outcome == RefreshOutcome::kTransient) {
        backoff_.failure(now);
        return false;
      }
      pause("token_expired");
      return false;
    }
    return true;
  }

  void send(Batch& b) {
    std::string body;
    body.reserve(b.size() * 400 + 16);
    append_batch_json(b.events, body);
    metrics_.batch_events.observe(static_cast<double>(b.size()));
    b.in_flight = true;
    b.sent_once = true;
    ++in_flight_;
    const int64_t sent_at = clock_.steady_ms();
    const uint64_t seq = b.seq;

    if (li_.dry_run) {
      // Through the inbox like a real answer, so batches_ is not changed under send_ready().
      Completion c{seq, write_dry_run(body), clock_.steady_ms() - sent_at};
      std::lock_guard lock(mu_);
      inbox_.push_back(std::move(c));
      return;
    }
    HttpRequest req;
    req.method = "POST";
    req.target = target_;
    b.sent_token = tokens_->current().access_token;
    req.headers = {{"Authorization", "Bearer " + b.sent_token},
                   {"LinkedIn-Version", li_.version},
                   {"X-Restli-Protocol-Version", "2.0.0"},
                   {"Content-Type", "application/json"},
                   {"X-RestLi-Method", "BATCH_CREATE"}};
    req.body = std::move(body);
    http_->async_request(std::move(req), [this, seq, sent_at](HttpResult result) {
      {
        std::lock_guard lock(mu_);
        inbox_.push_back(Completion{seq, std::move(result), clock_.steady_ms() - sent_at});
      }
      cv_.notify_one();
    });
  }

  HttpResult write_dry_run(const std::string& body) {
    HttpResult r;
    auto dir = ensure_dir(dry_run_dir_);
    char name[64];
    std::snprintf(name, sizeof name, "batch-%016llu.json",
                  static_cast<unsigned long long>(dry_run_seq_ + 1));
    auto written = dir ? write_file_atomic(dry_run_dir_ / name, body) : dir;
    if (!written) {
      log::error(kComponent, "dry run: cannot write batch file", {{"error", written.error()}});
      r.error = HttpErrorKind::kConnectError;
      r.error_message = written.error();
      return r;
    }
    ++dry_run_seq_;
    r.response.status = 200;  // every element accepted
    return r;
  }

  static uint64_t last_dry_run_sequence(const std::filesystem::path& dir) {
    uint64_t last = 0;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.size() != 27 || name.rfind("batch-", 0) != 0) continue;
      uint64_t v = 0;
      auto [p, err] = std::from_chars(name.data() + 6, name.data() + 22, v);
      if (err == std::errc{} && p == name.data() + 22) last = std::max(last, v);
    }
    return last;
  }

  // ---------------------------------------------------------------- verdicts
  void on_completion(Completion& c) {
    auto it = std::find_if(batches_.begin(), batches_.end(),
                           [&](const Batch& b) { return b.seq == c.batch_seq; });
    if (it == batches_.end()) return;
    Batch& b = *it;
    b.in_flight = false;
    --in_flight_;
    const int64_t now = clock_.steady_ms();
    const HttpResult& r = c.result;
    if (r.error == HttpErrorKind::kCancelled) return;  // shutting down
    if (!li_.dry_run) {
      metrics_.upload_duration.observe(static_cast<double>(c.duration_ms) / 1000.0);
    }

    if (!r.ok()) {
      const std::string_view label = http_error_label(r.error);
      metrics_.upload_requests.with(label).inc();
      set_last_status(0);
      retry_later(now, std::string(label), std::nullopt);
      log::warn(kComponent, "upload request failed",
                {{"error", std::string(label)}, {"detail", r.error_message}});
      return;
    }
    const int status = r.response.status;
    if (!li_.dry_run) metrics_.upload_requests.with(std::to_string(status)).inc();
    set_last_status(li_.dry_run ? 0 : status);
    std::optional<int64_t> retry_after =
        parse_retry_after(r.response.header("retry-after"), clock_.now_ms());
    // The wait is turned from wall into steady time, both truncated to ms: one more ms makes sure
    // an HTTP-date is never anticipated by that rounding.
    if (retry_after) *retry_after += 1;
    ResponseVerdict v = li_.dry_run
                            ? ResponseVerdict{BatchAction::kPerElement,
                                              std::vector<ElementVerdict>(b.size()), {}, {}, false}
                            : interpret_response(status, r.response.body, b.size());
    switch (v.action) {
      case BatchAction::kPerElement: {
        upstream_ok(status);
        if (status >= 200 && status < 300) grow_batches(b.size());
        const bool any_retry = apply(b, v.elements, "rejected");
        if (any_retry) {
          metrics_.upload_retries.inc();
          if (v.resend_now) {
            metrics_.upload_retries_by_cause.with("partial_reject").inc();
            b.not_before = now;
          } else {
            metrics_.upload_retries_by_cause.with("element_status").inc();
            backoff_.failure(now, retry_after);
          }
        } else if (status >= 200 && status < 300) {
          backoff_.success();
        }
        break;
      }
      case BatchAction::kRetry:
        retry_later(now, v.retry_cause, retry_after);
        break;
      case BatchAction::kRefreshToken:
        on_unauthorized(b, now);
        break;
      case BatchAction::kPause:
        pause(v.pause_reason);
        break;
      case BatchAction::kSplit:
        split(b, now);
        break;
    }
    if (b.size() == 0) batches_.erase(it);
  }

  // 413: the upstream found the body too large. The batch is resent at once as two halves, and
  // later batches are no larger than the half until full batches of that size have gone through
  // for a while (grow_batches): one element too large by itself ends up alone and dead-lettered
  // without keeping batches small for good.
  void split(Batch& b, int64_t now) {
    const size_t half = b.size() / 2;
    full_batches_ok_ = 0;
    if (half < batch_max_) {
      batch_max_ = std::max<size_t>(half, 1);
      log::warn(kComponent, "upstream refused a batch as too large (413): batches now hold at most",
                {{"events", std::to_string(batch_max_)}});
    }
    Batch& rest = batches_.emplace_back();
    rest.seq = ++batch_seq_;
    rest.sealed = true;
    rest.sent_once = true;  // sent as part of b: not a fresh batch that may take more records
    rest.not_before = now;
    rest.opened_steady_ms = b.opened_steady_ms;
    rest.events.assign(std::make_move_iterator(b.events.begin() + static_cast<ptrdiff_t>(half)),
                       std::make_move_iterator(b.events.end()));
    rest.meta.assign(std::make_move_iterator(b.meta.begin() + static_cast<ptrdiff_t>(half)),
                     std::make_move_iterator(b.meta.end()));
    b.events.resize(half);
    b.meta.resize(half);
    b.sealed = true;
    b.not_before = now;
    metrics_.upload_retries.inc();
    metrics_.upload_retries_by_cause.with("too_large").inc();
  }

  void grow_batches(size_t sent) {
    if (batch_max_ >= batch_limit_ || sent < batch_max_) return;
    if (++full_batches_ok_ < kGrowAfterFullBatches) return;
    full_batches_ok_ = 0;
    batch_max_ = std::min(batch_limit_, batch_max_ * 2);
    log::info(kComponent, "batches grow again", {{"events", std::to_string(batch_max_)}});
  }

  void retry_later(int64_t now, const std::string& cause, std::optional<int64_t> retry_after) {
    metrics_.upload_retries.inc();
    metrics_.upload_retries_by_cause.with(cause).inc();
    backoff_.failure(now, retry_after);
  }

  void on_unauthorized(Batch& b, int64_t now) {
    if (tokens_ && b.sent_token != tokens_->current().access_token) {
      // Sent with a token that was replaced meanwhile (refresh or reload): resend with the new one.
      metrics_.upload_retries.inc();
      metrics_.upload_retries_by_cause.with("token_refresh").inc();
      b.not_before = now;
      return;
    }
    if (refreshed_since_ok_ || !tokens_) {
      // Refreshed already and still refused: the new token is no good either.
      pause("token_expired");
      return;
    }
    const RefreshResult r = tokens_->refresh();
    publish_tokens();
    switch (r.outcome) {
      case RefreshOutcome::kRefreshed:
        refreshed_since_ok_ = true;
        metrics_.upload_retries.inc();
        metrics_.upload_retries_by_cause.with("token_refresh").inc();
        b.not_before = now;
        break;
      case RefreshOutcome::kNoRefreshToken:
      case RefreshOutcome::kRejected:
        log::warn(kComponent, "token refresh refused", {{"error", r.message}});
        pause("token_expired");
        break;
      case RefreshOutcome::kTransient:
        log::warn(kComponent, "token refresh failed", {{"error", r.message}});
        retry_later(now, "token_refresh", std::nullopt);
        break;
    }
  }

  // Applies per-element verdicts to b: done -> complete; dead-letter -> dead-letter store,
  // complete, release dedup key. Removes both from b; returns true when elements remain.
  bool apply(Batch& b, const std::vector<ElementVerdict>& verdicts, std::string_view reason) {
    std::vector<RecordId> done_ids;
    std::vector<DeadLetter> dead;
    std::vector<RecordId> dead_ids;
    std::vector<uint64_t> dead_keys;
    std::vector<size_t> dead_index;
    Batch keep;
    const int64_t now_ms = clock_.now_ms();
    for (size_t i = 0; i < b.size(); ++i) {
      const ElementVerdict& v = i < verdicts.size() ? verdicts[i] : ElementVerdict{};
      switch (v.action) {
        case ElementAction::kDone:
          done_ids.push_back(b.meta[i].id);
          count_identifiers(b.events[i]);
          if (on_outcome_) on_outcome_(b.events[i], true);
          break;
        case ElementAction::kDeadLetter: {
          DeadLetter d;
          d.reason = std::string(reason);
          d.http_status = v.status;
          d.message = v.message;
          d.dead_lettered_at_ms = now_ms;
          d.payload = b.meta[i].payload;
          dead.push_back(std::move(d));
          dead_ids.push_back(b.meta[i].id);
          // Computed here, not per record read: only a dead letter releases its dedup key.
          dead_keys.push_back(dedup_fingerprint(b.events[i].rule_id, b.events[i].event_id));
          dead_index.push_back(i);
          break;
        }
        case ElementAction::kRetry:
          keep.events.push_back(std::move(b.events[i]));
          keep.meta.push_back(std::move(b.meta[i]));
          break;
      }
    }
    if (!done_ids.empty()) {
      complete_ids(done_ids);
      metrics_.events_uploaded.inc(done_ids.size());
      std::lock_guard lock(mu_);
      status_.last_upload_ms = now_ms;
    }
    if (!dead.empty()) {
      log::warn(kComponent, "events dead-lettered",
                {{"count", std::to_string(dead.size())},
                 {"reason", std::string(reason)},
                 {"status", std::to_string(dead.front().http_status)}});
      if (store_dead_letters(dead)) {
        complete_ids(dead_ids);
        dedup_.release(dead_keys);
        (reason == "expired" ? dead_expired_ : dead_rejected_).inc(dead.size());
        if (on_outcome_)
          for (size_t i : dead_index) on_outcome_(b.events[i], false);
      }
    }
    b.events = std::move(keep.events);
    b.meta = std::move(keep.meta);
    return b.size() > 0;
  }

  bool store_dead_letters(std::vector<DeadLetter>& entries) {
    auto r = dead_letters_.add(entries);
    if (!r) {
      // Not completed in the spool either: the events are uploaded again after a restart
      // rather than lost.
      log::error(kComponent, "cannot store dead letters; events stay on the spool",
                 {{"count", std::to_string(entries.size())}, {"error", r.error()}});
      return false;
    }
    return true;
  }

  void complete_ids(const std::vector<RecordId>& ids) {
    if (auto r = spool_.complete(ids); !r) {
      log::error(kComponent, "cannot mark spool records complete",
                 {{"count", std::to_string(ids.size())}, {"error", r.error()}});
    }
  }

  void count_identifiers(const NormalizedEvent& e) {
    bool user_id = false;
    if (!e.email_sha256.empty()) id_email_.inc(), user_id = true;
    if (!e.li_fat_id.empty()) id_li_fat_id_.inc(), user_id = true;
    if (!e.acxiom_id.empty()) id_acxiom_.inc(), user_id = true;
    if (!e.moat_id.empty()) id_moat_.inc(), user_id = true;
    if (!e.ip_sha256.empty()) id_ip_.inc(), user_id = true;
    if (!e.external_id.empty()) id_external_.inc();
    if (!user_id) id_names_only_.inc();
  }

  // ---------------------------------------------------------------- pause / status
  void pause(const std::string& reason) {
    const bool changed = !paused_ || paused_reason_ != reason;
    paused_ = true;
    paused_reason_ = reason;
    next_probe_at_ = clock_.steady_ms() + li_.pause_recheck.count();
    metrics_.uploads_paused.set(1);
    if (changed) {
      log::warn(kComponent, "uploads paused; events stay on the spool",
                {{"reason", reason},
                 {"recheck_ms", std::to_string(li_.pause_recheck.count())}});
    }
    std::lock_guard lock(mu_);
    status_.paused = true;
    status_.paused_reason = reason;
  }

  void upstream_ok(int status) {
    if (status >= 200 && status < 300) refreshed_since_ok_ = false;
    if (!paused_) return;
    paused_ = false;
    log::info(kComponent, "uploads resumed", {{"after", paused_reason_}});
    paused_reason_.clear();
    metrics_.uploads_paused.set(0);
    std::lock_guard lock(mu_);
    status_.paused = false;
    status_.paused_reason.clear();
  }

  void set_last_status(int status) {
    std::lock_guard lock(mu_);
    status_.last_upload_status = status;
  }

  void publish_tokens() {
    if (!tokens_) return;
    const TokenSet t = tokens_->current();
    if (t.access_token_expires_at > 0) {
      metrics_.token_expiry.set_present(static_cast<double>(t.access_token_expires_at));
    } else {
      metrics_.token_expiry.clear();
    }
    if (t.refresh_token_expires_at > 0) {
      metrics_.refresh_token_expiry.set_present(static_cast<double>(t.refresh_token_expires_at));
    } else {
      metrics_.refresh_token_expiry.clear();
    }
    std::lock_guard lock(mu_);
    status_.token_expires_at_ms = t.access_token_expires_at * 1000;
    status_.refresh_token_expires_at_ms = t.refresh_token_expires_at * 1000;
  }

  void publish_status() {
    uint64_t held = 0;
    for (const Batch& b : batches_) held += b.size();
    std::lock_guard lock(mu_);
    status_.in_flight_events = held;
  }

  // ---------------------------------------------------------------- state
  const Config& config_;
  const LinkedInConfig& li_;
  Spool& spool_;
  DedupStore& dedup_;
  DeadLetterStore& dead_letters_;
  metrics::RelayMetrics& metrics_;
  Clock& clock_;
  std::function<void(const NormalizedEvent&, bool)> on_outcome_;

  // Loop thread only.
  Backoff backoff_;
  RateLimiter limiter_;
  std::unique_ptr<SharedRateBudget> shared_budget_;  // rate_limit.shared; null otherwise
  const size_t batch_limit_;  // linkedin.batch_max_events
  // The batch size in use: batch_limit_, halved by a 413 (a body the upstream finds too large),
  // doubled again after kGrowAfterFullBatches full batches were taken in a row.
  size_t batch_max_;
  size_t full_batches_ok_ = 0;
  const size_t max_batches_;
  std::list<Batch> batches_;  // oldest first; at most max_batches_
  uint64_t batch_seq_ = 0;
  size_t in_flight_ = 0;
  int64_t rate_wait_until_ = 0;
  bool paused_ = false;
  std::string paused_reason_;
  int64_t next_probe_at_ = 0;
  bool refreshed_since_ok_ = false;
  int64_t next_proactive_refresh_at_ = 0;
  std::unique_ptr<TokenStore> tokens_;
  std::string target_;
  std::filesystem::path dry_run_dir_;
  uint64_t dry_run_seq_ = 0;
  metrics::Counter& id_email_;
  metrics::Counter& id_li_fat_id_;
  metrics::Counter& id_acxiom_;
  metrics::Counter& id_moat_;
  metrics::Counter& id_external_;
  metrics::Counter& id_ip_;
  metrics::Counter& id_names_only_;
  metrics::Counter& dead_rejected_;
  metrics::Counter& dead_expired_;

  // Shared with other threads, under mu_.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Completion> inbox_;
  bool woken_ = false;
  bool recheck_requested_ = false;
  bool stop_requested_ = false;
  bool started_ = false;
  int64_t deadline_ = 0;
  UploadStatus status_;

  std::thread thread_;
  // Last member: destroyed first, so its I/O thread is gone before the state its callbacks use.
  std::unique_ptr<HttpClient> http_;
};

}  // namespace

std::unique_ptr<Uploader> Uploader::create(const UploaderDeps& deps) {
  return std::make_unique<UploaderImpl>(deps);
}

}  // namespace capi_relay
