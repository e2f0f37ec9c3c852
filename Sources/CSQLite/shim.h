#include <sqlite3.h>
// SQLITE_STATIC is a cast macro Swift cannot import.
static inline void (*llmp_sqlite_static(void))(void *) { return SQLITE_STATIC; }
// sqlite3_config is variadic (Swift cannot call it). Memory statistics take a global mutex on every
// allocation SQLite makes; nothing here reads them. Must run before SQLite initialises (else SQLITE_MISUSE).
static inline int llmp_sqlite_disable_memstatus(void) { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }
