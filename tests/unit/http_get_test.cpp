// http_get against fake HTTP servers on 127.0.0.1 (a thread in this process each).
// They play the routers a real miniupnpd cannot be made to imitate: liars, drips and
// servers that never finish.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "net/http_get.hpp"

using namespace porthole;
using namespace porthole::detail;
using namespace std::chrono_literals;

namespace {

// Serves one connection: reads the request head, then runs the script on the socket.
// The script must return once `stop` is set or the client has gone.
class FakeHttpServer {
 public:
  using Script = std::function<void(int fd, const std::atomic<bool>& stop)>;

  explicit FakeHttpServer(Script script) : script_(std::move(script)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(listen_fd_ >= 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
    REQUIRE(::listen(listen_fd_, 4) == 0);
    socklen_t len = sizeof(sa);
    REQUIRE(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
    port_ = ntohs(sa.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeHttpServer() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  HttpUrl url(std::string path = "/rootDesc.xml") const {
    return HttpUrl{"127.0.0.1", port_, std::move(path)};
  }
  std::uint16_t port() const { return port_; }
  std::string request() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return request_;
  }

 private:
  void serve() {
    int fd = -1;
    while (!stop_ && fd < 0) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 10) == 1) fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    }
    if (fd < 0) return;
    std::string req;
    char buf[1024];
    while (!stop_ && req.find("\r\n\r\n") == std::string::npos && req.size() < 8192) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 10) != 1) continue;
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      req.append(buf, static_cast<std::size_t>(n));
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      request_ = req;
    }
    if (!stop_) script_(fd, stop_);
    ::close(fd);
  }

  Script script_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::string request_;
  std::thread thread_;
};

// Sends all of `text`; false once the client has gone.
bool send_all(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Keeps the connection open, sending nothing, until the client closes it or the test
// ends.
void hold_open(int fd, const std::atomic<bool>& stop) {
  char buf[256];
  while (!stop) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10) == 1 && ::recv(fd, buf, sizeof(buf), 0) <= 0) return;
  }
}

FakeHttpServer::Script reply(std::string text) {
  return [text](int fd, const std::atomic<bool>&) { send_all(fd, text); };
}

Deadline in(std::chrono::milliseconds ms) { return Clock::now() + ms; }

const std::string kXml =
    "<?xml version=\"1.0\"?><root xmlns=\"urn:schemas-upnp-org:device-1-0\"></root>";

}  // namespace

TEST_CASE("http_get reads a Content-Length body and sends a sane request", "[http]") {
  FakeHttpServer server(reply("HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: " +
                              std::to_string(kXml.size()) + "\r\n\r\n" + kXml));
  auto body = http_get(server.url(), in(5s));
  REQUIRE(body.ok());
  CHECK(*body == kXml);
  std::string req = server.request();
  CHECK_THAT(req, Catch::StartsWith("GET /rootDesc.xml HTTP/1.1\r\n"));
  CHECK_THAT(req, Catch::Contains("\r\nHost: 127.0.0.1:" + std::to_string(server.port()) + "\r\n"));
  CHECK_THAT(req, Catch::Contains("\r\nConnection: close\r\n"));
}

TEST_CASE("http_get does not wait for the close once Content-Length is read", "[http]") {
  FakeHttpServer server([](int fd, const std::atomic<bool>& stop) {
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    hold_open(fd, stop);
  });
  auto body = http_get(server.url(), in(5s));
  REQUIRE(body.ok());
  CHECK(*body == "hello");
}

TEST_CASE("http_get reads up to the close without Content-Length", "[http]") {
  FakeHttpServer server(reply("HTTP/1.0 200 OK\nServer: old\n\n" + kXml));
  auto body = http_get(server.url(), in(5s));
  REQUIRE(body.ok());
  CHECK(*body == kXml);
}

TEST_CASE("http_get decodes a chunked body that arrives in pieces", "[http]") {
  FakeHttpServer server([](int fd, const std::atomic<bool>&) {
    const char* const kPieces[] = {
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "5\r\nhel",  // a chunk split across sends
        "lo\r\n",
        "7;name=value\r\n, world\r\n",  // a chunk extension
        "00000001\r\n!\r\n",            // leading zeros
        "0\r\nX-Trailer: yes\r\n\r\n",  // last chunk and a trailer
    };
    for (const char* piece : kPieces) {
      if (!send_all(fd, piece)) return;
      std::this_thread::sleep_for(5ms);
    }
  });
  auto body = http_get(server.url(), in(5s));
  REQUIRE(body.ok());
  CHECK(*body == "hello, world!");
}

TEST_CASE("http_get refuses a huge Content-Length without allocating it", "[http]") {
  FakeHttpServer server([](int fd, const std::atomic<bool>& stop) {
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2000000000\r\n\r\n<root>");
    hold_open(fd, stop);
  });
  auto body = http_get(server.url(), in(5s));
  REQUIRE_FALSE(body.ok());
  CHECK(body.error().code == Errc::internal);
  CHECK_THAT(body.error().message, Catch::Contains("2000000000"));
}

TEST_CASE("http_get refuses an absurd Content-Length without overflowing", "[http]") {
  FakeHttpServer server(
      reply("HTTP/1.1 200 OK\r\nContent-Length: 184467440737095516160000\r\n\r\nx"));
  auto body = http_get(server.url(), in(5s));
  REQUIRE_FALSE(body.ok());
  CHECK(body.error().code == Errc::internal);
}

TEST_CASE("http_get refuses chunk sizes of 0x80000000 and more", "[http]") {
  auto size = GENERATE(as<std::string>{}, "80000000", "FFFFFFFF", "ffffffffffffffffffff1",
                       "100000000");
  FakeHttpServer server([size](int fd, const std::atomic<bool>& stop) {
    send_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size + "\r\nabc");
    hold_open(fd, stop);
  });
  auto body = http_get(server.url(), in(5s));
  INFO(size);
  REQUIRE_FALSE(body.ok());
  CHECK(body.error().code == Errc::internal);
  CHECK_THAT(body.error().message, Catch::Contains("0x80000000"));
}

TEST_CASE("http_get cuts an endless chunked body at max_body", "[http]") {
  FakeHttpServer server([](int fd, const std::atomic<bool>& stop) {
    if (!send_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")) return;
    const std::string chunk = "400\r\n" + std::string(0x400, 'a') + "\r\n";
    while (!stop && send_all(fd, chunk)) {
    }
  });
  auto body = http_get(server.url(), in(5s), 64 * 1024);
  REQUIRE_FALSE(body.ok());
  CHECK(body.error().code == Errc::internal);
  CHECK_THAT(body.error().message, Catch::Contains("longer than 65536"));
}

TEST_CASE("http_get cuts an endless body without length at max_body", "[http]") {
  FakeHttpServer server([](int fd, const std::atomic<bool>& stop) {
    if (!send_all(fd, "HTTP/1.1 200 OK\r\n\r\n")) return;
    const std::string block(4096, 'b');
    while (!stop && send_all(fd, block)) {
    }
  });
  auto body = http_get(server.url(), in(5s), 32 * 1024);
  REQUIRE_FALSE(body.ok());
  CHECK(body.error().code == Errc::internal);
  CHECK_THAT(body.error().message, Catch::Contains("longer than 32768"));
}

TEST_CASE("http_get accepts a body of exactly max_body", "[http]") {
  FakeHttpServer server(
      reply("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'z')));
  auto body = http_get(server.url(), in(5s), 1000);
  REQUIRE(body.ok());
  CHECK(body->size() == 1000);
}

TEST_CASE("http_get gives up at the deadline when headers never end", "[http]") {
  FakeHttpServer server([](int fd, const std::atomic<bool>& stop) {
    send_all(fd, "HTTP/1.1 200 OK\r\nServer: slowpoke\r\n");
    hold_open(fd, stop);
  });
  auto start = Clock::now();
  auto body = http_get(server.url(), in(300ms));
  REQUIRE_FALSE(body.ok());
  CHECK(body.error().code == Errc::timeout);
  CHECK_THAT(body.error().message, Catch::Contains(server.url().to_string()));
  CHECK_THAT(body.error().message, Catch::Contains("header block incomplete"));
  CHECK(Clock::now() - start < 300ms + 3s);  // sanity bound only
}

TEST_CASE("http_get gives up at the deadline on a server that drips", "[http]") {
  // One byte every 20 ms keeps every single read short: only the overall deadline
  // stops it.
  FakeHttpServer server([](int fd, const std::atomic<bool>& stop) {
    if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")) return;
    while (!stop && send_all(fd, "x")) std::this_thread::sleep_for(20ms);
  });
  auto start = Clock::now();
  auto body = http_get(server.url(), in(300ms));
  REQUIRE_FALSE(body.ok());
  CHECK(body.error().code == Errc::timeout);
  CHECK_THAT(body.error().message, Catch::Contains("of 100000 body bytes"));
  CHECK(Clock::now() - start < 300ms + 3s);  // sanity bound only
}

TEST_CASE("http_get refuses a header block over the bound", "[http]") {
  FakeHttpServer server([](int fd, const std::atomic<bool>& stop) {
    if (!send_all(fd, "HTTP/1.1 200 OK\r\n")) return;
    while (!stop && send_all(fd, "X-Padding: " + std::string(100, 'p') + "\r\n")) {
    }
  });
  auto body = http_get(server.url(), in(5s));
  REQUIRE_FALSE(body.ok());
  CHECK(body.error().code == Errc::internal);
  CHECK_THAT(body.error().message, Catch::Contains("header block longer than 16384"));
}

TEST_CASE("http_get reports a status other than 200", "[http]") {
  FakeHttpServer server(reply("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"));
  auto body = http_get(server.url("/missing.xml"), in(5s));
  REQUIRE_FALSE(body.ok());
  CHECK(body.error().code == Errc::no_service);
  CHECK(body.error().protocol_code == 404);
  CHECK_THAT(body.error().message, Catch::Contains("/missing.xml"));
}

TEST_CASE("http_get refuses what is not HTTP", "[http]") {
  auto text = GENERATE(as<std::string>{}, "SSH-2.0-OpenSSH_9.2\r\n\r\n", "HTTP/2 200\r\n\r\n",
                       "HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
                       "HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n",
                       "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
                       "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n");
  FakeHttpServer server(reply(text));
  auto body = http_get(server.url(), in(5s));
  INFO(text);
  REQUIRE_FALSE(body.ok());
  CHECK(body.error().code == Errc::internal);
}

TEST_CASE("http_get reports a body cut short by the close", "[http]") {
  FakeHttpServer server(reply("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"));
  auto body = http_get(server.url(), in(5s));
  REQUIRE_FALSE(body.ok());
  CHECK(body.error().code == Errc::internal);
  CHECK_THAT(body.error().message, Catch::Contains("9 of 100"));

  FakeHttpServer chunked(reply("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"));
  auto cut = http_get(chunked.url(), in(5s));
  REQUIRE_FALSE(cut.ok());
  CHECK(cut.error().code == Errc::internal);
}

TEST_CASE("http_get reports a refused connection as no service", "[http]") {
  // Bind a port, then close it: nothing listens there.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
  socklen_t len = sizeof(sa);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
  std::uint16_t port = ntohs(sa.sin_port);
  ::close(fd);

  auto body = http_get(HttpUrl{"127.0.0.1", port, "/"}, in(5s));
  REQUIRE_FALSE(body.ok());
  CHECK(body.error().code == Errc::no_service);
}

TEST_CASE("http_get refuses to send a request it did not check", "[http]") {
  CHECK(http_get(HttpUrl{"router.lan", 80, "/"}, in(1s)).error().code == Errc::usage);
  CHECK(http_get(HttpUrl{"127.0.0.1", 80, "/a b"}, in(1s)).error().code == Errc::usage);
  CHECK(http_get(HttpUrl{"127.0.0.1", 80, "x"}, in(1s)).error().code == Errc::usage);
  CHECK(http_get(HttpUrl{"127.0.0.1", 0, "/"}, in(1s)).error().code == Errc::usage);
}
