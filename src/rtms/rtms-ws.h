/* zoomrtms — a WebSocket client transport of our own (issue 12).
 *
 * WsConnection is one client WebSocket (RFC 6455) driven entirely from a
 * GMainContext the caller gives (the shared I/O pool, design.md "Threads"):
 *
 *   TCP (GSocketClient) → TLS (GTlsClientConnection, glib-networking;
 *   certificate verification always on, SNI from the URL host, optional CA
 *   file) → HTTP/1.1 upgrade (request headers made by libsoup's
 *   soup_websocket_client_prepare_handshake, response parsed by
 *   soup_headers_parse_response) → our RFC 6455 framing.
 *
 * Why we upgrade ourselves instead of letting libsoup do it, and the measured
 * difference: docs/websocket.md.
 *
 * Receive path: one GSource per connection for its whole lifetime (a unix-fd
 * source on the socket), or one shared epoll GSource per context (WsPoller,
 * WsConfig::poller); on each wake-up the socket is read in bulk (up to
 * WsConfig::read_buffer_bytes, 64 KiB by default) into ONE buffer per
 * thread, shared by every connection whose source runs on that thread,
 * and every complete frame is parsed in place. A message that is a single
 * frame (the RTMS case, docs/protocol.md §4.7) is handed to on_message as a
 * pointer + length into that buffer: no allocation, no GSource, no GObject
 * signal per frame. A connection keeps only the bytes of an incomplete
 * frame between reads (copied out; a frame larger than one read is read
 * straight into a buffer of the frame's size, ≤ max_message_bytes + 14),
 * and fragmented messages are assembled in a buffer freed once delivered:
 * an idle connection holds no receive buffer (held_bytes(), and
 * docs/websocket.md §2 for the measured memory).
 *
 * Send path: frames are masked (RFC 6455 §5.3) and written at once when
 * nothing is queued (one send per message in the common case; a frame of
 * up to 4 KiB is built on the stack); what the socket does not take is
 * queued, bounded by WsConfig::max_queued_bytes, flushed when the socket is
 * writable, and the queue's storage is freed once it is drained.
 *
 * Limits: a message whose payload exceeds WsConfig::max_message_bytes is
 * skipped — its remaining payload bytes are discarded as they arrive, never
 * buffered — counted, reported through on_oversize, and the connection stays
 * up (issue 8; libsoup can only close with 1009).
 *
 * Threading: construct, connect(), send_*(), close() and destroy on the
 * thread that runs @context. Every callback runs there too. Do not destroy a
 * WsConnection from inside one of its callbacks: defer it
 * (IoContext::invoke_async or an idle source).
 */
#pragma once

#include <gio/gio.h>
#include <glib.h>

#include <functional>
#include <memory>
#include <string>

namespace rtms {

class WsPoller;

/* RFC 6455 §7.4.1 status codes used here. */
enum WsCloseCode : gushort {
  WS_CLOSE_NORMAL = 1000,
  WS_CLOSE_GOING_AWAY = 1001,
  WS_CLOSE_PROTOCOL_ERROR = 1002,
  WS_CLOSE_UNSUPPORTED_DATA = 1003,
  WS_CLOSE_NO_STATUS = 1005,        /* never sent: "no code in the close frame" */
  WS_CLOSE_ABNORMAL = 1006,         /* never sent: "no close frame at all" */
  WS_CLOSE_BAD_DATA = 1007,         /* invalid UTF-8 in a text message */
  WS_CLOSE_POLICY_VIOLATION = 1008,
  WS_CLOSE_TOO_BIG = 1009,
  WS_CLOSE_SERVER_ERROR = 1011,
};

struct WsConfig {
  /* ws:// or wss:// URL (docs/protocol.md §3.1: the webhook's server_urls,
   * or the media URL of msg 2). Path and query are sent verbatim. */
  std::string url;
  /* PEM file of the CA(s) to trust for wss:// instead of the system store
   * (same meaning as ClientConfig::ca_file). "" = system store. There is no
   * way to turn verification off (docs/protocol.md §3.1 [I]). */
  std::string ca_file;
  /* "User-Agent" request header; "" = none. No other extra header is sent
   * (docs/protocol.md §3.1). */
  std::string user_agent = "zoomrtms";
  /* TCP connect + TLS handshake + HTTP upgrade, ms. 0 = no limit. */
  guint connect_timeout_ms = 10000;
  /* After we send a close frame: how long to wait for the server's close
   * frame and its TCP close before we drop the socket (RFC 6455 §7.1.1), ms. */
  guint close_timeout_ms = 1000;
  /* Largest message payload delivered, bytes (docs/protocol.md §4.7: 4 MiB).
   * Larger messages are skipped (see on_oversize). Must be > 0. */
  guint64 max_message_bytes = 4 * 1024 * 1024;
  /* Size of one bulk read, bytes (at least 4096). Reads go into the
   * thread's shared buffer (at most 2 × the largest read_buffer_bytes of
   * the thread's connections + 16 KiB); only a frame larger than this is
   * read into a buffer of the connection's own, of the frame's size (≤
   * max_message_bytes + 14), freed once that frame is consumed. */
  gsize read_buffer_bytes = 64 * 1024;
  /* Bound of the send queue (bytes of frames not yet taken by the socket).
   * send_text() refuses a message that would exceed it. Control frames
   * (pong, close) may exceed it by at most 4 KiB. */
  gsize max_queued_bytes = 1024 * 1024;
  /* Largest HTTP response head accepted in the upgrade, bytes. */
  gsize max_handshake_bytes = 16 * 1024;
  /* Optional: watch the socket through this shared epoll set (one GSource
   * for every connection of the context) instead of a GSource of its own.
   * Must have been made for the same GMainContext. See WsPoller. */
  std::shared_ptr<WsPoller> poller;
  /* Optional: up to two addresses of the caller's state that on_message
   * reads first (a cache line each). When the socket is ready they are
   * prefetched before it is read, so their loads overlap the read
   * syscall instead of stalling the callback (hundreds of connections
   * per thread: a connection's state is out of the cache at each wake-up).
   * Only a hint: never dereferenced by rtms-ws. */
  const void *hot_state[2] = { nullptr, nullptr };
};

enum class WsState {
  IDLE,        /* constructed, connect() not called */
  CONNECTING,  /* TCP / TLS / upgrade in progress */
  OPEN,        /* frames flow both ways */
  CLOSING,     /* a close frame was sent or received (RFC 6455 §7.1.2) */
  CLOSED,      /* socket closed; on_closed has fired */
};
const char *ws_state_name (WsState s);

/* How a connection ended (on_closed). */
struct WsCloseInfo {
  /* true: both close frames were exchanged (RFC 6455 §7.1.4 "cleanly"). */
  bool clean = false;
  /* code of the server's close frame; 1005 if it had none; 1006 if none was
   * received (RFC 6455 §7.1.5). */
  gushort code = WS_CLOSE_ABNORMAL;
  std::string reason;        /* the server's close reason (UTF-8, ≤ 123 B) */
  /* Our failure, if any (connect, TLS, upgrade, protocol error, socket
   * error): a G_IO_ERROR / G_TLS_ERROR / SOUP_WEBSOCKET_ERROR domain+code and
   * a text for people. domain == 0 when the close was not a failure.
   * Protocol errors of the server (RFC 6455 §5, §7.4) are
   * SOUP_WEBSOCKET_ERROR_FAILED with sent_code 1002 or 1007. */
  GQuark error_domain = 0;
  int error_code = 0;
  std::string error_message; /* never contains the URL's query (secrets) */
  /* the close code we sent because of that failure (1002, 1007…), or 0 */
  gushort sent_code = 0;
};

struct WsCallbacks {
  /* The upgrade succeeded; send_*() may be used from here on. */
  std::function<void ()> on_open;
  /* One complete message. @data is borrowed (valid only during the call; it
   * points into the thread's receive buffer), @len bytes, not
   * NUL-terminated. Text
   * messages are valid UTF-8 (RFC 6455 §8.1). */
  std::function<void (bool is_text, const char *data, gsize len)> on_message;
  /* A message was skipped because it exceeded max_message_bytes.
   * @declared_bytes is the payload size known when it was detected (the
   * fragments so far plus the current frame's length). Fires once per
   * skipped message; the connection stays open. */
  std::function<void (guint64 declared_bytes)> on_oversize;
  /* A pong frame arrived (RFC 6455 §5.5.3); @data borrowed, ≤ 125 bytes. */
  std::function<void (const char *data, gsize len)> on_pong;
  /* The connection is over (after a close handshake, an error, EOF or
   * close()). Fires exactly once if connect() was called; never from inside
   * connect() itself, but possibly from inside close() (while CONNECTING)
   * or send_*() (a write error). */
  std::function<void (const WsCloseInfo &info)> on_closed;
};

/* Counters (read on the context's thread). */
struct WsCounters {
  guint64 messages = 0;        /* messages delivered to on_message */
  guint64 frames = 0;          /* frames received, all opcodes */
  guint64 bytes_read = 0;      /* bytes taken from the socket after the upgrade
                                  (TLS: decrypted bytes) */
  guint64 reads = 0;           /* read calls that returned data */
  guint64 oversize = 0;        /* messages skipped (on_oversize) */
  guint64 skipped_bytes = 0;   /* payload bytes discarded by skipping */
  guint64 pings = 0;           /* pings answered with a pong */
  guint64 sent_messages = 0;   /* send_text / send_binary accepted */
};

enum class WsSendResult {
  OK,          /* written or queued */
  NOT_OPEN,    /* state is not OPEN */
  QUEUE_FULL,  /* would exceed max_queued_bytes: nothing queued */
  TOO_BIG,     /* payload larger than max_message_bytes */
};

class WsConnection
{
public:
  /* @context: the GMainContext every source and callback of this connection
   * lives on (ref taken). Nothing happens until connect(). */
  WsConnection (GMainContext *context, WsConfig config, WsCallbacks callbacks);
  /* Drops the socket without a close handshake if still open (no callback
   * fires). Use close() first for a clean close. */
  ~WsConnection ();
  WsConnection (const WsConnection &) = delete;
  WsConnection &operator= (const WsConnection &) = delete;

  /* Starts TCP connect → TLS → upgrade. A bad URL fails asynchronously
   * through on_closed (G_IO_ERROR_INVALID_ARGUMENT), like every other
   * failure. Call once. */
  void connect ();

  /* Sends one text message as one frame (docs/protocol.md §4.7), masked
   * (RFC 6455 §5.3). @data must be valid UTF-8 (not checked: the caller's
   * JSON encoder guarantees it), @len bytes. */
  WsSendResult send_text (const char *data, gsize len);
  WsSendResult send_binary (const void *data, gsize len);
  /* Ping with @len ≤ 125 bytes of payload (RFC 6455 §5.5.2). */
  WsSendResult send_ping (const void *data = nullptr, gsize len = 0);

  /* Starts the close handshake (RFC 6455 §7.1.2) with @code (1000–4999, not
   * 1005/1006/1015) and @reason (UTF-8, truncated to 123 bytes). on_closed
   * fires when the server answers and closes TCP, or after
   * close_timeout_ms. While CONNECTING, aborts the connect (on_closed with
   * G_IO_ERROR_CANCELLED). No-op once CLOSING/CLOSED. */
  void close (gushort code = WS_CLOSE_NORMAL, const char *reason = nullptr);

  WsState state () const;
  const WsCounters &counters () const;
  /* When the bytes of the message being delivered were read: µs on
   * g_get_monotonic_time ()'s clock, taken once per wake-up of the socket's
   * source (one clock read for every socket a WsPoller dispatch serves, not
   * one per message), so it can be earlier than the message's read by the
   * time that dispatch has run so far (ms at most). Meaningful inside
   * on_message / on_oversize; 0 before the first read. */
  gint64 receive_time_us () const;
  /* Bytes queued for sending and not yet taken by the socket. */
  gsize queued_bytes () const;
  /* Bytes of buffer storage this connection holds now, allocated sizes:
   * an incomplete frame's bytes, a fragmented message being assembled,
   * the send queue. The thread's shared read buffer is not counted. 0
   * for a connection with nothing half-received or queued. */
  gsize held_bytes () const;

  struct Impl;

private:
  std::shared_ptr<Impl> impl_;
};

/* One epoll set as one GSource on a GMainContext, shared by many
 * WsConnections (WsConfig::poller). GLib's poll() scans every fd of the
 * context on every wake-up; with hundreds of sockets per I/O thread that
 * scan is most of the receive cost (docs/websocket.md, measured). With a
 * WsPoller the context polls two fds (its wakeup and the epoll fd) and
 * epoll_wait returns only the ready sockets. Level-triggered, so the
 * behaviour is that of a per-connection unix-fd source.
 *
 * Create, use and destroy on the context's thread; destroy after every
 * WsConnection using it (they hold a shared_ptr). Linux only. */
class WsPoller
{
public:
  /* Errors: aborts if epoll_create1 fails (out of fds at start-up). */
  explicit WsPoller (GMainContext *context);
  ~WsPoller ();
  WsPoller (const WsPoller &) = delete;
  WsPoller &operator= (const WsPoller &) = delete;
  GMainContext *context () const;

  /* Used by WsConnection (not needed by other callers). @fd: a socket;
   * @events: G_IO_IN and/or G_IO_OUT; @h is called with the ready
   * conditions (G_IO_IN/OUT/HUP/ERR) from the poller's GSource until
   * remove(). add/modify return false with errno set if epoll_ctl fails
   * (then the caller falls back to a GSource of its own). remove() may be
   * called from inside a dispatch: @h gets no further event. */
  /* @now_us: g_get_monotonic_time () read once at the start of the
   * dispatch, the same for every handler it calls. */
  struct Handler {
    virtual void on_io (GIOCondition revents, gint64 now_us) = 0;
  protected:
    virtual ~Handler () = default;
  };
  bool add (int fd, Handler *h, GIOCondition events);
  bool modify (int fd, Handler *h, GIOCondition events);
  void remove (int fd, Handler *h);
  /* Dispatch @h again on the next iteration even if its fd shows nothing
   * (TLS records already decrypted in memory). */
  void again (Handler *h);

  struct Impl;

private:
  std::unique_ptr<Impl> impl_;
};

/* Pure RFC 6455 helpers, exposed for tests and the benchmark. ------------ */

/* Writes the header of one client frame (FIN set, @opcode, MASK set with
 * @mask_key) for @payload_len bytes into @out (≥ 14 bytes). Returns its
 * length in bytes (6, 8 or 14; RFC 6455 §5.2 minimal length encoding). */
gsize ws_write_client_header (guint8 *out, guint8 opcode, guint64 payload_len,
    guint32 mask_key);
/* XORs @len bytes at @data with @mask_key starting at key byte @offset % 4
 * (RFC 6455 §5.3). In place. */
void ws_apply_mask (guint8 *data, gsize len, guint32 mask_key, gsize offset);
/* Sec-WebSocket-Accept for @key (RFC 6455 §4.2.2 item 5.4): base64 of the
 * SHA-1 of key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11". */
std::string ws_accept_key (const char *key);

} // namespace rtms
