/* zoomrtms-host — finding the zoomrtms GStreamer plugin (see host-plugin.h). */
#include "host-plugin.h"

#include "host-common.h"

#include <gst/gst.h>

#define GST_CAT_DEFAULT zoomrtms_host_debug

namespace zhost {

namespace {

bool
have_element ()
{
  GstElementFactory *f = gst_element_factory_find ("zoomrtmssrc");
  if (!f)
    return false;
  gst_object_unref (f);
  return true;
}

} // namespace

bool
ensure_zoomrtms_plugin (const std::string &plugindir, GError **error)
{
  if (have_element ())
    return true;
  if (!plugindir.empty () && g_file_test (plugindir.c_str (), G_FILE_TEST_IS_DIR)) {
    gst_registry_scan_path (gst_registry_get (), plugindir.c_str ());
    if (have_element ()) {
      GST_INFO ("zoomrtmssrc loaded from %s", plugindir.c_str ());
      return true;
    }
  }
  const char *env = g_getenv ("GST_PLUGIN_PATH_1_0");
  if (!env)
    env = g_getenv ("GST_PLUGIN_PATH");
  g_set_error (error, ZHOST_ERROR, ERROR_CONFIG,
      "GStreamer element zoomrtmssrc not found: is the zoomrtms plugin "
      "installed in %s? (libgstzoomrtms.so; also searched: %s%s%s"
      "GStreamer's system plugin path; gst-inspect-1.0 zoomrtmssrc checks it)",
      plugindir.c_str (), env ? "GST_PLUGIN_PATH=" : "", env ? env : "",
      env ? ", " : "");
  return false;
}

} // namespace zhost
