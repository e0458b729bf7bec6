// `resync-after` in the configuration (core/config_resolve.cpp): it must name a defined
// resource, and following it from any resource must end — a cycle is refused at the option
// that closes it, as drbdadm and the kernel refuse it (ERR_RESYNC_AFTER_CYCLE).
#include <gtest/gtest.h>

#include <string>

#include "core/config.h"

namespace ditto::config {
namespace {

// Three resources on two hosts; `after` is the disk section of each (empty: none).
std::string three_resources(const std::string& after_r0, const std::string& after_r1,
                            const std::string& after_r2) {
  std::string text;
  int port = 7789;
  for (const auto& [name, after] : {std::pair{std::string("r0"), after_r0},
                                    std::pair{std::string("r1"), after_r1},
                                    std::pair{std::string("r2"), after_r2}}) {
    text += "resource " + name + " {\n";
    text += "  disk { " + (after.empty() ? std::string() : "resync-after " + after + ";") +
            " }\n";
    text += "  on alpha { node-id 0; address 10.0.0.1:" + std::to_string(port) +
            "; device minor 0; disk /dev/a; meta-disk internal; }\n";
    text += "  on beta { node-id 1; address 10.0.0.2:" + std::to_string(port) +
            "; device minor 0; disk /dev/b; meta-disk internal; }\n}\n";
    port += 1;
  }
  return text;
}

TEST(ConfigResyncAfter, AChainOfResourcesIsAccepted) {
  const Result<Config> parsed = parse(three_resources("", "r0", "r1/0"), "all.res", {});
  EXPECT_TRUE(parsed.ok()) << parsed.error().message;
}

TEST(ConfigResyncAfter, ACycleIsRefusedAtTheOptionThatClosesItNamingTheCycle) {
  const Result<Config> parsed = parse(three_resources("r2", "r0", "r1"), "all.res", {});
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().message,
            "all.res:7:10: resync-after closes a cycle: r0 -> r2 -> r1 -> r0");
}

TEST(ConfigResyncAfter, AResourceWaitingForItselfIsACycle) {
  const Result<Config> parsed = parse(three_resources("", "r1", ""), "all.res", {});
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().message.find("resync-after closes a cycle: r1 -> r1"),
            std::string::npos)
      << parsed.error().message;
}

TEST(ConfigResyncAfter, AnUndefinedResourceIsRefused) {
  const Result<Config> parsed = parse(three_resources("", "r9", ""), "all.res", {});
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().message.find("resync-after names resource 'r9', which is not defined"),
            std::string::npos)
      << parsed.error().message;
}

}  // namespace
}  // namespace ditto::config
