/* SPDX-License-Identifier: MIT */
/*
 * A small strict JSON parser for the guest tests (busybox has no jq):
 * RFC 8259 syntax, no duplicate keys, no trailing bytes, and a key/type
 * check so a test can hold every command's output to its documented keys.
 */
#ifndef JSON_CHECK_H
#define JSON_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jval {
	enum jtype type;
	bool b;
	bool is_uint;		/* a number of digits only, fits uint64_t */
	uint64_t u;
	char *s;		/* J_STR: decoded, NUL-terminated (\u0000 refused) */
	size_t n;		/* J_ARR, J_OBJ: members */
	char **keys;		/* J_OBJ: decoded keys */
	struct jval **items;	/* J_ARR, J_OBJ: values */
};

/*
 * Parses @text as exactly one JSON value (whitespace around it allowed).
 * NULL on any error, with the byte offset and reason in @err.
 */
struct jval *jparse(const char *text, char *err, size_t errlen);
void jfree(struct jval *v);

/* Object member @key, or NULL (also when @v is no object). */
struct jval *jget(const struct jval *v, const char *key);

/*
 * Checks that object @v has exactly the keys of @spec, each of its type.
 * @spec: "key:T key:T ..." with T one of n b u s a o (null, bool, unsigned
 * integer, string, array, object), optionally followed by '?' for "or null".
 * Returns NULL when it holds, else a static message naming the first key
 * that is missing, extra or of the wrong type.
 */
const char *jkeys(const struct jval *v, const char *spec);

#endif /* JSON_CHECK_H */
