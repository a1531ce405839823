#pragma once
// Thread identity and scheduling: names the calling thread (at most 15 characters shown), so
// `top -H`, `perf` and core dumps tell the relay's threads apart (ingest-io, spool-writer,
// uploader, upload-http), and lowers the calling thread's priority (nice value) for work that can
// wait, such as uploading, so that it yields the CPU to ingest under load.
namespace capi_relay {
void set_thread_name(const char* name);
// Adds `increment` to the calling thread's nice value (Linux: per thread). Best effort.
void lower_thread_priority(int increment);
}  // namespace capi_relay
