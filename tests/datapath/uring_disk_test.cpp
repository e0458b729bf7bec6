// The io_uring disk on real files (O_DIRECT, so in a directory on a disk file system, never
// tmpfs) and, where losetup works, on a loop device.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "datapath/uring_buffer_pool.h"
#include "datapath/uring_disk.h"

namespace ditto::datapath {
namespace {

using namespace std::chrono_literals;
constexpr std::size_t kPage = 4096;

// A fresh directory on a file system that accepts O_DIRECT: /var/tmp here (checked with
// stat -f: ext4), not /tmp, which may be tmpfs elsewhere.
class ScratchDirectory {
 public:
  ScratchDirectory() {
    char pattern[] = "/var/tmp/ditto-uring-test-XXXXXX";
    const char* made = ::mkdtemp(pattern);
    EXPECT_NE(made, nullptr);
    path_ = made == nullptr ? std::string() : std::string(made);
  }
  ~ScratchDirectory() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void create_file(const std::string& path, std::uint64_t size_bytes) {
  const int file_descriptor = ::open(path.c_str(), O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
  ASSERT_GE(file_descriptor, 0) << path;
  ASSERT_EQ(::ftruncate(file_descriptor, static_cast<off_t>(size_bytes)), 0);
  ::close(file_descriptor);
}

// Every 8-byte word names its absolute offset and a tag, so misplaced data cannot match.
void fill_pattern(std::span<std::uint8_t> buffer, std::uint64_t offset_bytes, std::uint64_t tag) {
  for (std::size_t index = 0; index + 8 <= buffer.size(); index += 8) {
    const std::uint64_t word = (offset_bytes + index) * 0x9E3779B97F4A7C15ULL + tag;
    std::memcpy(buffer.data() + index, &word, 8);
  }
}

bool matches_pattern(std::span<const std::uint8_t> buffer, std::uint64_t offset_bytes,
                     std::uint64_t tag) {
  std::vector<std::uint8_t> expected(buffer.size());
  fill_pattern(expected, offset_bytes, tag);
  return std::equal(buffer.begin(), buffer.end(), expected.begin());
}

// Reads through the page cache with plain pread: an oracle independent of the ring.
std::vector<std::uint8_t> read_with_pread(const std::string& path, std::uint64_t offset_bytes,
                                          std::size_t size_bytes) {
  std::vector<std::uint8_t> data(size_bytes);
  const int file_descriptor = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(file_descriptor, 0);
  const ssize_t got = ::pread(file_descriptor, data.data(), size_bytes,
                              static_cast<off_t>(offset_bytes));
  EXPECT_EQ(got, static_cast<ssize_t>(size_bytes));
  ::close(file_descriptor);
  return data;
}

bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
               std::chrono::milliseconds timeout = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (io.stopped()) io.restart();
    io.run_one_for(10ms);
  }
  return true;
}

std::unique_ptr<UringDisk> open_or_fail(boost::asio::io_context& io, const std::string& path,
                                        UringDiskOptions options = {}) {
  auto disk = UringDisk::open(io, path, options);
  EXPECT_TRUE(disk.ok()) << (disk.ok() ? "" : disk.error().message);
  return disk.ok() ? std::move(disk).value() : nullptr;
}

struct Extent {
  std::uint64_t offset_bytes;
  std::size_t size_bytes;
};

// Extents of mixed sizes laid end to end from offset 0, returned in shuffled order.
std::vector<Extent> shuffled_extents(std::size_t count, std::uint32_t seed) {
  const std::size_t sizes_bytes[] = {4096, 8192, 16384, 65536, 131072, 4096, 12288};
  std::vector<Extent> extents;
  std::uint64_t offset_bytes = 0;
  for (std::size_t index = 0; index < count; index++) {
    const std::size_t size_bytes = sizes_bytes[index % std::size(sizes_bytes)];
    extents.push_back(Extent{offset_bytes, size_bytes});
    offset_bytes += size_bytes;
  }
  std::mt19937 random(seed);
  std::shuffle(extents.begin(), extents.end(), random);
  return extents;
}

// Runs count operations with at most depth in flight: submit(index) starts operation index,
// and the completion handler (cookie = index) records results and starts the next one.
struct Pipeline {
  Pipeline(UringDisk& disk_in, std::size_t count_in, std::size_t depth_in,
           std::function<Status(std::size_t)> submit_in)
      : disk(disk_in), count(count_in), depth(depth_in), submit(std::move(submit_in)) {}

  UringDisk& disk;
  std::size_t count;
  std::size_t depth;
  std::function<Status(std::size_t)> submit;
  std::map<std::uint64_t, int> results;
  std::size_t next = 0;
  std::size_t in_flight_max = 0;

  bool run(boost::asio::io_context& io) {
    disk.set_completion_handler([this](std::uint64_t cookie, int result) {
      results[cookie] = result;
      start_next();
    });
    while (next < std::min(depth, count)) start_next();
    EXPECT_TRUE(results.empty()) << "completions must not run inside submit";
    return run_until(io, [&] { return results.size() == count; });
  }
  void start_next() {
    if (next >= count) return;
    Status status = submit(next++);
    EXPECT_TRUE(status.ok()) << (status.ok() ? "" : status.error().message);
    in_flight_max = std::max(in_flight_max, disk.in_flight());
  }
};

class UringDiskRoundTrip : public ::testing::TestWithParam<bool> {};

TEST_P(UringDiskRoundTrip, PatternsWrittenAtManyOffsetsWithQd32ReadBackIdentically) {
  const bool fixed_buffers = GetParam();
  ScratchDirectory scratch;
  const std::string path = scratch.file("disk.img");
  create_file(path, 32 << 20);
  boost::asio::io_context io(1);
  auto disk = open_or_fail(io, path, UringDiskOptions{.queue_depth = 32});
  ASSERT_NE(disk, nullptr);
  EXPECT_EQ(disk->size_bytes(), 32U << 20);
  EXPECT_EQ(disk->alignment_bytes() % 512, 0U);
  AlignedBufferPool pool(16 << 20);
  if (fixed_buffers) {
    Status registered = disk->register_buffers(pool.slab());
    ASSERT_TRUE(registered.ok()) << registered.error().message;
  }
  const std::vector<Extent> extents = shuffled_extents(256, 7);
  std::vector<std::span<std::uint8_t>> buffers(extents.size());
  Pipeline writes{*disk, extents.size(), 32, [&](std::size_t index) {
                    buffers[index] = pool.allocate(extents[index].size_bytes);
                    EXPECT_FALSE(buffers[index].empty());
                    fill_pattern(buffers[index], extents[index].offset_bytes, 1);
                    return disk->submit_write(index, extents[index].offset_bytes,
                                              buffers[index], false);
                  }};
  ASSERT_TRUE(writes.run(io));
  EXPECT_EQ(writes.in_flight_max, 32U);
  for (const auto& [cookie, result] : writes.results) EXPECT_EQ(result, 0) << cookie;
  for (auto& buffer : buffers) std::memset(buffer.data(), 0, buffer.size());
  Pipeline reads{*disk, extents.size(), 32, [&](std::size_t index) {
                   return disk->submit_read(index, extents[index].offset_bytes, buffers[index]);
                 }};
  ASSERT_TRUE(reads.run(io));
  EXPECT_EQ(disk->in_flight(), 0U);
  for (std::size_t index = 0; index < extents.size(); index++) {
    EXPECT_EQ(reads.results[index], 0) << index;
    EXPECT_TRUE(matches_pattern(buffers[index], extents[index].offset_bytes, 1)) << index;
    const auto on_disk = read_with_pread(path, extents[index].offset_bytes,
                                         extents[index].size_bytes);
    EXPECT_TRUE(matches_pattern(on_disk, extents[index].offset_bytes, 1)) << index;
    pool.release(buffers[index]);
  }
  EXPECT_EQ(pool.slab_free_bytes(), pool.slab().size());
}

std::string buffer_kind_name(const ::testing::TestParamInfo<bool>& parameter) {
  return parameter.param ? "registered_slab" : "plain_buffers";
}

INSTANTIATE_TEST_SUITE_P(FixedBuffers, UringDiskRoundTrip, ::testing::Values(false, true),
                         buffer_kind_name);

// Collects completions of a test that drives the disk by hand.
struct Recorder {
  std::map<std::uint64_t, int> results;
  void attach(UringDisk& disk) {
    disk.set_completion_handler(
        [this](std::uint64_t cookie, int result) { results[cookie] = result; });
  }
};

TEST(UringDisk, FuaWriteAndFlushCompleteAndTheDataIsOnTheFile) {
  ScratchDirectory scratch;
  const std::string path = scratch.file("disk.img");
  create_file(path, 1 << 20);
  boost::asio::io_context io(1);
  auto disk = open_or_fail(io, path);
  ASSERT_NE(disk, nullptr);
  Recorder recorder;
  recorder.attach(*disk);
  AlignedBufferPool pool(1 << 20);
  auto buffer = pool.allocate(8192);
  fill_pattern(buffer, 65536, 9);
  ASSERT_TRUE(disk->submit_write(1, 65536, buffer, /*fua=*/true).ok());
  ASSERT_TRUE(run_until(io, [&] { return recorder.results.size() == 1; }));
  EXPECT_EQ(recorder.results[1], 0);
  EXPECT_TRUE(matches_pattern(read_with_pread(path, 65536, 8192), 65536, 9));
  ASSERT_TRUE(disk->submit_flush(2).ok());
  ASSERT_TRUE(run_until(io, [&] { return recorder.results.size() == 2; }));
  EXPECT_EQ(recorder.results[2], 0);
  EXPECT_EQ(disk->in_flight(), 0U);
  pool.release(buffer);
}

TEST(UringDisk, ReadsAndWritesOutsideTheDiskOrMisalignedAreRejectedWithoutQueueing) {
  ScratchDirectory scratch;
  const std::string path = scratch.file("disk.img");
  create_file(path, 64 << 10);
  boost::asio::io_context io(1);
  auto disk = open_or_fail(io, path);
  ASSERT_NE(disk, nullptr);
  AlignedBufferPool pool(1 << 20);
  auto buffer = pool.allocate(8192);
  Status past_end = disk->submit_read(1, 64 << 10, buffer);
  ASSERT_FALSE(past_end.ok());
  EXPECT_NE(past_end.error().message.find("beyond the end"), std::string::npos);
  EXPECT_NE(past_end.error().message.find(path), std::string::npos);
  EXPECT_FALSE(disk->submit_read(2, (64 << 10) - 4096, buffer).ok());  // straddles the end
  EXPECT_FALSE(disk->submit_write(3, 100, buffer.first(4096), false).ok());
  EXPECT_FALSE(disk->submit_write(4, 0, buffer.subspan(8, 4096), false).ok());
  EXPECT_FALSE(disk->submit_read(5, 0, buffer.first(100)).ok());
  EXPECT_FALSE(disk->submit_read(6, 0, buffer.first(0)).ok());
  EXPECT_EQ(disk->in_flight(), 0U);
  pool.release(buffer);
}

TEST(UringDisk, ReadsOfARangeTheFileLostAfterOpenEndWithEioInsteadOfLooping) {
  ScratchDirectory scratch;
  const std::string path = scratch.file("disk.img");
  create_file(path, 16384);
  boost::asio::io_context io(1);
  auto disk = open_or_fail(io, path);
  ASSERT_NE(disk, nullptr);
  ASSERT_EQ(::truncate(path.c_str(), 8192), 0);  // someone shrinks the backing file
  Recorder recorder;
  recorder.attach(*disk);
  AlignedBufferPool pool(1 << 20);
  auto straddling = pool.allocate(8192);  // 4096 bytes before the new end, 4096 after
  auto beyond = pool.allocate(4096);
  auto inside = pool.allocate(8192);
  ASSERT_TRUE(disk->submit_read(1, 4096, straddling).ok());
  ASSERT_TRUE(disk->submit_read(2, 12288, beyond).ok());
  ASSERT_TRUE(disk->submit_read(3, 0, inside).ok());
  ASSERT_TRUE(run_until(io, [&] { return recorder.results.size() == 3; }));
  EXPECT_EQ(recorder.results[1], -EIO);  // short read, resubmitted remainder read 0 bytes
  EXPECT_EQ(recorder.results[2], -EIO);  // zero-length read
  EXPECT_EQ(recorder.results[3], 0);
  EXPECT_EQ(disk->in_flight(), 0U);
  for (auto buffer : {straddling, beyond, inside}) pool.release(buffer);
}

// RLIMIT_FSIZE turns a write that crosses the limit into a short write (io-uring-asio.md §4):
// the disk must resubmit the remainder, whose -EFBIG then reaches the handler.
TEST(UringDisk, ShortWriteIsResubmittedAndTheRemaindersErrorReachesTheHandler) {
  ScratchDirectory scratch;
  const std::string path = scratch.file("disk.img");
  create_file(path, 65536);
  boost::asio::io_context io(1);
  auto disk = open_or_fail(io, path);
  ASSERT_NE(disk, nullptr);
  Recorder recorder;
  recorder.attach(*disk);
  AlignedBufferPool pool(1 << 20);
  auto buffer = pool.allocate(16384);
  fill_pattern(buffer, 4096, 3);
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto* saved_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit limited = saved;
  limited.rlim_cur = 8192;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limited), 0);
  ASSERT_TRUE(disk->submit_write(1, 4096, buffer, false).ok());
  const bool done = run_until(io, [&] { return recorder.results.size() == 1; });
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &saved), 0);
  std::signal(SIGXFSZ, saved_handler);
  ASSERT_TRUE(done);
  EXPECT_EQ(recorder.results[1], -EFBIG);
  // The first 4096 bytes (up to the limit) were written by the first, short attempt.
  EXPECT_TRUE(matches_pattern(read_with_pread(path, 4096, 4096), 4096, 3));
  pool.release(buffer);
}

TEST(UringDisk, OpeningAMissingFileADirectoryOrABadlySizedFileGivesAClearError) {
  ScratchDirectory scratch;
  boost::asio::io_context io(1);
  const auto expect_error = [&](const std::string& path, const std::string& fragment,
                                UringDiskOptions options = {}) {
    auto disk = UringDisk::open(io, path, options);
    ASSERT_FALSE(disk.ok()) << path;
    EXPECT_NE(disk.error().message.find(path), std::string::npos) << disk.error().message;
    EXPECT_NE(disk.error().message.find(fragment), std::string::npos) << disk.error().message;
  };
  expect_error(scratch.file("missing.img"), "No such file or directory");
  expect_error(scratch.path(), "Is a directory");
  create_file(scratch.file("odd.img"), 4097);
  expect_error(scratch.file("odd.img"), "not a multiple of 4096");
  create_file(scratch.file("empty.img"), 0);
  expect_error(scratch.file("empty.img"), "is empty");
  expect_error("/dev/null", "neither a regular file nor a block device",
               UringDiskOptions{.direct_io = false});
  create_file(scratch.file("good.img"), 4096);
  expect_error(scratch.file("good.img"), "queue depth 0", UringDiskOptions{.queue_depth = 0});
}

TEST(UringDisk, SubmitBeyondQueueDepthPlusBacklogSaysBusyAndLaterAcceptsAgain) {
  ScratchDirectory scratch;
  const std::string path = scratch.file("disk.img");
  create_file(path, 1 << 20);
  boost::asio::io_context io(1);
  auto disk = open_or_fail(io, path, UringDiskOptions{.queue_depth = 2, .backlog_limit = 3});
  ASSERT_NE(disk, nullptr);
  Recorder recorder;
  recorder.attach(*disk);
  AlignedBufferPool pool(1 << 20);
  auto buffer = pool.allocate(4096);
  fill_pattern(buffer, 0, 5);
  for (std::uint64_t cookie = 0; cookie < 5; cookie++) {
    ASSERT_TRUE(disk->submit_write(cookie, cookie * 4096, buffer, false).ok()) << cookie;
  }
  Status busy = disk->submit_write(5, 5 * 4096, buffer, false);
  ASSERT_FALSE(busy.ok());
  EXPECT_NE(busy.error().message.find("busy"), std::string::npos);
  EXPECT_EQ(disk->in_flight(), 5U);
  ASSERT_TRUE(run_until(io, [&] { return recorder.results.size() == 5; }));
  for (const auto& [cookie, result] : recorder.results) EXPECT_EQ(result, 0) << cookie;
  ASSERT_TRUE(disk->submit_write(5, 5 * 4096, buffer, false).ok());
  ASSERT_TRUE(run_until(io, [&] { return recorder.results.size() == 6; }));
  for (std::uint64_t block = 0; block < 6; block++) {
    EXPECT_TRUE(matches_pattern(read_with_pread(path, block * 4096, 4096), 0, 5)) << block;
  }
  pool.release(buffer);
}

// Shutdown and destruction with operations in the kernel, in the backlog and with a flush
// posted but not yet run: no crash, no completion afterwards (ASan checks the buffers).
TEST(UringDisk, ShutdownWithIoInFlightDrainsAndDeliversNoFurtherCompletions) {
  ScratchDirectory scratch;
  const std::string path = scratch.file("disk.img");
  create_file(path, 8 << 20);
  for (int variant = 0; variant < 3; variant++) {
    boost::asio::io_context io(1);
    auto disk = open_or_fail(io, path, UringDiskOptions{.queue_depth = 16, .backlog_limit = 64});
    ASSERT_NE(disk, nullptr);
    std::size_t completions = 0;
    disk->set_completion_handler([&](std::uint64_t, int) { completions++; });
    auto pool = std::make_unique<AlignedBufferPool>(8 << 20);
    for (std::uint64_t cookie = 0; cookie < 64; cookie++) {
      auto buffer = pool->allocate(65536);
      fill_pattern(buffer, cookie * 65536, 1);
      ASSERT_TRUE(disk->submit_write(cookie, cookie * 65536, buffer, cookie % 8 == 0).ok());
    }
    if (variant == 1) io.run_one();  // the posted flush submits the first 16
    const std::size_t before = completions;
    if (variant == 2) {
      disk.reset();  // the destructor shuts down
    } else {
      disk->shutdown();
      EXPECT_EQ(disk->in_flight(), 0U);
      EXPECT_FALSE(disk->submit_flush(99).ok());
      disk->shutdown();  // idempotent
    }
    pool.reset();  // the kernel must not touch the buffers any more
    io.restart();
    io.run_for(50ms);  // aborted reaper and stale flush handlers must be harmless
    EXPECT_EQ(completions, before);
  }
}

TEST(UringDisk, ShutdownFromInsideACompletionHandlerStopsFurtherCompletions) {
  ScratchDirectory scratch;
  const std::string path = scratch.file("disk.img");
  create_file(path, 1 << 20);
  boost::asio::io_context io(1);
  auto disk = open_or_fail(io, path, UringDiskOptions{.queue_depth = 4});
  ASSERT_NE(disk, nullptr);
  AlignedBufferPool pool(1 << 20);
  auto buffer = pool.allocate(4096);
  std::size_t completions = 0;
  disk->set_completion_handler([&](std::uint64_t, int) {
    completions++;
    disk->shutdown();
  });
  for (std::uint64_t cookie = 0; cookie < 16; cookie++) {
    ASSERT_TRUE(disk->submit_read(cookie, cookie * 4096, buffer).ok());
  }
  ASSERT_TRUE(run_until(io, [&] { return completions > 0; }));
  io.run_for(50ms);
  EXPECT_EQ(completions, 1U);
  EXPECT_EQ(disk->in_flight(), 0U);
  pool.release(buffer);
}

TEST(AlignedBufferPool, HandsOutAlignedBuffersUntilExhaustedThenEmptySpans) {
  AlignedBufferPool pool(1 << 20);
  ASSERT_EQ(pool.slab().size(), 1U << 20);
  std::vector<std::span<std::uint8_t>> buffers;
  for (int index = 0; index < 256; index++) {
    auto buffer = pool.allocate(kPage);
    ASSERT_EQ(buffer.size(), kPage);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(buffer.data()) % kPage, 0U);
    buffers.push_back(buffer);
  }
  EXPECT_TRUE(pool.allocate(kPage).empty());
  EXPECT_EQ(pool.slab_free_bytes(), 0U);
  pool.release(buffers.back());
  buffers.pop_back();
  EXPECT_TRUE(pool.allocate(8192).empty()) << "one free page is not an 8 KiB block";
  auto again = pool.allocate(kPage);
  EXPECT_FALSE(again.empty());
  buffers.push_back(again);
  for (auto buffer : buffers) pool.release(buffer);
  // Every buddy merged back: the whole slab is one 1 MiB block again.
  EXPECT_EQ(pool.allocate(1 << 20).size(), 1U << 20);
}

TEST(AlignedBufferPool, SplitsBlocksWithoutOverlapAndUsesTheHeapOnlyAboveOneMebibyte) {
  AlignedBufferPool pool(4 << 20);
  std::vector<std::span<std::uint8_t>> buffers;
  const std::size_t sizes_bytes[] = {4096, 12288, 65536, 1 << 20, 8192, 131072, 20480};
  for (std::size_t size_bytes : sizes_bytes) {
    auto buffer = pool.allocate(size_bytes);
    ASSERT_EQ(buffer.size(), size_bytes);
    std::memset(buffer.data(), static_cast<int>(buffers.size() + 1), buffer.size());
    buffers.push_back(buffer);
  }
  for (std::size_t index = 0; index < buffers.size(); index++) {  // nothing overwritten
    EXPECT_TRUE(std::all_of(buffers[index].begin(), buffers[index].end(),
                            [&](std::uint8_t byte) { return byte == index + 1; }));
  }
  EXPECT_EQ(pool.fallback_buffers_live(), 0U);
  auto large = pool.allocate(3 << 20);
  EXPECT_EQ(large.size(), 3U << 20);
  EXPECT_EQ(pool.fallback_buffers_live(), 1U);
  EXPECT_TRUE(pool.allocate((32 << 20) + 1).empty());
  EXPECT_TRUE(pool.allocate(0).empty());
  pool.release(large);
  for (auto buffer : buffers) pool.release(buffer);
  EXPECT_EQ(pool.fallback_buffers_live(), 0U);
  EXPECT_EQ(pool.slab_free_bytes(), pool.slab().size());
}

// Field 16 of /sys/block/NAME/stat: flush requests the device completed.
std::uint64_t device_flush_count(const std::string& device) {
  const std::string name = device.substr(device.rfind('/') + 1);
  FILE* file = std::fopen(("/sys/block/" + name + "/stat").c_str(), "r");
  if (file == nullptr) return 0;
  std::uint64_t fields[17] = {};
  for (auto& field : fields) {
    if (std::fscanf(file, "%lu", &field) != 1) break;
  }
  std::fclose(file);
  return fields[15];
}

// The loop device is ours alone, so its flush counter shows exactly what the disk issued: a
// plain write no flush, a FUA write (RWF_DSYNC; loop has no native FUA) and a flush one each.
void expect_fua_and_flush_reach_the_device(boost::asio::io_context& io, UringDisk& disk,
                                           const std::string& device, std::uint64_t offset_bytes,
                                           std::span<std::uint8_t> buffer) {
  Recorder recorder;
  recorder.attach(disk);
  const auto step = [&](std::uint64_t cookie, const std::function<Status()>& submit) {
    const std::uint64_t before = device_flush_count(device);
    EXPECT_TRUE(submit().ok());
    EXPECT_TRUE(run_until(io, [&] { return recorder.results.count(cookie) == 1; }));
    EXPECT_EQ(recorder.results[cookie], 0);
    return device_flush_count(device) - before;
  };
  const auto plain = step(1, [&] { return disk.submit_write(1, offset_bytes, buffer, false); });
  const auto fua = step(2, [&] { return disk.submit_write(2, offset_bytes, buffer, true); });
  const auto flush = step(3, [&] { return disk.submit_flush(3); });
  EXPECT_EQ(plain, 0U);
  EXPECT_GE(fua, 1U);
  EXPECT_GE(flush, 1U);
}

// A loop device is a real block device: size from BLKGETSIZE64, alignment from statx.
TEST(UringDisk, LoopDeviceRoundTripsPatternsWhenLosetupIsAvailable) {
  ScratchDirectory scratch;
  const std::string backing = scratch.file("loop-backing.img");
  create_file(backing, 16 << 20);
  const std::string command = "losetup --find --show " + backing + " 2>/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char line[256] = {};
  const bool got_line = std::fgets(line, sizeof line, pipe) != nullptr;
  const int status = ::pclose(pipe);
  std::string device = got_line ? std::string(line) : std::string();
  while (!device.empty() && (device.back() == '\n' || device.back() == ' ')) device.pop_back();
  if (status != 0 || device.empty()) GTEST_SKIP() << "losetup does not work here";
  struct Detach {
    std::string device;
    ~Detach() { (void)std::system(("losetup -d " + device).c_str()); }
  } detach{device};
  boost::asio::io_context io(1);
  auto disk = open_or_fail(io, device, UringDiskOptions{.queue_depth = 32});
  ASSERT_NE(disk, nullptr);
  EXPECT_EQ(disk->size_bytes(), 16U << 20);
  EXPECT_EQ(disk->alignment_bytes(), 512U);  // the loop device's logical block size
  const std::vector<Extent> extents = shuffled_extents(64, 11);
  AlignedBufferPool pool(8 << 20);
  std::vector<std::span<std::uint8_t>> buffers(extents.size());
  Pipeline writes{*disk, extents.size(), 32, [&](std::size_t index) {
                    buffers[index] = pool.allocate(extents[index].size_bytes);
                    fill_pattern(buffers[index], extents[index].offset_bytes, 2);
                    return disk->submit_write(index, extents[index].offset_bytes,
                                              buffers[index], index % 4 == 0);
                  }};
  ASSERT_TRUE(writes.run(io));
  // Rewrites extent 0 with its own pattern, so the read-back below still holds.
  expect_fua_and_flush_reach_the_device(io, *disk, device, extents[0].offset_bytes, buffers[0]);
  for (auto& buffer : buffers) std::memset(buffer.data(), 0, buffer.size());
  Pipeline reads{*disk, extents.size(), 32, [&](std::size_t index) {
                   return disk->submit_read(index, extents[index].offset_bytes, buffers[index]);
                 }};
  ASSERT_TRUE(reads.run(io));
  for (std::size_t index = 0; index < extents.size(); index++) {
    EXPECT_EQ(writes.results[index], 0) << index;
    EXPECT_EQ(reads.results[index], 0) << index;
    EXPECT_TRUE(matches_pattern(buffers[index], extents[index].offset_bytes, 2)) << index;
    pool.release(buffers[index]);
  }
  disk.reset();
  // The backing file holds the data too (the loop device wrote through to it).
  EXPECT_TRUE(matches_pattern(read_with_pread(backing, extents[0].offset_bytes,
                                              extents[0].size_bytes),
                              extents[0].offset_bytes, 2));
}

}  // namespace
}  // namespace ditto::datapath
