// NbdServer: listeners and the set of live connections. See nbd_server.h.
#include "datapath/nbd_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <vector>

#include "core/assert.h"
#include "datapath/nbd_connection.h"

namespace ditto::datapath {

namespace asio = boost::asio;
using GenericEndpoint = asio::generic::stream_protocol::endpoint;

NbdServer::NbdServer(asio::io_context& io_context, NbdBackend& backend, NbdServerOptions options)
    : io_context_(io_context), backend_(backend), options_(options) {
  DITTO_ASSERT(options_.requests_in_flight_max > 0);
  DITTO_ASSERT(options_.write_skip_max_bytes >= options_.payload_size_max_bytes);
}

NbdServer::~NbdServer() {
  stop();
  for (const auto& connection : connections_) connection->detach_server();
}

Status NbdServer::listen(const GenericEndpoint& endpoint, std::string_view what) {
  auto acceptor = std::make_unique<Acceptor>(io_context_);
  boost::system::error_code error;
  acceptor->open(endpoint.protocol(), error);
  if (!error) acceptor->set_option(asio::socket_base::reuse_address(true), error);
  if (!error) acceptor->bind(endpoint, error);
  if (!error) acceptor->listen(asio::socket_base::max_listen_connections, error);
  if (error) return Error{"nbd: cannot listen on " + std::string(what) + ": " + error.message()};
  accept(*acceptor);
  acceptors_.push_back(std::move(acceptor));
  return Status::success();
}

Status NbdServer::listen_tcp(std::string address, std::uint16_t port) {
  if (stopped_) return Error{"nbd: server is stopped"};
  boost::system::error_code error;
  const asio::ip::address ip = asio::ip::make_address(address, error);
  if (error) return Error{"nbd: bad listen address '" + address + "': " + error.message()};
  const asio::ip::tcp::endpoint endpoint(ip, port);
  Status status = listen(GenericEndpoint(endpoint), address + ":" + std::to_string(port));
  if (!status.ok()) return status;
  const GenericEndpoint bound = acceptors_.back()->local_endpoint(error);
  if (error) return Error{"nbd: getsockname failed: " + error.message()};
  const sockaddr* address_raw = bound.data();
  // sockaddr_in and sockaddr_in6 keep the port at the same offset, in network order.
  const auto* port_raw =
      reinterpret_cast<const std::uint8_t*>(address_raw) + offsetof(sockaddr_in, sin_port);
  tcp_port_ = static_cast<std::uint16_t>((port_raw[0] << 8) | port_raw[1]);
  return Status::success();
}

Status NbdServer::listen_unix(std::string path) {
  if (stopped_) return Error{"nbd: server is stopped"};
  struct stat info {};
  if (::lstat(path.c_str(), &info) == 0) {
    // A stale socket from an earlier run is replaced; anything else is left alone.
    if (!S_ISSOCK(info.st_mode)) return Error{"nbd: " + path + " exists and is not a socket"};
    ::unlink(path.c_str());
  }
  Status status = listen(GenericEndpoint(asio::local::stream_protocol::endpoint(path)), path);
  if (status.ok()) unix_path_ = path;
  return status;
}

std::uint16_t NbdServer::tcp_port() const {
  return tcp_port_;
}

void NbdServer::accept(Acceptor& acceptor) {
  acceptor.async_accept([this, &acceptor](const boost::system::error_code& error,
                                          nbd_detail::Connection::Socket socket) {
    if (error == asio::error::operation_aborted || stopped_) return;
    if (!error) {
      const std::uint64_t connection_number = ++connections_accepted_;
      if (connections_.size() >= options_.connections_max) {
        std::fprintf(stderr, "nbd: refusing connection %llu: %zu connections open\n",
                     static_cast<unsigned long long>(connection_number), connections_.size());
      } else {
        boost::system::error_code ignored;
        if (acceptor.local_endpoint(ignored).protocol().family() != AF_UNIX) {
          socket.set_option(asio::ip::tcp::no_delay(true), ignored);
        }
        auto connection =
            std::make_shared<nbd_detail::Connection>(*this, std::move(socket), connection_number);
        connections_.insert(connection);
        connection->start();
      }
    } else {
      std::fprintf(stderr, "nbd: accept failed: %s\n", error.message().c_str());
    }
    accept(acceptor);
  });
}

void NbdServer::adopt(NbdHandOff hand_off) {
  DITTO_ASSERT(hand_off.descriptor >= 0);
  if (stopped_) {
    ::close(hand_off.descriptor);
    return;
  }
  boost::system::error_code error;
  nbd_detail::Connection::Socket socket(io_context_);
  socket.assign(asio::generic::stream_protocol(hand_off.family, hand_off.protocol),
                hand_off.descriptor, error);
  if (error) {
    std::fprintf(stderr, "nbd: cannot adopt a handed-off connection: %s\n",
                 error.message().c_str());
    ::close(hand_off.descriptor);
    return;
  }
  auto connection = std::make_shared<nbd_detail::Connection>(*this, std::move(socket),
                                                             ++connections_accepted_);
  connections_.insert(connection);
  connection->resume(std::move(hand_off));
}

void NbdServer::forget(nbd_detail::Connection* connection) {
  for (auto it = connections_.begin(); it != connections_.end(); ++it) {
    if (it->get() == connection) {
      connections_.erase(it);
      return;
    }
  }
}

void NbdServer::stop() {
  if (!stopped_) {
    stopped_ = true;
    boost::system::error_code ignored;
    for (const auto& acceptor : acceptors_) acceptor->close(ignored);
    if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
  }
  // Copy first: shutting a connection down may remove it from the set.
  const std::vector<std::shared_ptr<nbd_detail::Connection>> open(connections_.begin(),
                                                                  connections_.end());
  for (const auto& connection : open) connection->shut_down();
}

}  // namespace ditto::datapath
