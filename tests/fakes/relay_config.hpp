#pragma once
// The relay.yaml an integration test starts the real binary with, as a plain struct whose
// defaults live in the struct: a relay on 127.0.0.1 port 0 with a ./data spool, uploading to
// `api_base` with a static token. A string key left empty (an int left 0) is left out of the
// file, so the relay's own default applies; each test file sets only what it varies.
#include <string>

namespace capi_relay::testing {

struct RelayConfig {
  std::string api_base;

  // server:
  int io_threads = 2;
  std::string shutdown_grace = "0s";
  std::string shutdown_timeout = "10s";
  std::string server_extra;  // more lines under server: (indented 2 spaces)

  // spool:
  std::string max_bytes;
  std::string fsync;

  std::string dedup;  // the lines under dedup: (indented 2 spaces); empty: no dedup section

  // linkedin:
  std::string access_token = "test-token";
  int batch_max_events = 0;
  int max_in_flight = 0;
  std::string flush_interval = "100ms";
  std::string connect_timeout;
  std::string response_timeout;
  std::string pause_recheck;
  std::string initial_backoff = "50ms";  // both backoffs empty: no retry section
  std::string max_backoff = "200ms";
  std::string linkedin_extra;  // more lines under linkedin: (indented 2 spaces)
  std::string oauth;           // the lines under linkedin.oauth: (indented 4 spaces)

  // The lines under conversions: (indented 2 spaces); always the file's last section, so a test
  // may append another rule to yaml().
  std::string conversions = "  purchase: urn:lla:llaPartnerConversion:123\n";

  // The config as YAML text.
  std::string yaml() const;
};

}  // namespace capi_relay::testing
