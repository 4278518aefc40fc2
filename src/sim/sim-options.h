/* zoomrtms-sim — command-line options shared by the sim's modules.
 *
 * The CLI contract is fixed in the project brief ("zoomrtms-sim CLI"); the
 * behaviour behind each option follows docs/protocol.md §9.
 */
#pragma once

#include <glib.h>

#include <string>
#include <vector>

#include "rtms-types.h"
#include "sim-hostile.h"

namespace sim {

/* --mute CH:START_MS-END_MS: no packets on @role's channel for frames whose
 * start time (ms from the call start) lies in [start_ms, end_ms). */
struct MuteWindow {
  std::string role; /* "customer" | "agent" */
  gint64 start_ms = 0;
  gint64 end_ms = 0;
};

/* --stall CH:AT_MS+DUR_MS: @role's sender stalls: its packets whose start
 * time (ms from the call start) lies in [at_ms, at_ms + dur_ms) are held and
 * sent in a burst just before its first packet after the window (no audio
 * lost). --join-late CH:MS: @role's party joins MS ms after the call start:
 * no packets before (dumped as zeros, counted as muted); --leave CH:MS:
 * no packets from MS ms on (a MuteWindow up to G_MAXINT64). */
struct StallWindow {
  std::string role; /* "customer" | "agent" | "mixed" */
  gint64 at_ms = 0;
  gint64 dur_ms = 0;
};

/* --outage media|signaling:AT_MS+DUR_MS: at call time AT (ms from the call
 * start, as --mute) the sim drops that socket of every stream (signaling:
 * signaling and media, docs/protocol.md §4.9 row 2) without a close frame,
 * then answers every WebSocket upgrade of that kind with HTTP 503 for DUR ms
 * of wall time, then accepts the rejoin. */
struct Outage {
  bool signaling = false;
  gint64 at_ms = 0;
  gint64 dur_ms = 0;
};

struct Options {
  std::string command;            /* serve | run | validate | webhook */
  std::string listen = "127.0.0.1";
  int port = 0;
  bool tls = false;
  std::string ca_out;
  std::string client_id, client_secret, secret_token; /* never logged */
  bool meeting = false;           /* --product meeting|webinar|session (default zcc) */
  /* with meeting: which of the three (docs/protocol.md §2.2): the webhook
   * prefix "meeting" | "webinar" | "session" and its id key */
  std::string meeting_product = "meeting";
  int default_data_opt = rtms::DATA_OPT_AUDIO_MIXED_STREAM; /* --data-opt */
  int default_codec = rtms::CODEC_L16; /* --codec */
  int engagements = 1;
  double speed = 1.0;             /* 0 = as fast as possible */
  double duration_s = 0;          /* 0 = the call's own length */
  std::vector<MuteWindow> mutes;
  std::vector<StallWindow> stalls; /* --stall */
  int duplicate_every = 0;
  int malformed_every = 0;
  bool misspelled_participant_info = false;
  bool kick_old_signaling = false; /* --duplicate-signal kick */
  rtms::StatusTable status_table = rtms::StatusTable::NEW;
  int keepalive_ms = 10000;
  std::string ready_file;
  std::string dump_dir;
  std::string call_file;
  bool forever = false;
  /* run / webhook */
  std::string webhook_url;
  std::string event;
  std::string engagement_id;
  std::string rtms_stream_id;
  std::string server_urls;
  int stop_reason = -1;           /* -1 = product default (21 ZCC, 6 meeting) */
  bool bad_signature = false;
  bool stale = false;
  bool duplicate = false;
  int connect_timeout_s = 30;     /* run: client must connect within this */
  int signaling_grace_s = 60;     /* docs/protocol.md §3.9 / §4.9 row 2 */
  int media_grace_s = 30;         /* docs/protocol.md §4.8 / §4.9 row 3 */
  int stagger_ms = 20;            /* run: delay between started webhooks */
  std::string summary_json;       /* --summary-json FILE (serve/run) */
  /* --events-after-ms N: ZCC events 8/10 (participant_info) sent N ms of
   * wall time after msg 7 instead of at once, so the audio (the buffered
   * backlog) comes first; the end of the stream waits for them. */
  int events_after_ms = 0;
  /* --hostile-frame [signaling:]KIND[:BYTES]@MS (repeatable), sorted by
   * at_ms; each sent once per stream, in addition to the call
   * (sim-hostile.h). */
  std::vector<HostileFrame> hostile_frames;
  /* --replay-gap: after a rejoin, send the packets that fell due while no
   * consumer was connected (a backlog burst, at most 60 s); default: they
   * are never sent (Zoom's behaviour is unknown, docs/protocol.md §11 #12). */
  bool replay_gap = false;
  std::vector<Outage> outages;    /* --outage, sorted by at_ms */
  /* *_rtms_interrupted webhooks: each sent this many times (same body,
   * same event_ts), this many ms after the loss, with the unchanged
   * signaling URL as server_urls unless --interrupted-urls none. */
  int interrupted_copies = 1;
  int interrupted_delay_ms = 0;
  bool interrupted_urls = true;

  /* "meeting.rtms_", "webinar.rtms_", "session.rtms_" or
   * "contact_center.voice_rtms_" */
  std::string event_prefix () const
  {
    return meeting ? meeting_product + ".rtms_" : "contact_center.voice_rtms_";
  }
  /* the webhook's and the handshake's id key (docs/protocol.md §2.2, §3.3) */
  const char *id_key () const
  {
    if (!meeting)
      return "engagement_id";
    return meeting_product == "webinar" ? "webinar_uuid" :
        meeting_product == "session" ? "session_id" : "meeting_uuid";
  }

  int product_stop_reason () const
  {
    if (stop_reason >= 0)
      return stop_reason;
    return meeting ? rtms::STOP_MEETING_ENDED : rtms::STOP_CUSTOMER_DISCONNECTED;
  }
};

} // namespace sim
