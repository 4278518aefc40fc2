/* zoomrtms unit tests — shared helpers. */
#pragma once

#include <glib.h>
#include <gtest/gtest.h>
#include <json-glib/json-glib.h>

#include <string>

#include "rtms-auth.h"
#include "rtms-messages.h"

namespace test {

/* Compact form of @json by json-glib's generator (independent of the
 * library's writer); key order kept. */
inline std::string
minify (const std::string &json)
{
  GError *err = nullptr;
  JsonNode *node = json_from_string (json.c_str (), &err);
  if (!node) {
    ADD_FAILURE () << "bad JSON in test: " << (err ? err->message : "?");
    g_clear_error (&err);
    return std::string ();
  }
  char *s = json_to_string (node, FALSE);
  std::string out (s);
  g_free (s);
  json_node_unref (node);
  return out;
}

/* Encodes any decoded message with the matching encoder. */
inline std::string
encode_message (const rtms::Message &m)
{
  using K = rtms::Message::Kind;
  switch (m.kind) {
    case K::SIGNALING_HANDSHAKE_REQ:
      return rtms::encode (m.sig_req);
    case K::SIGNALING_HANDSHAKE_RESP:
      return rtms::encode (m.sig_resp);
    case K::DATA_HANDSHAKE_REQ:
      return rtms::encode_data_handshake_req (m.data_req_id, m.media_type,
          m.payload_encryption, m.media_params);
    case K::DATA_HANDSHAKE_RESP:
      return rtms::encode_data_handshake_resp (m.status_code, m.reason,
          m.payload_encrypted, m.media_params);
    case K::EVENT_SUBSCRIPTION:
      return rtms::encode (m.subscription);
    case K::EVENT_UPDATE:
      return rtms::encode (m.event);
    case K::CLIENT_READY_ACK:
      return rtms::encode (m.ready);
    case K::STREAM_STATE_UPDATE:
      return rtms::encode (m.stream_state);
    case K::SESSION_STATE_UPDATE:
      return rtms::encode (m.session_state);
    case K::SESSION_STATE_REQ:
      return rtms::encode (m.session_req);
    case K::SESSION_STATE_RESP:
      return rtms::encode (m.session_resp);
    case K::KEEP_ALIVE_REQ:
      return rtms::encode_keep_alive (12, m.keep_alive.timestamp);
    case K::KEEP_ALIVE_RESP:
      return rtms::encode_keep_alive (13, m.keep_alive.timestamp);
    case K::AUDIO:
      return rtms::encode (m.audio);
    case K::TRANSCRIPT:
      return rtms::encode (m.transcript);
    case K::STREAM_STATE_REQ:
      return rtms::encode (m.stream_req);
    case K::STREAM_STATE_RESP:
      return rtms::encode (m.stream_resp);
    case K::STREAM_CLOSE_REQ:
      return rtms::encode (m.close_req);
    case K::STREAM_CLOSE_RESP:
      return rtms::encode (m.close_resp);
    case K::UNKNOWN:
      break;
  }
  return std::string ();
}

/* Parses @json, asserting success. */
inline rtms::Message
parse_ok (const std::string &json)
{
  rtms::Message m;
  GError *err = nullptr;
  bool ok = rtms::parse_message (json.data (), json.size (), &m, &err);
  EXPECT_TRUE (ok) << (err ? err->message : "") << "\n  in: " << json;
  g_clear_error (&err);
  return m;
}

/* Parses @json expecting failure with @code; returns the error message. */
inline std::string
parse_fails (const std::string &json, int code)
{
  rtms::Message m;
  GError *err = nullptr;
  bool ok = rtms::parse_message (json.data (), json.size (), &m, &err);
  EXPECT_FALSE (ok) << "accepted: " << json;
  std::string msg;
  if (err) {
    EXPECT_TRUE (g_error_matches (err, RTMS_ERROR, code))
        << "got code " << err->code << " (" << err->message << ") for "
        << json;
    msg = err->message;
    g_error_free (err);
  } else if (!ok) {
    ADD_FAILURE () << "no GError set for " << json;
  }
  return msg;
}

/* Encode → parse → encode is stable, and the re-parsed message has the
 * same encoding (field-level equality through the canonical form). */
inline void
expect_round_trip (const rtms::Message &m)
{
  std::string once = encode_message (m);
  ASSERT_FALSE (once.empty ());
  rtms::Message again = parse_ok (once);
  EXPECT_EQ (again.kind, m.kind);
  EXPECT_EQ (again.msg_type, m.msg_type);
  EXPECT_EQ (encode_message (again), once);
}

} // namespace test
