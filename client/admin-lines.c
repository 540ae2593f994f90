/* SPDX-License-Identifier: MIT */
/* The verbs whose replies print one line per record: history and audit
 * (a table, newest first), verify and repair ("PATH: PROBLEM: ..."),
 * clean (a count, and with -v each file), with their end lines and exit
 * codes; and the field-printing helpers every verb's printer uses. */

#include <inttypes.h>
#include <stdio.h>

#include "admin-verb.h"
#include "json.h"
#include "output.h"

void admin_write_field_padded(const Record *r, const char *key, size_t width) {
        const RecordField *f = record_get(r, key);
        size_t used = f && f->size > 0 ? f->size : 1;

        record_write_value(r, key, stdout);
        for (; used < width; used++)
                fputc(' ', stdout);
}

void admin_write_field_right(const Record *r, const char *key, size_t width) {
        const RecordField *f = record_get(r, key);

        for (size_t used = f && f->size > 0 ? f->size : 1; used < width; used++)
                fputc(' ', stdout);
        record_write_value(r, key, stdout);
}

bool admin_has_field(const Record *r, const char *key) {
        const RecordField *f = record_get(r, key);
        return f && f->size > 0;
}

void admin_write_label(const char *label) {
        printf("    %-15s", label);
}

void admin_write_dpkg_script(const Record *r) {
        if (!admin_has_field(r, "dpkg_script"))
                return;
        fputs(" (", stdout);
        record_write_value(r, "dpkg_script", stdout);
        if (admin_has_field(r, "dpkg_package")) {
                fputs(" of ", stdout);
                record_write_value(r, "dpkg_package", stdout);
        }
        fputc(')', stdout);
}

/* --- history and audit ------------------------------------------------------ */

int history_record(AdminRun *run, const Record *r, const MsgReader *m) {
        char when[64];

        if (!run->header_printed) {
                printf("%-19s  %-10s  %-20s  %7s  %-20s  %s\n", "TIME", "OUTCOME", "PACKAGE", "PID", "EXE",
                       "TARGET");
                run->header_printed = true;
        }
        record_format_time(r, false, when, sizeof(when));
        printf("%-19s  ", when);
        admin_write_field_padded(r, "outcome", 10);
        fputs("  ", stdout);
        admin_write_field_padded(r, "package", 20);
        fputs("  ", stdout);
        admin_write_field_right(r, "pid", 7);
        fputs("  ", stdout);
        admin_write_field_padded(r, "exe", 20);
        fputs("  ", stdout);
        record_write_value(r, admin_has_field(r, "target") ? "target" : "source", stdout);
        if (admin_has_field(r, "error_type")) {
                fputs("  ", stdout);
                record_write_value(r, "error_type", stdout);
        }
        /* A request from a maintainer script says which one. */
        if (admin_has_field(r, "dpkg_script")) {
                fputs("  by ", stdout);
                if (admin_has_field(r, "tool"))
                        record_write_value(r, "tool", stdout);
                else
                        fputc('-', stdout);
                admin_write_dpkg_script(r);
        }
        fputc('\n', stdout);
        return 0;
}

int audit_record(AdminRun *run, const Record *r, const MsgReader *m) {
        char when[64];

        if (!run->header_printed) {
                printf("%-19s  %7s  %-20s  %s\n", "TIME", "PID", "EXE", "PATH");
                run->header_printed = true;
        }
        record_format_time(r, false, when, sizeof(when));
        printf("%-19s  ", when);
        admin_write_field_right(r, "pid", 7);
        fputs("  ", stdout);
        admin_write_field_padded(r, "exe", 20);
        fputs("  ", stdout);
        record_write_value(r, "path", stdout);
        fputc('\n', stdout);
        fputs("    by ", stdout);
        if (!record_write_chain(r, stdout))
                fputc('-', stdout);
        fputc('\n', stdout);
        return 0;
}

int log_done(AdminRun *run, const Record *summary) {
        if (!run->o->json && run->n_records == 0 && !run->o->quiet)
                printf("no records\n");
        return EXIT_OK;
}

/* --- verify, repair, clean -------------------------------------------------- */

int verify_record(AdminRun *run, const Record *r, const MsgReader *m) {
        record_write_value(r, "path", stdout);
        fputs(": ", stdout);
        record_write_value(r, "problem", stdout);
        if (admin_has_field(r, "detail")) {
                fputs(": ", stdout);
                record_write_value(r, "detail", stdout);
        }
        fputc('\n', stdout);
        return 0;
}

/* Exactly {"path","problem","detail"}, whatever else the record holds. */
int verify_json(AdminRun *run, const Record *r) {
        static const char *const keys[] = { "path", "problem", "detail" };

        fputc('{', stdout);
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                const RecordField *f = record_get(r, keys[i]);

                printf("%s\"%s\":", i > 0 ? "," : "", keys[i]);
                json_write_string(stdout, f ? f->value : (const uint8_t *)"", f ? f->size : 0);
        }
        fputc('}', stdout);
        return 0;
}

/* A count from the summary, else @fallback. */
static uint64_t summary_count(const Record *s, const char *key, uint64_t fallback) {
        uint64_t v;
        return record_get_u64(s, key, &v) >= 0 ? v : fallback;
}

int verify_done(AdminRun *run, const Record *summary) {
        uint64_t problems = summary_count(summary, "problems", run->n_records), checked;

        if (!run->o->json && !run->o->quiet) {
                if (record_get_u64(summary, "checked", &checked) >= 0)
                        printf("%" PRIu64 " checked, %" PRIu64 " problems\n", checked, problems);
                else
                        printf("%" PRIu64 " problems\n", problems);
        }
        return problems > 0 || run->n_records > 0 ? EXIT_FILES_FAILED : EXIT_OK;
}

int repair_record(AdminRun *run, const Record *r, const MsgReader *m) {
        record_write_value(r, "path", stdout);
        fputs(": ", stdout);
        record_write_value(r, "problem", stdout);
        fputs(": ", stdout);
        record_write_value(r, "action", stdout);
        fputs(" (", stdout);
        record_write_value(r, "result", stdout);
        fputc(')', stdout);
        if (admin_has_field(r, "detail")) {
                fputs(": ", stdout);
                record_write_value(r, "detail", stdout);
        }
        fputc('\n', stdout);
        return 0;
}

int repair_done(AdminRun *run, const Record *summary) {
        uint64_t failed = summary_count(summary, "failed", run->n_failed);
        uint64_t repaired = summary_count(summary, "repaired", run->n_records - run->n_failed);

        if (!run->o->json && !run->o->quiet)
                printf("%" PRIu64 " repaired, %" PRIu64 " failed\n", repaired, failed);
        return failed > 0 || run->n_failed > 0 ? EXIT_FILES_FAILED : EXIT_OK;
}

int clean_record(AdminRun *run, const Record *r, const MsgReader *m) {
        if (!run->o->verbose)
                return 0;
        fputs("removed ", stdout);
        record_write_value(r, "path", stdout);
        fputc('\n', stdout);
        return 0;
}

int clean_done(AdminRun *run, const Record *summary) {
        if (!run->o->json && !run->o->quiet)
                printf("%" PRIu64 " removed\n", summary_count(summary, "removed", run->n_records));
        return EXIT_OK;
}
