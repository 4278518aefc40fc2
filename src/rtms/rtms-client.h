/* zoomrtms — the RTMS client: signaling + media WebSockets over rtms-ws
 * (rtms-ws.h: our RFC 6455 transport on GIO, one WsPoller per context).
 *
 * One Client is one RTMS stream (one engagement or meeting). It runs the state
 * machine of docs/protocol.md §1 / §9.2:
 *
 *   CONNECTING_SIGNALING → msg 1 → msg 2 → msg 5 (event subscription)
 *   → CONNECTING_MEDIA → msg 3 → msg 4 → msg 7 on signaling → STREAMING
 *   → (msg 8 TERMINATED | msg 9 STOPPED | close()) → CLOSED
 *
 * It answers keep-alives (msg 12 → 13, echoing the timestamp) on both sockets,
 * runs the idle watchdog (no message of any kind for idle_timeout_ms, §3.9),
 * and delivers audio, transcripts, events and state changes through the
 * callbacks. After a remote stop it keeps reading the media sockets until
 * the server closes them (at most 2 s), so frames queued behind msg 8 are
 * delivered.
 *
 * Reconnection (docs/protocol.md §4.9): once streaming, a lost socket (or the
 * idle watchdog, or event 7 / stream state INTERRUPTED with reason 14 for
 * media) is re-established within the server's grace window
 * (ClientConfig::signaling_grace_ms, default 60 s, which redoes the full
 * handshake; ClientConfig::media_grace_ms, default 30 s, for media only: new
 * msg 3 + msg 7 on the last msg 2 URLs), at the times of
 * reconnect_schedule() — retried until the window has run out, the last
 * attempt 1 s before it ("Retry until the grace window closes", §4.9);
 * past it the client fails with STOP_AWAIT_RECONNECTION_TIMEOUT. Every
 * outage is reported through on_outage (start, then end). Deliberate stop
 * reasons (§2.7: msg 8 TERMINATED / msg 9 STOPPED with a reason outside
 * 10–19, 24) end the stream and are never retried. reconnect() is the
 * failover of §4.9 row 1 (a newer rtms_started with new server_urls).
 *
 * Superseded (docs/protocol.md §3.4, §9.1 "kick old"): when another
 * consumer runs the signaling handshake for the same stream, a server in
 * "kick the older connection" mode closes our signaling socket (and its
 * media sockets). zoomrtms-sim closes it with code 1008 (policy violation)
 * and the reason "replaced by a new signaling connection"; Zoom's text is
 * not documented [I], so a server close with code 1008, or a close reason
 * (either socket) that says "replaced", "kick", "superseded", "newer" or
 * "another connection" counts. The client then does NOT reconnect (that
 * would kick the other consumer in turn: ping-pong) and fails with
 * ClientError::superseded set.
 *
 * Detach is not stop (design.md "Lifetimes"): close (true) sends msg 21
 * STREAM_CLOSE_REQ, so Zoom ends the stream for good (stop reason 20
 * RECEIVER_REQUEST_CLOSE, §2.7, §3.8); detach () only closes the sockets, so
 * Zoom keeps the stream for its grace window and another client (a
 * restarted host) can rejoin it.
 * A message over the frame limit is skipped, the socket kept ("Frame
 * limits" below). During an outage a refusal
 * because the server still holds our old connection (msg 2
 * DUPLICATE_SIGNAL_REQUEST, msg 4 MEDIA_DATA_ALL_CONNECTION_EXIST /
 * DUPLICATE_MEDIA_DATA_CONNECTION, §3.10, §4.1) is retried after 250 ms,
 * doubling up to the backoff — a dirty close (no close frame) is noticed by
 * the server only when its TCP stack sees it. Every loss is logged with its
 * real cause: who closed (client or server), the close code and reason.
 * Before the first successful handshake any failure is final, except
 * DUPLICATE_SIGNAL_REQUEST, retried after 1.5, 3 and 6 s (§3.4).
 *
 * Threading: every WebSocket (rtms::WsConnection, one per socket; the
 * sockets of every client of a context share one WsPoller) and every
 * callback lives on the GMainContext given to the constructor (the shared
 * I/O context of the process, design.md "Threads"). The constructor,
 * start(), close() and the destructor must be called on that context's
 * thread (use IoContext::invoke_sync() from elsewhere).
 */
#pragma once

#include <gio/gio.h>
#include <glib.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rtms-messages.h"

namespace rtms {

/* Frame limits (bytes). docs/protocol.md §4.7: every message is one JSON
 * object in one WebSocket frame, media as base64 inside it.
 *
 * MAX_MESSAGE_SIZE_DEFAULT (4 MiB) is the one limit: the transport's
 * (rtms-ws.h WsConfig::max_message_bytes) and the decoder's (rtms-json.h
 * kMessageMaxBytes). The largest message the client uses is a msg 14 at the
 * most the protocol allows (§4.2: L16 at 48 kHz, stereo, send_rate 1000 ms):
 * 48000 × 2 channels × 2 bytes = 192,000 bytes of PCM, 256,000 of base64,
 * plus the envelope — 16× under the limit. Transcripts (msg 17) and control
 * messages are a few KB. A larger message — of any size, e.g. a deskshare
 * image (msg 16, §4.6) on a media_type 32 socket, up to ~20 MB as base64 —
 * is skipped by rtms-ws while it arrives: its payload bytes are discarded,
 * never buffered nor parsed, and the connection stays up (no 1009, no
 * reconnect). It is counted (ClientCounters::oversize and ::malformed),
 * reported through on_malformed, and logged as a warning (the first skipped
 * frame, then at most one warning per 10 s with the count). A fragmented
 * message is bounded as a whole (RFC 6455 §5.4), not per fragment. A value
 * above kMessageMaxBytes acts as kMessageMaxBytes. A close frame with code
 * 1009 from the server is an ordinary server close: logged with its code
 * and reason, reconnected with the §4.9 backoff. */
constexpr gsize MAX_MESSAGE_SIZE_DEFAULT = 4 * 1024 * 1024;

struct ClientConfig {
  std::string signaling_url;  /* wss:// or ws:// from the webhook server_urls */
  Product product = Product::CONTACT_CENTER;
  std::string id_value;       /* engagement_id / meeting_uuid / … verbatim */
  std::string rtms_stream_id;
  std::string client_id;
  std::string client_secret;  /* used only to sign; never logged */
  std::string signature;      /* optional precomputed signature (§2.2) */

  AudioParams audio;          /* requested; the msg 4 echo wins */
  bool want_audio = true;
  bool want_transcripts = true;
  TranscriptParams transcript;
  bool buffer_data = true;    /* §3.3 */
  /* event types sent in msg 5; empty = the product's defaults
   * (ZCC: 8–13, 18, 21; meeting: 2, 3, 4, 7). */
  std::vector<int> subscribe_events;

  /* trusted CA (PEM) for wss:// instead of the system store; "" = system.
   * Certificate verification cannot be turned off (rtms-ws.h). */
  std::string ca_file;
  /* ms: bounds each handshake step — TCP + TLS + HTTP upgrade of a socket
   * (rtms-ws.h WsConfig::connect_timeout_ms), and the upgrade plus the RTMS
   * handshake (msg 1/2, msg 3/4) of each phase; 5 s at most during an
   * outage (§4.9). */
  guint handshake_timeout_ms = 10000;
  guint idle_timeout_ms = 30000; /* §3.9 watchdog */
  StatusTable status_table = StatusTable::NEW; /* to name status codes */
  /* Largest message the client receives, bytes (> 0; values above
   * kMessageMaxBytes act as kMessageMaxBytes). A larger message is skipped
   * unread, counted (oversize and malformed) and warned about; the
   * connection stays up. See "Frame limits" above. */
  gsize max_message_size = MAX_MESSAGE_SIZE_DEFAULT;
  /* Zoom's grace windows (docs/protocol.md §3.9, §4.9), ms: how long after
   * a lost connection the client keeps trying (reconnect_schedule()). */
  guint media_grace_ms = 30000;
  guint signaling_grace_ms = 60000;
};

/* Times (ms after the start of an outage) at which the client tries to
 * reconnect within a grace window of @grace_ms (docs/protocol.md §4.9,
 * "Retry until the grace window closes"): 3 s, doubling (3, 9, 21, 45 s …,
 * at most 30 s apart) until the last 15 s of the window; from there at
 * most 5 s apart; the last attempt at @grace_ms − 1000 (for windows of at
 * most 1 s: one attempt at @grace_ms / 2). Strictly increasing, never
 * empty, every time < @grace_ms. E.g. 30000 → 3000, 9000, 15000, 20000,
 * 25000, 29000; 60000 → 3000, 9000, 21000, 45000, 50000, 55000, 59000. */
std::vector<guint> reconnect_schedule (guint grace_ms);

/* One interruption of the connection (on_outage). */
enum class OutageCause { MEDIA, SIGNALING };
const char *outage_cause_name (OutageCause c); /* "media", "signaling" */
struct Outage {
  OutageCause cause = OutageCause::MEDIA; /* at the end: the widest loss
                                             (media, then signaling too) */
  gint64 start_ms = 0;         /* epoch ms (wall clock) when it started */
  gint64 end_ms = 0;           /* epoch ms when it ended; 0 while ongoing */
  bool ended = false;
  bool recovered = false;      /* ended by streaming again (else: grace
                                  ran out, superseded, detach or close) */
  /* at the start: what was lost and how, for people (who closed, the
   * close code and reason, the idle watchdog, …); never contains secrets;
   * "" at the end */
  std::string what;
};

enum class ClientState {
  IDLE,
  CONNECTING_SIGNALING,
  CONNECTING_MEDIA,
  STREAMING,
  CLOSING,
  CLOSED,
  FAILED,
};
const char *client_state_name (ClientState s);

/* One decoded audio packet (msg 14). `pcm` is borrowed: valid only during the
 * callback (the client reuses its decode buffer). */
struct AudioFrame {
  const std::string *channel_key; /* channel_id (ZCC) or user_id (meetings) */
  const AudioData *packet;        /* the parsed message (user_name, …) */
  gint64 timestamp_ms;            /* RTMS epoch ms */
  const guint8 *pcm;              /* encoded bytes: S16LE for L16, one Opus
                                     packet for Opus; valid during on_audio
                                     only (the I/O thread's decode buffer,
                                     reused by the next packet) */
  gsize size;                     /* bytes */
};

/* Why a client stopped for good. */
struct ClientError {
  int code = 0;                /* RTMS_ERROR_* (rtms-messages.h) */
  int status_code = -1;        /* server status_code of msg 2/4, or -1 */
  int stop_reason = -1;        /* msg 8/9 reason, or -1 */
  /* what status_code means (classify_status(), docs/protocol.md §3.10) */
  StatusClass status_class = StatusClass::OTHER;
  std::string message;         /* for people; never contains secrets */
  /* kicked by a newer signaling handshake of another consumer (see
   * "Superseded" above): not retried */
  bool superseded = false;
};

struct ClientCallbacks {
  /* media handshake done: @negotiated is the msg 4 echo (defaults filled) */
  std::function<void (const AudioParams &negotiated)> on_ready;
  std::function<void (const AudioFrame &frame)> on_audio;
  std::function<void (const TranscriptData &t)> on_transcript;
  std::function<void (const EventUpdate &e)> on_event;
  std::function<void (const StreamStateUpdate &s)> on_stream_state;
  std::function<void (const SessionStateUpdate &s)> on_session_state;
  /* malformed frame skipped (bad JSON, bad base64, over max_message_size):
   * counted, stream goes on */
  std::function<void (const std::string &what)> on_malformed;
  /* the stream ended: @error is null after TERMINATED/STOPPED or close().
   * Fires once. Do not destroy the Client from inside a callback: defer it
   * (IoContext::invoke_async). */
  std::function<void (const ClientError *error)> on_closed;
  /* an outage began (ended false) or ended (ended true); once each. A
   * failover (reconnect()) is not reported. */
  std::function<void (const Outage &o)> on_outage;
  /* The client's own log lines (the reconnection schedule, skipped frames,
   * superseded, detach, failures) — one line of text without a newline,
   * never a secret; @level is G_LOG_LEVEL_WARNING, _MESSAGE, _INFO or
   * _DEBUG. Unset: g_log() in the domain "zoomrtms-client" (the default
   * GLib handler). The element routes them into its GStreamer debug
   * category, so GST_DEBUG drives them (design.md "Conventions"). Called
   * on the client's context; may be called from inside the other
   * callbacks. */
  std::function<void (GLogLevelFlags level, const std::string &line)> on_log;
};

/* Counters, readable from any thread. */
struct ClientCounters {
  guint64 frames = 0;          /* msg 14 received */
  guint64 transcripts = 0;     /* msg 17 */
  guint64 events = 0;          /* msg 6 */
  guint64 keep_alives = 0;     /* msg 12 answered */
  guint64 malformed = 0;       /* frames skipped (oversize included) */
  guint64 oversize = 0;        /* frames over max_message_size, skipped */
  guint64 reconnects = 0;      /* outages recovered: streaming again after a
                                  lost socket, the idle watchdog or a
                                  reconnect() (§4.9) */
  guint64 close_requests = 0;  /* msg 21 STREAM_CLOSE_REQ sent */
  guint64 attempts = 0;        /* reconnection attempts (connects started
                                  during outages) */
};

class Client
{
public:
  Client (GMainContext *context, ClientConfig config, ClientCallbacks callbacks);
  ~Client ();
  Client (const Client &) = delete;
  Client &operator= (const Client &) = delete;

  /* Opens the signaling WebSocket; the rest follows from the server. */
  void start ();
  /* Graceful close: with @send_close_req sends msg 21 and waits up to
   * @wait_ms for msg 22 before closing both sockets (§3.8). on_closed fires
   * with a null error. */
  void close (bool send_close_req, guint wait_ms = 1000);
  /* Detach (design.md "Lifetimes: detach is not stop"): closes both
   * sockets at once WITHOUT msg 21, so Zoom keeps the stream for its grace
   * window (§4.9) and a new client may rejoin it. on_closed fires with a
   * null error; an outage in progress ends unrecovered. */
  void detach ();
  /* The signaling URL in use (the last reconnect()'s, else the config's). */
  std::string signaling_url () const;
  /* §4.9 rows 1–2: close both sockets and run the full handshake again, on
   * @new_signaling_url if not empty. Keeps counters. */
  void reconnect (const std::string &new_signaling_url);

  ClientState state () const;
  ClientCounters counters () const;
  const AudioParams &negotiated () const;

  struct Impl;

private:
  std::unique_ptr<Impl> impl_;
};

/* The shared I/O contexts (design.md "Threads"): a small pool of threads,
 * each driving one GMainContext, shared by every client of the process.
 * get() hands them out round-robin, so N clients cost N/threads sockets per
 * context and never a thread per client.
 *
 * Pool size: $ZOOMRTMS_IO_THREADS, default the number of processors (at most
 * 4): one I/O thread saturates a core near 1000 engagements
 * (docs/benchmarks.md).
 * The threads are never stopped (the pool lives as long as the process). */
class IoContext
{
public:
  /* Returns the next context of the pool, starting the pool on first use. */
  static std::shared_ptr<IoContext> get ();
  ~IoContext ();

  GMainContext *context () const { return context_; }
  /* Runs @fn on the I/O thread and waits for it (runs inline if already on
   * it). */
  void invoke_sync (const std::function<void ()> &fn);
  /* Queues @fn on the I/O thread. */
  void invoke_async (std::function<void ()> fn);
  /* Runs @fn (@data) on this I/O thread once the current main-context
   * iteration is over (every ready socket read, every due timer run), in
   * the order deferred. For work that I/O callbacks make ready but must not
   * run inside them (zoomrtmssrc aligns and pushes there: threadshare's
   * "run the tasks after the reactor"): no allocation once the list has
   * grown, no syscall, no GSource. What is deferred while the deferred
   * work runs runs after the next iteration (which then does not block).
   * Call on this I/O thread only; the caller keeps @data alive until @fn
   * has run. */
  void defer (void (*fn) (gpointer data), gpointer data);
  /* The throttling wait, ms (threadshare's context-wait): after an
   * iteration that woke up less than this long after the previous one, the
   * thread sleeps the rest, so the sockets' data and the timers of that
   * time are handled in one wake-up. 0 = none. Process-wide, from
   * $ZOOMRTMS_CONTEXT_WAIT (ms, at most 100), default kDefaultContextWaitMs
   * (10: at 200 engagements 4–18 % less CPU per msg 14 and a third of the
   * context switches of 0, for +2 to +7 ms p50 latency; docs/benchmarks.md
   * "The throttling wait"). Adds up to that much latency to the packets
   * and timers of the I/O threads; an invoke_sync()/invoke_async() from
   * another thread ends the sleep. */
  static guint context_wait_ms ();
  static constexpr guint kDefaultContextWaitMs = 10;
  /* Periodic work of many users on one timer: @fn (@data) runs every
   * kTickMs (plus the throttling wait) on this I/O thread until
   * remove_tick (). One GSource per context instead of one per user: GLib
   * visits every source of a context on every iteration, so hundreds of
   * per-engagement timers cost on every wake-up (docs/benchmarks.md
   * "Shared threads"). I/O thread only; returns an id > 0. */
  guint add_tick (void (*fn) (gpointer data), gpointer data);
  /* Removes a tick (its @fn is not called again); I/O thread only. */
  void remove_tick (guint id);
  static constexpr guint kTickMs = 20;

  explicit IoContext (const char *name);

private:
  static gpointer thread_main (gpointer data);
  void run_deferred ();

  GMainContext *context_ = nullptr;
  GThread *thread_ = nullptr;
  std::atomic<bool> quit_ { false };
  /* defer(): I/O thread only */
  std::vector<std::pair<void (*) (gpointer), gpointer>> deferred_, running_;
  /* add_tick(): I/O thread only; removed entries have fn == nullptr until
   * the tick's loop is over */
  struct Tick {
    guint id;
    void (*fn) (gpointer);
    gpointer data;
  };
  std::vector<Tick> ticks_;
  guint next_tick_id_ = 1;
  GSource *tick_source_ = nullptr;
  bool in_tick_ = false;
  static gboolean on_tick (gpointer data);
  /* the throttling sleep, ended early by invoke_sync/invoke_async */
  void end_throttle ();
  std::mutex throttle_lock_;
  std::condition_variable throttle_cond_;
  bool throttle_woken_ = false;
};

} // namespace rtms
