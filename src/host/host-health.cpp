/* zoomrtms-host — storage checks. See host-health.h. */
#include "host-health.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>

namespace zhost {

std::string
format_bytes (guint64 bytes)
{
  /* g_format_size () puts a no-break space before the unit: ASCII here */
  g_autofree gchar *s = g_format_size (bytes);
  std::string r = s;
  for (gsize i; (i = r.find ("\xc2\xa0")) != std::string::npos;)
    r.replace (i, 2, " ");
  return r;
}

StorageStatus
check_storage (const std::string &path, guint64 min_free_bytes)
{
  StorageStatus st;
  struct stat sb;
  if (stat (path.c_str (), &sb) != 0) {
    st.problem = std::string ("missing: ") + g_strerror (errno);
    return st;
  }
  st.exists = true;
  st.device = static_cast<guint64> (sb.st_dev);
  struct statvfs vfs;
  if (statvfs (path.c_str (), &vfs) != 0) {
    st.problem = std::string ("statvfs: ") + g_strerror (errno);
    return st;
  }
  st.free_bytes = static_cast<guint64> (vfs.f_bavail) * vfs.f_frsize;
  st.total_bytes = static_cast<guint64> (vfs.f_blocks) * vfs.f_frsize;
  st.read_only = (vfs.f_flag & ST_RDONLY) != 0;
  if (st.read_only) {
    st.problem = "read-only file system";
    return st;
  }
  if (access (path.c_str (), W_OK | X_OK) != 0) {
    st.problem = std::string ("not writable: ") + g_strerror (errno);
    return st;
  }
  st.writable = true;
  if (min_free_bytes > 0 && st.free_bytes < min_free_bytes)
    st.problem = format_bytes (st.free_bytes) + " free, under the minimum of " +
        format_bytes (min_free_bytes) + " ([health] min-free-bytes)";
  return st;
}

} // namespace zhost
