/* msg 14 fast path (rtms-audio-fast.cpp): every shape must decode exactly as
 * the json-glib path would, and anything unusual must fall back to it (and
 * so get its errors). */
#include <gtest/gtest.h>

#include "rtms-json-private.h"
#include "rtms-messages.h"

namespace {

rtms::Message
must_parse (const std::string &json)
{
  rtms::Message m;
  g_autoptr (GError) error = nullptr;
  EXPECT_TRUE (rtms::parse_message (json.c_str (), json.size (), &m, &error))
      << json << ": " << (error ? error->message : "");
  return m;
}

bool
fast (const std::string &json)
{
  rtms::Message m;
  return rtms::detail::parse_audio_fast (json.c_str (), json.size (), &m);
}

} // namespace

TEST (AudioFastPath, ZccFrame)
{
  std::string j = R"({"msg_type":14,"content":{"channel_id":"123abc","data":"AAECAw==","timestamp":1738392033699}})";
  EXPECT_TRUE (fast (j));
  auto m = must_parse (j);
  EXPECT_EQ (m.kind, rtms::Message::Kind::AUDIO);
  EXPECT_EQ (m.msg_type, 14);
  EXPECT_EQ (m.audio.channel_id, "123abc");
  EXPECT_FALSE (m.audio.has_user_id);
  EXPECT_EQ (m.audio.data_base64, "AAECAw==");
  EXPECT_EQ (m.audio.timestamp, 1738392033699);
  EXPECT_EQ (m.audio.length, -1);
}

TEST (AudioFastPath, MeetingFrameWithIntegerIdsNullsAndUnknownFields)
{
  std::string j = R"({"content":{"user_id":16778240,"user_name":"Jane \u00e9","data":"AA==","timestamp":5,"length":1,"extra":[1,{"a":2}]},"msg_type":14,"more":true})";
  EXPECT_TRUE (fast (j));
  auto m = must_parse (j);
  EXPECT_EQ (m.audio.user_id, "16778240");
  EXPECT_TRUE (m.audio.has_user_id);
  EXPECT_EQ (m.audio.user_name, "Jane \xc3\xa9");
  EXPECT_EQ (m.audio.length, 1);
  EXPECT_TRUE (m.audio.channel_id.empty ());

  std::string n = R"({"msg_type":14,"content":{"channel_id":7,"user_name":null,"length":null,"data":"","timestamp":0}})";
  EXPECT_TRUE (fast (n));
  auto mn = must_parse (n);
  EXPECT_EQ (mn.audio.channel_id, "7");
  EXPECT_TRUE (mn.audio.user_name.empty ());
  EXPECT_EQ (mn.audio.length, -1);
}

TEST (AudioFastPath, ReusedMessageKeepsNoStaleFields)
{
  rtms::Message m;
  std::string a = R"({"msg_type":14,"content":{"user_id":1,"user_name":"A","data":"AA==","timestamp":1,"length":1}})";
  std::string b = R"({"msg_type":14,"content":{"channel_id":"c","data":"AQ==","timestamp":2}})";
  ASSERT_TRUE (rtms::parse_message (a.c_str (), a.size (), &m, nullptr));
  ASSERT_TRUE (rtms::parse_message (b.c_str (), b.size (), &m, nullptr));
  EXPECT_FALSE (m.audio.has_user_id);
  EXPECT_TRUE (m.audio.user_id.empty ());
  EXPECT_TRUE (m.audio.user_name.empty ());
  EXPECT_EQ (m.audio.length, -1);
  EXPECT_EQ (m.audio.channel_id, "c");
}

TEST (AudioFastPath, UnusualInputFallsBackAndKeepsTheSlowPathsErrors)
{
  struct Case {
    const char *json;
    const char *field; /* named in the error, or nullptr if it parses */
  } cases[] = {
    { R"({"msg_type":14,"content":{"data":"AA==","timestamp":"1"}})", "timestamp" },
    { R"({"msg_type":14,"content":{"data":1,"timestamp":1}})", "data" },
    { R"({"msg_type":14,"content":{"timestamp":1}})", "data" },
    { R"({"msg_type":14,"content":{"data":"AA==","timestamp":1.5}})", "timestamp" },
    { R"({"msg_type":14,"content":{"data":"AA==","timestamp":1,"channel_id":[1]}})", "channel_id" },
    { R"({"msg_type":14,"content":"x"})", "content" },
    { R"({"msg_type":"14","content":{"data":"AA==","timestamp":1}})", "msg_type" },
    /* duplicate keys: json-glib keeps the last one */
    { R"({"msg_type":14,"content":{"data":"AA==","timestamp":1,"timestamp":2}})", nullptr },
  };
  for (const auto &c : cases) {
    std::string j = c.json;
    EXPECT_FALSE (fast (j)) << j;
    rtms::Message m;
    g_autoptr (GError) error = nullptr;
    bool ok = rtms::parse_message (j.c_str (), j.size (), &m, &error);
    if (c.field) {
      ASSERT_FALSE (ok) << j;
      EXPECT_NE (std::string (error->message).find (c.field), std::string::npos)
          << error->message;
    } else {
      ASSERT_TRUE (ok) << j;
      EXPECT_EQ (m.audio.timestamp, 2);
    }
  }
  /* truncated and trailing content are not JSON objects */
  for (const char *bad : { R"({"msg_type":14,"content":{"data":"AA==")",
           R"({"msg_type":14,"content":{"data":"AA==","timestamp":1}} x)" }) {
    EXPECT_FALSE (fast (bad)) << bad;
    rtms::Message m;
    EXPECT_FALSE (rtms::parse_message (bad, -1, &m, nullptr)) << bad;
  }
}

TEST (AudioFastPath, OtherMessagesUseTheGeneralParser)
{
  std::string k = R"({"msg_type":12,"timestamp":1727384349123})";
  EXPECT_FALSE (fast (k));
  auto m = must_parse (k);
  EXPECT_EQ (m.kind, rtms::Message::Kind::KEEP_ALIVE_REQ);
  EXPECT_EQ (m.keep_alive.timestamp, 1727384349123);
}
