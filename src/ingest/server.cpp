#include "capi_relay/ingest/server.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <charconv>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "capi_relay/common/json_text.hpp"
#include "capi_relay/common/log.hpp"
#include "capi_relay/common/thread_name.hpp"
#include "capi_relay/event/parser.hpp"
#include "capi_relay/event/record.hpp"
#include "capi_relay/ingest/client_limits.hpp"

namespace capi_relay {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr size_t kHeaderLimit = 16 * 1024;  // bytes of request head
constexpr size_t kBodyPadding = 64;         // SIMDJSON_PADDING
constexpr size_t kReadBufferReserve = 64 * 1024;  // per connection (perf-notes: reserve once)
constexpr const char* kRetryAfterSeconds = "1";
// ParsedBody item capacity a connection keeps between requests (more is freed after the answer).
constexpr size_t kKeepItemsCapacity = 256;
// Lingering close (do_linger): how long to drain a client's input after the final answer.
constexpr std::chrono::milliseconds kLingerTime{2000};
constexpr size_t kLingerChunk = 16 * 1024;

std::string error_body(std::string_view message) {
  std::string b = "{\"error\":";
  append_json_string(b, message);
  b += "}";
  return b;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Media type without parameters, e.g. "application/json; charset=utf-8" -> "application/json".
std::string_view media_type(std::string_view content_type) {
  auto semi = content_type.find(';');
  return trim(content_type.substr(0, semi));
}

bool accepted_media_type(std::string_view content_type) {
  if (trim(content_type).empty()) return true;  // missing: treated as text/plain
  auto m = media_type(content_type);
  return iequals(m, "application/json") || iequals(m, "application/x-ndjson") ||
         iequals(m, "text/plain");
}

// Value of query parameter `name` (percent-decoded), or nullopt.
std::optional<std::string> query_param(std::string_view target, std::string_view name) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      std::string out;
      std::string_view v = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
      for (size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '+') {
          out.push_back(' ');
        } else if (v[i] == '%' && i + 2 < v.size()) {
          int val = 0;
          auto r = std::from_chars(v.data() + i + 1, v.data() + i + 3, val, 16);
          if (r.ec == std::errc{} && r.ptr == v.data() + i + 3) {
            out.push_back(static_cast<char>(val));
            i += 2;
          } else {
            out.push_back('%');
          }
        } else {
          out.push_back(v[i]);
        }
      }
      return out;
    }
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return std::nullopt;
}

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Result<tcp::endpoint> parse_endpoint(const std::string& text) {
  std::string host;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return Error{"bad listen address " + text};
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) return Error{"bad listen address " + text};
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host == "localhost") host = "127.0.0.1";
  if (host.empty() || host == "*") host = "0.0.0.0";
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) return Error{"bad listen address " + text + ": " + ec.message()};
  unsigned p = 0;
  auto r = std::from_chars(port.data(), port.data() + port.size(), p);
  if (r.ec != std::errc{} || r.ptr != port.data() + port.size() || p > 65535)
    return Error{"bad listen port in " + text};
  return tcp::endpoint(addr, static_cast<uint16_t>(p));
}

}  // namespace

// ---------------------------------------------------------------------------------------------

// What SIGHUP may change while the relay runs: the event rules, ingest keys and CORS origins.
// Immutable once built; sessions take a snapshot per request.
struct IngestPolicy {
  IngestPolicy(const Config& c, uint64_t gen)
      : rules(EventRules::from_config(c)),
        ingest_keys(c.server.ingest_keys),
        cors_origins(c.server.cors_origins),
        cors_any(std::find(cors_origins.begin(), cors_origins.end(), "*") != cors_origins.end()),
        generation(gen) {}

  EventRules rules;
  std::vector<std::string> ingest_keys;
  std::vector<std::string> cors_origins;
  bool cors_any;
  uint64_t generation;

  bool listed(std::string_view origin) const {
    return std::find(cors_origins.begin(), cors_origins.end(), origin) != cors_origins.end();
  }
  // Origin check for CORS: true when allowed (or no Origin header / no restriction).
  bool origin_allowed(std::string_view origin) const {
    if (origin.empty() || cors_origins.empty() || cors_any) return true;
    return listed(origin);
  }
  // Whether to send Access-Control-Allow-Origin for this origin.
  bool cors_listed(std::string_view origin) const {
    if (origin.empty() || cors_origins.empty()) return false;
    return cors_any || listed(origin);
  }
  bool key_ok(std::string_view authorization, std::string_view target) const {
    if (ingest_keys.empty()) return true;
    std::string presented;
    auto auth = trim(authorization);
    if (auth.size() > 7 && iequals(auth.substr(0, 7), "Bearer ")) {
      presented = std::string(trim(auth.substr(7)));
    } else if (auto q = query_param(target, "key")) {
      presented = *q;
    }
    if (presented.empty()) return false;
    bool match = false;
    for (const auto& k : ingest_keys) match |= constant_time_equal(presented, k);  // no early exit
    return match;
  }
};

class Session;

struct IngestServer::Impl {
  Impl(const Config& c, WritePipeline& p, metrics::RelayMetrics& m, Clock& clk, EventLedger& l,
       AdminHooks h)
      : config(c),
        pipeline(p),
        metrics(m),
        clock(clk),
        ledger(l),
        hooks(std::move(h)),
        policy(std::make_shared<const IngestPolicy>(c, 1)),
        rate_limiter(c.server.per_client_rate, c.server.per_client_burst, clk) {
    // The config loader validated the entries; one that does not parse is simply not trusted.
    parse_networks(c.server.trusted_proxies, trusted_proxies);
    unsigned n = c.server.io_threads;
    if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
    threads_wanted = n;
  }

  const Config& config;  // listeners, limits and timeouts: fixed for the process's lifetime
  WritePipeline& pipeline;
  metrics::RelayMetrics& metrics;
  Clock& clock;
  EventLedger& ledger;
  AdminHooks hooks;
  std::atomic<std::shared_ptr<const IngestPolicy>> policy;
  unsigned threads_wanted = 1;

  // What a Session's destructor touches is declared before `io`, so it outlives it: destroying
  // the io_context destroys the sessions still waiting on a socket, and with `idle` destroyed
  // first the relay crashed at exit (SIGSEGV in leave_idle_list) when a connection was open.
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> buffered_bytes{0};  // see take_buffer()
  // Connections waiting for the first byte of a request, oldest first, each with the steady-clock
  // time its wait ends (header_timeout for a new connection, idle_timeout between requests).
  // When max_connections is reached the oldest idle one is closed to make room, so idle clients
  // cannot lock out active ones (a new connection is refused only when none is idle); and one
  // sweep every few hundred ms closes those whose wait has ended, instead of a timer per wait.
  struct IdleEntry {
    std::weak_ptr<Session> session;
    int64_t deadline_ms;
  };
  std::mutex idle_mu;
  std::list<IdleEntry> idle;
  asio::io_context io;
  asio::steady_timer idle_sweep{io};
  std::chrono::milliseconds idle_sweep_period{1000};
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;  // [0] ingest (+admin if same), [1] admin
  bool shared_listener = false;
  std::vector<std::thread> threads;
  std::atomic<bool> refusing{false};
  std::atomic<uint64_t> in_flight{0};

  // Hostile-input limits (docs/security.md).
  ClientRateLimiter rate_limiter;          // server.per_client_rate / per_client_burst
  std::vector<IpNetwork> trusted_proxies;  // server.trusted_proxies
  // Bytes of request bodies held right now (server.max_buffered_bytes): a body's declared length
  // (or max_body_bytes when chunked) is taken before reading it and given back with the response.
  // (buffered_bytes is declared above io: see there.)
  bool take_buffer(uint64_t n) {
    uint64_t cur = buffered_bytes.load();
    do {
      if (cur + n > config.server.max_buffered_bytes) return false;
    } while (!buffered_bytes.compare_exchange_weak(cur, cur + n));
    return true;
  }

  // One parser per I/O thread (it owns simdjson state and scratch buffers), rebuilt when the
  // policy's rules change.
  EventParser& thread_parser(const IngestPolicy& p) {
    thread_local std::unique_ptr<EventParser> parser;
    thread_local const Impl* owner = nullptr;
    thread_local uint64_t generation = 0;
    if (!parser || owner != this || generation != p.generation) {
      parser = std::make_unique<EventParser>(p.rules);
      owner = this;
      generation = p.generation;
    }
    return *parser;
  }

  void accept(size_t which);
  // Closes the oldest idle connection (asynchronously); false when none is idle.
  bool evict_idle();
  // Closes (asynchronously) the idle connections whose wait has ended, then runs again after
  // idle_sweep_period.
  void sweep_idle();
};

// ---------------------------------------------------------------------------------------------
// One connection. Steps are do_x/on_x pairs; every handler holds shared_from_this().

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, IngestServer::Impl& server, bool serves_ingest, bool serves_admin)
      : stream_(std::move(socket)),
        server_(server),
        serves_ingest_(serves_ingest),
        serves_admin_(serves_admin) {
    buffer_.reserve(kReadBufferReserve);
    ++server_.connections;
    beast::error_code ec;  // a peer that already left has no address; the session ends soon
    // Synchronous writes (finish_response) must never block the I/O thread: they report
    // would_block instead, and the rest is written asynchronously.
    stream_.socket().non_blocking(true, ec);
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) peer_ = ep.address().to_string();
  }
  ~Session() {
    leave_idle_list();
    release_buffer();
    --server_.connections;
  }

  // Runs on the session's strand (posted by evict_idle): closes the connection if it is still
  // waiting for a request. A request that began meanwhile goes on (the limit overshoots by one).
  void evict() {
    beast::error_code ignored;  // the socket may already be closed: nothing to cancel then
    if (waiting_idle_) stream_.socket().cancel(ignored);
  }
  // Called by evict_idle with idle_mu held, after it took this session off the idle list.
  void unlisted_by_evictor() { idle_listed_ = false; }

  auto executor() { return stream_.get_executor(); }

  void run() {
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&Session::do_wait_request, shared_from_this()));
  }

 private:
  // Idle (keep-alive) wait: the first bytes of the next request within idle_timeout.
  // A new connection gets header_timeout for its first request (a client that connects and says
  // nothing is not a keep-alive client); later requests get idle_timeout.
  void do_wait_request() {
    if (buffer_.size() > 0) return do_read_header();  // pipelined request already buffered
    const auto wait = first_request_ ? server_.config.server.header_timeout
                                     : server_.config.server.idle_timeout;
    first_request_ = false;
    waiting_idle_ = true;
    enter_idle_list(server_.clock.steady_ms() + wait.count());  // sweep_idle ends the wait
    stream_.async_read_some(buffer_.prepare(kReadBufferReserve),
                            beast::bind_front_handler(&Session::on_first_bytes, shared_from_this()));
  }

  void on_first_bytes(beast::error_code ec, size_t n) {
    waiting_idle_ = false;
    leave_idle_list();
    if (ec) return do_close();  // idle timeout, eviction, peer closed or reset: nothing to answer
    buffer_.commit(n);
    do_read_header();
  }

  void enter_idle_list(int64_t deadline_ms) {
    std::lock_guard lock(server_.idle_mu);
    if (idle_listed_) return;
    idle_it_ = server_.idle.insert(server_.idle.end(), {weak_from_this(), deadline_ms});
    idle_listed_ = true;
  }
  void leave_idle_list() {
    std::lock_guard lock(server_.idle_mu);
    if (!idle_listed_) return;
    server_.idle.erase(idle_it_);
    idle_listed_ = false;
  }

  void do_read_header() {
    origin_.clear();
    policy_.reset();
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    // No body limit while reading the head: the size check (413) comes after the origin and
    // key checks (contract order); do_read_body sets the real limit.
    parser_->body_limit(boost::none);
    request_started_ms_ = server_.clock.steady_ms();
    // Usually the whole head (and body) came with the first read: parse it here, without a
    // deadline timer and a second trip through the scheduler.
    beast::error_code ec;
    if (parse_buffered(ec, false)) return on_header(ec, 0);
    arm_deadline(server_.config.server.header_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::on_header, shared_from_this()));
  }

  // Feeds parser_ what buffer_ already holds. True when that completed the head (whole=false)
  // or the whole message (whole=true), or failed (ec set); false when more bytes must be read.
  bool parse_buffered(beast::error_code& ec, bool whole) {
    for (;;) {
      if (whole ? parser_->is_done() : parser_->is_header_done()) return true;
      if (buffer_.size() == 0) return false;
      const size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == http::error::need_more) {
        ec = {};
        return false;
      }
      if (ec) return true;
      if (used == 0) return false;
    }
  }

  void on_header(beast::error_code ec, size_t) {
    const bool timed_out = disarm_deadline() && ec == asio::error::operation_aborted;
    if (ec == http::error::end_of_stream) return do_close();
    if (ec == http::error::header_limit)
      return send_error(http::status::request_header_fields_too_large, "request header too large",
                        false);
    if (timed_out) return send_error(http::status::request_timeout, "request header timeout", false);
    if (ec) return send_error(http::status::bad_request, "malformed request", false);

    auto& req = parser_->get();
    const std::string_view target(req.target().data(), req.target().size());
    const std::string_view path = path_of(target);
    const bool is_events = path == "/v1/events";

    if (serves_ingest_ && is_events) {
      policy_ = server_.policy.load();
      origin_ = std::string(req[http::field::origin]);
      if (req.method() == http::verb::options) return preflight();
      if (req.method() != http::verb::post)
        return send_error(http::status::method_not_allowed, "method not allowed: use POST");
      // Per-client rate (server.per_client_rate) before any other work: a flood costs one
      // bucket lookup per request.
      if (server_.rate_limiter.enabled()) {
        uint64_t wait_s = 1;
        const std::string client =
            client_address(peer_, req["X-Forwarded-For"], server_.trusted_proxies);
        if (!server_.rate_limiter.allow(client, &wait_s))
          return send_error(http::status::too_many_requests,
                            "too many requests from this client (server.per_client_rate)", true,
                            std::to_string(wait_s));
      }
      // Checks in contract order: origin, key, size, type.
      if (!policy_->origin_allowed(origin_))
        return send_error(http::status::forbidden, "origin not allowed");
      if (!policy_->key_ok(req[http::field::authorization], target))
        return send_error(http::status::unauthorized, "missing or unknown ingest key");
      if (auto len = parser_->content_length();
          len && *len > server_.config.server.max_body_bytes)
        return send_error(http::status::payload_too_large, "body exceeds server.max_body_bytes",
                          false);
      if (!accepted_media_type(req[http::field::content_type]))
        return send_error(http::status::unsupported_media_type,
                          "unsupported content type: use application/json, "
                          "application/x-ndjson or text/plain");
      if (server_.refusing.load())
        return send_error(http::status::service_unavailable, "shutting down", true, true);
      // Global memory bound (server.max_buffered_bytes): hold the body's size before reading it.
      const uint64_t need =
          parser_->content_length().value_or(server_.config.server.max_body_bytes);
      if (!server_.take_buffer(need))
        return send_error(http::status::service_unavailable,
                          "server busy: too many request bodies in memory", true, true);
      buffer_held_ = need;
      return do_read_body();
    }
    if (serves_admin_ && !is_events && req.method() == http::verb::get) return admin(path);
    if (serves_admin_ && path == "/v1/dead-letters/replay" && req.method() == http::verb::post) {
      admin_post_ = true;
      return do_read_body();
    }
    if (serves_admin_ && !is_events)
      return send_error(http::status::method_not_allowed, "method not allowed");
    send_error(http::status::not_found, "not found");
  }

  void do_read_body() {
    parser_->body_limit(server_.config.server.max_body_bytes);
    auto& body = parser_->get().body();
    if (auto len = parser_->content_length()) body.reserve(*len + kBodyPadding);
    if (iequals(parser_->get()[http::field::expect], "100-continue")) {
      arm_deadline(server_.config.server.body_timeout);
      // The client waits for this interim answer before sending the body (curl does).
      continue_ = std::make_unique<http::response<http::empty_body>>(http::status::continue_, 11);
      return http::async_write(stream_, *continue_,
                               beast::bind_front_handler(&Session::on_continue_sent,
                                                         shared_from_this()));
    }
    do_read_body_after_continue();
  }

  void on_continue_sent(beast::error_code ec, size_t) {
    continue_armed_ = true;  // the body deadline armed before the interim answer keeps running
    if (ec) {  // peer went away (or the body deadline passed)
      disarm_deadline();
      return do_close();
    }
    do_read_body_after_continue();
  }

  void do_read_body_after_continue() {
    const bool armed = std::exchange(continue_armed_, false);
    beast::error_code ec;
    if (parse_buffered(ec, true)) return on_body(ec, 0);  // on_body disarms a 100-continue deadline
    if (!armed) arm_deadline(server_.config.server.body_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::on_body, shared_from_this()));
  }

  void on_body(beast::error_code ec, size_t) {
    const bool timed_out = disarm_deadline() && ec == asio::error::operation_aborted;
    if (ec == http::error::body_limit)
      return send_error(http::status::payload_too_large, "body exceeds server.max_body_bytes",
                        false);
    if (timed_out) return send_error(http::status::request_timeout, "request body timeout", false);
    if (ec) return send_error(http::status::bad_request, "malformed request body", false);
    if (admin_post_) {
      admin_post_ = false;
      if (!server_.hooks.replay_dead_letters)
        return send_error(http::status::not_found, "not found");
      auto [status, body] = server_.hooks.replay_dead_letters(parser_->get().body());
      return send(static_cast<http::status>(status), std::move(body), true);
    }
    process_events();
  }

  void process_events() {
    auto& body = parser_->get().body();
    const bool padded = body.capacity() - body.size() >= kBodyPadding;
    // parsed_ keeps its items from the last request: the parser reuses them and their strings.
    ParseOptions opts{server_.clock.now_ms(), false};
    opts.max_items = server_.config.server.max_events_per_request;
    server_.thread_parser(*policy_).parse_body(body, padded, opts, parsed_);
    if (parsed_.status == BodyStatus::kTooManyItems)
      return send_error(http::status::payload_too_large,
                        "too many events in one body (server.max_events_per_request is " +
                            std::to_string(opts.max_items) + ")",
                        false);
    if (parsed_.status != BodyStatus::kOk) {
      server_.metrics.events_received.inc();
      server_.metrics.events_rejected.with("invalid_json").inc();
      return send_error(http::status::bad_request,
                        parsed_.error.empty() ? "invalid_json: body does not parse" : parsed_.error);
    }
    auto write = std::make_unique<WriteRequest>();
    std::string& scratch = record_scratch_;
    for (const auto& item : parsed_.items) {
      if (!item.ok) continue;
      scratch.clear();
      encode_record(item.event, scratch);
      write->add(scratch, dedup_fingerprint(item.event.rule_id, item.event.event_id));
    }
    if (write->records() == 0) return respond_events(nullptr);
    auto self = shared_from_this();
    write->done = [self](std::unique_ptr<WriteRequest> done) {
      std::shared_ptr<WriteRequest> shared(std::move(done));
      asio::post(self->stream_.get_executor(), [self, shared] { self->on_written(*shared); });
    };
    ++server_.in_flight;
    in_flight_ = true;
    if (!server_.pipeline.submit(write)) {
      release_in_flight();
      return send_error(http::status::service_unavailable, "ingest queue full", true, true);
    }
  }

  void on_written(WriteRequest& w) {
    release_in_flight();
    switch (w.status) {
      case WriteStatus::kOk: return respond_events(&w);
      case WriteStatus::kSpoolFull:
        return send_error(http::status::service_unavailable, "spool full", true, true);
      case WriteStatus::kShuttingDown:
        return send_error(http::status::service_unavailable, "shutting down", true, true);
      case WriteStatus::kWriteFailed:
        return send_error(http::status::service_unavailable, "spool write failed", true, true);
    }
  }

  void release_in_flight() {
    if (in_flight_) {
      in_flight_ = false;
      --server_.in_flight;
    }
  }

  // 202 with counts, or 400 when every event was rejected. `w` is null when nothing was written.
  void respond_events(const WriteRequest* w) {
    uint64_t accepted = 0, duplicates = 0, rejected = 0;
    const int64_t now_ms = server_.clock.now_ms();
    std::string rej = "[";
    size_t record = 0;
    for (const auto& item : parsed_.items) {
      if (item.ok) {
        const bool dup = w && w->duplicate[record];
        (dup ? duplicates : accepted)++;
        server_.ledger.record(item.event.event_id, item.event.rule_id,
                              dup ? EventState::kDuplicate : EventState::kPending, now_ms);
        ++record;
        continue;
      }
      ++rejected;
      server_.metrics.events_rejected.with(reject_reason_name(item.reason)).inc();
      if (rej.size() > 1) rej.push_back(',');
      rej += "{\"index\":";
      rej += std::to_string(item.index);
      rej += ",\"error\":";
      append_json_string(rej, item.error);
      rej += "}";
    }
    rej += "]";
    auto& m = server_.metrics;
    m.events_received.inc(accepted + duplicates + rejected);
    m.events_accepted.inc(accepted);
    m.events_duplicate.inc(duplicates);
    std::string body;
    const bool ok = accepted + duplicates > 0;
    body.reserve(rej.size() + 64);
    body += "{";
    if (!ok) body += "\"error\":\"every event was rejected\",";
    body += "\"accepted\":" + std::to_string(accepted) +
            ",\"duplicates\":" + std::to_string(duplicates) + ",\"rejected\":" + rej + "}";
    send(ok ? http::status::accepted : http::status::bad_request, std::move(body), true);
  }

  void preflight() {
    if (!policy_->origin_allowed(origin_))
      return send_error(http::status::forbidden, "origin not allowed");
    response_ = {};
    response_.result(http::status::no_content);
    add_cors_headers();
    if (policy_->cors_listed(origin_)) {
      response_.set(http::field::access_control_allow_methods, "POST");
      response_.set(http::field::access_control_allow_headers, "Content-Type, Authorization");
      response_.set(http::field::access_control_max_age, "600");
    }
    finish_response(true);
  }

  void admin(std::string_view path) {
    auto& hooks = server_.hooks;
    if (path == "/metrics") {
      response_ = {};
      response_.result(http::status::ok);
      response_.set(http::field::content_type, "text/plain; version=0.0.4");
      response_.body() = hooks.metrics_text ? hooks.metrics_text() : std::string();
      return finish_response(true);
    }
    if (path == "/healthz") return send(http::status::ok, "{\"status\":\"ok\"}", true);
    if (path == "/readyz") {
      std::string reason = hooks.not_ready_reason ? hooks.not_ready_reason() : std::string();
      if (reason.empty()) return send(http::status::ok, "{\"status\":\"ready\"}", true);
      std::string b = "{\"error\":\"not ready\",\"reason\":";
      append_json_string(b, reason);
      b += "}";
      return send(http::status::service_unavailable, std::move(b), true);
    }
    if (path == "/v1/dead-letters" && hooks.dead_letters_json)
      return send(http::status::ok, hooks.dead_letters_json(), true);
    if (path == "/v1/status")
      return send(http::status::ok, hooks.status_json ? hooks.status_json() : "{}", true);
    constexpr std::string_view kEventPrefix = "/v1/events/";
    if (path.substr(0, kEventPrefix.size()) == kEventPrefix && hooks.event_status) {
      std::string id(path.substr(kEventPrefix.size()));
      if (auto found = hooks.event_status(id)) return send(http::status::ok, std::move(*found), true);
      return send_error(http::status::not_found, "unknown event");
    }
    send_error(http::status::not_found, "not found");
  }

  void add_cors_headers() {
    if (!serves_ingest_ || !policy_ || origin_.empty() || policy_->cors_origins.empty()) return;
    response_.set(http::field::vary, "Origin");
    if (policy_->cors_listed(origin_))
      response_.set(http::field::access_control_allow_origin, policy_->cors_any ? "*" : origin_);
  }

  void send_error(http::status status, std::string_view message, bool keep_alive = true,
                  bool retry_after = false) {
    send_error(status, message, keep_alive,
               retry_after ? std::string(kRetryAfterSeconds) : std::string());
  }
  // retry_after: the Retry-After value in seconds; empty: no header.
  void send_error(http::status status, std::string_view message, bool keep_alive,
                  const std::string& retry_after) {
    response_ = {};
    response_.result(status);
    response_.set(http::field::content_type, "application/json");
    if (!retry_after.empty()) response_.set(http::field::retry_after, retry_after);
    response_.body() = error_body(message);
    add_cors_headers();
    finish_response(keep_alive);
  }

  void send(http::status status, std::string body, bool keep_alive) {
    response_ = {};
    response_.result(status);
    response_.set(http::field::content_type, "application/json");
    response_.body() = std::move(body);
    add_cors_headers();
    finish_response(keep_alive);
  }

  void finish_response(bool keep_alive) {
    bool request_keep_alive = parser_ && parser_->is_header_done() && parser_->get().keep_alive();
    // After an unread body (refused before reading it) the connection cannot be reused.
    bool body_pending = parser_ && parser_->is_header_done() && !parser_->is_done();
    keep_alive_ = keep_alive && request_keep_alive && !body_pending;
    if (parser_ && parser_->is_header_done()) response_.version(parser_->get().version());
    response_.keep_alive(keep_alive_);
    response_.set(http::field::server, "capi-relay");
    response_.prepare_payload();
    const int code = static_cast<int>(response_.result_int());
    if (serves_ingest_ && parser_ && parser_->is_header_done() &&
        path_of(std::string_view(parser_->get().target().data(), parser_->get().target().size())) ==
            "/v1/events") {
      server_.metrics.ingest_requests.with(std::to_string(code)).inc();
      server_.metrics.ingest_request_duration.observe(
          static_cast<double>(server_.clock.steady_ms() - request_started_ms_) / 1000.0);
    }
    // Most answers fit the socket's send buffer: written here at once, they need neither a
    // write timeout nor an asynchronous write. What does not fit goes on asynchronously.
    serializer_.emplace(response_);
    beast::error_code ec;
    while (!serializer_->is_done()) {
      http::write_some(stream_.socket(), *serializer_, ec);
      if (ec) break;
    }
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      stream_.expires_after(server_.config.server.body_timeout);
      write_timeout_armed_ = true;
      return http::async_write(stream_, *serializer_,
                               beast::bind_front_handler(&Session::on_write, shared_from_this()));
    }
    on_write(ec, 0);
  }

  void on_write(beast::error_code ec, size_t) {
    serializer_.reset();
    if (write_timeout_armed_) {  // else the next idle wait would inherit it
      stream_.expires_never();
      write_timeout_armed_ = false;
    }
    release_buffer();
    // A body of many events leaves large item buffers behind; an idle connection keeps none.
    if (parsed_.items.capacity() > kKeepItemsCapacity) parsed_ = ParsedBody{};
    if (ec) return do_close();  // peer went away; nothing more to tell it
    if (!keep_alive_) return do_linger();
    parser_.reset();
    do_wait_request();
  }

  // Request deadlines (header_timeout, body_timeout). beast::tcp_stream's own timeout closes the
  // socket, which leaves no way to answer 408; this timer only cancels the pending operation, so
  // the session can still write the 408 with its JSON reason. Runs on the session's strand.
  void arm_deadline(std::chrono::milliseconds d) {
    stream_.expires_never();
    timed_out_ = false;
    const uint64_t gen = ++deadline_gen_;
    deadline_.expires_after(d);
    deadline_.async_wait([self = shared_from_this(), gen](beast::error_code ec) {
      if (ec || gen != self->deadline_gen_) return;  // disarmed or re-armed meanwhile
      self->timed_out_ = true;
      beast::error_code ignored;  // nothing pending to cancel is fine
      self->stream_.socket().cancel(ignored);
    });
  }
  // Stops the deadline; true when it had fired (the pending operation was cancelled by it).
  bool disarm_deadline() {
    ++deadline_gen_;
    deadline_.cancel();
    const bool fired = timed_out_;
    timed_out_ = false;
    return fired;
  }

  // After a response that ends the connection: stop sending, then read and drop what the client
  // still sends for up to kLingerTime. Closing with unread input makes the kernel send a reset,
  // which can destroy the answer before a client that is still sending (a slow or oversized
  // request) has read it.
  void do_linger() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return do_close();
    stream_.expires_after(kLingerTime);
    do_linger_read();
  }
  void do_linger_read() {
    buffer_.consume(buffer_.size());
    stream_.async_read_some(buffer_.prepare(kLingerChunk),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->do_close();  // EOF, reset or kLingerTime
                              self->do_linger_read();
                            });
  }

  void release_buffer() {
    if (buffer_held_ > 0) {
      server_.buffered_bytes -= buffer_held_;
      buffer_held_ = 0;
    }
  }

  void do_close() {
    release_buffer();
    disarm_deadline();
    beast::error_code ec;
    // shutdown may fail when the peer already closed; the socket is released either way.
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  IngestServer::Impl& server_;
  bool serves_ingest_;
  bool serves_admin_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  std::optional<http::response_serializer<http::string_body>> serializer_;  // of response_
  std::unique_ptr<http::response<http::empty_body>> continue_;
  bool continue_armed_ = false;  // body deadline armed before a 100 Continue, still running
  std::string origin_;
  std::shared_ptr<const IngestPolicy> policy_;  // snapshot for the current ingest request
  ParsedBody parsed_;
  std::string record_scratch_;
  int64_t request_started_ms_ = 0;
  bool keep_alive_ = false;
  bool in_flight_ = false;
  bool admin_post_ = false;  // the body being read belongs to an admin POST
  std::string peer_;          // remote address (the client, unless behind a trusted proxy)
  uint64_t buffer_held_ = 0;  // bytes of server_.buffered_bytes this request holds
  bool first_request_ = true;
  bool waiting_idle_ = false;  // strand state: waiting for the first byte of a request
  // Guarded by server_.idle_mu: this session's place in server_.idle while listed.
  bool idle_listed_ = false;
  bool write_timeout_armed_ = false;  // finish_response's asynchronous write has a timeout
  std::list<IngestServer::Impl::IdleEntry>::iterator idle_it_;
  asio::steady_timer deadline_{stream_.get_executor()};  // see arm_deadline()
  uint64_t deadline_gen_ = 0;
  bool timed_out_ = false;
};

void IngestServer::Impl::accept(size_t which) {
  acceptors[which]->async_accept(
      asio::make_strand(io), [this, which](beast::error_code ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted) return;  // listener closed at shutdown
        if (!ec) {
          if (connections.load() >= config.server.max_connections && !evict_idle()) {
            beast::error_code ignored;  // over the limit and nobody idle: close at once
            socket.close(ignored);
          } else {
            bool ingest = which == 0;
            bool admin = which == 1 || shared_listener;
            std::make_shared<Session>(std::move(socket), *this, ingest, admin)->run();
          }
        } else {
          log::warn("ingest", "accept failed", {{"error", ec.message()}});
        }
        accept(which);
      });
}

bool IngestServer::Impl::evict_idle() {
  std::shared_ptr<Session> victim;
  {
    std::lock_guard lock(idle_mu);
    while (!idle.empty() && !victim) {
      victim = idle.front().session.lock();  // null: that session is being destroyed; skip it
      if (victim) victim->unlisted_by_evictor();
      idle.pop_front();
    }
  }
  if (!victim) return false;
  asio::post(victim->executor(), [victim] { victim->evict(); });
  return true;
}

void IngestServer::Impl::sweep_idle() {
  const int64_t now = clock.steady_ms();
  std::vector<std::shared_ptr<Session>> due;  // released after idle_mu (~Session takes it)
  {
    std::lock_guard lock(idle_mu);
    for (auto it = idle.begin(); it != idle.end();) {
      if (it->deadline_ms > now) {
        ++it;
        continue;
      }
      if (auto s = it->session.lock()) {  // null: being destroyed, and leaving the list itself
        s->unlisted_by_evictor();
        due.push_back(std::move(s));
        it = idle.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& s : due) asio::post(s->executor(), [s] { s->evict(); });
  idle_sweep.expires_after(idle_sweep_period);
  idle_sweep.async_wait([this](beast::error_code ec) {
    if (!ec) sweep_idle();
  });
}

IngestServer::IngestServer(const Config& config, WritePipeline& pipeline,
                           metrics::RelayMetrics& metrics, Clock& clock, EventLedger& ledger,
                           AdminHooks hooks)
    : impl_(std::make_unique<Impl>(config, pipeline, metrics, clock, ledger, std::move(hooks))) {}

IngestServer::~IngestServer() { stop(); }

Result<void> IngestServer::listen() {
  auto bind = [&](const std::string& address) -> Result<void> {
    auto ep = parse_endpoint(address);
    if (!ep) return Error{ep.error()};
    auto acc = std::make_unique<tcp::acceptor>(impl_->io);
    beast::error_code ec;
    acc->open(ep->protocol(), ec);
    if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acc->bind(*ep, ec);
    if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Error{"cannot listen on " + address + ": " + ec.message()};
    impl_->acceptors.push_back(std::move(acc));
    return {};
  };
  const auto& c = impl_->config;
  if (auto r = bind(c.server.listen); !r) return r;
  impl_->shared_listener = c.admin.listen == c.server.listen;
  if (!impl_->shared_listener)
    if (auto r = bind(c.admin.listen); !r) return r;
  return {};
}

uint16_t IngestServer::ingest_port() const {
  return impl_->acceptors.empty() ? 0 : impl_->acceptors[0]->local_endpoint().port();
}

uint16_t IngestServer::admin_port() const {
  if (impl_->shared_listener) return ingest_port();
  return impl_->acceptors.size() < 2 ? 0 : impl_->acceptors[1]->local_endpoint().port();
}

void IngestServer::start() {
  for (size_t i = 0; i < impl_->acceptors.size(); ++i) impl_->accept(i);
  // A wait ends at most a tenth of the shorter timeout late (and at most 1 s).
  const auto shortest = std::min(impl_->config.server.header_timeout, impl_->config.server.idle_timeout);
  impl_->idle_sweep_period = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(shortest) / 10,
                                        std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
  asio::post(impl_->io, [this] { impl_->sweep_idle(); });
  for (unsigned i = 0; i < impl_->threads_wanted; ++i)
    impl_->threads.emplace_back([this] {
      set_thread_name("ingest-io");
      impl_->io.run();
    });
}

void IngestServer::refuse_ingest() { impl_->refusing.store(true); }

void IngestServer::reload(const Config& config) {
  auto current = impl_->policy.load();
  impl_->policy.store(std::make_shared<const IngestPolicy>(config, current->generation + 1));
}

uint64_t IngestServer::requests_in_flight() const { return impl_->in_flight.load(); }

void IngestServer::stop() {
  if (!impl_) return;
  asio::post(impl_->io, [this] {
    for (auto& a : impl_->acceptors) {
      beast::error_code ec;  // closing an already closed acceptor is harmless
      a->close(ec);
    }
  });
  impl_->io.stop();
  for (auto& t : impl_->threads)
    if (t.joinable()) t.join();
  impl_->threads.clear();
}

}  // namespace capi_relay
