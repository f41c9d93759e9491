/* hal_storage.h — where the database lives.
 *
 * The data partition holds the SQLite database (configuration and mail
 * queue). The firmware opens it by the name this returns: on the posix board
 * a plain file, <state>/relay.db, on SQLite's default VFS; a Cortex-M board
 * returns a name its own flash VFS understands. */
#ifndef HAL_STORAGE_H
#define HAL_STORAGE_H

/* Name of the database to open; never NULL. */
const char *hal_storage_db_path(void);

/* Erase the data partition (the database and whatever SQLite keeps next to
 * it), for a factory reset. The database must be closed first. Returns
 * HAL_OK or a HAL error. */
int hal_storage_wipe(void);

#endif
