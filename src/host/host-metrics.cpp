/* zoomrtms-host — Prometheus metrics. See host-metrics.h. */
#include "host-metrics.h"

#include <glib/gstdio.h>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace zhost {

const char *const MetricsRegistry::kContentType =
    "text/plain; version=0.0.4; charset=utf-8";

std::string
MetricsRegistry::escape_label_value (const std::string &v)
{
  g_autofree gchar *valid = g_utf8_make_valid (v.data (), static_cast<gssize> (v.size ()));
  std::string out;
  for (const char *c = valid; *c; c++) {
    switch (*c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += *c;
    }
  }
  return out;
}

std::string
MetricsRegistry::escape_help (const std::string &v)
{
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string
MetricsRegistry::format_value (double v)
{
  if (std::isnan (v))
    return "NaN";
  if (std::isinf (v))
    return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor (v) && std::fabs (v) < 9007199254740992.0) {
    char buf[32];
    g_snprintf (buf, sizeof buf, "%.0f", v);
    return buf;
  }
  /* the shortest of %.15g / %.17g that reads back exactly; '.' whatever
   * the locale */
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_ascii_formatd (buf, sizeof buf, "%.15g", v);
  if (g_ascii_strtod (buf, nullptr) != v)
    g_ascii_formatd (buf, sizeof buf, "%.17g", v);
  return buf;
}

void
MetricsRegistry::describe (const std::string &name, const std::string &help,
    Type type, const std::vector<std::string> &labels,
    const std::vector<double> &buckets)
{
  std::lock_guard<std::mutex> g (lock_);
  if (find (name))
    return;
  Family f;
  f.name = name;
  f.help = help;
  f.type = type;
  f.labels = labels;
  f.bounds = buckets;
  families_.push_back (std::move (f));
}

MetricsRegistry::Family *
MetricsRegistry::find (const std::string &name)
{
  for (auto &f : families_)
    if (f.name == name)
      return &f;
  return nullptr;
}

const MetricsRegistry::Family *
MetricsRegistry::find (const std::string &name) const
{
  for (const auto &f : families_)
    if (f.name == name)
      return &f;
  return nullptr;
}

MetricsRegistry::Series &
MetricsRegistry::series_of (Family &f, const std::vector<std::string> &values)
{
  std::vector<std::string> key = values;
  key.resize (f.labels.size ());
  Series &s = f.series[key];
  if (f.type == Type::HISTOGRAM && s.buckets.size () != f.bounds.size ())
    s.buckets.assign (f.bounds.size (), 0);
  return s;
}

void
MetricsRegistry::add (const std::string &name, const std::vector<std::string> &values,
    double v)
{
  std::lock_guard<std::mutex> g (lock_);
  Family *f = find (name);
  if (!f || f->type == Type::HISTOGRAM || (f->type == Type::COUNTER && !(v >= 0)))
    return;
  series_of (*f, values).value += v;
}

void
MetricsRegistry::set (const std::string &name, const std::vector<std::string> &values,
    double v)
{
  std::lock_guard<std::mutex> g (lock_);
  Family *f = find (name);
  if (!f || f->type == Type::HISTOGRAM)
    return;
  series_of (*f, values).value = v;
}

void
MetricsRegistry::observe (const std::string &name,
    const std::vector<std::string> &values, double v, guint64 count)
{
  std::lock_guard<std::mutex> g (lock_);
  Family *f = find (name);
  if (!f || f->type != Type::HISTOGRAM || std::isnan (v))
    return;
  Series &s = series_of (*f, values);
  for (size_t i = 0; i < f->bounds.size (); i++)
    if (v <= f->bounds[i]) {
      s.buckets[i] += count;
      break;
    }
  s.count += count;
  s.sum += v * static_cast<double> (count);
}

double
MetricsRegistry::value (const std::string &name,
    const std::vector<std::string> &values) const
{
  std::lock_guard<std::mutex> g (lock_);
  const Family *f = find (name);
  if (!f)
    return 0;
  std::vector<std::string> key = values;
  key.resize (f->labels.size ());
  auto it = f->series.find (key);
  if (it == f->series.end ())
    return 0;
  return f->type == Type::HISTOGRAM ? static_cast<double> (it->second.count)
      : it->second.value;
}

static std::string
label_text (const std::vector<std::string> &names,
    const std::vector<std::string> &values, const char *extra_name = nullptr,
    const std::string &extra_value = "")
{
  std::string out;
  for (size_t i = 0; i < names.size (); i++) {
    out += out.empty () ? "{" : ",";
    out += names[i] + "=\"" + MetricsRegistry::escape_label_value (values[i]) + "\"";
  }
  if (extra_name) {
    out += out.empty () ? "{" : ",";
    out += std::string (extra_name) + "=\"" + extra_value + "\"";
  }
  if (!out.empty ())
    out += "}";
  return out;
}

std::string
MetricsRegistry::expose () const
{
  std::lock_guard<std::mutex> g (lock_);
  std::string out;
  for (const auto &f : families_) {
    const char *type = f.type == Type::COUNTER ? "counter" :
        f.type == Type::GAUGE ? "gauge" : "histogram";
    out += "# HELP " + f.name + " " + escape_help (f.help) + "\n";
    out += "# TYPE " + f.name + " " + type + "\n";
    for (const auto &kv : f.series) {
      const Series &s = kv.second;
      if (f.type != Type::HISTOGRAM) {
        out += f.name + label_text (f.labels, kv.first) + " " +
            format_value (s.value) + "\n";
        continue;
      }
      guint64 cum = 0;
      for (size_t i = 0; i < f.bounds.size (); i++) {
        cum += s.buckets[i];
        out += f.name + "_bucket" + label_text (f.labels, kv.first, "le",
            format_value (f.bounds[i])) + " " + std::to_string (cum) + "\n";
      }
      out += f.name + "_bucket" + label_text (f.labels, kv.first, "le", "+Inf") +
          " " + std::to_string (s.count) + "\n";
      out += f.name + "_sum" + label_text (f.labels, kv.first) + " " +
          format_value (s.sum) + "\n";
      out += f.name + "_count" + label_text (f.labels, kv.first) + " " +
          std::to_string (s.count) + "\n";
    }
  }
  return out;
}

/* ------------------------------------------------------------ process */

void
describe_process_metrics (MetricsRegistry *r)
{
  using T = MetricsRegistry::Type;
  r->describe ("process_cpu_seconds_total",
      "Total user and system CPU time spent in seconds.", T::COUNTER);
  r->describe ("process_resident_memory_bytes", "Resident memory size in bytes.",
      T::GAUGE);
  r->describe ("process_virtual_memory_bytes", "Virtual memory size in bytes.",
      T::GAUGE);
  r->describe ("process_start_time_seconds",
      "Start time of the process since unix epoch in seconds.", T::GAUGE);
  r->describe ("process_open_fds", "Number of open file descriptors.", T::GAUGE);
  r->describe ("process_max_fds", "Maximum number of open file descriptors.",
      T::GAUGE);
}

void
update_process_metrics (MetricsRegistry *r)
{
  double tick = static_cast<double> (sysconf (_SC_CLK_TCK));
  g_autofree gchar *stat = nullptr;
  if (tick > 0 && g_file_get_contents ("/proc/self/stat", &stat, nullptr, nullptr)) {
    /* proc(5): fields after the last ')' (the comm may hold spaces and
     * parentheses); utime is field 14, stime 15, starttime 22 */
    const char *p = strrchr (stat, ')');
    g_auto (GStrv) f = p ? g_strsplit (p + 2, " ", -1) : nullptr;
    /* f[0] is field 3 (state) */
    if (f && g_strv_length (f) > 19) {
      double utime = g_ascii_strtod (f[11], nullptr);
      double stime = g_ascii_strtod (f[12], nullptr);
      r->set ("process_cpu_seconds_total", {}, (utime + stime) / tick);
      double start_ticks = g_ascii_strtod (f[19], nullptr);
      g_autofree gchar *pstat = nullptr;
      if (g_file_get_contents ("/proc/stat", &pstat, nullptr, nullptr)) {
        const char *b = strstr (pstat, "\nbtime ");
        if (b)
          r->set ("process_start_time_seconds", {},
              g_ascii_strtod (b + 7, nullptr) + start_ticks / tick);
      }
    }
  }
  g_autofree gchar *statm = nullptr;
  if (g_file_get_contents ("/proc/self/statm", &statm, nullptr, nullptr)) {
    double page = static_cast<double> (sysconf (_SC_PAGESIZE));
    g_auto (GStrv) f = g_strsplit (statm, " ", -1);
    if (g_strv_length (f) >= 2) {
      r->set ("process_virtual_memory_bytes", {}, g_ascii_strtod (f[0], nullptr) * page);
      r->set ("process_resident_memory_bytes", {}, g_ascii_strtod (f[1], nullptr) * page);
    }
  }
  if (GDir *d = g_dir_open ("/proc/self/fd", 0, nullptr)) {
    double n = 0;
    while (g_dir_read_name (d))
      n++;
    g_dir_close (d);
    r->set ("process_open_fds", {}, n - 1);   /* minus the GDir's own fd */
  }
  struct rlimit rl;
  if (getrlimit (RLIMIT_NOFILE, &rl) == 0)
    r->set ("process_max_fds", {}, rl.rlim_cur == RLIM_INFINITY ? INFINITY :
        static_cast<double> (rl.rlim_cur));
}

/* --------------------------------------------------------------- host */

static const char *const kCauses[] = {"media", "signaling", "host-restart",
  "host-crash", "failover", "other"};

HostMetrics::HostMetrics ()
{
  using T = MetricsRegistry::Type;
  reg_.describe ("zoomrtms_engagements_active",
      "Engagements whose pipeline is running (starting, running or stopping).",
      T::GAUGE);
  reg_.describe ("zoomrtms_packets_received_total",
      "Audio packets (RTMS msg 14) received by the engagements' zoomrtmssrc.",
      T::COUNTER);
  reg_.describe ("zoomrtms_silence_inserted_seconds_total",
      "Silence inserted for gaps inside channels (mute, hold, loss), seconds "
      "per channel summed.", T::COUNTER);
  reg_.describe ("zoomrtms_reconnects_total",
      "Interruptions of RTMS streams by cause: media or signaling (the element "
      "rejoined), host-restart or host-crash (a host continued the recording), "
      "failover (new server_urls).", T::COUNTER, {"cause"});
  reg_.describe ("zoomrtms_webhooks_total",
      "Webhook requests by event (\"unverified\": refused before the body was "
      "trusted; \"other\": an event the host does not know) and HTTP status.",
      T::COUNTER, {"event", "status"});
  reg_.describe ("zoomrtms_frame_latency_seconds",
      "Latency of the audio buffers zoomrtmssrc pushes: RTMS timestamp to "
      "leaving its src pad (1 ms buckets of the element, at their upper edge).",
      T::HISTOGRAM, {}, {0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2});
  describe_process_metrics (&reg_);
  reg_.add ("zoomrtms_packets_received_total", {}, 0);
  reg_.add ("zoomrtms_silence_inserted_seconds_total", {}, 0);
  for (const char *c : kCauses)
    reg_.add ("zoomrtms_reconnects_total", {c}, 0);
  reg_.observe ("zoomrtms_frame_latency_seconds", {}, 0, 0);
}

const char *
HostMetrics::webhook_event_label (const char *event)
{
  static const char *const known[] = {
    "endpoint.url_validation",
    "meeting.rtms_started", "meeting.rtms_stopped", "meeting.rtms_interrupted",
    "webinar.rtms_started", "webinar.rtms_stopped", "webinar.rtms_interrupted",
    "session.rtms_started", "session.rtms_stopped", "session.rtms_interrupted",
    "contact_center.voice_rtms_started", "contact_center.voice_rtms_stopped",
    "contact_center.voice_rtms_interrupted",
    "phone.rtms_started", "phone.rtms_stopped", "phone.rtms_interrupted",
    "phone.call_rtms_started", "phone.call_rtms_stopped",
    "phone.call_rtms_interrupted",
  };
  if (!event)
    return "unverified";
  for (const char *k : known)
    if (g_str_equal (k, event))
      return k;
  return "other";
}

void
HostMetrics::webhook (const char *event, guint status)
{
  if (status < 100 || status > 599)
    status = 500;
  reg_.add ("zoomrtms_webhooks_total",
      {webhook_event_label (event), std::to_string (status)}, 1);
}

static guint64
member_u64 (JsonObject *o, const char *name)
{
  if (!o || !json_object_has_member (o, name))
    return 0;
  JsonNode *n = json_object_get_member (o, name);
  if (!JSON_NODE_HOLDS_VALUE (n))
    return 0;
  gint64 v = json_node_get_int (n);
  return v > 0 ? static_cast<guint64> (v) : 0;
}

void
HostMetrics::engagement (JsonObject *obj, int rate, bool final)
{
  if (!obj)
    return;
  std::string key = std::string (json_object_get_string_member_with_default (obj,
      "rtms_stream_id", "")) + "/" +
      json_object_get_string_member_with_default (obj, "dir_name", "");
  Seen &seen = seen_[key];
  /* a counter of the element that went down (a new element) restarts */
  auto delta = [] (guint64 now, guint64 *was) {
    guint64 d = now >= *was ? now - *was : now;
    *was = now;
    return d;
  };
  guint64 packets = member_u64 (obj, "frames");
  reg_.add ("zoomrtms_packets_received_total", {}, static_cast<double> (
      delta (packets, &seen.packets)));
  guint64 silence = member_u64 (obj, "silence_inserted_samples");
  if (rate > 0)
    reg_.add ("zoomrtms_silence_inserted_seconds_total", {},
        static_cast<double> (delta (silence, &seen.silence_samples)) / rate);

  std::map<std::string, guint64> causes;
  causes["failover"] = member_u64 (obj, "failovers");
  JsonArray *ints = json_object_has_member (obj, "interruptions") &&
      JSON_NODE_HOLDS_ARRAY (json_object_get_member (obj, "interruptions")) ?
      json_object_get_array_member (obj, "interruptions") : nullptr;
  for (guint i = 0; ints && i < json_array_get_length (ints); i++) {
    JsonNode *n = json_array_get_element (ints, i);
    if (!JSON_NODE_HOLDS_OBJECT (n))
      continue;
    const char *c = json_object_get_string_member_with_default (
        json_node_get_object (n), "cause", "other");
    const char *label = "other";
    for (const char *k : kCauses)
      if (g_str_equal (k, c))
        label = k;
    causes[label]++;
  }
  for (const auto &kv : causes) {
    guint64 &was = seen.causes[kv.first];
    if (kv.second > was)
      reg_.add ("zoomrtms_reconnects_total", {kv.first},
          static_cast<double> (kv.second - was));
    was = std::max (was, kv.second);
  }

  JsonObject *stats = json_object_has_member (obj, "stats") &&
      JSON_NODE_HOLDS_OBJECT (json_object_get_member (obj, "stats")) ?
      json_object_get_object_member (obj, "stats") : nullptr;
  const char *hist = stats ? json_object_get_string_member_with_default (stats,
      "latency_histogram_ms", "") : "";
  /* "BUCKET:COUNT,…", BUCKET the lower edge in ms of a 1 ms bucket, 2000 = ≥ 2 s
   * (gstzoomrtmssrc.cpp "zoomrtms/stats") */
  g_auto (GStrv) parts = g_strsplit (hist, ",", -1);
  for (gchar **p = parts; *p; p++) {
    guint64 b = 0, n = 0;
    gchar *colon = strchr (*p, ':');
    if (!colon)
      continue;
    *colon = '\0';
    if (!g_ascii_string_to_unsigned (*p, 10, 0, 100000, &b, nullptr) ||
        !g_ascii_string_to_unsigned (colon + 1, 10, 0, G_MAXUINT64, &n, nullptr))
      continue;
    guint64 &was = seen.latency[static_cast<guint> (b)];
    if (n > was) {
      double upper = b >= 2000 ? INFINITY : (static_cast<double> (b) + 1) / 1000.0;
      /* +Inf would make the sum infinite: count it at 2 s + 1 ms */
      reg_.observe ("zoomrtms_frame_latency_seconds", {},
          std::isinf (upper) ? 2.001 : upper, n - was);
    }
    was = std::max (was, n);
  }
  if (final)
    seen_.erase (key);
}

std::string
HostMetrics::scrape (gsize active)
{
  reg_.set ("zoomrtms_engagements_active", {}, static_cast<double> (active));
  update_process_metrics (&reg_);
  return reg_.expose ();
}

HostMetrics &
host_metrics ()
{
  static HostMetrics *m = new HostMetrics ();
  return *m;
}

} // namespace zhost
