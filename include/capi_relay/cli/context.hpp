#pragma once
// What every management command runs with: its arguments, the loaded config, its streams, and
// the injected clock and randomness (tests pass string streams, a FakeClock and FixedRandom).
// Exit codes of every command: kExitOk, kExitFailure (runtime failure: the message says what to do
// next), kExitUsage (bad usage: a one-line reason).
#include <istream>
#include <ostream>
#include <string_view>

#include "capi_relay/cli/command_args.hpp"
#include "capi_relay/common/clock.hpp"
#include "capi_relay/config/config.hpp"

namespace capi_relay {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

struct CliContext {
  const CommandArgs& args;
  const Config& config;
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
  Clock& clock;
  RandomSource& random;
  bool stderr_is_tty = false;  // progress bars only on a terminal
};

// "capi-relay: <reason> (see capi-relay <command> --help)" on err; returns kExitUsage.
int usage_error(const CliContext& ctx, std::string_view reason);
// "capi-relay <command>: <message>" on err; returns kExitFailure.
int runtime_failure(const CliContext& ctx, std::string_view message);
// Bad usage when args has positionals beyond `max_positional`, or options/flags outside the
// allowed lists (each "--name"). Returns kExitOk when the usage is fine.
int check_usage(const CliContext& ctx, size_t max_positional,
                std::initializer_list<std::string_view> allowed_options,
                std::initializer_list<std::string_view> allowed_flags);

}  // namespace capi_relay
