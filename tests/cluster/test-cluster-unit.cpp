/* Unit tests of the cluster helpers (host-cluster.h): redis-url parsing, the
 * webhook digest used for fleet-wide de-duplication, the [cluster] config
 * group and the journal's owner list. */
#include "host-cluster.h"
#include "host-common.h"
#include "host-config.h"
#include "host-journal.h"

#include <glib/gstdio.h>
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
