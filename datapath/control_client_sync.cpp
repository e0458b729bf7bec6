// dittoadm verify / invalidate / invalidate-remote / pause-sync / resume-sync /
// new-current-uuid / detach / attach / resize: drbdadm's argument forms (RES[:PEER], or RES for the
// volume's verbs), sent to the daemon as "<verb> RES [PEER] [options]" (control_sync.h).
#include <unistd.h>

#include <memory>

#include "datapath/control_client.h"

namespace ditto::datapath {
namespace {

struct SyncFlags {
  std::string target;  // RES or RES:PEER
  std::uint64_t start_sector = 0;
  bool stop = false;
  bool clear_bitmap = false;
  std::string size;  // resize --size, as typed (the daemon parses it)
  bool assume_clean = false;
};

// "RES:PEER" → "RES PEER"; the control path defaults as for the other commands.
std::string resource_words(const std::string& target, DaemonCommands& commands) {
  const std::size_t colon = target.find(':');
  const std::string resource = target.substr(0, colon);
  if (commands.control_path.empty()) {
    commands.control_path = "/run/ditto/" + resource + ".sock";
    if (::access(commands.control_path.c_str(), F_OK) != 0 &&
        ::access("/run/ditto/dittod.sock", F_OK) == 0) {
      commands.control_path = "/run/ditto/dittod.sock";
    }
  }
  if (colon == std::string::npos) return resource;
  return resource + " " + target.substr(colon + 1);
}

// A verb whose only argument is RES or RES:PEER.
void add_target_verb(CLI::App& app, DaemonCommands& commands,
                     const std::shared_ptr<SyncFlags>& flags, const std::string& verb,
                     const std::string& description, const std::string& target_help) {
  auto* command = app.add_subcommand(verb, description);
  command->add_option("resource", flags->target, target_help)->required();
  command->callback([flags, verb, &commands] {
    commands.line = verb + " " + resource_words(flags->target, commands);
  });
}

void register_volume_commands(CLI::App& app, DaemonCommands& commands,
                              const std::shared_ptr<SyncFlags>& flags) {
  add_target_verb(app, commands, flags, "pause-sync",
                  "Pause the resync with a peer (resync-suspended:user) until resume-sync",
                  "RES or RES:PEER");
  add_target_verb(app, commands, flags, "resume-sync", "Resume a resync paused by pause-sync",
                  "RES or RES:PEER");
  auto* uuid = app.add_subcommand(
      "new-current-uuid", "Start a new data generation (--clear-bitmap: skip the initial sync)");
  uuid->add_option("resource", flags->target, "RES")->required();
  uuid->add_flag("--clear-bitmap", flags->clear_bitmap,
                 "Clear the bitmaps; on a just-created resource both sides become UpToDate");
  uuid->callback([flags, &commands] {
    commands.line = "new-current-uuid " + resource_words(flags->target, commands);
    if (flags->clear_bitmap) commands.line += " --clear-bitmap";
  });
  add_target_verb(app, commands, flags, "detach",
                  "Detach the local disk: Diskless, the peers serve the data", "RES");
  add_target_verb(app, commands, flags, "attach", "Attach the local disk again after a detach (resyncs what it missed)",
                  "RES");
  auto* resize = app.add_subcommand(
      "resize", "Grow the volume online to what every diskful node's backing device now holds");
  resize->add_option("resource", flags->target, "RES")->required();
  resize->add_option("--size", flags->size,
                     "The new size (sectors, or with a K, M, G or T suffix); default: the "
                     "smallest grown backing device");
  resize->add_flag("--assume-clean", flags->assume_clean,
                   "Do not resync the new area (every node's new area holds the same data)");
  resize->callback([flags, resize, &commands] {
    commands.line = "resize " + resource_words(flags->target, commands);
    if (resize->count("--size") > 0) commands.line += " --size " + flags->size;
    if (flags->assume_clean) commands.line += " --assume-clean";
  });
}

}  // namespace

void register_sync_commands(CLI::App& app, DaemonCommands& commands) {
  auto flags = std::make_shared<SyncFlags>();  // owned by the callbacks below
  auto* verify = app.add_subcommand(
      "verify", "Online verify with a peer: compare digests, mark differing blocks out of sync");
  verify->add_option("resource", flags->target, "RES or RES:PEER")->required();
  verify->add_option("--start", flags->start_sector, "Start at this sector (512 bytes)");
  verify->add_flag("--stop", flags->stop, "Stop a running verify");
  verify->callback([flags, verify, &commands] {
    commands.line = "verify " + resource_words(flags->target, commands);
    if (verify->count("--start") > 0) {
      commands.line += " --start " + std::to_string(flags->start_sector);
    }
    if (flags->stop) commands.line += " --stop";
  });
  auto* invalidate = app.add_subcommand(
      "invalidate", "Mark every block of this node out of sync and resync it from a peer");
  invalidate->add_option("resource", flags->target, "RES or RES:PEER (the source)")->required();
  invalidate->callback([flags, &commands] {
    commands.line = "invalidate " + resource_words(flags->target, commands);
  });
  auto* remote = app.add_subcommand(
      "invalidate-remote", "Mark every block of a peer out of sync and resync it from here");
  remote->add_option("resource", flags->target, "RES or RES:PEER")->required();
  remote->callback([flags, &commands] {
    commands.line = "invalidate-remote " + resource_words(flags->target, commands);
  });
  register_volume_commands(app, commands, flags);
}

}  // namespace ditto::datapath
