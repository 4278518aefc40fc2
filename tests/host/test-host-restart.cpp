/* End-to-end tests of issue 9 "Never lose a call on one host": restarts,
 * crashes, duplicated interrupted webhooks, load on the default config and
 * SIGHUP, with real zoomrtms-sim and zoomrtms-host processes on loopback;
 * recordings compared sample for sample with the sim's --dump-dir (whose
 * PCM has zeros wherever nothing was sent: the downtime). No timed
 * assertions: the figures (rejoin time, audio lost) are printed.
 */
#include "host-e2e-util.h"

#include <algorithm>
#include <cmath>

namespace {

using namespace hosttest;

class Env : public ::testing::Environment {
 public:
  void SetUp () override { gst_init (nullptr, nullptr); }
};
const auto *const env_ = ::testing::AddGlobalTestEnvironment (new Env);

gint64
file_size (const std::string &path)
{
  GStatBuf st;
  return g_stat (path.c_str (), &st) == 0 ? static_cast<gint64> (st.st_size) : -1;
}

/* The journal entries (*.json) in the state directory. */
std::vector<std::string>
journal_entries (const std::string &state_dir)
{
  std::vector<std::string> v;
  g_autoptr (GDir) d = g_dir_open (state_dir.c_str (), 0, nullptr);
  std::vector<std::string> names;
  while (const gchar *n = d ? g_dir_read_name (d) : nullptr)
    names.push_back (n);
  for (const auto &n : names)
    if (g_str_has_suffix (n.c_str (), ".json"))
      v.push_back (state_dir + "/" + n);
  return v;
}

/* Waits for sim-ready.json and returns its single stream. */
bool
one_stream (const TempDir &tmp, SimStream *out)
{
  if (!spin_until ([&] {
        return g_file_test ((tmp / "sim-ready.json").c_str (), G_FILE_TEST_EXISTS);
      }, 15000))
    return false;
  auto streams = sim_streams (tmp / "sim-ready.json");
  if (streams.size () != 1)
    return false;
  *out = streams[0];
  return true;
}

/* Per channel of a stereo recording: the samples that differ from the dump. */
struct Diff {
  gsize differ[2] = {0, 0};
  gsize expected_frames = 0, got_frames = 0;
};

Diff
diff_against_dump (const std::string &wav, const std::string &dump_dir)
{
  Diff d;
  Wav w = read_wav (wav);
  auto expected = interleave (dump_dir);
  d.expected_frames = expected.size () / 2;
  d.got_frames = w.samples.size () / 2;
  gsize n = std::max (expected.size (), w.samples.size ());
  for (gsize i = 0; i < n; i++) {
    gint16 a = i < expected.size () ? expected[i] : 0;
    gint16 b = i < w.samples.size () ? w.samples[i] : 0;
    if (a != b)
      d.differ[i % 2]++;
  }
  return d;
}

/* sent.json of the sim's dump for @stream. */
JsonDoc *
sent_json (const TempDir &tmp, const std::string &stream)
{
  return new JsonDoc (read_file (tmp / ("sim-dump/" + stream + "/sent.json")));
}

/* The sim's first gap: how long the stream had no consumer (ms). */
gint64
first_gap_ms (JsonObject *sent)
{
  if (!sent || !json_object_has_member (sent, "gaps"))
    return -1;
  JsonArray *g = json_object_get_array_member (sent, "gaps");
  if (json_array_get_length (g) == 0)
    return -1;
  JsonObject *o = json_array_get_object_element (g, 0);
  gint64 lost = json_object_get_int_member (o, "lost_at_ms");
  gint64 back = json_object_get_int_member (o, "resumed_at_ms");
  return back > 0 ? back - lost : -1;
}

/* Kills (@sig) the host mid-call, restarts it on the same port after
 * @restart_after_ms and plays the call to its end. @host_args: extra
 * arguments of both hosts (e.g. --pipeline record-all). Use with
 * ASSERT_NO_FATAL_FAILURE. */
void
restart_mid_call (const TempDir &tmp, int sig, int restart_after_ms,
    SimStream *stream, std::string *dir, std::unique_ptr<Proc> *sim_out,
    std::unique_ptr<Host> *h2_out, const std::vector<std::string> &host_args = {})
{
  auto h1 = std::make_unique<Host> (tmp, host_args);
  ASSERT_GT (h1->port (), 0) << h1->proc ().log ();
  int port = h1->port ();
  /* the interrupted webhook (signaling lost) comes 4 s after the loss, when
   * the new host listens on the same port */
  auto sim = run_sim (tmp, *h1, {"--speed", "1", "--duration", "14",
          "--interrupted-delay-ms", "4000"});
  ASSERT_TRUE (one_stream (tmp, stream));
  *dir = h1->out () + "/" + stream->engagement_id;
  /* ≈2.5 s of stereo audio in the file */
  ASSERT_TRUE (spin_until ([&] {
        return file_size (*dir + "/audio.wav") > 160000;
      }, 20000)) << h1->proc ().log ();
  h1->proc ().send_signal (sig);
  ASSERT_TRUE (h1->proc ().wait (10000));
  if (sig == SIGTERM) {
    EXPECT_EQ (h1->proc ().exit_status (), 0) << h1->proc ().log ();
    /* detached: journal entry kept, state "detached", WAV finalized */
    auto entries = journal_entries (h1->out () + "/.state");
    ASSERT_EQ (entries.size (), 1u) << h1->proc ().log ();
    JsonDoc j (read_file (entries[0]));
    ASSERT_NE (j.obj (), nullptr);
    EXPECT_STREQ (json_object_get_string_member (j.obj (), "state"), "detached");
    EXPECT_EQ (read_file (entries[0]).find (kClientSecret), std::string::npos);
    Wav w = read_wav (*dir + "/audio.wav");
    EXPECT_EQ (w.data_size, w.file_size - w.data_offset) << "WAV not finalized";
    std::unique_ptr<JsonDoc> ej (engagement_json (*dir));
    EXPECT_STREQ (json_object_get_string_member (ej->obj (), "state"), "detached");
  }
  if (restart_after_ms > 0)
    g_usleep (static_cast<gulong> (restart_after_ms) * 1000);
  std::vector<std::string> args2 = {"--port", std::to_string (port)};
  args2.insert (args2.end (), host_args.begin (), host_args.end ());
  auto h2 = std::make_unique<Host> (tmp, args2, "host2");
  ASSERT_EQ (h2->port (), port) << h2->proc ().log ();
  ASSERT_TRUE (sim->wait (60000)) << sim->log ();
  EXPECT_EQ (sim->exit_status (), 0) << sim->log ();
  ASSERT_TRUE (host_idle (*h2, 20000)) << h2->proc ().log ();
  *sim_out = std::move (sim);
  *h2_out = std::move (h2);
}

void
expect_one_file_no_leftovers (const std::string &dir, const std::string &out)
{
  for (const auto &f : list_dir (dir))
    EXPECT_EQ (f.find (".part"), std::string::npos) << "part not merged: " << f;
  /* the journal's writer thread removes the entry, unordered with the end
   * of the call that made the host idle */
  EXPECT_TRUE (spin_until ([&] { return journal_entries (out + "/.state").empty (); },
      10000));
  for (const auto &f : list_dir (out + "/.state"))
    EXPECT_FALSE (g_str_has_suffix (f.c_str (), ".plog")) << f;
}

/* A host records a call (30 s at speed 1) for ~2 s and is SIGKILLed, the
 * sim stopped: its journal entry and files are left. *@dir: the call's. */
void
record_then_kill_host (TempDir &tmp, SimStream *s, std::string *dir)
{
  Host h (tmp);
  ASSERT_GT (h.port (), 0);
  auto sim = run_sim (tmp, h, {"--speed", "1", "--duration", "30"});
  ASSERT_TRUE (one_stream (tmp, s));
  *dir = h.out () + "/" + s->engagement_id;
  ASSERT_TRUE (spin_until ([&] { return file_size (*dir + "/audio.wav") > 64000; },
      20000));
  h.proc ().send_signal (SIGKILL);
  ASSERT_TRUE (h.proc ().wait (5000));
  sim->send_signal (SIGTERM);
  sim->wait (10000);
}

} // namespace

/* SIGTERM mid-call, a new host 0.5 s later: one WAV equal to what the sim
 * sent, sample for sample, the downtime as exact silence (the dump has
 * zeros there), the call recorded to its end. On the old code SIGTERM sent
 * msg 21 (the stream ended with reason 20: the second half is missing) and
 * nothing was journaled. */
TEST (HostRestart, SigtermDetachesAndTheNextHostContinuesTheRecording)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  SimStream s;
  std::string dir;
  std::unique_ptr<Proc> sim;
  std::unique_ptr<Host> h2;
  ASSERT_NO_FATAL_FAILURE (restart_mid_call (tmp, SIGTERM, 500, &s, &dir, &sim, &h2));
  std::string dump = tmp / ("sim-dump/" + s.rtms_stream_id);
  std::unique_ptr<JsonDoc> sent (sent_json (tmp, s.rtms_stream_id));
  ASSERT_NE (sent->obj (), nullptr);
  /* the sim saw one detach (no msg 21) and one rejoin */
  EXPECT_EQ (json_object_get_int_member (sent->obj (), "signaling_handshakes"), 2);
  EXPECT_NE (json_object_get_int_member (sent->obj (), "stop_reason"), 20);
  gint64 gap = first_gap_ms (sent->obj ());
  EXPECT_GT (gap, 0);
  expect_wav_equals_dump (dir + "/audio.wav", dump);
  Diff d = diff_against_dump (dir + "/audio.wav", dump);
  g_print ("[ FIGURE ] SIGTERM + restart after 500 ms: stream without a consumer "
      "%" G_GINT64_FORMAT " ms (time to rejoin), samples differing from what was sent: "
      "customer %zu, agent %zu\n", gap, d.differ[0], d.differ[1]);
  expect_one_file_no_leftovers (dir, h2->out ());
  std::unique_ptr<JsonDoc> ej (engagement_json (dir));
  ASSERT_NE (ej->obj (), nullptr);
  EXPECT_STREQ (json_object_get_string_member (ej->obj (), "state"), "stopped");
  EXPECT_EQ (json_object_get_int_member (ej->obj (), "continuations"), 1);
  EXPECT_EQ (json_object_get_int_member (ej->obj (), "failovers"), 0);
  JsonArray *ints = json_object_get_array_member (ej->obj (), "interruptions");
  ASSERT_NE (ints, nullptr);
  bool restart = false;
  for (guint i = 0; i < json_array_get_length (ints); i++) {
    JsonObject *o = json_array_get_object_element (ints, i);
    if (g_str_equal (json_object_get_string_member (o, "cause"), "host-restart")) {
      restart = true;
      EXPECT_TRUE (json_object_get_boolean_member (o, "recovered"));
      EXPECT_GT (json_object_get_int_member (o, "silence_ms"), 0);
      EXPECT_GE (json_object_get_int_member (o, "end"),
          json_object_get_int_member (o, "start"));
    }
  }
  EXPECT_TRUE (restart) << read_file (dir + "/engagement.json");
  EXPECT_NE (read_file (dir + "/events.jsonl").find ("\"cause\":\"host-restart\""),
      std::string::npos);
  /* the interrupted webhook with the same server_urls was no failover */
  EXPECT_NE (read_file (dir + "/events.jsonl").find ("interrupted-webhook"),
      std::string::npos) << h2->proc ().log ();
  expect_clean_exit (h2->proc ());
  std::string summary;
  ASSERT_EQ (run_tool ({host_bin (), "--summary", h2->out ()}, &summary), 0);
  EXPECT_NE (summary.find ("interruption: host-restart"), std::string::npos) << summary;
  EXPECT_EQ (summary.find (".state"), std::string::npos) << summary;
}

/* record-all (WAV + Ogg/Opus) with SIGTERM mid-call and a new host 0.5 s
 * later: the WAV is exact as above, and the Ogg/Opus parts are merged too
 * (decoded and encoded again): one audio.opus, no part, as long as the WAV
 * (the call, downtime included) ± 0.1 s by ffprobe (duration − start_time)
 * and opusinfo, accepted by gst-discoverer-1.0. On the old code the Opus
 * parts were kept and engagement.json said "parts not merged". */
TEST (HostRestart, SigtermRecordAllMergesTheOpusPartsToo)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  SimStream s;
  std::string dir;
  std::unique_ptr<Proc> sim;
  std::unique_ptr<Host> h2;
  ASSERT_NO_FATAL_FAILURE (restart_mid_call (tmp, SIGTERM, 500, &s, &dir, &sim, &h2,
      {"--pipeline", "record-all"}));
  std::string dump = tmp / ("sim-dump/" + s.rtms_stream_id);
  expect_wav_equals_dump (dir + "/audio.wav", dump);
  expect_one_file_no_leftovers (dir, h2->out ());
  std::vector<std::string> files = list_dir (dir);
  EXPECT_NE (std::find (files.begin (), files.end (), "audio.opus"), files.end ());
  for (const auto &f : files)
    EXPECT_FALSE (g_str_has_suffix (f.c_str (), ".tmp")) << f;
  Wav w = read_wav (dir + "/audio.wav");
  ASSERT_GT (w.rate, 0);
  double call_s = static_cast<double> (w.samples.size () / 2) / w.rate;
  double ff = ffprobe_duration (dir + "/audio.opus");
  std::string info;
  EXPECT_EQ (run_tool ({"opusinfo", dir + "/audio.opus"}, &info), 0) << info;
  EXPECT_EQ (info.find ("WARNING"), std::string::npos) << info;
  gsize at = info.find ("Playback length: ");
  int m = -1;
  double sec = 0;
  ASSERT_NE (at, std::string::npos) << info;
  ASSERT_EQ (sscanf (info.c_str () + at + 17, "%dm:%lfs", &m, &sec), 2) << info;
  g_print ("[ FIGURE ] record-all SIGTERM + restart: WAV %.3f s, merged Opus %.3f s "
      "(ffprobe duration - start_time), %.3f s (opusinfo)\n", call_s, ff, m * 60 + sec);
  EXPECT_NEAR (ff, call_s, 0.1);
  EXPECT_NEAR (m * 60 + sec, call_s, 0.1);
  expect_discoverer_accepts (dir + "/audio.opus");
  std::string ej = read_file (dir + "/engagement.json");
  EXPECT_EQ (ej.find ("not merged"), std::string::npos) << ej;
  EXPECT_EQ (ej.find ("parts kept"), std::string::npos) << ej;
  expect_clean_exit (h2->proc ());
}

/* SIGKILL mid-call, a new host at once (well within 5 s): the packet log
 * replays what the killed pipeline held (align-hold 5 s, sinks), so at
 * most 1 s of audio per channel is lost. On the old code the restarted host
 * only repaired the files: the rest of the call was lost. */
TEST (HostRestart, SigkillLosesAtMostOneSecondPerChannel)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  SimStream s;
  std::string dir;
  std::unique_ptr<Proc> sim;
  std::unique_ptr<Host> h2;
  ASSERT_NO_FATAL_FAILURE (restart_mid_call (tmp, SIGKILL, 0, &s, &dir, &sim, &h2));
  std::string dump = tmp / ("sim-dump/" + s.rtms_stream_id);
  std::unique_ptr<JsonDoc> sent (sent_json (tmp, s.rtms_stream_id));
  gint64 gap = first_gap_ms (sent->obj ());
  Diff d = diff_against_dump (dir + "/audio.wav", dump);
  double lost_ms[2] = {d.differ[0] / 16.0, d.differ[1] / 16.0};
  g_print ("[ FIGURE ] SIGKILL + immediate restart: stream without a consumer "
      "%" G_GINT64_FORMAT " ms (time to rejoin); audio lost (samples differing from "
      "what was sent / 16 kHz): customer %.1f ms, agent %.1f ms; frames "
      "%zu recorded / %zu sent\n", gap, lost_ms[0], lost_ms[1], d.got_frames,
      d.expected_frames);
  EXPECT_EQ (d.got_frames, d.expected_frames) << "the call was not recorded to its end";
  EXPECT_LE (lost_ms[0], 1000.0);
  EXPECT_LE (lost_ms[1], 1000.0);
  Wav w = read_wav (dir + "/audio.wav");
  EXPECT_EQ (w.data_size, w.file_size - w.data_offset);
  expect_discoverer_accepts (dir + "/audio.wav");
  expect_one_file_no_leftovers (dir, h2->out ());
  std::unique_ptr<JsonDoc> ej (engagement_json (dir));
  ASSERT_NE (ej->obj (), nullptr);
  EXPECT_STREQ (json_object_get_string_member (ej->obj (), "state"), "stopped");
  EXPECT_NE (read_file (dir + "/engagement.json").find ("\"cause\" : \"host-crash\""),
      std::string::npos) << read_file (dir + "/engagement.json");
  expect_clean_exit (h2->proc ());
}

/* A journal entry older than the rejoin window is not rejoined: the files
 * are finalized ("recovered"), the interruption recorded as lost, and the
 * stopped webhook with reason 19 lands in its engagement.json (on the old
 * code: "unknown stream", nothing recorded). */
TEST (HostRestart, OutsideTheWindowRecoveredAndReason19Recorded)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  SimStream s;
  std::string dir;
  ASSERT_NO_FATAL_FAILURE (record_then_kill_host (tmp, &s, &dir));
  /* rejoin-window-s=0: every entry is outside it */
  g_file_set_contents ((tmp / "w0.conf").c_str (), "[host]\nrejoin-window-s=0\n", -1,
      nullptr);
  Host h2 (tmp, {"--config", tmp / "w0.conf"}, "host2");
  ASSERT_GT (h2.port (), 0) << h2.proc ().log ();
  std::unique_ptr<JsonDoc> ej (engagement_json (dir));
  ASSERT_NE (ej->obj (), nullptr);
  EXPECT_STREQ (json_object_get_string_member (ej->obj (), "state"), "recovered");
  std::string ejt = read_file (dir + "/engagement.json");
  EXPECT_NE (ejt.find ("\"cause\" : \"host-crash\""), std::string::npos) << ejt;
  EXPECT_NE (ejt.find ("\"recovered\" : false"), std::string::npos) << ejt;
  EXPECT_TRUE (journal_entries (h2.out () + "/.state").empty ());
  Wav w = read_wav (dir + "/audio.wav");
  EXPECT_EQ (w.data_size, w.file_size - w.data_offset);
  std::string stop = "{\"event\":\"contact_center.voice_rtms_stopped\",\"event_ts\":" +
      std::to_string (g_get_real_time () / 1000) + ",\"payload\":{\"engagement_id\":\"" +
      s.engagement_id + "\",\"rtms_stream_id\":\"" + s.rtms_stream_id +
      "\",\"stop_reason\":19}}";
  EXPECT_EQ (post_webhook (h2, stop).status, 200u);
  ASSERT_TRUE (spin_until ([&] {
        return read_file (dir + "/engagement.json").find ("AWAIT_RECONNECTION_TIMEOUT") !=
            std::string::npos;
      }, 5000)) << read_file (dir + "/engagement.json");
  EXPECT_EQ (h2.proc ().log ().find ("unknown stream"), std::string::npos);
  expect_clean_exit (h2.proc ());
}

/* A journal entry whose engagement had ended (its engagement.json final:
 * the host died after writing the end and before its journal writer removed
 * the entry) is removed at start: never rejoined, its audio untouched (on
 * the old code the next host rejoined the ended stream and rewrote its
 * files), its after-call actions run. */
TEST (HostRestart, EntryOfAnEndedEngagementIsNotRejoined)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  SimStream s;
  std::string dir;
  ASSERT_NO_FATAL_FAILURE (record_then_kill_host (tmp, &s, &dir));
  ASSERT_EQ (journal_entries (tmp / "out/.state").size (), 1u);
  /* the end as the killed host would have written it */
  std::string ejt = read_file (dir + "/engagement.json");
  size_t at = ejt.find ("\"state\" : \"running\"");
  ASSERT_NE (at, std::string::npos) << ejt;
  ejt.replace (at, strlen ("\"state\" : \"running\""), "\"state\" : \"stopped\"");
  ASSERT_TRUE (g_file_set_contents ((dir + "/engagement.json").c_str (), ejt.data (),
      static_cast<gssize> (ejt.size ()), nullptr));
  std::string wav = read_file (dir + "/audio.wav");
  /* it died before the after-call actions were queued: they run now */
  std::string manifest = tmp / "manifest.json";
  std::string conf = "[actions]\nexec=/bin/sh -c 'cat > " + manifest + "'\n";
  g_file_set_contents ((tmp / "hook.conf").c_str (), conf.c_str (), -1, nullptr);
  Host h2 (tmp, {"--config", tmp / "hook.conf"}, "host2");
  ASSERT_GT (h2.port (), 0) << h2.proc ().log ();
  EXPECT_TRUE (journal_entries (h2.out () + "/.state").empty ());
  EXPECT_NE (h2.proc ().log ().find ("had ended; its entry is removed"), std::string::npos)
      << h2.proc ().log ();
  EXPECT_TRUE (spin_until ([&] {
        return read_file (manifest).find (s.engagement_id) != std::string::npos;
      }, 20000)) << h2.proc ().log ();
  std::unique_ptr<JsonDoc> ej (engagement_json (dir));
  ASSERT_NE (ej->obj (), nullptr);
  EXPECT_STREQ (json_object_get_string_member (ej->obj (), "state"), "stopped");
  EXPECT_TRUE (read_file (dir + "/audio.wav") == wav);
  expect_clean_exit (h2.proc ());
}

/* A rejoin whose pipeline cannot be set to PLAYING (here its file sink
 * cannot open its file) finishes by itself: the earlier parts merged once
 * into the output, the host's downtime recorded as lost, the journal entry
 * removed (on the old code the daemon merged the same parts a second time,
 * on another thread, and the downtime read "recovered"). */
TEST (HostRestart, RejoinFailingAtPlayingFinishesOnce)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  SimStream s;
  std::string dir;
  ASSERT_NO_FATAL_FAILURE (record_then_kill_host (tmp, &s, &dir));
  std::string wav = read_file (dir + "/audio.wav");
  ASSERT_GT (wav.size (), 64000u);
  /* the same template name, a sink that fails in READY -> PAUSED */
  ASSERT_EQ (g_mkdir_with_parents ((tmp / "pipes").c_str (), 0700), 0);
  std::string text = "zoomrtmssrc name=src layout=auto align-hold=5000 block-ms=100 ! "
      "tee name=t t. ! queue ! wavenc ! filesink location=${OUTPUT_DIR}/audio.wav "
      "t. ! queue ! filesink location=${OUTPUT_DIR}/no/such/dir/audio.raw\n";
  ASSERT_TRUE (g_file_set_contents ((tmp / "pipes/record-wav.pipeline").c_str (),
      text.c_str (), -1, nullptr));
  Host h2 (tmp, {"--pipeline-dir", tmp / "pipes"}, "host2");
  ASSERT_GT (h2.port (), 0) << h2.proc ().log ();
  ASSERT_TRUE (spin_until ([&] {
        std::unique_ptr<JsonDoc> j (engagement_json (dir));
        return j->obj () && g_str_equal (json_object_get_string_member_with_default (
            j->obj (), "state", ""), "failed") &&
            journal_entries (h2.out () + "/.state").empty ();
      }, 20000)) << h2.proc ().log () << read_file (dir + "/engagement.json");
  EXPECT_NE (h2.proc ().log ().find ("could not be rejoined"), std::string::npos)
      << h2.proc ().log ();
  /* one merge: the output is the part, and no part is left */
  ASSERT_TRUE (spin_until ([&] { return !g_file_test ((dir + "/audio.part1.wav").c_str (),
      G_FILE_TEST_EXISTS); }, 20000));
  Wav w = read_wav (dir + "/audio.wav");
  EXPECT_EQ (w.data_size, w.file_size - w.data_offset);
  EXPECT_GE (w.data_size + 44, wav.size () - 44);
  std::string ejt = read_file (dir + "/engagement.json");
  EXPECT_NE (ejt.find ("\"cause\" : \"host-crash\""), std::string::npos) << ejt;
  EXPECT_NE (ejt.find ("\"recovered\" : false"), std::string::npos) << ejt;
  EXPECT_EQ (ejt.find ("\"recovered\" : true"), std::string::npos) << ejt;
  /* finalized once, by the Engagement: no "not rejoined" finalization */
  std::string events = read_file (dir + "/events.jsonl");
  EXPECT_NE (events.find ("could not be set to PLAYING"), std::string::npos) << events;
  EXPECT_EQ (events.find ("not rejoined"), std::string::npos) << events;
  expect_clean_exit (h2.proc ());
}

/* docs/protocol.md §2.7: a stopped webhook with stop reason 8 for a call
 * that ended before this host process started is still a revocation: the
 * call is found on disk by its id and erased (on the old code: "unknown
 * stream: nothing to do", the recording kept). */
TEST (HostRestart, RevocationAfterARestartErasesTheEndedCall)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  std::vector<SimStream> streams;
  std::string dir;
  {
    Host h (tmp);
    ASSERT_GT (h.port (), 0);
    ASSERT_NO_FATAL_FAILURE (play_calls (tmp, h, {"--speed", "0", "--duration", "3"}, 1,
        &streams));
    dir = h.out () + "/" + streams[0].engagement_id;
    ASSERT_GT (file_size (dir + "/audio.wav"), 44);
    expect_clean_exit (h.proc ());
  }
  Host h2 (tmp, {}, "host2");
  ASSERT_GT (h2.port (), 0) << h2.proc ().log ();
  auto stop = [&] (const std::string &rtms_stream_id) {
    return "{\"event\":\"contact_center.voice_rtms_stopped\",\"event_ts\":" +
        std::to_string (g_get_real_time () / 1000) + ",\"payload\":{\"engagement_id\":\"" +
        streams[0].engagement_id + "\",\"rtms_stream_id\":\"" + rtms_stream_id +
        "\",\"stop_reason\":8}}";
  };
  /* another stream of the same id: nothing erased */
  EXPECT_EQ (post_webhook (h2, stop ("0123456789abcdef0123456789abcdef")).status, 200u);
  ASSERT_TRUE (spin_until ([&] {
        return h2.proc ().log ().find ("for an unknown stream") != std::string::npos;
      }, 10000)) << h2.proc ().log ();
  EXPECT_GT (file_size (dir + "/audio.wav"), 44);
  EXPECT_EQ (post_webhook (h2, stop (streams[0].rtms_stream_id)).status, 200u);
  ASSERT_TRUE (spin_until ([&] {
        std::unique_ptr<JsonDoc> j (engagement_json (dir));
        return j->obj () && g_str_equal (json_object_get_string_member_with_default (
            j->obj (), "state", ""), "revoked") &&
            read_file (dir + "/engagement.json").find ("\"completed\" : \"") !=
            std::string::npos;
      }, 20000)) << h2.proc ().log () << read_file (dir + "/engagement.json");
  EXPECT_FALSE (g_file_test ((dir + "/audio.wav").c_str (), G_FILE_TEST_EXISTS));
  std::string ejt = read_file (dir + "/engagement.json");
  EXPECT_NE (ejt.find ("STREAM_REVOKED"), std::string::npos) << ejt;
  expect_clean_exit (h2.proc ());
}

/* docs/protocol.md §2.6, §4.9: duplicated and late interrupted webhooks
 * carrying the server_urls in use are handled once per event_ts and never
 * start a failover (on the old code each copy was a failover: the healthy
 * connection torn down, "failovers" counting them). */
TEST (HostWebhooks, DuplicatedInterruptedWithSameUrlsNoFailover)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  Host h (tmp);
  ASSERT_GT (h.port (), 0);
  Proc serve ({sim_bin (), "serve", "--speed", "1", "--duration", "4", "--dump-dir",
          tmp / "sim-dump", "--ready-file", tmp / "serve-ready.json"}, tmp.path,
      tmp / "serve.log", cred_env ());
  ASSERT_TRUE (spin_until ([&] {
        return g_file_test ((tmp / "serve-ready.json").c_str (), G_FILE_TEST_EXISTS);
      }, 15000));
  auto streams = sim_streams (tmp / "serve-ready.json");
  ASSERT_EQ (streams.size (), 1u);
  const SimStream &s = streams[0];
  std::string dir = h.out () + "/" + s.engagement_id;
  ASSERT_EQ (post_webhook (h, s.webhook).status, 200u);
  ASSERT_TRUE (spin_until ([&] { return file_size (dir + "/audio.wav") > 44; }, 10000));
  JsonDoc wh (s.webhook);
  gint64 ts = json_object_get_int_member (wh.obj (), "event_ts");
  auto interrupted = [&] (gint64 t) {
    return "{\"event\":\"contact_center.voice_rtms_interrupted\",\"event_ts\":" +
        std::to_string (t) + ",\"payload\":{\"engagement_id\":\"" + s.engagement_id +
        "\",\"rtms_stream_id\":\"" + s.rtms_stream_id + "\",\"server_urls\":\"" +
        s.server_urls + "\"}}";
  };
  for (int i = 0; i < 5; i++)
    EXPECT_EQ (post_webhook (h, interrupted (ts + 1000)).status, 200u);
  /* a second interruption (newer event_ts), delivered twice, late */
  EXPECT_EQ (post_webhook (h, interrupted (ts + 2000)).status, 200u);
  EXPECT_EQ (post_webhook (h, interrupted (ts + 2000)).status, 200u);
  /* and a start with the same URLs and a newer event_ts: a duplicate */
  json_object_set_int_member (wh.obj (), "event_ts", ts + 3000);
  g_autofree gchar *newer = json_to_string (wh.node, FALSE);
  EXPECT_EQ (post_webhook (h, newer).status, 200u);
  ASSERT_TRUE (serve.wait (60000)) << serve.log ();
  EXPECT_EQ (serve.exit_status (), 0) << serve.log ();
  ASSERT_TRUE (host_idle (h, 15000));
  std::unique_ptr<JsonDoc> ej (engagement_json (dir));
  ASSERT_NE (ej->obj (), nullptr);
  EXPECT_EQ (json_object_get_int_member (ej->obj (), "failovers"), 0);
  /* each interruption handled once */
  std::string ev = read_file (dir + "/events.jsonl");
  int n = 0;
  for (gsize p = 0; (p = ev.find ("\"type\":\"interrupted-webhook\"", p)) !=
      std::string::npos; p++)
    n++;
  EXPECT_EQ (n, 2) << ev;
  EXPECT_EQ (ev.find ("\"type\":\"failover\""), std::string::npos) << ev;
  /* the connection was never torn down: one handshake, every sample */
  std::unique_ptr<JsonDoc> sent (sent_json (tmp, s.rtms_stream_id));
  ASSERT_NE (sent->obj (), nullptr);
  EXPECT_EQ (json_object_get_int_member (sent->obj (), "signaling_handshakes"), 1);
  expect_wav_equals_dump (dir + "/audio.wav", tmp / ("sim-dump/" + s.rtms_stream_id));
  expect_clean_exit (h.proc ());
}

/* design.md "Never refuse a call": 300 engagements at once on the default
 * configuration, none refused (the old default max-engagements=64 answered
 * 236 of them 503: the sim's run then fails). */
TEST (HostLoad, ThreeHundredEngagementsOnTheDefaultConfigNoneRefused)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  Host h (tmp, {}, "host", {}, 8192);
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  auto sim = run_sim (tmp, h, {"--engagements", "300", "--speed", "1", "--duration", "2",
          "--connect-timeout", "60"});
  ASSERT_TRUE (sim->wait (240000)) << sim->log ();
  EXPECT_EQ (sim->exit_status (), 0) << sim->log ();
  ASSERT_TRUE (host_idle (h, 60000));
  Resp r = http ("GET", h.url ("/health"));
  JsonDoc d (r.body);
  ASSERT_NE (d.obj (), nullptr) << r.body;
  EXPECT_STREQ (json_object_get_string_member (d.obj (), "status"), "ok");
  EXPECT_EQ (json_object_get_int_member (d.obj (), "refusedEngagements"), 0);
  auto dirs = list_dir (h.out ());
  int recorded = 0;
  for (const auto &n : dirs)
    if (file_size (h.out () + "/" + n + "/audio.wav") > 44)
      recorded++;
  EXPECT_EQ (recorded, 300);
  EXPECT_EQ (h.proc ().log ().find ("REFUSED"), std::string::npos);
  expect_clean_exit (h.proc ());
}

/* An operator's max-engagements: the refusal is an error in the log, a
 * counter and /health "degraded" — never silent. */
TEST (HostLoad, OperatorLimitRefusalIsLoudAndDegradesHealth)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  g_file_set_contents ((tmp / "one.conf").c_str (), "[limits]\nmax-engagements=1\n", -1,
      nullptr);
  Host h (tmp, {"--config", tmp / "one.conf"});
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  Proc serve ({sim_bin (), "serve", "--speed", "1", "--duration", "2", "--engagements", "2",
          "--connect-timeout", "5", "--ready-file", tmp / "serve-ready.json"}, tmp.path,
      tmp / "serve.log", cred_env ());
  ASSERT_TRUE (spin_until ([&] {
        return g_file_test ((tmp / "serve-ready.json").c_str (), G_FILE_TEST_EXISTS);
      }, 15000));
  auto streams = sim_streams (tmp / "serve-ready.json");
  ASSERT_EQ (streams.size (), 2u);
  EXPECT_EQ (post_webhook (h, streams[0].webhook).status, 200u);
  EXPECT_EQ (post_webhook (h, streams[1].webhook).status, 503u);
  Resp r = http ("GET", h.url ("/health"));
  JsonDoc d (r.body);
  ASSERT_NE (d.obj (), nullptr);
  EXPECT_STREQ (json_object_get_string_member (d.obj (), "status"), "degraded");
  EXPECT_EQ (json_object_get_int_member (d.obj (), "refusedEngagements"), 1);
  EXPECT_NE (h.proc ().log ().find ("REFUSED (503)"), std::string::npos);
  serve.send_signal (SIGTERM);
  serve.wait (10000);
  expect_clean_exit (h.proc ());
}

/* SIGHUP: a broken pipeline file is reported and the old set kept, the live
 * call is untouched (its WAV equals what the sim sent); a good set is then
 * used by the next engagement. On the old code SIGHUP's default action
 * killed the host. */
TEST (HostReload, SighupBrokenPipelineKeepsOldSetLiveCallUnaffected)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  std::string pl = tmp / "pipelines";
  g_mkdir (pl.c_str (), 0755);
  std::string wav_text = read_file (source_path ("pipelines/record-wav.pipeline"));
  ASSERT_FALSE (wav_text.empty ());
  g_file_set_contents ((pl + "/record-wav.pipeline").c_str (), wav_text.c_str (), -1,
      nullptr);
  g_file_set_contents ((tmp / "hup.conf").c_str (),
      "[recording]\ndefault-pipeline=record-wav\n", -1, nullptr);
  Host h (tmp, {"--pipeline-dir", pl, "--config", tmp / "hup.conf"});
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  Proc serve ({sim_bin (), "serve", "--speed", "1", "--duration", "5", "--engagements",
          "2", "--dump-dir", tmp / "sim-dump", "--ready-file", tmp / "serve-ready.json"},
      tmp.path, tmp / "serve.log", cred_env ());
  ASSERT_TRUE (spin_until ([&] {
        return g_file_test ((tmp / "serve-ready.json").c_str (), G_FILE_TEST_EXISTS);
      }, 15000));
  auto streams = sim_streams (tmp / "serve-ready.json");
  ASSERT_EQ (streams.size (), 2u);
  ASSERT_EQ (post_webhook (h, streams[0].webhook).status, 200u);
  std::string dir0 = h.out () + "/" + streams[0].engagement_id;
  ASSERT_TRUE (spin_until ([&] { return file_size (dir0 + "/audio.wav") > 44; }, 10000));
  /* a broken file appears: reported, old set kept */
  g_file_set_contents ((pl + "/broken.pipeline").c_str (),
      "zoomrtmssrc name=src ! no-such-element-zz ! fakesink\n", -1, nullptr);
  h.proc ().send_signal (SIGHUP);
  ASSERT_TRUE (spin_until ([&] {
        Resp r = http ("GET", h.url ("/health"));
        JsonDoc d (r.body);
        return d.obj () && json_object_get_int_member (d.obj (), "reloadFailures") == 1;
      }, 10000)) << h.proc ().log ();
  EXPECT_NE (h.proc ().log ().find ("broken.pipeline"), std::string::npos);
  EXPECT_FALSE (h.proc ().exited ());
  /* fixed: a new pipeline as the default, used by the next engagement */
  g_remove ((pl + "/broken.pipeline").c_str ());
  g_file_set_contents ((pl + "/record-wav2.pipeline").c_str (), wav_text.c_str (), -1,
      nullptr);
  g_file_set_contents ((tmp / "hup.conf").c_str (),
      "[recording]\ndefault-pipeline=record-wav2\n", -1, nullptr);
  h.proc ().send_signal (SIGHUP);
  ASSERT_TRUE (spin_until ([&] {
        Resp r = http ("GET", h.url ("/health"));
        JsonDoc d (r.body);
        return d.obj () && json_object_get_int_member (d.obj (), "reloads") == 1;
      }, 10000)) << h.proc ().log ();
  ASSERT_EQ (post_webhook (h, streams[1].webhook).status, 200u);
  ASSERT_TRUE (serve.wait (60000)) << serve.log ();
  EXPECT_EQ (serve.exit_status (), 0) << serve.log ();
  ASSERT_TRUE (host_idle (h, 15000));
  /* the live call went on untouched */
  expect_wav_equals_dump (dir0 + "/audio.wav",
      tmp / ("sim-dump/" + streams[0].rtms_stream_id));
  std::string dir1 = h.out () + "/" + streams[1].engagement_id;
  EXPECT_GT (file_size (dir1 + "/audio.wav"), 44);
  std::unique_ptr<JsonDoc> e0 (engagement_json (dir0)), e1 (engagement_json (dir1));
  ASSERT_NE (e0->obj (), nullptr);
  ASSERT_NE (e1->obj (), nullptr);
  EXPECT_STREQ (json_object_get_string_member (e0->obj (), "pipeline"), "record-wav");
  EXPECT_STREQ (json_object_get_string_member (e1->obj (), "pipeline"), "record-wav2");
  expect_clean_exit (h.proc ());
}

/* A 25 s media outage (inside Zoom's 30 s media grace, docs/protocol.md
 * §4.9 row 3): the element reconnects by itself, the call is recorded to its
 * end in one file, and engagement.json / events.jsonl record the
 * interruption (cause "media", recovered) from the element's
 * zoomrtms/interruption messages (on the old code nothing was recorded). */
TEST (HostRestart, MediaOutageRecordedAsInterruption)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  Host h (tmp);
  ASSERT_GT (h.port (), 0);
  std::vector<SimStream> streams;
  ASSERT_NO_FATAL_FAILURE (play_calls (tmp, h, {"--speed", "1", "--duration", "30",
          "--outage", "media:2000+25000"}, 1, &streams));
  std::string dir = h.out () + "/" + streams[0].engagement_id;
  std::string dump = tmp / ("sim-dump/" + streams[0].rtms_stream_id);
  Diff d = diff_against_dump (dir + "/audio.wav", dump);
  g_print ("[ FIGURE ] 25 s media outage: frames %zu recorded / %zu in the dump, "
      "samples differing: customer %zu, agent %zu\n", d.got_frames, d.expected_frames,
      d.differ[0], d.differ[1]);
  EXPECT_EQ (d.got_frames, d.expected_frames);
  EXPECT_LE (d.differ[0], 16000u);
  EXPECT_LE (d.differ[1], 16000u);
  std::unique_ptr<JsonDoc> ej (engagement_json (dir));
  ASSERT_NE (ej->obj (), nullptr);
  JsonArray *ints = json_object_get_array_member (ej->obj (), "interruptions");
  ASSERT_NE (ints, nullptr);
  bool media = false;
  for (guint i = 0; i < json_array_get_length (ints); i++) {
    JsonObject *o = json_array_get_object_element (ints, i);
    if (g_str_equal (json_object_get_string_member (o, "cause"), "media")) {
      media = true;
      EXPECT_TRUE (json_object_get_boolean_member (o, "recovered"));
      EXPECT_GT (json_object_get_int_member (o, "end"),
          json_object_get_int_member (o, "start"));
    }
  }
  EXPECT_TRUE (media) << read_file (dir + "/engagement.json");
  EXPECT_NE (read_file (dir + "/events.jsonl").find ("\"type\":\"interruption\""),
      std::string::npos);
  expect_clean_exit (h.proc ());
}
