#include "net/http_get.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string_view>

#include <fmt/format.h>

namespace porthole::detail {
namespace {

// A chunk-size line is hex digits plus optional extensions; nothing legitimate is long.
constexpr std::size_t kMaxChunkLine = 1024;
// Chunk sizes from here up are refused before any arithmetic could overflow.
constexpr std::uint64_t kChunkSizeLimit = 0x80000000;

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string_view strip_cr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

Error malformed(std::string message) { return make_error(Errc::internal, std::move(message)); }

// Decodes the answer incrementally, as bytes arrive: status line and headers, then the
// body by Content-Length, by chunks, or up to the close. Never holds more than
// kMaxHttpHeaderBytes of header or max_body of body.
class ResponseReader {
 public:
  explicit ResponseReader(std::size_t max_body) : max_body_(max_body) {}

  Status feed(std::string_view bytes) {
    received_ += bytes.size();
    in_.append(bytes);
    Status st = run();
    in_.erase(0, pos_);
    pos_ = 0;
    return st;
  }

  // The peer closed the connection.
  Status finish_at_eof() {
    switch (phase_) {
      case Phase::done:
        return ok_status();
      case Phase::until_close:
      case Phase::trailer:  // the last chunk arrived; a missing trailer end is harmless
        phase_ = Phase::done;
        return ok_status();
      case Phase::headers:
        return malformed(fmt::format("connection closed before the end of the headers "
                                     "({} bytes received)", received_));
      case Phase::length_body:
        return malformed(fmt::format("connection closed after {} of {} body bytes",
                                     body_.size(), content_length_));
      default:
        return malformed(fmt::format("connection closed inside the chunked body, after {} "
                                     "bytes", body_.size()));
    }
  }

  bool done() const { return phase_ == Phase::done; }
  std::string take_body() { return std::move(body_); }

  // Where a cut-off answer stopped, for the timeout message.
  std::string progress() const {
    switch (phase_) {
      case Phase::headers:
        return fmt::format("header block incomplete, {} bytes received", received_);
      case Phase::length_body:
        return fmt::format("{} of {} body bytes received", body_.size(), content_length_);
      default:
        return fmt::format("body incomplete, {} bytes received", body_.size());
    }
  }

 private:
  enum class Phase {
    headers, length_body, until_close, chunk_size, chunk_data, chunk_data_end, trailer, done
  };

  // The next complete line from in_ (without its line end), or nullopt for "need more".
  std::optional<std::string_view> next_line() {
    std::size_t nl = in_.find('\n', pos_);
    if (nl == std::string::npos) return std::nullopt;
    std::string_view line(in_.data() + pos_, nl - pos_);
    pos_ = nl + 1;
    return strip_cr(line);
  }
  std::size_t available() const { return in_.size() - pos_; }

  Status run() {
    for (;;) {
      switch (phase_) {
        case Phase::headers: {
          // Look for the empty line that ends the header block, within the bound.
          std::size_t end = std::string::npos;
          std::size_t scan = scan_;
          for (;;) {
            std::size_t nl = in_.find('\n', scan);
            if (nl == std::string::npos) break;
            std::string_view line = strip_cr(std::string_view(in_).substr(scan, nl - scan));
            if (line.empty() && scan != 0) {
              end = nl + 1;
              break;
            }
            scan = nl + 1;
          }
          scan_ = scan;
          if (end == std::string::npos) {
            if (in_.size() > kMaxHttpHeaderBytes)
              return malformed(fmt::format("header block longer than {} bytes",
                                           kMaxHttpHeaderBytes));
            return ok_status();
          }
          if (end > kMaxHttpHeaderBytes)
            return malformed(fmt::format("header block longer than {} bytes",
                                         kMaxHttpHeaderBytes));
          if (auto st = parse_head(std::string_view(in_).substr(0, end)); !st) return st;
          pos_ = end;
          break;
        }
        case Phase::length_body: {
          std::size_t take = std::min(available(), content_length_ - body_.size());
          body_.append(in_, pos_, take);
          pos_ += take;
          if (body_.size() == content_length_) {
            phase_ = Phase::done;
            break;
          }
          return ok_status();
        }
        case Phase::until_close: {
          if (body_.size() + available() > max_body_)
            return malformed(fmt::format("body longer than {} bytes", max_body_));
          body_.append(in_, pos_, std::string::npos);
          pos_ = in_.size();
          return ok_status();
        }
        case Phase::chunk_size: {
          auto line = next_line();
          if (!line) {
            if (available() > kMaxChunkLine) return malformed("chunk-size line too long");
            return ok_status();
          }
          if (line->size() > kMaxChunkLine) return malformed("chunk-size line too long");
          if (auto st = parse_chunk_size(*line); !st) return st;
          break;
        }
        case Phase::chunk_data: {
          std::size_t take = std::min<std::size_t>(available(), chunk_left_);
          body_.append(in_, pos_, take);
          pos_ += take;
          chunk_left_ -= take;
          if (chunk_left_ != 0) return ok_status();
          phase_ = Phase::chunk_data_end;
          break;
        }
        case Phase::chunk_data_end: {
          // The CRLF after each chunk's data (bare LF tolerated).
          if (available() == 0) return ok_status();
          if (in_[pos_] == '\n') {
            pos_ += 1;
          } else if (in_[pos_] == '\r') {
            if (available() < 2) return ok_status();
            if (in_[pos_ + 1] != '\n') return malformed("chunk data not followed by CRLF");
            pos_ += 2;
          } else {
            return malformed("chunk data not followed by CRLF");
          }
          phase_ = Phase::chunk_size;
          break;
        }
        case Phase::trailer: {
          auto line = next_line();
          if (!line) {
            if (trailer_bytes_ + available() > kMaxHttpHeaderBytes)
              return malformed("chunked trailer too long");
            return ok_status();
          }
          trailer_bytes_ += line->size() + 1;
          if (trailer_bytes_ > kMaxHttpHeaderBytes) return malformed("chunked trailer too long");
          if (line->empty()) phase_ = Phase::done;
          break;
        }
        case Phase::done:
          return ok_status();
      }
    }
  }

  Status parse_head(std::string_view head) {
    std::size_t nl = head.find('\n');
    std::string_view status_line = strip_cr(head.substr(0, nl));
    head.remove_prefix(nl + 1);

    // "HTTP/1.x SP 3DIGIT [SP reason]" (RFC 9112 s4).
    if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." ||
        (status_line[7] != '0' && status_line[7] != '1') || status_line[8] != ' ' ||
        (status_line.size() > 12 && status_line[12] != ' '))
      return malformed(fmt::format("not an HTTP/1.x answer: '{}'",
                                   printable_excerpt(status_line, 80)));
    int code = 0;
    for (std::size_t i = 9; i < 12; ++i) {
      char c = status_line[i];
      if (c < '0' || c > '9')
        return malformed(fmt::format("bad status line '{}'", printable_excerpt(status_line, 80)));
      code = code * 10 + (c - '0');
    }
    if (code != 200)
      return make_error(Errc::no_service,
                        fmt::format("HTTP status {} ('{}')", code,
                                    printable_excerpt(trim(status_line.substr(12)), 80)),
                        code);

    std::optional<std::uint64_t> content_length;
    bool chunked = false;
    while (!head.empty()) {
      nl = head.find('\n');
      std::string_view line = strip_cr(head.substr(0, nl));
      head.remove_prefix(nl == std::string_view::npos ? head.size() : nl + 1);
      if (line.empty()) break;
      std::size_t colon = line.find(':');
      if (colon == std::string_view::npos || line.front() == ' ' || line.front() == '\t')
        return malformed(fmt::format("bad header line '{}'", printable_excerpt(line, 80)));
      std::string_view name = trim(line.substr(0, colon));
      std::string_view value = trim(line.substr(colon + 1));
      if (iequals(name, "Content-Length")) {
        // Digits only; parsing stops growing past any body we could accept, so
        // "99999999999999999999999" is "too large", not an overflow.
        std::uint64_t v = 0;
        if (value.empty()) return malformed("empty Content-Length");
        for (char c : value) {
          if (c < '0' || c > '9')
            return malformed(fmt::format("bad Content-Length '{}'", printable_excerpt(value, 40)));
          if (v <= (std::uint64_t{1} << 40)) v = v * 10 + static_cast<std::uint64_t>(c - '0');
        }
        if (content_length && *content_length != v)
          return malformed("two different Content-Length headers");
        content_length = v;
      } else if (iequals(name, "Transfer-Encoding")) {
        if (!iequals(value, "chunked"))
          return malformed(fmt::format("unsupported Transfer-Encoding '{}'",
                                       printable_excerpt(value, 40)));
        chunked = true;
      }
    }

    // RFC 9112 s6.3: chunked wins over Content-Length.
    if (chunked) {
      phase_ = Phase::chunk_size;
    } else if (content_length) {
      if (*content_length > max_body_)
        return malformed(fmt::format("Content-Length {} is more than the {} bytes allowed",
                                     *content_length, max_body_));
      content_length_ = static_cast<std::size_t>(*content_length);
      body_.reserve(content_length_);
      phase_ = content_length_ == 0 ? Phase::done : Phase::length_body;
    } else {
      phase_ = Phase::until_close;
    }
    return ok_status();
  }

  // chunk-size [ ";" extensions ] (RFC 9112 s7.1): hex, refused at 0x80000000 and up.
  Status parse_chunk_size(std::string_view line) {
    std::uint64_t size = 0;
    std::size_t i = 0;
    for (; i < line.size(); ++i) {
      char c = lower(line[i]);
      unsigned digit = 0;
      if (c >= '0' && c <= '9')
        digit = static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f')
        digit = static_cast<unsigned>(c - 'a' + 10);
      else
        break;
      size = size * 16 + digit;  // size < 2^31 here, so this cannot overflow
      if (size >= kChunkSizeLimit)
        return malformed(fmt::format("chunk size {}... is 0x80000000 or more",
                                     printable_excerpt(line.substr(0, i + 1), 40)));
    }
    if (i == 0) return malformed(fmt::format("bad chunk size '{}'", printable_excerpt(line, 40)));
    std::string_view rest = trim(line.substr(i));
    if (!rest.empty() && rest.front() != ';')
      return malformed(fmt::format("bad chunk size '{}'", printable_excerpt(line, 40)));
    if (size == 0) {
      phase_ = Phase::trailer;
      return ok_status();
    }
    if (size > max_body_ - body_.size())
      return malformed(fmt::format("chunked body longer than {} bytes", max_body_));
    chunk_left_ = static_cast<std::size_t>(size);
    phase_ = Phase::chunk_data;
    return ok_status();
  }

  std::size_t max_body_;
  Phase phase_ = Phase::headers;
  std::string in_;        // bytes received and not consumed yet
  std::size_t pos_ = 0;   // consumed prefix of in_
  std::size_t scan_ = 0;  // headers: where the next unscanned line starts
  std::size_t received_ = 0;
  std::size_t content_length_ = 0;
  std::size_t chunk_left_ = 0;
  std::size_t trailer_bytes_ = 0;
  std::string body_;
};

class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

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

bool valid_request_path(std::string_view path) {
  if (path.empty() || path.front() != '/') return false;
  return std::all_of(path.begin(), path.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c > 0x20 && c < 0x7f;
  });
}

}  // namespace

Result<std::string> http_get(const HttpUrl& url, Deadline deadline, std::size_t max_body) {
  const auto start = Clock::now();
  const std::string where = printable_excerpt(url.to_string());
  auto fail = [&](Errc code, std::string_view message, int protocol_code = 0) {
    return make_error(code, fmt::format("GET {}: {}", where, message), protocol_code);
  };
  auto cut_off = [&](std::string_view during) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    return fail(Errc::timeout,
                fmt::format("cut off at the deadline after {} ms ({})", ms.count(), during));
  };
  auto sys_fail = [&](std::string_view what) {
    int err = errno;
    Errc code = (err == ECONNREFUSED || err == ECONNRESET || err == ENETUNREACH ||
                 err == EHOSTUNREACH || err == EPIPE)
                    ? Errc::no_service : Errc::internal;
    return fail(code, fmt::format("{}: {}", what, std::strerror(err)));
  };

  if (!valid_request_path(url.path) || url.port == 0)
    return fail(Errc::usage, "not a request path and port we would send");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(url.port);
  if (url.host.size() > 15 || ::inet_pton(AF_INET, url.host.c_str(), &sa.sin_addr) != 1)
    return fail(Errc::usage, "the host is not an IPv4 address");

  Socket sock(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (sock.fd() < 0) return sys_fail("socket");

  if (::connect(sock.fd(), reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0) {
    if (errno != EINPROGRESS) return sys_fail("connect");
    switch (wait_for(sock.fd(), POLLOUT, deadline)) {
      case Wait::timeout: return cut_off("connecting");
      case Wait::error: return sys_fail("poll");
      case Wait::ready: break;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    if (::getsockopt(sock.fd(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) return sys_fail("getsockopt");
    if (err != 0) {
      errno = err;
      return sys_fail("connect");
    }
  }

  const std::string host = url.port == 80 ? url.host : fmt::format("{}:{}", url.host, url.port);
  const std::string request = fmt::format(
      "GET {} HTTP/1.1\r\n"
      "Host: {}\r\n"
      "User-Agent: porthole UPnP/1.1\r\n"
      "Accept: text/xml, application/xml\r\n"
      "Connection: close\r\n"
      "\r\n",
      url.path, host);
  std::size_t sent = 0;
  while (sent < request.size()) {
    switch (wait_for(sock.fd(), POLLOUT, deadline)) {
      case Wait::timeout: return cut_off("sending the request");
      case Wait::error: return sys_fail("poll");
      case Wait::ready: break;
    }
    ssize_t n = ::send(sock.fd(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return sys_fail("send");
    }
    sent += static_cast<std::size_t>(n);
  }

  ResponseReader reader(max_body);
  char buf[4096];
  while (!reader.done()) {
    switch (wait_for(sock.fd(), POLLIN, deadline)) {
      case Wait::timeout: return cut_off(reader.progress());
      case Wait::error: return sys_fail("poll");
      case Wait::ready: break;
    }
    ssize_t n = ::recv(sock.fd(), buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return sys_fail("recv");
    }
    Status st = n == 0 ? reader.finish_at_eof()
                       : reader.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    if (!st) return fail(st.error().code, st.error().message, st.error().protocol_code);
    if (n == 0) break;
  }
  return reader.take_body();
}

}  // namespace porthole::detail
