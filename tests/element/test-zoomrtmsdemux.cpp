/* Tests of zoomrtmsdemux (issue 14): packets pushed by hand into its sink
 * pad (caps and GstZoomRtmsPacketMeta as zoomrtmssrc layout=packets makes
 * them), and zoomrtmssrc layout=packets ! zoomrtmsdemux against zoomrtms-sim
 * in meeting multi-stream mode (a late joiner, a mute, a participant who
 * leaves), every participant output compared sample for sample with what
 * the sim dumped for that participant (--dump-dir); the sum against
 * zoomrtmssrc's layout=mix of the same call; a WAV per participant read by
 * gst-discoverer-1.0 and soxi. Needs ZOOMRTMS_BUILD_DIR and the plugin on
 * GST_PLUGIN_PATH_1_0 (tests/meson.build). */
#include <gtest/gtest.h>

#include <gst/gst.h>
#include <json-glib/json-glib.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <sys/types.h>
#include <sys/wait.h>
#include <vector>

#include "zoomrtms-packet-meta.h"

namespace fs = std::filesystem;

namespace {

const char *kClientId = "test_client_id";
const char *kClientSecret = "test_client_secret";
/* the sim's meeting user_ids (data/default-call.conf) */
const char *kCustomer = "16778240";
const char *kAgent = "16779264";

std::string
build_dir ()
{
  const char *b = g_getenv ("ZOOMRTMS_BUILD_DIR");
  return b ? b : "";
}

std::vector<int16_t>
read_pcm (const std::string &path)
{
  std::ifstream f (path, std::ios::binary);
  std::vector<char> bytes ((std::istreambuf_iterator<char> (f)),
      std::istreambuf_iterator<char> ());
  std::vector<int16_t> s (bytes.size () / 2);
  for (size_t i = 0; i < s.size (); i++)
    s[i] = (int16_t) (uint16_t) ((uint8_t) bytes[2 * i] |
        ((uint8_t) bytes[2 * i + 1] << 8));
  return s;
}

/* What reached one participant pad. */
struct Output {
  std::string pad;
  std::string title;            /* GST_TAG_TITLE of the pad */
  std::vector<int16_t> samples;
  size_t buffers = 0;
  size_t gap_buffers = 0;       /* flagged GAP */
  GstCaps *caps = nullptr;
  bool eos = false;
  uint64_t others_before = 0;   /* samples on other pads when it was added */
};

/* Collects every participant pad of a zoomrtmsdemux into fakesinks. */
struct Collector {
  std::mutex lock;
  std::map<std::string, Output> out; /* by pad name */
  GstElement *bin = nullptr;
  std::vector<std::string> messages;

  ~Collector ()
  {
    for (auto &kv : out)
      if (kv.second.caps)
        gst_caps_unref (kv.second.caps);
  }

  static GstPadProbeReturn
  probe (GstPad *pad, GstPadProbeInfo *info, gpointer data)
  {
    auto c = static_cast<Collector *> (data);
    std::lock_guard<std::mutex> lk (c->lock);
    Output &o = c->out[GST_OBJECT_NAME (pad)];
    if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
      GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
      o.buffers++;
      o.gap_buffers += GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_GAP);
      GstMapInfo map;
      gst_buffer_map (buf, &map, GST_MAP_READ);
      for (size_t i = 0; i + 1 < map.size; i += 2)
        o.samples.push_back ((int16_t) (uint16_t) (map.data[i] |
                (map.data[i + 1] << 8)));
      gst_buffer_unmap (buf, &map);
    } else {
      GstEvent *ev = GST_PAD_PROBE_INFO_EVENT (info);
      if (GST_EVENT_TYPE (ev) == GST_EVENT_EOS)
        o.eos = true;
      else if (GST_EVENT_TYPE (ev) == GST_EVENT_CAPS) {
        GstCaps *caps;
        gst_event_parse_caps (ev, &caps);
        gst_caps_replace (&o.caps, caps);
      } else if (GST_EVENT_TYPE (ev) == GST_EVENT_TAG) {
        GstTagList *tags;
        gst_event_parse_tag (ev, &tags);
        gchar *t = nullptr;
        if (gst_tag_list_get_string (tags, GST_TAG_TITLE, &t))
          o.title = t;
        g_free (t);
      }
    }
    return GST_PAD_PROBE_OK;
  }

  static void
  pad_added (GstElement *, GstPad *pad, gpointer data)
  {
    auto c = static_cast<Collector *> (data);
    {
      std::lock_guard<std::mutex> lk (c->lock);
      Output &o = c->out[GST_OBJECT_NAME (pad)];
      o.pad = GST_OBJECT_NAME (pad);
      for (auto &kv : c->out)
        if (kv.first != o.pad)
          o.others_before = std::max<uint64_t> (o.others_before,
              kv.second.samples.size ());
    }
    gst_pad_add_probe (pad, (GstPadProbeType) (GST_PAD_PROBE_TYPE_BUFFER |
            GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM), probe, c, nullptr);
    GstElement *sink = gst_element_factory_make ("fakesink", nullptr);
    g_object_set (sink, "sync", FALSE, "async", FALSE, nullptr);
    gst_bin_add (GST_BIN (c->bin), sink);
    gst_element_sync_state_with_parent (sink);
    GstPad *sp = gst_element_get_static_pad (sink, "sink");
    EXPECT_EQ (gst_pad_link (pad, sp), GST_PAD_LINK_OK);
    gst_object_unref (sp);
  }

  std::vector<int16_t>
  samples (const std::string &key)
  {
    std::lock_guard<std::mutex> lk (lock);
    auto it = out.find ("participant_" + key);
    return it == out.end () ? std::vector<int16_t> () : it->second.samples;
  }
};

/* ---------------------------------------------------------------- by hand */

/* A zoomrtmsdemux in a pipeline, fed through a pad of the test's own. */
struct HandFed {
  GstElement *pipe, *demux;
  GstPad *src;
  Collector col;

  explicit HandFed (int rate = 16000, int packet_ms = 20)
  {
    pipe = gst_pipeline_new (nullptr);
    demux = gst_element_factory_make ("zoomrtmsdemux", nullptr);
    EXPECT_NE (demux, nullptr);
    col.bin = pipe;
    gst_bin_add (GST_BIN (pipe), demux);
    g_signal_connect (demux, "pad-added", G_CALLBACK (Collector::pad_added),
        &col);
    src = gst_pad_new ("testsrc", GST_PAD_SRC);
    GstPad *sink = gst_element_get_static_pad (demux, "sink");
    gst_pad_link (src, sink);
    gst_object_unref (sink);
    EXPECT_NE (gst_element_set_state (pipe, GST_STATE_PLAYING),
        GST_STATE_CHANGE_FAILURE);
    gst_pad_set_active (src, TRUE);
    gst_pad_push_event (src, gst_event_new_stream_start ("hand"));
    GstCaps *caps = gst_caps_new_simple (ZOOMRTMS_PACKETS_CAPS_NAME,
        "format", G_TYPE_STRING, "S16LE", "rate", G_TYPE_INT, rate,
        "packet-ms", G_TYPE_INT, packet_ms, nullptr);
    EXPECT_TRUE (gst_pad_push_event (src, gst_event_new_caps (caps)));
    gst_caps_unref (caps);
    GstSegment seg;
    gst_segment_init (&seg, GST_FORMAT_TIME);
    gst_pad_push_event (src, gst_event_new_segment (&seg));
  }
  ~HandFed ()
  {
    gst_element_set_state (pipe, GST_STATE_NULL);
    gst_pad_set_active (src, FALSE);
    gst_object_unref (src);
    gst_object_unref (pipe);
  }
  /* One packet of @n samples, sample i = @base + i. */
  GstFlowReturn
  packet (const std::string &key, gint64 ts, int n, int base)
  {
    std::vector<int16_t> s (n);
    for (int i = 0; i < n; i++)
      s[i] = (int16_t) (base + i);
    GstBuffer *buf = gst_buffer_new_memdup (s.data (), s.size () * 2);
    zoomrtms_packet_meta_add (buf, key, ts);
    return gst_pad_push (src, buf);
  }
  bool eos () { return gst_pad_push_event (src, gst_event_new_eos ()); }
};

/* Two participants, the second joining 300 ms late (after the start-up
 * wait: mid-stream), the first silent 60 ms in the middle and leaving
 * early; a duplicate and a reordered packet: both outputs start at the
 * first packet, silence where a participant sent nothing, the same
 * length. */
TEST (ZoomRtmsDemux, ParticipantsOnOneTimelineWithExactSilence)
{
  HandFed f;
  const gint64 t0 = 1700000000000;
  /* A: packets at 0..380 ms except 100..160; B: 300..580 ms, 400 and 420
   * swapped, 460 sent twice (other audio) */
  for (int ms = 0; ms < 600; ms += 20) {
    if (ms < 400 && !(ms >= 100 && ms < 160)) {
      ASSERT_EQ (f.packet ("A", t0 + ms, 320, ms), GST_FLOW_OK);
    }
    if (ms >= 300 && ms != 400 && ms != 420) {
      ASSERT_EQ (f.packet ("B", t0 + ms, 320, 10000 + ms), GST_FLOW_OK);
    }
    if (ms == 420) {
      ASSERT_EQ (f.packet ("B", t0 + 420, 320, 10420), GST_FLOW_OK);
      ASSERT_EQ (f.packet ("B", t0 + 400, 320, 10400), GST_FLOW_OK);
    }
    if (ms == 460) {
      ASSERT_EQ (f.packet ("B", t0 + 460, 320, 7), GST_FLOW_OK);
    }
  }
  ASSERT_TRUE (f.eos ());
  std::vector<int16_t> want_a (600 * 16, 0), want_b (600 * 16, 0);
  for (int ms = 0; ms < 600; ms += 20)
    for (int i = 0; i < 320; i++) {
      if (ms < 400 && !(ms >= 100 && ms < 160))
        want_a[ms * 16 + i] = (int16_t) (ms + i);
      if (ms >= 300)
        want_b[ms * 16 + i] = (int16_t) (10000 + ms + i);
    }
  EXPECT_EQ (f.col.samples ("A"), want_a);
  EXPECT_EQ (f.col.samples ("B"), want_b);
  std::lock_guard<std::mutex> lk (f.col.lock);
  ASSERT_EQ (f.col.out.size (), 2u);
  for (auto &kv : f.col.out) {
    EXPECT_TRUE (kv.second.eos) << kv.first;
    ASSERT_NE (kv.second.caps, nullptr);
    GstStructure *s = gst_caps_get_structure (kv.second.caps, 0);
    int rate = 0, ch = 0;
    EXPECT_TRUE (gst_structure_get_int (s, "rate", &rate) && rate == 16000);
    EXPECT_TRUE (gst_structure_get_int (s, "channels", &ch) && ch == 1);
    EXPECT_STREQ (gst_structure_get_string (s, "format"), "S16LE");
  }
  EXPECT_EQ (f.col.out["participant_A"].title, "A");
  EXPECT_EQ (f.col.out["participant_B"].title, "B");
  /* B's pad was added once A had output audio (mid-stream) */
  EXPECT_GT (f.col.out["participant_B"].others_before, 0u);
  /* silence runs go out as one GAP buffer: B = 300 ms of silence + 15
   * packets; A = 5 + 12 packets, its mute and its tail after leaving */
  EXPECT_EQ (f.col.out["participant_B"].buffers, 16u);
  EXPECT_EQ (f.col.out["participant_B"].gap_buffers, 1u);
  EXPECT_EQ (f.col.out["participant_A"].buffers, 19u);
  EXPECT_EQ (f.col.out["participant_A"].gap_buffers, 2u);
}

/* The second participant's first packet arrives after the first one's but
 * carries an earlier timestamp (within the start-up wait): t0 is that
 * earlier timestamp, so the first participant's output starts with
 * silence. */
TEST (ZoomRtmsDemux, OriginIsTheEarliestTimestampOfTheStartUpWait)
{
  HandFed f;
  const gint64 t0 = 1700000000000;
  ASSERT_EQ (f.packet ("A", t0 + 40, 320, 1), GST_FLOW_OK);
  ASSERT_EQ (f.packet ("B", t0, 320, 2), GST_FLOW_OK);
  ASSERT_EQ (f.packet ("B", t0 + 20, 320, 3), GST_FLOW_OK);
  ASSERT_TRUE (f.eos ());
  auto a = f.col.samples ("A"), b = f.col.samples ("B");
  ASSERT_EQ (a.size (), 60u * 16);
  ASSERT_EQ (b.size (), 60u * 16);
  EXPECT_EQ (a[0], 0);
  EXPECT_EQ (a[639], 0);
  EXPECT_EQ (a[640], 1);
  EXPECT_EQ (b[0], 2);
  EXPECT_EQ (b[320], 3);
  EXPECT_EQ (b[640], 0);
}

/* Zoom's FIRST_PACKET_TIMESTAMP event (an empty buffer with key "", as
 * zoomrtmssrc layout=packets forwards it) before any packet is the origin:
 * the output starts with silence up to the first packet; one after the
 * first packet is ignored. */
TEST (ZoomRtmsDemux, FirstPacketTimestampEventBeforePacketsIsTheOrigin)
{
  HandFed f;
  const gint64 t0 = 1700000000000;
  GstBuffer *ev = gst_buffer_new ();
  zoomrtms_packet_meta_add (ev, "", t0);
  ASSERT_EQ (gst_pad_push (f.src, ev), GST_FLOW_OK);
  for (int ms = 100; ms < 400; ms += 20) {
    ASSERT_EQ (f.packet ("A", t0 + ms, 320, 1), GST_FLOW_OK);
  }
  ev = gst_buffer_new ();
  zoomrtms_packet_meta_add (ev, "", t0 - 5000);
  ASSERT_EQ (gst_pad_push (f.src, ev), GST_FLOW_OK);
  ASSERT_TRUE (f.eos ());
  auto a = f.col.samples ("A");
  ASSERT_EQ (a.size (), 400u * 16);
  EXPECT_TRUE (std::all_of (a.begin (), a.begin () + 1600,
          [] (int16_t v) { return v == 0; }));
  EXPECT_EQ (a[1600], 1);
  std::lock_guard<std::mutex> lk (f.col.lock);
  EXPECT_EQ (f.col.out.size (), 1u);
}

/* Keys are untrusted: the pad name keeps only [A-Za-z0-9_.-] (clashes get
 * a suffix), the tag keeps the key; broken packets make no pad. */
TEST (ZoomRtmsDemux, HostileKeysSanitizedAndBrokenPacketsDropped)
{
  HandFed f;
  const gint64 t0 = 1700000000000;
  ASSERT_EQ (f.packet ("../a b", t0, 320, 1), GST_FLOW_OK);
  ASSERT_EQ (f.packet ("../a_b", t0, 320, 1), GST_FLOW_OK);
  GstBuffer *odd = gst_buffer_new_allocate (nullptr, 3, nullptr);
  zoomrtms_packet_meta_add (odd, "odd", t0);
  ASSERT_EQ (gst_pad_push (f.src, odd), GST_FLOW_OK);
  GstBuffer *nometa = gst_buffer_new_allocate (nullptr, 640, nullptr);
  ASSERT_EQ (gst_pad_push (f.src, nometa), GST_FLOW_OK);
  ASSERT_EQ (f.packet (std::string (300, 'x'), t0 + 20, 320, 1), GST_FLOW_OK);
  ASSERT_TRUE (f.eos ());
  std::lock_guard<std::mutex> lk (f.col.lock);
  ASSERT_EQ (f.col.out.size (), 3u);
  EXPECT_EQ (f.col.out["participant_.._a_b"].title, "../a b");
  EXPECT_EQ (f.col.out["participant_.._a_b_2"].title, "../a_b");
  EXPECT_EQ (f.col.out["participant_" + std::string (64, 'x')].title,
      std::string (300, 'x'));
  for (auto &kv : f.col.out) {
    EXPECT_EQ (kv.second.samples.size (), 40u * 16) << kv.first;
    EXPECT_TRUE (kv.second.eos);
  }
}

/* EOS without any participant audio: an error, not a hang. */
TEST (ZoomRtmsDemux, EosWithoutParticipantsIsAnError)
{
  HandFed f;
  GstBus *bus = gst_element_get_bus (f.pipe);
  EXPECT_FALSE (f.eos ());
  GstMessage *m = gst_bus_timed_pop_filtered (bus, 5 * GST_SECOND,
      GST_MESSAGE_ERROR);
  ASSERT_NE (m, nullptr);
  GError *err = nullptr;
  gst_message_parse_error (m, &err, nullptr);
  EXPECT_TRUE (g_error_matches (err, GST_STREAM_ERROR,
          GST_STREAM_ERROR_DEMUX));
  g_error_free (err);
  gst_message_unref (m);
  gst_object_unref (bus);
}

/* ------------------------------------------------------- against the sim */

/* zoomrtms-sim serve, one meeting stream. */
struct Sim {
  GPid pid = 0;
  std::string dir, dump, server_urls, stream_id, uuid;

  ~Sim ()
  {
    stop ();
    if (!dir.empty ())
      fs::remove_all (dir);
  }
  bool
  start (const std::vector<std::string> &extra, std::string *why)
  {
    char tmpl[] = "/tmp/zoomrtms-demux-XXXXXX";
    dir = g_mkdtemp (tmpl);
    std::string ready = dir + "/ready.json";
    dump = dir + "/dump";
    std::vector<std::string> args = { build_dir () + "/src/sim/zoomrtms-sim",
      "serve", "--port", "0", "--ready-file", ready, "--dump-dir", dump,
      "--client-id", kClientId, "--client-secret", kClientSecret };
    args.insert (args.end (), extra.begin (), extra.end ());
    std::vector<char *> argv;
    for (auto &a : args)
      argv.push_back ((char *) a.c_str ());
    argv.push_back (nullptr);
    g_autoptr (GError) err = nullptr;
    if (!g_spawn_async (dir.c_str (), argv.data (), nullptr,
            (GSpawnFlags) (G_SPAWN_DO_NOT_REAP_CHILD |
                G_SPAWN_STDOUT_TO_DEV_NULL), nullptr, nullptr, &pid, &err)) {
      *why = err->message;
      return false;
    }
    for (int i = 0; i < 600 && !fs::exists (ready); i++)
      g_usleep (50000);
    g_usleep (50000);
    g_autoptr (JsonParser) p = json_parser_new ();
    if (!json_parser_load_from_file (p, ready.c_str (), nullptr)) {
      *why = "no ready file from zoomrtms-sim";
      return false;
    }
    JsonObject *o = json_node_get_object (json_parser_get_root (p));
    JsonObject *s = json_array_get_object_element (
        json_object_get_array_member (o, "streams"), 0);
    server_urls = json_object_get_string_member (s, "server_urls");
    stream_id = json_object_get_string_member (s, "rtms_stream_id");
    const char *key = json_object_get_string_member (s, "id_key");
    uuid = json_object_get_string_member (s, key);
    return true;
  }
  void
  configure (GstElement *src) const
  {
    g_object_set (src, "server-urls", server_urls.c_str (), "meeting-uuid",
        uuid.c_str (), "rtms-stream-id", stream_id.c_str (), "client-id",
        kClientId, "client-secret", kClientSecret, nullptr);
    gst_util_set_object_arg (G_OBJECT (src), "data-opt", "multi");
  }
  void
  stop ()
  {
    if (!pid)
      return;
    kill (pid, SIGTERM);
    waitpid (pid, nullptr, 0);
    g_spawn_close_pid (pid);
    pid = 0;
  }
  std::string stream_dir () const { return dump + "/" + stream_id + "/"; }
};

/* Runs @pipe until EOS or ERROR (at most @timeout_s). Returns: TRUE on
 * EOS. */
bool
run_to_eos (GstElement *pipe, int timeout_s, std::string *error)
{
  GstBus *bus = gst_element_get_bus (pipe);
  gst_element_set_state (pipe, GST_STATE_PLAYING);
  GstMessage *m = gst_bus_timed_pop_filtered (bus,
      (GstClockTime) timeout_s * GST_SECOND,
      (GstMessageType) (GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  bool eos = m && GST_MESSAGE_TYPE (m) == GST_MESSAGE_EOS;
  if (m && GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR) {
    GError *err = nullptr;
    gchar *dbg = nullptr;
    gst_message_parse_error (m, &err, &dbg);
    *error = std::string (err->message) + " / " + (dbg ? dbg : "");
    g_error_free (err);
    g_free (dbg);
  } else if (!m) {
    *error = "timeout";
  }
  if (m)
    gst_message_unref (m);
  gst_element_set_state (pipe, GST_STATE_NULL);
  gst_object_unref (bus);
  return eos;
}

const std::vector<std::string> kCall = { "--product", "meeting",
  "--data-opt", "multi", "--speed", "0", "--duration", "10",
  "--join-late", "agent:3000", "--mute", "customer:2000-4000",
  "--leave", "customer:8000" };

/* Meeting multi-stream, the agent joining at 3 s, the customer muted
 * 2–4 s and leaving at 8 s: each participant's output is exactly what the
 * sim sent for that user_id (its dump, zeros where nothing was sent), all
 * 10 s long; the agent's pad appears mid-call; and the saturated sum of
 * the outputs is zoomrtmssrc's layout=mix output of the same call. */
TEST (ZoomRtmsDemuxSim, MeetingParticipantsBitExactAndSumIsTheMix)
{
  Sim sim;
  std::string why;
  ASSERT_TRUE (sim.start (kCall, &why)) << why;
  GstElement *pipe = gst_pipeline_new (nullptr);
  GstElement *src = gst_element_factory_make ("zoomrtmssrc", nullptr);
  GstElement *demux = gst_element_factory_make ("zoomrtmsdemux", nullptr);
  ASSERT_TRUE (src && demux);
  sim.configure (src);
  gst_util_set_object_arg (G_OBJECT (src), "layout", "packets");
  gst_bin_add_many (GST_BIN (pipe), src, demux, nullptr);
  ASSERT_TRUE (gst_element_link (src, demux));
  Collector col;
  col.bin = pipe;
  g_signal_connect (demux, "pad-added", G_CALLBACK (Collector::pad_added),
      &col);
  std::string err;
  EXPECT_TRUE (run_to_eos (pipe, 120, &err)) << err;
  gst_object_unref (pipe);
  sim.stop ();

  auto cust = read_pcm (sim.stream_dir () + "customer.pcm");
  auto agent = read_pcm (sim.stream_dir () + "agent.pcm");
  ASSERT_EQ (cust.size (), 10u * 16000);
  ASSERT_EQ (agent.size (), 10u * 16000);
  /* the dump is what was sent: speech where the participant was there */
  size_t agent_before = 0, cust_after = 0, cust_muted = 0, cust_speech = 0;
  for (size_t i = 0; i < cust.size (); i++) {
    agent_before += i < 48000 && agent[i] != 0;
    cust_after += i >= 128000 && cust[i] != 0;
    cust_muted += i >= 32000 && i < 64000 && cust[i] != 0;
    cust_speech += cust[i] != 0;
  }
  EXPECT_EQ (agent_before + cust_after + cust_muted, 0u);
  EXPECT_GT (cust_speech, 16000u);

  auto got_c = col.samples (kCustomer), got_a = col.samples (kAgent);
  ASSERT_EQ (got_c.size (), cust.size ());
  ASSERT_EQ (got_a.size (), agent.size ());
  size_t bad_c = 0, bad_a = 0;
  for (size_t i = 0; i < cust.size (); i++) {
    bad_c += got_c[i] != cust[i];
    bad_a += got_a[i] != agent[i];
  }
  EXPECT_EQ (bad_c, 0u) << "customer samples differing";
  EXPECT_EQ (bad_a, 0u) << "agent samples differing";
  {
    std::lock_guard<std::mutex> lk (col.lock);
    EXPECT_EQ (col.out.size (), 2u);
    auto &a = col.out[std::string ("participant_") + kAgent];
    EXPECT_EQ (a.title, kAgent);
    EXPECT_TRUE (a.eos);
    /* the late joiner's pad came mid-call: the customer's pad had
     * output audio by then */
    EXPECT_GT (a.others_before, 0u);
  }

  /* the same call, mixed */
  Sim sim2;
  ASSERT_TRUE (sim2.start (kCall, &why)) << why;
  pipe = gst_pipeline_new (nullptr);
  src = gst_element_factory_make ("zoomrtmssrc", nullptr);
  GstElement *sink = gst_element_factory_make ("fakesink", nullptr);
  sim2.configure (src);
  gst_util_set_object_arg (G_OBJECT (src), "layout", "mix");
  g_object_set (sink, "sync", FALSE, nullptr);
  gst_bin_add_many (GST_BIN (pipe), src, sink, nullptr);
  ASSERT_TRUE (gst_element_link (src, sink));
  Collector mix;
  GstPad *sp = gst_element_get_static_pad (src, "src");
  gst_pad_add_probe (sp, (GstPadProbeType) (GST_PAD_PROBE_TYPE_BUFFER |
          GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM), Collector::probe, &mix,
      nullptr);
  gst_object_unref (sp);
  EXPECT_TRUE (run_to_eos (pipe, 120, &err)) << err;
  gst_object_unref (pipe);
  std::vector<int16_t> mixed;
  {
    std::lock_guard<std::mutex> lk (mix.lock);
    mixed = mix.out["src"].samples;
  }
  ASSERT_EQ (mixed.size (), got_c.size ());
  size_t bad = 0;
  for (size_t i = 0; i < mixed.size (); i++)
    bad += mixed[i] != std::clamp ((int) got_c[i] + got_a[i], -32768, 32767);
  EXPECT_EQ (bad, 0u) << "mix samples differing from the participants' sum";
}

/* gst-launch-1.0 style: one WAV per participant through wavenc; files
 * that gst-discoverer-1.0 and soxi read, equally long. */
TEST (ZoomRtmsDemuxSim, WavPerParticipantReadByDiscovererAndSoxi)
{
  Sim sim;
  std::string why;
  ASSERT_TRUE (sim.start ({ "--product", "meeting", "--data-opt", "multi",
              "--speed", "0", "--duration", "4", "--join-late",
              "agent:1500" }, &why)) << why;
  std::string desc = "zoomrtmssrc name=src layout=packets data-opt=multi "
      "! zoomrtmsdemux name=participants";
  GError *perr = nullptr;
  GstElement *pipe = gst_parse_launch (desc.c_str (), &perr);
  ASSERT_NE (pipe, nullptr) << (perr ? perr->message : "");
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipe), "src");
  sim.configure (src);
  gst_object_unref (src);
  GstElement *demux = gst_bin_get_by_name (GST_BIN (pipe), "participants");
  struct Ctx { GstElement *pipe; std::string dir; } ctx { pipe, sim.dir };
  g_signal_connect (demux, "pad-added", G_CALLBACK (+[](GstElement *,
              GstPad *pad, gpointer d) {
            auto c = static_cast<Ctx *> (d);
            std::string name = GST_OBJECT_NAME (pad);
            std::string loc = c->dir + "/" + name + ".wav";
            std::string branch = "wavenc ! filesink location=\"" + loc + "\"";
            GstElement *bin = gst_parse_bin_from_description (branch.c_str (),
                TRUE, nullptr);
            gst_bin_add (GST_BIN (c->pipe), bin);
            gst_element_sync_state_with_parent (bin);
            GstPad *sp = gst_element_get_static_pad (bin, "sink");
            gst_pad_link (pad, sp);
            gst_object_unref (sp);
          }), &ctx);
  gst_object_unref (demux);
  std::string err;
  EXPECT_TRUE (run_to_eos (pipe, 120, &err)) << err;
  gst_object_unref (pipe);
  for (const char *key : { kCustomer, kAgent }) {
    std::string f = sim.dir + "/participant_" + key + ".wav";
    ASSERT_TRUE (fs::exists (f)) << f;
    /* the data plus the header (and wavenc's INFO chunk with the title) */
    EXPECT_GE (fs::file_size (f), 44u + 4u * 16000 * 2) << f;
    std::string out;
    gchar *o = nullptr;
    int status = -1;
    std::string cmd = "soxi -s '" + f + "'";
    ASSERT_TRUE (g_spawn_command_line_sync (cmd.c_str (), &o, nullptr,
            &status, nullptr));
    EXPECT_EQ (status, 0);
    EXPECT_EQ (std::string (o ? o : ""), "64000\n") << cmd;
    g_free (o);
    o = nullptr;
    cmd = "gst-discoverer-1.0 '" + f + "'";
    ASSERT_TRUE (g_spawn_command_line_sync (cmd.c_str (), &o, nullptr,
            &status, nullptr));
    EXPECT_EQ (status, 0);
    std::string text = o ? o : "";
    g_free (o);
    EXPECT_NE (text.find ("Duration: 0:00:04.0"), std::string::npos) << text;
    EXPECT_NE (text.find ("Sample rate: 16000"), std::string::npos) << text;
    EXPECT_NE (text.find ("Channels: 1"), std::string::npos) << text;
  }
}

} // namespace

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  testing::InitGoogleTest (&argc, argv);
  return RUN_ALL_TESTS ();
}
