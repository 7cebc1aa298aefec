// SPDX-License-Identifier: MIT
/* A streaming JSON writer for hpmemctl (see json.h). */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "json.h"

void json_init(struct json_writer *w, FILE *f)
{
	memset(w, 0, sizeof(*w));
	w->f = f;
}

static void fail(struct json_writer *w, int err)
{
	if (!w->err)
		w->err = err;
}

/* Called before every value: the separator, or a complaint. */
static void before_value(struct json_writer *w)
{
	int d = w->depth;

	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (d && w->in_obj[d - 1]) {
		fail(w, -EINVAL);	/* object member without a key */
		return;
	}
	if (d) {
		if (w->nonempty[d - 1])
			fputc(',', w->f);
		if (w->pretty && d == 1)
			fprintf(w->f, "\n ");
		else if (w->nonempty[d - 1])
			fputc(' ', w->f);
		w->nonempty[d - 1] = true;
	}
}

static void open_(struct json_writer *w, bool obj)
{
	before_value(w);
	if (w->depth >= JSON_MAX_DEPTH) {
		fail(w, -EINVAL);
		return;
	}
	fputc(obj ? '{' : '[', w->f);
	w->in_obj[w->depth] = obj;
	w->nonempty[w->depth] = false;
	w->depth++;
}

static void close_(struct json_writer *w, bool obj)
{
	if (!w->depth || w->in_obj[w->depth - 1] != obj || w->after_key) {
		fail(w, -EINVAL);
		return;
	}
	w->depth--;
	/* A pretty list puts its closing bracket on a line of its own. */
	if (w->pretty && !obj && !w->depth && w->nonempty[0])
		fputc('\n', w->f);
	fputc(obj ? '}' : ']', w->f);
}

void json_obj_begin(struct json_writer *w) { open_(w, true); }
void json_obj_end(struct json_writer *w) { close_(w, true); }
void json_arr_begin(struct json_writer *w) { open_(w, false); }
void json_arr_end(struct json_writer *w) { close_(w, false); }

static void put_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':  fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (*p < 0x20 || *p >= 0x7f)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

void json_key(struct json_writer *w, const char *key)
{
	int d = w->depth;

	if (!d || !w->in_obj[d - 1] || w->after_key) {
		fail(w, -EINVAL);
		return;
	}
	if (w->nonempty[d - 1])
		fputs(", ", w->f);
	w->nonempty[d - 1] = true;
	put_string(w->f, key);
	fputs(": ", w->f);
	w->after_key = true;
}

void json_str(struct json_writer *w, const char *s)
{
	before_value(w);
	put_string(w->f, s);
}

void json_u64(struct json_writer *w, uint64_t v)
{
	before_value(w);
	fprintf(w->f, "%" PRIu64, v);
}

void json_i64(struct json_writer *w, int64_t v)
{
	before_value(w);
	fprintf(w->f, "%" PRId64, v);
}

void json_bool(struct json_writer *w, bool v)
{
	before_value(w);
	fputs(v ? "true" : "false", w->f);
}

void json_null(struct json_writer *w)
{
	before_value(w);
	fputs("null", w->f);
}

void json_kstr(struct json_writer *w, const char *k, const char *s)
{
	json_key(w, k);
	json_str(w, s);
}

void json_ku64(struct json_writer *w, const char *k, uint64_t v)
{
	json_key(w, k);
	json_u64(w, v);
}

void json_ki64(struct json_writer *w, const char *k, int64_t v)
{
	json_key(w, k);
	json_i64(w, v);
}

void json_kbool(struct json_writer *w, const char *k, bool v)
{
	json_key(w, k);
	json_bool(w, v);
}

void json_knull(struct json_writer *w, const char *k)
{
	json_key(w, k);
	json_null(w);
}

void json_kaddr(struct json_writer *w, const char *k, uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
	json_kstr(w, k, buf);
}

int json_finish(struct json_writer *w)
{
	if (w->depth || w->after_key)
		fail(w, -EINVAL);
	fputc('\n', w->f);
	if (fflush(w->f) || ferror(w->f))
		fail(w, -EIO);
	return w->err;
}
