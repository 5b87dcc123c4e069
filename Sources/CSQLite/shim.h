#ifndef NIXBRIDGE_CSQLITE_SHIM_H
#define NIXBRIDGE_CSQLITE_SHIM_H
#include <sqlite3.h>

// SQLITE_TRANSIENT is a cast of -1 to a function pointer: Swift cannot import it.
static inline sqlite3_destructor_type nb_sqlite_transient(void) { return SQLITE_TRANSIENT; }

static inline int nb_sqlite_bind_text(sqlite3_stmt *s, int i, const char *t, int n) {
    return sqlite3_bind_text(s, i, t, n, SQLITE_TRANSIENT);
}
static inline int nb_sqlite_bind_blob(sqlite3_stmt *s, int i, const void *b, int n) {
    return sqlite3_bind_blob(s, i, b, n, SQLITE_TRANSIENT);
}
#endif
