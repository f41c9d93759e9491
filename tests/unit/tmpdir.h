/* tmpdir.h — a fresh temporary directory per test, for the unit tests that
 * run against real SQLite files. */
#ifndef TMPDIR_H
#define TMPDIR_H

#include <stddef.h>

/* Make /tmp/<prefix>.XXXXXX into `dir` (cap bytes); 0, or -1. */
int tmpdir_make(char *dir, size_t cap, const char *prefix);
/* Remove the files in `dir` (one level, as the tests make them) and `dir`. */
void tmpdir_remove(const char *dir);

#endif
