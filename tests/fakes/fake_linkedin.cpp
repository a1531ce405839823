// FakeLinkedIn: a Beast HTTP/1.1 server on 127.0.0.1:0 with its own I/O thread. Each accepted
// connection is one coroutine that reads requests in a keep-alive loop, records them and answers
// with the scripted responder. With tls, a self-signed certificate for 127.0.0.1/localhost is
// generated at start-up (OpenSSL EVP_PKEY + X509), so a test can trust it via ca_file.
#include "fakes/fake_linkedin.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <random>
#include <stdexcept>
#include <thread>

namespace capi_relay::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

struct CertAndKey {
  std::string cert_pem;
  std::string key_pem;
};

std::string bio_to_string(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

// A self-signed certificate (CA:TRUE, so it can be its own trust anchor) for 127.0.0.1 and
// localhost, valid from one hour ago for one day.
CertAndKey make_self_signed() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (key == nullptr) throw std::runtime_error("EVP_EC_gen failed");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), static_cast<long>(std::random_device{}() >> 1));
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  const std::pair<int, const char*> exts[] = {
      {NID_basic_constraints, "critical,CA:TRUE"},
      {NID_key_usage, "critical,digitalSignature,keyCertSign"},
      {NID_ext_key_usage, "serverAuth"},
      {NID_subject_key_identifier, "hash"},
      {NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost"}};
  for (const auto& [nid, value] : exts) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (ext == nullptr) throw std::runtime_error("X509V3_EXT_conf_nid failed");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert, key, EVP_sha256()) == 0) throw std::runtime_error("X509_sign failed");
  CertAndKey out;
  BIO* cb = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(cb, cert);
  out.cert_pem = bio_to_string(cb);
  BIO_free(cb);
  BIO* kb = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(kb, key, nullptr, nullptr, 0, nullptr, nullptr);
  out.key_pem = bio_to_string(kb);
  BIO_free(kb);
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

}  // namespace

struct FakeLinkedIn::Impl {
  bool tls = false;
  CertAndKey cert;
  std::unique_ptr<asio::ssl::context> ssl;
  mutable std::mutex mu;  // responder, requests
  Responder responder = &FakeLinkedIn::accept_all;
  std::vector<FakeRequest> requests;
  std::atomic<size_t> connections{0};
  uint16_t port = 0;
  std::unique_ptr<asio::io_context> ioc;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::thread thread;

  FakeResponse respond(const FakeRequest& req) {
    Responder r;
    {
      std::lock_guard lock(mu);
      requests.push_back(req);
      r = responder;
    }
    return r(req);
  }

  template <class Stream>
  asio::awaitable<void> serve(Stream& stream, tcp::socket& socket) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(64ull << 20);
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, kNoThrow);
      if (ec) co_return;  // peer closed (or garbage): end of this connection
      http::request<http::string_body> in = parser.release();
      FakeRequest req;
      req.method = std::string(in.method_string());
      req.target = std::string(in.target());
      for (const auto& f : in) {
        std::string name(f.name_string());
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        req.headers[name] = std::string(f.value());
      }
      req.body = std::move(in.body());
      FakeResponse resp = respond(req);
      if (resp.delay_ms > 0) {
        asio::steady_timer timer(co_await asio::this_coro::executor);
        timer.expires_after(std::chrono::milliseconds(resp.delay_ms));
        co_await timer.async_wait(kNoThrow);
      }
      if (resp.drop_connection) {
        boost::system::error_code ignored;
        socket.shutdown(tcp::socket::shutdown_both, ignored);
        socket.close(ignored);
        co_return;
      }
      http::response<http::string_body> out{static_cast<http::status>(resp.status), 11};
      out.set(http::field::server, "fake-linkedin");
      out.set(http::field::content_type, "application/json");
      for (const auto& [k, v] : resp.headers) out.set(k, v);
      out.body() = std::move(resp.body);
      out.keep_alive(in.keep_alive());
      out.prepare_payload();
      auto [wec, w] = co_await http::async_write(stream, out, kNoThrow);
      if (wec || !out.keep_alive()) co_return;
    }
  }

  asio::awaitable<void> session(tcp::socket socket) {
    if (!tls) {
      beast::tcp_stream stream(std::move(socket));
      co_await serve(stream, stream.socket());
      co_return;
    }
    beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), *ssl);
    auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kNoThrow);
    if (ec) co_return;  // e.g. the client refused our certificate: nothing to serve
    co_await serve(stream, beast::get_lowest_layer(stream).socket());
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor->async_accept(kNoThrow);
      if (ec) co_return;  // acceptor closed: shutting down
      connections.fetch_add(1);
      asio::co_spawn(*ioc, session(std::move(socket)), asio::detached);
    }
  }
};

FakeLinkedIn::FakeLinkedIn(bool tls) : impl_(std::make_unique<Impl>()) {
  impl_->tls = tls;
  if (tls) {
    impl_->cert = make_self_signed();
    impl_->ssl = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    impl_->ssl->use_certificate_chain(asio::buffer(impl_->cert.cert_pem));
    impl_->ssl->use_private_key(asio::buffer(impl_->cert.key_pem), asio::ssl::context::pem);
  }
  impl_->ioc = std::make_unique<asio::io_context>(1);
  impl_->acceptor = std::make_unique<tcp::acceptor>(
      *impl_->ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  impl_->port = impl_->acceptor->local_endpoint().port();
  asio::co_spawn(*impl_->ioc, impl_->accept_loop(), asio::detached);
  impl_->thread = std::thread([impl = impl_.get()] { impl->ioc->run(); });
}

FakeLinkedIn::~FakeLinkedIn() {
  impl_->ioc->stop();
  impl_->thread.join();
  // Destroying the io_context destroys the suspended session coroutines (and their sockets)
  // while the rest of Impl is still alive.
  impl_->acceptor.reset();
  impl_->ioc.reset();
}

uint16_t FakeLinkedIn::port() const { return impl_->port; }

std::string FakeLinkedIn::base_url() const {
  return std::string(impl_->tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port());
}

std::string FakeLinkedIn::cert_pem() const { return impl_->cert.cert_pem; }

void FakeLinkedIn::set_responder(Responder r) {
  std::lock_guard lock(impl_->mu);
  impl_->responder = std::move(r);
}

std::vector<FakeRequest> FakeLinkedIn::requests() const {
  std::lock_guard lock(impl_->mu);
  return impl_->requests;
}

size_t FakeLinkedIn::request_count() const {
  std::lock_guard lock(impl_->mu);
  return impl_->requests.size();
}

size_t FakeLinkedIn::connection_count() const { return impl_->connections.load(); }

void FakeLinkedIn::clear() {
  std::lock_guard lock(impl_->mu);
  impl_->requests.clear();
}

FakeResponse FakeLinkedIn::accept_all(const FakeRequest& req) {
  FakeResponse r;
  if (req.method != "POST" || req.target.rfind("/rest/conversionEvents", 0) != 0) {
    r.status = 404;
    r.body = R"({"status":404,"message":"Not Found"})";
    return r;
  }
  const size_t n = count_elements(req.body);
  r.status = 200;
  r.body = "{\"elements\":[";
  for (size_t i = 0; i < n; ++i) r.body += i == 0 ? "{\"status\":201}" : ",{\"status\":201}";
  r.body += "]}";
  return r;
}

size_t FakeLinkedIn::count_elements(const std::string& body) {
  // A string-aware scan: find "elements", then count the values at depth 1 of its array.
  const size_t key = body.find("\"elements\"");
  if (key == std::string::npos) return 0;
  size_t i = body.find('[', key);
  if (i == std::string::npos) return 0;
  size_t count = 0;
  int depth = 0;
  bool in_string = false;
  bool value_started = false;
  for (; i < body.size(); ++i) {
    const char c = body[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        if (depth == 1 && !value_started) value_started = true, ++count;
        break;
      case '[':
      case '{':
        if (depth == 1 && !value_started) value_started = true, ++count;
        ++depth;
        break;
      case ']':
      case '}':
        if (--depth == 0) return count;
        break;
      case ',':
        if (depth == 1) value_started = false;
        break;
      default:
        if (depth == 1 && !value_started && !std::isspace(static_cast<unsigned char>(c))) {
          value_started = true;
          ++count;
        }
    }
  }
  return 0;  // unterminated
}

}  // namespace capi_relay::testing
