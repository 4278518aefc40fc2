/* zoomrtms unit tests — rtms-messages: every JSON example of
 * docs/protocol.md §3–§4 parsed field by field, re-encoded and re-parsed;
 * the §11 tolerances; bad input; base64; helpers. */
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "rtms-json-private.h"
#include "test-util.h"

using namespace rtms;
using test::expect_round_trip;
using test::minify;
using test::parse_fails;
using test::parse_ok;
using K = Message::Kind;

/* ---------------------------------------------------------------------- */
/* §3.3 msg 1                                                              */

TEST (Msg1, MeetingExample)
{
  const char *ex = R"({ "msg_type": 1, "protocol_version": 1, "sequence": 0,
  "meeting_uuid": "4444AAAiAAAAAiAiAiiAii==",
  "rtms_stream_id": "609340fb2a7946909659956c8aa9250c",
  "signature": "4f1e…64 hex chars…",
  "buffer_data": true })";
  Message m = parse_ok (ex);
  ASSERT_EQ (m.kind, K::SIGNALING_HANDSHAKE_REQ);
  EXPECT_EQ (m.msg_type, 1);
  EXPECT_EQ (m.sig_req.id.protocol_version, 1);
  EXPECT_EQ (m.sig_req.id.sequence, 0);
  EXPECT_EQ (m.sig_req.id.id_key, "meeting_uuid");
  EXPECT_EQ (m.sig_req.id.id_value, "4444AAAiAAAAAiAiAiiAii==");
  EXPECT_EQ (m.sig_req.id.rtms_stream_id, "609340fb2a7946909659956c8aa9250c");
  EXPECT_EQ (m.sig_req.id.signature, "4f1e…64 hex chars…");
  ASSERT_TRUE (m.sig_req.buffer_data.has_value ());
  EXPECT_TRUE (*m.sig_req.buffer_data);
  EXPECT_EQ (test::encode_message (m), minify (ex));
  expect_round_trip (m);
}

TEST (Msg1, ZccExample)
{
  const char *ex = R"({ "msg_type": 1, "protocol_version": 1, "sequence": 0,
  "engagement_id": "LjjdDBo5SkGneP8qY4SvuQ",
  "rtms_stream_id": "03db704592624398931a588dd78200cb",
  "signature": "9a0c…64 hex chars…" })";
  Message m = parse_ok (ex);
  ASSERT_EQ (m.kind, K::SIGNALING_HANDSHAKE_REQ);
  EXPECT_EQ (m.sig_req.id.id_key, "engagement_id");
  EXPECT_EQ (m.sig_req.id.id_value, "LjjdDBo5SkGneP8qY4SvuQ");
  EXPECT_EQ (m.sig_req.id.rtms_stream_id, "03db704592624398931a588dd78200cb");
  EXPECT_EQ (m.sig_req.id.signature, "9a0c…64 hex chars…");
  EXPECT_FALSE (m.sig_req.buffer_data.has_value ());
  EXPECT_EQ (test::encode_message (m), minify (ex));
  expect_round_trip (m);
}

TEST (Msg1, EveryIdKey)
{
  for (const char *key : { "meeting_uuid", "webinar_uuid", "session_id",
           "engagement_id", "call_id" }) {
    std::string json = std::string (R"({"msg_type":1,")") + key
        + R"(":"id/+=","rtms_stream_id":"s","signature":"x"})";
    Message m = parse_ok (json);
    EXPECT_EQ (m.sig_req.id.id_key, key);
    EXPECT_EQ (m.sig_req.id.id_value, "id/+=");
    Product p;
    EXPECT_TRUE (product_from_id_key (key, &p));
    EXPECT_STREQ (product_id_key (p), key);
  }
  EXPECT_FALSE (product_from_id_key ("meeting_id", nullptr));
}

TEST (Msg1, MissingFields)
{
  std::string msg = parse_fails (
      R"({"msg_type":1,"engagement_id":"e","signature":"x"})", ERROR_FIELD);
  EXPECT_NE (msg.find ("rtms_stream_id"), std::string::npos) << msg;
  msg = parse_fails (
      R"({"msg_type":1,"rtms_stream_id":"s","signature":"x"})", ERROR_FIELD);
  EXPECT_NE (msg.find ("engagement_id"), std::string::npos) << msg;
  msg = parse_fails (
      R"({"msg_type":1,"engagement_id":"e","rtms_stream_id":"s"})", ERROR_FIELD);
  EXPECT_NE (msg.find ("signature"), std::string::npos) << msg;
  msg = parse_fails (R"({"msg_type":1,"engagement_id":"e","rtms_stream_id":"s",
      "signature":"x","buffer_data":"yes"})", ERROR_FIELD);
  EXPECT_NE (msg.find ("buffer_data"), std::string::npos) << msg;
}

/* ---------------------------------------------------------------------- */
/* §3.4 msg 2                                                              */

TEST (Msg2, SuccessExample)
{
  const char *ex = R"({
  "msg_type": 2,
  "protocol_version": 1,
  "sequence": 0,
  "status_code": 0,
  "reason": "",
  "media_server": {
    "server_urls": {
      "audio": "wss://rtms-sjc1.zoom.us/audio/…",
      "video": "wss://rtms-sjc1.zoom.us/video/…",
      "transcript": "wss://rtms-sjc1.zoom.us/transcript/…",
      "all": "wss://rtms-sjc1.zoom.us/all/…"
    }
  }
})";
  Message m = parse_ok (ex);
  ASSERT_EQ (m.kind, K::SIGNALING_HANDSHAKE_RESP);
  EXPECT_EQ (m.sig_resp.protocol_version, 1);
  EXPECT_EQ (m.sig_resp.sequence, 0);
  EXPECT_EQ (m.sig_resp.status_code, 0);
  EXPECT_EQ (m.sig_resp.reason, "");
  EXPECT_EQ (m.sig_resp.media_server.audio, "wss://rtms-sjc1.zoom.us/audio/…");
  EXPECT_EQ (m.sig_resp.media_server.video, "wss://rtms-sjc1.zoom.us/video/…");
  EXPECT_EQ (m.sig_resp.media_server.transcript,
      "wss://rtms-sjc1.zoom.us/transcript/…");
  EXPECT_EQ (m.sig_resp.media_server.all, "wss://rtms-sjc1.zoom.us/all/…");
  /* literal UTF-8, no \u escapes */
  EXPECT_EQ (test::encode_message (m), minify (ex));
  EXPECT_EQ (test::encode_message (m).find ("\\u"), std::string::npos);
  expect_round_trip (m);
}

TEST (Msg2, FailureExample)
{
  const char *ex = R"({ "msg_type": 2, "protocol_version": 1, "sequence": 0,
  "status_code": 3, "reason": "invalid signature" })";
  Message m = parse_ok (ex);
  ASSERT_EQ (m.kind, K::SIGNALING_HANDSHAKE_RESP);
  EXPECT_EQ (m.sig_resp.status_code, 3);
  EXPECT_EQ (m.sig_resp.reason, "invalid signature");
  EXPECT_TRUE (m.sig_resp.media_server.all.empty ());
  EXPECT_EQ (test::encode_message (m), minify (ex));
  expect_round_trip (m);
}

TEST (Msg2, ExtraFieldsIgnoredAndTypesChecked)
{
  Message m = parse_ok (R"({"msg_type":2,"status_code":0,"media_server":{
      "server_urls":{"audio":"wss://a","all":"wss://b"},"srtp_keys":{"x":1}},
      "datacenter_region":"SJC"})");
  EXPECT_EQ (m.sig_resp.media_server.audio, "wss://a");
  EXPECT_EQ (m.sig_resp.media_server.all, "wss://b");
  std::string msg = parse_fails (R"({"msg_type":2,"status_code":"0"})",
      ERROR_FIELD);
  EXPECT_NE (msg.find ("status_code"), std::string::npos) << msg;
  msg = parse_fails (R"({"msg_type":2,"reason":""})", ERROR_FIELD);
  EXPECT_NE (msg.find ("status_code"), std::string::npos) << msg;
  msg = parse_fails (R"({"msg_type":2,"status_code":0,"media_server":{
      "server_urls":{"audio":5}}})", ERROR_FIELD);
  EXPECT_NE (msg.find ("media_server.server_urls.audio"), std::string::npos)
      << msg;
}

/* ---------------------------------------------------------------------- */
/* §3.5 msg 5                                                              */

TEST (Msg5, Example)
{
  const char *ex = R"({ "msg_type": 5,
  "events": [ { "event_type": 2, "subscribe": true },
              { "event_type": 3, "subscribe": true },
              { "event_type": 4, "subscribe": true } ] })";
  Message m = parse_ok (ex);
  ASSERT_EQ (m.kind, K::EVENT_SUBSCRIPTION);
  ASSERT_EQ (m.subscription.events.size (), 3u);
  for (int i = 0; i < 3; i++) {
    EXPECT_EQ (m.subscription.events[i].event_type, i + 2);
    EXPECT_TRUE (m.subscription.events[i].subscribe);
  }
  EXPECT_EQ (test::encode_message (m), minify (ex));
  expect_round_trip (m);

  EventSubscription unsub;
  unsub.events.push_back ({ 8, false });
  EXPECT_EQ (encode (unsub),
      R"({"msg_type":5,"events":[{"event_type":8,"subscribe":false}]})");
  EventSubscription none;
  EXPECT_EQ (encode (none), R"({"msg_type":5,"events":[]})");
}

TEST (Msg5, IntArrayVariantRejected)
{
  /* ZCC-seed a6f657a's undocumented `events: [1,2,3]` */
  std::string msg = parse_fails (R"({"msg_type":5,"events":[1,2,3]})",
      ERROR_FIELD);
  EXPECT_NE (msg.find ("events"), std::string::npos) << msg;
}

/* ---------------------------------------------------------------------- */
/* §3.6 msg 6                                                              */

TEST (Msg6, FirstPacketTimestamp)
{
  const char *ex =
      R"({ "msg_type": 6, "event": { "event_type": 1, "timestamp": 1727384349123 } })";
  Message m = parse_ok (ex);
  ASSERT_EQ (m.kind, K::EVENT_UPDATE);
  EXPECT_EQ (m.event.event_type, 1);
  EXPECT_EQ (m.event.timestamp, G_GINT64_CONSTANT (1727384349123));
  EXPECT_FALSE (m.event.participant_info.has_value ());
  EXPECT_EQ (m.event.raw_event_json,
      R"({"event_type":1,"timestamp":1727384349123})");
  EXPECT_EQ (test::encode_message (m), minify (ex));
  expect_round_trip (m);
}

TEST (Msg6, ActiveSpeaker)
{
  const char *ex = R"({ "msg_type": 6, "event": { "event_type": 2, "timestamp": 1727384349123,
                            "user_id": 16778240, "user_name": "Jane Doe" } })";
  Message m = parse_ok (ex);
  EXPECT_EQ (m.event.event_type, 2);
  EXPECT_EQ (m.event.user_id, "16778240");
  EXPECT_EQ (m.event.user_name, "Jane Doe");
  EXPECT_EQ (test::encode_message (m), minify (ex));
  expect_round_trip (m);
}

TEST (Msg6, ParticipantJoinLeave)
{
  const char *join = R"({ "msg_type": 6, "event": { "event_type": 3, "timestamp": 1727384349123,
    "participants": [ { "user_id": 16778240, "user_name": "Jane Doe" },
                      { "user_id": 16779264, "user_name": "John Smith" } ] } })";
  Message m = parse_ok (join);
  EXPECT_EQ (m.event.event_type, 3);
  ASSERT_EQ (m.event.participants.size (), 2u);
  EXPECT_EQ (m.event.participants[0].user_id, "16778240");
  EXPECT_EQ (m.event.participants[0].user_name, "Jane Doe");
  EXPECT_EQ (m.event.participants[1].user_id, "16779264");
  EXPECT_EQ (m.event.participants[1].user_name, "John Smith");
  EXPECT_EQ (test::encode_message (m), minify (join));
  expect_round_trip (m);

  const char *leave = R"({ "msg_type": 6, "event": { "event_type": 4, "timestamp": 1727384399123,
    "participants": [ { "user_id": 16779264 } ] } })";
  m = parse_ok (leave);
  EXPECT_EQ (m.event.event_type, 4);
  EXPECT_EQ (m.event.timestamp, G_GINT64_CONSTANT (1727384399123));
  ASSERT_EQ (m.event.participants.size (), 1u);
  EXPECT_EQ (m.event.participants[0].user_id, "16779264");
  EXPECT_EQ (m.event.participants[0].user_name, "");
  EXPECT_EQ (test::encode_message (m), minify (leave));
  expect_round_trip (m);
}

TEST (Msg6, MediaConnectionInterrupted)
{
  const char *ex =
      R"({ "msg_type": 6, "event": { "event_type": 7, "timestamp": 1727384399123 } })";
  Message m = parse_ok (ex);
  EXPECT_EQ (m.event.event_type, EVENT_MEDIA_CONNECTION_INTERRUPTED);
  EXPECT_EQ (test::encode_message (m), minify (ex));
}

static const char *zcc_event_8 = R"({
  "msg_type": 6,
  "event": {
    "event_type": 8,
    "event_ts": 1727384349123,
    "participant_info": {
      "channel_id": "123abc",
      "participant_mode": "caller",
      "queue_id": "xqJE_cgERLyAJHYYL5LLeg",
      "queue_name": "My Queue",
      "account_id": "parent-account-id",
      "division_id": "division-id",
      "phone_number": "+18005550101",
      "user_id": "customer-contact-id",
      "display_name": "Jane Doe"
    }
  }
})";

TEST (Msg6, ZccConsumerAnswered)
{
  Message m = parse_ok (zcc_event_8);
  ASSERT_EQ (m.kind, K::EVENT_UPDATE);
  EXPECT_EQ (m.event.event_type, ZCC_CONSUMER_ANSWERED);
  EXPECT_EQ (m.event.timestamp, G_GINT64_CONSTANT (1727384349123));
  ASSERT_TRUE (m.event.participant_info.has_value ());
  EXPECT_FALSE (m.event.misspelled_participant_info);
  const ParticipantInfo &pi = *m.event.participant_info;
  EXPECT_EQ (pi.channel_id, "123abc");
  EXPECT_EQ (pi.participant_mode, "caller");
  EXPECT_EQ (pi.queue_id, "xqJE_cgERLyAJHYYL5LLeg");
  EXPECT_EQ (pi.queue_name, "My Queue");
  EXPECT_EQ (pi.account_id, "parent-account-id");
  EXPECT_EQ (pi.division_id, "division-id");
  EXPECT_EQ (pi.phone_number, "+18005550101");
  EXPECT_EQ (pi.user_id, "customer-contact-id");
  EXPECT_EQ (pi.display_name, "Jane Doe");
  EXPECT_EQ (test::encode_message (m), minify (zcc_event_8));
  EXPECT_EQ (m.event.raw_event_json,
      minify (zcc_event_8).substr (strlen (R"({"msg_type":6,"event":)"),
          m.event.raw_event_json.size ()));
  expect_round_trip (m);
}

TEST (Msg6, ZccUserAnswered)
{
  const char *ex = R"({ "msg_type": 6,
  "event": { "event_type": 10, "event_ts": 1727384349123,
    "participant_info": { "channel_id": "456edf", "participant_mode": "callee",
      "queue_id": "ddJE_cgERLyAJCYYL5L4ce", "queue_name": "ABC Queue",
      "user_id": "u2hfFEIO3gQ2i-WjoGEA72dh", "display_name": "TOM AA" } } })";
  Message m = parse_ok (ex);
  EXPECT_EQ (m.event.event_type, ZCC_USER_ANSWERED);
  ASSERT_TRUE (m.event.participant_info.has_value ());
  EXPECT_EQ (m.event.participant_info->channel_id, "456edf");
  EXPECT_EQ (m.event.participant_info->participant_mode, "callee");
  EXPECT_EQ (m.event.participant_info->queue_id, "ddJE_cgERLyAJCYYL5L4ce");
  EXPECT_EQ (m.event.participant_info->queue_name, "ABC Queue");
  EXPECT_EQ (m.event.participant_info->user_id, "u2hfFEIO3gQ2i-WjoGEA72dh");
  EXPECT_EQ (m.event.participant_info->display_name, "TOM AA");
  EXPECT_EQ (m.event.participant_info->account_id, "");
  EXPECT_EQ (test::encode_message (m), minify (ex));
  expect_round_trip (m);
}

TEST (Msg6, MisspelledParticipantInfo)
{
  /* §3.6.2 [C], §11 #2: `paticipant_info` */
  std::string json = zcc_event_8;
  json.replace (json.find ("participant_info"), strlen ("participant_info"),
      "paticipant_info");
  Message m = parse_ok (json);
  ASSERT_TRUE (m.event.participant_info.has_value ());
  EXPECT_TRUE (m.event.misspelled_participant_info);
  EXPECT_EQ (m.event.participant_info->channel_id, "123abc");
  EXPECT_EQ (m.event.participant_info->display_name, "Jane Doe");
  /* the encoder keeps the spelling it was given */
  EXPECT_EQ (test::encode_message (m), minify (json));
  expect_round_trip (m);
}

TEST (Msg6, TimestampOrEventTs)
{
  Message a = parse_ok (
      R"({"msg_type":6,"event":{"event_type":2,"event_ts":1727384349999}})");
  EXPECT_EQ (a.event.timestamp, G_GINT64_CONSTANT (1727384349999));
  Message b = parse_ok (
      R"({"msg_type":6,"event":{"event_type":2,"timestamp":1727384349888}})");
  EXPECT_EQ (b.event.timestamp, G_GINT64_CONSTANT (1727384349888));
  Message c = parse_ok (
      R"({"msg_type":6,"event":{"event_type":2}})");
  EXPECT_EQ (c.event.timestamp, 0);
  parse_fails (R"({"msg_type":6,"event":{"event_type":2,"event_ts":"1"}})",
      ERROR_FIELD);
}

TEST (Msg6, IntegerChannelAndUserIds)
{
  /* §11 #7: channel_id may be an int in the field table */
  Message m = parse_ok (R"({"msg_type":6,"event":{"event_type":9,
      "event_ts":1,"participant_info":{"channel_id":123,"user_id":42}}})");
  ASSERT_TRUE (m.event.participant_info.has_value ());
  EXPECT_EQ (m.event.participant_info->channel_id, "123");
  EXPECT_EQ (m.event.participant_info->user_id, "42");
}

TEST (Msg6, BadShapes)
{
  std::string msg = parse_fails (R"({"msg_type":6})", ERROR_FIELD);
  EXPECT_NE (msg.find ("event"), std::string::npos) << msg;
  msg = parse_fails (R"({"msg_type":6,"event":{"timestamp":1}})",
      ERROR_FIELD);
  EXPECT_NE (msg.find ("event.event_type"), std::string::npos) << msg;
  msg = parse_fails (R"({"msg_type":6,"event":{"event_type":"CONSUMER_ANSWERED"}})",
      ERROR_FIELD);
  EXPECT_NE (msg.find ("event_type"), std::string::npos) << msg;
  msg = parse_fails (R"({"msg_type":6,"event":{"event_type":3,
      "participants":[{"user_id":true}]}})", ERROR_FIELD);
  EXPECT_NE (msg.find ("user_id"), std::string::npos) << msg;
  msg = parse_fails (R"({"msg_type":6,"event":{"event_type":8,
      "participant_info":{"participant_mode":1}}})", ERROR_FIELD);
  EXPECT_NE (msg.find ("participant_info.participant_mode"),
      std::string::npos) << msg;
}

/* ---------------------------------------------------------------------- */
/* §3.7–§3.9 msg 7–13, 19–22                                               */

struct Example
{
  const char *json;
  K kind;
};

TEST (StateMessages, ExamplesRoundTripExactly)
{
  const Example examples[] = {
    { R"({ "msg_type": 7, "rtms_stream_id": "03db704592624398931a588dd78200cb" })",
      K::CLIENT_READY_ACK },
    { R"({ "msg_type": 8, "state": 4, "reason": 6, "timestamp": 1727384349123 })",
      K::STREAM_STATE_UPDATE },
    { R"({ "msg_type": 9, "state": 2, "stop_reason": 0, "timestamp": 1727384349123,
  "rtms_session_id": "a1b2c3d4e5" })", K::SESSION_STATE_UPDATE },
    { R"({ "msg_type": 10, "rtms_session_id": "a1b2c3d4e5" })",
      K::SESSION_STATE_REQ },
    { R"({ "msg_type": 11, "rtms_session_id": "a1b2c3d4e5", "state": 2, "timestamp": 1727384349123 })",
      K::SESSION_STATE_RESP },
    { R"({ "msg_type": 19, "rtms_stream_id": "756FF58A-6332-6ECA-E4AE-21F2ABDCB485" })",
      K::STREAM_STATE_REQ },
    { R"({ "msg_type": 20, "state": 1, "rtms_stream_id": "756FF58A-6332-6ECA-E4AE-21F2ABDCB485",
  "timestamp": 1694204592 })", K::STREAM_STATE_RESP },
    { R"({ "msg_type": 21, "rtms_stream_id": "609340fb2a7946909659956c8aa9250c" })",
      K::STREAM_CLOSE_REQ },
    { R"({ "msg_type": 22, "rtms_stream_id": "609340fb2a7946909659956c8aa9250c",
  "status_code": 0, "reason": "" })", K::STREAM_CLOSE_RESP },
    { R"({ "msg_type": 12, "timestamp": 1727384349123 })", K::KEEP_ALIVE_REQ },
    { R"({ "msg_type": 13, "timestamp": 1727384349123 })", K::KEEP_ALIVE_RESP },
  };
  for (const Example &ex : examples) {
    SCOPED_TRACE (ex.json);
    Message m = parse_ok (ex.json);
    EXPECT_EQ (m.kind, ex.kind);
    EXPECT_EQ (test::encode_message (m), minify (ex.json));
    expect_round_trip (m);
  }
}

TEST (StateMessages, Fields)
{
  Message m = parse_ok (R"({ "msg_type": 7, "rtms_stream_id": "03db" })");
  EXPECT_EQ (m.ready.rtms_stream_id, "03db");

  m = parse_ok (R"({ "msg_type": 8, "state": 4, "reason": 6, "timestamp": 1727384349123 })");
  EXPECT_EQ (m.stream_state.state, STREAM_TERMINATED);
  EXPECT_EQ (m.stream_state.reason, STOP_MEETING_ENDED);
  EXPECT_EQ (m.stream_state.timestamp, G_GINT64_CONSTANT (1727384349123));
  EXPECT_EQ (m.stream_state.rtms_stream_id, "");
  m = parse_ok (R"({"msg_type":8,"state":2,"reason":14,"timestamp":1,"rtms_stream_id":"s"})");
  EXPECT_EQ (m.stream_state.rtms_stream_id, "s");
  EXPECT_EQ (m.stream_state.reason, 14);

  m = parse_ok (R"({ "msg_type": 9, "state": 2, "stop_reason": 0, "timestamp": 1727384349123,
  "rtms_session_id": "a1b2c3d4e5" })");
  EXPECT_EQ (m.session_state.state, SESSION_STARTED);
  EXPECT_EQ (m.session_state.stop_reason, 0);
  EXPECT_EQ (m.session_state.timestamp, G_GINT64_CONSTANT (1727384349123));
  EXPECT_EQ (m.session_state.rtms_session_id, "a1b2c3d4e5");

  m = parse_ok (R"({ "msg_type": 10, "rtms_session_id": "a1b2c3d4e5" })");
  EXPECT_EQ (m.session_req.rtms_session_id, "a1b2c3d4e5");
  m = parse_ok (R"({ "msg_type": 11, "rtms_session_id": "a1", "state": 3, "timestamp": 5 })");
  EXPECT_EQ (m.session_resp.rtms_session_id, "a1");
  EXPECT_EQ (m.session_resp.state, 3);
  EXPECT_EQ (m.session_resp.timestamp, 5);

  m = parse_ok (R"({ "msg_type": 19, "rtms_stream_id": "756F", "timestamp": 77 })");
  EXPECT_EQ (m.stream_req.rtms_stream_id, "756F");
  EXPECT_EQ (m.stream_req.timestamp, 77);
  m = parse_ok (R"({ "msg_type": 20, "state": 1, "rtms_stream_id": "756F",
      "timestamp": 1694204592 })");
  EXPECT_EQ (m.stream_resp.state, 1);
  EXPECT_EQ (m.stream_resp.rtms_stream_id, "756F");
  EXPECT_EQ (m.stream_resp.timestamp, 1694204592); /* not normalised */

  m = parse_ok (R"({ "msg_type": 21, "rtms_stream_id": "6093" })");
  EXPECT_EQ (m.close_req.rtms_stream_id, "6093");
  m = parse_ok (R"({ "msg_type": 22, "rtms_stream_id": "6093",
      "status_code": 2, "reason": "nope" })");
  EXPECT_EQ (m.close_resp.rtms_stream_id, "6093");
  EXPECT_EQ (m.close_resp.status_code, 2);
  EXPECT_EQ (m.close_resp.reason, "nope");

  m = parse_ok (R"({ "msg_type": 12, "timestamp": 1727384349123 })");
  EXPECT_EQ (m.keep_alive.timestamp, G_GINT64_CONSTANT (1727384349123));
  EXPECT_EQ (encode_keep_alive (13, m.keep_alive.timestamp),
      R"({"msg_type":13,"timestamp":1727384349123})");
}

TEST (StateMessages, StopReasonOrReason)
{
  /* §3.8 [C]: msg 9 `reason` in the old field table */
  Message m = parse_ok (R"({"msg_type":9,"state":5,"reason":21,"timestamp":1})");
  EXPECT_EQ (m.session_state.stop_reason, STOP_CUSTOMER_DISCONNECTED);
  m = parse_ok (R"({"msg_type":9,"state":5,"stop_reason":22,"timestamp":1})");
  EXPECT_EQ (m.session_state.stop_reason, STOP_AGENT_DISCONNECTED);
  /* re-encoded with the documented key */
  EXPECT_EQ (test::encode_message (m),
      R"({"msg_type":9,"state":5,"stop_reason":22,"timestamp":1})");
}

TEST (StateMessages, WrongTypesNameTheField)
{
  struct Bad { const char *json; const char *field; };
  const Bad bad[] = {
    { R"({"msg_type":8,"state":"4"})", "state" },
    { R"({"msg_type":8,"state":4,"reason":"6"})", "reason" },
    { R"({"msg_type":8,"state":4,"timestamp":"123"})", "timestamp" },
    { R"({"msg_type":9,"state":5,"stop_reason":"x"})", "stop_reason" },
    { R"({"msg_type":12,"timestamp":"123"})", "timestamp" },
    { R"({"msg_type":12})", "timestamp" },
    { R"({"msg_type":13,"timestamp":1.5})", "timestamp" },
    { R"({"msg_type":7})", "rtms_stream_id" },
    { R"({"msg_type":7,"rtms_stream_id":7})", "rtms_stream_id" },
    { R"({"msg_type":22,"status_code":true})", "status_code" },
    { R"({"msg_type":20,"state":4294967296})", "state" },
    { R"({"msg_type":"14"})", "msg_type" },
    { R"({"msg_type":14.0})", "msg_type" },
  };
  for (const Bad &b : bad) {
    SCOPED_TRACE (b.json);
    std::string msg = parse_fails (b.json, ERROR_FIELD);
    EXPECT_NE (msg.find (std::string ("'") + b.field), std::string::npos)
        << msg;
  }
}

/* ---------------------------------------------------------------------- */
/* §4.2 msg 3, §4.3 msg 4                                                  */

TEST (Msg3, ZccExample)
{
  const char *ex = R"({
  "msg_type": 3,
  "protocol_version": 1,
  "engagement_id": "LjjdDBo5SkGneP8qY4SvuQ",
  "rtms_stream_id": "03db704592624398931a588dd78200cb",
  "signature": "788811621fd8bf64965c269692849a4ab4476c3f9e67d63e477cdf1f07e79b4d",
  "media_type": 32,
  "payload_encryption": false,
  "media_params": {
    "audio": { "content_type": 2, "sample_rate": 1, "channel": 1, "codec": 1, "data_opt": 1, "send_rate": 20 },
    "transcript": { "content_type": 5, "src_language": 9, "enable_lid": true }
  }
})";
  Message m = parse_ok (ex);
  ASSERT_EQ (m.kind, K::DATA_HANDSHAKE_REQ);
  EXPECT_EQ (m.data_req_id.protocol_version, 1);
  EXPECT_EQ (m.data_req_id.sequence, 0); /* absent → 0 */
  EXPECT_EQ (m.data_req_id.id_key, "engagement_id");
  EXPECT_EQ (m.data_req_id.id_value, "LjjdDBo5SkGneP8qY4SvuQ");
  EXPECT_EQ (m.data_req_id.rtms_stream_id, "03db704592624398931a588dd78200cb");
  EXPECT_EQ (m.data_req_id.signature,
      "788811621fd8bf64965c269692849a4ab4476c3f9e67d63e477cdf1f07e79b4d");
  EXPECT_EQ (m.media_type, MEDIA_ALL);
  EXPECT_FALSE (m.payload_encryption);
  ASSERT_TRUE (m.media_params.audio.has_value ());
  const AudioParams &a = *m.media_params.audio;
  EXPECT_EQ (a.content_type, CONTENT_RAW_AUDIO);
  EXPECT_EQ (a.sample_rate, SR_16K);
  EXPECT_EQ (a.channel, CHANNEL_MONO);
  EXPECT_EQ (a.codec, CODEC_L16);
  EXPECT_EQ (a.data_opt, DATA_OPT_AUDIO_MIXED_STREAM);
  EXPECT_EQ (a.send_rate, 20);
  EXPECT_EQ (a.frame_size, 0);
  ASSERT_TRUE (m.media_params.transcript.has_value ());
  const TranscriptParams &t = *m.media_params.transcript;
  EXPECT_EQ (t.content_type, CONTENT_TEXT);
  EXPECT_TRUE (t.has_src_language);
  EXPECT_EQ (t.src_language, 9);
  EXPECT_TRUE (t.has_enable_lid);
  EXPECT_TRUE (t.enable_lid);
  /* our encoder always sends sequence (ZCC-seed omits it) */
  std::string enc = test::encode_message (m);
  std::string expect = minify (ex);
  expect.insert (expect.find (R"(,"engagement_id")"), R"(,"sequence":0)");
  EXPECT_EQ (enc, expect);
  expect_round_trip (m);
  Message again = parse_ok (enc);
  EXPECT_TRUE (*again.media_params.audio == a);
  EXPECT_TRUE (*again.media_params.transcript == t);
}

TEST (Msg3, MeetingExample)
{
  const char *ex = R"({
  "msg_type": 3, "protocol_version": 1, "sequence": 0,
  "meeting_uuid": "4444AAAiAAAAAiAiAiiAii==",
  "rtms_stream_id": "609340fb2a7946909659956c8aa9250c",
  "signature": "…",
  "media_type": 1,
  "payload_encryption": false,
  "media_params": {
    "audio": { "content_type": 2, "sample_rate": 1, "channel": 1, "codec": 1,
               "data_opt": 2, "send_rate": 100 }
  }
})";
  Message m = parse_ok (ex);
  ASSERT_EQ (m.kind, K::DATA_HANDSHAKE_REQ);
  EXPECT_EQ (m.data_req_id.id_key, "meeting_uuid");
  EXPECT_EQ (m.data_req_id.id_value, "4444AAAiAAAAAiAiAiiAii==");
  EXPECT_EQ (m.media_type, MEDIA_AUDIO);
  ASSERT_TRUE (m.media_params.audio.has_value ());
  EXPECT_EQ (m.media_params.audio->data_opt, DATA_OPT_AUDIO_MULTI_STREAMS);
  EXPECT_EQ (m.media_params.audio->send_rate, 100);
  EXPECT_FALSE (m.media_params.transcript.has_value ());
  EXPECT_EQ (test::encode_message (m), minify (ex));
  expect_round_trip (m);
}

TEST (Msg3, OpusExample)
{
  const char *ex = R"({ "msg_type": 3, "protocol_version": 1, "sequence": 0,
  "meeting_uuid": "…", "rtms_stream_id": "…", "signature": "…",
  "media_type": 1,
  "media_params": { "audio": { "content_type": 2, "codec": 4, "sample_rate": 3,
                               "channel": 2, "data_opt": 2, "send_rate": 20, "frame_size": 960 } } })";
  Message m = parse_ok (ex);
  ASSERT_EQ (m.kind, K::DATA_HANDSHAKE_REQ);
  EXPECT_FALSE (m.payload_encryption);
  const AudioParams &a = *m.media_params.audio;
  EXPECT_EQ (a.codec, CODEC_OPUS);
  EXPECT_EQ (a.sample_rate, SR_48K);
  EXPECT_EQ (a.channel, CHANNEL_STEREO);
  EXPECT_EQ (a.frame_size, 960);
  std::string enc = test::encode_message (m);
  EXPECT_NE (enc.find (R"("frame_size":960)"), std::string::npos) << enc;
  expect_round_trip (m);
}

TEST (Msg3, BadFields)
{
  std::string msg = parse_fails (R"({"msg_type":3,"engagement_id":"e",
      "rtms_stream_id":"s","signature":"x"})", ERROR_FIELD);
  EXPECT_NE (msg.find ("media_type"), std::string::npos) << msg;
  msg = parse_fails (R"({"msg_type":3,"engagement_id":"e","rtms_stream_id":"s",
      "signature":"x","media_type":32,"media_params":{"audio":{"sample_rate":"16000"}}})",
      ERROR_FIELD);
  EXPECT_NE (msg.find ("media_params.audio.sample_rate"), std::string::npos)
      << msg;
  msg = parse_fails (R"({"msg_type":3,"engagement_id":"e","rtms_stream_id":"s",
      "signature":"x","media_type":32,"media_params":{"transcript":{"enable_lid":1}}})",
      ERROR_FIELD);
  EXPECT_NE (msg.find ("media_params.transcript.enable_lid"),
      std::string::npos) << msg;
  msg = parse_fails (R"({"msg_type":3,"engagement_id":"e","rtms_stream_id":"s",
      "signature":"x","media_type":32,"media_params":[]})", ERROR_FIELD);
  EXPECT_NE (msg.find ("media_params"), std::string::npos) << msg;
}

static const char *msg4_example = R"({
  "msg_type": 4,
  "protocol_version": 1,
  "status_code": 0,
  "reason": "",
  "sequence": 0,
  "payload_encrypted": false,
  "media_params": {
    "audio": { "content_type": 2, "sample_rate": 1, "channel": 1, "codec": 1, "data_opt": 1, "send_rate": 20 },
    "transcript": { "content_type": 5, "src_language": 9, "enable_lid": true }
  }
})";

TEST (Msg4, Example)
{
  Message m = parse_ok (msg4_example);
  ASSERT_EQ (m.kind, K::DATA_HANDSHAKE_RESP);
  EXPECT_EQ (m.status_code, 0);
  EXPECT_EQ (m.reason, "");
  EXPECT_FALSE (m.payload_encrypted);
  ASSERT_TRUE (m.media_params.audio.has_value ());
  EXPECT_EQ (m.media_params.audio->sample_rate, SR_16K);
  EXPECT_EQ (m.media_params.audio->codec, CODEC_L16);
  EXPECT_EQ (m.media_params.audio->send_rate, 20);
  ASSERT_TRUE (m.media_params.transcript.has_value ());
  EXPECT_EQ (m.media_params.transcript->src_language, 9);
  EXPECT_EQ (test::encode_message (m), minify (msg4_example));
  expect_round_trip (m);
}

TEST (Msg4, PayloadEncryptionSpellings)
{
  /* §4.3 [C], §11 #5 */
  Message m = parse_ok (R"({"msg_type":4,"status_code":0,"payload_encrypted":true})");
  EXPECT_TRUE (m.payload_encrypted);
  m = parse_ok (R"({"msg_type":4,"status_code":0,"payload_encryption":true})");
  EXPECT_TRUE (m.payload_encrypted);
  m = parse_ok (R"({"msg_type":4,"status_code":0})");
  EXPECT_FALSE (m.payload_encrypted);
  EXPECT_FALSE (m.media_params.audio.has_value ());
  m = parse_ok (R"({"msg_type":4,"status_code":20,"reason":"INVALID_MEDIA_AUDIO_SAMPLE_RATE"})");
  EXPECT_EQ (m.status_code, 20);
  EXPECT_EQ (m.reason, "INVALID_MEDIA_AUDIO_SAMPLE_RATE");
  std::string msg = parse_fails (
      R"({"msg_type":4,"status_code":0,"payload_encryption":"false"})",
      ERROR_FIELD);
  EXPECT_NE (msg.find ("payload_encryption"), std::string::npos) << msg;
}

TEST (Msg4, AudioDefaultsWhenOmitted)
{
  Message m = parse_ok (
      R"({"msg_type":4,"status_code":0,"media_params":{"audio":{"codec":4,"sample_rate":3}}})");
  ASSERT_TRUE (m.media_params.audio.has_value ());
  AudioParams expect;
  expect.codec = CODEC_OPUS;
  expect.sample_rate = SR_48K;
  EXPECT_TRUE (*m.media_params.audio == expect);
  AudioParams other = expect;
  other.send_rate = 40;
  EXPECT_FALSE (*m.media_params.audio == other);
}

/* ---------------------------------------------------------------------- */
/* §4.4 msg 14                                                             */

TEST (Msg14, MeetingExample)
{
  const char *ex = R"({
  "msg_type": 14,
  "content": {
    "user_id": 16778240,
    "user_name": "Jane Doe",
    "data": "Hw1kDacNAA4sDkMOAQ5eDekMgAzX…",
    "timestamp": 1738392033699,
    "length": 640
  }
})";
  Message m = parse_ok (ex);
  ASSERT_EQ (m.kind, K::AUDIO);
  EXPECT_EQ (m.audio.user_id, "16778240");
  EXPECT_TRUE (m.audio.has_user_id);
  EXPECT_EQ (m.audio.user_name, "Jane Doe");
  EXPECT_EQ (m.audio.channel_id, "");
  EXPECT_EQ (m.audio.data_base64, "Hw1kDacNAA4sDkMOAQ5eDekMgAzX…");
  EXPECT_EQ (m.audio.timestamp, G_GINT64_CONSTANT (1738392033699));
  EXPECT_EQ (m.audio.length, 640);
  EXPECT_EQ (test::encode_message (m), minify (ex));
  expect_round_trip (m);
}

TEST (Msg14, ZccExample)
{
  const char *ex = R"({
  "msg_type": 14,
  "content": {
    "channel_id": "123abc",
    "data": "Hw1kDacNAA4sDkMOAQ5eDekMgAzX…",
    "timestamp": 1738392033699
  }
})";
  Message m = parse_ok (ex);
  ASSERT_EQ (m.kind, K::AUDIO);
  EXPECT_EQ (m.audio.channel_id, "123abc");
  EXPECT_FALSE (m.audio.has_user_id);
  EXPECT_EQ (m.audio.user_id, "");
  EXPECT_EQ (m.audio.length, -1);
  EXPECT_EQ (m.audio.timestamp, G_GINT64_CONSTANT (1738392033699));
  EXPECT_EQ (test::encode_message (m), minify (ex));
  expect_round_trip (m);
}

TEST (Msg14, MixedAudioUserZeroAndStringIds)
{
  Message m = parse_ok (
      R"({"msg_type":14,"content":{"user_id":0,"data":"AAAA","timestamp":1}})");
  EXPECT_TRUE (m.audio.has_user_id);
  EXPECT_EQ (m.audio.user_id, "0");
  EXPECT_EQ (test::encode_message (m),
      R"({"msg_type":14,"content":{"user_id":0,"data":"AAAA","timestamp":1}})");
  m = parse_ok (
      R"({"msg_type":14,"content":{"channel_id":987,"data":"","timestamp":1}})");
  EXPECT_EQ (m.audio.channel_id, "987");
  m = parse_ok (
      R"({"msg_type":14,"content":{"user_id":"abc","data":"","timestamp":1}})");
  EXPECT_EQ (m.audio.user_id, "abc");
  expect_round_trip (m);
  /* a string id that looks like a number with a leading zero stays a string */
  m = parse_ok (
      R"({"msg_type":14,"content":{"user_id":"0123","data":"","timestamp":1}})");
  EXPECT_NE (test::encode_message (m).find (R"("user_id":"0123")"),
      std::string::npos);
  expect_round_trip (m);
}

TEST (Msg14, LargeTimestampsRoundTripExactly)
{
  const gint64 values[] = { 0, 1, G_GINT64_CONSTANT (1738392033699),
    G_GINT64_CONSTANT (4102444800000), rtms::kMaxAudioTimestampMs };
  for (gint64 v : values) {
    AudioData a;
    a.channel_id = "c";
    a.data_base64 = "AAAA";
    a.timestamp = v;
    Message m = parse_ok (encode (a));
    EXPECT_EQ (m.audio.timestamp, v);
  }
}

/* Timestamps outside [0, 10^14] ms would overflow timestamp × rate: refused
 * with the field named, by both paths (the fast path falls back). */
TEST (Msg14, OutOfRangeTimestampsAndLengthsRefused)
{
  const gint64 values[] = { -1, rtms::kMaxAudioTimestampMs + 1,
    G_GINT64_CONSTANT (9007199254740993), G_MAXINT64, G_MININT64 };
  for (gint64 v : values) {
    AudioData a;
    a.channel_id = "c";
    a.data_base64 = "AAAA";
    a.timestamp = v;
    std::string m = parse_fails (encode (a), rtms::ERROR_FIELD);
    EXPECT_NE (m.find ("content.timestamp"), std::string::npos) << m;
  }
  /* beyond int64: refused as JSON (json-glib would wrap it to -1) */
  parse_fails (R"({"msg_type":14,"content":{"data":"AAAA","timestamp":18446744073709551615}})",
      rtms::ERROR_PARSE);
  for (const char *len : {"-1", "4194305"}) {
    std::string j = std::string (R"({"msg_type":14,"content":{"data":"AAAA","timestamp":1,"length":)")
        + len + "}}";
    std::string m = parse_fails (j, rtms::ERROR_FIELD);
    EXPECT_NE (m.find ("content.length"), std::string::npos) << m;
  }
  /* transcript and event times: [0, 10^17] (s, ms or µs, §4.5) */
  parse_fails (R"({"msg_type":17,"content":{"data":"hi","timestamp":-5}})",
      rtms::ERROR_FIELD);
  parse_fails (R"({"msg_type":6,"event":{"event_type":2,"timestamp":100000000000000001}})",
      rtms::ERROR_FIELD);
  EXPECT_EQ (rtms::normalize_timestamp_ms (-7), 0);
  EXPECT_EQ (rtms::normalize_timestamp_ms (rtms::kMaxTimestamp),
      rtms::kMaxTimestamp / 1000);
}

TEST (Msg14, BadFields)
{
  struct Bad { const char *json; const char *field; };
  const Bad bad[] = {
    { R"({"msg_type":14})", "content" },
    { R"({"msg_type":14,"content":"x"})", "content" },
    { R"({"msg_type":14,"content":{"timestamp":1}})", "content.data" },
    { R"({"msg_type":14,"content":{"data":5,"timestamp":1}})", "content.data" },
    { R"({"msg_type":14,"content":{"data":"AAAA"}})", "content.timestamp" },
    { R"({"msg_type":14,"content":{"data":"AAAA","timestamp":"123"}})",
      "content.timestamp" },
    { R"({"msg_type":14,"content":{"data":"AAAA","timestamp":1,"channel_id":[1]}})",
      "content.channel_id" },
    { R"({"msg_type":14,"content":{"data":"AAAA","timestamp":1,"user_id":1.5}})",
      "content.user_id" },
    { R"({"msg_type":14,"content":{"data":"AAAA","timestamp":1,"length":"640"}})",
      "content.length" },
  };
  for (const Bad &b : bad) {
    SCOPED_TRACE (b.json);
    std::string msg = parse_fails (b.json, ERROR_FIELD);
    EXPECT_NE (msg.find (std::string ("'") + b.field + "'"), std::string::npos)
        << msg;
  }
}

TEST (Msg14, MessageIsResetBetweenParses)
{
  Message m;
  std::string a = R"({"msg_type":14,"content":{"channel_id":"c1","user_name":"x","data":"AAAA","timestamp":5}})";
  ASSERT_TRUE (parse_message (a.data (), a.size (), &m, nullptr));
  std::string b = R"({"msg_type":14,"content":{"data":"BBBB","timestamp":6}})";
  ASSERT_TRUE (parse_message (b.data (), b.size (), &m, nullptr));
  EXPECT_EQ (m.audio.channel_id, "");
  EXPECT_EQ (m.audio.user_name, "");
  EXPECT_EQ (m.audio.data_base64, "BBBB");
  std::string c = R"({"msg_type":12,"timestamp":7})";
  ASSERT_TRUE (parse_message (c.data (), c.size (), &m, nullptr));
  EXPECT_EQ (m.kind, K::KEEP_ALIVE_REQ);
  EXPECT_EQ (m.audio.data_base64, "");
  EXPECT_EQ (m.audio.timestamp, 0);
}

TEST (Msg14, NotNulTerminatedInput)
{
  std::string frame = R"({"msg_type":12,"timestamp":42})";
  std::string padded = frame + "garbage that is not JSON";
  Message m;
  GError *err = nullptr;
  ASSERT_TRUE (parse_message (padded.data (), frame.size (), &m, &err))
      << (err ? err->message : "");
  EXPECT_EQ (m.keep_alive.timestamp, 42);
}

/* ---------------------------------------------------------------------- */
/* §4.5 msg 17                                                             */

TEST (Msg17, ZccExample)
{
  const char *ex = R"({
  "msg_type": 17,
  "content": {
    "channel_id": "channel-9f4b",
    "attribute": 1,
    "language": 9,
    "data": "Thanks for calling. How can I help you today?",
    "timestamp": 1730000028100,
    "start_time": 1730000028000,
    "end_time": 1730000029500,
    "sentence_id": 18
  }
})";
  Message m = parse_ok (ex);
  ASSERT_EQ (m.kind, K::TRANSCRIPT);
  const TranscriptData &t = m.transcript;
  EXPECT_EQ (t.channel_id, "channel-9f4b");
  EXPECT_EQ (t.attribute, 1);
  EXPECT_EQ (t.language, 9);
  EXPECT_EQ (t.text, "Thanks for calling. How can I help you today?");
  EXPECT_EQ (t.timestamp, G_GINT64_CONSTANT (1730000028100));
  EXPECT_EQ (t.start_time, G_GINT64_CONSTANT (1730000028000));
  EXPECT_EQ (t.end_time, G_GINT64_CONSTANT (1730000029500));
  EXPECT_EQ (t.sentence_id, 18);
  EXPECT_FALSE (t.has_user_id);
  EXPECT_EQ (test::encode_message (m), minify (ex));
  expect_round_trip (m);
}

TEST (Msg17, MeetingExample)
{
  const char *ex = R"({
  "msg_type": 17,
  "content": {
    "user_id": 16778240,
    "user_name": "Jane Doe",
    "data": "Hello everyone",
    "timestamp": 1730000028100,
    "start_time": 1730000028000,
    "end_time": 1730000029500,
    "language": 9
  }
})";
  Message m = parse_ok (ex);
  ASSERT_EQ (m.kind, K::TRANSCRIPT);
  const TranscriptData &t = m.transcript;
  EXPECT_EQ (t.user_id, "16778240");
  EXPECT_TRUE (t.has_user_id);
  EXPECT_EQ (t.user_name, "Jane Doe");
  EXPECT_EQ (t.text, "Hello everyone");
  EXPECT_EQ (t.language, 9);
  EXPECT_EQ (t.attribute, 0);
  EXPECT_EQ (t.sentence_id, -1);
  EXPECT_EQ (test::encode_message (m), minify (ex));
  expect_round_trip (m);
}

TEST (Msg17, TimestampUnitsAndUtf8)
{
  /* §4.5 [C]: µs and s are normalised to ms */
  Message m = parse_ok (R"({"msg_type":17,"content":{"channel_id":"c",
      "data":"Grüße – 你好 \"q\"\n","timestamp":1730000028100000,
      "start_time":1730000028,"end_time":1730000029500}})");
  EXPECT_EQ (m.transcript.timestamp, G_GINT64_CONSTANT (1730000028100));
  EXPECT_EQ (m.transcript.start_time, G_GINT64_CONSTANT (1730000028000));
  EXPECT_EQ (m.transcript.end_time, G_GINT64_CONSTANT (1730000029500));
  EXPECT_EQ (m.transcript.text, "Grüße – 你好 \"q\"\n");
  std::string enc = test::encode_message (m);
  EXPECT_NE (enc.find (R"("data":"Grüße – 你好 \"q\"\n")"), std::string::npos)
      << enc;
  expect_round_trip (m);
}

TEST (Msg17, BadFields)
{
  std::string msg = parse_fails (
      R"({"msg_type":17,"content":{"timestamp":1}})", ERROR_FIELD);
  EXPECT_NE (msg.find ("content.data"), std::string::npos) << msg;
  msg = parse_fails (
      R"({"msg_type":17,"content":{"data":"x","timestamp":1,"sentence_id":"18"}})",
      ERROR_FIELD);
  EXPECT_NE (msg.find ("content.sentence_id"), std::string::npos) << msg;
}

/* ---------------------------------------------------------------------- */
/* Unknown types and bad input                                             */

TEST (ParseMessage, UnknownTypesAreIgnored)
{
  const char *unknown[] = {
    R"({"msg_type":99,"whatever":[1,2]})",
    R"({"msg_type":15,"content":{"user_id":1,"data":"AAAA","timestamp":1}})",
    R"({"msg_type":16,"content":{}})",
    R"({"msg_type":18,"content":{"data":"hi all"}})",
    R"({"msg_type":23})",
    R"({"msg_type":28,"user_id":16778240,"subscribe":true,"timestamp":1727384349123})",
    R"({"msg_type":-5})",
    R"({"no_msg_type":true})",
    R"({"msg_type":null})",
    R"({})",
  };
  for (const char *json : unknown) {
    SCOPED_TRACE (json);
    Message m = parse_ok (json);
    EXPECT_EQ (m.kind, K::UNKNOWN);
  }
  EXPECT_EQ (parse_ok (R"({"msg_type":99})").msg_type, 99);
  EXPECT_EQ (parse_ok (R"({})").msg_type, -1);
}

TEST (ParseMessage, NotJsonOrNotObject)
{
  const char *bad[] = {
    R"({"msg_type":14,"content":{"data":"AAAA","timesta)",
    R"({"msg_type":12,"timestamp":1)",
    R"([1,2,3])",
    R"("just a string")",
    R"(42)",
    R"(not json at all)",
    "",
  };
  for (const char *json : bad) {
    SCOPED_TRACE (json);
    parse_fails (json, ERROR_PARSE);
  }
  Message m;
  GError *err = nullptr;
  EXPECT_FALSE (parse_message (nullptr, 0, &m, &err));
  EXPECT_TRUE (g_error_matches (err, RTMS_ERROR, ERROR_PARSE));
  g_clear_error (&err);
}

TEST (ParseMessage, NullMeansAbsent)
{
  Message m = parse_ok (
      R"({"msg_type":8,"state":1,"reason":null,"rtms_stream_id":null})");
  EXPECT_EQ (m.stream_state.reason, 0);
  EXPECT_EQ (m.stream_state.rtms_stream_id, "");
}

TEST (Encode, EscapesControlCharacters)
{
  StreamCloseResp r;
  r.rtms_stream_id = "a\"b\\c/d";
  r.reason = std::string ("tab\there\x01\x1f end", 14);
  std::string enc = encode (r);
  EXPECT_EQ (enc, "{\"msg_type\":22,\"rtms_stream_id\":\"a\\\"b\\\\c/d\","
                  "\"status_code\":0,\"reason\":\"tab\\there\\u0001\\u001f end\"}");
  Message m = parse_ok (enc);
  EXPECT_EQ (m.close_resp.rtms_stream_id, r.rtms_stream_id);
  EXPECT_EQ (m.close_resp.reason, r.reason);
}

TEST (Encode, BuiltMessagesRoundTrip)
{
  SignalingHandshakeReq req;
  req.id.id_key = "meeting_uuid";
  req.id.id_value = "ab/+cd==";
  req.id.rtms_stream_id = "s1";
  req.id.signature = "00ff";
  req.buffer_data = false;
  Message m = parse_ok (encode (req));
  EXPECT_EQ (m.sig_req.id.id_value, "ab/+cd==");
  ASSERT_TRUE (m.sig_req.buffer_data.has_value ());
  EXPECT_FALSE (*m.sig_req.buffer_data);

  SignalingHandshakeResp resp;
  resp.media_server.audio = "ws://127.0.0.1:1/media/audio";
  resp.media_server.transcript = "ws://127.0.0.1:1/media/transcript";
  m = parse_ok (encode (resp));
  EXPECT_EQ (m.sig_resp.media_server.audio, resp.media_server.audio);
  EXPECT_EQ (m.sig_resp.media_server.transcript, resp.media_server.transcript);
  EXPECT_EQ (m.sig_resp.media_server.video, "");
  EXPECT_EQ (m.sig_resp.media_server.all, "");

  MediaParams params;
  params.audio = AudioParams ();
  params.audio->frame_size = 320;
  params.transcript = TranscriptParams ();
  m = parse_ok (encode_data_handshake_req (req.id, 32, false, params));
  EXPECT_TRUE (*m.media_params.audio == *params.audio);
  EXPECT_TRUE (*m.media_params.transcript == *params.transcript);
  EXPECT_FALSE (m.media_params.transcript->has_src_language);
  m = parse_ok (encode_data_handshake_resp (17, "INVALID_MEDIA_PARAMS", true,
      MediaParams ()));
  EXPECT_EQ (m.status_code, 17);
  EXPECT_EQ (m.reason, "INVALID_MEDIA_PARAMS");
  EXPECT_TRUE (m.payload_encrypted);
  EXPECT_FALSE (m.media_params.audio.has_value ());

  EventUpdate ev;
  ev.event_type = 18;
  ev.timestamp = G_GINT64_CONSTANT (1727384349123);
  ev.participant_info = ParticipantInfo ();
  ev.participant_info->channel_id = "chan";
  ev.participant_info->participant_mode = "callee";
  m = parse_ok (encode (ev));
  EXPECT_EQ (m.event.timestamp, ev.timestamp);
  EXPECT_EQ (m.event.participant_info->channel_id, "chan");
  EXPECT_NE (encode (ev).find ("\"event_ts\""), std::string::npos);

  TranscriptData t;
  t.channel_id = "c";
  t.text = "hi";
  t.timestamp = G_GINT64_CONSTANT (1730000028100);
  t.sentence_id = 0;
  m = parse_ok (encode (t));
  EXPECT_EQ (m.transcript.sentence_id, 0);
  EXPECT_EQ (m.transcript.language, -1);
}

/* ---------------------------------------------------------------------- */
/* decode_audio_payload (§4.4)                                             */

TEST (Base64, RoundTripAllSizes)
{
  std::vector<guint8> out;
  out.reserve (1024);
  const guint8 *buffer_before = out.data ();
  for (gsize n = 0; n <= 700; n++) {
    std::vector<guint8> in (n);
    for (gsize i = 0; i < n; i++)
      in[i] = static_cast<guint8> ((i * 131 + n * 7) & 0xff);
    gchar *b64 = g_base64_encode (in.data (), n);
    GError *err = nullptr;
    ASSERT_TRUE (decode_audio_payload (b64, strlen (b64), &out, &err))
        << n << ": " << (err ? err->message : "");
    EXPECT_EQ (out, in) << "size " << n;
    g_free (b64);
  }
  /* the vector's capacity was reused: no reallocation */
  EXPECT_EQ (out.data (), buffer_before);
  EXPECT_GE (out.capacity (), 1024u);
}

TEST (Base64, KnownVectors)
{
  std::vector<guint8> out;
  ASSERT_TRUE (decode_audio_payload ("TWFu", 4, &out, nullptr));
  EXPECT_EQ (std::string (out.begin (), out.end ()), "Man");
  ASSERT_TRUE (decode_audio_payload ("TWE=", 4, &out, nullptr));
  EXPECT_EQ (std::string (out.begin (), out.end ()), "Ma");
  ASSERT_TRUE (decode_audio_payload ("TQ==", 4, &out, nullptr));
  EXPECT_EQ (std::string (out.begin (), out.end ()), "M");
  ASSERT_TRUE (decode_audio_payload ("+/+/", 4, &out, nullptr));
  EXPECT_EQ (out, (std::vector<guint8> { 0xfb, 0xff, 0xbf }));
  ASSERT_TRUE (decode_audio_payload ("", 0, &out, nullptr));
  EXPECT_TRUE (out.empty ());
}

TEST (Base64, RejectsBadInput)
{
  const char *bad[] = {
    "TWF",        /* length % 4 */
    "TWFuT",      /* length % 4 */
    "TW-u",       /* URL-safe alphabet */
    "TW_u",
    "TWFu\n",     /* whitespace */
    "TW u",
    "T===",       /* too much padding */
    "====",
    "TQ=A",       /* padding in the middle of the last quad */
    "TQ==TWFu",   /* padding before the end */
    "TWFu====",
    "TWF\xc3\xa9", /* non-ASCII */
  };
  for (const char *s : bad) {
    SCOPED_TRACE (s);
    std::vector<guint8> out;
    GError *err = nullptr;
    EXPECT_FALSE (decode_audio_payload (s, strlen (s), &out, &err));
    EXPECT_TRUE (g_error_matches (err, RTMS_ERROR, ERROR_BASE64))
        << (err ? err->message : "no error");
    g_clear_error (&err);
  }
  /* an embedded NUL counts by @len */
  std::vector<guint8> out;
  GError *err = nullptr;
  EXPECT_FALSE (decode_audio_payload ("TW\0u", 4, &out, &err));
  EXPECT_TRUE (g_error_matches (err, RTMS_ERROR, ERROR_BASE64));
  g_clear_error (&err);
}

/* The SIMD path (AVX2 where the CPU has it, rtms-messages.cpp) against the
 * scalar one and GLib's g_base64_decode: random payloads of every size up to
 * 3 blocks past the SIMD threshold, then the same with one character
 * replaced by each byte value outside the alphabet (NUL, '=', '-', '_',
 * space, 0x80, 0xff, ...) at every offset class: same verdict, same bytes,
 * same error text (so the same offset). */
TEST (Base64, SimdPathMatchesScalarAndGLib)
{
  GRand *rand = g_rand_new_with_seed (12);
  std::vector<guint8> simd, scalar, reused (4096, 0xa5);
  for (gsize n = 0; n <= 200; n++) {
    std::vector<guint8> in (n);
    for (auto &b : in)
      b = (guint8) g_rand_int_range (rand, 0, 256);
    g_autofree gchar *b64 = g_base64_encode (in.data (), n);
    gsize len = strlen (b64);
    ASSERT_TRUE (detail::decode_audio_payload_with (b64, len, &simd, nullptr,
            true));
    ASSERT_TRUE (detail::decode_audio_payload_with (b64, len, &scalar,
            nullptr, false));
    ASSERT_EQ (simd, in) << "size " << n;
    ASSERT_EQ (scalar, in) << "size " << n;
    ASSERT_TRUE (detail::decode_audio_payload_with (b64, len, &reused,
            nullptr, true));
    ASSERT_EQ (reused, in) << "reused vector, size " << n;
    std::string b (b64);
    for (int trial = 0; trial < 8 && len > 0; trial++) {
      std::string bad = b;
      gsize at = (gsize) g_rand_int_range (rand, 0, (gint32) len);
      int c;
      do
        c = g_rand_int_range (rand, 0, 256);
      while (g_ascii_isalnum (c) || c == '+' || c == '/');
      bad[at] = (char) c;
      GError *e1 = nullptr, *e2 = nullptr;
      bool ok1 = detail::decode_audio_payload_with (bad.data (), len, &simd,
          &e1, true);
      bool ok2 = detail::decode_audio_payload_with (bad.data (), len,
          &scalar, &e2, false);
      ASSERT_EQ (ok1, ok2) << bad;
      if (ok1) {
        /* '=' as the last character(s) is padding: still valid */
        ASSERT_EQ (simd, scalar) << bad;
        gsize glen = 0;
        g_autofree guchar *g = g_base64_decode (bad.c_str (), &glen);
        ASSERT_EQ (glen, simd.size ());
        ASSERT_EQ (0, memcmp (g, simd.data (), glen));
      } else {
        ASSERT_TRUE (g_error_matches (e1, RTMS_ERROR, ERROR_BASE64));
        ASSERT_STREQ (e1->message, e2->message) << bad;
        g_autofree char *where = g_strdup_printf ("at offset %" G_GSIZE_FORMAT,
            at);
        /* the first bad character is the one put there (unless it is '='
         * or comes after the padding, which then is the first) */
        EXPECT_TRUE (strstr (e1->message, where) || c == '=' ||
            b.find ('=') < at)
            << e1->message << " (" << where << ")";
      }
      g_clear_error (&e1);
      g_clear_error (&e2);
    }
  }
  g_rand_free (rand);
}

TEST (Base64, ParsedAudioDecodes)
{
  guint8 pcm[640];
  for (int i = 0; i < 640; i++)
    pcm[i] = static_cast<guint8> (i);
  gchar *b64 = g_base64_encode (pcm, sizeof pcm);
  AudioData a;
  a.channel_id = "123abc";
  a.data_base64 = b64;
  a.timestamp = G_GINT64_CONSTANT (1738392033699);
  g_free (b64);
  Message m = parse_ok (encode (a));
  std::vector<guint8> out;
  ASSERT_TRUE (decode_audio_payload (m.audio.data_base64.data (),
      m.audio.data_base64.size (), &out, nullptr));
  ASSERT_EQ (out.size (), 640u);
  EXPECT_EQ (memcmp (out.data (), pcm, 640), 0);
}

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */

TEST (Helpers, NormalizeTimestampMs)
{
  /* ms stays */
  EXPECT_EQ (normalize_timestamp_ms (G_GINT64_CONSTANT (1730000028100)),
      G_GINT64_CONSTANT (1730000028100));
  /* µs → ms */
  EXPECT_EQ (normalize_timestamp_ms (G_GINT64_CONSTANT (1730000028100123)),
      G_GINT64_CONSTANT (1730000028100));
  /* s → ms */
  EXPECT_EQ (normalize_timestamp_ms (1694204592),
      G_GINT64_CONSTANT (1694204592000));
  /* boundaries: > 10^11 is ms, > 10^14 is µs */
  EXPECT_EQ (normalize_timestamp_ms (G_GINT64_CONSTANT (100000000000)),
      G_GINT64_CONSTANT (100000000000000));
  EXPECT_EQ (normalize_timestamp_ms (G_GINT64_CONSTANT (100000000001)),
      G_GINT64_CONSTANT (100000000001));
  EXPECT_EQ (normalize_timestamp_ms (G_GINT64_CONSTANT (100000000000000)),
      G_GINT64_CONSTANT (100000000000000));
  EXPECT_EQ (normalize_timestamp_ms (G_GINT64_CONSTANT (100000000000001)),
      G_GINT64_CONSTANT (100000000000));
  EXPECT_EQ (normalize_timestamp_ms (0), 0);
}

TEST (Helpers, PlanMediaConnections)
{
  MediaServerUrls all;
  all.audio = "wss://a";
  all.transcript = "wss://t";
  all.video = "wss://v";
  all.all = "wss://all";
  auto plan = plan_media_connections (all, true, true);
  ASSERT_EQ (plan.size (), 1u);
  EXPECT_EQ (plan[0].url, "wss://all");
  EXPECT_EQ (plan[0].media_type, 32);
  plan = plan_media_connections (all, true, false);
  ASSERT_EQ (plan.size (), 1u);
  EXPECT_EQ (plan[0].media_type, 32);

  MediaServerUrls split = all;
  split.all.clear ();
  plan = plan_media_connections (split, true, true);
  ASSERT_EQ (plan.size (), 2u);
  EXPECT_EQ (plan[0].url, "wss://a");
  EXPECT_EQ (plan[0].media_type, 1);
  EXPECT_EQ (plan[1].url, "wss://t");
  EXPECT_EQ (plan[1].media_type, 8);
  plan = plan_media_connections (split, true, false);
  ASSERT_EQ (plan.size (), 1u);
  EXPECT_EQ (plan[0].media_type, 1);
  plan = plan_media_connections (split, false, true);
  ASSERT_EQ (plan.size (), 1u);
  EXPECT_EQ (plan[0].url, "wss://t");

  MediaServerUrls audio_only;
  audio_only.audio = "ws://a";
  plan = plan_media_connections (audio_only, true, true);
  ASSERT_EQ (plan.size (), 1u);
  EXPECT_EQ (plan[0].url, "ws://a");
  EXPECT_TRUE (plan_media_connections (audio_only, false, true).empty ());
  EXPECT_TRUE (plan_media_connections (MediaServerUrls (), true, true).empty ());
  EXPECT_TRUE (plan_media_connections (all, false, false).empty ());
}

TEST (Helpers, SelectSignalingUrl)
{
  EXPECT_EQ (select_signaling_url ("wss://127.0.0.1:443"), "wss://127.0.0.1:443");
  EXPECT_EQ (select_signaling_url ("ws://127.0.0.1:8080/signaling"),
      "ws://127.0.0.1:8080/signaling");
  /* comma list: first wss, then first ws */
  EXPECT_EQ (select_signaling_url ("https://x, ws://a ,wss://b,wss://c"),
      "wss://b");
  EXPECT_EQ (select_signaling_url ("rtmp://x,ws://a,ws://b"), "ws://a");
  EXPECT_EQ (select_signaling_url ("  wss://z  "), "wss://z");
  /* JSON string */
  EXPECT_EQ (select_signaling_url (R"("ws://a,wss://b")"), "wss://b");
  /* object: all, else any ws* value */
  EXPECT_EQ (select_signaling_url (
      R"({"audio":"wss://a","all":"wss://all"})"), "wss://all");
  EXPECT_EQ (select_signaling_url (R"({"x":1,"audio":"ws://a","t":"wss://t"})"),
      "wss://t");
  EXPECT_EQ (select_signaling_url (R"({"x":1,"audio":"ws://a"})"), "ws://a");
  EXPECT_EQ (select_signaling_url (R"({"x":"http://a"})"), "");
  EXPECT_EQ (select_signaling_url (""), "");
  EXPECT_EQ (select_signaling_url ("http://a,ftp://b"), "");
  EXPECT_EQ (select_signaling_url ("{broken"), "");
}
