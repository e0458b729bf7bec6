// Link and device latency models: a base delay plus seeded jitter, with an occasional tail.
//
// Pure and deterministic: integer arithmetic only (no libm, whose last bits may differ between
// builds), so a seed replays the same delays everywhere. Used by the simulator for network links
// and simulated disks, and by the userspace impairment layer for real daemons.
#pragma once

#include <cstdint>
#include <string>

#include "core/prng.h"
#include "core/result.h"
#include "core/types.h"

namespace ditto::netem {

struct LatencyModel {
  std::int64_t base_ns = 0;
  // Uniform jitter in [0, jitter_ns_max] added to every sample.
  std::int64_t jitter_ns_max = 0;
  // With probability tail_per_million / 1e6 a sample gets an extra uniform delay in
  // [0, tail_ns_max] (a congested queue, a slow disk sector).
  std::uint32_t tail_per_million = 0;
  std::int64_t tail_ns_max = 0;

  // The smallest and largest delay this model can produce.
  std::int64_t minimum_ns() const { return base_ns; }
  std::int64_t maximum_ns() const { return base_ns + jitter_ns_max + tail_ns_max; }

  Duration sample(Prng& prng) const;

  // Checks the parameters (they may come from a scenario file or a command line).
  [[nodiscard]] Status validate() const;

  friend bool operator==(const LatencyModel&, const LatencyModel&) = default;
};

// A LAN-like link: 50 µs one way, 0..20 µs jitter, 1 in 1000 packets up to 500 µs late.
LatencyModel lan_link();
// An NVMe-like disk: 20 µs, 0..30 µs jitter, 1 in 1000 I/Os up to 2 ms late.
LatencyModel nvme_disk();
// A fixed delay with no jitter (for tests that reason about exact times).
LatencyModel fixed(Duration delay);

std::string to_string(const LatencyModel& model);

}  // namespace ditto::netem
