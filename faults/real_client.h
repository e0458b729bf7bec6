// The real target's client: tagged 4 KiB blocks written and read through libnbd, and the model of
// what each block may hold (the last acknowledged write, or a later write whose outcome the
// client never learned or that failed).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "faults/scenario.h"

struct nbd_handle;

namespace ditto::faults {

// The bytes of write `tag` to `block`: the tag and the block number, then a pattern of both.
std::vector<char> block_bytes(std::uint64_t tag, std::uint64_t block);
// The tag a block holds (0: never written, all zeros), or nothing (not a block any write wrote).
std::optional<std::uint64_t> tag_of(const char* bytes, std::uint64_t block);

class BlockModel {
 public:
  void acknowledged(std::uint64_t block, std::uint64_t tag);
  void failed(std::uint64_t block, std::uint64_t tag);  // failed or outcome unknown
  // Empty when `found` (a tag_of result) is a value the block may hold, else why not.
  std::string judge(std::uint64_t block, std::optional<std::uint64_t> found) const;
  std::uint64_t acknowledged_count() const { return acknowledged_; }
  std::uint64_t failed_count() const { return failed_; }

 private:
  struct Entry {
    std::uint64_t acknowledged = 0;
    std::vector<std::uint64_t> maybe;
  };
  std::map<std::uint64_t, Entry> blocks_;
  std::uint64_t acknowledged_ = 0;
  std::uint64_t failed_ = 0;
};

class NbdClient {
 public:
  NbdClient() = default;
  ~NbdClient();
  NbdClient(const NbdClient&) = delete;
  NbdClient& operator=(const NbdClient&) = delete;

  [[nodiscard]] bool connect(const std::string& uri, std::string& error);
  void close();
  bool connected() const { return handle_ != nullptr; }

  struct WriteOutcome {
    std::uint64_t acknowledged = 0;
    std::uint64_t failed = 0;
    bool timed_out = false;
  };
  // Writes `operations` (all writes) with up to `queue_depth` in flight, never two to one block
  // at a time. `after_issue(count)` runs after each write was issued (a crash hooks in there).
  // Every outcome goes into `model`.
  WriteOutcome write(const std::vector<PlannedOperation>& operations, std::uint32_t queue_depth,
                     BlockModel& model, const std::function<void(std::uint64_t)>& after_issue,
                     int timeout_ms);
  // Reads `count` blocks from `first` into `bytes`; false (with the reason) if the read failed.
  [[nodiscard]] bool read(std::uint64_t first, std::uint64_t count, std::vector<char>& bytes,
                          std::string& error);

 private:
  nbd_handle* handle_ = nullptr;
};

}  // namespace ditto::faults
