// Aligned I/O buffers for the io_uring disk: one pre-allocated slab per shard, carved by a buddy
// allocator into power-of-two blocks of 4 KiB ... 1 MiB, so the I/O path allocates nothing from
// the heap. One thread owns a pool (shard-per-core, no locks).
//
// The slab is one contiguous region, so it can be registered with the ring as a single fixed
// buffer (UringDisk::register_buffers(pool.slab())); io-uring-asio.md §2: fixed buffers save
// about 0.4 µs of CPU per I/O.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace ditto::datapath {

class AlignedBufferPool {
 public:
  static constexpr std::size_t kPageBytes = 4096;                 // smallest block, alignment
  static constexpr std::size_t kLargestBlockBytes = 1 << 20;      // largest block in the slab
  static constexpr std::size_t kLargestFallbackBytes = 32 << 20;  // largest heap fallback

  // Allocates the slab: slab_size_bytes rounded up to a multiple of kLargestBlockBytes (at least
  // one block). If the allocation fails the slab is empty and allocate() only uses the fallback.
  explicit AlignedBufferPool(std::size_t slab_size_bytes);
  ~AlignedBufferPool();
  AlignedBufferPool(const AlignedBufferPool&) = delete;
  AlignedBufferPool& operator=(const AlignedBufferPool&) = delete;

  // A kPageBytes-aligned buffer of exactly size_bytes (its block is the next power of two of
  // pages). Requests above kLargestBlockBytes and up to kLargestFallbackBytes come from
  // aligned_alloc (not in the slab, so not a fixed buffer). An empty span means "busy": the slab
  // has no free block of that size, or the size is 0 or above kLargestFallbackBytes.
  std::span<std::uint8_t> allocate(std::size_t size_bytes);

  // Returns a buffer obtained from allocate() (the same data pointer). Releasing anything else
  // is a bug and asserts.
  void release(std::span<std::uint8_t> buffer);

  // The whole slab (for ring registration); empty if its allocation failed.
  std::span<std::uint8_t> slab() const { return {slab_, slab_size_bytes_}; }
  std::size_t slab_free_bytes() const { return slab_free_bytes_; }
  std::size_t fallback_buffers_live() const { return fallback_buffers_live_; }

 private:
  static constexpr unsigned kOrders = 9;  // 4 KiB << 0 ... 4 KiB << 8 = 1 MiB
  static constexpr std::uint32_t kNoPage = 0xffffffffU;
  enum class PageState : std::uint8_t { inside_block, free_head, allocated_head };

  void push_free(std::uint32_t page, unsigned order);
  void remove_free(std::uint32_t page, unsigned order);
  bool contains(const std::uint8_t* data) const;

  std::uint8_t* slab_ = nullptr;
  std::size_t slab_size_bytes_ = 0;
  std::size_t slab_free_bytes_ = 0;
  std::size_t fallback_buffers_live_ = 0;
  // Per 4 KiB page of the slab; meaningful for the first page of a block only.
  std::vector<PageState> page_state_;
  std::vector<std::uint8_t> page_order_;
  std::vector<std::uint32_t> next_free_;  // intrusive doubly-linked free lists, one per order
  std::vector<std::uint32_t> previous_free_;
  std::array<std::uint32_t, kOrders> free_head_{};
};

}  // namespace ditto::datapath
