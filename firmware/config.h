/* config.h — the appliance's configuration: validation and changes.
 *
 * Every rule about what a valid domain, smart host, network or setting is
 * lives here, and every change goes through here: validated, written with
 * its audit line in one transaction, or refused with one clear reason in
 * `err` and nothing changed. Console commands only parse words and print. */
#ifndef CONFIG_H
#define CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "db_config.h"

#define CFG_ERR_MAX 160
/* A warning names an address and a domain in full. */
#define CFG_WARN_MAX (DB_TEXT_MAX + DB_NAME_MAX + 96)
#define CFG_PASSWORD_MAX 128

struct db;

/* Use `db` (NULL when storage failed: every call then says so). */
void cfg_init(struct db *db);
struct db *cfg_db(void);

/* --- validation, usable without storage --- */
/* A domain name: letters, digits, hyphens, dots; two labels or more; the
 * last not all digits; no trailing dot. Writes it lower case to `out`. */
int cfg_check_domain(const char *text, char out[DB_NAME_MAX + 1], char *err, size_t errlen);
/* A DNS host name or an IPv4/IPv6 literal (brackets allowed around IPv6);
 * canonical form to `out`; *is_ip is 4 or 6 for literals, 0 for names.
 * (Smart hosts refuse IPv6 literals; this only parses.) */
int cfg_check_host(const char *text, char out[DB_NAME_MAX + 1], int *is_ip, char *err,
                   size_t errlen);
int cfg_parse_port(const char *text, int32_t *port, char *err, size_t errlen);
int cfg_parse_priority(const char *text, int64_t *prio, char *err, size_t errlen);
int cfg_check_tls(const char *text, char *err, size_t errlen);
int cfg_check_user(const char *text, char *err, size_t errlen);
int cfg_check_password(const char *text, char *err, size_t errlen);

/* --- allowed domains --- */
int cfg_domain_add(const char *name, char *err, size_t errlen);
/* Refused while smart hosts or queued mail use the domain unless `force`;
 * `note` gets what a forced delete left behind. `warn` ("" when none) says
 * when the bounce address is in the domain: its reports cannot be
 * delivered any more. */
int cfg_domain_del(const char *name, int force, char *note, size_t notelen, char *warn,
                   size_t warnlen, char *err, size_t errlen);

/* --- smart hosts --- */
/* What `smarthost add` or `smarthost set` asks for. For set, only fields
 * whose has_ flag is on change. */
struct cfg_smarthost_change {
    const char *domain; /* add only */
    const char *host;
    int has_host;
    int32_t port;
    int has_port;
    int64_t priority;
    int has_priority;
    const char *tls;
    int has_tls;
    const char *user; /* NULL: keep; "" (set's nouser): remove credentials */
    int auth_plaintext;
    int has_auth_plaintext;
};

/* Rows that could never work are refused: an IPv6 host (lwIP runs IPv4
 * only), tls verify with an IP literal, tls none with a user but without
 * auth-plaintext (credentials go only over TLS unless allowed). */

/* Validate an add without writing; *needs_password is 1 when a user is given. */
int cfg_smarthost_check_add(const struct cfg_smarthost_change *c, int *needs_password,
                            char *err, size_t errlen);
/* Add; `password` required when c->user is set. Sets *id. */
int cfg_smarthost_add(const struct cfg_smarthost_change *c, const char *password, int64_t *id,
                      char *err, size_t errlen);
/* Validate a set without writing; *needs_password is 1 when the row keeps or
 * gets credentials and the change could send them elsewhere (host, port,
 * TLS policy, auth-plaintext turned on) or names a new user. */
int cfg_smarthost_check_set(int64_t id, const struct cfg_smarthost_change *c,
                            int *needs_password, char *err, size_t errlen);
int cfg_smarthost_set(int64_t id, const struct cfg_smarthost_change *c, const char *password,
                      char *err, size_t errlen);
/* `warn` ("" when none) says when this was the last smart host of the
 * bounce address's domain: reports cannot be delivered until one is added. */
int cfg_smarthost_del(int64_t id, char *warn, size_t warnlen, char *err, size_t errlen);
/* The smart host's password, decrypted, for delivery; -1 when none or when
 * it does not open (damaged, or sealed on another unit). */
int cfg_smarthost_password(const struct db_smarthost *sh, char *out, size_t cap);
/* 1 when the row has a user but its password does not open: it must be
 * entered again (smarthost set <id> user <name>) before it can deliver. */
int cfg_smarthost_needs_credentials(const struct db_smarthost *sh);

/* --- inbound allowlist --- */
/* Canonical CIDR of what was added/removed goes to `canon`. IPv6 networks
 * are refused on add (they could never match while lwIP is IPv4 only);
 * entries stored before can still be deleted. */
int cfg_allow_add(const char *cidr, char *canon, size_t canonlen, char *err, size_t errlen);
int cfg_allow_del(const char *cidr, char *canon, size_t canonlen, char *err, size_t errlen);

/* --- settings --- */
struct cfg_setting {
    const char *key;
    const char *def; /* default value */
    const char *help;
    /* Also consults storage when there is one (bounce-address needs a
     * smart host for its domain). */
    int (*check)(const char *value, char *err, size_t errlen);
};
extern const struct cfg_setting cfg_settings[];
/* Current value (stored or default) into `out`: 0; -1 for an unknown key;
 * CFG_SETTING_UNREAD when storage could not be read (`out` then holds the
 * default, which a caller deciding something irreversible must not trust). */
#define CFG_SETTING_UNREAD (-2)
int cfg_setting_get(const char *key, char *out, size_t cap);
/* An audit row for an event that changes no configuration (a failed
 * login, a password change), in its own durable transaction. 0, or -1
 * when storage is unavailable or the write failed (logged). */
int cfg_audit(const char *action);
/* Integer value of a numeric setting. */
int64_t cfg_setting_int(const char *key);
int cfg_setting_set(const char *key, const char *value, char *err, size_t errlen);
int cfg_setting_reset(const char *key, char *err, size_t errlen);

/* --- inbound SMTP: who may send --- */
/* 1 when the source address (family 4 with addr[0..3], or 6) is inside a
 * network of the allowlist. */
int cfg_source_allowed(int family, const uint8_t addr[16]);
/* 1 when mail for `domain` (lower case) is accepted: an allowed domain. */
int cfg_domain_allowed(const char *domain);
/* The optional inbound AUTH account: a second gate besides the allowlist. */
int cfg_inbound_set(const char *user, const char *password, char *err, size_t errlen);
int cfg_inbound_clear(char *err, size_t errlen);
/* 1 when an account is set; its name into `user` when not NULL. */
int cfg_inbound_enabled(char *user, size_t cap);
/* 1 when user and password match the account, 0 when not (or no account
 * is set), -1 when the account cannot be read. */
int cfg_inbound_check(const char *user, const char *password);

/* --- network (applied by the firmware at boot and by `net set`) --- */
struct cfg_net {
    int static_mode;              /* 0: DHCP */
    uint32_t addr, mask, gateway; /* host byte order; static mode only */
    uint32_t dns[2];              /* 0: from DHCP */
};
/* Stored network configuration; DHCP with no DNS override when none. */
int cfg_net_load(struct cfg_net *net);
int cfg_net_save(const struct cfg_net *net, char *err, size_t errlen);

#endif
