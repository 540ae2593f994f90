/* SPDX-License-Identifier: MIT */
/* The decisions py3compile makes before anything is compiled, taken the way
 * Debian 12's dh-python takes them, so that the front-ends compile the same
 * set of files for the same versions:
 *
 *  - the supported versions come from debian_defaults (the environment may
 *    override them, as for dh-python); a version is installed when
 *    /usr/bin/pythonX.Y exists;
 *  - a -V range selects among the supported installed versions, except that
 *    a single installed version is taken even when it is not supported;
 *  - an exclusion rule (a bcep line or a -X regex) removes versions from the
 *    files under its directory: "dir" all of them, "file" one path, "re"
 *    those whose absolute or directory-relative path matches at its start;
 *  - a file under /usr/lib/python3.X/dist-packages is compiled for 3.X only.
 *
 * Version sets are bit masks over a small table of known versions. Regexes
 * are POSIX extended and anchored at the start of the path, which is what
 * re.match does; Python-only syntax is a usage error, not a silent miss. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "debpython.h"
#include "list.h"
#include "macro.h"
#include "util.h"

#define DEBPYTHON_MAX_LINE 4096
#define DEBPYTHON_MAX_DEPTH 256

/* --- versions --------------------------------------------------------------- */

/* Parses "X.Y" (after an optional "python") at @s; returns the characters
 * read, or 0 when there is no version. */
static size_t parse_version(const char *s, PyVersion *ret) {
        const char *p = s;
        unsigned long major, minor;
        char *end;

        if (strncmp(p, "python", 6) == 0)
                p += 6;
        if (*p < '0' || *p > '9')
                return 0;
        major = strtoul(p, &end, 10);
        if (*end != '.' || end[1] < '0' || end[1] > '9')
                return 0;
        minor = strtoul(end + 1, &end, 10);
        if (major > 99 || minor > 999)
                return 0;
        *ret = PYVERSION((int)major, (int)minor);
        return (size_t)(end - s);
}

static int add_known(DebPython *d, PyVersion v, size_t *ret_index) {
        for (size_t i = 0; i < d->n_known; i++)
                if (d->known[i] == v) {
                        *ret_index = i;
                        return 0;
                }
        if (d->n_known >= DEBPYTHON_MAX_VERSIONS)
                return -E2BIG;
        d->known[d->n_known] = v;
        *ret_index = d->n_known++;
        return 0;
}

int debpython_version_bit(DebPython *d, PyVersion v, VersionMask *ret) {
        size_t i;
        int r = add_known(d, v, &i);

        if (r < 0)
                return r;
        *ret = 1u << i;
        return 0;
}

static int parse_supported(DebPython *d, const char *list) {
        const char *p = list;

        while (*p) {
                PyVersion v;
                size_t n, i;
                int r;

                p += strspn(p, " \t,");
                if (!*p)
                        break;
                n = parse_version(p, &v);
                if (n == 0)
                        return -EINVAL;
                r = add_known(d, v, &i);
                if (r < 0)
                        return r;
                p += n;
        }
        d->n_supported = d->n_known;
        return d->n_supported > 0 ? 0 : -EINVAL;
}

/* The value of "@key = value" in the [DEFAULT] section of debian_defaults. */
static int defaults_value(FILE *f, const char *key, char **ret) {
        char line[DEBPYTHON_MAX_LINE];
        size_t klen = strlen(key);

        rewind(f);
        while (fgets(line, sizeof(line), f)) {
                char *p = line, *v;

                if (strncmp(p, key, klen) != 0)
                        continue;
                p += klen;
                p += strspn(p, " \t");
                if (*p != '=' && *p != ':')
                        continue;
                v = p + 1 + strspn(p + 1, " \t");
                v[strcspn(v, "\r\n")] = 0;
                *ret = strdup(v);
                return *ret ? 0 : -ENOMEM;
        }
        return -ENOENT;
}

int debpython_load(DebPython *d, char **ret_message) {
        _cleanup_free_ char *supported = NULL, *def = NULL;
        const char *e_supported = getenv("DEBPYTHON3_SUPPORTED");
        const char *e_default = getenv("DEBPYTHON3_DEFAULT");
        const char *path = DEBPYTHON_DEFAULTS;
        PyVersion v;
        int r;

        *d = (DebPython){};
        if (!e_supported || !*e_supported || !e_default || !*e_default) {
                FILE *f = fopen(path, "re");

                if (!f)
                        return error_message(ret_message, -errno, "cannot read %s: %m", path);
                if (!e_default || !*e_default)
                        (void)defaults_value(f, "default-version", &def);
                if (!e_supported || !*e_supported)
                        (void)defaults_value(f, "supported-versions", &supported);
                fclose(f);
        }
        r = parse_supported(d, e_supported && *e_supported ? e_supported : supported ? supported : "");
        if (r < 0)
                return error_message(ret_message, r, "no supported Python version in %s",
                                     e_supported && *e_supported ? "$DEBPYTHON3_SUPPORTED" : path);
        if (parse_version(e_default && *e_default ? e_default : def ? def : "", &v) == 0)
                return error_message(ret_message, -EINVAL, "no default Python version in %s",
                                     e_default && *e_default ? "$DEBPYTHON3_DEFAULT" : path);
        d->default_version = v;
        return 0;
}

bool debpython_installed(PyVersion v) {
        char path[64];

        snprintf(path, sizeof(path), "/usr/bin/python%d.%d", PYVERSION_MAJOR(v), PYVERSION_MINOR(v));
        return access(path, F_OK) == 0;
}

int version_range_parse(const char *s, VersionRange *ret) {
        PyVersion v1 = 0, v2 = 0;
        bool lead = false, trail = false;
        const char *p = s;
        size_t n;

        if (strcmp(s, "") == 0 || strcmp(s, "-") == 0) {
                *ret = (VersionRange){};
                return 0;
        }
        if (*p == '-') {
                lead = true;
                p++;
        }
        /* dh-python's pattern: one digit, a dot, digits. */
        if (p[0] < '0' || p[0] > '9' || p[1] != '.')
                return -EINVAL;
        n = parse_version(p, &v1);
        if (n == 0)
                return -EINVAL;
        p += n;
        if (*p == '-') {
                trail = true;
                p++;
                if (p[0] >= '0' && p[0] <= '9' && p[1] == '.')
                        (void)parse_version(p, &v2);
        }
        /* Whatever follows is ignored: the pattern only has to match a prefix. */
        if (!lead && !trail) {
                *ret = (VersionRange){ v1, v1 };
                return 0;
        }
        if (lead)
                *ret = (VersionRange){ 0, v1 };
        else
                *ret = (VersionRange){ v1, v2 };
        if (ret->min && ret->max && ret->min > ret->max)
                return -EINVAL;
        return 0;
}

int debpython_requested(DebPython *d, const VersionRange *range, VersionMask *ret) {
        VersionMask mask = 0;

        if (range->min && range->min == range->max && debpython_installed(range->min))
                return debpython_version_bit(d, range->min, ret);

        for (size_t i = 0; i < d->n_supported; i++) {
                PyVersion v = d->known[i];
                bool in;

                if (!range->min && !range->max)
                        in = true;
                else if (range->min == range->max)
                        in = v == range->min;
                else
                        in = v >= range->min && (!range->max || v < range->max);
                if (in && debpython_installed(v))
                        mask |= 1u << i;
        }
        *ret = mask;
        return 0;
}

VersionMask debpython_first(const DebPython *d, VersionMask mask) {
        int best = -1;

        /* The default if present, else the lowest newer one, else the highest older one. */
        for (size_t i = 0; i < d->n_known; i++) {
                PyVersion v = d->known[i], b;

                if (!(mask & (1u << i)))
                        continue;
                if (best < 0) {
                        best = (int)i;
                        continue;
                }
                b = d->known[best];
                if (v == d->default_version ||
                    (b != d->default_version &&
                     ((v > d->default_version && (b < d->default_version || v < b)) ||
                      (v < d->default_version && b < d->default_version && v > b))))
                        best = (int)i;
        }
        return best < 0 ? 0 : 1u << best;
}

/* --- exclusions -------------------------------------------------------------- */

int exclude_regex_compile(const char *pattern, regex_t **ret) {
        _cleanup_free_ regex_t *re = malloc(sizeof(regex_t));

        if (!re)
                return -ENOMEM;
        if (regcomp(re, pattern, REG_EXTENDED) != 0)
                return -EINVAL;
        *ret = TAKE_PTR(re);
        return 0;
}

/* re.match: a match that starts at the first character. POSIX returns the
 * leftmost match, so one at offset 0 is found when it exists. */
static bool regex_match_start(const regex_t *re, const char *s) {
        regmatch_t m[1];

        return regexec(re, s, 1, m, 0) == 0 && m[0].rm_so == 0;
}

void exclude_list_done(ExcludeList *l) {
        for (size_t i = 0; i < l->n; i++) {
                free(l->rules[i].dname);
                if (l->rules[i].owns_regex && l->rules[i].regex) {
                        regfree(l->rules[i].regex);
                        free(l->rules[i].regex);
                }
        }
        free(l->rules);
        *l = (ExcludeList){};
}

static int exclude_add(ExcludeList *l, ExcludeType type, VersionMask versions, const char *dname,
                       regex_t *regex, bool owns_regex) {
        char *copy = strdup(dname);

        if (!copy || GREEDY_REALLOC(l->rules, l->allocated, l->n + 1) < 0) {
                free(copy);
                return -ENOMEM;
        }
        l->rules[l->n++] = (ExcludeRule){ type, versions, copy, regex, owns_regex };
        return 0;
}

/* One bcep line: "TYPE|VRANGE|DIR[|PATTERN]". Returns 0 when the line was
 * skipped, 1 when added. */
static int bcep_line(DebPython *d, char *line, ExcludeList *l) {
        _cleanup_free_ char *dname = NULL;
        char *fields[4] = {}, *p = line;
        regex_t *regex = NULL;
        ExcludeType type;
        VersionRange range;
        VersionMask versions;
        size_t n = 0;
        int r;

        while (n < 3) {
                char *bar = strchr(p, '|');
                fields[n++] = p;
                if (!bar)
                        break;
                *bar = 0;
                p = bar + 1;
                if (n == 3)
                        fields[n++] = p; /* the pattern keeps any further '|' */
        }
        if (n < 3)
                return 0;
        if (strcmp(fields[0], "dir") == 0)
                type = EXCLUDE_DIR;
        else if (strcmp(fields[0], "file") == 0)
                type = EXCLUDE_FILE;
        else if (strcmp(fields[0], "re") == 0)
                type = EXCLUDE_RE;
        else
                return 0;
        if (version_range_parse(fields[1], &range) < 0)
                return 0;
        /* The rule's versions: supported and installed ones in the range (no single-version exception). */
        versions = 0;
        for (size_t i = 0; i < d->n_supported; i++) {
                PyVersion v = d->known[i];
                bool in = (!range.min && !range.max) ? true
                          : range.min == range.max   ? v == range.min
                                                     : v >= range.min && (!range.max || v < range.max);
                if (in && debpython_installed(v))
                        versions |= 1u << i;
        }
        if (!versions)
                return 0;
        if (type == EXCLUDE_FILE)
                dname = strdup(fields[2]);
        else {
                size_t len = strlen(fields[2]);
                while (len > 0 && fields[2][len - 1] == '/')
                        len--;
                if (asprintf(&dname, "%.*s/", (int)len, fields[2]) < 0)
                        dname = NULL;
        }
        if (!dname)
                return -ENOMEM;
        if (type == EXCLUDE_RE || n < 4 || *fields[3]) {
                r = exclude_regex_compile(n < 4 ? ".*" : fields[3], &regex);
                if (r == -EINVAL)
                        return 0; /* py3compile warns and skips an invalid pattern */
                if (r < 0)
                        return r;
        }
        r = exclude_add(l, type, versions, dname, regex, true);
        if (r < 0) {
                if (regex) {
                        regfree(regex);
                        free(regex);
                }
                return r;
        }
        return 1;
}

int bcep_load(DebPython *d, const char *dir, ExcludeList *ret) {
        DIR *dp = opendir(dir);
        struct dirent *de;
        int r = 0;

        if (!dp)
                return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
        while (r >= 0 && (de = readdir(dp))) {
                _cleanup_free_ char *path = NULL;
                char line[DEBPYTHON_MAX_LINE];
                FILE *f;

                if (de->d_name[0] == '.')
                        continue;
                path = path_join(dir, de->d_name);
                if (!path) {
                        r = -ENOMEM;
                        break;
                }
                f = fopen(path, "re");
                if (!f)
                        continue;
                while (r >= 0 && fgets(line, sizeof(line), f)) {
                        if (line[0] == '#')
                                continue;
                        line[strcspn(line, "\n")] = 0;
                        r = bcep_line(d, line, ret);
                }
                fclose(f);
        }
        closedir(dp);
        return r < 0 ? r : 0;
}

int exclude_list_for(const DebPython *d, const ExcludeList *bcep, const char *directory,
                     regex_t *const *regexes, size_t n_regexes, VersionMask versions, ExcludeList *ret) {
        _cleanup_free_ char *dir = NULL;
        size_t len = strlen(directory), dlen;
        int r;

        while (len > 0 && directory[len - 1] == '/')
                len--;
        if (asprintf(&dir, "%.*s/", (int)len, directory) < 0)
                return -ENOMEM;
        dlen = strlen(dir);

        for (size_t i = 0; i < n_regexes; i++) {
                VersionMask v = versions ? versions : (VersionMask)((1ull << d->n_supported) - 1);
                r = exclude_add(ret, EXCLUDE_RE, v, dir, regexes[i], false);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < bcep->n; i++) {
                const ExcludeRule *b = &bcep->rules[i];
                size_t n = strlen(b->dname);

                /* The rule's directory is above @directory or below it. */
                if (strncmp(b->dname, dir, n < dlen ? n : dlen) != 0)
                        continue;
                if (versions && !(versions & b->versions))
                        continue;
                r = exclude_add(ret, b->type, b->versions, b->dname, b->regex, false);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* --- selection --------------------------------------------------------------- */

static bool has_prefix(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool debpython_public_dir(const char *path, bool *ret_shared, PyVersion *ret_version) {
        static const char marker[] = "/usr/lib/python";

        for (const char *p = strstr(path, marker); p; p = strstr(p + 1, marker)) {
                const char *q = p + sizeof(marker) - 1, *e;

                if (*q < '0' || *q > '9')
                        continue;
                /* "X" then optionally any one character and digits. */
                if (q[1] && q[2] >= '0' && q[2] <= '9') {
                        e = q + 2;
                        while (*e >= '0' && *e <= '9')
                                e++;
                        if (has_prefix(e, "/site-packages") || has_prefix(e, "/dist-packages")) {
                                *ret_shared = false;
                                *ret_version = PYVERSION(q[0] - '0', atoi(q + 2));
                                return true;
                        }
                }
                if (has_prefix(q + 1, "/site-packages") || has_prefix(q + 1, "/dist-packages")) {
                        *ret_shared = true;
                        *ret_version = PYVERSION(q[0] - '0', 0);
                        return true;
                }
        }
        return false;
}

void source_list_done(SourceList *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->files[i].path);
        free(l->files);
        *l = (SourceList){};
}

int source_list_add_filtered(DebPython *d, SourceList *l, char **files, size_t n_files,
                             const ExcludeList *rules, VersionMask versions) {
        for (size_t i = 0; i < n_files; i++) {
                const char *f = files[i];
                VersionMask valid = versions;
                bool shared;
                PyVersion pv;
                int r;

                for (size_t j = 0; j < rules->n && valid; j++) {
                        const ExcludeRule *x = &rules->rules[j];
                        const char *rel;

                        if (!has_prefix(f, x->dname))
                                continue;
                        rel = f + strlen(x->dname);
                        if (x->type == EXCLUDE_DIR)
                                valid &= ~x->versions;
                        else if (x->type == EXCLUDE_FILE && strcmp(f, x->dname) == 0)
                                valid &= ~x->versions;
                        else if (x->type == EXCLUDE_RE && x->regex &&
                                 (regex_match_start(x->regex, f) || regex_match_start(x->regex, rel)))
                                valid &= ~x->versions;
                }
                if (!valid)
                        continue;
                if (debpython_public_dir(f, &shared, &pv) && !shared) {
                        r = debpython_version_bit(d, pv, &valid);
                        if (r < 0)
                                return r;
                }
                if (l->n >= DEBPYTHON_MAX_FILES)
                        return -E2BIG;
                if (GREEDY_REALLOC(l->files, l->allocated, l->n + 1) < 0)
                        return -ENOMEM;
                l->files[l->n].path = strdup(f);
                if (!l->files[l->n].path)
                        return -ENOMEM;
                l->files[l->n++].versions = valid;
        }
        return 0;
}

/* --- file lists -------------------------------------------------------------- */

static bool ends_with_py(const char *s) {
        size_t n = strlen(s);
        return n >= 3 && strcmp(s + n - 3, ".py") == 0;
}

/* The package's files, from dpkg itself: dpkg-query resolves PKG:ARCH and
 * Multi-Arch and reads its database the way dpkg does (the database's
 * layout is dpkg's own business). Lines that are not paths (diversion
 * notes) are skipped. */
int dpkg_package_sources(const char *admindir, const char *package, StrList *ret) {
        _cleanup_free_ char *admin_opt = NULL;
        char line[DEBPYTHON_MAX_LINE];
        int fds[2], status, r = 0;
        pid_t pid;
        FILE *f;

        if (!*package || package[0] == '-' || strchr(package, '/'))
                return -EINVAL;
        if (admindir && asprintf(&admin_opt, "--admindir=%s", admindir) < 0)
                return -ENOMEM;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                r = -errno;
                close(fds[0]);
                close(fds[1]);
                return r;
        }
        if (pid == 0) {
                int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

                if (dup2(fds[1], STDOUT_FILENO) < 0 || (devnull >= 0 && dup2(devnull, STDERR_FILENO) < 0))
                        _exit(127);
                if (admin_opt)
                        execlp("dpkg-query", "dpkg-query", admin_opt, "--listfiles", "--", package, (char *)NULL);
                else
                        execlp("dpkg-query", "dpkg-query", "--listfiles", "--", package, (char *)NULL);
                _exit(127);
        }
        close(fds[1]);
        f = fdopen(fds[0], "re");
        if (!f) {
                r = -errno;
                close(fds[0]);
        } else {
                while (fgets(line, sizeof(line), f)) {
                        line[strcspn(line, "\n")] = 0;
                        if (r >= 0 && line[0] == '/' && ends_with_py(line))
                                r = strlist_add(ret, line, DEBPYTHON_MAX_FILES);
                }
                fclose(f);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (r < 0)
                return r;
        if (!WIFEXITED(status) || WEXITSTATUS(status) == 127)
                return -ENOEXEC; /* dpkg-query could not be run */
        if (WEXITSTATUS(status) != 0)
                return -ENOENT; /* not installed */
        return 0;
}

int path_make_abs(const char *path, char **ret) {
        _cleanup_free_ char *joined = NULL, *out = NULL;
        size_t n = 0;

        if (path[0] == '/')
                joined = strdup(path);
        else {
                _cleanup_free_ char *cwd = getcwd(NULL, 0);
                if (!cwd)
                        return -errno;
                joined = path_join(cwd, path);
        }
        if (!joined)
                return -ENOMEM;
        out = malloc(strlen(joined) + 2);
        if (!out)
                return -ENOMEM;
        /* Lexically: drop empty and "." components, let ".." remove the previous one. */
        for (const char *p = joined; *p;) {
                size_t len;

                p += strspn(p, "/");
                len = strcspn(p, "/");
                if (len == 0)
                        break;
                if (len == 1 && p[0] == '.') {
                        /* nothing */
                } else if (len == 2 && p[0] == '.' && p[1] == '.') {
                        while (n > 0 && out[n - 1] != '/')
                                n--;
                        if (n > 0)
                                n--;
                } else {
                        out[n++] = '/';
                        memcpy(out + n, p, len);
                        n += len;
                }
                p += len;
        }
        if (n == 0)
                out[n++] = '/';
        out[n] = 0;
        *ret = TAKE_PTR(out);
        return 0;
}

static int walk(int dir_fd, const char *path, unsigned depth, StrList *ret) {
        DIR *dp;
        struct dirent *de;
        int r = 0;

        if (depth > DEBPYTHON_MAX_DEPTH)
                return -ELOOP;
        dp = fdopendir(dir_fd);
        if (!dp) {
                safe_close(dir_fd);
                return -errno;
        }
        while (r >= 0 && (de = readdir(dp))) {
                _cleanup_free_ char *child = NULL;
                struct stat st;
                bool is_dir;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                /* As os.walk: a symlink to a directory counts as a directory but is not entered. */
                is_dir = fstatat(dirfd(dp), de->d_name, &st, 0) == 0 && S_ISDIR(st.st_mode);
                if (asprintf(&child, "%s%s%s", path, strcmp(path, "/") == 0 ? "" : "/", de->d_name) < 0) {
                        child = NULL;
                        r = -ENOMEM;
                        break;
                }
                if (is_dir) {
                        int fd = openat(dirfd(dp), de->d_name,
                                        O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (fd >= 0)
                                r = walk(fd, child, depth + 1, ret);
                } else if (ends_with_py(de->d_name))
                        r = strlist_add(ret, child, DEBPYTHON_MAX_FILES);
        }
        closedir(dp);
        return r;
}

int directory_sources(const char *path, StrList *ret) {
        _cleanup_free_ char *abs = NULL;
        struct stat st;
        int fd, r;

        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && ends_with_py(path))
                return strlist_add(ret, path, DEBPYTHON_MAX_FILES);
        r = path_make_abs(path, &abs);
        if (r < 0)
                return r;
        fd = open(abs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return 0; /* not a directory: nothing, as dh-python */
        return walk(fd, abs, 0, ret);
}
