/* zoomrtms-host — WebVTT and SRT transcripts (host-subtitles.h). */
#include "host-subtitles.h"

#include <algorithm>

namespace zhost {

std::string
subtitle_time (gint64 ms, char sep)
{
  if (ms < 0)
    ms = 0;
  g_autofree gchar *t = g_strdup_printf ("%02" G_GINT64_FORMAT ":%02d:%02d%c%03d",
      ms / 3600000, static_cast<int> ((ms / 60000) % 60),
      static_cast<int> ((ms / 1000) % 60), sep, static_cast<int> (ms % 1000));
  return t;
}

/* one line of valid UTF-8, control bytes as spaces, runs of spaces
 * collapsed, trimmed, at most kMaxCueBytes (cut at a character) */
static std::string
one_line (const std::string &s)
{
  g_autofree gchar *valid = g_utf8_make_valid (s.data (), static_cast<gssize> (s.size ()));
  std::string out;
  for (const gchar *p = valid; *p; p++) {
    unsigned char c = static_cast<unsigned char> (*p);
    bool space = c < 0x20 || c == 0x7f || c == ' ';
    if (space) {
      if (!out.empty () && out.back () != ' ')
        out += ' ';
    } else {
      out += *p;
    }
  }
  while (!out.empty () && out.back () == ' ')
    out.pop_back ();
  if (out.size () > kMaxCueBytes) {
    gsize n = kMaxCueBytes;
    while (n > 0 && (static_cast<unsigned char> (out[n]) & 0xc0) == 0x80)
      n--;
    out.resize (n);
  }
  return out;
}

std::vector<SubtitleCue>
subtitle_cues (const std::vector<SubtitleLine> &lines, gint64 recording_ms,
    bool no_overlap)
{
  std::vector<SubtitleCue> cues;
  std::vector<gint64> durations;
  for (const SubtitleLine &l : lines) {
    SubtitleCue c;
    c.text = one_line (l.text);
    if (c.text.empty ())
      continue;
    c.speaker = one_line (l.speaker);
    c.start_ms = std::max<gint64> (l.offset_ms, 0);
    cues.push_back (std::move (c));
    durations.push_back (l.duration_ms);
  }
  /* by start; equal starts keep their order of arrival */
  std::vector<gsize> order (cues.size ());
  for (gsize i = 0; i < order.size (); i++)
    order[i] = i;
  std::stable_sort (order.begin (), order.end (), [&cues] (gsize a, gsize b) {
    return cues[a].start_ms < cues[b].start_ms;
  });
  std::vector<SubtitleCue> sorted;
  std::vector<gint64> dur;
  for (gsize i : order) {
    sorted.push_back (std::move (cues[i]));
    dur.push_back (durations[i]);
  }
  for (gsize i = 0; i < sorted.size (); i++) {
    SubtitleCue &c = sorted[i];
    gint64 next = -1;
    for (gsize j = i + 1; j < sorted.size (); j++)
      if (sorted[j].start_ms > c.start_ms) {
        next = sorted[j].start_ms;
        break;
      }
    gint64 len;
    if (dur[i] > 0) {
      len = dur[i];
    } else {
      len = std::max<gint64> (kMinCueMs,
          static_cast<gint64> (g_utf8_strlen (c.text.c_str (), -1)) * kMsPerChar);
      if (next >= 0)
        len = std::min (len, std::max<gint64> (next - c.start_ms, kMinCueMs));
    }
    len = std::min (len, kMaxCueMs);
    gint64 end = c.start_ms + len;
    if (no_overlap && next >= 0)
      end = std::min (end, next);
    if (recording_ms > c.start_ms)
      end = std::min (end, recording_ms);
    c.end_ms = std::max (end, c.start_ms + 1);
  }
  return sorted;
}

static std::string
vtt_escape (const std::string &s)
{
  std::string out;
  for (char c : s) {
    if (c == '&')
      out += "&amp;";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else
      out += c;
  }
  return out;
}

std::string
render_webvtt (const std::vector<SubtitleLine> &lines, gint64 recording_ms)
{
  std::string t = "WEBVTT\n";
  for (const SubtitleCue &c : subtitle_cues (lines, recording_ms, false)) {
    t += "\n" + subtitle_time (c.start_ms, '.') + " --> " +
        subtitle_time (c.end_ms, '.') + "\n";
    if (!c.speaker.empty ())
      t += "<v " + vtt_escape (c.speaker) + ">";
    t += vtt_escape (c.text) + "\n";
  }
  return t;
}

std::string
render_srt (const std::vector<SubtitleLine> &lines, gint64 recording_ms)
{
  std::string t;
  int n = 0;
  for (const SubtitleCue &c : subtitle_cues (lines, recording_ms, true)) {
    if (n > 0)
      t += "\n";
    t += std::to_string (++n) + "\n" + subtitle_time (c.start_ms, ',') +
        " --> " + subtitle_time (c.end_ms, ',') + "\n";
    t += (c.speaker.empty () ? "" : c.speaker + ": ") + c.text + "\n";
  }
  return t;
}

} // namespace zhost
