#pragma once
// The management commands of contract §2 other than serve/check-config: upload, auth, whoami,
// accounts, campaign-groups, campaigns, creatives, rules, dlq.
#include <string>

#include "capi_relay/cli/command_args.hpp"
#include "capi_relay/config/config.hpp"

namespace capi_relay {

// True when `command` is one of the management commands.
bool is_management_command(const std::string& command);
// Usage line and help text of a management command, for `capi-relay <command> --help`.
std::string management_help(const std::string& command);
// Runs the command with a loaded, valid config. Exit codes: 0 success, 1 runtime failure, 2 bad
// usage (one-line reason on stderr).
int run_management_command(const CommandArgs& args, const Config& config);

}  // namespace capi_relay
