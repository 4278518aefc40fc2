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
#include <unistd.h>

#include <functional>
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
  std::string lock = f.queue + "/retention.lock";
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
