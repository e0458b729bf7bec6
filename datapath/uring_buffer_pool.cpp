#include "datapath/uring_buffer_pool.h"

#include <bit>
#include <cstdlib>

#include "core/assert.h"

namespace ditto::datapath {

AlignedBufferPool::AlignedBufferPool(std::size_t slab_size_bytes) {
  free_head_.fill(kNoPage);
  std::size_t blocks = (slab_size_bytes + kLargestBlockBytes - 1) / kLargestBlockBytes;
  if (blocks == 0) blocks = 1;
  const std::size_t size_bytes = blocks * kLargestBlockBytes;
  slab_ = static_cast<std::uint8_t*>(std::aligned_alloc(kPageBytes, size_bytes));
  if (slab_ == nullptr) return;  // allocate() then serves only the fallback sizes
  slab_size_bytes_ = size_bytes;
  slab_free_bytes_ = size_bytes;
  const std::size_t pages = size_bytes / kPageBytes;
  DITTO_ASSERT(pages < kNoPage);
  page_state_.assign(pages, PageState::inside_block);
  page_order_.assign(pages, 0);
  next_free_.assign(pages, kNoPage);
  previous_free_.assign(pages, kNoPage);
  const std::uint32_t pages_per_block = kLargestBlockBytes / kPageBytes;
  // Push in reverse so the lowest addresses are handed out first.
  for (std::size_t block = blocks; block-- > 0;) {
    push_free(static_cast<std::uint32_t>(block * pages_per_block), kOrders - 1);
  }
  DITTO_ASSERT(free_head_[kOrders - 1] == 0);
}

AlignedBufferPool::~AlignedBufferPool() { std::free(slab_); }

std::span<std::uint8_t> AlignedBufferPool::allocate(std::size_t size_bytes) {
  if (size_bytes == 0 || size_bytes > kLargestFallbackBytes) return {};
  if (size_bytes > kLargestBlockBytes) {
    const std::size_t rounded_bytes = (size_bytes + kPageBytes - 1) / kPageBytes * kPageBytes;
    auto* data = static_cast<std::uint8_t*>(std::aligned_alloc(kPageBytes, rounded_bytes));
    if (data == nullptr) return {};
    fallback_buffers_live_++;
    return {data, size_bytes};
  }
  const std::size_t pages = (size_bytes + kPageBytes - 1) / kPageBytes;
  const auto order = static_cast<unsigned>(std::bit_width(std::bit_ceil(pages)) - 1);
  DITTO_ASSERT(order < kOrders);
  unsigned found = order;
  while (found < kOrders && free_head_[found] == kNoPage) found++;
  if (found == kOrders) return {};  // exhausted: the caller reports busy
  const std::uint32_t page = free_head_[found];
  remove_free(page, found);
  while (found > order) {  // split: keep the lower half, free the upper half
    found--;
    push_free(page + (1U << found), found);
  }
  page_state_[page] = PageState::allocated_head;
  page_order_[page] = static_cast<std::uint8_t>(order);
  slab_free_bytes_ -= kPageBytes << order;
  return {slab_ + std::size_t{page} * kPageBytes, size_bytes};
}

void AlignedBufferPool::release(std::span<std::uint8_t> buffer) {
  if (buffer.data() == nullptr) return;
  if (!contains(buffer.data())) {
    DITTO_ASSERT(fallback_buffers_live_ > 0);
    fallback_buffers_live_--;
    std::free(buffer.data());
    return;
  }
  const std::size_t offset_bytes = static_cast<std::size_t>(buffer.data() - slab_);
  DITTO_ASSERT(offset_bytes % kPageBytes == 0);
  auto page = static_cast<std::uint32_t>(offset_bytes / kPageBytes);
  DITTO_ASSERT(page_state_[page] == PageState::allocated_head);
  unsigned order = page_order_[page];
  page_state_[page] = PageState::inside_block;
  slab_free_bytes_ += kPageBytes << order;
  while (order + 1 < kOrders) {  // merge with the buddy while it is free and whole
    const std::uint32_t buddy = page ^ (1U << order);
    if (page_state_[buddy] != PageState::free_head || page_order_[buddy] != order) break;
    remove_free(buddy, order);
    page = page < buddy ? page : buddy;
    order++;
  }
  push_free(page, order);
}

void AlignedBufferPool::push_free(std::uint32_t page, unsigned order) {
  DITTO_ASSERT(order < kOrders);
  page_state_[page] = PageState::free_head;
  page_order_[page] = static_cast<std::uint8_t>(order);
  previous_free_[page] = kNoPage;
  next_free_[page] = free_head_[order];
  if (free_head_[order] != kNoPage) previous_free_[free_head_[order]] = page;
  free_head_[order] = page;
}

void AlignedBufferPool::remove_free(std::uint32_t page, unsigned order) {
  DITTO_ASSERT(page_state_[page] == PageState::free_head);
  DITTO_ASSERT(page_order_[page] == order);
  const std::uint32_t next = next_free_[page];
  const std::uint32_t previous = previous_free_[page];
  if (previous == kNoPage) {
    free_head_[order] = next;
  } else {
    next_free_[previous] = next;
  }
  if (next != kNoPage) previous_free_[next] = previous;
  page_state_[page] = PageState::inside_block;
}

bool AlignedBufferPool::contains(const std::uint8_t* data) const {
  const auto address = reinterpret_cast<std::uintptr_t>(data);
  const auto begin = reinterpret_cast<std::uintptr_t>(slab_);
  return slab_ != nullptr && address >= begin && address < begin + slab_size_bytes_;
}

}  // namespace ditto::datapath
