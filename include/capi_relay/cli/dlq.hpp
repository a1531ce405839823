#pragma once
// `capi-relay dlq list [--id ID]... [--reason R] [--json]` and
// `capi-relay dlq replay [--id ID]... [--reason R]`.
// With spool.dir free, the command takes its DirLock and works on the files: the dead-letter
// store (<spool.dir>/dead-letters), the spool (<spool.dir>/spool) and the dedup state
// (<spool.dir>/dedup). Replay appends the entries' records to the spool and syncs them before it
// removes them from the store (a crash in between leaves a copy in both: at least once), then
// records their dedup keys as seen again. While a `serve` holds spool.dir, both go through its
// admin listener: GET /v1/dead-letters, POST /v1/dead-letters/replay (dead_letter_json.hpp).
#include "capi_relay/cli/context.hpp"

namespace capi_relay {

int run_dlq(const CliContext& ctx);

}  // namespace capi_relay
