// ResourceRunner and its peers beyond the data path: handlers (core::CallHelper run as DRBD runs
// `drbdadm <helper> <resource>`), StandAlone connections (core::Disconnect without reconnect,
// dittoadm disconnect / connect), and ko-count (a peer that answers nothing while writes to it
// are pending is disconnected).
#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "core/assert.h"
#include "datapath/daemon_resource.h"

namespace ditto::datapath {
namespace {

std::string hex_mask(std::uint32_t mask) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%08" PRIX32, mask);
  return text;
}

}  // namespace

// ---- Handlers ---------------------------------------------------------------------------------

// The environment DRBD gives a helper (drbd9-semantics.md §7; drbd_nl.c): the resource, this
// node, the peer (its id, connection state and address), the volume with its minor and backing
// device, and UP_TO_DATE_NODES. One volume (0), so DRBD_MINOR and DRBD_MINOR_0 agree.
std::vector<std::string> ResourceRunner::helper_environment(const core::CallHelper& call) const {
  const config::Volume* volume = config_.self.find_volume(0);
  const std::string minor =
      volume != nullptr && volume->minor.has_value() ? std::to_string(*volume->minor) : "0";
  std::vector<std::string> environment{
      "DRBD_RESOURCE=" + config_.resource.name,
      "DRBD_NODE_ID=" + std::to_string(config_.self.node_id.value),
      "DRBD_MY_AF=" + config_.self.address_family,
      "DRBD_MY_ADDRESS=" + config_.self.address,
      "DRBD_VOLUME=0",
      "DRBD_MINOR=" + minor,
      "DRBD_MINOR_0=" + minor,
      "DRBD_BACKING_DEV=" + config_.disk_path,
      "DRBD_BACKING_DEV_0=" + config_.disk_path,
      "UP_TO_DATE_NODES=" + hex_mask(call.up_to_date_nodes_mask),
  };
  if (!call.peer.has_value()) return environment;
  environment.push_back("DRBD_PEER_NODE_ID=" + std::to_string(call.peer->value));
  for (const core::PeerStatus& peer : node_.peers()) {
    if (peer.node_id == *call.peer) {
      environment.push_back("DRBD_CSTATE=" + std::string(to_string(peer.connection)));
    }
  }
  for (const TransportPeer& peer : config_.transport.peers) {
    if (peer.node_id != *call.peer) continue;
    const bool ipv6 = peer.host.find(':') != std::string::npos;
    environment.push_back(std::string("DRBD_PEER_AF=") + (ipv6 ? "ipv6" : "ipv4"));
    environment.push_back("DRBD_PEER_ADDRESS=" + peer.host);
  }
  return environment;
}

// The command of the handlers{} section (common handlers are inherited by the parser); none
// configured: exit code 0 without running anything, as drbdadm does.
void ResourceRunner::run_helper(const core::CallHelper& call) {
  const config::Option* option = config_.resource.handlers.find(call.helper);
  if (option == nullptr || option->values.empty()) {
    boost::asio::post(io_, [this, call] {
      if (!stopped_) helper_finished(call, 0);
    });
    return;
  }
  const std::string command = option->value_text();
  log("running handler " + call.helper + ": " + command);
  helpers_.run(command, helper_environment(call), [this, call](int exit_code) {
    if (!stopped_) helper_finished(call, exit_code);
  });
}

void ResourceRunner::helper_finished(const core::CallHelper& call, int exit_code) {
  const std::string peer = call.peer.has_value() ? std::to_string(call.peer->value) : "-";
  std::string conn_name;
  for (const core::PeerConfig& configured : node_.config().peers) {
    if (call.peer.has_value() && configured.node_id == *call.peer) conn_name = configured.name;
  }
  log("handler " + call.helper + " (peer " + peer + ") exited with " +
      std::to_string(exit_code));
  // The events2 line DRBD prints when a helper returns.
  std::string line = "response helper name:" + config_.resource.name;
  if (call.peer.has_value()) line += " peer-node-id:" + peer + " conn-name:" + conn_name;
  line += " volume:0 helper:" + call.helper + " status:" + std::to_string(exit_code);
  if (event_sink_) event_sink_(line);
  node_.on_helper_done(now(), call.call, exit_code);
  pump();
}

// ---- StandAlone -------------------------------------------------------------------------------

void ResourceRunner::execute_disconnect(const core::Disconnect& disconnect) {
  log("disconnecting peer " + std::to_string(disconnect.peer.value) + ": " + disconnect.reason +
      (disconnect.reconnect ? "" : " (StandAlone)"));
  if (disconnect.reconnect) {
    transport_->disconnect(disconnect.peer, disconnect.reason);
  } else {
    transport_->set_standalone(disconnect.peer, true, disconnect.reason);
  }
}

// ConnectPeer took the connection out of StandAlone: the transport may connect again.
void ResourceRunner::admin_done(const core::AdminCommand& command,
                                const core::AdminResult& result) {
  const auto* connect = std::get_if<core::ConnectPeer>(&command);
  if (connect == nullptr || !result.ok) return;
  log("connecting to peer " + std::to_string(connect->peer.value) +
      (connect->discard_my_data ? " (discarding my data in a split brain)" : ""));
  transport_->set_standalone(connect->peer, false);
}

// ---- ko-count ---------------------------------------------------------------------------------

// DRBD's ko-count: a peer that has not answered a request for ko-count × timeout is expelled.
// Every `timeout` each connected peer with writes pending is checked: a check that finds no
// message from it since the previous one counts as stalled; ko-count stalled checks in a row
// disconnect it (the writes then complete without it, and it resyncs when it comes back). The
// transport's pings do not count: a peer whose disk hangs still answers them.
void ResourceRunner::arm_ko_timer() {
  const Duration period = config_.transport.request_timeout;
  DITTO_ASSERT(period.ns > 0);
  ko_timer_.expires_after(std::chrono::nanoseconds(period.ns));
  ko_timer_.async_wait([this](boost::system::error_code error) {
    if (error || stopped_) return;  // cancelled: `this` may be gone, touch nothing
    check_ko_count();
    arm_ko_timer();
  });
}

void ResourceRunner::check_ko_count() {
  const std::uint32_t ko_count = config_.transport.ko_count;
  for (const core::PeerStatus& peer : node_.peers()) {
    KoWatch& watch = ko_watch_[peer.node_id.value];
    const bool waiting = peer.connection == ConnectionState::connected && peer.pending_writes > 0;
    const bool silent = watch.messages == watch.messages_at_check;
    watch.messages_at_check = watch.messages;
    watch.stalled_checks = waiting && silent ? watch.stalled_checks + 1 : 0;
    if (ko_count == 0 || watch.stalled_checks < ko_count) continue;
    watch.stalled_checks = 0;
    const std::string reason =
        "ko-count: no answer to " + std::to_string(peer.pending_writes) +
        " pending writes for ko-count (" + std::to_string(ko_count) + ") x timeout (" +
        std::to_string(config_.transport.request_timeout.ns / 1'000'000) + " ms)";
    log("disconnecting peer " + std::to_string(peer.node_id.value) + ": " + reason);
    transport_->disconnect(peer.node_id, reason);
  }
}

// ---- resync-after -----------------------------------------------------------------------------

void ResourceRunner::arm_resync_after_timer() {
  resync_after_timer_.expires_after(resync_after_poll);
  resync_after_timer_.async_wait([this](boost::system::error_code error) {
    if (error || stopped_) return;  // cancelled: `this` may be gone, touch nothing
    poll_resync_after();
  });
}

void ResourceRunner::poll_resync_after() {
  ResyncAfterRegistry& registry = *options_.resync_after;
  registry.publish(config_.resource.name, config_.resync_after, node_.resync_holds_dependents());
  const bool active = registry.dependency_active(config_.resource.name);
  if (active != resync_dependency_active_) {
    resync_dependency_active_ = active;
    log(active ? "resync-after " + config_.resync_after + ": resyncs wait (dependency)"
               : "resync-after " + config_.resync_after + ": resyncs may run");
    node_.on_resync_dependency(now(), active);
    pump();
  }
  arm_resync_after_timer();
}

}  // namespace ditto::datapath
