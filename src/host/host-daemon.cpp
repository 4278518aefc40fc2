/* zoomrtms-host — the daemon. See host-daemon.h. */
#include "host-daemon.h"

#include "host-common.h"
#include "host-engagement-dir.h"
#include "host-health.h"
#include "host-history.h"
#include "host-ogg.h"
#include "host-status.h"
#include "host-wav.h"

#include <glib-unix.h>
#include <sys/socket.h>
#include <glib/gstdio.h>

#include <algorithm>
#include <cstring>

#define GST_CAT_DEFAULT zoomrtms_host_debug

namespace zhost {

static const gsize kMaxFinished = 1000;

void
json_response (SoupServerMessage *msg, guint status, const std::string &body)
{
  soup_server_message_set_status (msg, status, nullptr);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY,
      body.data (), body.size ());
}

Daemon::Daemon (HostConfig cfg, std::shared_ptr<const TemplateStore> templates)
    : cfg_ (std::move (cfg)), templates_ (std::move (templates))
{
  loop_ = g_main_loop_new (nullptr, FALSE);
}

Daemon::~Daemon ()
{
  cluster_.reset ();            /* before the engagements its hooks reach */
  status_.reset ();
  if (sigint_id_)
    g_source_remove (sigint_id_);
  if (sigterm_id_)
    g_source_remove (sigterm_id_);
  if (sighup_id_)
    g_source_remove (sighup_id_);
  if (shutdown_timeout_id_)
    g_source_remove (shutdown_timeout_id_);
  if (storage_timer_id_)
    g_source_remove (storage_timer_id_);
  if (server_) {
    soup_server_disconnect (server_);
    http_.reset ();
    g_object_unref (server_);
  }
  active_.clear ();
  finished_.clear ();
  g_main_loop_unref (loop_);
}

void
Daemon::repair_left_over (const std::set<std::string> &skip)
{
  g_autoptr (GDir) d = g_dir_open (cfg_.output_root.c_str (), 0, nullptr);
  while (const gchar *name = d ? g_dir_read_name (d) : nullptr) {
    g_autofree gchar *path = g_build_filename (cfg_.output_root.c_str (), name, nullptr);
    if (skip.count (path) || !g_file_test (path, G_FILE_TEST_IS_DIR))
      continue;
    EngagementDir dir (path, name);
    g_autoptr (JsonParser) parser = json_parser_new ();
    JsonObject *obj = dir.read_engagement_json (parser);
    if (!obj)
      continue;
    const gchar *state = json_object_get_string_member_with_default (obj, "state", "");
    if (!g_str_equal (state, "running") && !g_str_equal (state, "starting") &&
        !g_str_equal (state, "stopping"))
      continue;
    bool repaired = dir.repair_wavs ();
    dir.release_reserve ();
    int lines = dir.recover_transcript (obj);
    if (lines >= 0)
      json_object_set_int_member (obj, "transcript_lines", lines);
    json_object_set_string_member (obj, "state", "recovered");
    json_object_set_string_member (obj, "recovered_time",
        iso8601_utc (g_get_real_time ()).c_str ());
    json_object_set_boolean_member (obj, "wav_repaired", repaired);
    dir.write_engagement_json (json_parser_get_root (parser));
    g_message ("recovered engagement %s left running by a previous host%s", name,
        repaired ? " (WAV headers repaired)" : "");
    after_call_ended (path, -1);
  }
}

EngagementParams
Daemon::base_params (const PipelineTemplate &tmpl) const
{
  EngagementParams p;
  p.tmpl = tmpl;
  p.rtp_host = cfg_.rtp_host;
  p.rtp_port = cfg_.rtp_port;
  p.client_id = cfg_.client_id;
  p.client_secret = cfg_.client_secret;
  p.ca_file = cfg_.ca_file;
  p.stop_timeout_ms = cfg_.stop_timeout_ms;
  p.stop_grace_ms = cfg_.stop_grace_ms;
  p.journal = journal_.get ();
  p.node_id = node_id_;
  return p;
}

rtms::Product
product_from_name (const std::string &n)
{
  if (n == "meeting")
    return rtms::Product::MEETING;
  if (n == "webinar")
    return rtms::Product::WEBINAR;
  if (n == "session")
    return rtms::Product::SESSION;
  if (n == "phone")
    return rtms::Product::PHONE;
  return rtms::Product::CONTACT_CENTER;
}

/* Whether the state of the engagement.json object @obj is a final one
 * (stopped, failed, recovered, erased), not one of a live or detached
 * recording. */
static bool
ended_state (JsonObject *obj)
{
  const gchar *st = json_object_get_string_member_with_default (obj, "state", "");
  for (const char *live : {"", "starting", "running", "stopping", "detached"})
    if (g_str_equal (st, live))
      return false;
  return true;
}

/* Sets "stop_reason" of the engagement.json object @obj: @reason (< 0:
 * none) given by a webhook. */
static void
set_webhook_stop_reason (JsonObject *obj, int reason)
{
  JsonObject *sr = json_object_new ();
  if (reason >= 0) {
    json_object_set_int_member (sr, "code", reason);
    json_object_set_string_member (sr, "name", rtms::stop_reason_name (reason));
  } else {
    json_object_set_null_member (sr, "code");
    json_object_set_null_member (sr, "name");
  }
  json_object_set_string_member (sr, "source", "webhook");
  json_object_set_object_member (obj, "stop_reason", sr);
}

/* Whether the engagement of the journal entry @e ended: its engagement.json
 * has a final state (stopped, failed, recovered, erased), not one of a live
 * or detached recording, and no part of a continuation is left to merge
 * (a continuation that failed at start is "failed" before the caller
 * finalizes its parts). An unreadable or missing file is not an end.
 * *@stop_reason: the code recorded (-1: none); *@after_call: whether the
 * after-call actions saw it (an "actions" or "erasure" member). */
static bool
engagement_ended (const JournalEntry &e, int *stop_reason, bool *after_call)
{
  EngagementDir dir (e.directory, e.dir_name);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *obj = dir.read_engagement_json (parser);
  if (!obj)
    return false;
  if (!ended_state (obj))
    return false;
  for (const auto &o : e.outputs)
    if (e.parts > 0 && g_file_test (dir.file (EngagementDir::part_name (o, e.parts)).c_str (),
            G_FILE_TEST_EXISTS))
      return false;
  JsonNode *sr = json_object_get_member (obj, "stop_reason");
  *stop_reason = sr && JSON_NODE_HOLDS_OBJECT (sr) ?
      static_cast<int> (json_object_get_int_member_with_default (json_node_get_object (sr),
          "code", -1)) : -1;
  *after_call = json_object_has_member (obj, "actions") ||
      json_object_has_member (obj, "erasure");
  return true;
}

void
Daemon::resume_journal ()
{
  std::vector<JournalEntry> entries = journal_->load_all ();
  gint64 now_ms = g_get_real_time () / 1000;
  std::set<std::string> resumed_dirs;
  std::vector<JournalEntry> to_resume;
  for (auto &e : entries) {
    int code = -1;
    bool after_call = false;
    if (engagement_ended (e, &code, &after_call)) {
      /* its end was written, then the host died before the journal's
       * writer removed the entry: never rejoined, never finalized again;
       * the after-call actions (a revocation's erasure) if it died before
       * they were queued */
      g_message ("journal: engagement %s had ended; its entry is removed",
          e.dir_name.c_str ());
      journal_->remove (e.rtms_stream_id);
      if (!after_call)
        after_call_ended (e.directory, code);
      continue;
    }
    /* Zoom's grace runs from the moment the sockets closed: the detach, or
     * (a crash) at most a second after the last journal update */
    gint64 since = e.detached > 0 ? e.detached : e.updated;
    gint64 age_ms = now_ms - since;
    bool in_window = age_ms >= 0 && age_ms < static_cast<gint64> (cfg_.rejoin_window_s) * 1000;
    const PipelineTemplate *tmpl = templates_->find (e.pipeline);
    if (in_window && tmpl && !g_file_test (e.directory.c_str (), G_FILE_TEST_IS_DIR))
      in_window = false;
    if (!in_window || !tmpl) {
      if (!tmpl)
        g_warning ("journal: pipeline %s of engagement %s is gone: not rejoined",
            log_safe (e.pipeline).c_str (), e.dir_name.c_str ());
      else
        g_message ("journal: engagement %s was left %" G_GINT64_FORMAT " ms ago, "
            "outside the %d s rejoin window", e.dir_name.c_str (), age_ms,
            cfg_.rejoin_window_s);
      Engagement::finalize_unrejoined (e, journal_.get (),
          tmpl ? ogg_opus_encoder_settings (tmpl->text) : "");
      after_call_ended (e.directory, -1);
      lost_[e.rtms_stream_id] = e.directory;
      resumed_dirs.insert (e.directory);
      continue;
    }
    resumed_dirs.insert (e.directory);
    to_resume.push_back (e);
  }
  repair_left_over (resumed_dirs);
  for (auto &e : to_resume) {
    const PipelineTemplate *tmpl = templates_->find (e.pipeline);
    EngagementParams p = params_from_journal (e, *tmpl);
    auto eng = std::make_unique<Engagement> (std::move (p),
        [this] (Engagement *x) { on_finished (x); });
    Engagement *raw = eng.get ();
    active_[e.rtms_stream_id] = std::move (eng);
    GError *err = nullptr;
    if (!raw->start (&err)) {
      g_warning ("engagement %s could not be rejoined: %s", e.dir_name.c_str (),
          err ? err->message : "?");
      g_clear_error (&err);
      auto again = active_.find (e.rtms_stream_id);
      if (again != active_.end () && again->second.get () == raw) {
        finished_.push_back (std::move (again->second));
        active_.erase (again);
      }
      /* a pipeline that failed at PLAYING finished itself (its parts are
       * being merged on its own thread: never twice) */
      if (raw->finishing ())
        continue;
      /* the parts are not lost: finalize them as a lost interruption */
      Engagement::finalize_unrejoined (e, journal_.get (),
          tmpl ? ogg_opus_encoder_settings (tmpl->text) : "");
      after_call_ended (e.directory, -1);
      lost_[e.rtms_stream_id] = e.directory;
    }
  }
}

bool
Daemon::start (GError **error)
{
  if (g_mkdir_with_parents (cfg_.output_root.c_str (), 0750) != 0) {
    int e = errno;
    g_set_error (error, ZHOST_ERROR, ERROR_IO, "cannot create output root %s: %s",
        cfg_.output_root.c_str (), g_strerror (e));
    return false;
  }
  /* issue 13: the after-call queue lives in the state directory */
  after_ = std::make_unique<AfterCall> (cfg_.actions, cfg_.state_dir + "/actions",
      cfg_.output_root, [this] (const std::string &dir) {
        for (auto &kv : active_)
          if (kv.second->params ().dir == dir)
            return true;
        return false;
      });
  GError *aerr = nullptr;
  if (!after_->start (&aerr)) {
    g_warning ("error: no after-call actions (%s)", aerr->message);
    g_error_free (aerr);
    after_.reset ();
  }
  /* issue 9: rejoin what a previous host left, before listening (the
   * webhooks of those streams find them live) */
  journal_ = std::make_unique<Journal> (cfg_.state_dir);
  GError *jerr = nullptr;
  if (!journal_->open (&jerr)) {
    /* recording matters more than rejoining: go on without a journal */
    g_warning ("error: no journal of live engagements (%s): calls are recorded, "
        "but a restart or crash will end them", jerr->message);
    g_error_free (jerr);
    journal_.reset ();
    if (!cluster_mode ())
      repair_left_over ({});
  } else {
    g_message ("journal of live engagements in %s (rejoin window %d s)",
        cfg_.state_dir.c_str (), cfg_.rejoin_window_s);
    /* cluster mode: the journal is the fleet's; its entries are taken over
     * through Redis leases (host-cluster.h), never all at start-up */
    if (!cluster_mode ())
      resume_journal ();
  }

  server_ = soup_server_new ("server-header", "zoomrtms-host ", nullptr);
  for (const char *p : {"/webhook", "/api/webhooks/zoom"})
    soup_server_add_handler (server_, p, webhook_cb, this, nullptr);
  soup_server_add_handler (server_, "/health", health_cb, this, nullptr);
  soup_server_add_handler (server_, "/engagements", engagements_cb, this, nullptr);
  soup_server_add_handler (server_, nullptr, default_cb, this, nullptr);
  /* host-status.h: /, /status…, /metrics under the API's access rule */
  status_ = std::make_unique<StatusService> (server_, cfg_.output_root,
      StatusService::Hooks {[this] (SoupServerMessage *m) { return api_allowed (m); },
        [this] (gsize max, gsize *total) {
          std::vector<JsonNode *> v;
          for (auto &kv : active_)
            if (v.size () < max)
              v.push_back (kv.second->to_json (true));
          *total = active_.size ();
          return v;
        }, !cfg_.api_token.empty ()});

  /* host-http.h: our own listening socket, accept loop, connection cap and
   * request timeout in front of libsoup */
  guint64 nofile = raise_nofile_limit ();
  HttpLimits limits;
  limits.backlog = cfg_.http_backlog;
  limits.max_connections = cfg_.max_connections > 0 ? cfg_.max_connections
      : default_max_connections (nofile, cfg_.max_engagements > 0 ?
          cfg_.max_engagements : 64);
  limits.request_timeout_s = cfg_.request_timeout_s;
  limits.max_body_bytes = cfg_.max_body_bytes;
  http_ = std::make_unique<HttpFrontend> (server_, limits);
  GError *lerr = nullptr;
  if (!http_->listen (cfg_.address, cfg_.port, &lerr)) {
    g_set_error (error, ZHOST_ERROR, lerr->code == G_IO_ERROR_INVALID_ARGUMENT ?
        ERROR_CONFIG : ERROR_IO, "%s", lerr->message);
    g_error_free (lerr);
    return false;
  }
  port_ = http_->port ();
  status_->set_frontend (http_.get ());
  g_message ("HTTP: backlog %d, max-connections %d (RLIMIT_NOFILE %" G_GUINT64_FORMAT
      "), request timeout %d s, bodies up to %zu bytes, /engagements %s",
      limits.backlog > 0 ? limits.backlog : SOMAXCONN, limits.max_connections,
      nofile, limits.request_timeout_s, cfg_.max_body_bytes,
      cfg_.api_token.empty () ? "for loopback clients only (no api-token)"
      : "with the API token");

  sigint_id_ = g_unix_signal_add (SIGINT, signal_cb, this);
  sigterm_id_ = g_unix_signal_add (SIGTERM, signal_cb, this);
  sighup_id_ = g_unix_signal_add (SIGHUP, sighup_cb, this);

  if (cluster_mode ())
    start_cluster ();
  g_message ("listening on http://%s:%d (webhooks at /webhook and "
      "/api/webhooks/zoom), recording into %s", cfg_.address.c_str (), port_,
      cfg_.output_root.c_str ());
  /* the output root's room and writability: logged now and on change */
  storage_check_cb (this);
  storage_timer_id_ = g_timeout_add_seconds (30, storage_check_cb, this);
  if (!cfg_.ready_file.empty ()) {
    std::string txt = "{\"port\":" + std::to_string (port_) + "}\n";
    if (!g_file_set_contents (cfg_.ready_file.c_str (), txt.data (),
            static_cast<gssize> (txt.size ()), error))
      return false;
  }
  return true;
}

int
Daemon::run ()
{
  g_main_loop_run (loop_);
  return 0;
}

gboolean
Daemon::signal_cb (gpointer data)
{
  static_cast<Daemon *> (data)->shutdown ();
  return G_SOURCE_CONTINUE;
}

gboolean
Daemon::sighup_cb (gpointer data)
{
  static_cast<Daemon *> (data)->reload ();
  return G_SOURCE_CONTINUE;
}

bool
Daemon::reload ()
{
  if (!reloader_) {
    g_message ("SIGHUP: nothing to reload");
    return false;
  }
  HostConfig next = cfg_;
  std::shared_ptr<const TemplateStore> templates;
  GError *err = nullptr;
  if (!reloader_ (&next, &templates, &err)) {
    reload_failures_++;
    g_warning ("SIGHUP: reload failed, keeping the configuration and pipeline "
        "files in use: %s", err ? err->message : "?");
    g_clear_error (&err);
    return false;
  }
  /* what the running process cannot change: listening socket, directories,
   * HTTP limits */
  std::vector<std::string> kept;
  auto keep = [&kept] (const char *what, auto &now, const auto &old) {
    if (now != old) {
      kept.push_back (what);
      now = old;
    }
  };
  keep ("address", next.address, cfg_.address);
  keep ("port", next.port, cfg_.port);
  keep ("output-root", next.output_root, cfg_.output_root);
  keep ("state-dir", next.state_dir, cfg_.state_dir);
  keep ("max-body-bytes", next.max_body_bytes, cfg_.max_body_bytes);
  keep ("backlog", next.http_backlog, cfg_.http_backlog);
  keep ("max-connections", next.max_connections, cfg_.max_connections);
  keep ("request-timeout-s", next.request_timeout_s, cfg_.request_timeout_s);
  keep ("[actions]/[upload]/[retention]", next.actions, cfg_.actions);
  keep ("redis-url", next.redis_url, cfg_.redis_url);
  keep ("node-id", next.node_id, cfg_.node_id);
  keep ("capacity", next.capacity, cfg_.capacity);
  keep ("lease-ms", next.lease_ms, cfg_.lease_ms);
  next.ready_file = cfg_.ready_file;
  cfg_ = std::move (next);
  templates_ = std::move (templates);
  reloads_++;
  std::string names;
  for (const auto &n : templates_->names ())
    names += (names.empty () ? "" : ", ") + n;
  g_message ("SIGHUP: configuration and pipeline files reloaded (%s); new "
      "engagements use them, the %zu live one(s) keep theirs", names.c_str (),
      active_.size ());
  if (!kept.empty ()) {
    std::string k;
    for (const auto &x : kept)
      k += (k.empty () ? "" : ", ") + x;
    g_warning ("SIGHUP: %s changed but need(s) a restart; kept", k.c_str ());
  }
  return true;
}

gboolean
Daemon::shutdown_timeout_cb (gpointer data)
{
  auto *self = static_cast<Daemon *> (data);
  self->shutdown_timeout_id_ = 0;
  g_warning ("shutdown: engagements still running after the stop timeout, "
      "forcing NULL");
  std::vector<Engagement *> left;
  for (auto &kv : self->active_)
    left.push_back (kv.second.get ());
  for (Engagement *e : left)
    e->force_stop ("forced stop at shutdown");
  self->maybe_quit ();
  if (!self->active_.empty () || self->cluster_)
    g_main_loop_quit (self->loop_);
  return G_SOURCE_REMOVE;
}

void
Daemon::shutdown ()
{
  if (shutting_down_) {
    g_message ("second interrupt while waiting for EOS: stopping pipelines now");
    if (shutdown_timeout_id_) {
      g_source_remove (shutdown_timeout_id_);
      shutdown_timeout_id_ = 0;
    }
    shutdown_timeout_cb (this);
    return;
  }
  shutting_down_ = true;
  if (cluster_) {
    g_message ("cluster: draining: detaching %zu engagement(s) for the other "
        "nodes to take over", active_.size ());
    /* exit once every engagement has another owner, or after 20 s (inside
     * the unit's TimeoutStopSec=30; what is left stays in the shared
     * journal for the fleet) */
    cluster_->drain (std::min (cfg_.rejoin_window_s * 1000, 20000), [this] {
          drained_ = true;
          maybe_quit ();
        });
  }
  if (status_)
    status_->close_streams ();
  g_message ("shutting down: no new engagements, detaching %zu pipeline(s) "
      "(Zoom keeps their streams for its grace window; a host started within "
      "%d s continues them)", active_.size (), cfg_.rejoin_window_s);
  std::vector<Engagement *> list;
  for (auto &kv : active_)
    list.push_back (kv.second.get ());
  for (Engagement *e : list)
    e->detach ();
  shutdown_timeout_id_ = g_timeout_add (static_cast<guint> (cfg_.stop_timeout_ms) + 500,
      shutdown_timeout_cb, this);
  if (cluster_)
    return;
  maybe_quit ();
}

void
Daemon::maybe_quit ()
{
  if (shutting_down_ && active_.empty () && (!cluster_ || drained_)) {
    if (shutdown_timeout_id_) {
      g_source_remove (shutdown_timeout_id_);
      shutdown_timeout_id_ = 0;
    }
    g_main_loop_quit (loop_);
  }
}

void
Daemon::webhook_cb (SoupServer *server, SoupServerMessage *msg, const char *path,
    GHashTable *query, gpointer data)
{
  auto *self = static_cast<Daemon *> (data);
  /* zoomrtms_webhooks_total{event,status} when the answer goes out (also
   * if it is given later): the event once verified (host-metrics.h) */
  g_signal_connect (msg, "wrote-headers", G_CALLBACK (+[] (SoupServerMessage *m, gpointer) {
        host_metrics ().webhook (static_cast<const char *> (g_object_get_data (
            G_OBJECT (m), "zoomrtms-event")), soup_server_message_get_status (m));
      }), nullptr);
  if (!g_str_equal (soup_server_message_get_method (msg), SOUP_METHOD_POST)) {
    json_response (msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
        json_error_body ("Use POST for webhooks"));
    return;
  }
  self->handle_webhook (msg);
}

struct WebhookJob {
  Daemon *daemon;
  rtms::Webhook wh;
  bool counted;
  std::string body;             /* cluster mode: the raw verified body */
};

static std::string
peer_of (SoupServerMessage *msg)
{
  GSocketAddress *a = soup_server_message_get_remote_address (msg);
  if (!a || !G_IS_INET_SOCKET_ADDRESS (a))
    return "?";
  g_autofree gchar *ip = g_inet_address_to_string (
      g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (a)));
  return ip;
}

void
Daemon::handle_webhook (SoupServerMessage *msg)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  /* the front end refused anything over the limit before buffering it */
  if (static_cast<guint64> (body->length) > cfg_.max_body_bytes) {
    json_response (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
        json_error_body ("Payload too large"));
    return;
  }
  g_autoptr (GBytes) bytes = soup_message_body_flatten (body);
  gsize len = 0;
  const char *data = static_cast<const char *> (g_bytes_get_data (bytes, &len));
  if (!data)
    data = "";
  SoupMessageHeaders *h = soup_server_message_get_request_headers (msg);
  const char *ts = soup_message_headers_get_one (h, "x-zm-request-timestamp");
  const char *sig = soup_message_headers_get_one (h, "x-zm-signature");
  rtms::WebhookVerifyOptions opts;
  opts.window_s = cfg_.webhook_window_s;
  opts.max_body_bytes = cfg_.max_body_bytes;
  rtms::Webhook wh;
  GError *err = nullptr;
  /* docs/protocol.md §2.4, §2.5: verified before anything else, over the raw
   * bytes; parsed once, and deeply only once authenticated */
  if (!rtms::verify_and_parse_webhook (cfg_.secret_token, ts, sig, data, len,
          g_get_real_time () / G_USEC_PER_SEC, opts, &wh, &err)) {
    if (g_error_matches (err, RTMS_ERROR, rtms::ERROR_TOO_LARGE)) {
      json_response (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
          json_error_body ("Payload too large"));
    } else if (g_error_matches (err, RTMS_ERROR, rtms::ERROR_PARSE) ||
        g_error_matches (err, RTMS_ERROR, rtms::ERROR_FIELD)) {
      g_object_set_data (G_OBJECT (msg), "zoomrtms-event", (gpointer) "");
      std::string m = std::string ("Malformed webhook: ") + err->message;
      g_warning ("signed webhook rejected (400): %s", log_safe (m, 300).c_str ());
      json_response (msg, SOUP_STATUS_BAD_REQUEST, json_error_body (m.c_str ()));
    } else {
      bool stale = g_error_matches (err, RTMS_ERROR, rtms::ERROR_STALE);
      /* nothing of the body is logged: it is not authenticated */
      g_warning ("webhook from %s rejected (401): %s", peer_of (msg).c_str (),
          log_safe (err->message, -1, 200).c_str ());
      json_response (msg, SOUP_STATUS_UNAUTHORIZED, json_error_body (stale ?
              "Stale webhook timestamp" : "Invalid webhook signature"));
    }
    g_error_free (err);
    return;
  }
  g_object_set_data_full (G_OBJECT (msg), "zoomrtms-event", g_strdup (wh.event.c_str ()),
      g_free);
  if (wh.kind == rtms::Webhook::Kind::URL_VALIDATION) {
    /* only with a valid signature, or it is a signing oracle (§2.4) */
    g_message ("endpoint.url_validation answered");
    json_response (msg, SOUP_STATUS_OK,
        rtms::url_validation_response (cfg_.secret_token, wh.plain_token));
    return;
  }
  bool counted = false;
  /* a start for a stream that is running, or whose start is still queued
   * below, is a duplicate or a failover: never counted against the limit */
  if (wh.kind == rtms::Webhook::Kind::STARTED && !cluster_ &&
      active_.find (wh.rtms_stream_id) == active_.end () &&
      pending_stream_ids_.count (wh.rtms_stream_id) == 0) {
    if (shutting_down_) {
      json_response (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
          json_error_body ("Shutting down, not accepting new engagements"));
      return;
    }
    /* design.md "Never refuse a call": unlimited by default; a limit an
     * operator set is never silent (docs/protocol.md §2.6: Zoom retries
     * after 5, 20, 60 min, an RTMS stream must be joined within ≈1 min) */
    if (cfg_.max_engagements > 0 &&
        static_cast<int> (active_.size ()) + pending_starts_ >= cfg_.max_engagements) {
      refused_++;
      g_warning ("error: webhook %s for stream %s REFUSED (503) by [limits] "
          "max-engagements=%d: this call will not be recorded (%" G_GUINT64_FORMAT
          " refused so far)", log_safe (wh.event).c_str (),
          log_safe (wh.rtms_stream_id).c_str (), cfg_.max_engagements, refused_);
      json_response (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
          json_error_body ("Too many engagements"));
      return;
    }
    pending_starts_++;
    pending_stream_ids_.insert (wh.rtms_stream_id);
    counted = true;
  }
  GST_INFO ("webhook %s accepted", log_safe (wh.event).c_str ());
  json_response (msg, SOUP_STATUS_OK, "{\"status\":\"ok\"}");
  auto *job = new WebhookJob {this, std::move (wh), counted,
      cluster_ ? std::string (data, len) : std::string ()};
  g_idle_add_full (G_PRIORITY_DEFAULT_IDLE, [] (gpointer d) -> gboolean {
        auto *j = static_cast<WebhookJob *> (d);
        if (j->counted) {
          j->daemon->pending_starts_--;
          j->daemon->pending_stream_ids_.erase (j->wh.rtms_stream_id);
        }
        if (j->daemon->cluster_)
          j->daemon->cluster_->submit (j->wh, j->body);
        else
          j->daemon->process (j->wh);
        return G_SOURCE_REMOVE;
      }, job, [] (gpointer d) { delete static_cast<WebhookJob *> (d); });
}

void
Daemon::process (const rtms::Webhook &wh)
{
  switch (wh.kind) {
    case rtms::Webhook::Kind::STARTED:
      on_started (wh);
      break;
    case rtms::Webhook::Kind::STOPPED:
      on_stopped (wh);
      break;
    case rtms::Webhook::Kind::INTERRUPTED:
      on_interrupted (wh);
      break;
    default:
      GST_INFO ("webhook %s ignored", log_safe (wh.event).c_str ());
      break;
  }
}

static std::string
urls_of (const rtms::Webhook &wh)
{
  return wh.signaling_url.empty () ? wh.server_urls_raw : wh.signaling_url;
}

std::string
Daemon::engagement_dir_name (const std::string &id_value)
{
  return EngagementDir::allocate_name (cfg_.output_root, id_value,
      [this] (const std::string &name) {
        for (auto &kv : active_)
          if (kv.second->params ().dir_name == name)
            return true;
        return false;
      });
}

void
Daemon::on_started (const rtms::Webhook &wh)
{
  std::string urls = urls_of (wh);
  auto it = active_.find (wh.rtms_stream_id);
  if (it != active_.end ()) {
    Engagement *e = it->second.get ();
    if (wh.event_ts == e->last_event_ts () || urls == e->server_urls ()) {
      g_message ("duplicate %s for stream %s ignored", log_safe (wh.event).c_str (),
          e->params ().dir_name.c_str ());
      return;
    }
    if (wh.event_ts < e->last_event_ts ()) {
      g_message ("older %s for stream %s ignored", log_safe (wh.event).c_str (),
          e->params ().dir_name.c_str ());
      return;
    }
    e->failover (urls, wh.event_ts, "newer rtms_started with other server_urls");
    return;
  }
  if (shutting_down_)
    return;
  /* a retried delivery (Zoom retries after 5, 20, 60 min, §2.6) of a start
   * no newer than what the finished engagement saw starts nothing; a newer
   * start for the same stream is a restart (§2.7 restart policy) */
  for (auto &f : finished_)
    if (f->params ().rtms_stream_id == wh.rtms_stream_id &&
        wh.event_ts <= f->last_event_ts ()) {
      g_message ("retried %s for finished stream %s ignored", log_safe (wh.event).c_str (),
          f->params ().dir_name.c_str ());
      return;
    }
  std::string pname = pipeline_for_event (cfg_, wh.event);
  const PipelineTemplate *tmpl = templates_->find (pname);
  if (!tmpl) {
    g_warning ("no pipeline template %s for %s", pname.c_str (), log_safe (wh.event).c_str ());
    return;
  }
  lost_.erase (wh.rtms_stream_id);
  EngagementParams p = base_params (*tmpl);
  p.event = wh.event;
  p.event_ts = wh.event_ts;
  p.product = wh.product;
  p.id_key = wh.id_key;
  p.id_value = wh.id_value;
  p.rtms_stream_id = wh.rtms_stream_id;
  p.server_urls = urls;
  p.signature = wh.signature;
  p.dir_name = engagement_dir_name (wh.id_value);
  g_autofree gchar *dir = g_build_filename (cfg_.output_root.c_str (),
      p.dir_name.c_str (), nullptr);
  p.dir = dir;
  auto e = std::make_unique<Engagement> (std::move (p),
      [this] (Engagement *x) { on_finished (x); });
  Engagement *raw = e.get ();
  active_[wh.rtms_stream_id] = std::move (e);
  GError *err = nullptr;
  if (!raw->start (&err)) {
    g_warning ("engagement %s could not start: %s", raw->params ().dir_name.c_str (),
        err ? err->message : "?");
    g_clear_error (&err);
    auto again = active_.find (wh.rtms_stream_id);
    if (again != active_.end () && again->second.get () == raw) {
      finished_.push_back (std::move (again->second));
      active_.erase (again);
    }
  }
}

void
Daemon::on_stopped (const rtms::Webhook &wh)
{
  int reason = wh.has_stop_reason ? wh.stop_reason : -1;
  auto it = active_.find (wh.rtms_stream_id);
  if (it != active_.end ()) {
    g_message ("%s for stream %s (stop_reason %d): EOS within %d ms",
        log_safe (wh.event).c_str (), it->second->params ().dir_name.c_str (), reason,
        cfg_.stop_grace_ms);
    it->second->stop_after_grace ("webhook", reason);
    return;
  }
  for (auto f = finished_.rbegin (); f != finished_.rend (); ++f)
    if ((*f)->params ().rtms_stream_id == wh.rtms_stream_id) {
      (*f)->note_stop_reason (reason, "webhook");
      /* issue 13: a revocation after the end erases what was recorded */
      if (reason == 8 && (*f)->state () != Engagement::State::DETACHED)
        after_call_ended ((*f)->params ().dir, reason);
      return;
    }
  auto lost = lost_.find (wh.rtms_stream_id);
  if (lost != lost_.end ()) {
    /* a stream a previous host left and nobody rejoined in time: Zoom ends
     * it with 19 AWAIT_RECONNECTION_TIMEOUT (docs/protocol.md §2.7) */
    g_autofree gchar *name = g_path_get_basename (lost->second.c_str ());
    EngagementDir dir (lost->second, name);
    g_autoptr (JsonParser) parser = json_parser_new ();
    if (JsonObject *obj = dir.read_engagement_json (parser)) {
      set_webhook_stop_reason (obj, reason);
      dir.write_engagement_json (json_parser_get_root (parser));
    }
    if (reason == 8)
      after_call_ended (lost->second, reason);
    g_message ("%s for stream %s (stop_reason %d), left by a previous host and "
        "not rejoined: recorded in its engagement.json", log_safe (wh.event).c_str (),
        name, reason);
    lost_.erase (lost);
    return;
  }
  if (reason == 8 && erase_ended_on_disk (wh))
    return;
  g_message ("%s for an unknown stream: nothing to do", log_safe (wh.event).c_str ());
}

bool
Daemon::erase_ended_on_disk (const rtms::Webhook &wh)
{
  /* the directories named after the id (allocate_name(): the id sanitized,
   * then "-2", "-3", …; a bounded look, some may have been erased) */
  std::string base = sanitize_engagement_id (wh.id_value);
  for (int n = 1; !wh.id_value.empty () && n <= kRevocationLookup; n++) {
    std::string name = n == 1 ? base : base + "-" + std::to_string (n);
    g_autofree gchar *path = g_build_filename (cfg_.output_root.c_str (), name.c_str (),
        nullptr);
    if (!g_file_test (path, G_FILE_TEST_IS_DIR) || g_file_test (path, G_FILE_TEST_IS_SYMLINK))
      continue;
    EngagementDir dir (path, name);
    g_autoptr (JsonParser) parser = json_parser_new ();
    JsonObject *obj = dir.read_engagement_json (parser);
    if (!obj || wh.rtms_stream_id != json_object_get_string_member_with_default (obj,
            "rtms_stream_id", "") || !ended_state (obj))
      continue;
    set_webhook_stop_reason (obj, 8);
    dir.write_engagement_json (json_parser_get_root (parser));
    g_message ("%s for stream %s (stop_reason 8), which ended before: erasing its "
        "recording", log_safe (wh.event).c_str (), name.c_str ());
    after_call_ended (path, 8);
    return true;
  }
  return false;
}

void
Daemon::on_interrupted (const rtms::Webhook &wh)
{
  auto it = active_.find (wh.rtms_stream_id);
  if (it == active_.end ()) {
    g_message ("%s for an unknown stream: nothing to do", log_safe (wh.event).c_str ());
    return;
  }
  Engagement *e = it->second.get ();
  /* docs/protocol.md §2.6: handled once per (stream, event_ts); duplicated
   * and late copies are ignored */
  auto &seen = interrupted_seen_[wh.rtms_stream_id];
  if (!seen.insert (wh.event_ts).second) {
    g_message ("duplicate %s (event_ts %" G_GINT64_FORMAT ") for %s ignored",
        log_safe (wh.event).c_str (), wh.event_ts, e->params ().dir_name.c_str ());
    return;
  }
  if (seen.size () > 256)
    seen.erase (seen.begin ());
  std::string urls = urls_of (wh);
  /* §4.9 row 2: a failover only when the URLs differ from those in use;
   * never tear down a connection for the same server */
  if (!urls.empty () && urls != e->server_urls ()) {
    e->failover (urls, wh.event_ts, "rtms_interrupted with other server_urls");
    return;
  }
  g_message ("%s for %s: same server_urls, the element reconnects by itself",
      log_safe (wh.event).c_str (), e->params ().dir_name.c_str ());
  e->note_interrupted_webhook (wh.event_ts, wh.event);
}

void
Daemon::after_call_ended (const std::string &dir, int stop_reason)
{
  if (after_)
    after_->engagement_ended (dir, stop_reason);
}

void
Daemon::on_finished (Engagement *e)
{
  interrupted_seen_.erase (e->params ().rtms_stream_id);
  /* issue 13: the files are final (a detached recording goes on elsewhere) */
  if (e->state () != Engagement::State::DETACHED)
    after_call_ended (e->params ().dir, e->stop_reason ());
  if (status_) {
    g_autoptr (JsonNode) n = e->to_json (false);
    status_->engagement_finished (json_node_get_object (n));
  }
  for (auto it = active_.begin (); it != active_.end (); ++it) {
    if (it->second.get () == e) {
      finished_.push_back (std::move (it->second));
      active_.erase (it);
      break;
    }
  }
  if (finished_.size () > kMaxFinished)
    finished_.erase (finished_.begin ());
  if (e->disk_full ()) {
    /* /health stays "degraded" while that storage is short of space */
    static const gsize kMaxLowSpaceDirs = 64;
    if (low_space_dirs_.size () >= kMaxLowSpaceDirs)
      low_space_dirs_.erase (low_space_dirs_.begin ());
    low_space_dirs_[e->params ().dir] = e->params ().dir_name;
  }
  if (cluster_)
    cluster_finished (e);
  maybe_quit ();
}

std::vector<std::string>
Daemon::storage_problems (bool names, bool *root_writable, guint64 *root_free)
{
  std::vector<std::string> out;
  StorageStatus root = check_storage (cfg_.output_root, cfg_.min_free_bytes);
  if (root_writable)
    *root_writable = root.writable;
  if (root_free)
    *root_free = root.free_bytes;
  if (!root.problem.empty ())
    out.push_back ("output root: " + root.problem);
  std::set<guint64> checked = {root.device};
  auto name_of = [names] (const std::string &n) {
    return names ? "engagement " + n : std::string ("an engagement");
  };
  for (auto &kv : active_) {
    const std::string &dir = kv.second->params ().dir;
    /* one check per file system (a stat(2) each, then the full check for
     * a new one); a directory not made yet is the root's */
    GStatBuf sb;
    if (g_stat (dir.c_str (), &sb) != 0 || checked.count (static_cast<guint64> (sb.st_dev)))
      continue;
    StorageStatus st = check_storage (dir, cfg_.min_free_bytes);
    if (!st.exists || !checked.insert (st.device).second)
      continue;
    if (!st.problem.empty ())
      out.push_back ("storage of " + name_of (kv.second->params ().dir_name) +
          ": " + st.problem);
  }
  for (auto it = low_space_dirs_.begin (); it != low_space_dirs_.end ();) {
    StorageStatus st = check_storage (it->first, cfg_.min_free_bytes);
    if (!st.exists || st.problem.empty ()) {
      /* room again (or gone): no longer a reason */
      it = low_space_dirs_.erase (it);
      continue;
    }
    if (checked.insert (st.device).second)
      out.push_back ("storage of " + name_of (it->second) + " (its disk filled up): " +
          st.problem);
    ++it;
  }
  return out;
}

gboolean
Daemon::storage_check_cb (gpointer data)
{
  /* a line in the log when the output root becomes short of space or
   * unwritable, and when it is fine again (the check /health makes) */
  auto *self = static_cast<Daemon *> (data);
  StorageStatus st = check_storage (self->cfg_.output_root, self->cfg_.min_free_bytes);
  if (st.problem != self->root_problem_) {
    if (!st.problem.empty ())
      g_warning ("output root %s: %s: /health is \"degraded\"",
          self->cfg_.output_root.c_str (), st.problem.c_str ());
    else
      g_message ("output root %s: writable, %s free again",
          self->cfg_.output_root.c_str (), format_bytes (st.free_bytes).c_str ());
    self->root_problem_ = st.problem;
  }
  return G_SOURCE_CONTINUE;
}

Engagement *
Daemon::find_any (const std::string &id)
{
  auto match = [&id] (Engagement *e) {
    const auto &p = e->params ();
    return p.rtms_stream_id == id || p.id_value == id || p.dir_name == id;
  };
  for (auto &kv : active_)
    if (match (kv.second.get ()))
      return kv.second.get ();
  for (auto f = finished_.rbegin (); f != finished_.rend (); ++f)
    if (match (f->get ()))
      return f->get ();
  return nullptr;
}

guint
Daemon::api_allowed (SoupServerMessage *msg) const
{
  SoupMessageHeaders *h = soup_server_message_get_request_headers (msg);
  if (!cfg_.api_token.empty ()) {
    const char *auth = soup_message_headers_get_one (h, "Authorization");
    if (!auth || g_ascii_strncasecmp (auth, "Bearer ", 7) != 0)
      return SOUP_STATUS_UNAUTHORIZED;
    const char *given = auth + 7;
    while (*given == ' ')
      given++;
    return rtms::constant_time_equal (cfg_.api_token, given)
        ? SOUP_STATUS_OK : SOUP_STATUS_UNAUTHORIZED;
  }
  /* no token: loopback peers only, and not a request a local reverse proxy
   * forwarded for someone else */
  GSocketAddress *a = soup_server_message_get_remote_address (msg);
  bool loopback = a && G_IS_INET_SOCKET_ADDRESS (a) && g_inet_address_get_is_loopback (
      g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (a)));
  for (const char *fwd : {"Forwarded", "X-Forwarded-For", "X-Real-IP"})
    if (soup_message_headers_get_one (h, fwd))
      loopback = false;
  return loopback ? SOUP_STATUS_OK : SOUP_STATUS_FORBIDDEN;
}

void
Daemon::health_cb (SoupServer *server, SoupServerMessage *msg, const char *path,
    GHashTable *query, gpointer data)
{
  auto *self = static_cast<Daemon *> (data);
  bool allowed = self->api_allowed (msg) == SOUP_STATUS_OK;
  bool writable = false;
  guint64 free_bytes = 0;
  /* engagement names only for callers the management API would answer */
  std::vector<std::string> reasons = self->storage_problems (allowed, &writable,
      &free_bytes);
  if (self->refused_ > 0)
    reasons.push_back (std::to_string (self->refused_) + " engagement start(s) "
        "refused by [limits] max-engagements");
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "status");
  json_builder_add_string_value (b, self->shutting_down_ ? "shutting_down" :
      !reasons.empty () ? "degraded" : "ok");
  json_builder_set_member_name (b, "reasons");
  json_builder_begin_array (b);
  for (const auto &r : reasons)
    json_builder_add_string_value (b, r.c_str ());
  json_builder_end_array (b);
  json_builder_set_member_name (b, "storage");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "writable");
  json_builder_add_boolean_value (b, writable);
  json_builder_set_member_name (b, "freeBytes");
  json_builder_add_int_value (b, static_cast<gint64> (free_bytes));
  json_builder_set_member_name (b, "minFreeBytes");
  json_builder_add_int_value (b, static_cast<gint64> (self->cfg_.min_free_bytes));
  json_builder_end_object (b);
  json_builder_set_member_name (b, "activeEngagements");
  json_builder_add_int_value (b, static_cast<gint64> (self->active_.size ()));
  json_builder_set_member_name (b, "refusedEngagements");
  json_builder_add_int_value (b, static_cast<gint64> (self->refused_));
  json_builder_set_member_name (b, "maxEngagements");
  json_builder_add_int_value (b, self->cfg_.max_engagements);
  json_builder_set_member_name (b, "reloads");
  json_builder_add_int_value (b, static_cast<gint64> (self->reloads_));
  json_builder_set_member_name (b, "reloadFailures");
  json_builder_add_int_value (b, static_cast<gint64> (self->reload_failures_));
  if (allowed) {
    json_builder_set_member_name (b, "engagements");
    json_builder_begin_array (b);
    for (auto &kv : self->active_)
      json_builder_add_string_value (b, kv.second->params ().id_value.c_str ());
    json_builder_end_array (b);
  }
  json_builder_set_member_name (b, "timestamp");
  json_builder_add_string_value (b, iso8601_utc (g_get_real_time ()).c_str ());
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_response (msg, SOUP_STATUS_OK, json_to_compact (root));
}

/* GET /engagements: what the worker thread reads (host-history.h) and
 * the live part, made on the main context. */
struct HistoryRequest {
  SoupServerMessage *msg = nullptr;
  gulong finished_id = 0;
  bool gone = false;              /* the client went away meanwhile */
  std::string root;
  gsize limit = 0;
  std::set<std::string> skip;
  std::vector<JsonNode *> live;   /* (transfer full) */
  JsonNode *cluster = nullptr;    /* cluster mode: members added to the answer */
  History hist;
  ~HistoryRequest ()
  {
    for (JsonNode *n : live)
      json_node_unref (n);
    if (cluster)
      json_node_unref (cluster);
    if (msg) {
      if (finished_id)
        g_signal_handler_disconnect (msg, finished_id);
      g_object_unref (msg);
    }
  }
};

/* Main context: the answer, once the worker has read the history. */
static void
history_done_cb (GObject *, GAsyncResult *res, gpointer)
{
  auto *req = static_cast<HistoryRequest *> (g_task_get_task_data (G_TASK (res)));
  if (req->gone)
    return;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "engagements");
  json_builder_begin_array (b);
  for (JsonNode *n : req->live)
    json_builder_add_value (b, json_node_copy (n));
  for (JsonNode *n : req->hist.engagements)
    json_builder_add_value (b, json_node_copy (n));
  json_builder_end_array (b);
  json_builder_set_member_name (b, "live");
  json_builder_add_int_value (b, static_cast<gint64> (req->live.size ()));
  json_builder_set_member_name (b, "history");
  json_builder_add_int_value (b, static_cast<gint64> (req->hist.engagements.size ()));
  json_builder_set_member_name (b, "more");
  json_builder_add_boolean_value (b, req->hist.more);
  if (req->cluster && JSON_NODE_HOLDS_OBJECT (req->cluster)) {
    JsonObjectIter it;
    const gchar *name;
    JsonNode *node;
    json_object_iter_init (&it, json_node_get_object (req->cluster));
    while (json_object_iter_next (&it, &name, &node)) {
      json_builder_set_member_name (b, name);
      json_builder_add_value (b, json_node_copy (node));
    }
  }
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_response (req->msg, SOUP_STATUS_OK, json_to_compact (root));
  soup_server_message_unpause (req->msg);
}

void
Daemon::engagements_cb (SoupServer *server, SoupServerMessage *msg,
    const char *path, GHashTable *query, gpointer data)
{
  auto *self = static_cast<Daemon *> (data);
  guint allowed = self->api_allowed (msg);
  if (allowed != SOUP_STATUS_OK) {
    SoupMessageHeaders *rh = soup_server_message_get_response_headers (msg);
    if (allowed == SOUP_STATUS_UNAUTHORIZED) {
      /* RFC 6750 §3 */
      const char *auth = soup_message_headers_get_one (
          soup_server_message_get_request_headers (msg), "Authorization");
      soup_message_headers_replace (rh, "WWW-Authenticate", auth ?
          "Bearer realm=\"zoomrtms-host\", error=\"invalid_token\"" :
          "Bearer realm=\"zoomrtms-host\"");
      json_response (msg, allowed, json_error_body ("A valid Bearer token is required"));
    } else {
      json_response (msg, allowed, json_error_body (
          "The management API answers loopback clients only (set [http] api-token)"));
    }
    GST_INFO ("/engagements refused (%u) to %s", allowed, peer_of (msg).c_str ());
    return;
  }
  const char *method = soup_server_message_get_method (msg);
  std::string rest = path + strlen ("/engagements");
  if (!rest.empty () && rest[0] == '/')
    rest = rest.substr (1);
  else if (!rest.empty ()) {
    json_response (msg, SOUP_STATUS_NOT_FOUND, json_error_body ("Not found"));
    return;
  }
  if (rest.empty ()) {
    if (!g_str_equal (method, SOUP_METHOD_GET)) {
      json_response (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, json_error_body ("Use GET"));
      return;
    }
    /* ?limit=N: how many finished engagements (from disk, newest first) */
    gsize limit = kHistoryDefaultLimit;
    const char *ls = query ? static_cast<const char *> (g_hash_table_lookup (query,
            "limit")) : nullptr;
    if (ls) {
      guint64 v = 0;
      if (!g_ascii_string_to_unsigned (ls, 10, 1, kHistoryMaxLimit, &v, nullptr)) {
        std::string m = "limit must be an integer 1-" + std::to_string (kHistoryMaxLimit);
        json_response (msg, SOUP_STATUS_BAD_REQUEST, json_error_body (m.c_str ()));
        return;
      }
      limit = static_cast<gsize> (v);
    }
    /* the live ones here (main context); the history on a worker thread:
     * the scan is a stat(2) per engagement directory (≈120 ms for 50,000,
     * docs/benchmarks.md), not for the loop that answers webhooks */
    auto *req = new HistoryRequest ();
    req->msg = SOUP_SERVER_MESSAGE (g_object_ref (msg));
    req->root = self->cfg_.output_root;
    req->limit = limit;
    for (auto &kv : self->active_) {
      req->skip.insert (kv.second->params ().dir_name);
      JsonNode *n = kv.second->to_json (true);
      if (self->after_)
        self->after_->decorate (json_node_get_object (n));
      req->live.push_back (n);
    }
    if (self->cluster_) {
      /* cluster mode: the fleet's members (host-cluster-daemon.cpp); the
       * other nodes' live engagements are there, not in the history of
       * the shared output root */
      g_autoptr (JsonBuilder) cb = json_builder_new ();
      json_builder_begin_object (cb);
      self->cluster_engagements_json (cb);
      json_builder_end_object (cb);
      req->cluster = json_builder_get_root (cb);
      for (const auto &row : self->cluster_->fleet ())
        if (row.lease && !row.dir_name.empty ())
          req->skip.insert (row.dir_name);
    }
    req->finished_id = g_signal_connect (msg, "finished", G_CALLBACK (+[] (
            SoupServerMessage *, gpointer d) {
          static_cast<HistoryRequest *> (d)->gone = true;
        }), req);
    soup_server_message_pause (msg);
    GTask *task = g_task_new (nullptr, nullptr, history_done_cb, nullptr);
    g_task_set_task_data (task, req, [] (gpointer d) {
          delete static_cast<HistoryRequest *> (d);
        });
    g_task_run_in_thread (task, [] (GTask *t, gpointer, gpointer d, GCancellable *) {
          auto *r = static_cast<HistoryRequest *> (d);
          read_history (r->root, r->limit, r->skip, &r->hist);
          g_task_return_boolean (t, TRUE);
        });
    g_object_unref (task);
    return;
  }
  g_autofree gchar *id = g_uri_unescape_string (rest.c_str (), nullptr);
  Engagement *e = id ? self->find_any (id) : nullptr;
  bool purge = query && g_strcmp0 (static_cast<const char *> (
      g_hash_table_lookup (query, "purge")), "true") == 0;
  if (purge && g_str_equal (method, SOUP_METHOD_DELETE)) {
    /* an erasure is never downgraded to a forwarded stop: a live engagement
     * another node owns is purged on that node */
    if (self->cluster_ && id && !(e && e->active ()))
      for (const auto &r : self->cluster_->fleet ())
        if ((r.rtms_stream_id == id || r.id == id || r.dir_name == id) &&
            r.lease && r.owner != self->node_id_) {
          std::string m = "Live on node " + r.owner + ": send the purge to that host";
          json_response (msg, SOUP_STATUS_CONFLICT, json_error_body (m.c_str ()));
          return;
        }
    self->purge (msg, e, id ? id : "");
    return;
  }
  if (id && self->cluster_ && self->cluster_remote (msg, id, e))
    return;
  if (!e && id && g_str_equal (method, SOUP_METHOD_GET)) {
    /* one a previous host recorded (or forgotten: kMaxFinished) */
    if (JsonNode *disk = read_engagement_from_disk (self->cfg_.output_root, id)) {
      json_response (msg, SOUP_STATUS_OK, json_to_compact (disk));
      json_node_unref (disk);
      return;
    }
  }
  if (!e) {
    json_response (msg, SOUP_STATUS_NOT_FOUND, json_error_body ("No such engagement"));
    return;
  }
  if (g_str_equal (method, SOUP_METHOD_GET)) {
    g_autoptr (JsonNode) root = e->to_json (true);
    if (self->after_)
      self->after_->decorate (json_node_get_object (root));
    json_response (msg, SOUP_STATUS_OK, json_to_compact (root));
  } else if (g_str_equal (method, SOUP_METHOD_DELETE)) {
    bool was_active = e->active ();
    if (was_active)
      e->stop ("api", -1);
    g_autoptr (JsonNode) root = e->to_json (false);
    json_response (msg, was_active ? SOUP_STATUS_ACCEPTED : SOUP_STATUS_OK,
        json_to_compact (root));
  } else {
    json_response (msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
        json_error_body ("Use GET or DELETE"));
  }
}

void
Daemon::purge (SoupServerMessage *msg, Engagement *e, const std::string &id)
{
  if (!after_) {
    json_response (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
        json_error_body ("After-call actions are unavailable (no state directory)"));
    return;
  }
  std::string dir;
  if (e) {
    dir = e->params ().dir;
  } else {
    /* an engagement a previous host process recorded: by directory name */
    if (id.empty () || id != sanitize_engagement_id (id) || id[0] == '.') {
      json_response (msg, SOUP_STATUS_NOT_FOUND, json_error_body ("No such engagement"));
      return;
    }
    g_autofree gchar *p = g_build_filename (cfg_.output_root.c_str (), id.c_str (),
        "engagement.json", nullptr);
    if (!g_file_test (p, G_FILE_TEST_IS_REGULAR)) {
      json_response (msg, SOUP_STATUS_NOT_FOUND, json_error_body ("No such engagement"));
      return;
    }
    dir = cfg_.output_root + "/" + id;
  }
  g_message ("DELETE ?purge=true from %s: erasing engagement %s%s",
      peer_of (msg).c_str (), log_safe (id).c_str (),
      e && e->active () ? " once stopped" : "");
  if (e && e->active ()) {
    after_->request_purge (dir);
    e->stop ("api", -1);
  } else {
    after_->erase (dir, "operator");
  }
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "purge");
  json_builder_add_string_value (b, "queued");
  json_builder_set_member_name (b, "directory");
  json_builder_add_string_value (b, dir.c_str ());
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_response (msg, SOUP_STATUS_ACCEPTED, json_to_compact (root));
}

void
Daemon::default_cb (SoupServer *server, SoupServerMessage *msg, const char *path,
    GHashTable *query, gpointer data)
{
  auto *self = static_cast<Daemon *> (data);
  if (self->status_ && self->status_->handle_root (msg, path))
    return;
  json_response (msg, SOUP_STATUS_NOT_FOUND, json_error_body ("Not found"));
}

} // namespace zhost
