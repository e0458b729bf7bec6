// Tests of the drbd.conf parser (core/config.h): values, inheritance, located errors, includes,
// dump round trips, and agreement with drbdadm (the reference parser) where it is installed.
#include "core/config.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <tuple>

namespace ditto::config {
namespace {

Config parse_ok(std::string_view text, const IncludeResolver& resolver = {}) {
  Result<Config> result = parse(text, "r0.res", resolver);
  EXPECT_TRUE(result.ok()) << (result.ok() ? "" : result.error().message);
  return result.ok() ? std::move(result).value() : Config{};
}

std::string parse_error(std::string_view text, const IncludeResolver& resolver = {}) {
  Result<Config> result = parse(text, "r0.res", resolver);
  EXPECT_FALSE(result.ok()) << "parsed although it should not:\n" << text;
  return result.ok() ? std::string() : result.error().message;
}

constexpr std::string_view two_node_text = R"(# r0.res: two nodes, one diskless
global { usage-count no; }
resource r0 {
  net {
    protocol A;
    after-sb-0pri discard-zero-changes;
    shared-secret "a secret";
    use-rle;
  }
  on alpha {
    node-id 0;
    address 10.0.0.1:7789;
    device /dev/drbd0;
    disk /dev/vg/r0;
    meta-disk internal;
  }
  on beta {
    node-id 1;
    address ipv4 10.0.0.2:7789;
    device minor 1;
    disk none;
  }
}
)";

TEST(ConfigParse, TwoNodeResourceGivesHostsNodeIdsAddressesAndImplicitVolumeZero) {
  const Config config = parse_ok(two_node_text);
  ASSERT_EQ(config.resources.size(), 1u);
  const Resource& r0 = config.resources[0];
  EXPECT_EQ(r0.name, "r0");
  EXPECT_EQ(r0.location.line, 3u);
  EXPECT_EQ(r0.protocol(), Protocol::a);
  ASSERT_NE(r0.net.find("shared-secret"), nullptr);
  EXPECT_EQ(r0.net.find("shared-secret")->value_text(), "a secret");
  EXPECT_EQ(r0.net.find("use-rle")->value_text(), "yes");
  EXPECT_EQ(r0.net.find("after-sb-0pri")->location.to_string(), "r0.res:6:5");
  ASSERT_NE(config.global.find("usage-count"), nullptr);

  ASSERT_EQ(r0.hosts.size(), 2u);
  const Host* alpha = r0.find_host("alpha");
  ASSERT_NE(alpha, nullptr);
  EXPECT_EQ(alpha->node_id, NodeId{0});
  EXPECT_EQ(alpha->address_family, "ipv4");
  EXPECT_EQ(alpha->address, "10.0.0.1");
  EXPECT_EQ(alpha->port, 7789);
  ASSERT_EQ(alpha->volumes.size(), 1u);
  EXPECT_EQ(alpha->volumes[0].number, 0u);
  EXPECT_EQ(alpha->volumes[0].minor, 0u);
  EXPECT_EQ(alpha->volumes[0].device, "/dev/drbd0");
  EXPECT_EQ(alpha->volumes[0].disk, "/dev/vg/r0");
  EXPECT_EQ(alpha->volumes[0].meta_disk, "internal");
  EXPECT_FALSE(alpha->volumes[0].diskless());

  const Host* beta = r0.find_host(NodeId{1});
  ASSERT_NE(beta, nullptr);
  EXPECT_EQ(beta->name, "beta");
  ASSERT_EQ(beta->volumes.size(), 1u);
  EXPECT_EQ(beta->volumes[0].device, "/dev/drbd1");
  EXPECT_TRUE(beta->volumes[0].diskless());
  EXPECT_EQ(r0.find_host("gamma"), nullptr);
  EXPECT_EQ(config.find_resource("r0"), &r0);
  EXPECT_EQ(config.find_resource("r1"), nullptr);
}

TEST(ConfigParse, TwoHostsWithoutConnectionSectionsGetOneImplicitConnection) {
  const Config config = parse_ok(two_node_text);
  const std::vector<Connection> connections = config.resources[0].effective_connections();
  ASSERT_EQ(connections.size(), 1u);
  const Connection& connection = connections[0];
  EXPECT_EQ(connection.first.host, "alpha");
  EXPECT_EQ(connection.second.host, "beta");
  ASSERT_EQ(connection.paths.size(), 1u);
  EXPECT_EQ(connection.paths[0].first.address, "10.0.0.1");
  EXPECT_EQ(connection.paths[0].second.address, "10.0.0.2");
  EXPECT_EQ(connection.paths[0].second.port, 7789);
  EXPECT_EQ(connection.protocol(), Protocol::a);  // inherited from the resource's net section
  ASSERT_NE(connection.net.find("protocol"), nullptr);
  EXPECT_TRUE(connection.net.find("protocol")->inherited);
}

constexpr std::string_view three_node_text = R"(resource r1 {
  device minor 5;
  disk /dev/vg/r1;
  meta-disk internal;
  options { quorum majority; on-no-quorum io-error; }
  on a { node-id 0; address 10.0.0.1:7000; }
  on b { node-id 1; address 10.0.0.2:7000; }
  on c { node-id 2; address 10.0.0.3:7000; disk none; }
  connection-mesh {
    hosts a b c;
    net { protocol B; }
  }
}
)";

TEST(ConfigParse, ThreeNodeMeshExpandsToOneConnectionPerHostPair) {
  const Config config = parse_ok(three_node_text);
  const Resource& r1 = config.resources.at(0);
  ASSERT_EQ(r1.hosts.size(), 3u);
  for (const Host& host : r1.hosts) {
    ASSERT_EQ(host.volumes.size(), 1u) << host.name;
    EXPECT_EQ(host.volumes[0].minor, 5u);
    EXPECT_EQ(host.volumes[0].device, "/dev/drbd5");
    EXPECT_EQ(host.volumes[0].disk, host.name == "c" ? "none" : "/dev/vg/r1");
  }
  EXPECT_EQ(r1.options.find("quorum")->value_text(), "majority");
  ASSERT_EQ(r1.meshes.size(), 1u);
  EXPECT_EQ(r1.meshes[0].hosts, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(r1.protocol(), Protocol::c);  // the mesh's protocol is per connection

  const std::vector<Connection> connections = r1.effective_connections();
  std::set<std::tuple<std::string, std::string, std::string, std::string>> pairs;
  for (const Connection& connection : connections) {
    EXPECT_TRUE(connection.from_mesh);
    EXPECT_EQ(connection.protocol(), Protocol::b);
    ASSERT_EQ(connection.paths.size(), 1u);
    pairs.insert({connection.first.host, connection.second.host, connection.paths[0].first.address,
                  connection.paths[0].second.address});
  }
  const std::set<std::tuple<std::string, std::string, std::string, std::string>> expected{
      {"a", "b", "10.0.0.1", "10.0.0.2"},
      {"a", "c", "10.0.0.1", "10.0.0.3"},
      {"b", "c", "10.0.0.2", "10.0.0.3"}};
  EXPECT_EQ(pairs, expected);
}

constexpr std::string_view paths_text = R"(resource r2 {
  volume 0 { device minor 10; disk /dev/a; meta-disk internal; }
  volume 1 { device minor 11; disk /dev/b; }
  on x { node-id 3; address ipv6 [fd00::1]:7010; }
  on y {
    node-id 4;
    address ipv6 [fd00::2]:7010;
    volume 1 { disk /dev/yb; disk { resync-rate 10M; } }
  }
  connection {
    path { host x address ipv6 [fd00::1]:7010; host y address ipv6 [fd00::2]:7010; }
    path { host y address 192.168.0.2:7011; host x address 192.168.0.1:7011; }
    net { protocol B; }
  }
}
)";

TEST(ConfigParse, ExplicitConnectionKeepsEveryPathAndHostsOverrideResourceVolumes) {
  const Config config = parse_ok(paths_text);
  const Resource& r2 = config.resources.at(0);
  const Host* x = r2.find_host("x");
  const Host* y = r2.find_host("y");
  ASSERT_TRUE(x != nullptr && y != nullptr);
  EXPECT_EQ(x->address_family, "ipv6");
  EXPECT_EQ(x->address, "fd00::1");
  ASSERT_EQ(x->volumes.size(), 2u);
  ASSERT_EQ(y->volumes.size(), 2u);
  EXPECT_EQ(x->volumes[1].disk, "/dev/b");
  EXPECT_EQ(y->volumes[1].disk, "/dev/yb");
  EXPECT_EQ(y->volumes[1].minor, 11u);  // from the resource-level volume 1
  EXPECT_EQ(y->volumes[1].disk_options.find("resync-rate")->value_text(), "10M");
  EXPECT_EQ(x->volumes[1].disk_options.find("resync-rate"), nullptr);

  const std::vector<Connection> connections = r2.effective_connections();
  ASSERT_EQ(connections.size(), 1u);
  const Connection& connection = connections[0];
  EXPECT_FALSE(connection.from_mesh);
  EXPECT_EQ(connection.protocol(), Protocol::b);
  ASSERT_EQ(connection.paths.size(), 2u);
  // The second path was written y-first; it comes back oriented like the connection (x → y).
  EXPECT_EQ(connection.paths[1].first.host, "x");
  EXPECT_EQ(connection.paths[1].first.address, "192.168.0.1");
  EXPECT_EQ(connection.paths[1].second.port, 7011);
}

TEST(ConfigParse, ResourcesInheritCommonOptionsUnlessTheySetThemThemselves) {
  const Config config = parse_ok(R"(common {
  net { protocol B; ping-timeout 10; }
  disk { on-io-error detach; }
  handlers { fence-peer "/usr/lib/drbd/crm-fence-peer.9.sh"; }
}
resource r0 {
  net { protocol C; }
  on a { node-id 0; address 10.0.0.1:7000; device minor 0; disk /dev/x; }
  on b { node-id 1; address 10.0.0.2:7000; device minor 0; disk /dev/x; }
}
resource r1 {
  on a { node-id 0; address 10.0.0.1:7001; device minor 1; disk /dev/y; }
  on b { node-id 1; address 10.0.0.2:7001; device minor 1; disk /dev/y; }
}
)");
  ASSERT_EQ(config.resources.size(), 2u);
  const Resource& r0 = config.resources[0];
  const Resource& r1 = config.resources[1];
  EXPECT_EQ(r0.protocol(), Protocol::c);
  EXPECT_FALSE(r0.net.find("protocol")->inherited);
  EXPECT_EQ(r1.protocol(), Protocol::b);
  EXPECT_TRUE(r1.net.find("protocol")->inherited);
  EXPECT_EQ(r0.net.find("ping-timeout")->value_text(), "10");
  EXPECT_EQ(r1.disk.find("on-io-error")->value_text(), "detach");
  EXPECT_EQ(r1.handlers.find("fence-peer")->value_text(), "/usr/lib/drbd/crm-fence-peer.9.sh");
  // Volumes inherit the (effective) resource disk section.
  EXPECT_EQ(r1.hosts[0].volumes[0].disk_options.find("on-io-error")->value_text(), "detach");
  EXPECT_EQ(config.common_net.find("protocol")->value_text(), "B");
}

TEST(ConfigParse, CommentsSkipBlocksAndQuotedNamesAreAccepted) {
  const Config config = parse_ok(R"(# leading comment
skip { resource old { this is { ignored } } }
resource "r0" { # trailing comment
  on "alpha" { node-id 0; address 10.0.0.1:7000; device minor 0; disk "/dev/my disk"; }
  on beta { node-id 31; address 10.0.0.2:7000; device minor 0; disk none; }
}
)");
  ASSERT_EQ(config.resources.size(), 1u);
  EXPECT_EQ(config.resources[0].hosts[0].volumes[0].disk, "/dev/my disk");
  EXPECT_EQ(config.resources[0].hosts[1].node_id, NodeId{31});
}

// ---- Located errors -------------------------------------------------------------------------

TEST(ConfigErrors, UnknownKeywordInNetSectionNamesFileLineAndColumn) {
  const std::string text = R"(# r0.res
resource r0 {
  on alpha {
    node-id 0;
    address 10.0.0.1:7789;
    device minor 0;
    disk /dev/vg/r0;
    meta-disk internal;
  }
  on beta { node-id 1; address 10.0.0.2:7789; device minor 0; disk none; }
  net {
    protocl C;
  }
}
)";
  EXPECT_EQ(parse_error(text), "r0.res:12:5: unknown keyword 'protocl' in net section");
}

TEST(ConfigErrors, HostWithoutNodeIdIsReportedAtItsOnKeyword) {
  const std::string text = R"(# r0.res
resource r0 {
  on beta {
    node-id 1;
    address 10.0.0.2:7789; device minor 0; disk none;
  }
  on alpha {
    address 10.0.0.1:7789;
    device minor 0;
    disk /dev/vg/r0;
  }
}
)";
  EXPECT_EQ(parse_error(text), "r0.res:7:3: host 'alpha' has no node-id");
}

TEST(ConfigErrors, DuplicateNodeIdNamesBothHosts) {
  EXPECT_EQ(parse_error(R"(resource r0 {
  on a { node-id 1; address 10.0.0.1:7000; device minor 0; disk none; }
  on b { node-id 1; address 10.0.0.2:7000; device minor 0; disk none; }
}
)"),
            "r0.res:3:10: node-id 1 of host 'b' is already used by host 'a'");
}

TEST(ConfigErrors, NodeIdAbove31IsOutOfRange) {
  EXPECT_EQ(parse_error("resource r0 { on a { node-id 32; } }"),
            "r0.res:1:30: node-id 32 out of range 0..31");
}

TEST(ConfigErrors, DuplicateAddressNamesBothHosts) {
  EXPECT_EQ(parse_error(R"(resource r0 {
  on a { node-id 0; address 10.0.0.1:7000; device minor 0; disk none; }
  on b { node-id 1; address 10.0.0.1:7000; device minor 0; disk none; }
}
)"),
            "r0.res:3:21: address 10.0.0.1:7000 of host 'b' is already used by host 'a'");
}

TEST(ConfigErrors, PortOutsideOneTo65535IsRejectedAtTheAddress) {
  EXPECT_EQ(parse_error("resource r0 {\n  on a { node-id 0; address 10.0.0.1:70000; } }"),
            "r0.res:2:29: port '70000' out of range 1..65535");
  EXPECT_EQ(parse_error("resource r0 { on a { node-id 0; address 10.0.0.1:0; } }"),
            "r0.res:1:41: port '0' out of range 1..65535");
}

TEST(ConfigErrors, MalformedAddressesAreRejected) {
  EXPECT_EQ(parse_error("resource r0 { on a { address 10.0.0.256:7000; } }"),
            "r0.res:1:30: invalid ipv4 address '10.0.0.256:7000'");
  EXPECT_EQ(parse_error("resource r0 { on a { address 10.0.0.1; } }"),
            "r0.res:1:30: address '10.0.0.1' is not IP:PORT");
  EXPECT_EQ(parse_error("resource r0 { on a { address [fd00::1]:7000; } }"),
            "r0.res:1:30: address '[fd00::1]:7000' needs the 'ipv6' keyword");
  EXPECT_EQ(parse_error("resource r0 { on a { address sdp 10.0.0.1:7000; } }"),
            "r0.res:1:30: address family 'sdp' is not supported yet");
}

TEST(ConfigErrors, UnterminatedStringPointsAtItsOpeningQuote) {
  EXPECT_EQ(parse_error("resource r0 {\n  net { shared-secret \"abc; }\n}\n"),
            "r0.res:2:23: unterminated string");
  EXPECT_EQ(parse_error("resource r0 { net { shared-secret \"abc"),
            "r0.res:1:35: unterminated string");
}

TEST(ConfigErrors, MissingSemicolonNamesTheStatementAndWhatCameInstead) {
  EXPECT_EQ(parse_error("resource r0 {\n  on a {\n    node-id 0\n  }\n}\n"),
            "r0.res:4:3: missing ';' after 'node-id 0' (got '}')");
  EXPECT_EQ(parse_error("resource r0 {\n  net { protocol C }\n}\n"),
            "r0.res:2:20: missing ';' after 'protocol C' (got '}')");
  // A forgotten ';' before the next option shows up as a second value.
  EXPECT_EQ(parse_error("resource r0 {\n  net {\n    protocol C\n    ping-int 10;\n  }\n}\n"),
            "r0.res:4:5: missing ';' after 'protocol C'");
}

TEST(ConfigErrors, ProtocolOtherThanABOrCIsRejected) {
  EXPECT_EQ(parse_error("resource r0 {\n  net { protocol D; }\n}\n"),
            "r0.res:2:18: invalid value 'D' for protocol (expected A | B | C)");
}

TEST(ConfigErrors, EnumerationAndBooleanValuesAreChecked) {
  EXPECT_EQ(parse_error("resource r0 { net { fencing maybe; } }"),
            "r0.res:1:29: invalid value 'maybe' for fencing (expected dont-care | resource-only "
            "| resource-and-stonith)");
  EXPECT_EQ(parse_error("resource r0 { disk { disk-flushes perhaps; } }"),
            "r0.res:1:35: invalid value 'perhaps' for disk-flushes (expected yes | no)");
  EXPECT_EQ(parse_error("resource r0 { options { quorum most; } }"),
            "r0.res:1:32: invalid value 'most' for quorum (expected off | majority | all | a "
            "number)");
  EXPECT_EQ(parse_error("resource r0 { net { ping-int soon; } }"),
            "r0.res:1:30: invalid value 'soon' for ping-int (expected a number)");
}

// allow-two-primaries requires protocol C (drbd_nl.c _check_net_options, §2.1 item 7).
constexpr std::string_view two_primaries_hosts = R"(
  on alpha { node-id 0; address 10.0.0.1:7789; device minor 0; disk /dev/vg/r0; }
  on beta { node-id 1; address 10.0.0.2:7789; device minor 0; disk /dev/vg/r0; }
})";

TEST(ConfigErrors, AllowTwoPrimariesWithProtocolAOrBIsRejectedAtTheOption) {
  EXPECT_EQ(parse_error("resource r0 {\n  net { protocol A; allow-two-primaries yes; }" +
                        std::string(two_primaries_hosts)),
            "r0.res:2:21: allow-two-primaries requires protocol C (the connection between "
            "'alpha' and 'beta' uses protocol A)");
  // Inherited from common, with the protocol set on the connection.
  EXPECT_EQ(parse_error("common { net { allow-two-primaries; } }\nresource r0 {\n"
                        "  connection { host alpha; host beta; net { protocol B; } }" +
                        std::string(two_primaries_hosts)),
            "r0.res:1:16: allow-two-primaries requires protocol C (the connection between "
            "'alpha' and 'beta' uses protocol B)");
}

TEST(ConfigParse, AllowTwoPrimariesIsAcceptedWithProtocolCAndOffWithAnyProtocol) {
  const Config on = parse_ok("resource r0 {\n  net { protocol C; allow-two-primaries yes; }" +
                             std::string(two_primaries_hosts));
  EXPECT_EQ(on.resources[0].net.find("allow-two-primaries")->value_text(), "yes");
  const Config off = parse_ok("resource r0 {\n  net { protocol A; allow-two-primaries no; }" +
                              std::string(two_primaries_hosts));
  EXPECT_EQ(off.resources[0].protocol(), Protocol::a);
}

TEST(ConfigErrors, UnknownKeywordsAreRejectedInEveryScope) {
  EXPECT_EQ(parse_error("resorce r0 { }"), "r0.res:1:1: unknown keyword 'resorce' at top level");
  EXPECT_EQ(parse_error("resource r0 { hots a; }"),
            "r0.res:1:15: unknown keyword 'hots' in resource section");
  EXPECT_EQ(parse_error("resource r0 { on a { node_id 0; } }"),
            "r0.res:1:22: unknown keyword 'node_id' in on section");
  EXPECT_EQ(parse_error("common { nett { } }"),
            "r0.res:1:10: unknown keyword 'nett' in common section");
  EXPECT_EQ(parse_error("resource r0 { connection-mesh { host a b; } }"),
            "r0.res:1:33: unknown keyword 'host' in connection-mesh section");
  EXPECT_EQ(parse_error("resource r0 { handlers { fence-peers x; } }"),
            "r0.res:1:26: unknown keyword 'fence-peers' in handlers section");
}

TEST(ConfigErrors, MetaDiskOtherThanInternalIsNotSupportedYet) {
  EXPECT_EQ(parse_error("resource r0 { on a { meta-disk /dev/md0; } }"),
            "r0.res:1:32: meta-disk '/dev/md0' is not supported yet (only internal)");
}

TEST(ConfigErrors, DiskMustBeAnAbsolutePathOrNone) {
  EXPECT_EQ(parse_error("resource r0 { on a { disk vg/r0; } }"),
            "r0.res:1:27: disk 'vg/r0' is neither an absolute path nor 'none'");
}

TEST(ConfigErrors, InvalidAndDuplicateResourceNamesAreRejected) {
  EXPECT_EQ(parse_error("resource r/0 { }"),
            "r0.res:1:10: invalid resource name 'r/0' (use letters, digits, '_', '-', '.', '+'; "
            "at most 64 bytes; not 'all')");
  EXPECT_EQ(parse_error("resource all { }").substr(0, 41),
            "r0.res:1:10: invalid resource name 'all' ");
  const std::string host = "on a { node-id 0; address 10.0.0.1:7000; device minor 0; disk none; }";
  EXPECT_EQ(parse_error("resource r0 { " + host + " }\nresource r0 { " + host + " }"),
            "r0.res:2:10: resource 'r0' defined twice (first at r0.res:1:1)");
}

TEST(ConfigErrors, VolumesNeedAMinorAndADisk) {
  EXPECT_EQ(parse_error("resource r0 { on a { node-id 0; address 10.0.0.1:7000; disk none; } }"),
            "r0.res:1:56: volume 0 of host 'a' has no device minor ('device minor N;' or "
            "'device /dev/drbdN;')");
  EXPECT_EQ(parse_error("resource r0 {\n  device minor 0;\n  on a { node-id 0; address "
                        "10.0.0.1:7000; } }"),
            "r0.res:2:3: volume 0 of host 'a' has no disk (write 'disk none;' for a diskless "
            "client)");
  EXPECT_EQ(parse_error("resource r0 { on a { node-id 0; address 10.0.0.1:7000; } }"),
            "r0.res:1:15: host 'a' has no volume (give 'device' and 'disk', or 'volume N { ... "
            "}')");
}

TEST(ConfigErrors, ConnectionsMustNameDefinedHosts) {
  const std::string hosts = R"(
  on a { node-id 0; address 10.0.0.1:7000; device minor 0; disk none; }
  on b { node-id 1; address 10.0.0.2:7000; device minor 0; disk none; }
  on c { node-id 2; address 10.0.0.3:7000; device minor 0; disk none; })";
  EXPECT_EQ(parse_error("resource r0 {" + hosts + "\n}"),
            "r0.res:1:1: resource 'r0' has more than two 'on' sections: use 'connection' or "
            "'connection-mesh' sections");
  EXPECT_EQ(parse_error("resource r0 {" + hosts + "\n  connection-mesh { hosts a b d; }\n}"),
            "r0.res:5:3: connection-mesh names host 'd', which has no 'on' section in resource "
            "'r0'");
  EXPECT_EQ(parse_error("resource r0 {" + hosts + "\n  connection { host a; host z; }\n}"),
            "r0.res:5:24: host 'z' has no 'on' section in resource 'r0'");
  EXPECT_EQ(parse_error("resource r0 {" + hosts +
                        "\n  connection { host a; host b; }\n  connection { host b; host a; }\n}"),
            "r0.res:6:3: hosts 'b' and 'a' connected twice");
}

// ---- Includes -------------------------------------------------------------------------------

TEST(ConfigInclude, IncludeWithoutResolverIsAnError) {
  EXPECT_EQ(parse_error("include \"drbd.d/global_common.conf\";\n"),
            "r0.res:1:1: cannot include 'drbd.d/global_common.conf': no include resolver was "
            "given");
}

TEST(ConfigInclude, ResolverSuppliesIncludedTextAndErrorsNameTheIncludedFile) {
  std::map<std::string, std::string> files{
      {"common.conf", "common { net { protocol A; } }\n"},
      {"r0.res", "include \"hosts.inc\";\n"},
      {"hosts.inc",
       "on a { node-id 0; address 10.0.0.1:7000; device minor 0; disk /dev/x; }\n"
       "on b { node-id 1; address 10.0.0.2:7000; device minor 0; disk /dev/x; }\n"},
      {"bad.res", "resource r9 {\n  net { protocl C; }\n}\n"},
      {"loop.res", "include loop.res;\n"}};
  std::vector<std::string> asked;
  const IncludeResolver resolver = [&](std::string_view path) -> std::optional<std::string> {
    asked.emplace_back(path);
    const auto found = files.find(std::string(path));
    if (found == files.end()) return std::nullopt;
    return found->second;
  };
  const Config config =
      parse_ok("include \"common.conf\";\nresource r0 {\n  include hosts.inc;\n}\n", resolver);
  ASSERT_EQ(config.resources.size(), 1u);
  EXPECT_EQ(config.resources[0].protocol(), Protocol::a);
  EXPECT_EQ(config.resources[0].hosts.size(), 2u);
  EXPECT_EQ(config.resources[0].hosts[1].location.to_string(), "hosts.inc:2:1");
  EXPECT_EQ(asked, (std::vector<std::string>{"common.conf", "hosts.inc"}));

  EXPECT_EQ(parse_error("include \"bad.res\";", resolver),
            "bad.res:2:9: unknown keyword 'protocl' in net section");
  EXPECT_EQ(parse_error("include \"missing.res\";", resolver),
            "r0.res:1:9: cannot read included file 'missing.res'");
  EXPECT_EQ(parse_error("include \"drbd.d/*.res\";", resolver),
            "r0.res:1:9: include of 'drbd.d/*.res': glob patterns are not supported yet");
  // loop.res includes itself forever.
  EXPECT_EQ(parse_error("include loop.res;", resolver),
            "loop.res:1:1: cannot include 'loop.res': includes nested more than 16 deep");
}

// ---- dump -----------------------------------------------------------------------------------

// The dump without its "# defined at FILE:LINE:COLUMN" comments.
std::string without_comments(const std::string& text) {
  std::istringstream lines(text);
  std::string result;
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("#")) result += line + "\n";
  }
  return result;
}

TEST(ConfigDump, DumpReparsesToTheSameConfiguration) {
  for (const std::string_view text : {two_node_text, three_node_text, paths_text}) {
    const Config config = parse_ok(text);
    const std::string dumped = dump(config);
    const Config again = parse_ok(dumped);
    EXPECT_EQ(without_comments(dump(again)), without_comments(dumped))
        << "dump is not a fixed point:\n"
        << dumped;
    ASSERT_EQ(again.resources.size(), config.resources.size());
    const Resource& before = config.resources[0];
    const Resource& after = again.resources[0];
    ASSERT_EQ(after.hosts.size(), before.hosts.size()) << dumped;
    for (std::size_t i = 0; i < before.hosts.size(); ++i) {
      EXPECT_EQ(after.hosts[i].name, before.hosts[i].name);
      EXPECT_EQ(after.hosts[i].node_id, before.hosts[i].node_id);
      EXPECT_EQ(after.hosts[i].address, before.hosts[i].address);
      EXPECT_EQ(after.hosts[i].port, before.hosts[i].port);
      ASSERT_EQ(after.hosts[i].volumes.size(), before.hosts[i].volumes.size());
      for (std::size_t v = 0; v < before.hosts[i].volumes.size(); ++v) {
        EXPECT_EQ(after.hosts[i].volumes[v].disk, before.hosts[i].volumes[v].disk);
        EXPECT_EQ(after.hosts[i].volumes[v].minor, before.hosts[i].volumes[v].minor);
      }
    }
    EXPECT_EQ(after.effective_connections().size(), before.effective_connections().size());
    EXPECT_EQ(after.net.options.size(), before.net.options.size());
  }
}

TEST(ConfigDump, DumpLooksLikeDrbdadmDump) {
  const std::string dumped = dump(parse_ok(two_node_text));
  EXPECT_NE(dumped.find("resource r0 {\n    on alpha {\n        node-id 0;\n"
                        "        address          ipv4 10.0.0.1:7789;\n"),
            std::string::npos)
      << dumped;
  EXPECT_NE(dumped.find("        shared-secret    \"a secret\";\n"), std::string::npos) << dumped;
  EXPECT_NE(dumped.find("            device           minor 1;\n"), std::string::npos) << dumped;
}

// ---- Robustness -----------------------------------------------------------------------------

// Config text is untrusted input: any mangling must give a configuration or a located error,
// never a crash, an assertion or a hang (ASan/UBSan builds check the first two).
TEST(ConfigRobustness, MangledConfigsGiveAConfigOrALocatedErrorNeverACrash) {
  std::mt19937 random(20240611);  // fixed seed: the run is reproducible
  const std::string pieces[] = {"{",    "}",    ";",       "\"",      "#",       " ",
                                "\n",   "on",   "volume",  "include", "node-id", "address",
                                "disk", "7000", "[::1]:1", "none",    "x"};
  std::size_t parsed = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string text(round % 3 == 0   ? two_node_text
                     : round % 3 == 1 ? three_node_text
                                      : paths_text);
    const int edits = 1 + static_cast<int>(random() % 4);
    for (int edit = 0; edit < edits; ++edit) {
      const std::size_t at = random() % (text.size() + 1);
      if (random() % 2 == 0 && at < text.size()) {
        text.erase(at, 1 + random() % 8);
      } else {
        text.insert(at, pieces[random() % std::size(pieces)]);
      }
    }
    const IncludeResolver resolver = [](std::string_view) { return std::optional<std::string>(); };
    Result<Config> result = parse(text, "m.res", resolver);
    if (result.ok()) {
      parsed += 1;
      EXPECT_TRUE(parse(dump(result.value()), "again.res").ok()) << text;
    } else {
      EXPECT_TRUE(result.error().message.starts_with("m.res:")) << result.error().message;
    }
  }
  EXPECT_GT(parsed, 0u);  // some mutations (comments, white space) keep the file valid
}

// ---- Agreement with drbdadm ----------------------------------------------------------------

// (resource, host, node-id, address, volume, disk): what a node needs to know about its peers.
using Fact = std::tuple<std::string, std::string, int, std::string, std::uint32_t, std::string>;

std::set<Fact> facts_of(const Config& config) {
  std::set<Fact> facts;
  for (const Resource& resource : config.resources) {
    for (const Host& host : resource.hosts) {
      const std::string address =
          host.address_family + " " +
          (host.address_family == "ipv6" ? "[" + host.address + "]" : host.address) + ":" +
          std::to_string(host.port);
      for (const Volume& volume : host.volumes) {
        facts.insert(
            {resource.name, host.name, host.node_id.value, address, volume.number, volume.disk});
      }
    }
  }
  return facts;
}

struct DumpedHost {
  int node_id = -1;
  std::string address;
  std::map<std::uint32_t, std::string> disks;  // by volume
};

struct DumpedResource {
  std::map<std::uint32_t, std::string> disks;  // resource-level, by volume
  std::map<std::string, DumpedHost> hosts;
};

// Reads the facts out of `drbdadm dump` text (one statement or block opening per line), merging
// resource-level disks into hosts that do not set their own, as drbdadm does.
std::set<Fact> facts_of_drbdadm_dump(const std::string& text) {
  std::map<std::string, DumpedResource> resources;
  std::vector<std::vector<std::string>> scopes;  // the words of each open block's head
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream stream(line);
    std::vector<std::string> words;
    for (std::string word; stream >> word;) words.push_back(word);
    if (words.empty() || words[0].starts_with("#")) continue;
    if (words.back() == "{") {
      words.pop_back();
      scopes.push_back(words);
      continue;
    }
    if (words[0] == "}") {
      if (!scopes.empty()) scopes.pop_back();
      continue;
    }
    if (scopes.empty() || scopes[0].at(0) != "resource") continue;
    DumpedResource& resource = resources[scopes[0].at(1)];
    DumpedHost* host =
        scopes.size() > 1 && scopes[1].at(0) == "on" ? &resource.hosts[scopes[1].at(1)] : nullptr;
    const bool in_volume = scopes.back().at(0) == "volume";
    const bool in_option_section =
        !in_volume && scopes.back().at(0) != "on" && scopes.back().at(0) != "resource";
    std::string value = words.size() > 1 ? words.back() : "";
    if (value.ends_with(";")) value.pop_back();
    if (value.size() >= 2 && value.front() == '"') value = value.substr(1, value.size() - 2);
    if (host != nullptr && words[0] == "node-id") host->node_id = std::stoi(value);
    if (host != nullptr && words[0] == "address") host->address = words.at(1) + " " + value;
    if (words[0] == "disk" && !in_option_section) {
      const std::uint32_t volume = in_volume ? std::stoul(scopes.back().at(1)) : 0;
      (host != nullptr ? host->disks : resource.disks)[volume] = value;
    }
  }
  std::set<Fact> facts;
  for (const auto& [resource_name, resource] : resources) {
    for (const auto& [host_name, host] : resource.hosts) {
      std::map<std::uint32_t, std::string> disks = resource.disks;
      for (const auto& [volume, disk] : host.disks) disks[volume] = disk;
      for (const auto& [volume, disk] : disks) {
        facts.insert({resource_name, host_name, host.node_id, host.address, volume, disk});
      }
    }
  }
  return facts;
}

std::optional<std::string> run_drbdadm_dump(const std::filesystem::path& file) {
  const std::string command = "drbdadm -c '" + file.string() + "' dump all 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return std::nullopt;
  std::string output;
  std::array<char, 4096> buffer{};
  while (true) {
    const std::size_t n = fread(buffer.data(), 1, buffer.size(), pipe);
    if (n == 0) break;
    output.append(buffer.data(), n);
  }
  const int status = pclose(pipe);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  return output;
}

TEST(ConfigDrbdadm, DrbdadmDumpFindsTheSameHostsNodeIdsAddressesAndDisksAsWeDo) {
  if (std::system("command -v drbdadm >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "drbdadm is not installed";
  }
  const std::filesystem::path directory =
      std::filesystem::temp_directory_path() / ("ditto-config-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(directory);
  const std::string multi_resource = std::string(paths_text) + R"(resource r3 {
  on "x" { node-id 0; address 10.1.0.1:7020;
    volume 0 { device minor 20; disk "/dev/c"; meta-disk internal; disk { al-extents 6007; } } }
  on y { node-id 1; address 10.1.0.2:7020;
    volume 0 { device /dev/drbd21 minor 21; disk none; meta-disk internal; } }
}
)";
  int index = 0;
  for (const std::string_view text :
       {two_node_text, three_node_text, std::string_view(multi_resource)}) {
    SCOPED_TRACE(text);
    const Config config = parse_ok(text);
    const std::set<Fact> ours = facts_of(config);
    ASSERT_FALSE(ours.empty());
    const std::filesystem::path original = directory / ("sample" + std::to_string(index) + ".res");
    const std::filesystem::path dumped = directory / ("dumped" + std::to_string(index) + ".res");
    index += 1;
    std::ofstream(original) << text;
    std::ofstream(dumped) << dump(config);
    const std::optional<std::string> reference = run_drbdadm_dump(original);
    ASSERT_TRUE(reference.has_value()) << "drbdadm rejected " << original;
    EXPECT_EQ(facts_of_drbdadm_dump(*reference), ours) << *reference;
    // drbdadm also accepts our dump and reads the same facts from it.
    const std::optional<std::string> of_our_dump = run_drbdadm_dump(dumped);
    ASSERT_TRUE(of_our_dump.has_value()) << "drbdadm rejected our dump:\n" << dump(config);
    EXPECT_EQ(facts_of_drbdadm_dump(*of_our_dump), ours) << *of_our_dump;
  }
  std::filesystem::remove_all(directory);
}

// The value each of `keys` has in a dump (the last statement naming it), e.g. "pull-ahead".
std::map<std::string, std::string> option_values(const std::string& text,
                                                 const std::set<std::string>& keys) {
  std::map<std::string, std::string> values;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream stream(line);
    std::string key;
    std::string value;
    if (!(stream >> key >> value) || keys.count(key) == 0) continue;
    if (value.ends_with(";")) value.pop_back();
    values[key] = value;
  }
  return values;
}

TEST(ConfigDrbdadm, DrbdadmDumpShowsTheCongestionOptionsAsOurDumpDoes) {
  if (std::system("command -v drbdadm >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "drbdadm is not installed";
  }
  constexpr std::string_view text = R"(resource r9 {
  net { protocol A; on-congestion pull-ahead; congestion-fill 2M; congestion-extents 500; }
  on a { node-id 0; address 10.9.0.1:7009;
    volume 0 { device minor 9; disk /dev/x; meta-disk internal; } }
  on b { node-id 1; address 10.9.0.2:7009;
    volume 0 { device minor 9; disk /dev/y; meta-disk internal; } }
}
)";
  const std::set<std::string> keys{"protocol", "on-congestion", "congestion-fill",
                                   "congestion-extents"};
  const Config config = parse_ok(text);
  const std::string ours = dump(config);
  const std::map<std::string, std::string> expected{{"protocol", "A"},
                                                    {"on-congestion", "pull-ahead"},
                                                    {"congestion-fill", "2M"},
                                                    {"congestion-extents", "500"}};
  EXPECT_EQ(option_values(ours, keys), expected) << ours;
  const std::filesystem::path directory =
      std::filesystem::temp_directory_path() / ("ditto-congest-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(directory);
  std::ofstream(directory / "original.res") << text;
  std::ofstream(directory / "dumped.res") << ours;
  const std::optional<std::string> reference = run_drbdadm_dump(directory / "original.res");
  ASSERT_TRUE(reference.has_value());
  EXPECT_EQ(option_values(*reference, keys), expected) << *reference;
  const std::optional<std::string> of_our_dump = run_drbdadm_dump(directory / "dumped.res");
  ASSERT_TRUE(of_our_dump.has_value()) << "drbdadm rejected our dump:\n" << ours;
  EXPECT_EQ(option_values(*of_our_dump, keys), expected) << *of_our_dump;
  std::filesystem::remove_all(directory);
}

}  // namespace
}  // namespace ditto::config
