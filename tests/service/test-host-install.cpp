/* Unit tests of the host's install and service helpers.
 *
 * ensure_zoomrtms_plugin (src/host/host-plugin.h): with GST_PLUGIN_PATH empty,
 * zoomrtmssrc is reported missing with the directory the host looked in, and
 * is found once the host scans the directory that holds libgstzoomrtms.so
 * (here the build's plugins/zoomrtms, standing for the installed plugindir).
 * The tests run in order: the registry is per process. */
#include "host-common.h"
#include "host-plugin.h"
#include "host-systemd.h"

#include <glib/gstdio.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

namespace {

bool
registry_has_element ()
{
  GstElementFactory *f = gst_element_factory_find ("zoomrtmssrc");
  if (f)
    gst_object_unref (f);
  return f != nullptr;
}

} // namespace

TEST (PluginLookup, MissingIsReportedWithTheDirectory)
{
  if (registry_has_element ())
    GTEST_SKIP () << "zoomrtmssrc is in GStreamer's system path on this machine";
  GError *err = nullptr;
  EXPECT_FALSE (zhost::ensure_zoomrtms_plugin ("/nonexistent/gstreamer-1.0", &err));
  ASSERT_NE (err, nullptr);
  EXPECT_TRUE (g_error_matches (err, ZHOST_ERROR, zhost::ERROR_CONFIG));
  EXPECT_NE (std::string (err->message).find ("GStreamer element zoomrtmssrc not "
      "found: is the zoomrtms plugin installed in /nonexistent/gstreamer-1.0?"),
      std::string::npos) << err->message;
  g_error_free (err);
  EXPECT_FALSE (registry_has_element ());
}

TEST (PluginLookup, FoundInThePluginDir)
{
  const char *dir = g_getenv ("ZOOMRTMS_PLUGIN_BUILD_DIR");
  ASSERT_NE (dir, nullptr);
  GError *err = nullptr;
  EXPECT_TRUE (zhost::ensure_zoomrtms_plugin (dir, &err)) << (err ? err->message : "");
  g_clear_error (&err);
  EXPECT_TRUE (registry_has_element ());
  GstElement *e = gst_element_factory_make ("zoomrtmssrc", nullptr);
  ASSERT_NE (e, nullptr);
  gst_object_unref (e);
}

/* load_credentials (src/host/host-systemd.h) */
class Credentials : public ::testing::Test {
 protected:
  void SetUp () override
  {
    dir_ = g_dir_make_tmp ("zoomrtms-creds-XXXXXX", nullptr);
    ASSERT_NE (dir_, nullptr);
    g_setenv ("CREDENTIALS_DIRECTORY", dir_, TRUE);
  }
  void TearDown () override
  {
    g_unsetenv ("CREDENTIALS_DIRECTORY");
    for (const auto &c : zhost::kCredentialNames) {
      g_autofree gchar *p = g_build_filename (dir_, c.credential, nullptr);
      g_remove (p);
    }
    g_rmdir (dir_);
    g_free (dir_);
  }
  void put (const char *name, const std::string &value)
  {
    g_autofree gchar *p = g_build_filename (dir_, name, nullptr);
    ASSERT_TRUE (g_file_set_contents (p, value.data (), (gssize) value.size (), nullptr));
  }
  gchar *dir_ = nullptr;
};

TEST_F (Credentials, OverrideTheEnvironmentAndLoseOneTrailingNewline)
{
  put ("zoom-client-secret", "s3cret\r\n");
  put ("zoom-secret-token", "tok\n\n");
  zhost::EnvMap env = {{"ZOOM_APP_CLIENT_ID", "from-env"},
      {"ZOOM_APP_CLIENT_SECRET", "from-env"}};
  std::vector<std::string> loaded;
  GError *err = nullptr;
  ASSERT_TRUE (zhost::load_credentials (&env, &loaded, &err)) << err->message;
  EXPECT_EQ (env["ZOOM_APP_CLIENT_ID"], "from-env");      /* no credential file */
  EXPECT_EQ (env["ZOOM_APP_CLIENT_SECRET"], "s3cret");
  EXPECT_EQ (env["ZOOM_SECRET_TOKEN"], "tok\n");         /* only one newline removed */
  EXPECT_EQ (loaded, (std::vector<std::string>{"zoom-client-secret", "zoom-secret-token"}));
}

TEST_F (Credentials, EmptyIsAnErrorThatNamesTheFileNotTheValue)
{
  put ("zoom-client-id", "\n");
  zhost::EnvMap env;
  GError *err = nullptr;
  EXPECT_FALSE (zhost::load_credentials (&env, nullptr, &err));
  ASSERT_NE (err, nullptr);
  EXPECT_TRUE (g_error_matches (err, ZHOST_ERROR, zhost::ERROR_CONFIG));
  EXPECT_NE (std::string (err->message).find ("zoom-client-id"), std::string::npos);
  g_error_free (err);
}

TEST_F (Credentials, UnreadableIsAnError)
{
  g_autofree gchar *p = g_build_filename (dir_, "zoom-secret-token", nullptr);
  ASSERT_EQ (g_mkdir (p, 0700), 0);    /* a directory: read fails */
  zhost::EnvMap env;
  GError *err = nullptr;
  EXPECT_FALSE (zhost::load_credentials (&env, nullptr, &err));
  ASSERT_NE (err, nullptr);
  EXPECT_NE (std::string (err->message).find ("zoom-secret-token"), std::string::npos);
  g_error_free (err);
  g_rmdir (p);
}

TEST (CredentialsAbsent, NothingChangesWithoutTheDirectory)
{
  g_unsetenv ("CREDENTIALS_DIRECTORY");
  zhost::EnvMap env = {{"ZOOM_SECRET_TOKEN", "x"}};
  std::vector<std::string> loaded;
  EXPECT_TRUE (zhost::load_credentials (&env, &loaded, nullptr));
  EXPECT_EQ (env, (zhost::EnvMap{{"ZOOM_SECRET_TOKEN", "x"}}));
  EXPECT_TRUE (loaded.empty ());
}

class GstEnv : public ::testing::Environment {
 public:
  void SetUp () override
  {
    gst_init (nullptr, nullptr);
    zhost::debug_init ();
  }
};
const auto *const gst_env_ = ::testing::AddGlobalTestEnvironment (new GstEnv);
