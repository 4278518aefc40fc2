/* zoomrtms — RTMS protocol enums (integers on the wire).
 *
 * Every value here is from docs/protocol.md §6 (zoom/rtms src/rtms.h, the
 * "single source of truth") and §2.7 / §3.10. Names are for logs only: the wire
 * always carries the integer (docs/protocol.md §0).
 */
#pragma once

#include <cstdint>
#include <string>

namespace rtms {

/* docs/protocol.md §6.1 RTMS_MESSAGE_TYPE */
enum MsgType : int {
  MSG_UNDEFINED = 0,
  MSG_SIGNALING_HAND_SHAKE_REQ = 1,
  MSG_SIGNALING_HAND_SHAKE_RESP = 2,
  MSG_DATA_HAND_SHAKE_REQ = 3,
  MSG_DATA_HAND_SHAKE_RESP = 4,
  MSG_EVENT_SUBSCRIPTION = 5,
  MSG_EVENT_UPDATE = 6,
  MSG_CLIENT_READY_ACK = 7,
  MSG_STREAM_STATE_UPDATE = 8,
  MSG_SESSION_STATE_UPDATE = 9,
  MSG_SESSION_STATE_REQ = 10,
  MSG_SESSION_STATE_RESP = 11,
  MSG_KEEP_ALIVE_REQ = 12,
  MSG_KEEP_ALIVE_RESP = 13,
  MSG_MEDIA_DATA_AUDIO = 14,
  MSG_MEDIA_DATA_VIDEO = 15,
  MSG_MEDIA_DATA_SHARE = 16,
  MSG_MEDIA_DATA_TRANSCRIPT = 17,
  MSG_MEDIA_DATA_CHAT = 18,
  MSG_STREAM_STATE_REQ = 19,
  MSG_STREAM_STATE_RESP = 20,
  MSG_STREAM_CLOSE_REQ = 21,
  MSG_STREAM_CLOSE_RESP = 22,
  MSG_META_DATA_AUDIO = 23,
  MSG_META_DATA_VIDEO = 24,
  MSG_META_DATA_SHARE = 25,
  MSG_META_DATA_TRANSCRIPT = 26,
  MSG_META_DATA_CHAT = 27,
  MSG_VIDEO_SUBSCRIPTION_REQ = 28,
  MSG_VIDEO_SUBSCRIPTION_RESP = 29,
};

/* docs/protocol.md §6.2 MEDIA_CONTENT_TYPE */
enum ContentType : int {
  CONTENT_UNDEFINED = 0,
  CONTENT_RTP = 1, /* deprecated, treated as RAW_AUDIO (§4.2) */
  CONTENT_RAW_AUDIO = 2,
  CONTENT_RAW_VIDEO = 3,
  CONTENT_FILE_STREAM = 4,
  CONTENT_TEXT = 5,
};

/* docs/protocol.md §6.2 MEDIA_PAYLOAD_TYPE (codec) */
enum Codec : int {
  CODEC_UNDEFINED = 0,
  CODEC_L16 = 1,
  CODEC_G711 = 2,
  CODEC_G722 = 3,
  CODEC_OPUS = 4,
  CODEC_JPG = 5,
  CODEC_PNG = 6,
  CODEC_H264 = 7,
};

/* docs/protocol.md §6.2 AUDIO_SAMPLE_RATE: an enum, not Hz */
enum SampleRate : int {
  SR_8K = 0,
  SR_16K = 1,
  SR_32K = 2,
  SR_48K = 3,
};

/* docs/protocol.md §6.2 AUDIO_CHANNEL */
enum AudioChannel : int {
  CHANNEL_MONO = 1,
  CHANNEL_STEREO = 2,
};

/* docs/protocol.md §6.2 MEDIA_DATA_OPTION */
enum DataOption : int {
  DATA_OPT_UNDEFINED = 0,
  DATA_OPT_AUDIO_MIXED_STREAM = 1,
  DATA_OPT_AUDIO_MULTI_STREAMS = 2,
  DATA_OPT_VIDEO_SINGLE_ACTIVE_STREAM = 3,
  DATA_OPT_VIDEO_SINGLE_INDIVIDUAL_STREAM = 4,
  DATA_OPT_VIDEO_MIXED_GALLERY_VIEW = 5,
};

/* docs/protocol.md §6.2 MEDIA_DATA_TYPE (bitmask) */
enum MediaType : int {
  MEDIA_UNDEFINED = 0,
  MEDIA_AUDIO = 1,
  MEDIA_VIDEO = 2,
  MEDIA_DESKSHARE = 4,
  MEDIA_TRANSCRIPT = 8,
  MEDIA_CHAT = 16,
  MEDIA_ALL = 32,
};

/* docs/protocol.md §6.3 RTMS_SESSION_STATE */
enum SessionState : int {
  SESSION_INACTIVE = 0,
  SESSION_INITIALIZE = 1,
  SESSION_STARTED = 2,
  SESSION_PAUSED = 3,
  SESSION_RESUMED = 4,
  SESSION_STOPPED = 5,
};

/* docs/protocol.md §6.4 RTMS_STREAM_STATE */
enum StreamState : int {
  STREAM_INACTIVE = 0,
  STREAM_ACTIVE = 1,
  STREAM_INTERRUPTED = 2,
  STREAM_TERMINATING = 3,
  STREAM_TERMINATED = 4,
  STREAM_PAUSED = 5,
  STREAM_RESUMED = 6,
};

/* docs/protocol.md §3.6.1 RTMS_EVENT_TYPE (meetings, webinars, Video SDK) */
enum EventType : int {
  EVENT_UNDEFINED = 0,
  EVENT_FIRST_PACKET_TIMESTAMP = 1,
  EVENT_ACTIVE_SPEAKER_CHANGE = 2,
  EVENT_PARTICIPANT_JOIN = 3,
  EVENT_PARTICIPANT_LEAVE = 4,
  EVENT_SHARING_START = 5,
  EVENT_SHARING_STOP = 6,
  EVENT_MEDIA_CONNECTION_INTERRUPTED = 7,
  EVENT_PARTICIPANT_VIDEO_ON = 8,
  EVENT_PARTICIPANT_VIDEO_OFF = 9,
};

/* docs/protocol.md §3.6.2 RTMS_ZCC_VOICE_EVENT_TYPE. Codes 8–13 overlap with
 * EventType: the product decides (zoom/rtms#115). */
enum ZccEventType : int {
  ZCC_CONSUMER_ANSWERED = 8,
  ZCC_CONSUMER_END = 9,
  ZCC_USER_ANSWERED = 10,
  ZCC_USER_END = 11,
  ZCC_USER_HOLD = 12,
  ZCC_USER_UNHOLD = 13,
  ZCC_MONITOR_STARTED = 14,
  ZCC_MONITOR_TRANSITIONED = 15,
  ZCC_MONITOR_ENDED = 16,
  ZCC_TAKEOVER_STARTED = 17,
  ZCC_TRANSFER_INITIATED = 18,
  ZCC_TRANSFER_CANCELED = 19,
  ZCC_TRANSFER_ACCEPTED = 20,
  ZCC_TRANSFER_COMPLETED = 21,
  ZCC_TRANSFER_REJECTED = 22,
  ZCC_TRANSFER_TIMEOUT = 23,
  ZCC_CONFERENCE_CANCELED = 24,
  ZCC_CONFERENCE_PARTICIPANT_CANCELED = 25,
  ZCC_CONFERENCE_PARTICIPANT_INVITED = 26,
  ZCC_CONFERENCE_PARTICIPANT_REJECTED = 27,
  ZCC_CONFERENCE_PARTICIPANT_TIMEOUT = 28,
  ZCC_CONFERENCE_PARTICIPANT_LEFT = 29,
};

/* docs/protocol.md §2.7 RTMS_STOP_REASON (webhook stop_reason, msg 8 reason,
 * msg 9 stop_reason) */
enum StopReason : int {
  STOP_UNDEFINED = 0,
  STOP_HOST_TRIGGERED = 1,
  STOP_USER_TRIGGERED = 2,
  STOP_USER_LEFT = 3,
  STOP_USER_EJECTED = 4,
  STOP_HOST_DISABLED_APP = 5,
  STOP_MEETING_ENDED = 6,
  STOP_STREAM_CANCELED = 7,
  STOP_STREAM_REVOKED = 8,
  STOP_ALL_APPS_DISABLED = 9,
  STOP_INTERNAL_EXCEPTION = 10,
  STOP_CONNECTION_TIMEOUT = 11,
  STOP_INSTANCE_CONNECTION_INTERRUPTED = 12,
  STOP_SIGNAL_CONNECTION_INTERRUPTED = 13,
  STOP_DATA_CONNECTION_INTERRUPTED = 14,
  STOP_SIGNAL_CONNECTION_CLOSED_ABNORMALLY = 15,
  STOP_DATA_CONNECTION_CLOSED_ABNORMALLY = 16,
  STOP_EXIT_SIGNAL = 17,
  STOP_AUTHENTICATION_FAILURE = 18,
  STOP_AWAIT_RECONNECTION_TIMEOUT = 19,
  STOP_RECEIVER_REQUEST_CLOSE = 20,
  STOP_CUSTOMER_DISCONNECTED = 21,
  STOP_AGENT_DISCONNECTED = 22,
  STOP_ADMIN_DISABLED_APP = 23,
  STOP_KEEP_ALIVE_TIMEOUT = 24,
  STOP_MANUAL_API_TRIGGERED = 25,
  STOP_STREAMING_NOT_SUPPORTED = 26,
};

/* docs/protocol.md §3.10: two incompatible status-code tables. 0 = OK in both;
 * anything else is a failure. */
enum class StatusTable { NEW, OLD };

/* Status codes the client and the sim need by name, in both tables. */
struct StatusCodes {
  int invalid_signature;
  int duplicate_signal_request;
  int invalid_media_params;
  int invalid_audio_sample_rate;
  int invalid_audio_codec;
  int invalid_audio_channel;
  int invalid_audio_data_opt;
  int invalid_audio_send_rate; /* NEW 24; OLD has only "NOT_UINT" (46) */
  int invalid_message_type;
  int invalid_stream_id;       /* NEW 2; OLD 16 INVALID_MEETING_OR_STREAM_ID */
  int invalid_media_type;      /* NEW 7 / 14; OLD 29 MEDIA_TYPE_INVALID_VALUE */
  int duplicate_media_connection;
  int invalid_payload;         /* NEW 4; OLD 3 INVALID_JSON_MSG */
};

/** status_codes:
 * Returns: the codes of @table (docs/protocol.md §3.10 tables A and B).
 */
const StatusCodes &status_codes (StatusTable table);

/* What a non-zero status_code of msg 2 / msg 4 / msg 22 means to a client. */
enum class StatusClass {
  OK,               /* 0 */
  SIGNATURE,        /* bad signature or credentials: never retry */
  DUPLICATE_SIGNAL, /* the server still holds a signaling connection for the
                       stream: retry later (§3.4, §4.9) */
  MEDIA_PARAMS,     /* requested media params refused: never retry */
  OTHER,
};

/** classify_status:
 * @code: status_code of the answer; @reason: its `reason` text (may be empty)
 * @signaling: true for msg 2 (signaling handshake), false for msg 4
 * @table: the table to read @code in when @reason says nothing
 *
 * docs/protocol.md §3.10: two incompatible tables are in use, so the reason
 * text decides first ("signature", "duplicate", "param"…); then codes that
 * exist for this answer in only one table (e.g. 15 or 17 on msg 2 can only be
 * the old table's INVALID_SIGNATURE / DUPLICATE_SIGNAL_REQUEST); then @table.
 */
StatusClass classify_status (int code, const char *reason, bool signaling,
    StatusTable table);

/** status_description:
 * Returns: text for logs: the reason when the server gave one, else the
 * code's names in both tables ("15 (new: MEDIA_DATA_ALL_CONNECTION_EXIST,
 * old: INVALID_SIGNATURE)").
 */
std::string status_description (int code, const char *reason);

/* Names for logs. Unknown values give "UNKNOWN" (never NULL). */
const char *msg_type_name (int msg_type);
const char *stop_reason_name (int reason);
const char *stream_state_name (int state);
const char *session_state_name (int state);
/* @zcc selects the ZCC meaning of the overlapping codes 8–13 (§3.6.2). */
const char *event_type_name (int event_type, bool zcc);
const char *status_code_name (int code, StatusTable table);
const char *codec_name (int codec);

/** sample_rate_hz:
 * @sample_rate: AUDIO_SAMPLE_RATE enum value (0..3), §6.2
 * Returns: the rate in Hz (8000, 16000, 32000, 48000), or 0 if unknown.
 */
int sample_rate_hz (int sample_rate);
/** sample_rate_enum:
 * @hz: 8000, 16000, 32000 or 48000
 * Returns: the AUDIO_SAMPLE_RATE enum value, or -1 if @hz has none.
 */
int sample_rate_enum (int hz);

/** stop_reason_wants_restart:
 * Returns: true for stop reasons 10–19 and 24, which ask for a full RTMS
 * connection restart (docs/protocol.md §2.7, §4.9 row 4); false for
 * deliberate stops.
 */
bool stop_reason_wants_restart (int reason);

} // namespace rtms
