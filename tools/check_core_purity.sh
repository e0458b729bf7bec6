#!/usr/bin/env bash
# Fails when core/ does anything impure: I/O, clocks, threads, sockets, Asio, exceptions or
# nondeterministic randomness (DESIGN.md "The core contract"). Runs as a ctest test.
# Usage: tools/check_core_purity.sh [CORE_DIR]
set -euo pipefail
core_dir="${1:-$(dirname "$0")/../core}"

# The assertion reporter is the one file allowed to write to stderr (see its header comment).
exempt='assert_report\.cpp$'

banned_includes=(
  '<iostream>' '<fstream>' '<sstream>' '<cstdio>' '<stdio\.h>' '<thread>' '<mutex>' '<atomic>'
  '<condition_variable>' '<future>' '<chrono>' '<ctime>' '<time\.h>' '<random>' '<filesystem>'
  '<coroutine>' '<csignal>' '<signal\.h>' '<unistd\.h>' '<fcntl\.h>' '<poll\.h>' '<dirent\.h>'
  '<pthread\.h>' '<sys/[a-z_]*\.h>' '<netinet/[a-z_]*\.h>' '<arpa/[a-z_]*\.h>' '<netdb\.h>'
  '<liburing[a-z_/]*\.h>' '<linux/[a-z_]*\.h>' '<boost/[^>]*>' '<openssl/[^>]*>' '<stdexcept>'
  '<exception>'
)
banned_tokens=(
  '\bthrow\b' '\btry[[:space:]]*\{' '\bcatch[[:space:]]*\(' '::now[[:space:]]*\('
  '\brand[[:space:]]*\(' '\bsrand[[:space:]]*\(' 'random_device' '\bstd::cout\b' '\bstd::cerr\b'
  '\bprintf[[:space:]]*\(' '\bfopen[[:space:]]*\(' '\bgetenv[[:space:]]*\(' '\bsleep[[:space:]]*\('
  '\bstd::thread\b' '\bstd::async\b' '\bsocket[[:space:]]*\(' '\bsyscall[[:space:]]*\('
  'asio::' '\bvolatile\b'
)

status=0
while IFS= read -r -d '' file; do
  if [[ "$file" =~ $exempt ]]; then continue; fi
  # Strip // comments so prose may mention banned words.
  content=$(sed -e 's://.*$::' "$file")
  for pattern in "${banned_includes[@]}"; do
    if grep -nE "^[[:space:]]*#[[:space:]]*include[[:space:]]*${pattern}" <<<"$content" >/dev/null; then
      line=$(grep -nE "^[[:space:]]*#[[:space:]]*include[[:space:]]*${pattern}" <<<"$content" | head -1)
      echo "core purity: $file:${line%%:*}: banned include ${line#*:}" >&2
      status=1
    fi
  done
  for pattern in "${banned_tokens[@]}"; do
    if grep -nE "$pattern" <<<"$content" >/dev/null; then
      line=$(grep -nE "$pattern" <<<"$content" | head -1)
      echo "core purity: $file:${line%%:*}: banned construct /$pattern/: ${line#*:}" >&2
      status=1
    fi
  done
done < <(find "$core_dir" -type f \( -name '*.h' -o -name '*.cpp' \) -print0 | sort -z)

if [[ $status -eq 0 ]]; then
  echo "core purity: ok ($(find "$core_dir" -type f \( -name '*.h' -o -name '*.cpp' \) | wc -l) files)"
fi
exit $status
