// dittoadm verify / invalidate / invalidate-remote: drbdadm's argument forms (RES[:PEER]),
// sent to the daemon as "<verb> RES [PEER] [--start S] [--stop]" (control_sync.h).
#include <unistd.h>

#include <memory>

#include "datapath/control_client.h"

namespace ditto::datapath {
namespace {

struct SyncFlags {
  std::string target;  // RES or RES:PEER
  std::uint64_t start_sector = 0;
  bool stop = false;
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
}

}  // namespace ditto::datapath
