// Scenario files. Reading is parsing untrusted input: every field is checked, unknown fields are
// refused, and the timeline is replayed (which node is alive, which is Primary) so an impossible
// step is refused with the JSON path of the field that makes it impossible.
#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "faults/scenario.h"

namespace ditto::faults {
namespace {

using nlohmann::json;

Error at(const std::string& path, const std::string& message) {
  return Error{path + ": " + message};
}

#define DITTO_FAULTS_TRY(expression)          \
  do {                                        \
    Status status_ = (expression);            \
    if (!status_.ok()) return status_.error(); \
  } while (false)

// One JSON object being read: remembers the keys read so the rest can be refused.
class Fields {
 public:
  Fields(const json& object, std::string path) : object_(object), path_(std::move(path)) {}

  std::string path(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }
  bool has(const std::string& key) {
    known_.insert(key);
    return object_.contains(key);
  }
  const json& get(const std::string& key) {
    known_.insert(key);
    return object_.at(key);
  }

  template <class T>
  Status unsigned_integer(const std::string& key, T& out, std::uint64_t low, std::uint64_t high,
                          bool required = false) {
    if (!has(key)) {
      if (required) return at(path(key), "missing");
      return {};
    }
    const json& value = get(key);
    if (!value.is_number_unsigned()) {
      return at(path(key), value.dump() + " is not a non-negative integer");
    }
    const auto number = value.get<std::uint64_t>();
    if (number < low || number > high) {
      return at(path(key), std::to_string(number) + " is not in " + std::to_string(low) + ".." +
                               std::to_string(high));
    }
    out = static_cast<T>(number);
    return {};
  }
  Status string(const std::string& key, std::string& out, bool required = false) {
    if (!has(key)) {
      if (required) return at(path(key), "missing");
      return {};
    }
    const json& value = get(key);
    if (!value.is_string()) return at(path(key), value.dump() + " is not a string");
    out = value.get<std::string>();
    return {};
  }
  // An optional string naming one of `choices` (value, name): out keeps its default if absent.
  template <class T>
  Status choice(const std::string& key, std::initializer_list<std::pair<const char*, T>> choices,
                T& out) {
    std::string text;
    DITTO_FAULTS_TRY(string(key, text));
    if (!has(key)) return {};
    std::string names;
    for (const auto& [word, value] : choices) {
      if (text == word) {
        out = value;
        return {};
      }
      names += names.empty() ? word : std::string(", ") + word;
    }
    return at(path(key), "\"" + text + "\" is not one of " + names);
  }
  Status boolean(const std::string& key, bool& out) {
    if (!has(key)) return {};
    const json& value = get(key);
    if (!value.is_boolean()) return at(path(key), value.dump() + " is not true or false");
    out = value.get<bool>();
    return {};
  }
  // Refuses every key that was not read.
  Status no_unknown() const {
    for (const auto& [key, value] : object_.items()) {
      if (known_.count(key) == 0) return at(path(key), "unknown field");
    }
    return {};
  }

 private:
  const json& object_;
  std::string path_;
  std::set<std::string> known_;
};

// The timeline so far: what each step may assume.
struct Timeline {
  std::uint32_t nodes = 0;
  std::vector<bool> alive;
  std::optional<std::uint8_t> primary;
};

Status read_node(Fields& fields, const std::string& key, const Timeline& timeline,
                 std::uint8_t& node) {
  if (!fields.has(key)) return at(fields.path(key), "missing");
  const json& value = fields.get(key);
  if (!value.is_number_unsigned()) {
    return at(fields.path(key), value.dump() + " is not a node number");
  }
  const auto number = value.get<std::uint64_t>();
  if (number >= timeline.nodes) {
    return at(fields.path(key), std::to_string(number) + " is not a node of a " +
                                    std::to_string(timeline.nodes) + "-node cluster");
  }
  node = static_cast<std::uint8_t>(number);
  return {};
}

Status read_cluster(const json& value, ClusterShape& cluster) {
  if (!value.is_object()) return at("cluster", "is not an object");
  Fields fields(value, "cluster");
  DITTO_FAULTS_TRY(fields.unsigned_integer("nodes", cluster.nodes, nodes_min, nodes_max, true));
  DITTO_FAULTS_TRY(fields.choice(
      "protocol", {{"A", Protocol::a}, {"B", Protocol::b}, {"C", Protocol::c}}, cluster.protocol));
  DITTO_FAULTS_TRY(fields.choice("quorum", {{"off", Quorum::off}, {"majority", Quorum::majority}},
                                 cluster.quorum));
  bool diskless = false;
  DITTO_FAULTS_TRY(fields.boolean("diskless_client", diskless));
  if (diskless) {
    if (cluster.nodes < 3) {
      return at("cluster.diskless_client", "needs at least 3 nodes (two with disks)");
    }
    cluster.diskless_node = 0;
  }
  std::uint64_t size_mib = 16;
  DITTO_FAULTS_TRY(fields.unsigned_integer("volume_size_mib", size_mib, 1, 1024));
  cluster.volume_size_bytes = size_mib << 20;
  return fields.no_unknown();
}

Status read_region(Fields& fields, const ClusterShape& cluster, Step& step) {
  const std::uint64_t blocks = cluster.blocks();
  DITTO_FAULTS_TRY(fields.unsigned_integer("first_block", step.first_block, 0, blocks - 1));
  step.blocks = blocks - step.first_block;
  DITTO_FAULTS_TRY(fields.unsigned_integer("blocks", step.blocks, 1, blocks));
  if (step.first_block + step.blocks > blocks) {
    return at(fields.path("blocks"), "blocks " + std::to_string(step.first_block) + ".." +
                                         std::to_string(step.first_block + step.blocks - 1) +
                                         " reach past the volume's last block " +
                                         std::to_string(blocks - 1));
  }
  return {};
}

Status read_write(Fields& fields, const ClusterShape& cluster, Timeline& timeline, Step& step) {
  DITTO_FAULTS_TRY(
      fields.unsigned_integer("ops", step.operations, 1, operations_per_step_max, true));
  DITTO_FAULTS_TRY(read_region(fields, cluster, step));
  DITTO_FAULTS_TRY(fields.unsigned_integer("queue_depth", step.queue_depth, 1, queue_depth_max));
  DITTO_FAULTS_TRY(fields.choice(
      "expect", {{"ok", Expect::ok}, {"fail", Expect::fail}, {"any", Expect::any}}, step.expect));
  if (!timeline.primary) return at(fields.path("step"), "writes need a Primary, there is none");
  if (fields.has("crash_node")) {
    std::uint8_t node = 0;
    DITTO_FAULTS_TRY(read_node(fields, "crash_node", timeline, node));
    if (!timeline.alive[node]) {
      return at(fields.path("crash_node"), "node " + std::to_string(node) + " is down already");
    }
    step.crash_node = node;
    DITTO_FAULTS_TRY(
        fields.unsigned_integer("crash_after", step.crash_after, 1, step.operations, true));
    timeline.alive[node] = false;
    if (timeline.primary == node) timeline.primary.reset();
  } else if (fields.has("crash_after")) {
    return at(fields.path("crash_after"), "needs crash_node");
  }
  return {};
}

Status read_partition(Fields& fields, const Timeline& timeline, Step& step) {
  const int shapes = int{fields.has("groups")} + int{fields.has("isolate")} +
                     int{fields.has("from")};
  if (shapes != 1) {
    return at(fields.path("step"), "a partition names exactly one of groups, isolate, from/to");
  }
  if (fields.has("isolate")) {
    std::uint8_t node = 0;
    DITTO_FAULTS_TRY(read_node(fields, "isolate", timeline, node));
    step.partition_shape = "isolate";
    for (std::uint8_t other = 0; other < timeline.nodes; ++other) {
      if (other == node) continue;
      step.blocked.push_back({node, other});
      step.blocked.push_back({other, node});
    }
    return {};
  }
  if (fields.has("from")) {
    DirectedLink link;
    DITTO_FAULTS_TRY(read_node(fields, "from", timeline, link.from));
    DITTO_FAULTS_TRY(read_node(fields, "to", timeline, link.to));
    if (link.from == link.to) return at(fields.path("to"), "is the same node as from");
    step.partition_shape = "one-way";
    step.blocked.push_back(link);
    return {};
  }
  const json& groups = fields.get("groups");
  const std::string path = fields.path("groups");
  if (!groups.is_array() || groups.size() != 2) {
    return at(path, "is not a list of two groups of nodes");
  }
  std::vector<int> side(timeline.nodes, -1);
  for (std::size_t group = 0; group < 2; ++group) {
    const std::string group_path = path + "[" + std::to_string(group) + "]";
    if (!groups[group].is_array() || groups[group].empty()) {
      return at(group_path, "is not a non-empty list of nodes");
    }
    for (std::size_t entry = 0; entry < groups[group].size(); ++entry) {
      const json& value = groups[group][entry];
      const std::string entry_path = group_path + "[" + std::to_string(entry) + "]";
      if (!value.is_number_unsigned() || value.get<std::uint64_t>() >= timeline.nodes) {
        return at(entry_path, value.dump() + " is not a node of a " +
                                  std::to_string(timeline.nodes) + "-node cluster");
      }
      const auto node = value.get<std::size_t>();
      if (side[node] != -1) return at(entry_path, "node " + value.dump() + " is listed twice");
      side[node] = static_cast<int>(group);
    }
  }
  for (std::uint32_t node = 0; node < timeline.nodes; ++node) {
    if (side[node] == -1) {
      return at(path, "node " + std::to_string(node) + " is in neither group");
    }
  }
  step.partition_shape = "groups";
  for (std::uint8_t from = 0; from < timeline.nodes; ++from) {
    for (std::uint8_t to = 0; to < timeline.nodes; ++to) {
      if (side[from] != side[to]) step.blocked.push_back({from, to});
    }
  }
  return {};
}

Status read_delay(const json& value, const std::string& path, netem::LatencyModel& model) {
  if (!value.is_object()) return at(path, "is not an object");
  Fields fields(value, path);
  constexpr std::uint64_t microseconds_max = 10'000'000;
  std::uint64_t base_us = 0;
  std::uint64_t jitter_us = 0;
  std::uint64_t tail_us = 0;
  DITTO_FAULTS_TRY(fields.unsigned_integer("base_us", base_us, 0, microseconds_max, true));
  DITTO_FAULTS_TRY(fields.unsigned_integer("jitter_us", jitter_us, 0, microseconds_max));
  DITTO_FAULTS_TRY(
      fields.unsigned_integer("tail_per_million", model.tail_per_million, 0, 1'000'000));
  DITTO_FAULTS_TRY(fields.unsigned_integer("tail_us", tail_us, 0, microseconds_max));
  DITTO_FAULTS_TRY(fields.no_unknown());
  model.base_ns = static_cast<std::int64_t>(base_us * 1000);
  model.jitter_ns_max = static_cast<std::int64_t>(jitter_us * 1000);
  model.tail_ns_max = static_cast<std::int64_t>(tail_us * 1000);
  if (Status valid = model.validate(); !valid.ok()) return at(path, valid.error().message);
  return {};
}

Status read_link(Fields& fields, const Timeline& timeline, Step& step) {
  DirectedLink link;
  DITTO_FAULTS_TRY(read_node(fields, "from", timeline, link.from));
  DITTO_FAULTS_TRY(read_node(fields, "to", timeline, link.to));
  if (link.from == link.to) return at(fields.path("to"), "is the same node as from");
  bool both = false;
  DITTO_FAULTS_TRY(fields.boolean("both_directions", both));
  step.links.push_back(link);
  if (both) step.links.push_back({link.to, link.from});
  if (fields.has("delay")) {
    netem::LatencyModel model;
    DITTO_FAULTS_TRY(read_delay(fields.get("delay"), fields.path("delay"), model));
    step.impairment.delay = model;
  }
  DITTO_FAULTS_TRY(fields.unsigned_integer("loss_percent", step.impairment.loss_percent, 0, 100));
  std::uint64_t rate_kib_s = 0;
  DITTO_FAULTS_TRY(fields.unsigned_integer("rate_kib_s", rate_kib_s, 0, 10'000'000));
  step.impairment.rate_bytes_per_second = rate_kib_s * 1024;
  return {};
}

Status read_wait(Fields& fields, const Timeline& timeline, Step& step) {
  if (!fields.has("until")) return at(fields.path("until"), "missing");
  DITTO_FAULTS_TRY(fields.choice("until",
                                 {{"connected", WaitCondition::connected},
                                  {"up-to-date", WaitCondition::up_to_date},
                                  {"primary", WaitCondition::primary},
                                  {"quorum-lost", WaitCondition::quorum_lost}},
                                 step.condition));
  if (step.condition == WaitCondition::primary || step.condition == WaitCondition::quorum_lost) {
    DITTO_FAULTS_TRY(read_node(fields, "node", timeline, step.wait_node));
  }
  return fields.unsigned_integer("timeout_ms", step.timeout_ms, 1, timeout_ms_max);
}

Status read_check(Fields& fields, Step& step) {
  if (!fields.has("oracles")) return {};
  const json& oracles = fields.get("oracles");
  if (!oracles.is_array() || oracles.empty()) {
    return at(fields.path("oracles"), "is not a non-empty list of oracle names");
  }
  step.check_acknowledged = false;
  step.check_identical = false;
  for (std::size_t index = 0; index < oracles.size(); ++index) {
    const json& oracle = oracles[index];
    const std::string path = fields.path("oracles") + "[" + std::to_string(index) + "]";
    if (oracle == "acknowledged-writes") {
      step.check_acknowledged = true;
    } else if (oracle == "replicas-identical") {
      step.check_identical = true;
    } else {
      return at(path, oracle.dump() + " is not acknowledged-writes or replicas-identical");
    }
  }
  return {};
}

// The node steps: crash, restart, primary, secondary, disconnect, connect.
Status read_node_step(Fields& fields, Timeline& timeline, Step& step) {
  DITTO_FAULTS_TRY(read_node(fields, "node", timeline, step.node));
  const std::string node_text = "node " + std::to_string(step.node);
  const bool alive = timeline.alive[step.node];
  switch (step.kind) {
    case StepKind::crash:
      if (!alive) return at(fields.path("node"), node_text + " is down already");
      timeline.alive[step.node] = false;
      if (timeline.primary == step.node) timeline.primary.reset();
      return {};
    case StepKind::restart:
      if (alive) return at(fields.path("node"), node_text + " is running");
      timeline.alive[step.node] = true;
      return {};
    case StepKind::primary:
      if (!alive) return at(fields.path("node"), node_text + " is down");
      if (timeline.primary && timeline.primary != step.node) {
        return at(fields.path("node"), "node " + std::to_string(*timeline.primary) +
                                            " is Primary; make it secondary first");
      }
      timeline.primary = step.node;
      return {};
    case StepKind::secondary:
      if (timeline.primary != step.node) {
        return at(fields.path("node"), node_text + " is not Primary");
      }
      timeline.primary.reset();
      return {};
    default:  // disconnect, connect
      DITTO_FAULTS_TRY(read_node(fields, "peer", timeline, step.peer));
      if (step.peer == step.node) return at(fields.path("peer"), "is the same node as node");
      if (!alive) return at(fields.path("node"), node_text + " is down");
      return {};
  }
}

const std::pair<const char*, StepKind> step_names[] = {
    {"write", StepKind::write},         {"read-verify", StepKind::read_verify},
    {"partition", StepKind::partition}, {"heal", StepKind::heal},
    {"link", StepKind::link},           {"crash", StepKind::crash},
    {"restart", StepKind::restart},     {"primary", StepKind::primary},
    {"secondary", StepKind::secondary}, {"disconnect", StepKind::disconnect},
    {"connect", StepKind::connect},     {"wait", StepKind::wait},
    {"check", StepKind::check},
};

Status read_step(const json& value, const std::string& path, const ClusterShape& cluster,
                 Timeline& timeline, Step& step) {
  if (!value.is_object()) return at(path, "is not an object");
  Fields fields(value, path);
  std::string kind;
  DITTO_FAULTS_TRY(fields.string("step", kind, true));
  const auto found = std::find_if(std::begin(step_names), std::end(step_names),
                                  [&](const auto& entry) { return kind == entry.first; });
  if (found == std::end(step_names)) {
    return at(fields.path("step"), "\"" + kind + "\" is not a step kind");
  }
  step.kind = found->second;
  switch (step.kind) {
    case StepKind::write:
      DITTO_FAULTS_TRY(read_write(fields, cluster, timeline, step));
      break;
    case StepKind::read_verify:
      if (!timeline.primary) return at(fields.path("step"), "reads need a Primary, there is none");
      break;
    case StepKind::partition:
      DITTO_FAULTS_TRY(read_partition(fields, timeline, step));
      break;
    case StepKind::link:
      DITTO_FAULTS_TRY(read_link(fields, timeline, step));
      break;
    case StepKind::wait:
      DITTO_FAULTS_TRY(read_wait(fields, timeline, step));
      break;
    case StepKind::check:
      DITTO_FAULTS_TRY(read_check(fields, step));
      if (step.check_acknowledged && !timeline.primary) {
        return at(fields.path("step"), "acknowledged-writes reads through a Primary, there is none");
      }
      break;
    case StepKind::heal:
      break;
    default:
      DITTO_FAULTS_TRY(read_node_step(fields, timeline, step));
      break;
  }
  return fields.no_unknown();
}

}  // namespace

Result<Scenario> scenario_from_json(std::string_view text) {
  const json document = json::parse(text, nullptr, false);
  if (document.is_discarded()) return Error{"(document): not valid JSON"};
  if (!document.is_object()) return Error{"(document): is not an object"};
  Scenario scenario;
  Fields fields(document, "");
  DITTO_FAULTS_TRY(fields.string("name", scenario.name, true));
  DITTO_FAULTS_TRY(fields.string("description", scenario.description));
  DITTO_FAULTS_TRY(fields.unsigned_integer("seed", scenario.seed, 0,
                                           std::numeric_limits<std::uint64_t>::max()));
  if (!fields.has("cluster")) return Error{"cluster: missing"};
  DITTO_FAULTS_TRY(read_cluster(fields.get("cluster"), scenario.cluster));
  if (!fields.has("steps")) return Error{"steps: missing"};
  const json& steps = fields.get("steps");
  if (!steps.is_array() || steps.empty()) return Error{"steps: is not a non-empty list"};
  DITTO_FAULTS_TRY(fields.no_unknown());
  Timeline timeline;
  timeline.nodes = scenario.cluster.nodes;
  timeline.alive.assign(scenario.cluster.nodes, true);
  timeline.primary = 0;  // the cluster starts connected, UpToDate, node 0 Primary
  for (std::size_t index = 0; index < steps.size(); ++index) {
    Step step;
    DITTO_FAULTS_TRY(read_step(steps[index], "steps[" + std::to_string(index) + "]",
                               scenario.cluster, timeline, step));
    scenario.steps.push_back(std::move(step));
  }
  return scenario;
}

}  // namespace ditto::faults
