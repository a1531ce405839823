#pragma once
// Shared set-up of the cli unit tests: a temp spool dir, a config pointing at a FakeLinkedIn, and
// a CliContext over string streams.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <string>

#include "capi_relay/cli/context.hpp"
#include "capi_relay/config/config.hpp"

namespace capi_relay::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "capi-cli-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline Config make_config(const TempDir& dir, const std::string& base_url,
                          const std::string& extra_linkedin = "",
                          const std::string& extra_oauth = "") {
  std::string yaml = "spool:\n  dir: " + (dir.path() / "data").string() +
                     "\nlinkedin:\n  api_base: " + base_url +
                     "\n  connect_timeout: 2s\n  response_timeout: 5s\n" + extra_linkedin +
                     "  oauth:\n    token_url: " + base_url + "/oauth/v2/accessToken\n" +
                     "    introspect_url: " + base_url + "/oauth/v2/introspectToken\n" +
                     "    authorize_url: https://www.linkedin.com/oauth/v2/authorization\n" +
                     extra_oauth;
  ConfigLoad loaded = load_config_string(yaml, dir.path());
  for (const auto& e : loaded.errors) ADD_FAILURE() << e.path << ": " << e.message;
  return loaded.config;
}

// A command run against string streams.
struct CommandRun {
  CommandArgs args;
  std::istringstream in;
  std::ostringstream out, err;
  FakeClock clock{1764320000000};
  FixedRandom random;

  explicit CommandRun(std::string command, std::vector<std::string> positional = {},
                      std::string stdin_text = {})
      : in(std::move(stdin_text)) {
    args.command = std::move(command);
    args.positional = std::move(positional);
  }
  CommandRun& option(const std::string& name, const std::string& value) {
    args.options[name].push_back(value);
    return *this;
  }
  CommandRun& flag(const std::string& name) {
    args.flags.insert(name);
    return *this;
  }
  template <class Fn>
  int run(const Config& config, Fn fn) {
    CliContext ctx{args, config, in, out, err, clock, random, false};
    return fn(ctx);
  }
};

}  // namespace capi_relay::testing
