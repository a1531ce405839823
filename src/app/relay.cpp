#include "capi_relay/app/relay.hpp"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <memory>

#include "capi_relay/cli/dead_letter_json.hpp"
#include "capi_relay/common/files.hpp"
#include "capi_relay/config/check_config.hpp"
#include "capi_relay/common/json_text.hpp"
#include "capi_relay/common/log.hpp"
#include "capi_relay/dedup/local_dedup.hpp"
#include "capi_relay/dedup/open_dedup.hpp"
#include "capi_relay/event/record.hpp"
#include "capi_relay/ingest/server.hpp"
#include "capi_relay/ingest/write_pipeline.hpp"
#include "capi_relay/metrics/registry.hpp"
#include "capi_relay/metrics/relay_metrics.hpp"
#include "capi_relay/spool/dead_letters.hpp"
#include "capi_relay/spool/spool.hpp"
#include "capi_relay/upload/uploader.hpp"

namespace capi_relay {

namespace {

constexpr size_t kWriteQueueCapacity = 4096;  // requests waiting for the spool writer

std::string format_time_ms(int64_t ms) {
  if (ms <= 0) return "null";
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "\"%04d-%02d-%02dT%02d:%02d:%02dZ\"", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

// Rebuilds dedup keys of every pending spool record: the spool is the source of truth for what
// was acknowledged, so a journal tail lost in a crash is restored from it.
Result<uint64_t> recover_dedup(Spool& spool, DedupStore& dedup) {
  uint64_t n = 0;
  auto r = spool.for_each_pending([&](const SpoolEntry& e) {
    auto ev = decode_record(e.payload);
    if (!ev) return;
    dedup.recover(dedup_fingerprint(ev->rule_id, ev->event_id), e.append_ms);
    ++n;
  });
  if (!r) return Error{r.error()};
  return n;
}

// Puts dead letters matching `filter` back on the spool through the writer (bypassing dedup),
// then removes them from the dead-letter store. Order matters: a crash in between leaves an entry
// in both places (replayed twice, same eventId) rather than in neither.
std::pair<int, std::string> replay_dead_letters(DeadLetterStore& store, WritePipeline& pipeline,
                                                const DeadLetterFilter& filter) {
  auto entries = store.list(filter);
  if (entries.empty()) return {200, replay_response_json(0)};
  auto req = std::make_unique<WriteRequest>();
  req->bypass_dedup = true;
  DeadLetterFilter taken;
  for (const auto& e : entries) {
    auto ev = decode_record(e.payload);
    if (!ev) continue;  // unreadable entry: left in the store
    req->add(e.payload, dedup_fingerprint(ev->rule_id, ev->event_id));
    taken.ids.push_back(e.id);
  }
  std::promise<WriteStatus> written;
  auto result = written.get_future();
  req->done = [&written](std::unique_ptr<WriteRequest> r) { written.set_value(r->status); };
  if (!pipeline.submit(req)) return {503, "{\"error\":\"ingest queue full\"}"};
  if (result.get() != WriteStatus::kOk)
    return {503, "{\"error\":\"spool write failed; nothing was replayed\"}"};
  auto removed = store.take(taken);
  if (!removed) {
    log::error("dlq", "replayed entries could not be removed", {{"error", removed.error()}});
  }
  log::info("dlq", "dead letters replayed", {{"count", std::to_string(taken.ids.size())}});
  return {200, replay_response_json(taken.ids.size())};
}

// SIGHUP: re-reads the config file. The event rules (conversions), ingest keys, CORS origins and
// log level apply at once; everything else (listeners, spool, dedup, LinkedIn settings) needs a
// restart, and the log says so. An invalid file changes nothing.
void reload_config(const Config& running, IngestServer& server) {
  if (running.source.empty()) return;  // embedded default: nothing to re-read
  auto loaded = load_config_file(running.source);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors)
      log::error("config", "reload refused: invalid config",
                 {{"error", format_config_error(e, running.source)}});
    return;
  }
  const Config& c = loaded.config;
  server.reload(c);
  log::configure(c.log.level, c.log.format);
  std::string restart;
  auto differs = [&](bool changed, const char* section) {
    if (changed) restart += (restart.empty() ? "" : ", ") + std::string(section);
  };
  differs(c.server.listen != running.server.listen || c.admin.listen != running.admin.listen ||
              c.server.max_body_bytes != running.server.max_body_bytes ||
              c.server.io_threads != running.server.io_threads ||
              c.server.max_connections != running.server.max_connections ||
              c.server.per_client_rate != running.server.per_client_rate ||
              c.server.per_client_burst != running.server.per_client_burst ||
              c.server.trusted_proxies != running.server.trusted_proxies ||
              c.server.max_buffered_bytes != running.server.max_buffered_bytes ||
              c.server.max_events_per_request != running.server.max_events_per_request,
          "server");
  differs(c.spool.dir != running.spool.dir || c.spool.max_bytes != running.spool.max_bytes ||
              c.spool.fsync != running.spool.fsync,
          "spool");
  differs(c.dedup.backend != running.dedup.backend || c.dedup.window != running.dedup.window,
          "dedup");
  differs(c.linkedin.api_base != running.linkedin.api_base ||
              c.linkedin.version != running.linkedin.version ||
              c.linkedin.dry_run != running.linkedin.dry_run ||
              c.linkedin.batch_max_events != running.linkedin.batch_max_events,
          "linkedin");
  log::info("config", "reloaded: conversions, ingest keys, CORS origins and log level apply now",
            {{"rules", std::to_string(c.conversions.size())}});
  if (!restart.empty())
    log::warn("config", "changed settings that apply only after a restart",
              {{"sections", restart}});
}

}  // namespace

int run_relay(const Config& config) {
  auto& clock = SystemClock::instance();
  auto& random = SystemRandom::instance();

  // Block the shutdown/reload signals in every thread; the main thread waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const auto& dir = config.spool.dir;
  auto lock = DirLock::acquire(dir);
  if (!lock) {
    log::error("relay", "cannot lock spool directory", {{"error", lock.error()}});
    return 1;
  }
  // The spool counts a segment's whole size while any record in it is pending, so a segment
  // must be small against spool.max_bytes: with a fixed 16 MiB segment and a smaller max_bytes,
  // ingest stayed refused (503 spool_full) after the spool drained, one request per upload.
  // 1/16 of max_bytes, between 16 KiB and 16 MiB (the default 1 GiB spool keeps 16 MiB).
  const uint64_t segment_bytes =
      std::clamp<uint64_t>(config.spool.max_bytes / 16, 16ull << 10, 16ull << 20);
  auto spool = Spool::open({dir / "spool", config.spool.max_bytes, segment_bytes,
                            config.spool.fsync},
                           clock);
  if (!spool) {
    log::error("relay", "cannot open spool", {{"error", spool.error()}});
    return 1;
  }
  auto dead_letters =
      DeadLetterStore::open(dir / "dead-letters", config.spool.dead_letter_retention.count(), clock);
  if (!dead_letters) {
    log::error("relay", "cannot open dead-letter store", {{"error", dead_letters.error()}});
    return 1;
  }
  metrics::Registry registry;
  metrics::RelayMetrics m(registry);
  auto dedup = open_dedup(config, clock, random, &m);
  if (!dedup) {
    log::error("relay", "cannot open dedup state", {{"error", dedup.error()}});
    return 1;
  }
  auto recovered = recover_dedup(**spool, **dedup);
  if (!recovered) {
    log::error("relay", "cannot read spool", {{"error", recovered.error()}});
    return 1;
  }

  m.spool_truncated_records.inc((*spool)->truncated_records());
  auto& spool_max = registry.gauge("capi_relay_spool_max_bytes", "Configured spool.max_bytes.");
  spool_max.set(static_cast<double>(config.spool.max_bytes));

  EventLedger ledger;
  UploaderDeps upload_deps{config, **spool, **dedup, **dead_letters, m, clock, random};
  upload_deps.on_outcome = [&ledger, &clock](const NormalizedEvent& e, bool uploaded) {
    ledger.record(e.event_id, e.rule_id,
                  uploaded ? EventState::kUploaded : EventState::kDeadLettered, clock.now_ms());
  };
  auto uploader = Uploader::create(upload_deps);
  WritePipeline pipeline(**spool, **dedup, m, clock, config.spool.fsync, kWriteQueueCapacity,
                         [&uploader] { uploader->notify(); });

  std::atomic<bool> shutting_down{false};
  auto refresh_gauges = [&] {
    auto st = (*spool)->stats();
    m.spool_pending_events.set(static_cast<double>(st.pending_records));
    m.spool_bytes.set(static_cast<double>(st.bytes));
    m.oldest_pending_age.set(st.oldest_pending_append_ms > 0
                                 ? static_cast<double>(clock.now_ms() - st.oldest_pending_append_ms) / 1000.0
                                 : 0.0);
    m.dead_letters.set(static_cast<double>((*dead_letters)->size()));
    m.dedup_keys.set(static_cast<double>((*dedup)->size()));
    if (auto ds = local_dedup_stats(**dedup)) m.dedup_table_bytes.set(static_cast<double>(ds->table_bytes));
    m.ingest_queue_depth.set(static_cast<double>(pipeline.queue_depth()));
    auto us = uploader->status();
    m.uploads_paused.set(us.paused ? 1 : 0);
    if (us.token_expires_at_ms > 0) m.token_expiry.set_present(us.token_expires_at_ms / 1000.0);
    if (us.refresh_token_expires_at_ms > 0)
      m.refresh_token_expiry.set_present(us.refresh_token_expires_at_ms / 1000.0);
  };

  AdminHooks hooks;
  hooks.metrics_text = [&] {
    refresh_gauges();
    return registry.expose();
  };
  // "Full" for readiness means the spool cannot take one more typical request: less room left
  // than a maximum-size body (or an eighth of the spool, for spools smaller than that). With
  // would_exceed(0) /readyz said 200 while ingest was already answering 503 spool_full.
  const uint64_t ready_headroom =
      std::min<uint64_t>(config.server.max_body_bytes, config.spool.max_bytes / 8);
  hooks.not_ready_reason = [&, ready_headroom]() -> std::string {
    if (shutting_down.load()) return "shutting_down";
    if ((*spool)->would_exceed(ready_headroom)) return "spool_full";
    return {};
  };
  hooks.status_json = [&] {
    auto st = (*spool)->stats();
    auto us = uploader->status();
    std::string b = "{";
    b += "\"pending_events\":" + std::to_string(st.pending_records);
    b += ",\"oldest_pending_age_seconds\":" +
         std::to_string(st.oldest_pending_append_ms > 0
                            ? (clock.now_ms() - st.oldest_pending_append_ms) / 1000
                            : 0);
    b += ",\"spool_bytes\":" + std::to_string(st.bytes);
    b += ",\"spool_max_bytes\":" + std::to_string(config.spool.max_bytes);
    b += std::string(",\"paused\":") + (us.paused ? "true" : "false");
    b += ",\"paused_reason\":";
    if (us.paused) {
      append_json_string(b, us.paused_reason);
    } else {
      b += "null";
    }
    b += ",\"last_upload\":{\"time\":" + format_time_ms(us.last_upload_ms) +
         ",\"status\":" + (us.last_upload_status ? std::to_string(us.last_upload_status) : "null") +
         "}";
    b += ",\"token_expires_at\":" + format_time_ms(us.token_expires_at_ms);
    b += ",\"refresh_token_expires_at\":" + format_time_ms(us.refresh_token_expires_at_ms);
    b += ",\"dead_letters\":" + std::to_string((*dead_letters)->size());
    b += ",\"dry_run\":" + std::string(config.linkedin.dry_run ? "true" : "false");
    b += ",\"shutting_down\":" + std::string(shutting_down.load() ? "true" : "false");
    b += "}";
    return b;
  };

  hooks.replay_dead_letters = [&](const std::string& body) -> std::pair<int, std::string> {
    auto filter = parse_replay_request(body);
    if (!filter) return {400, "{\"error\":" + json_string(filter.error()) + "}"};
    auto r = replay_dead_letters(**dead_letters, pipeline, *filter);
    if (r.first == 200) uploader->notify();
    return r;
  };

  hooks.dead_letters_json = [&] {
    auto entries = (*dead_letters)->list();
    return dead_letters_response_json(entries);
  };
  hooks.event_status = [&](const std::string& id) { return ledger.describe(id); };

  IngestServer server(config, pipeline, m, clock, ledger, hooks);
  if (auto r = server.listen(); !r) {
    log::error("relay", "cannot listen", {{"error", r.error()}});
    return 1;
  }
  uploader->start();
  pipeline.start();
  server.start();
  log::info("relay", "started",
            {{"ingest", config.server.listen},
             {"ingest_port", std::to_string(server.ingest_port())},
             {"admin_port", std::to_string(server.admin_port())},
             {"spool_dir", dir.string()},
             {"pending_events", std::to_string((*spool)->stats().pending_records)},
             {"dry_run", config.linkedin.dry_run ? "true" : "false"}});

  // Main thread: wait for signals.
  int64_t next_expiry = clock.steady_ms();
  for (;;) {
    if (clock.steady_ms() >= next_expiry) {
      // Dead letters older than spool.dead_letter_retention are deleted.
      if (uint64_t n = (*dead_letters)->expire(); n > 0)
        log::info("dlq", "expired dead letters deleted", {{"count", std::to_string(n)}});
      next_expiry = clock.steady_ms() + 60'000;
    }
    struct timespec wait{1, 0};
    siginfo_t info;
    int sig = sigtimedwait(&signals, &info, &wait);
    if (sig < 0) continue;  // timeout (or EINTR): housekeeping above
    if (sig == SIGHUP) {
      reload_config(config, server);
      log::info("relay", "SIGHUP: re-reading the token file and retrying uploads");
      uploader->recheck();
      continue;
    }
    break;
  }

  // Graceful shutdown (contract §3).
  shutting_down.store(true);
  log::info("relay", "shutting down",
            {{"grace_ms", std::to_string(config.server.shutdown_grace.count())}});
  const int64_t grace_end = clock.steady_ms() + config.server.shutdown_grace.count();
  while (clock.steady_ms() < grace_end) {
    struct timespec ts{0, 50'000'000};
    int sig = 0;
    siginfo_t info;
    // A second SIGTERM/SIGINT ends the grace period early.
    sig = sigtimedwait(&signals, &info, &ts);
    if (sig == SIGTERM || sig == SIGINT) break;
  }
  server.refuse_ingest();
  // Requests already handed to the writer finish; wait briefly for their responses.
  const int64_t drain_end = clock.steady_ms() + 5000;
  while (server.requests_in_flight() > 0 && clock.steady_ms() < drain_end) {
    struct timespec ts{0, 10'000'000};
    nanosleep(&ts, nullptr);
  }
  pipeline.stop();
  uploader->stop(clock.steady_ms() + config.server.shutdown_timeout.count());
  server.stop();
  if (auto r = (*dedup)->flush(); !r) log::error("dedup", "flush failed", {{"error", r.error()}});
  auto st = (*spool)->stats();
  log::info("relay", "stopped", {{"pending_events", std::to_string(st.pending_records)}});
  return 0;
}

}  // namespace capi_relay
