/* login.h — who may use the console.
 *
 * One account, no user name. At first boot (no admin password in the
 * admin record) the console asks for a new one; afterwards every session
 * starts at "password: ". Passwords are kept only as a salted PBKDF2-
 * HMAC-SHA256 hash (adminrec.h) whose iteration count is whatever one
 * LOGIN_HASH_MS of hashing reached on this board when it was set; the hash
 * runs a slice per event-loop turn, so SMTP is served meanwhile. A wrong
 * password waits 1 s, 2 s, 4 s ... up to LOGIN_DELAY_MAX_S before the
 * next try (input typed meanwhile is dropped). A session idle for
 * `console-idle-timeout` seconds is logged out. Recovery mode (hal_board.h)
 * skips the login: its console offers only `factory-reset`.
 *
 * The module drives the console through its public API and runs off
 * login_poll(); it is the console's only input path (login_input). */
#ifndef LOGIN_H
#define LOGIN_H

#include <stddef.h>
#include <stdint.h>

#include "console.h"

#define LOGIN_PASSWORD_MIN 10 /* characters in an admin password, at least */
#define LOGIN_HASH_MS 100     /* time one password check should take */
#define LOGIN_SLICE_US 4000   /* hashing per event-loop turn */
#define LOGIN_ITERATIONS_MIN 10000 /* floor, whatever the board's speed */
#define LOGIN_DELAY_MAX_S 30  /* longest wait after a wrong password */
#define LOGIN_IDLE_DEFAULT_S 600

/* Read the admin record and set the key epoch (before crypto_init). With
 * `recovery`, the console is open without login. Prints nothing. */
void login_init(struct console *con, int recovery);
/* Print the first question (after the boot banner): the first-boot
 * password, "password: ", or the recovery prompt. */
void login_start(void);
/* Once storage is up: record a factory reset that happened before this
 * boot in the audit log. */
void login_storage_ready(void);
/* Bytes typed on the console. */
void login_input(const uint8_t *data, size_t len);
/* Hash a slice, end a delay, log out an idle session. Returns how many ms
 * the event loop may sleep before calling again (0 while hashing). */
uint32_t login_poll(void);
/* 1 while a session is open (or in recovery mode). */
int login_is_open(void);

/* Commands (cmd_admin.c). Each returns what a console handler returns. */
int login_logout(struct console *con);
int login_passwd(struct console *con);
int login_factory_reset(struct console *con);

/* The rules for a new admin password: 0, or -1 with a reason. */
int login_check_password(const char *password, char *err, size_t errlen);
/* The wait after `failures` wrong passwords in a row, in seconds. */
uint32_t login_delay_s(unsigned failures);

#endif
