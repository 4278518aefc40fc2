/* zoomrtms-host — the status page, its data, and /metrics.
 *
 * Endpoints (registered by Daemon::start, answered on the main context):
 *   GET /, /status               the page (data/status/index.html), compiled
 *   GET /status/app.js, style.css   into the binary with glib-compile-resources
 *   GET /status/live             {"engagements":[live …],"more":N,"recent":[…]}
 *   GET /status/events           Server-Sent Events (text/event-stream): "live"
 *                                every 500 ms, "recent" at the start and when
 *                                an engagement ends
 *   GET /status/files/DIR/FILE   a file of an engagement directory under the
 *                                output root
 *   GET /metrics                 Prometheus text format 0.0.4 (host-metrics.h)
 * Access: everything with data follows the management API's rule
 * (Daemon::api_allowed: with [http] api-token a Bearer token, else loopback
 * peers only). The page itself (HTML/JS/CSS, no data) is public when a token
 * is set, so a browser elsewhere can load it and present the token through
 * fetch() (typed in, or in the URL fragment, which browsers never send);
 * without a token it is loopback-only like the rest.
 *
 * Bounds: at most kMaxEventStreams event streams at once (503 beyond), each
 * closed after kEventStreamLifetimeS (the page reconnects), or when more than
 * kMaxStreamBacklog bytes of it are not written yet (a client that stopped
 * reading: nothing more is queued for it) and, if its client still does not
 * read, by HttpFrontend::extend()'s deadline; the live list shows
 * the first kMaxLive engagements; "recent" the kMaxRecent newest
 * engagement.json files under the output root (each read up to 1 MiB),
 * scanned again when an engagement ended or the root changed (at most every
 * 5 s).
 * Files: DIR and FILE are single path components (no '/', "..", ".", a
 * leading '.' or NUL after percent-decoding), opened with openat(2) from the
 * output root with O_NOFOLLOW, regular files only: nothing outside the root,
 * no symlink, 404 otherwise. At most kMaxDownloads at once (503 beyond):
 * each may hold its connection for an hour.
 */
#pragma once

#include "host-http.h"
#include "host-metrics.h"

#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace zhost {

/** LevelMeter:
 * Peak and RMS per channel of the S16LE interleaved audio on a pad, measured
 * by a buffer probe on the streaming thread (one pass over the samples,
 * relaxed atomics) and read on the main context. Other formats (Opus) are
 * not measured: channels() is 0.
 */
class LevelMeter {
 public:
  static constexpr int kMaxChannels = 8;   /* constexpr: inline, std::min takes a reference */
  struct Reading {
    int channels = 0;
    int rate = 0;
    std::vector<double> peak_db, rms_db;  /* dBFS, -100 for silence or no data */
  };
  /** take: peak and RMS since the previous take(), per channel. Also
   * keeps measure() running for the next kWatchUs: a meter nobody reads
   * (no status page open) costs the streaming thread nothing. */
  Reading take ();
  static constexpr gint64 kWatchUs = 5 * G_USEC_PER_SEC;
  int rate () const { return rate_.load (std::memory_order_relaxed); }
  /** measure: adds S16LE interleaved @data of @bytes (streaming thread). */
  void measure (const guint8 *data, gsize bytes);
  void set_format (int channels, int rate);

 private:
  std::atomic<int> channels_ {0}, rate_ {0};
  std::atomic<guint32> peak_[kMaxChannels] {};
  std::atomic<guint64> sumsq_[kMaxChannels] {};
  std::atomic<guint64> frames_ {0};
  /* monotonic µs until which measure() works (set by take()) */
  std::atomic<gint64> watched_until_ {0};
};

/** level_meter_attach:
 * Adds a LevelMeter on @src's "src" pad (buffer and buffer-list probe, caps
 * from the CAPS event), registered under @key (meter_key(): rtms_stream_id/dir_name).
 * level_meter_detach() forgets it (the probe goes with the pad).
 */
void level_meter_attach (const std::string &key, GstElement *src);
std::string meter_key (const std::string &rtms_stream_id, const std::string &dir_name);
void level_meter_detach (const std::string &key);
std::shared_ptr<LevelMeter> level_meter_find (const std::string &key);

class StatusService {
 public:
  struct Hooks {
    /* Daemon::api_allowed */
    std::function<guint (SoupServerMessage *)> allowed;
    /* Engagement::to_json (true) of up to @max live engagements (transfer
     * full), in rtms_stream_id order; @total: how many are live */
    std::function<std::vector<JsonNode *> (gsize max, gsize *total)> live;
    bool token_set = false;
  };
  static const gsize kMaxEventStreams = 16;
  static const int kEventStreamLifetimeS = 600;
  static const gsize kMaxStreamBacklog = 1024 * 1024;   /* bytes */
  static const gsize kMaxDownloads = 16;
  static const gsize kMaxLive = 100;
  static const gsize kMaxRecent = 50;

  StatusService (SoupServer *server, const std::string &output_root, Hooks hooks);
  ~StatusService ();
  StatusService (const StatusService &) = delete;
  StatusService &operator= (const StatusService &) = delete;

  /* the front end whose request timeout an event stream or a download is
   * exempted from (HttpFrontend::extend) */
  void set_frontend (HttpFrontend *http) { http_ = http; }

  /** handle_root: answers GET / (the page); false for any other path. */
  bool handle_root (SoupServerMessage *msg, const char *path);

  /** engagement_finished: counts the final stats of @obj (to_json(false))
   * in host_metrics(), forgets its level meter and tells event streams to
   * reload "recent". */
  void engagement_finished (JsonObject *obj);

  /** open_event_streams: event streams open and not closing. */
  gsize open_event_streams () const;

  /** close_streams: ends every event stream (shutdown). */
  void close_streams ();

  /** recent_from_disk: the @max newest readable engagement.json under @root
   * (by modification time; directories and files, not symlinks; names
   * starting with '.' skipped), as summaries with their files (at most 64
   * each, regular files only). Reads at most 2 × @max + 16 of them, each up
   * to 1 MiB. Exposed for tests. */
  static JsonNode *recent_from_disk (const std::string &root, gsize max);

  /** open_confined: opens @dir/@file under @root (see above). Returns: an fd
   * or -1 (errno ENOENT for a name that is not allowed). */
  static int open_confined (const std::string &root, const std::string &dir,
      const std::string &file);

 private:
  struct Stream;
  static void status_cb (SoupServer *, SoupServerMessage *msg, const char *path,
      GHashTable *, gpointer data);
  static void metrics_cb (SoupServer *, SoupServerMessage *msg, const char *path,
      GHashTable *, gpointer data);
  static gboolean tick_cb (gpointer data);
  static void stream_finished_cb (SoupServerMessage *msg, gpointer data);

  bool refuse (SoupServerMessage *msg);
  void serve_asset (SoupServerMessage *msg, const char *name);
  void serve_file (SoupServerMessage *msg, const std::string &rest);
  void open_stream (SoupServerMessage *msg);
  void send (Stream *s, const std::string &event, const std::string &data,
      bool unpause = true);
  std::string live_json ();
  std::string recent_json ();
  void count_live ();

  SoupServer *server_;
  std::string root_;
  Hooks hooks_;
  HttpFrontend *http_ = nullptr;
  std::vector<std::unique_ptr<Stream>> streams_;
  guint tick_id_ = 0;
  /* file downloads being sent */
  std::shared_ptr<gsize> downloads_ = std::make_shared<gsize> (0);
  guint ticks_ = 0;
  bool recent_dirty_ = true;
  std::string recent_cache_;
  std::string recent_sent_;     /* the last "recent" event sent */
  gint64 recent_cached_us_ = 0;
  gint64 recent_root_mtime_ = 0;   /* ns, of the output root at the last scan */
};

} // namespace zhost
