// porthole: error codes and the Result<T> type every library call returns.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace porthole {

// Numbered, append-only: these values are the CLI's exit statuses (man porthole(1),
// EXIT STATUS). Never renumber; add new codes at the end.
enum class Errc : int {
  ok = 0,
  internal = 1,      // a bug or an unexpected local failure (socket(), out of memory)
  usage = 2,         // bad arguments; nothing was sent
  no_service = 3,    // no port-mapping service answered
  refused = 4,       // the gateway answered and refused (conflict, not authorized, ...)
  timeout = 5,       // a service answered, then the deadline ran out
  not_verified = 6,  // open --verify: no proof from outside (the mapping stays)
  punch_failed = 7,  // hole punching found no path (or the peer was not online)
  state = 8,         // the state directory or file is unusable or corrupt
  peer_refused = 9,  // the peer refused us (our ID not allowed, a port not exposed), or
                     // its TLS identity did not match the peer ID we named
};

// Human name of an error code ("refused", "no-service", ...), stable for --json.
const char* errc_name(Errc code) noexcept;

struct Error {
  Errc code = Errc::internal;
  // The protocol's own code where there is one: PCP result code, SOAP errorCode,
  // libnatpmp return value / NAT-PMP result code; 0 when not applicable.
  int protocol_code = 0;
  std::string message;
};

inline Error make_error(Errc code, std::string message, int protocol_code = 0) {
  return Error{code, protocol_code, std::move(message)};
}

// A small expected-like type (std::expected is not usable with clang 14 + libstdc++).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}      // NOLINT(implicit)
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT(implicit)

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

struct Unit {};
using Status = Result<Unit>;
inline Status ok_status() { return Unit{}; }

}  // namespace porthole
