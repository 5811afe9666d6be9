// HttpResponseParser without sockets: the same bytes give the same answer however they
// are split, and nothing it holds grows past its bounds. (http_get_test.cpp drives it
// through real sockets against fake servers.)
#include <catch2/catch.hpp>

#include <string>

#include "codec/http_response.hpp"

using namespace porthole;
using namespace porthole::detail;

namespace {

struct Outcome {
  bool ok = false;
  bool done = false;
  Errc code = Errc::ok;
  std::string body_or_message;
};

// Feeds `text` in pieces of `piece` bytes (all at once for 0), then the close.
Outcome parse(std::string_view text, std::size_t piece, std::size_t max_body = 1 << 20) {
  HttpResponseParser p(max_body);
  auto fail = [](const Status& st) {
    return Outcome{false, false, st.error().code, st.error().message};
  };
  std::size_t step = piece == 0 ? text.size() : piece;
  for (std::size_t at = 0; at < text.size() && !p.done(); at += step)
    if (auto st = p.feed(text.substr(at, step)); !st) return fail(st);
  if (auto st = p.finish_at_eof(); !st) return fail(st);
  return Outcome{true, p.done(), Errc::ok, p.take_body()};
}

}  // namespace

TEST_CASE("HttpResponseParser gives the same answer however the bytes are split", "[http]") {
  const std::string long_ext(1022, 'x');  // "1;" + 1022 x: the longest line allowed
  const std::string kAnswers[] = {
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
      "HTTP/1.0 200 OK\nServer: old\n\nup to the close",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;a=b\r\n, world"
      "\r\n0\r\nX-Trailer: 1\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" + long_ext + "\r\n!\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" + long_ext + "x\r\n!\r\n0\r\n\r\n",
      "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\ncut short",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n80000000\r\n",
  };
  for (const auto& text : kAnswers) {
    INFO(text.substr(0, 80));
    Outcome whole = parse(text, 0);
    for (std::size_t piece : {1, 2, 3, 7, 64}) {
      INFO("pieces of " << piece);
      Outcome split = parse(text, piece);
      CHECK(split.ok == whole.ok);
      CHECK(split.done == whole.done);
      CHECK(split.code == whole.code);
      CHECK(split.body_or_message == whole.body_or_message);
    }
  }
  CHECK(parse(kAnswers[2], 0).body_or_message == "hello, world");
  // A chunk-size line of exactly kMaxHttpChunkLine characters is accepted even when
  // its CR arrives alone at the end of a read; one more character is refused.
  CHECK(parse(kAnswers[3], 1).ok);
  CHECK(parse(kAnswers[3], 1).body_or_message == "!");
  CHECK_FALSE(parse(kAnswers[4], 0).ok);
  CHECK(parse(kAnswers[5], 0).code == Errc::no_service);
}

TEST_CASE("HttpResponseParser holds no more than its bounds", "[http]") {
  SECTION("headers that never end") {
    HttpResponseParser p;
    Status st = p.feed("HTTP/1.1 200 OK\r\n");
    const std::string line = "X-Padding: " + std::string(100, 'p') + "\r\n";
    while (st) {
      CHECK(p.buffered() <= kMaxHttpHeaderBytes);
      st = p.feed(line);
    }
    CHECK_THAT(st.error().message, Catch::Contains("header block longer than 16384"));
  }
  SECTION("a chunk-size line that never ends") {
    HttpResponseParser p;
    REQUIRE(p.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"));
    Status st = p.feed("1");
    while (st) {
      CHECK(p.buffered() <= kMaxHttpChunkLine + 1);
      st = p.feed("0");
    }
    CHECK_THAT(st.error().message, Catch::Contains("chunk-size line too long"));
  }
  SECTION("a body over max_body, announced or sent") {
    HttpResponseParser announced(1000);
    auto st = announced.feed("HTTP/1.1 200 OK\r\nContent-Length: 1001\r\n\r\n");
    REQUIRE_FALSE(st);
    CHECK_THAT(st.error().message, Catch::Contains("1001"));
    HttpResponseParser sent(1000);
    REQUIRE(sent.feed("HTTP/1.1 200 OK\r\n\r\n"));
    REQUIRE(sent.feed(std::string(1000, 'a')));
    CHECK_FALSE(sent.feed("a"));
  }
  SECTION("progress of an incomplete answer") {
    HttpResponseParser p;
    REQUIRE(p.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"));
    CHECK_FALSE(p.done());
    CHECK(p.progress() == "3 of 10 body bytes received");
    CHECK(p.body() == "abc");
  }
}
