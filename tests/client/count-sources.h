/* Test helper shared by the client tests. */
#pragma once

#include <glib.h>

/* The number of GSources attached to @ctx (the probe left out): ids of one
 * context are handed out in order from 1, so every id below a new source's
 * is looked up. */
static inline guint
count_sources (GMainContext *ctx)
{
  GSource *probe = g_idle_source_new ();
  guint last = g_source_attach (probe, ctx);
  guint n = 0;
  for (guint id = 1; id < last; id++)
    if (g_main_context_find_source_by_id (ctx, id))
      n++;
  g_source_destroy (probe);
  g_source_unref (probe);
  return n;
}
