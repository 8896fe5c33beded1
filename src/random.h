// Seeded randomness whose results are the same with every standard library
// (internal): splitmix64 for deriving seeds, and a Fisher-Yates shuffle over
// mt19937_64 with rejection sampling, so no index is favoured.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace grpo {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A seed for one purpose of one step: the same (seed, step, purpose) always gives the same number.
inline uint64_t derive_seed(uint64_t seed, int64_t step, uint64_t purpose) {
  return splitmix64(splitmix64(seed ^ splitmix64(static_cast<uint64_t>(step))) + purpose);
}

// A number in [0, 1) from 53 bits of `x`.
inline double unit_interval(uint64_t x) { return static_cast<double>(x >> 11) * 0x1.0p-53; }

// A permutation of 0..n-1, the same for the same seed.
inline std::vector<int64_t> shuffled_indices(int64_t n, uint64_t seed) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  std::mt19937_64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    const uint64_t bound = static_cast<uint64_t>(i) + 1;
    const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t x;
    do x = rng(); while (x >= limit);
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(x % bound)]);
  }
  return order;
}

}  // namespace grpo
