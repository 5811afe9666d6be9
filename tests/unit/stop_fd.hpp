// An eventfd a server's reactor watches (serve(stop_fd)): written once, it stops.
#pragma once

#include <catch2/catch.hpp>

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

struct StopFd {
  int fd = ::eventfd(0, EFD_CLOEXEC);
  StopFd() = default;
  StopFd(const StopFd&) = delete;
  StopFd& operator=(const StopFd&) = delete;
  ~StopFd() { ::close(fd); }
  void notify() const {
    const std::uint64_t one = 1;
    CHECK(::write(fd, &one, sizeof(one)) == sizeof(one));
  }
};
