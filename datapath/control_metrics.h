// Prometheus metrics of a running resource, named and labelled like drbd-reactor's prometheus
// plugin with enums=true (ecosystem.md §4.1), so its dashboards and the usual alert rules work:
// drbd_resource_*, drbd_connection_*, drbd_device_*, drbd_peerdevice_*. Served over HTTP
// (Boost.Beast) at GET /metrics on the daemon's io_context (dittod --metrics HOST:PORT).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio.hpp>

#include "core/result.h"
#include "datapath/daemon_resource.h"

namespace ditto::datapath {

// The Prometheus text exposition (format 0.0.4) of `runner`'s state.
std::string metrics_text(const ResourceRunner& runner);

class MetricsServer {
 public:
  MetricsServer(boost::asio::io_context& io, const ResourceRunner& runner);
  ~MetricsServer();
  [[nodiscard]] Status listen(const std::string& host, std::uint16_t port);
  void stop();
  std::uint16_t port() const { return port_; }

 private:
  void accept();

  boost::asio::io_context& io_;
  const ResourceRunner& runner_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  std::uint16_t port_ = 0;
};

}  // namespace ditto::datapath
