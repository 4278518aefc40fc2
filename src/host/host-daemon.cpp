/* zoomrtms-host — the daemon. See host-daemon.h. */
#include "host-daemon.h"

#include "host-common.h"
#include "host-wav.h"

#include <glib-unix.h>
#include <sys/socket.h>
#include <glib/gstdio.h>

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

static std::string
error_body (const char *text)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "error");
  json_builder_add_string_value (b, text);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  return json_to_compact (root);
}

Daemon::Daemon (HostConfig cfg, const TemplateStore *templates)
    : cfg_ (std::move (cfg)), templates_ (templates)
{
  loop_ = g_main_loop_new (nullptr, FALSE);
}

Daemon::~Daemon ()
{
  if (sigint_id_)
    g_source_remove (sigint_id_);
  if (sigterm_id_)
    g_source_remove (sigterm_id_);
  if (shutdown_timeout_id_)
    g_source_remove (shutdown_timeout_id_);
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
Daemon::repair_left_over ()
{
  g_autoptr (GDir) d = g_dir_open (cfg_.output_root.c_str (), 0, nullptr);
  while (const gchar *name = d ? g_dir_read_name (d) : nullptr) {
    g_autofree gchar *dir = g_build_filename (cfg_.output_root.c_str (), name, nullptr);
    g_autofree gchar *json = g_build_filename (dir, "engagement.json", nullptr);
    if (!g_file_test (json, G_FILE_TEST_IS_REGULAR))
      continue;
    g_autoptr (JsonParser) parser = json_parser_new ();
    GError *jerr = nullptr;
    JsonNode *root = rtms::json_load_file (parser, json, file_json_limits (), &jerr);
    if (!root) {
      g_warning ("left-over %s/engagement.json not read: %s",
          log_safe (name).c_str (), jerr->message);
      g_error_free (jerr);
      continue;
    }
    if (!root || !JSON_NODE_HOLDS_OBJECT (root))
      continue;
    JsonObject *obj = json_node_get_object (root);
    const gchar *state = json_object_get_string_member_with_default (obj, "state", "");
    if (!g_str_equal (state, "running") && !g_str_equal (state, "starting") &&
        !g_str_equal (state, "stopping"))
      continue;
    bool repaired = false;
    g_autoptr (GDir) ed = g_dir_open (dir, 0, nullptr);
    while (const gchar *f = ed ? g_dir_read_name (ed) : nullptr) {
      if (!g_str_has_suffix (f, ".wav"))
        continue;
      g_autofree gchar *path = g_build_filename (dir, f, nullptr);
      gboolean changed = FALSE;
      GError *err = nullptr;
      if (!wav_repair (path, &changed, &err)) {
        g_warning ("recovering %s: %s", name, err->message);
        g_error_free (err);
      } else if (changed) {
        repaired = true;
      }
    }
    int lines = Engagement::recover_transcript (dir, obj);
    if (lines >= 0)
      json_object_set_int_member (obj, "transcript_lines", lines);
    json_object_set_string_member (obj, "state", "recovered");
    json_object_set_string_member (obj, "recovered_time",
        iso8601_utc (g_get_real_time ()).c_str ());
    json_object_set_boolean_member (obj, "wav_repaired", repaired);
    std::string txt = json_to_compact (root, true) + "\n";
    g_file_set_contents (json, txt.data (), static_cast<gssize> (txt.size ()), nullptr);
    g_message ("recovered engagement %s left running by a previous host%s", name,
        repaired ? " (WAV headers repaired)" : "");
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
  repair_left_over ();

  server_ = soup_server_new ("server-header", "zoomrtms-host ", nullptr);
  for (const char *p : {"/webhook", "/api/webhooks/zoom"})
    soup_server_add_handler (server_, p, webhook_cb, this, nullptr);
  soup_server_add_handler (server_, "/health", health_cb, this, nullptr);
  soup_server_add_handler (server_, "/engagements", engagements_cb, this, nullptr);
  soup_server_add_handler (server_, nullptr, default_cb, this, nullptr);

  /* host-http.h: our own listening socket, accept loop, connection cap and
   * request timeout in front of libsoup */
  guint64 nofile = raise_nofile_limit ();
  HttpLimits limits;
  limits.backlog = cfg_.http_backlog;
  limits.max_connections = cfg_.max_connections > 0 ? cfg_.max_connections
      : default_max_connections (nofile, cfg_.max_engagements);
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
  g_message ("HTTP: backlog %d, max-connections %d (RLIMIT_NOFILE %" G_GUINT64_FORMAT
      "), request timeout %d s, bodies up to %zu bytes, /engagements %s",
      limits.backlog > 0 ? limits.backlog : SOMAXCONN, limits.max_connections,
      nofile, limits.request_timeout_s, cfg_.max_body_bytes,
      cfg_.api_token.empty () ? "for loopback clients only (no api-token)"
      : "with the API token");

  sigint_id_ = g_unix_signal_add (SIGINT, signal_cb, this);
  sigterm_id_ = g_unix_signal_add (SIGTERM, signal_cb, this);

  g_message ("listening on http://%s:%d (webhooks at /webhook and "
      "/api/webhooks/zoom), recording into %s", cfg_.address.c_str (), port_,
      cfg_.output_root.c_str ());
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
  if (!self->active_.empty ())
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
  g_message ("shutting down: no new engagements, sending EOS to %zu pipeline(s)",
      active_.size ());
  std::vector<Engagement *> list;
  for (auto &kv : active_)
    list.push_back (kv.second.get ());
  for (Engagement *e : list)
    e->stop ("shutdown", -1);
  shutdown_timeout_id_ = g_timeout_add (static_cast<guint> (cfg_.stop_timeout_ms) + 500,
      shutdown_timeout_cb, this);
  maybe_quit ();
}

void
Daemon::maybe_quit ()
{
  if (shutting_down_ && active_.empty ()) {
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
  if (!g_str_equal (soup_server_message_get_method (msg), SOUP_METHOD_POST)) {
    json_response (msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
        error_body ("Use POST for webhooks"));
    return;
  }
  self->handle_webhook (msg);
}

struct WebhookJob {
  Daemon *daemon;
  rtms::Webhook wh;
  bool counted;
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
        error_body ("Payload too large"));
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
  /* rtms-protocol.md §2.4, §2.5: verified before anything else, over the raw
   * bytes; parsed once, and deeply only once authenticated */
  if (!rtms::verify_and_parse_webhook (cfg_.secret_token, ts, sig, data, len,
          g_get_real_time () / G_USEC_PER_SEC, opts, &wh, &err)) {
    if (g_error_matches (err, RTMS_ERROR, rtms::ERROR_TOO_LARGE)) {
      json_response (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
          error_body ("Payload too large"));
    } else if (g_error_matches (err, RTMS_ERROR, rtms::ERROR_PARSE) ||
        g_error_matches (err, RTMS_ERROR, rtms::ERROR_FIELD)) {
      std::string m = std::string ("Malformed webhook: ") + err->message;
      g_warning ("signed webhook rejected (400): %s", log_safe (m, 300).c_str ());
      json_response (msg, SOUP_STATUS_BAD_REQUEST, error_body (m.c_str ()));
    } else {
      bool stale = g_error_matches (err, RTMS_ERROR, rtms::ERROR_STALE);
      /* nothing of the body is logged: it is not authenticated */
      g_warning ("webhook from %s rejected (401): %s", peer_of (msg).c_str (),
          log_safe (err->message, -1, 200).c_str ());
      json_response (msg, SOUP_STATUS_UNAUTHORIZED, error_body (stale ?
              "Stale webhook timestamp" : "Invalid webhook signature"));
    }
    g_error_free (err);
    return;
  }
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
  if (wh.kind == rtms::Webhook::Kind::STARTED &&
      active_.find (wh.rtms_stream_id) == active_.end () &&
      pending_stream_ids_.count (wh.rtms_stream_id) == 0) {
    if (shutting_down_) {
      json_response (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
          error_body ("Shutting down, not accepting new engagements"));
      return;
    }
    if (static_cast<int> (active_.size ()) + pending_starts_ >= cfg_.max_engagements) {
      g_warning ("webhook %s refused (503): %d engagements running (limit)",
          log_safe (wh.event).c_str (), cfg_.max_engagements);
      json_response (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
          error_body ("Too many engagements"));
      return;
    }
    pending_starts_++;
    pending_stream_ids_.insert (wh.rtms_stream_id);
    counted = true;
  }
  GST_INFO ("webhook %s accepted", log_safe (wh.event).c_str ());
  json_response (msg, SOUP_STATUS_OK, "{\"status\":\"ok\"}");
  auto *job = new WebhookJob {this, std::move (wh), counted};
  g_idle_add_full (G_PRIORITY_DEFAULT_IDLE, [] (gpointer d) -> gboolean {
        auto *j = static_cast<WebhookJob *> (d);
        if (j->counted) {
          j->daemon->pending_starts_--;
          j->daemon->pending_stream_ids_.erase (j->wh.rtms_stream_id);
        }
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
  std::string base = sanitize_engagement_id (id_value);
  for (int n = 1;; n++) {
    std::string name = n == 1 ? base : base + "-" + std::to_string (n);
    g_autofree gchar *dir = g_build_filename (cfg_.output_root.c_str (),
        name.c_str (), nullptr);
    bool used = g_file_test (dir, G_FILE_TEST_EXISTS);
    for (auto &kv : active_)
      used = used || kv.second->params ().dir_name == name;
    if (!used)
      return name;
  }
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
  EngagementParams p;
  p.event = wh.event;
  p.event_ts = wh.event_ts;
  p.product = wh.product;
  p.id_key = wh.id_key;
  p.id_value = wh.id_value;
  p.rtms_stream_id = wh.rtms_stream_id;
  p.server_urls = urls;
  p.signature = wh.signature;
  p.tmpl = tmpl;
  p.dir_name = engagement_dir_name (wh.id_value);
  g_autofree gchar *dir = g_build_filename (cfg_.output_root.c_str (),
      p.dir_name.c_str (), nullptr);
  p.dir = dir;
  p.rtp_host = cfg_.rtp_host;
  p.rtp_port = cfg_.rtp_port;
  p.client_id = cfg_.client_id;
  p.client_secret = cfg_.client_secret;
  p.ca_file = cfg_.ca_file;
  p.stop_timeout_ms = cfg_.stop_timeout_ms;
  p.stop_grace_ms = cfg_.stop_grace_ms;
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
      return;
    }
  g_message ("%s for an unknown stream: nothing to do", log_safe (wh.event).c_str ());
}

void
Daemon::on_interrupted (const rtms::Webhook &wh)
{
  auto it = active_.find (wh.rtms_stream_id);
  if (it == active_.end ()) {
    g_message ("%s for an unknown stream: nothing to do", log_safe (wh.event).c_str ());
    return;
  }
  std::string urls = urls_of (wh);
  if (!urls.empty ())
    it->second->failover (urls, wh.event_ts, "rtms_interrupted with server_urls");
  else
    g_message ("%s for %s: the element reconnects by itself", log_safe (wh.event).c_str (),
        it->second->params ().dir_name.c_str ());
}

void
Daemon::on_finished (Engagement *e)
{
  for (auto it = active_.begin (); it != active_.end (); ++it) {
    if (it->second.get () == e) {
      finished_.push_back (std::move (it->second));
      active_.erase (it);
      break;
    }
  }
  if (finished_.size () > kMaxFinished)
    finished_.erase (finished_.begin ());
  maybe_quit ();
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
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "status");
  json_builder_add_string_value (b, self->shutting_down_ ? "shutting_down" : "ok");
  json_builder_set_member_name (b, "activeEngagements");
  json_builder_add_int_value (b, static_cast<gint64> (self->active_.size ()));
  /* open for load balancers, but the engagement ids only for callers the
   * management API would answer */
  if (self->api_allowed (msg) == SOUP_STATUS_OK) {
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
      json_response (msg, allowed, error_body ("A valid Bearer token is required"));
    } else {
      json_response (msg, allowed, error_body (
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
    json_response (msg, SOUP_STATUS_NOT_FOUND, error_body ("Not found"));
    return;
  }
  if (rest.empty ()) {
    if (!g_str_equal (method, SOUP_METHOD_GET)) {
      json_response (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, error_body ("Use GET"));
      return;
    }
    g_autoptr (JsonBuilder) b = json_builder_new ();
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "engagements");
    json_builder_begin_array (b);
    for (auto &kv : self->active_)
      json_builder_add_value (b, kv.second->to_json (true));
    for (auto &f : self->finished_)
      json_builder_add_value (b, f->to_json (false));
    json_builder_end_array (b);
    json_builder_end_object (b);
    g_autoptr (JsonNode) root = json_builder_get_root (b);
    json_response (msg, SOUP_STATUS_OK, json_to_compact (root));
    return;
  }
  g_autofree gchar *id = g_uri_unescape_string (rest.c_str (), nullptr);
  Engagement *e = id ? self->find_any (id) : nullptr;
  if (!e) {
    json_response (msg, SOUP_STATUS_NOT_FOUND, error_body ("No such engagement"));
    return;
  }
  if (g_str_equal (method, SOUP_METHOD_GET)) {
    g_autoptr (JsonNode) root = e->to_json (true);
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
        error_body ("Use GET or DELETE"));
  }
}

void
Daemon::default_cb (SoupServer *server, SoupServerMessage *msg, const char *path,
    GHashTable *query, gpointer data)
{
  json_response (msg, SOUP_STATUS_NOT_FOUND, error_body ("Not found"));
}

} // namespace zhost
