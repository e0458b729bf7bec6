// dittod: the ditto storage daemon. Runs every resource of this node from drbd.conf-grammar
// files (or the one --resource names), spread over shards (daemon_shard.h): per resource the
// replication core, an io_uring disk, a TCP transport to the peers and an NBD export; one
// control socket for dittoadm (daemon_router.h routes its commands).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <functional>
#include <optional>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>

#include "core/assert.h"
#include "datapath/control_commands.h"
#include "datapath/control_connection.h"
#include "datapath/control_metrics.h"
#include "datapath/control_server.h"
#include "datapath/control_views.h"
#include "datapath/daemon_config.h"
#include "datapath/daemon_nbd.h"
#include "datapath/daemon_resource.h"
#include "datapath/daemon_router.h"
#include "datapath/tls_context.h"

namespace {

using ditto::datapath::ControlReply;

struct Arguments {
  std::vector<std::string> config_paths;
  std::string node_name;       // which `on` section is this node; default: the host name
  std::string resource_name;   // run only this one; default: every resource of this node
  unsigned shards = 0;         // 0: one per core (at most one per resource)
  std::string nbd_address;
  std::string nbd_base_address;
  std::string nbd_socket;
  std::string control_path;
  std::string metrics_address;
  std::string nbd_tls_directory;  // TLS required on the NBD export; certificates here
  unsigned buffer_pool_mib = 64;  // each shard's I/O buffer slab
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

// Runs an admin command; one that is a two-phase commit (pending) is answered when it is
// decided, like drbdadm primary and resize do. The core's own 2PC timeout bounds the wait; a
// deadline guards it.
ControlReply admin_reply(ditto::datapath::ResourceRunner& runner, const std::string& resource,
                         const ditto::core::AdminCommand& command, const char* failure,
                         const char* what, std::function<bool()> pending,
                         std::function<std::optional<ditto::core::AdminResult>()> outcome_of) {
  const ditto::core::AdminResult result = runner.admin(command);
  auto answer = [resource, failure](const ditto::core::AdminResult& outcome) -> ControlReply {
    if (outcome.ok) return {0, ""};
    return {11, resource + ": " + failure + ": (" + outcome.code + ") " + outcome.message + "\n"};
  };
  if (!result.pending) return answer(result);
  ControlReply deferred;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  deferred.wait = [answer, deadline, pending, outcome_of,
                   what = std::string(what)]() -> std::optional<ControlReply> {
    if (!pending()) {
      const auto outcome = outcome_of();
      if (outcome.has_value()) return answer(*outcome);
      return answer({});
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return ControlReply{11, "error: " + what + " still undecided after 60 s\n"};
    }
    return std::nullopt;
  };
  return deferred;
}

// "resize RES [--size S] [--assume-clean]"
ditto::Result<ditto::core::Resize> resize_request(const std::vector<std::string>& words) {
  ditto::core::Resize request;
  for (std::size_t i = 2; i < words.size(); ++i) {
    if (words[i] == "--assume-clean") {
      request.assume_clean = true;
    } else if (words[i] == "--size" && i + 1 < words.size()) {
      auto size = ditto::datapath::size_bytes_of(words[++i]);
      if (!size.ok()) return size.error();
      request.size_bytes = size.value();
    } else {
      return ditto::Error{"unknown option '" + words[i] + "'"};
    }
  }
  return request;
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
  if (auto reply = ditto::datapath::handle_control_verb(runner, words)) return *reply;
  if (auto reply = ditto::datapath::handle_connection_verb(runner, words)) return *reply;
  auto has = [&](const char* flag) {
    return std::find(words.begin() + 2, words.end(), flag) != words.end();
  };
  if (verb == "show") return {0, ditto::datapath::show_text(runner)};
  if (verb == "resume-io") {
    // Thaws I/O frozen by fencing (core::ResumeIo); I/O frozen for quorum stays frozen.
    const ditto::core::AdminResult result = runner.admin(ditto::core::ResumeIo{});
    if (result.ok) return {0, ""};
    return {11, resource + ": resume-io failed: (" + result.code + ") " + result.message + "\n"};
  }
  if (verb == "primary" || verb == "secondary") {
    ditto::core::AdminCommand command = ditto::core::Demote{};
    if (verb == "primary") command = ditto::core::Promote{has("--force")};
    return admin_reply(runner, resource, command, "State change failed", "promotion",
                       [&runner] { return runner.node().promotion_pending(); },
                       [&runner] { return runner.node().promotion_outcome(); });
  }
  if (verb == "resize") {
    auto request = resize_request(words);
    if (!request.ok()) return {2, "resize: " + request.error().message + "\n"};
    return admin_reply(runner, resource, request.value(), "Failure", "resize",
                       [&runner] { return runner.node().resize_pending(); },
                       [&runner] { return runner.node().resize_outcome(); });
  }
  return {2, "error: unknown command '" + verb + "'\n"};
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

// The NBD export, TLS and metrics address of each resource, from the command line.
struct ExportPlan {
  std::string single_resource;  // --nbd and a %r-less --nbd-socket serve this one
  // Several resources: --nbd and a %r-less --nbd-socket are one listener for all of them
  // (daemon_nbd.h), the export chosen by name.
  bool shared_nbd = false;
  std::string nbd_host;
  std::uint16_t nbd_port = 0;
  std::string nbd_base_host;
  std::uint16_t nbd_base_port = 0;
  std::string nbd_socket;  // "%r" is replaced by the resource name
  std::shared_ptr<boost::asio::ssl::context> nbd_tls;
  ditto::datapath::ResourceMetrics metrics;

  ditto::Result<ditto::datapath::ResourceOptions> options_for(
      const ditto::datapath::DaemonConfig& config) const {
    ditto::datapath::ResourceOptions options;
    const std::string& name = config.resource.name;
    if (!nbd_host.empty() && name == single_resource) {
      options.nbd_host = nbd_host;
      options.nbd_port = nbd_port;
    }
    if (!nbd_base_host.empty()) {
      // DRBD's minors are unique per host, so these ports are too.
      const std::uint64_t port =
          std::uint64_t{nbd_base_port} + config.self.volumes.front().minor.value_or(0);
      if (port > 65535) {
        return ditto::Error{config.disk_location.to_string() + ": --nbd-base port " +
                            std::to_string(nbd_base_port) + " + minor is above 65535"};
      }
      options.nbd_host = nbd_base_host;
      options.nbd_port = static_cast<std::uint16_t>(port);
    }
    if (const auto marker = nbd_socket.find("%r"); marker != std::string::npos) {
      options.nbd_socket_path = nbd_socket;
      options.nbd_socket_path.replace(marker, 2, name);
    } else if (name == single_resource) {
      options.nbd_socket_path = nbd_socket;
    }
    options.nbd_tls_context = nbd_tls;
    return options;
  }
};

// Checks the export options against the resources; false after printing why.
bool plan_exports(const Arguments& arguments,
                  const std::vector<ditto::datapath::DaemonConfig>& configs, ExportPlan& plan) {
  auto fail = [](const std::string& message) {
    std::fprintf(stderr, "dittod: %s\n", message.c_str());
    return false;
  };
  if (configs.size() == 1) plan.single_resource = configs.front().resource.name;
  const bool several = configs.size() > 1;
  plan.shared_nbd = several;
  if (several && !arguments.nbd_tls_directory.empty() &&
      (!arguments.nbd_address.empty() ||
       (!arguments.nbd_socket.empty() && arguments.nbd_socket.find("%r") == std::string::npos))) {
    return fail("--nbd-tls with one listener for several resources is not supported yet (use "
                "--nbd-base HOST:PORT or --nbd-socket with %r: a listener per resource)");
  }
  if (!arguments.nbd_address.empty() &&
      !split_host_port(arguments.nbd_address, plan.nbd_host, plan.nbd_port)) {
    return fail("--nbd '" + arguments.nbd_address + "' is not HOST:PORT");
  }
  if (!arguments.nbd_base_address.empty() &&
      !split_host_port(arguments.nbd_base_address, plan.nbd_base_host, plan.nbd_base_port)) {
    return fail("--nbd-base '" + arguments.nbd_base_address + "' is not HOST:PORT");
  }
  if (!arguments.metrics_address.empty() &&
      !split_host_port(arguments.metrics_address, plan.metrics.host, plan.metrics.port)) {
    return fail("--metrics '" + arguments.metrics_address + "' is not HOST:PORT");
  }
  plan.nbd_socket = arguments.nbd_socket;
  if (!arguments.nbd_tls_directory.empty()) {
    if (plan.nbd_host.empty() && plan.nbd_base_host.empty() && plan.nbd_socket.empty()) {
      return fail("--nbd-tls needs --nbd, --nbd-base or --nbd-socket");
    }
    auto context = ditto::datapath::make_tls_context(
        ditto::datapath::nbd_server_tls_files(arguments.nbd_tls_directory));
    if (!context.ok()) return fail("--nbd-tls: " + context.error().message);
    plan.nbd_tls = std::move(context).value();
  }
  return true;
}

// How the router places and serves the resources: shards, exports, control commands, events.
ditto::datapath::RouterOptions router_options(const Arguments& arguments,
                                              const std::string& node_name,
                                              std::size_t resource_count, const ExportPlan& plan,
                                              boost::asio::io_context& io,
                                              ditto::datapath::ControlServer& control) {
  ditto::datapath::RouterOptions options;
  options.config_paths = arguments.config_paths;
  options.node_name = node_name;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  options.shard_count =
      arguments.shards != 0
          ? arguments.shards
          : static_cast<unsigned>(std::min<std::size_t>(cores, resource_count));
  options.shard.buffer_slab_bytes = std::size_t{arguments.buffer_pool_mib} << 20;
  options.resource_options = [&plan](const ditto::datapath::DaemonConfig& config) {
    return plan.options_for(config);
  };
  // One metrics endpoint for the daemon (below), not one per resource.
  options.resource_metrics = [](const ditto::datapath::DaemonConfig&) {
    return ditto::datapath::ResourceMetrics{};
  };
  options.command = handle_command;
  options.event_sink = [&io, &control](const std::string& line) {
    if (!ditto::datapath::is_events2_line(line)) return;
    boost::asio::post(io, [&control, line] { control.publish(line); });  // to the main thread
  };
  return options;
}

// The daemon-wide listeners: one NBD listener for several resources (by export name) and the
// metrics endpoint. False after printing why.
bool listen_daemon_wide(const ExportPlan& plan, ditto::datapath::DaemonNbdListener& shared_nbd,
                        ditto::datapath::MetricsServer& metrics) {
  auto fail = [](const ditto::Status& status) {
    std::fprintf(stderr, "dittod: %s\n", status.error().message.c_str());
    return false;
  };
  if (plan.shared_nbd && !plan.nbd_host.empty()) {
    if (ditto::Status status = shared_nbd.listen_tcp(plan.nbd_host, plan.nbd_port); !status.ok()) {
      return fail(status);
    }
    std::fprintf(stderr, "dittod: NBD exports of every resource on %s:%u (by export name)\n",
                 plan.nbd_host.c_str(), unsigned{shared_nbd.tcp_port()});
  }
  if (plan.shared_nbd && !plan.nbd_socket.empty() &&
      plan.nbd_socket.find("%r") == std::string::npos) {
    if (ditto::Status status = shared_nbd.listen_unix(plan.nbd_socket); !status.ok()) {
      return fail(status);
    }
  }
  if (!plan.metrics.host.empty()) {
    if (ditto::Status status = metrics.listen(plan.metrics.host, plan.metrics.port);
        !status.ok()) {
      return fail(status);
    }
    std::fprintf(stderr, "dittod: metrics of every resource on http://%s:%u/metrics\n",
                 plan.metrics.host.c_str(), unsigned{metrics.port()});
  }
  return true;
}

// 1000 resources need several thousand descriptors (disk, listener and peer sockets each):
// raise the soft limit to the hard one, as most daemons do.
void raise_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  (void)setrlimit(RLIMIT_NOFILE, &limit);
}

int run(const Arguments& arguments) {
  raise_file_limit();
  const std::string node_name =
      arguments.node_name.empty() ? host_name() : arguments.node_name;
  auto configs = ditto::datapath::load_node_resources(arguments.config_paths, node_name,
                                                      arguments.resource_name);
  if (!configs.ok()) {
    std::fprintf(stderr, "dittod: %s\n", configs.error().message.c_str());
    return 1;
  }
  ExportPlan plan;
  if (!plan_exports(arguments, configs.value(), plan)) return 1;
  const std::size_t resource_count = configs.value().size();
  const std::string control_path =
      !arguments.control_path.empty() ? arguments.control_path
      : resource_count == 1           ? "/run/ditto/" + plan.single_resource + ".sock"
                                      : "/run/ditto/dittod.sock";

  boost::asio::io_context io(1);  // the control socket; resources run on the shards
  ditto::datapath::ControlServer control(io, nullptr);
  ditto::datapath::ResourceRouter router(
      router_options(arguments, node_name, resource_count, plan, io, control));
  if (ditto::Status status = router.start(std::move(configs).value()); !status.ok()) {
    std::fprintf(stderr, "dittod: %s\n", status.error().message.c_str());
    return 1;
  }
  control.set_handler([&router](const std::vector<std::string>& words) {
    return router.handle(words);
  });
  if (ditto::Status status = control.listen(control_path); !status.ok()) {
    std::fprintf(stderr, "dittod: %s\n", status.error().message.c_str());
    return 1;
  }
  ditto::datapath::DaemonNbdListener shared_nbd(io, router);
  // Scrapes run on the main thread and render each resource on its shard (control path).
  ditto::datapath::MetricsServer metrics(io, [&router] { return router.metrics_text(); });
  if (!listen_daemon_wide(plan, shared_nbd, metrics)) return 1;
  std::fprintf(stderr, "dittod: %zu resource%s on %u shard%s ready; control socket %s\n",
               resource_count, resource_count == 1 ? "" : "s", router.shard_count(),
               router.shard_count() == 1 ? "" : "s", control_path.c_str());

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code error, int signal_number) {
    if (error) return;
    std::fprintf(stderr, "dittod: signal %d, shutting down\n", signal_number);
    control.stop();
    shared_nbd.stop();
    metrics.stop();  // a scrape must not wait on a stopped shard
    router.stop();
    io.stop();
  });
  io.run();
  control.stop();
  shared_nbd.stop();
  metrics.stop();
  router.stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  Arguments arguments;
  CLI::App app{"dittod: the ditto replicated block storage daemon"};
  app.add_option("-c,--config", arguments.config_paths,
                 "Configuration (drbd.conf grammar); repeat for several files")
      ->required();
  app.add_option("--node", arguments.node_name,
                 "Which 'on HOST' sections are this node (default: the host name)");
  app.add_option("--resource", arguments.resource_name,
                 "Run only this resource (default: every resource with a section for this node)");
  app.add_option("--shards", arguments.shards,
                 "Threads, each with its own event loop and io_uring ring, that the resources "
                 "are spread over (default: one per core)")
      ->check(CLI::Range(1u, 1024u));
  app.add_option("--nbd", arguments.nbd_address,
                 "Export over NBD on HOST:PORT; with several resources one listener serves "
                 "them all, the client picks one by export name (the resource name)");
  app.add_option("--nbd-base", arguments.nbd_base_address,
                 "Export every resource over NBD on HOST:(PORT + its device minor)");
  app.add_option("--nbd-socket", arguments.nbd_socket,
                 "Export on a unix socket; %r in the path is the resource name (a socket per "
                 "resource), without %r one socket serves every resource by export name");
  app.add_option("--nbd-tls", arguments.nbd_tls_directory,
                 "Require TLS on the NBD export; DIR holds ca-cert.pem, server-cert.pem and "
                 "server-key.pem (clients need a certificate signed by that CA)");
  app.add_option("--buffer-pool-mib", arguments.buffer_pool_mib,
                 "Each shard's pool of aligned I/O buffers, in MiB (default 64); a request "
                 "that finds it busy waits until buffers come back")
      ->check(CLI::Range(1u, 65536u));
  app.add_option("--control", arguments.control_path,
                 "Control socket path (default /run/ditto/RESOURCE.sock with one resource, "
                 "/run/ditto/dittod.sock with several)");
  app.add_option("--metrics", arguments.metrics_address,
                 "Serve Prometheus metrics at http://HOST:PORT/metrics (drbd-reactor names; "
                 "every resource of the daemon, labelled with its name)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? 0 : 1;
  }
  return run(arguments);
}
