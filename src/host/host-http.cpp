/* zoomrtms-host — the HTTP front end. See host-http.h. */
#include "host-http.h"

#include "host-common.h"

#include <gio/gnetworking.h>

#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <vector>

#define GST_CAT_DEFAULT zoomrtms_host_debug

namespace zhost {

namespace {

const gint64 kLingerUs = 2 * G_USEC_PER_SEC;    /* lingering close, at most */
const gint64 kCloseGraceUs = 1 * G_USEC_PER_SEC; /* shutdown → forced close */
const guint kBackoffMs = 100;                    /* after EMFILE & co */
const int kAcceptsPerWakeup = 64;
const int kClosingSlack = 64;                    /* closing, fd not yet freed */
const gint64 kAcceptLogEveryUs = 10 * G_USEC_PER_SEC;
/* At the cap, only a connection that has been waiting this long without a
 * complete request header is closed for room: in a burst of real webhooks
 * the young ones are about to send theirs (they wait in the backlog
 * instead); an idle or slowloris connection is old. */
const gint64 kReclaimAfterUs = 2 * G_USEC_PER_SEC;

const char *
reason_of (guint status)
{
  switch (status) {
    case SOUP_STATUS_BAD_REQUEST: return "Bad Request";
    case SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE: return "Payload Too Large";
    default: return soup_status_get_phrase (status);
  }
}

std::string
peer_text (GSocketAddress *a)
{
  if (!a || !G_IS_INET_SOCKET_ADDRESS (a))
    return "?";
  g_autofree gchar *ip = g_inet_address_to_string (
      g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (a)));
  return std::string (ip) + ":" +
      std::to_string (g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (a)));
}

/* RFC 9112 §6.3 / RFC 9110 §8.6: the framing headers of a request. */
struct Framing {
  bool has_te = false;
  bool has_cl = false;
  bool bad_cl = false;          /* not decimal, or values that differ */
  guint64 cl = 0;
};

void
add_content_length (Framing *f, const char *value)
{
  /* a field may itself be a list ("5, 5") */
  g_auto (GStrv) parts = g_strsplit (value, ",", -1);
  for (gchar **p = parts; *p; p++) {
    g_autofree gchar *v = g_strstrip (g_strdup (*p));
    guint64 n = 0;
    bool digits = *v != '\0' && strlen (v) <= 19;
    for (const gchar *c = v; digits && *c; c++)
      digits = g_ascii_isdigit (*c);
    if (!digits || !g_ascii_string_to_unsigned (v, 10, 0, G_MAXINT64, &n, nullptr)) {
      f->bad_cl = true;
      continue;
    }
    if (f->has_cl && n != f->cl)
      f->bad_cl = true;
    f->has_cl = true;
    f->cl = n;
  }
}

void
framing_header (const char *name, const char *value, gpointer data)
{
  auto *f = static_cast<Framing *> (data);
  if (g_ascii_strcasecmp (name, "Content-Length") == 0)
    add_content_length (f, value);
  else if (g_ascii_strcasecmp (name, "Transfer-Encoding") == 0)
    f->has_te = true;
}

} // namespace

struct HttpFrontend::Conn {
  HttpFrontend *fe = nullptr;
  GSocketConnection *stream = nullptr;  /* owned; what libsoup was given */
  GSocket *socket = nullptr;            /* owned by stream */
  GSocketAddress *remote = nullptr;     /* owned; the key in conns_ */
  GSocketAddress *local = nullptr;      /* owned */
  enum class State { REQUEST, RESPONSE, LINGER, CLOSING } state = State::REQUEST;
  gint64 accepted_us = 0;
  gint64 deadline_us = 0;               /* monotonic */
  bool headers_done = false;
  guint64 body_bytes = 0;
  GSource *linger_source = nullptr;

  ~Conn ()
  {
    if (linger_source) {
      g_source_destroy (linger_source);
      g_source_unref (linger_source);
    }
    if (stream && !g_io_stream_is_closed (G_IO_STREAM (stream)))
      g_io_stream_close (G_IO_STREAM (stream), nullptr, nullptr);
    g_clear_object (&stream);
    g_clear_object (&remote);
    g_clear_object (&local);
  }
};

guint64
raise_nofile_limit ()
{
  struct rlimit rl;
  if (getrlimit (RLIMIT_NOFILE, &rl) != 0)
    return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    struct rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (setrlimit (RLIMIT_NOFILE, &want) == 0)
      rl = want;
  }
  return rl.rlim_cur == RLIM_INFINITY ? G_MAXUINT32 : static_cast<guint64> (rl.rlim_cur);
}

int
default_max_connections (guint64 nofile, int max_engagements)
{
  guint64 reserve = 32 + 16 * static_cast<guint64> (MAX (max_engagements, 0));
  guint64 n = nofile > 2 * reserve ? nofile - reserve : nofile / 2;
  n = std::min<guint64> (n, 8192);
  return static_cast<int> (MAX (n, 1));
}

HttpFrontend::HttpFrontend (SoupServer *server, const HttpLimits &limits)
    : server_ (SOUP_SERVER (g_object_ref (server))), limits_ (limits)
{
  if (limits_.max_connections < 1)
    limits_.max_connections = 1;
  started_handler_ = g_signal_connect (server_, "request-started",
      G_CALLBACK (request_started_cb), this);
  finished_handler_ = g_signal_connect (server_, "request-finished",
      G_CALLBACK (request_done_cb), this);
  aborted_handler_ = g_signal_connect (server_, "request-aborted",
      G_CALLBACK (request_done_cb), this);
}

HttpFrontend::~HttpFrontend ()
{
  stop ();
  g_signal_handler_disconnect (server_, started_handler_);
  g_signal_handler_disconnect (server_, finished_handler_);
  g_signal_handler_disconnect (server_, aborted_handler_);
  g_object_unref (server_);
}

bool
HttpFrontend::listen (const std::string &address, int port, GError **error)
{
  g_autoptr (GInetAddress) ia = g_inet_address_new_from_string (address.c_str ());
  if (!ia) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "listen address %s is not an IP address", address.c_str ());
    return false;
  }
  GSocketFamily family = g_inet_address_get_family (ia);
  g_autoptr (GSocket) s = g_socket_new (family, G_SOCKET_TYPE_STREAM,
      G_SOCKET_PROTOCOL_TCP, error);
  if (!s)
    return false;
  if (family == G_SOCKET_FAMILY_IPV6)
    g_socket_set_option (s, IPPROTO_IPV6, IPV6_V6ONLY, TRUE, nullptr);
  g_socket_set_blocking (s, FALSE);
  g_socket_set_listen_backlog (s, limits_.backlog > 0 ? limits_.backlog : SOMAXCONN);
  g_autoptr (GSocketAddress) sa = g_inet_socket_address_new (ia,
      static_cast<guint16> (port));
  if (!g_socket_bind (s, sa, TRUE, error))
    return false;
  if (!g_socket_listen (s, error))
    return false;
  g_autoptr (GSocketAddress) bound = g_socket_get_local_address (s, error);
  if (!bound)
    return false;
  port_ = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  listen_socket_ = static_cast<GSocket *> (g_steal_pointer (&s));
  resume_accept ();
  sweep_id_ = g_timeout_add_seconds (1, sweep_cb, this);
  return true;
}

void
HttpFrontend::stop ()
{
  if (accept_source_) {
    g_source_destroy (accept_source_);
    g_clear_pointer (&accept_source_, g_source_unref);
  }
  if (resume_id_) {
    g_source_remove (resume_id_);
    resume_id_ = 0;
  }
  if (sweep_id_) {
    g_source_remove (sweep_id_);
    sweep_id_ = 0;
  }
  if (reap_id_) {
    g_source_remove (reap_id_);
    reap_id_ = 0;
  }
  reap_.clear ();
  if (listen_socket_) {
    g_socket_close (listen_socket_, nullptr);
    g_clear_object (&listen_socket_);
  }
  /* soup_server_disconnect() has closed the ones libsoup still had */
  conns_.clear ();
  closing_ = 0;
}

void
HttpFrontend::resume_accept ()
{
  if (!listen_socket_ || accept_source_)
    return;
  accept_source_ = g_socket_create_source (listen_socket_, G_IO_IN, nullptr);
  g_source_set_callback (accept_source_, G_SOURCE_FUNC (accept_cb), this, nullptr);
  g_source_attach (accept_source_, g_main_context_get_thread_default ());
}

void
HttpFrontend::pause_accept (guint resume_after_ms)
{
  if (accept_source_) {
    g_source_destroy (accept_source_);
    g_clear_pointer (&accept_source_, g_source_unref);
  }
  if (resume_after_ms && !resume_id_)
    resume_id_ = g_timeout_add (resume_after_ms, resume_cb, this);
}

gboolean
HttpFrontend::resume_cb (gpointer data)
{
  auto *self = static_cast<HttpFrontend *> (data);
  self->resume_id_ = 0;
  self->resume_accept ();
  return G_SOURCE_REMOVE;
}

gboolean
HttpFrontend::accept_cb (GSocket *, GIOCondition, gpointer data)
{
  static_cast<HttpFrontend *> (data)->accept_some ();
  return G_SOURCE_CONTINUE;
}

void
HttpFrontend::log_accept_error (const GError *err)
{
  gint64 now = g_get_monotonic_time ();
  if (last_accept_log_us_ && now - last_accept_log_us_ < kAcceptLogEveryUs) {
    suppressed_accept_logs_++;
    return;
  }
  g_warning ("accepting a connection failed: %s (%zu open); closing connections "
      "without a request and accepting again in %u ms (%u similar errors since "
      "the last report)", err->message, conns_.size (), kBackoffMs,
      suppressed_accept_logs_);
  last_accept_log_us_ = now;
  suppressed_accept_logs_ = 0;
}

void
HttpFrontend::accept_some ()
{
  for (int i = 0; i < kAcceptsPerWakeup; i++) {
    gsize closing = closing_;
    gsize live = conns_.size () - closing;
    if (live >= static_cast<gsize> (limits_.max_connections) && !make_room (false)) {
      /* every connection is busy with a request or young: new ones wait
       * in the backlog; a finished request or the next try resumes */
      pause_accept (kBackoffMs);
      return;
    }
    if (closing >= static_cast<gsize> (kClosingSlack)) {
      pause_accept (kBackoffMs);
      return;
    }
    GError *err = nullptr;
    GSocket *s = g_socket_accept (listen_socket_, nullptr, &err);
    if (!s) {
      if (g_error_matches (err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
        g_error_free (err);
        return;
      }
      bool resources = g_error_matches (err, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES)
          || g_error_matches (err, G_IO_ERROR, G_IO_ERROR_NO_SPACE)
          || g_error_matches (err, G_IO_ERROR, G_IO_ERROR_FAILED);
      if (resources) {
        /* ngx_event_accept(): EMFILE/ENFILE → disable accept for a while;
         * and free what can be freed */
        log_accept_error (err);
        g_error_free (err);
        make_room (true);
        pause_accept (kBackoffMs);
        return;
      }
      /* ECONNABORTED and the like: that client is gone, go on */
      GST_DEBUG ("accept: %s", err->message);
      g_error_free (err);
      continue;
    }
    g_socket_set_blocking (s, FALSE);
    g_socket_set_option (s, IPPROTO_TCP, TCP_NODELAY, TRUE, nullptr);
    GSocketAddress *remote = g_socket_get_remote_address (s, nullptr);
    GSocketAddress *local = g_socket_get_local_address (s, nullptr);
    if (!remote || !local) {
      g_clear_object (&remote);
      g_clear_object (&local);
      g_socket_close (s, nullptr);
      g_object_unref (s);
      continue;
    }
    auto c = std::make_unique<Conn> ();
    c->fe = this;
    c->stream = g_socket_connection_factory_create_connection (s);
    c->socket = s;
    g_object_unref (s);          /* the connection holds it */
    c->remote = remote;
    c->local = local;
    c->accepted_us = g_get_monotonic_time ();
    c->deadline_us = c->accepted_us + limits_.request_timeout_s * G_USEC_PER_SEC;
    Conn *raw = c.get ();
    conns_[remote] = std::move (c);
    GError *aerr = nullptr;
    if (!soup_server_accept_iostream (server_, G_IO_STREAM (raw->stream), local,
            remote, &aerr)) {
      GST_WARNING ("libsoup refused a connection: %s", aerr ? aerr->message : "?");
      g_clear_error (&aerr);
      conns_.erase (remote);
    }
  }
}

/* At the cap (or, @force, when accept() ran out of fds): frees what is
 * closed already, else closes the oldest connection whose request header is
 * not complete after kReclaimAfterUs (nginx closes "reusable" connections
 * the same way).
 * Returns: true if a slot is free now. */
bool
HttpFrontend::make_room (bool force)
{
  sweep (false);
  gsize live = 0;
  Conn *oldest = nullptr;
  gint64 young = g_get_monotonic_time () - kReclaimAfterUs;
  for (auto &kv : conns_) {
    Conn *c = kv.second.get ();
    if (c->state == Conn::State::CLOSING)
      continue;
    live++;
    if (c->state == Conn::State::REQUEST && !c->headers_done &&
        c->accepted_us <= young &&
        (!oldest || c->accepted_us < oldest->accepted_us))
      oldest = c;
  }
  if (!force && live < static_cast<gsize> (limits_.max_connections))
    return true;
  if (!oldest)
    return false;
  begin_close (oldest, "connection limit reached, closing the oldest "
      "connection without a complete request");
  return true;
}

/* Half of a close: shutdown(2) keeps the fd valid for libsoup, whose read
 * then fails and which closes the connection itself; sweep() closes what
 * libsoup did not within kCloseGraceUs. */
void
HttpFrontend::begin_close (Conn *c, const char *why)
{
  GST_INFO ("closing connection from %s: %s", peer_text (c->remote).c_str (), why);
  if (c->state == Conn::State::LINGER) {
    drop (c);
    return;
  }
  g_socket_shutdown (c->socket, TRUE, TRUE, nullptr);
  c->state = Conn::State::CLOSING;
  closing_++;
  c->deadline_us = g_get_monotonic_time () + kCloseGraceUs;
}

void
HttpFrontend::drop (Conn *c)
{
  if (c->state == Conn::State::CLOSING)
    closing_--;
  GSocketAddress *key = c->remote;
  conns_.erase (key);            /* ~Conn closes and unrefs */
}

void
HttpFrontend::sweep (bool expire)
{
  gint64 now = g_get_monotonic_time ();
  std::vector<Conn *> closed, expired;
  for (auto &kv : conns_) {
    Conn *c = kv.second.get ();
    if (g_io_stream_is_closed (G_IO_STREAM (c->stream)))
      closed.push_back (c);
    else if (expire && now >= c->deadline_us)
      expired.push_back (c);
  }
  for (Conn *c : closed)
    drop (c);
  guint timeouts = 0;
  for (Conn *c : expired) {
    switch (c->state) {
      case Conn::State::REQUEST:
        timeouts++;
        begin_close (c, "request timeout");
        break;
      case Conn::State::RESPONSE:
        begin_close (c, "the time allowed for its response is over");
        break;
      case Conn::State::LINGER:
        drop (c);
        break;
      case Conn::State::CLOSING:
        /* libsoup has seen the EOF by now and let go of it */
        drop (c);
        break;
    }
  }
  if (timeouts)
    g_message ("closed %u connection(s) whose request was not complete within "
        "%d s", timeouts, limits_.request_timeout_s);
  if (!accept_source_ && !resume_id_ && listen_socket_ &&
      conns_.size () < static_cast<gsize> (limits_.max_connections))
    resume_accept ();
}

gboolean
HttpFrontend::sweep_cb (gpointer data)
{
  static_cast<HttpFrontend *> (data)->sweep (true);
  return G_SOURCE_CONTINUE;
}

bool
HttpFrontend::extend (SoupServerMessage *msg, gint64 until_us)
{
  Conn *c = conn_of (msg);
  if (!c || c->state != Conn::State::REQUEST)
    return false;
  c->state = Conn::State::RESPONSE;
  c->deadline_us = until_us;
  return true;
}

HttpFrontend::Conn *
HttpFrontend::conn_of (SoupServerMessage *msg)
{
  GSocketAddress *a = soup_server_message_get_remote_address (msg);
  auto it = a ? conns_.find (a) : conns_.end ();
  return it == conns_.end () ? nullptr : it->second.get ();
}

void
HttpFrontend::request_started_cb (SoupServer *, SoupServerMessage *msg,
    gpointer data)
{
  auto *self = static_cast<HttpFrontend *> (data);
  if (!self->conn_of (msg))
    return;
  g_signal_connect (msg, "got-headers", G_CALLBACK (got_headers_cb), self);
  g_signal_connect (msg, "got-chunk", G_CALLBACK (got_chunk_cb), self);
  /* after the handler ran (soup-server.c connects its got-body first), and
   * not on a "100 Continue": one request per connection (see host-http.h) */
  g_signal_connect (msg, "got-body", G_CALLBACK (+[] (SoupServerMessage *m, gpointer) {
        soup_message_headers_replace (soup_server_message_get_response_headers (m),
            "Connection", "close");
      }), nullptr);
}

void
HttpFrontend::request_done_cb (SoupServer *, SoupServerMessage *msg, gpointer data)
{
  auto *self = static_cast<HttpFrontend *> (data);
  g_signal_handlers_disconnect_by_data (msg, self);
  /* libsoup closes the connection right after this signal (soup-server.c
   * request_finished()): free the slot then, without a full sweep */
  if (Conn *c = self->conn_of (msg)) {
    self->reap_.push_back (c->remote);
    if (!self->reap_id_)
      self->reap_id_ = g_idle_add (reap_cb, self);
  }
}

gboolean
HttpFrontend::reap_cb (gpointer data)
{
  auto *self = static_cast<HttpFrontend *> (data);
  self->reap_id_ = 0;
  std::vector<GSocketAddress *> keys;
  keys.swap (self->reap_);
  for (GSocketAddress *k : keys) {
    auto it = self->conns_.find (k);
    if (it != self->conns_.end () &&
        g_io_stream_is_closed (G_IO_STREAM (it->second->stream)))
      self->drop (it->second.get ());
  }
  if (!self->accept_source_ && !self->resume_id_ && self->listen_socket_ &&
      self->conns_.size () - self->closing_ < static_cast<gsize> (self->limits_.max_connections))
    self->resume_accept ();
  return G_SOURCE_REMOVE;
}

void
HttpFrontend::got_headers_cb (SoupServerMessage *msg, gpointer data)
{
  auto *self = static_cast<HttpFrontend *> (data);
  Conn *c = self->conn_of (msg);
  if (!c)
    return;
  if (c->state == Conn::State::CLOSING) {
    /* timed out or closed for room: libsoup takes the EOF for the end of
     * the header; keep the handler from running on a cut request */
    soup_server_message_set_status (msg, SOUP_STATUS_REQUEST_TIMEOUT, nullptr);
    return;
  }
  c->headers_done = true;
  Framing f;
  soup_message_headers_foreach (soup_server_message_get_request_headers (msg),
      framing_header, &f);
  if (f.has_cl && f.has_te) {
    self->refuse (c, msg, SOUP_STATUS_BAD_REQUEST,
        "Content-Length together with Transfer-Encoding");
  } else if (f.bad_cl) {
    self->refuse (c, msg, SOUP_STATUS_BAD_REQUEST,
        "Content-Length values differ or are not decimal");
  } else if (f.has_cl && f.cl > self->limits_.max_body_bytes) {
    std::string why = "Content-Length " + std::to_string (f.cl) +
        " over the limit of " + std::to_string (self->limits_.max_body_bytes) +
        " bytes";
    self->refuse (c, msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, why.c_str ());
  }
}

void
HttpFrontend::got_chunk_cb (SoupServerMessage *msg, GBytes *chunk, gpointer data)
{
  auto *self = static_cast<HttpFrontend *> (data);
  Conn *c = self->conn_of (msg);
  if (!c || c->state != Conn::State::REQUEST)
    return;
  c->body_bytes += g_bytes_get_size (chunk);
  if (c->body_bytes > self->limits_.max_body_bytes) {
    std::string why = "body passed the limit of " +
        std::to_string (self->limits_.max_body_bytes) + " bytes";
    self->refuse (c, msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, why.c_str ());
  }
}

/* Answers @status on the connection taken from libsoup, then closes it
 * lingering. Safe from got-headers and got-chunk: libsoup's io_read() does
 * not touch the message I/O after emitting them, as for the WebSocket
 * upgrade's steal from wrote-informational (soup-server.c). */
void
HttpFrontend::refuse (Conn *c, SoupServerMessage *msg, guint status,
    const char *reason)
{
  g_message ("refused a request from %s with %u: %s",
      peer_text (c->remote).c_str (), status, reason);
  g_signal_handlers_disconnect_by_data (msg, this);
  GIOStream *stolen = soup_server_message_steal_connection (msg);
  g_clear_object (&stolen);     /* libsoup's wrapper; c->stream stays open */
  const char *body = status == SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE
      ? "{\"error\":\"Payload too large\"}" : "{\"error\":\"Bad request\"}";
  std::string resp = "HTTP/1.1 " + std::to_string (status) + " " +
      reason_of (status) + "\r\nContent-Type: application/json\r\n"
      "Content-Length: " + std::to_string (strlen (body)) + "\r\n"
      "Connection: close\r\n\r\n" + body;
  /* nothing else was written for this request: the send buffer has room */
  g_socket_send_with_blocking (c->socket, resp.data (), resp.size (), FALSE,
      nullptr, nullptr);
  g_socket_shutdown (c->socket, FALSE, TRUE, nullptr);
  c->state = Conn::State::LINGER;
  c->deadline_us = g_get_monotonic_time () + kLingerUs;
  c->linger_source = g_socket_create_source (c->socket,
      static_cast<GIOCondition> (G_IO_IN | G_IO_HUP | G_IO_ERR), nullptr);
  g_source_set_callback (c->linger_source, G_SOURCE_FUNC (linger_cb), c, nullptr);
  g_source_attach (c->linger_source, g_main_context_get_thread_default ());
}

/* Reads and discards what the client still sends; closes at EOF or error. */
gboolean
HttpFrontend::linger_cb (GSocket *socket, GIOCondition, gpointer data)
{
  auto *c = static_cast<Conn *> (data);
  char buf[16384];
  for (int i = 0; i < 16; i++) {
    GError *err = nullptr;
    gssize n = g_socket_receive_with_blocking (socket, buf, sizeof buf, FALSE,
        nullptr, &err);
    if (n > 0)
      continue;
    bool again = n < 0 && g_error_matches (err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
    g_clear_error (&err);
    if (again)
      return G_SOURCE_CONTINUE;
    g_source_unref (c->linger_source);
    c->linger_source = nullptr;   /* removed by returning G_SOURCE_REMOVE */
    c->fe->drop (c);
    return G_SOURCE_REMOVE;
  }
  return G_SOURCE_CONTINUE;
}

} // namespace zhost
