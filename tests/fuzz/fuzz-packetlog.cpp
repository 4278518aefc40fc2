/* zoomrtms — libFuzzer target: zoomrtms::PacketLogReader
 * (plugins/zoomrtms/zoomrtms-packet-log.h), the write-ahead packet log that a
 * restarted host reads back after a crash (a file that may be torn, garbled
 * or of another version).
 *
 * The first input byte picks the mode.
 * Even: the rest is the file.
 *  - open() either refuses it or gives version 1 or 2;
 *  - next() ends (END, TORN or CORRUPT) within one call per 8 bytes of file;
 *  - TORN and CORRUPT are sticky (every later call returns the same);
 *  - a record's key, mode and PCM are within the format's limits and never
 *    add up to more than the file holds.
 * Odd: records made from the input are written with PacketLogWriter (format
 * 2), then the file is cut at an input-chosen length or one byte of it is
 * changed. The reader gives back exactly a prefix of the records written
 * (the writer's cut of long keys and modes applied), then stops; an intact
 * file gives every record and END.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "fuzz-util.h"
#include "zoomrtms-packet-log.h"

namespace {

std::string
temp_path ()
{
  static std::string path = [] {
    gchar *p = g_build_filename (g_get_tmp_dir (), "zoomrtms-fuzz-packetlog-XXXXXX",
        nullptr);
    int fd = g_mkstemp (p);
    FUZZ_CHECK (fd >= 0, "mkstemp");
    close (fd);
    std::string s = p;
    g_free (p);
    return s;
  } ();
  return path;
}

void
write_file (const std::string &path, const std::string &bytes)
{
  FUZZ_CHECK (g_file_set_contents (path.c_str (), bytes.data (),
          (gssize) bytes.size (), nullptr), "write %s", path.c_str ());
}

void
read_raw (const std::string &bytes)
{
  std::string path = temp_path ();
  write_file (path, bytes);
  zoomrtms::PacketLogReader r;
  std::string err;
  if (!r.open (path, &err))
    return;
  FUZZ_CHECK (r.version () == 1 || r.version () == 2, "version %u",
      r.version ());
  zoomrtms::PacketLogRecord rec;
  size_t calls = 0, payload = 0;
  for (;;) {
    auto st = r.next (&rec, &err);
    FUZZ_CHECK (++calls <= bytes.size () / 8 + 2, "no end after %zu calls",
        calls);
    if (st == zoomrtms::PacketLogReader::Status::OK) {
      FUZZ_CHECK (rec.key.size () <= zoomrtms::kPacketLogMaxKey &&
          rec.mode.size () <= zoomrtms::kPacketLogMaxMode, "key/mode size");
      payload += rec.key.size () + rec.mode.size () + rec.pcm.size ();
      FUZZ_CHECK (payload <= bytes.size (), "records hold %zu bytes of a "
          "%zu-byte file", payload, bytes.size ());
      continue;
    }
    if (st != zoomrtms::PacketLogReader::Status::END) {
      std::string again;
      FUZZ_CHECK (r.next (&rec, &again) == st, "a stop is not sticky");
    }
    break;
  }
}

void
round_trip (FuzzInput &in)
{
  std::string path = temp_path ();
  std::vector<zoomrtms::PacketLogRecord> recs;
  {
    zoomrtms::PacketLogHeader h;
    zoomrtms::PacketLogWriter w;
    std::string err;
    FUZZ_CHECK (w.open (path, h, &err), "open: %s", err.c_str ());
    int n = in.u8 () % 16;
    for (int i = 0; i < n; i++) {
      zoomrtms::PacketLogRecord rec;
      std::string key = in.str (), mode = in.str ();
      if (in.u8 () & 1)         /* past the limits: the writer cuts */
        key.append (zoomrtms::kPacketLogMaxKey, 'k');
      rec.timestamp_ms = (int64_t) in.u64 ();
      size_t got = 0;
      const uint8_t *pcm = in.bytes ((size_t) (in.u8 () & 0x7e), &got);
      got &= ~(size_t) 1;
      w.append (key, mode, rec.timestamp_ms, pcm, got);
      rec.key = key.substr (0, zoomrtms::kPacketLogMaxKey);
      rec.mode = mode.substr (0, zoomrtms::kPacketLogMaxMode);
      rec.pcm.assign (pcm, pcm + got);
      recs.push_back (std::move (rec));
    }
    w.close ();
  }
  gchar *contents = nullptr;
  gsize len = 0;
  FUZZ_CHECK (g_file_get_contents (path.c_str (), &contents, &len, nullptr),
      "read back");
  std::string file (contents, len);
  g_free (contents);
  uint8_t how = in.u8 ();
  size_t at = (size_t) in.u32 () % (file.size () + 1);
  bool intact = true;
  if (how % 3 == 1 && at < file.size ()) {
    file.resize (at);
    intact = false;
  } else if (how % 3 == 2 && at < file.size ()) {
    file[at] = (char) (file[at] ^ (in.u8 () | 1));
    intact = false;
  }
  write_file (path, file);
  zoomrtms::PacketLogReader r;
  std::string err;
  if (!r.open (path, &err)) {
    FUZZ_CHECK (!intact, "an intact log is refused: %s", err.c_str ());
    return;
  }
  zoomrtms::PacketLogRecord got;
  size_t k = 0;
  for (;; k++) {
    auto st = r.next (&got, &err);
    if (st != zoomrtms::PacketLogReader::Status::OK) {
      if (intact)
        FUZZ_CHECK (st == zoomrtms::PacketLogReader::Status::END &&
            k == recs.size (), "intact log: %zu of %zu records, then %d", k,
            recs.size (), (int) st);
      break;
    }
    FUZZ_CHECK (k < recs.size (), "more records than written");
    const auto &w = recs[k];
    FUZZ_CHECK (got.key == w.key && got.mode == w.mode &&
        got.timestamp_ms == w.timestamp_ms && got.pcm == w.pcm,
        "record %zu differs from the one written", k);
  }
}

} // namespace

extern "C" int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  FuzzInput in (data, size);
  if ((in.u8 () & 1) == 0)
    read_raw (in.rest ());
  else
    round_trip (in);
  return 0;
}
