/* Helpers of the host's end-to-end tests that play calls through the sim
 * and compare recordings with its --dump-dir (test-host-e2e.cpp,
 * test-host-restart.cpp). */
#pragma once

#include "host-test-util.h"

#include <gst/gst.h>

namespace hosttest {

/* --- audio helpers --- */

struct Wav {
  int channels = 0, rate = 0, bits = 0;
  gint64 riff_size = -1, data_size = -1, data_offset = -1, file_size = 0;
  std::vector<gint16> samples;
};

inline Wav
read_wav (const std::string &path)
{
  Wav w;
  std::string c = read_file (path);
  w.file_size = static_cast<gint64> (c.size ());
  auto rd32 = [&c] (gsize o) -> gint64 {
    auto *u = reinterpret_cast<const guint8 *> (c.data ());
    return u[o] | (u[o + 1] << 8) | (u[o + 2] << 16) |
        (static_cast<gint64> (u[o + 3]) << 24);
  };
  if (c.size () < 12 || c.compare (0, 4, "RIFF") != 0 || c.compare (8, 4, "WAVE") != 0)
    return w;
  w.riff_size = rd32 (4);
  gsize pos = 12;
  while (pos + 8 <= c.size ()) {
    gint64 size = rd32 (pos + 4);
    if (c.compare (pos, 4, "fmt ") == 0 && pos + 24 <= c.size ()) {
      auto *u = reinterpret_cast<const guint8 *> (c.data ()) + pos + 8;
      w.channels = u[2] | (u[3] << 8);
      w.rate = static_cast<int> (rd32 (pos + 12));
      w.bits = u[14] | (u[15] << 8);
    } else if (c.compare (pos, 4, "data") == 0) {
      w.data_size = size;
      w.data_offset = static_cast<gint64> (pos + 8);
      gsize n = std::min<gsize> (static_cast<gsize> (size), c.size () - pos - 8) / 2;
      w.samples.resize (n);
      memcpy (w.samples.data (), c.data () + pos + 8, n * 2);
      break;
    }
    pos += 8 + static_cast<gsize> (size) + (size & 1);
  }
  return w;
}

inline std::vector<gint16>
read_pcm (const std::string &path)
{
  std::string c = read_file (path);
  std::vector<gint16> v (c.size () / 2);
  memcpy (v.data (), c.data (), v.size () * 2);
  return v;
}

/* Stereo layout: customer left, agent right (zoomrtmssrc layout=stereo). */
inline std::vector<gint16>
interleave (const std::string &dump_stream_dir)
{
  auto cu = read_pcm (dump_stream_dir + "/customer.pcm");
  auto ag = read_pcm (dump_stream_dir + "/agent.pcm");
  std::vector<gint16> out (2 * std::max (cu.size (), ag.size ()), 0);
  for (gsize i = 0; i < cu.size (); i++)
    out[2 * i] = cu[i];
  for (gsize i = 0; i < ag.size (); i++)
    out[2 * i + 1] = ag[i];
  return out;
}

/* Runs a command, returns its exit status and output. */
inline int
run_tool (const std::vector<std::string> &argv, std::string *output)
{
  std::vector<const gchar *> args;
  for (const auto &a : argv)
    args.push_back (a.c_str ());
  args.push_back (nullptr);
  g_autofree gchar *out = nullptr;
  gint status = -1;
  GError *err = nullptr;
  if (!g_spawn_sync (nullptr, const_cast<gchar **> (args.data ()), nullptr,
          static_cast<GSpawnFlags> (G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL),
          nullptr, nullptr, &out, nullptr, &status, &err)) {
    g_clear_error (&err);
    return -1;
  }
  if (output)
    *output = out ? out : "";
  return g_spawn_check_wait_status (status, nullptr) ? 0 : 1;
}

inline double
soxi_duration (const std::string &path)
{
  std::string out;
  if (run_tool ({"soxi", "-D", path}, &out) != 0)
    return -1;
  return g_ascii_strtod (out.c_str (), nullptr);
}

/* The audio's length by ffprobe: duration − start_time. A live source's
 * first buffer carries the running time at which the first packet arrived,
 * and Ogg keeps it as the stream's start offset (RFC 7845 §4.5); ffprobe's
 * `duration` is the end time, so a slow join (a loaded machine, a
 * sanitizer build) used to show up as extra "duration". */
inline double
ffprobe_duration (const std::string &path)
{
  std::string out;
  if (run_tool ({"ffprobe", "-v", "error", "-show_entries",
          "format=duration,start_time", "-of", "default=nw=1", path}, &out) != 0)
    return -1;
  double duration = -1, start = 0;
  g_auto (GStrv) lines = g_strsplit (out.c_str (), "\n", -1);
  for (gchar **l = lines; *l; l++) {
    if (g_str_has_prefix (*l, "duration="))
      duration = g_ascii_strtod (*l + 9, nullptr);
    else if (g_str_has_prefix (*l, "start_time="))
      start = g_ascii_strtod (*l + 11, nullptr);
  }
  return duration < 0 ? -1 : duration - start;
}

/* The sim's ready file: engagement id and rtms_stream_id of each stream. */
struct SimStream {
  std::string engagement_id, rtms_stream_id, server_urls, webhook;
};

inline std::vector<SimStream>
sim_streams (const std::string &ready)
{
  std::vector<SimStream> v;
  JsonDoc d (read_file (ready));
  if (!d.obj () || !json_object_has_member (d.obj (), "streams"))
    return v;
  JsonArray *a = json_object_get_array_member (d.obj (), "streams");
  for (guint i = 0; i < json_array_get_length (a); i++) {
    JsonObject *s = json_array_get_object_element (a, i);
    SimStream st;
    st.engagement_id = json_object_get_string_member_with_default (s, "engagement_id", "");
    st.rtms_stream_id = json_object_get_string_member_with_default (s, "rtms_stream_id", "");
    st.server_urls = json_object_get_string_member_with_default (s, "server_urls", "");
    if (json_object_has_member (s, "webhook")) {
      g_autofree gchar *w = json_to_string (json_object_get_member (s, "webhook"), FALSE);
      st.webhook = w;
    }
    v.push_back (st);
  }
  return v;
}

inline JsonDoc *
engagement_json (const std::string &dir)
{
  return new JsonDoc (read_file (dir + "/engagement.json"));
}

inline bool
have_tools ()
{
  return g_file_test (host_bin ().c_str (), G_FILE_TEST_IS_EXECUTABLE) &&
      g_file_test (sim_bin ().c_str (), G_FILE_TEST_IS_EXECUTABLE);
}

#define REQUIRE_BINARIES()                                                     \
  do {                                                                         \
    ASSERT_TRUE (have_tools ()) << "build zoomrtms-host and zoomrtms-sim first"; \
  } while (0)

/* Runs `zoomrtms-sim run` against @host and waits for it. */
inline std::unique_ptr<Proc>
run_sim (const TempDir &tmp, const Host &host, const std::vector<std::string> &extra,
    const std::string &name = "sim")
{
  std::vector<std::string> argv = {sim_bin (), "run", "--webhook-url",
      host.url ("/webhook"), "--dump-dir", tmp / (name + "-dump"),
      "--ready-file", tmp / (name + "-ready.json")};
  argv.insert (argv.end (), extra.begin (), extra.end ());
  return std::make_unique<Proc> (argv, tmp.path, tmp / (name + ".log"), cred_env ());
}

/* Waits until the host has no active engagement. */
inline bool
host_idle (const Host &h, int timeout_ms)
{
  return spin_until ([&h] {
        Resp r = http ("GET", h.url ("/health"));
        JsonDoc d (r.body);
        return r.status == 200 && d.obj () &&
            json_object_get_int_member (d.obj (), "activeEngagements") == 0;
      }, timeout_ms);
}

/* Plays the sim's calls through @host to the end (`zoomrtms-sim run`
 * exits 0, the host goes idle) and reads the sim's streams. Use with
 * ASSERT_NO_FATAL_FAILURE. */
inline void
play_calls (const TempDir &tmp, const Host &host,
    const std::vector<std::string> &extra, size_t n_streams,
    std::vector<SimStream> *streams)
{
  auto sim = run_sim (tmp, host, extra);
  ASSERT_TRUE (sim->wait (60000));
  ASSERT_EQ (sim->exit_status (), 0) << sim->log ();
  ASSERT_TRUE (host_idle (host, 15000));
  *streams = sim_streams (tmp / "sim-ready.json");
  ASSERT_EQ (streams->size (), n_streams);
}



/* gst-discoverer-1.0 (gstreamer1.0-plugins-base-apps, installed by the
 * project's setup) reads the file as audio. */
inline void
expect_discoverer_accepts (const std::string &path)
{
  g_autofree gchar *tool = g_find_program_in_path ("gst-discoverer-1.0");
  if (!tool) {
    ADD_FAILURE () << "gst-discoverer-1.0 not found (tools/setup-debian.sh "
        "installs gstreamer1.0-plugins-base-apps)";
    return;
  }
  std::string out;
  EXPECT_EQ (run_tool ({tool, path}, &out), 0) << out;
  EXPECT_NE (out.find ("audio"), std::string::npos) << out;
  EXPECT_EQ (out.find ("error"), std::string::npos) << out;
}

inline void
expect_wav_equals_dump (const std::string &wav_path, const std::string &dump_dir)
{
  Wav w = read_wav (wav_path);
  ASSERT_EQ (w.channels, 2) << wav_path;
  ASSERT_EQ (w.rate, 16000);
  ASSERT_EQ (w.bits, 16);
  EXPECT_EQ (w.data_size, w.file_size - w.data_offset) << "header not finalized";
  auto expected = interleave (dump_dir);
  ASSERT_GT (expected.size (), 0u);
  ASSERT_EQ (w.samples.size (), expected.size ());
  gsize first_diff = 0;
  while (first_diff < expected.size () && w.samples[first_diff] == expected[first_diff])
    first_diff++;
  EXPECT_EQ (first_diff, expected.size ()) << "first differing sample " << first_diff;
  EXPECT_GT (soxi_duration (wav_path), 0.0) << "soxi refused " << wav_path;
  expect_discoverer_accepts (wav_path);
}


} // namespace hosttest
