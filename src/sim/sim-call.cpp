/* zoomrtms-sim — call loading and frame preparation (see sim-call.h). */
#define G_LOG_DOMAIN "zoomrtms-sim"

#include "sim-call.h"

#include <gio/gio.h>
#include <opus.h>
#include <sndfile.h>

#include <algorithm>
#include <cstring>

#include "config.h"
#include "rtms-types.h"

namespace sim {

namespace {

struct KeyFileDeleter {
  void operator() (GKeyFile *k) const { g_key_file_unref (k); }
};
struct SndfileDeleter {
  void operator() (SNDFILE *f) const { sf_close (f); }
};
struct OpusEncoderDeleter {
  void operator() (OpusEncoder *e) const { opus_encoder_destroy (e); }
};

std::string
key_string (GKeyFile *kf, const char *group, const char *key,
    const char *fallback)
{
  g_autofree char *v = g_key_file_get_string (kf, group, key, nullptr);
  return v ? std::string (v) : std::string (fallback);
}

std::string
resolve_path (const std::string &base_dir, const std::string &p)
{
  if (g_path_is_absolute (p.c_str ()))
    return p;
  g_autofree char *full = g_build_filename (base_dir.c_str (), p.c_str (),
      nullptr);
  return full;
}

/* "<s> text </s> (clip-id)" per line → clip-id → text */
std::map<std::string, std::string>
read_transcription (const std::string &path, GError **error)
{
  std::map<std::string, std::string> out;
  g_autofree char *contents = nullptr;
  if (!g_file_get_contents (path.c_str (), &contents, nullptr, error))
    return out;
  g_auto (GStrv) lines = g_strsplit (contents, "\n", -1);
  for (char **l = lines; *l; l++) {
    std::string line = *l;
    size_t open = line.rfind ('(');
    size_t close = line.rfind (')');
    if (open == std::string::npos || close == std::string::npos || close < open)
      continue;
    std::string id = line.substr (open + 1, close - open - 1);
    std::string text = line.substr (0, open);
    for (const char *tag : { "<s>", "</s>" }) {
      size_t p;
      while ((p = text.find (tag)) != std::string::npos)
        text.erase (p, strlen (tag));
    }
    g_autofree char *stripped = g_strstrip (g_strdup (text.c_str ()));
    out[id] = stripped;
  }
  return out;
}

bool
read_wav (const std::string &path, int *rate, std::vector<gint16> *out,
    GError **error)
{
  SF_INFO info;
  memset (&info, 0, sizeof info);
  std::unique_ptr<SNDFILE, SndfileDeleter> f (sf_open (path.c_str (),
          SFM_READ, &info));
  if (!f) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
        "cannot read clip %s: %s", path.c_str (), sf_strerror (nullptr));
    return false;
  }
  if (info.channels != 1) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
        "clip %s has %d channels, expected mono", path.c_str (),
        info.channels);
    return false;
  }
  out->resize (info.frames);
  sf_count_t got = sf_readf_short (f.get (), out->data (), info.frames);
  out->resize (got > 0 ? got : 0);
  *rate = info.samplerate;
  return true;
}

/* Linear interpolation, integer arithmetic (deterministic). */
std::vector<gint16>
resample_linear (const std::vector<gint16> &in, int from_hz, int to_hz)
{
  if (from_hz == to_hz || in.empty ())
    return in;
  size_t n_out = (size_t) ((guint64) in.size () * to_hz / from_hz);
  std::vector<gint16> out (n_out);
  for (size_t i = 0; i < n_out; i++) {
    guint64 pos = (guint64) i * from_hz;
    size_t idx = pos / to_hz;
    gint64 frac = pos % to_hz;
    gint64 a = in[std::min (idx, in.size () - 1)];
    gint64 b = in[std::min (idx + 1, in.size () - 1)];
    out[i] = (gint16) ((a * (to_hz - frac) + b * frac) / to_hz);
  }
  return out;
}

} // namespace

gint64
Call::duration_ms () const
{
  if (pcm.empty ())
    return 0;
  return (gint64) pcm[0].size () * 1000 / rate;
}

std::string
default_call_file ()
{
  std::vector<std::string> candidates;
  const char *env = g_getenv ("ZOOMRTMS_SOURCE_DIR");
  if (env && *env) {
    g_autofree char *p = g_build_filename (env, "data", "default-call.conf",
        nullptr);
    candidates.push_back (p);
  }
  {
    g_autofree char *p = g_build_filename (ZOOMRTMS_SOURCE_DIR, "data",
        "default-call.conf", nullptr);
    candidates.push_back (p);
  }
  {
    g_autofree char *p = g_build_filename (ZOOMRTMS_DATADIR,
        "default-call.conf", nullptr);
    candidates.push_back (p);
  }
  for (const auto &c : candidates)
    if (g_file_test (c.c_str (), G_FILE_TEST_IS_REGULAR))
      return c;
  return candidates.back ();
}

std::unique_ptr<Call>
load_call (const std::string &path, double duration_s, GError **error)
{
  std::unique_ptr<GKeyFile, KeyFileDeleter> kf (g_key_file_new ());
  if (!g_key_file_load_from_file (kf.get (), path.c_str (), G_KEY_FILE_NONE,
          error)) {
    g_prefix_error (error, "call file %s: ", path.c_str ());
    return nullptr;
  }
  g_autofree char *dir_c = g_path_get_dirname (path.c_str ());
  std::string dir = dir_c;

  auto call = std::make_unique<Call> ();
  std::string clip_dir = resolve_path (dir, key_string (kf.get (), "call",
          "clip_dir", "."));
  std::string transcription = key_string (kf.get (), "call", "transcription",
      "");
  gint64 pause_ms = g_key_file_get_integer (kf.get (), "call", "pause_ms",
      nullptr);
  call->queue_id = key_string (kf.get (), "call", "queue_id", "Q1");
  call->queue_name = key_string (kf.get (), "call", "queue_name", "Support");
  if (g_key_file_has_key (kf.get (), "call", "language", nullptr))
    call->language = g_key_file_get_integer (kf.get (), "call", "language",
        nullptr);

  std::map<std::string, std::string> texts;
  if (!transcription.empty ()) {
    texts = read_transcription (resolve_path (dir, transcription), error);
    if (error && *error) {
      g_prefix_error (error, "call file %s: ", path.c_str ());
      return nullptr;
    }
  }

  const char *roles[] = { "customer", "agent" };
  const char *modes[] = { "caller", "callee" };
  for (int i = 0; i < 2; i++) {
    Party p;
    p.role = roles[i];
    p.participant_mode = key_string (kf.get (), roles[i], "participant_mode",
        modes[i]);
    p.display_name = key_string (kf.get (), roles[i], "display_name",
        roles[i]);
    p.user_id = key_string (kf.get (), roles[i], "user_id", roles[i]);
    p.phone_number = key_string (kf.get (), roles[i], "phone_number", "");
    p.meeting_user_id = g_key_file_get_int64 (kf.get (), roles[i],
        "meeting_user_id", nullptr);
    if (p.meeting_user_id == 0)
      p.meeting_user_id = 16778240 + 1024 * i;
    call->parties.push_back (p);
  }

  gsize n_turns = 0;
  g_auto (GStrv) turn_groups = g_key_file_get_string_list (kf.get (), "call",
      "turns", &n_turns, error);
  if (!turn_groups || n_turns == 0) {
    g_clear_error (error);
    g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
        "call file %s: [call] turns is missing or empty", path.c_str ());
    return nullptr;
  }

  struct Clip {
    int party;
    std::vector<gint16> pcm;
    std::string text;
  };
  std::vector<Clip> clips;
  int rate = 0;
  for (gsize t = 0; t < n_turns; t++) {
    const char *g = turn_groups[t];
    std::string party = key_string (kf.get (), g, "party", "");
    std::string clip = key_string (kf.get (), g, "clip", "");
    Clip c;
    if (party == "customer")
      c.party = 0;
    else if (party == "agent")
      c.party = 1;
    else {
      g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
          "call file %s: [%s] party must be customer or agent", path.c_str (),
          g);
      return nullptr;
    }
    if (clip.empty ()) {
      g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
          "call file %s: [%s] clip is missing", path.c_str (), g);
      return nullptr;
    }
    std::string wav = clip;
    if (!g_str_has_suffix (wav.c_str (), ".wav"))
      wav += ".wav";
    int clip_rate = 0;
    if (!read_wav (resolve_path (clip_dir, wav), &clip_rate, &c.pcm, error))
      return nullptr;
    if (rate && clip_rate != rate) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
          "call file %s: clip %s is %d Hz, the others %d Hz", path.c_str (),
          wav.c_str (), clip_rate, rate);
      return nullptr;
    }
    rate = clip_rate;
    g_autofree char *base = g_path_get_basename (clip.c_str ());
    std::string id = base;
    if (g_str_has_suffix (id.c_str (), ".wav"))
      id.resize (id.size () - 4);
    auto it = texts.find (id);
    c.text = it != texts.end () ? it->second : std::string ();
    clips.push_back (std::move (c));
  }
  call->rate = rate;

  /* Lay the turns out; loop them when a longer duration is asked for. */
  const gint64 pause = (gint64) pause_ms * rate / 1000;
  const gint64 limit = duration_s > 0 ? (gint64) (duration_s * rate) : -1;
  call->pcm.assign (2, {});
  gint64 cursor = 0;
  bool done = false;
  while (!done) {
    for (size_t t = 0; t < clips.size () && !done; t++) {
      if (cursor > 0)
        cursor += pause;
      const Clip &c = clips[t];
      gint64 start = cursor, end = cursor + (gint64) c.pcm.size ();
      for (auto &ch : call->pcm)
        ch.resize (end, 0);
      std::copy (c.pcm.begin (), c.pcm.end (),
          call->pcm[c.party].begin () + start);
      if (limit < 0 || end <= limit) {
        Sentence s;
        s.party = c.party;
        s.start_ms = start * 1000 / rate;
        s.end_ms = end * 1000 / rate;
        s.text = c.text;
        if (!s.text.empty ())
          call->sentences.push_back (s);
      }
      call->turns.push_back ({ start * 1000 / rate, c.party });
      cursor = end;
      if (limit >= 0 && cursor >= limit)
        done = true;
    }
    if (limit < 0)
      done = true;
  }
  if (limit >= 0)
    for (auto &ch : call->pcm)
      ch.resize (limit, 0);

  /* Transcripts: each sentence when its clip ends; the first one once more,
   * revised (same sentence_id, attribute 2), 500 ms later. */
  gint64 dur = call->duration_ms ();
  for (size_t i = 0; i < call->sentences.size (); i++) {
    call->transcript_events.push_back ({ call->sentences[i].end_ms, (int) i,
        1 });
    if (i == 0)
      call->transcript_events.push_back ({ std::min (
              call->sentences[i].end_ms + 500, dur), 0, 2 });
  }
  std::stable_sort (call->transcript_events.begin (),
      call->transcript_events.end (),
      [](const TranscriptEvent &a, const TranscriptEvent &b) {
        return a.send_ms < b.send_ms;
      });
  g_debug ("call %s: %" G_GINT64_FORMAT " ms, %zu sentences, %d Hz",
      path.c_str (), dur, call->sentences.size (), rate);
  return call;
}

std::shared_ptr<PreparedAudio>
prepare_audio (const Call &call, const AudioFormat &format, GError **error)
{
  auto pa = std::make_shared<PreparedAudio> ();
  pa->format = format;
  std::vector<std::vector<gint16>> sources;
  if (format.mixed) {
    std::vector<gint16> sum (call.pcm[0].size ());
    for (size_t i = 0; i < sum.size (); i++) {
      int v = (int) call.pcm[0][i] + (int) call.pcm[1][i];
      sum[i] = (gint16) CLAMP (v, G_MININT16, G_MAXINT16);
    }
    sources.push_back (std::move (sum));
  } else {
    sources = call.pcm;
  }

  const size_t frame_samples = (size_t) format.rate_hz * format.send_rate_ms
      / 1000;
  for (auto &src : sources) {
    ChannelFrames cf;
    cf.pcm = resample_linear (src, call.rate, format.rate_hz);
    size_t n = (cf.pcm.size () + frame_samples - 1) / frame_samples;
    cf.pcm.resize (n * frame_samples, 0);
    pa->n_frames = n;
    cf.b64.reserve (n);
    cf.bytes.reserve (n);
    std::unique_ptr<OpusEncoder, OpusEncoderDeleter> enc;
    if (format.codec == rtms::CODEC_OPUS) {
      int err = 0;
      enc.reset (opus_encoder_create (format.rate_hz, 1,
              OPUS_APPLICATION_VOIP, &err));
      if (!enc || err != OPUS_OK) {
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
            "opus_encoder_create(%d Hz) failed: %s", format.rate_hz,
            opus_strerror (err));
        return nullptr;
      }
      opus_encoder_ctl (enc.get (), OPUS_SET_COMPLEXITY (5));
    }
    std::vector<unsigned char> packet (4000);
    for (size_t k = 0; k < n; k++) {
      const gint16 *samples = cf.pcm.data () + k * frame_samples;
      if (enc) {
        /* one Opus packet per 20 ms frame (docs/protocol.md §4.4, §11 #13) */
        opus_int32 len = opus_encode (enc.get (), samples,
            (int) frame_samples, packet.data (), (opus_int32) packet.size ());
        if (len < 0) {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
              "opus_encode failed: %s", opus_strerror (len));
          return nullptr;
        }
        g_autofree char *b = g_base64_encode (packet.data (), len);
        cf.b64.emplace_back (b);
        cf.bytes.push_back (len);
      } else {
        /* L16 = signed 16-bit little-endian (docs/protocol.md §4.4) */
        std::vector<guint8> le (frame_samples * 2);
        for (size_t i = 0; i < frame_samples; i++) {
          guint16 v = (guint16) samples[i];
          le[2 * i] = v & 0xff;
          le[2 * i + 1] = v >> 8;
        }
        g_autofree char *b = g_base64_encode (le.data (), le.size ());
        cf.b64.emplace_back (b);
        cf.bytes.push_back (le.size ());
      }
    }
    pa->channels.push_back (std::move (cf));
  }
  return pa;
}

std::shared_ptr<PreparedAudio>
AudioCache::get (const AudioFormat &format, GError **error)
{
  auto it = cache_.find (format);
  if (it != cache_.end ())
    return it->second;
  auto pa = prepare_audio (*call_, format, error);
  if (pa)
    cache_[format] = pa;
  return pa;
}

} // namespace sim
