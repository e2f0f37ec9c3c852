#include <mongoc/mongoc.h>
#include <bson/bson.h>

// Error fields without touching the over-aligned/array members from Swift.
static inline uint32_t llmp_bson_error_domain(const bson_error_t *e) { return e->domain; }
static inline uint32_t llmp_bson_error_code(const bson_error_t *e) { return e->code; }
static inline const char *llmp_bson_error_message(const bson_error_t *e) { return e->message; }
static inline bson_error_t *llmp_bson_error_new(void) { return (bson_error_t *) bson_malloc0(sizeof(bson_error_t)); }
