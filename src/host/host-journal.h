/* zoomrtms-host — the journal of live engagements (issue 9, design.md
 * "Lifetimes: detach is not stop").
 *
 * One JSON file per live engagement in the state directory
 * (`[host] state-dir`; default $STATE_DIRECTORY/journal under systemd, else
 * <output-root>/.state), named after the sanitized rtms_stream_id
 * (sanitize_engagement_id(): no '/', '.', so it stays in the directory) +
 * ".json", written atomically (a file exchanged with the entry; see
 * "Durability" below), with a durable copy of its last state transition
 * beside it ("The durable copy"). It holds what a restarted host needs to rejoin
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
 * host: the entry is replaced by a rename, a reader finds the old entry or
 * the new one. fsync only matters for a power cut (or a kernel crash), and
 * costs a journal commit: at 200 engagements one fsync per engagement per
 * second was 14 % of the host's CPU (docs/benchmarks.md, "A cheaper journal
 * tick"). So:
 *   - state transitions are durable (write (e, true)): the entry created
 *     (pipeline running), the timeline known, an interruption, a failover
 *     (new server_urls), the detach. Each first writes the entry's text
 *     into its durable copy NAME.json.slots ("The durable copy" below: in
 *     place, fdatasync, no new inode), then the entry as the periodic
 *     update does: once write() returns, the copy is on disk. When a write
 *     creates a name (the entry's first write creates NAME.json and the
 *     copy), the directory is fsynced too: at once for write(), within
 *     100 ms for submit() (group commit, "The writer thread").
 *   - removal (the engagement finished): the unlinks, then an fsync of the
 *     directory, so that a power cut does not bring a finished engagement
 *     back for the next host to rejoin.
 *   - the once-a-second update (samples recorded, "updated") is atomic but
 *     not durable (write (e, false), no fsync): the swap file NAME.json.swap
 *     (the entry's previous inode) is rewritten in place and exchanged with
 *     the entry (renameat2 RENAME_EXCHANGE; a plain rename where there is
 *     none, e.g. NFS). No inode is created per update: a new temporary file
 *     each second cost more (ext4 inode allocation) than its fsync. After a
 *     power cut the entry may be this update, an older state or
 *     unreadable; load() / load_all() then use the durable copy when the
 *     entry is unreadable or older ("updated") than it: never older than
 *     the last state transition, though its "samples" and "updated" may be
 *     old. The resume path loses
 *     nothing it needs: with a WAV output the position is read from the
 *     WAV files (EngagementDir::recorded_samples()), and a power cut longer
 *     than the rejoin window (60 s) ends in finalize_unrejoined(), which
 *     repairs the WAV headers from the files, not from "samples". Only an
 *     output without WAV resumes at the copy's "samples" (silence fills the
 *     gap, as for any interruption).
 *
 * The durable copy (NAME.json.slots, format 1). Two slots, at byte offsets
 * 0 and S (the slot size, a multiple of 4096, at least twice the record
 * when the file was made). Each slot is one record:
 *   "zoomrtms-journal-slot 1 S SEQ LEN SHA256\n" + LEN bytes (the entry's
 *   JSON text, as in NAME.json)
 * SEQ counts the records of the file (1, 2, …); SHA256 is the lowercase hex
 * SHA-256 of the header up to it ("zoomrtms-journal-slot 1 S SEQ LEN ")
 * followed by the LEN bytes. A state transition rewrites the slot that does
 * not hold the newest valid record, in place, with SEQ + 1, and fdatasyncs
 * the file: a torn write (power cut mid-write) fails its checksum and the
 * other slot, the previous transition, is read. That is as durable as a new
 * file fsynced and renamed over the copy, without the inode, the renames
 * and the directory fsync (docs/benchmarks.md "The journal's fixed costs
 * per engagement"). The reader (journal_slots_parse()) tries every offset
 * that is a multiple of 4096 (slot 0's header may be the torn one), takes
 * the valid records, and the newest one that is an entry wins. A record
 * bigger than the file's slots goes into a new file (temporary file,
 * fsynced, renamed over the copy, directory fsynced). Hosts before this
 * format kept the copy as NAME.json.durable, a hard link of the entry of
 * the last transition: it is still read (an entry of an older host; in a
 * fleet of mixed versions the newer of the two by "updated" is the copy),
 * never written in place (the swap file is replaced when its inode has
 * another name), and unlinked by this version's next durable write.
 * Temporary files are NAME.json.tmp-XXXXXX (a crash mid-write leaves one);
 * remove() deletes them with the entry, the copy, the swap file and an
 * older version's NAME.json.durable(.new). None of these names end in
 * ".json".
 *
 * The writer thread (issue 12: 1,000 engagements started within 5 s). A
 * running host submits its writes (submit(), remove_async()) to one
 * writer thread, so that no fsync and no JSON text is made on the main
 * thread: at 200 starts a second, each start's two durable writes (entry
 * created, timeline known) blocked the main loop in fsync and inode
 * allocation for 20–40 % of its time (docs/benchmarks.md "Starting 1,000
 * engagements"). The writer takes every operation queued so far as one
 * batch, in order: the files of each write (an fdatasync per durable copy,
 * as above), the unlinks of each removal. A batch that created or removed
 * a name (an entry's first write, a removal) owes an fsync of the
 * directory; the writer makes it kGroupCommitMs (100 ms) after the first
 * such batch, for every batch up to then (group commit: at 40 starts and
 * 40 ends a second, one directory fsync for about 8 of them instead of
 * one each), or at once when a thread waits for it (write(), remove(),
 * flush(), load(), load_all(), wait_removed(), the destructor). Only the
 * names wait: the files are written at once (a process crash loses
 * nothing more) and a state transition's copy is fdatasynced in its batch. While an entry's write waits in the queue, a
 * newer write of the same entry replaces it (durable if either was), so the
 * queue holds at most one write per entry and memory stays bounded. So a
 * state transition submitted is durable once the writer has committed its
 * batch (milliseconds; up to kGroupCommitMs more for an entry's creation or
 * removal; a power cut before that loses it as if it had come that much
 * later), and what acts on it waits for that: detach writes
 * synchronously (write(): the next host or node reads the entry as soon as
 * the engagement is released), load(), load_all(), flush() and the
 * destructor wait until everything submitted before is on disk, and a
 * write() or remove() is ordered after what was submitted before it.
 *
 * In cluster mode the state directory is on the output root the fleet
 * shares, so the node that takes an engagement over reads its entry and
 * replays its packet log (docs/deploying.md).
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
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

/* Interruption list ↔ JSON array (also used for engagement.json). The
 * readers take at most the first 1000 objects and skip other elements. */
void interruptions_to_json (const std::vector<Interruption> &v, JsonBuilder *b);
std::vector<Interruption> interruptions_from_json (JsonArray *a);
/* Owner list ↔ JSON array (also used for engagement.json). */
void owners_to_json (const std::vector<Owner> &v, JsonBuilder *b);
std::vector<Owner> owners_from_json (JsonArray *a);

/* One valid record of a durable copy file ("The durable copy" above). */
struct JournalSlot {
  gsize offset = 0;       /* of the record in the file, bytes: 0 or slot_size */
  gsize slot_size = 0;    /* S, bytes */
  guint64 seq = 0;        /* SEQ */
  std::string text;       /* the LEN bytes: an entry's JSON text */
};

/** journal_slot_encode:
 * Returns: the record of @text as slot @seq of a file of @slot_size byte
 * slots (header + @text); it fits in a slot when its size is at most
 * @slot_size.
 */
std::string journal_slot_encode (gsize slot_size, guint64 seq, const std::string &text);

/** journal_slot_size_for:
 * Returns: the slot size (bytes, a multiple of 4096) of a new copy file
 * whose first record holds @text_len bytes: twice the record, at least 4096.
 */
gsize journal_slot_size_for (gsize text_len);

/** journal_slots_parse:
 * Returns: the valid records of the durable copy file @bytes (at most 2, in
 * file order): a header that parses, at offset 0 or at its slot size, a
 * record inside its slot and inside @bytes, at most 4 MiB of text
 * (file_json_limits()), and a matching checksum. Anything else (a torn
 * write, garbage, another format) is skipped. Time linear in @bytes.
 */
std::vector<JournalSlot> journal_slots_parse (const std::string &bytes);

class Journal {
 public:
  /* The group commit's wait ("The writer thread"), ms. */
  static constexpr int kGroupCommitMs = 100;

  /* @dir: the state directory (created 0700 by open()); @group_commit_ms:
   * how long a batch that created or removed a name may wait for later
   * batches to share its fsync of the directory (ms). */
  explicit Journal (std::string dir, int group_commit_ms = kGroupCommitMs);
  /* Waits until everything submitted is on disk, then ends the writer. */
  ~Journal ();
  Journal (const Journal &) = delete;
  Journal &operator= (const Journal &) = delete;

  /** open:
   * Creates the state directory (mode 0700: the journal names calls).
   * Returns: false with ZHOST_ERROR_IO.
   */
  bool open (GError **error);

  /** write:
   * Stores @e (sets e.updated to now) atomically: the swap file exchanged
   * with the entry. @durable (state transitions, see "Durability" above):
   * first the durable copy (a slot of NAME.json.slots rewritten in place,
   * fdatasynced); the periodic position update passes false: no fsync.
   * Synchronous: on disk when it returns, after everything submitted
   * before it (it waits for the writer thread, see "The writer thread").
   * Returns: false (logged) when a file cannot be written.
   */
  bool write (JournalEntry &e, bool durable);

  /** submit:
   * The same as write(), on the writer thread: sets e.updated to now and
   * queues a copy of @e; returns at once. A copy of the same entry still
   * queued is replaced (durable if either was). Errors are logged by the
   * writer thread.
   */
  void submit (JournalEntry &e, bool durable);

  /** remove: deletes the entry of @rtms_stream_id and its packet logs
   * (every generation: a directory scan), then fsyncs the directory.
   * Synchronous, after everything submitted before it. */
  void remove (const std::string &rtms_stream_id);

  /** remove_async:
   * remove() on the writer thread, for an entry this process wrote from its
   * creation: its packet logs are generations 1..@generation
   * (packet_log_path()), unlinked by name; only with @scan (an entry a
   * previous host or another node wrote, which a crash may have left with
   * temporary files or other generations) is the directory scanned as
   * remove() does. A write of the entry still queued is dropped.
   */
  void remove_async (const std::string &rtms_stream_id, int generation, bool scan);

  /** flush: waits until everything submitted is on disk (the directory
   * fsynced). */
  void flush () const;

  /** wait_removed:
   * Waits until a removal of @rtms_stream_id still queued (remove_async())
   * is done; returns at once when there is none. For an engagement that
   * starts again with the same rtms_stream_id: the old removal would
   * otherwise unlink the packet log the new pipeline writes.
   */
  void wait_removed (const std::string &rtms_stream_id) const;

  /** load:
   * Reads the entry of @rtms_stream_id into @out; when the entry is
   * unreadable or older than its durable copy, the copy.
   * Returns: false (not logged) when neither is readable.
   */
  bool load (const std::string &rtms_stream_id, JournalEntry *out) const;

  /** load_all:
   * Returns: every readable entry; unreadable files are logged and moved
   * aside as NAME.broken (never deleted: they may be needed by hand), and
   * their durable copy, if readable, is returned in their place. A copy
   * without its entry is not listed (a removal unlinks the entry first).
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
      const std::string &keep = "") const;

  const std::string &dir () const { return dir_; }

  /** directory_syncs: Returns: the fsyncs of the state directory made so
   * far (the group commit's count, for tests and figures). */
  guint64 directory_syncs () const;

 private:
  struct Op;
  std::string entry_path (const std::string &rtms_stream_id) const;
  /* queues @op (coalescing a write with a queued one of the same entry) and
   * starts the writer thread if needed; returns its sequence number */
  guint64 enqueue (std::unique_ptr<Op> op) const;
  /* waits until the writer has committed every op up to @seq */
  void wait_done (guint64 seq) const;
  void writer_main () const;
  bool run_op (Op &op, bool *dir_dirty) const;
  void remove_now (const std::string &rtms_stream_id, int generation, bool scan) const;
  std::string dir_;
  /* the writer thread and its queue (all under lock_) */
  mutable std::mutex lock_;
  mutable std::condition_variable work_cond_, done_cond_;
  mutable std::deque<std::unique_ptr<Op>> queue_;
  mutable std::map<std::string, Op *> queued_write_;  /* rtms_stream_id → its queued write */
  mutable std::map<std::string, guint64> queued_remove_; /* rtms_stream_id → seq of its removal */
  mutable guint64 next_seq_ = 1;    /* of the next op */
  mutable guint64 done_seq_ = 0;    /* every op up to it is on disk */
  mutable bool stopping_ = false;
  mutable int waiters_ = 0;         /* threads in wait_done() */
  mutable guint64 dir_syncs_ = 0;   /* directory_syncs() */
  int group_commit_ms_;
  mutable std::thread writer_;
};

} // namespace zhost
