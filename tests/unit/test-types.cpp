/* zoomrtms unit tests — rtms-types: names and status-code tables
 * (docs/protocol.md §2.7, §3.6, §3.10, §6). */
#include <gtest/gtest.h>

#include <cstring>

#include "rtms-types.h"

using namespace rtms;

TEST (Names, MessageTypes)
{
  EXPECT_STREQ (msg_type_name (MSG_UNDEFINED), "UNDEFINED");
  EXPECT_STREQ (msg_type_name (MSG_SIGNALING_HAND_SHAKE_REQ),
      "SIGNALING_HAND_SHAKE_REQ");
  EXPECT_STREQ (msg_type_name (MSG_KEEP_ALIVE_RESP), "KEEP_ALIVE_RESP");
  EXPECT_STREQ (msg_type_name (MSG_MEDIA_DATA_AUDIO), "MEDIA_DATA_AUDIO");
  EXPECT_STREQ (msg_type_name (MSG_MEDIA_DATA_TRANSCRIPT),
      "MEDIA_DATA_TRANSCRIPT");
  EXPECT_STREQ (msg_type_name (MSG_STREAM_CLOSE_RESP), "STREAM_CLOSE_RESP");
  EXPECT_STREQ (msg_type_name (MSG_VIDEO_SUBSCRIPTION_RESP),
      "VIDEO_SUBSCRIPTION_RESP");
  EXPECT_STREQ (msg_type_name (30), "UNKNOWN");
  EXPECT_STREQ (msg_type_name (-1), "UNKNOWN");
  /* every value 0..29 has a distinct real name */
  for (int i = 0; i <= 29; i++) {
    EXPECT_STRNE (msg_type_name (i), "UNKNOWN") << i;
    for (int j = 0; j < i; j++)
      EXPECT_STRNE (msg_type_name (i), msg_type_name (j));
  }
}

TEST (Names, StopReasons)
{
  EXPECT_STREQ (stop_reason_name (STOP_UNDEFINED), "UNDEFINED");
  EXPECT_STREQ (stop_reason_name (STOP_MEETING_ENDED), "MEETING_ENDED");
  EXPECT_STREQ (stop_reason_name (STOP_STREAM_REVOKED), "STREAM_REVOKED");
  EXPECT_STREQ (stop_reason_name (STOP_RECEIVER_REQUEST_CLOSE),
      "RECEIVER_REQUEST_CLOSE");
  EXPECT_STREQ (stop_reason_name (STOP_CUSTOMER_DISCONNECTED),
      "CUSTOMER_DISCONNECTED");
  EXPECT_STREQ (stop_reason_name (STOP_AGENT_DISCONNECTED),
      "AGENT_DISCONNECTED");
  EXPECT_STREQ (stop_reason_name (STOP_KEEP_ALIVE_TIMEOUT),
      "KEEP_ALIVE_TIMEOUT");
  EXPECT_STREQ (stop_reason_name (STOP_STREAMING_NOT_SUPPORTED),
      "STREAMING_NOT_SUPPORTED");
  EXPECT_STREQ (stop_reason_name (27), "UNKNOWN");
  EXPECT_STREQ (stop_reason_name (-3), "UNKNOWN");
}

TEST (Names, States)
{
  EXPECT_STREQ (stream_state_name (STREAM_INACTIVE), "INACTIVE");
  EXPECT_STREQ (stream_state_name (STREAM_INTERRUPTED), "INTERRUPTED");
  EXPECT_STREQ (stream_state_name (STREAM_TERMINATED), "TERMINATED");
  EXPECT_STREQ (stream_state_name (STREAM_RESUMED), "RESUMED");
  EXPECT_STREQ (stream_state_name (7), "UNKNOWN");
  EXPECT_STREQ (session_state_name (SESSION_INITIALIZE), "INITIALIZE");
  EXPECT_STREQ (session_state_name (SESSION_STOPPED), "STOPPED");
  EXPECT_STREQ (session_state_name (6), "UNKNOWN");
}

TEST (Names, EventTypesDependOnProduct)
{
  /* §3.6.1 / §3.6.2: 8–13 overlap */
  EXPECT_STREQ (event_type_name (8, false), "PARTICIPANT_VIDEO_ON");
  EXPECT_STREQ (event_type_name (8, true), "CONSUMER_ANSWERED");
  EXPECT_STREQ (event_type_name (9, false), "PARTICIPANT_VIDEO_OFF");
  EXPECT_STREQ (event_type_name (9, true), "CONSUMER_END");
  EXPECT_STREQ (event_type_name (ZCC_USER_HOLD, true), "USER_HOLD");
  EXPECT_STREQ (event_type_name (ZCC_TRANSFER_INITIATED, true),
      "TRANSFER_INITIATED");
  EXPECT_STREQ (event_type_name (ZCC_TRANSFER_COMPLETED, true),
      "TRANSFER_COMPLETED");
  EXPECT_STREQ (event_type_name (ZCC_CONFERENCE_PARTICIPANT_LEFT, true),
      "CONFERENCE_PARTICIPANT_LEFT");
  EXPECT_STREQ (event_type_name (30, true), "UNKNOWN");
  /* universal codes keep their names on ZCC streams */
  EXPECT_STREQ (event_type_name (EVENT_FIRST_PACKET_TIMESTAMP, true),
      "FIRST_PACKET_TIMESTAMP");
  EXPECT_STREQ (event_type_name (EVENT_ACTIVE_SPEAKER_CHANGE, false),
      "ACTIVE_SPEAKER_CHANGE");
  EXPECT_STREQ (event_type_name (EVENT_MEDIA_CONNECTION_INTERRUPTED, false),
      "MEDIA_CONNECTION_INTERRUPTED");
  EXPECT_STREQ (event_type_name (20, false), "UNKNOWN");
  EXPECT_STREQ (event_type_name (-1, true), "UNKNOWN");
}

TEST (Names, Codecs)
{
  EXPECT_STREQ (codec_name (CODEC_L16), "L16");
  EXPECT_STREQ (codec_name (CODEC_OPUS), "OPUS");
  EXPECT_STREQ (codec_name (CODEC_H264), "H264");
  EXPECT_STREQ (codec_name (8), "UNKNOWN");
}

TEST (SampleRates, EnumAndHz)
{
  EXPECT_EQ (sample_rate_hz (SR_8K), 8000);
  EXPECT_EQ (sample_rate_hz (SR_16K), 16000);
  EXPECT_EQ (sample_rate_hz (SR_32K), 32000);
  EXPECT_EQ (sample_rate_hz (SR_48K), 48000);
  EXPECT_EQ (sample_rate_hz (4), 0);
  EXPECT_EQ (sample_rate_hz (-1), 0);
  for (int e = 0; e <= 3; e++)
    EXPECT_EQ (sample_rate_enum (sample_rate_hz (e)), e);
  EXPECT_EQ (sample_rate_enum (24000), -1);
  EXPECT_EQ (sample_rate_enum (44100), -1);
}

TEST (StopReasons, WantsRestart)
{
  /* §2.7 / §4.9 row 4: 10–19 and 24 */
  for (int r = 0; r <= 30; r++) {
    bool expected = (r >= 10 && r <= 19) || r == 24;
    EXPECT_EQ (stop_reason_wants_restart (r), expected) << r;
  }
}

TEST (StatusCodes, NewTable)
{
  const StatusCodes &c = status_codes (StatusTable::NEW);
  const StatusTable t = StatusTable::NEW;
  EXPECT_EQ (c.invalid_signature, 3);
  EXPECT_STREQ (status_code_name (c.invalid_signature, t), "INVALID_SIGNATURE");
  EXPECT_EQ (c.duplicate_signal_request, 8);
  EXPECT_STREQ (status_code_name (c.duplicate_signal_request, t),
      "DUPLICATE_SIGNAL_REQUEST");
  EXPECT_STREQ (status_code_name (c.invalid_media_params, t),
      "INVALID_MEDIA_PARAMS");
  EXPECT_STREQ (status_code_name (c.invalid_audio_sample_rate, t),
      "INVALID_MEDIA_AUDIO_SAMPLE_RATE");
  EXPECT_STREQ (status_code_name (c.invalid_audio_codec, t),
      "INVALID_MEDIA_AUDIO_CODEC");
  EXPECT_STREQ (status_code_name (c.invalid_audio_channel, t),
      "INVALID_MEDIA_AUDIO_CHANNEL");
  EXPECT_STREQ (status_code_name (c.invalid_audio_data_opt, t),
      "INVALID_MEDIA_AUDIO_DATA_OPT");
  EXPECT_STREQ (status_code_name (c.invalid_audio_send_rate, t),
      "INVALID_MEDIA_AUDIO_SEND_RATE");
  EXPECT_STREQ (status_code_name (c.invalid_message_type, t),
      "INVALID_MESSAGE_TYPE");
  EXPECT_STREQ (status_code_name (c.invalid_stream_id, t),
      "INVALID_RTMS_STREAM_ID");
  EXPECT_STREQ (status_code_name (c.invalid_media_type, t),
      "INVALID_MEDIA_TYPE");
  EXPECT_STREQ (status_code_name (c.duplicate_media_connection, t),
      "DUPLICATE_MEDIA_DATA_CONNECTION");
  EXPECT_STREQ (status_code_name (c.invalid_payload, t), "INVALID_PAYLOAD");
  EXPECT_STREQ (status_code_name (0, t), "OK");
  EXPECT_STREQ (status_code_name (15, t), "MEDIA_DATA_ALL_CONNECTION_EXIST");
  EXPECT_STREQ (status_code_name (43, t),
      "INVALID_MEDIA_TRANSCRIPT_SROUCE_LANGUAGE");
  EXPECT_STREQ (status_code_name (44, t), "UNKNOWN");
  EXPECT_STREQ (status_code_name (47, t), "CHAT_SESSION_KEY_NOT_AVAILABLE");
  EXPECT_STREQ (status_code_name (48, t), "UNKNOWN");
}

TEST (StatusCodes, OldTable)
{
  const StatusCodes &c = status_codes (StatusTable::OLD);
  const StatusTable t = StatusTable::OLD;
  EXPECT_EQ (c.invalid_signature, 15);
  EXPECT_STREQ (status_code_name (c.invalid_signature, t), "INVALID_SIGNATURE");
  EXPECT_EQ (c.duplicate_signal_request, 17);
  EXPECT_STREQ (status_code_name (c.duplicate_signal_request, t),
      "DUPLICATE_SIGNAL_REQUEST");
  EXPECT_STREQ (status_code_name (c.invalid_media_params, t),
      "INVALID_MEDIA_PARAMS");
  EXPECT_STREQ (status_code_name (c.invalid_audio_sample_rate, t),
      "INVALID_MEDIA_AUDIO_SAMPLE_RATE");
  EXPECT_STREQ (status_code_name (c.invalid_audio_codec, t),
      "INVALID_MEDIA_AUDIO_CODEC");
  EXPECT_STREQ (status_code_name (c.invalid_audio_channel, t),
      "INVALID_MEDIA_AUDIO_CHANNEL");
  EXPECT_STREQ (status_code_name (c.invalid_audio_data_opt, t),
      "INVALID_MEDIA_AUDIO_DATA_OPT");
  EXPECT_STREQ (status_code_name (c.invalid_audio_send_rate, t),
      "MEDIA_AUDIO_SEND_RATE_NOT_UINT");
  EXPECT_STREQ (status_code_name (c.invalid_message_type, t),
      "INVALID_MESSAGE_TYPE");
  EXPECT_STREQ (status_code_name (c.invalid_stream_id, t),
      "INVALID_MEETING_OR_STREAM_ID");
  EXPECT_STREQ (status_code_name (c.invalid_media_type, t),
      "MEDIA_TYPE_INVALID_VALUE");
  EXPECT_STREQ (status_code_name (c.duplicate_media_connection, t),
      "DUPLICATE_MEDIA_DATA_CONNECTION");
  EXPECT_STREQ (status_code_name (c.invalid_payload, t), "INVALID_JSON_MSG");
  EXPECT_STREQ (status_code_name (75, t), "RTMS_SESSION_NOT_FOUND");
  EXPECT_STREQ (status_code_name (76, t), "UNKNOWN");
  /* every code 0..75 is named */
  for (int i = 0; i <= 75; i++)
    EXPECT_STRNE (status_code_name (i, t), "UNKNOWN") << i;
}

TEST (StatusCodes, TablesDiffer)
{
  const StatusCodes &n = status_codes (StatusTable::NEW);
  const StatusCodes &o = status_codes (StatusTable::OLD);
  EXPECT_NE (n.invalid_signature, o.invalid_signature);
  EXPECT_NE (n.duplicate_signal_request, o.duplicate_signal_request);
  EXPECT_NE (n.invalid_payload, o.invalid_payload);
  EXPECT_NE (&n, &o);
}
