#include <sqlite3.h>
// SQLITE_STATIC is a cast macro Swift cannot import.
static inline void (*llmp_sqlite_static(void))(void *) { return SQLITE_STATIC; }
// sqlite3_config is variadic (Swift cannot call it). Memory statistics take a global mutex on every
// allocation SQLite makes; nothing here reads them. Must run before SQLite initialises (else SQLITE_MISUSE).
static inline int llmp_sqlite_disable_memstatus(void) { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }
// A file of the paced VFS (PacedVFS.swift): SQLite's file header, then a pointer to the file of the VFS it
// wraps, which lives right after this struct in the same allocation (SQLite allocates `szOsFile` bytes).
typedef struct llmp_paced_file {
    sqlite3_file base;
    sqlite3_file *real;
} llmp_paced_file;
