/* The RTMS client against zoomrtms-sim, end to end (issue: foundation, tests):
 * handshakes, keep-alives answered while idle, per-channel PCM byte for byte,
 * and a wrong client secret giving the sim's status code as a clean error.
 * Issue 8 (hostile and unusual input): hostile frames (--hostile-frame) are
 * skipped without losing a connection or a PCM byte, an 8 MiB frame is
 * skipped as oversize, a 40 MiB frame (over any libsoup limit we used to
 * have) is skipped too without a reconnect, and a duplicate-connection
 * refusal after a server close 1009 is retried soon, the real close code
 * logged (a scripted server). */
#include <gtest/gtest.h>

#include <csignal>
#include <functional>
#include <map>
#include <mutex>

#include "rtms-client.h"
#include "sim-test-util.h"
#include "count-sources.h"

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
  std::vector<std::pair<std::string, std::string>> transcript_texts; /* channel, text */
  rtms::ClientCounters counters;
};

/* Runs one client on a private context in this thread until on_closed. */
void
run_client (const std::string &url, const std::string &engagement_id,
    const std::string &rtms_stream_id, const std::string &secret,
    Capture *cap, int timeout_s = 60,
    const std::function<void (rtms::ClientConfig &)> &tweak = nullptr)
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
    if (tweak)
      tweak (cfg);
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
    cb.on_transcript = [cap] (const rtms::TranscriptData &t) {
      cap->transcripts++;
      cap->transcript_texts.emplace_back (t.channel_id, t.text);
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
  /* the dump is complete once the sim has exited */
  ASSERT_EQ (dsim.wait_exit (10000), 0);

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

/* ---- hostile and unusual frames (issue 8) ------------------------------ */

namespace {

/* Messages the client logs (domain zoomrtms-client), collected while alive. */
struct ClientLog {
  std::mutex lock;
  std::vector<std::string> lines;
  guint handler = 0;
  ClientLog ()
  {
    handler = g_log_set_handler ("zoomrtms-client", (GLogLevelFlags)
        (G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO),
        [] (const char *domain, GLogLevelFlags level, const char *msg,
            gpointer data) {
          auto self = static_cast<ClientLog *> (data);
          {
            std::lock_guard<std::mutex> lk (self->lock);
            self->lines.push_back (msg);
          }
          g_log_default_handler (domain, level, msg, nullptr);
        }, this);
  }
  ~ClientLog () { g_log_remove_handler ("zoomrtms-client", handler); }
  /* the first line containing @needle, "" if none */
  std::string find (const std::string &needle)
  {
    std::lock_guard<std::mutex> lk (lock);
    for (auto &l : lines)
      if (l.find (needle) != std::string::npos)
        return l;
    return "";
  }
  std::string all ()
  {
    std::lock_guard<std::mutex> lk (lock);
    std::string a;
    for (auto &l : lines)
      a += l + "\n";
    return a;
  }
};

/* Both channels' PCM equal, byte for byte, what the sim dumped. */
void
expect_pcm_equals_dump (Sim &sim, const std::string &dump_dir,
    const Stream &stream, Capture &cap)
{
  JsonArray *channels = json_object_get_array_member (sim.stream (0),
      "channels");
  ASSERT_EQ (json_array_get_length (channels), 2u);
  for (guint i = 0; i < 2; i++) {
    JsonObject *ch = json_array_get_object_element (channels, i);
    std::string role = obj_str (ch, "role"), id = obj_str (ch, "channel_id");
    std::string sent = read_file (dump_dir + "/" + stream.rtms_stream_id +
        "/" + role + ".pcm");
    ASSERT_FALSE (sent.empty ()) << role;
    const std::string &got = cap.pcm[id];
    EXPECT_EQ (got.size (), sent.size ()) << role;
    EXPECT_TRUE (got == sent) << role << ": PCM differs";
  }
}

/* sent.json of the sim's stream (written when the stream ended). */
std::unique_ptr<simtest::JsonDoc>
sent_json (const std::string &dump_dir, const Stream &stream)
{
  return std::make_unique<simtest::JsonDoc> (read_file (dump_dir + "/" +
          stream.rtms_stream_id + "/sent.json"));
}

/* Every --hostile-frame kind, mid-call. Each must be skipped as one
 * malformed frame: the decoder refuses depth over 32, invalid UTF-8, non-JSON
 * escapes, lone surrogates and \u0000 (rtms-json.h). */
const char *const kHostileCases[] = {
  "deep@1000",                  /* 300,000 × '[' (the crash report) */
  "deep-msg@1000",              /* msg 14 with a member 300,000 deep */
  "bad-utf8@1000",              /* binary frame, invalid UTF-8 */
  "escape-377@1000",            /* "\377\376": json-glib made bytes of it */
  "nul-raw@1000",               /* raw NUL byte in a string */
  "binary@1000",                /* 4 KiB of junk */
  "surrogate@1000",             /* "\ud800 … \udc00" */
  "nul@1000",                   /* "a\u0000b": json-glib cut the string */
  "signaling:deep@1000",        /* the same on the signaling socket */
  "signaling:deep-msg@1000",
  "signaling:escape-377@1000",
  "signaling:bad-utf8@1000",
  "signaling:nul@1000",
};

} // namespace

/* Each hostile frame, mid-call on the media (or signaling) socket: skipped
 * and counted, both connections kept (one handshake each on the sim's side,
 * no reconnection on ours), every PCM byte the sim sent received. Before the
 * decoder fix the deep frames crashed the process (json-glib recursion). */
TEST (Client, HostileFramesAreSkippedWithoutLosingConnectionOrAudio)
{
  for (const char *spec : kHostileCases) {
    SCOPED_TRACE (spec);
    TempDir dump;
    Sim sim (sim_args ({ "--speed", "0", "--duration", "3", "--dump-dir",
            dump.path.c_str (), "--hostile-frame", spec }));
    ASSERT_NE (sim.stream (0), nullptr);
    Stream st = stream_of (sim);
    Capture cap;
    run_client (sim.signaling_url (), st.engagement_id, st.rtms_stream_id,
        CLIENT_SECRET, &cap);
    ASSERT_TRUE (cap.closed);
    EXPECT_FALSE (cap.failed) << cap.error.message;
    EXPECT_EQ (cap.stream_state_terminated, 1);
    EXPECT_EQ (cap.counters.reconnects, 0u);
    /* the sim writes its dump when the stream has ended: read it once
     * the sim has exited (a loaded machine showed a half-written sent.json) */
    ASSERT_EQ (sim.wait_exit (10000), 0);
    ASSERT_NO_FATAL_FAILURE (expect_pcm_equals_dump (sim, dump.path, st, cap));
    auto sent = sent_json (dump.path, st);
    EXPECT_EQ (sent->integer ("hostile_frames_sent"), 1);
    EXPECT_EQ (sent->integer ("signaling_handshakes"), 1);
    EXPECT_EQ (sent->integer ("media_handshakes"), 1);
    EXPECT_EQ (cap.counters.oversize, 0u);
    EXPECT_EQ (cap.counters.malformed, 1u);
    /* nothing of the hostile frame reached the application */
    EXPECT_EQ (cap.pcm.size (), 2u);
    for (auto &[ch, text] : cap.transcript_texts)
      EXPECT_NE (ch, "hostile") << text;
  }
}

/* An 8 MiB frame (the original report: over the old 4 MiB libsoup limit,
 * which closed the media socket with 1009, a 3 s hole and a lost packet) is
 * now under libsoup's limit and over the message limit: skipped, counted as
 * oversize, warned about; the connection stays and no audio is lost. */
TEST (Client, EightMiBFrameIsSkippedAndTheConnectionKept)
{
  ClientLog log;
  TempDir dump;
  Sim sim (sim_args ({ "--speed", "0", "--duration", "3", "--dump-dir",
          dump.path.c_str (), "--hostile-frame", "oversize@1000",
          "--hostile-frame", "oversize@2000" }));
  ASSERT_NE (sim.stream (0), nullptr);
  Stream st = stream_of (sim);
  Capture cap;
  run_client (sim.signaling_url (), st.engagement_id, st.rtms_stream_id,
      CLIENT_SECRET, &cap);
  ASSERT_TRUE (cap.closed);
  EXPECT_FALSE (cap.failed) << cap.error.message;
  EXPECT_EQ (cap.counters.oversize, 2u);
  EXPECT_EQ (cap.counters.malformed, 2u);
  EXPECT_EQ (cap.counters.reconnects, 0u);
  ASSERT_EQ (sim.wait_exit (10000), 0);     /* its dump is complete */
  ASSERT_NO_FATAL_FAILURE (expect_pcm_equals_dump (sim, dump.path, st, cap));
  auto sent = sent_json (dump.path, st);
  EXPECT_EQ (sent->integer ("hostile_frames_sent"), 2);
  EXPECT_EQ (sent->integer ("media_handshakes"), 1);
  /* warned once (rate limit: one warning per 10 s), with the size */
  std::string w = log.find ("8388608 bytes over the 4194304-byte message limit");
  EXPECT_FALSE (w.empty ()) << log.all ();
  int warnings = 0;
  {
    std::lock_guard<std::mutex> lk (log.lock);
    for (auto &l : log.lines)
      warnings += l.find ("skipped") != std::string::npos;
  }
  EXPECT_EQ (warnings, 1) << log.all ();
}

/* A 40 MiB frame: over the old libsoup socket limit (32 MiB, which failed
 * the media socket with 1009 and reconnected), now skipped by rtms-ws while
 * it arrives, never buffered (rtms-client.h "Frame limits"): counted as
 * oversize with its real size, the media socket kept (one media handshake,
 * no reconnect, no close logged) and every PCM byte delivered. */
TEST (Client, FortyMiBFrameIsSkippedWithoutAReconnect)
{
  ClientLog log;
  TempDir dump;
  Sim sim (sim_args ({ "--speed", "1", "--duration", "3", "--dump-dir",
          dump.path.c_str (), "--hostile-frame", "oversize:41943040@1000" }));
  ASSERT_NE (sim.stream (0), nullptr);
  Stream st = stream_of (sim);
  Capture cap;
  run_client (sim.signaling_url (), st.engagement_id, st.rtms_stream_id,
      CLIENT_SECRET, &cap, 60);
  ASSERT_TRUE (cap.closed);
  EXPECT_FALSE (cap.failed) << cap.error.message;
  EXPECT_EQ (cap.stream_state_terminated, 1);
  EXPECT_EQ (cap.counters.oversize, 1u);
  EXPECT_EQ (cap.counters.malformed, 1u);
  EXPECT_EQ (cap.counters.reconnects, 0u);
  EXPECT_EQ (cap.counters.attempts, 0u);
  ASSERT_EQ (sim.wait_exit (10000), 0);     /* its dump is complete */
  ASSERT_NO_FATAL_FAILURE (expect_pcm_equals_dump (sim, dump.path, st, cap));
  /* the sim's frame is exactly BYTES long (sim-hostile.cpp) */
  std::string w = log.find (
      "frame of 41943040 bytes over the 4194304-byte message limit");
  EXPECT_FALSE (w.empty ()) << log.all ();
  EXPECT_TRUE (log.find ("reconnecting").empty ()) << log.all ();
  EXPECT_TRUE (log.find ("WebSocket closed").empty ()) << log.all ();
  auto sent = sent_json (dump.path, st);
  EXPECT_EQ (sent->integer ("hostile_frames_sent"), 1);
  EXPECT_EQ (sent->integer ("signaling_handshakes"), 1);
  EXPECT_EQ (sent->integer ("media_handshakes"), 1);
}

/* ---- a scripted RTMS server for the duplicate-media retry -------------- */

namespace {

/* A minimal RTMS server (libsoup, on the caller's thread-default context)
 * that plays one script: media handshake 1 OK, then after msg 7 a frame
 * over the client's message limit (skipped, the socket kept) and a server
 * close of the media socket with code 1009; the next media handshake is
 * refused with DUPLICATE_MEDIA_DATA_CONNECTION (status 16, the "server still
 * holds the old connection" after a lost socket); the one after is
 * accepted, and after msg 7 one audio packet and msg 8 TERMINATED end it. */
class ScriptedServer {
 public:
  explicit ScriptedServer (gsize oversize_bytes) : oversize_ (oversize_bytes)
  {
    server_ = soup_server_new (nullptr, nullptr);
    for (const char *p : { "/signaling", "/media" })
      soup_server_add_websocket_handler (server_, p, nullptr, nullptr,
          on_ws, this, nullptr);
    g_autoptr (GError) err = nullptr;
    g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (
        G_SOCKET_FAMILY_IPV4);
    g_autoptr (GSocketAddress) sa = g_inet_socket_address_new (lo, 0);
    soup_server_listen (server_, sa, (SoupServerListenOptions) 0, &err);
    GSList *uris = soup_server_get_uris (server_);
    port_ = uris ? g_uri_get_port ((GUri *) uris->data) : 0;
    g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  }
  ~ScriptedServer ()
  {
    for (auto *c : conns_) {
      g_signal_handlers_disconnect_by_data (c, this);
      g_object_unref (c);
    }
    soup_server_disconnect (server_);
    g_object_unref (server_);
  }
  std::string url () const
  {
    return "ws://127.0.0.1:" + std::to_string (port_) + "/signaling";
  }
  int media_handshakes = 0;

 private:
  static void on_ws (SoupServer *, SoupServerMessage *, const char *path,
      SoupWebsocketConnection *ws, gpointer data)
  {
    auto self = static_cast<ScriptedServer *> (data);
    self->conns_.push_back (SOUP_WEBSOCKET_CONNECTION (g_object_ref (ws)));
    if (!strcmp (path, "/signaling")) {
      self->sig_ = ws;
      g_signal_connect (ws, "message", G_CALLBACK (on_sig_msg), self);
    } else {
      g_signal_connect (ws, "message", G_CALLBACK (on_media_msg), self);
    }
  }
  static int msg_type (GBytes *b)
  {
    gsize len = 0;
    auto p = (const char *) g_bytes_get_data (b, &len);
    simtest::JsonDoc d (std::string (p, len));
    return (int) d.integer ("msg_type");
  }
  static void send (SoupWebsocketConnection *ws, const std::string &text)
  {
    if (ws && soup_websocket_connection_get_state (ws) ==
        SOUP_WEBSOCKET_STATE_OPEN)
      soup_websocket_connection_send_text (ws, text.c_str ());
  }
  static void on_sig_msg (SoupWebsocketConnection *ws, gint, GBytes *b,
      gpointer data)
  {
    auto self = static_cast<ScriptedServer *> (data);
    int t = msg_type (b);
    if (t == 1) {
      rtms::SignalingHandshakeResp r;
      r.media_server.all = "ws://127.0.0.1:" + std::to_string (self->port_) +
          "/media";
      send (ws, rtms::encode (r));
    } else if (t == 7 && self->media_ && self->media_handshakes == 1) {
      /* over the client's max_message_size: skipped, then the server
       * closes the media socket with 1009 */
      std::string big = "{\"msg_type\":15,\"content\":{\"user_id\":0,"
          "\"data\":\"" + std::string (self->oversize_, 'A') + "\"}}";
      send (self->media_, big);
      soup_websocket_connection_close (self->media_, 1009, "message too big");
    } else if (t == 7 && self->media_ && self->media_handshakes == 3) {
      rtms::AudioData a;
      a.channel_id = "c1";
      a.data_base64 = std::string (852, 'A') + "AA==";  /* 640 bytes */
      a.timestamp = 1738392033699;
      send (self->media_, rtms::encode (a));
      rtms::StreamStateUpdate st;
      st.state = rtms::STREAM_TERMINATED;
      st.reason = rtms::STOP_CUSTOMER_DISCONNECTED;
      st.timestamp = 1738392033800;
      send (ws, rtms::encode (st));
      soup_websocket_connection_close (self->media_, 1000, "stream ended");
    }
  }
  static void on_media_msg (SoupWebsocketConnection *ws, gint, GBytes *b,
      gpointer data)
  {
    auto self = static_cast<ScriptedServer *> (data);
    if (msg_type (b) != 3)
      return;
    self->media_handshakes++;
    if (self->media_handshakes == 2) {
      send (ws, rtms::encode_data_handshake_resp (16,
              "DUPLICATE_MEDIA_DATA_CONNECTION", false, rtms::MediaParams ()));
      soup_websocket_connection_close (ws, 1008,
          "DUPLICATE_MEDIA_DATA_CONNECTION");
      return;
    }
    self->media_ = ws;
    rtms::MediaParams p;
    p.audio = rtms::AudioParams ();
    send (ws, rtms::encode_data_handshake_resp (0, "", false, p));
  }

  SoupServer *server_ = nullptr;
  int port_ = 0;
  gsize oversize_;
  SoupWebsocketConnection *sig_ = nullptr, *media_ = nullptr;
  std::vector<SoupWebsocketConnection *> conns_;
};

} // namespace

/* An oversize message is skipped without losing the socket; the server's
 * close 1009 after it is logged with its real code and reason and media is
 * reconnected with the §4.9 backoff (3 s); a server that still holds the old
 * connection refuses with DUPLICATE_MEDIA_DATA_CONNECTION. That refusal
 * during an outage is retried soon (250 ms), not fatal, and the stream
 * completes. */
TEST (Client, DuplicateMediaRefusalAfterAServerClose1009IsRetriedSoon)
{
  ClientLog log;
  GMainContext *ctx = g_main_context_new ();
  g_main_context_push_thread_default (ctx);
  Capture cap;
  {
    ScriptedServer server (256 * 1024);
    rtms::ClientConfig cfg;
    cfg.signaling_url = server.url ();
    cfg.id_value = "E1";
    cfg.rtms_stream_id = "S1";
    cfg.client_id = CLIENT_ID;
    cfg.client_secret = CLIENT_SECRET;
    cfg.want_transcripts = false;
    cfg.max_message_size = 64 * 1024;
    rtms::ClientCallbacks cb;
    cb.on_audio = [&cap] (const rtms::AudioFrame &f) {
      cap.pcm[*f.channel_key].append ((const char *) f.pcm, f.size);
    };
    cb.on_closed = [&cap] (const rtms::ClientError *e) {
      cap.closed = true;
      if (e) {
        cap.failed = true;
        cap.error = *e;
      }
    };
    rtms::Client client (ctx, cfg, cb);
    client.start ();
    gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
    while (!cap.closed && g_get_monotonic_time () < deadline)
      g_main_context_iteration (ctx, TRUE);
    cap.counters = client.counters ();
    EXPECT_EQ (server.media_handshakes, 3);
  }
  g_main_context_pop_thread_default (ctx);
  g_main_context_unref (ctx);
  ASSERT_TRUE (cap.closed);
  EXPECT_FALSE (cap.failed) << cap.error.message;
  EXPECT_EQ (cap.counters.reconnects, 1u);
  EXPECT_EQ (cap.counters.frames, 1u);
  EXPECT_EQ (cap.pcm["c1"].size (), 640u);
  EXPECT_EQ (cap.counters.oversize, 1u);
  std::string closed = log.find (
      "media WebSocket closed by the server: code 1009, message too big");
  EXPECT_NE (closed.find ("reconnecting media in 3000 ms"), std::string::npos)
      << log.all ();
  std::string line = log.find ("DUPLICATE_MEDIA_DATA_CONNECTION");
  EXPECT_NE (line.find ("reconnecting media in 250 ms"), std::string::npos)
      << log.all ();
}

/* ---- issue 9: reconnects fit Zoom's windows, detach, superseded -------- */

namespace {

/* A client on the caller's thread-default context (several may share it). */
struct LiveClient {
  Capture cap;
  std::vector<rtms::Outage> outages;
  std::unique_ptr<rtms::Client> client;
  guint64 frames = 0;

  LiveClient (GMainContext *ctx, const std::string &url, const Stream &st)
  {
    rtms::ClientConfig cfg;
    cfg.signaling_url = url;
    cfg.product = rtms::Product::CONTACT_CENTER;
    cfg.id_value = st.engagement_id;
    cfg.rtms_stream_id = st.rtms_stream_id;
    cfg.client_id = CLIENT_ID;
    cfg.client_secret = CLIENT_SECRET;
    rtms::ClientCallbacks cb;
    cb.on_ready = [this] (const rtms::AudioParams &) { cap.ready = true; };
    cb.on_audio = [this] (const rtms::AudioFrame &f) {
      cap.pcm[*f.channel_key].append ((const char *) f.pcm, f.size);
      frames++;
    };
    cb.on_closed = [this] (const rtms::ClientError *e) {
      cap.closed = true;
      if (e) {
        cap.failed = true;
        cap.error = *e;
      }
    };
    cb.on_outage = [this] (const rtms::Outage &o) { outages.push_back (o); };
    client = std::make_unique<rtms::Client> (ctx, cfg, cb);
    client->start ();
  }
};

bool
iterate_until (GMainContext *ctx, const std::function<bool ()> &done,
    int timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  while (!done ()) {
    if (g_get_monotonic_time () > deadline)
      return false;
    g_main_context_iteration (ctx, FALSE);
    if (!done ())
      g_usleep (1000);
  }
  return true;
}

} // namespace

/* docs/protocol.md §4.9 "Retry until the grace window closes": the attempt
 * times for Zoom's windows (30 s media, 60 s signaling) and a range of
 * configured ones. The old backoff (+3, +9, +21, +45 s) fails both: its last
 * attempt was 9 s (media) and 15 s (signaling) before the deadline. */
TEST (ReconnectSchedule, FitsTheGraceWindows)
{
  EXPECT_EQ (rtms::reconnect_schedule (30000), (std::vector<guint> { 3000,
          9000, 15000, 20000, 25000, 29000 }));
  EXPECT_EQ (rtms::reconnect_schedule (60000), (std::vector<guint> { 3000,
          9000, 21000, 45000, 50000, 55000, 59000 }));
  for (guint grace = 2000; grace <= 300000; grace += 500) {
    auto t = rtms::reconnect_schedule (grace);
    ASSERT_FALSE (t.empty ()) << grace;
    EXPECT_LT (t.back (), grace) << grace;
    EXPECT_GE (t.back () + 2000, grace) << grace;   /* within the final 2 s */
    EXPECT_LE (t.front (), 3000u) << grace;
    for (size_t i = 1; i < t.size (); i++) {
      EXPECT_GT (t[i], t[i - 1]) << grace;
      EXPECT_LE (t[i] - t[i - 1], 30000u) << grace;
      if (t[i - 1] + 15000 >= grace) {        /* in the last 15 s */
        EXPECT_LE (t[i] - t[i - 1], 5000u) << grace << " attempt " << i;
      }
    }
    /* the first attempt inside the last 15 s comes at its start */
    if (grace > 15000) {
      auto it = std::find_if (t.begin (), t.end (), [grace] (guint x) {
            return x + 15000 >= grace; });
      ASSERT_NE (it, t.end ());
      EXPECT_LE (*it + 15000, grace + 5000) << grace;
    }
  }
  EXPECT_EQ (rtms::reconnect_schedule (800), (std::vector<guint> { 400 }));
}

/* Detach is not stop (design.md "Lifetimes"): detach() closes the sockets
 * without msg 21, so the sim keeps the stream (its signaling grace) and a
 * second client rejoins it and receives the rest: the two captures together
 * are every byte the sim sent, and the stream ends with the call's own stop
 * reason (21 CUSTOMER_DISCONNECTED), not 20 RECEIVER_REQUEST_CLOSE. Before,
 * the only ending was close (true): msg 21, stop reason 20, the second
 * client refused. */
TEST (Client, DetachKeepsTheStreamForAnotherClient)
{
  TempDir dump;
  /* --replay-gap: packets that fall due between a's detach and b's join
   * are sent to b (without it a slow machine loses one to the gap) */
  Sim sim (sim_args ({ "--speed", "1", "--duration", "4", "--replay-gap",
          "--dump-dir", dump.path.c_str () }));
  ASSERT_NE (sim.stream (0), nullptr);
  Stream st = stream_of (sim);
  GMainContext *ctx = g_main_context_new ();
  g_main_context_push_thread_default (ctx);
  {
    auto a = std::make_unique<LiveClient> (ctx, sim.signaling_url (), st);
    ASSERT_TRUE (iterate_until (ctx, [&] { return a->frames >= 60; }, 20000));
    a->client->detach ();
    ASSERT_TRUE (iterate_until (ctx, [&] { return a->cap.closed; }, 5000));
    EXPECT_FALSE (a->cap.failed);
    EXPECT_EQ (a->client->counters ().close_requests, 0u);
    LiveClient b (ctx, sim.signaling_url (), st);
    ASSERT_TRUE (iterate_until (ctx, [&] { return b.cap.closed; }, 30000));
    EXPECT_FALSE (b.cap.failed) << b.cap.error.message;
    /* a + b = everything, per channel (the sim buffers the gap: §3.3) */
    Capture both;
    for (auto *c : { &a->cap, &b.cap })
      for (auto &kv : c->pcm)
        both.pcm[kv.first] += kv.second;
    expect_pcm_equals_dump (sim, dump.path, st, both);
  }
  g_main_context_pop_thread_default (ctx);
  g_main_context_unref (ctx);
  EXPECT_EQ (sim.wait_exit (10000), 0);
  auto sent = sent_json (dump.path, st);
  EXPECT_EQ (sent->integer ("stop_reason"), 21);
  EXPECT_EQ (sent->integer ("signaling_handshakes"), 2);
}


/* A streaming client attaches no GSource of its own (issue 12: GLib visits
 * every source of a context on every wake-up): its timers (the idle
 * watchdog) are on the context's one timer source (rtms-timers.h) and its
 * sockets in the context's one WsPoller. Three streaming clients on a
 * context have as many sources as one. */
TEST (Client, StreamingClientsAttachNoSourceOfTheirOwn)
{
  Sim sim (sim_args ({ "--speed", "1", "--duration", "8", "--engagements",
          "3" }));
  ASSERT_NE (sim.stream (2), nullptr);
  GMainContext *ctx = g_main_context_new ();
  g_main_context_push_thread_default (ctx);
  {
    std::vector<std::unique_ptr<LiveClient>> clients;
    auto stream = [&] (guint i) {
      JsonObject *s = sim.stream (i);
      return Stream { obj_str (s, "engagement_id"),
        obj_str (s, "rtms_stream_id") };
    };
    clients.push_back (std::make_unique<LiveClient> (ctx,
            sim.signaling_url (), stream (0)));
    ASSERT_TRUE (iterate_until (ctx, [&] { return clients[0]->frames >= 5; },
            20000));
    guint one = count_sources (ctx);
    for (guint i = 1; i < 3; i++)
      clients.push_back (std::make_unique<LiveClient> (ctx,
              sim.signaling_url (), stream (i)));
    ASSERT_TRUE (iterate_until (ctx, [&] {
          return clients[1]->frames >= 5 && clients[2]->frames >= 5;
        }, 20000));
    guint three = count_sources (ctx);
    printf ("sources of the context: %u with 1 streaming client, %u with 3\n",
        one, three);
    EXPECT_EQ (three, one) << "sources with 1 streaming client: " << one
        << ", with 3: " << three;
    EXPECT_LE (one, 3u) << "the poller, the timer source (and GLib's own)";
    for (auto &c : clients)
      EXPECT_EQ (c->client->state (), rtms::ClientState::STREAMING);
    for (auto &c : clients)
      c->client->detach ();
    ASSERT_TRUE (iterate_until (ctx, [&] {
          for (auto &c : clients)
            if (!c->cap.closed)
              return false;
          return true;
        }, 10000));
  }
  g_main_context_pop_thread_default (ctx);
  g_main_context_unref (ctx);
}

/* close (true) is still the stop: msg 21 sent and counted, the stream ends
 * with stop reason 20. */
TEST (Client, CloseWithRequestSendsMsg21)
{
  TempDir dump;
  Sim sim (sim_args ({ "--speed", "1", "--duration", "30", "--dump-dir",
          dump.path.c_str () }));
  ASSERT_NE (sim.stream (0), nullptr);
  Stream st = stream_of (sim);
  GMainContext *ctx = g_main_context_new ();
  g_main_context_push_thread_default (ctx);
  {
    LiveClient a (ctx, sim.signaling_url (), st);
    ASSERT_TRUE (iterate_until (ctx, [&] { return a.frames >= 20; }, 20000));
    a.client->close (true, 1000);
    ASSERT_TRUE (iterate_until (ctx, [&] { return a.cap.closed; }, 5000));
    EXPECT_EQ (a.client->counters ().close_requests, 1u);
  }
  g_main_context_pop_thread_default (ctx);
  g_main_context_unref (ctx);
  EXPECT_EQ (sim.wait_exit (10000), 0);
  EXPECT_EQ (sent_json (dump.path, st)->integer ("stop_reason"), 20);
}

/* Two consumers of one stream with Zoom's "kick the older connection"
 * (zoomrtms-sim --duplicate-signal kick): the older client is superseded —
 * it fails with ClientError::superseded and never reconnects (no attempt,
 * no outage), so the newer one keeps the stream to its end: exactly two
 * signaling handshakes on the sim's side. Before, the kicked client
 * reconnected after 3 s and kicked the other back, every 3 s. */
TEST (Client, KickedByANewerHandshakeIsSupersededAndDoesNotReconnect)
{
  TempDir dump;
  Sim sim (sim_args ({ "--speed", "1", "--duration", "8",
          "--duplicate-signal", "kick", "--dump-dir", dump.path.c_str () }));
  ASSERT_NE (sim.stream (0), nullptr);
  Stream st = stream_of (sim);
  GMainContext *ctx = g_main_context_new ();
  g_main_context_push_thread_default (ctx);
  {
    LiveClient a (ctx, sim.signaling_url (), st);
    ASSERT_TRUE (iterate_until (ctx, [&] { return a.frames >= 20; }, 20000));
    LiveClient b (ctx, sim.signaling_url (), st);
    ASSERT_TRUE (iterate_until (ctx, [&] { return a.cap.closed; }, 10000));
    EXPECT_TRUE (a.cap.failed);
    EXPECT_TRUE (a.cap.error.superseded) << a.cap.error.message;
    EXPECT_EQ (a.client->counters ().attempts, 0u);
    EXPECT_TRUE (a.outages.empty ());
    ASSERT_TRUE (iterate_until (ctx, [&] { return b.cap.closed; }, 30000));
    EXPECT_FALSE (b.cap.failed) << b.cap.error.message;
    EXPECT_EQ (b.client->counters ().attempts, 0u);
    EXPECT_EQ (a.client->state (), rtms::ClientState::FAILED);
  }
  g_main_context_pop_thread_default (ctx);
  g_main_context_unref (ctx);
  EXPECT_EQ (sim.wait_exit (10000), 0);
  auto sent = sent_json (dump.path, st);
  EXPECT_EQ (sent->integer ("signaling_handshakes"), 2);
  EXPECT_EQ (sent->integer ("stop_reason"), 21);
}

/* An outage and its recovery are reported once each through on_outage
 * (start: cause, epoch ms; end: recovered), and the audio of the outage is
 * not lost (the sim buffers it, §3.3; at most the packets the thawed sim
 * writes into the dropped socket): the sim is frozen (SIGSTOP) long
 * enough for the idle watchdog (1 s here) to declare the signaling
 * connection lost, then thawed; the reconnection schedule's first attempt
 * (+3 s) or a later one gets through. */
TEST (Client, OutageIsReportedAtItsStartAndEnd)
{
  TempDir dump;
  /* --replay-gap: the sim sends what fell due while we were away (Zoom's
   * behaviour is unknown, docs/protocol.md §11 #12) */
  Sim sim (sim_args ({ "--speed", "1", "--duration", "8", "--replay-gap",
          "--dump-dir", dump.path.c_str () }));
  ASSERT_NE (sim.stream (0), nullptr);
  Stream st = stream_of (sim);
  GMainContext *ctx = g_main_context_new ();
  g_main_context_push_thread_default (ctx);
  {
    rtms::ClientConfig cfg;
    cfg.signaling_url = sim.signaling_url ();
    cfg.product = rtms::Product::CONTACT_CENTER;
    cfg.id_value = st.engagement_id;
    cfg.rtms_stream_id = st.rtms_stream_id;
    cfg.client_id = CLIENT_ID;
    cfg.client_secret = CLIENT_SECRET;
    cfg.idle_timeout_ms = 1000;
    Capture cap;
    std::vector<rtms::Outage> outages;
    guint64 frames = 0;
    rtms::ClientCallbacks cb;
    cb.on_audio = [&] (const rtms::AudioFrame &f) {
      cap.pcm[*f.channel_key].append ((const char *) f.pcm, f.size);
      frames++;
    };
    cb.on_closed = [&] (const rtms::ClientError *e) {
      cap.closed = true;
      if (e) {
        cap.failed = true;
        cap.error = *e;
      }
    };
    cb.on_outage = [&] (const rtms::Outage &o) { outages.push_back (o); };
    /* issue 11: the client's lines go to on_log when it is set (the
     * element routes them into GST_DEBUG), not to g_log () */
    std::vector<std::pair<GLogLevelFlags, std::string>> logged;
    cb.on_log = [&] (GLogLevelFlags level, const std::string &line) {
      logged.push_back ({level, line});
    };
    ClientLog glog;
    rtms::Client client (ctx, cfg, cb);
    client.start ();
    ASSERT_TRUE (iterate_until (ctx, [&] { return frames >= 50; }, 20000));
    sim.send_signal (SIGSTOP);
    bool lost = iterate_until (ctx, [&] { return !outages.empty (); }, 10000);
    sim.send_signal (SIGCONT);
    ASSERT_TRUE (lost) << "the idle watchdog did not fire";
    ASSERT_TRUE (iterate_until (ctx, [&] { return cap.closed; }, 60000));
    EXPECT_FALSE (cap.failed) << cap.error.message;
    ASSERT_EQ (outages.size (), 2u);
    EXPECT_FALSE (outages[0].ended);
    EXPECT_EQ (outages[0].cause, rtms::OutageCause::SIGNALING);
    EXPECT_GT (outages[0].start_ms, 0);
    EXPECT_TRUE (outages[1].ended);
    EXPECT_TRUE (outages[1].recovered);
    EXPECT_EQ (outages[1].start_ms, outages[0].start_ms);
    EXPECT_GE (outages[1].end_ms, outages[1].start_ms + 2500);  /* +3 s */
    /* the cause, for the element's warning */
    EXPECT_NE (outages[0].what.find ("(idle watchdog)"), std::string::npos)
        << outages[0].what;
    EXPECT_EQ (outages[1].what, "");
    bool schedule = false;
    for (auto &l : logged)
      if (l.second.find ("reconnecting signaling and media in") != std::string::npos &&
          l.second.find (st.rtms_stream_id) != std::string::npos) {
        schedule = true;
        EXPECT_EQ (l.first, G_LOG_LEVEL_MESSAGE);
      }
    EXPECT_TRUE (schedule) << logged.size () << " lines";
    EXPECT_EQ (glog.all (), "");
    rtms::ClientCounters n = client.counters ();
    EXPECT_EQ (n.reconnects, 1u);
    EXPECT_GE (n.attempts, 1u);
    /* the audio of the outage came after it (the sim buffered it): at most
     * the packet or two the thawed sim wrote into the socket we had
     * dropped are missing (what Zoom would lose too) */
    JsonArray *channels = json_object_get_array_member (sim.stream (0),
        "channels");
    for (guint i = 0; i < 2; i++) {
      JsonObject *ch = json_array_get_object_element (channels, i);
      std::string sent = read_file (dump.path + "/" + st.rtms_stream_id +
          "/" + obj_str (ch, "role") + ".pcm");
      const std::string &got = cap.pcm[obj_str (ch, "channel_id")];
      EXPECT_LE (got.size (), sent.size ());
      EXPECT_GE (got.size () + 2 * 640, sent.size ()) << obj_str (ch, "role");
    }
  }
  g_main_context_pop_thread_default (ctx);
  g_main_context_unref (ctx);
  EXPECT_EQ (sim.wait_exit (10000), 0);
}
