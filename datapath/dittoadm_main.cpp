// dittoadm: the administration tool, in the spirit of drbdadm. Commands that talk to a running
// dittod live in control_client.cpp; each group of commands registers itself here.
#include <CLI/CLI.hpp>

#include "datapath/control_client.h"
#include "datapath/control_metadata.h"

int main(int argc, char** argv) {
  CLI::App app{"dittoadm: administer ditto resources"};
  app.require_subcommand(1);
  ditto::datapath::DaemonCommands daemon_commands;
  app.add_option("--control", daemon_commands.control_path,
                 "dittod control socket (default /run/ditto/RESOURCE.sock)")
      ->envname("DITTO_CONTROL");
  ditto::datapath::register_daemon_commands(app, daemon_commands);
  ditto::datapath::register_sync_commands(app, daemon_commands);
  ditto::datapath::register_connection_commands(app, daemon_commands);
  int metadata_exit_status = -1;  // set by create-md / dump-md (run offline, no daemon)
  ditto::datapath::register_metadata_commands(app, metadata_exit_status);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? 0 : 2;
  }
  if (metadata_exit_status >= 0) return metadata_exit_status;
  if (!daemon_commands.line.empty()) {
    return ditto::datapath::send_control_command(daemon_commands.control_path,
                                                 daemon_commands.line);
  }
  return 0;
}
