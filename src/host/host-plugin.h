/* zoomrtms-host — finding the zoomrtms GStreamer plugin.
 *
 * `meson install` puts libgstzoomrtms.so in <prefix>/<libdir>/gstreamer-1.0
 * (option plugindir). For --prefix=/usr that is a directory Debian's
 * GStreamer scans; for the default /usr/local it is not. So the host, after
 * gst_init(), looks zoomrtmssrc up in the registry (GST_PLUGIN_PATH_1_0 and
 * GStreamer's system path, as usual) and, if absent, scans the install
 * directory compiled in (ZOOMRTMS_PLUGINDIR, from the build's prefix) with
 * gst_registry_scan_path(). The same binary thus runs from the unit, from a
 * shell, or from `--check`, with no environment to set.
 */
#pragma once

#include <glib.h>

#include <string>

namespace zhost {

/** ensure_zoomrtms_plugin:
 * @plugindir: the directory to scan when the registry lacks the element
 *   (ZOOMRTMS_PLUGINDIR in main.cpp; tests pass their own)
 * Call after gst_init(). Returns: true if the element factory "zoomrtmssrc"
 * is available (found, or loaded from @plugindir); false with
 * ZHOST_ERROR_CONFIG "GStreamer element zoomrtmssrc not found: is the zoomrtms
 * plugin installed in @plugindir? …" (naming GST_PLUGIN_PATH_1_0 when set),
 * so a missing plugin is not reported as a broken pipeline template.
 */
bool ensure_zoomrtms_plugin (const std::string &plugindir, GError **error);

} // namespace zhost
