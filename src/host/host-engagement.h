/* zoomrtms-host — one engagement: its pipeline, its bus watch and its files.
 *
 * gstreamer-guide.md §3.3: the host owns the pipeline, finds `src` by name and
 * sets ids and credentials on it; a bus watch on the main context handles
 * ERROR / EOS / element messages; stop = EOS, wait for EOS on the bus with a
 * timeout, then NULL. Everything here runs on the main context, except
 * file writes that nothing on the main context waits for (issue 12): the
 * journal's writer thread (host-journal.h) and the end-writer thread
 * (transcripts and engagement.json of an ended call, then the end is
 * logged and on_finished_ called on the main context).
 *
 * Its files are owned by EngagementDir (host-engagement-dir.h); its
 * journal entry (host-journal.h) is written at start, when the RTMS
 * timeline is known, at most once a second with the samples recorded, on
 * failover and at the end (removed after a stop, state "detached" after a
 * detach).
 */
#pragma once

#include "host-bus.h"
#include "host-engagement-dir.h"
#include "host-journal.h"
#include "host-log.h"
#include "host-template.h"

#include "rtms-auth.h"

#include <gio/gio.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
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
  PipelineTemplate tmpl;         /* a copy: SIGHUP may replace the store */
  std::string dir;               /* absolute engagement directory */
  std::string dir_name;          /* its last component (sanitized id) */
  std::string rtp_host;
  int rtp_port = 5004;
  std::string client_id;
  std::string client_secret;
  std::string ca_file;
  int stop_timeout_ms = 10000;
  int stop_grace_ms = 3000;
  /* the journal of live engagements (host-journal.h), may be NULL */
  Journal *journal = nullptr;
  /* set when this engagement continues a recording a previous host process
   * left (its journal entry): the outputs become parts, the pipeline
   * starts at the timeline position they end at (issue 9) */
  std::optional<JournalEntry> resume;
  /* cluster mode (host-cluster.h): this node's id, appended to the
   * journal's and engagement.json's "owners"; empty standalone */
  std::string node_id;
};

class Engagement {
 public:
  enum class State { STARTING, RUNNING, STOPPING, STOPPED, FAILED, DETACHED };
  using FinishedFn = std::function<void (Engagement *)>;

  Engagement (EngagementParams params, FinishedFn on_finished);
  ~Engagement ();
  Engagement (const Engagement &) = delete;
  Engagement &operator= (const Engagement &) = delete;

  /** start:
   * Creates the directory, builds the pipeline, finds its outputs (the
   * `location` of its file sinks inside the directory), sets the
   * per-engagement properties on `src` (ids and credentials, `packet-log`
   * in the journal's directory) and sets PLAYING. With params.resume (a
   * journal entry a previous host left, issue 9): moves the outputs aside as
   * parts (EngagementDir::move_outputs_aside, a killed WAV repaired first),
   * sets `timeline-origin` and `timeline-offset` = the sample frames the
   * parts hold (else the journal's samples) and `replay-log` = the previous
   * packet log, and records the interruption (cause host-restart after a
   * detach, host-crash otherwise). Returns: false (and the engagement is
   * FAILED, its engagement.json written) on a build or state failure, or
   * with ZHOST_ERROR_IO when an output cannot be moved aside (nothing is
   * overwritten then).
   */
  bool start (GError **error);

  /** failover:
   * docs/protocol.md §4.9 row 1 (and row 2 when an interrupted webhook
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

  /** detach:
   * design.md "Lifetimes: detach is not stop": sends the custom upstream
   * event "zoomrtms/detach" to `src` (sockets closed WITHOUT msg 21, so Zoom
   * holds the stream for its grace window, docs/protocol.md §4.9), waits
   * for EOS up to stop_timeout_ms, then NULL. The journal entry stays, state
   * "detached", for the next host to rejoin; engagement.json says
   * "detached". With an element that does not know the event, eos-action
   * is set to "detach" and EOS sent (a zoomrtmssrc without eos-action gets
   * a plain EOS: that one sends msg 21).
   */
  void detach ();

  /** note_interrupted_webhook:
   * Records an `*_rtms_interrupted` webhook that needs no failover (no
   * server_urls, or the ones in use): the element reconnects by itself
   * (docs/protocol.md §4.9 row 2). One events.jsonl line.
   */
  void note_interrupted_webhook (gint64 event_ts, const std::string &event);

  /** stop_after_grace:
   * For a stopped webhook: Zoom ends the stream on signaling too (msg 8
   * TERMINATED), and the element then drains every frame still in flight
   * and posts EOS by itself. The webhook can overtake those frames, so wait
   * stop_grace_ms for that EOS before stop() (docs/protocol.md §4.9 row 5).
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

  /* Whether the engagement ended because its disk was full (an ERROR
   * GST_RESOURCE_ERROR_NO_SPACE_LEFT, or ENOSPC in an error's detail). */
  bool disk_full () const { return disk_full_; }
  /* Its ids for log_line() (host-log.h). */
  const LogContext &log_context () const { return log_ctx_; }

  State state () const { return state_; }
  /* the stop reason recorded (docs/protocol.md §2.7), -1 = none */
  int stop_reason () const { return stop_reason_; }
  bool active () const { return state_ == State::STARTING ||
      state_ == State::RUNNING || state_ == State::STOPPING; }
  const EngagementParams &params () const { return p_; }
  /* finish() ran: the files are finalized (a continuation's parts merged),
   * the journal entry removed and on_finished called by the Engagement */
  bool finishing () const { return finishing_; }
  const std::string &server_urls () const { return server_urls_; }
  gint64 last_event_ts () const { return last_event_ts_; }
  void set_last_event_ts (gint64 ts) { last_event_ts_ = ts; }
  static const char *state_name (State s);

  /** finalize_unrejoined:
   * For a journal entry whose grace window has run out (or whose pipeline
   * is gone): repairs the WAVs, merges the parts, rebuilds transcript.txt,
   * records the interruption as lost (recovered false, end -1) in
   * engagement.json (state "recovered") and events.jsonl, and removes the
   * journal entry and packet logs. The cause is "host-restart" for an entry
   * a detach left, "host-crash" for a "live" one.
   * The merge runs on the calling thread (called at start-up, before the
   * host listens, and when a rejoin fails): an Ogg/Opus re-encode takes
   * ≈0.4 s per minute of audio. @opus_settings: opusenc properties of the
   * entry's pipeline template (ogg_opus_encoder_settings()); "" (the
   * template is gone) for opusenc's defaults.
   */
  static void finalize_unrejoined (const JournalEntry &e, Journal *journal,
      const std::string &opus_settings = "");

  /* The journal entry as it stands. */
  const JournalEntry &journal_entry () const { return jentry_; }

 private:
  struct Sentence {
    gint64 sentence_id;
    std::string channel, speaker, participant_mode, text;
    gint64 offset_ms;
    gint64 duration_ms = -1;     /* end-time - start-time, -1 if not sent */
  };

  static gboolean bus_cb (GstBus *bus, GstMessage *msg, gpointer data);
  static gboolean eos_timeout_cb (gpointer data);
  void on_element_message (GstMessage *msg);
  /* An ERROR (@fatal: the one that ends the engagement) or WARNING message:
   * recorded with the element's text AND debug detail (engagement.json
   * "errors" / "error", "warnings") and logged. */
  void note_error (GstMessage *msg, bool fatal);
  void note_warning (GstMessage *msg);
  /* The call-ended log line (stop reason, duration, packets, silence,
   * interruptions, files). */
  void log_ended () const;
  void on_transcript (const GstStructure *s);
  void on_participant (const GstStructure *s);
  void on_state_message (const GstStructure *s);
  void on_level (GstMessage *msg, const GstStructure *s);
  void read_stats ();
  void finish (bool got_eos);
  /* The end of finish() for a recording that has ended (not detached):
   * merge results applied, journal entry removed, files written,
   * on_finished_. */
  void finish_ended (const std::vector<gint64> &silence, const std::string &merge_error);
  struct MergeJob;
  static gboolean merge_done_cb (gpointer data);
  void on_timeline (const GstStructure *s);
  void on_detached (const GstStructure *s);
  void on_interruption (const GstStructure *s);
  void on_superseded (const GstStructure *s);
  void find_outputs ();
  /* pad-added of the zoomrtmsdemux "participants" (a streaming thread):
   * instantiates the template's @participant-branch for the pad */
  static void participant_pad_cb (GstElement *demux, GstPad *pad,
      gpointer self);
  bool prepare_continuation (GError **error);
  /* the journal entry as it stands: submitted to the journal's writer
   * thread, or with @sync written before this returns */
  void journal_write (bool durable, bool sync = false);
  static gboolean journal_tick_cb (gpointer data);
  /* the once-a-second journal update: one timer for all engagements */
  void journal_tick_start ();
  void journal_tick_stop ();
  void event_line (const char *type, const std::function<void (JsonBuilder *)> &fill);
  void write_engagement_json () const;
  /* engagement.json = @root in @dir (after-call members kept), any thread */
  static void store_engagement_json (const std::string &dir, JsonNode *root,
      const LogContext &log_ctx);
  void write_transcript_txt () const;
  /* what write_transcript_txt() writes, as a closure for any thread */
  std::function<void ()> transcript_writer () const;
  /* the end files of an ended engagement, written on the end-writer thread
   * (issue 12); end_written_cb() then logs and calls on_finished_ */
  struct EndJob {
    Engagement *self = nullptr;    /* nullptr: the engagement is gone */
    int stop_reason = -1;          /* as written into engagement.json */
    std::string dir;
    LogContext log_ctx;
    std::function<void ()> write_transcripts;
    JsonNode *json = nullptr;
    std::mutex lock;
    std::condition_variable cond;
    bool done = false;
    ~EndJob () { if (json) json_node_unref (json); }
  };
  std::shared_ptr<EndJob> end_job_;
  static gboolean end_written_cb (gpointer data);
  /* runs @fn on the end-writer thread (one thread, in order) */
  static void run_on_end_writer (std::function<void ()> fn);
  gint64 audio_duration_ms () const;  /* samples-out / rate, -1 unknown */
  std::string speaker_for (const std::string &channel,
      const std::string &speaker, const std::string &mode) const;

  EngagementParams p_;
  FinishedFn on_finished_;
  std::unique_ptr<EngagementDir> dir_;
  JournalEntry jentry_;
  bool ticking_ = false;
  /* its pipeline's bus messages on the main context (host-bus.h) */
  std::unique_ptr<BusWatch> bus_watch_;
  bool detaching_ = false;
  bool detached_ = false;
  bool superseded_ = false;
  bool finishing_ = false;
  guint64 timeline_offset_ = 0;        /* samples the earlier parts hold */
  gint64 base_offset_ms_ = 0;          /* their length, for transcript offsets */
  std::string merge_error_;
  /* A continued recording's parts are merged on this thread (an Ogg/Opus
   * re-encode takes ≈0.4 s per minute of audio: not on the main context);
   * joined in merge_done_cb() or, if the host exits first, the destructor. */
  std::thread merge_thread_;
  std::shared_ptr<MergeJob> merge_job_;
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
  /* Records @stop_reason (< 0: none) from @source in stop_reason_ and
   * stop_source_; a 20 RECEIVER_REQUEST_CLOSE after a stop with a source
   * only fills a missing code. Returns: whether the code changed. */
  bool take_stop_reason (int stop_reason, const char *source);
  int remote_reason_ = -1;
  std::vector<std::string> errors_;
  /* the ERROR that ended the engagement: source (element path), domain,
   * code, message, debug (as GStreamer gave them) */
  struct ErrorInfo {
    std::string source, domain, message, debug;
    int code = 0;
  };
  std::optional<ErrorInfo> error_;
  std::vector<std::string> warnings_;  /* the first kMaxWarnings */
  guint64 warnings_total_ = 0;
  bool disk_full_ = false;
  LogContext log_ctx_;
  GstStructure *stats_ = nullptr;
  bool eos_received_ = false;
  bool repaired_ = false;
  std::vector<Sentence> sentences_;
  std::map<gint64, gsize> sentence_index_;
  std::map<std::string, std::string> display_names_;   /* channel/user → name */
  std::map<std::string, std::string> modes_;           /* channel → mode */
  /* issue 14: one file per participant (record-participants), filled by
   * participant_pad_cb on a streaming thread, read for engagement.json */
  struct ParticipantFile {
    std::string id;          /* user_id / channel_id as Zoom sent it */
    std::string file;        /* basename in the engagement directory */
  };
  mutable std::mutex participants_lock_;
  std::vector<ParticipantFile> participant_files_;
  TemplateVars vars_;                                  /* start()'s */
  guint64 transcript_messages_ = 0;
  guint64 event_messages_ = 0;
  guint64 level_messages_ = 0;
  gint64 first_transcript_ms_ = -1;
  /* the running time (ns) of src's first buffer — sample 0 of the audio
   * file — or -1 before it (set by a pad probe on a streaming thread;
   * shared with the probe, which may outlive us) */
  std::shared_ptr<std::atomic<gint64>> first_pts_ =
      std::make_shared<std::atomic<gint64>> (-1);
};

} // namespace zhost
