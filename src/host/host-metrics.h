/* zoomrtms-host — Prometheus metrics: a small registry written in the text
 * exposition format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/),
 * the standard process metrics read from /proc, and the host's own metrics
 * derived from what the host already has (webhook answers, the engagement
 * objects of Engagement::to_json(): the `stats` of `src`).
 *
 * Why our own: no maintained C or C++ Prometheus client is packaged in
 * Debian 12 (prometheus-cpp is not), and the format is a few rules:
 * - a family is `# HELP name text` (text escapes `\` and newline), `# TYPE
 *   name counter|gauge|histogram`, then one line per series
 *   `name{label="value",…} number`; label values escape `\`, `"` and
 *   newline; numbers are Go floats (`+Inf`, `NaN`);
 * - a histogram has `name_bucket{le="…"}` cumulative counts with a last
 *   `le="+Inf"` equal to `name_count`, and `name_sum`;
 * - counters are named `…_total` and only go up (best practice:
 *   https://prometheus.io/docs/practices/naming/).
 * Every label value the host writes comes from a fixed set (webhook events
 * not in the set are "other"), so nobody outside can create series.
 *
 * Thread-safety: every method locks; the host calls them from its main
 * context.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace zhost {

class MetricsRegistry {
 public:
  enum class Type { COUNTER, GAUGE, HISTOGRAM };

  /** describe:
   * Declares the family @name (a valid metric name, [a-zA-Z_:][a-zA-Z0-9_:]*)
   * with its @help text, @type and label names. @buckets: a histogram's upper
   * bounds, ascending, without +Inf. Families are written in the order they
   * were described. Describing a name twice keeps the first.
   */
  void describe (const std::string &name, const std::string &help, Type type,
      const std::vector<std::string> &labels = {},
      const std::vector<double> &buckets = {});

  /** add: counter (or gauge) @name{@values} += @v (@v ≥ 0 for a counter).
   * @values: one value per label name, in order. Unknown family: ignored. */
  void add (const std::string &name, const std::vector<std::string> &values,
      double v);

  /** set: gauge (or a counter read from elsewhere, e.g. /proc) = @v. */
  void set (const std::string &name, const std::vector<std::string> &values,
      double v);

  /** observe: @count observations of @v in histogram @name{@values}. */
  void observe (const std::string &name, const std::vector<std::string> &values,
      double v, guint64 count = 1);

  /** value: a counter's or gauge's current value (0 if absent); tests. */
  double value (const std::string &name, const std::vector<std::string> &values) const;

  /** expose:
   * Returns: every family in the text exposition format 0.0.4 (content type
   * kContentType), ending in a newline.
   */
  std::string expose () const;

  static const char *const kContentType;

  /** escape_label_value: `\` → `\\`, `"` → `\"`, newline → `\n`; invalid
   * UTF-8 replaced by U+FFFD. */
  static std::string escape_label_value (const std::string &v);
  /** escape_help: `\` → `\\`, newline → `\n`. */
  static std::string escape_help (const std::string &v);
  /** format_value: a Go-style float: integers without a fraction, `+Inf`,
   * `-Inf`, `NaN`, else the shortest text that reads back the same. */
  static std::string format_value (double v);

 private:
  struct Series {
    double value = 0;
    std::vector<guint64> buckets;   /* per bound (not cumulative) */
    guint64 count = 0;
    double sum = 0;
  };
  struct Family {
    std::string name, help;
    Type type = Type::COUNTER;
    std::vector<std::string> labels;
    std::vector<double> bounds;
    std::map<std::vector<std::string>, Series> series;
  };
  Family *find (const std::string &name);
  const Family *find (const std::string &name) const;
  Series &series_of (Family &f, const std::vector<std::string> &values);

  mutable std::mutex lock_;
  std::vector<Family> families_;
};

/** ProcessMetrics:
 * process_cpu_seconds_total (utime + stime of /proc/self/stat),
 * process_resident_memory_bytes (/proc/self/statm resident × page size),
 * process_virtual_memory_bytes, process_start_time_seconds (the start tick of
 * /proc/self/stat + btime of /proc/stat, epoch seconds), process_open_fds
 * (entries of /proc/self/fd) and process_max_fds (RLIMIT_NOFILE): the names
 * and meanings of the Prometheus client libraries' process collector.
 */
void describe_process_metrics (MetricsRegistry *r);
void update_process_metrics (MetricsRegistry *r);

/** HostMetrics:
 * The host's families, fed from what it already has:
 * - zoomrtms_engagements_active (gauge), set at each scrape;
 * - zoomrtms_packets_received_total: audio packets (msg 14) received by
 *   `src` ("frames-received" of its stats), summed over engagements;
 * - zoomrtms_silence_inserted_seconds_total: silence inserted for gaps
 *   ("silence-samples" / rate of the src pad's caps);
 * - zoomrtms_reconnects_total{cause}: interruptions by cause ("media",
 *   "signaling": the element rejoined; "host-restart", "host-crash": a host
 *   continued the recording; "failover": new server_urls; "other");
 * - zoomrtms_webhooks_total{event,status}: webhook requests by event (a
 *   known event name, "other" for an unknown one, "unverified" when the
 *   signature or size check failed and the body was not read) and HTTP
 *   status;
 * - zoomrtms_frame_latency_seconds: the latency of the buffers `src` pushes
 *   (RTMS timestamp → leaving the src pad; "latency-histogram-ms" of its
 *   stats, 1 ms buckets counted at their upper edge; ≥ 2000 ms only in +Inf).
 * Counters are kept as deltas of each engagement's cumulative stats (keyed by
 * its rtms_stream_id and directory name), so reading a live engagement at
 * every scrape and its final object at its end counts everything once.
 */
class HostMetrics {
 public:
  HostMetrics ();
  MetricsRegistry &registry () { return reg_; }

  /** webhook: one webhook answered with HTTP @status. @event: the verified
   * event name, or NULL when it was not verified. */
  void webhook (const char *event, guint status);

  /** engagement: counts what @obj (an Engagement::to_json() object) adds
   * since the last call with the same engagement. @rate: Hz of the src pad's
   * caps, 0 unknown (silence is counted once it is known). @final: the
   * engagement ended; its state is dropped. */
  void engagement (JsonObject *obj, int rate, bool final);

  /** scrape: sets the gauges (@active engagements, process metrics) and
   * returns the exposition text. */
  std::string scrape (gsize active);

  /** webhook_event_label: @event if it is one the host knows, else "other". */
  static const char *webhook_event_label (const char *event);

 private:
  struct Seen {
    guint64 packets = 0, silence_samples = 0;
    std::map<std::string, guint64> causes;
    std::map<guint, guint64> latency;     /* bucket ms → count */
  };
  MetricsRegistry reg_;
  std::map<std::string, Seen> seen_;
};

/** host_metrics: the process's metrics (the default registry, as Prometheus
 * clients have one). */
HostMetrics &host_metrics ();

} // namespace zhost
