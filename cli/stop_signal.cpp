#include "stop_signal.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>

#include <fmt/core.h>

namespace porthole::cli {
namespace {

int g_stop_fd = -1;

extern "C" void on_stop_signal(int) { notify_stop(); }

}  // namespace

int stop_fd() noexcept { return g_stop_fd; }

void notify_stop() noexcept {
  const int saved = errno;
  const std::uint64_t one = 1;
  ssize_t n = ::write(g_stop_fd, &one, sizeof(one));  // async-signal-safe
  (void)n;
  errno = saved;
}

int install_stop_signals(void (*handler)(int)) {
  g_stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (g_stop_fd < 0) {
    fmt::print(stderr, "porthole: eventfd: {}\n", std::strerror(errno));
    return -1;
  }
  struct sigaction sa {};
  sa.sa_handler = handler != nullptr ? handler : on_stop_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  return g_stop_fd;
}

}  // namespace porthole::cli
