/* zoomrtms — the per-participant packet stream between zoomrtmssrc
 * (layout=packets) and zoomrtmsdemux.
 *
 * Caps: `application/x-zoomrtms-packets, format=(string)S16LE,
 * rate=(int)R, packet-ms=(int)N` — R the negotiated sample rate (Hz), N
 * the negotiated send_rate (ms per packet, docs/protocol.md §4.2). One
 * buffer is one RTMS audio packet (msg 14, docs/protocol.md §4.4) as
 * received: S16LE mono PCM, any length, not aligned, not deduplicated. Each
 * buffer carries a #GstCustomMeta named "GstZoomRtmsPacketMeta" whose
 * structure has
 *   - "key" (string): the channel key, the meeting `user_id` (multi-stream)
 *     or the Contact Center `channel_id`, untrusted bytes from Zoom;
 *   - "timestamp-ms" (gint64): the packet's RTMS timestamp, epoch ms.
 * An empty buffer with key "" is the FIRST_PACKET_TIMESTAMP event (msg 6
 * event 1, docs/protocol.md §3.6.1): its timestamp-ms is the event's (the
 * timeline origin if it comes before any packet, as for zoomrtmssrc's mix).
 * Custom metas are GStreamer ≥ 1.20 (Debian 12 has 1.22).
 */
#pragma once

#include <gst/gst.h>

#include <string>

#define ZOOMRTMS_PACKETS_CAPS_NAME "application/x-zoomrtms-packets"
#define ZOOMRTMS_PACKET_META_NAME "GstZoomRtmsPacketMeta"

/* Registers the meta (once per process, thread-safe); the elements call
 * it in class_init. Defined in gstzoomrtmsdemux.cpp (the plugin). */
void zoomrtms_packet_meta_register (void);

/* Attaches the packet's channel key and RTMS timestamp (epoch ms). */
static inline void
zoomrtms_packet_meta_add (GstBuffer * buf, const std::string & key,
    gint64 timestamp_ms)
{
  GstCustomMeta *m = gst_buffer_add_custom_meta (buf,
      ZOOMRTMS_PACKET_META_NAME);
  if (!m)
    return;
  gst_structure_set (gst_custom_meta_get_structure (m), "key", G_TYPE_STRING,
      key.c_str (), "timestamp-ms", G_TYPE_INT64, timestamp_ms, nullptr);
}

/* Reads them back. Returns: FALSE if @buf has no (complete) packet meta. */
static inline gboolean
zoomrtms_packet_meta_get (GstBuffer * buf, std::string * key,
    gint64 * timestamp_ms)
{
  GstCustomMeta *m = gst_buffer_get_custom_meta (buf,
      ZOOMRTMS_PACKET_META_NAME);
  if (!m)
    return FALSE;
  const GstStructure *s = gst_custom_meta_get_structure (m);
  const gchar *k = gst_structure_get_string (s, "key");
  if (!k || !gst_structure_get_int64 (s, "timestamp-ms", timestamp_ms))
    return FALSE;
  *key = k;
  return TRUE;
}
