#include "codec/http_response.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>

#include <fmt/format.h>

#include "codec/url_check.hpp"
#include "codec/ascii.hpp"

namespace porthole::detail {
namespace {

// Chunk sizes from here up are refused before any arithmetic could overflow.
constexpr std::uint64_t kChunkSizeLimit = 0x80000000;

std::string_view strip_cr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

Error malformed(std::string message) { return make_error(Errc::internal, std::move(message)); }

// The next complete line of in[pos..] (without its line end), advancing pos past it;
// nullopt for "need more".
std::optional<std::string_view> next_line(const std::string& in, std::size_t& pos) {
  std::size_t nl = in.find('\n', pos);
  if (nl == std::string::npos) return std::nullopt;
  std::string_view line(in.data() + pos, nl - pos);
  pos = nl + 1;
  return strip_cr(line);
}

}  // namespace

Status HttpResponseParser::feed(std::string_view bytes) {
  received_ += bytes.size();
  in_.append(bytes);
  Status st = run();
  in_.erase(0, pos_);
  pos_ = 0;
  return st;
}

Status HttpResponseParser::finish_at_eof() {
  switch (phase_) {
    case Phase::done: return ok_status();
    case Phase::until_close:
    case Phase::trailer:  // the last chunk arrived; a missing trailer end is harmless
      phase_ = Phase::done;
      return ok_status();
    case Phase::headers:
      return malformed(
          fmt::format("connection closed before the end of the headers "
                      "({} bytes received)",
                      received_));
    case Phase::length_body:
      return malformed(fmt::format("connection closed after {} of {} body bytes", body_.size(),
                                   content_length_));
    default:
      return malformed(
          fmt::format("connection closed inside the chunked body, after {} "
                      "bytes",
                      body_.size()));
  }
}

std::string HttpResponseParser::progress() const {
  switch (phase_) {
    case Phase::headers:
      return fmt::format("header block incomplete, {} bytes received", received_);
    case Phase::length_body:
      return fmt::format("{} of {} body bytes received", body_.size(), content_length_);
    default: return fmt::format("body incomplete, {} bytes received", body_.size());
  }
}

Status HttpResponseParser::run() {
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
            return malformed(fmt::format("header block longer than {} bytes", kMaxHttpHeaderBytes));
          return ok_status();
        }
        if (end > kMaxHttpHeaderBytes)
          return malformed(fmt::format("header block longer than {} bytes", kMaxHttpHeaderBytes));
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
        auto line = next_line(in_, pos_);
        if (!line) {
          // The line so far may still end in the CR of its CRLF: that byte is not
          // part of the line, so it does not count against the bound.
          if (available() > kMaxHttpChunkLine + 1) return malformed("chunk-size line too long");
          return ok_status();
        }
        if (line->size() > kMaxHttpChunkLine) return malformed("chunk-size line too long");
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
        auto line = next_line(in_, pos_);
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
      case Phase::done: return ok_status();
    }
  }
}

Status HttpResponseParser::parse_head(std::string_view head) {
  std::size_t nl = head.find('\n');
  std::string_view status_line = strip_cr(head.substr(0, nl));
  head.remove_prefix(nl + 1);

  // "HTTP/1.x SP 3DIGIT [SP reason]" (RFC 9112 s4).
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." ||
      (status_line[7] != '0' && status_line[7] != '1') || status_line[8] != ' ' ||
      (status_line.size() > 12 && status_line[12] != ' '))
    return malformed(
        fmt::format("not an HTTP/1.x answer: '{}'", printable_excerpt(status_line, 80)));
  int code = 0;
  for (std::size_t i = 9; i < 12; ++i) {
    char c = status_line[i];
    if (c < '0' || c > '9')
      return malformed(fmt::format("bad status line '{}'", printable_excerpt(status_line, 80)));
    code = code * 10 + (c - '0');
  }
  if (code != 200 && !(code == 500 && read_500_))
    return make_error(Errc::no_service,
                      fmt::format("HTTP status {} ('{}')", code,
                                  printable_excerpt(trim_blanks(status_line.substr(12)), 80)),
                      code);
  status_ = code;

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
    std::string_view name = trim_blanks(line.substr(0, colon));
    std::string_view value = trim_blanks(line.substr(colon + 1));
    if (ascii_iequals(name, "Content-Length")) {
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
    } else if (ascii_iequals(name, "Transfer-Encoding")) {
      if (!ascii_iequals(value, "chunked"))
        return malformed(
            fmt::format("unsupported Transfer-Encoding '{}'", printable_excerpt(value, 40)));
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
Status HttpResponseParser::parse_chunk_size(std::string_view line) {
  std::uint64_t size = 0;
  std::size_t i = 0;
  for (; i < line.size(); ++i) {
    char c = ascii_lower(line[i]);
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
  std::string_view rest = trim_blanks(line.substr(i));
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

}  // namespace porthole::detail
