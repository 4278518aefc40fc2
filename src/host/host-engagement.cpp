/* zoomrtms-host — one engagement. See host-engagement.h. */
#include "host-engagement.h"

#include "host-actions.h"

#include "host-common.h"
#include "host-health.h"
#include "host-ogg.h"
#include "host-status.h"
#include "host-wav.h"

#include "rtms-types.h"

#include <glib/gstdio.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

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

/* the element's property for the product's id (docs/protocol.md §3.3:
 * the handshake sends and signs that key) */
static const char *
element_id_property (rtms::Product p)
{
  switch (p) {
    case rtms::Product::CONTACT_CENTER: return "engagement-id";
    case rtms::Product::WEBINAR: return "webinar-uuid";
    case rtms::Product::SESSION: return "session-id";
    default: return "meeting-uuid";
  }
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
    case State::DETACHED: return "detached";
  }
  return "unknown";
}

/* What the merge thread hands back (written by the thread before it queues
 * merge_done_cb; read on the main context after). */
struct Engagement::MergeJob {
  Engagement *self = nullptr;   /* nullptr: the engagement is gone */
  std::vector<gint64> silence;
  std::string error;
};

Engagement::Engagement (EngagementParams params, FinishedFn on_finished)
    : p_ (std::move (params)), on_finished_ (std::move (on_finished))
{
  server_urls_ = p_.server_urls;
  last_event_ts_ = p_.event_ts;
  dir_ = std::make_unique<EngagementDir> (p_.dir, p_.dir_name);
  log_ctx_ = {p_.id_value, p_.rtms_stream_id, p_.dir_name};
}

Engagement::~Engagement ()
{
  if (end_job_) {
    /* the host exits while the end files are written: let them be; no
     * on_finished_ any more */
    std::unique_lock<std::mutex> lk (end_job_->lock);
    end_job_->cond.wait (lk, [this] { return end_job_->done; });
    end_job_->self = nullptr;
  }
  if (merge_thread_.joinable ()) {
    /* the host exits during a merge: let it end (bounded by its timeout);
     * its result is not applied (the journal entry stays: the next host
     * finalizes the engagement) */
    merge_job_->self = nullptr;
    merge_thread_.join ();
  }
  if (eos_timeout_id_)
    g_source_remove (eos_timeout_id_);
  if (grace_timeout_id_)
    g_source_remove (grace_timeout_id_);
  journal_tick_stop ();
  bus_watch_.reset ();
  if (pipeline_) {
    gst_element_set_state (pipeline_, GST_STATE_NULL);
    gst_object_unref (pipeline_);
  }
  if (src_)
    gst_object_unref (src_);
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

/* The members of an events.jsonl "interruption" line for a host's downtime
 * that no continuation recovered: cause, start (epoch ms), recovered false,
 * @why. */
static void
lost_interruption_members (JsonBuilder *b, const Interruption &i, const char *why)
{
  json_builder_set_member_name (b, "cause");
  json_builder_add_string_value (b, i.cause.c_str ());
  json_builder_set_member_name (b, "start");
  json_builder_add_int_value (b, i.start);
  json_builder_set_member_name (b, "recovered");
  json_builder_add_boolean_value (b, FALSE);
  json_builder_set_member_name (b, "why");
  json_builder_add_string_value (b, why);
}

bool
Engagement::start (GError **error)
{
  start_us_ = g_get_real_time ();
  if (!dir_->create (error)) {
    errors_.push_back ((*error)->message);
    state_ = State::FAILED;
    return false;
  }
  /* room for the final engagement.json if the disk fills up mid-call */
  dir_->reserve (EngagementDir::kReserveBytes);
  TemplateVars vars = {
    {"OUTPUT_DIR", p_.dir},
    {"ENGAGEMENT_ID", p_.dir_name},
    {"RTP_HOST", p_.rtp_host},
    {"RTP_PORT", std::to_string (p_.rtp_port)},
  };
  vars_ = vars;
  GError *err = nullptr;
  pipeline_ = build_pipeline (p_.tmpl, vars, "engagement-" + p_.dir_name,
      &has_level_, &err);
  if (!pipeline_) {
    errors_.push_back (err->message);
    g_propagate_error (error, err);
    state_ = State::FAILED;
    stop_us_ = g_get_real_time ();
    write_engagement_json ();
    return false;
  }
  /* the bus keeps what is posted until NULL: finish() reads the errors
   * the streaming threads posted after the first one (e.g. basesrc's
   * "streaming stopped, reason not-negotiated" after the element's own) */
  gst_pipeline_set_auto_flush_bus (GST_PIPELINE (pipeline_), FALSE);
  src_ = gst_bin_get_by_name (GST_BIN (pipeline_), "src");
  /* the audio file's origin on the running-time axis: transcript times
   * are made relative to it (issue 14: cues on the audio's timeline) */
  if (GstPad *pad = src_ ? gst_element_get_static_pad (src_, "src") : nullptr) {
    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER,
        [] (GstPad *, GstPadProbeInfo *info, gpointer data) {
          GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER (info);
          if (!b || !GST_BUFFER_PTS_IS_VALID (b))
            return GST_PAD_PROBE_OK;
          (*static_cast<std::shared_ptr<std::atomic<gint64>> *> (data))->store (
              static_cast<gint64> (GST_BUFFER_PTS (b)));
          return GST_PAD_PROBE_REMOVE;
        }, new std::shared_ptr<std::atomic<gint64>> (first_pts_), [] (gpointer p) {
          delete static_cast<std::shared_ptr<std::atomic<gint64>> *> (p);
        });
    gst_object_unref (pad);
  }
  /* the status page's level meters (host-status.h) */
  level_meter_attach (meter_key (p_.rtms_stream_id, p_.dir_name), src_);
  /* ids and credentials: properties only, never pipeline text (design.md) */
  set_string_prop (src_, "server-urls", server_urls_);
  set_string_prop (src_, element_id_property (p_.product), p_.id_value);
  set_string_prop (src_, "rtms-stream-id", p_.rtms_stream_id);
  set_string_prop (src_, "client-id", p_.client_id);
  set_string_prop (src_, "client-secret", p_.client_secret);
  set_string_prop (src_, "signature", p_.signature);
  set_string_prop (src_, "ca-file", p_.ca_file);
  find_outputs ();
  if (!p_.tmpl.participant_branch.empty ()) {
    /* build_pipeline() checked it exists */
    g_autoptr (GstElement) demux = gst_bin_get_by_name (GST_BIN (pipeline_),
        "participants");
    g_signal_connect (demux, "pad-added", G_CALLBACK (participant_pad_cb),
        this);
  }
  if (!prepare_continuation (error)) {
    errors_.push_back ((*error)->message);
    state_ = State::FAILED;
    stop_us_ = g_get_real_time ();
    write_engagement_json ();
    return false;
  }

  /* issue 12: one main-loop source for every pipeline's bus (host-bus.h) */
  GstBus *bus = gst_element_get_bus (pipeline_);
  bus_watch_ = std::make_unique<BusWatch> (bus, [this] (GstMessage *m) {
        return bus_cb (nullptr, m, this) != G_SOURCE_REMOVE;
      });
  gst_object_unref (bus);

  state_ = State::RUNNING;
  write_engagement_json ();
  journal_write (true);
  if (p_.journal)
    journal_tick_start ();
  GstStateChangeReturn ret = gst_element_set_state (pipeline_, GST_STATE_PLAYING);
  if (ret == GST_STATE_CHANGE_FAILURE) {
    /* the ERROR message (if any) is still queued: take it now */
    for (int n = 0; n < 16; n++) {
      GstMessage *m = bus_watch_->pop (GST_MESSAGE_ERROR);
      if (!m)
        break;
      note_error (m, !error_);
      gst_message_unref (m);
    }
    errors_.push_back ("pipeline could not be set to PLAYING");
    g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE,
        "pipeline %s could not be set to PLAYING", p_.tmpl.name.c_str ());
    if (p_.resume && !jentry_.interruptions.empty () &&
        g_str_has_prefix (jentry_.interruptions.back ().cause.c_str (), "host-")) {
      /* the continuation never ran: the host's downtime is lost, as for an
       * entry not rejoined (finalize_unrejoined()) */
      Interruption &i = jentry_.interruptions.back ();
      i.recovered = false;
      i.end = -1;
      event_line ("interruption", [&] (JsonBuilder *b) {
            lost_interruption_members (b, i, "the pipeline could not be set to PLAYING");
          });
    }
    state_ = State::FAILED;
    finish (false);
    return false;
  }
  log_line (G_LOG_LEVEL_MESSAGE, &log_ctx_, "engagement %s (stream %s): call "
      "started: recording with pipeline %s into %s%s",
      log_safe (p_.id_value).c_str (), log_safe (p_.rtms_stream_id).c_str (),
      p_.tmpl.name.c_str (), log_safe (p_.dir, 300).c_str (),
      p_.resume ? " (continuing the recording a previous host left)" : "");
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
  log_line (G_LOG_LEVEL_MESSAGE, &log_ctx_, "engagement %s: %s, reconnecting "
      "to new server_urls", p_.dir_name.c_str (), why);
  g_object_set (src_, "server-urls", server_urls.c_str (), nullptr);
  event_line ("failover", [&] (JsonBuilder *b) {
        json_builder_set_member_name (b, "why");
        json_builder_add_string_value (b, why);
        json_builder_set_member_name (b, "server_urls");
        json_builder_add_string_value (b, server_urls.c_str ());
        json_builder_set_member_name (b, "event_ts");
        json_builder_add_int_value (b, event_ts);
      });
  write_engagement_json ();
  journal_write (true);
}

void
Engagement::note_interrupted_webhook (gint64 event_ts, const std::string &event)
{
  if (event_ts > last_event_ts_)
    last_event_ts_ = event_ts;
  event_line ("interrupted-webhook", [&] (JsonBuilder *b) {
        json_builder_set_member_name (b, "event");
        json_builder_add_string_value (b, event.c_str ());
        json_builder_set_member_name (b, "event_ts");
        json_builder_add_int_value (b, event_ts);
        json_builder_set_member_name (b, "action");
        json_builder_add_string_value (b, "none: same server_urls, the element "
            "reconnects by itself");
      });
}

void
Engagement::event_line (const char *type,
    const std::function<void (JsonBuilder *)> &fill)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, type);
  json_builder_set_member_name (b, "received");
  json_builder_add_string_value (b, iso8601_utc (g_get_real_time ()).c_str ());
  if (fill)
    fill (b);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  dir_->append (EngagementDir::Log::EVENTS, json_to_compact (root));
}

bool
Engagement::take_stop_reason (int stop_reason, const char *source)
{
  if (stop_reason == rtms::STOP_RECEIVER_REQUEST_CLOSE && !stop_source_.empty ()) {
    /* docs/protocol.md §2.7: 20 is Zoom's answer to our own msg 21, which a
     * stop that already has a source asked for: it names no cause of its
     * own, so it never replaces a code or the source it follows */
    if (stop_reason_ >= 0)
      return false;
    stop_reason_ = stop_reason;
    return true;
  }
  if (stop_reason >= 0)
    stop_reason_ = stop_reason;
  if (stop_source_.empty () || stop_reason >= 0)
    stop_source_ = source;
  return stop_reason >= 0;
}

void
Engagement::stop (const char *source, int stop_reason)
{
  take_stop_reason (stop_reason, source);
  if (state_ != State::RUNNING && state_ != State::STARTING)
    return;
  state_ = State::STOPPING;
  GST_INFO ("engagement %s: stop (%s), sending EOS", p_.dir_name.c_str (), source);
  /* stop = the recording is over: msg 21 (design.md "Lifetimes") */
  if (src_ && g_object_class_find_property (G_OBJECT_GET_CLASS (src_), "eos-action"))
    gst_util_set_object_arg (G_OBJECT (src_), "eos-action", "stop");
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
  take_stop_reason (stop_reason, source);
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
  if (stop_reason < 0 || stop_reason_ == stop_reason ||
      !take_stop_reason (stop_reason, source))
    return;
  if (!active () && !end_job_) {
    /* the end line was logged without it */
    log_line (G_LOG_LEVEL_MESSAGE, &log_ctx_, "engagement %s: stop reason %d %s (%s), "
        "after the end", p_.dir_name.c_str (), stop_reason,
        rtms::stop_reason_name (stop_reason), stop_source_.c_str ());
    /* on the end-writer thread, after the end files (issue 12) */
    JsonNode *root = to_json (false);
    run_on_end_writer ([root, dir = p_.dir, ctx = log_ctx_] () {
          store_engagement_json (dir, root, ctx);
          json_node_unref (root);
        });
  }
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
    case GST_MESSAGE_ERROR:
      self->note_error (msg, true);
      self->state_ = State::FAILED;
      self->finish (false);
      return G_SOURCE_REMOVE;
    case GST_MESSAGE_WARNING:
      self->note_warning (msg);
      break;
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

/* The part of a GStreamer debug string after its "file(line): function
 * (): /object/path:\n" prefix (gst_element_message_full_with_details),
 * on one line. */
static std::string
debug_detail (const gchar *dbg)
{
  if (!dbg || !*dbg)
    return "";
  const gchar *nl = strstr (dbg, ":\n");
  /* without ":\n" after "(): " the element gave no detail, only where */
  if (!nl && strstr (dbg, "(): "))
    return "";
  std::string d = nl ? nl + 2 : dbg;
  for (char &c : d)
    if (c == '\n' || c == '\r')
      c = ' ';
  return d;
}

/* Text for engagement.json: kept when valid UTF-8 (json-glib's rule),
 * escaped otherwise (the detail may quote a server's close reason). */
static std::string
json_text (const std::string &s, gsize max_bytes = 2000)
{
  if (s.size () <= max_bytes && g_utf8_validate (s.data (), static_cast<gssize> (s.size ()),
          nullptr))
    return s;
  return log_safe (s, max_bytes);
}

static const gsize kMaxErrors = 16;
static const gsize kMaxWarnings = 32;

void
Engagement::note_error (GstMessage *msg, bool fatal)
{
  GError *err = nullptr;
  gchar *dbg = nullptr;
  gst_message_parse_error (msg, &err, &dbg);
  const GstStructure *details = nullptr;
  gst_message_parse_error_details (msg, &details);
  g_autofree gchar *path = gst_object_get_path_string (GST_MESSAGE_SRC (msg));
  std::string detail = debug_detail (dbg);
  std::string e = std::string (path) + ": " + err->message;
  if (!detail.empty ())
    e += " (" + detail + ")";
  if (details) {
    gint code;
    if (gst_structure_get_int (details, "rtms-status-code", &code) && code >= 0)
      e += " (rtms-status-code " + std::to_string (code) + ")";
    if (gst_structure_get_int (details, "rtms-stop-reason", &code) && code >= 0) {
      e += " (rtms-stop-reason " + std::to_string (code) + " " +
          rtms::stop_reason_name (code) + ")";
      if (code > 0)
        remote_reason_ = code;
    }
  }
  /* ENOSPC: filesink says GST_RESOURCE_ERROR_NO_SPACE_LEFT; others may
   * only have the errno text in their detail */
  bool no_space = (err->domain == GST_RESOURCE_ERROR &&
      err->code == GST_RESOURCE_ERROR_NO_SPACE_LEFT) ||
      (dbg && strstr (dbg, g_strerror (ENOSPC)));
  if (no_space && !disk_full_) {
    disk_full_ = true;
    e += " (disk full)";
  }
  bool dup = std::find (errors_.begin (), errors_.end (), json_text (e)) != errors_.end ();
  if (!dup && errors_.size () < kMaxErrors)
    errors_.push_back (json_text (e));
  if (fatal && !error_) {
    ErrorInfo info;
    info.source = path;
    info.domain = g_quark_to_string (err->domain);
    info.code = err->code;
    info.message = json_text (err->message);
    info.debug = json_text (dbg ? dbg : "", 4000);
    error_ = info;
  }
  if (!dup)
    log_line (G_LOG_LEVEL_WARNING, &log_ctx_, "engagement %s: %s: %s",
        p_.dir_name.c_str (), fatal ? "pipeline error" : "further error", log_safe (e, 1000).c_str ());
  GST_DEBUG ("error debug: %s", dbg ? dbg : "");
  g_error_free (err);
  g_free (dbg);
}

void
Engagement::note_warning (GstMessage *msg)
{
  GError *err = nullptr;
  gchar *dbg = nullptr;
  gst_message_parse_warning (msg, &err, &dbg);
  g_autofree gchar *path = gst_object_get_path_string (GST_MESSAGE_SRC (msg));
  std::string detail = debug_detail (dbg);
  std::string w = std::string (path) + ": " + err->message;
  if (!detail.empty ())
    w += " (" + detail + ")";
  warnings_total_++;
  if (warnings_.size () < kMaxWarnings)
    warnings_.push_back (json_text (w));
  /* e.g. zoomrtmssrc's "Lost the signaling connection …; reconnecting"
   * with the cause (who closed, code, reason) in the detail */
  log_line (G_LOG_LEVEL_WARNING, &log_ctx_, "engagement %s: warning: %s",
      p_.dir_name.c_str (), log_safe (w, 1000).c_str ());
  g_error_free (err);
  g_free (dbg);
}

void
Engagement::log_ended () const
{
  std::string line = "engagement " + p_.dir_name + " (stream " +
      log_safe (p_.rtms_stream_id) + "): call ";
  line += state_ == State::DETACHED ? "detached" : state_ == State::FAILED ?
      "failed" : "ended";
  /* stop reason: code, name (docs/protocol.md §2.7) and who said it */
  if (state_ == State::DETACHED)
    line += ", Zoom holds the stream for a host started within its grace window";
  else if (stop_reason_ >= 0)
    line += ", stop reason " + std::to_string (stop_reason_) + " " +
        rtms::stop_reason_name (stop_reason_) + " (" + stop_source_ + ")";
  else
    line += ", stop reason none given (" + stop_source_ + ")";
  gint64 wall_ms = (stop_us_ - start_us_) / 1000;
  line += ", duration " + hhmmss (wall_ms);
  gint64 audio_ms = audio_duration_ms ();
  if (audio_ms >= 0) {
    g_autofree gchar *a = g_strdup_printf ("%.1f s", (audio_ms + base_offset_ms_) / 1000.0);
    line += std::string (" (audio ") + a + ")";
  }
  guint64 frames = 0, silence = 0, dups = 0;
  if (stats_) {
    gst_structure_get_uint64 (stats_, "frames-received", &frames);
    gst_structure_get_uint64 (stats_, "silence-samples", &silence);
    gst_structure_get_uint64 (stats_, "frames-duplicated", &dups);
  }
  line += ", " + std::to_string (frames) + " packets";
  if (rate_ > 0) {
    g_autofree gchar *sil = g_strdup_printf ("%.2f s", static_cast<double> (silence) / rate_);
    line += std::string (", silence inserted ") + sil;
  } else {
    line += ", silence inserted " + std::to_string (silence) + " samples";
  }
  if (dups)
    line += ", " + std::to_string (dups) + " duplicates dropped";
  const auto &ints = jentry_.interruptions;
  line += ", " + std::to_string (ints.size ()) + (ints.size () == 1 ?
      " interruption" : " interruptions");
  if (!ints.empty ()) {
    std::string list;
    for (gsize i = 0; i < ints.size () && i < 4; i++) {
      const Interruption &x = ints[i];
      g_autofree gchar *len = x.end > 0 ? g_strdup_printf (" %.1f s",
          (x.end - x.start) / 1000.0) : g_strdup ("");
      list += (list.empty () ? "" : ", ") + x.cause + len +
          (x.recovered && x.end > 0 ? "" : " lost");
    }
    if (ints.size () > 4)
      list += ", …";
    line += " (" + list + ")";
  }
  if (failovers_)
    line += ", " + std::to_string (failovers_) + " failover(s)";
  /* the files, as on disk (bounded) */
  std::vector<std::pair<std::string, guint64>> files;
  gsize n_files = 0;
  g_autoptr (GDir) d = g_dir_open (p_.dir.c_str (), 0, nullptr);
  while (const gchar *n = d ? g_dir_read_name (d) : nullptr) {
    if (n[0] == '.')
      continue;
    n_files++;
    if (files.size () < 12) {
      GStatBuf st;
      guint64 size = g_stat (dir_->file (n).c_str (), &st) == 0 ?
          static_cast<guint64> (st.st_size) : 0;
      files.push_back ({n, size});
    }
  }
  std::sort (files.begin (), files.end ());
  std::string fl;
  for (const auto &f : files)
    fl += (fl.empty () ? "" : ", ") + log_safe (f.first, 80) + " " +
        format_bytes (f.second);
  if (n_files > files.size ())
    fl += ", +" + std::to_string (n_files - files.size ()) + " more";
  line += ", files in " + log_safe (p_.dir, 300) + ": " + (fl.empty () ? "none" : fl);
  if (!errors_.empty ()) {
    line += "; " + std::to_string (errors_.size ()) + (errors_.size () == 1 ?
        " error: " : " errors, the first: ") + log_safe (errors_[0], 600);
  }
  log_line (state_ == State::FAILED || !errors_.empty () ? G_LOG_LEVEL_WARNING :
      G_LOG_LEVEL_MESSAGE, &log_ctx_, "%s", line.c_str ());
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
  else if (g_str_equal (name, "zoomrtms/timeline"))
    on_timeline (s);
  else if (g_str_equal (name, "zoomrtms/detached"))
    on_detached (s);
  else if (g_str_equal (name, "zoomrtms/interruption"))
    on_interruption (s);
  else if (g_str_equal (name, "zoomrtms/superseded"))
    on_superseded (s);
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
  gint64 end_ms = get_i64 (s, "end-time", -1);
  if (end_ms > start_ms && start_ms > 0)
    sent.duration_ms = end_ms - start_ms;
  if (first_transcript_ms_ < 0 && start_ms > 0)
    first_transcript_ms_ = start_ms;
  gint64 origin = first_pts_->load ();
  if (GST_CLOCK_TIME_IS_VALID (rt) && origin >= 0)
    /* from sample 0 of this pipeline's file (its first buffer) */
    sent.offset_ms = base_offset_ms_ + (static_cast<gint64> (rt) > origin ?
        (static_cast<gint64> (rt) - origin) / static_cast<gint64> (GST_MSECOND) : 0);
  else if (GST_CLOCK_TIME_IS_VALID (rt))
    sent.offset_ms = base_offset_ms_ + static_cast<gint64> (rt / GST_MSECOND);
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
      if (sent.duration_ms > 0)
        old.duration_ms = sent.duration_ms;
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
  json_builder_set_member_name (b, "duration_ms");
  json_builder_add_int_value (b, sent.duration_ms);
  json_builder_set_member_name (b, "speaker");
  json_builder_add_string_value (b, sent.speaker.c_str ());
  json_builder_set_member_name (b, "received");
  json_builder_add_string_value (b, iso8601_utc (g_get_real_time ()).c_str ());
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  dir_->append (EngagementDir::Log::TRANSCRIPT, json_to_compact (root));
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
  dir_->append (EngagementDir::Log::EVENTS, json_to_compact (root));
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
  dir_->append (EngagementDir::Log::EVENTS, json_to_compact (root));
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
  dir_->append (EngagementDir::Log::LEVELS, json_to_compact (root));
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
  finishing_ = true;
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
  /* NULL joined the streaming threads: what they posted after the first
   * error is queued in the watch now (not dispatched once bus_cb said
   * stop) */
  for (int n = 0; bus_watch_ && n < 64; n++) {
    GstMessage *m = bus_watch_->pop (static_cast<GstMessageType> (
            GST_MESSAGE_ERROR | GST_MESSAGE_WARNING));
    if (!m)
      break;
    if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR)
      note_error (m, !error_ && state_ == State::FAILED);
    else
      note_warning (m);
    gst_message_unref (m);
  }
  bus_watch_.reset ();
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
  /* unref after the current dispatch (we may be inside the bus watch) */
  g_idle_add (unref_idle, pipeline_);
  pipeline_ = nullptr;
  if (src_) {
    gst_object_unref (src_);
    src_ = nullptr;
  }
  dir_->close_logs ();
  /* the space set aside at start: engagement.json and transcript.txt fit
   * even when the disk filled up */
  dir_->release_reserve ();
  journal_tick_stop ();
  if (!got_eos && dir_->repair_wavs ())
    /* wavenc rewrites its header only on EOS: sizes fixed from the file */
    repaired_ = true;
  stop_us_ = g_get_real_time ();
  if (detaching_ && state_ != State::FAILED) {
    /* detached: the journal entry stays for the next host (issue 9) */
    state_ = State::DETACHED;
    jentry_.state = "detached";
    jentry_.detached = stop_us_ / 1000;
    gint64 rec = dir_->recorded_samples (jentry_.outputs, jentry_.parts);
    if (rec >= 0 && !jentry_.outputs.empty ()) {
      /* the parts so far + this pipeline's output, as on disk */
      std::vector<std::string> cur = jentry_.outputs;
      WavInfo wi;
      for (const auto &o : cur)
        if (g_str_has_suffix (o.c_str (), ".wav") &&
            wav_info (dir_->file (o).c_str (), &wi, nullptr)) {
          jentry_.samples = static_cast<guint64> (rec) + wi.frames ();
          break;
        }
    }
    /* on disk before on_finished_: the next host, or the node that takes
     * the engagement over, reads it as soon as it is released */
    journal_write (true, true);
    detached_ = true;             /* no more journal writes from here */
    stop_source_ = "detach";
    write_transcript_txt ();
    write_engagement_json ();
    log_ended ();
    if (on_finished_)
      on_finished_ (this);
    return;
  }
  if (state_ != State::FAILED)
    state_ = State::STOPPED;
  if (stop_reason_ < 0 && remote_reason_ >= 0) {
    stop_reason_ = remote_reason_;
    if (stop_source_.empty ())
      stop_source_ = "remote";
  }
  if (stop_source_.empty ())
    stop_source_ = superseded_ ? "superseded" : state_ == State::FAILED ? "error" : "remote";
  if (jentry_.parts > 0) {
    /* a continued recording: one file per output (issue 9), merged on a
     * worker thread; finish_ended() runs on the main context when done */
    auto job = std::make_shared<MergeJob> ();
    job->self = this;
    merge_job_ = job;
    GST_INFO ("engagement %s: merging %d part(s) on a worker thread",
        p_.dir_name.c_str (), jentry_.parts);
    merge_thread_ = std::thread ([job, dir = p_.dir, name = p_.dir_name,
        outputs = jentry_.outputs, parts = jentry_.parts,
        settings = ogg_opus_encoder_settings (p_.tmpl.text)] () {
      EngagementDir d (dir, name);
      GError *err = nullptr;
      if (!d.merge_parts (outputs, parts, &job->silence, &err, settings)) {
        job->error = err->message;
        g_error_free (err);
      }
      /* merge_done_cb owns a reference to the job */
      g_idle_add_full (G_PRIORITY_DEFAULT, merge_done_cb,
          new std::shared_ptr<MergeJob> (job), [] (gpointer p) {
            delete static_cast<std::shared_ptr<MergeJob> *> (p);
          });
    });
    return;
  }
  finish_ended ({}, "");
}

gboolean
Engagement::merge_done_cb (gpointer data)
{
  auto job = *static_cast<std::shared_ptr<MergeJob> *> (data);
  Engagement *self = job->self;
  if (!self)
    return G_SOURCE_REMOVE;
  if (self->merge_thread_.joinable ())
    self->merge_thread_.join ();
  self->merge_job_.reset ();
  self->finish_ended (job->silence, job->error);
  return G_SOURCE_REMOVE;
}

void
Engagement::finish_ended (const std::vector<gint64> &silence,
    const std::string &merge_error)
{
  if (!merge_error.empty ()) {
    merge_error_ = merge_error;
    errors_.push_back ("parts not merged: " + merge_error);
  }
  if (jentry_.parts > 0) {
    /* the silence each continuation inserted, from the file */
    gsize k = 0;
    for (auto &i : jentry_.interruptions)
      if (g_str_has_prefix (i.cause.c_str (), "host-") && k < silence.size ()) {
        if (silence[k] >= 0 && jentry_.rate > 0)
          i.silence_ms = silence[k] * 1000 / jentry_.rate;
        k++;
      }
  }
  if (p_.journal && !p_.node_id.empty ())
    /* cluster mode: gone from the shared journal before the fleet hears
     * that it ended */
    p_.journal->remove (p_.rtms_stream_id);
  else if (p_.journal)
    /* our entry since its creation, unless continued from one a previous
     * host left (then scanned for what a crash may have left) */
    p_.journal->remove_async (p_.rtms_stream_id, jentry_.generation,
        p_.resume.has_value ());
  /* issue 12: transcript.txt/.vtt/.srt and engagement.json on the
   * end-writer thread (at 200 calls ending a second their file creations
   * held the main thread); the log line and on_finished_ (after-call
   * actions read these files) when they are written */
  auto job = std::make_shared<EndJob> ();
  job->self = this;
  job->stop_reason = stop_reason_;
  job->dir = p_.dir;
  job->log_ctx = log_ctx_;
  job->write_transcripts = transcript_writer ();
  job->json = to_json (false);
  end_job_ = job;
  run_on_end_writer ([j = job] () {
        j->write_transcripts ();
        /* the transcripts now on disk join the outputs in "files", in the
         * order to_json() lists them */
        JsonObject *o = json_node_get_object (j->json);
        JsonArray *files = json_object_get_array_member (o, "files");
        for (const char *t : EngagementDir::kTranscriptFiles) {
          bool listed = false;
          for (guint k = 0; k < json_array_get_length (files); k++) {
            JsonObject *f = json_array_get_object_element (files, k);
            listed = listed || g_str_equal (json_object_get_string_member (f, "name"), t);
          }
          g_autofree gchar *p = g_build_filename (j->dir.c_str (), t, nullptr);
          if (!listed && g_file_test (p, G_FILE_TEST_IS_REGULAR)) {
            JsonObject *f = json_object_new ();
            json_object_set_string_member (f, "name", t);
            json_object_set_string_member (f, "kind", "transcript");
            json_array_add_object_element (files, f);
          }
        }
        store_engagement_json (j->dir, j->json, j->log_ctx);
        {
          std::lock_guard<std::mutex> lk (j->lock);
          j->done = true;
        }
        j->cond.notify_all ();
        g_idle_add_full (G_PRIORITY_DEFAULT, end_written_cb,
            new std::shared_ptr<EndJob> (j), [] (gpointer p) {
              delete static_cast<std::shared_ptr<EndJob> *> (p);
            });
      });
}

void
Engagement::run_on_end_writer (std::function<void ()> fn)
{
  /* one thread, in order: a later engagement.json of the same engagement
   * is written after an earlier one */
  static GThreadPool *pool = g_thread_pool_new ([] (gpointer data, gpointer) {
        std::unique_ptr<std::function<void ()>> f (
            static_cast<std::function<void ()> *> (data));
        (*f) ();
      }, nullptr, 1, FALSE, nullptr);
  g_thread_pool_push (pool, new std::function<void ()> (std::move (fn)), nullptr);
}

gboolean
Engagement::end_written_cb (gpointer data)
{
  auto job = *static_cast<std::shared_ptr<EndJob> *> (data);
  Engagement *self = job->self;
  if (!self)
    return G_SOURCE_REMOVE;
  self->end_job_.reset ();
  /* a stopped webhook came while the files were written */
  if (self->stop_reason_ != job->stop_reason)
    self->write_engagement_json ();
  self->log_ended ();
  if (self->on_finished_)
    self->on_finished_ (self);
  return G_SOURCE_REMOVE;
}

gint64
Engagement::audio_duration_ms () const
{
  guint64 samples = 0;
  if (rate_ <= 0 || !stats_ || !gst_structure_get_uint64 (stats_, "samples-out", &samples))
    return -1;
  return static_cast<gint64> (samples * 1000 / static_cast<guint64> (rate_));
}

void
Engagement::write_transcript_txt () const
{
  transcript_writer () ();
}

std::function<void ()>
Engagement::transcript_writer () const
{
  gint64 audio_ms = audio_duration_ms ();
  if (audio_ms >= 0)
    audio_ms += base_offset_ms_;
  std::string footer = "Ended: " + iso8601_utc (stop_us_) +
      (detached_ ? " (detached: continued by the next host)" : "") + "\n" +
      "Duration: " + hhmmss (audio_ms >= 0 ? audio_ms : (stop_us_ - start_us_) / 1000) +
      (audio_ms >= 0 ? " (audio)" : " (wall clock)") + "\n";
  /* by value: the closure may run on the end-writer thread */
  auto dir = std::make_shared<EngagementDir> (p_.dir, p_.dir_name);
  if (jentry_.generation > 1) {
    /* a continued recording: the earlier parts' sentences are only in
     * transcript.jsonl */
    return [dir, footer, audio_ms, id_key = p_.id_key, id_value = p_.id_value,
        sid = p_.rtms_stream_id, started = iso8601_utc (jentry_.start_time * 1000),
        pipeline = p_.tmpl.name] () {
      std::vector<EngagementDir::Line> lines = dir->transcript_lines ();
      std::string f = footer + "Lines: " + std::to_string (lines.size ()) + "\n";
      dir->write_transcript (id_key, id_value, sid, started, pipeline, lines, f,
          audio_ms);
    };
  }
  std::vector<EngagementDir::Line> lines;
  for (const Sentence &s : sentences_)
    lines.push_back ({s.offset_ms, s.speaker, s.text, s.duration_ms});
  footer += "Lines: " + std::to_string (sentences_.size ()) + "\n";
  return [dir, footer, audio_ms, lines = std::move (lines), id_key = p_.id_key,
      id_value = p_.id_value, sid = p_.rtms_stream_id,
      started = iso8601_utc (start_us_), pipeline = p_.tmpl.name] () {
    dir->write_transcript (id_key, id_value, sid, started, pipeline, lines, footer,
        audio_ms);
  };
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
  str ("pipeline", p_.tmpl.name);
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
  json_builder_set_member_name (b, "display_names");   /* channel/user → name */
  json_builder_begin_object (b);
  for (const auto &kv : display_names_) {
    json_builder_set_member_name (b, kv.first.c_str ());
    json_builder_add_string_value (b, kv.second.c_str ());
  }
  json_builder_end_object (b);
  /* issue 14: one file per participant (record-participants) */
  json_builder_set_member_name (b, "participants");
  json_builder_begin_array (b);
  {
    std::lock_guard<std::mutex> lk (participants_lock_);
    for (const auto &pf : participant_files_) {
      json_builder_begin_object (b);
      str ("id", json_text (pf.id, 256));
      json_builder_set_member_name (b, "display_name");
      auto dn = display_names_.find (pf.id);
      if (dn != display_names_.end () && !dn->second.empty ())
        json_builder_add_string_value (b, json_text (dn->second).c_str ());
      else
        json_builder_add_null_value (b);
      str ("file", json_text (pf.file));
      json_builder_end_object (b);
    }
  }
  json_builder_end_array (b);
  /* issue 9: every interruption (host-restart, host-crash, media,
   * signaling) with its wall-clock start/end (epoch ms) and the silence
   * the recording holds for it */
  json_builder_set_member_name (b, "interruptions");
  interruptions_to_json (jentry_.interruptions, b);
  if (!jentry_.owners.empty ()) {
    /* cluster mode: each node that recorded a part (host-cluster.h) */
    json_builder_set_member_name (b, "owners");
    owners_to_json (jentry_.owners, b);
  }
  num ("parts_merged", merge_error_.empty () && !active () && !detached_ &&
      !merge_thread_.joinable () ?
      jentry_.parts : 0);
  num ("continuations", jentry_.generation - 1);
  json_builder_set_member_name (b, "timeline_origin");
  json_builder_add_int_value (b, jentry_.timeline_origin);
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
    json_builder_add_double_value (b, static_cast<double> (samples + timeline_offset_) /
        rate_);
  else
    json_builder_add_null_value (b);
  num ("transcript_messages", static_cast<gint64> (transcript_messages_));
  num ("transcript_lines", static_cast<gint64> (sentences_.size ()));
  num ("event_messages", static_cast<gint64> (event_messages_));
  num ("level_messages", static_cast<gint64> (level_messages_));
  /* the engagement's files as names in its directory (issue 14): the
   * pipeline's outputs, then the transcripts once written */
  json_builder_set_member_name (b, "files");
  json_builder_begin_array (b);
  auto file_entry = [&b] (const std::string &name, const char *kind) {
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "name");
    json_builder_add_string_value (b, name.c_str ());
    json_builder_set_member_name (b, "kind");
    json_builder_add_string_value (b, kind);
    json_builder_end_object (b);
  };
  for (const std::string &o : jentry_.outputs)
    file_entry (o, "output");
  for (const char *t : EngagementDir::kTranscriptFiles)
    if (g_file_test (dir_->file (t).c_str (), G_FILE_TEST_IS_REGULAR))
      file_entry (t, "transcript");
  json_builder_end_array (b);
  json_builder_set_member_name (b, "eos");
  json_builder_add_boolean_value (b, eos_received_);
  json_builder_set_member_name (b, "wav_repaired");
  json_builder_add_boolean_value (b, repaired_);
  /* each "element path: text (debug detail)" */
  json_builder_set_member_name (b, "errors");
  json_builder_begin_array (b);
  for (const auto &e : errors_)
    json_builder_add_string_value (b, e.c_str ());
  json_builder_end_array (b);
  /* the ERROR that ended the engagement, as GStreamer gave it */
  json_builder_set_member_name (b, "error");
  if (error_) {
    json_builder_begin_object (b);
    str ("source", error_->source);
    str ("domain", error_->domain);
    num ("code", error_->code);
    str ("message", error_->message);
    str ("debug", error_->debug);
    json_builder_end_object (b);
  } else {
    json_builder_add_null_value (b);
  }
  json_builder_set_member_name (b, "disk_full");
  json_builder_add_boolean_value (b, disk_full_);
  json_builder_set_member_name (b, "warnings");
  json_builder_begin_array (b);
  for (const auto &w : warnings_)
    json_builder_add_string_value (b, w.c_str ());
  json_builder_end_array (b);
  num ("warnings_total", static_cast<gint64> (warnings_total_));
  if (live) {
    json_builder_set_member_name (b, "live");
    json_builder_begin_object (b);
    GstState cur = GST_STATE_NULL;
    if (pipeline_)
      gst_element_get_state (pipeline_, &cur, nullptr, 0);
    str ("pipeline_state", gst_element_state_get_name (cur));
    json_builder_set_member_name (b, "active");
    json_builder_add_boolean_value (b, active ());
    /* the parts of a continued recording are being merged (worker thread) */
    json_builder_set_member_name (b, "merging");
    json_builder_add_boolean_value (b, merge_thread_.joinable ());
    json_builder_end_object (b);
  }
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

void
Engagement::write_engagement_json () const
{
  g_autoptr (JsonNode) root = to_json (false);
  store_engagement_json (p_.dir, root, log_ctx_);
}

void
Engagement::store_engagement_json (const std::string &dir, JsonNode *root,
    const LogContext &log_ctx)
{
  g_autofree gchar *path = g_build_filename (dir.c_str (), "engagement.json",
      nullptr);
  /* issue 13: the after-call queue's members (and a receipt) survive */
  std::lock_guard<std::mutex> g (AfterCall::engagement_json_mutex (dir));
  AfterCall::preserve_members (path, json_node_get_object (root));
  std::string txt = json_to_compact (root, true) + "\n";
  GError *err = nullptr;
  if (g_file_set_contents (path, txt.data (), static_cast<gssize> (txt.size ()),
          &err))
    return;
  if (g_error_matches (err, G_FILE_ERROR, G_FILE_ERROR_NOSPC)) {
    /* no room for a second copy: overwrite the one there in place (its
     * blocks are allocated already; a torn write is repaired by the next
     * host like any engagement.json it cannot read) */
    int fd = g_open (path, O_WRONLY | O_CLOEXEC, 0);
    bool ok = fd >= 0;
    gsize done = 0;
    while (ok && done < txt.size ()) {
      ssize_t n = write (fd, txt.data () + done, txt.size () - done);
      if (n < 0 && errno == EINTR)
        continue;
      ok = n > 0;
      if (ok)
        done += static_cast<gsize> (n);
    }
    ok = ok && ftruncate (fd, static_cast<off_t> (txt.size ())) == 0;
    if (fd >= 0)
      close (fd);
    if (ok) {
      g_error_free (err);
      return;
    }
  }
  g_autofree gchar *name = g_path_get_basename (dir.c_str ());
  log_line (G_LOG_LEVEL_WARNING, &log_ctx, "engagement %s: engagement.json not "
      "written: %s", name, err->message);
  g_error_free (err);
}

} // namespace zhost

namespace zhost {

static const char *
product_str (rtms::Product p)
{
  return product_name (p);
}

/* The participant id of a zoomrtmsdemux pad: its stream tags' title. */
static std::string
pad_participant_id (GstPad *pad)
{
  std::string id;
  GstEvent *ev = gst_pad_get_sticky_event (pad, GST_EVENT_TAG, 0);
  if (ev) {
    GstTagList *tags = nullptr;
    gst_event_parse_tag (ev, &tags);
    gchar *t = nullptr;
    if (tags && gst_tag_list_get_string (tags, GST_TAG_TITLE, &t))
      id = t;
    g_free (t);
    gst_event_unref (ev);
  }
  if (id.empty ()) {
    const gchar *name = GST_OBJECT_NAME (pad);
    id = g_str_has_prefix (name, "participant_") ?
        name + strlen ("participant_") : name;
  }
  return id;
}

void
Engagement::participant_pad_cb (GstElement *demux, GstPad *pad, gpointer data)
{
  auto *self = static_cast<Engagement *> (data);
  std::string id = pad_participant_id (pad);
  TemplateVars vars = self->vars_;
  vars["PARTICIPANT_ID"] = sanitize_engagement_id (id);
  GError *err = nullptr;
  GstElement *bin = build_participant_branch (self->p_.tmpl, vars, &err);
  if (!bin) {
    /* a warning on the bus: the engagement goes on without this file */
    gst_element_post_message (demux, gst_message_new_warning (
            GST_OBJECT (demux), err, "participant branch not built"));
    g_error_free (err);
    return;
  }
  std::string file;
  GstIterator *it = gst_bin_iterate_recurse (GST_BIN (bin));
  GValue v = G_VALUE_INIT;
  while (gst_iterator_next (it, &v) == GST_ITERATOR_OK) {
    auto *el = GST_ELEMENT (g_value_get_object (&v));
    GParamSpec *ps = g_object_class_find_property (G_OBJECT_GET_CLASS (el),
        "location");
    if (file.empty () && GST_OBJECT_FLAG_IS_SET (el, GST_ELEMENT_FLAG_SINK) &&
        ps && ps->value_type == G_TYPE_STRING) {
      g_autofree gchar *loc = nullptr;
      g_object_get (el, "location", &loc, nullptr);
      if (loc) {
        g_autofree gchar *base = g_path_get_basename (loc);
        file = base;
      }
    }
    g_value_reset (&v);
  }
  g_value_unset (&v);
  gst_iterator_free (it);
  /* beside the demuxer (the template's elements are in a bin of their
   * own inside the pipeline: build_pipeline) */
  GstObject *parent = gst_object_get_parent (GST_OBJECT (demux));
  gst_bin_add (GST_BIN (parent ? parent : GST_OBJECT (self->pipeline_)), bin);
  if (parent)
    gst_object_unref (parent);
  g_autoptr (GstPad) sink = gst_element_get_static_pad (bin, "sink");
  if (gst_pad_link (pad, sink) != GST_PAD_LINK_OK) {
    GError *lerr = g_error_new (GST_CORE_ERROR, GST_CORE_ERROR_PAD,
        "cannot link the participant branch");
    gst_element_post_message (demux, gst_message_new_warning (
            GST_OBJECT (demux), lerr, GST_OBJECT_NAME (pad)));
    g_error_free (lerr);
  }
  gst_element_sync_state_with_parent (bin);
  gst_object_unref (bin);       /* build_participant_branch()'s ref */
  std::lock_guard<std::mutex> lk (self->participants_lock_);
  self->participant_files_.push_back ({ id, file });
}

void
Engagement::find_outputs ()
{
  /* the pipeline's file sinks writing into the engagement directory */
  jentry_.outputs.clear ();
  GstIterator *it = gst_bin_iterate_recurse (GST_BIN (pipeline_));
  GValue v = G_VALUE_INIT;
  bool done = false;
  while (!done) {
    switch (gst_iterator_next (it, &v)) {
      case GST_ITERATOR_OK: {
        auto *el = GST_ELEMENT (g_value_get_object (&v));
        if (!GST_IS_BIN (el) && GST_OBJECT_FLAG_IS_SET (el, GST_ELEMENT_FLAG_SINK) &&
            g_object_class_find_property (G_OBJECT_GET_CLASS (el), "location")) {
          GParamSpec *ps = g_object_class_find_property (G_OBJECT_GET_CLASS (el),
              "location");
          if (ps->value_type == G_TYPE_STRING) {
            g_autofree gchar *loc = nullptr;
            g_object_get (el, "location", &loc, nullptr);
            if (loc) {
              g_autofree gchar *d = g_path_get_dirname (loc);
              g_autofree gchar *base = g_path_get_basename (loc);
              if (p_.dir == d && std::find (jentry_.outputs.begin (),
                      jentry_.outputs.end (), base) == jentry_.outputs.end ())
                jentry_.outputs.push_back (base);
            }
          }
        }
        g_value_reset (&v);
        break;
      }
      case GST_ITERATOR_RESYNC:
        gst_iterator_resync (it);
        jentry_.outputs.clear ();
        break;
      default:
        done = true;
        break;
    }
  }
  g_value_unset (&v);
  gst_iterator_free (it);
}

static bool
src_has (GstElement *src, const char *prop)
{
  return src && g_object_class_find_property (G_OBJECT_GET_CLASS (src), prop);
}

bool
Engagement::prepare_continuation (GError **error)
{
  jentry_.id_key = p_.id_key;
  jentry_.id_value = p_.id_value;
  jentry_.rtms_stream_id = p_.rtms_stream_id;
  jentry_.server_urls = server_urls_;
  jentry_.product = product_str (p_.product);
  jentry_.event = p_.event;
  jentry_.event_ts = last_event_ts_;
  jentry_.pipeline = p_.tmpl.name;
  jentry_.directory = p_.dir;
  jentry_.dir_name = p_.dir_name;
  jentry_.start_time = start_us_ / 1000;
  std::string replay;
  if (p_.resume) {
    const JournalEntry &r = *p_.resume;
    jentry_.start_time = r.start_time;
    jentry_.interruptions = r.interruptions;
    jentry_.owners = r.owners;
    jentry_.parts = r.parts;
    jentry_.generation = r.generation + 1;
    jentry_.timeline_origin = r.timeline_origin;
    jentry_.rate = r.rate;
    jentry_.channels = r.channels;
    /* the outputs the earlier pipelines wrote: theirs, plus ours */
    for (const auto &o : r.outputs)
      if (std::find (jentry_.outputs.begin (), jentry_.outputs.end (), o) ==
          jentry_.outputs.end ())
        jentry_.outputs.push_back (o);
    if (!dir_->move_outputs_aside (jentry_.outputs, &jentry_.parts, error))
      return false;
    gint64 rec = dir_->recorded_samples (jentry_.outputs, jentry_.parts);
    /* no WAV output: the journal's figure (at most 1 s old after a crash;
     * exact after a detach) */
    timeline_offset_ = rec >= 0 ? static_cast<guint64> (rec) : r.samples;
    jentry_.samples = timeline_offset_;
    if (jentry_.rate > 0)
      base_offset_ms_ = static_cast<gint64> (timeline_offset_ * 1000 /
          static_cast<guint64> (jentry_.rate));
    Interruption i;
    i.cause = r.state == "detached" ? "host-restart" : "host-crash";
    i.start = r.detached > 0 ? r.detached : r.updated;
    i.end = g_get_real_time () / 1000;
    jentry_.interruptions.push_back (i);
    if (!r.packet_log.empty () && g_file_test (r.packet_log.c_str (),
            G_FILE_TEST_IS_REGULAR))
      replay = r.packet_log;
    event_line ("interruption", [&] (JsonBuilder *b) {
          json_builder_set_member_name (b, "cause");
          json_builder_add_string_value (b, i.cause.c_str ());
          json_builder_set_member_name (b, "start");
          json_builder_add_int_value (b, i.start);
          json_builder_set_member_name (b, "end");
          json_builder_add_int_value (b, i.end);
          json_builder_set_member_name (b, "timeline_offset");
          json_builder_add_int_value (b, static_cast<gint64> (timeline_offset_));
          json_builder_set_member_name (b, "replay_log");
          json_builder_add_boolean_value (b, !replay.empty ());
        });
    g_message ("engagement %s: rejoining stream %s after a %s, continuing at "
        "timeline position %" G_GUINT64_FORMAT " (%d part(s) so far%s)",
        p_.dir_name.c_str (), log_safe (p_.rtms_stream_id).c_str (), i.cause.c_str (),
        timeline_offset_, jentry_.parts, replay.empty () ? "" : ", replaying the packet log");
    if (r.timeline_origin >= 0 && src_has (src_, "timeline-origin")) {
      g_object_set (src_, "timeline-origin", r.timeline_origin, nullptr);
      if (src_has (src_, "timeline-offset"))
        g_object_set (src_, "timeline-offset", timeline_offset_, nullptr);
    } else if (r.timeline_origin >= 0) {
      g_warning ("engagement %s: zoomrtmssrc has no timeline-origin: the "
          "continuation is not aligned to the earlier parts", p_.dir_name.c_str ());
    }
    if (!replay.empty () && src_has (src_, "replay-log"))
      g_object_set (src_, "replay-log", replay.c_str (), nullptr);
  }
  if (!p_.node_id.empty ())
    jentry_.owners.push_back ({p_.node_id, g_get_real_time () / 1000});
  if (p_.journal && src_has (src_, "packet-log")) {
    /* a stream that starts again: its old entry's removal unlinks the
     * packet logs by name */
    p_.journal->wait_removed (p_.rtms_stream_id);
    jentry_.packet_log = p_.journal->packet_log_path (p_.rtms_stream_id,
        jentry_.generation);
    g_object_set (src_, "packet-log", jentry_.packet_log.c_str (), nullptr);
    /* older generations are no longer needed once ours replays them; a
     * new engagement has none (the element truncates its log: O_TRUNC),
     * and a scan of the journal directory per start was O(engagements) */
    if (p_.resume)
      p_.journal->remove_packet_logs (p_.rtms_stream_id,
          replay.empty () ? jentry_.packet_log : replay);
  }
  return true;
}

void
Engagement::journal_write (bool durable, bool sync)
{
  if (!p_.journal || detached_)
    return;
  jentry_.server_urls = server_urls_;
  jentry_.event_ts = last_event_ts_;
  /* issue 12: on the journal's writer thread, no fsync here
   * (host-journal.h "The writer thread") */
  if (sync)
    p_.journal->write (jentry_, durable);
  else
    p_.journal->submit (jentry_, durable);
}

/* issue 12: one timer for every engagement's journal tick (a timer per
 * engagement was a GSource each main-loop iteration prepared and checked) */
static std::set<Engagement *> ticking;
static guint tick_source_id;

void
Engagement::journal_tick_start ()
{
  if (ticking_)
    return;
  ticking_ = true;
  ticking.insert (this);
  if (!tick_source_id)
    tick_source_id = g_timeout_add_seconds (1, [] (gpointer) -> gboolean {
          for (Engagement *e : ticking)
            journal_tick_cb (e);
          return G_SOURCE_CONTINUE;
        }, nullptr);
}

void
Engagement::journal_tick_stop ()
{
  if (!ticking_)
    return;
  ticking_ = false;
  ticking.erase (this);
  if (ticking.empty () && tick_source_id) {
    g_source_remove (tick_source_id);
    tick_source_id = 0;
  }
}

gboolean
Engagement::journal_tick_cb (gpointer data)
{
  auto *self = static_cast<Engagement *> (data);
  if (!self->src_ || !self->active ())
    return G_SOURCE_CONTINUE;
  /* issue 9: the samples recorded so far, at most once a second; the
   * update time is what a restarted host measures Zoom's grace from (and
   * what the fleet's stale check reads). Atomic, not durable: no fsync
   * (host-journal.h "Durability") */
  self->read_stats ();
  guint64 out = 0;
  if (self->stats_)
    gst_structure_get_uint64 (self->stats_, "samples-out", &out);
  self->jentry_.samples = self->timeline_offset_ + out;
  self->journal_write (false);
  return G_SOURCE_CONTINUE;
}

void
Engagement::on_timeline (const GstStructure *s)
{
  gint64 origin = get_i64 (s, "timeline-origin", -1);
  gint rate = 0, channels = 0;
  gst_structure_get_int (s, "rate", &rate);
  gst_structure_get_int (s, "channels", &channels);
  if (jentry_.timeline_origin >= 0 && origin != jentry_.timeline_origin)
    g_warning ("engagement %s: timeline origin %" G_GINT64_FORMAT " differs from "
        "the journal's %" G_GINT64_FORMAT, p_.dir_name.c_str (), origin,
        jentry_.timeline_origin);
  jentry_.timeline_origin = origin;
  jentry_.rate = rate;
  jentry_.channels = channels;
  if (rate > 0 && base_offset_ms_ == 0 && timeline_offset_ > 0)
    base_offset_ms_ = static_cast<gint64> (timeline_offset_ * 1000 /
        static_cast<guint64> (rate));
  journal_write (true);
}

void
Engagement::on_detached (const GstStructure *s)
{
  guint64 samples = 0;
  if (gst_structure_get_uint64 (s, "samples", &samples))
    jentry_.samples = samples;
  gint64 origin = get_i64 (s, "timeline-origin", -1);
  if (origin >= 0)
    jentry_.timeline_origin = origin;
  GST_INFO ("engagement %s: detached at timeline position %" G_GUINT64_FORMAT,
      p_.dir_name.c_str (), samples);
}

void
Engagement::on_interruption (const GstStructure *s)
{
  std::string cause = get_str (s, "cause");
  gint64 start = get_i64 (s, "start", 0);
  bool is_end = gst_structure_has_field (s, "end");
  if (!is_end) {
    Interruption i;
    i.cause = cause;
    i.start = start;
    jentry_.interruptions.push_back (i);
  } else {
    gint64 end = get_i64 (s, "end", 0);
    gboolean recovered = FALSE;
    gst_structure_get_boolean (s, "recovered", &recovered);
    Interruption *open = nullptr;
    for (auto &i : jentry_.interruptions)
      if (i.start == start && i.end == 0 && !g_str_has_prefix (i.cause.c_str (), "host-"))
        open = &i;
    if (!open) {
      jentry_.interruptions.push_back (Interruption ());
      open = &jentry_.interruptions.back ();
      open->start = start;
    }
    open->cause = cause;
    open->recovered = recovered;
    open->end = recovered ? end : -1;
    log_line (recovered ? G_LOG_LEVEL_MESSAGE : G_LOG_LEVEL_WARNING, &log_ctx_,
        "engagement %s: %s outage of %.1f s ended: %s", p_.dir_name.c_str (),
        log_safe (cause, 40).c_str (), (end - start) / 1000.0, recovered ?
        "reconnected, the gap is silence in the recording" :
        "not recovered");
    /* the element fills the RTMS gap with silence: the outage's length is
     * what the recording holds when Zoom does not replay it (§4.9) */
    open->silence_ms = recovered ? end - start : -1;
  }
  event_line ("interruption", [&] (JsonBuilder *b) {
        structure_to_json (s, b);
      });
  journal_write (true);
}

void
Engagement::on_superseded (const GstStructure *s)
{
  superseded_ = true;
  event_line ("superseded", [&] (JsonBuilder *b) {
        structure_to_json (s, b);
      });
  log_line (G_LOG_LEVEL_MESSAGE, &log_ctx_, "engagement %s: superseded by "
      "another consumer's newer signaling handshake: finishing, not "
      "reconnecting", p_.dir_name.c_str ());
}

void
Engagement::detach ()
{
  if (state_ != State::RUNNING && state_ != State::STARTING)
    return;
  if (grace_timeout_id_) {
    /* a stopped webhook came: the stream is over, nothing to hold */
    g_source_remove (grace_timeout_id_);
    grace_timeout_id_ = 0;
    stop (grace_source_.c_str (), -1);
    return;
  }
  state_ = State::STOPPING;
  detaching_ = true;
  GST_INFO ("engagement %s: detach", p_.dir_name.c_str ());
  gboolean sent = FALSE;
  if (src_)
    sent = gst_element_send_event (src_, gst_event_new_custom (
            GST_EVENT_CUSTOM_UPSTREAM, gst_structure_new_empty ("zoomrtms/detach")));
  if (!sent) {
    /* not running yet, or an element without the event */
    if (src_has (src_, "eos-action"))
      gst_util_set_object_arg (G_OBJECT (src_), "eos-action", "detach");
    else
      g_warning ("engagement %s: zoomrtmssrc cannot detach (no eos-action): EOS "
          "ends the stream at Zoom", p_.dir_name.c_str ());
    gst_element_send_event (pipeline_, gst_event_new_eos ());
  }
  eos_timeout_id_ = g_timeout_add (static_cast<guint> (p_.stop_timeout_ms),
      eos_timeout_cb, this);
}

void
Engagement::finalize_unrejoined (const JournalEntry &e, Journal *journal,
    const std::string &opus_settings)
{
  EngagementDir dir (e.directory, e.dir_name);
  bool repaired = dir.repair_wavs ();
  dir.release_reserve ();
  std::vector<Interruption> ints = e.interruptions;
  Interruption lost;
  lost.cause = e.state == "detached" ? "host-restart" : "host-crash";
  lost.start = e.detached > 0 ? e.detached : e.updated;
  lost.end = -1;
  lost.recovered = false;
  ints.push_back (lost);
  std::vector<gint64> silence;
  GError *err = nullptr;
  std::string merge_error;
  if (e.parts > 0 && !dir.merge_parts (e.outputs, e.parts, &silence, &err,
          opus_settings)) {
    merge_error = err->message;
    g_error_free (err);
  }
  gsize k = 0;
  for (auto &i : ints)
    if (g_str_has_prefix (i.cause.c_str (), "host-") && i.recovered &&
        k < silence.size ()) {
      if (silence[k] >= 0 && e.rate > 0)
        i.silence_ms = silence[k] * 1000 / e.rate;
      k++;
    }
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *obj = dir.read_engagement_json (parser);
  g_autoptr (JsonNode) fresh = nullptr;
  if (!obj) {
    fresh = json_node_new (JSON_NODE_OBJECT);
    json_node_take_object (fresh, json_object_new ());
    obj = json_node_get_object (fresh);
    json_object_set_string_member (obj, e.id_key.empty () ? "engagement_id" :
        e.id_key.c_str (), e.id_value.c_str ());
    json_object_set_string_member (obj, "id_key", e.id_key.c_str ());
    json_object_set_string_member (obj, "rtms_stream_id", e.rtms_stream_id.c_str ());
    json_object_set_string_member (obj, "pipeline", e.pipeline.c_str ());
  }
  int lines = dir.recover_transcript (obj);
  if (lines >= 0)
    json_object_set_int_member (obj, "transcript_lines", lines);
  json_object_set_string_member (obj, "state", "recovered");
  json_object_set_string_member (obj, "recovered_time",
      iso8601_utc (g_get_real_time ()).c_str ());
  json_object_set_boolean_member (obj, "wav_repaired", repaired);
  json_object_set_int_member (obj, "parts_merged", merge_error.empty () ? e.parts : 0);
  if (!merge_error.empty ())
    json_object_set_string_member (obj, "merge_error", merge_error.c_str ());
  g_autoptr (JsonBuilder) b = json_builder_new ();
  interruptions_to_json (ints, b);
  json_object_set_member (obj, "interruptions", json_builder_get_root (b));
  JsonNode *root = fresh ? fresh : json_parser_get_root (parser);
  dir.write_engagement_json (root);
  g_autoptr (JsonBuilder) ev = json_builder_new ();
  json_builder_begin_object (ev);
  json_builder_set_member_name (ev, "type");
  json_builder_add_string_value (ev, "interruption");
  json_builder_set_member_name (ev, "received");
  json_builder_add_string_value (ev, iso8601_utc (g_get_real_time ()).c_str ());
  lost_interruption_members (ev, lost, "not rejoined within Zoom's grace window");
  json_builder_end_object (ev);
  g_autoptr (JsonNode) evr = json_builder_get_root (ev);
  dir.append (EngagementDir::Log::EVENTS, json_to_compact (evr));
  if (journal)
    journal->remove (e.rtms_stream_id);
  g_message ("engagement %s: left by a previous host and not rejoined (outside "
      "the grace window): recovered%s", e.dir_name.c_str (),
      repaired ? " (WAV headers repaired)" : "");
}

} // namespace zhost
