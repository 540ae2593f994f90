/* SPDX-License-Identifier: MIT */
/* Records of the administration replies, and how people read them.
 *
 * A record is the list of TAG_STAT fields of one MSG_RECORD (or of a
 * MSG_DONE summary): dotted keys, each with a kind and a value, exactly like
 * a status reply. Parsing only indexes the frame; nothing is copied, so a
 * reply of millions of records costs one reused array, and JSON output
 * builds one small json.h tree per record.
 *
 * The parent chain is what makes a provenance record readable: the daemon
 * sends the requester's ancestors as parents.N.{pid,exe,cmdline}, N = 0
 * being the direct parent, up to pid 1. Each process is named by the
 * basename of its executable, except that a script run by an interpreter
 * (a shell, python, pypy, perl) is named by the script — the executable of
 * py3compile is python3.11, and of a maintainer script /usr/bin/dash — and
 * "python3 -m MODULE" by the module. So a chain reads
 * "dpkg → foo.postinst → py3compile", oldest ancestor first. */

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "output.h"
#include "record.h"
#include "util.h"

void record_done(Record *r) {
        free(r->fields);
        *r = RECORD_NULL;
}

int record_parse(Record *r, MsgReader *m) {
        MsgField f;
        int k;

        r->n_fields = 0;
        while ((k = msg_next(m, &f)) > 0) {
                RecordField rf;

                if (f.tag != TAG_STAT)
                        continue;
                k = field_stat(&f, &rf.key, &rf.kind, &rf.value, &rf.size);
                if (k < 0)
                        return k;
                if (r->n_fields >= RECORD_MAX_FIELDS)
                        return -E2BIG;
                if (r->n_fields == r->allocated) {
                        size_t a = r->allocated ? r->allocated * 2 : 32;
                        RecordField *n = realloc(r->fields, a * sizeof(*n));
                        if (!n)
                                return -ENOMEM;
                        r->fields = n;
                        r->allocated = a;
                }
                r->fields[r->n_fields++] = rf;
        }
        return k;
}

const RecordField *record_get(const Record *r, const char *key) {
        for (size_t i = r->n_fields; i > 0; i--)
                if (strcmp(r->fields[i - 1].key, key) == 0)
                        return &r->fields[i - 1];
        return NULL;
}

bool record_equals(const Record *r, const char *key, const char *s) {
        const RecordField *f = record_get(r, key);
        size_t n = strlen(s);

        return f && f->size == n && memcmp(f->value, s, n) == 0;
}

/* Copies a numeric field into @buf as a C string; -EBADMSG when it does not
 * fit or is not of kind 'n'. */
static int number_text(const Record *r, const char *key, char *buf, size_t size) {
        const RecordField *f = record_get(r, key);

        if (!f)
                return -ENOENT;
        if (f->kind != 'n' || f->size == 0 || f->size >= size ||
            !json_is_number((const char *)f->value, f->size))
                return -EBADMSG;
        memcpy(buf, f->value, f->size);
        buf[f->size] = '\0';
        return 0;
}

int record_get_double(const Record *r, const char *key, double *ret) {
        char buf[64], *end;
        double d;
        int k;

        k = number_text(r, key, buf, sizeof(buf));
        if (k < 0)
                return k;
        errno = 0;
        d = strtod(buf, &end); /* the client never calls setlocale(): '.' is the decimal point */
        if (*end != '\0' || errno != 0 || !isfinite(d))
                return -EBADMSG;
        *ret = d;
        return 0;
}

int record_get_u64(const Record *r, const char *key, uint64_t *ret) {
        char buf[64];
        int k;

        k = number_text(r, key, buf, sizeof(buf));
        if (k < 0)
                return k;
        return safe_atou64(buf, ret) < 0 ? -EBADMSG : 0;
}

int record_write_json(const Record *r, FILE *f) {
        _cleanup_(json_tree_freep) JsonTree *tree = NULL;
        int k;

        k = json_tree_new(&tree);
        if (k < 0)
                return k;
        for (size_t i = 0; i < r->n_fields; i++) {
                const RecordField *rf = &r->fields[i];
                k = json_tree_add(tree, rf->key, rf->kind, rf->value, rf->size);
                if (k < 0)
                        return k;
        }
        return json_tree_write(tree, f);
}

void record_write_cmdline(const RecordField *field, FILE *f) {
        const uint8_t *p = field->value;
        size_t n = field->size;

        /* /proc/PID/cmdline style: NUL-separated, usually with a final NUL. */
        while (n > 0 && p[n - 1] == '\0')
                n--;
        while (n > 0) {
                const uint8_t *nul = memchr(p, '\0', n);
                size_t len = nul ? (size_t)(nul - p) : n;

                output_write_text(f, p, len);
                if (!nul)
                        break;
                fputc(' ', f);
                p += len + 1;
                n -= len + 1;
        }
}

void record_write_value(const Record *r, const char *key, FILE *f) {
        const RecordField *field = record_get(r, key);

        if (!field || field->size == 0)
                fputc('-', f);
        else if (field->kind == 's')
                output_write_path(f, field->value, field->size);
        else
                output_write_text(f, field->value, field->size);
}

void format_local_time(double t, bool zone, char *buf, size_t size) {
        time_t s = (time_t)t; /* t >= 0: truncation is floor() */
        struct tm tm;

        if (!(t >= 0 && t < 1e15) || !localtime_r(&s, &tm) ||
            strftime(buf, size, zone ? "%Y-%m-%d %H:%M:%S %z" : "%Y-%m-%d %H:%M:%S", &tm) == 0)
                snprintf(buf, size, "%s", "?");
}

void record_format_time(const Record *r, bool zone, char *buf, size_t size) {
        double t;

        if (record_get_double(r, "time", &t) < 0)
                snprintf(buf, size, "%s", "-");
        else
                format_local_time(t, zone, buf, size);
}

/* --- process names and chains ---------------------------------------------- */

typedef struct Span {
        const uint8_t *p;
        size_t n;
} Span;

#define CMDLINE_MAX_WORDS 64u

static bool span_is(Span s, const char *word) {
        return s.n == strlen(word) && memcmp(s.p, word, s.n) == 0;
}

static bool span_starts_with(Span s, const char *prefix) {
        size_t n = strlen(prefix);
        return s.n >= n && memcmp(s.p, prefix, n) == 0;
}

static Span span_basename(Span s) {
        while (s.n > 1 && s.p[s.n - 1] == '/')
                s.n--;
        for (size_t i = s.n; i > 0; i--)
                if (s.p[i - 1] == '/')
                        return (Span){ s.p + i, s.n - i };
        return s;
}

/* Splits a command line into words: at NULs when it has any (the /proc
 * form, where a word may hold spaces), else at spaces. */
static size_t cmdline_words(Span c, Span *words, size_t max) {
        uint8_t sep = memchr(c.p, '\0', c.n) ? '\0' : ' ';
        size_t n = 0, i = 0;

        while (i < c.n && n < max) {
                size_t start = i;

                while (i < c.n && c.p[i] != sep)
                        i++;
                if (i > start)
                        words[n++] = (Span){ c.p + start, i - start };
                i++;
        }
        return n;
}

typedef enum Interpreter {
        INTERPRETER_NONE,
        INTERPRETER_SHELL,
        INTERPRETER_PYTHON,
        INTERPRETER_PERL,
} Interpreter;

static Interpreter interpreter_kind(Span name) {
        if (span_is(name, "sh") || span_is(name, "dash") || span_is(name, "bash") || span_is(name, "zsh") ||
            span_is(name, "ksh"))
                return INTERPRETER_SHELL;
        if (span_starts_with(name, "python") || span_starts_with(name, "pypy"))
                return INTERPRETER_PYTHON;
        if (span_starts_with(name, "perl"))
                return INTERPRETER_PERL;
        return INTERPRETER_NONE;
}

/* The script an interpreter runs, from its arguments @w[1..n): true and
 * *@ret for a script (or "-m MODULE"), false for code given inline (-c,
 * -e) or on standard input. Options that take a separate argument are
 * skipped with it. */
static bool interpreter_script(Interpreter kind, const Span *w, size_t n, Span *ret) {
        for (size_t i = 1; i < n; i++) {
                Span a = w[i];

                if (a.p[0] != '-' && !(kind == INTERPRETER_SHELL && a.p[0] == '+')) {
                        /* "bash /dev/fd/3": a script without a name */
                        if (span_starts_with(a, "/dev/fd/") || span_starts_with(a, "/proc/"))
                                return false;
                        *ret = span_basename(a);
                        return true;
                }
                if (span_is(a, "-"))
                        return false;
                if (span_is(a, "--")) {
                        if (i + 1 >= n)
                                return false;
                        *ret = span_basename(w[i + 1]);
                        return true;
                }
                switch (kind) {
                case INTERPRETER_PYTHON:
                        if (span_starts_with(a, "-c"))
                                return false;
                        if (span_is(a, "-m")) {
                                if (i + 1 >= n)
                                        return false;
                                *ret = w[i + 1];
                                return true;
                        }
                        if (span_starts_with(a, "-m")) {
                                *ret = (Span){ a.p + 2, a.n - 2 };
                                return true;
                        }
                        if (span_is(a, "-W") || span_is(a, "-X"))
                                i++;
                        break;
                case INTERPRETER_SHELL:
                        if (!span_starts_with(a, "--") && memchr(a.p, 'c', a.n))
                                return false; /* sh -c, sh -ec */
                        if (span_is(a, "-o") || span_is(a, "+o"))
                                i++;
                        break;
                case INTERPRETER_PERL:
                        if (memchr(a.p, 'e', a.n) || memchr(a.p, 'E', a.n))
                                return false;
                        break;
                default:
                        return false;
                }
        }
        return false;
}

/* The name of a process in a chain (see the top of this file). */
static Span process_name(const RecordField *exe, const RecordField *cmdline) {
        Span words[CMDLINE_MAX_WORDS], name = { (const uint8_t *)"?", 1 }, script;
        size_t n = 0;
        Interpreter kind;

        if (cmdline && cmdline->size > 0)
                n = cmdline_words((Span){ cmdline->value, cmdline->size }, words, ELEMENTSOF(words));
        if (exe && exe->size > 0)
                name = span_basename((Span){ exe->value, exe->size });
        else if (n > 0)
                name = span_basename(words[0]);

        kind = interpreter_kind(name);
        if (kind != INTERPRETER_NONE && interpreter_script(kind, words, n, &script) && script.n > 0)
                return script;
        return name;
}

typedef struct ChainEntry {
        const RecordField *exe;
        const RecordField *cmdline;
        const RecordField *pid;
} ChainEntry;

/* Parses "parents.N.FIELD"; returns N, or -1 for another key. */
static long parent_index(const char *key, const char **ret_field) {
        const char *p = key + strlen("parents.");
        char *end;
        long n;

        if (strncmp(key, "parents.", strlen("parents.")) != 0 || *p < '0' || *p > '9')
                return -1;
        errno = 0;
        n = strtol(p, &end, 10);
        if (errno != 0 || *end != '.' || n < 0)
                return -1;
        *ret_field = end + 1;
        return n;
}

bool record_write_chain(const Record *r, FILE *f) {
        ChainEntry chain[RECORD_MAX_CHAIN] = {};
        const RecordField *exe = record_get(r, "exe"), *cmdline = record_get(r, "cmdline");
        bool truncated = false;
        size_t depth = 0;

        for (size_t i = 0; i < r->n_fields; i++) {
                const char *field;
                long n = parent_index(r->fields[i].key, &field);

                if (n < 0)
                        continue;
                if ((unsigned long)n >= RECORD_MAX_CHAIN) {
                        truncated = true;
                        continue;
                }
                if (strcmp(field, "exe") == 0)
                        chain[n].exe = &r->fields[i];
                else if (strcmp(field, "cmdline") == 0)
                        chain[n].cmdline = &r->fields[i];
                else if (strcmp(field, "pid") == 0)
                        chain[n].pid = &r->fields[i];
                else
                        continue;
                depth = MAX(depth, (size_t)n + 1);
        }
        if (depth == 0 && (!exe || exe->size == 0) && (!cmdline || cmdline->size == 0))
                return false;

        if (truncated)
                fputs("… → ", f);
        for (size_t i = depth; i > 0; i--) {
                Span name = process_name(chain[i - 1].exe, chain[i - 1].cmdline);
                output_write_path(f, name.p, name.n);
                fputs(" → ", f);
        }
        Span self = process_name(exe, cmdline);
        output_write_path(f, self.p, self.n);
        return true;
}
