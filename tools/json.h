/* SPDX-License-Identifier: MIT */
/* A streaming JSON writer for hpmemctl: commas, nesting and escapes in one place. */
#ifndef HPMEMCTL_JSON_H
#define HPMEMCTL_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH	16

/*
 * One writer per document. Values go where the writer is: after a key in an
 * object, or as the next element of an array, or as the whole document. The
 * writer adds the commas; callers never print JSON syntax themselves.
 * Misuse (a value in an object without a key, unbalanced ends, too deep) is
 * remembered in @err and reported by json_finish(), not silently emitted.
 */
struct json_writer {
	FILE *f;
	int depth;
	int err;		/* 0 or the first -errno */
	bool after_key;		/* a key was written, its value is next */
	bool pretty;		/* a top-level array: one element per line */
	bool in_obj[JSON_MAX_DEPTH];
	bool nonempty[JSON_MAX_DEPTH];
};

void json_init(struct json_writer *w, FILE *f);

void json_obj_begin(struct json_writer *w);
void json_obj_end(struct json_writer *w);
void json_arr_begin(struct json_writer *w);
void json_arr_end(struct json_writer *w);

/* The key of the next value; only inside an object. */
void json_key(struct json_writer *w, const char *key);

/*
 * Strings are escaped byte by byte: '"', '\\' and control bytes as JSON
 * escapes, bytes >= 0x7f as \u00XX (so any region name, UTF-8 or not, gives
 * valid ASCII JSON; a byte maps to the code point of the same value).
 */
void json_str(struct json_writer *w, const char *s);
void json_u64(struct json_writer *w, uint64_t v);
void json_i64(struct json_writer *w, int64_t v);
void json_bool(struct json_writer *w, bool v);
void json_null(struct json_writer *w);

/* key + value in one call, the common case. */
void json_kstr(struct json_writer *w, const char *key, const char *s);
void json_ku64(struct json_writer *w, const char *key, uint64_t v);
void json_ki64(struct json_writer *w, const char *key, int64_t v);
void json_kbool(struct json_writer *w, const char *key, bool v);
void json_knull(struct json_writer *w, const char *key);
/*
 * An address as a "0x..." string: jq and JavaScript read JSON numbers as
 * doubles, exact only below 2^53, and IOVAs or virtual addresses may not be.
 */
void json_kaddr(struct json_writer *w, const char *key, uint64_t v);

/*
 * Ends the document with a newline and flushes. Returns 0, -EINVAL when the
 * writer was misused or left open, or -EIO when the stream failed.
 */
int json_finish(struct json_writer *w);

#endif /* HPMEMCTL_JSON_H */
