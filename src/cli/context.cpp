// Usage and failure reporting shared by the management commands.
#include "capi_relay/cli/context.hpp"

#include <algorithm>
#include <string>

namespace capi_relay {

int usage_error(const CliContext& ctx, std::string_view reason) {
  ctx.err << "capi-relay: " << reason << " (see capi-relay " << ctx.args.command << " --help)\n";
  return kExitUsage;
}

int runtime_failure(const CliContext& ctx, std::string_view message) {
  std::string cmd = ctx.args.command;
  if (!ctx.args.positional.empty() &&
      (cmd == "auth" || cmd == "rules" || cmd == "dlq")) {
    cmd += " " + ctx.args.positional[0];
  }
  ctx.err << "capi-relay " << cmd << ": " << message << "\n";
  return kExitFailure;
}

int check_usage(const CliContext& ctx, size_t max_positional,
                std::initializer_list<std::string_view> allowed_options,
                std::initializer_list<std::string_view> allowed_flags) {
  if (ctx.args.positional.size() > max_positional) {
    return usage_error(ctx, "unexpected argument '" + ctx.args.positional[max_positional] + "'");
  }
  for (const auto& [name, values] : ctx.args.options) {
    if (std::find(allowed_options.begin(), allowed_options.end(), name) == allowed_options.end()) {
      return usage_error(ctx, "option " + name + " does not apply here");
    }
  }
  for (const auto& name : ctx.args.flags) {
    if (std::find(allowed_flags.begin(), allowed_flags.end(), name) == allowed_flags.end()) {
      return usage_error(ctx, "unknown option " + name);
    }
  }
  return kExitOk;
}

}  // namespace capi_relay
