/* zoomrtms — zoomrtmsdemux: one aligned audio stream per participant (see
 * the SECTION comment in gstzoomrtmsdemux.cpp). */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_ZOOM_RTMS_DEMUX (gst_zoom_rtms_demux_get_type ())
G_DECLARE_FINAL_TYPE (GstZoomRtmsDemux, gst_zoom_rtms_demux, GST,
    ZOOM_RTMS_DEMUX, GstElement)

G_END_DECLS
