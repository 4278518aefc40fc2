/* rtms::TimerQueue (src/rtms/rtms-timers.h): the timers of a context on one
 * GSource, with the semantics of one-shot g_timeout_sources: never early,
 * deadline order then arming order, re-armed or stopped or destroyed from
 * a callback, a 0 ms re-arm runs on the next dispatch only, and the number
 * of sources of the context does not grow with the number of timers. */
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rtms-timers.h"
#include "count-sources.h"

using rtms::Timer;
using rtms::TimerQueue;

namespace {


struct Ctx {
  GMainContext *ctx = g_main_context_new ();
  Ctx () { g_main_context_push_thread_default (ctx); }
  ~Ctx ()
  {
    g_main_context_pop_thread_default (ctx);
    g_main_context_unref (ctx);
  }
  /* iterates until @done or @timeout_ms */
  void
  run_until (const std::function<bool ()> &done, int timeout_ms = 10000)
  {
    gint64 end = g_get_monotonic_time () + timeout_ms * 1000;
    while (!done () && g_get_monotonic_time () < end)
      g_main_context_iteration (ctx, TRUE);
  }
};

/* A timer with a std::function callback, for tests. */
struct Probe {
  Timer timer;
  std::function<void ()> fn;
  static void
  fire (gpointer data)
  {
    static_cast<Probe *> (data)->fn ();
  }
  void
  start (TimerQueue *q, guint ms)
  {
    timer.start (q, ms, fire, this);
  }
};

} // namespace

TEST (TimerQueue, OneQueueAndOneSourcePerContext)
{
  Ctx c;
  guint before = count_sources (c.ctx);
  auto q = TimerQueue::for_context (c.ctx);
  EXPECT_EQ (TimerQueue::for_context (c.ctx), q);
  std::vector<std::unique_ptr<Probe>> probes;
  for (int i = 0; i < 100; i++) {
    probes.push_back (std::make_unique<Probe> ());
    probes.back ()->fn = [] {};
    probes.back ()->start (q.get (), 60000 + i);
  }
  EXPECT_EQ (q->size (), 100u);
  EXPECT_EQ (count_sources (c.ctx), before + 1);
  probes.clear ();
  EXPECT_EQ (q->size (), 0u);
  std::weak_ptr<TimerQueue> w = q;
  q.reset ();
  EXPECT_TRUE (w.expired ());
  EXPECT_EQ (count_sources (c.ctx), before);
}

TEST (TimerQueue, FiresInDeadlineThenArmingOrderAndNeverEarly)
{
  Ctx c;
  auto q = TimerQueue::for_context (c.ctx);
  std::string order;
  Probe a, b, d, e;
  gint64 t0 = g_get_monotonic_time ();
  gint64 a_at = 0, b_at = 0;
  a.fn = [&] { order += 'a'; a_at = g_get_monotonic_time (); };
  b.fn = [&] { order += 'b'; b_at = g_get_monotonic_time (); };
  d.fn = [&] { order += 'd'; };
  e.fn = [&] { order += 'e'; };
  b.start (q.get (), 600);      /* far enough: a stays first on a loaded machine */
  a.start (q.get (), 30);
  d.start (q.get (), 30);       /* same ms as a, armed later: after a */
  e.start (q.get (), 45);
  e.timer.stop ();              /* stopped: never runs */
  c.run_until ([&] { return order.size () >= 3; });
  EXPECT_EQ (order, "adb");
  EXPECT_GE (a_at - t0, 30000);
  EXPECT_GE (b_at - t0, 600000);
  EXPECT_FALSE (a.timer.armed ());
  /* the stopped one stays silent */
  Probe late;
  bool late_ran = false;
  late.fn = [&] { late_ran = true; };
  late.start (q.get (), 80);
  c.run_until ([&] { return late_ran; });
  EXPECT_EQ (order, "adb");
}

TEST (TimerQueue, CallbacksReArmStopAndDestroy)
{
  Ctx c;
  auto q = TimerQueue::for_context (c.ctx);
  /* periodic: re-armed from its own callback */
  Probe tick;
  int ticks = 0;
  tick.fn = [&] {
    if (++ticks < 5)
      tick.start (q.get (), 10);
  };
  /* one callback stops another due at the same time, and destroys a
   * third (its owner goes away) */
  auto victim = std::make_unique<Probe> ();
  Probe stopped, killer;
  bool victim_ran = false, stopped_ran = false;
  victim->fn = [&] { victim_ran = true; };
  stopped.fn = [&] { stopped_ran = true; };
  killer.fn = [&] {
    stopped.timer.stop ();
    victim.reset ();
  };
  killer.start (q.get (), 20);
  stopped.start (q.get (), 20);
  victim->start (q.get (), 20);
  tick.start (q.get (), 10);
  c.run_until ([&] { return ticks >= 5; });
  EXPECT_EQ (ticks, 5);
  /* let anything wrongly left run */
  Probe after;
  bool done = false;
  after.fn = [&] { done = true; };
  after.start (q.get (), 50);
  c.run_until ([&] { return done; });
  EXPECT_FALSE (victim_ran);
  EXPECT_FALSE (stopped_ran);
  EXPECT_EQ (q->size (), 0u);
}

TEST (TimerQueue, ZeroMsReArmRunsOnTheNextDispatchOnly)
{
  Ctx c;
  auto q = TimerQueue::for_context (c.ctx);
  Probe p;
  int runs = 0;
  p.fn = [&] {
    runs++;
    p.start (q.get (), 0);
  };
  p.start (q.get (), 0);
  c.run_until ([&] { return runs > 0; });
  /* one iteration (non-blocking: the timer is due) runs it once more at
   * most, never in a loop */
  int before = runs;
  g_main_context_iteration (c.ctx, FALSE);
  EXPECT_LE (runs - before, 1);
  p.timer.stop ();
}

TEST (TimerQueue, LastUserDroppedInACallback)
{
  Ctx c;
  auto q = TimerQueue::for_context (c.ctx);
  std::weak_ptr<TimerQueue> w = q;
  auto p = std::make_unique<Probe> ();
  bool ran = false;
  p->fn = [&] {
    ran = true;
    /* p.reset () destroys this lambda: nothing it captured is read after */
    std::shared_ptr<TimerQueue> &queue = q;
    p.reset ();                 /* ~Timer: already disarmed */
    queue.reset ();             /* the queue's last user */
  };
  p->start (q.get (), 5);
  c.run_until ([&] { return ran; });
  EXPECT_TRUE (ran);
  EXPECT_TRUE (w.expired ());
  /* the context goes on without the source */
  g_main_context_iteration (c.ctx, FALSE);
}
