// The control-socket verbs of dittoadm that need no new core commands: status (text and
// JSON, drbdsetup's formats), events2 (exists dump with --statistics/--timestamps, then the
// stream), adjust (apply the configuration file's changes live) and get-gi (the generation
// identifiers, as dump-md names them). dittod's command handler
// dispatches here first.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "datapath/control_server.h"
#include "datapath/daemon_resource.h"

namespace ditto::datapath {

// The reply to `words` ("<verb> <resource> [flags]", resource already checked) when the verb is
// one of those above; nullopt for any other verb.
std::optional<ControlReply> handle_control_verb(ResourceRunner& runner,
                                                const std::vector<std::string>& words);

}  // namespace ditto::datapath
