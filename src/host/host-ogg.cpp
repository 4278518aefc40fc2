/* zoomrtms-host — merging Ogg/Opus parts. See host-ogg.h. */
#include "host-ogg.h"

#include "host-common.h"

#include <gst/audio/audio.h>
#include <gst/gst.h>
#include <glib/gstdio.h>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>

#define GST_CAT_DEFAULT zoomrtms_host_debug

namespace zhost {

std::string
ogg_opus_encoder_settings (const std::string &text)
{
  g_auto (GStrv) tokens = g_strsplit_set (text.c_str (), " \t\r\n", -1);
  std::string out;
  bool in = false;
  for (gchar **t = tokens; *t; t++) {
    if (!**t)
      continue;
    if (!in) {
      /* "opusenc" or "opusenc name=x" — not "opusenc0" etc. */
      in = g_str_equal (*t, "opusenc");
      continue;
    }
    if (g_str_equal (*t, "!") || **t == '!')
      break;
    const char *eq = strchr (*t, '=');
    if (!eq || eq == *t || g_str_has_prefix (*t, "name="))
      continue;
    if (!out.empty ())
      out += ' ';
    out += *t;
  }
  return out;
}

namespace {

/* One part's branch: what the streaming threads report. */
struct Branch {
  GstElement *dec = nullptr;      /* (transfer none): owned by the pipeline */
  std::atomic<bool> linked {false};
  std::string path;
  /* the pre-skip workaround (preskip_probe; streaming thread only) */
  gint64 to_skip = -1;            /* samples at 48 kHz still to drop; -1: no OpusHead yet */
  bool audio_seen = false;
};

struct Merge {
  GstElement *pipeline = nullptr;
  std::vector<std::unique_ptr<Branch>> branches;
  std::atomic<guint64> frames {0};
  std::atomic<int> rate {0};
};

/* On the Opus pad of oggdemux (streaming thread). RFC 7845 §4.2: the first
 * `pre-skip` decoded samples (48 kHz) of a stream are discarded. oggdemux
 * (GStreamer 1.22) asks opusdec to do so with a GstAudioClippingMeta on the
 * first packet only when the stream starts at granule position 0; a part
 * written by a live pipeline starts later (its start offset, §4.5), so its
 * pre-skip (6.5 ms with opusenc) would be decoded as audio — once per part.
 * This probe reads pre-skip from the OpusHead packet and, if the first
 * audio packets carry no clipping meta, adds it (spread over as many
 * packets as pre-skip spans). */
GstPadProbeReturn
preskip_probe (GstPad *, GstPadProbeInfo *info, gpointer data)
{
  Branch *b = static_cast<Branch *> (data);
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  if (GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_HEADER)) {
    GstMapInfo map;
    if (b->to_skip < 0 && gst_buffer_map (buf, &map, GST_MAP_READ)) {
      if (map.size >= 19 && memcmp (map.data, "OpusHead", 8) == 0)
        b->to_skip = map.data[10] | (map.data[11] << 8);
      gst_buffer_unmap (buf, &map);
    }
    return GST_PAD_PROBE_OK;
  }
  if (!b->audio_seen) {
    b->audio_seen = true;
    if (gst_buffer_get_audio_clipping_meta (buf))
      b->to_skip = 0;             /* oggdemux did it */
  }
  if (b->to_skip <= 0 || !GST_BUFFER_DURATION_IS_VALID (buf))
    return GST_PAD_PROBE_OK;
  guint64 samples = gst_util_uint64_scale_round (GST_BUFFER_DURATION (buf), 48000,
      GST_SECOND);
  guint64 clip = MIN (static_cast<guint64> (b->to_skip), samples);
  buf = gst_buffer_make_writable (buf);
  gst_buffer_add_audio_clipping_meta (buf, GST_FORMAT_DEFAULT, clip, 0);
  GST_PAD_PROBE_INFO_DATA (info) = buf;
  b->to_skip -= static_cast<gint64> (clip);
  return GST_PAD_PROBE_OK;
}

/* oggdemux pad-added (streaming thread): the first Opus stream of the part
 * goes to its decoder; any other stream is left unlinked (oggdemux then
 * drops it: not-linked on one of several pads is not an error for it). */
void
on_pad_added (GstElement *demux, GstPad *pad, gpointer data)
{
  Branch *b = static_cast<Branch *> (data);
  GstCaps *caps = gst_pad_get_current_caps (pad);
  if (!caps)
    caps = gst_pad_query_caps (pad, nullptr);
  bool opus = caps && gst_structure_has_name (gst_caps_get_structure (caps, 0),
      "audio/x-opus");
  if (caps)
    gst_caps_unref (caps);
  if (!opus || b->linked.load ())
    return;
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, preskip_probe, b, nullptr);
  GstPad *sink = gst_element_get_static_pad (b->dec, "sink");
  GstPadLinkReturn r = gst_pad_link (pad, sink);
  gst_object_unref (sink);
  if (r == GST_PAD_LINK_OK) {
    b->linked = true;
  } else {
    GST_ELEMENT_ERROR (demux, STREAM, FAILED, (nullptr),
        ("cannot link the Opus stream of %s: %s", b->path.c_str (),
            gst_pad_link_get_name (r)));
  }
}

/* oggdemux no-more-pads (streaming thread): a part without Opus would stall
 * concat forever — post an error instead. */
void
on_no_more_pads (GstElement *demux, gpointer data)
{
  Branch *b = static_cast<Branch *> (data);
  if (!b->linked.load ())
    GST_ELEMENT_ERROR (demux, STREAM, WRONG_TYPE, (nullptr),
        ("%s holds no Opus stream", b->path.c_str ()));
}

/* On the encoder's sink pad: counts the decoded sample frames, and clears
 * DISCONT after the first buffer — each part's decoder marks its first
 * buffer DISCONT, and a DISCONT reaching oggmux makes it skip a page
 * sequence number (a "missing data" warning in opusinfo), while the merged
 * timeline is continuous by construction. */
GstPadProbeReturn
count_probe (GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  Merge *m = static_cast<Merge *> (data);
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  if (m->frames.load () > 0 && GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_DISCONT)) {
    buf = gst_buffer_make_writable (buf);
    GST_BUFFER_FLAG_UNSET (buf, GST_BUFFER_FLAG_DISCONT);
    GST_PAD_PROBE_INFO_DATA (info) = buf;
  }
  GstCaps *caps = gst_pad_get_current_caps (pad);
  GstAudioInfo ai;
  if (caps && gst_audio_info_from_caps (&ai, caps) && GST_AUDIO_INFO_BPF (&ai) > 0) {
    m->frames += gst_buffer_get_size (buf) / GST_AUDIO_INFO_BPF (&ai);
    m->rate = GST_AUDIO_INFO_RATE (&ai);
  }
  if (caps)
    gst_caps_unref (caps);
  return GST_PAD_PROBE_OK;
}

GstElement *
make (const char *factory, GError **error)
{
  GstElement *e = gst_element_factory_make (factory, nullptr);
  if (!e)
    g_set_error (error, ZHOST_ERROR, ERROR_IO,
        "merging Ogg/Opus parts needs the GStreamer element %s (not installed)",
        factory);
  return e;
}

bool
fsync_path (const std::string &path, bool dir, GError **error)
{
  int fd = g_open (path.c_str (), (dir ? O_RDONLY | O_DIRECTORY : O_WRONLY) | O_CLOEXEC, 0);
  if (fd < 0 || fsync (fd) != 0) {
    int e = errno;
    if (fd >= 0)
      close (fd);
    g_set_error (error, ZHOST_ERROR, ERROR_IO, "cannot sync %s: %s", path.c_str (),
        g_strerror (e));
    return false;
  }
  close (fd);
  return true;
}

/* Builds the pipeline into m->pipeline (floating refs sunk by the bin).
 * Returns: false with @error; m->pipeline may be set and must be freed. */
bool
build (Merge *m, const std::vector<std::string> &parts, const std::string &tmp,
    const std::string &settings, GError **error)
{
  m->pipeline = gst_pipeline_new ("zoomrtms-opus-merge");
  GstBin *bin = GST_BIN (m->pipeline);
  const char *tail_names[] = {"concat", "identity", "audioconvert", "audioresample",
    "opusenc", "oggmux", "filesink"};
  GstElement *tail[7];
  for (int i = 0; i < 7; i++) {
    tail[i] = make (tail_names[i], error);
    if (!tail[i])
      return false;
    gst_bin_add (bin, tail[i]);
    if (i > 0 && !gst_element_link (tail[i - 1], tail[i])) {
      g_set_error (error, ZHOST_ERROR, ERROR_IO, "cannot link %s to %s",
          tail_names[i - 1], tail_names[i]);
      return false;
    }
  }
  GstElement *concat = tail[0], *enc = tail[4], *sink = tail[6];
  /* concat keeps each part's timestamps (each from 0) and moves the segment
   * base instead; the encoder and oggmux want one timeline: identity
   * single-segment stamps each buffer with its running time. */
  g_object_set (tail[1], "single-segment", TRUE, "silent", TRUE, nullptr);
  g_object_set (sink, "location", tmp.c_str (), nullptr);
  g_auto (GStrv) kv = g_strsplit_set (settings.c_str (), " \t", -1);
  for (gchar **t = kv; *t; t++) {
    if (!**t)
      continue;
    g_auto (GStrv) p = g_strsplit (*t, "=", 2);
    GParamSpec *ps = p[0] && p[1] ?
        g_object_class_find_property (G_OBJECT_GET_CLASS (enc), p[0]) : nullptr;
    if (!ps || !(ps->flags & G_PARAM_WRITABLE)) {
      g_set_error (error, ZHOST_ERROR, ERROR_IO,
          "opusenc setting \"%s\" is not a writable opusenc property", *t);
      return false;
    }
    GValue v = G_VALUE_INIT;
    g_value_init (&v, G_PARAM_SPEC_VALUE_TYPE (ps));
    bool good = gst_value_deserialize_with_pspec (&v, p[1], ps);
    if (good)
      g_object_set_property (G_OBJECT (enc), p[0], &v);
    g_value_unset (&v);
    if (!good) {
      g_set_error (error, ZHOST_ERROR, ERROR_IO, "opusenc setting \"%s\": bad value", *t);
      return false;
    }
  }
  GstPad *encsink = gst_element_get_static_pad (enc, "sink");
  gst_pad_add_probe (encsink, GST_PAD_PROBE_TYPE_BUFFER, count_probe, m, nullptr);
  gst_object_unref (encsink);
  for (const auto &path : parts) {
    if (!g_file_test (path.c_str (), G_FILE_TEST_IS_REGULAR)) {
      g_set_error (error, ZHOST_ERROR, ERROR_IO, "%s: no such file", path.c_str ());
      return false;
    }
    auto b = std::make_unique<Branch> ();
    b->path = path;
    GstElement *src = make ("filesrc", error);
    GstElement *demux = src ? make ("oggdemux", error) : nullptr;
    b->dec = demux ? make ("opusdec", error) : nullptr;
    if (!b->dec) {
      if (src)
        gst_object_unref (gst_object_ref_sink (src));
      if (demux)
        gst_object_unref (gst_object_ref_sink (demux));
      return false;
    }
    g_object_set (src, "location", path.c_str (), nullptr);
    gst_bin_add_many (bin, src, demux, b->dec, nullptr);
    /* concat plays its sink pads in the order they were requested */
    GstPad *cpad = gst_element_request_pad_simple (concat, "sink_%u");
    GstPad *dpad = gst_element_get_static_pad (b->dec, "src");
    bool ok = cpad && gst_element_link (src, demux) &&
        gst_pad_link (dpad, cpad) == GST_PAD_LINK_OK;
    gst_object_unref (dpad);
    if (cpad)
      gst_object_unref (cpad);   /* concat keeps it; released with the pipeline */
    if (!ok) {
      g_set_error (error, ZHOST_ERROR, ERROR_IO, "cannot build the branch of %s",
          path.c_str ());
      return false;
    }
    g_signal_connect (demux, "pad-added", G_CALLBACK (on_pad_added), b.get ());
    g_signal_connect (demux, "no-more-pads", G_CALLBACK (on_no_more_pads), b.get ());
    m->branches.push_back (std::move (b));
  }
  return true;
}

/* Runs the pipeline to EOS, an error or @timeout_ms. */
bool
run (GstElement *pipeline, guint timeout_ms, GError **error)
{
  /* a failure posts an ERROR on the bus, handled below like any other */
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  GstBus *bus = gst_element_get_bus (pipeline);
  gint64 deadline = g_get_monotonic_time () + static_cast<gint64> (timeout_ms) * 1000;
  bool ok = false;
  for (;;) {
    gint64 left = deadline - g_get_monotonic_time ();
    if (left <= 0) {
      g_set_error (error, ZHOST_ERROR, ERROR_IO,
          "the Ogg/Opus merge did not finish within %u ms", timeout_ms);
      break;
    }
    GstMessage *msg = gst_bus_timed_pop_filtered (bus,
        static_cast<GstClockTime> (left) * GST_USECOND,
        static_cast<GstMessageType> (GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
    if (!msg)
      continue;             /* the deadline is checked above */
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS) {
      ok = true;
    } else {
      GError *err = nullptr;
      gchar *dbg = nullptr;
      gst_message_parse_error (msg, &err, &dbg);
      GST_WARNING ("Ogg/Opus merge: %s from %s (%s)", err->message,
          GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)), dbg ? dbg : "");
      g_set_error (error, ZHOST_ERROR, ERROR_IO, "%s%s%s", err->message,
          dbg ? ": " : "", dbg ? dbg : "");
      g_error_free (err);
      g_free (dbg);
    }
    gst_message_unref (msg);
    break;
  }
  gst_object_unref (bus);
  return ok;
}

} // namespace

bool
ogg_opus_concat (const std::vector<std::string> &parts, const std::string &out,
    const std::string &encoder_settings, guint timeout_ms, guint64 *duration_ns,
    GError **error)
{
  if (parts.empty ()) {
    g_set_error (error, ZHOST_ERROR, ERROR_IO, "%s: no parts to merge", out.c_str ());
    return false;
  }
  if (timeout_ms == 0) {
    guint64 bytes = 0;
    for (const auto &p : parts) {
      GStatBuf st;
      if (g_stat (p.c_str (), &st) == 0)
        bytes += static_cast<guint64> (st.st_size);
    }
    timeout_ms = static_cast<guint> (MIN (10000 + bytes / 32768 * 1000, G_MAXUINT));
  }
  std::string tmp = out + ".merge.tmp";
  Merge m;
  bool ok = build (&m, parts, tmp, encoder_settings, error) &&
      run (m.pipeline, timeout_ms, error);
  if (m.pipeline) {
    gst_element_set_state (m.pipeline, GST_STATE_NULL);
    gst_object_unref (m.pipeline);
    m.pipeline = nullptr;
  }
  if (ok && (m.frames.load () == 0 || m.rate.load () <= 0)) {
    g_set_error (error, ZHOST_ERROR, ERROR_IO, "%s: the parts decoded to no audio",
        out.c_str ());
    ok = false;
  }
  if (ok && !fsync_path (tmp, false, error))
    ok = false;
  if (ok && g_rename (tmp.c_str (), out.c_str ()) != 0) {
    int e = errno;
    g_set_error (error, ZHOST_ERROR, ERROR_IO, "cannot rename %s to %s: %s",
        tmp.c_str (), out.c_str (), g_strerror (e));
    ok = false;
  }
  if (!ok) {
    g_remove (tmp.c_str ());
    return false;
  }
  g_autofree gchar *dir = g_path_get_dirname (out.c_str ());
  GError *derr = nullptr;
  if (!fsync_path (dir, true, &derr)) {
    /* the rename is done; only its durability is unknown */
    GST_WARNING ("%s", derr->message);
    g_error_free (derr);
  }
  if (duration_ns)
    *duration_ns = gst_util_uint64_scale (m.frames.load (), GST_SECOND,
        static_cast<guint64> (m.rate.load ()));
  GST_INFO ("merged %zu Ogg/Opus part(s) into %s: %" G_GUINT64_FORMAT " frames at %d Hz",
      parts.size (), out.c_str (), m.frames.load (), m.rate.load ());
  return true;
}

} // namespace zhost
