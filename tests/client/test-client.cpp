/* The RTMS client against zoomrtms-sim, end to end (issue: foundation, tests):
 * handshakes, keep-alives answered while idle, per-channel PCM byte for byte,
 * and a wrong client secret giving the sim's status code as a clean error. */
#include <gtest/gtest.h>

#include <map>

#include "rtms-client.h"
#include "sim-test-util.h"

using simtest::Sim;
using simtest::obj_str;

namespace {

const char *CLIENT_ID = "test_client_id";
const char *CLIENT_SECRET = "test_client_secret";

struct Capture {
  std::map<std::string, std::string> pcm;        /* channel_key → bytes */
  std::map<std::string, std::vector<gint64>> ts; /* channel_key → timestamps */
  bool ready = false;
  rtms::AudioParams negotiated;
  bool closed = false;
  bool failed = false;
  rtms::ClientError error;
  int stream_state_terminated = 0;
  int events = 0;
  int transcripts = 0;
  rtms::ClientCounters counters;
};

/* Runs one client on a private context in this thread until on_closed. */
void
run_client (const std::string &url, const std::string &engagement_id,
    const std::string &rtms_stream_id, const std::string &secret,
    Capture *cap, int timeout_s = 60)
{
  GMainContext *ctx = g_main_context_new ();
  g_main_context_push_thread_default (ctx);
  {
    rtms::ClientConfig cfg;
    cfg.signaling_url = url;
    cfg.product = rtms::Product::CONTACT_CENTER;
    cfg.id_value = engagement_id;
    cfg.rtms_stream_id = rtms_stream_id;
    cfg.client_id = CLIENT_ID;
    cfg.client_secret = secret;
    rtms::ClientCallbacks cb;
    cb.on_ready = [cap] (const rtms::AudioParams &p) {
      cap->ready = true;
      cap->negotiated = p;
    };
    cb.on_audio = [cap] (const rtms::AudioFrame &f) {
      cap->pcm[*f.channel_key].append ((const char *) f.pcm, f.size);
      cap->ts[*f.channel_key].push_back (f.timestamp_ms);
    };
    cb.on_event = [cap] (const rtms::EventUpdate &) { cap->events++; };
    cb.on_transcript = [cap] (const rtms::TranscriptData &) {
      cap->transcripts++;
    };
    cb.on_stream_state = [cap] (const rtms::StreamStateUpdate &s) {
      if (s.state == rtms::STREAM_TERMINATED)
        cap->stream_state_terminated++;
    };
    cb.on_closed = [cap] (const rtms::ClientError *e) {
      cap->closed = true;
      if (e) {
        cap->failed = true;
        cap->error = *e;
      }
    };
    rtms::Client client (ctx, cfg, cb);
    client.start ();
    gint64 deadline = g_get_monotonic_time () + timeout_s * G_USEC_PER_SEC;
    while (!cap->closed && g_get_monotonic_time () < deadline)
      g_main_context_iteration (ctx, TRUE);
    cap->counters = client.counters ();
  }
  g_main_context_pop_thread_default (ctx);
  g_main_context_unref (ctx);
}

/* `zoomrtms-sim serve` with the test credentials and --dump-dir in the sim's
 * temporary directory. */
std::vector<std::string>
sim_args (std::initializer_list<const char *> extra)
{
  std::vector<std::string> a = { "serve", "--port", "0", "--client-id",
    CLIENT_ID, "--client-secret", CLIENT_SECRET };
  for (auto e : extra)
    a.push_back (e);
  return a;
}

struct Stream {
  std::string engagement_id, rtms_stream_id;
};

Stream
stream_of (Sim &sim)
{
  JsonObject *s = sim.stream (0);
  return { obj_str (s, "engagement_id"), obj_str (s, "rtms_stream_id") };
}

/* A temporary directory, removed with its files. */
struct TempDir {
  std::string path;
  TempDir ()
  {
    g_autofree char *p = g_dir_make_tmp ("zoomrtms-client-test-XXXXXX", nullptr);
    path = p ? p : "";
  }
  ~TempDir ()
  {
    g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", path.c_str ());
    if (!path.empty () && system (cmd) != 0)
      g_warning ("cannot remove %s", path.c_str ());
  }
};

std::string
read_file (const std::string &path)
{
  g_autofree char *data = nullptr;
  gsize len = 0;
  if (!g_file_get_contents (path.c_str (), &data, &len, nullptr))
    return std::string ();
  return std::string (data, len);
}

} // namespace

TEST (Client, ZccCallPcmEqualsWhatTheSimSentPerChannel)
{
  TempDir dump;
  Sim dsim (sim_args ({ "--speed", "0", "--duration", "6", "--dump-dir",
          dump.path.c_str () }));
  ASSERT_NE (dsim.stream (0), nullptr);
  Stream stream = stream_of (dsim);
  JsonArray *channels = json_object_get_array_member (dsim.stream (0),
      "channels");
  ASSERT_EQ (json_array_get_length (channels), 2u);

  Capture cap;
  run_client (dsim.signaling_url (), stream.engagement_id,
      stream.rtms_stream_id, CLIENT_SECRET, &cap);
  ASSERT_TRUE (cap.closed);
  EXPECT_FALSE (cap.failed) << cap.error.message;
  EXPECT_TRUE (cap.ready);
  EXPECT_EQ (cap.negotiated.codec, rtms::CODEC_L16);
  EXPECT_EQ (cap.negotiated.sample_rate, rtms::SR_16K);
  EXPECT_EQ (cap.stream_state_terminated, 1);
  EXPECT_GE (cap.events, 3);    /* event 1 + participant events 8 and 10 */

  for (guint i = 0; i < 2; i++) {
    JsonObject *ch = json_array_get_object_element (channels, i);
    std::string role = obj_str (ch, "role"), id = obj_str (ch, "channel_id");
    std::string sent = read_file (dump.path + "/" + stream.rtms_stream_id +
        "/" + role + ".pcm");
    ASSERT_FALSE (sent.empty ()) << role;
    const std::string &got = cap.pcm[id];
    EXPECT_EQ (got.size (), sent.size ()) << role;
    EXPECT_TRUE (got == sent) << role << ": PCM differs";
    /* 20 ms packets, timestamps advancing by exactly 20 ms */
    const auto &ts = cap.ts[id];
    ASSERT_GT (ts.size (), 100u);
    for (size_t k = 1; k < ts.size (); k++)
      ASSERT_EQ (ts[k] - ts[k - 1], 20) << role << " packet " << k;
  }
  EXPECT_EQ (cap.counters.malformed, 0u);
  EXPECT_EQ (dsim.wait_exit (10000), 0);
}

TEST (Client, AnswersKeepAlivesWhileIdle)
{
  /* both parties muted for 3.5 s in a real-time call: the sim goes idle and
   * sends keep-alives every 200 ms; it closes the socket after 3 misses. */
  Sim sim (sim_args ({ "--speed", "1", "--duration", "5",
          "--keepalive-ms", "200", "--mute", "customer:500-4000",
          "--mute", "agent:500-4000" }));
  ASSERT_NE (sim.stream (0), nullptr);
  Stream st = stream_of (sim);
  Capture cap;
  run_client (sim.signaling_url (), st.engagement_id, st.rtms_stream_id,
      CLIENT_SECRET, &cap);
  EXPECT_FALSE (cap.failed) << cap.error.message;
  EXPECT_EQ (cap.stream_state_terminated, 1);
  EXPECT_GE (cap.counters.keep_alives, 3u);
}

TEST (Client, WrongSecretGivesTheSimsStatusAsACleanError)
{
  for (const char *table : { "new", "old" }) {
    Sim sim (sim_args ({ "--status-table", table }));
    ASSERT_NE (sim.stream (0), nullptr);
    Stream st = stream_of (sim);
    Capture cap;
    run_client (sim.signaling_url (), st.engagement_id, st.rtms_stream_id,
        "not_the_secret", &cap, 20);
    ASSERT_TRUE (cap.closed);
    ASSERT_TRUE (cap.failed);
    EXPECT_EQ (cap.error.code, rtms::ERROR_HANDSHAKE);
    /* INVALID_SIGNATURE: 3 in the new table, 15 in the old (§3.10) */
    EXPECT_EQ (cap.error.status_code, std::string (table) == "new" ? 3 : 15);
    EXPECT_EQ (cap.error.message.find ("not_the_secret"), std::string::npos);
    EXPECT_EQ (cap.error.message.find (CLIENT_SECRET), std::string::npos);
    EXPECT_FALSE (cap.ready);
  }
}

TEST (Client, UnreachableServerFailsWithConnectError)
{
  Capture cap;
  run_client ("ws://127.0.0.1:1/signaling", "E1", "S1", CLIENT_SECRET, &cap,
      20);
  ASSERT_TRUE (cap.failed);
  EXPECT_EQ (cap.error.code, rtms::ERROR_CONNECT);
}
