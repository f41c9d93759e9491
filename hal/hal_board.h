/* hal_board.h — identity of the board the firmware runs on. */
#ifndef HAL_BOARD_H
#define HAL_BOARD_H

/* Short board name for `version` and the boot banner, e.g. "posix". */
const char *hal_board_name(void);

/* 1 when the operator asked for recovery at power-on (a button held on a
 * real board; `tools/sim --recovery` on the posix board): the console then
 * offers only a factory reset, without login. Physical presence is the
 * proof, so this must never be settable from software. */
int hal_board_recovery_requested(void);

#endif
