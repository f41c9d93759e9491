/* hal_board.h — identity of the board the firmware runs on. */
#ifndef HAL_BOARD_H
#define HAL_BOARD_H

/* Short board name for `version` and the boot banner, e.g. "posix". */
const char *hal_board_name(void);

#endif
