#include "core/config_keywords.h"

#include <algorithm>
#include <array>
#include <span>
#include <utility>

#include "core/assert.h"

namespace ditto::config {
namespace {

constexpr ValueKind boolean = ValueKind::boolean;
constexpr ValueKind flag = ValueKind::flag;
constexpr ValueKind enumeration = ValueKind::enumeration;
constexpr ValueKind number = ValueKind::number;
constexpr ValueKind text = ValueKind::text;

constexpr std::array global_specs{
    OptionSpec{"usage-count", enumeration, "yes|no|ask"},
    OptionSpec{"minor-count", number, ""},
    OptionSpec{"dialog-refresh", number, ""},
    OptionSpec{"disable-ip-verification", flag, ""},
    OptionSpec{"udev-always-use-vnr", flag, ""},
    OptionSpec{"cmd-timeout-short", number, ""},
    OptionSpec{"cmd-timeout-medium", number, ""},
    OptionSpec{"cmd-timeout-long", number, ""},
};

constexpr std::array net_specs{
    OptionSpec{"transport", text, ""},
    OptionSpec{"protocol", enumeration, "A|B|C"},
    OptionSpec{"timeout", number, ""},
    OptionSpec{"max-epoch-size", number, ""},
    OptionSpec{"connect-int", number, ""},
    OptionSpec{"ping-int", number, ""},
    OptionSpec{"sndbuf-size", number, ""},
    OptionSpec{"rcvbuf-size", number, ""},
    OptionSpec{"ko-count", number, ""},
    OptionSpec{"allow-two-primaries", boolean, ""},
    OptionSpec{"cram-hmac-alg", text, ""},
    OptionSpec{"shared-secret", text, ""},
    OptionSpec{"after-sb-0pri", enumeration,
               "disconnect|discard-younger-primary|discard-older-primary|discard-zero-changes|"
               "discard-least-changes|discard-local|discard-remote"},
    OptionSpec{"after-sb-1pri", enumeration,
               "disconnect|consensus|discard-secondary|call-pri-lost-after-sb|violently-as0p"},
    OptionSpec{"after-sb-2pri", enumeration, "disconnect|call-pri-lost-after-sb|violently-as0p"},
    OptionSpec{"always-asbp", boolean, ""},
    OptionSpec{"rr-conflict", enumeration,
               "disconnect|call-pri-lost|violently|retry-connect|auto-discard"},
    OptionSpec{"ping-timeout", number, ""},
    OptionSpec{"data-integrity-alg", text, ""},
    OptionSpec{"tcp-cork", boolean, ""},
    OptionSpec{"on-congestion", enumeration, "block|pull-ahead|disconnect"},
    OptionSpec{"congestion-fill", number, ""},
    OptionSpec{"congestion-extents", number, ""},
    OptionSpec{"csums-alg", text, ""},
    OptionSpec{"csums-after-crash-only", boolean, ""},
    OptionSpec{"verify-alg", text, ""},
    OptionSpec{"use-rle", boolean, ""},
    OptionSpec{"socket-check-timeout", number, ""},
    OptionSpec{"fencing", enumeration, "dont-care|resource-only|resource-and-stonith"},
    OptionSpec{"max-buffers", number, ""},
    OptionSpec{"allow-remote-read", boolean, ""},
    OptionSpec{"load-balance-paths", boolean, ""},
    // TLS: `tls` is DRBD 9.2's name (drbd-utils 9.26+; 9.22 here does not know it). DRBD takes
    // its keys from the kernel keyring (tlshd); ditto extensions name PEM files instead.
    OptionSpec{"tls", boolean, ""},
    OptionSpec{"tls-ca-file", text, ""},
    OptionSpec{"tls-certificate-file", text, ""},
    OptionSpec{"tls-privkey-file", text, ""},
};

// disk-options, attach-only `size`, and the peer-device options drbdadm also takes here.
constexpr std::array disk_specs{
    OptionSpec{"size", number, ""},
    OptionSpec{"on-io-error", enumeration, "pass_on|call-local-io-error|detach"},
    OptionSpec{"disk-barrier", boolean, ""},
    OptionSpec{"disk-flushes", boolean, ""},
    OptionSpec{"disk-drain", boolean, ""},
    OptionSpec{"md-flushes", boolean, ""},
    OptionSpec{"resync-after", text, ""},
    OptionSpec{"al-extents", number, ""},
    OptionSpec{"al-updates", boolean, ""},
    OptionSpec{"discard-zeroes-if-aligned", boolean, ""},
    OptionSpec{"disable-write-same", boolean, ""},
    OptionSpec{"disk-timeout", number, ""},
    OptionSpec{"read-balancing", enumeration,
               "prefer-local|prefer-remote|round-robin|least-pending|when-congested-remote|"
               "32K-striping|64K-striping|128K-striping|256K-striping|512K-striping|1M-striping"},
    OptionSpec{"rs-discard-granularity", number, ""},
    OptionSpec{"resync-rate", number, ""},
    OptionSpec{"c-plan-ahead", number, ""},
    OptionSpec{"c-delay-target", number, ""},
    OptionSpec{"c-fill-target", number, ""},
    OptionSpec{"c-max-rate", number, ""},
    OptionSpec{"c-min-rate", number, ""},
    OptionSpec{"bitmap", boolean, ""},
};

constexpr std::array options_specs{
    OptionSpec{"cpu-mask", text, ""},
    OptionSpec{"on-no-data-accessible", enumeration, "io-error|suspend-io"},
    OptionSpec{"auto-promote", boolean, ""},
    OptionSpec{"peer-ack-window", number, ""},
    OptionSpec{"peer-ack-delay", number, ""},
    OptionSpec{"twopc-timeout", number, ""},
    OptionSpec{"twopc-retry-timeout", number, ""},
    OptionSpec{"auto-promote-timeout", number, ""},
    OptionSpec{"max-io-depth", number, ""},
    OptionSpec{"quorum", ValueKind::number_or_enumeration, "off|majority|all"},
    OptionSpec{"on-no-quorum", enumeration, "io-error|suspend-io"},
    OptionSpec{"quorum-minimum-redundancy", ValueKind::number_or_enumeration, "off|majority|all"},
    OptionSpec{"on-suspended-primary-outdated", enumeration, "disconnect|force-secondary"},
};

constexpr std::array handlers_specs{
    OptionSpec{"pri-on-incon-degr", text, ""},
    OptionSpec{"pri-lost-after-sb", text, ""},
    OptionSpec{"pri-lost", text, ""},
    OptionSpec{"fence-peer", text, ""},
    OptionSpec{"unfence-peer", text, ""},
    OptionSpec{"local-io-error", text, ""},
    OptionSpec{"split-brain", text, ""},
    OptionSpec{"before-resync-target", text, ""},
    OptionSpec{"after-resync-target", text, ""},
    OptionSpec{"before-resync-source", text, ""},
    OptionSpec{"out-of-sync", text, ""},
    OptionSpec{"quorum-lost", text, ""},
    OptionSpec{"initial-split-brain", text, ""},
    OptionSpec{"disconnected", text, ""},
};

constexpr std::array startup_specs{
    OptionSpec{"wfc-timeout", number, ""},
    OptionSpec{"degr-wfc-timeout", number, ""},
    OptionSpec{"outdated-wfc-timeout", number, ""},
    OptionSpec{"wait-after-sb", boolean, ""},
    OptionSpec{"become-primary-on", ValueKind::words, ""},
    OptionSpec{"stacked-timeouts", flag, ""},
};

std::span<const OptionSpec> specs_of(SectionKind kind) {
  switch (kind) {
    case SectionKind::global:
      return global_specs;
    case SectionKind::net:
      return net_specs;
    case SectionKind::disk:
      return disk_specs;
    case SectionKind::options:
      return options_specs;
    case SectionKind::handlers:
      return handlers_specs;
    case SectionKind::startup:
      return startup_specs;
  }
  return {};
}

bool is_number(std::string_view value) {
  std::size_t digits = 0;
  while (digits < value.size() && value[digits] >= '0' && value[digits] <= '9') digits += 1;
  if (digits == 0) return false;
  const std::string_view unit = value.substr(digits);
  return unit.empty() || (unit.size() == 1 &&
                          std::string_view("kKmMgGtTs").find(unit[0]) != std::string_view::npos);
}

bool is_choice(std::string_view choices, std::string_view value) {
  while (!choices.empty()) {
    const std::size_t bar = choices.find('|');
    if (choices.substr(0, bar) == value) return true;
    if (bar == std::string_view::npos) break;
    choices.remove_prefix(bar + 1);
  }
  return false;
}

// "A|B|C" → "A | B | C", as drbdadm lists allowed values.
std::string list_choices(std::string_view choices) {
  std::string listed;
  for (const char c : choices) {
    if (c == '|') {
      listed += " | ";
    } else {
      listed.push_back(c);
    }
  }
  return listed;
}

std::optional<std::string> check_one_value(const OptionSpec& spec, std::string_view value) {
  const std::string bad = "invalid value '" + std::string(value) + "' for " + std::string(spec.key);
  switch (spec.kind) {
    case ValueKind::boolean:
      if (value == "yes" || value == "no") return std::nullopt;
      return bad + " (expected yes | no)";
    case ValueKind::enumeration:
      if (is_choice(spec.choices, value)) return std::nullopt;
      return bad + " (expected " + list_choices(spec.choices) + ")";
    case ValueKind::number:
      if (is_number(value)) return std::nullopt;
      return bad + " (expected a number)";
    case ValueKind::number_or_enumeration:
      if (is_number(value) || is_choice(spec.choices, value)) return std::nullopt;
      return bad + " (expected " + list_choices(spec.choices) + " | a number)";
    case ValueKind::flag:
    case ValueKind::text:
    case ValueKind::words:
      return std::nullopt;
  }
  return bad;
}

}  // namespace

std::string_view section_name(SectionKind kind) {
  switch (kind) {
    case SectionKind::global:
      return "global";
    case SectionKind::net:
      return "net";
    case SectionKind::disk:
      return "disk";
    case SectionKind::options:
      return "options";
    case SectionKind::handlers:
      return "handlers";
    case SectionKind::startup:
      return "startup";
  }
  return "?";
}

const OptionSpec* find_option_spec(SectionKind kind, std::string_view key) {
  const std::span<const OptionSpec> specs = specs_of(kind);
  const auto found = std::find_if(specs.begin(), specs.end(),
                                  [key](const OptionSpec& spec) { return spec.key == key; });
  return found == specs.end() ? nullptr : &*found;
}

std::optional<ValueProblem> check_values(const OptionSpec& spec, std::vector<std::string>& values) {
  if (spec.kind == ValueKind::boolean && values.empty()) values.emplace_back("yes");
  if (spec.kind == ValueKind::flag) {
    if (values.empty()) return std::nullopt;
    return ValueProblem{0, "option " + std::string(spec.key) + " takes no value"};
  }
  if (values.empty()) {
    return ValueProblem{0, "option " + std::string(spec.key) + " needs a value"};
  }
  if (spec.kind != ValueKind::words && values.size() > 1) {
    // `protocol C` followed by a new line and another option is the usual cause.
    return ValueProblem{1, "missing ';' after '" + std::string(spec.key) + " " + values[0] + "'"};
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (std::optional<std::string> problem = check_one_value(spec, values[i])) {
      return ValueProblem{i, std::move(*problem)};
    }
  }
  DITTO_ASSERT(!values.empty());
  return std::nullopt;
}

}  // namespace ditto::config
