// Shared by the fuzz targets: an oracle failure aborts (libFuzzer then saves the input), with a
// line saying which property broke. Targets never assert on the input itself; they assert what
// must hold for every input (no crash, round trips, consistent answers).
#pragma once

#include <cstdio>
#include <cstdlib>

#define DITTO_FUZZ_CHECK(condition)                                                            \
  do {                                                                                         \
    if (!(condition)) {                                                                        \
      std::fprintf(stderr, "%s:%d: fuzz oracle failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                            \
    }                                                                                          \
  } while (false)
