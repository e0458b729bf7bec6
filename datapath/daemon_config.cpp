#include "datapath/daemon_config.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

namespace ditto::datapath {
namespace {

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

Result<const config::Resource*> select_resource(const config::Config& parsed,
                                                const DaemonOptions& options) {
  if (!options.resource_name.empty()) {
    const config::Resource* resource = parsed.find_resource(options.resource_name);
    if (resource == nullptr) {
      return Error{options.config_path + ": no resource named '" + options.resource_name + "'"};
    }
    return resource;
  }
  if (parsed.resources.size() != 1) {
    return Error{options.config_path + ": " + std::to_string(parsed.resources.size()) +
                 " resources defined; choose one with --resource"};
  }
  return &parsed.resources.front();
}

Status check_volume(const config::Host& self) {
  if (self.volumes.size() != 1 || self.volumes.front().number != 0) {
    return Error{self.location.to_string() + ": host '" + self.name + "' has " +
                 std::to_string(self.volumes.size()) +
                 " volumes; this version of dittod runs exactly one (volume 0)"};
  }
  const config::Volume& volume = self.volumes.front();
  if (volume.disk.empty()) {
    return Error{volume.location.to_string() + ": host '" + self.name + "' names no disk"};
  }
  // A `disk none` client has no metadata: its meta-disk is ignored, as DRBD does.
  if (!volume.diskless() && volume.meta_disk != "internal") {
    return Error{volume.location.to_string() + ": meta-disk '" + volume.meta_disk +
                 "' is not supported; use meta-disk internal"};
  }
  return Status::success();
}

}  // namespace

// A size as drbd.conf and drbdsetup write it (DRBD's unit: sectors; with a K, M, G or T suffix
// KiB, MiB, GiB or TiB), in bytes: whole 4 KiB blocks (a peer's O_DIRECT disk takes whole
// blocks), at least one.
Result<std::uint64_t> size_bytes_of(const std::string& text) {
  const std::size_t digits = text.find_first_not_of("0123456789");
  const std::string number = text.substr(0, digits);
  const std::string suffix = digits == std::string::npos ? std::string() : text.substr(digits);
  std::uint64_t unit = 0;
  if (suffix.empty() || suffix == "s") unit = 512;
  if (suffix == "k" || suffix == "K") unit = 1024;
  if (suffix == "m" || suffix == "M") unit = 1024 * 1024;
  if (suffix == "g" || suffix == "G") unit = 1024 * 1024 * 1024;
  if (suffix == "t" || suffix == "T") unit = std::uint64_t{1} << 40;
  std::uint64_t value = 0;
  const bool parsed = !number.empty() && number.size() <= 12 && unit != 0;
  if (parsed) value = std::stoull(number) * unit;
  if (!parsed || value == 0 || value % 4096 != 0 || value > (std::uint64_t{1} << 50)) {
    return Error{"size '" + text +
                 "' must be a whole number of 4 KiB blocks: sectors, or with a K, M, G or T "
                 "suffix"};
  }
  return value;
}

namespace {

// The disk option `size` in bytes; 0 when unset. A diskless client without one learns the size
// from its first diskful peer (core/node_sizes.cpp); with one, a peer exposing another size is
// refused.
Result<std::uint64_t> volume_size_option(const config::Section& disk) {
  const config::Option* option = disk.find("size");
  if (option == nullptr) return std::uint64_t{0};
  Result<std::uint64_t> size = size_bytes_of(option->value_text());
  if (!size.ok()) return Error{option->location.to_string() + ": " + size.error().message};
  return size;
}

std::string net_value(const config::Section& net, std::string_view key) {
  const config::Option* option = net.find(key);
  return option == nullptr ? std::string() : option->value_text();
}

// A numeric option of `section`: a whole number in `unit` (KiB/s for rates, sectors for
// c-fill-target, tenths of a second for c-plan-ahead and the twopc timeouts), or, where
// sectors_per_unit is not 0, with a k/M/G suffix a size in KiB, MiB or GiB (drbdsetup's
// convention: `c-max-rate 100M` is 102400 KiB/s, `c-fill-target 1M` 2048 sectors), within
// [minimum, maximum] of the unit (drbd_limits.h); `fallback` when unset.
Result<std::uint32_t> option_number(const config::Section& section, std::string_view key,
                                    std::uint32_t sectors_per_unit, std::uint32_t minimum,
                                    std::uint32_t maximum, std::uint32_t fallback) {
  const config::Option* option = section.find(key);
  if (option == nullptr) return fallback;
  const std::string text = option->value_text();
  const std::size_t digits = text.find_first_not_of("0123456789");
  std::uint64_t value = 0;
  bool valid = digits != 0 && text.size() <= 10 &&
               (digits == std::string::npos || digits + 1 == text.size());
  if (valid) {
    value = std::stoull(text.substr(0, digits));
    const char suffix = digits == std::string::npos ? '\0' : text[digits];
    const std::uint64_t kib = suffix == 'k' || suffix == 'K'   ? 1
                              : suffix == 'm' || suffix == 'M' ? 1024
                              : suffix == 'g' || suffix == 'G' ? 1024 * 1024
                                                               : 0;
    valid = suffix == '\0' || (kib != 0 && sectors_per_unit != 0);
    if (suffix != '\0' && valid) value = value * kib * 2 / sectors_per_unit;
  }
  if (!valid || value < minimum || value > maximum) {
    return Error{option->location.to_string() + ": " + std::string(key) + " '" + text +
                 "' must be a number from " + std::to_string(minimum) + " to " +
                 std::to_string(maximum) + (sectors_per_unit == 2 ? " (KiB/s)" : "") +
                 (sectors_per_unit == 1 ? " (sectors)" : "") +
                 (sectors_per_unit != 0 ? ", or with a k, M or G suffix" : "")};
  }
  return static_cast<std::uint32_t>(value);
}

// A numeric net option of one connection (a plain number, no suffix).
Result<std::uint32_t> net_number(const config::Connection& connection, std::string_view key,
                                 std::uint32_t minimum, std::uint32_t maximum,
                                 std::uint32_t fallback) {
  return option_number(connection.net, key, 0, minimum, maximum, fallback);
}

// The resync controller's disk options (DRBD peer-device options, written in `disk { }`), from
// the volume's effective disk section; unset ones keep core's defaults (DRBD's, except
// c-fill-target and c-max-rate: docs/configuration.md). c-fill-target 0 selects the
// c-delay-target mode, as in DRBD.
Status apply_resync_options(const config::Section& disk, core::NodeConfig& node) {
  constexpr std::uint32_t kib_per_second = 2;  // sectors per unit
  constexpr std::uint32_t rate_max_kib = 4 * 1024 * 1024;
  auto resync_rate = option_number(disk, "resync-rate", kib_per_second, 1, rate_max_kib,
                                   node.resync_rate_kib);
  if (!resync_rate.ok()) return resync_rate.error();
  auto plan_ahead = option_number(disk, "c-plan-ahead", 0, 0, 300, node.c_plan_ahead_deciseconds);
  if (!plan_ahead.ok()) return plan_ahead.error();
  auto fill_target = option_number(disk, "c-fill-target", 1, 0, 1u << 20,
                                   node.c_fill_target_sectors);
  if (!fill_target.ok()) return fill_target.error();
  auto delay_target = option_number(disk, "c-delay-target", 0, 1, 100,
                                    node.c_delay_target_deciseconds);
  if (!delay_target.ok()) return delay_target.error();
  auto max_rate = option_number(disk, "c-max-rate", kib_per_second, 250, rate_max_kib,
                                node.c_max_rate_kib);
  if (!max_rate.ok()) return max_rate.error();
  auto min_rate = option_number(disk, "c-min-rate", kib_per_second, 0, rate_max_kib,
                                node.c_min_rate_kib);
  if (!min_rate.ok()) return min_rate.error();
  node.resync_rate_kib = resync_rate.value();
  node.c_plan_ahead_deciseconds = plan_ahead.value();
  node.c_fill_target_sectors = fill_target.value();
  node.c_delay_target_deciseconds = delay_target.value();
  node.c_max_rate_kib = max_rate.value();
  node.c_min_rate_kib = min_rate.value();
  return Status::success();
}

// The local disk's write-path options from the volume's disk section: disk-flushes (a
// Secondary flushes before it acknowledges a barrier; DRBD's default yes) and al-extents
// (DRBD's limits 67..65534; the attach lowers it to what the metadata's activity log can hold,
// ResourceRunner::configure_activity_log). And the resource's options section: twopc-timeout
// and twopc-retry-timeout in tenths of a second (DRBD's limits 50..600 and 1..50).
Status apply_write_path_options(const config::Section& disk, const config::Section& options,
                                core::NodeConfig& node) {
  auto al_extents = option_number(disk, "al-extents", 0, 67, 65534, node.al_extents);
  if (!al_extents.ok()) return al_extents.error();
  const auto tenths = [](Duration duration) {
    return static_cast<std::uint32_t>(duration.ns / 100'000'000);
  };
  auto twopc_timeout =
      option_number(options, "twopc-timeout", 0, 50, 600, tenths(node.twopc_timeout));
  if (!twopc_timeout.ok()) return twopc_timeout.error();
  auto twopc_retry =
      option_number(options, "twopc-retry-timeout", 0, 1, 50, tenths(node.twopc_retry_timeout));
  if (!twopc_retry.ok()) return twopc_retry.error();
  if (const config::Option* flushes = disk.find("disk-flushes")) {
    node.disk_flushes = flushes->value_text() != "no";
  }
  node.al_extents = al_extents.value();
  node.twopc_timeout = Duration::from_ms(std::int64_t{twopc_timeout.value()} * 100);
  node.twopc_retry_timeout = Duration::from_ms(std::int64_t{twopc_retry.value()} * 100);
  return Status::success();
}

// The replication protocol (A, B or C), max-epoch-size (DRBD's limits 1..20000) and
// allow-two-primaries (protocol C only) from one connection's net section. The core runs one
// setting of each for all its peers, so every connection must agree.
Status apply_protocol_options(const config::Connection& connection, bool first,
                              core::NodeConfig& node) {
  auto epoch_size = net_number(connection, "max-epoch-size", 1, 20000, node.max_epoch_size);
  if (!epoch_size.ok()) return epoch_size.error();
  if (Status status = config::check_two_primaries_protocol(connection); !status.ok()) {
    return status;
  }
  const Protocol protocol = connection.protocol();
  const bool two_primaries = config::allow_two_primaries(connection.net);
  if (!first && (protocol != node.protocol || epoch_size.value() != node.max_epoch_size ||
                 two_primaries != node.allow_two_primaries)) {
    return Error{connection.location.to_string() +
                 ": protocol, max-epoch-size and allow-two-primaries must be the same for every "
                 "connection of this node"};
  }
  node.protocol = protocol;
  node.max_epoch_size = epoch_size.value();
  node.allow_two_primaries = two_primaries;
  return Status::success();
}

// Congestion (§11): on-congestion, congestion-fill (sectors, or with a k/M/G suffix; DRBD's
// 0..10 GiB) and congestion-extents (67..65534) from one connection's net section, the same for
// every connection of this node. pull-ahead and disconnect require protocol A (drbd_nl.c
// refuses them otherwise; drbdadm itself accepts the file).
Status apply_congestion_options(const config::Connection& connection, bool first,
                                core::NodeConfig& node) {
  auto fill = option_number(connection.net, "congestion-fill", 1, 0,
                            core::congestion_fill_sectors_max, 0);
  if (!fill.ok()) return fill.error();
  auto extents = net_number(connection, "congestion-extents", core::congestion_extents_min,
                            core::congestion_extents_max, core::NodeConfig{}.congestion_extents);
  if (!extents.ok()) return extents.error();
  core::OnCongestion policy = core::OnCongestion::block;
  if (const config::Option* option = connection.net.find("on-congestion")) {
    const std::optional<core::OnCongestion> parsed =
        core::parse_on_congestion(option->value_text());
    if (!parsed) {
      return Error{option->location.to_string() + ": invalid on-congestion '" +
                   option->value_text() + "' (expected block | pull-ahead | disconnect)"};
    }
    if (*parsed != core::OnCongestion::block && connection.protocol() != Protocol::a) {
      return Error{option->location.to_string() + ": on-congestion " + option->value_text() +
                   " requires protocol A (this connection uses protocol " +
                   std::string(to_string(connection.protocol())) + ")"};
    }
    policy = *parsed;
  }
  if (!first && (policy != node.on_congestion || fill.value() != node.congestion_fill_sectors ||
                 extents.value() != node.congestion_extents)) {
    return Error{connection.location.to_string() +
                 ": on-congestion, congestion-fill and congestion-extents must be the same for "
                 "every connection of this node"};
  }
  node.on_congestion = policy;
  node.congestion_fill_sectors = fill.value();
  node.congestion_extents = extents.value();
  return Status::success();
}

// read-balancing (a disk option, §9): where reads go when the local disk and peers could serve
// them. The config grammar accepts only DRBD's values; the core parses the same spelling.
Status apply_read_balancing(const config::Section& disk, core::NodeConfig& node) {
  const config::Option* option = disk.find("read-balancing");
  if (option == nullptr) return Status::success();
  const std::optional<core::ReadBalancing> policy =
      core::parse_read_balancing(option->value_text());
  if (!policy) {
    return Error{option->location.to_string() + ": invalid read-balancing '" +
                 option->value_text() + "'"};
  }
  node.read_balancing = *policy;
  return Status::success();
}

// The transport's net options (authentication, keepalive) from one connection's effective net
// section. The transport has one setting for all peers, so every connection must agree.
Status apply_net_options(const config::Connection& connection, bool first,
                         TransportConfig& transport) {
  const std::string algorithm = net_value(connection.net, "cram-hmac-alg");
  const std::string secret = net_value(connection.net, "shared-secret");
  if (algorithm.empty() != secret.empty()) {
    return Error{connection.location.to_string() +
                 ": cram-hmac-alg and shared-secret must be set together"};
  }
  auto ping_int_seconds = net_number(connection, "ping-int", 1, 120, 10);
  if (!ping_int_seconds.ok()) return ping_int_seconds.error();
  auto ping_timeout_tenths = net_number(connection, "ping-timeout", 1, 300, 5);
  if (!ping_timeout_tenths.ok()) return ping_timeout_tenths.error();
  const Duration ping_interval = Duration::from_ms(ping_int_seconds.value() * 1000LL);
  const Duration ping_timeout = Duration::from_ms(ping_timeout_tenths.value() * 100LL);
  // DRBD's timeout (tenths of a second): how long an expected answer may take; here the
  // deadlines of a dial and of the handshake up to the peer's Hello, and with ko-count the
  // request timeout (a peer that answers nothing for ko-count × timeout is disconnected).
  auto timeout_tenths = net_number(connection, "timeout", 1, 600, 0);
  if (!timeout_tenths.ok()) return timeout_tenths.error();
  auto ko_count = net_number(connection, "ko-count", 0, 200, 7);
  if (!ko_count.ok()) return ko_count.error();
  TransportConfig defaults;
  const Duration timeout = timeout_tenths.value() == 0
                               ? defaults.connect_timeout
                               : Duration::from_ms(timeout_tenths.value() * 100LL);
  const Duration hello_timeout =
      timeout_tenths.value() == 0 ? defaults.hello_timeout : timeout;
  if (!first && (algorithm != transport.cram_hmac_algorithm ||
                 secret != transport.shared_secret || ping_interval != transport.ping_interval ||
                 ping_timeout != transport.ping_timeout || timeout != transport.connect_timeout ||
                 ko_count.value() != transport.ko_count)) {
    return Error{connection.location.to_string() +
                 ": cram-hmac-alg, shared-secret, ping-int, ping-timeout, timeout and ko-count "
                 "must be the same for every connection of this node"};
  }
  transport.cram_hmac_algorithm = algorithm;
  transport.shared_secret = secret;
  transport.ping_interval = ping_interval;
  transport.ping_timeout = ping_timeout;
  transport.connect_timeout = timeout;
  transport.hello_timeout = hello_timeout;
  transport.ko_count = ko_count.value();
  transport.request_timeout = timeout_tenths.value() == 0
                                  ? defaults.request_timeout
                                  : Duration::from_ms(timeout_tenths.value() * 100LL);
  if (!secret.empty()) {
    auto key = AuthKey::create(algorithm, secret);
    if (!key.ok()) return Error{connection.location.to_string() + ": " + key.error().message};
  }
  return Status::success();
}

// verify-alg (online verify) and csums-alg (checksum-based resync): the daemon computes CRC32C
// digests (core/crc32c), so crc32c is the one algorithm accepted for either; every connection of
// this node must agree (the core has one setting), as for csums-after-crash-only.
Status apply_digest_algorithm(const config::Connection& connection, bool first,
                              std::string_view key, std::string& algorithm_out) {
  const config::Option* option = connection.net.find(key);
  const std::string algorithm = option == nullptr ? std::string() : option->value_text();
  if (!algorithm.empty() && algorithm != "crc32c") {
    return Error{option->location.to_string() + ": " + std::string(key) + " '" + algorithm +
                 "' is not supported; ditto implements crc32c"};
  }
  if (!first && algorithm != algorithm_out) {
    return Error{connection.location.to_string() + ": " + std::string(key) +
                 " must be the same for every connection of this node"};
  }
  algorithm_out = algorithm;
  return Status::success();
}

Status apply_digest_algorithms(const config::Connection& connection, bool first,
                               core::NodeConfig& node) {
  for (auto [key, algorithm] : {std::pair{"verify-alg", &node.verify_algorithm},
                                 std::pair{"csums-alg", &node.csums_algorithm}}) {
    if (Status status = apply_digest_algorithm(connection, first, key, *algorithm); !status.ok()) {
      return status;
    }
  }
  const bool after_crash_only = net_value(connection.net, "csums-after-crash-only") == "yes";
  if (!first && after_crash_only != node.csums_after_crash_only) {
    return Error{connection.location.to_string() +
                 ": csums-after-crash-only must be the same for every connection of this node"};
  }
  node.csums_after_crash_only = after_crash_only;
  return Status::success();
}

// The split-brain policies (after-sb-0pri/1pri/2pri, rr-conflict, always-asbp) from one
// connection's net section; the core has one policy for all peers, so every connection of this
// node must agree. The parser already checked each value against its keyword list.
Status apply_split_brain_options(const config::Connection& connection, bool first,
                                 core::NodeConfig& node) {
  // The value named in the net section, else `fallback`: each enum's names are core's
  // to_string (core/generation.h).
  auto pick = [&](std::string_view key, std::size_t count, auto fallback) {
    const std::string text = net_value(connection.net, key);
    auto value = fallback;
    for (std::size_t index = 0; index < count; ++index) {
      const auto candidate = static_cast<decltype(fallback)>(index);
      if (text == to_string(candidate)) value = candidate;
    }
    return value;
  };
  SplitBrainPolicy policy;
  policy.after_sb_0pri =
      pick("after-sb-0pri", after_split_brain_0_count, AfterSplitBrain0::disconnect);
  policy.after_sb_1pri =
      pick("after-sb-1pri", after_split_brain_1_count, AfterSplitBrain1::disconnect);
  policy.after_sb_2pri =
      pick("after-sb-2pri", after_split_brain_2_count, AfterSplitBrain2::disconnect);
  policy.rr_conflict = pick("rr-conflict", rr_conflict_count, RrConflict::disconnect);
  policy.always_asbp = net_value(connection.net, "always-asbp") == "yes";
  if (!first && policy != node.split_brain) {
    return Error{connection.location.to_string() +
                 ": after-sb-0pri, after-sb-1pri, after-sb-2pri, rr-conflict and always-asbp "
                 "must be the same for every connection of this node"};
  }
  node.split_brain = policy;
  // fencing (§7): a net option in DRBD 9, one policy per node here like the ones above. The
  // parser already checked the value against its keyword list.
  const std::string fencing_text = net_value(connection.net, "fencing");
  core::FencingPolicy fencing = core::FencingPolicy::dont_care;
  if (!fencing_text.empty()) {
    const std::optional<core::FencingPolicy> parsed = core::parse_fencing_policy(fencing_text);
    if (!parsed) {
      return Error{connection.location.to_string() + ": invalid fencing '" + fencing_text +
                   "' (expected dont-care | resource-only | resource-and-stonith)"};
    }
    fencing = *parsed;
  }
  if (!first && fencing != node.fencing) {
    return Error{connection.location.to_string() +
                 ": fencing must be the same for every connection of this node"};
  }
  node.fencing = fencing;
  return Status::success();
}

// TLS (`tls yes` plus the ditto file keywords) and connect-int from one connection's net
// section; like the options above, the same for every connection of this node.
Status apply_tls_and_reconnect(const config::Connection& connection, bool first,
                               TransportConfig& transport) {
  const config::Option* tls = connection.net.find("tls");
  const bool tls_on = tls != nullptr && tls->value_text() == "yes";
  TlsFiles files{net_value(connection.net, "tls-ca-file"),
                 net_value(connection.net, "tls-certificate-file"),
                 net_value(connection.net, "tls-privkey-file")};
  // Errors point at the first TLS keyword, else at the connection.
  const config::Option* first_tls = tls;
  for (const char* key : {"tls-ca-file", "tls-certificate-file", "tls-privkey-file"}) {
    if (first_tls == nullptr) first_tls = connection.net.find(key);
  }
  const std::string where =
      (first_tls != nullptr ? first_tls->location : connection.location).to_string() + ": ";
  if (tls_on && (files.ca_file.empty() || files.certificate_file.empty() ||
                 files.private_key_file.empty())) {
    return Error{where + "tls yes needs tls-ca-file, tls-certificate-file and tls-privkey-file"};
  }
  if (!tls_on && !files.empty()) {
    return Error{where + "tls-ca-file, tls-certificate-file and tls-privkey-file take effect "
                         "only with tls yes"};
  }
  // DRBD's connect-int (seconds, 1..120): the longest wait between two connection attempts.
  auto connect_int_seconds = net_number(connection, "connect-int", 1, 120, 0);
  if (!connect_int_seconds.ok()) return connect_int_seconds.error();
  Duration reconnect_delay_max = TransportConfig{}.reconnect_delay_max;
  if (connect_int_seconds.value() != 0) {
    reconnect_delay_max = Duration::from_ms(connect_int_seconds.value() * 1000LL);
  }
  if (!first && (files != transport.tls || reconnect_delay_max != transport.reconnect_delay_max)) {
    return Error{where + "tls, its files and connect-int must be the same for every connection "
                         "of this node"};
  }
  transport.tls = std::move(files);
  transport.reconnect_delay_max = reconnect_delay_max;
  transport.reconnect_delay_min =
      std::min(transport.reconnect_delay_min, transport.reconnect_delay_max);
  if (tls_on) {
    // Load the files now, so a bad one stops dittod with the configuration's location.
    auto context = make_tls_context(transport.tls);
    if (!context.ok()) return Error{where + context.error().message};
  }
  return Status::success();
}

// The resource's `options { quorum ...; quorum-minimum-redundancy ...; on-no-quorum ...;
// on-suspended-primary-outdated ...; }` (drbd9-semantics.md §8). The parser checked the
// keywords; the values are checked here, naming the option's location.
Status apply_quorum_options(const config::Section& options, core::QuorumSettings& quorum) {
  for (const char* key : {"quorum", "quorum-minimum-redundancy"}) {
    const config::Option* option = options.find(key);
    if (option == nullptr) continue;
    const auto rule = core::parse_quorum_rule(option->value_text());
    if (!rule) {
      return Error{option->location.to_string() + ": " + key + " '" + option->value_text() +
                   "' is not off, majority, all or a number 1..32"};
    }
    (std::string_view(key) == "quorum" ? quorum.quorum : quorum.minimum_redundancy) = *rule;
  }
  if (const config::Option* option = options.find("on-no-quorum")) {
    const std::string value = option->value_text();
    if (value != "io-error" && value != "suspend-io") {
      return Error{option->location.to_string() + ": on-no-quorum '" + value +
                   "' is not io-error or suspend-io"};
    }
    quorum.on_no_quorum =
        value == "io-error" ? core::OnNoQuorum::io_error : core::OnNoQuorum::suspend_io;
  }
  if (const config::Option* option = options.find("on-suspended-primary-outdated")) {
    const std::string value = option->value_text();
    if (value != "disconnect" && value != "force-secondary") {
      return Error{option->location.to_string() + ": on-suspended-primary-outdated '" + value +
                   "' is not disconnect or force-secondary"};
    }
    quorum.on_suspended_primary_outdated =
        value == "disconnect" ? core::OnSuspendedPrimaryOutdated::disconnect
                              : core::OnSuspendedPrimaryOutdated::force_secondary;
  }
  return Status::success();
}

// Every path of `connection` to `remote`: the remote end to dial, the local end to listen on.
void add_paths(const config::Connection& connection, const std::string& remote,
               TransportPeer& peer, TransportConfig& transport) {
  bool first = true;
  for (const config::Path& path : connection.paths) {
    const bool remote_first = path.first.host == remote;
    const config::Endpoint& far = remote_first ? path.first : path.second;
    const config::Endpoint& near = remote_first ? path.second : path.first;
    if (first) {
      peer.host = far.address;
      peer.port = far.port;
    } else {
      peer.more_paths.push_back({far.address, far.port});
    }
    first = false;
    if (!near.address.empty()) transport.more_listen.push_back({near.address, near.port});
  }
}

// A fresh seed for the node's random numbers (data generation UUIDs, transaction ids): DRBD's
// UUIDs are random, so a restarted node must not draw again the ones it drew before.
std::uint64_t fresh_node_seed() {
  std::random_device device;
  return (std::uint64_t{device()} << 32) | device();
}

}  // namespace

std::optional<std::string> read_config_file(std::string_view path) {
  std::ifstream in{std::string(path), std::ios::binary};
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return text.str();
}

Result<config::Config> parse_config_file(const std::string& path) {
  const auto text = read_config_file(path);
  if (!text) return Error{path + ": cannot read configuration: " + std::strerror(errno)};
  return config::parse(*text, path, read_config_file);
}

Result<DaemonConfig> load_daemon_config(const DaemonOptions& options) {
  auto parsed = parse_config_file(options.config_path);
  if (!parsed.ok()) return parsed.error();
  auto resource = select_resource(parsed.value(), options);
  if (!resource.ok()) return resource.error();
  return resource_daemon_config(*resource.value(), options);
}

Result<DaemonConfig> resource_daemon_config(const config::Resource& resource,
                                            const DaemonOptions& options) {
  DaemonConfig result;
  result.resource = resource;
  const std::string node_name = options.node_name.empty() ? host_name() : options.node_name;
  result.options = options;
  result.options.node_name = node_name;
  result.options.resource_name = resource.name;  // re-reading finds it among several
  const config::Host* self = result.resource.find_host(node_name);
  if (self == nullptr) {
    return Error{result.resource.location.to_string() + ": resource '" + result.resource.name +
                 "' has no 'on " + node_name + "' section (use --node to pick one)"};
  }
  result.self = *self;
  if (Status status = check_volume(result.self); !status.ok()) return status.error();
  const config::Volume& volume = result.self.volumes.front();
  result.disk_path = volume.disk;
  result.disk_location = volume.location;
  result.diskless = volume.diskless();
  auto size = volume_size_option(volume.disk_options);
  if (!size.ok()) return size.error();
  result.size_bytes = size.value();
  result.node.intentional_diskless = result.diskless;
  if (result.diskless) result.node.volume_size_bytes = result.size_bytes;

  result.node.seed = fresh_node_seed();
  result.node.resource_name = result.resource.name;
  result.node.node_id = result.self.node_id;
  result.node.node_name = result.self.name;
  result.node.protocol = result.resource.protocol();
  if (Status status = apply_quorum_options(result.resource.options, result.node.quorum);
      !status.ok()) {
    return status.error();
  }
  if (Status status = apply_resync_options(result.self.volumes.front().disk_options, result.node);
      !status.ok()) {
    return status.error();
  }
  if (Status status = apply_read_balancing(result.self.volumes.front().disk_options, result.node);
      !status.ok()) {
    return status.error();
  }
  if (const config::Option* after = result.self.volumes.front().disk_options.find("resync-after");
      after != nullptr && !after->values.empty()) {
    result.resync_after = after->values.front().substr(0, after->values.front().find('/'));
  }
  if (Status status = apply_write_path_options(result.self.volumes.front().disk_options,
                                               result.resource.options, result.node);
      !status.ok()) {
    return status.error();
  }
  result.transport.self = result.self.node_id;
  result.transport.resource_name = result.resource.name;
  result.transport.listen_host = result.self.address;
  result.transport.listen_port = result.self.port;

  bool first_connection = true;
  for (const config::Connection& connection : result.resource.effective_connections()) {
    const bool first_is_self = connection.first.host == result.self.name;
    const bool second_is_self = connection.second.host == result.self.name;
    if (!first_is_self && !second_is_self) continue;
    const config::Endpoint& remote = first_is_self ? connection.second : connection.first;
    const config::Host* peer = result.resource.find_host(remote.host);
    if (peer == nullptr) {
      return Error{connection.location.to_string() + ": connection names unknown host '" +
                   remote.host + "'"};
    }
    if (Status status = apply_protocol_options(connection, first_connection, result.node);
        !status.ok()) {
      return status.error();
    }
    if (Status status = apply_congestion_options(connection, first_connection, result.node);
        !status.ok()) {
      return status.error();
    }
    if (Status status = apply_net_options(connection, first_connection, result.transport);
        !status.ok()) {
      return status.error();
    }
    if (Status status = apply_tls_and_reconnect(connection, first_connection, result.transport);
        !status.ok()) {
      return status.error();
    }
    if (Status status = apply_split_brain_options(connection, first_connection, result.node);
        !status.ok()) {
      return status.error();
    }
    if (Status status = apply_digest_algorithms(connection, first_connection, result.node);
        !status.ok()) {
      return status.error();
    }
    first_connection = false;
    // The first path is dialed first; the others are failed over to (transport_tcp.h).
    TransportPeer transport_peer{peer->node_id, peer->name, {}, 0, {}};
    add_paths(connection, remote.host, transport_peer, result.transport);
    result.node.peers.push_back({peer->node_id, peer->name});
    result.transport.peers.push_back(std::move(transport_peer));
  }
  // A resource with one host and no peers is allowed: a single-node volume (benchmarks use it).
  return result;
}

}  // namespace ditto::datapath
