/* zoomrtms-sim — webhook emitter (see sim-webhook.h). */
#define G_LOG_DOMAIN "zoomrtms-sim"

#include "sim-webhook.h"

#include <json-glib/json-glib.h>

#include "rtms-auth.h"

namespace sim {

WebhookSender::WebhookSender (const Options &opts) : opts_ (opts)
{
  session_ = soup_session_new_with_options ("timeout", 10, "user-agent",
      "Zoom Marketplace/1.0a (zoomrtms-sim)", nullptr);
}

WebhookSender::~WebhookSender ()
{
  soup_session_abort (session_);
  g_object_unref (session_);
}

SoupMessage *
WebhookSender::build (const std::string &body)
{
  SoupMessage *msg = soup_message_new (SOUP_METHOD_POST,
      opts_.webhook_url.c_str ());
  if (!msg)
    return nullptr;
  gint64 now_s = g_get_real_time () / G_USEC_PER_SEC;
  if (opts_.stale)
    now_s -= 600; /* 10 minutes: outside the 300 s window (§2.5) */
  g_autofree char *ts = g_strdup_printf ("%" G_GINT64_FORMAT, now_s);
  std::string token = opts_.secret_token;
  if (opts_.bad_signature)
    token += "-wrong";
  std::string sig = rtms::webhook_signature (token, ts, body.data (),
      body.size ());
  SoupMessageHeaders *h = soup_message_get_request_headers (msg);
  soup_message_headers_replace (h, "x-zm-request-timestamp", ts);
  soup_message_headers_replace (h, "x-zm-signature", sig.c_str ());
  g_autofree char *tracking = g_uuid_string_random ();
  soup_message_headers_replace (h, "x-zm-trackingid", tracking);
  g_autoptr (GBytes) bytes = g_bytes_new (body.data (), body.size ());
  soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
  return msg;
}

namespace {

struct PostCtx {
  WebhookSender *sender;
  std::string body;
  WebhookDone done;
  int remaining;
  guint worst_status = 0;
  bool any = false;
  std::string response;
};

} // namespace

void
WebhookSender::post (const std::string &body, WebhookDone done)
{
  auto *ctx = new PostCtx{ this, body, std::move (done),
      opts_.duplicate ? 2 : 1 };
  struct Sender {
    static void send (PostCtx *ctx)
    {
      SoupMessage *msg = ctx->sender->build (ctx->body);
      if (!msg) {
        g_warning ("invalid webhook URL");
        finish (ctx, 0);
        return;
      }
      soup_session_send_and_read_async (ctx->sender->session_, msg,
          G_PRIORITY_DEFAULT, nullptr, on_done, ctx);
      g_object_unref (msg);
    }
    static void on_done (GObject *src, GAsyncResult *res, gpointer data)
    {
      auto *ctx = static_cast<PostCtx *> (data);
      SoupSession *session = SOUP_SESSION (src);
      SoupMessage *msg = soup_session_get_async_result_message (session, res);
      g_autoptr (GError) err = nullptr;
      g_autoptr (GBytes) bytes = soup_session_send_and_read_finish (session,
          res, &err);
      guint status = 0;
      if (err) {
        g_warning ("webhook POST failed: %s", err->message);
      } else {
        status = soup_message_get_status (msg);
        gsize len = 0;
        const char *d = (const char *) g_bytes_get_data (bytes, &len);
        ctx->response.assign (d ? d : "", len);
      }
      finish (ctx, status);
    }
    static void finish (PostCtx *ctx, guint status)
    {
      /* report a failing delivery over a succeeding one */
      bool ok = status >= 200 && status < 300;
      bool prev_ok = ctx->worst_status >= 200 && ctx->worst_status < 300;
      if (!ctx->any || (prev_ok && !ok))
        ctx->worst_status = status;
      ctx->any = true;
      if (--ctx->remaining > 0) {
        send (ctx);
        return;
      }
      ctx->done (ctx->worst_status, ctx->response);
      delete ctx;
    }
  };
  Sender::send (ctx);
}

guint
WebhookSender::post_sync (const std::string &body, std::string *response,
    GError **error)
{
  guint last = 0;
  guint worst = 0;
  int n = opts_.duplicate ? 2 : 1;
  for (int i = 0; i < n; i++) {
    g_autoptr (SoupMessage) msg = build (body);
    if (!msg) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
          "invalid webhook URL");
      return 0;
    }
    g_autoptr (GBytes) bytes = soup_session_send_and_read (session_, msg,
        nullptr, error);
    if (!bytes)
      return 0;
    last = soup_message_get_status (msg);
    g_print ("HTTP %u\n", last);
    if (i == 0 || (worst >= 200 && worst < 300))
      worst = last;
    if (response) {
      gsize len = 0;
      const char *d = (const char *) g_bytes_get_data (bytes, &len);
      response->assign (d ? d : "", len);
    }
  }
  return worst;
}

std::string
url_validation_body (const std::string &plain_token, gint64 event_ts_ms)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "event");
  json_builder_add_string_value (b, "endpoint.url_validation");
  json_builder_set_member_name (b, "event_ts");
  json_builder_add_int_value (b, event_ts_ms);
  json_builder_set_member_name (b, "payload");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "plainToken");
  json_builder_add_string_value (b, plain_token.c_str ());
  json_builder_end_object (b);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autofree char *s = json_to_string (root, FALSE);
  return s;
}

} // namespace sim
