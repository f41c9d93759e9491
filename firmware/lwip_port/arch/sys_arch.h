/* arch/sys_arch.h — empty: NO_SYS=1 needs no semaphores, mailboxes or threads. */
#ifndef LWIP_ARCH_SYS_ARCH_H
#define LWIP_ARCH_SYS_ARCH_H
#endif
