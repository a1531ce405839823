#pragma once
// A parsed command line: `capi-relay <command> [options]`, options anywhere after the command.
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace capi_relay {

struct CommandArgs {
  std::string command;                  // "auth", "rules", "dlq", ...
  std::vector<std::string> positional;  // e.g. {"login"} for `auth login`, files for `upload`
  std::optional<std::string> config;    // -c / --config
  bool help = false;
  std::map<std::string, std::vector<std::string>> options;  // --name value (repeatable), e.g. "--campaign"
  std::set<std::string> flags;                              // --json, --paste, ...

  bool flag(const std::string& name) const { return flags.count(name) > 0; }
  // Last value of an option, or nullopt.
  std::optional<std::string> option(const std::string& name) const {
    auto it = options.find(name);
    if (it == options.end() || it->second.empty()) return std::nullopt;
    return it->second.back();
  }
};

}  // namespace capi_relay
