/* zoomrtms-host — the journal of live engagements (issue 9, design.md
 * "Lifetimes: detach is not stop").
 *
 * One JSON file per live engagement in the state directory
 * (`[host] state-dir`; default $STATE_DIRECTORY/journal under systemd, else
 * <output-root>/.state), named after the sanitized rtms_stream_id
 * (sanitize_engagement_id(): no '/', '.', so it stays in the directory) +
 * ".json", written atomically (temporary file + rename; see "Durability"
 * below). It holds what a restarted host needs to rejoin
 * the stream inside Zoom's grace window (docs/protocol.md §4.9 rows 2–3:
 * signaling ≈60 s) and continue the same recording: ids, server_urls,
 * product, event, pipeline, directory, the RTMS timeline (origin, rate,
 * channels, samples recorded), the parts and the packet log. Never a secret:
 * the client secret and the handshake signature stay in the config / are
 * recomputed (the signature is HMAC(client secret), docs/protocol.md §3.2).
 *
 * Format (version 1), every member always present:
 *   {"version":1, "state":"live"|"detached",
 *    "id_key":"engagement_id", "id_value":"…", "rtms_stream_id":"…",
 *    "server_urls":"wss://…", "product":"contact_center", "event":"…",
 *    "event_ts":epoch ms, "pipeline":"record-wav",
 *    "directory":"/abs/dir", "dir_name":"…",
 *    "outputs":["audio.wav"]         file names (in directory) of the sinks,
 *    "parts":N                        earlier parts per output (<stem>.partK<.ext>),
 *    "timeline_origin":epoch ms|-1, "rate":Hz|0, "channels":N|0,
 *    "samples":timeline position (samples at rate) of the end of the audio
 *              recorded so far (all parts),
 *    "packet_log":"/abs/….plog"|"", "generation":N (pipelines run so far),
 *    "start_time":epoch ms, "updated":epoch ms (last write),
 *    "detached":epoch ms|0,
 *    "interruptions":[{"cause","start","end","silence_ms"}…],
 *    "owners":[{"node","since":epoch ms}…]  cluster mode (host-cluster.h):
 *              each node that recorded a part, in order; [] standalone}
 *
 * Durability (what survives what). A restarted host reads the entry to
 * rejoin and continue the recording; a process crash (SIGKILL, abort) keeps
 * the page cache, so every write, fsync or not, is seen whole by the next
 * host: the rename is atomic, a reader finds the old entry or the new one.
 * fsync only matters for a power cut (or a kernel crash), and costs a
 * journal commit: at 200 engagements one fsync per engagement per second
 * was 14 % of the host's CPU (docs/benchmarks.md, "A cheaper journal tick").
 * So:
 *   - state transitions are durable (write (e, true)): the entry created
 *     (pipeline running), the timeline known, an interruption, a failover
 *     (new server_urls), the detach. Each writes a temporary file, fsyncs
 *     it, links it as the copy NAME.json.durable and renames it over the
 *     entry (both names, one inode), then fsyncs the directory: once
 *     write() returns, entry and copy are on disk.
 *   - removal (the engagement finished): the unlinks, then an fsync of the
 *     directory, so that a power cut does not bring a finished engagement
 *     back for the next host to rejoin.
 *   - the once-a-second update (samples recorded, "updated") is atomic but
 *     not durable (write (e, false), no fsync): the swap file NAME.json.swap
 *     (the entry's previous inode) is rewritten in place and exchanged with
 *     the entry (renameat2 RENAME_EXCHANGE; a plain rename where there is
 *     none, e.g. NFS). No inode is created per update: a new temporary file
 *     each second cost more (ext4 inode allocation) than its fsync. The
 *     inode shared with the copy is never rewritten in place. After a power
 *     cut the entry may be this update, an older state or unreadable;
 *     load() / load_all() then use the .durable copy when the entry is
 *     unreadable or older ("updated") than it: never older than the last
 *     state transition, though its "samples" and "updated" may be old. The resume path loses
 *     nothing it needs: with a WAV output the position is read from the
 *     WAV files (EngagementDir::recorded_samples()), and a power cut longer
 *     than the rejoin window (60 s) ends in finalize_unrejoined(), which
 *     repairs the WAV headers from the files, not from "samples". Only an
 *     output without WAV resumes at the copy's "samples" (silence fills the
 *     gap, as for any interruption).
 * Temporary files are NAME.json.tmp-XXXXXX and NAME.json.durable.new (a
 * crash mid-write leaves one); remove() deletes them with the entry, the
 * copy and the swap file. None of these names end in ".json".
 *
 * In cluster mode the state directory is on the output root the fleet
 * shares, so the node that takes an engagement over reads its entry and
 * replays its packet log (docs/deploying.md).
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include <string>
#include <vector>

namespace zhost {

/* One interruption of a recording: cause "host-restart" (SIGTERM, detach),
 * "host-crash" (SIGKILL, no detach), "media", "signaling" (the element's
 * zoomrtms/interruption); start/end wall clock epoch ms (end 0 = not over,
 * -1 = never resumed); silence_ms: the silence the recording holds for it
 * (-1 = not known yet / not measurable for this output format). */
struct Interruption {
  std::string cause;
  gint64 start = 0;
  gint64 end = 0;
  gint64 silence_ms = -1;
  bool recovered = true;
};

/* One owner of a fleet engagement (cluster mode): the node id and when it
 * started recording its part (epoch ms). */
struct Owner {
  std::string node;
  gint64 since = 0;
};

struct JournalEntry {
  std::string state = "live";          /* "live" or "detached" */
  std::string id_key, id_value, rtms_stream_id;
  std::string server_urls, product, event, pipeline;
  gint64 event_ts = 0;
  std::string directory, dir_name;
  std::vector<std::string> outputs;
  int parts = 0;
  gint64 timeline_origin = -1;
  int rate = 0, channels = 0;
  guint64 samples = 0;
  std::string packet_log;
  int generation = 1;
  gint64 start_time = 0, updated = 0, detached = 0;
  std::vector<Interruption> interruptions;
  std::vector<Owner> owners;

  /** to_json: Returns: (transfer full) the journal object (format above). */
  JsonNode *to_json () const;
  /** from_json:
   * Returns: false if @o lacks rtms_stream_id, directory or dir_name, or
   * has another version; other members take their defaults when absent.
   */
  bool from_json (JsonObject *o);
};

/* Interruption list ↔ JSON array (also used for engagement.json). */
void interruptions_to_json (const std::vector<Interruption> &v, JsonBuilder *b);
std::vector<Interruption> interruptions_from_json (JsonArray *a);
/* Owner list ↔ JSON array (also used for engagement.json). */
void owners_to_json (const std::vector<Owner> &v, JsonBuilder *b);
std::vector<Owner> owners_from_json (JsonArray *a);

class Journal {
 public:
  /* @dir: the state directory (created 0700 by open()). */
  explicit Journal (std::string dir) : dir_ (std::move (dir)) {}

  /** open:
   * Creates the state directory (mode 0700: the journal names calls).
   * Returns: false with ZHOST_ERROR_IO.
   */
  bool open (GError **error);

  /** write:
   * Stores @e (sets e.updated to now) atomically: a temporary file renamed
   * over the entry. @durable (state transitions, see "Durability" above):
   * also the .durable copy, fsynced, file and directory; the periodic
   * position update passes false: the swap file exchanged, no fsync.
   * Returns: false (logged) when a file cannot be written.
   */
  bool write (JournalEntry &e, bool durable);

  /** remove: deletes the entry of @rtms_stream_id and its packet logs. */
  void remove (const std::string &rtms_stream_id);

  /** load:
   * Reads the entry of @rtms_stream_id into @out; when the entry is
   * unreadable, its .durable copy.
   * Returns: false (not logged) when neither is readable.
   */
  bool load (const std::string &rtms_stream_id, JournalEntry *out) const;

  /** load_all:
   * Returns: every readable entry; unreadable files are logged and moved
   * aside as NAME.broken (never deleted: they may be needed by hand), and
   * their .durable copy, if readable, is returned in their place.
   */
  std::vector<JournalEntry> load_all ();

  /** packet_log_path:
   * Returns: the packet log of generation @gen of @rtms_stream_id,
   * <dir>/<key>.<gen>.plog.
   */
  std::string packet_log_path (const std::string &rtms_stream_id, int gen) const;

  /** remove_packet_logs:
   * Deletes the packet logs of @rtms_stream_id except @keep (a path, may
   * be empty).
   */
  void remove_packet_logs (const std::string &rtms_stream_id,
      const std::string &keep = "");

  const std::string &dir () const { return dir_; }

 private:
  std::string entry_path (const std::string &rtms_stream_id) const;
  std::string dir_;
};

} // namespace zhost
