/* The RTMS client against zoomrtms-sim, end to end (issue: foundation, tests):
 * handshakes, keep-alives answered while idle, per-channel PCM byte for byte,
 * and a wrong client secret giving the sim's status code as a clean error. */
#include <gtest/gtest.h>

#include <map>

#include "rtms-client.h"
#include "sim-process.h"

using testutil::SimProcess;
using testutil::TempDir;

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
run_client (const std::string &url, const testutil::SimStream &stream,
    const std::string &secret, Capture *cap, int timeout_s = 60)
{
  GMainContext *ctx = g_main_context_new ();
  g_main_context_push_thread_default (ctx);
  {
    rtms::ClientConfig cfg;
    cfg.signaling_url = url;
    cfg.product = rtms::Product::CONTACT_CENTER;
    cfg.id_value = stream.engagement_id;
    cfg.rtms_stream_id = stream.rtms_stream_id;
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

std::vector<std::string>
sim_args (std::initializer_list<const char *> extra, const TempDir &dump)
{
  std::vector<std::string> a = { "serve", "--client-id", CLIENT_ID,
    "--client-secret", CLIENT_SECRET, "--dump-dir", dump.path () };
  for (auto e : extra)
    a.push_back (e);
  return a;
}

} // namespace

TEST (Client, ZccCallPcmEqualsWhatTheSimSentPerChannel)
{
  TempDir dump;
  SimProcess sim (sim_args ({ "--speed", "0", "--duration", "6" }, dump));
  ASSERT_TRUE (sim.ok ());
  ASSERT_EQ (sim.streams ().size (), 1u);
  const auto &stream = sim.streams ()[0];
  ASSERT_EQ (stream.channels.size (), 2u);

  Capture cap;
  run_client (sim.signaling_url (), stream, CLIENT_SECRET, &cap);
  ASSERT_TRUE (cap.closed);
  EXPECT_FALSE (cap.failed) << cap.error.message;
  EXPECT_TRUE (cap.ready);
  EXPECT_EQ (cap.negotiated.codec, rtms::CODEC_L16);
  EXPECT_EQ (cap.negotiated.sample_rate, rtms::SR_16K);
  EXPECT_EQ (cap.stream_state_terminated, 1);
  EXPECT_GE (cap.events, 3);    /* event 1 + participant events 8 and 10 */

  for (const auto &ch : stream.channels) {
    std::string sent = testutil::read_file (dump.path () + "/" +
        stream.rtms_stream_id + "/" + ch.role + ".pcm");
    ASSERT_FALSE (sent.empty ()) << ch.role;
    const std::string &got = cap.pcm[ch.channel_id];
    EXPECT_EQ (got.size (), sent.size ()) << ch.role;
    EXPECT_TRUE (got == sent) << ch.role << ": PCM differs";
    /* 20 ms packets, timestamps advancing by exactly 20 ms */
    const auto &ts = cap.ts[ch.channel_id];
    ASSERT_GT (ts.size (), 100u);
    for (size_t i = 1; i < ts.size (); i++)
      ASSERT_EQ (ts[i] - ts[i - 1], 20) << ch.role << " packet " << i;
  }
  EXPECT_EQ (cap.counters.malformed, 0u);
  EXPECT_EQ (sim.wait (10), 0);
}

TEST (Client, AnswersKeepAlivesWhileIdle)
{
  TempDir dump;
  /* both parties muted for 3.5 s in a real-time call: the sim goes idle and
   * sends keep-alives every 200 ms; it closes the socket after 3 misses. */
  SimProcess sim (sim_args ({ "--speed", "1", "--duration", "5",
          "--keepalive-ms", "200", "--mute", "customer:500-4000",
          "--mute", "agent:500-4000" }, dump));
  ASSERT_TRUE (sim.ok ());
  Capture cap;
  run_client (sim.signaling_url (), sim.streams ()[0], CLIENT_SECRET, &cap);
  EXPECT_FALSE (cap.failed) << cap.error.message;
  EXPECT_EQ (cap.stream_state_terminated, 1);
  EXPECT_GE (cap.counters.keep_alives, 3u);
}

TEST (Client, WrongSecretGivesTheSimsStatusAsACleanError)
{
  for (const char *table : { "new", "old" }) {
    TempDir dump;
    SimProcess sim (sim_args ({ "--status-table", table }, dump));
    ASSERT_TRUE (sim.ok ());
    Capture cap;
    run_client (sim.signaling_url (), sim.streams ()[0], "not_the_secret", &cap,
        20);
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
  testutil::SimStream s { "E1", "S1", "", {} };
  run_client ("ws://127.0.0.1:1/signaling", s, CLIENT_SECRET, &cap, 20);
  ASSERT_TRUE (cap.failed);
  EXPECT_EQ (cap.error.code, rtms::ERROR_CONNECT);
}
