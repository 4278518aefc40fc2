/* zoomrtms-host — the engagement directory and everything in it: one owner
 * (issue 9 "Give the engagement directory one owner in the code").
 *
 * OUTPUT_ROOT/<dir name>/ holds:
 *   the pipeline's outputs (audio.wav, audio.opus, … : the `location` of
 *     its file sinks), and while a recording is continued after a host
 *     restart or crash, its earlier parts <stem>.partK<.ext> (K = 1, 2, …),
 *     merged into the output when the engagement ends;
 *   transcript.jsonl, events.jsonl, levels.jsonl (one JSON object a line,
 *     appended), transcript.txt with transcript.vtt and transcript.srt
 *     (rendered at the end, or rebuilt from transcript.jsonl after a
 *     crash; host-subtitles.h), engagement.json (rewritten
 *     atomically);
 *   while the engagement is live, .zoomrtms-reserve (reserve(): 64 KiB set
 *     aside for the final files if the disk fills up).
 * Naming: the directory is the engagement id sanitized
 * (sanitize_engagement_id(), "-2", "-3", … when taken; an empty directory
 * of that name is used as it is).
 * Rules: design.md "End of stream" (a killed host's files are repaired),
 * "Lifetimes" (continuation), docs/protocol.md §4.9.
 * Main context only — except merge_parts(), which touches only the files
 * and runs on a worker thread with its own instance (Engagement::finish).
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include <functional>
#include <string>
#include <vector>

namespace zhost {

class EngagementDir {
 public:
  enum class Log { TRANSCRIPT, EVENTS, LEVELS };

  /** allocate_name:
   * Returns: a directory name for @id_value under @output_root: the
   * sanitized id, or with "-N" (N = 2, 3, …) when that name exists on disk
   * (an empty directory does not count: it may be a place prepared for the
   * engagement, e.g. a mount point) or @in_use says it is taken by a live
   * engagement.
   */
  static std::string allocate_name (const std::string &output_root,
      const std::string &id_value,
      const std::function<bool (const std::string &)> &in_use);

  /* @dir: absolute path; @name: its last component. */
  EngagementDir (std::string dir, std::string name);
  ~EngagementDir ();
  EngagementDir (const EngagementDir &) = delete;
  EngagementDir &operator= (const EngagementDir &) = delete;

  const std::string &path () const { return dir_; }
  const std::string &name () const { return name_; }
  /* Returns: @file inside the directory. */
  std::string file (const std::string &file) const;

  /** create: mkdir -p (0750). Returns: false with ZHOST_ERROR_IO. */
  bool create (GError **error) const;

  /** reserve:
   * Sets @bytes of disk space aside in the directory (the hidden file
   * `.zoomrtms-reserve`, allocated with posix_fallocate()), so that an
   * engagement whose disk fills up mid-call can still write its final
   * engagement.json and transcript.txt after release_reserve() (issue 11).
   * Returns: false (logged at debug level) when the space is not there.
   */
  bool reserve (gsize bytes) const;
  /* Deletes the reserve file (if any). */
  void release_reserve () const;
  static constexpr gsize kReserveBytes = 64 * 1024;

  /** append:
   * Appends @line + "\n" to the jsonl file of @log (opened on first use,
   * kept open until close_logs()). Errors are logged, never fatal.
   */
  void append (Log log, const std::string &line);
  void close_logs ();

  /** write_engagement_json:
   * Rewrites engagement.json atomically (temp + rename) with @root, pretty.
   */
  void write_engagement_json (JsonNode *root) const;

  /** read_engagement_json:
   * Returns: (transfer none, owned by @parser) the object of
   * engagement.json, or NULL (missing, unreadable: logged).
   */
  JsonObject *read_engagement_json (JsonParser *parser) const;

  /** write_transcript:
   * Writes transcript.txt: a header (ids, start, pipeline), one
   * `[HH:MM:SS] speaker: text` line per @lines entry, @footer; and beside
   * it transcript.vtt (WebVTT) and transcript.srt (SubRip) of the same
   * lines (host-subtitles.h; issue 14). @recording_ms: the recording's
   * length (ms) bounding the last cue, -1 if unknown.
   */
  struct Line {
    gint64 offset_ms;
    std::string speaker, text;
    gint64 duration_ms = -1;     /* end_time - start_time of msg 17, if sent */
  };
  void write_transcript (const std::string &id_key, const std::string &id_value,
      const std::string &stream_id, const std::string &started,
      const std::string &pipeline, const std::vector<Line> &lines,
      const std::string &footer, gint64 recording_ms = -1) const;
  /* the transcript files write_transcript() writes */
  static const char *const kTranscriptFiles[3];

  /** transcript_lines:
   * Returns: the sentences of transcript.jsonl (the last text of each
   * sentence_id, in order of first appearance; lines cut by a kill are
   * skipped). @found: (out) (optional): whether the file exists.
   */
  std::vector<Line> transcript_lines (bool *found = nullptr) const;

  /** recover_transcript:
   * For an engagement a killed host left unfinished: writes transcript.txt
   * from transcript.jsonl (the last text of each sentence_id, in order of
   * first appearance) with the ids and start time of @engagement (its
   * engagement.json object).
   * Returns: the number of lines written, -1 if there is no transcript.jsonl.
   */
  int recover_transcript (JsonObject *engagement) const;

  /** repair_wavs:
   * wav_repair() on every *.wav of the directory (outputs and parts).
   * Returns: TRUE if a header was rewritten.
   */
  bool repair_wavs () const;

  /* --- continuation (issue 9; design.md "Lifetimes") --- */

  /** part_name:
   * Returns: "audio.part3.wav" for ("audio.wav", 3); "x.part3" for "x".
   */
  static std::string part_name (const std::string &output, int k);

  /** move_outputs_aside:
   * Before a continuation pipeline writes @outputs again: renames each
   * existing output to part_name (output, @parts + 1) and increments
   * *@parts when at least one was moved (after repairing a WAV left
   * without EOS). Returns: false with ZHOST_ERROR_IO if a rename failed
   * (nothing of that output is overwritten then: the caller must not start).
   */
  bool move_outputs_aside (const std::vector<std::string> &outputs, int *parts,
      GError **error) const;

  /** recorded_samples:
   * Returns: the sample frames (per channel) held by the parts 1..@parts of
   * the first WAV output — the next pipeline's timeline-offset — or -1 when
   * there is no WAV output or a part cannot be read.
   */
  gint64 recorded_samples (const std::vector<std::string> &outputs, int parts) const;

  /** merge_parts:
   * When the engagement ends: for each output, part 1..@parts then the
   * output itself become one file. WAV: the PCM appended, one header with
   * the right sizes (exact, wav_concat()). Ogg/Opus (.opus, and .ogg
   * holding Opus): decoded and encoded again as one stream
   * (ogg_opus_concat(): each part's pre-skip and end trimming honoured, so
   * the duration is the sum of the parts; written to a temp file, fsynced,
   * renamed over the output), then the parts are deleted; on failure (a
   * part without Opus, e.g. Vorbis in .ogg, a decode error, the time bound)
   * the parts are kept and the error is returned. Other formats: parts kept.
   * Blocks the calling thread while an Ogg/Opus pipeline runs (a re-encode:
   * well under a second per minute of audio on one core).
   * @leading_silence: (out) (optional): for the first WAV output, the
   *   leading all-zero sample frames of each part 2..@parts+1 (the pieces
   *   a continuation wrote: the silence inserted for the interruption
   *   before each; an upper bound when the call itself was silent there).
   * @opus_settings: opusenc properties for the Ogg/Opus re-encode
   *   ("audio-type=voice bitrate=32000": ogg_opus_encoder_settings() of the
   *   pipeline template); "" for opusenc's defaults.
   * Returns: false with ZHOST_ERROR_IO / ZHOST_ERROR_WAV naming the output
   * whose parts were kept; the other outputs are merged anyway.
   */
  bool merge_parts (const std::vector<std::string> &outputs, int parts,
      std::vector<gint64> *leading_silence, GError **error,
      const std::string &opus_settings = "") const;

 private:
  std::string dir_, name_;
  GOutputStream *logs_[3] = {nullptr, nullptr, nullptr};
  /* write failures per log since the last warning (a full disk fails every
   * line: warned about once, then counted) */
  guint64 log_failures_[3] = {0, 0, 0};
};

/** hhmmss: Returns: "HH:MM:SS" of @ms (negative = 0). */
std::string hhmmss (gint64 ms);

/** printable: Returns: @s with control bytes replaced by '?' (for text files). */
std::string printable (const std::string &s);

} // namespace zhost
