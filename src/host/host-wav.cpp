/* zoomrtms-host — WAV repair, inspection and concatenation. See host-wav.h. */
#include "host-wav.h"

#include "host-common.h"

#include <glib/gstdio.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include <unistd.h>

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

/* Walks the chunks of the RIFF/WAVE file @f (@path for messages) to its
 * "data" chunk: fills @info (data_bytes = what the file holds after the data
 * header, whole frames) and @riff_size / @data_size (the header's values). */
static bool
wav_scan (FILE *f, const char *path, WavInfo *info, guint32 *riff_size,
    guint32 *data_size, GError **error)
{
  if (fseeko (f, 0, SEEK_END) != 0) {
    g_set_error (error, ZHOST_ERROR, ERROR_WAV, "%s: cannot seek", path);
    return false;
  }
  guint64 size = static_cast<guint64> (ftello (f));
  guint8 hdr[12];
  rewind (f);
  if (size < 12 || fread (hdr, 1, 12, f) != 12 ||
      memcmp (hdr, "RIFF", 4) != 0 || memcmp (hdr + 8, "WAVE", 4) != 0) {
    g_set_error (error, ZHOST_ERROR, ERROR_WAV, "%s: not a RIFF/WAVE file", path);
    return false;
  }
  *riff_size = rd32 (hdr + 4);
  guint64 pos = 12;
  bool have_fmt = false;
  while (pos + 8 <= size) {
    guint8 ch[8];
    if (fseeko (f, static_cast<off_t> (pos), SEEK_SET) != 0 ||
        fread (ch, 1, 8, f) != 8)
      break;
    guint32 csize = rd32 (ch + 4);
    if (memcmp (ch, "fmt ", 4) == 0) {
      guint8 fmt[16];
      if (csize < 16 || fread (fmt, 1, 16, f) != 16) {
        g_set_error (error, ZHOST_ERROR, ERROR_WAV, "%s: short fmt chunk", path);
        return false;
      }
      info->channels = fmt[2] | (fmt[3] << 8);
      info->rate = static_cast<int> (rd32 (fmt + 4));
      info->block_align = fmt[12] | (fmt[13] << 8);
      info->bits = fmt[14] | (fmt[15] << 8);
      if (info->block_align == 0) {
        g_set_error (error, ZHOST_ERROR, ERROR_WAV, "%s: fmt block align 0", path);
        return false;
      }
      have_fmt = true;
    } else if (memcmp (ch, "data", 4) == 0) {
      if (!have_fmt) {
        g_set_error (error, ZHOST_ERROR, ERROR_WAV,
            "%s: data chunk before fmt chunk", path);
        return false;
      }
      *data_size = csize;
      info->data_offset = pos + 8;
      guint64 avail = size - info->data_offset;
      info->data_bytes = avail - avail % static_cast<guint64> (info->block_align);
      return true;
    }
    pos += 8 + static_cast<guint64> (csize) + (csize & 1);
  }
  g_set_error (error, ZHOST_ERROR, ERROR_WAV, "%s: no fmt or data chunk", path);
  return false;
}

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
  WavInfo info;
  guint32 riff_size = 0, data_size = 0;
  if (!wav_scan (f.get (), path, &info, &riff_size, &data_size, error))
    return false;
  /* a RIFF size is 32 bits: at most 4 GiB − 1 of file */
  const guint64 cap = 0xffffffffull - 36;
  guint64 avail = info.data_bytes;
  if (avail > cap)
    avail = cap - cap % static_cast<guint64> (info.block_align);
  guint32 want_data = static_cast<guint32> (avail);
  guint32 want_riff = static_cast<guint32> (info.data_offset + avail - 8);
  if (data_size == want_data && riff_size == want_riff)
    return true;
  guint8 b[4];
  wr32 (b, want_data);
  if (fseeko (f.get (), static_cast<off_t> (info.data_offset - 4), SEEK_SET) != 0 ||
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

bool
wav_info (const char *path, WavInfo *info, GError **error)
{
  FilePtr f (g_fopen (path, "rb"));
  if (!f) {
    int e = errno;
    g_set_error (error, ZHOST_ERROR, ERROR_WAV, "%s: %s", path, g_strerror (e));
    return false;
  }
  guint32 riff_size = 0, data_size = 0;
  return wav_scan (f.get (), path, info, &riff_size, &data_size, error);
}


bool
wav_concat (const std::vector<std::string> &parts, const std::string &out,
    GError **error)
{
  if (parts.empty ()) {
    g_set_error (error, ZHOST_ERROR, ERROR_WAV, "%s: nothing to concatenate",
        out.c_str ());
    return false;
  }
  std::vector<WavInfo> infos (parts.size ());
  for (gsize i = 0; i < parts.size (); i++) {
    if (!wav_info (parts[i].c_str (), &infos[i], error))
      return false;
    if (infos[i].channels != infos[0].channels || infos[i].rate != infos[0].rate ||
        infos[i].bits != infos[0].bits) {
      g_set_error (error, ZHOST_ERROR, ERROR_WAV,
          "%s: format differs from %s (%d ch %d Hz %d bit vs %d ch %d Hz %d bit)",
          parts[i].c_str (), parts[0].c_str (), infos[i].channels, infos[i].rate,
          infos[i].bits, infos[0].channels, infos[0].rate, infos[0].bits);
      return false;
    }
  }
  std::string tmp = out + ".tmp";
  FilePtr o (g_fopen (tmp.c_str (), "wb"));
  if (!o) {
    int e = errno;
    g_set_error (error, ZHOST_ERROR, ERROR_WAV, "%s: %s", tmp.c_str (), g_strerror (e));
    return false;
  }
  std::vector<char> buf (1 << 16);
  bool ok = true;
  auto copy = [&] (const std::string &path, guint64 from, guint64 len) {
    FilePtr in (g_fopen (path.c_str (), "rb"));
    if (!in || fseeko (in.get (), static_cast<off_t> (from), SEEK_SET) != 0)
      return false;
    while (len > 0) {
      size_t n = static_cast<size_t> (MIN (len, static_cast<guint64> (buf.size ())));
      if (fread (buf.data (), 1, n, in.get ()) != n ||
          fwrite (buf.data (), 1, n, o.get ()) != n)
        return false;
      len -= n;
    }
    return true;
  };
  /* the first part's header (fmt and any other chunk before data) */
  ok = copy (parts[0], 0, infos[0].data_offset);
  for (gsize i = 0; ok && i < parts.size (); i++)
    ok = copy (parts[i], infos[i].data_offset, infos[i].data_bytes);
  ok = ok && fflush (o.get ()) == 0 && fsync (fileno (o.get ())) == 0;
  o.reset ();
  if (!ok) {
    g_set_error (error, ZHOST_ERROR, ERROR_WAV, "%s: cannot write the merged file",
        tmp.c_str ());
    g_remove (tmp.c_str ());
    return false;
  }
  if (!wav_repair (tmp.c_str (), nullptr, error)) {
    g_remove (tmp.c_str ());
    return false;
  }
  if (g_rename (tmp.c_str (), out.c_str ()) != 0) {
    int e = errno;
    g_set_error (error, ZHOST_ERROR, ERROR_WAV, "rename to %s: %s", out.c_str (),
        g_strerror (e));
    g_remove (tmp.c_str ());
    return false;
  }
  return true;
}

gint64
wav_leading_zero_frames (const char *path)
{
  WavInfo info;
  if (!wav_info (path, &info, nullptr))
    return -1;
  FilePtr f (g_fopen (path, "rb"));
  if (!f || fseeko (f.get (), static_cast<off_t> (info.data_offset), SEEK_SET) != 0)
    return -1;
  gint64 frames = 0;
  std::vector<guint8> frame (static_cast<size_t> (info.block_align));
  for (guint64 k = 0; k < info.frames (); k++) {
    if (fread (frame.data (), 1, frame.size (), f.get ()) != frame.size ())
      break;
    for (guint8 b : frame)
      if (b != 0)
        return frames;
    frames++;
  }
  return frames;
}

} // namespace zhost
