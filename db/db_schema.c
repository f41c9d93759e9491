/* db_schema.c — the schema, as forward migrations.
 *
 * Rules for a new migration within major 1: only add (tables, indexes,
 * columns with a DEFAULT); never rename, drop or change meaning, because an
 * older firmware of major 1 must keep working on the result. Anything else
 * is a new major. */
#include "db.h"

static const char schema_1_0[] =
    /* Allowed recipient domains; names are stored lower case. */
    "CREATE TABLE domain ("
    "  name TEXT PRIMARY KEY,"
    "  created INTEGER NOT NULL);"
    /* Smart hosts: where a domain's mail goes, lower priority first. The
     * password is sealed (crypto.h) and never readable through a command. */
    "CREATE TABLE smarthost ("
    "  id INTEGER PRIMARY KEY,"
    "  domain TEXT NOT NULL REFERENCES domain(name),"
    "  host TEXT NOT NULL,"
    "  port INTEGER NOT NULL DEFAULT 25 CHECK (port BETWEEN 1 AND 65535),"
    "  priority INTEGER NOT NULL DEFAULT 0 CHECK (priority >= 0),"
    "  tls TEXT NOT NULL DEFAULT 'may' CHECK (tls IN ('may','encrypt','verify','none')),"
    "  username TEXT,"
    "  password_sealed BLOB,"
    "  auth_plaintext INTEGER NOT NULL DEFAULT 0 CHECK (auth_plaintext IN (0,1)),"
    "  tls_downgrades INTEGER NOT NULL DEFAULT 0,"
    /* 1 while the last TLS attempt failed (the row needs attention). */
    "  tls_failing INTEGER NOT NULL DEFAULT 0,"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  UNIQUE (domain, host, port));"
    "CREATE INDEX smarthost_by_domain ON smarthost(domain, priority);"
    /* Source networks allowed to send mail in (canonical CIDR text). */
    "CREATE TABLE allow_net ("
    "  cidr TEXT PRIMARY KEY,"
    "  family INTEGER NOT NULL CHECK (family IN (4,6)),"
    "  addr BLOB NOT NULL,"
    "  prefix INTEGER NOT NULL,"
    "  created INTEGER NOT NULL);"
    /* Settings with values; absent keys take the firmware's defaults. */
    "CREATE TABLE setting ("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL);"
    /* The console administrator (one row): PBKDF2 hash, never the password. */
    "CREATE TABLE admin ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  username TEXT NOT NULL,"
    "  hash BLOB NOT NULL,"
    "  salt BLOB NOT NULL,"
    "  iterations INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL);"
    /* The queue. A message is visible to delivery once its row and its
     * recipients are committed; its body is stored in chunks so that no
     * message ever has to be in RAM whole. */
    "CREATE TABLE message ("
    "  id INTEGER PRIMARY KEY,"
    /* 'incoming' while DATA streams in (invisible to delivery and to the
     * queue commands; deleted at boot), 'queued' once committed with its
     * recipients. */
    "  state TEXT NOT NULL DEFAULT 'incoming' CHECK (state IN ('incoming','queued')),"
    "  received INTEGER NOT NULL,"
    "  sender TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  client TEXT NOT NULL,"
    "  helo TEXT NOT NULL DEFAULT '',"
    "  message_id TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE message_chunk ("
    "  message INTEGER NOT NULL REFERENCES message(id) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL,"
    "  data BLOB NOT NULL,"
    "  PRIMARY KEY (message, seq)) WITHOUT ROWID;"
    "CREATE TABLE recipient ("
    "  id INTEGER PRIMARY KEY,"
    "  message INTEGER NOT NULL REFERENCES message(id) ON DELETE CASCADE,"
    "  address TEXT NOT NULL,"
    "  domain TEXT NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'queued'"
    "    CHECK (state IN ('queued','delivering','delivered','deferred','failed')),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt INTEGER NOT NULL DEFAULT 0,"
    "  last_reply TEXT NOT NULL DEFAULT '',"
    "  updated INTEGER NOT NULL);"
    "CREATE INDEX recipient_by_message ON recipient(message);"
    "CREATE INDEX recipient_due ON recipient(state, next_attempt);"
    "CREATE INDEX recipient_by_domain ON recipient(domain, state);"
    /* Final outcomes; outlives the queue. */
    "CREATE TABLE history ("
    "  id INTEGER PRIMARY KEY,"
    "  queue_id INTEGER NOT NULL,"
    "  message_id TEXT NOT NULL,"
    "  sender TEXT NOT NULL,"
    "  recipient TEXT NOT NULL,"
    "  outcome TEXT NOT NULL CHECK (outcome IN ('delivered','failed')),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  smarthost TEXT NOT NULL,"
    "  tls TEXT NOT NULL,"
    "  reply TEXT NOT NULL,"
    "  received INTEGER NOT NULL,"
    "  finished INTEGER NOT NULL);"
    /* The appliance's TLS identity: EC P-256 key (sealed) and its
     * self-signed certificate, made at first boot. */
    "CREATE TABLE tls_identity ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  key_sealed BLOB NOT NULL,"
    "  cert BLOB NOT NULL,"
    "  created INTEGER NOT NULL);"
    /* Certificates of the CAs outbound `tls verify` trusts (PEM). */
    "CREATE TABLE tls_ca ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  pem BLOB NOT NULL,"
    "  updated INTEGER NOT NULL);"
    /* The optional inbound SMTP AUTH account (PBKDF2-SHA256 hash). */
    "CREATE TABLE inbound_account ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  username TEXT NOT NULL,"
    "  hash BLOB NOT NULL,"
    "  salt BLOB NOT NULL,"
    "  iterations INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL);"
    /* Who changed which configuration, when. */
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY,"
    "  at INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL);";

const struct db_migration db_schema_migrations[] = {
    {DB_VERSION(1, 0), schema_1_0},
};
const size_t db_schema_migration_count =
    sizeof db_schema_migrations / sizeof db_schema_migrations[0];
