/* zoomrtms-sim — signaling and media server (see sim-server.h).
 *
 * Per stream: msg 1 → msg 2 (status table new|old, §3.10), msg 3 → msg 4
 * (echoing the final media_params, payload_encrypted false, §4.3), msg 7 →
 * event 1 + participant events + msg 14/17 at send_rate, keep-alive msg 12 on
 * idle sockets (§3.9), msg 5/10/12/19/21 answered, and at the end msg 8
 * TERMINATED + msg 9 STOPPED before the sockets close (§3.8).
 */
#define G_LOG_DOMAIN "zoomrtms-sim"

#include "sim-server.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include <algorithm>
#include <cstring>

#include "rtms-auth.h"
#include "sim-tls.h"

namespace sim {

namespace {

/* A Video SDK webhook: @body with "session_key" added to its payload after
 * the id (docs/protocol.md §2.2: session_id, session_key, rtms_stream_id). */
std::string
with_session_key (const std::string &body, const std::string &session_key)
{
  gsize at = body.find ("\"rtms_stream_id\"");
  if (at == std::string::npos)
    return body;
  g_autofree gchar *k = g_strescape (session_key.c_str (), nullptr);
  return body.substr (0, at) + "\"session_key\":\"" + k + "\"," + body.substr (at);
}

constexpr size_t kBurstFrames = 50;     /* max frames per channel per tick */
constexpr gint64 kCloseDelayMs = 300;   /* msg 8/9 before the sockets close */
constexpr gint64 kHandshakeTimeoutUs = 30 * G_USEC_PER_SEC;
/* What a consumer replaced by a newer signaling handshake receives
 * (--duplicate-signal kick): the close reason on its signaling socket (code
 * 1008) and media sockets (code 1001). Zoom documents no signal for this
 * (docs/protocol.md §2.6, §3.4): this text is the sim's stable contract. */
constexpr char kKickReason[] = "replaced by a new signaling connection";

std::string
random_chars (const char *alphabet, int n)
{
  size_t len = strlen (alphabet);
  std::string s;
  for (int i = 0; i < n; i++)
    s += alphabet[g_random_int_range (0, (gint32) len)];
  return s;
}

const char kB64Url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const char kB64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const char kHex[] = "0123456789abcdef";

/* A connection frames may be sent on now: handshaken or not, neither closing
 * (by us or by the peer) nor closed. */
bool
usable (const Conn *c)
{
  return c && !c->closing && c->ws &&
      soup_websocket_connection_get_state (c->ws) == SOUP_WEBSOCKET_STATE_OPEN;
}

gint64
now_ms ()
{
  return g_get_real_time () / 1000;
}

void
json_add (JsonBuilder *b, const char *k, const std::string &v)
{
  json_builder_set_member_name (b, k);
  json_builder_add_string_value (b, v.c_str ());
}

void
json_add (JsonBuilder *b, const char *k, gint64 v)
{
  json_builder_set_member_name (b, k);
  json_builder_add_int_value (b, v);
}

std::string
builder_string (JsonBuilder *b, bool pretty = false)
{
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autofree char *s = json_to_string (root, pretty);
  return s;
}

} // namespace

std::string
json_escape (const std::string &s)
{
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char tmp[8];
          g_snprintf (tmp, sizeof tmp, "\\u%04x", c);
          out += tmp;
        } else {
          out += (char) c;
        }
    }
  }
  return out;
}

bool
Stream::wants_event (int event_type) const
{
  if (event_type == rtms::EVENT_FIRST_PACKET_TIMESTAMP)
    return true; /* sent without subscription (§3.5) */
  /* Without msg 5 every event is sent (ZCC-seed handles events it never
   * subscribed to, docs/protocol.md §11 #9); with msg 5 only subscribed ones. */
  return !got_subscription || subscribed.count (event_type) > 0;
}

/* C callbacks into Server. */
struct ServerCallbacks {
  static void websocket (SoupServer *, SoupServerMessage *msg,
      const char *path, SoupWebsocketConnection *ws, gpointer data)
  {
    static_cast<Server *> (data)->on_websocket (msg, path, ws);
  }
  static void message (SoupWebsocketConnection *, gint, GBytes *bytes,
      gpointer data)
  {
    auto *c = static_cast<Conn *> (data);
    gsize len = 0;
    const char *text = (const char *) g_bytes_get_data (bytes, &len);
    c->server->on_message (c, text, len);
  }
  static void closed (SoupWebsocketConnection *, gpointer data)
  {
    auto *c = static_cast<Conn *> (data);
    c->server->on_closed (c);
  }
  static void early (SoupServer *, SoupServerMessage *msg, const char *path,
      GHashTable *, gpointer data)
  {
    static_cast<Server *> (data)->on_upgrade_request (msg, path);
  }
  static gboolean tick (gpointer data)
  {
    return static_cast<Server *> (data)->tick ();
  }
  static gboolean housekeeping (gpointer data)
  {
    return static_cast<Server *> (data)->housekeeping ();
  }
};

Server::Server (const Options &opts, const Call &call)
  : opts_ (opts), call_ (call), cache_ (&call),
    codes_ (rtms::status_codes (opts.status_table))
{
}

Server::~Server ()
{
  if (dump_pool_)
    g_thread_pool_free (dump_pool_, FALSE, TRUE); /* writes what is queued */
  if (tick_id_)
    g_source_remove (tick_id_);
  if (housekeeping_id_)
    g_source_remove (housekeeping_id_);
  for (auto &c : conns_) {
    if (c->ws) {
      g_signal_handler_disconnect (c->ws, c->message_id);
      g_signal_handler_disconnect (c->ws, c->closed_id);
      if (soup_websocket_connection_get_state (c->ws) ==
          SOUP_WEBSOCKET_STATE_OPEN)
        soup_websocket_connection_close (c->ws, SOUP_WEBSOCKET_CLOSE_GOING_AWAY,
            nullptr);
      g_object_unref (c->ws);
    }
    g_clear_object (&c->socket);
  }
  conns_.clear ();
  if (soup_) {
    soup_server_disconnect (soup_);
    g_object_unref (soup_);
  }
}

bool
Server::start (GError **error)
{
  soup_ = soup_server_new ("server-header", "zoomrtms-sim ", nullptr);
  /* Base64 audio does not compress; permessage-deflate would only cost CPU. */
  soup_server_remove_websocket_extension (soup_,
      SOUP_TYPE_WEBSOCKET_EXTENSION_DEFLATE);
  if (opts_.tls) {
    std::string cert, key;
    if (!generate_self_signed (&cert, &key, error))
      return false;
    std::string pem = cert + key;
    g_autoptr (GTlsCertificate) tc = g_tls_certificate_new_from_pem (
        pem.c_str (), (gssize) pem.size (), error);
    if (!tc) {
      g_prefix_error (error, "TLS certificate: ");
      return false;
    }
    soup_server_set_tls_certificate (soup_, tc);
    if (!opts_.ca_out.empty () &&
        !g_file_set_contents (opts_.ca_out.c_str (), cert.c_str (),
            (gssize) cert.size (), error))
      return false;
  }
  for (const char *p : { "/signaling", "/media/all", "/media/audio",
          "/media/transcript" }) {
    /* --outage: the early handler answers 503 before the upgrade */
    soup_server_add_early_handler (soup_, p, ServerCallbacks::early, this,
        nullptr);
    soup_server_add_websocket_handler (soup_, p, nullptr, nullptr,
        ServerCallbacks::websocket, this, nullptr);
  }

  g_autoptr (GInetAddress) addr = g_inet_address_new_from_string (
      opts_.listen.c_str ());
  if (!addr) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "--listen %s is not an IP address", opts_.listen.c_str ());
    return false;
  }
  g_autoptr (GSocketAddress) sa = g_inet_socket_address_new (addr,
      (guint16) opts_.port);
  if (!soup_server_listen (soup_, sa,
          opts_.tls ? SOUP_SERVER_LISTEN_HTTPS : (SoupServerListenOptions) 0,
          error)) {
    g_prefix_error (error, "cannot listen on %s:%d: ", opts_.listen.c_str (),
        opts_.port);
    return false;
  }
  GSList *uris = soup_server_get_uris (soup_);
  if (uris) {
    port_ = g_uri_get_port ((GUri *) uris->data);
    g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  }
  scheme_ = opts_.tls ? "wss" : "ws";
  host_ = opts_.listen;
  if (host_ == "0.0.0.0")
    host_ = "127.0.0.1";
  else if (host_ == "::")
    host_ = "[::1]";
  else if (host_.find (':') != std::string::npos)
    host_ = "[" + host_ + "]";
  signaling_url_ = scheme_ + "://" + host_ + ":" + std::to_string (port_) +
      "/signaling";

  /* Prepare the streams. */
  for (int i = 0; i < opts_.engagements; i++) {
    auto s = std::make_unique<Stream> ();
    s->index = i;
    if (opts_.meeting) {
      /* meeting_uuid, webinar_uuid or session_id (docs/protocol.md §2.2) */
      s->id_key = opts_.id_key ();
      s->id_value = random_chars (kB64, 22) + "==";
      if (opts_.meeting_product == "session")
        s->session_key = "sim-session-" + random_chars (kHex, 8);
    } else {
      s->id_key = "engagement_id";
      s->id_value = (opts_.engagements == 1 && !opts_.engagement_id.empty ())
          ? opts_.engagement_id : random_chars (kB64Url, 22);
    }
    s->rtms_stream_id = (opts_.engagements == 1 && !opts_.rtms_stream_id.empty ())
        ? opts_.rtms_stream_id : random_chars (kHex, 32);
    s->rtms_session_id = random_chars (kHex, 10);
    for (int p = 0; p < 2; p++)
      s->channel_ids[p] = random_chars (kHex, 12);
    s->webhook_started = webhook_body (*s, "started", -1);
    streams_.push_back (std::move (s));
  }

  double speed = opts_.speed;
  guint tick_ms = speed <= 0 ? 1 : (guint) CLAMP (10.0 / speed, 1.0, 10.0);
  tick_id_ = g_timeout_add_full (G_PRIORITY_DEFAULT, tick_ms,
      ServerCallbacks::tick, this, nullptr);
  guint hk_ms = (guint) CLAMP (opts_.keepalive_ms / 4, 5, 100);
  housekeeping_id_ = g_timeout_add_full (G_PRIORITY_DEFAULT, hk_ms,
      ServerCallbacks::housekeeping, this, nullptr);

  if (!opts_.ready_file.empty ()) {
    std::string ready = "{\"signaling_url\":\"" + json_escape (signaling_url_)
        + "\",\"streams\":[";
    for (size_t i = 0; i < streams_.size (); i++) {
      if (i)
        ready += ",";
      ready += stream_json (*streams_[i]);
    }
    ready += "]}\n";
    /* g_file_set_contents writes a temporary file and renames it: readers
     * never see a partial file. */
    if (!g_file_set_contents (opts_.ready_file.c_str (), ready.c_str (),
            (gssize) ready.size (), error))
      return false;
  }
  g_message ("listening on %s (%d stream%s)", signaling_url_.c_str (),
      (int) streams_.size (), streams_.size () == 1 ? "" : "s");
  return true;
}

std::string
Server::webhook_body (const Stream &s, const char *kind, int stop_reason) const
{
  std::string event = opts_.event_prefix () + kind;
  bool started = strcmp (kind, "started") == 0;
  std::string body = rtms::encode_webhook (event, now_ms (), s.id_key, s.id_value,
      s.rtms_stream_id, started ? signaling_url_ : std::string (),
      stop_reason);
  if (!s.session_key.empty ())
    body = with_session_key (body, s.session_key);
  return body;
}

std::string
Server::stream_json (const Stream &s) const
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_add (b, s.id_key.c_str (), s.id_value);
  json_add (b, "id_key", s.id_key);
  json_add (b, "rtms_stream_id", s.rtms_stream_id);
  json_add (b, "server_urls", signaling_url_);
  json_builder_set_member_name (b, "webhook");
  {
    g_autoptr (JsonParser) p = json_parser_new ();
    if (json_parser_load_from_data (p, s.webhook_started.c_str (), -1,
            nullptr))
      json_builder_add_value (b, json_node_copy (json_parser_get_root (p)));
    else
      json_builder_add_null_value (b);
  }
  json_builder_set_member_name (b, "channels");
  json_builder_begin_array (b);
  for (int p = 0; p < 2; p++) {
    const Party &party = call_.parties[p];
    json_builder_begin_object (b);
    if (opts_.meeting)
      json_add (b, "user_id", std::to_string (party.meeting_user_id));
    else
      json_add (b, "channel_id", s.channel_ids[p]);
    json_add (b, "participant_mode", party.participant_mode);
    json_add (b, "role", party.role);
    json_add (b, "display_name", party.display_name);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  json_builder_end_object (b);
  return builder_string (b);
}

std::string
Server::gst_launch_line (const Stream &s) const
{
  std::string line = "gst-launch-1.0 -e zoomrtmssrc server-urls=" +
      signaling_url_;
  if (opts_.meeting)
    line += std::string (" '") + (opts_.meeting_product == "webinar" ?
        "webinar-uuid" : opts_.meeting_product == "session" ? "session-id" :
        "meeting-uuid") + "=\"" + s.id_value + "\"'";
  else
    line += " engagement-id=" + s.id_value;
  line += " rtms-stream-id=" + s.rtms_stream_id;
  if (opts_.tls && !opts_.ca_out.empty ())
    line += " ca-file=" + opts_.ca_out;
  line += opts_.meeting ? " data-opt=multi layout=mix" : " layout=stereo";
  line += " ! wavenc ! filesink location=call.wav";
  return line;
}

bool
Server::all_ended () const
{
  for (const auto &s : streams_)
    if (s->state != Stream::State::ENDED)
      return false;
  return true;
}

Stream *
Server::find_stream (const std::string &rtms_stream_id)
{
  for (auto &s : streams_)
    if (s->rtms_stream_id == rtms_stream_id)
      return s.get ();
  return nullptr;
}

/* ---- connections ---------------------------------------------------- */

/* --outage: while a window is open every WebSocket upgrade of that kind is
 * answered "503 Service Unavailable" (what a client sees when Zoom's edge
 * cannot reach the RTMS server behind it); a signaling outage refuses media
 * upgrades too (§4.9 row 2). */
void
Server::on_upgrade_request (SoupServerMessage *msg, const char *path)
{
  gint64 now = g_get_monotonic_time ();
  bool signaling = strcmp (path, "/signaling") == 0;
  bool refuse = now < refuse_signaling_until_us_ ||
      (!signaling && now < refuse_media_until_us_);
  if (!refuse)
    return;
  outage_refusals_++;
  g_message ("outage: WebSocket upgrade on %s refused with HTTP 503", path);
  soup_server_message_set_status (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
      nullptr);
  static const char body[] = "outage (zoomrtms-sim --outage)\n";
  soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC,
      body, sizeof body - 1);
}

/* Drops @c as a network loss would: no close frame, the TCP connection is
 * shut down (the peer reads EOF: "closed without a close frame", 1006). */
void
Server::drop_conn (Conn *c)
{
  if (!c || c->closing || !c->ws)
    return;
  c->closing = true;
  g_autoptr (GError) err = nullptr;
  if (!c->socket || !g_socket_shutdown (c->socket, TRUE, TRUE, &err)) {
    g_warning ("%s: cannot drop the connection: %s", c->path.c_str (),
        err ? err->message : "no socket");
    soup_websocket_connection_close (c->ws, SOUP_WEBSOCKET_CLOSE_GOING_AWAY,
        "outage");
  }
}

void
Server::start_outage (Stream &s, const Outage &o)
{
  gint64 until = g_get_monotonic_time () + o.dur_ms * 1000;
  g_message ("stream %s: %s outage: sockets dropped, upgrades refused for "
      "%" G_GINT64_FORMAT " ms", s.rtms_stream_id.c_str (),
      o.signaling ? "signaling" : "media", o.dur_ms);
  gap_begin (s, o.signaling ? "outage-signaling" : "outage-media");
  if (o.signaling) {
    refuse_signaling_until_us_ = MAX (refuse_signaling_until_us_, until);
    for (Conn *m : std::vector<Conn *> (s.media))
      drop_conn (m);
    drop_conn (s.sig);
  } else {
    refuse_media_until_us_ = MAX (refuse_media_until_us_, until);
    for (Conn *m : std::vector<Conn *> (s.media))
      drop_conn (m);
  }
}

/* The stream's consumer is gone (or replaced): from the next frame on,
 * nothing is sent until it is back (gap_end). */
void
Server::gap_begin (Stream &s, const char *cause)
{
  if (!s.started || s.state == Stream::State::ENDED || s.gap_since_us)
    return;
  s.gap_since_us = g_get_monotonic_time ();
  s.gap_from_frame = s.next_frame;
  s.gap_cause = cause;
  s.gap_lost_real_ms = now_ms ();
}

/* The consumer is back (signaling, media and msg 7): the audio went on on
 * the wall clock meanwhile. Default: the packets that fell due are skipped
 * (never sent); --replay-gap (with buffer_data not false): they are sent
 * now, in bursts (docs/protocol.md §4.9 "Media during the gap", §11 #12). */
void
Server::gap_end (Stream &s)
{
  if (!s.gap_since_us)
    return;
  gint64 now = g_get_monotonic_time ();
  const AudioFormat &f = s.audio->format;
  const size_t n = s.audio->n_frames;
  size_t target;
  if (opts_.speed > 0)
    target = (size_t) ((now - s.start_us) / 1000.0 * opts_.speed /
        f.send_rate_ms);
  else                          /* as fast as possible: skip the gap's length */
    target = s.next_frame + (size_t) ((now - s.gap_since_us) / 1000 /
        f.send_rate_ms);
  target = std::min (target, n);
  Gap g;
  g.cause = s.gap_cause;
  g.from_frame = std::min (s.gap_from_frame, s.next_frame);
  g.to_frame = std::max (target, s.next_frame);
  g.lost_real_ms = s.gap_lost_real_ms;
  g.resumed_real_ms = now_ms ();
  g.replayed = opts_.replay_gap && s.buffer_data;
  if (!g.replayed && target > s.next_frame)
    s.next_frame = target;
  s.gaps.push_back (g);
  s.gap_since_us = 0;
  g_message ("stream %s: consumer back after %" G_GINT64_FORMAT " ms (%s): "
      "frames %zu-%zu %s", s.rtms_stream_id.c_str (),
      g.resumed_real_ms - g.lost_real_ms, g.cause.c_str (), g.from_frame,
      g.to_frame, g.replayed ? "replayed" : "not sent");
}

void
Server::on_websocket (SoupServerMessage *msg, const char *path,
    SoupWebsocketConnection *ws)
{
  auto c = std::make_unique<Conn> ();
  c->server = this;
  GSocket *sock = soup_server_message_get_socket (msg);
  if (sock)
    c->socket = G_SOCKET (g_object_ref (sock));
  c->ws = SOUP_WEBSOCKET_CONNECTION (g_object_ref (ws));
  c->path = path;
  c->signaling = strcmp (path, "/signaling") == 0;
  c->accepted_us = g_get_monotonic_time ();
  c->message_id = g_signal_connect (ws, "message",
      G_CALLBACK (ServerCallbacks::message), c.get ());
  c->closed_id = g_signal_connect (ws, "closed",
      G_CALLBACK (ServerCallbacks::closed), c.get ());
  g_debug ("accepted WebSocket on %s", path);
  conns_.push_back (std::move (c));
}

void
Server::send (Conn *c, const std::string &text)
{
  if (!c || c->closing || !c->ws ||
      soup_websocket_connection_get_state (c->ws) != SOUP_WEBSOCKET_STATE_OPEN)
    return;
  g_debug ("%s ▶ %.200s", c->path.c_str (), text.c_str ());
  soup_websocket_connection_send_text (c->ws, text.c_str ());
}

void
Server::close_conn (Conn *c, gushort code, const char *reason)
{
  if (!c || c->closing)
    return;
  c->closing = true;
  if (soup_websocket_connection_get_state (c->ws) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (c->ws, code, reason);
}

void
Server::on_closed (Conn *c)
{
  g_debug ("WebSocket on %s closed", c->path.c_str ());
  Stream *s = c->stream;
  c->stream = nullptr;
  if (s) {
    gint64 now = g_get_monotonic_time ();
    if (c->signaling) {
      if (s->sig == c) {
        s->sig = nullptr;
        if (s->state != Stream::State::ENDED) {
          /* docs/protocol.md §3.9/§4.9 row 2: the server interrupts
           * signaling and media, then waits for a reconnection. */
          g_message ("stream %s: signaling connection lost, waiting %d s",
              s->rtms_stream_id.c_str (), opts_.signaling_grace_s);
          s->sig_lost_us = now;
          gap_begin (*s, "signaling");
          s->ready = false;
          for (Conn *m : std::vector<Conn *> (s->media))
            close_conn (m, SOUP_WEBSOCKET_CLOSE_GOING_AWAY,
                "signaling interrupted");
          if (s->state == Stream::State::CONNECTED && !s->started)
            s->state = Stream::State::PREPARED;
          if (s->started && interrupted_cb_)
            interrupted_cb_ (*s);
        }
      }
    } else {
      s->media.erase (std::remove (s->media.begin (), s->media.end (), c),
          s->media.end ());
      if (s->state != Stream::State::ENDED && s->media.empty () && s->started &&
          s->sig) {
        s->media_lost_us = now;
        gap_begin (*s, "media");
        s->ready = false;
        /* docs/protocol.md §4.9 row 3: event 7 on signaling */
        rtms::EventUpdate ev;
        ev.event_type = rtms::EVENT_MEDIA_CONNECTION_INTERRUPTED;
        ev.timestamp = now_ms ();
        send (s->sig, rtms::encode (ev));
      }
    }
  }
  /* Free it outside the signal emission. */
  g_signal_handler_disconnect (c->ws, c->message_id);
  g_signal_handler_disconnect (c->ws, c->closed_id);
  SoupWebsocketConnection *ws = c->ws;
  c->ws = nullptr;
  g_clear_object (&c->socket);
  g_idle_add_full (G_PRIORITY_DEFAULT, [](gpointer p) -> gboolean {
        g_object_unref (p);
        return G_SOURCE_REMOVE;
      }, ws, nullptr);
  conns_.remove_if ([c](const std::unique_ptr<Conn> &x) {
        return x.get () == c;
      });
}

void
Server::on_message (Conn *c, const char *text, gsize len)
{
  if (c->closing)
    return;
  g_debug ("%s ◀ %.*s", c->path.c_str (), (int) MIN (len, (gsize) 300), text);
  rtms::Message m;
  g_autoptr (GError) err = nullptr;
  if (!rtms::parse_message (text, (gssize) len, &m, &err)) {
    g_debug ("%s: bad message: %s", c->path.c_str (), err->message);
    if (!c->handshaken) {
      if (c->signaling)
        reject_signaling (c, codes_.invalid_payload);
      else
        reject_media (c, codes_.invalid_payload);
    }
    return;
  }
  /* keep-alive on either socket */
  if (m.kind == rtms::Message::Kind::KEEP_ALIVE_REQ) {
    send (c, rtms::encode_keep_alive (rtms::MSG_KEEP_ALIVE_RESP,
            m.keep_alive.timestamp));
    return;
  }
  if (m.kind == rtms::Message::Kind::KEEP_ALIVE_RESP) {
    if (c->outstanding_keepalive &&
        m.keep_alive.timestamp == c->outstanding_keepalive) {
      c->outstanding_keepalive = 0;
      c->keepalive_misses = 0;
    } else {
      g_debug ("%s: keep-alive echo with unknown timestamp %" G_GINT64_FORMAT,
          c->path.c_str (), m.keep_alive.timestamp);
    }
    return;
  }
  if (c->signaling) {
    if (m.kind == rtms::Message::Kind::SIGNALING_HANDSHAKE_REQ)
      handle_signaling_handshake (c, m);
    else if (!c->handshaken)
      reject_signaling (c, codes_.invalid_message_type);
    else
      handle_signaling (c, m);
  } else {
    if (m.kind == rtms::Message::Kind::DATA_HANDSHAKE_REQ)
      handle_media_handshake (c, m);
    else if (!c->handshaken)
      reject_media (c, codes_.invalid_message_type);
    else
      g_debug ("%s: ignoring msg_type %d", c->path.c_str (), m.msg_type);
  }
}

void
Server::reject_signaling (Conn *c, int status)
{
  rtms::SignalingHandshakeResp r;
  r.status_code = status;
  r.reason = rtms::status_code_name (status, opts_.status_table);
  g_message ("signaling handshake refused: %d %s", status, r.reason.c_str ());
  send (c, rtms::encode (r));
  close_conn (c, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, r.reason.c_str ());
}

void
Server::reject_media (Conn *c, int status)
{
  const char *reason = rtms::status_code_name (status, opts_.status_table);
  g_message ("media handshake refused: %d %s", status, reason);
  send (c, rtms::encode_data_handshake_resp (status, reason, false,
          rtms::MediaParams ()));
  close_conn (c, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, reason);
}

/* ---- handshakes ------------------------------------------------------ */

namespace {

/* Common identity checks of msg 1 and msg 3 (docs/protocol.md §3.2, §3.3).
 * Returns the status code (0 = OK). */
int
check_identity (const rtms::HandshakeIdentity &id, Stream *s,
    const Options &opts, const rtms::StatusCodes &codes)
{
  rtms::Product product;
  if (id.protocol_version != 1)
    return codes.invalid_payload;
  if (id.id_key.empty () || !rtms::product_from_id_key (id.id_key.c_str (),
          &product))
    return codes.invalid_payload;
  if (id.rtms_stream_id.empty () || !s)
    return codes.invalid_stream_id;
  if (id.id_value != s->id_value)
    return codes.invalid_stream_id;
  std::string expected = rtms::handshake_signature (opts.client_id,
      opts.client_secret, id.id_value, id.rtms_stream_id);
  if (!rtms::constant_time_equal (expected, id.signature))
    return codes.invalid_signature;
  return 0;
}

} // namespace

void
Server::handle_signaling_handshake (Conn *c, const rtms::Message &m)
{
  if (c->handshaken) {
    g_debug ("second msg 1 on one signaling socket ignored");
    return;
  }
  const rtms::HandshakeIdentity &id = m.sig_req.id;
  Stream *s = find_stream (id.rtms_stream_id);
  int status = check_identity (id, s, opts_, codes_);
  if (status == 0)
    s->handshake_id_key = id.id_key;     /* recorded in the dump (issue 14) */
  if (status == 0 && s->state == Stream::State::ENDED)
    status = codes_.invalid_stream_id;
  if (status == 0 && s->sig && !s->sig->closing) {
    if (opts_.kick_old_signaling) {
      /* "kick old" mode (docs/protocol.md §9.1): the newer connection wins */
      Conn *old = s->sig;
      g_message ("stream %s: new signaling connection replaces the old one",
          s->rtms_stream_id.c_str ());
      gap_begin (*s, "kick");
      s->kicks++;
      old->stream = nullptr;
      close_conn (old, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, kKickReason);
      for (Conn *mc : std::vector<Conn *> (s->media)) {
        mc->stream = nullptr;
        close_conn (mc, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, kKickReason);
      }
      s->media.clear ();
      s->sig = nullptr;
      s->ready = false;
    } else {
      status = codes_.duplicate_signal_request; /* one per stream (§3.4) */
    }
  }
  if (status != 0) {
    reject_signaling (c, status);
    return;
  }
  c->handshaken = true;
  c->stream = s;
  c->last_data_us = g_get_monotonic_time ();
  c->next_keepalive_us = c->last_data_us + (gint64) opts_.keepalive_ms * 1000;
  s->sig = c;
  s->sig_lost_us = 0;
  /* after a signaling (re)join the media grace runs from now (§4.9 row 2:
   * the consumer reconnects both), not from a media loss before the
   * signaling loss: that ended a rejoined stream at once with reason 19 */
  s->media_lost_us = (s->started && s->media.empty ()) ?
      g_get_monotonic_time () : 0;
  s->signaling_handshakes++;
  s->connect_deadline_us = 0;
  s->buffer_data = m.sig_req.buffer_data.value_or (true);
  if (s->state == Stream::State::PREPARED)
    s->state = Stream::State::CONNECTED;

  rtms::SignalingHandshakeResp r;
  r.status_code = 0;
  std::string base = scheme_ + "://" + host_ + ":" + std::to_string (port_);
  r.media_server.audio = base + "/media/audio";
  r.media_server.transcript = base + "/media/transcript";
  r.media_server.all = base + "/media/all";
  send (c, rtms::encode (r));
  g_message ("stream %s: signaling connected", s->rtms_stream_id.c_str ());
}

void
Server::handle_media_handshake (Conn *c, const rtms::Message &m)
{
  if (c->handshaken) {
    g_debug ("second msg 3 on one media socket ignored");
    return;
  }
  const rtms::HandshakeIdentity &id = m.data_req_id;
  Stream *s = find_stream (id.rtms_stream_id);
  int status = check_identity (id, s, opts_, codes_);
  if (status == 0 && (s->state == Stream::State::ENDED || !s->sig))
    status = codes_.invalid_stream_id;
  if (status != 0) {
    reject_media (c, status);
    return;
  }

  /* media_type vs path (docs/protocol.md §4.1) */
  int mt = m.media_type;
  int mask = 0;
  const int supported = rtms::MEDIA_AUDIO | rtms::MEDIA_TRANSCRIPT;
  if (c->path == "/media/all") {
    if (mt == rtms::MEDIA_ALL)
      mask = supported;
    else if (mt > 0 && (mt & ~supported) == 0)
      mask = mt;
  } else if (c->path == "/media/audio") {
    if (mt == rtms::MEDIA_AUDIO)
      mask = rtms::MEDIA_AUDIO;
  } else if (c->path == "/media/transcript") {
    if (mt == rtms::MEDIA_TRANSCRIPT)
      mask = rtms::MEDIA_TRANSCRIPT;
  }
  if (!mask) {
    reject_media (c, codes_.invalid_media_type);
    return;
  }
  for (Conn *o : s->media) {
    if (o->closing)
      continue;
    if ((o->media_mask & mask) || o->path == "/media/all" ||
        c->path == "/media/all") {
      reject_media (c, codes_.duplicate_media_connection);
      return;
    }
  }

  rtms::MediaParams echo;
  if (mask & rtms::MEDIA_AUDIO) {
    rtms::AudioParams p;
    if (m.media_params.audio) {
      p = *m.media_params.audio;
    } else {
      /* server defaults: --codec / --data-opt */
      p.codec = opts_.default_codec;
      p.sample_rate = p.codec == rtms::CODEC_OPUS ? rtms::SR_48K : rtms::SR_16K;
      p.data_opt = opts_.default_data_opt;
    }
    if (p.content_type == rtms::CONTENT_RTP)
      p.content_type = rtms::CONTENT_RAW_AUDIO; /* deprecated alias (§4.2) */
    int hz = rtms::sample_rate_hz (p.sample_rate);
    if (p.send_rate > 1000)
      p.send_rate = 1000; /* clamped (§4.2) */
    int st = 0;
    if (p.content_type != rtms::CONTENT_RAW_AUDIO)
      st = codes_.invalid_media_params;
    else if (p.codec != rtms::CODEC_L16 && p.codec != rtms::CODEC_OPUS)
      st = codes_.invalid_audio_codec;
    else if (hz == 0)
      st = codes_.invalid_audio_sample_rate;
    else if (p.codec == rtms::CODEC_OPUS && p.sample_rate != rtms::SR_48K)
      st = codes_.invalid_audio_sample_rate; /* OPUS ⇒ 48 kHz (§4.2) */
    else if (p.channel != rtms::CHANNEL_MONO)
      st = codes_.invalid_audio_channel;
    else if (p.data_opt != rtms::DATA_OPT_AUDIO_MIXED_STREAM &&
        p.data_opt != rtms::DATA_OPT_AUDIO_MULTI_STREAMS)
      st = codes_.invalid_audio_data_opt;
    else if (p.send_rate <= 0 || p.send_rate % 20 != 0)
      st = codes_.invalid_audio_send_rate;
    else if (p.codec == rtms::CODEC_OPUS && p.send_rate != 20)
      st = codes_.invalid_audio_send_rate; /* Opus packing > 20 ms undocumented */
    else if (p.frame_size != 0 && p.frame_size != hz * p.send_rate / 1000)
      st = codes_.invalid_media_params;
    if (st) {
      reject_media (c, st);
      return;
    }
    AudioFormat fmt;
    fmt.codec = p.codec;
    fmt.rate_hz = hz;
    fmt.send_rate_ms = p.send_rate;
    fmt.mixed = opts_.meeting && p.data_opt == rtms::DATA_OPT_AUDIO_MIXED_STREAM;
    g_autoptr (GError) err = nullptr;
    auto pa = cache_.get (fmt, &err);
    if (!pa) {
      g_warning ("cannot prepare audio: %s", err->message);
      reject_media (c, codes_.invalid_media_params);
      return;
    }
    if (s->audio && s->audio->format.send_rate_ms != fmt.send_rate_ms) {
      /* keep the call position across a renegotiation */
      s->next_frame = s->next_frame * s->audio->format.send_rate_ms /
          fmt.send_rate_ms;
    }
    s->audio = pa;
    s->audio_params = p;
    build_channels (*s); /* prefixes may depend on the format */
    echo.audio = p;
  }
  if (mask & rtms::MEDIA_TRANSCRIPT) {
    rtms::TranscriptParams t;
    if (m.media_params.transcript) {
      t = *m.media_params.transcript;
      if (t.content_type != rtms::CONTENT_TEXT) {
        reject_media (c, codes_.invalid_media_params);
        return;
      }
    }
    if (!t.has_src_language) {
      t.src_language = call_.language;
      t.has_src_language = true;
    }
    t.has_enable_lid = true;
    echo.transcript = t;
  }

  c->handshaken = true;
  c->stream = s;
  c->media_mask = mask;
  c->last_data_us = g_get_monotonic_time ();
  c->next_keepalive_us = c->last_data_us + (gint64) opts_.keepalive_ms * 1000;
  s->media.push_back (c);
  s->media_lost_us = 0;
  s->media_handshakes++;
  send (c, rtms::encode_data_handshake_resp (0, "", false, echo));
  g_message ("stream %s: media connected on %s", s->rtms_stream_id.c_str (),
      c->path.c_str ());
  if (s->audio && !s->dumped)
    write_dump_pcm (*s);
  maybe_start_streaming (*s);
}

/* ---- signaling after the handshake ------------------------------------ */

void
Server::handle_signaling (Conn *c, const rtms::Message &m)
{
  Stream *s = c->stream;
  if (!s)
    return;
  using K = rtms::Message::Kind;
  switch (m.kind) {
    case K::EVENT_SUBSCRIPTION:
      s->got_subscription = true;
      for (const auto &it : m.subscription.events) {
        if (it.subscribe)
          s->subscribed.insert (it.event_type);
        else
          s->subscribed.erase (it.event_type);
      }
      break;
    case K::CLIENT_READY_ACK:
      s->ready = true;
      maybe_start_streaming (*s);
      break;
    case K::SESSION_STATE_REQ: {
      rtms::SessionStateResp r;
      r.rtms_session_id = m.session_req.rtms_session_id.empty ()
          ? s->rtms_session_id : m.session_req.rtms_session_id;
      r.state = s->started ? rtms::SESSION_STARTED : rtms::SESSION_INITIALIZE;
      r.timestamp = now_ms ();
      send (c, rtms::encode (r));
      break;
    }
    case K::STREAM_STATE_REQ: {
      rtms::StreamStateResp r;
      r.rtms_stream_id = s->rtms_stream_id;
      r.state = (s->state == Stream::State::STREAMING && s->ready &&
          !s->media.empty ()) ? rtms::STREAM_ACTIVE : rtms::STREAM_INACTIVE;
      r.timestamp = m.stream_req.timestamp ? m.stream_req.timestamp : now_ms ();
      send (c, rtms::encode (r));
      break;
    }
    case K::STREAM_CLOSE_REQ: {
      rtms::StreamCloseResp r;
      r.rtms_stream_id = s->rtms_stream_id;
      send (c, rtms::encode (r));
      end_stream (*s, rtms::STOP_RECEIVER_REQUEST_CLOSE, true);
      break;
    }
    default:
      g_debug ("signaling: ignoring msg_type %d", m.msg_type);
  }
}

/* ---- streaming -------------------------------------------------------- */

void
Server::build_channels (Stream &s)
{
  std::vector<StreamChannel> old = std::move (s.channels);
  s.channels.clear ();
  auto add = [&](int party) {
    StreamChannel ch;
    ch.party = party;
    std::string prefix = "{\"msg_type\":14,\"content\":{";
    if (party < 0) {
      ch.role = "mixed";
      ch.channel_id = "0";
      prefix += "\"user_id\":0,";
    } else {
      const Party &p = call_.parties[party];
      ch.role = p.role;
      ch.participant_mode = p.participant_mode;
      if (opts_.meeting) {
        ch.channel_id = std::to_string (p.meeting_user_id);
        prefix += "\"user_id\":" + ch.channel_id + ",\"user_name\":\"" +
            json_escape (p.display_name) + "\",";
      } else {
        ch.channel_id = s.channel_ids[party];
        prefix += "\"channel_id\":\"" + json_escape (ch.channel_id) + "\",";
      }
    }
    prefix += "\"data\":\"";
    ch.prefix = prefix;
    for (const auto &o : old)
      if (o.role == ch.role) {
        ch.base_ts = o.base_ts;
        ch.sent = o.sent;
        ch.muted = o.muted;
        ch.duplicated = o.duplicated;
        ch.malformed = o.malformed;
        ch.first_ts = o.first_ts;
        ch.stalled = o.stalled;
        ch.frame_state = o.frame_state;
      }
    ch.frame_state.resize (s.audio->n_frames, 0);
    s.channels.push_back (std::move (ch));
  };
  if (s.audio->format.mixed)
    add (-1);
  else
    for (int p = 0; p < 2; p++)
      add (p);
}

Conn *
Server::audio_conn (Stream &s)
{
  for (Conn *c : s.media)
    if (!c->closing && (c->media_mask & rtms::MEDIA_AUDIO))
      return c;
  return nullptr;
}

Conn *
Server::transcript_conn (Stream &s)
{
  for (Conn *c : s.media)
    if (!c->closing && (c->media_mask & rtms::MEDIA_TRANSCRIPT))
      return c;
  return nullptr;
}

void
Server::send_event (Stream &s, const rtms::EventUpdate &ev)
{
  if (s.sig && s.wants_event (ev.event_type))
    send (s.sig, rtms::encode (ev));
}

void
Server::send_start_events (Stream &s)
{
  gint64 t0 = s.channels.empty () ? now_ms () : s.channels[0].base_ts;
  rtms::EventUpdate first;
  first.event_type = rtms::EVENT_FIRST_PACKET_TIMESTAMP;
  first.timestamp = t0;
  send_event (s, first);

  rtms::SessionStateUpdate ss;
  ss.state = rtms::SESSION_STARTED;
  ss.timestamp = t0;
  ss.rtms_session_id = s.rtms_session_id;
  if (s.sig)
    send (s.sig, rtms::encode (ss));

  if (opts_.meeting) {
    rtms::EventUpdate join;
    join.event_type = rtms::EVENT_PARTICIPANT_JOIN;
    join.timestamp = t0;
    for (const Party &p : call_.parties)
      join.participants.push_back ({ std::to_string (p.meeting_user_id),
          p.display_name });
    send_event (s, join);
    return;
  }
  if (opts_.events_after_ms > 0)
    s.answered_due_us = g_get_monotonic_time () +
        (gint64) opts_.events_after_ms * 1000;
  else
    send_answered_events (s);
}

void
Server::send_answered_events (Stream &s)
{
  gint64 t0 = s.channels.empty () ? now_ms () : s.channels[0].base_ts;
  /* ZCC: 8 CONSUMER_ANSWERED (customer, "caller"), 10 USER_ANSWERED (agent,
   * "callee") with participant_info (docs/protocol.md §3.6.2, §9.2). */
  const int types[2] = { rtms::ZCC_CONSUMER_ANSWERED,
      rtms::ZCC_USER_ANSWERED };
  const gint64 offsets[2] = { -3000, -1000 };
  for (int p = 0; p < 2; p++) {
    const Party &party = call_.parties[p];
    rtms::EventUpdate ev;
    ev.event_type = types[p];
    ev.timestamp = t0 + offsets[p];
    rtms::ParticipantInfo pi;
    pi.channel_id = s.channel_ids[p];
    pi.participant_mode = party.participant_mode;
    pi.queue_id = call_.queue_id;
    pi.queue_name = call_.queue_name;
    pi.phone_number = party.phone_number;
    pi.user_id = party.user_id;
    pi.display_name = party.display_name;
    ev.participant_info = pi;
    ev.misspelled_participant_info = opts_.misspelled_participant_info;
    send_event (s, ev);
  }
}

void
Server::maybe_start_streaming (Stream &s)
{
  if (s.state == Stream::State::ENDED || !s.sig || !s.ready || s.media.empty ())
    return;
  gint64 now = g_get_monotonic_time ();
  if (!s.started) {
    if (!s.audio) {
      /* transcript-only: frames still define the clock */
      AudioFormat fmt;
      fmt.mixed = opts_.meeting &&
          opts_.default_data_opt == rtms::DATA_OPT_AUDIO_MIXED_STREAM;
      g_autoptr (GError) err = nullptr;
      s.audio = cache_.get (fmt, &err);
      if (!s.audio) {
        fail_stream (s, err->message, rtms::STOP_INTERNAL_EXCEPTION);
        return;
      }
      build_channels (s);
    }
    s.started = true;
    s.start_us = now;
    gint64 t0 = now_ms ();
    s.started_real_ms = t0;
    for (auto &ch : s.channels)
      ch.base_ts = t0;
    send_start_events (s);
    g_message ("stream %s: streaming %zu frames per channel",
        s.rtms_stream_id.c_str (), s.audio->n_frames);
  } else {
    gap_end (s);
  }
  s.state = Stream::State::STREAMING;
}

bool
Server::is_muted (const StreamChannel &ch, gint64 t_ms) const
{
  for (const auto &m : opts_.mutes)
    if (m.role == ch.role && t_ms >= m.start_ms && t_ms < m.end_ms)
      return true;
  return false;
}

bool
Server::is_stalled (const StreamChannel &ch, gint64 t_ms) const
{
  for (const auto &w : opts_.stalls)
    if (w.role == ch.role && t_ms >= w.at_ms && t_ms < w.at_ms + w.dur_ms)
      return true;
  return false;
}

void
Server::send_transcripts_until (Stream &s, gint64 call_ms, Conn *tc)
{
  const auto &evs = call_.transcript_events;
  while (s.next_transcript < evs.size () &&
      evs[s.next_transcript].send_ms <= call_ms) {
    if (tc && !usable (tc))
      return;                   /* closing: kept for after the reconnection */
    const TranscriptEvent &te = evs[s.next_transcript++];
    if (!tc)
      continue;
    const Sentence &sen = call_.sentences[te.sentence];
    const Party &party = call_.parties[sen.party];
    gint64 base = s.channels.empty () ? 0 : s.channels[0].base_ts;
    for (const auto &ch : s.channels)
      if (ch.party == sen.party)
        base = ch.base_ts;
    rtms::TranscriptData t;
    if (opts_.meeting) {
      t.user_id = std::to_string (party.meeting_user_id);
      t.has_user_id = true;
      t.user_name = party.display_name;
    } else {
      t.channel_id = s.channel_ids[sen.party];
    }
    t.attribute = te.attribute;
    t.language = call_.language;
    t.text = sen.text;
    if (te.attribute != 1 && !t.text.empty ()) {
      /* the revision: capitalised and punctuated */
      t.text[0] = g_ascii_toupper (t.text[0]);
      t.text += ".";
    }
    t.timestamp = base + te.send_ms;
    t.start_time = base + sen.start_ms;
    t.end_time = base + sen.end_ms;
    t.sentence_id = te.sentence + 1;
    send (tc, rtms::encode (t));
    tc->last_data_us = g_get_monotonic_time ();
    s.transcripts_sent++;
  }
}

void
Server::send_frames (Stream &s, gint64 now_us)
{
  const AudioFormat &f = s.audio->format;
  const size_t n = s.audio->n_frames;
  size_t target;
  if (opts_.speed <= 0) {
    target = s.next_frame + kBurstFrames;
  } else {
    double elapsed_ms = (now_us - s.start_us) / 1000.0 * opts_.speed;
    target = (size_t) (elapsed_ms / f.send_rate_ms) + 1;
    /* buffer at most 60 s of backlog (buffer_data, §3.3) */
    size_t max_backlog = 60000 / f.send_rate_ms;
    if (target > s.next_frame + max_backlog)
      s.next_frame = target - max_backlog;
    target = std::min (target, s.next_frame + kBurstFrames);
  }
  target = std::min (target, n);
  if (target <= s.next_frame) {
    if (s.next_frame >= n && s.answered_due_us == 0) {
      /* every frame was sent before the delayed events 8/10: end now */
      send_transcripts_until (s, G_MAXINT64, transcript_conn (s));
      end_stream (s, opts_.product_stop_reason (), true);
    }
    return;
  }
  /* A media socket that is closing (the client's close frame arrived, a
   * write failed, or we close it) but not closed yet still counts in
   * s.media: send nothing and keep the frames, buffered for the
   * reconnection (buffer_data, §3.3) like during any other outage. Skipping
   * them here lost the frames of that window (Sim.MediaReconnectAfterEvent7
   * under load). */
  for (Conn *c : s.media)
    if (!usable (c))
      return;
  Conn *ac = audio_conn (s);
  Conn *tc = transcript_conn (s);
  const gint64 real_ms = now_ms ();
  bool sent_any = false;        /* muted frames are not data: idle (§3.9) */
  size_t k = s.next_frame;
  for (; k < target; k++) {
    const gint64 t_ms = (gint64) k * f.send_rate_ms;
    /* the socket may close under any send (a failed write closes it at
     * once): checked before each one; frame k is then kept for the
     * reconnection (its channels already sent come again: a replay the
     * client drops as duplicates) */
    if ((ac && !usable (ac)) || (tc && !usable (tc)))
      break;
    /* --outage: the sockets go at call time AT_MS, before its packets */
    if (s.next_outage < opts_.outages.size () &&
        opts_.outages[s.next_outage].at_ms <= t_ms) {
      start_outage (s, opts_.outages[s.next_outage++]);
      break;
    }
    if (!send_hostile_until (s, t_ms, ac,
            s.channels.empty () ? now_ms () : s.channels[0].base_ts + t_ms))
      break;
    /* meeting event 2 ACTIVE_SPEAKER_CHANGE at each turn */
    while (opts_.meeting && s.next_turn < call_.turns.size () &&
        call_.turns[s.next_turn].start_ms <= t_ms) {
      const Party &p = call_.parties[call_.turns[s.next_turn].party];
      if (s.sig && s.got_subscription &&
          s.subscribed.count (rtms::EVENT_ACTIVE_SPEAKER_CHANGE)) {
        rtms::EventUpdate ev;
        ev.event_type = rtms::EVENT_ACTIVE_SPEAKER_CHANGE;
        ev.timestamp = s.channels[0].base_ts + t_ms;
        ev.user_id = std::to_string (p.meeting_user_id);
        ev.user_name = p.display_name;
        send (s.sig, rtms::encode (ev));
      }
      s.next_turn++;
    }
    bool closed = false;
    if (ac) {
      for (size_t ci = 0; ci < s.channels.size (); ci++) {
        StreamChannel &ch = s.channels[ci];
        if (!usable (ac)) {
          closed = true;
          break;
        }
        if (is_stalled (ch, t_ms) && k + 1 < n) {
          /* --stall: held, sent in a burst after the window */
          if (ch.stall_from < 0)
            ch.stall_from = (gint64) k;
          continue;
        }
        if (ch.stall_from >= 0) {
          size_t from = (size_t) ch.stall_from;
          ch.stall_from = -1;
          for (size_t h = from; h < k; h++) {
            if (is_muted (ch, (gint64) h * f.send_rate_ms)) {
              ch.muted++;
              ch.frame_state[h] = 2;
            } else if (send_frame (s, ci, h, ac, real_ms)) {
              ch.stalled++;
            } else {
              ch.stall_from = (gint64) h; /* the rest after the reconnection */
              closed = true;
              break;
            }
          }
          if (closed)
            break;
        }
        if (is_muted (ch, t_ms)) {
          ch.muted++;
          ch.frame_state[k] = 2;
          continue;
        }
        if (!send_frame (s, ci, k, ac, real_ms)) {
          closed = true;
          break;
        }
        sent_any = true;
      }
      if (sent_any && !closed)
        ac->last_data_us = now_us;
    }
    if (closed)
      break;
    send_transcripts_until (s, t_ms + f.send_rate_ms, tc);
  }
  s.next_frame = k;
  if (s.sig && sent_any)
    s.sig->last_data_us = now_us;
  if (s.next_frame >= n && s.answered_due_us == 0) {
    send_transcripts_until (s, G_MAXINT64, tc);
    end_stream (s, opts_.product_stop_reason (), true);
  }
}

/* --hostile-frame: sends the frames due before the packets at call time
 * @t_ms (@stamp: their RTMS timestamp) on the audio socket @ac (else the
 * first media socket) or on signaling. Returns: false if the socket to use is
 * not usable (closing): the frame waits for the reconnection. */
bool
Server::send_hostile_until (Stream &s, gint64 t_ms, Conn *ac, gint64 stamp)
{
  const auto &hs = opts_.hostile_frames;
  while (s.next_hostile < hs.size () && hs[s.next_hostile].at_ms <= t_ms) {
    const HostileFrame &h = hs[s.next_hostile];
    Conn *c = h.signaling ? s.sig : (ac ? ac : (s.media.empty () ? nullptr :
            s.media.front ()));
    if (!usable (c))
      return false;
    bool binary = false;
    std::string frame = build_hostile_frame (h, stamp, &binary);
    g_message ("stream %s: hostile frame %s (%zu bytes, %s) on %s",
        s.rtms_stream_id.c_str (), h.kind.c_str (), frame.size (),
        binary ? "binary" : "text", c->path.c_str ());
    g_autoptr (GBytes) bytes = g_bytes_new (frame.data (), frame.size ());
    soup_websocket_connection_send_message (c->ws, binary ?
        SOUP_WEBSOCKET_DATA_BINARY : SOUP_WEBSOCKET_DATA_TEXT, bytes);
    s.next_hostile++;
    s.hostile_sent++;
  }
  return true;
}

/* Sends frame @k of channel @ci (with --malformed-every / --duplicate-every)
 * on @ac. The socket may close under any send (a failed write closes it at
 * once), so each send checks it first. Returns: false if the packet itself
 * could not be handed to the socket (not counted as sent: the caller keeps it
 * for the reconnection). */
bool
Server::send_frame (Stream &s, size_t ci, size_t k, Conn *ac, gint64 real_ms)
{
  const AudioFormat &f = s.audio->format;
  const gint64 t_ms = (gint64) k * f.send_rate_ms;
  char ts[64];
  StreamChannel &ch = s.channels[ci];
  const ChannelFrames &cf = s.audio->channels[ci];
  gint64 stamp = ch.base_ts + t_ms;
  buf_.assign (ch.prefix);
  buf_.append (cf.b64[k]);
  if (opts_.meeting)
    g_snprintf (ts, sizeof ts, "\",\"timestamp\":%" G_GINT64_FORMAT
        ",\"length\":%u}}", stamp, cf.bytes[k]);
  else
    g_snprintf (ts, sizeof ts, "\",\"timestamp\":%" G_GINT64_FORMAT "}}",
        stamp);
  buf_.append (ts);
  guint64 seq = ch.sent + ch.muted + 1;
  if (opts_.malformed_every > 0 && seq % opts_.malformed_every == 0) {
    if (!usable (ac))
      return false;
    std::string broken = buf_.substr (0, buf_.size () / 2);
    soup_websocket_connection_send_text (ac->ws, broken.c_str ());
    ch.malformed++;
  }
  if (!usable (ac))
    return false;
  soup_websocket_connection_send_text (ac->ws, buf_.c_str ());
  lag_hist_[(size_t) CLAMP (real_ms - stamp, 0, 1000)]++;
  ch.frame_state[k] = 1;
  if (ch.first_ts < 0 || stamp < ch.first_ts)
    ch.first_ts = stamp;
  ch.sent++;
  if (opts_.duplicate_every > 0 && seq % opts_.duplicate_every == 0 &&
      usable (ac)) {
    soup_websocket_connection_send_text (ac->ws, buf_.c_str ());
    ch.duplicated++;
  }
  return true;
}

bool
Server::tick ()
{
  gint64 now = g_get_monotonic_time ();
  for (auto &sp : streams_) {
    Stream &s = *sp;
    if (s.answered_due_us && now >= s.answered_due_us &&
        s.state != Stream::State::ENDED && s.sig) {
      s.answered_due_us = 0;
      send_answered_events (s);
    }
    if (s.state != Stream::State::STREAMING || !s.sig || !s.ready ||
        s.media.empty ())
      continue;
    send_frames (s, now);
  }
  return G_SOURCE_CONTINUE;
}

bool
Server::housekeeping ()
{
  gint64 now = g_get_monotonic_time ();
  const gint64 ka_us = (gint64) opts_.keepalive_ms * 1000;
  for (auto it = conns_.begin (); it != conns_.end (); ) {
    Conn *c = (it++)->get ();
    if (c->closing)
      continue;
    if (!c->handshaken) {
      if (now - c->accepted_us > kHandshakeTimeoutUs)
        close_conn (c, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION,
            "no handshake");
      continue;
    }
    /* keep-alive only while idle (docs/protocol.md §3.9, §4.8) */
    if (now - c->last_data_us < ka_us) {
      c->next_keepalive_us = MAX (c->next_keepalive_us, c->last_data_us + ka_us);
      continue;
    }
    if (now < c->next_keepalive_us)
      continue;
    if (c->outstanding_keepalive) {
      if (++c->keepalive_misses >= 3) {
        g_message ("%s: 3 keep-alives unanswered, closing", c->path.c_str ());
        close_conn (c, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "keep-alive timeout");
        continue;
      }
    }
    gint64 ts = now_ms ();
    if (ts <= c->outstanding_keepalive)
      ts = c->outstanding_keepalive + 1;
    c->outstanding_keepalive = ts;
    c->next_keepalive_us = now + ka_us;
    send (c, rtms::encode_keep_alive (rtms::MSG_KEEP_ALIVE_REQ, ts));
  }

  for (auto &sp : streams_) {
    Stream &s = *sp;
    if (s.state == Stream::State::ENDED)
      continue;
    if (s.state == Stream::State::PREPARED && s.connect_deadline_us &&
        now > s.connect_deadline_us && !s.sig) {
      fail_stream (s, "no client connected within " +
          std::to_string (opts_.connect_timeout_s) + " s",
          rtms::STOP_CONNECTION_TIMEOUT);
      continue;
    }
    if (!s.started)
      continue;
    if (!s.sig && s.sig_lost_us &&
        now - s.sig_lost_us > (gint64) opts_.signaling_grace_s * G_USEC_PER_SEC)
      end_stream (s, rtms::STOP_AWAIT_RECONNECTION_TIMEOUT, false);
    else if (s.sig && s.media.empty () && s.media_lost_us &&
        now - s.media_lost_us > (gint64) opts_.media_grace_s * G_USEC_PER_SEC)
      end_stream (s, rtms::STOP_AWAIT_RECONNECTION_TIMEOUT, true);
  }
  return G_SOURCE_CONTINUE;
}

/* ---- end of stream ---------------------------------------------------- */

void
Server::end_stream (Stream &s, int reason, bool notify_client)
{
  if (s.state == Stream::State::ENDED)
    return;
  s.stop_reason = reason;
  gint64 t = now_ms ();
  s.ended_real_ms = t;
  if (s.gap_since_us && s.audio) {
    /* ended without the consumer back (e.g. stop reason 19): the frames
     * that fell due until now were never sent */
    Gap g;
    g.cause = s.gap_cause;
    g.from_frame = std::min (s.gap_from_frame, s.next_frame);
    gint64 elapsed_us = g_get_monotonic_time () - (opts_.speed > 0 ?
        s.start_us : s.gap_since_us);
    size_t due = (size_t) (elapsed_us / 1000.0 * (opts_.speed > 0 ?
            opts_.speed : 1.0) / s.audio->format.send_rate_ms);
    if (opts_.speed <= 0)
      due += s.next_frame;
    g.to_frame = std::max (std::min (due, s.audio->n_frames), g.from_frame);
    g.lost_real_ms = s.gap_lost_real_ms;
    s.gaps.push_back (g);
    s.gap_since_us = 0;
  }
  if (notify_client && s.sig) {
    if (opts_.meeting) {
      rtms::EventUpdate leave;
      leave.event_type = rtms::EVENT_PARTICIPANT_LEAVE;
      leave.timestamp = t;
      for (const Party &p : call_.parties)
        leave.participants.push_back ({ std::to_string (p.meeting_user_id),
            "" });
      send_event (s, leave);
    } else if (reason == rtms::STOP_CUSTOMER_DISCONNECTED ||
        reason == rtms::STOP_AGENT_DISCONNECTED) {
      int p = reason == rtms::STOP_CUSTOMER_DISCONNECTED ? 0 : 1;
      rtms::EventUpdate ev;
      ev.event_type = p == 0 ? rtms::ZCC_CONSUMER_END : rtms::ZCC_USER_END;
      ev.timestamp = t;
      rtms::ParticipantInfo pi;
      pi.channel_id = s.channel_ids[p];
      pi.participant_mode = call_.parties[p].participant_mode;
      pi.user_id = call_.parties[p].user_id;
      pi.display_name = call_.parties[p].display_name;
      ev.participant_info = pi;
      ev.misspelled_participant_info = opts_.misspelled_participant_info;
      send_event (s, ev);
    }
    rtms::StreamStateUpdate su;
    su.state = rtms::STREAM_TERMINATED;
    su.reason = reason;
    su.timestamp = t;
    su.rtms_stream_id = s.rtms_stream_id;
    send (s.sig, rtms::encode (su));
    rtms::SessionStateUpdate ss;
    ss.state = rtms::SESSION_STOPPED;
    ss.stop_reason = reason;
    ss.timestamp = t;
    ss.rtms_session_id = s.rtms_session_id;
    send (s.sig, rtms::encode (ss));
  }
  s.state = Stream::State::ENDED;
  g_message ("stream %s ended: stop_reason %d %s", s.rtms_stream_id.c_str (),
      reason, rtms::stop_reason_name (reason));
  /* close the sockets a moment later, media first */
  struct CloseCtx {
    Server *server;
    std::string sid;
  };
  auto *ctx = new CloseCtx{ this, s.rtms_stream_id };
  g_timeout_add_full (G_PRIORITY_DEFAULT, (guint) kCloseDelayMs,
      [](gpointer p) -> gboolean {
        auto *cc = static_cast<CloseCtx *> (p);
        Stream *st = cc->server->find_stream (cc->sid);
        if (st)
          cc->server->finish_stream (*st);
        return G_SOURCE_REMOVE;
      }, ctx, [](gpointer p) { delete static_cast<CloseCtx *> (p); });
  write_dump_json (s);
}

void
Server::finish_stream (Stream &s)
{
  for (Conn *m : std::vector<Conn *> (s.media))
    close_conn (m, SOUP_WEBSOCKET_CLOSE_NORMAL, "stream ended");
  if (s.sig)
    close_conn (s.sig, SOUP_WEBSOCKET_CLOSE_NORMAL, "stream ended");
  if (ended_cb_)
    ended_cb_ (s);
  if (opts_.forever)
    reset_stream (s);
}

void
Server::fail_stream (Stream &s, const std::string &why, int reason)
{
  if (s.state == Stream::State::ENDED)
    return;
  s.failed = true;
  s.failure = why;
  g_warning ("stream %s failed: %s", s.rtms_stream_id.c_str (), why.c_str ());
  end_stream (s, reason, true);
}

void
Server::reset_stream (Stream &s)
{
  /* --forever: the stream can be played again */
  s.sig = nullptr;
  for (Conn *c : s.media)
    c->stream = nullptr;
  s.media.clear ();
  s.state = Stream::State::PREPARED;
  s.ready = false;
  s.started = false;
  s.got_subscription = false;
  s.subscribed.clear ();
  s.audio.reset ();
  s.channels.clear ();
  s.next_frame = s.next_transcript = s.next_turn = 0;
  s.transcripts_sent = 0;
  s.stop_reason = -1;
  s.failed = false;
  s.sig_lost_us = s.media_lost_us = 0;
  s.dumped = false;
  s.next_hostile = 0;
  s.hostile_sent = 0;
  s.signaling_handshakes = s.media_handshakes = 0;
  s.kicks = 0;
  s.gap_since_us = 0;
  s.gaps.clear ();
  s.next_outage = 0;
}

/* ---- --dump-dir --------------------------------------------------------- */

/* --dump-dir files are written by one worker thread, in the order queued
 * (a stream's PCM before its sent.json): writing 2 × ~2 MB per stream on the
 * main loop delayed every other stream's packets (300 engagements: ~10 % of
 * the packets ≥ 1 s late, send_lag_ms). */
struct DumpJob {
  std::string dir;
  std::shared_ptr<PreparedAudio> audio;
  std::vector<std::string> roles;        /* per channel of audio */
  std::vector<std::vector<guint8>> keep; /* per channel, per frame: 1 = samples, 0 = zeros */
  size_t frames = 0;                     /* frames written per channel */
  std::string json;                      /* sent.json text ("" = none) */
};

namespace {

void
write_file (const std::string &dir, const std::string &name, const char *data,
    size_t len)
{
  g_autofree char *path = g_build_filename (dir.c_str (), name.c_str (),
      nullptr);
  g_autoptr (GError) err = nullptr;
  /* atomic (temporary file + rename), no fsync */
  if (!g_file_set_contents_full (path, data, (gssize) len,
          G_FILE_SET_CONTENTS_CONSISTENT, 0666, &err))
    g_warning ("dump: %s", err->message);
}

void
run_dump_job (gpointer data, gpointer)
{
  std::unique_ptr<DumpJob> job (static_cast<DumpJob *> (data));
  if (g_mkdir_with_parents (job->dir.c_str (), 0755) != 0) {
    g_warning ("cannot create %s", job->dir.c_str ());
    return;
  }
  if (job->audio) {
    const AudioFormat &f = job->audio->format;
    const size_t frame_samples = (size_t) f.rate_hz * f.send_rate_ms / 1000;
    for (size_t ci = 0; ci < job->roles.size (); ci++) {
      const std::vector<gint16> &pcm = job->audio->channels[ci].pcm;
      size_t n = MIN (pcm.size (), job->frames * frame_samples);
      std::string bytes (n * 2, '\0');
      for (size_t i = 0; i < n; i++) {
        size_t k = i / frame_samples;
        guint16 v = (k < job->keep[ci].size () && job->keep[ci][k]) ?
            (guint16) pcm[i] : 0;
        bytes[2 * i] = (char) (v & 0xff);
        bytes[2 * i + 1] = (char) (v >> 8);
      }
      write_file (job->dir, job->roles[ci] + ".pcm", bytes.data (),
          bytes.size ());
    }
  }
  if (!job->json.empty ())
    write_file (job->dir, "sent.json", job->json.data (), job->json.size ());
}

} // namespace

void
Server::queue_dump (DumpJob *job)
{
  if (!dump_pool_)
    dump_pool_ = g_thread_pool_new (run_dump_job, nullptr, 1, TRUE, nullptr);
  g_thread_pool_push (dump_pool_, job, nullptr);
}

/* The PCM that was encoded, with muted frames (final: every frame not sent,
 * up to the last frame sent on any channel) as zeros: what a receiver that
 * fills gaps with silence must reconstruct. */
void
Server::write_dump_pcm (Stream &s, bool final, const std::string &json)
{
  s.dumped = true;
  if (opts_.dump_dir.empty ())
    return;
  auto job = std::make_unique<DumpJob> ();
  g_autofree char *dir = g_build_filename (opts_.dump_dir.c_str (),
      s.rtms_stream_id.c_str (), nullptr);
  job->dir = dir;
  job->json = json;
  if (s.audio) {
    const AudioFormat &f = s.audio->format;
    job->audio = s.audio;
    job->frames = final ? pcm_frames (s) : s.audio->n_frames;
    for (const StreamChannel &ch : s.channels) {
      job->roles.push_back (ch.role);
      std::vector<guint8> keep (job->frames, 0);
      for (size_t k = 0; k < job->frames; k++)
        keep[k] = final ? (k < ch.frame_state.size () && ch.frame_state[k] == 1)
            : !is_muted (ch, (gint64) k * f.send_rate_ms);
      job->keep.push_back (std::move (keep));
    }
  }
  queue_dump (job.release ());
}

/* frames in the final PCM: up to the last frame sent on any channel */
size_t
Server::pcm_frames (const Stream &s) const
{
  size_t frames = 0;
  for (const auto &ch : s.channels)
    for (size_t k = ch.frame_state.size (); k > frames; k--)
      if (ch.frame_state[k - 1] == 1) {
        frames = k;
        break;
      }
  return frames;
}

void
Server::write_dump_json (Stream &s)
{
  if (opts_.dump_dir.empty ())
    return;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_add (b, s.id_key.c_str (), s.id_value);
  json_add (b, "id_key", s.id_key);
  /* the id key the client's msg 1 used (docs/protocol.md §3.3, §11 row 3) */
  json_add (b, "handshake_id_key", s.handshake_id_key);
  json_add (b, "rtms_stream_id", s.rtms_stream_id);
  if (s.audio) {
    const AudioFormat &f = s.audio->format;
    json_add (b, "codec", std::string (rtms::codec_name (f.codec)));
    json_add (b, "rate", (gint64) f.rate_hz);
    json_add (b, "send_rate", (gint64) f.send_rate_ms);
    json_add (b, "frames_total", (gint64) s.audio->n_frames);
  }
  json_add (b, "stop_reason", (gint64) s.stop_reason);
  json_builder_set_member_name (b, "failed");
  json_builder_add_boolean_value (b, s.failed);
  json_add (b, "transcripts_sent", (gint64) s.transcripts_sent);
  json_add (b, "hostile_frames_sent", (gint64) s.hostile_sent);
  json_add (b, "signaling_handshakes", (gint64) s.signaling_handshakes);
  json_add (b, "media_handshakes", (gint64) s.media_handshakes);
  json_add (b, "kicks", (gint64) s.kicks);
  json_add (b, "frames_in_pcm", s.channels.empty () || !s.audio ? (gint64) 0 :
      (gint64) (pcm_frames (s)));
  /* the times without a consumer; start/end in ms of call time */
  json_builder_set_member_name (b, "gaps");
  json_builder_begin_array (b);
  const gint64 rate = s.audio ? s.audio->format.send_rate_ms : 20;
  const gint64 base = s.channels.empty () ? 0 : s.channels[0].base_ts;
  for (const Gap &g : s.gaps) {
    json_builder_begin_object (b);
    json_add (b, "cause", g.cause);
    json_add (b, "start_ms", (gint64) g.from_frame * rate);
    json_add (b, "end_ms", (gint64) g.to_frame * rate);
    json_add (b, "first_timestamp", base + (gint64) g.from_frame * rate);
    json_add (b, "frames", (gint64) (g.to_frame - g.from_frame));
    json_add (b, "lost_at_ms", g.lost_real_ms);
    json_add (b, "resumed_at_ms", g.resumed_real_ms);
    json_builder_set_member_name (b, "replayed");
    json_builder_add_boolean_value (b, g.replayed);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "mutes");
  json_builder_begin_array (b);
  for (const auto &m : opts_.mutes) {
    json_builder_begin_object (b);
    json_add (b, "role", m.role);
    json_add (b, "start_ms", m.start_ms);
    json_add (b, "end_ms", m.end_ms);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "channels");
  json_builder_begin_array (b);
  for (const auto &ch : s.channels) {
    json_builder_begin_object (b);
    json_add (b, "role", ch.role);
    json_add (b, opts_.meeting ? "user_id" : "channel_id", ch.channel_id);
    json_add (b, "participant_mode", ch.participant_mode);
    json_add (b, "frames_sent", (gint64) ch.sent);
    json_add (b, "packets_muted", (gint64) ch.muted);
    json_add (b, "packets_duplicated", (gint64) ch.duplicated);
    json_add (b, "packets_stalled", (gint64) ch.stalled);
    json_add (b, "packets_malformed", (gint64) ch.malformed);
    json_add (b, "first_timestamp", ch.first_ts);
    json_add (b, "base_timestamp", ch.base_ts);
    /* runs of frames not sent (muted, gaps, after the end), within the PCM */
    json_builder_set_member_name (b, "not_sent");
    json_builder_begin_array (b);
    {
      size_t frames = pcm_frames (s);
      size_t k = 0;
      while (k < frames) {
        if (k < ch.frame_state.size () && ch.frame_state[k] == 1) {
          k++;
          continue;
        }
        size_t from = k;
        while (k < frames && !(k < ch.frame_state.size () &&
                ch.frame_state[k] == 1))
          k++;
        json_builder_begin_object (b);
        json_add (b, "start_ms", (gint64) from * rate);
        json_add (b, "end_ms", (gint64) k * rate);
        json_add (b, "first_timestamp", ch.base_ts + (gint64) from * rate);
        json_builder_end_object (b);
      }
    }
    json_builder_end_array (b);
    json_add (b, "pcm", ch.role + ".pcm");
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  json_builder_end_object (b);
  std::string text = builder_string (b, true);
  write_dump_pcm (s, true, text);
}

} // namespace sim
