#include "datapath/daemon_nbd.h"

#include "core/assert.h"

namespace ditto::datapath {

Result<std::uint64_t> DaemonExports::open_export(std::string_view name) {
  return Error{"export '" + std::string(name) + "' is not up on this daemon"};
}

void DaemonExports::submit(std::uint64_t, const NbdIo&, const NbdBuffer&,
                           std::function<void(std::uint32_t)>) {
  DITTO_ASSERT(false);  // open_export never succeeds here
}

DaemonNbdListener::DaemonNbdListener(boost::asio::io_context& io, ResourceRouter& router)
    : exports_(router) {
  NbdServerOptions options;
  // INFO is answered here for every export: 4096 bytes suit every O_DIRECT disk.
  options.block_size_minimum_bytes = 4096;
  options.payload_size_max_bytes = wire::payload_size_max_bytes;
  options.routes_export = [&router](const std::string& name) { return router.has(name); };
  options.hand_off = [&router](NbdHandOff hand_off) { router.hand_off_nbd(std::move(hand_off)); };
  server_ = std::make_unique<NbdServer>(io, exports_, options);
}

Status DaemonNbdListener::listen_tcp(const std::string& host, std::uint16_t port) {
  return server_->listen_tcp(host, port);
}

Status DaemonNbdListener::listen_unix(const std::string& path) {
  return server_->listen_unix(path);
}

}  // namespace ditto::datapath
