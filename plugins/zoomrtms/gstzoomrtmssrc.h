/* zoomrtms — zoomrtmssrc: live source of Zoom RTMS audio (see the SECTION
 * comment in gstzoomrtmssrc.cpp). */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_ZOOM_RTMS_SRC (gst_zoom_rtms_src_get_type ())
G_DECLARE_FINAL_TYPE (GstZoomRtmsSrc, gst_zoom_rtms_src, GST, ZOOM_RTMS_SRC,
    GstElement)

#define GST_TYPE_ZOOM_RTMS_CODEC (gst_zoom_rtms_codec_get_type ())
GType gst_zoom_rtms_codec_get_type (void);
#define GST_TYPE_ZOOM_RTMS_DATA_OPT (gst_zoom_rtms_data_opt_get_type ())
GType gst_zoom_rtms_data_opt_get_type (void);
#define GST_TYPE_ZOOM_RTMS_LAYOUT (gst_zoom_rtms_layout_get_type ())
GType gst_zoom_rtms_layout_get_type (void);
#define GST_TYPE_ZOOM_RTMS_EOS_ACTION (gst_zoom_rtms_eos_action_get_type ())
GType gst_zoom_rtms_eos_action_get_type (void);

/**
 * GST_ZOOM_RTMS_DETACH_EVENT:
 *
 * Name of the structure of the custom upstream event that detaches
 * zoomrtmssrc from its stream (public API):
 * |[
 * gst_element_send_event (src, gst_event_new_custom (GST_EVENT_CUSTOM_UPSTREAM,
 *     gst_structure_new_empty ("zoomrtms/detach")));
 * ]|
 */
#define GST_ZOOM_RTMS_DETACH_EVENT "zoomrtms/detach"

/**
 * GstZoomRtmsCodec:
 * @GST_ZOOM_RTMS_CODEC_L16: raw 16-bit PCM (RTMS codec 1), output S16LE
 * @GST_ZOOM_RTMS_CODEC_OPUS: Opus (RTMS codec 4), 48 kHz, output passed through
 */
typedef enum
{
  GST_ZOOM_RTMS_CODEC_L16,
  GST_ZOOM_RTMS_CODEC_OPUS,
} GstZoomRtmsCodec;

/**
 * GstZoomRtmsDataOpt:
 * @GST_ZOOM_RTMS_DATA_OPT_MIXED: one mixed stream (meetings: user_id 0; ZCC
 *   still sends one channel per party)
 * @GST_ZOOM_RTMS_DATA_OPT_MULTI: one stream per participant
 */
typedef enum
{
  GST_ZOOM_RTMS_DATA_OPT_MIXED,
  GST_ZOOM_RTMS_DATA_OPT_MULTI,
} GstZoomRtmsDataOpt;

/**
 * GstZoomRtmsLayout:
 * @GST_ZOOM_RTMS_LAYOUT_MIX: one mono channel, the sum of all RTMS channels
 * @GST_ZOOM_RTMS_LAYOUT_STEREO: customer (caller) left, agent (callee) right
 * @GST_ZOOM_RTMS_LAYOUT_AUTO: by product (issue 14): STEREO for a Contact
 *   Center engagement (engagement-id set), MIX for meetings, webinars and
 *   Video SDK sessions (their caller/callee roles do not exist)
 * @GST_ZOOM_RTMS_LAYOUT_PACKETS: every packet unaligned, with its channel key
 *   and RTMS timestamp, for zoomrtmsdemux (zoomrtms-packet-meta.h)
 */
typedef enum
{
  GST_ZOOM_RTMS_LAYOUT_MIX,
  GST_ZOOM_RTMS_LAYOUT_STEREO,
  GST_ZOOM_RTMS_LAYOUT_AUTO,
  GST_ZOOM_RTMS_LAYOUT_PACKETS,
} GstZoomRtmsLayout;

/**
 * GstZoomRtmsEosAction:
 * @GST_ZOOM_RTMS_EOS_ACTION_STOP: an application EOS stops the stream: after
 *   the output is drained the element sends STREAM_CLOSE_REQ (msg 21) and
 *   Zoom ends the stream for good (stop reason 20)
 * @GST_ZOOM_RTMS_EOS_ACTION_DETACH: an application EOS detaches: the sockets
 *   are closed without msg 21 (Zoom keeps the stream for its grace window so
 *   another pipeline can continue it), then the output is drained
 */
typedef enum
{
  GST_ZOOM_RTMS_EOS_ACTION_STOP,
  GST_ZOOM_RTMS_EOS_ACTION_DETACH,
} GstZoomRtmsEosAction;

G_END_DECLS
