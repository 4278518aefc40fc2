/* Bounded JSON input (rtms-json.h): json_validate() is the gate in front of
 * json-glib for every RTMS frame, webhook body and file read back; the msg 14
 * fast path (simdjson) and the json-glib path of parse_message() must agree
 * on every input. */
#include <gtest/gtest.h>

#include "rtms-json-private.h"
#include "rtms-json.h"
#include "rtms-messages.h"

#include <glib/gstdio.h>

#include <string>

namespace {

bool
valid (const std::string &json, rtms::JsonLimits limits = {})
{
  return rtms::json_validate (json.data (), json.size (), limits, nullptr);
}

int
error_code (const std::string &json, rtms::JsonLimits limits = {})
{
  g_autoptr (GError) err = nullptr;
  EXPECT_FALSE (rtms::json_validate (json.data (), json.size (), limits, &err))
      << json;
  return err ? err->code : -1;
}

std::string
nested (size_t depth)
{
  return std::string (depth, '[') + std::string (depth, ']');
}

} // namespace

TEST (JsonValidate, AcceptsRfc8259)
{
  for (const char *j : {
        "{}", "[]", "0", "-0", "1.5e-3", "1E+2", "-12.25", "true", "false",
        "null", "\"\"", " \t\r\n{\"a\" : [1, 2.0, {\"b\": null}]} \n",
        "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud83d\\ude00\"",
        "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"", "1e-400", "9223372036854775807",
        "-9223372036854775808", "[[],{},[{}]]",
        R"({"msg_type":14,"content":{"channel_id":"c","data":"AAAA","timestamp":1738392033699}})" })
    EXPECT_TRUE (valid (j)) << j;
}

TEST (JsonValidate, RefusesWhatJsonGlibGetsWrong)
{
  for (const char *j : {
        "\"\\377\"", "\"\\x41\"", "\"\\'\"", "\"a\\u0000b\"", "\"\\udc00\"",
        "\"\\ud800\"", "\"\\ud800x\"", "\"\\ud800\\u0041\"", "[01]", "[1.]",
        "[.5]", "[+1]", "[1,]", "{\"a\":1,}", "[1] x", "", "   ", "[",
        "{\"a\"}", "{\"a\":}", "{1:2}", "[tru]", "[nul]", "\"abc",
        "\"tab\there\"", "[99999999999999999999]", "[-9223372036854775809]",
        "[18446744073709551615]", "[1e400]", "[-1e400]", "\xef\xbb\xbf{}",
        "\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"" })
    EXPECT_FALSE (valid (j)) << j;
  /* a raw NUL inside the document */
  EXPECT_FALSE (valid (std::string ("[\"a\0b\"]", 7)));
  /* long number tokens are fine while they fit */
  EXPECT_TRUE (valid ("[1." + std::string (200, '1') + "]"));
  EXPECT_TRUE (valid ("[0." + std::string (400, '0') + "1e5]"));
  EXPECT_FALSE (valid ("[1" + std::string (400, '0') + ".5]"));
  EXPECT_FALSE (valid ("[" + std::string (25, '1') + "]"));
}

TEST (JsonValidate, DepthLimitIsExactAndIterative)
{
  rtms::JsonLimits l;
  l.max_depth = 32;
  EXPECT_TRUE (valid (nested (32), l));
  EXPECT_FALSE (valid (nested (33), l));
  EXPECT_TRUE (valid ("{\"a\":" + nested (31) + "}", l));
  EXPECT_FALSE (valid ("{\"a\":" + nested (32) + "}", l));
  /* 300,000 deep: refused at byte 32, no recursion anywhere */
  std::string deep (300000, '[');
  g_autoptr (GError) err = nullptr;
  EXPECT_FALSE (rtms::json_validate (deep.data (), deep.size (), l, &err));
  ASSERT_TRUE (err);
  EXPECT_STREQ (err->message, "invalid JSON at byte 32: nested too deep");
  /* a deep limit works beyond 64 levels (the container stack is a bitset) */
  l.max_depth = 200;
  std::string mixed;
  for (int i = 0; i < 100; i++)
    mixed += i % 2 ? "{\"k\":" : "[";
  mixed += "0";
  for (int i = 99; i >= 0; i--)
    mixed += i % 2 ? "}" : "]";
  EXPECT_TRUE (valid (mixed, l)) << mixed;
}

TEST (JsonValidate, SizeLimitAndErrorsNeverQuoteTheInput)
{
  rtms::JsonLimits l;
  l.max_bytes = 10;
  EXPECT_EQ (error_code ("[1,2,3,4,5]", l), rtms::ERROR_TOO_LARGE);
  EXPECT_TRUE (valid ("[1,2,3,4]", l));
  g_autoptr (GError) err = nullptr;
  std::string secret = "{\"k\":\"s3cr3t\n\"}";
  EXPECT_FALSE (rtms::json_validate (secret.data (), secret.size (), {}, &err));
  ASSERT_TRUE (err);
  EXPECT_EQ (std::string (err->message).find ("s3cr3t"), std::string::npos);
  EXPECT_EQ (err->code, rtms::ERROR_PARSE);
}

TEST (JsonValidate, LoadFileRefusesLargeFilesWithoutParsing)
{
  g_autofree gchar *dir = g_dir_make_tmp ("zoomrtms-json-XXXXXX", nullptr);
  ASSERT_TRUE (dir);
  g_autofree gchar *path = g_build_filename (dir, "big.json", nullptr);
  std::string big = "[" + std::string (100000, '1') + "]";
  ASSERT_TRUE (g_file_set_contents (path, big.data (), big.size (), nullptr));
  rtms::JsonLimits l;
  l.max_bytes = 4096;
  g_autoptr (JsonParser) p = json_parser_new ();
  g_autoptr (GError) err = nullptr;
  EXPECT_EQ (rtms::json_load_file (p, path, l, &err), nullptr);
  ASSERT_TRUE (err);
  EXPECT_EQ (err->code, rtms::ERROR_TOO_LARGE);
  g_clear_error (&err);

  std::string ok = R"({"state":"running","n":[1,2]})";
  ASSERT_TRUE (g_file_set_contents (path, ok.data (), ok.size (), nullptr));
  JsonNode *root = rtms::json_load_file (p, path, l, &err);
  ASSERT_TRUE (root) << err->message;
  EXPECT_TRUE (JSON_NODE_HOLDS_OBJECT (root));
  EXPECT_EQ (rtms::json_load_file (p, "/nonexistent/x.json", l, &err), nullptr);
  EXPECT_EQ (err->code, rtms::ERROR_IO);
  g_unlink (path);
  g_rmdir (dir);
}

/* Inputs on which the msg 14 fast path and the json-glib path disagreed
 * before: now both refuse, whichever path runs. */
TEST (JsonValidate, FastAndSlowPathsAgree)
{
  const std::string frames[] = {
    /* \u0000: simdjson kept the NUL, json-glib cut the string there */
    R"({"msg_type":14,"content":{"channel_id":"c","user_name":"a\u0000b","data":"AAAA","timestamp":1}})",
    R"({"msg_type":14,"content":{"channel_id":"c","data":"AAAA","timestamp":1},"x":"\u0000"})",
    /* nesting over the limit in a field neither path reads */
    R"({"msg_type":14,"content":{"channel_id":"c","data":"AAAA","timestamp":1},"x":)" +
        nested (40) + "}",
    /* an integer json-glib would wrap */
    R"({"msg_type":14,"content":{"channel_id":"c","data":"AAAA","timestamp":1,"length":18446744073709551615}})",
    /* an integer simdjson keeps as uint64, in a field neither path reads */
    R"({"msg_type":14,"content":{"channel_id":"c","data":"AAAA","timestamp":1,"x":[{"y":9223372036854775808}]}})",
    /* escapes only json-glib accepts */
    R"({"msg_type":14,"content":{"channel_id":"\377","data":"AAAA","timestamp":1}})",
  };
  for (const auto &j : frames) {
    rtms::Message m;
    EXPECT_FALSE (rtms::detail::parse_audio_fast (j.data (), j.size (), &m)) << j;
    g_autoptr (GError) err = nullptr;
    EXPECT_FALSE (rtms::parse_message (j.data (), j.size (), &m, &err)) << j;
  }
  /* an escaped backslash before u0000 is a normal string: both accept */
  std::string fine = R"({"msg_type":14,"content":{"channel_id":"c\\u0000","data":"AAAA","timestamp":1}})";
  rtms::Message m;
  g_autoptr (GError) err = nullptr;
  ASSERT_TRUE (rtms::parse_message (fine.data (), fine.size (), &m, &err));
  EXPECT_EQ (m.audio.channel_id, "c\\u0000");
  /* a 300,000-deep frame is refused without recursion */
  std::string deep (300000, '[');
  EXPECT_FALSE (rtms::parse_message (deep.data (), deep.size (), &m, nullptr));
}
