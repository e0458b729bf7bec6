// Robustness against hostile peers: random bytes and mutated valid frames go through
// wire::decode and then Node::on_message; nothing may crash, trip an assertion or leak (the
// unit tests run under ASan and UBSan). Whatever decodes is delivered to a Secondary and to a
// Primary in the middle of replication; a connection dropped by a protocol error is re-made.
#include <gtest/gtest.h>

#include "core/bytes.h"
#include "core/crc32c.h"
#include "core/node.h"
#include "core/prng.h"
#include "tests/core/node_harness.h"

namespace ditto::core {
namespace {

using harness::Cluster;
using harness::node_id;

std::vector<wire::Message> valid_messages(Prng& prng) {
  const auto id = [&] { return prng.below(8); };
  const auto node = [&] { return NodeId{static_cast<std::uint8_t>(prng.below(3))}; };
  return {
      wire::Hello{1, 1, node(), node(), 0, "r0", {}},
      wire::StateReport{prng.chance(1, 2) ? Role::primary : Role::secondary,
                        static_cast<DiskState>(prng.below(10)), prng.below(100)},
      wire::Data{id(), Sector{prng.below(2048)}, 4096,
                 static_cast<std::uint32_t>(prng.below(2)) * wire::data_flag_send_write_ack},
      wire::WriteAck{id(), prng.chance(1, 2)},
      wire::RecvAck{id()},
      wire::FlushRequest{id()},
      wire::FlushAck{id(), true},
      wire::Barrier{static_cast<std::uint32_t>(id())},
      wire::BarrierAck{static_cast<std::uint32_t>(id()), static_cast<std::uint32_t>(id())},
      wire::TwoPcPrepare{node(), id(), wire::TwoPcChange::promote, 0, 0, NodeId{}},
      wire::TwoPcReply{node(), id(), static_cast<wire::TwoPcVote>(prng.below(3)),
                       static_cast<std::int8_t>(prng.below(256)), id()},
      wire::TwoPcCommit{node(), id(), 0},
      wire::TwoPcAbort{node(), id()},
  };
}

// Flips a few bytes of the body, then (usually) fixes the CRC so the mutation gets past the
// frame check into the message parsers.
std::vector<std::uint8_t> mutate(std::vector<std::uint8_t> frame, Prng& prng) {
  const std::size_t flips = 1 + prng.below(3);
  for (std::size_t i = 0; i < flips; ++i) {
    const std::size_t at = prng.below(frame.size());
    if (at >= 12 && at < wire::header_size_bytes) continue;  // the CRC itself
    frame[at] = static_cast<std::uint8_t>(prng.next_u64());
  }
  if (prng.chance(1, 4)) frame.resize(prng.below(frame.size() + 1));
  if (frame.size() >= wire::header_size_bytes && prng.chance(9, 10)) {
    const std::span<std::uint8_t> bytes(frame);
    std::uint32_t crc = crc32c_extend(0, bytes.subspan(0, 12));
    crc = crc32c_extend(crc, bytes.subspan(wire::header_size_bytes));
    ByteWriter writer(bytes.subspan(12, 4));
    writer.u32(crc);
  }
  return frame;
}

// Delivers a decoded frame to `target` as if it came from `from`; re-connects if dropped.
void deliver(Cluster& cluster, int target, int from, const wire::Frame& frame) {
  const bool is_data = std::holds_alternative<wire::Data>(frame.message);
  PayloadHandle handle{is_data ? 1000u : 0u};
  cluster.nodes[target].on_message(cluster.now, node_id(from), frame.message, handle);
  cluster.collect_all();
  cluster.nodes[target].invariants();
  if (cluster.nodes[target].peer(node_id(from))->connection != ConnectionState::connected) {
    cluster.disconnect(target, from);
    cluster.connect(target, from);
  }
}

TEST(Robustness, RandomBytesAndMutatedFramesNeverCrashDecodeOrTheNode) {
  Prng prng(20240601);
  Cluster cluster(3);
  cluster.connect_all();
  cluster.promote(0);
  int decoded = 0;
  for (int iteration = 0; iteration < 10'000; ++iteration) {
    std::vector<std::uint8_t> bytes;
    if (iteration % 4 == 0) {
      bytes.resize(prng.below(64));
      for (std::uint8_t& byte : bytes) byte = static_cast<std::uint8_t>(prng.next_u64());
    } else {
      const auto messages = valid_messages(prng);
      const wire::Message& message = messages[prng.below(messages.size())];
      std::vector<std::uint8_t> payload;
      if (std::holds_alternative<wire::Data>(message)) payload.assign(4096, 0x5a);
      bytes = wire::encode(message, payload);
      if (iteration % 4 != 3) bytes = mutate(std::move(bytes), prng);
    }
    const wire::DecodeResult result = wire::decode(bytes);
    const auto* frame = std::get_if<wire::Frame>(&result);
    if (frame == nullptr) continue;
    decoded += 1;
    // Alternate between the Primary and a Secondary as the target, from another node.
    const int target = static_cast<int>(prng.below(3));
    const int from = (target + 1 + static_cast<int>(prng.below(2))) % 3;
    deliver(cluster, target, from, *frame);
    if (iteration % 16 == 0) {
      cluster.write(0, 100'000 + static_cast<std::uint64_t>(iteration), prng.below(2000), 1);
    }
    if (iteration % 64 == 0) cluster.drain();
  }
  cluster.settle();
  EXPECT_GT(decoded, 2000);  // the mutations reach the parsers and the node, not only the CRC
  for (const Node& node : cluster.nodes) node.invariants();
}

}  // namespace
}  // namespace ditto::core
