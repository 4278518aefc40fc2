/* zoomrtms — the timers of the RTMS clients and WebSockets of one
 * GMainContext on one GSource (issue 12, docs/benchmarks.md "Client
 * per-message path").
 *
 * GLib visits every source attached to a context on every wake-up of its
 * thread (ref, prepare, check, unref): a g_timeout_source per timer makes
 * each wake-up of a shared I/O thread cost O(timers), and a streaming
 * rtms::Client used to keep one (its idle watchdog) for its whole life, so
 * 100 engagements on a thread meant 100 sources walked per wake-up for
 * nothing. A TimerQueue keeps the timers of a context in a binary min-heap
 * (deadline, then arming order) and attaches one GSource whose ready time
 * is the earliest deadline: a wake-up costs O(1) in the number of timers,
 * arming or stopping one O(log n), with no allocation once the heap has
 * grown (the Timer is the caller's).
 *
 * Semantics are those of a one-shot g_timeout_source_new (@ms) at
 * G_PRIORITY_DEFAULT: the callback runs on the context's thread no sooner
 * than @ms ms after start() (µs deadline on the monotonic clock; GLib
 * rounds the poll timeout up to whole ms), in deadline order, timers of one
 * deadline in the order they were armed. A periodic timer re-arms itself
 * from its callback, as a GLib timeout returning G_SOURCE_CONTINUE re-arms
 * from its dispatch time. A callback may start or stop any timer (itself
 * included) and destroy the object holding it; a timer armed from a
 * callback with a deadline already passed runs on the next dispatch, never
 * in the same one (no endless loop with @ms 0).
 *
 * Threading: one queue per GMainContext (for_context()); Timer::start(),
 * Timer::stop() and the destructors on that context's thread only. */
#pragma once

#include <glib.h>

#include <memory>
#include <vector>

namespace rtms {

class TimerQueue;

/* One timer: owned by its user (a member), armed on a TimerQueue. Not
 * copyable; destroying it stops it. */
class Timer
{
public:
  using Fn = void (*) (gpointer data);

  Timer () = default;
  ~Timer () { stop (); }
  Timer (const Timer &) = delete;
  Timer &operator= (const Timer &) = delete;

  /* Arms the timer (re-arms it if armed): @fn (@data) runs once on @queue's
   * context, @ms ms from now. @queue must outlive the armed timer. */
  void start (TimerQueue *queue, guint ms, Fn fn, gpointer data);
  /* Disarms it: @fn is not called (a no-op if not armed). */
  void stop ();
  bool armed () const { return index_ != kNone; }
  /* The deadline, µs on g_get_monotonic_time()'s clock (armed only). */
  gint64 due_us () const { return due_us_; }

private:
  friend class TimerQueue;
  static constexpr gsize kNone = G_MAXSIZE;
  TimerQueue *queue_ = nullptr;
  gsize index_ = kNone;          /* position in queue_->heap_ */
  gint64 due_us_ = 0;
  guint64 seq_ = 0;              /* arming order: ties, and no re-run */
  Fn fn_ = nullptr;
  gpointer data_ = nullptr;
};

class TimerQueue
{
public:
  /* The queue of @ctx, created (and its GSource attached) on first use,
   * destroyed with its last user. Call on @ctx's thread. */
  static std::shared_ptr<TimerQueue> for_context (GMainContext *ctx);

  explicit TimerQueue (GMainContext *ctx);
  ~TimerQueue ();
  TimerQueue (const TimerQueue &) = delete;
  TimerQueue &operator= (const TimerQueue &) = delete;

  /* Timers armed now. */
  gsize size () const { return heap_.size (); }

private:
  friend class Timer;
  struct Src;
  static gboolean dispatch (GSource *source, GSourceFunc, gpointer);

  void insert (Timer *t);
  void erase (Timer *t);
  bool before (const Timer *a, const Timer *b) const
  {
    return a->due_us_ < b->due_us_ ||
        (a->due_us_ == b->due_us_ && a->seq_ < b->seq_);
  }
  void place (Timer *t, gsize i);
  void sift_up (gsize i);
  void sift_down (gsize i);
  void update_ready_time ();

  GMainContext *ctx_ = nullptr;
  GSource *source_ = nullptr;
  std::vector<Timer *> heap_;
  guint64 next_seq_ = 1;
  gint64 ready_us_ = -1;          /* the source's ready time as last set */
  bool dispatching_ = false;
  std::weak_ptr<TimerQueue> self_; /* kept alive through its dispatch */
};

} // namespace rtms
