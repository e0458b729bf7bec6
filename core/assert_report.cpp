// The one place in core/ that writes to a file descriptor: an assertion failure reports itself on
// stderr and aborts. This bends the "no I/O in core" rule on purpose (DESIGN.md house style 1):
// a fatal invariant violation must say what failed and which seed replays it, and there is no
// driver left to ask once the process is going down. tools/check_core_purity.sh exempts this
// file by name and nothing else.
#include <cstdio>
#include <cstdlib>

#include "core/assert.h"

namespace ditto {
namespace {
char context_text[512] = "";
}  // namespace

void assert_context_set(const char* text) {
  std::snprintf(context_text, sizeof(context_text), "%s", text == nullptr ? "" : text);
}

const char* assert_context() { return context_text; }

void assert_fail(const char* expression, const char* file, int line) {
  std::fprintf(stderr, "ASSERT failed: %s at %s:%d%s%s\n", expression, file, line,
               context_text[0] != '\0' ? " | " : "", context_text);
  std::fflush(stderr);
  std::abort();
}

void assert_fail_eq(const char* expression, unsigned long long left, unsigned long long right,
                    const char* file, int line) {
  std::fprintf(stderr, "ASSERT failed: %s (%llu != %llu) at %s:%d%s%s\n", expression, left, right,
               file, line, context_text[0] != '\0' ? " | " : "", context_text);
  std::fflush(stderr);
  std::abort();
}

}  // namespace ditto
