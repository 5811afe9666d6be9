#include "net/http_get.hpp"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <string_view>

#include <fmt/format.h>

#include "net/tcp_socket.hpp"

namespace porthole::detail {
namespace {

enum class Wait { ready, timeout, error };

// Waits for `events`, but never past the deadline -- even when bytes keep arriving.
Wait wait_for(int fd, short events, Deadline deadline) {
  for (;;) {
    if (expired(deadline)) return Wait::timeout;
    pollfd pfd{fd, events, 0};
    // Round up so that a wait of 0.4 ms does not become a busy poll(0) loop.
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    int n = ::poll(&pfd, 1, static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, 60000)));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Wait::error;
    }
    if (n == 0) continue;  // the loop head decides whether the deadline passed
    return Wait::ready;
  }
}

bool visible_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c > 0x20 && c < 0x7f;
  });
}

bool valid_request_path(std::string_view path) {
  return !path.empty() && path.front() == '/' && visible_ascii(path);
}

// A header line we write: a token name, a value of printable ASCII and inner blanks.
bool valid_header(std::string_view name, std::string_view value) {
  return !name.empty() && visible_ascii(name) && name.find(':') == std::string_view::npos &&
         std::all_of(value.begin(), value.end(), [](char ch) {
           auto c = static_cast<unsigned char>(ch);
           return c >= 0x20 && c < 0x7f;
         });
}

}  // namespace

Result<std::string> http_get(const HttpUrl& url, Deadline deadline, std::size_t max_body) {
  HttpRequest get;
  get.headers = {{"Accept", "text/xml, application/xml"}};
  auto answer = http_request(url, get, deadline, max_body);
  if (!answer) return answer.error();
  return std::move(answer->body);
}

// What http_request's two halves say when they fail: the method and URL first.
struct HttpFailure {
  std::string method;
  std::string where;
  Clock::time_point start;

  Error fail(Errc code, std::string_view message, int protocol_code = 0) const {
    return make_error(code, fmt::format("{} {}: {}", method, where, message), protocol_code);
  }
  Error cut_off(std::string_view during) const {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    return fail(Errc::timeout,
                fmt::format("cut off at the deadline after {} ms ({})", ms.count(), during));
  }
  Error sys_fail(std::string_view what) const {
    int err = errno;
    Errc code = (err == ECONNREFUSED || err == ECONNRESET || err == ENETUNREACH ||
                 err == EHOSTUNREACH || err == EPIPE)
                    ? Errc::no_service
                    : Errc::internal;
    return fail(code, fmt::format("{}: {}", what, std::strerror(err)));
  }
};

Result<HttpAnswer> http_request(const HttpUrl& url, const HttpRequest& request, Deadline deadline,
                                std::size_t max_body) {
  auto sent = HttpExchange::send(url, request, deadline);
  if (!sent) return sent.error();
  return sent->answer(deadline, max_body);
}

struct HttpExchange::State {
  HttpFailure says;
  TcpSocket sock;
  bool read_500 = false;
};

HttpExchange::HttpExchange(std::unique_ptr<State> state) : state_(std::move(state)) {}
HttpExchange::HttpExchange(HttpExchange&&) noexcept = default;
HttpExchange& HttpExchange::operator=(HttpExchange&&) noexcept = default;
HttpExchange::~HttpExchange() = default;

Result<HttpExchange> HttpExchange::send(const HttpUrl& url, const HttpRequest& request,
                                        Deadline deadline) {
  auto state = std::make_unique<State>();
  state->says = {std::string(printable_excerpt(request.method, 16)),
                 std::string(printable_excerpt(url.to_string())), Clock::now()};
  state->read_500 = request.read_500;
  const HttpFailure& says = state->says;

  if (!valid_request_path(url.path) || url.port == 0 || request.method.empty() ||
      !visible_ascii(request.method))
    return says.fail(Errc::usage, "not a request line we would send");
  for (const auto& [name, value] : request.headers)
    if (!valid_header(name, value))
      return says.fail(Errc::usage,
                       fmt::format("not a header line we would send: '{}: {}'",
                                   printable_excerpt(name, 40), printable_excerpt(value, 120)));
  auto started = tcp_connect_start(url.host, url.port);
  if (!started) {
    if (started.error().code == Errc::usage)
      return says.fail(Errc::usage, "the host is not an IPv4 address");
    errno = started.error().protocol_code;
    return says.sys_fail(started.error().code == Errc::no_service ? "connect" : "socket");
  }
  state->sock = std::move(started).value();
  const int fd = state->sock.fd();
  const Deadline connect_deadline = request.connect_by ? std::min(deadline, *request.connect_by)
                                                       : deadline;
  switch (wait_for(fd, POLLOUT, connect_deadline)) {
    case Wait::timeout: return says.cut_off("connecting");
    case Wait::error: return says.sys_fail("poll");
    case Wait::ready: break;
  }
  if (int err = tcp_connect_error(state->sock); err != 0) {
    errno = err;
    return says.sys_fail("connect");
  }

  const std::string host = url.port == 80 ? url.host : fmt::format("{}:{}", url.host, url.port);
  std::string head = fmt::format(
      "{} {} HTTP/1.1\r\n"
      "Host: {}\r\n"
      "User-Agent: porthole UPnP/1.1\r\n",
      request.method, url.path, host);
  for (const auto& [name, value] : request.headers) head += fmt::format("{}: {}\r\n", name, value);
  if (!request.body.empty() || request.method == "POST")
    head += fmt::format("Content-Length: {}\r\n", request.body.size());
  head += "Connection: close\r\n\r\n";
  const std::string bytes = head.append(request.body);
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    switch (wait_for(fd, POLLOUT, deadline)) {
      case Wait::timeout: return says.cut_off("sending the request");
      case Wait::error: return says.sys_fail("poll");
      case Wait::ready: break;
    }
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return says.sys_fail("send");
    }
    sent += static_cast<std::size_t>(n);
  }
  return HttpExchange(std::move(state));
}

Result<HttpAnswer> HttpExchange::answer(Deadline deadline, std::size_t max_body) {
  if (!state_) return make_error(Errc::internal, "HTTP: this answer was read already");
  std::unique_ptr<State> state = std::move(state_);  // one answer per request
  const HttpFailure& says = state->says;
  const int fd = state->sock.fd();
  HttpResponseParser reader(max_body, state->read_500);
  char buf[4096];
  while (!reader.done()) {
    switch (wait_for(fd, POLLIN, deadline)) {
      case Wait::timeout: return says.cut_off(reader.progress());
      case Wait::error: return says.sys_fail("poll");
      case Wait::ready: break;
    }
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return says.sys_fail("recv");
    }
    Status st = n == 0 ? reader.finish_at_eof()
                       : reader.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    if (!st) return says.fail(st.error().code, st.error().message, st.error().protocol_code);
    if (n == 0) break;
  }
  return HttpAnswer{reader.status(), reader.take_body()};
}

}  // namespace porthole::detail
