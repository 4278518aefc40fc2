/* zoomrtms-host — the daemon: HTTP server (webhooks, health, engagements API)
 * and the engagement registry keyed by rtms_stream_id.
 *
 * Rules: docs/protocol.md §2.4–§2.6 (url_validation, x-zm-signature,
 * idempotent delivery) and §4.9 (failover); gstreamer-guide.md §3.3 (one main
 * context runs the SoupServer and every bus watch). Webhooks are answered at
 * once; the work runs from an idle source on the main context.
 *
 * Endpoints:
 *   POST /webhook, POST /api/webhooks/zoom   Zoom webhooks
 *   GET  /health                             {"status" ("ok"; "degraded" when the output root
 *                                            is not writable or has less than [health]
 *                                            min-free-bytes free, when the storage of a live
 *                                            engagement or of one that ran out of space still
 *                                            is, or once a start was refused by
 *                                            max-engagements; "shutting_down"), "reasons"
 *                                            (why degraded, for people), "storage"
 *                                            {"writable","freeBytes","minFreeBytes"},
 *                                            "activeEngagements","refusedEngagements","timestamp"}, plus
 *                                            "engagements" (ids) for callers allowed below
 *   GET  /engagements[?limit=N]              {"engagements":[the live ones (engagement.json +
 *                                            "live"), then up to N (default 100, at most 1000)
 *                                            finished ones read from the output root, newest
 *                                            first (host-history.h)], "live", "history",
 *                                            "more" (older ones left out)}
 *   The /engagements API needs `Authorization: Bearer <[http] api-token>` (401
 *   otherwise); without a token it answers loopback clients only (403).
 *   GET  /engagements/{id}                   one engagement.json + "live" (id = engagement id,
 *                                            meeting uuid, directory name or rtms_stream_id;
 *                                            one a previous host recorded: from disk)
 *   DELETE /engagements/{id}                 graceful stop (EOS) → 202
 *   DELETE /engagements/{id}?purge=true      operator erasure (host-actions.h): a live one is
 *                                            stopped, then erased; a finished one (also one a
 *                                            previous host left: id = its directory name) is
 *                                            erased → 202 with the engagement object
 *   GET  /, /status…, /metrics               status page and Prometheus metrics
 *                                            (host-status.h), the same access rule
 *
 * Cluster mode ([cluster] redis-url, host-cluster.h): webhooks are answered
 * 200 and handed to Cluster::submit (fleet-wide dedup, starts queued, the
 * rest sent to the owner); GET /engagements adds "node" and "fleet" (every
 * live engagement of the fleet: rtms_stream_id, id, directory, owner,
 * state, lease); GET /engagements/{id} of an engagement another node owns
 * answers its engagement.json plus "owner"; DELETE of one is sent to its
 * owner (202, "forwarded_to"); SIGTERM drains (detach, release, requeue, exit
 * once every engagement has another owner). The cluster part of the daemon
 * is in host-cluster-daemon.cpp.
 */
#pragma once

#include "host-actions.h"
#include "host-cluster.h"
#include "host-config.h"
#include "host-engagement.h"
#include "host-http.h"
#include "host-journal.h"
#include "host-template.h"

#include "rtms-auth.h"

#include <libsoup/soup.h>

#include <functional>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

namespace zhost {

class StatusService;

class Daemon {
 public:
  /* SIGHUP: re-reads the configuration and the pipeline files into @cfg and
   * @templates; false with the error when something is broken (main.cpp). */
  using Reloader = std::function<bool (HostConfig *cfg,
      std::shared_ptr<const TemplateStore> *templates, GError **error)>;

  Daemon (HostConfig cfg, std::shared_ptr<const TemplateStore> templates);
  ~Daemon ();

  void set_reloader (Reloader r) { reloader_ = std::move (r); }

  /** start:
   * Opens the journal of live engagements in state-dir (host-journal.h)
   * and, before listening, rejoins every engagement a previous host left
   * inside Zoom's grace window (rejoin-window-s from its last journal
   * update or its detach; docs/protocol.md §4.9 row 2: ≈60 s), continuing
   * its recording; entries outside it are finalized (parts merged,
   * "recovered", the interruption recorded as lost). Repairs engagements
   * left "running" by a killed host without a journal entry, raises the soft
   * RLIMIT_NOFILE to the hard limit, listens on address:port through
   * HttpFrontend (host-http.h: backlog, connection cap, request timeout, body
   * limit), installs SIGINT/SIGTERM (detach) and SIGHUP (reload) handlers
   * and writes the ready file ({"port":N}). Returns: false with
   * ZHOST_ERROR_CONFIG (address not an IP) or ZHOST_ERROR_IO (cannot create
   * the output root, bind or listen; a state directory that cannot be
   * created is an error in the log, and the host records without a
   * journal), or a
   * G_FILE_ERROR (the ready file cannot be written).
   */
  bool start (GError **error);

  /** run:
   * Runs the main loop until shutdown completes. Returns: the exit status (0).
   */
  int run ();

  /** shutdown:
   * SIGTERM / SIGINT (a restart, an upgrade: design.md "Lifetimes: detach
   * is not stop"): stops accepting new engagements (503), DETACHES every
   * pipeline (no msg 21: Zoom holds each stream for its grace window, the
   * next host rejoins it from the journal), waits for their EOS up to
   * stop-timeout-ms (files finalized, journal entries "detached"), then
   * quits the main loop. A second call forces NULL.
   */
  void shutdown ();

  /** reload:
   * SIGHUP: runs the Reloader; on success new engagements use the new
   * configuration and pipeline files (live ones keep theirs: each holds a
   * copy of its template); settings that need a restart (address, port,
   * output-root, state-dir, HTTP limits, [actions], [upload], [retention])
   * are kept and named in the log. On failure the error is logged and the
   * old set kept.
   * Returns: whether the new set is in use.
   */
  bool reload ();

  int port () const { return port_; }

 private:
  static void webhook_cb (SoupServer *server, SoupServerMessage *msg,
      const char *path, GHashTable *query, gpointer data);
  static void health_cb (SoupServer *server, SoupServerMessage *msg,
      const char *path, GHashTable *query, gpointer data);
  static void engagements_cb (SoupServer *server, SoupServerMessage *msg,
      const char *path, GHashTable *query, gpointer data);
  static void default_cb (SoupServer *server, SoupServerMessage *msg,
      const char *path, GHashTable *query, gpointer data);
  static gboolean signal_cb (gpointer data);
  static gboolean sighup_cb (gpointer data);
  static gboolean shutdown_timeout_cb (gpointer data);

  void handle_webhook (SoupServerMessage *msg);
  /* SOUP_STATUS_OK if @msg may use the management API: with [http] api-token,
   * `Authorization: Bearer <token>` (constant-time compare) else 401; without,
   * a loopback peer with no Forwarded / X-Forwarded-For / X-Real-IP header,
   * else 403. */
  guint api_allowed (SoupServerMessage *msg) const;
  void process (const rtms::Webhook &wh);
  void on_started (const rtms::Webhook &wh);
  void on_stopped (const rtms::Webhook &wh);
  void on_interrupted (const rtms::Webhook &wh);
  void on_finished (Engagement *e);
  Engagement *find_any (const std::string &id);
  std::string engagement_dir_name (const std::string &id_value);
  EngagementParams base_params (const PipelineTemplate &tmpl) const;
  void repair_left_over (const std::set<std::string> &skip);
  /* The storage problems /health reports (host-health.h): the output root,
   * live engagements' directories on other file systems, and directories
   * of engagements that ran out of space while theirs still is short.
   * @names: name engagements (else "an engagement"). */
  std::vector<std::string> storage_problems (bool names, bool *root_writable,
      guint64 *root_free);
  static gboolean storage_check_cb (gpointer data);
  void resume_journal ();
  void maybe_quit ();
  /* cluster mode (host-cluster-daemon.cpp) */
  bool cluster_mode () const { return !cfg_.redis_url.empty (); }
  void start_cluster ();
  bool take_over (const std::string &rtms_stream_id);
  EngagementParams params_from_journal (const JournalEntry &e,
      const PipelineTemplate &tmpl) const;
  void cluster_finished (Engagement *e);
  void cluster_engagements_json (JsonBuilder *b) const;
  /* /engagements/{@id} of an engagement another node owns (@local: the
   * local match, may be NULL or finished): GET answers its engagement.json
   * from the shared root plus "owner"; DELETE is sent to the owner (202,
   * "forwarded_to"). Returns: false when the local answer stands. */
  bool cluster_remote (SoupServerMessage *msg, const std::string &id, Engagement *local);

  HostConfig cfg_;
  std::shared_ptr<const TemplateStore> templates_;
  Reloader reloader_;
  std::unique_ptr<Journal> journal_;
  /* issue 13: on-finish actions, their queue, erasure, retention */
  std::unique_ptr<AfterCall> after_;
  void after_call_ended (const std::string &dir, int stop_reason);
  /* A stopped webhook with stop reason 8 (STREAM_REVOKED, docs/protocol.md
   * §2.7) for a stream this process does not know: a call that ended before
   * this host started, or that another node of a fleet recorded. Looks at
   * the directories named after its id (at most kRevocationLookup) for an
   * engagement.json of that rtms_stream_id in a final state; records the
   * stop reason and erases it. Returns: whether one was found. */
  bool erase_ended_on_disk (const rtms::Webhook &wh);
  static const int kRevocationLookup = 64;
  /* DELETE /engagements/{id}?purge=true (@e NULL: not in memory) */
  void purge (SoupServerMessage *msg, Engagement *e, const std::string &id);
  guint64 refused_ = 0;             /* starts refused by max-engagements */
  /* engagements that ended with a full disk: directory → name, until
   * their storage has room again (bounded: kMaxLowSpaceDirs) */
  std::map<std::string, std::string> low_space_dirs_;
  std::string root_problem_;        /* the last one logged, "" = fine */
  guint storage_timer_id_ = 0;
  guint64 reloads_ = 0, reload_failures_ = 0;
  /* (rtms_stream_id, event_ts) of interrupted webhooks handled (§2.6) */
  std::map<std::string, std::set<gint64>> interrupted_seen_;
  /* streams a previous host left and nobody rejoined: rtms_stream_id →
   * engagement directory (their stopped webhook, reason 19, lands there) */
  std::map<std::string, std::string> lost_;
  SoupServer *server_ = nullptr;
  std::unique_ptr<HttpFrontend> http_;
  std::unique_ptr<StatusService> status_;   /* host-status.h */
  GMainLoop *loop_ = nullptr;
  int port_ = 0;
  bool shutting_down_ = false;
  int pending_starts_ = 0;
  std::set<std::string> pending_stream_ids_;  /* starts accepted, not yet processed */
  guint sigint_id_ = 0, sigterm_id_ = 0, sighup_id_ = 0, shutdown_timeout_id_ = 0;
  std::map<std::string, std::unique_ptr<Engagement>> active_;  /* by rtms_stream_id */
  std::vector<std::unique_ptr<Engagement>> finished_;
  std::string node_id_;                      /* cluster mode */
  std::unique_ptr<Cluster> cluster_;
  bool drained_ = false;                     /* cluster drain complete */
  std::set<std::string> lease_lost_;         /* detached because another node owns them */
};

/** json_response:
 * Sets @status and a JSON body on @msg.
 */
void json_response (SoupServerMessage *msg, guint status, const std::string &body);

/** product_from_name: "meeting", "webinar", … (the journal's "product");
 * anything else is contact_center. */
rtms::Product product_from_name (const std::string &name);

} // namespace zhost
