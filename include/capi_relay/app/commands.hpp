#pragma once
// The command line of contract §2: parses `capi-relay <command> [options]` and runs the command.
// Exit codes: 0 success, 1 runtime failure, 2 bad usage (with a one-line reason).
namespace capi_relay {

int run_command_line(int argc, char** argv);

}  // namespace capi_relay
