/* zoomrtms — libFuzzer target: the journal's durable copy records
 * (zhost::journal_slots_parse, src/host/host-journal.h "The durable copy"),
 * the file a restarted host reads back after a power cut (a file that may
 * be torn mid-write, garbled, or of another format).
 *
 * The first input byte picks the mode.
 * Even: the rest is the file. At most two records come back, in file
 * order, each at offset 0 or at its slot size (a multiple of 4096), inside
 * its slot and inside the file, with at most 4 MiB of text; encoding a
 * record again gives exactly the bytes of the file at its offset.
 * Odd: a file of two records (texts and sequence numbers from the input,
 * slots sized as the journal sizes them) is cut at an input-chosen length
 * or has one byte changed. Exactly the records whose bytes are intact come
 * back, equal to what was written; an intact file gives both.
 */
#include <string>
#include <vector>

#include "fuzz-util.h"
#include "host-journal.h"

namespace {

void
read_raw (const std::string &bytes)
{
  auto v = zhost::journal_slots_parse (bytes);
  FUZZ_CHECK (v.size () <= 2, "%zu records", v.size ());
  for (size_t k = 0; k < v.size (); k++) {
    const auto &s = v[k];
    FUZZ_CHECK (s.slot_size >= 4096 && s.slot_size % 4096 == 0, "slot size %zu",
        (size_t) s.slot_size);
    FUZZ_CHECK (s.offset == 0 || s.offset == s.slot_size, "offset %zu, slot size %zu",
        (size_t) s.offset, (size_t) s.slot_size);
    FUZZ_CHECK (s.text.size () <= 4u * 1024 * 1024, "text of %zu bytes", s.text.size ());
    FUZZ_CHECK (k == 0 || s.offset > v[k - 1].offset, "records out of order");
    std::string rec = zhost::journal_slot_encode (s.slot_size, s.seq, s.text);
    FUZZ_CHECK (rec.size () <= s.slot_size, "a record of %zu bytes in a %zu-byte slot",
        rec.size (), (size_t) s.slot_size);
    FUZZ_CHECK (bytes.compare (s.offset, rec.size (), rec) == 0,
        "record at %zu is not the file's bytes: %s", (size_t) s.offset,
        fuzz_escape (rec).c_str ());
  }
}

void
round_trip (FuzzInput &in)
{
  std::string a = in.str (), b = in.str ();
  guint64 sa = in.u64 () % 100000, sb = in.u64 () % 100000;
  gsize slot = zhost::journal_slot_size_for (MAX (a.size (), b.size ()));
  std::string ra = zhost::journal_slot_encode (slot, sa, a);
  std::string rb = zhost::journal_slot_encode (slot, sb, b);
  FUZZ_CHECK (ra.size () <= slot && rb.size () <= slot, "records do not fit");
  std::string file = ra;
  file.resize (slot, static_cast<char> (in.u8 ()));   /* what was there before */
  file += rb;
  uint8_t how = in.u8 ();
  size_t at = (size_t) in.u32 () % (file.size () + 1);
  bool a_ok = true, b_ok = true;
  if (how % 3 == 1) {
    file.resize (at);
    a_ok = at >= ra.size ();
    b_ok = at >= slot + rb.size ();
  } else if (how % 3 == 2 && at < file.size ()) {
    file[at] = (char) (file[at] ^ (in.u8 () | 1));
    a_ok = at >= ra.size ();
    b_ok = at < slot;
  }
  auto v = zhost::journal_slots_parse (file);
  std::vector<bool> seen (2, false);
  for (const auto &s : v) {
    FUZZ_CHECK (s.slot_size == slot, "slot size %zu, written %zu", (size_t) s.slot_size,
        (size_t) slot);
    int k = s.offset == 0 ? 0 : 1;
    FUZZ_CHECK (s.offset == 0 || s.offset == slot, "offset %zu", (size_t) s.offset);
    FUZZ_CHECK (k == 0 ? a_ok : b_ok, "record %d read back though changed", k);
    FUZZ_CHECK (s.text == (k == 0 ? a : b) && s.seq == (k == 0 ? sa : sb),
        "record %d differs from the one written", k);
    seen[k] = true;
  }
  FUZZ_CHECK (seen[0] == a_ok && seen[1] == b_ok, "intact records missing: %d/%d of %d/%d",
      (int) seen[0], (int) seen[1], (int) a_ok, (int) b_ok);
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
