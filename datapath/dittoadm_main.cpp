// dittoadm: the administration tool, in the spirit of drbdadm. Talks to a running dittod over
// its control socket.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace {

// Sends one command line and prints the reply; returns the daemon's exit status.
int send_command(const std::string& socket_path, const std::string& line) {
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dittoadm: administer ditto resources"};
  app.require_subcommand(1);
  std::string control_path;
  app.add_option("--control", control_path,
                 "dittod control socket (default /run/ditto/RESOURCE.sock)")
      ->envname("DITTO_CONTROL");

  std::string resource;
  bool json = false;
  bool verbose = false;
  bool statistics = false;
  bool force = false;
  auto* status = app.add_subcommand("status", "Show the state of a resource");
  status->add_option("resource", resource, "Resource name")->required();
  status->add_flag("--json", json, "JSON output as drbdsetup status --json");
  status->add_flag("--verbose", verbose, "Show every field");
  status->add_flag("--statistics", statistics, "Show I/O statistics");
  auto* primary = app.add_subcommand("primary", "Promote the resource on this node");
  primary->add_option("resource", resource, "Resource name")->required();
  primary->add_flag("--force", force, "Promote even without UpToDate data");
  auto* secondary = app.add_subcommand("secondary", "Demote the resource on this node");
  secondary->add_option("resource", resource, "Resource name")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? 0 : 2;
  }
  if (control_path.empty()) control_path = "/run/ditto/" + resource + ".sock";

  std::string line;
  if (status->parsed()) {
    line = "status " + resource + (json ? " --json" : "") + (verbose ? " --verbose" : "") +
           (statistics ? " --statistics" : "");
  } else if (primary->parsed()) {
    line = "primary " + resource + (force ? " --force" : "");
  } else {
    line = "secondary " + resource;
  }
  return send_command(control_path, line);
}
