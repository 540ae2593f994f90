/* SPDX-License-Identifier: MIT */
/* why: who wrote a .pyc, and when. The first line explains the summary
 * (is the file on disk what pycqueued last wrote?) that only comes with
 * MSG_DONE, so the records are kept until then — bounded in number and
 * bytes; past the bound only a count of the older ones is printed. Then one
 * block per write, newest first: the process, its command line and parent
 * chain, package, tool (and the maintainer script that ran it),
 * interpreter, hashes and error. */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin-verb.h"
#include "output.h"

#define WHY_MAX_KEPT_RECORDS 100000u
#define WHY_MAX_KEPT_BYTES (256u * 1024u * 1024u)

int why_keep(AdminRun *run, const Record *r, const MsgReader *m) {
        KeptFrame k;

        if (run->n_kept >= WHY_MAX_KEPT_RECORDS || run->kept_bytes + m->size > WHY_MAX_KEPT_BYTES) {
                run->not_kept++;
                return 0;
        }
        if (run->n_kept == run->allocated_kept) {
                size_t a = run->allocated_kept ? run->allocated_kept * 2 : 16;
                KeptFrame *n = realloc(run->kept, a * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                run->kept = n;
                run->allocated_kept = a;
        }
        k.data = malloc(m->size);
        if (!k.data)
                return -ENOMEM;
        memcpy(k.data, m->data, m->size);
        k.size = m->size;
        run->kept[run->n_kept++] = k;
        run->kept_bytes += k.size;
        return 0;
}

static void why_print_disk_state(AdminRun *run, const Record *s) {
        const RecordField *target = record_get(s, "target");
        const RecordField *sha = record_get(s, "on_disk_sha256");

        if (target && target->size > 0)
                output_write_path(stdout, target->value, target->size);
        else
                output_write_path(stdout, run->args->paths[0], strlen(run->args->paths[0]));
        fputs(": ", stdout);
        if (record_equals(s, "on_disk", "matches"))
                fputs("on disk, identical to the last write by pycqueued", stdout);
        else if (record_equals(s, "on_disk", "differs"))
                fputs("on disk, but NOT what pycqueued last wrote: changed by another process since",
                      stdout);
        else if (record_equals(s, "on_disk", "missing"))
                fputs("not on disk: removed since pycqueued last wrote it", stdout);
        else if (record_equals(s, "on_disk", "never-written"))
                fputs(sha && sha->size > 0 ? "on disk, but never written by pycqueued"
                                           : "never written by pycqueued",
                      stdout);
        else if (admin_has_field(s, "on_disk")) {
                fputs("on disk: ", stdout);
                record_write_value(s, "on_disk", stdout);
        } else
                fputs("state on disk unknown", stdout);
        if (sha && sha->size > 0) {
                fputs(" (sha256 ", stdout);
                output_write_text(stdout, sha->value, sha->size);
                fputc(')', stdout);
        }
        fputc('\n', stdout);
}

static void why_print_process(const Record *r) {
        static const char *const ids[] = { "pid", "uid", "gid" };
        const char *sep = "";

        if (!admin_has_field(r, "pid") && !admin_has_field(r, "uid") && !admin_has_field(r, "exe"))
                return;
        admin_write_label("process:");
        for (size_t i = 0; i < ELEMENTSOF(ids); i++)
                if (admin_has_field(r, ids[i])) {
                        printf("%s%s ", sep, ids[i]);
                        record_write_value(r, ids[i], stdout);
                        sep = ", ";
                }
        if (admin_has_field(r, "exe")) {
                fputs(sep, stdout);
                record_write_value(r, "exe", stdout);
        }
        fputc('\n', stdout);
}

static void why_print_interpreter(const Record *r) {
        if (!admin_has_field(r, "interpreter") && !admin_has_field(r, "cache_tag"))
                return;
        admin_write_label("interpreter:");
        record_write_value(r, "interpreter", stdout);
        if (admin_has_field(r, "cache_tag")) {
                fputs(" (", stdout);
                record_write_value(r, "cache_tag", stdout);
                fputc(')', stdout);
        }
        if (admin_has_field(r, "opt_level")) {
                fputs(", optimization ", stdout);
                record_write_value(r, "opt_level", stdout);
        }
        if (admin_has_field(r, "invalidation_mode")) {
                fputs(", ", stdout);
                record_write_value(r, "invalidation_mode", stdout);
        }
        fputc('\n', stdout);
}

static void why_print_line(const Record *r, const char *label, const char *key) {
        if (!admin_has_field(r, key))
                return;
        admin_write_label(label);
        record_write_value(r, key, stdout);
        fputc('\n', stdout);
}

/* "tool: py3compile (postinst of python3-foo)": the maintainer script that
 * ran the tool, when it was one. */
static void why_print_tool(const Record *r) {
        if (!admin_has_field(r, "tool") && !admin_has_field(r, "dpkg_script"))
                return;
        admin_write_label("tool:");
        admin_write_tool(r);
        fputc('\n', stdout);
}

static void why_print_record(const Record *r, const Record *summary) {
        const RecordField *target = record_get(r, "target"), *main_target = record_get(summary, "target");
        char when[64];

        record_format_time(r, true, when, sizeof(when));
        printf("\n%s  ", when);
        record_write_value(r, "outcome", stdout);
        fputc('\n', stdout);

        why_print_process(r);
        if (admin_has_field(r, "cmdline")) {
                admin_write_label("command line:");
                record_write_cmdline(record_get(r, "cmdline"), stdout);
                fputc('\n', stdout);
        }
        admin_write_label("chain:");
        if (!record_write_chain(r, stdout))
                fputc('-', stdout);
        fputc('\n', stdout);
        why_print_line(r, "package:", "package");
        why_print_tool(r);
        why_print_line(r, "root:", "root");
        why_print_interpreter(r);
        /* Asked about a source, the records may be of several targets. */
        if (target && target->size > 0 &&
            !(main_target && main_target->size == target->size &&
              memcmp(main_target->value, target->value, target->size) == 0))
                why_print_line(r, "target:", "target");
        why_print_line(r, "source:", "source");
        why_print_line(r, "source sha256:", "source_sha256");
        if (admin_has_field(r, "pyc_sha256")) {
                admin_write_label("pyc sha256:");
                record_write_value(r, "pyc_sha256", stdout);
                if (record_equals(r, "matches_disk", "true"))
                        fputs(" (the file on disk)", stdout);
                fputc('\n', stdout);
        }
        if (admin_has_field(r, "error_type") || admin_has_field(r, "error_message")) {
                uint64_t line = 0;

                admin_write_label("error:");
                record_write_value(r, "error_type", stdout);
                if (record_get_u64(r, "error_line", &line) >= 0 && line > 0)
                        printf(" at line %" PRIu64, line);
                if (admin_has_field(r, "error_message")) {
                        fputs(": ", stdout);
                        record_write_value(r, "error_message", stdout);
                }
                fputc('\n', stdout);
        }
}

int why_done(AdminRun *run, const Record *summary) {
        const char *path = run->args->paths[0];

        if (run->o->json) {
                if (run->n_records == 0)
                        output_error("%s: never written by pycqueued", path);
                return run->n_records > 0 ? EXIT_OK : EXIT_FILES_FAILED;
        }

        why_print_disk_state(run, summary);
        for (size_t i = 0; i < run->n_kept; i++) {
                MsgReader m;
                int r;

                r = msg_parse(run->kept[i].data, run->kept[i].size, &m);
                if (r < 0)
                        return r;
                r = record_parse(&run->record, &m);
                if (r < 0)
                        return r;
                why_print_record(&run->record, summary);
        }
        if (run->not_kept > 0)
                printf("\n… and %" PRIu64 " older records (see --limit, or --json for all)\n",
                       run->not_kept);
        return run->n_records > 0 ? EXIT_OK : EXIT_FILES_FAILED;
}
