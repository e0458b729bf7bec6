// Always-on assertions for ditto. See DESIGN.md, house style rule 2.
//
// ASSERT is fatal in every build type. It is for invariants of our own code only: never assert on
// bytes that came from a network, a disk, a config file, an NBD client or a command line. Those
// are parsed into types and rejected with an error value.
#pragma once

namespace ditto {

// Text appended to every assertion failure, e.g. "seed=42 replay: ditto-sim run --seed 42".
// The simulator sets it per run so a crash names the seed that reproduces it. Not thread-safe by
// design: set it once per thread of control before running a core.
void assert_context_set(const char* text);
const char* assert_context();

[[noreturn]] void assert_fail(const char* expression, const char* file, int line);
[[noreturn]] void assert_fail_eq(const char* expression, unsigned long long left,
                                 unsigned long long right, const char* file, int line);

}  // namespace ditto

#define DITTO_ASSERT(condition)                                    \
  do {                                                             \
    if (!(condition)) [[unlikely]] {                               \
      ::ditto::assert_fail(#condition, __FILE__, __LINE__);        \
    }                                                              \
  } while (false)

// Compares two integral values and prints both on failure.
#define DITTO_ASSERT_EQ(left, right)                                                        \
  do {                                                                                      \
    const auto ditto_left_ = (left);                                                        \
    const auto ditto_right_ = (right);                                                      \
    if (!(ditto_left_ == ditto_right_)) [[unlikely]] {                                      \
      ::ditto::assert_fail_eq(#left " == " #right,                                          \
                              static_cast<unsigned long long>(ditto_left_),                 \
                              static_cast<unsigned long long>(ditto_right_), __FILE__,      \
                              __LINE__);                                                    \
    }                                                                                       \
  } while (false)
