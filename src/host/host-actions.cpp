/* zoomrtms-host — after the call (see host-actions.h). */
#include "host-actions.h"

#include "host-common.h"
#include "host-metrics.h"
#include "host-s3.h"

#include "rtms-json.h"
#include "rtms-messages.h"

#include <gio/gio.h>
#include <glib/gstdio.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

namespace zhost {

static const gsize kMaxOutput = 16 * 1024;
/* bytes read from the exec hook's pipe once it ended (what it wrote last, up
 * to a pipe's capacity, or a process it left behind that keeps writing) */
static const guint64 kPipeDrainAfterExit = 1024 * 1024;
static const gsize kMaxDoneJobs = 2000;

/* ---- configuration ---------------------------------------------------- */

static bool
cfg_string (GKeyFile *kf, const char *g, const char *k, std::string *out, GError **error)
{
  if (!g_key_file_has_key (kf, g, k, nullptr))
    return true;
  GError *err = nullptr;
  g_autofree gchar *v = g_key_file_get_string (kf, g, k, &err);
  if (!v) {
    g_set_error (error, ZHOST_ERROR, ERROR_CONFIG, "[%s] %s: %s", g, k, err->message);
    g_error_free (err);
    return false;
  }
  *out = g_strstrip (v);
  return true;
}

static bool
cfg_int (GKeyFile *kf, const char *g, const char *k, gint64 min, gint64 max,
    gint64 *out, GError **error)
{
  if (!g_key_file_has_key (kf, g, k, nullptr))
    return true;
  GError *err = nullptr;
  gint64 v = g_key_file_get_int64 (kf, g, k, &err);
  if (err || v < min || v > max) {
    g_set_error (error, ZHOST_ERROR, ERROR_CONFIG,
        "[%s] %s must be an integer %" G_GINT64_FORMAT "-%" G_GINT64_FORMAT, g, k,
        min, max);
    g_clear_error (&err);
    return false;
  }
  *out = v;
  return true;
}

static bool
cfg_bool (GKeyFile *kf, const char *g, const char *k, bool *out, GError **error)
{
  if (!g_key_file_has_key (kf, g, k, nullptr))
    return true;
  GError *err = nullptr;
  gboolean v = g_key_file_get_boolean (kf, g, k, &err);
  if (err) {
    g_set_error (error, ZHOST_ERROR, ERROR_CONFIG, "[%s] %s must be true or false", g, k);
    g_error_free (err);
    return false;
  }
  *out = v;
  return true;
}

bool
load_actions_config (GKeyFile *kf, ActionsConfig *c, GError **error)
{
  std::string exec;
  if (!cfg_string (kf, "actions", "exec", &exec, error))
    return false;
  if (!exec.empty ()) {
    gint argc = 0;
    gchar **argv = nullptr;
    GError *err = nullptr;
    if (!g_shell_parse_argv (exec.c_str (), &argc, &argv, &err)) {
      g_set_error (error, ZHOST_ERROR, ERROR_CONFIG, "[actions] exec: %s", err->message);
      g_error_free (err);
      return false;
    }
    c->exec_argv.assign (argv, argv + argc);
    g_strfreev (argv);
  }
  gint64 v = c->exec_timeout_s;
  if (!cfg_int (kf, "actions", "exec-timeout-s", 1, 86400, &v, error))
    return false;
  c->exec_timeout_s = static_cast<int> (v);
  v = c->retry_min_s;
  if (!cfg_int (kf, "actions", "retry-min-s", 1, 3600, &v, error))
    return false;
  c->retry_min_s = static_cast<int> (v);
  v = c->retry_max_s;
  if (!cfg_int (kf, "actions", "retry-max-s", 1, 86400, &v, error))
    return false;
  c->retry_max_s = static_cast<int> (MAX (v, c->retry_min_s));
  if (!cfg_string (kf, "upload", "endpoint", &c->endpoint, error) ||
      !cfg_string (kf, "upload", "bucket", &c->bucket, error) ||
      !cfg_string (kf, "upload", "region", &c->region, error) ||
      !cfg_string (kf, "upload", "prefix", &c->prefix, error) ||
      !cfg_string (kf, "upload", "ca-file", &c->ca_file, error) ||
      !cfg_bool (kf, "upload", "path-style", &c->path_style, error) ||
      !cfg_bool (kf, "upload", "delete-local-after-upload",
          &c->delete_local_after_upload, error))
    return false;
  while (!c->prefix.empty () && c->prefix.back () == '/')
    c->prefix.pop_back ();
  while (!c->prefix.empty () && c->prefix.front () == '/')
    c->prefix.erase (0, 1);
  if (!c->endpoint.empty () && !g_str_has_prefix (c->endpoint.c_str (), "http://") &&
      !g_str_has_prefix (c->endpoint.c_str (), "https://")) {
    g_set_error (error, ZHOST_ERROR, ERROR_CONFIG,
        "[upload] endpoint must start with http:// or https://");
    return false;
  }
  if (c->endpoint.empty () != c->bucket.empty ()) {
    g_set_error (error, ZHOST_ERROR, ERROR_CONFIG,
        "[upload] needs both endpoint and bucket");
    return false;
  }
  const gint64 MiB = 1024 * 1024;
  v = static_cast<gint64> (c->part_size);
  if (!cfg_int (kf, "upload", "part-size-bytes", 5 * MiB, 5 * 1024 * MiB, &v, error))
    return false;
  c->part_size = static_cast<guint64> (v);
  v = static_cast<gint64> (c->multipart_threshold);
  if (!cfg_int (kf, "upload", "multipart-threshold-bytes", 5 * MiB, 5 * 1024 * MiB,
          &v, error))
    return false;
  c->multipart_threshold = static_cast<guint64> (v);
  v = static_cast<gint64> (c->verify_download_max);
  if (!cfg_int (kf, "upload", "verify-download-max-bytes", 0, G_MAXINT64, &v, error))
    return false;
  c->verify_download_max = static_cast<guint64> (v);
  v = c->timeout_s;
  if (!cfg_int (kf, "upload", "timeout-s", 1, 3600, &v, error))
    return false;
  c->timeout_s = static_cast<int> (v);
  if (g_key_file_has_key (kf, "retention", "max-age-days", nullptr)) {
    GError *err = nullptr;
    double d = g_key_file_get_double (kf, "retention", "max-age-days", &err);
    if (err || d < 0) {
      g_set_error (error, ZHOST_ERROR, ERROR_CONFIG,
          "[retention] max-age-days must be a number ≥ 0");
      g_clear_error (&err);
      return false;
    }
    c->max_age_days = d;
  }
  v = static_cast<gint64> (c->max_bytes);
  if (!cfg_int (kf, "retention", "max-bytes", 0, G_MAXINT64, &v, error))
    return false;
  c->max_bytes = static_cast<guint64> (v);
  v = c->retention_interval_s;
  if (!cfg_int (kf, "retention", "interval-s", 1, 30 * 86400, &v, error))
    return false;
  c->retention_interval_s = static_cast<int> (v);
  return true;
}

/* ---- the queue's data ------------------------------------------------- */

struct AfterCall::Task {
  std::string type;            /* "exec", "upload", "delete-local", "delete-remote" */
  std::string file, key;
  guint64 bytes = 0;
  std::string sha256, md5, multipart_etag;
  std::string state = "pending";  /* pending running done failed cancelled */
  int attempts = 0;
  gint64 next_attempt = 0;     /* epoch ms */
  std::string error, upload_id, verified, output;
  int exit_status = -1;
  gint64 completed = 0;        /* epoch ms */
  bool final () const { return state == "done" || state == "failed" || state == "cancelled"; }
};

struct AfterCall::Deleted {
  std::string name;
  guint64 bytes = 0;
  std::string sha256, where;
  gint64 when = 0;             /* epoch ms */
};

struct AfterCall::Job {
  std::string kind = "finish";   /* "finish" | "erase" */
  std::string reason;            /* erase: stream-revoked, operator, retention */
  std::string dir, dir_name;
  std::string state = "pending"; /* pending, done, failed */
  gint64 created = 0, completed = 0;
  bool prepared = false;
  int cancelled = 0;
  std::vector<Task> tasks;
  std::vector<Deleted> deleted;
  /* erase: the host name of the node a revocation or purge reached, when it
   * came through a <directory name>.erase request */
  std::string requested_by;
  /* not persisted: queued or run without its lock (the lock could not be
   * taken for another reason than another holder) */
  bool lockless = false;
};

struct AfterCall::Shared {
  std::mutex m;
  std::condition_variable cv;
  std::map<std::string, Job> jobs;     /* by directory */
  bool quit = false;
  std::atomic<bool> cancel {false};    /* aborts the running request */
  std::string running_dir;
  bool alive = true;                   /* main context only */
  /* the locks this node holds: fd of <queue dir>/<directory name>.lock, by
   * directory name (host-actions.h, "Ownership") */
  std::map<std::string, int> lock_fds;
  bool cap_logged = false;             /* kMaxLocksHeld reached, logged */
  /* directory names of the jobs whose last persist failed (ENOSPC, EIO…):
   * never parked (their lock is the only trace of them), written again at
   * their next step */
  std::set<std::string> unsaved;
};

static gint64
now_ms ()
{
  return g_get_real_time () / 1000;
}

static std::string
iso_ms (gint64 ms)
{
  return ms > 0 ? iso8601_utc (ms * 1000) : std::string ();
}

static void
add_str (JsonBuilder *b, const char *k, const std::string &v)
{
  json_builder_set_member_name (b, k);
  json_builder_add_string_value (b, v.c_str ());
}

static void
add_int (JsonBuilder *b, const char *k, gint64 v)
{
  json_builder_set_member_name (b, k);
  json_builder_add_int_value (b, v);
}

static void
add_time (JsonBuilder *b, const char *k, gint64 ms)
{
  json_builder_set_member_name (b, k);
  if (ms > 0)
    json_builder_add_string_value (b, iso_ms (ms).c_str ());
  else
    json_builder_add_null_value (b);
}

/* persist = the queue file (epoch ms, every member); !persist = the
 * engagement.json view (ISO times, no internals) */
static void
task_to_json (const AfterCall::Task &t, JsonBuilder *b, bool persist)
{
  json_builder_begin_object (b);
  add_str (b, "type", t.type);
  if (!t.file.empty ())
    add_str (b, "file", t.file);
  if (!t.key.empty ())
    add_str (b, "key", t.key);
  if (t.type == "upload") {
    add_int (b, "bytes", static_cast<gint64> (t.bytes));
    add_str (b, "sha256", t.sha256);
  }
  add_str (b, "state", t.state);
  add_int (b, "attempts", t.attempts);
  if (persist) {
    add_int (b, "next_attempt", t.next_attempt);
    add_int (b, "completed", t.completed);
    add_str (b, "md5", t.md5);
    add_str (b, "multipart_etag", t.multipart_etag);
    add_str (b, "upload_id", t.upload_id);
  } else {
    add_time (b, "next_attempt", t.state == "pending" ? t.next_attempt : 0);
    add_time (b, "completed", t.completed);
  }
  if (!t.error.empty ())
    add_str (b, "error", t.error);
  if (!t.verified.empty ())
    add_str (b, "verified", t.verified);
  if (t.type == "exec") {
    add_int (b, "exit_status", t.exit_status);
    add_str (b, "output", t.output);
  } else if (!t.output.empty ()) {
    add_str (b, "output", t.output);
  }
  json_builder_end_object (b);
}

static void
deleted_to_json (const AfterCall::Deleted &d, JsonBuilder *b, bool persist)
{
  json_builder_begin_object (b);
  add_str (b, "name", d.name);
  add_int (b, "bytes", static_cast<gint64> (d.bytes));
  add_str (b, "sha256", d.sha256);
  add_str (b, "where", d.where);
  if (persist)
    add_int (b, "when", d.when);
  else
    add_str (b, "when", iso_ms (d.when));
  json_builder_end_object (b);
}

static JsonNode *
job_to_json (const AfterCall::Job &j, bool persist)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  if (persist) {
    add_int (b, "version", 1);
    add_str (b, "directory", j.dir);
    add_str (b, "dir_name", j.dir_name);
    add_int (b, "created", j.created);
    add_int (b, "completed", j.completed);
    json_builder_set_member_name (b, "prepared");
    json_builder_add_boolean_value (b, j.prepared);
  } else {
    add_time (b, "created", j.created);
    add_time (b, "completed", j.completed);
  }
  add_str (b, "kind", j.kind);
  if (!j.reason.empty ())
    add_str (b, "reason", j.reason);
  if (persist && !j.requested_by.empty ())
    add_str (b, "requested_by", j.requested_by);
  add_str (b, "state", j.state);
  add_int (b, "cancelled_tasks", j.cancelled);
  json_builder_set_member_name (b, "tasks");
  json_builder_begin_array (b);
  for (const auto &t : j.tasks)
    task_to_json (t, b, persist);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "deleted");
  json_builder_begin_array (b);
  for (const auto &d : j.deleted)
    deleted_to_json (d, b, persist);
  json_builder_end_array (b);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

static std::string
mstr (JsonObject *o, const char *k)
{
  return json_object_get_string_member_with_default (o, k, "");
}

static bool
job_from_json (JsonObject *o, AfterCall::Job *j)
{
  if (json_object_get_int_member_with_default (o, "version", 0) != 1)
    return false;
  j->dir = mstr (o, "directory");
  j->dir_name = mstr (o, "dir_name");
  if (j->dir.empty () || j->dir_name.empty ())
    return false;
  j->kind = mstr (o, "kind");
  if (j->kind != "finish" && j->kind != "erase")
    return false;
  j->reason = mstr (o, "reason");
  j->requested_by = mstr (o, "requested_by");
  j->state = mstr (o, "state");
  j->created = json_object_get_int_member_with_default (o, "created", 0);
  j->completed = json_object_get_int_member_with_default (o, "completed", 0);
  j->prepared = json_object_get_boolean_member_with_default (o, "prepared", FALSE);
  j->cancelled = static_cast<int> (json_object_get_int_member_with_default (o,
      "cancelled_tasks", 0));
  JsonArray *a = json_object_has_member (o, "tasks") ?
      json_object_get_array_member (o, "tasks") : nullptr;
  for (guint i = 0; a && i < json_array_get_length (a); i++) {
    JsonObject *t = json_array_get_object_element (a, i);
    if (!t)
      continue;
    AfterCall::Task x;
    x.type = mstr (t, "type");
    x.file = mstr (t, "file");
    x.key = mstr (t, "key");
    x.bytes = static_cast<guint64> (json_object_get_int_member_with_default (t, "bytes", 0));
    x.sha256 = mstr (t, "sha256");
    x.md5 = mstr (t, "md5");
    x.multipart_etag = mstr (t, "multipart_etag");
    x.state = mstr (t, "state");
    x.attempts = static_cast<int> (json_object_get_int_member_with_default (t, "attempts", 0));
    x.next_attempt = json_object_get_int_member_with_default (t, "next_attempt", 0);
    x.completed = json_object_get_int_member_with_default (t, "completed", 0);
    x.error = mstr (t, "error");
    x.upload_id = mstr (t, "upload_id");
    x.verified = mstr (t, "verified");
    x.output = mstr (t, "output");
    x.exit_status = static_cast<int> (json_object_get_int_member_with_default (t,
        "exit_status", -1));
    j->tasks.push_back (x);
  }
  a = json_object_has_member (o, "deleted") ?
      json_object_get_array_member (o, "deleted") : nullptr;
  for (guint i = 0; a && i < json_array_get_length (a); i++) {
    JsonObject *d = json_array_get_object_element (a, i);
    if (!d)
      continue;
    AfterCall::Deleted x;
    x.name = mstr (d, "name");
    x.bytes = static_cast<guint64> (json_object_get_int_member_with_default (d, "bytes", 0));
    x.sha256 = mstr (d, "sha256");
    x.where = mstr (d, "where");
    x.when = json_object_get_int_member_with_default (d, "when", 0);
    j->deleted.push_back (x);
  }
  return true;
}

static const char *
erased_state (const std::string &reason)
{
  if (reason == "stream-revoked")
    return "revoked";
  if (reason == "retention")
    return "expired";
  return "purged";
}

static bool
is_erased_state (const char *s)
{
  return g_str_equal (s, "revoked") || g_str_equal (s, "purged") ||
      g_str_equal (s, "expired");
}

/* ---- metrics ---------------------------------------------------------- */

static void
describe_metrics ()
{
  MetricsRegistry &r = host_metrics ().registry ();
  using T = MetricsRegistry::Type;
  r.describe ("zoomrtms_actions_pending",
      "After-call tasks (exec hook, upload, deletion) pending or running", T::GAUGE);
  r.describe ("zoomrtms_uploads_total",
      "Files uploaded to object storage, by result", T::COUNTER, {"result"});
  r.describe ("zoomrtms_upload_bytes_total",
      "Bytes of the files uploaded and verified", T::COUNTER);
  r.describe ("zoomrtms_exec_hooks_total", "Exec hook runs, by result", T::COUNTER,
      {"result"});
  r.describe ("zoomrtms_erasures_total",
      "Engagements erased (stream-revoked, operator, retention)", T::COUNTER,
      {"reason"});
  r.describe ("zoomrtms_erased_files_total",
      "Files and objects deleted by erasures", T::COUNTER, {"where"});
  for (const char *res : {"ok", "error", "verify_failed", "already_present"})
    r.add ("zoomrtms_uploads_total", {res}, 0);
  for (const char *res : {"ok", "failed", "timeout"})
    r.add ("zoomrtms_exec_hooks_total", {res}, 0);
  for (const char *res : {"stream-revoked", "operator", "retention"})
    r.add ("zoomrtms_erasures_total", {res}, 0);
  for (const char *res : {"local", "object_storage"})
    r.add ("zoomrtms_erased_files_total", {res}, 0);
  r.add ("zoomrtms_upload_bytes_total", {}, 0);
  r.set ("zoomrtms_actions_pending", {}, 0);
}

static void
count (const char *name, const char *label, double v = 1)
{
  if (label)
    host_metrics ().registry ().add (name, {label}, v);
  else
    host_metrics ().registry ().add (name, {}, v);
}

/* ---- files ------------------------------------------------------------ */

struct FileHash {
  guint64 bytes = 0;
  std::string sha256, md5, multipart_etag;
};

/* SHA-256 and MD5 of the whole file, and AWS's multipart ETag for
 * @part_size parts (MD5 of the concatenated part MD5s + "-N"). */
static bool
hash_file (const std::string &path, guint64 part_size, FileHash *h, std::string *error)
{
  FILE *f = g_fopen (path.c_str (), "rb");
  if (!f) {
    *error = std::string ("cannot open: ") + g_strerror (errno);
    return false;
  }
  GChecksum *sha = g_checksum_new (G_CHECKSUM_SHA256);
  GChecksum *md5 = g_checksum_new (G_CHECKSUM_MD5);
  GChecksum *part = g_checksum_new (G_CHECKSUM_MD5);
  GChecksum *parts = g_checksum_new (G_CHECKSUM_MD5);
  std::vector<guint8> buf (1024 * 1024);
  guint64 in_part = 0, nparts = 0;
  auto close_part = [&] () {
    guint8 d[16];
    gsize dl = sizeof (d);
    g_checksum_get_digest (part, d, &dl);
    g_checksum_update (parts, d, dl);
    g_checksum_reset (part);
    nparts++;
    in_part = 0;
  };
  size_t n;
  while ((n = fread (buf.data (), 1, buf.size (), f)) > 0) {
    g_checksum_update (sha, buf.data (), n);
    g_checksum_update (md5, buf.data (), n);
    size_t off = 0;
    while (off < n) {
      size_t take = static_cast<size_t> (MIN (static_cast<guint64> (n - off),
          part_size - in_part));
      g_checksum_update (part, buf.data () + off, take);
      in_part += take;
      off += take;
      if (in_part == part_size)
        close_part ();
    }
    h->bytes += n;
  }
  bool ok = !ferror (f);
  if (!ok)
    *error = "read error";
  fclose (f);
  if (in_part > 0 || nparts == 0)
    close_part ();
  h->sha256 = g_checksum_get_string (sha);
  h->md5 = g_checksum_get_string (md5);
  h->multipart_etag = std::string (g_checksum_get_string (parts)) + "-" +
      std::to_string (nparts);
  for (GChecksum *c : {sha, md5, part, parts})
    g_checksum_free (c);
  return ok;
}

/* Regular, non-hidden files of @dir other than engagement.json (and its
 * temporary files "engagement.json.XXXXXX" while it is rewritten), sorted. */
static std::vector<std::string>
dir_files (const std::string &dir)
{
  std::vector<std::string> v;
  g_autoptr (GDir) d = g_dir_open (dir.c_str (), 0, nullptr);
  while (const gchar *n = d ? g_dir_read_name (d) : nullptr) {
    if (n[0] == '.' || g_str_has_prefix (n, "engagement.json"))
      continue;
    g_autofree gchar *p = g_build_filename (dir.c_str (), n, nullptr);
    if (g_file_test (p, G_FILE_TEST_IS_REGULAR) && !g_file_test (p, G_FILE_TEST_IS_SYMLINK))
      v.push_back (n);
  }
  std::sort (v.begin (), v.end ());
  return v;
}

/* @io_error (optional): set when the file could not be opened or read (EIO,
 * EMFILE…: it may be whole, only unreadable now), as opposed to not being a
 * JSON object */
static JsonNode *
read_json_file (JsonParser *parser, const std::string &path, bool *io_error = nullptr)
{
  GError *err = nullptr;
  JsonNode *root = rtms::json_load_file (parser, path.c_str (), file_json_limits (), &err);
  if (io_error)
    *io_error = err && g_error_matches (err, RTMS_ERROR, rtms::ERROR_IO);
  g_clear_error (&err);
  return root && JSON_NODE_HOLDS_OBJECT (root) ? root : nullptr;
}

static bool
write_json_file (const std::string &path, JsonNode *root, bool durable)
{
  std::string txt = json_to_compact (root, true) + "\n";
  GError *err = nullptr;
  bool ok = g_file_set_contents_full (path.c_str (), txt.data (),
      static_cast<gssize> (txt.size ()), static_cast<GFileSetContentsFlags> (
          G_FILE_SET_CONTENTS_CONSISTENT | (durable ? G_FILE_SET_CONTENTS_DURABLE : 0)),
      0640, &err);
  if (!ok) {
    g_warning ("%s", err->message);
    g_error_free (err);
  }
  return ok;
}

/* ---- AfterCall -------------------------------------------------------- */

AfterCall::AfterCall (ActionsConfig cfg, std::string queue_dir, std::string output_root,
    IsLive is_live)
    : cfg_ (std::move (cfg)), queue_dir_ (std::move (queue_dir)),
      output_root_ (std::move (output_root)), is_live_ (std::move (is_live)),
      shared_ (std::make_shared<Shared> ())
{
}

AfterCall::~AfterCall ()
{
  if (retention_id_)
    g_source_remove (retention_id_);
  if (adopt_id_)
    g_source_remove (adopt_id_);
  {
    std::lock_guard<std::mutex> g (shared_->m);
    shared_->quit = true;
    shared_->alive = false;
    shared_->cancel = true;
  }
  shared_->cv.notify_all ();
  if (worker_.joinable ())
    worker_.join ();
  /* pending jobs stay queued: their locks go with us, another node (or the
   * next start) adopts them */
  std::lock_guard<std::mutex> g (shared_->m);
  for (const auto &kv : shared_->lock_fds)
    close (kv.second);
  shared_->lock_fds.clear ();
}

bool
AfterCall::start (GError **error)
{
  describe_metrics ();
  if (g_mkdir_with_parents (queue_dir_.c_str (), 0700) != 0) {
    int e = errno;
    g_set_error (error, ZHOST_ERROR, ERROR_IO, "cannot create the action queue %s: %s",
        queue_dir_.c_str (), g_strerror (e));
    return false;
  }
  /* whoever can write it can plant jobs and erasure requests */
  GStatBuf qs;
  if (g_lstat (queue_dir_.c_str (), &qs) != 0 || !S_ISDIR (qs.st_mode))
    g_warning ("action queue %s: not a directory of its own (a symlink?): whoever "
        "controls its target can plant jobs and erasure requests", queue_dir_.c_str ());
  else if (qs.st_uid != geteuid () || (qs.st_mode & (S_IWGRP | S_IWOTH)))
    g_warning ("action queue %s: owned by uid %u, mode %03o, this host runs as uid %u: "
        "only the host's user may write it (chmod 0700), anyone else who can write it "
        "can plant jobs and erasure requests", queue_dir_.c_str (),
        static_cast<unsigned> (qs.st_uid), static_cast<unsigned> (qs.st_mode & 0777),
        static_cast<unsigned> (geteuid ()));
  int loaded = adopt ();
  g_message ("after-call actions: %s%s%s; queue in %s (%d job(s) loaded)",
      cfg_.exec_argv.empty () ? "no exec hook" : "exec hook",
      cfg_.upload_enabled () ? ", upload to object storage" : ", no upload",
      cfg_.retention_enabled () ? ", retention on" : "", queue_dir_.c_str (), loaded);
  if (cfg_.upload_enabled () && (cfg_.access_key.empty () || cfg_.secret_key.empty ()))
    g_warning ("[upload] is configured but AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY "
        "are not set: a store that checks signatures will refuse every upload");
  worker_ = std::thread ([this] () { worker_main (); });
  if (cfg_.retention_enabled ()) {
    sweep_retention ();
    retention_id_ = g_timeout_add_seconds (static_cast<guint> (cfg_.retention_interval_s),
        retention_cb, this);
  }
  adopt_id_ = g_timeout_add_seconds (kAdoptIntervalS, adopt_cb, this);
  return true;
}

gboolean
AfterCall::adopt_cb (gpointer data)
{
  static_cast<AfterCall *> (data)->adopt ();
  return G_SOURCE_CONTINUE;
}

/* ---- ownership (host-actions.h) --------------------------------------- */

/* LOCK_EX|LOCK_NB on @path, a file never renamed: the fd, or -1 (*busy: held
 * by another open file description — another node, or another AfterCall;
 * !*busy: an error, logged as a warning). A lock won on a file its previous
 * holder unlinked meanwhile (its inode is no longer the path's) is worth
 * nothing: dropped, the path opened again. */
static int
lock_path (const std::string &path, bool *busy, bool *created = nullptr)
{
  *busy = false;
  for (int attempt = 0; attempt < 5; attempt++) {
    /* whether the lock file had to be created (@created): a job's finisher
     * removes it, a park keeps it */
    bool made = false;
    int fd = open (path.c_str (), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT) {
      fd = open (path.c_str (), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
      made = fd >= 0;
      if (fd < 0 && errno == EEXIST)
        continue;     /* created meanwhile: opened again */
    }
    if (created)
      *created = made;
    if (fd < 0) {
      g_warning ("action queue: cannot open the lock %s: %s", log_safe (path).c_str (),
          g_strerror (errno));
      return -1;
    }
    if (flock (fd, LOCK_EX | LOCK_NB) != 0) {
      int e = errno;
      close (fd);
      if (e == EWOULDBLOCK || e == EINTR) {
        *busy = true;
        return -1;
      }
      g_warning ("action queue: cannot lock %s: %s", log_safe (path).c_str (),
          g_strerror (e));
      return -1;
    }
    struct stat held, named;
    if (fstat (fd, &held) == 0 && stat (path.c_str (), &named) == 0 &&
        held.st_dev == named.st_dev && held.st_ino == named.st_ino)
      return fd;
    close (fd);
  }
  /* unlinked under us every time: some other node keeps taking it */
  *busy = true;
  return -1;
}

/* Whether some open file (another node, or this one) holds the lock at
 * @path; never creates it. NFS: flock() is emulated with POSIX (fcntl)
 * locks there, and closing ANY descriptor of a file drops every POSIX lock
 * the process holds on it — the probe's close() would release this node's
 * own lock of that job: callers skip names this process holds (lock_fds). */
static bool
lock_is_held (const std::string &path)
{
  int fd = open (path.c_str (), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return false;
  bool held = flock (fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  close (fd);
  return held;
}

/* A lock just taken whose job is not kept: the lock file goes (still held:
 * whoever opened it meanwhile finds another inode once it gets the lock). */
static void
drop_lock_fd (const std::string &path, int fd)
{
  g_remove (path.c_str ());
  close (fd);
}

/* A directory name of the queue (a job, a request): one path component
 * without '.' (sanitize_engagement_id() gives [A-Za-z0-9_-] only, the
 * engagement directory adds "-2", "-3"…; sweep.retention.lock and the
 * .broken files stay apart). */
static bool
valid_dir_name (const std::string &name)
{
  return !name.empty () && name.find ('.') == std::string::npos &&
      name.find ('/') == std::string::npos && name.size () <= 255;
}

std::string
AfterCall::dir_for (const std::string &dir_name) const
{
  g_autofree gchar *p = g_build_filename (output_root_.c_str (), dir_name.c_str (), nullptr);
  return p;
}

bool
AfterCall::take_lock_locked (const std::string &dir_name, bool *busy, bool *created)
{
  *busy = false;
  if (created)
    *created = false;
  if (shared_->lock_fds.count (dir_name))
    return true;
  int fd = lock_path (queue_dir_ + "/" + dir_name + ".lock", busy, created);
  if (fd < 0)
    return false;
  shared_->lock_fds[dir_name] = fd;
  return true;
}

void
AfterCall::release_lock_locked (const std::string &dir_name)
{
  auto it = shared_->lock_fds.find (dir_name);
  if (it == shared_->lock_fds.end ())
    return;
  drop_lock_fd (queue_dir_ + "/" + dir_name + ".lock", it->second);
  shared_->lock_fds.erase (it);
  if (shared_->lock_fds.size () < kMaxLocksHeld / 2)
    shared_->cap_logged = false;
}

/* Past kMaxLocksHeld, the lock of @dir_name's job (pending, its queue file
 * written) is closed, the lock file kept: the worker takes it again before a
 * step of the job (host-actions.h, "Ownership"). */
void
AfterCall::park_over_cap_locked (const std::string &dir_name)
{
  if (shared_->lock_fds.size () <= kMaxLocksHeld || shared_->unsaved.count (dir_name))
    return;     /* a job not on disk keeps its lock */
  auto it = shared_->lock_fds.find (dir_name);
  if (it == shared_->lock_fds.end ())
    return;
  close (it->second);
  shared_->lock_fds.erase (it);
  if (!shared_->cap_logged) {
    shared_->cap_logged = true;
    g_message ("action queue: %" G_GSIZE_FORMAT " job locks held (the most one node "
        "keeps open): further jobs wait without theirs, taken again when they run",
        kMaxLocksHeld);
  }
}

gsize
AfterCall::locks_held () const
{
  std::lock_guard<std::mutex> g (shared_->m);
  return shared_->lock_fds.size ();
}

/* <queue dir>/<@dir_name>.json into @j, without shared state (no mutex
 * needed). Its directory is <output root>/<@dir_name> whatever the file says.
 * Returns: 1 a job, 0 no file (ENOENT), -1 not a job (moved aside as
 * .broken), -2 unreadable now (an I/O error: EIO, EMFILE…; left as it is). */
int
AfterCall::read_job_file (const std::string &dir_name, Job *j) const
{
  std::string p = queue_dir_ + "/" + dir_name + ".json";
  GStatBuf sb;
  if (g_lstat (p.c_str (), &sb) != 0) {
    if (errno == ENOENT)
      return 0;
    g_warning ("action queue: cannot read %s.json: %s", log_safe (dir_name).c_str (),
        g_strerror (errno));
    return -2;
  }
  g_autoptr (JsonParser) parser = json_parser_new ();
  /* a regular file only (a FIFO would block the scan) */
  bool io_error = false;
  JsonNode *root = S_ISREG (sb.st_mode) ? read_json_file (parser, p, &io_error) : nullptr;
  if (io_error) {
    g_warning ("action queue: cannot read %s.json now: left as it is",
        log_safe (dir_name).c_str ());
    return -2;
  }
  if (!valid_dir_name (dir_name) || !root || !job_from_json (json_node_get_object (root), j) ||
      j->dir_name != dir_name) {
    g_warning ("action queue: %s.json is not a job, moved aside as .broken",
        log_safe (dir_name).c_str ());
    g_rename (p.c_str (), (p + ".broken").c_str ());
    return -1;
  }
  std::string dir = dir_for (dir_name);
  if (j->dir != dir)
    g_message ("action queue: %s.json names the directory %s: %s used (the output "
        "root as this node sees it)", log_safe (dir_name).c_str (),
        log_safe (j->dir).c_str (), log_safe (dir).c_str ());
  j->dir = dir;
  return 1;
}

/* With the lock of @j's directory held (or lockless): @j into the jobs. A
 * finished one (its node ended before writing its final view into
 * engagement.json, or a hand-made file) is posted: the main context writes
 * its view, then removes its queue file and releases its lock. */
void
AfterCall::insert_job_locked (Job &&j, const char *how)
{
  for (auto &t : j.tasks)
    if (t.state == "running") {
      /* its node died while it ran: again (an upload restarts, its
       * multipart upload is aborted first) */
      t.state = "pending";
      t.next_attempt = 0;
    }
  g_message ("action queue: %s %s of %s (%zu task(s)) %s",
      j.kind.c_str (), j.state.c_str (), log_safe (j.dir_name).c_str (), j.tasks.size (), how);
  std::string dir = j.dir;
  bool done = j.state != "pending";
  shared_->jobs[dir] = std::move (j);
  if (done)
    post (dir);
}

/* With the lock of @dir_name held: its queue file, if any, into the jobs
 * (@how: the log's words). Returns: whether a job was loaded. */
bool
AfterCall::load_job_locked (const std::string &dir_name, const char *how)
{
  Job j;
  if (read_job_file (dir_name, &j) <= 0)
    return false;
  insert_job_locked (std::move (j), how);
  return true;
}

static std::string
strip_suffix (const char *name, const char *suffix)
{
  return std::string (name, strlen (name) - strlen (suffix));
}

int
AfterCall::adopt ()
{
  const char *how = shared_->alive && worker_.joinable () ?
      "adopted from a node that stopped" : "taken up again";
  std::vector<std::string> jobs, requests;
  std::set<std::string> locks;
  {
    g_autoptr (GDir) d = g_dir_open (queue_dir_.c_str (), 0, nullptr);
    while (const gchar *n = d ? g_dir_read_name (d) : nullptr) {
      /* sanitized directory names have no '.': not sweep.retention.lock */
      std::string name;
      if (g_str_has_suffix (n, ".json"))
        jobs.push_back (name = strip_suffix (n, ".json"));
      else if (g_str_has_suffix (n, ".erase"))
        requests.push_back (name = strip_suffix (n, ".erase"));
      else if (g_str_has_suffix (n, ".lock") && !strchr (strip_suffix (n, ".lock").c_str (), '.'))
        locks.insert (name = strip_suffix (n, ".lock"));
    }
  }
  for (const auto &name : jobs)
    locks.erase (name);
  /* the scan's files are opened, locked and parsed without the mutex (the
   * worker and the main context never wait for it); only the maps are
   * touched under it */
  std::set<std::string> ours;
  {
    std::lock_guard<std::mutex> g (shared_->m);
    for (const auto &kv : shared_->lock_fds)
      ours.insert (kv.first);
    for (const auto &kv : shared_->jobs)
      if (kv.second.state == "pending")
        ours.insert (kv.second.dir_name);    /* waits for a lock slot here */
  }
  int loaded = 0;
  /* past kMaxLocksHeld a job is still locked, read and loaded (pending
   * tasks are counted, an erasure keeps its priority), then parked */
  auto take_up = [&] (const std::string &name) {
    if (ours.count (name) || !valid_dir_name (name))
      return;
    std::string lock = queue_dir_ + "/" + name + ".lock";
    bool busy;
    int fd = lock_path (lock, &busy);
    if (fd < 0)
      return;       /* another live node's */
    Job j;
    int r = read_job_file (name, &j);
    if (r == -2) {
      close (fd);   /* unreadable now: the next scan tries again */
      return;
    }
    if (r <= 0) {
      /* finished meanwhile, or broken, or a lock file without a job (its
       * node died between removing the queue file and the lock file) */
      drop_lock_fd (lock, fd);
      return;
    }
    std::lock_guard<std::mutex> g (shared_->m);
    shared_->lock_fds[name] = fd;
    bool pending = j.state == "pending";
    insert_job_locked (std::move (j), how);
    if (pending)
      park_over_cap_locked (name);
    loaded++;
  };
  for (const auto &name : jobs)
    take_up (name);
  /* a lock file without a job: removed once nobody holds it, unless just
   * created (a node between taking the lock of a new job and writing its
   * queue file) */
  for (const auto &name : locks) {
    GStatBuf sb;
    if (g_lstat ((queue_dir_ + "/" + name + ".lock").c_str (), &sb) == 0 &&
        sb.st_mtime > time (nullptr) - kAdoptIntervalS && sb.st_mtime <= time (nullptr))
      continue;
    take_up (name);
  }
  if (loaded) {
    std::lock_guard<std::mutex> g (shared_->m);
    update_pending_gauge_locked ();
    shared_->cv.notify_all ();
  }
  for (const auto &name : requests) {
    std::string p = queue_dir_ + "/" + name + ".erase";
    g_autoptr (JsonParser) parser = json_parser_new ();
    GStatBuf sb;
    JsonNode *root = g_lstat (p.c_str (), &sb) == 0 && S_ISREG (sb.st_mode) ?
        read_json_file (parser, p) : nullptr;
    JsonObject *o = root ? json_node_get_object (root) : nullptr;
    std::string reason = o ? mstr (o, "reason") : "";
    /* the directory is the output root's <name>: the request's "directory"
     * is not trusted (nor valid on a node mounting the root elsewhere) */
    if (!o || !valid_dir_name (name) || (reason != "stream-revoked" && reason != "operator")) {
      g_warning ("action queue: %s.erase is not an erasure request, moved aside as "
          ".broken", log_safe (name).c_str ());
      g_rename (p.c_str (), (p + ".broken").c_str ());
      continue;
    }
    gint64 requested = json_object_get_int_member_with_default (o, "requested", 0);
    std::string by = mstr (o, "requested_by");
    erase_job (dir_for (name), reason, true, requested > 0 ? requested : 0,
        by.empty () ? std::string ("another node") : log_safe (by, 64));
  }
  return loaded;
}

gboolean
AfterCall::retention_cb (gpointer data)
{
  static_cast<AfterCall *> (data)->sweep_retention ();
  return G_SOURCE_CONTINUE;
}

void
AfterCall::update_pending_gauge_locked () const
{
  gsize n = 0;
  for (const auto &kv : shared_->jobs)
    for (const auto &t : kv.second.tasks)
      if (t.state == "pending" || t.state == "running")
        n++;
  host_metrics ().registry ().set ("zoomrtms_actions_pending", {}, static_cast<double> (n));
}

gsize
AfterCall::pending_tasks () const
{
  std::lock_guard<std::mutex> g (shared_->m);
  gsize n = 0;
  for (const auto &kv : shared_->jobs)
    for (const auto &t : kv.second.tasks)
      if (t.state == "pending" || t.state == "running")
        n++;
  return n;
}

bool
AfterCall::persist_locked (const Job &job)
{
  /* a finished job's file stays until its final view is in engagement.json
   * (finish_if_done(), on the main context): a node dying in between leaves
   * it to the next scan, which writes that view */
  std::string path = queue_dir_ + "/" + job.dir_name + ".json";
  g_autoptr (JsonNode) root = job_to_json (job, true);
  if (!write_json_file (path, root, true)) {
    /* (logged) kept in memory, under its lock: written again at its next
     * step */
    shared_->unsaved.insert (job.dir_name);
    return false;
  }
  shared_->unsaved.erase (job.dir_name);
  return true;
}

void
AfterCall::finish_if_done (const std::string &dir)
{
  std::lock_guard<std::mutex> g (shared_->m);
  auto it = shared_->jobs.find (dir);
  if (it == shared_->jobs.end () || it->second.state == "pending")
    return;
  const std::string &name = it->second.dir_name;
  if (!shared_->lock_fds.count (name) && !it->second.lockless)
    return;       /* done before (or another node's now) */
  /* the queue forgets it, then the lock goes (another node finds no queue
   * file behind it) */
  g_remove ((queue_dir_ + "/" + name + ".json").c_str ());
  shared_->unsaved.erase (name);
  release_lock_locked (name);
  it->second.lockless = false;
}

void
AfterCall::engagement_ended (const std::string &dir, int stop_reason)
{
  if (stop_reason == 8) {
    g_autofree gchar *base = g_path_get_basename (dir.c_str ());
    g_message ("engagement %s: stream revoked (stop reason 8 STREAM_REVOKED, "
        "docs/protocol.md §2.7): erasing its recording", base);
    erase (dir, "stream-revoked");
    return;
  }
  if (purge_after_end_.erase (dir)) {
    erase (dir, "operator");
    return;
  }
  if (!cfg_.any ())
    return;
  std::lock_guard<std::mutex> g (shared_->m);
  if (shared_->jobs.count (dir))
    return;
  g_autofree gchar *base = g_path_get_basename (dir.c_str ());
  bool busy, lockless = false;
  if (!take_lock_locked (base, &busy)) {
    if (busy) {
      g_message ("engagement %s: its after-call job is held by another node of the "
          "fleet: not queued here", base);
      return;
    }
    /* not another holder: an error (logged); never dropped for it */
    g_warning ("engagement %s: after-call actions queued without the queue lock "
        "(another node of a fleet may run them too)", base);
    lockless = true;
    /* a queue file a stopped node left is not overwritten: that job goes
     * on (the worker tries for its lock before each step) */
    Job left;
    if (read_job_file (base, &left) > 0) {
      left.lockless = true;
      insert_job_locked (std::move (left), "adopted from a node that stopped");
      update_pending_gauge_locked ();
      shared_->cv.notify_all ();
      return;
    }
  } else if (load_job_locked (base, "adopted from a node that stopped")) {
    /* a job a stopped node left for it: that one goes on */
    park_over_cap_locked (base);
    update_pending_gauge_locked ();
    shared_->cv.notify_all ();
    return;
  }
  Job j;
  j.dir = dir;
  j.dir_name = base;
  j.created = now_ms ();
  j.lockless = lockless;
  persist_locked (j);
  shared_->jobs[dir] = j;
  park_over_cap_locked (base);
  g_message ("engagement %s: after-call actions queued", base);
  shared_->cv.notify_all ();
}

bool
AfterCall::erase_job (const std::string &dir, const std::string &reason, bool requested,
    gint64 requested_ms, const std::string &requested_by)
{
  g_autofree gchar *base = g_path_get_basename (dir.c_str ());
  std::string request = queue_dir_ + "/" + base + ".erase";
  {
    std::lock_guard<std::mutex> g (shared_->m);
    /* an erasure is idempotent; a revocation after a purge keeps the first
     * (a revocation after retention still erases the bucket) */
    auto same = [&] (const Job &x) {
      return x.kind == "erase" && (x.reason != "retention" || reason == "retention");
    };
    auto it = shared_->jobs.find (dir);
    if (it != shared_->jobs.end () && same (it->second)) {
      if (requested)
        g_remove (request.c_str ());
      return true;
    }
    if (!shared_->lock_fds.count (base)) {
      bool busy, loaded = false;
      if (take_lock_locked (base, &busy)) {
        /* a job a stopped node left for it: cancelled below, its uploads
         * aborted (a finished one, whose node died before writing its
         * final view, is the base too: its "deleted" are kept) */
        if ((loaded = load_job_locked (base, "adopted from a node that stopped")))
          it = shared_->jobs.find (dir);
      } else if (busy) {
        /* another node's: a copy of it here (waiting for a lock slot) is
         * stale */
        if (it != shared_->jobs.end () && it->second.state == "pending" &&
            shared_->running_dir != dir) {
          shared_->jobs.erase (it);
          update_pending_gauge_locked ();
        }
        if (reason != "retention" && !requested) {
          /* its holder carries it out at its next scan (or any node, once
           * the lock is free) */
          g_autoptr (JsonBuilder) b = json_builder_new ();
          json_builder_begin_object (b);
          add_int (b, "version", 1);
          add_str (b, "directory", dir);
          add_str (b, "reason", reason);
          add_int (b, "requested", now_ms ());
          add_str (b, "requested_by", g_get_host_name ());
          json_builder_end_object (b);
          g_autoptr (JsonNode) root = json_builder_get_root (b);
          write_json_file (request, root, true);
          g_message ("engagement %s: its after-call job is held by another node of the "
              "fleet: erasure (%s) requested from it (within %d s)", base, reason.c_str (),
              kAdoptIntervalS);
        } else if (reason == "retention") {
          g_message ("retention: %s skipped: its after-call job is held by another node",
              base);
        }
        /* requested: the request file stays for a later scan */
        return false;
      } else {
        /* not another holder: an error (logged); an erasure is never
         * dropped for it */
        g_warning ("engagement %s: erasure (%s) queued without the queue lock", base,
            reason.c_str ());
      }
      /* a finished job kept here from before (its lock released) is not
       * the base: another node may have erased (or run) it since;
       * engagement.json is the truth */
      if (!loaded && it != shared_->jobs.end () && it->second.state != "pending" &&
          !it->second.lockless)
        it = shared_->jobs.end ();
      if (it != shared_->jobs.end () && same (it->second)) {
        if (requested)
          g_remove (request.c_str ());
        park_over_cap_locked (base);
        update_pending_gauge_locked ();
        shared_->cv.notify_all ();
        return true;
      }
      if (reason == "retention" && it != shared_->jobs.end () &&
          it->second.kind == "finish" && it->second.state == "pending") {
        /* its actions were pending on a node that stopped: they run here,
         * retention waits for them */
        park_over_cap_locked (base);
        update_pending_gauge_locked ();
        shared_->cv.notify_all ();
        g_message ("retention: %s skipped: its after-call actions are pending", base);
        return false;
      }
    }
    Job j;
    if (it != shared_->jobs.end ()) {
      j = it->second;
      for (auto &t : j.tasks)
        if (!t.final ()) {
          t.state = "cancelled";
          t.completed = now_ms ();
          j.cancelled++;
        }
      if (shared_->running_dir == dir)
        shared_->cancel = true;
    } else {
      j.dir = dir;
      j.dir_name = base;
      /* erased before (a previous host process, or another node): the
       * receipt grows */
      g_autoptr (JsonParser) parser = json_parser_new ();
      JsonNode *root = read_json_file (parser, dir + "/engagement.json");
      JsonObject *o = root ? json_node_get_object (root) : nullptr;
      JsonArray *a = o && json_object_has_member (o, "deleted") &&
          JSON_NODE_HOLDS_ARRAY (json_object_get_member (o, "deleted")) ?
          json_object_get_array_member (o, "deleted") : nullptr;
      for (guint i = 0; a && i < json_array_get_length (a); i++) {
        JsonObject *d = json_array_get_object_element (a, i);
        if (!d)
          continue;
        Deleted x;
        x.name = mstr (d, "name");
        x.bytes = static_cast<guint64> (json_object_get_int_member_with_default (d,
            "bytes", 0));
        x.sha256 = mstr (d, "sha256");
        x.where = mstr (d, "where");
        g_autoptr (GDateTime) t = g_date_time_new_from_iso8601 (mstr (d, "when").c_str (),
            nullptr);
        x.when = t ? g_date_time_to_unix (t) * 1000 + g_date_time_get_microsecond (t) / 1000 : 0;
        j.deleted.push_back (x);
      }
    }
    j.kind = "erase";
    j.reason = reason;
    j.state = "pending";
    j.prepared = false;
    /* when it was asked for (a request waited for a scan) */
    j.created = requested_ms > 0 ? MIN (requested_ms, now_ms ()) : now_ms ();
    j.completed = 0;
    j.requested_by = requested ? requested_by : std::string ();
    j.lockless = !shared_->lock_fds.count (base);
    persist_locked (j);
    shared_->jobs[dir] = j;
    park_over_cap_locked (base);
    update_pending_gauge_locked ();
    if (requested)
      g_remove (request.c_str ());
  }
  count ("zoomrtms_erasures_total", reason.c_str ());
  g_message ("engagement %s: erasure queued (%s%s)", base, reason.c_str (),
      requested ? ", requested by another node" : "");
  shared_->cv.notify_all ();
  post (dir);
  return true;
}

/* ---- worker ----------------------------------------------------------- */

static gint64
backoff_ms (const ActionsConfig &c, int attempts)
{
  gint64 s = c.retry_min_s;
  for (int i = 1; i < attempts && s < c.retry_max_s; i++)
    s *= 2;
  return MIN (s, static_cast<gint64> (c.retry_max_s)) * 1000;
}

static bool
runnable (const AfterCall::Job &j, const AfterCall::Task &t)
{
  if (t.state != "pending")
    return false;
  if (t.type == "delete-local")
    for (const auto &u : j.tasks)
      if (u.type == "upload" && u.state != "done")
        return false;
  return true;
}

void
AfterCall::worker_main ()
{
  auto &sh = *shared_;
  std::unique_lock<std::mutex> lk (sh.m);
  while (!sh.quit) {
    gint64 now = now_ms ();
    gint64 wake = G_MAXINT64;
    Job *pick = nullptr;
    gsize idx = G_MAXSIZE;
    /* erasures first, then the oldest job */
    std::vector<Job *> order;
    for (auto &kv : sh.jobs)
      if (kv.second.state == "pending")
        order.push_back (&kv.second);
    std::stable_sort (order.begin (), order.end (), [] (Job *a, Job *b) {
      if ((a->kind == "erase") != (b->kind == "erase"))
        return a->kind == "erase";
      return a->created < b->created;
    });
    for (Job *j : order) {
      if (!j->prepared) {
        pick = j;
        break;
      }
      for (gsize i = 0; i < j->tasks.size (); i++) {
        const Task &t = j->tasks[i];
        if (!runnable (*j, t))
          continue;
        if (t.next_attempt <= now) {
          pick = j;
          idx = i;
          break;
        }
        wake = MIN (wake, t.next_attempt);
      }
      if (pick)
        break;
    }
    if (!pick) {
      if (wake == G_MAXINT64)
        sh.cv.wait (lk);
      else
        sh.cv.wait_for (lk, std::chrono::milliseconds (MAX (wake - now, 10)));
      continue;
    }
    std::string dir = pick->dir;
    if (!sh.lock_fds.count (pick->dir_name)) {
      /* a job that waited without its lock (kMaxLocksHeld), or queued
       * without it (a lock error): the lock first, then its queue file
       * again — another node may have adopted (or finished) it */
      std::string name = pick->dir_name;
      bool busy, created;
      if (take_lock_locked (name, &busy, &created)) {
        Job j;
        int r = read_job_file (name, &j);
        GStatBuf sb;
        if (r > 0) {
          j.lockless = false;
          insert_job_locked (std::move (j), "taken up again (its lock was free)");
        } else if (r == 0 && created && !sh.unsaved.count (name) &&
            g_lstat ((queue_dir_ + "/" + name + ".json").c_str (), &sb) != 0 &&
            errno == ENOENT) {
          /* both files gone: a finisher removes them (a park keeps the lock
           * file; a job whose queue file was never written has no such
           * proof) */
          g_message ("action queue: %s was finished by another node of the fleet",
              log_safe (name).c_str ());
          sh.jobs.erase (dir);
          release_lock_locked (name);
          update_pending_gauge_locked ();
          continue;
        } else {
          /* gone without that proof, broken or unreadable now: this copy
           * goes on, written again */
          pick->lockless = false;
          persist_locked (*pick);
        }
        auto it = sh.jobs.find (dir);
        if (it != sh.jobs.end () && it->second.state == "pending") {
          /* not runnable now (a retry later): the lock waits no slot */
          bool now_runnable = !it->second.prepared;
          for (const auto &t : it->second.tasks)
            now_runnable = now_runnable || (runnable (it->second, t) &&
                t.next_attempt <= now_ms ());
          if (!now_runnable)
            park_over_cap_locked (name);
        }
      } else if (busy) {
        g_message ("action queue: %s was adopted by another node of the fleet: "
            "not run here", log_safe (name).c_str ());
        sh.jobs.erase (dir);
      } else if (!pick->lockless) {
        /* an error (logged): run without it rather than never */
        pick->lockless = true;
      } else {
        goto run;     /* still no lock: run without it */
      }
      update_pending_gauge_locked ();
      continue;
    }
  run:
    if (idx != G_MAXSIZE) {
      pick->tasks[idx].state = "running";
      pick->tasks[idx].attempts++;
      persist_locked (*pick);
      update_pending_gauge_locked ();
    }
    Job snap = *pick;
    sh.running_dir = dir;
    sh.cancel = false;
    lk.unlock ();
    post (dir);
    Task result;
    std::vector<Deleted> deleted;
    std::string log;
    bool ok = run_step (snap, idx, &result, &deleted, &log);
    lk.lock ();
    sh.running_dir.clear ();
    if (!log.empty ())
      g_message ("%s", log.c_str ());
    auto it = sh.jobs.find (dir);
    if (it == sh.jobs.end ())
      continue;
    Job &j = it->second;
    if (idx == G_MAXSIZE) {
      if (j.kind == snap.kind && !j.prepared) {
        if (ok) {
          j.tasks = snap.tasks;
          j.prepared = true;
        }
        j.deleted.insert (j.deleted.end (), deleted.begin (), deleted.end ());
      }
    } else if (j.kind == snap.kind && idx < j.tasks.size () &&
        j.tasks[idx].state == "running") {
      j.tasks[idx] = result;
      j.deleted.insert (j.deleted.end (), deleted.begin (), deleted.end ());
    } else if (idx < j.tasks.size ()) {
      /* cancelled meanwhile (an erasure): keep what must be cleaned up */
      if (!result.upload_id.empty ())
        j.tasks[idx].upload_id = result.upload_id;
      if (j.tasks[idx].state == "running")
        j.tasks[idx].state = "cancelled";
      j.deleted.insert (j.deleted.end (), deleted.begin (), deleted.end ());
    }
    if (j.prepared) {
      bool all = true, failed = false;
      for (const auto &t : j.tasks) {
        all = all && t.final ();
        failed = failed || t.state == "failed";
      }
      if (all && j.state == "pending") {
        j.state = failed ? "failed" : "done";
        j.completed = now_ms ();
        g_message ("engagement %s: after-call %s %s", j.dir_name.c_str (),
            j.kind == "erase" ? "erasure" : "actions", j.state.c_str ());
      }
    }
    persist_locked (j);
    if (j.state == "pending")
      park_over_cap_locked (j.dir_name);
    update_pending_gauge_locked ();
    /* bounded memory: forget the oldest finished jobs (not one whose final
     * view the main context has still to write: it holds its lock) */
    gsize done = 0;
    for (const auto &kv : sh.jobs)
      done += kv.second.state != "pending" && !sh.lock_fds.count (kv.second.dir_name) &&
          !kv.second.lockless;
    while (done > kMaxDoneJobs) {
      auto oldest = sh.jobs.end ();
      for (auto k = sh.jobs.begin (); k != sh.jobs.end (); ++k)
        if (k->second.state != "pending" && !sh.lock_fds.count (k->second.dir_name) &&
            !k->second.lockless && (oldest == sh.jobs.end () ||
                k->second.completed < oldest->second.completed))
          oldest = k;
      if (oldest == sh.jobs.end ())
        break;
      sh.jobs.erase (oldest);
      done--;
    }
    lk.unlock ();
    post (dir);
    lk.lock ();
  }
}

bool
hook_env_hidden (const std::string &name)
{
  /* ZOOMRTMS_REDIS_URL may carry the Redis password (redis://:PASSWORD@…) */
  return g_str_has_prefix (name.c_str (), "ZOOM_") ||
      g_str_has_prefix (name.c_str (), "AWS_") || name == "ZOOMRTMS_API_TOKEN" ||
      name == "ZOOMRTMS_REDIS_URL" || name == "CREDENTIALS_DIRECTORY";
}

/* The hook's output (stdout and stderr, one pipe): the first kMaxOutput
 * bytes kept, the rest read and dropped, so the hook never blocks on a full
 * pipe and nothing of it reaches the disk. */
struct HookOutput {
  GPollableInputStream *in = nullptr;
  std::string kept;
  guint64 dropped = 0;          /* bytes read past kMaxOutput */
  bool eof = false;

  /* reads what is there without blocking, at most @budget bytes (0: no
   * limit); TRUE while more may come */
  bool read_available (guint64 budget = 0)
  {
    char buf[65536];
    guint64 got = 0;
    while (!eof && (budget == 0 || got < budget)) {
      GError *err = nullptr;
      gssize n = g_pollable_input_stream_read_nonblocking (in, buf, sizeof buf, nullptr, &err);
      if (n < 0) {
        bool again = g_error_matches (err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
        g_error_free (err);
        if (again)
          return true;
        eof = true;
      } else if (n == 0) {
        eof = true;
      } else {
        gsize take = MIN (static_cast<gsize> (n), kMaxOutput - kept.size ());
        kept.append (buf, take);
        dropped += static_cast<gsize> (n) - take;
        got += static_cast<guint64> (n);
      }
    }
    return !eof;
  }
};

/* The exec hook: manifest on stdin, output through a bounded pipe reader,
 * timeout. */
static void
run_exec (const ActionsConfig &c, const std::string &queue_dir, const AfterCall::Job &j,
    const std::string &manifest, AfterCall::Task *t, const std::atomic<bool> &quit)
{
  std::string in_path = queue_dir + "/" + j.dir_name + ".manifest";
  GError *err = nullptr;
  if (!g_file_set_contents (in_path.c_str (), manifest.data (),
          static_cast<gssize> (manifest.size ()), &err)) {
    t->state = "failed";
    t->error = err->message;
    g_error_free (err);
    return;
  }
  GMainContext *ctx = g_main_context_new ();
  g_main_context_push_thread_default (ctx);
  GSubprocessLauncher *l = g_subprocess_launcher_new (static_cast<GSubprocessFlags> (
      G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE));
  g_subprocess_launcher_set_stdin_file_path (l, in_path.c_str ());
  g_subprocess_launcher_set_cwd (l, j.dir.c_str ());
  /* the hook never sees the host's secrets */
  g_auto (GStrv) env = g_get_environ ();
  for (gchar **e = env; e && *e; e++) {
    std::string name (*e, strcspn (*e, "="));
    if (hook_env_hidden (name))
      g_subprocess_launcher_unsetenv (l, name.c_str ());
  }
  /* its own process group: a timeout kills what it started too; killed when
   * the thread that starts it (the worker, which lives as long as the host)
   * ends, so a host killed with SIGKILL leaves no hook running beside the
   * one its adopter starts again (at least once, not twice at a time) */
  static pid_t host_pid;
  host_pid = getpid ();
  g_subprocess_launcher_set_child_setup (l, [] (gpointer) {
    setpgid (0, 0);
    prctl (PR_SET_PDEATHSIG, SIGKILL);
    if (getppid () != host_pid)
      _exit (127);      /* the host died before prctl() */
  }, nullptr, nullptr);
  g_subprocess_launcher_setenv (l, "ZOOMRTMS_ENGAGEMENT_DIR", j.dir.c_str (), TRUE);
  std::vector<const gchar *> argv;
  for (const auto &a : c.exec_argv)
    argv.push_back (a.c_str ());
  argv.push_back (nullptr);
  GSubprocess *p = g_subprocess_launcher_spawnv (l, argv.data (), &err);
  g_object_unref (l);
  if (!p) {
    t->state = "failed";
    t->error = std::string ("cannot run the hook: ") + err->message;
    g_error_free (err);
    count ("zoomrtms_exec_hooks_total", "failed");
  } else {
    struct W { bool done = false; } w;
    g_subprocess_wait_async (p, nullptr, [] (GObject *, GAsyncResult *, gpointer d) {
      static_cast<W *> (d)->done = true;
    }, &w);
    HookOutput out;
    out.in = G_POLLABLE_INPUT_STREAM (g_subprocess_get_stdout_pipe (p));
    GSource *reader = g_pollable_input_stream_create_source (out.in, nullptr);
    g_source_set_callback (reader, G_SOURCE_FUNC (+[] (GObject *, gpointer d) -> gboolean {
      return static_cast<HookOutput *> (d)->read_available () ? G_SOURCE_CONTINUE :
          G_SOURCE_REMOVE;
    }), &out, nullptr);
    g_source_attach (reader, ctx);
    gint64 deadline = g_get_monotonic_time () + static_cast<gint64> (c.exec_timeout_s) *
        G_USEC_PER_SEC;
    GSource *tick = g_timeout_source_new (100);
    g_source_set_callback (tick, [] (gpointer) -> gboolean { return G_SOURCE_CONTINUE; },
        nullptr, nullptr);
    g_source_attach (tick, ctx);
    while (!w.done && g_get_monotonic_time () < deadline && !quit.load ())
      g_main_context_iteration (ctx, TRUE);
    bool timed_out = !w.done;
    if (timed_out) {
      /* not reaped yet: the group id is still the hook's */
      const gchar *id = g_subprocess_get_identifier (p);
      pid_t pid = id ? static_cast<pid_t> (g_ascii_strtoll (id, nullptr, 10)) : 0;
      if (pid > 0)
        kill (-pid, SIGKILL);
      g_subprocess_force_exit (p);
      while (!w.done)
        g_main_context_iteration (ctx, TRUE);
    }
    g_source_destroy (tick);
    g_source_unref (tick);
    g_source_destroy (reader);
    g_source_unref (reader);
    /* what the hook wrote before it ended; bounded, as a process it started
     * may still hold the pipe open and write (it gets EPIPE once we close) */
    out.read_available (kPipeDrainAfterExit);
    g_autofree gchar *valid = g_utf8_make_valid (out.kept.data (),
        static_cast<gssize> (out.kept.size ()));
    t->output = valid;
    if (out.dropped > 0)
      g_message ("engagement %s: exec hook output: %" G_GUINT64_FORMAT
          " byte(s) past the first %" G_GSIZE_FORMAT " dropped", log_safe (j.dir_name).c_str (),
          out.dropped, kMaxOutput);
    if (timed_out) {
      t->state = quit.load () ? "pending" : "failed";
      t->error = quit.load () ? "host stopped while the hook ran" :
          "timed out after " + std::to_string (c.exec_timeout_s) + " s (killed)";
      if (!quit.load ())
        count ("zoomrtms_exec_hooks_total", "timeout");
    } else if (g_subprocess_get_if_exited (p)) {
      t->exit_status = g_subprocess_get_exit_status (p);
      t->state = t->exit_status == 0 ? "done" : "failed";
      if (t->exit_status != 0)
        t->error = "exit status " + std::to_string (t->exit_status);
      count ("zoomrtms_exec_hooks_total", t->exit_status == 0 ? "ok" : "failed");
    } else {
      t->state = "failed";
      t->error = "killed by signal " + std::to_string (g_subprocess_get_term_sig (p));
      count ("zoomrtms_exec_hooks_total", "failed");
    }
    g_object_unref (p);
  }
  g_main_context_pop_thread_default (ctx);
  g_main_context_unref (ctx);
  g_remove (in_path.c_str ());
  t->completed = now_ms ();
}

static std::string
object_key (const ActionsConfig &c, const std::string &dir_name, const std::string &file)
{
  return (c.prefix.empty () ? "" : c.prefix + "/") + dir_name + (file.empty () ? "/" : "/" + file);
}

static S3Settings
s3_settings (const ActionsConfig &c)
{
  S3Settings s;
  s.endpoint = c.endpoint;
  s.bucket = c.bucket;
  s.region = c.region;
  s.path_style = c.path_style;
  s.access_key = c.access_key;
  s.secret_key = c.secret_key;
  s.session_token = c.session_token;
  s.ca_file = c.ca_file;
  s.timeout_s = c.timeout_s;
  return s;
}

static bool
etag_matches (const AfterCall::Task &t, const std::string &etag)
{
  /* S3 computes the ETag of what it stored: the MD5 of a PutObject body, or
   * for a multipart object the MD5 of the part MD5s + "-N" (some
   * S3-compatible stores give the whole object's MD5 for both) */
  return !etag.empty () && (g_ascii_strcasecmp (etag.c_str (), t.md5.c_str ()) == 0 ||
      g_ascii_strcasecmp (etag.c_str (), t.multipart_etag.c_str ()) == 0);
}

/* HEAD (+ GET for small objects): whether the object holds this file. */
static bool
verify_object (const ActionsConfig &c, S3Client &s3, const AfterCall::Task &t,
    std::string *how, std::string *error, bool *absent)
{
  guint64 size = 0;
  std::string etag;
  S3Result r = s3.head_object (t.key, &size, &etag);
  if (absent)
    *absent = r.status == 404;
  if (!r.ok ()) {
    *error = "HEAD: " + r.describe ();
    return false;
  }
  if (size != t.bytes) {
    *error = "object holds " + std::to_string (size) + " bytes, the file " +
        std::to_string (t.bytes);
    return false;
  }
  if (!etag_matches (t, etag)) {
    *error = "ETag " + log_safe (etag, 80) + " is neither the file's MD5 nor its multipart ETag";
    return false;
  }
  *how = "size+etag";
  if (t.bytes <= c.verify_download_max) {
    std::string sha;
    guint64 got = 0;
    r = s3.get_object_sha256 (t.key, &sha, &got);
    if (!r.ok ()) {
      *error = "GET: " + r.describe ();
      return false;
    }
    if (sha != t.sha256 || got != t.bytes) {
      *error = "downloaded SHA-256 " + sha + " differs from the file's";
      return false;
    }
    *how = "size+etag+sha256";
  }
  return true;
}

static bool
read_range (const std::string &path, guint64 off, gsize len, std::vector<guint8> *buf,
    std::string *error)
{
  FILE *f = g_fopen (path.c_str (), "rb");
  if (!f) {
    *error = std::string ("cannot open: ") + g_strerror (errno);
    return false;
  }
  buf->resize (len);
  bool ok = fseeko (f, static_cast<off_t> (off), SEEK_SET) == 0 &&
      fread (buf->data (), 1, len, f) == len;
  fclose (f);
  if (!ok)
    *error = "short read";
  return ok;
}

bool
AfterCall::run_step (Job &snap, gsize idx, Task *result, std::vector<Deleted> *deleted,
    std::string *log)
{
  const ActionsConfig &c = cfg_;
  if (idx == G_MAXSIZE && snap.kind == "finish") {
    /* prepare: the files are final; hash them, one task per action */
    snap.tasks.clear ();
    if (!c.exec_argv.empty ()) {
      Task t;
      t.type = "exec";
      snap.tasks.push_back (t);
    }
    if (c.upload_enabled ()) {
      for (const auto &f : dir_files (snap.dir)) {
        Task t;
        t.type = "upload";
        t.file = f;
        t.key = object_key (c, snap.dir_name, f);
        FileHash h;
        std::string err;
        if (!hash_file (snap.dir + "/" + f, c.part_size, &h, &err)) {
          t.state = "failed";
          t.error = err;
        }
        t.bytes = h.bytes;
        t.sha256 = h.sha256;
        t.md5 = h.md5;
        t.multipart_etag = h.multipart_etag;
        snap.tasks.push_back (t);
      }
      if (c.delete_local_after_upload) {
        Task t;
        t.type = "delete-local";
        snap.tasks.push_back (t);
      }
    }
    return true;
  }
  if (idx == G_MAXSIZE) {
    /* erasure, local part: hash, then delete every file but engagement.json;
     * nothing through a directory that became a symlink */
    bool own_dir = lstat_is_dir (snap.dir);
    if (!own_dir)
      *log += "erasure of " + snap.dir_name + ": not a directory (a symlink?): nothing deleted\n";
    for (const auto &f : own_dir ? dir_files (snap.dir) : std::vector<std::string> ()) {
      std::string path = snap.dir + "/" + f;
      FileHash h;
      std::string err;
      hash_file (path, c.part_size, &h, &err);
      if (g_remove (path.c_str ()) != 0) {
        *log += "erasure of " + snap.dir_name + ": cannot delete " + log_safe (f) +
            ": " + g_strerror (errno) + "\n";
        continue;
      }
      Deleted d;
      d.name = f;
      d.bytes = h.bytes;
      d.sha256 = h.sha256;
      d.where = "local";
      d.when = now_ms ();
      deleted->push_back (d);
      count ("zoomrtms_erased_files_total", "local");
    }
    snap.tasks.erase (std::remove_if (snap.tasks.begin (), snap.tasks.end (),
        [] (const Task &t) { return t.type == "delete-remote"; }), snap.tasks.end ());
    if (c.upload_enabled () && snap.reason != "retention") {
      Task t;
      t.type = "delete-remote";
      t.key = object_key (c, snap.dir_name, "");
      snap.tasks.push_back (t);
    }
    *log = "engagement " + snap.dir_name + ": " + std::to_string (deleted->size ()) +
        " local file(s) erased (" + snap.reason + ")";
    return true;
  }
  Task t = snap.tasks[idx];
  auto retry = [&] (const std::string &why) {
    t.state = "pending";
    t.error = why;
    t.next_attempt = now_ms () + backoff_ms (c, t.attempts);
    *log = "engagement " + snap.dir_name + ": " + t.type + " " + log_safe (t.file.empty () ?
        t.key : t.file) + " failed (attempt " + std::to_string (t.attempts) + "): " +
        log_safe (why, 200) + "; retry in " +
        std::to_string ((t.next_attempt - now_ms () + 500) / 1000) + " s";
  };
  if (t.type == "exec") {
    g_autoptr (JsonBuilder) b = json_builder_new ();
    json_builder_begin_object (b);
    add_int (b, "version", 1);
    add_str (b, "directory", snap.dir);
    add_str (b, "dir_name", snap.dir_name);
    json_builder_set_member_name (b, "engagement");
    g_autoptr (JsonParser) parser = json_parser_new ();
    JsonNode *eng = read_json_file (parser, snap.dir + "/engagement.json");
    if (eng)
      json_builder_add_value (b, json_node_copy (eng));
    else
      json_builder_add_null_value (b);
    json_builder_set_member_name (b, "files");
    json_builder_begin_array (b);
    std::vector<std::string> keys;
    std::map<std::string, const Task *> hashed;   /* by the upload tasks */
    for (const auto &u : snap.tasks)
      if (u.type == "upload" && !u.sha256.empty ())
        hashed[u.file] = &u;
    for (const auto &f : dir_files (snap.dir)) {
      FileHash h;
      std::string err;
      GStatBuf sb;
      auto known = hashed.find (f);
      if (known != hashed.end () && g_stat ((snap.dir + "/" + f).c_str (), &sb) == 0 &&
          static_cast<guint64> (sb.st_size) == known->second->bytes) {
        h.bytes = known->second->bytes;
        h.sha256 = known->second->sha256;
      } else {
        hash_file (snap.dir + "/" + f, c.part_size, &h, &err);
      }
      json_builder_begin_object (b);
      add_str (b, "name", f);
      add_str (b, "path", snap.dir + "/" + f);
      add_int (b, "bytes", static_cast<gint64> (h.bytes));
      add_str (b, "sha256", h.sha256);
      json_builder_end_object (b);
      keys.push_back (object_key (c, snap.dir_name, f));
    }
    json_builder_end_array (b);
    json_builder_set_member_name (b, "upload");
    if (c.upload_enabled ()) {
      json_builder_begin_object (b);
      add_str (b, "bucket", c.bucket);
      json_builder_set_member_name (b, "keys");
      json_builder_begin_array (b);
      for (const auto &k : keys)
        json_builder_add_string_value (b, k.c_str ());
      json_builder_end_array (b);
      json_builder_end_object (b);
    } else {
      json_builder_add_null_value (b);
    }
    json_builder_end_object (b);
    g_autoptr (JsonNode) root = json_builder_get_root (b);
    std::string manifest = json_to_compact (root) + "\n";
    run_exec (c, queue_dir_, snap, manifest, &t, shared_->cancel);
    *log = "engagement " + snap.dir_name + ": exec hook " + t.state +
        (t.error.empty () ? "" : " (" + t.error + ")");
    *result = t;
    return true;
  }
  if (t.type == "delete-local") {
    int n = 0;
    for (const auto &u : snap.tasks)
      if (u.type == "upload" && u.state == "done" &&
          g_remove ((snap.dir + "/" + u.file).c_str ()) == 0)
        n++;
    t.state = "done";
    t.output = std::to_string (n) + " uploaded file(s) removed";
    t.completed = now_ms ();
    *log = "engagement " + snap.dir_name + ": " + t.output + " after upload";
    *result = t;
    return true;
  }
  S3Client s3 (s3_settings (c), &shared_->cancel);
  if (t.type == "delete-remote") {
    std::vector<std::pair<std::string, guint64>> objects;
    S3Result r = s3.list_objects (t.key, &objects);
    if (!r.ok ()) {
      retry ("ListObjectsV2: " + r.describe ());
      *result = t;
      return true;
    }
    std::map<std::string, std::string> sha_by_key;
    for (const auto &u : snap.tasks)
      if (u.type == "upload" && !u.sha256.empty ())
        sha_by_key[u.key] = u.sha256;
    for (const auto &d : snap.deleted)
      if (d.where == "local")
        sha_by_key.emplace (object_key (c, snap.dir_name, d.name), d.sha256);
    /* multipart uploads an erasure interrupted */
    for (const auto &u : snap.tasks)
      if (!u.upload_id.empty ())
        s3.abort_multipart (u.key, u.upload_id);
    for (const auto &o : objects) {
      r = s3.delete_object (o.first);
      if (!r.ok () && r.status != 404) {
        retry ("DeleteObject: " + r.describe ());
        *result = t;
        return true;
      }
      Deleted d;
      g_autofree gchar *base = g_path_get_basename (o.first.c_str ());
      d.name = base;
      d.bytes = o.second;
      auto s = sha_by_key.find (o.first);
      d.sha256 = s != sha_by_key.end () ? s->second : "";
      d.where = "s3://" + c.bucket + "/" + o.first;
      d.when = now_ms ();
      deleted->push_back (d);
      count ("zoomrtms_erased_files_total", "object_storage");
    }
    t.state = "done";
    t.error.clear ();
    t.output = std::to_string (objects.size ()) + " object(s) deleted";
    t.completed = now_ms ();
    *log = "engagement " + snap.dir_name + ": " + t.output + " under s3://" +
        c.bucket + "/" + t.key;
    *result = t;
    return true;
  }
  /* upload */
  std::string path = snap.dir + "/" + t.file;
  GStatBuf st;
  if (g_stat (path.c_str (), &st) != 0 || static_cast<guint64> (st.st_size) != t.bytes) {
    t.state = "failed";
    t.error = "the file changed or disappeared since it was hashed";
    t.completed = now_ms ();
    *result = t;
    count ("zoomrtms_uploads_total", "error");
    return true;
  }
  if (!t.upload_id.empty ()) {
    /* a multipart upload a killed host (or a failed attempt) left */
    s3.abort_multipart (t.key, t.upload_id);
    t.upload_id.clear ();
  }
  std::string how, err;
  bool absent = false;
  if (verify_object (c, s3, t, &how, &err, &absent)) {
    t.state = "done";
    t.verified = how;
    t.error.clear ();
    t.output = "already present";
    t.completed = now_ms ();
    count ("zoomrtms_uploads_total", "already_present");
    *log = "engagement " + snap.dir_name + ": " + log_safe (t.file) +
        " already in object storage (verified " + how + ")";
    *result = t;
    return true;
  }
  std::map<std::string, std::string> meta = {{"sha256", t.sha256}};
  std::string fail;
  if (t.bytes < c.multipart_threshold) {
    std::vector<guint8> buf;
    if (!read_range (path, 0, t.bytes, &buf, &err))
      fail = err;
    else {
      S3Result r = s3.put_object (t.key, buf.data (), buf.size (), meta);
      if (!r.ok ())
        fail = "PutObject: " + r.describe ();
    }
  } else {
    std::string id;
    S3Result r = s3.create_multipart (t.key, meta, &id);
    if (!r.ok ()) {
      fail = "CreateMultipartUpload: " + r.describe ();
    } else {
      {
        /* durable before any part: a killed host aborts it next time */
        std::lock_guard<std::mutex> g (shared_->m);
        auto it = shared_->jobs.find (snap.dir);
        if (it != shared_->jobs.end () && idx < it->second.tasks.size () &&
            it->second.tasks[idx].state == "running") {
          it->second.tasks[idx].upload_id = id;
          persist_locked (it->second);
        }
      }
      t.upload_id = id;
      std::vector<std::string> etags;
      std::vector<guint8> buf;
      for (guint64 off = 0; off < t.bytes && fail.empty (); off += c.part_size) {
        gsize len = static_cast<gsize> (MIN (c.part_size, t.bytes - off));
        std::string etag;
        if (!read_range (path, off, len, &buf, &err)) {
          fail = err;
          break;
        }
        r = s3.upload_part (t.key, id, static_cast<int> (etags.size () + 1), buf.data (),
            len, &etag);
        if (!r.ok ())
          fail = "UploadPart " + std::to_string (etags.size () + 1) + ": " + r.describe ();
        etags.push_back (etag);
      }
      if (fail.empty ()) {
        std::string etag;
        r = s3.complete_multipart (t.key, id, etags, &etag);
        if (!r.ok ())
          fail = "CompleteMultipartUpload: " + r.describe ();
        else
          t.upload_id.clear ();
      }
      if (!fail.empty () && !t.upload_id.empty ()) {
        s3.abort_multipart (t.key, t.upload_id);
        t.upload_id.clear ();
      }
    }
  }
  if (fail.empty () && !verify_object (c, s3, t, &how, &err, nullptr)) {
    fail = "verification failed: " + err;
    count ("zoomrtms_uploads_total", "verify_failed");
    s3.delete_object (t.key);
  } else if (!fail.empty ()) {
    count ("zoomrtms_uploads_total", "error");
  }
  if (!fail.empty ()) {
    retry (fail);
    *result = t;
    return true;
  }
  t.state = "done";
  t.verified = how;
  t.error.clear ();
  t.completed = now_ms ();
  count ("zoomrtms_uploads_total", "ok");
  count ("zoomrtms_upload_bytes_total", nullptr, static_cast<double> (t.bytes));
  *log = "engagement " + snap.dir_name + ": " + log_safe (t.file) + " uploaded to s3://" +
      c.bucket + "/" + log_safe (t.key) + " (" + std::to_string (t.bytes) +
      " bytes, verified " + how + ")";
  *result = t;
  return true;
}

/* ---- main context: engagement.json ------------------------------------ */

struct PostData {
  std::shared_ptr<AfterCall::Shared> sh;
  AfterCall *self;
  std::string dir;
};

void
AfterCall::post (const std::string &dir)
{
  auto *p = new PostData {shared_, this, dir};
  g_idle_add_full (G_PRIORITY_DEFAULT, posted_cb, p, [] (gpointer d) {
    delete static_cast<PostData *> (d);
  });
}

gboolean
AfterCall::posted_cb (gpointer data)
{
  auto *p = static_cast<PostData *> (data);
  if (p->sh->alive) {
    p->self->apply_to_engagement_json (p->dir);
    /* a finished job's lock goes only once its view is written: until then
     * no other node writes engagement.json, and a crash leaves the queue
     * file for the next scan */
    p->self->finish_if_done (p->dir);
  }
  return G_SOURCE_REMOVE;
}

/* Sets the members of @obj that describe @j. */
static void
job_into_object (const AfterCall::Job &j, JsonObject *obj)
{
  g_autoptr (JsonNode) view = job_to_json (j, false);
  JsonObject *v = json_node_get_object (view);
  if (j.kind == "erase") {
    json_object_set_string_member (obj, "state", erased_state (j.reason));
    JsonObject *e = json_object_new ();
    json_object_set_string_member (e, "reason", j.reason.c_str ());
    json_object_set_string_member (e, "requested", iso_ms (j.created).c_str ());
    if (j.completed)
      json_object_set_string_member (e, "completed", iso_ms (j.completed).c_str ());
    else
      json_object_set_null_member (e, "completed");
    json_object_set_boolean_member (e, "remote_pending", j.state == "pending" && j.prepared);
    json_object_set_int_member (e, "cancelled_tasks", j.cancelled);
    if (!j.requested_by.empty ())
      json_object_set_string_member (e, "requested_by", j.requested_by.c_str ());
    json_object_set_object_member (obj, "erasure", e);
    json_object_set_member (obj, "deleted", json_node_copy (
        json_object_get_member (v, "deleted")));
    json_object_set_object_member (obj, "display_names", json_object_new ());
  }
  json_object_remove_member (v, "deleted");
  json_object_set_member (obj, "actions", json_node_copy (view));
}

void
AfterCall::apply_to_engagement_json (const std::string &dir)
{
  Job copy;
  {
    std::lock_guard<std::mutex> g (shared_->m);
    auto it = shared_->jobs.find (dir);
    if (it == shared_->jobs.end ())
      return;
    copy = it->second;
  }
  std::string path = dir + "/engagement.json";
  std::lock_guard<std::mutex> g (engagement_json_mutex (dir));
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root = read_json_file (parser, path);
  if (!root)
    return;
  job_into_object (copy, json_node_get_object (root));
  write_json_file (path, root, copy.kind == "erase");
}

std::mutex &
AfterCall::engagement_json_mutex (const std::string &dir)
{
  static std::mutex stripes[64];
  return stripes[std::hash<std::string> () (dir) % G_N_ELEMENTS (stripes)];
}

void
AfterCall::decorate (JsonObject *engagement) const
{
  const gchar *dir = json_object_get_string_member_with_default (engagement,
      "directory", "");
  std::lock_guard<std::mutex> g (shared_->m);
  auto it = shared_->jobs.find (dir);
  if (it != shared_->jobs.end ())
    job_into_object (it->second, engagement);
}

void
AfterCall::preserve_members (const std::string &path, JsonObject *obj)
{
  if (!g_file_test (path.c_str (), G_FILE_TEST_EXISTS))
    return;
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root = read_json_file (parser, path);
  if (!root)
    return;
  JsonObject *old = json_node_get_object (root);
  for (const char *k : {"actions", "erasure", "deleted"})
    if (json_object_has_member (old, k))
      json_object_set_member (obj, k, json_node_copy (json_object_get_member (old, k)));
  const gchar *st = json_object_get_string_member_with_default (old, "state", "");
  if (is_erased_state (st)) {
    json_object_set_string_member (obj, "state", st);
    json_object_set_object_member (obj, "display_names", json_object_new ());
  }
}

/* ---- retention -------------------------------------------------------- */

int
AfterCall::sweep_retention ()
{
  if (!cfg_.retention_enabled ())
    return 0;
  /* one sweeper at a time in a fleet (a shared output root): never
   * unlinked, so no inode check is needed; released when this pass ends */
  bool sweeping;
  int lock_fd = lock_path (queue_dir_ + "/sweep.retention.lock", &sweeping);
  if (lock_fd < 0) {
    if (sweeping)
      g_message ("retention: another node of the fleet is sweeping the output root: "
          "this round skipped");
    return 0;
  }
  struct CloseFd {
    int fd;
    ~CloseFd () { close (fd); }
  } close_lock {lock_fd};
  struct Cand {
    std::string dir;
    gint64 ended_ms;
    guint64 bytes;
  };
  std::vector<Cand> cands;
  guint64 total = 0;
  g_autoptr (GDir) d = g_dir_open (output_root_.c_str (), 0, nullptr);
  std::set<std::string> busy, locked;
  {
    std::lock_guard<std::mutex> g (shared_->m);
    for (const auto &kv : shared_->jobs)
      if (kv.second.state == "pending")
        busy.insert (kv.first);
    /* held here: never probed (lock_is_held(), NFS) */
    for (const auto &kv : shared_->lock_fds)
      locked.insert (kv.first);
  }
  while (const gchar *n = d ? g_dir_read_name (d) : nullptr) {
    if (n[0] == '.')
      continue;
    std::string dir = output_root_ + "/" + n;
    std::string ej = dir + "/engagement.json";
    /* a symlink (to a directory, or as engagement.json) is not ours: never
     * followed, never erased through */
    if (!lstat_is_dir (dir) || busy.count (dir) || (is_live_ && is_live_ (dir)))
      continue;
    int fd = open_confined (output_root_, n, "engagement.json");
    if (fd < 0)
      continue;
    g_autoptr (JsonParser) parser = json_parser_new ();
    JsonNode *root = rtms::json_load_fd (parser, fd, ej.c_str (), file_json_limits (), nullptr);
    close (fd);
    if (!root || !JSON_NODE_HOLDS_OBJECT (root))
      continue;
    JsonObject *o = json_node_get_object (root);
    const gchar *st = json_object_get_string_member_with_default (o, "state", "");
    if (!g_str_equal (st, "stopped") && !g_str_equal (st, "failed") &&
        !g_str_equal (st, "recovered"))
      continue;
    /* actions pending elsewhere: another node of a fleet (shared output
     * root) holds its job's lock, or its queue file waits for a node to
     * adopt it; engagement.json's "pending" alone may be stale (a node that
     * died before writing the end) */
    JsonNode *an = json_object_get_member (o, "actions");
    if (an && JSON_NODE_HOLDS_OBJECT (an) && g_str_equal (json_object_get_string_member_with_default (
            json_node_get_object (an), "state", ""), "pending") &&
        (g_file_test ((queue_dir_ + "/" + n + ".json").c_str (), G_FILE_TEST_EXISTS) ||
            locked.count (n) || lock_is_held (queue_dir_ + "/" + n + ".lock")))
      continue;
    gint64 ended = 0;
    const gchar *stop = json_object_has_member (o, "stop_time") &&
        JSON_NODE_HOLDS_VALUE (json_object_get_member (o, "stop_time")) ?
        json_object_get_string_member (o, "stop_time") : nullptr;
    if (stop) {
      g_autoptr (GDateTime) dt = g_date_time_new_from_iso8601 (stop, nullptr);
      if (dt)
        ended = g_date_time_to_unix (dt) * 1000;
    }
    if (!ended) {
      GStatBuf sb;
      if (g_stat (ej.c_str (), &sb) == 0)
        ended = static_cast<gint64> (sb.st_mtime) * 1000;
    }
    guint64 bytes = 0;
    for (const auto &f : dir_files (dir)) {
      GStatBuf sb;
      if (g_stat ((dir + "/" + f).c_str (), &sb) == 0)
        bytes += static_cast<guint64> (sb.st_size);
    }
    if (bytes == 0)
      continue;
    total += bytes;
    cands.push_back ({dir, ended, bytes});
  }
  std::sort (cands.begin (), cands.end (), [] (const Cand &a, const Cand &b) {
    return a.ended_ms < b.ended_ms;
  });
  gint64 now = now_ms ();
  int n = 0;
  guint64 freed = 0;
  for (const auto &c : cands) {
    bool old = cfg_.max_age_days > 0 &&
        now - c.ended_ms > static_cast<gint64> (cfg_.max_age_days * 86400000.0);
    bool over = cfg_.max_bytes > 0 && total - freed > cfg_.max_bytes;
    if (!old && !over)
      break;      /* oldest first: the rest are newer and fit */
    /* false: another node holds its job (it is not finished there) */
    if (!erase_job (c.dir, "retention", false))
      continue;
    g_autofree gchar *base = g_path_get_basename (c.dir.c_str ());
    g_message ("retention: erasing %s (ended %s, %" G_GUINT64_FORMAT " bytes; %s)",
        base, iso_ms (c.ended_ms).c_str (), c.bytes,
        old ? "older than max-age-days" : "over max-bytes");
    freed += c.bytes;
    n++;
  }
  g_message ("retention: %zu finished engagement(s), %" G_GUINT64_FORMAT " bytes; %d "
      "erased (%" G_GUINT64_FORMAT " bytes)", cands.size (), total, n, freed);
  return n;
}

} // namespace zhost
