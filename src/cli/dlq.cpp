// `dlq list|replay`: directly on the files, or through a running relay's admin listener.
#include "capi_relay/cli/dlq.hpp"

#include <simdjson.h>

#include <algorithm>

#include "capi_relay/cli/account_structure.hpp"
#include "capi_relay/cli/dead_letter_json.hpp"
#include "capi_relay/cli/linkedin_api.hpp"
#include "capi_relay/cli/output.hpp"
#include "capi_relay/cli/spool_access.hpp"
#include "capi_relay/dedup/local_dedup.hpp"
#include "capi_relay/event/record.hpp"
#include "capi_relay/spool/dead_letters.hpp"
#include "capi_relay/spool/spool.hpp"

namespace capi_relay {

namespace {

constexpr size_t kMessageColumnChars = 80;

Result<DeadLetterFilter> filter_from_args(const CliContext& ctx) {
  DeadLetterFilter f;
  if (auto it = ctx.args.options.find("--id"); it != ctx.args.options.end()) {
    for (const std::string& v : it->second) {
      auto id = parse_entity_id(v, "");
      if (!id) return Error{"--id must be a dead-letter id (a number shown by `dlq list`), not '" + v + "'"};
      f.ids.push_back(*id);
    }
  }
  if (auto r = ctx.args.option("--reason")) {
    if (*r != "rejected" && *r != "expired") {
      return Error{"--reason must be rejected or expired, not '" + *r + "'"};
    }
    f.reason = *r;
  }
  return f;
}

bool matches(const DeadLetterFilter& f, const DeadLetterView& v) {
  if (!f.ids.empty() && std::find(f.ids.begin(), f.ids.end(), v.id) == f.ids.end()) return false;
  return !f.reason || *f.reason == v.reason;
}

void print_views(const CliContext& ctx, const std::vector<DeadLetterView>& views) {
  if (ctx.args.flag("--json")) {
    std::string out = "[";
    for (size_t i = 0; i < views.size(); ++i) {
      out += i ? ",\n " : "\n ";
      append_dead_letter_json(out, views[i]);
    }
    out += views.empty() ? "]\n" : "\n]\n";
    ctx.out << out;
    return;
  }
  if (views.empty()) {
    ctx.out << "No dead letters.\n";
    return;
  }
  TextTable t({"ID", "EVENT ID", "RULE", "REASON", "STATUS", "TIME", "MESSAGE"});
  for (const auto& v : views) {
    t.add_row({std::to_string(v.id), v.event_id, v.rule, v.reason,
               v.status > 0 ? std::to_string(v.status) : "-", v.time,
               shorten(v.message, kMessageColumnChars)});
  }
  ctx.out << t.render();
  ctx.out << views.size() << (views.size() == 1 ? " dead letter" : " dead letters")
          << ". Fix the cause, then `capi-relay dlq replay [--id ID]... [--reason R]`.\n";
}

std::string missing_ids(const DeadLetterFilter& f, const std::vector<uint64_t>& found) {
  std::string missing;
  for (uint64_t id : f.ids) {
    if (std::find(found.begin(), found.end(), id) == found.end()) {
      missing += (missing.empty() ? "" : ", ") + std::to_string(id);
    }
  }
  return missing;
}

// ---------------------------------------------------------------- direct (lock held)

int list_direct(const CliContext& ctx, const DeadLetterFilter& f) {
  const Config& c = ctx.config;
  auto store = DeadLetterStore::open(c.spool.dir / "dead-letters",
                                     c.spool.dead_letter_retention.count(), ctx.clock);
  if (!store) return runtime_failure(ctx, "cannot open the dead-letter store: " + store.error());
  (*store)->expire();
  std::vector<DeadLetterView> views;
  for (const DeadLetter& d : (*store)->list(f)) views.push_back(dead_letter_view(d));
  print_views(ctx, views);
  return kExitOk;
}

int replay_direct(const CliContext& ctx, const DeadLetterFilter& f) {
  const Config& c = ctx.config;
  auto store = DeadLetterStore::open(c.spool.dir / "dead-letters",
                                     c.spool.dead_letter_retention.count(), ctx.clock);
  if (!store) return runtime_failure(ctx, "cannot open the dead-letter store: " + store.error());
  (*store)->expire();
  std::vector<DeadLetter> entries = (*store)->list(f);
  std::vector<uint64_t> ids;
  uint64_t bytes = 0;
  for (const auto& d : entries) {
    ids.push_back(d.id);
    bytes += d.payload.size() + 16;
  }
  if (std::string missing = missing_ids(f, ids); !missing.empty()) {
    return runtime_failure(ctx, "no dead letter with id " + missing + " (see `capi-relay dlq list`)");
  }
  if (entries.empty()) {
    ctx.out << "Nothing to replay.\n";
    return kExitOk;
  }
  auto spool = Spool::open({c.spool.dir / "spool", c.spool.max_bytes, 16ull << 20, c.spool.fsync},
                           ctx.clock);
  if (!spool) return runtime_failure(ctx, "cannot open the spool: " + spool.error());
  if ((*spool)->would_exceed(bytes)) {
    return runtime_failure(ctx, "the spool is full (spool.max_bytes); let the relay upload the "
                                "backlog first, or raise spool.max_bytes");
  }
  auto dedup = open_local_dedup({c.spool.dir / "dedup", c.dedup.window.count()}, ctx.clock);
  if (!dedup) return runtime_failure(ctx, "cannot open the dedup state: " + dedup.error());

  // 1. Durably back on the spool (bypassing dedup: a replay is on purpose).
  const int64_t now = ctx.clock.now_ms();
  for (const auto& d : entries) {
    if (auto r = (*spool)->append(d.payload, now); !r) {
      return runtime_failure(ctx, "cannot append to the spool: " + r.error());
    }
  }
  if (auto r = (*spool)->sync(true); !r) {
    return runtime_failure(ctx, "cannot write the spool: " + r.error() + "; nothing was replayed");
  }
  // 2. Out of the dead-letter store.
  DeadLetterFilter exact;
  exact.ids = ids;
  auto taken = (*store)->take(exact);
  if (!taken) {
    return runtime_failure(ctx, "the events are back on the spool but could not be removed from "
                                "the dead-letter store (" + taken.error() +
                                "); they would be replayed twice if replayed again");
  }
  // 3. Their keys are pending again: a resend by a client is a duplicate.
  std::vector<uint64_t> keys;
  for (const auto& d : entries) {
    if (auto ev = decode_record(d.payload); ev) keys.push_back(dedup_fingerprint(ev->rule_id, ev->event_id));
  }
  (*dedup)->commit(keys, now);
  if (auto r = (*dedup)->flush(); !r) {
    ctx.err << "capi-relay dlq replay: warning: dedup state not written (" << r.error() << ")\n";
  }
  ctx.out << "Replayed " << entries.size() << (entries.size() == 1 ? " event" : " events")
          << " onto the spool in " << c.spool.dir.string()
          << "; `capi-relay serve` uploads them.\n";
  return kExitOk;
}

// ---------------------------------------------------------------- through a running relay

Result<HttpResult> admin_call(const CliContext& ctx, const std::string& method,
                              const std::string& path, const std::string& body) {
  auto base = local_url_of_listen(ctx.config.admin.listen, "admin.listen");
  if (!base) return Error{base.error()};
  ParsedUrl u;
  auto client = make_http_client(*base, ctx.config, &u);
  if (!client) return Error{client.error()};
  HttpRequest req;
  req.method = method;
  req.target = path;
  req.headers = {{"Accept", "application/json"}};
  if (method == "POST") req.headers.emplace_back("Content-Type", "application/json");
  req.body = body;
  HttpResult r = (*client)->request(std::move(req));
  if (!r.ok()) {
    return Error{"a relay holds " + ctx.config.spool.dir.string() + " but its admin listener " +
                 *base + " does not answer (" + r.error_message +
                 "); check admin.listen in this config matches the running relay's"};
  }
  if (r.response.status == 404 || r.response.status == 405) {
    return Error{"the running relay at " + *base + " does not offer " + path +
                 " (an older version?); stop it and run the command again to work on the files"};
  }
  if (r.response.status < 200 || r.response.status >= 300) {
    return Error{"the running relay answered " + std::to_string(r.response.status) + " to " +
                 path + ": " + r.response.body.substr(0, 300)};
  }
  return r;
}

int list_via_relay(const CliContext& ctx, const DeadLetterFilter& f) {
  auto r = admin_call(ctx, "GET", "/v1/dead-letters", "");
  if (!r) return runtime_failure(ctx, r.error());
  auto views = parse_dead_letters_response(r->response.body);
  if (!views) return runtime_failure(ctx, "the running relay's answer: " + views.error());
  std::vector<DeadLetterView> kept;
  for (auto& v : *views) {
    if (matches(f, v)) kept.push_back(std::move(v));
  }
  print_views(ctx, kept);
  return kExitOk;
}

int replay_via_relay(const CliContext& ctx, const DeadLetterFilter& f) {
  auto r = admin_call(ctx, "POST", "/v1/dead-letters/replay", replay_request_json(f));
  if (!r) return runtime_failure(ctx, r.error());
  simdjson::dom::parser parser;
  simdjson::padded_string padded(r->response.body);
  uint64_t n = 0;
  simdjson::dom::element doc;
  if (parser.parse(padded).get(doc) != simdjson::SUCCESS ||
      doc["replayed"].get_uint64().get(n) != simdjson::SUCCESS) {
    return runtime_failure(ctx, "the running relay's answer has no \"replayed\" count");
  }
  if (!f.ids.empty() && n < f.ids.size()) {
    ctx.err << "capi-relay dlq replay: " << f.ids.size() - n
            << " of the given ids were not in the dead-letter store\n";
    ctx.out << "The running relay replayed " << n << (n == 1 ? " event.\n" : " events.\n");
    return kExitFailure;
  }
  ctx.out << "The running relay replayed " << n << (n == 1 ? " event.\n" : " events.\n");
  return kExitOk;
}

}  // namespace

int run_dlq(const CliContext& ctx) {
  if (ctx.args.positional.empty()) return usage_error(ctx, "dlq needs a subcommand: list or replay");
  const std::string& sub = ctx.args.positional[0];
  if (sub != "list" && sub != "replay") {
    return usage_error(ctx, "unknown dlq subcommand '" + sub + "' (list, replay)");
  }
  if (int rc = check_usage(ctx, 1, {"--id", "--reason"},
                           sub == "list" ? std::initializer_list<std::string_view>{"--json"}
                                         : std::initializer_list<std::string_view>{});
      rc != kExitOk) {
    return rc;
  }
  auto filter = filter_from_args(ctx);
  if (!filter) return usage_error(ctx, filter.error());
  SpoolLockAttempt lock = lock_spool_dir(ctx.config);
  if (lock.lock) {
    return sub == "list" ? list_direct(ctx, *filter) : replay_direct(ctx, *filter);
  }
  if (!lock.held_by_other) return runtime_failure(ctx, lock.error);
  return sub == "list" ? list_via_relay(ctx, *filter) : replay_via_relay(ctx, *filter);
}

}  // namespace capi_relay
