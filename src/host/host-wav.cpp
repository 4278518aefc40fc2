/* zoomrtms-host — WAV repair. See host-wav.h. */
#include "host-wav.h"

#include "host-common.h"

#include <glib/gstdio.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace zhost {

namespace {
struct FileCloser {
  void operator() (FILE *f) const { if (f) fclose (f); }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

guint32
rd32 (const guint8 *p)
{
  return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<guint32> (p[3]) << 24);
}

void
wr32 (guint8 *p, guint32 v)
{
  p[0] = v & 0xff;
  p[1] = (v >> 8) & 0xff;
  p[2] = (v >> 16) & 0xff;
  p[3] = (v >> 24) & 0xff;
}
} // namespace

bool
wav_repair (const char *path, gboolean *changed, GError **error)
{
  if (changed)
    *changed = FALSE;
  FilePtr f (g_fopen (path, "r+b"));
  if (!f) {
    int e = errno;
    g_set_error (error, ZHOST_ERROR, ERROR_WAV, "%s: %s", path, g_strerror (e));
    return false;
  }
  if (fseeko (f.get (), 0, SEEK_END) != 0) {
    g_set_error (error, ZHOST_ERROR, ERROR_WAV, "%s: cannot seek", path);
    return false;
  }
  guint64 size = static_cast<guint64> (ftello (f.get ()));
  guint8 hdr[12];
  rewind (f.get ());
  if (size < 12 || fread (hdr, 1, 12, f.get ()) != 12 ||
      memcmp (hdr, "RIFF", 4) != 0 || memcmp (hdr + 8, "WAVE", 4) != 0) {
    g_set_error (error, ZHOST_ERROR, ERROR_WAV, "%s: not a RIFF/WAVE file", path);
    return false;
  }
  guint64 pos = 12;
  guint32 block_align = 1;
  bool have_fmt = false;
  while (pos + 8 <= size) {
    guint8 ch[8];
    if (fseeko (f.get (), static_cast<off_t> (pos), SEEK_SET) != 0 ||
        fread (ch, 1, 8, f.get ()) != 8)
      break;
    guint32 csize = rd32 (ch + 4);
    if (memcmp (ch, "fmt ", 4) == 0) {
      guint8 fmt[16];
      if (csize < 16 || fread (fmt, 1, 16, f.get ()) != 16) {
        g_set_error (error, ZHOST_ERROR, ERROR_WAV, "%s: short fmt chunk", path);
        return false;
      }
      block_align = fmt[12] | (fmt[13] << 8);
      if (block_align == 0)
        block_align = 1;
      have_fmt = true;
    } else if (memcmp (ch, "data", 4) == 0) {
      if (!have_fmt) {
        g_set_error (error, ZHOST_ERROR, ERROR_WAV,
            "%s: data chunk before fmt chunk", path);
        return false;
      }
      guint64 data_off = pos + 8;
      guint64 avail = size - data_off;
      avail -= avail % block_align;
      if (avail > 0xffffffffull - 36)
        avail = (0xffffffffull - 36) - ((0xffffffffull - 36) % block_align);
      guint32 want_data = static_cast<guint32> (avail);
      guint32 want_riff = static_cast<guint32> (data_off + avail - 8);
      if (csize == want_data && rd32 (hdr + 4) == want_riff)
        return true;
      guint8 b[4];
      wr32 (b, want_data);
      if (fseeko (f.get (), static_cast<off_t> (pos + 4), SEEK_SET) != 0 ||
          fwrite (b, 1, 4, f.get ()) != 4) {
        g_set_error (error, ZHOST_ERROR, ERROR_WAV, "%s: write failed", path);
        return false;
      }
      wr32 (b, want_riff);
      if (fseeko (f.get (), 4, SEEK_SET) != 0 || fwrite (b, 1, 4, f.get ()) != 4 ||
          fflush (f.get ()) != 0) {
        g_set_error (error, ZHOST_ERROR, ERROR_WAV, "%s: write failed", path);
        return false;
      }
      if (changed)
        *changed = TRUE;
      return true;
    }
    pos += 8 + static_cast<guint64> (csize) + (csize & 1);
  }
  g_set_error (error, ZHOST_ERROR, ERROR_WAV, "%s: no data chunk", path);
  return false;
}

} // namespace zhost
