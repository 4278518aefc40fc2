/* zoomrtms — RTMS protocol v1 messages: plain structs, JSON builders and parsers.
 *
 * Every message of docs/protocol.md §3–§4 (msg 1–14, 17, 19–22) has a struct,
 * an encoder (struct → compact JSON text, one WebSocket text frame) and a
 * decoder (JSON text → struct). Decoders are tolerant exactly where
 * docs/protocol.md §11 says Zoom's sources disagree:
 *   - `participant_info` / `paticipant_info` (§3.6.2, §11 #2)
 *   - `timestamp` / `event_ts` in events (§3.6)
 *   - `stop_reason` / `reason` in msg 9 (§3.8)
 *   - `payload_encrypted` / `payload_encryption` (§4.3, §11 #5)
 *   - `server_urls` as a string (comma separated) or an object (§2.2)
 *   - `channel_id` / `user_id` as string or integer: kept as opaque strings
 *     (§11 #7)
 *   - unknown `msg_type`: decoded as Kind::UNKNOWN, never an error (§9.4)
 * and strict elsewhere: an integer field that arrives as a string, a missing
 * required field, or truncated JSON gives a GError in RTMS_ERROR with a message
 * that names the field.
 *
 * Timestamps are epoch milliseconds in gint64 (they exceed 32 bits,
 * gstreamer-guide.md §6.2).
 */
#pragma once

#include <glib.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rtms-types.h"

namespace rtms {

/* Error domain of the protocol library. */
#define RTMS_ERROR (rtms::error_quark ())
GQuark error_quark ();

enum ErrorCode {
  ERROR_PARSE = 1,      /* not JSON, or not a JSON object */
  ERROR_FIELD,          /* a field is missing or has the wrong type */
  ERROR_BASE64,         /* `data` is not valid base64 */
  ERROR_SIGNATURE,      /* bad HMAC signature */
  ERROR_STALE,          /* webhook timestamp outside the window */
  ERROR_TOO_LARGE,      /* body over the limit */
  ERROR_HANDSHAKE,      /* server answered status_code != 0 */
  ERROR_CONNECT,        /* WebSocket could not be opened */
  ERROR_CLOSED,         /* WebSocket closed unexpectedly */
  ERROR_TIMEOUT,        /* handshake or idle watchdog timeout */
  ERROR_PARAMS,         /* negotiated media params cannot be used */
  ERROR_IO,             /* a file could not be read */
};

/* The product decides the identity key of msg 1 / msg 3 (§3.3). */
enum class Product { MEETING, WEBINAR, SESSION, CONTACT_CENTER, PHONE };

/** product_id_key:
 * Returns: "meeting_uuid", "webinar_uuid", "session_id", "engagement_id" or
 * "call_id" (docs/protocol.md §3.3).
 */
const char *product_id_key (Product product);
/** product_from_id_key:
 * Returns: true and sets @out if @key is one of the five id keys.
 */
bool product_from_id_key (const char *key, Product *out);

/* media_params.audio (§4.2). Values are the wire enums, not Hz. */
struct AudioParams {
  int content_type = CONTENT_RAW_AUDIO;
  int sample_rate = SR_16K;
  int channel = CHANNEL_MONO;
  int codec = CODEC_L16;
  int data_opt = DATA_OPT_AUDIO_MIXED_STREAM;
  int send_rate = 20; /* ms per packet, multiple of 20, ≤ 1000 */
  int frame_size = 0; /* samples per frame; 0 = omitted on the wire */

  bool operator== (const AudioParams &o) const;
};

/* media_params.transcript (§4.2) */
struct TranscriptParams {
  int content_type = CONTENT_TEXT;
  int src_language = -1;       /* §6.7; -1 = none/auto */
  bool has_src_language = false;
  bool enable_lid = true;
  bool has_enable_lid = false;

  bool operator== (const TranscriptParams &o) const;
};

struct MediaParams {
  std::optional<AudioParams> audio;
  std::optional<TranscriptParams> transcript;
};

/* media_server.server_urls of msg 2 (§3.4). Empty string = absent. */
struct MediaServerUrls {
  std::string audio, video, transcript, all;
};

/* msg 1 SIGNALING_HAND_SHAKE_REQ and msg 3 DATA_HAND_SHAKE_REQ share the
 * identity fields (§3.3, §4.2). */
struct HandshakeIdentity {
  int protocol_version = 1;
  int sequence = 0;
  std::string id_key;   /* "engagement_id", "meeting_uuid", … */
  std::string id_value; /* verbatim from the webhook, never URL-encoded */
  std::string rtms_stream_id;
  std::string signature; /* lowercase hex HMAC, §3.2 */
};

struct SignalingHandshakeReq {     /* msg 1 */
  HandshakeIdentity id;
  std::optional<bool> buffer_data; /* April 2026, default true (§3.3) */
};

struct SignalingHandshakeResp {    /* msg 2 */
  int protocol_version = 1;
  int sequence = 0;
  int status_code = 0;
  std::string reason;
  MediaServerUrls media_server;
};

struct EventSubscription {         /* msg 5 */
  struct Item {
    int event_type;
    bool subscribe;
  };
  std::vector<Item> events;
};

/* ZCC participant_info (§3.6.2); every field may be absent (empty). */
struct ParticipantInfo {
  std::string channel_id;
  std::string participant_mode; /* "caller" | "callee" | … */
  std::string queue_id, queue_name, account_id, division_id;
  std::string phone_number, user_id, display_name;
};

/* Meeting participant (§3.6.1 events 3/4). user_id kept as a string. */
struct Participant {
  std::string user_id;
  std::string user_name;
};

struct EventUpdate {               /* msg 6 */
  int event_type = 0;
  gint64 timestamp = 0;            /* from `timestamp` or `event_ts` */
  std::optional<ParticipantInfo> participant_info; /* either spelling */
  bool misspelled_participant_info = false; /* came as `paticipant_info` */
  std::string user_id;             /* events 2, 5 */
  std::string user_name;
  std::vector<Participant> participants; /* events 3, 4 */
  std::string raw_event_json;      /* the `event` object, compact, for logs */
};

struct ClientReadyAck {            /* msg 7 */
  std::string rtms_stream_id;
};

struct StreamStateUpdate {         /* msg 8 */
  int state = 0;
  int reason = 0;
  gint64 timestamp = 0;
  std::string rtms_stream_id;      /* may be absent */
};

struct SessionStateUpdate {        /* msg 9 */
  int state = 0;
  int stop_reason = 0;             /* from `stop_reason` or `reason` */
  gint64 timestamp = 0;
  std::string rtms_session_id;
};

struct SessionStateReq {           /* msg 10 */
  std::string rtms_session_id;
};

struct SessionStateResp {          /* msg 11 */
  std::string rtms_session_id;
  int state = 0;
  gint64 timestamp = 0;
};

struct KeepAlive {                 /* msg 12 (req) and 13 (resp) */
  gint64 timestamp = 0;
};

/* msg 14 MEDIA_DATA_AUDIO (§4.4). */
struct AudioData {
  std::string channel_id;          /* ZCC; empty in meetings */
  std::string user_id;             /* meetings ("0" = mixed); empty in ZCC */
  bool has_user_id = false;
  std::string user_name;
  std::string data_base64;         /* undecoded; see decode_audio_payload() */
  gint64 timestamp = 0;            /* epoch ms */
  gint64 length = -1;              /* -1 = absent; not relied on (§11 #14) */
};

/* msg 17 MEDIA_DATA_TRANSCRIPT (§4.5). */
struct TranscriptData {
  std::string channel_id;
  std::string user_id;
  bool has_user_id = false;
  std::string user_name;
  std::string text;                /* plain UTF-8, not base64 */
  gint64 timestamp = 0;            /* normalised to ms (§4.5 heuristic) */
  gint64 start_time = 0;           /* ms, 0 = absent */
  gint64 end_time = 0;
  int language = -1;
  int attribute = 0;
  gint64 sentence_id = -1;         /* -1 = absent */
};

struct StreamStateReq {            /* msg 19 */
  std::string rtms_stream_id;
  gint64 timestamp = 0;            /* optional pairing value */
};

struct StreamStateResp {           /* msg 20 */
  int state = 0;
  std::string rtms_stream_id;
  gint64 timestamp = 0;
};

struct StreamCloseReq {            /* msg 21 */
  std::string rtms_stream_id;
};

struct StreamCloseResp {           /* msg 22 */
  std::string rtms_stream_id;
  int status_code = 0;
  std::string reason;
};

/* One decoded frame. Exactly the member matching `kind` is meaningful. */
struct Message {
  enum class Kind {
    UNKNOWN,                       /* unknown or unhandled msg_type: ignore */
    SIGNALING_HANDSHAKE_REQ,
    SIGNALING_HANDSHAKE_RESP,
    DATA_HANDSHAKE_REQ,
    DATA_HANDSHAKE_RESP,
    EVENT_SUBSCRIPTION,
    EVENT_UPDATE,
    CLIENT_READY_ACK,
    STREAM_STATE_UPDATE,
    SESSION_STATE_UPDATE,
    SESSION_STATE_REQ,
    SESSION_STATE_RESP,
    KEEP_ALIVE_REQ,
    KEEP_ALIVE_RESP,
    AUDIO,
    TRANSCRIPT,
    STREAM_STATE_REQ,
    STREAM_STATE_RESP,
    STREAM_CLOSE_REQ,
    STREAM_CLOSE_RESP,
  };
  Kind kind = Kind::UNKNOWN;
  int msg_type = 0;                /* as on the wire; -1 if absent */

  SignalingHandshakeReq sig_req;
  SignalingHandshakeResp sig_resp;
  /* msg 3: identity in data_req_id, the rest below */
  HandshakeIdentity data_req_id;
  int media_type = 0;
  bool payload_encryption = false;
  MediaParams media_params;        /* msg 3 request or msg 4 echo */
  /* msg 4 */
  int status_code = 0;
  std::string reason;
  bool payload_encrypted = false;  /* either spelling */
  EventSubscription subscription;
  EventUpdate event;
  ClientReadyAck ready;
  StreamStateUpdate stream_state;
  SessionStateUpdate session_state;
  SessionStateReq session_req;
  SessionStateResp session_resp;
  KeepAlive keep_alive;
  AudioData audio;
  TranscriptData transcript;
  StreamStateReq stream_req;
  StreamStateResp stream_resp;
  StreamCloseReq close_req;
  StreamCloseResp close_resp;
};

/** parse_message:
 * @json: one WebSocket text frame (UTF-8 JSON), @len bytes (-1 = NUL-terminated)
 * @out: receives the decoded message (reset first)
 * @error: RTMS_ERROR_PARSE for non-JSON / non-object, RTMS_ERROR_FIELD for a
 *   missing required field or a wrong type (the message names the field)
 *
 * An absent `msg_type` or an unknown value gives Kind::UNKNOWN and true
 * (docs/protocol.md §9.4: ignore unknown types).
 * Returns: false on error.
 */
bool parse_message (const char *json, gssize len, Message *out, GError **error);

/* Encoders: compact JSON, literal UTF-8, keys in the order of the protocol
 * document's examples (§3–§4). */
std::string encode (const SignalingHandshakeReq &m);
std::string encode (const SignalingHandshakeResp &m);
std::string encode (const EventSubscription &m);
/* msg 3 */
std::string encode_data_handshake_req (const HandshakeIdentity &id,
    int media_type, bool payload_encryption, const MediaParams &params);
/* msg 4 */
std::string encode_data_handshake_resp (int status_code, const std::string &reason,
    bool payload_encrypted, const MediaParams &params);
std::string encode (const EventUpdate &m); /* uses event_ts + participant_info
                                              when participant_info is set
                                              (spelling per
                                              misspelled_participant_info),
                                              timestamp otherwise */
std::string encode (const ClientReadyAck &m);
std::string encode (const StreamStateUpdate &m);
std::string encode (const SessionStateUpdate &m);
std::string encode (const SessionStateReq &m);
std::string encode (const SessionStateResp &m);
std::string encode_keep_alive (int msg_type /* 12 or 13 */, gint64 timestamp);
std::string encode (const AudioData &m);
std::string encode (const TranscriptData &m);
std::string encode (const StreamStateReq &m);
std::string encode (const StreamStateResp &m);
std::string encode (const StreamCloseReq &m);
std::string encode (const StreamCloseResp &m);

/** decode_audio_payload:
 * @b64: standard-alphabet base64 with padding (RFC 4648), @len chars
 * @out: receives the decoded bytes (resized; its capacity is reused, so a
 *   caller that keeps the vector decodes without allocating)
 * @error: RTMS_ERROR_BASE64 if @b64 has characters outside the alphabet, bad
 *   padding, or a length that is not a multiple of 4
 * Returns: false on error.
 */
bool decode_audio_payload (const char *b64, gsize len, std::vector<guint8> *out,
    GError **error);

/* The largest epoch time a message may carry: 10^17 (µs: the year 5138).
 * Every decoded time (msg 6 event timestamp, msg 8/9/21/22 timestamp, msg 14
 * and msg 17 timestamps) is an integer in [0, kMaxTimestamp], or the message
 * is refused with ERROR_FIELD "is out of range", so normalize_timestamp_ms()
 * and the sample arithmetic of its users (ms × rate ≤ 10^14 × 48) never
 * overflow. Keep-alive timestamps are only echoed and are not limited. */
constexpr gint64 kMaxTimestamp = G_GINT64_CONSTANT (100000000000000000);
/* msg 14 timestamps are epoch ms as sent (§4.4, not normalised): [0, 10^14]
 * (the year 5138), so timestamp × rate (≤ 48000) fits in an int64. */
constexpr gint64 kMaxAudioTimestampMs = G_GINT64_CONSTANT (100000000000000);

/** normalize_timestamp_ms:
 * docs/protocol.md §4.5 heuristic: > 10^14 is µs, > 10^11 is ms, else seconds.
 * @value: in [0, kMaxTimestamp]; a negative value gives 0.
 * Returns: epoch milliseconds, in [0, 10^14]; never overflows.
 */
gint64 normalize_timestamp_ms (gint64 value);

/** select_signaling_url:
 * @server_urls: the webhook's `server_urls` as raw JSON text of a string or an
 *   object, or a plain comma-separated string.
 * Returns: the first wss:// URL (then the first ws:// URL) of a comma-separated
 * string; for an object, `all`, else any ws* value (docs/protocol.md §2.2).
 * Empty if none.
 */
std::string select_signaling_url (const std::string &server_urls);

/* One media WebSocket to open after msg 2 (docs/protocol.md §4.1). */
struct MediaConnectionPlan {
  std::string url;
  int media_type; /* msg 3 media_type: 32 on `all`, 1 on `audio`, 8 on
                     `transcript` */
};

/** plan_media_connections:
 * docs/protocol.md §4.1: never mix `all` with per-type connections. If `all`
 * is offered, one connection to it with media_type 32; otherwise one to
 * `audio` (media_type 1) when @want_audio and one to `transcript`
 * (media_type 8) when @want_transcript and offered.
 * Returns: the connections to open, empty if the server offered nothing usable.
 */
std::vector<MediaConnectionPlan> plan_media_connections (
    const MediaServerUrls &urls, bool want_audio, bool want_transcript);

} // namespace rtms
