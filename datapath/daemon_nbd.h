// One NBD listener for every resource of a daemon (dittod --nbd HOST:PORT or an --nbd-socket
// without %r, on a daemon with several resources). The listener runs on the main thread: LIST
// and INFO are answered there from every resource's export; OPT_GO / EXPORT_NAME hands the
// connection (socket and unprocessed bytes) to the shard that owns the chosen resource, where its
// NBD server continues the negotiation and serves the I/O — a request never crosses threads.
// An unknown export name gets NBD_REP_ERR_UNKNOWN from the listener.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <boost/asio.hpp>

#include "datapath/daemon_router.h"
#include "datapath/nbd_server.h"

namespace ditto::datapath {

// The listener's backend: a directory of the router's resources; it never opens an export
// (every choice is handed off), so an export that went down meanwhile gets a clear refusal.
class DaemonExports final : public NbdBackend {
 public:
  explicit DaemonExports(ResourceRouter& router) : router_(router) {}
  std::vector<NbdExportInfo> list_exports() override { return router_.nbd_exports(); }
  Result<std::uint64_t> open_export(std::string_view name) override;
  void close_export(std::uint64_t) override {}
  NbdBuffer allocate_buffer(std::size_t) override { return {}; }
  void release_buffer(const NbdBuffer&) override {}
  void submit(std::uint64_t session, const NbdIo& io, const NbdBuffer& buffer,
              std::function<void(std::uint32_t nbd_error)> done) override;

 private:
  ResourceRouter& router_;
};

// The listener and its backend, on `io` (the main thread's).
class DaemonNbdListener {
 public:
  DaemonNbdListener(boost::asio::io_context& io, ResourceRouter& router);
  [[nodiscard]] Status listen_tcp(const std::string& host, std::uint16_t port);
  [[nodiscard]] Status listen_unix(const std::string& path);
  std::uint16_t tcp_port() const { return server_->tcp_port(); }
  void stop() { server_->stop(); }

 private:
  DaemonExports exports_;
  std::unique_ptr<NbdServer> server_;
};

}  // namespace ditto::datapath
