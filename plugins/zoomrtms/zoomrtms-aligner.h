/* zoomrtms — the Aligner: RTMS audio packets of several channels onto one
 * timeline, by their RTMS timestamps (design.md "Timestamps and channels").
 *
 * Pure C++17, no GStreamer: the element (gstzoomrtmssrc.cpp) feeds it packets
 * from its streaming thread and turns its blocks into buffers. Not
 * thread-safe; one owner at a time.
 *
 * Model (docs/protocol.md §4.4, §4.9):
 *  - A packet is (channel key, RTMS timestamp in epoch ms, S16LE mono PCM).
 *    The channel key is the ZCC channel_id or the meeting user_id ("0" for
 *    meeting mixed audio).
 *  - Its position on the timeline is (timestamp − t0) × rate / 1000 samples,
 *    t0 = the first packet's timestamp, or the FIRST_PACKET_TIMESTAMP event
 *    (msg 6 event 1, §3.6.1) when that came first (and the first packet is
 *    at most max_gap_fill_ms after it: see the gaps below). Until the
 *    first block is emitted t0 moves back to the earliest timestamp seen,
 *    so two channels whose first packets arrive in either order align (as
 *    far as the memory bound below allows: a first packet more than the
 *    hold + 1 s before the most advanced audio is late). Arrival order and
 *    sample counts never decide a position.
 *  - Output is cut into blocks of block_ms (default: one packet duration,
 *    packet_ms, the negotiated send_rate), aligned on t0. Larger blocks
 *    mean fewer buffers downstream (less work per second) and add their
 *    length to the latency: a block is ready once its last sample is.
 *  - Per channel, a gap between packets (mute, hold, pause) is silence of the
 *    exact length. A packet whose timestamp was already received on its
 *    channel (the last duplicate_history timestamps are remembered), or that
 *    is at or before the channel's last one and older than that full
 *    history, is a duplicate or a replay (failover, §4.9): dropped and
 *    counted.
 *  - The hold (hold_ms; the element's align-hold property) is how long the
 *    output waits for a channel that is behind. A block is emitted when
 *    every active channel has all of its samples, or when the most advanced
 *    channel has data hold_ms or more past the block's end, so a muted or
 *    departed channel delays the others by at most the hold. A channel is
 *    active once a packet of it was accepted, or once it was announced
 *    (expect_channel(), set_participant_mode(): a party that the
 *    participant events say is there but whose audio has not started yet —
 *    a late joiner — is waited for like a channel that is behind). So
 *    packets that arrive out of order, a channel's burst after a stall of
 *    its sender, a backlog replay of one channel, and the first packets of
 *    an announced late joiner are placed at their timestamps as long as they
 *    are less than the hold behind the most advanced channel. The first
 *    block also waits for the start-up wait (startup_wait_ms, default
 *    200 ms, at most the hold; or drain()), so a channel whose first
 *    packet arrives that much later with an earlier timestamp still lands
 *    in place (t0 moves back); so a recording with a long hold does not
 *    start seconds late when every channel sends.
 *  - Only what is still more than the hold behind is dropped: a packet
 *    entirely inside a block that was already emitted is late (dropped,
 *    counted in ChannelStats::late and late_samples, reported in
 *    PushDetail); a packet straddling the emitted edge keeps its unemitted
 *    part (the rest counted in late_samples).
 *  - A block in which no channel had any sample is flagged gap.
 *  - When a packet is more than max_gap_fill_ms past the most advanced
 *    channel (every channel stopped: pause, outage), the gap is not filled:
 *    pending data is flushed, the timeline jumps to the packet's block (the
 *    block positions jump too, so the element's PTS follow stream time) and
 *    the next block is flagged discont. max_gap_fill_ms = 0 fills any gap
 *    (up to max_jump_ms, below). The same holds for the first packet after
 *    a t0 that no audio set: more than max_gap_fill_ms (0: max_jump_ms)
 *    after the FIRST_PACKET_TIMESTAMP event, t0 becomes that packet's; more
 *    than max_jump_ms after a continuation's start position, its timeline
 *    jumps (RESYNC). A continuation's downtime up to max_jump_ms is exact
 *    silence: the host counts the samples in its files as timeline
 *    positions. So no timestamp, not even the first, makes more than
 *    max_jump_ms of silence, and a filled gap is one silence run (O(1)).
 *  - Timestamps far from the stream's timeline are refused, never allocated:
 *    a timestamp outside [0, kMaxTimestampMs], or more than max_jump_ms
 *    (default 1 h) before or after the newest accepted timestamp, is
 *    OUT_OF_RANGE (counted in ChannelStats::out_of_range). If
 *    reanchor_packets such packets arrive in a row (no packet accepted in
 *    between) and all lie within max_jump_ms of the first of them, the
 *    stream really moved (or its first packet was the wrong one): the
 *    timeline re-anchors on them like a resync (pending data flushed — or,
 *    before the first block, discarded and counted as out_of_range —, next
 *    block discont; positions never go back).
 *  - drain() (EOS) emits everything received, the last block padded with
 *    silence up to the packet grid: with block_ms longer than a packet the
 *    last block is shorter (a whole number of packets), so the output
 *    has the same samples, and length, whatever block_ms.
 *  - A continuation (AlignerConfig::origin_ms, start_position) fixes t0 and
 *    the first output position instead: see there.
 *
 * Memory (bounded, allocated on demand and then reused; nothing is
 * allocated per packet or per block once the rings have grown — the
 * duplicate history is a ring of at most duplicate_history timestamps per
 * channel, ready blocks wait in a ring and their sample storage is recycled
 * through the block given to pop(); only a burst of more than 8 blocks
 * ready at once (a stalled channel's hold running out, a drain) allocates
 * the storage of the blocks beyond 8, freed once they are popped;
 * tests/element/test-aligner.cpp counts the allocations): per channel that sent audio (channels are
 * never forgotten; a hostile stream with many keys costs one ring each)
 * one ring of S16 samples plus one
 * byte per sample, of at most (hold + one block + one packet of at most 1 s)
 * × rate samples rounded up to a power of two — e.g. hold 5000 ms, 16 kHz:
 * 2^17 slots × 3 bytes = 384 KiB per channel; during the Contact Center
 * start-up hold or a role hold below, at most (hold + max_startup_ms) ×
 * rate. Gaps are emitted as silence runs (one entry, not one block each).
 * Packets longer than 1 s of audio are INVALID (send_rate is at most
 * 1000 ms, docs/protocol.md §4.2).
 *
 * CPU (per packet, on the element's I/O thread): a packet is copied into
 * its channel's ring once; a gap before it is queued as one silence run in
 * O(1), whatever its length (emit_steps() counts); a resync or re-anchor
 * clears only the slots still pending, never whole rings (their size is
 * the hold's: ring_slots_cleared() counts); whether a block is
 * ready is O(1) for packets in order (a watermark of each channel's
 * contiguous data, not a scan of the block); a block is summed straight
 * into its output storage when each side has at most two channels (ZCC
 * stereo: one each), through a 32-bit accumulator otherwise, the whole sum
 * of a side saturated once either way. Built with
 * ZOOMRTMS_ALIGNER_SELFCHECK (the unit tests and the fuzz regression run)
 * these fast paths are checked against the plain computation, aborting on
 * a difference.
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
 * docs/protocol.md §3.3) in a burst right after msg 7, before the
 * participant events (ZCC 8/10, participant_info, §3.6.2) that say which
 * channel_id is the caller and which the callee; the agent's first packet
 * may also arrive before the customer's. So no block at all is emitted while
 * any known channel has no participant_mode: every sample stays buffered
 * (nothing is late while nothing was emitted, and t0 still moves back).
 * The hold ends, for good, when the first block is emitted with every known
 * channel's mode set (then the sides are right from sample 0), or on
 * release_hold() (the caller's wall-clock timeout: the sides fall back to
 * the rule above), or on drain(), or when the held audio would span more
 * than max_startup_ms + the hold (the memory bound; then as on
 * release_hold()). The Aligner has no clock; the timeout is the caller's.
 *
 * Role hold (the same rule for channels that appear later: after a
 * failover to a server that gives the channels new channel_ids,
 * docs/protocol.md §4.9, or a party joining mid-call): with
 * hold_for_modes, a channel whose first accepted packet comes after the
 * start-up (a block was emitted, or the start-up hold was released) and
 * that has no participant_mode yet is role-pending. Its packets are
 * placed on the timeline as usual (duplicates, late and silence counted
 * as usual), but no block that holds any of its audio is emitted while it
 * is pending; blocks before its first packet's position still are, by the
 * usual rules. It ends for that channel when its mode is set (then its
 * side is right from its first sample), on release_role() (the caller's
 * wall-clock timeout: the side by the fallback rule above), on drain(),
 * or when the held audio would span more than max_startup_ms + the hold
 * (then for every pending channel, counted in role_hold_overflows()). A
 * resync (max_gap_fill_ms) emits what is pending (fallback sides); a
 * pending channel's later packets are held again. While any channel is
 * pending the output of every channel waits, at most that long.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace zoomrtms {

enum class Layout { MIX, STEREO };

/* Timestamps above this (epoch ms, year 5138) are refused as OUT_OF_RANGE,
 * so that timestamp × rate and position arithmetic stay far from int64
 * overflow (10^14 × 48 = 4.8 × 10^15 samples). RTMS timestamps are epoch
 * ms (docs/protocol.md §4.4). */
constexpr int64_t kMaxTimestampMs = 100000000000000LL;

struct AlignerConfig {
  int rate = 16000;            /* Hz, a multiple of 1000 (8/16/32/48 kHz) */
  int packet_ms = 20;          /* packet length = send_rate, ms */
  /* Output block length, ms (the element's block-ms property); 0 = one
   * packet (packet_ms). At most 1000; a block is rate × block_ms / 1000
   * samples. */
  int block_ms = 0;
  Layout layout = Layout::MIX;
  unsigned max_gap_fill_ms = 60000; /* 0 = always fill (up to max_jump_ms) */
  /* The hold, ms: how long the output waits for a channel that is behind
   * (see the model). 0 = skew_packets × packet_ms. */
  unsigned hold_ms = 0;
  unsigned skew_packets = 10;  /* the hold in packets when hold_ms is 0 */
  /* The first block waits until the most advanced channel is this many ms
   * past its end (at most the hold). */
  unsigned startup_wait_ms = 200;
  size_t duplicate_history = 4096; /* timestamps remembered per channel */
  bool hold_for_modes = false; /* STEREO only: the start-up hold (above) */
  /* Timestamps more than this (ms) from the newest accepted one are
   * refused (OUT_OF_RANGE); at most 24 h. */
  unsigned max_jump_ms = 3600000;
  /* Consecutive OUT_OF_RANGE packets, consistent among themselves, after
   * which the timeline re-anchors on them; 0 = never. */
  unsigned reanchor_packets = 100;
  /* Start-up hold: most audio held (ms past t0, on top of the hold) before
   * it ends by itself (buffer_data backlog: up to 60 s, §3.3). */
  unsigned max_startup_ms = 65000;
  /* Continuing a recording (the element's timeline-origin and
   * timeline-offset properties, design.md "Lifetimes: detach is not stop"):
   * origin_ms >= 0 fixes t0 to that RTMS epoch ms (it never moves back, the
   * FIRST_PACKET_TIMESTAMP event is ignored); INT64_MIN = t0 from the first
   * packet, as above. start_position (samples at rate, >= 0; only with a
   * fixed origin) is the timeline position of the first output sample: the
   * output starts there, with exact silence up to the first packet (if
   * that is at most max_gap_fill_ms later; else the timeline jumps to it,
   * as at any longer gap); audio before it was already recorded and is
   * dropped as a duplicate (counted in ChannelStats::duplicates, never as
   * late). Blocks stay on t0's grid: the first block runs from
   * start_position to the next boundary. */
  int64_t origin_ms = INT64_MIN;
  int64_t start_position = 0;
};

/* Per-channel counters (zoomrtms/stats, the element's "stats" property). */
struct ChannelStats {
  std::string key;             /* channel_id / user_id */
  std::string participant_mode; /* "caller", "callee", … or "" */
  uint64_t frames = 0;         /* packets accepted (also partly late ones) */
  uint64_t duplicates = 0;     /* packets dropped as duplicate/replay */
  uint64_t late = 0;           /* packets dropped entirely as late */
  uint64_t late_samples = 0;   /* samples of received audio dropped as
                                  late (whole and partly late packets) */
  uint64_t out_of_range = 0;   /* packets refused: timestamp far from the
                                  timeline (or discarded by a re-anchor
                                  before the first block) */
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
  ACCEPTED,                    /* written on the timeline (all of it, or
                                  its unemitted part: see dropped_samples) */
  RESYNC,                      /* accepted after a timeline jump
                                  (max_gap_fill_ms, or a re-anchor) */
  DUPLICATE,                   /* dropped: timestamp already seen */
  LATE,                        /* dropped: its blocks were already emitted
                                  (it is more than the hold behind) */
  INVALID,                     /* dropped: empty, odd-sized, longer than
                                  1 s of audio, or no pcm */
  OUT_OF_RANGE,                /* refused: timestamp < 0, >
                                  kMaxTimestampMs, or more than max_jump_ms
                                  from the newest accepted one */
};

/* What push() did beyond its result. */
struct PushDetail {
  /* samples of this packet not placed: all of a LATE packet, the emitted
   * part of a straddling one, all of an OUT_OF_RANGE/INVALID one (bytes /
   * 2); 0 otherwise */
  int64_t dropped_samples = 0;
};

class Aligner
{
public:
  explicit Aligner (const AlignerConfig &config);
  ~Aligner ();
  Aligner (const Aligner &) = delete;
  Aligner &operator= (const Aligner &) = delete;

  /** push:
   * @key: channel key (ZCC channel_id, meeting user_id), any string;
   * @timestamp_ms: RTMS timestamp, epoch ms (docs/protocol.md §4.4), any
   *   int64 (out-of-range values are refused, never allocated);
   * @pcm: S16LE mono, @bytes long (even, 2 .. 2 × rate);
   * @detail: optional, see PushDetail.
   * Returns: what happened to the packet (PushResult); each result but
   * ACCEPTED/RESYNC is counted in the channel's ChannelStats (INVALID is
   * counted by the caller). Blocks that became ready are queued for pop().
   * Never throws on input; allocation is bounded (see the model).
   */
  PushResult push (const std::string &key, int64_t timestamp_ms,
      const uint8_t *pcm, size_t bytes, PushDetail *detail = nullptr);
  /* msg 6 event 1 (§3.6.1): t0 if no packet came first. Ignored if out of
   * range or if it would move t0 back further than the hold allows. */
  void set_first_packet_timestamp (int64_t timestamp_ms);
  /* ZCC participant_mode of a channel ("caller"/"callee"/…), from
   * participant_info (§3.6.2); also announces the channel
   * (expect_channel()). */
  void set_participant_mode (const std::string &key, const std::string &mode);
  /* A participant event says channel @key is there (ZCC participant_info,
   * meeting multi-stream join): until its first packet, output waits for it
   * up to the hold, so its first packets are placed at their timestamps. */
  void expect_channel (const std::string &key);
  /* Ends the start-up hold (the caller's timeout): blocks that are ready by
   * the usual rules are emitted, sides by the first-seen fallback for
   * channels whose mode is still unknown. No-op when not holding. */
  void release_hold ();
  /* TRUE while the start-up hold keeps back audio that would otherwise be
   * emitted or waits for it: hold_for_modes, nothing emitted yet, not
   * released, at least one channel with audio, and an active channel
   * (audio or announced) without a mode. (Channels that appear later are
   * the role hold's: roles_pending().) */
  bool holding () const;
  /* The role hold (see the model): channels whose packets are held until
   * their participant mode is known, how many, which. */
  size_t roles_pending () const { return roles_pending_; }
  bool role_pending (const std::string &key) const;
  std::vector<std::string> pending_role_keys () const;
  /* Ends channel @key's role hold (the caller's timeout): its held blocks
   * are emitted, its side by the fallback rule. No-op if it is not
   * pending. */
  void release_role (const std::string &key);
  /* Times the role hold ended because the held audio reached its bound
   * (max_startup_ms + the hold), releasing every pending channel. */
  uint64_t role_hold_overflows () const { return role_hold_overflows_; }
  /* TRUE once the start-up hold ended because the held audio reached its
   * bound (max_startup_ms + the hold), not by modes, release or drain. */
  bool startup_hold_overflowed () const { return hold_overflowed_; }
  /* Blocks emitted by the call (push, set_participant_mode, release_hold,
   * drain) that emitted the first block: the start-up burst held back by
   * the hold or the start-up hold. 0 before the first block. */
  uint64_t startup_blocks () const { return startup_blocks_; }
  /* EOS: make every received sample ready (the last block padded to the
   * packet grid, so possibly shorter than block_frames()); ends the
   * start-up hold. */
  void drain ();
  /* Takes the next ready block into @out, reusing @out's sample storage
   * (pass the same block back to avoid an allocation per block). Returns:
   * false if none is ready. */
  bool pop (AlignedBlock *out);
  bool has_ready () const { return ready_count_ > 0; }

  int channels () const { return config_.layout == Layout::STEREO ? 2 : 1; }
  int block_frames () const { return block_; }
  /* The hold, in samples. */
  int64_t hold_samples () const { return hold_; }
  /* The start-up wait, in samples (<= the hold). */
  int64_t startup_wait_samples () const { return startup_wait_; }
  /* Samples on the timeline emitted so far (end of the last block). */
  int64_t emitted_end () const;
  /* t0 in epoch ms, or INT64_MIN if not known yet. */
  int64_t t0_ms () const;
  bool started () const { return have_base_; }
  uint64_t resyncs () const { return resyncs_; }
  /* Work counter (tests): steps of the block emitter so far, one per
   * block with audio and one per run of gap blocks emitted at once (a gap
   * up to a packet costs one step, not one per block of it). */
  uint64_t emit_steps () const { return emit_steps_; }
  /* Work counter (tests): ring slots cleared by resyncs and re-anchors,
   * the pending audio's (not the whole rings', whose size is the hold's). */
  uint64_t ring_slots_cleared () const { return ring_slots_cleared_; }
  /* Ring slots per channel now (memory: × 3 bytes × channels). */
  size_t capacity () const { return cap_; }
  std::vector<ChannelStats> stats () const;

private:
  struct Channel;
  struct Ready {
    AlignedBlock block;        /* a block, or the first of a silence run */
    uint64_t run = 0;          /* > 0: this many gap blocks from
                                  block.position (block.samples unused) */
  };
  /* ready_ as a ring (grows by doubling, never shrinks); a slot's sample
   * storage comes from spare_ */
  Ready &ready_back () { return ready_[(ready_head_ + ready_count_ - 1) & (ready_.size () - 1)]; }
  Ready &ready_front () { return ready_[ready_head_]; }
  Ready &ready_push ();
  void ready_pop ();
  Channel &channel (const std::string &key);
  int64_t contiguous (Channel &c, int64_t limit);
  bool block_ready ();
  void emit_ready ();
  /* emits the block at next_, ending at its grid boundary or @limit
   * (absolute), whichever comes first */
  void emit_block (int64_t limit = INT64_MAX);
  void emit_until (int64_t limit);
  void emit_gaps (uint64_t k);
  bool pending_at_next () const;
  void clear_pending (Channel &c);
  void resync (int64_t pos);
  void rebase_empty (int64_t pos);
  bool ensure_capacity (int64_t span);
  int64_t span_limit () const;
  int side_of (const Channel &c) const;
  /* absolute sample of the earliest audio held by the role hold,
   * INT64_MAX if none */
  int64_t role_hold_from () const;
  void release_roles ();
  int64_t max_progress () const;
  int64_t block_floor (int64_t pos) const;
  /* end (absolute) of the block that starts at next_: the next grid
   * boundary (a continuation's first block may be shorter) */
  int64_t block_end () const { return block_floor (next_) + block_; }
  void fold_silence ();

  AlignerConfig config_;
  int block_;                  /* samples per block */
  int64_t hold_;               /* samples */
  int64_t startup_wait_;       /* samples, <= hold_ */
  int64_t max_gap_;            /* samples, 0 = unlimited */
  int64_t max_packet_;         /* samples: 1 s */
  bool fixed_ = false;         /* origin_ms given: base_ never moves */
  int64_t start_abs_ = INT64_MIN; /* fixed_: absolute sample of the start */
  bool have_base_ = false;
  int64_t base_ = 0;           /* t0 in absolute samples (epoch ms × rate/1000) */
  int64_t next_ = 0;           /* absolute sample of the next block's start */
  int64_t shift_ = 0;          /* positions: next_ - base_ + shift_ (re-anchors) */
  int64_t newest_ms_ = 0;      /* newest accepted timestamp */
  bool have_newest_ = false;
  uint64_t oor_run_ = 0;       /* consecutive OUT_OF_RANGE packets */
  int64_t oor_first_ = 0;      /* timestamp of the first of them */
  uint64_t emitted_blocks_ = 0;
  bool discont_ = true;
  uint64_t resyncs_ = 0;
  uint64_t emit_steps_ = 0;
  uint64_t ring_slots_cleared_ = 0;
  bool hold_released_ = false;
  bool hold_overflowed_ = false;
  uint64_t startup_blocks_ = 0;
  size_t roles_pending_ = 0;   /* channels with role_wait set */
  uint64_t role_hold_overflows_ = 0;
  bool drained_ = false;
  size_t cap_ = 0;             /* ring slots per channel, a power of two */
  std::vector<std::unique_ptr<Channel>> channels_; /* in order of appearance */
  std::map<std::string, Channel *> by_key_;
  std::vector<Ready> ready_;   /* ring, size a power of two */
  size_t ready_head_ = 0, ready_count_ = 0;
  std::vector<int32_t> acc_;   /* emit_block scratch */
  /* sample storage of popped blocks, reused by emit_block (capacity
   * reserved up front: keeping one allocates nothing) */
  static constexpr size_t kSpareBlocks = 8;
  std::vector<std::vector<int16_t>> spare_;
};

const char *push_result_name (PushResult r);

} // namespace zoomrtms
