#include "datapath/control_connection.h"

#include <algorithm>

namespace ditto::datapath {
namespace {

// The peer named `which` (host name or node id) among the resource's peers.
std::optional<core::PeerConfig> find_peer(const ResourceRunner& runner, const std::string& which) {
  for (const core::PeerConfig& peer : runner.node().config().peers) {
    if (peer.name == which || std::to_string(peer.node_id.value) == which) return peer;
  }
  return std::nullopt;
}

bool is_standalone(const ResourceRunner& runner, NodeId peer) {
  for (const core::PeerStatus& status : runner.node().peers()) {
    if (status.node_id == peer) return status.connection == ConnectionState::standalone;
  }
  return false;
}

}  // namespace

std::optional<ControlReply> handle_connection_verb(ResourceRunner& runner,
                                                   const std::vector<std::string>& words) {
  if (words.size() < 2) return std::nullopt;
  const std::string& verb = words[0];
  if (verb != "connect" && verb != "disconnect") return std::nullopt;
  const std::string& resource = runner.config().resource.name;
  bool discard_my_data = false;
  std::optional<std::string> peer_name;
  for (std::size_t i = 2; i < words.size(); ++i) {
    if (verb == "connect" && words[i] == "--discard-my-data") {
      discard_my_data = true;
    } else if (words[i].rfind("--", 0) != 0 && !peer_name) {
      peer_name = words[i];
    } else {
      return reply_of(2, verb + ": unknown option '" + words[i] + "'\n");
    }
  }
  std::vector<core::PeerConfig> peers;
  if (peer_name) {
    std::optional<core::PeerConfig> peer = find_peer(runner, *peer_name);
    if (!peer) {
      return reply_of(10, resource + ": no peer named '" + *peer_name + "' (a host name or " +
                              "node id of the resource's connections)\n");
    }
    peers.push_back(*peer);
  } else {
    for (const core::PeerConfig& peer : runner.node().config().peers) {
      // Without a peer, connect starts the StandAlone connections and leaves the others.
      if (verb == "disconnect" || is_standalone(runner, peer.node_id)) peers.push_back(peer);
    }
    if (peers.empty()) {
      return reply_of(10, resource + ": no connection is StandAlone; nothing to connect\n");
    }
  }
  int exit_status = 0;
  std::string text;
  for (const core::PeerConfig& peer : peers) {
    core::AdminCommand command = core::DisconnectPeer{peer.node_id};
    if (verb == "connect") command = core::ConnectPeer{peer.node_id, discard_my_data};
    const core::AdminResult result = runner.admin(command);
    if (result.ok) continue;
    exit_status = 11;
    text += resource + ":" + peer.name + ": State change failed: (" + result.code + ") " +
            result.message + "\n";
  }
  return reply_of(exit_status, text);
}

}  // namespace ditto::datapath
