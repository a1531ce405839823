#pragma once
// Every metric the relay exports (contract §6 and more), declared once and bumped by reference.
#include "capi_relay/metrics/registry.hpp"

namespace capi_relay::metrics {

struct RelayMetrics {
  explicit RelayMetrics(Registry& r);

  // ingest
  Counter& events_received;               // capi_relay_events_received_total
  Counter& events_accepted;               // capi_relay_events_accepted_total
  Family<Counter>& events_rejected;       // capi_relay_events_rejected_total{reason}
  Counter& events_duplicate;              // capi_relay_events_duplicate_total
  Family<Counter>& ingest_requests;       // capi_relay_ingest_requests_total{code}
  Histogram& ingest_request_duration;     // capi_relay_ingest_request_duration_seconds
  // upload
  Counter& events_uploaded;               // capi_relay_events_uploaded_total
  Family<Counter>& events_dead_lettered;  // capi_relay_events_dead_lettered_total{reason}
  Family<Counter>& upload_requests;       // capi_relay_upload_requests_total{code}
  Counter& upload_retries;                // capi_relay_upload_retries_total
  Family<Counter>& upload_retries_by_cause;  // capi_relay_upload_retry_causes_total{cause}
  Histogram& upload_duration;             // capi_relay_upload_duration_seconds
  Histogram& batch_events;                // capi_relay_batch_events
  Gauge& uploads_paused;                  // capi_relay_uploads_paused
  Gauge& token_expiry;                    // capi_relay_token_expiry_timestamp_seconds
  Gauge& refresh_token_expiry;            // capi_relay_refresh_token_expiry_timestamp_seconds
  Family<Counter>& identifiers;           // capi_relay_events_identifiers_total{type}
  // spool
  Gauge& spool_pending_events;            // capi_relay_spool_pending_events
  Gauge& spool_bytes;                     // capi_relay_spool_bytes
  Gauge& oldest_pending_age;              // capi_relay_oldest_pending_event_age_seconds
  Histogram& spool_fsync_duration;        // capi_relay_spool_fsync_duration_seconds
  Histogram& spool_commit_group;          // capi_relay_spool_commit_group_requests
  Counter& spool_truncated_records;       // capi_relay_spool_truncated_records_total
  Gauge& ingest_queue_depth;              // capi_relay_ingest_queue_depth
  Gauge& dead_letters;                    // capi_relay_dead_letters
  // dedup
  Gauge& dedup_keys;                      // capi_relay_dedup_keys
  Gauge& dedup_table_bytes;               // capi_relay_dedup_table_bytes (local backend)
  Counter& dedup_redis_fallbacks;         // capi_relay_dedup_redis_fallbacks_total
  Counter& dedup_redis_errors;            // capi_relay_dedup_redis_errors_total
};

}  // namespace capi_relay::metrics
