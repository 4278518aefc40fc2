/* zoomrtms — libFuzzer target: webhook verification and parsing
 * (rtms::verify_webhook, rtms::parse_webhook, docs/protocol.md §2).
 *
 * Input: byte 0 = flags, byte 1 = timestamp offset (signed, × 10 s), then a
 * length-prefixed signature header candidate, then the body (the rest).
 *
 * Invariants:
 *  - verify_webhook() with the right signature of the body (webhook_signature)
 *    succeeds exactly when the body is within max_body_bytes and the
 *    timestamp within the window; the hex may come in upper case;
 *  - a wrong signature (one hex digit changed, or the fuzzed header) never
 *    verifies, and the errors are TOO_LARGE / STALE / SIGNATURE — never a
 *    crash, whatever the body is (verify_webhook parses it for the
 *    re-serialisation check of §11 #18, before it is authenticated);
 *  - parse_webhook() either fails with RTMS_ERROR PARSE/FIELD or gives a
 *    Webhook whose STARTED form has a stream id, an id and a signaling URL
 *    that starts with ws:// or wss:// (any case), holds no ',' and no blank
 *    at either end;
 *  - a STARTED / STOPPED / INTERRUPTED webhook written back with
 *    encode_webhook() parses to the same kind, id, stream id, signaling URL
 *    and stop reason;
 *  - url_validation_response() is a JSON object whose plainToken is the
 *    token and whose encryptedToken is 64 lowercase hex digits.
 */
#include <glib.h>
#include <json-glib/json-glib.h>

#include <string>

#include "fuzz-util.h"
#include "rtms-auth.h"

namespace {

const std::string kSecret = "fuzz-secret-token";
const gint64 kNow = 1727384349;

bool
has_prefix_ci (const std::string &s, const char *p)
{
  return g_ascii_strncasecmp (s.c_str (), p, strlen (p)) == 0;
}

/* the body, to tell an echo of the input from a leak of the secret */
std::string g_body;

void
check_error (GError *error, int code_a, int code_b, int code_c, const char *what)
{
  FUZZ_CHECK (error != nullptr, "%s failed without an error", what);
  FUZZ_CHECK (error->domain == RTMS_ERROR && (error->code == code_a
      || error->code == code_b || error->code == code_c),
      "%s: unexpected error %s/%d: %s", what, g_quark_to_string (error->domain),
      error->code, error->message);
  FUZZ_CHECK (g_body.find (kSecret) != std::string::npos
      || strstr (error->message, kSecret.c_str ()) == nullptr,
      "%s: error message contains the secret", what);
}

} // namespace

extern "C" int
LLVMFuzzerInitialize (int *, char ***)
{
  fuzz_fatal_criticals ();
  return 0;
}

extern "C" int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  FuzzInput in (data, size);
  uint8_t flags = in.u8 ();
  int8_t offset = static_cast<int8_t> (in.u8 ());
  std::string header = in.str (128);
  std::string body = in.rest ();
  g_body = body;

  rtms::WebhookVerifyOptions opts;
  opts.max_body_bytes = (flags & 1) ? 64 * 1024 : 256;
  gint64 ts = kNow + offset * 10;
  std::string ts_header = std::to_string (ts);
  bool in_window = (offset * 10 <= opts.window_s) && (-offset * 10 <= opts.window_s);
  bool small = body.size () <= opts.max_body_bytes;

  /* the right signature */
  std::string sig = rtms::webhook_signature (kSecret, ts_header, body.data (),
      body.size ());
  FUZZ_CHECK (sig.size () == 67 && sig.compare (0, 3, "v0=") == 0, "signature shape");
  if (flags & 2) {
    for (size_t i = 3; i < sig.size (); i++)
      sig[i] = g_ascii_toupper (sig[i]);
  }
  GError *error = nullptr;
  bool ok = rtms::verify_webhook (kSecret, ts_header.c_str (), sig.c_str (),
      body.data (), body.size (), kNow, opts, &error);
  FUZZ_CHECK (ok == (small && in_window), "right signature: verify %d, "
      "expected %d (%s)", ok, small && in_window, error ? error->message : "");
  if (!ok)
    check_error (error, rtms::ERROR_TOO_LARGE, rtms::ERROR_STALE,
        rtms::ERROR_STALE, "verify_webhook");
  g_clear_error (&error);

  /* one hex digit changed */
  std::string bad = sig;
  size_t pos = 3 + (flags >> 2) % 64;
  bad[pos] = bad[pos] == '0' ? '1' : '0';
  FUZZ_CHECK (!rtms::verify_webhook (kSecret, ts_header.c_str (), bad.c_str (),
      body.data (), body.size (), kNow, opts, &error),
      "a wrong signature verifies");
  check_error (error, rtms::ERROR_TOO_LARGE, rtms::ERROR_STALE,
      rtms::ERROR_SIGNATURE, "verify_webhook (wrong signature)");
  g_clear_error (&error);

  /* the fuzzed header: never valid unless it is the right signature */
  bool hv = rtms::verify_webhook (kSecret, ts_header.c_str (), header.c_str (),
      body.data (), body.size (), kNow, opts, &error);
  if (hv) {
    FUZZ_CHECK (g_ascii_strcasecmp (header.c_str (), sig.c_str ()) == 0,
        "fuzzed signature header verifies: %s", fuzz_escape (header).c_str ());
  } else {
    check_error (error, rtms::ERROR_TOO_LARGE, rtms::ERROR_STALE,
        rtms::ERROR_SIGNATURE, "verify_webhook (fuzzed header)");
  }
  g_clear_error (&error);

  /* the fuzzed header as timestamp */
  if (rtms::verify_webhook (kSecret, header.c_str (), sig.c_str (),
      body.data (), body.size (), kNow, opts, &error)) {
    FUZZ_CHECK (header == ts_header, "signature verifies with another "
        "timestamp header: %s", fuzz_escape (header).c_str ());
  } else {
    check_error (error, rtms::ERROR_TOO_LARGE, rtms::ERROR_STALE,
        rtms::ERROR_SIGNATURE, "verify_webhook (fuzzed timestamp)");
  }
  g_clear_error (&error);

  /* parse */
  rtms::Webhook w;
  if (!rtms::parse_webhook (body.data (), body.size (), &w, &error)) {
    check_error (error, rtms::ERROR_PARSE, rtms::ERROR_FIELD, rtms::ERROR_FIELD,
        "parse_webhook");
    g_clear_error (&error);
  } else {
    FUZZ_CHECK (error == nullptr, "parse_webhook succeeded with an error set");
    if (!w.signaling_url.empty ()) {
      const std::string &u = w.signaling_url;
      FUZZ_CHECK (has_prefix_ci (u, "ws://") || has_prefix_ci (u, "wss://"),
          "signaling URL %s", fuzz_escape (u).c_str ());
      FUZZ_CHECK (u.find (',') == std::string::npos, "',' in signaling URL %s",
          fuzz_escape (u).c_str ());
      FUZZ_CHECK (!g_ascii_isspace (u.front ()) && !g_ascii_isspace (u.back ()),
          "blank around signaling URL %s", fuzz_escape (u).c_str ());
    }
    if (w.kind == rtms::Webhook::Kind::STARTED) {
      FUZZ_CHECK (!w.rtms_stream_id.empty () && !w.id_value.empty ()
          && !w.id_key.empty () && !w.signaling_url.empty (),
          "started webhook without stream id, id or URL");
    }
    if (w.kind == rtms::Webhook::Kind::URL_VALIDATION) {
      std::string resp = rtms::url_validation_response (kSecret, w.plain_token);
      g_autoptr (JsonParser) p = json_parser_new ();
      FUZZ_CHECK (json_parser_load_from_data (p, resp.data (), resp.size (), nullptr),
          "url_validation_response is not JSON: %s", fuzz_escape (resp).c_str ());
      JsonNode *root = json_parser_get_root (p);
      FUZZ_CHECK (root && JSON_NODE_HOLDS_OBJECT (root), "response not an object");
      JsonObject *o = json_node_get_object (root);
      const char *pt = json_object_get_string_member_with_default (o, "plainToken", nullptr);
      const char *et = json_object_get_string_member_with_default (o, "encryptedToken", nullptr);
      FUZZ_CHECK (pt && w.plain_token == pt, "plainToken not echoed");
      FUZZ_CHECK (et && strlen (et) == 64 && strspn (et, "0123456789abcdef") == 64,
          "encryptedToken shape");
    }
    if ((w.kind == rtms::Webhook::Kind::STARTED
            || w.kind == rtms::Webhook::Kind::STOPPED
            || w.kind == rtms::Webhook::Kind::INTERRUPTED)
        && !w.id_key.empty () && !w.rtms_stream_id.empty ()) {
      std::string enc = rtms::encode_webhook (w.event, w.event_ts, w.id_key,
          w.id_value, w.rtms_stream_id, w.server_urls_raw,
          w.has_stop_reason && w.stop_reason >= 0 ? w.stop_reason : -1);
      rtms::Webhook w2;
      FUZZ_CHECK (rtms::parse_webhook (enc.data (), enc.size (), &w2, &error),
          "re-encoded webhook rejected: %s: %s", error ? error->message : "",
          fuzz_escape (enc).c_str ());
      FUZZ_CHECK (w2.kind == w.kind && w2.event == w.event
          && w2.event_ts == w.event_ts && w2.id_key == w.id_key
          && w2.id_value == w.id_value && w2.rtms_stream_id == w.rtms_stream_id
          && w2.signaling_url == w.signaling_url,
          "re-encoded webhook differs: %s", fuzz_escape (enc).c_str ());
      if (w.has_stop_reason && w.stop_reason >= 0)
        FUZZ_CHECK (w2.has_stop_reason && w2.stop_reason == w.stop_reason,
            "stop_reason lost");
    }
  }
  return 0;
}
