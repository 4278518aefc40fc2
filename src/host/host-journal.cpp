/* zoomrtms-host — journal of live engagements. See host-journal.h. */
#include "host-journal.h"

#include "host-common.h"
#include "host-template.h"

#include <glib/gstdio.h>

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>      /* renameat2 */
#include <algorithm>
#include <chrono>
#include <cstring>

#define GST_CAT_DEFAULT zoomrtms_host_debug

namespace zhost {

/* the copy of the entry at its last state transition, two slots rewritten
 * in place (see host-journal.h "The durable copy") */
static const char kSlotsSuffix[] = ".slots";
/* the copy as hosts before the slots wrote it: a hard link of the entry of
 * the last state transition (read back, never written) */
static const char kDurableSuffix[] = ".durable";
/* + 6 random characters: a write in progress (left behind by a crash) */
static const char kTmpSuffix[] = ".tmp-";
/* the inode the periodic update writes and exchanges with the entry */
static const char kSwapSuffix[] = ".swap";

void
interruptions_to_json (const std::vector<Interruption> &v, JsonBuilder *b)
{
  json_builder_begin_array (b);
  for (const auto &i : v) {
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "cause");
    json_builder_add_string_value (b, i.cause.c_str ());
    json_builder_set_member_name (b, "start");
    json_builder_add_int_value (b, i.start);
    json_builder_set_member_name (b, "end");
    json_builder_add_int_value (b, i.end);
    json_builder_set_member_name (b, "silence_ms");
    json_builder_add_int_value (b, i.silence_ms);
    json_builder_set_member_name (b, "recovered");
    json_builder_add_boolean_value (b, i.recovered);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
}

/* The objects of @a, an array of a journal entry read back (after a crash,
 * or by another node of the fleet): at most kMaxListed of them, other
 * elements skipped, each made by @from_object. */
static constexpr guint kMaxListed = 1000;

template <typename T, typename F>
static std::vector<T>
objects_from_json (JsonArray *a, F &&from_object)
{
  std::vector<T> v;
  for (guint k = 0; a && k < json_array_get_length (a) && k < kMaxListed; k++) {
    JsonNode *n = json_array_get_element (a, k);
    if (JSON_NODE_HOLDS_OBJECT (n))
      v.push_back (from_object (json_node_get_object (n)));
  }
  return v;
}

std::vector<Interruption>
interruptions_from_json (JsonArray *a)
{
  return objects_from_json<Interruption> (a, [] (JsonObject *o) {
        Interruption i;
        i.cause = json_object_get_string_member_with_default (o, "cause", "");
        i.start = json_object_get_int_member_with_default (o, "start", 0);
        i.end = json_object_get_int_member_with_default (o, "end", 0);
        i.silence_ms = json_object_get_int_member_with_default (o,
            "silence_ms", -1);
        i.recovered = json_object_get_boolean_member_with_default (o,
            "recovered", TRUE);
        return i;
      });
}

void
owners_to_json (const std::vector<Owner> &v, JsonBuilder *b)
{
  json_builder_begin_array (b);
  for (const auto &o : v) {
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "node");
    json_builder_add_string_value (b, o.node.c_str ());
    json_builder_set_member_name (b, "since");
    json_builder_add_int_value (b, o.since);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
}

std::vector<Owner>
owners_from_json (JsonArray *a)
{
  return objects_from_json<Owner> (a, [] (JsonObject *o) {
        Owner w;
        w.node = json_object_get_string_member_with_default (o, "node", "");
        w.since = json_object_get_int_member_with_default (o, "since", 0);
        return w;
      });
}

JsonNode *
JournalEntry::to_json () const
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  auto str = [&b] (const char *k, const std::string &v) {
    json_builder_set_member_name (b, k);
    json_builder_add_string_value (b, v.c_str ());
  };
  auto num = [&b] (const char *k, gint64 v) {
    json_builder_set_member_name (b, k);
    json_builder_add_int_value (b, v);
  };
  num ("version", 1);
  str ("state", state);
  str ("id_key", id_key);
  str ("id_value", id_value);
  str ("rtms_stream_id", rtms_stream_id);
  str ("server_urls", server_urls);
  str ("product", product);
  str ("event", event);
  num ("event_ts", event_ts);
  str ("pipeline", pipeline);
  str ("directory", directory);
  str ("dir_name", dir_name);
  json_builder_set_member_name (b, "outputs");
  json_builder_begin_array (b);
  for (const auto &o : outputs)
    json_builder_add_string_value (b, o.c_str ());
  json_builder_end_array (b);
  num ("parts", parts);
  num ("timeline_origin", timeline_origin);
  num ("rate", rate);
  num ("channels", channels);
  num ("samples", static_cast<gint64> (samples));
  str ("packet_log", packet_log);
  num ("generation", generation);
  num ("start_time", start_time);
  num ("updated", updated);
  num ("detached", detached);
  json_builder_set_member_name (b, "interruptions");
  interruptions_to_json (interruptions, b);
  json_builder_set_member_name (b, "owners");
  owners_to_json (owners, b);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

bool
JournalEntry::from_json (JsonObject *o)
{
  if (json_object_get_int_member_with_default (o, "version", 0) != 1)
    return false;
  auto str = [o] (const char *k) {
    return std::string (json_object_get_string_member_with_default (o, k, ""));
  };
  auto num = [o] (const char *k, gint64 d) {
    return json_object_get_int_member_with_default (o, k, d);
  };
  state = str ("state");
  id_key = str ("id_key");
  id_value = str ("id_value");
  rtms_stream_id = str ("rtms_stream_id");
  server_urls = str ("server_urls");
  product = str ("product");
  event = str ("event");
  event_ts = num ("event_ts", 0);
  pipeline = str ("pipeline");
  directory = str ("directory");
  dir_name = str ("dir_name");
  outputs.clear ();
  JsonArray *a = json_object_has_member (o, "outputs") ?
      json_object_get_array_member (o, "outputs") : nullptr;
  for (guint k = 0; a && k < json_array_get_length (a); k++) {
    const char *s = json_node_get_string (json_array_get_element (a, k));
    /* a file name inside the directory, nothing else */
    if (s && *s && !strchr (s, '/') && !g_str_equal (s, "..") && !g_str_equal (s, "."))
      outputs.push_back (s);
  }
  parts = static_cast<int> (num ("parts", 0));
  timeline_origin = num ("timeline_origin", -1);
  rate = static_cast<int> (num ("rate", 0));
  channels = static_cast<int> (num ("channels", 0));
  samples = static_cast<guint64> (MAX (num ("samples", 0), 0));
  packet_log = str ("packet_log");
  generation = static_cast<int> (num ("generation", 1));
  start_time = num ("start_time", 0);
  updated = num ("updated", 0);
  detached = num ("detached", 0);
  interruptions = interruptions_from_json (json_object_has_member (o,
          "interruptions") ? json_object_get_array_member (o, "interruptions") : nullptr);
  owners = owners_from_json (json_object_has_member (o, "owners") ?
      json_object_get_array_member (o, "owners") : nullptr);
  return !rtms_stream_id.empty () && !directory.empty () && !dir_name.empty () &&
      g_path_is_absolute (directory.c_str ());
}

bool
Journal::open (GError **error)
{
  if (g_mkdir_with_parents (dir_.c_str (), 0700) != 0) {
    int e = errno;
    g_set_error (error, ZHOST_ERROR, ERROR_IO, "cannot create state directory %s: %s",
        dir_.c_str (), g_strerror (e));
    return false;
  }
  return true;
}

std::string
Journal::entry_path (const std::string &rtms_stream_id) const
{
  std::string name = sanitize_engagement_id (rtms_stream_id) + ".json";
  g_autofree gchar *p = g_build_filename (dir_.c_str (), name.c_str (), nullptr);
  return p;
}

std::string
Journal::packet_log_path (const std::string &rtms_stream_id, int gen) const
{
  std::string name = sanitize_engagement_id (rtms_stream_id) + "." +
      std::to_string (gen) + ".plog";
  g_autofree gchar *p = g_build_filename (dir_.c_str (), name.c_str (), nullptr);
  return p;
}

/* fsync of the directory @dir (its entries: renames, unlinks).
 * Returns: 0 or the errno. */
static int
fsync_dir (const std::string &dir)
{
  int dfd = ::open (dir.c_str (), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return errno;
  int e = fsync (dfd) != 0 ? errno : 0;
  ::close (dfd);
  return e;
}

/* ---- the durable copy: two slots in one file (host-journal.h) ---- */

static const char kSlotMagic[] = "zoomrtms-journal-slot ";
static constexpr gsize kSlotAlign = 4096;
/* an entry's text is at most what its reader accepts (file_json_limits()) */
static gsize
max_slot_text ()
{
  return file_json_limits ().max_bytes;
}

/* The header of a slot without its checksum: "zoomrtms-journal-slot 1 S SEQ LEN " */
static std::string
slot_header_prefix (gsize slot_size, guint64 seq, gsize len)
{
  return std::string (kSlotMagic) + "1 " + std::to_string (slot_size) + " " +
      std::to_string (seq) + " " + std::to_string (len) + " ";
}

/* SHA-256 (hex) of @prefix followed by @len bytes of @body */
static std::string
slot_checksum (const std::string &prefix, const char *body, gsize len)
{
  g_autoptr (GChecksum) c = g_checksum_new (G_CHECKSUM_SHA256);
  g_checksum_update (c, reinterpret_cast<const guchar *> (prefix.data ()),
      static_cast<gssize> (prefix.size ()));
  g_checksum_update (c, reinterpret_cast<const guchar *> (body),
      static_cast<gssize> (len));
  return g_checksum_get_string (c);
}

std::string
journal_slot_encode (gsize slot_size, guint64 seq, const std::string &text)
{
  std::string prefix = slot_header_prefix (slot_size, seq, text.size ());
  return prefix + slot_checksum (prefix, text.data (), text.size ()) + "\n" + text;
}

gsize
journal_slot_size_for (gsize text_len)
{
  /* room to grow (interruptions, owners are appended): twice the record */
  gsize need = 2 * (text_len + 128);
  return MAX (kSlotAlign, (need + kSlotAlign - 1) / kSlotAlign * kSlotAlign);
}

/* Above any count of writes; its successor has at most 19 digits */
static const guint64 kMaxSlotSeq = G_GUINT64_CONSTANT (1000000000000000000);

/* Parses an unsigned decimal of @s[*at..] up to the character @end: at most
 * 19 digits, no leading zero (one form per number, as written). */
static bool
parse_dec (const std::string &s, gsize *at, char end, guint64 *out)
{
  guint64 v = 0;
  gsize k = *at, digits = 0;
  if (k + 1 < s.size () && s[k] == '0' && g_ascii_isdigit (s[k + 1]))
    return false;
  while (k < s.size () && g_ascii_isdigit (s[k]) && digits < 19) {
    v = v * 10 + static_cast<guint64> (s[k] - '0');
    k++;
    digits++;
  }
  if (digits == 0 || k >= s.size () || s[k] != end)
    return false;
  *at = k + 1;
  *out = v;
  return true;
}

std::vector<JournalSlot>
journal_slots_parse (const std::string &bytes)
{
  std::vector<JournalSlot> v;
  const gsize magic_len = sizeof kSlotMagic - 1;
  /* a slot starts at 0 or at its slot size, a multiple of kSlotAlign: every
   * such offset is tried (the header of slot 0 may be the torn one) */
  for (gsize o = 0; o < bytes.size () && v.size () < 2; o += kSlotAlign) {
    if (bytes.compare (o, magic_len, kSlotMagic) != 0)
      continue;
    gsize at = o + magic_len;
    guint64 version, slot_size, seq, len;
    if (!parse_dec (bytes, &at, ' ', &version) || version != 1 ||
        !parse_dec (bytes, &at, ' ', &slot_size) || !parse_dec (bytes, &at, ' ', &seq) ||
        !parse_dec (bytes, &at, ' ', &len))
      continue;
    /* a slot no larger than the largest record needs (the reader reads two
     * of those; a larger one would send every later write past what is
     * read back), and a sequence number whose successor still parses */
    if (slot_size < kSlotAlign || slot_size % kSlotAlign != 0 ||
        slot_size > journal_slot_size_for (max_slot_text ()) ||
        seq >= kMaxSlotSeq || len > max_slot_text () ||
        (o != 0 && o != slot_size))
      continue;
    gsize hex_at = at, body = at + 64 + 1;
    if (body > bytes.size () || bytes[body - 1] != '\n' ||
        body - o + len > slot_size || len > bytes.size () - body)
      continue;
    std::string prefix = bytes.substr (o, hex_at - o);
    if (bytes.compare (hex_at, 64, slot_checksum (prefix, bytes.data () + body, len)) != 0)
      continue;
    JournalSlot s;
    s.offset = o;
    s.slot_size = slot_size;
    s.seq = seq;
    s.text = bytes.substr (body, len);
    v.push_back (std::move (s));
  }
  return v;
}

/* Reads at most two slots' worth of @fd from offset 0 into @out.
 * Returns: 0 or the errno. */
static int
read_slots_fd (int fd, std::string *out)
{
  const gsize cap = 2 * journal_slot_size_for (max_slot_text ());
  out->clear ();
  char chunk[16384];
  while (out->size () < cap) {
    ssize_t n = ::pread (fd, chunk, MIN (sizeof chunk, cap - out->size ()),
        static_cast<off_t> (out->size ()));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return errno;
    if (n == 0)
      break;
    out->append (chunk, static_cast<gsize> (n));
  }
  return 0;
}

/* The newest valid slot of @slots, or nullptr. */
static const JournalSlot *
newest_slot (const std::vector<JournalSlot> &slots)
{
  const JournalSlot *best = nullptr;
  for (const auto &s : slots)
    if (!best || s.seq > best->seq)
      best = &s;
  return best;
}

/* Writes all of @txt at @offset of @fd. Returns: 0 or the errno. */
static int
pwrite_all (int fd, const std::string &txt, off_t offset = 0)
{
  gsize done = 0;
  while (done < txt.size ()) {
    ssize_t n = ::pwrite (fd, txt.data () + done, txt.size () - done,
        offset + static_cast<off_t> (done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return n < 0 ? errno : EIO;
    done += static_cast<gsize> (n);
  }
  return 0;
}

/* A new slots file for @path (@txt in slot 0, sequence @seq) replacing
 * whatever is there atomically: a temporary file (O_EXCL, 0600), fsynced,
 * renamed over @path.slots. The caller fsyncs the directory. */
static int
replace_slots_file (const std::string &path, guint64 seq, const std::string &txt)
{
  std::string tmpl = path + kTmpSuffix + "XXXXXX";
  std::vector<gchar> tmp (tmpl.begin (), tmpl.end ());
  tmp.push_back ('\0');
  int fd = g_mkstemp_full (tmp.data (), O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0)
    return errno;
  int e = pwrite_all (fd, journal_slot_encode (journal_slot_size_for (txt.size ()), seq,
          txt));
  if (!e && fsync (fd) != 0)
    e = errno;
  if (::close (fd) != 0 && !e)
    e = errno;
  if (!e && ::rename (tmp.data (), (path + kSlotsSuffix).c_str ()) != 0)
    e = errno;
  if (e)
    ::unlink (tmp.data ());
  return e;
}

/* A state transition's copy: @txt into the slots file @path.slots, on disk
 * when this returns. The file's older (or unreadable) slot is rewritten in
 * place with the next sequence number and fdatasync()ed: no inode, no
 * rename, and a torn write leaves the other slot, the previous transition,
 * readable. A new file (no slots file yet: created with O_EXCL and fsynced)
 * and a record too big for the file's slots (a new file renamed over it)
 * change the directory: *@dir_dirty is set and the caller fsyncs it. */
static bool
write_slots (const std::string &dir, const std::string &path, const std::string &txt,
    bool *dir_dirty, GError **error)
{
  std::string slots_path = path + kSlotsSuffix;
  int e = 0;
  if (txt.size () > max_slot_text ()) {
    g_set_error (error, ZHOST_ERROR, ERROR_IO, "the entry is %" G_GSIZE_FORMAT
        " bytes, more than %" G_GSIZE_FORMAT, txt.size (), max_slot_text ());
    return false;
  }
  int fd = ::open (slots_path.c_str (), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  bool created = false;
  if (fd < 0 && errno == ENOENT) {
    fd = ::open (slots_path.c_str (), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
        0600);
    created = fd >= 0;
  }
  if (fd < 0) {
    e = errno;
    g_set_error (error, ZHOST_ERROR, ERROR_IO, "cannot open a file in %s: %s",
        dir.c_str (), g_strerror (e));
    return false;
  }
  std::string bytes;
  std::vector<JournalSlot> slots;
  if (!created && (e = read_slots_fd (fd, &bytes)) == 0)
    slots = journal_slots_parse (bytes);
  const JournalSlot *cur = newest_slot (slots);
  gsize slot_size = cur ? cur->slot_size : journal_slot_size_for (txt.size ());
  guint64 seq = cur ? cur->seq + 1 : 1;
  std::string rec;
  if (!e)
    rec = journal_slot_encode (slot_size, seq, txt);
  if (!e && rec.size () > slot_size) {
    /* outgrown: a new file with bigger slots, atomically */
    ::close (fd);
    e = replace_slots_file (path, seq, txt);
    *dir_dirty = true;
    if (e) {
      g_set_error (error, ZHOST_ERROR, ERROR_IO, "%s", g_strerror (e));
      return false;
    }
    return true;
  }
  if (!e) {
    /* the slot not holding the newest valid record */
    off_t at = cur && cur->offset == 0 ? static_cast<off_t> (slot_size) : 0;
    e = pwrite_all (fd, rec, at);
  }
  /* a new file (or one without a valid record: a crash right after its
   * creation may have left its name not on disk yet): its size, blocks and
   * name too (fsync, the caller's directory fsync); in place: the data */
  bool fresh = created || !cur;
  if (!e && (fresh ? fsync (fd) : fdatasync (fd)) != 0)
    e = errno;
  if (::close (fd) != 0 && !e)
    e = errno;
  if (fresh)
    *dir_dirty = true;
  if (e) {
    g_set_error (error, ZHOST_ERROR, ERROR_IO, "%s", g_strerror (e));
    return false;
  }
  return true;
}

/* The entry itself, atomic and cheap: @txt goes into the swap file
 * @path.swap (the entry's previous inode, rewritten in place), which is
 * then exchanged with the entry (renameat2 RENAME_EXCHANGE): a reader finds
 * the old entry or the new one, and no inode is created or freed. (A new
 * temporary file every second was the cost: ext4's inode allocation and its
 * flush of the renamed-over file, more than the fsync.) The file is cut
 * (ftruncate) only when the text got shorter. An inode with another name
 * (the .durable copy hosts before the slots file linked to the entry) is
 * never rewritten in place: a new swap file instead. Where the file system
 * has no exchange (NFS), a plain rename (the swap file is then created
 * again next time). No fsync. Sets *@dir_dirty when it created the entry
 * (no entry before: its name is on disk once the caller fsyncs the
 * directory). */
static bool
write_swapped (const std::string &dir, const std::string &path, const std::string &txt,
    bool *dir_dirty, GError **error)
{
  std::string swap = path + kSwapSuffix;
  int fd = ::open (swap.c_str (), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    int e = errno;
    g_set_error (error, ZHOST_ERROR, ERROR_IO, "cannot open a file in %s: %s",
        dir.c_str (), g_strerror (e));
    return false;
  }
  GStatBuf st;
  bool have_st = fstat (fd, &st) == 0;
  if (have_st && st.st_nlink > 1) {
    /* an entry of an earlier version, which is also its .durable copy:
     * never rewritten in place, a new swap file instead */
    ::close (fd);
    ::unlink (swap.c_str ());
    fd = ::open (swap.c_str (), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
      int e = errno;
      g_set_error (error, ZHOST_ERROR, ERROR_IO, "cannot create a file in %s: %s",
          dir.c_str (), g_strerror (e));
      return false;
    }
    have_st = fstat (fd, &st) == 0;
  }
  int e = pwrite_all (fd, txt);
  if (!e && (!have_st || st.st_size > static_cast<off_t> (txt.size ())) &&
      ftruncate (fd, static_cast<off_t> (txt.size ())) != 0)
    e = errno;
  if (::close (fd) != 0 && !e)
    e = errno;
  if (!e && renameat2 (AT_FDCWD, swap.c_str (), AT_FDCWD, path.c_str (),
          RENAME_EXCHANGE) != 0) {
    e = errno;
    /* no entry yet (ENOENT: the name is created, on disk with the caller's
     * directory fsync), or no exchange here: a plain rename */
    if (::rename (swap.c_str (), path.c_str ()) == 0) {
      if (e == ENOENT)
        *dir_dirty = true;
      e = 0;
    }
  }
  if (e) {
    g_set_error (error, ZHOST_ERROR, ERROR_IO, "%s", g_strerror (e));
    return false;
  }
  return true;
}

/* One queued operation of the writer thread. */
struct Journal::Op {
  enum class Kind { WRITE, REMOVE, DROPPED } kind = Kind::WRITE;
  guint64 seq = 0;
  std::string rtms_stream_id;
  JournalEntry entry;           /* WRITE */
  bool durable = false;         /* WRITE */
  int generation = 0;           /* REMOVE */
  bool scan = false;            /* REMOVE */
};

/* @e to its entry file and, with @durable, first to its copy (the slots
 * file, on disk when this returns); sets *@dir_dirty when a name was
 * created (the caller fsyncs the directory). */
static bool
write_entry (const std::string &dir, const std::string &path, const JournalEntry &e,
    bool durable, bool *dir_dirty)
{
  g_autoptr (JsonNode) root = e.to_json ();
  std::string txt = json_to_compact (root) + "\n";
  GError *err = nullptr;
  /* durable: the copy first, so that a durable entry always has one at
   * least as new as its last state transition */
  bool ok = (!durable || write_slots (dir, path, txt, dir_dirty, &err)) &&
      write_swapped (dir, path, txt, dir_dirty, &err);
  /* the slots now hold a newer transition than an earlier version's copy:
   * it goes, so that it is never preferred by a clock that ran ahead on
   * the host that wrote it (a fleet of mixed versions) */
  if (ok && durable && ::unlink ((path + kDurableSuffix).c_str ()) == 0)
    *dir_dirty = true;
  if (!ok) {
    g_warning ("journal: cannot write the entry of %s: %s", e.dir_name.c_str (),
        err->message);
    g_error_free (err);
    return false;
  }
  return true;
}

Journal::Journal (std::string dir, int group_commit_ms)
    : dir_ (std::move (dir)), group_commit_ms_ (MAX (group_commit_ms, 0))
{
}

Journal::~Journal ()
{
  flush ();
  {
    std::lock_guard<std::mutex> lk (lock_);
    stopping_ = true;
  }
  work_cond_.notify_all ();
  if (writer_.joinable ())
    writer_.join ();
}

bool
Journal::write (JournalEntry &e, bool durable)
{
  e.updated = g_get_real_time () / 1000;
  /* after what was submitted before (the writer is then idle: only the
   * main thread submits) */
  flush ();
  std::string path = entry_path (e.rtms_stream_id);
  bool dir_dirty = false;
  if (!write_entry (dir_, path, e, durable, &dir_dirty))
    return false;
  int err = 0;
  if (dir_dirty) {
    err = fsync_dir (dir_);
    std::lock_guard<std::mutex> lk (lock_);
    dir_syncs_++;
  }
  if (err != 0) {
    g_warning ("journal: cannot write the entry of %s: fsync of %s: %s",
        e.dir_name.c_str (), dir_.c_str (), g_strerror (err));
    return false;
  }
  return true;
}

void
Journal::submit (JournalEntry &e, bool durable)
{
  e.updated = g_get_real_time () / 1000;
  auto op = std::make_unique<Op> ();
  op->kind = Op::Kind::WRITE;
  op->rtms_stream_id = e.rtms_stream_id;
  op->entry = e;
  op->durable = durable;
  enqueue (std::move (op));
}

void
Journal::remove_async (const std::string &rtms_stream_id, int generation, bool scan)
{
  auto op = std::make_unique<Op> ();
  op->kind = Op::Kind::REMOVE;
  op->rtms_stream_id = rtms_stream_id;
  op->generation = generation;
  op->scan = scan;
  enqueue (std::move (op));
}

guint64
Journal::enqueue (std::unique_ptr<Op> op) const
{
  std::lock_guard<std::mutex> lk (lock_);
  auto q = queued_write_.find (op->rtms_stream_id);
  if (op->kind == Op::Kind::WRITE && q != queued_write_.end ()) {
    /* the queued write of this entry is not written yet: it becomes this
     * one (a state transition stays durable) */
    Op *w = q->second;
    w->entry = std::move (op->entry);
    w->durable = w->durable || op->durable;
    return w->seq;
  }
  if (q != queued_write_.end ()) {
    /* a removal: the queued write would only be deleted again */
    q->second->kind = Op::Kind::DROPPED;
    queued_write_.erase (q);
  }
  op->seq = next_seq_++;
  if (op->kind == Op::Kind::WRITE)
    queued_write_[op->rtms_stream_id] = op.get ();
  else
    queued_remove_[op->rtms_stream_id] = op->seq;
  guint64 seq = op->seq;
  queue_.push_back (std::move (op));
  if (!writer_.joinable ())
    writer_ = std::thread ([this] { writer_main (); });
  work_cond_.notify_one ();
  return seq;
}

void
Journal::wait_done (guint64 seq) const
{
  std::unique_lock<std::mutex> lk (lock_);
  if (done_seq_ >= seq)
    return;
  /* someone waits: the writer commits now, without the group commit's wait */
  waiters_++;
  work_cond_.notify_all ();
  done_cond_.wait (lk, [&] { return done_seq_ >= seq; });
  waiters_--;
}

guint64
Journal::directory_syncs () const
{
  std::lock_guard<std::mutex> lk (lock_);
  return dir_syncs_;
}

void
Journal::flush () const
{
  guint64 seq;
  {
    std::lock_guard<std::mutex> lk (lock_);
    seq = next_seq_ - 1;
  }
  wait_done (seq);
}

void
Journal::wait_removed (const std::string &rtms_stream_id) const
{
  guint64 seq = 0;
  {
    std::lock_guard<std::mutex> lk (lock_);
    auto r = queued_remove_.find (rtms_stream_id);
    if (r == queued_remove_.end ())
      return;
    seq = r->second;
  }
  wait_done (seq);
}

bool
Journal::run_op (Op &op, bool *dir_dirty) const
{
  switch (op.kind) {
    case Op::Kind::WRITE:
      return write_entry (dir_, entry_path (op.rtms_stream_id), op.entry, op.durable,
          dir_dirty);
    case Op::Kind::REMOVE:
      remove_now (op.rtms_stream_id, op.generation, op.scan);
      *dir_dirty = true;
      return true;
    case Op::Kind::DROPPED:
      break;
  }
  return true;
}

void
Journal::writer_main () const
{
  /* named for per-thread CPU figures (bench/run.py) */
  pthread_setname_np (pthread_self (), "zoomrtms-jrnl");
  std::unique_lock<std::mutex> lk (lock_);
  /* group commit: a batch that created or removed a name owes an fsync of
   * the directory; it is made when someone waits for it, when the writer
   * stops, or group_commit_ms_ after the first such batch, for every batch
   * up to then ("The writer thread") */
  bool dir_owed = false;
  std::chrono::steady_clock::time_point deadline;
  guint64 owed_last = 0;          /* the last op that waits for it */
  for (;;) {
    if (dir_owed)
      work_cond_.wait_until (lk, deadline, [this] {
            return stopping_ || !queue_.empty () || waiters_ > 0;
          });
    else
      work_cond_.wait (lk, [this] { return stopping_ || !queue_.empty (); });
    if (!queue_.empty ()) {
      /* everything queued so far is one batch */
      std::deque<std::unique_ptr<Op>> batch;
      batch.swap (queue_);
      queued_write_.clear ();
      guint64 last = batch.back ()->seq;
      lk.unlock ();
      bool dir_dirty = false;
      for (auto &op : batch)
        run_op (*op, &dir_dirty);
      lk.lock ();
      /* the unlinks are done: a stream starting again may write its packet
       * log (wait_removed()) */
      for (auto &op : batch) {
        auto r = op->kind == Op::Kind::REMOVE ?
            queued_remove_.find (op->rtms_stream_id) : queued_remove_.end ();
        if (r != queued_remove_.end () && r->second == op->seq)
          queued_remove_.erase (r);
      }
      batch.clear ();
      if (dir_dirty && !dir_owed) {
        dir_owed = true;
        deadline = std::chrono::steady_clock::now () +
            std::chrono::milliseconds (group_commit_ms_);
      }
      if (dir_owed) {
        owed_last = last;
      } else {
        done_seq_ = last;
        done_cond_.notify_all ();
      }
    }
    if (dir_owed && (waiters_ > 0 || stopping_ ||
            std::chrono::steady_clock::now () >= deadline)) {
      lk.unlock ();
      int err = fsync_dir (dir_);
      if (err)
        g_warning ("journal: fsync of %s: %s", dir_.c_str (), g_strerror (err));
      lk.lock ();
      dir_syncs_++;
      dir_owed = false;
      done_seq_ = owed_last;
      done_cond_.notify_all ();
    }
    if (stopping_ && queue_.empty () && !dir_owed)
      break;
  }
}

void
Journal::remove_packet_logs (const std::string &rtms_stream_id,
    const std::string &keep) const
{
  std::string prefix = sanitize_engagement_id (rtms_stream_id) + ".";
  g_autoptr (GDir) d = g_dir_open (dir_.c_str (), 0, nullptr);
  while (const gchar *n = d ? g_dir_read_name (d) : nullptr) {
    if (!g_str_has_prefix (n, prefix.c_str ()) || !g_str_has_suffix (n, ".plog"))
      continue;
    /* <key>.<digits>.plog only */
    const char *mid = n + prefix.size ();
    const char *end = n + strlen (n) - strlen (".plog");
    bool digits = mid < end;
    for (const char *c = mid; c < end; c++)
      digits = digits && g_ascii_isdigit (*c);
    if (!digits)
      continue;
    g_autofree gchar *p = g_build_filename (dir_.c_str (), n, nullptr);
    if (keep != p)
      ::g_remove (p);
  }
}

void
Journal::remove_now (const std::string &rtms_stream_id, int generation, bool scan) const
{
  std::string p = entry_path (rtms_stream_id);
  ::unlink (p.c_str ());
  ::unlink ((p + kSlotsSuffix).c_str ());
  ::unlink ((p + kSwapSuffix).c_str ());
  if (!scan) {
    /* our own entry: no file of an earlier version (.durable), our
     * temporary files were renamed or unlinked, our packet logs are
     * generations 1..@generation (a scan of a directory of 4 files per
     * live engagement cost 0.4 ms per removal at 1,000) */
    for (int g = 1; g <= generation; g++)
      ::g_remove (packet_log_path (rtms_stream_id, g).c_str ());
    return;
  }
  /* an earlier version's copy; temporary files a crash left mid-write */
  ::unlink ((p + kDurableSuffix).c_str ());
  ::unlink ((p + kDurableSuffix + ".new").c_str ());
  g_autofree gchar *base = g_path_get_basename (p.c_str ());
  std::string tmp_prefix = std::string (base) + kTmpSuffix;
  g_autoptr (GDir) d = g_dir_open (dir_.c_str (), 0, nullptr);
  while (const gchar *n = d ? g_dir_read_name (d) : nullptr)
    if (g_str_has_prefix (n, tmp_prefix.c_str ()) && strlen (n) == tmp_prefix.size () + 6) {
      g_autofree gchar *t = g_build_filename (dir_.c_str (), n, nullptr);
      ::g_remove (t);
    }
  remove_packet_logs (rtms_stream_id);
}

void
Journal::remove (const std::string &rtms_stream_id)
{
  flush ();
  remove_now (rtms_stream_id, 0, true);
  fsync_dir (dir_);
  std::lock_guard<std::mutex> lk (lock_);
  dir_syncs_++;
}

/* Reads the entry file @p into @out. */
static bool
load_entry_file (const std::string &p, JournalEntry *out, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root = rtms::json_load_file (parser, p.c_str (), file_json_limits (), error);
  return root && JSON_NODE_HOLDS_OBJECT (root) &&
      out->from_json (json_node_get_object (root));
}

/* Reads the copy of the last state transition of the entry @p: the newest
 * valid slot of @p.slots that is an entry, or the file @p.durable (an entry
 * an earlier version wrote), whichever was updated last (a fleet of mixed
 * versions may have written both). */
static bool
load_copy (const std::string &p, JournalEntry *out)
{
  JournalEntry old;
  bool have_old = load_entry_file (p + kDurableSuffix, &old, nullptr);
  int fd = ::open ((p + kSlotsSuffix).c_str (), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd >= 0) {
    std::string bytes;
    int e = read_slots_fd (fd, &bytes);
    ::close (fd);
    std::vector<JournalSlot> slots;
    if (!e)
      slots = journal_slots_parse (bytes);
    std::sort (slots.begin (), slots.end (), [] (const JournalSlot &a, const JournalSlot &b) {
          return a.seq > b.seq;
        });
    for (const auto &s : slots) {
      g_autoptr (JsonParser) parser = json_parser_new ();
      JsonNode *root = rtms::json_load (parser, s.text.data (), s.text.size (),
          file_json_limits (), nullptr);
      JournalEntry c;
      if (root && JSON_NODE_HOLDS_OBJECT (root) && c.from_json (json_node_get_object (root))) {
        *out = have_old && old.updated > c.updated ? std::move (old) : std::move (c);
        return true;
      }
    }
  }
  if (have_old)
    *out = std::move (old);
  return have_old;
}

bool
Journal::load (const std::string &rtms_stream_id, JournalEntry *out) const
{
  flush ();
  std::string p = entry_path (rtms_stream_id);
  JournalEntry e, c;
  bool have_e = load_entry_file (p, &e, nullptr) && e.rtms_stream_id == rtms_stream_id;
  bool have_c = load_copy (p, &c) && c.rtms_stream_id == rtms_stream_id;
  /* a periodic write a power cut lost: the entry is unreadable or older
   * than the copy of the last state transition */
  if (have_c && (!have_e || c.updated > e.updated))
    *out = std::move (c);
  else if (have_e)
    *out = std::move (e);
  return have_e || have_c;
}

std::vector<JournalEntry>
Journal::load_all ()
{
  flush ();
  std::vector<JournalEntry> v;
  g_autoptr (GDir) d = g_dir_open (dir_.c_str (), 0, nullptr);
  std::vector<std::string> names;
  while (const gchar *n = d ? g_dir_read_name (d) : nullptr)
    if (g_str_has_suffix (n, ".json"))
      names.push_back (n);
  for (const auto &n : names) {
    g_autofree gchar *p = g_build_filename (dir_.c_str (), n.c_str (), nullptr);
    GError *err = nullptr;
    JournalEntry e;
    if (!load_entry_file (p, &e, &err)) {
      JournalEntry c;
      bool have_copy = load_copy (p, &c) &&
          sanitize_engagement_id (c.rtms_stream_id) + ".json" == n;
      g_warning ("journal: %s is not a journal entry (%s), moved aside as "
          ".broken%s", log_safe (n).c_str (), err ? err->message : "missing members",
          have_copy ? "; its copy of the last state transition is used" : "");
      g_clear_error (&err);
      std::string broken = std::string (p) + ".broken";
      g_rename (p, broken.c_str ());
      if (!have_copy)
        continue;
      e = std::move (c);
    } else {
      /* older than the copy of the last state transition: the copy */
      JournalEntry c;
      if (load_copy (p, &c) && c.rtms_stream_id == e.rtms_stream_id &&
          c.updated > e.updated)
        e = std::move (c);
    }
    v.push_back (std::move (e));
  }
  /* a copy without its entry is not an engagement: remove_now() unlinks
   * the entry first, so a crash in the middle of a removal leaves one */
  return v;
}

} // namespace zhost
