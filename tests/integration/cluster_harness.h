// The integration tests' cluster harness lives in faults/ (the real-cluster fault injector runs
// the same daemons); the tests keep using it under ditto::testing.
#pragma once

#include "faults/local_cluster.h"

namespace ditto::testing {
using namespace ditto::faults;  // NOLINT(google-build-using-namespace)
}  // namespace ditto::testing
