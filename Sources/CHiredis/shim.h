#include <hiredis/hiredis.h>
#include <hiredis/read.h>

// Reader fields, without touching the fixed-size errstr array from Swift.
static inline int llmp_reader_err(const redisReader *r) { return r->err; }
static inline const char *llmp_reader_errstr(const redisReader *r) { return r->errstr; }
