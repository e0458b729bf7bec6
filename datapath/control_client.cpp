#include "datapath/control_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>

#include "core/config.h"
#include "datapath/daemon_config.h"

namespace ditto::datapath {

int send_control_command(const std::string& socket_path, const std::string& line) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    std::fprintf(stderr, "dittoadm: socket: %s\n", std::strerror(errno));
    return 20;
  }
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(address.sun_path)) {
    std::fprintf(stderr, "dittoadm: control socket path too long: %s\n", socket_path.c_str());
    ::close(fd);
    return 20;
  }
  std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    std::fprintf(stderr, "dittoadm: cannot reach dittod at %s: %s (is the daemon running?)\n",
                 socket_path.c_str(), std::strerror(errno));
    ::close(fd);
    return 20;
  }
  const std::string request = line + "\n";
  if (::write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    std::fprintf(stderr, "dittoadm: write to %s failed\n", socket_path.c_str());
    ::close(fd);
    return 20;
  }
  // The first line is the exit status; the rest is passed through as it arrives, so streams
  // (events2) print line by line.
  std::string reply;
  std::optional<int> status;
  char chunk[4096];
  for (;;) {
    const ssize_t got = ::read(fd, chunk, sizeof(chunk));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    reply.append(chunk, static_cast<std::size_t>(got));
    if (!status) {
      const auto newline = reply.find('\n');
      if (newline == std::string::npos) continue;
      status = std::atoi(reply.substr(0, newline).c_str());
      reply.erase(0, newline + 1);
    }
    std::FILE* out = *status == 0 ? stdout : stderr;
    std::fwrite(reply.data(), 1, reply.size(), out);
    std::fflush(out);
    reply.clear();
  }
  ::close(fd);
  if (!status) {
    std::fprintf(stderr, "dittoadm: dittod at %s closed the connection without a reply\n",
                 socket_path.c_str());
    return 20;
  }
  return *status;
}

int dump_config_file(const std::string& path, const std::string& resource) {
  const auto text = read_config_file(path);
  if (!text) {
    std::fprintf(stderr, "dittoadm: %s: cannot read configuration: %s\n", path.c_str(),
                 std::strerror(errno));
    return 1;
  }
  auto parsed = config::parse(*text, path, read_config_file);
  if (!parsed.ok()) {
    std::fprintf(stderr, "dittoadm: %s\n", parsed.error().message.c_str());
    return 1;
  }
  config::Config selected = std::move(parsed).value();
  if (!resource.empty() && resource != "all") {
    const config::Resource* found = selected.find_resource(resource);
    if (found == nullptr) {
      std::fprintf(stderr, "dittoadm: %s: no resource named '%s'\n", path.c_str(),
                   resource.c_str());
      return 10;
    }
    const config::Resource only = *found;
    selected.resources = {only};
  }
  const std::string dumped = config::dump(selected);
  std::fwrite(dumped.data(), 1, dumped.size(), stdout);
  return 0;
}

void register_daemon_commands(CLI::App& app, DaemonCommands& commands) {
  struct Flags {
    std::string resource;
    bool json = false;
    bool verbose = false;
    bool statistics = false;
    bool force = false;
    bool now = false;
    bool timestamps = false;
    std::string config_file;
  };
  // Owned by the callbacks below for the life of the program.
  auto flags = std::make_shared<Flags>();

  auto* status = app.add_subcommand("status", "Show the state of a resource");
  status->add_option("resource", flags->resource, "Resource name")->required();
  status->add_flag("--json", flags->json, "JSON output as drbdsetup status --json");
  status->add_flag("--verbose", flags->verbose, "Show every field");
  status->add_flag("--statistics", flags->statistics, "Show I/O statistics");
  status->callback([flags, &commands] {
    commands.line = "status " + flags->resource + (flags->json ? " --json" : "") +
                    (flags->verbose ? " --verbose" : "") +
                    (flags->statistics ? " --statistics" : "");
  });

  auto* primary = app.add_subcommand("primary", "Promote the resource on this node");
  primary->add_option("resource", flags->resource, "Resource name")->required();
  primary->add_flag("--force", flags->force, "Promote even without UpToDate data");
  primary->callback([flags, &commands] {
    commands.line = "primary " + flags->resource + (flags->force ? " --force" : "");
  });

  auto* secondary = app.add_subcommand("secondary", "Demote the resource on this node");
  secondary->add_option("resource", flags->resource, "Resource name")->required();
  secondary->callback([flags, &commands] { commands.line = "secondary " + flags->resource; });

  // up/down start and stop one resource in a running dittod, leaving its others alone.
  auto* up = app.add_subcommand("up", "Start a resource of the configuration in the daemon");
  up->add_option("resource", flags->resource, "Resource name (all: every one not running)")
      ->required();
  up->callback([flags, &commands] { commands.line = "up " + flags->resource; });
  auto* down = app.add_subcommand(
      "down", "Stop a resource: demote it, close its connections and its disk (refused in use)");
  down->add_option("resource", flags->resource, "Resource name")->required();
  down->callback([flags, &commands] { commands.line = "down " + flags->resource; });

  auto* events2 = app.add_subcommand("events2", "Stream state changes (drbdsetup events2)");
  events2->add_option("resource", flags->resource, "Resource name")->required();
  events2->add_flag("--now", flags->now, "Print the current state (exists ...) and exit");
  events2->add_flag("--timestamps", flags->timestamps, "Prefix each line with the local time");
  events2->add_flag("--statistics", flags->statistics, "Add the I/O statistics to each object");
  events2->add_flag("--verbose", flags->verbose, "With --statistics: the resync details too");
  events2->callback([flags, &commands] {
    commands.line = "events2 " + flags->resource + (flags->now ? " --now" : "") +
                    (flags->statistics ? " --statistics" : "") +
                    (flags->verbose ? " --verbose" : "") +
                    (flags->timestamps ? " --timestamps" : "");
  });

  auto* adjust = app.add_subcommand(
      "adjust", "Re-read the configuration file and apply its changes to the running resource");
  adjust->add_option("resource", flags->resource, "Resource name")->required();
  adjust->callback([flags, &commands] { commands.line = "adjust " + flags->resource; });

  auto* show = app.add_subcommand("show", "Show the running configuration of a resource");
  show->add_option("resource", flags->resource, "Resource name")->required();
  show->callback([flags, &commands] { commands.line = "show " + flags->resource; });

  auto* get_gi = app.add_subcommand(
      "get-gi", "Show the data generation identifiers (current, bitmap per peer, history)");
  get_gi->add_option("resource", flags->resource, "Resource name")->required();
  get_gi->callback([flags, &commands] { commands.line = "get-gi " + flags->resource; });

  // dump needs no daemon: it parses the file like drbdadm dump and prints the canonical form.
  auto* dump = app.add_subcommand("dump", "Print the parsed configuration (drbdadm dump)");
  dump->add_option("-c,--config-file", flags->config_file, "Configuration file")->required();
  dump->add_option("resource", flags->resource, "Resource name (default: all)");
  dump->callback([flags] {
    std::fflush(stdout);
    std::exit(dump_config_file(flags->config_file, flags->resource));
  });

  // The default socket depends on the resource, known only after parsing.
  app.parse_complete_callback([flags, &commands] {
    if (commands.control_path.empty() && !flags->resource.empty()) {
      // A daemon of one resource listens on RESOURCE.sock, one of several on dittod.sock.
      commands.control_path = "/run/ditto/" + flags->resource + ".sock";
      if (::access(commands.control_path.c_str(), F_OK) != 0 &&
          ::access("/run/ditto/dittod.sock", F_OK) == 0) {
        commands.control_path = "/run/ditto/dittod.sock";
      }
    }
  });
}

}  // namespace ditto::datapath
