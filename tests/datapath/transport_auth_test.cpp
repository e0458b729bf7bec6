// Transport authentication (cram-hmac-alg + shared-secret), keepalive and multi-path failover:
// real transports on 127.0.0.1, plus raw sockets that play impostors, replayers and dead peers.
#include "datapath/transport_auth.h"

#include "transport_test_fixture.h"

namespace ditto::datapath {
namespace {

std::vector<std::uint8_t> bytes_of(std::string_view text) {
  return {text.begin(), text.end()};
}

void use_secret(TransportConfig& config, const std::string& secret) {
  config.cram_hmac_algorithm = "sha256";
  config.shared_secret = secret;
}

class AuthTest : public TransportTest {
 protected:
  AuthKey key(const std::string& secret) {
    auto created = AuthKey::create("sha256", secret);
    EXPECT_TRUE(created.ok());
    return std::move(created).value();
  }

  // Reads from `socket` (running the loop) until `count` whole frames arrived or it closed.
  std::vector<wire::Message> receive_frames(tcp::socket& socket, std::size_t count) {
    std::vector<wire::Message> frames;
    bool closed = false;
    while (frames.size() < count && !closed) {
      const wire::DecodeResult result = wire::decode(pending_);
      if (const auto* frame = std::get_if<wire::Frame>(&result)) {
        frames.push_back(frame->message);
        pending_.erase(pending_.begin(),
                       pending_.begin() + static_cast<std::ptrdiff_t>(frame->frame_size_bytes));
        continue;
      }
      if (std::holds_alternative<wire::WireError>(result)) break;
      std::array<std::uint8_t, 4096> chunk{};
      bool done = false;
      socket.async_read_some(asio::buffer(chunk),
                             [&](const boost::system::error_code& error, std::size_t size) {
                               done = true;
                               if (error) closed = true;
                               pending_.insert(pending_.end(), chunk.begin(),
                                               chunk.begin() + static_cast<std::ptrdiff_t>(size));
                             });
      if (!run_until([&] { return done; })) break;
    }
    return frames;
  }

  // Plays node `self` dialing node 2 with `secret`; returns every byte it sent. Succeeds only
  // if node 2 answers with its challenge and a response.
  std::vector<std::uint8_t> dial_and_authenticate(tcp::socket& socket, std::uint8_t self,
                                                  const std::string& secret) {
    std::vector<std::uint8_t> sent;
    wire::AuthChallenge challenge;
    challenge.sender = NodeId{self};
    challenge.receiver = NodeId{2};
    challenge.resource_name = resource;
    challenge.challenge = random_auth_challenge();
    const auto first = wire::encode(challenge);
    sent.insert(sent.end(), first.begin(), first.end());
    asio::write(socket, asio::buffer(first));
    const std::vector<wire::Message> answer = receive_frames(socket, 2);
    if (answer.size() != 2) return sent;
    const auto& theirs = std::get<wire::AuthChallenge>(answer[0]);
    const wire::AuthResponse ours{key(secret).digest(NodeId{self}, NodeId{2}, resource,
                                                     theirs.challenge, challenge.challenge)};
    for (const wire::Message& message :
         std::vector<wire::Message>{ours, make_hello(self, 2)}) {
      const auto frame = wire::encode(message);
      sent.insert(sent.end(), frame.begin(), frame.end());
      asio::write(socket, asio::buffer(frame));
    }
    return sent;
  }

  std::vector<std::uint8_t> pending_;
};

TEST(AuthKeyTest, TheDigestBindsProverVerifierResourceAndBothChallenges) {
  const auto key = AuthKey::create("sha256", "s3cret").value();
  const auto a = bytes_of("challenge-a-challenge-a-challeng");
  const auto b = bytes_of("challenge-b-challenge-b-challeng");
  const auto digest = key.digest(NodeId{1}, NodeId{2}, "r0", a, b);
  EXPECT_EQ(digest.size(), 32u);
  EXPECT_TRUE(key.verify(digest, NodeId{1}, NodeId{2}, "r0", a, b));
  EXPECT_FALSE(key.verify(digest, NodeId{2}, NodeId{1}, "r0", a, b));  // reflected
  EXPECT_FALSE(key.verify(digest, NodeId{1}, NodeId{2}, "r1", a, b));
  EXPECT_FALSE(key.verify(digest, NodeId{1}, NodeId{2}, "r0", b, a));
  auto flipped = digest;
  flipped[31] ^= 1;
  EXPECT_FALSE(key.verify(flipped, NodeId{1}, NodeId{2}, "r0", a, b));
  EXPECT_FALSE(key.verify(std::span(digest).first(31), NodeId{1}, NodeId{2}, "r0", a, b));
  const auto other = AuthKey::create("sha256", "s3creT").value();
  EXPECT_FALSE(other.verify(digest, NodeId{1}, NodeId{2}, "r0", a, b));
}

TEST(AuthKeyTest, AnUnknownAlgorithmOrAnEmptySecretIsRefused) {
  EXPECT_FALSE(AuthKey::create("no-such-digest", "s3cret").ok());
  EXPECT_FALSE(AuthKey::create("sha256", "").ok());
  EXPECT_TRUE(AuthKey::create("sha1", "s3cret").ok());
  EXPECT_TRUE(AuthKey::create("sha512", "s3cret").ok());
}

TEST(AuthKeyTest, ChallengesAreFreshRandomBytes) {
  const auto first = random_auth_challenge();
  EXPECT_EQ(first.size(), wire::auth_challenge_size_bytes);
  EXPECT_NE(first, random_auth_challenge());
}

TEST_F(AuthTest, PeersWithTheSameSecretConnectAndTheHandlerSeesOnlyTheHello) {
  start_cluster({1, 2}, [](TransportConfig& config) { use_secret(config, "s3cret"); });
  ASSERT_TRUE(run_until([&] { return pair_ready(1, 2); }));
  for (std::uint8_t id : {1, 2}) {
    const std::uint8_t other = id == 1 ? 2 : 1;
    EXPECT_EQ(handler(id).count(EventKind::connected, other), 1);
    EXPECT_TRUE(std::holds_alternative<wire::Hello>(handler(id).messages_from(other)[0]->message));
  }
}

TEST_F(AuthTest, PeersWithDifferentSecretsNeverSeeEachOther) {
  start_cluster({1, 2}, [](TransportConfig& config) {
    use_secret(config, config.self.value == 1 ? "s3cret" : "wrong");
  });
  run_for(400ms);
  EXPECT_TRUE(handler(1).events.empty());
  EXPECT_TRUE(handler(2).events.empty());
  EXPECT_FALSE(transport(1).is_connected(NodeId{2}));
}

TEST_F(AuthTest, APeerWithoutASecretIsRefusedByOneThatRequiresIt) {
  start_cluster({1, 2}, [](TransportConfig& config) {
    if (config.self.value == 2) use_secret(config, "s3cret");
  });
  run_for(300ms);
  EXPECT_EQ(handler(2).count(EventKind::connected, 1), 0);
  EXPECT_TRUE(handler(2).messages_from(1).empty());
}

TEST_F(AuthTest, AReplayedHandshakeIsRefusedWhileTheOriginalWorked) {
  start_cluster({2}, [](TransportConfig& config) {
    config.peers = {TransportPeer{NodeId{1}, "node1", "127.0.0.1", 0, {}}};
    use_secret(config, "s3cret");
  });
  tcp::socket original(io_);
  original.connect(endpoint_of(2));
  const std::vector<std::uint8_t> recorded = dial_and_authenticate(original, 1, "s3cret");
  ASSERT_TRUE(run_until([&] { return !handler(2).messages_of_type<wire::Hello>(1).empty(); }));
  EXPECT_EQ(handler(2).count(EventKind::connected, 1), 1);
  original.close();
  ASSERT_TRUE(run_until([&] { return handler(2).count(EventKind::disconnected, 1) == 1; }));

  tcp::socket replay(io_);
  replay.connect(endpoint_of(2));
  asio::write(replay, asio::buffer(recorded));
  EXPECT_TRUE(run_until_closed(replay));
  EXPECT_EQ(handler(2).count(EventKind::connected, 1), 1);  // still only the original
  EXPECT_EQ(handler(2).messages_of_type<wire::Hello>(1).size(), 1u);
}

TEST_F(AuthTest, AnImpostorWithTheWrongSecretIsClosedAndNeverReachesTheHandler) {
  start_cluster({2}, [](TransportConfig& config) {
    config.peers = {TransportPeer{NodeId{1}, "node1", "127.0.0.1", 0, {}}};
    use_secret(config, "s3cret");
  });
  tcp::socket impostor(io_);
  impostor.connect(endpoint_of(2));
  dial_and_authenticate(impostor, 1, "guess");
  EXPECT_TRUE(run_until_closed(impostor));
  EXPECT_TRUE(handler(2).events.empty());
}

TEST_F(AuthTest, AChallengeWithAnotherProtocolVersionIsRefused) {
  start_cluster({2}, [](TransportConfig& config) {
    config.peers = {TransportPeer{NodeId{1}, "node1", "127.0.0.1", 0, {}}};
    use_secret(config, "s3cret");
  });
  wire::AuthChallenge challenge;
  challenge.protocol_version_min = wire::protocol_version + 1;
  challenge.protocol_version_max = wire::protocol_version + 1;
  challenge.sender = NodeId{1};
  challenge.receiver = NodeId{2};
  challenge.resource_name = resource;
  challenge.challenge = random_auth_challenge();
  tcp::socket stranger(io_);
  stranger.connect(endpoint_of(2));
  asio::write(stranger, asio::buffer(wire::encode(challenge)));
  EXPECT_TRUE(receive_frames(stranger, 1).empty());  // closed without answering
  EXPECT_TRUE(handler(2).events.empty());
}

TEST_F(AuthTest, APeerThatStopsAnsweringPingsIsDisconnectedAfterThePingTimeout) {
  start_cluster({2}, [](TransportConfig& config) {
    config.peers = {TransportPeer{NodeId{1}, "node1", "127.0.0.1", 0, {}}};
    config.ping_interval = Duration::from_ms(50);
    config.ping_timeout = Duration::from_ms(100);
  });
  handler(2).send_hello_on_connect = false;
  tcp::socket silent(io_);
  silent.connect(endpoint_of(2));
  asio::write(silent, asio::buffer(wire::encode(make_hello(1, 2))));
  ASSERT_TRUE(run_until([&] { return handler(2).count(EventKind::connected, 1) == 1; }));
  const auto pings = receive_frames(silent, 1);  // read, never answered
  ASSERT_EQ(pings.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<wire::Ping>(pings[0]));
  ASSERT_TRUE(run_until([&] { return handler(2).count(EventKind::disconnected, 1) == 1; }, 2s));
  EXPECT_NE(handler(2).events.back().reason.find("ping"), std::string::npos)
      << handler(2).events.back().reason;
}

TEST_F(AuthTest, PeersThatAnswerPingsStayConnectedAndPingsNeverReachTheHandler) {
  start_cluster({1, 2}, [](TransportConfig& config) {
    config.ping_interval = Duration::from_ms(10);
    config.ping_timeout = Duration::from_ms(200);
  });
  ASSERT_TRUE(run_until([&] { return pair_ready(1, 2); }));
  run_for(300ms);
  EXPECT_EQ(handler(1).count(EventKind::disconnected, 2), 0);
  EXPECT_EQ(handler(2).count(EventKind::disconnected, 1), 0);
  for (const Event* event : handler(1).messages_from(2)) {
    EXPECT_FALSE(std::holds_alternative<wire::Ping>(event->message));
    EXPECT_FALSE(std::holds_alternative<wire::PingAck>(event->message));
  }
}

TEST_F(AuthTest, ADialThatFailsOnTheFirstPathConnectsOverTheSecond) {
  start_cluster({2}, [](TransportConfig& config) {
    config.peers = {TransportPeer{NodeId{1}, "node1", "127.0.0.1", 0, {}}};
  });
  // A bound but not listening port refuses connections at once.
  tcp::socket blocker(io_);
  blocker.open(tcp::v4());
  blocker.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  TransportConfig config = make_config(1, {});
  config.peers = {TransportPeer{NodeId{2}, "node2", "127.0.0.1", blocker.local_endpoint().port(),
                                {TransportAddress{"127.0.0.1", transport(2).listen_port()}}}};
  nodes_[1].handler = std::make_unique<RecordingHandler>(NodeId{1});
  nodes_[1].transport = std::make_unique<TcpTransport>(io_, config, *nodes_[1].handler);
  nodes_[1].handler->transport = nodes_[1].transport.get();
  ASSERT_TRUE(transport(1).start().ok());
  ASSERT_TRUE(run_until([&] { return pair_ready(1, 2); }));
}

}  // namespace
}  // namespace ditto::datapath
