// Registration of every metric the relay exports (contract §6), with fixed label values
// pre-populated so each series exists from start-up with 0.
#include "capi_relay/metrics/relay_metrics.hpp"

#include <initializer_list>
#include <string_view>

namespace capi_relay::metrics {
namespace {

// Contract §3 rejection reasons.
constexpr std::string_view kRejectReasons[] = {
    "invalid_json",  "unknown_event", "unknown_rule", "no_identifier", "incomplete_name",
    "too_old",       "in_future",     "bad_email",    "bad_hash",      "bad_amount",
    "bad_currency",  "bad_country",   "bad_event_id", "bad_lead",      "bad_ip",
    "no_consent",    "bad_consent",   "bad_timestamp", "bad_event"};
constexpr std::string_view kDeadLetterReasons[] = {"rejected", "expired"};
constexpr std::string_view kIdentifierTypes[] = {"email", "li_fat_id", "acxiom",    "moat",
                                                 "external_id", "ip", "names_only"};
// The causes the uploader reports (src/upload/uploader.cpp).
constexpr std::string_view kRetryCauses[] = {"429",       "5xx",         "408",
                                             "timeout",   "connect_error", "tls_error",
                                             "element_status", "partial_reject", "token_refresh", "too_large"};

template <class M, size_t N>
Family<M>& prepopulate(Family<M>& f, const std::string_view (&values)[N]) {
  for (std::string_view v : values) f.with(v);
  return f;
}

Gauge& without_sample(Gauge& g) {
  g.clear();
  return g;
}

}  // namespace

RelayMetrics::RelayMetrics(Registry& r)
    : events_received(r.counter("capi_relay_events_received_total",
                                "Events received on ingest (accepted + duplicate + rejected).")),
      events_accepted(r.counter("capi_relay_events_accepted_total",
                                "Events accepted and written to the spool.")),
      events_rejected(prepopulate(
          r.counter_family("capi_relay_events_rejected_total",
                           "Events rejected at ingest, by rejection reason.", "reason"),
          kRejectReasons)),
      events_duplicate(r.counter("capi_relay_events_duplicate_total",
                                 "Events dropped as duplicates of an event seen within the dedup "
                                 "window.")),
      ingest_requests(r.counter_family("capi_relay_ingest_requests_total",
                                       "Ingest HTTP requests answered, by status code.", "code")),
      ingest_request_duration(r.histogram(
          "capi_relay_ingest_request_duration_seconds",
          "Time from reading an ingest request to sending its response, in seconds.",
          {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5})),
      events_uploaded(r.counter("capi_relay_events_uploaded_total",
                                "Events LinkedIn accepted.")),
      events_dead_lettered(prepopulate(
          r.counter_family("capi_relay_events_dead_lettered_total",
                           "Events moved to the dead-letter store (rejected: LinkedIn refused "
                           "them; expired: not delivered within 90 days).",
                           "reason"),
          kDeadLetterReasons)),
      upload_requests(r.counter_family(
          "capi_relay_upload_requests_total",
          "Upload requests to LinkedIn, by HTTP status or timeout, connect_error, tls_error.",
          "code")),
      upload_retries(r.counter("capi_relay_upload_retries_total",
                               "Upload requests retried after a retryable failure.")),
      upload_retries_by_cause(prepopulate(
          r.counter_family("capi_relay_upload_retry_causes_total",
                           "Upload retries by cause.", "cause"),
          kRetryCauses)),
      upload_duration(r.histogram(
          "capi_relay_upload_duration_seconds",
          "Duration of one upload request to LinkedIn, in seconds.",
          {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60})),
      batch_events(r.histogram("capi_relay_batch_events", "Events per upload batch.",
                               {1, 10, 50, 100, 500, 1000, 2500, 5000})),
      uploads_paused(r.gauge("capi_relay_uploads_paused",
                             "1 while uploads are paused (reason on /readyz and /v1/status), "
                             "else 0.")),
      token_expiry(without_sample(r.gauge(
          "capi_relay_token_expiry_timestamp_seconds",
          "Unix time the LinkedIn access token expires; no sample while unknown."))),
      refresh_token_expiry(without_sample(r.gauge(
          "capi_relay_refresh_token_expiry_timestamp_seconds",
          "Unix time the LinkedIn refresh token expires; no sample while unknown."))),
      identifiers(prepopulate(
          r.counter_family("capi_relay_events_identifiers_total",
                           "Accepted events by the strongest user identifier they carry.",
                           "type"),
          kIdentifierTypes)),
      spool_pending_events(r.gauge("capi_relay_spool_pending_events",
                                   "Events in the spool not yet uploaded.")),
      spool_bytes(r.gauge("capi_relay_spool_bytes",
                          "Bytes on disk of spool records not yet uploaded.")),
      oldest_pending_age(r.gauge("capi_relay_oldest_pending_event_age_seconds",
                                 "Age of the oldest event not yet uploaded, in seconds; 0 when "
                                 "nothing is pending.")),
      spool_fsync_duration(r.histogram(
          "capi_relay_spool_fsync_duration_seconds", "Duration of one spool fsync, in seconds.",
          {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1})),
      spool_commit_group(r.histogram("capi_relay_spool_commit_group_requests",
                                     "Ingest requests made durable by one spool group commit.",
                                     {1, 2, 4, 8, 16, 32, 64, 128, 256})),
      spool_truncated_records(r.counter(
          "capi_relay_spool_truncated_records_total",
          "Torn or corrupt records cut from the spool tail at start-up.")),
      ingest_queue_depth(r.gauge("capi_relay_ingest_queue_depth",
                                 "Ingest requests waiting for the spool writer.")),
      dead_letters(r.gauge("capi_relay_dead_letters",
                           "Entries in the dead-letter store.")),
      dedup_keys(r.gauge("capi_relay_dedup_keys",
                         "Event keys remembered by dedup within the window.")),
      dedup_table_bytes(r.gauge("capi_relay_dedup_table_bytes",
                                "Memory of the local dedup table (12 bytes per slot; slots "
                                "double when 3/4 are used).")),
      dedup_redis_fallbacks(r.counter(
          "capi_relay_dedup_redis_fallbacks_total",
          "Events whose dedup claim was answered by the local store because Redis was "
          "unreachable (dedup.redis_unavailable: local).")),
      dedup_redis_errors(r.counter(
          "capi_relay_dedup_redis_errors_total",
          "Redis dedup operations that failed (connect error, timeout, protocol error).")) {}

}  // namespace capi_relay::metrics
