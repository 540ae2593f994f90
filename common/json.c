/* SPDX-License-Identifier: MIT */
/* JSON output for the client, and anything else that must print JSON.
 *
 * Strings are byte strings (paths may hold any byte but NUL), so escaping
 * validates UTF-8 strictly (no overlong forms, no encoded surrogates, nothing
 * above U+10FFFF) and writes every byte outside a valid sequence as "\udcXX",
 * the surrogateescape convention: lossless, and decodable by Python's
 * os.fsencode(). Control characters and DEL are \u-escaped too, so the output
 * is plain ASCII plus valid UTF-8.
 *
 * The stat tree: the daemon reports status as a flat, ordered list of
 * (dotted key, kind, value). Each key component is a node; a node is either a
 * leaf holding a value or a container holding children in insertion order.
 * Containers whose children are all array indices become JSON arrays. The tree
 * is bounded in entries, depth and index range, so a malformed reply costs a
 * clear error, not memory. Lookups check the most recent child first, which
 * makes the usual grouped order of keys linear overall. */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

typedef struct JsonNode JsonNode;
struct JsonNode {
        char *name; /* NULL for the root */
        bool is_leaf;
        char kind;
        uint8_t *value;
        size_t value_size;
        JsonNode **children;
        size_t n_children;
        size_t allocated;
};

struct JsonTree {
        JsonNode root;
        size_t n_entries;
};

size_t utf8_sequence_length(const uint8_t *p, size_t n) {
        uint8_t lo = 0x80, hi = 0xBF;
        size_t len;

        if (p[0] < 0x80)
                return 1;
        if (p[0] >= 0xC2 && p[0] <= 0xDF)
                len = 2;
        else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
                len = 3;
                if (p[0] == 0xE0)
                        lo = 0xA0; /* overlong */
                else if (p[0] == 0xED)
                        hi = 0x9F; /* UTF-16 surrogates */
        } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
                len = 4;
                if (p[0] == 0xF0)
                        lo = 0x90; /* overlong */
                else if (p[0] == 0xF4)
                        hi = 0x8F; /* above U+10FFFF */
        } else
                return 0;

        if (n < len || p[1] < lo || p[1] > hi)
                return 0;
        for (size_t i = 2; i < len; i++)
                if (p[i] < 0x80 || p[i] > 0xBF)
                        return 0;
        return len;
}

static void write_ascii_byte(FILE *f, uint8_t c) {
        switch (c) {
        case '"':
                fputs("\\\"", f);
                break;
        case '\\':
                fputs("\\\\", f);
                break;
        case '\b':
                fputs("\\b", f);
                break;
        case '\f':
                fputs("\\f", f);
                break;
        case '\n':
                fputs("\\n", f);
                break;
        case '\r':
                fputs("\\r", f);
                break;
        case '\t':
                fputs("\\t", f);
                break;
        default:
                if (c < 0x20 || c == 0x7F)
                        fprintf(f, "\\u%04x", c);
                else
                        putc(c, f);
        }
}

int json_write_string(FILE *f, const void *data, size_t size) {
        const uint8_t *p = data;
        size_t i = 0;

        putc('"', f);
        while (i < size) {
                size_t len = utf8_sequence_length(p + i, size - i);

                if (len == 0) {
                        fprintf(f, "\\udc%02x", p[i]);
                        i++;
                } else if (len == 1) {
                        write_ascii_byte(f, p[i]);
                        i++;
                } else {
                        fwrite(p + i, 1, len, f);
                        i += len;
                }
        }
        putc('"', f);
        return ferror(f) ? -EIO : 0;
}

int json_write_cstring(FILE *f, const char *s) {
        return json_write_string(f, s, strlen(s));
}

static size_t skip_digits(const char *s, size_t i, size_t size) {
        while (i < size && s[i] >= '0' && s[i] <= '9')
                i++;
        return i;
}

int json_is_number(const char *s, size_t size) {
        size_t i = 0, j;

        if (i < size && s[i] == '-')
                i++;
        if (i < size && s[i] == '0')
                i++;
        else if (i < size && s[i] >= '1' && s[i] <= '9')
                i = skip_digits(s, i, size);
        else
                return 0;
        if (i < size && s[i] == '.') {
                j = skip_digits(s, i + 1, size);
                if (j == i + 1)
                        return 0;
                i = j;
        }
        if (i < size && (s[i] == 'e' || s[i] == 'E')) {
                i++;
                if (i < size && (s[i] == '+' || s[i] == '-'))
                        i++;
                j = skip_digits(s, i, size);
                if (j == i)
                        return 0;
                i = j;
        }
        return i == size;
}

/* Returns the index for a component that is one ("0", "17"), else -1. */
static long component_index(const char *name) {
        size_t n = strlen(name);
        long v = 0;

        if (n == 0 || (n > 1 && name[0] == '0') || n > 9)
                return -1;
        for (size_t i = 0; i < n; i++) {
                if (name[i] < '0' || name[i] > '9')
                        return -1;
                v = v * 10 + (name[i] - '0');
        }
        return v;
}

static void node_clear(JsonNode *n) {
        for (size_t i = 0; i < n->n_children; i++) {
                node_clear(n->children[i]);
                free(n->children[i]);
        }
        free(n->children);
        free(n->name);
        free(n->value);
}

int json_tree_new(JsonTree **ret) {
        JsonTree *t = calloc(1, sizeof(*t));

        if (!t)
                return -ENOMEM;
        *ret = t;
        return 0;
}

JsonTree *json_tree_free(JsonTree *t) {
        if (!t)
                return NULL;
        node_clear(&t->root);
        free(t);
        return NULL;
}

static JsonNode *node_find_child(JsonNode *parent, const char *name, size_t len) {
        /* Most recent first: keys of one object usually arrive together. */
        for (size_t i = parent->n_children; i > 0; i--) {
                JsonNode *c = parent->children[i - 1];
                if (strlen(c->name) == len && memcmp(c->name, name, len) == 0)
                        return c;
        }
        return NULL;
}

static int node_add_child(JsonNode *parent, const char *name, size_t len, JsonNode **ret) {
        _cleanup_free_ JsonNode *c = NULL;

        if (parent->n_children == parent->allocated) {
                size_t a = parent->allocated ? parent->allocated * 2 : 8;
                JsonNode **nc = realloc(parent->children, a * sizeof(*nc));
                if (!nc)
                        return -ENOMEM;
                parent->children = nc;
                parent->allocated = a;
        }
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->name = strndup(name, len);
        if (!c->name)
                return -ENOMEM;
        parent->children[parent->n_children++] = c;
        *ret = TAKE_PTR(c);
        return 0;
}

static int value_validate(char kind, const void *value, size_t size) {
        if (kind == 'n')
                return json_is_number(value, size) ? 0 : -EBADMSG;
        if (kind == 'b') {
                if ((size == 4 && memcmp(value, "true", 4) == 0) ||
                    (size == 5 && memcmp(value, "false", 5) == 0))
                        return 0;
                return -EBADMSG;
        }
        return 0;
}

/* Checks the shape of @key before the tree changes, so that a malformed key
 * leaves no half-built path behind. */
static int key_validate(const char *key) {
        size_t depth = 0;
        const char *p = key;

        for (;;) {
                size_t len = strcspn(p, ".");
                char component[16];

                if (len == 0)
                        return -EBADMSG; /* "", ".a", "a..b", "a." */
                if (++depth > JSON_MAX_DEPTH)
                        return -E2BIG;
                if (len < sizeof(component)) {
                        memcpy(component, p, len);
                        component[len] = '\0';
                        if (component_index(component) > (long)JSON_MAX_ARRAY_INDEX)
                                return -E2BIG;
                }
                if (p[len] == '\0')
                        return 0;
                p += len + 1;
        }
}

/* Walks @key from the root, creating containers as needed; returns the leaf
 * node (new or existing). */
static int tree_walk(JsonTree *t, const char *key, JsonNode **ret) {
        JsonNode *n = &t->root;
        const char *p = key;
        int r;

        for (;;) {
                size_t len = strcspn(p, ".");
                bool last = p[len] == '\0';
                JsonNode *c = node_find_child(n, p, len);

                if (c && !last && c->is_leaf)
                        return -EBADMSG; /* "a" is a value, "a.b" wants it a container */
                if (c && last && !c->is_leaf)
                        return -EBADMSG; /* the reverse */
                if (!c) {
                        r = node_add_child(n, p, len, &c);
                        if (r < 0)
                                return r;
                        c->is_leaf = last;
                }
                if (last) {
                        *ret = c;
                        return 0;
                }
                n = c;
                p += len + 1;
        }
}

int json_tree_add(JsonTree *t, const char *key, char kind, const void *value, size_t size) {
        _cleanup_free_ uint8_t *copy = NULL;
        JsonNode *leaf;
        int r;

        if (t->n_entries >= JSON_MAX_ENTRIES)
                return -E2BIG;
        r = key_validate(key);
        if (r < 0)
                return r;
        r = value_validate(kind, value, size);
        if (r < 0)
                return r;
        copy = malloc(size ? size : 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, value, size);

        r = tree_walk(t, key, &leaf);
        if (r < 0)
                return r;
        free(leaf->value);
        leaf->value = TAKE_PTR(copy);
        leaf->value_size = size;
        leaf->kind = kind;
        t->n_entries++;
        return 0;
}

static bool node_is_array(const JsonNode *n) {
        if (n->n_children == 0)
                return false;
        for (size_t i = 0; i < n->n_children; i++)
                if (component_index(n->children[i]->name) < 0)
                        return false;
        return true;
}

static int node_write(const JsonNode *n, FILE *f, bool force_object);

static int node_write_leaf(const JsonNode *n, FILE *f) {
        if (n->kind == 'n' || n->kind == 'b') {
                fwrite(n->value, 1, n->value_size, f);
                return 0;
        }
        return json_write_string(f, n->value, n->value_size);
}

static int node_write_array(const JsonNode *n, FILE *f) {
        _cleanup_free_ const JsonNode **slots = NULL;
        size_t count = 0;

        for (size_t i = 0; i < n->n_children; i++)
                count = MAX(count, (size_t)component_index(n->children[i]->name) + 1);
        slots = calloc(count, sizeof(*slots));
        if (!slots)
                return -ENOMEM;
        for (size_t i = 0; i < n->n_children; i++)
                slots[component_index(n->children[i]->name)] = n->children[i];

        putc('[', f);
        for (size_t i = 0; i < count; i++) {
                int r;
                if (i > 0)
                        putc(',', f);
                if (!slots[i]) {
                        fputs("null", f);
                        continue;
                }
                r = node_write(slots[i], f, false);
                if (r < 0)
                        return r;
        }
        putc(']', f);
        return 0;
}

static int node_write(const JsonNode *n, FILE *f, bool force_object) {
        int r;

        if (n->is_leaf)
                return node_write_leaf(n, f);
        if (!force_object && node_is_array(n))
                return node_write_array(n, f);

        putc('{', f);
        for (size_t i = 0; i < n->n_children; i++) {
                if (i > 0)
                        putc(',', f);
                json_write_cstring(f, n->children[i]->name);
                putc(':', f);
                r = node_write(n->children[i], f, false);
                if (r < 0)
                        return r;
        }
        putc('}', f);
        return 0;
}

int json_tree_write(const JsonTree *t, FILE *f) {
        int r = node_write(&t->root, f, true);
        if (r < 0)
                return r;
        return ferror(f) ? -EIO : 0;
}
