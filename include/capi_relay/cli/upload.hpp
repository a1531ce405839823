#pragma once
// `capi-relay upload [-c FILE] FILE... [--via URL [--key KEY]] [--json]`: offline conversions.
//
// Without --via the command owns spool.dir (DirLock; refused with a clear message while a `serve`
// holds it): rows are validated, normalized and hashed by the same EventParser as ingest (every
// row needs a timestamp), written through a WritePipeline into the spool with the same dedup
// store as `serve` (so a re-run sends nothing twice), and uploaded by an Uploader with the same
// config (batching, retries, dead letters, dry_run) until everything written is uploaded or
// dead-lettered, or the uploader pauses (exit 1 with the reason; the events stay spooled).
// With --via the rows go as NDJSON chunks to a running relay's POST /v1/events, whose per-index
// answers are mapped back to file:line.
//
// Rejected rows are reported as `file:line: reason` on stderr; a progress line is drawn on stderr
// only when it is a terminal; the summary goes to stdout. Exit 0 only when nothing was rejected
// or failed.
#include "capi_relay/cli/context.hpp"

namespace capi_relay {

int run_upload(const CliContext& ctx);

}  // namespace capi_relay
