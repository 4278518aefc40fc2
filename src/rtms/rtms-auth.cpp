/* zoomrtms — signatures and webhooks (docs/protocol.md §2, §3.2, §9.3).
 *
 * HMAC-SHA256 with OpenSSL's one-shot HMAC() (gstreamer-guide.md §6.5),
 * constant-time compares with CRYPTO_memcmp. Nothing here logs, and no error
 * message contains a secret or an expected signature.
 */
#include "rtms-auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstring>

#include "rtms-json-private.h"
#include "rtms-json.h"

namespace rtms {

std::string
hmac_sha256_hex (const std::string &key, const char *data, gsize len)
{
  static const char hex[] = "0123456789abcdef";
  static const unsigned char empty = 0;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  const unsigned char *k = key.empty ()
      ? &empty : reinterpret_cast<const unsigned char *> (key.data ());
  const unsigned char *d = (data && len)
      ? reinterpret_cast<const unsigned char *> (data) : &empty;
  if (!HMAC (EVP_sha256 (), k, static_cast<int> (key.size ()), d, len, mac,
          &mac_len))
    return std::string ();
  std::string out (mac_len * 2, '0');
  for (unsigned int i = 0; i < mac_len; i++) {
    out[2 * i] = hex[mac[i] >> 4];
    out[2 * i + 1] = hex[mac[i] & 0xf];
  }
  OPENSSL_cleanse (mac, sizeof mac);
  return out;
}

std::string
handshake_signature (const std::string &client_id,
    const std::string &client_secret, const std::string &id,
    const std::string &rtms_stream_id)
{
  std::string msg;
  msg.reserve (client_id.size () + id.size () + rtms_stream_id.size () + 2);
  msg += client_id;
  msg += ',';
  msg += id;
  msg += ',';
  msg += rtms_stream_id;
  return hmac_sha256_hex (client_secret, msg.data (), msg.size ());
}

bool
constant_time_equal (const std::string &a, const std::string &b)
{
  if (a.size () != b.size ())
    return false;
  if (a.empty ())
    return true;
  return CRYPTO_memcmp (a.data (), b.data (), a.size ()) == 0;
}

std::string
webhook_signature (const std::string &secret_token,
    const std::string &timestamp_header, const char *body, gsize len)
{
  std::string msg;
  msg.reserve (len + timestamp_header.size () + 4);
  msg += "v0:";
  msg += timestamp_header;
  msg += ':';
  if (body && len)
    msg.append (body, len);
  return "v0=" + hmac_sha256_hex (secret_token, msg.data (), msg.size ());
}

namespace {

/* docs/protocol.md §2.5: size, timestamp window, presence of the signature.
 * Fills @got with the lowercased signature header. */
bool
check_headers (const char *timestamp_header, const char *signature_header,
    gsize len, gint64 now_s, const WebhookVerifyOptions &opts,
    std::string *got, GError **error)
{
  if (len > opts.max_body_bytes) {
    g_set_error (error, RTMS_ERROR, ERROR_TOO_LARGE,
        "webhook body is %" G_GSIZE_FORMAT " bytes, over the limit of %"
        G_GSIZE_FORMAT, len, opts.max_body_bytes);
    return false;
  }
  if (!timestamp_header || !*timestamp_header) {
    g_set_error (error, RTMS_ERROR, ERROR_STALE,
        "missing x-zm-request-timestamp header");
    return false;
  }
  gint64 ts = 0;
  if (!g_ascii_string_to_signed (timestamp_header, 10, G_MININT64 / 2,
          G_MAXINT64 / 2, &ts, nullptr)) {
    g_set_error (error, RTMS_ERROR, ERROR_STALE,
        "x-zm-request-timestamp is not a number of seconds");
    return false;
  }
  gint64 skew = now_s - ts;
  if (skew > opts.window_s || -skew > opts.window_s) {
    g_set_error (error, RTMS_ERROR, ERROR_STALE,
        "x-zm-request-timestamp %" G_GINT64_FORMAT " is %" G_GINT64_FORMAT
        " s away from now, outside the %" G_GINT64_FORMAT " s window", ts,
        skew < 0 ? -skew : skew, opts.window_s);
    return false;
  }
  if (!signature_header || !*signature_header) {
    g_set_error (error, RTMS_ERROR, ERROR_SIGNATURE,
        "missing x-zm-signature header");
    return false;
  }
  /* hex may arrive in either case */
  *got = signature_header;
  for (char &c : *got)
    c = g_ascii_tolower (c);
  return true;
}

bool
signature_matches (const std::string &secret_token, const char *ts,
    const char *body, gsize len, const std::string &got)
{
  std::string expected = webhook_signature (secret_token, ts, body, len);
  bool ok = constant_time_equal (expected, got);
  OPENSSL_cleanse (&expected[0], expected.size ());
  return ok;
}

JsonLimits
limits_of (const WebhookVerifyOptions &opts)
{
  JsonLimits l;
  l.max_bytes = opts.max_body_bytes;
  l.max_depth = opts.max_depth;
  return l;
}

/* The §11 #18 fallback: json_load() within @opts' limits (json_validate()
 * first: iterative, no recursion), then the JSON.stringify form. On success
 * @parser holds the tree. */
bool
reserialised_matches (const std::string &secret_token, const char *ts,
    const char *body, gsize len, const WebhookVerifyOptions &opts,
    const std::string &got, JsonParser *parser)
{
  if (!body || !len)
    return false;
  JsonNode *root = json_load (parser, body, len, limits_of (opts), nullptr);
  if (!root)
    return false;
  std::string compact;
  detail::json_append_node (compact, root);
  if (compact.size () == len && memcmp (compact.data (), body, len) == 0)
    return false;               /* same bytes: already checked */
  return signature_matches (secret_token, ts, compact.data (), compact.size (),
      got);
}

bool
signature_error (GError **error)
{
  g_set_error (error, RTMS_ERROR, ERROR_SIGNATURE,
      "x-zm-signature does not match the body");
  return false;
}

} // namespace

bool
verify_webhook (const std::string &secret_token, const char *timestamp_header,
    const char *signature_header, const char *body, gsize len, gint64 now_s,
    const WebhookVerifyOptions &opts, GError **error)
{
  std::string got;
  if (!check_headers (timestamp_header, signature_header, len, now_s, opts,
          &got, error))
    return false;
  /* 1. the raw body bytes (ZCC-seed): no parsing */
  if (signature_matches (secret_token, timestamp_header, body, len, got))
    return true;
  /* 2. JSON.stringify(parsed body): compact, key order kept, literal UTF-8
   * (Zoom docs, tf-worker; §2.5, §11 #18), bounded by json_validate() */
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  if (reserialised_matches (secret_token, timestamp_header, body, len, opts,
          got, parser))
    return true;
  return signature_error (error);
}

bool
verify_and_parse_webhook (const std::string &secret_token,
    const char *timestamp_header, const char *signature_header,
    const char *body, gsize len, gint64 now_s,
    const WebhookVerifyOptions &opts, Webhook *out, GError **error)
{
  g_return_val_if_fail (out != nullptr, false);
  *out = Webhook ();
  std::string got;
  if (!check_headers (timestamp_header, signature_header, len, now_s, opts,
          &got, error))
    return false;
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  JsonNode *root = nullptr;
  if (signature_matches (secret_token, timestamp_header, body, len, got)) {
    /* authenticated: parse once, within the same limits */
    if (!body || !len) {
      g_set_error (error, RTMS_ERROR, ERROR_PARSE, "webhook: empty body");
      return false;
    }
    GError *err = nullptr;
    root = json_load (parser, body, len, limits_of (opts), &err);
    if (!root) {
      g_set_error (error, RTMS_ERROR, err->code, "webhook: %s", err->message);
      g_error_free (err);
      return false;
    }
  } else if (reserialised_matches (secret_token, timestamp_header, body, len,
          opts, got, parser)) {
    root = json_parser_get_root (parser);     /* parsed by the fallback */
  } else {
    return signature_error (error);
  }
  return parse_webhook_root (root, out, error);
}

std::string
url_validation_response (const std::string &secret_token,
    const std::string &plain_token)
{
  std::string s;
  detail::JsonWriter w (s);
  w.begin_object ();
  w.member ("plainToken", plain_token);
  w.member ("encryptedToken", hmac_sha256_hex (secret_token,
      plain_token.data (), plain_token.size ()));
  w.end_object ();
  return s;
}

namespace {

bool
has_suffix (const std::string &s, const char *suffix)
{
  gsize n = strlen (suffix);
  return s.size () >= n && s.compare (s.size () - n, n, suffix) == 0;
}

bool
has_prefix (const std::string &s, const char *prefix)
{
  return s.compare (0, strlen (prefix), prefix) == 0;
}

/* "meeting.rtms_started", "contact_center.voice_rtms_started",
 * "phone.call_rtms_started"… */
bool
is_rtms_event (const std::string &event, const char *what)
{
  std::string tail = std::string ("rtms_") + what;
  if (!has_suffix (event, tail.c_str ()) || event.size () == tail.size ())
    return false;
  char before = event[event.size () - tail.size () - 1];
  return before == '.' || before == '_';
}

bool
field_error (GError **error, const char *event, const char *field,
    const char *what)
{
  g_set_error (error, RTMS_ERROR, ERROR_FIELD,
      "webhook %s: field 'payload.%s' %s", event, field, what);
  return false;
}

/* Reads payload[@name] as an opaque id (string or integer). Returns false
 * with an error on a wrong type; *present tells whether it was there. */
bool
read_id (JsonObject *payload, const char *name, const char *event,
    std::string *out, bool *present, GError **error)
{
  *present = false;
  JsonNode *n = json_object_get_member (payload, name);
  if (!n || JSON_NODE_HOLDS_NULL (n))
    return true;
  if (JSON_NODE_HOLDS_VALUE (n)) {
    GType t = json_node_get_value_type (n);
    if (t == G_TYPE_STRING) {
      *out = json_node_get_string (n);
      *present = true;
      return true;
    }
    if (t == G_TYPE_INT64) {
      *out = std::to_string (json_node_get_int (n));
      *present = true;
      return true;
    }
  }
  return field_error (error, event, name, "must be a string or an integer");
}

bool
read_string (JsonObject *payload, const char *name, const char *event,
    std::string *out, bool *present, GError **error)
{
  *present = false;
  JsonNode *n = json_object_get_member (payload, name);
  if (!n || JSON_NODE_HOLDS_NULL (n))
    return true;
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return field_error (error, event, name, "must be a string");
  *out = json_node_get_string (n);
  *present = true;
  return true;
}

} // namespace

bool
parse_webhook (const char *body, gsize len, Webhook *out, GError **error)
{
  g_return_val_if_fail (out != nullptr, false);
  *out = Webhook ();
  if (!body || !len) {
    g_set_error (error, RTMS_ERROR, ERROR_PARSE, "webhook: empty input");
    return false;
  }
  JsonLimits limits;
  limits.max_bytes = kMessageMaxBytes;
  limits.max_depth = kMessageMaxDepth;
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  GError *err = nullptr;
  JsonNode *root = json_load (parser, body, len, limits, &err);
  if (!root) {
    g_set_error (error, RTMS_ERROR, err->code, "webhook: %s", err->message);
    g_error_free (err);
    return false;
  }
  return parse_webhook_root (root, out, error);
}

bool
parse_webhook_root (JsonNode *root_node, Webhook *out, GError **error)
{
  g_return_val_if_fail (out != nullptr, false);
  *out = Webhook ();
  if (!root_node || !JSON_NODE_HOLDS_OBJECT (root_node)) {
    g_set_error (error, RTMS_ERROR, ERROR_PARSE, "webhook: not a JSON object");
    return false;
  }
  JsonObject *root = json_node_get_object (root_node);

  JsonNode *ev = json_object_get_member (root, "event");
  if (!ev || !JSON_NODE_HOLDS_VALUE (ev)
      || json_node_get_value_type (ev) != G_TYPE_STRING) {
    g_set_error (error, RTMS_ERROR, ERROR_PARSE,
        "webhook: no 'event' string");
    return false;
  }
  out->event = json_node_get_string (ev);
  const char *event = out->event.c_str ();

  JsonNode *ts = json_object_get_member (root, "event_ts");
  if (ts && !JSON_NODE_HOLDS_NULL (ts)) {
    if (!JSON_NODE_HOLDS_VALUE (ts) || json_node_get_value_type (ts) != G_TYPE_INT64) {
      g_set_error (error, RTMS_ERROR, ERROR_FIELD,
          "webhook %s: field 'event_ts' must be an integer", event);
      return false;
    }
    out->event_ts = json_node_get_int (ts);
  }

  if (out->event == "endpoint.url_validation")
    out->kind = Webhook::Kind::URL_VALIDATION;
  else if (is_rtms_event (out->event, "started"))
    out->kind = Webhook::Kind::STARTED;
  else if (is_rtms_event (out->event, "stopped"))
    out->kind = Webhook::Kind::STOPPED;
  else if (is_rtms_event (out->event, "interrupted"))
    out->kind = Webhook::Kind::INTERRUPTED;
  else
    out->kind = Webhook::Kind::OTHER;

  JsonObject *payload = nullptr;
  JsonNode *pn = json_object_get_member (root, "payload");
  if (pn && !JSON_NODE_HOLDS_NULL (pn)) {
    if (!JSON_NODE_HOLDS_OBJECT (pn)) {
      g_set_error (error, RTMS_ERROR, ERROR_FIELD,
          "webhook %s: field 'payload' must be an object", event);
      return false;
    }
    payload = json_node_get_object (pn);
    /* §2.1 [C]: accept a payload.object wrapper */
    JsonNode *obj = json_object_get_member (payload, "object");
    if (obj && JSON_NODE_HOLDS_OBJECT (obj)
        && !json_object_has_member (payload, "rtms_stream_id")
        && !json_object_has_member (payload, "plainToken"))
      payload = json_node_get_object (obj);
  }

  bool has = false;
  if (out->kind == Webhook::Kind::URL_VALIDATION) {
    if (!payload)
      return field_error (error, event, "plainToken", "is missing");
    if (!read_string (payload, "plainToken", event, &out->plain_token, &has,
            error))
      return false;
    if (!has)
      return field_error (error, event, "plainToken", "is missing");
    return true;
  }

  if (!payload) {
    if (out->kind == Webhook::Kind::STARTED) {
      g_set_error (error, RTMS_ERROR, ERROR_FIELD,
          "webhook %s: field 'payload' is missing", event);
      return false;
    }
    return true;
  }

  /* identity: the product follows the event prefix (§2.2) */
  struct Prefix { const char *prefix; Product product; };
  static const Prefix prefixes[] = {
    { "contact_center.", Product::CONTACT_CENTER },
    { "meeting.", Product::MEETING },
    { "webinar.", Product::WEBINAR },
    { "session.", Product::SESSION },
    { "phone.", Product::PHONE },
  };
  bool known_product = false;
  for (const Prefix &p : prefixes) {
    if (has_prefix (out->event, p.prefix)) {
      out->product = p.product;
      known_product = true;
      break;
    }
  }
  if (known_product) {
    out->id_key = product_id_key (out->product);
    if (!read_id (payload, out->id_key.c_str (), event, &out->id_value, &has,
            error))
      return false;
  } else {
    /* other events: take whichever id key is present */
    static const Product order[] = { Product::CONTACT_CENTER, Product::MEETING,
      Product::WEBINAR, Product::SESSION, Product::PHONE };
    for (Product p : order) {
      if (!read_id (payload, product_id_key (p), event, &out->id_value, &has,
              error))
        return false;
      if (has) {
        out->product = p;
        out->id_key = product_id_key (p);
        break;
      }
    }
  }
  bool has_id = !out->id_value.empty ();

  bool has_stream = false;
  if (!read_string (payload, "rtms_stream_id", event, &out->rtms_stream_id,
          &has_stream, error))
    return false;
  if (!read_string (payload, "signature", event, &out->signature, &has,
          error))
    return false;

  /* server_urls: string, or object kept as compact JSON (§2.2) */
  JsonNode *urls = json_object_get_member (payload, "server_urls");
  if (urls && !JSON_NODE_HOLDS_NULL (urls)) {
    if (JSON_NODE_HOLDS_OBJECT (urls)) {
      detail::json_append_node (out->server_urls_raw, urls);
    } else if (JSON_NODE_HOLDS_VALUE (urls)
        && json_node_get_value_type (urls) == G_TYPE_STRING) {
      out->server_urls_raw = json_node_get_string (urls);
    } else {
      return field_error (error, event, "server_urls",
          "must be a string or an object");
    }
    out->signaling_url = select_signaling_url (out->server_urls_raw);
  }

  JsonNode *sr = json_object_get_member (payload, "stop_reason");
  if (sr && !JSON_NODE_HOLDS_NULL (sr)) {
    if (!JSON_NODE_HOLDS_VALUE (sr) || json_node_get_value_type (sr) != G_TYPE_INT64)
      return field_error (error, event, "stop_reason", "must be an integer");
    out->stop_reason = static_cast<int> (json_node_get_int (sr));
    out->has_stop_reason = true;
  }

  if (out->kind == Webhook::Kind::STARTED) {
    if (!has_stream || out->rtms_stream_id.empty ())
      return field_error (error, event, "rtms_stream_id", "is missing");
    if (!has_id)
      return field_error (error, event,
          out->id_key.empty () ? "engagement_id" : out->id_key.c_str (),
          "is missing");
    if (out->server_urls_raw.empty ())
      return field_error (error, event, "server_urls", "is missing");
    if (out->signaling_url.empty ())
      return field_error (error, event, "server_urls",
          "has no ws:// or wss:// URL");
  }
  return true;
}

std::string
encode_webhook (const std::string &event, gint64 event_ts,
    const std::string &id_key, const std::string &id_value,
    const std::string &rtms_stream_id, const std::string &server_urls,
    int stop_reason)
{
  std::string s;
  detail::JsonWriter w (s);
  w.begin_object ();
  w.member ("event", event);
  w.member ("event_ts", event_ts);
  w.key ("payload");
  w.begin_object ();
  w.member (id_key.empty () ? "engagement_id" : id_key.c_str (), id_value);
  w.member ("rtms_stream_id", rtms_stream_id);
  if (!server_urls.empty ()) {
    bool as_object = false;
    if (server_urls[0] == '{') {
      /* an object form (§2.2) is embedded as JSON, compacted */
      JsonLimits limits;
      limits.max_bytes = kMessageMaxBytes;
      limits.max_depth = kMessageMaxDepth;
      g_autoptr (JsonParser) parser = json_parser_new_immutable ();
      if (JsonNode *root = json_load (parser, server_urls.data (),
              server_urls.size (), limits, nullptr)) {
        if (JSON_NODE_HOLDS_OBJECT (root)) {
          std::string compact;
          detail::json_append_node (compact, root);
          w.key ("server_urls");
          w.raw (compact);
          as_object = true;
        }
      }
    }
    if (!as_object)
      w.member ("server_urls", server_urls);
  }
  if (stop_reason >= 0)
    w.member ("stop_reason", stop_reason);
  w.end_object ();
  w.end_object ();
  return s;
}

} // namespace rtms
