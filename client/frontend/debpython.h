/* SPDX-License-Identifier: MIT */
#pragma once

/* Debian's view of Python 3 that py3compile decides with: the supported and
 * default versions (/usr/share/python3/debian_defaults, or
 * $DEBPYTHON3_SUPPORTED / $DEBPYTHON3_DEFAULT as dh-python honours them),
 * version ranges (-V), byte-compile exclusions (/usr/share/python3/bcep/
 * and -X), a package's files from dpkg's database, and the selection of
 * which file is compiled for which version. Nothing here prints; failures
 * come back as negative errno with a message for the caller. */

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include "strlist.h"

/* The most files one front-end call lists (a package, a tree). */
#define DEBPYTHON_MAX_FILES (4u * 1024u * 1024u)

#define DEBPYTHON_MAX_VERSIONS 32u
#define DEBPYTHON_DEFAULTS "/usr/share/python3/debian_defaults"
#define DEBPYTHON_BCEP_DIR "/usr/share/python3/bcep"

/* A version X.Y as X * 1000 + Y, so that versions compare as integers. */
typedef int PyVersion;
#define PYVERSION(major, minor) ((major)*1000 + (minor))
#define PYVERSION_MAJOR(v) ((v) / 1000)
#define PYVERSION_MINOR(v) ((v) % 1000)

/* A set of versions, as a bit per index into DebPython.known. */
typedef unsigned VersionMask;

typedef struct DebPython {
        PyVersion default_version;
        PyVersion known[DEBPYTHON_MAX_VERSIONS]; /* supported ones first, then any added */
        size_t n_supported;
        size_t n_known;
} DebPython;

/* Reads the supported and default versions; -ENOENT/-EINVAL with a message. */
int debpython_load(DebPython *d, char **ret_message);
/* The bit of @v, adding it to the known versions; -E2BIG when full. */
int debpython_version_bit(DebPython *d, PyVersion v, VersionMask *ret);
/* True when /usr/bin/pythonX.Y exists. */
bool debpython_installed(PyVersion v);

/* A -V range: min/max 0 when open. A single version has min == max. */
typedef struct VersionRange {
        PyVersion min, max;
} VersionRange;
int version_range_parse(const char *s, VersionRange *ret); /* -EINVAL when invalid */
/* py3compile's choice: a single installed version even if unsupported,
 * else the installed supported versions in the range. May be empty. */
int debpython_requested(DebPython *d, const VersionRange *range, VersionMask *ret);
/* The first version of @mask in Debian's order: the default, then newer
 * ones ascending, then older ones descending. */
VersionMask debpython_first(const DebPython *d, VersionMask mask);

/* One exclusion rule, from bcep or -X. */
typedef enum ExcludeType { EXCLUDE_DIR, EXCLUDE_FILE, EXCLUDE_RE } ExcludeType;
typedef struct ExcludeRule {
        ExcludeType type;
        VersionMask versions;
        char *dname;    /* ends with '/' except for EXCLUDE_FILE */
        regex_t *regex; /* matched at the start of the path, as Python's re.match; may be NULL */
        bool owns_regex;
} ExcludeRule;

typedef struct ExcludeList {
        ExcludeRule *rules;
        size_t n, allocated;
} ExcludeList;
void exclude_list_done(ExcludeList *l);

/* Loads the rules of @dir (bcep) that name an installed version. Unreadable
 * lines and invalid patterns are skipped, as py3compile does. */
int bcep_load(DebPython *d, const char *dir, ExcludeList *ret);
/* The rules that apply under @directory for @versions (0: any): the -X
 * @regexes (rooted at @directory, for @versions or every supported one) and
 * those of @bcep whose directory overlaps @directory. The result borrows
 * the regexes of @regexes and @bcep. */
int exclude_list_for(const DebPython *d, const ExcludeList *bcep, const char *directory,
                     regex_t *const *regexes, size_t n_regexes, VersionMask versions, ExcludeList *ret);
/* Compiles @pattern as an exclusion regex (POSIX extended: Python-only
 * syntax such as \d or (?:...) is refused); -EINVAL when invalid. */
int exclude_regex_compile(const char *pattern, regex_t **ret);

/* A file with the versions it is compiled for. */
typedef struct SourceFile {
        char *path;
        VersionMask versions;
} SourceFile;

typedef struct SourceList {
        SourceFile *files;
        size_t n, allocated;
} SourceList;
void source_list_done(SourceList *l);

/* Adds each of @files (that survives @rules) with the versions it is to be
 * compiled for, starting from @versions; a file under
 * /usr/lib/python3.X/dist-packages is compiled for 3.X only. */
int source_list_add_filtered(DebPython *d, SourceList *l, char **files, size_t n_files,
                             const ExcludeList *rules, VersionMask versions);

/* dh-python's public directory: ".../usr/lib/pythonV/{site,dist}-packages"
 * anywhere in @path, V being "3" (*@ret_shared, the version's major only)
 * or "3.X". */
bool debpython_public_dir(const char *path, bool *ret_shared, PyVersion *ret_version);


/* The "*.py" paths of @package (PKG or PKG:ARCH), as `dpkg-query
 * [--admindir=@admindir] --listfiles` gives them; @admindir NULL is dpkg's
 * own. -ENOENT when dpkg knows no such package (or several architectures
 * of it), -ENOEXEC when dpkg-query cannot be run. */
int dpkg_package_sources(const char *admindir, const char *package, StrList *ret);
/* The "*.py" files of @path as dh-python lists them: a file operand as
 * given; a directory walked from its lexically absolute path (symlinked
 * directories not entered); anything else, nothing. */
int directory_sources(const char *path, StrList *ret);
/* Lexically absolute @path, as Python's os.path.abspath: no symlink resolved. */
int path_make_abs(const char *path, char **ret);
