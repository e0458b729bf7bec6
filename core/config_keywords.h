// The known option keys of each drbd.conf option section and the values they take (internal to
// core/config*.cpp). Keys and value sets follow `drbdsetup help new-peer|disk-options|
// peer-device-options|resource-options` and drbdadm's handler/startup/global keywords (9.22).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ditto::config {

enum class SectionKind : std::uint8_t { global, net, disk, options, handlers, startup };

enum class ValueKind : std::uint8_t {
  boolean,      // yes|no; a bare `key;` means yes
  flag,         // no value: `key;` (drbdadm rejects `key yes;` for these)
  enumeration,  // one of `choices`
  number,       // decimal digits, optionally one unit letter (k, M, G, T, s)
  number_or_enumeration,
  text,   // exactly one word or string
  words,  // one or more words or strings
};

struct OptionSpec {
  std::string_view key;
  ValueKind kind;
  std::string_view choices;  // "A|B|C" for enumerations, empty otherwise
};

// "net", "disk", ... as written in the file.
std::string_view section_name(SectionKind kind);

// The spec of `key` in a section of `kind`; nullptr for an unknown key.
const OptionSpec* find_option_spec(SectionKind kind, std::string_view key);

struct ValueProblem {
  std::size_t value_index = 0;  // which value is wrong (0 when a value is missing)
  std::string message;          // without location, e.g. "invalid value 'D' for protocol ..."
};

// Checks the values given for an option; turns a bare boolean into "yes".
std::optional<ValueProblem> check_values(const OptionSpec& spec, std::vector<std::string>& values);

}  // namespace ditto::config
