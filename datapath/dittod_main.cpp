// dittod: the ditto storage daemon. Runs one resource from a drbd.conf-grammar file: the
// replication core, an io_uring disk, a TCP transport to the peers, an NBD export and a
// control socket for dittoadm.
#include <chrono>
#include <csignal>
#include <optional>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>

#include "core/assert.h"
#include "datapath/control_metrics.h"
#include "datapath/control_server.h"
#include "datapath/control_views.h"
#include "datapath/daemon_config.h"
#include "datapath/daemon_resource.h"
#include "datapath/tls_context.h"

namespace {

using ditto::datapath::ControlReply;

struct Arguments {
  ditto::datapath::DaemonOptions daemon;
  std::string nbd_address;
  std::string nbd_socket;
  std::string control_path;
  std::string metrics_address;
  std::string nbd_tls_directory;  // TLS required on the NBD export; certificates here
};

bool split_host_port(const std::string& text, std::string& host, std::uint16_t& port) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string digits = text.substr(colon + 1);
  if (digits.empty() || digits.size() > 5 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  const unsigned long value = std::stoul(digits);
  if (value > 65535) return false;
  port = static_cast<std::uint16_t>(value);
  return true;
}

ControlReply handle_command(ditto::datapath::ResourceRunner& runner,
                            const std::vector<std::string>& words) {
  if (words.size() < 2) return {2, "usage: <verb> <resource> [options]\n"};
  const std::string& verb = words[0];
  const std::string& resource = words[1];
  if (resource != runner.node().config().resource_name && resource != "all") {
    return {10, "error: this daemon runs resource '" + runner.node().config().resource_name +
                    "', not '" + resource + "'\n"};
  }
  auto has = [&](const char* flag) {
    return std::find(words.begin() + 2, words.end(), flag) != words.end();
  };
  if (verb == "events2") {
    // The exists dump, then (without --now) every change as it happens.
    ControlReply reply{0, ditto::datapath::events2_exists(runner)};
    reply.subscribe = !has("--now");
    reply.timestamps = has("--timestamps");
    if (reply.timestamps) {
      std::string stamped;
      std::size_t start = 0;
      while (start < reply.text.size()) {
        const std::size_t end = reply.text.find('\n', start);
        stamped += ditto::datapath::events2_timestamp() + " " +
                   reply.text.substr(start, end + 1 - start);
        start = end + 1;
      }
      reply.text = stamped;
    }
    return reply;
  }
  if (verb == "show") return {0, ditto::datapath::show_text(runner)};
  if (verb == "status") {
    if (has("--json")) return {0, ditto::datapath::status_json(runner)};
    return {0, runner.status_text({has("--verbose"), has("--statistics")})};
  }
  if (verb == "primary" || verb == "secondary") {
    ditto::core::AdminCommand command = ditto::core::Demote{};
    if (verb == "primary") command = ditto::core::Promote{has("--force")};
    const ditto::core::AdminResult result = runner.admin(command);
    auto answer = [resource](const ditto::core::AdminResult& outcome) -> ControlReply {
      if (outcome.ok) return {0, ""};
      return {11, resource + ": State change failed: (" + outcome.code + ") " + outcome.message +
                      "\n"};
    };
    if (!result.pending) return answer(result);
    // A promotion with connected peers is a two-phase commit: answer when it is decided, like
    // drbdadm primary does. The core's own 2PC timeout bounds the wait; a deadline guards it.
    ControlReply deferred;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    deferred.wait = [&runner, answer, deadline]() -> std::optional<ControlReply> {
      if (!runner.node().promotion_pending()) {
        const auto& outcome = runner.node().promotion_outcome();
        if (outcome.has_value()) return answer(*outcome);
        return answer({});
      }
      if (std::chrono::steady_clock::now() > deadline) {
        return ControlReply{11, "error: promotion still undecided after 60 s\n"};
      }
      return std::nullopt;
    };
    return deferred;
  }
  return {2, "error: unknown command '" + verb + "'\n"};
}

// Serves /metrics on `address` (HOST:PORT) unless it is empty; false after printing why not.
bool start_metrics(const std::string& address, ditto::datapath::MetricsServer& metrics) {
  if (address.empty()) return true;
  std::string host;
  std::uint16_t port = 0;
  if (!split_host_port(address, host, port)) {
    std::fprintf(stderr, "dittod: --metrics '%s' is not HOST:PORT\n", address.c_str());
    return false;
  }
  if (ditto::Status status = metrics.listen(host, port); !status.ok()) {
    std::fprintf(stderr, "dittod: %s\n", status.error().message.c_str());
    return false;
  }
  std::fprintf(stderr, "dittod: metrics on http://%s:%u/metrics\n", host.c_str(),
               unsigned{metrics.port()});
  return true;
}

int run(const Arguments& arguments) {
  auto config = ditto::datapath::load_daemon_config(arguments.daemon);
  if (!config.ok()) {
    std::fprintf(stderr, "dittod: %s\n", config.error().message.c_str());
    return 1;
  }
  ditto::datapath::ResourceOptions options;
  if (!arguments.nbd_address.empty() &&
      !split_host_port(arguments.nbd_address, options.nbd_host, options.nbd_port)) {
    std::fprintf(stderr, "dittod: --nbd '%s' is not HOST:PORT\n", arguments.nbd_address.c_str());
    return 1;
  }
  options.nbd_socket_path = arguments.nbd_socket;
  const std::string resource_name = config.value().resource.name;
  if (!arguments.nbd_tls_directory.empty()) {
    if (options.nbd_host.empty() && options.nbd_socket_path.empty()) {
      std::fprintf(stderr, "dittod: --nbd-tls needs --nbd or --nbd-socket\n");
      return 1;
    }
    auto context = ditto::datapath::make_tls_context(
        ditto::datapath::nbd_server_tls_files(arguments.nbd_tls_directory));
    if (!context.ok()) {
      std::fprintf(stderr, "dittod: --nbd-tls: %s\n", context.error().message.c_str());
      return 1;
    }
    options.nbd_tls_context = std::move(context).value();
  }

  boost::asio::io_context io(1);
  auto runner = ditto::datapath::ResourceRunner::create(io, std::move(config).value(), options);
  if (!runner.ok()) {
    std::fprintf(stderr, "dittod: %s\n", runner.error().message.c_str());
    return 1;
  }
  if (ditto::Status status = runner.value()->start(); !status.ok()) {
    std::fprintf(stderr, "dittod: %s\n", status.error().message.c_str());
    return 1;
  }
  ditto::datapath::ResourceRunner& resource = *runner.value();
  ditto::datapath::ControlServer control(
      io, [&resource](const std::vector<std::string>& words) {
        return handle_command(resource, words);
      });
  const std::string control_path = arguments.control_path.empty()
                                       ? "/run/ditto/" + resource_name + ".sock"
                                       : arguments.control_path;
  if (ditto::Status status = control.listen(control_path); !status.ok()) {
    std::fprintf(stderr, "dittod: %s\n", status.error().message.c_str());
    return 1;
  }
  resource.set_event_sink([&control](const std::string& line) {
    if (ditto::datapath::is_events2_line(line)) control.publish(line);
  });
  ditto::datapath::MetricsServer metrics(io, resource);
  if (!start_metrics(arguments.metrics_address, metrics)) return 1;
  std::fprintf(stderr, "dittod: resource %s ready; control socket %s\n", resource_name.c_str(),
               control_path.c_str());

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code error, int signal_number) {
    if (error) return;
    std::fprintf(stderr, "dittod: signal %d, shutting down\n", signal_number);
    metrics.stop();
    control.stop();
    resource.stop();
    io.stop();
  });
  io.run();
  resource.set_event_sink({});
  metrics.stop();
  control.stop();
  resource.stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  Arguments arguments;
  CLI::App app{"dittod: the ditto replicated block storage daemon"};
  app.add_option("-c,--config", arguments.daemon.config_path,
                 "Resource configuration (drbd.conf grammar)")
      ->required();
  app.add_option("--node", arguments.daemon.node_name,
                 "Which 'on HOST' section is this node (default: the host name)");
  app.add_option("--resource", arguments.daemon.resource_name,
                 "Resource to run (default: the only one in the file)");
  app.add_option("--nbd", arguments.nbd_address, "Export the volume over NBD on HOST:PORT");
  app.add_option("--nbd-socket", arguments.nbd_socket, "Export the volume on a unix socket");
  app.add_option("--nbd-tls", arguments.nbd_tls_directory,
                 "Require TLS on the NBD export; DIR holds ca-cert.pem, server-cert.pem and "
                 "server-key.pem (clients need a certificate signed by that CA)");
  app.add_option("--control", arguments.control_path,
                 "Control socket path (default /run/ditto/RESOURCE.sock)");
  app.add_option("--metrics", arguments.metrics_address,
                 "Serve Prometheus metrics at http://HOST:PORT/metrics (drbd-reactor names)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? 0 : 1;
  }
  return run(arguments);
}
