/* zoomrtms-host — the daemon. See host-daemon.h. */
#include "host-daemon.h"

#include "host-common.h"
#include "host-wav.h"

#include <glib-unix.h>
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
    if (!json_parser_load_from_file (parser, json, nullptr))
      continue;
    JsonNode *root = json_parser_get_root (parser);
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
  for (const char *p : {"/webhook", "/api/webhooks/zoom"}) {
    soup_server_add_early_handler (server_, p, early_cb, this, nullptr);
    soup_server_add_handler (server_, p, webhook_cb, this, nullptr);
  }
  soup_server_add_handler (server_, "/health", health_cb, this, nullptr);
  soup_server_add_handler (server_, "/engagements", engagements_cb, this, nullptr);
  soup_server_add_handler (server_, nullptr, default_cb, this, nullptr);

  g_autoptr (GInetAddress) ia = g_inet_address_new_from_string (cfg_.address.c_str ());
  if (!ia) {
    g_set_error (error, ZHOST_ERROR, ERROR_CONFIG,
        "listen address %s is not an IP address", cfg_.address.c_str ());
    return false;
  }
  g_autoptr (GSocketAddress) sa = g_inet_socket_address_new (ia,
      static_cast<guint16> (cfg_.port));
  if (!soup_server_listen (server_, sa, static_cast<SoupServerListenOptions> (0),
          error))
    return false;
  GSList *uris = soup_server_get_uris (server_);
  if (uris)
    port_ = g_uri_get_port (static_cast<GUri *> (uris->data));
  g_slist_free_full (uris, reinterpret_cast<GDestroyNotify> (g_uri_unref));

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
Daemon::early_cb (SoupServer *server, SoupServerMessage *msg, const char *path,
    GHashTable *query, gpointer data)
{
  auto *self = static_cast<Daemon *> (data);
  SoupMessageHeaders *h = soup_server_message_get_request_headers (msg);
  goffset cl = soup_message_headers_get_content_length (h);
  if (soup_message_headers_get_encoding (h) == SOUP_ENCODING_CONTENT_LENGTH &&
      cl > static_cast<goffset> (self->cfg_.max_body_bytes)) {
    json_response (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
        error_body ("Payload too large"));
    g_warning ("webhook rejected: body of %" G_GINT64_FORMAT " bytes over the "
        "limit of %zu", static_cast<gint64> (cl), self->cfg_.max_body_bytes);
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

void
Daemon::handle_webhook (SoupServerMessage *msg)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr (GBytes) bytes = soup_message_body_flatten (body);
  gsize len = 0;
  const char *data = static_cast<const char *> (g_bytes_get_data (bytes, &len));
  if (!data)
    data = "";
  if (len > cfg_.max_body_bytes) {
    json_response (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
        error_body ("Payload too large"));
    g_warning ("webhook rejected: body of %zu bytes over the limit", len);
    return;
  }
  SoupMessageHeaders *h = soup_server_message_get_request_headers (msg);
  const char *ts = soup_message_headers_get_one (h, "x-zm-request-timestamp");
  const char *sig = soup_message_headers_get_one (h, "x-zm-signature");
  rtms::WebhookVerifyOptions opts;
  opts.window_s = cfg_.webhook_window_s;
  opts.max_body_bytes = cfg_.max_body_bytes;
  GError *verr = nullptr;
  bool verified = rtms::verify_webhook (cfg_.secret_token, ts, sig, data, len,
      g_get_real_time () / G_USEC_PER_SEC, opts, &verr);
  if (!verified && verr && g_error_matches (verr, RTMS_ERROR, rtms::ERROR_TOO_LARGE)) {
    json_response (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
        error_body ("Payload too large"));
    g_error_free (verr);
    return;
  }
  bool stale = !verified && verr && g_error_matches (verr, RTMS_ERROR, rtms::ERROR_STALE);
  std::string why = verr ? verr->message : "invalid signature";
  g_clear_error (&verr);

  rtms::Webhook wh;
  GError *perr = nullptr;
  bool parsed = rtms::parse_webhook (data, len, &wh, &perr);
  if (!parsed && !verified) {
    g_warning ("webhook rejected (401): %s", why.c_str ());
    json_response (msg, SOUP_STATUS_UNAUTHORIZED,
        error_body (stale ? "Stale webhook timestamp" : "Invalid webhook signature"));
    g_clear_error (&perr);
    return;
  }
  if (!parsed) {
    std::string m = std::string ("Malformed webhook: ") +
        (perr ? perr->message : "parse error");
    g_warning ("webhook rejected (400): %s", m.c_str ());
    json_response (msg, SOUP_STATUS_BAD_REQUEST, error_body (m.c_str ()));
    g_clear_error (&perr);
    return;
  }
  if (wh.kind == rtms::Webhook::Kind::URL_VALIDATION) {
    /* rtms-protocol.md §2.4: answer even if the signature check fails */
    if (!verified)
      g_warning ("endpoint.url_validation with a failed signature check (%s); "
          "answering anyway", why.c_str ());
    else
      g_message ("endpoint.url_validation answered");
    json_response (msg, SOUP_STATUS_OK,
        rtms::url_validation_response (cfg_.secret_token, wh.plain_token));
    return;
  }
  if (!verified) {
    g_warning ("webhook %s rejected (401): %s", wh.event.c_str (), why.c_str ());
    json_response (msg, SOUP_STATUS_UNAUTHORIZED,
        error_body (stale ? "Stale webhook timestamp" : "Invalid webhook signature"));
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
          wh.event.c_str (), cfg_.max_engagements);
      json_response (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
          error_body ("Too many engagements"));
      return;
    }
    pending_starts_++;
    pending_stream_ids_.insert (wh.rtms_stream_id);
    counted = true;
  }
  GST_INFO ("webhook %s accepted", wh.event.c_str ());
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
      GST_INFO ("webhook %s ignored", wh.event.c_str ());
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
      g_message ("duplicate %s for stream %s ignored", wh.event.c_str (),
          e->params ().dir_name.c_str ());
      return;
    }
    if (wh.event_ts < e->last_event_ts ()) {
      g_message ("older %s for stream %s ignored", wh.event.c_str (),
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
      g_message ("retried %s for finished stream %s ignored", wh.event.c_str (),
          f->params ().dir_name.c_str ());
      return;
    }
  std::string pname = pipeline_for_event (cfg_, wh.event);
  const PipelineTemplate *tmpl = templates_->find (pname);
  if (!tmpl) {
    g_warning ("no pipeline template %s for %s", pname.c_str (), wh.event.c_str ());
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
        wh.event.c_str (), it->second->params ().dir_name.c_str (), reason,
        cfg_.stop_grace_ms);
    it->second->stop_after_grace ("webhook", reason);
    return;
  }
  for (auto f = finished_.rbegin (); f != finished_.rend (); ++f)
    if ((*f)->params ().rtms_stream_id == wh.rtms_stream_id) {
      (*f)->note_stop_reason (reason, "webhook");
      return;
    }
  g_message ("%s for an unknown stream: nothing to do", wh.event.c_str ());
}

void
Daemon::on_interrupted (const rtms::Webhook &wh)
{
  auto it = active_.find (wh.rtms_stream_id);
  if (it == active_.end ()) {
    g_message ("%s for an unknown stream: nothing to do", wh.event.c_str ());
    return;
  }
  std::string urls = urls_of (wh);
  if (!urls.empty ())
    it->second->failover (urls, wh.event_ts, "rtms_interrupted with server_urls");
  else
    g_message ("%s for %s: the element reconnects by itself", wh.event.c_str (),
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
  json_builder_set_member_name (b, "engagements");
  json_builder_begin_array (b);
  for (auto &kv : self->active_)
    json_builder_add_string_value (b, kv.second->params ().id_value.c_str ());
  json_builder_end_array (b);
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
