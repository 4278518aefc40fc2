/* tests: merging the Ogg/Opus parts of a continued recording (issue 9):
 * EngagementDir::merge_parts() / ogg_opus_concat(), checked with tools we
 * did not write (gst-discoverer-1.0, opusinfo, ffprobe). */
#include "host-e2e-util.h"

#include "host-common.h"
#include "host-engagement-dir.h"
#include "host-ogg.h"

#include <gst/gst.h>
#include <gtest/gtest.h>

#include <cmath>

using namespace zhost;
using namespace hosttest;

namespace {

class Env : public ::testing::Environment {
 public:
  void SetUp () override
  {
    gst_init (nullptr, nullptr);
    debug_init ();
  }
};
const auto *const env_ = ::testing::AddGlobalTestEnvironment (new Env);

/* hosttest::TempDir (kept on failure for inspection) + file(). */
struct Dir : TempDir {
  std::string file (const std::string &name) const
  {
    g_autofree gchar *f = g_build_filename (path.c_str (), name.c_str (), nullptr);
    return f;
  }
};

/* Writes @path: @seconds of a sine (16 kHz stereo, as zoomrtmssrc
 * layout=stereo) encoded like record-opus.pipeline, the first buffer at
 * @offset_s (a live source's running time: Ogg keeps it as the start
 * offset). @codec: "opus" or "vorbis". */
void
encode (const std::string &path, double seconds, double freq, double offset_s,
    const char *codec = "opus")
{
  int buffers = static_cast<int> (std::lround (seconds * 10));
  std::string enc = g_str_equal (codec, "opus") ?
      "opusenc audio-type=voice bitrate=32000" : "vorbisenc";
  g_autofree gchar *desc = g_strdup_printf (
      "audiotestsrc wave=sine freq=%g samplesperbuffer=1600 num-buffers=%d "
      "timestamp-offset=%" G_GINT64_FORMAT " ! audio/x-raw,format=S16LE,rate=16000,"
      "channels=2 ! audioconvert ! %s ! oggmux ! filesink location=\"%s\"",
      freq, buffers, static_cast<gint64> (offset_s * GST_SECOND), enc.c_str (),
      path.c_str ());
  GError *err = nullptr;
  GstElement *p = gst_parse_launch (desc, &err);
  ASSERT_NE (p, nullptr) << err->message;
  ASSERT_NE (gst_element_set_state (p, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  GstBus *bus = gst_element_get_bus (p);
  GstMessage *m = gst_bus_timed_pop_filtered (bus, 30 * GST_SECOND,
      static_cast<GstMessageType> (GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  bool eos = m && GST_MESSAGE_TYPE (m) == GST_MESSAGE_EOS;
  if (m)
    gst_message_unref (m);
  gst_object_unref (bus);
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (p);
  ASSERT_TRUE (eos) << "encoding " << path << " failed";
}

/* "Duration: 0:00:02.500000000" of gst-discoverer-1.0, in seconds; -1. */
double
discoverer_duration (const std::string &path)
{
  std::string out;
  if (run_tool ({"gst-discoverer-1.0", path}, &out) != 0)
    return -1;
  gsize at = out.find ("Duration: ");
  if (at == std::string::npos)
    return -1;
  int h = 0, m = 0;
  double s = 0;
  if (sscanf (out.c_str () + at + 10, "%d:%d:%lf", &h, &m, &s) != 3)
    return -1;
  return h * 3600 + m * 60 + s;
}

/* opusinfo: exit 0, no warning, "Playback length: 0m:02.5s", in seconds;
 * -1 when it refuses the file. */
double
opusinfo_duration (const std::string &path)
{
  std::string out;
  if (run_tool ({"opusinfo", path}, &out) != 0)
    return -1;
  EXPECT_EQ (out.find ("WARNING"), std::string::npos) << out;
  gsize at = out.find ("Playback length: ");
  int m = 0;
  double s = 0;
  if (at == std::string::npos ||
      sscanf (out.c_str () + at + 17, "%dm:%lfs", &m, &s) != 2)
    return -1;
  return m * 60 + s;
}

} // namespace

TEST (OggOpusMerge, EncoderSettingsFromTemplate)
{
  EXPECT_EQ (ogg_opus_encoder_settings (
      "zoomrtmssrc name=src ! audioconvert ! opusenc audio-type=voice "
      "bitrate=32000\n  ! oggmux ! filesink location=x"),
      "audio-type=voice bitrate=32000");
  EXPECT_EQ (ogg_opus_encoder_settings ("a ! opusenc name=e bitrate=16000 ! b"),
      "bitrate=16000");
  EXPECT_EQ (ogg_opus_encoder_settings ("a ! opusenc ! b"), "");
  EXPECT_EQ (ogg_opus_encoder_settings ("zoomrtmssrc ! wavenc ! filesink"), "");
}

/* Two parts (1.0 s, the first with a live start offset, and 1.5 s) merge
 * into one audio.opus of 2.5 s by three independent readers; the parts are
 * gone and nothing else is left in the directory. Fails if a part's pre-skip
 * or end padding is counted (≈ +6.5 ms or up to +20 ms a part), if a part
 * is dropped (1.0 or 1.5 s), or if a part or the temp file remains. */
TEST (OggOpusMerge, TwoPartsBecomeOneFile)
{
  Dir d;
  EngagementDir dir (d.path, "x");
  std::vector<std::string> outputs = {"audio.opus"};
  int parts = 0;
  GError *err = nullptr;
  encode (d.file ("audio.opus"), 1.0, 440, 0.3);
  ASSERT_TRUE (dir.move_outputs_aside (outputs, &parts, &err));
  ASSERT_EQ (parts, 1);
  encode (d.file ("audio.opus"), 1.5, 660, 0.0);
  std::vector<gint64> silence;
  ASSERT_TRUE (dir.merge_parts (outputs, parts, &silence, &err,
      "audio-type=voice bitrate=32000")) << err->message;
  EXPECT_EQ (list_dir (d.path), std::vector<std::string> {"audio.opus"});
  std::string out = d.file ("audio.opus");
  double disc = discoverer_duration (out), info = opusinfo_duration (out),
      ff = ffprobe_duration (out);
  EXPECT_NEAR (disc, 2.5, 0.020) << "gst-discoverer-1.0";
  EXPECT_NEAR (info, 2.5, 0.002) << "opusinfo (RFC 7845 length: sample exact)";
  EXPECT_NEAR (ff, 2.5, 0.020) << "ffprobe duration - start_time";
  expect_discoverer_accepts (out);
}

/* Three parts and the output (one part shorter than a second, the first
 * with a start offset; an output list naming a WAV that was never written):
 * the merged length is their sum within one Opus frame. */
TEST (OggOpusMerge, ManyPartsSumExactly)
{
  Dir d;
  EngagementDir dir (d.path, "x");
  std::vector<std::string> outputs = {"audio.opus", "audio.wav"};
  int parts = 0;
  GError *err = nullptr;
  const double len[] = {0.7, 0.2, 1.1, 0.4};
  for (int i = 0; i < 4; i++) {
    if (i > 0) {
      ASSERT_TRUE (dir.move_outputs_aside (outputs, &parts, &err));
    }
    encode (d.file ("audio.opus"), len[i], 300 + 100 * i, i == 0 ? 0.25 : 0.0);
  }
  ASSERT_EQ (parts, 3);
  ASSERT_TRUE (dir.merge_parts (outputs, parts, nullptr, &err)) << err->message;
  EXPECT_EQ (list_dir (d.path), std::vector<std::string> {"audio.opus"});
  EXPECT_NEAR (ffprobe_duration (d.file ("audio.opus")), 2.4, 0.020);
  EXPECT_NEAR (opusinfo_duration (d.file ("audio.opus")), 2.4, 0.002);
  EXPECT_NEAR (discoverer_duration (d.file ("audio.opus")), 2.4, 0.020);
}

/* What a killed host leaves: a part cut mid-page (SIGKILL: no EOS page, a
 * torn last page) and an empty part (a pipeline stopped before its first
 * page). The torn part is read up to its last whole page, the empty one is
 * skipped and deleted with the others. Fails if either makes the merge
 * refuse the parts (the old behaviour for every Opus part). */
TEST (OggOpusMerge, TornAndEmptyPartsStillMerge)
{
  Dir d;
  EngagementDir dir (d.path, "x");
  std::vector<std::string> outputs = {"audio.opus"};
  int parts = 0;
  GError *err = nullptr;
  encode (d.file ("audio.opus"), 1.0, 440, 0.3);
  ASSERT_TRUE (dir.move_outputs_aside (outputs, &parts, &err));
  encode (d.file ("audio.opus"), 2.0, 550, 0.0);
  std::string whole = read_file (d.file ("audio.opus"));
  ASSERT_GT (whole.size (), 2000u);
  /* cut 1/4 of the way into the second half: whole pages of ≈ 1 s remain */
  std::string torn = whole.substr (0, whole.size () / 2 + whole.size () / 8);
  ASSERT_TRUE (g_file_set_contents (d.file ("audio.opus").c_str (), torn.data (),
      static_cast<gssize> (torn.size ()), nullptr));
  ASSERT_TRUE (dir.move_outputs_aside (outputs, &parts, &err));
  ASSERT_TRUE (g_file_set_contents (d.file ("audio.opus").c_str (), "", 0, nullptr));
  ASSERT_TRUE (dir.move_outputs_aside (outputs, &parts, &err));
  encode (d.file ("audio.opus"), 0.5, 660, 0.0);
  ASSERT_EQ (parts, 3);
  ASSERT_TRUE (dir.merge_parts (outputs, parts, nullptr, &err)) << err->message;
  EXPECT_EQ (list_dir (d.path), std::vector<std::string> {"audio.opus"});
  double info = opusinfo_duration (d.file ("audio.opus"));
  /* 1.0 + (the torn part's whole pages: 0.5 .. 1.5 s) + 0.5 */
  EXPECT_GT (info, 2.0);
  EXPECT_LT (info, 3.0);
  EXPECT_NEAR (ffprobe_duration (d.file ("audio.opus")), info, 0.020);
}

/* .ogg holding Opus merges the same way; .ogg holding Vorbis is refused:
 * the parts and the output stay untouched, the error names the output. */
TEST (OggOpusMerge, OggWithOpusMergesVorbisIsKept)
{
  Dir d;
  EngagementDir dir (d.path, "x");
  int parts = 0;
  GError *err = nullptr;
  std::vector<std::string> o1 = {"a.ogg"};
  encode (d.file ("a.ogg"), 0.5, 440, 0.0);
  ASSERT_TRUE (dir.move_outputs_aside (o1, &parts, &err));
  encode (d.file ("a.ogg"), 0.5, 440, 0.0);
  ASSERT_TRUE (dir.merge_parts (o1, parts, nullptr, &err)) << err->message;
  EXPECT_NEAR (ffprobe_duration (d.file ("a.ogg")), 1.0, 0.020);
  EXPECT_FALSE (g_file_test (d.file ("a.part1.ogg").c_str (), G_FILE_TEST_EXISTS));

  std::vector<std::string> o2 = {"v.ogg"};
  parts = 0;
  encode (d.file ("v.ogg"), 0.5, 440, 0.0, "vorbis");
  ASSERT_TRUE (dir.move_outputs_aside (o2, &parts, &err));
  encode (d.file ("v.ogg"), 0.5, 440, 0.0, "vorbis");
  std::string before = read_file (d.file ("v.ogg"));
  EXPECT_FALSE (dir.merge_parts (o2, parts, nullptr, &err));
  ASSERT_NE (err, nullptr);
  EXPECT_NE (std::string (err->message).find ("v.ogg"), std::string::npos) << err->message;
  EXPECT_NE (std::string (err->message).find ("no Opus"), std::string::npos) << err->message;
  g_clear_error (&err);
  EXPECT_TRUE (g_file_test (d.file ("v.part1.ogg").c_str (), G_FILE_TEST_EXISTS));
  EXPECT_EQ (read_file (d.file ("v.ogg")), before);
  EXPECT_FALSE (g_file_test (d.file ("v.ogg.merge.tmp").c_str (), G_FILE_TEST_EXISTS));
}

/* A part that is not Ogg at all, and a bad encoder setting: refused, the
 * parts kept. */
TEST (OggOpusMerge, BrokenPartOrSettingKeepsParts)
{
  Dir d;
  encode (d.file ("p1.opus"), 0.3, 440, 0.0);
  ASSERT_TRUE (g_file_set_contents (d.file ("p2.opus").c_str (), "not ogg at all", -1,
      nullptr));
  GError *err = nullptr;
  EXPECT_FALSE (ogg_opus_concat ({d.file ("p1.opus"), d.file ("p2.opus")},
      d.file ("o.opus"), "", 0, nullptr, &err));
  ASSERT_NE (err, nullptr);
  g_clear_error (&err);
  EXPECT_FALSE (g_file_test (d.file ("o.opus").c_str (), G_FILE_TEST_EXISTS));
  EXPECT_FALSE (g_file_test (d.file ("o.opus.merge.tmp").c_str (), G_FILE_TEST_EXISTS));
  EXPECT_FALSE (ogg_opus_concat ({d.file ("p1.opus")}, d.file ("o.opus"),
      "no-such-property=1", 0, nullptr, &err));
  ASSERT_NE (err, nullptr);
  EXPECT_NE (std::string (err->message).find ("no-such-property"), std::string::npos);
  g_clear_error (&err);
  EXPECT_TRUE (g_file_test (d.file ("p1.opus").c_str (), G_FILE_TEST_EXISTS));
}
