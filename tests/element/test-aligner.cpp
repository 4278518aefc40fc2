/* Unit tests of zoomrtms::Aligner (plugins/zoomrtms/zoomrtms-aligner.h):
 * channel alignment by RTMS timestamp, gap silence, duplicates, late and
 * reordered packets, resync, mix and stereo layouts. No GStreamer. */
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "zoomrtms-aligner.h"

using namespace zoomrtms;

/* Allocation counter for AlignerAlloc: every operator new of this program
 * while g_count_allocs is set (the tests run on one thread). */
#if defined(__GNUC__) && !defined(__clang__)
/* the replacement operator delete frees what the replacement new got from
 * malloc; GCC cannot see that pairing across the replacement */
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
static std::atomic<bool> g_count_allocs { false };
static std::atomic<uint64_t> g_allocs { 0 };

void *
operator new (std::size_t n)
{
  if (g_count_allocs.load (std::memory_order_relaxed))
    g_allocs.fetch_add (1, std::memory_order_relaxed);
  if (void *p = std::malloc (n ? n : 1))
    return p;
  throw std::bad_alloc ();
}

void
operator delete (void *p) noexcept
{
  std::free (p);
}

void
operator delete (void *p, std::size_t) noexcept
{
  std::free (p);
}

namespace {

constexpr int kRate = 16000;
constexpr int kPacketMs = 20;
constexpr int kBlock = kRate * kPacketMs / 1000; /* 320 samples */
constexpr int64_t kT0 = 1738392033000;           /* epoch ms */

/* A recognisable non-zero sample value of channel @ch at absolute timeline
 * sample @pos (so misplacement by even one sample is detected). */
int16_t
val (int ch, int64_t pos)
{
  return (int16_t) (1 + ch * 5000 + (pos * 7919) % 4000);
}

/* One 20 ms S16LE packet of channel @ch starting at @ts_ms. */
std::vector<uint8_t>
packet (int ch, int64_t ts_ms, int samples = kBlock)
{
  std::vector<uint8_t> b ((size_t) samples * 2);
  int64_t pos = (ts_ms - kT0) * kRate / 1000;
  for (int i = 0; i < samples; i++) {
    uint16_t v = (uint16_t) val (ch, pos + i);
    b[2 * i] = (uint8_t) (v & 0xff);
    b[2 * i + 1] = (uint8_t) (v >> 8);
  }
  return b;
}

std::vector<uint8_t>
constant_packet (int16_t v, int samples = kBlock)
{
  std::vector<uint8_t> b ((size_t) samples * 2);
  for (int i = 0; i < samples; i++) {
    b[2 * i] = (uint8_t) ((uint16_t) v & 0xff);
    b[2 * i + 1] = (uint8_t) ((uint16_t) v >> 8);
  }
  return b;
}

PushResult
push (Aligner &a, const std::string &key, int ch, int64_t ts_ms)
{
  auto p = packet (ch, ts_ms);
  return a.push (key, ts_ms, p.data (), p.size ());
}

struct Output {
  std::vector<AlignedBlock> blocks;
  std::vector<int16_t> samples; /* concatenated, interleaved */
};

Output
take_all (Aligner &a)
{
  Output o;
  AlignedBlock b;
  while (a.pop (&b)) {
    o.samples.insert (o.samples.end (), b.samples.begin (), b.samples.end ());
    o.blocks.push_back (b);
  }
  return o;
}

AlignerConfig
config (Layout layout, unsigned max_gap_ms = 60000)
{
  AlignerConfig c;
  c.rate = kRate;
  c.packet_ms = kPacketMs;
  c.layout = layout;
  c.max_gap_fill_ms = max_gap_ms;
  c.skew_packets = 10;
  return c;
}

const ChannelStats &
stats_of (const std::vector<ChannelStats> &v, const std::string &key)
{
  for (auto &s : v)
    if (s.key == key)
      return s;
  static ChannelStats none;
  ADD_FAILURE () << "no stats for " << key;
  return none;
}

} // namespace

/* Block positions are contiguous and cover the whole input, first block
 * discont, PTS-relevant positions are multiples of one packet. */
TEST (Aligner, SingleChannelContiguousBlocks)
{
  Aligner a (config (Layout::MIX));
  for (int i = 0; i < 50; i++)
    ASSERT_EQ (push (a, "0", 0, kT0 + i * kPacketMs), PushResult::ACCEPTED);
  a.drain ();
  Output o = take_all (a);
  ASSERT_EQ (o.blocks.size (), 50u);
  for (size_t i = 0; i < o.blocks.size (); i++) {
    EXPECT_EQ (o.blocks[i].position, (int64_t) i * kBlock);
    EXPECT_EQ (o.blocks[i].frames (), (size_t) kBlock);
    EXPECT_EQ (o.blocks[i].discont, i == 0);
    EXPECT_FALSE (o.blocks[i].gap);
  }
  for (int64_t p = 0; p < 50 * kBlock; p++)
    ASSERT_EQ (o.samples[p], val (0, p)) << "sample " << p;
}

/* Two channels, the agent starts 100 ms after the customer; in stereo the
 * customer is left, the agent right, and the agent's first sample lands at
 * exactly 100 ms (1600 samples), whatever the arrival order of the first
 * packets. */
static void
check_offset_start (bool agent_first)
{
  Aligner a (config (Layout::STEREO));
  a.set_participant_mode ("C-cust", "caller");
  a.set_participant_mode ("C-agent", "callee");
  const int n = 50;
  if (agent_first)
    push (a, "C-agent", 1, kT0 + 100);
  for (int i = 0; i < n; i++) {
    push (a, "C-cust", 0, kT0 + i * kPacketMs);
    int64_t ts = kT0 + 100 + i * kPacketMs;
    if (i < n - 5 && !(agent_first && i == 0))
      push (a, "C-agent", 1, ts);
  }
  a.drain ();
  Output o = take_all (a);
  ASSERT_EQ (o.blocks.size (), (size_t) n);
  EXPECT_EQ (a.t0_ms (), kT0);
  for (int64_t p = 0; p < n * kBlock; p++) {
    ASSERT_EQ (o.samples[2 * p], val (0, p)) << "left sample " << p;
    int16_t want_right = p < 1600 ? 0 : val (1, p);
    ASSERT_EQ (o.samples[2 * p + 1], want_right) << "right sample " << p;
  }
  auto st = a.stats ();
  EXPECT_EQ (stats_of (st, "C-cust").frames, (uint64_t) n);
  EXPECT_EQ (stats_of (st, "C-agent").frames, (uint64_t) n - 5);
  EXPECT_EQ (stats_of (st, "C-agent").silence_samples, 0u);
  EXPECT_EQ (stats_of (st, "C-agent").late, 0u);
}

TEST (Aligner, TwoChannelsAlignedWithOffsetStart)
{
  check_offset_start (false);
}

TEST (Aligner, OffsetStartLaterChannelArrivesFirst)
{
  check_offset_start (true);
}

/* The customer is muted from 500 ms to 1000 ms: exactly 8000 samples of zeros
 * on the left, nothing changes on the right, and the blocks are not GAP. */
TEST (Aligner, MuteWindowExactSilenceInThatChannelOnly)
{
  Aligner a (config (Layout::STEREO));
  a.set_participant_mode ("cust", "caller");
  a.set_participant_mode ("agent", "callee");
  const int n = 100;
  for (int i = 0; i < n; i++) {
    int64_t ts = kT0 + i * kPacketMs;
    if (!(ts >= kT0 + 500 && ts < kT0 + 1000))
      push (a, "cust", 0, ts);
    push (a, "agent", 1, ts);
  }
  a.drain ();
  Output o = take_all (a);
  ASSERT_EQ (o.samples.size (), (size_t) n * kBlock * 2);
  size_t zeros_left = 0;
  for (int64_t p = 0; p < n * kBlock; p++) {
    bool muted = p >= 8000 && p < 16000;
    ASSERT_EQ (o.samples[2 * p], muted ? 0 : val (0, p)) << "left " << p;
    ASSERT_EQ (o.samples[2 * p + 1], val (1, p)) << "right " << p;
    zeros_left += o.samples[2 * p] == 0;
  }
  EXPECT_EQ (zeros_left, 8000u);
  for (auto &b : o.blocks)
    EXPECT_FALSE (b.gap);
  auto st = a.stats ();
  EXPECT_EQ (stats_of (st, "cust").silence_samples, 8000u);
  EXPECT_EQ (stats_of (st, "agent").silence_samples, 0u);
  EXPECT_EQ (stats_of (st, "cust").frames, (uint64_t) n - 25);
}

/* A muted channel does not stall the other: blocks come out once the other
 * channel is the skew window (10 packets) past their end. */
TEST (Aligner, MutedChannelDoesNotStall)
{
  Aligner a (config (Layout::STEREO));
  for (int i = 0; i < 5; i++) {
    push (a, "a", 0, kT0 + i * kPacketMs);
    push (a, "b", 1, kT0 + i * kPacketMs);
  }
  for (int i = 5; i < 40; i++)
    push (a, "a", 0, kT0 + i * kPacketMs);
  /* a has 40 packets; block k is out when 40*B - (k+1)*B >= 10*B */
  Output o = take_all (a);
  EXPECT_EQ (o.blocks.size (), 30u);
}

/* Every 5th packet sent twice: output unchanged, duplicates counted. */
TEST (Aligner, DuplicatesDropped)
{
  Aligner clean (config (Layout::STEREO));
  Aligner dup (config (Layout::STEREO));
  const int n = 100;
  int dups = 0;
  for (int i = 0; i < n; i++) {
    int64_t ts = kT0 + i * kPacketMs;
    for (Aligner *a : { &clean, &dup }) {
      push (*a, "cust", 0, ts);
      push (*a, "agent", 1, ts);
    }
    if (i % 5 == 4) {
      EXPECT_EQ (push (dup, "cust", 0, ts), PushResult::DUPLICATE);
      dups++;
    }
  }
  /* a replay of the first second after a failover (§4.9) */
  for (int i = 0; i < 50; i++)
    EXPECT_EQ (push (dup, "agent", 1, kT0 + i * kPacketMs),
        PushResult::DUPLICATE);
  clean.drain ();
  dup.drain ();
  Output oc = take_all (clean), od = take_all (dup);
  EXPECT_EQ (oc.samples, od.samples);
  auto st = dup.stats ();
  EXPECT_EQ (stats_of (st, "cust").duplicates, (uint64_t) dups);
  EXPECT_EQ (stats_of (st, "agent").duplicates, 50u);
  EXPECT_EQ (stats_of (st, "cust").frames, (uint64_t) n);
}

/* A packet for a block already emitted is dropped as late. */
TEST (Aligner, LateDropped)
{
  Aligner a (config (Layout::STEREO));
  a.set_participant_mode ("cust", "caller");
  a.set_participant_mode ("agent", "callee");
  for (int i = 0; i < 40; i++) {
    push (a, "cust", 0, kT0 + i * kPacketMs);
    if (i != 3)
      push (a, "agent", 1, kT0 + i * kPacketMs);
  }
  /* block 3 went out with the agent silent; its packet now comes too late */
  EXPECT_EQ (push (a, "agent", 1, kT0 + 3 * kPacketMs), PushResult::LATE);
  a.drain ();
  Output o = take_all (a);
  ASSERT_EQ (o.blocks.size (), 40u);
  for (int64_t p = 3 * kBlock; p < 4 * kBlock; p++)
    ASSERT_EQ (o.samples[2 * p + 1], 0);
  ASSERT_EQ (o.samples[2 * (4 * kBlock) + 1], val (1, 4 * kBlock));
  auto st = a.stats ();
  EXPECT_EQ (stats_of (st, "agent").late, 1u);
  EXPECT_EQ (stats_of (st, "agent").duplicates, 0u);
  EXPECT_EQ (stats_of (st, "agent").silence_samples, (uint64_t) kBlock);
}

/* Packets swapped in pairs (and one 5 packets out of order) land in place. */
TEST (Aligner, ReorderWithinWindow)
{
  Aligner a (config (Layout::MIX));
  std::vector<int> order;
  for (int i = 0; i < 60; i += 2) {
    order.push_back (i + 1);
    order.push_back (i);
  }
  /* move packet 30 five places later */
  auto it = std::find (order.begin (), order.end (), 30);
  order.erase (it);
  order.insert (order.begin () + 35, 30);
  for (int i : order)
    ASSERT_EQ (push (a, "0", 0, kT0 + i * kPacketMs), PushResult::ACCEPTED)
        << "packet " << i;
  a.drain ();
  Output o = take_all (a);
  ASSERT_EQ (o.samples.size (), 60u * kBlock);
  for (int64_t p = 0; p < 60 * kBlock; p++)
    ASSERT_EQ (o.samples[p], val (0, p)) << "sample " << p;
  auto st = a.stats ();
  EXPECT_EQ (st[0].late, 0u);
  EXPECT_EQ (st[0].duplicates, 0u);
  EXPECT_EQ (st[0].silence_samples, 0u);
}

/* All channels stop: a 500 ms pause is filled with GAP blocks; a 5 s pause
 * beyond max-gap-fill (1 s) jumps the timeline with DISCONT and no filling. */
TEST (Aligner, MaxGapFillResync)
{
  Aligner a (config (Layout::MIX, 1000));
  int64_t ts = kT0;
  for (int i = 0; i < 20; i++, ts += kPacketMs)
    push (a, "0", 0, ts);
  ts += 500;                    /* pause < max-gap-fill */
  for (int i = 0; i < 20; i++, ts += kPacketMs)
    ASSERT_EQ (push (a, "0", 0, ts), PushResult::ACCEPTED);
  ts += 5000;                   /* pause > max-gap-fill */
  int64_t resume = ts;
  EXPECT_EQ (push (a, "0", 0, ts), PushResult::RESYNC);
  ts += kPacketMs;
  for (int i = 1; i < 20; i++, ts += kPacketMs)
    ASSERT_EQ (push (a, "0", 0, ts), PushResult::ACCEPTED);
  a.drain ();
  Output o = take_all (a);
  EXPECT_EQ (a.resyncs (), 1u);
  /* 20 + 25 gap + 20 + 20 blocks */
  ASSERT_EQ (o.blocks.size (), 85u);
  int gaps = 0;
  for (size_t i = 0; i < o.blocks.size (); i++) {
    auto &b = o.blocks[i];
    bool in_gap = i >= 20 && i < 45;
    EXPECT_EQ (b.gap, in_gap) << "block " << i;
    if (in_gap) {
      gaps++;
      for (auto s : b.samples)
        ASSERT_EQ (s, 0);
    }
    EXPECT_EQ (b.discont, i == 0 || i == 65) << "block " << i;
    if (i < 65) {
      EXPECT_EQ (b.position, (int64_t) i * kBlock);
    }
  }
  EXPECT_EQ (gaps, 25);
  /* after the jump, positions follow the stream time again */
  EXPECT_EQ (o.blocks[65].position, (resume - kT0) * kRate / 1000);
  EXPECT_EQ (o.blocks[84].position, o.blocks[65].position + 19 * kBlock);
  for (int64_t k = 0; k < kBlock; k++)
    ASSERT_EQ (o.blocks[65].samples[k], val (0, o.blocks[65].position + k));
  /* the filled 500 ms count as silence, the jump does not */
  EXPECT_EQ (a.stats ()[0].silence_samples, 8000u);
}

/* The same rule before the first block is out: two packets an hour apart
 * (within the 1 h out-of-range bound) jump the timeline instead of an hour
 * of silence (fuzz corpus aligner/resync-hour-jump: 180,000 gap blocks). */
TEST (Aligner, MaxGapFillResyncBeforeTheFirstBlock)
{
  Aligner a (config (Layout::MIX, 1000));
  ASSERT_EQ (push (a, "0", 0, kT0), PushResult::ACCEPTED);
  int64_t later = kT0 + 3600 * 1000 - 1000;
  EXPECT_EQ (push (a, "0", 0, later), PushResult::RESYNC);
  a.drain ();
  Output o = take_all (a);
  EXPECT_EQ (a.resyncs (), 1u);
  ASSERT_EQ (o.blocks.size (), 2u);
  EXPECT_TRUE (o.blocks[0].discont);
  EXPECT_TRUE (o.blocks[1].discont);
  EXPECT_EQ (o.blocks[1].position, (later - kT0) * kRate / 1000);
  for (int64_t k = 0; k < kBlock; k++)
    ASSERT_EQ (o.blocks[1].samples[k], val (0, o.blocks[1].position + k));
}

/* layout=mix sums the channels with saturation. */
TEST (Aligner, MixSaturation)
{
  Aligner a (config (Layout::MIX));
  const int16_t cases[][3] = { { 30000, 10000, 32767 },
    { -30000, -10000, -32768 }, { 100, 200, 300 }, { -5, 3, -2 } };
  for (int i = 0; i < 4; i++) {
    auto p1 = constant_packet (cases[i][0]);
    auto p2 = constant_packet (cases[i][1]);
    a.push ("x", kT0 + i * kPacketMs, p1.data (), p1.size ());
    a.push ("y", kT0 + i * kPacketMs, p2.data (), p2.size ());
  }
  a.drain ();
  Output o = take_all (a);
  ASSERT_EQ (o.blocks.size (), 4u);
  for (int i = 0; i < 4; i++) {
    EXPECT_EQ (o.blocks[i].channels, 1);
    for (auto s : o.blocks[i].samples)
      ASSERT_EQ (s, cases[i][2]) << "block " << i;
  }
}

/* layout=stereo: caller left, callee right, whatever order they appear in;
 * without modes the first channel seen is left; a mode learned late applies
 * to pending audio; a third channel goes to its mode's side. */
TEST (Aligner, StereoInterleaveOrder)
{
  {
    Aligner a (config (Layout::STEREO));
    auto pa = constant_packet (222), pc = constant_packet (111);
    a.push ("agent", kT0, pa.data (), pa.size ());
    a.push ("cust", kT0, pc.data (), pc.size ());
    a.set_participant_mode ("agent", "callee");
    a.set_participant_mode ("cust", "caller");
    a.drain ();
    Output o = take_all (a);
    ASSERT_EQ (o.samples.size (), 2u * kBlock);
    for (int i = 0; i < kBlock; i++) {
      ASSERT_EQ (o.samples[2 * i], 111);
      ASSERT_EQ (o.samples[2 * i + 1], 222);
    }
  }
  {
    Aligner a (config (Layout::STEREO));
    auto p1 = constant_packet (1), p2 = constant_packet (2),
         p3 = constant_packet (4);
    a.push ("first", kT0, p1.data (), p1.size ());
    a.push ("second", kT0, p2.data (), p2.size ());
    a.drain ();
    Output o = take_all (a);
    EXPECT_EQ (o.samples[0], 1);
    EXPECT_EQ (o.samples[1], 2);
    /* a supervisor joins: agent side */
    a.set_participant_mode ("third", "supervisor");
    a.push ("third", kT0 + 20, p3.data (), p3.size ());
    a.push ("first", kT0 + 20, p1.data (), p1.size ());
    a.push ("second", kT0 + 20, p2.data (), p2.size ());
    a.drain ();
    o = take_all (a);
    ASSERT_EQ (o.samples.size (), 2u * kBlock);
    EXPECT_EQ (o.samples[0], 1);
    EXPECT_EQ (o.samples[1], 6);
  }
}

/* The FIRST_PACKET_TIMESTAMP event sets t0 when it comes first: audio that
 * starts 40 ms later is preceded by 40 ms of silence. */
TEST (Aligner, FirstPacketTimestampEvent)
{
  Aligner a (config (Layout::MIX));
  a.set_first_packet_timestamp (kT0);
  for (int i = 0; i < 20; i++)
    push (a, "0", 0, kT0 + 40 + i * kPacketMs);
  a.drain ();
  Output o = take_all (a);
  ASSERT_EQ (o.samples.size (), 22u * kBlock);
  for (int64_t p = 0; p < 640; p++)
    ASSERT_EQ (o.samples[p], 0);
  EXPECT_TRUE (o.blocks[0].gap);
  EXPECT_TRUE (o.blocks[1].gap);
  EXPECT_FALSE (o.blocks[2].gap);
  for (int64_t p = 640; p < 22 * kBlock; p++)
    ASSERT_EQ (o.samples[p], val (0, p));
}

/* Pops at most @max blocks into @o; returns the number popped. A bound, so
 * that a test of bounded output fails (instead of running for hours) when
 * the Aligner queues millions of blocks. */
static size_t
take_at_most (Aligner &a, size_t max, Output *o)
{
  AlignedBlock b;
  size_t n = 0;
  while (n < max && a.pop (&b)) {
    o->samples.insert (o->samples.end (), b.samples.begin (), b.samples.end ());
    o->blocks.push_back (b);
    n++;
  }
  return n;
}

/* A first packet 10 h after the FIRST_PACKET_TIMESTAMP event (a wrong or
 * hostile event, or a stream that starts late): that span is a gap longer
 * than max_gap_fill_ms (60 s) and is not filled; t0 becomes the packet's.
 * Before the fix the Aligner queued 10 h of silence (1.8 million blocks)
 * from the event's t0, one emitter step per block: the fuzz target's
 * timeouts (tests/fuzz/corpus/aligner/slow-first-packet-far-after-event). */
TEST (Aligner, FirstPacketFarAfterTheFirstPacketTimestampEvent)
{
  Aligner a (config (Layout::MIX));
  const int64_t t1 = kT0 + 10LL * 3600 * 1000;
  a.set_first_packet_timestamp (kT0);
  for (int i = 0; i < 10; i++)
    EXPECT_EQ (push (a, "0", 0, t1 + i * kPacketMs), PushResult::ACCEPTED);
  a.drain ();
  EXPECT_LE (a.emit_steps (), 10u);
  Output o;
  EXPECT_EQ (take_at_most (a, 1000, &o), 10u);
  EXPECT_FALSE (a.has_ready ());
  ASSERT_FALSE (o.blocks.empty ());
  EXPECT_EQ (a.t0_ms (), t1);
  EXPECT_EQ (o.blocks[0].position, 0);
  EXPECT_TRUE (o.blocks[0].discont);
  EXPECT_FALSE (o.blocks[0].gap);
  const int64_t p1 = (t1 - kT0) * kRate / 1000;
  for (int64_t p = 0; p < (int64_t) o.samples.size (); p++)
    ASSERT_EQ (o.samples[(size_t) p], val (0, p1 + p)) << p;
  EXPECT_EQ (a.resyncs (), 0u);
}

/* The same for a continuation (fixed origin, start position): its first
 * packet 10 h after the start position jumps the timeline (a resync:
 * positions follow the timestamps, discont) instead of 10 h of silence. */
TEST (Aligner, ContinuationFirstPacketFarAfterTheStartJumps)
{
  AlignerConfig c = config (Layout::MIX);
  c.origin_ms = kT0;
  c.start_position = 100 * kBlock;
  Aligner a (c);
  const int64_t t1 = kT0 + 10LL * 3600 * 1000;
  EXPECT_EQ (push (a, "A", 0, t1), PushResult::RESYNC);
  for (int i = 1; i < 10; i++)
    EXPECT_EQ (push (a, "A", 0, t1 + i * kPacketMs), PushResult::ACCEPTED);
  a.drain ();
  Output o;
  EXPECT_EQ (take_at_most (a, 1000, &o), 10u);
  EXPECT_FALSE (a.has_ready ());
  ASSERT_FALSE (o.blocks.empty ());
  EXPECT_EQ (a.t0_ms (), kT0);
  const int64_t p1 = (t1 - kT0) * kRate / 1000;
  EXPECT_EQ (o.blocks[0].position, p1);
  EXPECT_TRUE (o.blocks[0].discont);
  EXPECT_FALSE (o.blocks[0].gap);
  for (int64_t p = 0; p < (int64_t) o.samples.size (); p++)
    ASSERT_EQ (o.samples[(size_t) p], val (0, p1 + p)) << p;
  EXPECT_EQ (a.resyncs (), 1u);
  /* within max_jump_ms of the start, the span is still exact silence
   * (ContinuationStartsAtTheOffsetWithExactSilence,
   * ContinuationDowntimeLongerThanMaxGapIsSilence) */
}

/* Review finding: a restart whose first packet comes 5 min after the
 * continuation's start (more than max_gap_fill_ms, a slow rejoin) is exact
 * silence up to it, not a jump: the host counts the samples in its files as
 * timeline positions, and the next restart continues from there. */
TEST (Aligner, ContinuationDowntimeLongerThanMaxGapIsSilence)
{
  AlignerConfig c = config (Layout::MIX);
  c.origin_ms = kT0;
  c.start_position = 100 * kBlock;
  Aligner a (c);
  const int64_t t1 = kT0 + 100 * kPacketMs + 5LL * 60 * 1000;
  EXPECT_EQ (push (a, "A", 0, t1), PushResult::ACCEPTED);
  for (int i = 1; i < 10; i++)
    EXPECT_EQ (push (a, "A", 0, t1 + i * kPacketMs), PushResult::ACCEPTED);
  a.drain ();
  int64_t expect = 100 * kBlock;
  size_t blocks = 0;
  while (a.has_ready ()) {
    AlignedBlock b;
    ASSERT_TRUE (a.pop (&b));
    ASSERT_EQ (b.position, expect);
    EXPECT_EQ (b.discont, blocks == 0);   /* the stream's first block only */
    expect += (int64_t) b.frames ();
    blocks++;
  }
  EXPECT_EQ (expect, (t1 - kT0) * kRate / 1000 + 10 * kBlock);
  EXPECT_EQ (a.resyncs (), 0u);
  EXPECT_GT (blocks, 15000u);
}

/* A gap that is filled (max_gap_fill_ms = 0: any gap up to max_jump_ms,
 * here 50 min; and 59 s under the default 60 s) costs the emitter one step
 * for the whole silence run, not one per block (150,000 and 2,950 blocks):
 * the run is one Ready entry, popped block by block with the right
 * positions. */
TEST (Aligner, FilledGapIsOneEmitterStep)
{
  struct Case {
    unsigned max_gap_ms;
    int64_t gap_ms;
  } cases[] = { { 0, 50LL * 60 * 1000 }, { 60000, 59000 } };
  for (const Case &k : cases) {
    SCOPED_TRACE (k.gap_ms);
    Aligner a (config (Layout::MIX, k.max_gap_ms));
    for (int i = 0; i < 20; i++)
      push (a, "0", 0, kT0 + i * kPacketMs);
    const int64_t t1 = kT0 + 20 * kPacketMs + k.gap_ms;
    const uint64_t before = a.emit_steps ();
    EXPECT_EQ (push (a, "0", 0, t1), PushResult::ACCEPTED);
    /* the held blocks with audio before the gap (the hold: 10 packets),
     * then one run of gap blocks */
    EXPECT_LE (a.emit_steps () - before, 12u);
    for (int i = 1; i < 20; i++)
      push (a, "0", 0, t1 + i * kPacketMs);
    a.drain ();
    const int64_t blocks = (t1 - kT0) / kPacketMs + 20;
    Output o;
    EXPECT_EQ ((int64_t) take_at_most (a, (size_t) blocks + 10, &o), blocks);
    int64_t gaps = 0;
    for (size_t i = 0; i < o.blocks.size (); i++) {
      ASSERT_EQ (o.blocks[i].position, (int64_t) i * kBlock);
      gaps += o.blocks[i].gap;
    }
    EXPECT_EQ (gaps, k.gap_ms / kPacketMs);
    EXPECT_EQ (a.resyncs (), 0u);
  }
}

/* A resync costs what is pending, not the rings: with a 60 s hold the
 * rings have grown to 2^20 slots (a packet 50 s ahead of the other), then
 * 50 packets each 70 s after the last (every one a resync, max gap 60 s).
 * Before the fix each resync cleared every ring whole (2^20 slots × 2
 * channels, 100 M slots in all: the fuzz target's "dense stream, large
 * hold" slowness); now nothing is left to clear after the flush. */
TEST (Aligner, ResyncDoesNotClearTheWholeRings)
{
  AlignerConfig c = config (Layout::STEREO);
  c.hold_ms = 60000;
  Aligner a (c);
  push (a, "A", 0, kT0);
  push (a, "B", 1, kT0);
  push (a, "A", 0, kT0 + 50000);
  ASSERT_GE (a.capacity (), (size_t) 1 << 20);
  int64_t t = kT0 + 50000;
  for (int i = 0; i < 50; i++) {
    t += 70000;
    ASSERT_EQ (push (a, i % 2 ? "B" : "A", i % 2, t), PushResult::RESYNC);
  }
  EXPECT_EQ (a.resyncs (), 50u);
  EXPECT_LT (a.ring_slots_cleared (), (uint64_t) a.capacity ());
  a.drain ();
  Output o = take_all (a);
  /* every packet's audio is out, after the jumps at its timestamp */
  int64_t data_blocks = 0;
  for (auto &b : o.blocks)
    data_blocks += !b.gap;
  EXPECT_EQ (data_blocks, 52);
  const AlignedBlock &last = o.blocks.back ();
  EXPECT_EQ (last.position, (t - kT0) * kRate / 1000);
  EXPECT_TRUE (last.discont);
  for (size_t i = 0; i < last.frames (); i++)
    ASSERT_EQ (last.samples[2 * i + 1], val (1, last.position + (int64_t) i));
}

TEST (Aligner, InvalidPayload)
{
  Aligner a (config (Layout::MIX));
  uint8_t odd[3] = { 1, 2, 3 };
  EXPECT_EQ (a.push ("0", kT0, odd, 3), PushResult::INVALID);
  EXPECT_EQ (a.push ("0", kT0, odd, 0), PushResult::INVALID);
  EXPECT_FALSE (a.has_ready ());
}

/* ---- start-up hold until the ZCC roles are known (hold_for_modes) ---- */

namespace {

AlignerConfig
hold_config (Layout layout = Layout::STEREO)
{
  AlignerConfig c = config (layout);
  c.hold_for_modes = true;
  return c;
}

/* A 2 s backlog burst, agent's first packet first (ch 1 = agent, ch 0 =
 * customer), no participant modes yet. */
void
push_backlog (Aligner &a, int packets = 100)
{
  for (int k = 0; k < packets; k++) {
    int64_t ts = kT0 + k * kPacketMs;
    push (a, "agent", 1, ts);
    push (a, "cust", 0, ts);
  }
}

/* Left = customer (ch 0), right = agent (ch 1) for every sample from 0. */
void
expect_sides_from_zero (const Output &o, size_t frames)
{
  ASSERT_GE (o.samples.size (), 2 * frames);
  size_t bad = 0;
  for (size_t i = 0; i < frames; i++) {
    bad += o.samples[2 * i] != val (0, (int64_t) i);
    bad += o.samples[2 * i + 1] != val (1, (int64_t) i);
  }
  EXPECT_EQ (bad, 0u) << "of " << 2 * frames << " samples";
}

} // namespace

TEST (AlignerHold, HoldsWhileAChannelHasNoMode)
{
  Aligner a (hold_config ());
  push_backlog (a);
  EXPECT_TRUE (a.holding ());
  EXPECT_FALSE (a.has_ready ());
  EXPECT_EQ (a.emitted_end (), 0);
  /* one role known: still held */
  a.set_participant_mode ("cust", "caller");
  EXPECT_TRUE (a.holding ());
  EXPECT_FALSE (a.has_ready ());
  /* nothing was dropped as late while held */
  for (auto &s : a.stats ()) {
    EXPECT_EQ (s.frames, 100u) << s.key;
    EXPECT_EQ (s.late, 0u) << s.key;
  }
}

TEST (AlignerHold, ModesForAllChannelsReleaseWithSidesFromSampleZero)
{
  Aligner a (hold_config ());
  push_backlog (a);
  a.set_participant_mode ("agent", "callee");
  EXPECT_TRUE (a.holding ());
  a.set_participant_mode ("cust", "caller");
  EXPECT_FALSE (a.holding ());
  Output o = take_all (a);
  /* every complete block is emitted at once: the start-up burst */
  EXPECT_EQ (o.blocks.size (), 100u);
  EXPECT_EQ (a.startup_blocks (), 100u);
  ASSERT_FALSE (o.blocks.empty ());
  EXPECT_EQ (o.blocks[0].position, 0);
  EXPECT_TRUE (o.blocks[0].discont);
  a.drain ();
  Output rest = take_all (a);
  o.samples.insert (o.samples.end (), rest.samples.begin (),
      rest.samples.end ());
  EXPECT_EQ (o.samples.size (), (size_t) 2 * 100 * kBlock);
  expect_sides_from_zero (o, (size_t) 100 * kBlock);
}

TEST (AlignerHold, ModesBeforeAudioNeverHold)
{
  Aligner a (hold_config ());
  a.set_participant_mode ("cust", "caller");
  a.set_participant_mode ("agent", "callee");
  push_backlog (a, 20);
  EXPECT_FALSE (a.holding ());
  Output o = take_all (a);
  EXPECT_EQ (o.blocks.size (), 20u);
  expect_sides_from_zero (o, (size_t) 20 * kBlock);
}

TEST (AlignerHold, ReleaseHoldFallsBackToFirstSeen)
{
  Aligner a (hold_config ());
  push_backlog (a);
  a.release_hold ();             /* the element's role-timeout */
  EXPECT_FALSE (a.holding ());
  Output o = take_all (a);
  EXPECT_EQ (o.blocks.size (), 100u);
  /* first seen (the agent) is left */
  size_t bad = 0;
  for (size_t i = 0; i < (size_t) 100 * kBlock; i++) {
    bad += o.samples[2 * i] != val (1, (int64_t) i);
    bad += o.samples[2 * i + 1] != val (0, (int64_t) i);
  }
  EXPECT_EQ (bad, 0u);
  /* released for good: a new channel without a mode does not hold the
   * start-up again; it is the role hold's (AlignerRoleHold below) */
  push (a, "third", 2, kT0 + 100 * kPacketMs);
  EXPECT_FALSE (a.holding ());
  EXPECT_EQ (a.roles_pending (), 1u);
}

TEST (AlignerHold, DrainReleasesAndKeepsEverySample)
{
  Aligner a (hold_config ());
  push_backlog (a, 30);
  EXPECT_TRUE (a.holding ());
  a.drain ();
  EXPECT_FALSE (a.holding ());
  Output o = take_all (a);
  EXPECT_EQ (o.samples.size (), (size_t) 2 * 30 * kBlock);
  EXPECT_EQ (a.startup_blocks (), 30u);
}

TEST (AlignerHold, EarlierChannelArrivingDuringHoldStillInPlace)
{
  /* the agent's packets arrive first with a later start; the customer's
   * (earlier timestamps) arrive after the skew window would have passed:
   * during the hold t0 still moves back, nothing is late */
  Aligner a (hold_config ());
  for (int k = 5; k < 40; k++)
    push (a, "agent", 1, kT0 + k * kPacketMs);
  for (int k = 0; k < 40; k++)
    push (a, "cust", 0, kT0 + k * kPacketMs);
  a.set_participant_mode ("cust", "caller");
  a.set_participant_mode ("agent", "callee");
  a.drain ();
  Output o = take_all (a);
  EXPECT_EQ (a.t0_ms (), kT0);
  ASSERT_EQ (o.samples.size (), (size_t) 2 * 40 * kBlock);
  size_t bad = 0;
  for (size_t i = 0; i < (size_t) 40 * kBlock; i++) {
    bad += o.samples[2 * i] != val (0, (int64_t) i);
    int16_t right = i < (size_t) 5 * kBlock ? 0 : val (1, (int64_t) i);
    bad += o.samples[2 * i + 1] != right;
  }
  EXPECT_EQ (bad, 0u);
  for (auto &s : a.stats ())
    EXPECT_EQ (s.late, 0u) << s.key;
}

TEST (AlignerHold, MixAndUnflaggedStereoNeverHold)
{
  Aligner mix (hold_config (Layout::MIX));
  push_backlog (mix, 20);
  EXPECT_FALSE (mix.holding ());
  EXPECT_EQ (take_all (mix).blocks.size (), 20u);

  Aligner meeting (config (Layout::STEREO)); /* meeting: no hold_for_modes */
  push_backlog (meeting, 20);
  EXPECT_FALSE (meeting.holding ());
  EXPECT_EQ (take_all (meeting).blocks.size (), 20u);
}

/* ---- the hold: nothing received is dropped for lack of patience ---- */

namespace {

AlignerConfig
hold_ms_config (unsigned hold_ms, Layout layout = Layout::STEREO)
{
  AlignerConfig c = config (layout);
  c.hold_ms = hold_ms;
  return c;
}

/* Customer (ch 0) and agent (ch 1) send packets 0..n-1; the agent's sender
 * stalls for packets [stall_from, stall_from + stall_n): they are held and
 * sent in a burst right after the customer's packet stall_from + stall_n
 * - 1, as a sender that stopped for stall_n × 20 ms would. */
void
push_with_stall (Aligner &a, int n, int stall_from, int stall_n,
    std::vector<PushResult> *burst_results = nullptr,
    std::vector<PushDetail> *burst_details = nullptr)
{
  for (int i = 0; i < n; i++) {
    int64_t ts = kT0 + i * kPacketMs;
    push (a, "cust", 0, ts);
    bool stalled = i >= stall_from && i < stall_from + stall_n;
    if (!stalled)
      push (a, "agent", 1, ts);
    if (i == stall_from + stall_n - 1) {
      for (int k = stall_from; k <= i; k++) {
        auto p = packet (1, kT0 + k * kPacketMs);
        PushDetail d;
        PushResult r = a.push ("agent", kT0 + k * kPacketMs, p.data (),
            p.size (), &d);
        if (burst_results)
          burst_results->push_back (r);
        if (burst_details)
          burst_details->push_back (d);
      }
    }
  }
}

/* Both sides from sample 0: left = ch 0, right = ch 1; returns the number
 * of samples that differ. Samples of ch 1 in [zero_from, zero_to) must be
 * 0 (dropped). */
size_t
stereo_mismatches (const Output &o, size_t frames, int64_t zero_from = 0,
    int64_t zero_to = 0)
{
  if (o.samples.size () != 2 * frames)
    return SIZE_MAX;
  size_t bad = 0;
  for (size_t i = 0; i < frames; i++) {
    bad += o.samples[2 * i] != val (0, (int64_t) i);
    bool zero = (int64_t) i >= zero_from && (int64_t) i < zero_to;
    bad += o.samples[2 * i + 1] != (zero ? 0 : val (1, (int64_t) i));
  }
  return bad;
}

} // namespace

/* Finding: a 0.5 s stall of one sender, then its packets in a burst, is
 * more than the old 200 ms skew window behind the other channel; it was
 * dropped as late (300 ms lost). Within the hold (1000 ms) every sample
 * lands at its place, nothing late, no silence counted. */
TEST (AlignerHoldMs, StalledChannelBurstPlacedAtItsTimestamps)
{
  Aligner a (hold_ms_config (1000));
  a.set_participant_mode ("cust", "caller");
  a.set_participant_mode ("agent", "callee");
  std::vector<PushResult> rs;
  push_with_stall (a, 400, 250, 25, &rs);
  for (auto r : rs)
    EXPECT_EQ (r, PushResult::ACCEPTED);
  a.drain ();
  Output o = take_all (a);
  EXPECT_EQ (stereo_mismatches (o, 400 * kBlock), 0u);
  for (auto &s : a.stats ()) {
    EXPECT_EQ (s.late, 0u) << s.key;
    EXPECT_EQ (s.late_samples, 0u) << s.key;
    EXPECT_EQ (s.silence_samples, 0u) << s.key;
    EXPECT_EQ (s.frames, 400u) << s.key;
  }
}

/* A backlog replay of one channel (3 s of its audio after the other is
 * 3 s ahead, e.g. its media path reconnected, §4.9) within a 5 s hold. */
TEST (AlignerHoldMs, BacklogReplayWithinHoldKept)
{
  Aligner a (hold_ms_config (5000));
  a.set_participant_mode ("cust", "caller");
  a.set_participant_mode ("agent", "callee");
  push_with_stall (a, 500, 100, 150);
  a.drain ();
  Output o = take_all (a);
  EXPECT_EQ (stereo_mismatches (o, 500 * kBlock), 0u);
  for (auto &s : a.stats ())
    EXPECT_EQ (s.late, 0u) << s.key;
  /* the memory bound: (hold + block + 1 s) rounded up to a power of two */
  EXPECT_LE (a.capacity (), 131072u);
}

/* Beyond the hold (200 ms, the old window): exactly the packets more than
 * the hold behind are dropped, each one LATE with its samples in
 * PushDetail, counted per channel; the rest of the burst is in place. */
TEST (AlignerHoldMs, BeyondHoldCountedAndReported)
{
  Aligner a (hold_ms_config (200));
  a.set_participant_mode ("cust", "caller");
  a.set_participant_mode ("agent", "callee");
  std::vector<PushResult> rs;
  std::vector<PushDetail> ds;
  push_with_stall (a, 200, 100, 25, &rs, &ds);
  ASSERT_EQ (rs.size (), 25u);
  /* the customer is at packet 125 when the burst comes: blocks up to 114
   * (end 115, 10 packets = the hold behind 125) are out */
  for (int k = 0; k < 25; k++) {
    EXPECT_EQ (rs[k], k < 15 ? PushResult::LATE : PushResult::ACCEPTED)
        << "packet " << 100 + k;
    EXPECT_EQ (ds[k].dropped_samples, k < 15 ? kBlock : 0);
  }
  a.drain ();
  Output o = take_all (a);
  EXPECT_EQ (stereo_mismatches (o, 200 * kBlock, 100 * kBlock,
          115 * kBlock), 0u);
  auto st = a.stats ();
  EXPECT_EQ (stats_of (st, "agent").late, 15u);
  EXPECT_EQ (stats_of (st, "agent").late_samples, 15u * kBlock);
  EXPECT_EQ (stats_of (st, "cust").late, 0u);
}

/* Finding: a party joining 500 ms after the other lost its first packet.
 * Why: no block waits for a channel the aligner has not seen; after the
 * start-up, the other channel alone completes a block and it is emitted at
 * once, so the
 * joiner's first packet (timestamp 500 ms, arriving just after the other's
 * packet of the same time) lands in an emitted block. Announced by the
 * participant events (ZCC participant_info, which come when a party
 * answers, before its audio), the joiner is waited for like a channel
 * that is behind, and its first packet is kept. */
TEST (AlignerHoldMs, AnnouncedLateJoinerFirstPacketKept)
{
  for (Layout layout : { Layout::STEREO, Layout::MIX }) {
    Aligner a (hold_ms_config (1000, layout));
    if (layout == Layout::STEREO) {
      a.set_participant_mode ("cust", "caller");
      a.set_participant_mode ("agent", "callee");
    } else {
      a.expect_channel ("cust");
      a.expect_channel ("agent");
    }
    std::vector<PushResult> agent_results;
    for (int i = 0; i < 100; i++) {
      int64_t ts = kT0 + i * kPacketMs;
      push (a, "cust", 0, ts);
      /* the joiner's packets (from 1.6 s, after the first block) arrive
       * one packet after the other's */
      if (i >= 81)
        agent_results.push_back (push (a, "agent", 1, ts - kPacketMs));
    }
    push (a, "agent", 1, kT0 + 99 * kPacketMs);
    for (auto r : agent_results)
      EXPECT_EQ (r, PushResult::ACCEPTED);
    a.drain ();
    Output o = take_all (a);
    ASSERT_EQ (o.samples.size (), (size_t) a.channels () * 100 * kBlock);
    size_t bad = 0;
    for (int64_t p = 0; p < 100 * kBlock; p++) {
      int16_t agent = p < 80 * kBlock ? 0 : val (1, p);
      if (layout == Layout::STEREO) {
        bad += o.samples[2 * p] != val (0, p);
        bad += o.samples[2 * p + 1] != agent;
      } else {
        bad += o.samples[p] != (int16_t) (val (0, p) + agent);
      }
    }
    EXPECT_EQ (bad, 0u);
    EXPECT_EQ (stats_of (a.stats (), "agent").late, 0u);
    EXPECT_EQ (stats_of (a.stats (), "agent").frames, 20u);
  }
}

/* The same late joiner unannounced: its first packet is LATE, counted and
 * reported (the element posts zoomrtms/late-audio); the rest is in place. */
TEST (AlignerHoldMs, UnannouncedLateJoinerFirstPacketReported)
{
  Aligner a (hold_ms_config (1000));
  PushDetail first;
  PushResult first_r = PushResult::ACCEPTED;
  for (int i = 0; i < 100; i++) {
    int64_t ts = kT0 + i * kPacketMs;
    push (a, "cust", 0, ts);
    if (i >= 80) {
      auto p = packet (1, ts);
      PushDetail d;
      PushResult r = a.push ("agent", ts, p.data (), p.size (), &d);
      if (i == 80) {
        first = d;
        first_r = r;
      }
    }
  }
  EXPECT_EQ (first_r, PushResult::LATE);
  EXPECT_EQ (first.dropped_samples, kBlock);
  EXPECT_EQ (stats_of (a.stats (), "agent").late, 1u);
}

/* Finding: far-apart timestamps made the old aligner allocate without
 * bound (std::bad_alloc, or 1 GB and abort) and overflow timestamp × rate.
 * Now: refused (OUT_OF_RANGE), counted, no allocation, the stream
 * continues exactly — before and after the first block. */
TEST (AlignerHoldMs, FarApartTimestampsRefusedBounded)
{
  const int64_t wild[] = { 0, kT0 + 40LL * 86400000, kT0 - 40LL * 86400000,
    INT64_MAX, INT64_MIN, -1, INT64_MAX / 16, kMaxTimestampMs + 1,
    kT0 + 3600001 + 400 * kPacketMs, kT0 - 3600001 };
  for (bool after_first_block : { false, true }) {
    Aligner a (hold_ms_config (1000));
    a.set_participant_mode ("cust", "caller");
    a.set_participant_mode ("agent", "callee");
    int refused = 0;
    for (int i = 0; i < 400; i++) {
      int64_t ts = kT0 + i * kPacketMs;
      push (a, "cust", 0, ts);
      push (a, "agent", 1, ts);
      if (i == (after_first_block ? 300 : 1)) {
        for (int64_t w : wild) {
          auto p = packet (0, kT0);
          EXPECT_EQ (a.push ("cust", w, p.data (), p.size ()),
              PushResult::OUT_OF_RANGE) << w;
          EXPECT_EQ (a.push ("x", w, p.data (), p.size ()),
              PushResult::OUT_OF_RANGE) << w;
          refused += 2;
        }
        a.set_first_packet_timestamp (INT64_MIN);
        a.set_first_packet_timestamp (INT64_MAX);
        a.set_first_packet_timestamp (0);
      }
    }
    a.drain ();
    Output o = take_all (a);
    EXPECT_EQ (stereo_mismatches (o, 400 * kBlock), 0u);
    EXPECT_EQ (a.t0_ms (), kT0);
    EXPECT_EQ (a.resyncs (), 0u);
    auto st = a.stats ();
    EXPECT_EQ (stats_of (st, "cust").out_of_range +
        stats_of (st, "x").out_of_range, (uint64_t) refused);
    EXPECT_LE (a.capacity (), 32768u);     /* 1000 + 20 + 1000 ms at 16 kHz */
  }
}

/* max_gap_fill 0 (fill every gap): a 30 min pause of every channel is
 * filled with silence without holding it in memory (one silence run). */
TEST (AlignerHoldMs, LongGapFilledWithoutHoldingIt)
{
  AlignerConfig c = hold_ms_config (1000, Layout::MIX);
  c.max_gap_fill_ms = 0;
  Aligner a (c);
  for (int i = 0; i < 100; i++)
    push (a, "0", 0, kT0 + i * kPacketMs);
  const int64_t resume = kT0 + 100 * kPacketMs + 1800000;
  EXPECT_EQ (push (a, "0", 0, resume), PushResult::ACCEPTED);
  EXPECT_LE (a.capacity (), 32768u);
  a.drain ();
  AlignedBlock b;
  uint64_t blocks = 0, gaps = 0;
  const int16_t *storage = nullptr;
  bool reused = true;
  while (a.pop (&b)) {
    if (b.gap) {
      if (storage && b.samples.data () != storage)
        reused = false;
      storage = b.samples.data ();
    }
    ASSERT_EQ (b.position, (int64_t) blocks * kBlock);
    blocks++;
    gaps += b.gap;
  }
  EXPECT_EQ (blocks, 101u + 1800000 / kPacketMs);
  EXPECT_EQ (gaps, 1800000u / kPacketMs);
  EXPECT_TRUE (reused) << "gap blocks allocate their storage every time";
}

/* A first packet with a wrong timestamp (0) does not refuse the whole
 * stream: after reanchor_packets consistent packets the timeline follows
 * them (the wrong one discarded), and so it does when a running stream
 * really jumps by more than max_jump_ms. Positions never go back. */
TEST (AlignerHoldMs, ReanchorOnConsistentOutOfRangePackets)
{
  {
    AlignerConfig c = hold_ms_config (200, Layout::MIX);
    c.reanchor_packets = 10;
    Aligner a (c);
    EXPECT_EQ (push (a, "0", 0, 0), PushResult::ACCEPTED);
    for (int i = 0; i < 9; i++)
      EXPECT_EQ (push (a, "0", 0, kT0 + i * kPacketMs),
          PushResult::OUT_OF_RANGE);
    EXPECT_EQ (push (a, "0", 0, kT0 + 9 * kPacketMs), PushResult::RESYNC);
    for (int i = 10; i < 50; i++)
      EXPECT_EQ (push (a, "0", 0, kT0 + i * kPacketMs), PushResult::ACCEPTED);
    a.drain ();
    Output o = take_all (a);
    ASSERT_EQ (o.blocks.size (), 41u);
    EXPECT_EQ (o.blocks[0].position, 0);
    for (int64_t p = 0; p < 41 * kBlock; p++)
      ASSERT_EQ (o.samples[p], val (0, p + 9 * kBlock)) << p;
    EXPECT_EQ (a.stats ()[0].out_of_range, 10u);
  }
  {
    AlignerConfig c = hold_ms_config (200, Layout::MIX);
    c.reanchor_packets = 10;
    Aligner a (c);
    for (int i = 0; i < 50; i++)
      push (a, "0", 0, kT0 + i * kPacketMs);
    /* 40 days back: refused 9 times, then followed */
    const int64_t back = kT0 - 40LL * 86400000;
    for (int i = 0; i < 20; i++)
      push (a, "0", 0, back + i * kPacketMs);
    a.drain ();
    Output o = take_all (a);
    int64_t expect = 0;
    for (auto &b : o.blocks) {
      ASSERT_GE (b.position, expect);
      expect = b.position + (int64_t) b.frames ();
    }
    EXPECT_EQ (a.stats ()[0].out_of_range, 9u);
    EXPECT_EQ (a.resyncs (), 1u);
    /* the epoch time of the last block is the last packet's */
    EXPECT_EQ (a.t0_ms () + o.blocks.back ().position * 1000 / kRate,
        back + 19 * kPacketMs);
  }
}

/* Hostile mix: random timestamps within the range around the stream, on
 * many channels, never grow memory past the bound. */
TEST (AlignerHoldMs, HostileTimestampsStayBounded)
{
  AlignerConfig c = hold_ms_config (500, Layout::STEREO);
  c.max_gap_fill_ms = 0;
  Aligner a (c);
  uint64_t x = 12345;
  auto rnd = [&x] () {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  int64_t ts = kT0;
  for (int i = 0; i < 5000; i++) {
    int64_t t = ts + (int64_t) (rnd () % 7200000) - 3600000;
    std::string key = "k" + std::to_string (rnd () % 6);
    int samples = 1 + (int) (rnd () % 2000);
    auto p = constant_packet ((int16_t) (i & 0x7fff), samples);
    a.push (key, t, p.data (), p.size ());
    ts += kPacketMs;
    AlignedBlock b;
    while (a.pop (&b)) {
    }
  }
  EXPECT_LE (a.capacity (), 32768u);  /* 500 + 20 + 1000 ms at 16 kHz */
}

/* A long hold (5 s, the recording templates) does not delay a stream whose
 * channels all send: the first block goes out after the start-up wait
 * (200 ms), then every block as soon as both channels have it; a channel
 * that falls silent delays the other by the hold, no more. */
TEST (AlignerHoldMs, LongHoldStartsPromptly)
{
  Aligner a (hold_ms_config (5000));
  a.set_participant_mode ("cust", "caller");
  a.set_participant_mode ("agent", "callee");
  uint64_t out = 0;
  for (int i = 0; i < 20; i++) {
    push (a, "cust", 0, kT0 + i * kPacketMs);
    push (a, "agent", 1, kT0 + i * kPacketMs);
    out += take_all (a).blocks.size ();
    /* start-up: nothing until the data is 10 packets past the first
     * block's end, then every complete block at once */
    EXPECT_EQ (out, (uint64_t) (i < 10 ? 0 : i + 1)) << "packet " << i;
  }
  for (int i = 20; i < 40; i++) {
    push (a, "cust", 0, kT0 + i * kPacketMs);
    push (a, "agent", 1, kT0 + i * kPacketMs);
    out += take_all (a).blocks.size ();
    EXPECT_EQ (out, (uint64_t) i + 1) << "packet " << i;
  }
  /* the agent is silent: the customer's blocks wait the hold (250 packets) */
  for (int i = 40; i < 400; i++) {
    push (a, "cust", 0, kT0 + i * kPacketMs);
    out += take_all (a).blocks.size ();
    EXPECT_EQ (out, (uint64_t) std::max (40, i + 1 - 250)) << "packet " << i;
  }
}

/* Re-anchoring back and forth across the whole timestamp range (a fuzzer's
 * favourite) keeps positions increasing and far from int64 overflow. */
TEST (AlignerHoldMs, AlternatingReanchorsStayMonotonic)
{
  AlignerConfig c = hold_ms_config (200, Layout::MIX);
  c.reanchor_packets = 1;
  c.rate = 48000;
  Aligner a (c);
  int64_t last_end = 0;
  std::vector<uint8_t> p (960 * 2, 1);
  for (int i = 0; i < 10000; i++) {
    int64_t ts = (i % 2) ? kMaxTimestampMs - i : i;
    a.push ("k", ts, p.data (), p.size ());
    AlignedBlock b;
    while (a.pop (&b)) {
      ASSERT_GE (b.position, last_end) << "packet " << i;
      last_end = b.position + (int64_t) b.frames ();
    }
  }
  EXPECT_LE (a.capacity (), 131072u);
}

/* The Contact Center start-up hold keeps the backlog while the roles are
 * unknown, but only up to its bound (max_startup_ms + the hold): then it
 * ends by itself (first-seen sides), nothing is lost, memory stays bounded. */
TEST (AlignerHold, StartupHoldEndsAtItsMemoryBound)
{
  AlignerConfig c = hold_config ();
  c.max_startup_ms = 1000;
  Aligner a (c);
  push_backlog (a, 50);          /* 1 s: still held */
  EXPECT_TRUE (a.holding ());
  EXPECT_FALSE (a.startup_hold_overflowed ());
  push_backlog (a, 200);         /* 4 s: past 1 s + 200 ms + 1 s */
  EXPECT_FALSE (a.holding ());
  EXPECT_TRUE (a.startup_hold_overflowed ());
  a.drain ();
  Output o = take_all (a);
  EXPECT_EQ (o.samples.size (), (size_t) 2 * 200 * kBlock);
  for (auto &s : a.stats ()) {
    EXPECT_EQ (s.late, 0u) << s.key;
    EXPECT_EQ (s.frames, 200u) << s.key;
  }
  EXPECT_LE (a.capacity (), 65536u);
}

/* ---- the role hold: channels that appear after the start-up ---------- */

namespace {

/* A call whose roles were known from the start: customer ("cust", ch 0)
 * and agent ("agent", ch 1) send packets [0, @n). */
void
push_known_call (Aligner &a, int n)
{
  a.set_participant_mode ("cust", "caller");
  a.set_participant_mode ("agent", "callee");
  for (int k = 0; k < n; k++) {
    push (a, "agent", 1, kT0 + k * kPacketMs);
    push (a, "cust", 0, kT0 + k * kPacketMs);
  }
}

/* A failover to a server that gives the channels new channel_ids
 * ("cust2", "agent2"): they continue the same voices (same ch) at packets
 * [from, to), the agent's first, before any participant event. */
void
push_new_server (Aligner &a, int from, int to)
{
  for (int k = from; k < to; k++) {
    push (a, "agent2", 1, kT0 + k * kPacketMs);
    push (a, "cust2", 0, kT0 + k * kPacketMs);
  }
}

} // namespace

/* Finding (issue 12, $ZOOMRTMS_CONTEXT_WAIT): after a failover the new
 * server's media came before its participant events, and the new channels
 * were placed by a guess (both right: a channel already was the caller).
 * Now their audio is held until their roles are known, then placed at its
 * timestamps: both sides right from the first sample, nothing late. */
TEST (AlignerRoleHold, NewChannelsHeldUntilTheirModes)
{
  Aligner a (hold_config ());
  push_known_call (a, 20);
  EXPECT_FALSE (a.holding ());
  push_new_server (a, 20, 120);    /* 2 s burst, roles unknown */
  EXPECT_EQ (a.roles_pending (), 2u);
  EXPECT_TRUE (a.role_pending ("cust2"));
  EXPECT_FALSE (a.role_pending ("cust"));
  EXPECT_EQ (a.pending_role_keys ().size (), 2u);
  /* the first server's blocks went out; nothing of the new channels */
  Output o = take_all (a);
  EXPECT_EQ (a.emitted_end (), (int64_t) 20 * kBlock);
  EXPECT_EQ (o.blocks.size (), 20u);
  a.set_participant_mode ("agent2", "callee");
  EXPECT_EQ (a.roles_pending (), 1u);
  EXPECT_FALSE (a.has_ready ());
  a.set_participant_mode ("cust2", "caller");
  EXPECT_EQ (a.roles_pending (), 0u);
  EXPECT_TRUE (a.has_ready ());
  a.drain ();
  Output rest = take_all (a);
  o.samples.insert (o.samples.end (), rest.samples.begin (),
      rest.samples.end ());
  expect_sides_from_zero (o, (size_t) 120 * kBlock);
  EXPECT_EQ (o.samples.size (), (size_t) 2 * 120 * kBlock);
  for (auto &s : a.stats ()) {
    EXPECT_EQ (s.late, 0u) << s.key;
    EXPECT_EQ (s.late_samples, 0u) << s.key;
    EXPECT_EQ (s.silence_samples, 0u) << s.key;
  }
  EXPECT_EQ (stats_of (a.stats (), "cust2").frames, 100u);
}

/* A party joining mid-call without a role yet (its packets first in each
 * pass): the blocks before its first packet still go out by the usual
 * rules, the ones from it on wait; its mode then places it. */
TEST (AlignerRoleHold, BlocksBeforeTheNewChannelStillGoOut)
{
  Aligner a (hold_config ());
  push_known_call (a, 30);
  for (int k = 30; k < 60; k++) {
    push (a, "third", 2, kT0 + k * kPacketMs);
    push (a, "agent", 1, kT0 + k * kPacketMs);
    push (a, "cust", 0, kT0 + k * kPacketMs);
  }
  EXPECT_EQ (a.roles_pending (), 1u);
  Output o = take_all (a);
  EXPECT_EQ (a.emitted_end (), (int64_t) 30 * kBlock);
  a.set_participant_mode ("third", "callee");
  Output rest = take_all (a);
  EXPECT_EQ (a.emitted_end (), (int64_t) 60 * kBlock);
  o.samples.insert (o.samples.end (), rest.samples.begin (),
      rest.samples.end ());
  ASSERT_EQ (o.samples.size (), (size_t) 2 * 60 * kBlock);
  size_t bad = 0;
  for (size_t i = 0; i < (size_t) 60 * kBlock; i++) {
    int right = val (1, (int64_t) i) + (i >= (size_t) 30 * kBlock ?
        val (2, (int64_t) i) : 0);
    bad += o.samples[2 * i] != val (0, (int64_t) i);
    bad += o.samples[2 * i + 1] != std::clamp (right, -32768, 32767);
  }
  EXPECT_EQ (bad, 0u);
  EXPECT_EQ (stats_of (a.stats (), "third").late, 0u);
}

/* The role never comes: the caller's timeout (release_role) places the
 * channel by the fallback rule (right: another channel is the caller);
 * nothing is lost or late. */
TEST (AlignerRoleHold, ReleaseRoleFallsBack)
{
  Aligner a (hold_config ());
  push_known_call (a, 20);
  for (int k = 20; k < 80; k++)
    push (a, "new", 0, kT0 + k * kPacketMs);
  EXPECT_EQ (a.roles_pending (), 1u);
  a.release_role ("nobody");
  EXPECT_EQ (a.roles_pending (), 1u);
  a.release_role ("new");
  EXPECT_EQ (a.roles_pending (), 0u);
  a.drain ();
  Output o = take_all (a);
  ASSERT_EQ (o.samples.size (), (size_t) 2 * 80 * kBlock);
  size_t bad = 0;
  for (size_t i = (size_t) 20 * kBlock; i < (size_t) 80 * kBlock; i++) {
    bad += o.samples[2 * i] != 0;
    bad += o.samples[2 * i + 1] != val (0, (int64_t) i);
  }
  EXPECT_EQ (bad, 0u);
  EXPECT_EQ (stats_of (a.stats (), "new").late, 0u);
  /* a mode learned afterwards applies from then on; no new hold */
  a.set_participant_mode ("new", "caller");
  EXPECT_EQ (a.roles_pending (), 0u);
}

/* The held audio reaches its bound (max_startup_ms + the hold): the hold
 * ends by itself for every pending channel, counted; nothing is lost. */
TEST (AlignerRoleHold, EndsAtItsMemoryBound)
{
  AlignerConfig c = hold_config ();
  c.max_startup_ms = 1000;
  Aligner a (c);
  push_known_call (a, 20);
  push_new_server (a, 20, 70);     /* 1 s held */
  EXPECT_EQ (a.roles_pending (), 2u);
  EXPECT_EQ (a.role_hold_overflows (), 0u);
  push_new_server (a, 70, 250);    /* past 1 s + 200 ms + 1 s */
  EXPECT_EQ (a.roles_pending (), 0u);
  EXPECT_EQ (a.role_hold_overflows (), 1u);
  a.drain ();
  Output o = take_all (a);
  EXPECT_EQ (o.samples.size (), (size_t) 2 * 250 * kBlock);
  for (auto &s : a.stats ())
    EXPECT_EQ (s.late, 0u) << s.key;
  EXPECT_LE (a.capacity (), 65536u);
}

/* No role hold where the side does not matter or no roles come: mono
 * output, a meeting (no hold_for_modes); and none after drain (EOS). */
TEST (AlignerRoleHold, MixMeetingAndDrainNeverHold)
{
  for (Layout l : { Layout::MIX, Layout::STEREO }) {
    Aligner a (l == Layout::MIX ? hold_config (Layout::MIX) :
        config (Layout::STEREO));
    push_known_call (a, 20);
    push_new_server (a, 20, 40);
    EXPECT_EQ (a.roles_pending (), 0u);
    EXPECT_EQ (a.emitted_end (), (int64_t) 30 * kBlock);
  }
  Aligner a (hold_config ());
  push_known_call (a, 20);
  push_new_server (a, 20, 40);
  EXPECT_EQ (a.roles_pending (), 2u);
  a.drain ();
  EXPECT_EQ (a.roles_pending (), 0u);
  EXPECT_EQ (take_all (a).samples.size (), (size_t) 2 * 40 * kBlock);
  push (a, "late-comer", 0, kT0 + 40 * kPacketMs);
  EXPECT_EQ (a.roles_pending (), 0u);
}

/* ---- continuing a recording (issue 9: timeline-origin/offset) ---------- */

/* A fixed origin and a start position (not a multiple of the block): the
 * output starts exactly at the start position, exact silence up to the
 * first packet, then the audio at its timestamps; whole packets before the
 * start are duplicates (not late, nothing reported), a packet straddling
 * the start keeps its tail, and t0 does not move back for an earlier
 * packet or the FIRST_PACKET_TIMESTAMP event. Without origin_ms the first
 * packet would be position 0 (the old behaviour fails every check). */
TEST (Aligner, ContinuationStartsAtTheOffsetWithExactSilence)
{
  AlignerConfig c = config (Layout::MIX);
  c.origin_ms = kT0;
  c.start_position = 1000 * kBlock + 100;     /* 20.00625 s */
  Aligner a (c);
  a.set_first_packet_timestamp (kT0 + 30000); /* ignored: origin fixed */
  /* replayed packets from before the start: duplicates */
  PushDetail d;
  auto p = packet (0, kT0 + 19000);
  EXPECT_EQ (a.push ("A", kT0 + 19000, p.data (), p.size (), &d),
      PushResult::DUPLICATE);
  EXPECT_EQ (d.dropped_samples, 0);
  /* straddling the start: its last 220 samples are kept */
  p = packet (0, kT0 + 20000);
  EXPECT_EQ (a.push ("A", kT0 + 20000, p.data (), p.size (), &d),
      PushResult::ACCEPTED);
  EXPECT_EQ (d.dropped_samples, 0);            /* not late */
  /* then a gap of 1 s (the downtime) and the stream again */
  for (int k = 0; k < 100; k++)
    EXPECT_EQ (push (a, "A", 0, kT0 + 21000 + 20 * k), PushResult::ACCEPTED);
  a.drain ();
  Output o = take_all (a);
  ASSERT_FALSE (o.blocks.empty ());
  EXPECT_EQ (o.blocks[0].position, c.start_position);
  EXPECT_EQ (a.t0_ms (), kT0);
  const int64_t start = c.start_position;
  const int64_t end_straddle = 1001 * kBlock;  /* end of the 20000 packet */
  const int64_t first = (21000LL * kRate) / 1000;
  ASSERT_EQ ((int64_t) o.samples.size (), first + 100 * kBlock - start);
  size_t bad = 0;
  for (int64_t pos = start; pos < first + 100 * kBlock; pos++) {
    int16_t want = pos < end_straddle ? val (0, pos) :
        pos < first ? 0 : val (0, pos);
    bad += o.samples[(size_t) (pos - start)] != want;
  }
  EXPECT_EQ (bad, 0u);
  auto st = a.stats ();
  EXPECT_EQ (stats_of (st, "A").duplicates, 1u);
  EXPECT_EQ (stats_of (st, "A").late, 0u);
  EXPECT_EQ (stats_of (st, "A").late_samples, 0u);
  /* blocks are cut from the start: every block but the last is whole */
  for (size_t i = 1; i < o.blocks.size (); i++)
    EXPECT_EQ (o.blocks[i].position, o.blocks[i - 1].position +
        (int64_t) o.blocks[i - 1].frames ());
}

/* ---- the write-ahead packet log (zoomrtms-packet-log.h) --------------- */

#include <unistd.h>

#include <fstream>
#include <iterator>

#include "zoomrtms-packet-log.h"

namespace {

std::string
temp_path (const char *name)
{
  char tmpl[] = "/tmp/zoomrtms-pkl-XXXXXX";
  std::string dir = mkdtemp (tmpl);
  return dir + "/" + name;
}

std::vector<PacketLogRecord>
read_all (const std::string &path, PacketLogReader::Status *end,
    std::string *why)
{
  std::vector<PacketLogRecord> v;
  PacketLogReader r;
  if (!r.open (path, why)) {
    *end = PacketLogReader::Status::CORRUPT;
    return v;
  }
  PacketLogRecord rec;
  while ((*end = r.next (&rec, why)) == PacketLogReader::Status::OK)
    v.push_back (rec);
  return v;
}

} // namespace

/* Records written are read back exactly (key, mode, timestamp, PCM), in
 * order; the header keeps rate, channels, codec and send_rate. A torn last
 * record (the process killed inside a write) is TORN and everything before
 * it is kept; a garbled byte in a record is CORRUPT from that record on. */
TEST (PacketLog, RoundTripTornAndGarbledTails)
{
  std::string path = temp_path ("a.pkl");
  PacketLogHeader h;
  h.rate = 16000;
  h.send_rate = 20;
  std::string err;
  {
    PacketLogWriter w;
    ASSERT_TRUE (w.open (path, h, &err)) << err;
    for (int k = 0; k < 10; k++) {
      auto p = packet (k % 2, kT0 + 20 * k);
      w.append (k % 2 ? "agent-ch" : "cust-ch", k % 2 ? "callee" : "", kT0 +
          20 * k, p.data (), p.size ());
      if (k == 4) {
        ASSERT_TRUE (w.flush (&err)) << err;   /* flushed in two writes */
      }
    }
    w.close ();
  }
  PacketLogReader::Status end;
  auto recs = read_all (path, &end, &err);
  EXPECT_EQ (end, PacketLogReader::Status::END) << err;
  ASSERT_EQ (recs.size (), 10u);
  for (int k = 0; k < 10; k++) {
    EXPECT_EQ (recs[k].key, k % 2 ? "agent-ch" : "cust-ch");
    EXPECT_EQ (recs[k].mode, k % 2 ? "callee" : "");
    EXPECT_EQ (recs[k].timestamp_ms, kT0 + 20 * k);
    EXPECT_EQ (recs[k].pcm, packet (k % 2, kT0 + 20 * k));
  }
  {
    PacketLogReader r;
    ASSERT_TRUE (r.open (path, &err));
    EXPECT_EQ (r.header ().rate, 16000u);
    EXPECT_EQ (r.header ().channels, 1u);
    EXPECT_EQ (r.header ().codec, 1u);
    EXPECT_EQ (r.header ().send_rate, 20u);
  }
  /* torn: cut inside the last record */
  off_t size = 0;
  {
    FILE *f = fopen (path.c_str (), "rb");
    fseek (f, 0, SEEK_END);
    size = ftell (f);
    fclose (f);
  }
  ASSERT_EQ (truncate (path.c_str (), size - 100), 0);
  recs = read_all (path, &end, &err);
  EXPECT_EQ (end, PacketLogReader::Status::TORN);
  EXPECT_EQ (recs.size (), 9u);
  /* garbled: one PCM byte of the 6th record flipped */
  /* version 2: an 8-byte checksum ends each record */
  size_t rec_size = 24 + 7 + 0 + 640 + 8;      /* "cust-ch", no mode */
  size_t rec_size2 = 24 + 8 + 6 + 640 + 8;     /* "agent-ch", "callee" */
  size_t sixth = 32 + 3 * rec_size + 2 * rec_size2;  /* k = 5: agent */
  {
    FILE *f = fopen (path.c_str (), "r+b");
    fseek (f, (long) (sixth + 24 + 8 + 6 + 100), SEEK_SET);
    int c = fgetc (f);
    fseek (f, (long) (sixth + 24 + 8 + 6 + 100), SEEK_SET);
    fputc (c ^ 0x40, f);
    fclose (f);
  }
  recs = read_all (path, &end, &err);
  EXPECT_EQ (end, PacketLogReader::Status::CORRUPT) << err;
  EXPECT_EQ (recs.size (), 5u);
  /* not a packet log */
  {
    FILE *f = fopen (path.c_str (), "wb");
    fputs ("RIFF....WAVEfmt junk junk junk junk", f);
    fclose (f);
  }
  PacketLogReader r;
  EXPECT_FALSE (r.open (path, &err));
  unlink (path.c_str ());
}

/* Version 2's record checksum is XXH3-64 (seed 0) of the record's bytes,
 * stored little-endian: the expected value was computed by xxhsum 0.8.1
 * (`xxhsum -H3` over the 39 record bytes), not by our code. */
TEST (PacketLog, Version2ChecksumIsXxh3)
{
  std::string path = temp_path ("v2.pkl");
  PacketLogHeader h;
  std::string err;
  {
    PacketLogWriter w;
    ASSERT_TRUE (w.open (path, h, &err)) << err;
    const uint8_t pcm[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
    w.append ("cust-ch", "", kT0, pcm, sizeof pcm);
    w.close ();
  }
  std::vector<uint8_t> b;
  {
    std::ifstream f (path, std::ios::binary);
    b.assign ((std::istreambuf_iterator<char> (f)),
        std::istreambuf_iterator<char> ());
  }
  ASSERT_EQ (b.size (), 32u + 24 + 7 + 8 + 8);
  EXPECT_EQ (b[8] | (b[9] << 8), 2);              /* version */
  uint64_t sum = 0;
  for (int i = 7; i >= 0; i--)
    sum = (sum << 8) | b[32 + 39 + i];
  EXPECT_EQ (sum, UINT64_C (0x2637b4c76b261f5e));
  EXPECT_EQ (packet_log_checksum (b.data () + 32, 39), sum);
  PacketLogReader r;
  ASSERT_TRUE (r.open (path, &err)) << err;
  EXPECT_EQ (r.version (), 2u);
  PacketLogRecord rec;
  ASSERT_EQ (r.next (&rec, &err), PacketLogReader::Status::OK) << err;
  EXPECT_EQ (rec.key, "cust-ch");
  EXPECT_EQ (rec.pcm.size (), 8u);
  EXPECT_EQ (r.next (&rec, &err), PacketLogReader::Status::END);
  unlink (path.c_str ());
}

/* A version 1 log (FNV-1a record hash), written by main 594d61a's writer
 * before the format changed: a log left by an older build (a crash across
 * an upgrade) is still replayed; torn and garbled tails as in version 2. */
TEST (PacketLog, ReadsVersion1Logs)
{
  static const uint8_t v1[] = {
    0x5a, 0x52, 0x54, 0x4d, 0x53, 0x50, 0x4b, 0x4c, 0x01, 0x00, 0x20, 0x00,
    0x80, 0x3e, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x14, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x5a, 0x52, 0x45, 0x43,
    0x01, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00,
    0xe8, 0x56, 0x3d, 0xc0, 0x94, 0x01, 0x00, 0x00, 0x63, 0x75, 0x73, 0x74,
    0x2d, 0x63, 0x68, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x3c,
    0x66, 0x53, 0x0e, 0x5a, 0x52, 0x45, 0x43, 0x01, 0x00, 0x08, 0x00, 0x06,
    0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0xfc, 0x56, 0x3d, 0xc0, 0x94,
    0x01, 0x00, 0x00, 0x61, 0x67, 0x65, 0x6e, 0x74, 0x2d, 0x63, 0x68, 0x63,
    0x61, 0x6c, 0x6c, 0x65, 0x65, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16,
    0x17, 0x6f, 0x28, 0x80, 0x97, 0x5a, 0x52, 0x45, 0x43, 0x01, 0x00, 0x07,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x10, 0x57, 0x3d,
    0xc0, 0x94, 0x01, 0x00, 0x00, 0x63, 0x75, 0x73, 0x74, 0x2d, 0x63, 0x68,
    0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0xad, 0x1c, 0xee, 0x2b,
  };
  std::string path = temp_path ("v1.pkl");
  auto write = [&] (size_t len, int flip) {
    std::vector<uint8_t> b (v1, v1 + len);
    if (flip >= 0)
      b[flip] ^= 0x01;
    FILE *f = fopen (path.c_str (), "wb");
    fwrite (b.data (), 1, b.size (), f);
    fclose (f);
  };
  std::string err;
  PacketLogReader::Status end;
  write (sizeof v1, -1);
  {
    PacketLogReader r;
    ASSERT_TRUE (r.open (path, &err)) << err;
    EXPECT_EQ (r.version (), 1u);
    EXPECT_EQ (r.header ().rate, 16000u);
    EXPECT_EQ (r.header ().send_rate, 20u);
  }
  auto recs = read_all (path, &end, &err);
  EXPECT_EQ (end, PacketLogReader::Status::END) << err;
  ASSERT_EQ (recs.size (), 3u);
  for (int k = 0; k < 3; k++) {
    EXPECT_EQ (recs[k].key, k % 2 ? "agent-ch" : "cust-ch");
    EXPECT_EQ (recs[k].mode, k % 2 ? "callee" : "");
    EXPECT_EQ (recs[k].timestamp_ms, kT0 + 20 * k);
    std::vector<uint8_t> pcm (8);
    for (int i = 0; i < 8; i++)
      pcm[i] = (uint8_t) (k * 16 + i);
    EXPECT_EQ (recs[k].pcm, pcm);
  }
  /* torn: the last record cut short */
  write (sizeof v1 - 3, -1);
  recs = read_all (path, &end, &err);
  EXPECT_EQ (end, PacketLogReader::Status::TORN);
  EXPECT_EQ (recs.size (), 2u);
  /* garbled: one PCM byte of the second record (offset 32 + 43 + 38) */
  write (sizeof v1, 32 + 43 + 38 + 3);
  recs = read_all (path, &end, &err);
  EXPECT_EQ (end, PacketLogReader::Status::CORRUPT) << err;
  EXPECT_EQ (recs.size (), 1u);
  EXPECT_NE (err.find ("at byte 75"), std::string::npos) << err;
  /* a version this reader does not know */
  {
    std::vector<uint8_t> b (v1, v1 + 32);
    b[8] = 3;
    FILE *f = fopen (path.c_str (), "wb");
    fwrite (b.data (), 1, b.size (), f);
    fclose (f);
    PacketLogReader r;
    EXPECT_FALSE (r.open (path, &err));
    EXPECT_NE (err.find ("version 3"), std::string::npos) << err;
  }
  unlink (path.c_str ());
}

/* block_ms: the same timeline cut into 100 ms (60 ms) blocks, every sample
 * where 20 ms blocks put it, stereo; drain's last block is shorter (up to
 * the packet grid), so the output is exactly as long as with 20 ms. */
TEST (Aligner, BlockMsCutsLargerBlocksSameSamples)
{
  for (int block_ms : { 20, 100, 60 }) {
    AlignerConfig c = config (Layout::STEREO);
    c.block_ms = block_ms;
    Aligner a (c);
    a.set_participant_mode ("C-cust", "caller");
    a.set_participant_mode ("C-agent", "callee");
    EXPECT_EQ (a.block_frames (), kRate * block_ms / 1000);
    const int n = 53;             /* not a multiple of 5 or 3 packets */
    for (int i = 0; i < n; i++) {
      push (a, "C-cust", 0, kT0 + i * kPacketMs);
      push (a, "C-agent", 1, kT0 + i * kPacketMs);
    }
    Output before = take_all (a);
    for (auto &b : before.blocks)
      EXPECT_EQ (b.frames (), (size_t) a.block_frames ()) << block_ms;
    a.drain ();
    Output o = take_all (a);
    o.blocks.insert (o.blocks.begin (), before.blocks.begin (),
        before.blocks.end ());
    ASSERT_FALSE (o.blocks.empty ());
    for (size_t i = 0; i + 1 < o.blocks.size (); i++)
      EXPECT_EQ (o.blocks[i].frames (), (size_t) a.block_frames ());
    EXPECT_EQ (o.blocks.back ().frames () % kBlock, 0u) << "packet grid";
    o.samples.insert (o.samples.begin (), before.samples.begin (),
        before.samples.end ());
    const int64_t total = (int64_t) n * kBlock;
    ASSERT_EQ ((int64_t) o.samples.size () / 2, total) << block_ms;
    for (int64_t p = 0; p < (int64_t) o.samples.size () / 2; p++) {
      ASSERT_EQ (o.samples[2 * p], p < total ? val (0, p) : 0)
          << "left " << p << " block-ms " << block_ms;
      ASSERT_EQ (o.samples[2 * p + 1], p < total ? val (1, p) : 0)
          << "right " << p << " block-ms " << block_ms;
    }
    auto st = a.stats ();
    EXPECT_EQ (stats_of (st, "C-cust").silence_samples, 0u);
    EXPECT_EQ (stats_of (st, "C-agent").frames, (uint64_t) n);
  }
}

/* Steady state allocates nothing per packet or per block: after a warm-up
 * that fills the rings (duplicate history included), 3000 packets per
 * channel — in order, with a duplicate, a reordered pair and a 40 ms mute
 * of one channel (whose hold, 140 ms, makes up to ~6 blocks ready at once:
 * within the 8 recycled block storages) — and every block popped
 * into the same AlignedBlock cost zero operator new calls, for 20 ms and
 * 100 ms blocks. */
TEST (AlignerAlloc, NothingAllocatedPerPacketOrBlock)
{
  for (int block_ms : { 20, 100 }) {
    AlignerConfig c = config (Layout::STEREO);
    c.block_ms = block_ms;
    c.hold_ms = 140;
    c.duplicate_history = 256;
    Aligner a (c);
    const std::string cust = "C-cust", agent = "C-agent";
    a.set_participant_mode (cust, "caller");
    a.set_participant_mode (agent, "callee");
    auto pc = packet (0, kT0), pa = packet (1, kT0);
    AlignedBlock b;
    uint64_t popped = 0;
    int64_t ts = kT0;
    auto step = [&](int i) {
      if (i % 1000 == 500) {
        /* a duplicate and a reordered pair on the agent's channel */
        a.push (agent, ts - kPacketMs, pa.data (), pa.size ());
        a.push (cust, ts, pc.data (), pc.size ());
        a.push (agent, ts + kPacketMs, pa.data (), pa.size ());
        a.push (agent, ts, pa.data (), pa.size ());
        a.push (cust, ts + kPacketMs, pc.data (), pc.size ());
        ts += 2 * kPacketMs;
      } else if (i % 1000 >= 700 && i % 1000 < 702) {
        a.push (cust, ts, pc.data (), pc.size ());   /* agent muted */
        ts += kPacketMs;
      } else {
        a.push (cust, ts, pc.data (), pc.size ());
        a.push (agent, ts, pa.data (), pa.size ());
        ts += kPacketMs;
      }
      while (a.pop (&b))
        popped++;
    };
    for (int i = 0; i < 2000; i++)
      step (i);                   /* warm-up: rings and history grow */
    uint64_t popped_before = popped;
    g_allocs = 0;
    g_count_allocs = true;
    for (int i = 2000; i < 5000; i++)
      step (i);
    g_count_allocs = false;
    EXPECT_EQ (g_allocs.load (), 0u) << "block-ms " << block_ms;
    EXPECT_GT (popped - popped_before, 3000u * kPacketMs / block_ms - 100)
        << "blocks came out";
    auto st = a.stats ();
    EXPECT_EQ (stats_of (st, agent).duplicates, 5u);
    EXPECT_EQ (stats_of (st, agent).late, 0u);
  }
}

/* emit_block sums up to two channels per side straight into the output and
 * more through the 32-bit accumulator: either way the whole sum of a side
 * is saturated once. Three channels of 30000, 30000 and -30000 on one side
 * make 30000 (saturating pairwise would make 2767), in mix and on the
 * agent's side in stereo, whatever order the channels appeared in. */
TEST (AlignerSum, ThreeChannelsOnOneSideSaturatedOnce)
{
  for (Layout layout : { Layout::MIX, Layout::STEREO }) {
    Aligner a (config (layout));
    a.set_participant_mode ("cust", "caller");
    for (const char *k : { "agent1", "agent2", "agent3" })
      a.set_participant_mode (k, "callee");
    auto pc = constant_packet (-7);
    auto plus = constant_packet (30000), minus = constant_packet (-30000);
    for (int i = 0; i < 3; i++) {
      int64_t ts = kT0 + i * kPacketMs;
      a.push ("agent1", ts, plus.data (), plus.size ());
      a.push ("cust", ts, pc.data (), pc.size ());
      a.push ("agent2", ts, plus.data (), plus.size ());
      a.push ("agent3", ts, minus.data (), minus.size ());
    }
    a.drain ();
    Output o = take_all (a);
    ASSERT_EQ (o.blocks.size (), 3u);
    if (layout == Layout::MIX) {
      for (auto s : o.samples)
        ASSERT_EQ (s, 30000 - 7);
    } else {
      for (size_t i = 0; i < o.samples.size (); i += 2) {
        ASSERT_EQ (o.samples[i], -7) << "left " << i / 2;
        ASSERT_EQ (o.samples[i + 1], 30000) << "right " << i / 2;
      }
    }
  }
}

/* Two channels on one side are saturated as one sum, both ways, and a side
 * without a channel is silent. */
TEST (AlignerSum, TwoChannelsOnOneSideSaturate)
{
  const int16_t cases[][3] = { { 30000, 10000, 32767 },
    { -30000, -10000, -32768 }, { 32767, -32768, -1 }, { -5, 3, -2 } };
  for (int i = 0; i < 4; i++) {
    Aligner a (config (Layout::STEREO));
    a.set_participant_mode ("a1", "callee");
    a.set_participant_mode ("a2", "callee");
    auto p1 = constant_packet (cases[i][0]), p2 = constant_packet (cases[i][1]);
    a.push ("a1", kT0, p1.data (), p1.size ());
    a.push ("a2", kT0, p2.data (), p2.size ());
    a.drain ();
    Output o = take_all (a);
    ASSERT_EQ (o.samples.size (), 2u * kBlock);
    for (int k = 0; k < kBlock; k++) {
      ASSERT_EQ (o.samples[2 * k], 0) << "case " << i;
      ASSERT_EQ (o.samples[2 * k + 1], cases[i][2]) << "case " << i;
    }
  }
}

/* A block is ready only once every sample of it is there: with a packet of
 * one channel missing in the middle of a 100 ms block (the channel went on
 * past the block), nothing is output until that packet arrives (within
 * the hold), and then it is in place. block_ready() keeps a watermark of
 * each channel's contiguous data instead of scanning the block: a packet
 * after a hole must not move it past the hole. */
TEST (AlignerSum, HoleInABlockWaitsForItsPacket)
{
  AlignerConfig c = config (Layout::STEREO);
  c.block_ms = 100;
  c.hold_ms = 1000;
  c.startup_wait_ms = 0;
  Aligner a (c);
  a.set_participant_mode ("cust", "caller");
  a.set_participant_mode ("agent", "callee");
  for (int i = 0; i < 10; i++) {
    push (a, "cust", 0, kT0 + i * kPacketMs);
    if (i != 2)
      push (a, "agent", 1, kT0 + i * kPacketMs);
  }
  /* both channels are past the first two blocks; the agent's packet 2
   * (in block 0) is missing */
  EXPECT_FALSE (a.has_ready ());
  ASSERT_EQ (push (a, "agent", 1, kT0 + 2 * kPacketMs), PushResult::ACCEPTED);
  Output o = take_all (a);
  ASSERT_EQ (o.blocks.size (), 2u);
  for (int64_t p = 0; p < 2 * 1600; p++) {
    ASSERT_EQ (o.samples[2 * p], val (0, p)) << "left " << p;
    ASSERT_EQ (o.samples[2 * p + 1], val (1, p)) << "right " << p;
  }
}

/* A long stereo run through the rings' wrap (a short hold: 32768 slots,
 * blocks of 1600 samples straddle the wrap), one channel with mutes
 * (gaps), reordered pairs and duplicates, the other with a packet that
 * comes back late within the hold: every output sample is the one
 * expected, silence exactly where nothing was sent. */
TEST (AlignerSum, RingWrapWithGapsAndReorderExact)
{
  for (int block_ms : { 20, 100 }) {
    AlignerConfig c = config (Layout::STEREO);
    c.block_ms = block_ms;
    c.hold_ms = 200;
    Aligner a (c);
    a.set_participant_mode ("cust", "caller");
    a.set_participant_mode ("agent", "callee");
    const int n = 600;          /* 12 s: the ring wraps several times */
    std::vector<bool> sent_agent (n, false);
    auto send = [&](const char *key, int ch, int i) {
      auto r = push (a, key, ch, kT0 + (int64_t) i * kPacketMs);
      ASSERT_EQ (r, PushResult::ACCEPTED) << key << " " << i;
      if (ch == 1)
        sent_agent[i] = true;
    };
    Output o;
    for (int i = 0; i < n; i++) {
      send ("cust", 0, i);
      if (i % 97 >= 40 && i % 97 < 43)
        continue;               /* the agent muted: 60 ms */
      if (i % 50 == 10)
        continue;               /* sent after the next one, below */
      send ("agent", 1, i);
      if (i % 50 == 11) {
        send ("agent", 1, i - 1);
        EXPECT_EQ (push (a, "agent", 1, kT0 + (int64_t) i * kPacketMs),
            PushResult::DUPLICATE);
      }
      Output part = take_all (a);
      o.samples.insert (o.samples.end (), part.samples.begin (),
          part.samples.end ());
    }
    a.drain ();
    Output rest = take_all (a);
    o.samples.insert (o.samples.end (), rest.samples.begin (),
        rest.samples.end ());
    ASSERT_EQ (o.samples.size (), 2u * n * kBlock) << block_ms;
    ASSERT_LT ((size_t) a.capacity (), (size_t) n * kBlock) << "no wrap";
    for (int64_t p = 0; p < (int64_t) n * kBlock; p++) {
      ASSERT_EQ (o.samples[2 * p], val (0, p)) << "left " << p;
      int16_t right = sent_agent[p / kBlock] ? val (1, p) : 0;
      ASSERT_EQ (o.samples[2 * p + 1], right) << "right " << p << " block-ms "
          << block_ms;
    }
  }
}

/* Review finding (issue 12): the start-up hold released before any block,
 * a new channel without a mode held, then a re-anchor of the still empty
 * timeline. The held channel's position on the old timeline must not hold
 * the new one's output, and its next packet must not count it pending
 * twice (roles_pending() stayed 1 after its mode came). */
TEST (AlignerRoleHold, ReanchorBeforeTheFirstBlockKeepsTheCount)
{
  AlignerConfig c = hold_config ();
  c.reanchor_packets = 10;
  Aligner a (c);
  push (a, "cust", 0, kT0);
  a.release_hold ();
  EXPECT_EQ (a.emitted_end (), 0);
  push (a, "late", 1, kT0);
  ASSERT_EQ (a.roles_pending (), 1u);
  const int64_t far = kT0 + 40LL * 86400000;
  for (int k = 0; k < 60; k++)
    push (a, "cust", 0, far + k * kPacketMs);
  EXPECT_EQ (a.resyncs (), 1u);
  take_all (a);
  EXPECT_GT (a.emitted_end (), 0) << "output held by a position on the "
      "timeline before the re-anchor";
  push (a, "late", 1, far + 60 * kPacketMs);
  EXPECT_EQ (a.roles_pending (), a.pending_role_keys ().size ());
  a.set_participant_mode ("late", "callee");
  EXPECT_EQ (a.roles_pending (), 0u);
  EXPECT_TRUE (a.pending_role_keys ().empty ());
}
