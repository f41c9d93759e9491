/* dev_link.h — set up the device side of the board link (see link.h). */
#ifndef DEV_LINK_H
#define DEV_LINK_H

void dev_link_init(void);

#endif
