/* zoomrtms-sim — Zoom's side of RTMS: the signaling and media WebSocket server
 * (docs/protocol.md §3, §4, §9.1 items 2–3).
 *
 * One SoupServer serves /signaling and /media/all|audio|transcript, ws:// or
 * wss://. Every prepared stream (one per engagement) plays the same call; its
 * frames are encoded once per negotiated format and sent by one timer for all
 * streams (design.md "Performance").
 */
#pragma once

#include <libsoup/soup.h>

#include <functional>
#include <list>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "rtms-messages.h"
#include "sim-call.h"
#include "sim-options.h"

namespace sim {

class Server;
struct Stream;
struct DumpJob;

/* One accepted WebSocket (signaling or media). */
struct Conn {
  Server *server = nullptr;
  SoupWebsocketConnection *ws = nullptr; /* owned ref */
  GSocket *socket = nullptr;             /* owned ref: the TCP socket (--outage) */
  bool signaling = true;
  std::string path;
  int media_mask = 0;                    /* rtms::MEDIA_AUDIO | MEDIA_TRANSCRIPT */
  Stream *stream = nullptr;              /* set once the handshake succeeded */
  bool handshaken = false;
  bool closing = false;
  gint64 accepted_us = 0;
  gint64 last_data_us = 0;               /* last media sent (keep-alive only when idle) */
  gint64 next_keepalive_us = 0;
  gint64 outstanding_keepalive = 0;      /* timestamp of the unanswered msg 12, 0 = none */
  int keepalive_misses = 0;
  gulong message_id = 0, closed_id = 0;
};

/* One channel of a stream: a ZCC channel_id, or a meeting user_id. */
struct StreamChannel {
  std::string channel_id;                /* ZCC channel_id / meeting user_id text */
  std::string role;                      /* customer | agent | mixed */
  std::string participant_mode;          /* caller | callee | "" */
  int party = -1;                        /* index into Call::parties, -1 = mixed */
  std::string prefix;                    /* msg 14 text up to the base64 data */
  gint64 base_ts = 0;                    /* epoch ms of frame 0 */
  guint64 sent = 0, muted = 0, duplicated = 0, malformed = 0;
  gint64 first_ts = -1;
  /* --stall: frames held since this index (-1 = none), count */
  gint64 stall_from = -1;
  guint64 stalled = 0;
  /* per frame index: 0 not sent (yet), 1 sent, 2 muted; the dump's PCM has
   * zeros wherever it is not 1 */
  std::vector<guint8> frame_state;
};

/* A time without a consumer (signaling or media lost, kicked, outage): the
 * packets of frames [from_frame, to_frame) were not sent then (or sent late,
 * in a burst, with --replay-gap). */
struct Gap {
  std::string cause;                     /* signaling | media | kick | outage-signaling | outage-media */
  size_t from_frame = 0, to_frame = 0;
  gint64 lost_real_ms = 0, resumed_real_ms = 0; /* epoch ms (0 = never resumed) */
  bool replayed = false;
};

struct Stream {
  enum class State { PREPARED, CONNECTED, STREAMING, ENDED };
  int index = 0;
  std::string id_key, id_value, rtms_stream_id, rtms_session_id;
  std::string session_key;               /* Video SDK sessions: the webhook's session_key */
  std::string handshake_id_key;          /* of the last accepted msg 1 */
  std::string channel_ids[2];            /* per party (ZCC) */
  State state = State::PREPARED;
  Conn *sig = nullptr;
  std::vector<Conn *> media;
  bool ready = false;                    /* msg 7 since the last msg 4 */
  bool buffer_data = true;               /* msg 1 (§3.3) */
  bool got_subscription = false;
  std::set<int> subscribed;
  bool started = false;                  /* first msg 7 handled: clocks run */
  /* negotiated audio */
  std::shared_ptr<PreparedAudio> audio;
  rtms::AudioParams audio_params;
  std::vector<StreamChannel> channels;
  bool dumped = false;
  gint64 start_us = 0;                   /* monotonic time of frame 0 */
  size_t next_frame = 0;
  size_t next_transcript = 0;
  size_t next_turn = 0;
  guint64 transcripts_sent = 0;
  gint64 sig_lost_us = 0, media_lost_us = 0;
  int stop_reason = -1;
  bool failed = false;
  std::string failure;
  gint64 connect_deadline_us = 0;        /* run: client must connect by then */
  std::string webhook_started;           /* the started webhook body */
  gint64 started_real_ms = 0;            /* epoch ms of frame 0 (0 = never) */
  gint64 ended_real_ms = 0;              /* epoch ms of the end (msg 8) */
  gint64 answered_due_us = 0;            /* --events-after-ms: monotonic time
                                            events 8/10 are due, 0 = sent */
  size_t next_hostile = 0;               /* next of Options::hostile_frames */
  guint64 hostile_sent = 0;
  guint64 signaling_handshakes = 0;      /* successful msg 1 → msg 2 */
  guint64 media_handshakes = 0;          /* successful msg 3 → msg 4 */
  guint64 kicks = 0;                     /* --duplicate-signal kick: consumers replaced */
  /* the consumer is gone since (monotonic µs; 0 = none) and why */
  gint64 gap_since_us = 0;
  size_t gap_from_frame = 0;
  std::string gap_cause;
  gint64 gap_lost_real_ms = 0;
  std::vector<Gap> gaps;
  size_t next_outage = 0;                /* next of Options::outages */

  bool wants_event (int event_type) const;
};

class Server {
 public:
  /* Called on the main context when a stream ended (or failed). */
  using StreamEnded = std::function<void (Stream &)>;

  Server (const Options &opts, const Call &call);
  ~Server ();
  Server (const Server &) = delete;
  Server &operator= (const Server &) = delete;

  /** start:
   * Listens on --listen/--port (wss with a generated certificate for --tls,
   * PEM written to --ca-out), prepares --engagements streams and writes
   * --ready-file. Returns: false with a GError.
   */
  bool start (GError **error);

  void set_stream_ended_cb (StreamEnded cb) { ended_cb_ = std::move (cb); }
  /* Called when a started stream lost its signaling connection
   * (the *_rtms_interrupted webhook, docs/protocol.md §4.9 row 2). */
  void set_stream_interrupted_cb (StreamEnded cb)
  {
    interrupted_cb_ = std::move (cb);
  }
  std::vector<std::unique_ptr<Stream>> &streams () { return streams_; }
  const std::string &signaling_url () const { return signaling_url_; }
  std::string stream_json (const Stream &s) const; /* ready-file entry */
  std::string gst_launch_line (const Stream &s) const;
  bool all_ended () const;
  /* Send lag of the audio frames: epoch ms sent − scheduled (the packet's
   * timestamp), 1 ms buckets, the last one = 1000 ms or more. */
  const std::vector<guint64> &send_lag_histogram () const { return lag_hist_; }
  /* HTTP 503 answers to WebSocket upgrades during --outage windows */
  guint64 outage_refusals () const { return outage_refusals_; }
  /* ends @s now as failed, with @reason (a stop reason) */
  void fail_stream (Stream &s, const std::string &why, int reason);

 private:
  friend struct ServerCallbacks;
  void on_websocket (SoupServerMessage *msg, const char *path,
      SoupWebsocketConnection *ws);
  void on_message (Conn *c, const char *text, gsize len);
  void on_closed (Conn *c);
  void handle_signaling_handshake (Conn *c, const rtms::Message &m);
  void handle_media_handshake (Conn *c, const rtms::Message &m);
  void handle_signaling (Conn *c, const rtms::Message &m);
  void send (Conn *c, const std::string &text);
  void close_conn (Conn *c, gushort code, const char *reason);
  void reject_signaling (Conn *c, int status);
  void reject_media (Conn *c, int status);
  Stream *find_stream (const std::string &rtms_stream_id);
  void maybe_start_streaming (Stream &s);
  void send_start_events (Stream &s);
  void send_answered_events (Stream &s);
  void send_event (Stream &s, const rtms::EventUpdate &ev);
  void end_stream (Stream &s, int reason, bool notify_client);
  void finish_stream (Stream &s);
  void build_channels (Stream &s);
  void write_dump_pcm (Stream &s, bool final = false,
      const std::string &json = std::string ());
  void queue_dump (DumpJob *job);
  size_t pcm_frames (const Stream &s) const;
  void write_dump_json (Stream &s);
  void reset_stream (Stream &s);
  Conn *audio_conn (Stream &s);
  Conn *transcript_conn (Stream &s);
  bool tick ();
  bool housekeeping ();
  void send_frames (Stream &s, gint64 now_us);
  bool send_hostile_until (Stream &s, gint64 t_ms, Conn *ac, gint64 stamp);
  bool send_frame (Stream &s, size_t ci, size_t k, Conn *ac, gint64 real_ms);
  void send_transcripts_until (Stream &s, gint64 call_ms, Conn *tc);
  bool is_muted (const StreamChannel &ch, gint64 t_ms) const;
  bool is_stalled (const StreamChannel &ch, gint64 t_ms) const;
  void gap_begin (Stream &s, const char *cause);
  void gap_end (Stream &s);
  void start_outage (Stream &s, const Outage &o);
  void drop_conn (Conn *c);
  void on_upgrade_request (SoupServerMessage *msg, const char *path);
  std::string webhook_body (const Stream &s, const char *kind,
      int stop_reason) const;

  const Options &opts_;
  const Call &call_;
  AudioCache cache_;
  const rtms::StatusCodes &codes_;
  SoupServer *soup_ = nullptr;
  std::string scheme_, host_;
  int port_ = 0;
  std::string signaling_url_;
  std::vector<std::unique_ptr<Stream>> streams_;
  std::list<std::unique_ptr<Conn>> conns_;
  guint tick_id_ = 0, housekeeping_id_ = 0;
  std::string buf_;                      /* reused msg 14 text */
  std::vector<guint64> lag_hist_ = std::vector<guint64> (1001, 0);
  StreamEnded ended_cb_, interrupted_cb_;
  /* --outage: upgrades refused (HTTP 503) until these monotonic µs */
  gint64 refuse_signaling_until_us_ = 0, refuse_media_until_us_ = 0;
  guint64 outage_refusals_ = 0;
  GThreadPool *dump_pool_ = nullptr;     /* --dump-dir writer (one thread) */
};

/** json_escape:
 * Returns: @s as the inside of a JSON string literal.
 */
std::string json_escape (const std::string &s);

} // namespace sim
