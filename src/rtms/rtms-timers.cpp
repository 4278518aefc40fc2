/* zoomrtms — one GSource for the timers of a GMainContext (rtms-timers.h). */
#include "rtms-timers.h"

#include <map>
#include <mutex>

namespace rtms {

struct TimerQueue::Src {
  GSource base;
  TimerQueue *queue;
};

/* ---- Timer ---- */

void
Timer::start (TimerQueue *queue, guint ms, Fn fn, gpointer data)
{
  g_return_if_fail (queue != nullptr && fn != nullptr);
  stop ();
  queue_ = queue;
  fn_ = fn;
  data_ = data;
  due_us_ = g_get_monotonic_time () + (gint64) ms * 1000;
  seq_ = queue->next_seq_++;
  queue->insert (this);
}

void
Timer::stop ()
{
  if (armed ())
    queue_->erase (this);
}

/* ---- TimerQueue ---- */

std::shared_ptr<TimerQueue>
TimerQueue::for_context (GMainContext *ctx)
{
  /* as poller_for () in rtms-client.cpp: the queue holds a ref on its
   * context, so a live entry's key is a live context */
  static std::mutex lock;
  static auto *queues =
      new std::map<GMainContext *, std::weak_ptr<TimerQueue>> ();
  std::lock_guard<std::mutex> lk (lock);
  auto &w = (*queues)[ctx];
  auto q = w.lock ();
  if (!q) {
    q = std::make_shared<TimerQueue> (ctx);
    q->self_ = q;
    w = q;
    for (auto it = queues->begin (); it != queues->end ();)
      it = it->second.expired () ? queues->erase (it) : std::next (it);
  }
  return q;
}

TimerQueue::TimerQueue (GMainContext *ctx) : ctx_ (g_main_context_ref (ctx))
{
  static GSourceFuncs funcs = { nullptr, nullptr, dispatch, nullptr, nullptr,
                                nullptr };
  source_ = g_source_new (&funcs, sizeof (Src));
  reinterpret_cast<Src *> (source_)->queue = this;
  g_source_set_name (source_, "rtms-timers");
  g_source_set_priority (source_, G_PRIORITY_DEFAULT);
  g_source_attach (source_, ctx_);
}

TimerQueue::~TimerQueue ()
{
  /* users stop their timers first (they hold the queue) */
  for (Timer *t : heap_)
    t->index_ = Timer::kNone;
  g_source_destroy (source_);
  g_source_unref (source_);
  g_main_context_unref (ctx_);
}

void
TimerQueue::place (Timer *t, gsize i)
{
  heap_[i] = t;
  t->index_ = i;
}

void
TimerQueue::sift_up (gsize i)
{
  Timer *t = heap_[i];
  while (i > 0) {
    gsize parent = (i - 1) / 2;
    if (!before (t, heap_[parent]))
      break;
    place (heap_[parent], i);
    i = parent;
  }
  place (t, i);
}

void
TimerQueue::sift_down (gsize i)
{
  Timer *t = heap_[i];
  const gsize n = heap_.size ();
  for (;;) {
    gsize c = 2 * i + 1;
    if (c >= n)
      break;
    if (c + 1 < n && before (heap_[c + 1], heap_[c]))
      c++;
    if (!before (heap_[c], t))
      break;
    place (heap_[c], i);
    i = c;
  }
  place (t, i);
}

void
TimerQueue::insert (Timer *t)
{
  heap_.push_back (t);
  sift_up (heap_.size () - 1);
  if (!dispatching_ && heap_[0] == t)
    update_ready_time ();
}

void
TimerQueue::erase (Timer *t)
{
  gsize i = t->index_;
  t->index_ = Timer::kNone;
  Timer *last = heap_.back ();
  heap_.pop_back ();
  if (last != t) {
    place (last, i);
    if (i > 0 && before (last, heap_[(i - 1) / 2]))
      sift_up (i);
    else
      sift_down (i);
  }
  /* a deadline later than the source's ready time only costs one empty
   * dispatch: the ready time is left as it is unless the heap is empty */
  if (!dispatching_ && heap_.empty ())
    update_ready_time ();
}

void
TimerQueue::update_ready_time ()
{
  gint64 want = heap_.empty () ? -1 : heap_[0]->due_us_;
  if (want != ready_us_) {
    ready_us_ = want;
    g_source_set_ready_time (source_, want);
  }
}

gboolean
TimerQueue::dispatch (GSource *source, GSourceFunc, gpointer)
{
  TimerQueue *self = reinterpret_cast<Src *> (source)->queue;
  if (self->dispatching_)
    return G_SOURCE_CONTINUE;   /* a callback iterating the context */
  /* a callback may drop the last user of the queue: destroyed after this */
  std::shared_ptr<TimerQueue> keep = self->self_.lock ();
  if (!keep)
    return G_SOURCE_CONTINUE;
  self->dispatching_ = true;
  const gint64 now = g_get_monotonic_time ();
  const guint64 armed_before = self->next_seq_;
  while (!self->heap_.empty ()) {
    Timer *t = self->heap_[0];
    if (t->due_us_ > now || t->seq_ >= armed_before)
      break;
    self->erase (t);
    /* the timer is disarmed before its callback: the callback may re-arm
     * it, or destroy it and its owner */
    t->fn_ (t->data_);
  }
  self->dispatching_ = false;
  /* the source's ready time stays set when it has passed: force the
   * update (GLib dispatches again while ready_time <= now) */
  self->ready_us_ = -2;
  self->update_ready_time ();
  return G_SOURCE_CONTINUE;
}

} // namespace rtms
