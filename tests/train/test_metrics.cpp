// Trainer outputs: metrics.jsonl on fresh runs and resumes (torn last line),
// durations, the progress line, and SVG plots checked as well-formed XML.
#include <grpo/error.h>
#include <grpo/files.h>
#include <grpo/train/metrics.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using grpo::PlotOptions;
using grpo::PlotSeries;
using nlohmann::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_raw(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::vector<json> records(const fs::path& path) {
  std::vector<json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

// ------------------------------------------------------------ MetricsWriter

using MetricsWriterTest = FilesTest;

TEST_F(MetricsWriterTest, FreshRunTruncatesAndAppendsFlushedLines) {
  const fs::path path = dir_ / "metrics.jsonl";
  write_raw(path, "{\"step\": 1}\n{\"step\": 2}\n");
  grpo::MetricsWriter writer(path.string());
  EXPECT_EQ(writer.path(), path.string());
  EXPECT_EQ(read_text(path), "");
  writer.write({{"step", 1}, {"loss", 0.5}});
  EXPECT_EQ(read_text(path), "{\"loss\":0.5,\"step\":1}\n");  // flushed while the writer is open
  writer.write({{"step", 2}, {"loss", kNaN}, {"name", "\xff"}});
  const auto lines = records(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1]["step"], 2);
  EXPECT_TRUE(lines[1]["loss"].is_null());  // NaN is written as null
  EXPECT_EQ(lines[1]["name"], "\xEF\xBF\xBD");
}

TEST_F(MetricsWriterTest, CreatesTheFileAndNamesItInErrors) {
  const fs::path path = dir_ / "new.jsonl";
  grpo::MetricsWriter(path.string(), 7).write({{"step", 8}});
  EXPECT_EQ(read_text(path), "{\"step\":8}\n");

  grpo::MetricsWriter writer(path.string());
  const std::string bad = error_of([&] { writer.write(json::array({1, 2})); });
  EXPECT_NE(bad.find("must be a JSON object"), std::string::npos) << bad;
  EXPECT_NE(bad.find(path.string()), std::string::npos) << bad;

  const std::string missing = (dir_ / "no" / "metrics.jsonl").string();
  const std::string message = error_of([&] { grpo::MetricsWriter w(missing); });
  EXPECT_NE(message.find(missing), std::string::npos) << message;
  EXPECT_NE(message.find("No such file or directory"), std::string::npos) << message;
}

TEST_F(MetricsWriterTest, ResumeKeepsStepsThroughK) {
  const fs::path path = dir_ / "metrics.jsonl";
  std::string text = "{\"event\":\"start\"}\n";
  for (int step = 1; step <= 5; ++step) text += "{\"step\":" + std::to_string(step) + "}\n";
  write_raw(path, text);
  {
    grpo::MetricsWriter writer(path.string(), 3);
    EXPECT_EQ(read_text(path), "{\"event\":\"start\"}\n{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n");
    writer.write({{"step", 4}});
  }
  EXPECT_EQ(read_text(path), "{\"event\":\"start\"}\n{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n{\"step\":4}\n");
  grpo::MetricsWriter keep_none(path.string(), 0);
  EXPECT_EQ(read_text(path), "{\"event\":\"start\"}\n");
  EXPECT_EQ(listing(), std::vector<std::string>{"metrics.jsonl"});
}

TEST_F(MetricsWriterTest, ResumeDropsATornLastLine) {
  const fs::path path = dir_ / "metrics.jsonl";
  write_raw(path, "{\"step\":1}\n\n{\"step\":2}\n{\"step\":3,\"lo");
  grpo::MetricsWriter writer(path.string(), 10);
  EXPECT_EQ(read_text(path), "{\"step\":1}\n{\"step\":2}\n");
  writer.write({{"step", 3}});
  EXPECT_EQ(read_text(path), "{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n");
}

TEST_F(MetricsWriterTest, ResumeRejectsABrokenLineBeforeValidOnes) {
  const fs::path path = dir_ / "metrics.jsonl";
  const std::string text = "{\"step\":1}\nnot json\n{\"step\":2}\n";
  write_raw(path, text);
  const std::string message = error_of([&] { grpo::MetricsWriter w(path.string(), 5); });
  EXPECT_NE(message.find(path.string() + ":2"), std::string::npos) << message;
  EXPECT_EQ(read_text(path), text);
}

// ------------------------------------------------------------ durations, progress

TEST(FormatDuration, Cases) {
  EXPECT_EQ(grpo::format_duration(0), "0s");
  EXPECT_EQ(grpo::format_duration(42), "42s");
  EXPECT_EQ(grpo::format_duration(59.4), "59s");
  EXPECT_EQ(grpo::format_duration(59.6), "1m00s");
  EXPECT_EQ(grpo::format_duration(185), "3m05s");
  EXPECT_EQ(grpo::format_duration(3599), "59m59s");
  EXPECT_EQ(grpo::format_duration(3720), "1h02m");
  EXPECT_EQ(grpo::format_duration(90000), "25h00m");
  EXPECT_EQ(grpo::format_duration(-1), "?");
  EXPECT_EQ(grpo::format_duration(kNaN), "?");
  EXPECT_EQ(grpo::format_duration(kInf), "?");
  EXPECT_EQ(grpo::format_duration(1e300), "?");
}

TEST(ProgressLine, HasEveryFieldAndPadsTheStep) {
  grpo::ProgressInfo p;
  p.step = 12;
  p.total_steps = 200;
  p.reward = 0.531;
  p.accuracy = 0.41;
  p.kl = 0.0012;
  p.tokens_per_second = 812.2;
  p.elapsed_seconds = 41;
  // ETA = 41 / 12 · 188 = 642 s.
  EXPECT_EQ(grpo::progress_line(p),
            "step  12/200 | reward 0.531 | acc 0.410 | kl 0.0012 | 812 tok/s | 41s elapsed, ETA 10m42s");
}

TEST(ProgressLine, LeavesOutWhatIsUnknown) {
  grpo::ProgressInfo p;
  p.step = 0;
  p.total_steps = 1000;
  p.kl = 3e-6;
  const std::string start = grpo::progress_line(p);
  EXPECT_EQ(start.find("acc"), std::string::npos) << start;
  EXPECT_NE(start.find("step    0/1000"), std::string::npos) << start;
  EXPECT_NE(start.find("kl 3.00e-06"), std::string::npos) << start;
  EXPECT_NE(start.find("ETA ?"), std::string::npos) << start;

  p.step = 7;
  p.total_steps = 0;
  const std::string open_ended = grpo::progress_line(p);
  EXPECT_EQ(open_ended.find("ETA"), std::string::npos) << open_ended;
  EXPECT_EQ(open_ended.find("7/"), std::string::npos) << open_ended;
  EXPECT_EQ(open_ended.rfind("step 7 |", 0), 0u) << open_ended;
}

// ------------------------------------------------------------ SVG

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Checks what an XML parser would: the prolog, balanced tags, quoted attributes
// without '<', and entities only from the predefined five.
void expect_well_formed(const std::string& svg) {
  ASSERT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\""), std::string::npos);
  std::vector<std::string> open;
  for (size_t at = svg.find('<'); at != std::string::npos; at = svg.find('<', at + 1)) {
    const size_t end = svg.find('>', at);
    ASSERT_NE(end, std::string::npos);
    const std::string tag = svg.substr(at + 1, end - at - 1);
    ASSERT_EQ(tag.find('<'), std::string::npos) << tag;
    ASSERT_EQ(count_of(tag, "\"") % 2, 0u) << tag;
    if (tag[0] == '?') continue;
    const std::string name = tag.substr(tag[0] == '/' ? 1 : 0, tag.find_first_of(" />", 1) - (tag[0] == '/' ? 1 : 0));
    if (tag[0] == '/') {
      ASSERT_FALSE(open.empty()) << tag;
      ASSERT_EQ(open.back(), name);
      open.pop_back();
    } else if (tag.back() != '/') {
      open.push_back(name);
    }
  }
  EXPECT_TRUE(open.empty());
  for (size_t at = svg.find('&'); at != std::string::npos; at = svg.find('&', at + 1)) {
    const std::string rest = svg.substr(at, 6);
    EXPECT_TRUE(rest.rfind("&amp;", 0) == 0 || rest.rfind("&lt;", 0) == 0 || rest.rfind("&gt;", 0) == 0 ||
                rest.rfind("&quot;", 0) == 0 || rest.rfind("&apos;", 0) == 0)
        << rest;
  }
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
}

// The numbers in every points="x,y x,y ..." attribute, in order.
std::vector<double> point_coordinates(const std::string& svg) {
  static const std::regex points("points=\"([^\"]*)\"");
  std::vector<double> out;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), points); it != std::sregex_iterator(); ++it) {
    std::string list = (*it)[1];
    for (char& c : list) c = c == ',' ? ' ' : c;
    std::istringstream in(list);
    for (std::string token; in >> token;) {
      char* end = nullptr;
      out.push_back(std::strtod(token.c_str(), &end));
      EXPECT_EQ(*end, '\0') << token;
    }
  }
  return out;
}

// Every coordinate must be finite and inside the viewBox.
void expect_points_inside(const std::string& svg, double width, double height) {
  const std::vector<double> v = point_coordinates(svg);
  EXPECT_FALSE(v.empty());
  for (size_t i = 0; i < v.size(); ++i) {
    ASSERT_TRUE(std::isfinite(v[i])) << i;
    EXPECT_GE(v[i], 0.0) << i;
    EXPECT_LE(v[i], i % 2 == 0 ? width : height) << i;
  }
}

std::vector<double> steps(size_t n) {
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<double>(i);
  return v;
}

TEST(SvgLinePlot, IsAStandaloneDocumentWithAxesAndLegend) {
  std::vector<double> x = steps(101), reward(101), kl(51);
  for (size_t i = 0; i < reward.size(); ++i) reward[i] = static_cast<double>(i) / 100;
  for (size_t i = 0; i < kl.size(); ++i) kl[i] = 0.5 - static_cast<double>(i) / 100;
  PlotOptions options;
  options.title = "training";
  options.x_label = "step";
  options.y_label = "value";
  const std::string svg = grpo::svg_line_plot(
      {{"reward", x, reward, ""}, {"kl", std::vector<double>(x.begin(), x.begin() + 51), kl, "red"}}, options);
  expect_well_formed(svg);
  EXPECT_NE(svg.find("viewBox=\"0 0 720 400\""), std::string::npos);
  EXPECT_EQ(count_of(svg, "<polyline"), 2u);
  EXPECT_NE(svg.find("stroke=\"red\""), std::string::npos);
  for (const char* text : {">reward</text>", ">kl</text>", ">training</text>", ">step</text>", ">value</text>",
                           ">0</text>", ">40</text>", ">100</text>", ">0.0</text>", ">0.4</text>", ">1.0</text>"}) {
    EXPECT_NE(svg.find(text), std::string::npos) << text;
  }
  EXPECT_EQ(svg.find("no data"), std::string::npos);
  expect_points_inside(svg, 720, 400);
}

TEST(SvgLinePlot, EscapesText) {
  PlotOptions options;
  options.title = "a<b&c";
  options.x_label = "x > 0";
  const std::string svg = grpo::svg_line_plot({{"say \"hi\"", {0, 1}, {0, 1}, "#000"}}, options);
  expect_well_formed(svg);
  EXPECT_NE(svg.find("a&lt;b&amp;c"), std::string::npos);
  EXPECT_EQ(svg.find("a<b&c"), std::string::npos);
  EXPECT_NE(svg.find("x &gt; 0"), std::string::npos);
  EXPECT_NE(svg.find("say &quot;hi&quot;"), std::string::npos);
}

TEST(SvgLinePlot, NonFinitePointsBreakTheLine) {
  const std::string two = grpo::svg_line_plot({{"s", {1, 2, 3, 4, 5}, {1, 2, kNaN, 4, 5}, ""}});
  expect_well_formed(two);
  EXPECT_EQ(count_of(two, "<polyline"), 2u);
  // Runs {1, 2}, {3} and {5} (x = Inf breaks too); a run of one also gets a dot.
  const std::string three =
      grpo::svg_line_plot({{"s", {0, 1, 2, 3, 4, 5, 6, kInf, 8}, {kNaN, 1, 2, kNaN, kNaN, 3, -kInf, 4, 5}, ""}});
  expect_well_formed(three);
  EXPECT_EQ(count_of(three, "<polyline"), 2u + 1u);
  EXPECT_EQ(count_of(three, "<circle"), 2u);
  expect_points_inside(three, 720, 400);
}

TEST(SvgLinePlot, ConstantSeriesAndSinglePointStayFinite) {
  PlotOptions options;
  options.width = 300;
  options.height = 200;
  for (const auto& series : std::vector<std::vector<PlotSeries>>{
           {{"flat", steps(10), std::vector<double>(10, 0.5), ""}},
           {{"zero", steps(10), std::vector<double>(10, 0.0), ""}},
           {{"one", {3}, {7}, ""}},
           {{"big", {1e300, 1e300}, {-1e300, 1e300}, ""}},
           {{"max", {-DBL_MAX, DBL_MAX}, {-DBL_MAX, -DBL_MAX}, ""}},
           {{"one", {3}, {7}, ""}, {"flat", {3, 3}, {7, 7}, ""}}}) {
    const std::string svg = grpo::svg_line_plot(series, options);
    expect_well_formed(svg);
    EXPECT_EQ(svg.find("nan"), std::string::npos);
    EXPECT_EQ(svg.find("inf"), std::string::npos);
    expect_points_inside(svg, 300, 200);
    EXPECT_GE(count_of(svg, "<text"), 4u);  // tick labels on both axes
  }
}

TEST(SvgLinePlot, EmptyInputSaysNoData) {
  for (const auto& series : std::vector<std::vector<PlotSeries>>{{}, {{"empty", {}, {}, ""}}, {{"nan", {kNaN}, {1}, ""}}}) {
    const std::string svg = grpo::svg_line_plot(series);
    expect_well_formed(svg);
    EXPECT_NE(svg.find(">no data</text>"), std::string::npos);
    EXPECT_EQ(svg.find("<polyline"), std::string::npos);
    EXPECT_NE(svg.find(">0.0</text>"), std::string::npos);  // the axes are still drawn
  }
}

TEST(SvgLinePlot, FixedYRangeClipsAndPointsStayShort) {
  PlotOptions options;
  options.y_min = 0.0;
  options.y_max = 1.0;
  const std::string svg = grpo::svg_line_plot({{"s", {0, 1, 2}, {0.5, 1e300, -3}, ""}}, options);
  expect_well_formed(svg);
  EXPECT_NE(svg.find("clip-path=\"url(#plot-area)\""), std::string::npos);
  EXPECT_NE(svg.find(">0.0</text>"), std::string::npos);
  EXPECT_NE(svg.find(">1.0</text>"), std::string::npos);
  EXPECT_EQ(svg.find(">1.2</text>"), std::string::npos);  // the fixed end is not rounded out
  const std::vector<double> v = point_coordinates(svg);
  ASSERT_EQ(v.size(), 6u);
  for (double c : v) EXPECT_LT(std::abs(c), 1e5) << c;  // far-off points are clamped, not huge
}

TEST(SvgLinePlot, BadInputIsAnErrorNamingIt) {
  const std::string mismatch = error_of([] { grpo::svg_line_plot({{"ok", {1}, {1}, ""}, {"loss", {1, 2, 3}, {1, 2}, ""}}); });
  EXPECT_NE(mismatch.find("series 'loss' (index 1) has 3 x values but 2 y values"), std::string::npos) << mismatch;
  PlotOptions range;
  range.y_min = 1.0;
  range.y_max = 1.0;
  EXPECT_NE(error_of([&] { grpo::svg_line_plot({}, range); }).find("y_min must be below y_max"), std::string::npos);
  range.y_max = kNaN;
  EXPECT_NE(error_of([&] { grpo::svg_line_plot({}, range); }).find("y_max must be finite"), std::string::npos);
  PlotOptions tiny;
  tiny.width = 10;
  EXPECT_NE(error_of([&] { grpo::svg_line_plot({}, tiny); }).find("at least 200 x 150"), std::string::npos);
}

using WriteSvgLinePlot = FilesTest;

TEST_F(WriteSvgLinePlot, WritesTheDocument) {
  const std::vector<PlotSeries> series{{"s", {0, 1}, {2, 3}, ""}};
  const fs::path path = dir_ / "plot.svg";
  grpo::write_svg_line_plot(path.string(), series);
  EXPECT_EQ(read_text(path), grpo::svg_line_plot(series));
  EXPECT_EQ(listing(), std::vector<std::string>{"plot.svg"});
}

}  // namespace
