/* zoomrtms — the Aligner; see zoomrtms-aligner.h for the model. */
#include "zoomrtms-aligner.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>

namespace zoomrtms {

struct Aligner::Channel {
  std::string key;
  std::string mode;
  size_t order = 0;
  bool announced = false;        /* expect_channel / a participant mode */
  /* Ring of pending samples: absolute sample p lives in slot p & (cap-1);
   * only slots in [next_, next_ + cap) are ever set, emitted slots are
   * cleared. Empty until the first accepted packet. */
  std::vector<int16_t> buf;
  std::vector<uint8_t> filled;
  bool have_data = false;
  int64_t last_ts = INT64_MIN;   /* highest timestamp accepted, ms */
  bool have_first = false;
  int64_t first_pos = 0;         /* absolute sample of the first accepted one */
  int64_t progress = INT64_MIN;  /* absolute sample after the furthest data */
  /* Watermark of contiguous data (Aligner::contiguous()): every slot in
   * [max (fill_from, next_), fill_to) is filled; valid while fill_from <=
   * next_ <= fill_to (the timeline moving back invalidates it), reset
   * where the rings are cleared wholesale (resync, rebase). Kept by push()
   * in O(1) for packets in order, so block_ready() does not scan. */
  int64_t fill_from = 0, fill_to = INT64_MIN;
  int side = 0;                  /* emit_block scratch: output side */
  /* timestamps accepted (the last `limit`), ascending, in a ring of a
   * power-of-two size allocated once: packets arrive in order, so an
   * insert is a push at the back and the oldest leaves at the front */
  std::vector<int64_t> hist;
  size_t hist_head = 0, hist_count = 0, hist_limit = 1;
  uint64_t emitted_filled = 0;   /* received samples emitted since first_pos */
  uint64_t silence_base = 0;     /* silence folded at resyncs */
  /* the role hold (zoomrtms-aligner.h): its first packet came after the
   * start-up without a participant mode; blocks from hold_from (absolute
   * sample, its earliest audio held) on wait for the mode */
  bool role_wait = false;
  int64_t hold_from = INT64_MAX;
  bool appeared = false;         /* a packet of it was accepted, ever (a
                                    re-anchor clears have_data, not this) */
  ChannelStats stats;

  bool
  active () const
  {
    return have_data || announced;
  }

  int64_t
  hist_at (size_t i) const
  {
    return hist[(hist_head + i) & (hist.size () - 1)];
  }

  /* index of the first timestamp >= @ts */
  size_t
  hist_lower (int64_t ts) const
  {
    size_t lo = 0, hi = hist_count;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (hist_at (mid) < ts)
        lo = mid + 1;
      else
        hi = mid;
    }
    return lo;
  }

  bool
  seen (int64_t ts) const
  {
    if (hist_count == 0 || ts > hist_at (hist_count - 1))
      return false;             /* newer than all (in order): no search */
    size_t k = hist_lower (ts);
    return k < hist_count && hist_at (k) == ts;
  }

  bool hist_full () const { return hist_count >= hist_limit; }
  int64_t hist_front () const { return hist_at (0); }
  void hist_clear () { hist_head = hist_count = 0; }

  /* Adds @ts (not seen); keeps the newest hist_limit timestamps. */
  void
  remember (int64_t ts)
  {
    if (hist_count == hist.size () && hist_count < hist_limit) {
      /* grow by doubling up to the limit (the first minute or so of a
       * stream), unrolling the ring */
      std::vector<int64_t> n (hist.empty () ? 64 : hist.size () * 2);
      for (size_t i = 0; i < hist_count; i++)
        n[i] = hist_at (i);
      hist.swap (n);
      hist_head = 0;
    }
    const size_t mask = hist.size () - 1;
    size_t k = hist_count == 0 || ts > hist_at (hist_count - 1) ?
        hist_count : hist_lower (ts);
    if (hist_full ()) {
      if (k == 0)
        return;                 /* older than all it would keep */
      hist_head = (hist_head + 1) & mask;
      hist_count--;
      k--;
    }
    /* shift [k, count) one slot back (rare: an out-of-order packet) */
    for (size_t i = hist_count; i > k; i--)
      hist[(hist_head + i) & mask] = hist[(hist_head + i - 1) & mask];
    hist[(hist_head + k) & mask] = ts;
    hist_count++;
  }
};

const char *
push_result_name (PushResult r)
{
  switch (r) {
    case PushResult::ACCEPTED:
      return "accepted";
    case PushResult::RESYNC:
      return "resync";
    case PushResult::DUPLICATE:
      return "duplicate";
    case PushResult::LATE:
      return "late";
    case PushResult::INVALID:
      return "invalid";
    case PushResult::OUT_OF_RANGE:
      return "out-of-range";
  }
  return "unknown";
}

Aligner::Aligner (const AlignerConfig &config) : config_ (config)
{
  spare_.reserve (kSpareBlocks);
  if (config_.rate <= 0 || config_.rate > 384000)
    config_.rate = 16000;
  if (config_.packet_ms <= 0 || config_.packet_ms > 1000)
    config_.packet_ms = 20;
  if (config_.block_ms <= 0 || config_.block_ms > 1000)
    config_.block_ms = config_.packet_ms;
  if (config_.duplicate_history == 0)
    config_.duplicate_history = 1;
  config_.max_jump_ms = std::min (config_.max_jump_ms, 86400000u);
  if (config_.max_jump_ms == 0)
    config_.max_jump_ms = 1;
  block_ = (int) ((int64_t) config_.rate * config_.block_ms / 1000);
  if (block_ <= 0)
    block_ = 1;
  int64_t hold_ms = config_.hold_ms ? (int64_t) config_.hold_ms :
      (int64_t) config_.skew_packets * config_.packet_ms;
  hold_ms = std::min<int64_t> (hold_ms, 600000);        /* 10 min */
  hold_ = hold_ms * config_.rate / 1000;
  startup_wait_ = std::min<int64_t> (hold_,
      (int64_t) std::min (config_.startup_wait_ms, 600000u) * config_.rate /
      1000);
  max_gap_ = (int64_t) config_.rate * config_.max_gap_fill_ms / 1000;
  max_packet_ = config_.rate;   /* 1 s */
  config_.max_startup_ms = std::min (config_.max_startup_ms, 600000u);
  if (config_.origin_ms >= 0 && config_.origin_ms <= kMaxTimestampMs &&
      config_.start_position >= 0 &&
      config_.start_position <= kMaxTimestampMs) {
    fixed_ = true;
    have_base_ = true;
    base_ = config_.origin_ms * config_.rate / 1000;
    start_abs_ = base_ + config_.start_position;
    next_ = start_abs_;
  }
}

Aligner::~Aligner () = default;

Aligner::Channel &
Aligner::channel (const std::string &key)
{
  auto it = by_key_.find (key);
  if (it != by_key_.end ())
    return *it->second;
  auto c = std::make_unique<Channel> ();
  c->key = key;
  c->order = channels_.size ();
  c->stats.key = key;
  c->hist_limit = config_.duplicate_history;
  Channel *raw = c.get ();
  channels_.push_back (std::move (c));
  by_key_[key] = raw;
  return *raw;
}

void
Aligner::expect_channel (const std::string &key)
{
  Channel &c = channel (key);
  c.announced = true;
}

void
Aligner::set_participant_mode (const std::string &key, const std::string &mode)
{
  Channel &c = channel (key);
  c.announced = true;
  c.mode = mode;
  if (c.role_wait && !c.mode.empty ()) {
    c.role_wait = false;        /* ends its role hold */
    roles_pending_--;
  }
  emit_ready ();                /* may end the start-up or role hold */
}

bool
Aligner::role_pending (const std::string &key) const
{
  auto it = by_key_.find (key);
  return it != by_key_.end () && it->second->role_wait;
}

std::vector<std::string> Aligner::pending_role_keys () const
{
  std::vector<std::string> v;
  for (auto &c : channels_)
    if (c->role_wait)
      v.push_back (c->key);
  return v;
}

void
Aligner::release_role (const std::string &key)
{
  auto it = by_key_.find (key);
  if (it == by_key_.end () || !it->second->role_wait)
    return;
  it->second->role_wait = false;
  roles_pending_--;
  emit_ready ();
}

void
Aligner::release_roles ()
{
  for (auto &c : channels_)
    c->role_wait = false;
  roles_pending_ = 0;
}

int64_t
Aligner::role_hold_from () const
{
  int64_t m = INT64_MAX;
  if (roles_pending_ == 0)
    return m;
  for (auto &c : channels_)
    if (c->role_wait)
      m = std::min (m, c->hold_from);
  return m;
}

bool
Aligner::holding () const
{
  if (!config_.hold_for_modes || config_.layout != Layout::STEREO ||
      hold_released_ || emitted_blocks_ > 0)
    return false;
  bool any = false;
  for (auto &c : channels_) {
    if (!c->have_data)
      continue;
    any = true;
  }
  if (!any)
    return false;
  for (auto &c : channels_)
    if (c->active () && c->mode.empty ())
      return true;
  return false;
}

void
Aligner::release_hold ()
{
  if (hold_released_)
    return;
  hold_released_ = true;
  emit_ready ();
}

void
Aligner::emit_ready ()
{
  bool first = emitted_blocks_ == 0;
  uint64_t before = emitted_blocks_;
  while (block_ready ())
    emit_block ();
  if (first && emitted_blocks_ > before)
    startup_blocks_ = emitted_blocks_ - before;
}

int64_t
Aligner::block_floor (int64_t pos) const
{
  /* the block boundary (on t0's grid) at or before @pos */
  const int64_t grid = base_;
  int64_t rel = pos - grid;
  int64_t blk = rel >= 0 ? rel / block_ : -((-rel + block_ - 1) / block_);
  return grid + blk * block_;
}

int64_t
Aligner::span_limit () const
{
  int64_t lim = hold_ + block_ + max_packet_;
  if (roles_pending_ > 0 || holding ())
    lim += (int64_t) config_.max_startup_ms * config_.rate / 1000;
  return lim;
}

/* Makes the rings hold @span samples from next_ (a power of two). Returns
 * false if @span is over the bound (nothing changed). */
bool
Aligner::ensure_capacity (int64_t span)
{
  if (span > span_limit ())
    return false;
  if (span <= (int64_t) cap_)
    return true;
  size_t ncap = cap_ ? cap_ : 1024;
  while ((int64_t) ncap < span)
    ncap *= 2;
  const size_t omask = cap_ - 1, nmask = ncap - 1;
  for (auto &c : channels_) {
    if (c->buf.empty ())
      continue;
    std::vector<int16_t> nb (ncap, 0);
    std::vector<uint8_t> nf (ncap, 0);
    for (size_t i = 0; i < cap_; i++) {
      uint64_t p = (uint64_t) next_ + i;
      if (c->filled[p & omask]) {
        nb[p & nmask] = c->buf[p & omask];
        nf[p & nmask] = 1;
      }
    }
    c->buf.swap (nb);
    c->filled.swap (nf);
  }
  cap_ = ncap;
  return true;
}

void
Aligner::set_first_packet_timestamp (int64_t timestamp_ms)
{
  if (fixed_ || timestamp_ms < 0 || timestamp_ms > kMaxTimestampMs)
    return;
  int64_t pos = timestamp_ms * config_.rate / 1000;
  if (!have_base_) {
    have_base_ = true;
    base_ = next_ = pos;
    return;
  }
  if (emitted_blocks_ == 0 && pos < base_) {
    int64_t maxp = std::max (max_progress (), next_);
    if (maxp - pos > span_limit () || !ensure_capacity (maxp - pos))
      return;
    /* the ring is indexed by absolute position: moving the start back
     * only widens the window (those slots are clean) */
    base_ = next_ = pos;
  }
}

int64_t
Aligner::max_progress () const
{
  int64_t m = INT64_MIN;
  for (auto &c : channels_)
    if (c->have_data)
      m = std::max (m, c->progress);
  return m;
}

int64_t
Aligner::emitted_end () const
{
  return have_base_ ? next_ - base_ + shift_ : 0;
}

int64_t
Aligner::t0_ms () const
{
  return have_base_ ? (base_ - shift_) * 1000 / config_.rate : INT64_MIN;
}

/* The end of the run of filled slots of @c from next_, looked at up to
 * @limit (absolute): every slot in [next_, result) is filled (the result
 * may pass @limit). Advances the channel's watermark, so each slot is
 * looked at about once however often a block is asked about. */
int64_t
Aligner::contiguous (Channel &c, int64_t limit)
{
  if (c.fill_from > next_ || c.fill_to < next_)
    c.fill_from = c.fill_to = next_;
  const int64_t stop = std::min (limit, c.progress);
  if (c.fill_to < stop) {
    const size_t mask = cap_ - 1;
    int64_t p = c.fill_to;
    while (p < stop && c.filled[(uint64_t) p & mask])
      p++;
    c.fill_to = p;
  }
#ifdef ZOOMRTMS_ALIGNER_SELFCHECK
  for (int64_t p = next_; p < std::min (c.fill_to, limit); p++)
    if (!c.filled[(uint64_t) p & (cap_ - 1)])
      abort ();                 /* the watermark claims an empty slot */
#endif
  return c.fill_to;
}

bool
Aligner::block_ready ()
{
  if (channels_.empty () || holding ())
    return false;
  int64_t end = block_end ();
  if (roles_pending_ > 0 && end > role_hold_from ())
    return false;               /* the role hold */
  int64_t maxp = max_progress ();
  if (maxp == INT64_MIN)
    return false;
  if (maxp - end >= hold_)
    return true;
  if (emitted_blocks_ == 0 && maxp - end < startup_wait_)
    return false;               /* start-up: t0 may still move back */
  for (auto &c : channels_) {
    if (!c->active ())
      continue;
    if (!c->have_data || c->progress < end)
      return false;
    if (contiguous (*c, end) < end)
      return false;
  }
  return true;
}

int
Aligner::side_of (const Channel &c) const
{
  if (c.mode == "caller")
    return 0;
  if (!c.mode.empty ())
    return 1;
  /* unknown mode: the first channel seen is the customer, unless a channel
   * already says it is the caller */
  for (auto &o : channels_) {
    if (o->mode == "caller")
      return 1;
  }
  for (auto &o : channels_) {
    if (o->mode.empty () && o->have_data)
      return o.get () == &c ? 0 : 1;
  }
  return 1;
}

static inline int16_t
saturate (int32_t v)
{
  return (int16_t) std::clamp (v, (int32_t) INT16_MIN, (int32_t) INT16_MAX);
}

/* Saturating sum of @a and @b: exactly saturate (a + b), so a side of two
 * channels summed into the output in place matches the sum of both then
 * one saturation. */
static inline int16_t
add_sat (int16_t a, int16_t b)
{
  return saturate ((int32_t) a + (int32_t) b);
}

/* Emits @k whole gap blocks from next_ (on the grid, nothing pending in
 * them) in O(1): the silence run at the back grows when it is contiguous,
 * else one new Ready entry holds all @k. */
void
Aligner::emit_gaps (uint64_t k)
{
  const int64_t position = next_ - base_ + shift_;
  const int64_t len = (int64_t) k * block_;
  if (ready_count_ > 0 && !discont_) {
    Ready &r = ready_back ();
    if (r.run > 0 && r.block.position + (int64_t) r.run * block_ ==
        position) {
      r.run += k;
      next_ += len;
      emitted_blocks_ += k;
      return;
    }
  }
  Ready &r = ready_push ();
  r.block.position = position;
  r.block.channels = channels ();
  r.block.gap = true;
  r.block.discont = discont_;
  r.run = k;
  discont_ = false;
  next_ += len;
  emitted_blocks_ += k;
}

void
Aligner::emit_block (int64_t limit)
{
  emit_steps_++;
  const int ch = channels ();
  const int64_t end = std::min (block_end (), limit);
  const int64_t n = end - next_;  /* block_, or less for a continuation's
                                     first block or drain's last one */
  const size_t mask = cap_ - 1;
  /* the channels with pending data in this block, and how many of them
   * land on each side; a sample not received is 0 in buf (push writes
   * only where it sets filled; both are cleared together) */
  bool any = false, gap_partial = false;
  int per_side[2] = { 0, 0 };
  for (auto &c : channels_) {
    if (!c->have_data || c->progress <= next_ || c->buf.empty ())
      continue;                 /* nothing pending in this block */
    c->side = ch == 2 ? side_of (*c) : 0;
    per_side[c->side]++;
    const int64_t stop = std::min (end, c->progress);
    uint64_t nfilled;
    if (contiguous (*c, stop) >= stop) {
      nfilled = (uint64_t) (stop - next_);      /* all of it (in order) */
#ifdef ZOOMRTMS_ALIGNER_SELFCHECK
      for (int64_t p = next_; p < stop; p++)
        if (!c->filled[(uint64_t) p & mask])
          abort ();
#endif
    } else {
      nfilled = 0;
      for (int64_t p = next_; p < stop; p++)
        nfilled += c->filled[(uint64_t) p & mask];
    }
    if (nfilled)
      any = true;
    if (c->have_first)
      c->emitted_filled += nfilled;
  }
  const int64_t position = next_ - base_ + shift_;
  if (!any && n != block_) {
    /* a partial gap block (a continuation's first): an ordinary block */
    any = true;
    gap_partial = true;
  }
  if (!any) {
    /* a gap block (every pending sample is 0: nothing to clear) */
    emit_gaps (1);
    return;
  }
  Ready &r = ready_push ();
  r.run = 0;
  const size_t total = (size_t) n * ch;
  if (r.block.samples.capacity () < total && !spare_.empty ()) {
    r.block.samples.swap (spare_.back ());
    spare_.pop_back ();
  }
  r.block.samples.resize (total);
  int16_t *out = r.block.samples.data ();
  /* up to two channels per side are summed straight into the output (the
   * ZCC case: one each; a sum of two saturated once is the same as in the
   * accumulator); more on one side go through the 32-bit accumulator so
   * that the whole sum is saturated once */
  const bool direct = per_side[0] <= 2 && per_side[1] <= 2;
  int32_t *acc = nullptr;
  if (direct) {
    memset (out, 0, total * sizeof *out);
  } else {
    acc_.resize (total);
    acc = acc_.data ();
    memset (acc, 0, total * sizeof *acc);
  }
  int written[2] = { 0, 0 };    /* channels already on each side (direct) */
#ifdef ZOOMRTMS_ALIGNER_SELFCHECK
  /* the reference: every channel into the accumulator, saturated once */
  static thread_local std::vector<int32_t> ref;
  ref.assign (total, 0);        /* allocates only to grow */
#endif
  for (auto &c : channels_) {
    if (!c->have_data || c->progress <= next_ || c->buf.empty ())
      continue;
    const int side = c->side;
    const bool first = written[side]++ == 0;
    const int64_t stop = std::min (end, c->progress);
    /* in runs up to the ring's wrap */
    for (int64_t p = next_; p < stop;) {
      const size_t i0 = (size_t) ((uint64_t) p & mask);
      const size_t run = (size_t) std::min<int64_t> (stop - p,
          (int64_t) (cap_ - i0));
      int16_t *b = c->buf.data () + i0;
      const size_t o = (size_t) (p - next_) * ch + side;
#ifdef ZOOMRTMS_ALIGNER_SELFCHECK
      for (size_t k = 0; k < run; k++)
        ref[o + k * ch] += b[k];
#endif
      if (acc) {
        int32_t *a = acc + o;
        for (size_t k = 0; k < run; k++)
          a[k * ch] += b[k];
      } else if (ch == 1 && first) {
        memcpy (out + o, b, run * sizeof *b);
      } else if (first) {
        int16_t *d = out + o;
        for (size_t k = 0; k < run; k++)
          d[k * ch] = b[k];
      } else {
        int16_t *d = out + o;
        for (size_t k = 0; k < run; k++)
          d[k * ch] = add_sat (d[k * ch], b[k]);
      }
      memset (b, 0, run * sizeof *b);
      memset (c->filled.data () + i0, 0, run);
      p += (int64_t) run;
    }
  }
  if (acc) {
    for (size_t i = 0; i < total; i++)
      out[i] = saturate (acc[i]);
  }
#ifdef ZOOMRTMS_ALIGNER_SELFCHECK
  for (size_t i = 0; i < total; i++)
    if (out[i] != saturate (ref[i]))
      abort ();                 /* the direct sum differs from the reference */
#endif
  r.block.position = position;
  r.block.channels = ch;
  r.block.gap = gap_partial;
  r.block.discont = discont_;
  discont_ = false;
  next_ = end;
  emitted_blocks_++;
}

/* Emits blocks while a whole block fits before @limit (absolute). */
void
Aligner::emit_until (int64_t limit)
{
  bool first = emitted_blocks_ == 0;
  uint64_t before = emitted_blocks_;
  while (block_end () <= limit) {
    if (next_ == block_floor (next_) && !pending_at_next ()) {
      /* nothing pending from next_ on (a gap of every channel, up to a
       * packet that is not written yet): every whole block up to @limit
       * is a gap block, emitted as one run, so the cost of a gap does not
       * grow with its length */
      emit_steps_++;
      emit_gaps ((uint64_t) ((limit - next_) / block_));
      break;
    }
    emit_block ();
  }
  if (first && emitted_blocks_ > before)
    startup_blocks_ = emitted_blocks_ - before;
}

/* TRUE if some channel has received samples at or after next_ (not yet
 * emitted); emit_block() skips the others. */
bool
Aligner::pending_at_next () const
{
  for (auto &c : channels_)
    if (c->have_data && c->progress > next_ && !c->buf.empty ())
      return true;
  return false;
}

/* Clears @c's ring slots not emitted yet, [next_, progress): only those
 * can be set (emitted slots are cleared by emit_block()), so the cost is
 * the pending audio's, not the ring's (up to hold + max_startup_ms). */
void
Aligner::clear_pending (Channel &c)
{
  if (c.buf.empty ())
    return;
  const size_t mask = cap_ - 1;
  const int64_t stop = c.have_data ?
      std::min (c.progress, next_ + (int64_t) cap_) : next_;
  for (int64_t p = next_; p < stop;) {
    const size_t i0 = (size_t) ((uint64_t) p & mask);
    const size_t run = (size_t) std::min<int64_t> (stop - p,
        (int64_t) (cap_ - i0));
    memset (c.buf.data () + i0, 0, run * sizeof (int16_t));
    memset (c.filled.data () + i0, 0, run);
    ring_slots_cleared_ += run;
    p += (int64_t) run;
  }
#ifdef ZOOMRTMS_ALIGNER_SELFCHECK
  /* the whole ring is clean now (small rings always, large ones every 16th
   * time, with memchr: the check must not bring back the cost it checks,
   * not even in the instrumented fuzz build) */
  static thread_local unsigned calls;
  if (cap_ <= 65536 || (calls++ & 15) == 0)
    if (memchr (c.filled.data (), 1, cap_))
      abort ();                 /* a set slot outside [next_, progress) */
#endif
}

/* Folds each channel's gap accounting before a jump of the timeline. */
void
Aligner::fold_silence ()
{
  for (auto &c : channels_) {
    c->silence_base = c->stats.silence_samples =
        c->silence_base +
        (c->have_first
                ? (uint64_t) std::max<int64_t> (0,
                      std::min (c->progress, next_) - c->first_pos) -
                    std::min<uint64_t> (c->emitted_filled,
                      (uint64_t) std::max<int64_t> (0,
                          std::min (c->progress, next_) - c->first_pos))
                : 0);
    c->have_first = false;
    c->emitted_filled = 0;
  }
}

void
Aligner::resync (int64_t pos)
{
  int64_t maxp = max_progress ();
  bool first = emitted_blocks_ == 0;
  uint64_t before = emitted_blocks_;
  while (maxp != INT64_MIN && next_ < maxp)
    emit_block ();
  if (first && emitted_blocks_ > before)
    startup_blocks_ = emitted_blocks_ - before;
  fold_silence ();
  /* the channels stay active (waited for up to the hold): nothing pending
   * (the blocks above cleared every slot they emitted, so this clears
   * nothing: O(1), not O(the ring) per resync) */
  for (auto &c : channels_) {
    clear_pending (*c);
    c->progress = INT64_MIN;
    c->fill_to = INT64_MIN;
    c->hold_from = INT64_MAX;   /* a role hold holds its next packets */
  }
  int64_t target = block_floor (pos);
  if (target < next_) {
    /* backwards (a re-anchor): positions continue where they are */
    shift_ += next_ - target;
  }
  next_ = target;
  discont_ = true;
  resyncs_++;
}

/* Before the first block: drops everything pending and starts the timeline
 * at @pos (a re-anchor; the dropped packets count as out_of_range). */
void
Aligner::rebase_empty (int64_t pos)
{
  for (auto &c : channels_) {
    clear_pending (*c);
    if (c->have_data) {
      c->stats.out_of_range += c->stats.frames;
      c->stats.frames = 0;
    }
    c->have_data = false;
    c->have_first = false;
    c->emitted_filled = 0;
    c->progress = INT64_MIN;
    c->fill_to = INT64_MIN;
    c->hold_from = INT64_MAX;   /* a role hold holds from its next packet */
  }
  base_ = next_ = pos;
  discont_ = true;
}

PushResult
Aligner::push (const std::string &key, int64_t timestamp_ms,
    const uint8_t *pcm, size_t bytes, PushDetail *detail)
{
  PushDetail dummy;
  if (!detail)
    detail = &dummy;
  detail->dropped_samples = 0;
  if (bytes == 0 || bytes % 2 != 0 || !pcm ||
      bytes / 2 > (size_t) max_packet_) {
    detail->dropped_samples = (int64_t) (bytes / 2);
    return PushResult::INVALID;
  }
  const int64_t n = (int64_t) (bytes / 2);
  Channel &c = channel (key);

  /* far from the timeline: refused, never allocated (before anything
   * else, so a wild timestamp cannot touch the duplicate history) */
  bool reanchor = false;
  const int64_t jump = config_.max_jump_ms;
  if (timestamp_ms < 0 || timestamp_ms > kMaxTimestampMs ||
      (have_newest_ && (timestamp_ms > newest_ms_ + jump ||
              timestamp_ms < newest_ms_ - jump))) {
    bool valid = timestamp_ms >= 0 && timestamp_ms <= kMaxTimestampMs;
    if (valid && oor_run_ > 0 && timestamp_ms <= oor_first_ + jump &&
        timestamp_ms >= oor_first_ - jump)
      oor_run_++;
    else if (valid) {
      oor_run_ = 1;
      oor_first_ = timestamp_ms;
    } else {
      oor_run_ = 0;
    }
    /* positions never go back: a backward re-anchor adds to shift_; keep
     * it (and so every position) far from int64 overflow */
    int64_t back = have_base_ && valid ?
        next_ - timestamp_ms * config_.rate / 1000 : 0;
    bool shift_ok = back <= 0 || shift_ <= INT64_MAX / 4 - back;
    if (!valid || config_.reanchor_packets == 0 || !shift_ok ||
        oor_run_ < config_.reanchor_packets) {
      c.stats.out_of_range++;
      detail->dropped_samples = n;
      return PushResult::OUT_OF_RANGE;
    }
    reanchor = true;
  }
  oor_run_ = 0;

  /* duplicates and replays (docs/protocol.md §4.9) */
  if (!reanchor && (c.seen (timestamp_ms) ||
          (c.have_data && timestamp_ms <= c.last_ts &&
              c.hist_full () && timestamp_ms < c.hist_front ()))) {
    c.stats.duplicates++;
    return PushResult::DUPLICATE;
  }

  const int64_t pos = timestamp_ms * config_.rate / 1000;
  const int64_t end = pos + n;
  PushResult result = PushResult::ACCEPTED;
  if (reanchor) {
    for (auto &o : channels_) {
      o->hist_clear ();
      o->last_ts = INT64_MIN;
    }
    have_newest_ = false;       /* the new timeline's reference */
    if (emitted_blocks_ == 0 && !fixed_)
      rebase_empty (pos);
    else
      resync (pos);
    resyncs_ += emitted_blocks_ == 0 ? 1 : 0;
    result = PushResult::RESYNC;
  } else if (!have_base_) {
    have_base_ = true;
    base_ = next_ = pos;
  } else if (!fixed_ && emitted_blocks_ == 0 && pos < base_) {
    /* before the first block t0 moves back to the earliest timestamp, as
     * long as the span stays within the bound */
    int64_t maxp = std::max (max_progress (), next_);
    int64_t span = std::max (maxp, end) - pos;
    if (span <= span_limit () && ensure_capacity (span))
      base_ = next_ = pos;
  }

  /* a gap of every channel longer than max_gap_fill_ms jumps the timeline,
   * also before the first block (once some channel has data: a
   * continuation's fill from its start position is not a gap) */
  const int64_t progress = max_progress ();
  if (result == PushResult::ACCEPTED && max_gap_ > 0 &&
      (emitted_blocks_ > 0 || progress != INT64_MIN)) {
    int64_t ref = std::max (progress, next_);
    if (pos - ref > max_gap_) {
      resync (pos);
      result = PushResult::RESYNC;
    }
  } else if (result == PushResult::ACCEPTED && progress == INT64_MIN &&
      emitted_blocks_ == 0 && pos - next_ > (max_gap_ > 0 && !fixed_ ?
          max_gap_ : (int64_t) config_.max_jump_ms * config_.rate / 1000)) {
    /* the first audio, far after a t0 that no audio set: more than
     * max_gap_fill_ms (0: max_jump_ms) after the FIRST_PACKET_TIMESTAMP
     * event, or more than max_jump_ms after a continuation's start
     * position. That span is not filled (silence and work bounded). t0
     * from the event becomes this packet's (it may still move back); a
     * continuation's timeline jumps (its origin is fixed). Up to
     * max_jump_ms, a continuation's downtime is exact silence: the host
     * counts the samples in its files as timeline positions (README
     * "crash recovery"), so a restart must not jump there. */
    if (fixed_) {
      resync (pos);
      result = PushResult::RESYNC;
    } else {
      base_ = next_ = pos;
    }
  }

  if (fixed_ && end <= start_abs_) {
    /* before the start of a continuation: recorded by the previous
     * pipeline (a replay of the packet log, or Zoom's backlog) */
    c.stats.duplicates++;
    return PushResult::DUPLICATE;
  }
  if (end <= next_) {
    /* a channel heard from is waited for from now on, even if this packet
     * came too late (a late joiner's next packets) */
    c.announced = true;
    c.stats.late++;
    c.stats.late_samples += (uint64_t) n;
    detail->dropped_samples = n;
    return PushResult::LATE;
  }
  const int64_t start = std::max (pos, next_);

  /* room: blocks that this packet makes ready anyway (the most advanced
   * channel would be the hold past them) and that it does not touch are
   * emitted first, so a gap is never held in memory */
  int64_t maxp_after = std::max (max_progress (), end);
  if (!holding () && (emitted_blocks_ > 0 || maxp_after - hold_ >= next_ +
          block_))
    emit_until (std::min ({ block_floor (start), maxp_after - hold_,
                role_hold_from () }));
  if (!ensure_capacity (end - next_)) {
    if (holding () || roles_pending_ > 0) {
      /* the start-up hold or the role hold would grow past its bound: it
       * ends here */
      if (holding ()) {
        hold_released_ = true;
        hold_overflowed_ = true;
      } else {
        role_hold_overflows_++;
      }
      release_roles ();
      emit_until (std::min (block_floor (start), maxp_after - hold_));
    }
    if (!ensure_capacity (end - next_)) {
      /* cannot happen with the bounds above; refuse rather than grow */
      c.stats.out_of_range++;
      detail->dropped_samples = n;
      return PushResult::OUT_OF_RANGE;
    }
  }
  if (c.buf.size () != cap_) {
    c.buf.assign (cap_, 0);
    c.filled.assign (cap_, 0);
    c.fill_to = INT64_MIN;
  }
  const size_t mask = cap_ - 1;
  const int64_t wstart = std::max (pos, next_);   /* may have moved */
  /* the part before a continuation's start is a duplicate, not late */
  const int64_t before_start = fixed_ ?
      std::max<int64_t> (0, std::min (wstart, start_abs_) - pos) : 0;
  detail->dropped_samples = wstart - pos - before_start;
  c.stats.late_samples += (uint64_t) (wstart - pos - before_start);
  /* in runs up to the ring's wrap; a run where no sample is kept yet (a
   * packet heard once: nearly all of them) is copied whole */
  for (int64_t p = wstart; p < end;) {
    const size_t i0 = (size_t) ((uint64_t) p & mask);
    const size_t run = (size_t) std::min<int64_t> (end - p,
        (int64_t) (cap_ - i0));
    const uint8_t *src = pcm + (size_t) (p - pos) * 2;
    uint8_t *filled = c.filled.data () + i0;
    if (!memchr (filled, 1, run)) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
      memcpy (c.buf.data () + i0, src, run * 2);
#else
      for (size_t k = 0; k < run; k++)
        c.buf[i0 + k] = (int16_t) (uint16_t) (src[2 * k] |
            (src[2 * k + 1] << 8));
#endif
      memset (filled, 1, run);
    } else {
      for (size_t k = 0; k < run; k++) {
        if (filled[k])
          continue;             /* the first writer keeps a sample */
        c.buf[i0 + k] = (int16_t) (uint16_t) (src[2 * k] |
            (src[2 * k + 1] << 8));
        filled[k] = 1;
      }
    }
    p += (int64_t) run;
  }
  /* every slot of [wstart, end) is filled now: the watermark runs on when
   * it reached wstart (packets in order), in O(1) */
  if (c.fill_from > next_ || c.fill_to < next_)
    c.fill_from = c.fill_to = next_;
  if (c.fill_to >= wstart)
    c.fill_to = std::max (c.fill_to, end);
  c.stats.frames++;
  if (!c.appeared && c.mode.empty () &&
      config_.hold_for_modes && config_.layout == Layout::STEREO && !drained_ &&
      (emitted_blocks_ > 0 || hold_released_)) {
    /* a channel appearing after the start-up without a mode: the role
     * hold (the start-up hold covers the ones before) */
    c.role_wait = true;
    roles_pending_++;
  }
  if (c.role_wait)
    c.hold_from = std::min (c.hold_from, wstart);
  c.appeared = true;
  c.have_data = true;
  c.last_ts = std::max (c.last_ts, timestamp_ms);
  c.remember (timestamp_ms);
  c.progress = std::max (c.progress, end);
  if (!c.have_first) {
    c.have_first = true;
    c.first_pos = wstart;
  } else if (wstart < c.first_pos) {
    c.first_pos = wstart;
  }
  if (!have_newest_ || timestamp_ms > newest_ms_)
    newest_ms_ = timestamp_ms;
  have_newest_ = true;

  emit_ready ();
  return result;
}

void
Aligner::drain ()
{
  hold_released_ = true;
  drained_ = true;
  release_roles ();
  int64_t maxp = max_progress ();
  if (maxp == INT64_MIN)
    return;
  if (config_.block_ms <= config_.packet_ms) {
    /* whole blocks up to the furthest sample, the last one padded */
    emit_until (block_floor (maxp - 1) + block_);
    return;
  }
  /* blocks longer than a packet: the whole ones, then a last one up to the
   * packet grid (padded as with one-packet blocks, not to a whole block) */
  emit_until (block_floor (maxp));
  const int64_t pkt = std::max<int64_t> (1,
      (int64_t) config_.rate * config_.packet_ms / 1000);
  int64_t rel = maxp - base_;
  int64_t end = base_ + (rel >= 0 ? (rel + pkt - 1) / pkt : -(-rel / pkt)) * pkt;
  if (end > next_) {
    bool first = emitted_blocks_ == 0;
    emit_block (end);
    if (first)
      startup_blocks_ = emitted_blocks_;
  }
}

bool
Aligner::pop (AlignedBlock *out)
{
  if (ready_count_ == 0)
    return false;
  Ready &r = ready_front ();
  if (r.run > 0) {
    /* one block of a silence run, in @out's own storage */
    out->samples.assign ((size_t) block_ * r.block.channels, 0);
    out->position = r.block.position;
    out->channels = r.block.channels;
    out->gap = true;
    out->discont = r.block.discont;
    r.block.discont = false;
    r.block.position += block_;
    if (--r.run == 0)
      ready_pop ();
    return true;
  }
  /* the block's storage goes to @out, @out's old storage to the spares
   * (at most kSpareBlocks kept: a burst after a stall does not stay
   * allocated) */
  out->samples.swap (r.block.samples);
  if (r.block.samples.capacity () > 0 && spare_.size () < kSpareBlocks) {
    spare_.push_back (std::vector<int16_t> ());
    spare_.back ().swap (r.block.samples);
  } else {
    std::vector<int16_t> ().swap (r.block.samples);
  }
  out->position = r.block.position;
  out->channels = r.block.channels;
  out->gap = r.block.gap;
  out->discont = r.block.discont;
  ready_pop ();
  return true;
}

Aligner::Ready &
Aligner::ready_push ()
{
  if (ready_count_ == ready_.size ()) {
    /* grow: unroll the ring into a twice larger one (rare; bounded by the
     * blocks one push or drain can make ready) */
    std::vector<Ready> n (ready_.empty () ? 8 : ready_.size () * 2);
    for (size_t i = 0; i < ready_count_; i++)
      n[i] = std::move (ready_[(ready_head_ + i) & (ready_.size () - 1)]);
    for (size_t i = ready_count_; i < ready_.size (); i++)
      n[i] = std::move (ready_[(ready_head_ + i) & (ready_.size () - 1)]);
    ready_.swap (n);
    ready_head_ = 0;
  }
  Ready &r = ready_[(ready_head_ + ready_count_) & (ready_.size () - 1)];
  ready_count_++;
  r.run = 0;
  r.block.gap = false;
  r.block.discont = false;
  return r;
}

void
Aligner::ready_pop ()
{
  ready_head_ = (ready_head_ + 1) & (ready_.size () - 1);
  ready_count_--;
}

std::vector<ChannelStats> Aligner::stats () const
{
  std::vector<ChannelStats> v;
  for (auto &c : channels_) {
    ChannelStats s = c->stats;
    s.participant_mode = c->mode;
    s.silence_samples = c->silence_base;
    if (c->have_first) {
      int64_t span = std::min (c->progress, next_) - c->first_pos;
      if (span > 0 && (uint64_t) span > c->emitted_filled)
        s.silence_samples += (uint64_t) span - c->emitted_filled;
    }
    v.push_back (s);
  }
  return v;
}

} // namespace zoomrtms
