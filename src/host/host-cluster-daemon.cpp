/* zoomrtms-host — the daemon's cluster mode (issue 10): the glue between
 * Daemon and Cluster (host-cluster.h). See host-daemon.h. */
#include "host-daemon.h"

#include "host-common.h"
#include "host-ogg.h"

#include "rtms-json.h"

#include <glib/gstdio.h>

#define GST_CAT_DEFAULT zoomrtms_host_debug

namespace zhost {

EngagementParams
Daemon::params_from_journal (const JournalEntry &e, const PipelineTemplate &tmpl) const
{
  EngagementParams p = base_params (tmpl);
  p.event = e.event;
  p.event_ts = e.event_ts;
  p.product = product_from_name (e.product);
  p.id_key = e.id_key;
  p.id_value = e.id_value;
  p.rtms_stream_id = e.rtms_stream_id;
  p.server_urls = e.server_urls;
  p.dir = e.directory;
  p.dir_name = e.dir_name;
  p.resume = e;
  return p;
}

void
Daemon::start_cluster ()
{
  node_id_ = cfg_.node_id.empty () ?
      std::string (g_get_host_name ()) + ":" + std::to_string (port_) : cfg_.node_id;
  if (!journal_)
    g_warning ("error: cluster mode without a journal: engagements of this node "
        "cannot be taken over by another");
  Cluster::Hooks h;
  h.start = [this] (const rtms::Webhook &wh) {
    if (shutting_down_)
      return false;
    on_started (wh);
    return active_.count (wh.rtms_stream_id) > 0;
  };
  h.take_over = [this] (const std::string &sid, bool stopped) {
    if (stopped) {
      JournalEntry e;
      if (journal_ && journal_->load (sid, &e)) {
        const PipelineTemplate *tmpl = templates_->find (e.pipeline);
        g_message ("cluster: stream %s was stopped while it had no owner: "
            "finalized, not rejoined", log_safe (sid).c_str ());
        Engagement::finalize_unrejoined (e, journal_.get (),
            tmpl ? ogg_opus_encoder_settings (tmpl->text) : "");
      }
      return false;
    }
    return take_over (sid);
  };
  h.process = [this] (const rtms::Webhook &wh) { process (wh); };
  h.stop = [this] (const std::string &sid) {
    auto it = active_.find (sid);
    if (it != active_.end () && it->second->active ())
      it->second->stop ("api", -1);
  };
  h.lease_lost = [this] (const std::string &sid) {
    auto it = active_.find (sid);
    if (it == active_.end ())
      return;
    lease_lost_.insert (sid);
    it->second->detach ();
  };
  h.owned = [this] {
    std::vector<Cluster::Owned> v;
    for (const auto &kv : active_) {
      if (lease_lost_.count (kv.first))
        continue;
      const auto &p = kv.second->params ();
      v.push_back ({p.rtms_stream_id, p.id_value, p.dir_name,
          kv.second->state () == Engagement::State::STARTING ? "starting" : "live"});
    }
    return v;
  };
  h.stale_entries = [this] (gint64 stale_ms) {
    std::vector<std::string> v;
    if (!journal_)
      return v;
    gint64 now_s = g_get_real_time () / G_USEC_PER_SEC;
    g_autoptr (GDir) d = g_dir_open (cfg_.state_dir.c_str (), 0, nullptr);
    while (const gchar *n = d ? g_dir_read_name (d) : nullptr) {
      if (!g_str_has_suffix (n, ".json"))
        continue;
      /* the owner rewrites its entry every second: only old files are read */
      g_autofree gchar *p = g_build_filename (cfg_.state_dir.c_str (), n, nullptr);
      GStatBuf st;
      if (g_stat (p, &st) != 0 || (now_s - st.st_mtime) * 1000 < stale_ms ||
          now_s - st.st_mtime > cfg_.rejoin_window_s)
        continue;
      JournalEntry e;
      /* the file name is the sanitized id: read the real one */
      g_autoptr (JsonParser) parser = json_parser_new ();
      JsonNode *root = rtms::json_load_file (parser, p, file_json_limits (), nullptr);
      if (!root || !JSON_NODE_HOLDS_OBJECT (root) ||
          !e.from_json (json_node_get_object (root)) || active_.count (e.rtms_stream_id))
        continue;
      gint64 since = e.detached > 0 ? e.detached : e.updated;
      if (g_get_real_time () / 1000 - since < stale_ms)
        continue;
      v.push_back (e.rtms_stream_id);
    }
    return v;
  };
  cluster_ = std::make_unique<Cluster> (cfg_, node_id_, cfg_.state_dir, std::move (h));
  cluster_->start ();
}

bool
Daemon::take_over (const std::string &sid)
{
  if (active_.count (sid))
    return true;
  JournalEntry e;
  if (!journal_ || !journal_->load (sid, &e)) {
    g_warning ("cluster: stream %s has no readable journal entry in %s: nothing "
        "to continue", log_safe (sid).c_str (), cfg_.state_dir.c_str ());
    return false;
  }
  gint64 now_ms = g_get_real_time () / 1000;
  gint64 since = e.detached > 0 ? e.detached : e.updated;
  gint64 age_ms = now_ms - since;
  const PipelineTemplate *tmpl = templates_->find (e.pipeline);
  bool in_window = age_ms < static_cast<gint64> (cfg_.rejoin_window_s) * 1000 &&
      tmpl && g_file_test (e.directory.c_str (), G_FILE_TEST_IS_DIR);
  if (!in_window) {
    g_warning ("cluster: engagement %s was left %" G_GINT64_FORMAT " ms ago%s: "
        "finalized, not rejoined", e.dir_name.c_str (), age_ms,
        tmpl ? "" : " (its pipeline is gone)");
    Engagement::finalize_unrejoined (e, journal_.get (),
        tmpl ? ogg_opus_encoder_settings (tmpl->text) : "");
    lost_[sid] = e.directory;
    return false;
  }
  auto eng = std::make_unique<Engagement> (params_from_journal (e, *tmpl),
      [this] (Engagement *x) { on_finished (x); });
  Engagement *raw = eng.get ();
  active_[sid] = std::move (eng);
  GError *err = nullptr;
  if (!raw->start (&err)) {
    g_warning ("cluster: engagement %s could not be continued: %s", e.dir_name.c_str (),
        err ? err->message : "?");
    g_clear_error (&err);
    auto again = active_.find (sid);
    if (again != active_.end () && again->second.get () == raw) {
      finished_.push_back (std::move (again->second));
      active_.erase (again);
    }
    /* a pipeline that failed at PLAYING finished itself (never merged twice) */
    if (!raw->finishing ()) {
      Engagement::finalize_unrejoined (e, journal_.get (),
          ogg_opus_encoder_settings (tmpl->text));
      lost_[sid] = e.directory;
    }
    return false;
  }
  g_message ("cluster: continuing engagement %s (left %" G_GINT64_FORMAT " ms ago by %s)",
      e.dir_name.c_str (), age_ms, e.owners.empty () ? "?" :
      log_safe (e.owners.back ().node).c_str ());
  return true;
}

void
Daemon::cluster_finished (Engagement *e)
{
  const std::string sid = e->params ().rtms_stream_id;
  if (e->state () == Engagement::State::DETACHED) {
    if (lease_lost_.erase (sid))
      return;                   /* another node owns it */
    cluster_->detached (sid);
    return;
  }
  if (!active_.count (sid))
    cluster_->ended (sid);
}

void
Daemon::cluster_engagements_json (JsonBuilder *b) const
{
  json_builder_set_member_name (b, "node");
  json_builder_add_string_value (b, node_id_.c_str ());
  json_builder_set_member_name (b, "redis");
  json_builder_add_string_value (b, cluster_->connected () ? "connected" : "unreachable");
  json_builder_set_member_name (b, "fleet");
  json_builder_begin_array (b);
  for (const auto &r : cluster_->fleet ()) {
    json_builder_begin_object (b);
    auto str = [b] (const char *k, const std::string &v) {
      json_builder_set_member_name (b, k);
      json_builder_add_string_value (b, v.c_str ());
    };
    str ("rtms_stream_id", r.rtms_stream_id);
    str ("id", r.id);
    str ("directory", r.dir_name);
    str ("owner", r.owner);
    str ("state", r.state);
    json_builder_set_member_name (b, "lease");
    json_builder_add_boolean_value (b, r.lease);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  const auto &st = cluster_->stats ();
  json_builder_set_member_name (b, "cluster");
  json_builder_begin_object (b);
  auto num = [b] (const char *k, guint64 v) {
    json_builder_set_member_name (b, k);
    json_builder_add_int_value (b, static_cast<gint64> (v));
  };
  num ("duplicates", st.duplicates);
  num ("queued", st.queued);
  num ("claimed", st.claimed);
  num ("taken_over", st.taken_over);
  num ("forwarded", st.forwarded);
  num ("local_fallback", st.local_fallback);
  json_builder_end_object (b);
}

bool
Daemon::cluster_remote (SoupServerMessage *msg, const std::string &id, Engagement *local)
{
  if (local && local->active ())
    return false;
  const Cluster::FleetRow *row = nullptr;
  for (const auto &r : cluster_->fleet ())
    if (r.rtms_stream_id == id || r.id == id || r.dir_name == id)
      row = &r;
  if (!row || !row->lease || row->owner == node_id_)
    return false;
  const char *method = soup_server_message_get_method (msg);
  g_autoptr (JsonBuilder) b = json_builder_new ();
  guint status = SOUP_STATUS_OK;
  if (g_str_equal (method, SOUP_METHOD_DELETE)) {
    std::string owner = cluster_->forward_stop (id);
    if (owner.empty ())
      return false;
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "forwarded_to");
    json_builder_add_string_value (b, owner.c_str ());
    json_builder_end_object (b);
    status = SOUP_STATUS_ACCEPTED;
  } else if (g_str_equal (method, SOUP_METHOD_GET)) {
    /* the owner's engagement.json on the shared root (a name from Redis:
     * used only if it is a plain directory name) */
    g_autoptr (JsonParser) parser = json_parser_new ();
    JsonNode *root = nullptr;
    if (!row->dir_name.empty () && row->dir_name.find ('/') == std::string::npos &&
        row->dir_name[0] != '.') {
      g_autofree gchar *p = g_build_filename (cfg_.output_root.c_str (),
          row->dir_name.c_str (), "engagement.json", nullptr);
      root = rtms::json_load_file (parser, p, file_json_limits (), nullptr);
    }
    JsonObject *o = root && JSON_NODE_HOLDS_OBJECT (root) ?
        json_object_ref (json_node_get_object (root)) : json_object_new ();
    json_object_set_string_member (o, "owner", row->owner.c_str ());
    json_object_set_string_member (o, "fleet_state", row->state.c_str ());
    json_object_set_string_member (o, "rtms_stream_id", row->rtms_stream_id.c_str ());
    g_autoptr (JsonNode) n = json_node_new (JSON_NODE_OBJECT);
    json_node_take_object (n, o);
    json_response (msg, SOUP_STATUS_OK, json_to_compact (n));
    return true;
  } else {
    return false;
  }
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_response (msg, status, json_to_compact (root));
  return true;
}

} // namespace zhost
