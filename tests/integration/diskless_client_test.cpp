// Diskless clients with real dittod processes (drbd9-semantics.md §9): gamma is configured
// `disk none;`. It starts Diskless without touching any disk, connects to its two diskful peers,
// is promoted by a writing NBD client, and every write it takes lands on both peers' disks and
// every read is served by them, spread by its read-balancing policy.
#include <libnbd.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "cluster_harness.h"

namespace ditto::testing {
namespace {

constexpr std::uint64_t disk_size_bytes = 16u << 20;
constexpr int alpha = 0;
constexpr int beta = 1;
constexpr int gamma = 2;

bool tool_exists(const std::string& name) {
  return run_command("command -v " + name + " >/dev/null 2>&1").exit_status == 0;
}

// The default three-node configuration with gamma's disk replaced by `disk none;` and the
// resource's disk section `disk_section` (empty: none).
std::string client_config(const LocalCluster& cluster, const std::string& disk_section) {
  std::string gamma_block = cluster.host_block(gamma);
  const std::string diskful = "disk " + cluster.disk_path(gamma) + ";\n    meta-disk internal;";
  const std::size_t at = gamma_block.find(diskful);
  if (at == std::string::npos) ADD_FAILURE() << "unexpected host block:\n" << gamma_block;
  gamma_block.replace(at, diskful.size(), "disk none;");
  return "resource r0 {\n  net { protocol C; }\n" + disk_section + cluster.host_block(alpha) +
         cluster.host_block(beta) + gamma_block +
         "  connection-mesh {\n    hosts alpha beta gamma;\n  }\n}\n";
}

CommandOutcome dittoadm(const LocalCluster& cluster, int index, const std::string& arguments) {
  return run_command(build_program("datapath/dittoadm") + " --control " +
                     cluster.control_socket(index) + " " + arguments + " 2>&1");
}

// The KiB node `index` has received from `peer`, from `status r0 --statistics` (the
// connection's line names the peer, its peer device's line has received:N).
std::uint64_t received_kib_from(const LocalCluster& cluster, int index, const std::string& peer) {
  const std::string status = cluster.control(index, "status r0 --statistics").text;
  const std::size_t from = status.find("\n  " + peer + " ");
  if (from == std::string::npos) {
    ADD_FAILURE() << "no connection to " << peer << " in:\n" << status;
    return 0;
  }
  std::smatch match;
  const std::string rest = status.substr(from);
  if (!std::regex_search(rest, match, std::regex(R"(received:(\d+))"))) {
    ADD_FAILURE() << "no received: for " << peer << " in:\n" << status;
    return 0;
  }
  return std::stoull(match[1].str());
}

bool nbd_read(const std::string& uri, std::uint64_t offset, std::uint64_t length) {
  nbd_handle* handle = nbd_create();
  std::vector<std::uint8_t> bytes(length);
  const bool ok = nbd_connect_uri(handle, uri.c_str()) == 0 &&
                  nbd_pread(handle, bytes.data(), bytes.size(), offset, 0) == 0;
  if (!ok) ADD_FAILURE() << "NBD read from " << uri << ": " << nbd_get_error();
  nbd_shutdown(handle, 0);
  nbd_close(handle);
  return ok;
}

// The client has no `size`: it learns the peers' (16 MiB) and its export shows it.
TEST(DisklessClient, WritesThroughItsExportLandOnBothPeersAndReadBackByteIdentical) {
  if (!tool_exists("nbdcopy") || !tool_exists("qemu-img")) GTEST_SKIP() << "tools missing";
  LocalCluster cluster(3, disk_size_bytes);
  cluster.write_config(client_config(cluster, ""));
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;

  // The client is Diskless by configuration (client:yes); its peers UpToDate; the peers see it
  // as a diskless client.
  const std::string client_status = cluster.control(gamma, "status r0").text;
  EXPECT_NE(client_status.find("disk:Diskless client:yes"), std::string::npos) << client_status;
  for (const char* peer : {"alpha", "beta"}) {
    EXPECT_TRUE(std::regex_search(
        client_status, std::regex("\n  " + std::string(peer) +
                                  R"( role:Secondary\n(.*\n)*? +peer-disk:UpToDate)")))
        << client_status;
  }
  for (int peer : {alpha, beta}) {
    const std::string status = cluster.control(peer, "status r0").text;
    EXPECT_NE(status.find(" disk:UpToDate"), std::string::npos) << status;
    EXPECT_TRUE(std::regex_search(
        status, std::regex(R"(\n  gamma role:Secondary\n(.*\n)*? +peer-disk:Diskless peer-client:yes)")))
        << status;
  }
  const CommandOutcome size = run_command("nbdinfo --size " + cluster.nbd_uri(gamma) + " 2>&1");
  ASSERT_EQ(size.exit_status, 0) << size.output;
  EXPECT_EQ(std::stoull(size.output), disk_size_bytes);

  // A random file through the client's export: the writing connection promotes it.
  const std::string source = cluster.directory() + "/source.img";
  ASSERT_TRUE(write_random_file(source, disk_size_bytes, 23)) << source;
  const CommandOutcome copy =
      run_command("nbdcopy --flush " + source + " " + cluster.nbd_uri(gamma) + " 2>&1");
  ASSERT_EQ(copy.exit_status, 0) << copy.output << file_text(cluster.log_path(gamma));
  // Read back through the client: every byte comes from a peer.
  const CommandOutcome compare = run_command("qemu-img compare -f raw -F raw " + source + " " +
                                             cluster.nbd_uri(gamma) + " 2>&1");
  EXPECT_EQ(compare.exit_status, 0) << compare.output;

  // Both peers are UpToDate with nothing out of sync toward each other, and hold the bytes.
  for (int peer : {alpha, beta}) {
    EXPECT_TRUE(wait_for_status(cluster, peer, " disk:UpToDate", 5'000));
    const std::string status = cluster.control(peer, "status r0").text;
    EXPECT_EQ(status.find("out-of-sync"), std::string::npos) << status;
  }
  // Nothing is out of sync anywhere (status prints out-of-sync:N only when N > 0): the client
  // has no disk to be behind, and the peers hold every write.
  for (int index : {alpha, beta, gamma}) {
    const std::string status = cluster.control(index, "status r0 --statistics").text;
    std::smatch match;
    EXPECT_FALSE(std::regex_search(status, match, std::regex(R"(out-of-sync:[1-9])"))) << status;
    EXPECT_NE(status.find("received:"), std::string::npos) << status;
  }
  // A client writes no metadata and no data of its own: gamma's file stays as created (zeros).
  const std::string client_disk_before = run_command("md5sum < " + cluster.disk_path(gamma)).output;
  for (int index : {alpha, beta, gamma}) cluster.kill(index, SIGTERM);
  for (int peer : {alpha, beta}) {
    const CommandOutcome same = run_command("cmp -n " + std::to_string(disk_size_bytes) + " " +
                                            source + " " + cluster.disk_path(peer) + " 2>&1");
    EXPECT_EQ(same.exit_status, 0) << cluster.name(peer) << ": " << same.output;
  }
  const CommandOutcome zeros = run_command("cmp -n " + std::to_string(disk_size_bytes) + " " +
                                           cluster.disk_path(gamma) + " /dev/zero 2>&1");
  EXPECT_EQ(zeros.exit_status, 0) << zeros.output;
  EXPECT_EQ(run_command("md5sum < " + cluster.disk_path(gamma)).output, client_disk_before);
  const std::string log = file_text(cluster.log_path(gamma));
  EXPECT_NE(log.find("diskless client (disk none"), std::string::npos) << log;
}

// read-balancing 1M-striping on the client: a read goes to the peer of its stripe (stripe 0:
// alpha, stripe 1: beta, in node-id order), not to the next peer in rotation as the default
// policy would send it. Three reads of stripe 0 and one of stripe 1 put 3 MiB on alpha and 1 MiB
// on beta; a rotation would put 2 MiB on each.
TEST(DisklessClient, ReadBalancingDecidesWhichPeerServesTheClientsReads) {
  LocalCluster cluster(3, disk_size_bytes);
  cluster.write_config(
      client_config(cluster, "  disk { size 16M; read-balancing 1M-striping; }\n"));
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  const std::uint64_t alpha_before = received_kib_from(cluster, gamma, "alpha");
  const std::uint64_t beta_before = received_kib_from(cluster, gamma, "beta");
  constexpr std::uint64_t mib = 1u << 20;
  for (std::uint64_t offset : {std::uint64_t{0}, std::uint64_t{0}, std::uint64_t{0}, mib}) {
    ASSERT_TRUE(nbd_read(cluster.nbd_uri(gamma), offset, mib));
  }
  const std::uint64_t from_alpha = received_kib_from(cluster, gamma, "alpha") - alpha_before;
  const std::uint64_t from_beta = received_kib_from(cluster, gamma, "beta") - beta_before;
  EXPECT_GE(from_alpha, 3 * 1024u);
  EXPECT_LT(from_alpha, 3 * 1024u + 64);
  EXPECT_GE(from_beta, 1024u);
  EXPECT_LT(from_beta, 1024u + 64);
}

// Without `size` a client learns its size from its first diskful peer; until then its export
// refuses NBD_OPT_GO with a reason (NBD cannot announce a size later). A configured `size`
// is a check: a client whose size differs from its peers' refuses to connect, with the reason.
TEST(DisklessClient, WithoutASizeItLearnsThePeersSizeAndRefusesItsExportUntilThen) {
  if (!tool_exists("nbdinfo")) GTEST_SKIP() << "nbdinfo missing";
  LocalCluster cluster(3, disk_size_bytes);
  cluster.write_config(client_config(cluster, ""));
  std::string error;
  ASSERT_TRUE(cluster.start(gamma, error)) << error;
  // libnbd prints the server's message only in its debug output.
  const CommandOutcome early =
      run_command("LIBNBD_DEBUG=1 nbdinfo --size " + cluster.nbd_uri(gamma) + " 2>&1");
  EXPECT_NE(early.exit_status, 0) << early.output;
  EXPECT_NE(early.output.find("does not know its size yet"), std::string::npos) << early.output;
  EXPECT_NE(file_text(cluster.log_path(gamma)).find("size learned from its peers"),
            std::string::npos);

  ASSERT_TRUE(cluster.start(alpha, error)) << error;
  ASSERT_TRUE(cluster.wait_connected(gamma, 1, 10'000));
  const CommandOutcome learned =
      run_command("nbdinfo --size " + cluster.nbd_uri(gamma) + " 2>&1");
  ASSERT_EQ(learned.exit_status, 0) << learned.output;
  EXPECT_EQ(std::stoull(learned.output), disk_size_bytes);
  const std::string json = cluster.control(gamma, "status r0 --json").text;
  EXPECT_NE(json.find("\"size\": " + std::to_string(disk_size_bytes / 1024)), std::string::npos)
      << json;
  ASSERT_TRUE(nbd_read(cluster.nbd_uri(gamma), disk_size_bytes - 4096, 4096));
}

TEST(DisklessClient, AConfiguredSizeThatDiffersFromThePeersRefusesTheConnectionWithAReason) {
  LocalCluster cluster(3, disk_size_bytes);
  cluster.write_config(client_config(cluster, ""));
  // A size that is not its data area stops a diskful node at its disk's location.
  const std::string sized = cluster.directory() + "/sized.res";
  {
    std::ofstream out(sized);
    out << client_config(cluster, "  disk { size 8M; }\n");
  }
  cluster.use_node_config(alpha, sized);
  std::string error;
  EXPECT_FALSE(cluster.start(alpha, error));
  const std::string alpha_log = file_text(cluster.log_path(alpha)) + error;
  EXPECT_TRUE(std::regex_search(alpha_log, std::regex(R"(sized\.res:\d+:\d+: size 8388608 bytes)")))
      << alpha_log;
  cluster.use_node_config(alpha, cluster.config_path());
  ASSERT_TRUE(cluster.start(alpha, error)) << error;

  // The client with 8M against alpha's 16M: both sides go StandAlone, the client says why.
  cluster.use_node_config(gamma, sized);
  ASSERT_TRUE(cluster.start(gamma, error)) << error;
  EXPECT_TRUE(wait_for_status(cluster, gamma, "alpha connection:StandAlone", 10'000))
      << cluster.control(gamma, "status r0").text;
  const std::string log = file_text(cluster.log_path(gamma));
  EXPECT_NE(log.find("the configured size (16384 sectors) differs from the peer's (32768 "
                     "sectors)"),
            std::string::npos)
      << log;
  // The client keeps its configured size; attach has no disk to attach.
  const CommandOutcome attach = dittoadm(cluster, gamma, "attach r0");
  EXPECT_EQ(attach.exit_status, 10) << attach.output;
  EXPECT_NE(attach.output.find("disk none"), std::string::npos) << attach.output;
  // Nor does the client detach a disk it does not have (it stays Diskless and running).
  EXPECT_NE(dittoadm(cluster, gamma, "detach r0").exit_status, 0);
  EXPECT_TRUE(cluster.running(gamma));
  EXPECT_NE(cluster.control(gamma, "status r0").text.find("disk:Diskless client:yes"),
            std::string::npos);
}

}  // namespace
}  // namespace ditto::testing
