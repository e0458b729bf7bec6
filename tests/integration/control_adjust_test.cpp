// dittoadm adjust on real daemons: the configuration file is re-read and its live-changeable
// differences (ping-int, a new path; verify-alg and c-max-rate, core options) are applied
// without restarting the resource, as `show`, events2, a new listening port and a verify that
// was refused before prove; a change that needs down/up (node-id) is refused
// with the keyword and its file:line, and nothing at all is changed. Also the status/events2
// views of a running cluster keep may_promote/promotion_score right.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "cluster_harness.h"
#include "network_test_support.h"

namespace ditto::testing {
namespace {

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t count = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

std::string path_line(std::uint16_t alpha_port, std::uint16_t beta_port) {
  return "    path { host alpha address 127.0.0.1:" + std::to_string(alpha_port) +
         "; host beta address 127.0.0.1:" + std::to_string(beta_port) + "; }\n";
}

TEST(Adjust, PingIntAndANewPathApplyLiveWithoutRestartingTheResource) {
  LocalCluster cluster(2, 4u << 20);
  const auto config = [&](const std::string& net, const std::string& paths) {
    return "resource r0 {\n  net { protocol C;" + net + " }\n" + cluster.host_block(0) +
           cluster.host_block(1) + "  connection {\n" + paths + "  }\n}\n";
  };
  const std::string first_path = path_line(cluster.peer_port(0), cluster.peer_port(1));
  cluster.write_config(config("", first_path));
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  const std::string log_before = read_file(cluster.log_path(1));

  const std::uint16_t extra_alpha = free_port();
  const std::uint16_t extra_beta = free_port();
  cluster.write_config(config(" ping-int 3;", first_path + path_line(extra_alpha, extra_beta)));
  const ControlResult alpha = cluster.control(0, "adjust r0");
  EXPECT_EQ(alpha.exit_status, 0) << alpha.text;
  EXPECT_NE(alpha.text.find("r0: ping-int 10000 ms -> 3000 ms"), std::string::npos) << alpha.text;
  EXPECT_NE(alpha.text.find("r0: path to beta added: 127.0.0.1:" + std::to_string(extra_beta)),
            std::string::npos)
      << alpha.text;
  const ControlResult beta = cluster.control(1, "adjust r0");
  EXPECT_EQ(beta.exit_status, 0) << beta.text;
  EXPECT_NE(beta.text.find("r0: path to alpha added: 127.0.0.1:" + std::to_string(extra_alpha)),
            std::string::npos)
      << beta.text;

  const ControlResult show = cluster.control(0, "show r0");
  EXPECT_TRUE(std::regex_search(show.text, std::regex(R"(\n +ping-int +3;\n)"))) << show.text;
  EXPECT_NE(show.text.find("127.0.0.1:" + std::to_string(extra_beta)), std::string::npos)
      << show.text;
  const ControlResult events = cluster.control(0, "events2 r0 --now");
  EXPECT_EQ(count_of(events.text, "exists path name:r0 peer-node-id:1 conn-name:beta"), 2u)
      << events.text;
  // beta listens on its end of the new path, and the resource never went down.
  const int fd = connect_loopback(extra_beta);
  EXPECT_GE(fd, 0) << read_file(cluster.log_path(1));
  if (fd >= 0) ::close(fd);
  EXPECT_TRUE(cluster.wait_connected(0, 1, 1000));
  EXPECT_TRUE(cluster.wait_connected(1, 1, 1000));
  const std::string log = read_file(cluster.log_path(0));
  EXPECT_EQ(log.find("lost"), std::string::npos) << log;
  EXPECT_EQ(count_of(read_file(cluster.log_path(1)), "started:"),
            count_of(log_before, "started:"));
}

TEST(Adjust, ANodeIdChangeIsRefusedWithItsLocationAndNothingChanges) {
  LocalCluster cluster(2, 4u << 20);
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  std::string text = read_file(cluster.config_path());
  const std::string show_before = cluster.control(0, "show r0").text;
  // A live-changeable edit (ping-int) beside the refused one must not be applied either.
  text.replace(text.find("protocol C;"), 11, "protocol C; ping-int 3;");
  text.replace(text.find("node-id 0;"), 10, "node-id 5;");
  cluster.write_config(text);
  std::size_t line = 1;
  for (std::size_t at = 0; at < text.find("on alpha"); ++at) line += text[at] == '\n';

  const ControlResult refused = cluster.control(0, "adjust r0");
  EXPECT_EQ(refused.exit_status, 10) << refused.text;
  EXPECT_NE(refused.text.find("adjust refused, nothing changed"), std::string::npos)
      << refused.text;
  EXPECT_NE(refused.text.find(cluster.config_path() + ":" + std::to_string(line) + ":"),
            std::string::npos)
      << refused.text;
  EXPECT_NE(refused.text.find("node-id 0 -> 5 needs down/up"), std::string::npos) << refused.text;
  EXPECT_EQ(refused.text.find("ping-int"), std::string::npos) << refused.text;
  EXPECT_EQ(cluster.control(0, "show r0").text, show_before);
  EXPECT_NE(cluster.control(0, "status r0 --verbose").text.find("r0 node-id:0 role:"),
            std::string::npos);
  EXPECT_TRUE(cluster.wait_connected(0, 1, 1000));
}

TEST(Adjust, VerifyAlgAndCMaxRateAddedToTheFileReachTheRunningNodeSoARefusedVerifyRuns) {
  LocalCluster cluster(2, 4u << 20);
  const auto config = [&](const std::string& net, const std::string& disk) {
    return "resource r0 {\n  net { protocol C;" + net + " }\n  disk {" + disk + " }\n" +
           cluster.host_block(0) + cluster.host_block(1) + "}\n";
  };
  cluster.write_config(config("", ""));
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  const ControlResult refused = cluster.control(0, "verify r0 beta");
  EXPECT_NE(refused.exit_status, 0) << refused.text;
  EXPECT_NE(refused.text.find("SS_NO_VERIFY_ALG"), std::string::npos) << refused.text;

  cluster.write_config(config(" verify-alg crc32c;", " c-max-rate 50M;"));
  for (int node : {0, 1}) {
    const ControlResult adjusted = cluster.control(node, "adjust r0");
    EXPECT_EQ(adjusted.exit_status, 0) << adjusted.text;
    EXPECT_NE(adjusted.text.find("r0: verify-alg (none) -> crc32c\n"), std::string::npos)
        << adjusted.text;
    EXPECT_NE(adjusted.text.find("r0: c-max-rate 4194304 KiB/s -> 51200 KiB/s\n"),
              std::string::npos)
        << adjusted.text;
  }
  // The core runs with the new verify-alg: the verify it refused now starts and finishes.
  const ControlResult started = cluster.control(0, "verify r0 beta");
  EXPECT_EQ(started.exit_status, 0) << started.text;
  EXPECT_TRUE(wait_for_log(cluster.log_path(0), "verify-finished name:r0"))
      << read_file(cluster.log_path(0));
  EXPECT_NE(read_file(cluster.log_path(0)).find("out-of-sync-blocks:0"), std::string::npos);
  const ControlResult show = cluster.control(0, "show r0");
  EXPECT_NE(show.text.find("c-max-rate"), std::string::npos) << show.text;
  // Adjusted again with the same file: nothing left to change.
  const ControlResult again = cluster.control(0, "adjust r0");
  EXPECT_EQ(again.exit_status, 0) << again.text;
  EXPECT_EQ(again.text, "") << again.text;
  EXPECT_TRUE(cluster.wait_connected(0, 1, 1000));
}

TEST(StatusViews, MayPromoteAndPromotionScoreFollowTheRolesOfTheCluster) {
  LocalCluster cluster(2, 4u << 20);
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  // Both UpToDate, nobody Primary: 10000 (disk present) + 100 x 1 local UpToDate + 2 replicas.
  EXPECT_NE(
      cluster.control(1, "events2 r0 --now")
          .text.find("exists resource name:r0 role:Secondary suspended:no force-io-failures:no "
                     "may_promote:yes promotion_score:10102\n"),
      std::string::npos);
  ASSERT_TRUE(cluster.promote(0, error)) << error;
  // A Primary elsewhere: beta may not promote.
  const std::string beta = cluster.control(1, "events2 r0 --now --statistics").text;
  EXPECT_NE(beta.find("write-ordering:flush may_promote:no promotion_score:"),
            std::string::npos)
      << beta;
  EXPECT_NE(cluster.control(0, "status r0")
                .text.find("r0 role:Primary\n  disk:UpToDate open:no\n"
                           "  beta role:Secondary\n"
                           "    peer-disk:UpToDate\n"),
            std::string::npos);
  const ControlResult bad = cluster.control(0, "status r0 --colour");
  EXPECT_EQ(bad.exit_status, 2);
  EXPECT_NE(bad.text.find("unknown option '--colour'"), std::string::npos) << bad.text;
}

}  // namespace
}  // namespace ditto::testing
