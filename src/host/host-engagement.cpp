/* zoomrtms-host — one engagement. See host-engagement.h. */
#include "host-engagement.h"

#include "host-common.h"
#include "host-wav.h"

#include "rtms-types.h"

#include <glib/gstdio.h>

#include <cmath>
#include <cstring>

#define GST_CAT_DEFAULT zoomrtms_host_debug

namespace zhost {

static const char *
product_name (rtms::Product p)
{
  switch (p) {
    case rtms::Product::MEETING: return "meeting";
    case rtms::Product::WEBINAR: return "webinar";
    case rtms::Product::SESSION: return "session";
    case rtms::Product::CONTACT_CENTER: return "contact_center";
    case rtms::Product::PHONE: return "phone";
  }
  return "unknown";
}

/* Printable form of an id from a webhook, for text files and logs. */
static std::string
printable (const std::string &s)
{
  std::string out;
  for (char c : s)
    out += (static_cast<unsigned char> (c) < 0x20 || c == 0x7f) ? '?' : c;
  return out;
}

static std::string
hhmmss (gint64 ms)
{
  if (ms < 0)
    ms = 0;
  gint64 s = ms / 1000;
  g_autofree gchar *t = g_strdup_printf ("%02d:%02d:%02d",
      static_cast<int> (s / 3600), static_cast<int> ((s / 60) % 60),
      static_cast<int> (s % 60));
  return t;
}

const char *
Engagement::state_name (State s)
{
  switch (s) {
    case State::STARTING: return "starting";
    case State::RUNNING: return "running";
    case State::STOPPING: return "stopping";
    case State::STOPPED: return "stopped";
    case State::FAILED: return "failed";
  }
  return "unknown";
}

Engagement::Engagement (EngagementParams params, FinishedFn on_finished)
    : p_ (std::move (params)), on_finished_ (std::move (on_finished))
{
  server_urls_ = p_.server_urls;
  last_event_ts_ = p_.event_ts;
}

Engagement::~Engagement ()
{
  if (eos_timeout_id_)
    g_source_remove (eos_timeout_id_);
  if (grace_timeout_id_)
    g_source_remove (grace_timeout_id_);
  if (pipeline_) {
    GstBus *bus = gst_element_get_bus (pipeline_);
    gst_bus_remove_watch (bus);
    gst_object_unref (bus);
    gst_element_set_state (pipeline_, GST_STATE_NULL);
    gst_object_unref (pipeline_);
  }
  if (src_)
    gst_object_unref (src_);
  for (GOutputStream *s : {transcript_jsonl_, events_jsonl_, levels_jsonl_})
    if (s)
      g_object_unref (s);
  if (stats_)
    gst_structure_free (stats_);
}

static void
set_string_prop (GstElement *el, const char *name, const std::string &value)
{
  if (value.empty ())
    return;
  if (!g_object_class_find_property (G_OBJECT_GET_CLASS (el), name)) {
    GST_WARNING ("zoomrtmssrc has no property %s", name);
    return;
  }
  g_object_set (el, name, value.c_str (), nullptr);
}

bool
Engagement::start (GError **error)
{
  start_us_ = g_get_real_time ();
  if (g_mkdir_with_parents (p_.dir.c_str (), 0750) != 0) {
    int e = errno;
    g_set_error (error, ZHOST_ERROR, ERROR_IO, "cannot create %s: %s",
        p_.dir.c_str (), g_strerror (e));
    errors_.push_back (std::string ("cannot create directory: ") + g_strerror (e));
    state_ = State::FAILED;
    return false;
  }
  TemplateVars vars = {
    {"OUTPUT_DIR", p_.dir},
    {"ENGAGEMENT_ID", p_.dir_name},
    {"RTP_HOST", p_.rtp_host},
    {"RTP_PORT", std::to_string (p_.rtp_port)},
  };
  GError *err = nullptr;
  pipeline_ = build_pipeline (*p_.tmpl, vars, "engagement-" + p_.dir_name,
      &has_level_, &err);
  if (!pipeline_) {
    errors_.push_back (err->message);
    g_propagate_error (error, err);
    state_ = State::FAILED;
    stop_us_ = g_get_real_time ();
    write_engagement_json ();
    return false;
  }
  src_ = gst_bin_get_by_name (GST_BIN (pipeline_), "src");
  /* ids and credentials: properties only, never pipeline text (design.md) */
  set_string_prop (src_, "server-urls", server_urls_);
  set_string_prop (src_, p_.product == rtms::Product::CONTACT_CENTER ?
      "engagement-id" : "meeting-uuid", p_.id_value);
  set_string_prop (src_, "rtms-stream-id", p_.rtms_stream_id);
  set_string_prop (src_, "client-id", p_.client_id);
  set_string_prop (src_, "client-secret", p_.client_secret);
  set_string_prop (src_, "signature", p_.signature);
  set_string_prop (src_, "ca-file", p_.ca_file);

  GstBus *bus = gst_element_get_bus (pipeline_);
  gst_bus_add_watch (bus, bus_cb, this);
  gst_object_unref (bus);

  state_ = State::RUNNING;
  write_engagement_json ();
  GstStateChangeReturn ret = gst_element_set_state (pipeline_, GST_STATE_PLAYING);
  if (ret == GST_STATE_CHANGE_FAILURE) {
    /* the ERROR message (if any) is still on the bus: take it now */
    GstBus *b = gst_element_get_bus (pipeline_);
    while (GstMessage *m = gst_bus_pop_filtered (b, GST_MESSAGE_ERROR)) {
      GError *e = nullptr;
      gst_message_parse_error (m, &e, nullptr);
      errors_.push_back (e->message);
      g_error_free (e);
      gst_message_unref (m);
    }
    gst_object_unref (b);
    errors_.push_back ("pipeline could not be set to PLAYING");
    g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE,
        "pipeline %s could not be set to PLAYING", p_.tmpl->name.c_str ());
    state_ = State::FAILED;
    finish (false);
    return false;
  }
  g_message ("engagement %s (stream %s): recording with pipeline %s into %s",
      printable (p_.id_value).c_str (), printable (p_.rtms_stream_id).c_str (),
      p_.tmpl->name.c_str (), p_.dir.c_str ());
  return true;
}

void
Engagement::failover (const std::string &server_urls, gint64 event_ts,
    const char *why)
{
  if (!active () || !src_)
    return;
  if (event_ts > last_event_ts_)
    last_event_ts_ = event_ts;
  server_urls_ = server_urls;
  failovers_++;
  g_message ("engagement %s: %s, reconnecting to new server_urls",
      p_.dir_name.c_str (), why);
  g_object_set (src_, "server-urls", server_urls.c_str (), nullptr);
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "failover");
  json_builder_set_member_name (b, "received");
  json_builder_add_string_value (b, iso8601_utc (g_get_real_time ()).c_str ());
  json_builder_set_member_name (b, "why");
  json_builder_add_string_value (b, why);
  json_builder_set_member_name (b, "server_urls");
  json_builder_add_string_value (b, server_urls.c_str ());
  json_builder_set_member_name (b, "event_ts");
  json_builder_add_int_value (b, event_ts);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  append_line (&events_jsonl_, "events.jsonl", json_to_compact (root));
  write_engagement_json ();
}

void
Engagement::stop (const char *source, int stop_reason)
{
  if (stop_reason >= 0)
    stop_reason_ = stop_reason;
  if (stop_source_.empty () || stop_reason >= 0)
    stop_source_ = source;
  if (state_ != State::RUNNING && state_ != State::STARTING)
    return;
  state_ = State::STOPPING;
  GST_INFO ("engagement %s: stop (%s), sending EOS", p_.dir_name.c_str (), source);
  gst_element_send_event (pipeline_, gst_event_new_eos ());
  eos_timeout_id_ = g_timeout_add (static_cast<guint> (p_.stop_timeout_ms),
      eos_timeout_cb, this);
}

void
Engagement::stop_after_grace (const char *source, int stop_reason)
{
  if (p_.stop_grace_ms <= 0 || (state_ != State::RUNNING &&
          state_ != State::STARTING)) {
    stop (source, stop_reason);
    return;
  }
  if (stop_reason >= 0)
    stop_reason_ = stop_reason;
  stop_source_ = source;
  if (grace_timeout_id_)
    return;
  grace_source_ = source;
  grace_timeout_id_ = g_timeout_add (static_cast<guint> (p_.stop_grace_ms),
      [] (gpointer data) -> gboolean {
        auto self = static_cast<Engagement *> (data);
        self->grace_timeout_id_ = 0;
        GST_INFO ("engagement %s: no EOS %d ms after the stopped webhook",
            self->p_.dir_name.c_str (), self->p_.stop_grace_ms);
        self->stop (self->grace_source_.c_str (), -1);
        return G_SOURCE_REMOVE;
      }, this);
}

void
Engagement::force_stop (const char *why)
{
  if (!active ())
    return;
  errors_.push_back (why);
  finish (false);
}

void
Engagement::note_stop_reason (int stop_reason, const char *source)
{
  if (stop_reason < 0 || stop_reason_ == stop_reason)
    return;
  stop_reason_ = stop_reason;
  stop_source_ = source;
  if (!active ())
    write_engagement_json ();
}

gboolean
Engagement::eos_timeout_cb (gpointer data)
{
  auto *self = static_cast<Engagement *> (data);
  self->eos_timeout_id_ = 0;
  g_warning ("engagement %s: no EOS within %d ms after stop, setting NULL",
      self->p_.dir_name.c_str (), self->p_.stop_timeout_ms);
  self->errors_.push_back ("no EOS within " +
      std::to_string (self->p_.stop_timeout_ms) + " ms after stop");
  self->finish (false);
  return G_SOURCE_REMOVE;
}

gboolean
Engagement::bus_cb (GstBus *bus, GstMessage *msg, gpointer data)
{
  auto *self = static_cast<Engagement *> (data);
  if (!self->pipeline_)
    return G_SOURCE_REMOVE;
  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ERROR: {
      GError *err = nullptr;
      gchar *dbg = nullptr;
      gst_message_parse_error (msg, &err, &dbg);
      const GstStructure *details = nullptr;
      gst_message_parse_error_details (msg, &details);
      g_autofree gchar *path = gst_object_get_path_string (GST_MESSAGE_SRC (msg));
      std::string e = std::string (path) + ": " + err->message;
      if (details) {
        gint code;
        if (gst_structure_get_int (details, "rtms-status-code", &code) && code >= 0)
          e += " (rtms-status-code " + std::to_string (code) + ")";
        if (gst_structure_get_int (details, "rtms-stop-reason", &code) && code >= 0) {
          e += " (rtms-stop-reason " + std::to_string (code) + " " +
              rtms::stop_reason_name (code) + ")";
          if (code > 0)
            self->remote_reason_ = code;
        }
      }
      g_warning ("engagement %s: pipeline error: %s", self->p_.dir_name.c_str (),
          e.c_str ());
      GST_DEBUG ("error debug: %s", dbg ? dbg : "");
      self->errors_.push_back (e);
      g_error_free (err);
      g_free (dbg);
      self->state_ = State::FAILED;
      self->finish (false);
      return G_SOURCE_REMOVE;
    }
    case GST_MESSAGE_WARNING: {
      GError *err = nullptr;
      gst_message_parse_warning (msg, &err, nullptr);
      g_autofree gchar *path = gst_object_get_path_string (GST_MESSAGE_SRC (msg));
      g_warning ("engagement %s: %s: %s", self->p_.dir_name.c_str (), path,
          err->message);
      g_error_free (err);
      break;
    }
    case GST_MESSAGE_EOS:
      GST_INFO ("engagement %s: EOS", self->p_.dir_name.c_str ());
      self->eos_received_ = true;
      self->finish (true);
      return G_SOURCE_REMOVE;
    case GST_MESSAGE_ELEMENT:
      self->on_element_message (msg);
      break;
    case GST_MESSAGE_LATENCY:
      gst_bin_recalculate_latency (GST_BIN (self->pipeline_));
      break;
    case GST_MESSAGE_CLOCK_LOST:
      gst_element_set_state (self->pipeline_, GST_STATE_PAUSED);
      gst_element_set_state (self->pipeline_, GST_STATE_PLAYING);
      break;
    case GST_MESSAGE_REQUEST_STATE: {
      GstState st;
      gst_message_parse_request_state (msg, &st);
      gst_element_set_state (self->pipeline_, st);
      break;
    }
    default:
      break;
  }
  return G_SOURCE_CONTINUE;
}

void
Engagement::on_element_message (GstMessage *msg)
{
  const GstStructure *s = gst_message_get_structure (msg);
  if (!s)
    return;
  const gchar *name = gst_structure_get_name (s);
  if (g_str_equal (name, "zoomrtms/transcript"))
    on_transcript (s);
  else if (g_str_equal (name, "zoomrtms/participant"))
    on_participant (s);
  else if (g_str_equal (name, "zoomrtms/stream-state") ||
      g_str_equal (name, "zoomrtms/session-state"))
    on_state_message (s);
  else if (g_str_equal (name, "zoomrtms/stats")) {
    if (stats_)
      gst_structure_free (stats_);
    stats_ = gst_structure_copy (s);
  } else if (g_str_equal (name, "level"))
    on_level (msg, s);
}

static std::string
get_str (const GstStructure *s, const char *field)
{
  const gchar *v = gst_structure_get_string (s, field);
  return v ? v : "";
}

static gint64
get_i64 (const GstStructure *s, const char *field, gint64 dflt)
{
  const GValue *v = gst_structure_get_value (s, field);
  if (!v)
    return dflt;
  if (G_VALUE_HOLDS_INT64 (v))
    return g_value_get_int64 (v);
  if (G_VALUE_HOLDS_INT (v))
    return g_value_get_int (v);
  if (G_VALUE_HOLDS_UINT64 (v))
    return static_cast<gint64> (g_value_get_uint64 (v));
  if (G_VALUE_HOLDS_UINT (v))
    return g_value_get_uint (v);
  return dflt;
}

std::string
Engagement::speaker_for (const std::string &channel, const std::string &speaker,
    const std::string &mode_in) const
{
  auto it = display_names_.find (channel);
  if (it != display_names_.end () && !it->second.empty ())
    return it->second;
  if (!speaker.empty ())
    return speaker;
  std::string mode = mode_in;
  if (mode.empty ()) {
    auto m = modes_.find (channel);
    if (m != modes_.end ())
      mode = m->second;
  }
  g_autofree gchar *lower = g_ascii_strdown (mode.c_str (), -1);
  if (g_str_equal (lower, "caller") || g_str_equal (lower, "customer") ||
      g_str_equal (lower, "consumer"))
    return "Customer";
  if (g_str_equal (lower, "callee") || g_str_equal (lower, "agent"))
    return "Agent";
  return channel.empty () ? "Unknown" : channel;
}

void
Engagement::on_transcript (const GstStructure *s)
{
  transcript_messages_++;
  Sentence sent;
  sent.sentence_id = get_i64 (s, "sentence-id", -1);
  sent.channel = get_str (s, "channel");
  sent.participant_mode = get_str (s, "participant-mode");
  std::string raw_speaker = get_str (s, "speaker");
  sent.text = get_str (s, "text");
  if (!sent.participant_mode.empty () && !sent.channel.empty ())
    modes_[sent.channel] = sent.participant_mode;
  sent.speaker = speaker_for (sent.channel, raw_speaker, sent.participant_mode);
  guint64 rt = GST_CLOCK_TIME_NONE;
  gst_structure_get_uint64 (s, "running-time", &rt);
  gint64 start_ms = get_i64 (s, "start-time", -1);
  if (start_ms <= 0)
    start_ms = get_i64 (s, "timestamp", -1);
  if (first_transcript_ms_ < 0 && start_ms > 0)
    first_transcript_ms_ = start_ms;
  if (GST_CLOCK_TIME_IS_VALID (rt))
    sent.offset_ms = static_cast<gint64> (rt / GST_MSECOND);
  else if (start_ms > 0)
    sent.offset_ms = start_ms - first_transcript_ms_;
  else
    sent.offset_ms = (g_get_real_time () - start_us_) / 1000;

  bool revision = false;
  if (sent.sentence_id >= 0) {
    auto it = sentence_index_.find (sent.sentence_id);
    if (it != sentence_index_.end ()) {
      revision = true;
      Sentence &old = sentences_[it->second];
      old.text = sent.text;
      old.speaker = sent.speaker;
    } else {
      sentence_index_[sent.sentence_id] = sentences_.size ();
      sentences_.push_back (sent);
    }
  } else {
    sentences_.push_back (sent);
  }

  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  /* the message's own fields first; derived ones below replace same names */
  structure_to_json (s, b);
  json_builder_set_member_name (b, "speaker_raw");
  json_builder_add_string_value (b, raw_speaker.c_str ());
  json_builder_set_member_name (b, "sentence_id");
  json_builder_add_int_value (b, sent.sentence_id);
  json_builder_set_member_name (b, "revision");
  json_builder_add_boolean_value (b, revision);
  json_builder_set_member_name (b, "time");
  json_builder_add_string_value (b, hhmmss (sent.offset_ms).c_str ());
  json_builder_set_member_name (b, "offset_ms");
  json_builder_add_int_value (b, sent.offset_ms);
  json_builder_set_member_name (b, "speaker");
  json_builder_add_string_value (b, sent.speaker.c_str ());
  json_builder_set_member_name (b, "received");
  json_builder_add_string_value (b, iso8601_utc (g_get_real_time ()).c_str ());
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  append_line (&transcript_jsonl_, "transcript.jsonl", json_to_compact (root));
}

void
Engagement::on_participant (const GstStructure *s)
{
  event_messages_++;
  std::string channel = get_str (s, "channel");
  std::string user = get_str (s, "user-id");
  std::string name = get_str (s, "display-name");
  std::string mode = get_str (s, "participant-mode");
  if (!name.empty ()) {
    if (!channel.empty ())
      display_names_[channel] = name;
    if (!user.empty ())
      display_names_[user] = name;
  }
  if (!mode.empty () && !channel.empty ())
    modes_[channel] = mode;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "participant");
  json_builder_set_member_name (b, "received");
  json_builder_add_string_value (b, iso8601_utc (g_get_real_time ()).c_str ());
  structure_to_json (s, b);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  append_line (&events_jsonl_, "events.jsonl", json_to_compact (root));
}

void
Engagement::on_state_message (const GstStructure *s)
{
  event_messages_++;
  const gchar *name = gst_structure_get_name (s);
  bool session = g_str_equal (name, "zoomrtms/session-state");
  gint64 reason = get_i64 (s, session ? "stop-reason" : "reason", 0);
  if (reason > 0)
    remote_reason_ = static_cast<int> (reason);
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, session ? "session-state" : "stream-state");
  json_builder_set_member_name (b, "received");
  json_builder_add_string_value (b, iso8601_utc (g_get_real_time ()).c_str ());
  structure_to_json (s, b);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  append_line (&events_jsonl_, "events.jsonl", json_to_compact (root));
}

G_GNUC_BEGIN_IGNORE_DEPRECATIONS
static void
add_db_array (JsonBuilder *b, const GstStructure *s, const char *field)
{
  json_builder_set_member_name (b, field);
  json_builder_begin_array (b);
  const GValue *v = gst_structure_get_value (s, field);
  if (v && G_VALUE_HOLDS (v, g_value_array_get_type ())) {
    auto *arr = static_cast<GValueArray *> (g_value_get_boxed (v));
    for (guint i = 0; arr && i < arr->n_values; i++) {
      double d = g_value_get_double (g_value_array_get_nth (arr, i));
      if (std::isfinite (d))
        json_builder_add_double_value (b, std::round (d * 100.0) / 100.0);
      else
        json_builder_add_null_value (b);
    }
  }
  json_builder_end_array (b);
}
G_GNUC_END_IGNORE_DEPRECATIONS

void
Engagement::on_level (GstMessage *msg, const GstStructure *s)
{
  level_messages_++;
  guint64 rt = 0;
  gst_structure_get_uint64 (s, "running-time", &rt);
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "element");
  json_builder_add_string_value (b, GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)));
  json_builder_set_member_name (b, "running_time_ms");
  json_builder_add_int_value (b, static_cast<gint64> (rt / GST_MSECOND));
  add_db_array (b, s, "rms");
  add_db_array (b, s, "peak");
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  append_line (&levels_jsonl_, "levels.jsonl", json_to_compact (root));
}

void
Engagement::append_line (GOutputStream **stream, const char *file,
    const std::string &line)
{
  if (!*stream) {
    g_autofree gchar *path = g_build_filename (p_.dir.c_str (), file, nullptr);
    g_autoptr (GFile) f = g_file_new_for_path (path);
    GError *err = nullptr;
    GFileOutputStream *os = g_file_append_to (f, G_FILE_CREATE_NONE, nullptr, &err);
    if (!os) {
      g_warning ("engagement %s: cannot open %s: %s", p_.dir_name.c_str (),
          file, err->message);
      g_error_free (err);
      return;
    }
    *stream = G_OUTPUT_STREAM (os);
  }
  std::string l = line + "\n";
  GError *err = nullptr;
  if (!g_output_stream_write_all (*stream, l.data (), l.size (), nullptr,
          nullptr, &err)) {
    g_warning ("engagement %s: cannot write %s: %s", p_.dir_name.c_str (),
        file, err->message);
    g_error_free (err);
  }
}

void
Engagement::read_stats ()
{
  if (!src_ || !g_object_class_find_property (G_OBJECT_GET_CLASS (src_), "stats"))
    return;
  GstStructure *st = nullptr;
  g_object_get (src_, "stats", &st, nullptr);
  if (st) {
    if (stats_)
      gst_structure_free (stats_);
    stats_ = st;
  }
}

static gboolean
unref_idle (gpointer data)
{
  gst_object_unref (data);
  return G_SOURCE_REMOVE;
}

void
Engagement::finish (bool got_eos)
{
  if (!pipeline_)
    return;
  if (eos_timeout_id_) {
    g_source_remove (eos_timeout_id_);
    eos_timeout_id_ = 0;
  }
  if (grace_timeout_id_) {
    g_source_remove (grace_timeout_id_);
    grace_timeout_id_ = 0;
  }
  read_stats ();
  if (src_) {
    GstPad *pad = gst_element_get_static_pad (src_, "src");
    GstCaps *caps = pad ? gst_pad_get_current_caps (pad) : nullptr;
    if (caps) {
      gst_structure_get_int (gst_caps_get_structure (caps, 0), "rate", &rate_);
      gst_caps_unref (caps);
    }
    if (pad)
      gst_object_unref (pad);
  }
  gst_element_set_state (pipeline_, GST_STATE_NULL);
  GstBus *bus = gst_element_get_bus (pipeline_);
  gst_bus_remove_watch (bus);
  gst_object_unref (bus);
  /* unref after the current dispatch (we may be inside the bus watch) */
  g_idle_add (unref_idle, pipeline_);
  pipeline_ = nullptr;
  if (src_) {
    gst_object_unref (src_);
    src_ = nullptr;
  }
  for (GOutputStream **s : {&transcript_jsonl_, &events_jsonl_, &levels_jsonl_}) {
    if (*s) {
      g_output_stream_close (*s, nullptr, nullptr);
      g_object_unref (*s);
      *s = nullptr;
    }
  }
  if (!got_eos) {
    /* wavenc rewrites its header only on EOS: fix the sizes from the file */
    g_autoptr (GDir) d = g_dir_open (p_.dir.c_str (), 0, nullptr);
    while (const gchar *n = d ? g_dir_read_name (d) : nullptr) {
      if (!g_str_has_suffix (n, ".wav"))
        continue;
      g_autofree gchar *path = g_build_filename (p_.dir.c_str (), n, nullptr);
      gboolean changed = FALSE;
      GError *err = nullptr;
      if (!wav_repair (path, &changed, &err)) {
        GST_WARNING ("%s", err->message);
        g_error_free (err);
      } else if (changed) {
        repaired_ = true;
      }
    }
  }
  stop_us_ = g_get_real_time ();
  if (state_ != State::FAILED)
    state_ = State::STOPPED;
  if (stop_reason_ < 0 && remote_reason_ >= 0) {
    stop_reason_ = remote_reason_;
    if (stop_source_.empty ())
      stop_source_ = "remote";
  }
  if (stop_source_.empty ())
    stop_source_ = state_ == State::FAILED ? "error" : "remote";
  write_transcript_txt ();
  write_engagement_json ();
  g_message ("engagement %s: %s (%s), files in %s", p_.dir_name.c_str (),
      state_name (state_), stop_source_.c_str (), p_.dir.c_str ());
  if (on_finished_)
    on_finished_ (this);
}

gint64
Engagement::audio_duration_ms () const
{
  guint64 samples = 0;
  if (rate_ <= 0 || !stats_ || !gst_structure_get_uint64 (stats_, "samples-out", &samples))
    return -1;
  return static_cast<gint64> (samples * 1000 / static_cast<guint64> (rate_));
}

/* transcript.txt, the seed app's readable format: a header, one
 * `[HH:MM:SS] speaker: text` line per sentence, a footer. */
static std::string
transcript_text (const std::string &id_key, const std::string &id_value,
    const std::string &stream_id, const std::string &started,
    const std::string &pipeline, const std::string &lines,
    const std::string &footer)
{
  std::string t;
  t += "Zoom RTMS transcript\n";
  t += std::string (id_key == "engagement_id" ? "Engagement" : "Meeting") +
      ": " + printable (id_value) + "\n";
  t += "RTMS stream: " + printable (stream_id) + "\n";
  t += "Started: " + started + "\n";
  t += "Pipeline: " + printable (pipeline) + "\n";
  t += "----------------------------------------\n";
  t += lines;
  t += "----------------------------------------\n";
  t += footer;
  return t;
}

static std::string
transcript_line (gint64 offset_ms, const std::string &speaker,
    const std::string &text)
{
  return "[" + hhmmss (offset_ms) + "] " + printable (speaker) + ": " +
      printable (text) + "\n";
}

static void
write_file (const std::string &dir, const char *name, const std::string &text)
{
  g_autofree gchar *path = g_build_filename (dir.c_str (), name, nullptr);
  GError *err = nullptr;
  if (!g_file_set_contents (path, text.data (), static_cast<gssize> (text.size ()),
          &err)) {
    g_warning ("%s", err->message);
    g_error_free (err);
  }
}

void
Engagement::write_transcript_txt () const
{
  std::string lines;
  for (const Sentence &s : sentences_)
    lines += transcript_line (s.offset_ms, s.speaker, s.text);
  gint64 audio_ms = audio_duration_ms ();
  std::string footer = "Ended: " + iso8601_utc (stop_us_) + "\n" +
      "Duration: " + hhmmss (audio_ms >= 0 ? audio_ms : (stop_us_ - start_us_) / 1000) +
      (audio_ms >= 0 ? " (audio)" : " (wall clock)") + "\n" +
      "Lines: " + std::to_string (sentences_.size ()) + "\n";
  write_file (p_.dir, "transcript.txt", transcript_text (p_.id_key, p_.id_value,
          p_.rtms_stream_id, iso8601_utc (start_us_), p_.tmpl->name, lines, footer));
}

int
Engagement::recover_transcript (const std::string &dir, JsonObject *ej)
{
  g_autofree gchar *path = g_build_filename (dir.c_str (), "transcript.jsonl",
      nullptr);
  g_autofree gchar *data = nullptr;
  if (!g_file_get_contents (path, &data, nullptr, nullptr))
    return -1;
  struct Line {
    gint64 offset_ms;
    std::string speaker, text;
  };
  std::vector<Line> lines;
  std::map<gint64, size_t> by_sentence;
  g_auto (GStrv) rows = g_strsplit (data, "\n", -1);
  for (gchar **row = rows; *row; row++) {
    g_autoptr (JsonParser) parser = json_parser_new ();
    JsonNode *root = **row ? rtms::json_load (parser, *row, strlen (*row),
        file_json_limits (), nullptr) : nullptr;
    if (!root)
      continue;             /* a line cut by the kill */
    if (!JSON_NODE_HOLDS_OBJECT (root))
      continue;
    JsonObject *o = json_node_get_object (root);
    Line l;
    l.offset_ms = json_object_get_int_member_with_default (o, "offset_ms", 0);
    l.speaker = json_object_get_string_member_with_default (o, "speaker", "");
    l.text = json_object_get_string_member_with_default (o, "text", "");
    if (l.speaker.empty ()) {
      std::string mode = json_object_get_string_member_with_default (o,
          "participant_mode", "");
      l.speaker = mode == "caller" ? "Customer" : mode == "callee" ? "Agent" :
          json_object_get_string_member_with_default (o, "channel", "");
    }
    gint64 id = json_object_get_int_member_with_default (o, "sentence_id", -1);
    auto it = id >= 0 ? by_sentence.find (id) : by_sentence.end ();
    if (it != by_sentence.end ()) {
      lines[it->second].text = l.text;      /* a revision replaces the text */
      continue;
    }
    if (id >= 0)
      by_sentence[id] = lines.size ();
    lines.push_back (std::move (l));
  }
  std::string text;
  for (const Line &l : lines)
    text += transcript_line (l.offset_ms, l.speaker, l.text);
  const char *id_key = json_object_get_string_member_with_default (ej, "id_key",
      "engagement_id");
  std::string footer = "Ended: not recorded (the host stopped unexpectedly; "
      "recovered " + iso8601_utc (g_get_real_time ()) + ")\n" +
      "Lines: " + std::to_string (lines.size ()) + "\n";
  write_file (dir, "transcript.txt", transcript_text (id_key,
          json_object_get_string_member_with_default (ej, id_key, ""),
          json_object_get_string_member_with_default (ej, "rtms_stream_id", ""),
          json_object_get_string_member_with_default (ej, "start_time", ""),
          json_object_get_string_member_with_default (ej, "pipeline", ""), text,
          footer));
  return static_cast<int> (lines.size ());
}

JsonNode *
Engagement::to_json (bool live) const
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  auto str = [&b] (const char *k, const std::string &v) {
    json_builder_set_member_name (b, k);
    json_builder_add_string_value (b, v.c_str ());
  };
  auto num = [&b] (const char *k, gint64 v) {
    json_builder_set_member_name (b, k);
    json_builder_add_int_value (b, v);
  };
  str (p_.id_key.empty () ? "engagement_id" : p_.id_key.c_str (), p_.id_value);
  str ("id_key", p_.id_key);
  str ("rtms_stream_id", p_.rtms_stream_id);
  str ("product", product_name (p_.product));
  str ("event", p_.event);
  num ("event_ts", last_event_ts_);
  str ("directory", p_.dir);
  str ("dir_name", p_.dir_name);
  str ("pipeline", p_.tmpl ? p_.tmpl->name : "");
  str ("server_urls", server_urls_);
  str ("state", state_name (state_));
  str ("start_time", iso8601_utc (start_us_));
  json_builder_set_member_name (b, "stop_time");
  if (stop_us_)
    json_builder_add_string_value (b, iso8601_utc (stop_us_).c_str ());
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "duration_s");
  json_builder_add_double_value (b,
      ((stop_us_ ? stop_us_ : g_get_real_time ()) - start_us_) / 1e6);
  json_builder_set_member_name (b, "stop_reason");
  if (!stop_source_.empty () && !active ()) {
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "code");
    if (stop_reason_ >= 0)
      json_builder_add_int_value (b, stop_reason_);
    else
      json_builder_add_null_value (b);
    json_builder_set_member_name (b, "name");
    if (stop_reason_ >= 0)
      json_builder_add_string_value (b, rtms::stop_reason_name (stop_reason_));
    else
      json_builder_add_null_value (b);
    str ("source", stop_source_);
    json_builder_end_object (b);
  } else {
    json_builder_add_null_value (b);
  }
  num ("failovers", failovers_);
  GstStructure *st = stats_ ? gst_structure_copy (stats_) : nullptr;
  if (live && src_ &&
      g_object_class_find_property (G_OBJECT_GET_CLASS (src_), "stats")) {
    GstStructure *cur = nullptr;
    g_object_get (src_, "stats", &cur, nullptr);
    if (cur) {
      if (st)
        gst_structure_free (st);
      st = cur;
    }
  }
  guint64 frames = 0, dups = 0, silence = 0, samples = 0;
  if (st) {
    gst_structure_get_uint64 (st, "frames-received", &frames);
    gst_structure_get_uint64 (st, "frames-duplicated", &dups);
    gst_structure_get_uint64 (st, "silence-samples", &silence);
    gst_structure_get_uint64 (st, "samples-out", &samples);
  }
  num ("frames", static_cast<gint64> (frames));
  num ("silence_inserted_samples", static_cast<gint64> (silence));
  num ("duplicates_dropped", static_cast<gint64> (dups));
  num ("samples_out", static_cast<gint64> (samples));
  json_builder_set_member_name (b, "stats");
  json_builder_begin_object (b);
  if (st) {
    structure_to_json (st, b);
    gst_structure_free (st);
  }
  json_builder_end_object (b);
  json_builder_set_member_name (b, "audio_duration_s");
  if (rate_ > 0)
    json_builder_add_double_value (b, static_cast<double> (samples) / rate_);
  else
    json_builder_add_null_value (b);
  num ("transcript_messages", static_cast<gint64> (transcript_messages_));
  num ("transcript_lines", static_cast<gint64> (sentences_.size ()));
  num ("event_messages", static_cast<gint64> (event_messages_));
  num ("level_messages", static_cast<gint64> (level_messages_));
  json_builder_set_member_name (b, "eos");
  json_builder_add_boolean_value (b, eos_received_);
  json_builder_set_member_name (b, "wav_repaired");
  json_builder_add_boolean_value (b, repaired_);
  json_builder_set_member_name (b, "errors");
  json_builder_begin_array (b);
  for (const auto &e : errors_)
    json_builder_add_string_value (b, e.c_str ());
  json_builder_end_array (b);
  if (live) {
    json_builder_set_member_name (b, "live");
    json_builder_begin_object (b);
    GstState cur = GST_STATE_NULL;
    if (pipeline_)
      gst_element_get_state (pipeline_, &cur, nullptr, 0);
    str ("pipeline_state", gst_element_state_get_name (cur));
    json_builder_set_member_name (b, "active");
    json_builder_add_boolean_value (b, active ());
    json_builder_end_object (b);
  }
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

void
Engagement::write_engagement_json () const
{
  g_autoptr (JsonNode) root = to_json (false);
  std::string txt = json_to_compact (root, true) + "\n";
  g_autofree gchar *path = g_build_filename (p_.dir.c_str (), "engagement.json",
      nullptr);
  GError *err = nullptr;
  if (!g_file_set_contents (path, txt.data (), static_cast<gssize> (txt.size ()),
          &err)) {
    g_warning ("%s", err->message);
    g_error_free (err);
  }
}

} // namespace zhost
