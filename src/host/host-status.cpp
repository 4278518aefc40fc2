/* zoomrtms-host — the status page, its data, and /metrics. See host-status.h. */
#include "host-status.h"

#include "host-common.h"
#include "host-history.h"
extern "C" {
#include "status-resources.h"   /* glib-compile-resources, C */
}

#include <glib/gstdio.h>
#include <gst/audio/audio.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#define GST_CAT_DEFAULT zoomrtms_host_debug

namespace zhost {

/* ------------------------------------------------------------ meters */

void
LevelMeter::set_format (int channels, int rate)
{
  channels_.store (std::min (std::max (channels, 0), kMaxChannels),
      std::memory_order_relaxed);
  rate_.store (rate, std::memory_order_relaxed);
}

void
LevelMeter::measure (const guint8 *data, gsize bytes)
{
  int ch = channels_.load (std::memory_order_relaxed);
  if (ch <= 0 || g_get_monotonic_time () > watched_until_.load (std::memory_order_relaxed))
    return;
  gsize frames = bytes / (2 * static_cast<gsize> (ch));
  guint32 peak[kMaxChannels] = {};
  guint64 sumsq[kMaxChannels] = {};
  for (gsize i = 0; i < frames; i++)
    for (int c = 0; c < ch; c++) {
      const guint8 *p = data + (i * ch + c) * 2;
      gint32 v = static_cast<gint16> (GST_READ_UINT16_LE (p));
      guint32 a = static_cast<guint32> (v < 0 ? -v : v);
      peak[c] = std::max (peak[c], a);
      sumsq[c] += static_cast<guint64> (a) * a;
    }
  for (int c = 0; c < ch; c++) {
    guint32 cur = peak_[c].load (std::memory_order_relaxed);
    while (peak[c] > cur &&
        !peak_[c].compare_exchange_weak (cur, peak[c], std::memory_order_relaxed))
      ;
    sumsq_[c].fetch_add (sumsq[c], std::memory_order_relaxed);
  }
  frames_.fetch_add (frames, std::memory_order_relaxed);
}

static double
to_db (double v)
{
  return v > 0 ? std::max (-100.0, 20 * std::log10 (v)) : -100.0;
}

LevelMeter::Reading
LevelMeter::take ()
{
  watched_until_.store (g_get_monotonic_time () + kWatchUs, std::memory_order_relaxed);
  Reading r;
  r.channels = channels_.load (std::memory_order_relaxed);
  r.rate = rate_.load (std::memory_order_relaxed);
  guint64 frames = frames_.exchange (0, std::memory_order_relaxed);
  for (int c = 0; c < r.channels; c++) {
    guint32 peak = peak_[c].exchange (0, std::memory_order_relaxed);
    guint64 sumsq = sumsq_[c].exchange (0, std::memory_order_relaxed);
    r.peak_db.push_back (to_db (peak / 32768.0));
    r.rms_db.push_back (frames ? to_db (std::sqrt (static_cast<double> (sumsq) /
        static_cast<double> (frames)) / 32768.0) : -100.0);
  }
  return r;
}

static std::map<std::string, std::shared_ptr<LevelMeter>> &
meters ()
{
  static auto *m = new std::map<std::string, std::shared_ptr<LevelMeter>> ();
  return *m;
}

static gboolean
measure_buffer (GstBuffer **buf, guint, gpointer data)
{
  auto *m = static_cast<LevelMeter *> (data);
  GstMapInfo mi;
  if (gst_buffer_map (*buf, &mi, GST_MAP_READ)) {
    m->measure (mi.data, mi.size);
    gst_buffer_unmap (*buf, &mi);
  }
  return TRUE;
}

static GstPadProbeReturn
meter_probe (GstPad *, GstPadProbeInfo *info, gpointer data)
{
  auto *m = static_cast<std::shared_ptr<LevelMeter> *> (data)->get ();
  if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    GstEvent *ev = GST_PAD_PROBE_INFO_EVENT (info);
    if (GST_EVENT_TYPE (ev) == GST_EVENT_CAPS) {
      GstCaps *caps = nullptr;
      gst_event_parse_caps (ev, &caps);
      GstAudioInfo ai;
      /* layout=packets (zoomrtmsdemux) is not audio/x-raw: no meter */
      if (caps && gst_structure_has_name (gst_caps_get_structure (caps, 0),
              "audio/x-raw") && gst_audio_info_from_caps (&ai, caps) &&
          GST_AUDIO_INFO_FORMAT (&ai) == GST_AUDIO_FORMAT_S16LE &&
          GST_AUDIO_INFO_LAYOUT (&ai) == GST_AUDIO_LAYOUT_INTERLEAVED)
        m->set_format (GST_AUDIO_INFO_CHANNELS (&ai), GST_AUDIO_INFO_RATE (&ai));
      else {
        gint rate = 0;
        if (caps)
          gst_structure_get_int (gst_caps_get_structure (caps, 0), "rate", &rate);
        m->set_format (0, rate);
      }
    }
  } else if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER (info);
    measure_buffer (&b, 0, m);
  } else if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
    gst_buffer_list_foreach (GST_PAD_PROBE_INFO_BUFFER_LIST (info), measure_buffer, m);
  }
  return GST_PAD_PROBE_OK;
}

void
level_meter_attach (const std::string &key, GstElement *src)
{
  if (!src)
    return;
  GstPad *pad = gst_element_get_static_pad (src, "src");
  if (!pad)
    return;
  auto m = std::make_shared<LevelMeter> ();
  gst_pad_add_probe (pad, static_cast<GstPadProbeType> (GST_PAD_PROBE_TYPE_BUFFER |
          GST_PAD_PROBE_TYPE_BUFFER_LIST | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
      meter_probe, new std::shared_ptr<LevelMeter> (m),
      [] (gpointer d) { delete static_cast<std::shared_ptr<LevelMeter> *> (d); });
  gst_object_unref (pad);
  meters ()[key] = std::move (m);
}

std::string
meter_key (const std::string &rtms_stream_id, const std::string &dir_name)
{
  return rtms_stream_id + "/" + dir_name;
}

static std::shared_ptr<LevelMeter>
meter_of (JsonObject *o)
{
  return level_meter_find (meter_key (
      json_object_get_string_member_with_default (o, "rtms_stream_id", ""),
      json_object_get_string_member_with_default (o, "dir_name", "")));
}

void
level_meter_detach (const std::string &key)
{
  meters ().erase (key);
}

std::shared_ptr<LevelMeter>
level_meter_find (const std::string &key)
{
  auto it = meters ().find (key);
  return it == meters ().end () ? nullptr : it->second;
}

/* ------------------------------------------------------------ service */

struct StatusService::Stream {
  StatusService *svc = nullptr;
  SoupServerMessage *msg = nullptr;     /* ref */
  gulong finished_id = 0;
  gulong wrote_id = 0;
  gint64 opened_us = 0;
  gsize queued = 0;             /* bytes appended, not yet written */
  bool closing = false;
};

static void
set_json (SoupServerMessage *msg, guint status, const std::string &body)
{
  soup_server_message_set_status (msg, status, nullptr);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
      "Cache-Control", "no-store");
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY,
      body.data (), body.size ());
}

StatusService::StatusService (SoupServer *server, const std::string &output_root,
    Hooks hooks)
    : server_ (server), root_ (output_root), hooks_ (std::move (hooks))
{
  soup_server_add_handler (server_, "/status", status_cb, this, nullptr);
  soup_server_add_handler (server_, "/metrics", metrics_cb, this, nullptr);
}

StatusService::~StatusService ()
{
  soup_server_remove_handler (server_, "/status");
  soup_server_remove_handler (server_, "/metrics");
  if (tick_id_)
    g_source_remove (tick_id_);
  for (auto &s : streams_) {
    g_signal_handler_disconnect (s->msg, s->finished_id);
    g_signal_handler_disconnect (s->msg, s->wrote_id);
    g_object_unref (s->msg);
  }
}

/* the management API's rule; answers 401/403 like /engagements */
bool
StatusService::refuse (SoupServerMessage *msg)
{
  guint allowed = hooks_.allowed ? hooks_.allowed (msg)
      : static_cast<guint> (SOUP_STATUS_FORBIDDEN);
  if (allowed == SOUP_STATUS_OK)
    return false;
  if (allowed == SOUP_STATUS_UNAUTHORIZED) {
    const char *auth = soup_message_headers_get_one (
        soup_server_message_get_request_headers (msg), "Authorization");
    soup_message_headers_replace (soup_server_message_get_response_headers (msg),
        "WWW-Authenticate", auth ?
        "Bearer realm=\"zoomrtms-host\", error=\"invalid_token\"" :
        "Bearer realm=\"zoomrtms-host\"");
    set_json (msg, allowed, json_error_body ("A valid Bearer token is required"));
  } else {
    set_json (msg, allowed, json_error_body (
        "The status page answers loopback clients only (set [http] api-token)"));
  }
  return true;
}

bool
StatusService::handle_root (SoupServerMessage *msg, const char *path)
{
  if (!g_str_equal (path, "/"))
    return false;
  serve_asset (msg, "index.html");
  return true;
}

void
StatusService::serve_asset (SoupServerMessage *msg, const char *name)
{
  const char *method = soup_server_message_get_method (msg);
  if (!g_str_equal (method, SOUP_METHOD_GET) && !g_str_equal (method, SOUP_METHOD_HEAD)) {
    set_json (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, json_error_body ("Use GET"));
    return;
  }
  /* the page holds no data: public when a token guards the data, else the
   * same rule as the data */
  if (!hooks_.token_set && refuse (msg))
    return;
  std::string path = std::string ("/org/zoomrtms/status/") + name;
  g_autoptr (GBytes) bytes = g_resource_lookup_data (zoomrtms_status_get_resource (),
      path.c_str (), G_RESOURCE_LOOKUP_FLAGS_NONE, nullptr);
  if (!bytes) {
    set_json (msg, SOUP_STATUS_NOT_FOUND, json_error_body ("Not found"));
    return;
  }
  const char *type = g_str_has_suffix (name, ".js") ? "text/javascript; charset=utf-8"
      : g_str_has_suffix (name, ".css") ? "text/css; charset=utf-8"
      : "text/html; charset=utf-8";
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);
  soup_message_headers_replace (h, "Content-Type", type);
  soup_message_headers_replace (h, "Cache-Control", "no-cache");
  soup_message_headers_replace (h, "X-Content-Type-Options", "nosniff");
  soup_message_headers_replace (h, "Referrer-Policy", "no-referrer");
  soup_message_headers_replace (h, "Content-Security-Policy",
      "default-src 'none'; script-src 'self'; style-src 'self'; "
      "connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
  soup_server_message_set_status (msg, SOUP_STATUS_OK, nullptr);
  soup_message_body_append_bytes (soup_server_message_get_response_body (msg), bytes);
}

void
StatusService::status_cb (SoupServer *, SoupServerMessage *msg, const char *path,
    GHashTable *, gpointer data)
{
  auto *self = static_cast<StatusService *> (data);
  std::string p = path;
  if (p == "/status" || p == "/status/" || p == "/status/index.html") {
    self->serve_asset (msg, "index.html");
    return;
  }
  if (p == "/status/app.js" || p == "/status/style.css") {
    self->serve_asset (msg, p.c_str () + strlen ("/status/"));
    return;
  }
  if (self->refuse (msg))
    return;
  if (!g_str_equal (soup_server_message_get_method (msg), SOUP_METHOD_GET)) {
    set_json (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, json_error_body ("Use GET"));
    return;
  }
  if (p == "/status/live") {
    std::string body = "{\"live\":" + self->live_json () + ",\"recent\":" +
        self->recent_json () + "}";
    set_json (msg, SOUP_STATUS_OK, body);
  } else if (p == "/status/events") {
    self->open_stream (msg);
  } else if (g_str_has_prefix (p.c_str (), "/status/files/")) {
    self->serve_file (msg, p.substr (strlen ("/status/files/")));
  } else {
    set_json (msg, SOUP_STATUS_NOT_FOUND, json_error_body ("Not found"));
  }
}

void
StatusService::metrics_cb (SoupServer *, SoupServerMessage *msg, const char *path,
    GHashTable *, gpointer data)
{
  auto *self = static_cast<StatusService *> (data);
  if (!g_str_equal (path, "/metrics")) {
    set_json (msg, SOUP_STATUS_NOT_FOUND, json_error_body ("Not found"));
    return;
  }
  if (self->refuse (msg))
    return;
  gsize total = 0;
  std::vector<JsonNode *> live = self->hooks_.live ?
      self->hooks_.live (G_MAXSIZE, &total) : std::vector<JsonNode *> ();
  for (JsonNode *n : live) {
    JsonObject *o = json_node_get_object (n);
    auto m = meter_of (o);
    host_metrics ().engagement (o, m ? m->rate () : 0, false);
    json_node_unref (n);
  }
  std::string text = host_metrics ().scrape (total);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, nullptr);
  soup_server_message_set_response (msg, MetricsRegistry::kContentType,
      SOUP_MEMORY_COPY, text.data (), text.size ());
}

void
StatusService::engagement_finished (JsonObject *obj)
{
  auto m = meter_of (obj);
  host_metrics ().engagement (obj, m ? m->rate () : 0, true);
  level_meter_detach (meter_key (
      json_object_get_string_member_with_default (obj, "rtms_stream_id", ""),
      json_object_get_string_member_with_default (obj, "dir_name", "")));
  recent_dirty_ = true;
}

/* ------------------------------------------------------ live and recent */

static void
copy_member (JsonBuilder *b, JsonObject *o, const char *name, const char *as = nullptr)
{
  json_builder_set_member_name (b, as ? as : name);
  if (o && json_object_has_member (o, name))
    json_builder_add_value (b, json_node_copy (json_object_get_member (o, name)));
  else
    json_builder_add_null_value (b);
}

/* parties: the channels of the element's stats (channel_id or user_id)
 * with their participant-mode and the display name the participant events
 * gave ("display_names" of the engagement object) */
static void
add_parties (JsonBuilder *b, JsonObject *o)
{
  JsonObject *names = json_object_has_member (o, "display_names") &&
      JSON_NODE_HOLDS_OBJECT (json_object_get_member (o, "display_names")) ?
      json_object_get_object_member (o, "display_names") : nullptr;
  json_builder_set_member_name (b, "parties");
  json_builder_begin_array (b);
  JsonObject *st = json_object_has_member (o, "stats") &&
      JSON_NODE_HOLDS_OBJECT (json_object_get_member (o, "stats")) ?
      json_object_get_object_member (o, "stats") : nullptr;
  JsonNode *cs = st && json_object_has_member (st, "channel_stats") ?
      json_object_get_member (st, "channel_stats") : nullptr;
  if (cs && JSON_NODE_HOLDS_ARRAY (cs)) {
    JsonArray *a = json_node_get_array (cs);
    for (guint i = 0; i < json_array_get_length (a); i++) {
      JsonNode *n = json_array_get_element (a, i);
      if (!JSON_NODE_HOLDS_OBJECT (n))
        continue;
      JsonObject *c = json_node_get_object (n);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "channel");
      json_builder_add_string_value (b,
          json_object_get_string_member_with_default (c, "channel", ""));
      json_builder_set_member_name (b, "mode");
      json_builder_add_string_value (b,
          json_object_get_string_member_with_default (c, "participant_mode", ""));
      const char *ch = json_object_get_string_member_with_default (c, "channel", "");
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, names ?
          json_object_get_string_member_with_default (names, ch, "") : "");
      json_builder_end_object (b);
    }
  }
  json_builder_end_array (b);
}

std::string
StatusService::live_json ()
{
  gsize total = 0;
  std::vector<JsonNode *> live = hooks_.live ? hooks_.live (kMaxLive, &total)
      : std::vector<JsonNode *> ();
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "time");
  json_builder_add_string_value (b, iso8601_utc (g_get_real_time ()).c_str ());
  json_builder_set_member_name (b, "total");
  json_builder_add_int_value (b, static_cast<gint64> (total));
  json_builder_set_member_name (b, "engagements");
  json_builder_begin_array (b);
  for (JsonNode *n : live) {
    JsonObject *o = json_node_get_object (n);
    const char *key = json_object_get_string_member_with_default (o, "id_key", "");
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "id");
    json_builder_add_string_value (b, json_object_get_string_member_with_default (o,
        *key ? key : "engagement_id", ""));
    for (const char *m : {"id_key", "rtms_stream_id", "dir_name", "product",
        "pipeline", "state", "start_time", "duration_s", "frames",
        "silence_inserted_samples", "failovers"})
      copy_member (b, o, m);
    json_builder_set_member_name (b, "interruptions");
    json_builder_add_int_value (b, json_object_has_member (o, "interruptions") &&
        JSON_NODE_HOLDS_ARRAY (json_object_get_member (o, "interruptions")) ?
        json_array_get_length (json_object_get_array_member (o, "interruptions")) : 0);
    add_parties (b, o);
    json_builder_set_member_name (b, "meters");
    json_builder_begin_object (b);
    auto meter = meter_of (o);
    LevelMeter::Reading r = meter ? meter->take () : LevelMeter::Reading ();
    json_builder_set_member_name (b, "rate");
    json_builder_add_int_value (b, r.rate);
    for (const char *what : {"peak_db", "rms_db"}) {
      json_builder_set_member_name (b, what);
      json_builder_begin_array (b);
      for (double v : g_str_equal (what, "peak_db") ? r.peak_db : r.rms_db)
        json_builder_add_double_value (b, std::round (v * 10) / 10);
      json_builder_end_array (b);
    }
    json_builder_end_object (b);
    json_builder_end_object (b);
    json_node_unref (n);
  }
  json_builder_end_array (b);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  return json_to_compact (root);
}

std::string
StatusService::recent_json ()
{
  /* a scan costs two lstat(2) per engagement directory: only when an
   * engagement ended or one was added (the root's mtime), at most every 5 s
   * otherwise */
  gint64 now = g_get_monotonic_time ();
  GStatBuf rs;
  gint64 root_mtime = g_stat (root_.c_str (), &rs) == 0 ?
      static_cast<gint64> (rs.st_mtim.tv_sec) * 1000000000 + rs.st_mtim.tv_nsec : 0;
  if (recent_dirty_ || recent_cache_.empty () ||
      (root_mtime != recent_root_mtime_ && now - recent_cached_us_ > 5 * G_USEC_PER_SEC)) {
    recent_root_mtime_ = root_mtime;
    g_autoptr (JsonNode) n = recent_from_disk (root_, kMaxRecent);
    recent_cache_ = json_to_compact (n);
    recent_cached_us_ = now;
    recent_dirty_ = false;
  }
  return recent_cache_;
}

static bool
allowed_name (const std::string &n)
{
  return !n.empty () && n[0] != '.' && n.find ('/') == std::string::npos &&
      n.find ('\0') == std::string::npos && n.size () < 256;
}

JsonNode *
StatusService::recent_from_disk (const std::string &root, gsize max)
{
  /* the history reader of GET /engagements (newest first, no symlink
   * followed); an unreadable engagement.json does not take a slot, but at
   * most 2 × @max + 16 files are read */
  History hist;
  read_history (root, std::min<gsize> (2 * max + 16, kHistoryMaxLimit), {}, &hist);
  gsize listed = 0;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_array (b);
  for (JsonNode *n : hist.engagements) {
    if (listed >= max)
      break;
    JsonObject *o = json_node_get_object (n);
    if (json_object_has_member (o, "error") &&
        !json_object_has_member (o, "state"))
      continue;
    std::string name = json_object_get_string_member_with_default (o, "dir_name", "");
    if (!allowed_name (name))
      continue;
    g_autofree gchar *dir = g_build_filename (root.c_str (), name.c_str (), nullptr);
    const char *key = json_object_get_string_member_with_default (o, "id_key", "");
    listed++;
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "dir_name");
    json_builder_add_string_value (b, name.c_str ());
    json_builder_set_member_name (b, "id");
    json_builder_add_string_value (b, json_object_get_string_member_with_default (o,
        *key ? key : "engagement_id", ""));
    for (const char *m : {"id_key", "product", "pipeline", "state", "start_time",
        "stop_time", "duration_s", "audio_duration_s", "stop_reason", "frames",
        "silence_inserted_samples", "transcript_lines", "errors"})
      copy_member (b, o, m);
    add_parties (b, o);
    json_builder_set_member_name (b, "files");
    json_builder_begin_array (b);
    std::vector<std::pair<std::string, gint64>> files;
    if (GDir *d = g_dir_open (dir, 0, nullptr)) {
      while (const gchar *f = g_dir_read_name (d)) {
        if (!allowed_name (f) || files.size () >= 64)
          continue;
        g_autofree gchar *fp = g_build_filename (dir, f, nullptr);
        GStatBuf fs;
        if (g_lstat (fp, &fs) == 0 && S_ISREG (fs.st_mode))
          files.push_back ({f, static_cast<gint64> (fs.st_size)});
      }
      g_dir_close (d);
    }
    std::sort (files.begin (), files.end ());
    for (const auto &f : files) {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, f.first.c_str ());
      json_builder_set_member_name (b, "bytes");
      json_builder_add_int_value (b, f.second);
      json_builder_end_object (b);
    }
    json_builder_end_array (b);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  return json_builder_get_root (b);
}

/* ---------------------------------------------------------------- files */

int
StatusService::open_confined (const std::string &root, const std::string &dir,
    const std::string &file)
{
  return zhost::open_confined (root, dir, file);
}

static const char *
content_type_of (const std::string &name)
{
  static const struct {
    const char *suffix, *type;
  } types[] = {
    {".wav", "audio/wav"}, {".ogg", "audio/ogg"}, {".opus", "audio/ogg"},
    {".json", "application/json"}, {".jsonl", "text/plain; charset=utf-8"},
    {".txt", "text/plain; charset=utf-8"}, {".log", "text/plain; charset=utf-8"},
  };
  for (const auto &t : types)
    if (g_str_has_suffix (name.c_str (), t.suffix))
      return t.type;
  return "application/octet-stream";
}

void
StatusService::serve_file (SoupServerMessage *msg, const std::string &rest)
{
  /* a download holds its connection up to an hour (extend() below), out of
   * the reach of the connection cap's reclaiming: a bounded number */
  if (*downloads_ >= kMaxDownloads) {
    soup_message_headers_replace (soup_server_message_get_response_headers (msg),
        "Retry-After", "10");
    set_json (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, json_error_body (
        "Too many file downloads at once"));
    return;
  }
  g_auto (GStrv) segs = g_strsplit (rest.c_str (), "/", -1);
  if (g_strv_length (segs) != 2) {
    set_json (msg, SOUP_STATUS_NOT_FOUND, json_error_body ("Not found"));
    return;
  }
  /* percent-decoded; an encoded '/' or NUL makes it NULL */
  g_autofree gchar *dir = g_uri_unescape_segment (segs[0], nullptr, "/");
  g_autofree gchar *file = g_uri_unescape_segment (segs[1], nullptr, "/");
  int fd = dir && file ? open_confined (root_, dir, file) : -1;
  if (fd < 0) {
    GST_INFO ("status file %s refused or missing", log_safe (rest).c_str ());
    set_json (msg, SOUP_STATUS_NOT_FOUND, json_error_body ("Not found"));
    return;
  }
  GError *err = nullptr;
  GMappedFile *mf = g_mapped_file_new_from_fd (fd, FALSE, &err);
  close (fd);
  if (!mf) {
    set_json (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, json_error_body ("Cannot read the file"));
    g_clear_error (&err);
    return;
  }
  g_autoptr (GBytes) bytes = g_mapped_file_get_bytes (mf);
  g_mapped_file_unref (mf);
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);
  soup_message_headers_replace (h, "Content-Type", content_type_of (file));
  soup_message_headers_replace (h, "X-Content-Type-Options", "nosniff");
  soup_message_headers_replace (h, "Content-Security-Policy", "sandbox; default-src 'none'");
  soup_message_headers_replace (h, "Cache-Control", "no-store");
  soup_server_message_set_status (msg, SOUP_STATUS_OK, nullptr);
  soup_message_body_append_bytes (soup_server_message_get_response_body (msg), bytes);
  /* the count outlives this service if the message does (shutdown) */
  (*downloads_)++;
  g_signal_connect_data (msg, "finished", G_CALLBACK (+[] (SoupServerMessage *, gpointer d) {
        (**static_cast<std::shared_ptr<gsize> *> (d))--;
      }), new std::shared_ptr<gsize> (downloads_),
      [] (gpointer d, GClosure *) { delete static_cast<std::shared_ptr<gsize> *> (d); },
      static_cast<GConnectFlags> (0));
  /* a long recording may take a while to download: not the request timeout */
  if (http_)
    http_->extend (msg, g_get_monotonic_time () + G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC);
}

/* ---------------------------------------------------------------- SSE */

void
StatusService::open_stream (SoupServerMessage *msg)
{
  if (streams_.size () >= kMaxEventStreams) {
    soup_message_headers_replace (soup_server_message_get_response_headers (msg),
        "Retry-After", "10");
    set_json (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, json_error_body (
        "Too many status pages open"));
    return;
  }
  gint64 now = g_get_monotonic_time ();
  /* a client that stopped reading: closed 30 s after the stream's end */
  if (http_)
    http_->extend (msg, now + static_cast<gint64> (kEventStreamLifetimeS + 30) * G_USEC_PER_SEC);
  auto s = std::make_unique<Stream> ();
  s->svc = this;
  s->msg = SOUP_SERVER_MESSAGE (g_object_ref (msg));
  s->opened_us = now;
  s->finished_id = g_signal_connect (msg, "finished", G_CALLBACK (stream_finished_cb), this);
  s->wrote_id = g_signal_connect (msg, "wrote-body-data", G_CALLBACK (+[] (
      SoupServerMessage *, guint bytes, gpointer d) {
        auto *st = static_cast<Stream *> (d);
        st->queued -= MIN (st->queued, static_cast<gsize> (bytes));
      }), s.get ());
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);
  soup_message_headers_replace (h, "Content-Type", "text/event-stream; charset=utf-8");
  soup_message_headers_replace (h, "Cache-Control", "no-store");
  soup_message_headers_replace (h, "X-Accel-Buffering", "no");
  soup_message_headers_set_encoding (h, SOUP_ENCODING_CHUNKED);
  /* chunks are dropped once written, not kept for the stream's life */
  soup_message_body_set_accumulate (soup_server_message_get_response_body (msg), FALSE);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, nullptr);
  Stream *raw = s.get ();
  streams_.push_back (std::move (s));
  /* the page reconnects after 2 s when the stream ends */
  soup_message_body_append (soup_server_message_get_response_body (msg),
      SOUP_MEMORY_COPY, "retry: 2000\n\n", 13);
  /* written when the handler returns: no unpause inside it */
  recent_sent_ = recent_json ();
  send (raw, "recent", recent_sent_, false);
  send (raw, "live", live_json (), false);
  if (!tick_id_)
    tick_id_ = g_timeout_add (500, tick_cb, this);
}

void
StatusService::send (Stream *s, const std::string &event, const std::string &data,
    bool unpause)
{
  if (s->closing)
    return;
  /* one line of JSON: no newline inside (json_to_compact) */
  std::string text = "event: " + event + "\ndata: " + data + "\n\n";
  s->queued += text.size ();
  soup_message_body_append (soup_server_message_get_response_body (s->msg),
      SOUP_MEMORY_COPY, text.data (), text.size ());
  if (unpause)
    soup_server_message_unpause (s->msg);
}

void
StatusService::stream_finished_cb (SoupServerMessage *msg, gpointer data)
{
  auto *self = static_cast<StatusService *> (data);
  for (auto it = self->streams_.begin (); it != self->streams_.end (); ++it)
    if ((*it)->msg == msg) {
      g_signal_handler_disconnect (msg, (*it)->finished_id);
      g_signal_handler_disconnect (msg, (*it)->wrote_id);
      g_object_unref (msg);
      self->streams_.erase (it);
      break;
    }
}

gboolean
StatusService::tick_cb (gpointer data)
{
  auto *self = static_cast<StatusService *> (data);
  if (self->streams_.empty ()) {
    self->tick_id_ = 0;
    return G_SOURCE_REMOVE;
  }
  gint64 now = g_get_monotonic_time ();
  std::string live = self->live_json ();
  /* "recent" when an engagement ended, else when the disk changed (read at
   * most every 5 s) */
  bool recent = false;
  std::string recent_text;
  if (self->recent_dirty_ || ++self->ticks_ % 10 == 0) {
    recent_text = self->recent_json ();
    recent = recent_text != self->recent_sent_;
    self->recent_sent_ = recent_text;
  }
  std::vector<Stream *> list;
  for (auto &s : self->streams_)
    list.push_back (s.get ());
  for (Stream *s : list) {
    if (s->closing)
      continue;
    if (s->queued > kMaxStreamBacklog) {
      /* a client that stopped reading: what it was sent is kept in memory
       * until written, so no more; it reconnects once it catches up */
      GST_INFO ("status event stream: %zu bytes not taken by its client, closed",
          s->queued);
      s->closing = true;
      soup_message_body_complete (soup_server_message_get_response_body (s->msg));
      soup_server_message_unpause (s->msg);
      continue;
    }
    if (recent)
      self->send (s, "recent", recent_text);
    self->send (s, "live", live);
    if (now - s->opened_us > static_cast<gint64> (kEventStreamLifetimeS) * G_USEC_PER_SEC) {
      s->closing = true;
      soup_message_body_complete (soup_server_message_get_response_body (s->msg));
      soup_server_message_unpause (s->msg);
    }
  }
  return G_SOURCE_CONTINUE;
}

gsize
StatusService::open_event_streams () const
{
  gsize n = 0;
  for (const auto &s : streams_)
    n += s->closing ? 0 : 1;
  return n;
}

void
StatusService::close_streams ()
{
  for (auto &s : streams_) {
    if (s->closing)
      continue;
    s->closing = true;
    soup_message_body_complete (soup_server_message_get_response_body (s->msg));
    soup_server_message_unpause (s->msg);
  }
}

} // namespace zhost
