/* zoomrtms-sim — a self-signed TLS certificate for wss:// (docs/protocol.md §9.1:
 * "wss:// with a self-signed CA"). */
#pragma once

#include <glib.h>

#include <string>

namespace sim {

/** generate_self_signed:
 * Generates an EC P-256 key and a self-signed X.509 certificate valid for
 * DNS:localhost and IP:127.0.0.1 (and ::1), one day, CA:TRUE so clients can use
 * the certificate itself as their CA file.
 * @cert_pem, @key_pem: receive PEM text.
 * Returns: false with a G_IO_ERROR if OpenSSL fails.
 */
bool generate_self_signed (std::string *cert_pem, std::string *key_pem,
    GError **error);

} // namespace sim
