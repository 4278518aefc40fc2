/* zoomrtms-host — one engagement: its pipeline, its bus watch and its files.
 *
 * gstreamer-guide.md §3.3: the host owns the pipeline, finds `src` by name and
 * sets ids and credentials on it; a bus watch on the main context handles
 * ERROR / EOS / element messages; stop = EOS, wait for EOS on the bus with a
 * timeout, then NULL. Everything here runs on the main context.
 *
 * Files in the engagement directory (OUTPUT_ROOT/<sanitized id>/):
 *   the pipeline's audio files, transcript.txt (written at the end),
 *   transcript.jsonl, events.jsonl, levels.jsonl (when the pipeline has
 *   `level`), engagement.json (rewritten atomically at start, failover, end).
 */
#pragma once

#include "host-template.h"

#include "rtms-auth.h"

#include <gio/gio.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace zhost {

struct EngagementParams {
  std::string event;             /* the started webhook's event */
  gint64 event_ts = 0;           /* epoch ms */
  rtms::Product product = rtms::Product::CONTACT_CENTER;
  std::string id_key;            /* "engagement_id", "meeting_uuid", … */
  std::string id_value;          /* as received (never used in a path) */
  std::string rtms_stream_id;
  std::string server_urls;       /* the signaling URL given to `src` */
  std::string signature;         /* optional precomputed handshake signature */
  const PipelineTemplate *tmpl = nullptr;
  std::string dir;               /* absolute engagement directory */
  std::string dir_name;          /* its last component (sanitized id) */
  std::string rtp_host;
  int rtp_port = 5004;
  std::string client_id;
  std::string client_secret;
  std::string ca_file;
  int stop_timeout_ms = 10000;
  int stop_grace_ms = 3000;
};

class Engagement {
 public:
  enum class State { STARTING, RUNNING, STOPPING, STOPPED, FAILED };
  using FinishedFn = std::function<void (Engagement *)>;

  Engagement (EngagementParams params, FinishedFn on_finished);
  ~Engagement ();
  Engagement (const Engagement &) = delete;
  Engagement &operator= (const Engagement &) = delete;

  /** start:
   * Creates the directory, builds the pipeline, sets the per-engagement
   * properties on `src` and sets PLAYING. Returns: false (and the engagement
   * is FAILED, its engagement.json written) on a build or state failure.
   */
  bool start (GError **error);

  /** failover:
   * rtms-protocol.md §4.9 row 1 (and row 2 when an interrupted webhook
   * carries server_urls): sets `server-urls` on the running `src`, which does
   * a full re-handshake into the same recording.
   */
  void failover (const std::string &server_urls, gint64 event_ts,
      const char *why);

  /** stop:
   * Graceful stop: sends EOS, waits for EOS on the bus up to
   * stop_timeout_ms, then NULL. @source is "webhook", "api" or "shutdown";
   * @stop_reason < 0 = none given.
   */
  void stop (const char *source, int stop_reason);

  /** stop_after_grace:
   * For a stopped webhook: Zoom ends the stream on signaling too (msg 8
   * TERMINATED), and the element then drains every frame still in flight
   * and posts EOS by itself. The webhook can overtake those frames, so wait
   * stop_grace_ms for that EOS before stop() (rtms-protocol.md §4.9 row 5).
   */
  void stop_after_grace (const char *source, int stop_reason);

  /** force_stop:
   * NULL now (WAV headers are then repaired from the file size).
   */
  void force_stop (const char *why);

  /** note_stop_reason:
   * Records a stop reason that arrives after the engagement ended (the
   * stopped webhook usually follows the element's EOS) and rewrites
   * engagement.json.
   */
  void note_stop_reason (int stop_reason, const char *source);

  /** to_json:
   * Returns: (transfer full) the engagement.json object; with @live, adds
   * "live" (pipeline state, current `stats` of `src`).
   */
  JsonNode *to_json (bool live) const;

  State state () const { return state_; }
  bool active () const { return state_ == State::STARTING ||
      state_ == State::RUNNING || state_ == State::STOPPING; }
  const EngagementParams &params () const { return p_; }
  const std::string &server_urls () const { return server_urls_; }
  gint64 last_event_ts () const { return last_event_ts_; }
  void set_last_event_ts (gint64 ts) { last_event_ts_ = ts; }
  static const char *state_name (State s);

  /** recover_transcript:
   * For an engagement a killed host left unfinished: writes
   * @dir/transcript.txt from @dir/transcript.jsonl (the last text of each
   * sentence_id, in order of first appearance) with the ids and start time
   * of @engagement (its engagement.json object).
   * Returns: the number of lines written, -1 if there is no transcript.jsonl.
   */
  static int recover_transcript (const std::string &dir, JsonObject *engagement);

 private:
  struct Sentence {
    gint64 sentence_id;
    std::string channel, speaker, participant_mode, text;
    gint64 offset_ms;
  };

  static gboolean bus_cb (GstBus *bus, GstMessage *msg, gpointer data);
  static gboolean eos_timeout_cb (gpointer data);
  void on_element_message (GstMessage *msg);
  void on_transcript (const GstStructure *s);
  void on_participant (const GstStructure *s);
  void on_state_message (const GstStructure *s);
  void on_level (GstMessage *msg, const GstStructure *s);
  void read_stats ();
  void finish (bool got_eos);
  void write_engagement_json () const;
  void write_transcript_txt () const;
  gint64 audio_duration_ms () const;  /* samples-out / rate, -1 unknown */
  void append_line (GOutputStream **stream, const char *file,
      const std::string &line);
  std::string speaker_for (const std::string &channel,
      const std::string &speaker, const std::string &mode) const;

  EngagementParams p_;
  FinishedFn on_finished_;
  State state_ = State::STARTING;
  GstElement *pipeline_ = nullptr;
  GstElement *src_ = nullptr;
  guint eos_timeout_id_ = 0;
  guint grace_timeout_id_ = 0;
  std::string grace_source_;
  bool has_level_ = false;
  int rate_ = 0;                       /* Hz of src's caps, 0 unknown */
  std::string server_urls_;
  gint64 last_event_ts_ = 0;
  gint64 start_us_ = 0;
  gint64 stop_us_ = 0;
  int failovers_ = 0;
  /* stop reason */
  int stop_reason_ = -1;
  std::string stop_source_;
  int remote_reason_ = -1;
  std::vector<std::string> errors_;
  GstStructure *stats_ = nullptr;
  bool eos_received_ = false;
  bool repaired_ = false;
  /* outputs */
  GOutputStream *transcript_jsonl_ = nullptr;
  GOutputStream *events_jsonl_ = nullptr;
  GOutputStream *levels_jsonl_ = nullptr;
  std::vector<Sentence> sentences_;
  std::map<gint64, gsize> sentence_index_;
  std::map<std::string, std::string> display_names_;   /* channel/user → name */
  std::map<std::string, std::string> modes_;           /* channel → mode */
  guint64 transcript_messages_ = 0;
  guint64 event_messages_ = 0;
  guint64 level_messages_ = 0;
  gint64 first_transcript_ms_ = -1;
};

} // namespace zhost
