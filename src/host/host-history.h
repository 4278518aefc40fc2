/* zoomrtms-host — finished engagements read back from the output root
 * (issue 11: GET /engagements "reads history from disk", after a restart
 * too).
 *
 * Every engagement directory holds its engagement.json (host-engagement-dir.h).
 * The history is read on request, bounded: the directory is scanned once
 * (one stat(2) per entry, at most @limit names kept), then at most @limit
 * files of at most kHistoryFileMaxBytes each are parsed, newest first (the
 * modification time of engagement.json: it is rewritten when an engagement
 * ends), stopping once kHistoryMaxBytes of files were read.
 */
#pragma once

#include <json-glib/json-glib.h>

#include <set>
#include <string>
#include <vector>

namespace zhost {

/* One engagement.json read back is at most this big (bytes); a bigger one is
 * listed as {"dir_name":…, "error":"…"}. */
constexpr gsize kHistoryFileMaxBytes = 1024 * 1024;
/* The files of one history answer add up to at most this (bytes). */
constexpr gsize kHistoryMaxBytes = 32 * 1024 * 1024;
/* ?limit= of GET /engagements: default and maximum */
constexpr gsize kHistoryDefaultLimit = 100;
constexpr gsize kHistoryMaxLimit = 1000;

struct History {
  std::vector<JsonNode *> engagements;  /* (transfer full) newest first */
  gsize found = 0;      /* engagement directories found (without @skip) */
  bool more = false;    /* found > engagements.size () */
  History () = default;
  History (const History &) = delete;
  History &operator= (const History &) = delete;
  ~History ();
};

/** read_history:
 * @output_root: the host's output root
 * @limit: at most this many engagements (1 … kHistoryMaxLimit)
 * @skip: directory names to leave out (the live engagements)
 * @out: the result
 * Fills @out with the engagement.json objects of the directories of
 * @output_root (names starting with '.' are not engagements), newest first.
 * Each object gets "dir_name" if it lacks one. An unreadable file is listed
 * as {"dir_name":…, "error":…}. A symlinked directory or engagement.json is
 * not followed (open_confined()): nothing outside @output_root is read.
 */
void read_history (const std::string &output_root, gsize limit,
    const std::set<std::string> &skip, History *out);

/** read_engagement_from_disk:
 * For GET /engagements/{id} of an engagement no longer in memory: @id is a
 * directory name under @output_root, or an engagement id / meeting UUID
 * whose sanitized form (sanitize_engagement_id()) is one.
 * Returns: (transfer full) its engagement.json (at most
 * kHistoryFileMaxBytes; not through a symlink), or NULL.
 */
JsonNode *read_engagement_from_disk (const std::string &output_root,
    const std::string &id);

} // namespace zhost
