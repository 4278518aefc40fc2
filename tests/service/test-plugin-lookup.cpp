/* ensure_zoomrtms_plugin (src/host/host-plugin.h): with GST_PLUGIN_PATH empty,
 * zoomrtmssrc is reported missing with the directory the host looked in, and
 * is found once the host scans the directory that holds libgstzoomrtms.so
 * (here the build's plugins/zoomrtms, standing for the installed plugindir).
 * The tests run in order: the registry is per process. */
#include "host-common.h"
#include "host-plugin.h"

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

class GstEnv : public ::testing::Environment {
 public:
  void SetUp () override
  {
    gst_init (nullptr, nullptr);
    zhost::debug_init ();
  }
};
const auto *const gst_env_ = ::testing::AddGlobalTestEnvironment (new GstEnv);
