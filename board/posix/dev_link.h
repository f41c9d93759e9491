/* dev_link.h — set up the device side of the board link (see link.h). */
#ifndef DEV_LINK_H
#define DEV_LINK_H

void dev_link_init(void);
/* Write out the link messages gathered so far (before a reset). */
void dev_link_flush(void);

#endif
