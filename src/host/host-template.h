/* zoomrtms-host — pipeline templates (pipelines/NAME.pipeline).
 *
 * Rules: design.md "Pipeline templates are data, not code" and
 * gstreamer-guide.md §3.3. A template is gst-launch syntax with one
 * `zoomrtmssrc name=src`. Whole lines starting with '#' are comments.
 * Text variables come from a whitelist (kTemplateVariables), may only appear
 * in a property value (`name=…${VAR}…`), are validated, and the whole value
 * is inserted double-quoted with `\"` and `\\` escaped. Webhook ids and
 * credentials are never pasted into the text: the host sets them on `src`
 * with g_object_set() after parsing.
 */
#pragma once

#include <gst/gst.h>

#include <map>
#include <string>
#include <vector>

namespace zhost {

/* The variables a template may use. */
extern const char *const kTemplateVariables[];

using TemplateVars = std::map<std::string, std::string>;

/** sanitize_engagement_id:
 * Makes an engagement id (or meeting UUID) safe as one file-name component:
 * every byte outside [A-Za-z0-9_-] becomes '_'; if anything changed (or the
 * id is empty or longer than 64 bytes, then cut to 64) a suffix "-" + the
 * first 8 hex digits of SHA-256(id) keeps distinct ids distinct. The result
 * never contains '/', '.', '=' or '+', so `../x` cannot leave the output root.
 */
std::string sanitize_engagement_id (const std::string &id);

/** validate_variable:
 * Checks @value for variable @name: OUTPUT_DIR an absolute path without
 * `.`/`..` components or control characters; ENGAGEMENT_ID
 * [A-Za-z0-9_-]{1,128}; RTP_HOST an IP address or a DNS host name; RTP_PORT
 * an integer 1–65535.
 * Returns: false with ZHOST_ERROR_TEMPLATE for an unknown name or a bad value
 * (the message names the variable, not the value for OUTPUT_DIR).
 */
bool validate_variable (const std::string &name, const std::string &value,
    GError **error);

/** quote_value:
 * Returns: @value as a gst-launch double-quoted string: `"` + value with `\`
 * and `"` backslash-escaped + `"` (gstreamer-guide.md §3.3 [verified]).
 */
std::string quote_value (const std::string &value);

/** strip_comments:
 * Returns: @text with every line whose first non-blank character is '#'
 * removed (the newline is kept, so line numbers in errors stay right).
 */
std::string strip_comments (const std::string &text);

/** substitute_template:
 * @text: template text (comments already stripped)
 * @vars: variable values; every one is validated with validate_variable()
 * @out: the gst-launch description
 * Returns: false with ZHOST_ERROR_TEMPLATE if a `${…}` is unknown,
 * unterminated, outside a `name=value` word, or a value is invalid.
 */
bool substitute_template (const std::string &text, const TemplateVars &vars,
    std::string *out, GError **error);

/* One loaded template. */
struct PipelineTemplate {
  std::string name;      /* file name without ".pipeline" */
  std::string path;
  std::string text;      /* comments and @participant-branch lines stripped */
  /* the `@participant-branch` lines' text (pipelines/README.md): a bin
   * description the host instantiates for every pad of the zoomrtmsdemux
   * named "participants"; "" = none */
  std::string participant_branch;
  bool has_level = false;
};

/** take_participant_branch:
 * Removes from @text every line whose first non-blank text is
 * `@participant-branch` (the newline stays, so line numbers stay right).
 * Returns: the rest of those lines, joined with spaces ("" if none).
 */
std::string take_participant_branch (std::string *text);

/** build_participant_branch:
 * @vars: dummy_vars()-like values plus PARTICIPANT_ID (validated like
 *   ENGAGEMENT_ID: the participant id through sanitize_engagement_id())
 * Substitutes @vars into @tmpl's participant_branch and parses it as a bin
 * with a ghost sink pad (gst_parse_bin_from_description_full, fatal errors).
 * Returns: (transfer full) the bin, or NULL with ZHOST_ERROR_TEMPLATE.
 */
GstElement *build_participant_branch (const PipelineTemplate &tmpl,
    const TemplateVars &vars, GError **error);

/** build_pipeline:
 * Substitutes @vars into @tmpl, parses it with GST_PARSE_FLAG_FATAL_ERRORS |
 * GST_PARSE_FLAG_PLACE_IN_BIN and puts the bin in a new pipeline called
 * @pipeline_name (gstreamer-guide.md §3.3 "Pipeline ownership"). Checks that
 * exactly one zoomrtmssrc exists and that it is named "src", and that a
 * template with a participant_branch has exactly one zoomrtmsdemux, named
 * "participants" (and one without has none).
 * @has_level: (out) (optional): whether the pipeline has a `level` element
 * Returns: (transfer floating→full, sunk) the pipeline, or NULL with
 * ZHOST_ERROR_TEMPLATE naming the template file and GStreamer's error.
 */
GstElement *build_pipeline (const PipelineTemplate &tmpl,
    const TemplateVars &vars, const std::string &pipeline_name,
    bool *has_level, GError **error);

/** dummy_vars:
 * Returns: values used to validate templates at start-up.
 */
TemplateVars dummy_vars ();

/** src_output_caps:
 * Returns: (transfer full) the caps the `zoomrtmssrc` @src will output as
 * its properties stand, if Zoom answers the media handshake with what it
 * asks for (docs/protocol.md §3.3, msg 4): codec=l16 → audio/x-raw,
 * format=S16LE, layout=interleaved, rate=`rate`, channels 2 for
 * layout=stereo, 1 for layout=mix, both (two structures: 1 then 2) for
 * layout=auto (issue 14: chosen by product); layout=packets →
 * application/x-zoomrtms-packets, format=S16LE, rate=`rate`, packet-ms=`send-rate`;
 * codec=opus → audio/x-opus, rate=48000, channels=1,
 * channel-mapping-family=0. NULL if @src has no `codec` property.
 */
GstCaps *src_output_caps (GstElement *src);

/** check_pipeline_caps:
 * @pipeline: a pipeline build_pipeline() made (NULL state)
 * @path: the template file, for messages
 * Checks, without running anything, that what `src` will output
 * (src_output_caps()) can be negotiated downstream: `src`'s pad is linked
 * and a caps query of its peer, filtered by those caps, is not empty
 * (elements answer from their pad templates and properties in NULL state:
 * a capsfilter `audio/x-raw,rate=7`, an encoder that takes no such rate).
 * @caps_text: (out) (optional): the caps `src` will output, as text
 * Returns: false with ZHOST_ERROR_TEMPLATE naming the file, the caps and
 * what the peer accepts.
 */
bool check_pipeline_caps (GstElement *pipeline, const std::string &path,
    std::string *caps_text, GError **error);

/* Every template of a directory, validated at load time. */
class TemplateStore {
 public:
  /** load_dir:
   * Loads every `*.pipeline` file of @dir and validates each by building it
   * with dummy_vars(). Returns: false with ZHOST_ERROR_TEMPLATE (message names
   * the file and the error) on the first broken template or if @dir has none.
   */
  bool load_dir (const std::string &dir, GError **error);
  /* Returns: the template called @name, or NULL. */
  const PipelineTemplate *find (const std::string &name) const;
  std::vector<std::string> names () const;

  /** check_caps:
   * Builds every template with dummy_vars() and runs
   * check_pipeline_caps() on it. @problems: (out) one message per template
   * whose caps cannot be negotiated; @caps: (out) (optional) template name →
   * the caps its `src` will output. Returns: whether all passed.
   */
  bool check_caps (std::vector<std::string> *problems,
      std::map<std::string, std::string> *caps = nullptr) const;

 private:
  std::map<std::string, PipelineTemplate> templates_;
};

} // namespace zhost
