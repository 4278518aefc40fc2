/* zoomrtms-sim — the call a stream plays: two parties' speech, transcripts, and
 * the pre-encoded media frames for one negotiated audio format.
 *
 * A call (data/default-call.conf, GKeyFile) is a list of turns; each turn puts
 * one WAV clip on the speaking party's channel while the other party's channel
 * carries silence. Both channels are continuous, equally long, mono S16 at the
 * clips' own rate (docs/protocol.md §4.4: ZCC sends one packet stream per
 * channel_id, each with its own clock).
 *
 * Frames are encoded once per audio format and shared by every stream that
 * negotiated it (design.md "Performance": cost is per message).
 */
#pragma once

#include <glib.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "sim-options.h"

namespace sim {

/* One party of the call (a [customer] / [agent] group of the call file). */
struct Party {
  std::string role;             /* "customer" | "agent" */
  std::string participant_mode; /* "caller" | "callee" (docs/protocol.md §3.6.2) */
  std::string display_name;
  std::string user_id;          /* ZCC participant_info.user_id */
  std::string phone_number;
  gint64 meeting_user_id = 0;   /* meeting msg 14 user_id (multi) */
};

/* One transcript sentence (msg 17), times in ms from the call start. */
struct Sentence {
  int party = 0;
  gint64 start_ms = 0;
  gint64 end_ms = 0;
  std::string text;
};

/* When to send which transcript message: attribute 1 = new sentence,
 * 2 = revision of the same sentence_id (docs/protocol.md §4.5). */
struct TranscriptEvent {
  gint64 send_ms = 0;           /* call time at which it is sent */
  int sentence = 0;             /* index into Call::sentences */
  int attribute = 1;
};

/* One speaker turn (for meeting event 2 ACTIVE_SPEAKER_CHANGE). */
struct TurnStart {
  gint64 start_ms = 0;
  int party = 0;
};

struct Call {
  int rate = 16000;             /* Hz of the clips and of pcm[] */
  std::vector<Party> parties;   /* [0] customer, [1] agent */
  std::vector<std::vector<gint16>> pcm; /* per party, whole call */
  std::vector<Sentence> sentences;
  std::vector<TranscriptEvent> transcript_events; /* sorted by send_ms */
  std::vector<TurnStart> turns;
  std::string queue_id, queue_name;
  int language = 9;
  gint64 duration_ms () const;
};

/** default_call_file:
 * The default call file: $ZOOMRTMS_SOURCE_DIR/data/default-call.conf, then the
 * source tree the sim was built from, then ZOOMRTMS_DATADIR/default-call.conf.
 * Returns: the first that exists (the last candidate if none does).
 */
std::string default_call_file ();

/** load_call:
 * @path: a call file (GKeyFile, see data/default-call.conf)
 * @duration_s: > 0 loops the call's turns until the call lasts @duration_s
 *   seconds and cuts it there; 0 keeps the call's own length
 * Reads every clip with libsndfile (all clips must share one rate, mono).
 * Returns: nullptr with a GError (G_FILE_ERROR / G_KEY_FILE_ERROR /
 * G_IO_ERROR) that names the file.
 */
std::unique_ptr<Call> load_call (const std::string &path, double duration_s,
    GError **error);

/* The audio format negotiated on a media connection (msg 3 → msg 4). */
struct AudioFormat {
  int codec = 1;                /* rtms::CODEC_L16 or CODEC_OPUS */
  int rate_hz = 16000;
  int send_rate_ms = 20;
  bool mixed = false;           /* meeting data_opt 1: one user_id 0 channel */

  bool operator< (const AudioFormat &o) const
  {
    return std::tie (codec, rate_hz, send_rate_ms, mixed) <
        std::tie (o.codec, o.rate_hz, o.send_rate_ms, o.mixed);
  }
};

/* The frames of one channel in one format. */
struct ChannelFrames {
  std::vector<std::string> b64;  /* base64 payload of frame k (msg 14 `data`) */
  std::vector<guint32> bytes;    /* decoded size of frame k */
  std::vector<gint16> pcm;       /* what was encoded: S16 at rate_hz, whole
                                    frames (last one zero-padded) */
};

struct PreparedAudio {
  AudioFormat format;
  std::vector<ChannelFrames> channels; /* one per party, or one if mixed */
  size_t n_frames = 0;
};

/** prepare_audio:
 * Encodes @call in @format: resamples the clips' PCM to format.rate_hz when it
 * differs (linear interpolation, no anti-alias filter: good enough for a test
 * source), sums the parties for meeting mixed audio (saturating), cuts it into
 * send_rate_ms frames, and encodes each frame (L16 = S16LE bytes; Opus = one
 * libopus packet per 20 ms frame at 48 kHz).
 * Returns: nullptr with a G_IO_ERROR if libopus fails.
 */
std::shared_ptr<PreparedAudio> prepare_audio (const Call &call,
    const AudioFormat &format, GError **error);

/** AudioCache:
 * prepare_audio() once per format for a call; later lookups share the frames.
 */
class AudioCache {
 public:
  explicit AudioCache (const Call *call) : call_ (call) {}
  std::shared_ptr<PreparedAudio> get (const AudioFormat &format, GError **error);

 private:
  const Call *call_;
  std::map<AudioFormat, std::shared_ptr<PreparedAudio>> cache_;
};

} // namespace sim
