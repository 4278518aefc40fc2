/* zoomrtms-host — cluster mode on Redis. See host-cluster.h. */
#include "host-cluster.h"

#include "host-common.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/glib.h>

#include <fcntl.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#define GST_CAT_DEFAULT zoomrtms_host_debug

namespace zhost {

static const char *const kStarts = "zoomrtms:starts";
static const char *const kGroup = "hosts";
static const gint64 kStallUs = 3 * G_USEC_PER_SEC;   /* no reply for 3 s: reconnect */
static const int kRetryMs = 500;
static const int kBlockMs = 500;                     /* XREADGROUP BLOCK */
static const gint64 kDedupS = 5400;                  /* Zoom retries for 90 min, §2.6 */
static const gsize kMaxDeferred = 1000;

/* ---- helpers ---------------------------------------------------------- */

bool
parse_redis_url (const std::string &url, RedisUrl *out, GError **error)
{
  /* errors are ours, never GUri's nor a part of the URL: it may hold a
   * password */
  auto fail = [error] (const char *what) {
    g_set_error (error, ZHOST_ERROR, ERROR_CONFIG, "[cluster] redis-url: %s", what);
    return false;
  };
  if (url.find ('\0') != std::string::npos ||
      g_ascii_strncasecmp (url.c_str (), "redis://", 8) != 0) {
    g_set_error (error, ZHOST_ERROR, ERROR_CONFIG,
        "[cluster] redis-url must be redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]");
    return false;
  }
  /* RFC 3986 (GUri): the user information ends at the last '@' of the
   * authority, user and password are percent-decoded, so an encoded '/',
   * '@' or ':' in either is kept */
  g_autofree gchar *user = nullptr, *password = nullptr, *host = nullptr, *path = nullptr,
      *query = nullptr, *fragment = nullptr;
  gint port = -1;
  if (!g_uri_split_with_user (url.c_str (), G_URI_FLAGS_HAS_PASSWORD, nullptr, &user,
          &password, nullptr, &host, &port, &path, &query, &fragment, nullptr))
    return fail ("not a valid URL (bad port, IPv6 host or percent-encoding?)");
  if (query || fragment)
    return fail ("no query or fragment expected");
  RedisUrl r;
  /* "redis://PASSWORD@HOST" (no ':'): the password, as before Redis 6 */
  if (user && !password) {
    r.password = user;
  } else {
    r.username = user ? user : "";
    r.password = password ? password : "";
  }
  if (r.password.size () != strlen (r.password.c_str ()) ||
      r.username.size () != strlen (r.username.c_str ()))
    return fail ("NUL in the user or password");
  if (host && *host)
    r.host = host;
  if (port == 0)
    return fail ("bad port");
  if (port > 0)
    r.port = port;
  std::string db = path && *path ? path + 1 : "";
  if (path && *path && path[0] != '/')
    return fail ("bad database number");
  if (!db.empty ()) {
    if (db.size () > 6 || !std::all_of (db.begin (), db.end (), ::isdigit))
      return fail ("bad database number");
    r.db = atoi (db.c_str ());
    if (r.db > 100000)
      return fail ("bad database number");
  }
  *out = r;
  return true;
}

std::string
webhook_digest (const rtms::Webhook &wh)
{
  g_autoptr (GChecksum) c = g_checksum_new (G_CHECKSUM_SHA256);
  std::string ts = std::to_string (wh.event_ts);
  for (const std::string *s : std::initializer_list<const std::string *> {&wh.event,
           &wh.rtms_stream_id, &ts, &wh.server_urls_raw}) {
    g_checksum_update (c, reinterpret_cast<const guchar *> (s->data ()),
        static_cast<gssize> (s->size ()));
    g_checksum_update (c, reinterpret_cast<const guchar *> ("\n"), 1);
  }
  return g_checksum_get_string (c);
}

static std::string
reply_str (const redisReply *r)
{
  if (r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
          r->type == REDIS_REPLY_ERROR))
    return std::string (r->str, r->len);
  if (r && r->type == REDIS_REPLY_INTEGER)
    return std::to_string (r->integer);
  return "";
}

/* Calls @fn (entry id, fields) for each well-formed entry of a stream's
 * entry array (XREADGROUP / XAUTOCLAIM replies); others are skipped. */
static void
for_each_stream_entry (const redisReply *entries, const std::function<void (
        const std::string &, const std::map<std::string, std::string> &)> &fn)
{
  for (size_t j = 0; entries && entries->type == REDIS_REPLY_ARRAY && j < entries->elements; j++) {
    const redisReply *en = entries->element[j];
    if (en->type != REDIS_REPLY_ARRAY || en->elements != 2)
      continue;
    std::map<std::string, std::string> f;
    const redisReply *kv = en->element[1];
    for (size_t k = 0; kv->type == REDIS_REPLY_ARRAY && k + 1 < kv->elements; k += 2)
      f[reply_str (kv->element[k])] = reply_str (kv->element[k + 1]);
    fn (reply_str (en->element[0]), f);
  }
}

static bool
reply_error (const redisReply *r)
{
  return !r || r->type == REDIS_REPLY_ERROR;
}

static gint64
now_ms ()
{
  return g_get_real_time () / 1000;
}

/* ---- RedisConn -------------------------------------------------------- */

struct PendingReply {
  RedisConn *conn;
  RedisConn::ReplyFn fn;
  std::shared_ptr<bool> alive;  /* false once the RedisConn is gone */
};

RedisConn::RedisConn (std::string name, RedisUrl url, std::function<void ()> on_up)
    : name_ (std::move (name)), url_ (std::move (url)), on_up_ (std::move (on_up))
{
  watchdog_id_ = g_timeout_add (1000, watchdog_cb, this);
}

RedisConn::~RedisConn ()
{
  /* the callbacks of pending commands must not run into a half-destroyed
   * owner */
  *alive_ = false;
  if (retry_id_)
    g_source_remove (retry_id_);
  if (watchdog_id_)
    g_source_remove (watchdog_id_);
  on_up_ = nullptr;
  if (ac_) {
    redisAsyncContext *ac = ac_;
    ac_ = nullptr;
    ac->data = nullptr;
    redisAsyncFree (ac);        /* pending callbacks get NULL */
  }
  if (source_) {
    g_source_destroy (static_cast<GSource *> (source_));
    g_source_unref (static_cast<GSource *> (source_));
  }
}

void
RedisConn::connect ()
{
  if (ac_)
    return;
  redisAsyncContext *ac = redisAsyncConnect (url_.host.c_str (), url_.port);
  if (!ac || ac->err) {
    if (!logged_down_)
      g_warning ("cluster: Redis %s:%d (%s): %s", url_.host.c_str (), url_.port,
          name_.c_str (), ac ? ac->errstr : "out of memory");
    logged_down_ = true;
    if (ac)
      redisAsyncFree (ac);
    schedule_retry ();
    return;
  }
  ac_ = ac;
  ac->data = this;
  redisEnableKeepAlive (&ac->c);
  GSource *s = redis_source_new (ac);
  g_source_attach (s, nullptr);
  source_ = s;
  redisAsyncSetConnectCallback (ac, connect_cb);
  redisAsyncSetDisconnectCallback (ac, disconnect_cb);
  last_progress_us_ = g_get_monotonic_time ();
  pending_ = 0;
  /* AUTH and SELECT go first in the pipeline: replies in order */
  if (!url_.username.empty ()) {
    /* Redis 6+ ACL user */
    const char *argv[] = {"AUTH", url_.username.c_str (), url_.password.c_str ()};
    redisAsyncCommandArgv (ac, nullptr, nullptr, 3, argv, nullptr);
  } else if (!url_.password.empty ()) {
    const char *argv[] = {"AUTH", url_.password.c_str ()};
    redisAsyncCommandArgv (ac, nullptr, nullptr, 2, argv, nullptr);
  }
  if (url_.db != 0) {
    std::string db = std::to_string (url_.db);
    const char *argv[] = {"SELECT", db.c_str ()};
    redisAsyncCommandArgv (ac, nullptr, nullptr, 2, argv, nullptr);
  }
}

void
RedisConn::schedule_retry ()
{
  if (retry_id_)
    return;
  retry_id_ = g_timeout_add (kRetryMs, [] (gpointer d) -> gboolean {
        auto *self = static_cast<RedisConn *> (d);
        self->retry_id_ = 0;
        self->connect ();
        return G_SOURCE_REMOVE;
      }, this);
}

static void
destroy_source_later (void *source)
{
  if (!source)
    return;
  /* hiredis still touches the source in its cleanup after our callback */
  g_idle_add ([] (gpointer d) -> gboolean {
        g_source_destroy (static_cast<GSource *> (d));
        g_source_unref (static_cast<GSource *> (d));
        return G_SOURCE_REMOVE;
      }, source);
}

void
RedisConn::connect_cb (const redisAsyncContext *ac, int status)
{
  auto *self = static_cast<RedisConn *> (ac->data);
  if (!self || self->ac_ != ac)
    return;
  if (status != REDIS_OK) {
    if (!self->logged_down_)
      g_warning ("cluster: cannot connect to Redis %s:%d (%s): %s",
          self->url_.host.c_str (), self->url_.port, self->name_.c_str (), ac->errstr);
    self->logged_down_ = true;
    /* hiredis frees the context after this callback */
    self->ac_ = nullptr;
    destroy_source_later (self->source_);
    self->source_ = nullptr;
    self->up_ = false;
    self->schedule_retry ();
    return;
  }
  self->up_ = true;
  self->last_progress_us_ = g_get_monotonic_time ();
  g_message ("cluster: connected to Redis %s:%d (%s)", self->url_.host.c_str (),
      self->url_.port, self->name_.c_str ());
  self->logged_down_ = false;
  if (self->on_up_)
    self->on_up_ ();
}

void
RedisConn::disconnect_cb (const redisAsyncContext *ac, int status)
{
  auto *self = static_cast<RedisConn *> (ac->data);
  if (!self || self->ac_ != ac)
    return;
  if (self->up_)
    g_warning ("cluster: lost the Redis connection (%s): %s", self->name_.c_str (),
        status == REDIS_OK ? "closed" : ac->errstr);
  self->logged_down_ = true;
  self->ac_ = nullptr;
  self->up_ = false;
  destroy_source_later (self->source_);
  self->source_ = nullptr;
  self->schedule_retry ();
}

void
RedisConn::reply_cb (redisAsyncContext *ac, void *reply, void *priv)
{
  auto *p = static_cast<PendingReply *> (priv);
  if (!*p->alive) {
    delete p;
    return;
  }
  if (p->conn && ac == p->conn->ac_) {
    p->conn->pending_--;
    p->conn->last_progress_us_ = g_get_monotonic_time ();
  }
  if (p->fn)
    p->fn (static_cast<redisReply *> (reply));
  delete p;
}

bool
RedisConn::command (const std::vector<std::string> &argv, ReplyFn fn)
{
  if (!up_ || !ac_)
    return false;
  std::vector<const char *> a;
  std::vector<size_t> l;
  for (const auto &s : argv) {
    a.push_back (s.data ());
    l.push_back (s.size ());
  }
  auto *p = new PendingReply {this, std::move (fn), alive_};
  if (pending_ == 0)
    last_progress_us_ = g_get_monotonic_time ();
  if (redisAsyncCommandArgv (ac_, reply_cb, p, static_cast<int> (a.size ()), a.data (),
          l.data ()) != REDIS_OK) {
    delete p;
    return false;
  }
  pending_++;
  return true;
}

void
RedisConn::lost (const char *why)
{
  if (!ac_)
    return;
  g_warning ("cluster: Redis connection (%s) %s: reconnecting", name_.c_str (), why);
  redisAsyncContext *ac = ac_;
  void *source = source_;
  ac_ = nullptr;                /* our disconnect callback ignores it now */
  source_ = nullptr;
  up_ = false;
  logged_down_ = true;
  /* every pending callback runs with NULL */
  redisAsyncFree (ac);
  destroy_source_later (source);
  schedule_retry ();
}

gboolean
RedisConn::watchdog_cb (gpointer data)
{
  auto *self = static_cast<RedisConn *> (data);
  gint64 now = g_get_monotonic_time ();
  if (self->ac_ && self->pending_ > 0 && now - self->last_progress_us_ > kStallUs +
      kBlockMs * 1000)
    self->lost ("stalled (no reply for 3 s)");
  else if (self->ac_ && !self->up_ && now - self->last_progress_us_ > kStallUs)
    self->lost ("connect timed out");
  return G_SOURCE_CONTINUE;
}

/* ---- Lua scripts (run atomically by Redis) --------------------------- */

/* ARGV: sid, me, kind (start|stop|interrupted|delete), body, now, event_ts.
 * Returns "queued" (a start into the stream), "pending" (a start or
 * interrupted webhook for a live engagement that has no owner right now:
 * kept for the node that takes it over), "self", the owner's node id
 * (message sent to its stream) or "none". */
static const char *const kRouteLua = R"LUA(
local sid, me, kind, body, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local e = 'zoomrtms:eng:' .. sid
local lease = redis.call('GET', 'zoomrtms:lease:' .. sid)
local live = redis.call('SISMEMBER', 'zoomrtms:live', sid) == 1
if not lease and live and (kind == 'start' or kind == 'interrupted') then
  redis.call('HSET', e, 'pending', body)
  return 'pending'
end
if kind == 'start' and not lease then
  redis.call('XADD', 'zoomrtms:starts', 'MAXLEN', '~', '10000', '*', 'kind', 'start',
    'sid', sid, 'body', body, 't', now, 'from', me)
  return 'queued'
end
if kind == 'stop' then
  redis.call('HSET', e, 'stop_ts', ARGV[6])
  if redis.call('TTL', e) < 0 and not lease then redis.call('EXPIRE', e, 7200) end
end
local owner = lease or redis.call('HGET', e, 'owner')
if not owner then return 'none' end
if owner == me then return 'self' end
local msgkind = kind
if kind ~= 'delete' then msgkind = 'webhook' end
redis.call('XADD', 'zoomrtms:node:' .. owner, 'MAXLEN', '~', '10000', '*', 'kind', msgkind,
  'sid', sid, 'body', body, 't', now, 'from', me)
redis.call('EXPIRE', 'zoomrtms:node:' .. owner, 86400)
return owner
)LUA";

/* ARGV: sid, me, lease_ms, now. Returns {1|0, previous owner, stop_ts,
 * {kind, body, …}}: the messages for this engagement that its previous
 * owner never handled (left in its node stream) and a webhook kept while
 * it had no owner, oldest first; they move to the caller. */
static const char *const kClaimLua = R"LUA(
local sid, me = ARGV[1], ARGV[2]
if not redis.call('SET', 'zoomrtms:lease:' .. sid, me, 'NX', 'PX', ARGV[3]) then
  return {0, '', '', {}}
end
local e = 'zoomrtms:eng:' .. sid
local prev = redis.call('HGET', e, 'owner') or ''
local stop = redis.call('HGET', e, 'stop_ts') or ''
local msgs = {}
if prev ~= '' and prev ~= me then
  local nk = 'zoomrtms:node:' .. prev
  for _, en in ipairs(redis.call('XRANGE', nk, '-', '+', 'COUNT', 1000)) do
    local t = {}
    for i = 1, #en[2], 2 do t[en[2][i]] = en[2][i + 1] end
    if t['sid'] == sid then
      msgs[#msgs + 1] = t['kind'] or ''
      msgs[#msgs + 1] = t['body'] or ''
      redis.call('XDEL', nk, en[1])
    end
  end
end
local pending = redis.call('HGET', e, 'pending')
if pending then
  msgs[#msgs + 1] = 'webhook'
  msgs[#msgs + 1] = pending
  redis.call('HDEL', e, 'pending')
end
redis.call('HSET', e, 'owner', me, 'state', 'starting', 'claimed', ARGV[4], 'updated', ARGV[4])
redis.call('PERSIST', e)
redis.call('SADD', 'zoomrtms:live', sid)
return {1, prev, stop, msgs}
)LUA";

/* Compare-and-extend. An expired lease is taken again only while the
 * engagement's recorded owner (zoomrtms:eng:<sid> "owner") is still this
 * node, or none is recorded (Redis was down or restarted and lost it): a
 * node that stalled past its lease must not take back a stream another
 * node has claimed since (and may have released, detached or ended).
 * ARGV: sid, me, lease_ms, state, id, dir_name, now.
 * Returns 1, or 0 when another node holds the lease or owns the engagement
 * (nothing changed; the caller detaches it). */
static const char *const kRenewLua = R"LUA(
local sid, me = ARGV[1], ARGV[2]
local k = 'zoomrtms:lease:' .. sid
local e = 'zoomrtms:eng:' .. sid
local v = redis.call('GET', k)
if v == me then redis.call('PEXPIRE', k, ARGV[3])
elseif not v then
  local owner = redis.call('HGET', e, 'owner')
  if owner and owner ~= me then return 0 end
  redis.call('SET', k, me, 'PX', ARGV[3])
else return 0 end
redis.call('HSET', e, 'owner', me, 'state', ARGV[4], 'id', ARGV[5], 'dir_name', ARGV[6],
  'updated', ARGV[7])
redis.call('PERSIST', e)
redis.call('SADD', 'zoomrtms:live', sid)
return 1
)LUA";

const char *
renew_lease_script ()
{
  return kRenewLua;
}

/* Compare-and-delete. ARGV: sid, me, state (ended|detached), now.
 * detached: a resume is queued for another node. Returns 1, or 0 when
 * another node holds the lease (nothing changed). */
static const char *const kReleaseLua = R"LUA(
local sid, me, state, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local k = 'zoomrtms:lease:' .. sid
local v = redis.call('GET', k)
if v and v ~= me then return 0 end
redis.call('DEL', k)
local e = 'zoomrtms:eng:' .. sid
redis.call('HSET', e, 'owner', me, 'state', state, 'updated', now)
if state == 'ended' then
  redis.call('SREM', 'zoomrtms:live', sid)
  redis.call('EXPIRE', e, 7200)
  redis.call('ZADD', 'zoomrtms:recent', now, sid)
  redis.call('ZREMRANGEBYRANK', 'zoomrtms:recent', 0, -201)
else
  redis.call('SADD', 'zoomrtms:live', sid)
  redis.call('XADD', 'zoomrtms:starts', 'MAXLEN', '~', '10000', '*', 'kind', 'resume',
    'sid', sid, 't', now, 'from', me)
end
return 1
)LUA";

/* A claimed start this node will not run (it is draining): lease released,
 * the start queued again. ARGV: sid, me, body, t. */
static const char *const kRequeueLua = R"LUA(
local sid, me = ARGV[1], ARGV[2]
local k = 'zoomrtms:lease:' .. sid
if redis.call('GET', k) ~= me then return 0 end
redis.call('DEL', k)
redis.call('SREM', 'zoomrtms:live', sid)
redis.call('DEL', 'zoomrtms:eng:' .. sid)
redis.call('XADD', 'zoomrtms:starts', 'MAXLEN', '~', '10000', '*', 'kind', 'start', 'sid', sid,
  'body', ARGV[3], 't', ARGV[4], 'from', me)
return 1
)LUA";

/* A journal entry nobody updates: live again unless someone holds its
 * lease. ARGV: sid. */
static const char *const kAdoptLua = R"LUA(
local sid = ARGV[1]
if redis.call('EXISTS', 'zoomrtms:lease:' .. sid) == 1 then return 0 end
return redis.call('SADD', 'zoomrtms:live', sid)
)LUA";

/* ARGV: max. Live engagements without a lease. */
static const char *const kOrphansLua = R"LUA(
local out = {}
for _, sid in ipairs(redis.call('SMEMBERS', 'zoomrtms:live')) do
  if redis.call('EXISTS', 'zoomrtms:lease:' .. sid) == 0 then
    out[#out + 1] = sid
    if #out >= tonumber(ARGV[1]) then break end
  end
end
return out
)LUA";

/* The fleet: {sid, lease holder, owner, state, id, dir_name} per live
 * engagement, then the 50 last ended ones. */
static const char *const kFleetLua = R"LUA(
local out = {}
local function row(sid)
  local lease = redis.call('GET', 'zoomrtms:lease:' .. sid) or ''
  local h = redis.call('HMGET', 'zoomrtms:eng:' .. sid, 'owner', 'state', 'id', 'dir_name')
  out[#out + 1] = {sid, lease, h[1] or '', h[2] or '', h[3] or '', h[4] or ''}
end
for _, sid in ipairs(redis.call('SMEMBERS', 'zoomrtms:live')) do row(sid) end
for _, sid in ipairs(redis.call('ZREVRANGE', 'zoomrtms:recent', 0, 49)) do
  if redis.call('SISMEMBER', 'zoomrtms:live', sid) == 0 then row(sid) end
end
return out
)LUA";

static std::vector<std::string>
eval (const char *script, std::initializer_list<std::string> args)
{
  std::vector<std::string> v = {"EVAL", script, "0"};
  v.insert (v.end (), args.begin (), args.end ());
  return v;
}

/* ---- Cluster ---------------------------------------------------------- */

Cluster::Cluster (const HostConfig &cfg, std::string node_id, std::string state_dir,
    Hooks hooks)
    : cfg_ (cfg), node_id_ (std::move (node_id)), hooks_ (std::move (hooks))
{
  g_autofree gchar *d = g_build_filename (state_dir.c_str (), "dedup", nullptr);
  dedup_dir_ = d;
  GError *err = nullptr;
  if (!parse_redis_url (cfg_.redis_url, &url_, &err)) {
    /* checked by main.cpp before: keep the defaults */
    g_warning ("%s", err->message);
    g_error_free (err);
  }
}

Cluster::~Cluster ()
{
  if (renew_id_)
    g_source_remove (renew_id_);
  if (scan_id_)
    g_source_remove (scan_id_);
  blk_.reset ();
  cmd_.reset ();
}

void
Cluster::start ()
{
  g_mkdir_with_parents (dedup_dir_.c_str (), 0700);
  g_message ("cluster: node %s, Redis %s:%d, capacity %d engagements, lease %d ms, "
      "shared journal and output root %s", log_safe (node_id_).c_str (),
      url_.host.c_str (), url_.port, cfg_.capacity, cfg_.lease_ms,
      cfg_.output_root.c_str ());
  cmd_ = std::make_unique<RedisConn> ("commands", url_, [this] { on_cmd_up (); });
  blk_ = std::make_unique<RedisConn> ("stream reads", url_, [this] { on_blk_up (); });
  cmd_->connect ();
  blk_->connect ();
  renew_id_ = g_timeout_add (static_cast<guint> (std::max (cfg_.lease_ms / 3, 200)),
      renew_cb, this);
  scan_id_ = g_timeout_add (500, scan_cb, this);
}

bool
Cluster::connected () const
{
  return cmd_ && cmd_->up ();
}

int
Cluster::load () const
{
  return static_cast<int> (hooks_.owned ().size ()) + inflight_;
}

void
Cluster::ensure_groups (std::function<void ()> then)
{
  auto left = std::make_shared<int> (2);
  auto ok = std::make_shared<bool> (true);
  auto done = [this, left, ok, then] (redisReply *r) {
    /* BUSYGROUP: it exists */
    if (!r || (r->type == REDIS_REPLY_ERROR && reply_str (r).rfind ("BUSYGROUP", 0) != 0))
      *ok = false;
    if (--*left == 0) {
      groups_ok_ = *ok;
      if (then)
        then ();
    }
  };
  /* "0": after a restart of a persistent Redis, entries not yet read are
   * still delivered */
  if (!cmd_->command ({"XGROUP", "CREATE", kStarts, kGroup, "0", "MKSTREAM"}, done) ||
      !cmd_->command ({"XGROUP", "CREATE", "zoomrtms:node:" + node_id_, kGroup, "0",
              "MKSTREAM"}, done))
    groups_ok_ = false;
}

void
Cluster::on_cmd_up ()
{
  /* reconcile: our leases first (renew re-acquires expired ones), then
   * wait one lease period before taking orphans, so that every node has
   * re-asserted its own */
  settle_until_us_ = g_get_monotonic_time () + cfg_.lease_ms * 1000;
  ensure_groups ([this] {
        if (blk_ && blk_->up () && !reading_)
          read_loop ();
      });
  renew_all ();
  if (!deferred_.empty ())
    g_message ("cluster: Redis is back: routing %zu webhook(s) handled locally "
        "while it was down", deferred_.size ());
  while (!deferred_.empty ()) {
    auto d = std::move (deferred_.front ());
    deferred_.pop_front ();
    const char *kind = d.first.kind == rtms::Webhook::Kind::STOPPED ? "stop" : "interrupted";
    route (d.first, d.second, kind);
  }
}

void
Cluster::on_blk_up ()
{
  if (groups_ok_ && !reading_)
    read_loop ();
}

void
Cluster::read_loop ()
{
  if (!blk_ || !blk_->up ()) {
    reading_ = false;
    return;
  }
  bool take_starts = !draining_ && load () < cfg_.capacity;
  std::vector<std::string> argv = {"XREADGROUP", "GROUP", kGroup, node_id_, "COUNT",
      "1", "BLOCK", std::to_string (kBlockMs), "STREAMS", "zoomrtms:node:" + node_id_};
  if (take_starts)
    argv.push_back (kStarts);
  argv.push_back (">");
  if (take_starts)
    argv.push_back (">");
  reading_ = blk_->command (argv, [this] (redisReply *r) {
        if (!r) {
          reading_ = false;       /* reconnect restarts the loop */
          return;
        }
        if (r->type == REDIS_REPLY_ERROR) {
          /* NOGROUP: Redis restarted empty */
          GST_INFO ("XREADGROUP: %s", log_safe (reply_str (r)).c_str ());
          reading_ = false;
          g_timeout_add (200, [] (gpointer d) -> gboolean {
                auto *self = static_cast<Cluster *> (d);
                if (self->cmd_->up ())
                  self->ensure_groups ([self] {
                        if (!self->reading_)
                          self->read_loop ();
                      });
                return G_SOURCE_REMOVE;
              }, this);
          return;
        }
        /* [[stream, [[id, [f, v, …]], …]], …] */
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
          redisReply *s = r->element[i];
          if (s->type != REDIS_REPLY_ARRAY || s->elements != 2)
            continue;
          std::string stream = reply_str (s->element[0]);
          for_each_stream_entry (s->element[1], [this, &stream] (const std::string &id,
                  const std::map<std::string, std::string> &f) {
                handle_entry (stream, id, f);
              });
        }
        read_loop ();
      });
}

void
Cluster::handle_entry (const std::string &stream, const std::string &id,
    const std::map<std::string, std::string> &f)
{
  auto get = [&f] (const char *k) {
    auto it = f.find (k);
    return it == f.end () ? std::string () : it->second;
  };
  std::string kind = get ("kind"), sid = get ("sid"), body = get ("body");
  gint64 t = g_ascii_strtoll (get ("t").c_str (), nullptr, 10);
  gint64 waited = t > 0 ? now_ms () - t : -1;
  auto ack = [this, stream, id] {
    cmd_->command ({"XACK", stream, kGroup, id}, nullptr);
    if (stream != kStarts)
      cmd_->command ({"XDEL", stream, id}, nullptr);
  };
  if (stream != kStarts) {
    /* a message for the owner */
    ack ();
    if (kind == "delete") {
      g_message ("cluster: DELETE of stream %s forwarded by %s",
          log_safe (sid).c_str (), log_safe (get ("from")).c_str ());
      if (hooks_.stop)
        hooks_.stop (sid);
      return;
    }
    rtms::Webhook wh;
    GError *err = nullptr;
    if (!rtms::parse_webhook (body.data (), body.size (), &wh, &err)) {
      g_warning ("cluster: unreadable forwarded webhook: %s", err->message);
      g_error_free (err);
      return;
    }
    g_message ("cluster: %s for stream %s forwarded by %s (%" G_GINT64_FORMAT " ms)",
        log_safe (wh.event).c_str (), log_safe (sid).c_str (),
        log_safe (get ("from")).c_str (), waited);
    hooks_.process (wh);
    return;
  }
  if (kind == "start") {
    rtms::Webhook wh;
    GError *err = nullptr;
    if (!rtms::parse_webhook (body.data (), body.size (), &wh, &err)) {
      g_warning ("cluster: unreadable queued start: %s", err->message);
      g_error_free (err);
      ack ();
      return;
    }
    /* an RTMS stream must be joined within ≈1 min (docs/protocol.md §2.6):
     * a start queued for longer than the rejoin window is not joinable */
    if (waited > static_cast<gint64> (cfg_.rejoin_window_s) * 1000) {
      g_warning ("cluster: start of stream %s queued for %" G_GINT64_FORMAT " ms: too "
          "late to join, dropped", log_safe (sid).c_str (), waited);
      ack ();
      return;
    }
    inflight_++;
    std::string t_str = get ("t");
    claim (sid, "start", [this, wh, ack, waited, sid, body, t_str] (bool ok,
        const std::string &prev, gint64 stop_ts, const Pending &) {
          inflight_--;
          ack ();
          if (!ok) {
            GST_INFO ("start of %s: another node owns it", log_safe (sid).c_str ());
            return;
          }
          if (draining_) {
            g_message ("cluster: draining: the start of stream %s goes back to the queue",
                log_safe (sid).c_str ());
            cmd_->command (eval (kRequeueLua, {sid, node_id_, body, t_str}), nullptr);
            return;
          }
          if (stop_ts > 0 && stop_ts >= wh.event_ts) {
            g_message ("cluster: start of stream %s: already stopped, not started",
                log_safe (sid).c_str ());
            ended (sid);
            return;
          }
          stats_.claimed++;
          g_message ("cluster: claimed the start of stream %s (dispatch: queued %"
              G_GINT64_FORMAT " ms) at %" G_GINT64_FORMAT, log_safe (sid).c_str (),
              waited, now_ms ());
          if (!hooks_.start (wh))
            ended (sid);
          else
            renew_all (sid);    /* directory and state into the fleet view now */
        });
    return;
  }
  if (kind == "resume") {
    inflight_++;
    claim (sid, "resume", [this, ack, sid, waited] (bool ok, const std::string &prev,
        gint64 stop_ts, const Pending &pending) {
          inflight_--;
          ack ();
          if (!ok)
            return;
          if (draining_) {
            detached (sid);     /* hand it on */
            return;
          }
          stats_.taken_over++;
          g_message ("cluster: took over stream %s from %s (hand-off, queued %"
              G_GINT64_FORMAT " ms) at %" G_GINT64_FORMAT, log_safe (sid).c_str (),
              log_safe (prev).c_str (), waited, now_ms ());
          if (!hooks_.take_over (sid, stop_ts > 0))
            ended (sid);
          else
            took_over (sid, pending);
        });
    return;
  }
  ack ();
}

void
Cluster::claim (const std::string &sid, const std::string &kind,
    std::function<void (bool, const std::string &, gint64, const Pending &)> fn)
{
  bool sent = cmd_->command (eval (kClaimLua, {sid, node_id_,
          std::to_string (cfg_.lease_ms), std::to_string (now_ms ())}),
      [fn] (redisReply *r) {
        if (reply_error (r) || r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
          if (r && r->type == REDIS_REPLY_ERROR)
            g_warning ("cluster: claim: %s", log_safe (reply_str (r)).c_str ());
          fn (false, "", 0, {});
          return;
        }
        Pending pending;
        redisReply *m = r->element[3];
        for (size_t i = 0; m->type == REDIS_REPLY_ARRAY && i + 1 < m->elements; i += 2)
          pending.push_back ({reply_str (m->element[i]), reply_str (m->element[i + 1])});
        fn (r->element[0]->integer == 1, reply_str (r->element[1]),
            g_ascii_strtoll (reply_str (r->element[2]).c_str (), nullptr, 10), pending);
      });
  if (!sent)
    fn (false, "", 0, {});
}

void
Cluster::took_over (const std::string &sid, const Pending &pending)
{
  renew_all (sid);              /* directory and state into the fleet view now */
  for (const auto &m : pending) {
    if (m.first == "delete") {
      g_message ("cluster: a DELETE of stream %s its previous owner never handled: "
          "handled now", log_safe (sid).c_str ());
      if (hooks_.stop)
        hooks_.stop (sid);
      continue;
    }
    rtms::Webhook wh;
    if (!rtms::parse_webhook (m.second.data (), m.second.size (), &wh, nullptr) ||
        wh.rtms_stream_id != sid)
      continue;
    g_message ("cluster: %s for stream %s that its previous owner never handled: "
        "handled now", log_safe (wh.event).c_str (), log_safe (sid).c_str ());
    hooks_.process (wh);
  }
}

void
Cluster::submit (const rtms::Webhook &wh, const std::string &body)
{
  const char *kind = wh.kind == rtms::Webhook::Kind::STARTED ? "start" :
      wh.kind == rtms::Webhook::Kind::STOPPED ? "stop" :
      wh.kind == rtms::Webhook::Kind::INTERRUPTED ? "interrupted" : nullptr;
  if (!kind) {
    GST_INFO ("webhook %s ignored", log_safe (wh.event).c_str ());
    return;
  }
  std::string digest = webhook_digest (wh);
  bool sent = cmd_ && cmd_->command ({"SET", "zoomrtms:dedup:" + digest, node_id_, "NX",
          "EX", std::to_string (kDedupS)},
      [this, wh, body, kind, digest] (redisReply *r) {
        if (!r) {
          local_fallback (wh, body);
          return;
        }
        if (r->type == REDIS_REPLY_NIL) {
          stats_.duplicates++;
          g_message ("cluster: duplicate %s for stream %s ignored (fleet-wide)",
              log_safe (wh.event).c_str (), log_safe (wh.rtms_stream_id).c_str ());
          return;
        }
        route (wh, body, kind);
      });
  if (!sent)
    local_fallback (wh, body);
}

void
Cluster::route (const rtms::Webhook &wh, const std::string &body, const char *kind)
{
  std::string k = kind;
  bool sent = cmd_->command (eval (kRouteLua, {wh.rtms_stream_id, node_id_, kind, body,
          std::to_string (now_ms ()), std::to_string (wh.event_ts)}),
      [this, wh, body, k] (redisReply *r) {
        if (!r || r->type == REDIS_REPLY_ERROR) {
          if (r)
            g_warning ("cluster: route: %s", log_safe (reply_str (r)).c_str ());
          local_fallback (wh, body);
          return;
        }
        std::string where = reply_str (r);
        if (where == "queued") {
          stats_.queued++;
          g_message ("cluster: start of stream %s queued at %" G_GINT64_FORMAT,
              log_safe (wh.rtms_stream_id).c_str (), now_ms ());
        } else if (where == "pending") {
          g_message ("cluster: %s for stream %s, which has no owner right now: kept "
              "for the node that takes it over", log_safe (wh.event).c_str (),
              log_safe (wh.rtms_stream_id).c_str ());
        } else if (where == "self" || where == "none") {
          hooks_.process (wh);
        } else {
          stats_.forwarded++;
          g_message ("cluster: %s for stream %s sent to its owner %s",
              log_safe (wh.event).c_str (), log_safe (wh.rtms_stream_id).c_str (),
              log_safe (where).c_str ());
        }
      });
  if (!sent)
    local_fallback (wh, body);
}

bool
Cluster::local_dedup (const std::string &digest)
{
  /* the shared output root stands in for Redis: O_EXCL is atomic there
   * too (NFSv3+, docs/deploying.md) */
  g_autofree gchar *p = g_build_filename (dedup_dir_.c_str (), digest.c_str (), nullptr);
  int fd = g_open (p, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0)
    return errno != EEXIST;     /* cannot tell: process it */
  close (fd);
  return true;
}

void
Cluster::local_fallback (const rtms::Webhook &wh, const std::string &body)
{
  if (!local_dedup (webhook_digest (wh))) {
    stats_.duplicates++;
    g_message ("cluster: Redis down: duplicate %s for stream %s ignored (shared "
        "output root)", log_safe (wh.event).c_str (), log_safe (wh.rtms_stream_id).c_str ());
    return;
  }
  stats_.local_fallback++;
  g_warning ("cluster: Redis unreachable: %s for stream %s handled on this node",
      log_safe (wh.event).c_str (), log_safe (wh.rtms_stream_id).c_str ());
  bool mine = false;
  for (const auto &o : hooks_.owned ())
    mine = mine || o.rtms_stream_id == wh.rtms_stream_id;
  if (wh.kind != rtms::Webhook::Kind::STARTED && !mine) {
    /* its owner is elsewhere: route it when Redis is back */
    if (deferred_.size () < kMaxDeferred)
      deferred_.push_back ({wh, body});
    return;
  }
  hooks_.process (wh);
}

std::string
Cluster::forward_stop (const std::string &sid)
{
  std::string owner, real_sid;
  for (const auto &row : fleet_)
    if ((row.rtms_stream_id == sid || row.id == sid || row.dir_name == sid) && row.lease) {
      owner = row.owner;
      real_sid = row.rtms_stream_id;
    }
  if (owner.empty () || !connected ())
    return "";
  cmd_->command (eval (kRouteLua, {real_sid, node_id_, "delete", "",
          std::to_string (now_ms ()), "0"}), [this, real_sid] (redisReply *r) {
        if (reply_str (r) == "self" && hooks_.stop)
          hooks_.stop (real_sid);
      });
  stats_.forwarded++;
  return owner;
}

void
Cluster::ended (const std::string &sid)
{
  handed_off_.erase (sid);
  if (!cmd_ || !cmd_->command (eval (kReleaseLua, {sid, node_id_, "ended",
              std::to_string (now_ms ())}), nullptr))
    g_message ("cluster: Redis down: the end of stream %s is not recorded in Redis "
        "(its lease expires)", log_safe (sid).c_str ());
}

void
Cluster::detached (const std::string &sid)
{
  handed_off_.insert (sid);
  if (!cmd_ || !cmd_->command (eval (kReleaseLua, {sid, node_id_, "detached",
              std::to_string (now_ms ())}), [sid] (redisReply *r) {
            if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1)
              g_message ("cluster: stream %s handed off (lease released, resume queued)",
                  log_safe (sid).c_str ());
          }))
    g_warning ("cluster: Redis down: stream %s detached, its lease expires and "
        "another node takes it from the shared journal", log_safe (sid).c_str ());
}

void
Cluster::drain (int timeout_ms, std::function<void ()> done)
{
  draining_ = true;
  drain_deadline_us_ = g_get_monotonic_time () + static_cast<gint64> (timeout_ms) * 1000;
  drain_done_ = std::move (done);
}

void
Cluster::check_drain ()
{
  if (!draining_ || !drain_done_ || !hooks_.owned ().empty ())
    return;
  bool timeout = g_get_monotonic_time () > drain_deadline_us_;
  bool all_taken = true;
  for (const auto &sid : handed_off_) {
    bool taken = false;
    for (const auto &row : fleet_)
      if (row.rtms_stream_id == sid && row.lease && row.owner != node_id_)
        taken = true;
    all_taken = all_taken && taken;
  }
  if (all_taken || timeout) {
    if (!all_taken)
      g_warning ("cluster: drain: %zu engagement(s) not taken by another node yet; "
          "exiting (they stay in the shared journal for the fleet)", handed_off_.size ());
    else
      g_message ("cluster: drain complete: every engagement has another owner");
    auto fn = std::move (drain_done_);
    drain_done_ = nullptr;
    fn ();
  }
}

void
Cluster::renew_all (const std::string &only)
{
  if (!connected ())
    return;
  for (const auto &o : hooks_.owned ()) {
    std::string sid = o.rtms_stream_id;
    if (!only.empty () && sid != only)
      continue;
    cmd_->command (eval (kRenewLua, {sid, node_id_, std::to_string (cfg_.lease_ms),
            o.state, o.id_value, o.dir_name, std::to_string (now_ms ())}),
        [this, sid] (redisReply *r) {
          if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
            g_warning ("cluster: another node holds the lease of stream %s: "
                "detaching it here", log_safe (sid).c_str ());
            if (hooks_.lease_lost)
              hooks_.lease_lost (sid);
          }
        });
  }
  if (only.empty ())
    cmd_->command ({"HSET", "zoomrtms:nodes", node_id_, std::to_string (now_ms ())}, nullptr);
}

gboolean
Cluster::renew_cb (gpointer data)
{
  static_cast<Cluster *> (data)->renew_all ();
  return G_SOURCE_CONTINUE;
}

void
Cluster::scan ()
{
  gint64 now = g_get_monotonic_time ();
  if (!connected ()) {
    /* prune the fallback dedup files older than Zoom's retry horizon */
    if (now - last_prune_us_ > 60 * G_USEC_PER_SEC) {
      last_prune_us_ = now;
      g_autoptr (GDir) d = g_dir_open (dedup_dir_.c_str (), 0, nullptr);
      while (const gchar *n = d ? g_dir_read_name (d) : nullptr) {
        g_autofree gchar *p = g_build_filename (dedup_dir_.c_str (), n, nullptr);
        GStatBuf st;
        if (g_stat (p, &st) == 0 && g_get_real_time () / G_USEC_PER_SEC - st.st_mtime > kDedupS)
          g_remove (p);
      }
    }
    check_drain ();
    return;
  }
  if (blk_ && blk_->up () && !reading_ && groups_ok_)
    read_loop ();
  cmd_->command (eval (kFleetLua, {}), [this] (redisReply *r) {
        if (reply_error (r) || r->type != REDIS_REPLY_ARRAY)
          return;
        std::vector<FleetRow> v;
        for (size_t i = 0; i < r->elements; i++) {
          redisReply *e = r->element[i];
          if (e->type != REDIS_REPLY_ARRAY || e->elements != 6)
            continue;
          FleetRow row;
          row.rtms_stream_id = reply_str (e->element[0]);
          std::string lease = reply_str (e->element[1]);
          row.lease = !lease.empty ();
          row.owner = row.lease ? lease : reply_str (e->element[2]);
          row.state = reply_str (e->element[3]);
          row.id = reply_str (e->element[4]);
          row.dir_name = reply_str (e->element[5]);
          if (!row.lease && row.state != "ended")
            row.state = row.state == "detached" ? "detached" : "orphaned";
          v.push_back (std::move (row));
        }
        fleet_ = std::move (v);
        check_drain ();
      });
  int room = cfg_.capacity - load ();
  if (draining_ || room <= 0 || now < settle_until_us_)
    return;
  /* journal entries of a node that died while Redis was down or empty */
  if (hooks_.stale_entries && now - last_journal_scan_us_ > 5 * G_USEC_PER_SEC) {
    last_journal_scan_us_ = now;
    for (const auto &sid : hooks_.stale_entries (2 * static_cast<gint64> (cfg_.lease_ms)))
      cmd_->command (eval (kAdoptLua, {sid}), [sid] (redisReply *r) {
            if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1)
              g_message ("cluster: journal entry of stream %s has no owner: "
                  "offered for takeover", log_safe (sid).c_str ());
          });
  }
  /* starts read by a node that died before acknowledging them */
  cmd_->command ({"XAUTOCLAIM", kStarts, kGroup, node_id_,
          std::to_string (2 * cfg_.lease_ms), "0-0", "COUNT", "10"}, [this] (redisReply *r) {
        if (reply_error (r) || r->type != REDIS_REPLY_ARRAY || r->elements < 2)
          return;
        for_each_stream_entry (r->element[1], [this] (const std::string &id,
                const std::map<std::string, std::string> &f) {
              g_message ("cluster: start %s left unacknowledged by a node that died: "
                  "claimed", id.c_str ());
              handle_entry (kStarts, id, f);
            });
      });
  cmd_->command (eval (kOrphansLua, {std::to_string (room)}), [this] (redisReply *r) {
        if (reply_error (r) || r->type != REDIS_REPLY_ARRAY)
          return;
        for (size_t i = 0; i < r->elements; i++) {
          std::string sid = reply_str (r->element[i]);
          if (draining_ || load () >= cfg_.capacity)
            break;
          inflight_++;
          claim (sid, "takeover", [this, sid] (bool ok, const std::string &prev,
              gint64 stop_ts, const Pending &pending) {
                inflight_--;
                if (!ok)
                  return;
                if (draining_) {
                  detached (sid);
                  return;
                }
                stats_.taken_over++;
                g_message ("cluster: took over stream %s from %s (lease expired) at %"
                    G_GINT64_FORMAT, log_safe (sid).c_str (), log_safe (prev).c_str (),
                    now_ms ());
                if (!hooks_.take_over (sid, stop_ts > 0))
                  ended (sid);
                else
                  took_over (sid, pending);
              });
        }
      });
}

gboolean
Cluster::scan_cb (gpointer data)
{
  static_cast<Cluster *> (data)->scan ();
  return G_SOURCE_CONTINUE;
}

} // namespace zhost
