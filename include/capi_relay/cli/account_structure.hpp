#pragma once
// `capi-relay accounts | campaign-groups --account ID | campaigns --account ID |
// creatives --account ID` (needs r_ads) and `capi-relay rules list|create|associate` (needs
// rw_conversions). Lists follow LinkedIn's paging to the end and print an aligned table, or with
// --json a JSON array of LinkedIn's elements as received.
//
// Endpoints: accounts = GET /rest/adAccounts?q=search (every account the member can reach, with
// name, status and currency; cursor paging); campaign groups / campaigns =
// /rest/adAccounts/{id}/adCampaignGroups|adCampaigns?q=search (cursor paging); creatives =
// /rest/adAccounts/{id}/creatives?q=criteria (cursor paging); rules = GET
// /rest/conversions?q=account&account=urn:li:sponsoredAccount:{id} (index paging).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "capi_relay/cli/context.hpp"
#include "capi_relay/common/result.hpp"

namespace capi_relay {

// "123" or "<urn_prefix>123" (e.g. "urn:li:sponsoredAccount:") -> 123.
std::optional<uint64_t> parse_entity_id(std::string_view text, std::string_view urn_prefix);

// The conversion types LinkedIn accepts for a rule (`--type`).
const std::vector<std::string_view>& conversion_types();

struct RuleSpec {
  uint64_t account = 0;
  std::string name;
  std::string type;      // upper case, one of conversion_types()
  int post_click = 30;   // days: 1, 7, 30, 90 (365 for a few types)
  int view_through = 7;  // days: 1, 7, 30, 90
};
// Checks --account/--name/--type/--post-click/--view-through before anything is sent. The error
// is a one-line usage reason.
Result<RuleSpec> validate_rule_spec(std::optional<std::string> account,
                                    std::optional<std::string> name,
                                    std::optional<std::string> type,
                                    std::optional<std::string> post_click,
                                    std::optional<std::string> view_through);
// The POST /rest/conversions body.
std::string rule_create_body(const RuleSpec& spec);
// The `conversions:` config lines for a new rule, keyed by an event name made from the rule name.
std::string conversions_snippet(std::string_view rule_name, uint64_t rule_id);

// PUT target and body associating campaigns with a rule: one campaign uses the single-entity form
// /rest/campaignConversions/(key), several the batch form ?ids=List(key,...) (X-RestLi-Method:
// BATCH_UPDATE) with {"entities":{key:{...}}}.
struct AssociationRequest {
  std::string target;
  std::string body;
  bool batch = false;
};
AssociationRequest association_request(uint64_t rule_id, const std::vector<uint64_t>& campaigns);

int run_account_structure(const CliContext& ctx);  // accounts, campaign-groups, campaigns, creatives
int run_rules(const CliContext& ctx);

}  // namespace capi_relay
