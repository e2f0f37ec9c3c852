// Usage-record inserts straight against libsqlite3, for the usage schemas the SQL stores have had:
//   1: usage_records with its id primary key and indexes on (vkey_id, started_at) and (started_at)
//   2: usage_records with its id primary key and (started_at), plus usage_hourly upserted per transaction
//   3: as 2, but usage_records keyed by (started_at, id) WITHOUT ROWID: one b-tree instead of three
// with the store's settings (WAL, synchronous=NORMAL, checkpoint every 200 pages, 64-row statements).
// Prints CPU µs a record and WAL frames a commit.  See bench/usage-schema.sh.
//   usage-schema SCHEMA RECORDS RECORDS_PER_COMMIT KEYS DIR
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long frames, last_frames, commits;

static int count_frames(void *arg, sqlite3 *db, const char *name, int n) {
    (void)arg;
    frames += n >= last_frames ? n - last_frames : n;
    last_frames = n;
    commits++;
    if (n >= 200) { sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, 0, 0); last_frames = 0; }
    return 0;
}

static void run(sqlite3 *db, const char *sql) {
    char *err = 0;
    if (sqlite3_exec(db, sql, 0, 0, &err) != SQLITE_OK) { fprintf(stderr, "%s: %s\n", sql, err); exit(1); }
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, 0) != SQLITE_OK) { fprintf(stderr, "%s\n", sqlite3_errmsg(db)); exit(1); }
    return st;
}

static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: %s SCHEMA(1|2|3) RECORDS RECORDS_PER_COMMIT KEYS DIR\n", argv[0]); return 2; }
    int schema = atoi(argv[1]), total = atoi(argv[2]), per_commit = atoi(argv[3]), keys = atoi(argv[4]);
    per_commit = (per_commit + 63) / 64 * 64;
    char path[4096];
    snprintf(path, sizeof path, "%s/usage-schema-%d.db", argv[5], getpid());
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) { fprintf(stderr, "cannot open %s\n", path); return 1; }
    run(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0");
    char create[1024];
    snprintf(create, sizeof create,
             "CREATE TABLE usage_records (id TEXT NOT NULL, vkey_id TEXT NOT NULL, connection_id TEXT NOT NULL, model TEXT NOT NULL,"
             " prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, estimated INTEGER NOT NULL, status INTEGER NOT NULL,"
             " latency_ms INTEGER NOT NULL, stream INTEGER NOT NULL, started_at INTEGER NOT NULL, ended_at INTEGER NOT NULL, node_id TEXT NOT NULL,"
             " PRIMARY KEY (%s))%s", schema == 3 ? "started_at, id" : "id", schema == 3 ? " WITHOUT ROWID" : "");
    run(db, create);
    if (schema < 3) run(db, "CREATE INDEX usage_time ON usage_records (started_at)");
    if (schema == 1) run(db, "CREATE INDEX usage_vkey_time ON usage_records (vkey_id, started_at)");
    else run(db, "CREATE TABLE usage_hourly (hour_start INTEGER NOT NULL, vkey_id TEXT NOT NULL, model TEXT NOT NULL, requests INTEGER NOT NULL,"
                 " prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, PRIMARY KEY (hour_start, vkey_id, model));"
                 " CREATE INDEX usage_hourly_vkey ON usage_hourly (vkey_id, hour_start)");
    char insert[16384] = "INSERT OR IGNORE INTO usage_records VALUES ", upsert[8192] = "INSERT INTO usage_hourly VALUES ";
    for (int r = 0; r < 64; r++) {
        strcat(insert, r ? ",(?,?,?,?,?,?,?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?,?,?,?,?,?,?)");
        strcat(upsert, r ? ",(?,?,?,?,?,?)" : "(?,?,?,?,?,?)");
    }
    strcat(upsert, " ON CONFLICT (hour_start, vkey_id, model) DO UPDATE SET requests = usage_hourly.requests + excluded.requests,"
                   " prompt_tokens = usage_hourly.prompt_tokens + excluded.prompt_tokens,"
                   " completion_tokens = usage_hourly.completion_tokens + excluded.completion_tokens");
    sqlite3_stmt *ins = prepare(db, insert), *up = schema >= 2 ? prepare(db, upsert) : 0;
    sqlite3_wal_hook(db, count_frames, 0);
    long long ms = 1764460000000LL;
    unsigned long long n = 0;
    // The requests' keys in turn; per commit, one hourly row per key (what a commit's records sum to).
    long long *per_key = calloc(keys, sizeof *per_key);
    int *present_keys = calloc(keys, sizeof *present_keys);
    double start = cpu_seconds();
    for (int done = 0; done < total; done += per_commit) {
        run(db, "BEGIN IMMEDIATE");
        memset(per_key, 0, keys * sizeof *per_key);
        for (int k = 0; k < per_commit; k += 64) {
            for (int r = 0; r < 64; r++, n++) {
                char id[48], key[32];
                snprintf(id, sizeof id, "u_%012llx%016llx", ms, n);
                snprintf(key, sizeof key, "vk_%024llu", n % keys);
                per_key[n % keys]++;
                if (n % 45 == 0) ms++;
                int b = r * 13;
                sqlite3_bind_text(ins, b + 1, id, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(ins, b + 2, key, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(ins, b + 3, "cn_0123456789abcdef01234567", -1, SQLITE_STATIC);
                sqlite3_bind_text(ins, b + 4, "gpt-4o-mini", -1, SQLITE_STATIC);
                sqlite3_bind_int64(ins, b + 5, 57); sqlite3_bind_int64(ins, b + 6, 31); sqlite3_bind_int64(ins, b + 7, 0);
                sqlite3_bind_int64(ins, b + 8, 200); sqlite3_bind_int64(ins, b + 9, 3); sqlite3_bind_int64(ins, b + 10, 0);
                sqlite3_bind_int64(ins, b + 11, ms - 3); sqlite3_bind_int64(ins, b + 12, ms);
                sqlite3_bind_text(ins, b + 13, "node-1", -1, SQLITE_STATIC);
            }
            if (sqlite3_step(ins) != SQLITE_DONE) { fprintf(stderr, "%s\n", sqlite3_errmsg(db)); return 1; }
            sqlite3_reset(ins);
        }
        if (up) {
            int present = 0;  // the keys this commit has records of, as the store sums them
            for (int k = 0; k < keys; k++) if (per_key[k]) present_keys[present++] = k;
            for (int k0 = 0; k0 < present; k0 += 64) {
                for (int r = 0; r < 64; r++) {
                    // A short last statement repeats its last row with zero sums.
                    int k = present_keys[k0 + r < present ? k0 + r : present - 1];
                    long long c = k0 + r < present ? per_key[k] : 0;
                    char key[32];
                    snprintf(key, sizeof key, "vk_%024d", k);
                    int b = r * 6;
                    sqlite3_bind_int64(up, b + 1, ms / 3600000 * 3600000);
                    sqlite3_bind_text(up, b + 2, key, -1, SQLITE_TRANSIENT);
                    sqlite3_bind_text(up, b + 3, "gpt-4o-mini", -1, SQLITE_STATIC);
                    sqlite3_bind_int64(up, b + 4, c); sqlite3_bind_int64(up, b + 5, 57 * c); sqlite3_bind_int64(up, b + 6, 31 * c);
                }
                if (sqlite3_step(up) != SQLITE_DONE) { fprintf(stderr, "%s\n", sqlite3_errmsg(db)); return 1; }
                sqlite3_reset(up);
            }
        }
        run(db, "COMMIT");
    }
    double used = cpu_seconds() - start;
    printf("schema %d  %6d keys  %5d records a commit: %5.2f CPU µs a record, %6.1f WAL frames a commit\n",
           schema, keys, per_commit, used * 1e6 / total, (double)frames / commits);
    sqlite3_finalize(ins);
    if (up) sqlite3_finalize(up);
    sqlite3_close(db);
    unlink(path);
    char side[4200];
    snprintf(side, sizeof side, "%s-wal", path); unlink(side);
    snprintf(side, sizeof side, "%s-shm", path); unlink(side);
    return 0;
}
