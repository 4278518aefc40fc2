/* zoomrtms-host for an operator (issue 11, "Logs an operator can use",
 * "Health that means something", "Config hygiene", history from disk):
 *
 *   - unit: the configuration's key table and its lint (file:line, closest
 *     name), journal fields, storage checks, the caps check of --check,
 *     the bounded history reader;
 *   - end to end (zoomrtms-sim → zoomrtms-host): call start/end lines,
 *     the element's error text and debug detail for a TLS certificate the
 *     host does not trust and for caps that cannot be negotiated, the RTMS
 *     client's lines through GST_DEBUG and reconnects as warnings, --check,
 *     /health with a minimum, GET /engagements from disk after a restart;
 *   - as root (skipped otherwise; the process runs in a private mount
 *     namespace, so nothing it mounts outlives it): a disk that fills up
 *     mid-call (a 1 MiB tmpfs as one engagement's directory) ends that
 *     engagement alone with a valid WAV (soxi) and a recorded error, the
 *     other one records to the end sample for sample; a read-only output
 *     root; journald fields received on a journal socket of our own.
 */
#include "host-common.h"
#include "host-config.h"
#include "host-health.h"
#include "host-history.h"
#include "host-log.h"
#include "host-template.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "host-e2e-util.h"

namespace {

using namespace hosttest;

/* set by main(): a private mount namespace we may mount in (root) */
bool g_can_mount = false;

class Env : public ::testing::Environment {
 public:
  void SetUp () override
  {
    gst_init (nullptr, nullptr);
    zhost::debug_init ();
  }
};
const auto *const env_ = ::testing::AddGlobalTestEnvironment (new Env);

#define REQUIRE_MOUNT()                                                        \
  do {                                                                         \
    if (!g_can_mount)                                                          \
      GTEST_SKIP () << "needs root (a private mount namespace to mount tmpfs)"; \
  } while (0)

void
write_text (const std::string &path, const std::string &text)
{
  ASSERT_TRUE (g_file_set_contents (path.c_str (), text.data (),
          static_cast<gssize> (text.size ()), nullptr)) << path;
}

bool
contains (const std::string &hay, const std::string &needle)
{
  return hay.find (needle) != std::string::npos;
}

gsize
count_of (const std::string &hay, const std::string &needle)
{
  gsize n = 0;
  for (gsize p = hay.find (needle); p != std::string::npos; p = hay.find (needle, p + 1))
    n++;
  return n;
}

/* The directory of the only engagement under @out (skips ".state"). */
std::vector<std::string>
engagement_dirs (const std::string &out)
{
  std::vector<std::string> v;
  for (const auto &n : list_dir (out))
    if (g_file_test ((out + "/" + n + "/engagement.json").c_str (), G_FILE_TEST_EXISTS))
      v.push_back (n);
  return v;
}

std::string
errors_of (JsonObject *o)
{
  std::string all;
  JsonArray *a = json_object_get_array_member (o, "errors");
  for (guint i = 0; a && i < json_array_get_length (a); i++)
    all += std::string (json_array_get_string_element (a, i)) + "\n";
  return all;
}

/* Runs zoomrtms-host with @args, returns its exit status and output. */
int
run_host (const std::vector<std::string> &args, std::string *out)
{
  std::vector<std::string> argv = {host_bin ()};
  argv.insert (argv.end (), args.begin (), args.end ());
  std::vector<const gchar *> a;
  for (const auto &s : argv)
    a.push_back (s.c_str ());
  a.push_back (nullptr);
  g_autofree gchar *o = nullptr, *e = nullptr;
  gint status = -1;
  g_auto (GStrv) envp = g_get_environ ();
  envp = g_environ_unsetenv (envp, "ZOOM_SECRET_TOKEN");
  if (!g_spawn_sync (nullptr, const_cast<gchar **> (a.data ()), envp,
          G_SPAWN_DEFAULT, nullptr, nullptr, &o, &e, &status, nullptr))
    return -1;
  *out = std::string (o ? o : "") + (e ? e : "");
  if (!WIFEXITED (status))
    return -1;
  return WEXITSTATUS (status);
}

/* ------------------------------------------------------------ unit */

TEST (ConfigLint, UnknownGroupsAndKeysWithFileAndLine)
{
  std::string text =
      "# a comment\n"
      "[server]\n"
      "port=8080\n"
      "\n"
      "[limit]\n"                       /* line 5: misspelled group */
      "max-engagements=3\n"
      "[http]\n"
      "api-tokn=x\n"                    /* line 8: misspelled key */
      "[recording]\n"
      "max-engagements=2\n"             /* line 10: key of another group */
      "pipeline-for-meeting=record-opus\n"
      "output-root[de]=x\n"             /* a translation of a known key */
      "[server]\n"
      "port=8081\n"                     /* line 14: given again */
      "[cluster]\n"
      "redis-url=redis://127.0.0.1\n"   /* the fleet's keys are known */
      "node-id=a\n"
      "[health]\n"
      "min-free-bytes=0\n"
      "[totally-different]\n";          /* line 20: no suggestion */
  auto w = zhost::lint_config_text ("/etc/h.conf", text);
  ASSERT_EQ (w.size (), 5u) << ::testing::PrintToString (w);
  EXPECT_EQ (w[0], "/etc/h.conf:5: unknown group [limit], its keys are ignored "
      "(did you mean [limits]?)");
  EXPECT_EQ (w[1], "/etc/h.conf:8: unknown key \"api-tokn\" in [http], ignored "
      "(did you mean api-token?)");
  EXPECT_EQ (w[2], "/etc/h.conf:10: unknown key \"max-engagements\" in [recording], "
      "ignored (it belongs in [limits])");
  EXPECT_EQ (w[3], "/etc/h.conf:14: [server] port given again (first on line 3): "
      "this one counts");
  EXPECT_EQ (w[4], "/etc/h.conf:20: unknown group [totally-different], its keys "
      "are ignored");
  /* a clean file: nothing */
  EXPECT_TRUE (zhost::lint_config_text ("x", "[server]\nport=1\n").empty ());
  /* bytes from the file reach the message escaped */
  auto esc = zhost::lint_config_text ("x", "[server]\nbad\x1b[31mkey=1\n");
  ASSERT_EQ (esc.size (), 1u);
  EXPECT_FALSE (contains (esc[0], "\x1b"));
  EXPECT_TRUE (contains (esc[0], "\\x1b"));
}

TEST (ConfigLint, LoadedFileAppliesTableAndCollectsWarnings)
{
  TempDir tmp;
  std::string path = tmp / "h.conf";
  write_text (path, "[health]\nmin-free-bytes=12345\n[limits]\nmax-engagement=2\n"
      "stop-grace-ms=700\n[recording]\npipeline-for-contact_center=record-all\n");
  zhost::HostConfig cfg;
  GError *err = nullptr;
  ASSERT_TRUE (zhost::load_config_file (path, &cfg, &err)) << err->message;
  EXPECT_EQ (cfg.min_free_bytes, 12345u);
  EXPECT_EQ (cfg.stop_grace_ms, 700);
  EXPECT_EQ (cfg.pipeline_for["contact_center"], "record-all");
  ASSERT_EQ (cfg.config_warnings.size (), 1u);
  EXPECT_EQ (cfg.config_warnings[0], path + ":4: unknown key \"max-engagement\" in "
      "[limits], ignored (did you mean max-engagements?)");
  /* a value out of range is an error naming the file and the key */
  write_text (path, "[health]\nmin-free-bytes=-1\n");
  zhost::HostConfig c2;
  EXPECT_FALSE (zhost::load_config_file (path, &c2, &err));
  ASSERT_NE (err, nullptr);
  EXPECT_TRUE (contains (err->message, "[health] min-free-bytes")) << err->message;
  EXPECT_TRUE (contains (err->message, path)) << err->message;
  g_clear_error (&err);
}

/* Every key of the table is documented: host-config.h, the example
 * configuration and the man page name it (common rules: "New config keys
 * go in host-config.h's comment, data/zoomrtms-host.conf.example and the
 * man page"). */
TEST (ConfigLint, EveryKeyIsDocumented)
{
  std::string header = read_file (source_path ("src/host/host-config.h"));
  std::string example = read_file (source_path ("data/zoomrtms-host.conf.example"));
  std::string man = read_file (source_path ("data/zoomrtms-host.1.in"));
  ASSERT_FALSE (man.empty ());
  /* troff escapes '-' as "\-" */
  std::string man_plain;
  for (gsize i = 0; i < man.size (); i++)
    if (!(man[i] == '\\' && i + 1 < man.size () && man[i + 1] == '-'))
      man_plain += man[i];
  auto keys = zhost::config_key_names (false);
  ASSERT_GT (keys.size (), 15u);
  for (const auto &k : keys) {
    gsize sp = k.find (' ');
    std::string group = k.substr (0, sp);           /* "[health]" */
    std::string key = k.substr (sp + 1);
    if (!key.empty () && key.back () == '*')
      key.pop_back ();
    EXPECT_TRUE (contains (header, key)) << k << " not in host-config.h";
    EXPECT_TRUE (contains (example, group)) << k << " group not in the example";
    EXPECT_TRUE (contains (example, key)) << k << " not in the example config";
    EXPECT_TRUE (contains (man_plain, key)) << k << " not in the man page";
  }
}

TEST (HostLog, JournalFields)
{
  zhost::LogContext ctx {"eng\nid", "stream-1", "eng_id-1234abcd"};
  auto f = zhost::journal_fields (G_LOG_LEVEL_WARNING, &ctx, "line one\nline two");
  ASSERT_GE (f.size (), 7u);
  EXPECT_EQ (f[0], "MESSAGE=line one line two");
  EXPECT_EQ (f[1], "PRIORITY=4");
  std::set<std::string> s (f.begin (), f.end ());
  EXPECT_TRUE (s.count ("SYSLOG_IDENTIFIER=zoomrtms-host"));
  EXPECT_TRUE (s.count ("ENGAGEMENT_ID=eng\\nid"));    /* escaped: one line */
  EXPECT_TRUE (s.count ("RTMS_STREAM_ID=stream-1"));
  EXPECT_TRUE (s.count ("ZOOMRTMS_DIRECTORY=eng_id-1234abcd"));
  EXPECT_EQ (zhost::journal_fields (G_LOG_LEVEL_MESSAGE, nullptr, "x")[1], "PRIORITY=5");
  EXPECT_EQ (zhost::journal_fields (G_LOG_LEVEL_INFO, nullptr, "x").size (), 4u);
  /* stderr of this test is not the journal */
  EXPECT_FALSE (zhost::log_to_journal ());
}

TEST (HostHealth, CheckStorage)
{
  TempDir tmp;
  zhost::StorageStatus ok = zhost::check_storage (tmp.path, 1);
  EXPECT_TRUE (ok.exists);
  EXPECT_TRUE (ok.writable);
  EXPECT_GT (ok.free_bytes, 0u);
  EXPECT_EQ (ok.problem, "");
  zhost::StorageStatus low = zhost::check_storage (tmp.path, G_MAXUINT64);
  EXPECT_TRUE (contains (low.problem, "under the minimum")) << low.problem;
  EXPECT_TRUE (zhost::check_storage (tmp.path, 0).problem.empty ());
  zhost::StorageStatus gone = zhost::check_storage (tmp / "missing", 0);
  EXPECT_FALSE (gone.exists);
  EXPECT_TRUE (contains (gone.problem, "missing")) << gone.problem;
  EXPECT_EQ (zhost::format_bytes (1500), "1.5 kB");
}

/* The caps check of --check: what zoomrtmssrc will output against what
 * follows it, in NULL state. */
TEST (TemplateCaps, NegotiationCheckedWithoutRunning)
{
  struct Case {
    const char *text;
    bool ok;
    const char *in_error;
  } cases[] = {
    {"zoomrtmssrc name=src layout=stereo ! wavenc ! filesink location=${OUTPUT_DIR}/a.wav",
      true, nullptr},
    /* parses (the template has rate 16000) but src asks Zoom for 48000 */
    {"zoomrtmssrc name=src rate=48000 ! audio/x-raw,rate=16000 ! wavenc ! fakesink",
      false, "rate=(int)48000"},
    /* impossible rate behind an element that passes the rate on */
    {"zoomrtmssrc name=src ! queue ! audioconvert ! audio/x-raw,rate=8000 ! fakesink",
      false, "rate=(int)8000"},
    /* audioresample can make it */
    {"zoomrtmssrc name=src ! audioresample ! audio/x-raw,rate=8000 ! fakesink", true, nullptr},
    /* Opus passed through into an encoder of raw audio */
    {"zoomrtmssrc name=src codec=opus ! wavenc ! fakesink", false, "audio/x-opus"},
    {"zoomrtmssrc name=src codec=opus ! oggmux ! fakesink", true, nullptr},
    /* one branch of a tee cannot take mono */
    {"zoomrtmssrc name=src ! tee name=t t. ! queue ! audio/x-raw,channels=2 ! fakesink "
      "t. ! queue ! fakesink", false, "channels=(int)1"},
  };
  for (const auto &c : cases) {
    zhost::PipelineTemplate t;
    t.name = "t";
    t.path = "t.pipeline";
    t.text = c.text;
    GError *err = nullptr;
    GstElement *p = zhost::build_pipeline (t, zhost::dummy_vars (), "caps", nullptr, &err);
    ASSERT_NE (p, nullptr) << c.text << ": " << (err ? err->message : "");
    std::string caps;
    bool ok = zhost::check_pipeline_caps (p, t.path, &caps, &err);
    EXPECT_EQ (ok, c.ok) << c.text << ": " << (err ? err->message : "passed");
    if (!ok && c.in_error) {
      EXPECT_TRUE (contains (err->message, c.in_error)) << err->message;
      EXPECT_TRUE (contains (err->message, "t.pipeline: caps cannot be negotiated")) <<
          err->message;
    }
    if (ok) {
      EXPECT_TRUE (g_str_has_prefix (caps.c_str (), "audio/")) << caps;
    }
    g_clear_error (&err);
    gst_object_unref (p);
  }
  /* the shipped pipelines all pass */
  zhost::TemplateStore store;
  GError *err = nullptr;
  ASSERT_TRUE (store.load_dir (source_path ("pipelines"), &err)) << err->message;
  std::vector<std::string> problems;
  std::map<std::string, std::string> caps;
  EXPECT_TRUE (store.check_caps (&problems, &caps)) << ::testing::PrintToString (problems);
  EXPECT_EQ (caps.size (), store.names ().size ());
}

TEST (HostHistory, NewestFirstBoundedAndSafe)
{
  TempDir tmp;
  std::string root = tmp.path;
  for (int i = 0; i < 5; i++) {
    std::string d = root + "/e" + std::to_string (i);
    g_mkdir (d.c_str (), 0750);
    write_text (d + "/engagement.json", "{\"engagement_id\":\"e" + std::to_string (i) +
        "\",\"state\":\"stopped\"}");
    /* distinct modification times, e0 the oldest */
    struct timespec ts[2] = {{1000000 + i, 0}, {1000000 + i, 0}};
    utimensat (AT_FDCWD, (d + "/engagement.json").c_str (), ts, 0);
  }
  g_mkdir ((root + "/.state").c_str (), 0700);          /* never listed */
  g_mkdir ((root + "/empty").c_str (), 0750);           /* no engagement.json */
  g_mkdir ((root + "/broken").c_str (), 0750);
  write_text (root + "/broken/engagement.json", "{not json");
  struct timespec old[2] = {{10, 0}, {10, 0}};
  utimensat (AT_FDCWD, (root + "/broken/engagement.json").c_str (), old, 0);
  {
    zhost::History h;
    zhost::read_history (root, 3, {"e4"}, &h);
    ASSERT_EQ (h.engagements.size (), 3u);
    std::vector<std::string> ids;
    for (JsonNode *n : h.engagements)
      ids.push_back (json_object_get_string_member (json_node_get_object (n), "dir_name"));
    EXPECT_EQ (ids, (std::vector<std::string> {"e3", "e2", "e1"}));
    EXPECT_EQ (h.found, 5u);                  /* e0..e3 and broken */
    EXPECT_TRUE (h.more);
  }
  {
    zhost::History h;
    zhost::read_history (root, 100, {}, &h);
    ASSERT_EQ (h.engagements.size (), 6u);
    EXPECT_FALSE (h.more);
    JsonObject *last = json_node_get_object (h.engagements.back ());
    EXPECT_STREQ (json_object_get_string_member (last, "dir_name"), "broken");
    EXPECT_TRUE (json_object_has_member (last, "error"));
  }
  JsonNode *one = zhost::read_engagement_from_disk (root, "e2");
  ASSERT_NE (one, nullptr);
  EXPECT_STREQ (json_object_get_string_member (json_node_get_object (one), "engagement_id"), "e2");
  json_node_unref (one);
  /* nothing outside the output root */
  write_text (tmp / "secret.json", "{}");
  EXPECT_EQ (zhost::read_engagement_from_disk (root + "/e1", "../e2"), nullptr);
  EXPECT_EQ (zhost::read_engagement_from_disk (root, ".state"), nullptr);
  EXPECT_EQ (zhost::read_engagement_from_disk (root, "nope"), nullptr);
}

/* A symlink in the output root (to a directory, or as engagement.json) is
 * not followed: JSON from outside the root never reaches GET /engagements. */
TEST (HostHistory, SymlinksUnderTheRootIgnored)
{
  TempDir tmp;
  std::string root = tmp / "root", outside = tmp / "outside";
  g_mkdir (root.c_str (), 0750);
  g_mkdir (outside.c_str (), 0750);
  write_text (outside + "/engagement.json",
      "{\"engagement_id\":\"outside-secret\",\"state\":\"stopped\"}");
  g_mkdir ((root + "/e0").c_str (), 0750);
  write_text (root + "/e0/engagement.json", "{\"engagement_id\":\"e0\",\"state\":\"stopped\"}");
  /* a symlinked engagement directory */
  ASSERT_EQ (symlink (outside.c_str (), (root + "/linkdir").c_str ()), 0);
  /* a real directory whose engagement.json is a symlink */
  g_mkdir ((root + "/linkfile").c_str (), 0750);
  ASSERT_EQ (symlink ((outside + "/engagement.json").c_str (),
      (root + "/linkfile/engagement.json").c_str ()), 0);
  zhost::History h;
  zhost::read_history (root, 100, {}, &h);
  std::vector<std::string> ids;
  for (JsonNode *n : h.engagements)
    ids.push_back (json_object_get_string_member (json_node_get_object (n), "dir_name"));
  EXPECT_EQ (ids, (std::vector<std::string> {"e0"}));
  EXPECT_EQ (h.found, 1u);
  EXPECT_EQ (zhost::read_engagement_from_disk (root, "linkdir"), nullptr);
  EXPECT_EQ (zhost::read_engagement_from_disk (root, "linkfile"), nullptr);
  JsonNode *one = zhost::read_engagement_from_disk (root, "e0");
  ASSERT_NE (one, nullptr);
  json_node_unref (one);
}

/* ------------------------------------------------------------ end to end */

/* One line when a call starts and one when it ends, with the stop reason,
 * duration, packets, silence, interruptions and files; GET /engagements
 * reads the finished ones from disk, after a restart too. */
TEST (HostOps, CallLinesAndHistoryAfterRestart)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  std::vector<SimStream> streams;
  {
    Host h (tmp);
    ASSERT_GT (h.port (), 0) << h.proc ().log ();
    ASSERT_NO_FATAL_FAILURE (play_calls (tmp, h, {"--engagements", "2", "--speed", "4",
            "--duration", "3"}, 2, &streams));
    std::string log = h.proc ().log ();
    EXPECT_EQ (count_of (log, "call started: recording with pipeline record-wav"), 2u) << log;
    for (const auto &s : streams) {
      std::unique_ptr<JsonDoc> j (engagement_json (h.out () + "/" + s.engagement_id));
      ASSERT_NE (j->obj (), nullptr);
      gint64 frames = json_object_get_int_member (j->obj (), "frames");
      ASSERT_GT (frames, 0);
      /* the element's own end (remote) or the stopped webhook, which
       * may overtake it */
      std::string want = "engagement " + s.engagement_id + " (stream " + s.rtms_stream_id +
          "): call ended, stop reason 21 CUSTOMER_DISCONNECTED (";
      gsize at = log.find (want);
      ASSERT_NE (at, std::string::npos) << log;
      std::string line = log.substr (at, log.find ('\n', at) - at);
      EXPECT_TRUE (contains (line, "(remote), duration ") ||
          contains (line, "(webhook), duration ")) << line;
      EXPECT_TRUE (contains (line, ", " + std::to_string (frames) + " packets, silence "
              "inserted 0.00 s, 0 interruptions, files in ")) << line;
      EXPECT_TRUE (contains (line, ": audio.wav ")) << line;
      EXPECT_TRUE (contains (line, " kB, engagement.json ")) << line;
      EXPECT_TRUE (contains (line, "(audio ")) << line;
      EXPECT_FALSE (contains (line, "error")) << line;
      EXPECT_EQ (json_array_get_length (json_object_get_array_member (j->obj (), "warnings")),
          0u);
      EXPECT_TRUE (json_object_get_null_member (j->obj (), "error"));
      EXPECT_FALSE (json_object_get_boolean_member (j->obj (), "disk_full"));
    }
    Resp r = http ("GET", h.url ("/engagements"));
    JsonDoc d (r.body);
    ASSERT_NE (d.obj (), nullptr) << r.body;
    EXPECT_EQ (json_object_get_int_member (d.obj (), "live"), 0);
    EXPECT_EQ (json_object_get_int_member (d.obj (), "history"), 2);
    expect_clean_exit (h.proc ());
  }
  /* a new process: nothing in memory, the history from disk */
  Host h2 (tmp, {}, "host2");
  ASSERT_GT (h2.port (), 0) << h2.proc ().log ();
  Resp r = http ("GET", h2.url ("/engagements"));
  EXPECT_EQ (r.status, 200u);
  JsonDoc d (r.body);
  ASSERT_NE (d.obj (), nullptr) << r.body;
  JsonArray *a = json_object_get_array_member (d.obj (), "engagements");
  ASSERT_EQ (json_array_get_length (a), 2u) << r.body;
  std::set<std::string> ids;
  for (guint i = 0; i < 2; i++) {
    JsonObject *o = json_array_get_object_element (a, i);
    ids.insert (json_object_get_string_member (o, "engagement_id"));
    EXPECT_STREQ (json_object_get_string_member (o, "state"), "stopped");
  }
  EXPECT_EQ (ids, (std::set<std::string> {streams[0].engagement_id, streams[1].engagement_id}));
  EXPECT_FALSE (json_object_get_boolean_member (d.obj (), "more"));
  Resp lim = http ("GET", h2.url ("/engagements?limit=1"));
  JsonDoc dl (lim.body);
  ASSERT_NE (dl.obj (), nullptr) << lim.body;
  EXPECT_EQ (json_array_get_length (json_object_get_array_member (dl.obj (), "engagements")), 1u);
  EXPECT_TRUE (json_object_get_boolean_member (dl.obj (), "more"));
  EXPECT_EQ (http ("GET", h2.url ("/engagements?limit=0")).status, 400u);
  EXPECT_EQ (http ("GET", h2.url ("/engagements?limit=x")).status, 400u);
  Resp one = http ("GET", h2.url (("/engagements/" + streams[0].engagement_id).c_str ()));
  EXPECT_EQ (one.status, 200u) << one.body;
  JsonDoc od (one.body);
  ASSERT_NE (od.obj (), nullptr);
  EXPECT_STREQ (json_object_get_string_member (od.obj (), "rtms_stream_id"),
      streams[0].rtms_stream_id.c_str ());
  /* nothing outside the output root (the front end may refuse it first) */
  guint bad = http ("GET", h2.url ("/engagements/..%2f..%2fetc")).status;
  EXPECT_TRUE (bad == 404u || bad == 400u) << bad;
  EXPECT_EQ (http ("GET", h2.url ("/engagements/.state")).status, 404u);
  expect_clean_exit (h2.proc ());
}

/* A wss:// server whose certificate the host does not trust: the
 * element's text and its detail ("Unacceptable TLS certificate") reach the
 * log and engagement.json (they were dropped before issue 11). */
TEST (HostOps, TlsErrorDetailRecorded)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  Host h (tmp);
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  auto sim = run_sim (tmp, h, {"--tls", "--ca-out", tmp / "ca.pem", "--speed", "4",
          "--duration", "2", "--connect-timeout", "5"});
  ASSERT_TRUE (spin_until ([&] {
        auto d = engagement_dirs (h.out ());
        if (d.size () != 1)
          return false;
        std::unique_ptr<JsonDoc> j (engagement_json (h.out () + "/" + d[0]));
        return j->obj () && g_str_equal (json_object_get_string_member (j->obj (), "state"),
            "failed");
      }, 30000)) << h.proc ().log ();
  sim->wait (30000);
  auto d = engagement_dirs (h.out ());
  std::unique_ptr<JsonDoc> j (engagement_json (h.out () + "/" + d[0]));
  std::string errs = errors_of (j->obj ());
  EXPECT_TRUE (contains (errs, "GstZoomRtmsSrc:src: Could not open the Zoom RTMS stream"))
      << errs;
  EXPECT_TRUE (contains (errs, "Unacceptable TLS certificate")) << errs;
  JsonObject *e = json_object_get_object_member (j->obj (), "error");
  ASSERT_NE (e, nullptr);
  EXPECT_STREQ (json_object_get_string_member (e, "domain"), "gst-resource-error-quark");
  EXPECT_TRUE (contains (json_object_get_string_member (e, "debug"),
          "Unacceptable TLS certificate"));
  /* the end line is logged once the end files are written, after the
   * engagement.json state waited for above */
  EXPECT_TRUE (spin_until ([&] {
        return contains (h.proc ().log (), "): call failed, stop reason");
      }, 10000)) << h.proc ().log ();
  std::string log = h.proc ().log ();
  EXPECT_TRUE (contains (log, "pipeline error: ")) << log;
  EXPECT_TRUE (contains (log, "Unacceptable TLS certificate")) << log;
  expect_clean_exit (h.proc ());
}

/* A pipeline whose caps cannot be negotiated: a warning at start (it
 * parses), then every call fails with basesrc's "not-negotiated" recorded. */
TEST (HostOps, NotNegotiatedRecorded)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  std::string pdir = tmp / "pipelines";
  g_mkdir (pdir.c_str (), 0750);
  write_text (pdir + "/bad.pipeline", "zoomrtmssrc name=src rate=48000 "
      "! audio/x-raw,rate=16000 ! wavenc ! filesink location=${OUTPUT_DIR}/audio.wav\n");
  Host h (tmp, {"--pipeline-dir", pdir, "--pipeline", "bad"});
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  EXPECT_TRUE (contains (h.proc ().log (), "bad.pipeline: caps cannot be negotiated"))
      << h.proc ().log ();
  auto sim = run_sim (tmp, h, {"--speed", "4", "--duration", "2"});
  ASSERT_TRUE (spin_until ([&] {
        auto d = engagement_dirs (h.out ());
        if (d.size () != 1)
          return false;
        std::unique_ptr<JsonDoc> j (engagement_json (h.out () + "/" + d[0]));
        return j->obj () && g_str_equal (json_object_get_string_member (j->obj (), "state"),
            "failed");
      }, 30000)) << h.proc ().log ();
  sim->wait (30000);
  auto d = engagement_dirs (h.out ());
  std::unique_ptr<JsonDoc> j (engagement_json (h.out () + "/" + d[0]));
  std::string errs = errors_of (j->obj ());
  EXPECT_TRUE (contains (errs, "not-negotiated")) << errs;
  EXPECT_TRUE (contains (h.proc ().log (), "not-negotiated")) << h.proc ().log ();
  expect_clean_exit (h.proc ());
}

/* The RTMS client's lines go through GStreamer's debug system (category
 * zoomrtmssrc), never GLib's own handler; a lost connection is an element
 * warning with its cause, logged for its engagement, and its end too. */
TEST (HostOps, ClientLinesThroughGstDebugAndReconnectWarnings)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  Host h (tmp, {}, "host", {{"GST_DEBUG", "*:2,zoomrtmssrc:4"}});
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  std::vector<SimStream> streams;
  ASSERT_NO_FATAL_FAILURE (play_calls (tmp, h, {"--speed", "1", "--duration", "6",
          "--outage", "media:1500+2000"}, 1, &streams));
  std::string log = h.proc ().log ();
  /* the client's reconnection schedule, as a zoomrtmssrc debug line */
  bool found = false;
  g_auto (GStrv) lines = g_strsplit (log.c_str (), "\n", -1);
  for (gchar **l = lines; *l; l++)
    if (contains (*l, "zoomrtmssrc") && contains (*l, "reconnecting media in"))
      found = true;
  EXPECT_TRUE (found) << log;
  EXPECT_FALSE (contains (log, "zoomrtms-client-")) << log;
  /* the warning with its cause, logged for the engagement */
  std::string id = streams[0].engagement_id;
  EXPECT_TRUE (contains (log, "engagement " + id + ": warning: ")) << log;
  EXPECT_TRUE (contains (log, "Lost the media connection of Zoom RTMS stream")) << log;
  EXPECT_TRUE (contains (log, "engagement " + id + ": media outage of ")) << log;
  EXPECT_TRUE (contains (log, "ended: reconnected")) << log;
  EXPECT_TRUE (contains (log, ", 1 interruption (media ")) << log;
  std::unique_ptr<JsonDoc> j (engagement_json (h.out () + "/" + id));
  ASSERT_NE (j->obj (), nullptr);
  EXPECT_GE (json_object_get_int_member (j->obj (), "warnings_total"), 1);
  JsonArray *w = json_object_get_array_member (j->obj (), "warnings");
  ASSERT_GE (json_array_get_length (w), 1u);
  EXPECT_TRUE (contains (json_array_get_string_element (w, 0), "Lost the media connection"));

  /* without the debug category: no client line at all on stderr */
  TempDir tmp2;
  Host q (tmp2, {}, "host", {{"GST_DEBUG", "*:1"}});
  ASSERT_GT (q.port (), 0);
  ASSERT_NO_FATAL_FAILURE (play_calls (tmp2, q, {"--speed", "1", "--duration", "5",
          "--outage", "media:1500+1500"}, 1, &streams));
  std::string qlog = q.proc ().log ();
  EXPECT_FALSE (contains (qlog, "reconnecting media in")) << qlog;
  EXPECT_TRUE (contains (qlog, "Lost the media connection")) << qlog;
  expect_clean_exit (q.proc ());
  expect_clean_exit (h.proc ());
}

/* --check: 0 and a summary, or 2 and the reasons (unknown keys with their
 * line, caps that cannot be negotiated); the daemon itself only warns. */
TEST (HostOps, CheckOption)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  std::string out;
  EXPECT_EQ (run_host ({"--check", "--pipeline-dir", source_path ("pipelines")}, &out), 0)
      << out;
  gsize shipped = 0;
  for (const auto &n : list_dir (source_path ("pipelines")))
    if (g_str_has_suffix (n.c_str (), ".pipeline"))
      shipped++;
  EXPECT_TRUE (contains (out, "check passed: " + std::to_string (shipped) +
          " pipeline(s), default record-wav")) << out;
  EXPECT_TRUE (contains (out, "pipeline record-all (")) << out;
  EXPECT_TRUE (contains (out, "rate=(int)16000, channels=(int)2")) << out;
  EXPECT_TRUE (contains (out, "note: missing ZOOM_SECRET_TOKEN")) << out;

  std::string pdir = tmp / "pipelines";
  g_mkdir (pdir.c_str (), 0750);
  write_text (pdir + "/record-wav.pipeline", read_file (source_path (
              "pipelines/record-wav.pipeline")));
  write_text (pdir + "/resampled.pipeline", "zoomrtmssrc name=src ! audioconvert "
      "! audio/x-raw,rate=7 ! fakesink\n");
  EXPECT_EQ (run_host ({"--check", "--pipeline-dir", pdir}, &out), 2) << out;
  EXPECT_TRUE (contains (out, "FAILED")) << out;
  EXPECT_TRUE (contains (out, "resampled.pipeline")) << out;
  write_text (pdir + "/resampled.pipeline", "zoomrtmssrc name=src codec=opus ! queue "
      "! wavenc ! fakesink\n");
  EXPECT_EQ (run_host ({"--check", "--pipeline-dir", pdir}, &out), 2) << out;
  EXPECT_TRUE (contains (out, "resampled.pipeline: caps cannot be negotiated: zoomrtmssrc "
          "will output audio/x-opus")) << out;
  g_remove ((pdir + "/resampled.pipeline").c_str ());

  std::string conf = tmp / "host.conf";
  write_text (conf, "[server]\nport=0\n[limit]\nmax-engagements=1\n");
  EXPECT_EQ (run_host ({"--check", "--pipeline-dir", pdir, "--config", conf}, &out), 2)
      << out;
  EXPECT_TRUE (contains (out, conf + ":3: unknown group [limit], its keys are ignored "
          "(did you mean [limits]?)")) << out;
  write_text (conf, "[tls]\nca-file=" + tmp / "missing-ca.pem" + "\n");
  EXPECT_EQ (run_host ({"--check", "--pipeline-dir", pdir, "--config", conf}, &out), 2)
      << out;
  EXPECT_TRUE (contains (out, "[tls] ca-file " + tmp / "missing-ca.pem" +
          ": No such file or directory")) << out;
  write_text (conf, "[server]\nport=70000\n");
  EXPECT_EQ (run_host ({"--check", "--pipeline-dir", pdir, "--config", conf}, &out), 2)
      << out;
  EXPECT_TRUE (contains (out, "[server] port must be an integer 0-65535")) << out;

  /* the daemon starts with the same file and warns, with the line */
  write_text (conf, "[server]\nport=0\n[limit]\nmax-engagements=1\n");
  Host h (tmp, {"--config", conf, "--pipeline-dir", pdir});
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  EXPECT_TRUE (contains (h.proc ().log (), "config " + conf + ":3: unknown group [limit]"))
      << h.proc ().log ();
  expect_clean_exit (h.proc ());
}

/* /health: "degraded" with its reason under [health] min-free-bytes. */
TEST (HostOps, HealthMinimumFreeSpace)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  std::string conf = tmp / "host.conf";
  write_text (conf, "[health]\nmin-free-bytes=9000000000000000000\n");
  Host h (tmp, {"--config", conf});
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  Resp r = http ("GET", h.url ("/health"));
  EXPECT_EQ (r.status, 200u);
  JsonDoc d (r.body);
  ASSERT_NE (d.obj (), nullptr);
  EXPECT_STREQ (json_object_get_string_member (d.obj (), "status"), "degraded");
  JsonArray *reasons = json_object_get_array_member (d.obj (), "reasons");
  ASSERT_EQ (json_array_get_length (reasons), 1u) << r.body;
  EXPECT_TRUE (g_str_has_prefix (json_array_get_string_element (reasons, 0),
          "output root: ")) << r.body;
  EXPECT_TRUE (contains (json_array_get_string_element (reasons, 0),
          "under the minimum of 9.0 EB ([health] min-free-bytes)")) << r.body;
  JsonObject *st = json_object_get_object_member (d.obj (), "storage");
  EXPECT_TRUE (json_object_get_boolean_member (st, "writable"));
  EXPECT_GT (json_object_get_int_member (st, "freeBytes"), 0);
  EXPECT_TRUE (contains (h.proc ().log (), "under the minimum")) << h.proc ().log ();
  expect_clean_exit (h.proc ());

  TempDir tmp2;
  write_text (tmp2 / "host.conf", "[health]\nmin-free-bytes=0\n");
  Host ok (tmp2, {"--config", tmp2 / "host.conf"});
  JsonDoc d2 (http ("GET", ok.url ("/health")).body);
  ASSERT_NE (d2.obj (), nullptr);
  EXPECT_STREQ (json_object_get_string_member (d2.obj (), "status"), "ok");
  EXPECT_EQ (json_array_get_length (json_object_get_array_member (d2.obj (), "reasons")), 0u);
  expect_clean_exit (ok.proc ());
}

/* ------------------------------------------------------------ as root */

/* A disk that fills up mid-call ends THAT engagement: its error recorded
 * (engagement.json written from the space set aside at start, the log), its
 * WAV valid (header repaired, soxi reads it), /health "degraded" naming it;
 * the host keeps serving, and the other engagement, on other storage,
 * records to the end, sample for sample. */
TEST (HostOpsRoot, DiskFullEndsOnlyThatEngagement)
{
  REQUIRE_BINARIES ();
  REQUIRE_MOUNT ();
  TempDir tmp;
  Host h (tmp);
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  /* the full one's place: an empty directory is used as it is */
  std::string small = h.out () + "/diskfull-one";
  ASSERT_EQ (g_mkdir_with_parents (small.c_str (), 0750), 0);
  ASSERT_EQ (mount ("tmpfs", small.c_str (), "tmpfs", 0, "size=1m"), 0) << g_strerror (errno);
  auto other = run_sim (tmp, h, {"--speed", "1", "--duration", "8"}, "other");
  /* 30 s of stereo 16 kHz is 1.9 MB: the 1 MiB fills after ≈16 s of audio */
  auto full = run_sim (tmp, h, {"--engagement-id", "diskfull-one", "--speed", "4",
          "--duration", "30"}, "full");
  ASSERT_TRUE (spin_until ([&] {
        std::unique_ptr<JsonDoc> j (engagement_json (small));
        return j->obj () && g_str_equal (json_object_get_string_member (j->obj (), "state"),
            "failed");
      }, 40000)) << h.proc ().log ();
  /* the host still serves, and says why it is degraded */
  Resp r = http ("GET", h.url ("/health"));
  EXPECT_EQ (r.status, 200u);
  JsonDoc hd (r.body);
  ASSERT_NE (hd.obj (), nullptr) << r.body;
  EXPECT_STREQ (json_object_get_string_member (hd.obj (), "status"), "degraded") << r.body;
  EXPECT_TRUE (contains (r.body, "storage of engagement diskfull-one (its disk filled up)"))
      << r.body;
  ASSERT_TRUE (other->wait (60000)) << other->log ();
  EXPECT_EQ (other->exit_status (), 0) << other->log ();
  full->wait (60000);
  ASSERT_TRUE (host_idle (h, 15000));

  std::unique_ptr<JsonDoc> j (engagement_json (small));
  ASSERT_NE (j->obj (), nullptr);
  EXPECT_TRUE (json_object_get_boolean_member (j->obj (), "disk_full"));
  EXPECT_TRUE (json_object_get_boolean_member (j->obj (), "wav_repaired"));
  std::string errs = errors_of (j->obj ());
  EXPECT_TRUE (contains (errs, "GstFileSink")) << errs;
  EXPECT_TRUE (contains (errs, "No space left")) << errs;
  EXPECT_TRUE (contains (errs, "(disk full)")) << errs;
  EXPECT_FALSE (g_file_test ((small + "/.zoomrtms-reserve").c_str (), G_FILE_TEST_EXISTS));
  Wav w = read_wav (small + "/audio.wav");
  EXPECT_EQ (w.channels, 2);
  EXPECT_GT (w.data_size, 16000 * 4 * 5) << "at least 5 s recorded";
  EXPECT_LE (w.data_offset + w.data_size, w.file_size);
  EXPECT_EQ (w.data_size % 4, 0);
  double secs = soxi_duration (small + "/audio.wav");
  EXPECT_NEAR (secs, w.data_size / 64000.0, 0.01) << "soxi refused the WAV";
  EXPECT_TRUE (contains (h.proc ().log (), "engagement diskfull-one: pipeline error: "))
      << h.proc ().log ();
  EXPECT_TRUE (contains (h.proc ().log (), "(disk full)")) << h.proc ().log ();
  EXPECT_TRUE (contains (h.proc ().log (), "engagement diskfull-one (stream ")) << h.proc ().log ();

  auto streams = sim_streams (tmp / "other-ready.json");
  ASSERT_EQ (streams.size (), 1u);
  expect_wav_equals_dump (h.out () + "/" + streams[0].engagement_id + "/audio.wav",
      tmp / ("other-dump/" + streams[0].rtms_stream_id));
  std::unique_ptr<JsonDoc> oj (engagement_json (h.out () + "/" + streams[0].engagement_id));
  EXPECT_STREQ (json_object_get_string_member (oj->obj (), "state"), "stopped");
  expect_clean_exit (h.proc ());
  umount2 (small.c_str (), MNT_DETACH);
}

/* A read-only output root: /health says so. */
TEST (HostOpsRoot, ReadOnlyOutputRootIsDegraded)
{
  REQUIRE_BINARIES ();
  REQUIRE_MOUNT ();
  TempDir tmp;
  std::string out = tmp / "out";
  ASSERT_EQ (g_mkdir_with_parents (out.c_str (), 0750), 0);
  ASSERT_EQ (mount ("tmpfs", out.c_str (), "tmpfs", MS_RDONLY, "size=1m"), 0)
      << g_strerror (errno);
  {
    Host h (tmp, {"--state-dir", tmp / "state"});
    ASSERT_GT (h.port (), 0) << h.proc ().log ();
    Resp r = http ("GET", h.url ("/health"));
    JsonDoc d (r.body);
    ASSERT_NE (d.obj (), nullptr) << r.body;
    EXPECT_STREQ (json_object_get_string_member (d.obj (), "status"), "degraded");
    EXPECT_TRUE (contains (r.body, "output root: read-only file system")) << r.body;
    EXPECT_FALSE (json_object_get_boolean_member (json_object_get_object_member (d.obj (),
                "storage"), "writable"));
    EXPECT_TRUE (contains (h.proc ().log (), "read-only file system: /health is "
            "\"degraded\"")) << h.proc ().log ();
    expect_clean_exit (h.proc ());
  }
  umount2 (out.c_str (), MNT_DETACH);
}

/* Under systemd (stderr is the journal: $JOURNAL_STREAM) the call lines go
 * to journald with ENGAGEMENT_ID=, RTMS_STREAM_ID=, PRIORITY=: received
 * here on a journal socket of our own (a tmpfs over /run in this process's
 * mount namespace), in journald's native protocol. */
TEST (HostOpsRoot, JournalFields)
{
  REQUIRE_BINARIES ();
  REQUIRE_MOUNT ();
  /* a tmpfs over /run, in this process's namespace only: nothing is made
   * on the machine's own /run */
  ASSERT_EQ (mount ("tmpfs", "/run", "tmpfs", 0, "size=1m,mode=0755"), 0)
      << g_strerror (errno);
  ASSERT_EQ (g_mkdir_with_parents ("/run/systemd/journal", 0755), 0);
  int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  ASSERT_GE (fd, 0);
  struct sockaddr_un sa = {};
  sa.sun_family = AF_UNIX;
  strcpy (sa.sun_path, "/run/systemd/journal/socket");
  ASSERT_EQ (bind (fd, reinterpret_cast<struct sockaddr *> (&sa), sizeof sa), 0)
      << g_strerror (errno);
  TempDir tmp;
  /* the host's stderr is host.log: JOURNAL_STREAM names that file */
  write_text (tmp / "host.log", "");
  struct stat st;
  ASSERT_EQ (stat ((tmp / "host.log").c_str (), &st), 0);
  std::string js = std::to_string (st.st_dev) + ":" + std::to_string (st.st_ino);
  Host h (tmp, {}, "host", {{"JOURNAL_STREAM", js}});
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  std::vector<SimStream> streams;
  ASSERT_NO_FATAL_FAILURE (play_calls (tmp, h, {"--speed", "4", "--duration", "2"}, 1,
          &streams));
  /* each datagram: KEY=value lines (the binary form for values with \n) */
  std::vector<std::map<std::string, std::string>> entries;
  char buf[65536];
  ssize_t n;
  while ((n = recv (fd, buf, sizeof buf, 0)) > 0) {
    std::map<std::string, std::string> e;
    std::string d (buf, static_cast<gsize> (n));
    gsize p = 0;
    while (p < d.size ()) {
      gsize nl = d.find ('\n', p);
      if (nl == std::string::npos)
        break;
      std::string line = d.substr (p, nl - p);
      gsize eq = line.find ('=');
      if (eq != std::string::npos) {
        e[line.substr (0, eq)] = line.substr (eq + 1);
        p = nl + 1;
      } else {
        guint64 len = 0;
        memcpy (&len, d.data () + nl + 1, 8);
        e[line] = d.substr (nl + 9, len);
        p = nl + 9 + len + 1;
      }
    }
    entries.push_back (e);
  }
  close (fd);
  umount2 ("/run", MNT_DETACH);
  bool started = false, ended = false;
  for (auto &e : entries) {
    if (e["ENGAGEMENT_ID"] != streams[0].engagement_id)
      continue;
    EXPECT_EQ (e["RTMS_STREAM_ID"], streams[0].rtms_stream_id);
    EXPECT_EQ (e["ZOOMRTMS_DIRECTORY"], streams[0].engagement_id);
    EXPECT_EQ (e["SYSLOG_IDENTIFIER"], "zoomrtms-host");
    if (contains (e["MESSAGE"], "call started")) {
      started = true;
      EXPECT_EQ (e["PRIORITY"], "5");
    }
    if (contains (e["MESSAGE"], "call ended, stop reason 21")) {
      ended = true;
      EXPECT_EQ (e["PRIORITY"], "5");
    }
  }
  EXPECT_TRUE (started) << entries.size () << " entries; " << h.proc ().log ();
  EXPECT_TRUE (ended) << entries.size () << " entries";
  /* those lines went to the journal, not to stderr */
  EXPECT_FALSE (contains (h.proc ().log (), "call started")) << h.proc ().log ();
  expect_clean_exit (h.proc ());
}

} // namespace

int
main (int argc, char **argv)
{
  ::testing::InitGoogleTest (&argc, argv);
  /* root: a mount namespace of our own, before any thread exists, so that
   * the tmpfs mounts of the tests (and their children's view) vanish with
   * this process, whatever happens to it */
  if (geteuid () == 0 && unshare (CLONE_NEWNS) == 0 &&
      mount (nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0)
    g_can_mount = true;
  return RUN_ALL_TESTS ();
}
