// dittoadm/dittod operability: events2 (--now dump and the live stream) in drbdsetup's line
// format, `dump -c FILE` against drbd-utils' `drbdadm dump` on a small corpus, `show`, and the
// Prometheus endpoint with drbd-reactor's metric names.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "cluster_harness.h"
#include "network_test_support.h"

namespace ditto::testing {
namespace {

using Output = CommandOutcome;

Output run(const std::string& command) {
  return run_command(command);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string dittoadm(const LocalCluster& cluster, int index, const std::string& arguments) {
  return build_program("datapath/dittoadm") + " --control " + cluster.control_socket(index) +
         " " + arguments;
}

class ControlCommands : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(cluster_.start_all_connected(error)) << error;
  }
  LocalCluster cluster_{2, 4u << 20};
};

TEST_F(ControlCommands, Events2NowPrintsTheExistsDumpInDrbdsetupFormatThenExistsDash) {
  const Output output = run(dittoadm(cluster_, 0, "events2 r0 --now"));
  ASSERT_EQ(output.exit_status, 0) << output.output;
  const std::vector<std::string> lines = lines_of(output.output);
  const std::string peer = "name:r0 peer-node-id:1 conn-name:beta";
  const std::vector<std::string> expected = {
      R"(exists resource name:r0 role:Secondary suspended:no force-io-failures:no )"
      R"(may_promote:(yes|no) promotion_score:\d+)",
      "exists connection " + peer + " connection:Connected role:Secondary",
      R"(exists device name:r0 volume:0 minor:100 backing_dev:\S+alpha\.img disk:UpToDate )"
      R"(client:no open:no quorum:yes)",
      "exists peer-device " + peer +
          " volume:0 replication:Established peer-disk:UpToDate peer-client:no "
          "resync-suspended:no",
      "exists path " + peer + R"( local:ipv4:127\.0\.0\.1:\d+ peer:ipv4:127\.0\.0\.1:\d+ )"
                              "established:yes",
      "exists -"};
  ASSERT_EQ(lines.size(), expected.size()) << output.output;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_TRUE(std::regex_match(lines[i], std::regex(expected[i])))
        << "line " << i << ": " << lines[i] << "\nexpected: " << expected[i];
  }
}

TEST_F(ControlCommands, Events2StreamsChangesWithTimestampsAfterTheDump) {
  // The stream runs until `timeout` ends it; promoting meanwhile must show up as a change line.
  const std::string command =
      "(sleep 0.5; " + dittoadm(cluster_, 0, "primary r0") + ") & timeout 2 " +
      dittoadm(cluster_, 0, "events2 r0 --timestamps");
  const Output output = run(command);
  const std::string stamp = R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d )";
  bool dump_ended = false;
  bool promoted = false;
  for (const std::string& line : lines_of(output.output)) {
    EXPECT_TRUE(std::regex_search(line, std::regex("^" + stamp))) << line;
    dump_ended = dump_ended || std::regex_match(line, std::regex(stamp + "exists -"));
    promoted = promoted || (dump_ended && std::regex_match(
                                              line, std::regex(stamp +
                                                               "change resource name:r0 "
                                                               "role:Primary.*")));
  }
  EXPECT_TRUE(dump_ended) << output.output;
  EXPECT_TRUE(promoted) << output.output;
}

TEST_F(ControlCommands, StatusJsonHasTheKeysDrbdsetupPrints) {
  const ControlResult status = cluster_.control(0, "status r0 --json");
  ASSERT_EQ(status.exit_status, 0);
  for (const char* key :
       {"name", "node-id", "role", "suspended", "suspended-user", "suspended-no-data",
        "suspended-fencing", "suspended-quorum", "force-io-failures", "write-ordering",
        "devices", "volume", "minor", "disk-state", "client", "open", "quorum", "size", "read",
        "written", "al-writes", "bm-writes", "upper-pending", "lower-pending", "connections",
        "peer-node-id", "connection-state", "congested", "peer-role", "tls", "ap-in-flight",
        "rs-in-flight", "paths", "peer_devices", "replication-state", "peer-disk-state",
        "peer-client", "resync-suspended", "received", "sent", "out-of-sync", "pending",
        "unacked", "percent-in-sync"}) {
    EXPECT_NE(status.text.find("\"" + std::string(key) + "\":"), std::string::npos) << key;
  }
}

TEST_F(ControlCommands, ShowPrintsTheRunningConfiguration) {
  const Output output = run(dittoadm(cluster_, 0, "show r0"));
  ASSERT_EQ(output.exit_status, 0);
  EXPECT_NE(output.output.find("resource r0 {"), std::string::npos) << output.output;
  EXPECT_NE(output.output.find("on beta {"), std::string::npos) << output.output;
}

// ---- Metrics ----

std::string http_get(std::uint16_t port, const std::string& target) {
  const int fd = connect_loopback(port);
  if (fd < 0) return {};
  const std::string request = "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
  if (::write(fd, request.data(), request.size()) < 0) return {};
  std::string reply;
  char chunk[4096];
  ssize_t got = 0;
  while ((got = ::read(fd, chunk, sizeof(chunk))) > 0) {
    reply.append(chunk, static_cast<std::size_t>(got));
  }
  ::close(fd);
  return reply;
}

TEST(Metrics, TheEndpointServesParseablePrometheusTextWithDrbdReactorNames) {
  LocalCluster cluster(2, 4u << 20);
  const std::uint16_t port = free_port();
  std::string error;
  ASSERT_TRUE(cluster.start_with(0, {"--metrics", "127.0.0.1:" + std::to_string(port)}, error))
      << error;
  ASSERT_TRUE(cluster.start(1, error)) << error;
  ASSERT_TRUE(cluster.wait_connected(0, 1, 10'000));
  const std::string reply = http_get(port, "/metrics");
  ASSERT_EQ(reply.rfind("HTTP/1.1 200", 0), 0u) << reply;
  const std::string body = reply.substr(reply.find("\r\n\r\n") + 4);
  const std::regex sample(R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? )"
                          R"(-?[0-9.eE+]+)");
  const std::regex comment(R"(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+)");
  std::set<std::string> names;
  for (const std::string& line : lines_of(body)) {
    std::smatch match;
    if (std::regex_match(line, comment)) continue;
    ASSERT_TRUE(std::regex_match(line, match, sample)) << "unparseable: " << line;
    names.insert(match[1]);
  }
  for (const char* name :
       {"drbd_resource_resources", "drbd_resource_role", "drbd_resource_maypromote",
        "drbd_resource_promotionscore", "drbd_connection_state", "drbd_device_state",
        "drbd_device_written_bytes_total", "drbd_device_read_bytes_total",
        "drbd_device_size_bytes", "drbd_device_quorum", "drbd_peerdevice_outofsync_bytes",
        "drbd_peerdevice_sent_bytes", "drbd_peerdevice_received_bytes"}) {
    EXPECT_TRUE(names.count(name) == 1) << name;
  }
  EXPECT_NE(body.find(R"(drbd_connection_state{name="r0",conn_name="beta",peer_node_id="1",)"
                      R"(drbd_connection_state="Connected"} 1)"),
            std::string::npos)
      << body;
  EXPECT_NE(http_get(port, "/other").find("404"), std::string::npos);
}

// ---- dump against drbdadm dump ----

// The facts of a dump: "<section path> <statement>" per statement, with `device [path] minor N`
// reduced to `minor N`, volume blocks folded into their host, comments and quotes dropped.
std::set<std::string> dump_facts(const std::string& text) {
  std::set<std::string> facts;
  std::vector<std::string> sections;
  for (std::string line : lines_of(text)) {
    line = std::regex_replace(line, std::regex(R"(#.*|")"), "");
    line = std::regex_replace(line, std::regex(R"(\s+)"), " ");
    line = std::regex_replace(line, std::regex(R"(^ | $)"), "");
    if (line.empty()) continue;
    if (line.back() == '{') {
      const std::string section = line.substr(0, line.size() - 2);
      sections.push_back(section.rfind("volume", 0) == 0 ? "" : section);
      continue;
    }
    if (line == "}") {
      if (!sections.empty()) sections.pop_back();
      continue;
    }
    if (line.back() == ';') line.pop_back();
    std::smatch minor;
    if (std::regex_search(line, minor, std::regex(R"(^device .*minor (\d+))"))) {
      line = "minor " + minor[1].str();
    }
    std::string path;
    for (const std::string& section : sections) {
      if (!section.empty()) path += section + "/";
    }
    facts.insert(path + " " + line);
  }
  return facts;
}

TEST(DumpCorpus, DittoadmDumpStatesTheSameFactsAsDrbdadmDump) {
  if (run("command -v drbdadm >/dev/null").exit_status != 0) GTEST_SKIP() << "no drbd-utils";
  const std::vector<std::string> corpus = {
      R"(resource r0 {
  net { protocol C; cram-hmac-alg sha256; shared-secret "s3cret"; ping-int 5; ping-timeout 7; }
  on alpha { node-id 0; address 10.0.0.1:7789; device /dev/drbd100; disk /dev/vg/a; meta-disk internal; }
  on beta { node-id 1; address 10.0.0.2:7789; device /dev/drbd101; disk /dev/vg/b; meta-disk internal; }
})",
      R"(resource r1 {
  options { quorum majority; on-no-quorum io-error; }
  disk { al-extents 6007; }
  on alpha { node-id 0; address 10.0.0.1:7790; volume 0 { device minor 10; disk /dev/vg/a0; meta-disk internal; } }
  on beta { node-id 1; address 10.0.0.2:7790; volume 0 { device minor 10; disk /dev/vg/b0; meta-disk internal; } }
  on gamma { node-id 2; address 10.0.0.3:7790; volume 0 { device minor 10; disk /dev/vg/c0; meta-disk internal; } }
  connection-mesh { hosts alpha beta gamma; }
})",
      R"(resource r2 {
  net { protocol C; ping-int 3; }
  on alpha { node-id 0; address 10.0.0.1:7791; device /dev/drbd20; disk /dev/vg/a; meta-disk internal; }
  on beta { node-id 1; address 10.0.0.2:7791; device /dev/drbd20; disk /dev/vg/b; meta-disk internal; }
  connection {
    path { host alpha address 10.0.0.1:7791; host beta address 10.0.0.2:7791; }
    path { host alpha address 10.1.0.1:7791; host beta address 10.1.0.2:7791; }
  }
})",
      R"(resource r3 {
  handlers { fence-peer "/usr/lib/drbd/crm-fence-peer.9.sh"; }
  net { fencing resource-only; after-sb-0pri discard-zero-changes; }
  on alpha { node-id 3; address ipv6 [fd00::1]:7792; device /dev/drbd30; disk /dev/vg/a; meta-disk internal; }
  on beta { node-id 7; address ipv6 [fd00::2]:7792; device /dev/drbd30; disk /dev/vg/b; meta-disk internal; }
})",
      // A diskless client: drbdadm prints `disk none;` and no meta-disk for it.
      R"(resource r4 {
  disk { size 16M; read-balancing 1M-striping; }
  on alpha { node-id 0; address 10.0.0.1:7793; device /dev/drbd40; disk /dev/vg/a; meta-disk internal; }
  on beta { node-id 1; address 10.0.0.2:7793; device /dev/drbd40; disk /dev/vg/b; meta-disk internal; }
  on gamma { node-id 2; address 10.0.0.3:7793; device /dev/drbd40; disk none; }
  connection-mesh { hosts alpha beta gamma; }
})"};
  const std::string directory =
      "/var/tmp/ditto-dump-corpus-" + std::to_string(::getpid());
  std::filesystem::create_directories(directory);
  for (std::size_t i = 0; i < corpus.size(); ++i) {
    const std::string path = directory + "/r" + std::to_string(i) + ".res";
    std::ofstream(path) << corpus[i] << "\n";
    const Output reference = run("drbdadm -c " + path + " dump all 2>/dev/null");
    const Output ours = run(build_program("datapath/dittoadm") + " dump -c " + path);
    ASSERT_EQ(reference.exit_status, 0) << path << "\n" << reference.output;
    ASSERT_EQ(ours.exit_status, 0) << path << "\n" << ours.output;
    const std::set<std::string> expected = dump_facts(reference.output);
    const std::set<std::string> actual = dump_facts(ours.output);
    EXPECT_GE(expected.size(), 10u) << "the fact extractor found too little:\n" << reference.output;
    for (const std::string& fact : expected) {
      EXPECT_TRUE(actual.count(fact) == 1) << path << ": drbdadm says '" << fact
                                           << "', dittoadm does not:\n" << ours.output;
    }
    for (const std::string& fact : actual) {
      EXPECT_TRUE(expected.count(fact) == 1) << path << ": dittoadm says '" << fact
                                             << "', drbdadm does not:\n" << reference.output;
    }
  }
  std::filesystem::remove_all(directory);
}

}  // namespace
}  // namespace ditto::testing
