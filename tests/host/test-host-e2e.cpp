/* End-to-end tests of zoomrtms-host with real processes on loopback:
 * zoomrtms-sim → zoomrtms-host → files, checked sample for sample against the
 * PCM the sim dumped, and with independent tools (soxi, opusinfo, ffprobe,
 * a GStreamer RTP receiver). Issue 4 "Tests".
 */
#include "rtms-auth.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <gtest/gtest.h>

#include <map>

#include <csignal>
#include <cstring>
#include <functional>
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


} // namespace

/* ---- start-up errors ---- */

TEST (HostStartup, MissingSecretsExit2WithoutPrintingValues)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  Proc p ({host_bin (), "--port", "0", "--output-root", tmp / "out"}, tmp.path,
      tmp / "h.log", {{"ZOOM_APP_CLIENT_ID", "visible_client_id"},
          {"ZOOM_APP_CLIENT_SECRET", "hidden_client_secret"}, {"ZOOM_SECRET_TOKEN", ""}});
  ASSERT_TRUE (p.wait (10000));
  EXPECT_EQ (p.exit_status (), 2);
  std::string log = p.log ();
  EXPECT_NE (log.find ("ZOOM_SECRET_TOKEN"), std::string::npos) << log;
  EXPECT_EQ (log.find ("hidden_client_secret"), std::string::npos) << log;
  EXPECT_EQ (log.find ("visible_client_id"), std::string::npos) << log;
}

TEST (HostStartup, DotenvSuppliesSecrets)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  std::string dotenv = std::string ("ZOOM_APP_CLIENT_ID=") + kClientId +
      "\nZOOM_APP_CLIENT_SECRET=" + kClientSecret + "\nZOOM_SECRET_TOKEN=" + kSecretToken + "\n";
  ASSERT_TRUE (g_file_set_contents ((tmp / ".env").c_str (), dotenv.c_str (), -1, nullptr));
  Proc p ({host_bin (), "--port", "0", "--output-root", tmp / "out", "--pipeline-dir",
          source_path ("pipelines"), "--ready-file", tmp / "ready.json"}, tmp.path,
      tmp / "h.log", {{"ZOOM_APP_CLIENT_ID", ""}, {"ZOOM_APP_CLIENT_SECRET", ""},
          {"ZOOM_SECRET_TOKEN", ""}, {"PORT", ""}});
  ASSERT_TRUE (spin_until ([&] {
        return p.exited () || g_file_test ((tmp / "ready.json").c_str (), G_FILE_TEST_EXISTS);
      }, 15000));
  EXPECT_FALSE (p.exited ()) << p.log ();
  p.send_signal (SIGTERM);
  ASSERT_TRUE (p.wait (10000));
  EXPECT_EQ (p.exit_status (), 0);
  EXPECT_EQ (p.log ().find (kClientSecret), std::string::npos);
}

TEST (HostStartup, BrokenTemplateRefused)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  g_mkdir (tmp.operator/ ("pipes").c_str (), 0700);
  g_file_set_contents ((tmp / "pipes/record-wav.pipeline").c_str (),
      "zoomrtmssrc name=src ! wavenc ! filesink location=${OUTPUT_DIR}/a.wav\n", -1, nullptr);
  g_file_set_contents ((tmp / "pipes/broken.pipeline").c_str (),
      "# a typo\nzoomrtmssrc name=src ! wavenc ! filesinc location=x\n", -1, nullptr);
  Proc p ({host_bin (), "--port", "0", "--output-root", tmp / "out", "--pipeline-dir",
          tmp / "pipes"}, tmp.path, tmp / "h.log", cred_env ());
  ASSERT_TRUE (p.wait (10000));
  EXPECT_EQ (p.exit_status (), 2);   /* configuration error */
  std::string log = p.log ();
  EXPECT_NE (log.find ("broken.pipeline"), std::string::npos) << log;
  EXPECT_NE (log.find ("filesinc"), std::string::npos) << log;
}

/* ---- webhook endpoint ---- */

TEST (HostWebhooks, ValidationSignaturesAndLimits)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  Host h (tmp);
  ASSERT_GT (h.port (), 0) << h.proc ().log ();

  /* url_validation: docs/protocol.md §9.3 vector 2, on both paths */
  std::string val = "{\"event\":\"endpoint.url_validation\",\"event_ts\":1654503849680,"
      "\"payload\":{\"plainToken\":\"qgg8vlvZRS6UYooatFL8Aw\"}}";
  for (const char *path : {"/webhook", "/api/webhooks/zoom"}) {
    Resp r = post_webhook (h, val, 0, kSecretToken, path);
    EXPECT_EQ (r.status, 200u) << path;
    JsonDoc d (r.body);
    ASSERT_NE (d.obj (), nullptr) << r.body;
    EXPECT_STREQ (json_object_get_string_member (d.obj (), "encryptedToken"),
        "4efea922935c335d972476de138d2208a0d46ab28c79ee592d497a1b216419b8");
    EXPECT_STREQ (json_object_get_string_member (d.obj (), "plainToken"),
        "qgg8vlvZRS6UYooatFL8Aw");
  }
  /* never answered without a valid signature: a signing oracle (§2.4;
   * test-host-hostile.cpp HostHostile.UrlValidationIsNoSigningOracle) */
  Resp rv = post_webhook (h, val, 0, "wrong_token");
  EXPECT_EQ (rv.status, 401u);
  EXPECT_EQ (rv.body.find ("4efea922935c"), std::string::npos);

  /* the sim's own validator agrees */
  Proc v ({sim_bin (), "validate", "--webhook-url", h.url ("/webhook")}, tmp.path,
      tmp / "validate.log", cred_env ());
  ASSERT_TRUE (v.wait (15000));
  EXPECT_EQ (v.exit_status (), 0) << v.log ();

  std::string start = "{\"event\":\"contact_center.voice_rtms_started\",\"event_ts\":1738392033000,"
      "\"payload\":{\"engagement_id\":\"E401\",\"rtms_stream_id\":\"s401\","
      "\"server_urls\":\"ws://127.0.0.1:9/signaling\"}}";
  Resp bad = post_webhook (h, start, 0, "wrong_token");
  EXPECT_EQ (bad.status, 401u);
  EXPECT_EQ (bad.body, "{\"error\":\"Invalid webhook signature\"}");
  Resp nosig = http ("POST", h.url ("/webhook"), start);
  EXPECT_EQ (nosig.status, 401u);
  Resp stale = post_webhook (h, start, g_get_real_time () / G_USEC_PER_SEC - 3600);
  EXPECT_EQ (stale.status, 401u);
  /* the sim's fault flags give the same answers */
  for (const char *flag : {"--bad-signature", "--stale"}) {
    Proc w ({sim_bin (), "webhook", "--webhook-url", h.url ("/webhook"), "--event",
            "started", "--engagement-id", "E401b", "--rtms-stream-id", "s401b",
            "--server-urls", "ws://127.0.0.1:9/signaling", flag}, tmp.path,
        tmp / "webhook.log", cred_env ());
    ASSERT_TRUE (w.wait (15000));
    EXPECT_NE (w.exit_status (), 0) << flag;
    EXPECT_NE (w.log ().find ("401"), std::string::npos) << flag << ": " << w.log ();
  }

  Resp malformed = post_webhook (h, "{\"event\":\"contact_center.voice_rtms_started\",");
  EXPECT_EQ (malformed.status, 400u);
  Resp not_object = post_webhook (h, "[1,2,3]");
  EXPECT_EQ (not_object.status, 400u);
  Resp no_stream = post_webhook (h, "{\"event\":\"contact_center.voice_rtms_started\","
      "\"event_ts\":1,\"payload\":{\"engagement_id\":\"x\"}}");
  EXPECT_EQ (no_stream.status, 400u);

  std::string big = "{\"event\":\"x\",\"pad\":\"" + std::string (100 * 1024, 'a') + "\"}";
  Resp large = post_webhook (h, big);
  EXPECT_EQ (large.status, 413u);

  /* stop / interrupted for an unknown stream: 200, nothing happens */
  Resp stop = post_webhook (h, "{\"event\":\"contact_center.voice_rtms_stopped\","
      "\"event_ts\":1738392099000,\"payload\":{\"engagement_id\":\"nobody\","
      "\"rtms_stream_id\":\"nostream\",\"stop_reason\":22}}");
  EXPECT_EQ (stop.status, 200u);
  Resp intr = post_webhook (h, "{\"event\":\"meeting.rtms_interrupted\","
      "\"event_ts\":1738392099000,\"payload\":{\"meeting_uuid\":\"m==\","
      "\"rtms_stream_id\":\"nostream\"}}");
  EXPECT_EQ (intr.status, 200u);

  Resp health = http ("GET", h.url ("/health"));
  EXPECT_EQ (health.status, 200u);
  JsonDoc hd (health.body);
  ASSERT_NE (hd.obj (), nullptr);
  EXPECT_STREQ (json_object_get_string_member (hd.obj (), "status"), "ok");
  EXPECT_EQ (json_object_get_int_member (hd.obj (), "activeEngagements"), 0);
  EXPECT_TRUE (json_object_has_member (hd.obj (), "timestamp"));
  EXPECT_EQ (http ("GET", h.url ("/engagements/nostream")).status, 404u);
  EXPECT_EQ (http ("GET", h.url ("/nothing")).status, 404u);
  EXPECT_EQ (http ("GET", h.url ("/webhook")).status, 405u);

  /* nothing was started by any rejected request */
  g_usleep (200000);
  EXPECT_TRUE (list_dir (h.out ()).empty ());

  expect_clean_exit (h.proc ());
  std::string log = h.proc ().log ();
  EXPECT_EQ (log.find (kSecretToken), std::string::npos);
  EXPECT_EQ (log.find (kClientSecret), std::string::npos);
}

/* ---- recording ---- */

/* The default pipeline: the WAV is the interleave of what the sim sent, the
 * transcript and events are written, --summary shows it. */
TEST (HostRecord, DefaultPipelineWavEqualsSentPcm)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  Host h (tmp);
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  std::vector<SimStream> streams;
  ASSERT_NO_FATAL_FAILURE (play_calls (tmp, h, {"--speed", "0"}, 1, &streams));
  std::string dir = h.out () + "/" + streams[0].engagement_id;
  expect_wav_equals_dump (dir + "/audio.wav", tmp / ("sim-dump/" + streams[0].rtms_stream_id));

  std::unique_ptr<JsonDoc> ej (engagement_json (dir));
  ASSERT_NE (ej->obj (), nullptr);
  JsonObject *o = ej->obj ();
  EXPECT_STREQ (json_object_get_string_member (o, "state"), "stopped");
  EXPECT_STREQ (json_object_get_string_member (o, "engagement_id"),
      streams[0].engagement_id.c_str ());
  EXPECT_STREQ (json_object_get_string_member (o, "rtms_stream_id"),
      streams[0].rtms_stream_id.c_str ());
  EXPECT_STREQ (json_object_get_string_member (o, "pipeline"), "record-wav");
  JsonObject *sr = json_object_get_object_member (o, "stop_reason");
  ASSERT_NE (sr, nullptr);
  EXPECT_EQ (json_object_get_int_member (sr, "code"), 21);
  EXPECT_GT (json_object_get_int_member (o, "frames"), 0);
  EXPECT_EQ (json_object_get_int_member (o, "duplicates_dropped"), 0);
  EXPECT_EQ (json_array_get_length (json_object_get_array_member (o, "errors")), 0u);

  std::string txt = read_file (dir + "/transcript.txt");
  EXPECT_NE (txt.find ("Engagement: " + streams[0].engagement_id), std::string::npos);
  EXPECT_NE (txt.find ("Duration: "), std::string::npos);
  int lines = 0;
  for (gsize p = 0; (p = txt.find ("\n[", p)) != std::string::npos; p++)
    lines++;
  EXPECT_GE (lines, 3) << txt;
  /* speakers come from the participant events' display names */
  EXPECT_NE (txt.find ("] Jane Doe: "), std::string::npos) << txt;
  EXPECT_NE (txt.find ("] Tom Agent: "), std::string::npos) << txt;
  /* every transcript message is a JSON line; revisions are flagged */
  std::string jl = read_file (dir + "/transcript.jsonl");
  int jlines = 0;
  g_auto (GStrv) parts = g_strsplit (jl.c_str (), "\n", -1);
  for (gchar **l = parts; *l; l++) {
    if (!**l)
      continue;
    JsonDoc d (*l);
    ASSERT_NE (d.obj (), nullptr) << *l;
    EXPECT_TRUE (json_object_has_member (d.obj (), "revision"));
    EXPECT_TRUE (json_object_has_member (d.obj (), "text"));
    jlines++;
  }
  EXPECT_GE (jlines, lines);
  std::string ev = read_file (dir + "/events.jsonl");
  EXPECT_NE (ev.find ("\"type\":\"participant\""), std::string::npos);
  EXPECT_NE (ev.find ("\"type\":\"session-state\""), std::string::npos);

  /* the status API still knows the finished engagement */
  Resp r = http ("GET", h.url (("/engagements/" + streams[0].rtms_stream_id).c_str ()));
  EXPECT_EQ (r.status, 200u);
  EXPECT_NE (r.body.find ("\"state\":\"stopped\""), std::string::npos);

  expect_clean_exit (h.proc ());

  std::string summary;
  ASSERT_EQ (run_tool ({host_bin (), "--summary", h.out ()}, &summary), 0);
  EXPECT_NE (summary.find (streams[0].engagement_id), std::string::npos) << summary;
  EXPECT_NE (summary.find ("audio.wav"), std::string::npos) << summary;
  EXPECT_NE (summary.find (" s, 16000 Hz, 2 ch"), std::string::npos) << summary;
  EXPECT_NE (summary.find ("transcript: " + std::to_string (lines) + " line"),
      std::string::npos) << summary;
}

TEST (HostRecord, TwoEngagementsAtOnce)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  Host h (tmp);
  ASSERT_GT (h.port (), 0);
  std::vector<SimStream> streams;
  ASSERT_NO_FATAL_FAILURE (play_calls (tmp, h, {"--speed", "0", "--duration", "5", "--engagements", "2"}, 2, &streams));
  EXPECT_NE (streams[0].engagement_id, streams[1].engagement_id);
  for (const auto &s : streams)
    expect_wav_equals_dump (h.out () + "/" + s.engagement_id + "/audio.wav",
        tmp / ("sim-dump/" + s.rtms_stream_id));
  expect_clean_exit (h.proc ());
}

/* A pipeline ERROR ends that engagement only (recorded in its
 * engagement.json); the other one keeps recording to the end. */
TEST (HostRecord, PipelineErrorEndsOnlyThatEngagement)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  Host h (tmp);
  ASSERT_GT (h.port (), 0);
  auto sim = run_sim (tmp, h, {"--speed", "1", "--duration", "3"});
  ASSERT_TRUE (spin_until ([&] { return list_dir (h.out ()).size () == 1; }, 15000));
  /* nothing listens on port 9: the element fails at once */
  std::string bad = "{\"event\":\"contact_center.voice_rtms_started\",\"event_ts\":1,"
      "\"payload\":{\"engagement_id\":\"broken-one\",\"rtms_stream_id\":\"brokenstream\","
      "\"server_urls\":\"ws://127.0.0.1:9/signaling\"}}";
  EXPECT_EQ (post_webhook (h, bad).status, 200u);
  ASSERT_TRUE (spin_until ([&] {
        std::unique_ptr<JsonDoc> j (engagement_json (h.out () + "/broken-one"));
        return j->obj () && g_str_equal (json_object_get_string_member (j->obj (), "state"),
            "failed");
      }, 10000));
  ASSERT_TRUE (sim->wait (30000));
  ASSERT_EQ (sim->exit_status (), 0) << sim->log ();
  ASSERT_TRUE (host_idle (h, 15000));
  std::unique_ptr<JsonDoc> j (engagement_json (h.out () + "/broken-one"));
  JsonArray *errs = json_object_get_array_member (j->obj (), "errors");
  ASSERT_GE (json_array_get_length (errs), 1u);
  EXPECT_NE (std::string (json_array_get_string_element (errs, 0)).find ("GstZoomRtmsSrc:src"),
      std::string::npos);
  auto streams = sim_streams (tmp / "sim-ready.json");
  ASSERT_EQ (streams.size (), 1u);
  expect_wav_equals_dump (h.out () + "/" + streams[0].engagement_id + "/audio.wav",
      tmp / ("sim-dump/" + streams[0].rtms_stream_id));
  expect_clean_exit (h.proc ());
}

/* meeting.rtms_started: the meeting UUID (with '=' and maybe '/') names a
 * sanitized directory, the raw UUID is kept in engagement.json. */
TEST (HostRecord, MeetingProduct)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  Host h (tmp);
  ASSERT_GT (h.port (), 0);
  auto sim = run_sim (tmp, h, {"--speed", "0", "--duration", "3", "--product", "meeting"});
  ASSERT_TRUE (sim->wait (60000));
  ASSERT_EQ (sim->exit_status (), 0) << sim->log ();
  ASSERT_TRUE (host_idle (h, 15000));
  JsonDoc ready (read_file (tmp / "sim-ready.json"));
  ASSERT_NE (ready.obj (), nullptr);
  JsonObject *st = json_array_get_object_element (
      json_object_get_array_member (ready.obj (), "streams"), 0);
  std::string uuid = json_object_get_string_member (st, "meeting_uuid");
  auto dirs = list_dir (h.out ());
  ASSERT_EQ (dirs.size (), 1u);
  EXPECT_EQ (dirs[0].find ('='), std::string::npos);
  std::string dir = h.out () + "/" + dirs[0];
  std::unique_ptr<JsonDoc> ej (engagement_json (dir));
  ASSERT_NE (ej->obj (), nullptr);
  EXPECT_STREQ (json_object_get_string_member (ej->obj (), "meeting_uuid"), uuid.c_str ());
  EXPECT_STREQ (json_object_get_string_member (ej->obj (), "product"), "meeting");
  EXPECT_STREQ (json_object_get_string_member (ej->obj (), "state"), "stopped");
  EXPECT_NEAR (soxi_duration (dir + "/audio.wav"), 3.0, 0.05);
  expect_clean_exit (h.proc ());
}

/* issue 14: record-participants on a multi-stream meeting (the agent
 * joining at 1.5 s, the customer muted 2–3 s and leaving at 5 s): one WAV
 * per participant, each bit-exact against what the sim sent for that
 * user_id (zeros where nothing was sent), all as long as the call,
 * finalized (soxi, gst-discoverer-1.0); engagement.json lists each file
 * with its participant's id and display name. */
TEST (HostRecord, RecordParticipantsOneWavPerParticipant)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  Host h (tmp, {"--pipeline", "record-participants"});
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  std::vector<SimStream> streams;
  ASSERT_NO_FATAL_FAILURE (play_calls (tmp, h, {"--speed", "0", "--duration", "6",
              "--product", "meeting", "--data-opt", "multi", "--join-late", "agent:1500",
              "--mute", "customer:2000-3000", "--leave", "customer:5000"}, 1, &streams));
  auto dirs = list_dir (h.out ());
  ASSERT_EQ (dirs.size (), 1u);
  std::string dir = h.out () + "/" + dirs[0];
  std::string dump = tmp / ("sim-dump/" + streams[0].rtms_stream_id);
  std::unique_ptr<JsonDoc> ej (engagement_json (dir));
  ASSERT_NE (ej->obj (), nullptr);
  JsonArray *parts = json_object_get_array_member (ej->obj (), "participants");
  ASSERT_NE (parts, nullptr);
  ASSERT_EQ (json_array_get_length (parts), 2u) << read_file (dir + "/engagement.json")
      << h.proc ().log ();
  /* data/default-call.conf: the meeting user_ids and names */
  std::map<std::string, std::pair<std::string, std::string>> want = {
    {"16778240", {"customer", "Jane Doe"}},
    {"16779264", {"agent", "Tom Agent"}},
  };
  for (guint i = 0; i < 2; i++) {
    JsonObject *p = json_array_get_object_element (parts, i);
    std::string id = json_object_get_string_member (p, "id");
    ASSERT_EQ (want.count (id), 1u) << id;
    EXPECT_EQ (json_object_get_string_member (p, "file"), "participant-" + id + ".wav");
    JsonNode *dn = json_object_get_member (p, "display_name");
    ASSERT_NE (dn, nullptr);
    EXPECT_EQ (JSON_NODE_HOLDS_NULL (dn) ? std::string ("(null)") :
        std::string (json_node_get_string (dn)), want[id].second) << id;
    std::string wav = dir + "/participant-" + id + ".wav";
    Wav w = read_wav (wav);
    ASSERT_EQ (w.channels, 1) << wav;
    ASSERT_EQ (w.rate, 16000);
    ASSERT_EQ (w.bits, 16);
    auto sent = read_pcm (dump + "/" + want[id].first + ".pcm");
    ASSERT_EQ (sent.size (), 6u * 16000);
    ASSERT_EQ (w.samples.size (), sent.size ()) << wav;
    gsize first_diff = 0;
    while (first_diff < sent.size () && w.samples[first_diff] == sent[first_diff])
      first_diff++;
    EXPECT_EQ (first_diff, sent.size ()) << wav << ": first differing sample";
    EXPECT_NEAR (soxi_duration (wav), 6.0, 0.001) << wav;
    expect_discoverer_accepts (wav);
  }
  /* the dump itself has the late join, the mute and the leave */
  auto ag = read_pcm (dump + "/agent.pcm"), cu = read_pcm (dump + "/customer.pcm");
  EXPECT_TRUE (std::all_of (ag.begin (), ag.begin () + 24000, [] (gint16 v) { return v == 0; }));
  EXPECT_TRUE (std::all_of (cu.begin () + 80000, cu.end (), [] (gint16 v) { return v == 0; }));
  expect_clean_exit (h.proc ());
}

/* [limits] max-engagements (an operator's choice; unlimited by default): a
 * start beyond the limit gets 503, a duplicate of a running one is still a
 * 200 no-op. */
TEST (HostLifecycle, MaxEngagements)
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
  EXPECT_EQ (post_webhook (h, streams[0].webhook).status, 200u);
  /* DELETE /engagements/{engagement_id}: graceful stop with EOS → 202 */
  std::string dir0 = h.out () + "/" + streams[0].engagement_id;
  ASSERT_TRUE (spin_until ([&] {
        GStatBuf st;
        return g_stat ((dir0 + "/audio.wav").c_str (), &st) == 0 && st.st_size > 44;
      }, 10000));
  Resp del = http ("DELETE", h.url (("/engagements/" + streams[0].engagement_id).c_str ()));
  EXPECT_EQ (del.status, 202u) << del.body;
  ASSERT_TRUE (host_idle (h, 10000));
  std::unique_ptr<JsonDoc> ej (engagement_json (dir0));
  ASSERT_NE (ej->obj (), nullptr);
  EXPECT_TRUE (json_object_get_boolean_member (ej->obj (), "eos"));
  EXPECT_STREQ (json_object_get_string_member (
      json_object_get_object_member (ej->obj (), "stop_reason"), "source"), "api");
  Wav w = read_wav (dir0 + "/audio.wav");
  EXPECT_EQ (w.data_size, w.file_size - w.data_offset);
  /* now there is room for the second stream */
  EXPECT_EQ (post_webhook (h, streams[1].webhook).status, 200u);
  ASSERT_TRUE (spin_until ([&] { return list_dir (h.out ()).size () == 2; }, 5000));
  ASSERT_TRUE (host_idle (h, 20000));
  Resp list = http ("GET", h.url ("/engagements"));
  EXPECT_EQ (list.status, 200u);
  JsonDoc ld (list.body);
  ASSERT_NE (ld.obj (), nullptr);
  EXPECT_EQ (json_array_get_length (json_object_get_array_member (ld.obj (), "engagements")),
      2u);
  expect_clean_exit (h.proc ());
}

TEST (HostRecord, RecordOpus)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  Host h (tmp, {"--pipeline", "record-opus"});
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  std::vector<SimStream> streams;
  ASSERT_NO_FATAL_FAILURE (play_calls (tmp, h, {"--speed", "0", "--duration", "5"}, 1, &streams));
  std::string opus = h.out () + "/" + streams[0].engagement_id + "/audio.opus";
  std::string out;
  EXPECT_EQ (run_tool ({"opusinfo", opus}, &out), 0) << out;
  EXPECT_NE (out.find ("Channels: 2"), std::string::npos) << out;
  EXPECT_NEAR (ffprobe_duration (opus), 5.0, 0.1);
  expect_discoverer_accepts (opus);
  expect_clean_exit (h.proc ());
}

TEST (HostRecord, RecordAll)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  Host h (tmp, {"--pipeline", "record-all"});
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  std::vector<SimStream> streams;
  ASSERT_NO_FATAL_FAILURE (play_calls (tmp, h, {"--speed", "0", "--duration", "5"}, 1, &streams));
  std::string dir = h.out () + "/" + streams[0].engagement_id;
  expect_wav_equals_dump (dir + "/audio.wav", tmp / ("sim-dump/" + streams[0].rtms_stream_id));
  std::string out;
  EXPECT_EQ (run_tool ({"opusinfo", dir + "/audio.opus"}, &out), 0) << out;
  EXPECT_NEAR (ffprobe_duration (dir + "/audio.opus"), 5.0, 0.1);
  expect_discoverer_accepts (dir + "/audio.opus");
  /* level interval 0.5 s over 5 s: about 10 lines, 2 channels each */
  std::string lv = read_file (dir + "/levels.jsonl");
  g_auto (GStrv) lines = g_strsplit (lv.c_str (), "\n", -1);
  int n = 0;
  for (gchar **l = lines; *l; l++) {
    if (!**l)
      continue;
    JsonDoc d (*l);
    ASSERT_NE (d.obj (), nullptr) << *l;
    EXPECT_EQ (json_array_get_length (json_object_get_array_member (d.obj (), "rms")), 2u);
    EXPECT_EQ (json_array_get_length (json_object_get_array_member (d.obj (), "peak")), 2u);
    n++;
  }
  EXPECT_GE (n, 8);
  EXPECT_LE (n, 11);
  expect_clean_exit (h.proc ());
}

/* Runs @pipeline (an rtp-forward template) for a 3 s call with an in-process
 * receiver `udpsrc ! rtpjitterbuffer ! <depay…> ! wavenc`; returns the
 * received WAV path and the sim's dump directory. */
static void
run_rtp_forward (const TempDir &tmp, const char *pipeline, const std::string &caps,
    const std::string &depay, std::string *rx_out, std::string *dump_out)
{
  GError *err = nullptr;
  g_autoptr (GSocket) probe = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
      G_SOCKET_PROTOCOL_UDP, &err);
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  ASSERT_TRUE (g_socket_bind (probe, any, FALSE, &err));
  g_autoptr (GSocketAddress) bound = g_socket_get_local_address (probe, &err);
  int port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_socket_close (probe, nullptr);

  std::string rx = tmp / "rx.wav";
  std::string desc = "udpsrc address=127.0.0.1 port=" + std::to_string (port) +
      " caps=\"" + caps + "\" ! rtpjitterbuffer latency=100 ! " + depay +
      " ! audioconvert ! audio/x-raw,format=S16LE ! wavenc ! filesink location=\"" + rx + "\"";
  GstElement *recv = gst_parse_launch (desc.c_str (), &err);
  ASSERT_NE (recv, nullptr) << err->message;
  ASSERT_NE (gst_element_set_state (recv, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);

  g_file_set_contents ((tmp / "rtp.conf").c_str (),
      ("[rtp]\nhost=127.0.0.1\nport=" + std::to_string (port) + "\n").c_str (), -1, nullptr);
  Host h (tmp, {"--pipeline", pipeline, "--config", tmp / "rtp.conf"});
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  auto sim = run_sim (tmp, h, {"--speed", "1", "--duration", "3"});
  ASSERT_TRUE (sim->wait (60000));
  ASSERT_EQ (sim->exit_status (), 0) << sim->log ();
  ASSERT_TRUE (host_idle (h, 15000));
  g_usleep (300000);
  gst_element_send_event (recv, gst_event_new_eos ());
  GstBus *bus = gst_element_get_bus (recv);
  GstMessage *m = gst_bus_timed_pop_filtered (bus, 5 * GST_SECOND,
      static_cast<GstMessageType> (GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  EXPECT_NE (m, nullptr);
  if (m) {
    EXPECT_EQ (GST_MESSAGE_TYPE (m), GST_MESSAGE_EOS);
    gst_message_unref (m);
  }
  gst_object_unref (bus);
  gst_element_set_state (recv, GST_STATE_NULL);
  gst_object_unref (recv);

  auto streams = sim_streams (tmp / "sim-ready.json");
  ASSERT_EQ (streams.size (), 1u);
  *rx_out = rx;
  *dump_out = tmp / ("sim-dump/" + streams[0].rtms_stream_id);
  expect_clean_exit (h.proc ());
}

/* RTP L16 over loopback arrives sample for sample. */
TEST (HostRecord, RtpForwardReceived)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  std::string rx, dump;
  run_rtp_forward (tmp, "rtp-forward",
      "application/x-rtp,media=audio,clock-rate=16000,encoding-name=L16,channels=2,payload=96",
      "rtpL16depay", &rx, &dump);
  ASSERT_FALSE (rx.empty ());
  expect_wav_equals_dump (rx, dump);
}

TEST (HostRecord, RtpForwardOpusReceived)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  std::string rx, dump;
  run_rtp_forward (tmp, "rtp-forward-opus",
      "application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,payload=97",
      "rtpopusdepay ! opusdec", &rx, &dump);
  ASSERT_FALSE (rx.empty ());
  Wav w = read_wav (rx);
  EXPECT_EQ (w.channels, 2);
  EXPECT_EQ (w.data_size, w.file_size - w.data_offset);
  EXPECT_NEAR (soxi_duration (rx), 3.0, 0.1);
}

/* ---- idempotency, failover, hostile ids ---- */

TEST (HostLifecycle, DuplicateAndFailoverStarts)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  Host h (tmp);
  ASSERT_GT (h.port (), 0);
  Proc serve ({sim_bin (), "serve", "--speed", "1", "--duration", "4", "--ready-file",
          tmp / "serve-ready.json"}, tmp.path, tmp / "serve.log", cred_env ());
  ASSERT_TRUE (spin_until ([&] {
        return g_file_test ((tmp / "serve-ready.json").c_str (), G_FILE_TEST_EXISTS);
      }, 15000));
  auto streams = sim_streams (tmp / "serve-ready.json");
  ASSERT_EQ (streams.size (), 1u);
  const SimStream &s = streams[0];
  ASSERT_FALSE (s.webhook.empty ());
  std::string dir = h.out () + "/" + s.engagement_id;

  ASSERT_EQ (post_webhook (h, s.webhook).status, 200u);
  ASSERT_TRUE (spin_until ([&] {
        return g_file_test ((dir + "/engagement.json").c_str (), G_FILE_TEST_EXISTS);
      }, 5000));
  /* the same delivery again, and a newer one with the same server_urls */
  EXPECT_EQ (post_webhook (h, s.webhook).status, 200u);
  JsonDoc wh (s.webhook);
  gint64 ts = json_object_get_int_member (wh.obj (), "event_ts");
  json_object_set_int_member (wh.obj (), "event_ts", ts + 1000);
  g_autofree gchar *newer = json_to_string (wh.node, FALSE);
  EXPECT_EQ (post_webhook (h, newer).status, 200u);
  g_usleep (300000);
  Resp r = http ("GET", h.url (("/engagements/" + s.rtms_stream_id).c_str ()));
  ASSERT_EQ (r.status, 200u);
  JsonDoc live (r.body);
  EXPECT_EQ (json_object_get_int_member (live.obj (), "failovers"), 0);
  EXPECT_EQ (list_dir (h.out ()).size (), 1u);
  /* interrupted without server_urls: the element reconnects by itself */
  std::string intr = "{\"event\":\"contact_center.voice_rtms_interrupted\",\"event_ts\":" +
      std::to_string (ts + 1500) + ",\"payload\":{\"engagement_id\":\"" + s.engagement_id +
      "\",\"rtms_stream_id\":\"" + s.rtms_stream_id + "\"}}";
  EXPECT_EQ (post_webhook (h, intr).status, 200u);

  /* newer start with other server_urls: failover to the new URL */
  std::string other = s.server_urls;
  gsize at = other.find ("127.0.0.1");
  ASSERT_NE (at, std::string::npos);
  other.replace (at, strlen ("127.0.0.1"), "localhost");
  JsonObject *payload = json_object_get_object_member (wh.obj (), "payload");
  json_object_set_string_member (payload, "server_urls", other.c_str ());
  json_object_set_int_member (wh.obj (), "event_ts", ts + 2000);
  g_autofree gchar *failover = json_to_string (wh.node, FALSE);
  EXPECT_EQ (post_webhook (h, failover).status, 200u);
  ASSERT_TRUE (spin_until ([&] {
        Resp x = http ("GET", h.url (("/engagements/" + s.rtms_stream_id).c_str ()));
        JsonDoc d (x.body);
        return d.obj () && json_object_get_int_member (d.obj (), "failovers") == 1;
      }, 5000));

  /* interrupted carrying server_urls: reconnect there too (§4.9 row 2) */
  std::string intr2 = "{\"event\":\"contact_center.voice_rtms_interrupted\",\"event_ts\":" +
      std::to_string (ts + 3000) + ",\"payload\":{\"engagement_id\":\"" + s.engagement_id +
      "\",\"rtms_stream_id\":\"" + s.rtms_stream_id + "\",\"server_urls\":\"" +
      s.server_urls + "\"}}";
  EXPECT_EQ (post_webhook (h, intr2).status, 200u);
  ASSERT_TRUE (spin_until ([&] {
        Resp x = http ("GET", h.url (("/engagements/" + s.rtms_stream_id).c_str ()));
        JsonDoc d (x.body);
        return d.obj () && json_object_get_int_member (d.obj (), "failovers") == 2;
      }, 5000));

  /* the stream ends by itself; one recording, still valid */
  ASSERT_TRUE (serve.wait (60000)) << serve.log ();
  ASSERT_TRUE (host_idle (h, 15000));
  EXPECT_EQ (list_dir (h.out ()).size (), 1u);
  std::unique_ptr<JsonDoc> ej (engagement_json (dir));
  ASSERT_NE (ej->obj (), nullptr);
  EXPECT_EQ (json_object_get_int_member (ej->obj (), "failovers"), 2);
  EXPECT_STREQ (json_object_get_string_member (ej->obj (), "server_urls"),
      s.server_urls.c_str ());
  Wav w = read_wav (dir + "/audio.wav");
  EXPECT_EQ (w.data_size, w.file_size - w.data_offset);
  EXPECT_GT (soxi_duration (dir + "/audio.wav"), 1.0);
  std::string ev = read_file (dir + "/events.jsonl");
  EXPECT_NE (ev.find ("\"type\":\"failover\""), std::string::npos);

  /* a stop for a stream that has ended: 200, no new directory */
  std::string stop = "{\"event\":\"contact_center.voice_rtms_stopped\",\"event_ts\":" +
      std::to_string (ts + 9000) + ",\"payload\":{\"engagement_id\":\"" + s.engagement_id +
      "\",\"rtms_stream_id\":\"" + s.rtms_stream_id + "\",\"stop_reason\":22}}";
  EXPECT_EQ (post_webhook (h, stop).status, 200u);
  /* a retried start for the finished stream (same event_ts) starts nothing */
  EXPECT_EQ (post_webhook (h, failover).status, 200u);
  g_usleep (300000);
  EXPECT_EQ (list_dir (h.out ()).size (), 1u);
  expect_clean_exit (h.proc ());
}

TEST (HostLifecycle, HostileEngagementIdsStayInsideOutputRoot)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  Host h (tmp);
  ASSERT_GT (h.port (), 0);
  const char *ids[] = {"../../etc/x", "a/b", "==+", "..", "/abs/path"};
  int n = 0;
  for (const char *id : ids) {
    g_autoptr (JsonBuilder) b = json_builder_new ();
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "event");
    json_builder_add_string_value (b, "contact_center.voice_rtms_started");
    json_builder_set_member_name (b, "event_ts");
    json_builder_add_int_value (b, 1738392033000 + n);
    json_builder_set_member_name (b, "payload");
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "engagement_id");
    json_builder_add_string_value (b, id);
    json_builder_set_member_name (b, "rtms_stream_id");
    json_builder_add_string_value (b, ("hostile" + std::to_string (n)).c_str ());
    json_builder_set_member_name (b, "server_urls");
    json_builder_add_string_value (b, "ws://127.0.0.1:9/signaling");
    json_builder_end_object (b);
    json_builder_end_object (b);
    g_autoptr (JsonNode) root = json_builder_get_root (b);
    g_autofree gchar *body = json_to_string (root, FALSE);
    EXPECT_EQ (post_webhook (h, body).status, 200u) << id;
    n++;
  }
  ASSERT_TRUE (spin_until ([&] { return list_dir (h.out ()).size () == 5; }, 5000));
  /* graceful stop through the API (by rtms_stream_id) */
  for (int i = 0; i < n; i++) {
    Resp r = http ("DELETE", h.url (("/engagements/hostile" + std::to_string (i)).c_str ()));
    EXPECT_TRUE (r.status == 202u || r.status == 200u) << r.status;
  }
  ASSERT_TRUE (host_idle (h, 15000));
  /* every directory is a direct child of the output root with a safe name,
   * and nothing appeared next to the output root */
  auto dirs = list_dir (h.out ());
  ASSERT_EQ (dirs.size (), 5u);
  for (const auto &d : dirs) {
    for (char c : d)
      EXPECT_TRUE (g_ascii_isalnum (c) || c == '_' || c == '-') << d;
    std::unique_ptr<JsonDoc> ej (engagement_json (h.out () + "/" + d));
    ASSERT_NE (ej->obj (), nullptr) << d;
  }
  for (const auto &f : list_dir (tmp.path))
    EXPECT_TRUE (f == "out" || g_str_has_suffix (f.c_str (), ".log") ||
        g_str_has_suffix (f.c_str (), ".json")) << f;
  EXPECT_FALSE (g_file_test ((tmp / "etc").c_str (), G_FILE_TEST_EXISTS));
  EXPECT_FALSE (g_file_test ("/abs/path", G_FILE_TEST_EXISTS));
  expect_clean_exit (h.proc ());
}

/* ---- signals ---- */

TEST (HostLifecycle, SigtermMidCallFinalizesFiles)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  Host h (tmp);
  ASSERT_GT (h.port (), 0);
  auto sim = run_sim (tmp, h, {"--speed", "1", "--duration", "20"});
  ASSERT_TRUE (spin_until ([&] {
        return g_file_test ((tmp / "sim-ready.json").c_str (), G_FILE_TEST_EXISTS);
      }, 15000));
  auto streams = sim_streams (tmp / "sim-ready.json");
  ASSERT_EQ (streams.size (), 1u);
  std::string dir = h.out () + "/" + streams[0].engagement_id;
  /* about 1.5 s of stereo audio on disk, then SIGTERM */
  ASSERT_TRUE (spin_until ([&] {
        GStatBuf st;
        return g_stat ((dir + "/audio.wav").c_str (), &st) == 0 && st.st_size > 96000;
      }, 15000));
  h.proc ().send_signal (SIGTERM);
  ASSERT_TRUE (h.proc ().wait (8000));
  EXPECT_EQ (h.proc ().exit_status (), 0) << h.proc ().log ();
  Wav w = read_wav (dir + "/audio.wav");
  EXPECT_EQ (w.channels, 2);
  EXPECT_EQ (w.data_size, w.file_size - w.data_offset) << "WAV not finalized";
  EXPECT_EQ (w.riff_size, w.file_size - 8);
  double d = soxi_duration (dir + "/audio.wav");
  EXPECT_GT (d, 1.0);
  EXPECT_LT (d, 20.0);
  std::unique_ptr<JsonDoc> ej (engagement_json (dir));
  ASSERT_NE (ej->obj (), nullptr);
  /* design.md "Lifetimes": SIGTERM detaches (no msg 21) */
  EXPECT_STREQ (json_object_get_string_member (ej->obj (), "state"), "detached");
  EXPECT_TRUE (json_object_get_boolean_member (ej->obj (), "eos"));
  EXPECT_NE (read_file (dir + "/transcript.txt").find ("Duration: "), std::string::npos);
  sim->send_signal (SIGTERM);
  sim->wait (10000);
}

TEST (HostLifecycle, SigkillLeftoversRepairedOnRestart)
{
  REQUIRE_BINARIES ();
  TempDir tmp;
  std::string dir;
  {
    Host h (tmp);
    ASSERT_GT (h.port (), 0);
    /* ×4: the first sentence (7.1 s of speech) is transcribed ≈1.8 s in */
    auto sim = run_sim (tmp, h, {"--speed", "4", "--duration", "20"});
    ASSERT_TRUE (spin_until ([&] {
          return g_file_test ((tmp / "sim-ready.json").c_str (), G_FILE_TEST_EXISTS);
        }, 15000));
    auto streams = sim_streams (tmp / "sim-ready.json");
    ASSERT_EQ (streams.size (), 1u);
    dir = h.out () + "/" + streams[0].engagement_id;
    ASSERT_TRUE (spin_until ([&] {
          GStatBuf st;
          return g_stat ((dir + "/audio.wav").c_str (), &st) == 0 && st.st_size > 96000 &&
              read_file (dir + "/transcript.jsonl").find ("\"sentence_id\":1") !=
              std::string::npos;
        }, 15000));
    h.proc ().send_signal (SIGKILL);
    ASSERT_TRUE (h.proc ().wait (5000));
    sim->send_signal (SIGTERM);
    sim->wait (10000);
  }
  Wav before = read_wav (dir + "/audio.wav");
  EXPECT_NE (before.data_size, before.file_size - before.data_offset);
  /* outside the rejoin window (test-host-restart.cpp rejoins inside it) */
  g_file_set_contents ((tmp / "w0.conf").c_str (), "[host]\nrejoin-window-s=0\n", -1,
      nullptr);
  Host h2 (tmp, {"--config", tmp / "w0.conf"}, "host2");
  ASSERT_GT (h2.port (), 0) << h2.proc ().log ();
  std::unique_ptr<JsonDoc> ej (engagement_json (dir));
  ASSERT_NE (ej->obj (), nullptr);
  EXPECT_STREQ (json_object_get_string_member (ej->obj (), "state"), "recovered");
  EXPECT_TRUE (json_object_get_boolean_member (ej->obj (), "wav_repaired"));
  Wav w = read_wav (dir + "/audio.wav");
  EXPECT_EQ (w.data_size % 4, 0);
  EXPECT_LE (w.file_size - w.data_offset - w.data_size, 3);
  EXPECT_GT (soxi_duration (dir + "/audio.wav"), 1.0);
  /* transcript.txt rebuilt from transcript.jsonl, the first sentence in it */
  std::string txt = read_file (dir + "/transcript.txt");
  EXPECT_NE (txt.find ("[00:00:00] Jane Doe: "), std::string::npos) << txt;
  EXPECT_NE (txt.find ("dashwood"), std::string::npos) << txt;
  EXPECT_NE (txt.find ("recovered"), std::string::npos) << txt;
  EXPECT_GE (json_object_get_int_member (ej->obj (), "transcript_lines"), 1);
  /* and the WebVTT / SRT beside it (issue 14), listed in engagement.json */
  std::string vtt = read_file (dir + "/transcript.vtt");
  EXPECT_TRUE (g_str_has_prefix (vtt.c_str (), "WEBVTT\n")) << vtt;
  EXPECT_NE (vtt.find ("<v Jane Doe>"), std::string::npos) << vtt;
  EXPECT_NE (vtt.find ("dashwood"), std::string::npos) << vtt;
  EXPECT_NE (read_file (dir + "/transcript.srt").find ("1\n00:00:00,"), std::string::npos);
  std::string files;
  if (json_object_has_member (ej->obj (), "files")) {
    g_autofree gchar *f = json_to_string (json_object_get_member (ej->obj (), "files"), FALSE);
    files = f;
  }
  EXPECT_NE (files.find ("\"transcript.vtt\""), std::string::npos) << files;
  expect_clean_exit (h2.proc ());
}
