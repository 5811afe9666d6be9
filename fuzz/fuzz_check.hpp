// What the fuzz targets share: a property check that stops the fuzzer with a message.
// libFuzzer records the input that made abort() fire as a crash artifact.
#pragma once

#include <cstdio>
#include <cstdlib>

#define PORTHOLE_FUZZ_CHECK(cond)                                                        \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)
