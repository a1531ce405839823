#pragma once
// IngestServer: the HTTP/1.1 listeners (Boost.Beast) — ingest (`server.listen`: POST /v1/events,
// CORS preflight) and admin (`admin.listen`: /metrics, /healthz, /readyz, /v1/status,
// /v1/events/{id}); when both addresses are equal one listener serves both.
//
// Threading: `io_threads` threads run one io_context; each connection is a session whose steps
// run on its strand. Bodies are parsed, validated, normalized and hashed on the I/O thread (one
// EventParser per thread), then handed to the WritePipeline; the response is written when the
// pipeline reports the records durable. All Beast/Asio templates live in server.cpp.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "capi_relay/common/clock.hpp"
#include "capi_relay/common/result.hpp"
#include "capi_relay/config/config.hpp"
#include "capi_relay/ingest/event_ledger.hpp"
#include "capi_relay/ingest/write_pipeline.hpp"
#include "capi_relay/metrics/relay_metrics.hpp"

namespace capi_relay {

// What the admin endpoints read from the rest of the relay.
struct AdminHooks {
  std::function<std::string()> metrics_text;  // Prometheus exposition
  std::function<std::string()> status_json;   // GET /v1/status body
  // Empty string: ready; else the reason /readyz reports with 503.
  std::function<std::string()> not_ready_reason;
  // GET /v1/events/{eventId}: JSON body, or nullopt for 404.
  std::function<std::optional<std::string>(const std::string& event_id)> event_status;
  // GET /v1/dead-letters: {"dead_letters":[...]}.
  std::function<std::string()> dead_letters_json;
  // POST /v1/dead-letters/replay with {"ids":[...],"reason":"..."}: HTTP status and JSON body.
  // Blocks the calling I/O thread until the replayed records are durable (admin path, rare).
  std::function<std::pair<int, std::string>(const std::string& body)> replay_dead_letters;
};

class IngestServer {
 public:
  IngestServer(const Config& config, WritePipeline& pipeline, metrics::RelayMetrics& metrics,
               Clock& clock, EventLedger& ledger, AdminHooks hooks);
  ~IngestServer();
  IngestServer(const IngestServer&) = delete;
  IngestServer& operator=(const IngestServer&) = delete;

  // Binds the listeners (port 0 picks a free port); errors name the address.
  Result<void> listen();
  uint16_t ingest_port() const;
  uint16_t admin_port() const;
  // Starts the I/O threads.
  void start();
  // SIGHUP: takes the event rules (conversions), ingest keys and CORS origins of `config` for
  // requests that start from now on. Listeners, limits and timeouts stay as started.
  void reload(const Config& config);
  // Ingest answers 503 (shutting down) from now on; the listeners stay open.
  void refuse_ingest();
  // Number of ingest requests whose response is not written yet.
  uint64_t requests_in_flight() const;
  // Closes the listeners and connections and joins the I/O threads.
  void stop();

  struct Impl;  // defined in server.cpp (sessions reach it too)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace capi_relay
