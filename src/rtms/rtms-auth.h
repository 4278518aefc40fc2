/* zoomrtms — signatures and webhooks: HMAC handshake signature, x-zm-signature
 * verification, endpoint.url_validation, and the webhook envelope.
 *
 * Rules: docs/protocol.md §2 (webhooks) and §3.2 (handshake signature); test
 * vectors in §9.3. Crypto is OpenSSL's one-shot HMAC (gstreamer-guide.md §6.5),
 * compares are constant-time (CRYPTO_memcmp). No function here logs or returns
 * a secret.
 */
#pragma once

#include <glib.h>

#include <cstdint>
#include <string>

#include <json-glib/json-glib.h>

#include "rtms-messages.h"

namespace rtms {

/** hmac_sha256_hex:
 * Returns: lowercase hex (64 chars) of HMAC-SHA256(@key, @data).
 */
std::string hmac_sha256_hex (const std::string &key, const char *data,
    gsize len);

/** handshake_signature:
 * docs/protocol.md §3.2: hex(HMAC_SHA256(client_secret,
 * client_id + "," + id + "," + rtms_stream_id)). @id is used verbatim
 * (meeting UUIDs keep `/`, `+`, `=`).
 * Returns: 64 lowercase hex chars.
 */
std::string handshake_signature (const std::string &client_id,
    const std::string &client_secret, const std::string &id,
    const std::string &rtms_stream_id);

/** constant_time_equal:
 * Returns: true if @a equals @b; the time depends only on the lengths.
 */
bool constant_time_equal (const std::string &a, const std::string &b);

/** webhook_signature:
 * docs/protocol.md §2.5: "v0=" + hex(HMAC_SHA256(secret_token,
 * "v0:" + timestamp + ":" + body)). Used by the sim to sign, and by
 * verify_webhook() to check.
 */
std::string webhook_signature (const std::string &secret_token,
    const std::string &timestamp_header, const char *body, gsize len);

/* Limits of webhook verification. */
struct WebhookVerifyOptions {
  gint64 window_s = 300;          /* |now − x-zm-request-timestamp|, §2.5 */
  gsize max_body_bytes = 64 * 1024;
  /* nesting limit of the body (rtms-json.h JsonLimits::max_depth); the
   * deepest RTMS webhook (server_urls as an object) is depth 3 */
  guint max_depth = 32;
};

/** verify_webhook:
 * @secret_token: the app's Secret Token (not the client secret)
 * @timestamp_header: `x-zm-request-timestamp` (epoch seconds, verbatim)
 * @signature_header: `x-zm-signature` ("v0=<hex>")
 * @body, @len: the raw request body bytes
 * @now_s: current epoch seconds
 *
 * docs/protocol.md §2.5 and §11 #18, in order of cost: size limit, timestamp
 * window, HMAC over the raw bytes (nothing parsed); only if that fails, the
 * fallback: json_validate() with @opts' size and depth limits (iterative,
 * rtms-json.h), one parse, and the HMAC over the compact key-order-preserving
 * re-serialisation (JSON.stringify form). An unauthenticated body is never
 * parsed unless it passed json_validate().
 * Returns: false with RTMS_ERROR_TOO_LARGE (body over the limit),
 * RTMS_ERROR_STALE (timestamp missing, not a number, or outside the window) or
 * RTMS_ERROR_SIGNATURE (missing or wrong signature; also a body that fails
 * json_validate() after the raw check failed). Messages never contain the
 * secret, the expected signature or any byte of the body.
 */
bool verify_webhook (const std::string &secret_token,
    const char *timestamp_header, const char *signature_header,
    const char *body, gsize len, gint64 now_s,
    const WebhookVerifyOptions &opts, GError **error);

/* forward */
struct Webhook;

/** verify_and_parse_webhook:
 * What the host does with every request to its webhook path: verify_webhook()
 * and then parse_webhook_root() on the same tree, so the body is parsed once
 * (by the fallback when it ran, else once after the raw check passed, always
 * through json_load() with @opts' limits). docs/protocol.md §2.4: the caller
 * answers endpoint.url_validation only when this returned true.
 * Returns: false with RTMS_ERROR_TOO_LARGE, RTMS_ERROR_STALE or
 * RTMS_ERROR_SIGNATURE as verify_webhook() (the request is not
 * authenticated: answer 413/401), or with RTMS_ERROR_PARSE / RTMS_ERROR_FIELD
 * as parse_webhook() (authenticated but malformed: 400). No error message
 * quotes the body.
 */
bool verify_and_parse_webhook (const std::string &secret_token,
    const char *timestamp_header, const char *signature_header,
    const char *body, gsize len, gint64 now_s,
    const WebhookVerifyOptions &opts, Webhook *out, GError **error);

/** url_validation_response:
 * docs/protocol.md §2.4: the JSON body
 * {"plainToken":"…","encryptedToken":"<hex HMAC(secret_token, plainToken)>"}.
 */
std::string url_validation_response (const std::string &secret_token,
    const std::string &plain_token);

/* A parsed webhook (docs/protocol.md §2.1–§2.3). RTMS fields sit directly
 * under `payload`; a `payload.object` wrapper is also accepted (§2.1). */
struct Webhook {
  std::string event;              /* e.g. "contact_center.voice_rtms_started" */
  gint64 event_ts = 0;            /* epoch ms */
  /* identity: the product follows the event prefix */
  Product product = Product::CONTACT_CENTER;
  std::string id_key;             /* "engagement_id", "meeting_uuid", … */
  std::string id_value;
  std::string rtms_stream_id;
  std::string server_urls_raw;    /* string value, or compact JSON of an object */
  std::string signaling_url;      /* select_signaling_url(server_urls_raw) */
  bool has_stop_reason = false;
  int stop_reason = 0;
  std::string plain_token;        /* endpoint.url_validation */
  std::string signature;          /* optional payload.signature (§2.2) */

  enum class Kind { URL_VALIDATION, STARTED, STOPPED, INTERRUPTED, OTHER };
  Kind kind = Kind::OTHER;
};

/** parse_webhook:
 * Loads @body with json_load() (rtms-json.h; 4 MiB, depth 32) and reads it
 * with parse_webhook_root(). Does not verify anything: see
 * verify_and_parse_webhook().
 * Returns: false with RTMS_ERROR_TOO_LARGE, RTMS_ERROR_PARSE (invalid JSON,
 * not a JSON object, no `event` string) or RTMS_ERROR_FIELD (a started event
 * without rtms_stream_id, id or server_urls; a url_validation without
 * plainToken).
 */
bool parse_webhook (const char *body, gsize len, Webhook *out, GError **error);

/** parse_webhook_root:
 * Reads an already parsed webhook body @root (docs/protocol.md §2.1–§2.3).
 * Returns: false with RTMS_ERROR_PARSE or RTMS_ERROR_FIELD as parse_webhook().
 */
bool parse_webhook_root (JsonNode *root, Webhook *out, GError **error);

/** encode_webhook:
 * Builds the compact JSON body of an RTMS webhook (what the sim sends):
 * {"event":…,"event_ts":…,"payload":{<id_key>:…,"rtms_stream_id":…,
 *  ["server_urls":…], ["stop_reason":…]}} in the key order of §9.3.
 */
std::string encode_webhook (const std::string &event, gint64 event_ts,
    const std::string &id_key, const std::string &id_value,
    const std::string &rtms_stream_id, const std::string &server_urls,
    int stop_reason /* < 0 = omitted */);

} // namespace rtms
