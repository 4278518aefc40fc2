/* zoomrtms — element registrations of the zoomrtms plugin. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

GST_ELEMENT_REGISTER_DECLARE (zoomrtmssrc);
GST_ELEMENT_REGISTER_DECLARE (zoomrtmsdemux);

G_END_DECLS
