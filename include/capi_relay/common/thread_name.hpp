#pragma once
// Names the calling thread (at most 15 characters shown), so `top -H`, `perf` and core dumps tell
// the relay's threads apart: ingest-io, spool-writer, uploader, upload-http.
namespace capi_relay {
void set_thread_name(const char* name);
}  // namespace capi_relay
