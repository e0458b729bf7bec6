// Shared fixture of the transport tests: several transports in one process on 127.0.0.1 with
// ephemeral ports, all on one io_context, plus raw sockets that play misbehaving peers.
#pragma once

#include "datapath/transport_tcp.h"

#include <gtest/gtest.h>

#include <array>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ditto::datapath {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

constexpr const char* resource = "r0";

wire::Hello make_hello(std::uint8_t sender, std::uint8_t receiver,
                       std::string resource_name = resource) {
  wire::Hello hello;
  hello.sender = NodeId{sender};
  hello.receiver = NodeId{receiver};
  hello.resource_name = std::move(resource_name);
  return hello;
}

[[maybe_unused]] wire::Data make_data(std::uint64_t sequence, std::size_t length_bytes) {
  wire::Data data;
  data.sequence = sequence;
  data.sector = Sector{sequence * 8};
  data.length_bytes = static_cast<std::uint32_t>(length_bytes);
  return data;
}

enum class EventKind { connected, disconnected, message };

struct Event {
  EventKind kind;
  NodeId peer;
  std::string reason;
  wire::Message message;
  std::vector<std::uint8_t> payload;
};

// Records every callback; like the daemon's core, it sends its Hello when a peer connects.
class RecordingHandler : public TransportHandler {
 public:
  explicit RecordingHandler(NodeId self) : self_(self) {}

  void on_peer_connected(NodeId peer) override {
    events.push_back(Event{EventKind::connected, peer, {}, {}, {}});
    if (transport != nullptr && send_hello_on_connect) {
      EXPECT_TRUE(transport->send(peer, make_hello(self_.value, peer.value)));
    }
  }
  void on_peer_disconnected(NodeId peer, std::string_view reason) override {
    events.push_back(Event{EventKind::disconnected, peer, std::string(reason), {}, {}});
  }
  void on_peer_message(NodeId peer, const wire::Message& message,
                       std::span<const std::uint8_t> payload) override {
    events.push_back(Event{EventKind::message,
                           peer,
                           {},
                           message,
                           std::vector<std::uint8_t>(payload.begin(), payload.end())});
    ++message_counts_[{peer.value, message.index()}];
  }

  int count(EventKind kind, std::uint8_t peer) const {
    int total = 0;
    for (const Event& event : events) total += event.kind == kind && event.peer.value == peer;
    return total;
  }
  std::vector<const Event*> messages_from(std::uint8_t peer) const {
    std::vector<const Event*> found;
    for (const Event& event : events) {
      if (event.kind == EventKind::message && event.peer.value == peer) found.push_back(&event);
    }
    return found;
  }
  template <typename T>
  std::vector<const Event*> messages_of_type(std::uint8_t peer) const {
    std::vector<const Event*> found;
    for (const Event* event : messages_from(peer)) {
      if (std::holds_alternative<T>(event->message)) found.push_back(event);
    }
    return found;
  }

  // How many messages of type T came from `peer`, in constant time: a run_until predicate runs
  // after every handler, and scanning `events` there is quadratic in a long exchange.
  template <typename T>
  std::size_t message_count(std::uint8_t peer) const {
    const auto found = message_counts_.find({peer, wire::Message{std::in_place_type<T>}.index()});
    return found == message_counts_.end() ? 0 : found->second;
  }

  TcpTransport* transport = nullptr;
  bool send_hello_on_connect = true;
  std::vector<Event> events;

 private:
  NodeId self_;
  std::map<std::pair<std::uint8_t, std::size_t>, std::size_t> message_counts_;
};

struct TestNode {
  std::unique_ptr<RecordingHandler> handler;
  std::unique_ptr<TcpTransport> transport;
};

TransportConfig make_config(std::uint8_t self, const std::vector<std::uint8_t>& peer_ids) {
  TransportConfig config;
  config.self = NodeId{self};
  config.resource_name = resource;
  config.listen_host = "127.0.0.1";
  config.reconnect_delay_min = Duration::from_ms(10);
  config.reconnect_delay_max = Duration::from_ms(80);
  for (std::uint8_t id : peer_ids) {
    config.peers.push_back(
        TransportPeer{NodeId{id}, "node" + std::to_string(id), "127.0.0.1", 0, {}});
  }
  return config;
}

class TransportTest : public ::testing::Test {
 protected:
  // Creates and starts one node per id (each configured with all the others), then tells every
  // dialer the ephemeral port of each higher-id peer.
  void start_cluster(const std::vector<std::uint8_t>& ids,
                     const std::function<void(TransportConfig&)>& adjust = {}) {
    for (std::uint8_t id : ids) {
      std::vector<std::uint8_t> peer_ids;
      for (std::uint8_t other : ids) {
        if (other != id) peer_ids.push_back(other);
      }
      TransportConfig config = make_config(id, peer_ids);
      if (adjust) adjust(config);
      TestNode& node = nodes_[id];
      node.handler = std::make_unique<RecordingHandler>(NodeId{id});
      node.transport = std::make_unique<TcpTransport>(io_, config, *node.handler);
      node.handler->transport = node.transport.get();
      const Status status = node.transport->start();
      ASSERT_TRUE(status.ok()) << status.error().message;
      ASSERT_NE(node.transport->listen_port(), 0);
    }
    for (std::uint8_t low : ids) {
      for (std::uint8_t high : ids) {
        if (low < high) transport(low).set_peer_port(NodeId{high}, transport(high).listen_port());
      }
    }
  }

  TcpTransport& transport(std::uint8_t id) { return *nodes_[id].transport; }
  RecordingHandler& handler(std::uint8_t id) { return *nodes_[id].handler; }

  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      if (io_.stopped()) io_.restart();
      io_.run_one_for(5ms);
    }
    return true;
  }
  void run_for(std::chrono::milliseconds duration) {
    run_until([] { return false; }, duration);
  }

  // Both sides connected and each has received the other's Hello.
  bool pair_ready(std::uint8_t a, std::uint8_t b) {
    return transport(a).is_connected(NodeId{b}) && transport(b).is_connected(NodeId{a}) &&
           !handler(a).messages_of_type<wire::Hello>(b).empty() &&
           !handler(b).messages_of_type<wire::Hello>(a).empty();
  }

  tcp::endpoint endpoint_of(std::uint8_t id) {
    return tcp::endpoint(asio::ip::make_address("127.0.0.1"), transport(id).listen_port());
  }

  // Runs the loop until `socket` reads end-of-file or an error (the transport closed it).
  bool run_until_closed(tcp::socket& socket) {
    bool closed = false;
    auto buffer = std::make_shared<std::array<std::uint8_t, 4096>>();
    std::function<void(const boost::system::error_code&, std::size_t)> on_read;
    on_read = [&](const boost::system::error_code& error, std::size_t) {
      if (error) {
        closed = true;
        return;
      }
      socket.async_read_some(asio::buffer(*buffer), on_read);
    };
    socket.async_read_some(asio::buffer(*buffer), on_read);
    const bool done = run_until([&] { return closed; });
    boost::system::error_code ignored;
    socket.close(ignored);
    run_for(10ms);  // let the aborted read (which refers to locals) complete
    return done;
  }

  asio::io_context io_;
  std::map<std::uint8_t, TestNode> nodes_;
};

}  // namespace
}  // namespace ditto::datapath
