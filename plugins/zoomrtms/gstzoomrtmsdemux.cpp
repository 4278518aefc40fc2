/* zoomrtms — zoomrtmsdemux: the per-participant packets of zoomrtmssrc
 * (layout=packets, zoomrtms-packet-meta.h) as one aligned mono stream per
 * participant, each on the stream's shared timeline.
 *
 * Streaming thread only (chain and serialized events); no thread of its
 * own. One zoomrtms::Aligner (zoomrtms-aligner.h, used as a library, MIX
 * layout with one channel) per participant, all with the same fixed origin
 * t0, so sample n of every output is the same instant.
 */

/**
 * SECTION:element-zoomrtmsdemux
 * @title: zoomrtmsdemux
 *
 * zoomrtmsdemux splits the audio of a Zoom RTMS stream into one stream per
 * participant: a meeting with `data_opt` AUDIO_MULTI_STREAMS (zoomrtmssrc
 * data-opt=multi: one channel per `user_id`, docs/protocol.md §4.4) or a
 * Contact Center engagement (one channel per `channel_id`, §4.4).
 *
 * Why a demuxer: the number of participants is not known when the pipeline
 * starts and grows mid-call, which GStreamer models as a demuxer's
 * sometimes pads (like qtdemux or tsdemux): zoomrtmssrc stays a
 * single-pad live source and, with layout=packets, outputs every RTMS
 * packet unaligned with its channel key and RTMS timestamp
 * (`application/x-zoomrtms-packets`, a #GstCustomMeta
 * "GstZoomRtmsPacketMeta", see zoomrtms-packet-meta.h); this element does
 * the per-participant alignment.
 *
 * Pads: one sometimes pad `participant_<id>` per channel key, added (pad-added)
 * when that participant's first packet arrives, mid-call included; <id> is
 * the key with every byte outside [A-Za-z0-9_.-] replaced by '_' and cut to
 * 64 bytes (a clash with an existing pad gets "_2", "_3", …). The exact key is
 * in the pad's stream tags (GST_TAG_TITLE) and in the "participant-id"
 * field of the zoomrtms/participant-pad element message posted on the bus
 * when the pad is added. Caps: `audio/x-raw, format=S16LE, layout=interleaved,
 * channels=1, rate=<the stream's rate>`.
 *
 * Timeline: t0 is the earliest packet timestamp (epoch ms) among the
 * packets of the first #GstZoomRtmsDemux:startup-wait ms of stream time
 * (the stream's first packet, even when packets of two participants arrive
 * in either order), or Zoom's FIRST_PACKET_TIMESTAMP event (docs/protocol.md
 * §3.6.1) when it came before any packet and is earlier. Every pad starts at t0: sample n of each pad is
 * t0 + n / rate, placed by RTMS timestamp like zoomrtmssrc's mix
 * (zoomrtms-aligner.h), so the saturated sum of the pads equals
 * zoomrtmssrc's layout=mix output sample for sample. Before a participant's
 * first packet, while it sends nothing (muted) and after its last packet,
 * its pad carries exact digital silence (buffers flagged GAP). A
 * participant's packet more than #GstZoomRtmsDemux:align-hold behind its own
 * newest one is dropped as late; duplicates (failover replays) are dropped.
 * Gaps are always filled (no timeline jumps, up to 1 h of silence per gap,
 * zoomrtms-aligner.h max_jump_ms).
 *
 * EOS: every pad gets the rest of its audio, then silence up to the end of
 * the longest one (every output has the same length), then EOS. A stream
 * that ends without any participant audio posts an ERROR (STREAM/DEMUX),
 * since no pad could carry the EOS.
 *
 * Memory: per participant one Aligner ring, (align-hold + 1 s) × rate × 3
 * bytes rounded up to a power of two (about 200 KiB at 16 kHz and the
 * default hold); at most 256 participants, packets of further keys are
 * dropped with a warning. Before t0 is fixed at most 4096 packets are held.
 *
 * A host links each new pad (pipeline text cannot name one file per
 * dynamic pad), for example:
 * |[
 * zoomrtmssrc layout=packets data-opt=multi … ! zoomrtmsdemux name=participants
 * ]|
 * plus, on pad-added, `wavenc ! filesink location=participant-<id>.wav`
 * (zoomrtms-host's record-participants pipeline does this).
 */
#include "config.h"

#include "gstzoomrtmsdemux.h"
#include "gstzoomrtmselements.h"

#include <gst/audio/audio.h>
#include <gst/base/gstflowcombiner.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "zoomrtms-aligner.h"
#include "zoomrtms-packet-meta.h"

GST_DEBUG_CATEGORY_STATIC (gst_zoom_rtms_demux_debug);
#define GST_CAT_DEFAULT gst_zoom_rtms_demux_debug

#define DEFAULT_ALIGN_HOLD 1000
#define DEFAULT_STARTUP_WAIT 200
#define MAX_PARTICIPANTS 256
#define MAX_PENDING 4096
#define PAD_ID_MAX 64

enum
{
  PROP_0,
  PROP_ALIGN_HOLD,
  PROP_STARTUP_WAIT,
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (ZOOMRTMS_PACKETS_CAPS_NAME ", format = (string) S16LE, "
        "rate = (int) { 8000, 16000, 32000, 48000 }, "
        "packet-ms = (int) [ 1, 1000 ]"));

static GstStaticPadTemplate src_template =
GST_STATIC_PAD_TEMPLATE ("participant_%s", GST_PAD_SRC, GST_PAD_SOMETIMES,
    GST_STATIC_CAPS ("audio/x-raw, format = (string) S16LE, "
        "layout = (string) interleaved, "
        "rate = (int) { 8000, 16000, 32000, 48000 }, channels = (int) 1"));

/* *INDENT-OFF* */
namespace {

struct Participant {
  std::string key;
  GstPad *pad = nullptr;               /* owned by the element */
  std::unique_ptr<zoomrtms::Aligner> aligner;
  zoomrtms::AlignedBlock block;        /* pop() storage, reused */
  int64_t end = 0;                     /* samples pushed */
};

struct Pending {
  std::string key;
  gint64 ts;
  std::vector<guint8> pcm;
};

} // namespace
/* *INDENT-ON* */

struct GstZoomRtmsDemuxPrivate
{
  guint align_hold = DEFAULT_ALIGN_HOLD;        /* under the object lock */
  guint startup_wait = DEFAULT_STARTUP_WAIT;

  /* streaming thread */
  int rate = 0;
  int packet_ms = 0;
  bool have_t0 = false;
  gint64 t0 = 0;
  GstClockTime base = GST_CLOCK_TIME_NONE;      /* PTS of position 0 */
  GstClockTime first_pts = GST_CLOCK_TIME_NONE;
  gint64 first_pts_ts = 0;
  std::vector<Pending> pending;
  gint64 pending_min = G_MAXINT64, pending_max = G_MININT64;
  std::vector<std::unique_ptr<Participant>> parts;
  std::map<std::string, Participant *> by_key;
  GstFlowCombiner *flows = nullptr;
  GstSegment segment;
  bool have_segment = false;
  guint group_id = 0;
  bool warned_meta = false, warned_max = false;
  guint64 invalid = 0, overflow = 0;
};

struct _GstZoomRtmsDemux
{
  GstElement parent;
  GstPad *sinkpad;
  GstZoomRtmsDemuxPrivate *priv;
};

G_DEFINE_TYPE (GstZoomRtmsDemux, gst_zoom_rtms_demux, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE (zoomrtmsdemux, "zoomrtmsdemux", GST_RANK_NONE,
    GST_TYPE_ZOOM_RTMS_DEMUX);

void
zoomrtms_packet_meta_register (void)
{
  static gsize once = 0;
  if (g_once_init_enter (&once)) {
    const gchar *tags[] = { nullptr };
    gst_meta_register_custom (ZOOMRTMS_PACKET_META_NAME, tags, nullptr,
        nullptr, nullptr);
    g_once_init_leave (&once, 1);
  }
}

/* The pad id of @key: [A-Za-z0-9_.-], at most PAD_ID_MAX bytes. */
static std::string
sanitize_id (const std::string & key)
{
  std::string id;
  for (char c:key) {
    if (id.size () >= PAD_ID_MAX)
      break;
    id += (g_ascii_isalnum (c) || c == '_' || c == '-' || c == '.') ? c : '_';
  }
  return id.empty ()? "_" : id;
}

static GstClockTime
position_pts (GstZoomRtmsDemux * self, int64_t pos)
{
  auto priv = self->priv;
  GstClockTime base = GST_CLOCK_TIME_IS_VALID (priv->base) ? priv->base : 0;
  return base + gst_util_uint64_scale_int ((guint64) pos, GST_SECOND,
      priv->rate);
}

static GstFlowReturn
push_samples (GstZoomRtmsDemux * self, Participant * p, int64_t pos,
    const int16_t * samples, size_t frames, bool gap, bool discont)
{
  auto priv = self->priv;
  GstBuffer *buf = gst_buffer_new_allocate (nullptr, frames * 2, nullptr);
  GstMapInfo map;
  gst_buffer_map (buf, &map, GST_MAP_WRITE);
  auto out = reinterpret_cast < guint16 * >(map.data);
  if (samples) {
    for (size_t i = 0; i < frames; i++)
      out[i] = GUINT16_TO_LE ((guint16) samples[i]);
  } else {
    memset (map.data, 0, map.size);
  }
  gst_buffer_unmap (buf, &map);
  GstClockTime t0 = position_pts (self, pos);
  GstClockTime t1 = position_pts (self, pos + (int64_t) frames);
  GST_BUFFER_PTS (buf) = t0;
  GST_BUFFER_DURATION (buf) = t1 - t0;
  GST_BUFFER_OFFSET (buf) = (guint64) pos;
  GST_BUFFER_OFFSET_END (buf) = (guint64) pos + frames;
  if (gap)
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_GAP);
  if (discont)
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
  p->end = pos + (int64_t) frames;
  GstFlowReturn ret = gst_pad_push (p->pad, buf);
  return gst_flow_combiner_update_pad_flow (priv->flows, p->pad, ret);
}

/* Pushes the blocks @p's aligner has ready; runs of silent (gap) blocks
 * go out as one GAP buffer of up to 1 s (a participant joining an hour
 * into the call: 3600 buffers, not 180000). */
static GstFlowReturn
push_ready (GstZoomRtmsDemux * self, Participant * p)
{
  GstFlowReturn ret = GST_FLOW_OK;
  zoomrtms::AlignedBlock & b = p->block;
  int64_t gap_pos = 0, gap_len = 0;
  while (ret == GST_FLOW_OK && p->aligner->pop (&b)) {
    if (b.gap && gap_len > 0 && b.position == gap_pos + gap_len
        && gap_len + (int64_t) b.frames () <= self->priv->rate) {
      gap_len += (int64_t) b.frames ();
      continue;
    }
    if (gap_len > 0) {
      ret = push_samples (self, p, gap_pos, nullptr, (size_t) gap_len, true,
          false);
      gap_len = 0;
      if (ret != GST_FLOW_OK)
        break;
    }
    if (b.gap) {
      gap_pos = b.position;
      gap_len = (int64_t) b.frames ();
      continue;
    }
    ret = push_samples (self, p, b.position, b.samples.data (), b.frames (),
        false, false);
  }
  if (ret == GST_FLOW_OK && gap_len > 0)
    ret = push_samples (self, p, gap_pos, nullptr, (size_t) gap_len, true,
        false);
  return ret;
}

static Participant *
add_participant (GstZoomRtmsDemux * self, const std::string & key)
{
  auto priv = self->priv;
  if (priv->parts.size () >= MAX_PARTICIPANTS) {
    priv->overflow++;
    if (!priv->warned_max) {
      priv->warned_max = true;
      GST_ELEMENT_WARNING (self, STREAM, DEMUX,
          ("More than %d participants; the audio of further ones is dropped",
              MAX_PARTICIPANTS), (nullptr));
    }
    return nullptr;
  }
  auto p = std::make_unique < Participant > ();
  p->key = key;
  zoomrtms::AlignerConfig ac;
  ac.rate = priv->rate;
  ac.packet_ms = priv->packet_ms;
  ac.layout = zoomrtms::Layout::MIX;
  ac.max_gap_fill_ms = 0;       /* a participant's silence is always filled */
  GST_OBJECT_LOCK (self);
  ac.hold_ms = priv->align_hold;
  GST_OBJECT_UNLOCK (self);
  ac.origin_ms = priv->t0;
  ac.start_position = 0;
  p->aligner = std::make_unique < zoomrtms::Aligner > (ac);

  std::string id = sanitize_id (key), name = "participant_" + id;
  for (int n = 2; ; n++) {
    GstPad *other = gst_element_get_static_pad (GST_ELEMENT (self),
        name.c_str ());
    if (!other)
      break;
    gst_object_unref (other);
    name = "participant_" + id + "_" + std::to_string (n);
  }
  GstPadTemplate *templ =
      gst_element_get_pad_template (GST_ELEMENT (self), "participant_%s");
  p->pad = gst_pad_new_from_template (templ, name.c_str ());
  gst_pad_use_fixed_caps (p->pad);
  gst_pad_set_active (p->pad, TRUE);
  gchar *sid = gst_pad_create_stream_id (p->pad, GST_ELEMENT (self),
      name.c_str ());
  GstEvent *ev = gst_event_new_stream_start (sid);
  g_free (sid);
  if (priv->group_id == 0)
    priv->group_id = gst_util_group_id_next ();
  gst_event_set_group_id (ev, priv->group_id);
  gst_pad_store_sticky_event (p->pad, ev);
  gst_event_unref (ev);
  GstAudioInfo info;
  gst_audio_info_init (&info);
  gst_audio_info_set_format (&info, GST_AUDIO_FORMAT_S16LE, priv->rate, 1,
      nullptr);
  GstCaps *caps = gst_audio_info_to_caps (&info);
  ev = gst_event_new_caps (caps);
  gst_caps_unref (caps);
  gst_pad_store_sticky_event (p->pad, ev);
  gst_event_unref (ev);
  GstSegment seg;
  gst_segment_init (&seg, GST_FORMAT_TIME);
  if (priv->have_segment && priv->segment.format == GST_FORMAT_TIME)
    seg = priv->segment;
  ev = gst_event_new_segment (&seg);
  gst_pad_store_sticky_event (p->pad, ev);
  gst_event_unref (ev);
  GstTagList *tags = gst_tag_list_new (GST_TAG_TITLE, key.c_str (), nullptr);
  gst_tag_list_set_scope (tags, GST_TAG_SCOPE_STREAM);
  ev = gst_event_new_tag (tags);
  gst_pad_store_sticky_event (p->pad, ev);
  gst_event_unref (ev);

  GST_INFO_OBJECT (self, "participant pad %s", name.c_str ());
  gst_element_add_pad (GST_ELEMENT (self), p->pad);
  gst_flow_combiner_add_pad (priv->flows, p->pad);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self),
          gst_structure_new ("zoomrtms/participant-pad", "pad", G_TYPE_STRING,
              name.c_str (), "participant-id", G_TYPE_STRING, key.c_str (),
              nullptr)));
  Participant *raw = p.get ();
  priv->by_key[key] = raw;
  priv->parts.push_back (std::move (p));
  return raw;
}

static GstFlowReturn
feed (GstZoomRtmsDemux * self, const std::string & key, gint64 ts,
    const guint8 * pcm, gsize size)
{
  auto priv = self->priv;
  Participant *p;
  auto it = priv->by_key.find (key);
  if (it != priv->by_key.end ()) {
    p = it->second;
  } else {
    if (size == 0 || size % 2 != 0 || size > (gsize) priv->rate * 2 ||
        ts < priv->t0 - (gint64) 3600000) {
      priv->invalid++;
      return GST_FLOW_OK;       /* no pad for a key with no usable audio */
    }
    p = add_participant (self, key);
    if (!p)
      return GST_FLOW_OK;
  }
  auto r = p->aligner->push (key, ts, pcm, size);
  if (r == zoomrtms::PushResult::INVALID)
    priv->invalid++;
  else if (r != zoomrtms::PushResult::ACCEPTED)
    GST_LOG_OBJECT (self, "packet %" G_GINT64_FORMAT " of a participant "
        "dropped: %s", ts, zoomrtms::push_result_name (r));
  return push_ready (self, p);
}

/* Fixes t0 (the earliest pending timestamp) and feeds the pending packets. */
static GstFlowReturn
start_timeline (GstZoomRtmsDemux * self)
{
  auto priv = self->priv;
  priv->have_t0 = true;
  priv->t0 = priv->pending_min;
  if (GST_CLOCK_TIME_IS_VALID (priv->first_pts)) {
    GstClockTime back = (GstClockTime) (priv->first_pts_ts - priv->t0) *
        GST_MSECOND;
    priv->base = priv->first_pts > back ? priv->first_pts - back : 0;
  }
  GST_INFO_OBJECT (self, "timeline origin %" G_GINT64_FORMAT " ms", priv->t0);
  std::vector<Pending> pending;
  pending.swap (priv->pending);
  GstFlowReturn ret = GST_FLOW_OK;
  for (auto &pk:pending) {
    ret = feed (self, pk.key, pk.ts, pk.pcm.data (), pk.pcm.size ());
    if (ret != GST_FLOW_OK)
      break;
  }
  return ret;
}

static GstFlowReturn
gst_zoom_rtms_demux_chain (GstPad * pad, GstObject * parent, GstBuffer * buf)
{
  auto self = GST_ZOOM_RTMS_DEMUX (parent);
  auto priv = self->priv;
  if (priv->rate == 0) {
    gst_buffer_unref (buf);
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (nullptr),
        ("buffer before caps"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  std::string key;
  gint64 ts;
  if (!zoomrtms_packet_meta_get (buf, &key, &ts)) {
    if (!priv->warned_meta) {
      priv->warned_meta = true;
      GST_ELEMENT_WARNING (self, STREAM, DEMUX,
          ("Packets without a GstZoomRtmsPacketMeta are dropped"), (nullptr));
    }
    priv->invalid++;
    gst_buffer_unref (buf);
    return GST_FLOW_OK;
  }
  GstMapInfo map;
  if (!gst_buffer_map (buf, &map, GST_MAP_READ)) {
    gst_buffer_unref (buf);
    return GST_FLOW_ERROR;
  }
  GstFlowReturn ret = GST_FLOW_OK;
  if (map.size == 0 && key.empty ()) {
    /* FIRST_PACKET_TIMESTAMP: the origin if no packet came first */
    if (!priv->have_t0 && priv->pending.empty () && ts >= 0 &&
        ts <= zoomrtms::kMaxTimestampMs) {
      priv->pending_min = priv->pending_max = ts;
      if (GST_BUFFER_PTS_IS_VALID (buf)) {
        priv->first_pts = GST_BUFFER_PTS (buf);
        priv->first_pts_ts = ts;
      }
    }
  } else if (priv->have_t0) {
    ret = feed (self, key, ts, map.data, map.size);
  } else if (ts >= 0 && ts <= zoomrtms::kMaxTimestampMs && map.size > 0
      && map.size % 2 == 0 && map.size <= (gsize) priv->rate * 2) {
    if (!GST_CLOCK_TIME_IS_VALID (priv->first_pts)
        && GST_BUFFER_PTS_IS_VALID (buf)) {
      priv->first_pts = GST_BUFFER_PTS (buf);
      priv->first_pts_ts = ts;
    }
    Pending pk;
    pk.key = key;
    pk.ts = ts;
    pk.pcm.assign (map.data, map.data + map.size);
    priv->pending.push_back (std::move (pk));
    priv->pending_min = MIN (priv->pending_min, ts);
    priv->pending_max = MAX (priv->pending_max, ts);
    GST_OBJECT_LOCK (self);
    gint64 wait = priv->startup_wait;
    GST_OBJECT_UNLOCK (self);
    if (priv->pending_max - priv->pending_min >= wait ||
        priv->pending.size () >= MAX_PENDING)
      ret = start_timeline (self);
  } else {
    priv->invalid++;
  }
  gst_buffer_unmap (buf, &map);
  gst_buffer_unref (buf);
  return ret;
}

/* EOS: the rest of every participant's audio, silence up to the longest. */
static gboolean
finish (GstZoomRtmsDemux * self, GstEvent * eos)
{
  auto priv = self->priv;
  if (!priv->have_t0 && !priv->pending.empty ())
    start_timeline (self);
  if (priv->parts.empty ()) {
    GST_ELEMENT_ERROR (self, STREAM, DEMUX,
        ("No participant audio in the stream"),
        ("no packet with a participant key reached zoomrtmsdemux"));
    gst_event_unref (eos);
    return FALSE;
  }
  int64_t end = 0;
  for (auto &p:priv->parts) {
    p->aligner->drain ();
    push_ready (self, p.get ());
    end = MAX (end, p->end);
  }
  int64_t chunk = MAX (1, priv->rate);   /* 1 s of silence per buffer */
  for (auto &p:priv->parts) {
    while (p->end < end) {
      int64_t n = MIN (chunk, end - p->end);
      if (push_samples (self, p.get (), p->end, nullptr, (size_t) n, true,
              false) != GST_FLOW_OK && p->end < end)
        break;
    }
  }
  for (auto &p:priv->parts)
    gst_pad_push_event (p->pad, gst_event_ref (eos));
  gst_event_unref (eos);
  return TRUE;
}

static gboolean
gst_zoom_rtms_demux_sink_event (GstPad * pad, GstObject * parent,
    GstEvent * event)
{
  auto self = GST_ZOOM_RTMS_DEMUX (parent);
  auto priv = self->priv;
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS:{
      GstCaps *caps;
      gst_event_parse_caps (event, &caps);
      GstStructure *s = gst_caps_get_structure (caps, 0);
      int rate = 0, packet_ms = 0;
      gboolean ok = gst_structure_get_int (s, "rate", &rate) &&
          gst_structure_get_int (s, "packet-ms", &packet_ms) &&
          rate % 1000 == 0 && packet_ms > 0;
      gst_event_unref (event);
      if (!ok)
        return FALSE;
      if (priv->rate != 0 && (rate != priv->rate
              || packet_ms != priv->packet_ms)) {
        GST_WARNING_OBJECT (self, "caps changed mid-stream, kept the first");
        return TRUE;
      }
      priv->rate = rate;
      priv->packet_ms = packet_ms;
      return TRUE;
    }
    case GST_EVENT_SEGMENT:
      gst_event_copy_segment (event, &priv->segment);
      priv->have_segment = true;
      gst_event_unref (event);
      return TRUE;
    case GST_EVENT_STREAM_START:
    case GST_EVENT_TAG:
    case GST_EVENT_STREAM_COLLECTION:
      gst_event_unref (event);
      return TRUE;
    case GST_EVENT_EOS:
      return finish (self, event);
    default:
      return gst_pad_event_default (pad, parent, event);
  }
}

static void
reset (GstZoomRtmsDemux * self)
{
  auto priv = self->priv;
  for (auto &p:priv->parts) {
    gst_flow_combiner_remove_pad (priv->flows, p->pad);
    gst_element_remove_pad (GST_ELEMENT (self), p->pad);
  }
  priv->parts.clear ();
  priv->by_key.clear ();
  priv->pending.clear ();
  priv->pending_min = G_MAXINT64;
  priv->pending_max = G_MININT64;
  priv->have_t0 = false;
  priv->t0 = 0;
  priv->base = priv->first_pts = GST_CLOCK_TIME_NONE;
  priv->rate = priv->packet_ms = 0;
  priv->have_segment = false;
  priv->group_id = 0;
  priv->warned_meta = priv->warned_max = false;
  priv->invalid = priv->overflow = 0;
}

static GstStateChangeReturn
gst_zoom_rtms_demux_change_state (GstElement * element,
    GstStateChange transition)
{
  auto self = GST_ZOOM_RTMS_DEMUX (element);
  GstStateChangeReturn ret =
      GST_ELEMENT_CLASS (gst_zoom_rtms_demux_parent_class)->change_state
      (element, transition);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY)
    reset (self);
  return ret;
}

static void
gst_zoom_rtms_demux_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  auto self = GST_ZOOM_RTMS_DEMUX (object);
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_ALIGN_HOLD:
      self->priv->align_hold = g_value_get_uint (value);
      break;
    case PROP_STARTUP_WAIT:
      self->priv->startup_wait = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_zoom_rtms_demux_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  auto self = GST_ZOOM_RTMS_DEMUX (object);
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_ALIGN_HOLD:
      g_value_set_uint (value, self->priv->align_hold);
      break;
    case PROP_STARTUP_WAIT:
      g_value_set_uint (value, self->priv->startup_wait);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_zoom_rtms_demux_init (GstZoomRtmsDemux * self)
{
  self->priv = new GstZoomRtmsDemuxPrivate ();
  self->priv->flows = gst_flow_combiner_new ();
  gst_segment_init (&self->priv->segment, GST_FORMAT_TIME);
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, gst_zoom_rtms_demux_chain);
  gst_pad_set_event_function (self->sinkpad,
      gst_zoom_rtms_demux_sink_event);
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);
}

static void
gst_zoom_rtms_demux_finalize (GObject * object)
{
  auto self = GST_ZOOM_RTMS_DEMUX (object);
  gst_flow_combiner_free (self->priv->flows);
  delete self->priv;
  G_OBJECT_CLASS (gst_zoom_rtms_demux_parent_class)->finalize (object);
}

static void
gst_zoom_rtms_demux_class_init (GstZoomRtmsDemuxClass * klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GST_DEBUG_CATEGORY_INIT (gst_zoom_rtms_demux_debug, "zoomrtmsdemux", 0,
      "Zoom RTMS per-participant demuxer");
  zoomrtms_packet_meta_register ();
  object_class->set_property = gst_zoom_rtms_demux_set_property;
  object_class->get_property = gst_zoom_rtms_demux_get_property;
  object_class->finalize = gst_zoom_rtms_demux_finalize;
  element_class->change_state = gst_zoom_rtms_demux_change_state;

  /**
   * GstZoomRtmsDemux:align-hold:
   *
   * ms a participant's packet may arrive behind its newest one and still be
   * placed at its timestamp (zoomrtms-aligner.h "the hold"); older ones are
   * dropped as late. Use zoomrtmssrc's align-hold so the pads sum to its mix.
   */
  g_object_class_install_property (object_class, PROP_ALIGN_HOLD,
      g_param_spec_uint ("align-hold", "Align hold",
          "ms a participant's late packet is still placed (0 = 10 packets)",
          0, 60000, DEFAULT_ALIGN_HOLD,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)));
  /**
   * GstZoomRtmsDemux:startup-wait:
   *
   * ms of stream time (RTMS timestamps) collected before t0 is fixed as
   * the earliest timestamp among them; zoomrtms-aligner.h's start-up wait.
   */
  g_object_class_install_property (object_class, PROP_STARTUP_WAIT,
      g_param_spec_uint ("startup-wait", "Start-up wait",
          "ms of packets collected before the timeline origin is fixed",
          0, 60000, DEFAULT_STARTUP_WAIT,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "Zoom RTMS participant demuxer", "Codec/Demuxer/Audio",
      "Splits zoomrtmssrc layout=packets into one aligned audio stream per "
      "participant (meeting user_id, Contact Center channel_id)",
      "zoomrtms project");
}
