/* zoomrtms-host — transcripts people can open: WebVTT and SRT (issue 14).
 *
 * Written beside transcript.txt from the same sentences (EngagementDir::
 * write_transcript), so the end of an engagement, a detach, a continued
 * recording and a recovery after a crash all rebuild them.
 *
 * Cues: one per sentence with text (empty / whitespace-only text is
 * skipped), times relative to the recording start — the origin of the
 * audio file (docs/protocol.md §4.9 timeline; the sentence's running time
 * plus the earlier parts of a continued recording) — sorted by start
 * (stable: equal starts keep the order of arrival).
 * End of a cue: start + the sentence's own duration (end_time - start_time
 * of msg 17, docs/protocol.md §4.5) when Zoom sent one, else an estimate from the text
 * (kMsPerChar a character, at least kMinCueMs) cut at the next cue's start
 * when that is later than this one's (but not below kMinCueMs); then at
 * most kMaxCueMs, and not past @recording_ms when that is known and later
 * than the start; always at least 1 ms (no zero-length cue).
 * WebVTT (W3C WebVTT §4): "WEBVTT" header, HH:MM:SS.mmm timings, the
 * speaker as a voice span `<v Name>`, text and name escaped (&amp; &lt;
 * &gt;), overlapping cues kept (VTT allows them). SRT (SubRip): indices
 * from 1, HH:MM:SS,mmm timings, "Name: text"; a cue that overlaps the next
 * is cut at the next start (SubRip players show one cue at a time).
 * Text: line breaks and control bytes become spaces, invalid UTF-8 is
 * replaced (U+FFFD); at most kMaxCueBytes per cue (cut at a character).
 */
#pragma once

#include <glib.h>

#include <string>
#include <vector>

namespace zhost {

struct SubtitleCue {
  gint64 start_ms = 0;           /* from the recording start */
  gint64 end_ms = 0;             /* > start_ms */
  std::string speaker, text;     /* valid UTF-8, one line each */
};

struct SubtitleLine {
  gint64 offset_ms;              /* start, from the recording start */
  gint64 duration_ms;            /* the sentence's own, -1 if unknown */
  std::string speaker, text;
};

constexpr gint64 kMinCueMs = 1000;
constexpr gint64 kMaxCueMs = 10000;
constexpr gint64 kMsPerChar = 60;
constexpr gsize kMaxCueBytes = 4096;

/** subtitle_cues:
 * @recording_ms: the recording's length (ms), -1 if unknown.
 * @no_overlap: cut each cue at the next one's start (SRT).
 * Returns: the cues of @lines, by the rules above.
 */
std::vector<SubtitleCue> subtitle_cues (const std::vector<SubtitleLine> &lines,
    gint64 recording_ms, bool no_overlap);

/* Returns: the WebVTT / SRT file text of @lines (UTF-8, "\n" line ends). */
std::string render_webvtt (const std::vector<SubtitleLine> &lines, gint64 recording_ms);
std::string render_srt (const std::vector<SubtitleLine> &lines, gint64 recording_ms);

/* Returns: "HH:MM:SS.mmm" (@sep '.') or "HH:MM:SS,mmm" (@sep ','). */
std::string subtitle_time (gint64 ms, char sep);

} // namespace zhost
