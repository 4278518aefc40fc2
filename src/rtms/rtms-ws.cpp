/* zoomrtms — WebSocket client transport (see rtms-ws.h, docs/websocket.md). */
#define G_LOG_DOMAIN "zoomrtms"

#include "rtms-ws.h"

#include "rtms-timers.h"

#include <libsoup/soup.h>

#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

namespace rtms {

namespace {

enum : guint8 {
  OP_CONTINUATION = 0x0,
  OP_TEXT = 0x1,
  OP_BINARY = 0x2,
  OP_CLOSE = 0x8,
  OP_PING = 0x9,
  OP_PONG = 0xA,
};

constexpr gsize MAX_CONTROL_PAYLOAD = 125;      /* RFC 6455 §5.5 */
constexpr gsize MAX_HEADER = 14;                /* 2 + 8 + 4 (client) */
constexpr gsize CONTROL_SLACK = 4096;           /* rtms-ws.h max_queued_bytes */
constexpr int READS_PER_DISPATCH = 4;           /* fairness between sockets */
/* a frame this small is built on the stack and written at once when the
 * send queue is empty (every RTMS message we send) */
constexpr gsize STACK_FRAME = 4096;

/* The receive buffer of one thread, shared by every connection whose
 * source runs there (rtms-ws.h "Receive path"; docs/websocket.md §2 "One
 * receive buffer per thread"). A connection borrows it for one read and
 * the parse of what that read brought, and copies out only the bytes of
 * an incomplete frame. @busy: borrowed (a callback that iterates the
 * context could start another connection's read: that read then uses a
 * buffer of its own). */
struct ThreadReadBuffer {
  guint8 *data = nullptr;
  gsize cap = 0;
  bool busy = false;
  ~ThreadReadBuffer () { g_free (data); }
};
thread_local ThreadReadBuffer t_read_buffer;

/* RFC 6455 §7.4.1/§7.4.2 and the IANA registry: codes a peer may send. */
bool
close_code_valid (gushort code)
{
  if (code >= 3000 && code <= 4999)
    return true;
  switch (code) {
    case 1000: case 1001: case 1002: case 1003: case 1007: case 1008:
    case 1009: case 1010: case 1011: case 1012: case 1013: case 1014:
      return true;
    default:
      return false;
  }
}

/* Valid UTF-8 (RFC 3629, as RFC 6455 §8.1 requires). ASCII is checked 8
 * bytes at a time (JSON with base64 is all ASCII); from the first non-ASCII
 * word on, g_utf8_validate_len decides. */
bool
utf8_valid (const char *data, gsize len)
{
  gsize i = 0;
  for (; i + 8 <= len; i += 8) {
    guint64 w;
    memcpy (&w, data + i, 8);
    if (w & G_GUINT64_CONSTANT (0x8080808080808080))
      break;
  }
  for (; i < len; i++)
    if ((guchar) data[i] & 0x80)
      break;
  if (i == len)
    return true;
  /* every byte before i is ASCII, so i is a character boundary */
  return g_utf8_validate_len (data + i, len - i, nullptr);
}

/* The part of a URL safe to show in an error: scheme://host:port (no path,
 * no query: those may carry ids or tokens). */
std::string
safe_origin (GUri *uri)
{
  if (!uri)
    return "(invalid URL)";
  const char *host = g_uri_get_host (uri);
  const char *scheme = g_uri_get_scheme (uri);
  int port = g_uri_get_port (uri);
  std::string s = std::string (scheme ? scheme : "") + "://" +
      (host ? host : "");
  if (port > 0)
    s += ":" + std::to_string (port);
  return s;
}

struct FdSource {
  GSource base;
  WsConnection::Impl *impl;
  gpointer tag;
};

} // namespace

const char *
ws_state_name (WsState s)
{
  switch (s) {
    case WsState::IDLE: return "idle";
    case WsState::CONNECTING: return "connecting";
    case WsState::OPEN: return "open";
    case WsState::CLOSING: return "closing";
    case WsState::CLOSED: return "closed";
  }
  return "?";
}

gsize
ws_write_client_header (guint8 *out, guint8 opcode, guint64 payload_len,
    guint32 mask_key)
{
  gsize n = 0;
  out[n++] = 0x80 | (opcode & 0x0f);
  if (payload_len <= 125) {
    out[n++] = 0x80 | (guint8) payload_len;
  } else if (payload_len <= 0xffff) {
    out[n++] = 0x80 | 126;
    out[n++] = (guint8) (payload_len >> 8);
    out[n++] = (guint8) payload_len;
  } else {
    out[n++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--)
      out[n++] = (guint8) (payload_len >> (8 * i));
  }
  memcpy (out + n, &mask_key, 4);   /* the key's bytes in memory order */
  return n + 4;
}

void
ws_apply_mask (guint8 *data, gsize len, guint32 mask_key, gsize offset)
{
  guint8 key[4];
  memcpy (key, &mask_key, 4);
  gsize i = 0;
  /* byte-wise until the key is at phase 0, then 8 bytes at a time */
  for (; i < len && ((offset + i) & 3) != 0; i++)
    data[i] ^= key[(offset + i) & 3];
  guint64 k8;
  guint8 kb[8] = { key[0], key[1], key[2], key[3],
                   key[0], key[1], key[2], key[3] };
  memcpy (&k8, kb, 8);
  for (; i + 8 <= len; i += 8) {
    guint64 w;
    memcpy (&w, data + i, 8);
    w ^= k8;
    memcpy (data + i, &w, 8);
  }
  for (; i < len; i++)
    data[i] ^= key[(offset + i) & 3];
}

std::string
ws_accept_key (const char *key)
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA1);
  g_checksum_update (sum, (const guchar *) key, strlen (key));
  static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  g_checksum_update (sum, (const guchar *) GUID, sizeof GUID - 1);
  guint8 digest[20];
  gsize dlen = sizeof digest;
  g_checksum_get_digest (sum, digest, &dlen);
  g_autofree char *b64 = g_base64_encode (digest, dlen);
  return b64;
}

/* ---------------------------------------------------------------------- */

/* ---- WsPoller -------------------------------------------------------- */

struct WsPoller::Impl {
  GMainContext *ctx;
  int epfd = -1;
  GSource *source = nullptr;
  gpointer tag = nullptr;
  bool dispatching = false;
  std::vector<Handler *> removed;   /* during dispatch: skip their events */
  std::vector<Handler *> again, again_run;
  epoll_event events[256];

  struct Src {
    GSource base;
    Impl *impl;
  };

  /* Asks the CPU to load the memory of a ready handler (a
   * WsConnection::Impl, the only Handler: 928 bytes, most of which a
   * wake-up reads) before it is needed. With hundreds of sockets per I/O
   * thread each served once per wake-up, that state is out of the cache
   * every time; a prefetch never faults, so a handler removed meanwhile
   * costs nothing (docs/benchmarks.md "Client per-message path"). */
  static void
  prefetch_handler (const void *h)
  {
    const char *p = static_cast<const char *> (h) - 64;
    for (int k = 0; k < 17; k++)
      __builtin_prefetch (p + 64 * k);
  }

  static gboolean
  dispatch (GSource *source, GSourceFunc, gpointer)
  {
    Impl *self = reinterpret_cast<Src *> (source)->impl;
    if (self->dispatching)
      return G_SOURCE_CONTINUE;
    self->dispatching = true;
    self->removed.clear ();
    const gint64 now = g_get_monotonic_time ();
    if (g_source_get_ready_time (source) != -1) {
      g_source_set_ready_time (source, -1);
      self->again_run.swap (self->again);
      self->again.clear ();
      for (Handler *h : self->again_run)
        if (h && std::find (self->removed.begin (), self->removed.end (), h) ==
            self->removed.end ())
          h->on_io (G_IO_IN, now);
      self->again_run.clear ();
    }
    int n = epoll_wait (self->epfd, self->events, G_N_ELEMENTS (self->events),
        0);
    if (n > 0)
      prefetch_handler (self->events[0].data.ptr);
    for (int i = 0; i < n; i++) {
      auto *h = static_cast<Handler *> (self->events[i].data.ptr);
      /* the next socket's state is fetched while this one is served */
      if (i + 1 < n)
        prefetch_handler (self->events[i + 1].data.ptr);
      if (!self->removed.empty () && std::find (self->removed.begin (),
              self->removed.end (), h) != self->removed.end ())
        continue;
      guint32 e = self->events[i].events;
      int c = 0;
      if (e & EPOLLIN) c |= G_IO_IN;
      if (e & EPOLLOUT) c |= G_IO_OUT;
      if (e & EPOLLHUP) c |= G_IO_HUP;
      if (e & EPOLLERR) c |= G_IO_ERR;
      h->on_io ((GIOCondition) c, now);
    }
    self->dispatching = false;
    return G_SOURCE_CONTINUE;
  }
};

WsPoller::WsPoller (GMainContext *context) : impl_ (new Impl)
{
  static GSourceFuncs funcs = { nullptr, nullptr, Impl::dispatch, nullptr,
                                nullptr, nullptr };
  impl_->ctx = g_main_context_ref (context);
  impl_->epfd = epoll_create1 (EPOLL_CLOEXEC);
  if (impl_->epfd < 0)
    g_error ("epoll_create1: %s", g_strerror (errno));
  impl_->source = g_source_new (&funcs, sizeof (Impl::Src));
  reinterpret_cast<Impl::Src *> (impl_->source)->impl = impl_.get ();
  impl_->tag = g_source_add_unix_fd (impl_->source, impl_->epfd, G_IO_IN);
  g_source_set_name (impl_->source, "rtms-ws-poller");
  g_source_set_can_recurse (impl_->source, TRUE);   /* see attach_io_source */
  g_source_attach (impl_->source, context);
}

WsPoller::~WsPoller ()
{
  g_source_destroy (impl_->source);
  g_source_unref (impl_->source);
  close (impl_->epfd);
  g_main_context_unref (impl_->ctx);
}

GMainContext *
WsPoller::context () const
{
  return impl_->ctx;
}

static guint32
to_epoll (GIOCondition events)
{
  return ((events & G_IO_IN) ? (guint32) EPOLLIN : 0u) |
      ((events & G_IO_OUT) ? (guint32) EPOLLOUT : 0u);
}

bool
WsPoller::add (int fd, Handler *h, GIOCondition events)
{
  epoll_event ev{};
  ev.events = to_epoll (events);
  ev.data.ptr = h;
  return epoll_ctl (impl_->epfd, EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool
WsPoller::modify (int fd, Handler *h, GIOCondition events)
{
  epoll_event ev{};
  ev.events = to_epoll (events);
  ev.data.ptr = h;
  return epoll_ctl (impl_->epfd, EPOLL_CTL_MOD, fd, &ev) == 0;
}

void
WsPoller::remove (int fd, Handler *h)
{
  epoll_ctl (impl_->epfd, EPOLL_CTL_DEL, fd, nullptr);
  if (impl_->dispatching)
    impl_->removed.push_back (h);
  auto &a = impl_->again;
  a.erase (std::remove (a.begin (), a.end (), h), a.end ());
  auto &r = impl_->again_run;
  std::replace (r.begin (), r.end (), h, (Handler *) nullptr);
}

void
WsPoller::again (Handler *h)
{
  if (std::find (impl_->again.begin (), impl_->again.end (), h) ==
      impl_->again.end ())
    impl_->again.push_back (h);
  g_source_set_ready_time (impl_->source, 0);
}

/* ---- WsConnection ----------------------------------------------------- */

struct WsConnection::Impl : public std::enable_shared_from_this<Impl>,
                            public WsPoller::Handler {
  GMainContext *ctx;
  WsConfig cfg;
  WsCallbacks cb;
  WsState state = WsState::IDLE;
  WsCounters counters;

  GUri *uri = nullptr;
  bool tls = false;
  std::string origin;                 /* for errors */
  GCancellable *cancellable = nullptr;
  GSocketConnection *tcp = nullptr;
  GTlsConnection *tls_conn = nullptr;
  /* TLS (or a proxy wrapper): read/write these streams, not the fd */
  GPollableInputStream *tls_in = nullptr;
  GPollableOutputStream *tls_out = nullptr;
  int fd = -1;
  GSource *io_source = nullptr;       /* one per connection, for its lifetime */
  GIOCondition io_cond = (GIOCondition) 0;
  /* on the context's shared timer source (rtms-timers.h) */
  std::shared_ptr<TimerQueue> timers;
  Timer connect_timer;
  Timer close_timer;
  GSource *idle_fail = nullptr;

  bool in_dispatch = false;           /* see attach_io_source() */
  bool polled = false;                /* fd is in cfg.poller's epoll set */
  bool handshaking = false;           /* reading the HTTP upgrade response */
  std::string accept_expected;

  /* the buffer being parsed (the thread's read buffer, or carry for a
   * frame larger than a read): [rstart, rend) not parsed yet */
  guint8 *rbuf = nullptr;
  gsize rstart = 0, rend = 0;
  /* the bytes of an incomplete frame (or HTTP response head) between
   * reads, [0, carry_len); capacity carry_cap. Empty and usually freed
   * while nothing is half-received. */
  guint8 *carry = nullptr;
  gsize carry_len = 0, carry_cap = 0;
  /* size of the incomplete frame in carry (header + payload) once its
   * header is complete; 0 = not known yet (or nothing carried) */
  gsize pending_need = 0;

  /* message being assembled from fragments (RFC 6455 §5.4) */
  bool in_message = false;
  bool message_text = false;
  bool skip_message = false;          /* the current message is oversize */
  guint64 skip_remaining = 0;         /* payload bytes of the current frame to drop */
  bool skip_fin = false;              /* that frame ends the message */
  guint8 *frag = nullptr;
  gsize frag_len = 0, frag_cap = 0;

  /* send queue: [ostart, oend) not yet written */
  guint8 *obuf = nullptr;
  gsize ocap = 0, ostart = 0, oend = 0;

  bool close_sent = false;
  bool close_received = false;
  WsCloseInfo info;
  gint64 rx_time_us = 0;              /* receive_time_us () */

  Impl (GMainContext *c, WsConfig config, WsCallbacks callbacks)
    : ctx (g_main_context_ref (c)), cfg (std::move (config)),
      cb (std::move (callbacks))
  {
    if (cfg.read_buffer_bytes < 4096)
      cfg.read_buffer_bytes = 4096;
    if (cfg.max_message_bytes == 0)
      cfg.max_message_bytes = 1;
    timers = TimerQueue::for_context (ctx);
  }

  ~Impl ()
  {
    teardown ();
    if (cancellable)
      g_object_unref (cancellable);
    if (uri)
      g_uri_unref (uri);
    g_free (carry);
    g_free (frag);
    g_free (obuf);
    g_main_context_unref (ctx);
  }

  /* ---- sources ---------------------------------------------------- */

  static gboolean
  io_dispatch (GSource *source, GSourceFunc, gpointer)
  {
    auto *s = reinterpret_cast<FdSource *> (source);
    if (s->impl->in_dispatch)
      return G_SOURCE_CONTINUE;
    GIOCondition rev = g_source_query_unix_fd (source, s->tag);
    if (g_source_get_ready_time (source) != -1) {
      /* read_some() asked to come back (TLS records held in memory) */
      g_source_set_ready_time (source, -1);
      rev = (GIOCondition) (rev | G_IO_IN);
    }
    s->impl->in_dispatch = true;
    s->impl->on_io (rev, g_get_monotonic_time ());
    s->impl->in_dispatch = false;
    return G_SOURCE_CONTINUE;
  }

  void
  set_out_interest (bool want)
  {
    if (!io_source && !polled)
      return;
    GIOCondition c = (GIOCondition) (G_IO_IN | (want ? G_IO_OUT : 0));
    if (c != io_cond) {
      if (polled)
        cfg.poller->modify (fd, this, c);
      else
        g_source_modify_unix_fd (io_source,
            reinterpret_cast<FdSource *> (io_source)->tag, c);
      io_cond = c;
    }
  }

  void
  attach_io_source ()
  {
    if (cfg.poller) {
      io_cond = G_IO_IN;
      polled = cfg.poller->add (fd, this, io_cond);
      if (polled)
        return;
      g_warning ("rtms-ws: epoll_ctl: %s; using a GSource", g_strerror (errno));
    }
    static GSourceFuncs funcs = { nullptr, nullptr, io_dispatch, nullptr,
                                  nullptr, nullptr };
    io_source = g_source_new (&funcs, sizeof (FdSource));
    auto *s = reinterpret_cast<FdSource *> (io_source);
    s->impl = this;
    io_cond = G_IO_IN;
    s->tag = g_source_add_unix_fd (io_source, fd, io_cond);
    g_source_set_name (io_source, "rtms-ws");
    /* GLib blocks a non-recursive source around its dispatch by removing
     * its fds from the context and adding them back: two eventfd writes
     * (g_wakeup_signal) per dispatch, measured with strace. Our dispatch
     * never iterates the context, so it may be marked recursive; a nested
     * dispatch (a callback iterating the context) is refused below. */
    g_source_set_can_recurse (io_source, TRUE);
    g_source_attach (io_source, ctx);
  }

  static void
  destroy_source (GSource **s)
  {
    if (*s) {
      g_source_destroy (*s);
      g_source_unref (*s);
      *s = nullptr;
    }
  }

  /* Arms @t: @fn (this) in @ms ms. */
  void
  start_timer (Timer *t, guint ms, Timer::Fn fn)
  {
    t->start (timers.get (), ms, fn, this);
  }

  /* Drops the socket and every source; keeps the buffers (a callback up
   * the stack may still point into carry or frag). */
  void
  teardown ()
  {
    destroy_source (&io_source);
    if (polled) {
      cfg.poller->remove (fd, this);
      polled = false;
    }
    connect_timer.stop ();
    close_timer.stop ();
    destroy_source (&idle_fail);
    if (cancellable)
      g_cancellable_cancel (cancellable);
    tls_in = nullptr;
    tls_out = nullptr;
    /* Close the TCP socket directly: no TLS close_notify (it could block on
     * a full socket; the WebSocket close handshake already delimits the
     * stream, RFC 6455 §7.1.1). */
    if (tcp) {
      g_socket_close (g_socket_connection_get_socket (tcp), nullptr);
    }
    g_clear_object (&tls_conn);
    g_clear_object (&tcp);
    fd = -1;
  }

  /* ---- ending ----------------------------------------------------- */

  void
  finish ()
  {
    if (state == WsState::CLOSED)
      return;
    state = WsState::CLOSED;
    teardown ();
    if (cb.on_closed)
      cb.on_closed (info);
  }

  /* Ends with a failure of ours. @send_code: the close code to send first
   * if the connection is open (RFC 6455 §7.1.7 "Fail the WebSocket
   * Connection"), 0 for none. */
  void
  fail (GQuark domain, int code, gushort send_code, const std::string &msg)
  {
    if (state == WsState::CLOSED)
      return;
    if (info.error_domain == 0) {
      info.error_domain = domain;
      info.error_code = code;
      info.error_message = msg;
    }
    if (send_code && !close_sent && fd >= 0 &&
        (state == WsState::OPEN || state == WsState::CLOSING)) {
      info.sent_code = send_code;
      send_close (send_code, nullptr);
    }
    g_debug ("rtms-ws %s: %s", origin.c_str (), msg.c_str ());
    finish ();
  }

  void
  fail_protocol (gushort send_code, const char *what)
  {
    fail (SOUP_WEBSOCKET_ERROR, SOUP_WEBSOCKET_ERROR_FAILED, send_code, std::string ("WebSocket protocol error from ") + origin +
        ": " + what);
  }

  void
  fail_gerror (const GError *e, const char *stage)
  {
    fail (e->domain, e->code, 0,
        std::string (stage) + " " + origin + ": " + e->message);
  }

  /* ---- connect ---------------------------------------------------- */

  struct Weak {
    std::weak_ptr<Impl> w;
  };

  void
  start ()
  {
    state = WsState::CONNECTING;
    cancellable = g_cancellable_new ();
    g_autoptr (GError) err = nullptr;
    uri = g_uri_parse (cfg.url.c_str (), (GUriFlags) (G_URI_FLAGS_ENCODED |
        G_URI_FLAGS_SCHEME_NORMALIZE), &err);
    const char *scheme = uri ? g_uri_get_scheme (uri) : nullptr;
    const char *host = uri ? g_uri_get_host (uri) : nullptr;
    if (uri && scheme && !g_ascii_strcasecmp (scheme, "wss"))
      tls = true;
    bool ok = uri && scheme && host && *host &&
        (tls || !g_ascii_strcasecmp (scheme, "ws"));
    origin = safe_origin (uri);
    if (!ok) {
      info.error_domain = G_IO_ERROR;
      info.error_code = G_IO_ERROR_INVALID_ARGUMENT;
      info.error_message = "not a ws:// or wss:// URL with a host";
      idle_fail = g_idle_source_new ();
      g_source_set_callback (idle_fail, [](gpointer d) -> gboolean {
            auto *self = static_cast<Impl *> (d);
            g_source_unref (self->idle_fail);
            self->idle_fail = nullptr;
            self->finish ();
            return G_SOURCE_REMOVE;
          }, this, nullptr);
      g_source_attach (idle_fail, ctx);
      return;
    }
    int port = g_uri_get_port (uri);
    if (port <= 0)
      port = tls ? 443 : 80;
    if (cfg.connect_timeout_ms)
      start_timer (&connect_timer, cfg.connect_timeout_ms, [](gpointer d) {
            auto *self = static_cast<Impl *> (d);
            self->fail (G_IO_ERROR, G_IO_ERROR_TIMED_OUT, 0,
                "WebSocket connect to " + self->origin + " timed out");
          });
    g_autoptr (GSocketConnectable) addr = g_network_address_new (host,
        (guint16) port);
    g_autoptr (GSocketClient) client = g_socket_client_new ();
    g_main_context_push_thread_default (ctx);
    g_socket_client_connect_async (client, addr, cancellable, on_tcp,
        new Weak{ shared_from_this () });
    g_main_context_pop_thread_default (ctx);
  }

  static void
  on_tcp (GObject *src, GAsyncResult *res, gpointer data)
  {
    std::unique_ptr<Weak> weak (static_cast<Weak *> (data));
    g_autoptr (GError) err = nullptr;
    GSocketConnection *conn = g_socket_client_connect_finish (
        G_SOCKET_CLIENT (src), res, &err);
    auto self = weak->w.lock ();
    if (!self || self->state != WsState::CONNECTING) {
      g_clear_object (&conn);
      return;
    }
    if (!conn) {
      self->fail_gerror (err, "TCP connect to");
      return;
    }
    self->tcp = conn;
    /* TCP_NODELAY: every message is written whole in one send (header and
     * payload), so Nagle only delays the second of two small messages in a
     * row (msg 5 after msg 1's answer, msg 7 after msg 4, a pong) until the
     * server's delayed ACK, 40 ms on Linux (measured: a rejoin took 49 ms
     * instead of 11, Client.DetachKeepsTheStreamForAnotherClient). A
     * failure is harmless (a proxy's socket may refuse it): ignored. */
    g_socket_set_option (g_socket_connection_get_socket (conn), IPPROTO_TCP,
        TCP_NODELAY, 1, nullptr);
    if (!self->tls) {
      if (G_IS_TCP_WRAPPER_CONNECTION (conn)) {
        /* through a proxy that wraps the stream: read and write the
         * wrapper's pollable streams, not the fd (it may buffer) */
        GInputStream *in = g_io_stream_get_input_stream (G_IO_STREAM (conn));
        GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (conn));
        if (!G_IS_POLLABLE_INPUT_STREAM (in) ||
            !G_IS_POLLABLE_OUTPUT_STREAM (out) ||
            !g_pollable_input_stream_can_poll (G_POLLABLE_INPUT_STREAM (in)) ||
            !g_pollable_output_stream_can_poll (G_POLLABLE_OUTPUT_STREAM (out))) {
          self->fail (G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, 0,
              "proxy connection to " + self->origin + " is not pollable");
          return;
        }
        self->tls_in = G_POLLABLE_INPUT_STREAM (in);
        self->tls_out = G_POLLABLE_OUTPUT_STREAM (out);
      }
      self->start_upgrade ();
      return;
    }
    int port = g_uri_get_port (self->uri);
    g_autoptr (GSocketConnectable) identity = g_network_address_new (
        g_uri_get_host (self->uri), (guint16) (port > 0 ? port : 443));
    /* server identity → hostname check and SNI (glib-networking sends SNI
     * for DNS names); validation is always on (no accept-certificate
     * handler: any certificate error fails the handshake). */
    GIOStream *t = g_tls_client_connection_new (G_IO_STREAM (conn), identity,
        &err);
    if (!t) {
      self->fail_gerror (err, "TLS setup for");
      return;
    }
    self->tls_conn = G_TLS_CONNECTION (t);
    if (!self->cfg.ca_file.empty ()) {
      g_autoptr (GTlsDatabase) db = g_tls_file_database_new (
          self->cfg.ca_file.c_str (), &err);
      if (!db) {
        self->fail_gerror (err, "CA file for");
        return;
      }
      g_tls_connection_set_database (self->tls_conn, db);
    }
    g_main_context_push_thread_default (self->ctx);
    g_tls_connection_handshake_async (self->tls_conn, G_PRIORITY_DEFAULT,
        self->cancellable, on_tls, new Weak{ self });
    g_main_context_pop_thread_default (self->ctx);
  }

  static void
  on_tls (GObject *src, GAsyncResult *res, gpointer data)
  {
    std::unique_ptr<Weak> weak (static_cast<Weak *> (data));
    g_autoptr (GError) err = nullptr;
    gboolean ok = g_tls_connection_handshake_finish (G_TLS_CONNECTION (src),
        res, &err);
    auto self = weak->w.lock ();
    if (!self || self->state != WsState::CONNECTING)
      return;
    if (!ok) {
      self->fail_gerror (err, "TLS handshake with");
      return;
    }
    self->tls_in = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (
            G_IO_STREAM (self->tls_conn)));
    self->tls_out = G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (
            G_IO_STREAM (self->tls_conn)));
    self->start_upgrade ();
  }

  /* RFC 6455 §4.1: the opening handshake. libsoup writes the headers
   * (Upgrade, Connection, Sec-WebSocket-Key, Sec-WebSocket-Version) into a
   * SoupMessage that is never sent; we serialise them. */
  void
  start_upgrade ()
  {
    fd = g_socket_get_fd (g_socket_connection_get_socket (tcp));
    attach_io_source ();

    g_autoptr (SoupMessage) msg = soup_message_new_from_uri ("GET", uri);
    soup_websocket_client_prepare_handshake (msg, nullptr, nullptr, nullptr);
    SoupMessageHeaders *h = soup_message_get_request_headers (msg);
    accept_expected = ws_accept_key (soup_message_headers_get_one (h,
            "Sec-WebSocket-Key"));
    std::string req = "GET ";
    const char *path = g_uri_get_path (uri);
    req += (path && *path) ? path : "/";
    if (g_uri_get_query (uri)) {
      req += '?';
      req += g_uri_get_query (uri);
    }
    req += " HTTP/1.1\r\nHost: ";
    const char *host = g_uri_get_host (uri);
    bool v6 = strchr (host, ':') != nullptr;
    if (v6)
      req += '[';
    req += host;
    if (v6)
      req += ']';
    int port = g_uri_get_port (uri);
    if (port > 0 && port != (tls ? 443 : 80))
      req += ":" + std::to_string (port);
    req += "\r\n";
    SoupMessageHeadersIter it;
    soup_message_headers_iter_init (&it, h);
    const char *name, *value;
    while (soup_message_headers_iter_next (&it, &name, &value)) {
      req += name;
      req += ": ";
      req += value;
      req += "\r\n";
    }
    if (!cfg.user_agent.empty ())
      req += "User-Agent: " + cfg.user_agent + "\r\n";
    req += "\r\n";
    handshaking = true;
    write_or_queue ((const guint8 *) req.data (), req.size ());
  }

  /* RFC 6455 §4.1 ("the client MUST validate the server's response"), the
   * same checks as soup_websocket_client_verify_handshake (which needs a
   * SoupMessage whose status only a SoupSession can set). @head: the
   * response up to and including the CRLF before the blank line. */
  bool
  verify_response (const char *head, gsize len)
  {
    g_autoptr (SoupMessageHeaders) h = soup_message_headers_new (
        SOUP_MESSAGE_HEADERS_RESPONSE);
    guint status = 0;
    SoupHTTPVersion ver;
    /* soup_headers_parse_response() reads the status line with strtol():
     * it needs a NUL after the headers, which the receive buffer does not
     * have (AddressSanitizer: heap-buffer-overflow) */
    const std::string copy (head, len);
    if (!soup_headers_parse_response (copy.c_str (), (int) len, h, &ver, &status,
            nullptr)) {
      fail (SOUP_WEBSOCKET_ERROR, SOUP_WEBSOCKET_ERROR_NOT_WEBSOCKET, 0,
          "WebSocket upgrade with " + origin + ": malformed HTTP response");
      return false;
    }
    if (status != SOUP_STATUS_SWITCHING_PROTOCOLS) {
      /* status only: the reason phrase is server text */
      fail (SOUP_WEBSOCKET_ERROR, status == SOUP_STATUS_BAD_REQUEST ?
          SOUP_WEBSOCKET_ERROR_BAD_HANDSHAKE :
          SOUP_WEBSOCKET_ERROR_NOT_WEBSOCKET, 0,
          "WebSocket upgrade with " + origin + ": server answered HTTP " +
          std::to_string (status));
      return false;
    }
    const char *why = nullptr;
    const char *accept = soup_message_headers_get_one (h,
        "Sec-WebSocket-Accept");
    if (!soup_message_headers_header_equals (h, "Upgrade", "websocket"))
      why = "no \"Upgrade: websocket\"";
    else if (!soup_message_headers_header_contains (h, "Connection",
            "upgrade"))
      why = "no \"Connection: upgrade\"";
    else if (!accept || accept_expected != accept)
      why = "wrong Sec-WebSocket-Accept";
    else if (soup_message_headers_get_one (h, "Sec-WebSocket-Extensions"))
      why = "an extension we did not offer";   /* §4.1 item 5 */
    else if (soup_message_headers_get_one (h, "Sec-WebSocket-Protocol"))
      why = "a subprotocol we did not offer";  /* §4.1 item 6 */
    if (why) {
      fail (SOUP_WEBSOCKET_ERROR, SOUP_WEBSOCKET_ERROR_BAD_HANDSHAKE, 0,
          "WebSocket upgrade with " + origin + ": " + why);
      return false;
    }
    return true;
  }

  /* Returns false when the connection ended or the response is incomplete. */
  bool
  parse_handshake ()
  {
    const guint8 *p = rbuf + rstart;
    gsize n = rend - rstart;
    const void *end = memmem (p, n, "\r\n\r\n", 4);
    if (!end) {
      if (n >= cfg.max_handshake_bytes)
        fail (SOUP_WEBSOCKET_ERROR, SOUP_WEBSOCKET_ERROR_BAD_HANDSHAKE, 0,
            "WebSocket upgrade with " + origin + ": response head too long");
      return false;
    }
    gsize head = (const guint8 *) end - p + 2;
    if (!verify_response ((const char *) p, head))
      return false;
    rstart += head + 2;
    handshaking = false;
    state = WsState::OPEN;
    connect_timer.stop ();
    if (cb.on_open)
      cb.on_open ();
    return state == WsState::OPEN || state == WsState::CLOSING;
  }

  /* ---- writing ---------------------------------------------------- */

  guint8 *
  reserve_out (gsize n)
  {
    if (ostart == oend)
      ostart = oend = 0;
    if (oend + n > ocap) {
      if (ostart > 0) {
        memmove (obuf, obuf + ostart, oend - ostart);
        oend -= ostart;
        ostart = 0;
      }
      if (oend + n > ocap) {
        ocap = std::max (oend + n, std::max<gsize> (ocap * 2, 4096));
        obuf = (guint8 *) g_realloc (obuf, ocap);
      }
    }
    guint8 *p = obuf + oend;
    oend += n;
    return p;
  }

  void
  append_out (const void *data, gsize n)
  {
    memcpy (reserve_out (n), data, n);
  }

  /* Builds one masked frame (RFC 6455 §5.3: a new key per frame, the
   * source libsoup uses) at @out (≥ MAX_HEADER + @len bytes). Returns its
   * size. */
  static gsize
  build_frame (guint8 *out, guint8 opcode, const void *payload, gsize len)
  {
    guint32 key = g_random_int ();
    gsize hl = ws_write_client_header (out, opcode, len, key);
    if (len) {
      memcpy (out + hl, payload, len);
      ws_apply_mask (out + hl, len, key, 0);
    }
    return hl + len;
  }

  /* Sends one frame: with an empty queue a small frame is built on the
   * stack and written at once, and only what the socket does not take is
   * queued; otherwise it goes behind the queue. Returns false if the
   * connection ended (a write error). */
  bool
  send_frame (guint8 opcode, const void *payload, gsize len)
  {
    if (ostart == oend && len + MAX_HEADER <= STACK_FRAME) {
      guint8 frame[STACK_FRAME];
      return write_or_queue (frame, build_frame (frame, opcode, payload, len));
    }
    bool was_empty = ostart == oend;
    gsize n = build_frame (reserve_out (len + MAX_HEADER), opcode, payload,
        len);
    oend -= len + MAX_HEADER - n;   /* the header may be shorter than 14 */
    if (was_empty)
      return flush ();
    return true;   /* the writable source flushes in order */
  }

  /* Writes @n bytes at @data if nothing is queued, and queues what the
   * socket does not take (or all of it behind a queue). Returns false if
   * the connection ended. */
  bool
  write_or_queue (const guint8 *data, gsize n)
  {
    if (ostart < oend) {
      append_out (data, n);
      return true;
    }
    gssize w = write_some (data, n);
    if (w < 0)
      return false;
    if ((gsize) w < n) {
      append_out (data + w, n - (gsize) w);
      set_out_interest (true);
    }
    return true;
  }

  /* Sends a close frame (RFC 6455 §5.5.1) with @code (0: none) and
   * @reason. Returns false if the connection ended (a write error). */
  bool
  send_close (gushort code, const char *reason)
  {
    guint8 pl[MAX_CONTROL_PAYLOAD];
    gsize n = 0;
    if (code != 0) {
      pl[0] = (guint8) (code >> 8);
      pl[1] = (guint8) code;
      n = 2;
      if (reason) {
        gsize rl = strlen (reason);
        if (rl > MAX_CONTROL_PAYLOAD - 2)
          rl = MAX_CONTROL_PAYLOAD - 2;
        /* do not cut a UTF-8 sequence */
        const char *valid_end = nullptr;
        g_utf8_validate_len (reason, rl, &valid_end);
        rl = valid_end - reason;
        memcpy (pl + 2, reason, rl);
        n += rl;
      }
    }
    close_sent = true;
    return send_frame (OP_CLOSE, pl, n);
  }

  /* Writes what the socket takes of @n bytes at @data: the count written
   * (0 when it would block), or -1 if the connection ended (a write error;
   * fail() was called). */
  gssize
  write_some (const guint8 *data, gsize n)
  {
    gsize done = 0;
    while (done < n) {
      gssize w;
      if (tls_out) {
        g_autoptr (GError) err = nullptr;
        w = g_pollable_output_stream_write_nonblocking (tls_out,
            data + done, n - done, nullptr, &err);
        if (w < 0) {
          if (g_error_matches (err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            break;
          fail_gerror (err, "write to");
          return -1;
        }
      } else {
        w = ::send (fd, data + done, n - done, MSG_NOSIGNAL);
        if (w < 0) {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
          int e = errno;
          fail (G_IO_ERROR, g_io_error_from_errno (e), 0,
              std::string ("write to ") + origin + ": " + g_strerror (e));
          return -1;
        }
      }
      done += (gsize) w;
    }
    return (gssize) done;
  }

  /* Writes what the socket takes of the queue. Returns false if the
   * connection ended. A drained queue gives its storage back. */
  bool
  flush ()
  {
    if (ostart < oend) {
      gssize w = write_some (obuf + ostart, oend - ostart);
      if (w < 0)
        return false;
      ostart += (gsize) w;
    }
    if (ostart == oend) {
      ostart = oend = 0;
      g_free (obuf);
      obuf = nullptr;
      ocap = 0;
    }
    set_out_interest (ostart < oend);
    return true;
  }

  WsSendResult
  send (guint8 opcode, const void *data, gsize len)
  {
    if (state != WsState::OPEN || close_sent)
      return WsSendResult::NOT_OPEN;
    if (len > cfg.max_message_bytes)
      return WsSendResult::TOO_BIG;
    bool control = opcode >= OP_CLOSE;
    gsize limit = cfg.max_queued_bytes + (control ? CONTROL_SLACK : 0);
    if ((oend - ostart) + len + MAX_HEADER > limit)
      return WsSendResult::QUEUE_FULL;
    if (!control)
      counters.sent_messages++;
    send_frame (opcode, data, len);
    return WsSendResult::OK;
  }

  /* ---- reading ---------------------------------------------------- */

  void
  on_io (GIOCondition rev, gint64 now_us) override
  {
    rx_time_us = now_us;
    for (const void *p : cfg.hot_state)
      if (p)
        __builtin_prefetch (p);
    if (rev & G_IO_OUT) {
      if (!flush ())
        return;
    }
    if (rev & (G_IO_IN | G_IO_HUP | G_IO_ERR))
      read_some ();
  }

  /* Keeps the unparsed bytes [rstart, rend) of rbuf (an incomplete frame)
   * in carry for the next read; frees carry once it is empty (a partial
   * frame at the end of a read is rare when paced and once per 64 KiB
   * read in a burst: one small malloc, against a buffer held by every
   * idle connection). */
  void
  keep_leftover ()
  {
    gsize left = rend - rstart;
    if (rbuf == carry) {
      if (rstart > 0 && left > 0)
        memmove (carry, carry + rstart, left);
    } else if (left > 0) {
      if (left > carry_cap) {
        carry_cap = left;
        g_free (carry);
        carry = (guint8 *) g_malloc (carry_cap);
      }
      memcpy (carry, rbuf + rstart, left);
    }
    carry_len = left;
    if (left == 0)
      pending_need = 0;
    if (carry_len == 0 && carry) {
      g_free (carry);
      carry = nullptr;
      carry_cap = 0;
    }
    rbuf = nullptr;
    rstart = rend = 0;
  }

  /* Reads the socket until it would block (at most READS_PER_DISPATCH
   * reads) and parses what came. Each read goes into the thread's read
   * buffer behind the carried bytes of an incomplete frame, except while
   * a frame larger than one read is incomplete: that one is read straight
   * into carry, grown to the frame's size (≤ max_message_bytes + 14). */
  void
  read_some ()
  {
    for (int i = 0; i < READS_PER_DISPATCH; i++) {
      if (state == WsState::CLOSED)
        return;
      ThreadReadBuffer &shared = t_read_buffer;
      guint8 *own = nullptr;      /* a read of our own while shared is busy */
      guint8 *buf;
      gsize space;
      bool direct = pending_need > cfg.read_buffer_bytes;
      if (direct) {
        if (carry_cap < pending_need) {
          carry_cap = pending_need;
          carry = (guint8 *) g_realloc (carry, carry_cap);
        }
        buf = carry;
        space = pending_need - carry_len;
      } else {
        gsize need = carry_len + cfg.read_buffer_bytes;
        if (shared.busy) {
          own = (guint8 *) g_malloc (need);
          buf = own;
        } else {
          if (shared.cap < need) {
            g_free (shared.data);
            shared.data = (guint8 *) g_malloc (need);
            shared.cap = need;
          }
          buf = shared.data;
        }
        space = cfg.read_buffer_bytes;
      }
      guint8 *at = buf + carry_len;   /* behind the carried bytes */
      gssize n;
      if (tls_in) {
        g_autoptr (GError) err = nullptr;
        n = g_pollable_input_stream_read_nonblocking (tls_in, at, space,
            nullptr, &err);
        if (n < 0) {
          g_free (own);
          if (g_error_matches (err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            return;
          fail_gerror (err, "read from");
          return;
        }
      } else {
        n = recv (fd, at, space, 0);
        if (n < 0) {
          int e = errno;
          g_free (own);
          if (e == EINTR) {
            i--;
            continue;
          }
          if (e == EAGAIN || e == EWOULDBLOCK)
            return;
          fail (G_IO_ERROR, g_io_error_from_errno (e), 0,
              std::string ("read from ") + origin + ": " + g_strerror (e));
          return;
        }
      }
      if (n == 0) {
        g_free (own);
        on_eof ();
        return;
      }
      if (!handshaking) {
        counters.reads++;
        counters.bytes_read += (guint64) n;
      }
      /* the carried bytes go in front of what was read */
      if (!direct && carry_len > 0)
        memcpy (buf, carry, carry_len);
      rbuf = buf;
      rstart = 0;
      rend = carry_len + (gsize) n;
      carry_len = 0;
      pending_need = 0;
      bool borrowed = buf == shared.data && !own;
      if (borrowed)
        shared.busy = true;
      bool open = parse ();
      keep_leftover ();
      if (borrowed)
        shared.busy = false;
      g_free (own);
      if (!open)
        return;
      /* A plain socket that did not fill the buffer is drained (the
       * level-triggered poll wakes us if more came). TLS may hold decrypted
       * records the fd does not show: read on until WOULD_BLOCK. */
      if (!tls_in && (gsize) n < space)
        return;
    }
    /* budget used up with data possibly left in TLS: come back next
     * iteration even if the fd shows nothing */
    if (tls_in && polled)
      cfg.poller->again (this);
    else if (tls_in && io_source)
      g_source_set_ready_time (io_source, 0);
  }

  void
  on_eof ()
  {
    if (handshaking) {
      fail (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED, 0,
          "WebSocket upgrade with " + origin +
          ": connection closed before the response");
      return;
    }
    if (close_received) {
      info.clean = close_sent;
      finish ();
      return;
    }
    info.code = WS_CLOSE_ABNORMAL;   /* RFC 6455 §7.1.5 */
    bool mid = carry_len > 0 || skip_remaining > 0 || in_message;
    fail (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED, 0,
        std::string ("connection closed by ") + origin +
        " without a close frame" + (mid ? " (in the middle of a frame)" : ""));
  }

  void
  end_skip_if_done ()
  {
    if (skip_remaining == 0 && skip_fin) {
      skip_message = false;
      in_message = false;
      skip_fin = false;
    }
  }

  void
  deliver (bool text, const guint8 *data, gsize len)
  {
    if (text && !utf8_valid ((const char *) data, len)) {
      fail_protocol (WS_CLOSE_BAD_DATA, "invalid UTF-8 in a text message");
      return;
    }
    counters.messages++;
    if (cb.on_message)
      cb.on_message (text, (const char *) data, len);
  }

  /* Parses every complete frame in [rstart, rend). Returns false if the
   * connection ended. RFC 6455 §5.2 (framing), §5.4 (fragmentation), §5.5
   * (control frames), §5.1 (no masked server frame). */
  bool
  parse ()
  {
    if (handshaking && !parse_handshake ())
      return state != WsState::CLOSED;
    while (state == WsState::OPEN || state == WsState::CLOSING) {
      if (skip_remaining > 0) {
        gsize avail = rend - rstart;
        gsize n = (gsize) std::min<guint64> (avail, skip_remaining);
        rstart += n;
        skip_remaining -= n;
        counters.skipped_bytes += n;
        if (skip_remaining > 0)
          return true;
        end_skip_if_done ();
        continue;
      }
      const guint8 *p = rbuf + rstart;
      gsize avail = rend - rstart;
      if (avail < 2)
        return true;
      bool fin = p[0] & 0x80;
      guint8 opcode = p[0] & 0x0f;
      if (p[0] & 0x70) {
        fail_protocol (WS_CLOSE_PROTOCOL_ERROR,
            "RSV bits set without an extension (RFC 6455 §5.2)");
        return false;
      }
      if (p[1] & 0x80) {
        fail_protocol (WS_CLOSE_PROTOCOL_ERROR,
            "masked frame from the server (RFC 6455 §5.1)");
        return false;
      }
      guint64 len = p[1] & 0x7f;
      gsize hl = 2;
      if (len == 126) {
        if (avail < 4)
          return true;
        len = ((guint64) p[2] << 8) | p[3];
        hl = 4;
        if (len < 126) {
          fail_protocol (WS_CLOSE_PROTOCOL_ERROR,
              "non-minimal 16-bit length (RFC 6455 §5.2)");
          return false;
        }
      } else if (len == 127) {
        if (avail < 10)
          return true;
        len = 0;
        for (int i = 0; i < 8; i++)
          len = (len << 8) | p[2 + i];
        hl = 10;
        if (len >> 63) {
          fail_protocol (WS_CLOSE_PROTOCOL_ERROR,
              "64-bit length with the top bit set (RFC 6455 §5.2)");
          return false;
        }
        if (len <= 0xffff) {
          fail_protocol (WS_CLOSE_PROTOCOL_ERROR,
              "non-minimal 64-bit length (RFC 6455 §5.2)");
          return false;
        }
      }

      if (opcode >= OP_CLOSE) {
        if (opcode != OP_CLOSE && opcode != OP_PING && opcode != OP_PONG) {
          fail_protocol (WS_CLOSE_PROTOCOL_ERROR,
              "reserved control opcode (RFC 6455 §5.2)");
          return false;
        }
        if (!fin || len > MAX_CONTROL_PAYLOAD) {
          fail_protocol (WS_CLOSE_PROTOCOL_ERROR,
              "fragmented or long control frame (RFC 6455 §5.5)");
          return false;
        }
        if (avail < hl + len)
          return true;
        rstart += hl + (gsize) len;
        counters.frames++;
        if (!control_frame (opcode, p + hl, (gsize) len))
          return false;
        continue;
      }

      if (opcode != OP_CONTINUATION && opcode != OP_TEXT &&
          opcode != OP_BINARY) {
        fail_protocol (WS_CLOSE_PROTOCOL_ERROR,
            "reserved data opcode (RFC 6455 §5.2)");
        return false;
      }
      if (opcode == OP_CONTINUATION && !in_message) {
        fail_protocol (WS_CLOSE_PROTOCOL_ERROR,
            "continuation frame outside a message (RFC 6455 §5.4)");
        return false;
      }
      if (opcode != OP_CONTINUATION && in_message) {
        fail_protocol (WS_CLOSE_PROTOCOL_ERROR,
            "new message inside a fragmented one (RFC 6455 §5.4)");
        return false;
      }
      if (close_received) {
        /* §5.5.1: nothing after the close frame counts; drop it */
        rstart = rend;
        return true;
      }

      /* oversize: skip, never buffer (issue 8, docs/protocol.md §4.7) */
      guint64 so_far = in_message ? frag_len : 0;
      bool over = skip_message || len > cfg.max_message_bytes ||
          so_far > cfg.max_message_bytes - len;
      if (over) {
        if (!skip_message) {
          guint64 declared = len > G_MAXUINT64 - so_far ? G_MAXUINT64 :
              so_far + len;
          skip_message = true;
          in_message = true;
          frag_len = 0;
          counters.oversize++;
          counters.skipped_bytes += so_far;
          if (cb.on_oversize)
            cb.on_oversize (declared);
          if (state == WsState::CLOSED)
            return false;
        }
        rstart += hl;
        counters.frames++;
        skip_remaining = len;
        skip_fin = fin;
        end_skip_if_done ();
        continue;
      }

      if (avail < hl + len) {
        /* wait for the rest (read_some() sizes the next read by it) */
        pending_need = hl + (gsize) len;
        return true;
      }
      const guint8 *payload = p + hl;
      rstart += hl + (gsize) len;
      counters.frames++;
      if (fin && !in_message) {
        deliver (opcode == OP_TEXT, payload, (gsize) len);  /* in place */
        continue;
      }
      if (!in_message) {
        in_message = true;
        message_text = opcode == OP_TEXT;
        frag_len = 0;
      }
      if (frag_len + len > frag_cap) {
        frag_cap = std::max<gsize> (frag_len + (gsize) len, frag_cap * 2);
        frag = (guint8 *) g_realloc (frag, frag_cap);
      }
      if (len > 0)              /* frag is NULL until a fragment has bytes */
        memcpy (frag + frag_len, payload, (gsize) len);
      frag_len += (gsize) len;
      if (fin) {
        in_message = false;
        gsize n = frag_len;
        frag_len = 0;
        guint8 *done = frag;
        frag = nullptr;    /* an idle connection keeps no buffer */
        frag_cap = 0;
        deliver (message_text, done, n);
        g_free (done);
      }
    }
    return false;
  }

  /* Returns false if the connection ended. */
  bool
  control_frame (guint8 opcode, const guint8 *data, gsize len)
  {
    if (opcode == OP_PING) {
      if (close_sent || close_received)
        return true;
      /* §5.5.2: answer with a pong carrying the same payload */
      if ((oend - ostart) + len + MAX_HEADER >
          cfg.max_queued_bytes + CONTROL_SLACK)
        return true;   /* the peer floods pings while we cannot write */
      counters.pings++;
      return send_frame (OP_PONG, data, len);
    }
    if (opcode == OP_PONG) {
      if (cb.on_pong)
        cb.on_pong ((const char *) data, len);
      return state != WsState::CLOSED;
    }
    /* OP_CLOSE, §5.5.1 */
    if (close_received)
      return true;
    gushort code = WS_CLOSE_NO_STATUS;
    if (len == 1) {
      fail_protocol (WS_CLOSE_PROTOCOL_ERROR, "1-byte close payload");
      return false;
    }
    if (len >= 2) {
      code = (gushort) ((data[0] << 8) | data[1]);
      if (!close_code_valid (code)) {
        fail_protocol (WS_CLOSE_PROTOCOL_ERROR,
            "invalid close code (RFC 6455 §7.4)");
        return false;
      }
      if (!g_utf8_validate_len ((const char *) data + 2, len - 2, nullptr)) {
        fail_protocol (WS_CLOSE_BAD_DATA, "invalid UTF-8 in the close reason");
        return false;
      }
      info.reason.assign ((const char *) data + 2, len - 2);
    }
    close_received = true;
    info.code = code;
    /* both close frames exchanged once ours is out (§7.1.4 "cleanly") */
    info.clean = true;
    state = WsState::CLOSING;
    if (!close_sent) {
      /* echo the code (§5.5.1); none if there was none */
      if (!send_close (code == WS_CLOSE_NO_STATUS ? 0 : code, nullptr))
        return false;
    }
    /* the server closes TCP first (§7.1.1); wait for it, bounded */
    if (!close_timer.armed ())
      arm_close_timer ();
    return true;
  }

  void
  arm_close_timer ()
  {
    start_timer (&close_timer, cfg.close_timeout_ms, [](gpointer d) {
          auto *self = static_cast<Impl *> (d);
          if (!self->close_received) {
            self->info.code = WS_CLOSE_ABNORMAL;
            self->info.clean = false;
          }
          self->finish ();
        });
  }

  void
  close (gushort code, const char *reason)
  {
    switch (state) {
      case WsState::IDLE:
        state = WsState::CLOSED;
        return;
      case WsState::CONNECTING:
        fail (G_IO_ERROR, G_IO_ERROR_CANCELLED, 0,
            "WebSocket connect to " + origin + " cancelled");
        return;
      case WsState::OPEN:
        break;
      case WsState::CLOSING:
      case WsState::CLOSED:
        return;
    }
    if (code == 0 || code == WS_CLOSE_NO_STATUS || code == WS_CLOSE_ABNORMAL ||
        code == 1015 || code < 1000 || code > 4999)
      code = WS_CLOSE_NORMAL;
    /* state and timer first: a write error inside send_close() ends the
     * connection (finish() destroys the timer) */
    state = WsState::CLOSING;
    arm_close_timer ();
    send_close (code, reason);
  }
};

/* ---------------------------------------------------------------------- */

WsConnection::WsConnection (GMainContext *context, WsConfig config,
    WsCallbacks callbacks)
  : impl_ (std::make_shared<Impl> (context, std::move (config),
          std::move (callbacks)))
{
}

WsConnection::~WsConnection ()
{
  impl_->cb = WsCallbacks ();   /* no callback from the teardown */
  impl_->state = WsState::CLOSED;
  impl_->teardown ();
}

void
WsConnection::connect ()
{
  g_return_if_fail (impl_->state == WsState::IDLE);
  impl_->start ();
}

WsSendResult
WsConnection::send_text (const char *data, gsize len)
{
  return impl_->send (OP_TEXT, data, len);
}

WsSendResult
WsConnection::send_binary (const void *data, gsize len)
{
  return impl_->send (OP_BINARY, data, len);
}

WsSendResult
WsConnection::send_ping (const void *data, gsize len)
{
  if (len > MAX_CONTROL_PAYLOAD)
    return WsSendResult::TOO_BIG;
  return impl_->send (OP_PING, data, len);
}

void
WsConnection::close (gushort code, const char *reason)
{
  impl_->close (code, reason);
}

WsState
WsConnection::state () const
{
  return impl_->state;
}

const WsCounters &
WsConnection::counters () const
{
  return impl_->counters;
}

gint64
WsConnection::receive_time_us () const
{
  return impl_->rx_time_us;
}

gsize
WsConnection::queued_bytes () const
{
  return impl_->oend - impl_->ostart;
}

gsize
WsConnection::held_bytes () const
{
  return impl_->carry_cap + impl_->frag_cap + impl_->ocap;
}

} // namespace rtms
