// Account structure listings and conversion rules.
#include "capi_relay/cli/account_structure.hpp"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "capi_relay/cli/linkedin_api.hpp"
#include "capi_relay/cli/output.hpp"
#include "capi_relay/common/json_text.hpp"

namespace capi_relay {

namespace {

// Text of a scalar field (string, integer, bool) of a JSON object; "" when absent. A nested path
// is given as several keys.
std::string field(simdjson::dom::element e, std::initializer_list<std::string_view> path) {
  for (std::string_view k : path) {
    if (e.at_key(k).get(e) != simdjson::SUCCESS) return {};
  }
  std::string_view s;
  int64_t i = 0;
  uint64_t u = 0;
  bool b = false;
  double d = 0;
  if (e.get_string().get(s) == simdjson::SUCCESS) return std::string(s);
  if (e.get_int64().get(i) == simdjson::SUCCESS) return std::to_string(i);
  if (e.get_uint64().get(u) == simdjson::SUCCESS) return std::to_string(u);
  if (e.get_bool().get(b) == simdjson::SUCCESS) return b ? "true" : "false";
  if (e.get_double().get(d) == simdjson::SUCCESS) return std::to_string(d);
  return {};
}

// "urn:li:sponsoredCampaign:42" -> "42" (other text unchanged).
std::string urn_tail(const std::string& s) {
  if (s.rfind("urn:", 0) != 0) return s;
  return s.substr(s.rfind(':') + 1);
}

void print_json_array(const CliContext& ctx, const std::vector<std::string>& elements) {
  ctx.out << "[";
  for (size_t i = 0; i < elements.size(); ++i) ctx.out << (i ? ",\n " : "\n ") << elements[i];
  ctx.out << (elements.empty() ? "]\n" : "\n]\n");
}

using Row = std::vector<std::string>;
using RowFn = Row (*)(simdjson::dom::element);

int list_and_print(const CliContext& ctx, const std::string& target, Paging paging,
                   std::vector<std::string> headers, RowFn row, std::string_view empty_note) {
  auto tokens = open_token_store(ctx.config, ctx.clock);
  if (!tokens) return runtime_failure(ctx, tokens.error());
  auto api = LinkedInApi::create(ctx.config, **tokens);
  if (!api) return runtime_failure(ctx, api.error());
  auto elements = (*api)->get_all(target, paging);
  if (!elements) return runtime_failure(ctx, elements.error());
  if (ctx.args.flag("--json")) {
    print_json_array(ctx, *elements);
    return kExitOk;
  }
  TextTable table(std::move(headers));
  simdjson::dom::parser parser;
  for (const std::string& text : *elements) {
    simdjson::padded_string padded(text);
    simdjson::dom::element e;
    if (parser.parse(padded).get(e) != simdjson::SUCCESS) continue;
    table.add_row(row(e));
  }
  if (table.rows() == 0) {
    ctx.out << empty_note << "\n";
    return kExitOk;
  }
  ctx.out << table.render();
  return kExitOk;
}

Row account_row(simdjson::dom::element e) {
  return {urn_tail(field(e, {"id"})), field(e, {"name"}), field(e, {"status"}),
          field(e, {"type"}), field(e, {"currency"}), field(e, {"test"}) == "true" ? "yes" : ""};
}
Row group_row(simdjson::dom::element e) {
  return {urn_tail(field(e, {"id"})), field(e, {"name"}), field(e, {"status"})};
}
Row campaign_row(simdjson::dom::element e) {
  return {urn_tail(field(e, {"id"})), field(e, {"name"}), field(e, {"status"}),
          field(e, {"type"}), field(e, {"objectiveType"}), urn_tail(field(e, {"campaignGroup"}))};
}
Row creative_row(simdjson::dom::element e) {
  std::string status = field(e, {"intendedStatus"});
  if (status.empty()) status = field(e, {"status"});
  return {urn_tail(field(e, {"id"})), field(e, {"name"}), urn_tail(field(e, {"campaign"})),
          status};
}
Row rule_row(simdjson::dom::element e) {
  return {urn_tail(field(e, {"id"})),
          field(e, {"name"}),
          field(e, {"type"}),
          field(e, {"conversionMethod"}),
          field(e, {"enabled"}),
          field(e, {"postClickAttributionWindowSize"}),
          field(e, {"viewThroughAttributionWindowSize"})};
}

std::optional<int> parse_days(const std::string& s) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<uint64_t> account_option(const CliContext& ctx, int& rc) {
  auto a = ctx.args.option("--account");
  if (!a) {
    rc = usage_error(ctx, "--account ID is required (find ids with `capi-relay accounts`)");
    return std::nullopt;
  }
  auto id = parse_entity_id(*a, "urn:li:sponsoredAccount:");
  if (!id) {
    rc = usage_error(ctx, "--account must be a number or urn:li:sponsoredAccount:N, not '" + *a + "'");
    return std::nullopt;
  }
  return id;
}

int rules_list(const CliContext& ctx) {
  if (int rc = check_usage(ctx, 1, {"--account"}, {"--json"}); rc != kExitOk) return rc;
  int rc = kExitOk;
  auto account = account_option(ctx, rc);
  if (!account) return rc;
  return list_and_print(
      ctx,
      "/rest/conversions?q=account&account=" +
          percent_encode("urn:li:sponsoredAccount:" + std::to_string(*account)),
      Paging::kIndex, {"ID", "NAME", "TYPE", "METHOD", "ENABLED", "POST-CLICK", "VIEW-THROUGH"},
      rule_row,
      "No conversion rules on this account. Create one with `capi-relay rules create`.");
}

int rules_create(const CliContext& ctx) {
  if (int rc = check_usage(ctx, 1, {"--account", "--name", "--type", "--post-click", "--view-through"},
                           {"--json", "--snippet"});
      rc != kExitOk) {
    return rc;
  }
  auto spec = validate_rule_spec(ctx.args.option("--account"), ctx.args.option("--name"),
                                 ctx.args.option("--type"), ctx.args.option("--post-click"),
                                 ctx.args.option("--view-through"));
  if (!spec) return usage_error(ctx, spec.error());
  auto tokens = open_token_store(ctx.config, ctx.clock);
  if (!tokens) return runtime_failure(ctx, tokens.error());
  auto api = LinkedInApi::create(ctx.config, **tokens);
  if (!api) return runtime_failure(ctx, api.error());
  HttpRequest req;
  req.method = "POST";
  req.target = "/rest/conversions";
  req.headers = {{"Content-Type", "application/json"}};
  req.body = rule_create_body(*spec);
  HttpResult res = (*api)->send(std::move(req));
  if (!res.ok() || res.response.status < 200 || res.response.status >= 300) {
    return runtime_failure(ctx, describe_failure("POST /rest/conversions", res));
  }
  // The new id: in the body ({"id":N,...}) or, for an empty 201, the x-restli-id header.
  std::string id;
  simdjson::dom::parser parser;
  simdjson::padded_string padded(res.response.body);
  simdjson::dom::element doc;
  if (parser.parse(padded).get(doc) == simdjson::SUCCESS) id = urn_tail(field(doc, {"id"}));
  if (id.empty()) id = urn_tail(res.response.header("x-restli-id"));
  if (id.empty()) id = urn_tail(res.response.header("x-linkedin-id"));
  auto rule_id = parse_entity_id(id, "");
  if (!rule_id) {
    return runtime_failure(ctx, "LinkedIn created the rule but its answer names no id; find it with "
                                "`capi-relay rules list --account " +
                                    std::to_string(spec->account) + "`");
  }
  const std::string snippet = conversions_snippet(spec->name, *rule_id);
  if (ctx.args.flag("--json")) {
    std::string j = "{\"id\":" + std::to_string(*rule_id) + ",\"urn\":";
    append_json_string(j, "urn:lla:llaPartnerConversion:" + std::to_string(*rule_id));
    j += ",\"snippet\":";
    append_json_string(j, snippet);
    j += "}\n";
    ctx.out << j;
    return kExitOk;
  }
  ctx.out << "Created conversion rule " << *rule_id << " (urn:lla:llaPartnerConversion:"
          << *rule_id << "), type " << spec->type << ", post-click " << spec->post_click
          << " days, view-through " << spec->view_through << " days.\n\n"
          << "Add it to the relay's config:\n\n"
          << snippet << "\n"
          << "Then associate campaigns: capi-relay rules associate --rule " << *rule_id
          << " --campaign ID...\n";
  return kExitOk;
}

int rules_associate(const CliContext& ctx) {
  if (int rc = check_usage(ctx, 1, {"--rule", "--campaign"}, {"--json"}); rc != kExitOk) return rc;
  auto rule_text = ctx.args.option("--rule");
  if (!rule_text) return usage_error(ctx, "--rule ID is required");
  auto rule = parse_entity_id(*rule_text, "urn:lla:llaPartnerConversion:");
  if (!rule) {
    return usage_error(ctx, "--rule must be a number or urn:lla:llaPartnerConversion:N, not '" +
                                *rule_text + "'");
  }
  std::vector<uint64_t> campaigns;
  auto it = ctx.args.options.find("--campaign");
  if (it == ctx.args.options.end() || it->second.empty()) {
    return usage_error(ctx, "at least one --campaign ID is required");
  }
  std::set<uint64_t> seen;
  for (const std::string& c : it->second) {
    auto id = parse_entity_id(c, "urn:li:sponsoredCampaign:");
    if (!id) {
      return usage_error(ctx, "--campaign must be a number or urn:li:sponsoredCampaign:N, not '" +
                                  c + "'");
    }
    if (seen.insert(*id).second) campaigns.push_back(*id);
  }
  auto tokens = open_token_store(ctx.config, ctx.clock);
  if (!tokens) return runtime_failure(ctx, tokens.error());
  auto api = LinkedInApi::create(ctx.config, **tokens);
  if (!api) return runtime_failure(ctx, api.error());
  const AssociationRequest ar = association_request(*rule, campaigns);
  HttpRequest req;
  req.method = "PUT";
  req.target = ar.target;
  req.headers = {{"Content-Type", "application/json"}};
  if (ar.batch) req.headers.emplace_back("X-RestLi-Method", "BATCH_UPDATE");
  req.body = ar.body;
  HttpResult res = (*api)->send(std::move(req));
  if (!res.ok() || res.response.status < 200 || res.response.status >= 300) {
    return runtime_failure(ctx, describe_failure("PUT /rest/campaignConversions", res));
  }
  // A batch answer may carry per-key failures: {"results":{key:{"status":N}},"errors":{key:{...}}}.
  std::vector<std::string> failed;
  if (ar.batch) {
    simdjson::dom::parser parser;
    simdjson::padded_string padded(res.response.body);
    simdjson::dom::element doc;
    if (parser.parse(padded).get(doc) == simdjson::SUCCESS) {
      simdjson::dom::object errors, results;
      if (doc["errors"].get_object().get(errors) == simdjson::SUCCESS) {
        for (auto kv : errors) {
          failed.push_back(percent_decode(kv.key, false) + ": " + field(kv.value, {"message"}));
        }
      }
      if (doc["results"].get_object().get(results) == simdjson::SUCCESS) {
        for (auto kv : results) {
          int64_t st = 0;
          if (kv.value["status"].get_int64().get(st) == simdjson::SUCCESS && (st < 200 || st >= 300)) {
            failed.push_back(percent_decode(kv.key, false) + ": status " + std::to_string(st));
          }
        }
      }
    }
  }
  if (!failed.empty()) {
    for (const auto& f : failed) ctx.err << "  " << f << "\n";
    return runtime_failure(ctx, std::to_string(failed.size()) + " of " +
                                    std::to_string(campaigns.size()) +
                                    " associations failed (listed above)");
  }
  ctx.out << "Associated rule " << *rule << " with " << campaigns.size()
          << (campaigns.size() == 1 ? " campaign.\n" : " campaigns.\n");
  return kExitOk;
}

}  // namespace

std::optional<uint64_t> parse_entity_id(std::string_view text, std::string_view urn_prefix) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  if (!urn_prefix.empty() && text.substr(0, urn_prefix.size()) == urn_prefix) {
    text.remove_prefix(urn_prefix.size());
  }
  if (text.empty() || text.size() > 19) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || p != text.data() + text.size()) return std::nullopt;
  return v;
}

const std::vector<std::string_view>& conversion_types() {
  // LinkedIn's conversion rule types (Conversions API schema; Segment's list plus QUALIFIED_LEAD).
  static const std::vector<std::string_view> t = {
      "ADD_BILLING_INFO", "ADD_TO_CART",     "ADD_TO_LIST",      "AD_CLICK",
      "AD_VIEW",          "BOOK_APPOINTMENT", "COMPLETE_SIGNUP", "CONTACT",
      "DONATE",           "DOWNLOAD",        "INSTALL",          "INVITE",
      "JOB_APPLY",        "KEY_PAGE_VIEW",   "LEAD",             "LOGIN",
      "MARKETING_QUALIFIED_LEAD", "OTHER",   "OUTBOUND_CLICK",   "PHONE_CALL",
      "PURCHASE",         "QUALIFIED_LEAD",  "RATE",             "REQUEST_QUOTE",
      "SALES_QUALIFIED_LEAD", "SAVE",        "SCHEDULE",         "SEARCH",
      "SHARE",            "SIGN_UP",         "START_CHECKOUT",   "START_TRIAL",
      "SUBMIT_APPLICATION", "SUBSCRIBE",     "TALENT_LEAD",      "VIEW_CONTENT",
      "VIEW_VIDEO"};
  return t;
}

Result<RuleSpec> validate_rule_spec(std::optional<std::string> account,
                                    std::optional<std::string> name,
                                    std::optional<std::string> type,
                                    std::optional<std::string> post_click,
                                    std::optional<std::string> view_through) {
  RuleSpec s;
  if (!account) return Error{"--account ID is required"};
  auto id = parse_entity_id(*account, "urn:li:sponsoredAccount:");
  if (!id) return Error{"--account must be a number or urn:li:sponsoredAccount:N"};
  s.account = *id;
  if (!name || name->find_first_not_of(' ') == std::string::npos) {
    return Error{"--name is required (the rule's name in Campaign Manager)"};
  }
  s.name = *name;
  if (!type) return Error{"--type is required (e.g. PURCHASE, LEAD, SIGN_UP)"};
  for (char c : *type) s.type += static_cast<char>(c == '-' ? '_' : std::toupper(static_cast<unsigned char>(c)));
  const auto& types = conversion_types();
  if (std::find(types.begin(), types.end(), s.type) == types.end()) {
    std::string list;
    for (auto t : types) list += (list.empty() ? "" : " ") + std::string(t);
    return Error{"--type '" + *type + "' is not a LinkedIn conversion type (one of: " + list + ")"};
  }
  static const std::set<std::string_view> long_window = {"SUBMIT_APPLICATION", "PURCHASE",
                                                         "ADD_TO_CART", "QUALIFIED_LEAD", "LEAD"};
  if (post_click) {
    auto d = parse_days(*post_click);
    const bool ok = d && (*d == 1 || *d == 7 || *d == 30 || *d == 90 ||
                          (*d == 365 && long_window.count(s.type) > 0));
    if (!ok) {
      return Error{"--post-click takes 1, 7, 30 or 90 days" +
                   std::string(long_window.count(s.type)
                                   ? " (or 365 for this type)"
                                   : " (365 only for SUBMIT_APPLICATION, PURCHASE, ADD_TO_CART, "
                                     "QUALIFIED_LEAD, LEAD)") +
                   ", not '" + *post_click + "'"};
    }
    s.post_click = *d;
  }
  if (view_through) {
    auto d = parse_days(*view_through);
    if (!d || !(*d == 1 || *d == 7 || *d == 30 || *d == 90)) {
      return Error{"--view-through takes 1, 7, 30 or 90 days, not '" + *view_through + "'"};
    }
    s.view_through = *d;
  }
  return s;
}

std::string rule_create_body(const RuleSpec& s) {
  std::string b = "{\"name\":";
  append_json_string(b, s.name);
  b += ",\"account\":";
  append_json_string(b, "urn:li:sponsoredAccount:" + std::to_string(s.account));
  b += ",\"conversionMethod\":\"CONVERSIONS_API\",\"type\":";
  append_json_string(b, s.type);
  b += ",\"attributionType\":\"LAST_TOUCH_BY_CAMPAIGN\"";
  b += ",\"postClickAttributionWindowSize\":" + std::to_string(s.post_click);
  b += ",\"viewThroughAttributionWindowSize\":" + std::to_string(s.view_through);
  b += ",\"enabled\":true}";
  return b;
}

std::string conversions_snippet(std::string_view rule_name, uint64_t rule_id) {
  std::string key;
  for (char c : rule_name) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) {
      key += static_cast<char>(std::tolower(u));
    } else if (!key.empty() && key.back() != '_') {
      key += '_';
    }
  }
  while (!key.empty() && key.back() == '_') key.pop_back();
  if (key.empty() || std::isdigit(static_cast<unsigned char>(key.front()))) key = "event_" + key;
  return "conversions:\n  " + key + ": urn:lla:llaPartnerConversion:" + std::to_string(rule_id) +
         "\n";
}

AssociationRequest association_request(uint64_t rule_id, const std::vector<uint64_t>& campaigns) {
  AssociationRequest r;
  auto entity = [&](uint64_t cid) {
    std::string e = "{\"campaign\":";
    append_json_string(e, "urn:li:sponsoredCampaign:" + std::to_string(cid));
    e += ",\"conversion\":";
    append_json_string(e, "urn:lla:llaPartnerConversion:" + std::to_string(rule_id));
    e += '}';
    return e;
  };
  if (campaigns.size() == 1) {
    r.target = "/rest/campaignConversions/" + campaign_conversion_key(campaigns[0], rule_id);
    r.body = entity(campaigns[0]);
    return r;
  }
  r.batch = true;
  r.target = "/rest/campaignConversions?ids=List(";
  r.body = "{\"entities\":{";
  for (size_t i = 0; i < campaigns.size(); ++i) {
    const std::string key = campaign_conversion_key(campaigns[i], rule_id);
    if (i) {
      r.target += ',';
      r.body += ',';
    }
    r.target += key;
    append_json_string(r.body, key);
    r.body += ':' + entity(campaigns[i]);
  }
  r.target += ')';
  r.body += "}}";
  return r;
}

int run_account_structure(const CliContext& ctx) {
  const std::string& cmd = ctx.args.command;
  if (cmd == "accounts") {
    if (int rc = check_usage(ctx, 0, {}, {"--json"}); rc != kExitOk) return rc;
    return list_and_print(ctx, "/rest/adAccounts?q=search", Paging::kCursor,
                          {"ID", "NAME", "STATUS", "TYPE", "CURRENCY", "TEST"}, account_row,
                          "No ad accounts are visible to this member (see `capi-relay whoami`).");
  }
  if (int rc = check_usage(ctx, 0, {"--account"}, {"--json"}); rc != kExitOk) return rc;
  int rc = kExitOk;
  auto account = account_option(ctx, rc);
  if (!account) return rc;
  const std::string base = "/rest/adAccounts/" + std::to_string(*account);
  if (cmd == "campaign-groups") {
    return list_and_print(ctx, base + "/adCampaignGroups?q=search", Paging::kCursor,
                          {"ID", "NAME", "STATUS"}, group_row, "No campaign groups.");
  }
  if (cmd == "campaigns") {
    return list_and_print(ctx, base + "/adCampaigns?q=search", Paging::kCursor,
                          {"ID", "NAME", "STATUS", "TYPE", "OBJECTIVE", "GROUP"}, campaign_row,
                          "No campaigns.");
  }
  return list_and_print(ctx, base + "/creatives?q=criteria", Paging::kCursor,
                        {"ID", "NAME", "CAMPAIGN", "STATUS"}, creative_row, "No creatives.");
}

int run_rules(const CliContext& ctx) {
  if (ctx.args.positional.empty()) {
    return usage_error(ctx, "rules needs a subcommand: list, create or associate");
  }
  const std::string& sub = ctx.args.positional[0];
  if (sub == "list") return rules_list(ctx);
  if (sub == "create") return rules_create(ctx);
  if (sub == "associate") return rules_associate(ctx);
  return usage_error(ctx, "unknown rules subcommand '" + sub + "' (list, create, associate)");
}

}  // namespace capi_relay
