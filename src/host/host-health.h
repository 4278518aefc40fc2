/* zoomrtms-host — is there room to record? (issue 11 "Health that means
 * something").
 *
 * /health checks the output root — and the storage of live engagements and
 * of engagements that ran out of space, when that is another file system —
 * with check_storage(): writable, and at least [health] min-free-bytes
 * free (statvfs(3) f_bavail: what an unprivileged writer may use).
 */
#pragma once

#include <glib.h>

#include <string>

namespace zhost {

struct StorageStatus {
  bool exists = false;
  bool writable = false;       /* access(W_OK) and not mounted read-only */
  bool read_only = false;      /* ST_RDONLY */
  guint64 free_bytes = 0;      /* f_bavail × f_frsize */
  guint64 total_bytes = 0;     /* f_blocks × f_frsize */
  guint64 device = 0;          /* st_dev: one file system, one check */
  /* "" when usable and at least the minimum is free; else why not, for
   * people: "read-only file system", "not writable: Permission denied",
   * "12.3 MB free, under the minimum of 256.0 MB", "missing: …" */
  std::string problem;
};

/** check_storage:
 * @path: a directory
 * @min_free_bytes: the minimum free space; 0 = no minimum
 * Returns: what statvfs(3), stat(2) and access(2) say of @path. Cheap (three
 * system calls): fine for every /health request.
 */
StorageStatus check_storage (const std::string &path, guint64 min_free_bytes);

/** format_bytes:
 * Returns: @bytes for people, in ASCII: "12.3 MB", "842 bytes" (g_format_size(),
 * SI units).
 */
std::string format_bytes (guint64 bytes);

} // namespace zhost
