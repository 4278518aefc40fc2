/* tests/status (suite 'status'): the Prometheus registry (host-metrics.h),
 * the host's metric families fed from engagement objects, and the status
 * page's disk side (host-status.h): the files endpoint's confinement and the
 * recent engagements list. The text is checked against the exposition
 * format's rules here and by promtool in test-status.py. */
#include "host-metrics.h"
#include "host-status.h"

#include <gtest/gtest.h>
#include <glib/gstdio.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>

#include <fstream>

using namespace zhost;

namespace {

std::string
line_of (const std::string &text, const std::string &prefix)
{
  size_t at = text.find ("\n" + prefix);
  if (at == std::string::npos)
    at = text.compare (0, prefix.size (), prefix) == 0 ? 0 : std::string::npos;
  else
    at++;
  if (at == std::string::npos)
    return "";
  return text.substr (at, text.find ('\n', at) - at);
}

JsonObject *
parse_obj (JsonParser *p, const char *json)
{
  EXPECT_TRUE (json_parser_load_from_data (p, json, -1, nullptr)) << json;
  return json_node_get_object (json_parser_get_root (p));
}

struct TempDir {
  std::string path;
  TempDir ()
  {
    g_autofree gchar *p = g_dir_make_tmp ("zoomrtms-status-XXXXXX", nullptr);
    path = p;
  }
  ~TempDir ()
  {
    std::string cmd = "rm -rf '" + path + "'";
    EXPECT_EQ (system (cmd.c_str ()), 0);
  }
  std::string file (const std::string &rel, const std::string &content) const
  {
    std::string p = path + "/" + rel;
    g_autofree gchar *dir = g_path_get_dirname (p.c_str ());
    g_mkdir_with_parents (dir, 0700);
    EXPECT_TRUE (g_file_set_contents (p.c_str (), content.data (),
        static_cast<gssize> (content.size ()), nullptr));
    return p;
  }
};

} // namespace

TEST (Registry, EscapesLabelValuesAndHelp)
{
  EXPECT_EQ (MetricsRegistry::escape_label_value ("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ (MetricsRegistry::escape_help ("x\\y\nz \"q\""), "x\\\\y\\nz \"q\"");
  /* invalid UTF-8 never reaches the text */
  std::string bad = MetricsRegistry::escape_label_value (std::string ("a\xff" "b"));
  EXPECT_TRUE (g_utf8_validate (bad.c_str (), -1, nullptr)) << bad;
}

TEST (Registry, FormatsNumbersAsGoFloats)
{
  EXPECT_EQ (MetricsRegistry::format_value (0), "0");
  EXPECT_EQ (MetricsRegistry::format_value (42), "42");
  EXPECT_EQ (MetricsRegistry::format_value (0.005), "0.005");
  EXPECT_EQ (MetricsRegistry::format_value (0.1), "0.1");
  EXPECT_EQ (MetricsRegistry::format_value (1.0 / 3), "0.33333333333333331");
  EXPECT_EQ (MetricsRegistry::format_value (INFINITY), "+Inf");
  EXPECT_EQ (MetricsRegistry::format_value (-INFINITY), "-Inf");
  EXPECT_EQ (MetricsRegistry::format_value (NAN), "NaN");
}

TEST (Registry, ExposesCountersGaugesAndHistograms)
{
  MetricsRegistry r;
  using T = MetricsRegistry::Type;
  r.describe ("t_requests_total", "Requests.\nSecond line \\ done", T::COUNTER,
      {"path", "code"});
  r.describe ("t_temp", "Temperature.", T::GAUGE);
  r.describe ("t_lat_seconds", "Latency.", T::HISTOGRAM, {}, {0.1, 1});
  r.add ("t_requests_total", {"/a\"b", "200"}, 2);
  r.add ("t_requests_total", {"/a\"b", "200"}, 1);
  r.add ("t_requests_total", {"/x", "404"}, 1);
  r.add ("t_requests_total", {"/x", "404"}, -5);   /* a counter never goes down */
  r.set ("t_temp", {}, -1.5);
  r.observe ("t_lat_seconds", {}, 0.05);
  r.observe ("t_lat_seconds", {}, 0.5, 2);
  r.observe ("t_lat_seconds", {}, 7);
  r.add ("nobody", {}, 1);                          /* undescribed: ignored */
  std::string t = r.expose ();
  EXPECT_EQ (t.substr (0, t.find ('\n')),
      "# HELP t_requests_total Requests.\\nSecond line \\\\ done");
  EXPECT_EQ (line_of (t, "# TYPE t_requests_total"), "# TYPE t_requests_total counter");
  EXPECT_EQ (line_of (t, "t_requests_total{path=\"/a"),
      "t_requests_total{path=\"/a\\\"b\",code=\"200\"} 3");
  EXPECT_EQ (line_of (t, "t_requests_total{path=\"/x"),
      "t_requests_total{path=\"/x\",code=\"404\"} 1");
  EXPECT_EQ (line_of (t, "t_temp "), "t_temp -1.5");
  EXPECT_EQ (line_of (t, "# TYPE t_lat_seconds"), "# TYPE t_lat_seconds histogram");
  /* cumulative buckets, +Inf = count, sum */
  EXPECT_EQ (line_of (t, "t_lat_seconds_bucket{le=\"0.1\"}"), "t_lat_seconds_bucket{le=\"0.1\"} 1");
  EXPECT_EQ (line_of (t, "t_lat_seconds_bucket{le=\"1\"}"), "t_lat_seconds_bucket{le=\"1\"} 3");
  EXPECT_EQ (line_of (t, "t_lat_seconds_bucket{le=\"+Inf\"}"),
      "t_lat_seconds_bucket{le=\"+Inf\"} 4");
  EXPECT_EQ (line_of (t, "t_lat_seconds_sum"), "t_lat_seconds_sum 8.05");
  EXPECT_EQ (line_of (t, "t_lat_seconds_count"), "t_lat_seconds_count 4");
  EXPECT_EQ (t.find ("nobody"), std::string::npos);
  EXPECT_EQ (t.back (), '\n');
}

TEST (HostMetricsTest, WebhookLabelsAreBounded)
{
  EXPECT_STREQ (HostMetrics::webhook_event_label ("meeting.rtms_started"),
      "meeting.rtms_started");
  EXPECT_STREQ (HostMetrics::webhook_event_label ("contact_center.voice_rtms_stopped"),
      "contact_center.voice_rtms_stopped");
  EXPECT_STREQ (HostMetrics::webhook_event_label ("meeting.rtms_started\"} 1e9"), "other");
  EXPECT_STREQ (HostMetrics::webhook_event_label ("anything.else"), "other");
  EXPECT_STREQ (HostMetrics::webhook_event_label (nullptr), "unverified");
  HostMetrics m;
  for (int i = 0; i < 1000; i++)
    m.webhook (("attacker.event_" + std::to_string (i)).c_str (), 200);
  m.webhook (nullptr, 401);
  m.webhook ("meeting.rtms_stopped", 200);
  std::string t = m.scrape (0);
  int series = 0;
  for (size_t at = 0; (at = t.find ("\nzoomrtms_webhooks_total{", at)) != std::string::npos; at++)
    series++;
  EXPECT_EQ (series, 3) << t;
  EXPECT_EQ (m.registry ().value ("zoomrtms_webhooks_total", {"other", "200"}), 1000);
  EXPECT_EQ (m.registry ().value ("zoomrtms_webhooks_total", {"unverified", "401"}), 1);
}

TEST (HostMetricsTest, EngagementStatsCountedOnceAsDeltas)
{
  HostMetrics m;
  g_autoptr (JsonParser) p1 = json_parser_new ();
  g_autoptr (JsonParser) p2 = json_parser_new ();
  g_autoptr (JsonParser) p3 = json_parser_new ();
  g_autoptr (JsonParser) p4 = json_parser_new ();
  /* the stats fields as Engagement::to_json writes them */
  m.engagement (parse_obj (p1, R"({"rtms_stream_id":"s1","dir_name":"d1","frames":100,
      "silence_inserted_samples":1600,"failovers":0,"interruptions":[],
      "stats":{"latency_histogram_ms":"3:10,40:5"}})"), 16000, false);
  m.engagement (parse_obj (p2, R"({"rtms_stream_id":"s1","dir_name":"d1","frames":250,
      "silence_inserted_samples":4800,"failovers":1,
      "interruptions":[{"cause":"media"},{"cause":"signaling"},{"cause":"bogus"}],
      "stats":{"latency_histogram_ms":"3:12,40:5,2000:1"}})"), 16000, true);
  /* another engagement, and the first one's key again after its end */
  m.engagement (parse_obj (p3, R"({"rtms_stream_id":"s2","dir_name":"d2","frames":7,
      "silence_inserted_samples":0,"interruptions":[{"cause":"host-restart"}],"stats":{}})"),
      0, false);
  m.engagement (parse_obj (p4, R"({"rtms_stream_id":"s2","dir_name":"d2","frames":9,
      "silence_inserted_samples":0,"interruptions":[{"cause":"host-restart"}],"stats":{}})"),
      0, true);
  auto &r = m.registry ();
  EXPECT_EQ (r.value ("zoomrtms_packets_received_total", {}), 259);
  EXPECT_DOUBLE_EQ (r.value ("zoomrtms_silence_inserted_seconds_total", {}), 0.3);
  EXPECT_EQ (r.value ("zoomrtms_reconnects_total", {"media"}), 1);
  EXPECT_EQ (r.value ("zoomrtms_reconnects_total", {"signaling"}), 1);
  EXPECT_EQ (r.value ("zoomrtms_reconnects_total", {"other"}), 1);
  EXPECT_EQ (r.value ("zoomrtms_reconnects_total", {"failover"}), 1);
  EXPECT_EQ (r.value ("zoomrtms_reconnects_total", {"host-restart"}), 1);
  EXPECT_EQ (r.value ("zoomrtms_frame_latency_seconds", {}), 18);
  std::string t = m.scrape (3);
  EXPECT_EQ (line_of (t, "zoomrtms_engagements_active"), "zoomrtms_engagements_active 3");
  /* 12 in [3,4) ms → le 0.005; 5 in [40,41) ms → le 0.05; ≥ 2 s only +Inf */
  EXPECT_EQ (line_of (t, "zoomrtms_frame_latency_seconds_bucket{le=\"0.005\"}"),
      "zoomrtms_frame_latency_seconds_bucket{le=\"0.005\"} 12");
  EXPECT_EQ (line_of (t, "zoomrtms_frame_latency_seconds_bucket{le=\"0.05\"}"),
      "zoomrtms_frame_latency_seconds_bucket{le=\"0.05\"} 17");
  EXPECT_EQ (line_of (t, "zoomrtms_frame_latency_seconds_bucket{le=\"2\"}"),
      "zoomrtms_frame_latency_seconds_bucket{le=\"2\"} 17");
  EXPECT_EQ (line_of (t, "zoomrtms_frame_latency_seconds_bucket{le=\"+Inf\"}"),
      "zoomrtms_frame_latency_seconds_bucket{le=\"+Inf\"} 18");
  for (const char *name : {"process_cpu_seconds_total", "process_resident_memory_bytes",
      "process_start_time_seconds", "process_open_fds"})
    EXPECT_NE (line_of (t, std::string (name) + " "), "") << name;
  double start = r.value ("process_start_time_seconds", {});
  EXPECT_NEAR (start, g_get_real_time () / 1e6, 3600);
  EXPECT_GT (r.value ("process_resident_memory_bytes", {}), 1e6);
}

TEST (Files, OpenConfinedRefusesTraversalAndSymlinks)
{
  TempDir root, outside;
  root.file ("eng1/audio.wav", "RIFF");
  root.file ("eng1/.hidden", "x");
  std::string secret = outside.file ("secret.txt", "secret");
  ASSERT_EQ (symlink (secret.c_str (), (root.path + "/eng1/link.txt").c_str ()), 0);
  ASSERT_EQ (symlink (outside.path.c_str (), (root.path + "/linkdir").c_str ()), 0);
  g_mkdir (( root.path + "/eng1/sub").c_str (), 0700);

  int fd = StatusService::open_confined (root.path, "eng1", "audio.wav");
  ASSERT_GE (fd, 0);
  char buf[8] = {};
  EXPECT_EQ (read (fd, buf, sizeof buf), 4);
  close (fd);
  for (auto [dir, file] : std::vector<std::pair<std::string, std::string>> {
        {"eng1", "link.txt"},          /* symlink to a file outside */
        {"linkdir", "secret.txt"},     /* symlinked directory */
        {"..", "secret.txt"}, {"eng1", ".."}, {".", "eng1"}, {"eng1", "."},
        {"eng1", ".hidden"}, {"eng1", "sub"}, {"eng1/../eng1", "audio.wav"},
        {"eng1", "../eng1/audio.wav"}, {"", "audio.wav"}, {"eng1", ""},
        {"eng1", std::string ("audio.wav\0x", 11)}, {"eng1", "missing"}}) {
    errno = 0;
    int f = StatusService::open_confined (root.path, dir, file);
    EXPECT_EQ (f, -1) << dir << "/" << file;
    if (f >= 0)
      close (f);
  }
}

TEST (Recent, NewestFirstBoundedWithFiles)
{
  TempDir root;
  for (int i = 0; i < 5; i++) {
    std::string d = "eng" + std::to_string (i);
    std::string p = root.file (d + "/engagement.json",
        "{\"engagement_id\":\"E" + std::to_string (i) + "\",\"id_key\":\"engagement_id\","
        "\"state\":\"stopped\",\"display_names\":{\"c1\":\"Jane\"},"
        "\"stats\":{\"channel_stats\":[{\"channel\":\"c1\",\"participant_mode\":\"caller\"}]}}");
    root.file (d + "/audio.wav", "RIFF....");
    /* modification times one second apart: eng4 newest */
    struct timespec ts[2] = {{1700000000 + i, 0}, {1700000000 + i, 0}};
    ASSERT_EQ (utimensat (AT_FDCWD, p.c_str (), ts, 0), 0);
  }
  root.file ("broken/engagement.json", "{not json");
  root.file (".state/engagement.json", "{}");
  root.file ("nojson/audio.wav", "x");
  g_autoptr (JsonNode) n = StatusService::recent_from_disk (root.path, 3);
  JsonArray *a = json_node_get_array (n);
  ASSERT_EQ (json_array_get_length (a), 3u);
  const char *expect[] = {"eng4", "eng3", "eng2"};
  for (guint i = 0; i < 3; i++) {
    JsonObject *o = json_array_get_object_element (a, i);
    EXPECT_STREQ (json_object_get_string_member (o, "dir_name"), expect[i]);
  }
  JsonObject *first = json_array_get_object_element (a, 0);
  EXPECT_STREQ (json_object_get_string_member (first, "id"), "E4");
  JsonArray *files = json_object_get_array_member (first, "files");
  ASSERT_EQ (json_array_get_length (files), 2u);
  EXPECT_STREQ (json_object_get_string_member (json_array_get_object_element (files, 0),
      "name"), "audio.wav");
  JsonObject *party = json_array_get_object_element (
      json_object_get_array_member (first, "parties"), 0);
  EXPECT_STREQ (json_object_get_string_member (party, "name"), "Jane");
  EXPECT_STREQ (json_object_get_string_member (party, "mode"), "caller");
}

TEST (Meter, PeakAndRmsPerChannel)
{
  LevelMeter m;
  m.set_format (2, 16000);
  m.take ();   /* a reader (the status page) is watching */
  /* left: full-scale square wave; right: silence */
  std::vector<gint16> s;
  for (int i = 0; i < 160; i++) {
    s.push_back (i % 2 ? 16384 : -16384);
    s.push_back (0);
  }
  m.measure (reinterpret_cast<const guint8 *> (s.data ()), s.size () * 2);
  LevelMeter::Reading r = m.take ();
  ASSERT_EQ (r.channels, 2);
  EXPECT_EQ (r.rate, 16000);
  EXPECT_NEAR (r.peak_db[0], -6.02, 0.01);
  EXPECT_NEAR (r.rms_db[0], -6.02, 0.01);
  EXPECT_EQ (r.peak_db[1], -100);
  /* the probe's cost per frame (a figure, not an assertion): 10 s of
   * 16 kHz stereo */
  std::vector<gint16> ten (16000 * 2 * 10);
  for (size_t i = 0; i < ten.size (); i++)
    ten[i] = static_cast<gint16> ((i * 7919) % 65536 - 32768);
  gint64 t0 = g_get_monotonic_time ();
  for (size_t off = 0; off < ten.size (); off += 640)   /* 20 ms buffers */
    m.measure (reinterpret_cast<const guint8 *> (ten.data () + off), 640 * 2);
  gint64 us = g_get_monotonic_time () - t0;
  printf ("level meter: %.2f ns per stereo frame (%" G_GINT64_FORMAT " us for 10 s of "
      "16 kHz stereo in 20 ms buffers)\n", us * 1000.0 / 160000, us);
  m.take ();
  /* take() starts a new window */
  r = m.take ();
  EXPECT_EQ (r.peak_db[0], -100);
  EXPECT_EQ (r.rms_db[0], -100);
}

/* Nobody reads the meter (no status page open): the probe measures nothing,
 * so it costs the streaming thread one clock read per buffer. */
TEST (Meter, UnwatchedMeasuresNothing)
{
  LevelMeter m;
  m.set_format (1, 16000);
  std::vector<gint16> s (320, 16384);
  m.measure (reinterpret_cast<const guint8 *> (s.data ()), s.size () * 2);
  LevelMeter::Reading r = m.take ();
  ASSERT_EQ (r.channels, 1);
  EXPECT_EQ (r.peak_db[0], -100);
  /* from the first take() on it measures */
  m.measure (reinterpret_cast<const guint8 *> (s.data ()), s.size () * 2);
  r = m.take ();
  EXPECT_NEAR (r.peak_db[0], -6.02, 0.01);
}

/* An event stream whose client stopped reading: what the host sends it is
 * kept in memory until written; past kMaxStreamBacklog it gets no more and
 * is closed (before: a "live" event every 500 ms for 10 min, up to ~1 GB for
 * 16 such clients with 100 engagements). */
TEST (EventStream, ClientThatStoppedReadingIsClosed)
{
  TempDir root;
  g_autoptr (SoupServer) server = soup_server_new (nullptr, nullptr);
  GError *err = nullptr;
  ASSERT_TRUE (soup_server_listen_local (server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &err))
      << (err ? err->message : "");
  GSList *uris = soup_server_get_uris (server);
  int port = g_uri_get_port (static_cast<GUri *> (uris->data));
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  StatusService::Hooks hooks;
  hooks.allowed = [] (SoupServerMessage *) { return static_cast<guint> (SOUP_STATUS_OK); };
  /* 100 engagements of 20 KB each: ~2 MB per "live" event */
  hooks.live = [] (gsize max, gsize *total) {
    std::vector<JsonNode *> v;
    std::string big (20000, 'x');
    for (gsize i = 0; i < MIN (max, static_cast<gsize> (100)); i++) {
      JsonObject *o = json_object_new ();
      json_object_set_string_member (o, "rtms_stream_id", ("s" + std::to_string (i)).c_str ());
      json_object_set_string_member (o, "dir_name", ("d" + std::to_string (i)).c_str ());
      json_object_set_string_member (o, "product", big.c_str ());
      JsonNode *n = json_node_new (JSON_NODE_OBJECT);
      json_node_take_object (n, o);
      v.push_back (n);
    }
    *total = v.size ();
    return v;
  };
  StatusService svc (server, root.path, hooks);

  g_autoptr (GSocket) s = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
      G_SOCKET_PROTOCOL_TCP, nullptr);
  ASSERT_TRUE (s);
  g_socket_set_option (s, SOL_SOCKET, SO_RCVBUF, 4096, nullptr);
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) sa = g_inet_socket_address_new (lo, static_cast<guint16> (port));
  ASSERT_TRUE (g_socket_connect (s, sa, nullptr, nullptr));
  const char req[] = "GET /status/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  ASSERT_EQ (g_socket_send (s, req, strlen (req), nullptr, nullptr),
      static_cast<gssize> (strlen (req)));
  /* the stream opens; the client then reads nothing */
  gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
  while (svc.open_event_streams () == 0 && g_get_monotonic_time () < deadline)
    g_main_context_iteration (nullptr, TRUE);
  ASSERT_EQ (svc.open_event_streams (), 1u);
  /* generous: every 500 ms ~2 MB more is queued; socket buffers take a few MB */
  deadline = g_get_monotonic_time () + 120 * G_USEC_PER_SEC;
  while (svc.open_event_streams () == 1 && g_get_monotonic_time () < deadline)
    g_main_context_iteration (nullptr, TRUE);
  EXPECT_EQ (svc.open_event_streams (), 0u)
      << "an event stream whose client reads nothing is still fed";
  g_socket_close (s, nullptr);
  svc.close_streams ();
  soup_server_disconnect (server);
}
