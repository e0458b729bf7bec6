#include "core/connection_settings.h"

namespace ditto {
namespace {

AfterSplitBrain0 seen_from_here(AfterSplitBrain0 remote) {
  switch (remote) {
    case AfterSplitBrain0::discard_local: return AfterSplitBrain0::discard_remote;
    case AfterSplitBrain0::discard_remote: return AfterSplitBrain0::discard_local;
    default: return remote;
  }
}

std::string yes_no(bool value) {
  return value ? "yes" : "no";
}

std::string mismatch(std::string_view option, std::string_view local, std::string_view remote) {
  return "incompatible " + std::string(option) + " settings: local " + std::string(local) +
         ", peer " + std::string(remote);
}

}  // namespace

std::optional<std::string> incompatible_settings(const ConnectionSettings& local,
                                                 const ConnectionSettings& remote) {
  if (local.protocol != remote.protocol) {
    return mismatch("protocol", to_string(local.protocol), to_string(remote.protocol));
  }
  if (local.after_sb_0pri != seen_from_here(remote.after_sb_0pri)) {
    return mismatch("after-sb-0pri", to_string(local.after_sb_0pri),
                    to_string(remote.after_sb_0pri));
  }
  if (local.after_sb_1pri != remote.after_sb_1pri) {
    return mismatch("after-sb-1pri", to_string(local.after_sb_1pri),
                    to_string(remote.after_sb_1pri));
  }
  if (local.after_sb_2pri != remote.after_sb_2pri) {
    return mismatch("after-sb-2pri", to_string(local.after_sb_2pri),
                    to_string(remote.after_sb_2pri));
  }
  if (local.allow_two_primaries != remote.allow_two_primaries) {
    return mismatch("allow-two-primaries", yes_no(local.allow_two_primaries),
                    yes_no(remote.allow_two_primaries));
  }
  if (local.discard_my_data && remote.discard_my_data) {
    return "incompatible discard-my-data settings: both sides offer to discard their data";
  }
  return std::nullopt;
}

}  // namespace ditto
