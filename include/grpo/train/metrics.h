// The trainer's outputs that are not tensors: a metrics.jsonl log that survives
// a resume, a one-line progress report, and SVG line plots (written with
// write_file_atomic, grpo/files.h). Torch-free; errors are grpo::Error naming
// the path or series.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace grpo {

// Appends one JSON object per line to a file (metrics.jsonl), flushing each line.
// NB: NaN and Inf are written as null (nlohmann's dump), and invalid UTF-8 in
// strings as U+FFFD, so one odd value never stops a run. Not thread-safe.
class MetricsWriter {
 public:
  // keep_through_step < 0: the file is created, or truncated if it exists.
  // keep_through_step >= 0 (a resumed run): an existing file is rewritten
  // atomically without its records whose number "step" is > keep_through_step,
  // so no step is logged twice; lines that are not JSON objects at its end (a
  // line torn by a crash) are dropped, and such a line before a valid one is a
  // grpo::Error naming path:line. Records without a number "step" are kept.
  explicit MetricsWriter(std::string path, int64_t keep_through_step = -1);

  // Appends record.dump() + '\n' and flushes. Raises grpo::Error when the record
  // is not an object or the write fails (naming the path).
  void write(const nlohmann::json& record);

  const std::string& path() const { return path_; }

 private:
  struct FileCloser {
    void operator()(std::FILE* f) const;
  };

  std::string path_;
  std::unique_ptr<std::FILE, FileCloser> file_;  // open for appending
};

// "42s", "3m05s", "1h02m" (rounded to the second; minutes dropped past an hour).
// Negative, non-finite or absurd (> 1e15 s) durations give "?".
std::string format_duration(double seconds);

struct ProgressInfo {
  int64_t step = 0;                     // steps done
  int64_t total_steps = 0;              // steps planned; <= 0: unknown, no "/total" and no ETA
  double reward = 0.0;                  // mean total reward of the step
  std::optional<double> accuracy;       // fraction correct, left out of the line when unset
  double kl = 0.0;                      // mean KL to the reference
  double tokens_per_second = 0.0;       // generated tokens per second
  double elapsed_seconds = 0.0;         // since the run (or resume) started
};

// One human-readable line, e.g.
// "step  12/200 | reward 0.531 | acc 0.410 | kl 0.0012 | 812 tok/s | 41s elapsed, ETA 10m42s".
// The step is padded to the width of total_steps; ETA = elapsed / step · (total − step).
std::string progress_line(const ProgressInfo& p);

struct PlotSeries {
  std::string name;                     // legend text; empty: not in the legend
  std::vector<double> x;                // (n) same length as y
  std::vector<double> y;                // (n) NaN/Inf points are skipped and break the line
  std::string color;                    // any SVG color; empty: the next of a 10-color palette
};

struct PlotOptions {
  std::string title;                    // above the plot; empty: none
  std::string x_label;                  // below the x axis
  std::string y_label;                  // left of the y axis, rotated
  int width = 720;                      // pixels, >= 200
  int height = 400;                     // pixels, >= 150
  std::optional<double> y_min;          // fixed lower y limit; unset: from the data, rounded to a tick
  std::optional<double> y_max;          // fixed upper y limit; unset: from the data, rounded to a tick
};

// A standalone SVG 1.1 document: axes with "nice" ticks (1/2/5·10^k), one polyline
// per run of finite points, a legend and the title; all text XML-escaped. Empty
// input gives the axes and a "no data" note; a single point or a constant series
// gets a padded range. Raises grpo::Error when a series' x and y sizes differ
// (naming it), the size is too small, or the fixed y range is not finite and increasing.
std::string svg_line_plot(const std::vector<PlotSeries>& series, const PlotOptions& options = {});

// svg_line_plot written with write_file_atomic.
void write_svg_line_plot(const std::string& path, const std::vector<PlotSeries>& series,
                         const PlotOptions& options = {});

}  // namespace grpo
