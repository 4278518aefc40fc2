/* tests/actions: unit tests of the after-call configuration, the S3 client's
 * URLs and XML reading, the receipt members a late engagement.json rewrite
 * must keep, and a queue directory shared by the nodes of a fleet: one owner
 * per job, adoption, one retention sweeper (src/host/host-actions.h,
 * host-s3.h). */
#include "host-actions.h"
#include "host-common.h"
#include "host-s3.h"

#include <glib/gstdio.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utime.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <memory>

using namespace zhost;

static bool
parse (const char *text, ActionsConfig *c, std::string *error = nullptr)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  EXPECT_TRUE (g_key_file_load_from_data (kf, text, -1, G_KEY_FILE_NONE, nullptr));
  GError *err = nullptr;
  bool ok = load_actions_config (kf, c, &err);
  if (err && error)
    *error = err->message;
  g_clear_error (&err);
  return ok;
}

TEST (ActionsConfig, ExecIsSplitWithoutAShell)
{
  ActionsConfig c;
  ASSERT_TRUE (parse ("[actions]\nexec=/usr/bin/notify --to 'ops team' \"a;b\"\n"
      "exec-timeout-s=5\n", &c));
  EXPECT_EQ (c.exec_argv, (std::vector<std::string>{"/usr/bin/notify", "--to", "ops team",
      "a;b"}));
  EXPECT_EQ (c.exec_timeout_s, 5);
  EXPECT_FALSE (c.upload_enabled ());
  EXPECT_TRUE (c.any ());
  std::string err;
  ActionsConfig d;
  EXPECT_FALSE (parse ("[actions]\nexec=/bin/x 'unclosed\n", &d, &err));
  EXPECT_NE (err.find ("[actions] exec"), std::string::npos) << err;
}

TEST (ActionsConfig, UploadKeysAndLimits)
{
  ActionsConfig c;
  ASSERT_TRUE (parse ("[upload]\nendpoint=https://s3.example.net\nbucket=b\n"
      "prefix=/calls/zcc/\npath-style=false\npart-size-bytes=6291456\n"
      "delete-local-after-upload=true\n[retention]\nmax-age-days=0.5\n"
      "max-bytes=1000\n", &c));
  EXPECT_TRUE (c.upload_enabled ());
  EXPECT_EQ (c.prefix, "calls/zcc");
  EXPECT_FALSE (c.path_style);
  EXPECT_EQ (c.part_size, 6291456u);
  EXPECT_TRUE (c.delete_local_after_upload);
  EXPECT_DOUBLE_EQ (c.max_age_days, 0.5);
  EXPECT_EQ (c.max_bytes, 1000u);
  EXPECT_TRUE (c.retention_enabled ());
  std::string err;
  ActionsConfig d;
  /* S3's minimum part is 5 MiB */
  EXPECT_FALSE (parse ("[upload]\nendpoint=http://x\nbucket=b\npart-size-bytes=1048576\n",
      &d, &err));
  EXPECT_NE (err.find ("part-size-bytes"), std::string::npos) << err;
  ActionsConfig e;
  EXPECT_FALSE (parse ("[upload]\nendpoint=http://x\n", &e, &err));
  EXPECT_NE (err.find ("bucket"), std::string::npos) << err;
  ActionsConfig f;
  EXPECT_FALSE (parse ("[upload]\nendpoint=ftp://x\nbucket=b\n", &f, &err));
  ActionsConfig g;
  EXPECT_FALSE (parse ("[retention]\nmax-age-days=-1\n", &g, &err));
}

TEST (ActionsExec, HookEnvironmentWithoutSecrets)
{
  for (const char *n : {"ZOOM_APP_CLIENT_SECRET", "ZOOM_SECRET_TOKEN", "AWS_SECRET_ACCESS_KEY",
      "AWS_SESSION_TOKEN", "ZOOMRTMS_API_TOKEN", "ZOOMRTMS_REDIS_URL",
      "CREDENTIALS_DIRECTORY"})
    EXPECT_TRUE (hook_env_hidden (n)) << n;
  for (const char *n : {"PATH", "HOME", "LANG", "ZOOMRTMS_ENGAGEMENT_DIR"})
    EXPECT_FALSE (hook_env_hidden (n)) << n;
}

TEST (S3Client, ObjectUrls)
{
  S3Settings s;
  s.endpoint = "http://127.0.0.1:9000/";
  s.bucket = "rec";
  S3Client path (s);
  EXPECT_EQ (path.url_for ("zcc/a b/ü+x.wav"),
      "http://127.0.0.1:9000/rec/zcc/a%20b/%C3%BC%2Bx.wav");
  EXPECT_EQ (path.url_for ("k", "uploadId=1"), "http://127.0.0.1:9000/rec/k?uploadId=1");
  s.path_style = false;
  s.endpoint = "https://s3.eu-west-1.amazonaws.com";
  S3Client vhost (s);
  EXPECT_EQ (vhost.url_for ("a/b"), "https://rec.s3.eu-west-1.amazonaws.com/a/b");
  EXPECT_EQ (S3Client::uri_encode ("a/b~-_.", false), "a%2Fb~-_.");
}

TEST (S3Client, XmlValuesDecodeEntities)
{
  std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<ListBucketResult><Contents><Key>a&amp;b</Key><Size>3</Size></Contents>"
      "<Contents><Key>c</Key><Size>10</Size></Contents>"
      "<ETag>&quot;abc&quot;</ETag></ListBucketResult>";
  EXPECT_EQ (xml_values (xml, "Key"), (std::vector<std::string>{"a&b", "c"}));
  EXPECT_EQ (xml_values (xml, "Size"), (std::vector<std::string>{"3", "10"}));
  EXPECT_EQ (xml_values (xml, "ETag"), (std::vector<std::string>{"\"abc\""}));
  /* broken XML: what was read before the error, bounded */
  EXPECT_TRUE (xml_values ("<a><Key>x", "Key").empty ());
}

TEST (S3Client, NoServerIsAnErrorNotAHang)
{
  S3Settings s;
  s.endpoint = "http://127.0.0.1:1";
  s.bucket = "b";
  s.timeout_s = 2;
  S3Client c (s);
  guint64 size = 0;
  std::string etag;
  S3Result r = c.head_object ("k", &size, &etag);
  EXPECT_EQ (r.status, 0);
  EXPECT_FALSE (r.ok ());
  EXPECT_FALSE (r.describe ().empty ());
}

TEST (AfterCall, LateRewriteKeepsTheReceipt)
{
  g_autofree gchar *dir = g_dir_make_tmp ("actions-unit-XXXXXX", nullptr);
  std::string path = std::string (dir) + "/engagement.json";
  const char *old = "{\"state\":\"revoked\",\"display_names\":{\"1\":\"Ann\"},"
      "\"erasure\":{\"reason\":\"stream-revoked\"},\"deleted\":[{\"name\":\"audio.wav\"}],"
      "\"actions\":{\"state\":\"done\"}}";
  ASSERT_TRUE (g_file_set_contents (path.c_str (), old, -1, nullptr));
  g_autoptr (JsonParser) p = json_parser_new ();
  ASSERT_TRUE (json_parser_load_from_data (p, "{\"state\":\"stopped\","
      "\"display_names\":{\"1\":\"Ann\"},\"stop_reason\":{\"code\":8}}", -1, nullptr));
  JsonObject *o = json_node_get_object (json_parser_get_root (p));
  AfterCall::preserve_members (path, o);
  EXPECT_STREQ (json_object_get_string_member (o, "state"), "revoked");
  EXPECT_EQ (json_object_get_size (json_object_get_object_member (o, "display_names")), 0u);
  EXPECT_TRUE (json_object_has_member (o, "erasure"));
  EXPECT_EQ (json_array_get_length (json_object_get_array_member (o, "deleted")), 1u);
  EXPECT_TRUE (json_object_has_member (o, "actions"));
  EXPECT_TRUE (json_object_has_member (o, "stop_reason"));
  /* a finished (not erased) engagement keeps its own state */
  ASSERT_TRUE (g_file_set_contents (path.c_str (),
      "{\"state\":\"stopped\",\"actions\":{\"state\":\"pending\"}}", -1, nullptr));
  g_autoptr (JsonParser) q = json_parser_new ();
  ASSERT_TRUE (json_parser_load_from_data (q, "{\"state\":\"stopped\","
      "\"display_names\":{\"1\":\"Ann\"}}", -1, nullptr));
  JsonObject *o2 = json_node_get_object (json_parser_get_root (q));
  AfterCall::preserve_members (path, o2);
  EXPECT_STREQ (json_object_get_string_member (o2, "state"), "stopped");
  EXPECT_EQ (json_object_get_size (json_object_get_object_member (o2, "display_names")), 1u);
  EXPECT_TRUE (json_object_has_member (o2, "actions"));
  g_remove (path.c_str ());
  g_rmdir (dir);
}

/* A fleet shares the queue directory (<output root>/.state/actions). Two
 * AfterCall on one directory stand for two nodes: an flock() lock belongs to
 * the open file, so they exclude each other as two processes would. */
struct FleetDirs {
  std::string tmp, root, queue;
  FleetDirs ()
  {
    g_autofree gchar *t = g_dir_make_tmp ("actions-fleet-XXXXXX", nullptr);
    tmp = t;
    root = tmp + "/out";
    queue = root + "/.state/actions";
    g_mkdir_with_parents (queue.c_str (), 0700);
  }
  ~FleetDirs ()
  {
    g_autofree gchar *q = g_shell_quote (tmp.c_str ());
    std::string cmd = std::string ("rm -rf ") + q;
    g_spawn_command_line_sync (cmd.c_str (), nullptr, nullptr, nullptr, nullptr);
  }
  /* a finished engagement, ended on @stop_time */
  std::string engagement (const char *name, const char *stop_time)
  {
    std::string d = root + "/" + name;
    g_mkdir_with_parents (d.c_str (), 0750);
    std::string ej = std::string ("{\"state\":\"stopped\",\"stop_time\":\"") + stop_time +
        "\",\"display_names\":{}}";
    g_file_set_contents ((d + "/engagement.json").c_str (), ej.c_str (), -1, nullptr);
    g_file_set_contents ((d + "/audio.wav").c_str (), "RIFF....", -1, nullptr);
    return d;
  }
  /* a hand-made queue file: a pending "finish" job of @dir named @name,
   * created 1 (the oldest); returns its text */
  std::string queue_job (const std::string &name, const std::string &dir)
  {
    std::string job = "{\"version\":1,\"directory\":\"" + dir + "\",\"dir_name\":\"" + name +
        "\",\"created\":1,\"kind\":\"finish\",\"state\":\"pending\",\"tasks\":[],"
        "\"deleted\":[]}";
    EXPECT_TRUE (g_file_set_contents ((queue + "/" + name + ".json").c_str (), job.c_str (), -1,
        nullptr));
    return job;
  }
  std::string read (const std::string &name) const
  {
    g_autofree gchar *text = nullptr;
    if (!g_file_get_contents ((queue + "/" + name).c_str (), &text, nullptr, nullptr))
      return "";
    return text;
  }
};

static bool
wait_until (const std::function<bool ()> &f, int timeout_s = 60)
{
  gint64 end = g_get_monotonic_time () + timeout_s * G_USEC_PER_SEC;
  while (!f ()) {
    if (g_get_monotonic_time () > end)
      return false;
    g_usleep (20000);
  }
  return true;
}

TEST (AfterCallFleet, AJobRunsOnOneNodeAndIsAdoptedOnlyOnceItStops)
{
  FleetDirs f;
  std::string d = f.engagement ("call-1", "2026-01-01T00:00:00Z");
  ActionsConfig c;
  /* nobody listens on port 1: the upload stays pending (a retry in 60 s) */
  c.endpoint = "http://127.0.0.1:1";
  c.bucket = "b";
  c.access_key = c.secret_key = "unit";
  c.retry_min_s = c.retry_max_s = 60;
  auto a = std::make_unique<AfterCall> (c, f.queue, f.root, nullptr);
  ASSERT_TRUE (a->start (nullptr));
  a->engagement_ended (d, -1);
  ASSERT_TRUE (wait_until ([&] () { return a->pending_tasks () == 1; }));
  ASSERT_NE (f.read ("call-1.json"), "");
  /* a second node starts: the job is a's, not loaded here */
  AfterCall b (c, f.queue, f.root, nullptr);
  ASSERT_TRUE (b.start (nullptr));
  EXPECT_EQ (b.pending_tasks (), 0u);
  /* nor queued a second time */
  b.engagement_ended (d, -1);
  EXPECT_EQ (b.pending_tasks (), 0u);
  EXPECT_EQ (b.adopt (), 0);
  EXPECT_EQ (b.pending_tasks (), 0u);
  /* a stops (its process would die: the same, its locks closed): b's next
   * scan adopts the job, with its task pending again */
  a.reset ();
  EXPECT_EQ (b.adopt (), 1);
  EXPECT_EQ (b.pending_tasks (), 1u);
  EXPECT_EQ (b.adopt (), 0);
  EXPECT_NE (f.read ("call-1.json").find ("\"upload\""), std::string::npos);
  /* a lock file whose node died before removing it (no job behind it) goes;
   * the held one stays */
  std::string stray = f.queue + "/call-9.lock";
  ASSERT_TRUE (g_file_set_contents (stray.c_str (), "", 0, nullptr));
  /* a fresh one may be a node's between its lock and its queue file */
  EXPECT_EQ (b.adopt (), 0);
  EXPECT_TRUE (g_file_test (stray.c_str (), G_FILE_TEST_EXISTS));
  struct utimbuf old = {time (nullptr) - 3600, time (nullptr) - 3600};
  ASSERT_EQ (utime (stray.c_str (), &old), 0);
  EXPECT_EQ (b.adopt (), 0);
  EXPECT_FALSE (g_file_test (stray.c_str (), G_FILE_TEST_EXISTS));
  EXPECT_TRUE (g_file_test ((f.queue + "/call-1.lock").c_str (), G_FILE_TEST_EXISTS));
}

TEST (AfterCallFleet, OneRetentionSweeperAndEachDirectoryErasedOnce)
{
  FleetDirs f;
  f.engagement ("old", "2020-01-01T00:00:00Z");
  ActionsConfig c;
  c.max_age_days = 1;
  /* not started: no worker, so an erasure queued stays pending */
  AfterCall a (c, f.queue, f.root, nullptr), b (c, f.queue, f.root, nullptr);
  std::string lock = f.queue + "/sweep.retention.lock";
  int fd = open (lock.c_str (), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE (fd, 0);
  ASSERT_EQ (flock (fd, LOCK_EX | LOCK_NB), 0);
  /* another sweeper holds retention.lock: this round is skipped */
  EXPECT_EQ (a.sweep_retention (), 0);
  EXPECT_EQ (f.read ("old.json"), "");
  close (fd);
  EXPECT_EQ (a.sweep_retention (), 1);
  EXPECT_NE (f.read ("old.json").find ("\"retention\""), std::string::npos);
  /* engagement.json still says "stopped" (a's erasure has not run): b
   * leaves the directory to a */
  EXPECT_EQ (b.sweep_retention (), 0);
  EXPECT_EQ (b.pending_tasks (), 0u);
}

TEST (AfterCallFleet, ARevocationReachingAnotherNodeIsCarriedOutByTheHolder)
{
  FleetDirs f;
  std::string d = f.engagement ("call-2", "2020-01-01T00:00:00Z");
  ActionsConfig c;
  c.max_age_days = 1;
  AfterCall a (c, f.queue, f.root, nullptr), b (c, f.queue, f.root, nullptr);
  ASSERT_EQ (a.sweep_retention (), 1);      /* a holds the job of call-2 */
  /* a revocation webhook reaches b: written as a request, not queued */
  b.erase (d, "stream-revoked");
  EXPECT_NE (f.read ("call-2.erase").find ("stream-revoked"), std::string::npos);
  EXPECT_NE (f.read ("call-2.json").find ("\"retention\""), std::string::npos);
  /* b's own scan cannot take the lock: the request waits */
  b.adopt ();
  EXPECT_NE (f.read ("call-2.erase"), "");
  /* a's scan carries it out (the bucket too, unlike retention) */
  EXPECT_EQ (a.adopt (), 0);
  EXPECT_EQ (f.read ("call-2.erase"), "");
  EXPECT_NE (f.read ("call-2.json").find ("\"stream-revoked\""), std::string::npos);
}

/* ---- review fixes of the fleet queue ----------------------------------- */

/* the host's log lines (g_message, g_warning), kept; @on_log called with
 * each from the thread that logs it */
static std::mutex g_log_m;
static std::vector<std::string> g_logged;
static std::function<void (const std::string &)> g_on_log;

static GLogWriterOutput
capture_writer (GLogLevelFlags level, const GLogField *fields, gsize n, gpointer)
{
  std::string msg;
  for (gsize i = 0; i < n; i++)
    if (g_strcmp0 (fields[i].key, "MESSAGE") == 0)
      msg = fields[i].length < 0 ? static_cast<const char *> (fields[i].value) :
          std::string (static_cast<const char *> (fields[i].value),
              static_cast<size_t> (fields[i].length));
  std::function<void (const std::string &)> cb;
  {
    std::lock_guard<std::mutex> g (g_log_m);
    g_logged.push_back (msg);
    cb = g_on_log;
  }
  if (cb)
    cb (msg);
  return g_log_writer_default (level, fields, n, nullptr);
}

static void
capture_logs ()
{
  static std::once_flag once;
  std::call_once (once, [] () { g_log_set_writer_func (capture_writer, nullptr, nullptr); });
  std::lock_guard<std::mutex> g (g_log_m);
  g_logged.clear ();
}

static bool
logged (const std::string &part)
{
  std::lock_guard<std::mutex> g (g_log_m);
  for (const auto &m : g_logged)
    if (m.find (part) != std::string::npos)
      return true;
  return false;
}

/* runs what the queue posted to the main context (engagement.json views,
 * the release of finished jobs' locks) */
static void
pump ()
{
  while (g_main_context_iteration (nullptr, FALSE))
    ;
}

static bool
wait_pumping (const std::function<bool ()> &f, int timeout_s = 120)
{
  return wait_until ([&] () { pump (); return f (); }, timeout_s);
}

static bool
exists (const std::string &p)
{
  return g_file_test (p.c_str (), G_FILE_TEST_EXISTS);
}

static JsonObject *
load_object (JsonParser *p, const std::string &path)
{
  if (!json_parser_load_from_file (p, path.c_str (), nullptr))
    return nullptr;
  JsonNode *r = json_parser_get_root (p);
  return r && JSON_NODE_HOLDS_OBJECT (r) ? json_node_get_object (r) : nullptr;
}

static std::string
member_path (JsonObject *o, const char *a, const char *b)
{
  JsonNode *n = o && json_object_has_member (o, a) ? json_object_get_member (o, a) : nullptr;
  if (!n || !JSON_NODE_HOLDS_OBJECT (n))
    return "";
  return json_object_get_string_member_with_default (json_node_get_object (n), b, "");
}

static ActionsConfig
exec_config (const std::string &cmd)
{
  ActionsConfig c;
  gchar **argv = nullptr;
  g_shell_parse_argv (cmd.c_str (), nullptr, &argv, nullptr);
  c.exec_argv.assign (argv, argv + g_strv_length (argv));
  g_strfreev (argv);
  return c;
}

/* #1: a lock that cannot be taken for another reason than another holder
 * (here ELOOP: a symlink planted as the lock) no longer drops the job: the
 * actions are queued and the erasure carried out, without the lock. */
TEST (AfterCallFleet, ALockErrorQueuesTheJobAnywayAndTheErasureRuns)
{
  FleetDirs f;
  capture_logs ();
  std::string d3 = f.engagement ("call-3", "2026-01-01T00:00:00Z");
  std::string d4 = f.engagement ("call-4", "2026-01-01T00:00:00Z");
  for (const char *n : {"call-3", "call-4"})
    ASSERT_EQ (symlink ((f.tmp + "/nowhere").c_str (), (f.queue + "/" + n + ".lock").c_str ()),
        0);
  AfterCall a (exec_config ("/bin/true"), f.queue, f.root, nullptr);
  a.engagement_ended (d3, -1);
  EXPECT_NE (f.read ("call-3.json").find ("\"finish\""), std::string::npos);
  EXPECT_TRUE (logged ("queued without the queue lock"));
  a.engagement_ended (d4, 8);      /* a revocation */
  EXPECT_NE (f.read ("call-4.json").find ("\"stream-revoked\""), std::string::npos);
  EXPECT_EQ (a.locks_held (), 0u);
  ASSERT_TRUE (a.start (nullptr));
  ASSERT_TRUE (wait_pumping ([&] () {
    return !exists (d4 + "/audio.wav") && f.read ("call-4.json").empty () &&
        f.read ("call-3.json").empty ();
  })) << f.read ("call-3.json") << f.read ("call-4.json");
  g_autoptr (JsonParser) p = json_parser_new ();
  JsonObject *o = load_object (p, d4 + "/engagement.json");
  ASSERT_TRUE (o);
  EXPECT_STREQ (json_object_get_string_member (o, "state"), "revoked");
  g_autoptr (JsonParser) q = json_parser_new ();
  EXPECT_EQ (member_path (load_object (q, d3 + "/engagement.json"), "actions", "state"), "done");
  /* the planted symlinks are left alone, their target never created */
  EXPECT_FALSE (exists (f.tmp + "/nowhere"));
}

/* #2: a node holds at most kMaxLocksHeld job locks (open files); a job past
 * them waits without its lock — another node may adopt it, and then the
 * first node never runs it. */
TEST (AfterCallFleet, LocksHeldAreCappedAndAJobAdoptedMeanwhileIsNotRunTwice)
{
  FleetDirs f;
  std::string runs = f.tmp + "/runs.txt";
  g_autofree gchar *q = g_shell_quote (runs.c_str ());
  ActionsConfig c = exec_config (std::string ("/bin/sh -c 'echo \"$ZOOMRTMS_ENGAGEMENT_DIR\" >> ") +
      q + "'");
  const gsize extra = 20, n = AfterCall::kMaxLocksHeld + extra;
  std::vector<std::string> dirs;
  for (gsize i = 0; i < n; i++) {
    std::string name = "call-" + std::to_string (1000 + i);
    dirs.push_back (f.engagement (name.c_str (), "2026-01-01T00:00:00Z"));
  }
  AfterCall a (c, f.queue, f.root, nullptr);
  for (const auto &d : dirs)
    a.engagement_ended (d, -1);
  EXPECT_EQ (a.locks_held (), AfterCall::kMaxLocksHeld);
  for (gsize i = 0; i < n; i++)
    ASSERT_NE (f.read ("call-" + std::to_string (1000 + i) + ".json"), "") << i;
  /* the jobs past the cap have their lock free: another node adopts them */
  AfterCall b (c, f.queue, f.root, nullptr);
  EXPECT_EQ (b.adopt (), static_cast<int> (extra));
  EXPECT_EQ (b.locks_held (), extra);
  /* a runs its own jobs, and drops the ones b took */
  ASSERT_TRUE (a.start (nullptr));
  ASSERT_TRUE (wait_pumping ([&] () { return a.locks_held () == 0; }));
  g_autofree gchar *text = nullptr;
  ASSERT_TRUE (g_file_get_contents (runs.c_str (), &text, nullptr, nullptr));
  std::map<std::string, int> ran;
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (gchar **l = lines; *l; l++)
    if (**l)
      ran[*l]++;
  EXPECT_EQ (ran.size (), AfterCall::kMaxLocksHeld);
  for (gsize i = 0; i < n; i++)
    EXPECT_EQ (ran.count (dirs[i]) ? ran[dirs[i]] : 0, i < AfterCall::kMaxLocksHeld ? 1 : 0)
        << dirs[i];
  /* b's jobs are still queued, under b's locks */
  for (gsize i = AfterCall::kMaxLocksHeld; i < n; i++)
    EXPECT_NE (f.read ("call-" + std::to_string (1000 + i) + ".json"), "") << i;
  EXPECT_EQ (b.locks_held (), extra);
}

/* #3: the directory of an erasure request or of a queue file is the output
 * root's <name>, never the path the file names (a directory elsewhere that
 * the host's user can write, or the root as another node mounts it). */
TEST (AfterCallFleet, ARequestOrAQueueFileCannotNameADirectoryOutsideTheRoot)
{
  FleetDirs f;
  std::string d5 = f.engagement ("call-5", "2026-01-01T00:00:00Z");
  std::string out5 = f.tmp + "/elsewhere/call-5", out6 = f.tmp + "/elsewhere/call-6";
  for (const auto &d : {out5, out6}) {
    g_mkdir_with_parents (d.c_str (), 0750);
    ASSERT_TRUE (g_file_set_contents ((d + "/keep.txt").c_str (), "mine", -1, nullptr));
  }
  std::string req = "{\"version\":1,\"directory\":\"" + out5 +
      "\",\"reason\":\"stream-revoked\",\"requested\":1}";
  ASSERT_TRUE (g_file_set_contents ((f.queue + "/call-5.erase").c_str (), req.c_str (), -1,
      nullptr));
  std::string job = "{\"version\":1,\"directory\":\"" + out6 + "\",\"dir_name\":\"call-6\","
      "\"created\":1,\"kind\":\"erase\",\"reason\":\"operator\",\"state\":\"pending\","
      "\"tasks\":[],\"deleted\":[]}";
  ASSERT_TRUE (g_file_set_contents ((f.queue + "/call-6.json").c_str (), job.c_str (), -1,
      nullptr));
  /* a relative directory, and a FIFO that would block the scan */
  ASSERT_TRUE (g_file_set_contents ((f.queue + "/call-7.erase").c_str (),
      "{\"version\":1,\"directory\":\"call-7\",\"reason\":\"operator\"}", -1, nullptr));
  ASSERT_EQ (mkfifo ((f.queue + "/call-8.json").c_str (), 0600), 0);
  AfterCall a (ActionsConfig (), f.queue, f.root, nullptr);
  ASSERT_TRUE (a.start (nullptr));
  ASSERT_TRUE (wait_pumping ([&] () {
    return a.locks_held () == 0 && f.read ("call-5.json").empty () &&
        f.read ("call-6.json").empty () && f.read ("call-7.json").empty ();
  }));
  EXPECT_TRUE (exists (out5 + "/keep.txt"));
  EXPECT_TRUE (exists (out6 + "/keep.txt"));
  /* the root's call-5 is the one erased */
  EXPECT_FALSE (exists (d5 + "/audio.wav"));
  g_autoptr (JsonParser) p = json_parser_new ();
  EXPECT_STREQ (json_object_get_string_member (load_object (p, d5 + "/engagement.json"),
      "state"), "revoked");
  EXPECT_TRUE (exists (f.queue + "/call-8.json.broken"));
}

/* #3: a queue directory others can write is reported at start. */
TEST (AfterCallFleet, AQueueDirectoryOthersCanWriteIsAWarning)
{
  FleetDirs f;
  capture_logs ();
  ASSERT_EQ (chmod (f.queue.c_str (), 0777), 0);
  AfterCall a (ActionsConfig (), f.queue, f.root, nullptr);
  ASSERT_TRUE (a.start (nullptr));
  EXPECT_TRUE (logged ("only the host's user may write it"));
  capture_logs ();
  ASSERT_EQ (chmod (f.queue.c_str (), 0700), 0);
  AfterCall b (ActionsConfig (), f.queue, f.root, nullptr);
  ASSERT_TRUE (b.start (nullptr));
  EXPECT_FALSE (logged ("only the host's user may write it"));
}

/* #8: the receipt keeps when the erasure was asked for and that another
 * node relayed it. */
TEST (AfterCallFleet, ARelayedErasureKeepsWhoAskedAndWhen)
{
  FleetDirs f;
  std::string d = f.engagement ("call-9", "2026-01-01T00:00:00Z");
  ActionsConfig c;
  c.max_age_days = 1;
  auto a = std::make_unique<AfterCall> (c, f.queue, f.root, nullptr);
  AfterCall b (c, f.queue, f.root, nullptr);
  /* a holds the job (a retention erasure, not started: it stays pending) */
  ASSERT_EQ (a->sweep_retention (), 1);
  gint64 before = g_get_real_time () / 1000;
  b.erase (d, "operator");
  std::string req = f.read ("call-9.erase");
  ASSERT_NE (req, "");
  EXPECT_NE (req.find ("\"requested_by\""), std::string::npos) << req;
  EXPECT_NE (req.find (std::string ("\"") + g_get_host_name () + "\""), std::string::npos) << req;
  /* a stops before its scan; b carries the request out later */
  a.reset ();
  g_usleep (1100 * 1000);
  ASSERT_TRUE (b.start (nullptr));
  ASSERT_TRUE (wait_pumping ([&] () { return b.locks_held () == 0 && f.read ("call-9.json").empty (); }));
  g_autoptr (JsonParser) p = json_parser_new ();
  JsonObject *o = load_object (p, d + "/engagement.json");
  ASSERT_TRUE (o);
  EXPECT_STREQ (json_object_get_string_member (o, "state"), "purged");
  EXPECT_EQ (member_path (o, "erasure", "requested_by"), g_get_host_name ());
  /* requested = when b was asked, not when the scan carried it out */
  g_autoptr (GDateTime) t = g_date_time_new_from_iso8601 (
      member_path (o, "erasure", "requested").c_str (), nullptr);
  ASSERT_TRUE (t);
  gint64 ms = g_date_time_to_unix (t) * 1000 + g_date_time_get_microsecond (t) / 1000;
  EXPECT_GE (ms, before);
  EXPECT_LT (ms, before + 1000);
}

/* #4: a finished job kept in memory is not the base of a later erasure: the
 * receipt another node wrote meanwhile grows, it is not replaced. */
TEST (AfterCallFleet, AnOldFinishedJobDoesNotReplaceAnotherNodesReceipt)
{
  FleetDirs f;
  std::string d = f.engagement ("call-10", "2026-01-01T00:00:00Z");
  AfterCall a (exec_config ("/bin/true"), f.queue, f.root, nullptr);
  ASSERT_TRUE (a.start (nullptr));
  a.engagement_ended (d, -1);
  ASSERT_TRUE (wait_pumping ([&] () { return a.locks_held () == 0; }));
  /* another node erased it meanwhile (its receipt in engagement.json) */
  g_remove ((d + "/audio.wav").c_str ());
  const char *receipt = "{\"state\":\"purged\",\"display_names\":{},"
      "\"erasure\":{\"reason\":\"operator\"},\"deleted\":[{\"name\":\"audio.wav\","
      "\"bytes\":8,\"sha256\":\"ab\",\"where\":\"local\",\"when\":\"2026-01-02T00:00:00Z\"}]}";
  ASSERT_TRUE (g_file_set_contents ((d + "/engagement.json").c_str (), receipt, -1, nullptr));
  /* then a revocation reaches this node */
  a.erase (d, "stream-revoked");
  ASSERT_TRUE (wait_pumping ([&] () { return a.locks_held () == 0 && f.read ("call-10.json").empty (); }));
  g_autoptr (JsonParser) p = json_parser_new ();
  JsonObject *o = load_object (p, d + "/engagement.json");
  ASSERT_TRUE (o);
  EXPECT_STREQ (json_object_get_string_member (o, "state"), "revoked");
  JsonArray *del = json_object_get_array_member (o, "deleted");
  ASSERT_EQ (json_array_get_length (del), 1u);
  EXPECT_STREQ (json_object_get_string_member (json_array_get_object_element (del, 0), "name"),
      "audio.wav");
}

/* #5: a finished job keeps its lock (and queue file) until its final view is
 * in engagement.json; retention skips a directory whose job lock is held, not
 * one whose engagement.json says "pending" with no queue file and a free
 * lock. */
TEST (AfterCallFleet, TheLockGoesAfterTheFinalViewAndRetentionTrustsTheLock)
{
  FleetDirs f;
  std::string d = f.engagement ("call-11", "2026-01-01T00:00:00Z");
  AfterCall a (exec_config ("/bin/true"), f.queue, f.root, nullptr);
  ASSERT_TRUE (a.start (nullptr));
  a.engagement_ended (d, -1);
  /* the main context does not run: the job is done, its view unwritten */
  ASSERT_TRUE (wait_until ([&] () {
    return f.read ("call-11.json").find ("\"done\"") != std::string::npos ||
        !exists (f.queue + "/call-11.lock");
  }));
  EXPECT_TRUE (exists (f.queue + "/call-11.lock"));
  EXPECT_EQ (a.locks_held (), 1u);
  pump ();
  g_autoptr (JsonParser) p = json_parser_new ();
  EXPECT_EQ (member_path (load_object (p, d + "/engagement.json"), "actions", "state"), "done");
  EXPECT_FALSE (exists (f.queue + "/call-11.lock"));
  EXPECT_EQ (f.read ("call-11.json"), "");

  ActionsConfig c;
  c.max_age_days = 1;
  FleetDirs g;
  const char *pending = "{\"state\":\"stopped\",\"stop_time\":\"2020-01-01T00:00:00Z\","
      "\"actions\":{\"state\":\"pending\"}}";
  std::string stale = g.engagement ("stale", "2020-01-01T00:00:00Z");
  std::string held = g.engagement ("held", "2020-01-01T00:00:00Z");
  for (const auto &dd : {stale, held})
    ASSERT_TRUE (g_file_set_contents ((dd + "/engagement.json").c_str (), pending, -1, nullptr));
  int fd = open ((g.queue + "/held.lock").c_str (), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE (fd, 0);
  ASSERT_EQ (flock (fd, LOCK_EX | LOCK_NB), 0);
  AfterCall r (c, g.queue, g.root, nullptr);
  EXPECT_EQ (r.sweep_retention (), 1);
  EXPECT_NE (g.read ("stale.json").find ("\"retention\""), std::string::npos);
  EXPECT_EQ (g.read ("held.json"), "");
  close (fd);
}

/* #6: an engagement directory named "retention" has its own lock, not the
 * sweeper's. */
TEST (AfterCallFleet, ADirectoryNamedRetentionDoesNotStopTheSweeper)
{
  FleetDirs f;
  std::string r = f.engagement ("retention", "2026-01-01T00:00:00Z");
  f.engagement ("old", "2020-01-01T00:00:00Z");
  ActionsConfig c = exec_config ("/bin/true");
  c.max_age_days = 1;
  AfterCall a (c, f.queue, f.root, nullptr);     /* not started: its job stays */
  a.engagement_ended (r, -1);
  ASSERT_EQ (a.locks_held (), 1u);
  AfterCall b (c, f.queue, f.root, nullptr);
  EXPECT_EQ (b.sweep_retention (), 1);
  EXPECT_NE (f.read ("old.json").find ("\"retention\""), std::string::npos);
  /* nor does the scan take the sweeper's lock for a job's */
  EXPECT_EQ (b.adopt (), 0);
}

/* #7: the adoption scan opens, locks and parses without the queue's mutex:
 * while it reads a queue file, pending_tasks() (the worker, the main
 * context) does not wait for it. */
TEST (AfterCallFleet, TheScanParsesWithoutTheQueuesMutex)
{
  FleetDirs f;
  capture_logs ();
  ASSERT_TRUE (g_file_set_contents ((f.queue + "/call-12.json").c_str (), "not json", -1,
      nullptr));
  AfterCall a (ActionsConfig (), f.queue, f.root, nullptr);
  std::atomic<int> answered {-1};
  std::future<gsize> fut;     /* outlives the scan: joined once it ended */
  {
    std::lock_guard<std::mutex> g (g_log_m);
    /* called on the scan's thread while it handles the broken file */
    g_on_log = [&] (const std::string &m) {
      if (m.find ("call-12.json is not a job") == std::string::npos)
        return;
      fut = std::async (std::launch::async, [&] () { return a.pending_tasks (); });
      answered = fut.wait_for (std::chrono::seconds (20)) == std::future_status::ready;
    };
  }
  a.adopt ();
  {
    std::lock_guard<std::mutex> g (g_log_m);
    g_on_log = nullptr;
  }
  ASSERT_TRUE (fut.valid ());
  fut.wait ();
  EXPECT_EQ (answered.load (), 1);
  EXPECT_TRUE (exists (f.queue + "/call-12.json.broken"));
}

/* #10: a queue file of a finished job (a hand-made one, or a node that died
 * before writing the final view) is taken up, its view written, and its
 * lock released. */
TEST (AfterCallFleet, AFinishedQueueFileIsReleased)
{
  FleetDirs f;
  std::string d = f.engagement ("call-13", "2026-01-01T00:00:00Z");
  std::string job = "{\"version\":1,\"directory\":\"" + d + "\",\"dir_name\":\"call-13\","
      "\"created\":1,\"completed\":2,\"prepared\":true,\"kind\":\"finish\",\"state\":\"done\","
      "\"tasks\":[{\"type\":\"exec\",\"state\":\"done\",\"exit_status\":0}],\"deleted\":[]}";
  ASSERT_TRUE (g_file_set_contents ((f.queue + "/call-13.json").c_str (), job.c_str (), -1,
      nullptr));
  AfterCall a (ActionsConfig (), f.queue, f.root, nullptr);
  EXPECT_EQ (a.adopt (), 1);
  pump ();
  EXPECT_EQ (a.locks_held (), 0u);
  EXPECT_FALSE (exists (f.queue + "/call-13.lock"));
  EXPECT_EQ (f.read ("call-13.json"), "");
  g_autoptr (JsonParser) p = json_parser_new ();
  EXPECT_EQ (member_path (load_object (p, d + "/engagement.json"), "actions", "state"), "done");
  /* another node can take the directory's job up again */
  AfterCall b (exec_config ("/bin/true"), f.queue, f.root, nullptr);
  EXPECT_EQ (b.adopt (), 0);
}

/* the lines of @path (the exec hook's record of the directories it ran for),
 * counted */
static std::map<std::string, int>
ran_for (const std::string &path)
{
  std::map<std::string, int> ran;
  g_autofree gchar *text = nullptr;
  if (!g_file_get_contents (path.c_str (), &text, nullptr, nullptr))
    return ran;
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (gchar **l = lines; *l; l++)
    if (**l)
      ran[*l]++;
  return ran;
}

static ActionsConfig
recording_config (const std::string &runs)
{
  g_autofree gchar *q = g_shell_quote (runs.c_str ());
  return exec_config (std::string ("/bin/sh -c 'echo \"$ZOOMRTMS_ENGAGEMENT_DIR\" >> ") + q +
      "'");
}

/* fqfix2 #1a: a job whose queue file could not be written (ENOSPC, EIO; here
 * the path is a non-empty directory) is never parked past the cap: its lock
 * is the only trace of it. Parked, the worker found no queue file and dropped
 * it as "finished by another node". */
TEST (AfterCallFleet, AJobWhosePersistFailedIsNotParkedNorDropped)
{
  FleetDirs f;
  std::string runs = f.tmp + "/runs.txt";
  ActionsConfig c = recording_config (runs);
  const gsize n = AfterCall::kMaxLocksHeld;
  std::vector<std::string> dirs;
  for (gsize i = 0; i < n; i++)
    dirs.push_back (f.engagement (("call-" + std::to_string (2000 + i)).c_str (),
        "2026-01-01T00:00:00Z"));
  std::string x = f.engagement ("call-x", "2026-01-01T00:00:00Z");
  for (const char *p : {"/call-x.json", "/call-x.json.broken"}) {
    std::string sub = f.queue + p;
    g_mkdir_with_parents (sub.c_str (), 0700);
    ASSERT_TRUE (g_file_set_contents ((sub + "/keep").c_str (), "x", -1, nullptr));
  }
  AfterCall a (c, f.queue, f.root, nullptr);
  for (const auto &d : dirs)
    a.engagement_ended (d, -1);
  ASSERT_EQ (a.locks_held (), AfterCall::kMaxLocksHeld);
  a.engagement_ended (x, -1);
  EXPECT_EQ (a.locks_held (), AfterCall::kMaxLocksHeld + 1);
  ASSERT_TRUE (a.start (nullptr));
  ASSERT_TRUE (wait_pumping ([&] () { return a.locks_held () == 0; }));
  auto ran = ran_for (runs);
  EXPECT_EQ (ran.count (x) ? ran[x] : 0, 1);
  EXPECT_EQ (ran.size (), n + 1);
}

/* fqfix2 #1b: a queue file that cannot be read now (an I/O error: here
 * EMFILE) is a job still: left as it is, taken up at the next scan — not
 * moved aside as .broken. */
TEST (AfterCallFleet, AnUnreadableQueueFileIsNotBroken)
{
  FleetDirs f;
  std::string d = f.engagement ("call-20", "2026-01-01T00:00:00Z");
  std::string job = f.queue_job ("call-20", d);
  AfterCall a (ActionsConfig (), f.queue, f.root, nullptr);
  /* one descriptor left: the scan's directory, then the job's lock; the
   * queue file's open fails with EMFILE */
  struct rlimit old;
  ASSERT_EQ (getrlimit (RLIMIT_NOFILE, &old), 0);
  int lowest = dup (0);
  ASSERT_GE (lowest, 0);
  close (lowest);
  struct rlimit one = old;
  one.rlim_cur = static_cast<rlim_t> (lowest) + 1;
  ASSERT_EQ (setrlimit (RLIMIT_NOFILE, &one), 0);
  int loaded = a.adopt ();
  ASSERT_EQ (setrlimit (RLIMIT_NOFILE, &old), 0);
  EXPECT_EQ (loaded, 0);
  EXPECT_FALSE (exists (f.queue + "/call-20.json.broken"));
  EXPECT_EQ (f.read ("call-20.json"), job);
  EXPECT_EQ (a.locks_held (), 0u);
  EXPECT_EQ (a.adopt (), 1);
  EXPECT_EQ (a.locks_held (), 1u);
}

/* fqfix2 #2: at a restart with more than kMaxLocksHeld jobs queued every job
 * is loaded (the ones past the cap parked), and each runs once. */
TEST (AfterCallFleet, ARestartLoadsEveryJobPastTheCap)
{
  FleetDirs f;
  std::string runs = f.tmp + "/runs.txt";
  ActionsConfig c = recording_config (runs);
  const gsize n = AfterCall::kMaxLocksHeld + 10;
  std::vector<std::string> dirs;
  for (gsize i = 0; i < n; i++)
    dirs.push_back (f.engagement (("call-" + std::to_string (3000 + i)).c_str (),
        "2026-01-01T00:00:00Z"));
  {
    AfterCall a (c, f.queue, f.root, nullptr);   /* stops before running them */
    for (const auto &d : dirs)
      a.engagement_ended (d, -1);
  }
  AfterCall b (c, f.queue, f.root, nullptr);
  EXPECT_EQ (b.adopt (), static_cast<int> (n));
  EXPECT_EQ (b.locks_held (), AfterCall::kMaxLocksHeld);
  ASSERT_TRUE (b.start (nullptr));
  ASSERT_TRUE (wait_pumping ([&] () { return b.locks_held () == 0 && b.pending_tasks () == 0 &&
      ran_for (runs).size () == n; }));
  for (auto &kv : ran_for (runs))
    EXPECT_EQ (kv.second, 1) << kv.first;
}

/* fqfix2 #3: a job queued without its lock (a lock error) tries for it again
 * before each step: once another node holds it, it is not run here. And a
 * queue file a stopped node left is not overwritten by the lock-less job. */
TEST (AfterCallFleet, ALocklessJobTriesForItsLockAgain)
{
  FleetDirs f;
  capture_logs ();
  std::string runs = f.tmp + "/runs.txt";
  ActionsConfig c = recording_config (runs);
  std::string d = f.engagement ("call-21", "2026-01-01T00:00:00Z");
  std::string lock = f.queue + "/call-21.lock";
  ASSERT_EQ (symlink ((f.tmp + "/nowhere").c_str (), lock.c_str ()), 0);
  AfterCall a (c, f.queue, f.root, nullptr);
  a.engagement_ended (d, -1);
  ASSERT_NE (f.read ("call-21.json"), "");
  EXPECT_EQ (a.locks_held (), 0u);
  /* the lock works again: another node adopts the job */
  ASSERT_EQ (g_remove (lock.c_str ()), 0);
  AfterCall b (c, f.queue, f.root, nullptr);
  ASSERT_EQ (b.adopt (), 1);
  ASSERT_TRUE (a.start (nullptr));
  ASSERT_TRUE (wait_pumping ([&] () {
    return logged ("call-21 was adopted by another node");
  }, 30));
  EXPECT_EQ (ran_for (runs).count (d), 0u);

  std::string e = f.engagement ("call-22", "2026-01-01T00:00:00Z");
  ASSERT_EQ (symlink ((f.tmp + "/nowhere").c_str (), (f.queue + "/call-22.lock").c_str ()), 0);
  std::string job = f.queue_job ("call-22", e);
  AfterCall s (c, f.queue, f.root, nullptr);     /* not started */
  s.engagement_ended (e, -1);
  EXPECT_EQ (f.read ("call-22.json"), job);
}

/* fqfix2 #4: an erasure that finds a FINISHED erasure its node left (dead
 * before writing the final view) builds on it: its "deleted" stay in the
 * receipt. */
TEST (AfterCallFleet, AFinishedErasureLeftBehindKeepsItsDeletedFiles)
{
  FleetDirs f;
  std::string d = f.engagement ("call-23", "2026-01-01T00:00:00Z");
  g_remove ((d + "/audio.wav").c_str ());
  std::string job = "{\"version\":1,\"directory\":\"" + d + "\",\"dir_name\":\"call-23\","
      "\"created\":1,\"completed\":2,\"prepared\":true,\"kind\":\"erase\",\"reason\":"
      "\"retention\",\"state\":\"done\",\"tasks\":[],\"deleted\":[{\"name\":\"audio.wav\","
      "\"bytes\":8,\"sha256\":\"ab\",\"where\":\"local\",\"when\":1767312000000}]}";
  ASSERT_TRUE (g_file_set_contents ((f.queue + "/call-23.json").c_str (), job.c_str (), -1,
      nullptr));
  AfterCall a (ActionsConfig (), f.queue, f.root, nullptr);
  a.erase (d, "stream-revoked");
  ASSERT_TRUE (a.start (nullptr));
  ASSERT_TRUE (wait_pumping ([&] () {
    return a.locks_held () == 0 && f.read ("call-23.json").empty ();
  }));
  g_autoptr (JsonParser) p = json_parser_new ();
  JsonObject *o = load_object (p, d + "/engagement.json");
  ASSERT_TRUE (o);
  EXPECT_STREQ (json_object_get_string_member (o, "state"), "revoked");
  JsonArray *del = json_object_has_member (o, "deleted") ?
      json_object_get_array_member (o, "deleted") : nullptr;
  ASSERT_TRUE (del);
  ASSERT_EQ (json_array_get_length (del), 1u);
  EXPECT_STREQ (json_object_get_string_member (json_array_get_object_element (del, 0), "name"),
      "audio.wav");
}

/* fqfix2 #6: a parked job whose reloaded queue file is not runnable now (a
 * retry later, written by the node that ran it meanwhile) is parked again,
 * its lock not kept past the cap. */
TEST (AfterCallFleet, AReloadedJobNotRunnableYetIsParkedAgain)
{
  FleetDirs f;
  std::string runs = f.tmp + "/runs.txt";
  ActionsConfig c = recording_config (runs);
  AfterCall a (c, f.queue, f.root, nullptr);
  for (gsize i = 0; i < AfterCall::kMaxLocksHeld; i++)
    a.engagement_ended (f.engagement (("call-" + std::to_string (4000 + i)).c_str (),
        "2026-01-01T00:00:00Z"), -1);
  ASSERT_EQ (a.locks_held (), AfterCall::kMaxLocksHeld);
  /* the oldest job: loaded past the cap (parked), not prepared */
  std::string d = f.engagement ("call-y", "2026-01-01T00:00:00Z");
  std::string job = f.queue_job ("call-y", d);
  ASSERT_EQ (a.adopt (), 1);
  ASSERT_EQ (a.locks_held (), AfterCall::kMaxLocksHeld);
  /* meanwhile its queue file says: prepared, the hook retried in a day */
  gint64 later = g_get_real_time () / 1000 + 86400 * 1000;
  std::string retry = "{\"version\":1,\"directory\":\"" + d + "\",\"dir_name\":\"call-y\","
      "\"created\":1,\"prepared\":true,\"kind\":\"finish\",\"state\":\"pending\",\"tasks\":"
      "[{\"type\":\"exec\",\"state\":\"pending\",\"attempts\":1,\"next_attempt\":" +
      std::to_string (later) + "}],\"deleted\":[]}";
  ASSERT_TRUE (g_file_set_contents ((f.queue + "/call-y.json").c_str (), retry.c_str (), -1,
      nullptr));
  capture_logs ();
  /* the main context does not run: finished jobs keep their locks */
  ASSERT_TRUE (a.start (nullptr));
  ASSERT_TRUE (wait_until ([&] () { return logged ("of call-y (1 task(s)) taken up again"); }));
  /* its lock is free again (no flock by the test before: it would be busy) */
  ASSERT_TRUE (wait_until ([&] () {
    int fd = open ((f.queue + "/call-y.lock").c_str (), O_RDWR | O_CLOEXEC);
    bool free_ = fd >= 0 && flock (fd, LOCK_EX | LOCK_NB) == 0;
    if (fd >= 0)
      close (fd);
    return free_;
  }, 20));
  EXPECT_EQ (ran_for (runs).count (d), 0u);
}

/* fqfix2 #7: a queue name with a '.' is no engagement directory (sanitized
 * names have none): not loaded. */
TEST (AfterCallFleet, AQueueNameWithADotIsNotAJob)
{
  FleetDirs f;
  std::string d = f.engagement ("x.y", "2026-01-01T00:00:00Z");
  std::string job = f.queue_job ("x.y", d);
  AfterCall a (ActionsConfig (), f.queue, f.root, nullptr);
  EXPECT_EQ (a.adopt (), 0);
  EXPECT_EQ (a.locks_held (), 0u);
}
