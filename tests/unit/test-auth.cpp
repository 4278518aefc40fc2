/* zoomrtms unit tests — rtms-auth: §9.3 test vectors, handshake signature,
 * webhook verification (§2.5, §11 #18), url_validation (§2.4), webhook
 * parsing (§2.1–§2.3). */
#include <gtest/gtest.h>

#include <cstring>

#include "test-util.h"

using namespace rtms;
using test::minify;

namespace {

/* docs/protocol.md §9.3 vector 3 */
const char *vector3_body =
    R"({"event":"contact_center.voice_rtms_started","event_ts":1738392033000,"payload":{"engagement_id":"LjjdDBo5SkGneP8qY4SvuQ","rtms_stream_id":"03db704592624398931a588dd78200cb","server_urls":"wss://127.0.0.1:9443/signaling"}})";
const char *vector3_sig =
    "v0=dce260745e26e2309a39b8d21d31062500eabfec36a2891aba48c7fb25615981";
const gint64 vector3_ts = 1738392033;

/* A secret that must never leak into an error message. */
const std::string leak_secret = "Zx9-very-SECRET-token-Qw7";

bool
verify (const std::string &secret, const char *ts, const char *sig,
    const std::string &body, gint64 now, GError **error,
    const WebhookVerifyOptions &opts = WebhookVerifyOptions ())
{
  return verify_webhook (secret, ts, sig, body.data (), body.size (), now,
      opts, error);
}

Webhook
parse_webhook_ok (const std::string &body)
{
  Webhook w;
  GError *err = nullptr;
  EXPECT_TRUE (parse_webhook (body.data (), body.size (), &w, &err))
      << (err ? err->message : "") << "\n  in: " << body;
  g_clear_error (&err);
  return w;
}

std::string
parse_webhook_fails (const std::string &body, int code)
{
  Webhook w;
  GError *err = nullptr;
  EXPECT_FALSE (parse_webhook (body.data (), body.size (), &w, &err))
      << "accepted: " << body;
  std::string msg;
  if (err) {
    EXPECT_TRUE (g_error_matches (err, RTMS_ERROR, code))
        << "code " << err->code << ": " << err->message;
    msg = err->message;
    g_error_free (err);
  }
  return msg;
}

} // namespace

/* ---------------------------------------------------------------------- */
/* §9.3 test vectors                                                        */

TEST (Vectors, HandshakeSignature)
{
  EXPECT_EQ (handshake_signature ("test_client_id", "test_client_secret",
                 "LjjdDBo5SkGneP8qY4SvuQ", "03db704592624398931a588dd78200cb"),
      "788811621fd8bf64965c269692849a4ab4476c3f9e67d63e477cdf1f07e79b4d");
}

TEST (Vectors, UrlValidation)
{
  std::string body = url_validation_response ("test_secret_token",
      "qgg8vlvZRS6UYooatFL8Aw");
  EXPECT_EQ (body,
      R"({"plainToken":"qgg8vlvZRS6UYooatFL8Aw","encryptedToken":"4efea922935c335d972476de138d2208a0d46ab28c79ee592d497a1b216419b8"})");
  /* the §2.4 example, compacted */
  EXPECT_EQ (body, minify (R"({ "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
    "encryptedToken": "4efea922935c335d972476de138d2208a0d46ab28c79ee592d497a1b216419b8" })"));
}

TEST (Vectors, WebhookSignature)
{
  EXPECT_EQ (webhook_signature ("test_secret_token", "1738392033",
                 vector3_body, strlen (vector3_body)),
      vector3_sig);
  GError *err = nullptr;
  EXPECT_TRUE (verify ("test_secret_token", "1738392033", vector3_sig,
      vector3_body, vector3_ts, &err)) << (err ? err->message : "");
  g_clear_error (&err);
}

TEST (Vectors, EncodeWebhookMatchesVector3)
{
  EXPECT_EQ (encode_webhook ("contact_center.voice_rtms_started",
                 G_GINT64_CONSTANT (1738392033000), "engagement_id",
                 "LjjdDBo5SkGneP8qY4SvuQ", "03db704592624398931a588dd78200cb",
                 "wss://127.0.0.1:9443/signaling", -1),
      vector3_body);
}

/* ---------------------------------------------------------------------- */
/* HMAC helpers                                                            */

TEST (Hmac, HandshakeSignatureUsesIdVerbatim)
{
  const std::string uuid = "4444AAAi/AAAA+iAiAiiAii==";
  std::string sig = handshake_signature ("cid", "csecret", uuid, "stream1");
  /* independent implementation: GLib's HMAC */
  const std::string msg = "cid," + uuid + ",stream1";
  gchar *expect = g_compute_hmac_for_string (G_CHECKSUM_SHA256,
      reinterpret_cast<const guchar *> ("csecret"), 7, msg.c_str (),
      msg.size ());
  EXPECT_EQ (sig, expect);
  g_free (expect);
  EXPECT_EQ (sig.size (), 64u);
  for (char c : sig)
    EXPECT_TRUE (g_ascii_isdigit (c) || (c >= 'a' && c <= 'f')) << sig;
  /* URL-encoding the id would give another signature */
  EXPECT_NE (sig, handshake_signature ("cid", "csecret",
                      "4444AAAi%2FAAAA%2BiAiAiiAii%3D%3D", "stream1"));
}

TEST (Hmac, EmptyInputs)
{
  /* RFC 4231-style sanity: HMAC-SHA256 with empty key and message */
  EXPECT_EQ (hmac_sha256_hex ("", "", 0),
      "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  EXPECT_EQ (hmac_sha256_hex ("", nullptr, 0), hmac_sha256_hex ("", "", 0));
}

TEST (Hmac, ConstantTimeEqual)
{
  EXPECT_TRUE (constant_time_equal ("", ""));
  EXPECT_TRUE (constant_time_equal ("abc", "abc"));
  EXPECT_FALSE (constant_time_equal ("abc", "abd"));
  EXPECT_FALSE (constant_time_equal ("abc", "abcd"));
  EXPECT_FALSE (constant_time_equal ("", "a"));
}

/* ---------------------------------------------------------------------- */
/* verify_webhook (§2.5)                                                   */

TEST (VerifyWebhook, ReSerialisedBodyAccepted)
{
  /* Zoom may sign JSON.stringify(body): a pretty-printed delivery of the
   * same object verifies through the compact re-serialisation (§11 #18). */
  std::string compact = vector3_body;
  std::string pretty = R"({
  "event": "contact_center.voice_rtms_started",
  "event_ts": 1738392033000,
  "payload": {
    "engagement_id": "LjjdDBo5SkGneP8qY4SvuQ",
    "rtms_stream_id": "03db704592624398931a588dd78200cb",
    "server_urls": "wss://127.0.0.1:9443/signaling"
  }
}
)";
  GError *err = nullptr;
  EXPECT_TRUE (verify ("test_secret_token", "1738392033", vector3_sig, pretty,
      vector3_ts, &err)) << (err ? err->message : "");
  g_clear_error (&err);

  /* \u escapes in the raw body vs literal UTF-8 in JSON.stringify */
  std::string literal = R"({"event":"meeting.rtms_started","payload":{"user_name":"Jöhn 😀"}})";
  std::string escaped = R"({"event":"meeting.rtms_started","payload":{"user_name":"J\u00f6hn \ud83d\ude00"}})";
  std::string sig = webhook_signature ("tok", "1000", literal.data (),
      literal.size ());
  EXPECT_TRUE (verify ("tok", "1000", sig.c_str (), escaped, 1000, &err))
      << (err ? err->message : "");
  g_clear_error (&err);

  /* key order matters: a reordered object is another body */
  std::string reordered = R"({"payload":{"user_name":"Jöhn 😀"},"event":"meeting.rtms_started"})";
  EXPECT_FALSE (verify ("tok", "1000", sig.c_str (), reordered, 1000, &err));
  EXPECT_TRUE (g_error_matches (err, RTMS_ERROR, ERROR_SIGNATURE));
  g_clear_error (&err);
}

TEST (VerifyWebhook, UppercaseHexAccepted)
{
  std::string upper = vector3_sig;
  for (gsize i = 3; i < upper.size (); i++)
    upper[i] = g_ascii_toupper (upper[i]);
  GError *err = nullptr;
  EXPECT_TRUE (verify ("test_secret_token", "1738392033", upper.c_str (),
      vector3_body, vector3_ts, &err));
  g_clear_error (&err);
}

TEST (VerifyWebhook, BadSignatures)
{
  std::string body = vector3_body;
  struct Case { const char *secret; const char *sig; std::string body; };
  std::string tampered = body;
  tampered[tampered.find ("LjjdDBo5")] = 'X';
  std::string flipped = vector3_sig;
  flipped.back () = flipped.back () == '1' ? '2' : '1';
  const Case cases[] = {
    { "wrong_secret_token", vector3_sig, body },
    { "test_secret_token", vector3_sig, tampered },
    { "test_secret_token", flipped.c_str (), body },
    { "test_secret_token", vector3_sig + 3, body },          /* no "v0=" */
    { "test_secret_token", "v1=dce260745e26e2309a39b8d21d31062500eabfec36a2891aba48c7fb25615981", body },
    { "test_secret_token", "v0=", body },
    { "test_secret_token", "", body },
    { "test_secret_token", nullptr, body },
  };
  for (const Case &c : cases) {
    SCOPED_TRACE (c.sig ? c.sig : "(null)");
    GError *err = nullptr;
    EXPECT_FALSE (verify (c.secret, "1738392033", c.sig, c.body, vector3_ts,
        &err));
    EXPECT_TRUE (g_error_matches (err, RTMS_ERROR, ERROR_SIGNATURE))
        << (err ? err->message : "no error");
    g_clear_error (&err);
  }
  /* a signature over another timestamp does not verify */
  std::string other = webhook_signature ("test_secret_token", "1738392034",
      body.data (), body.size ());
  GError *err = nullptr;
  EXPECT_FALSE (verify ("test_secret_token", "1738392033", other.c_str (),
      body, vector3_ts, &err));
  EXPECT_TRUE (g_error_matches (err, RTMS_ERROR, ERROR_SIGNATURE));
  g_clear_error (&err);
}

TEST (VerifyWebhook, TimestampWindow)
{
  struct Case { gint64 now; bool ok; };
  const Case cases[] = {
    { vector3_ts, true },
    { vector3_ts + 300, true },
    { vector3_ts - 300, true },
    { vector3_ts + 301, false }, /* too old */
    { vector3_ts - 301, false }, /* from the future */
    { vector3_ts + 86400, false },
    { 0, false },
  };
  for (const Case &c : cases) {
    SCOPED_TRACE (c.now);
    GError *err = nullptr;
    bool ok = verify ("test_secret_token", "1738392033", vector3_sig,
        vector3_body, c.now, &err);
    EXPECT_EQ (ok, c.ok);
    if (!c.ok) {
      EXPECT_TRUE (g_error_matches (err, RTMS_ERROR, ERROR_STALE))
          << (err ? err->message : "no error");
    }
    g_clear_error (&err);
  }
  WebhookVerifyOptions narrow;
  narrow.window_s = 10;
  GError *err = nullptr;
  EXPECT_FALSE (verify ("test_secret_token", "1738392033", vector3_sig,
      vector3_body, vector3_ts + 11, &err, narrow));
  EXPECT_TRUE (g_error_matches (err, RTMS_ERROR, ERROR_STALE));
  g_clear_error (&err);
}

TEST (VerifyWebhook, BadTimestampHeader)
{
  const char *bad[] = { nullptr, "", "abc", "1738392033.5", " 1738392033",
    "1738392033s", "99999999999999999999999" };
  for (const char *ts : bad) {
    SCOPED_TRACE (ts ? ts : "(null)");
    GError *err = nullptr;
    EXPECT_FALSE (verify ("test_secret_token", ts, vector3_sig, vector3_body,
        vector3_ts, &err));
    EXPECT_TRUE (g_error_matches (err, RTMS_ERROR, ERROR_STALE))
        << (err ? err->message : "no error");
    g_clear_error (&err);
  }
}

TEST (VerifyWebhook, OversizedBody)
{
  WebhookVerifyOptions opts;
  opts.max_body_bytes = 64;
  std::string body = vector3_body;
  std::string sig = webhook_signature ("test_secret_token", "1738392033",
      body.data (), body.size ());
  GError *err = nullptr;
  EXPECT_FALSE (verify ("test_secret_token", "1738392033", sig.c_str (), body,
      vector3_ts, &err, opts));
  EXPECT_TRUE (g_error_matches (err, RTMS_ERROR, ERROR_TOO_LARGE));
  g_clear_error (&err);
  /* the default limit is 64 KiB */
  std::string big (64 * 1024 + 1, ' ');
  EXPECT_FALSE (verify ("test_secret_token", "1738392033", sig.c_str (), big,
      vector3_ts, &err));
  EXPECT_TRUE (g_error_matches (err, RTMS_ERROR, ERROR_TOO_LARGE));
  g_clear_error (&err);
}

/* The host's entry (verify_and_parse_webhook): the raw check needs no
 * parsing; the fallback parses only what json_validate() accepts; the tree is
 * parsed once and read as parse_webhook() would. Issue 8. */
TEST (VerifyAndParseWebhook, SignedBodyParsedOnce)
{
  Webhook w;
  GError *err = nullptr;
  ASSERT_TRUE (verify_and_parse_webhook ("test_secret_token", "1738392033",
      vector3_sig, vector3_body, strlen (vector3_body), vector3_ts,
      WebhookVerifyOptions (), &w, &err)) << (err ? err->message : "");
  EXPECT_EQ (w.kind, Webhook::Kind::STARTED);
  EXPECT_EQ (w.id_value, "LjjdDBo5SkGneP8qY4SvuQ");
  EXPECT_EQ (w.signaling_url, "wss://127.0.0.1:9443/signaling");
  /* the re-serialised form (pretty body) is parsed by the fallback */
  std::string pretty = std::string ("  ") + vector3_body + "\n";
  ASSERT_TRUE (verify_and_parse_webhook ("test_secret_token", "1738392033",
      vector3_sig, pretty.data (), pretty.size (), vector3_ts,
      WebhookVerifyOptions (), &w, &err)) << (err ? err->message : "");
  EXPECT_EQ (w.rtms_stream_id, "03db704592624398931a588dd78200cb");
}

TEST (VerifyAndParseWebhook, UnauthenticatedIsNeverAParseError)
{
  /* malformed, deep, or not JSON at all: with a wrong signature the answer
   * is always SIGNATURE (401), never PARSE (which would be a parsing oracle
   * and means the body was read) */
  std::string deep = "{\"event\":\"x\",\"p\":" + std::string (50000, '[') +
      std::string (50000, ']') + "}";
  WebhookVerifyOptions opts;
  opts.max_body_bytes = 1024 * 1024;
  for (const std::string &body : {deep, std::string ("{\"event\":"),
           std::string ("\xff\xfe"), std::string ("[1,2]")}) {
    Webhook w;
    GError *err = nullptr;
    EXPECT_FALSE (verify_and_parse_webhook ("tok", "1000", "v0=00", body.data (),
        body.size (), 1000, opts, &w, &err));
    ASSERT_NE (err, nullptr);
    EXPECT_TRUE (g_error_matches (err, RTMS_ERROR, ERROR_SIGNATURE)) << err->message;
    g_error_free (err);
  }
  /* signed but too deep: PARSE (400), and the host did not recurse */
  std::string sig = webhook_signature ("tok", "1000", deep.data (), deep.size ());
  Webhook w;
  GError *err = nullptr;
  EXPECT_FALSE (verify_and_parse_webhook ("tok", "1000", sig.c_str (), deep.data (),
      deep.size (), 1000, opts, &w, &err));
  ASSERT_NE (err, nullptr);
  EXPECT_TRUE (g_error_matches (err, RTMS_ERROR, ERROR_PARSE)) << err->message;
  EXPECT_EQ (std::string (err->message).find ("[["), std::string::npos);
  g_clear_error (&err);
  /* signed, valid JSON, not a webhook: FIELD/PARSE from parse_webhook_root */
  std::string arr = "[1,2]";
  sig = webhook_signature ("tok", "1000", arr.data (), arr.size ());
  EXPECT_FALSE (verify_and_parse_webhook ("tok", "1000", sig.c_str (), arr.data (),
      arr.size (), 1000, opts, &w, &err));
  EXPECT_TRUE (g_error_matches (err, RTMS_ERROR, ERROR_PARSE));
  g_clear_error (&err);
}

TEST (VerifyAndParseWebhook, WindowAndSizeBeforeAnything)
{
  Webhook w;
  GError *err = nullptr;
  WebhookVerifyOptions opts;
  opts.max_body_bytes = 16;
  EXPECT_FALSE (verify_and_parse_webhook ("test_secret_token", "1738392033",
      vector3_sig, vector3_body, strlen (vector3_body), vector3_ts, opts, &w, &err));
  EXPECT_TRUE (g_error_matches (err, RTMS_ERROR, ERROR_TOO_LARGE));
  g_clear_error (&err);
  EXPECT_FALSE (verify_and_parse_webhook ("test_secret_token", "1738392033",
      vector3_sig, vector3_body, strlen (vector3_body), vector3_ts + 301,
      WebhookVerifyOptions (), &w, &err));
  EXPECT_TRUE (g_error_matches (err, RTMS_ERROR, ERROR_STALE));
  g_clear_error (&err);
}

TEST (VerifyWebhook, SecretsNeverInErrorMessages)
{
  std::string body = vector3_body;
  std::string good = webhook_signature (leak_secret, "1738392033",
      body.data (), body.size ());
  std::string expected_hex = good.substr (3);
  std::string tampered = body + " ";
  struct Case { const char *ts; const char *sig; std::string body; gint64 now;
    WebhookVerifyOptions opts; };
  WebhookVerifyOptions small;
  small.max_body_bytes = 10;
  const Case cases[] = {
    { "1738392033", "v0=0000", body, vector3_ts, {} },
    { "1738392033", good.c_str (), "{\"event\":\"x\"}", vector3_ts, {} },
    { "1738392033", good.c_str (), body, vector3_ts + 1000, {} },
    { "nope", good.c_str (), body, vector3_ts, {} },
    { "1738392033", nullptr, body, vector3_ts, {} },
    { "1738392033", good.c_str (), body, vector3_ts, small },
  };
  for (const Case &c : cases) {
    GError *err = nullptr;
    EXPECT_FALSE (verify (leak_secret, c.ts, c.sig, c.body, c.now, &err,
        c.opts));
    ASSERT_NE (err, nullptr);
    std::string msg = err->message;
    EXPECT_EQ (msg.find (leak_secret), std::string::npos) << msg;
    EXPECT_EQ (msg.find (expected_hex), std::string::npos) << msg;
    EXPECT_EQ (msg.find (expected_hex.substr (0, 16)), std::string::npos)
        << msg;
    g_clear_error (&err);
  }
  /* and the good one passes, so the cases above fail for their reason */
  GError *err = nullptr;
  EXPECT_TRUE (verify (leak_secret, "1738392033", good.c_str (), body,
      vector3_ts, &err));
  g_clear_error (&err);
}

/* ---------------------------------------------------------------------- */
/* parse_webhook (§2.1–§2.3)                                               */

TEST (ParseWebhook, MeetingStarted)
{
  Webhook w = parse_webhook_ok (R"({
  "event": "meeting.rtms_started",
  "event_ts": 1626230691572,
  "payload": {
    "meeting_uuid": "4444AAAiAAAAAiAiAiiAii==",
    "operator_id": "30R7kT7bTIKSNUFEuH_Qlg",
    "rtms_stream_id": "609340fb2a7946909659956c8aa9250c",
    "server_urls": "wss://127.0.0.1:443",
    "account_id": "AbC123...",
    "meeting_id": 81234567890,
    "is_original_host": true
  }
})");
  EXPECT_EQ (w.kind, Webhook::Kind::STARTED);
  EXPECT_EQ (w.event, "meeting.rtms_started");
  EXPECT_EQ (w.event_ts, G_GINT64_CONSTANT (1626230691572));
  EXPECT_EQ (w.product, Product::MEETING);
  EXPECT_EQ (w.id_key, "meeting_uuid");
  EXPECT_EQ (w.id_value, "4444AAAiAAAAAiAiAiiAii==");
  EXPECT_EQ (w.rtms_stream_id, "609340fb2a7946909659956c8aa9250c");
  EXPECT_EQ (w.server_urls_raw, "wss://127.0.0.1:443");
  EXPECT_EQ (w.signaling_url, "wss://127.0.0.1:443");
  EXPECT_FALSE (w.has_stop_reason);
  EXPECT_EQ (w.signature, "");
}

TEST (ParseWebhook, MeetingStoppedAndInterrupted)
{
  Webhook w = parse_webhook_ok (R"({
  "event": "meeting.rtms_stopped",
  "event_ts": 1626230691572,
  "payload": {
    "meeting_uuid": "4444AAAiAAAAAiAiAiiAii==",
    "rtms_stream_id": "609340fb2a7946909659956c8aa9250c",
    "stop_reason": 1
  }
})");
  EXPECT_EQ (w.kind, Webhook::Kind::STOPPED);
  EXPECT_EQ (w.product, Product::MEETING);
  EXPECT_TRUE (w.has_stop_reason);
  EXPECT_EQ (w.stop_reason, STOP_HOST_TRIGGERED);
  EXPECT_EQ (w.server_urls_raw, "");

  w = parse_webhook_ok (R"({
  "event": "meeting.rtms_interrupted",
  "event_ts": 1626230691572,
  "payload": {
    "meeting_uuid": "4444AAAiAAAAAiAiAiiAii==",
    "rtms_stream_id": "609340fb2a7946909659956c8aa9250c"
  }
})");
  EXPECT_EQ (w.kind, Webhook::Kind::INTERRUPTED);
  EXPECT_EQ (w.id_value, "4444AAAiAAAAAiAiAiiAii==");
  EXPECT_EQ (w.rtms_stream_id, "609340fb2a7946909659956c8aa9250c");
  EXPECT_FALSE (w.has_stop_reason);
}

TEST (ParseWebhook, SessionStarted)
{
  Webhook w = parse_webhook_ok (R"({
  "event": "session.rtms_started",
  "event_ts": 1626230691572,
  "payload": {
    "session_id": "4567UVWxYZABCdEfGhiJkl==",
    "session_key": "ABC36jaBI145",
    "rtms_stream_id": "609340fb2a7946909659956c8aa9250c",
    "server_urls": "wss://127.0.0.1:443"
  }
})");
  EXPECT_EQ (w.kind, Webhook::Kind::STARTED);
  EXPECT_EQ (w.product, Product::SESSION);
  EXPECT_EQ (w.id_key, "session_id");
  EXPECT_EQ (w.id_value, "4567UVWxYZABCdEfGhiJkl==");
  EXPECT_EQ (w.signaling_url, "wss://127.0.0.1:443");
}

TEST (ParseWebhook, ZccStartedAndStopped)
{
  const char *started = R"({
  "event": "contact_center.voice_rtms_started",
  "event_ts": 1738392033000,
  "payload": {
    "engagement_id": "LjjdDBo5SkGneP8qY4SvuQ",
    "rtms_stream_id": "03db704592624398931a588dd78200cb",
    "server_urls": "wss://zcc-rtms.zoom.us/signaling/xyz"
  }
})";
  Webhook w = parse_webhook_ok (started);
  EXPECT_EQ (w.kind, Webhook::Kind::STARTED);
  EXPECT_EQ (w.product, Product::CONTACT_CENTER);
  EXPECT_EQ (w.id_key, "engagement_id");
  EXPECT_EQ (w.id_value, "LjjdDBo5SkGneP8qY4SvuQ");
  EXPECT_EQ (w.rtms_stream_id, "03db704592624398931a588dd78200cb");
  EXPECT_EQ (w.event_ts, G_GINT64_CONSTANT (1738392033000));
  EXPECT_EQ (w.signaling_url, "wss://zcc-rtms.zoom.us/signaling/xyz");
  EXPECT_EQ (encode_webhook (w.event, w.event_ts, w.id_key, w.id_value,
                 w.rtms_stream_id, w.server_urls_raw, -1),
      minify (started));

  const char *stopped = R"({
  "event": "contact_center.voice_rtms_stopped",
  "event_ts": 1738392099000,
  "payload": {
    "engagement_id": "LjjdDBo5SkGneP8qY4SvuQ",
    "rtms_stream_id": "03db704592624398931a588dd78200cb",
    "stop_reason": 22
  }
})";
  w = parse_webhook_ok (stopped);
  EXPECT_EQ (w.kind, Webhook::Kind::STOPPED);
  EXPECT_EQ (w.product, Product::CONTACT_CENTER);
  EXPECT_TRUE (w.has_stop_reason);
  EXPECT_EQ (w.stop_reason, STOP_AGENT_DISCONNECTED);
  EXPECT_EQ (encode_webhook (w.event, w.event_ts, w.id_key, w.id_value,
                 w.rtms_stream_id, "", w.stop_reason),
      minify (stopped));

  w = parse_webhook_ok (R"({"event":"contact_center.voice_rtms_interrupted",
      "event_ts":1,"payload":{"engagement_id":"e","rtms_stream_id":"s",
      "server_urls":"wss://new"}})");
  EXPECT_EQ (w.kind, Webhook::Kind::INTERRUPTED);
  EXPECT_EQ (w.signaling_url, "wss://new");
}

TEST (ParseWebhook, UrlValidation)
{
  Webhook w = parse_webhook_ok (R"({ "event": "endpoint.url_validation", "event_ts": 1654503849680,
  "payload": { "plainToken": "qgg8vlvZRS6UYooatFL8Aw" } })");
  EXPECT_EQ (w.kind, Webhook::Kind::URL_VALIDATION);
  EXPECT_EQ (w.plain_token, "qgg8vlvZRS6UYooatFL8Aw");
  EXPECT_EQ (w.event_ts, G_GINT64_CONSTANT (1654503849680));

  std::string msg = parse_webhook_fails (
      R"({"event":"endpoint.url_validation","payload":{}})", ERROR_FIELD);
  EXPECT_NE (msg.find ("plainToken"), std::string::npos) << msg;
  msg = parse_webhook_fails (R"({"event":"endpoint.url_validation"})",
      ERROR_FIELD);
  EXPECT_NE (msg.find ("plainToken"), std::string::npos) << msg;
  msg = parse_webhook_fails (
      R"({"event":"endpoint.url_validation","payload":{"plainToken":5}})",
      ERROR_FIELD);
  EXPECT_NE (msg.find ("plainToken"), std::string::npos) << msg;
}

TEST (ParseWebhook, OtherProductsAndEvents)
{
  Webhook w = parse_webhook_ok (R"({"event":"webinar.rtms_started","event_ts":1,
      "payload":{"webinar_uuid":"W==","rtms_stream_id":"s","server_urls":"wss://w"}})");
  EXPECT_EQ (w.product, Product::WEBINAR);
  EXPECT_EQ (w.id_key, "webinar_uuid");
  EXPECT_EQ (w.id_value, "W==");

  w = parse_webhook_ok (R"({"event":"phone.rtms_started","event_ts":1,
      "payload":{"call_id":7123456789,"rtms_stream_id":"s","server_urls":"wss://p"}})");
  EXPECT_EQ (w.product, Product::PHONE);
  EXPECT_EQ (w.id_key, "call_id");
  EXPECT_EQ (w.id_value, "7123456789");
  EXPECT_EQ (w.kind, Webhook::Kind::STARTED);

  w = parse_webhook_ok (R"({"event":"rtms.concurrency_near_limit","event_ts":1,
      "payload":{"concurrency_limit":2000,"concurrency_number":1600,"percentage":80}})");
  EXPECT_EQ (w.kind, Webhook::Kind::OTHER);

  w = parse_webhook_ok (R"({"event":"contact_center.task_created","payload":{}})");
  EXPECT_EQ (w.kind, Webhook::Kind::OTHER);
}

TEST (ParseWebhook, PayloadObjectWrapper)
{
  /* §2.1 [C] */
  Webhook w = parse_webhook_ok (R"({"event":"meeting.rtms_started","event_ts":5,
      "payload":{"account_id":"acc","object":{"meeting_uuid":"m/+=",
      "rtms_stream_id":"s","server_urls":"wss://x","signature":"abc"}}})");
  EXPECT_EQ (w.kind, Webhook::Kind::STARTED);
  EXPECT_EQ (w.id_value, "m/+=");
  EXPECT_EQ (w.rtms_stream_id, "s");
  EXPECT_EQ (w.signaling_url, "wss://x");
  EXPECT_EQ (w.signature, "abc");
}

TEST (ParseWebhook, ServerUrlsForms)
{
  /* comma list */
  Webhook w = parse_webhook_ok (R"({"event":"meeting.rtms_started",
      "payload":{"meeting_uuid":"m","rtms_stream_id":"s",
      "server_urls":"https://a.example,wss://b.example/sig,ws://c"}})");
  EXPECT_EQ (w.server_urls_raw, "https://a.example,wss://b.example/sig,ws://c");
  EXPECT_EQ (w.signaling_url, "wss://b.example/sig");

  /* object: kept as compact JSON, `all` wins */
  w = parse_webhook_ok (R"({"event":"meeting.rtms_started",
      "payload":{"meeting_uuid":"m","rtms_stream_id":"s",
      "server_urls":{ "audio": "wss://a", "all": "wss://all" }}})");
  EXPECT_EQ (w.server_urls_raw, R"({"audio":"wss://a","all":"wss://all"})");
  EXPECT_EQ (w.signaling_url, "wss://all");
  /* the object form can be re-emitted by encode_webhook */
  std::string enc = encode_webhook (w.event, w.event_ts, w.id_key, w.id_value,
      w.rtms_stream_id, w.server_urls_raw, -1);
  Webhook again = parse_webhook_ok (enc);
  EXPECT_EQ (again.server_urls_raw, w.server_urls_raw);
  EXPECT_NE (enc.find (R"("server_urls":{"audio")"), std::string::npos) << enc;

  std::string msg = parse_webhook_fails (R"({"event":"meeting.rtms_started",
      "payload":{"meeting_uuid":"m","rtms_stream_id":"s","server_urls":42}})",
      ERROR_FIELD);
  EXPECT_NE (msg.find ("server_urls"), std::string::npos) << msg;
  msg = parse_webhook_fails (R"({"event":"meeting.rtms_started",
      "payload":{"meeting_uuid":"m","rtms_stream_id":"s","server_urls":"https://x"}})",
      ERROR_FIELD);
  EXPECT_NE (msg.find ("server_urls"), std::string::npos) << msg;
}

TEST (ParseWebhook, BadInput)
{
  parse_webhook_fails ("", ERROR_PARSE);
  parse_webhook_fails (R"({"event":"meeting.rtms_started","payload":{)",
      ERROR_PARSE);
  parse_webhook_fails ("[1,2]", ERROR_PARSE);
  parse_webhook_fails (R"({"payload":{}})", ERROR_PARSE);
  parse_webhook_fails (R"({"event":5})", ERROR_PARSE);

  struct Bad { const char *json; const char *field; };
  const Bad bad[] = {
    { R"({"event":"contact_center.voice_rtms_started","payload":{"engagement_id":"e","server_urls":"wss://x"}})",
      "rtms_stream_id" },
    { R"({"event":"contact_center.voice_rtms_started","payload":{"rtms_stream_id":"s","server_urls":"wss://x"}})",
      "engagement_id" },
    { R"({"event":"meeting.rtms_started","payload":{"rtms_stream_id":"s","server_urls":"wss://x"}})",
      "meeting_uuid" },
    { R"({"event":"contact_center.voice_rtms_started","payload":{"engagement_id":"e","rtms_stream_id":"s"}})",
      "server_urls" },
    { R"({"event":"contact_center.voice_rtms_started"})", "payload" },
    { R"({"event":"contact_center.voice_rtms_started","payload":[]})", "payload" },
    { R"({"event":"contact_center.voice_rtms_stopped","payload":{"engagement_id":"e","stop_reason":"22"}})",
      "stop_reason" },
    { R"({"event":"meeting.rtms_started","event_ts":"1","payload":{}})",
      "event_ts" },
    { R"({"event":"contact_center.voice_rtms_started","payload":{"engagement_id":"e","rtms_stream_id":5,"server_urls":"wss://x"}})",
      "rtms_stream_id" },
  };
  for (const Bad &b : bad) {
    SCOPED_TRACE (b.json);
    std::string msg = parse_webhook_fails (b.json, ERROR_FIELD);
    EXPECT_NE (msg.find (b.field), std::string::npos) << msg;
  }
}

TEST (EncodeWebhook, EscapingAndRoundTrip)
{
  std::string body = encode_webhook ("meeting.rtms_started",
      G_GINT64_CONSTANT (1626230691572), "meeting_uuid", "a\"b/+==",
      "s", "wss://x", 3);
  Webhook w = parse_webhook_ok (body);
  EXPECT_EQ (w.id_value, "a\"b/+==");
  EXPECT_EQ (w.event_ts, G_GINT64_CONSTANT (1626230691572));
  EXPECT_TRUE (w.has_stop_reason);
  EXPECT_EQ (w.stop_reason, 3);
  /* the sim signs what it sends; the host verifies it */
  std::string sig = webhook_signature ("tok", "1700000000", body.data (),
      body.size ());
  GError *err = nullptr;
  EXPECT_TRUE (verify ("tok", "1700000000", sig.c_str (), body, 1700000000,
      &err));
  g_clear_error (&err);
}
