// dittoadm connect / disconnect: `connect [--discard-my-data] RES[:PEER]`,
// `disconnect RES[:PEER]`, as drbdadm takes them.
#include <unistd.h>

#include <memory>
#include <string>

#include "datapath/control_client.h"

namespace ditto::datapath {
namespace {

struct ConnectionFlags {
  std::string target;  // RES or RES:PEER
  bool discard_my_data = false;
};

// "RES:PEER" → "RES PEER"; the resource part picks the default control socket.
std::string command_line(const std::string& verb, const ConnectionFlags& flags,
                         DaemonCommands& commands) {
  const auto colon = flags.target.find(':');
  const std::string resource = flags.target.substr(0, colon);
  std::string line = verb + " " + resource;
  if (colon != std::string::npos) line += " " + flags.target.substr(colon + 1);
  if (flags.discard_my_data) line += " --discard-my-data";
  if (commands.control_path.empty()) {
    // As register_daemon_commands: a daemon of one resource listens on RESOURCE.sock, one of
    // several on dittod.sock.
    commands.control_path = "/run/ditto/" + resource + ".sock";
    if (::access(commands.control_path.c_str(), F_OK) != 0 &&
        ::access("/run/ditto/dittod.sock", F_OK) == 0) {
      commands.control_path = "/run/ditto/dittod.sock";
    }
  }
  return line;
}

}  // namespace

void register_connection_commands(CLI::App& app, DaemonCommands& commands) {
  auto flags = std::make_shared<ConnectionFlags>();  // owned by the callbacks
  auto* connect = app.add_subcommand(
      "connect", "Connect a StandAlone connection (all of the resource's without :PEER)");
  connect->add_option("target", flags->target, "RES or RES:PEER")->required();
  connect->add_flag("--discard-my-data", flags->discard_my_data,
                    "In the split brain found next, this node is the victim: its changes are "
                    "discarded and it becomes SyncTarget");
  connect->callback([flags, &commands] {
    commands.line = command_line("connect", *flags, commands);
  });
  auto* disconnect = app.add_subcommand(
      "disconnect", "Take a connection StandAlone: no reconnection until connect");
  disconnect->add_option("target", flags->target, "RES or RES:PEER")->required();
  disconnect->callback([flags, &commands] {
    commands.line = command_line("disconnect", *flags, commands);
  });
}

}  // namespace ditto::datapath
