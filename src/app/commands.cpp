#include "capi_relay/app/commands.hpp"

#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "capi_relay/app/relay.hpp"
#include "capi_relay/cli/command_args.hpp"
#include "capi_relay/cli/management.hpp"
#include "capi_relay/common/log.hpp"
#include "capi_relay/config/check_config.hpp"
#include "capi_relay/config/config.hpp"

namespace capi_relay {

namespace {

constexpr const char* kUsage = R"(capi-relay: server-side conversion relay for LinkedIn's Conversions API

Usage: capi-relay <command> [options]

Commands:
  serve [-c FILE]            run the relay (without -c: embedded defaults, dry run)
  check-config [-c FILE]     validate a config file and print every error
  upload [-c FILE] FILE...   offline conversions from CSV or NDJSON files
  auth login|refresh|status  OAuth tokens (stored in linkedin.token_file)
  whoami                     check the access token
  accounts                   list ad accounts
  campaign-groups --account ID, campaigns --account ID, creatives --account ID
  rules list|create|associate  conversion rules
  dlq list|replay            dead-lettered events

Options:
  -c, --config FILE   config file (YAML)
  -h, --help          show help (also: capi-relay <command> --help)
  --version           print the version
)";

struct CommandHelp {
  const char* usage;
  const char* text;
};

const std::map<std::string, CommandHelp>& command_help() {
  static const std::map<std::string, CommandHelp> h = {
      {"serve", {"capi-relay serve [-c FILE]",
                 "Runs the relay: the ingest listener (server.listen), the admin listener\n"
                 "(admin.listen) and the uploader. Without -c the embedded default config is used\n"
                 "(dry run: batches are written to <spool.dir>/dry-run/ instead of being sent).\n"
                 "SIGTERM/SIGINT shut down gracefully; SIGHUP re-reads the token file.\n"}},
      {"check-config", {"capi-relay check-config [-c FILE]",
                        "Validates a config file and prints every error with its key path.\n"
                        "Exit code 0 when valid, 1 otherwise.\n"}},
  };
  return h;
}

using Args = CommandArgs;

// Options that take a value; any other --option is a flag.
const std::set<std::string>& valued_options() {
  static const std::set<std::string> s = {"--account", "--name", "--type", "--post-click",
                                          "--view-through", "--rule", "--campaign", "--id",
                                          "--reason", "--via", "--key"};
  return s;
}

int usage_error(const std::string& reason) {
  std::fprintf(stderr, "capi-relay: %s (see capi-relay --help)\n", reason.c_str());
  return 2;
}

ConfigLoad load(const Args& a) {
  return a.config ? load_config_file(*a.config) : default_config();
}

void configure_logging(const Config& c) { log::configure(c.log.level, c.log.format); }

}  // namespace

int run_command_line(int argc, char** argv) {
  Args a;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  if (args[0] == "--version" || args[0] == "version") {
    std::printf("capi-relay %s\n", CAPI_RELAY_VERSION);
    return 0;
  }
  if (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  a.command = args[0];
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& s = args[i];
    if (s == "-h" || s == "--help") {
      a.help = true;
    } else if (s == "-c" || s == "--config") {
      if (i + 1 >= args.size()) return usage_error(s + " needs a file");
      a.config = args[++i];
    } else if (s.rfind("--config=", 0) == 0) {
      a.config = s.substr(9);
    } else if (s.size() > 2 && s.rfind("--", 0) == 0) {
      auto eq = s.find('=');
      std::string name = s.substr(0, eq);
      if (valued_options().count(name)) {
        if (eq != std::string::npos) {
          a.options[name].push_back(s.substr(eq + 1));
        } else {
          if (i + 1 >= args.size()) return usage_error(name + " needs a value");
          a.options[name].push_back(args[++i]);
        }
      } else {
        a.flags.insert(name);
      }
    } else {
      a.positional.push_back(s);
    }
  }

  if (a.help) {
    auto it = command_help().find(a.command);
    if (is_management_command(a.command)) {
      std::fputs(management_help(a.command).c_str(), stdout);
    } else if (it == command_help().end()) {
      std::fputs(kUsage, stdout);
    } else {
      std::printf("Usage: %s\n\n%s", it->second.usage, it->second.text);
    }
    return 0;
  }

  if (a.command == "check-config") {
    if (!a.positional.empty()) return usage_error("unexpected argument " + a.positional[0]);
    return run_check_config(load(a), std::cout, std::cerr);
  }
  if (a.command == "serve") {
    if (!a.positional.empty()) return usage_error("unexpected argument " + a.positional[0]);
    auto loaded = load(a);
    if (!loaded.ok()) {
      run_check_config(loaded, std::cout, std::cerr);
      return 1;
    }
    configure_logging(loaded.config);
    return run_relay(loaded.config);
  }
  if (is_management_command(a.command)) {
    auto loaded = load(a);
    if (!loaded.ok()) {
      run_check_config(loaded, std::cout, std::cerr);
      return 1;
    }
    configure_logging(loaded.config);
    return run_management_command(a, loaded.config);
  }
  return usage_error("unknown command '" + a.command + "'");
}

}  // namespace capi_relay
