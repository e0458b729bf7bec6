// TcpTransport: several transports in one process on 127.0.0.1 with ephemeral ports, all on one
// io_context, plus raw sockets that play misbehaving (or impersonating) peers.
#include "transport_test_fixture.h"

namespace ditto::datapath {
namespace {


TEST_F(TransportTest, TwoNodesConnectAndEachHandlerSeesTheOtherAndItsHello) {
  start_cluster({1, 2});
  ASSERT_TRUE(run_until([&] { return pair_ready(1, 2); }));
  EXPECT_EQ(handler(1).count(EventKind::connected, 2), 1);
  EXPECT_EQ(handler(2).count(EventKind::connected, 1), 1);
  // The accepting side learns of the peer with its Hello, which follows on_peer_connected.
  ASSERT_GE(handler(2).events.size(), 2u);
  EXPECT_EQ(handler(2).events[0].kind, EventKind::connected);
  EXPECT_EQ(std::get<wire::Hello>(handler(2).events[1].message), make_hello(1, 2));
  EXPECT_EQ(std::get<wire::Hello>(handler(1).messages_from(2).at(0)->message), make_hello(2, 1));
  EXPECT_EQ(handler(1).count(EventKind::disconnected, 2), 0);
}

TEST_F(TransportTest, ADataMessageWithA4KiBPayloadArrivesIntact) {
  start_cluster({1, 2});
  ASSERT_TRUE(run_until([&] { return pair_ready(1, 2); }));
  std::vector<std::uint8_t> payload(4096);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<std::uint8_t>(i * 7);
  wire::Data data = make_data(42, payload.size());
  data.flags = wire::data_flag_fua;
  ASSERT_TRUE(transport(2).send(NodeId{1}, data, payload));
  ASSERT_TRUE(run_until([&] { return !handler(1).messages_of_type<wire::Data>(2).empty(); }));
  const Event& received = *handler(1).messages_of_type<wire::Data>(2).at(0);
  EXPECT_EQ(std::get<wire::Data>(received.message), data);
  EXPECT_EQ(received.payload, payload);
}

TEST_F(TransportTest, TenThousandMessagesArriveInTheOrderTheyWereSentInBothDirections) {
  start_cluster({1, 2});
  ASSERT_TRUE(run_until([&] { return pair_ready(1, 2); }));
  constexpr std::uint64_t count = 10'000;
  std::vector<std::uint8_t> payload(512);
  for (std::uint64_t i = 0; i < count; ++i) {
    std::memcpy(payload.data(), &i, sizeof i);
    ASSERT_TRUE(transport(1).send(NodeId{2}, make_data(i, payload.size()), payload));
    ASSERT_TRUE(transport(2).send(NodeId{1}, wire::WriteAck{i, true}));
  }
  ASSERT_TRUE(run_until([&] {
    return handler(2).message_count<wire::Data>(1) == count &&
           handler(1).message_count<wire::WriteAck>(2) == count;
  }));
  const auto data = handler(2).messages_of_type<wire::Data>(1);
  const auto acks = handler(1).messages_of_type<wire::WriteAck>(2);
  for (std::uint64_t i = 0; i < count; ++i) {
    ASSERT_EQ(std::get<wire::Data>(data[i]->message).sequence, i);
    std::uint64_t stamp = 0;
    std::memcpy(&stamp, data[i]->payload.data(), sizeof stamp);
    ASSERT_EQ(stamp, i);
    ASSERT_EQ(std::get<wire::WriteAck>(acks[i]->message).sequence, i);
  }
  // The sender's queue drains too (its last write completion may run after the delivery).
  EXPECT_TRUE(run_until([&] { return transport(1).send_queue_bytes(NodeId{2}) == 0; }));
}

TEST_F(TransportTest, AConnectionDroppedByTheDialerIsReestablishedByTheDialer) {
  start_cluster({1, 2});
  ASSERT_TRUE(run_until([&] { return pair_ready(1, 2); }));
  transport(1).disconnect(NodeId{2}, "test says so");
  EXPECT_FALSE(transport(1).is_connected(NodeId{2}));
  EXPECT_FALSE(transport(1).send(NodeId{2}, wire::FlushRequest{1}));
  // The notice is not delivered from inside disconnect().
  EXPECT_EQ(handler(1).count(EventKind::disconnected, 2), 0);
  ASSERT_TRUE(run_until([&] {
    return handler(1).count(EventKind::connected, 2) == 2 &&
           handler(2).count(EventKind::connected, 1) == 2 && pair_ready(1, 2);
  }));
  EXPECT_EQ(handler(1).count(EventKind::disconnected, 2), 1);
  EXPECT_EQ(handler(2).count(EventKind::disconnected, 1), 1);
  const auto disconnected =
      std::find_if(handler(1).events.begin(), handler(1).events.end(),
                   [](const Event& event) { return event.kind == EventKind::disconnected; });
  EXPECT_EQ(disconnected->reason, "test says so");
  ASSERT_TRUE(transport(1).send(NodeId{2}, wire::FlushRequest{7}));
  ASSERT_TRUE(
      run_until([&] { return !handler(2).messages_of_type<wire::FlushRequest>(1).empty(); }));
}

TEST_F(TransportTest, AConnectionDroppedByTheAcceptingSideIsReestablishedByTheDialer) {
  start_cluster({1, 2});
  ASSERT_TRUE(run_until([&] { return pair_ready(1, 2); }));
  transport(2).disconnect(NodeId{1}, "accepting side drops it");
  ASSERT_TRUE(run_until([&] {
    return handler(1).count(EventKind::connected, 2) == 2 &&
           handler(2).count(EventKind::connected, 1) == 2 && pair_ready(1, 2);
  }));
  EXPECT_EQ(handler(1).count(EventKind::disconnected, 2), 1);
  EXPECT_EQ(handler(2).count(EventKind::disconnected, 1), 1);
}

TEST_F(TransportTest, ThreeNodesFormAFullMeshWithOneConnectionPerPair) {
  start_cluster({0, 1, 2});
  ASSERT_TRUE(run_until([&] { return pair_ready(0, 1) && pair_ready(0, 2) && pair_ready(1, 2); }));
  for (std::uint8_t a : {0, 1, 2}) {
    for (std::uint8_t b : {0, 1, 2}) {
      if (a == b) continue;
      EXPECT_EQ(handler(a).count(EventKind::connected, b), 1) << +a << "-" << +b;
    }
  }
  ASSERT_TRUE(transport(2).send(NodeId{0}, wire::FlushAck{5, true}));
  ASSERT_TRUE(run_until([&] { return !handler(0).messages_of_type<wire::FlushAck>(2).empty(); }));
  EXPECT_TRUE(handler(1).messages_of_type<wire::FlushAck>(2).empty());
}

TEST_F(TransportTest, GarbageBytesFromAStrangerAreRefusedWhileThePeersStayConnected) {
  start_cluster({1, 2});
  ASSERT_TRUE(run_until([&] { return pair_ready(1, 2); }));
  const std::size_t events_before = handler(2).events.size();
  tcp::socket stranger(io_);
  stranger.connect(endpoint_of(2));
  const std::string garbage = "GET / HTTP/1.1\r\nHost: ditto\r\n\r\n";
  asio::write(stranger, asio::buffer(garbage));
  EXPECT_TRUE(run_until_closed(stranger));
  EXPECT_EQ(handler(2).events.size(), events_before);
  EXPECT_TRUE(pair_ready(1, 2));
  ASSERT_TRUE(transport(1).send(NodeId{2}, wire::FlushRequest{3}));
  ASSERT_TRUE(
      run_until([&] { return !handler(2).messages_of_type<wire::FlushRequest>(1).empty(); }));
  EXPECT_EQ(handler(2).count(EventKind::disconnected, 1), 0);
}

// Each of these first frames is refused and never reaches the handler of node 2.
TEST_F(TransportTest, AnUnacceptableFirstFrameIsRefusedAndNeverReachesTheHandler) {
  start_cluster({1, 2, 3});
  ASSERT_TRUE(run_until([&] { return pair_ready(1, 2) && pair_ready(2, 3); }));
  const std::vector<std::pair<std::string, std::vector<std::uint8_t>>> cases = {
      {"wrong resource name", wire::encode(make_hello(1, 2, "other"))},
      {"addressed to another node", wire::encode(make_hello(1, 3))},
      {"from an unconfigured node", wire::encode(make_hello(9, 2))},
      {"from the higher id, which must not dial", wire::encode(make_hello(3, 2))},
      {"not a Hello", wire::encode(wire::FlushRequest{1})},
  };
  const std::size_t events_before = handler(2).events.size();
  for (const auto& [name, frame] : cases) {
    tcp::socket stranger(io_);
    stranger.connect(endpoint_of(2));
    asio::write(stranger, asio::buffer(frame));
    EXPECT_TRUE(run_until_closed(stranger)) << name;
    EXPECT_EQ(handler(2).events.size(), events_before) << name;
  }
  EXPECT_TRUE(pair_ready(1, 2) && pair_ready(2, 3));
}

TEST_F(TransportTest, AHeaderAnnouncingMoreThanAHelloIsRefusedBeforeItsBodyArrives) {
  start_cluster({1, 2});
  const std::vector<std::uint8_t> payload(4096);
  const std::vector<std::uint8_t> frame = wire::encode(make_data(1, payload.size()), payload);
  tcp::socket stranger(io_);
  stranger.connect(endpoint_of(2));
  asio::write(stranger, asio::buffer(frame.data(), wire::header_size_bytes));
  EXPECT_TRUE(run_until_closed(stranger));
  EXPECT_EQ(handler(2).count(EventKind::connected, 1), handler(1).count(EventKind::connected, 2));
}

TEST_F(TransportTest, ASilentConnectionIsClosedAfterTheHelloTimeout) {
  start_cluster({1, 2},
                [](TransportConfig& config) { config.hello_timeout = Duration::from_ms(100); });
  tcp::socket stranger(io_);
  stranger.connect(endpoint_of(2));
  const auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(run_until_closed(stranger));
  EXPECT_GE(std::chrono::steady_clock::now() - started, 90ms);
}

TEST_F(TransportTest, ANewValidConnectionFromAPeerReplacesTheOldOne) {
  start_cluster({1, 2});
  ASSERT_TRUE(run_until([&] { return pair_ready(1, 2); }));
  handler(2).send_hello_on_connect = false;
  tcp::socket impostor(io_);  // plays node 1 after a restart
  impostor.connect(endpoint_of(2));
  asio::write(impostor, asio::buffer(wire::encode(make_hello(1, 2))));
  ASSERT_TRUE(run_until([&] { return handler(2).count(EventKind::connected, 1) == 2; }));
  const auto& events = handler(2).events;
  ASSERT_GE(events.size(), 3u);
  const std::size_t last = events.size() - 1;
  EXPECT_EQ(events[last - 2].kind, EventKind::disconnected);
  EXPECT_EQ(events[last - 1].kind, EventKind::connected);
  EXPECT_EQ(std::get<wire::Hello>(events[last].message), make_hello(1, 2));
  // Node 2 now talks to the new connection.
  ASSERT_TRUE(transport(2).send(NodeId{1}, wire::WriteAck{77, false}));
  std::vector<std::uint8_t> received(wire::encode(wire::WriteAck{77, false}).size());
  bool read_done = false;
  asio::async_read(impostor, asio::buffer(received),
                   [&](const boost::system::error_code& error, std::size_t) {
                     EXPECT_FALSE(error) << error.message();
                     read_done = true;
                   });
  ASSERT_TRUE(run_until([&] { return read_done; }));
  const wire::DecodeResult decoded = wire::decode(received);
  ASSERT_TRUE(std::holds_alternative<wire::Frame>(decoded));
  EXPECT_EQ(std::get<wire::WriteAck>(std::get<wire::Frame>(decoded).message).sequence, 77u);
}

TEST_F(TransportTest, GarbageAfterAValidHelloDisconnectsThePeerWithTheProtocolError) {
  start_cluster({1, 2});
  ASSERT_TRUE(run_until([&] { return pair_ready(1, 2); }));
  handler(2).send_hello_on_connect = false;
  tcp::socket impostor(io_);
  impostor.connect(endpoint_of(2));
  asio::write(impostor, asio::buffer(wire::encode(make_hello(1, 2))));
  ASSERT_TRUE(run_until([&] { return handler(2).count(EventKind::connected, 1) == 2; }));
  asio::write(impostor, asio::buffer(std::string(32, 'x')));
  ASSERT_TRUE(run_until([&] { return handler(2).count(EventKind::disconnected, 1) == 2; }));
  EXPECT_EQ(handler(2).events.back().reason,
            "protocol error: frame does not start with the ditto magic");
  // The real node 1 lost its (replaced) connection and dials again.
  handler(2).send_hello_on_connect = true;
  ASSERT_TRUE(run_until([&] { return handler(1).count(EventKind::connected, 2) == 2; }));
  ASSERT_TRUE(run_until([&] { return transport(2).is_connected(NodeId{1}); }));
}

TEST_F(TransportTest, ADialedPeerWhoseHelloNamesAnotherNodeIsDroppedAsAProtocolError) {
  start_cluster({1});
  // Node 1 is configured with peer 2, but whatever listens there claims to be node 3.
  tcp::acceptor fake(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  TestNode& node = nodes_[1];
  node.transport.reset();
  TransportConfig config = make_config(1, {2});
  node.transport = std::make_unique<TcpTransport>(io_, config, *node.handler);
  node.handler->transport = node.transport.get();
  ASSERT_TRUE(node.transport->start().ok());
  node.transport->set_peer_port(NodeId{2}, fake.local_endpoint().port());
  tcp::socket accepted = fake.accept();
  asio::write(accepted, asio::buffer(wire::encode(make_hello(3, 1))));
  ASSERT_TRUE(run_until([&] { return handler(1).count(EventKind::disconnected, 2) == 1; }));
  EXPECT_EQ(handler(1).events.back().reason,
            "protocol error: Hello comes from node 3, we dialed node 2");
  EXPECT_TRUE(handler(1).messages_from(2).empty());
  // The dialer tries again.
  bool accepted_again = false;
  fake.async_accept(
      [&](const boost::system::error_code& error, tcp::socket) { accepted_again = !error; });
  EXPECT_TRUE(run_until([&] { return accepted_again; }));
}

TEST_F(TransportTest, SendIsRefusedForAnUnconnectedPeerAndOverTheQueueLimit) {
  start_cluster({1, 2}, [](TransportConfig& config) { config.send_queue_bytes_max = 64 * 1024; });
  EXPECT_FALSE(transport(1).send(NodeId{2}, wire::FlushRequest{1}));
  EXPECT_FALSE(transport(1).send(NodeId{9}, wire::FlushRequest{1}));
  ASSERT_TRUE(run_until([&] { return pair_ready(1, 2); }));
  const std::vector<std::uint8_t> payload(4096);
  int accepted = 0;
  while (transport(1).send(NodeId{2}, make_data(accepted, payload.size()), payload)) ++accepted;
  EXPECT_GE(accepted, 10);
  EXPECT_LE(accepted, 16);
  EXPECT_LE(transport(1).send_queue_bytes(NodeId{2}), 64u * 1024);
  // Once the queue drains, sending works again and everything accepted arrived.
  ASSERT_TRUE(run_until([&] { return transport(1).send_queue_bytes(NodeId{2}) == 0; }));
  EXPECT_TRUE(transport(1).send(NodeId{2}, make_data(accepted, payload.size()), payload));
  ASSERT_TRUE(run_until([&] {
    const std::size_t expected = static_cast<std::size_t>(accepted) + 1;
    return handler(2).message_count<wire::Data>(1) == expected;
  }));
}

TEST_F(TransportTest, StopWithQueuedSendsReleasesEverythingAndMakesNoFurtherCallbacks) {
  start_cluster({1, 2});
  ASSERT_TRUE(run_until([&] { return pair_ready(1, 2); }));
  const std::vector<std::uint8_t> payload(4096, 0xab);
  for (std::uint64_t i = 0; i < 2000; ++i) {
    ASSERT_TRUE(transport(1).send(NodeId{2}, make_data(i, payload.size()), payload));
    ASSERT_TRUE(transport(2).send(NodeId{1}, make_data(i, payload.size()), payload));
  }
  for (int i = 0; i < 10; ++i) io_.poll_one();  // some writes and reads are now in flight
  EXPECT_GT(transport(1).send_queue_bytes(NodeId{2}), 0u);
  EXPECT_GT(transport(2).send_queue_bytes(NodeId{1}), 0u);
  transport(1).disconnect(NodeId{2}, "pending notice");
  const std::size_t events_1 = handler(1).events.size();
  const std::size_t events_2 = handler(2).events.size();
  transport(1).stop();
  transport(2).stop();
  transport(2).stop();  // idempotent
  EXPECT_FALSE(transport(1).is_connected(NodeId{2}));
  run_for(50ms);
  EXPECT_EQ(handler(1).events.size(), events_1);
  EXPECT_EQ(handler(2).events.size(), events_2);
  // Destroying the transports with completions still queued must not touch freed memory.
  for (auto& [id, node] : nodes_) node.transport.reset();
  run_for(20ms);
}

TEST_F(TransportTest, StartRejectsAnInvalidConfiguration) {
  RecordingHandler handler_1(NodeId{1});
  TransportConfig bad_address = make_config(1, {2});
  bad_address.peers[0].host = "not-an-address";
  TcpTransport first(io_, bad_address, handler_1);
  const Status status = first.start();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find("not an IP address"), std::string::npos);

  TransportConfig duplicate = make_config(1, {2, 2});
  TcpTransport second(io_, duplicate, handler_1);
  EXPECT_FALSE(second.start().ok());

  TransportConfig self_as_peer = make_config(1, {1});
  TcpTransport third(io_, self_as_peer, handler_1);
  EXPECT_FALSE(third.start().ok());
}

}  // namespace
}  // namespace ditto::datapath
