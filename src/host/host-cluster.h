/* zoomrtms-host — cluster mode: a fleet of hosts on one Redis 7 (issue 10).
 *
 * Enabled by `[cluster] redis-url` (or ZOOMRTMS_REDIS_URL); without it the
 * host is standalone and nothing here runs. docs/deploying.md describes the
 * fleet (load balancer, Redis, the shared output root, failures).
 *
 * Redis I/O: libhiredis's async API on the host's main context (its GLib
 * adapter), two connections: one for commands, one for the blocking
 * XREADGROUP. No call blocks the main context; a connection whose replies
 * stall for 3 s is dropped and reconnected every 500 ms.
 *
 * Keys (prefix "zoomrtms:"):
 *   dedup:<sha256>  SET NX EX 5400 per verified webhook (event,
 *                   rtms_stream_id, event_ts, server_urls): Zoom retries for
 *                   90 min (docs/protocol.md §2.6)
 *   starts          stream of work: {kind start, sid, body (the verified
 *                   webhook), t (epoch ms queued), from} and {kind resume,
 *                   sid, t, from} (a drained engagement); consumer group
 *                   "hosts", one consumer per node
 *   node:<id>       stream of messages for the owner (same group name):
 *                   {kind webhook|delete, sid, body, t, from}
 *   lease:<sid>     the owner's node id, SET NX PX lease-ms, renewed every
 *                   lease-ms/3 by a compare-and-extend script
 *   eng:<sid>       hash: owner, state (starting|live|detached|ended), id,
 *                   dir_name, updated, claimed, stop_ts (a stop webhook seen),
 *                   pending (a start / interrupted webhook that arrived while
 *                   the engagement had no owner: handled by the next one)
 *   live            set of the rtms_stream_ids of live engagements
 *   recent          sorted set (by end time) of the last 200 ended ones
 *
 * Takeover: an engagement in `live` without a lease is an orphan (its owner
 * died or drained); a node under its capacity claims it (SET NX), takes the
 * messages for it that the previous owner never read from its node stream, and
 * continues it from the journal on the shared output root (host-journal.h,
 * Engagement::start's resume path). Redis unreachable: the owned calls go
 * on, webhooks are deduplicated through files on the shared output root
 * and processed locally; on reconnect every node re-asserts its leases and
 * re-registers its engagements before anyone looks for orphans; journal
 * entries nobody updates any more (their owner died while Redis was down
 * or empty) are put back in `live` for a takeover.
 */
#pragma once

#include "host-config.h"

#include "rtms-auth.h"

#include <glib.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

struct redisAsyncContext;
struct redisReply;

namespace zhost {

/* A redis://[[user]:password@]host[:port][/db] URL. */
struct RedisUrl {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string username;         /* Redis 6+ ACL user; empty: AUTH password */
  std::string password;         /* never logged */
  int db = 0;
};

/** parse_redis_url:
 * redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] (RFC 3986 through GUri; IPv6
 * hosts in brackets). USER and PASSWORD are percent-decoded (a '/', '@' or
 * ':' in them is written %2F, %40, %3A); "redis://PASSWORD@HOST" (no ':')
 * is a password alone. With USER the connection sends AUTH USER PASSWORD
 * (Redis 6+ ACL), else AUTH PASSWORD.
 * Returns: false with ZHOST_ERROR_CONFIG (no "redis://", bad port, db or
 * encoding); the message never quotes the URL.
 */
bool parse_redis_url (const std::string &url, RedisUrl *out, GError **error);

/** webhook_digest:
 * Returns: the hex SHA-256 of what makes two deliveries the same webhook:
 * event, rtms_stream_id, event_ts, server_urls (docs/protocol.md §2.6).
 */
std::string webhook_digest (const rtms::Webhook &wh);

/** renew_lease_script: the Lua script (EVAL, 0 keys) a node renews the
 * lease of one of its engagements with; ARGV and replies in
 * host-cluster.cpp. Exposed for tests. */
const char *renew_lease_script ();

/* One async hiredis connection attached to the thread-default main context,
 * reconnecting by itself. */
class RedisConn {
 public:
  /* reply: NULL when the connection failed before an answer */
  using ReplyFn = std::function<void (redisReply *reply)>;

  RedisConn (std::string name, RedisUrl url, std::function<void ()> on_up);
  ~RedisConn ();
  RedisConn (const RedisConn &) = delete;
  RedisConn &operator= (const RedisConn &) = delete;

  void connect ();
  bool up () const { return up_; }
  /** command: false (and @fn never called) when not connected. */
  bool command (const std::vector<std::string> &argv, ReplyFn fn);

 private:
  static void connect_cb (const redisAsyncContext *ac, int status);
  static void disconnect_cb (const redisAsyncContext *ac, int status);
  static void reply_cb (redisAsyncContext *ac, void *reply, void *priv);
  static gboolean watchdog_cb (gpointer data);
  void lost (const char *why);
  void schedule_retry ();

  std::string name_;
  RedisUrl url_;
  std::function<void ()> on_up_;
  redisAsyncContext *ac_ = nullptr;
  void *source_ = nullptr;      /* the adapter's GSource */
  bool up_ = false;
  bool logged_down_ = false;
  guint retry_id_ = 0, watchdog_id_ = 0;
  int pending_ = 0;
  gint64 last_progress_us_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool> (true);
};

class Cluster {
 public:
  /* What an engagement of this node looks like to the fleet. */
  struct Owned {
    std::string rtms_stream_id, id_value, dir_name, state;
  };
  struct Hooks {
    /* a start claimed from the stream (or taken locally while Redis is
     * down): start recording; false if nothing was started */
    std::function<bool (const rtms::Webhook &wh)> start;
    /* continue engagement @sid from the shared journal (takeover or
     * hand-off); @stopped: a stop webhook was seen meanwhile (finalize, do
     * not rejoin); false if there is nothing to continue */
    std::function<bool (const std::string &sid, bool stopped)> take_over;
    /* a verified webhook this node must handle locally */
    std::function<void (const rtms::Webhook &wh)> process;
    /* DELETE /engagements forwarded to this node */
    std::function<void (const std::string &sid)> stop;
    /* another node holds the lease of @sid: stop recording it (detach) */
    std::function<void (const std::string &sid)> lease_lost;
    /* this node's live engagements */
    std::function<std::vector<Owned> ()> owned;
    /* rtms_stream_ids of journal entries on the shared root that nobody
     * has updated for @stale_ms and that are inside the rejoin window */
    std::function<std::vector<std::string> (gint64 stale_ms)> stale_entries;
  };

  /* One row of GET /engagements' "fleet". */
  struct FleetRow {
    std::string rtms_stream_id, id, dir_name, owner, state;
    bool lease = false;
  };

  Cluster (const HostConfig &cfg, std::string node_id, std::string state_dir,
      Hooks hooks);
  ~Cluster ();

  /** start: connects (asynchronously) and starts the timers. */
  void start ();

  const std::string &node_id () const { return node_id_; }
  bool connected () const;

  /** submit:
   * A verified webhook (answered 200 already), @body its raw bytes.
   * De-duplicates it fleet-wide, then: a start goes to the stream (or to the
   * owner when the stream is live); stop / interrupted go to the owner
   * (recorded on the engagement for a takeover). Redis down: deduplicated on
   * the shared output root and handled here.
   */
  void submit (const rtms::Webhook &wh, const std::string &body);

  /** forward_stop:
   * DELETE /engagements/{@sid} for an engagement another node owns.
   * Returns: the owner it was sent to, "" when unknown or Redis is down.
   */
  std::string forward_stop (const std::string &sid);

  /** ended / detached:
   * The engagement @sid stopped (lease released, removed from `live`) or
   * was detached for a drain (lease released, a resume queued for another
   * node). */
  void ended (const std::string &sid);
  void detached (const std::string &sid);

  /** drain:
   * SIGTERM: claim nothing more; @done runs once every engagement handed
   * off with detached() has another owner, or after @timeout_ms.
   */
  void drain (int timeout_ms, std::function<void ()> done);

  /** fleet: the last fleet snapshot (refreshed every second). */
  const std::vector<FleetRow> &fleet () const { return fleet_; }

  /* figures since start (logged, /engagements "cluster") */
  struct Stats {
    guint64 duplicates = 0, queued = 0, claimed = 0, taken_over = 0,
        forwarded = 0, local_fallback = 0;
  };
  const Stats &stats () const { return stats_; }

 private:
  void on_cmd_up ();
  void on_blk_up ();
  void ensure_groups (std::function<void ()> then);
  void read_loop ();
  void handle_entry (const std::string &stream, const std::string &id,
      const std::map<std::string, std::string> &f);
  /* (kind "webhook" | "delete", body) messages a claim moved to this node */
  using Pending = std::vector<std::pair<std::string, std::string>>;
  void claim (const std::string &sid, const std::string &kind,
      std::function<void (bool ok, const std::string &prev, gint64 stop_ts,
          const Pending &pending)> fn);
  /* after a takeover: fleet view updated, the messages the previous owner
   * never handled (and a webhook kept meanwhile) handled here */
  void took_over (const std::string &sid, const Pending &pending);
  void route (const rtms::Webhook &wh, const std::string &body, const char *kind);
  void local_fallback (const rtms::Webhook &wh, const std::string &body);
  bool local_dedup (const std::string &digest);
  /* @only: one rtms_stream_id, "" = every engagement of this node */
  void renew_all (const std::string &only = "");
  void scan ();
  void check_drain ();
  int load () const;
  static gboolean renew_cb (gpointer data);
  static gboolean scan_cb (gpointer data);

  HostConfig cfg_;
  std::string node_id_;
  std::string dedup_dir_;
  Hooks hooks_;
  RedisUrl url_;
  std::unique_ptr<RedisConn> cmd_, blk_;
  guint renew_id_ = 0, scan_id_ = 0;
  bool reading_ = false;
  bool groups_ok_ = false;
  gint64 settle_until_us_ = 0;  /* no orphan scan before (after a reconnect) */
  int inflight_ = 0;            /* claims being started */
  bool draining_ = false;
  gint64 drain_deadline_us_ = 0;
  std::set<std::string> handed_off_;
  std::function<void ()> drain_done_;
  /* non-start webhooks handled locally while Redis was down, for streams
   * this node does not own: routed when it returns (bounded) */
  std::deque<std::pair<rtms::Webhook, std::string>> deferred_;
  std::vector<FleetRow> fleet_;
  gint64 last_prune_us_ = 0;
  gint64 last_journal_scan_us_ = 0;
  Stats stats_;
};

} // namespace zhost
