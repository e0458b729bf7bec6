// TcpTransport::adjust (dittoadm adjust): a changed configuration applied to the running
// transport without dropping connections that stay valid (see transport_tcp.h).
#include <algorithm>
#include <string>

#include "core/assert.h"
#include "datapath/transport_connection.h"
#include "datapath/transport_tcp.h"

namespace ditto::datapath {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

bool same_address(const tcp::endpoint& endpoint, const TransportAddress& address) {
  boost::system::error_code error;
  const asio::ip::address parsed = asio::ip::make_address(address.host, error);
  return !error && parsed == endpoint.address() && address.port == endpoint.port();
}

std::vector<TransportAddress> paths_of(const TransportPeer& peer) {
  std::vector<TransportAddress> paths{{peer.host, peer.port}};
  paths.insert(paths.end(), peer.more_paths.begin(), peer.more_paths.end());
  return paths;
}

}  // namespace

Status TcpTransport::check_adjustable(const TransportConfig& updated) const {
  if (updated.self != config_.self || updated.resource_name != config_.resource_name ||
      updated.listen_host != config_.listen_host || updated.listen_port != config_.listen_port) {
    return Error{
        "transport: the node id, resource name and own address cannot change while "
        "running"};
  }
  if (!(updated.tls == config_.tls)) {
    return Error{"transport: the TLS files cannot change while running"};
  }
  if (updated.peers.size() != config_.peers.size()) {
    return Error{"transport: peers cannot be added or removed while running"};
  }
  for (const TransportPeer& peer : updated.peers) {
    const PeerSlot* slot = slot_of(peer.node_id);
    if (slot == nullptr || slot->config.name != peer.name) {
      return Error{"transport: peer '" + peer.name + "' is not one of the running peers"};
    }
    for (const TransportAddress& path : paths_of(peer)) {
      boost::system::error_code error;
      asio::ip::make_address(path.host, error);
      if (error) return Error{"transport: address '" + path.host + "' is not an IP address"};
    }
  }
  if (updated.ping_interval.ns <= 0 || updated.ping_timeout.ns <= 0 ||
      updated.reconnect_delay_min.ns <= 0 ||
      updated.reconnect_delay_max < updated.reconnect_delay_min) {
    return Error{"transport: ping and reconnect timings must be positive"};
  }
  if (updated.cram_hmac_algorithm.empty() != updated.shared_secret.empty()) {
    return Error{"transport: cram-hmac-alg and shared-secret must be set together"};
  }
  return Status::success();
}

Status TcpTransport::adjust(const TransportConfig& updated) {
  DITTO_ASSERT(started_ && !stopped_);
  if (Status status = check_adjustable(updated); !status.ok()) return status;
  std::optional<AuthKey> key;
  if (!updated.shared_secret.empty()) {
    auto created = AuthKey::create(updated.cram_hmac_algorithm, updated.shared_secret);
    if (!created.ok()) return Error{"transport: " + created.error().message};
    key.emplace(std::move(created).value());
  }
  // Nothing can fail from here on.
  auth_key_ = std::move(key);  // handshakes from now on; established connections stay
  adjust_listening(updated);
  config_ = updated;
  for (const TransportPeer& peer : updated.peers) adjust_paths(*slot_of(peer.node_id), peer);
  for (PeerSlot& slot : peers_) {
    slot.redial_delay =
        std::clamp(slot.redial_delay, config_.reconnect_delay_min, config_.reconnect_delay_max);
    const std::shared_ptr<Connection> connection = slot.connection;
    // New keepalive timings take effect now, not after the next ping round.
    if (connection && connection->hello_received && !connection->ping_outstanding) {
      arm_keepalive(connection, config_.ping_interval);
    }
  }
  log("configuration adjusted");
  return Status::success();
}

// Listens on every local path address that is new and closes the acceptors of the ones that
// are gone (the main address never changes). A closed acceptor's slot stays in acceptors_:
// pending accepts refer to acceptors by index.
void TcpTransport::adjust_listening(const TransportConfig& updated) {
  std::vector<TransportAddress> wanted{{config_.listen_host, config_.listen_port}};
  for (const TransportAddress& extra : updated.more_listen) wanted.push_back(extra);
  std::vector<bool> listening(wanted.size(), false);
  for (std::size_t index = 1; index < acceptors_.size(); ++index) {
    tcp::acceptor& acceptor = *acceptors_[index];
    if (!acceptor.is_open()) continue;
    boost::system::error_code error;
    const tcp::endpoint local = acceptor.local_endpoint(error);
    bool keep = false;
    for (std::size_t i = 0; i < wanted.size() && !error; ++i) {
      if (same_address(local, wanted[i])) keep = listening[i] = true;
    }
    if (!keep) {
      log("no longer listening on " + local.address().to_string() + ":" +
          std::to_string(local.port()) + " (path removed)");
      acceptor.close(error);
    }
  }
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    // The main address (also a path's local end, often) has its own acceptor, [0].
    if (i == 0 ||
        (wanted[i].host == config_.listen_host && wanted[i].port == config_.listen_port)) {
      listening[i] = true;
    }
    if (listening[i]) continue;
    if (Status status = listen_on(wanted[i]); !status.ok()) {
      log(status.error().message);  // as at start: one unusable path keeps no others down
      continue;
    }
    accept_next(acceptors_.size() - 1);
  }
}

void TcpTransport::adjust_paths(PeerSlot& slot, const TransportPeer& updated) {
  const std::vector<TransportAddress> paths = paths_of(updated);
  slot.addresses.clear();
  for (const TransportAddress& path : paths) {
    slot.addresses.push_back(asio::ip::make_address(path.host));  // checked before
  }
  slot.config = updated;
  if (slot.path_index >= slot.addresses.size()) slot.path_index = 0;
  const std::shared_ptr<Connection> connection = slot.connection;
  if (!connection || !connection->dialed) return;  // accepted ones: their listener decides
  for (std::size_t index = 0; index < paths.size(); ++index) {
    if (connection->remote == paths[index].host + ":" + std::to_string(paths[index].port)) {
      connection->path_index = index;
      return;
    }
  }
  slot.path_index = 0;
  disconnect(slot.config.node_id, "its path was removed by adjust");
}

// ---- StandAlone ----

void TcpTransport::set_standalone(NodeId peer, bool standalone, std::string_view reason) {
  PeerSlot* slot = slot_of(peer);
  DITTO_ASSERT(slot != nullptr);
  const bool changed = slot->standalone != standalone;
  slot->standalone = standalone;
  if (standalone) {
    // Also when it already was: a connection that got in anyway (the core refused it) goes.
    slot->redial_timer->cancel();
    // Schedules no redial (the slot is StandAlone); queued frames still go out.
    drop_connection(peer, reason, true);
    if (changed) {
      log("node " + std::to_string(unsigned{peer.value}) + " is StandAlone: " +
          std::string(reason));
    }
    return;
  }
  if (!changed) return;
  log("node " + std::to_string(unsigned{peer.value}) + " may connect again");
  slot->redial_delay = config_.reconnect_delay_min;
  if (started_ && !stopped_ && is_dialer_for(peer) && slot->connection == nullptr &&
      slot->config.port != 0) {
    dial(*slot);
  }
}

bool TcpTransport::is_standalone(NodeId peer) const {
  const PeerSlot* slot = slot_of(peer);
  return slot != nullptr && slot->standalone;
}

}  // namespace ditto::datapath
