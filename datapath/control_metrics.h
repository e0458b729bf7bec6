// Prometheus metrics of a running resource, named and labelled like drbd-reactor's prometheus
// plugin with enums=true (ecosystem.md §4.1), so its dashboards and the usual alert rules work:
// drbd_resource_*, drbd_connection_*, drbd_device_*, drbd_peerdevice_*. Served over HTTP
// (Boost.Beast) at GET /metrics on the daemon's io_context (dittod --metrics HOST:PORT): one
// endpoint for every resource of the daemon, each series labelled with its resource.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio.hpp>

#include "core/result.h"
#include "datapath/daemon_resource.h"

namespace ditto::datapath {

// The Prometheus text exposition (format 0.0.4) of `runner`'s state.
std::string metrics_text(const ResourceRunner& runner);

// One exposition of several: each metric family's HELP and TYPE once, then the samples every
// text has for it, families in order of first appearance (the format allows a family once). A
// series without labels (drbd_resource_resources) is one per daemon: its values are summed.
std::string merge_metrics_texts(const std::vector<std::string>& texts);

class MetricsServer {
 public:
  // Serves what `render` returns, called on `io`'s thread for each scrape.
  MetricsServer(boost::asio::io_context& io, std::function<std::string()> render);
  MetricsServer(boost::asio::io_context& io, const ResourceRunner& runner);
  ~MetricsServer();
  [[nodiscard]] Status listen(const std::string& host, std::uint16_t port);
  void stop();
  std::uint16_t port() const { return port_; }

 private:
  void accept();

  boost::asio::io_context& io_;
  std::function<std::string()> render_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  std::uint16_t port_ = 0;
};

}  // namespace ditto::datapath
