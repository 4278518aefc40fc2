/* Unit tests of zoomrtms-host: pipeline templates (whitelist, quoting,
 * hostile engagement ids, broken files), .env and config loading, WAV repair.
 */
#include "host-bus.h"
#include "host-common.h"
#include "host-config.h"
#include "host-engagement-dir.h"
#include "host-journal.h"
#include "host-subtitles.h"
#include "host-http.h"
#include "host-template.h"
#include "host-wav.h"

#include <glib/gstdio.h>
#include <gst/gst.h>
#include <gtest/gtest.h>
#include <sndfile.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace zhost;

namespace {

class Env : public ::testing::Environment {
 public:
  void SetUp () override
  {
    gst_init (nullptr, nullptr);
    debug_init ();
  }
};
const auto *const env_ = ::testing::AddGlobalTestEnvironment (new Env);

/* A temporary directory removed with its files (one level deep). */
struct TempDir {
  std::string path;
  TempDir ()
  {
    g_autofree gchar *p = g_dir_make_tmp ("zoomrtms-host-unit-XXXXXX", nullptr);
    path = p;
  }
  ~TempDir ()
  {
    g_autoptr (GDir) d = g_dir_open (path.c_str (), 0, nullptr);
    while (const gchar *n = d ? g_dir_read_name (d) : nullptr) {
      g_autofree gchar *f = g_build_filename (path.c_str (), n, nullptr);
      g_remove (f);
    }
    g_rmdir (path.c_str ());
  }
  std::string file (const char *name) const
  {
    g_autofree gchar *f = g_build_filename (path.c_str (), name, nullptr);
    return f;
  }
  void write (const char *name, const std::string &text) const
  {
    ASSERT_TRUE (g_file_set_contents (file (name).c_str (), text.data (),
        static_cast<gssize> (text.size ()), nullptr));
  }
  bool read (const char *name, std::string *text) const
  {
    g_autofree gchar *c = nullptr;
    gsize n = 0;
    if (!g_file_get_contents (file (name).c_str (), &c, &n, nullptr))
      return false;
    text->assign (c, n);
    return true;
  }
};

/* The newest record of the durable copy file @name in @d (host-journal.h
 * "The durable copy"), "" when there is none. */
std::string
newest_copy (const TempDir &d, const char *name)
{
  std::string bytes;
  if (!d.read (name, &bytes))
    return "";
  const JournalSlot *best = nullptr;
  auto slots = journal_slots_parse (bytes);
  for (const auto &s : slots)
    if (!best || s.seq > best->seq)
      best = &s;
  return best ? best->text : "";
}

/* The inode of @name in @d, 0 when it does not exist. */
guint64
inode_of (const TempDir &d, const char *name)
{
  GStatBuf st;
  return g_stat (d.file (name).c_str (), &st) == 0 ? static_cast<guint64> (st.st_ino) : 0;
}

bool
have_zoomrtmssrc ()
{
  g_autoptr (GstElementFactory) f = gst_element_factory_find ("zoomrtmssrc");
  return f != nullptr;
}

TemplateVars
vars_with_dir (const std::string &dir)
{
  TemplateVars v = dummy_vars ();
  v["OUTPUT_DIR"] = dir;
  return v;
}

} // namespace

/* ---- sanitize_engagement_id ---- */

TEST (Sanitize, KeepsSafeIds)
{
  EXPECT_EQ (sanitize_engagement_id ("LjjdDBo5SkGneP8qY4SvuQ"), "LjjdDBo5SkGneP8qY4SvuQ");
  EXPECT_EQ (sanitize_engagement_id ("a-b_c"), "a-b_c");
}

TEST (Sanitize, HostileIdsCannotEscape)
{
  for (const char *id : {"../../etc/x", "a/b", "==+", "..", ".", "/", "a\\b",
           "4444AAAiAAAAAiAiAiiAii==", "x\ny", "a b", "\xc3\xa9t\xc3\xa9"}) {
    std::string s = sanitize_engagement_id (id);
    SCOPED_TRACE (id);
    ASSERT_FALSE (s.empty ());
    for (char c : s)
      EXPECT_TRUE (g_ascii_isalnum (c) || c == '_' || c == '-') << s;
    EXPECT_NE (s, id);
    /* changed ids carry an 8-hex-digit hash suffix */
    ASSERT_GT (s.size (), 9u);
    EXPECT_EQ (s[s.size () - 9], '-');
    GError *err = nullptr;
    EXPECT_TRUE (validate_variable ("ENGAGEMENT_ID", s, &err)) << s;
    g_clear_error (&err);
  }
  EXPECT_EQ (sanitize_engagement_id ("a/b").substr (0, 4), "a_b-");
}

TEST (Sanitize, DistinctIdsStayDistinct)
{
  EXPECT_NE (sanitize_engagement_id ("a/b"), sanitize_engagement_id ("a+b"));
  EXPECT_NE (sanitize_engagement_id ("a/b"), sanitize_engagement_id ("a_b"));
  EXPECT_EQ (sanitize_engagement_id ("a/b"), sanitize_engagement_id ("a/b"));
}

TEST (Sanitize, EmptyAndLong)
{
  std::string e = sanitize_engagement_id ("");
  EXPECT_EQ (e.substr (0, 11), "engagement-");
  std::string longid (300, 'x');
  std::string l = sanitize_engagement_id (longid);
  EXPECT_LE (l.size (), 64u + 9u);
  EXPECT_NE (l, sanitize_engagement_id (std::string (299, 'x')));
}

/* ---- validate_variable / quote_value ---- */

TEST (Variables, Whitelist)
{
  GError *err = nullptr;
  EXPECT_FALSE (validate_variable ("CLIENT_SECRET", "x", &err));
  ASSERT_NE (err, nullptr);
  EXPECT_NE (strstr (err->message, "CLIENT_SECRET"), nullptr);
  g_clear_error (&err);
}

TEST (Variables, Values)
{
  struct Case {
    const char *name, *value;
    bool ok;
  } cases[] = {
    {"OUTPUT_DIR", "/srv/rec/abc", true},
    {"OUTPUT_DIR", "/srv/rec with space/\"q\"", true},
    {"OUTPUT_DIR", "relative/dir", false},
    {"OUTPUT_DIR", "/srv/rec/../../etc", false},
    {"OUTPUT_DIR", "/srv/./rec", false},
    {"OUTPUT_DIR", "/srv/rec\n/x", false},
    {"OUTPUT_DIR", "", false},
    {"ENGAGEMENT_ID", "abc-DEF_9", true},
    {"ENGAGEMENT_ID", "../x", false},
    {"ENGAGEMENT_ID", "a b", false},
    {"RTP_HOST", "127.0.0.1", true},
    {"RTP_HOST", "::1", true},
    {"RTP_HOST", "media-relay.example.com", true},
    {"RTP_HOST", "evil host", false},
    {"RTP_HOST", "a\" ! filesink location=/etc/passwd", false},
    {"RTP_HOST", "-bad.example", false},
    {"RTP_HOST", "", false},
    {"RTP_PORT", "5004", true},
    {"RTP_PORT", "65535", true},
    {"RTP_PORT", "0", false},
    {"RTP_PORT", "70000", false},
    {"RTP_PORT", "50a", false},
    {"RTP_PORT", "010", false},       /* octal 8 to GStreamer */
    {"RTP_PORT", "00080", false},
    {"OUTPUT_DIR", "/rec/\xff\xfe", false}, /* not UTF-8: gst_parse_launch refuses it */
    {"RTP_PORT", "", false},
  };
  for (const auto &c : cases) {
    GError *err = nullptr;
    EXPECT_EQ (validate_variable (c.name, c.value, &err), c.ok)
        << c.name << "=" << c.value;
    if (!c.ok) {
      ASSERT_NE (err, nullptr);
      EXPECT_TRUE (g_error_matches (err, ZHOST_ERROR, ERROR_TEMPLATE));
    }
    g_clear_error (&err);
  }
}

TEST (Variables, Quote)
{
  EXPECT_EQ (quote_value ("abc"), "\"abc\"");
  EXPECT_EQ (quote_value ("a b\"c\\d"), "\"a b\\\"c\\\\d\"");
  EXPECT_EQ (quote_value (""), "\"\"");
}

/* ---- substitute_template ---- */

TEST (Substitute, UnquotedAndQuotedValues)
{
  std::string out;
  GError *err = nullptr;
  TemplateVars v = vars_with_dir ("/srv/rec/E1");
  ASSERT_TRUE (substitute_template (
      "src ! filesink location=${OUTPUT_DIR}/audio.wav", v, &out, &err));
  EXPECT_EQ (out, "src ! filesink location=\"/srv/rec/E1/audio.wav\"");
  ASSERT_TRUE (substitute_template (
      "filesink location=\"${OUTPUT_DIR}/my file.wav\"", v, &out, &err));
  EXPECT_EQ (out, "filesink location=\"/srv/rec/E1/my file.wav\"");
  ASSERT_TRUE (substitute_template (
      "udpsink host=${RTP_HOST} port=${RTP_PORT}", v, &out, &err));
  EXPECT_EQ (out, "udpsink host=\"127.0.0.1\" port=\"5004\"");
  /* text without variables passes through unchanged, '$' alone too */
  ASSERT_TRUE (substitute_template ("a  b=$x c=\"q r\"\n ! d", v, &out, &err));
  EXPECT_EQ (out, "a  b=$x c=\"q r\"\n ! d");
}

TEST (Substitute, Errors)
{
  TemplateVars v = dummy_vars ();
  struct Case {
    const char *text, *needle;
  } cases[] = {
    {"filesink location=${SECRET}/x", "unknown variable ${SECRET}"},
    {"filesink location=${OUTPUT_DIR", "unterminated"},
    {"filesink ${OUTPUT_DIR}", "property value"},
    {"audio/x-raw,rate=${RTP_PORT}", "property value"},
    {"filesink location=\"${OUTPUT_DIR}\"/x", "quote the whole value"},
    {"a\nb\nfilesink location=${NOPE}", "line 3"},
  };
  for (const auto &c : cases) {
    std::string out;
    GError *err = nullptr;
    EXPECT_FALSE (substitute_template (c.text, v, &out, &err)) << c.text;
    ASSERT_NE (err, nullptr) << c.text;
    EXPECT_NE (strstr (err->message, c.needle), nullptr)
        << c.text << " → " << err->message;
    g_clear_error (&err);
  }
  /* a bad value is refused even when the template is fine */
  v["RTP_PORT"] = "5004 ! filesink location=/tmp/x";
  std::string out;
  GError *err = nullptr;
  EXPECT_FALSE (substitute_template ("udpsink port=${RTP_PORT}", v, &out, &err));
  g_clear_error (&err);
}

TEST (Substitute, StripComments)
{
  EXPECT_EQ (strip_comments ("# c\na ! b\n  # d\nc"), "\na ! b\n\nc");
  EXPECT_EQ (strip_comments ("a location=x#y"), "a location=x#y");
}

/* The quoted value reaches the element verbatim through gst_parse_launch:
 * spaces, quotes, backslashes and '!' in the output root cannot inject
 * elements. */
TEST (Substitute, RoundTripThroughGstParse)
{
  const char *dirs[] = {"/srv/rec/E1", "/srv/a b/\"q\" ! fakesink name=x/\\z",
      "/tmp/=+,;'x"};
  for (const char *dir : dirs) {
    PipelineTemplate t;
    t.name = "t";
    t.path = "t.pipeline";
    t.text = "fakesrc num-buffers=0 ! filesink name=s location=${OUTPUT_DIR}/audio.wav";
    std::string desc;
    GError *err = nullptr;
    ASSERT_TRUE (substitute_template (t.text, vars_with_dir (dir), &desc, &err));
    GstElement *p = gst_parse_launch_full (desc.c_str (), nullptr,
        GST_PARSE_FLAG_FATAL_ERRORS, &err);
    ASSERT_NE (p, nullptr) << desc << ": " << (err ? err->message : "");
    GstElement *s = gst_bin_get_by_name (GST_BIN (p), "s");
    ASSERT_NE (s, nullptr);
    g_autofree gchar *loc = nullptr;
    g_object_get (s, "location", &loc, nullptr);
    EXPECT_EQ (std::string (loc), std::string (dir) + "/audio.wav");
    EXPECT_EQ (gst_bin_get_by_name (GST_BIN (p), "x"), nullptr);
    gst_object_unref (s);
    gst_object_unref (p);
  }
}

/* ---- build_pipeline / TemplateStore ---- */

TEST (Templates, ShippedPipelinesLoad)
{
  if (!have_zoomrtmssrc ())
    GTEST_SKIP () << "zoomrtmssrc plugin not built";
  const char *srcdir = g_getenv ("ZOOMRTMS_SOURCE_DIR");
  ASSERT_NE (srcdir, nullptr);
  g_autofree gchar *dir = g_build_filename (srcdir, "pipelines", nullptr);
  TemplateStore store;
  GError *err = nullptr;
  ASSERT_TRUE (store.load_dir (dir, &err)) << (err ? err->message : "");
  for (const char *n : {"record-wav", "record-opus", "record-all", "rtp-forward", "rtp-forward-opus",
           "record-participants"})
    ASSERT_NE (store.find (n), nullptr) << n;
  /* issue 14: the per-participant branch is taken out of the text, and a
   * demuxer without a branch (or a branch without the demuxer) is refused */
  EXPECT_NE (store.find ("record-participants")->participant_branch.find (
                 "${PARTICIPANT_ID}"), std::string::npos);
  EXPECT_EQ (store.find ("record-participants")->text.find ("@participant"),
      std::string::npos);
  EXPECT_TRUE (store.find ("record-wav")->participant_branch.empty ());
  {
    PipelineTemplate t;
    t.path = "x.pipeline";
    t.text = "zoomrtmssrc name=src layout=packets ! zoomrtmsdemux name=participants";
    GstElement *bad = build_pipeline (t, vars_with_dir ("/tmp/x"), "x", nullptr, &err);
    EXPECT_EQ (bad, nullptr);
    g_clear_error (&err);
    t.text = "zoomrtmssrc name=src ! fakesink\n"
        "@participant-branch wavenc ! filesink location=${OUTPUT_DIR}/p-${PARTICIPANT_ID}.wav";
    t.participant_branch = take_participant_branch (&t.text);
    EXPECT_EQ (build_pipeline (t, vars_with_dir ("/tmp/x"), "x", nullptr, &err), nullptr);
    g_clear_error (&err);
    /* ${PARTICIPANT_ID} has no value in the main text */
    t.text = "zoomrtmssrc name=src ! filesink location=${OUTPUT_DIR}/${PARTICIPANT_ID}.wav";
    t.participant_branch.clear ();
    EXPECT_EQ (build_pipeline (t, vars_with_dir ("/tmp/x"), "x", nullptr, &err), nullptr);
    g_clear_error (&err);
    /* the branch: PARTICIPANT_ID validated, a bin with a sink pad */
    t.participant_branch = "wavenc ! filesink location=${OUTPUT_DIR}/p-${PARTICIPANT_ID}.wav";
    TemplateVars v = vars_with_dir ("/tmp/x");
    v["PARTICIPANT_ID"] = "../etc";
    EXPECT_EQ (build_participant_branch (t, v, &err), nullptr);
    g_clear_error (&err);
    v["PARTICIPANT_ID"] = sanitize_engagement_id ("16778240");
    GstElement *branch = build_participant_branch (t, v, &err);
    ASSERT_NE (branch, nullptr) << (err ? err->message : "");
    gst_object_unref (branch);
  }
  EXPECT_TRUE (store.find ("record-all")->has_level);
  EXPECT_FALSE (store.find ("record-wav")->has_level);
  /* building gives a named pipeline whose src is the zoomrtmssrc */
  bool level = true;
  GstElement *p = build_pipeline (*store.find ("record-wav"),
      vars_with_dir ("/tmp/x"), "engagement-abc", &level, &err);
  ASSERT_NE (p, nullptr);
  EXPECT_STREQ (GST_OBJECT_NAME (p), "engagement-abc");
  EXPECT_FALSE (level);
  GstElement *src = gst_bin_get_by_name (GST_BIN (p), "src");
  ASSERT_NE (src, nullptr);
  EXPECT_STREQ (GST_OBJECT_NAME (gst_element_get_factory (src)), "zoomrtmssrc");
  gst_object_unref (src);
  gst_object_unref (p);
}

TEST (Templates, BrokenTemplateIsRefusedNamingFile)
{
  struct Case {
    const char *text, *needle;
  } cases[] = {
    {"zoomrtmssrc name=src ! nosuchelement ! fakesink", "nosuchelement"},
    {"zoomrtmssrc name=src ! fakesink nosuchproperty=1", "nosuchproperty"},
    {"zoomrtmssrc name=src ! filesink location=${WHO}", "unknown variable ${WHO}"},
    {"audiotestsrc ! fakesink", "exactly one zoomrtmssrc"},
    {"zoomrtmssrc name=other ! fakesink", "exactly one zoomrtmssrc"},
    {"zoomrtmssrc name=src ! fakesink zoomrtmssrc ! fakesink", "exactly one zoomrtmssrc"},
    /* S16LE into rtpL16pay fails to link at parse time (gstreamer-guide §3.3) */
    {"zoomrtmssrc name=src ! audio/x-raw,format=S16LE ! rtpL16pay ! fakesink", "broken.pipeline"},
  };
  for (const auto &c : cases) {
    if (!have_zoomrtmssrc () && strstr (c.text, "zoomrtmssrc name=src"))
      continue;
    TempDir d;
    d.write ("good.pipeline", "# fine\nfakesrc ! fakesink\n");
    d.write ("broken.pipeline", std::string ("# broken\n") + c.text + "\n");
    TemplateStore store;
    GError *err = nullptr;
    EXPECT_FALSE (store.load_dir (d.path, &err)) << c.text;
    ASSERT_NE (err, nullptr) << c.text;
    EXPECT_NE (strstr (err->message, "broken.pipeline"), nullptr) << err->message;
    EXPECT_NE (strstr (err->message, c.needle), nullptr)
        << c.text << " → " << err->message;
    g_clear_error (&err);
  }
}

TEST (Templates, EmptyOrMissingDirectory)
{
  TempDir d;
  TemplateStore store;
  GError *err = nullptr;
  EXPECT_FALSE (store.load_dir (d.path, &err));
  ASSERT_NE (err, nullptr);
  EXPECT_NE (strstr (err->message, "no *.pipeline"), nullptr);
  g_clear_error (&err);
  EXPECT_FALSE (store.load_dir (d.path + "/nope", &err));
  g_clear_error (&err);
}

/* ---- .env and config ---- */

TEST (Config, ParseDotenv)
{
  EnvMap m;
  GError *err = nullptr;
  ASSERT_TRUE (parse_dotenv (
      "# comment\n\nZOOM_APP_CLIENT_ID=abc\nexport ZOOM_APP_CLIENT_SECRET = \"s e\"\n"
      "ZOOM_SECRET_TOKEN='tok#1'\nPORT=3000 # the port\nEMPTY=\n", &m, &err));
  EXPECT_EQ (m["ZOOM_APP_CLIENT_ID"], "abc");
  EXPECT_EQ (m["ZOOM_APP_CLIENT_SECRET"], "s e");
  EXPECT_EQ (m["ZOOM_SECRET_TOKEN"], "tok#1");
  EXPECT_EQ (m["PORT"], "3000");
  EXPECT_EQ (m["EMPTY"], "");
}

TEST (Config, DotenvErrorDoesNotEchoSecrets)
{
  EnvMap m;
  GError *err = nullptr;
  EXPECT_FALSE (parse_dotenv ("A=1\nsupersecretvalue\n", &m, &err));
  ASSERT_NE (err, nullptr);
  EXPECT_NE (strstr (err->message, "line 2"), nullptr);
  EXPECT_EQ (strstr (err->message, "supersecret"), nullptr);
  g_clear_error (&err);
}

TEST (Config, Layers)
{
  TempDir d;
  d.write ("host.conf",
      "[server]\naddress=0.0.0.0\nport=9000\n"
      "[recording]\noutput-root=/srv/rec\ndefault-pipeline=record-all\n"
      "pipeline-for-meeting.rtms_started=record-opus\n"
      "pipeline-for-contact_center=rtp-forward\n"
      "[limits]\nmax-body-bytes=1024\nmax-engagements=3\nstop-timeout-ms=2000\n"
      "webhook-window-s=60\n[tls]\nca-file=/etc/ca.pem\n[rtp]\nhost=10.0.0.1\nport=6000\n");
  CliOptions cli;
  cli.config_file = d.file ("host.conf");
  EnvMap dotenv = {{"ZOOM_APP_CLIENT_ID", "dot_id"}, {"ZOOM_APP_CLIENT_SECRET", "dot_secret"},
      {"ZOOM_SECRET_TOKEN", "dot_token"}, {"PORT", "7000"}};
  EnvMap env = {{"ZOOM_APP_CLIENT_ID", "env_id"}, {"PORT", "7100"}};
  HostConfig cfg;
  GError *err = nullptr;
  ASSERT_TRUE (resolve_config (cli, dotenv, env, &cfg, &err)) << err->message;
  EXPECT_EQ (cfg.address, "0.0.0.0");
  EXPECT_EQ (cfg.port, 7100);             /* env PORT over .env over file */
  EXPECT_EQ (cfg.client_id, "env_id");    /* env over .env */
  EXPECT_EQ (cfg.client_secret, "dot_secret");
  EXPECT_EQ (cfg.secret_token, "dot_token");
  EXPECT_EQ (cfg.output_root, "/srv/rec");
  EXPECT_EQ (cfg.default_pipeline, "record-all");
  EXPECT_EQ (cfg.max_body_bytes, 1024u);
  EXPECT_EQ (cfg.max_engagements, 3);
  EXPECT_EQ (cfg.stop_timeout_ms, 2000);
  EXPECT_EQ (cfg.webhook_window_s, 60);
  EXPECT_EQ (cfg.ca_file, "/etc/ca.pem");
  EXPECT_EQ (cfg.rtp_host, "10.0.0.1");
  EXPECT_EQ (cfg.rtp_port, 6000);
  EXPECT_EQ (pipeline_for_event (cfg, "meeting.rtms_started"), "record-opus");
  EXPECT_EQ (pipeline_for_event (cfg, "contact_center.voice_rtms_started"), "rtp-forward");
  EXPECT_EQ (pipeline_for_event (cfg, "webinar.rtms_started"), "record-all");
  EXPECT_TRUE (check_secrets (cfg, &err));

  /* CLI over everything */
  cli.port = 0;
  cli.pipeline = "record-wav";
  cli.output_root = "rel/out";
  HostConfig cfg2;
  ASSERT_TRUE (resolve_config (cli, dotenv, env, &cfg2, &err));
  EXPECT_EQ (cfg2.port, 0);
  EXPECT_EQ (cfg2.default_pipeline, "record-wav");
  EXPECT_TRUE (g_path_is_absolute (cfg2.output_root.c_str ()));
  EXPECT_TRUE (g_str_has_suffix (cfg2.output_root.c_str (), "/rel/out"));
}

TEST (Config, BadValuesNameTheKey)
{
  TempDir d;
  d.write ("bad.conf", "[limits]\nmax-engagements=lots\n");
  CliOptions cli;
  cli.config_file = d.file ("bad.conf");
  HostConfig cfg;
  GError *err = nullptr;
  EXPECT_FALSE (resolve_config (cli, {}, {}, &cfg, &err));
  ASSERT_NE (err, nullptr);
  EXPECT_NE (strstr (err->message, "max-engagements"), nullptr) << err->message;
  g_clear_error (&err);
  cli.config_file = d.file ("missing.conf");
  EXPECT_FALSE (resolve_config (cli, {}, {}, &cfg, &err));
  g_clear_error (&err);
  CliOptions c2;
  EXPECT_FALSE (resolve_config (c2, {}, {{"PORT", "http"}}, &cfg, &err));
  g_clear_error (&err);
}

/* [http] keys and ZOOMRTMS_API_TOKEN (issue 8) */
TEST (Config, HttpKeysAndApiToken)
{
  TempDir d;
  d.write ("h.conf", "[http]\napi-token=from-file\nbacklog=128\n"
      "max-connections=900\nrequest-timeout-s=3\n");
  CliOptions cli;
  cli.config_file = d.file ("h.conf");
  HostConfig cfg;
  GError *err = nullptr;
  ASSERT_TRUE (resolve_config (cli, {}, {}, &cfg, &err)) << err->message;
  EXPECT_EQ (cfg.api_token, "from-file");
  EXPECT_EQ (cfg.http_backlog, 128);
  EXPECT_EQ (cfg.max_connections, 900);
  EXPECT_EQ (cfg.request_timeout_s, 3);
  HostConfig cfg2;
  ASSERT_TRUE (resolve_config (cli, {{"ZOOMRTMS_API_TOKEN", "dotenv"}},
      {{"ZOOMRTMS_API_TOKEN", "env"}}, &cfg2, &err));
  EXPECT_EQ (cfg2.api_token, "env");
  HostConfig defaults;
  EXPECT_TRUE (defaults.api_token.empty ());
  EXPECT_EQ (defaults.max_connections, 0);
  EXPECT_EQ (defaults.request_timeout_s, 10);
  d.write ("bad.conf", "[http]\nrequest-timeout-s=0\n");
  cli.config_file = d.file ("bad.conf");
  HostConfig cfg3;
  EXPECT_FALSE (resolve_config (cli, {}, {}, &cfg3, &err));
  ASSERT_NE (err, nullptr);
  EXPECT_NE (strstr (err->message, "request-timeout-s"), nullptr) << err->message;
  g_clear_error (&err);
}

/* host-http.h default_max_connections(): below the fd limit, with a reserve
 * of 16 fds per engagement and 32 for the process */
TEST (Http, DefaultMaxConnections)
{
  EXPECT_EQ (default_max_connections (65536, 64), 8192);      /* the ceiling */
  EXPECT_EQ (default_max_connections (4096, 64), 4096 - 32 - 16 * 64);
  EXPECT_EQ (default_max_connections (1024, 64), 512);         /* half */
  EXPECT_EQ (default_max_connections (256, 64), 128);
  EXPECT_EQ (default_max_connections (1, 64), 1);
  for (guint64 n : {64u, 256u, 1024u, 20000u, 65536u})
    EXPECT_LT (static_cast<guint64> (default_max_connections (n, 64)), n);
}

/* log_safe(): one line of ASCII, escaped, cut */
TEST (LogSafe, EscapesAndCuts)
{
  EXPECT_EQ (log_safe ("meeting.rtms_started"), "meeting.rtms_started");
  EXPECT_EQ (log_safe ("a\nb\rc\td\\e\"f"), "a\\nb\\rc\\td\\\\e\\\"f");
  EXPECT_EQ (log_safe ("\x1b[31m\x7f\xc3\xa9"), "\\x1b[31m\\x7f\\xc3\\xa9");
  EXPECT_EQ (log_safe (std::string ("a\0b", 3)), "a\\x00b");
  EXPECT_EQ (log_safe (nullptr), "(none)");
  std::string longer (500, 'x');
  std::string cut = log_safe (longer, 10);
  EXPECT_EQ (cut, "xxxxxxxxxx...(500 bytes)");
  for (char c : log_safe ("\n\r\x01\xff" + longer))
    EXPECT_TRUE (c >= 0x20 && c < 0x7f);
}

TEST (Config, MissingSecretsNamedNotPrinted)
{
  HostConfig cfg;
  cfg.client_id = "visible_id_value";
  cfg.client_secret = "";
  cfg.secret_token = "";
  GError *err = nullptr;
  EXPECT_FALSE (check_secrets (cfg, &err));
  ASSERT_NE (err, nullptr);
  EXPECT_NE (strstr (err->message, "ZOOM_SECRET_TOKEN"), nullptr);
  EXPECT_NE (strstr (err->message, "ZOOM_APP_CLIENT_SECRET"), nullptr);
  EXPECT_EQ (strstr (err->message, "ZOOM_APP_CLIENT_ID"), nullptr);
  EXPECT_EQ (strstr (err->message, "visible_id_value"), nullptr);
  g_clear_error (&err);
}

/* ---- WAV repair ---- */

namespace {

std::string
le32 (guint32 v)
{
  std::string s (4, '\0');
  for (int i = 0; i < 4; i++)
    s[i] = static_cast<char> ((v >> (8 * i)) & 0xff);
  return s;
}

/* A 16-bit stereo 16 kHz WAV header with the given size fields. */
std::string
wav_header (guint32 riff, guint32 data)
{
  std::string h = "RIFF" + le32 (riff) + "WAVE" + "fmt " + le32 (16);
  h += std::string ("\x01\x00\x02\x00", 4);        /* PCM, 2 channels */
  h += le32 (16000) + le32 (16000 * 4);
  h += std::string ("\x04\x00\x10\x00", 4);        /* block align 4, 16 bit */
  h += "data" + le32 (data);
  return h;
}

sf_count_t
sndfile_frames (const std::string &path)
{
  SF_INFO info;
  memset (&info, 0, sizeof info);
  SNDFILE *f = sf_open (path.c_str (), SFM_READ, &info);
  if (!f)
    return -1;
  sf_close (f);
  return info.frames;
}

/* The size field of the "data" chunk, or -1. */
gint64
data_size_field (const std::string &path)
{
  g_autofree gchar *c = nullptr;
  gsize len = 0;
  if (!g_file_get_contents (path.c_str (), &c, &len, nullptr) || len < 12)
    return -1;
  auto rd = [&c] (gsize o) {
    auto *u = reinterpret_cast<const guint8 *> (c);
    return static_cast<gint64> (u[o] | (u[o + 1] << 8) | (u[o + 2] << 16) |
        (static_cast<guint32> (u[o + 3]) << 24));
  };
  gsize pos = 12;
  while (pos + 8 <= len) {
    if (memcmp (c + pos, "data", 4) == 0)
      return rd (pos + 4);
    pos += 8 + rd (pos + 4) + (rd (pos + 4) & 1);
  }
  return -1;
}

} // namespace

TEST (WavRepair, FixesPlaceholderSizes)
{
  TempDir d;
  std::string samples (4000 + 3, '\x11');  /* 1000 frames + a partial frame */
  d.write ("a.wav", wav_header (0, 0) + samples);
  gboolean changed = FALSE;
  GError *err = nullptr;
  ASSERT_TRUE (wav_repair (d.file ("a.wav").c_str (), &changed, &err));
  EXPECT_TRUE (changed);
  g_autofree gchar *c = nullptr;
  gsize len = 0;
  ASSERT_TRUE (g_file_get_contents (d.file ("a.wav").c_str (), &c, &len, nullptr));
  std::string s (c, len);
  EXPECT_EQ (s.substr (4, 4), le32 (36 + 4000));
  EXPECT_EQ (s.substr (40, 4), le32 (4000));
  EXPECT_EQ (sndfile_frames (d.file ("a.wav")), 1000);
  /* a second repair finds nothing to do */
  ASSERT_TRUE (wav_repair (d.file ("a.wav").c_str (), &changed, &err));
  EXPECT_FALSE (changed);
}

TEST (WavRepair, SkipsExtraChunksAndOversizedFields)
{
  TempDir d;
  std::string h = wav_header (0xffffffff, 0xffffffff);
  /* insert a LIST chunk (odd size, padded) between fmt and data */
  std::string list = "LIST" + le32 (5) + std::string ("INFOx\0", 6);
  h.insert (36, list);
  d.write ("b.wav", h + std::string (800, '\x22'));
  gboolean changed = FALSE;
  GError *err = nullptr;
  ASSERT_TRUE (wav_repair (d.file ("b.wav").c_str (), &changed, &err))
      << err->message;
  EXPECT_TRUE (changed);
  EXPECT_EQ (sndfile_frames (d.file ("b.wav")), 200);
}

TEST (WavRepair, RefusesNonWav)
{
  TempDir d;
  d.write ("c.wav", "");
  d.write ("d.wav", "OggS........................................");
  d.write ("e.wav", "RIFF\0\0\0\0WAVEfmt ");
  for (const char *n : {"c.wav", "d.wav", "e.wav", "missing.wav"}) {
    GError *err = nullptr;
    EXPECT_FALSE (wav_repair (d.file (n).c_str (), nullptr, &err)) << n;
    ASSERT_NE (err, nullptr);
    EXPECT_TRUE (g_error_matches (err, ZHOST_ERROR, ERROR_WAV));
    g_clear_error (&err);
  }
}

/* The real case: wavenc killed before EOS leaves placeholder sizes; the
 * repaired file has every sample that reached the disk. */
TEST (WavRepair, WavencWithoutEos)
{
  TempDir d;
  std::string path = d.file ("killed.wav");
  std::string desc = "audiotestsrc num-buffers=50 samplesperbuffer=320 ! "
      "audio/x-raw,format=S16LE,rate=16000,channels=2 ! wavenc name=enc ! "
      "filesink buffer-mode=unbuffered location=" + quote_value (path);
  GError *err = nullptr;
  GstElement *p = gst_parse_launch (desc.c_str (), &err);
  ASSERT_NE (p, nullptr);
  /* PAUSED → PLAYING, then wait until all buffers reached the sink but
   * before EOS is handled: simulate the kill by stopping at the first
   * EOS message without letting wavenc rewrite (we drop EOS with a probe). */
  GstElement *enc = gst_bin_get_by_name (GST_BIN (p), "enc");
  ASSERT_NE (enc, nullptr);
  GstPad *sinkpad = gst_element_get_static_pad (enc, "sink");
  gst_pad_add_probe (sinkpad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
      [] (GstPad *, GstPadProbeInfo *info, gpointer) -> GstPadProbeReturn {
        if (GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info)) == GST_EVENT_EOS)
          return GST_PAD_PROBE_DROP;
        return GST_PAD_PROBE_OK;
      }, nullptr, nullptr);
  gst_object_unref (sinkpad);
  gst_element_set_state (p, GST_STATE_PLAYING);
  /* 50 buffers × 320 frames × 4 bytes land on disk */
  for (int i = 0; i < 200; i++) {
    GStatBuf st;
    if (g_stat (path.c_str (), &st) == 0 && st.st_size >= 44 + 50 * 320 * 4)
      break;
    g_usleep (10000);
  }
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (enc);
  gst_object_unref (p);
  /* without the repair the header does not describe the data (wavenc's
   * placeholder); libsndfile tolerates that, so read the fields */
  GStatBuf st;
  ASSERT_EQ (g_stat (path.c_str (), &st), 0);
  EXPECT_NE (data_size_field (path), static_cast<gint64> (st.st_size) - 44);
  gboolean changed = FALSE;
  ASSERT_TRUE (wav_repair (path.c_str (), &changed, &err)) << err->message;
  EXPECT_TRUE (changed);
  EXPECT_EQ (data_size_field (path), 50 * 320 * 4);
  EXPECT_EQ (sndfile_frames (path), 50 * 320);
}

/* ---- continuation: parts, merge, journal (issue 9) ---- */

TEST (Continuation, PartNames)
{
  EXPECT_EQ (EngagementDir::part_name ("audio.wav", 1), "audio.part1.wav");
  EXPECT_EQ (EngagementDir::part_name ("audio.opus", 12), "audio.part12.opus");
  EXPECT_EQ (EngagementDir::part_name ("raw", 2), "raw.part2");
}

/* Two parts (one killed without EOS: placeholder sizes, a partial frame)
 * and the last output merge into one WAV whose PCM is the three in order:
 * the offset of the continuation is the frames of the parts. Fails if the
 * merge re-encodes, drops or reorders a byte, or keeps a part. */
TEST (Continuation, WavPartsMergeExactly)
{
  TempDir d;
  std::string a (4 * 100, '\x01'), b (4 * 50, '\x02'), c (4 * 25, '\x03');
  d.write ("audio.wav", wav_header (36 + a.size (), a.size ()) + a);
  EngagementDir dir (d.path, "x");
  std::vector<std::string> outputs = {"audio.wav"};
  int parts = 0;
  GError *err = nullptr;
  ASSERT_TRUE (dir.move_outputs_aside (outputs, &parts, &err));
  EXPECT_EQ (parts, 1);
  EXPECT_FALSE (g_file_test (d.file ("audio.wav").c_str (), G_FILE_TEST_EXISTS));
  EXPECT_EQ (dir.recorded_samples (outputs, parts), 100);
  /* the second pipeline was killed: sizes 0, a trailing partial frame */
  d.write ("audio.wav", wav_header (0, 0) + b + "\x09\x09");
  ASSERT_TRUE (dir.move_outputs_aside (outputs, &parts, &err));
  EXPECT_EQ (parts, 2);
  EXPECT_EQ (dir.recorded_samples (outputs, parts), 150);
  d.write ("audio.wav", wav_header (36 + c.size (), c.size ()) + c);
  std::vector<gint64> silence;
  ASSERT_TRUE (dir.merge_parts (outputs, parts, &silence, &err)) << err->message;
  EXPECT_FALSE (g_file_test (d.file ("audio.part1.wav").c_str (), G_FILE_TEST_EXISTS));
  EXPECT_FALSE (g_file_test (d.file ("audio.part2.wav").c_str (), G_FILE_TEST_EXISTS));
  EXPECT_EQ (sndfile_frames (d.file ("audio.wav")), 175);
  g_autofree gchar *got = nullptr;
  gsize len = 0;
  ASSERT_TRUE (g_file_get_contents (d.file ("audio.wav").c_str (), &got, &len, nullptr));
  EXPECT_EQ (std::string (got + 44, len - 44), a + b + c);
  ASSERT_EQ (silence.size (), 2u);
  EXPECT_EQ (silence[0], 0);
}

TEST (Continuation, WavMergeRefusesAnotherFormat)
{
  TempDir d;
  std::string h = wav_header (36 + 8, 8);
  h[22] = 1;                           /* mono */
  d.write ("p1.wav", wav_header (36 + 8, 8) + std::string (8, '\x01'));
  d.write ("p2.wav", h + std::string (8, '\x02'));
  GError *err = nullptr;
  EXPECT_FALSE (wav_concat ({d.file ("p1.wav"), d.file ("p2.wav")}, d.file ("o.wav"),
      &err));
  ASSERT_NE (err, nullptr);
  EXPECT_NE (std::string (err->message).find ("format differs"), std::string::npos);
  g_clear_error (&err);
  EXPECT_FALSE (g_file_test (d.file ("o.wav").c_str (), G_FILE_TEST_EXISTS));
}

TEST (Continuation, LeadingZeroFrames)
{
  TempDir d;
  std::string pcm (4 * 30, '\0');
  pcm += std::string ("\0\0\x05\0", 4) + std::string (4 * 3, '\0');
  d.write ("z.wav", wav_header (36 + pcm.size (), pcm.size ()) + pcm);
  EXPECT_EQ (wav_leading_zero_frames (d.file ("z.wav").c_str ()), 30);
}

/* The journal: written atomically, read back whole, no secret in it (the
 * entry has no field for one), a broken file moved aside, remove() deletes
 * the entry and its packet logs. */
TEST (Journal, RoundTripAndRemove)
{
  TempDir d;
  Journal j (d.path);
  GError *err = nullptr;
  ASSERT_TRUE (j.open (&err));
  JournalEntry e;
  e.id_key = "engagement_id";
  e.id_value = "eng/1";
  e.rtms_stream_id = "stream-1";
  e.server_urls = "wss://example/sig";
  e.pipeline = "record-wav";
  e.directory = d.path;
  e.dir_name = "eng_1";
  e.outputs = {"audio.wav", "../evil"};
  e.parts = 2;
  e.timeline_origin = 1738392033000;
  e.rate = 16000;
  e.channels = 2;
  e.samples = 123456;
  e.state = "detached";
  e.detached = 1738392099000;
  Interruption i;
  i.cause = "host-restart";
  i.start = 1;
  i.end = 2;
  i.silence_ms = 900;
  e.interruptions.push_back (i);
  ASSERT_TRUE (j.write (e, true));
  d.write ("junk.json", "{not json");
  std::string plog = j.packet_log_path ("stream-1", 3);
  g_autofree gchar *plog_name = g_path_get_basename (plog.c_str ());
  d.write (plog_name, "x");
  auto all = j.load_all ();
  ASSERT_EQ (all.size (), 1u);
  const JournalEntry &r = all[0];
  EXPECT_EQ (r.id_value, "eng/1");
  EXPECT_EQ (r.server_urls, "wss://example/sig");
  EXPECT_EQ (r.outputs, std::vector<std::string> {"audio.wav"});   /* no path escapes */
  EXPECT_EQ (r.parts, 2);
  EXPECT_EQ (r.timeline_origin, 1738392033000);
  EXPECT_EQ (r.samples, 123456u);
  EXPECT_EQ (r.state, "detached");
  EXPECT_EQ (r.detached, 1738392099000);
  EXPECT_GT (r.updated, 0);
  ASSERT_EQ (r.interruptions.size (), 1u);
  EXPECT_EQ (r.interruptions[0].cause, "host-restart");
  EXPECT_EQ (r.interruptions[0].silence_ms, 900);
  EXPECT_TRUE (g_file_test (d.file ("junk.json.broken").c_str (), G_FILE_TEST_EXISTS));
  j.remove ("stream-1");
  EXPECT_TRUE (j.load_all ().empty ());
  EXPECT_FALSE (g_file_test (plog.c_str (), G_FILE_TEST_EXISTS));
}

/* The journal's durability rule (host-journal.h "Durability"): a durable
 * write (state transition) also stores the durable copy (NAME.json.slots);
 * the periodic update rewrites only the entry, exchanging it with the swap file; an
 * entry a power cut left empty or older than the copy is read from the copy
 * (load and load_all); remove() deletes entry, copy, swap file and the
 * temporary files a crash left mid-write. */
/* A list read back from an entry (after a crash, by another node) is
 * bounded: 1000 objects at most, non-objects skipped. */
TEST (Journal, ListsReadBackAreBounded)
{
  g_autoptr (JsonArray) a = json_array_new ();
  json_array_add_int_element (a, 7);
  for (int k = 0; k < 1500; k++) {
    JsonObject *o = json_object_new ();
    json_object_set_string_member (o, "cause", "media");
    json_object_set_string_member (o, "node", "h1");
    json_array_add_object_element (a, o);
  }
  auto ints = interruptions_from_json (a);
  ASSERT_EQ (ints.size (), 999u);       /* element 0 is not an object */
  EXPECT_EQ (ints[0].cause, "media");
  EXPECT_EQ (ints[0].silence_ms, -1);
  EXPECT_EQ (owners_from_json (a).size (), 999u);
  EXPECT_EQ (owners_from_json (a)[0].node, "h1");
  EXPECT_TRUE (interruptions_from_json (nullptr).empty ());
}

TEST (Journal, DurableCopyAndPeriodicUpdate)
{
  TempDir d;
  Journal j (d.path);
  GError *err = nullptr;
  ASSERT_TRUE (j.open (&err));
  JournalEntry e;
  e.rtms_stream_id = "stream-2";
  e.directory = d.path;
  e.dir_name = "eng_2";
  e.samples = 16000;
  ASSERT_TRUE (j.write (e, true));
  std::string copy = newest_copy (d, "stream-2.json.slots");
  std::string entry;
  ASSERT_TRUE (d.read ("stream-2.json", &entry));
  EXPECT_EQ (copy, entry);
  /* the periodic update: the entry moves on, the copy stays */
  e.samples = 48000;
  ASSERT_TRUE (j.write (e, false));
  JournalEntry r;
  ASSERT_TRUE (j.load ("stream-2", &r));
  EXPECT_EQ (r.samples, 48000u);
  copy = newest_copy (d, "stream-2.json.slots");
  EXPECT_NE (copy.find ("\"samples\":16000"), std::string::npos) << copy;
  /* in place: the previous entry is now the swap file */
  std::string swapped;
  ASSERT_TRUE (d.read ("stream-2.json.swap", &swapped));
  EXPECT_EQ (swapped, entry);
  e.samples = 64000;
  ASSERT_TRUE (j.write (e, false));
  ASSERT_TRUE (j.load ("stream-2", &r));
  EXPECT_EQ (r.samples, 64000u);
  /* a power cut kept an entry older than the last state transition: the
   * copy, which is newer */
  ASSERT_TRUE (d.read ("stream-2.json", &entry));
  gsize at = entry.find ("\"updated\":");
  ASSERT_NE (at, std::string::npos);
  gsize end = entry.find (',', at);
  d.write ("stream-2.json", entry.substr (0, at) + "\"updated\":1" + entry.substr (end));
  ASSERT_TRUE (j.load ("stream-2", &r));
  EXPECT_EQ (r.samples, 16000u);
  ASSERT_EQ (j.load_all ().size (), 1u);
  EXPECT_EQ (j.load_all ()[0].samples, 16000u);
  /* a power cut left the entry empty: the copy is the entry */
  d.write ("stream-2.json", "");
  JournalEntry r2;
  ASSERT_TRUE (j.load ("stream-2", &r2));
  EXPECT_EQ (r2.samples, 16000u);
  EXPECT_EQ (r2.dir_name, "eng_2");
  auto all = j.load_all ();
  ASSERT_EQ (all.size (), 1u);
  EXPECT_EQ (all[0].rtms_stream_id, "stream-2");
  EXPECT_EQ (all[0].samples, 16000u);
  EXPECT_TRUE (g_file_test (d.file ("stream-2.json.broken").c_str (), G_FILE_TEST_EXISTS));
  /* no temporary file is left by a write; a crash's is removed */
  d.write ("stream-2.json.tmp-AbC123", "{");
  ASSERT_TRUE (j.write (e, true));
  j.remove ("stream-2");
  EXPECT_FALSE (j.load ("stream-2", &r));
  EXPECT_FALSE (g_file_test (d.file ("stream-2.json").c_str (), G_FILE_TEST_EXISTS));
  EXPECT_FALSE (g_file_test (d.file ("stream-2.json.slots").c_str (), G_FILE_TEST_EXISTS));
  EXPECT_FALSE (g_file_test (d.file ("stream-2.json.swap").c_str (), G_FILE_TEST_EXISTS));
  EXPECT_FALSE (g_file_test (d.file ("stream-2.json.tmp-AbC123").c_str (), G_FILE_TEST_EXISTS));
  /* what is left: the broken file, kept for a human */
  std::vector<std::string> left;
  g_autoptr (GDir) dd = g_dir_open (d.path.c_str (), 0, nullptr);
  while (const gchar *n = dd ? g_dir_read_name (dd) : nullptr)
    left.push_back (n);
  EXPECT_EQ (left, std::vector<std::string> {"stream-2.json.broken"});
}

/* issue 12: the journal's writer thread (host-journal.h "The writer
 * thread"): what is submitted is on disk after flush(), the newest version
 * of each entry wins, a state transition keeps its durable copy even when
 * a later update of the same entry replaced it in the queue, write() and
 * remove() are ordered after what was submitted before them, and the
 * removal of an entry this process wrote unlinks its own packet logs by
 * name (other generations only with a scan). */
TEST (Journal, WriterThreadOrderAndRemoval)
{
  TempDir d;
  auto j = std::make_unique<Journal> (d.path);
  GError *err = nullptr;
  ASSERT_TRUE (j->open (&err));
  auto entry = [&d] (const std::string &sid, guint64 samples) {
    JournalEntry e;
    e.rtms_stream_id = sid;
    e.directory = d.path;
    e.dir_name = "eng_" + sid;
    e.samples = samples;
    return e;
  };
  /* 200 entries, each a state transition then two updates */
  for (int k = 0; k < 200; k++) {
    JournalEntry e = entry ("s" + std::to_string (k), 1);
    j->submit (e, true);
    e.samples = 2;
    j->submit (e, false);
    e.samples = 3;
    j->submit (e, false);
  }
  j->flush ();
  auto all = j->load_all ();
  ASSERT_EQ (all.size (), 200u);
  for (const auto &e : all)
    EXPECT_EQ (e.samples, 3u) << e.rtms_stream_id;
  for (int k = 0; k < 200; k++) {
    std::string name = "s" + std::to_string (k) + ".json.slots";
    std::string copy = newest_copy (d, name.c_str ());
    ASSERT_FALSE (copy.empty ()) << name;
    /* the transition itself, or (coalesced in the queue) a newer version */
    EXPECT_EQ (copy.find ("\"samples\":0"), std::string::npos) << copy;
  }
  /* write() after submit(): the synchronous one is the last word */
  JournalEntry a = entry ("s0", 7);
  j->submit (a, false);
  a.samples = 8;
  ASSERT_TRUE (j->write (a, true));
  JournalEntry r;
  ASSERT_TRUE (j->load ("s0", &r));
  EXPECT_EQ (r.samples, 8u);
  /* remove_async of our own entry: generations 1..2 unlinked by name; a
   * generation 3 we never wrote stays (no scan); a write queued before the
   * removal does not bring the entry back */
  for (int g = 1; g <= 3; g++) {
    g_autofree gchar *n = g_path_get_basename (j->packet_log_path ("s1", g).c_str ());
    d.write (n, "x");
  }
  JournalEntry b = entry ("s1", 9);
  j->submit (b, true);
  j->remove_async ("s1", 2, false);
  j->wait_removed ("s1");
  EXPECT_FALSE (g_file_test (j->packet_log_path ("s1", 1).c_str (), G_FILE_TEST_EXISTS));
  EXPECT_FALSE (g_file_test (j->packet_log_path ("s1", 2).c_str (), G_FILE_TEST_EXISTS));
  EXPECT_TRUE (g_file_test (j->packet_log_path ("s1", 3).c_str (), G_FILE_TEST_EXISTS));
  EXPECT_FALSE (j->load ("s1", &r));
  EXPECT_FALSE (g_file_test (d.file ("s1.json.slots").c_str (), G_FILE_TEST_EXISTS));
  /* with a scan (an entry a previous host left): every generation and a
   * crash's temporary file */
  d.write ("s2.json.tmp-XyZ789", "{");
  j->remove_async ("s2", 1, true);
  j->remove_async ("s1", 0, true);
  j->flush ();
  EXPECT_FALSE (g_file_test (j->packet_log_path ("s1", 3).c_str (), G_FILE_TEST_EXISTS));
  EXPECT_FALSE (g_file_test (d.file ("s2.json.tmp-XyZ789").c_str (), G_FILE_TEST_EXISTS));
  EXPECT_FALSE (j->load ("s2", &r));
  /* the destructor waits for what was submitted */
  JournalEntry c = entry ("s3", 11);
  j->submit (c, false);
  j.reset ();
  Journal again (d.path);
  ASSERT_TRUE (again.load ("s3", &r));
  EXPECT_EQ (r.samples, 11u);
  EXPECT_EQ (again.load_all ().size (), 198u);
}

/* The writer's group commit (host-journal.h "The writer thread"): batches
 * that create or remove names share one fsync of the directory, made when
 * the group commit's wait ends or at once when a thread waits (flush());
 * the files themselves are written at once. */
TEST (Journal, GroupCommitSharesDirectoryFsync)
{
  TempDir d;
  /* a wait no test machine reaches: the fsync comes from the flush */
  Journal j (d.path, 60 * 1000);
  GError *err = nullptr;
  ASSERT_TRUE (j.open (&err));
  for (int k = 0; k < 5; k++) {
    JournalEntry e;
    e.rtms_stream_id = "g" + std::to_string (k);
    e.directory = d.path;
    e.dir_name = "eng_g" + std::to_string (k);
    j.submit (e, true);
    /* each its own batch: written at once, the directory's fsync owed */
    std::string name = e.rtms_stream_id + ".json";
    for (int t = 0; t < 5000 && !g_file_test (d.file (name.c_str ()).c_str (),
            G_FILE_TEST_EXISTS); t++)
      g_usleep (1000);
    ASSERT_TRUE (g_file_test (d.file (name.c_str ()).c_str (), G_FILE_TEST_EXISTS)) << k;
  }
  j.remove_async ("g0", 1, false);
  for (int t = 0; t < 5000 && g_file_test (d.file ("g0.json").c_str (),
          G_FILE_TEST_EXISTS); t++)
    g_usleep (1000);
  EXPECT_FALSE (g_file_test (d.file ("g0.json").c_str (), G_FILE_TEST_EXISTS));
  EXPECT_EQ (j.directory_syncs (), 0u);
  j.flush ();
  EXPECT_EQ (j.directory_syncs (), 1u);
  /* periodic updates create no name: nothing owed */
  JournalEntry e;
  ASSERT_TRUE (j.load ("g1", &e));
  e.samples = 7;
  j.submit (e, false);
  j.flush ();
  EXPECT_EQ (j.directory_syncs (), 1u);
  /* with no wait, every batch that created a name has its own fsync */
  TempDir d2;
  Journal now (d2.path, 0);
  ASSERT_TRUE (now.open (&err));
  for (int k = 0; k < 3; k++) {
    JournalEntry f;
    f.rtms_stream_id = "n" + std::to_string (k);
    f.directory = d2.path;
    f.dir_name = "eng_n" + std::to_string (k);
    now.submit (f, true);
    now.flush ();
  }
  EXPECT_EQ (now.directory_syncs (), 3u);
}

/* The durable copy's records (host-journal.h "The durable copy"): a record
 * reads back exactly; a bad checksum, another version, a record out of its
 * slot or out of the file, a header at an offset that is not 0 or the slot
 * size are not records. */
/* Review finding: a record with a valid checksum but a slot size larger
 * than any record needs (the reader reads two of the largest) or a
 * sequence number whose successor would not parse is not a valid record:
 * otherwise every later write went where it is never read back, and the
 * stale record stayed the newest. */
TEST (Journal, SlotRecordsOutOfBoundsAreInvalid)
{
  const std::string a = "{\"rtms_stream_id\":\"a\"}\n";
  const gsize largest = journal_slot_size_for (1 << 30);
  EXPECT_EQ (journal_slots_parse (journal_slot_encode (4096, 1, a)).size (), 1u);
  std::string huge = journal_slot_encode (64 * largest, 1, a);
  EXPECT_TRUE (journal_slots_parse (huge).empty ());
  std::string last = journal_slot_encode (4096, G_GUINT64_CONSTANT (9999999999999999999), a);
  EXPECT_TRUE (journal_slots_parse (last).empty ());
}

TEST (Journal, SlotRecordsParse)
{
  const std::string a = "{\"rtms_stream_id\":\"a\"}\n", b = "{\"x\":2}\n";
  std::string r0 = journal_slot_encode (4096, 7, a);
  std::string r1 = journal_slot_encode (4096, 8, b);
  std::string file = r0 + std::string (4096 - r0.size (), '\0') + r1;
  auto v = journal_slots_parse (file);
  ASSERT_EQ (v.size (), 2u);
  EXPECT_EQ (v[0].offset, 0u);
  EXPECT_EQ (v[0].seq, 7u);
  EXPECT_EQ (v[0].slot_size, 4096u);
  EXPECT_EQ (v[0].text, a);
  EXPECT_EQ (v[1].offset, 4096u);
  EXPECT_EQ (v[1].seq, 8u);
  EXPECT_EQ (v[1].text, b);
  /* one byte of the text changed: that record is gone, the other stays */
  std::string bad = file;
  bad[r0.size () - 3] ^= 1;
  v = journal_slots_parse (bad);
  ASSERT_EQ (v.size (), 1u);
  EXPECT_EQ (v[0].seq, 8u);
  /* the sequence number changed: the checksum covers the header */
  bad = file;
  bad[bad.find (" 7 ")] = ' ';
  bad[bad.find (" 7 ") + 1] = '9';
  v = journal_slots_parse (bad);
  ASSERT_EQ (v.size (), 1u);
  EXPECT_EQ (v[0].seq, 8u);
  /* cut inside the second record; a second slot at the wrong offset */
  EXPECT_EQ (journal_slots_parse (file.substr (0, file.size () - 1)).size (), 1u);
  std::string far = r0 + std::string (8192 - r0.size (), '\0') + r1;
  EXPECT_EQ (journal_slots_parse (far).size (), 1u);
  /* a record that does not fit its slot; another version; no record */
  EXPECT_TRUE (journal_slots_parse (journal_slot_encode (4096, 1,
      std::string (5000, ' '))).empty ());
  std::string v2 = r0;
  v2.replace (v2.find (" 1 "), 3, " 2 ");
  EXPECT_TRUE (journal_slots_parse (v2).empty ());
  EXPECT_TRUE (journal_slots_parse ("").empty ());
  EXPECT_TRUE (journal_slots_parse ("{\"version\":1}").empty ());
  EXPECT_EQ (journal_slot_size_for (100), 4096u);
  EXPECT_EQ (journal_slot_size_for (3000), 8192u);
}

/* A power cut in the middle of a state transition's write: whatever part
 * of the rewritten slot reached the disk (any prefix, or any suffix, of
 * the record), the copy reads back as the new transition or the previous
 * one, never nothing; and the next transition is written into the torn
 * slot, never over the valid previous one. */
TEST (Journal, DurableCopyTornWrite)
{
  TempDir d;
  Journal j (d.path);
  GError *err = nullptr;
  ASSERT_TRUE (j.open (&err));
  JournalEntry e;
  e.rtms_stream_id = "torn";
  e.directory = d.path;
  e.dir_name = "eng_torn";
  e.samples = 1;
  ASSERT_TRUE (j.write (e, true));
  e.samples = 2;
  ASSERT_TRUE (j.write (e, true));
  std::string before, after;
  ASSERT_TRUE (d.read ("torn.json.slots", &before));
  e.samples = 3;
  ASSERT_TRUE (j.write (e, true));
  ASSERT_TRUE (d.read ("torn.json.slots", &after));
  ASSERT_EQ (before.size (), after.size ());   /* slot 0 rewritten in place */
  auto v = journal_slots_parse (after);
  ASSERT_EQ (v.size (), 2u);
  gsize from = 0, to = 0;    /* the bytes the third write changed */
  while (from < after.size () && before[from] == after[from])
    from++;
  to = after.size ();
  while (to > from && before[to - 1] == after[to - 1])
    to--;
  ASSERT_LT (from, to);
  int olds = 0, news = 0;
  for (gsize cut = from; cut <= to; cut += 5) {
    for (int suffix = 0; suffix < 2; suffix++) {
      /* prefix: the first bytes of the write reached the disk; suffix:
       * the last ones (sectors written out of order) */
      std::string torn = suffix ? before.substr (0, cut) + after.substr (cut) :
          after.substr (0, cut) + before.substr (cut);
      d.write ("torn.json.slots", torn);
      d.write ("torn.json", "");       /* the entry lost too */
      JournalEntry r;
      ASSERT_TRUE (j.load ("torn", &r)) << cut << " " << suffix;
      ASSERT_TRUE (r.samples == 2 || r.samples == 3) << r.samples;
      (r.samples == 3 ? news : olds)++;
    }
  }
  EXPECT_GT (olds, 0);
  EXPECT_GT (news, 0);
  /* a torn slot 0 (sequence 3): the next write goes into it again */
  d.write ("torn.json.slots", after.substr (0, from + 1) + before.substr (from + 1));
  e.samples = 4;
  ASSERT_TRUE (j.write (e, true));
  std::string now;
  ASSERT_TRUE (d.read ("torn.json.slots", &now));
  v = journal_slots_parse (now);
  ASSERT_EQ (v.size (), 2u);
  EXPECT_EQ (v[1].seq, 2u);              /* the previous transition kept */
  EXPECT_NE (v[1].text.find ("\"samples\":2,"), std::string::npos);
  EXPECT_EQ (v[0].seq, 3u);
  EXPECT_NE (v[0].text.find ("\"samples\":4,"), std::string::npos);
  JournalEntry r;
  ASSERT_TRUE (j.load ("torn", &r));
  EXPECT_EQ (r.samples, 4u);
  j.remove ("torn");
}

/* The journal's files are made once per entry: state transitions and
 * periodic updates reuse two inodes for the entry (exchanged) and one for
 * the durable copy (rewritten in place), however many writes. A record
 * that outgrows the copy's slots goes into a new copy file, read back. */
TEST (Journal, NoInodePerWrite)
{
  TempDir d;
  Journal j (d.path);
  GError *err = nullptr;
  ASSERT_TRUE (j.open (&err));
  JournalEntry e;
  e.rtms_stream_id = "ino";
  e.directory = d.path;
  e.dir_name = "eng_ino";
  ASSERT_TRUE (j.write (e, true));
  ASSERT_TRUE (j.write (e, false));
  std::set<guint64> entry_inodes = {inode_of (d, "ino.json"), inode_of (d, "ino.json.swap")};
  guint64 copy_inode = inode_of (d, "ino.json.slots");
  ASSERT_EQ (entry_inodes.size (), 2u);
  ASSERT_NE (copy_inode, 0u);
  for (int k = 0; k < 12; k++) {
    e.samples = static_cast<guint64> (12 - k) * 16000;   /* 6 digits, then 5 */
    ASSERT_TRUE (j.write (e, k % 3 == 0));
    EXPECT_TRUE (entry_inodes.count (inode_of (d, "ino.json"))) << k;
    EXPECT_TRUE (entry_inodes.count (inode_of (d, "ino.json.swap"))) << k;
    EXPECT_EQ (inode_of (d, "ino.json.slots"), copy_inode) << k;
    /* the entry's text exactly: a shorter one cuts the file */
    std::string entry;
    ASSERT_TRUE (d.read ("ino.json", &entry));
    EXPECT_EQ (entry.back (), '\n');
    EXPECT_EQ (entry.find ('\n'), entry.size () - 1);
  }
  /* outgrown: 200 interruptions do not fit in 4096-byte slots */
  for (int k = 0; k < 200; k++)
    e.interruptions.push_back ({"media", k, k + 1, 20, true});
  ASSERT_TRUE (j.write (e, true));
  EXPECT_NE (inode_of (d, "ino.json.slots"), copy_inode);
  std::string bytes;
  ASSERT_TRUE (d.read ("ino.json.slots", &bytes));
  auto v = journal_slots_parse (bytes);
  ASSERT_EQ (v.size (), 1u);
  EXPECT_GT (v[0].slot_size, 4096u);
  d.write ("ino.json", "");
  JournalEntry r;
  ASSERT_TRUE (j.load ("ino", &r));
  EXPECT_EQ (r.interruptions.size (), 200u);
  /* and the next transition goes into the new file's second slot */
  e.samples = 5;
  ASSERT_TRUE (j.write (e, true));
  ASSERT_TRUE (d.read ("ino.json.slots", &bytes));
  EXPECT_EQ (journal_slots_parse (bytes).size (), 2u);
  j.remove ("ino");
  EXPECT_FALSE (g_file_test (d.file ("ino.json.slots").c_str (), G_FILE_TEST_EXISTS));
}

/* An entry written by a host before the slots file: NAME.json with its
 * copy NAME.json.durable, one inode (a hard link). It reads back (the copy
 * when the entry is unreadable or older); a new host continuing it writes
 * its own copy and never rewrites the old copy's inode in place; remove()
 * deletes the old copy too. */
TEST (Journal, OldFormatReadBack)
{
  TempDir d;
  Journal j (d.path);
  GError *err = nullptr;
  ASSERT_TRUE (j.open (&err));
  const std::string old_text = "{\"version\":1,\"state\":\"live\",\"rtms_stream_id\":\"old\","
      "\"directory\":\"" + d.path + "\",\"dir_name\":\"eng_old\",\"samples\":100,"
      "\"updated\":1000,\"server_urls\":\"wss://example/old\"}\n";
  d.write ("old.json.durable", old_text);
  ASSERT_EQ (link (d.file ("old.json.durable").c_str (), d.file ("old.json").c_str ()), 0);
  JournalEntry r;
  ASSERT_TRUE (j.load ("old", &r));
  EXPECT_EQ (r.samples, 100u);
  EXPECT_EQ (r.server_urls, "wss://example/old");
  /* the entry left empty by a power cut: the old copy */
  d.write ("old.json", "");
  ASSERT_TRUE (j.load ("old", &r));
  EXPECT_EQ (r.samples, 100u);
  auto all = j.load_all ();
  ASSERT_EQ (all.size (), 1u);
  EXPECT_EQ (all[0].samples, 100u);
  ASSERT_EQ (unlink (d.file ("old.json.broken").c_str ()), 0);
  /* continued by this version: the old copy's inode is the entry again
   * (a third name, "inode", to read that inode afterwards) */
  ASSERT_EQ (link (d.file ("old.json.durable").c_str (), d.file ("old.json").c_str ()), 0);
  ASSERT_EQ (link (d.file ("old.json.durable").c_str (), d.file ("inode").c_str ()), 0);
  r.samples = 200;
  ASSERT_TRUE (j.write (r, true));
  /* the first durable write retires the old copy */
  EXPECT_FALSE (g_file_test (d.file ("old.json.durable").c_str (), G_FILE_TEST_EXISTS));
  for (int k = 0; k < 4; k++) {
    r.samples = 300 + static_cast<guint64> (k);
    ASSERT_TRUE (j.write (r, false));
  }
  std::string still;
  ASSERT_TRUE (d.read ("inode", &still));
  EXPECT_EQ (still, old_text);
  ASSERT_EQ (unlink (d.file ("inode").c_str ()), 0);
  ASSERT_TRUE (j.load ("old", &r));
  EXPECT_EQ (r.samples, 303u);
  /* an older entry than the new copy: the new copy, not the old one */
  d.write ("old.json", old_text);
  ASSERT_TRUE (j.load ("old", &r));
  EXPECT_EQ (r.samples, 200u);
  /* a host of the earlier version wrote a later transition (a fleet of
   * mixed versions): its .durable copy is the newer one */
  std::string later = old_text;
  later.replace (later.find ("\"updated\":1000"), 14, "\"updated\":99999999999999");
  later.replace (later.find ("\"samples\":100"), 13, "\"samples\":900");
  d.write ("old.json.durable", later);
  d.write ("old.json", "");
  ASSERT_TRUE (j.load ("old", &r));
  EXPECT_EQ (r.samples, 900u);
  j.remove ("old");
  EXPECT_FALSE (g_file_test (d.file ("old.json.durable").c_str (), G_FILE_TEST_EXISTS));
  EXPECT_FALSE (g_file_test (d.file ("old.json.slots").c_str (), G_FILE_TEST_EXISTS));
  EXPECT_FALSE (g_file_test (d.file ("old.json").c_str (), G_FILE_TEST_EXISTS));
}

/* A copy without its entry is what a crash in the middle of a removal
 * leaves (the entry is unlinked first): not an engagement to rejoin. */
TEST (Journal, CopyWithoutEntryIsNotListed)
{
  TempDir d;
  Journal j (d.path);
  GError *err = nullptr;
  ASSERT_TRUE (j.open (&err));
  JournalEntry e;
  e.rtms_stream_id = "lone";
  e.directory = d.path;
  e.dir_name = "eng_lone";
  ASSERT_TRUE (j.write (e, true));
  ASSERT_EQ (unlink (d.file ("lone.json").c_str ()), 0);
  EXPECT_TRUE (j.load_all ().empty ());
  j.remove ("lone");
  EXPECT_FALSE (g_file_test (d.file ("lone.json.slots").c_str (), G_FILE_TEST_EXISTS));
}

/* issue 12: BusWatch (host-bus.h) keeps the meaning of a bus watch with one
 * main-loop source for every bus: the messages of each bus reach its
 * handler on the main context, in the order posted, from any thread; a
 * handler that says stop gets nothing more and the later messages are
 * queued for pop() (filtered as gst_bus_pop_filtered); after the BusWatch
 * is gone its handler is never called. */
TEST (BusWatch, OrderStopAndPop)
{
  g_autoptr (GstBus) b1 = gst_bus_new ();
  g_autoptr (GstBus) b2 = gst_bus_new ();
  GThread *main_thread = g_thread_self ();
  std::vector<int> got1, got2;
  bool off_main = false;
  auto index_of = [] (GstMessage *m) {
    const GstStructure *s = gst_message_get_structure (m);
    gint i = -1;
    if (s)
      gst_structure_get_int (s, "i", &i);
    return i;
  };
  auto w1 = std::make_unique<BusWatch> (b1, [&] (GstMessage *m) {
        off_main = off_main || g_thread_self () != main_thread;
        got1.push_back (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR ? -100 : index_of (m));
        /* an ERROR stops the dispatch, as bus_cb's G_SOURCE_REMOVE */
        return GST_MESSAGE_TYPE (m) != GST_MESSAGE_ERROR;
      });
  auto w2 = std::make_unique<BusWatch> (b2, [&] (GstMessage *m) {
        off_main = off_main || g_thread_self () != main_thread;
        got2.push_back (index_of (m));
        return true;
      });
  auto app = [] (int i) {
    return gst_message_new_application (nullptr,
        gst_structure_new ("t", "i", G_TYPE_INT, i, nullptr));
  };
  auto error = [] (const char *text) {
    GError *e = g_error_new_literal (GST_CORE_ERROR, GST_CORE_ERROR_FAILED, text);
    GstMessage *m = gst_message_new_error (nullptr, e, text);
    g_error_free (e);
    return m;
  };
  /* 500 messages on each bus from two threads, more than one batch */
  std::thread t1 ([&] {
        for (int i = 0; i < 500; i++)
          gst_bus_post (b1, app (i));
      });
  std::thread t2 ([&] {
        for (int i = 0; i < 500; i++)
          gst_bus_post (b2, app (i));
      });
  t1.join ();
  t2.join ();
  for (int n = 0; n < 100000 && (got1.size () < 500 || got2.size () < 500); n++)
    g_main_context_iteration (nullptr, TRUE);
  ASSERT_EQ (got1.size (), 500u);
  ASSERT_EQ (got2.size (), 500u);
  for (int i = 0; i < 500; i++) {
    EXPECT_EQ (got1[i], i);
    EXPECT_EQ (got2[i], i);
  }
  EXPECT_FALSE (off_main);
  /* a dispatched message is released (the sync handler owns what it
   * drops): only our own reference is left */
  GstMessage *held = app (42);
  gst_message_ref (held);
  gst_bus_post (b2, held);
  for (int n = 0; n < 1000 && got2.size () < 501; n++)
    g_main_context_iteration (nullptr, TRUE);
  ASSERT_EQ (got2.size (), 501u);
  EXPECT_EQ (GST_MINI_OBJECT_REFCOUNT_VALUE (held), 1);
  gst_message_unref (held);
  /* stop at the ERROR; what follows stays queued for pop() */
  got1.clear ();
  gst_bus_post (b1, app (1));
  gst_bus_post (b1, error ("first"));
  gst_bus_post (b1, app (2));
  gst_bus_post (b1, gst_message_new_warning (nullptr, nullptr, "w"));
  gst_bus_post (b1, app (3));
  gst_bus_post (b1, error ("second"));
  for (int n = 0; n < 1000 && got1.size () < 2; n++)
    g_main_context_iteration (nullptr, TRUE);
  while (g_main_context_iteration (nullptr, FALSE))
    ;
  EXPECT_EQ (got1, (std::vector<int> {1, -100}));
  GstMessageType ew = static_cast<GstMessageType> (GST_MESSAGE_ERROR | GST_MESSAGE_WARNING);
  GstMessage *m = w1->pop (ew);
  ASSERT_NE (m, nullptr);
  EXPECT_EQ (GST_MESSAGE_TYPE (m), GST_MESSAGE_WARNING);
  gst_message_unref (m);
  m = w1->pop (ew);
  ASSERT_NE (m, nullptr);
  EXPECT_EQ (GST_MESSAGE_TYPE (m), GST_MESSAGE_ERROR);
  GError *e = nullptr;
  gst_message_parse_error (m, &e, nullptr);
  EXPECT_STREQ (e->message, "second");
  g_error_free (e);
  gst_message_unref (m);
  EXPECT_EQ (w1->pop (ew), nullptr);
  /* gone: no more calls; the bus keeps what is posted (no sync handler) */
  got2.clear ();
  gst_bus_post (b2, app (7));
  w2.reset ();
  while (g_main_context_iteration (nullptr, FALSE))
    ;
  EXPECT_TRUE (got2.empty ());
  gst_bus_post (b2, app (8));
  while (g_main_context_iteration (nullptr, FALSE))
    ;
  EXPECT_TRUE (got2.empty ());
  g_autoptr (GstMessage) left = gst_bus_pop (b2);
  ASSERT_NE (left, nullptr);
  EXPECT_EQ (index_of (left), 8);
}

/* ---- WebVTT / SRT transcripts (host-subtitles.h, issue 14) ---- */

TEST (Subtitles, TimesAndFormats)
{
  EXPECT_EQ (subtitle_time (0, '.'), "00:00:00.000");
  EXPECT_EQ (subtitle_time (3723004, '.'), "01:02:03.004");
  EXPECT_EQ (subtitle_time (3723004, ','), "01:02:03,004");
  EXPECT_EQ (subtitle_time (100 * 3600000LL + 1, ','), "100:00:00,001");
  EXPECT_EQ (subtitle_time (-5, '.'), "00:00:00.000");
}

/* Sorted by start (stable), empty text dropped, every cue ends after it
 * starts, own durations honoured, estimates cut at the next start and at
 * the recording's end, nothing longer than kMaxCueMs. */
TEST (Subtitles, CueOrderAndEnds)
{
  std::vector<SubtitleLine> lines = {
    {5000, -1, "B", "second"},
    {1000, 2500, "A", "first, with its own duration"},
    {5000, -1, "C", "same start, after B"},
    {7000, -1, "D", "   "},                 /* whitespace only: no cue */
    {8000, -1, "E", ""},                    /* empty: no cue */
    {9000, 60000, "F", "too long"},
    {30000, -1, "G", std::string (400, 'x')},
  };
  auto cues = subtitle_cues (lines, 31000, false);
  ASSERT_EQ (cues.size (), 5u);
  EXPECT_EQ (cues[0].speaker, "A");
  EXPECT_EQ (cues[0].start_ms, 1000);
  EXPECT_EQ (cues[0].end_ms, 3500);
  EXPECT_EQ (cues[1].speaker, "B");
  EXPECT_EQ (cues[2].speaker, "C");
  /* an estimate (6 chars → kMinCueMs) up to the next later start (9000) */
  EXPECT_EQ (cues[1].end_ms, 5000 + kMinCueMs);
  EXPECT_EQ (cues[3].speaker, "F");
  EXPECT_EQ (cues[3].end_ms, 9000 + kMaxCueMs);
  EXPECT_EQ (cues[4].speaker, "G");
  EXPECT_EQ (cues[4].end_ms, 31000);        /* the recording's end */
  for (const auto &c : cues)
    EXPECT_GT (c.end_ms, c.start_ms);
  /* an estimate is cut at the next start (VTT and SRT); a cue's own
   * duration overlaps the next in VTT only */
  std::vector<SubtitleLine> close = {{0, -1, "A", std::string (100, 'y')},
    {2000, -1, "B", "next"}};
  auto vtt = subtitle_cues (close, -1, false);
  auto srt = subtitle_cues (close, -1, true);
  EXPECT_EQ (vtt[0].end_ms, 2000);          /* estimate 6 s, cut at the next start */
  EXPECT_EQ (srt[0].end_ms, 2000);
  std::vector<SubtitleLine> own = {{0, 5000, "A", "long own duration"},
    {2000, -1, "B", "next"}};
  EXPECT_EQ (subtitle_cues (own, -1, false)[0].end_ms, 5000);  /* VTT overlaps */
  EXPECT_EQ (subtitle_cues (own, -1, true)[0].end_ms, 2000);   /* SRT does not */
  /* a start at or after the recording's end still gets a cue */
  auto late = subtitle_cues ({{40000, -1, "Z", "late"}}, 31000, false);
  ASSERT_EQ (late.size (), 1u);
  EXPECT_GT (late[0].end_ms, late[0].start_ms);
}

/* WebVTT: header, voice spans, &, <, > escaped in text and names, line
 * breaks folded (a blank line would end the cue), invalid UTF-8 replaced.
 * SRT: indices from 1, comma milliseconds, "Name: text". */
TEST (Subtitles, RenderEscapesAndNumbers)
{
  std::vector<SubtitleLine> lines = {
    {1500, 1000, "Jane <Doe> & Co", "a < b && c > d\n\nnext --> line"},
    {250, -1, "", "no speaker"},
    {3000, 500, "Bad\xff", "text\xc3"},
  };
  std::string vtt = render_webvtt (lines, -1);
  EXPECT_EQ (vtt,
      "WEBVTT\n"
      "\n00:00:00.250 --> 00:00:01.250\nno speaker\n"
      "\n00:00:01.500 --> 00:00:02.500\n<v Jane &lt;Doe&gt; &amp; Co>a &lt; b &amp;&amp; c "
      "&gt; d next --&gt; line\n"
      "\n00:00:03.000 --> 00:00:03.500\n<v Bad\xef\xbf\xbd>text\xef\xbf\xbd\n");
  std::string srt = render_srt (lines, -1);
  EXPECT_EQ (srt,
      "1\n00:00:00,250 --> 00:00:01,250\nno speaker\n"
      "\n2\n00:00:01,500 --> 00:00:02,500\nJane <Doe> & Co: a < b && c > d next --> line\n"
      "\n3\n00:00:03,000 --> 00:00:03,500\nBad\xef\xbf\xbd: text\xef\xbf\xbd\n");
  EXPECT_EQ (render_webvtt ({}, -1), "WEBVTT\n");
  EXPECT_EQ (render_srt ({{0, -1, "A", " \t "}}, -1), "");
}

/* EngagementDir writes the three transcripts together, from the same lines. */
TEST (Subtitles, WrittenBesideTranscriptTxt)
{
  g_autofree gchar *tmp = g_dir_make_tmp ("subtitles-XXXXXX", nullptr);
  ASSERT_NE (tmp, nullptr);
  EngagementDir d (tmp, "x");
  d.write_transcript ("meeting_uuid", "m==", "sid", "2026-01-01T00:00:00Z", "record-wav",
      {{2000, "Tom", "later"}, {1000, "Jane", "first"}}, "Lines: 2\n", 10000);
  g_autofree gchar *vtt = nullptr, *srt = nullptr;
  ASSERT_TRUE (g_file_get_contents (d.file ("transcript.vtt").c_str (), &vtt, nullptr, nullptr));
  ASSERT_TRUE (g_file_get_contents (d.file ("transcript.srt").c_str (), &srt, nullptr, nullptr));
  EXPECT_STREQ (vtt, "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v Jane>first\n"
      "\n00:00:02.000 --> 00:00:03.000\n<v Tom>later\n");
  EXPECT_TRUE (g_str_has_prefix (srt, "1\n00:00:01,000 --> 00:00:02,000\nJane: first\n"));
  for (const char *f : EngagementDir::kTranscriptFiles)
    g_remove (d.file (f).c_str ());
  g_rmdir (tmp);
}
