/* zoomrtms-sim — Zoom's side of RTMS for demos, tests and benchmarks.
 *
 *   zoomrtms-sim serve    [opts]   signaling + media server only
 *   zoomrtms-sim run      --webhook-url URL [opts]   server + signed webhooks
 *   zoomrtms-sim validate --webhook-url URL          endpoint.url_validation
 *   zoomrtms-sim webhook  --webhook-url URL --event EVENT [...]  one webhook
 *
 * The CLI contract is fixed in the project brief; the protocol behaviour is
 * docs/protocol.md §9. Credentials come from --client-id/--client-secret/
 * --secret-token, else ZOOM_APP_CLIENT_ID / ZOOM_APP_CLIENT_SECRET /
 * ZOOM_SECRET_TOKEN (a .env file in the cwd is read too), else the test
 * vectors of docs/protocol.md §9.3. Secrets are never printed.
 */
#define G_LOG_DOMAIN "zoomrtms-sim"

#include <glib-unix.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>

#include "config.h"
#include "rtms-auth.h"
#include "sim-call.h"
#include "sim-options.h"
#include "sim-server.h"
#include "sim-webhook.h"

using namespace sim;

namespace {

/* KEY=VALUE lines; existing environment variables win. */
void
read_dotenv ()
{
  g_autofree char *contents = nullptr;
  if (!g_file_get_contents (".env", &contents, nullptr, nullptr))
    return;
  g_auto (GStrv) lines = g_strsplit (contents, "\n", -1);
  for (char **l = lines; *l; l++) {
    char *line = g_strstrip (*l);
    if (!*line || *line == '#')
      continue;
    if (g_str_has_prefix (line, "export "))
      line += 7;
    char *eq = strchr (line, '=');
    if (!eq)
      continue;
    *eq = '\0';
    char *key = g_strstrip (line);
    char *val = g_strstrip (eq + 1);
    size_t n = strlen (val);
    if (n >= 2 && (val[0] == '"' || val[0] == '\'') && val[n - 1] == val[0]) {
      val[n - 1] = '\0';
      val++;
    }
    g_setenv (key, val, FALSE);
  }
}

std::string
env_or (const char *name, const char *fallback)
{
  const char *v = g_getenv (name);
  return (v && *v) ? v : fallback;
}

bool
parse_mute (const char *spec, MuteWindow *out)
{
  /* CH:START_MS-END_MS */
  const char *colon = strchr (spec, ':');
  if (!colon)
    return false;
  out->role.assign (spec, colon - spec);
  if (out->role != "customer" && out->role != "agent" && out->role != "mixed")
    return false;
  char *end = nullptr;
  out->start_ms = g_ascii_strtoll (colon + 1, &end, 10);
  if (!end || *end != '-')
    return false;
  const char *s2 = end + 1;
  out->end_ms = g_ascii_strtoll (s2, &end, 10);
  if (end == s2 || *end != '\0' || out->end_ms <= out->start_ms ||
      out->start_ms < 0)
    return false;
  return true;
}

/* --stall CH:AT_MS+DUR_MS; --join-late CH:MS is --mute CH:0-MS */
bool
parse_stall (const char *spec, StallWindow *out)
{
  const char *colon = strchr (spec, ':');
  if (!colon)
    return false;
  out->role.assign (spec, colon - spec);
  if (out->role == "caller")
    out->role = "customer";
  else if (out->role == "callee")
    out->role = "agent";
  if (out->role != "customer" && out->role != "agent" && out->role != "mixed")
    return false;
  char *end = nullptr;
  out->at_ms = g_ascii_strtoll (colon + 1, &end, 10);
  if (!end || *end != '+' || out->at_ms < 0)
    return false;
  const char *s2 = end + 1;
  out->dur_ms = g_ascii_strtoll (s2, &end, 10);
  return end != s2 && *end == '\0' && out->dur_ms > 0;
}

bool
parse_join_late (const char *spec, MuteWindow *out)
{
  StallWindow w;
  std::string s = std::string (spec) + "+1";
  if (!parse_stall (s.c_str (), &w) || w.at_ms <= 0)
    return false;
  out->role = w.role;
  out->start_ms = 0;
  out->end_ms = w.at_ms;
  return true;
}

/* --leave CH:MS is --mute CH:MS-(end of the call) */
bool
parse_leave (const char *spec, MuteWindow *out)
{
  StallWindow w;
  std::string s = std::string (spec) + "+1";
  if (!parse_stall (s.c_str (), &w) || w.role == "mixed")
    return false;
  out->role = w.role;
  out->start_ms = w.at_ms;
  out->end_ms = G_MAXINT64;
  return true;
}

/* --outage media|signaling:AT_MS+DUR_MS */
bool
parse_outage (const char *spec, Outage *out)
{
  const char *colon = strchr (spec, ':');
  if (!colon)
    return false;
  std::string kind (spec, colon - spec);
  if (kind == "signaling")
    out->signaling = true;
  else if (kind != "media")
    return false;
  char *end = nullptr;
  out->at_ms = g_ascii_strtoll (colon + 1, &end, 10);
  if (!end || end == colon + 1 || *end != '+' || out->at_ms < 0)
    return false;
  const char *s2 = end + 1;
  out->dur_ms = g_ascii_strtoll (s2, &end, 10);
  return end != s2 && *end == '\0' && out->dur_ms > 0 &&
      out->dur_ms <= 3600000;
}

/* the @q quantile (0..1) of the send lag histogram, in ms (-1 = empty) */
gint64
lag_quantile (const std::vector<guint64> &h, double q)
{
  guint64 total = 0;
  for (guint64 c : h)
    total += c;
  if (!total)
    return -1;
  guint64 want = (guint64) (q * (double) total);
  if (want >= total)
    want = total - 1;
  guint64 seen = 0;
  for (size_t i = 0; i < h.size (); i++) {
    seen += h[i];
    if (seen > want)
      return (gint64) i;
  }
  return (gint64) h.size () - 1;
}

void
print_summary (Server &server)
{
  bool meeting = false;
  for (auto &sp : server.streams ()) {
    Stream &s = *sp;
    meeting = s.id_key != "engagement_id";
    g_print ("summary: %s %s rtms_stream_id %s:", !meeting ? "engagement" :
        s.id_key == "webinar_uuid" ? "webinar" : s.id_key == "session_id" ?
        "session" : "meeting",
        s.id_value.c_str (), s.rtms_stream_id.c_str ());
    if (s.channels.empty ())
      g_print (" no frames sent");
    for (const auto &ch : s.channels)
      g_print (" %s %" G_GUINT64_FORMAT " frames (muted %" G_GUINT64_FORMAT
          ", duplicated %" G_GUINT64_FORMAT ", malformed %" G_GUINT64_FORMAT
          ");", ch.role.c_str (), ch.sent, ch.muted, ch.duplicated,
          ch.malformed);
    g_print (" transcripts %" G_GUINT64_FORMAT ";", s.transcripts_sent);
    if (s.stop_reason >= 0)
      g_print (" stop_reason %d %s;", s.stop_reason,
          rtms::stop_reason_name (s.stop_reason));
    if (s.failed)
      g_print (" FAILED: %s\n", s.failure.c_str ());
    else if (s.state != Stream::State::ENDED)
      g_print (" NOT ENDED\n");
    else
      g_print (" ok\n");
  }
}

/* --summary-json FILE: what print_summary prints, machine-readable:
 * {"engagements":N,"frames_sent":TOTAL,"streams":[{"id_key","id","rtms_stream_id",
 *   "ok","failure","stop_reason","started_ms","ended_ms" (epoch ms, 0 = never),
 *   "transcripts","channels":[{"role","channel_id","frames_sent","muted",
 *   "duplicated","malformed"}]}],
 *  "send_lag_ms":{"BUCKET":COUNT,...},  (sent − scheduled, 1 ms buckets, 1000 = ≥ 1 s)
 *  "send_lag_p50_ms","send_lag_p99_ms","send_lag_max_ms" (from the histogram,
 *  -1 = nothing sent), "outage_refusals" (upgrades answered 503, --outage)}
 * Returns: false (with a warning) if the file cannot be written. */
bool
write_summary_json (Server &server, const std::string &path)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "engagements");
  json_builder_add_int_value (b, (gint64) server.streams ().size ());
  guint64 total = 0;
  json_builder_set_member_name (b, "streams");
  json_builder_begin_array (b);
  for (auto &sp : server.streams ()) {
    Stream &s = *sp;
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "id_key");
    json_builder_add_string_value (b, s.id_key.c_str ());
    json_builder_set_member_name (b, "id");
    json_builder_add_string_value (b, s.id_value.c_str ());
    json_builder_set_member_name (b, "rtms_stream_id");
    json_builder_add_string_value (b, s.rtms_stream_id.c_str ());
    json_builder_set_member_name (b, "ok");
    json_builder_add_boolean_value (b, !s.failed &&
        s.state == Stream::State::ENDED);
    json_builder_set_member_name (b, "failure");
    json_builder_add_string_value (b, s.failure.c_str ());
    json_builder_set_member_name (b, "stop_reason");
    json_builder_add_int_value (b, s.stop_reason);
    json_builder_set_member_name (b, "started_ms");
    json_builder_add_int_value (b, s.started_real_ms);
    json_builder_set_member_name (b, "ended_ms");
    json_builder_add_int_value (b, s.ended_real_ms);
    json_builder_set_member_name (b, "transcripts");
    json_builder_add_int_value (b, (gint64) s.transcripts_sent);
    json_builder_set_member_name (b, "channels");
    json_builder_begin_array (b);
    for (const auto &ch : s.channels) {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "role");
      json_builder_add_string_value (b, ch.role.c_str ());
      json_builder_set_member_name (b, "channel_id");
      json_builder_add_string_value (b, ch.channel_id.c_str ());
      json_builder_set_member_name (b, "frames_sent");
      json_builder_add_int_value (b, (gint64) ch.sent);
      json_builder_set_member_name (b, "muted");
      json_builder_add_int_value (b, (gint64) ch.muted);
      json_builder_set_member_name (b, "duplicated");
      json_builder_add_int_value (b, (gint64) ch.duplicated);
      json_builder_set_member_name (b, "malformed");
      json_builder_add_int_value (b, (gint64) ch.malformed);
      json_builder_end_object (b);
      total += ch.sent;
    }
    json_builder_end_array (b);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "frames_sent");
  json_builder_add_int_value (b, (gint64) total);
  json_builder_set_member_name (b, "send_lag_ms");
  json_builder_begin_object (b);
  const auto &lag = server.send_lag_histogram ();
  for (size_t i = 0; i < lag.size (); i++) {
    if (!lag[i])
      continue;
    std::string key = std::to_string (i);
    json_builder_set_member_name (b, key.c_str ());
    json_builder_add_int_value (b, (gint64) lag[i]);
  }
  json_builder_end_object (b);
  json_builder_set_member_name (b, "send_lag_p50_ms");
  json_builder_add_int_value (b, lag_quantile (lag, 0.50));
  json_builder_set_member_name (b, "send_lag_p99_ms");
  json_builder_add_int_value (b, lag_quantile (lag, 0.99));
  json_builder_set_member_name (b, "send_lag_max_ms");
  json_builder_add_int_value (b, lag_quantile (lag, 1.0));
  json_builder_set_member_name (b, "outage_refusals");
  json_builder_add_int_value (b, (gint64) server.outage_refusals ());
  json_builder_end_object (b);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  g_autoptr (GError) err = nullptr;
  if (!json_generator_to_file (gen, path.c_str (), &err)) {
    g_warning ("cannot write --summary-json: %s", err->message);
    return false;
  }
  return true;
}

struct App {
  Options opts;
  std::unique_ptr<Call> call;
  std::unique_ptr<Server> server;
  std::unique_ptr<WebhookSender> webhooks;
  GMainLoop *loop = nullptr;
  int pending_webhooks = 0;
  int stopped_sent = 0;
  bool webhook_failed = false;
  bool interrupted = false;
};

void
quit_soon (App *app)
{
  /* let the close frames go out */
  g_timeout_add (200, [](gpointer p) -> gboolean {
        g_main_loop_quit (static_cast<App *> (p)->loop);
        return G_SOURCE_REMOVE;
      }, app);
}

void
maybe_done (App *app)
{
  if (app->opts.forever || !app->server->all_ended ())
    return;
  if (app->webhooks &&
      (app->pending_webhooks > 0 ||
          app->stopped_sent < (int) app->server->streams ().size ()))
    return;
  quit_soon (app);
}

gboolean
on_signal (gpointer data)
{
  auto *app = static_cast<App *> (data);
  app->interrupted = true;
  g_main_loop_quit (app->loop);
  return G_SOURCE_CONTINUE;
}

int
cmd_server (App *app)
{
  Options &o = app->opts;
  std::string call_file = o.call_file.empty () ? default_call_file () :
      o.call_file;
  g_autoptr (GError) err = nullptr;
  app->call = load_call (call_file, o.duration_s, &err);
  if (!app->call) {
    g_printerr ("zoomrtms-sim: %s\n", err->message);
    return 2;
  }
  app->server = std::make_unique<Server> (o, *app->call);
  bool run = o.command == "run";
  /* serve --webhook-url: the interrupted and stopped webhooks (not the
   * started ones: the caller posts those from the ready file) */
  bool hooks = run || !o.webhook_url.empty ();
  if (hooks)
    app->webhooks = std::make_unique<WebhookSender> (o);
  app->server->set_stream_ended_cb ([app, hooks](Stream &s) {
        if (hooks) {
          std::string body = rtms::encode_webhook (
              app->opts.event_prefix () + "stopped",
              g_get_real_time () / 1000, s.id_key, s.id_value,
              s.rtms_stream_id, std::string (), s.stop_reason);
          app->pending_webhooks++;
          app->stopped_sent++;
          app->webhooks->post (body, [app](guint status, const std::string &) {
                app->pending_webhooks--;
                if (status < 200 || status >= 300) {
                  g_warning ("stopped webhook answered HTTP %u", status);
                  app->webhook_failed = true;
                }
                maybe_done (app);
              });
        }
        maybe_done (app);
      });
  if (hooks)
    app->server->set_stream_interrupted_cb ([app](Stream &s) {
          /* docs/protocol.md §4.9 row 2; --interrupted-urls: server_urls =
           * the unchanged signaling URL (tf-worker, §11 #19) or none
           * (OpenAPI); --interrupted-copies N: the same body (same event_ts)
           * N times; --interrupted-delay-ms: posted that much later */
          std::string urls = app->opts.interrupted_urls ?
              app->server->signaling_url () : std::string ();
          auto body = std::make_shared<std::string> (rtms::encode_webhook (
              app->opts.event_prefix () + "interrupted",
              g_get_real_time () / 1000, s.id_key, s.id_value,
              s.rtms_stream_id, urls, -1));
          int copies = app->opts.interrupted_copies;
          app->pending_webhooks += copies;
          struct Ctx {
            App *app;
            std::shared_ptr<std::string> body;
            int left;
          };
          auto *ctx = new Ctx{ app, body, copies };
          /* the copies one after the other, each once the previous one
           * was answered (as Zoom's retries: never in parallel) */
          struct Post {
            static void next (Ctx *c)
            {
              c->app->webhooks->post (*c->body,
                  [c](guint status, const std::string &) {
                    if (status < 200 || status >= 300)
                      g_message ("interrupted webhook answered HTTP %u",
                          status);
                    c->app->pending_webhooks--;
                    if (--c->left > 0) {
                      next (c);
                      return;
                    }
                    App *a = c->app;
                    delete c;
                    maybe_done (a);
                  });
            }
          };
          g_timeout_add_full (G_PRIORITY_DEFAULT,
              (guint) app->opts.interrupted_delay_ms, [](gpointer p) -> gboolean {
                Post::next (static_cast<Ctx *> (p));
                return G_SOURCE_REMOVE;
              }, ctx, nullptr);
        });
  if (!app->server->start (&err)) {
    g_printerr ("zoomrtms-sim: %s\n", err->message);
    return 2;
  }
  if (!run) {
    for (auto &sp : app->server->streams ()) {
      g_print ("%s\n%s\n", sp->webhook_started.c_str (),
          app->server->gst_launch_line (*sp).c_str ());
    }
  } else {
    /* started webhooks, staggered; each client must connect in time */
    int i = 0;
    for (auto &sp : app->server->streams ()) {
      struct Ctx {
        App *app;
        Stream *s;
      };
      auto *ctx = new Ctx{ app, sp.get () };
      guint delay = (guint) (i++ * app->opts.stagger_ms);
      g_timeout_add_full (G_PRIORITY_DEFAULT, delay, [](gpointer p) -> gboolean {
            auto *c = static_cast<Ctx *> (p);
            App *a = c->app;
            Stream *s = c->s;
            s->connect_deadline_us = g_get_monotonic_time () +
                (gint64) a->opts.connect_timeout_s * G_USEC_PER_SEC;
            a->pending_webhooks++;
            a->webhooks->post (s->webhook_started,
                [a, s](guint status, const std::string &) {
                  a->pending_webhooks--;
                  if (status < 200 || status >= 300) {
                    g_warning ("started webhook for %s answered HTTP %u",
                        s->rtms_stream_id.c_str (), status);
                    a->webhook_failed = true;
                  }
                  maybe_done (a);
                });
            return G_SOURCE_REMOVE;
          }, ctx, [](gpointer p) { delete static_cast<Ctx *> (p); });
    }
  }
  fflush (stdout);

  app->loop = g_main_loop_new (nullptr, FALSE);
  g_unix_signal_add (SIGINT, on_signal, app);
  g_unix_signal_add (SIGTERM, on_signal, app);
  g_main_loop_run (app->loop);
  g_main_loop_unref (app->loop);

  print_summary (*app->server);
  if (!o.summary_json.empty ())
    write_summary_json (*app->server, o.summary_json);
  bool failed = app->webhook_failed || app->interrupted;
  for (auto &sp : app->server->streams ())
    if (sp->failed || sp->state != Stream::State::ENDED)
      failed = true;
  return failed ? 1 : 0;
}

int
cmd_validate (App *app)
{
  WebhookSender sender (app->opts);
  g_autofree char *uuid = g_uuid_string_random ();
  std::string plain;
  for (const char *p = uuid; *p && plain.size () < 22; p++)
    if (*p != '-')
      plain += *p;
  std::string body = url_validation_body (plain, g_get_real_time () / 1000);
  std::string resp;
  g_autoptr (GError) err = nullptr;
  guint status = sender.post_sync (body, &resp, &err);
  if (status == 0) {
    g_printerr ("zoomrtms-sim: %s\n", err ? err->message : "not sent");
    return 1;
  }
  if (status != 200) {
    g_printerr ("zoomrtms-sim: url_validation answered HTTP %u\n", status);
    return 1;
  }
  g_autoptr (JsonParser) parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, resp.c_str (), (gssize) resp.size (),
          nullptr) || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))) {
    g_printerr ("zoomrtms-sim: url_validation answer is not a JSON object\n");
    return 1;
  }
  JsonObject *o = json_node_get_object (json_parser_get_root (parser));
  const char *pt = json_object_get_string_member_with_default (o, "plainToken",
      "");
  const char *et = json_object_get_string_member_with_default (o,
      "encryptedToken", "");
  std::string expected = rtms::hmac_sha256_hex (app->opts.secret_token,
      plain.data (), plain.size ());
  if (plain != pt) {
    g_printerr ("zoomrtms-sim: url_validation: plainToken not echoed\n");
    return 1;
  }
  if (!rtms::constant_time_equal (expected, et)) {
    g_printerr ("zoomrtms-sim: url_validation: wrong encryptedToken\n");
    return 1;
  }
  g_print ("url_validation ok\n");
  return 0;
}

int
cmd_webhook (App *app)
{
  Options &o = app->opts;
  if (o.event.empty ()) {
    g_printerr ("zoomrtms-sim: webhook needs --event\n");
    return 2;
  }
  std::string event = o.event;
  gint64 ts = g_get_real_time () / 1000;
  std::string body;
  if (event == "endpoint.url_validation") {
    body = url_validation_body ("qgg8vlvZRS6UYooatFL8Aw", ts);
  } else {
    if (event.find ('.') == std::string::npos)
      event = o.event_prefix () + event;
    bool meeting = !g_str_has_prefix (event.c_str (), "contact_center.");
    const char *id_key = g_str_has_prefix (event.c_str (), "webinar.") ?
        "webinar_uuid" : g_str_has_prefix (event.c_str (), "session.") ?
        "session_id" : meeting ? "meeting_uuid" : "engagement_id";
    std::string id = o.engagement_id;
    if (id.empty ()) {
      g_autofree char *u = g_uuid_string_random ();
      id = u;
    }
    std::string sid = o.rtms_stream_id;
    if (sid.empty ()) {
      g_autofree char *u = g_uuid_string_random ();
      for (const char *p = u; *p; p++)
        if (*p != '-')
          sid += *p;
    }
    bool started = event.find ("rtms_started") != std::string::npos;
    bool stopped = event.find ("rtms_stopped") != std::string::npos;
    std::string urls = o.server_urls;
    if (started && urls.empty ())
      urls = "wss://127.0.0.1:9443/signaling";
    int reason = -1;
    if (stopped)
      reason = o.stop_reason >= 0 ? o.stop_reason : (meeting ?
          rtms::STOP_MEETING_ENDED : rtms::STOP_CUSTOMER_DISCONNECTED);
    body = rtms::encode_webhook (event, ts, id_key, id, sid,
        started ? urls : std::string (), reason);
  }
  WebhookSender sender (o);
  g_autoptr (GError) err = nullptr;
  guint status = sender.post_sync (body, nullptr, &err);
  if (status == 0) {
    g_printerr ("zoomrtms-sim: %s\n", err ? err->message : "not sent");
    return 1;
  }
  return status >= 200 && status < 300 ? 0 : 1;
}

} // namespace

int
main (int argc, char **argv)
{
  App app;
  Options &o = app.opts;
  g_autofree char *listen = nullptr, *ca_out = nullptr, *client_id = nullptr,
      *client_secret = nullptr, *secret_token = nullptr, *product = nullptr,
      *data_opt = nullptr, *codec = nullptr, *spelling = nullptr,
      *table = nullptr, *ready = nullptr, *dump = nullptr, *call = nullptr,
      *url = nullptr, *event = nullptr, *eid = nullptr, *sid = nullptr,
      *urls = nullptr, *dup_signal = nullptr, *summary_json = nullptr;
  g_auto (GStrv) mutes = nullptr;
  g_auto (GStrv) hostile = nullptr;
  g_auto (GStrv) stalls = nullptr;
  g_auto (GStrv) joins = nullptr;
  g_auto (GStrv) leaves = nullptr;
  g_auto (GStrv) outages = nullptr;
  g_autofree char *intr_urls = nullptr;
  int intr_copies = 1, intr_delay = 0;
  gboolean replay_gap = FALSE;
  int port = 0, engagements = 1, dup_every = 0, bad_every = 0,
      keepalive = 10000, stop_reason = -1, connect_timeout = 30,
      sig_grace = 60, media_grace = 30, stagger = 20, events_after = 0;
  double speed = 1.0, duration = 0;
  gboolean tls = FALSE, bad_sig = FALSE, stale = FALSE, duplicate = FALSE,
      forever = FALSE, version = FALSE;
  GOptionEntry entries[] = {
    { "listen", 0, 0, G_OPTION_ARG_STRING, &listen, "Listen address (127.0.0.1)", "ADDR" },
    { "port", 0, 0, G_OPTION_ARG_INT, &port, "Port (0 = ephemeral)", "N" },
    { "tls", 0, 0, G_OPTION_ARG_NONE, &tls, "wss:// with a generated self-signed certificate", nullptr },
    { "ca-out", 0, 0, G_OPTION_ARG_FILENAME, &ca_out, "Write the certificate PEM here", "FILE" },
    { "client-id", 0, 0, G_OPTION_ARG_STRING, &client_id, "Client id (env ZOOM_APP_CLIENT_ID)", "ID" },
    { "client-secret", 0, 0, G_OPTION_ARG_STRING, &client_secret, "Client secret (env ZOOM_APP_CLIENT_SECRET)", "S" },
    { "secret-token", 0, 0, G_OPTION_ARG_STRING, &secret_token, "Webhook secret token (env ZOOM_SECRET_TOKEN)", "S" },
    { "product", 0, 0, G_OPTION_ARG_STRING, &product, "zcc|meeting|webinar|session (zcc)", "P" },
    { "data-opt", 0, 0, G_OPTION_ARG_STRING, &data_opt, "mixed|multi: meeting default data_opt", "D" },
    { "codec", 0, 0, G_OPTION_ARG_STRING, &codec, "l16|opus: default codec when msg 3 has no audio params", "C" },
    { "engagements", 0, 0, G_OPTION_ARG_INT, &engagements, "Number of streams (1)", "N" },
    { "speed", 0, 0, G_OPTION_ARG_DOUBLE, &speed, "Playback speed (1.0; 0 = as fast as possible)", "X" },
    { "duration", 0, 0, G_OPTION_ARG_DOUBLE, &duration, "Loop the call up to S seconds", "S" },
    { "mute", 0, 0, G_OPTION_ARG_STRING_ARRAY, &mutes, "No packets on a channel in a window (repeatable)", "CH:START_MS-END_MS" },
    { "stall", 0, 0, G_OPTION_ARG_STRING_ARRAY, &stalls, "A channel's sender stalls: its packets in [AT, AT+DUR) ms are held, then sent in a burst (repeatable)", "CH:AT_MS+DUR_MS" },
    { "join-late", 0, 0, G_OPTION_ARG_STRING_ARRAY, &joins, "A channel's party joins MS ms after the call start: no packets before (repeatable)", "CH:MS" },
    { "leave", 0, 0, G_OPTION_ARG_STRING_ARRAY, &leaves, "A channel's party leaves MS ms after the call start: no packets from then on (repeatable)", "CH:MS" },
    { "duplicate-every", 0, 0, G_OPTION_ARG_INT, &dup_every, "Re-send every Nth packet", "N" },
    { "malformed-every", 0, 0, G_OPTION_ARG_INT, &bad_every, "Send a broken frame before every Nth packet", "N" },
    { "participant-spelling", 0, 0, G_OPTION_ARG_STRING, &spelling, "participant_info|paticipant_info", "S" },
    { "duplicate-signal", 0, 0, G_OPTION_ARG_STRING, &dup_signal, "reject|kick: a second signaling handshake is refused (DUPLICATE_SIGNAL_REQUEST) or replaces the first", "M" },
    { "status-table", 0, 0, G_OPTION_ARG_STRING, &table, "new|old status codes", "T" },
    { "keepalive-ms", 0, 0, G_OPTION_ARG_INT, &keepalive, "Idle keep-alive cadence (10000)", "N" },
    { "ready-file", 0, 0, G_OPTION_ARG_FILENAME, &ready, "Write the streams as JSON once listening", "FILE" },
    { "dump-dir", 0, 0, G_OPTION_ARG_FILENAME, &dump, "Write the PCM sent per stream and channel", "DIR" },
    { "call", 0, 0, G_OPTION_ARG_FILENAME, &call, "Call file (data/default-call.conf)", "FILE" },
    { "forever", 0, 0, G_OPTION_ARG_NONE, &forever, "serve: keep running, streams can be replayed", nullptr },
    { "webhook-url", 0, 0, G_OPTION_ARG_STRING, &url, "Webhook endpoint", "URL" },
    { "event", 0, 0, G_OPTION_ARG_STRING, &event, "webhook: event name (or started|stopped|interrupted)", "EVENT" },
    { "engagement-id", 0, 0, G_OPTION_ARG_STRING, &eid, "Engagement id (or meeting uuid)", "ID" },
    { "rtms-stream-id", 0, 0, G_OPTION_ARG_STRING, &sid, "rtms_stream_id", "S" },
    { "server-urls", 0, 0, G_OPTION_ARG_STRING, &urls, "webhook: server_urls", "U" },
    { "stop-reason", 0, 0, G_OPTION_ARG_INT, &stop_reason, "Stop reason (21 ZCC, 6 meeting)", "N" },
    { "bad-signature", 0, 0, G_OPTION_ARG_NONE, &bad_sig, "Sign webhooks with a wrong token", nullptr },
    { "stale", 0, 0, G_OPTION_ARG_NONE, &stale, "Webhook timestamp 10 minutes old", nullptr },
    { "duplicate", 0, 0, G_OPTION_ARG_NONE, &duplicate, "Send each webhook twice", nullptr },
    { "connect-timeout", 0, 0, G_OPTION_ARG_INT, &connect_timeout, "run: seconds for a client to connect (30)", "S" },
    { "signaling-grace", 0, 0, G_OPTION_ARG_INT, &sig_grace, "Seconds to wait for a signaling reconnect (60)", "S" },
    { "stagger-ms", 0, 0, G_OPTION_ARG_INT, &stagger, "run: ms between the engagements' started webhooks (20)", "MS" },
    { "summary-json", 0, 0, G_OPTION_ARG_FILENAME, &summary_json, "serve/run: write the summary (frames sent per channel, start/end times) as JSON", "FILE" },
    { "events-after-ms", 0, 0, G_OPTION_ARG_INT, &events_after, "ZCC: send the participant events 8/10 N ms (wall clock) after msg 7, the audio (backlog) first; the end waits for them (0)", "N" },
    { "media-grace", 0, 0, G_OPTION_ARG_INT, &media_grace, "Seconds to wait for a media reconnect (30)", "S" },
    { "hostile-frame", 0, 0, G_OPTION_ARG_STRING_ARRAY, &hostile, "Send a hostile frame once per stream, before the first packet at call time MS, on the audio media socket (or signaling); in addition to the call (repeatable; kinds below)", "[signaling:]KIND[:BYTES]@MS" },
    { "replay-gap", 0, 0, G_OPTION_ARG_NONE, &replay_gap, "After a rejoin, send the packets that fell due while no consumer was connected, in bursts (at most 60 s; not if msg 1 had buffer_data false); default: never sent, the audio goes on on the wall clock", nullptr },
    { "outage", 0, 0, G_OPTION_ARG_STRING_ARRAY, &outages, "At call time AT_MS drop the media sockets (media) or signaling and media (signaling) of every stream without a close frame, answer WebSocket upgrades of that kind with HTTP 503 for DUR_MS ms, then accept the rejoin (repeatable)", "media|signaling:AT_MS+DUR_MS" },
    { "interrupted-copies", 0, 0, G_OPTION_ARG_INT, &intr_copies, "Send each *_rtms_interrupted webhook N times, the same body and event_ts (1)", "N" },
    { "interrupted-delay-ms", 0, 0, G_OPTION_ARG_INT, &intr_delay, "Send the *_rtms_interrupted webhooks MS ms after the signaling loss (0)", "MS" },
    { "interrupted-urls", 0, 0, G_OPTION_ARG_STRING, &intr_urls, "same|none: server_urls in the *_rtms_interrupted webhook, the unchanged signaling URL or omitted (same)", "U" },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", nullptr },
    { nullptr }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new (
      "serve|run|validate|webhook - Zoom RTMS simulator");
  g_option_context_add_main_entries (ctx, entries, nullptr);
  std::string hostile_help = std::string ("--hostile-frame kinds:\n") +
      hostile_frame_kinds ();
  g_option_context_set_description (ctx, hostile_help.c_str ());
  g_autoptr (GError) err = nullptr;
  if (!g_option_context_parse (ctx, &argc, &argv, &err)) {
    g_printerr ("zoomrtms-sim: %s\n", err->message);
    return 2;
  }
  if (version) {
    g_print ("zoomrtms-sim %s\n", VERSION);
    return 0;
  }
  if (argc < 2) {
    g_printerr ("zoomrtms-sim: missing command (serve|run|validate|webhook)\n");
    return 2;
  }
  o.command = argv[1];
  if (o.command != "serve" && o.command != "run" && o.command != "validate" &&
      o.command != "webhook") {
    g_printerr ("zoomrtms-sim: unknown command '%s'\n", o.command.c_str ());
    return 2;
  }
  read_dotenv ();
  auto bad = [](const char *what) {
    g_printerr ("zoomrtms-sim: invalid %s\n", what);
    return 2;
  };
  if (listen)
    o.listen = listen;
  if (port < 0 || port > 65535)
    return bad ("--port");
  o.port = port;
  o.tls = tls;
  if (ca_out)
    o.ca_out = ca_out;
  if (!client_id && !g_getenv ("ZOOM_APP_CLIENT_ID"))
    g_message ("ZOOM_APP_CLIENT_ID/ZOOM_APP_CLIENT_SECRET/ZOOM_SECRET_TOKEN "
        "unset: using the test credentials of docs/protocol.md section 9.3");
  o.client_id = client_id ? client_id : env_or ("ZOOM_APP_CLIENT_ID",
      "test_client_id");
  o.client_secret = client_secret ? client_secret :
      env_or ("ZOOM_APP_CLIENT_SECRET", "test_client_secret");
  o.secret_token = secret_token ? secret_token : env_or ("ZOOM_SECRET_TOKEN",
      "test_secret_token");
  if (product) {
    if (!strcmp (product, "meeting") || !strcmp (product, "webinar") ||
        !strcmp (product, "session")) {
      o.meeting = true;
      o.meeting_product = product;
    } else if (strcmp (product, "zcc")) {
      return bad ("--product (zcc|meeting|webinar|session)");
    }
  }
  if (data_opt) {
    if (!strcmp (data_opt, "multi"))
      o.default_data_opt = rtms::DATA_OPT_AUDIO_MULTI_STREAMS;
    else if (strcmp (data_opt, "mixed"))
      return bad ("--data-opt (mixed|multi)");
  }
  if (codec) {
    if (!strcmp (codec, "opus"))
      o.default_codec = rtms::CODEC_OPUS;
    else if (strcmp (codec, "l16"))
      return bad ("--codec (l16|opus)");
  }
  if (engagements < 1 || engagements > 100000)
    return bad ("--engagements");
  o.engagements = engagements;
  if (speed < 0)
    return bad ("--speed");
  o.speed = speed;
  if (duration < 0)
    return bad ("--duration");
  o.duration_s = duration;
  for (char **m = mutes; m && *m; m++) {
    MuteWindow w;
    if (!parse_mute (*m, &w))
      return bad ("--mute (customer|agent:START_MS-END_MS)");
    o.mutes.push_back (w);
  }
  for (char **h = hostile; h && *h; h++) {
    HostileFrame f;
    if (!parse_hostile_frame (*h, &f)) {
      g_printerr ("zoomrtms-sim: invalid --hostile-frame '%s': "
          "[signaling:]KIND[:BYTES]@MS with KIND one of\n%s", *h,
          hostile_frame_kinds ());
      return 2;
    }
    o.hostile_frames.push_back (f);
  }
  std::stable_sort (o.hostile_frames.begin (), o.hostile_frames.end (),
      [](const HostileFrame &a, const HostileFrame &b) {
        return a.at_ms < b.at_ms;
      });
  for (char **m = stalls; m && *m; m++) {
    StallWindow w;
    if (!parse_stall (*m, &w))
      return bad ("--stall (customer|agent:AT_MS+DUR_MS)");
    o.stalls.push_back (w);
  }
  for (char **m = joins; m && *m; m++) {
    MuteWindow w;
    if (!parse_join_late (*m, &w))
      return bad ("--join-late (customer|agent:MS)");
    o.mutes.push_back (w);
  }
  for (char **m = leaves; m && *m; m++) {
    MuteWindow w;
    if (!parse_leave (*m, &w))
      return bad ("--leave (customer|agent:MS)");
    o.mutes.push_back (w);
  }
  if (dup_every < 0 || bad_every < 0)
    return bad ("--duplicate-every/--malformed-every");
  o.duplicate_every = dup_every;
  o.malformed_every = bad_every;
  if (spelling) {
    if (!strcmp (spelling, "paticipant_info"))
      o.misspelled_participant_info = true;
    else if (strcmp (spelling, "participant_info"))
      return bad ("--participant-spelling");
  }
  if (dup_signal) {
    if (!strcmp (dup_signal, "kick"))
      o.kick_old_signaling = true;
    else if (strcmp (dup_signal, "reject"))
      return bad ("--duplicate-signal (reject|kick)");
  }
  if (table) {
    if (!strcmp (table, "old"))
      o.status_table = rtms::StatusTable::OLD;
    else if (strcmp (table, "new"))
      return bad ("--status-table (new|old)");
  }
  if (keepalive < 10)
    return bad ("--keepalive-ms");
  o.keepalive_ms = keepalive;
  if (ready)
    o.ready_file = ready;
  if (dump)
    o.dump_dir = dump;
  if (call)
    o.call_file = call;
  o.forever = forever;
  if (url)
    o.webhook_url = url;
  if (event)
    o.event = event;
  if (eid)
    o.engagement_id = eid;
  if (sid)
    o.rtms_stream_id = sid;
  if (urls)
    o.server_urls = urls;
  o.stop_reason = stop_reason;
  o.bad_signature = bad_sig;
  o.stale = stale;
  o.duplicate = duplicate;
  o.connect_timeout_s = MAX (connect_timeout, 1);
  o.signaling_grace_s = MAX (sig_grace, 0);
  o.media_grace_s = MAX (media_grace, 0);
  if (stagger < 0 || stagger > 60000)
    return bad ("--stagger-ms");
  o.stagger_ms = stagger;
  if (summary_json)
    o.summary_json = summary_json;
  if (events_after < 0 || events_after > 600000)
    return bad ("--events-after-ms");
  o.events_after_ms = events_after;
  o.replay_gap = replay_gap;
  for (char **m = outages; m && *m; m++) {
    Outage w;
    if (!parse_outage (*m, &w))
      return bad ("--outage (media|signaling:AT_MS+DUR_MS)");
    o.outages.push_back (w);
  }
  std::stable_sort (o.outages.begin (), o.outages.end (),
      [](const Outage &a, const Outage &b) { return a.at_ms < b.at_ms; });
  if (intr_copies < 1 || intr_copies > 1000)
    return bad ("--interrupted-copies (1-1000)");
  o.interrupted_copies = intr_copies;
  if (intr_delay < 0 || intr_delay > 3600000)
    return bad ("--interrupted-delay-ms");
  o.interrupted_delay_ms = intr_delay;
  if (intr_urls) {
    if (!strcmp (intr_urls, "none"))
      o.interrupted_urls = false;
    else if (strcmp (intr_urls, "same"))
      return bad ("--interrupted-urls (same|none)");
  }

  if ((o.command == "run" || o.command == "validate" ||
          o.command == "webhook") && o.webhook_url.empty ()) {
    g_printerr ("zoomrtms-sim: %s needs --webhook-url\n", o.command.c_str ());
    return 2;
  }
  if (o.command == "validate")
    return cmd_validate (&app);
  if (o.command == "webhook")
    return cmd_webhook (&app);
  return cmd_server (&app);
}
