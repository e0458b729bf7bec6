// dittoadm's commands that talk to a running dittod over its control socket.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace ditto::datapath {

// Sends one command line to the daemon at socket_path, prints its reply (stdout on success,
// stderr otherwise) and returns the daemon's exit status (20 if it cannot be reached).
int send_control_command(const std::string& socket_path, const std::string& line);

// `dittoadm dump -c FILE [RESOURCE]`: prints config::dump() of the file (no daemon needed);
// returns the exit status.
int dump_config_file(const std::string& path, const std::string& resource);

// Registers status, primary, secondary, ... on `app`. `run` is set to the action to execute
// after parsing when one of them was chosen.
struct DaemonCommands {
  std::string control_path;
  std::string line;  // the command line to send, filled after parsing
};
void register_daemon_commands(CLI::App& app, DaemonCommands& commands);
// verify, invalidate, invalidate-remote, pause-sync, resume-sync, new-current-uuid, detach,
// attach (control_client_sync.cpp).
void register_sync_commands(CLI::App& app, DaemonCommands& commands);
// Registers connect [--discard-my-data] and disconnect (control_client_connection.cpp): their
// argument is RES or RES:PEER, sent to the daemon as "RES PEER".
void register_connection_commands(CLI::App& app, DaemonCommands& commands);

}  // namespace ditto::datapath
