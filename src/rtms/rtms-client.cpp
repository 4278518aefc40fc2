/* zoomrtms — RTMS client state machine over rtms-ws WebSockets
 * (rtms-ws.h, docs/websocket.md). See rtms-client.h; rules from
 * docs/protocol.md §3, §4, §9.2, §9.4. */
#include "rtms-client.h"

#include <map>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstring>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>

#include "rtms-auth.h"
#include "rtms-json.h"
#include "rtms-timers.h"
#include "rtms-ws.h"

#define G_LOG_DOMAIN_CLIENT "zoomrtms-client"

namespace rtms {

static_assert (MAX_MESSAGE_SIZE_DEFAULT == kMessageMaxBytes,
    "the client's message limit is the decoder's (rtms-client.h)");

const char *
client_state_name (ClientState s)
{
  switch (s) {
    case ClientState::IDLE: return "IDLE";
    case ClientState::CONNECTING_SIGNALING: return "CONNECTING_SIGNALING";
    case ClientState::CONNECTING_MEDIA: return "CONNECTING_MEDIA";
    case ClientState::STREAMING: return "STREAMING";
    case ClientState::CLOSING: return "CLOSING";
    case ClientState::CLOSED: return "CLOSED";
    case ClientState::FAILED: return "FAILED";
  }
  return "UNKNOWN";
}

namespace {

std::vector<int>
default_subscriptions (Product product)
{
  if (product == Product::CONTACT_CENTER)
    return { ZCC_CONSUMER_ANSWERED, ZCC_CONSUMER_END, ZCC_USER_ANSWERED,
      ZCC_USER_END, ZCC_USER_HOLD, ZCC_USER_UNHOLD, ZCC_TRANSFER_INITIATED,
      ZCC_TRANSFER_COMPLETED };
  return { EVENT_ACTIVE_SPEAKER_CHANGE, EVENT_PARTICIPANT_JOIN,
    EVENT_PARTICIPANT_LEAVE, EVENT_MEDIA_CONNECTION_INTERRUPTED };
}

/* A server close that means "another consumer's newer signaling handshake
 * replaced this connection" (rtms-client.h, "Superseded"). */
bool
kicked_by_newer_handshake (gushort code, const char *reason, bool signaling)
{
  if (signaling && code == WS_CLOSE_POLICY_VIOLATION)
    return true;
  if (!reason || !*reason)
    return false;
  g_autofree char *low = g_ascii_strdown (reason, -1);
  for (const char *w : { "replaced", "kick", "superseded", "newer",
          "another connection" })
    if (strstr (low, w))
      return true;
  return false;
}

/* While reconnecting, a handshake that hangs must not eat the attempts
 * near the end of the grace window (at most 5 s apart). */
constexpr guint OUTAGE_HANDSHAKE_TIMEOUT_MS = 5000;

/* One WsPoller per GMainContext (docs/websocket.md §3: GLib's poll() scans
 * every fd of a context on every wake-up; an epoll set makes that O(ready)),
 * shared by every Client of that context and destroyed with the last
 * connection using it (on the context's thread: connections are destroyed
 * there). $ZOOMRTMS_WS_POLLER=0 gives every connection a GSource of its own
 * instead (for measurements). Call on @ctx's thread. */
std::shared_ptr<WsPoller>
poller_for (GMainContext *ctx)
{
  static const bool use = [] {
    const char *v = g_getenv ("ZOOMRTMS_WS_POLLER");
    return !(v && !strcmp (v, "0"));
  } ();
  if (!use)
    return nullptr;
  static std::mutex lock;
  /* the poller holds a ref on its context, so a live entry's key is a live
   * context; an expired entry is replaced */
  static auto *pollers = new std::map<GMainContext *, std::weak_ptr<WsPoller>> ();
  std::lock_guard<std::mutex> lk (lock);
  auto &w = (*pollers)[ctx];
  auto p = w.lock ();
  if (!p) {
    p = std::make_shared<WsPoller> (ctx);
    w = p;
    /* forget the pollers of contexts gone since (tests make many) */
    for (auto it = pollers->begin (); it != pollers->end ();)
      it = it->second.expired () ? pollers->erase (it) : std::next (it);
  }
  return p;
}

} // namespace

std::vector<guint>
reconnect_schedule (guint grace_ms)
{
  std::vector<guint> times;
  if (grace_ms <= 1000) {
    times.push_back (grace_ms / 2);
    return times;
  }
  const guint last = grace_ms - 1000;
  const guint zone = grace_ms > 15000 ? grace_ms - 15000 : 0;
  guint t = 0, d = 3000;
  for (;;) {
    guint nt;
    if (t < zone) {
      nt = std::min (t + d, zone);
      d = std::min<guint> (d * 2, 30000);
    } else {
      nt = t + (t == 0 ? 3000 : 5000);
    }
    if (nt >= last) {
      times.push_back (last);
      return times;
    }
    times.push_back (nt);
    t = nt;
  }
}

const char *
outage_cause_name (OutageCause c)
{
  return c == OutageCause::MEDIA ? "media" : "signaling";
}


/* One WebSocket of the client (signaling or media) and what its callbacks
 * need to find their way back. Owned by Impl (sig, media[i].sock) while in
 * use, then by Impl::graveyard until its close has finished: a WsConnection
 * is never destroyed inside its own callbacks (rtms-ws.h "Threading"). */
struct Sock {
  Client::Impl *self = nullptr;
  bool signaling = false;
  bool opened = false;          /* on_open fired (the upgrade succeeded) */
  bool dropped = false;         /* no longer the client's: callbacks ignored */
  int in_callback = 0;          /* > 0 while one of its callbacks runs */
  std::unique_ptr<WsConnection> ws;
};

struct MediaConn {
  MediaConnectionPlan plan;
  std::unique_ptr<Sock> sock;
  bool handshaken = false;
};

struct alignas (64) Client::Impl {
  /* What every msg 14 touches (on_message, handle_media), in the first
   * cache line: the clients of an I/O thread take turns, so a client's
   * state is out of the cache when its next packet comes. */
  bool finished = false;
  gint64 last_rx_us = 0;
  std::atomic<guint64> n_frames { 0 };   /* read from other threads */
  std::function<void (const AudioFrame &)> on_audio;  /* cb.on_audio */

  GMainContext *ctx;
  ClientConfig cfg;
  ClientCallbacks cb;
  std::string id_key;
  std::string signature;

  std::shared_ptr<WsPoller> poller;  /* poller_for (ctx), or null */
  std::unique_ptr<Sock> sig;
  std::vector<MediaConn> media;
  /* sockets dropped and still closing; destroyed by reap () */
  std::vector<std::unique_ptr<Sock>> graveyard;
  GSource *reaper = nullptr;
  MediaServerUrls media_urls;

  std::atomic<ClientState> state { ClientState::IDLE };
  AudioParams negotiated;
  bool ever_streamed = false;
  bool closing = false;
  bool draining = false;
  guint duplicate_retries = 0;  /* DUPLICATE_SIGNAL_REQUEST on first connect */
  static constexpr guint MAX_DUPLICATE_RETRIES = 3; /* 1.5, 3, 6 s (§3.4) */
  std::optional<ClientError> drain_error;

  /* counters read from other threads */
  std::atomic<guint64> n_transcripts { 0 }, n_events { 0 },
      n_keep_alives { 0 }, n_malformed { 0 }, n_oversize { 0 },
      n_reconnects { 0 }, n_close_requests { 0 }, n_attempts { 0 };
  gint64 outage_start_ms = 0;   /* epoch ms of the outage in progress */
  bool sig_handshaken = false;  /* msg 2 OK on the current signaling socket */
  /* on_outage reported the start of the outage in progress (a failover,
   * reconnect(), is not an outage of ours: not reported) */
  bool outage_reported = false;
  std::mutex url_lock;          /* cfg.signaling_url vs signaling_url () */
  /* rate limit of the skipped-frame warning (first, then one per 10 s) */
  static constexpr gint64 SKIP_WARN_INTERVAL_US = 10 * G_USEC_PER_SEC;
  gint64 skip_warned_us = 0;
  guint64 skipped_since_warning = 0;
  /* retries after "duplicate connection" refusals during an outage */
  guint duplicate_outage_retries = 0;

  /* How soon connection_lost() tries again. */
  enum class Retry {
    BACKOFF,   /* §4.9: 3 s, doubling, capped at 30 s */
    SOON,      /* the server still holds our old connection (a duplicate
                  refusal during an outage): 250 ms, doubling, at most the
                  backoff */
  };

  /* on the context's shared timer source (rtms-timers.h): a client
   * attaches no GSource of its own while it streams */
  std::shared_ptr<TimerQueue> timers;
  Timer handshake_timer;
  Timer watchdog;
  Timer retry_timer;
  Timer close_timer;
  guint attempt = 0;
  gint64 outage_since_us = 0;   /* 0 = no outage in progress */
  bool media_only_outage = false;

  /* The message being handled: one per thread, not per client, reused
   * (keeps its string capacities): parsing writes the base64 payload and
   * ids into memory that stays in the cache from one client's packet to
   * the next (hundreds of clients per I/O thread), and an idle client
   * holds no payload-sized buffer. Used from on_message () down only;
   * callbacks get references into it valid during the call. */
  static inline thread_local Message rx;

  Impl (GMainContext *c, ClientConfig config, ClientCallbacks callbacks)
      : ctx (g_main_context_ref (c)), cfg (std::move (config)),
        cb (std::move (callbacks))
  {
    id_key = product_id_key (cfg.product);
    signature = cfg.signature.empty ()
        ? handshake_signature (cfg.client_id, cfg.client_secret, cfg.id_value,
              cfg.rtms_stream_id)
        : cfg.signature;
    if (cfg.subscribe_events.empty ())
      cfg.subscribe_events = default_subscriptions (cfg.product);
    negotiated = cfg.audio;
    on_audio = cb.on_audio;
    poller = poller_for (ctx);
    timers = TimerQueue::for_context (ctx);
  }

  ~Impl ()
  {
    stop_timer (&handshake_timer);
    stop_timer (&watchdog);
    stop_timer (&retry_timer);
    stop_timer (&close_timer);
    drop_connections ();
    stop_timer (&reaper);
    graveyard.clear ();         /* not inside a WsConnection callback here */
    poller.reset ();
    timers.reset ();            /* after the Timers above were stopped */
    g_main_context_unref (ctx);
  }

  /* ---- helpers ---- */

  static void
  stop_timer (GSource **s)
  {
    if (*s) {
      g_source_destroy (*s);
      g_source_unref (*s);
      *s = nullptr;
    }
  }

  static void
  stop_timer (Timer *t)
  {
    t->stop ();
  }

  /* Arms @t: @fn (this) in @ms ms (rtms-timers.h). */
  void
  start_timer (Timer *t, guint ms, Timer::Fn fn)
  {
    t->start (timers.get (), ms, fn, this);
  }

  /* Takes @sock out of use: its callbacks are ignored from now on, a close
   * frame (1000, RFC 6455 §5.5.1) is sent if it is open, and the socket is
   * destroyed — closed without waiting for the server's close frame — at
   * once, or, if this runs inside one of its own callbacks (rtms-ws.h
   * forbids destroying it there), by on_reap () on the next iteration of
   * the context. Not waiting matters: whatever the server writes into a
   * socket we no longer read is lost, so the server must see it closed as
   * soon as possible (an outage, a detach: it then buffers for the next
   * consumer, §3.3, §4.9). Measured: closing on the next iteration instead
   * of at once lost ~1 s of audio when a paused server resumed in between
   * (Client.OutageIsReportedAtItsStartAndEnd). */
  void
  drop_ws (std::unique_ptr<Sock> *sock)
  {
    if (!*sock)
      return;
    Sock *s = sock->get ();
    s->dropped = true;
    WsState st = s->ws->state ();
    if (st == WsState::OPEN)
      s->ws->close (WS_CLOSE_NORMAL);
    if (s->in_callback == 0) {
      sock->reset ();           /* ~WsConnection: no callback fires */
      return;
    }
    graveyard.push_back (std::move (*sock));
    schedule_reap ();
  }

  void
  schedule_reap ()
  {
    if (reaper)
      return;
    reaper = g_idle_source_new ();
    g_source_set_priority (reaper, G_PRIORITY_DEFAULT);
    g_source_set_callback (reaper, on_reap, this, nullptr);
    g_source_attach (reaper, ctx);
  }

  /* Destroys the dropped sockets (outside their callbacks: an idle source
   * of the context). A socket still CLOSING is closed without waiting for
   * the server's close frame (rtms-ws.h ~WsConnection, no callback). */
  static gboolean
  on_reap (gpointer data)
  {
    auto self = static_cast<Impl *> (data);
    g_source_unref (self->reaper);
    self->reaper = nullptr;
    auto dead = std::move (self->graveyard);
    self->graveyard.clear ();
    dead.clear ();
    return G_SOURCE_REMOVE;
  }

  void
  drop_media ()
  {
    for (auto &m : media)
      drop_ws (&m.sock);
    media.clear ();
  }

  void
  drop_connections ()
  {
    drop_media ();
    drop_ws (&sig);
  }

  static bool
  is_open (const std::unique_ptr<Sock> &s)
  {
    return s && s->ws->state () == WsState::OPEN;
  }

  /* One text message (docs/protocol.md §4.7). false if @s is not open or
   * its send queue is full (rtms-ws.h WsConfig::max_queued_bytes). */
  static bool
  send (const std::unique_ptr<Sock> &s, const std::string &text)
  {
    if (!is_open (s))
      return false;
    return s->ws->send_text (text.data (), text.size ()) == WsSendResult::OK;
  }

  /* A new socket to @url, its callbacks wired to this Impl; connect () is
   * called. The handshake timeout of the upgrade is the client's
   * (handshake_timeout_ms ()); the client's own handshake_timer covers the
   * RTMS handshake after it. TLS: cfg.ca_file, verification always on
   * (rtms-ws.h WsConfig::ca_file). */
  std::unique_ptr<Sock>
  open_ws (const std::string &url, bool signaling)
  {
    auto sock = std::make_unique<Sock> ();
    Sock *s = sock.get ();
    s->self = this;
    s->signaling = signaling;
    WsConfig wc;
    wc.url = url;
    wc.ca_file = cfg.ca_file;
    wc.user_agent = "zoomrtms/0.1";
    wc.connect_timeout_ms = handshake_timeout_ms ();
    /* one number decides (rtms-client.h "Frame limits"): above the
     * decoder's own limit a message could never be parsed anyway */
    wc.max_message_bytes = std::max<gsize> (1, std::min<gsize> (
            cfg.max_message_size, kMessageMaxBytes));
    wc.poller = poller;
    /* what on_message reads first: the Sock, and the first cache line of
     * this Impl (finished, last_rx_us, n_frames, on_audio) */
    wc.hot_state[0] = s;
    wc.hot_state[1] = this;
    /* in_callback marks @s as on the stack (drop_ws () then defers) */
    struct InCallback {
      Sock *s;
      explicit InCallback (Sock *x) : s (x) { s->in_callback++; }
      ~InCallback () { s->in_callback--; }
    };
    WsCallbacks wcb;
    wcb.on_open = [s] () {
      InCallback g (s);
      if (!s->dropped)
        s->self->on_ws_open (s);
    };
    wcb.on_message = [s] (bool, const char *data, gsize len) {
      InCallback g (s);
      if (!s->dropped)
        s->self->on_message (s, data, len);
    };
    wcb.on_oversize = [s] (guint64 declared) {
      InCallback g (s);
      if (!s->dropped)
        s->self->on_oversize (declared);
    };
    wcb.on_closed = [s] (const WsCloseInfo &info) {
      InCallback g (s);
      if (!s->dropped)
        s->self->on_ws_closed (s, info);
    };
    s->ws = std::make_unique<WsConnection> (ctx, std::move (wc),
        std::move (wcb));
    s->ws->connect ();
    return sock;
  }

  HandshakeIdentity
  identity () const
  {
    HandshakeIdentity id;
    id.id_key = id_key;
    id.id_value = cfg.id_value;
    id.rtms_stream_id = cfg.rtms_stream_id;
    id.signature = signature;
    return id;
  }

  /* One log line: to ClientCallbacks::on_log, else g_log (). */
  void
  log (GLogLevelFlags level, const char *format, ...) G_GNUC_PRINTF (3, 4)
  {
    va_list args;
    va_start (args, format);
    g_autofree char *line = g_strdup_vprintf (format, args);
    va_end (args);
    if (cb.on_log)
      cb.on_log (level, line);
    else
      g_log (G_LOG_DOMAIN_CLIENT, level, "%s", line);
  }

  /* ---- terminal states ---- */

  void
  finish (const ClientError *err)
  {
    if (finished)
      return;
    finished = true;
    if (outage_since_us != 0)
      end_outage (false);
    stop_timer (&handshake_timer);
    stop_timer (&watchdog);
    stop_timer (&retry_timer);
    stop_timer (&close_timer);
    drop_connections ();
    state = err ? ClientState::FAILED : ClientState::CLOSED;
    if (err)
      log (G_LOG_LEVEL_DEBUG, "stream %s failed: %s",
          cfg.rtms_stream_id.c_str (), err->message.c_str ());
    if (cb.on_closed)
      cb.on_closed (err);
  }

  void
  end_outage (bool recovered)
  {
    Outage o;
    o.cause = media_only_outage ? OutageCause::MEDIA : OutageCause::SIGNALING;
    o.start_ms = outage_start_ms;
    o.end_ms = g_get_real_time () / 1000;
    o.ended = true;
    o.recovered = recovered;
    outage_since_us = 0;
    outage_start_ms = 0;
    bool reported = outage_reported;
    outage_reported = false;
    if (reported && cb.on_outage)
      cb.on_outage (o);
  }

  guint
  handshake_timeout_ms () const
  {
    return outage_since_us != 0 ? std::min (cfg.handshake_timeout_ms,
        OUTAGE_HANDSHAKE_TIMEOUT_MS) : cfg.handshake_timeout_ms;
  }

  void
  fail (int code, const std::string &message, int status_code = -1,
      int stop_reason = -1, StatusClass status_class = StatusClass::OTHER)
  {
    ClientError e;
    e.code = code;
    e.status_code = status_code;
    e.stop_reason = stop_reason;
    e.status_class = status_class;
    e.message = message;
    finish (&e);
  }

  /* The stream ended remotely (msg 8 TERMINATED / msg 9 STOPPED). Frames
   * already sent on the media sockets may still be queued behind it (the two
   * sockets are not ordered with each other), so keep reading them until the
   * server closes the media sockets, or for DRAIN_MS at most. */
  static constexpr guint DRAIN_MS = 2000;

  void
  drain (const ClientError *err)
  {
    if (draining || finished)
      return;
    draining = true;
    if (err)
      drain_error = *err;
    stop_timer (&watchdog);
    stop_timer (&retry_timer);
    stop_timer (&handshake_timer);
    if (media_all_closed ()) {
      finish_drained ();
      return;
    }
    stop_timer (&close_timer);
    start_timer (&close_timer, DRAIN_MS, on_close_timeout);
  }

  bool
  media_all_closed () const
  {
    for (auto &m : media)
      if (is_open (m.sock))
        return false;
    return true;
  }

  void
  finish_drained ()
  {
    if (drain_error)
      finish (&*drain_error);
    else
      finish (nullptr);
  }

  /* ---- connection set-up ---- */

  void
  connect_signaling ()
  {
    state = ClientState::CONNECTING_SIGNALING;
    stop_timer (&handshake_timer);
    start_timer (&handshake_timer, handshake_timeout_ms (),
        on_handshake_timeout);
    if (outage_since_us != 0)
      n_attempts++;
    drop_ws (&sig);
    sig_handshaken = false;
    /* a bad URL or CA file fails asynchronously through on_closed */
    sig = open_ws (cfg.signaling_url, true);
  }

  /* The upgrade of @s succeeded: send its handshake request (msg 1 on
   * signaling, msg 3 on media; docs/protocol.md §3.1, §4.1). */
  void
  on_ws_open (Sock *s)
  {
    s->opened = true;
    if (s->signaling) {
      last_rx_us = g_get_monotonic_time ();
      SignalingHandshakeReq req;
      req.id = identity ();
      req.buffer_data = cfg.buffer_data;
      send (sig, encode (req));
      return;
    }
    MediaConn *slot = media_of (s);
    if (!slot)
      return;
    MediaParams params;
    if (slot->plan.media_type & (MEDIA_AUDIO | MEDIA_ALL))
      params.audio = cfg.audio;
    if (cfg.want_transcripts &&
        (slot->plan.media_type & (MEDIA_TRANSCRIPT | MEDIA_ALL)))
      params.transcript = cfg.transcript;
    send (slot->sock, encode_data_handshake_req (identity (),
            slot->plan.media_type, false, params));
  }

  MediaConn *
  media_of (const Sock *s)
  {
    for (auto &m : media)
      if (m.sock.get () == s)
        return &m;
    return nullptr;
  }

  void
  connect_media ()
  {
    drop_media ();
    auto plans = plan_media_connections (media_urls, cfg.want_audio,
        cfg.want_transcripts);
    if (plans.empty ()) {
      fail (ERROR_HANDSHAKE, "signaling handshake offered no usable media URL");
      return;
    }
    state = ClientState::CONNECTING_MEDIA;
    stop_timer (&handshake_timer);
    start_timer (&handshake_timer, handshake_timeout_ms (),
        on_handshake_timeout);
    if (outage_since_us != 0 && media_only_outage)
      n_attempts++;
    media.resize (plans.size ());
    for (size_t i = 0; i < plans.size (); i++)
      media[i].plan = plans[i];
    /* all slots first: open_ws () never calls back from inside */
    for (auto &m : media)
      m.sock = open_ws (m.plan.url, false);
  }

  /* ---- incoming frames ---- */

  /* A frame was skipped (@what: why, for people): counted as malformed,
   * reported to on_malformed and warned about (the first, then at most one
   * warning per 10 s, with the count since the last one). */
  void
  skipped (const std::string &what)
  {
    n_malformed++;
    skipped_since_warning++;
    gint64 now = g_get_monotonic_time ();
    if (skip_warned_us == 0 || now - skip_warned_us >= SKIP_WARN_INTERVAL_US) {
      /* the text may quote the server's bytes: escaped, and cut */
      g_autofree char *esc = g_strescape (what.substr (0, 200).c_str (),
          nullptr);
      log (G_LOG_LEVEL_WARNING,
          "stream %s: skipped %" G_GUINT64_FORMAT " frame%s (%" G_GUINT64_FORMAT
          " in all), the last: %s", cfg.rtms_stream_id.c_str (),
          skipped_since_warning, skipped_since_warning == 1 ? "" : "s",
          n_malformed.load (), esc);
      skip_warned_us = now;
      skipped_since_warning = 0;
    }
    if (cb.on_malformed)
      cb.on_malformed (what);
  }

  /* A message over max_message_bytes, skipped by rtms-ws while it arrived
   * (never buffered, the connection kept; rtms-ws.h on_oversize): a video
   * frame we did not ask for, or junk. @declared: its size in bytes as far
   * as known when it was detected. */
  void
  on_oversize (guint64 declared)
  {
    if (finished)
      return;
    last_rx_us = g_get_monotonic_time ();
    n_oversize++;
    skipped ("frame of " + std::to_string (declared) + " bytes over the " +
        std::to_string (std::min<gsize> (cfg.max_message_size,
                kMessageMaxBytes)) + "-byte message limit");
  }

  /* Both sockets: text messages, and binary ones parsed as UTF-8 JSON too
   * (docs/protocol.md §4.7). @data is borrowed from rtms-ws's receive
   * buffer (valid during the call only), @len bytes: parsed in place. */
  void
  on_message (Sock *s, const char *data, gsize len)
  {
    if (finished)
      return;
    /* the wake-up's time, not a clock read per message (rtms-ws.h
     * receive_time_us (): ms early at most, for a watchdog of ≥ 100 ms) */
    last_rx_us = s->ws->receive_time_us ();
    g_autoptr (GError) error = nullptr;
    if (!parse_message (data, (gssize) len, &rx, &error)) {
      skipped (error->message);
      return;
    }
    if (s->signaling)
      handle_signaling (s);
    else
      handle_media (s);
  }

  /* msg 12 → msg 13 on the same socket, echoing the timestamp (§3.9). */
  void
  answer_keep_alive (Sock *s)
  {
    n_keep_alives++;
    if (s->ws->state () == WsState::OPEN) {
      std::string r = encode_keep_alive (MSG_KEEP_ALIVE_RESP,
          rx.keep_alive.timestamp);
      s->ws->send_text (r.data (), r.size ());
    }
  }

  void
  handle_signaling (Sock *conn)
  {
    switch (rx.kind) {
      case Message::Kind::SIGNALING_HANDSHAKE_RESP:
        on_signaling_handshake ();
        break;
      case Message::Kind::KEEP_ALIVE_REQ:
        answer_keep_alive (conn);
        break;
      case Message::Kind::EVENT_UPDATE:
        n_events++;
        if (cb.on_event)
          cb.on_event (rx.event);
        if (cfg.product != Product::CONTACT_CENTER &&
            rx.event.event_type == EVENT_MEDIA_CONNECTION_INTERRUPTED)
          media_interrupted ();
        break;
      case Message::Kind::STREAM_STATE_UPDATE:{
        StreamStateUpdate s = rx.stream_state;
        if (cb.on_stream_state)
          cb.on_stream_state (s);
        if (s.state == STREAM_TERMINATED) {
          if (stop_reason_wants_restart (s.reason) && !closing) {
            ClientError e;
            e.code = ERROR_CLOSED;
            e.stop_reason = s.reason;
            e.message = std::string ("stream terminated: ") +
                stop_reason_name (s.reason);
            drain (&e);
          } else {
            drain (nullptr);
          }
        } else if (s.state == STREAM_INTERRUPTED &&
            s.reason == STOP_DATA_CONNECTION_INTERRUPTED) {
          media_interrupted ();
        }
        break;
      }
      case Message::Kind::SESSION_STATE_UPDATE:{
        SessionStateUpdate s = rx.session_state;
        if (cb.on_session_state)
          cb.on_session_state (s);
        if (s.state == SESSION_STOPPED)
          drain (nullptr);
        break;
      }
      case Message::Kind::STREAM_CLOSE_RESP:
        if (closing)
          finish (nullptr);
        break;
      default:
        break;                  /* unknown or unused: ignore (§9.4) */
    }
  }

  void
  on_signaling_handshake ()
  {
    const auto &r = rx.sig_resp;
    if (r.status_code != 0) {
      StatusClass cls = classify_status (r.status_code, r.reason.c_str (),
          true, cfg.status_table);
      std::string msg = "signaling handshake refused: status " +
          status_description (r.status_code, r.reason.c_str ());
      if (cls == StatusClass::DUPLICATE_SIGNAL) {
        /* The server still holds an older connection for this stream
         * (after a failover, a reconnect or a duplicate webhook): retry
         * later (§3.4, §4.9). */
        if (outage_since_us != 0) {
          connection_lost (msg, false, Retry::SOON);
          return;
        }
        if (duplicate_retries < MAX_DUPLICATE_RETRIES) {
          guint delay = 1500u << duplicate_retries++;
          log (G_LOG_LEVEL_MESSAGE,
              "stream %s: %s; retrying in %u ms", cfg.rtms_stream_id.c_str (),
              msg.c_str (), delay);
          stop_timer (&handshake_timer);
          drop_ws (&sig);
          stop_timer (&retry_timer);
          media_only_outage = false;
          start_timer (&retry_timer, delay, on_retry);
          return;
        }
      }
      fail (ERROR_HANDSHAKE, msg, r.status_code, -1, cls);
      return;
    }
    sig_handshaken = true;
    media_urls = r.media_server;
    EventSubscription sub;
    for (int e : cfg.subscribe_events)
      sub.events.push_back ({ e, true });
    send (sig, encode (sub));
    connect_media ();
  }


  void
  handle_media (Sock *conn)
  {
    switch (rx.kind) {
      case Message::Kind::AUDIO:{
        g_autoptr (GError) error = nullptr;
        const auto &a = rx.audio;
        /* one decode buffer per thread, not per client: it stays in the
         * cache from one client's packet to the next (hundreds of clients
         * per I/O thread), and an idle client holds none */
        static thread_local std::vector<guint8> pcm;
        if (!decode_audio_payload (a.data_base64.data (), a.data_base64.size (),
                &pcm, &error)) {
          skipped (error->message);
          return;
        }
        n_frames++;
        if (on_audio) {
          AudioFrame f;
          f.channel_key = a.channel_id.empty () ? &a.user_id : &a.channel_id;
          f.packet = &a;
          f.timestamp_ms = a.timestamp;
          f.pcm = pcm.data ();
          f.size = pcm.size ();
          on_audio (f);
        }
        break;
      }
      case Message::Kind::TRANSCRIPT:
        n_transcripts++;
        if (cb.on_transcript)
          cb.on_transcript (rx.transcript);
        break;
      case Message::Kind::KEEP_ALIVE_REQ:
        answer_keep_alive (conn);
        break;
      case Message::Kind::DATA_HANDSHAKE_RESP:
        on_data_handshake (conn);
        break;
      default:
        break;
    }
  }

  /* msg 4 refused because the server still holds a media connection of this
   * stream (new 15 MEDIA_DATA_ALL_CONNECTION_EXIST / 16
   * DUPLICATE_MEDIA_DATA_CONNECTION, old 30 / 31; docs/protocol.md §4.1,
   * §3.10): by its reason text, else by its name in the configured table. */
  bool
  duplicate_media_refusal () const
  {
    std::string r = rx.reason;
    std::string name = status_code_name (rx.status_code, cfg.status_table);
    for (const std::string *t : { &r, &name }) {
      g_autofree char *low = g_ascii_strdown (t->c_str (), -1);
      if (strstr (low, "duplicate_media") || strstr (low, "duplicate media") ||
          strstr (low, "connection_exist") || strstr (low, "connection exist"))
        return true;
    }
    return false;
  }

  void
  on_data_handshake (Sock *conn)
  {
    if (rx.status_code != 0 && outage_since_us != 0 &&
        duplicate_media_refusal ()) {
      /* After a media socket was lost without a close frame (a dirty
       * close, an outage), the server may not have noticed yet: retry
       * soon, within the grace window (§4.9). */
      connection_lost ("media handshake refused: status " +
          status_description (rx.status_code, rx.reason.c_str ()) +
          " (the server still holds the old media connection)", true,
          Retry::SOON);
      return;
    }
    if (rx.status_code != 0) {
      fail (ERROR_HANDSHAKE, "media handshake refused: status " +
          status_description (rx.status_code, rx.reason.c_str ()),
          rx.status_code, -1, classify_status (rx.status_code,
              rx.reason.c_str (), false, cfg.status_table));
      return;
    }
    MediaConn *mc = media_of (conn);
    if (!mc)
      return;
    if (mc->plan.media_type & (MEDIA_AUDIO | MEDIA_ALL)) {
      negotiated = rx.media_params.audio ? *rx.media_params.audio : cfg.audio;
      if (sample_rate_hz (negotiated.sample_rate) == 0 ||
          (negotiated.codec != CODEC_L16 && negotiated.codec != CODEC_OPUS)) {
        fail (ERROR_PARAMS, std::string ("server negotiated unusable audio: "
                "codec ") + codec_name (negotiated.codec) + ", sample_rate " +
            std::to_string (negotiated.sample_rate));
        return;
      }
    }
    mc->handshaken = true;
    /* §3.7: CLIENT_READY_ACK on the signaling socket after every msg 4 */
    ClientReadyAck ack;
    ack.rtms_stream_id = cfg.rtms_stream_id;
    send (sig, encode (ack));
    for (auto &m : media)
      if (!m.handshaken)
        return;
    streaming ();
  }

  void
  streaming ()
  {
    stop_timer (&handshake_timer);
    state = ClientState::STREAMING;
    attempt = 0;
    duplicate_outage_retries = 0;
    if (outage_since_us != 0) {
      n_reconnects++;
      end_outage (true);
    }
    outage_since_us = 0;
    media_only_outage = false;
    ever_streamed = true;
    if (!watchdog.armed ())
      start_timer (&watchdog, watchdog_period_ms (), on_watchdog);
    if (cb.on_ready)
      cb.on_ready (negotiated);
  }

  /* ---- loss of connection and reconnection (§4.9) ---- */

  /* @s (still the client's) ended: a failed connect, a close by either
   * side, an error (rtms-ws.h on_closed). */
  void
  on_ws_closed (Sock *s, const WsCloseInfo &info)
  {
    if (finished)
      return;
    if (draining) {
      if (media_all_closed ())
        finish_drained ();
      return;
    }
    if (closing) {
      if (s == sig.get ())
        finish (nullptr);
      return;
    }
    const char *kind = s->signaling ? "signaling" : "media";
    if (!s->opened) {
      connection_lost (std::string ("cannot open ") + kind + " WebSocket: " +
          (info.error_message.empty () ? "connection closed" :
              info.error_message), !s->signaling);
      return;
    }
    std::string what = std::string (kind) + " WebSocket " + close_cause (info);
    if (ever_streamed && info.sent_code == 0 &&
        kicked_by_newer_handshake (info.code, info.reason.c_str (),
            s->signaling && sig_handshaken)) {
      /* another consumer's signaling handshake replaced ours: reconnecting
       * would kick it in turn (rtms-client.h, "Superseded") */
      log (G_LOG_LEVEL_MESSAGE, "stream %s: %s: "
          "superseded by a newer signaling handshake, not reconnecting",
          cfg.rtms_stream_id.c_str (), what.c_str ());
      ClientError e;
      e.code = ERROR_CLOSED;
      e.superseded = true;
      e.message = what + " (superseded by a newer signaling handshake of "
          "another consumer)";
      finish (&e);
      return;
    }
    connection_lost (what, !s->signaling);
  }

  /* Who closed and why, with the real codes (RFC 6455 §7.4): "closed by the
   * client: code 1002, <why>" (a protocol error of the server we closed
   * for), "closed by the server: code 1009, <reason>", "closed by the
   * server without a status code" (1005), "lost: <socket error>" or
   * "closed without a close frame" (1006). The error text never holds the
   * URL's query (rtms-ws.h WsCloseInfo::error_message). */
  static std::string
  close_cause (const WsCloseInfo &info)
  {
    if (info.sent_code != 0)
      return "closed by the client: code " + std::to_string (info.sent_code) +
          ", " + info.error_message;
    std::string reason = info.reason.empty () ? "" : ", " + info.reason;
    if (info.code == WS_CLOSE_NO_STATUS)
      return "closed by the server without a status code" + reason;
    if (info.code != WS_CLOSE_ABNORMAL)
      return "closed by the server: code " + std::to_string (info.code) +
          reason;
    if (!info.error_message.empty ())
      return "lost: " + info.error_message;
    return "closed without a close frame";
  }

  void
  media_interrupted ()
  {
    if (state != ClientState::STREAMING)
      return;
    connection_lost ("media connection interrupted", true);
  }

  /* A connection dropped or could not be opened. Before the first successful
   * handshake this is fatal; afterwards retry with the §4.9 backoff within the
   * server's grace window (60 s signaling, 30 s media). */
  void
  connection_lost (const std::string &what, bool media_only,
      Retry retry = Retry::BACKOFF)
  {
    if (finished)
      return;
    if (!ever_streamed) {
      fail (ERROR_CONNECT, what);
      return;
    }
    gint64 now = g_get_monotonic_time ();
    media_only = media_only && is_open (sig);
    if (outage_since_us == 0) {
      outage_since_us = now;
      outage_start_ms = g_get_real_time () / 1000;
      media_only_outage = media_only;
      outage_reported = true;
      if (cb.on_outage) {
        Outage o;
        o.cause = media_only ? OutageCause::MEDIA : OutageCause::SIGNALING;
        o.start_ms = outage_start_ms;
        o.what = what;
        cb.on_outage (o);
      }
    } else if (!media_only) {
      media_only_outage = false;
    }
    /* the next attempt of the schedule (§4.9: until the grace runs out) */
    guint grace_ms = media_only_outage ? cfg.media_grace_ms :
        cfg.signaling_grace_ms;
    gint64 elapsed_ms = (now - outage_since_us) / 1000;
    gint64 next_ms = -1;
    for (guint t : reconnect_schedule (grace_ms))
      if ((gint64) t > elapsed_ms) {
        next_ms = t;
        break;
      }
    if (next_ms < 0) {
      fail (ERROR_CLOSED, what + "; no reconnection within the " +
          std::to_string (grace_ms) + " ms grace window", -1,
          STOP_AWAIT_RECONNECTION_TIMEOUT);
      return;
    }
    guint delay = (guint) (next_ms - elapsed_ms);
    bool count_attempt = true;
    if (retry == Retry::SOON) {
      guint soon = 250u << std::min<guint> (duplicate_outage_retries++, 4);
      if (soon < delay) {
        delay = soon;
        count_attempt = false;
      }
    }
    log (G_LOG_LEVEL_MESSAGE,
        "stream %s: %s; reconnecting %s in %u ms", cfg.rtms_stream_id.c_str (),
        what.c_str (), media_only ? "media" : "signaling and media", delay);
    stop_timer (&handshake_timer);
    drop_media ();
    if (!media_only)
      drop_ws (&sig);
    state = media_only ? ClientState::CONNECTING_MEDIA :
        ClientState::CONNECTING_SIGNALING;
    stop_timer (&retry_timer);
    start_timer (&retry_timer, delay, on_retry);
    if (count_attempt)
      attempt++;
  }

  static void
  on_retry (gpointer data)
  {
    auto self = static_cast<Impl *> (data);
    if (self->media_only_outage && self->sig)
      self->connect_media ();
    else
      self->connect_signaling ();
  }

  static void
  on_handshake_timeout (gpointer data)
  {
    auto self = static_cast<Impl *> (data);
    if (!self->ever_streamed)
      self->fail (ERROR_TIMEOUT, "handshake timed out after " +
          std::to_string (self->cfg.handshake_timeout_ms) + " ms");
    else
      self->connection_lost ("handshake timed out",
          self->state == ClientState::CONNECTING_MEDIA);
  }

  /* The watchdog checks every idle_timeout_ms / 4 (at least 100 ms), from
   * the first STREAMING on until the client ends. */
  guint
  watchdog_period_ms () const
  {
    return std::max<guint> (cfg.idle_timeout_ms / 4, 100);
  }

  /* §3.9: no message of any kind for idle_timeout_ms → re-handshake.
   * Periodic: re-armed first (connection_lost () keeps it; finish () stops
   * it). */
  static void
  on_watchdog (gpointer data)
  {
    auto self = static_cast<Impl *> (data);
    self->start_timer (&self->watchdog, self->watchdog_period_ms (),
        on_watchdog);
    if (self->state != ClientState::STREAMING)
      return;
    gint64 idle = g_get_monotonic_time () - self->last_rx_us;
    if (idle > (gint64) self->cfg.idle_timeout_ms * 1000)
      self->connection_lost ("no message for " + std::to_string (idle / 1000) +
          " ms (idle watchdog)", false);
  }

  static void
  on_close_timeout (gpointer data)
  {
    auto self = static_cast<Impl *> (data);
    if (self->draining)
      self->finish_drained ();
    else
      self->finish (nullptr);
  }
};

/* ---- Client ---- */

Client::Client (GMainContext *context, ClientConfig config,
    ClientCallbacks callbacks)
    : impl_ (new Impl (context, std::move (config), std::move (callbacks)))
{
}

Client::~Client () = default;

void
Client::start ()
{
  if (impl_->state != ClientState::IDLE)
    return;
  impl_->connect_signaling ();
}

void
Client::close (bool send_close_req, guint wait_ms)
{
  auto p = impl_.get ();
  if (p->finished || p->closing)
    return;
  p->closing = true;
  p->state = ClientState::CLOSING;
  Impl::stop_timer (&p->retry_timer);
  Impl::stop_timer (&p->handshake_timer);
  StreamCloseReq req;
  req.rtms_stream_id = p->cfg.rtms_stream_id;
  if (send_close_req && Impl::send (p->sig, encode (req))) {
    p->n_close_requests++;
    p->start_timer (&p->close_timer, wait_ms, Impl::on_close_timeout);
    return;
  }
  p->finish (nullptr);
}

void
Client::detach ()
{
  auto p = impl_.get ();
  if (p->finished)
    return;
  p->log (G_LOG_LEVEL_INFO, "stream %s: detaching "
      "(sockets closed without STREAM_CLOSE_REQ)",
      p->cfg.rtms_stream_id.c_str ());
  p->closing = true;
  p->state = ClientState::CLOSING;
  p->finish (nullptr);
}

std::string
Client::signaling_url () const
{
  std::lock_guard<std::mutex> lk (impl_->url_lock);
  return impl_->cfg.signaling_url;
}

void
Client::reconnect (const std::string &new_signaling_url)
{
  auto p = impl_.get ();
  if (p->finished || p->closing)
    return;
  if (!new_signaling_url.empty ()) {
    std::lock_guard<std::mutex> lk (p->url_lock);
    p->cfg.signaling_url = new_signaling_url;
  }
  Impl::stop_timer (&p->retry_timer);
  Impl::stop_timer (&p->handshake_timer);
  p->drop_media ();
  p->drop_ws (&p->sig);
  p->attempt = 0;
  if (p->outage_since_us == 0) {
    /* the failover's grace counts from now; not reported as an outage */
    p->outage_since_us = g_get_monotonic_time ();
    p->outage_start_ms = g_get_real_time () / 1000;
    p->outage_reported = false;
  }
  p->media_only_outage = false;
  p->connect_signaling ();
}

ClientState
Client::state () const
{
  return impl_->state;
}

ClientCounters
Client::counters () const
{
  ClientCounters c;
  c.frames = impl_->n_frames;
  c.transcripts = impl_->n_transcripts;
  c.events = impl_->n_events;
  c.keep_alives = impl_->n_keep_alives;
  c.malformed = impl_->n_malformed;
  c.oversize = impl_->n_oversize;
  c.reconnects = impl_->n_reconnects;
  c.close_requests = impl_->n_close_requests;
  c.attempts = impl_->n_attempts;
  return c;
}

const AudioParams &
Client::negotiated () const
{
  return impl_->negotiated;
}

/* ---- IoContext ---- */

IoContext::IoContext (const char *name)
{
  context_ = g_main_context_new ();
  thread_ = g_thread_new (name, thread_main, this);
}

gpointer
IoContext::thread_main (gpointer data)
{
  auto self = static_cast<IoContext *> (data);
  g_main_context_push_thread_default (self->context_);
  const gint64 wait_us = (gint64) context_wait_ms () * 1000;
  gint64 last_wake = 0;
  while (!self->quit_.load (std::memory_order_relaxed)) {
    /* deferred work left for this pass (a pump over its budget): poll,
     * but do not block */
    g_main_context_iteration (self->context_, self->deferred_.empty ());
    self->run_deferred ();
    if (wait_us > 0) {
      /* the throttle: wake-ups at least wait_us apart while busy; an idle
       * thread (blocked longer than that in poll) does not sleep */
      gint64 now = g_get_monotonic_time ();
      if (now - last_wake < wait_us) {
        /* an invoke from another thread (a pipeline starting, a detach)
         * ends the sleep: the host's main thread never waits for it */
        std::unique_lock<std::mutex> lk (self->throttle_lock_);
        self->throttle_cond_.wait_for (lk,
            std::chrono::microseconds (wait_us - (now - last_wake)),
            [self] { return self->throttle_woken_; });
        self->throttle_woken_ = false;
        now = g_get_monotonic_time ();
      }
      last_wake = now;
    }
  }
  g_main_context_pop_thread_default (self->context_);
  return nullptr;
}

void
IoContext::defer (void (*fn) (gpointer), gpointer data)
{
  deferred_.emplace_back (fn, data);
}

guint
IoContext::add_tick (void (*fn) (gpointer), gpointer data)
{
  if (!tick_source_) {
    tick_source_ = g_timeout_source_new (kTickMs);
    g_source_set_callback (tick_source_, on_tick, this, nullptr);
    g_source_attach (tick_source_, context_);
  }
  guint id = next_tick_id_++;
  if (next_tick_id_ == 0)
    next_tick_id_ = 1;
  ticks_.push_back ({ id, fn, data });
  return id;
}

void
IoContext::remove_tick (guint id)
{
  for (size_t i = 0; i < ticks_.size (); i++) {
    if (ticks_[i].id != id)
      continue;
    if (in_tick_)
      ticks_[i].fn = nullptr;   /* compacted after the loop */
    else
      ticks_.erase (ticks_.begin () + (long) i);
    return;
  }
}

gboolean
IoContext::on_tick (gpointer data)
{
  auto self = static_cast<IoContext *> (data);
  self->in_tick_ = true;
  /* by index: a tick may add ticks (appended, run from the next time) */
  for (size_t i = 0, n = self->ticks_.size (); i < n; i++)
    if (self->ticks_[i].fn)
      self->ticks_[i].fn (self->ticks_[i].data);
  self->in_tick_ = false;
  self->ticks_.erase (std::remove_if (self->ticks_.begin (),
          self->ticks_.end (), [] (const Tick &t) { return !t.fn; }),
      self->ticks_.end ());
  return G_SOURCE_CONTINUE;
}

void
IoContext::run_deferred ()
{
  /* what is deferred while these run waits for the next pass, after the
   * sockets have been served once more */
  running_.swap (deferred_);
  for (auto &d : running_)
    d.first (d.second);
  running_.clear ();
}

IoContext::~IoContext ()
{
  if (tick_source_) {
    g_source_destroy (tick_source_);
    g_source_unref (tick_source_);
  }
  quit_ = true;
  g_main_context_wakeup (context_);
  if (g_thread_self () != thread_)
    g_thread_join (thread_);
  else
    g_thread_unref (thread_);
  g_main_context_unref (context_);
}

namespace {

gulong
env_ulong (const char *name, gulong fallback, gulong max)
{
  const char *v = g_getenv (name);
  if (!v || !*v)
    return fallback;
  char *end = nullptr;
  guint64 n = g_ascii_strtoull (v, &end, 10);
  if (*end || n > max) {
    g_log (G_LOG_DOMAIN_CLIENT, G_LOG_LEVEL_WARNING,
        "ignoring %s=%s (not a number up to %lu)", name, v, max);
    return fallback;
  }
  return (gulong) n;
}

} // namespace

guint
IoContext::context_wait_ms ()
{
  static const guint ms = (guint) env_ulong ("ZOOMRTMS_CONTEXT_WAIT",
      kDefaultContextWaitMs, 100);
  return ms;
}

std::shared_ptr<IoContext>
IoContext::get ()
{
  /* Process-wide and immortal: never destroyed, so no client callback can
   * run into a joined thread, and the last user may be an I/O thread. */
  static std::vector<std::shared_ptr<IoContext>> *pool = [] {
    auto p = new std::vector<std::shared_ptr<IoContext>> ();
    gulong n = env_ulong ("ZOOMRTMS_IO_THREADS",
        std::min<guint> (4, std::max<guint> (1, g_get_num_processors ())), 64);
    for (gulong i = 0; i < std::max<gulong> (n, 1); i++) {
      char name[16];
      g_snprintf (name, sizeof name, "zoomrtms-io%lu", i);
      p->push_back (std::make_shared<IoContext> (name));
    }
    return p;
  } ();
  static std::atomic<size_t> next { 0 };
  return (*pool)[next++ % pool->size ()];
}

void
IoContext::invoke_sync (const std::function<void ()> &fn)
{
  if (g_main_context_is_owner (context_)) {
    fn ();
    return;
  }
  struct Call {
    const std::function<void ()> *fn;
    std::mutex lock;
    std::condition_variable cond;
    bool done = false;
  } call;
  call.fn = &fn;
  g_main_context_invoke_full (context_, G_PRIORITY_DEFAULT,
      [] (gpointer data) -> gboolean {
        auto c = static_cast<Call *> (data);
        (*c->fn) ();
        std::lock_guard<std::mutex> lk (c->lock);
        c->done = true;
        c->cond.notify_one ();
        return G_SOURCE_REMOVE;
      }, &call, nullptr);
  end_throttle ();
  std::unique_lock<std::mutex> lk (call.lock);
  call.cond.wait (lk, [&] { return call.done; });
}

void
IoContext::end_throttle ()
{
  if (context_wait_ms () == 0)
    return;
  {
    std::lock_guard<std::mutex> lk (throttle_lock_);
    throttle_woken_ = true;
  }
  throttle_cond_.notify_one ();
}

void
IoContext::invoke_async (std::function<void ()> fn)
{
  auto heap = new std::function<void ()> (std::move (fn));
  GSource *s = g_idle_source_new ();
  g_source_set_priority (s, G_PRIORITY_DEFAULT);
  g_source_set_callback (s, [] (gpointer data) -> gboolean {
        (*static_cast<std::function<void ()> *> (data)) ();
        return G_SOURCE_REMOVE;
      }, heap, [] (gpointer data) {
        delete static_cast<std::function<void ()> *> (data);
      });
  g_source_attach (s, context_);
  g_source_unref (s);
  end_throttle ();
}

} // namespace rtms
