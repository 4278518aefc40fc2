/* zoomrtms — differential check of the Aligner: this tree's against a git
 * revision's (namespace zoomrtms_base), fed the same random operations
 * (bench/aligner-ab.py --diff builds and runs it).
 *
 * Each scenario draws a configuration (rate, packet and block length,
 * layout, hold, start-up wait and hold for modes, gap fill, duplicate
 * history) and up to 600 operations on 1–4 channels: packets mostly in
 * order, with duplicates, reordering, gaps, jumps and far timestamps, odd
 * and short payloads; participant modes, announced channels, the first
 * packet timestamp event, release_hold, drain. After every operation both
 * Aligners must agree on the push result and its dropped samples, on every
 * block popped (position, flags, samples), on holding(), emitted_end(),
 * t0_ms(), resyncs() and, at the end, on every channel's stats. Exits 1 at
 * the first difference, printing the scenario's seed. */
#define zoomrtms zoomrtms_base
#include "base/zoomrtms-aligner.h"
#undef zoomrtms
#include "zoomrtms-aligner.h"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace {

struct Rng {
  std::mt19937_64 g;
  explicit Rng (uint64_t seed) : g (seed) {}
  int64_t in (int64_t lo, int64_t hi) /* [lo, hi] */
  {
    return lo + (int64_t) (g () % (uint64_t) (hi - lo + 1));
  }
  bool p (double q) { return (double) (g () >> 11) / 9007199254740992.0 < q; }
  template <typename T, size_t N> T of (const T (&v)[N]) { return v[in (0, N - 1)]; }
};

template <typename A, typename B>
bool
same_block (const A &a, const B &b)
{
  return a.position == b.position && a.samples == b.samples &&
      a.channels == b.channels && a.gap == b.gap && a.discont == b.discont;
}

bool
run (uint64_t seed, uint64_t *blocks)
{
  Rng r (seed);
  zoomrtms::AlignerConfig c;
  zoomrtms_base::AlignerConfig cb;
  c.rate = (int) r.of ({ 8000, 16000, 16000, 48000 });
  c.packet_ms = (int) r.of ({ 20, 20, 10, 40 });
  c.block_ms = (int) r.of ({ 0, 20, 60, 100, 100 });
  const bool stereo = r.p (0.6);
  c.layout = stereo ? zoomrtms::Layout::STEREO : zoomrtms::Layout::MIX;
  c.hold_ms = (unsigned) r.of ({ 0, 100, 400, 2000 });
  c.startup_wait_ms = (unsigned) r.of ({ 0, 200 });
  c.hold_for_modes = stereo && r.p (0.5);
  c.max_gap_fill_ms = (unsigned) r.of ({ 1000, 60000 });
  c.duplicate_history = (size_t) r.of ({ 4, 64, 4096 });
  c.max_startup_ms = (unsigned) r.of ({ 2000, 65000 });
  cb.rate = c.rate;
  cb.packet_ms = c.packet_ms;
  cb.block_ms = c.block_ms;
  cb.layout = stereo ? zoomrtms_base::Layout::STEREO :
      zoomrtms_base::Layout::MIX;
  cb.hold_ms = c.hold_ms;
  cb.startup_wait_ms = c.startup_wait_ms;
  cb.hold_for_modes = c.hold_for_modes;
  cb.max_gap_fill_ms = c.max_gap_fill_ms;
  cb.duplicate_history = c.duplicate_history;
  cb.max_startup_ms = c.max_startup_ms;
  zoomrtms::Aligner an (c);
  zoomrtms_base::Aligner ab (cb);
  const int nch = (int) r.in (1, 4);
  const std::string keys[4] = { "chan-a", "chan-b", "chan-c", "chan-d" };
  const char *modes[] = { "caller", "callee", "supervisor", "" };
  const int64_t t0 = 1738392033000 + r.in (0, 999);
  int64_t ts[4];
  for (int k = 0; k < 4; k++)
    ts[k] = t0 + r.in (-3, 3) * c.packet_ms + r.in (0, 1) * r.in (0, 9);
  const int pkt = c.rate * c.packet_ms / 1000;
  std::vector<uint8_t> pcm ((size_t) c.rate * 2 + 2);
  zoomrtms::AlignedBlock bn;
  zoomrtms_base::AlignedBlock bb;
  const int ops = (int) r.in (50, 600);
  for (int op = 0; op < ops; op++) {
    const int64_t what = r.in (0, 99);
    const int k = (int) r.in (0, nch - 1);
    if (what < 85) {
      int64_t t = ts[k];
      if (r.p (0.04))
        t -= r.in (1, 12) * c.packet_ms;                /* duplicate/late */
      else if (r.p (0.04))
        t += r.in (1, 30) * c.packet_ms;                /* gap, reorder */
      else if (r.p (0.005))
        t += r.of ({ 5000, 70000, 7200000 });           /* jump */
      else if (r.p (0.01))
        t += r.in (-7, 7);                              /* off the grid */
      int samples = pkt;
      if (r.p (0.03))
        samples = (int) r.in (1, pkt * 3);
      size_t bytes = (size_t) samples * 2 + (r.p (0.01) ? 1 : 0);
      if (bytes > pcm.size ())
        bytes = pcm.size ();
      for (size_t i = 0; i < bytes; i++)
        pcm[i] = (uint8_t) r.in (0, 255);
      if (r.p (0.1))            /* near full scale: saturation */
        for (size_t i = 1; i < bytes; i += 2)
          pcm[i] = r.p (0.5) ? 0x7f : 0x80;
      zoomrtms::PushDetail dn;
      zoomrtms_base::PushDetail db;
      auto rn = an.push (keys[k], t, pcm.data (), bytes, &dn);
      auto rb = ab.push (keys[k], t, pcm.data (), bytes, &db);
      if ((int) rn != (int) rb || dn.dropped_samples != db.dropped_samples) {
        fprintf (stderr, "seed %" PRIu64 " op %d: push %s/%s dropped %"
            PRId64 "/%" PRId64 "\n", seed, op, zoomrtms::push_result_name (rn),
            zoomrtms_base::push_result_name (rb), dn.dropped_samples,
            db.dropped_samples);
        return false;
      }
      if (t >= ts[k])
        ts[k] = t + c.packet_ms;
    } else if (what < 89) {
      const char *m = modes[r.in (0, 3)];
      an.set_participant_mode (keys[k], m);
      ab.set_participant_mode (keys[k], m);
    } else if (what < 91) {
      an.expect_channel (keys[k]);
      ab.expect_channel (keys[k]);
    } else if (what < 93) {
      int64_t t = ts[k] - r.in (0, 10) * c.packet_ms;
      an.set_first_packet_timestamp (t);
      ab.set_first_packet_timestamp (t);
    } else if (what < 95) {
      an.release_hold ();
      ab.release_hold ();
    } else if (what < 96) {
      an.drain ();
      ab.drain ();
    } else {
      continue;                 /* leave blocks queued a while */
    }
    if (r.p (0.8) || op == ops - 1) {
      for (;;) {
        bool hn = an.pop (&bn), hb = ab.pop (&bb);
        if (hn != hb || (hn && !same_block (bn, bb))) {
          fprintf (stderr, "seed %" PRIu64 " op %d: blocks differ (%d/%d, "
              "position %" PRId64 "/%" PRId64 ")\n", seed, op, hn, hb,
              bn.position, bb.position);
          return false;
        }
        if (!hn)
          break;
        (*blocks)++;
      }
    }
    if (an.holding () != ab.holding () || an.emitted_end () !=
        ab.emitted_end () || an.t0_ms () != ab.t0_ms () ||
        an.resyncs () != ab.resyncs ()) {
      fprintf (stderr, "seed %" PRIu64 " op %d: state differs\n", seed, op);
      return false;
    }
  }
  auto sn = an.stats ();
  auto sb = ab.stats ();
  for (size_t i = 0; i < sn.size () && i < sb.size (); i++)
    if (sn.size () != sb.size () || sn[i].key != sb[i].key ||
        sn[i].frames != sb[i].frames || sn[i].duplicates != sb[i].duplicates
        || sn[i].late != sb[i].late || sn[i].late_samples !=
        sb[i].late_samples || sn[i].out_of_range != sb[i].out_of_range ||
        sn[i].silence_samples != sb[i].silence_samples) {
      fprintf (stderr, "seed %" PRIu64 ": stats of %s differ\n", seed,
          sn[i].key.c_str ());
      return false;
    }
  return sn.size () == sb.size ();
}

} // namespace

int
main (int argc, char **argv)
{
  const uint64_t n = argc > 1 ? strtoull (argv[1], nullptr, 10) : 20000;
  uint64_t blocks = 0;
  for (uint64_t seed = 1; seed <= n; seed++)
    if (!run (seed, &blocks))
      return 1;
  printf ("%" PRIu64 " scenarios, %" PRIu64 " blocks: identical\n", n,
      blocks);
  return 0;
}
