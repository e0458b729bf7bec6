// Schedule files: JSON written by a failing run and read by `ditto-sim replay` and `shrink`.
// Reading is parsing untrusted input: every field is checked and an error names it.
#include <limits>
#include <nlohmann/json.hpp>
#include <type_traits>

#include "sim/schedule.h"

namespace ditto::sim {
namespace {

using nlohmann::json;
constexpr int schedule_version = 1;

json model_json(const netem::LatencyModel& model) {
  return json::array(
      {model.base_ns, model.jitter_ns_max, model.tail_per_million, model.tail_ns_max});
}

json helper_scripts_json(const std::vector<HelperScript>& scripts) {
  json array = json::array();
  for (const HelperScript& script : scripts) {
    array.push_back({{"node", script.node}, {"helper", script.helper},
                     {"exit_code", script.exit_code}});
  }
  return array;
}

json options_json(const SimOptions& options) {
  json faults = json::object();
  for (std::size_t position = 0; position < netem::fault_class_count; ++position) {
    if (options.faults[position] == 0) continue;
    faults[std::string(netem::name(static_cast<netem::FaultClass>(position)))] =
        options.faults[position];
  }
  const WorkloadOptions& workload = options.workload;
  return json{{"seed", options.seed},
              {"nodes", options.nodes},
              {"volume_size_bytes", options.volume_size_bytes},
              {"operations", workload.operations},
              {"queue_depth_max", workload.queue_depth_max},
              {"queue_depth", workload.queue_depth},
              {"read_percent", workload.read_percent},
              {"flush_percent", workload.flush_percent},
              {"fua_percent", workload.fua_percent},
              {"blocks_per_write_max", workload.blocks_per_write_max},
              {"network", model_json(options.network)},
              {"disk", model_json(options.disk)},
              {"connect_delay_ns", options.connect_delay.ns},
              {"reconnect_delay_ns", options.reconnect_delay.ns},
              {"detection_delay_max_ns", options.detection_delay_max.ns},
              {"crash_primary", options.crash_primary},
              {"al_extents", options.al_extents},
              {"c_max_rate_kib", options.c_max_rate_kib},
              {"quorum", core::to_string(options.quorum.quorum)},
              {"on_no_quorum", std::string(core::to_string(options.quorum.on_no_quorum))},
              {"faults", faults},
              {"faults_per_1000_ops", options.faults_per_1000_ops},
              {"stall_timeout_ns", options.stall_timeout.ns},
              {"settle_time_ns", options.settle_time.ns},
              {"liveness_bound_ns", options.liveness_bound.ns},
              {"resync_bound_ns", options.resync_bound.ns},
              {"swarm_operations_max", options.swarm_operations_max},
              {"fencing", core::to_string(options.fencing)},
              {"helper_delay_ns", options.helper_delay.ns},
              {"helper_scripts", helper_scripts_json(options.helper_scripts)},
              {"csums_alg", options.csums ? "crc32c" : ""},
              {"csums_after_crash_only", options.csums_after_crash_only},
              {"read_balancing", core::to_string(options.read_balancing)},
              {"diskless_client", options.diskless_client},
              {"protocol", std::string(to_string(options.protocol))},
              {"on_congestion", core::to_string(options.on_congestion)},
              {"congestion_fill_sectors", options.congestion_fill_sectors}};
}

// Field readers: each checks presence and type and names the field on error.
class Reader {
 public:
  Reader(const json& object, std::string where) : object_(object), where_(std::move(where)) {}

  template <class T>
  Status integer(const char* key, T& out, bool required = true) {
    const auto found = object_.find(key);
    if (found == object_.end()) {
      return required ? Status{Error{where_ + ": missing field '" + key + "'"}} : Status::success();
    }
    if (!found->is_number_integer()) {
      return Error{where_ + ": field '" + key + "' must be an integer"};
    }
    if constexpr (std::is_signed_v<T>) {
      const auto value = found->get<std::int64_t>();
      if (value < 0) return Error{where_ + ": field '" + key + "' must not be negative"};
      out = static_cast<T>(value);
    } else {
      if (found->is_number_unsigned()) {
        const auto value = found->get<std::uint64_t>();
        if (value > std::numeric_limits<T>::max()) {
          return Error{where_ + ": field '" + key + "' is too large"};
        }
        out = static_cast<T>(value);
      } else {
        const auto value = found->get<std::int64_t>();
        if (value < 0) return Error{where_ + ": field '" + key + "' must not be negative"};
        if (static_cast<std::uint64_t>(value) > std::numeric_limits<T>::max()) {
          return Error{where_ + ": field '" + key + "' is too large"};
        }
        out = static_cast<T>(value);
      }
    }
    return Status::success();
  }

  Status duration(const char* key, Duration& out) { return integer(key, out.ns); }

  Status boolean(const char* key, bool& out) {
    const auto found = object_.find(key);
    if (found == object_.end()) return Error{where_ + ": missing field '" + key + "'"};
    if (!found->is_boolean()) return Error{where_ + ": field '" + key + "' must be true or false"};
    out = found->get<bool>();
    return Status::success();
  }

  Status model(const char* key, netem::LatencyModel& out) {
    const auto found = object_.find(key);
    if (found == object_.end()) return Error{where_ + ": missing field '" + key + "'"};
    if (!found->is_array() || found->size() != 4) {
      return Error{where_ + ": field '" + key +
                   "' must be [base_ns, jitter_ns_max, "
                   "tail_per_million, tail_ns_max]"};
    }
    for (const json& value : *found) {
      if (!value.is_number_integer() || value.get<std::int64_t>() < 0) {
        return Error{where_ + ": field '" + key + "' must hold non-negative integers"};
      }
    }
    out = netem::LatencyModel{(*found)[0].get<std::int64_t>(), (*found)[1].get<std::int64_t>(),
                              static_cast<std::uint32_t>(std::min<std::int64_t>(
                                  (*found)[2].get<std::int64_t>(), 2'000'000)),
                              (*found)[3].get<std::int64_t>()};
    return out.validate();
  }

 private:
  const json& object_;
  std::string where_;
};

#define DITTO_TRY(expression)                                            \
  do {                                                                   \
    if (Status status_ = (expression); !status_) return status_.error(); \
  } while (false)

// "fencing", "helper_delay_ns" and "helper_scripts" (optional: schedules written before fencing
// existed run without).
Status fencing_from_json(const json& object, SimOptions& options) {
  if (const auto found = object.find("fencing"); found != object.end()) {
    const auto policy = found->is_string() ? core::parse_fencing_policy(found->get<std::string>())
                                           : std::nullopt;
    if (!policy) {
      return Error{"schedule options: field 'fencing' must be \"dont-care\", \"resource-only\" "
                   "or \"resource-and-stonith\""};
    }
    options.fencing = *policy;
  }
  Reader read(object, "schedule options");
  DITTO_TRY(read.integer("helper_delay_ns", options.helper_delay.ns, false));
  const auto scripts = object.find("helper_scripts");
  if (scripts == object.end()) return Status::success();
  if (!scripts->is_array()) return Error{"schedule options: 'helper_scripts' must be an array"};
  for (std::size_t position = 0; position < scripts->size(); ++position) {
    const json& entry = (*scripts)[position];
    const std::string where = "schedule options: helper_scripts[" + std::to_string(position) + "]";
    if (!entry.is_object()) return Error{where + " must be an object"};
    HelperScript script;
    Reader fields(entry, where);
    DITTO_TRY(fields.integer("node", script.node));
    std::int64_t exit_code = 0;
    DITTO_TRY(fields.integer("exit_code", exit_code));
    if (exit_code > 255) return Error{where + ": field 'exit_code' must be 0..255"};
    script.exit_code = static_cast<int>(exit_code);
    const auto helper = entry.find("helper");
    if (helper == entry.end() || !helper->is_string()) {
      return Error{where + ": field 'helper' must be a string"};
    }
    script.helper = helper->get<std::string>();
    options.helper_scripts.push_back(std::move(script));
  }
  return Status::success();
}

// "quorum" and "on_no_quorum" (optional: schedules written before quorum existed run without).
Status quorum_from_json(const json& object, core::QuorumSettings& quorum) {
  if (const auto found = object.find("quorum"); found != object.end()) {
    const auto rule =
        found->is_string() ? core::parse_quorum_rule(found->get<std::string>()) : std::nullopt;
    if (!rule) {
      return Error{"schedule options: field 'quorum' must be \"off\", \"majority\", \"all\" or "
                   "\"1\"..\"32\""};
    }
    quorum.quorum = *rule;
  }
  if (const auto found = object.find("on_no_quorum"); found != object.end()) {
    const std::string value = found->is_string() ? found->get<std::string>() : "";
    if (value != "io-error" && value != "suspend-io") {
      return Error{"schedule options: field 'on_no_quorum' must be \"io-error\" or "
                   "\"suspend-io\""};
    }
    quorum.on_no_quorum =
        value == "io-error" ? core::OnNoQuorum::io_error : core::OnNoQuorum::suspend_io;
  }
  return Status::success();
}

// "csums_alg" ("" or "crc32c") and "csums_after_crash_only" (optional: schedules written before
// checksum resync existed run without).
Status csums_from_json(const json& object, SimOptions& options) {
  if (const auto found = object.find("csums_alg"); found != object.end()) {
    const bool known = found->is_string() && (found->get<std::string>().empty() ||
                                              found->get<std::string>() == "crc32c");
    if (!known) return Error{"schedule options: field 'csums_alg' must be \"\" or \"crc32c\""};
    options.csums = !found->get<std::string>().empty();
  }
  if (object.find("csums_after_crash_only") == object.end()) return Status::success();
  Reader read(object, "schedule options");
  return read.boolean("csums_after_crash_only", options.csums_after_crash_only);
}

// "read_balancing" (drbdsetup's spelling) and "diskless_client" (optional: schedules written
// before reads through peers existed run with prefer-local and a disk on every node).
Status reads_from_json(const json& object, SimOptions& options) {
  if (const auto found = object.find("read_balancing"); found != object.end()) {
    const auto policy = found->is_string()
                            ? core::parse_read_balancing(found->get<std::string>())
                            : std::nullopt;
    if (!policy) {
      return Error{"schedule options: field 'read_balancing' must be a read-balancing policy "
                   "such as \"prefer-local\" or \"32K-striping\""};
    }
    options.read_balancing = *policy;
  }
  if (object.find("diskless_client") == object.end()) return Status::success();
  Reader read(object, "schedule options");
  return read.boolean("diskless_client", options.diskless_client);
}

// "protocol" ("A", "B" or "C"), "on_congestion" (drbd.conf's spelling) and
// "congestion_fill_sectors" (optional: schedules written before congestion ran protocol C).
Status congestion_from_json(const json& object, SimOptions& options) {
  if (const auto found = object.find("protocol"); found != object.end()) {
    const std::string value = found->is_string() ? found->get<std::string>() : "";
    if (value != "A" && value != "B" && value != "C") {
      return Error{"schedule options: field 'protocol' must be \"A\", \"B\" or \"C\""};
    }
    options.protocol = value == "A" ? Protocol::a : value == "B" ? Protocol::b : Protocol::c;
  }
  if (const auto found = object.find("on_congestion"); found != object.end()) {
    const auto policy = found->is_string() ? core::parse_on_congestion(found->get<std::string>())
                                           : std::nullopt;
    if (!policy) {
      return Error{"schedule options: field 'on_congestion' must be \"block\", "
                   "\"pull-ahead\" or \"disconnect\""};
    }
    options.on_congestion = *policy;
  }
  Reader read(object, "schedule options");
  return read.integer("congestion_fill_sectors", options.congestion_fill_sectors, false);
}

Result<SimOptions> options_from_json(const json& object) {
  if (!object.is_object()) return Error{"schedule: 'options' must be an object"};
  SimOptions options;
  Reader read(object, "schedule options");
  WorkloadOptions& workload = options.workload;
  DITTO_TRY(read.integer("seed", options.seed));
  DITTO_TRY(read.integer("nodes", options.nodes));
  DITTO_TRY(read.integer("volume_size_bytes", options.volume_size_bytes));
  DITTO_TRY(read.integer("operations", workload.operations));
  DITTO_TRY(read.integer("queue_depth_max", workload.queue_depth_max));
  DITTO_TRY(read.integer("queue_depth", workload.queue_depth));
  DITTO_TRY(read.integer("read_percent", workload.read_percent));
  DITTO_TRY(read.integer("flush_percent", workload.flush_percent));
  DITTO_TRY(read.integer("fua_percent", workload.fua_percent));
  DITTO_TRY(read.integer("blocks_per_write_max", workload.blocks_per_write_max));
  DITTO_TRY(read.model("network", options.network));
  DITTO_TRY(read.model("disk", options.disk));
  DITTO_TRY(read.duration("connect_delay_ns", options.connect_delay));
  DITTO_TRY(read.duration("reconnect_delay_ns", options.reconnect_delay));
  DITTO_TRY(read.duration("detection_delay_max_ns", options.detection_delay_max));
  DITTO_TRY(read.boolean("crash_primary", options.crash_primary));
  DITTO_TRY(read.integer("al_extents", options.al_extents, false));
  DITTO_TRY(read.integer("c_max_rate_kib", options.c_max_rate_kib, false));
  DITTO_TRY(read.integer("faults_per_1000_ops", options.faults_per_1000_ops));
  DITTO_TRY(quorum_from_json(object, options.quorum));
  DITTO_TRY(fencing_from_json(object, options));
  DITTO_TRY(csums_from_json(object, options));
  DITTO_TRY(reads_from_json(object, options));
  DITTO_TRY(congestion_from_json(object, options));
  DITTO_TRY(read.duration("stall_timeout_ns", options.stall_timeout));
  DITTO_TRY(read.duration("settle_time_ns", options.settle_time));
  DITTO_TRY(read.integer("liveness_bound_ns", options.liveness_bound.ns, false));
  DITTO_TRY(read.integer("resync_bound_ns", options.resync_bound.ns, false));
  DITTO_TRY(read.integer("swarm_operations_max", options.swarm_operations_max, false));
  const auto faults = object.find("faults");
  if (faults == object.end() || !faults->is_object()) {
    return Error{"schedule options: field 'faults' must be an object {class: weight}"};
  }
  for (const auto& [key, value] : faults->items()) {
    const auto fault = netem::parse_fault_class(key);
    if (!fault) return Error{"schedule options: unknown fault class '" + key + "'"};
    if (!value.is_number_unsigned() || value.get<std::uint64_t>() > 1'000'000) {
      return Error{"schedule options: weight of '" + key + "' must be an integer 0..1000000"};
    }
    options.faults[netem::index(*fault)] = value.get<std::uint32_t>();
  }
  DITTO_TRY(validate(options));
  return options;
}

Result<FaultEvent> fault_from_json(const json& object, std::size_t position,
                                   const SimOptions& options) {
  const std::string where = "schedule faults[" + std::to_string(position) + "]";
  if (!object.is_object()) return Error{where + ": must be an object"};
  FaultEvent event;
  const auto fault = object.find("fault");
  if (fault == object.end() || !fault->is_string()) {
    return Error{where + ": field 'fault' must name a fault class"};
  }
  const auto parsed = netem::parse_fault_class(fault->get<std::string>());
  if (!parsed) return Error{where + ": unknown fault class '" + fault->get<std::string>() + "'"};
  event.fault = *parsed;
  Reader read(object, where);
  DITTO_TRY(read.integer("after_op", event.after_op));
  DITTO_TRY(read.integer("delay_ns", event.delay_ns));
  DITTO_TRY(read.integer("node", event.node));
  DITTO_TRY(read.integer("peer", event.peer));
  DITTO_TRY(read.integer("duration_ns", event.duration_ns));
  DITTO_TRY(read.integer("parameter", event.parameter));
  if (object.contains("model")) DITTO_TRY(read.model("model", event.model));
  if (event.node >= options.nodes || event.peer >= options.nodes || event.node == event.peer) {
    return Error{where + ": node " + std::to_string(event.node) + " and peer " +
                 std::to_string(event.peer) + " must be different nodes below " +
                 std::to_string(options.nodes)};
  }
  constexpr std::int64_t hour_ns = 3600LL * 1000 * 1000 * 1000;
  if (event.delay_ns > hour_ns || event.duration_ns > hour_ns) {
    return Error{where + ": delays and durations above one hour are not supported"};
  }
  return event;
}

Result<OperationSpec> operation_from_json(const json& value, std::size_t position,
                                          std::uint64_t block_count) {
  const std::string where = "schedule operations[" + std::to_string(position) + "]";
  if (!value.is_array() || value.size() != 4 || !value[0].is_string() ||
      !value[1].is_number_unsigned() || !value[2].is_number_unsigned() || !value[3].is_boolean()) {
    return Error{where + ": must be [\"write\"|\"read\"|\"flush\", first_block, block_count, fua]"};
  }
  OperationSpec operation;
  const std::string kind = value[0].get<std::string>();
  if (kind == "write") {
    operation.kind = OperationKind::write;
  } else if (kind == "read") {
    operation.kind = OperationKind::read;
  } else if (kind == "flush") {
    operation.kind = OperationKind::flush;
  } else {
    return Error{where + ": unknown operation '" + kind + "'"};
  }
  operation.first_block = value[1].get<std::uint64_t>();
  const std::uint64_t count = value[2].get<std::uint64_t>();
  operation.fua = value[3].get<bool>();
  const bool is_flush = operation.kind == OperationKind::flush;
  if (is_flush ? count != 0
               : (count < 1 || count > 16 || operation.first_block >= block_count ||
                  count > block_count - operation.first_block)) {
    return Error{where + ": blocks " + std::to_string(operation.first_block) + "+" +
                 std::to_string(count) + " do not fit the volume of " +
                 std::to_string(block_count) + " blocks"};
  }
  operation.block_count = static_cast<std::uint32_t>(count);
  return operation;
}

}  // namespace

std::string to_json(const Schedule& schedule) {
  json faults = json::array();
  for (const FaultEvent& event : schedule.faults) {
    json entry{{"fault", netem::name(event.fault)},
               {"after_op", event.after_op},
               {"delay_ns", event.delay_ns},
               {"node", event.node},
               {"peer", event.peer},
               {"duration_ns", event.duration_ns},
               {"parameter", event.parameter}};
    if (event.fault == netem::FaultClass::link_delay ||
        event.fault == netem::FaultClass::disk_latency) {
      entry["model"] = model_json(event.model);
    }
    faults.push_back(entry);
  }
  json document{{"version", schedule_version},
                {"options", options_json(schedule.options)},
                {"faults", faults}};
  if (schedule.operations) {
    json operations = json::array();
    for (const OperationSpec& operation : *schedule.operations) {
      operations.push_back(json::array(
          {name(operation.kind), operation.first_block, operation.block_count, operation.fua}));
    }
    document["operations"] = operations;
  }
  return document.dump(1);
}

Result<Schedule> schedule_from_json(std::string_view text) {
  const json document = json::parse(text, nullptr, false);
  if (document.is_discarded()) return Error{"schedule: not valid JSON"};
  if (!document.is_object()) return Error{"schedule: the top level must be an object"};
  const auto version = document.find("version");
  if (version == document.end() || !version->is_number_integer() ||
      version->get<std::int64_t>() != schedule_version) {
    return Error{"schedule: field 'version' must be " + std::to_string(schedule_version)};
  }
  if (!document.contains("options")) return Error{"schedule: missing field 'options'"};
  Result<SimOptions> options = options_from_json(document["options"]);
  if (!options) return options.error();
  Schedule schedule;
  schedule.options = options.value();
  const auto faults = document.find("faults");
  if (faults == document.end() || !faults->is_array()) {
    return Error{"schedule: field 'faults' must be an array"};
  }
  for (std::size_t position = 0; position < faults->size(); ++position) {
    Result<FaultEvent> event = fault_from_json((*faults)[position], position, schedule.options);
    if (!event) return event.error();
    schedule.faults.push_back(event.value());
  }
  const auto operations = document.find("operations");
  if (operations != document.end()) {
    if (!operations->is_array()) return Error{"schedule: field 'operations' must be an array"};
    const std::uint64_t block_count = schedule.options.volume_size_bytes / 4096;
    schedule.operations.emplace();
    for (std::size_t position = 0; position < operations->size(); ++position) {
      Result<OperationSpec> operation =
          operation_from_json((*operations)[position], position, block_count);
      if (!operation) return operation.error();
      schedule.operations->push_back(operation.value());
    }
    if (schedule.operations->empty()) return Error{"schedule: 'operations' is empty"};
    schedule.options.workload.operations = schedule.operations->size();
  }
  return schedule;
}

}  // namespace ditto::sim
