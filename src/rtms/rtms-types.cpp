/* zoomrtms — RTMS protocol enums: names and status-code tables.
 *
 * Every table here is transcribed from docs/protocol.md: §6.1 (message types),
 * §2.7 (stop reasons), §6.3/§6.4 (session/stream states), §3.6.1/§3.6.2 (event
 * types), §3.10 (status codes, tables A "new" and B "old"), §6.2 (codecs,
 * sample rates). Names are for logs only; the wire carries integers.
 */
#include "rtms-types.h"

#include <glib.h>

#include <cstring>

#include <cstddef>

namespace rtms {

namespace {

/* Looks @value up in a dense table indexed from 0; NULL entries and values
 * outside the table give "UNKNOWN". */
template <std::size_t N>
const char *
lookup (const char *const (&table)[N], int value)
{
  if (value < 0 || static_cast<std::size_t> (value) >= N || !table[value])
    return "UNKNOWN";
  return table[value];
}

/* docs/protocol.md §6.1 */
const char *const msg_type_names[] = {
  "UNDEFINED",
  "SIGNALING_HAND_SHAKE_REQ",
  "SIGNALING_HAND_SHAKE_RESP",
  "DATA_HAND_SHAKE_REQ",
  "DATA_HAND_SHAKE_RESP",
  "EVENT_SUBSCRIPTION",
  "EVENT_UPDATE",
  "CLIENT_READY_ACK",
  "STREAM_STATE_UPDATE",
  "SESSION_STATE_UPDATE",
  "SESSION_STATE_REQ",
  "SESSION_STATE_RESP",
  "KEEP_ALIVE_REQ",
  "KEEP_ALIVE_RESP",
  "MEDIA_DATA_AUDIO",
  "MEDIA_DATA_VIDEO",
  "MEDIA_DATA_SHARE",
  "MEDIA_DATA_TRANSCRIPT",
  "MEDIA_DATA_CHAT",
  "STREAM_STATE_REQ",
  "STREAM_STATE_RESP",
  "STREAM_CLOSE_REQ",
  "STREAM_CLOSE_RESP",
  "META_DATA_AUDIO",
  "META_DATA_VIDEO",
  "META_DATA_SHARE",
  "META_DATA_TRANSCRIPT",
  "META_DATA_CHAT",
  "VIDEO_SUBSCRIPTION_REQ",
  "VIDEO_SUBSCRIPTION_RESP",
};

/* docs/protocol.md §2.7 */
const char *const stop_reason_names[] = {
  "UNDEFINED",
  "HOST_TRIGGERED",
  "USER_TRIGGERED",
  "USER_LEFT",
  "USER_EJECTED",
  "HOST_DISABLED_APP",
  "MEETING_ENDED",
  "STREAM_CANCELED",
  "STREAM_REVOKED",
  "ALL_APPS_DISABLED",
  "INTERNAL_EXCEPTION",
  "CONNECTION_TIMEOUT",
  "INSTANCE_CONNECTION_INTERRUPTED",
  "SIGNAL_CONNECTION_INTERRUPTED",
  "DATA_CONNECTION_INTERRUPTED",
  "SIGNAL_CONNECTION_CLOSED_ABNORMALLY",
  "DATA_CONNECTION_CLOSED_ABNORMALLY",
  "EXIT_SIGNAL",
  "AUTHENTICATION_FAILURE",
  "AWAIT_RECONNECTION_TIMEOUT",
  "RECEIVER_REQUEST_CLOSE",
  "CUSTOMER_DISCONNECTED",
  "AGENT_DISCONNECTED",
  "ADMIN_DISABLED_APP",
  "KEEP_ALIVE_TIMEOUT",
  "MANUAL_API_TRIGGERED",
  "STREAMING_NOT_SUPPORTED",
};

/* docs/protocol.md §6.4 */
const char *const stream_state_names[] = {
  "INACTIVE", "ACTIVE", "INTERRUPTED", "TERMINATING", "TERMINATED", "PAUSED",
  "RESUMED",
};

/* docs/protocol.md §6.3 */
const char *const session_state_names[] = {
  "INACTIVE", "INITIALIZE", "STARTED", "PAUSED", "RESUMED", "STOPPED",
};

/* docs/protocol.md §3.6.1 (10–14: chat groups, July 2026) */
const char *const event_type_names[] = {
  "UNDEFINED",
  "FIRST_PACKET_TIMESTAMP",
  "ACTIVE_SPEAKER_CHANGE",
  "PARTICIPANT_JOIN",
  "PARTICIPANT_LEAVE",
  "SHARING_START",
  "SHARING_STOP",
  "MEDIA_CONNECTION_INTERRUPTED",
  "PARTICIPANT_VIDEO_ON",
  "PARTICIPANT_VIDEO_OFF",
  "CHAT_GROUP_CREATE",
  "CHAT_GROUP_DELETE",
  "CHAT_GROUP_MEMBERS_ADD",
  "CHAT_GROUP_MEMBERS_DELETE",
  "CHAT_GROUP_MEMBER_STATUS_UPDATE",
};

/* docs/protocol.md §3.6.2, indexed from 0 (0–7 are not ZCC codes) */
const char *const zcc_event_type_names[] = {
  nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
  "CONSUMER_ANSWERED",
  "CONSUMER_END",
  "USER_ANSWERED",
  "USER_END",
  "USER_HOLD",
  "USER_UNHOLD",
  "MONITOR_STARTED",
  "MONITOR_TRANSITIONED",
  "MONITOR_ENDED",
  "TAKEOVER_STARTED",
  "TRANSFER_INITIATED",
  "TRANSFER_CANCELED",
  "TRANSFER_ACCEPTED",
  "TRANSFER_COMPLETED",
  "TRANSFER_REJECTED",
  "TRANSFER_TIMEOUT",
  "CONFERENCE_CANCELED",
  "CONFERENCE_PARTICIPANT_CANCELED",
  "CONFERENCE_PARTICIPANT_INVITED",
  "CONFERENCE_PARTICIPANT_REJECTED",
  "CONFERENCE_PARTICIPANT_TIMEOUT",
  "CONFERENCE_PARTICIPANT_LEFT",
};

/* docs/protocol.md §3.10 table A ("new/compact", July 2026). 44 and 45 are
 * not in the table. */
const char *const status_names_new[] = {
  "OK",
  "INVALID_MESSAGE_TYPE",
  "INVALID_RTMS_STREAM_ID",
  "INVALID_SIGNATURE",
  "INVALID_PAYLOAD",
  "INVALID_EVENTS",
  "INVALID_EVENT_TYPE",
  "INVALID_MEDIA_TYPE",
  "DUPLICATE_SIGNAL_REQUEST",
  "MEDIA_TYPE_AUDIO_NOT_SUPPORT",
  "MEDIA_TYPE_VIDEO_NOT_SUPPORT",
  "MEDIA_TYPE_DESKSHARE_NOT_SUPPORT",
  "MEDIA_TYPE_TRANSCRIPT_NOT_SUPPORT",
  "MEDIA_TYPE_CHAT_NOT_SUPPORT",
  "MEDIA_TYPE_INVALID_VALUE",
  "MEDIA_DATA_ALL_CONNECTION_EXIST",
  "DUPLICATE_MEDIA_DATA_CONNECTION",
  "INVALID_MEDIA_PARAMS",
  "INVALID_MEDIA_AUDIO_PARAMS",
  "INVALID_MEDIA_AUDIO_CONTENT_TYPE",
  "INVALID_MEDIA_AUDIO_SAMPLE_RATE",
  "INVALID_MEDIA_AUDIO_CHANNEL",
  "INVALID_MEDIA_AUDIO_CODEC",
  "INVALID_MEDIA_AUDIO_DATA_OPT",
  "INVALID_MEDIA_AUDIO_SEND_RATE",
  "INVALID_MEDIA_VIDEO_PARAMS",
  "INVALID_MEDIA_VIDEO_CONTENT_TYPE",
  "INVALID_MEDIA_VIDEO_CODEC",
  "INVALID_MEDIA_VIDEO_RESOLUTION",
  "INVALID_MEDIA_VIDEO_DATA_OPT",
  "INVALID_MEDIA_VIDEO_FPS",
  "INVALID_MEDIA_DESKSHARE_PARAMS",
  "INVALID_MEDIA_DESKSHARE_CONTENT_TYPE",
  "INVALID_MEDIA_DESKSHARE_CODEC",
  "INVALID_MEDIA_DESKSHARE_RESOLUTION",
  "INVALID_MEDIA_DESKSHARE_FPS",
  "INVALID_MEDIA_TRANSCRIPT_PARAMS",
  "INVALID_MEDIA_TRANSCRIPT_CONTENT_TYPE",
  "INVALID_MEDIA_CHAT_PARAMS",
  "INVALID_MEDIA_CHAT_CONTENT_TYPE",
  "INVALID_RTMS_SESSION_ID",
  "INVALID_CLIENT_READY_ACK",
  "INVALID_EVENT_SUBSCRIBE",
  "INVALID_MEDIA_TRANSCRIPT_SROUCE_LANGUAGE", /* (sic) */
  nullptr,
  nullptr,
  "INVALID_MEDIA_TRANSCRIPT_TARGET_LANGUAGE",
  "CHAT_SESSION_KEY_NOT_AVAILABLE",
};

/* docs/protocol.md §3.10 table B ("old/verbose", ZCC doc copy). The wire
 * names carry a STATUS_ prefix; it is dropped here so both tables read
 * alike. Codes 7–9 name the product id key (meeting_uuid, engagement_id…). */
const char *const status_names_old[] = {
  "OK",
  "CONNECTION_TIMEOUT",
  "INVALID_JSON_MSG_SIZE",
  "INVALID_JSON_MSG",
  "INVALID_MESSAGE_TYPE",
  "MSG_TYPE_NOT_EXIST",
  "MSG_TYPE_NOT_UINT",
  "ID_NOT_EXIST",
  "ID_NOT_STRING",
  "ID_IS_EMPTY",
  "RTMS_STREAM_ID_NOT_EXIST",
  "RTMS_STREAM_ID_NOT_STRING",
  "RTMS_STREAM_ID_IS_EMPTY",
  "SESSION_NOT_FOUND",
  "SIGNATURE_NOT_EXIST",
  "INVALID_SIGNATURE",
  "INVALID_MEETING_OR_STREAM_ID",
  "DUPLICATE_SIGNAL_REQUEST",
  "EVENTS_NOT_EXIST",
  "EVENTS_VALUE_NOT_ARRAY",
  "EVENT_TYPE_NOT_EXIST",
  "EVENT_TYPE_VALUE_NOT_UINT",
  "MEDIA_TYPE_NOT_EXIST",
  "MEDIA_TYPE_NOT_UINT",
  "MEDIA_TYPE_AUDIO_NOT_SUPPORT",
  "MEDIA_TYPE_VIDEO_NOT_SUPPORT",
  "MEDIA_TYPE_DESKSHARE_NOT_SUPPORT",
  "MEDIA_TYPE_TRANSCRIPT_NOT_SUPPORT",
  "MEDIA_TYPE_CHAT_NOT_SUPPORT",
  "MEDIA_TYPE_INVALID_VALUE",
  "MEDIA_DATA_ALL_CONNECTION_EXIST",
  "DUPLICATE_MEDIA_DATA_CONNECTION",
  "MEDIA_PARAMS_NOT_EXIST",
  "INVALID_MEDIA_PARAMS",
  "NO_MEDIA_TYPE_SPECIFIED",
  "INVALID_MEDIA_AUDIO_PARAMS",
  "MEDIA_AUDIO_CONTENT_TYPE_NOT_UINT",
  "INVALID_MEDIA_AUDIO_CONTENT_TYPE",
  "MEDIA_AUDIO_SAMPLE_RATE_NOT_UINT",
  "INVALID_MEDIA_AUDIO_SAMPLE_RATE",
  "MEDIA_AUDIO_CHANNEL_NOT_UINT",
  "INVALID_MEDIA_AUDIO_CHANNEL",
  "MEDIA_AUDIO_CODEC_NOT_UINT",
  "INVALID_MEDIA_AUDIO_CODEC",
  "MEDIA_AUDIO_DATA_OPT_NOT_UINT",
  "INVALID_MEDIA_AUDIO_DATA_OPT",
  "MEDIA_AUDIO_SEND_RATE_NOT_UINT",
  "MEDIA_AUDIO_FRAME_SIZE_NOT_UINT",
  "INVALID_MEDIA_VIDEO_PARAMS",
  "INVALID_MEDIA_VIDEO_CONTENT_TYPE",
  "MEDIA_VIDEO_CONTENT_TYPE_NOT_UINT",
  "INVALID_MEDIA_VIDEO_CODEC",
  "MEDIA_VIDEO_CODEC_NOT_UINT",
  "INVALID_MEDIA_VIDEO_RESOLUTION",
  "MEDIA_VIDEO_RESOLUTION_NOT_UINT",
  "INVALID_MEDIA_VIDEO_DATA_OPT",
  "MEDIA_VIDEO_DATA_OPT_NOT_UINT",
  "MEDIA_VIDEO_FPS_NOT_UINT",
  "INVALID_MEDIA_SHARE_PARAMS",
  "INVALID_MEDIA_DESKSHARE_CONTENT_TYPE",
  "MEDIA_DESKSHARE_CONTENT_TYPE_NOT_UINT",
  "INVALID_MEDIA_DESKSHARE_CODEC",
  "MEDIA_DESKSHARE_CODEC_NOT_UINT",
  "INVALID_MEDIA_DESKSHARE_RESOLUTION",
  "MEDIA_DESKSHARE_RESOLUTION_NOT_UINT",
  "MEDIA_DESKSHARE_FPS_NOT_UINT",
  "INVALID_MEDIA_TRANSCRIPT_PARAMS",
  "INVALID_MEDIA_TRANSCRIPT_CONTENT_TYPE",
  "MEDIA_TRANSCRIPT_CONTENT_TYPE_NOT_UINT",
  "INVALID_MEDIA_CHAT_PARAMS",
  "INVALID_MEDIA_CHAT_CONTENT_TYPE",
  "MEDIA_CHAT_CONTENT_TYPE_NOT_UINT",
  "INVALID_AUDIO_DATA_BUFFER",
  "INVALID_VIDEO_DATA_BUFFER",
  "POST_FIRST_PACKET_FAILURE",
  "RTMS_SESSION_NOT_FOUND",
};

/* docs/protocol.md §6.2 MEDIA_PAYLOAD_TYPE */
const char *const codec_names[] = {
  "UNDEFINED", "L16", "G711", "G722", "OPUS", "JPG", "PNG", "H264",
};

/* docs/protocol.md §3.10, table A */
const StatusCodes status_codes_new = {
  /* invalid_signature */ 3,
  /* duplicate_signal_request */ 8,
  /* invalid_media_params */ 17,
  /* invalid_audio_sample_rate */ 20,
  /* invalid_audio_codec */ 22,
  /* invalid_audio_channel */ 21,
  /* invalid_audio_data_opt */ 23,
  /* invalid_audio_send_rate */ 24,
  /* invalid_message_type */ 1,
  /* invalid_stream_id */ 2,
  /* invalid_media_type */ 7,
  /* duplicate_media_connection */ 16,
  /* invalid_payload */ 4,
};

/* docs/protocol.md §3.10, table B */
const StatusCodes status_codes_old = {
  /* invalid_signature */ 15,
  /* duplicate_signal_request */ 17,
  /* invalid_media_params */ 33,
  /* invalid_audio_sample_rate */ 39,
  /* invalid_audio_codec */ 43,
  /* invalid_audio_channel */ 41,
  /* invalid_audio_data_opt */ 45,
  /* invalid_audio_send_rate */ 46, /* MEDIA_AUDIO_SEND_RATE_NOT_UINT */
  /* invalid_message_type */ 4,
  /* invalid_stream_id */ 16,       /* INVALID_MEETING_OR_STREAM_ID */
  /* invalid_media_type */ 29,      /* MEDIA_TYPE_INVALID_VALUE */
  /* duplicate_media_connection */ 31,
  /* invalid_payload */ 3,          /* INVALID_JSON_MSG */
};

} // namespace

const StatusCodes &
status_codes (StatusTable table)
{
  return table == StatusTable::OLD ? status_codes_old : status_codes_new;
}

const char *
msg_type_name (int msg_type)
{
  return lookup (msg_type_names, msg_type);
}

const char *
stop_reason_name (int reason)
{
  return lookup (stop_reason_names, reason);
}

const char *
stream_state_name (int state)
{
  return lookup (stream_state_names, state);
}

const char *
session_state_name (int state)
{
  return lookup (session_state_names, state);
}

const char *
event_type_name (int event_type, bool zcc)
{
  /* ZCC streams: 8–29 are voice events (§3.6.2); the universal codes below
   * 8 (e.g. 1 FIRST_PACKET_TIMESTAMP) keep their meeting names. */
  if (zcc && event_type >= ZCC_CONSUMER_ANSWERED)
    return lookup (zcc_event_type_names, event_type);
  return lookup (event_type_names, event_type);
}

const char *
status_code_name (int code, StatusTable table)
{
  if (table == StatusTable::OLD)
    return lookup (status_names_old, code);
  return lookup (status_names_new, code);
}

const char *
codec_name (int codec)
{
  return lookup (codec_names, codec);
}

int
sample_rate_hz (int sample_rate)
{
  switch (sample_rate) {
    case SR_8K:
      return 8000;
    case SR_16K:
      return 16000;
    case SR_32K:
      return 32000;
    case SR_48K:
      return 48000;
    default:
      return 0;
  }
}

int
sample_rate_enum (int hz)
{
  switch (hz) {
    case 8000:
      return SR_8K;
    case 16000:
      return SR_16K;
    case 32000:
      return SR_32K;
    case 48000:
      return SR_48K;
    default:
      return -1;
  }
}

bool
stop_reason_wants_restart (int reason)
{
  return (reason >= STOP_INTERNAL_EXCEPTION
      && reason <= STOP_AWAIT_RECONNECTION_TIMEOUT)
      || reason == STOP_KEEP_ALIVE_TIMEOUT;
}

/* ---- status classification (§3.10) ---- */

namespace {

bool
contains_ci (const char *haystack, const char *needle)
{
  if (!haystack || !*haystack)
    return false;
  g_autofree char *h = g_ascii_strdown (haystack, -1);
  return strstr (h, needle) != nullptr;
}

StatusClass
classify_code (int code, bool signaling, StatusTable table)
{
  const StatusCodes &c = status_codes (table);
  if (code == c.invalid_signature)
    return StatusClass::SIGNATURE;
  if (signaling && code == c.duplicate_signal_request)
    return StatusClass::DUPLICATE_SIGNAL;
  if (!signaling) {
    if (table == StatusTable::NEW ? (code >= 17 && code <= 24) :
        (code >= 32 && code <= 47))
      return StatusClass::MEDIA_PARAMS;
  }
  return StatusClass::OTHER;
}

} // namespace

StatusClass
classify_status (int code, const char *reason, bool signaling,
    StatusTable table)
{
  if (code == 0)
    return StatusClass::OK;
  if (contains_ci (reason, "signature"))
    return StatusClass::SIGNATURE;
  if (contains_ci (reason, "duplicate signal") ||
      contains_ci (reason, "duplicate_signal"))
    return StatusClass::DUPLICATE_SIGNAL;
  if (!signaling && (contains_ci (reason, "param") ||
          contains_ci (reason, "sample_rate") ||
          contains_ci (reason, "codec") || contains_ci (reason, "send_rate")))
    return StatusClass::MEDIA_PARAMS;
  /* msg 2 codes above 8 exist only in the old table (the new one has no
   * signaling-handshake failure past DUPLICATE_SIGNAL_REQUEST = 8) */
  if (signaling && code > 8)
    return classify_code (code, signaling, StatusTable::OLD);
  return classify_code (code, signaling, table);
}

std::string
status_description (int code, const char *reason)
{
  std::string s = std::to_string (code);
  if (reason && *reason)
    return s + " (" + reason + ")";
  return s + " (new: " + status_code_name (code, StatusTable::NEW) +
      ", old: " + status_code_name (code, StatusTable::OLD) + ")";
}

} // namespace rtms
