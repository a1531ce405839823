// Dispatch and help of the management commands (contract §2 except serve / check-config).
#include "capi_relay/cli/management.hpp"

#include <unistd.h>

#include <iostream>
#include <map>
#include <set>

#include "capi_relay/cli/account_structure.hpp"
#include "capi_relay/cli/auth.hpp"
#include "capi_relay/cli/context.hpp"
#include "capi_relay/cli/dlq.hpp"
#include "capi_relay/cli/upload.hpp"
#include "capi_relay/cli/whoami.hpp"
#include "capi_relay/common/log.hpp"

namespace capi_relay {

namespace {

const std::map<std::string, std::string>& help_texts() {
  static const std::map<std::string, std::string> h = {
      {"upload",
       "Usage: capi-relay upload [-c FILE] FILE... [--via URL [--key KEY]] [--json]\n\n"
       "Offline conversions from CSV or NDJSON files (.csv; .ndjson/.jsonl/.json; other names are\n"
       "sniffed). Rows are validated, normalized and hashed like ingested events; every row needs\n"
       "a timestamp. Rejected rows are printed as file:line: reason on stderr.\n\n"
       "CSV: RFC 4180 (quoted fields, CRLF or LF, optional UTF-8 BOM, empty cell = absent) with a\n"
       "header row naming columns from: event, conversion, eventId, timestamp, email, emailSha256,\n"
       "liFatId, acxiomId, moatId, externalId, lead, ip, firstName, lastName, title, companyName,\n"
       "countryCode, amount, currency, consent (any order; unknown columns are an error).\n\n"
       "Without --via, upload takes spool.dir (refused while a relay runs on it), spools the rows\n"
       "with the relay's dedup state (a re-run sends nothing twice) and uploads them with the\n"
       "relay's batching and retries until done; linkedin.dry_run applies.\n"
       "  --via URL   send the rows through a running relay's ingest listener (its base URL,\n"
       "              e.g. http://127.0.0.1:8080)\n"
       "  --key KEY   ingest key for --via (one of the relay's server.ingest_keys)\n"
       "  --json      print the summary as JSON\n\n"
       "Exit code 0 only when nothing was rejected or failed, else 1.\n"},
      {"auth",
       "Usage: capi-relay auth login [--paste] | auth refresh | auth status [--json]\n\n"
       "  login    prints the authorization URL for linkedin.oauth.scopes, then waits for the\n"
       "           browser's redirect on linkedin.oauth.redirect_uri (which must match the app's\n"
       "           registered URL exactly); --paste reads the redirected URL from stdin instead\n"
       "           (headless servers). Exchanges the code and stores both tokens in\n"
       "           linkedin.token_file (mode 0600). Needs oauth.client_id and client_secret.\n"
       "  refresh  runs the refresh-token grant and stores the new access token.\n"
       "  status   shows both tokens' expiry and days left (never the tokens); exit 1 when there\n"
       "           is no usable access token.\n"},
      {"whoami",
       "Usage: capi-relay whoami [--json]\n\n"
       "Checks the stored access token: token introspection when oauth.client_secret is set, and\n"
       "one cheap authorized call (the member's ad-account roles); prints member, scopes and\n"
       "expiry, and diagnoses expired/revoked tokens, missing scopes (rw_conversions, r_ads), an\n"
       "app without the needed products, and a member without an ad-account role. Exit 1 when\n"
       "the token cannot be used for the Conversions API.\n"},
      {"accounts",
       "Usage: capi-relay accounts [--json]\n\n"
       "Lists the ad accounts the member can reach (GET /rest/adAccounts?q=search; needs r_ads).\n"},
      {"campaign-groups",
       "Usage: capi-relay campaign-groups --account ID [--json]\n\n"
       "Lists the campaign groups of an ad account (needs r_ads).\n"},
      {"campaigns",
       "Usage: capi-relay campaigns --account ID [--json]\n\n"
       "Lists the campaigns of an ad account (needs r_ads).\n"},
      {"creatives",
       "Usage: capi-relay creatives --account ID [--json]\n\n"
       "Lists the creatives of an ad account (needs r_ads).\n"},
      {"rules",
       "Usage: capi-relay rules list --account ID [--json]\n"
       "       capi-relay rules create --account ID --name N --type T [--post-click DAYS]\n"
       "                               [--view-through DAYS] [--json]\n"
       "       capi-relay rules associate --rule ID --campaign ID [--campaign ID]...\n\n"
       "Conversion rules (needs rw_conversions). create makes a rule with conversionMethod\n"
       "CONVERSIONS_API and attribution LAST_TOUCH_BY_CAMPAIGN, and prints the `conversions:`\n"
       "config lines for it. --type: PURCHASE, LEAD, SIGN_UP, ADD_TO_CART, ... (LinkedIn's list).\n"
       "--post-click: 1, 7, 30 (default) or 90 days (365 for SUBMIT_APPLICATION, PURCHASE,\n"
       "ADD_TO_CART, QUALIFIED_LEAD, LEAD); --view-through: 1, 7 (default), 30 or 90 days.\n"
       "associate links campaigns with a rule (one request for all of them).\n"},
      {"dlq",
       "Usage: capi-relay dlq list [--id ID]... [--reason rejected|expired] [--json]\n"
       "       capi-relay dlq replay [--id ID]... [--reason rejected|expired]\n\n"
       "Dead-lettered events: id, eventId, rule, reason (rejected: LinkedIn refused it; expired:\n"
       "not delivered within 90 days), HTTP status, LinkedIn's message and time. replay puts all\n"
       "of them, or those matching the ids / reason, back on the spool (bypassing dedup) and\n"
       "removes them from the store. Both work while `serve` runs on the same spool.dir (through\n"
       "its admin listener, admin.listen) and directly on the files otherwise.\n"},
  };
  return h;
}

}  // namespace

bool is_management_command(const std::string& command) {
  return help_texts().count(command) > 0;
}

std::string management_help(const std::string& command) {
  auto it = help_texts().find(command);
  if (it == help_texts().end()) return "Usage: capi-relay " + command + " [options]\n";
  return it->second;
}

int run_management_command(const CommandArgs& args, const Config& config) {
  // Command output is for people: the relay components' log lines are kept to warnings and
  // errors, as text (unless the config asks for debug).
  if (config.log.level != "debug") log::configure(log::Level::kWarn, log::Format::kText);
  CliContext ctx{args,
                 config,
                 std::cin,
                 std::cout,
                 std::cerr,
                 SystemClock::instance(),
                 SystemRandom::instance(),
                 ::isatty(STDERR_FILENO) == 1};
  const std::string& cmd = args.command;
  int rc = kExitUsage;
  if (cmd == "upload") {
    rc = run_upload(ctx);
  } else if (cmd == "auth") {
    rc = run_auth(ctx);
  } else if (cmd == "whoami") {
    rc = run_whoami(ctx);
  } else if (cmd == "accounts" || cmd == "campaign-groups" || cmd == "campaigns" ||
             cmd == "creatives") {
    rc = run_account_structure(ctx);
  } else if (cmd == "rules") {
    rc = run_rules(ctx);
  } else if (cmd == "dlq") {
    rc = run_dlq(ctx);
  } else {
    rc = usage_error(ctx, "unknown command '" + cmd + "'");
  }
  std::cout.flush();
  return rc;
}

}  // namespace capi_relay
