/* zoomrtms-host — the HTTP front end: the listening socket, the accept loop
 * and the life of every connection, in front of a SoupServer that only
 * parses requests and runs the handlers.
 *
 * Why not soup_server_listen(): libsoup 3.2's SoupListener listens with a
 * backlog of 10, and when g_socket_accept() fails (EMFILE under the unit's
 * nofile limit) its listen_watch() returns G_SOURCE_REMOVE: the server never
 * accepts again and logs nothing (libsoup 3.2.3 soup-listener.c). SoupServer
 * also has no header, request or idle timeout, reads and buffers a request
 * body in full before any handler can answer (soup-server-message-io-http1.c
 * io_read(): the body is read even after an early handler set a status), and
 * takes the last of two Content-Length headers.
 *
 * What this does instead (the model of nginx's accept and connection
 * handling: ngx_event_accept.c, ngx_http_request.c):
 * - owns the listening socket (backlog SOMAXCONN unless configured) and
 *   hands each accepted socket to soup_server_accept_iostream();
 * - an accept loop that never stops: on EMFILE/ENFILE/ENOBUFS/ENOMEM it logs
 *   (at most once per 10 s), closes the oldest connection that has not sent
 *   a complete request header within 2 s, backs off 100 ms and accepts again;
 * - a cap on open connections below the fd limit (max-connections): at the
 *   cap, the oldest connection without a complete request header after 2 s
 *   is closed to make room (nginx's "reusable" connections; a younger one is
 *   likely a real webhook about to arrive); if there is none, accepting
 *   pauses and new connections wait in the kernel's backlog;
 * - a request timeout: a request (headers and body) not complete within
 *   request-timeout-s of its connection's accept is closed (slowloris);
 * - one request per connection: every response carries `Connection: close`.
 *   libsoup 3.2 keeps a connection alive only if its own listener accepted it
 *   (soup-server.c request_finished() tests priv->listeners), and 3.2.3 leaks
 *   the fd of a kept-alive connection the client closed while idle (fixed in
 *   3.3.0, upstream commit d20c6601); webhook senders open a connection per
 *   delivery, so nothing is lost;
 * - request framing checked when the headers are in, before any body byte is
 *   read (RFC 9112 §6.3): Content-Length together with Transfer-Encoding, or
 *   Content-Length values that differ or are not decimal → 400; a
 *   Content-Length over max-body-bytes → 413; a chunked body → 413 as soon as
 *   it passes max-body-bytes. These answers are written by this class on the
 *   connection taken from libsoup (soup_server_message_steal_connection()),
 *   followed by a lingering close (shutdown(SHUT_WR), then the rest of the
 *   request is read and discarded for at most 2 s, so the client sees the
 *   answer rather than a reset; nginx's lingering_close). Nothing over the
 *   limit is ever buffered.
 * Everything runs on the global-default main context, the one that runs the
 * SoupServer and every bus watch of the host (gstreamer-guide.md §3.3).
 */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace zhost {

/* Limits of the front end. Sources: the issue "Hostile and unusual input";
 * defaults follow nginx (client_header_timeout, lingering_time) scaled to
 * webhooks that arrive in one packet. */
struct HttpLimits {
  int backlog = 0;                /* listen(2) backlog; 0 = SOMAXCONN */
  int max_connections = 256;      /* open connections, see default_max_connections() */
  int request_timeout_s = 10;     /* accept → request complete, seconds */
  gsize max_body_bytes = 64 * 1024;  /* request body, bytes */
};

/** raise_nofile_limit:
 * Raises the soft RLIMIT_NOFILE to the hard limit (setrlimit(2)); the unit's
 * LimitNOFILE= sets both.
 * Returns: the soft limit in force afterwards (file descriptors).
 */
guint64 raise_nofile_limit ();

/** default_max_connections:
 * @nofile: the soft RLIMIT_NOFILE (file descriptors)
 * @max_engagements: [limits] max-engagements
 *
 * The default of [http] max-connections: @nofile minus a reserve for the
 * engagements' pipelines (16 fds each: 2 WebSockets, up to 6 output files,
 * GStreamer's wake-up fds) and 32 for the process itself; if that leaves
 * less than half of @nofile, half of @nofile. At most 8192 (about 20 KiB of
 * libsoup state per connection).
 * Returns: a number of connections, at least 1.
 */
int default_max_connections (guint64 nofile, int max_engagements);

class HttpFrontend {
 public:
  /* @server: the SoupServer whose handlers answer; not listening itself */
  HttpFrontend (SoupServer *server, const HttpLimits &limits);
  ~HttpFrontend ();
  HttpFrontend (const HttpFrontend &) = delete;
  HttpFrontend &operator= (const HttpFrontend &) = delete;

  /** listen:
   * Binds @address:@port (an IP literal; port 0 = ephemeral), listens with
   * the configured backlog and starts the accept loop.
   * Returns: false with a G_IO_ERROR (address not an IP, bind or listen
   * failed).
   */
  bool listen (const std::string &address, int port, GError **error);

  /** port: the bound port, 0 before listen(). */
  int port () const { return port_; }

  /** stop:
   * Closes the listening socket and every connection (lingering ones too).
   * Idempotent.
   */
  void stop ();

  /** extend:
   * The response to @msg (a long one: an event stream, a file download) may
   * take until @until_us (g_get_monotonic_time()): its connection leaves the
   * request timeout and the reclaiming at the cap, and is closed at
   * @until_us if it is still open (a client that stopped reading).
   * Returns: false if @msg is not on a connection of this front end.
   */
  bool extend (SoupServerMessage *msg, gint64 until_us);

  /** open_connections: connections currently open (accepted, not yet closed). */
  gsize open_connections () const { return conns_.size (); }

 private:
  struct Conn;

  static gboolean accept_cb (GSocket *socket, GIOCondition cond, gpointer data);
  static gboolean resume_cb (gpointer data);
  static gboolean sweep_cb (gpointer data);
  static gboolean reap_cb (gpointer data);
  static gboolean linger_cb (GSocket *socket, GIOCondition cond, gpointer data);
  static void request_started_cb (SoupServer *server, SoupServerMessage *msg,
      gpointer data);
  static void request_done_cb (SoupServer *server, SoupServerMessage *msg,
      gpointer data);
  static void got_headers_cb (SoupServerMessage *msg, gpointer data);
  static void got_chunk_cb (SoupServerMessage *msg, GBytes *chunk, gpointer data);

  void accept_some ();
  void pause_accept (guint resume_after_ms);
  void resume_accept ();
  bool make_room (bool force);
  void sweep (bool expire);
  Conn *conn_of (SoupServerMessage *msg);
  void refuse (Conn *c, SoupServerMessage *msg, guint status, const char *reason);
  void begin_close (Conn *c, const char *why);
  void drop (Conn *c);
  void log_accept_error (const GError *err);

  SoupServer *server_;
  HttpLimits limits_;
  GSocket *listen_socket_ = nullptr;
  GSource *accept_source_ = nullptr;
  guint resume_id_ = 0, sweep_id_ = 0, reap_id_ = 0;
  /* connections whose request finished: libsoup closes them right after */
  std::vector<GSocketAddress *> reap_;
  gulong started_handler_ = 0, finished_handler_ = 0, aborted_handler_ = 0;
  int port_ = 0;
  /* by remote address object: soup_server_message_get_remote_address()
   * returns the very object given to soup_server_accept_iostream() */
  std::map<GSocketAddress *, std::unique_ptr<Conn>> conns_;
  gsize closing_ = 0;           /* conns_ in state CLOSING */
  gint64 last_accept_log_us_ = 0;
  guint suppressed_accept_logs_ = 0;
};

} // namespace zhost
