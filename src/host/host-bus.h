/* zoomrtms-host — the bus messages of every pipeline through ONE main-loop
 * source (issue 12: 1,000 concurrent engagements).
 *
 * A gst_bus_add_watch() per pipeline is a GSource and a poll fd per
 * engagement: every main-loop iteration prepares, polls and checks all of
 * them (O(engagements)), and each iteration dispatches one message per
 * bus. At 1,000 engagements that made every webhook wait behind ~1,000
 * sources (docs/benchmarks.md "Starting 1,000 engagements"). BusWatch keeps
 * the meaning of a bus watch on the main context with a cost per message,
 * not per engagement: a sync handler (gstreamer-guide.md: called on the
 * posting thread) moves each message into the watch's queue and marks the
 * watch ready; one GSource on the main context, woken with
 * g_main_context_wakeup(), hands the queued messages of every ready watch
 * to their handlers, in the order each bus got them.
 */
#pragma once

#include <gst/gst.h>

#include <functional>
#include <memory>

namespace zhost {

class BusWatch {
 public:
  /* Returns: whether to go on (a bus watch's G_SOURCE_CONTINUE); false
   * stops the dispatch of this bus (G_SOURCE_REMOVE): later messages stay
   * queued for pop(). Runs on the main context. */
  using Handler = std::function<bool (GstMessage *msg)>;

  /** BusWatch:
   * Sets the sync handler of @bus (a pipeline's bus, which must have none)
   * and dispatches its messages to @handler on the thread-default main
   * context of the calling thread (the host's main context). One GSource
   * serves every BusWatch of that context.
   */
  BusWatch (GstBus *bus, Handler handler);
  /* Unsets the sync handler; queued messages are dropped. No call of the
   * handler after this. */
  ~BusWatch ();
  BusWatch (const BusWatch &) = delete;
  BusWatch &operator= (const BusWatch &) = delete;

  /** pop:
   * Returns: (transfer full) the oldest queued message of @types, dropping
   * the queued messages of other types before it (as
   * gst_bus_pop_filtered()), or NULL. Main context.
   */
  GstMessage *pop (GstMessageType types);

  struct Reg;
  struct Dispatcher;

 private:
  GstBus *bus_;
  std::shared_ptr<Reg> reg_;
};

} // namespace zhost
