#include "datapath/control_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

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
  std::string reply;
  char chunk[4096];
  for (;;) {
    const ssize_t got = ::read(fd, chunk, sizeof(chunk));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    reply.append(chunk, static_cast<std::size_t>(got));
  }
  ::close(fd);
  const auto newline = reply.find('\n');
  if (newline == std::string::npos) {
    std::fprintf(stderr, "dittoadm: dittod at %s closed the connection without a reply\n",
                 socket_path.c_str());
    return 20;
  }
  const int status = std::atoi(reply.substr(0, newline).c_str());
  const std::string text = reply.substr(newline + 1);
  std::fputs(text.c_str(), status == 0 ? stdout : stderr);
  return status;
}

void register_daemon_commands(CLI::App& app, DaemonCommands& commands) {
  struct Flags {
    std::string resource;
    bool json = false;
    bool verbose = false;
    bool statistics = false;
    bool force = false;
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

  // The default socket depends on the resource, known only after parsing.
  app.parse_complete_callback([flags, &commands] {
    if (commands.control_path.empty() && !flags->resource.empty()) {
      commands.control_path = "/run/ditto/" + flags->resource + ".sock";
    }
  });
}

}  // namespace ditto::datapath
