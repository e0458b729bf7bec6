// TcpTransport's authentication handshake and keepalive (see transport_tcp.h for the rules).
//
// Handshake with a shared secret (D dials, A accepts; cD, cA fresh random challenges):
//   D -> A  AuthChallenge(D, A, resource, cD)
//   A -> D  AuthChallenge(A, D, resource, cA), AuthResponse(MAC by A over cD, cA)
//   D       verifies A's MAC; only then announces A to its handler
//   D -> A  AuthResponse(MAC by D over cA, cD)
//   A       verifies D's MAC; only then adopts the connection and announces D
// Then both send their Hello as without authentication.
#include <string>

#include "core/assert.h"
#include "datapath/transport_connection.h"
#include "datapath/transport_tcp.h"

namespace ditto::datapath {
namespace {

std::string node_text(NodeId node) {
  return std::to_string(unsigned{node.value});
}

}  // namespace

bool TcpTransport::authenticating(const Connection& connection) const {
  return auth_key_.has_value() && !connection.auth_done;
}

// Called on a dialed connection as soon as TCP connects.
void TcpTransport::start_authentication(const std::shared_ptr<Connection>& connection) {
  DITTO_ASSERT(auth_key_.has_value() && connection->dialed);
  DITTO_ASSERT(!connection->announced);
  connection->local_challenge = random_auth_challenge();
  wire::AuthChallenge challenge;
  challenge.sender = config_.self;
  challenge.receiver = connection->peer;
  challenge.resource_name = config_.resource_name;
  challenge.challenge = connection->local_challenge;
  enqueue(connection, challenge);
}

bool TcpTransport::handle_auth_frame(const std::shared_ptr<Connection>& connection,
                                     wire::Frame& frame) {
  DITTO_ASSERT(authenticating(*connection));
  if (const auto* challenge = std::get_if<wire::AuthChallenge>(&frame.message)) {
    if (!connection->challenge_received) return on_auth_challenge(connection, *challenge);
    fail(connection, "authentication failed: a second AuthChallenge");
    return false;
  }
  if (const auto* response = std::get_if<wire::AuthResponse>(&frame.message)) {
    if (connection->challenge_received) return on_auth_response(connection, *response);
    fail(connection, "authentication failed: an AuthResponse before the AuthChallenge");
    return false;
  }
  fail(connection, std::string("authentication failed: the peer sent a ") +
                       wire::to_string(wire::type_of(frame.message)) +
                       " where the shared-secret handshake was expected");
  return false;
}

std::string TcpTransport::challenge_problem(const Connection& connection,
                                            const wire::AuthChallenge& challenge) const {
  if (challenge.protocol_version_min > wire::protocol_version ||
      challenge.protocol_version_max < wire::protocol_version) {
    return "peer speaks protocol versions " + std::to_string(challenge.protocol_version_min) +
           ".." + std::to_string(challenge.protocol_version_max) + ", we speak " +
           std::to_string(wire::protocol_version);
  }
  if (challenge.receiver != config_.self) {
    return "AuthChallenge is addressed to node " + node_text(challenge.receiver) +
           ", this is node " + node_text(config_.self);
  }
  if (challenge.resource_name != config_.resource_name) {
    return "AuthChallenge is for resource '" + challenge.resource_name + "'";
  }
  if (connection.dialed && challenge.sender != connection.peer) {
    return "AuthChallenge comes from node " + node_text(challenge.sender) +
           ", we dialed node " + node_text(connection.peer);
  }
  if (!connection.dialed &&
      (slot_of(challenge.sender) == nullptr || is_dialer_for(challenge.sender))) {
    return "AuthChallenge comes from node " + node_text(challenge.sender) +
           ", which is not a configured peer that dials us";
  }
  if (challenge.challenge == connection.local_challenge) {
    return "the peer echoed our own challenge";
  }
  return {};
}

bool TcpTransport::on_auth_challenge(const std::shared_ptr<Connection>& connection,
                                     const wire::AuthChallenge& challenge) {
  if (std::string problem = challenge_problem(*connection, challenge); !problem.empty()) {
    fail(connection, "authentication failed: " + problem);
    return false;
  }
  connection->challenge_received = true;
  connection->peer_challenge = challenge.challenge;
  if (connection->dialed) return true;  // A's response follows
  connection->claimed_peer = challenge.sender;
  connection->local_challenge = random_auth_challenge();
  wire::AuthChallenge ours;
  ours.sender = config_.self;
  ours.receiver = challenge.sender;
  ours.resource_name = config_.resource_name;
  ours.challenge = connection->local_challenge;
  enqueue(connection, ours);
  enqueue(connection, wire::AuthResponse{auth_key_->digest(
                          config_.self, challenge.sender, config_.resource_name,
                          connection->peer_challenge, connection->local_challenge)});
  return true;
}

bool TcpTransport::on_auth_response(const std::shared_ptr<Connection>& connection,
                                    const wire::AuthResponse& response) {
  const NodeId peer = connection->dialed ? connection->peer : connection->claimed_peer;
  if (!auth_key_->verify(response.digest, peer, config_.self, config_.resource_name,
                         connection->local_challenge, connection->peer_challenge)) {
    fail(connection, "authentication failed: node " + node_text(peer) +
                         " does not know the shared secret (wrong secret, or a replayed "
                         "handshake)");
    return false;
  }
  connection->auth_done = true;
  if (!connection->dialed) return adopt(connection, peer);
  enqueue(connection, wire::AuthResponse{auth_key_->digest(config_.self, peer,
                                                           config_.resource_name,
                                                           connection->peer_challenge,
                                                           connection->local_challenge)});
  PeerSlot& slot = *slot_of(peer);
  deliver_disconnect_notice(slot);  // keeps disconnected-before-connected order
  if (connection->closed || stopped_) return false;
  connection->announced = true;
  handler_.on_peer_connected(peer);
  return !connection->closed && !stopped_;
}

// ---- Keepalive ----

void TcpTransport::start_keepalive(const std::shared_ptr<Connection>& connection) {
  arm_keepalive(connection, config_.ping_interval);
}

void TcpTransport::arm_keepalive(const std::shared_ptr<Connection>& connection, Duration delay) {
  DITTO_ASSERT(!connection->closed);
  const std::uint64_t generation = ++connection->keepalive_generation;
  connection->keepalive.expires_after(std::chrono::nanoseconds(delay.ns));
  connection->keepalive.async_wait(
      [this, lifetime = lifetime_, connection, generation](const boost::system::error_code& e) {
        if (!lifetime->alive || e || connection->closed || connection->draining) return;
        if (generation != connection->keepalive_generation) return;
        on_keepalive_timer(connection);
      });
}

void TcpTransport::on_keepalive_timer(const std::shared_ptr<Connection>& connection) {
  if (!connection->ping_outstanding) {
    connection->ping_outstanding = true;
    connection->received_since_ping = false;
    enqueue(connection, wire::Ping{++connection->ping_sequence});
    arm_keepalive(connection, config_.ping_timeout);
    return;
  }
  // Bytes arrived after the Ping: the peer is alive and its PingAck may be queued behind its
  // data. Give it another ping-timeout.
  if (connection->received_since_ping) {
    connection->received_since_ping = false;
    arm_keepalive(connection, config_.ping_timeout);
    return;
  }
  fail(connection, "no answer to a ping within " +
                       std::to_string(config_.ping_timeout.ns / 1'000'000) + " ms (ping-timeout)");
}

bool TcpTransport::handle_keepalive_frame(const std::shared_ptr<Connection>& connection,
                                          const wire::Message& message) {
  if (!connection->hello_received) return false;
  if (const auto* ping = std::get_if<wire::Ping>(&message)) {
    enqueue(connection, wire::PingAck{ping->sequence});
    return true;
  }
  if (const auto* ack = std::get_if<wire::PingAck>(&message)) {
    if (connection->ping_outstanding && ack->sequence == connection->ping_sequence) {
      connection->ping_outstanding = false;
      arm_keepalive(connection, config_.ping_interval);
    }
    return true;
  }
  return false;
}

}  // namespace ditto::datapath
