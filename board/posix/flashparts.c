/* flashparts.c — partition files mapped as NOR flash; see flashparts.h. */
#define _GNU_SOURCE
#include "flashparts.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    const char *file;
    uint32_t size;
} layout[HAL_FLASH_PART_COUNT] = {
    [HAL_FLASH_BOOTCTL] = {"flash-bootctl.bin", 2 * FLASHPARTS_SECTOR},
    [HAL_FLASH_SLOT_A] = {"flash-slot-a.bin", 8u << 20},
    [HAL_FLASH_SLOT_B] = {"flash-slot-b.bin", 8u << 20},
    [HAL_FLASH_ADMIN] = {"flash-admin.bin", 2 * FLASHPARTS_SECTOR},
};

/* Create the file erased, or check an existing one has the right size. */
static int open_part_file(const char *path, uint32_t size, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        char tmp[4096 + 8];
        snprintf(tmp, sizeof tmp, "%s.new", path);
        fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
            snprintf(err, errlen, "create %s: %s", tmp, strerror(errno));
            return -1;
        }
        uint8_t erased[FLASHPARTS_SECTOR];
        memset(erased, 0xFF, sizeof erased);
        for (uint32_t off = 0; off < size; off += sizeof erased)
            if (write(fd, erased, sizeof erased) != (ssize_t)sizeof erased) {
                snprintf(err, errlen, "write %s: %s", tmp, strerror(errno));
                close(fd);
                return -1;
            }
        if (fsync(fd) != 0 || rename(tmp, path) != 0) {
            snprintf(err, errlen, "commit %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        return fd;
    }
    if (fd < 0) {
        snprintf(err, errlen, "open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size != (off_t)size) {
        snprintf(err, errlen, "%s: size %lld, expected %lu", path,
                 (long long)st.st_size, (unsigned long)size);
        close(fd);
        return -1;
    }
    return fd;
}

int flashparts_open(struct flashparts *fp, const char *state_dir, char *err, size_t errlen)
{
    memset(fp, 0, sizeof *fp);
    for (int i = 0; i < HAL_FLASH_PART_COUNT; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", state_dir, layout[i].file);
        int fd = open_part_file(path, layout[i].size, err, errlen);
        if (fd < 0)
            goto fail;
        void *mem = mmap(NULL, layout[i].size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (mem == MAP_FAILED) {
            snprintf(err, errlen, "mmap %s: %s", path, strerror(errno));
            goto fail;
        }
        uint8_t *bitmap = calloc(1, nor_bitmap_size(layout[i].size, FLASHPARTS_WRITE_BLOCK));
        if (!bitmap || nor_init(&fp->part[i], mem, layout[i].size, FLASHPARTS_SECTOR,
                                FLASHPARTS_WRITE_BLOCK, bitmap) != 0) {
            snprintf(err, errlen, "%s: cannot set up the flash model", path);
            munmap(mem, layout[i].size);
            free(bitmap);
            goto fail;
        }
    }
    return 0;
fail:
    flashparts_close(fp);
    return -1;
}

void flashparts_close(struct flashparts *fp)
{
    for (int i = 0; i < HAL_FLASH_PART_COUNT; i++) {
        if (fp->part[i].mem) {
            msync(fp->part[i].mem, fp->part[i].size, MS_SYNC);
            munmap(fp->part[i].mem, fp->part[i].size);
        }
        free(fp->part[i].programmed);
    }
    memset(fp, 0, sizeof *fp);
}
