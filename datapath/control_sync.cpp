#include "datapath/control_sync.h"

#include <algorithm>
#include <array>
#include <string_view>

#include "core/types.h"

namespace ditto::datapath {
namespace {

struct SyncRequest {
  std::optional<NodeId> peer;
  std::optional<std::uint64_t> start_sector;
  bool stop = false;
  bool clear_bitmap = false;
};

// Verbs about the whole volume: no peer.
bool takes_peer(const std::string& verb) {
  return verb != "new-current-uuid" && verb != "detach" && verb != "attach";
}

// Parses the words after the resource (untrusted: they come from the control socket).
Result<SyncRequest> parse_request(const ResourceRunner& runner,
                                  const std::vector<std::string>& words) {
  const std::string& verb = words[0];
  SyncRequest request;
  for (std::size_t i = 2; i < words.size(); ++i) {
    const std::string& word = words[i];
    if (verb == "new-current-uuid" && word == "--clear-bitmap") {
      request.clear_bitmap = true;
    } else if (verb == "verify" && word == "--stop") {
      request.stop = true;
    } else if (verb == "verify" && word == "--start") {
      const bool digits = i + 1 < words.size() && !words[i + 1].empty() &&
                          words[i + 1].size() <= 18 &&
                          words[i + 1].find_first_not_of("0123456789") == std::string::npos;
      if (!digits) return Error{verb + ": --start needs a sector number"};
      request.start_sector = std::stoull(words[++i]);
    } else if (word.starts_with("--")) {
      return Error{verb + ": unknown option '" + word + "'"};
    } else if (!takes_peer(verb)) {
      return Error{verb + ": acts on the volume of " + words[1] + ", not on a peer ('" + word +
                   "')"};
    } else if (request.peer) {
      return Error{verb + ": more than one peer named ('" + word + "')"};
    } else {
      for (const core::PeerConfig& peer : runner.node().config().peers) {
        if (peer.name == word) request.peer = peer.node_id;
      }
      if (!request.peer) {
        return Error{verb + ": resource " + words[1] + " has no peer named '" + word + "'"};
      }
    }
  }
  const auto& peers = runner.node().config().peers;
  if (!request.peer && peers.size() == 1) request.peer = peers.front().node_id;
  if (!request.peer && verb != "invalidate" && takes_peer(verb)) {
    return Error{verb + ": resource " + words[1] + " has " + std::to_string(peers.size()) +
                 " peers; name one (" + words[1] + ":PEER)"};
  }
  return request;
}

}  // namespace

std::optional<ControlReply> handle_sync_verb(ResourceRunner& runner,
                                             const std::vector<std::string>& words) {
  const std::string& verb = words[0];
  static constexpr std::array<std::string_view, 8> verbs = {
      "verify", "invalidate", "invalidate-remote", "pause-sync",
      "resume-sync", "new-current-uuid", "detach", "attach"};
  if (std::find(verbs.begin(), verbs.end(), verb) == verbs.end()) return std::nullopt;
  auto parsed = parse_request(runner, words);
  if (!parsed.ok()) return reply_of(2, parsed.error().message + "\n");
  const SyncRequest& request = parsed.value();
  if (verb == "attach" && runner.config().diskless) {
    return reply_of(10, words[1] + ": cannot attach: volume 0 is configured `disk none` (a "
                                   "diskless client); to give it a disk, name one in its `on` "
                                   "section and restart the resource\n");
  }
  core::AdminCommand command = core::Invalidate{request.peer};
  if (verb == "pause-sync") {
    command = core::PauseSync{*request.peer};
  } else if (verb == "resume-sync") {
    command = core::ResumeSync{*request.peer};
  } else if (verb == "new-current-uuid") {
    command = core::NewCurrentUuid{request.clear_bitmap};
  } else if (verb == "detach") {
    command = core::Detach{};
  } else if (verb == "verify" && request.stop) {
    command = core::StopVerify{*request.peer};
  } else if (verb == "verify") {
    command = core::Verify{*request.peer, Sector{request.start_sector.value_or(0)}};
  } else if (verb == "invalidate-remote") {
    command = core::InvalidateRemote{*request.peer};
  }
  const core::AdminResult result =
      verb == "attach" ? runner.attach_disk() : runner.admin(command);
  if (!result.ok) {
    return reply_of(11, words[1] + ": State change failed: (" + result.code + ") " +
                            result.message + "\n");
  }
  return reply_of(0, result.message.empty() ? "" : words[1] + ": " + result.message + "\n");
}

}  // namespace ditto::datapath
