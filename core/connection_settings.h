// The net options both ends of a connection must agree on (DRBD's P_PROTOCOL, drbd9-semantics.md
// §2.4 and §6): the replication protocol, the after-split-brain policies, allow-two-primaries and
// discard-my-data. Each side sends its own in the Hello; a mismatch refuses the connection with
// the option named (Node::on_hello), as DRBD's "incompatible ... settings".
#pragma once

#include <optional>
#include <string>

#include "core/generation.h"
#include "core/types.h"

namespace ditto {

struct ConnectionSettings {
  Protocol protocol = Protocol::c;
  AfterSplitBrain0 after_sb_0pri = AfterSplitBrain0::disconnect;
  AfterSplitBrain1 after_sb_1pri = AfterSplitBrain1::disconnect;
  AfterSplitBrain2 after_sb_2pri = AfterSplitBrain2::disconnect;
  bool allow_two_primaries = false;
  // connect --discard-my-data toward this peer: at most one side may offer itself as the victim.
  bool discard_my_data = false;
  friend bool operator==(const ConnectionSettings&, const ConnectionSettings&) = default;
};

// Why `local` and the peer's `remote` settings cannot share a connection ("incompatible
// protocol settings: local C, peer A"), or nothing when they can. after-sb-0pri is compared with
// discard-local and discard-remote swapped: each side names itself local (discard-node-NAME
// resolves to one of them on each node).
std::optional<std::string> incompatible_settings(const ConnectionSettings& local,
                                                 const ConnectionSettings& remote);

}  // namespace ditto
