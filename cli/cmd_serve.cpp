#include "cmd_serve.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli_output.hpp"

namespace porthole::cli {
namespace {

// SIGTERM / SIGINT write to this eventfd, which serve()'s reactor watches.
int g_stop_fd = -1;
extern "C" void on_stop_signal(int) {
  const std::uint64_t one = 1;
  ssize_t n = ::write(g_stop_fd, &one, sizeof(one));  // async-signal-safe
  (void)n;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

int run_serve(const Invocation& inv) {
  ServeOptions options = inv.serve;
  const int verbosity = inv.verbosity;
  // One line per notable event (start, each connect-back); -v adds every request,
  // -q keeps only errors.
  options.log = [verbosity](LogLevel level, std::string_view text) {
    if (verbosity < 0 || (level == LogLevel::debug && verbosity < 1)) return;
    fmt::print(stderr, "{} porthole serve: {}\n", utc_now(), text);
  };
  g_stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (g_stop_fd < 0) {
    fmt::print(stderr, "porthole: eventfd failed\n");
    return static_cast<int>(Errc::internal);
  }
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  auto st = serve(options, g_stop_fd);
  if (!st) {
    fmt::print(stderr, "porthole: {}\n", st.error().message);
    return static_cast<int>(st.error().code);
  }
  if (verbosity >= 0) fmt::print(stderr, "{} porthole serve: stopped\n", utc_now());
  return 0;
}

std::string render_open_verified(const OpenResult& opened, const Result<Verification>& v,
                                 bool as_json) {
  const bool verified = v.ok() && v->verified;
  if (as_json) {
    auto j = nlohmann::json::parse(render_open(opened, true));
    j["verified"] = verified;
    nlohmann::json ver = nlohmann::json::object();
    if (v.ok()) {
      ver["method"] = v->method.empty() ? nlohmann::json(nullptr) : nlohmann::json(v->method);
      ver["observed"] =
          v->observed.empty() ? nlohmann::json(nullptr) : nlohmann::json(v->observed);
      ver["server"] = v->server.empty() ? nlohmann::json(nullptr) : nlohmann::json(v->server);
      if (verified) ver["proof"] = v->proof;
      else ver["explanation"] = v->explanation;
    } else {
      ver["error"] = v.error().message;
    }
    j["verification"] = std::move(ver);
    return j.dump(2) + "\n";
  }
  std::string out = render_open(opened, false);
  if (verified)
    out += fmt::format("verified ({}, via {}): {}\n", v->method, v->server, v->proof);
  else
    out += fmt::format("NOT verified: {}\n", v.ok() ? v->explanation : v.error().message);
  return out;
}

int run_open_verify(const Invocation& inv) {
  auto opened = open(inv.options, inv.open);
  if (!opened) {
    if (inv.json) fmt::print("{}", render_error_json(opened.error()));
    fmt::print(stderr, "porthole: {}\n", opened.error().message);
    return static_cast<int>(opened.error().code);
  }
  if (inv.verbosity >= 0)
    for (const auto& w : opened->warnings) fmt::print(stderr, "porthole: warning: {}\n", w);
  auto v = verify(inv.options, opened->mapping);
  if (inv.verbosity >= 0 || inv.json) fmt::print("{}", render_open_verified(*opened, v, inv.json));
  if (!v) {
    fmt::print(stderr, "porthole: verification: {}\n", v.error().message);
    return static_cast<int>(v.error().code);
  }
  if (inv.verbosity >= 0)
    for (const auto& w : v->warnings) fmt::print(stderr, "porthole: warning: {}\n", w);
  if (!v->verified) {
    fmt::print(stderr, "porthole: not verified: {} (the mapping stays; `porthole close {}{}` "
                       "removes it)\n", v->explanation, opened->mapping.internal_port,
               opened->mapping.transport == Transport::udp ? "/udp" : "");
    return static_cast<int>(Errc::not_verified);
  }
  return 0;
}

}  // namespace porthole::cli
