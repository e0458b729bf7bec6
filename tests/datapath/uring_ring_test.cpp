// One io_uring ring shared by several disks (a dittod shard's ring): completions reach the disk
// that submitted them, and one disk can be detached while the others keep running.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "datapath/uring_buffer_pool.h"
#include "datapath/uring_disk.h"
#include "datapath/uring_ring.h"

namespace ditto::datapath {
namespace {

using namespace std::chrono_literals;
constexpr std::size_t kPage = 4096;
constexpr std::uint64_t kDiskBytes = 1 << 20;

// O_DIRECT needs a disk file system: /var/tmp (ext4 here), not /tmp (may be tmpfs).
class Scratch {
 public:
  Scratch() {
    char pattern[] = "/var/tmp/ditto-ring-test-XXXXXX";
    const char* made = ::mkdtemp(pattern);
    EXPECT_NE(made, nullptr);
    path_ = made == nullptr ? std::string() : std::string(made);
  }
  ~Scratch() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string disk(const std::string& name) const {
    const std::string path = path_ + "/" + name;
    const int descriptor = ::open(path.c_str(), O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
    EXPECT_GE(descriptor, 0);
    EXPECT_EQ(::ftruncate(descriptor, kDiskBytes), 0);
    ::close(descriptor);
    return path;
  }

 private:
  std::string path_;
};

bool run_until(boost::asio::io_context& io, const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (io.stopped()) io.restart();
    io.run_one_for(10ms);
  }
  return true;
}

std::uint8_t page_byte(std::size_t disk, std::size_t page) {
  return static_cast<std::uint8_t>(1 + disk * 31 + page);
}

std::unique_ptr<UringRing> make_ring(boost::asio::io_context& io, unsigned fixed_files) {
  auto ring = UringRing::create(io, "test ring",
                                UringRingOptions{.queue_depth = 16, .backlog_limit = 512,
                                                 .fixed_files_max = fixed_files});
  EXPECT_TRUE(ring.ok()) << (ring.ok() ? "" : ring.error().message);
  return ring.ok() ? std::move(ring).value() : nullptr;
}

std::unique_ptr<UringDisk> attach(UringRing& ring, const std::string& path) {
  auto disk = UringDisk::open(ring, path);
  EXPECT_TRUE(disk.ok()) << (disk.ok() ? "" : disk.error().message);
  return disk.ok() ? std::move(disk).value() : nullptr;
}

// Writes `pages` pages, each filled with page_byte(disk, page), to every disk at once.
struct Writer {
  Writer(AlignedBufferPool& pool, std::size_t disk_count, std::size_t pages)
      : completions(disk_count) {
    for (std::size_t disk = 0; disk < disk_count; ++disk) {
      for (std::size_t page = 0; page < pages; ++page) {
        std::span<std::uint8_t> buffer = pool.allocate(kPage);
        std::memset(buffer.data(), page_byte(disk, page), kPage);
        buffers.push_back(buffer);
      }
    }
  }
  void submit(std::size_t disk_index, UringDisk& disk, std::size_t pages) {
    disk.set_completion_handler([this, disk_index](std::uint64_t cookie, int result) {
      completions[disk_index][cookie] = result;
    });
    for (std::size_t page = 0; page < pages; ++page) {
      const Status status =
          disk.submit_write(page, page * kPage, buffers[disk_index * pages + page], false);
      ASSERT_TRUE(status.ok()) << status.error().message;
    }
  }
  std::vector<std::span<std::uint8_t>> buffers;
  std::vector<std::map<std::uint64_t, int>> completions;  // per disk: cookie → result
};

bool file_has_pages(const std::string& path, std::size_t disk, std::size_t pages) {
  const int descriptor = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  std::vector<std::uint8_t> page_data(kPage);
  bool good = descriptor >= 0;
  for (std::size_t page = 0; good && page < pages; ++page) {
    good = ::pread(descriptor, page_data.data(), kPage, static_cast<off_t>(page * kPage)) ==
               static_cast<ssize_t>(kPage) &&
           std::all_of(page_data.begin(), page_data.end(),
                       [&](std::uint8_t byte) { return byte == page_byte(disk, page); });
  }
  if (descriptor >= 0) ::close(descriptor);
  return good;
}

TEST(UringRingShared, ThreeDisksOnOneRingEachGetExactlyTheirOwnCompletionsAndData) {
  Scratch scratch;
  boost::asio::io_context io;
  // Two registered-file slots: the third disk runs on a plain descriptor.
  auto ring = make_ring(io, 2);
  ASSERT_NE(ring, nullptr);
  std::vector<std::string> paths;
  std::vector<std::unique_ptr<UringDisk>> disks;
  for (int index = 0; index < 3; ++index) {
    paths.push_back(scratch.disk("disk" + std::to_string(index) + ".img"));
    disks.push_back(attach(*ring, paths.back()));
    ASSERT_NE(disks.back(), nullptr);
  }
  EXPECT_EQ(ring->attached_files(), 3u);
  AlignedBufferPool pool(4 << 20);
  constexpr std::size_t pages = 100;  // 300 writes through a queue depth of 16: the backlog too
  Writer writer(pool, 3, pages);
  for (std::size_t index = 0; index < 3; ++index) writer.submit(index, *disks[index], pages);
  ASSERT_TRUE(run_until(io, [&] {
    return writer.completions[0].size() + writer.completions[1].size() +
               writer.completions[2].size() ==
           3 * pages;
  }));
  for (std::size_t index = 0; index < 3; ++index) {
    EXPECT_EQ(writer.completions[index].size(), pages) << "disk " << index;
    for (const auto& [cookie, result] : writer.completions[index]) EXPECT_EQ(result, 0);
    EXPECT_EQ(disks[index]->in_flight(), 0u);
    EXPECT_TRUE(file_has_pages(paths[index], index, pages)) << "disk " << index;
  }
  EXPECT_EQ(ring->in_flight(), 0u);
}

TEST(UringRingShared, DetachingOneDiskMidFlightLeavesTheOthersCompletingAndReusesItsSlot) {
  Scratch scratch;
  boost::asio::io_context io;
  auto ring = make_ring(io, 2);
  ASSERT_NE(ring, nullptr);
  const std::string first_path = scratch.disk("first.img");
  const std::string second_path = scratch.disk("second.img");
  auto first = attach(*ring, first_path);
  auto second = attach(*ring, second_path);
  ASSERT_TRUE(first && second);
  AlignedBufferPool pool(4 << 20);
  constexpr std::size_t pages = 120;
  Writer writer(pool, 2, pages);
  writer.submit(0, *first, pages);
  writer.submit(1, *second, pages);
  // Submit what is queued, then detach the first disk while both have writes in the kernel
  // and in the backlog.
  io.poll();
  first->shutdown();
  EXPECT_EQ(ring->attached_files(), 1u);
  // A new disk takes the freed slot; none of the first disk's completions may reach it.
  const std::string third_path = scratch.disk("third.img");
  auto third = attach(*ring, third_path);
  ASSERT_NE(third, nullptr);
  std::size_t third_completions = 0;
  third->set_completion_handler([&](std::uint64_t, int) { ++third_completions; });
  const std::size_t first_before = writer.completions[0].size();
  ASSERT_TRUE(run_until(io, [&] { return writer.completions[1].size() == pages; }));
  ASSERT_TRUE(run_until(io, [&] { return ring->in_flight() == 0; }));
  EXPECT_EQ(writer.completions[0].size(), first_before) << "no completion after detach";
  EXPECT_EQ(third_completions, 0u);
  for (const auto& [cookie, result] : writer.completions[1]) EXPECT_EQ(result, 0);
  EXPECT_TRUE(file_has_pages(second_path, 1, pages));
  // The ring still serves: a write on the new disk completes.
  std::span<std::uint8_t> buffer = pool.allocate(kPage);
  std::memset(buffer.data(), page_byte(2, 0), kPage);
  ASSERT_TRUE(third->submit_write(7, 0, buffer, true).ok());
  ASSERT_TRUE(run_until(io, [&] { return third_completions == 1; }));
  EXPECT_TRUE(file_has_pages(third_path, 2, 1));
}

}  // namespace
}  // namespace ditto::datapath

namespace ditto::datapath {
namespace {

// NBD requests parsed in one handler reach the disk with one io_uring_enter in that handler
// (UringRing::hold_submissions): no posted flush runs while the hold lasts, and the release
// submits at once, before any loop turn.
TEST(UringRingShared, AHeldSubmissionWaitsForTheReleaseAndTheReleaseSubmitsAtOnce) {
  Scratch scratch;
  boost::asio::io_context io;
  auto ring = make_ring(io, 1);
  ASSERT_NE(ring, nullptr);
  const std::string path = scratch.disk("held.img");
  auto disk = attach(*ring, path);
  ASSERT_NE(disk, nullptr);
  AlignedBufferPool pool(1 << 20);
  constexpr std::size_t pages = 4;
  Writer writer(pool, 1, pages);
  ring->hold_submissions();
  ring->hold_submissions();  // holds nest
  writer.submit(0, *disk, pages);
  EXPECT_TRUE(ring->submission_pending());
  io.run_for(50ms);  // no flush was posted: nothing runs, nothing is submitted
  EXPECT_TRUE(ring->submission_pending());
  EXPECT_TRUE(writer.completions[0].empty());
  ring->release_submissions();
  EXPECT_TRUE(ring->submission_pending()) << "an inner release submits nothing";
  ring->release_submissions();
  EXPECT_FALSE(ring->submission_pending()) << "the outer release submitted, with no loop turn";
  ASSERT_TRUE(run_until(io, [&] { return writer.completions[0].size() == pages; }));
  for (const auto& [cookie, result] : writer.completions[0]) EXPECT_EQ(result, 0);
  EXPECT_TRUE(file_has_pages(path, 0, pages));
  // Without a hold, a submission is flushed by the posted handler, one loop turn later.
  std::span<std::uint8_t> buffer = writer.buffers[0];
  ASSERT_TRUE(disk->submit_write(99, 0, buffer, false).ok());
  EXPECT_TRUE(ring->submission_pending());
  ASSERT_TRUE(run_until(io, [&] { return writer.completions[0].count(99) == 1; }));
}

}  // namespace
}  // namespace ditto::datapath
