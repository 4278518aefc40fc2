/* sim-load: connects every stream of a running zoomrtms-sim (from its ready
 * file) with raw WebSockets, streams to the end, and prints frames received
 * and the sim's CPU time. A benchmark helper, not a test:
 *   zoomrtms-sim serve --engagements 200 --ready-file r.json &
 *   sim-load r.json <sim-pid>
 */
#include <cstdio>
#include <fstream>

#include "sim-test-util.h"

using namespace simtest;

static double
cpu_seconds (int pid)
{
  std::ifstream f ("/proc/" + std::to_string (pid) + "/stat");
  std::string tok;
  unsigned long utime = 0, stime = 0;
  for (int i = 1; f >> tok; i++) {
    if (i == 14)
      utime = std::stoul (tok);
    if (i == 15) {
      stime = std::stoul (tok);
      break;
    }
  }
  return (utime + stime) / (double) sysconf (_SC_CLK_TCK);
}

int
main (int argc, char **argv)
{
  if (argc < 3) {
    fprintf (stderr, "usage: sim-load READY.json SIM-PID\n");
    return 2;
  }
  int pid = atoi (argv[2]);
  g_autofree char *text = nullptr;
  g_file_get_contents (argv[1], &text, nullptr, nullptr);
  JsonDoc ready (text ? text : "");
  JsonArray *streams = json_object_get_array_member (ready.obj, "streams");
  guint n = json_array_get_length (streams);
  const char *cid = g_getenv ("ZOOM_APP_CLIENT_ID");
  const char *sec = g_getenv ("ZOOM_APP_CLIENT_SECRET");
  std::string client_id = cid ? cid : "test_client_id";
  std::string secret = sec ? sec : "test_client_secret";
  std::vector<std::unique_ptr<Ws>> sigs, medias;
  std::vector<guint64> frames (n, 0);
  double cpu0 = cpu_seconds (pid);
  gint64 t0 = g_get_monotonic_time ();
  for (guint i = 0; i < n; i++) {
    JsonObject *s = json_array_get_object_element (streams, i);
    std::string key = obj_str (s, "id_key"), id = obj_str (s, key.c_str ()),
        sid = obj_str (s, "rtms_stream_id");
    std::string msg = client_id + "," + id + "," + sid;
    g_autofree char *sig = g_compute_hmac_for_string (G_CHECKSUM_SHA256,
        (const guchar *) secret.c_str (), secret.size (), msg.c_str (), -1);
    auto sg = std::make_unique<Ws> (obj_str (s, "server_urls"));
    std::string ident = "\"" + key + "\":\"" + id + "\",\"rtms_stream_id\":\"" +
        sid + "\",\"signature\":\"" + sig + "\"";
    sg->send ("{\"msg_type\":1,\"protocol_version\":1,\"sequence\":0," + ident + "}");
    JsonDoc r2 (sg->next_of (2));
    JsonObject *urls = json_object_get_object_member (
        r2.object ("media_server"), "server_urls");
    auto md = std::make_unique<Ws> (obj_str (urls, "audio"));
    guint64 *count = &frames[i];
    Ws *sgp = sg.get ();
    md->send ("{\"msg_type\":3,\"protocol_version\":1,\"sequence\":0," + ident +
        ",\"media_type\":1}");
    md->next_of (4);
    md->on_message = [count, mdp = md.get ()](const std::string &m) {
      if (m.compare (0, 14, "{\"msg_type\":14") == 0)
        (*count)++;
      mdp->queue ().clear ();
    };
    sgp->on_message = [sgp](const std::string &m) {
      JsonDoc d (m);
      if (d.integer ("msg_type") == 12)
        sgp->send ("{\"msg_type\":13,\"timestamp\":" +
            std::to_string (d.integer ("timestamp")) + "}");
      sgp->queue ().clear ();
    };
    sg->send ("{\"msg_type\":7,\"rtms_stream_id\":\"" + sid + "\"}");
    sigs.push_back (std::move (sg));
    medias.push_back (std::move (md));
  }
  spin_until ([&] {
        for (auto &m : medias)
          if (!m->closed ())
            return false;
        return true;
      }, 3600 * 1000);
  double secs = (g_get_monotonic_time () - t0) / 1e6;
  double cpu = cpu_seconds (pid) - cpu0;
  guint64 total = 0;
  for (auto f : frames)
    total += f;
  printf ("streams %u, frames received %" G_GUINT64_FORMAT " (%.0f/s), wall %.1f s, "
      "sim CPU %.2f s (%.1f%% of one core, %.3f ms CPU per stream-second)\n",
      n, total, total / secs, secs, cpu, 100 * cpu / secs,
      1000 * cpu / secs / n);
  return 0;
}
