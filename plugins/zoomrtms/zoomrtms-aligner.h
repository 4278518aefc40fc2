/* zoomrtms — the Aligner: RTMS audio packets of several channels onto one
 * timeline, by their RTMS timestamps (design.md "Timestamps and channels").
 *
 * Pure C++17, no GStreamer: the element (gstzoomrtmssrc.cpp) feeds it packets
 * from its streaming thread and turns its blocks into buffers. Not
 * thread-safe; one owner at a time.
 *
 * Model (rtms-protocol.md §4.4, §4.9):
 *  - A packet is (channel key, RTMS timestamp in epoch ms, S16LE mono PCM).
 *    The channel key is the ZCC channel_id or the meeting user_id ("0" for
 *    meeting mixed audio).
 *  - Its position on the timeline is (timestamp − t0) × rate / 1000 samples,
 *    t0 = the first packet's timestamp, or the FIRST_PACKET_TIMESTAMP event
 *    (msg 6 event 1, §3.6.1) when that came first. Until the first block is
 *    emitted t0 moves back to the earliest timestamp seen, so two channels
 *    whose first packets arrive in either order align. Arrival order and
 *    sample counts never decide a position.
 *  - Output is cut into blocks of one packet duration (packet_ms, the
 *    negotiated send_rate), aligned on t0.
 *  - Per channel, a gap between packets (mute, hold, pause) is silence of the
 *    exact length. A packet whose timestamp was already received on its
 *    channel (the last duplicate_history timestamps are remembered), or that
 *    is at or before the channel's last one and older than that full
 *    history, is a duplicate or a replay (failover, §4.9): dropped and
 *    counted. A packet entirely inside a block that was already emitted is
 *    late: dropped and counted (a packet straddling the emitted edge keeps its
 *    unemitted part).
 *  - A block is emitted when every known channel has all of its samples, or
 *    when the most advanced channel has data more than the skew window
 *    (skew_packets × packet_ms, default 10 × 20 ms = 200 ms) past the block's
 *    end, so a muted or departed channel never stalls the others. Packets
 *    that arrive out of order within the skew window are put in place. The
 *    first block waits for the skew window (or drain()) in any case, so a
 *    channel whose first packet arrives a little later with an earlier
 *    timestamp still lands in place.
 *  - A block in which no channel had any sample is flagged gap.
 *  - When a packet is more than max_gap_fill_ms past the most advanced
 *    channel (every channel stopped: pause, outage), the gap is not filled:
 *    pending data is flushed, the timeline jumps to the packet's block (the
 *    block positions jump too, so the element's PTS follow stream time) and
 *    the next block is flagged discont. max_gap_fill_ms = 0 fills any gap.
 *  - drain() (EOS) emits everything received, the last block padded with
 *    silence.
 *
 * Layouts: MIX = one channel, the saturated sum of every channel. STEREO =
 * two interleaved channels: left = the customer (participant_mode "caller",
 * or the first channel seen when the mode is unknown), right = the agent
 * ("callee", any other mode, or the second channel seen); further channels
 * are summed (saturated) into the side of their mode (unknown mode: right).
 * Sides are decided when a block is emitted, so a mode learned from a
 * participant event after the first packets still applies to pending audio.
 *
 * Start-up hold (STEREO with hold_for_modes, the element sets it for Contact
 * Center engagements): Zoom may send the buffer_data backlog (up to 60 s,
 * rtms-protocol.md §3.3) in a burst right after msg 7, before the
 * participant events (ZCC 8/10, participant_info, §3.6.2) that say which
 * channel_id is the caller and which the callee; the agent's first packet
 * may also arrive before the customer's. So no block at all is emitted while
 * any known channel has no participant_mode: every sample stays buffered
 * (nothing is late while nothing was emitted, and t0 still moves back).
 * The hold ends, for good, when the first block is emitted with every known
 * channel's mode set (then the sides are right from sample 0), or on
 * release_hold() (the caller's wall-clock timeout: the sides fall back to
 * the rule above), or on drain(). It is a start-up rule only: a channel
 * appearing later without a mode goes by the rule above. The Aligner has no
 * clock; the timeout is the caller's.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace zoomrtms {

enum class Layout { MIX, STEREO };

struct AlignerConfig {
  int rate = 16000;            /* Hz, a multiple of 1000 (8/16/32/48 kHz) */
  int packet_ms = 20;          /* block length = send_rate, ms */
  Layout layout = Layout::MIX;
  unsigned max_gap_fill_ms = 60000; /* 0 = always fill */
  unsigned skew_packets = 10;  /* skew window, in packets */
  size_t duplicate_history = 4096; /* timestamps remembered per channel */
  bool hold_for_modes = false; /* STEREO only: the start-up hold (above) */
};

/* Per-channel counters (zoomrtms/stats, the element's "stats" property). */
struct ChannelStats {
  std::string key;             /* channel_id / user_id */
  std::string participant_mode; /* "caller", "callee", … or "" */
  uint64_t frames = 0;         /* packets accepted */
  uint64_t duplicates = 0;     /* packets dropped as duplicate/replay */
  uint64_t late = 0;           /* packets dropped as late */
  uint64_t silence_samples = 0; /* samples of this channel's own gaps
                                   emitted as silence (between its first and
                                   last packet; resync jumps excluded) */
};

/* One output block: frames() samples per output channel, interleaved. */
struct AlignedBlock {
  int64_t position = 0;        /* first sample, on the timeline since t0 */
  std::vector<int16_t> samples; /* frames × channels, S16 native endian */
  int channels = 1;
  bool gap = false;            /* no channel had data in this block */
  bool discont = false;        /* first block, or first after a resync */
  size_t frames () const { return samples.size () / (size_t) channels; }
};

enum class PushResult {
  ACCEPTED,                    /* written on the timeline */
  RESYNC,                      /* accepted after a timeline jump */
  DUPLICATE,                   /* dropped: timestamp already seen */
  LATE,                        /* dropped: its block was already emitted */
  INVALID,                     /* dropped: empty or odd-sized payload */
};

class Aligner
{
public:
  explicit Aligner (const AlignerConfig &config);
  ~Aligner ();
  Aligner (const Aligner &) = delete;
  Aligner &operator= (const Aligner &) = delete;

  /** push:
   * @key: channel key; @timestamp_ms: RTMS epoch ms; @pcm: S16LE mono,
   * @bytes long (an even number).
   * Returns: what happened to the packet. Blocks that became ready are
   * queued for pop().
   */
  PushResult push (const std::string &key, int64_t timestamp_ms,
      const uint8_t *pcm, size_t bytes);
  /* msg 6 event 1 (§3.6.1): t0 if no packet came first. */
  void set_first_packet_timestamp (int64_t timestamp_ms);
  /* ZCC participant_mode of a channel ("caller"/"callee"/…), from
   * participant_info (§3.6.2). */
  void set_participant_mode (const std::string &key, const std::string &mode);
  /* Ends the start-up hold (the caller's timeout): blocks that are ready by
   * the usual rules are emitted, sides by the first-seen fallback for
   * channels whose mode is still unknown. No-op when not holding. */
  void release_hold ();
  /* TRUE while the start-up hold keeps back audio that would otherwise be
   * emitted or waits for it: hold_for_modes, nothing emitted yet, not
   * released, at least one channel known and one of them without a mode. */
  bool holding () const;
  /* Blocks emitted by the call (push, set_participant_mode, release_hold,
   * drain) that emitted the first block: the start-up burst held back by
   * the skew window or the hold. 0 before the first block. */
  uint64_t startup_blocks () const { return startup_blocks_; }
  /* EOS: make every received sample ready (the last block padded); ends
   * the start-up hold. */
  void drain ();
  /* Takes the next ready block. Returns: false if none is ready. */
  bool pop (AlignedBlock *out);
  bool has_ready () const { return !ready_.empty (); }

  int channels () const { return config_.layout == Layout::STEREO ? 2 : 1; }
  int block_frames () const { return block_; }
  /* Samples on the timeline emitted so far (end of the last block). */
  int64_t emitted_end () const;
  /* t0 in epoch ms, or INT64_MIN if not known yet. */
  int64_t t0_ms () const;
  bool started () const { return have_base_; }
  uint64_t resyncs () const { return resyncs_; }
  std::vector<ChannelStats> stats () const;

private:
  struct Channel;
  Channel &channel (const std::string &key);
  bool block_ready () const;
  void emit_ready ();
  void emit_block ();
  void resync (int64_t pos);
  int side_of (const Channel &c) const;
  int64_t max_progress () const;

  AlignerConfig config_;
  int block_;                  /* samples per block */
  int64_t skew_;               /* samples */
  int64_t max_gap_;            /* samples, 0 = unlimited */
  bool have_base_ = false;
  int64_t base_ = 0;           /* t0 in absolute samples (epoch ms × rate/1000) */
  int64_t next_ = 0;           /* absolute sample of the next block's start */
  uint64_t emitted_blocks_ = 0;
  bool discont_ = true;
  uint64_t resyncs_ = 0;
  bool hold_released_ = false;
  uint64_t startup_blocks_ = 0;
  std::vector<std::unique_ptr<Channel>> channels_; /* in order of appearance */
  std::map<std::string, Channel *> by_key_;
  std::map<std::string, std::string> pending_modes_;
  std::deque<AlignedBlock> ready_;
};

const char *push_result_name (PushResult r);

} // namespace zoomrtms
