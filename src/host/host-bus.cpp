/* zoomrtms-host — one main-loop source for every pipeline's bus. See
 * host-bus.h. */
#include "host-bus.h"

#include <atomic>
#include <deque>
#include <mutex>
#include <vector>

namespace zhost {

struct BusWatch::Reg {
  Dispatcher *d = nullptr;
  Handler handler;
  std::deque<GstMessage *> queue;   /* under d->lock */
  bool ready = false;               /* in d->ready (under d->lock) */
  bool dispatching = true;          /* the handler has not said stop */
  bool closed = false;              /* the BusWatch is gone */
};

struct BusWatch::Dispatcher {
  GSource source;                   /* first: the GSource allocation */
  GMainContext *ctx;
  std::mutex lock;
  std::vector<std::shared_ptr<Reg>> ready;
  std::atomic<bool> has_ready {false};

  static Dispatcher *get ();
  void mark_ready (const std::shared_ptr<Reg> &r, bool *wake);
  void dispatch ();
};

/* Messages a dispatch hands to one watch before the next watch's turn. */
static const int kBatch = 64;

static gboolean
source_prepare (GSource *s, gint *timeout)
{
  *timeout = -1;
  return reinterpret_cast<BusWatch::Dispatcher *> (s)->has_ready.load ();
}

static gboolean
source_check (GSource *s)
{
  return reinterpret_cast<BusWatch::Dispatcher *> (s)->has_ready.load ();
}

static gboolean
source_dispatch (GSource *s, GSourceFunc, gpointer)
{
  reinterpret_cast<BusWatch::Dispatcher *> (s)->dispatch ();
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs source_funcs = {
  source_prepare, source_check, source_dispatch, nullptr, nullptr, nullptr,
};

BusWatch::Dispatcher *
BusWatch::Dispatcher::get ()
{
  /* one per main context that owns watches (the host has one) */
  static std::mutex m;
  static std::vector<Dispatcher *> all;
  g_autoptr (GMainContext) ctx = g_main_context_ref_thread_default ();
  std::lock_guard<std::mutex> lk (m);
  for (Dispatcher *d : all)
    if (d->ctx == ctx)
      return d;
  GSource *s = g_source_new (&source_funcs, sizeof (Dispatcher));
  /* the C++ members after the GSource header */
  auto *d = reinterpret_cast<Dispatcher *> (s);
  new (&d->lock) std::mutex ();
  new (&d->ready) std::vector<std::shared_ptr<Reg>> ();
  new (&d->has_ready) std::atomic<bool> (false);
  d->ctx = g_main_context_ref (ctx);
  g_source_set_priority (s, G_PRIORITY_DEFAULT);
  g_source_set_name (s, "zoomrtms-host bus messages");
  g_source_attach (s, ctx);
  /* lives as long as the process: never unreffed */
  all.push_back (d);
  return d;
}

void
BusWatch::Dispatcher::mark_ready (const std::shared_ptr<Reg> &r, bool *wake)
{
  if (r->ready || !r->dispatching || r->closed || r->queue.empty ())
    return;
  r->ready = true;
  ready.push_back (r);
  if (!has_ready.exchange (true))
    *wake = true;
}

void
BusWatch::Dispatcher::dispatch ()
{
  std::vector<std::shared_ptr<Reg>> now;
  {
    std::lock_guard<std::mutex> lk (lock);
    now.swap (ready);
    has_ready = false;
    for (auto &r : now)
      r->ready = false;
  }
  for (auto &r : now) {
    for (int n = 0; n < kBatch; n++) {
      GstMessage *msg;
      {
        std::lock_guard<std::mutex> lk (lock);
        if (r->closed || !r->dispatching || r->queue.empty ())
          break;
        msg = r->queue.front ();
        r->queue.pop_front ();
      }
      /* the handler may destroy the BusWatch (r stays valid: shared) */
      bool go_on = r->handler (msg);
      gst_message_unref (msg);
      if (!go_on) {
        std::lock_guard<std::mutex> lk (lock);
        r->dispatching = false;
        break;
      }
    }
    /* more than a batch: its turn again next time */
    bool wake = false;
    std::lock_guard<std::mutex> lk (lock);
    mark_ready (r, &wake);
  }
}

static GstBusSyncReply
sync_handler (GstBus *, GstMessage *msg, gpointer data)
{
  /* the posting thread (a streaming thread, an I/O thread, the main
   * thread): queue and wake the main context, nothing else */
  const auto &r = *static_cast<std::shared_ptr<BusWatch::Reg> *> (data);
  BusWatch::Dispatcher *d = r->d;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lk (d->lock);
    if (r->closed)
      return GST_BUS_PASS;
    /* GST_BUS_DROP: the message is ours to unref (GstBusSyncHandler) */
    r->queue.push_back (msg);
    d->mark_ready (r, &wake);
  }
  if (wake)
    g_main_context_wakeup (d->ctx);
  return GST_BUS_DROP;
}

BusWatch::BusWatch (GstBus *bus, Handler handler)
    : bus_ (GST_BUS (gst_object_ref (bus))), reg_ (std::make_shared<Reg> ())
{
  reg_->d = Dispatcher::get ();
  reg_->handler = std::move (handler);
  gst_bus_set_sync_handler (bus_, sync_handler,
      new std::shared_ptr<Reg> (reg_), [] (gpointer p) {
        delete static_cast<std::shared_ptr<Reg> *> (p);
      });
}

BusWatch::~BusWatch ()
{
  std::deque<GstMessage *> left;
  {
    std::lock_guard<std::mutex> lk (reg_->d->lock);
    reg_->closed = true;
    left.swap (reg_->queue);
  }
  gst_bus_set_sync_handler (bus_, nullptr, nullptr, nullptr);
  for (GstMessage *m : left)
    gst_message_unref (m);
  gst_object_unref (bus_);
}

GstMessage *
BusWatch::pop (GstMessageType types)
{
  std::lock_guard<std::mutex> lk (reg_->d->lock);
  while (!reg_->queue.empty ()) {
    GstMessage *m = reg_->queue.front ();
    reg_->queue.pop_front ();
    if (GST_MESSAGE_TYPE (m) & types)
      return m;
    gst_message_unref (m);
  }
  return nullptr;
}

} // namespace zhost
