/* Unit tests of the cluster helpers (host-cluster.h): redis-url parsing, the
 * webhook digest used for fleet-wide de-duplication, the [cluster] config
 * group and the journal's owner list; AUTH and the lease renewal script on a
 * real redis-server (loopback, skipped without one). */
#include "host-cluster.h"
#include "host-common.h"
#include "host-config.h"
#include "host-journal.h"

#include <glib/gstdio.h>
#include <gio/gio.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/wait.h>
#include <gtest/gtest.h>

using namespace zhost;

TEST (ClusterUnit, RedisUrl)
{
  RedisUrl u;
  ASSERT_TRUE (parse_redis_url ("redis://10.1.2.3:6380/2", &u, nullptr));
  EXPECT_EQ (u.host, "10.1.2.3");
  EXPECT_EQ (u.port, 6380);
  EXPECT_EQ (u.db, 2);
  EXPECT_TRUE (u.password.empty ());
  ASSERT_TRUE (parse_redis_url ("redis://:s3cret@redis.internal", &u, nullptr));
  EXPECT_EQ (u.host, "redis.internal");
  EXPECT_EQ (u.port, 6379);
  EXPECT_EQ (u.password, "s3cret");
  ASSERT_TRUE (parse_redis_url ("redis://[::1]:7000", &u, nullptr));
  EXPECT_EQ (u.host, "::1");
  EXPECT_EQ (u.port, 7000);
  for (const char *bad : {"http://x:1", "redis://h:0", "redis://h:99999", "redis://h:12a",
           "redis://h:1/x", "redis://[::1", ""}) {
    GError *err = nullptr;
    EXPECT_FALSE (parse_redis_url (bad, &u, &err)) << bad;
    ASSERT_NE (err, nullptr) << bad;
    /* the error never echoes the URL (it may hold a password) */
    EXPECT_EQ (std::string (err->message).find ("s3cret"), std::string::npos);
    g_error_free (err);
  }
}

TEST (ClusterUnit, RedisUrlUserAndEncodedPassword)
{
  RedisUrl u;
  /* a '/', '@' and ':' in a password, percent-encoded */
  ASSERT_TRUE (parse_redis_url ("redis://:p%2Fa%40ss%3Aw@redis.internal:6380/3", &u, nullptr));
  EXPECT_EQ (u.password, "p/a@ss:w");
  EXPECT_TRUE (u.username.empty ());
  EXPECT_EQ (u.host, "redis.internal");
  EXPECT_EQ (u.port, 6380);
  EXPECT_EQ (u.db, 3);
  /* a Redis 6 ACL user */
  ASSERT_TRUE (parse_redis_url ("redis://rec%40der:s3cret%2F@10.0.0.5/1", &u, nullptr));
  EXPECT_EQ (u.username, "rec@der");
  EXPECT_EQ (u.password, "s3cret/");
  EXPECT_EQ (u.host, "10.0.0.5");
  EXPECT_EQ (u.port, 6379);
  EXPECT_EQ (u.db, 1);
  /* a password alone, without ':' */
  ASSERT_TRUE (parse_redis_url ("redis://s3cret@[::1]:7000", &u, nullptr));
  EXPECT_TRUE (u.username.empty ());
  EXPECT_EQ (u.password, "s3cret");
  EXPECT_EQ (u.host, "::1");
  EXPECT_EQ (u.port, 7000);
  for (const char *bad : {"redis://:s3cret%zz@h", "redis://:s3cret%00@h", "redis://:s3cret@h/1?x=1",
           "redis://:s3cret@h:70000", "redis://:s3cret@h/db"}) {
    GError *err = nullptr;
    EXPECT_FALSE (parse_redis_url (bad, &u, &err)) << bad;
    ASSERT_NE (err, nullptr) << bad;
    EXPECT_EQ (std::string (err->message).find ("s3cret"), std::string::npos) << err->message;
    g_error_free (err);
  }
}

/* A real redis-server (loopback, no persistence) with a password and an ACL
 * user: RedisConn authenticates with what the URL gives. */
namespace {

struct RedisServer {
  GPid pid = 0;
  int port = 0;
  explicit RedisServer (const std::vector<std::string> &extra)
  {
    GSocket *s = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
        G_SOCKET_PROTOCOL_TCP, nullptr);
    GInetAddress *lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
    GSocketAddress *a = g_inet_socket_address_new (lo, 0);
    g_socket_bind (s, a, TRUE, nullptr);
    GSocketAddress *b = g_socket_get_local_address (s, nullptr);
    port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (b));
    g_object_unref (b);
    g_object_unref (a);
    g_object_unref (lo);
    g_object_unref (s);
    std::vector<std::string> args = {"redis-server", "--port", std::to_string (port),
        "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"};
    args.insert (args.end (), extra.begin (), extra.end ());
    std::vector<gchar *> argv;
    for (auto &x : args)
      argv.push_back (const_cast<gchar *> (x.c_str ()));
    argv.push_back (nullptr);
    if (!g_spawn_async (nullptr, argv.data (), nullptr, static_cast<GSpawnFlags> (
                G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_DO_NOT_REAP_CHILD),
            nullptr, nullptr, &pid, nullptr))
      pid = 0;
    /* listening: a TCP connect succeeds */
    for (int i = 0; pid && i < 200; i++) {
      GSocketClient *c = g_socket_client_new ();
      GSocketConnection *conn = g_socket_client_connect_to_host (c, "127.0.0.1",
          static_cast<guint16> (port), nullptr, nullptr);
      g_object_unref (c);
      if (conn) {
        g_object_unref (conn);
        break;
      }
      g_usleep (50000);
    }
  }
  ~RedisServer ()
  {
    if (pid) {
      kill (pid, SIGKILL);
      waitpid (pid, nullptr, 0);
      g_spawn_close_pid (pid);
    }
  }
};

/* the reply to @argv over a RedisConn on @url ("" if none came) */
std::string
ask (const std::string &url, const std::vector<std::string> &argv)
{
  RedisUrl u;
  EXPECT_TRUE (parse_redis_url (url, &u, nullptr));
  bool up = false, answered = false;
  std::string answer;
  RedisConn conn ("test", u, [&up] () { up = true; });
  conn.connect ();
  gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
  while (!up && g_get_monotonic_time () < deadline)
    g_main_context_iteration (nullptr, FALSE) || (g_usleep (10000), true);
  if (!up)
    return "";
  conn.command (argv, [&] (redisReply *r) {
    answered = true;
    answer = !r ? "(none)" : r->type == REDIS_REPLY_INTEGER ? std::to_string (r->integer) :
        r->type == REDIS_REPLY_NIL ? "(nil)" :
        std::string (r->str ? r->str : "", r->str ? r->len : 0);
  });
  while (!answered && g_get_monotonic_time () < deadline)
    g_main_context_iteration (nullptr, FALSE) || (g_usleep (10000), true);
  return answer;
}

} // namespace

static bool
have_redis_server ()
{
  g_autofree gchar *p = g_find_program_in_path ("redis-server");
  return p != nullptr;
}

TEST (ClusterUnit, RedisAuthPasswordAndAclUser)
{
  if (!have_redis_server ())
    GTEST_SKIP () << "no redis-server (tools/setup-debian.sh installs it)";
  RedisServer srv ({"--requirepass", "p/a@ss", "--user", "default", "on", ">p/a@ss", "~*",
      "&*", "+@all", "--user", "rec@der", "on", ">ac:l/p@w", "~*", "&*", "+@all"});
  ASSERT_NE (srv.pid, 0);
  std::string hp = "127.0.0.1:" + std::to_string (srv.port);
  /* no password: refused */
  EXPECT_NE (ask ("redis://" + hp, {"ACL", "WHOAMI"}).find ("NOAUTH"), std::string::npos);
  /* AUTH password (the default user) */
  EXPECT_EQ (ask ("redis://:p%2Fa%40ss@" + hp, {"ACL", "WHOAMI"}), "default");
  /* AUTH user password */
  EXPECT_EQ (ask ("redis://rec%40der:ac%3Al%2Fp%40w@" + hp + "/0", {"ACL", "WHOAMI"}), "rec@der");
}

/* The lease renewal (renew_lease_script(), as Cluster::renew_all() runs it)
 * on a real redis-server: a node that stalled past its lease does not take
 * back a stream another node claimed since. */
TEST (ClusterUnit, LeaseRenewalAfterAStall)
{
  if (!have_redis_server ())
    GTEST_SKIP () << "no redis-server (tools/setup-debian.sh installs it)";
  RedisServer srv ({});
  ASSERT_NE (srv.pid, 0);
  std::string url = "redis://127.0.0.1:" + std::to_string (srv.port);
  auto renew = [&url] (const std::string &sid, const std::string &me) {
    return ask (url, {"EVAL", renew_lease_script (), "0", sid, me, "60000", "running",
        "id-" + sid, "dir-" + sid, "1700000000000"});
  };
  /* held by this node: extended */
  ASSERT_EQ (ask (url, {"SET", "zoomrtms:lease:s1", "node-a", "PX", "60000"}), "OK");
  EXPECT_EQ (renew ("s1", "node-a"), "1");
  EXPECT_EQ (ask (url, {"HGET", "zoomrtms:eng:s1", "owner"}), "node-a");
  /* held by another node: refused */
  EXPECT_EQ (renew ("s1", "node-b"), "0");
  EXPECT_EQ (ask (url, {"GET", "zoomrtms:lease:s1"}), "node-a");
  /* node-a stalled, its lease expired; node-b claimed the stream and then
   * released it (detached: owner node-b, no lease): node-a must not take it
   * back */
  ASSERT_EQ (ask (url, {"HSET", "zoomrtms:eng:s2", "owner", "node-b", "state", "detached"}), "2");
  EXPECT_EQ (renew ("s2", "node-a"), "0");
  EXPECT_EQ (ask (url, {"EXISTS", "zoomrtms:lease:s2"}), "0");
  EXPECT_EQ (ask (url, {"HGET", "zoomrtms:eng:s2", "owner"}), "node-b");
  EXPECT_EQ (ask (url, {"HGET", "zoomrtms:eng:s2", "state"}), "detached");
  /* an expired lease whose recorded owner is still this node: taken again */
  ASSERT_EQ (ask (url, {"HSET", "zoomrtms:eng:s3", "owner", "node-a", "state", "running"}), "2");
  EXPECT_EQ (renew ("s3", "node-a"), "1");
  EXPECT_EQ (ask (url, {"GET", "zoomrtms:lease:s3"}), "node-a");
  /* nothing recorded (Redis restarted without its data): taken again */
  EXPECT_EQ (renew ("s4", "node-a"), "1");
  EXPECT_EQ (ask (url, {"GET", "zoomrtms:lease:s4"}), "node-a");
  EXPECT_EQ (ask (url, {"HGET", "zoomrtms:eng:s4", "owner"}), "node-a");
}

TEST (ClusterUnit, WebhookDigest)
{
  rtms::Webhook a;
  a.event = "contact_center.voice_rtms_started";
  a.rtms_stream_id = "s1";
  a.event_ts = 1700000000000;
  a.server_urls_raw = "wss://a";
  rtms::Webhook b = a;
  EXPECT_EQ (webhook_digest (a), webhook_digest (b));
  EXPECT_EQ (webhook_digest (a).size (), 64u);
  b.event_ts++;
  EXPECT_NE (webhook_digest (a), webhook_digest (b));
  b = a;
  b.rtms_stream_id = "s2";
  EXPECT_NE (webhook_digest (a), webhook_digest (b));
  b = a;
  b.event = "contact_center.voice_rtms_stopped";
  EXPECT_NE (webhook_digest (a), webhook_digest (b));
  b = a;
  b.server_urls_raw = "wss://b";
  EXPECT_NE (webhook_digest (a), webhook_digest (b));
  /* fields are separated: "ab"+"c" is not "a"+"bc" */
  b = a;
  a.event = "ab";
  a.rtms_stream_id = "c";
  b.event = "a";
  b.rtms_stream_id = "bc";
  EXPECT_NE (webhook_digest (a), webhook_digest (b));
}

TEST (ClusterUnit, ConfigGroupAndEnvironment)
{
  g_autofree gchar *dir = g_dir_make_tmp ("cluster-unit-XXXXXX", nullptr);
  std::string conf = std::string (dir) + "/host.conf";
  std::string text = "[cluster]\nredis-url=redis://127.0.0.1:7001\nnode-id=n1\n"
      "capacity=12\nlease-ms=4000\n";
  ASSERT_TRUE (g_file_set_contents (conf.c_str (), text.c_str (), -1, nullptr));
  CliOptions cli;
  cli.config_file = conf;
  cli.output_root = std::string (dir) + "/out";
  HostConfig cfg;
  ASSERT_TRUE (resolve_config (cli, {}, {}, &cfg, nullptr));
  EXPECT_EQ (cfg.redis_url, "redis://127.0.0.1:7001");
  EXPECT_EQ (cfg.node_id, "n1");
  EXPECT_EQ (cfg.capacity, 12);
  EXPECT_EQ (cfg.lease_ms, 4000);
  /* cluster mode: the journal lives on the shared output root, even under
   * systemd's StateDirectory= */
  EXPECT_EQ (cfg.state_dir, cli.output_root + "/.state");
  HostConfig cfg2;
  ASSERT_TRUE (resolve_config (cli, {}, {{"ZOOMRTMS_REDIS_URL", "redis://r:1"},
          {"STATE_DIRECTORY", "/var/lib/zoomrtms"}}, &cfg2, nullptr));
  EXPECT_EQ (cfg2.redis_url, "redis://r:1");
  EXPECT_EQ (cfg2.state_dir, cli.output_root + "/.state");
  /* standalone: as before */
  CliOptions cli3;
  cli3.output_root = cli.output_root;
  HostConfig cfg3;
  ASSERT_TRUE (resolve_config (cli3, {}, {{"STATE_DIRECTORY", "/var/lib/zoomrtms"}},
      &cfg3, nullptr));
  EXPECT_TRUE (cfg3.redis_url.empty ());
  EXPECT_EQ (cfg3.state_dir, "/var/lib/zoomrtms/journal");
  text = "[cluster]\ncapacity=0\n";
  ASSERT_TRUE (g_file_set_contents (conf.c_str (), text.c_str (), -1, nullptr));
  HostConfig cfg4;
  GError *err = nullptr;
  EXPECT_FALSE (resolve_config (cli, {}, {}, &cfg4, &err));
  ASSERT_NE (err, nullptr);
  EXPECT_NE (std::string (err->message).find ("capacity"), std::string::npos) << err->message;
  g_error_free (err);
  g_remove (conf.c_str ());
  g_rmdir (dir);
}

TEST (ClusterUnit, JournalOwnersRoundTrip)
{
  g_autofree gchar *dir = g_dir_make_tmp ("cluster-journal-XXXXXX", nullptr);
  Journal j (dir);
  ASSERT_TRUE (j.open (nullptr));
  JournalEntry e;
  e.rtms_stream_id = "stream-1";
  e.directory = std::string (dir) + "/eng";
  e.dir_name = "eng";
  e.owners = {{"a:1", 100}, {"b:2", 200}};
  ASSERT_TRUE (j.write (e, false));
  JournalEntry r;
  ASSERT_TRUE (j.load ("stream-1", &r));
  ASSERT_EQ (r.owners.size (), 2u);
  EXPECT_EQ (r.owners[1].node, "b:2");
  EXPECT_EQ (r.owners[1].since, 200);
  EXPECT_FALSE (j.load ("stream-2", &r));
  j.remove ("stream-1");
  EXPECT_FALSE (j.load ("stream-1", &r));
  g_rmdir (dir);
}
