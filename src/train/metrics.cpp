// Trainer outputs: MetricsWriter (metrics.jsonl, pruned on resume),
// format_duration / progress_line, and svg_line_plot. SVG coordinates are
// pixels, y growing downwards.
#include "grpo/train/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <utility>

#include "grpo/error.h"
#include "grpo/files.h"

namespace grpo {

namespace {

using nlohmann::json;

// A JSON dump that never throws on invalid UTF-8 (it becomes U+FFFD).
std::string dump_line(const json& j) { return json_text(j); }

// The whole file; nullopt when it does not exist.
std::optional<std::string> read_if_exists(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  try {
    return read_file(path, "a metrics.jsonl file");
  } catch (const Error& e) {
    throw Error(std::string("MetricsWriter: cannot resume: ") + e.what());
  }
}

// The lines of a metrics file a resumed run keeps: every JSON object whose
// number "step" is <= keep (or that has none); blank lines and a torn tail go.
std::string kept_records(const std::string& path, const std::string& text, int64_t keep) {
  struct Line {
    std::string text;
    int64_t number;   // 1-based line number in the file
    bool valid;       // a JSON object
    bool kept;
  };
  std::vector<Line> lines;
  size_t begin = 0;
  for (int64_t number = 1; begin < text.size(); ++number) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(begin, end - begin);
    begin = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const json record = json::parse(line, nullptr, /*allow_exceptions=*/false);
    const bool valid = record.is_object();
    bool kept = valid;
    if (valid) {
      const auto step = record.find("step");
      if (step != record.end() && step->is_number()) kept = step->get<double>() <= static_cast<double>(keep);
    }
    lines.push_back({std::move(line), number, valid, kept});
  }
  size_t valid_end = lines.size();  // lines from here on are the torn tail
  while (valid_end > 0 && !lines[valid_end - 1].valid) --valid_end;
  std::string out;
  for (size_t i = 0; i < valid_end; ++i) {
    if (!lines[i].valid) {
      throw Error("MetricsWriter: " + path + ":" + std::to_string(lines[i].number) +
                  " is not a JSON object, and valid records follow it; fix or remove the line to resume");
    }
    if (lines[i].kept) out += lines[i].text + '\n';
  }
  return out;
}

// ------------------------------------------------------------------ SVG

// Matplotlib's tab10, for series without a color.
const char* const kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
const char* const kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the valid UTF-8 sequence at s[i] (a lead byte >= 0x80), 0 if invalid.
size_t utf8_length(const std::string& s, size_t i) {
  const auto byte = [&](size_t k) { return k < s.size() ? static_cast<unsigned char>(s[k]) : 0u; };
  const unsigned c = byte(i);
  size_t len;
  unsigned lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return len;
}

// Text for XML content and attributes. NB: invalid UTF-8 and the control
// characters XML 1.0 forbids become U+FFFD, so the document always parses.
std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t len = utf8_length(s, i);
      if (len == 0) {
        out += kReplacement;
        ++i;
      } else {
        out.append(s, i, len);
        i += len;
      }
      continue;
    }
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') out += kReplacement;
        else out += static_cast<char>(c);
    }
    ++i;
  }
  return out;
}

// Code points, for guessing how wide a text is.
size_t text_length(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// One axis: its range and the tick values inside it.
struct Axis {
  double lo = 0.0;
  double hi = 1.0;
  std::vector<double> ticks;
  std::vector<std::string> labels;  // one per tick
};

// The tick labels, fixed-point with as many decimals as the step 10^exponent
// needs, or scientific where that is shorter (very large or small values).
std::vector<std::string> tick_labels(const std::vector<double>& ticks, int exponent) {
  double max_abs = 0.0;
  for (double t : ticks) max_abs = std::max(max_abs, std::abs(t));
  const int magnitude = max_abs > 0.0 ? static_cast<int>(std::floor(std::log10(max_abs))) : exponent;
  const int digits = std::clamp(magnitude - exponent, 0, 16);
  std::vector<std::string> fixed, scientific;
  size_t fixed_width = 0, scientific_width = 0;
  for (double t : ticks) {
    fixed.push_back(fmt::format("{:.{}f}", t, std::max(0, -exponent)));
    scientific.push_back(t == 0.0 ? "0" : fmt::format("{:.{}e}", t, digits));
    fixed_width = std::max(fixed_width, fixed.back().size());
    scientific_width = std::max(scientific_width, scientific.back().size());
  }
  return fixed_width <= scientific_width ? fixed : scientific;
}

// An axis from lo to hi; an end not fixed by the user is rounded out to a tick.
// Ticks are 1, 2 or 5 × 10^k apart, about five of them.
Axis make_axis(double lo, double hi, bool round_lo, bool round_hi) {
  // NB: a single point or a constant series has no range; pad it so nothing divides by zero.
  const auto pad = [](double v) { return v == 0.0 ? 1.0 : std::max(std::abs(v) * 0.1, 1e-300); };
  if (!(hi > lo)) {
    if (round_lo && round_hi) {
      const double v = lo;
      lo = v - pad(v);
      hi = v + pad(v);
    } else if (round_hi) {
      hi = lo + pad(lo);
    } else {
      lo = hi - pad(hi);
    }
    lo = std::max(lo, -DBL_MAX);
    hi = std::min(hi, DBL_MAX);
  }
  Axis axis;
  axis.lo = lo;
  axis.hi = hi;
  // NB: halves first, so that a range near DBL_MAX does not overflow.
  const double raw = (hi / 2 - lo / 2) / 2.5;
  if (!(raw > 0.0) || !std::isfinite(raw)) return axis;
  int exponent = static_cast<int>(std::floor(std::log10(raw)));
  const double fraction = raw / std::pow(10.0, exponent);
  double mantissa = fraction <= 1.0 ? 1.0 : fraction <= 2.0 ? 2.0 : fraction <= 5.0 ? 5.0 : 10.0;
  if (mantissa == 10.0) {
    mantissa = 1.0;
    ++exponent;
  }
  const double step = mantissa * std::pow(10.0, exponent);
  if (!(step > 0.0) || !std::isfinite(step)) return axis;
  if (round_lo && std::isfinite(std::floor(lo / step) * step)) axis.lo = std::floor(lo / step) * step;
  if (round_hi && std::isfinite(std::ceil(hi / step) * step)) axis.hi = std::ceil(hi / step) * step;
  const double first = std::ceil(axis.lo / step - 1e-9);
  const double last = std::floor(axis.hi / step + 1e-9);
  if (!(last - first <= 50.0)) return axis;  // cannot happen for a finite range; no ticks then
  for (double k = first; k <= last; ++k) {
    const double t = k * step;
    axis.ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);  // no "-0.0"
  }
  axis.labels = tick_labels(axis.ticks, exponent);
  return axis;
}

// Where v falls between the axis ends, 0 to 1 (halves first, as in make_axis).
double fraction_of(double v, const Axis& axis) { return (v / 2 - axis.lo / 2) / (axis.hi / 2 - axis.lo / 2); }

std::string number(double v) { return fmt::format("{:.2f}", v); }

}  // namespace

// ------------------------------------------------------------------ metrics.jsonl

void MetricsWriter::FileCloser::operator()(std::FILE* f) const { std::fclose(f); }

MetricsWriter::MetricsWriter(std::string path, int64_t keep_through_step) : path_(std::move(path)) {
  if (path_.empty()) throw Error("MetricsWriter: the path is empty");
  if (keep_through_step >= 0) {
    if (const auto text = read_if_exists(path_)) {
      const std::string kept = kept_records(path_, *text, keep_through_step);
      if (kept != *text) write_file_atomic(path_, kept);
    }
  }
  file_.reset(std::fopen(path_.c_str(), keep_through_step >= 0 ? "ab" : "wb"));
  if (!file_) throw Error("MetricsWriter: cannot open '" + path_ + "' for writing: " + std::strerror(errno));
}

void MetricsWriter::write(const nlohmann::json& record) {
  if (!file_) throw Error("MetricsWriter: '" + path_ + "' is not open (the writer was moved from)");
  if (!record.is_object()) {
    throw Error("MetricsWriter: a record for '" + path_ + "' must be a JSON object, got " +
                dump_line(record).substr(0, 200));
  }
  const std::string line = dump_line(record) + '\n';
  if (std::fwrite(line.data(), 1, line.size(), file_.get()) != line.size() || std::fflush(file_.get()) != 0) {
    throw Error("MetricsWriter: cannot write to '" + path_ + "': " + std::strerror(errno));
  }
}

// ------------------------------------------------------------------ progress

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0.0 || seconds > 1e15) return "?";
  const int64_t s = std::llround(seconds);
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
}

std::string progress_line(const ProgressInfo& p) {
  std::string out;
  if (p.total_steps > 0) {
    const std::string total = std::to_string(p.total_steps);
    out = fmt::format("step {:>{}}/{}", p.step, total.size(), total);
  } else {
    out = fmt::format("step {}", p.step);
  }
  out += fmt::format(" | reward {:.3f}", p.reward);
  if (p.accuracy) out += fmt::format(" | acc {:.3f}", *p.accuracy);
  // A KL below 1e-3 would read 0.0000 in fixed point.
  const bool small = p.kl != 0.0 && std::abs(p.kl) < 1e-3;
  out += small ? fmt::format(" | kl {:.2e}", p.kl) : fmt::format(" | kl {:.4f}", p.kl);
  out += fmt::format(" | {:.0f} tok/s", p.tokens_per_second);
  out += " | " + format_duration(p.elapsed_seconds) + " elapsed";
  if (p.total_steps > 0) {
    const double eta = p.step > 0 ? p.elapsed_seconds / static_cast<double>(p.step) *
                                        static_cast<double>(std::max<int64_t>(p.total_steps - p.step, 0))
                                  : std::numeric_limits<double>::quiet_NaN();
    out += ", ETA " + format_duration(eta);
  }
  return out;
}

// ------------------------------------------------------------------ SVG

std::string svg_line_plot(const std::vector<PlotSeries>& series, const PlotOptions& options) {
  if (options.width < 200 || options.height < 150) {
    throw Error("svg_line_plot: the plot must be at least 200 x 150 pixels, got " + std::to_string(options.width) +
                " x " + std::to_string(options.height));
  }
  for (const auto& [name, v] : {std::pair{"y_min", options.y_min}, std::pair{"y_max", options.y_max}}) {
    if (v && !std::isfinite(*v)) throw Error(std::string("svg_line_plot: ") + name + " must be finite, got " + fmt::format("{}", *v));
  }
  if (options.y_min && options.y_max && !(*options.y_min < *options.y_max)) {
    throw Error(fmt::format("svg_line_plot: y_min must be below y_max, got y_min = {} and y_max = {}", *options.y_min,
                            *options.y_max));
  }
  for (size_t s = 0; s < series.size(); ++s) {
    if (series[s].x.size() != series[s].y.size()) {
      throw Error(fmt::format("svg_line_plot: series '{}' (index {}) has {} x values but {} y values", series[s].name, s,
                              series[s].x.size(), series[s].y.size()));
    }
  }

  // The data's extent over the points where both x and y are finite.
  double x_lo = DBL_MAX, x_hi = -DBL_MAX, y_lo = DBL_MAX, y_hi = -DBL_MAX;
  bool any = false;
  for (const auto& s : series) {
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      any = true;
      x_lo = std::min(x_lo, s.x[i]);
      x_hi = std::max(x_hi, s.x[i]);
      y_lo = std::min(y_lo, s.y[i]);
      y_hi = std::max(y_hi, s.y[i]);
    }
  }
  if (!any) {
    x_lo = y_lo = 0.0;
    x_hi = y_hi = 1.0;
  }
  const Axis xa = make_axis(x_lo, x_hi, true, true);
  const Axis ya = make_axis(options.y_min.value_or(y_lo), options.y_max.value_or(y_hi), !options.y_min, !options.y_max);

  // Layout: the legend takes the right margin, as wide as its longest name.
  const double width = options.width, height = options.height;
  size_t longest = 0;
  for (const auto& s : series) longest = std::max(longest, text_length(s.name));
  const double legend_w = longest == 0 ? 0.0 : std::min(width / 3, 36.0 + 7.0 * static_cast<double>(longest));
  // The y tick labels end 8 px left of the axis, after the rotated y label.
  size_t widest = 0;
  for (const auto& label : ya.labels) widest = std::max(widest, label.size());
  const double left = std::max(72.0, std::min(34.0 + 7.0 * static_cast<double>(widest), width / 3));
  const double top = options.title.empty() ? 16.0 : 40.0;
  const double plot_w = width - left - 16.0 - legend_w, plot_h = height - top - 48.0;
  const double bottom = top + plot_h;
  const auto px = [&](double x) { return left + fraction_of(x, xa) * plot_w; };
  const auto py = [&](double y) { return bottom - fraction_of(y, ya) * plot_h; };

  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n",
      options.width, options.height);
  if (!options.title.empty()) out += "<title>" + xml_escape(options.title) + "</title>\n";
  out += fmt::format("<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#ffffff\"/>\n", options.width, options.height);
  out += fmt::format("<defs><clipPath id=\"plot-area\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/></clipPath></defs>\n",
                     number(left), number(top), number(plot_w), number(plot_h));

  // Grid, frame, ticks and their labels.
  out += "<g stroke=\"#e5e5e5\" stroke-width=\"1\">\n";
  for (double t : xa.ticks) out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/>\n", number(px(t)), number(top), number(bottom));
  for (double t : ya.ticks) out += fmt::format("<line x1=\"{1}\" y1=\"{0}\" x2=\"{2}\" y2=\"{0}\"/>\n", number(py(t)), number(left), number(left + plot_w));
  out += "</g>\n";
  out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#000000\"/>\n", number(left),
                     number(top), number(plot_w), number(plot_h));
  out += "<g stroke=\"#000000\">\n";
  for (double t : xa.ticks) out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/>\n", number(px(t)), number(bottom), number(bottom + 5));
  for (double t : ya.ticks) out += fmt::format("<line x1=\"{1}\" y1=\"{0}\" x2=\"{2}\" y2=\"{0}\"/>\n", number(py(t)), number(left - 5), number(left));
  out += "</g>\n<g fill=\"#000000\" text-anchor=\"middle\">\n";
  for (size_t i = 0; i < xa.ticks.size(); ++i) {
    out += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", number(px(xa.ticks[i])), number(bottom + 18), xa.labels[i]);
  }
  out += "</g>\n<g fill=\"#000000\" text-anchor=\"end\">\n";
  for (size_t i = 0; i < ya.ticks.size(); ++i) {
    out += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", number(left - 8), number(py(ya.ticks[i]) + 4), ya.labels[i]);
  }
  out += "</g>\n";
  if (!options.x_label.empty()) {
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", number(left + plot_w / 2),
                       number(height - 8), xml_escape(options.x_label));
  }
  if (!options.y_label.empty()) {
    out += fmt::format("<text transform=\"rotate(-90)\" x=\"{}\" y=\"16\" text-anchor=\"middle\">{}</text>\n",
                       number(-(top + plot_h / 2)), xml_escape(options.y_label));
  }

  // The data: a polyline per run of finite points, and a dot for a run of one.
  // NB: points beyond a fixed y range are clamped to a band around the plot, so
  // their coordinates stay short; the clip path hides the band.
  out += "<g fill=\"none\" stroke-width=\"1.5\" stroke-linejoin=\"round\" clip-path=\"url(#plot-area)\">\n";
  std::vector<std::string> colors;
  for (size_t s = 0; s < series.size(); ++s) {
    const PlotSeries& ps = series[s];
    colors.push_back(xml_escape(ps.color.empty() ? kPalette[s % std::size(kPalette)] : ps.color));
    std::string points;
    size_t count = 0;
    std::string last;
    const auto flush = [&] {
      if (count > 0) out += "<polyline stroke=\"" + colors[s] + "\" points=\"" + points + "\"/>\n";
      if (count == 1) out += "<circle " + last + " r=\"2.5\" fill=\"" + colors[s] + "\" stroke=\"none\"/>\n";
      points.clear();
      count = 0;
    };
    for (size_t i = 0; i < ps.x.size(); ++i) {
      double x = px(ps.x[i]), y = py(ps.y[i]);
      if (!std::isfinite(ps.x[i]) || !std::isfinite(ps.y[i]) || !std::isfinite(x) || !std::isfinite(y)) {
        flush();
        continue;
      }
      x = std::clamp(x, left - 10 * plot_w, left + 11 * plot_w);
      y = std::clamp(y, top - 10 * plot_h, bottom + 10 * plot_h);
      if (count > 0) points += ' ';
      points += number(x) + ',' + number(y);
      last = "cx=\"" + number(x) + "\" cy=\"" + number(y) + "\"";
      ++count;
    }
    flush();
  }
  out += "</g>\n";
  if (!any) {
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#808080\">no data</text>\n",
                       number(left + plot_w / 2), number(top + plot_h / 2));
  }

  // Legend, top down in the right margin.
  double legend_y = top + 10;
  for (size_t s = 0; s < series.size(); ++s) {
    if (series[s].name.empty()) continue;
    const double x = left + plot_w + 12;
    out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"{3}\" stroke-width=\"2\"/>\n", number(x),
                       number(legend_y), number(x + 18), colors[s]);
    out += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", number(x + 24), number(legend_y + 4), xml_escape(series[s].name));
    legend_y += 18;
  }
  if (!options.title.empty()) {
    out += fmt::format("<text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">{}</text>\n", number(width / 2),
                       xml_escape(options.title));
  }
  out += "</svg>\n";
  return out;
}

void write_svg_line_plot(const std::string& path, const std::vector<PlotSeries>& series, const PlotOptions& options) {
  write_file_atomic(path, svg_line_plot(series, options));
}

}  // namespace grpo
