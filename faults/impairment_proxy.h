// The userspace impairment layer for real daemons: a TCP proxy per peer connection (the dialer
// connects to the proxy, the proxy to the acceptor) that delays, rate-limits, partitions (one
// direction or both) and resets what it forwards. Delays are drawn from the same seeded
// netem::LatencyModel the simulator uses. The kernel here has no sch_netem, and a proxy needs no
// privileges; what it cannot do is lose single segments (TCP would retransmit them anyway), so
// loss shows up as a connection reset.
//
// One Boost.Asio thread runs every proxy; the control methods may be called from any thread and
// return once the change is in effect.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "netem/latency.h"

namespace ditto::faults {

struct DirectionImpairment {
  bool blocked = false;  // stop forwarding (held bytes flow again when unblocked)
  std::optional<netem::LatencyModel> delay;
  std::uint32_t loss_percent = 0;  // per forwarded chunk: reset the connection instead
  std::uint64_t rate_bytes_per_second = 0;  // 0: unlimited
};

struct ProxyStatistics {
  std::uint64_t connections = 0;
  std::uint64_t resets = 0;  // connections the proxy reset (loss, reset_connections)
  std::uint64_t bytes[2] = {0, 0};  // forwarded: [0] dialer to acceptor, [1] back
};

class ImpairmentLayer {
 public:
  ImpairmentLayer();
  ~ImpairmentLayer();
  ImpairmentLayer(const ImpairmentLayer&) = delete;
  ImpairmentLayer& operator=(const ImpairmentLayer&) = delete;

  // A proxy listening on 127.0.0.1:listen_port that forwards to 127.0.0.1:upstream_port; its
  // delays and losses come from streams of `seed`. Returns its index.
  int add_proxy(std::uint16_t listen_port, std::uint16_t upstream_port, std::uint64_t seed);
  // direction 0: dialer to acceptor; 1: acceptor to dialer.
  void set(int proxy, int direction, const DirectionImpairment& impairment);
  // Resets (RST) every connection of the proxy now; new ones are accepted as before.
  void reset_connections(int proxy);
  ProxyStatistics statistics(int proxy);

  struct Proxy;  // internal

 private:
  template <class Function>
  void run_on_io(Function function);

  struct Io;
  std::unique_ptr<Io> io_;
  std::vector<std::shared_ptr<Proxy>> proxies_;
  std::thread thread_;
};

}  // namespace ditto::faults
