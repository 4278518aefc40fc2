/* tests/actions: unit tests of the after-call configuration, the S3 client's
 * URLs and XML reading, and the receipt members a late engagement.json
 * rewrite must keep (src/host/host-actions.h, host-s3.h). */
#include "host-actions.h"
#include "host-common.h"
#include "host-s3.h"

#include <glib/gstdio.h>
#include <gtest/gtest.h>

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
