/* zoomrtms-host — after the call (issue 13): on-finish actions, their durable
 * queue, erasure (revocation, operator purge, retention).
 *
 * On-finish actions run once per engagement whose files are final (a
 * stopped, failed or recovered engagement; never a detached one, whose
 * recording a next host continues): the files of its directory (every
 * regular file but engagement.json) are hashed (SHA-256; MD5 for the S3
 * ETag check), then, in order:
 *   exec          the `[actions] exec` command (argv split with
 *                 g_shell_parse_argv, no shell), the JSON manifest on stdin,
 *                 cwd = the engagement directory, ZOOMRTMS_ENGAGEMENT_DIR set
 *                 and the host's secrets (hook_env_hidden()) removed from
 *                 its environment; killed after exec-timeout-s, with the
 *                 processes it started (its own process group);
 *                 exit status and the first 16 KiB of its output recorded.
 *                 Run at least once: again if its host died while it ran
 *                 (the hook is killed with the worker thread that started it,
 *                 PR_SET_PDEATHSIG; in a fleet the adopting node runs it
 *                 again, so a hook must tolerate a second run). Not twice
 *                 at a time only under systemd's KillMode=control-group (the
 *                 shipped unit's default), which kills the whole cgroup with
 *                 the host: PR_SET_PDEATHSIG reaches the hook's own process,
 *                 not the processes it started (they keep running in its
 *                 orphaned process group).
 *   upload        each file to `<prefix>/<directory name>/<file>` (host-s3.h):
 *                 PutObject below multipart-threshold-bytes, else a
 *                 multipart upload in part-size-bytes parts; then verified:
 *                 HEAD size = local size and ETag = the MD5 S3 computed of
 *                 what it stored (the whole object's MD5, or for a multipart
 *                 object AWS's MD5-of-part-MD5s "-N"), and for objects up to
 *                 verify-download-max-bytes a GET whose SHA-256 must equal the
 *                 local one. Before uploading, a HEAD that finds the object
 *                 already verified (a host killed between S3's answer and the
 *                 queue write) marks it done: a file is never uploaded twice
 *                 once it succeeded. Errors retry with exponential backoff
 *                 (retry-min-s doubling up to retry-max-s), for ever.
 *   delete-local  with delete-local-after-upload: once every upload is
 *                 verified, the uploaded local files are removed.
 * The manifest (exec stdin): {"version":1, "directory", "dir_name",
 * "engagement": engagement.json as it stands, "files":[{"name", "path",
 * "bytes", "sha256"}], "upload": {"bucket", "keys":[…]} or null}.
 *
 * Durable queue: one JSON file per engagement in <state-dir>/actions/
 * (<directory name>.json), written atomically with fsync at every state
 * change, loaded at start (a task "running" when the host died is pending
 * again: an interrupted multipart upload is aborted and restarted). The
 * work runs on ONE worker thread: the main context never waits for the
 * network, a hook or a hash; results are posted back to it, which writes
 * them into engagement.json ("actions") — the only writer of that file
 * stays the main context.
 *
 * Ownership (a fleet shares <state-dir>/actions: issue 10, the output root's
 * .state): a node runs a job only while it holds an exclusive advisory lock
 * (flock LOCK_EX|LOCK_NB, fd O_CLOEXEC so no hook inherits it) on
 * <directory name>.lock in the queue directory — a file never renamed, unlike
 * the queue file that every persist replaces. It takes the lock to queue a
 * job, to load one at start, or to adopt one; it removes the queue file,
 * then the lock file (while still holding it) and closes it once the job is
 * done and its final view is in engagement.json. A node holds at most
 * kMaxLocksHeld locks (open files): a job past that is queued (or loaded at
 * start) under its lock, which is then closed ("parked"; the lock file
 * stays), and the worker takes the lock again (reloading the queue file)
 * before it runs a step of it — unless another node adopted it meanwhile:
 * then it is dropped here; dropped too when both its queue file and its lock
 * file are gone (lstat ENOENT, the lock file created anew: another node
 * finished it). A queue file unreadable now (EIO, EMFILE), broken, or gone
 * without that proof leaves the job to this node's copy, written again. A
 * reloaded job not runnable yet (a retry later) is parked again. A job whose
 * queue file could not be written (ENOSPC, EIO) is never parked: it keeps
 * its lock (even past the cap) and is written again at its next step. A lock
 * that cannot be taken for another reason than another holder (EMFILE, ELOOP
 * from a symlink, ENOLCK on NFS) is logged as a warning and the job queued
 * (and run) without it — never over a queue file a stopped node left, which
 * is taken up instead: an after-call job, above all an erasure, is never
 * dropped; the worker tries for that lock again before each step (and drops
 * the job once another node holds it).
 * The directory of a job or of an erasure request is always
 * <output root>/<directory name> (never the path written in the file: the
 * nodes of a fleet may mount the output root at different paths, and a
 * request must not name a directory outside it). A lock taken on a
 * file that was unlinked meanwhile (fstat's inode ≠ stat's) is dropped and
 * taken again. The kernel releases a dead process's locks (NFS: when its
 * lease expires), so every node scans the queue at start and every
 * kAdoptIntervalS and adopts the jobs whose lock it can take: a job of a node
 * that stopped or died is taken up by another live one within that time.
 * An erasure asked of a node for a directory whose job another node holds
 * (a revocation webhook or a purge that reached it) is written as a request,
 * <directory name>.erase, that the holder (or, once the lock is free, any
 * node) carries out at its next scan. Retention: one sweeper at a time
 * (sweep.retention.lock — a name no engagement directory can take, as
 * sanitized ids never contain '.'; LOCK_NB: a node that cannot take it skips
 * that round); it skips a directory whose job lock is held or whose queue
 * file exists (a job pending on some node), not one whose engagement.json
 * still says "pending" with neither (its node died before writing the end).
 *
 * Erasure — reason "stream-revoked" (stop reason 8, docs/protocol.md §2.7,
 * from the stream or the stopped webhook), "operator" (DELETE
 * /engagements/{id}?purge=true) or "retention": pending actions of the
 * engagement are cancelled (a running upload aborted), every file of its
 * directory but engagement.json is hashed and deleted (audio, transcripts,
 * levels, events, parts); for the first two also every object under
 * `<prefix>/<directory name>/` (ListObjectsV2 + DeleteObject, retried while
 * the store is down). engagement.json becomes the receipt: "state"
 * "revoked" | "purged" | "expired", "erasure" {"reason", "requested",
 * "completed", "remote_pending", "cancelled_tasks", and "requested_by" (the
 * host name of the fleet node the revocation or purge reached, when it was
 * handed over by a <directory name>.erase request)}, "deleted"
 * [{"name", "bytes", "sha256", "where" ("local" or "s3://bucket/key"),
 * "when"}], and "display_names" emptied (names are personal data).
 * Retention erases local files only: the bucket's lifecycle rules govern
 * its copies.
 *
 * Retention: with [retention] max-age-days and/or max-bytes, at start and
 * every interval-s, the finished engagements of the output root (state
 * stopped/failed/recovered, not live, no pending actions, not erased) are
 * erased oldest first (stop_time, else engagement.json's mtime): those
 * older than max-age-days, then more until the rest hold at most
 * max-bytes. The scan (readdir + stat) runs on the main context; hashing
 * and deleting on the worker.
 *
 * Metrics (host-metrics.h): zoomrtms_actions_pending (tasks pending or
 * running), zoomrtms_uploads_total{result="ok"|"error"|"verify_failed"|
 * "already_present"}, zoomrtms_upload_bytes_total,
 * zoomrtms_exec_hooks_total{result="ok"|"failed"|"timeout"},
 * zoomrtms_erasures_total{reason}, zoomrtms_erased_files_total{where=
 * "local"|"object_storage"}.
 */
#pragma once

#include "host-actions-config.h"

#include <glib.h>
#include <json-glib/json-glib.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace zhost {

class AfterCall {
 public:
  /* @is_live: whether the engagement of a directory is live on this host
   * (retention never touches it). */
  using IsLive = std::function<bool (const std::string &dir)>;

  /* @queue_dir: <state-dir>/actions; @output_root: the engagements' root. */
  AfterCall (ActionsConfig cfg, std::string queue_dir, std::string output_root,
      IsLive is_live);
  /* Stops the worker: a running request or hook is aborted; its task stays
   * pending in the queue for the next start. */
  ~AfterCall ();
  AfterCall (const AfterCall &) = delete;
  AfterCall &operator= (const AfterCall &) = delete;

  /** start:
   * Creates the queue directory (0700), loads the queued jobs no other live
   * node holds (adopt()), starts the worker thread, the adoption timer and
   * the retention timer (a first sweep at once).
   * Returns: false with ZHOST_ERROR_IO when the queue directory cannot be
   * created (the host then runs without actions, logged as an error).
   */
  bool start (GError **error);

  /** engagement_ended:
   * The hook point (one call, on the main context) for an engagement whose
   * files are final (Engagement finished and not detached, or recovered
   * after a crash). @stop_reason 8 (STREAM_REVOKED) or an earlier
   * request_purge() erases it; else its on-finish actions are queued (none
   * configured: nothing happens). Idempotent per directory; nothing is
   * queued (a log line says so) while another node holds its job; a lock
   * that cannot be taken for another reason queues it without the lock
   * (a warning).
   */
  void engagement_ended (const std::string &dir, int stop_reason);

  /** erase:
   * Queues the erasure of @dir (reason "stream-revoked", "operator",
   * "retention"), cancelling its pending actions. Idempotent. When another
   * node holds the job of @dir, nothing is queued here: the erasure is
   * requested from it (<directory name>.erase, carried out at its next
   * adoption scan; retention just skips @dir). Never dropped for a lock
   * error: then queued here without the lock.
   */
  void erase (const std::string &dir, const std::string &reason)
  {
    erase_job (dir, reason, false);
  }

  /** request_purge: erase @dir with reason "operator" once it has ended. */
  void request_purge (const std::string &dir) { purge_after_end_.insert (dir); }

  /** decorate:
   * Adds to an engagement object (Engagement::to_json()) what the queue
   * knows of its directory ("actions", and for an erased one the receipt
   * members and state).
   */
  void decorate (JsonObject *engagement) const;

  /** preserve_members:
   * For writers of engagement.json other than the queue (the Engagement):
   * copies "actions", "erasure", "deleted" and an erased "state" from the
   * file at @path, if any, into @obj (and empties "display_names" of an
   * erased one), so a late rewrite never loses a receipt.
   */
  static void preserve_members (const std::string &path, JsonObject *obj);

  /** engagement_json_mutex:
   * Held across every read-modify-write of an engagement.json that may
   * overlap another: the Engagement's writes on the end-writer thread
   * (preserve_members() and the write) and the queue's on the main
   * context (apply_to_engagement_json()). Without it one writer's copy
   * replaced the other's members: a revocation's receipt kept the stop
   * reason of the stream (21) instead of the webhook's (8).
   * Returns: one of 64 mutexes, chosen by @dir (the engagement directory),
   * so writers of different engagements rarely wait for each other.
   */
  static std::mutex &engagement_json_mutex (const std::string &dir);

  /** sweep_retention: one retention pass (see above); none while another
   * node (or AfterCall) holds <queue_dir>/sweep.retention.lock. Returns:
   * directories queued for erasure. */
  int sweep_retention ();

  /** adopt:
   * One scan of the queue directory (main context; start() runs one, then
   * every kAdoptIntervalS): loads every queue file whose lock this node can
   * take (a job of a node that stopped or died; a task it was running is
   * pending again), logging one line per job, then carries out the erasure
   * requests (<directory name>.erase) of the jobs it holds or can lock.
   * Returns: jobs loaded.
   */
  int adopt ();

  /* seconds between two adoption scans: a job left by a node that died is
   * taken up within this time (plus the NFS lease, on NFS) */
  static const int kAdoptIntervalS = 30;

  /* job locks (open files) one node holds at most (plus the one the worker
   * takes for the step it runs): each pending job holds one, and a store down
   * for a day leaves thousands pending, while the HTTP connection budget
   * (host-http.h default_max_connections(), from RLIMIT_NOFILE) does not
   * count them; past these a job waits without its lock (see "Ownership") */
  static constexpr gsize kMaxLocksHeld = 256;

  /** locks_held: job locks (open files) this node holds. */
  gsize locks_held () const;

  /** pending_tasks: tasks pending or running (all engagements). */
  gsize pending_tasks () const;

  const ActionsConfig &config () const { return cfg_; }

  struct Task;
  struct Deleted;
  struct Job;
  struct Shared;

 private:
  void worker_main ();
  bool run_step (Job &snapshot, gsize task_index, Task *result,
      std::vector<Deleted> *deleted, std::string *log);
  bool persist_locked (const Job &job);
  bool take_lock_locked (const std::string &dir_name, bool *busy, bool *created = nullptr);
  void release_lock_locked (const std::string &dir_name);
  bool load_job_locked (const std::string &dir_name, const char *how);
  int read_job_file (const std::string &dir_name, Job *j) const;
  void insert_job_locked (Job &&j, const char *how);
  void park_over_cap_locked (const std::string &dir_name);
  void finish_if_done (const std::string &dir);
  std::string dir_for (const std::string &dir_name) const;
  bool erase_job (const std::string &dir, const std::string &reason, bool requested,
      gint64 requested_ms = 0, const std::string &requested_by = std::string ());
  static gboolean adopt_cb (gpointer data);
  void post (const std::string &dir);
  static gboolean posted_cb (gpointer data);
  void apply_to_engagement_json (const std::string &dir);
  static gboolean retention_cb (gpointer data);
  void update_pending_gauge_locked () const;

  ActionsConfig cfg_;
  std::string queue_dir_, output_root_;
  IsLive is_live_;
  std::set<std::string> purge_after_end_;
  std::shared_ptr<Shared> shared_;
  std::thread worker_;
  guint retention_id_ = 0, adopt_id_ = 0;
};

/** hook_env_hidden:
 * Whether the environment variable @name is removed from the exec hook's
 * environment: the host's secrets (ZOOM_*, AWS_*, ZOOMRTMS_API_TOKEN,
 * ZOOMRTMS_REDIS_URL with its password, CREDENTIALS_DIRECTORY).
 */
bool hook_env_hidden (const std::string &name);

} // namespace zhost
