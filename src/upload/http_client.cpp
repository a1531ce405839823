// HttpClient implementation: every Beast/Asio template of the client lives in this one
// translation unit (build time). One I/O thread runs one io_context; each request is a C++20
// coroutine that borrows an idle kept-alive connection (or opens one), writes the request, reads
// the response and gives the connection back when the server keeps it alive.
#include "capi_relay/upload/http_client.hpp"

#include "capi_relay/common/thread_name.hpp"
#include <openssl/ssl.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

namespace capi_relay {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// One TCP (optionally TLS) connection to the origin and its read buffer.
struct Connection {
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;

  Connection(asio::io_context& ioc, asio::ssl::context* ssl) {
    if (ssl != nullptr) {
      tls.emplace(ioc, *ssl);
    } else {
      plain.emplace(ioc);
    }
  }
  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  void close() {
    // No TLS close_notify: the peer learns of the close from the TCP FIN, and waiting for its
    // close_notify would only add a round trip (and a hang on a dead peer).
    boost::system::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().socket().close(ignored);
  }
};

class BeastHttpClient final : public HttpClient {
 public:
  BeastHttpClient(HttpClientOptions options, ParsedUrl origin,
                  std::unique_ptr<asio::ssl::context> ssl)
      : options_(std::move(options)),
        origin_(std::move(origin)),
        ssl_(std::move(ssl)),
        work_(asio::make_work_guard(ioc_)) {
    host_header_ = origin_.host.find(':') != std::string::npos ? "[" + origin_.host + "]"
                                                                 : origin_.host;
    if (origin_.port != (origin_.scheme == "https" ? 443 : 80)) {
      host_header_ += ":" + std::to_string(origin_.port);
    }
    thread_ = std::thread([this] {
      set_thread_name("upload-http");
      lower_thread_priority(10);  // as the uploader's thread: uploads yield to ingest
      ioc_.run();
    });
  }

  ~BeastHttpClient() override { shutdown(); }

  void async_request(HttpRequest request, Callback done) override {
    {
      std::lock_guard lock(mu_);
      if (!stopped_) {
        auto op = std::make_shared<Op>(Op{std::move(request), std::move(done)});
        asio::co_spawn(ioc_, run(op), [op](std::exception_ptr e, HttpResult result) {
          if (e) {
            result = HttpResult{};
            result.error = HttpErrorKind::kConnectError;
            result.error_message = "internal error in the HTTP client";
          }
          op->done(std::move(result));
        });
        return;
      }
    }
    HttpResult cancelled;
    cancelled.error = HttpErrorKind::kCancelled;
    cancelled.error_message = "HTTP client is shut down";
    done(std::move(cancelled));
  }

  HttpResult request(HttpRequest request) override {
    if (ioc_.get_executor().running_in_this_thread()) {
      HttpResult r;
      r.error = HttpErrorKind::kConnectError;
      r.error_message = "blocking request issued from the HTTP client's own thread";
      return r;
    }
    std::promise<HttpResult> promise;
    auto future = promise.get_future();
    async_request(std::move(request),
                  [&promise](HttpResult r) { promise.set_value(std::move(r)); });
    return future.get();
  }

  void shutdown() override {
    {
      std::lock_guard lock(mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    asio::post(ioc_, [this] {
      shutting_down_ = true;
      for (auto& c : idle_) c->close();
      idle_.clear();
      for (Connection* c : active_) c->close();
      for (tcp::resolver* r : resolvers_) r->cancel();
    });
    work_.reset();
    if (thread_.joinable()) thread_.join();
  }

  uint64_t connections_opened() const override { return connections_opened_.load(); }
  const ParsedUrl& origin() const override { return origin_; }

 private:
  struct Op {
    HttpRequest request;
    Callback done;
  };

  static HttpResult failure(HttpErrorKind kind, std::string message) {
    HttpResult r;
    r.error = kind;
    r.error_message = std::move(message);
    return r;
  }

  // Opens a connection (resolve, connect, TLS handshake with verification) or fills `error`.
  asio::awaitable<std::unique_ptr<Connection>> open(HttpResult& error) {
    tcp::resolver resolver(ioc_);
    resolvers_.insert(&resolver);
    auto [rec, endpoints] =
        co_await resolver.async_resolve(origin_.host, std::to_string(origin_.port), kNoThrow);
    resolvers_.erase(&resolver);
    if (shutting_down_) {
      error = failure(HttpErrorKind::kCancelled, "HTTP client is shut down");
      co_return nullptr;
    }
    if (rec) {
      error = failure(HttpErrorKind::kConnectError, "resolve failed: " + rec.message());
      co_return nullptr;
    }
    auto conn = std::make_unique<Connection>(ioc_, ssl_.get());
    active_.insert(conn.get());
    struct Unregister {
      BeastHttpClient* self;
      Connection* c;
      ~Unregister() { self->active_.erase(c); }
    } unregister{this, conn.get()};

    conn->lowest().expires_after(options_.connect_timeout);
    auto [cec, ep] = co_await conn->lowest().async_connect(endpoints, kNoThrow);
    if (cec) {
      if (shutting_down_) {
        error = failure(HttpErrorKind::kCancelled, "HTTP client is shut down");
      } else if (cec == beast::error::timeout) {
        error = failure(HttpErrorKind::kTimeout, "connect timed out");
      } else {
        error = failure(HttpErrorKind::kConnectError, "connect failed: " + cec.message());
      }
      co_return nullptr;
    }
    connections_opened_.fetch_add(1);
    if (conn->tls) {
      SSL* ssl = conn->tls->native_handle();
      if (!is_ip_literal(origin_.host) &&
          SSL_set_tlsext_host_name(ssl, origin_.host.c_str()) != 1) {
        error = failure(HttpErrorKind::kTlsError, "cannot set SNI");
        co_return nullptr;
      }
      conn->tls->set_verify_mode(asio::ssl::verify_peer);
      // Checks DNS names and IP addresses against the certificate's SAN / CN.
      conn->tls->set_verify_callback(asio::ssl::host_name_verification(origin_.host));
      conn->lowest().expires_after(options_.connect_timeout);
      auto [hec] = co_await conn->tls->async_handshake(asio::ssl::stream_base::client, kNoThrow);
      if (hec) {
        if (shutting_down_) {
          error = failure(HttpErrorKind::kCancelled, "HTTP client is shut down");
        } else if (hec == beast::error::timeout) {
          error = failure(HttpErrorKind::kTimeout, "TLS handshake timed out");
        } else {
          std::string why = hec.message();
          const long verify = SSL_get_verify_result(ssl);
          if (verify != X509_V_OK) {
            why += std::string(" (certificate: ") + X509_verify_cert_error_string(verify) + ")";
          }
          error = failure(HttpErrorKind::kTlsError, "TLS handshake failed: " + why);
        }
        co_return nullptr;
      }
    }
    conn->lowest().expires_never();
    co_return conn;
  }

  template <class Stream>
  asio::awaitable<beast::error_code> exchange(Stream& stream, beast::flat_buffer& buffer,
                                              http::request<http::string_body>& req,
                                              http::response_parser<http::string_body>& parser) {
    auto [wec, written] = co_await http::async_write(stream, req, kNoThrow);
    if (wec) co_return wec;
    auto [rec, read] = co_await http::async_read(stream, buffer, parser, kNoThrow);
    co_return rec;
  }

  asio::awaitable<HttpResult> run(std::shared_ptr<Op> op) {
    const HttpRequest& in = op->request;
    const http::verb verb = http::string_to_verb(in.method);
    if (verb == http::verb::unknown) {
      co_return failure(HttpErrorKind::kConnectError, "unknown HTTP method");
    }
    http::request<http::string_body> req{verb, in.target, 11};
    req.set(http::field::host, host_header_);
    req.set(http::field::user_agent, options_.user_agent);
    for (const auto& [name, value] : in.headers) req.set(name, value);
    req.keep_alive(true);
    if (!in.body.empty() || verb == http::verb::post || verb == http::verb::put) {
      req.body() = in.body;
      req.prepare_payload();
    }

    for (int attempt = 0;; ++attempt) {
      if (shutting_down_) co_return failure(HttpErrorKind::kCancelled, "HTTP client is shut down");
      std::unique_ptr<Connection> conn;
      if (!idle_.empty()) {
        conn = std::move(idle_.back());
        idle_.pop_back();
      }
      const bool reused = conn != nullptr;
      if (!conn) {
        HttpResult error;
        conn = co_await open(error);
        if (!conn) co_return error;
      }
      active_.insert(conn.get());
      http::response_parser<http::string_body> parser;
      parser.body_limit(options_.max_response_bytes);
      conn->buffer.clear();
      conn->lowest().expires_after(options_.response_timeout);
      beast::error_code ec;
      if (conn->tls) {
        ec = co_await exchange(*conn->tls, conn->buffer, req, parser);
      } else {
        ec = co_await exchange(*conn->plain, conn->buffer, req, parser);
      }
      active_.erase(conn.get());
      if (!ec) {
        conn->lowest().expires_never();
        http::response<http::string_body> res = parser.release();
        HttpResult result;
        result.response.status = static_cast<int>(res.result_int());
        for (const auto& field : res) {
          std::string name(field.name_string());
          for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          result.response.headers[std::move(name)] = std::string(field.value());
        }
        result.response.body = std::move(res.body());
        if (res.keep_alive() && !shutting_down_ && idle_.size() < options_.max_idle_connections) {
          idle_.push_back(std::move(conn));
        } else {
          conn->close();
        }
        co_return result;
      }
      conn->close();
      if (shutting_down_) co_return failure(HttpErrorKind::kCancelled, "HTTP client is shut down");
      if (ec == beast::error::timeout) {
        co_return failure(HttpErrorKind::kTimeout, "no complete response within the timeout");
      }
      // A kept-alive connection the server closed in the meantime fails before any response
      // byte arrives: open a fresh one and send again, once.
      if (reused && attempt == 0 && !parser.got_some()) continue;
      co_return failure(HttpErrorKind::kConnectError, "connection failed: " + ec.message());
    }
  }

  HttpClientOptions options_;
  ParsedUrl origin_;
  std::string host_header_;
  std::unique_ptr<asio::ssl::context> ssl_;
  asio::io_context ioc_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  std::mutex mu_;        // stopped_
  bool stopped_ = false;
  std::atomic<uint64_t> connections_opened_{0};
  // I/O thread only:
  bool shutting_down_ = false;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::set<Connection*> active_;
  std::set<tcp::resolver*> resolvers_;
};

}  // namespace

Result<std::unique_ptr<HttpClient>> HttpClient::create(const HttpClientOptions& options) {
  auto url = parse_url(options.origin);
  if (!url) return Error{"invalid origin: " + url.error()};
  std::unique_ptr<asio::ssl::context> ssl;
  if (url->scheme == "http") {
    if (!is_loopback_host(url->host)) {
      return Error{"plain http is allowed only to loopback hosts"};
    }
  } else {
    ssl = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    boost::system::error_code ec;
    ssl->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                         asio::ssl::context::no_sslv3 | asio::ssl::context::no_compression,
                     ec);
    SSL_CTX_set_min_proto_version(ssl->native_handle(), TLS1_2_VERSION);
    ssl->set_default_verify_paths(ec);
    if (ec) return Error{"cannot load the system CA certificates: " + ec.message()};
    if (!options.ca_file.empty()) {
      ssl->load_verify_file(options.ca_file.string(), ec);
      if (ec) return Error{"cannot load ca_file " + options.ca_file.string() + ": " + ec.message()};
    }
    ssl->set_verify_mode(asio::ssl::verify_peer, ec);
  }
  ParsedUrl origin = std::move(url.value());
  origin.target = "/";
  return std::unique_ptr<HttpClient>(
      std::make_unique<BeastHttpClient>(options, std::move(origin), std::move(ssl)));
}

}  // namespace capi_relay
