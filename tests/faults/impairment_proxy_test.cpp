// The userspace impairment proxy (faults/impairment_proxy.h) on loopback sockets, and the real
// target's block model (faults/real_client.h): what each impairment must do to the bytes, and
// what the acknowledged-writes oracle must accept and refuse.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "faults/impairment_proxy.h"
#include "faults/local_cluster.h"
#include "faults/real_client.h"

namespace ditto::faults {
namespace {

using Clock = std::chrono::steady_clock;

// A listening socket on a free loopback port.
struct Listener {
  Listener() : port(free_port()) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(::listen(fd, 4), 0);
  }
  ~Listener() { ::close(fd); }
  int fd = -1;
  std::uint16_t port = 0;
};

int dial(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  return fd;
}

// Bytes that arrive on `fd` within `timeout_ms` (-1: the connection was reset or closed).
int receive(int fd, std::string& into, int timeout_ms) {
  pollfd waiting{fd, POLLIN, 0};
  if (::poll(&waiting, 1, timeout_ms) <= 0) return 0;
  char chunk[256];
  const ssize_t got = ::read(fd, chunk, sizeof(chunk));
  if (got <= 0) return -1;
  into.append(chunk, static_cast<std::size_t>(got));
  return static_cast<int>(got);
}

struct ProxiedPair {
  ProxiedPair() {
    proxy = layer.add_proxy(proxy_port, upstream.port, 42);
    dialer = dial(proxy_port);
    acceptor = ::accept(upstream.fd, nullptr, nullptr);
  }
  ~ProxiedPair() {
    ::close(dialer);
    ::close(acceptor);
  }
  Listener upstream;
  std::uint16_t proxy_port = free_port();
  ImpairmentLayer layer;
  int proxy = 0;
  int dialer = -1;
  int acceptor = -1;
};

TEST(ImpairmentProxy, ForwardsBothDirectionsUntouchedWithoutImpairments) {
  ProxiedPair pair;
  std::string got;
  ASSERT_EQ(::write(pair.dialer, "ping", 4), 4);
  while (got.size() < 4 && receive(pair.acceptor, got, 2000) > 0) {}
  EXPECT_EQ(got, "ping");
  got.clear();
  ASSERT_EQ(::write(pair.acceptor, "pong", 4), 4);
  while (got.size() < 4 && receive(pair.dialer, got, 2000) > 0) {}
  EXPECT_EQ(got, "pong");
}

TEST(ImpairmentProxy, AOneWayPartitionHoldsOneDirectionAndReleasesItInOrderWhenHealed) {
  ProxiedPair pair;
  DirectionImpairment blocked;
  blocked.blocked = true;
  pair.layer.set(pair.proxy, 0, blocked);
  ASSERT_EQ(::write(pair.dialer, "abc", 3), 3);
  std::string got;
  EXPECT_EQ(receive(pair.acceptor, got, 300), 0) << "a blocked direction forwarded " << got;
  ASSERT_EQ(::write(pair.acceptor, "back", 4), 4);  // the other direction still flows
  std::string back;
  while (back.size() < 4 && receive(pair.dialer, back, 2000) > 0) {}
  EXPECT_EQ(back, "back");
  ASSERT_EQ(::write(pair.dialer, "def", 3), 3);
  pair.layer.set(pair.proxy, 0, DirectionImpairment{});
  while (got.size() < 6 && receive(pair.acceptor, got, 2000) > 0) {}
  EXPECT_EQ(got, "abcdef");
}

TEST(ImpairmentProxy, ADelayModelDelaysEveryChunkByAtLeastItsBase) {
  ProxiedPair pair;
  DirectionImpairment delayed;
  delayed.delay = netem::fixed(Duration::from_ms(150));
  pair.layer.set(pair.proxy, 1, delayed);
  const auto start = Clock::now();
  ASSERT_EQ(::write(pair.acceptor, "x", 1), 1);
  std::string got;
  ASSERT_GT(receive(pair.dialer, got, 3000), 0);
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  EXPECT_GE(waited.count(), 150);
  EXPECT_LT(waited.count(), 2000);
}

TEST(ImpairmentProxy, ARateLimitSpreadsBytesOverTime) {
  ProxiedPair pair;
  DirectionImpairment limited;
  limited.rate_bytes_per_second = 64 * 1024;
  pair.layer.set(pair.proxy, 0, limited);
  const std::string payload(32 * 1024, 'r');
  const auto start = Clock::now();
  ASSERT_EQ(::write(pair.dialer, payload.data(), payload.size()),
            static_cast<ssize_t>(payload.size()));
  std::string got;
  while (got.size() < payload.size() && receive(pair.acceptor, got, 3000) > 0) {}
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  EXPECT_EQ(got.size(), payload.size());
  EXPECT_GE(waited.count(), 400);  // 32 KiB at 64 KiB/s: half a second
}

TEST(ImpairmentProxy, ResettingConnectionsResetsBothSidesAndNewConnectionsStillPass) {
  ProxiedPair pair;
  std::string got;
  ASSERT_EQ(::write(pair.dialer, "up", 2), 2);  // the connection is through the proxy
  while (got.size() < 2 && receive(pair.acceptor, got, 2000) > 0) {}
  ASSERT_EQ(got, "up");
  got.clear();
  pair.layer.reset_connections(pair.proxy);
  EXPECT_EQ(receive(pair.dialer, got, 2000), -1);
  EXPECT_EQ(receive(pair.acceptor, got, 2000), -1);
  EXPECT_EQ(pair.layer.statistics(pair.proxy).resets, 1u);
  const int again = dial(pair.proxy_port);
  const int accepted = ::accept(pair.upstream.fd, nullptr, nullptr);
  ASSERT_EQ(::write(again, "new", 3), 3);
  got.clear();
  while (got.size() < 3 && receive(accepted, got, 2000) > 0) {}
  EXPECT_EQ(got, "new");
  ::close(again);
  ::close(accepted);
}

TEST(ImpairmentProxy, FullLossResetsTheConnectionOnTheFirstChunk) {
  ProxiedPair pair;
  DirectionImpairment lossy;
  lossy.loss_percent = 100;
  pair.layer.set(pair.proxy, 0, lossy);
  ASSERT_EQ(::write(pair.dialer, "lost", 4), 4);
  std::string got;
  EXPECT_EQ(receive(pair.acceptor, got, 2000), -1);
  EXPECT_TRUE(got.empty());
}

TEST(BlockModel, AcceptsTheLastAcknowledgedTagOrAFailedLaterOneAndRefusesStaleOrForeignBytes) {
  BlockModel model;
  model.acknowledged(5, 3);
  model.failed(5, 9);
  const std::vector<char> latest = block_bytes(3, 5);
  const std::vector<char> failed_later = block_bytes(9, 5);
  const std::vector<char> stale = block_bytes(1, 5);
  const std::vector<char> other_block = block_bytes(3, 6);
  EXPECT_EQ(model.judge(5, tag_of(latest.data(), 5)), "");
  EXPECT_EQ(model.judge(5, tag_of(failed_later.data(), 5)), "");
  EXPECT_EQ(model.judge(5, tag_of(stale.data(), 5)),
            "block 5 holds tag 1, the last acknowledged write there was tag 3");
  EXPECT_EQ(model.judge(5, tag_of(other_block.data(), 5)),
            "block 5 holds bytes no write wrote (expected tag 3)");
  const std::vector<char> zeros(block_size_bytes, 0);
  EXPECT_EQ(model.judge(7, tag_of(zeros.data(), 7)), "");  // never written
  EXPECT_NE(model.judge(5, tag_of(zeros.data(), 5)), "");  // an acknowledged write vanished
  model.acknowledged(5, 12);  // a later acknowledged write: the failed one may not show any more
  EXPECT_NE(model.judge(5, tag_of(failed_later.data(), 5)), "");
}

}  // namespace
}  // namespace ditto::faults
