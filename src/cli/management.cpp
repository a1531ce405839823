#include "capi_relay/cli/management.hpp"

#include <cstdio>
#include <set>

namespace capi_relay {

bool is_management_command(const std::string& command) {
  static const std::set<std::string> known = {"upload",    "auth",  "whoami", "accounts",
                                              "campaign-groups", "campaigns", "creatives",
                                              "rules",     "dlq"};
  return known.count(command) > 0;
}

std::string management_help(const std::string& command) {
  return "Usage: capi-relay " + command + " [options]\n";
}

int run_management_command(const CommandArgs& args, const Config&) {
  std::fprintf(stderr, "capi-relay: '%s' is not available in this build yet\n",
               args.command.c_str());
  return 1;
}

}  // namespace capi_relay
