// An HTTP/1.x response (RFC 9112) decoded incrementally, as its bytes arrive: status
// line and headers, then the body by Content-Length, by chunks (s7.1) or up to the
// close. Pure: no sockets, no clock. http_get() feeds it from the socket; the unit tests
// and the fuzzer feed it directly.
//
// The sender is an untrusted device: the parser never holds more than
// kMaxHttpHeaderBytes of header (or chunked trailer) and max_body of body, announced
// sizes are refused before anything is allocated for them, and chunk sizes are parsed
// without overflow. Splitting the same bytes differently across feed() calls gives the
// same result.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "porthole/error.hpp"

namespace porthole::detail {

inline constexpr std::size_t kMaxHttpHeaderBytes = 16 * 1024;
inline constexpr std::size_t kDefaultMaxHttpBody = 256 * 1024;
// A chunk-size line is hex digits plus optional extensions; nothing legitimate is long.
inline constexpr std::size_t kMaxHttpChunkLine = 1024;

class HttpResponseParser {
 public:
  // read_500: a "500 Internal Server Error" answer is read like a 200 one, for the
  // SOAP fault it carries (UDA 1.1 s3.2.2); status() tells them apart.
  explicit HttpResponseParser(std::size_t max_body = kDefaultMaxHttpBody, bool read_500 = false)
      : max_body_(max_body), read_500_(read_500) {}

  // The next bytes of the answer. Errors:
  //  Errc::no_service  a status other than 200 (or 500 with read_500; protocol_code =
  //                    the status)
  //  Errc::internal    a malformed answer: not HTTP/1.x, a bad header line, header block
  //                    over kMaxHttpHeaderBytes, a bad or conflicting Content-Length, a
  //                    Transfer-Encoding other than chunked, body over max_body
  //                    (announced or actual), chunk size >= 0x80000000, bad chunk framing
  // After an error, or once done(), further bytes must not be fed.
  Status feed(std::string_view bytes);

  // The peer closed the connection: fine after a complete answer, or for a body that
  // runs up to the close; an error (Errc::internal) anywhere else.
  Status finish_at_eof();

  bool done() const { return phase_ == Phase::done; }
  // The status code, once the header block is read (0 before).
  int status() const { return status_; }
  // The body so far (all of it once done()).
  const std::string& body() const { return body_; }
  std::string take_body() { return std::move(body_); }
  // Bytes received and not consumed yet: a partial header block, chunk-size line or
  // trailer line. Bounded by the limits above (plus, once done(), what followed the
  // answer in the last feed).
  std::size_t buffered() const { return in_.size(); }

  // Where an incomplete answer stopped, for a timeout message ("header block
  // incomplete, 40 bytes received", "9 of 100 body bytes received", ...).
  std::string progress() const;

 private:
  enum class Phase {
    headers,
    length_body,
    until_close,
    chunk_size,
    chunk_data,
    chunk_data_end,
    trailer,
    done
  };

  Status run();
  Status parse_head(std::string_view head);
  Status parse_chunk_size(std::string_view line);
  std::size_t available() const { return in_.size() - pos_; }

  std::size_t max_body_;
  bool read_500_ = false;
  int status_ = 0;
  Phase phase_ = Phase::headers;
  std::string in_;        // bytes received and not consumed yet
  std::size_t pos_ = 0;   // consumed prefix of in_ (within one feed)
  std::size_t scan_ = 0;  // headers: where the next unscanned line starts
  std::size_t received_ = 0;
  std::size_t content_length_ = 0;
  std::size_t chunk_left_ = 0;
  std::size_t trailer_bytes_ = 0;
  std::string body_;
};

}  // namespace porthole::detail
