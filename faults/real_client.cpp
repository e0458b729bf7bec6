#include "faults/real_client.h"

#include <libnbd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>

namespace ditto::faults {

std::vector<char> block_bytes(std::uint64_t tag, std::uint64_t block) {
  std::vector<char> bytes(block_size_bytes);
  std::memcpy(bytes.data(), &tag, sizeof(tag));
  std::memcpy(bytes.data() + 8, &block, sizeof(block));
  std::uint64_t state = tag * 0x9e3779b97f4a7c15ull ^ block;
  for (std::size_t index = 16; index < bytes.size(); ++index) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    bytes[index] = static_cast<char>(state >> 56);
  }
  return bytes;
}

std::optional<std::uint64_t> tag_of(const char* bytes, std::uint64_t block) {
  std::uint64_t tag = 0;
  std::memcpy(&tag, bytes, sizeof(tag));
  if (tag == 0) {
    const bool zero = std::all_of(bytes, bytes + block_size_bytes, [](char c) { return c == 0; });
    if (zero) return 0;
    return std::nullopt;
  }
  const std::vector<char> expected = block_bytes(tag, block);
  if (std::memcmp(expected.data(), bytes, block_size_bytes) != 0) return std::nullopt;
  return tag;
}

void BlockModel::acknowledged(std::uint64_t block, std::uint64_t tag) {
  Entry& entry = blocks_[block];
  acknowledged_ += 1;
  // One write per block is in flight at a time: tags of a block complete in issue order.
  entry.acknowledged = tag;
  entry.maybe.clear();
}

void BlockModel::failed(std::uint64_t block, std::uint64_t tag) {
  failed_ += 1;
  blocks_[block].maybe.push_back(tag);
}

std::string BlockModel::judge(std::uint64_t block, std::optional<std::uint64_t> found) const {
  const auto entry = blocks_.find(block);
  const std::uint64_t acknowledged = entry == blocks_.end() ? 0 : entry->second.acknowledged;
  if (!found) {
    return "block " + std::to_string(block) + " holds bytes no write wrote (expected tag " +
           std::to_string(acknowledged) + ")";
  }
  if (*found == acknowledged) return "";
  if (entry != blocks_.end()) {
    const auto& maybe = entry->second.maybe;
    if (std::find(maybe.begin(), maybe.end(), *found) != maybe.end()) return "";
  }
  return "block " + std::to_string(block) + " holds tag " + std::to_string(*found) +
         ", the last acknowledged write there was tag " + std::to_string(acknowledged);
}

NbdClient::~NbdClient() { close(); }

bool NbdClient::connect(const std::string& uri, std::string& error) {
  close();
  handle_ = nbd_create();
  if (handle_ == nullptr || nbd_connect_uri(handle_, uri.c_str()) == -1) {
    error = std::string("NBD connect to ") + uri + ": " + nbd_get_error();
    close();
    return false;
  }
  return true;
}

void NbdClient::close() {
  if (handle_ == nullptr) return;
  if (!nbd_aio_is_dead(handle_) && !nbd_aio_is_closed(handle_)) nbd_shutdown(handle_, 0);
  nbd_close(handle_);
  handle_ = nullptr;
}

NbdClient::WriteOutcome NbdClient::write(const std::vector<PlannedOperation>& operations,
                                         std::uint32_t queue_depth, BlockModel& model,
                                         const std::function<void(std::uint64_t)>& after_issue,
                                         int timeout_ms) {
  struct InFlight {
    std::int64_t cookie = 0;
    const PlannedOperation* operation = nullptr;
    std::vector<char> bytes;
  };
  WriteOutcome outcome;
  std::vector<InFlight> in_flight;
  std::set<std::uint64_t> busy_blocks;
  std::size_t next = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto finish = [&](const InFlight& done, bool ok) {
    busy_blocks.erase(done.operation->block);
    if (ok) {
      model.acknowledged(done.operation->block, done.operation->tag);
      outcome.acknowledged += 1;
    } else {
      model.failed(done.operation->block, done.operation->tag);
      outcome.failed += 1;
    }
  };
  while (next < operations.size() || !in_flight.empty()) {
    const bool dead = handle_ == nullptr || nbd_aio_is_dead(handle_) || nbd_aio_is_closed(handle_);
    while (!dead && next < operations.size() && in_flight.size() < queue_depth &&
           busy_blocks.count(operations[next].block) == 0) {
      const PlannedOperation& operation = operations[next];
      InFlight entry{0, &operation, block_bytes(operation.tag, operation.block)};
      entry.cookie = nbd_aio_pwrite(handle_, entry.bytes.data(), entry.bytes.size(),
                                    operation.block * block_size_bytes, NBD_NULL_COMPLETION, 0);
      next += 1;
      if (entry.cookie == -1) {
        finish(entry, false);
      } else {
        busy_blocks.insert(operation.block);
        in_flight.push_back(std::move(entry));
      }
      if (after_issue) after_issue(next);
    }
    if (dead || std::chrono::steady_clock::now() > deadline) {
      // The connection is gone (or hangs): nothing in flight will ever be acknowledged, and
      // writes not yet issued are not issued.
      outcome.timed_out = !dead;
      for (const InFlight& entry : in_flight) finish(entry, false);
      in_flight.clear();
      for (; next < operations.size(); ++next) {
        model.failed(operations[next].block, operations[next].tag);
        outcome.failed += 1;
      }
      break;
    }
    if (in_flight.empty()) continue;
    if (nbd_poll(handle_, 50) == -1) continue;  // the handle died: the next turn sees it
    for (std::size_t index = 0; index < in_flight.size();) {
      const int done = nbd_aio_command_completed(handle_, in_flight[index].cookie);
      if (done == 0) {
        ++index;
        continue;
      }
      finish(in_flight[index], done == 1);
      in_flight[index] = std::move(in_flight.back());
      in_flight.pop_back();
    }
  }
  return outcome;
}

bool NbdClient::read(std::uint64_t first, std::uint64_t count, std::vector<char>& bytes,
                     std::string& error) {
  bytes.resize(count * block_size_bytes);
  if (handle_ == nullptr) {
    error = "no NBD connection";
    return false;
  }
  if (nbd_pread(handle_, bytes.data(), bytes.size(), first * block_size_bytes, 0) == -1) {
    error = "read of blocks " + std::to_string(first) + ".." +
            std::to_string(first + count - 1) + " failed: " + nbd_get_error();
    return false;
  }
  return true;
}

}  // namespace ditto::faults
