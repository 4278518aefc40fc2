/* Issue 14 (part 1), end to end through zoomrtms-sim and zoomrtms-host:
 * a meeting records one mono mix by default (bit-exact against the sim's
 * dump; soxi reads one channel); webinar and Video SDK session webhooks
 * are recorded with their ids (the handshake sends the product's id key);
 * transcript.vtt and transcript.srt are read by parsers we did not write:
 * GStreamer's subparse (in a pipeline here) and ffmpeg/ffprobe.
 */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "host-e2e-util.h"

namespace {

using namespace hosttest;

class Env : public ::testing::Environment {
 public:
  void SetUp () override { gst_init (nullptr, nullptr); }
};
const auto *const env_ = ::testing::AddGlobalTestEnvironment (new Env);

/* The sim's dump manifest of the only stream (sent.json beside the PCM). */
std::string
only_dump_dir (const TempDir &tmp, const std::string &name = "sim")
{
  auto dirs = list_dir (tmp / (name + "-dump"));
  return dirs.size () == 1 ? tmp / (name + "-dump/" + dirs[0]) : std::string ();
}

/* Plays one call of @product through a fresh host; returns its engagement
 * directory and the sim's dump directory. */
void
play_product (const TempDir &tmp, Host &h, const std::string &product,
    std::string *dir, std::string *dump)
{
  auto sim = run_sim (tmp, h, {"--speed", "0", "--duration", "4", "--product", product});
  ASSERT_TRUE (sim->wait (90000));
  ASSERT_EQ (sim->exit_status (), 0) << sim->log ();
  ASSERT_TRUE (host_idle (h, 20000));
  auto dirs = list_dir (h.out ());
  ASSERT_EQ (dirs.size (), 1u);
  *dir = h.out () + "/" + dirs[0];
  *dump = only_dump_dir (tmp);
  ASSERT_FALSE (dump->empty ());
}

std::string
soxi (const std::string &flag, const std::string &path)
{
  std::string out;
  if (run_tool ({"soxi", flag, path}, &out) != 0)
    return "";
  while (!out.empty () && (out.back () == '\n' || out.back () == ' '))
    out.pop_back ();
  return out;
}

/* The names listed in engagement.json's "files". */
std::vector<std::string>
listed_files (JsonObject *ej)
{
  std::vector<std::string> v;
  if (!json_object_has_member (ej, "files"))
    return v;
  JsonArray *a = json_object_get_array_member (ej, "files");
  for (guint i = 0; i < json_array_get_length (a); i++)
    v.push_back (json_object_get_string_member (json_array_get_object_element (a, i),
            "name"));
  return v;
}

bool
has (const std::vector<std::string> &v, const std::string &s)
{
  return std::find (v.begin (), v.end (), s) != v.end ();
}

struct Cue {
  guint64 pts_ms, dur_ms;
  std::string text;
};

/* filesrc ! subparse ! appsink: every text buffer with its timestamps. */
std::vector<Cue>
subparse_cues (const std::string &path, std::string *error)
{
  std::vector<Cue> cues;
  g_autofree gchar *loc = g_strescape (path.c_str (), nullptr);
  std::string desc = "filesrc location=\"" + std::string (loc) +
      "\" ! subparse ! appsink name=sink sync=false emit-signals=false";
  GError *err = nullptr;
  GstElement *p = gst_parse_launch (desc.c_str (), &err);
  if (!p) {
    *error = err ? err->message : "parse failed";
    g_clear_error (&err);
    return cues;
  }
  GstElement *sink = gst_bin_get_by_name (GST_BIN (p), "sink");
  gst_element_set_state (p, GST_STATE_PLAYING);
  for (;;) {
    GstSample *s = gst_app_sink_try_pull_sample (GST_APP_SINK (sink), 30 * GST_SECOND);
    if (!s)
      break;
    if (cues.empty ()) {
      GstCaps *caps = gst_sample_get_caps (s);
      g_autofree gchar *c = caps ? gst_caps_to_string (caps) : g_strdup ("none");
      *error = c;     /* the caps, for messages */
    }
    GstBuffer *b = gst_sample_get_buffer (s);
    GstMapInfo m;
    if (gst_buffer_map (b, &m, GST_MAP_READ)) {
      cues.push_back ({GST_BUFFER_PTS (b) / GST_MSECOND, GST_BUFFER_DURATION (b) / GST_MSECOND,
          std::string (reinterpret_cast<const char *> (m.data), m.size)});
      gst_buffer_unmap (b, &m);
    }
    gst_sample_unref (s);
  }
  GstBus *bus = gst_element_get_bus (p);
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  if (msg) {
    GError *e = nullptr;
    gst_message_parse_error (msg, &e, nullptr);
    *error = std::string ("ERROR: ") + e->message;
    g_error_free (e);
    gst_message_unref (msg);
  }
  gst_object_unref (bus);
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (p);
  return cues;
}

/* ffprobe's packets of a subtitle file: pts_time and duration_time (s). */
std::vector<std::pair<double, double>>
ffprobe_packets (const std::string &path, std::string *out)
{
  std::vector<std::pair<double, double>> v;
  if (run_tool ({"ffprobe", "-v", "error", "-show_entries",
          "packet=pts_time,duration_time", "-of", "csv=p=0", path}, out) != 0)
    return v;
  g_auto (GStrv) lines = g_strsplit (out->c_str (), "\n", -1);
  for (gchar **l = lines; *l; l++) {
    if (!**l)
      continue;
    g_auto (GStrv) f = g_strsplit (*l, ",", -1);
    if (g_strv_length (f) >= 2)
      v.push_back ({g_ascii_strtod (f[0], nullptr), g_ascii_strtod (f[1], nullptr)});
  }
  return v;
}

} // namespace

/* A meeting (mixed audio) records one mono channel by default — the sum of
 * what the sim sent, sample for sample — with no configuration. */
TEST (HostMeetings, MeetingDefaultIsMonoMixBitExact)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  Host h (tmp);
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  std::string dir, dump;
  ASSERT_NO_FATAL_FAILURE (play_product (tmp, h, "meeting", &dir, &dump));
  std::string wav = dir + "/audio.wav";
  EXPECT_EQ (soxi ("-c", wav), "1") << "soxi channels of " << wav;
  EXPECT_EQ (soxi ("-r", wav), "16000");
  Wav w = read_wav (wav);
  ASSERT_EQ (w.channels, 1);
  EXPECT_EQ (w.data_size, w.file_size - w.data_offset) << "header not finalized";
  /* the sim's dump of a mixed meeting stream: one PCM file, the mix */
  std::vector<std::string> pcms;
  for (const auto &n : list_dir (dump))
    if (g_str_has_suffix (n.c_str (), ".pcm"))
      pcms.push_back (n);
  ASSERT_EQ (pcms.size (), 1u) << dump;
  auto expected = read_pcm (dump + "/" + pcms[0]);
  ASSERT_GT (expected.size (), 16000u);
  ASSERT_EQ (w.samples.size (), expected.size ());
  gsize first_diff = 0;
  while (first_diff < expected.size () && w.samples[first_diff] == expected[first_diff])
    first_diff++;
  EXPECT_EQ (first_diff, expected.size ()) << "first differing sample " << first_diff;
  expect_discoverer_accepts (wav);
  expect_clean_exit (h.proc ());
}

/* webinar.rtms_* and session.rtms_*: recorded with their ids; the handshake
 * sent the product's own id key (docs/protocol.md §3.3); engagement.json
 * carries the id under that key. */
TEST (HostMeetings, WebinarAndSessionRecorded)
{
  REQUIRE_BINARIES ();
  struct P {
    const char *product, *id_key;
  } products[] = {{"webinar", "webinar_uuid"}, {"session", "session_id"}};
  for (const P &pr : products) {
    SCOPED_TRACE (pr.product);
    TempDir tmp;
    Host h (tmp);
    ASSERT_GT (h.port (), 0) << h.proc ().log ();
    std::string dir, dump;
    ASSERT_NO_FATAL_FAILURE (play_product (tmp, h, pr.product, &dir, &dump));
    JsonDoc ready (read_file (tmp / "sim-ready.json"));
    ASSERT_NE (ready.obj (), nullptr);
    JsonObject *st = json_array_get_object_element (
        json_object_get_array_member (ready.obj (), "streams"), 0);
    std::string id = json_object_get_string_member (st, pr.id_key);
    ASSERT_FALSE (id.empty ());
    /* the webhook's payload shape */
    JsonObject *payload = json_object_get_object_member (
        json_object_get_object_member (st, "webhook"), "payload");
    EXPECT_STREQ (json_object_get_string_member (json_object_get_object_member (st,
                "webhook"), "event"), (std::string (pr.product) + ".rtms_started").c_str ());
    EXPECT_TRUE (json_object_has_member (payload, pr.id_key));
    EXPECT_FALSE (json_object_has_member (payload, "meeting_uuid"));
    if (g_str_equal (pr.product, "session")) {
      EXPECT_TRUE (json_object_has_member (payload, "session_key"));
    }

    std::unique_ptr<JsonDoc> ej (engagement_json (dir));
    ASSERT_NE (ej->obj (), nullptr);
    EXPECT_STREQ (json_object_get_string_member (ej->obj (), "product"), pr.product);
    EXPECT_STREQ (json_object_get_string_member (ej->obj (), "id_key"), pr.id_key);
    EXPECT_STREQ (json_object_get_string_member_with_default (ej->obj (), pr.id_key, ""),
        id.c_str ());
    EXPECT_STREQ (json_object_get_string_member (ej->obj (), "state"), "stopped");
    JsonObject *sr = json_object_get_object_member (ej->obj (), "stop_reason");
    ASSERT_NE (sr, nullptr);
    EXPECT_EQ (json_object_get_int_member (sr, "code"), 6);   /* MEETING_ENDED */

    JsonDoc manifest (read_file (dump + "/sent.json"));
    ASSERT_NE (manifest.obj (), nullptr) << dump;
    EXPECT_STREQ (json_object_get_string_member_with_default (manifest.obj (),
            "handshake_id_key", ""), pr.id_key);
    /* mono mix, bit-exact like a meeting */
    Wav w = read_wav (dir + "/audio.wav");
    EXPECT_EQ (w.channels, 1);
    EXPECT_GT (w.samples.size (), 16000u);
    std::string txt = read_file (dir + "/transcript.txt");
    EXPECT_NE (txt.find (id), std::string::npos) << txt;
    expect_clean_exit (h.proc ());
  }
}

/* transcript.vtt and transcript.srt beside transcript.txt: same sentences,
 * speaker names, times from the recording start, read by subparse and by
 * ffprobe; listed in engagement.json's files. */
TEST (HostMeetings, TranscriptsVttSrtReadByOtherParsers)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  Host h (tmp);
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  std::vector<SimStream> streams;
  ASSERT_NO_FATAL_FAILURE (play_calls (tmp, h, {"--speed", "0"}, 1,
      &streams));
  std::string dir = h.out () + "/" + streams[0].engagement_id;
  std::string vtt = read_file (dir + "/transcript.vtt");
  std::string srt = read_file (dir + "/transcript.srt");
  ASSERT_TRUE (g_str_has_prefix (vtt.c_str (), "WEBVTT\n")) << vtt;
  ASSERT_FALSE (srt.empty ());
  EXPECT_TRUE (g_str_has_prefix (srt.c_str (), "1\n")) << srt;
  EXPECT_NE (vtt.find ("<v Jane Doe>"), std::string::npos) << vtt;
  EXPECT_NE (vtt.find ("<v Tom Agent>"), std::string::npos) << vtt;
  EXPECT_NE (srt.find ("\nJane Doe: "), std::string::npos) << srt;

  /* as many cues as transcript.txt has lines */
  std::string txt = read_file (dir + "/transcript.txt");
  gsize lines = 0;
  for (gsize p = 0; (p = txt.find ("\n[", p)) != std::string::npos; p++)
    lines++;
  ASSERT_GE (lines, 2u) << txt;
  gsize vtt_cues = 0;
  for (gsize p = 0; (p = vtt.find (" --> ", p)) != std::string::npos; p++)
    vtt_cues++;
  EXPECT_EQ (vtt_cues, lines) << vtt;

  std::unique_ptr<JsonDoc> ej (engagement_json (dir));
  ASSERT_NE (ej->obj (), nullptr);
  auto files = listed_files (ej->obj ());
  EXPECT_TRUE (has (files, "audio.wav"));
  EXPECT_TRUE (has (files, "transcript.txt"));
  EXPECT_TRUE (has (files, "transcript.vtt"));
  EXPECT_TRUE (has (files, "transcript.srt"));

  /* cue times are on the audio file's timeline: sample 0 is the first
   * packet of the call (the earliest first_timestamp the sim sent, epoch
   * ms), so a sentence starts at its msg 17 start_time minus that */
  JsonDoc sent (read_file (tmp / ("sim-dump/" + streams[0].rtms_stream_id + "/sent.json")));
  ASSERT_NE (sent.obj (), nullptr);
  gint64 t0 = G_MAXINT64;
  JsonArray *chs = json_object_get_array_member (sent.obj (), "channels");
  for (guint i = 0; i < json_array_get_length (chs); i++)
    t0 = std::min (t0, json_object_get_int_member (json_array_get_object_element (chs, i),
            "first_timestamp"));
  std::vector<gint64> expected_starts;
  {
    std::string jl = read_file (dir + "/transcript.jsonl");
    g_auto (GStrv) rows = g_strsplit (jl.c_str (), "\n", -1);
    for (gchar **r = rows; *r; r++) {
      JsonDoc d (*r);
      if (d.obj () && !json_object_get_boolean_member (d.obj (), "revision"))
        expected_starts.push_back (json_object_get_int_member (d.obj (), "start_time") - t0);
    }
  }
  std::sort (expected_starts.begin (), expected_starts.end ());
  ASSERT_EQ (expected_starts.size (), lines);

  double audio_s = soxi_duration (dir + "/audio.wav");
  ASSERT_GT (audio_s, 0.0);
  for (const char *name : {"transcript.vtt", "transcript.srt"}) {
    SCOPED_TRACE (name);
    std::string err;
    auto cues = subparse_cues (dir + "/" + name, &err);
    EXPECT_EQ (err.find ("ERROR"), std::string::npos) << err;
    ASSERT_EQ (cues.size (), lines) << err;
    guint64 last = 0;
    bool jane = false;
    for (gsize i = 0; i < cues.size (); i++)
      EXPECT_NEAR (static_cast<double> (cues[i].pts_ms), expected_starts[i], 1.0)
          << "cue " << i << " not on the audio's timeline";
    for (const Cue &c : cues) {
      EXPECT_GE (c.pts_ms, last) << "cues out of order";
      last = c.pts_ms;
      EXPECT_GT (c.dur_ms, 0u);
      EXPECT_LE (static_cast<double> (c.pts_ms + c.dur_ms) / 1000.0, audio_s + 0.001);
      EXPECT_FALSE (c.text.empty ());
      if (c.text.find ("Jane Doe") != std::string::npos)
        jane = true;
    }
    EXPECT_TRUE (jane) << "no speaker name in " << name;

    /* ffprobe demuxes it as a subtitle stream with the same packets */
    std::string out;
    auto packets = ffprobe_packets (dir + "/" + name, &out);
    ASSERT_EQ (packets.size (), lines) << out;
    for (gsize i = 0; i < packets.size (); i++) {
      EXPECT_NEAR (packets[i].first, cues[i].pts_ms / 1000.0, 0.0015) << i;
      EXPECT_GT (packets[i].second, 0.0) << i;
    }
    std::string codec;
    ASSERT_EQ (run_tool ({"ffprobe", "-v", "error", "-show_entries", "stream=codec_name",
            "-of", "csv=p=0", dir + "/" + name}, &codec), 0);
    EXPECT_NE (codec.find (g_str_has_suffix (name, ".vtt") ? "webvtt" : "subrip"),
        std::string::npos) << codec;
    /* ffmpeg decodes every cue and writes it out again as SubRip */
    EXPECT_EQ (run_tool ({"ffmpeg", "-v", "error", "-xerror", "-i", dir + "/" + name,
            "-f", "srt", "-"}, &out), 0) << out;
    gsize converted = 0;
    for (gsize p = 0; (p = out.find (" --> ", p)) != std::string::npos; p++)
      converted++;
    EXPECT_EQ (converted, lines) << out;
  }
  expect_clean_exit (h.proc ());
}

/* session.rtms_interrupted: a signaling outage of a Video SDK session sends
 * the interrupted webhook (session_id, session_key); the host records it
 * for that engagement, the element rejoins with the session's id, and the
 * recording goes on to the end as one mono file. */
TEST (HostMeetings, SessionInterruptedWebhookRecorded)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  Host h (tmp);
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  auto sim = run_sim (tmp, h, {"--speed", "1", "--duration", "6", "--product", "session",
      "--outage", "signaling:1500+1500"});
  ASSERT_TRUE (sim->wait (90000));
  ASSERT_EQ (sim->exit_status (), 0) << sim->log ();
  ASSERT_TRUE (host_idle (h, 20000));
  auto dirs = list_dir (h.out ());
  ASSERT_EQ (dirs.size (), 1u);
  std::string dir = h.out () + "/" + dirs[0];
  std::string ev = read_file (dir + "/events.jsonl");
  EXPECT_NE (ev.find ("\"type\":\"interrupted-webhook\""), std::string::npos) << ev;
  EXPECT_NE (ev.find ("\"event\":\"session.rtms_interrupted\""), std::string::npos) << ev;
  std::unique_ptr<JsonDoc> ej (engagement_json (dir));
  ASSERT_NE (ej->obj (), nullptr);
  EXPECT_STREQ (json_object_get_string_member (ej->obj (), "product"), "session");
  EXPECT_STREQ (json_object_get_string_member (ej->obj (), "state"), "stopped");
  EXPECT_GE (json_array_get_length (json_object_get_array_member (ej->obj (),
          "interruptions")), 1u);
  Wav w = read_wav (dir + "/audio.wav");
  EXPECT_EQ (w.channels, 1);
  EXPECT_NEAR (soxi_duration (dir + "/audio.wav"), 6.0, 0.1);
  /* the rejoin's handshake used session_id too */
  std::string dump = only_dump_dir (tmp);
  JsonDoc manifest (read_file (dump + "/sent.json"));
  ASSERT_NE (manifest.obj (), nullptr);
  EXPECT_STREQ (json_object_get_string_member_with_default (manifest.obj (),
          "handshake_id_key", ""), "session_id");
  expect_clean_exit (h.proc ());
}
