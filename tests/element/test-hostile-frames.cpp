/* zoomrtmssrc against hostile WebSocket frames (issue 8 "Hostile and unusual
 * input"): zoomrtms-sim --hostile-frame sends, mid-call and in addition to
 * the call, frames a broken or malicious RTMS server might send — 300,000-deep
 * nesting, invalid UTF-8, non-JSON escapes, lone surrogates, NULs, binary
 * junk, an 8 MiB frame — on the media and the signaling socket. The element
 * must skip each (frames-malformed), keep both connections (one handshake
 * each on the sim's side) and output exactly the PCM the sim sent
 * (--dump-dir), sample for sample, then EOS. Before the decoder fix the deep
 * frames crashed the process; before the frame-limit fix the 8 MiB frame
 * dropped the media socket (1009) and lost audio.
 */
#include <gtest/gtest.h>

#include <gst/check/gstharness.h>
#include <gst/gst.h>

#include <string>
#include <vector>

#include "sim-test-util.h"

using simtest::JsonDoc;
using simtest::Sim;
using simtest::obj_str;

namespace {

const char *kClientId = "test_client_id";
const char *kClientSecret = "test_client_secret";

std::string
read_file (const std::string &path)
{
  g_autofree char *data = nullptr;
  gsize len = 0;
  if (!g_file_get_contents (path.c_str (), &data, &len, nullptr))
    return std::string ();
  return std::string (data, len);
}

std::vector<gint16>
pcm_of (const std::string &bytes)
{
  std::vector<gint16> s (bytes.size () / 2);
  for (size_t i = 0; i < s.size (); i++)
    s[i] = (gint16) (guint16) ((guint8) bytes[2 * i] |
        ((guint8) bytes[2 * i + 1] << 8));
  return s;
}

guint64
stats_field (GstElement *src, const char *field)
{
  GstStructure *s = nullptr;
  g_object_get (src, "stats", &s, nullptr);
  guint64 v = G_MAXUINT64;
  if (s)
    gst_structure_get_uint64 (s, field, &v);
  gst_structure_free (s);
  return v;
}

/* The hostile frames of one call, spread over its first 2.5 s. */
const char *const kHostileFrames[] = {
  "deep@200", "deep-msg@400", "bad-utf8@600", "escape-377@800",
  "surrogate@1000", "nul@1200", "nul-raw@1400", "binary@1600",
  "oversize@1800", "signaling:deep@2000", "signaling:escape-377@2200",
  "signaling:nul@2400",
};

} // namespace

TEST (ZoomRtmsSrcHostile, HostileFramesMidCallLoseNoAudioAndNoConnection)
{
  gst_init (nullptr, nullptr);
  g_autofree char *tmp = g_dir_make_tmp ("zoomrtms-hostile-XXXXXX", nullptr);
  ASSERT_NE (tmp, nullptr);
  std::string dump = std::string (tmp) + "/dump";
  std::vector<std::string> args = { "serve", "--port", "0", "--speed", "0",
    "--duration", "4", "--client-id", kClientId, "--client-secret",
    kClientSecret, "--dump-dir", dump };
  for (const char *h : kHostileFrames) {
    args.push_back ("--hostile-frame");
    args.push_back (h);
  }
  guint64 n_hostile = G_N_ELEMENTS (kHostileFrames);
  {
    Sim sim (args);
    JsonObject *st = sim.stream (0);
    ASSERT_NE (st, nullptr);
    std::string sid = obj_str (st, "rtms_stream_id");

    GstHarness *h = gst_harness_new ("zoomrtmssrc");
    ASSERT_NE (h, nullptr);
    g_object_set (h->element, "server-urls", sim.signaling_url ().c_str (),
        "engagement-id", obj_str (st, "engagement_id").c_str (),
        "rtms-stream-id", sid.c_str (), "client-id", kClientId,
        "client-secret", kClientSecret, nullptr);
    gst_util_set_object_arg (G_OBJECT (h->element), "layout", "stereo");
    gst_harness_play (h);

    std::vector<gint16> got;
    bool eos = false;
    for (;;) {
      GstBuffer *buf = nullptr;
      if (!gst_harness_pull_until_eos (h, &buf))
        break;                  /* 60 s without a buffer */
      if (!buf) {
        eos = true;
        break;
      }
      GstMapInfo map;
      gst_buffer_map (buf, &map, GST_MAP_READ);
      auto s = pcm_of (std::string ((const char *) map.data, map.size));
      got.insert (got.end (), s.begin (), s.end ());
      gst_buffer_unmap (buf, &map);
      gst_buffer_unref (buf);
    }
    EXPECT_TRUE (eos) << "no EOS after the remote stop";
    EXPECT_EQ (stats_field (h->element, "frames-malformed"), n_hostile);

    /* the output is the interleave of the customer and agent PCM sent */
    auto cust = pcm_of (read_file (dump + "/" + sid + "/customer.pcm"));
    auto agent = pcm_of (read_file (dump + "/" + sid + "/agent.pcm"));
    ASSERT_GT (cust.size (), 16000u);
    ASSERT_EQ (cust.size (), agent.size ());
    ASSERT_EQ (got.size (), 2 * cust.size ());
    size_t mismatches = 0;
    for (size_t i = 0; i < cust.size (); i++) {
      mismatches += got[2 * i] != cust[i];
      mismatches += got[2 * i + 1] != agent[i];
    }
    EXPECT_EQ (mismatches, 0u) << "of " << got.size () << " samples";

    /* both connections kept: one handshake each; every frame was sent */
    JsonDoc sent (read_file (dump + "/" + sid + "/sent.json"));
    ASSERT_NE (sent.obj, nullptr);
    EXPECT_EQ (sent.integer ("hostile_frames_sent"), (gint64) n_hostile);
    EXPECT_EQ (sent.integer ("signaling_handshakes"), 1);
    EXPECT_EQ (sent.integer ("media_handshakes"), 1);
    EXPECT_EQ (sim.wait_exit (10000), 0);
    gst_harness_teardown (h);
  }
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", tmp);
  EXPECT_EQ (system (cmd), 0);
}
