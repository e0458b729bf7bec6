// The control-socket verbs for online verify and full resyncs, as drbdsetup names them:
//   verify <resource> [<peer>] [--start <sector>] [--stop]
//   invalidate <resource> [<peer>]           (this node becomes SyncTarget of <peer>)
//   invalidate-remote <resource> [<peer>]    (<peer> becomes SyncTarget of this node)
//   pause-sync <resource> [<peer>] / resume-sync <resource> [<peer>]
//                                            (the user's resync-suspend flag toward <peer>)
//   new-current-uuid <resource> [--clear-bitmap]
//   detach <resource>                        (the disk goes Diskless; the metadata is written
//                                             back clean once its I/O is done)
//   attach <resource>                        (refused: not supported yet; down + up reattach)
// <peer> is a peer's host name (dittoadm turns RES:PEER into these words); without it the
// resource must have exactly one peer (invalidate: the core picks an UpToDate one). Each verb
// starts the operation and answers at once (drbdsetup does too); `status` shows the progress
// (done:) and the events2 stream the `verify-finished` line with the blocks found out of sync.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "datapath/control_server.h"
#include "datapath/daemon_resource.h"

namespace ditto::datapath {

// The reply to `words` ("<verb> <resource> ...", resource already checked) when the verb is
// one of those above; nullopt for any other verb.
std::optional<ControlReply> handle_sync_verb(ResourceRunner& runner,
                                             const std::vector<std::string>& words);

}  // namespace ditto::datapath
