#pragma once
// The daemon (`capi-relay serve`): owns every component for one spool.dir and wires them:
//   IngestServer (I/O threads) -> WritePipeline (spool writer, group commit) -> Spool
//   -> Uploader (its own thread) -> LinkedIn / dry-run files; DeadLetterStore; DedupStore.
// Signals: SIGTERM/SIGINT start the graceful shutdown of contract §3; SIGHUP re-reads the token
// file and makes a paused uploader try again.
#include "capi_relay/config/config.hpp"

namespace capi_relay {

// Runs until a shutdown signal; returns the process exit code.
int run_relay(const Config& config);

}  // namespace capi_relay
