/* zoomrtms — libFuzzer target: the Aligner (plugins/zoomrtms/
 * zoomrtms-aligner.h) fed packet sequences decoded from the input.
 *
 * Input: 3 config bytes (rate, packet_ms, layout/hold, skew, max gap,
 * duplicate history, block_ms), then operations of 1 + n bytes each:
 *   op & 7 = 0–3  push: channel (op >> 3) & 3, a timestamp step (small
 *                 signed, a whole-packet step, a huge jump or an absolute
 *                 int64 from the input), a payload size in samples (0 and odd
 *                 byte sizes included)
 *            4    set_participant_mode (caller / callee / other / "")
 *            5    set_first_packet_timestamp (near the last timestamp)
 *            6    release_hold, or pop one block
 *            7    drain
 * Timestamps are RTMS epoch ms from the wire: any int64 may arrive.
 *
 * Invariants:
 *  - no crash, no undefined behaviour (run with UBSan: signed overflow in
 *    timestamp × rate is a bug);
 *  - every block has block_frames() × channels() samples (fewer only with
 *    block_ms over packet_ms, around a drain), positions never go
 *    back, a block that does not follow the previous one is flagged discont;
 *  - bounded output: the samples emitted never exceed what the accepted
 *    packets can justify — each accepted packet at most its own samples plus
 *    a gap of max_gap_fill_ms plus two blocks (the packet's block and the
 *    alignment), plus the skew window, plus what t0 moving back (an
 *    earlier packet or set_first_packet_timestamp before the first
 *    block) adds in front; a packet cannot make the Aligner produce (or
 *    buffer) hours of silence, not even the first one after a t0 from
 *    set_first_packet_timestamp (or a continuation's origin);
 *  - counters add up: per channel frames + duplicates + late = the pushes
 *    that returned ACCEPTED/RESYNC, DUPLICATE, LATE on that channel (the
 *    accepted ones before a re-anchor that came before the first block
 *    move to out_of_range);
 *    resyncs() = the pushes that returned RESYNC.
 * max_gap_fill_ms = 0 ("fill any gap") is not fuzzed: unbounded silence is
 * what that setting asks for.
 *
 * ZOOMRTMS_FUZZ_ALIGNER_BOUNDED_START=1 (tools/fuzz.sh aligner-bounded):
 * timestamps stay in [0, 10^14] ms (what parse_message() lets through,
 * kMaxAudioTimestampMs) and, until the first block is out, within
 * max_gap_fill_ms of the first one. Only to fuzz past the known bugs (the
 * corpus files listed in tests/fuzz/known-failing.txt); the regression runs
 * without it.
 */
#include <algorithm>
#include <cinttypes>
#include <climits>
#include <map>
#include <string>
#include <vector>

#include "fuzz-util.h"
#include "zoomrtms-aligner.h"

using zoomrtms::Aligner;
using zoomrtms::AlignerConfig;
using zoomrtms::AlignedBlock;
using zoomrtms::PushResult;

namespace {

struct Counts {
  uint64_t accepted = 0, duplicate = 0, late = 0, out_of_range = 0;
};

struct State {
  int64_t budget = 0;          /* frames the accepted packets justify */
  int64_t emitted = 0;         /* frames popped */
  bool have_prev = false;
  int64_t prev_end = 0;
};

void
pop_all (Aligner &a, State &st, const AlignerConfig &cfg, size_t max = SIZE_MAX)
{
  AlignedBlock b;
  for (size_t i = 0; i < max && a.pop (&b); i++) {
    FUZZ_CHECK (b.channels == a.channels (), "block channels %d", b.channels);
    /* with blocks longer than a packet, drain()'s last block (and the
     * one after it, back onto the grid) may be shorter */
    FUZZ_CHECK ((b.frames () == (size_t) a.block_frames () ||
            (cfg.block_ms > cfg.packet_ms && b.frames () > 0 &&
                b.frames () < (size_t) a.block_frames ()))
        && b.samples.size () == b.frames () * (size_t) b.channels,
        "block of %zu samples, block_frames %d", b.samples.size (),
        a.block_frames ());
    if (st.have_prev) {
      FUZZ_CHECK (b.position >= st.prev_end, "position went back: %" PRId64
          " < %" PRId64, b.position, st.prev_end);
      if (b.position != st.prev_end)
        FUZZ_CHECK (b.discont, "jump without discont");
    }
    st.have_prev = true;
    st.prev_end = b.position + (int64_t) b.frames ();
    st.emitted += (int64_t) b.frames ();
    FUZZ_CHECK (st.emitted <= st.budget, "emitted %" PRId64 " frames, the "
        "accepted packets justify %" PRId64 " (rate %d, packet %d ms, max gap "
        "%u ms)", st.emitted, st.budget, cfg.rate, cfg.packet_ms,
        cfg.max_gap_fill_ms);
  }
}

} // namespace

extern "C" int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  FuzzInput in (data, size);
  static const int rates[] = { 8000, 16000, 32000, 48000 };
  static const int packet_ms[] = { 20, 40, 100, 1000 };
  static const unsigned gaps[] = { 20, 1000, 5000, 60000 };
  uint8_t c0 = in.u8 (), c1 = in.u8 (), c2 = in.u8 ();
  AlignerConfig cfg;
  cfg.rate = rates[c0 & 3];
  cfg.packet_ms = packet_ms[(c0 >> 2) & 3];
  cfg.layout = (c0 & 16) ? zoomrtms::Layout::STEREO : zoomrtms::Layout::MIX;
  cfg.hold_for_modes = (c0 & 32) != 0;
  cfg.skew_packets = c1 % 16;
  cfg.max_gap_fill_ms = gaps[(c1 >> 4) & 3];
  cfg.duplicate_history = 1 + c2 % 64;
  static const int block_ms[] = { 0, 20, 100, 60 };  /* 0 = one packet */
  cfg.block_ms = block_ms[c2 >> 6];

  Aligner a (cfg);
  const int64_t block = a.block_frames ();
  const int64_t per_packet_extra =
      (int64_t) cfg.rate * cfg.max_gap_fill_ms / 1000 + 2 * block;
  State st;
  st.budget = (int64_t) block * cfg.skew_packets + block;

  static const char *const keys[] = { "c0", "c1", "16778240", "" };
  static const char *const modes[] = { "caller", "callee", "agent", "" };
  std::map<std::string, Counts> counts;
  uint64_t resyncs = 0;
  int64_t ts = 1727384349123;  /* an RTMS epoch-ms timestamp */
  std::vector<uint8_t> pcm;
  int ops = 0;
  const int64_t kWireMaxTs = 100000000000000; /* 10^14 ms */
  static const bool bounded_start =
      getenv ("ZOOMRTMS_FUZZ_ALIGNER_BOUNDED_START") != nullptr;
  bool have_first_ts = false;
  int64_t first_ts = 0;

  while (!in.empty () && ops++ < 2000) {
    uint8_t op = in.u8 ();
    switch (op & 7) {
      case 0: case 1: case 2: case 3: {
        std::string key = keys[(op >> 3) & 3];
        uint8_t how = in.u8 ();
        int64_t step = 0;
        switch (how & 3) {
          case 0: step = (int8_t) in.u8 (); break;           /* jitter */
          case 1: step = (int64_t) cfg.packet_ms * ((int8_t) in.u8 ()); break;
          case 2: step = (int32_t) in.u32 (); break;         /* ±24 days */
          case 3: ts = (int64_t) in.u64 (); break;           /* anything */
        }
        ts = (int64_t) ((uint64_t) ts + (uint64_t) step); /* wraps, no UB */
        if (bounded_start && (ts < 0 || ts > kWireMaxTs))
          ts = (int64_t) ((uint64_t) ts % (uint64_t) (kWireMaxTs + 1));
        if (bounded_start && !st.have_prev && a.emitted_end () == 0) {
          if (!have_first_ts) {
            first_ts = ts;
            have_first_ts = true;
          }
          int64_t lim = cfg.max_gap_fill_ms;
          __int128 d = (__int128) ts - first_ts;
          if (d > lim || d < -lim)
            ts = (int64_t) ((uint64_t) first_ts
                + (uint64_t) ((int64_t) ((uint64_t) ts % (uint64_t) (2 * lim + 1)) - lim));
        }
        size_t samples = (how >> 2) & 1 ? (size_t) cfg.rate * cfg.packet_ms / 1000
                                         : in.u16 () % 4096;
        size_t bytes = samples * 2 + ((how >> 3) & 1); /* odd sizes too */
        pcm.resize (bytes);
        for (size_t i = 0; i < bytes; i++)
          pcm[i] = (uint8_t) (i * 37 + op);
        const int64_t t0_before = a.t0_ms ();
        const bool none_out = !st.have_prev && !a.has_ready ();
        PushResult r = a.push (key, ts, bytes ? pcm.data () : nullptr, bytes);
        uint64_t frames_now = 0;
        if (r == PushResult::RESYNC && none_out)
          for (const auto &s : a.stats ())
            frames_now += s.frames;
        if (r == PushResult::RESYNC && none_out && frames_now == 1) {
          /* a re-anchor before the first block: the packets accepted so
           * far were discarded and count as out_of_range now, only this
           * one is a frame (a resync by max_gap_fill_ms emits what is
           * pending instead, and keeps the counts) */
          for (auto &kc : counts) {
            kc.second.out_of_range += kc.second.accepted;
            kc.second.accepted = 0;
          }
        }
        /* before the first block t0 moves back to an earlier packet (up to
         * the hold, or the start-up hold's max_startup_ms): the span it
         * adds in front is justified like set_first_packet_timestamp's */
        if (t0_before != INT64_MIN && a.t0_ms () < t0_before)
          st.budget += (t0_before - a.t0_ms ()) * cfg.rate / 1000 + 2 * block;
        Counts &c = counts[key];
        switch (r) {
          case PushResult::RESYNC:
            resyncs++;
            /* fall through */
          case PushResult::ACCEPTED:
            c.accepted++;
            st.budget += (int64_t) samples + per_packet_extra;
            break;
          case PushResult::DUPLICATE: c.duplicate++; break;
          case PushResult::LATE: c.late++; break;
          case PushResult::OUT_OF_RANGE: c.out_of_range++; break;
          case PushResult::INVALID:
            FUZZ_CHECK (bytes == 0 || bytes % 2, "valid packet called INVALID");
            break;
        }
        if (bytes == 0 || bytes % 2)
          FUZZ_CHECK (r == PushResult::INVALID, "invalid packet %s",
              zoomrtms::push_result_name (r));
        break;
      }
      case 4:
        a.set_participant_mode (keys[(op >> 3) & 3], modes[(op >> 5) & 3]);
        break;
      case 5: {
        /* msg 6 event 1 up to 127 packets before the last timestamp: t0
         * may move back that far */
        int64_t back = (int64_t) (uint8_t) (in.u8 () & 127) * cfg.packet_ms;
        const int64_t t0_before = a.t0_ms ();
        a.set_first_packet_timestamp ((int64_t) ((uint64_t) ts - (uint64_t) back));
        /* the last timestamp may be a refused one, far from t0: t0 may
         * move back by more than `back` (up to the hold, or the start-up
         * hold's bound) */
        if (t0_before != INT64_MIN && a.t0_ms () < t0_before)
          back = std::max (back, t0_before - a.t0_ms ());
        if (bounded_start && !have_first_ts) {
          first_ts = ts;
          have_first_ts = true;
        }
        st.budget += back * cfg.rate / 1000 + 2 * block;
        break;
      }
      case 6:
        if (op & 8)
          a.release_hold ();
        else
          pop_all (a, st, cfg, 1);
        break;
      case 7:
        a.drain ();
        break;
    }
    pop_all (a, st, cfg);
  }
  a.drain ();
  pop_all (a, st, cfg);

  FUZZ_CHECK (a.resyncs () == resyncs, "resyncs %" PRIu64 " vs %" PRIu64,
      a.resyncs (), resyncs);
  for (const auto &s : a.stats ()) {
    Counts c = counts[s.key];
    FUZZ_CHECK (s.frames == c.accepted && s.duplicates == c.duplicate
        && s.late == c.late, "channel \"%s\": stats %" PRIu64 "/%" PRIu64 "/%"
        PRIu64 ", pushes %" PRIu64 "/%" PRIu64 "/%" PRIu64, s.key.c_str (),
        s.frames, s.duplicates, s.late, c.accepted, c.duplicate, c.late);
  }
  return 0;
}
