#include "datapath/control_commands.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "datapath/control_adjust.h"
#include "datapath/control_status.h"
#include "datapath/control_sync.h"
#include "datapath/control_views.h"

namespace ditto::datapath {
namespace {

bool has_flag(const std::vector<std::string>& words, const char* flag) {
  return std::find(words.begin() + 2, words.end(), flag) != words.end();
}

// The first word after the resource that is not one of `known`, or empty.
std::string unknown_flag(const std::vector<std::string>& words,
                         std::initializer_list<const char*> known) {
  for (std::size_t i = 2; i < words.size(); ++i) {
    if (std::none_of(known.begin(), known.end(),
                     [&](const char* flag) { return words[i] == flag; })) {
      return words[i];
    }
  }
  return {};
}

ControlReply status_command(const ResourceRunner& runner, const std::vector<std::string>& words) {
  if (has_flag(words, "--json")) return reply_of(0, status_json(runner));
  const StatusFlags flags{has_flag(words, "--verbose"), has_flag(words, "--statistics")};
  return reply_of(0, format_status_text(resource_view(runner), flags));
}

ControlReply events2_command(const ResourceRunner& runner, const std::vector<std::string>& words) {
  // The exists dump, then (without --now) every change as it happens.
  const StatusFlags flags{has_flag(words, "--verbose"), has_flag(words, "--statistics")};
  ControlReply reply = reply_of(0, events2_exists(runner, flags));
  reply.events_resource = runner.config().resource.name;
  reply.subscribe = !has_flag(words, "--now");
  reply.timestamps = has_flag(words, "--timestamps");
  if (!reply.timestamps) return reply;
  std::string stamped;
  std::size_t start = 0;
  while (start < reply.text.size()) {
    const std::size_t end = reply.text.find('\n', start);
    stamped += events2_timestamp() + " " + reply.text.substr(start, end + 1 - start);
    start = end + 1;
  }
  reply.text = std::move(stamped);
  return reply;
}

std::string hex_uuid(std::uint64_t uuid) {
  char text[24];
  std::snprintf(text, sizeof(text), "0x%016" PRIX64, uuid);
  return text;
}

// The data generation identifiers the node holds, named as drbdmeta dump-md names them
// (current-uuid, bitmap-uuid per peer node id, history-uuids): what the metadata must show.
ControlReply get_gi_command(const ResourceRunner& runner) {
  const Generations& generations = runner.node().generations();
  std::string text = "current-uuid " + hex_uuid(generations.current) + "\n";
  for (const core::PeerConfig& peer : runner.node().config().peers) {
    text += "bitmap-uuid peer-node-id:" + std::to_string(peer.node_id.value) + " " +
            hex_uuid(generations.bitmap[peer.node_id.value]) + "\n";
  }
  text += "history-uuids";
  for (std::uint64_t uuid : generations.history) text += " " + hex_uuid(uuid);
  return reply_of(0, text + "\n");
}

ControlReply adjust_command(ResourceRunner& runner) {
  const std::string& name = runner.config().resource.name;
  auto file = load_daemon_config(runner.config().options);
  if (!file.ok()) {
    return reply_of(10, name + ": adjust failed, nothing changed: " + file.error().message + "\n");
  }
  const AdjustPlan plan = plan_adjust(runner.config(), file.value());
  if (!plan.needs_down_up.empty()) {
    std::string text = name +
                       ": adjust refused, nothing changed; these changes cannot be made "
                       "while the resource runs (down and up it):\n";
    for (const std::string& line : plan.needs_down_up) text += "  " + line + "\n";
    return reply_of(10, text);
  }
  if (Status status = runner.adjust(std::move(file).value()); !status.ok()) {
    return reply_of(10,
                    name + ": adjust failed, nothing changed: " + status.error().message + "\n");
  }
  std::string text;
  for (const std::string& line : plan.changes) text += name + ": " + line + "\n";
  return reply_of(0, text);
}

}  // namespace

std::optional<ControlReply> handle_control_verb(ResourceRunner& runner,
                                                const std::vector<std::string>& words) {
  if (words.size() < 2) return std::nullopt;
  if (auto reply = handle_sync_verb(runner, words)) return reply;
  const std::string& verb = words[0];
  std::string unknown;
  if (verb == "status") {
    unknown = unknown_flag(words, {"--verbose", "--statistics", "--json"});
  } else if (verb == "events2") {
    unknown = unknown_flag(words, {"--now", "--statistics", "--timestamps"});
  } else if (verb == "adjust" || verb == "get-gi") {
    unknown = unknown_flag(words, {});
  } else {
    return std::nullopt;
  }
  if (!unknown.empty()) return reply_of(2, verb + ": unknown option '" + unknown + "'\n");
  if (verb == "status") return status_command(runner, words);
  if (verb == "events2") return events2_command(runner, words);
  if (verb == "get-gi") return get_gi_command(runner);
  return adjust_command(runner);
}

}  // namespace ditto::datapath
