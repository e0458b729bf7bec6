// The control-socket verbs that change connections: `connect RES [PEER] [--discard-my-data]`
// and `disconnect RES [PEER]` (drbdadm connect / disconnect; dittoadm sends RES:PEER as
// "RES PEER"). PEER is a peer's host name or node id; without it, disconnect takes every
// connection StandAlone and connect starts every StandAlone one.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "datapath/control_server.h"
#include "datapath/daemon_resource.h"

namespace ditto::datapath {

// The reply when words[0] is connect or disconnect (resource already checked); nullopt else.
std::optional<ControlReply> handle_connection_verb(ResourceRunner& runner,
                                                   const std::vector<std::string>& words);

}  // namespace ditto::datapath
