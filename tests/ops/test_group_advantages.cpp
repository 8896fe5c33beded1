// grpo::group_advantages on the CPU against the reference in reference.h and
// against hand-computed numbers: every scale and dtype, equal-reward groups,
// strided and empty input, errors. Shapes: rewards (N = P·G), group stats (P).
#include <ATen/core/dispatch/Dispatcher.h>

#include <cmath>
#include <limits>

#include "ops/reference.h"

namespace {

using grpo::AdvantageScale;
using grpo_test::tensors_close;

grpo::GroupAdvantageOptions with_scale(AdvantageScale scale, double eps = 1e-4) {
  grpo::GroupAdvantageOptions o;
  o.scale = scale;
  o.eps = eps;
  return o;
}

void expect_matches_reference(const grpo::GroupAdvantages& got, const grpo_test::RefAdvantages& want) {
  const torch::ScalarType out = want.advantages.scalar_type();
  const grpo_test::Tolerance tol = grpo_test::value_tolerance(out);
  EXPECT_EQ(got.advantages.scalar_type(), out);
  EXPECT_EQ(got.group_mean.scalar_type(), out);
  EXPECT_EQ(got.group_std.scalar_type(), out);
  EXPECT_TRUE(tensors_close(got.advantages, want.advantages, tol.rtol, tol.atol)) << "advantages";
  EXPECT_TRUE(tensors_close(got.group_mean, want.group_mean, tol.rtol, tol.atol)) << "group_mean";
  EXPECT_TRUE(tensors_close(got.group_std, want.group_std, tol.rtol, tol.atol)) << "group_std";
}

// Parameters: the scale's name ("group", "batch", "none") and the rewards' dtype.
class GroupAdvantagesVsReference : public ::testing::TestWithParam<std::tuple<std::string, torch::ScalarType>> {};

TEST_P(GroupAdvantagesVsReference, RandomRewards) {
  const auto& [scale_name, dtype] = GetParam();
  const AdvantageScale scale = grpo::parse_advantage_scale(scale_name);
  struct Groups {
    int64_t P, G;
  };
  // G = 1, G = 2, N not a multiple of 32, a big group, one group.
  for (const Groups g : {Groups{5, 1}, Groups{3, 2}, Groups{11, 3}, Groups{7, 16}, Groups{2, 100}, Groups{1, 8}}) {
    for (uint64_t seed = 0; seed < 5; ++seed) {
      SCOPED_TRACE("P=" + std::to_string(g.P) + " G=" + std::to_string(g.G) + " seed=" + std::to_string(seed));
      at::Generator gen = at::detail::createCPUGenerator(seed);
      torch::Tensor rewards = 2.0 * at::randn({g.P * g.G}, gen, torch::TensorOptions().dtype(torch::kFloat64)) + 0.5;
      // Some integer-valued rewards (accuracy-style 0/1), some ties.
      if (seed % 2 == 1) rewards = (rewards > 0.5).to(torch::kFloat64);
      rewards = rewards.to(dtype);
      for (const double eps : {1e-4, 0.5}) {
        const grpo::GroupAdvantageOptions o = with_scale(scale, eps);
        expect_matches_reference(grpo::group_advantages(rewards, g.G, o),
                                 grpo_test::ref_group_advantages(rewards, g.G, o));
      }
      if (HasFailure()) return;
    }
  }
}

std::string scale_param_name(const ::testing::TestParamInfo<GroupAdvantagesVsReference::ParamType>& info) {
  return std::get<0>(info.param) + "_" + c10::toString(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(AllScales, GroupAdvantagesVsReference,
                         ::testing::Combine(::testing::Values("group", "batch", "none"),
                                            ::testing::Values(torch::kFloat64, torch::kFloat32, torch::kHalf,
                                                              torch::kBFloat16)),
                         scale_param_name);

// rewards = [1, 2 | 3, 5], G = 2, worked out by hand (TRL's formulas).
TEST(GroupAdvantages, HandComputedExample) {
  const torch::Tensor rewards = torch::tensor({1.0, 2.0, 3.0, 5.0}, torch::kFloat64);
  const double eps = 1e-4;
  const double std0 = std::sqrt(0.5), std1 = std::sqrt(2.0);
  const double batch_std = std::sqrt((1.75 * 1.75 + 0.75 * 0.75 + 0.25 * 0.25 + 2.25 * 2.25) / 3.0);  // mean 2.75

  const grpo::GroupAdvantages group = grpo::group_advantages(rewards, 2, with_scale(AdvantageScale::Group));
  EXPECT_TRUE(tensors_close(group.advantages,
                            torch::tensor({-0.5 / (std0 + eps), 0.5 / (std0 + eps), -1.0 / (std1 + eps),
                                           1.0 / (std1 + eps)}, torch::kFloat64),
                            1e-14, 0.0));
  EXPECT_TRUE(tensors_close(group.group_mean, torch::tensor({1.5, 4.0}, torch::kFloat64), 1e-15, 0.0));
  EXPECT_TRUE(tensors_close(group.group_std, torch::tensor({std0, std1}, torch::kFloat64), 1e-14, 0.0));

  // Batch: the group mean is still subtracted; the divisor is the batch's std;
  // group_std is still each group's own.
  const grpo::GroupAdvantages batch = grpo::group_advantages(rewards, 2, with_scale(AdvantageScale::Batch));
  const double d = batch_std + eps;
  EXPECT_TRUE(tensors_close(batch.advantages, torch::tensor({-0.5 / d, 0.5 / d, -1.0 / d, 1.0 / d}, torch::kFloat64),
                            1e-14, 0.0));
  EXPECT_TRUE(tensors_close(batch.group_mean, torch::tensor({1.5, 4.0}, torch::kFloat64), 1e-15, 0.0));
  EXPECT_TRUE(tensors_close(batch.group_std, torch::tensor({std0, std1}, torch::kFloat64), 1e-14, 0.0));

  const grpo::GroupAdvantages none = grpo::group_advantages(rewards, 2, with_scale(AdvantageScale::None));
  EXPECT_TRUE(tensors_close(none.advantages, torch::tensor({-0.5, 0.5, -1.0, 1.0}, torch::kFloat64), 0.0, 0.0));
  EXPECT_TRUE(tensors_close(none.group_std, torch::tensor({std0, std1}, torch::kFloat64), 1e-14, 0.0));

  // The default options are eps = 1e-4 and the group scale.
  EXPECT_TRUE(torch::equal(grpo::group_advantages(rewards, 2).advantages, group.advantages));
}

// A group of equal rewards gets advantages of exactly 0 and std 0, even when its
// mean rounds away from the rewards (3 × 0.1 sums to 0.30000000000000004).
TEST(GroupAdvantages, EqualRewardsGiveExactlyZero) {
  for (const torch::ScalarType dtype : {torch::kFloat64, torch::kFloat32, torch::kBFloat16}) {
    for (const AdvantageScale scale : {AdvantageScale::Group, AdvantageScale::Batch, AdvantageScale::None}) {
      SCOPED_TRACE(grpo::to_string(scale) + " " + c10::toString(dtype));
      const torch::Tensor rewards = torch::tensor({0.1, 0.1, 0.1, 0.3, 0.7, 0.2, 2.3, 2.3, 2.3}, torch::kFloat64).to(dtype);
      const grpo::GroupAdvantages r = grpo::group_advantages(rewards, 3, with_scale(scale));
      EXPECT_EQ(grpo_test::max_abs(r.advantages.slice(0, 0, 3)), 0.0);
      EXPECT_EQ(grpo_test::max_abs(r.advantages.slice(0, 6, 9)), 0.0);
      EXPECT_GT(grpo_test::max_abs(r.advantages.slice(0, 3, 6)), 0.1);
      EXPECT_EQ(r.group_std[0].item<double>(), 0.0);
      EXPECT_EQ(r.group_std[2].item<double>(), 0.0);
      EXPECT_NEAR(r.group_mean[0].item<double>(), rewards[0].item<double>(), 1e-7);
      expect_matches_reference(r, grpo_test::ref_group_advantages(rewards, 3, with_scale(scale)));
    }
  }
  // Every reward equal: the batch std is 0 too; nothing is NaN.
  for (const AdvantageScale scale : {AdvantageScale::Group, AdvantageScale::Batch, AdvantageScale::None}) {
    const grpo::GroupAdvantages r = grpo::group_advantages(torch::full({6}, 0.1, torch::kFloat32), 2, with_scale(scale));
    EXPECT_EQ(grpo_test::max_abs(r.advantages), 0.0) << grpo::to_string(scale);
    EXPECT_EQ(grpo_test::max_abs(r.group_std), 0.0) << grpo::to_string(scale);
  }
}

// G = 1: every group is one reward, its std is defined 0, its advantage 0.
TEST(GroupAdvantages, GroupsOfOne) {
  const torch::Tensor rewards = torch::tensor({0.3, -1.0, 2.5, 0.0}, torch::kFloat64);
  for (const AdvantageScale scale : {AdvantageScale::Group, AdvantageScale::Batch, AdvantageScale::None}) {
    SCOPED_TRACE(grpo::to_string(scale));
    const grpo::GroupAdvantages r = grpo::group_advantages(rewards, 1, with_scale(scale));
    EXPECT_EQ(grpo_test::max_abs(r.advantages), 0.0);
    EXPECT_EQ(grpo_test::max_abs(r.group_std), 0.0);
    EXPECT_TRUE(torch::equal(r.group_mean, rewards));
  }
  // N = 1: the batch std is defined 0 as well.
  const grpo::GroupAdvantages one = grpo::group_advantages(torch::tensor({4.0}), 1, with_scale(AdvantageScale::Batch));
  EXPECT_EQ(one.advantages.item<double>(), 0.0);
}

TEST(GroupAdvantages, NonContiguousRewards) {
  at::Generator gen = at::detail::createCPUGenerator(7);
  for (const torch::ScalarType dtype : {torch::kFloat64, torch::kFloat32}) {
    const torch::Tensor wide = at::randn({24}, gen, torch::TensorOptions().dtype(torch::kFloat64)).to(dtype);
    const torch::Tensor rewards = wide.slice(0, 0, 24, 2);  // (12), stride 2
    ASSERT_FALSE(rewards.is_contiguous());
    for (const AdvantageScale scale : {AdvantageScale::Group, AdvantageScale::Batch, AdvantageScale::None}) {
      SCOPED_TRACE(grpo::to_string(scale) + " " + c10::toString(dtype));
      expect_matches_reference(grpo::group_advantages(rewards, 4, with_scale(scale)),
                               grpo_test::ref_group_advantages(rewards.contiguous(), 4, with_scale(scale)));
    }
  }
}

// No rewards: empty results, no error.
TEST(GroupAdvantages, Empty) {
  for (const AdvantageScale scale : {AdvantageScale::Group, AdvantageScale::Batch, AdvantageScale::None}) {
    const grpo::GroupAdvantages r = grpo::group_advantages(torch::zeros({0}, torch::kFloat32), 4, with_scale(scale));
    EXPECT_EQ(r.advantages.numel(), 0);
    EXPECT_EQ(r.group_mean.numel(), 0);
    EXPECT_EQ(r.group_std.numel(), 0);
  }
}

TEST(GroupAdvantages, Errors) {
  const torch::Tensor rewards = torch::randn({8}, torch::kFloat64);
  grpo_test::expect_error_mentions([&] { grpo::group_advantages(rewards, 0); }, {"group_size"}, "G = 0");
  grpo_test::expect_error_mentions([&] { grpo::group_advantages(rewards, -2); }, {"group_size"}, "G < 0");
  grpo_test::expect_error_mentions([&] { grpo::group_advantages(rewards, 3); }, {"group_size", "divide"},
                                   "G does not divide N");
  grpo_test::expect_error_mentions([&] { grpo::group_advantages(rewards.reshape({2, 4}), 4); }, {"rewards"},
                                   "2-D rewards");
  grpo_test::expect_error_mentions([&] { grpo::group_advantages(torch::tensor(1.0), 1); }, {"rewards"},
                                   "0-D rewards");
  for (const double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                           -std::numeric_limits<double>::infinity()}) {
    for (const torch::ScalarType dtype : {torch::kFloat64, torch::kFloat32}) {
      torch::Tensor r = rewards.clone().to(dtype);
      r[5] = bad;
      grpo_test::expect_error_mentions([&] { grpo::group_advantages(r, 4); }, {"rewards", "5"},
                                       "non-finite reward " + std::to_string(bad));
    }
  }
}

TEST(GroupAdvantages, ScaleNamesRoundTrip) {
  for (const AdvantageScale s : {AdvantageScale::Group, AdvantageScale::Batch, AdvantageScale::None})
    EXPECT_EQ(grpo::parse_advantage_scale(grpo::to_string(s)), s);
  EXPECT_EQ(grpo::to_string(AdvantageScale::None), "none");
  grpo_test::expect_error_mentions([] { grpo::parse_advantage_scale("std"); }, {"std", "group", "batch", "none"},
                                   "unknown scale");
}

TEST(GroupAdvantages, RegisteredWithDispatcher) {
  EXPECT_NO_THROW(c10::Dispatcher::singleton().findSchemaOrThrow("grpo::group_advantages", ""));
}

}  // namespace
