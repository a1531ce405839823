// The event hot path: parse + validate + normalize + SHA-256 of ingest bodies, and LinkedIn
// element serialization. Bodies are in the contract's input shape (single event ~270 B; 100-event
// NDJSON ~ 27 KB), as in perf-notes.md.
//   cmake -S . -B build -DCAPI_RELAY_BENCH=ON && cmake --build build --target event_bench
//   build/bin/event_bench --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "capi_relay/common/clock.hpp"
#include "capi_relay/event/element.hpp"
#include "capi_relay/event/parser.hpp"
#include "capi_relay/event/record.hpp"

namespace capi_relay {
namespace {

constexpr int64_t kNow = 1764320000000;

EventRules bench_rules() {
  EventRules r;
  r.conversions = {{"purchase", 123}, {"lead", 456}, {"signup", 789}};
  r.allowed_rules = {123, 456, 789};
  return r;
}

std::string event_json(int i) {
  return R"({"event":"purchase","eventId":"order-)" + std::to_string(100000 + i) +
         R"(","timestamp":1764319940000,"value":{"amount":"50.00","currency":"USD"},)"
         R"("user":{"email":"  John.Doe)" +
         std::to_string(i) +
         R"(@Example.com ","liFatId":"a1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d",)"
         R"("firstName":"John","lastName":"Doe","title":"Buyer","companyName":"Acme","countryCode":"US"}})";
}

std::string ndjson_body(int n) {
  std::string body;
  for (int i = 0; i < n; ++i) {
    body += event_json(i);
    body += '\n';
  }
  return body;
}

void run_body(benchmark::State& state, const std::string& body, bool padded) {
  FixedRandom random;
  EventParser parser(bench_rules(), random);
  ParseOptions opts;
  opts.now_ms = kNow;
  ParsedBody out;
  std::string storage = body;
  storage.append(64, ' ');  // SIMDJSON_PADDING
  std::string_view view(storage.data(), body.size());
  size_t accepted = 0;
  for (auto _ : state) {
    parser.parse_body(view, padded, opts, out);
    accepted += out.items.size();
    benchmark::DoNotOptimize(out.items.data());
  }
  if (out.items.empty() || !out.items[0].ok) state.SkipWithError("event was not accepted");
  state.SetItemsProcessed(static_cast<int64_t>(accepted));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}

void BM_SingleEvent(benchmark::State& state) {
  run_body(state, event_json(1), state.range(0) != 0);
}
BENCHMARK(BM_SingleEvent)->Arg(1)->Arg(0)->ArgName("padded");

void BM_Ndjson100(benchmark::State& state) {
  run_body(state, ndjson_body(100), state.range(0) != 0);
}
BENCHMARK(BM_Ndjson100)->Arg(1)->Arg(0)->ArgName("padded");

void BM_JsonArray100(benchmark::State& state) {
  std::string body = "[";
  for (int i = 0; i < 100; ++i) {
    if (i) body += ',';
    body += event_json(i);
  }
  body += ']';
  run_body(state, body, true);
}
BENCHMARK(BM_JsonArray100);

std::vector<NormalizedEvent> normalized_events(int n) {
  FixedRandom random;
  EventParser parser(bench_rules(), random);
  ParseOptions opts;
  opts.now_ms = kNow;
  ParsedBody out;
  parser.parse_body(ndjson_body(n), false, opts, out);
  std::vector<NormalizedEvent> events;
  for (const ParsedItem& it : out.items) events.push_back(it.event);
  return events;
}

void BM_ElementJson(benchmark::State& state) {
  std::vector<NormalizedEvent> events = normalized_events(100);
  std::string out;
  for (auto _ : state) {
    out.clear();
    append_batch_json(events, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * events.size()));
}
BENCHMARK(BM_ElementJson);

void BM_RecordRoundTrip(benchmark::State& state) {
  std::vector<NormalizedEvent> events = normalized_events(1);
  std::string buf;
  for (auto _ : state) {
    buf.clear();
    encode_record(events[0], buf);
    Result<NormalizedEvent> back = decode_record(buf);
    benchmark::DoNotOptimize(back.ok());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_RecordRoundTrip);

}  // namespace
}  // namespace capi_relay

BENCHMARK_MAIN();
