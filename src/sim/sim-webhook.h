/* zoomrtms-sim — the webhook emitter (docs/protocol.md §2, §9.1 item 1).
 *
 * Every POST carries Content-Type application/json, x-zm-request-timestamp
 * (epoch s), x-zm-signature = webhook_signature() over the exact bytes sent,
 * and x-zm-trackingid. Bodies are compact JSON (encode_webhook). Faults:
 * --bad-signature (signed with a wrong token), --stale (timestamp 10 min old),
 * --duplicate (the same request twice).
 */
#pragma once

#include <libsoup/soup.h>

#include <functional>
#include <string>

#include "sim-options.h"

namespace sim {

/* status: HTTP status of the (last) delivery, 0 if it could not be sent;
 * body: the response body (for url_validation). */
using WebhookDone = std::function<void (guint status, const std::string &body)>;

class WebhookSender {
 public:
  explicit WebhookSender (const Options &opts);
  ~WebhookSender ();
  WebhookSender (const WebhookSender &) = delete;
  WebhookSender &operator= (const WebhookSender &) = delete;

  /** post:
   * POSTs @body to --webhook-url, signed; with --duplicate twice (the second
   * after the first answered). @done runs on the thread-default main context
   * with the status of the last delivery (a non-2xx first delivery wins).
   */
  void post (const std::string &body, WebhookDone done);

  /** post_sync:
   * The same, blocking (for the validate/webhook commands).
   * Returns: the HTTP status (0 = not sent; @error is set then).
   */
  guint post_sync (const std::string &body, std::string *response,
      GError **error);

 private:
  SoupMessage *build (const std::string &body);
  const Options &opts_;
  SoupSession *session_;
};

/** url_validation_body:
 * Returns: the compact endpoint.url_validation body for @plain_token.
 */
std::string url_validation_body (const std::string &plain_token,
    gint64 event_ts_ms);

} // namespace sim
