/* zoomrtms — plugin entry point: registers zoomrtmssrc and zoomrtmsdemux.
 * The plugin name must be "zoomrtms" because the library is libgstzoomrtms.so
 * (gstreamer-guide.md §1.1). */
#include "config.h"

#include "gstzoomrtmselements.h"

static gboolean
plugin_init (GstPlugin * plugin)
{
  gboolean ret = FALSE;
  ret |= GST_ELEMENT_REGISTER (zoomrtmssrc, plugin);
  ret |= GST_ELEMENT_REGISTER (zoomrtmsdemux, plugin);
  return ret;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, zoomrtms,
    "Zoom Realtime Media Streams (RTMS) source",
    plugin_init, VERSION, GST_LICENSE, GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
