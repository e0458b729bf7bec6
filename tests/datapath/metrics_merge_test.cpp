// Several resources' Prometheus texts become one exposition: each family once (HELP, TYPE),
// followed by every resource's samples of it.
#include <gtest/gtest.h>

#include "datapath/control_metrics.h"

namespace ditto::datapath {
namespace {

TEST(MergeMetricsTexts, EachFamilyIsDeclaredOnceKeepsEveryResourcesSamplesAndCountsResources) {
  const std::string red =
      "# HELP drbd_resource_resources Number of resources\n"
      "# TYPE drbd_resource_resources gauge\n"
      "drbd_resource_resources 1\n"
      "# HELP drbd_device_size_bytes Size\n"
      "# TYPE drbd_device_size_bytes gauge\n"
      "drbd_device_size_bytes{name=\"red\",volume=\"0\"} 4096\n";
  const std::string blue =
      "# HELP drbd_resource_resources Number of resources\n"
      "# TYPE drbd_resource_resources gauge\n"
      "drbd_resource_resources 1\n"
      "# HELP drbd_device_size_bytes Size\n"
      "# TYPE drbd_device_size_bytes gauge\n"
      "drbd_device_size_bytes{name=\"blue\",volume=\"0\"} 8192\n";
  EXPECT_EQ(merge_metrics_texts({red, blue}),
            "# HELP drbd_resource_resources Number of resources\n"
            "# TYPE drbd_resource_resources gauge\n"
            "drbd_resource_resources 2\n"
            "# HELP drbd_device_size_bytes Size\n"
            "# TYPE drbd_device_size_bytes gauge\n"
            "drbd_device_size_bytes{name=\"red\",volume=\"0\"} 4096\n"
            "drbd_device_size_bytes{name=\"blue\",volume=\"0\"} 8192\n");
  EXPECT_EQ(merge_metrics_texts({red}), red) << "one resource: its text unchanged";
  EXPECT_EQ(merge_metrics_texts({}), "");
}

}  // namespace
}  // namespace ditto::datapath
