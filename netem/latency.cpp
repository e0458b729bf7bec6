#include "netem/latency.h"

namespace ditto::netem {

Duration LatencyModel::sample(Prng& prng) const {
  DITTO_ASSERT(base_ns >= 0 && jitter_ns_max >= 0 && tail_ns_max >= 0);
  std::int64_t delay_ns = base_ns;
  if (jitter_ns_max > 0) {
    delay_ns +=
        static_cast<std::int64_t>(prng.below(static_cast<std::uint64_t>(jitter_ns_max) + 1));
  }
  if (tail_per_million > 0 && tail_ns_max > 0 && prng.chance(tail_per_million, 1000000)) {
    delay_ns += static_cast<std::int64_t>(prng.below(static_cast<std::uint64_t>(tail_ns_max) + 1));
  }
  DITTO_ASSERT(delay_ns >= minimum_ns() && delay_ns <= maximum_ns());
  return Duration{delay_ns};
}

Status LatencyModel::validate() const {
  if (base_ns < 0 || jitter_ns_max < 0 || tail_ns_max < 0) {
    return Error{"latency model: delays must not be negative (" + to_string(*this) + ")"};
  }
  if (tail_per_million > 1000000) {
    return Error{"latency model: tail_per_million must be at most 1000000, got " +
                 std::to_string(tail_per_million)};
  }
  constexpr std::int64_t hour_ns = 3600LL * 1000 * 1000 * 1000;
  if (base_ns > hour_ns || jitter_ns_max > hour_ns || tail_ns_max > hour_ns) {
    return Error{"latency model: delays above one hour are not supported (" + to_string(*this) +
                 ")"};
  }
  return Status::success();
}

LatencyModel lan_link() {
  return LatencyModel{50'000, 20'000, 1000, 500'000};
}

LatencyModel nvme_disk() {
  return LatencyModel{20'000, 30'000, 1000, 2'000'000};
}

LatencyModel fixed(Duration delay) {
  return LatencyModel{delay.ns, 0, 0, 0};
}

std::string to_string(const LatencyModel& model) {
  return "base " + std::to_string(model.base_ns) + " ns + jitter 0.." +
         std::to_string(model.jitter_ns_max) + " ns, tail " +
         std::to_string(model.tail_per_million) + "/1e6 up to " +
         std::to_string(model.tail_ns_max) + " ns";
}

}  // namespace ditto::netem
